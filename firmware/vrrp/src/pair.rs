//! The pair heartbeat's state and decisions, sans-IO: a BFD-like session with the partner box
//! over the peer cable ([`HeartbeatLink`]) and what its news means for each VRRP instance
//! ([`arbitrate`], [`lost_targets`]).
//!
//! VRRP alone notices a dead master only after the Master_Down_Interval (seconds at the usual
//! 1 s adverts) and, when the service LAN splits between the boxes, makes both master. The
//! heartbeat, every few milliseconds on a cable of its own, fixes both:
//! - **Death**: when the heartbeat dies (silence for `dead_after`, or carrier loss on the peer
//!   NIC) the backup probes the partner's own address on the service LAN; silence there too
//!   means the partner is gone, and the backup takes over at once ([`lost_targets`] names
//!   what to probe and what to promote). An answer means only the cable failed: no takeover,
//!   an alarm, and VRRP goes on as it would without a heartbeat.
//! - **Split**: while the heartbeat says the partner is alive and master of an instance, this
//!   box's backup is held back ([`Step::Hold`]): its Master_Down_Timer expiring means it does
//!   not hear the adverts (a split), not that the master died. Exactly one box holds each VIP;
//!   the master yields only once the held-back partner reports the split, and only to a
//!   strictly better uplink score (the daemon's: upstream routers answering its probes when
//!   `peer_link.uplink_probes` lists them, else service LANs with carrier; a score not yet
//!   measured moves nothing).
//! - **Reports**: a partner that reports an instance in fault (a tracked object lost) or asks
//!   to hand over gives it to this box at once.
//!
//! Freshness ([`HeartbeatLink::handle_datagram`]): a datagram counts as proof of life only if
//! it echoes this box's session (random per start), so nothing captured in an earlier boot
//! counts; within a partner session the sequence must grow; a partner session seen before and
//! replaced is never accepted again. Every refusal is counted by reason and changes nothing.

use core::net::IpAddr;
use core::time::Duration;
use std::collections::{BTreeMap, VecDeque};
use std::string::{String, ToString};
use std::vec::Vec;

use tandem_wire::heartbeat::{
    self, HeartbeatHeader, InstanceHealth, KeyPolicy, PairKey, PeerState, SharingHealth,
    MAX_DATAGRAM_LEN, MAX_SHARING_GROUPS,
};

use crate::status::{Cause, PartnerCause, State};
use crate::time::Instant;

/// Sent heartbeats remembered for RTT measurement.
const SENT_REMEMBERED: usize = 64;
/// Replaced partner sessions remembered (never accepted again).
const RETIRED_REMEMBERED: usize = 16;

/// How the heartbeat runs (from `peer_link`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeartbeatSettings {
    pub pair_id: u64,
    pub interval: Duration,
    pub dead_after: Duration,
}

/// Where the session with the partner stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Nothing heard (or the partner was declared dead).
    Down,
    /// The partner's heartbeats arrive but do not echo this box's session yet.
    Init,
    /// Both directions work: each box echoes the other's session.
    Up,
}

impl LinkState {
    pub const fn as_str(self) -> &'static str {
        match self {
            LinkState::Down => "down",
            LinkState::Init => "init",
            LinkState::Up => "up",
        }
    }
}

/// Why the partner was declared dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LostWhy {
    /// No heartbeat for this long.
    Silence(Duration),
    /// The peer NIC lost carrier.
    Carrier,
}

impl core::fmt::Display for LostWhy {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            LostWhy::Silence(span) => write!(f, "silent for {} ms", span.as_millis()),
            LostWhy::Carrier => f.write_str("peer link carrier lost"),
        }
    }
}

/// What the session reports to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// The session came up (both directions).
    Up,
    /// The partner is dead on the heartbeat. `last_heard` is its last live heartbeat.
    Lost { why: LostWhy, last_heard: Instant },
    /// The partner's report (states, health) changed.
    Report,
}

/// One instance as the partner reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerInstance {
    pub name: String,
    pub vrid: u8,
    pub state: PeerState,
    pub priority: u8,
    pub hears_master: bool,
    pub held_back: bool,
    pub source: IpAddr,
}

/// The partner's last report.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartnerReport {
    pub generation: u64,
    pub digest: u64,
    pub uplink: Option<u8>,
    pub tracked_down: u8,
    pub handover: bool,
    pub truncated: bool,
    pub instances: Vec<PartnerInstance>,
    /// The partner's load-sharing groups: which buckets it holds.
    pub sharing: Vec<PartnerGroup>,
}

