//! Box-wide settings: identity, console login, management access, the peer link and notifications.

use core::net::{IpAddr, SocketAddr};

use serde::{Deserialize, Serialize};

use super::{limits, IfName};
use crate::bounded::BoundedVec;
use crate::net::IpCidr;

/// The job of a board port. Same lowercase names as `tandem_board::NicRole`; the appliance names
/// each port after its role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortRole {
    /// Out-of-band management network.
    Mgmt,
    /// The network clients reach the virtual services on.
    Public,
    /// The network the real servers live on.
    Private,
    /// The dedicated cable to the partner box.
    Peer,
    /// The second public port, for a bonded public side. Appended last: postcard writes a
    /// variant as its index, so every role of a stored blob keeps its meaning.
    Public2,
}

impl PortRole {
    /// The lowercase name, also the interface name the appliance gives the port.
    pub fn as_str(self) -> &'static str {
        match self {
            PortRole::Mgmt => "mgmt",
            PortRole::Public => "public",
            PortRole::Private => "private",
            PortRole::Peer => "peer",
            PortRole::Public2 => "public2",
        }
    }
}

/// Identity and console access.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct System {
    /// Host name shown on the console and in notifications (keepalived `router_id`).
    pub hostname: heapless::String<{ limits::HOSTNAME_BYTES }>,
    /// Console password as a crypt(3)/PHC hash. None on first boot: the console asks for one.
    pub console_password_hash: Option<heapless::String<{ limits::PASSWORD_HASH_BYTES }>>,
}

/// Management access.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Management {
    /// Interface carrying management traffic (normally the `mgmt` port).
    pub interface: Option<IfName>,
    /// Management address with prefix length.
    pub address: Option<IpCidr>,
    /// Default gateway of the management network.
    pub gateway: Option<IpAddr>,
    /// Where the metrics endpoint listens (address and TCP port).
    pub metrics: Option<SocketAddr>,
    /// Remote syslog servers the log is forwarded to (RFC 5424). Format 5.
    pub syslog: BoundedVec<SyslogTarget, { limits::SYSLOG_TARGETS }>,
    /// SNTP servers (UDP port 123) the box takes wall-clock time from. Format 5.
    pub time_servers: BoundedVec<IpAddr, { limits::TIME_SERVERS }>,
}

/// A remote syslog server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyslogTarget {
    /// Address and port of the server (`"192.0.2.5:514"`).
    pub address: SocketAddr,
    /// UDP (RFC 5426, one line per datagram) or TCP (RFC 6587 octet counting).
    #[serde(default)]
    pub transport: SyslogTransport,
    /// The facility every line is sent with.
    #[serde(default)]
    pub facility: SyslogFacility,
}

/// How lines travel to a syslog server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogTransport {
    #[default]
    Udp,
    Tcp,
}

impl SyslogTransport {
    /// The lowercase name, as in the text form.
    pub fn as_str(self) -> &'static str {
        match self {
            SyslogTransport::Udp => "udp",
            SyslogTransport::Tcp => "tcp",
        }
    }
}

/// The syslog facilities of RFC 5424 section 6.2.1, in code order (postcard writes the index,
/// which is the facility's code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SyslogFacility {
    Kern,
    User,
    Mail,
    #[default]
    Daemon,
    Auth,
    Syslog,
    Lpr,
    News,
    Uucp,
    Cron,
    Authpriv,
    Ftp,
    Ntp,
    Security,
    Console,
    Clock,
    Local0,
    Local1,
    Local2,
    Local3,
    Local4,
    Local5,
    Local6,
    Local7,
}

impl SyslogFacility {
    /// The facility's numeric code (0..=23).
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// The addresses one director of a pair has (Piranha `primary`/`backup` and their `_private`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeerNode {
    /// Address on the public network.
    pub public: Option<IpAddr>,
    /// Address on the private network (an alternative heartbeat path).
    pub private: Option<IpAddr>,
}

