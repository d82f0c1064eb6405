//! All VRRP instances of the box, plus what spans instances: demultiplexing received packets
//! (VRID not configured is a section 7.1 discard counted here), tracking events fanned out to
//! every instance that tracks the object, and keepalived-style sync groups:
//!
//! - one member in FAULT holds every member in FAULT (priority-0 adverts hand each one over);
//! - one member losing an election (Master -> Backup) takes the others with it;
//! - a member whose Master_Down_Timer fires waits until every other member's has too (or is
//!   already master), then the whole group becomes master at once. A group never straddles
//!   two boxes, so its addresses (e.g. a VIP and its NAT gateway) always move together.

use std::string::String;
use std::vec::Vec;

use tandem_wire::Family;

use crate::instance::{Action, GroupEvent, Instance, RxMeta};
use crate::params::{InstanceParams, ParamError};
use crate::status::{Cause, DiscardReason, State};
use crate::time::Instant;

/// Index of an instance in its [`Speaker`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(pub usize);

/// Index of a sync group in its [`Speaker`].
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

/// Every VRRP instance of the box.
#[derive(Debug, Default)]
pub struct Speaker {
    instances: Vec<Instance>,
    group_of: Vec<Option<GroupId>>,
    groups: Vec<SyncGroup>,
    counters: SpeakerCounters,
}

impl Speaker {
    /// An empty speaker.
    pub fn new() -> Speaker {
        Speaker::default()
    }

