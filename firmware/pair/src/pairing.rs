//! Pairing from the two consoles, sans-IO: `pair start` on one box makes a [`Starter`] (it shows
//! the code), `pair join CODE` on the other makes a [`Joiner`]. The daemon carries their
//! datagrams over UDP on the peer cable and calls them quinn-proto style:
//! `handle_datagram(now, bytes)` in, `poll_transmit()` out, `poll_timeout()` /
//! `handle_timeout(now)` for timers, `outcome()` once it is over (and, on the starter,
//! `poll_notice()` for what its console should say while it keeps waiting).
//!
//! ```text
//! joiner                                     starter
//!   HELLO (nonce J, SPAKE2 X, facts)  ---->    one try used; K = SPAKE2(code); keys = HKDF(K)
//!                                     <----    REPLY (J, S, SPAKE2 Y, facts, roles, tag_s)
//!   K' = SPAKE2(code'); check tag_s            (tag_s = HMAC(ck, .. HELLO || REPLY))
//!   CONFIRM (J, S, tag_j)             ---->    check tag_j: ok -> paired, else wrong code
//!                                     <----    RESULT (paired + tag_r | wrong code n | locked ..)
//! ```
//!
//! Key confirmation comes first: a wrong code only gives different keys, so nothing is believed
//! until a tag verifies. A joiner whose check of the starter's tag fails still sends its
//! CONFIRM, so that the starter counts the wrong try and both consoles say so.
//!
//! Decisions (see also each type):
//! - A try is used when the starter answers a new HELLO with a REPLY, not when a CONFIRM fails:
//!   otherwise a HELLO that never confirms would test a guess of the code for free.
//! - One exchange at a time: a HELLO with another nonce while an exchange waits for its CONFIRM
//!   is answered BUSY (not restarted, which would let any datagram kill a good exchange). The
//!   waiting exchange is abandoned after [`ATTEMPT_IDLE`] without a datagram from its joiner (or
//!   [`ATTEMPT_MAX`] in all); a joiner told BUSY keeps trying until its own deadline.
//! - Retransmissions are the joiner's: the starter only answers, and answers a repeated HELLO
//!   or CONFIRM with the very bytes it sent the first time (cached per exchange); a repeat whose
//!   bytes differ from the first is refused.
//! - A code pairs once: after that (or after it expired or locked) a HELLO gets EXPIRED (LOCKED).
//! - Expiry is hard: at [`CODE_LIFETIME`] a waiting exchange ends with EXPIRED too.
//! - The unauthenticated RESULTs (wrong code, locked, expired, busy, version refused) are
//!   believed when their nonces match: someone on the cable could forge one, but could as well
//!   drop the datagrams; only "paired" decides anything, and it is authenticated.
//! - Roles: [`assign_roles`], decided by the starter and covered by its tag.
//! - Versions: the starter refuses a joiner whose pairing, channel or blob version differs from
//!   its own (no try used), naming both.
//! - A refusal changes no state, save the [`SPAKE_MIN_INTERVAL`] rate limit when the refused
//!   datagram cost a SPAKE2 computation (an invalid curve point).

mod joiner;
mod starter;

use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use tandem_wire::pairing::{BoxFacts, MessageType, PairingWireError, Role, Versions};

pub use joiner::Joiner;
pub use starter::{StartGate, StartRefused, Starter};

