//! The control socket: the console's command language over a unix socket, so `tandem status`,
//! `tandem vrrp status` and friends work against a running daemon (on the box or under
//! `tandem run` on a host).
//!
//! One request per connection: a single line (at most [`crate::console_reader::MAX_LINE`] bytes) in, the answer
//! text out, then the server closes. The daemon's event loop answers; this module only moves
//! bytes. A request that is too long or holds control characters is refused here, whole, and
//! counted ([`discarded`]): it never reaches the daemon, so nothing of it can run.

use std::path::Path;
use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use tokio::sync::{mpsc, oneshot, Semaphore};

/// Requests refused for their form (too long, control characters) since start.
static DISCARDED: AtomicU64 = AtomicU64::new(0);

/// How many requests were refused for their form.
pub fn discarded() -> u64 {
    DISCARDED.load(Ordering::Relaxed)
}

/// Where the appliance listens.
pub const APPLIANCE_SOCKET: &str = "/run/tandem/control.sock";

/// A request from a control client, with where its answer goes.
#[derive(Debug)]
pub struct ControlRequest {
    pub line: String,
    pub reply: oneshot::Sender<String>,
}

/// Connections served at once; more wait in the listen backlog.
const MAX_CLIENTS: u32 = 16;

/// The running listener; [`ControlServer::drain`] lets answers in flight reach their clients.
#[derive(Debug, Clone)]
pub struct ControlServer {
    clients: Arc<Semaphore>,
}

impl ControlServer {
    /// Waits (at most a second) until every connection being served has had its answer written.
    pub async fn drain(&self) {
        let _ = tokio::time::timeout(
            Duration::from_secs(1),
            self.clients.acquire_many(MAX_CLIENTS),
        )
        .await;
    }
}

/// Listens on `path` (replacing a stale socket) and forwards each request line to `requests`.
pub fn listen(
    path: &Path,
    requests: mpsc::Sender<ControlRequest>,
) -> std::io::Result<ControlServer> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    let server = ControlServer {
        clients: Arc::new(Semaphore::new(MAX_CLIENTS as usize)),
    };
    let clients = Arc::clone(&server.clients);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let Ok(permit) = Arc::clone(&clients).acquire_owned().await else {
                return;
            };
            let requests = requests.clone();
            tokio::spawn(async move {
                serve(stream, requests).await;
                drop(permit);
            });
        }
    });
    Ok(server)
}

async fn serve(stream: UnixStream, requests: mpsc::Sender<ControlRequest>) {
    use crate::console_reader::{ConsoleInput, LineAssembler};
    let (mut read, mut write) = stream.into_split();
    let mut assembler = LineAssembler::default();
    let mut assembled = Vec::new();
    let mut buffer = [0u8; 4096];
    let mut total = 0usize;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    // Read until the first line is complete; past the limit, keep reading (and dropping) up to
    // the newline so the refusal names the real length, within a bound of 16 MiB.
    while assembled.is_empty() {
        let n = match tokio::time::timeout_at(deadline, read.read(&mut buffer)).await {
            Ok(Ok(n)) => n,
            _ => return,
        };
        if n == 0 {
            // A last line without a newline is still a request.
            assembler.feed(b"\n", &mut assembled);
            break;
        }
        total += n;
        assembler.feed(buffer.get(..n).unwrap_or_default(), &mut assembled);
        if total > 16 << 20 {
            assembled.push(ConsoleInput::Discarded(
                crate::console_reader::Discard::TooLong { length: total },
            ));
        }
    }
    let line = match assembled.into_iter().next() {
        Some(ConsoleInput::Line(line)) if !line.trim().is_empty() || total > 0 => line,
        Some(ConsoleInput::Discarded(discard)) => {
            DISCARDED.fetch_add(1, Ordering::Relaxed);
            let _ = write.write_all(format!("{discard}\n").as_bytes()).await;
            let _ = write.shutdown().await;
            return;
        }
        _ => return,
    };
    let (reply, answer) = oneshot::channel();
    if requests.send(ControlRequest { line, reply }).await.is_err() {
        let _ = write.write_all(b"daemon is shutting down\n").await;
        return;
    }
    if let Ok(text) = answer.await {
        let _ = write.write_all(text.as_bytes()).await;
    }
    let _ = write.shutdown().await;
}

/// Client side: sends `line` to the daemon at `path` and returns its answer.
pub fn request(path: &Path, line: &str) -> Result<String, String> {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        format!(
            "cannot reach the tandem daemon at {}: {e}; is it running (`tandem run`)? \
             Name its socket with --control PATH",
            path.display()
        )
    })?;
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(format!("{line}\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("reading the answer: {e}"))?;
    Ok(answer)
}
