//! What the peer-cable codecs ([`crate::peer_message`], [`crate::heartbeat`]) share: field reads
//! that never panic, and the one authentication rule every datagram on the cable gets: the pair
//! id must match, a paired box demands an HMAC-SHA256 tag over everything before it, an unpaired
//! box refuses a keyed datagram (the operator must pair both boxes).

use core::ops::Range;

use hmac::{KeyInit, Mac};
use sha2::Sha256;

/// A 256-bit pairing key (the same key that authenticates the config blob).
pub type PairKey = [u8; 32];

/// HMAC-SHA256 tag length.
pub const MAC_LEN: usize = 32;

/// What the receiver demands of authentication.
#[derive(Debug, Clone, Copy)]
pub enum KeyPolicy<'a> {
    /// The box is paired: every datagram must carry a valid MAC under this key.
    Require(&'a PairKey),
    /// No key: datagrams must be unkeyed (a keyed one means the partner is paired and we are
    /// not, which the operator must fix).
    Unkeyed,
}

/// Why authentication failed; each codec maps it onto its own error (and counter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthFailure {
    WrongPair { pair_id: u64 },
    MissingMac,
    UnexpectedMac,
    BadMac,
}

/// Checks `datagram` (whose last [`MAC_LEN`] bytes are the tag when `keyed`) from pair
/// `pair_id` against what the receiver expects.
pub(crate) fn authenticate(
    datagram: &[u8],
    keyed: bool,
    pair_id: u64,
    expected_pair_id: u64,
    policy: KeyPolicy<'_>,
) -> Result<(), AuthFailure> {
    if pair_id != expected_pair_id {
        return Err(AuthFailure::WrongPair { pair_id });
    }
    match (policy, keyed) {
        (KeyPolicy::Unkeyed, false) => Ok(()),
        (KeyPolicy::Unkeyed, true) => Err(AuthFailure::UnexpectedMac),
        (KeyPolicy::Require(_), false) => Err(AuthFailure::MissingMac),
        (KeyPolicy::Require(key), true) => {
            let end = datagram
                .len()
                .checked_sub(MAC_LEN)
                .ok_or(AuthFailure::BadMac)?;
            let (signed, tag) = datagram.split_at(end);
            let mut mac = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key)
                .map_err(|_| AuthFailure::BadMac)?;
            mac.update(signed);
            mac.verify_slice(tag).map_err(|_| AuthFailure::BadMac)
        }
    }
}

/// The HMAC-SHA256 tag of `signed` under `key`.
pub(crate) fn tag(key: &PairKey, signed: &[u8]) -> [u8; MAC_LEN] {
    let mut out = [0u8; MAC_LEN];
    // A 32-byte key is always a valid HMAC key: the error branch is unreachable, and leaves a
    // zero tag that no receiver accepts.
    if let Ok(mut mac) = <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(key) {
        mac.update(signed);
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

pub(crate) fn be_u16(bytes: &[u8], range: Range<usize>) -> u16 {
    bytes
        .get(range)
        .and_then(|b| <[u8; 2]>::try_from(b).ok())
        .map_or(0, u16::from_be_bytes)
}

pub(crate) fn be_u32(bytes: &[u8], range: Range<usize>) -> u32 {
    bytes
        .get(range)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map_or(0, u32::from_be_bytes)
}

pub(crate) fn be_u64(bytes: &[u8], range: Range<usize>) -> u64 {
    bytes
        .get(range)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes)
}
