//! The config blob encrypted in transit: a config can hold secrets (VRRP passwords, notify
//! credentials), and the peer cable is a cable anyone can tap, so a blob crosses it only
//! sealed with ChaCha20-Poly1305 (RFC 8439) under a key derived from the pair key.
//!
//! Key: HKDF-SHA256(pair key, info "tandem blob transfer v1"), never the pair key itself (that
//! one MACs the datagrams and frames). Nonce: the connection's 16-byte challenge nonce cut to
//! 12 bytes with the direction in its first byte, so the one blob each way of a connection
//! never shares a (key, nonce) pair; the server issues a fresh random challenge per
//! connection. Associated data: the pair id, so a blob sealed for another pair never opens.
//!
//! A crate of its own for one reason: it is compiled at opt-level 3 while the appliance binary
//! is built at "z". The AEAD is generic all the way down, so its code is generated in the crate
//! that names the concrete cipher; at "z" that code keeps every SIMD intrinsic out of line and
//! seals ~80 MB/s (2.5 ms per 1000 x 10 blob, each side); here it runs ~800 MB/s.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use hkdf::Hkdf;
use sha2::Sha256;

/// Which way a blob travels on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// The client's PUSH (replication, `pair push`).
    ToServer,
    /// The server's answer to a pull (`pair adopt-peer`, `compare peer`).
    ToClient,
}

/// The envelope's magic: a config blob never starts with it (blobs start with their own).
const CREDENTIAL_MAGIC: &[u8; 4] = b"TDPW";
/// The longest admin password hash an envelope carries (as the identity region keeps).
const MAX_CREDENTIAL: usize = tandem_config::identity::MAX_CREDENTIAL_BYTES;

/// What is sealed: the console's admin password hash travels with the config, so a paired box
/// takes its partner's password with its partner's config ("TDPW", u16 length, the PHC string,
/// then the blob); without a hash, the blob alone. Inside the AEAD: never seen on the cable.
pub fn wrap(credential: Option<&str>, blob: &[u8]) -> Vec<u8> {
    let Some(hash) = credential.filter(|h| !h.is_empty() && h.len() <= MAX_CREDENTIAL) else {
        return blob.to_vec();
    };
    let mut out = Vec::with_capacity(6 + hash.len() + blob.len());
    out.extend_from_slice(CREDENTIAL_MAGIC);
    out.extend_from_slice(&u16::try_from(hash.len()).unwrap_or(0).to_le_bytes());
    out.extend_from_slice(hash.as_bytes());
    out.extend_from_slice(blob);
    out
}

/// The hash (if the payload carries one) and the blob; a malformed envelope is refused.
pub fn unwrap(mut payload: Vec<u8>) -> Result<(Option<String>, Vec<u8>), &'static str> {
    if !payload.starts_with(CREDENTIAL_MAGIC) {
        return Ok((None, payload));
    }
    let length = payload
        .get(4..6)
        .map(|b| usize::from(u16::from_le_bytes([b[0], b[1]])))
        .ok_or("truncated password envelope")?;
    if length == 0 || length > MAX_CREDENTIAL || payload.len() < 6 + length {
        return Err("malformed password envelope");
    }
    let hash = core::str::from_utf8(&payload[6..6 + length])
        .map_err(|_| "password hash not text")?
        .to_owned();
    let blob = payload.split_off(6 + length);
    Ok((Some(hash), blob))
}

/// Bytes a sealed blob adds (the Poly1305 tag).
#[cfg(test)]
const TAG_LEN: usize = 16;

fn cipher(pair_key: &[u8; 32]) -> ChaCha20Poly1305 {
    let mut key = [0u8; 32];
    // 32 bytes is far below HKDF-SHA256's 8160-byte limit: `expand` cannot fail.
    let _ = Hkdf::<Sha256>::new(None, pair_key).expand(b"tandem blob transfer v1", &mut key);
    ChaCha20Poly1305::new(&key.into())
}

fn nonce(challenge: &[u8; 16], direction: Direction) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&challenge[..12]);
    nonce[0] ^= match direction {
        Direction::ToServer => 0x01,
        Direction::ToClient => 0x02,
    };
    nonce
}

/// `blob` sealed for the partner.
pub fn seal(
    pair_key: &[u8; 32],
    pair_id: u64,
    challenge: &[u8; 16],
    direction: Direction,
    blob: &[u8],
) -> Result<Vec<u8>, &'static str> {
    let aad = pair_id.to_be_bytes();
    cipher(pair_key)
        .encrypt(
            &nonce(challenge, direction).into(),
            Payload {
                msg: blob,
                aad: &aad,
            },
        )
        .map_err(|_| "the blob cannot be sealed")
}

/// The blob inside `sealed`, or why not (wrong key, pair, nonce, or altered bytes).
pub fn open(
    pair_key: &[u8; 32],
    pair_id: u64,
    challenge: &[u8; 16],
    direction: Direction,
    sealed: &[u8],
) -> Result<Vec<u8>, &'static str> {
    let aad = pair_id.to_be_bytes();
    cipher(pair_key)
        .decrypt(
            &nonce(challenge, direction).into(),
            Payload {
                msg: sealed,
                aad: &aad,
            },
        )
        .map_err(|_| "sealed blob does not open")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_carries_the_hash_and_leaves_a_bare_blob_alone() {
        let blob = b"TNDMblob-bytes".to_vec();
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
        let wrapped = wrap(Some(hash), &blob);
        assert_eq!(
            unwrap(wrapped).unwrap(),
            (Some(hash.to_owned()), blob.clone())
        );
        assert_eq!(unwrap(wrap(None, &blob)).unwrap(), (None, blob.clone()));
        let mut truncated = wrap(Some(hash), &blob);
        truncated.truncate(10);
        assert!(unwrap(truncated).is_err());
        assert!(unwrap(b"TDPW".to_vec()).is_err());
        let mut zero = b"TDPW\0\0".to_vec();
        zero.extend_from_slice(&blob);
        assert!(unwrap(zero).is_err());
    }

    #[test]
    fn a_sealed_blob_opens_only_with_its_key_pair_nonce_and_direction() {
        let key = [7u8; 32];
        let challenge = [3u8; 16];
        let blob = b"[vrrp.auth]\npass = \"topSecre\"\n";
        let sealed = seal(&key, 9, &challenge, Direction::ToServer, blob).unwrap();
        assert_eq!(sealed.len(), blob.len() + TAG_LEN);
        assert!(!sealed.windows(8).any(|w| w == b"topSecre"));
        assert_eq!(
            open(&key, 9, &challenge, Direction::ToServer, &sealed).unwrap(),
            blob
        );
        assert!(open(&[8u8; 32], 9, &challenge, Direction::ToServer, &sealed).is_err());
        assert!(open(&key, 10, &challenge, Direction::ToServer, &sealed).is_err());
        assert!(open(&key, 9, &[4u8; 16], Direction::ToServer, &sealed).is_err());
        assert!(open(&key, 9, &challenge, Direction::ToClient, &sealed).is_err());
        let mut flipped = sealed.clone();
        flipped[0] ^= 1;
        assert!(open(&key, 9, &challenge, Direction::ToServer, &flipped).is_err());
        assert!(open(&key, 9, &challenge, Direction::ToServer, &sealed[..5]).is_err());
    }
}
