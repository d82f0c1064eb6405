//! The appliance log: every line goes to the console (through the bounded, never-blocking
//! [`crate::console_writer`]) and into a bounded in-memory ring.
//!
//! There is no disk to log to, so the ring is what the `log` console command and, later, the
//! TUI and the peer show. Timestamps are seconds of CLOCK_BOOTTIME, like the kernel's own lines,
//! so Tandem's messages interleave readably with kernel messages on the console.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use nix::time::{clock_gettime, ClockId};

/// Lines the ring keeps; older ones are dropped first.
pub const RING_LINES: usize = 1024;

/// Cloneable handle to the log.
#[derive(Debug, Clone, Default)]
pub struct Log {
    ring: Arc<Mutex<VecDeque<String>>>,
}

/// Seconds since the kernel booted (CLOCK_BOOTTIME), 0.0 if the clock is unreadable.
pub fn boot_seconds() -> f64 {
    clock_gettime(ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_sec() as f64 + f64::from(u32::try_from(t.tv_nsec()).unwrap_or(0)) / 1e9)
        .unwrap_or(0.0)
}

impl Log {
    /// Logs one line: `[  12.345] tandem: <message>`.
    pub fn line(&self, message: impl AsRef<str>) {
        let line = format!("[{:>9.3}] tandem: {}", boot_seconds(), message.as_ref());
        // Never blocks: a slow or stopped console drops (and counts) instead; the ring keeps all.
        crate::console_writer::console().write(format!("{line}\n").as_bytes());
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        if ring.len() == RING_LINES {
            ring.pop_front();
        }
        ring.push_back(line);
    }

    /// A copy of the ring, oldest first.
    pub fn lines(&self) -> Vec<String> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_keeps_the_newest_lines() {
        let log = Log::default();
        for i in 0..RING_LINES + 5 {
            log.line(format!("line {i}"));
        }
        let lines = log.lines();
        assert_eq!(lines.len(), RING_LINES);
        assert!(lines[0].ends_with("tandem: line 5"), "{}", lines[0]);
        assert!(lines
            .last()
            .unwrap()
            .ends_with(&format!("line {}", RING_LINES + 4)));
    }
}
