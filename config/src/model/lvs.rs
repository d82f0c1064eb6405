//! LVS (IPVS) virtual services, their real servers and health checks, and firewall-mark rules.
//!
//! Real servers are the bulk of a large config, so their fields are chosen to encode small:
//! defaults live on the service and a real server only carries overrides (`None` is one byte).

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use core::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{limits, IfName, Name};
use crate::bounded::BoundedVec;
use crate::net::IpCidr;

/// Transport protocol of a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    #[default]
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    /// The IP protocol number IPVS takes.
    pub fn ip_protocol(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// The IPVS schedulers of the Linux kernel (`net/netfilter/ipvs/ip_vs_*.c`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    /// Round robin.
    Rr,
    /// Weighted round robin.
    Wrr,
    /// Least connection.
    Lc,
    /// Weighted least connection (the kernel's and Piranha's default).
    #[default]
    Wlc,
    /// Locality-based least connection.
    Lblc,
    /// Locality-based least connection with replication.
    Lblcr,
    /// Destination hashing.
    Dh,
    /// Source hashing.
    Sh,
    /// Shortest expected delay.
    Sed,
    /// Never queue.
    Nq,
    /// Weighted failover.
    Fo,
    /// Weighted overflow.
    Ovf,
    /// Maglev hashing.
    Mh,
    /// Weighted random twos choice.
    Twos,
}

impl Scheduler {
    /// Every scheduler, for parsing and tests.
    pub const ALL: [Scheduler; 14] = [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Lc,
        Scheduler::Wlc,
        Scheduler::Lblc,
        Scheduler::Lblcr,
        Scheduler::Dh,
        Scheduler::Sh,
        Scheduler::Sed,
        Scheduler::Nq,
        Scheduler::Fo,
        Scheduler::Ovf,
        Scheduler::Mh,
        Scheduler::Twos,
    ];

    /// The kernel's name (`ip_vs_<name>` module, IPVS_SVC_ATTR_SCHED_NAME).
    pub fn kernel_name(self) -> &'static str {
        match self {
            Scheduler::Rr => "rr",
            Scheduler::Wrr => "wrr",
            Scheduler::Lc => "lc",
            Scheduler::Wlc => "wlc",
            Scheduler::Lblc => "lblc",
            Scheduler::Lblcr => "lblcr",
            Scheduler::Dh => "dh",
            Scheduler::Sh => "sh",
            Scheduler::Sed => "sed",
            Scheduler::Nq => "nq",
            Scheduler::Fo => "fo",
            Scheduler::Ovf => "ovf",
            Scheduler::Mh => "mh",
            Scheduler::Twos => "twos",
        }
    }

    /// The scheduler called `name` by the kernel.
    pub fn from_kernel_name(name: &str) -> Option<Scheduler> {
        Scheduler::ALL
            .into_iter()
            .find(|s| s.kernel_name().eq_ignore_ascii_case(name))
    }

    /// Whether the scheduler reads the fallback and port flags (IP_VS_SVC_F_SCHED1/2).
    pub fn takes_hash_flags(self) -> bool {
        matches!(self, Scheduler::Sh | Scheduler::Mh)
    }
}

/// Scheduler and service flags (IP_VS_SVC_F_SCHED1, _SCHED2, _ONEPACKET).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerFlags {
    /// sh/mh: pick another server when the hashed one is unavailable (`sh-fallback`, SCHED1).
    pub fallback: bool,
    /// sh/mh: hash the source port as well (`sh-port`, SCHED2).
    pub port: bool,
    /// Schedule every UDP datagram on its own (`ops`, ONEPACKET).
    pub one_packet: bool,
}

impl SchedulerFlags {
    /// The IPVS service flag bits.
    pub fn ipvs_bits(self) -> u32 {
        let mut bits = 0;
        if self.one_packet {
            bits |= 0x4;
        }
        if self.fallback {
            bits |= 0x8;
        }
        if self.port {
            bits |= 0x10;
        }
        bits
    }
}

