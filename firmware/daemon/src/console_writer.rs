//! Console output that can never stall the daemon.
//!
//! The serial console drains about 11 KB/s, a pipe nobody reads does not drain at all, and an
//! operator's Ctrl-S stops a tty until Ctrl-Q. Writing to it synchronously from an engine or the
//! event loop would let any of these delay VRRP adverts past the partner's Master_Down_Interval.
//! So every byte for the console goes into a bounded queue that one writer thread drains with
//! blocking writes; when the queue is full a message is dropped whole and counted, and the
//! writer prints how much was lost once the console catches up. Callers never block beyond a
//! short mutex hold.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};

/// Bytes the queue holds before it drops: a full `log` dump (1024 lines) fits.
pub const QUEUE_BYTES: usize = 256 * 1024;

/// What was lost, for `status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    pub messages: u64,
    pub bytes: u64,
}

#[derive(Debug, Default)]
struct Queue {
    chunks: VecDeque<Vec<u8>>,
    bytes: usize,
    dropped: Dropped,
    /// Drops not yet reported on the console.
    unreported: Dropped,
    /// The writer thread holds a chunk it has not finished writing.
    writing: bool,
}

#[derive(Debug, Default)]
struct Shared {
    queue: Mutex<Queue>,
    ready: Condvar,
    /// The console UI owns the tty: writes are left to the log ring (not counted as drops).
    muted: std::sync::atomic::AtomicBool,
}

/// Cloneable handle to one bounded writer.
#[derive(Debug, Clone)]
pub struct ConsoleWriter {
    shared: Arc<Shared>,
    capacity: usize,
}

impl ConsoleWriter {
    /// Starts a writer thread that drains into `sink`. If the thread cannot start, writes are
    /// counted as dropped (the log ring still has every line).
    pub fn start(sink: Box<dyn Write + Send>, capacity: usize) -> ConsoleWriter {
        let writer = ConsoleWriter {
            shared: Arc::new(Shared::default()),
            capacity,
        };
        let shared = Arc::clone(&writer.shared);
        let _ = std::thread::Builder::new()
            .name("console-out".into())
            .spawn(move || drain(&shared, sink));
        writer
    }

    /// Queues `bytes` without blocking; false (and counted) when the queue has no room.
    pub fn write(&self, bytes: &[u8]) -> bool {
        if bytes.is_empty() || self.shared.muted.load(std::sync::atomic::Ordering::Relaxed) {
            return true;
        }
        let mut queue = self
            .shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if queue.bytes.saturating_add(bytes.len()) > self.capacity {
            let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
            let Queue {
                dropped,
                unreported,
                ..
            } = &mut *queue;
            for counter in [dropped, unreported] {
                counter.messages += 1;
                counter.bytes = counter.bytes.saturating_add(size);
            }
            return false;
        }
        queue.bytes += bytes.len();
        queue.chunks.push_back(bytes.to_vec());
        drop(queue);
        self.shared.ready.notify_one();
        true
    }

    /// While the console UI draws on the tty, nothing else may write to it (the log goes to
    /// the UI's log screen); muting waits (at most a second) for what is queued to go out.
    pub fn set_muted(&self, muted: bool) {
        if muted {
            self.drain(std::time::Duration::from_secs(1));
        }
        self.shared
            .muted
            .store(muted, std::sync::atomic::Ordering::Relaxed);
    }

    /// Everything dropped since start.
    pub fn dropped(&self) -> Dropped {
        self.shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .dropped
    }

    /// Waits (at most `timeout`) until everything queued has been written: the last lines
    /// before the process ends ("stopped", "powering off") must reach the console, but a stuck
    /// console must not hold up a reboot.
    pub fn drain(&self, timeout: std::time::Duration) {
        let until = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < until {
            {
                let queue = self
                    .shared
                    .queue
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                if queue.chunks.is_empty() && !queue.writing {
                    return;
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }
}

fn drain(shared: &Shared, mut sink: Box<dyn Write + Send>) {
    loop {
        let (chunk, notice) = {
            let mut queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
            while queue.chunks.is_empty() && queue.unreported.messages == 0 {
                queue = shared
                    .ready
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            let chunk = queue.chunks.pop_front();
            if let Some(chunk) = &chunk {
                queue.bytes = queue.bytes.saturating_sub(chunk.len());
            }
            queue.writing = true;
            // Report losses once the queue has drained, so the notice sits where they happened.
            let notice = (queue.chunks.is_empty() && queue.unreported.messages > 0)
                .then(|| std::mem::take(&mut queue.unreported));
            (chunk, notice)
        };
        if let Some(chunk) = chunk {
            let _ = sink.write_all(&chunk);
        }
        if let Some(lost) = notice {
            let _ = writeln!(
                sink,
                "[console: {} message(s), {} bytes dropped: the console could not keep up]",
                lost.messages, lost.bytes
            );
        }
        let _ = sink.flush();
        shared
            .queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .writing = false;
    }
}

/// The process's console (stdout): one writer for everything that prints.
pub fn console() -> &'static ConsoleWriter {
    static CONSOLE: OnceLock<ConsoleWriter> = OnceLock::new();
    CONSOLE.get_or_init(|| ConsoleWriter::start(Box::new(std::io::stdout()), QUEUE_BYTES))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    /// A sink that blocks until the test lets it go, then records what it got.
    struct Gate {
        open: mpsc::Receiver<()>,
        got: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Gate {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let _ = self.open.recv();
            self.got
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_console_never_blocks_the_writer_and_losses_are_counted_and_reported() {
        let (open, gate) = mpsc::channel();
        let got = Arc::new(Mutex::new(Vec::new()));
        let writer = ConsoleWriter::start(
            Box::new(Gate {
                open: gate,
                got: Arc::clone(&got),
            }),
            100,
        );
        let began = Instant::now();
        let mut accepted = 0;
        for _ in 0..1000 {
            if writer.write(&[b'x'; 40]) {
                accepted += 1;
            }
        }
        assert!(began.elapsed() < Duration::from_secs(1));
        // One chunk may be in the writer's hands, two more fit the 100-byte queue.
        assert!((2..=3).contains(&accepted), "accepted {accepted}");
        let dropped = writer.dropped();
        assert_eq!(dropped.messages, 1000 - accepted);
        assert_eq!(dropped.bytes, 40 * (1000 - accepted));
        for _ in 0..100 {
            let _ = open.send(());
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = String::from_utf8_lossy(&got.lock().unwrap()).into_owned();
            if text.contains("dropped: the console could not keep up") {
                assert!(
                    text.contains(&format!("{} message(s)", 1000 - accepted)),
                    "{text}"
                );
                assert_eq!(
                    text.matches('x').count(),
                    40 * usize::try_from(accepted).unwrap()
                );
                break;
            }
            assert!(Instant::now() < deadline, "no loss notice: {text}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
