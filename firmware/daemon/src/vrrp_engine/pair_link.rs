//! The pair heartbeat on the VRRP thread: runs the sans-IO [`HeartbeatLink`] against a UDP
//! socket on the peer cable and turns its news into VRRP steps (`tandem_vrrp::pair`).
//!
//! It lives on the VRRP engine's thread and loop because its decisions are takeovers: a dead
//! partner's instances are promoted in the same turn of the loop that learns the LAN probe
//! went unanswered, with no hop through the daemon. Heartbeats go to all-nodes on the peer
//! link (`peer_link.interface`, else the board's `peer` NIC) at `peer_link.heartbeat_port`,
//! hop limit 255; received ones must come from fe80::/10 with hop limit 255 (GTSM).
//!
//! The LAN probe (ARP / neighbour solicitation to the partner's own address on each service
//! LAN) runs as a task on the same runtime and reports back through a channel; the loop never
//! waits for it. So do the uplink probes of the upstream routers ([`super::uplink`]), whose
//! score the heartbeat carries. The heartbeat's state is published to the [`PairBoard`] for
//! `pair status`.

use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use tandem_config::Config;
use tandem_southbound::lan_probe::LanProbe;
use tandem_southbound::peer_socket::{is_link_local, PeerSocket};
use tandem_southbound::sysfs;
use tandem_vrrp::pair::{
    arbitrate, lost_targets, DatagramMeta, HeartbeatLink, HeartbeatSettings, LinkEvent,
    LocalHealth, LocalInstance, LostWhy, Step,
};
use tandem_vrrp::{Cause, InstanceId, Instant, PartnerCause, State};
use tandem_wire::heartbeat::{InstanceHealth, PeerState, SharingHealth, MAX_DATAGRAM_LEN};

use crate::pair_board::{HeartbeatView, PairBoard, UplinkView};
use crate::sharing_board::{PartnerGroup, Presence};

use super::uplink::{Uplink, UplinkOutcome};
use super::{Engine, SYS_CLASS_NET};

/// How long the partner has to answer on the service LAN once its heartbeat died: half the
/// dead time, at least 15 ms (a LAN answers ARP in well under a millisecond) and at most
/// 500 ms (a slow lab guest).
fn probe_timeout(settings: HeartbeatSettings) -> Duration {
    (settings.dead_after / 2).clamp(Duration::from_millis(15), Duration::from_millis(500))
}
/// Probes sent within [`PROBE_TIMEOUT`].
const PROBE_ATTEMPTS: u8 = 3;
/// How long to wait before trying again to open the socket.
const REOPEN_DELAY: Duration = Duration::from_secs(5);
/// The board's name for the peer NIC, used when the config names none.
const DEFAULT_PEER_INTERFACE: &str = "peer";
/// Decisions kept for `pair status`.
const DECISIONS_KEPT: usize = 8;
/// How often the board is refreshed when nothing happens.
const PUBLISH_EVERY: Duration = Duration::from_millis(100);

/// A received heartbeat datagram.
#[derive(Debug)]
pub(super) struct HeartbeatIngress {
    bytes: Vec<u8>,
    meta: DatagramMeta,
    /// The socket generation it came from (a stale socket's datagrams are dropped).
    socket: u64,
}

/// What a LAN probe round found.
#[derive(Debug)]
pub(super) struct ProbeOutcome {
    round: u64,
    /// Addresses that answered, with the round trip.
    answered: Vec<(IpAddr, Duration)>,
    errors: Vec<String>,
    /// From the decision to probe to the last probe's end.
    took: Duration,
    /// The probes, back to the engine for the next round.
    probers: Vec<(String, LanProbe)>,
}

/// What comes back from a probe task: a round after the partner's heartbeat died, or a round
/// of the uplink probes.
#[derive(Debug)]
pub(super) enum ProbeNews {
    Partner(ProbeOutcome),
    Uplink(UplinkOutcome),
}

#[derive(Debug)]
struct ProbeRound {
    round: u64,
    why: LostWhy,
    last_heard: Instant,
    /// Instances to promote if nobody answers.
    promote: Vec<String>,
}

/// The heartbeat's I/O and bookkeeping.
#[derive(Debug)]
pub(super) struct PairLink {
    link: HeartbeatLink,
    interface: String,
    port: u16,
    socket: Option<Arc<PeerSocket>>,
    socket_generation: u64,
    reader: Option<JoinHandle<()>>,
    closed: Option<String>,
    next_open: Option<Instant>,
    ingress: mpsc::Sender<HeartbeatIngress>,
    probes: mpsc::Sender<ProbeNews>,
    probe: Option<ProbeRound>,
    next_round: u64,
    decisions: Vec<(std::time::Instant, String)>,
    alarm: Option<String>,
    board: PairBoard,
    /// The pair id and key the heartbeat runs under (from the board), and the config's own
    /// pair id for when the box is unpaired.
    pairing: Option<(u64, [u8; 32])>,
    config_pair_id: u64,
    next_publish: Instant,
    /// Instances whose split was already reported (to log once).
    split_reported: BTreeSet<String>,
    /// Handing over (shutdown): the heartbeat says so.
    handover: bool,
    /// This box's uplink score as last computed.
    uplink: Option<u8>,
    /// One LAN probe per service interface, opened on first use and kept.
    probers: BTreeMap<String, LanProbe>,
    /// The upstream routers' probes (`peer_link.uplink_probes`) and their score.
    upstream: Uplink,
}

