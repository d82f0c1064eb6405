//! VRRP instances (RFC 3768 v2, RFC 9568 v3) and sync groups.

use core::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{limits, Check, IfName, Name};
use crate::bounded::BoundedVec;

/// The VRRP protocol version an instance speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VrrpVersion {
    V2,
    #[default]
    V3,
}

/// The state an instance starts in (keepalived `state`). Priority still decides the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InitialState {
    #[default]
    Backup,
    Master,
}

/// VRRPv2 authentication. Only simple text passwords: RFC 3768 removed AH, RFC 9568 removed all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VrrpAuth {
    /// Type 1 (simple text password), at most 8 bytes.
    Pass(heapless::String<8>),
}

/// A virtual address of a VRRP instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Vip {
    pub address: IpAddr,
    /// Prefix length the address is added with (keepalived default: /32 or /128).
    pub prefix: u8,
    /// Interface the address goes on; None means the instance's interface.
    pub interface: Option<IfName>,
    /// Address label (`eth0:1`), IPv4 only.
    pub label: Option<IfName>,
}

impl Default for Vip {
    fn default() -> Self {
        Vip {
            address: IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
            prefix: 32,
            interface: None,
            label: None,
        }
    }
}

/// An interface or bond whose failure lowers the instance priority.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackedLink {
    pub name: IfName,
    /// Priority change while the link is down (-254..=254). 0 means "go to fault state".
    pub weight: i16,
}

/// A health check whose result changes the instance's priority (keepalived `vrrp_script` +
/// `track_script`, the script replaced by a built-in check). Keepalived's `rise`/`fall` are the
/// check's timing (`check.timing`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackedCheck {
    /// The name reports and status use (keepalived's script name); unique within the instance.
    pub name: Name,
    /// The address checked (`check.connect_address` still overrides it, as for a real server).
    pub address: IpAddr,
    /// The port checked; None only for checks without a port (ping), or with
    /// `check.connect_port`.
    pub port: Option<u16>,
    pub check: Check,
    /// -254..=254. Above 0: added to the priority while the check passes; below 0: added
    /// (subtracted) while it fails; 0: the instance is in FAULT while the check fails.
    pub weight: i16,
}

impl Default for TrackedCheck {
    fn default() -> Self {
        TrackedCheck {
            name: Name::new(),
            address: IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
            port: None,
            check: Check::default(),
            weight: 0,
        }
    }
}

/// Gratuitous ARP / unsolicited NA settings on becoming master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Garp {
    /// Delay before the second burst after becoming master, seconds (keepalived `garp_master_delay`).
    pub master_delay_s: u16,
    /// Messages per burst (`garp_master_repeat`).
    pub master_repeat: u8,
    /// Period of repeated bursts while master, seconds, 0 = none (`garp_master_refresh`).
    pub master_refresh_s: u16,
    /// Messages per refresh burst (`garp_master_refresh_repeat`).
    pub master_refresh_repeat: u8,
}

impl Default for Garp {
    fn default() -> Self {
        Garp {
            master_delay_s: 5,
            master_repeat: 5,
            master_refresh_s: 0,
            master_refresh_repeat: 1,
        }
    }
}

/// One virtual router.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VrrpInstance {
    pub name: Name,
    pub version: VrrpVersion,
    /// Virtual router id, 1..=255, unique per interface and address family.
    pub vrid: u8,
    pub interface: IfName,
    /// 1..=254 (255 is reserved for the address owner).
    pub priority: u8,
    /// Advertisement interval in centiseconds (v2 carries whole seconds: multiples of 100).
    pub advert_interval_cs: u16,
    pub initial_state: InitialState,
    pub auth: Option<VrrpAuth>,
    /// Preempt a lower-priority master (keepalived `nopreempt` clears it).
    pub preempt: bool,
    /// Seconds to wait after start-up before preempting (`preempt_delay`).
    pub preempt_delay_s: u16,
    /// Accept packets addressed to the virtual addresses while master (RFC 9568 Accept_Mode).
    pub accept_mode: bool,
    pub vips: BoundedVec<Vip, { limits::VIPS_PER_INSTANCE }>,
    /// Source address for unicast adverts; None uses the interface's primary address.
    pub unicast_source: Option<IpAddr>,
    /// Send adverts to these peers instead of the multicast group.
    pub unicast_peers: BoundedVec<IpAddr, { limits::UNICAST_PEERS }>,
    pub track_interfaces: BoundedVec<TrackedLink, { limits::TRACKED_LINKS }>,
    pub track_bonds: BoundedVec<TrackedLink, { limits::TRACKED_LINKS }>,
    pub garp: Garp,
    /// Hold the virtual addresses on a macvlan of `interface` that carries the RFC's virtual
    /// router MAC (00-00-5E-00-01-{VRID}, IPv6 00-00-5E-00-02-{VRID}) and send adverts from it,
    /// so switches learn the virtual MAC (keepalived `use_vmac`). Format 5.
    pub use_vmac: bool,
    /// Name of that macvlan; None: named as keepalived names it, `vrrp.{vrid}` unless another
    /// instance or interface has it, then `vrrp6.{vrid}` (IPv6 only), `vrrp1.{vrid}`,
    /// `vrrp2.{vrid}`, ... (`tandem_vrrp::plan::vmac_names`). Format 5.
    pub vmac_interface: Option<IfName>,
    /// With `use_vmac`: send and hear adverts on `interface` itself (its own MAC) while the
    /// addresses and gratuitous ARPs stay on the macvlan (keepalived `vmac_xmit_base`). Both
    /// routers of a VRID must agree. Format 5.
    pub vmac_xmit_base: bool,
    /// Health checks whose result changes the priority, or puts the instance in FAULT
    /// (keepalived `track_script`). Format 6.
    pub track_checks: BoundedVec<TrackedCheck, { limits::TRACKED_CHECKS }>,
}

impl Default for VrrpInstance {
    fn default() -> Self {
        VrrpInstance {
            name: Name::new(),
            version: VrrpVersion::V3,
            vrid: 1,
            interface: IfName::new(),
            priority: 100,
            advert_interval_cs: 100,
            initial_state: InitialState::Backup,
            auth: None,
            preempt: true,
            preempt_delay_s: 0,
            accept_mode: false,
            vips: BoundedVec::new(),
            unicast_source: None,
            unicast_peers: BoundedVec::new(),
            track_interfaces: BoundedVec::new(),
            track_bonds: BoundedVec::new(),
            garp: Garp::default(),
            use_vmac: false,
            vmac_interface: None,
            vmac_xmit_base: false,
            track_checks: BoundedVec::new(),
        }
    }
}

/// Instances that fail over together.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncGroup {
    pub name: Name,
    pub members: BoundedVec<Name, { limits::SYNC_GROUP_MEMBERS }>,
}