/// The version of this pairing protocol, sent as [`Versions::pairing`].
pub const PROTOCOL_VERSION: u16 = 1;
/// How long a code shown by `pair start` is valid.
pub const CODE_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// Exchanges one code allows; the last failing one locks pairing.
pub const MAX_TRIES: u8 = 3;
/// After a lockout, `pair start` is refused for this long.
pub const LOCKOUT: Duration = Duration::from_secs(60);
/// The joiner repeats its last datagram (HELLO or CONFIRM) this often until answered.
pub const RETRANSMIT_INTERVAL: Duration = Duration::from_millis(250);
/// The joiner gives up when no REPLY came this long after `pair join`.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(15);
/// The joiner gives up when no RESULT came this long after the REPLY.
pub const RESULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The starter abandons an exchange whose joiner sent nothing for this long (it counts as a
/// wrong try: the try was used by the REPLY).
pub const ATTEMPT_IDLE: Duration = Duration::from_secs(5);
/// The starter abandons an exchange this long after its HELLO in any case (the most a joiner
/// lives: [`ANSWER_TIMEOUT`] + [`RESULT_TIMEOUT`]).
pub const ATTEMPT_MAX: Duration = Duration::from_secs(25);
/// After its end (paired, locked, expired) the starter still answers repeated datagrams this
/// long, so that a joiner whose RESULT was lost hears it again; then it is finished.
pub const LINGER: Duration = Duration::from_secs(15);
/// Least time between two SPAKE2 computations of one side. A HELLO (REPLY) that needs one
/// earlier is refused ([`Refusal::RateLimited`]) and handled when the joiner repeats it (the
/// starter answers the repeated HELLO with its REPLY). Without it, a flood of HELLOs with
/// invalid points would each cost scalar multiplications (about 23 ms on this project's
/// build machine at the appliance's `opt-level = "z"`) and could starve the daemon's loop; a
/// genuine exchange needs one computation per side.
pub const SPAKE_MIN_INTERVAL: Duration = Duration::from_millis(200);
/// Datagrams waiting in `poll_transmit` at most (more are dropped and counted: the daemon polls
/// after every call, so this only bounds a daemon that does not).
pub const MAX_QUEUED: usize = 16;

/// The role rule, decided by the starter: a box that already has a role keeps it, the
/// starter's first. If the starter has a stored role it keeps it and the joiner gets the other;
/// else if the joiner has one, the joiner keeps it; else the starter is `a`, the joiner `b`.
/// This lets a factory-fresh replacement box join the survivor and take the dead box's role.
///
/// Returns (starter role, joiner role).
pub const fn assign_roles(starter: Option<Role>, joiner: Option<Role>) -> (Role, Role) {
    match (starter, joiner) {
        (Some(starter), _) => (starter, starter.other()),
        (None, Some(joiner)) => (joiner.other(), joiner),
        (None, None) => (Role::A, Role::B),
    }
}

/// What a successful exchange gives each box, for its config disk.
#[derive(Clone, PartialEq, Eq)]
pub struct Paired {
    /// The pair key (the same on both boxes): it authenticates the peer cable and config blobs.
    pub key: [u8; 32],
    /// The pair id (the same on both boxes, never 0).
    pub pair_id: u64,
    /// This box's role.
    pub my_role: Role,
    /// The partner's role (always `my_role.other()`).
    pub peer_role: Role,
    /// What the partner said about itself (its stored role before pairing, config generation,
    /// versions).
    pub peer_facts: BoxFacts,
}

impl fmt::Debug for Paired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Paired")
            .field("key", &"<32 bytes>")
            .field("pair_id", &format_args!("{:016x}", self.pair_id))
            .field("my_role", &self.my_role)
            .field("peer_role", &self.peer_role)
            .field("peer_facts", &self.peer_facts)
            .finish()
    }
}

/// How an exchange ended, for the console. `Display` says what happened and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Both boxes hold the same key: store it with the pair id and roles.
    Paired(Paired),
    /// (Joiner) The partner's code differs from the one typed here. `None`: the RESULT saying
    /// how many tries are left never arrived.
    WrongCode { tries_left: Option<u8> },
    /// [`MAX_TRIES`] wrong codes: the code is burned.
    Locked,
    /// The code's [`CODE_LIFETIME`] is over, or it was already used.
    Expired,
    /// (Joiner) Nothing came back within [`ANSWER_TIMEOUT`].
    NoAnswer,
    /// (Joiner) The codes matched but the partner's verdict never came within
    /// [`RESULT_TIMEOUT`]: the partner may or may not have stored the pairing.
    NoResult,
    /// (Joiner) The partner was busy with another exchange until [`ANSWER_TIMEOUT`].
    Busy,
    /// (Joiner) The partner's firmware speaks other versions.
    VersionSkew { ours: Versions, theirs: Versions },
}

