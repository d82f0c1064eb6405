//! Remote syslog: every line of the log ring forwarded to each server of `management.syslog`
//! as RFC 5424 ([`format`]), over UDP (RFC 5426, one message per datagram) or TCP (RFC 6587
//! octet counting, reconnecting with a backoff of [`BACKOFF_FIRST`] doubling to
//! [`BACKOFF_MAX`]).
//!
//! It runs on a thread and runtime of its own: the VRRP thread, or any other, only logs (see
//! [`crate::logring`] for what that costs it). Each target is a task with its own cursor into
//! the ring ([`crate::logring::Subscription`]): **the ring is each target's bounded queue**.
//! A target that is down or slow falls behind; once it is more than [`RING_LINES`] lines
//! behind, the lines overwritten before it sent them are dropped and counted (`queue_full`),
//! and a TCP server that comes back gets the last [`RING_LINES`] lines it missed. So no
//! target ever blocks a writer, and the forwarder holds no copy of any line: memory is the
//! ring's, plus one message buffer per target (at most [`format::TCP_MAX`] octets times
//! [`BATCH`] for TCP).
//!
//! Counting: a line is `sent` once the kernel took it (a UDP datagram sent, a TCP write
//! done: TCP has no application acknowledgement, so lines written just before a connection
//! breaks are counted sent and lost with it); `send_failed` when the kernel refused it (a UDP
//! port unreachable comes back as ECONNREFUSED on the next send, which is then refused; no
//! route; a TCP write that failed or stalled for [`WRITE_TIMEOUT`], whose batch is dropped and
//! the connection re-made).
//!
//! It follows commits ([`SyslogHandle::follow`]): a target kept across a commit (same address
//! and transport) keeps its cursor and counters and takes a new facility or hostname at once;
//! a removed one stops; an added one starts at the next line. The targets of the first
//! settings (the config the box booted with) start at the oldest line the ring keeps, so the
//! boot log reaches the server once the management network is up.

pub mod format;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tandem_config::model::{SyslogFacility, SyslogTarget, SyslogTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::logring::{Entry, Log, Severity, Start, Subscription, RING_LINES};
use crate::metrics::{Families, Family, Labels};

/// Lines taken from the ring at a time (one TCP write).
pub const BATCH: usize = 64;
/// The first wait before reconnecting to a TCP server.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between reconnects.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// How long a TCP connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a TCP write may stall before the connection is re-made.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a UDP target shows its last refusal after datagrams go out again: the kernel
/// reports a port unreachable on one send in many (ICMP is rate-limited), so the sends between
/// two refusals succeed without anyone receiving them.
pub const FAILING_SHOWN: Duration = Duration::from_secs(10);

/// What the forwarder needs from the running config.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    /// The box's name (the HOSTNAME field).
    pub hostname: String,
    /// `management.syslog`.
    pub targets: Vec<SyslogTarget>,
}

/// The reconnect delays of a TCP target: [`BACKOFF_FIRST`] after the first failure, doubling
/// to [`BACKOFF_MAX`]; a connection that came up starts again from the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: BACKOFF_FIRST,
        }
    }
}

impl Backoff {
    /// The delay before the next attempt (and the one after it doubles).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        delay
    }

    /// A connection came up.
    pub fn reset(&mut self) {
        self.next = BACKOFF_FIRST;
    }
}

/// Where a target is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// UDP: nothing sent yet, or the last datagram went out.
    Ready,
    /// UDP: a datagram was refused at `at` (shown for [`FAILING_SHOWN`]).
    Failing { error: String, at: Instant },
    /// TCP: connecting.
    Connecting,
    /// TCP: connected.
    Connected,
    /// TCP: not connected; the next attempt is at `retry`.
    Down { error: String, retry: Instant },
}

/// One target's counters and state, shared by its task, `status` and the metrics.
#[derive(Debug)]
struct Shared {
    target: Mutex<SyslogTarget>,
    sent: AtomicU64,
    /// Overwritten in the ring before they were sent.
    queue_full: AtomicU64,
    /// Refused by the kernel, or lost with a failed TCP write.
    send_failed: AtomicU64,
    /// Lines logged and not yet sent (at most [`RING_LINES`] count).
    queued: AtomicU64,
    state: Mutex<State>,
}

