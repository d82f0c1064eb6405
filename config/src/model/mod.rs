//! The Tandem config model: everything one box needs to run, as plain data.
//!
//! The same types are written as TOML for people and as postcard for the blob, so they follow two
//! rules: no `skip_serializing_if` (postcard is not self-describing) and no internally tagged enums.
//! Every collection has a maximum, listed in [`limits`], that decoding enforces.

pub mod cluster;
pub mod interfaces;
pub mod lvs;
pub mod pair;
pub mod system;
pub mod vrrp;

use serde::{Deserialize, Serialize};

pub use cluster::{ClusterIpGroup, HashTuple, NatGateway, RealServerRole};
pub use interfaces::{
    AdSelect, ArpValidate, Bond, BondMode, FailOverMac, Interface, LacpRate, LinkMonitor,
    PrimaryReselect, XmitHashPolicy,
};
pub use lvs::{
    Check, CheckKind, CheckTiming, DnsRecordType, Forwarding, FwmarkRule, HttpBody, HttpUrl,
    OnFailure, Persistence, Protocol, RealServer, Scheduler, SchedulerFlags, SorryServer,
    StatusCodes, StatusRange, TlsTrust, VirtualService,
};
pub use pair::{BoxHalf, PairHalves, Role, VrrpOverride};
pub use system::{
    Management, Notify, PeerLink, PeerNode, PortRole, SyslogFacility, SyslogTarget,
    SyslogTransport, System,
};
pub use vrrp::{
    Garp, InitialState, SyncGroup, TrackedCheck, TrackedLink, Vip, VrrpAuth, VrrpInstance,
    VrrpVersion,
};

use crate::bounded::BoundedVec;

/// The maximum size of every collection and text in the model.
pub mod limits {
    /// Interfaces (physical ports, VLANs, dummies) a config describes.
    pub const INTERFACES: usize = 64;
    /// Addresses on one interface.
    pub const ADDRESSES_PER_INTERFACE: usize = 16;
    /// Bonds.
    pub const BONDS: usize = 16;
    /// Member ports of one bond.
    pub const BOND_SLAVES: usize = 16;
    /// ARP monitor targets of one bond (the kernel's BOND_MAX_ARP_TARGETS).
    pub const ARP_TARGETS: usize = 16;
    /// VRRP instances.
    pub const VRRP_INSTANCES: usize = 255;
    /// Virtual addresses of one VRRP instance.
    pub const VIPS_PER_INSTANCE: usize = 64;
    /// Unicast peers of one VRRP instance.
    pub const UNICAST_PEERS: usize = 16;
    /// Tracked interfaces or bonds of one VRRP instance.
    pub const TRACKED_LINKS: usize = 16;
    /// Sync groups.
    pub const SYNC_GROUPS: usize = 64;
    /// Members of one sync group.
    pub const SYNC_GROUP_MEMBERS: usize = 32;
    /// Virtual services.
    pub const VIRTUAL_SERVICES: usize = 4096;
    /// Real servers of one virtual service.
    pub const REAL_SERVERS_PER_SERVICE: usize = 1024;
    /// Real servers over all virtual services (checked by validation).
    pub const REAL_SERVERS_TOTAL: usize = 40_000;
    /// Firewall-mark rules.
    pub const FWMARK_RULES: usize = 1024;
    /// Virtual addresses of the real-server role.
    pub const REAL_SERVER_VIPS: usize = 64;
    /// CLUSTERIP groups.
    pub const CLUSTERIP_GROUPS: usize = 16;
    /// Local nodes (hash buckets) one box serves in a CLUSTERIP group (every bucket of the
    /// largest group, 64).
    pub const CLUSTERIP_LOCAL_NODES: usize = 64;
    /// Notification e-mail recipients.
    pub const EMAIL_RECIPIENTS: usize = 8;
    /// Upstream routers one box ARP/NS-probes to score its uplink (`peer_link.uplink_probes`).
    pub const UPLINK_PROBES: usize = 4;
    /// Remote syslog servers (`management.syslog`).
    pub const SYSLOG_TARGETS: usize = 4;
    /// SNTP servers (`management.time_servers`).
    pub const TIME_SERVERS: usize = 4;
    /// Bytes of a name (VRRP instance, virtual service, real server, sync group).
    pub const NAME_BYTES: usize = 32;
    /// Bytes of an interface name (the kernel's IFNAMSIZ less the NUL).
    pub const IFNAME_BYTES: usize = 15;
    /// Bytes of a hostname label set.
    pub const HOSTNAME_BYTES: usize = 63;
    /// Bytes of a password hash in crypt(3) / PHC string form.
    pub const PASSWORD_HASH_BYTES: usize = 128;
    /// Bytes of an e-mail address.
    pub const EMAIL_BYTES: usize = 96;
    /// Bytes of an HTTP check path or virtual host.
    pub const URL_BYTES: usize = 128;
    /// Status codes or ranges one HTTP check URL accepts.
    pub const STATUS_RANGES: usize = 16;
    /// URLs of one HTTP check besides its first.
    pub const MORE_URLS: usize = 15;
    /// Checks of one real server (or service) besides its `check` (keepalived runs every
    /// checker of a real server; it is up while all pass).
    pub const MORE_CHECKS: usize = 3;
    /// Checks one VRRP instance tracks (keepalived `track_script`).
    pub const TRACKED_CHECKS: usize = 8;
    /// Named sets of TLS trust anchors (`[[tls_trust]]`).
    pub const TLS_TRUST_SETS: usize = 8;
    /// Bytes of one set's PEM text (a few CA certificates).
    pub const TLS_TRUST_PEM_BYTES: usize = 16384;
    /// Bytes of a send or expect string of a send/expect check.
    pub const SEND_EXPECT_BYTES: usize = 255;
}

