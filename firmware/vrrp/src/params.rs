//! Configuration of one virtual router instance, validated before anything runs: a bad value
//! is refused with an error naming the field, never half-applied.

use core::fmt;
use core::time::Duration;
use std::net::IpAddr;
use std::string::String;
use std::vec::Vec;

use tandem_wire::vrrp::V3_MAX_INTERVAL_CS;
use tandem_wire::{Auth, Family, Ipv4ChecksumMode, Version};

/// What a tracked object is. All kinds weigh and fault alike; they differ in who reports
/// them: links (interfaces, bonds) and external verdicts by name to every instance tracking
/// the name ([`crate::Speaker::handle_track_event`]), checks to their own instance only
/// ([`crate::Speaker::handle_check_event`]: two instances may each define a check of one name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TrackKind {
    /// A network interface's carrier / oper state.
    Interface,
    /// A bond (up while it has a usable slave).
    Bond,
    /// Any other engine's verdict, e.g. the health of a real-server pool.
    External,
    /// A health check the instance runs (keepalived `track_script`, as a built-in check); its
    /// name is [`check_track_name`] of the check's, never an interface name.
    Check,
}

impl TrackKind {
    /// True for a check of the instance's own (reported to that instance alone).
    pub fn is_check(self) -> bool {
        self == TrackKind::Check
    }
}

/// The track name of the instance's check `name` (`check web`): a link name has no space, so
/// the two never meet in status, logs, metrics or a change report.
pub fn check_track_name(name: &str) -> String {
    format!("check {name}")
}

/// One tracked object and what its state does to the instance (keepalived `track_interface`
/// semantics).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSpec {
    /// Name the daemon reports events under (interface name, bond name, pool name).
    pub name: String,
    /// Kind of object.
    pub kind: TrackKind,
    /// 0: the instance goes to FAULT while the object is down. Negative: priority is lowered by
    /// `-weight` while down. Positive: priority is raised by `weight` while up. Range -254..=254.
    /// Inside a sync group weights act as 0 (fault), as in keepalived, so a group cannot split.
    pub weight: i16,
}

/// The identity of an instance inside a [`crate::Speaker`]: what a live reconfiguration matches
/// old and new instances by. Everything else about an instance can change in place.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceKey {
    /// Interface the instance runs on.
    pub interface: String,
    /// True for an IPv6 instance (the family of its primary address).
    pub ipv6: bool,
    /// Virtual Router ID.
    pub vrid: u8,
}

impl fmt::Display for InstanceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let family = if self.ipv6 { "IPv6" } else { "IPv4" };
        write!(f, "{} {family} VRID {}", self.interface, self.vrid)
    }
}

/// Parameters of one VRRP instance (one VRID on one interface in one address family).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceParams {
    /// Instance name (status, logs, sync group membership).
    pub name: String,
    /// Interface the instance runs on.
    pub interface: String,
    /// VRRP version: v2 (RFC 3768, IPv4 only) or v3 (RFC 9568).
    pub version: Version,
    /// Virtual Router ID, 1-255.
    pub vrid: u8,
    /// Configured priority, 1-255 (255 = address owner).
    pub priority: u8,
    /// Advertisement interval in centiseconds: v3 1-4095, v2 whole seconds (100-25500).
    pub advert_interval_cs: u16,
    /// This router's primary address on the interface: the advert source and the tie-break
    /// (for IPv6 the link-local address).
    pub primary_address: IpAddr,
    /// Virtual addresses, all of the primary address's family, 1-255 of them.
    pub virtual_addresses: Vec<IpAddr>,
    /// Preempt_Mode: a higher-priority backup takes over from a lower-priority master.
    pub preempt: bool,
    /// After startup, lower-priority masters are tolerated this long before preempting
    /// (keepalived `preempt_delay`).
    pub preempt_delay: Duration,
    /// Accept_Mode: as non-owner master, accept packets addressed to the virtual addresses.
    pub accept_mode: bool,
    /// VRRPv2 authentication (must be [`Auth::None`] for v3).
    pub auth: Auth,
    /// Checksum form of VRRPv3-over-IPv4 adverts we send (receive accepts every form).
    pub ipv4_checksum: Ipv4ChecksumMode,
    /// Tracked objects.
    pub tracks: Vec<TrackSpec>,
}

impl InstanceParams {
    /// A VRRPv3 instance with the defaults of RFC 9568 (1 s interval, preempt on, no delay,
    /// accept mode off, keepalived-compatible IPv4 checksum) and no tracking.
    pub fn v3(
        name: &str,
        interface: &str,
        vrid: u8,
        priority: u8,
        primary_address: IpAddr,
        virtual_addresses: Vec<IpAddr>,
    ) -> InstanceParams {
        InstanceParams {
            name: name.into(),
            interface: interface.into(),
            version: Version::V3,
            vrid,
            priority,
            advert_interval_cs: 100,
            primary_address,
            virtual_addresses,
            preempt: true,
            preempt_delay: Duration::ZERO,
            accept_mode: false,
            auth: Auth::None,
            ipv4_checksum: Ipv4ChecksumMode::PseudoHeader,
            tracks: Vec::new(),
        }
    }

    /// A VRRPv2 instance (1 s interval, preempt on, given authentication).
    pub fn v2(
        name: &str,
        interface: &str,
        vrid: u8,
        priority: u8,
        primary_address: IpAddr,
        virtual_addresses: Vec<IpAddr>,
        auth: Auth,
    ) -> InstanceParams {
        InstanceParams {
            version: Version::V2,
            auth,
            ..InstanceParams::v3(
                name,
                interface,
                vrid,
                priority,
                primary_address,
                virtual_addresses,
            )
        }
    }

