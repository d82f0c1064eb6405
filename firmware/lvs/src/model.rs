//! Desired-state types of the director: virtual services with their real servers, as plain data.
//!
//! The config crate maps onto these; the reconciler diffs two [`Table`]s (desired vs. read back
//! from the kernel). Nothing here knows about netlink except the conversions in `reconcile`.

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

pub use tandem_ipvs::{Family, Protocol, TunnelType};

/// What identifies a virtual service: VIP:port:protocol or a firewall mark.
pub type ServiceId = tandem_ipvs::ServiceKey;

/// IPVS scheduler. `Other` carries a name this build does not know (read back from a kernel
/// with a newer module); it round-trips unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scheduler {
    /// Round robin.
    RoundRobin,
    /// Weighted round robin.
    WeightedRoundRobin,
    /// Least connections.
    LeastConnections,
    /// Weighted least connections.
    WeightedLeastConnections,
    /// Locality-based least connections.
    LocalityLeastConnections,
    /// Locality-based least connections with replication.
    LocalityLeastConnectionsReplicated,
    /// Destination hashing.
    DestinationHash,
    /// Source hashing (flags: fallback, port).
    SourceHash,
    /// Shortest expected delay.
    ShortestExpectedDelay,
    /// Never queue.
    NeverQueue,
    /// Weighted failover.
    WeightedFailover,
    /// Weighted overflow.
    Overflow,
    /// Maglev hashing (flags: fallback, port).
    Maglev,
    /// Weighted random twos choice.
    TwoChoices,
    /// A scheduler name not listed above.
    Other(String),
}

impl Scheduler {
    /// Every scheduler this build knows, in `ipvsadm` name order.
    pub const ALL_NAMES: [&'static str; 14] = [
        "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh",
        "twos",
    ];

    /// The kernel module's name (`rr`, `wlc`, ...).
    pub fn name(&self) -> &str {
        match self {
            Scheduler::RoundRobin => "rr",
            Scheduler::WeightedRoundRobin => "wrr",
            Scheduler::LeastConnections => "lc",
            Scheduler::WeightedLeastConnections => "wlc",
            Scheduler::LocalityLeastConnections => "lblc",
            Scheduler::LocalityLeastConnectionsReplicated => "lblcr",
            Scheduler::DestinationHash => "dh",
            Scheduler::SourceHash => "sh",
            Scheduler::ShortestExpectedDelay => "sed",
            Scheduler::NeverQueue => "nq",
            Scheduler::WeightedFailover => "fo",
            Scheduler::Overflow => "ovf",
            Scheduler::Maglev => "mh",
            Scheduler::TwoChoices => "twos",
            Scheduler::Other(name) => name,
        }
    }

    /// Parses a kernel scheduler name; unknown names become `Other`.
    pub fn from_name(name: &str) -> Scheduler {
        match name {
            "rr" => Scheduler::RoundRobin,
            "wrr" => Scheduler::WeightedRoundRobin,
            "lc" => Scheduler::LeastConnections,
            "wlc" => Scheduler::WeightedLeastConnections,
            "lblc" => Scheduler::LocalityLeastConnections,
            "lblcr" => Scheduler::LocalityLeastConnectionsReplicated,
            "dh" => Scheduler::DestinationHash,
            "sh" => Scheduler::SourceHash,
            "sed" => Scheduler::ShortestExpectedDelay,
            "nq" => Scheduler::NeverQueue,
            "fo" => Scheduler::WeightedFailover,
            "ovf" => Scheduler::Overflow,
            "mh" => Scheduler::Maglev,
            "twos" => Scheduler::TwoChoices,
            other => Scheduler::Other(other.to_owned()),
        }
    }
}

/// Scheduler flags (`IP_VS_SVC_F_SCHED1..3`); their meaning depends on the scheduler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SchedulerFlags(u32);

impl SchedulerFlags {
    /// `sh-fallback` / `mh-fallback`: skip overloaded or weight-0 servers (SCHED1).
    pub const FALLBACK: SchedulerFlags = SchedulerFlags(tandem_ipvs::uapi::IP_VS_SVC_F_SCHED1);
    /// `sh-port` / `mh-port`: include the source port in the hash (SCHED2).
    pub const PORT: SchedulerFlags = SchedulerFlags(tandem_ipvs::uapi::IP_VS_SVC_F_SCHED2);
    /// Scheduler flag 3 (no scheduler in 6.1 uses it).
    pub const FLAG3: SchedulerFlags = SchedulerFlags(tandem_ipvs::uapi::IP_VS_SVC_F_SCHED3);
    const MASK: u32 = tandem_ipvs::uapi::IP_VS_SVC_F_SCHED1
        | tandem_ipvs::uapi::IP_VS_SVC_F_SCHED2
        | tandem_ipvs::uapi::IP_VS_SVC_F_SCHED3;