/// Client affinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Persistence {
    /// Seconds an idle client stays with its real server.
    pub timeout_s: u32,
    /// Clients whose addresses share this prefix are one client (`persistence_granularity`).
    pub netmask_prefix: Option<u8>,
}

/// How IPVS forwards to a real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forwarding {
    /// Masquerading: the director rewrites the destination; replies must come back through it.
    #[default]
    Nat,
    /// Direct routing: the frame goes to the server's MAC on a shared segment.
    Dr,
    /// IP-in-IP tunnel to the server.
    Tun,
}

impl Forwarding {
    /// Upper-case name as keepalived and ipvsadm print it.
    pub fn keepalived_name(self) -> &'static str {
        match self {
            Forwarding::Nat => "NAT",
            Forwarding::Dr => "DR",
            Forwarding::Tun => "TUN",
        }
    }
}

/// What happens to a real server that fails its check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Delete it from the table.
    #[default]
    Remove,
    /// Keep it with weight 0: existing connections finish, no new ones arrive.
    Quiesce,
}

/// Check intervals and timeouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckTiming {
    /// Period between checks (keepalived `delay_loop`).
    pub interval_ms: u32,
    /// Connect and response timeout (keepalived `connect_timeout`, Piranha `timeout`).
    pub timeout_ms: u32,
    /// Further attempts before the server is declared down (`retry`, `nb_get_retry`).
    pub retries: u8,
    /// Wait between attempts (`delay_before_retry`).
    pub retry_delay_ms: u32,
}

impl Default for CheckTiming {
    fn default() -> Self {
        CheckTiming {
            interval_ms: 6000,
            timeout_ms: 5000,
            retries: 1,
            retry_delay_ms: 1000,
        }
    }
}

/// What an HTTP check expects in the body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HttpBody {
    /// MD5 of the whole body (keepalived `digest`).
    Md5([u8; 16]),
    /// The body contains this text.
    Contains(heapless::String<{ limits::URL_BYTES }>),
}

/// One inclusive range of HTTP status codes (`first == last` for a single code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StatusRange {
    pub first: u16,
    pub last: u16,
}

/// The HTTP status codes a check accepts (keepalived `status_code 200-299 400-499 503`).
///
/// The text form is a code (`status = 200`) or ranges and codes in a string
/// (`status = "200-299 400-499 503"`, commas allowed); the blob carries the ranges.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct StatusCodes(pub BoundedVec<StatusRange, { limits::STATUS_RANGES }>);

impl StatusCodes {
    /// One code.
    pub fn single(code: u16) -> Self {
        let mut ranges = BoundedVec::new();
        // One element never exceeds the capacity.
        let _ = ranges.push(StatusRange {
            first: code,
            last: code,
        });
        StatusCodes(ranges)
    }

    /// Whether `code` is accepted.
    pub fn contains(&self, code: u16) -> bool {
        self.0
            .iter()
            .any(|range| (range.first..=range.last).contains(&code))
    }

    /// Parses `"200-299 400-499 503"` (spaces or commas between items).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut ranges = BoundedVec::new();
        for item in text.split([' ', ',', '\t']).filter(|item| !item.is_empty()) {
            let (first, last) = item.split_once('-').unwrap_or((item, item));
            let code = |part: &str| {
                part.trim().parse::<u16>().map_err(|_| {
                    format!("\"{item}\" is not an HTTP status code or range such as 200 or 200-299")
                })
            };
            let range = StatusRange {
                first: code(first)?,
                last: code(last)?,
            };
            ranges.push(range).map_err(|_| {
                format!(
                    "more than {} status codes or ranges; merge neighbouring codes into ranges",
                    limits::STATUS_RANGES
                )
            })?;
        }
        if ranges.is_empty() {
            return Err(
                "no status code given; write codes or ranges such as \"200-299 503\"".into(),
            );
        }
        Ok(StatusCodes(ranges))
    }
}

impl core::fmt::Display for StatusCodes {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (index, range) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(" ")?;
            }
            if range.first == range.last {
                write!(f, "{}", range.first)?;
            } else {
                write!(f, "{}-{}", range.first, range.last)?;
            }
        }
        Ok(())
    }
}

