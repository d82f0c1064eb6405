//! Health checking of real servers, in process (no fork, no shell).
//!
//! - [`check`]: what a check is (TCP connect, HTTP GET of one or more URLs, SMTP banner,
//!   send/expect, ICMP echo, UDP datagram, DNS query, or every one of several) and its timing.
//! - [`reply`]: pure, incremental verdicts on reply bytes (fuzzed: `health_reply`); [`digest`]:
//!   the streamed MD5 of an HTTP body; [`icmp`] and [`dns`]: the echo request and DNS query a
//!   check sends and the verdict on each datagram back (fuzzed in `health_reply` too).
//! - [`schedule`]: sans-IO scheduler: dedupes identical checks, jitters starts, retries,
//!   applies rise/fall per subscriber; time is injected.
//! - [`policy`]: health → effective service: quiesce or remove, re-entry delay, sorry server,
//!   quorum with hysteresis.
//! - [`probe`] and [`runner`]: the tokio side that performs attempts and drives the scheduler;
//!   [`tls`]: the rustls client of HTTPS checks and how it trusts a server; [`datagram`]: the
//!   sockets of the datagram checks (ICMP datagram or raw, UDP; ICMP errors as socket errors).

pub mod check;
pub mod datagram;
pub mod digest;
pub mod dns;
pub mod icmp;
pub mod policy;
pub mod probe;
pub mod reply;
pub mod runner;
pub mod schedule;
pub mod tls;

pub use check::{
    BodyCheck, CheckKey, CheckSpec, CheckTiming, DnsProbe, HttpExpect, HttpProbe, HttpUrl, Probe,
    SendExpect, SubCheck, UdpProbe,
};
pub use policy::{OnFailure, ServiceHealth, ServicePolicy};
pub use reply::{FailReason, Progress};
pub use schedule::{Attempt, HealthEvent, HealthScheduler, SubscriberId};
pub use tls::{TlsSetupError, TlsTrust, TrustAnchors};