impl Shared {
    fn new(target: SyslogTarget) -> Shared {
        let state = match target.transport {
            SyslogTransport::Udp => State::Ready,
            SyslogTransport::Tcp => State::Connecting,
        };
        Shared {
            target: Mutex::new(target),
            sent: AtomicU64::new(0),
            queue_full: AtomicU64::new(0),
            send_failed: AtomicU64::new(0),
            queued: AtomicU64::new(0),
            state: Mutex::new(state),
        }
    }

    fn target(&self) -> SyslogTarget {
        self.target
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_state(&self, state: State) {
        *self.state.lock().unwrap_or_else(PoisonError::into_inner) = state;
    }

    /// A UDP datagram went out: ready, unless a refusal is still to be shown.
    fn sent_udp(&self, now: Instant) {
        Shared::add(&self.sent, 1);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !matches!(*state, State::Failing { at, .. } if now.saturating_duration_since(at) < FAILING_SHOWN)
        {
            *state = State::Ready;
        }
    }

    fn state(&self) -> State {
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn add(counter: &AtomicU64, count: u64) {
        counter.fetch_add(count, Ordering::Relaxed);
    }

    fn dropped(&self) -> u64 {
        self.queue_full.load(Ordering::Relaxed) + self.send_failed.load(Ordering::Relaxed)
    }

    /// The `target` label: `udp://192.0.2.5:514`.
    fn label(&self) -> String {
        label(&self.target())
    }

    /// The target's `status:` fact.
    fn status_line(&self, now: Instant) -> String {
        let target = self.target();
        let state = match self.state() {
            State::Ready => "ready".to_owned(),
            State::Failing { error, at } => format!(
                "sending fails: {error} ({} s ago)",
                now.saturating_duration_since(at).as_secs()
            ),
            State::Connecting => "connecting".to_owned(),
            State::Connected => "connected".to_owned(),
            State::Down { error, retry } => format!(
                "down: {error}; next try in {} s",
                retry.saturating_duration_since(now).as_secs()
            ),
        };
        let dropped = match self.dropped() {
            0 => "dropped=0".to_owned(),
            dropped => format!(
                "dropped={dropped} (queue_full={} send_failed={})",
                self.queue_full.load(Ordering::Relaxed),
                self.send_failed.load(Ordering::Relaxed)
            ),
        };
        let queued = match self.queued.load(Ordering::Relaxed).min(RING_LINES as u64) {
            0 => String::new(),
            queued => format!(" queued={queued}"),
        };
        format!(
            "syslog {} {} facility={} sent={} {dropped}{queued} {state}",
            target.transport.as_str(),
            target.address,
            facility_name(target.facility),
            self.sent.load(Ordering::Relaxed),
        )
    }
}

fn label(target: &SyslogTarget) -> String {
    format!("{}://{}", target.transport.as_str(), target.address)
}

/// The facility's lowercase name, as the config text writes it.
fn facility_name(facility: SyslogFacility) -> &'static str {
    const NAMES: [&str; 24] = [
        "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron",
        "authpriv", "ftp", "ntp", "security", "console", "clock", "local0", "local1", "local2",
        "local3", "local4", "local5", "local6", "local7",
    ];
    NAMES
        .get(usize::from(facility.code()))
        .copied()
        .unwrap_or("?")
}

/// The daemon's end of the forwarder.
#[derive(Debug, Clone)]
pub struct SyslogHandle {
    settings: Arc<watch::Sender<Settings>>,
    /// The running targets, in config order.
    board: Arc<Mutex<Vec<Arc<Shared>>>>,
}

impl SyslogHandle {
    /// Forwards as `settings` say from now on; the same settings again change nothing.
    pub fn follow(&self, settings: Settings) {
        self.settings.send_if_modified(|now| {
            let changed = *now != settings;
            *now = settings;
            changed
        });
    }