impl Serialize for StatusCodes {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            return self.0.serialize(serializer);
        }
        match &self.0[..] {
            [one] if one.first == one.last => serializer.serialize_u16(one.first),
            _ => serializer.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for StatusCodes {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if !deserializer.is_human_readable() {
            return BoundedVec::deserialize(deserializer).map(StatusCodes);
        }
        struct Text;
        impl serde::de::Visitor<'_> for Text {
            type Value = StatusCodes;
            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str("an HTTP status code (200) or codes and ranges (\"200-299 503\")")
            }
            fn visit_i64<E: serde::de::Error>(self, code: i64) -> Result<StatusCodes, E> {
                u16::try_from(code)
                    .map(StatusCodes::single)
                    .map_err(|_| E::custom(format!("{code} is not an HTTP status code")))
            }
            fn visit_u64<E: serde::de::Error>(self, code: u64) -> Result<StatusCodes, E> {
                u16::try_from(code)
                    .map(StatusCodes::single)
                    .map_err(|_| E::custom(format!("{code} is not an HTTP status code")))
            }
            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<StatusCodes, E> {
                StatusCodes::parse(text).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Text)
    }
}

/// A further URL of an HTTP check (keepalived checks every `url` block; all must pass).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpUrl {
    pub path: heapless::String<{ limits::URL_BYTES }>,
    /// None: any 2xx.
    pub status: Option<StatusCodes>,
    pub body: Option<HttpBody>,
    /// None: the check's virtual host.
    pub virtual_host: Option<heapless::String<{ limits::URL_BYTES }>>,
}

/// DNS record types a DNS check may ask for (keepalived `DNS_CHECK` `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DnsRecordType {
    A,
    Ns,
    Cname,
    #[default]
    Soa,
    Mx,
    Txt,
    Aaaa,
}

impl DnsRecordType {
    /// The record type's code on the wire (RFC 1035, RFC 3596).
    pub fn code(self) -> u16 {
        match self {
            DnsRecordType::A => 1,
            DnsRecordType::Ns => 2,
            DnsRecordType::Cname => 5,
            DnsRecordType::Soa => 6,
            DnsRecordType::Mx => 15,
            DnsRecordType::Txt => 16,
            DnsRecordType::Aaaa => 28,
        }
    }
}

/// The kind of health check.
///
/// Format 5 changed `Http` (`status` became [`StatusCodes`]; `more_urls` and `tls_ca` were
/// appended) and appended `Ping`, `Udp` and `Dns`; a format 4 blob's checks decode through
/// the blob layout's `v4` types.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// TCP connect succeeds.
    Tcp,
    /// HTTP(S) GET of `path` (and of every `more_urls` path) answers with a status in `status`
    /// (None: any 2xx) and a matching body.
    Http {
        path: heapless::String<{ limits::URL_BYTES }>,
        #[serde(default)]
        status: Option<StatusCodes>,
        #[serde(default)]
        body: Option<HttpBody>,
        #[serde(default)]
        virtual_host: Option<heapless::String<{ limits::URL_BYTES }>>,
        #[serde(default)]
        tls: bool,
        /// Further URLs; the check passes when every URL passes.
        #[serde(default)]
        more_urls: BoundedVec<HttpUrl, { limits::MORE_URLS }>,
        /// Verify the server's certificate against the trust anchors of this name
        /// (`[[tls_trust]]`); None: the certificate is not verified (keepalived's way).
        #[serde(default)]
        tls_ca: Option<Name>,
    },
    /// SMTP greeting and HELO succeed.
    Smtp {
        helo_name: Option<heapless::String<{ limits::URL_BYTES }>>,
    },
    /// Piranha style: send `send` (escapes already decoded), expect the reply to start with
    /// `expect`. Empty send: only read; empty expect: only connect (and send).
    SendExpect {
        send: heapless::String<{ limits::SEND_EXPECT_BYTES }>,
        expect: heapless::String<{ limits::SEND_EXPECT_BYTES }>,
    },
    /// ICMP (or ICMPv6) echo is answered (keepalived `PING_CHECK`).
    Ping,
    /// A UDP datagram is sent to the port; the server is down when an ICMP port unreachable
    /// comes back, or, with `require_reply`, when no reply (starting with `expect`) comes
    /// (keepalived `UDP_CHECK`).
    Udp {
        /// The datagram, as hex digits in the text form.
        #[serde(default, with = "hex_bytes")]
        payload: heapless::Vec<u8, { limits::SEND_EXPECT_BYTES }>,
        #[serde(default)]
        require_reply: bool,
        /// What the reply must start with (hex); empty: any reply.
        #[serde(default, with = "hex_bytes")]
        expect: heapless::Vec<u8, { limits::SEND_EXPECT_BYTES }>,
    },
    /// A DNS query over UDP is answered with NOERROR and at least one answer (keepalived
    /// `DNS_CHECK`).
    Dns {
        /// The name asked for; "." by default.
        #[serde(default = "root_name")]
        name: heapless::String<{ limits::URL_BYTES }>,
        #[serde(default)]
        record_type: DnsRecordType,
    },
}

