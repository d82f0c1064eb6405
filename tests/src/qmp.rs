//! QMP, qemu's JSON control socket: pull and replug cables (`set_link`) and kill boxes (`quit`).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A connected QMP session in command mode.
#[derive(Debug)]
pub struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    /// Connects, reads the greeting and enters command mode.
    pub fn connect(socket: &Path, timeout: Duration) -> Result<Qmp, String> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(stream) => break stream,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => return Err(format!("cannot connect to QMP {}: {e}", socket.display())),
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        let writer = stream.try_clone().map_err(|e| e.to_string())?;
        let mut qmp = Qmp {
            reader: BufReader::new(stream),
            writer,
        };
        let greeting = qmp.read_message()?;
        if greeting.get("QMP").is_none() {
            return Err(format!("unexpected QMP greeting: {greeting}"));
        }
        qmp.execute("qmp_capabilities", json!({}))?;
        Ok(qmp)
    }

    fn read_message(&mut self) -> Result<Value, String> {
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .map_err(|e| format!("QMP read: {e}"))?;
        if line.is_empty() {
            return Err("QMP closed".into());
        }
        serde_json::from_str(&line).map_err(|e| format!("QMP sent bad JSON {line:?}: {e}"))
    }

    /// Runs a command and returns its `return` value (events in between are skipped).
    pub fn execute(&mut self, command: &str, arguments: Value) -> Result<Value, String> {
        let request = json!({ "execute": command, "arguments": arguments });
        writeln!(self.writer, "{request}").map_err(|e| format!("QMP write: {e}"))?;
        loop {
            let message = self.read_message()?;
            if let Some(value) = message.get("return") {
                return Ok(value.clone());
            }
            if let Some(error) = message.get("error") {
                return Err(format!("QMP {command} failed: {error}"));
            }
        }
    }

    /// Plugs (`up`) or pulls (`!up`) the cable of NIC device `id`.
    pub fn set_link(&mut self, id: &str, up: bool) -> Result<(), String> {
        self.execute("set_link", json!({ "name": id, "up": up }))
            .map(|_| ())
    }

    /// Kills the box at once, like pulling its power cord.
    pub fn quit(&mut self) -> Result<(), String> {
        let request = json!({ "execute": "quit" });
        writeln!(self.writer, "{request}").map_err(|e| format!("QMP write: {e}"))?;
        // qemu may close the socket before or after answering.
        let _ = self.read_message();
        Ok(())
    }
}