/// One load-sharing group as the partner reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerGroup {
    pub name: String,
    /// The group runs on the partner.
    pub active: bool,
    /// Buckets the partner accepts new flows in (bit i = bucket i).
    pub held: u64,
    /// The partner's own address on the group's LAN (unspecified: none).
    pub address: core::net::Ipv4Addr,
}

impl PartnerReport {
    /// The partner's view of load-sharing group `name`.
    pub fn group(&self, name: &str) -> Option<&PartnerGroup> {
        self.sharing.iter().find(|g| g.name == name)
    }

    /// The partner's view of instance `name`.
    pub fn instance(&self, name: &str) -> Option<&PartnerInstance> {
        self.instances.iter().find(|i| i.name == name)
    }
}

/// What this box tells the partner.
#[derive(Debug, Clone, Copy)]
pub struct LocalHealth<'a> {
    pub generation: u64,
    pub digest: u64,
    pub uplink: Option<u8>,
    pub tracked_down: u8,
    pub handover: bool,
    pub instances: &'a [InstanceHealth<'a>],
    /// This box's load-sharing groups (sent before instances when room is short).
    pub sharing: &'a [SharingHealth<'a>],
}

/// Counters, for status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeartbeatCounters {
    pub sent: u64,
    pub received: u64,
    /// Refused datagrams by reason.
    pub refused: BTreeMap<&'static str, u64>,
    /// Times the partner was declared dead.
    pub losses: u64,
    /// Times the session came up.
    pub ups: u64,
}

#[derive(Debug, Clone, Copy)]
struct PartnerSession {
    session: u64,
    last_sequence: u64,
    /// When `last_sequence` arrived (for the echo delay).
    heard_at: Instant,
}

/// Receive metadata the socket layer reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatagramMeta {
    /// The source is IPv6 link-local (fe80::/10).
    pub link_local: bool,
    /// The IPv6 hop limit it arrived with.
    pub hop_limit: u8,
}

/// The session with the partner.
#[derive(Debug, Clone)]
pub struct HeartbeatLink {
    settings: HeartbeatSettings,
    key: Option<PairKey>,
    session: u64,
    sequence: u64,
    next_tx: Instant,
    sent: VecDeque<(u64, Instant)>,
    /// The partner's session that echoed ours (confirmed).
    partner: Option<PartnerSession>,
    /// A session heard that has not echoed ours yet (a partner starting, or a replay: it
    /// displaces nothing until it proves it heard this box).
    tentative: Option<PartnerSession>,
    retired: VecDeque<u64>,
    state: LinkState,
    carrier: bool,
    last_heard: Option<Instant>,
    report: Option<PartnerReport>,
    rtt: Option<Duration>,
    counters: HeartbeatCounters,
    events: VecDeque<LinkEvent>,
    last_loss: Option<(LostWhy, Instant)>,
}

impl HeartbeatLink {
    /// A session with this box's `session` (random per start, not 0), transmitting from `now`.
    pub fn new(
        settings: HeartbeatSettings,
        key: Option<PairKey>,
        session: u64,
        now: Instant,
    ) -> HeartbeatLink {
        HeartbeatLink {
            settings,
            key,
            session: session.max(1),
            sequence: 0,
            next_tx: now,
            sent: VecDeque::new(),
            partner: None,
            tentative: None,
            retired: VecDeque::new(),
            state: LinkState::Down,
            carrier: true,
            last_heard: None,
            report: None,
            rtt: None,
            counters: HeartbeatCounters::default(),
            events: VecDeque::new(),
            last_loss: None,
        }
    }

    /// New settings after a commit (interval and dead time take effect at once; a changed
    /// pair id drops the partner's session).
    pub fn set_settings(
        &mut self,
        now: Instant,
        settings: HeartbeatSettings,
        key: Option<PairKey>,
    ) {
        let identity_changed = settings.pair_id != self.settings.pair_id || key != self.key;
        self.settings = settings;
        self.key = key;
        if identity_changed && self.state != LinkState::Down {
            self.declare_lost(now, LostWhy::Silence(Duration::ZERO));
        }
        self.next_tx = self.next_tx.min(now + settings.interval);
    }

    pub fn settings(&self) -> HeartbeatSettings {
        self.settings
    }

    pub fn state(&self) -> LinkState {
        self.state
    }

    /// The partner is alive on the heartbeat.
    pub fn is_up(&self) -> bool {
        self.state == LinkState::Up
    }

    pub fn carrier(&self) -> bool {
        self.carrier
    }

