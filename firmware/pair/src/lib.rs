//! `tandem-pair`: pairing the two boxes from their consoles (`pair start` shows an 8-digit
//! code, `pair join CODE` on the other box), sans-IO. A SPAKE2 exchange over the peer cable
//! turns the short code into a 256-bit pair key, a pair id and the boxes' roles; the daemon
//! carries the datagrams (`tandem_wire::pairing`), runs the clocks and stores the outcome on
//! each box's config disk. `no_std` + `alloc`; nothing here reads a clock, a socket or the
//! OS's RNG: time is an injected [`Instant`], randomness comes in as 32-byte seeds.
//!
//! - [`code`]: [`PairingCode`], uniform from random bytes, parsed in three spellings.
//! - [`pairing`]: the [`Starter`] and [`Joiner`] state machines, their [`Outcome`]s and the
//!   role rule ([`assign_roles`]); [`StartGate`] holds the lockout between starts.
//! - `crypto` (private): SPAKE2, HKDF, the confirmation tags and the seed stream.
//!
//! Roles are [`Role`] from `tandem_wire::pairing` (`a` / `b`, the same names as
//! `tandem_config::Role`: the daemon maps one onto the other by name, so this crate does not
//! need the config model).
#![no_std]

extern crate alloc;
#[cfg(test)]
extern crate std;

pub mod code;
mod crypto;
pub mod pairing;

pub use code::{PairingCode, ParseCodeError, CODE_DIGITS};
pub use crypto::{ID_JOINER, ID_STARTER};
pub use pairing::{
    assign_roles, Joiner, Notice, Outcome, Paired, Refusal, RefusalCounts, StartGate, StartRefused,
    Starter, PROTOCOL_VERSION,
};
pub use tandem_wire::pairing::{BoxFacts, Role, Versions};
/// The injected clock, shared with `tandem-vrrp`.
pub use tandem_wire::time::Instant;