/// The receiving ends, polled by the engine's loop.
#[derive(Debug)]
pub(super) struct PairInbox {
    pub datagrams: mpsc::Receiver<HeartbeatIngress>,
    pub probes: mpsc::Receiver<ProbeNews>,
}

fn settings(config: &Config) -> (HeartbeatSettings, String, u16) {
    let link = config.peer_link.clone().unwrap_or_default();
    let interface = if config.peer_link.is_some() {
        link.interface.as_str().to_owned()
    } else {
        DEFAULT_PEER_INTERFACE.to_owned()
    };
    (
        HeartbeatSettings {
            pair_id: link.pair_id,
            interval: Duration::from_millis(u64::from(link.heartbeat_interval_ms.max(1))),
            dead_after: Duration::from_millis(u64::from(link.dead_after_ms.max(2))),
        },
        interface,
        link.heartbeat_port,
    )
}

impl PairLink {
    pub(super) fn new(config: &Config, board: PairBoard, now: Instant) -> (PairLink, PairInbox) {
        let (mut settings, interface, port) = settings(config);
        let config_pair_id = settings.pair_id;
        let pairing = board.pairing();
        if let Some((pair_id, _)) = pairing {
            settings.pair_id = pair_id;
        }
        let (ingress, datagrams) = mpsc::channel(64);
        let (probes, probe_results) = mpsc::channel(4);
        let mut upstream = Uplink::default();
        upstream.reconfigure(config, now);
        let link = PairLink {
            link: HeartbeatLink::new(
                settings,
                pairing.map(|(_, key)| key),
                crate::peer_channel::random_epoch(),
                now,
            ),
            interface,
            port,
            socket: None,
            socket_generation: 0,
            reader: None,
            closed: Some("not opened yet".to_owned()),
            next_open: Some(now),
            ingress,
            probes,
            probe: None,
            next_round: 0,
            decisions: Vec::new(),
            alarm: None,
            board,
            pairing,
            config_pair_id,
            next_publish: now,
            split_reported: BTreeSet::new(),
            handover: false,
            uplink: None,
            probers: BTreeMap::new(),
            upstream,
        };
        (
            link,
            PairInbox {
                datagrams,
                probes: probe_results,
            },
        )
    }

    /// A committed config: new settings at once; a changed interface or port reopens.
    pub(super) fn reconfigure(&mut self, config: &Config, now: Instant) {
        let (mut settings, interface, port) = settings(config);
        self.config_pair_id = settings.pair_id;
        let pairing = self.board.pairing();
        if let Some((pair_id, _)) = pairing {
            settings.pair_id = pair_id;
        }
        self.pairing = pairing;
        self.link
            .set_settings(now, settings, pairing.map(|(_, key)| key));
        self.upstream.reconfigure(config, now);
        if interface != self.interface || port != self.port {
            self.interface = interface;
            self.port = port;
            self.close("peer link changed");
            self.next_open = Some(now);
        }
    }

    /// Follows a pairing, re-pairing or `unpair` that changed no config (the daemon writes the
    /// board): the heartbeat takes the new pair id and key at its next transmission. Only
    /// `try_lock`s the board, so it never waits.
    pub(super) fn follow_pairing(&mut self, now: Instant) {
        let Some(current) = self.board.try_pairing() else {
            return;
        };
        if current == self.pairing {
            return;
        }
        self.pairing = current;
        let mut settings = self.link.settings();
        settings.pair_id = current.map_or(self.config_pair_id, |(pair_id, _)| pair_id);
        self.link
            .set_settings(now, settings, current.map(|(_, key)| key));
    }

    fn close(&mut self, why: &str) {
        if let Some(reader) = self.reader.take() {
            reader.abort();
        }
        self.socket = None;
        self.closed = Some(why.to_owned());
    }

    /// When the loop must call [`Engine::pair_wake`].
    pub(super) fn poll_timeout(&self) -> Instant {
        let mut at = self.next_publish;
        if self.socket.is_some() {
            at = at.min(self.link.poll_timeout());
        }
        if let Some(open) = self.next_open {
            at = at.min(open);
        }
        if let Some(round) = self.upstream.probes.poll_timeout() {
            at = at.min(round);
        }
        at
    }

    pub(super) fn stop(&mut self) {
        self.close("stopped");
        self.upstream.stop();
        let probers = std::mem::take(&mut self.probers);
        if !probers.is_empty() {
            // Closing packet sockets blocks for ~10 ms each: not on the engine's thread.
            tokio::task::spawn_blocking(move || drop(probers));
        }
    }

