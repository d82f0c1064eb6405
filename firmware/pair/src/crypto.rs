//! The cryptography of one exchange, in one place so it can be reviewed at once:
//!
//! - SPAKE2 over Ed25519 (RustCrypto `spake2`) in its asymmetric mode: the joiner plays side A
//!   with identity [`ID_JOINER`] and speaks first (HELLO), the starter plays side B with
//!   [`ID_STARTER`]. Asymmetric rather than symmetric because the two roles are fixed by the
//!   operator's commands anyway, and the side byte stops a message being reflected back to its
//!   sender. The password is the code's 8 ASCII digits.
//! - HKDF-SHA256 over the SPAKE2 key, salted with both nonces, gives the confirmation key, the
//!   32-byte pair key and the 64-bit pair id (never 0: 0 means "not paired" in the config).
//! - Each confirmation tag is HMAC-SHA256(confirmation key, label || every datagram of the
//!   exchange so far, the tagged one without its tag), checked in constant time by `hmac`'s
//!   `verify_slice`. Messages have fixed lengths, so the concatenation is unambiguous.
//! - [`SeedRng`]: the caller injects randomness as 32-byte seeds; this expands one into the
//!   stream SPAKE2 and the nonces draw from (HMAC-SHA256 of the seed over a counter).

use core::convert::Infallible;
use core::fmt;

use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use rand_core::{TryCryptoRng, TryRng};
use sha2::Sha256;
use spake2::{Ed25519Group, Identity, Password, Spake2};
use tandem_wire::pairing::{Nonce, SpakeMessage, Tag, NONCE_LEN, SPAKE_MSG_LEN, TAG_LEN};

use crate::code::PairingCode;

/// SPAKE2 identity A: the joiner's.
pub const ID_JOINER: &[u8] = b"tandem-joiner";
/// SPAKE2 identity B: the starter's.
pub const ID_STARTER: &[u8] = b"tandem-starter";

/// Tag label of the starter's confirmation (in REPLY).
pub(crate) const LABEL_REPLY: &[u8] = b"tandem-pair v1 starter confirmation";
/// Tag label of the joiner's confirmation (in CONFIRM).
pub(crate) const LABEL_CONFIRM: &[u8] = b"tandem-pair v1 joiner confirmation";
/// Tag label of a "paired" RESULT.
pub(crate) const LABEL_RESULT: &[u8] = b"tandem-pair v1 result";

const INFO_CONFIRM: &[u8] = b"tandem-pair v1 confirmation key";
const INFO_PAIR_KEY: &[u8] = b"tandem-pair v1 pair key";
const INFO_PAIR_ID: &[u8] = b"tandem-pair v1 pair id";
const DRBG_LABEL: &[u8] = b"tandem-pair v1 seed stream";

type HmacSha256 = Hmac<Sha256>;

/// A deterministic CSPRNG from a 32-byte seed: block `i` is HMAC-SHA256(seed, label || i).
/// Used so the state machines take randomness from the caller instead of reading the OS.
/// Crate-private, so its `Clone` (a starter draws from a copy it keeps only on success) cannot
/// duplicate a stream outside.
#[derive(Clone)]
pub(crate) struct SeedRng {
    seed: [u8; 32],
    counter: u64,
    block: [u8; 32],
    used: usize,
}

impl SeedRng {
    /// A stream from `seed` (which must come from a cryptographic source).
    pub(crate) fn new(seed: [u8; 32]) -> SeedRng {
        SeedRng {
            seed,
            counter: 0,
            block: [0; 32],
            used: 32,
        }
    }

    fn refill(&mut self) {
        self.block = hmac_parts(&self.seed, &[DRBG_LABEL, &self.counter.to_be_bytes()]);
        self.counter = self.counter.wrapping_add(1);
        self.used = 0;
    }

    /// Fills `out` from the stream.
    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        for byte in out {
            if self.used >= self.block.len() {
                self.refill();
            }
            *byte = self.block.get(self.used).copied().unwrap_or(0);
            self.used += 1;
        }
    }

    /// 32 fresh bytes (the seed of a sub-stream).
    pub(crate) fn seed32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        self.fill(&mut out);
        out
    }

    /// A nonce, never all-zero (the codec refuses those).
    pub(crate) fn nonce(&mut self) -> Nonce {
        let mut out = [0u8; NONCE_LEN];
        self.fill(&mut out);
        if out.iter().all(|b| *b == 0) {
            out[0] = 1;
        }
        out
    }
}

impl fmt::Debug for SeedRng {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SeedRng { .. }")
    }
}

impl TryRng for SeedRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0u8; 4];
        self.fill(&mut bytes);
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0u8; 8];
        self.fill(&mut bytes);
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        self.fill(dst);
        Ok(())
    }
}

impl TryCryptoRng for SeedRng {}

fn hmac_parts(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut out = [0u8; 32];
    // Any key length is a valid HMAC key: the error branch is unreachable and would leave a
    // zero output that no tag check accepts.
    if let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(key) {
        for part in parts {
            mac.update(part);
        }
        out.copy_from_slice(&mac.finalize().into_bytes());
    }
    out
}

/// The SPAKE2 side the joiner plays, started deterministically from `seed` (so the same seed
/// gives the same message: a refused REPLY can be retried without losing the secret).
pub(crate) fn joiner_spake(
    code: PairingCode,
    seed: [u8; 32],
) -> (Spake2<Ed25519Group>, SpakeMessage) {
    let (state, message) = Spake2::<Ed25519Group>::start_a_with_rng(
        &Password::new(code.digits()),
        &Identity::new(ID_JOINER),
        &Identity::new(ID_STARTER),
        SeedRng::new(seed),
    );
    (state, to_message(&message))
}

