//! The pair's notice board: what the pair heartbeat (on the VRRP thread) last published, and
//! the running config's generation (written by the daemon after each commit), so that
//! `pair status` answers from the daemon's loop without asking the VRRP thread anything and
//! the heartbeat reads the generation without waiting on the daemon.
//!
//! The metrics endpoint reads it the same way (its own thread, a copy under the lock).
//!
//! Both sides hold the lock only to copy plain data; the VRRP side only ever `try_lock`s, so a
//! status dump can never delay a heartbeat.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tandem_vrrp::pair::{HeartbeatCounters, LinkState, PartnerReport};

use crate::metrics::{Families, Family, Labels};

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
    /// This box's uplink score and what it counts.
    pub uplink: UplinkView,
}

/// This box's uplink score (sent in the heartbeat; in a split the master yields only to a
/// partner with a strictly better one).
#[derive(Debug, Clone, Default)]
pub struct UplinkView {
    /// The score sent (None: not measured yet, or no service LAN).
    pub score: Option<u8>,
    /// The routers probed (`peer_link.uplink_probes`); empty: the score counts the service
    /// LANs with carrier.
    pub gateways: Vec<GatewayView>,
    /// How often each router is probed.
    pub every: Duration,
    /// Misses in a row after which a router counts as down.
    pub down_after: u32,
}

/// One upstream router as this box's probes see it.
#[derive(Debug, Clone)]
pub struct GatewayView {
    pub address: IpAddr,
    /// The interface and this box's address it is probed from (None: no configured subnet
    /// holds it).
    pub from: Option<(String, IpAddr)>,
    /// Counted up (answered, and not missed `down_after` times in a row since).
    pub answering: bool,
    /// Its interface has carrier.
    pub carrier: bool,
    /// Unanswered probes in a row.
    pub misses: u32,
    pub answered: u64,
    pub probed: u64,
    /// The last answer's round trip.
    pub rtt: Option<Duration>,
    /// The last probe's error (cleared by an answer).
    pub error: Option<String>,
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

    /// The pair id and key if the board is free right now (outer None: busy; the VRRP thread
    /// never waits for it).
    pub fn try_pairing(&self) -> Option<Option<(u64, [u8; 32])>> {
        self.0.try_lock().ok().map(|board| board.pairing)
    }

    /// The running generation and digest, if the board is free right now (the VRRP thread
    /// never waits for it).
    pub fn try_generation(&self) -> Option<(u64, u64)> {
        self.0
            .try_lock()
            .ok()
            .map(|board| (board.generation, board.digest))
    }

    /// For `pair upgrade`: the VRRP instances the partner's last heartbeat reports it is
    /// master of (none without a heartbeat).
    pub fn partner_masters(&self) -> Vec<String> {
        let board = self.lock();
        let Some(partner) = board.heartbeat.as_ref().and_then(|h| h.partner.as_ref()) else {
            return Vec::new();
        };
        partner
            .instances
            .iter()
            .filter(|i| i.state == tandem_wire::heartbeat::PeerState::Master)
            .map(|i| i.name.clone())
            .collect()
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
        let uplink = match (view.uplink.score, view.uplink.gateways.len()) {
            (None, _) => "-".to_owned(),
            (Some(score), 0) => score.to_string(),
            (Some(score), of) => format!("{score}/{of}"),
        };
        format!(
            "status: pair heartbeat {} {state} rtt={} uplink={uplink}{}\n",
            view.interface,
            view.rtt.map_or_else(|| "-".to_owned(), millis),
            view.alarm
                .as_ref()
                .map_or_else(String::new, |alarm| format!(" ALARM: {alarm}"))
        )
    }

    /// The heartbeat's metric families ([`metrics`]).
    pub fn metrics(&self) -> Families {
        let board = self.lock().clone();
        metrics(&board)
    }

    /// `pair status`.
    pub fn status_text(&self) -> String {
        let board = self.lock().clone();
        render(&board, Instant::now())
    }
}