    fn decide(&mut self, line: String) {
        if self.decisions.len() == DECISIONS_KEPT {
            self.decisions.remove(0);
        }
        self.decisions.push((std::time::Instant::now(), line));
    }

    fn try_open(&mut self, now: Instant) -> Option<String> {
        self.next_open = None;
        let opened = sysfs::ifindex(Path::new(SYS_CLASS_NET), &self.interface)
            .ok_or_else(|| std::io::Error::other("no such interface"))
            .and_then(|index| PeerSocket::open(&self.interface, index, self.port));
        match opened {
            Ok(socket) => {
                let socket = Arc::new(socket);
                self.socket_generation += 1;
                let generation = self.socket_generation;
                let reader_socket = Arc::clone(&socket);
                let ingress = self.ingress.clone();
                self.reader = Some(tokio::spawn(async move {
                    let mut buffer = vec![0u8; MAX_DATAGRAM_LEN + 1];
                    loop {
                        let Ok(datagram) = reader_socket.recv(&mut buffer).await else {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        };
                        let length = if datagram.truncated {
                            MAX_DATAGRAM_LEN + 1
                        } else {
                            datagram.length.min(buffer.len())
                        };
                        let meta = DatagramMeta {
                            link_local: is_link_local(datagram.source),
                            hop_limit: datagram.hop_limit.unwrap_or(0),
                        };
                        let bytes = buffer.get(..length).unwrap_or_default().to_vec();
                        if ingress
                            .send(HeartbeatIngress {
                                bytes,
                                meta,
                                socket: generation,
                            })
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                }));
                self.socket = Some(socket);
                let was_closed = self.closed.take();
                let settings = self.link.settings();
                was_closed.map(|_| {
                    format!(
                        "pair heartbeat: on {} udp/{} every {} ms, partner dead after {} ms",
                        self.interface,
                        self.port,
                        settings.interval.as_millis(),
                        settings.dead_after.as_millis()
                    )
                })
            }
            Err(error) => {
                let first = self.closed.as_deref() == Some("not opened yet");
                self.closed = Some(format!(
                    "cannot open udp/{} on {}: {error}",
                    self.port, self.interface
                ));
                self.next_open = Some(now + REOPEN_DELAY);
                first.then(|| {
                    format!(
                        "pair heartbeat: cannot open udp/{} on {}: {error}; without it takeovers wait for VRRP's Master_Down_Interval (retrying every {} s)",
                        self.port,
                        self.interface,
                        REOPEN_DELAY.as_secs()
                    )
                })
            }
        }
    }
}

/// One local instance, owned (the arbitration borrows it as a [`LocalInstance`]).
#[derive(Debug, Clone)]
struct Local {
    name: String,
    state: State,
    held_back: bool,
    master_unheard: bool,
    priority: u8,
    source: IpAddr,
}

impl Local {
    fn view(&self) -> LocalInstance<'_> {
        LocalInstance {
            name: &self.name,
            state: self.state,
            held_back: self.held_back,
            master_unheard: self.master_unheard,
            priority: self.priority,
            source: self.source,
        }
    }
}

fn peer_state(state: State) -> PeerState {
    match state {
        State::Initialize => PeerState::Initialize,
        State::Backup => PeerState::Backup,
        State::Master => PeerState::Master,
        State::Fault => PeerState::Fault,
    }
}

impl Engine {
    /// Whether `interface` is up with carrier (the link table, else sysfs).
    fn pair_carrier_of(&self) -> impl Fn(&str) -> bool {
        let table = self
            .context
            .links
            .as_ref()
            .map(|links| links.borrow().clone());
        move |name: &str| match &table {
            Some(table) => table.get(name).is_some_and(|state| state.is_up()),
            None => sysfs::carrier(Path::new(SYS_CLASS_NET), name) == Some(true),
        }
    }

    /// This box's uplink score, compared with the partner's in a split (the master yields only
    /// to a strictly better one): with `peer_link.uplink_probes`, how many of those routers
    /// answer ([`super::uplink`]: None until the first round is in); else how many of its
    /// VRRP interfaces (service LANs) have carrier.
    fn pair_uplink(&self) -> Option<u8> {
        let carrier = self.pair_carrier_of();
        if let Some(pair) = self.pair.as_ref() {
            if pair.upstream.probes.is_configured() {
                return pair.upstream.probes.score(carrier);
            }
        }
        let interfaces: BTreeSet<&str> = self
            .plans
            .values()
            .map(|plan| plan.params.interface.as_str())
            .collect();
        if interfaces.is_empty() {
            return None;
        }
        let up = interfaces.iter().filter(|name| carrier(name)).count();
        Some(u8::try_from(up).unwrap_or(u8::MAX))
    }

