//! Live reconfiguration as data: what [`crate::Speaker::reconcile`] did to each instance and
//! group, and the pure comparison of old and new [`InstanceParams`] behind it.
//!
//! Instances are matched by [`InstanceKey`] (interface, family, VRID). An instance whose
//! parameters are identical is not touched at all; one whose parameters differ is changed in
//! place (no transition unless the change itself demands one, see
//! [`crate::Speaker::reconcile`]); one no longer wanted is shut down as by RFC 9568 (priority
//! 0 from a master) and forgotten; a new one starts as [`crate::Speaker::add_instance`] does.

use core::fmt;
use core::time::Duration;
use std::net::IpAddr;
use std::string::String;
use std::vec::Vec;

use tandem_wire::{Ipv4ChecksumMode, Version};

use crate::params::{InstanceKey, InstanceParams, ParamError};
use crate::speaker::InstanceId;

/// One difference between the running and the wanted parameters of an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamChange {
    /// Renamed (status, logs, sync group membership). No effect on the protocol.
    Name {
        /// Old name.
        from: String,
        /// New name.
        to: String,
    },
    /// VRRP version. The next advert is sent in the new version; received adverts are checked
    /// against it from now on.
    Version {
        /// Old version.
        from: Version,
        /// New version.
        to: Version,
    },
    /// Configured priority (255: address owner).
    Priority {
        /// Old priority.
        from: u8,
        /// New priority.
        to: u8,
    },
    /// Advertisement_Interval in centiseconds.
    AdvertInterval {
        /// Old interval.
        from_cs: u16,
        /// New interval.
        to_cs: u16,
    },
    /// The advert source and tie-break address.
    PrimaryAddress {
        /// Old address.
        from: IpAddr,
        /// New address.
        to: IpAddr,
    },
    /// The virtual address set. Both lists empty: the same set in a new order (adverts list
    /// them in the new order, nothing else changes).
    VirtualAddresses {
        /// Addresses now wanted that were not.
        added: Vec<IpAddr>,
        /// Addresses no longer wanted.
        removed: Vec<IpAddr>,
    },
    /// Preempt_Mode.
    Preempt {
        /// Old setting.
        from: bool,
        /// New setting.
        to: bool,
    },
    /// Startup preempt delay.
    PreemptDelay {
        /// Old delay.
        from: Duration,
        /// New delay.
        to: Duration,
    },
    /// Accept_Mode. While master, the instance's [`crate::Instance::accept_drops`] change with
    /// it: the engine re-syncs its Accept_Mode filter (no action is emitted for this).
    AcceptMode {
        /// Old setting.
        from: bool,
        /// New setting.
        to: bool,
    },
    /// VRRPv2 authentication (the secrets are not copied here, so logging this is safe).
    Auth,
    /// Checksum form of VRRPv3-over-IPv4 adverts sent.
    Checksum {
        /// Old form.
        from: Ipv4ChecksumMode,
        /// New form.
        to: Ipv4ChecksumMode,
    },
    /// Tracked objects, by name. All three empty: the same tracks in a new order.
    Tracks {
        /// Newly tracked (taken as up unless another instance already tracks the object).
        added: Vec<String>,
        /// No longer tracked: their effect on priority and fault is gone.
        removed: Vec<String>,
        /// Still tracked with another weight or kind (their up/down state is kept).
        changed: Vec<String>,
    },
}

impl fmt::Display for ParamChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T: fmt::Display>(items: &[T]) -> String {
            let texts: Vec<String> = items.iter().map(ToString::to_string).collect();
            texts.join(",")
        }
        match self {
            ParamChange::Name { from, to } => write!(f, "name {from} -> {to}"),
            ParamChange::Version { from, to } => {
                write!(f, "version {} -> {}", from.number(), to.number())
            }
            ParamChange::Priority { from, to } => write!(f, "priority {from} -> {to}"),
            ParamChange::AdvertInterval { from_cs, to_cs } => {
                write!(f, "advert interval {from_cs} cs -> {to_cs} cs")
            }
            ParamChange::PrimaryAddress { from, to } => {
                write!(f, "primary address {from} -> {to}")
            }
            ParamChange::VirtualAddresses { added, removed } => {
                if added.is_empty() && removed.is_empty() {
                    write!(f, "virtual addresses reordered")
                } else {
                    write!(
                        f,
                        "virtual addresses +[{}] -[{}]",
                        list(added),
                        list(removed)
                    )
                }
            }
            ParamChange::Preempt { from, to } => write!(f, "preempt {from} -> {to}"),
            ParamChange::PreemptDelay { from, to } => {
                write!(f, "preempt delay {from:?} -> {to:?}")
            }
            ParamChange::AcceptMode { from, to } => write!(f, "accept mode {from} -> {to}"),
            ParamChange::Auth => write!(f, "authentication changed"),
            ParamChange::Checksum { from, to } => write!(f, "IPv4 checksum {from:?} -> {to:?}"),
            ParamChange::Tracks {
                added,
                removed,
                changed,
            } => write!(
                f,
                "tracks +[{}] -[{}] ~[{}]",
                added.join(","),
                removed.join(","),
                changed.join(",")
            ),
        }
    }
}