    /// No flags.
    pub const fn empty() -> Self {
        SchedulerFlags(0)
    }
    /// Union of two flag sets.
    pub const fn with(self, other: SchedulerFlags) -> Self {
        SchedulerFlags(self.0 | other.0)
    }
    /// Whether all of `other` is set.
    pub const fn contains(self, other: SchedulerFlags) -> bool {
        self.0 & other.0 == other.0
    }
    /// The `IP_VS_SVC_F_SCHED*` bits.
    pub const fn bits(self) -> u32 {
        self.0
    }
    /// Keeps only scheduler bits of a service flag word.
    pub const fn from_service_flags(flags: u32) -> Self {
        SchedulerFlags(flags & Self::MASK)
    }
}

/// Client persistence (`ipvsadm -p timeout -M netmask`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Persistence {
    /// Seconds a client sticks to its real server.
    pub timeout_s: u32,
    /// IPv4: the mask as a number (`0xffff_ffff` = per client address); IPv6: prefix length.
    pub netmask: u32,
    /// Persistence engine (`sip`), if any.
    pub engine: Option<String>,
}

/// Settings of a virtual service that `SET_SERVICE` can change in place.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceSettings {
    /// Scheduler.
    pub scheduler: Scheduler,
    /// Scheduler flags.
    pub scheduler_flags: SchedulerFlags,
    /// Persistence, if enabled.
    pub persistence: Option<Persistence>,
    /// One-packet scheduling (`ops`, for UDP).
    pub one_packet: bool,
}

impl ServiceSettings {
    /// A plain service with the given scheduler.
    pub fn new(scheduler: Scheduler) -> Self {
        ServiceSettings {
            scheduler,
            scheduler_flags: SchedulerFlags::empty(),
            persistence: None,
            one_packet: false,
        }
    }
}

/// Forwarding method of a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Forwarding {
    /// NAT (masquerading).
    Nat,
    /// Direct routing.
    DirectRouting,
    /// IP tunnelling with its encapsulation (IPIP, port 0, flags 0 is the classic tunnel).
    Tunnel {
        /// Encapsulation.
        encap: TunnelType,
        /// GUE UDP port.
        port: u16,
        /// `IP_VS_TUNNEL_ENCAP_FLAG_*`.
        flags: u16,
    },
    /// The kernel reports a real server whose address is local to the director as "local
    /// node" whatever method was asked; only ever read back, never sent.
    LocalNode,
}

impl Forwarding {
    /// Classic IPIP tunnel.
    pub const IPIP: Forwarding = Forwarding::Tunnel {
        encap: TunnelType::Ipip,
        port: 0,
        flags: 0,
    };
}

/// What identifies a real server within a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RealServerId {
    /// Address.
    pub addr: IpAddr,
    /// Port (0 with fwmark services or "same as VIP port" with DR).
    pub port: u16,
}

impl fmt::Display for RealServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.addr {
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.port),
            IpAddr::V4(a) => write!(f, "{a}:{}", self.port),
        }
    }
}

/// Settings of a real server that `SET_DEST` can change in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RealServer {
    /// Forwarding method.
    pub forwarding: Forwarding,
    /// Weight; 0 quiesces (no new connections, existing ones continue).
    pub weight: u32,
    /// Upper connection threshold (0 = none).
    pub upper_threshold: u32,
    /// Lower connection threshold (0 = none).
    pub lower_threshold: u32,
}

impl RealServer {
    /// A real server with the given forwarding and weight, no thresholds.
    pub fn new(forwarding: Forwarding, weight: u32) -> Self {
        RealServer {
            forwarding,
            weight,
            upper_threshold: 0,
            lower_threshold: 0,
        }
    }

    /// Whether the kernel's `current` state satisfies this desired state. A kernel-reported
    /// `LocalNode` satisfies any method: the kernel rewrites the method of local addresses.
    pub fn satisfied_by(&self, current: &RealServer) -> bool {
        let forwarding_ok =
            current.forwarding == self.forwarding || current.forwarding == Forwarding::LocalNode;
        forwarding_ok
            && current.weight == self.weight
            && current.upper_threshold == self.upper_threshold
            && current.lower_threshold == self.lower_threshold
    }
}

/// A virtual service and its real servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualService {
    /// Editable settings.
    pub settings: ServiceSettings,
    /// Real servers by address and port.
    pub real_servers: BTreeMap<RealServerId, RealServer>,
}

impl VirtualService {
    /// A service with no real servers.
    pub fn new(settings: ServiceSettings) -> Self {
        VirtualService {
            settings,
            real_servers: BTreeMap::new(),
        }
    }
}

/// A whole IPVS table: the desired one, or the kernel's as read back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// Services by id.
    pub services: BTreeMap<ServiceId, VirtualService>,
}

impl Table {
    /// Number of real servers over all services.
    pub fn real_server_count(&self) -> usize {
        self.services.values().map(|s| s.real_servers.len()).sum()
    }
}