    /// The uplink score may have changed (a service LAN's carrier, an uplink round): if it
    /// did, tell the partner now and weigh a split again.
    async fn pair_uplink_changed(&mut self) {
        let uplink = self.pair_uplink();
        let Some(pair) = self.pair.as_mut() else {
            return;
        };
        let was = std::mem::replace(&mut pair.uplink, uplink);
        if was == uplink {
            return;
        }
        if let (Some(was), Some(is)) = (was, uplink) {
            let counted = if pair.upstream.probes.is_configured() {
                "upstream routers answering"
            } else {
                "service LANs with carrier"
            };
            let line = format!("uplink score {was} -> {is} ({counted})");
            self.context.log.line(format!("pair heartbeat: {line}"));
            pair.decide(line);
        }
        self.send_heartbeat_if_open().await;
        self.pair_arbitrate().await;
        let now = self.now();
        self.pair_publish(now, true);
    }

    /// An uplink round came back: count it, and act if the score moved.
    async fn on_uplink_probe(&mut self, outcome: UplinkOutcome) {
        let Some(pair) = self.pair.as_mut() else {
            return;
        };
        for line in pair.upstream.finish_round(outcome) {
            self.context.log.line(format!("pair heartbeat: {line}"));
        }
        self.pair_uplink_changed().await;
    }

    /// The local instances as the arbitration sees them.
    fn pair_locals(&self) -> Vec<Local> {
        self.speaker
            .instances()
            .filter_map(|(id, instance)| {
                let plan = self.plans.get(&id)?;
                Some(Local {
                    name: instance.params().name.clone(),
                    state: instance.state(),
                    held_back: instance.held_back(),
                    master_unheard: instance.master_unheard(),
                    priority: instance.effective_priority(),
                    source: plan.params.primary_address,
                })
            })
            .collect()
    }

    /// Heartbeat timers, the socket (re)open and the board.
    pub(super) async fn pair_wake(&mut self) {
        let now = self.now();
        let Some(pair) = self.pair.as_mut() else {
            return;
        };
        if pair.next_open.is_some_and(|at| at <= now) {
            if let Some(line) = pair.try_open(now) {
                self.context.log.line(line);
            }
        }
        let Some(pair) = self.pair.as_mut() else {
            return;
        };
        pair.upstream.start_round(now, &pair.probes);
        let due = pair.socket.is_some() && pair.link.handle_timeout(now);
        if !pair.split_reported.is_empty() && now >= pair.next_publish {
            // During a split, see (at the board's pace) whether the adverts are heard again.
            self.rearbitrate = true;
        }
        self.pair_events().await;
        if due {
            self.send_heartbeat().await;
        }
        self.pair_publish(now, false);
    }

    /// Sends one heartbeat now, unless actions are pending: a heartbeat never reports a state
    /// whose addresses are still being added or removed (the partner would act on it first);
    /// it then goes out right after the batch is executed.
    pub(super) async fn send_heartbeat(&mut self) {
        if self.speaker.has_pending_actions() {
            self.state_changed = true;
            return;
        }
        let now = self.now();
        if let Some(pair) = self.pair.as_mut() {
            pair.follow_pairing(now);
        }
        let health: Vec<(String, u8, PeerState, u8, bool, bool, IpAddr)> = self
            .speaker
            .instances()
            .filter_map(|(id, instance)| {
                let plan = self.plans.get(&id)?;
                let status_master = instance.master().is_some();
                Some((
                    plan.params.name.clone(),
                    plan.params.vrid,
                    peer_state(instance.state()),
                    instance.effective_priority(),
                    instance.state() == State::Backup
                        && status_master
                        && !instance.master_unheard(),
                    instance.held_back() && instance.master_unheard(),
                    plan.params.primary_address,
                ))
            })
            .collect();
        let entries: Vec<InstanceHealth<'_>> = health
            .iter()
            .filter(|(name, ..)| !name.is_empty() && name.len() <= 64)
            .map(
                |(name, vrid, state, priority, hears, held, source)| InstanceHealth {
                    name,
                    vrid: *vrid,
                    state: *state,
                    priority: *priority,
                    hears_master: *hears,
                    held_back: *held,
                    source: *source,
                },
            )
            .collect();
        let groups = self.context.sharing.local();
        let sharing: Vec<SharingHealth<'_>> = groups
            .iter()
            .filter(|group| !group.name.is_empty() && group.name.len() <= 64)
            .map(|group| SharingHealth {
                name: &group.name,
                active: group.active,
                held: group.held,
                address: group.address,
            })
            .collect();
        let uplink = self.pair_uplink();
        let tracked_down =
            u8::try_from(self.tracked.iter().filter(|(_, up)| !up).count()).unwrap_or(u8::MAX);
        let Some(pair) = self.pair.as_mut() else {
            return;
        };
        let (generation, digest) = pair.board.try_generation().unwrap_or((0, 0));
        let local = LocalHealth {
            generation,
            digest,
            uplink,
            tracked_down,
            handover: pair.handover,
            instances: &entries,
            sharing: &sharing,
        };
        let mut buffer = [0u8; MAX_DATAGRAM_LEN];
        let Ok(length) = pair.link.emit(now, &local, &mut buffer) else {
            return;
        };
        let Some(socket) = pair.socket.clone() else {
            return;
        };
        // A full socket buffer or a link without carrier must not hold the loop: the next
        // heartbeat follows within an interval.
        let _ = socket.send(buffer.get(..length).unwrap_or_default()).await;
    }

