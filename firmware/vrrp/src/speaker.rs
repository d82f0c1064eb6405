//! All VRRP instances of the box, plus what spans instances: demultiplexing received packets
//! (VRID not configured is a section 7.1 discard counted here), tracking events fanned out to
//! every instance that tracks the object, and keepalived-style sync groups:
//!
//! - one member in FAULT holds every member in FAULT (priority-0 adverts hand each one over);
//! - one member losing an election (Master -> Backup) takes the others with it;
//! - a member whose Master_Down_Timer fires waits until every other member's has too (or is
//!   already master), then the whole group becomes master at once. A group never straddles
//!   two boxes, so its addresses (e.g. a VIP and its NAT gateway) always move together.
//!
//! Instances keep their [`InstanceId`] for the life of the speaker: ids are handed out in
//! order and never reused, so removing one (see [`Speaker::reconcile`]) renumbers nothing and a
//! caller's per-id data stays correct. Actions of all instances are queued in the order they
//! were produced, including the last ones of a removed instance.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::string::String;
use std::vec::Vec;

use tandem_wire::Family;

use crate::ingress::{Accepted, HealedSplit, REANNOUNCE_GAP};
use crate::instance::{Action, GroupEvent, Instance, RxMeta};
use crate::params::{InstanceKey, InstanceParams, ParamError};
use crate::reconcile::{GroupsReconciled, Reconciled, Refused};
use crate::status::{Cause, DiscardReason, State};
use crate::time::Instant;

/// Identity of an instance in its [`Speaker`]: stable for the speaker's life, never reused
/// (ids are sparse once instances were removed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(pub usize);

/// Identity of a sync group in its [`Speaker`]: stable, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupId(pub usize);

/// Discards counted before an instance is known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpeakerCounters {
    /// No instance has this interface, family and VRID.
    pub vrid_not_configured: u64,
    /// Too short to hold a VRID.
    pub truncated: u64,
    /// Source and destination of different families.
    pub family_mismatch: u64,
}

#[derive(Debug, Clone)]
struct SyncGroup {
    name: String,
    members: Vec<InstanceId>,
}

#[derive(Debug)]
struct Entry {
    instance: Instance,
    group: Option<GroupId>,
    /// Last healed-split re-announcement.
    last_reannounce: Option<Instant>,
}

/// Every VRRP instance of the box.
#[derive(Debug, Default)]
pub struct Speaker {
    instances: BTreeMap<InstanceId, Entry>,
    next_instance: usize,
    groups: BTreeMap<GroupId, SyncGroup>,
    next_group: usize,
    /// Actions in the order they were produced.
    pending: VecDeque<(InstanceId, Action)>,
    counters: SpeakerCounters,
    /// Maintenance mode: every instance, present and future, in standby.
    standby: bool,
}

impl Speaker {
    /// An empty speaker.
    pub fn new() -> Speaker {
        Speaker::default()
    }

    /// Adds and starts an instance. Its tracked objects start up, or as another instance that
    /// tracks the same object last heard.
    pub fn add_instance(
        &mut self,
        params: InstanceParams,
        now: Instant,
    ) -> Result<InstanceId, ParamError> {
        let known = self.track_states();
        let known = |name: &str| known.iter().find(|(n, _)| n == name).map(|(_, up)| *up);
        let id = self.insert_instance(params, now, &known)?;
        self.settle(now);
        Ok(id)
    }

    /// Starts an instance under a fresh id; its group events wait for the next settle.
    fn insert_instance(
        &mut self,
        params: InstanceParams,
        now: Instant,
        known: &dyn Fn(&str) -> Option<bool>,
    ) -> Result<InstanceId, ParamError> {
        if self.id_of(&params.key()).is_some() {
            return Err(ParamError::DuplicateVrid {
                interface: params.interface,
                vrid: params.vrid,
            });
        }
        let instance = Instance::with_track_states(params, now, known, self.standby)?;
        let id = InstanceId(self.next_instance);
        self.next_instance = self.next_instance.saturating_add(1);
        self.instances.insert(
            id,
            Entry {
                instance,
                group: None,
                last_reannounce: None,
            },
        );
        Ok(id)
    }

