//! The appliance log: every line goes to the console (through the bounded, never-blocking
//! [`crate::console_writer`]) and into a bounded in-memory ring.
//!
//! There is no disk to log to, so the ring is what the `log` console command, the console UI
//! and the remote syslog forwarder ([`crate::syslog`]) read. Each line keeps its time since
//! boot (CLOCK_BOOTTIME, like the kernel's own lines, so Tandem's messages interleave readably
//! with kernel messages on the console), its wall-clock time when SNTP vouches for the clock
//! ([`crate::wallclock`]; the line then shows it after the boot seconds), and a syslog severity:
//! the one the caller gave ([`Log::at`]) or, for the plain [`Log::line`] most code calls, the one
//! [`Severity::of`] reads off the text (takeovers and failures warning, errors error, state
//! changes notice, the rest info), decided by the reader, not on the writer's path.
//!
//! **The writer stays cheap**: the VRRP thread logs its transitions here. A line costs its
//! formatting, a non-blocking console write, a short mutex hold to push an `Arc` into the ring,
//! and a `Notify::notify_one` per subscriber (an atomic store when the subscriber is not
//! waiting). Readers copy `Arc`s out under the same short hold and do everything else on their
//! own threads. **Subscribers** ([`Log::subscribe`]) each keep a cursor into the ring; one that
//! falls more than [`RING_LINES`] behind loses the overwritten lines, and is told how many.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nix::time::{clock_gettime, ClockId};
use tokio::sync::Notify;

use crate::wallclock::Rfc3339;

/// Lines the ring keeps; older ones are dropped first.
pub const RING_LINES: usize = 1024;

/// The syslog severities (RFC 5424 section 6.2.1) the box uses, most severe first; the
/// discriminant is the code. (Nothing on the box is an emergency (0) or an alert (1).)
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Critical = 2,
    Error = 3,
    Warning = 4,
    Notice = 5,
    Info = 6,
    Debug = 7,
}

impl Severity {
    /// The numeric code (0..=7).
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The severity of a line logged without one, read off its text: a panic is critical;
    /// `error:` and `warning:` lines are what they say; a VRRP instance going to FAULT, and
    /// things that cannot be done or that the kernel refused are errors; takeovers (`-> MASTER`, `took over`),
    /// a partner lost or unreachable, failures, drops, splits and an unsynchronised clock are
    /// warnings; other state changes (`A -> B`), config applies, power actions and clock steps
    /// are notices; everything else is info.
    pub fn of(text: &str) -> Severity {
        const ERRORS: [&str; 4] = [": error:", "-> FAULT", "cannot ", "kernel refused"];
        const WARNINGS: [&str; 12] = [
            "-> MASTER",
            "took over",
            "takeover",
            " lost",
            "unreachable",
            "failed",
            "dropped",
            "split",
            "missing",
            "not synchronised",
            "no answer",
            "silent",
        ];
        const NOTICES: [&str; 5] = [" -> ", "powering off", "rebooting", "stepped", "applied"];
        if text.starts_with("PANIC") {
            Severity::Critical
        } else if text.starts_with("error:") {
            Severity::Error
        } else if text.starts_with("warning:") {
            Severity::Warning
        } else if ERRORS.iter().any(|e| text.contains(e)) {
            Severity::Error
        } else if WARNINGS.iter().any(|w| text.contains(w)) {
            Severity::Warning
        } else if text.starts_with("config:") || NOTICES.iter().any(|n| text.contains(n)) {
            Severity::Notice
        } else {
            Severity::Info
        }
    }
}

/// One logged line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its place in the log: 0 for the first line since start, one more for each.
    pub seq: u64,
    /// Time since boot (CLOCK_BOOTTIME).
    pub boot: Duration,
    /// Wall-clock time since the Unix epoch, when SNTP vouched for the clock then.
    pub wall: Option<Duration>,
    /// The severity the caller gave (None: read off the text, [`Severity::of`]).
    pub given: Option<Severity>,
    /// The message, without the stamps.
    pub text: String,
}

impl Entry {
    /// The line's severity.
    pub fn severity(&self) -> Severity {
        self.given.unwrap_or_else(|| Severity::of(&self.text))
    }

    /// The line as the console and `log` show it: `[  12.345] tandem: <message>`, with the
    /// wall-clock time when known: `[  12.345] 2026-12-03T11:01:02.123Z tandem: <message>`.
    pub fn render(&self) -> String {
        render(self.boot, self.wall, &self.text)
    }
}

fn render(boot: Duration, wall: Option<Duration>, text: &str) -> String {
    let boot = boot.as_secs_f64();
    match wall {
        Some(since_epoch) => format!(
            "[{boot:>9.3}] {} tandem: {text}",
            Rfc3339 {
                since_epoch,
                digits: 3
            }
        ),
        None => format!("[{boot:>9.3}] tandem: {text}"),
    }
}