    fn targets(&self) -> Vec<Arc<Shared>> {
        self.board
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The `status:` facts: one per target, or `syslog off`.
    pub fn status_lines(&self) -> Vec<String> {
        let now = Instant::now();
        let targets = self.targets();
        if targets.is_empty() {
            return vec!["syslog off (no management.syslog servers)".to_owned()];
        }
        targets.iter().map(|t| t.status_line(now)).collect()
    }

    /// The forwarder's families: lines sent and dropped per target, and whether it is up.
    pub fn metrics(&self) -> Families {
        let mut families = Families::new();
        let mut sent = Family::counter(
            "tandem_syslog_lines_sent_total",
            "Log lines the kernel took for each remote syslog server (a UDP datagram sent, a TCP write done).",
        );
        let mut dropped = Family::counter(
            "tandem_syslog_lines_dropped_total",
            "Log lines not sent to a remote syslog server: queue_full (overwritten in the 1024-line log ring while the server was down or slow), send_failed (refused by the kernel: port unreachable, no route; or lost with a failed TCP write).",
        );
        let mut up = Family::gauge(
            "tandem_syslog_target_up",
            "1 while a syslog server takes lines (UDP: no datagram refused in the last 10 s; TCP: connected).",
        );
        for target in self.targets() {
            let labels = Labels::of(&[("target", &target.label())]);
            sent.add(labels.clone(), target.sent.load(Ordering::Relaxed));
            dropped.add_each(
                &labels,
                "reason",
                [
                    ("queue_full", target.queue_full.load(Ordering::Relaxed)),
                    ("send_failed", target.send_failed.load(Ordering::Relaxed)),
                ],
            );
            up.add(
                labels,
                matches!(target.state(), State::Ready | State::Connected),
            );
        }
        families.push(sent);
        families.push(dropped);
        families.push(up);
        families
    }
}

/// Starts the forwarder's thread with `settings` (the config the box booted with: its targets
/// get the ring's oldest lines too).
pub fn spawn(log: Log, settings: Settings) -> Option<SyslogHandle> {
    let (sender, wanted) = watch::channel(settings);
    let board = Arc::new(Mutex::new(Vec::new()));
    let thread_board = Arc::clone(&board);
    let thread_log = log.clone();
    let spawned = std::thread::Builder::new()
        .name("syslog".to_owned())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(run(thread_log, wanted, thread_board)),
                Err(error) => thread_log.line(format!(
                    "syslog: cannot start the forwarder's runtime: {error}; no lines are forwarded"
                )),
            }
        });
    if let Err(error) = spawned {
        log.line(format!(
            "syslog: cannot start the forwarder's thread: {error}; no lines are forwarded"
        ));
        return None;
    }
    Some(SyslogHandle {
        settings: Arc::new(sender),
        board,
    })
}

/// A running target.
#[derive(Debug)]
struct Running {
    shared: Arc<Shared>,
    /// The hostname and facility the task formats with.
    format: watch::Sender<(Arc<str>, SyslogFacility)>,
    task: JoinHandle<()>,
}