    /// Declares a sync group over instances named `members` (each in at most one group).
    pub fn add_sync_group(
        &mut self,
        name: &str,
        members: &[&str],
        now: Instant,
    ) -> Result<GroupId, ParamError> {
        let mut ids = Vec::new();
        for member in members {
            match self.find(member) {
                Some(id) if self.group_of(id).is_none() && !ids.contains(&id) => ids.push(id),
                _ => {
                    return Err(ParamError::SyncGroupMember {
                        group: name.into(),
                        member: (*member).into(),
                    })
                }
            }
        }
        let group = GroupId(self.next_group);
        self.next_group = self.next_group.saturating_add(1);
        for id in &ids {
            if let Some(entry) = self.instances.get_mut(id) {
                entry.group = Some(group);
                entry.instance.set_in_sync_group(now, true);
            }
        }
        self.groups.insert(
            group,
            SyncGroup {
                name: name.into(),
                members: ids,
            },
        );
        self.reconcile_faults(now, group);
        self.settle(now);
        Ok(group)
    }

    /// The running instances, by id.
    pub fn instances(&self) -> impl Iterator<Item = (InstanceId, &Instance)> {
        self.instances.iter().map(|(id, e)| (*id, &e.instance))
    }

    /// One running instance (None for an id that was removed).
    pub fn instance(&self, id: InstanceId) -> Option<&Instance> {
        self.instances.get(&id).map(|e| &e.instance)
    }

    /// Finds a running instance by name.
    pub fn find(&self, name: &str) -> Option<InstanceId> {
        self.instances
            .iter()
            .find(|(_, e)| e.instance.params().name == name)
            .map(|(id, _)| *id)
    }

    /// Finds a running instance by its key (interface, family, VRID).
    pub fn id_of(&self, key: &InstanceKey) -> Option<InstanceId> {
        self.instances
            .iter()
            .find(|(_, e)| {
                let p = e.instance.params();
                p.vrid == key.vrid
                    && p.primary_address.is_ipv6() == key.ipv6
                    && p.interface == key.interface
            })
            .map(|(id, _)| *id)
    }

    /// Discards counted before an instance was found.
    pub fn counters(&self) -> &SpeakerCounters {
        &self.counters
    }

    /// The instance a VRRP payload on `interface` is for (by family and VRID), without
    /// handing it over or counting anything: for filters that run first (see
    /// [`crate::unicast_peer_allowed`]).
    pub fn demux(&self, interface: &str, meta: &RxMeta, payload: &[u8]) -> Option<InstanceId> {
        let &vrid = payload.get(1)?;
        let family = Family::of(&meta.src);
        if family != Family::of(&meta.dst) {
            return None;
        }
        self.instances
            .iter()
            .find(|(_, e)| {
                let p = e.instance.params();
                p.vrid == vrid && p.family() == family && p.interface == interface
            })
            .map(|(id, _)| *id)
    }

    /// A VRRP payload arrived on `interface`. Finds the instance by family and VRID and runs its
    /// checks; returns the instance that took it, or the discard reason.
    pub fn handle_packet(
        &mut self,
        now: Instant,
        interface: &str,
        meta: RxMeta,
        payload: &[u8],
    ) -> Result<InstanceId, DiscardReason> {
        if payload.get(1).is_none() {
            self.counters.truncated += 1;
            return Err(DiscardReason::Truncated);
        }
        if Family::of(&meta.src) != Family::of(&meta.dst) {
            self.counters.family_mismatch += 1;
            return Err(DiscardReason::FamilyMismatch);
        }
        let Some(id) = self.demux(interface, &meta, payload) else {
            self.counters.vrid_not_configured += 1;
            return Err(DiscardReason::VridNotConfigured);
        };
        let result = match self.instances.get_mut(&id) {
            Some(entry) => entry.instance.handle_packet(now, meta, payload),
            None => Err(DiscardReason::VridNotConfigured),
        };
        self.settle(now);
        result.map(|()| id)
    }

