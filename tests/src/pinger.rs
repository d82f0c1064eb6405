//! An ICMP echo every millisecond from inside a namespace, with every reply's arrival time:
//! what "loses 0 pings" and failover gaps are measured with.
//!
//! Not iputils ping: while replies are missing it sleeps 10 ms between probes (MININTERVAL
//! when packets are in flight), which quantizes every gap to 10 ms steps. This prober sends
//! from a raw socket on a thread inside the namespace, non-blocking with 100 us polls
//! (SO_RCVTIMEO counts in jiffies and would space the probes out exactly while replies are
//! missing), and matches replies by identifier and sequence number.

use std::io::Read;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::netns::Netns;

/// Time between two probes.
pub const PROBE_EVERY: Duration = Duration::from_millis(1);
/// How often the prober looks for replies (the timestamps' resolution).
const POLL_EVERY: Duration = Duration::from_micros(100);
/// How long a probe may take to be answered before it counts as lost (at stop).
const LATE: Duration = Duration::from_millis(300);

/// What the prober saw.
#[derive(Debug, Default)]
struct Record {
    /// Send time of each probe, by sequence number (index = sequence - 1).
    sent: Vec<f64>,
    /// Arrival time of each reply, with its sequence number.
    replies: Vec<(u64, f64)>,
}

/// The result once stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct PingReport {
    pub sent: u64,
    pub answered: u64,
    /// Probes without a reply (the last [`LATE`] of probes are not counted).
    pub lost: u64,
    /// Longest time between two consecutive replies.
    pub longest_gap: Duration,
}

/// A running prober.
#[derive(Debug)]
pub struct Pinger {
    stop: Arc<AtomicBool>,
    record: Arc<Mutex<Record>>,
    thread: Option<std::thread::JoinHandle<Result<Result<(), String>, String>>>,
}

/// Seconds since the epoch (the reply timestamps; comparable across processes' logs).
pub fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Pinger {
    /// Starts probing `target` from inside `client`.
    pub fn start(client: &Netns, target: Ipv4Addr) -> Result<Pinger, String> {
        Pinger::start_in(&client.name, target)
    }

    /// Starts probing `target` from inside the namespace called `netns` (a lab client's).
    pub fn start_in(netns: &str, target: Ipv4Addr) -> Result<Pinger, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let record = Arc::new(Mutex::new(Record::default()));
        let (stop_flag, sink) = (Arc::clone(&stop), Arc::clone(&record));
        let thread = crate::netns::spawn_in(netns, move || probe_loop(target, &stop_flag, &sink))?;
        Ok(Pinger {
            stop,
            record,
            thread: Some(thread),
        })
    }

    /// Waits until a reply arrives that was sent after `after` (unix seconds).
    pub fn wait_reply_after(&self, after: f64, limit: Duration) -> bool {
        let started = Instant::now();
        while started.elapsed() < limit {
            if self.replies().iter().any(|t| *t > after) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Arrival times of every reply so far.
    pub fn replies(&self) -> Vec<f64> {
        let record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        record.replies.iter().map(|(_, t)| *t).collect()
    }

    /// The longest time without replies from `since` to the last reply.
    pub fn longest_gap_since(&self, since: f64) -> Duration {
        let replies = self.replies();
        let before = replies.iter().copied().rfind(|t| *t <= since);
        let mut previous = before.unwrap_or(since);
        let mut longest: f64 = 0.0;
        for t in replies.iter().copied().filter(|t| *t > since) {
            longest = longest.max(t - previous);
            previous = t;
        }
        Duration::from_secs_f64(longest)
    }

    /// Stops probing, waits for late replies, and reports.
    pub fn stop(mut self) -> Result<PingReport, String> {
        let stopped_at = now_unix();
        std::thread::sleep(LATE);
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread
                .join()
                .map_err(|_| "prober panicked".to_owned())??
                .map_err(|e| format!("prober: {e}"))?;
        }
        let record = self.record.lock().unwrap_or_else(PoisonError::into_inner);
        let counted: Vec<u64> = record
            .sent
            .iter()
            .enumerate()
            .filter(|(_, at)| **at <= stopped_at)
            .map(|(index, _)| u64::try_from(index).unwrap_or(u64::MAX) + 1)
            .collect();
        let mut answered_sequences: Vec<u64> = record.replies.iter().map(|(s, _)| *s).collect();
        answered_sequences.sort_unstable();
        answered_sequences.dedup();
        let answered = counted
            .iter()
            .filter(|s| answered_sequences.binary_search(s).is_ok())
            .count();
        let mut longest: f64 = 0.0;
        for pair in record.replies.windows(2) {
            longest = longest.max(pair[1].1 - pair[0].1);
        }
        let sent = u64::try_from(counted.len()).unwrap_or(u64::MAX);
        let answered = u64::try_from(answered).unwrap_or(u64::MAX);
        Ok(PingReport {
            sent,
            answered,
            lost: sent - answered,
            longest_gap: Duration::from_secs_f64(longest),
        })
    }
}

impl Drop for Pinger {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Sends an echo request every [`PROBE_EVERY`] and records each matching reply's arrival.
fn probe_loop(target: Ipv4Addr, stop: &AtomicBool, record: &Mutex<Record>) -> Result<(), String> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))
        .map_err(|e| format!("raw ICMP socket: {e}"))?;
    socket.set_nonblocking(true).map_err(|e| e.to_string())?;
    let to = SockAddr::from(std::net::SocketAddrV4::new(target, 0));
    let id = u16::try_from(std::process::id() & 0xffff).unwrap_or(1);
    let mut sequence: u64 = 0;
    let mut next = Instant::now();
    let mut buffer = [0u8; 1500];
    while !stop.load(Ordering::Relaxed) {
        if Instant::now() >= next {
            sequence += 1;
            let wire_sequence = u16::try_from(sequence & 0xffff).unwrap_or(0);
            let mut echo = [0u8; 16];
            echo[0] = 8; // echo request
            echo[4..6].copy_from_slice(&id.to_be_bytes());
            echo[6..8].copy_from_slice(&wire_sequence.to_be_bytes());
            // The full sequence number rides in the payload: the 16-bit field wraps in 65 s.
            echo[8..16].copy_from_slice(&sequence.to_be_bytes());
            let sum = internet_checksum(&echo);
            echo[2..4].copy_from_slice(&sum.to_be_bytes());
            record
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .sent
                .push(now_unix());
            let _ = socket.send_to(&echo, &to);
            next += PROBE_EVERY;
        }
        let Ok(len) = (&socket).read(&mut buffer) else {
            std::thread::sleep(POLL_EVERY);
            continue;
        };
        let arrived = now_unix();
        let packet = buffer.get(..len).unwrap_or_default();
        let header = usize::from(packet.first().copied().unwrap_or(0) & 0x0f) * 4;
        let icmp = packet.get(header..).unwrap_or_default();
        if icmp.len() >= 16 && icmp[0] == 0 && icmp[4..6] == id.to_be_bytes() {
            let mut full = [0u8; 8];
            full.copy_from_slice(&icmp[8..16]);
            record
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .replies
                .push((u64::from_be_bytes(full), arrived));
        }
    }
    Ok(())
}

/// RFC 1071 checksum.
fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|pair| {
            u32::from(u16::from_be_bytes([
                pair.first().copied().unwrap_or(0),
                pair.get(1).copied().unwrap_or(0),
            ]))
        })
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap_or(0)
}