/// Follows the wanted settings: starts, keeps and stops the targets' tasks.
async fn run(log: Log, mut wanted: watch::Receiver<Settings>, board: Arc<Mutex<Vec<Arc<Shared>>>>) {
    let mut running: Vec<Running> = Vec::new();
    let mut start = Start::Oldest;
    loop {
        let settings = wanted.borrow_and_update().clone();
        let hostname: Arc<str> = Arc::from(format::hostname_field(&settings.hostname));
        let mut next: Vec<Running> = Vec::with_capacity(settings.targets.len());
        for target in &settings.targets {
            let same = |r: &Running| {
                let kept = r.shared.target();
                kept.address == target.address && kept.transport == target.transport
            };
            if let Some(at) = running.iter().position(same) {
                let kept = running.swap_remove(at);
                let old = std::mem::replace(
                    &mut *kept
                        .shared
                        .target
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner),
                    target.clone(),
                );
                kept.format
                    .send_replace((Arc::clone(&hostname), target.facility));
                if old.facility != target.facility {
                    // Logged after the change: this line already goes with the new facility.
                    log.at(
                        Severity::Info,
                        format!(
                            "syslog: {}: facility {} from now on",
                            label(target),
                            facility_name(target.facility)
                        ),
                    );
                }
                next.push(kept);
                continue;
            }
            let shared = Arc::new(Shared::new(target.clone()));
            let (format, formats) = watch::channel((Arc::clone(&hostname), target.facility));
            let subscription = log.subscribe(start);
            let task = match target.transport {
                SyslogTransport::Udp => tokio::spawn(udp(
                    target.address,
                    Arc::clone(&shared),
                    formats,
                    subscription,
                )),
                SyslogTransport::Tcp => tokio::spawn(tcp(
                    target.address,
                    Arc::clone(&shared),
                    formats,
                    subscription,
                )),
            };
            log.at(
                Severity::Info,
                format!(
                    "syslog: forwarding the log to {} (RFC 5424, facility {})",
                    label(target),
                    facility_name(target.facility)
                ),
            );
            next.push(Running {
                shared,
                format,
                task,
            });
        }
        for gone in running.drain(..) {
            gone.task.abort();
            log.at(
                Severity::Info,
                format!(
                    "syslog: no longer forwarding to {} ({} lines sent, {} dropped)",
                    gone.shared.label(),
                    gone.shared.sent.load(Ordering::Relaxed),
                    gone.shared.dropped()
                ),
            );
        }
        running = next;
        *board.lock().unwrap_or_else(PoisonError::into_inner) =
            running.iter().map(|r| Arc::clone(&r.shared)).collect();
        start = Start::Next;
        if wanted.changed().await.is_err() {
            for gone in running {
                gone.task.abort();
            }
            return;
        }
    }
}

/// Formats `entry` for the target into `out` (cleared first).
fn format_entry(
    out: &mut Vec<u8>,
    entry: &Entry,
    formats: &watch::Receiver<(Arc<str>, SyslogFacility)>,
    max: usize,
) {
    out.clear();
    let format = formats.borrow();
    format::message(
        out,
        &format::Fields {
            facility: format.1.code(),
            severity: entry.severity().code(),
            timestamp: entry.wall,
            hostname: &format.0,
            text: &entry.text,
        },
        max,
    );
}

/// Takes the next batch into `batch`, counting what the ring overwrote first.
fn take(subscription: &mut Subscription, shared: &Shared, batch: &mut Vec<Arc<Entry>>) {
    batch.clear();
    let missed = subscription.take(BATCH, batch);
    Shared::add(&shared.queue_full, missed);
    shared
        .queued
        .store(subscription.pending(), Ordering::Relaxed);
}

/// A UDP target: one datagram per line, from a socket connected to the server (so a port
/// unreachable comes back as an error instead of silence; see [`FAILING_SHOWN`]).
async fn udp(
    address: SocketAddr,
    shared: Arc<Shared>,
    formats: watch::Receiver<(Arc<str>, SyslogFacility)>,
    mut subscription: Subscription,
) {
    let mut socket: Option<UdpSocket> = None;
    let mut batch = Vec::with_capacity(BATCH);
    let mut message = Vec::with_capacity(format::UDP_MAX);
    loop {
        take(&mut subscription, &shared, &mut batch);
        if batch.is_empty() {
            subscription.wait().await;
            continue;
        }
        if socket.is_none() {
            match connected_udp(address).await {
                Ok(opened) => socket = Some(opened),
                Err(error) => {
                    Shared::add(&shared.send_failed, count(&batch));
                    shared.set_state(State::Failing {
                        error: error.to_string(),
                        at: Instant::now(),
                    });
                    continue;
                }
            }
        }
        let Some(open) = &socket else { continue };
        for entry in &batch {
            format_entry(&mut message, entry, &formats, format::UDP_MAX);
            match open.send(&message).await {
                Ok(_) => shared.sent_udp(Instant::now()),
                Err(error) => {
                    Shared::add(&shared.send_failed, 1);
                    shared.set_state(State::Failing {
                        error: error.to_string(),
                        at: Instant::now(),
                    });
                }
            }
        }
    }
}

