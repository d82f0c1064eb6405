//! Value types for IPVS objects as the kernel sees them: services, destinations, statistics,
//! timeouts and the connection sync daemon. These are what requests carry and replies decode to.

use core::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::uapi::*;

/// Address family of a service or destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// IPv4 (`AF_INET`).
    Inet,
    /// IPv6 (`AF_INET6`).
    Inet6,
}

impl Family {
    /// The `AF_*` number.
    pub fn af(self) -> u16 {
        match self {
            Family::Inet => AF_INET,
            Family::Inet6 => AF_INET6,
        }
    }
    /// Family of an address.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Inet,
            IpAddr::V6(_) => Family::Inet6,
        }
    }
    pub(crate) fn from_af(af: u16) -> Option<Family> {
        match af {
            AF_INET => Some(Family::Inet),
            AF_INET6 => Some(Family::Inet6),
            _ => None,
        }
    }
}

/// Transport protocol of a VIP:port service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// SCTP.
    Sctp,
}

impl Protocol {
    /// The IP protocol number.
    pub fn number(self) -> u16 {
        match self {
            Protocol::Tcp => IPPROTO_TCP,
            Protocol::Udp => IPPROTO_UDP,
            Protocol::Sctp => IPPROTO_SCTP,
        }
    }
    pub(crate) fn from_number(n: u16) -> Option<Protocol> {
        match n {
            IPPROTO_TCP => Some(Protocol::Tcp),
            IPPROTO_UDP => Some(Protocol::Udp),
            IPPROTO_SCTP => Some(Protocol::Sctp),
            _ => None,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        })
    }
}

/// What identifies a virtual service in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServiceKey {
    /// A VIP:port:protocol service.
    Inet {
        /// Transport protocol.
        protocol: Protocol,
        /// Virtual IP address.
        addr: IpAddr,
        /// Virtual port (0 = all ports, with persistence).
        port: u16,
    },
    /// A firewall-mark service.
    Fwmark {
        /// Address family the mark applies to.
        family: Family,
        /// The netfilter mark.
        mark: u32,
    },
}

impl ServiceKey {
    /// Address family of the service.
    pub fn family(&self) -> Family {
        match self {
            ServiceKey::Inet { addr, .. } => Family::of(addr),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Inet {
                protocol,
                addr: IpAddr::V6(a),
                port,
            } => {
                write!(f, "{protocol} [{a}]:{port}")
            }
            ServiceKey::Inet {
                protocol,
                addr,
                port,
            } => write!(f, "{protocol} {addr}:{port}"),
            ServiceKey::Fwmark {
                family: Family::Inet,
                mark,
            } => write!(f, "fwmark {mark}"),
            ServiceKey::Fwmark {
                family: Family::Inet6,
                mark,
            } => write!(f, "fwmark {mark} (ipv6)"),
        }
    }
}

/// A service's settings (`ipvsadm -A/-E`). `flags` are `IP_VS_SVC_F_*` bits (the kernel-owned
/// HASHED bit is dropped on read-back).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Service {
    /// Which service.
    pub key: ServiceKey,
    /// Scheduler name (`rr`, `wlc`, `mh`, ...), at most 15 bytes.
    pub scheduler: String,
    /// `IP_VS_SVC_F_*` flags: persistent, one-packet, scheduler flags 1-3.
    pub flags: u32,
    /// Persistence timeout in seconds (used with `IP_VS_SVC_F_PERSISTENT`).
    pub timeout: u32,
    /// Persistence netmask: for IPv4 the mask as a host-order number (`0xffff_ffff` = /32, sent in
    /// network byte order as the kernel expects); for IPv6 the prefix length (128 = /128).
    pub netmask: u32,
    /// Persistence engine name (`sip`), if any.
    pub pe_name: Option<String>,
}

impl Service {
    /// A non-persistent service with the given scheduler and the kernel's default netmask.
    pub fn new(key: ServiceKey, scheduler: &str) -> Service {
        let netmask = match key.family() {
            Family::Inet => u32::MAX,
            Family::Inet6 => 128,
        };
        Service {
            key,
            scheduler: scheduler.to_owned(),
            flags: 0,
            timeout: 0,
            netmask,
            pe_name: None,
        }
    }
}

/// Forwarding method of a destination (`IP_VS_CONN_F_*` in the FWD mask).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ForwardMethod {
    /// NAT (masquerading), `-m`.
    Masq,
    /// Local node.
    LocalNode,
    /// IP tunnelling, `-i`.
    Tunnel,
    /// Direct routing (gatewaying), `-g`.
    DirectRoute,
    /// Cache bypass.
    Bypass,
}

impl ForwardMethod {
    pub(crate) fn bits(self) -> u32 {
        match self {
            ForwardMethod::Masq => IP_VS_CONN_F_MASQ,
            ForwardMethod::LocalNode => IP_VS_CONN_F_LOCALNODE,
            ForwardMethod::Tunnel => IP_VS_CONN_F_TUNNEL,
            ForwardMethod::DirectRoute => IP_VS_CONN_F_DROUTE,
            ForwardMethod::Bypass => IP_VS_CONN_F_BYPASS,
        }
    }
    pub(crate) fn from_bits(v: u32) -> Option<ForwardMethod> {
        match v & IP_VS_CONN_F_FWD_MASK {
            IP_VS_CONN_F_MASQ => Some(ForwardMethod::Masq),
            IP_VS_CONN_F_LOCALNODE => Some(ForwardMethod::LocalNode),
            IP_VS_CONN_F_TUNNEL => Some(ForwardMethod::Tunnel),
            IP_VS_CONN_F_DROUTE => Some(ForwardMethod::DirectRoute),
            IP_VS_CONN_F_BYPASS => Some(ForwardMethod::Bypass),
            _ => None,
        }
    }
}