/// The heartbeat's metric families (none while no heartbeat runs): whether the partner is
/// alive on it, the round trip, datagrams counted, the peer link's carrier, a standing alarm,
/// the uplink scores and each probed router, the partner's config generation.
pub fn metrics(board: &Board) -> Families {
    let mut families = Families::new();
    let Some(view) = &board.heartbeat else {
        return families;
    };
    families.push(
        Family::gauge(
            "tandem_pair_heartbeat_up",
            "1 while the pair heartbeat is up both ways (each box echoes the other's session).",
        )
        .with(view.state == LinkState::Up),
    );
    families.push(
        Family::gauge(
            "tandem_pair_heartbeat_socket_open",
            "1 when the heartbeat's socket is open on the peer link (`pair status` says why not).",
        )
        .with(view.closed.is_none()),
    );
    if let Some(rtt) = view.rtt {
        families.push(
            Family::gauge(
                "tandem_pair_heartbeat_rtt_seconds",
                "Round trip of the pair heartbeat, last measured.",
            )
            .with(rtt),
        );
    }
    let c = &view.counters;
    families.push(
        Family::counter(
            "tandem_pair_heartbeat_sent_total",
            "Heartbeat datagrams sent on the peer link.",
        )
        .with(c.sent),
    );
    families.push(
        Family::counter(
            "tandem_pair_heartbeat_received_total",
            "Heartbeat datagrams accepted from the partner.",
        )
        .with(c.received),
    );
    families.push(
        Family::counter(
            "tandem_pair_heartbeat_losses_total",
            "Times the partner was declared dead (silence or the peer link's carrier lost).",
        )
        .with(c.losses),
    );
    let mut refused = Family::counter(
        "tandem_pair_heartbeat_refused_total",
        "Heartbeat datagrams refused, by reason (stale, foreign pair, off-link, bad MAC, ...).",
    );
    for (reason, count) in &c.refused {
        refused.add(Labels::of(&[("reason", reason)]), *count);
    }
    families.push(refused);
    families.push(
        Family::gauge(
            "tandem_pair_peer_link_carrier",
            "1 when the peer link (the pair's own cable) has carrier.",
        )
        .with(view.carrier),
    );
    families.push(
        Family::gauge(
            "tandem_pair_alarm",
            "1 while a pair alarm stands (cable cut, service LAN split); `pair status` says which.",
        )
        .with(view.alarm.is_some()),
    );
    if let Some(score) = view.uplink.score {
        families.push(
            Family::gauge(
                "tandem_pair_uplink_score",
                "This box's uplink score: upstream routers answering, or service LANs with carrier.",
            )
            .with(score),
        );
    }
    if let Some(score) = view.partner.as_ref().and_then(|p| p.uplink) {
        families.push(
            Family::gauge(
                "tandem_pair_partner_uplink_score",
                "The partner's uplink score as its heartbeat reports it.",
            )
            .with(score),
        );
    }
    let mut router_up = Family::gauge(
        "tandem_pair_uplink_router_up",
        "1 while an upstream router of peer_link.uplink_probes counts as up (answering, with carrier).",
    );
    let mut router_rtt = Family::gauge(
        "tandem_pair_uplink_router_rtt_seconds",
        "Round trip of the last answer from an upstream router.",
    );
    for gateway in &view.uplink.gateways {
        let labels = Labels::of(&[("router", &gateway.address.to_string())]);
        router_up.add(labels.clone(), gateway.answering && gateway.carrier);
        if let Some(rtt) = gateway.rtt {
            router_rtt.add(labels, rtt);
        }
    }
    families.push(router_up);
    families.push(router_rtt);
    if let Some(partner) = &view.partner {
        families.push(
            Family::gauge(
                "tandem_pair_partner_config_generation",
                "The config generation the partner runs, as its heartbeat reports it.",
            )
            .with(partner.generation),
        );
    }
    families
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
    render_uplink(&mut out, view);
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

/// The uplink score and, when routers are probed, one line per router.
fn render_uplink(out: &mut String, view: &HeartbeatView) {
    let uplink = &view.uplink;
    let score = uplink
        .score
        .map_or_else(|| "- (not measured yet)".to_owned(), |s| s.to_string());
    let partner = match view.partner.as_ref().map(|p| p.uplink) {
        Some(Some(score)) => score.to_string(),
        Some(None) => "not measured".to_owned(),
        None => "unknown".to_owned(),
    };
    if uplink.gateways.is_empty() {
        let _ = writeln!(
            out,
            "pair: uplink score {score}: service LANs with carrier (no peer_link.uplink_probes); partner {partner}"
        );
        return;
    }
    let _ = writeln!(
        out,
        "pair: uplink score {score} of {} routers answering (probed every {}, down after {} misses in a row); partner {partner}",
        uplink.gateways.len(),
        millis(uplink.every),
        uplink.down_after
    );
    for gateway in &uplink.gateways {
        let Some((interface, source)) = &gateway.from else {
            let _ = writeln!(
                out,
                "pair: uplink router {}: not probed: no configured interface address has it in its subnet; add one under [[interfaces]] or remove it from peer_link.uplink_probes",
                gateway.address
            );
            continue;
        };
        let state = match (gateway.answering, gateway.probed) {
            (_, 0) => "not probed yet",
            (true, _) if !gateway.carrier => "answering, but no carrier (counts as down)",
            (true, _) => "answering",
            (false, _) => "not answering",
        };
        let _ = writeln!(
            out,
            "pair: uplink router {} on {interface} from {source}: {state} (misses {}, answered {} of {}, rtt {}){}",
            gateway.address,
            gateway.misses,
            gateway.answered,
            gateway.probed,
            gateway.rtt.map_or_else(|| "-".to_owned(), millis),
            gateway
                .error
                .as_ref()
                .map_or_else(String::new, |error| format!("; last error: {error}"))
        );
    }
}