/// The SPAKE2 side the starter plays, from `seed`.
pub(crate) fn starter_spake(
    code: PairingCode,
    seed: [u8; 32],
) -> (Spake2<Ed25519Group>, SpakeMessage) {
    let (state, message) = Spake2::<Ed25519Group>::start_b_with_rng(
        &Password::new(code.digits()),
        &Identity::new(ID_JOINER),
        &Identity::new(ID_STARTER),
        SeedRng::new(seed),
    );
    (state, to_message(&message))
}

fn to_message(bytes: &[u8]) -> SpakeMessage {
    // spake2's Ed25519 messages are always 33 bytes (checked by a test); anything else would
    // leave a zero side byte that the codec refuses to emit.
    <SpakeMessage>::try_from(bytes).unwrap_or([0; SPAKE_MSG_LEN])
}

/// What one exchange derives from the SPAKE2 key.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Keys {
    pub confirm: [u8; 32],
    pub pair_key: [u8; 32],
    pub pair_id: u64,
}

impl fmt::Debug for Keys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keys {{ pair_id: {:016x}, .. }}", self.pair_id)
    }
}

/// HKDF-SHA256(salt = joiner nonce || starter nonce, ikm = SPAKE2 key).
pub(crate) fn derive(spake_key: &[u8], joiner_nonce: &Nonce, starter_nonce: &Nonce) -> Keys {
    let mut salt = [0u8; 2 * NONCE_LEN];
    salt[..NONCE_LEN].copy_from_slice(joiner_nonce);
    salt[NONCE_LEN..].copy_from_slice(starter_nonce);
    let hkdf = Hkdf::<Sha256>::new(Some(&salt), spake_key);
    let mut confirm = [0u8; 32];
    let mut pair_key = [0u8; 32];
    let mut pair_id = [0u8; 8];
    // 32 and 8 bytes are far below HKDF-SHA256's 8160-byte limit: these cannot fail.
    let expanded = hkdf.expand(INFO_CONFIRM, &mut confirm).is_ok()
        && hkdf.expand(INFO_PAIR_KEY, &mut pair_key).is_ok()
        && hkdf.expand(INFO_PAIR_ID, &mut pair_id).is_ok();
    debug_assert!(expanded);
    Keys {
        confirm,
        pair_key,
        pair_id: u64::from_be_bytes(pair_id).max(1),
    }
}

/// HMAC-SHA256(key, label || parts...).
pub(crate) fn tag(key: &[u8; 32], label: &[u8], parts: &[&[u8]]) -> Tag {
    let mut mac = match <HmacSha256 as KeyInit>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return [0; TAG_LEN],
    };
    mac.update(label);
    for part in parts {
        mac.update(part);
    }
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(&mac.finalize().into_bytes());
    out
}

/// Checks `expected` against HMAC-SHA256(key, label || parts...) in constant time.
pub(crate) fn verify(key: &[u8; 32], label: &[u8], parts: &[&[u8]], expected: &Tag) -> bool {
    let Ok(mut mac) = <HmacSha256 as KeyInit>::new_from_slice(key) else {
        return false;
    };
    mac.update(label);
    for part in parts {
        mac.update(part);
    }
    mac.verify_slice(expected).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spake_messages_are_33_bytes_and_agree_on_the_key() {
        let code = PairingCode::new(12_345_678).unwrap();
        let (joiner, to_starter) = joiner_spake(code, [1; 32]);
        let (starter, to_joiner) = starter_spake(code, [2; 32]);
        assert_eq!(to_starter[0], b'A');
        assert_eq!(to_joiner[0], b'B');
        // Deterministic from the seed.
        assert_eq!(joiner_spake(code, [1; 32]).1, to_starter);
        let k1 = joiner.finish(&to_joiner).unwrap();
        let k2 = starter.finish(&to_starter).unwrap();
        assert_eq!(k1, k2);
        let keys = derive(&k1, &[3; 16], &[4; 16]);
        assert_ne!(keys.pair_id, 0);
        assert_ne!(keys.confirm, keys.pair_key);
        let t = tag(&keys.confirm, LABEL_REPLY, &[b"x", b"y"]);
        assert!(verify(&keys.confirm, LABEL_REPLY, &[b"xy"], &t));
        assert!(!verify(&keys.confirm, LABEL_CONFIRM, &[b"xy"], &t));
    }

    #[test]
    fn a_wrong_code_gives_another_key() {
        let (joiner, to_starter) = joiner_spake(PairingCode::new(1).unwrap(), [1; 32]);
        let (starter, to_joiner) = starter_spake(PairingCode::new(2).unwrap(), [2; 32]);
        assert_ne!(
            joiner.finish(&to_joiner).unwrap(),
            starter.finish(&to_starter).unwrap()
        );
    }

    #[test]
    fn the_seed_stream_is_deterministic_and_not_the_seed() {
        let mut a = SeedRng::new([9; 32]);
        let mut b = SeedRng::new([9; 32]);
        let (mut x, mut y) = ([0u8; 70], [0u8; 70]);
        a.fill(&mut x[..5]);
        a.fill(&mut x[5..]);
        b.fill(&mut y);
        assert_eq!(x, y);
        assert_ne!(&x[..32], &[9; 32]);
        assert_ne!(x[..32], x[32..64]);
    }
}
