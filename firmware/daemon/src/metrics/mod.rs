//! The metrics endpoint: `GET /metrics` over HTTP/1.x on `management.metrics` (address and
//! TCP port; unset: not served), in the Prometheus text format, or OpenMetrics when the
//! `Accept` header asks for it. Read-only: nothing a client sends changes any state.
//!
//! It runs on a thread and runtime of its own, so neither a hostile client nor rendering a
//! 1000 x 10 table can delay the daemon's loop, and the VRRP thread is never asked anything
//! but its families. It follows commits: the daemon hands it the running config's address
//! ([`MetricsHandle::follow`]); a changed address closes the listener (and its connections)
//! and binds the new one; a bind that fails is logged once and retried every
//! [`RETRY_BIND`] (the management address may come up later).
//!
//! **A scrape** gathers a snapshot: the daemon's loop answers with its own families and the
//! engine handles ([`DaemonView`]); every engine is asked for its families
//! (`EngineRequest::Metrics`, answered in its request loop) in parallel, each within
//! [`GATHER_TIMEOUT`]; the pair heartbeat's board, the replication counters and the kernel's
//! bonds are read here. A source that does not answer in time is left out and counted
//! (`tandem_metrics_gather_failures_total{source}`): a stuck engine costs a few missing
//! families, never a stuck scrape. One snapshot serves every scrape within [`FRESH_FOR`]
//! (concurrent scrapes wait for the one gathering), so scrapers cannot make the engines work
//! more than twice a second; while a client is still being sent the last one, it serves the
//! next scrapes too (at most [`WRITE_TIMEOUT`] old), so slow readers cannot make the endpoint
//! hold one body each.
//!
//! **Bounds**: at most [`MAX_CONNECTIONS`] connections are served at once. When all are busy,
//! a new connection takes the place of the oldest one still sending its request head or
//! already answered (a slowloris never holds a well-behaved scraper out); when none is, it is
//! closed at once. Both are counted. A head is read into a fixed [`http::MAX_HEAD`]-byte
//! buffer and must be complete within [`HEAD_TIMEOUT`]; a response must be taken within
//! [`WRITE_TIMEOUT`] (a client that asks and then does not read holds its slot that long).
//! One request per connection. Memory is the slots' buffers plus one rendered snapshot,
//! whatever the clients do.

pub mod exposition;
pub mod http;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use exposition::{Families, Family, Format, Labels};

use crate::engine::EngineHandle;
use crate::logring::Log;
use crate::pair_board::PairBoard;
use crate::pair_service::PairHandle;

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 8;
/// How long a client has to send its whole request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client has to take the response.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long each source (the daemon's loop, an engine) has to answer a scrape.
pub const GATHER_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a snapshot answers later scrapes: under the shortest scrape interval one would
/// configure (1 s), so every scrape of a Prometheus sees new values, while scrapers in a loop
/// make the engines answer at most twice a second.
pub const FRESH_FOR: Duration = Duration::from_millis(500);
/// How often a failed bind is tried again.
pub const RETRY_BIND: Duration = Duration::from_secs(5);
/// After the response, how long (and how much) the client's leftovers are read before the
/// close, so the close is not a reset that could cut the response short.
const LINGER: Duration = Duration::from_secs(1);
const LINGER_BYTES: usize = 64 << 10;

/// What the daemon's loop answers a scrape with.
#[derive(Debug)]
pub struct DaemonView {
    /// The engines running now.
    pub engines: Vec<EngineHandle>,
    /// The loop's own families (config, console, peer probe, NICs).
    pub families: Families,
    /// The pair heartbeat's board (None: no netlink, no engines).
    pub pair: Option<PairBoard>,
    /// The pair service (replication counters).
    pub replication: Option<PairHandle>,
    /// The running config has bonds: the kernel's are read.
    pub bonds: Option<Arc<tandem_config::Config>>,
}

/// A scrape's question to the daemon's loop.
pub type DaemonAsk = oneshot::Sender<DaemonView>;