/// A name of a VRRP instance, sync group, virtual service or real server.
pub type Name = heapless::String<{ limits::NAME_BYTES }>;
/// A kernel interface name (`eth0`, `bond0`, `public`).
pub type IfName = heapless::String<{ limits::IFNAME_BYTES }>;

/// A whole box configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub system: System,
    pub management: Management,
    pub peer_link: Option<PeerLink>,
    pub notify: Option<Notify>,
    pub interfaces: BoundedVec<Interface, { limits::INTERFACES }>,
    pub bonds: BoundedVec<Bond, { limits::BONDS }>,
    pub vrrp: BoundedVec<VrrpInstance, { limits::VRRP_INSTANCES }>,
    pub sync_groups: BoundedVec<SyncGroup, { limits::SYNC_GROUPS }>,
    pub virtual_services: BoundedVec<VirtualService, { limits::VIRTUAL_SERVICES }>,
    pub fwmark_rules: BoundedVec<FwmarkRule, { limits::FWMARK_RULES }>,
    pub nat_gateway: Option<NatGateway>,
    pub real_server: Option<RealServerRole>,
    pub clusterip: BoundedVec<ClusterIpGroup, { limits::CLUSTERIP_GROUPS }>,
    /// The per-box parts when this config describes a pair (`[pair.a]`, `[pair.b]`); None for
    /// a single box. Each box runs [`Config::for_box`] of its role. Format 3.
    pub pair: Option<PairHalves>,
    /// Named sets of trust anchors TLS health checks verify certificates against
    /// (`tls_ca` of an HTTP check). Format 5.
    pub tls_trust: BoundedVec<TlsTrust, { limits::TLS_TRUST_SETS }>,
}

impl Config {
    /// The interface called `name`, if the config describes it.
    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == name)
    }

    /// The bond called `name`, if any.
    pub fn bond(&self, name: &str) -> Option<&Bond> {
        self.bonds.iter().find(|b| b.name == name)
    }

    /// The VRRP instance called `name`, if any.
    pub fn vrrp_instance(&self, name: &str) -> Option<&VrrpInstance> {
        self.vrrp.iter().find(|v| v.name == name)
    }

    /// The number of real servers over all virtual services.
    pub fn real_server_count(&self) -> usize {
        self.virtual_services
            .iter()
            .map(|s| s.real_servers.len())
            .sum()
    }
}
