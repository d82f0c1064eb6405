//! One virtual router: the RFC 9568 section 6 state machine (RFC 3768 semantics for v2
//! instances), sans-IO.
//!
//! Inputs are `handle_*` calls carrying the caller's `now`; outputs are [`Action`]s drained with
//! [`Instance::poll_action`] and one deadline from [`Instance::poll_timeout`]. Every receive check
//! of RFC 9568 / RFC 3768 section 7.1 runs before any state is touched: a discarded packet only
//! bumps its counter.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::string::String;
use std::vec::Vec;

use core::time::Duration;

use tandem_wire::vrrp::REQUIRED_TTL;
use tandem_wire::{
    AddressList, AdvertPacket, AdvertRepr, Auth, Family, IpEndpoints, Version, WireError,
};

use crate::params::{InstanceParams, ParamError};
use crate::reconcile::{diff, ParamChange};
use crate::status::{
    AddressListGrace, Cause, Counters, DiscardReason, GraceCause, MasterDownReason, MasterInfo,
    State, Transition, TransitionLog,
};
use crate::time::{centiseconds, master_down_interval, skew_time, Instant};

/// How long adverts whose address list differs from ours are still processed after a live
/// change of the virtual addresses (see [`AddressListGrace`]): long enough to commit the
/// change on the partner too, short enough that a pair left inconsistent is noticed.
pub const ADDRESS_LIST_GRACE: Duration = Duration::from_secs(600);

/// How a received advert's address list compared with ours (it passed the check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListCheck {
    /// Same set.
    Same,
    /// Different, from the owner (priority 255): RFC 9568 section 7.1 processes it.
    FromOwner,
    /// Different, inside a running grace.
    InGrace,
    /// Different, from the master we follow whose last advert listed our addresses: opens a
    /// grace.
    OpensGrace,
}

/// What the IP layer says about a received advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxMeta {
    /// IP source address.
    pub src: IpAddr,
    /// IP destination address (the VRRP group or our unicast address).
    pub dst: IpAddr,
    /// IPv4 TTL or IPv6 hop limit (from the IP header or `IPV6_HOPLIMIT` cmsg).
    pub ttl: u8,
}

/// An advertisement to send: the IP payload for a raw `IPPROTO_VRRP` socket.
///
/// The checksum covers `src` (v3 pseudo-header), so the daemon must send from exactly `src`
/// with TTL / hop limit `ttl` to `dst`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingAdvert {
    /// Source address (the instance's primary address).
    pub src: IpAddr,
    /// Destination (224.0.0.18 or ff02::12).
    pub dst: IpAddr,
    /// TTL / hop limit: always 255.
    pub ttl: u8,
    /// Priority advertised (0 when leaving).
    pub priority: u8,
    /// VRRP message bytes.
    pub payload: Vec<u8>,
}

/// A side effect for the southbound layer to execute, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send this advertisement now.
    SendAdvert(OutgoingAdvert),
    /// Add the virtual addresses to the interface. `accept` false means the daemon must drop
    /// packets addressed to them (Accept_Mode False and not the owner), except NS/NA.
    AddVips {
        /// Addresses to add.
        addresses: Vec<IpAddr>,
        /// Accept traffic addressed to them.
        accept: bool,
    },
    /// Remove the virtual addresses from the interface.
    RemoveVips {
        /// Addresses to remove.
        addresses: Vec<IpAddr>,
    },
    /// Send the takeover burst: gratuitous ARP per IPv4 address, unsolicited NA per IPv6
    /// address (see `tandem_wire::announce`).
    Announce {
        /// Addresses to announce.
        addresses: Vec<IpAddr>,
    },
    /// The state changed (for logs, notifications and status).
    StateChanged(Transition),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TimerKind {
    Advert,
    MasterDown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Timer {
    kind: TimerKind,
    at: Instant,
    /// When it was armed (a Master_Down_Timer is recomputed from here when its span changes).
    armed_at: Instant,
    /// A Master_Down_Timer armed for Skew_Time only (the master sent priority 0).
    skew_only: bool,
}

impl Timer {
    fn advert(now: Instant, at: Instant) -> Timer {
        Timer {
            kind: TimerKind::Advert,
            at,
            armed_at: now,
            skew_only: false,
        }
    }
}

/// What a member tells its sync group (drained by [`crate::Speaker`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GroupEvent {
    /// Entered a state on its own account.
    Entered {
        /// State left.
        from: State,
        /// State entered.
        to: State,
    },
    /// Master_Down_Timer fired but the group gate holds it in Backup.
    WantsMaster,
    /// Its own fault (a tracked object) appeared or cleared without a state change (it was
    /// already held in FAULT by its group, or stays there): the group re-decides who holds
    /// whom. Without it two members that each followed the other stayed in FAULT for good.
    OwnFaultChanged,
}

/// Snapshot of an instance for `tandem vrrp status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// Instance name.
    pub name: String,
    /// Interface.
    pub interface: String,
    /// VRID.
    pub vrid: u8,
    /// Version.
    pub version: Version,
    /// Current state.
    pub state: State,
    /// Configured priority.
    pub base_priority: u8,
    /// Priority after tracking weights.
    pub effective_priority: u8,
    /// The master a backup defers to (none when master, or when nothing was heard).
    pub master: Option<MasterInfo>,
    /// Master_Adver_Interval in centiseconds (learned from the master in v3).
    pub master_adver_interval_cs: u16,
    /// Current Master_Down_Interval.
    pub master_down_interval: Duration,
    /// Next timer deadline.
    pub next_deadline: Option<Instant>,
    /// What holds the instance in FAULT, if anything.
    pub fault: Option<Cause>,
    /// A sync group member whose timer fired, waiting for the rest of its group.
    pub waiting_for_group: bool,
    /// Tracked objects and whether each is up.
    pub tracks: Vec<(String, bool)>,
    /// The address-list grace, running or ended with the lists still different.
    pub address_list_grace: Option<AddressListGrace>,
    /// Last transitions, oldest first.
    pub transitions: Vec<Transition>,
    /// Counters.
    pub counters: Counters,
}