/// The dedicated link to the partner box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PeerLink {
    /// The port of the peer cable.
    pub interface: IfName,
    /// Identity of the pair, fixed when the two boxes were paired. 0 means not paired yet.
    /// Written as 16 hex digits in the text form (TOML integers stop at 2^63).
    #[serde(with = "pair_id_text")]
    pub pair_id: u64,
    /// Interval of the heartbeat on the dedicated peer cable, in milliseconds (Piranha
    /// `keepalive`, which counts whole seconds). Default 10 ms: Piranha's keepalive is seconds;
    /// a dedicated cable allows 10 ms.
    pub heartbeat_interval_ms: u32,
    /// The partner is declared dead after this many milliseconds of silence on the peer cable
    /// (Piranha `deadtime`, whole seconds). Default 30 ms: three missed heartbeats, as BFD.
    pub dead_after_ms: u32,
    /// UDP port of the heartbeat (Piranha `heartbeat_port`).
    pub heartbeat_port: u16,
    /// Replicate IPVS connection state so flows survive a failover (Piranha `syncdaemon`).
    pub ipvs_sync: bool,
    /// Interface the IPVS sync traffic uses; None means the peer link.
    pub ipvs_sync_interface: Option<IfName>,
    /// This box's addresses, for pairs migrated from Piranha.
    pub primary: Option<PeerNode>,
    /// The partner's addresses, for pairs migrated from Piranha.
    pub backup: Option<PeerNode>,
    /// Upstream routers on the service LANs (each inside the subnet of a configured interface
    /// address) that each box ARP/NS-probes to score its uplink when the pair splits: the box
    /// that still reaches more of them keeps the VIPs. Empty: no uplink scoring. (Format 3.)
    pub uplink_probes: BoundedVec<IpAddr, { limits::UPLINK_PROBES }>,
}

impl Default for PeerLink {
    fn default() -> Self {
        PeerLink {
            interface: IfName::try_from("peer").unwrap_or_default(),
            pair_id: 0,
            heartbeat_interval_ms: 10,
            dead_after_ms: 30,
            heartbeat_port: 539,
            ipvs_sync: false,
            ipvs_sync_interface: None,
            primary: None,
            backup: None,
            uplink_probes: BoundedVec::new(),
        }
    }
}

/// E-mail notifications on state changes (keepalived `global_defs`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Notify {
    pub email_to:
        BoundedVec<heapless::String<{ limits::EMAIL_BYTES }>, { limits::EMAIL_RECIPIENTS }>,
    pub email_from: Option<heapless::String<{ limits::EMAIL_BYTES }>>,
    /// SMTP relay (an address: the appliance does no DNS lookups).
    pub smtp_server: Option<IpAddr>,
    pub smtp_port: u16,
    pub smtp_connect_timeout_s: u16,
}

impl Default for Notify {
    fn default() -> Self {
        Notify {
            email_to: BoundedVec::new(),
            email_from: None,
            smtp_server: None,
            smtp_port: 25,
            smtp_connect_timeout_s: 30,
        }
    }
}

/// The pair id as hex text for people, as a varint in the blob.
mod pair_id_text {
    use alloc::string::String;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(&format_args!("{value:016x}"))
        } else {
            serializer.serialize_u64(*value)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            u64::from_str_radix(&text, 16)
                .map_err(|_| D::Error::custom("pair_id must be 1 to 16 hex digits"))
        } else {
            u64::deserialize(deserializer)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::PortRole;

    /// Postcard writes a variant as its index: roles are only ever appended, so the index of
    /// every role a stored blob holds never changes.
    #[test]
    fn port_roles_keep_their_blob_index() {
        let roles = [
            (PortRole::Mgmt, 0u8, "mgmt"),
            (PortRole::Public, 1, "public"),
            (PortRole::Private, 2, "private"),
            (PortRole::Peer, 3, "peer"),
            (PortRole::Public2, 4, "public2"),
        ];
        for (role, index, name) in roles {
            assert_eq!(postcard::to_allocvec(&role).unwrap(), [index], "{name}");
            assert_eq!(postcard::from_bytes::<PortRole>(&[index]).unwrap(), role);
            assert_eq!(role.as_str(), name);
        }
        assert!(postcard::from_bytes::<PortRole>(&[5]).is_err());
    }
}