fn root_name() -> heapless::String<{ limits::URL_BYTES }> {
    let mut name = heapless::String::new();
    // "." fits in any non-empty capacity.
    let _ = name.push('.');
    name
}

/// Bytes as hex digits in the text form, as a byte sequence in the blob.
mod hex_bytes {
    use alloc::string::String;
    use alloc::vec::Vec;

    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer, const N: usize>(
        bytes: &heapless::Vec<u8, N>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            return serde::Serialize::serialize(bytes, serializer);
        }
        struct Hex<'a>(&'a [u8]);
        impl core::fmt::Display for Hex<'_> {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
            }
        }
        serializer.collect_str(&Hex(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
        deserializer: D,
    ) -> Result<heapless::Vec<u8, N>, D::Error> {
        if !deserializer.is_human_readable() {
            return heapless::Vec::deserialize(deserializer);
        }
        let text = String::deserialize(deserializer)?;
        let digits: Vec<u8> = text
            .bytes()
            .filter(|byte| !byte.is_ascii_whitespace())
            .collect();
        if !digits.len().is_multiple_of(2) {
            return Err(D::Error::custom(
                "an odd number of hex digits; write two digits per byte",
            ));
        }
        let mut bytes = heapless::Vec::new();
        for pair in digits.chunks(2) {
            let text = core::str::from_utf8(pair).map_err(D::Error::custom)?;
            let byte = u8::from_str_radix(text, 16)
                .map_err(|_| D::Error::custom(format_args!("\"{text}\" is not a hex byte")))?;
            bytes
                .push(byte)
                .map_err(|_| D::Error::custom(format_args!("longer than {N} bytes")))?;
        }
        Ok(bytes)
    }
}

/// A named set of trust anchors: CA certificates in PEM, for TLS checks that verify.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsTrust {
    pub name: Name,
    /// One or more `-----BEGIN CERTIFICATE-----` blocks (at most
    /// [`limits::TLS_TRUST_PEM_BYTES`] bytes, checked by validation).
    pub pem: String,
}

/// A health check.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Check {
    pub kind: CheckKind,
    pub timing: CheckTiming,
    /// Check this port instead of the real server's port (`connect_port`).
    pub connect_port: Option<u16>,
    /// Check this address instead of the real server's (`connect_ip`).
    pub connect_address: Option<IpAddr>,
    /// Source address of the check (`bindto`).
    pub bind_address: Option<IpAddr>,
}

impl Default for Check {
    fn default() -> Self {
        Check {
            kind: CheckKind::Tcp,
            timing: CheckTiming::default(),
            connect_port: None,
            connect_address: None,
            bind_address: None,
        }
    }
}

/// Where clients go when no real server is up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SorryServer {
    pub address: IpAddr,
    /// None: the service's port.
    pub port: Option<u16>,
    /// None: the service's forwarding method.
    pub forwarding: Option<Forwarding>,
    /// Keep it in the table with weight 0 while real servers are up (`sorry_server_inhibit`).
    pub inhibit: bool,
}

