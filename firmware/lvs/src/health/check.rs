//! Check definitions as plain data. [`CheckKey`] is the identity used for deduplication: two
//! real servers (in different services) with the same probe, target and timeout share one check.

use std::net::SocketAddr;
use std::time::Duration;

/// What to do on the connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Probe {
    /// TCP connect succeeds (then reset, leaving no TIME_WAIT).
    Tcp,
    /// HTTP/1.0 GET with status and optional body match.
    Http(HttpProbe),
    /// SMTP greeting must be `220`.
    Smtp,
    /// Piranha nanny style: optionally send bytes, optionally expect bytes in the reply.
    SendExpect(SendExpect),
}

/// An HTTP GET check.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HttpProbe {
    /// Request path (`/health`).
    pub path: String,
    /// Host header; `None` sends the target's address.
    pub host: Option<String>,
    /// Accepted status ranges, inclusive; empty means 200..=399.
    pub status: Vec<(u16, u16)>,
    /// Bytes that must appear in the body, if any.
    pub body_contains: Option<Vec<u8>>,
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