    /// Address family of the instance.
    pub fn family(&self) -> Family {
        Family::of(&self.primary_address)
    }

    /// The instance's identity: interface, family and VRID.
    pub fn key(&self) -> InstanceKey {
        InstanceKey {
            interface: self.interface.clone(),
            ipv6: self.primary_address.is_ipv6(),
            vrid: self.vrid,
        }
    }

    /// True for the address owner (priority 255).
    pub fn is_owner(&self) -> bool {
        self.priority == 255
    }

    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ParamError> {
        if self.vrid == 0 {
            return Err(ParamError::VridZero);
        }
        if self.priority == 0 {
            return Err(ParamError::PriorityZero);
        }
        let cs = self.advert_interval_cs;
        let interval_ok = match self.version {
            Version::V2 => cs >= 100 && cs.is_multiple_of(100) && cs <= 25_500,
            Version::V3 => (1..=V3_MAX_INTERVAL_CS).contains(&cs),
        };
        if !interval_ok {
            return Err(ParamError::AdvertInterval {
                version: self.version,
                centiseconds: cs,
            });
        }
        if self.virtual_addresses.is_empty() {
            return Err(ParamError::NoVirtualAddresses);
        }
        if self.virtual_addresses.len() > 255 {
            return Err(ParamError::TooManyVirtualAddresses {
                count: self.virtual_addresses.len(),
            });
        }
        let family = self.family();
        if let Some(address) = self
            .virtual_addresses
            .iter()
            .find(|a| Family::of(a) != family)
        {
            return Err(ParamError::MixedFamilies { address: *address });
        }
        if self.version == Version::V2 && family == Family::Ipv6 {
            return Err(ParamError::V2OverIpv6);
        }
        if self.version == Version::V3 && self.auth != Auth::None {
            return Err(ParamError::AuthOnV3);
        }
        if let Some(track) = self
            .tracks
            .iter()
            .find(|t| !(-254..=254).contains(&t.weight))
        {
            return Err(ParamError::TrackWeight {
                track: track.name.clone(),
                weight: track.weight,
            });
        }
        Ok(())
    }
}

/// Why instance parameters were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamError {
    /// `vrid` is 0; use 1-255.
    VridZero,
    /// `priority` is 0, which is reserved for "master is leaving"; use 1-254 (255 = owner).
    PriorityZero,
    /// `advert_interval_cs` cannot be sent in this version.
    AdvertInterval {
        /// Version configured.
        version: Version,
        /// Interval configured.
        centiseconds: u16,
    },
    /// `virtual_addresses` is empty.
    NoVirtualAddresses,
    /// More than 255 virtual addresses.
    TooManyVirtualAddresses {
        /// Count configured.
        count: usize,
    },
    /// A virtual address is not of the primary address's family.
    MixedFamilies {
        /// The odd one out.
        address: IpAddr,
    },
    /// VRRPv2 configured with IPv6 addresses.
    V2OverIpv6,
    /// Authentication configured on a VRRPv3 instance.
    AuthOnV3,
    /// A track weight outside -254..=254.
    TrackWeight {
        /// Track name.
        track: String,
        /// Weight configured.
        weight: i16,
    },
    /// Two instances share interface, family and VRID.
    DuplicateVrid {
        /// Interface.
        interface: String,
        /// VRID.
        vrid: u8,
    },
    /// Two sync groups have the same name.
    DuplicateSyncGroup {
        /// Group name.
        group: String,
    },
    /// A sync group names an unknown instance or an instance already in another group.
    SyncGroupMember {
        /// Group name.
        group: String,
        /// The member's name.
        member: String,
    },
}

impl fmt::Display for ParamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamError::VridZero => write!(f, "vrid is 0; set virtual_router_id to 1-255"),
            ParamError::PriorityZero => write!(
                f,
                "priority is 0, which VRRP reserves for a leaving master; set 1-254 (255 = address owner)"
            ),
            ParamError::AdvertInterval { version: Version::V2, centiseconds } => write!(
                f,
                "advert interval {centiseconds} cs cannot be sent in VRRPv2; use whole seconds 1-255 or switch to version 3"
            ),
            ParamError::AdvertInterval { version: Version::V3, centiseconds } => write!(
                f,
                "advert interval {centiseconds} cs is outside VRRPv3's 1-4095 cs"
            ),
            ParamError::NoVirtualAddresses => {
                write!(f, "virtual_addresses is empty; give at least one address")
            }
            ParamError::TooManyVirtualAddresses { count } => write!(
                f,
                "{count} virtual addresses; VRRP carries at most 255, split them over instances"
            ),
            ParamError::MixedFamilies { address } => write!(
                f,
                "virtual address {address} is not of the primary address's family; use one instance per family"
            ),
            ParamError::V2OverIpv6 => {
                write!(f, "VRRPv2 is IPv4 only; set version 3 for IPv6 addresses")
            }
            ParamError::AuthOnV3 => write!(
                f,
                "authentication is a VRRPv2 feature; remove it or set version 2"
            ),
            ParamError::TrackWeight { track, weight } => write!(
                f,
                "track {track} has weight {weight}; use -254..=254 (0 = fault while down)"
            ),
            ParamError::DuplicateVrid { interface, vrid } => write!(
                f,
                "VRID {vrid} is configured twice on {interface} for the same family; give each instance its own VRID"
            ),
            ParamError::DuplicateSyncGroup { group } => write!(
                f,
                "sync group {group} is configured twice; give each group its own name"
            ),
            ParamError::SyncGroupMember { group, member } => write!(
                f,
                "sync group {group} names {member}, which is unknown or already in another group"
            ),
        }
    }
}

impl std::error::Error for ParamError {}