impl Default for SorryServer {
    fn default() -> Self {
        SorryServer {
            address: IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
            port: None,
            forwarding: None,
            inhibit: false,
        }
    }
}

/// One real server behind a virtual service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RealServer {
    /// Descriptive name (Piranha `server NAME`); may be empty.
    pub name: Name,
    pub address: IpAddr,
    /// None: the service's port (required for fwmark services).
    pub port: Option<u16>,
    /// Relative capacity; 0 takes no new connections.
    pub weight: u32,
    /// None: the service's forwarding method.
    pub forwarding: Option<Forwarding>,
    /// An inactive server is configured but kept out of the table (Piranha `active = 0`).
    pub active: bool,
    /// Stop sending new connections above this many (0: no limit, `uthreshold`).
    pub upper_threshold: u32,
    /// Resume below this many (`lthreshold`).
    pub lower_threshold: u32,
    /// None: the service's failure policy (keepalived `inhibit_on_failure` per server).
    pub on_failure: Option<OnFailure>,
    /// None: the service's check. Boxed (here and on the service): a `Check` is ~600 bytes
    /// inline (heapless strings), and most servers have none; inline, a real server took 672
    /// bytes, a 1000 x 10 config 6.7 MB of memory that every clone, decode and compare moved
    /// (88 bytes boxed). The blob encoding is the same either way.
    pub check: Option<Box<Check>>,
    /// Further checks of this server, run beside `check`: the server is up only while `check`
    /// and every one of these pass (keepalived runs every checker of a real server). Needs
    /// `check`; empty: `check` alone (or the service's checks when `check` is None). Format 6.
    pub more_checks: BoundedVec<Check, { limits::MORE_CHECKS }>,
}

impl Default for RealServer {
    fn default() -> Self {
        RealServer {
            name: Name::new(),
            address: IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED),
            port: None,
            weight: 1,
            forwarding: None,
            active: true,
            upper_threshold: 0,
            lower_threshold: 0,
            on_failure: None,
            check: None,
            more_checks: BoundedVec::new(),
        }
    }
}

impl RealServer {
    /// Forwarding method in force for this server.
    pub fn effective_forwarding(&self, service: &VirtualService) -> Forwarding {
        self.forwarding.unwrap_or(service.forwarding)
    }

    /// Port in force for this server.
    pub fn effective_port(&self, service: &VirtualService) -> u16 {
        self.port.unwrap_or(service.port)
    }

    /// Check in force for this server (the first of [`RealServer::effective_checks`]).
    pub fn effective_check<'a>(&'a self, service: &'a VirtualService) -> Option<&'a Check> {
        self.check.as_deref().or(service.check.as_deref())
    }

    /// Every check in force for this server, its own `check` and `more_checks` when it has a
    /// `check`, else the service's; the server is up while all of them pass.
    pub fn effective_checks<'a>(
        &'a self,
        service: &'a VirtualService,
    ) -> impl Iterator<Item = &'a Check> + 'a {
        let (first, more) = match self.check.as_deref() {
            Some(own) => (Some(own), &self.more_checks[..]),
            None => (service.check.as_deref(), &service.more_checks[..]),
        };
        // Validation refuses `more_checks` without `check`; should one slip through, none run.
        let more: &[Check] = if first.is_some() { more } else { &[] };
        first.into_iter().chain(more.iter())
    }

    /// Failure policy in force for this server.
    pub fn effective_on_failure(&self, service: &VirtualService) -> OnFailure {
        self.on_failure.unwrap_or(service.on_failure)
    }
}