    /// A heartbeat datagram arrived.
    pub(super) async fn on_heartbeat(&mut self, ingress: HeartbeatIngress) {
        let now = self.now();
        let Some(pair) = self.pair.as_mut() else {
            return;
        };
        if ingress.socket != pair.socket_generation {
            return;
        }
        // Refusals are counted by the link and change nothing.
        let _ = pair.link.handle_datagram(now, ingress.meta, &ingress.bytes);
        self.pair_events().await;
        self.pair_publish(now, false);
    }

    /// The peer NIC's carrier from the link table (its loss is an immediate miss).
    pub(super) async fn pair_carrier(&mut self) {
        let now = self.now();
        let Some(pair) = self.pair.as_mut() else {
            return;
        };
        let carrier = match &self.context.links {
            Some(links) => links
                .borrow()
                .get(&pair.interface)
                .map(|state| state.is_up()),
            None => sysfs::carrier(Path::new(SYS_CLASS_NET), &pair.interface),
        };
        if let Some(carrier) = carrier {
            if carrier != pair.link.carrier() {
                pair.link.handle_carrier(now, carrier);
                self.pair_events().await;
                self.pair_publish(now, true);
            }
        }
        // A service LAN's carrier changed this box's uplink: tell the partner now, and weigh
        // a split again.
        self.pair_uplink_changed().await;
    }

    /// Acts on what the heartbeat reported.
    async fn pair_events(&mut self) {
        loop {
            let Some(pair) = self.pair.as_mut() else {
                return;
            };
            let Some(event) = pair.link.poll_event() else {
                return;
            };
            match event {
                LinkEvent::Up => {
                    // The probes a takeover will need, opened now rather than on its path.
                    let mut interfaces: BTreeSet<String> = self
                        .plans
                        .values()
                        .map(|plan| plan.params.interface.clone())
                        .collect();
                    interfaces.extend(
                        self.context
                            .sharing
                            .local()
                            .into_iter()
                            .map(|group| group.interface),
                    );
                    let Some(pair) = self.pair.as_mut() else {
                        return;
                    };
                    for interface in interfaces {
                        if let std::collections::btree_map::Entry::Vacant(slot) =
                            pair.probers.entry(interface)
                        {
                            if let Ok(prober) = LanProbe::open(slot.key()) {
                                slot.insert(prober);
                            }
                        }
                    }
                    let rtt = pair.link.rtt();
                    pair.alarm = None;
                    pair.probe = None;
                    let line = format!(
                        "pair heartbeat: partner up on {}{}",
                        pair.interface,
                        rtt.map_or_else(String::new, |rtt| format!(
                            " (rtt {:.2} ms)",
                            rtt.as_secs_f64() * 1000.0
                        ))
                    );
                    self.context.log.line(line);
                    self.publish_partner_groups("partner heartbeat up");
                    self.pair_arbitrate().await;
                }
                LinkEvent::Report => {
                    self.publish_partner_groups("partner report");
                    self.pair_arbitrate().await;
                }
                LinkEvent::Lost { why, last_heard } => self.pair_lost(why, last_heard),
            }
        }
    }

    /// The partner's report changed (session up), or this box's states did: hold, release,
    /// promote or yield.
    pub(super) async fn pair_arbitrate(&mut self) {
        let now = self.now();
        let locals = self.pair_locals();
        let uplink = self.pair_uplink();
        let Some(pair) = self.pair.as_ref() else {
            return;
        };
        if !pair.link.is_up() {
            return;
        }
        let Some(report) = pair.link.report().cloned() else {
            return;
        };
        let views: Vec<LocalInstance<'_>> = locals.iter().map(Local::view).collect();
        let steps = arbitrate(&views, &report, uplink);
        // Splits seen from this side, logged once each.
        let mut split_lines = Vec::new();
        let mut split_now = BTreeSet::new();
        for local in &locals {
            let (name, unheard) = (&local.name, local.master_unheard);
            let partner = report.instance(name);
            let yielding = steps.iter().find_map(|(step_name, step)| match step {
                Step::Yield(Cause::Partner(PartnerCause::BetterUplink { partner, here }))
                    if step_name == name =>
                {
                    Some((*partner, *here))
                }
                _ => None,
            });
            let seen = match (local.state, partner) {
                (State::Master, Some(p)) if p.held_back => Some(match yielding {
                    Some((partner, here)) => format!(
                        "vrrp: {name}: service LAN split: the partner does not hear this box's adverts and has the better uplink ({partner}, this box {here}); the VIPs go to the partner"
                    ),
                    None => format!(
                        "vrrp: {name}: service LAN split: the partner does not hear this box's adverts; this box keeps the VIPs (the partner is held back)"
                    ),
                }),
                (State::Backup, Some(p)) if unheard && p.state == PeerState::Master => Some(format!(
                    "vrrp: {name}: service LAN split: partner is master, adverts not heard on this box; staying backup"
                )),
                _ => None,
            };
            if let Some(line) = seen {
                split_now.insert(name.clone());
                split_lines.push((name.clone(), line));
            }
        }
        if let Some(pair) = self.pair.as_mut() {
            for (name, line) in split_lines {
                if !pair.split_reported.contains(&name) {
                    self.context.log.line(&line);
                    pair.alarm = Some(line.clone());
                    pair.decide(line);
                }
            }
            if split_now.is_empty() && !pair.split_reported.is_empty() {
                pair.alarm = None;
            }
            pair.split_reported = split_now;
        }
        for (name, step) in steps {
            let Some(id) = self.speaker.find(&name) else {
                continue;
            };
            let acted = match &step {
                Step::Hold(held, cause) => {
                    let promoted = self.speaker.set_held_back(now, id, *held, cause.clone());
                    promoted.then(|| format!("vrrp: {name}: {cause}: took over"))
                }
                Step::Force(cause) => self
                    .speaker
                    .force_master(now, id, cause.clone())
                    .then(|| format!("vrrp: {name}: {cause}: took over")),
                Step::Yield(cause) => self
                    .speaker
                    .yield_master(now, id, cause.clone())
                    .then(|| format!("vrrp: {name}: {cause}: gave the VIPs to the partner")),
            };
            if let (Some(line), Some(pair)) = (acted, self.pair.as_mut()) {
                pair.decide(line);
            }
        }
        self.drain_actions().await;
    }