    /// [`handle_packet`](Self::handle_packet), plus the healed-split decision: when the
    /// instance that took the advert is master and the advert came from a lower-priority master
    /// (priority not 0), [`Accepted::healed_split`] asks the engine to announce the instance's
    /// addresses again, at most once per [`REANNOUNCE_GAP`] per instance;
    /// [`Accepted::address_list_grace`] reports the first advert with another address list
    /// processed during a grace.
    pub fn receive(
        &mut self,
        now: Instant,
        interface: &str,
        meta: RxMeta,
        payload: &[u8],
    ) -> Result<Accepted, DiscardReason> {
        let differs_before = self
            .demux(interface, &meta, payload)
            .and_then(|id| self.instance(id))
            .map_or(0, |i| i.counters().address_list_differs_accepted);
        let id = self.handle_packet(now, interface, meta, payload)?;
        let their_priority = payload.get(2).copied().unwrap_or(0);
        let mut healed_split = None;
        let address_list_grace = self
            .instance(id)
            .filter(|i| i.counters().address_list_differs_accepted > differs_before)
            .and_then(Instance::address_list_grace)
            .filter(|g| g.accepted == 1);
        if let Some(entry) = self.instances.get_mut(&id) {
            let instance = &entry.instance;
            let lower_master = instance.state() == State::Master
                && their_priority != 0
                && their_priority < instance.effective_priority();
            let due = entry
                .last_reannounce
                .is_none_or(|last| now.saturating_duration_since(last) >= REANNOUNCE_GAP);
            if lower_master && due {
                entry.last_reannounce = Some(now);
                healed_split = Some(HealedSplit {
                    from: meta.src,
                    priority: their_priority,
                });
            }
        }
        Ok(Accepted {
            id,
            healed_split,
            address_list_grace,
        })
    }

