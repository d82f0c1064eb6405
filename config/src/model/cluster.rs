//! The NAT gateway address, the real-server role and CLUSTERIP-style shared addresses.

use core::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{limits, IfName, Name};
use crate::bounded::BoundedVec;
use crate::net::MacAddr;

/// The floating gateway address the real servers of NAT services route through
/// (Piranha `nat_router`, `nat_nmask`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NatGateway {
    pub address: IpAddr,
    pub prefix: u8,
    /// Interface or alias label (`eth1:1`).
    pub interface: IfName,
}

impl Default for NatGateway {
    fn default() -> Self {
        NatGateway {
            address: IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
            prefix: 24,
            interface: IfName::new(),
        }
    }
}

/// The box acts as a real server behind a director using DR or TUN.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RealServerRole {
    /// Virtual addresses accepted locally without answering ARP for them.
    pub vips: BoundedVec<IpAddr, { limits::REAL_SERVER_VIPS }>,
    /// Accept IP-in-IP from the director (LVS/TUN).
    pub tunnel: bool,
}

/// Which fields of a packet choose its bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HashTuple {
    /// Source address.
    #[default]
    SourceIp,
    /// Source address and port.
    SourceIpPort,
    /// Source address, source port and destination port.
    SourceIpPortDestinationPort,
}

/// A shared address answered by every box, each serving some hash buckets (load sharing).
///
/// Both boxes hold `vip` behind one shared MAC, so the LAN delivers every frame for it to
/// both; each box accepts new flows only in its own buckets (`hash` of the packet with
/// `hash_init`, modulo `total_nodes`) and the flows it already has, and drops the rest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterIpGroup {
    pub name: Name,
    pub vip: IpAddr,
    pub interface: IfName,
    /// Multicast MAC the address answers ARP with (the default mode; upstream routers need a
    /// static ARP entry, RFC 1812 3.3.2).
    pub multicast_mac: MacAddr,
    pub hash: HashTuple,
    /// Hash seed, equal on all boxes.
    pub hash_init: u32,
    /// Number of hash buckets (CLUSTERIP's `--total-nodes`), 1 to 64.
    pub total_nodes: u8,
    /// Buckets (1-based) this box serves while its partner is up. Empty: in a pair config,
    /// box a serves the odd buckets and box b the even ones; unpaired, every bucket.
    pub local_nodes: BoundedVec<u8, { limits::CLUSTERIP_LOCAL_NODES }>,
    /// Unicast flooding mode: the address answers ARP with this unicast MAC (which no box
    /// sends from, so switches flood frames to it) instead of `multicast_mac`; for upstream
    /// routers that refuse multicast ARP replies. Needs a static MAC entry nowhere, but
    /// floods the address's traffic to every port of the LAN. Format 4 and later.
    pub unicast_flood_mac: Option<MacAddr>,
}

impl ClusterIpGroup {
    /// The MAC both boxes answer for `vip` with, and whether it is the unicast flooding one.
    pub fn shared_mac(&self) -> (MacAddr, bool) {
        match self.unicast_flood_mac {
            Some(mac) => (mac, true),
            None => (self.multicast_mac, false),
        }
    }
}

impl Default for ClusterIpGroup {
    fn default() -> Self {
        ClusterIpGroup {
            name: Name::new(),
            vip: IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
            interface: IfName::new(),
            multicast_mac: MacAddr([0x01, 0x00, 0x5e, 0, 0, 1]),
            hash: HashTuple::SourceIp,
            hash_init: 0,
            total_nodes: 64,
            local_nodes: BoundedVec::new(),
            unicast_flood_mac: None,
        }
    }
}