/// One VRRP virtual router instance.
#[derive(Debug, Clone)]
pub struct Instance {
    params: InstanceParams,
    vips_v4: Vec<Ipv4Addr>,
    vips_v6: Vec<Ipv6Addr>,
    state: State,
    effective_priority: u8,
    master_adver_interval_cs: u16,
    timer: Option<Timer>,
    /// Last (re)start: the preempt delay counts from here.
    started_at: Instant,
    preempt_allowed_at: Instant,
    /// Master_Adver_Interval was learned from an advert since the last (re)start (v3).
    interval_learned: bool,
    master: Option<MasterInfo>,
    /// The last advert of `master` listed our addresses.
    master_list_matched: bool,
    /// Set while (or since) adverts with another address list are tolerated; cleared when the
    /// lists match again.
    list_grace: Option<AddressListGrace>,
    down_reason: MasterDownReason,
    tracks_up: Vec<bool>,
    in_sync_group: bool,
    group_fault: Option<Cause>,
    shut_down: bool,
    wants_master: bool,
    /// The pair heartbeat says the partner is master: a Master_Down_Timer expiry does not
    /// promote (service LAN split; see [`crate::pair`]).
    held_back: bool,
    /// The Master_Down_Timer expired while held back: releasing the hold promotes at once.
    down_while_held: bool,
    /// Maintenance mode (`vrrp standby on`): never Master; adverts are still processed.
    standby: bool,
    /// The Master_Down_Timer expired in standby (and nothing re-armed it since): leaving
    /// standby promotes at once.
    down_in_standby: bool,
    actions: VecDeque<Action>,
    log: TransitionLog,
    counters: Counters,
    group_events: VecDeque<GroupEvent>,
    /// Whether the last evaluation found a fault of its own (for [`GroupEvent::OwnFaultChanged`]).
    had_own_fault: bool,
}

impl Instance {
    /// Validates `params` and starts the instance at `now` (Startup event): the owner becomes
    /// Master at once, everyone else Backup. Tracked objects are taken as up until an event
    /// says otherwise.
    pub fn new(params: InstanceParams, now: Instant) -> Result<Instance, ParamError> {
        Instance::with_track_states(params, now, &|_| None, false)
    }

    /// [`Instance::new`] with tracked objects starting in the state `known` gives (up when it
    /// gives none), so an instance tracking an object already known to be down starts in FAULT.
    /// Started in `standby`, it starts Backup even as the address owner.
    pub(crate) fn with_track_states(
        params: InstanceParams,
        now: Instant,
        known: &dyn Fn(&str) -> Option<bool>,
        standby: bool,
    ) -> Result<Instance, ParamError> {
        params.validate()?;
        let (vips_v4, vips_v6) = split_vips(&params.virtual_addresses);
        let tracks_up = params
            .tracks
            .iter()
            .map(|t| {
                // A check is the instance's own: another instance's check of that name is not it.
                (!t.kind.is_check())
                    .then(|| known(&t.name))
                    .flatten()
                    .unwrap_or(true)
            })
            .collect();
        let mut instance = Instance {
            effective_priority: params.priority,
            master_adver_interval_cs: params.advert_interval_cs,
            params,
            vips_v4,
            vips_v6,
            state: State::Initialize,
            timer: None,
            started_at: now,
            preempt_allowed_at: now,
            interval_learned: false,
            master: None,
            master_list_matched: false,
            list_grace: None,
            down_reason: MasterDownReason::Silence,
            tracks_up,
            in_sync_group: false,
            group_fault: None,
            shut_down: false,
            wants_master: false,
            held_back: false,
            down_while_held: false,
            standby,
            down_in_standby: false,
            actions: VecDeque::new(),
            log: TransitionLog::default(),
            counters: Counters::default(),
            group_events: VecDeque::new(),
            had_own_fault: false,
        };
        instance.effective_priority = instance.compute_priority();
        instance.start(now, Cause::Startup);
        Ok(instance)
    }

    // ----- accessors -------------------------------------------------------------------------

    /// The parameters.
    pub fn params(&self) -> &InstanceParams {
        &self.params
    }

    /// Current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Priority after tracking weights (255 for the owner).
    pub fn effective_priority(&self) -> u8 {
        self.effective_priority
    }

    /// Master_Adver_Interval in centiseconds.
    pub fn master_adver_interval_cs(&self) -> u16 {
        self.master_adver_interval_cs
    }

    /// Current Skew_Time (from the effective priority and Master_Adver_Interval).
    pub fn skew_time(&self) -> Duration {
        skew_time(self.effective_priority, self.master_adver_interval_cs)
    }

    /// Current Master_Down_Interval.
    pub fn master_down_interval(&self) -> Duration {
        master_down_interval(self.effective_priority, self.master_adver_interval_cs)
    }

    /// The master a backup defers to.
    pub fn master(&self) -> Option<MasterInfo> {
        self.master
    }