    pub fn report(&self) -> Option<&PartnerReport> {
        self.report.as_ref()
    }

    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    pub fn last_heard(&self) -> Option<Instant> {
        self.last_heard
    }

    pub fn last_loss(&self) -> Option<(LostWhy, Instant)> {
        self.last_loss
    }

    pub fn counters(&self) -> &HeartbeatCounters {
        &self.counters
    }

    /// Heartbeats missed since the last one heard (0 while they arrive on time).
    pub fn missed(&self, now: Instant) -> u64 {
        let Some(heard) = self.last_heard else {
            return 0;
        };
        let interval = self.settings.interval.as_nanos().max(1);
        let silent = now.saturating_duration_since(heard).as_nanos();
        u64::try_from(silent / interval).unwrap_or(u64::MAX)
    }

    /// Next event out.
    pub fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must run next.
    pub fn poll_timeout(&self) -> Instant {
        match (self.state, self.last_heard) {
            (LinkState::Down, _) | (_, None) => self.next_tx,
            (_, Some(heard)) => self.next_tx.min(heard + self.settings.dead_after),
        }
    }

    /// Timers: declares the partner dead after `dead_after` of silence. Returns true when a
    /// heartbeat is due (call [`emit`](Self::emit)).
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        if let (LinkState::Init | LinkState::Up, Some(heard)) = (self.state, self.last_heard) {
            if now >= heard + self.settings.dead_after {
                self.declare_lost(now, LostWhy::Silence(now.saturating_duration_since(heard)));
            }
        }
        if let Some(tentative) = self.tentative {
            // Heard only unechoed heartbeats: forget them after the same silence.
            if now >= tentative.heard_at + self.settings.dead_after {
                self.tentative = None;
                if self.state == LinkState::Init {
                    self.state = LinkState::Down;
                }
            }
        }
        now >= self.next_tx
    }

    /// Carrier of the peer NIC changed: its loss counts as an immediate miss.
    pub fn handle_carrier(&mut self, now: Instant, up: bool) {
        self.carrier = up;
        if !up && self.state != LinkState::Down {
            self.declare_lost(now, LostWhy::Carrier);
        }
    }

    fn declare_lost(&mut self, now: Instant, why: LostWhy) {
        let was_up = self.state == LinkState::Up;
        self.state = LinkState::Down;
        // The partner's session stays known (with its last sequence): if only the cable was
        // cut, the same session resumes with higher sequences, and replays stay refused.
        let last_heard = self.last_heard.take();
        if was_up {
            self.counters.losses += 1;
            self.last_loss = Some((why, now));
            self.events.push_back(LinkEvent::Lost {
                why,
                last_heard: last_heard.unwrap_or(now),
            });
        }
    }

    fn retire(&mut self, session: u64) {
        if !self.retired.contains(&session) {
            if self.retired.len() == RETIRED_REMEMBERED {
                self.retired.pop_front();
            }
            self.retired.push_back(session);
        }
    }

    /// Writes the next heartbeat into `buffer` and returns its length; the next one is due
    /// one interval later.
    pub fn emit(
        &mut self,
        now: Instant,
        health: &LocalHealth<'_>,
        buffer: &mut [u8],
    ) -> Result<usize, heartbeat::HeartbeatError> {
        self.sequence += 1;
        // Echo the confirmed partner while up; else whoever we last heard, so that a starting
        // partner (tentative) or a resuming one (confirmed) can confirm us.
        let echoed = match (self.state, self.partner, self.tentative) {
            (LinkState::Up, Some(partner), _) => Some(partner),
            (_, partner, Some(tentative)) => match partner {
                Some(partner) if partner.heard_at > tentative.heard_at => Some(partner),
                _ => Some(tentative),
            },
            (_, partner, None) => partner,
        };
        let (echo_session, echo_sequence, echo_delay) = match echoed {
            Some(partner) => (
                partner.session,
                partner.last_sequence,
                now.saturating_duration_since(partner.heard_at),
            ),
            None => (0, 0, Duration::ZERO),
        };
        let keyed = self.key.is_some();
        // Load-sharing groups first (a handful of small entries; the bucket owners must know),
        // then as many instances as the rest of the datagram holds.
        let mut groups = health
            .sharing
            .get(..MAX_SHARING_GROUPS)
            .unwrap_or(health.sharing);
        while heartbeat::buffer_len_with(&[], groups, keyed) > MAX_DATAGRAM_LEN {
            groups = groups
                .get(..groups.len().saturating_sub(1))
                .unwrap_or_default();
        }
        let room = MAX_DATAGRAM_LEN - heartbeat::sharing_len(groups);
        let mut fit = heartbeat::entries_that_fit(health.instances, keyed);
        while fit > 0
            && heartbeat::buffer_len_with(
                health.instances.get(..fit).unwrap_or_default(),
                &[],
                keyed,
            ) > room
        {
            fit -= 1;
        }
        let header = HeartbeatHeader {
            pair_id: self.settings.pair_id,
            session: self.session,
            sequence: self.sequence,
            echo_session,
            echo_sequence,
            echo_delay_us: u32::try_from(echo_delay.as_micros()).unwrap_or(u32::MAX),
            interval_us: u32::try_from(self.settings.interval.as_micros()).unwrap_or(u32::MAX),
            generation: health.generation,
            digest: health.digest,
            uplink: health.uplink,
            tracked_down: health.tracked_down,
            handover: health.handover,
            truncated: fit < health.instances.len() || groups.len() < health.sharing.len(),
        };
        let instances = health.instances.get(..fit).unwrap_or_default();
        let len = heartbeat::emit_with(&header, instances, groups, buffer, self.key.as_ref())?;
        if self.sent.len() == SENT_REMEMBERED {
            self.sent.pop_front();
        }
        self.sent.push_back((self.sequence, now));
        self.counters.sent += 1;
        let mut next = self.next_tx + self.settings.interval;
        if next <= now {
            next = now + self.settings.interval;
        }
        self.next_tx = next;
        Ok(len)
    }

    fn refuse(&mut self, reason: &'static str) -> Result<(), &'static str> {
        *self.counters.refused.entry(reason).or_insert(0) += 1;
        Err(reason)
    }

    /// A datagram arrived on the heartbeat socket. Refusals are counted by reason and change
    /// nothing else.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        meta: DatagramMeta,
        datagram: &[u8],
    ) -> Result<(), &'static str> {
        if !meta.link_local {
            return self.refuse("not link-local");
        }
        if meta.hop_limit != 255 {
            return self.refuse("hop limit not 255");
        }
        if datagram.len() > MAX_DATAGRAM_LEN {
            return self.refuse("bad length");
        }
        let policy = match &self.key {
            Some(key) => KeyPolicy::Require(key),
            None => KeyPolicy::Unkeyed,
        };
        let packet = match heartbeat::decode(datagram, policy, self.settings.pair_id) {
            Ok(packet) => packet,
            Err(error) => return self.refuse(error.reason()),
        };
        let header = packet.header();
        if header.session == self.session {
            return self.refuse("own heartbeat");
        }
        if header.echo_session != 0 && header.echo_session != self.session {
            return self.refuse("stale echo");
        }
        let echoes_us = header.echo_session == self.session;
        let heard = PartnerSession {
            session: header.session,
            last_sequence: header.sequence,
            heard_at: now,
        };
        match (self.partner, self.tentative) {
            (Some(partner), _) if partner.session == header.session => {
                if header.sequence <= partner.last_sequence {
                    return self.refuse("replayed");
                }
                self.partner = Some(heard);
            }
            (_, Some(tentative)) if tentative.session == header.session => {
                if header.sequence <= tentative.last_sequence {
                    return self.refuse("replayed");
                }
                self.tentative = Some(heard);
            }
            _ if self.retired.contains(&header.session) => {
                return self.refuse("retired session");
            }
            _ if self.state == LinkState::Up => {
                // The partner is alive with another session: a second sender (a replay from
                // an earlier boot, a miscabled third box). A partner that restarted is heard
                // once its old session has gone silent.
                return self.refuse("second session");
            }
            _ => self.tentative = Some(heard),
        }
        if echoes_us && self.tentative.is_some_and(|t| t.session == header.session) {
            // The new session proved it hears us: it replaces the old one for good.
            if let Some(old) = self.partner.take() {
                self.retire(old.session);
            }
            self.partner = self.tentative.take();
        }
        self.counters.received += 1;
        if !echoes_us {
            if self.state == LinkState::Down {
                self.state = LinkState::Init;
            }
            // Only a session that proves it hears us reports anything.
            return Ok(());
        }
        let report = PartnerReport {
            generation: header.generation,
            digest: header.digest,
            uplink: header.uplink,
            tracked_down: header.tracked_down,
            handover: header.handover,
            truncated: header.truncated,
            instances: packet
                .entries()
                .map(|entry| PartnerInstance {
                    name: entry.name.to_string(),
                    vrid: entry.vrid,
                    state: entry.state,
                    priority: entry.priority,
                    hears_master: entry.hears_master,
                    held_back: entry.held_back,
                    source: entry.source,
                })
                .collect(),
            sharing: packet
                .sharing()
                .map(|group| PartnerGroup {
                    name: group.name.to_string(),
                    active: group.active,
                    held: group.held,
                    address: group.address,
                })
                .collect(),
        };
        {
            self.last_heard = Some(now);
            if let Some((_, sent_at)) = self
                .sent
                .iter()
                .find(|(sequence, _)| *sequence == header.echo_sequence)
            {
                let delay = Duration::from_micros(u64::from(header.echo_delay_us));
                self.rtt = Some(
                    now.saturating_duration_since(*sent_at)
                        .saturating_sub(delay),
                );
            }
            if self.state != LinkState::Up {
                self.state = LinkState::Up;
                self.counters.ups += 1;
                self.events.push_back(LinkEvent::Up);
            }
        }
        if self.report.as_ref() != Some(&report) {
            self.report = Some(report);
            if self.state == LinkState::Up {
                self.events.push_back(LinkEvent::Report);
            }
        }
        Ok(())
    }
}