impl Outcome {
    /// The pairing, when it succeeded.
    pub fn paired(&self) -> Option<&Paired> {
        match self {
            Outcome::Paired(paired) => Some(paired),
            _ => None,
        }
    }
}

fn tries(n: u8) -> &'static str {
    if n == 1 {
        "try"
    } else {
        "tries"
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Paired(paired) => write!(
                f,
                "paired: this box is {}, the partner is {} (pair id {:016x})",
                paired.my_role, paired.peer_role, paired.pair_id
            ),
            Outcome::WrongCode { tries_left: Some(n) } => write!(
                f,
                "wrong pairing code ({n} {} left): check the code shown on the other console and run `pair join CODE` again",
                tries(*n)
            ),
            Outcome::WrongCode { tries_left: None } => f.write_str(
                "wrong pairing code: check the code shown on the other console and run `pair join CODE` again",
            ),
            Outcome::Locked => write!(
                f,
                "pairing locked after {MAX_TRIES} wrong codes, the code is burned: wait {} s, run `pair start` again for a new code and `pair join CODE` on the other box",
                LOCKOUT.as_secs()
            ),
            Outcome::Expired => write!(
                f,
                "the pairing code expired (a code is valid for {} minutes and pairs once): run `pair start` again for a new code",
                CODE_LIFETIME.as_secs() / 60
            ),
            Outcome::NoAnswer => f.write_str(
                "no answer from the partner: is the peer cable plugged in and did the other console run `pair start`?",
            ),
            Outcome::NoResult => f.write_str(
                "the partner did not confirm the pairing: run `pair status` on the other console; if it is not paired, run `pair start` there and `pair join CODE` here again",
            ),
            Outcome::Busy => f.write_str(
                "the partner is busy with another `pair join` (a second box on the peer cable?): wait a few seconds and run `pair join CODE` again",
            ),
            Outcome::VersionSkew { ours, theirs } => write!(
                f,
                "firmware versions differ (this box: {ours}; partner: {theirs}): install the same firmware on both boxes, then pair again"
            ),
        }
    }
}

/// What the starter's console should say while the code stays valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The other console typed a code that differs from this one's.
    WrongCode { tries_left: u8 },
    /// An exchange was abandoned mid-way (its try is used).
    Abandoned { tries_left: u8 },
    /// A joiner with other firmware versions was refused (no try used).
    VersionSkew { ours: Versions, theirs: Versions },
}

impl fmt::Display for Notice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Notice::WrongCode { tries_left } => write!(
                f,
                "the other console entered a wrong pairing code ({tries_left} {} left): the code shown here stays valid; type it again there with `pair join CODE`",
                tries(*tries_left)
            ),
            Notice::Abandoned { tries_left } => write!(
                f,
                "the other box stopped answering in the middle of pairing ({tries_left} {} left): check the peer cable and run `pair join CODE` there again",
                tries(*tries_left)
            ),
            Notice::VersionSkew { ours, theirs } => write!(
                f,
                "refused to pair with a box running other firmware (this box: {ours}; partner: {theirs}): install the same firmware on both boxes"
            ),
        }
    }
}

/// Why a datagram was refused. A refusal changes no state; each reason is one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The bytes are not a well-formed pairing datagram.
    Malformed(PairingWireError),
    /// A message only the other side receives (e.g. a HELLO sent to a joiner).
    WrongDirection { message_type: MessageType },
    /// Nonces of no exchange this box knows.
    UnknownExchange { message_type: MessageType },
    /// Same nonces as a datagram already handled, other bytes.
    Conflicting { message_type: MessageType },
    /// Not expected at this point of the exchange.
    Unexpected { message_type: MessageType },
    /// The partner's SPAKE2 message is not a valid curve point.
    BadSpake,
    /// A "paired" RESULT whose tag does not verify.
    BadTag,
    /// Needs a SPAKE2 computation sooner than [`SPAKE_MIN_INTERVAL`] after the last one.
    RateLimited,
    /// The exchange is over (and the datagram is not a repeat of one already handled).
    Finished,
}