/// Tunnel encapsulation (kernel 5.2+; flags 5.3+).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TunnelType {
    /// IP-in-IP (the default).
    Ipip = 0,
    /// Generic UDP encapsulation.
    Gue = 1,
    /// GRE.
    Gre = 2,
}

/// Tunnel options of a `Tunnel` destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tunnel {
    /// Encapsulation.
    pub kind: TunnelType,
    /// UDP port for GUE (0 otherwise).
    pub port: u16,
    /// `IP_VS_TUNNEL_ENCAP_FLAG_*` bits (checksum, remote checksum offload).
    pub flags: u16,
}

/// A destination (real server) of a service.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dest {
    /// Real server address (may differ in family from the service only for tunnels).
    pub addr: IpAddr,
    /// Real server port.
    pub port: u16,
    /// Forwarding method.
    pub forward: ForwardMethod,
    /// Scheduling weight, 0..=i32::MAX (0 = quiesced: no new connections).
    pub weight: u32,
    /// Upper connection threshold (0 = none).
    pub upper_threshold: u32,
    /// Lower connection threshold (0 = none).
    pub lower_threshold: u32,
    /// Tunnel encapsulation; sent only when `forward` is `Tunnel` and this is set.
    pub tunnel: Option<Tunnel>,
}

impl fmt::Display for Dest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_addr_port(f, &self.addr, self.port)
    }
}

pub(crate) fn fmt_addr_port(f: &mut fmt::Formatter<'_>, addr: &IpAddr, port: u16) -> fmt::Result {
    match addr {
        IpAddr::V6(a) => write!(f, "[{a}]:{port}"),
        IpAddr::V4(a) => write!(f, "{a}:{port}"),
    }
}

/// Traffic counters and rates of a service or destination (STATS64 preferred when present).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Stats {
    /// Connections scheduled.
    pub conns: u64,
    /// Incoming packets.
    pub inpkts: u64,
    /// Outgoing packets.
    pub outpkts: u64,
    /// Incoming bytes.
    pub inbytes: u64,
    /// Outgoing bytes.
    pub outbytes: u64,
    /// Connection rate.
    pub cps: u64,
    /// Incoming packet rate.
    pub inpps: u64,
    /// Outgoing packet rate.
    pub outpps: u64,
    /// Incoming byte rate.
    pub inbps: u64,
    /// Outgoing byte rate.
    pub outbps: u64,
}

/// A service as read back from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEntry {
    /// Settings.
    pub service: Service,
    /// Counters.
    pub stats: Stats,
}

/// A destination as read back from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestEntry {
    /// Settings.
    pub dest: Dest,
    /// Active connections.
    pub active_conns: u32,
    /// Inactive connections.
    pub inactive_conns: u32,
    /// Persistence templates.
    pub persist_conns: u32,
    /// Counters.
    pub stats: Stats,
}

/// Connection timeouts in seconds (`ipvsadm --set tcp tcpfin udp`); `None` = leave unchanged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Timeouts {
    /// Established TCP.
    pub tcp: Option<u32>,
    /// TCP after FIN.
    pub tcp_fin: Option<u32>,
    /// UDP.
    pub udp: Option<u32>,
}

/// Role of a connection sync daemon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncRole {
    /// Sends connection state.
    Master,
    /// Receives connection state.
    Backup,
}

impl SyncRole {
    pub(crate) fn bits(self) -> u32 {
        match self {
            SyncRole::Master => IP_VS_STATE_MASTER,
            SyncRole::Backup => IP_VS_STATE_BACKUP,
        }
    }
}

/// A connection sync daemon (`ipvsadm --start-daemon`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SyncDaemon {
    /// Master or backup.
    pub role: SyncRole,
    /// Interface for the multicast sync traffic, at most 15 bytes.
    pub ifname: String,
    /// Sync id (0..=255 in practice).
    pub sync_id: u32,
    /// Maximum sync message payload size.
    pub max_len: Option<u16>,
    /// Multicast group (IPv4 or IPv6).
    pub group: Option<IpAddr>,
    /// Multicast UDP port.
    pub port: Option<u16>,
    /// Multicast TTL.
    pub ttl: Option<u8>,
}

/// General IPVS information (`GET_INFO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Info {
    /// Version code (0x010201 = 1.2.1).
    pub version: u32,
    /// Connection hash table size.
    pub conn_tab_size: u32,
}

pub(crate) fn addr_bytes16(addr: &IpAddr) -> [u8; 16] {
    let mut out = [0u8; 16];
    match addr {
        IpAddr::V4(a) => out[..4].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => out = a.octets(),
    }
    out
}

pub(crate) fn addr_from_bytes(family: Family, p: &[u8]) -> Option<IpAddr> {
    match family {
        Family::Inet => {
            let a: [u8; 4] = p.get(..4)?.try_into().ok()?;
            Some(IpAddr::V4(Ipv4Addr::from(a)))
        }
        Family::Inet6 => {
            let a: [u8; 16] = p.get(..16)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
    }
}