fn count(batch: &[Arc<Entry>]) -> u64 {
    u64::try_from(batch.len()).unwrap_or(u64::MAX)
}

async fn connected_udp(address: SocketAddr) -> std::io::Result<UdpSocket> {
    let local: SocketAddr = if address.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.connect(address).await?;
    Ok(socket)
}

/// A TCP target: connect (within [`CONNECT_TIMEOUT`]), write octet-counted batches, and on any
/// failure wait out the backoff, counting what the ring overwrites meanwhile.
async fn tcp(
    address: SocketAddr,
    shared: Arc<Shared>,
    formats: watch::Receiver<(Arc<str>, SyslogFacility)>,
    mut subscription: Subscription,
) {
    let mut backoff = Backoff::default();
    loop {
        shared.set_state(State::Connecting);
        let error = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address)).await {
            Ok(Ok(stream)) => {
                backoff.reset();
                shared.set_state(State::Connected);
                let _ = stream.set_nodelay(true);
                serve_tcp(stream, &shared, &formats, &mut subscription).await
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => format!(
                "no answer to the connect within {} s",
                CONNECT_TIMEOUT.as_secs()
            ),
        };
        let delay = backoff.next_delay();
        let retry = Instant::now() + delay;
        shared.set_state(State::Down { error, retry });
        // The ring keeps the lines meanwhile; those it overwrites are counted as they go.
        let deadline = tokio::time::Instant::from_std(retry);
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => break,
                () = subscription.wait() => {
                    Shared::add(&shared.queue_full, subscription.skip_overwritten());
                    shared.queued.store(subscription.pending(), Ordering::Relaxed);
                }
            }
        }
    }
}