/// The ring and who reads it.
#[derive(Debug, Default)]
struct Ring {
    entries: VecDeque<Arc<Entry>>,
    /// The seq of the next line.
    next_seq: u64,
    /// Woken after every line.
    subscribers: Vec<Arc<Notify>>,
}

impl Ring {
    /// The seq of the oldest line kept (the next line's when empty).
    fn first_seq(&self) -> u64 {
        self.entries.front().map_or(self.next_seq, |e| e.seq)
    }
}

/// Cloneable handle to the log.
#[derive(Debug, Clone, Default)]
pub struct Log {
    ring: Arc<Mutex<Ring>>,
}

/// Time since the kernel booted (CLOCK_BOOTTIME), zero if the clock is unreadable.
pub fn boot_time() -> Duration {
    clock_gettime(ClockId::CLOCK_BOOTTIME)
        .ok()
        .and_then(|t| {
            Some(Duration::new(
                u64::try_from(t.tv_sec()).ok()?,
                u32::try_from(t.tv_nsec()).ok()?,
            ))
        })
        .unwrap_or_default()
}

/// Seconds since the kernel booted (CLOCK_BOOTTIME), 0.0 if the clock is unreadable.
pub fn boot_seconds() -> f64 {
    boot_time().as_secs_f64()
}

/// Where a new subscription starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The oldest line the ring still keeps (a reader that wants the boot log).
    Oldest,
    /// The next line logged.
    Next,
}

impl Log {
    /// Logs one line, its severity read off its text ([`Severity::of`]).
    pub fn line(&self, message: impl AsRef<str>) {
        self.push(None, message.as_ref());
    }

    /// Logs one line with `severity`.
    pub fn at(&self, severity: Severity, message: impl AsRef<str>) {
        self.push(Some(severity), message.as_ref());
    }

    fn push(&self, given: Option<Severity>, text: &str) {
        let boot = boot_time();
        let wall = crate::wallclock::synced_now();
        let mut line = render(boot, wall, text);
        line.push('\n');
        // Never blocks: a slow or stopped console drops (and counts) instead; the ring keeps all.
        crate::console_writer::console().write(line.as_bytes());
        let mut entry = Entry {
            seq: 0,
            boot,
            wall,
            given,
            text: text.to_owned(),
        };
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        entry.seq = ring.next_seq;
        ring.next_seq += 1;
        if ring.entries.len() == RING_LINES {
            ring.entries.pop_front();
        }
        ring.entries.push_back(Arc::new(entry));
        for subscriber in &ring.subscribers {
            subscriber.notify_one();
        }
    }

    /// A copy of the ring, oldest first, each line as the console showed it.
    pub fn lines(&self) -> Vec<String> {
        self.entries().iter().map(|e| e.render()).collect()
    }

    /// The ring's lines, oldest first.
    pub fn entries(&self) -> Vec<Arc<Entry>> {
        let ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.entries.iter().cloned().collect()
    }

    /// A reader of the lines from `from` on, woken after every line.
    pub fn subscribe(&self, from: Start) -> Subscription {
        let notify = Arc::new(Notify::new());
        let mut ring = self.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.subscribers.push(Arc::clone(&notify));
        let next = match from {
            Start::Oldest => ring.first_seq(),
            Start::Next => ring.next_seq,
        };
        Subscription {
            log: self.clone(),
            notify,
            next,
        }
    }
}

/// One reader's cursor into the ring (see [`Log::subscribe`]); it stops being woken when
/// dropped.
#[derive(Debug)]
pub struct Subscription {
    log: Log,
    notify: Arc<Notify>,
    /// The seq of the next line to read.
    next: u64,
}

impl Subscription {
    /// Moves up to `max` lines after the cursor into `out`; returns how many lines were
    /// overwritten in the ring before this reader got them (lost to it).
    pub fn take(&mut self, max: usize, out: &mut Vec<Arc<Entry>>) -> u64 {
        let ring = self.log.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let first = ring.first_seq();
        let missed = first.saturating_sub(self.next);
        self.next = self.next.max(first);
        let skip = usize::try_from(self.next - first).unwrap_or(usize::MAX);
        let before = out.len();
        out.extend(ring.entries.iter().skip(skip).take(max).cloned());
        self.next += u64::try_from(out.len() - before).unwrap_or(0);
        missed
    }

    /// Moves the cursor past the lines the ring overwrote before this reader took them;
    /// returns how many that was (lost to it). The lines still kept stay to be taken.
    pub fn skip_overwritten(&mut self) -> u64 {
        let ring = self.log.ring.lock().unwrap_or_else(PoisonError::into_inner);
        let first = ring.first_seq();
        let missed = first.saturating_sub(self.next);
        self.next = self.next.max(first);
        missed
    }