/// The daemon's end of the endpoint.
#[derive(Debug, Clone)]
pub struct MetricsHandle {
    address: Arc<watch::Sender<Option<SocketAddr>>>,
    listening: Arc<std::sync::Mutex<Listening>>,
}

/// Where the endpoint is, for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Listening {
    /// `management.metrics` is not set.
    #[default]
    Off,
    Serving(SocketAddr),
    /// The bind failed; retried every [`RETRY_BIND`].
    Failing {
        address: SocketAddr,
        error: String,
    },
}

impl Listening {
    /// The `status:` fact.
    pub fn status_line(&self) -> String {
        match self {
            Listening::Off => "metrics off (no management.metrics)".to_owned(),
            Listening::Serving(address) => format!("metrics serving http://{address}/metrics"),
            Listening::Failing { address, error } => format!(
                "metrics cannot listen on {address}: {error} (retrying every {} s)",
                RETRY_BIND.as_secs()
            ),
        }
    }
}

impl MetricsHandle {
    /// Where the endpoint is now.
    pub fn listening(&self) -> Listening {
        self.listening
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Serves on `address` from now on (None: not at all); the same address again changes
    /// nothing.
    pub fn follow(&self, address: Option<SocketAddr>) {
        self.address.send_if_modified(|now| {
            let changed = *now != address;
            *now = address;
            changed
        });
    }
}

/// The family every engine reports its current problems in (refused config lines, a failed
/// apply or move, kernel state missing).
pub fn engine_errors(engine: &'static str, count: usize) -> Family {
    let mut family = Family::gauge(
        "tandem_engine_errors",
        "Problems an engine reports now (refused config, a failed apply or move, kernel state missing); `<engine> status` names them.",
    );
    family.add(Labels::of(&[("engine", engine)]), count);
    family
}

/// Starts the endpoint's thread (not listening until [`MetricsHandle::follow`] names an
/// address). `daemon` is where scrapes ask the daemon's loop; `started` is when the daemon
/// started (`tandem_uptime_seconds`).
pub fn spawn(daemon: mpsc::Sender<DaemonAsk>, log: Log, started: Instant) -> Option<MetricsHandle> {
    let (address, wanted) = watch::channel(None);
    let listening = Arc::new(std::sync::Mutex::new(Listening::Off));
    let shared = Arc::new(Shared {
        log: log.clone(),
        daemon,
        started,
        counters: Counters::default(),
        snapshot: tokio::sync::Mutex::new(None),
        listening: Arc::clone(&listening),
    });
    let thread_log = log.clone();
    let spawned = std::thread::Builder::new()
        .name("metrics".to_owned())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(run(wanted, shared)),
                Err(error) => thread_log.line(format!(
                    "metrics: cannot start the endpoint's runtime: {error}; no metrics are served"
                )),
            }
        });
    if let Err(error) = spawned {
        log.line(format!(
            "metrics: cannot start the endpoint's thread: {error}; no metrics are served"
        ));
        return None;
    }
    Some(MetricsHandle {
        address: Arc::new(address),
        listening,
    })
}

/// The endpoint's own counters.
#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    /// Closed at once: every slot was busy answering.
    refused: AtomicU64,
    /// Closed for a newer connection while still sending its head.
    evicted: AtomicU64,
    /// No complete head within [`HEAD_TIMEOUT`].
    head_timeouts: AtomicU64,
    /// Closed by the client (or an error) before its head was complete.
    incomplete: AtomicU64,
    /// Responses not taken within [`WRITE_TIMEOUT`] (or cut by the client).
    write_failures: AtomicU64,
    accept_errors: AtomicU64,
    /// Responses by status: 200, 400, 404, 405, 431, 505.
    responses: [AtomicU64; 6],
    duplicates: AtomicU64,
    /// Gathers and the sources that did not answer in them.
    gathers: AtomicU64,
    failures: std::sync::Mutex<std::collections::BTreeMap<&'static str, u64>>,
    /// The last gather's duration, in microseconds.
    gather_micros: AtomicU64,
}