/// A wanted instance the speaker refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Its name as wanted.
    pub name: String,
    /// Its identity.
    pub key: InstanceKey,
    /// The running instance with this key, kept with its old parameters (None: nothing runs
    /// under this key).
    pub kept: Option<InstanceId>,
    /// Why.
    pub error: ParamError,
}

/// What happened to the sync groups, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupsReconciled {
    /// Groups formed.
    pub added: Vec<String>,
    /// Groups dissolved (their members run on their own).
    pub removed: Vec<String>,
    /// Groups whose member set changed.
    pub changed: Vec<String>,
    /// Groups left exactly as they were.
    pub unchanged: Vec<String>,
    /// Members left out ([`ParamError::SyncGroupMember`]: unknown or already in another
    /// group) and groups refused ([`ParamError::DuplicateSyncGroup`]). A group is formed from
    /// the members that could be resolved.
    pub errors: Vec<ParamError>,
}

/// The outcome of [`crate::Speaker::reconcile`]. Every instance running afterwards is in
/// exactly one of `added`, `changed`, `unchanged`, or is the `kept` of a [`Refused`]; every
/// id in `removed` is gone (its last actions are still returned by `poll_action`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconciled {
    /// New instances (fresh ids, never used before).
    pub added: Vec<InstanceId>,
    /// Instances shut down and forgotten.
    pub removed: Vec<InstanceId>,
    /// Instances reconfigured in place, with what changed.
    pub changed: Vec<(InstanceId, Vec<ParamChange>)>,
    /// Instances with identical parameters: not touched.
    pub unchanged: Vec<InstanceId>,
    /// Wanted instances refused; the others were reconciled regardless.
    pub refused: Vec<Refused>,
    /// Sync groups.
    pub groups: GroupsReconciled,
}

impl Reconciled {
    /// True when nothing was added, removed, changed or refused, and no group changed.
    pub fn is_noop(&self) -> bool {
        self.added.is_empty()
            && self.removed.is_empty()
            && self.changed.is_empty()
            && self.refused.is_empty()
            && self.groups.added.is_empty()
            && self.groups.removed.is_empty()
            && self.groups.changed.is_empty()
            && self.groups.errors.is_empty()
    }

    /// Changed instances whose Accept_Mode filtering may differ now (Accept_Mode, owner
    /// status or the address set changed): the engine re-reads
    /// [`crate::Instance::accept_drops`] for each.
    pub fn accept_resync(&self) -> impl Iterator<Item = InstanceId> + '_ {
        self.changed
            .iter()
            .filter(|(_, changes)| {
                changes.iter().any(|c| match c {
                    ParamChange::AcceptMode { .. } | ParamChange::VirtualAddresses { .. } => true,
                    ParamChange::Priority { from, to } => (*from == 255) != (*to == 255),
                    _ => false,
                })
            })
            .map(|(id, _)| *id)
    }
}

