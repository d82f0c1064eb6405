//! Check definitions as plain data. [`CheckKey`] is the identity used for deduplication: two
//! real servers (in different services) with the same probe, target and timeout share one check.
//! TCP-based probes (TCP, HTTP(S), SMTP, send/expect) connect to the target; the datagram probes
//! (ICMP echo, UDP, DNS over UDP) send one request and judge what comes back. A real server
//! with several checks has one check whose probe is [`Probe::Every`] of them.

use std::net::SocketAddr;
use std::time::Duration;

use super::tls::TlsTrust;

/// What to do on the connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Probe {
    /// TCP connect succeeds (then reset, leaving no TIME_WAIT).
    Tcp,
    /// HTTP/1.0 GET, over TLS or not, with status and optional body match.
    Http(Box<HttpProbe>),
    /// SMTP greeting must be `220`.
    Smtp,
    /// Piranha nanny style: optionally send bytes, optionally expect bytes in the reply.
    SendExpect(SendExpect),
    /// ICMP (IPv4) or ICMPv6 echo is answered (keepalived `PING_CHECK`); the target's port is
    /// not used.
    Ping,
    /// A UDP datagram to the port (keepalived `UDP_CHECK`).
    Udp(UdpProbe),
    /// A DNS query over UDP to the port (keepalived `DNS_CHECK`).
    Dns(DnsProbe),
    /// Every check of a real server that has several (keepalived runs every checker of a real
    /// server and keeps it up while all pass): each with its own probe, target and timeout,
    /// run in turn; the attempt fails at the first that fails, naming it
    /// ([`FailReason::Check`](super::reply::FailReason::Check)). The key's own target is the
    /// first check's, its timeout the sum of theirs. Never nested.
    Every(Vec<SubCheck>),
}

/// One of the checks of [`Probe::Every`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubCheck {
    /// How a failure names it (`tcp 10.0.1.1:5432`).
    pub what: String,
    /// What it runs, where, within what time.
    pub key: CheckKey,
}

/// An HTTP GET check (HTTPS with `tls`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HttpProbe {
    /// Request path (`/health`).
    pub path: String,
    /// Host header, and over TLS the server name (SNI) when it is a DNS name; `None` sends the
    /// target's address as Host and no SNI.
    pub host: Option<String>,
    /// Accepted status ranges, inclusive; empty means 200..=399.
    pub status: Vec<(u16, u16)>,
    /// What the body must be, if anything.
    pub body: Option<BodyCheck>,
    /// `Some`: HTTPS, trusting the server's certificate as this says (for every URL).
    pub tls: Option<TlsTrust>,
    /// Further URLs, each fetched on a connection of its own after the first URL passed; the
    /// check passes when every URL passes (keepalived checks every `url` block).
    pub more_urls: Vec<HttpUrl>,
}

/// A further URL of an HTTP check, with what it must answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HttpUrl {
    /// Request path.
    pub path: String,
    /// Host header and TLS server name, as [`HttpProbe::host`] (already the check's when the
    /// URL names none).
    pub host: Option<String>,
    /// Accepted status ranges, inclusive; empty means 200..=399.
    pub status: Vec<(u16, u16)>,
    /// What the body must be, if anything.
    pub body: Option<BodyCheck>,
}

/// What an HTTP reply must be: the status codes and the body of one URL. The verdicts of
/// [`super::reply`] take any URL of a check through this.
pub trait HttpExpect {
    /// Accepted status ranges, inclusive; empty means 200..=399.
    fn status(&self) -> &[(u16, u16)];
    /// What the body must be, if anything.
    fn body(&self) -> Option<&BodyCheck>;
}

impl HttpExpect for HttpProbe {
    fn status(&self) -> &[(u16, u16)] {
        &self.status
    }
    fn body(&self) -> Option<&BodyCheck> {
        self.body.as_ref()
    }
}

impl HttpExpect for HttpUrl {
    fn status(&self) -> &[(u16, u16)] {
        &self.status
    }
    fn body(&self) -> Option<&BodyCheck> {
        self.body.as_ref()
    }
}

/// A UDP check (keepalived `UDP_CHECK`): `payload` is sent on a connected socket; an ICMP
/// unreachable (the socket's `ECONNREFUSED` / `EHOSTUNREACH`) is down. With `require_reply`,
/// a reply starting with `expect` must come within the timeout; without, any reply or silence
/// until the timeout is up.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UdpProbe {
    /// The datagram (keepalived's 32-byte filler when the config gives none).
    pub payload: Vec<u8>,
    /// A reply must come.
    pub require_reply: bool,
    /// What the reply must start with (empty: any reply).
    pub expect: Vec<u8>,
}

/// A DNS check (keepalived `DNS_CHECK`): a query for `name` / `record_type`, class IN, RD set.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DnsProbe {
    /// The name asked for ("." is the root).
    pub name: String,
    /// The record type's code (6: SOA, keepalived's default).
    pub record_type: u16,
}

/// What an HTTP check asks of the body.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BodyCheck {
    /// These bytes appear in the first [`MAX_REPLY`](super::reply::MAX_REPLY) bytes of the reply.
    Contains(Vec<u8>),
    /// The MD5 of the whole body is `digest` (keepalived `digest`); a body longer than
    /// `max_body` bytes fails the check. The body is hashed as it arrives, never buffered.
    Md5 {
        /// The expected digest.
        digest: [u8; 16],
        /// Longest body read.
        max_body: u64,
    },
}

/// A send/expect check.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SendExpect {
    /// Bytes to send after connecting (may be empty).
    pub send: Vec<u8>,
    /// Bytes the reply must contain (empty = connecting and sending is enough).
    pub expect: Vec<u8>,
}

/// Identity of a check: identical keys are checked once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckKey {
    /// What to do.
    pub probe: Probe,
    /// Where.
    pub target: SocketAddr,
    /// Limit for one attempt (connect + exchange).
    pub timeout: Duration,
}

/// How often and how strictly a subscriber wants a check run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckTiming {
    /// Time between rounds.
    pub interval: Duration,
    /// Extra attempts within a round before the round counts as failed.
    pub retries: u32,
    /// Pause before a retry.
    pub retry_delay: Duration,
    /// Consecutive good rounds to go up.
    pub rise: u32,
    /// Consecutive failed rounds to go down.
    pub fall: u32,
    /// State before the first verdict (keepalived starts servers up).
    pub start_up: bool,
}

impl Default for CheckTiming {
    fn default() -> Self {
        CheckTiming {
            interval: Duration::from_secs(6),
            retries: 1,
            retry_delay: Duration::from_secs(1),
            rise: 1,
            fall: 1,
            start_up: true,
        }
    }
}

/// A subscriber's check: what and how often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    /// Identity of the check.
    pub key: CheckKey,
    /// Timing wanted by this subscriber.
    pub timing: CheckTiming,
}