    /// The partner's load-sharing groups, from its report, for the load-sharing engine.
    fn publish_partner_groups(&self, cause: &str) {
        let Some(pair) = self.pair.as_ref() else {
            return;
        };
        if !pair.link.is_up() {
            return;
        }
        let groups = pair
            .link
            .report()
            .map(|report| {
                report
                    .sharing
                    .iter()
                    .map(|group| PartnerGroup {
                        name: group.name.clone(),
                        // A partner handing over (a clean shutdown) leaves every bucket here.
                        active: group.active && !report.handover,
                        held: group.held,
                        address: group.address,
                    })
                    .collect()
            })
            .unwrap_or_default();
        self.context
            .sharing
            .set_partner(Presence::Up(groups), cause);
    }

    /// The heartbeat died: probe the partner on the service LANs before acting.
    fn pair_lost(&mut self, why: LostWhy, last_heard: Instant) {
        let locals = self.pair_locals();
        let Some(pair) = self.pair.as_mut() else {
            return;
        };
        let views: Vec<LocalInstance<'_>> = locals.iter().map(Local::view).collect();
        let report = pair.link.report().cloned();
        let promote: Vec<String> = lost_targets(&views, report.as_ref())
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        // Probe every address the partner reported (also from the master's side, for the
        // alarm), each from this box's own address on that LAN.
        let mut targets: Vec<(String, IpAddr, IpAddr)> = Vec::new();
        if let Some(report) = &report {
            for partner in &report.instances {
                let Some(id) = self.speaker.find(&partner.name) else {
                    continue;
                };
                let Some(plan) = self.plans.get(&id) else {
                    continue;
                };
                let source = plan.params.primary_address;
                if source.is_ipv4() != partner.source.is_ipv4()
                    || targets.iter().any(|(_, t, _)| *t == partner.source)
                {
                    continue;
                }
                targets.push((plan.params.interface.clone(), partner.source, source));
            }
            // Load sharing: the partner's own address on each group's LAN, from this box's
            // own address there.
            let local = self.context.sharing.local();
            for partner in &report.sharing {
                let Some(here) = local.iter().find(|g| g.name == partner.name) else {
                    continue;
                };
                let (target, source) = (IpAddr::V4(partner.address), IpAddr::V4(here.address));
                if partner.address.is_unspecified()
                    || here.address.is_unspecified()
                    || targets.iter().any(|(_, t, _)| *t == target)
                {
                    continue;
                }
                targets.push((here.interface.clone(), target, source));
            }
        }
        pair.next_round += 1;
        let round = pair.next_round;
        let timeout = probe_timeout(pair.link.settings());
        self.context.log.line(format!(
            "pair heartbeat: partner lost on {} ({why}); probing it on the service LAN ({} addresses, {} ms)",
            pair.interface,
            targets.len(),
            timeout.as_millis()
        ));
        if targets.is_empty() {
            pair.decide(format!(
                "partner heartbeat lost ({why}); nothing to take over, nothing to probe"
            ));
            self.context.sharing.set_partner(
                Presence::Alive,
                format!("partner heartbeat lost ({why}), no address of it to probe: nobody takes its buckets"),
            );
            return;
        }
        pair.probe = Some(ProbeRound {
            round,
            why,
            last_heard,
            promote,
        });
        // One task per service LAN, each with that LAN's probe (kept open for the engine's
        // life: closing a packet socket blocks for ~10 ms), so several LANs are probed at once.
        let mut by_interface: BTreeMap<String, Vec<(IpAddr, IpAddr)>> = BTreeMap::new();
        for (interface, target, source) in targets {
            by_interface
                .entry(interface)
                .or_default()
                .push((target, source));
        }
        let mut errors = Vec::new();
        let mut jobs = Vec::new();
        for (interface, targets) in by_interface {
            let prober = match pair.probers.remove(&interface) {
                Some(prober) => prober,
                None => match LanProbe::open(&interface) {
                    Ok(prober) => prober,
                    Err(error) => {
                        errors.push(format!("{interface}: {error}"));
                        continue;
                    }
                },
            };
            jobs.push((interface, prober, targets));
        }
        let results = pair.probes.clone();
        let began = std::time::Instant::now();
        tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for (interface, mut prober, targets) in jobs {
                tasks.spawn(async move {
                    let mut found = Vec::new();
                    for (target, source) in targets {
                        let outcome = prober
                            .probe(target, source, timeout, PROBE_ATTEMPTS)
                            .await
                            .map(|answer| answer.map(|a| a.elapsed));
                        found.push((target, outcome));
                    }
                    (interface, prober, found)
                });
            }
            let mut answered = Vec::new();
            let mut probers = Vec::new();
            while let Some(joined) = tasks.join_next().await {
                let Ok((interface, prober, found)) = joined else {
                    errors.push("a probe task failed".to_owned());
                    continue;
                };
                for (target, outcome) in found {
                    match outcome {
                        Ok(Some(elapsed)) => answered.push((target, elapsed)),
                        Ok(None) => {}
                        Err(error) => errors.push(format!("{target}: {error}")),
                    }
                }
                probers.push((interface, prober));
            }
            let _ = results
                .send(ProbeNews::Partner(ProbeOutcome {
                    round,
                    answered,
                    errors,
                    took: began.elapsed(),
                    probers,
                }))
                .await;
        });
    }

    /// A probe task's news.
    pub(super) async fn on_probe(&mut self, news: ProbeNews) {
        match news {
            ProbeNews::Partner(outcome) => self.on_partner_probe(outcome).await,
            ProbeNews::Uplink(outcome) => self.on_uplink_probe(outcome).await,
        }
    }

    /// The LAN probe's answer: silence promotes, an answer raises the cable alarm.
    async fn on_partner_probe(&mut self, mut outcome: ProbeOutcome) {
        let now = self.now();
        let Some(pair) = self.pair.as_mut() else {
            return;
        };
        for (interface, prober) in std::mem::take(&mut outcome.probers) {
            if let Some(extra) = pair.probers.insert(interface, prober) {
                // Closing a packet socket blocks for ~10 ms: never on this thread's loop.
                tokio::task::spawn_blocking(move || drop(extra));
            }
        }
        let Some(round) = pair.probe.take_if(|r| r.round == outcome.round) else {
            return;
        };
        for error in &outcome.errors {
            self.context
                .log
                .line(format!("pair heartbeat: LAN probe: {error}"));
        }
        if pair.link.is_up() {
            // The heartbeat came back while probing.
            return;
        }
        let silent = now.saturating_duration_since(round.last_heard);
        if let Some((address, elapsed)) = outcome.answered.first() {
            let line = format!(
                "peer cable down ({}): partner answers on the service LAN ({address} in {:.1} ms); no takeover, VRRP decides as without a heartbeat; check the peer cable",
                round.why,
                elapsed.as_secs_f64() * 1000.0
            );
            self.context
                .log
                .line(format!("pair heartbeat: ALARM: {line}"));
            self.context
                .sharing
                .set_partner(Presence::Alive, line.clone());
            pair.alarm = Some(line.clone());
            pair.decide(line);
        } else if !outcome.errors.is_empty() {
            // Unconfirmed: no forced takeover (it could make two masters); VRRP decides.
            let line = format!(
                "partner heartbeat lost ({}), and the LAN probe could not run; VRRP decides as without a heartbeat",
                round.why
            );
            self.context.log.line(format!("pair heartbeat: {line}"));
            self.context
                .sharing
                .set_partner(Presence::Alive, line.clone());
            pair.alarm = Some(line.clone());
            pair.decide(line);
        } else {
            let cause = Cause::Partner(PartnerCause::Lost {
                silent_ms: u64::try_from(silent.as_millis()).unwrap_or(u64::MAX),
                why: round.why.to_string(),
            });
            let mut taken = Vec::new();
            for name in &round.promote {
                if let Some(id) = self.speaker.find(name) {
                    if self.speaker.force_master(now, id, cause.clone()) {
                        taken.push(name.clone());
                    }
                }
            }
            let line = format!(
                "partner heartbeat lost ({}), partner silent on the service LAN (probed for {:.1} ms): {} {} ms after its last heartbeat",
                round.why,
                outcome.took.as_secs_f64() * 1000.0,
                match (taken.is_empty(), self.context.sharing.local().is_empty()) {
                    (true, true) => "nothing to take over".to_owned(),
                    (true, false) => "the load-sharing groups take its buckets".to_owned(),
                    (false, true) => format!("took over {}", taken.join(", ")),
                    (false, false) => format!(
                        "took over {}; the load-sharing groups take its buckets",
                        taken.join(", ")
                    ),
                },
                silent.as_millis()
            );
            self.context.log.line(format!("pair heartbeat: {line}"));
            self.context.sharing.set_partner(
                Presence::Lost,
                format!(
                    "partner heartbeat lost ({}), partner silent on the service LAN",
                    round.why
                ),
            );
            pair.alarm = None;
            pair.decide(line);
        }
        // Without a heartbeat nothing holds a backup back: VRRP as without one.
        let held: Vec<InstanceId> = self
            .speaker
            .instances()
            .filter(|(_, i)| i.held_back())
            .map(|(id, _)| id)
            .collect();
        for id in held {
            let cause = Cause::Partner(PartnerCause::Released {
                state: "unknown (heartbeat lost)",
            });
            self.speaker.set_held_back(now, id, false, cause);
        }
        self.drain_actions().await;
        self.pair_publish(now, true);
    }

    async fn send_heartbeat_if_open(&mut self) {
        if self.pair.as_ref().is_some_and(|p| p.socket.is_some()) {
            self.send_heartbeat().await;
        }
    }

    /// Planned hand-over before a shutdown: tell the partner to take everything now.
    pub(super) async fn pair_hand_over(&mut self) {
        let Some(pair) = self.pair.as_mut() else {
            return;
        };
        if pair.socket.is_none() || !pair.link.is_up() {
            return;
        }
        pair.handover = true;
        self.send_heartbeat().await;
        self.send_heartbeat().await;
    }

    /// Ends a planned hand-over (`vrrp standby off`): the heartbeat stops asking the partner to
    /// take everything, from the next one sent now.
    pub(super) async fn pair_resume(&mut self) {
        let Some(pair) = self.pair.as_mut() else {
            return;
        };
        pair.handover = false;
        self.send_heartbeat_if_open().await;
    }

    /// Sends a heartbeat at once after a state change, so the partner learns it within a
    /// round trip rather than an interval; the loop weighs the partner's report again next.
    pub(super) async fn pair_state_changed(&mut self) {
        if self.pair.as_ref().is_some_and(|p| p.socket.is_some()) {
            self.send_heartbeat().await;
        }
        self.rearbitrate = true;
    }

    /// Publishes the heartbeat's state to the board (at most every [`PUBLISH_EVERY`] unless
    /// `now_anyway`).
    fn pair_publish(&mut self, now: Instant, now_anyway: bool) {
        let Some(pair) = self.pair.as_mut() else {
            return;
        };
        if !now_anyway && now < pair.next_publish {
            return;
        }
        let carrier = self.pair_carrier_of();
        let Some(pair) = self.pair.as_mut() else {
            return;
        };
        pair.next_publish = now + PUBLISH_EVERY;
        let settings = pair.link.settings();
        let since_heard = pair
            .link
            .last_heard()
            .map(|at| Duration::from_nanos(now.as_nanos().saturating_sub(at.as_nanos())));
        let wall_now = std::time::Instant::now();
        let uplink = if pair.upstream.probes.is_configured() {
            pair.upstream.probes.view(pair.uplink, carrier)
        } else {
            UplinkView {
                score: pair.uplink,
                ..UplinkView::default()
            }
        };
        let view = HeartbeatView {
            interface: pair.interface.clone(),
            port: pair.port,
            interval: settings.interval,
            dead_after: settings.dead_after,
            pair_id: settings.pair_id,
            keyed: false,
            closed: pair.closed.clone(),
            state: pair.link.state(),
            carrier: pair.link.carrier(),
            last_heard: since_heard.and_then(|span| wall_now.checked_sub(span)),
            rtt: pair.link.rtt(),
            counters: pair.link.counters().clone(),
            partner: pair.link.report().cloned(),
            decisions: pair.decisions.clone(),
            alarm: pair.alarm.clone(),
            uplink,
        };
        pair.board.try_publish(Some(view));
    }

    /// One status line for `vrrp status`.
    pub(super) fn pair_status_line(&self) -> String {
        let Some(pair) = self.pair.as_ref() else {
            return "pair heartbeat: not running\n".to_owned();
        };
        let now = self.now();
        let settings = pair.link.settings();
        format!(
            "pair heartbeat: {} udp/{} every {} ms: partner {}, last heard {}, missed {}, rtt {}{}\n",
            pair.interface,
            pair.port,
            settings.interval.as_millis(),
            pair.link.state().as_str(),
            pair.link.last_heard().map_or_else(
                || "never".to_owned(),
                |at| format!("{} ms ago", now.saturating_duration_since(at).as_millis())
            ),
            pair.link.missed(now),
            pair.link
                .rtt()
                .map_or_else(|| "-".to_owned(), |rtt| format!("{:.2} ms", rtt.as_secs_f64() * 1000.0)),
            pair.alarm
                .as_ref()
                .map_or_else(String::new, |alarm| format!("; ALARM: {alarm}"))
        )
    }
}