    /// Adds and starts an instance.
    pub fn add_instance(
        &mut self,
        params: InstanceParams,
        now: Instant,
    ) -> Result<InstanceId, ParamError> {
        let clash = self.instances.iter().any(|i| {
            let p = i.params();
            p.interface == params.interface
                && p.vrid == params.vrid
                && p.family() == params.family()
        });
        if clash {
            return Err(ParamError::DuplicateVrid {
                interface: params.interface,
                vrid: params.vrid,
            });
        }
        let instance = Instance::new(params, now)?;
        self.instances.push(instance);
        self.group_of.push(None);
        let id = InstanceId(self.instances.len() - 1);
        self.settle(now);
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
            let found = self
                .instances
                .iter()
                .position(|i| i.params().name == *member);
            match found {
                Some(index)
                    if self.group_of[index].is_none() && !ids.contains(&InstanceId(index)) =>
                {
                    ids.push(InstanceId(index));
                }
                _ => {
                    return Err(ParamError::SyncGroupMember {
                        group: name.into(),
                        member: (*member).into(),
                    })
                }
            }
        }
        let group = GroupId(self.groups.len());
        for id in &ids {
            self.group_of[id.0] = Some(group);
            self.instances[id.0].set_in_sync_group(now, true);
        }
        self.groups.push(SyncGroup {
            name: name.into(),
            members: ids,
        });
        self.reconcile_faults(now, group);
        self.settle(now);
        Ok(group)
    }

    /// The instances.
    pub fn instances(&self) -> impl Iterator<Item = (InstanceId, &Instance)> {
        self.instances
            .iter()
            .enumerate()
            .map(|(i, inst)| (InstanceId(i), inst))
    }

    /// One instance.
    pub fn instance(&self, id: InstanceId) -> Option<&Instance> {
        self.instances.get(id.0)
    }

    /// Finds an instance by name.
    pub fn find(&self, name: &str) -> Option<InstanceId> {
        self.instances
            .iter()
            .position(|i| i.params().name == name)
            .map(InstanceId)
    }

    /// Discards counted before an instance was found.
    pub fn counters(&self) -> &SpeakerCounters {
        &self.counters
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
        let Some(&vrid) = payload.get(1) else {
            self.counters.truncated += 1;
            return Err(DiscardReason::Truncated);
        };
        let family = Family::of(&meta.src);
        if family != Family::of(&meta.dst) {
            self.counters.family_mismatch += 1;
            return Err(DiscardReason::FamilyMismatch);
        }
        let found = self.instances.iter().position(|i| {
            let p = i.params();
            p.vrid == vrid && p.family() == family && p.interface == interface
        });
        let Some(index) = found else {
            self.counters.vrid_not_configured += 1;
            return Err(DiscardReason::VridNotConfigured);
        };
        let result = self.instances[index].handle_packet(now, meta, payload);
        self.settle(now);
        result.map(|()| InstanceId(index))
    }

    /// Fires every due timer.
    pub fn handle_timeout(&mut self, now: Instant) {
        for instance in &mut self.instances {
            if instance.poll_timeout().is_some_and(|at| at <= now) {
                instance.handle_timeout(now);
            }
        }
        self.settle(now);
    }

    /// A tracked object (interface, bond, pool health...) changed. Returns how many instances
    /// track it.
    pub fn handle_track_event(&mut self, now: Instant, name: &str, up: bool) -> usize {
        let mut count = 0;
        for instance in &mut self.instances {
            if instance.handle_track_event(now, name, up) {
                count += 1;
            }
        }
        self.settle(now);
        count
    }

    /// Shuts every instance down (masters send priority 0).
    pub fn handle_shutdown(&mut self, now: Instant) {
        for instance in &mut self.instances {
            instance.handle_shutdown(now);
        }
        self.settle(now);
    }

    /// Shuts one instance down.
    pub fn shutdown_instance(&mut self, now: Instant, id: InstanceId) {
        if let Some(instance) = self.instances.get_mut(id.0) {
            instance.handle_shutdown(now);
        }
        self.settle(now);
    }

    /// Starts one instance again after a shutdown.
    pub fn startup_instance(&mut self, now: Instant, id: InstanceId) {
        if let Some(instance) = self.instances.get_mut(id.0) {
            instance.handle_startup(now);
        }
        self.settle(now);
    }

    /// Next action of any instance, in order per instance.
    pub fn poll_action(&mut self) -> Option<(InstanceId, Action)> {
        for (index, instance) in self.instances.iter_mut().enumerate() {
            if let Some(action) = instance.poll_action() {
                return Some((InstanceId(index), action));
            }
        }
        None
    }

    /// Earliest deadline of any instance.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.instances
            .iter()
            .filter_map(Instance::poll_timeout)
            .min()
    }

    /// Applies sync group rules until no member reports anything new.
    fn settle(&mut self, now: Instant) {
        // Each round consumes events; forced moves report none, so this ends quickly. The cap
        // only guards against a logic error turning into a hang.
        let cap = 4 * self.instances.len() + 4;
        for _ in 0..cap {
            let mut any = false;
            for index in 0..self.instances.len() {
                let events = self.instances[index].take_group_events();
                let Some(group) = self.group_of[index] else {
                    continue;
                };
                for event in events {
                    any = true;
                    self.apply_group_event(now, group, InstanceId(index), event);
                }
            }
            if !any {
                return;
            }
        }
    }

    fn sync_cause(&self, group: GroupId, member: InstanceId) -> Cause {
        Cause::SyncGroup {
            group: self.groups[group.0].name.clone(),
            member: self.instances[member.0].params().name.clone(),
        }
    }

    fn apply_group_event(
        &mut self,
        now: Instant,
        group: GroupId,
        member: InstanceId,
        event: GroupEvent,
    ) {
        let members = self.groups[group.0].members.clone();
        let cause = self.sync_cause(group, member);
        match event {
            GroupEvent::Entered {
                to: State::Fault, ..
            } => self.reconcile_faults(now, group),
            GroupEvent::Entered {
                from: State::Fault, ..
            } => self.reconcile_faults(now, group),
            GroupEvent::Entered {
                from: State::Master,
                to: State::Backup,
            } => {
                for other in members.iter().filter(|m| **m != member) {
                    self.instances[other.0].group_demote(now, cause.clone());
                }
            }
            GroupEvent::Entered {
                to: State::Master, ..
            } => {
                for other in members.iter().filter(|m| **m != member) {
                    self.instances[other.0].group_promote(now, cause.clone());
                }
            }
            GroupEvent::WantsMaster => {
                let ready = members.iter().all(|m| {
                    let i = &self.instances[m.0];
                    i.state() == State::Master || (i.state() == State::Backup && i.wants_master())
                });
                if ready {
                    for m in &members {
                        self.instances[m.0].group_promote(now, cause.clone());
                    }
                }
            }
            GroupEvent::Entered { .. } => {}
        }
    }

    /// Holds every member in FAULT while any member has a fault of its own; releases them all
    /// when none has.
    fn reconcile_faults(&mut self, now: Instant, group: GroupId) {
        let members = self.groups[group.0].members.clone();
        let faulty = members
            .iter()
            .find(|m| self.instances[m.0].own_fault())
            .copied();
        match faulty {
            Some(faulty) => {
                let cause = self.sync_cause(group, faulty);
                for m in &members {
                    if *m != faulty && !self.instances[m.0].has_group_fault() {
                        self.instances[m.0].set_group_fault(now, Some(cause.clone()));
                    }
                }
            }
            None => {
                for m in &members {
                    if self.instances[m.0].has_group_fault() {
                        self.instances[m.0].set_group_fault(now, None);
                    }
                }
            }
        }
    }
}