    /// Counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The address-list grace: running, or ended while the lists still differ (see
    /// [`AddressListGrace::running`]). None when the lists matched since.
    pub fn address_list_grace(&self) -> Option<AddressListGrace> {
        self.list_grace
    }

    /// Transition history.
    pub fn transitions(&self) -> &TransitionLog {
        &self.log
    }

    /// What holds the instance in FAULT (a weight-0 track down, or its sync group).
    pub fn fault_cause(&self) -> Option<Cause> {
        self.own_fault_cause().or_else(|| self.group_fault.clone())
    }

    /// A fault of the instance's own tracked objects (inside a sync group every weight counts
    /// as 0, so any tracked object down is a fault).
    fn own_fault_cause(&self) -> Option<Cause> {
        let weights_fault = self.in_sync_group;
        self.params
            .tracks
            .iter()
            .zip(&self.tracks_up)
            .find(|(track, up)| !**up && (track.weight == 0 || weights_fault))
            .map(|(track, _)| Cause::TrackDown {
                track: track.name.clone(),
            })
    }

    /// The addresses whose local delivery the engine must drop right now (RFC 9568 section
    /// 6.4.3 Accept_Mode False): the virtual addresses while Master, unless Accept_Mode is on or
    /// this is the address owner; empty otherwise. The same set `AddVips { accept: false }`
    /// announces, but always current (after a live reconfiguration too).
    pub fn accept_drops(&self) -> Vec<IpAddr> {
        if self.state == State::Master && !self.params.accept_mode && !self.params.is_owner() {
            self.vip_list()
        } else {
            Vec::new()
        }
    }

    /// Whether the tracked object `name` is up, if the instance tracks it.
    pub fn track_state(&self, name: &str) -> Option<bool> {
        self.params
            .tracks
            .iter()
            .zip(&self.tracks_up)
            .find(|(t, _)| t.name == name)
            .map(|(_, up)| *up)
    }

    /// Plain-data snapshot for status output.
    pub fn status(&self) -> Status {
        Status {
            name: self.params.name.clone(),
            interface: self.params.interface.clone(),
            vrid: self.params.vrid,
            version: self.params.version,
            state: self.state,
            base_priority: self.params.priority,
            effective_priority: self.effective_priority,
            master: self.master,
            master_adver_interval_cs: self.master_adver_interval_cs,
            master_down_interval: self.master_down_interval(),
            next_deadline: self.poll_timeout(),
            fault: if self.state == State::Fault {
                self.fault_cause()
            } else {
                None
            },
            waiting_for_group: self.wants_master,
            tracks: self
                .params
                .tracks
                .iter()
                .zip(&self.tracks_up)
                .map(|(t, up)| (t.name.clone(), *up))
                .collect(),
            address_list_grace: self.list_grace,
            transitions: self.log.iter().cloned().collect(),
            counters: self.counters.clone(),
        }
    }

    // ----- outputs ---------------------------------------------------------------------------

    /// Next action to execute, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// True while actions wait to be polled.
    pub fn has_actions(&self) -> bool {
        !self.actions.is_empty()
    }