/// Writes batches to a connected server until the connection fails; returns why it ended.
async fn serve_tcp(
    stream: TcpStream,
    shared: &Shared,
    formats: &watch::Receiver<(Arc<str>, SyslogFacility)>,
    subscription: &mut Subscription,
) -> String {
    let (mut reader, mut writer) = stream.into_split();
    let mut batch = Vec::with_capacity(BATCH);
    let mut message = Vec::with_capacity(format::TCP_MAX);
    let mut frames = Vec::new();
    let mut scratch = [0u8; 512];
    loop {
        take(subscription, shared, &mut batch);
        if batch.is_empty() {
            // Idle: wait for a line, and notice a server that closes or resets meanwhile.
            tokio::select! {
                () = subscription.wait() => continue,
                read = reader.read(&mut scratch) => match read {
                    Ok(0) => return "the server closed the connection".to_owned(),
                    Ok(_) => continue,
                    Err(error) => return error.to_string(),
                },
            }
        }
        frames.clear();
        for entry in &batch {
            format_entry(&mut message, entry, formats, format::TCP_MAX);
            format::octet_counted(&mut frames, &message);
        }
        match tokio::time::timeout(WRITE_TIMEOUT, writer.write_all(&frames)).await {
            Ok(Ok(())) => Shared::add(&shared.sent, count(&batch)),
            Ok(Err(error)) => {
                Shared::add(&shared.send_failed, count(&batch));
                return error.to_string();
            }
            Err(_) => {
                Shared::add(&shared.send_failed, count(&batch));
                return format!("the server took nothing for {} s", WRITE_TIMEOUT.as_secs());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use tokio::net::{TcpListener, UdpSocket};

    fn target(address: SocketAddr, transport: SyslogTransport) -> SyslogTarget {
        SyslogTarget {
            address,
            transport,
            facility: SyslogFacility::Local3,
        }
    }

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut backoff = Backoff::default();
        let delays: Vec<u64> = (0..8).map(|_| backoff.next_delay().as_secs()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 60, 60]);
        backoff.reset();
        assert_eq!(backoff.next_delay(), BACKOFF_FIRST);
    }

    /// Waits (polling every 10 ms, up to 5 s) until `check` holds.
    async fn until(what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !check() {
            assert!(Instant::now() < deadline, "never: {what}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn udp_lines_arrive_one_per_datagram_and_refusals_are_counted() {
        let receiver = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let address = receiver.local_addr().unwrap();
        let log = Log::default();
        log.line("before the forwarder");
        let shared = Arc::new(Shared::new(target(address, SyslogTransport::Udp)));
        let (_format, formats) = watch::channel((Arc::from("box-a"), SyslogFacility::Local3));
        let task = tokio::spawn(udp(
            address,
            Arc::clone(&shared),
            formats,
            log.subscribe(Start::Oldest),
        ));
        log.at(Severity::Warning, "vrrp: web: BACKUP -> MASTER");
        let mut buffer = [0u8; 2048];
        let mut got = Vec::new();
        for _ in 0..2 {
            let n = tokio::time::timeout(Duration::from_secs(5), receiver.recv(&mut buffer))
                .await
                .unwrap()
                .unwrap();
            got.push(String::from_utf8(buffer[..n].to_vec()).unwrap());
        }
        assert_eq!(
            got[0], "<158>1 - box-a tandem - - - before the forwarder",
            "local3 (19) * 8 + info (6)"
        );
        assert_eq!(
            got[1],
            "<156>1 - box-a tandem - vrrp - vrrp: web: BACKUP -> MASTER"
        );
        until("2 sent", || shared.sent.load(Ordering::Relaxed) == 2).await;
        // The receiver goes away: its port answers ICMP port unreachable, which the next
        // send reports.
        drop(receiver);
        for i in 0..20 {
            log.line(format!("lvs: line {i}"));
        }
        until("refusals counted", || {
            shared.send_failed.load(Ordering::Relaxed) >= 1
                && shared.sent.load(Ordering::Relaxed) + shared.send_failed.load(Ordering::Relaxed)
                    == 22
        })
        .await;
        assert!(shared
            .status_line(Instant::now())
            .contains("sending fails: "));
        task.abort();
    }

    #[tokio::test]
    async fn tcp_frames_by_octet_count_and_a_down_server_costs_counted_lines() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let log = Log::default();
        let shared = Arc::new(Shared::new(target(address, SyslogTransport::Tcp)));
        let (_format, formats) = watch::channel((Arc::from("box-a"), SyslogFacility::Daemon));
        let task = tokio::spawn(tcp(
            address,
            Arc::clone(&shared),
            formats,
            log.subscribe(Start::Next),
        ));
        let (mut stream, _) = listener.accept().await.unwrap();
        until("connected", || shared.state() == State::Connected).await;
        log.line("config: generation 2 applied");
        log.line("lvs: two\nlines");
        let mut received = Vec::new();
        let expected: String = [
            "<29>1 - box-a tandem - config - config: generation 2 applied",
            "<30>1 - box-a tandem - lvs - lvs: two lines",
        ]
        .iter()
        .map(|m| format!("{} {m}", m.len()))
        .collect();
        let mut buffer = [0u8; 4096];
        while received.len() < expected.len() {
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0);
            received.extend_from_slice(&buffer[..n]);
        }
        assert_eq!(String::from_utf8(received).unwrap(), expected);
        // The server closes: the forwarder notices, backs off, and counts the lines the ring
        // overwrites meanwhile.
        drop(stream);
        drop(listener);
        until("down", || matches!(shared.state(), State::Down { .. })).await;
        let sent = shared.sent.load(Ordering::Relaxed);
        for i in 0..RING_LINES + 100 {
            log.line(format!("lvs: flood {i}"));
        }
        until("overwritten lines counted", || {
            shared.queue_full.load(Ordering::Relaxed) >= 100
        })
        .await;
        assert_eq!(shared.sent.load(Ordering::Relaxed), sent);
        assert!(
            shared.status_line(Instant::now()).contains(" down: "),
            "{}",
            shared.status_line(Instant::now())
        );
        task.abort();
    }
}
