//! A box's serial console over qemu's unix socket: read lines, wait for a pattern, send bytes.
//!
//! A reader thread appends everything to a transcript (also written to a log file for post
//! mortems); waits search the transcript from a cursor, so each wait sees only what arrived after
//! the previous match unless it asks for the whole transcript.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

#[derive(Debug, Default)]
struct Transcript {
    bytes: Vec<u8>,
    closed: bool,
}

/// One box's console (or a `tandem run` process's stdin/stdout).
pub struct Console {
    name: String,
    writer: Mutex<Box<dyn Write + Send>>,
    shared: Arc<(Mutex<Transcript>, Condvar)>,
    cursor: Mutex<usize>,
    pub log_path: PathBuf,
}

impl Console {
    /// Connects to `socket`, retrying until qemu has created it or `timeout` passes.
    pub fn connect(
        name: &str,
        socket: &Path,
        log_path: PathBuf,
        timeout: Duration,
    ) -> Result<Console, String> {
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(stream) => break stream,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(format!(
                        "{name}: cannot connect to console {}: {e}",
                        socket.display()
                    ))
                }
            }
        };
        let reader = stream.try_clone().map_err(|e| format!("{name}: {e}"))?;
        Console::from_parts(name, Box::new(reader), Box::new(stream), log_path)
    }

    /// A console over any byte stream pair, e.g. a child process's stdout and stdin.
    pub fn from_parts(
        name: &str,
        reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
        log_path: PathBuf,
    ) -> Result<Console, String> {
        let shared = Arc::new((Mutex::new(Transcript::default()), Condvar::new()));
        let thread_shared = Arc::clone(&shared);
        let mut log_file = std::fs::File::create(&log_path).ok();
        std::thread::Builder::new()
            .name(format!("console-{name}"))
            .spawn(move || {
                let mut reader = reader;
                let mut buffer = [0u8; 4096];
                loop {
                    let n = reader.read(&mut buffer).unwrap_or(0);
                    let (lock, wake) = &*thread_shared;
                    let mut transcript = lock.lock().unwrap_or_else(PoisonError::into_inner);
                    if n == 0 {
                        transcript.closed = true;
                        wake.notify_all();
                        return;
                    }
                    let chunk = buffer.get(..n).unwrap_or_default();
                    if let Some(file) = &mut log_file {
                        let _ = file.write_all(chunk);
                    }
                    transcript.bytes.extend_from_slice(chunk);
                    wake.notify_all();
                }
            })
            .map_err(|e| format!("{name}: {e}"))?;
        Ok(Console {
            name: name.to_owned(),
            writer: Mutex::new(writer),
            shared,
            cursor: Mutex::new(0),
            log_path,
        })
    }

    /// Sends bytes as typed.
    pub fn send(&self, bytes: &[u8]) -> Result<(), String> {
        let mut writer = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        writer
            .write_all(bytes)
            .and_then(|()| writer.flush())
            .map_err(|e| format!("{}: console write: {e}", self.name))
    }

    /// Sends a command line (terminated by carriage return, as a terminal does).
    pub fn send_line(&self, line: &str) -> Result<(), String> {
        self.send(format!("{line}\r").as_bytes())
    }

    /// Everything received so far, lossily decoded.
    pub fn transcript(&self) -> String {
        let (lock, _) = &*self.shared;
        let transcript = lock.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&transcript.bytes).into_owned()
    }

    /// Waits for a complete line containing `pattern` after the cursor; returns that line and
    /// moves the cursor past it.
    pub fn wait_for(&self, pattern: &str, timeout: Duration) -> Result<String, String> {
        let mut cursor = self.cursor.lock().unwrap_or_else(PoisonError::into_inner);
        let (line, end) = self.wait_from(*cursor, pattern, timeout)?;
        *cursor = end;
        Ok(line)
    }

    /// Like [`Console::wait_for`] but searches the whole transcript and leaves the cursor alone.
    pub fn wait_for_any_time(&self, pattern: &str, timeout: Duration) -> Result<String, String> {
        self.wait_from(0, pattern, timeout).map(|(line, _)| line)
    }

    /// A mark at the end of what has arrived, for [`Console::wait_for_since`].
    pub fn mark(&self) -> usize {
        let (lock, _) = &*self.shared;
        lock.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes
            .len()
    }

    /// Waits for a complete line containing `pattern` that arrived after `mark`, leaving the
    /// cursor alone: for events that follow one action in no order the box promises.
    pub fn wait_for_since(
        &self,
        mark: usize,
        pattern: &str,
        timeout: Duration,
    ) -> Result<String, String> {
        self.wait_from(mark, pattern, timeout).map(|(line, _)| line)
    }

    /// Moves the cursor to the end of what has arrived (ignore everything so far).
    pub fn skip_to_end(&self) {
        let (lock, _) = &*self.shared;
        let length = lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes
            .len();
        *self.cursor.lock().unwrap_or_else(PoisonError::into_inner) = length;
    }

    fn wait_from(
        &self,
        start: usize,
        pattern: &str,
        timeout: Duration,
    ) -> Result<(String, usize), String> {
        let deadline = Instant::now() + timeout;
        let (lock, wake) = &*self.shared;
        let mut transcript = lock.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(found) =
                find_line(transcript.bytes.get(start..).unwrap_or_default(), pattern)
            {
                return Ok((found.0, start + found.1));
            }
            let now = Instant::now();
            if transcript.closed || now >= deadline {
                let tail: String = String::from_utf8_lossy(&transcript.bytes)
                    .lines()
                    .rev()
                    .take(25)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                return Err(format!(
                    "{}: no line with `{pattern}` within {timeout:?}{}; console tail:\n{tail}",
                    self.name,
                    if transcript.closed {
                        " (console closed: box gone)"
                    } else {
                        ""
                    }
                ));
            }
            transcript = wake
                .wait_timeout(transcript, deadline - now)
                .map(|(guard, _)| guard)
                .unwrap_or_else(|e| e.into_inner().0);
        }
    }

    /// Raw bytes received from `offset` on, the new offset, and whether the console closed.
    pub fn bytes_since(&self, offset: usize) -> (Vec<u8>, usize, bool) {
        let (lock, _) = &*self.shared;
        let transcript = lock.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes = transcript.bytes.get(offset..).unwrap_or_default().to_vec();
        (bytes, transcript.bytes.len(), transcript.closed)
    }

    /// Whether qemu closed the console (the box is gone).
    pub fn is_closed(&self) -> bool {
        let (lock, _) = &*self.shared;
        lock.lock().unwrap_or_else(PoisonError::into_inner).closed
    }
}

impl std::fmt::Debug for Console {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Console")
            .field("name", &self.name)
            .field("log", &self.log_path)
            .finish()
    }
}

/// The first complete line in `bytes` containing `pattern`, and the offset just past it.
fn find_line(bytes: &[u8], pattern: &str) -> Option<(String, usize)> {
    let mut start = 0;
    while let Some(newline) = bytes.get(start..)?.iter().position(|b| *b == b'\n') {
        let end = start + newline + 1;
        let line = String::from_utf8_lossy(bytes.get(start..end)?);
        if line.contains(pattern) {
            return Some((line.trim_end().to_owned(), end));
        }
        start = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_complete_lines_match() {
        assert_eq!(
            find_line(b"a\nready 1\nb", "ready"),
            Some(("ready 1".into(), 10))
        );
        assert_eq!(find_line(b"a\nready 1", "ready"), None);
        assert_eq!(
            find_line(b"x\r\nready\r\n", "ready"),
            Some(("ready".into(), 10))
        );
    }
}