/// One LVS virtual service: `address:port/protocol`, or a firewall mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VirtualService {
    /// Descriptive name (Piranha `virtual NAME`); may be empty.
    pub name: Name,
    /// An inactive service is configured but not loaded into IPVS.
    pub active: bool,
    /// The virtual address. Required unless `fwmark` is set.
    pub address: Option<IpAddr>,
    /// Prefix length the director adds the virtual address with (Piranha `vip_nmask`).
    pub address_prefix: Option<u8>,
    /// Interface or alias label the virtual address goes on (Piranha `address = IP eth0:1`).
    pub interface: Option<IfName>,
    /// Service port (0 with persistence: all ports).
    pub port: u16,
    pub protocol: Protocol,
    /// Match packets carrying this firewall mark instead of address and port.
    pub fwmark: Option<u32>,
    pub scheduler: Scheduler,
    pub scheduler_flags: SchedulerFlags,
    pub persistence: Option<Persistence>,
    /// Forwarding for real servers that do not say.
    pub forwarding: Forwarding,
    /// Total weight of live real servers needed for the service to be up.
    pub quorum: u32,
    /// Quorum hysteresis: up at quorum + hysteresis, down below quorum - hysteresis.
    pub hysteresis: u32,
    pub sorry_server: Option<SorryServer>,
    pub on_failure: OnFailure,
    /// Seconds a failed real server must pass its check before it is put back (Piranha `reentry`).
    pub reentry_s: u32,
    /// Real servers start as down until their first check passes (keepalived `alpha`).
    pub start_down: bool,
    /// Check for real servers that do not have their own.
    pub check: Option<Box<Check>>,
    pub real_servers: BoundedVec<RealServer, { limits::REAL_SERVERS_PER_SERVICE }>,
    /// Further checks beside `check` for real servers that do not have their own: such a
    /// server is up only while `check` and every one of these pass. Needs `check`. Format 6.
    pub more_checks: BoundedVec<Check, { limits::MORE_CHECKS }>,
}

impl Default for VirtualService {
    fn default() -> Self {
        VirtualService {
            name: Name::new(),
            active: true,
            address: None,
            address_prefix: None,
            interface: None,
            port: 0,
            protocol: Protocol::Tcp,
            fwmark: None,
            scheduler: Scheduler::Wlc,
            scheduler_flags: SchedulerFlags::default(),
            persistence: None,
            forwarding: Forwarding::Nat,
            quorum: 1,
            hysteresis: 0,
            sorry_server: None,
            on_failure: OnFailure::Remove,
            reentry_s: 0,
            start_down: false,
            check: None,
            real_servers: BoundedVec::new(),
            more_checks: BoundedVec::new(),
        }
    }
}

impl VirtualService {
    /// How the service is named in messages: its name, else `fwmark N` or `address:port/proto`.
    pub fn label(&self) -> String {
        format!("{}", self.display_label())
    }

    /// [`VirtualService::label`] without building a string of its own (for longer messages).
    pub fn display_label(&self) -> ServiceLabel<'_> {
        ServiceLabel(self)
    }
}

/// A service's label as [`core::fmt::Display`].
#[derive(Debug, Clone, Copy)]
pub struct ServiceLabel<'a>(&'a VirtualService);

impl core::fmt::Display for ServiceLabel<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let service = self.0;
        if !service.name.is_empty() {
            return f.write_str(&service.name);
        }
        let protocol = service.protocol.as_str();
        match (service.fwmark, service.address) {
            (Some(mark), _) => write!(f, "fwmark {mark}"),
            (None, Some(IpAddr::V6(addr))) => write!(f, "[{addr}]:{}/{protocol}", service.port),
            (None, Some(addr)) => write!(f, "{addr}:{}/{protocol}", service.port),
            (None, None) => write!(f, ":{}/{protocol}", service.port),
        }
    }
}

/// A firewall-mark rule: packets to `destination` on the given ports get `mark`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FwmarkRule {
    pub mark: u32,
    pub protocol: Protocol,
    pub destination: IpCidr,
    /// First port of the range.
    pub port_first: u16,
    /// Last port of the range (equal to `port_first` for one port).
    pub port_last: u16,
}

impl Default for FwmarkRule {
    fn default() -> Self {
        FwmarkRule {
            mark: 1,
            protocol: Protocol::Tcp,
            destination: IpCidr::host(IpAddr::V4(core::net::Ipv4Addr::UNSPECIFIED)),
            port_first: 0,
            port_last: 0,
        }
    }
}