/// One local instance as the arbitration sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalInstance<'a> {
    pub name: &'a str,
    pub state: State,
    pub held_back: bool,
    /// The Master_Down_Timer expired while held back.
    pub master_unheard: bool,
    /// Effective priority and the advert source (the tie-break when both boxes wait).
    pub priority: u8,
    pub source: IpAddr,
}

/// What to do with one local instance after the partner's news.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Hold the backup back (true) or release it (false, with the cause should it promote).
    Hold(bool, Cause),
    /// Promote at once.
    Force(Cause),
    /// Step down: the partner serves it better.
    Yield(Cause),
}

/// What the partner's report (the session up) means for each local instance. `uplink` is this
/// box's uplink score (upstream routers answering, or service LANs with carrier), when
/// measured; the partner's is in `report`.
pub fn arbitrate(
    local: &[LocalInstance<'_>],
    report: &PartnerReport,
    uplink: Option<u8>,
) -> Vec<(String, Step)> {
    let mut steps = Vec::new();
    let better_uplink = better(report.uplink, uplink);
    for instance in local {
        let Some(partner) = report.instance(instance.name) else {
            if instance.held_back {
                steps.push((
                    instance.name.to_string(),
                    Step::Hold(false, released(PeerState::Initialize)),
                ));
            }
            continue;
        };
        let step = match (instance.state, partner.state) {
            (State::Backup, PeerState::Master) if report.handover => {
                Some(Step::Force(Cause::Partner(PartnerCause::HandOver)))
            }
            (State::Backup, PeerState::Fault) => Some(Step::Force(released(partner.state))),
            (State::Backup, PeerState::Master) if !instance.held_back => {
                Some(Step::Hold(true, Cause::Partner(PartnerCause::LanSplit)))
            }
            // The partner stopped serving: release, unless it waits for this box (a split
            // being handed over); if both wait, the higher (priority, address) goes.
            (State::Backup, PeerState::Backup | PeerState::Initialize)
                if instance.held_back
                    && (!partner.held_back
                        || (instance.priority, instance.source)
                            > (partner.priority, partner.source)) =>
            {
                Some(Step::Hold(false, released(partner.state)))
            }
            (State::Master, PeerState::Backup) if partner.held_back && better_uplink.is_some() => {
                better_uplink.map(|(partner, here)| {
                    Step::Yield(Cause::Partner(PartnerCause::BetterUplink { partner, here }))
                })
            }
            (State::Master | State::Fault | State::Initialize, _) if instance.held_back => {
                Some(Step::Hold(false, released(partner.state)))
            }
            _ => None,
        };
        if let Some(step) = step {
            steps.push((instance.name.to_string(), step));
        }
    }
    steps
}

fn released(state: PeerState) -> Cause {
    Cause::Partner(PartnerCause::Released {
        state: state.as_str(),
    })
}

/// Both scores when the partner's uplink is strictly better than ours (both measured).
fn better(partner: Option<u8>, ours: Option<u8>) -> Option<(u8, u8)> {
    match (partner, ours) {
        (Some(p), Some(o)) if p > o => Some((p, o)),
        _ => None,
    }
}

/// After the heartbeat died: the local backups whose master was the partner (by its last
/// report), each with the partner's address on that instance's LAN to probe. If none of them
/// answers, they are promoted at once.
pub fn lost_targets(
    local: &[LocalInstance<'_>],
    last_report: Option<&PartnerReport>,
) -> Vec<(String, IpAddr)> {
    let Some(report) = last_report else {
        return Vec::new();
    };
    local
        .iter()
        .filter(|instance| instance.state == State::Backup)
        .filter_map(|instance| {
            let partner = report.instance(instance.name)?;
            (partner.state == PeerState::Master)
                .then(|| (instance.name.to_string(), partner.source))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    const SETTINGS: HeartbeatSettings = HeartbeatSettings {
        pair_id: 0xa5,
        interval: Duration::from_millis(10),
        dead_after: Duration::from_millis(30),
    };
    const META: DatagramMeta = DatagramMeta {
        link_local: true,
        hop_limit: 255,
    };

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    fn health<'a>(instances: &'a [InstanceHealth<'a>]) -> LocalHealth<'a> {
        LocalHealth {
            generation: 3,
            digest: 9,
            uplink: None,
            tracked_down: 0,
            handover: false,
            instances,
            sharing: &[],
        }
    }

    #[test]
    fn the_partners_load_sharing_groups_reach_its_report_before_its_instances() {
        let mut a = HeartbeatLink::new(SETTINGS, None, 11, ms(0));
        let mut b = HeartbeatLink::new(SETTINGS, None, 22, ms(0));
        let mut buffer = [0u8; MAX_DATAGRAM_LEN];
        // Instances enough to fill a datagram on their own.
        let names: Vec<String> = (0..40)
            .map(|i| format!("instance-with-a-long-name-{i:02}"))
            .collect();
        let many: Vec<InstanceHealth<'_>> = names
            .iter()
            .map(|name| InstanceHealth {
                name,
                ..master("x")
            })
            .collect();
        let groups = [SharingHealth {
            name: "web",
            active: true,
            held: 0b1010,
            address: Ipv4Addr::new(10, 0, 0, 2),
        }];
        let with_groups = |instances| LocalHealth {
            sharing: &groups,
            ..health(instances)
        };
        let len = a.emit(ms(0), &health(&[]), &mut buffer).unwrap();
        b.handle_datagram(ms(1), META, &buffer[..len]).unwrap();
        let len = b.emit(ms(2), &with_groups(&many), &mut buffer).unwrap();
        assert!(len <= MAX_DATAGRAM_LEN);
        a.handle_datagram(ms(3), META, &buffer[..len]).unwrap();
        let report = a.report().unwrap();
        assert!(report.truncated);
        assert!(!report.instances.is_empty() && report.instances.len() < many.len());
        let group = report.group("web").unwrap();
        assert_eq!((group.active, group.held), (true, 0b1010));
        assert_eq!(group.address, Ipv4Addr::new(10, 0, 0, 2));
    }

    fn master(name: &'static str) -> InstanceHealth<'static> {
        InstanceHealth {
            name,
            vrid: 1,
            state: PeerState::Master,
            priority: 150,
            hears_master: false,
            held_back: false,
            source: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        }
    }

    /// Exchanges heartbeats both ways at `now`; returns what b received from a.
    fn exchange(a: &mut HeartbeatLink, b: &mut HeartbeatLink, now: Instant) -> Vec<u8> {
        let mut buffer = [0u8; MAX_DATAGRAM_LEN];
        let a_instances = [master("web")];
        let len = a.emit(now, &health(&a_instances), &mut buffer).unwrap();
        let from_a = buffer[..len].to_vec();
        b.handle_datagram(now, META, &from_a).unwrap();
        let len = b.emit(now, &health(&[]), &mut buffer).unwrap();
        a.handle_datagram(now, META, &buffer[..len]).unwrap();
        from_a
    }

    #[test]
    fn comes_up_when_both_echo_and_dies_after_the_dead_time() {
        let mut a = HeartbeatLink::new(SETTINGS, None, 11, ms(0));
        let mut b = HeartbeatLink::new(SETTINGS, None, 22, ms(0));
        exchange(&mut a, &mut b, ms(0));
        // b heard a's first heartbeat (no echo yet): init; a heard b's echo: up.
        assert_eq!(b.state(), LinkState::Init);
        assert_eq!(a.state(), LinkState::Up);
        exchange(&mut a, &mut b, ms(10));
        assert_eq!(b.state(), LinkState::Up);
        assert_eq!(b.poll_event(), Some(LinkEvent::Up));
        assert_eq!(b.poll_event(), Some(LinkEvent::Report));
        assert_eq!(b.report().unwrap().instances[0].name, "web");
        assert_eq!(b.poll_event(), None);
        // Silence: dead at last heard + 30 ms, not before.
        b.handle_timeout(ms(39));
        assert!(b.is_up());
        b.handle_timeout(ms(40));
        assert_eq!(b.state(), LinkState::Down);
        assert!(matches!(
            b.poll_event(),
            Some(LinkEvent::Lost { why: LostWhy::Silence(_), last_heard }) if last_heard == ms(10)
        ));
    }

    #[test]
    fn carrier_loss_is_an_immediate_miss() {
        let mut a = HeartbeatLink::new(SETTINGS, None, 11, ms(0));
        let mut b = HeartbeatLink::new(SETTINGS, None, 22, ms(0));
        exchange(&mut a, &mut b, ms(0));
        exchange(&mut a, &mut b, ms(10));
        while b.poll_event().is_some() {}
        b.handle_carrier(ms(12), false);
        assert!(matches!(
            b.poll_event(),
            Some(LinkEvent::Lost {
                why: LostWhy::Carrier,
                ..
            })
        ));
    }

    #[test]
    fn replays_forgeries_and_old_sessions_change_nothing() {
        let key = [3u8; 32];
        let mut a = HeartbeatLink::new(SETTINGS, Some(key), 11, ms(0));
        let mut b = HeartbeatLink::new(SETTINGS, Some(key), 22, ms(0));
        exchange(&mut a, &mut b, ms(0));
        let captured = exchange(&mut a, &mut b, ms(10));
        assert!(b.is_up());
        // Replayed within the session.
        assert_eq!(b.handle_datagram(ms(15), META, &captured), Err("replayed"));
        // Off-link or not link-local.
        let off_link = DatagramMeta {
            hop_limit: 254,
            ..META
        };
        assert_eq!(
            b.handle_datagram(ms(15), off_link, &captured),
            Err("hop limit not 255")
        );
        let global = DatagramMeta {
            link_local: false,
            ..META
        };
        assert_eq!(
            b.handle_datagram(ms(15), global, &captured),
            Err("not link-local")
        );
        // Wrong key.
        let mut forger = HeartbeatLink::new(SETTINGS, Some([4u8; 32]), 33, ms(0));
        let mut buffer = [0u8; MAX_DATAGRAM_LEN];
        let len = forger.emit(ms(15), &health(&[]), &mut buffer).unwrap();
        assert_eq!(
            b.handle_datagram(ms(15), META, &buffer[..len]),
            Err("bad MAC")
        );
        // Silence kills the session even though a replay arrives in between.
        assert_eq!(b.handle_datagram(ms(35), META, &captured), Err("replayed"));
        b.handle_timeout(ms(40));
        assert!(!b.is_up());
        // Its old datagrams never bring it back...
        assert_eq!(b.handle_datagram(ms(45), META, &captured), Err("replayed"));
        assert_eq!(b.state(), LinkState::Down);
        // ...the same session resuming does (the cable was only unplugged).
        exchange(&mut a, &mut b, ms(50));
        assert!(b.is_up());
        // a restarts: while its old session lives, a second one is refused...
        let mut a2 = HeartbeatLink::new(SETTINGS, Some(key), 55, ms(60));
        let len = a2.emit(ms(60), &health(&[]), &mut buffer).unwrap();
        assert_eq!(
            b.handle_datagram(ms(60), META, &buffer[..len]),
            Err("second session")
        );
        // ...once it is silent, the new one is heard, and replaces it when it echoes b.
        b.handle_timeout(ms(80));
        assert!(!b.is_up());
        let len = a2.emit(ms(90), &health(&[]), &mut buffer).unwrap();
        b.handle_datagram(ms(90), META, &buffer[..len]).unwrap();
        assert_eq!(b.state(), LinkState::Init);
        exchange(&mut a2, &mut b, ms(100));
        exchange(&mut a2, &mut b, ms(110));
        assert!(b.is_up());
        assert_eq!(
            b.handle_datagram(ms(61), META, &captured),
            Err("retired session")
        );
        // b restarts (new session): anything a echoed to the old b is stale.
        let mut b2 = HeartbeatLink::new(SETTINGS, Some(key), 44, ms(70));
        let len = a.emit(ms(70), &health(&[]), &mut buffer).unwrap();
        assert_eq!(
            b2.handle_datagram(ms(70), META, &buffer[..len]),
            Err("stale echo")
        );
        assert_eq!(b2.counters().refused.get("stale echo"), Some(&1));
        assert_eq!(b.counters().refused.get("replayed"), Some(&3));
        assert_eq!(b.counters().refused.get("bad MAC"), Some(&1));
    }

    #[test]
    fn rtt_subtracts_the_partners_echo_delay() {
        let mut a = HeartbeatLink::new(SETTINGS, None, 11, ms(0));
        let mut b = HeartbeatLink::new(SETTINGS, None, 22, ms(0));
        let mut buffer = [0u8; MAX_DATAGRAM_LEN];
        let len = a.emit(ms(0), &health(&[]), &mut buffer).unwrap();
        // One way takes 1 ms.
        b.handle_datagram(ms(1), META, &buffer[..len]).unwrap();
        // b answers 4 ms later; the way back takes 1 ms.
        let len = b.emit(ms(5), &health(&[]), &mut buffer).unwrap();
        a.handle_datagram(ms(6), META, &buffer[..len]).unwrap();
        assert_eq!(a.rtt(), Some(Duration::from_millis(2)));
    }

    fn report(
        state: PeerState,
        held_back: bool,
        handover: bool,
        uplink: Option<u8>,
    ) -> PartnerReport {
        PartnerReport {
            handover,
            uplink,
            instances: vec![PartnerInstance {
                name: "web".into(),
                vrid: 1,
                state,
                priority: 100,
                hears_master: false,
                held_back,
                source: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
            }],
            ..PartnerReport::default()
        }
    }

    fn local(state: State, held_back: bool) -> [LocalInstance<'static>; 1] {
        [LocalInstance {
            name: "web",
            state,
            held_back,
            master_unheard: false,
            priority: 100,
            source: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        }]
    }

    #[test]
    fn arbitration() {
        let split = Cause::Partner(PartnerCause::LanSplit);
        // Partner master: a backup is held back.
        assert_eq!(
            arbitrate(
                &local(State::Backup, false),
                &report(PeerState::Master, false, false, None),
                None
            ),
            vec![("web".to_string(), Step::Hold(true, split))]
        );
        // Partner in fault: take over on the report.
        assert!(matches!(
            arbitrate(
                &local(State::Backup, true),
                &report(PeerState::Fault, false, false, None),
                None
            )[0]
            .1,
            Step::Force(_)
        ));
        // Hand-over.
        assert_eq!(
            arbitrate(
                &local(State::Backup, true),
                &report(PeerState::Master, false, true, None),
                None
            )[0]
            .1,
            Step::Force(Cause::Partner(PartnerCause::HandOver))
        );
        // Partner became backup: release.
        assert!(matches!(
            arbitrate(
                &local(State::Backup, true),
                &report(PeerState::Backup, false, false, None),
                None
            )[0]
            .1,
            Step::Hold(false, _)
        ));
        // Both wait (each held back, neither hears the other): exactly one goes, the higher
        // (priority, address); the partner reports 100 from 192.0.2.2, this box 100 from .1.
        assert_eq!(
            arbitrate(
                &local(State::Backup, true),
                &report(PeerState::Backup, true, false, None),
                None
            ),
            vec![]
        );
        let mut higher = local(State::Backup, true);
        higher[0].priority = 101;
        assert!(matches!(
            arbitrate(&higher, &report(PeerState::Backup, true, false, None), None)[0].1,
            Step::Hold(false, _)
        ));
        // Split seen from the master: yield only to a strictly better uplink.
        let held = report(PeerState::Backup, true, false, Some(2));
        assert_eq!(
            arbitrate(&local(State::Master, false), &held, Some(2)),
            vec![]
        );
        assert_eq!(arbitrate(&local(State::Master, false), &held, None), vec![]);
        assert_eq!(
            arbitrate(&local(State::Master, false), &held, Some(1)),
            vec![(
                "web".to_string(),
                Step::Yield(Cause::Partner(PartnerCause::BetterUplink {
                    partner: 2,
                    here: 1
                }))
            )]
        );
        // A master still flagged held back (it preempted while held) is released when it
        // does not yield.
        assert!(matches!(
            arbitrate(&local(State::Master, true), &held, Some(2))[0].1,
            Step::Hold(false, _)
        ));
        // The partner's score not measured (no routers answered yet): nothing moves.
        let unmeasured = report(PeerState::Backup, true, false, None);
        assert_eq!(
            arbitrate(&local(State::Master, false), &unmeasured, Some(0)),
            vec![]
        );
        // Lost: probe the partner's source for backups it was master of.
        let last = report(PeerState::Master, false, false, None);
        assert_eq!(
            lost_targets(&local(State::Backup, true), Some(&last)),
            vec![("web".to_string(), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)))]
        );
        assert!(lost_targets(&local(State::Master, false), Some(&last)).is_empty());
        assert!(lost_targets(&local(State::Backup, false), None).is_empty());
    }
}