const STATUSES: [u16; 6] = [200, 400, 404, 405, 431, 505];

impl Counters {
    fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn response(&self, status: u16) {
        if let Some(at) = STATUSES.iter().position(|s| *s == status) {
            if let Some(counter) = self.responses.get(at) {
                Counters::count(counter);
            }
        }
    }

    fn failed(&self, source: &'static str) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *failures.entry(source).or_default() += 1;
    }

    fn families(&self) -> Families {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let mut families = Families::new();
        families.push(
            Family::counter(
                "tandem_metrics_connections_total",
                "Connections the metrics endpoint accepted.",
            )
            .with(load(&self.accepted)),
        );
        let mut closed = Family::counter(
            "tandem_metrics_connections_closed_total",
            "Connections the endpoint closed before answering: refused (every slot busy answering), evicted (a newer connection took the slot while its head was incomplete), head_timeout (no complete head within 5 s), incomplete (the client closed first).",
        );
        closed.add_each(
            &Labels::NONE,
            "reason",
            [
                ("refused", load(&self.refused)),
                ("evicted", load(&self.evicted)),
                ("head_timeout", load(&self.head_timeouts)),
                ("incomplete", load(&self.incomplete)),
            ],
        );
        families.push(closed);
        let mut responses = Family::counter(
            "tandem_metrics_responses_total",
            "Responses of the metrics endpoint by HTTP status code.",
        );
        for (status, counter) in STATUSES.iter().zip(&self.responses) {
            responses.add(Labels::of(&[("code", &status.to_string())]), load(counter));
        }
        families.push(responses);
        families.push(
            Family::counter(
                "tandem_metrics_write_failures_total",
                "Responses the client did not take within 10 s (or cut short).",
            )
            .with(load(&self.write_failures)),
        );
        families.push(
            Family::counter(
                "tandem_metrics_accept_errors_total",
                "Errors accepting a connection (out of file descriptors, ...).",
            )
            .with(load(&self.accept_errors)),
        );
        families.push(
            Family::counter(
                "tandem_metrics_gathers_total",
                "Snapshots gathered (one serves every scrape within half a second).",
            )
            .with(load(&self.gathers)),
        );
        let mut failures = Family::counter(
            "tandem_metrics_gather_failures_total",
            "Sources (the daemon's loop, an engine, the kernel's bonds) that did not answer a gather within 2 s: their families are missing from that scrape.",
        );
        for (source, count) in self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            failures.add(Labels::of(&[("source", source)]), *count);
        }
        families.push(failures);
        families.push(
            Family::counter(
                "tandem_metrics_duplicate_series_total",
                "Samples left out of a scrape for repeating a label set in their family.",
            )
            .with(load(&self.duplicates)),
        );
        families.push(
            Family::gauge(
                "tandem_metrics_gather_seconds",
                "How long the previous snapshot took to gather.",
            )
            .with(Duration::from_micros(load(&self.gather_micros))),
        );
        families
    }
}

/// A rendered snapshot.
#[derive(Debug)]
struct Snapshot {
    at: Instant,
    format: Format,
    body: Arc<Vec<u8>>,
}

/// What the listener and every connection share.
#[derive(Debug)]
struct Shared {
    log: Log,
    daemon: mpsc::Sender<DaemonAsk>,
    started: Instant,
    counters: Counters,
    /// The last snapshot; the lock also makes scrapes wait for the one gathering.
    snapshot: tokio::sync::Mutex<Option<Snapshot>>,
    /// Where the endpoint is (`status`).
    listening: Arc<std::sync::Mutex<Listening>>,
}

impl Shared {
    fn set_listening(&self, listening: Listening) {
        *self
            .listening
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = listening;
    }
}