    /// When [`handle_timeout`](Self::handle_timeout) must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timer.map(|t| t.at)
    }

    // ----- inputs ----------------------------------------------------------------------------

    /// A raw VRRP payload arrived (raw socket, IP header stripped). Runs every section 7.1
    /// check; on discard returns the reason (already counted) and changes nothing else.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        meta: RxMeta,
        payload: &[u8],
    ) -> Result<(), DiscardReason> {
        let result = self.check_packet(now, meta, payload);
        if let Err(reason) = result {
            self.counters.count_discard(reason);
        }
        result
    }

    fn check_packet(
        &mut self,
        now: Instant,
        meta: RxMeta,
        payload: &[u8],
    ) -> Result<(), DiscardReason> {
        if meta.ttl != REQUIRED_TTL {
            return Err(DiscardReason::TtlNot255);
        }
        let endpoints =
            IpEndpoints::new(meta.src, meta.dst).ok_or(DiscardReason::FamilyMismatch)?;
        if endpoints.family() != self.params.family() {
            return Err(DiscardReason::FamilyMismatch);
        }
        let packet = AdvertPacket::new_unchecked(payload, endpoints.family());
        if payload.len() < tandem_wire::vrrp::HEADER_LEN {
            return Err(DiscardReason::Truncated);
        }
        if packet.version_field() != self.params.version.number() {
            return Err(DiscardReason::VersionMismatch);
        }
        let (repr, variant) = AdvertRepr::parse(&packet, &endpoints).map_err(discard_reason)?;
        let list = self.check_advert(now, meta.src, &repr)?;
        self.counters.count_checksum(variant);
        self.process_advert(now, meta.src, &repr, list);
        Ok(())
    }

    /// An advertisement already parsed (checksum verified by the codec) arrived from `src`
    /// with TTL / hop limit `ttl`. Same checks and effects as [`handle_packet`](Self::handle_packet).
    pub fn handle_advert(
        &mut self,
        now: Instant,
        src: IpAddr,
        repr: &AdvertRepr<'_>,
        ttl: u8,
    ) -> Result<(), DiscardReason> {
        let result = if ttl == REQUIRED_TTL {
            self.check_advert(now, src, repr)
        } else {
            Err(DiscardReason::TtlNot255)
        };
        match result {
            Ok(list) => {
                self.process_advert(now, src, repr, list);
                Ok(())
            }
            Err(reason) => {
                self.counters.count_discard(reason);
                Err(reason)
            }
        }
    }

    /// Timers: call when `now` reaches [`poll_timeout`](Self::poll_timeout) (early calls do
    /// nothing).
    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(timer) = self.timer else {
            return;
        };
        if now < timer.at {
            return;
        }
        match (timer.kind, self.state) {
            (TimerKind::Advert, State::Master) => {
                self.send_advert(self.effective_priority);
                let interval = centiseconds(self.params.advert_interval_cs);
                let mut next = timer.at + interval;
                if next <= now {
                    next = now + interval;
                }
                self.timer = Some(Timer::advert(now, next));
            }
            (TimerKind::MasterDown, State::Backup) => {
                self.timer = None;
                if self.standby {
                    self.down_in_standby = true;
                    return;
                }
                // Held back only against silence: a backup preempting a master it hears is
                // no split.
                if self.held_back && self.down_reason == MasterDownReason::Silence {
                    self.down_while_held = true;
                    return;
                }
                if self.in_sync_group {
                    self.wants_master = true;
                    self.group_events.push_back(GroupEvent::WantsMaster);
                } else {
                    let cause = self.master_down_cause();
                    self.become_master(now, cause);
                }
            }
            _ => self.timer = None,
        }
    }

    /// Shutdown event: a master sends priority 0 so a backup takes over after Skew_Time, then
    /// every state goes to Initialize.
    pub fn handle_shutdown(&mut self, now: Instant) {
        self.shut_down = true;
        if self.state == State::Initialize {
            return;
        }
        self.leave_master();
        self.timer = None;
        self.master = None;
        self.wants_master = false;
        self.transition(now, State::Initialize, Cause::Shutdown);
    }

    /// Startup event after a shutdown.
    pub fn handle_startup(&mut self, now: Instant) {
        self.shut_down = false;
        if self.state == State::Initialize {
            self.start(now, Cause::Startup);
        }
    }

    /// A tracked link or external object changed state. Returns false when the instance does
    /// not track `name` (its own checks are not reached this way: [`Self::handle_check_event`]).
    pub fn handle_track_event(&mut self, now: Instant, name: &str, up: bool) -> bool {
        self.set_track(now, name, up, false)
    }

    /// One of the instance's tracked checks (track name [`crate::check_track_name`]) changed
    /// state, after its rise / fall counts. Returns false when the instance has no such check.
    pub fn handle_check_event(&mut self, now: Instant, name: &str, up: bool) -> bool {
        self.set_track(now, name, up, true)
    }

    fn set_track(&mut self, now: Instant, name: &str, up: bool, check: bool) -> bool {
        let mut known = false;
        for (track, state) in self.params.tracks.iter().zip(self.tracks_up.iter_mut()) {
            if track.name == name && track.kind.is_check() == check {
                *state = up;
                known = true;
            }
        }
        if known {
            self.reevaluate(now);
        }
        known
    }

    // ----- pair heartbeat hooks ----------------------------------------------------------------

    /// Holds a backup back from promoting on its own timer (the partner is master and alive
    /// on the heartbeat, so silence on the LAN is a split, not a death), or releases the hold.
    /// Releasing after the timer expired while held promotes at once with `cause` (a sync
    /// group member asks its group, as on its own expiry). Returns true when it promoted or
    /// asked to.
    pub fn set_held_back(&mut self, now: Instant, held: bool, cause: Cause) -> bool {
        let was = std::mem::replace(&mut self.held_back, held);
        if held || !was || !self.down_while_held || self.state != State::Backup || self.standby {
            return false;
        }
        self.down_while_held = false;
        if self.in_sync_group {
            self.wants_master = true;
            self.group_events.push_back(GroupEvent::WantsMaster);
        } else {
            self.become_master(now, cause);
        }
        true
    }

    /// True while held back by the pair heartbeat.
    pub fn held_back(&self) -> bool {
        self.held_back
    }

    /// True when the Master_Down_Timer expired while held back: this box does not hear the
    /// master, whom the heartbeat reports alive (a service LAN split).
    pub fn master_unheard(&self) -> bool {
        self.down_while_held
    }

    /// Promotes a backup at once, without waiting for the Master_Down_Timer: the pair
    /// heartbeat established that the partner who was master is gone (or handed over).
    /// Returns false (and does nothing) unless the instance is Backup.
    pub fn force_master(&mut self, now: Instant, cause: Cause) -> bool {
        if self.state != State::Backup || self.standby {
            return false;
        }
        self.held_back = false;
        self.down_while_held = false;
        self.become_master(now, cause);
        true
    }

    /// Steps down from Master because the pair arbitration gave the instance to the partner
    /// (a service LAN split where the partner has the better uplink). Returns false unless
    /// the instance is Master.
    pub fn yield_master(&mut self, now: Instant, cause: Cause) -> bool {
        if self.state != State::Master {
            return false;
        }
        self.held_back = true;
        self.become_backup(now, cause);
        true
    }

    // ----- maintenance mode ---------------------------------------------------------------------

    /// `vrrp standby on|off`, a planned hand-over (RFC 9568 section 6.4.3's leaving master,
    /// keepalived's shutdown, without stopping). On: a master sends priority 0 (a backup takes
    /// over after Skew_Time), drops its addresses and goes Backup; from then on no timer,
    /// heartbeat or group promotes the instance, while adverts are still processed so it keeps
    /// following the master. Off: a Master_Down_Timer that expired meanwhile (the master fell
    /// silent, or preempting a lower-priority master) promotes at once, a running one runs on.
    /// Returns true when the instance changed state.
    pub fn set_standby(&mut self, now: Instant, on: bool) -> bool {
        if std::mem::replace(&mut self.standby, on) == on {
            return false;
        }
        if on {
            if self.state != State::Master {
                return false;
            }
            self.send_advert(0);
            self.become_backup(now, Cause::Standby);
            return true;
        }
        if self.state != State::Backup || !std::mem::take(&mut self.down_in_standby) {
            return false;
        }
        if self.params.is_owner() {
            self.become_master(now, Cause::AddressOwner);
        } else if self.in_sync_group {
            self.wants_master = true;
            self.group_events.push_back(GroupEvent::WantsMaster);
            return false;
        } else {
            let cause = self.master_down_cause();
            self.become_master(now, cause);
        }
        true
    }

    /// True in maintenance mode (`vrrp standby on`).
    pub fn standby(&self) -> bool {
        self.standby
    }

    // ----- sync group hooks (used by the Speaker) --------------------------------------------

    pub(crate) fn set_in_sync_group(&mut self, now: Instant, in_group: bool) {
        self.in_sync_group = in_group;
        self.reevaluate(now);
    }

    pub(crate) fn set_group_fault(&mut self, now: Instant, cause: Option<Cause>) {
        self.group_fault = cause;
        self.reevaluate(now);
    }

    pub(crate) fn own_fault(&self) -> bool {
        self.own_fault_cause().is_some()
    }

    pub(crate) fn has_group_fault(&self) -> bool {
        self.group_fault.is_some()
    }

    pub(crate) fn wants_master(&self) -> bool {
        self.wants_master
    }

    pub(crate) fn take_group_events(&mut self) -> VecDeque<GroupEvent> {
        std::mem::take(&mut self.group_events)
    }

    /// Promote from Backup because the group agreed. `own` is true for a member whose own
    /// timer fired.
    pub(crate) fn group_promote(&mut self, now: Instant, cause: Cause) {
        if self.state == State::Backup && !self.standby {
            let cause = if self.wants_master {
                self.master_down_cause()
            } else {
                cause
            };
            self.become_master(now, cause);
        }
    }

    /// Demote from Master because another member lost an election.
    pub(crate) fn group_demote(&mut self, now: Instant, cause: Cause) {
        if self.state == State::Master {
            self.become_backup(now, cause);
        }
    }

    // ----- live reconfiguration (used by the Speaker) -----------------------------------------

    /// Applies `params` (already validated, same key) in place and returns what changed plus
    /// the virtual addresses gained while Master, which the caller hands to
    /// [`gain_vips`](Self::gain_vips) once every instance has released the addresses it lost
    /// (an address moving between instances is removed before it is added).
    ///
    /// Identical parameters change nothing at all. Otherwise no transition happens unless the
    /// change demands one: a fault appearing or clearing through the tracks, or becoming the
    /// address owner while Backup (Master at once, as at startup). A master loses the removed
    /// addresses at once (`RemoveVips`); every other change takes effect from the next advert
    /// or received packet. A Master_Down_Timer is recomputed from when it was armed if its span
    /// changed (priority, interval or version).
    pub(crate) fn reconfigure(
        &mut self,
        now: Instant,
        params: InstanceParams,
        known: &dyn Fn(&str) -> Option<bool>,
    ) -> (Vec<ParamChange>, Vec<IpAddr>) {
        let changes = diff(&self.params, &params);
        if changes.is_empty() {
            return (changes, Vec::new());
        }
        let was_master = self.state == State::Master;
        let old_vips = self.vip_list();
        let (new_v4, new_v6) = split_vips(&params.virtual_addresses);

        // Addresses no longer wanted leave the interface first.
        let removed: Vec<IpAddr> = old_vips
            .iter()
            .filter(|a| !params.virtual_addresses.contains(a))
            .copied()
            .collect();
        if was_master && !removed.is_empty() {
            self.actions.push_back(Action::RemoveVips {
                addresses: removed.clone(),
            });
        }
        // The partner is reconfigured after (or before) this box: its adverts list the other
        // set for a while, and discarding them would make a backup take over.
        if !removed.is_empty()
            || params
                .virtual_addresses
                .iter()
                .any(|a| !old_vips.contains(a))
        {
            self.list_grace = Some(AddressListGrace {
                cause: GraceCause::Reconciled,
                opened: now,
                until: now + ADDRESS_LIST_GRACE,
                accepted: 0,
            });
        }

        // Tracks: a kept object keeps its state; a new one takes what is known, else up.
        let old_tracks = core::mem::take(&mut self.params.tracks);
        let old_up = core::mem::take(&mut self.tracks_up);
        self.tracks_up = params
            .tracks
            .iter()
            .map(|t| {
                old_tracks
                    .iter()
                    .zip(&old_up)
                    .find(|(old, _)| old.name == t.name && old.kind.is_check() == t.kind.is_check())
                    .map(|(_, up)| *up)
                    .or_else(|| (!t.kind.is_check()).then(|| known(&t.name)).flatten())
                    .unwrap_or(true)
            })
            .collect();

        // The preempt delay counts from the last start; a window already over stays over.
        if now < self.preempt_allowed_at {
            self.preempt_allowed_at = self.started_at + params.preempt_delay;
        }
        self.params = params;
        // Master_Adver_Interval is our own interval in v2, as master, and until a v3 master
        // was heard (RFC 9568 section 6.4.1 / RFC 3768).
        if self.params.version == Version::V2
            || self.state == State::Master
            || !self.interval_learned
        {
            self.master_adver_interval_cs = self.params.advert_interval_cs;
        }

        // Leaving Master (a fault) releases what the interface holds: the shared addresses.
        self.vips_v4 = new_v4
            .iter()
            .filter(|a| old_vips.contains(&IpAddr::V4(**a)))
            .copied()
            .collect();
        self.vips_v6 = new_v6
            .iter()
            .filter(|a| old_vips.contains(&IpAddr::V6(**a)))
            .copied()
            .collect();
        self.effective_priority = self.compute_priority();
        let fault = self.fault_cause();
        if let (State::Master | State::Backup, Some(cause)) = (self.state, fault.clone()) {
            self.enter_fault(now, cause);
        }
        self.vips_v4 = new_v4;
        self.vips_v6 = new_v6;
        // Entering a state uses the whole new address set.
        if self.state == State::Fault && fault.is_none() && !self.shut_down {
            self.start(now, Cause::FaultCleared);
        } else if self.state == State::Backup && self.params.is_owner() && !self.standby {
            self.become_master(now, Cause::AddressOwner);
        }

        // A running Master_Down_Timer follows a changed span, counted from when it was armed.
        if let (State::Backup, Some(timer)) = (self.state, self.timer) {
            if timer.kind == TimerKind::MasterDown {
                let at = timer.armed_at + self.master_down_span(timer.skew_only);
                if at != timer.at {
                    self.timer = Some(Timer { at, ..timer });
                }
            }
        }

        let gained = if was_master && self.state == State::Master {
            self.vip_list()
                .into_iter()
                .filter(|a| !old_vips.contains(a))
                .collect()
        } else {
            Vec::new()
        };
        (changes, gained)
    }

    /// Adds and announces `addresses` gained by a reconfiguration, if still Master.
    pub(crate) fn gain_vips(&mut self, addresses: Vec<IpAddr>) {
        if self.state != State::Master || addresses.is_empty() {
            return;
        }
        let accept = self.params.accept_mode || self.params.is_owner();
        self.actions.push_back(Action::AddVips {
            addresses: addresses.clone(),
            accept,
        });
        self.actions.push_back(Action::Announce { addresses });
    }

    // ----- internals -------------------------------------------------------------------------

    fn compute_priority(&self) -> u8 {
        if self.params.is_owner() {
            return 255;
        }
        let mut priority = i32::from(self.params.priority);
        if !self.in_sync_group {
            for (track, up) in self.params.tracks.iter().zip(&self.tracks_up) {
                let weight = i32::from(track.weight);
                if (weight > 0 && *up) || (weight < 0 && !*up) {
                    priority += weight;
                }
            }
        }
        u8::try_from(priority.clamp(1, 254)).unwrap_or(1)
    }

    fn reevaluate(&mut self, now: Instant) {
        self.effective_priority = self.compute_priority();
        let own_fault = self.own_fault();
        if own_fault != std::mem::replace(&mut self.had_own_fault, own_fault) && self.in_sync_group
        {
            self.group_events.push_back(GroupEvent::OwnFaultChanged);
        }
        let fault = self.fault_cause();
        match (self.state, fault) {
            (State::Master | State::Backup, Some(cause)) => self.enter_fault(now, cause),
            (State::Fault, None) if !self.shut_down => self.start(now, Cause::FaultCleared),
            _ => {}
        }
    }

    fn start(&mut self, now: Instant, cause: Cause) {
        if self.shut_down {
            return;
        }
        if let Some(fault) = self.fault_cause() {
            if self.state != State::Fault {
                self.enter_fault(now, fault);
            }
            return;
        }
        self.started_at = now;
        self.preempt_allowed_at = now + self.params.preempt_delay;
        self.master = None;
        self.wants_master = false;
        self.interval_learned = false;
        if self.params.is_owner() && !self.standby {
            let cause = if cause == Cause::Startup {
                Cause::AddressOwner
            } else {
                cause
            };
            self.become_master(now, cause);
        } else {
            self.master_adver_interval_cs = self.params.advert_interval_cs;
            self.down_reason = MasterDownReason::Silence;
            self.arm_master_down(now, false);
            self.transition(now, State::Backup, cause);
        }
    }

    fn enter_fault(&mut self, now: Instant, cause: Cause) {
        self.leave_master();
        self.timer = None;
        self.master = None;
        self.wants_master = false;
        self.transition(now, State::Fault, cause);
    }

    /// Leaving Master for any reason but a lost election: priority 0 for a fast hand-over, then
    /// drop the addresses.
    fn leave_master(&mut self) {
        if self.state == State::Master {
            self.send_advert(0);
            self.actions.push_back(Action::RemoveVips {
                addresses: self.vip_list(),
            });
        }
    }

    fn become_master(&mut self, now: Instant, cause: Cause) {
        self.send_advert(self.effective_priority);
        let addresses = self.vip_list();
        let accept = self.params.accept_mode || self.params.is_owner();
        self.actions.push_back(Action::AddVips {
            addresses: addresses.clone(),
            accept,
        });
        self.actions.push_back(Action::Announce { addresses });
        let at = now + centiseconds(self.params.advert_interval_cs);
        self.timer = Some(Timer::advert(now, at));
        self.master = None;
        self.wants_master = false;
        self.transition(now, State::Master, cause);
    }

    fn become_backup(&mut self, now: Instant, cause: Cause) {
        self.actions.push_back(Action::RemoveVips {
            addresses: self.vip_list(),
        });
        self.down_reason = MasterDownReason::Silence;
        self.arm_master_down(now, false);
        self.transition(now, State::Backup, cause);
    }

    /// Master_Down_Interval, or only Skew_Time after a priority-0 advert.
    fn master_down_span(&self, skew_only: bool) -> Duration {
        if skew_only {
            self.skew_time()
        } else {
            self.master_down_interval()
        }
    }

    fn arm_master_down(&mut self, now: Instant, skew_only: bool) {
        self.down_while_held = false;
        self.down_in_standby = false;
        self.timer = Some(Timer {
            kind: TimerKind::MasterDown,
            at: now + self.master_down_span(skew_only),
            armed_at: now,
            skew_only,
        });
    }

    fn master_down_cause(&self) -> Cause {
        Cause::MasterDown {
            reason: self.down_reason,
            last_master: self.master.map(|m| m.address),
        }
    }

    fn transition(&mut self, now: Instant, to: State, cause: Cause) {
        let from = self.state;
        self.state = to;
        if cause.kind() != crate::status::CauseKind::SyncGroup {
            self.group_events
                .push_back(GroupEvent::Entered { from, to });
        }
        self.counters.count_transition(cause.kind());
        let transition = Transition {
            at: now,
            from,
            to,
            cause,
        };
        self.log.push(transition.clone());
        self.actions.push_back(Action::StateChanged(transition));
    }

    fn vip_list(&self) -> Vec<IpAddr> {
        self.vips_v4
            .iter()
            .map(|a| IpAddr::V4(*a))
            .chain(self.vips_v6.iter().map(|a| IpAddr::V6(*a)))
            .collect()
    }

    fn address_list(&self) -> AddressList<'_> {
        match self.params.family() {
            Family::Ipv4 => AddressList::Ipv4(&self.vips_v4),
            Family::Ipv6 => AddressList::Ipv6(&self.vips_v6),
        }
    }

    /// Builds and queues an advertisement. Parameters were validated at construction, so the
    /// codec cannot refuse it; if it ever did, the advert is skipped rather than panicking.
    fn send_advert(&mut self, priority: u8) {
        let endpoints = IpEndpoints::to_group(self.params.primary_address);
        let repr = AdvertRepr {
            version: self.params.version,
            vrid: self.params.vrid,
            priority,
            interval_cs: self.params.advert_interval_cs,
            auth: self.params.auth,
            addresses: self.address_list(),
        };
        let mut payload = std::vec![0u8; repr.buffer_len()];
        let Ok(len) = repr.emit(&mut payload, &endpoints, self.params.ipv4_checksum) else {
            return;
        };
        payload.truncate(len);
        let dst = match endpoints {
            IpEndpoints::V4 { dst, .. } => IpAddr::V4(dst),
            IpEndpoints::V6 { dst, .. } => IpAddr::V6(dst),
        };
        self.counters.adverts_sent += 1;
        if priority == 0 {
            self.counters.priority_zero_sent += 1;
        }
        self.actions.push_back(Action::SendAdvert(OutgoingAdvert {
            src: self.params.primary_address,
            dst,
            ttl: REQUIRED_TTL,
            priority,
            payload,
        }));
    }

    /// Section 7.1 checks that need the configuration. Touches nothing; says how the address
    /// list compared when the advert passes.
    fn check_advert(
        &self,
        now: Instant,
        src: IpAddr,
        repr: &AdvertRepr<'_>,
    ) -> Result<ListCheck, DiscardReason> {
        let p = &self.params;
        if repr.version != p.version {
            return Err(DiscardReason::VersionMismatch);
        }
        if Family::of(&src) != p.family() || repr.addresses.family() != p.family() {
            return Err(DiscardReason::FamilyMismatch);
        }
        if repr.vrid != p.vrid {
            return Err(DiscardReason::VridNotConfigured);
        }
        if p.is_owner() {
            return Err(DiscardReason::LocalIsOwner);
        }
        if src == p.primary_address {
            return Err(DiscardReason::OwnAdvert);
        }
        if p.version == Version::V2 {
            match (p.auth, repr.auth) {
                (Auth::None, Auth::None) => {}
                (Auth::SimpleText(ours), Auth::SimpleText(theirs)) => {
                    if ours != theirs {
                        return Err(DiscardReason::AuthFailure);
                    }
                }
                _ => return Err(DiscardReason::AuthTypeMismatch),
            }
        }
        // RFC 9568 section 7.1: the receiver MAY verify the address list; it does, except
        // from the owner and during a live change's grace.
        let list = if repr.addresses.same_set(&self.address_list()) {
            ListCheck::Same
        } else if repr.priority == 255 {
            ListCheck::FromOwner
        } else if self.list_grace.is_some_and(|g| g.running(now)) {
            ListCheck::InGrace
        } else if self.state == State::Backup
            && self.master_list_matched
            && self.master.is_some_and(|m| m.address == src)
        {
            ListCheck::OpensGrace
        } else {
            return Err(DiscardReason::AddressListMismatch);
        };
        match p.version {
            Version::V2 if repr.interval_cs != p.advert_interval_cs => {
                Err(DiscardReason::IntervalMismatch)
            }
            Version::V3 if repr.interval_cs == 0 => Err(DiscardReason::IntervalZero),
            _ => Ok(list),
        }
    }

    /// Counts how the list of a processed advert compared and runs the grace: opened by the
    /// followed master's first different list, ended by a matching list.
    fn note_list(&mut self, now: Instant, src: IpAddr, list: ListCheck) {
        match list {
            ListCheck::Same => self.list_grace = None,
            ListCheck::FromOwner => self.counters.address_list_mismatch_from_owner += 1,
            ListCheck::InGrace | ListCheck::OpensGrace => {
                self.counters.address_list_differs_accepted += 1;
                let grace = self.list_grace.get_or_insert(AddressListGrace {
                    cause: GraceCause::MasterChanged { master: src },
                    opened: now,
                    until: now + ADDRESS_LIST_GRACE,
                    accepted: 0,
                });
                grace.accepted = grace.accepted.saturating_add(1);
            }
        }
    }

    /// Defers to `src` as the master.
    fn follow(&mut self, now: Instant, src: IpAddr, repr: &AdvertRepr<'_>, list: ListCheck) {
        self.master = Some(MasterInfo {
            address: src,
            priority: repr.priority,
            interval_cs: repr.interval_cs,
            last_seen: now,
        });
        self.master_list_matched = list == ListCheck::Same;
    }

    fn preempting(&self, now: Instant) -> bool {
        self.params.preempt && now >= self.preempt_allowed_at
    }

    /// RFC 9568 section 6.4.2 / 6.4.3 (RFC 3768 for v2) on a valid advertisement.
    fn process_advert(
        &mut self,
        now: Instant,
        src: IpAddr,
        repr: &AdvertRepr<'_>,
        list: ListCheck,
    ) {
        self.counters.adverts_received += 1;
        if repr.priority == 0 {
            self.counters.priority_zero_received += 1;
        }
        if list == ListCheck::OpensGrace {
            // An ended grace is replaced, not extended.
            self.list_grace = None;
        }
        self.note_list(now, src, list);
        let local = self.effective_priority;
        let learn = self.params.version == Version::V3;
        match self.state {
            State::Initialize | State::Fault => self.counters.ignored_while_inactive += 1,
            State::Backup => {
                if repr.priority == 0 {
                    self.down_reason = MasterDownReason::PriorityZero;
                    self.wants_master = false;
                    self.arm_master_down(now, true);
                } else if !self.preempting(now) || repr.priority >= local {
                    if learn {
                        self.master_adver_interval_cs = repr.interval_cs;
                        self.interval_learned = true;
                    }
                    self.follow(now, src, repr, list);
                    self.down_reason = MasterDownReason::Silence;
                    self.wants_master = false;
                    self.arm_master_down(now, false);
                } else {
                    self.counters.lower_priority_ignored += 1;
                    self.down_reason = MasterDownReason::Preempting;
                    if self.master.is_none() {
                        self.follow(now, src, repr, list);
                    }
                    // The timer expired while held back (a service LAN split) and left none
                    // running: the master is heard again, so the split is over and this
                    // backup preempts as RFC 9568 says, after a Master_Down_Interval of
                    // ignoring the lower priority (the hold does not stop a preemption).
                    if self.down_while_held {
                        self.arm_master_down(now, false);
                        self.down_reason = MasterDownReason::Preempting;
                    }
                }
            }
            State::Master => {
                if repr.priority == 0 {
                    self.send_advert(local);
                    let at = now + centiseconds(self.params.advert_interval_cs);
                    self.timer = Some(Timer::advert(now, at));
                } else if repr.priority > local
                    || (repr.priority == local && src > self.params.primary_address)
                {
                    if learn {
                        self.master_adver_interval_cs = repr.interval_cs;
                        self.interval_learned = true;
                    }
                    let cause = if repr.priority > local {
                        Cause::HigherPriority {
                            from: src,
                            priority: repr.priority,
                        }
                    } else {
                        Cause::EqualPriorityHigherAddress { from: src }
                    };
                    self.become_backup(now, cause);
                    self.follow(now, src, repr, list);
                } else if self.params.version == Version::V3 {
                    // RFC 9568 section 6.4.3: assert mastership at once so the lower-priority
                    // sender backs off and learning bridges relearn the path.
                    self.counters.lower_priority_answered += 1;
                    self.send_advert(local);
                }
            }
        }
    }
}