/// Every difference between `old` and `new`, in field order. Empty exactly when the two are
/// equal. The key fields (interface, family, VRID) are not compared: the caller matched them.
pub fn diff(old: &InstanceParams, new: &InstanceParams) -> Vec<ParamChange> {
    let mut changes = Vec::new();
    if old.name != new.name {
        changes.push(ParamChange::Name {
            from: old.name.clone(),
            to: new.name.clone(),
        });
    }
    if old.version != new.version {
        changes.push(ParamChange::Version {
            from: old.version,
            to: new.version,
        });
    }
    if old.priority != new.priority {
        changes.push(ParamChange::Priority {
            from: old.priority,
            to: new.priority,
        });
    }
    if old.advert_interval_cs != new.advert_interval_cs {
        changes.push(ParamChange::AdvertInterval {
            from_cs: old.advert_interval_cs,
            to_cs: new.advert_interval_cs,
        });
    }
    if old.primary_address != new.primary_address {
        changes.push(ParamChange::PrimaryAddress {
            from: old.primary_address,
            to: new.primary_address,
        });
    }
    if old.virtual_addresses != new.virtual_addresses {
        changes.push(ParamChange::VirtualAddresses {
            added: missing_from(&new.virtual_addresses, &old.virtual_addresses),
            removed: missing_from(&old.virtual_addresses, &new.virtual_addresses),
        });
    }
    if old.preempt != new.preempt {
        changes.push(ParamChange::Preempt {
            from: old.preempt,
            to: new.preempt,
        });
    }
    if old.preempt_delay != new.preempt_delay {
        changes.push(ParamChange::PreemptDelay {
            from: old.preempt_delay,
            to: new.preempt_delay,
        });
    }
    if old.accept_mode != new.accept_mode {
        changes.push(ParamChange::AcceptMode {
            from: old.accept_mode,
            to: new.accept_mode,
        });
    }
    if old.auth != new.auth {
        changes.push(ParamChange::Auth);
    }
    if old.ipv4_checksum != new.ipv4_checksum {
        changes.push(ParamChange::Checksum {
            from: old.ipv4_checksum,
            to: new.ipv4_checksum,
        });
    }
    if old.tracks != new.tracks {
        let names = |tracks: &[crate::params::TrackSpec]| -> Vec<String> {
            let mut names: Vec<String> = Vec::new();
            for track in tracks {
                if !names.contains(&track.name) {
                    names.push(track.name.clone());
                }
            }
            names
        };
        let old_names = names(&old.tracks);
        let new_names = names(&new.tracks);
        let changed = new_names
            .iter()
            .filter(|name| {
                let before: Vec<_> = old.tracks.iter().filter(|t| t.name == **name).collect();
                let after: Vec<_> = new.tracks.iter().filter(|t| t.name == **name).collect();
                !before.is_empty() && before != after
            })
            .cloned()
            .collect();
        changes.push(ParamChange::Tracks {
            added: missing_from(&new_names, &old_names),
            removed: missing_from(&old_names, &new_names),
            changed,
        });
    }
    changes
}

/// The items of `items` not in `other`, each once, in `items` order.
fn missing_from<T: PartialEq + Clone>(items: &[T], other: &[T]) -> Vec<T> {
    let mut out: Vec<T> = Vec::new();
    for item in items {
        if !other.contains(item) && !out.contains(item) {
            out.push(item.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{TrackKind, TrackSpec};
    use std::net::Ipv4Addr;

    fn v4(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    fn base() -> InstanceParams {
        InstanceParams::v3("a", "eth0", 1, 100, v4(1), vec![v4(100), v4(101)])
    }

    #[test]
    fn identical_parameters_have_no_difference() {
        assert!(diff(&base(), &base()).is_empty());
    }

    #[test]
    fn every_field_is_named() {
        let old = base();
        let mut new = base();
        new.name = "b".into();
        new.version = Version::V2;
        new.auth = tandem_wire::Auth::simple_text(b"secret");
        new.priority = 255;
        new.advert_interval_cs = 50;
        new.primary_address = v4(2);
        new.virtual_addresses = vec![v4(101), v4(102)];
        new.preempt = false;
        new.preempt_delay = Duration::from_secs(3);
        new.accept_mode = true;
        new.ipv4_checksum = Ipv4ChecksumMode::MessageOnly;
        new.tracks = vec![TrackSpec {
            name: "eth1".into(),
            kind: TrackKind::Interface,
            weight: -10,
        }];
        let changes = diff(&old, &new);
        assert_eq!(changes.len(), 12, "{changes:?}");
        assert!(changes.contains(&ParamChange::VirtualAddresses {
            added: vec![v4(102)],
            removed: vec![v4(100)]
        }));
        assert!(changes.contains(&ParamChange::Tracks {
            added: vec!["eth1".into()],
            removed: vec![],
            changed: vec![]
        }));
        let text: Vec<String> = changes.iter().map(ToString::to_string).collect();
        assert!(text.contains(&"priority 100 -> 255".to_owned()), "{text:?}");
        assert!(
            text.contains(&"authentication changed".to_owned()),
            "{text:?}"
        );
        assert!(!text.concat().contains("secret"), "{text:?}");
    }

    #[test]
    fn a_reorder_is_a_change_with_empty_lists() {
        let mut new = base();
        new.virtual_addresses.reverse();
        assert_eq!(
            diff(&base(), &new),
            vec![ParamChange::VirtualAddresses {
                added: vec![],
                removed: vec![]
            }]
        );
    }

    #[test]
    fn reweighted_tracks_are_changed_not_added() {
        let track = |weight| TrackSpec {
            name: "eth1".into(),
            kind: TrackKind::Interface,
            weight,
        };
        let mut old = base();
        old.tracks = vec![track(-10)];
        let mut new = base();
        new.tracks = vec![track(0)];
        assert_eq!(
            diff(&old, &new),
            vec![ParamChange::Tracks {
                added: vec![],
                removed: vec![],
                changed: vec!["eth1".into()]
            }]
        );
    }
}