impl Shared {
    /// The body for a scrape in `format`: the last snapshot if fresh, or still being sent to
    /// a slow client (so slow readers never hold more than one body each in memory), else a
    /// new one.
    async fn body(&self, format: Format) -> Arc<Vec<u8>> {
        let mut snapshot = self.snapshot.lock().await;
        if let Some(reused) = snapshot.as_ref().filter(|s| {
            s.format == format
                && (s.at.elapsed() < FRESH_FOR
                    || (Arc::strong_count(&s.body) > 1 && s.at.elapsed() < WRITE_TIMEOUT))
        }) {
            return Arc::clone(&reused.body);
        }
        let began = Instant::now();
        let families = self.gather().await;
        let took = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
        self.counters.gather_micros.store(took, Ordering::Relaxed);
        let hint = snapshot.as_ref().map_or(16 << 10, |s| s.body.len() + 4096);
        // The previous body goes before the new one is built: one at a time in memory.
        *snapshot = None;
        let mut body = Vec::with_capacity(hint);
        let duplicates = families.render(format, &mut body);
        drop(families);
        if duplicates > 0 {
            self.counters.duplicates.fetch_add(
                u64::try_from(duplicates).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
        }
        let body = Arc::new(body);
        *snapshot = Some(Snapshot {
            at: Instant::now(),
            format,
            body: Arc::clone(&body),
        });
        body
    }

    /// Every source's families, each within [`GATHER_TIMEOUT`].
    async fn gather(&self) -> Families {
        Counters::count(&self.counters.gathers);
        let mut families = Families::new();
        let mut build = Family::info("tandem_build_info", "The tandem build running.");
        build.add(Labels::of(&[("version", env!("CARGO_PKG_VERSION"))]), 1u64);
        families.push(build);
        families.push(
            Family::gauge(
                "tandem_uptime_seconds",
                "Seconds since the tandem daemon started.",
            )
            .with(self.started.elapsed()),
        );
        if let Some(bytes) = tandem_southbound::process::resident_bytes() {
            families.push(
                Family::gauge(
                    "tandem_process_resident_memory_bytes",
                    "Resident memory of the tandem process.",
                )
                .with(bytes),
            );
        }
        if let Some(fds) = tandem_southbound::process::open_fds() {
            families.push(
                Family::gauge(
                    "tandem_process_open_fds",
                    "File descriptors the tandem process has open (sockets included).",
                )
                .with(fds),
            );
        }
        let (ask, answer) = oneshot::channel();
        let view = tokio::time::timeout(GATHER_TIMEOUT, async {
            self.daemon.send(ask).await.ok()?;
            answer.await.ok()
        })
        .await
        .ok()
        .flatten();
        match view {
            Some(view) => {
                // Every engine at once; each answers (or not) within the limit.
                let asked: Vec<_> = view
                    .engines
                    .into_iter()
                    .map(|engine| {
                        tokio::spawn(
                            async move { (engine.name, engine.metrics(GATHER_TIMEOUT).await) },
                        )
                    })
                    .collect();
                families.extend(view.families);
                if let Some(board) = &view.pair {
                    families.extend(board.metrics());
                }
                if let Some(replication) = &view.replication {
                    families.extend(replication.metrics());
                }
                if let Some(config) = &view.bonds {
                    match bonds().await {
                        Ok(kernel) => families.extend(crate::bonds::metrics(config, &kernel)),
                        Err(_) => self.counters.failed("bonds"),
                    }
                }
                for task in asked {
                    match task.await {
                        Ok((_, Some(answer))) => families.extend(answer),
                        Ok((name, None)) => self.counters.failed(name),
                        Err(_) => self.counters.failed("engine"),
                    }
                }
            }
            None => self.counters.failed("daemon"),
        }
        families.extend(self.counters.families());
        families
    }
}

/// The kernel's bonds: one link dump on this thread (a route-netlink round trip of well
/// under a millisecond; nothing here waits on the daemon's loop or an engine).
async fn bonds() -> Result<Vec<tandem_southbound::bond::Bond>, tandem_southbound::bond::BondError> {
    tandem_southbound::bond::BondExecutor::connect()?
        .bonds()
        .await
}

/// Follows the wanted address: binds it, serves until it changes, binds the next.
async fn run(mut wanted: watch::Receiver<Option<SocketAddr>>, shared: Arc<Shared>) {
    let mut logged_failure: Option<SocketAddr> = None;
    loop {
        let address = *wanted.borrow_and_update();
        let Some(address) = address else {
            shared.set_listening(Listening::Off);
            if wanted.changed().await.is_err() {
                return;
            }
            continue;
        };
        match TcpListener::bind(address).await {
            Ok(listener) => {
                logged_failure = None;
                shared.set_listening(Listening::Serving(address));
                shared.log.line(format!(
                    "metrics: serving http://{address}/metrics (at most {MAX_CONNECTIONS} connections at once)"
                ));
                let go_on = serve(listener, &mut wanted, &shared).await;
                shared
                    .log
                    .line(format!("metrics: no longer serving on {address}"));
                if !go_on {
                    return;
                }
            }
            Err(error) => {
                shared.set_listening(Listening::Failing {
                    address,
                    error: error.to_string(),
                });
                if logged_failure != Some(address) {
                    shared.log.line(format!(
                        "metrics: cannot listen on {address}: {error}; management.metrics must be one of this box's addresses (in a pair config write 0.0.0.0:PORT or [::]:PORT so each box listens on its own) and a free port; retrying every {} s",
                        RETRY_BIND.as_secs()
                    ));
                    logged_failure = Some(address);
                }
                tokio::select! {
                    changed = wanted.changed() => if changed.is_err() { return },
                    () = tokio::time::sleep(RETRY_BIND) => {}
                }
            }
        }
    }
}

/// One connection being served.
#[derive(Debug)]
struct Slot {
    accepted: Instant,
    /// Still reading its request head, or answered and draining what the client still sends:
    /// it may be closed for a newer connection.
    evictable: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

/// Accepts on `listener` until the wanted address changes (true) or the daemon is gone
/// (false); the connections still being served are closed then.
async fn serve(
    listener: TcpListener,
    wanted: &mut watch::Receiver<Option<SocketAddr>>,
    shared: &Arc<Shared>,
) -> bool {
    let bound = *wanted.borrow();
    let mut slots: Vec<Slot> = Vec::with_capacity(MAX_CONNECTIONS);
    let go_on = loop {
        tokio::select! {
            changed = wanted.changed() => {
                if changed.is_err() {
                    break false;
                }
                if *wanted.borrow() != bound {
                    break true;
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    admit(stream, &mut slots, shared);
                    // Let the connections run before the next accept: a scraper whose head
                    // is already here reads it (and leaves the evictable set) before a burst
                    // of newer connections could take its slot.
                    tokio::task::yield_now().await;
                }
                Err(_) => {
                    // Out of file descriptors, most likely: let some close first.
                    Counters::count(&shared.counters.accept_errors);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
        }
    };
    for slot in slots {
        slot.task.abort();
    }
    go_on
}

/// Gives `stream` a slot: a free one, or the one of the oldest connection still sending its
/// head (or answered already); with every slot answering, the connection is closed at once.
fn admit(stream: TcpStream, slots: &mut Vec<Slot>, shared: &Arc<Shared>) {
    Counters::count(&shared.counters.accepted);
    slots.retain(|slot| !slot.task.is_finished());
    if slots.len() >= MAX_CONNECTIONS {
        let oldest_evictable = slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.evictable.load(Ordering::Relaxed))
            .min_by_key(|(_, slot)| slot.accepted)
            .map(|(index, _)| index);
        match oldest_evictable {
            Some(index) => {
                slots.swap_remove(index).task.abort();
                Counters::count(&shared.counters.evicted);
            }
            None => {
                Counters::count(&shared.counters.refused);
                drop(stream);
                return;
            }
        }
    }
    let evictable = Arc::new(AtomicBool::new(true));
    let task = tokio::spawn(connection(
        stream,
        Arc::clone(&evictable),
        Arc::clone(shared),
    ));
    slots.push(Slot {
        accepted: Instant::now(),
        evictable,
        task,
    });
}

/// Reads one request head (bounded in size and time), answers it, closes.
async fn connection(mut stream: TcpStream, evictable: Arc<AtomicBool>, shared: Arc<Shared>) {
    let deadline = tokio::time::Instant::now() + HEAD_TIMEOUT;
    let mut buffer = [0u8; http::MAX_HEAD];
    let mut filled = 0;
    let head = loop {
        let Some(free) = buffer.get_mut(filled..).filter(|free| !free.is_empty()) else {
            break Err(http::Refusal::HeadTooLarge);
        };
        let read = match tokio::time::timeout_at(deadline, stream.read(free)).await {
            Err(_) => {
                Counters::count(&shared.counters.head_timeouts);
                return;
            }
            Ok(Ok(0) | Err(_)) => {
                Counters::count(&shared.counters.incomplete);
                return;
            }
            Ok(Ok(read)) => read,
        };
        // The blank line may straddle two reads: look from 3 bytes back.
        let from = filled.saturating_sub(3);
        filled += read;
        if let Some(end) = buffer.get(from..filled).and_then(http::head_end) {
            break Ok(from + end);
        }
    };
    evictable.store(false, Ordering::Relaxed);
    let request = head.and_then(|end| http::parse(buffer.get(..end).unwrap_or_default()));
    let (status, content_type, body, head_only): (_, _, Arc<Vec<u8>>, _) = match request {
        Ok(request) => {
            let body = match request.target {
                http::Target::Metrics => {
                    let format = if request.openmetrics {
                        Format::OpenMetrics
                    } else {
                        Format::Prometheus
                    };
                    (format.content_type(), shared.body(format).await)
                }
                http::Target::Index => (
                    "text/plain; charset=utf-8",
                    Arc::new(http::INDEX.as_bytes().to_vec()),
                ),
            };
            ((200, "OK"), body.0, body.1, request.head_only)
        }
        Err(refusal) => (
            refusal.status(),
            "text/plain; charset=utf-8",
            Arc::new(refusal.body().into_bytes()),
            false,
        ),
    };
    shared.counters.response(status.0);
    let head = http::response_head(status, content_type, body.len());
    let written = tokio::time::timeout(WRITE_TIMEOUT, async {
        stream.write_all(head.as_bytes()).await?;
        if !head_only {
            stream.write_all(&body).await?;
        }
        stream.shutdown().await
    })
    .await;
    drop(body);
    if !matches!(written, Ok(Ok(()))) {
        Counters::count(&shared.counters.write_failures);
        return;
    }
    // Read what the client still sends until it closes (bounded), so the close is a FIN
    // after the response rather than a reset that could discard it.
    evictable.store(true, Ordering::Relaxed);
    let mut left = LINGER_BYTES;
    let _ = tokio::time::timeout(LINGER, async {
        while left > 0 {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(read) => left = left.saturating_sub(read),
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A daemon loop that answers with an empty view (no engines).
    fn daemon() -> mpsc::Sender<DaemonAsk> {
        let (asks, mut inbox) = mpsc::channel::<DaemonAsk>(2);
        tokio::spawn(async move {
            while let Some(reply) = inbox.recv().await {
                let mut families = Families::new();
                families.push(Family::gauge("tandem_config_generation", "Generation.").with(3u64));
                let _ = reply.send(DaemonView {
                    engines: Vec::new(),
                    families,
                    pair: None,
                    replication: None,
                    bonds: None,
                });
            }
        });
        asks
    }

    fn shared(daemon: mpsc::Sender<DaemonAsk>) -> Arc<Shared> {
        Arc::new(Shared {
            log: Log::default(),
            daemon,
            started: Instant::now(),
            counters: Counters::default(),
            snapshot: tokio::sync::Mutex::new(None),
            listening: Arc::default(),
        })
    }

    async fn exchange(address: SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(address).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await.unwrap();
        String::from_utf8(answer).unwrap()
    }

    /// Serves on an ephemeral loopback port on this test's runtime.
    async fn serving(shared: Arc<Shared>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (_keep, mut wanted) = watch::channel(Some(address));
        tokio::spawn(async move {
            let _keep = _keep;
            serve(listener, &mut wanted, &shared).await;
        });
        address
    }

    #[tokio::test]
    async fn a_scrape_gets_the_families_and_refusals_get_their_status() {
        let shared = shared(daemon());
        let address = serving(Arc::clone(&shared)).await;
        let answer = exchange(address, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"), "{answer}");
        assert!(
            answer.contains("Content-Type: text/plain; version=0.0.4"),
            "{answer}"
        );
        assert!(
            answer.contains("\r\n\r\n# HELP tandem_build_info"),
            "{answer}"
        );
        assert!(
            answer.contains("\ntandem_config_generation 3\n"),
            "{answer}"
        );
        assert!(
            answer.contains("\ntandem_metrics_connections_total 1\n"),
            "{answer}"
        );
        let open = exchange(
            address,
            b"GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text; version=1.0.0\r\n\r\n",
        )
        .await;
        assert!(
            open.contains("application/openmetrics-text; version=1.0.0"),
            "{open}"
        );
        assert!(open.ends_with("# EOF\n"), "{open}");
        let head = exchange(address, b"HEAD /metrics HTTP/1.0\r\n\r\n").await;
        assert!(head.ends_with("\r\n\r\n"), "{head}");
        for (request, status) in [
            (&b"POST /metrics HTTP/1.1\r\n\r\n"[..], "405"),
            (b"GET /secret HTTP/1.1\r\n\r\n", "404"),
            (b"\x16\x03\x01garbage\r\n\r\n", "400"),
        ] {
            let answer = exchange(address, request).await;
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status} ")),
                "{answer}"
            );
        }
        let mut huge = b"GET /metrics HTTP/1.1\r\nX-Fill: ".to_vec();
        huge.resize(http::MAX_HEAD + 100, b'a');
        let answer = exchange(address, &huge).await;
        assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
        // The snapshot of the HEAD request is still fresh: gather a new one.
        *shared.snapshot.lock().await = None;
        let body = shared.body(Format::Prometheus).await;
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            text.contains("tandem_metrics_responses_total{code=\"405\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("tandem_metrics_responses_total{code=\"431\"} 1\n"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn a_silent_connection_gives_its_slot_to_a_scraper() {
        let shared = shared(daemon());
        let address = serving(Arc::clone(&shared)).await;
        let mut silent = Vec::new();
        for _ in 0..MAX_CONNECTIONS * 3 {
            silent.push(TcpStream::connect(address).await.unwrap());
        }
        let answer = tokio::time::timeout(
            Duration::from_secs(2),
            exchange(address, b"GET /metrics HTTP/1.1\r\n\r\n"),
        )
        .await
        .expect("the scrape waited for the silent connections");
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        let evicted = shared.counters.evicted.load(Ordering::Relaxed);
        assert!(evicted >= 2 * MAX_CONNECTIONS as u64, "evicted {evicted}");
    }

    #[tokio::test]
    async fn a_daemon_that_does_not_answer_costs_its_families_not_the_scrape() {
        let (asks, _inbox) = mpsc::channel::<DaemonAsk>(1);
        let shared = shared(asks);
        let began = Instant::now();
        let body = shared.body(Format::Prometheus).await;
        assert!(began.elapsed() < GATHER_TIMEOUT + Duration::from_secs(1));
        let text = String::from_utf8(body.to_vec()).unwrap();
        assert!(text.contains("tandem_build_info{version="), "{text}");
        assert!(!text.contains("tandem_config_generation"), "{text}");
        assert!(
            text.contains("tandem_metrics_gather_failures_total{source=\"daemon\"} 1\n"),
            "{text}"
        );
    }
}