/// The virtual addresses by family, IPv6 with a link-local address first (RFC 9568 section
/// 5.2.9).
fn split_vips(addresses: &[IpAddr]) -> (Vec<Ipv4Addr>, Vec<Ipv6Addr>) {
    let mut vips_v4 = Vec::new();
    let mut vips_v6 = Vec::new();
    for address in addresses {
        match address {
            IpAddr::V4(a) => vips_v4.push(*a),
            IpAddr::V6(a) => vips_v6.push(*a),
        }
    }
    vips_v6.sort_by_key(|a| !a.is_unicast_link_local());
    (vips_v4, vips_v6)
}

fn discard_reason(error: WireError) -> DiscardReason {
    match error {
        WireError::Truncated { .. } => DiscardReason::Truncated,
        WireError::UnsupportedVersion { .. } | WireError::V2OverIpv6 => {
            DiscardReason::VersionMismatch
        }
        WireError::UnknownType { .. } => DiscardReason::UnknownType,
        WireError::TooShortForAddressCount { .. } => DiscardReason::TooShortForAddressCount,
        WireError::BadChecksum { .. } => DiscardReason::BadChecksum,
        WireError::AddressFamilyMismatch => DiscardReason::FamilyMismatch,
        WireError::BufferTooSmall { .. }
        | WireError::IntervalNotRepresentable { .. }
        | WireError::TooManyAddresses { .. } => DiscardReason::Truncated,
    }
}