impl Refusal {
    /// A short fixed name, the key of the counter.
    pub const fn reason(&self) -> &'static str {
        match self {
            Refusal::Malformed(error) => error.reason(),
            Refusal::WrongDirection { .. } => "wrong direction",
            Refusal::UnknownExchange { .. } => "unknown exchange",
            Refusal::Conflicting { .. } => "conflicting repeat",
            Refusal::Unexpected { .. } => "unexpected message",
            Refusal::BadSpake => "bad SPAKE2 point",
            Refusal::BadTag => "bad result tag",
            Refusal::RateLimited => "rate limited",
            Refusal::Finished => "exchange finished",
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Malformed(error) => error.fmt(f),
            Refusal::WrongDirection { message_type } => write!(
                f,
                "pairing {message_type} sent to the wrong side (both consoles ran `pair start`, or both `pair join`?): run `pair start` on one box and `pair join CODE` on the other"
            ),
            Refusal::UnknownExchange { message_type } => write!(
                f,
                "pairing {message_type} for an exchange this box does not know (late, or from an earlier attempt); discard it"
            ),
            Refusal::Conflicting { message_type } => write!(
                f,
                "pairing {message_type} differs from the one already received for this exchange (something else on the peer cable?); discard it"
            ),
            Refusal::Unexpected { message_type } => write!(
                f,
                "pairing {message_type} is not expected at this point of the exchange; discard it"
            ),
            Refusal::BadSpake => f.write_str(
                "the partner's SPAKE2 message is not a valid curve point; discard the datagram",
            ),
            Refusal::BadTag => f.write_str(
                "pairing result whose tag does not verify (forged or corrupted); discard it",
            ),
            Refusal::RateLimited => write!(
                f,
                "pairing datagram needing SPAKE2 work within {} ms of the last; the partner repeats it, discard this one",
                SPAKE_MIN_INTERVAL.as_millis()
            ),
            Refusal::Finished => f.write_str("pairing datagram after the exchange ended; discard it"),
        }
    }
}

/// Refusals counted by reason (a handful of fixed names).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RefusalCounts {
    counts: Vec<(&'static str, u64)>,
}

impl RefusalCounts {
    pub(crate) fn count(&mut self, refusal: &Refusal) {
        let reason = refusal.reason();
        match self.counts.iter_mut().find(|(name, _)| *name == reason) {
            Some((_, n)) => *n = n.saturating_add(1),
            None => self.counts.push((reason, 1)),
        }
    }

    /// How many datagrams were refused for `reason`.
    pub fn get(&self, reason: &str) -> u64 {
        self.counts
            .iter()
            .find(|(name, _)| *name == reason)
            .map_or(0, |(_, n)| *n)
    }

    /// Every reason seen, with its count, in order of first appearance.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        self.counts.iter().copied()
    }

    /// All refusals.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|(_, n)| *n).sum()
    }
}

/// A bounded queue of datagrams to send.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    queue: alloc::collections::VecDeque<Vec<u8>>,
    dropped: u64,
}

impl Outbox {
    pub(crate) fn push(&mut self, datagram: Vec<u8>) {
        if self.queue.len() >= MAX_QUEUED {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        self.queue.push_back(datagram);
    }

    pub(crate) fn pop(&mut self) -> Option<Vec<u8>> {
        self.queue.pop_front()
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// Emits `repr` into a fresh vector (emit refuses only reprs this crate never builds).
pub(crate) fn emit(repr: &tandem_wire::pairing::Repr) -> Vec<u8> {
    let mut out = alloc::vec![0u8; repr.buffer_len()];
    match repr.emit(&mut out) {
        Ok(len) => out.truncate(len),
        Err(_) => out.clear(),
    }
    out
}

#[cfg(test)]
mod tests;