    /// Lines logged and not yet taken.
    pub fn pending(&self) -> u64 {
        let ring = self.log.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.next_seq.saturating_sub(self.next)
    }

    /// Waits until a line was logged since the last wait (returns at once if one was).
    pub async fn wait(&self) {
        self.notify.notified().await;
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let mut ring = self.log.ring.lock().unwrap_or_else(PoisonError::into_inner);
        ring.subscribers.retain(|s| !Arc::ptr_eq(s, &self.notify));
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
        assert_eq!(log.entries()[0].seq, 5);
    }

    #[test]
    fn lines_show_the_wall_clock_only_when_known() {
        let boot = Duration::from_millis(12_345);
        assert_eq!(render(boot, None, "ready"), "[   12.345] tandem: ready");
        assert_eq!(
            render(
                boot,
                Some(Duration::new(1_796_295_662, 250_000_000)),
                "ready"
            ),
            "[   12.345] 2026-12-03T11:01:02.250Z tandem: ready"
        );
    }

    #[test]
    fn severities_follow_what_the_line_says() {
        for (text, severity) in [
            (
                "PANIC in thread vrrp at x.rs:1: boom; rebooting cleanly",
                Severity::Critical,
            ),
            (
                "error: no netlink; no config can be applied",
                Severity::Error,
            ),
            (
                "lvs: cannot start the engine thread: out of memory",
                Severity::Error,
            ),
            ("vrrp: web: BACKUP -> FAULT: public down", Severity::Error),
            ("lvs: kernel refused ADD_DEST 10.0.0.1:80", Severity::Error),
            (
                "vrrp: web: BACKUP -> MASTER: master silent",
                Severity::Warning,
            ),
            (
                "pair heartbeat: partner lost on peer (silent 30 ms); probing it",
                Severity::Warning,
            ),
            ("peer: unreachable after 3 missed probes", Severity::Warning),
            (
                "lvs: web: 10.0.0.1:80 failed: down (connection refused)",
                Severity::Warning,
            ),
            (
                "lvs: web: 10.0.0.1:80 failed: down (timeout)",
                Severity::Warning,
            ),
            (
                "warning: cannot set hostname box-a: EPERM",
                Severity::Warning,
            ),
            ("warning: no link notifications", Severity::Warning),
            ("vrrp: web: INIT -> BACKUP: started", Severity::Notice),
            ("config: generation 3 applied", Severity::Notice),
            ("time: clock stepped by +3600.000 s", Severity::Notice),
            (
                "metrics: serving http://0.0.0.0:9100/metrics",
                Severity::Info,
            ),
            ("tandem 0.1.0 starting as /init", Severity::Info),
        ] {
            assert_eq!(Severity::of(text), severity, "{text}");
        }
        let log = Log::default();
        log.at(Severity::Debug, "vrrp: web: BACKUP -> MASTER");
        assert_eq!(log.entries()[0].severity(), Severity::Debug);
        assert_eq!(Severity::Warning.code(), 4);
    }

    #[test]
    fn a_subscriber_reads_each_line_once_and_counts_what_it_missed() {
        let log = Log::default();
        log.line("before");
        let mut oldest = log.subscribe(Start::Oldest);
        let mut next = log.subscribe(Start::Next);
        log.line("after");
        let mut out = Vec::new();
        assert_eq!(oldest.take(10, &mut out), 0);
        let texts: Vec<&str> = out.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["before", "after"]);
        out.clear();
        assert_eq!(next.take(10, &mut out), 0);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].text, "after");
        out.clear();
        assert_eq!(next.take(10, &mut out), 0);
        assert!(out.is_empty());
        // Falling behind by more than the ring loses the oldest lines, counted.
        for i in 0..RING_LINES + 10 {
            log.line(format!("flood {i}"));
        }
        assert_eq!(next.pending(), (RING_LINES + 10) as u64);
        assert_eq!(next.take(4, &mut out), 10);
        assert_eq!(out[0].text, "flood 10");
        assert_eq!(out.len(), 4);
        assert_eq!(next.pending(), (RING_LINES - 4) as u64);
        drop(oldest);
        drop(next);
        assert!(log.ring.lock().unwrap().subscribers.is_empty());
    }

    #[tokio::test]
    async fn a_subscriber_is_woken_by_a_line_logged_before_it_waits() {
        let log = Log::default();
        let subscription = log.subscribe(Start::Next);
        log.line("one");
        tokio::time::timeout(Duration::from_secs(1), subscription.wait())
            .await
            .expect("the line's wake-up was lost");
        let writer = log.clone();
        let waiting = tokio::spawn(async move { subscription.wait().await });
        tokio::task::yield_now().await;
        std::thread::spawn(move || writer.line("from another thread"))
            .join()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("not woken")
            .unwrap();
    }
}
