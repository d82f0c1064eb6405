//! The pair's notice board: what the pair heartbeat (on the VRRP thread) last published, and
//! the running config's generation (written by the daemon after each commit), so that
//! `pair status` answers from the daemon's loop without asking the VRRP thread anything and
//! the heartbeat reads the generation without waiting on the daemon.
//!
//! Both sides hold the lock only to copy plain data; the VRRP side only ever `try_lock`s, so a
//! status dump can never delay a heartbeat.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tandem_vrrp::pair::{HeartbeatCounters, LinkState, PartnerReport};

/// The board, shared by the daemon and the VRRP engine.
#[derive(Debug, Clone, Default)]
pub struct PairBoard(Arc<Mutex<Board>>);

/// What is on it.
#[derive(Debug, Clone, Default)]
pub struct Board {
    /// The running config's generation and a digest of its bytes (daemon).
    pub generation: u64,
    pub digest: u64,
    /// The heartbeat's state (VRRP engine; None: no heartbeat runs).
    pub heartbeat: Option<HeartbeatView>,
    /// The pair id and key once paired (daemon); the heartbeat runs under them.
    pub pairing: Option<(u64, [u8; 32])>,
}

/// The heartbeat as last published.
#[derive(Debug, Clone)]
pub struct HeartbeatView {
    pub interface: String,
    pub port: u16,
    pub interval: Duration,
    pub dead_after: Duration,
    pub pair_id: u64,
    pub keyed: bool,
    /// Why the socket is not open (None: open).
    pub closed: Option<String>,
    pub state: LinkState,
    pub carrier: bool,
    pub last_heard: Option<Instant>,
    pub rtt: Option<Duration>,
    pub counters: HeartbeatCounters,
    pub partner: Option<PartnerReport>,
    /// Recent decisions with when they were made, newest last.
    pub decisions: Vec<(Instant, String)>,
    /// A standing alarm (cable cut, LAN split), None when all is well.
    pub alarm: Option<String>,
}

impl PairBoard {
    fn lock(&self) -> MutexGuard<'_, Board> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The daemon records the running generation after a commit.
    pub fn set_generation(&self, generation: u64, digest: u64) {
        let mut board = self.lock();
        board.generation = generation;
        board.digest = digest;
    }

    /// The daemon records the pair id and key at start and after pairing / `unpair`.
    pub fn set_pairing(&self, pairing: Option<(u64, [u8; 32])>) {
        self.lock().pairing = pairing;
    }

    /// The pair id and key (read when the heartbeat starts or is reconfigured, never on its
    /// timers).
    pub fn pairing(&self) -> Option<(u64, [u8; 32])> {
        self.lock().pairing
    }

    /// The running generation and digest, if the board is free right now (the VRRP thread
    /// never waits for it).
    pub fn try_generation(&self) -> Option<(u64, u64)> {
        self.0
            .try_lock()
            .ok()
            .map(|board| (board.generation, board.digest))
    }

    /// The VRRP engine publishes the heartbeat's state; skipped when the board is busy (the
    /// next publication follows within a heartbeat interval).
    pub fn try_publish(&self, view: Option<HeartbeatView>) {
        if let Ok(mut board) = self.0.try_lock() {
            board.heartbeat = view;
        }
    }

    /// One `status:` line (the heartbeat in brief; `pair status` has the rest).
    pub fn summary_line(&self) -> String {
        let board = self.lock().clone();
        let Some(view) = &board.heartbeat else {
            return "status: pair heartbeat not running\n".to_owned();
        };
        let state = match view.state {
            LinkState::Up => "partner-alive",
            LinkState::Init => "partner-heard",
            LinkState::Down => "partner-not-heard",
        };
        format!(
            "status: pair heartbeat {} {state} rtt={}{}\n",
            view.interface,
            view.rtt.map_or_else(|| "-".to_owned(), millis),
            view.alarm
                .as_ref()
                .map_or_else(String::new, |alarm| format!(" ALARM: {alarm}"))
        )
    }

    /// `pair status`.
    pub fn status_text(&self) -> String {
        let board = self.lock().clone();
        render(&board, Instant::now())
    }
}

fn millis(span: Duration) -> String {
    let ms = span.as_secs_f64() * 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// The text of `pair status` (one `pair:` line each, ending in `pair: end`).
pub fn render(board: &Board, now: Instant) -> String {
    let mut out = String::new();
    let Some(view) = &board.heartbeat else {
        let _ = writeln!(
            out,
            "pair: no heartbeat (it runs with the VRRP engine: the config has no [[vrrp]] instance)"
        );
        let _ = writeln!(
            out,
            "pair: this box runs config generation {}",
            board.generation
        );
        out.push_str("pair: end\n");
        return out;
    };
    let _ = writeln!(
        out,
        "pair: heartbeat on {} udp/{} every {}, dead after {} ({}, pair {:016x})",
        view.interface,
        view.port,
        millis(view.interval),
        millis(view.dead_after),
        if view.keyed {
            "HMAC-SHA256"
        } else {
            "unauthenticated"
        },
        view.pair_id
    );
    if let Some(why) = &view.closed {
        let _ = writeln!(out, "pair: heartbeat socket not open: {why}");
    }
    let heard = view.last_heard.map_or_else(
        || "never heard".to_owned(),
        |at| {
            format!(
                "last heard {} ago",
                millis(now.saturating_duration_since(at))
            )
        },
    );
    let missed = view.last_heard.map_or(0, |at| {
        let interval = view.interval.as_nanos().max(1);
        now.saturating_duration_since(at).as_nanos() / interval
    });
    let refused: Vec<String> = view
        .counters
        .refused
        .iter()
        .map(|(reason, n)| format!("{reason} {n}"))
        .collect();
    let _ = writeln!(
        out,
        "pair: partner {} ({heard}, missed {missed}, rtt {}), peer carrier {}; sent {} received {} lost {} times; refused: {}",
        match view.state {
            LinkState::Up => "alive",
            LinkState::Init => "heard, not yet hearing us",
            LinkState::Down => "not heard",
        },
        view.rtt.map_or_else(|| "-".to_owned(), millis),
        if view.carrier { "up" } else { "down" },
        view.counters.sent,
        view.counters.received,
        view.counters.losses,
        if refused.is_empty() { "none".to_owned() } else { refused.join(", ") }
    );
    if let Some(partner) = &view.partner {
        let instances: Vec<String> = partner
            .instances
            .iter()
            .map(|i| {
                let mut line = format!("{} {} {}", i.name, i.state.as_str(), i.priority);
                if i.held_back {
                    line.push_str(" (adverts not heard: held back)");
                }
                line
            })
            .collect();
        let _ = writeln!(
            out,
            "pair: partner runs config generation {} (this box {}){}; instances: {}",
            partner.generation,
            board.generation,
            if partner.handover {
                "; handing over"
            } else {
                ""
            },
            if instances.is_empty() {
                "none".to_owned()
            } else {
                instances.join(", ")
            }
        );
    } else {
        let _ = writeln!(
            out,
            "pair: this box runs config generation {}",
            board.generation
        );
    }
    if let Some(alarm) = &view.alarm {
        let _ = writeln!(out, "pair: ALARM: {alarm}");
    }
    for (at, decision) in &view.decisions {
        let _ = writeln!(
            out,
            "pair: decision {:.1} s ago: {decision}",
            now.saturating_duration_since(*at).as_secs_f64()
        );
    }
    out.push_str("pair: end\n");
    out
}