    /// Fires every due timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        for entry in self.instances.values_mut() {
            if entry.instance.poll_timeout().is_some_and(|at| at <= now) {
                entry.instance.handle_timeout(now);
            }
        }
        self.settle(now);
    }

    /// A tracked object (interface, bond, pool health...) changed. Returns how many instances
    /// track it.
    pub fn handle_track_event(&mut self, now: Instant, name: &str, up: bool) -> usize {
        let mut count = 0;
        for entry in self.instances.values_mut() {
            if entry.instance.handle_track_event(now, name, up) {
                count += 1;
            }
        }
        self.settle(now);
        count
    }

    /// A tracked check of instance `id` changed state (see [`Instance::handle_check_event`]).
    /// Returns false when the instance is gone or has no such check (a result that raced a
    /// live change).
    pub fn handle_check_event(
        &mut self,
        now: Instant,
        id: InstanceId,
        name: &str,
        up: bool,
    ) -> bool {
        let known = self
            .instances
            .get_mut(&id)
            .is_some_and(|entry| entry.instance.handle_check_event(now, name, up));
        self.settle(now);
        known
    }

    /// Holds a backup back from promoting on its timer, or releases it (see
    /// [`Instance::set_held_back`]). Returns true when the release promoted it.
    pub fn set_held_back(
        &mut self,
        now: Instant,
        id: InstanceId,
        held: bool,
        cause: Cause,
    ) -> bool {
        let promoted = self
            .instances
            .get_mut(&id)
            .is_some_and(|entry| entry.instance.set_held_back(now, held, cause));
        self.settle(now);
        promoted
    }

    /// Promotes a backup at once (see [`Instance::force_master`]).
    pub fn force_master(&mut self, now: Instant, id: InstanceId, cause: Cause) -> bool {
        let promoted = self
            .instances
            .get_mut(&id)
            .is_some_and(|entry| entry.instance.force_master(now, cause));
        self.settle(now);
        promoted
    }

    /// Steps a master down in favour of the partner (see [`Instance::yield_master`]).
    pub fn yield_master(&mut self, now: Instant, id: InstanceId, cause: Cause) -> bool {
        let demoted = self
            .instances
            .get_mut(&id)
            .is_some_and(|entry| entry.instance.yield_master(now, cause));
        self.settle(now);
        demoted
    }

    /// Maintenance mode on or off for every instance (see [`Instance::set_standby`]); instances
    /// added while it is on start in standby. Returns how many instances changed state.
    pub fn set_standby(&mut self, now: Instant, on: bool) -> usize {
        self.standby = on;
        let mut changed = 0;
        for entry in self.instances.values_mut() {
            if entry.instance.set_standby(now, on) {
                changed += 1;
            }
        }
        self.settle(now);
        changed
    }

    /// True in maintenance mode.
    pub fn standby(&self) -> bool {
        self.standby
    }

    /// Shuts every instance down (masters send priority 0).
    pub fn handle_shutdown(&mut self, now: Instant) {
        for entry in self.instances.values_mut() {
            entry.instance.handle_shutdown(now);
        }
        self.settle(now);
    }

    /// Shuts one instance down.
    pub fn shutdown_instance(&mut self, now: Instant, id: InstanceId) {
        if let Some(entry) = self.instances.get_mut(&id) {
            entry.instance.handle_shutdown(now);
        }
        self.settle(now);
    }

    /// Starts one instance again after a shutdown.
    pub fn startup_instance(&mut self, now: Instant, id: InstanceId) {
        if let Some(entry) = self.instances.get_mut(&id) {
            entry.instance.handle_startup(now);
        }
        self.settle(now);
    }

    /// True while any action waits to be polled (what a status report must not get ahead of:
    /// a state whose addresses are still being added or removed).
    pub fn has_pending_actions(&self) -> bool {
        !self.pending.is_empty() || self.instances.values().any(|e| e.instance.has_actions())
    }

    /// Next action, in the order produced (per instance always in order). A removed instance's
    /// last actions come with its old id, after which the id never appears again.
    pub fn poll_action(&mut self) -> Option<(InstanceId, Action)> {
        if self.pending.is_empty() {
            self.collect();
        }
        self.pending.pop_front()
    }

    /// Earliest deadline of any instance.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.instances
            .values()
            .filter_map(|e| e.instance.poll_timeout())
            .min()
    }

    /// Live reconfiguration: makes the running instances and sync groups those of `wanted`
    /// and `groups` (name, member names), matching instances by [`InstanceKey`].
    ///
    /// - Identical parameters: the instance is not touched (no action, timers unchanged).
    /// - Not wanted any more: shut down as by RFC 9568 (a master sends priority 0 and removes
    ///   its addresses, so a backup takes over after Skew_Time), then forgotten; its last
    ///   actions still come out of [`poll_action`](Self::poll_action) under its old id.
    /// - New: started as by [`add_instance`](Self::add_instance), under a fresh id.
    /// - Changed: reconfigured in place, id kept, no transition unless the change demands
    ///   one. Priority: advertised from the next advert; a peer preempts by the RFC rules.
    ///   Becoming the address owner (255) while Backup makes it Master at once (as at
    ///   startup); as Master it stays Master. Ceasing to be the owner keeps the state. Interval:
    ///   a master sends the next advert at its scheduled time carrying the new interval and
    ///   spaces later ones by it; a backup's running Master_Down_Timer is recomputed from when
    ///   it was armed only if its span changed (v2, or v3 before a master's interval was
    ///   learned, or a priority change moving Skew_Time). Addresses: a master removes the ones
    ///   dropped (`RemoveVips`, before any instance adds addresses) and adds and announces the
    ///   new ones (`AddVips` + `Announce` of just those); a backup does nothing. Tracks: a kept
    ///   object keeps its state, a new one starts as another instance tracking it last heard
    ///   (up if none), a removed one no longer counts. Accept_Mode, authentication, checksum
    ///   form, name, preempt and preempt delay take effect without a transition (Accept_Mode:
    ///   see [`Reconciled::accept_resync`]).
    /// - Refused (invalid, or a second instance with the same key): reported in
    ///   [`Reconciled::refused`]; nothing else is affected, and a running instance with that
    ///   key keeps its old parameters.
    /// - Sync groups are matched by name: identical member sets are not touched, changed ones
    ///   keep their id, missing ones are dissolved, new ones formed. Unknown members are
    ///   reported and left out; no transition is forced to align members' states.
    pub fn reconcile(
        &mut self,
        wanted: Vec<InstanceParams>,
        groups: &[(String, Vec<String>)],
        now: Instant,
    ) -> Reconciled {
        self.collect();
        let mut out = Reconciled::default();
        // Tracked objects as known before anything changes (instances that stop tracking an
        // object in this commit still knew its state).
        let known = self.track_states();
        let known = |name: &str| known.iter().find(|(n, _)| n == name).map(|(_, up)| *up);
        let groups_before: BTreeMap<GroupId, (String, BTreeSet<InstanceId>)> = self
            .groups
            .iter()
            .map(|(id, g)| (*id, (g.name.clone(), g.members.iter().copied().collect())))
            .collect();

        // Validation: a refused instance keeps whatever runs under its key.
        let mut seen: BTreeSet<InstanceKey> = BTreeSet::new();
        let mut accepted: Vec<(InstanceKey, InstanceParams)> = Vec::new();
        for params in wanted {
            let key = params.key();
            let error = if seen.contains(&key) {
                Some(ParamError::DuplicateVrid {
                    interface: params.interface.clone(),
                    vrid: params.vrid,
                })
            } else {
                params.validate().err()
            };
            seen.insert(key.clone());
            match error {
                Some(error) => out.refused.push(Refused {
                    name: params.name.clone(),
                    kept: self.id_of(&key),
                    key,
                    error,
                }),
                None => accepted.push((key, params)),
            }
        }

        // Removed: first, so their addresses are released before anyone adds them.
        let gone: Vec<InstanceId> = self
            .instances
            .iter()
            .filter(|(_, e)| !seen.contains(&e.instance.params().key()))
            .map(|(id, _)| *id)
            .collect();
        for id in gone {
            self.remove_instance(now, id);
            out.removed.push(id);
        }

        // Changed in place; addresses they gain are added once every loss is queued.
        let mut new_instances = Vec::new();
        let mut gains = Vec::new();
        for (key, params) in accepted {
            let Some(id) = self.id_of(&key) else {
                new_instances.push(params);
                continue;
            };
            let Some(entry) = self.instances.get_mut(&id) else {
                continue;
            };
            let (changes, gained) = entry.instance.reconfigure(now, params, &known);
            if changes.is_empty() {
                out.unchanged.push(id);
            } else {
                out.changed.push((id, changes));
                gains.push((id, gained));
            }
        }
        self.collect();
        for (id, gained) in gains {
            if let Some(entry) = self.instances.get_mut(&id) {
                entry.instance.gain_vips(gained);
            }
        }
        self.collect();

        // Added (their group events are applied after the groups below).
        for params in new_instances {
            let key = params.key();
            let name = params.name.clone();
            match self.insert_instance(params, now, &known) {
                Ok(id) => out.added.push(id),
                Err(error) => out.refused.push(Refused {
                    name,
                    key,
                    kept: None,
                    error,
                }),
            }
        }

        out.groups = self.reconcile_groups(now, groups, &groups_before);
        self.settle(now);
        out
    }

    /// Shuts `id` down, queues its last actions and forgets it (and its group membership).
    fn remove_instance(&mut self, now: Instant, id: InstanceId) {
        let Some(mut entry) = self.instances.remove(&id) else {
            return;
        };
        if let Some(group) = entry.group.and_then(|g| self.groups.get_mut(&g)) {
            group.members.retain(|m| *m != id);
        }
        entry.instance.handle_shutdown(now);
        entry.instance.take_group_events();
        while let Some(action) = entry.instance.poll_action() {
            self.pending.push_back((id, action));
        }
    }

    /// Replaces the sync groups by `wanted`, touching only what differs.
    fn reconcile_groups(
        &mut self,
        now: Instant,
        wanted: &[(String, Vec<String>)],
        before: &BTreeMap<GroupId, (String, BTreeSet<InstanceId>)>,
    ) -> GroupsReconciled {
        let mut out = GroupsReconciled::default();
        // Resolve names: each instance in at most one group, each group name once.
        let mut claimed: BTreeSet<InstanceId> = BTreeSet::new();
        let mut resolved: Vec<(String, Vec<InstanceId>)> = Vec::new();
        for (name, members) in wanted {
            if resolved.iter().any(|(n, _)| n == name) {
                out.errors.push(ParamError::DuplicateSyncGroup {
                    group: name.clone(),
                });
                continue;
            }
            let mut ids = Vec::new();
            for member in members {
                match self.find(member) {
                    Some(id) if !claimed.contains(&id) => {
                        claimed.insert(id);
                        ids.push(id);
                    }
                    _ => out.errors.push(ParamError::SyncGroupMember {
                        group: name.clone(),
                        member: member.clone(),
                    }),
                }
            }
            if !ids.is_empty() {
                resolved.push((name.clone(), ids));
            }
        }

        // Match by name.
        let mut touched: Vec<GroupId> = Vec::new();
        let mut kept: BTreeSet<GroupId> = BTreeSet::new();
        for (name, ids) in resolved {
            let existing = before.iter().find(|(_, (n, _))| *n == name);
            let set: BTreeSet<InstanceId> = ids.iter().copied().collect();
            let group = match existing {
                Some((gid, (_, old))) => {
                    kept.insert(*gid);
                    if *old == set {
                        out.unchanged.push(name);
                        continue;
                    }
                    out.changed.push(name.clone());
                    *gid
                }
                None => {
                    let gid = GroupId(self.next_group);
                    self.next_group = self.next_group.saturating_add(1);
                    out.added.push(name.clone());
                    gid
                }
            };
            self.groups.insert(group, SyncGroup { name, members: ids });
            touched.push(group);
        }
        let dissolved: Vec<GroupId> = self
            .groups
            .keys()
            .filter(|g| !kept.contains(g) && !touched.contains(g))
            .copied()
            .collect();
        for gid in dissolved {
            if let Some(group) = self.groups.remove(&gid) {
                out.removed.push(group.name);
            }
        }

        // Membership of each instance; only what differs is told.
        let mut membership: BTreeMap<InstanceId, GroupId> = BTreeMap::new();
        for (gid, group) in &self.groups {
            for member in &group.members {
                membership.insert(*member, *gid);
            }
        }
        for (id, entry) in &mut self.instances {
            let group = membership.get(id).copied();
            if entry.group == group {
                continue;
            }
            let was_grouped = entry.group.is_some();
            entry.group = group;
            if was_grouped != group.is_some() {
                entry.instance.set_in_sync_group(now, group.is_some());
            }
            if group.is_none() && entry.instance.has_group_fault() {
                entry.instance.set_group_fault(now, None);
            }
        }
        for gid in touched {
            self.reconcile_faults(now, gid);
        }
        out
    }

    /// The state of each object tracked by a running instance.
    fn track_states(&self) -> Vec<(String, bool)> {
        let mut states: Vec<(String, bool)> = Vec::new();
        for entry in self.instances.values() {
            // Checks are each instance's own, never shared by name.
            for track in entry
                .instance
                .params()
                .tracks
                .iter()
                .filter(|t| !t.kind.is_check())
            {
                if states.iter().all(|(n, _)| *n != track.name) {
                    if let Some(up) = entry.instance.track_state(&track.name) {
                        states.push((track.name.clone(), up));
                    }
                }
            }
        }
        states
    }

    fn group_of(&self, id: InstanceId) -> Option<GroupId> {
        self.instances.get(&id).and_then(|e| e.group)
    }

    /// Moves every instance's queued actions to the speaker's queue, in id order.
    fn collect(&mut self) {
        for (id, entry) in &mut self.instances {
            while let Some(action) = entry.instance.poll_action() {
                self.pending.push_back((*id, action));
            }
        }
    }

    /// Applies sync group rules until no member reports anything new, then queues the actions.
    fn settle(&mut self, now: Instant) {
        // Each round consumes events; forced moves report none, so this ends quickly. The cap
        // only guards against a logic error turning into a hang.
        let cap = 4 * self.instances.len() + 4;
        for _ in 0..cap {
            let mut any = false;
            let ids: Vec<InstanceId> = self.instances.keys().copied().collect();
            for id in ids {
                let Some(entry) = self.instances.get_mut(&id) else {
                    continue;
                };
                let events = entry.instance.take_group_events();
                let Some(group) = entry.group else {
                    continue;
                };
                for event in events {
                    any = true;
                    self.apply_group_event(now, group, id, event);
                }
            }
            if !any {
                break;
            }
        }
        self.collect();
    }

    fn sync_cause(&self, group: GroupId, member: InstanceId) -> Cause {
        Cause::SyncGroup {
            group: self
                .groups
                .get(&group)
                .map(|g| g.name.clone())
                .unwrap_or_default(),
            member: self
                .instance(member)
                .map(|i| i.params().name.clone())
                .unwrap_or_default(),
        }
    }

    fn members(&self, group: GroupId) -> Vec<InstanceId> {
        self.groups
            .get(&group)
            .map(|g| g.members.clone())
            .unwrap_or_default()
    }

    fn instance_mut(&mut self, id: InstanceId) -> Option<&mut Instance> {
        self.instances.get_mut(&id).map(|e| &mut e.instance)
    }

    fn apply_group_event(
        &mut self,
        now: Instant,
        group: GroupId,
        member: InstanceId,
        event: GroupEvent,
    ) {
        let members = self.members(group);
        let cause = self.sync_cause(group, member);
        match event {
            GroupEvent::Entered {
                to: State::Fault, ..
            } => self.reconcile_faults(now, group),
            GroupEvent::Entered {
                from: State::Fault, ..
            }
            | GroupEvent::OwnFaultChanged => self.reconcile_faults(now, group),
            GroupEvent::Entered {
                from: State::Master,
                to: State::Backup,
            } => {
                for other in members.iter().filter(|m| **m != member) {
                    if let Some(instance) = self.instance_mut(*other) {
                        instance.group_demote(now, cause.clone());
                    }
                }
            }
            GroupEvent::Entered {
                to: State::Master, ..
            } => {
                for other in members.iter().filter(|m| **m != member) {
                    if let Some(instance) = self.instance_mut(*other) {
                        instance.group_promote(now, cause.clone());
                    }
                }
            }
            GroupEvent::WantsMaster => {
                let ready = members.iter().all(|m| {
                    self.instance(*m).is_none_or(|i| {
                        i.state() == State::Master
                            || (i.state() == State::Backup && i.wants_master())
                    })
                });
                if ready {
                    for m in &members {
                        if let Some(instance) = self.instance_mut(*m) {
                            instance.group_promote(now, cause.clone());
                        }
                    }
                }
            }
            GroupEvent::Entered { .. } => {}
        }
    }

    /// Holds every member in FAULT while any member has a fault of its own; releases them all
    /// when none has.
    fn reconcile_faults(&mut self, now: Instant, group: GroupId) {
        let members = self.members(group);
        let faulty = members
            .iter()
            .find(|m| self.instance(**m).is_some_and(Instance::own_fault))
            .copied();
        match faulty {
            Some(faulty) => {
                let cause = self.sync_cause(group, faulty);
                for m in &members {
                    if let Some(instance) = self.instance_mut(*m) {
                        if *m != faulty && !instance.has_group_fault() {
                            instance.set_group_fault(now, Some(cause.clone()));
                        }
                    }
                }
            }
            None => {
                for m in &members {
                    if let Some(instance) = self.instance_mut(*m) {
                        if instance.has_group_fault() {
                            instance.set_group_fault(now, None);
                        }
                    }
                }
            }
        }
    }
}
