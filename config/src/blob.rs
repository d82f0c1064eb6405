//! The config blob: what is stored on flash and sent to the partner box.
//!
//! ```text
//! offset  size  field
//!      0     4  magic "TNDC"
//!      4     2  format version, little endian (this firmware writes 4 to 6, reads 1 to 6)
//!      6     2  flags: bit 0 = the MAC slot holds a keyed MAC
//!      8     8  generation (every commit increments it)
//!     16     8  parent generation (the generation the edit started from)
//!     24     8  pair id (0 before pairing)
//!     32     4  payload length N
//!     36     N  payload: format 1: the model in postcard;
//!                        format 2 and 3: the model, then the commit history, each in postcard
//!                        (format 3's history records carry the config digest)
//!   36+N     4  CRC-32 of bytes 0..36+N
//!   40+N    32  MAC slot: HMAC-SHA256 under the pairing key of bytes 0..40+N, zeros when unkeyed
//! ```
//!
//! Decoding refuses, in this order: a buffer shorter than header plus trailer, a wrong magic, a
//! payload length above [`MAX_PAYLOAD_BYTES`] (before the payload is touched), a buffer whose
//! length disagrees with the header, a CRC mismatch, a missing or wrong MAC, an unknown format
//! version, a payload that does not decode exactly, and finally a generation older than the last
//! one the caller accepted. It never panics and allocates at most in proportion to the payload.
//!
//! Each format version is frozen by golden vectors under `tests/golden/`; when the model changes
//! incompatibly, the old version's types move to a `vN` module and [`decode`] migrates them.
//! Format 1 (no history) decodes with an empty [`History`] and `migrated_from: Some(1)`.
//! Format 3 appended `Config::pair` (the per-box halves) and `PeerLink::uplink_probes`: a change
//! of appended fields only, so instead of a `v2` copy of the model (tens of KB of the 4 MiB
//! appliance binary) one decoder reads every format, each by its layout (`layout`); formats 1
//! and 2 decode to `pair: None` and no uplink probes, with `migrated_from: Some(1)` / `Some(2)`.
//! Format 4 appended the bond options `primary_reselect`, `fail_over_mac`, `ad_select` and
//! `mtu` the same way; a format 3 blob decodes with the kernel's defaults for them.
//! Format 5 appended the management plane's `syslog` and `time_servers` and the VRRP
//! instance's `use_vmac` and `vmac_interface`; a format 4 blob decodes without them.
//! Format 6 appended `more_checks` to real servers and services and `track_checks` to VRRP
//! instances; a format 5 blob decodes with them empty.
//!
//! Writing an older format ([`encode_as`], formats 4 to 6) is for an upgrade in progress: until
//! both boxes have blessed the new firmware, a box writes what the previous firmware (or the
//! partner) reads. `layout` lays the model out per format beside its decoder; a config that
//! holds a field the format cannot (format 6's `more_checks` and `track_checks` in format 5)
//! is refused with [`BlobError::DoesNotFit`] naming it, never written without it.

use alloc::string::String;
use alloc::vec::Vec;

use hmac::{KeyInit, Mac};
use sha2::Sha256;

use crate::crc32::crc32;
use crate::history::History;
use crate::model::Config;

mod layout;

/// Blob magic.
pub const MAGIC: [u8; 4] = *b"TNDC";
/// The format version this firmware writes.
pub const FORMAT_VERSION: u16 = 6;
/// Oldest format version this firmware can read.
pub const OLDEST_FORMAT_VERSION: u16 = 1;
/// Oldest format version this firmware can write ([`encode_as`]).
pub const OLDEST_WRITTEN_FORMAT: u16 = layout::OLDEST_WRITABLE;
/// Bytes before the payload.
pub const HEADER_BYTES: usize = 36;
/// Bytes of the CRC.
pub const CRC_BYTES: usize = 4;
/// Bytes of the MAC slot.
pub const MAC_BYTES: usize = 32;
/// Bytes of header and trailer together.
pub const OVERHEAD_BYTES: usize = HEADER_BYTES + CRC_BYTES + MAC_BYTES;
/// The largest payload accepted (1 MiB: about 40,000 real servers at 20 bytes each plus services).
pub const MAX_PAYLOAD_BYTES: usize = 1 << 20;
/// The largest blob accepted.
pub const MAX_BLOB_BYTES: usize = MAX_PAYLOAD_BYTES + OVERHEAD_BYTES;

const FLAG_KEYED: u16 = 1;

/// The pairing key that signs blobs.
#[derive(Clone, PartialEq, Eq)]
pub struct MacKey(pub [u8; 32]);

impl core::fmt::Debug for MacKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("MacKey(..)")
    }
}

/// What the decoder demands of the MAC.
#[derive(Debug, Clone, Copy)]
pub enum MacPolicy<'a> {
    /// The box is paired: the blob must carry a MAC under this key.
    Require(&'a MacKey),
    /// The box is not paired: the blob must be unkeyed.
    Unkeyed,
    /// Offline inspection (`tandem config decode` on a PC): a MAC is not verified.
    /// The result says the blob was not authenticated.
    Inspect,
}

/// The fixed fields of a blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlobHeader {
    pub format_version: u16,
    pub flags: u16,
    pub generation: u64,
    pub parent_generation: u64,
    pub pair_id: u64,
    pub payload_len: u32,
}

impl BlobHeader {
    /// Whether the MAC slot holds a keyed MAC.
    pub fn is_keyed(&self) -> bool {
        self.flags & FLAG_KEYED != 0
    }

    fn emit(&self, out: &mut [u8; HEADER_BYTES]) {
        out[0..4].copy_from_slice(&MAGIC);
        out[4..6].copy_from_slice(&self.format_version.to_le_bytes());
        out[6..8].copy_from_slice(&self.flags.to_le_bytes());
        out[8..16].copy_from_slice(&self.generation.to_le_bytes());
        out[16..24].copy_from_slice(&self.parent_generation.to_le_bytes());
        out[24..32].copy_from_slice(&self.pair_id.to_le_bytes());
        out[32..36].copy_from_slice(&self.payload_len.to_le_bytes());
    }

    /// Parses the header fields of `bytes` (which must hold at least [`HEADER_BYTES`]).
    fn parse(bytes: &[u8; HEADER_BYTES]) -> BlobHeader {
        let [_, _, _, _, v0, v1, f0, f1, g0, g1, g2, g3, g4, g5, g6, g7, p0, p1, p2, p3, p4, p5, p6, p7, i0, i1, i2, i3, i4, i5, i6, i7, l0, l1, l2, l3] =
            *bytes;
        BlobHeader {
            format_version: u16::from_le_bytes([v0, v1]),
            flags: u16::from_le_bytes([f0, f1]),
            generation: u64::from_le_bytes([g0, g1, g2, g3, g4, g5, g6, g7]),
            parent_generation: u64::from_le_bytes([p0, p1, p2, p3, p4, p5, p6, p7]),
            pair_id: u64::from_le_bytes([i0, i1, i2, i3, i4, i5, i6, i7]),
            payload_len: u32::from_le_bytes([l0, l1, l2, l3]),
        }
    }
}

/// Why a blob was refused. Each message says what is wrong and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// The buffer cannot even hold the header and trailer.
    #[error("config blob is {len} bytes, shorter than the {OVERHEAD_BYTES}-byte header and trailer: the blob is truncated or this is not a Tandem config blob")]
    TooShort { len: usize },
    /// The magic is not `TNDC`.
    #[error("config blob does not start with the magic \"TNDC\": this is not a Tandem config blob (a text config goes through `tandem config check`)")]
    BadMagic,
    /// The header claims a payload above the maximum.
    #[error("config blob header claims a {claimed}-byte payload, above the {max}-byte maximum: the header is damaged or the blob was made for other firmware")]
    PayloadTooLarge { claimed: u64, max: usize },
    /// The buffer is longer or shorter than the header says.
    #[error("config blob is {actual} bytes but its header says {expected}: the blob is truncated or has trailing bytes")]
    LengthMismatch { expected: usize, actual: usize },
    /// The CRC does not match.
    #[error("config blob CRC mismatch (stored {stored:#010x}, computed {computed:#010x}): the blob is damaged; use the other storage slot or the partner's copy")]
    CrcMismatch { stored: u32, computed: u32 },
    /// A keyed MAC was required but the blob is unkeyed.
    #[error("config blob carries no MAC but this box is paired: refuse it; re-send it from the paired partner")]
    MacMissing,
    /// The blob is keyed but this box has no key.
    #[error("config blob is signed with a pairing key this box does not have: pair the boxes first (or inspect it offline with `tandem config decode`)")]
    KeyRequired,
    /// The MAC does not verify under the pairing key.
    #[error("config blob MAC does not verify under the pairing key: it was changed or comes from another pair; refuse it and re-pair if the key changed")]
    MacMismatch,
    /// The header has flag bits this firmware does not know.
    #[error("config blob has unknown header flags {flags:#06x}: it was written by newer firmware; upgrade this box")]
    UnknownFlags { flags: u16 },
    /// The format version is newer (or older) than this firmware reads.
    #[error("config blob format version {version} is not readable here (this firmware reads {oldest} to {newest}): upgrade the firmware of this box")]
    UnsupportedVersion {
        version: u16,
        oldest: u16,
        newest: u16,
    },
    /// The payload does not decode as the model.
    #[error("config blob payload does not decode ({reason}): the blob was written by incompatible firmware or is damaged")]
    Payload { reason: &'static str },
    /// The payload is too large to encode.
    #[error("config encodes to {len} bytes, above the {max}-byte maximum: remove virtual services or real servers")]
    EncodeTooLarge { len: usize, max: usize },
    /// The config holds a field that the older format it must be written in cannot hold.
    #[error("the config does not fit config format {format}, which this box writes until the upgrade is finished: {path} needs format {needs}; remove it (`delete {path}`), or finish the upgrade: both boxes must bless firmware that reads format {needs}")]
    DoesNotFit {
        format: u16,
        path: String,
        needs: u16,
    },
    /// A format this firmware does not write.
    #[error("this firmware writes config formats {oldest} to {newest}, not {format}: upgrade from firmware that reads format {oldest} or newer")]
    FormatNotWritable {
        format: u16,
        oldest: u16,
        newest: u16,
    },
    /// Older than a generation the caller already accepted: a replay or a stale copy.
    #[error("config blob generation {generation} is older than generation {last_accepted} already accepted: refusing a replayed or stale config")]
    StaleGeneration { generation: u64, last_accepted: u64 },
}

/// Header values a new blob gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlobMeta {
    pub generation: u64,
    pub parent_generation: u64,
    pub pair_id: u64,
}

/// A successfully decoded blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedBlob {
    pub header: BlobHeader,
    pub config: Config,
    /// The commit history (empty for a format 1 blob).
    pub history: History,
    /// Whether a MAC was verified under the pairing key.
    pub authenticated: bool,
    /// Whether the payload was migrated from an older format version.
    pub migrated_from: Option<u16>,
}

fn mac_of(key: &MacKey, data: &[u8]) -> [u8; MAC_BYTES] {
    // HMAC accepts keys of any length, so construction cannot fail; fall back to zeros anyway.
    let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(&key.0) else {
        return [0; MAC_BYTES];
    };
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn verify_mac(key: &MacKey, data: &[u8], tag: &[u8]) -> bool {
    let Ok(mut mac) = hmac::Hmac::<Sha256>::new_from_slice(&key.0) else {
        return false;
    };
    mac.update(data);
    mac.verify_slice(tag).is_ok()
}

/// Encodes `config` with an empty history as a blob, keyed when `key` is given.
pub fn encode(config: &Config, meta: BlobMeta, key: Option<&MacKey>) -> Result<Vec<u8>, BlobError> {
    encode_with_history(config, &History::default(), meta, key)
}

/// Encodes `config` and its commit `history` as a blob, keyed when `key` is given.
pub fn encode_with_history(
    config: &Config,
    history: &History,
    meta: BlobMeta,
    key: Option<&MacKey>,
) -> Result<Vec<u8>, BlobError> {
    let payload = postcard::to_allocvec(config).map_err(|_| BlobError::Payload {
        reason: "the model does not serialize",
    })?;
    encode_encoded_with_history(&payload, history, meta, key)
}

/// Checks that format `format` can hold `config`: [`BlobError::FormatNotWritable`] for a
/// format this firmware does not write, [`BlobError::DoesNotFit`] naming the first field the
/// format would have to drop.
pub fn check_fits(config: &Config, format: u16) -> Result<(), BlobError> {
    if !(OLDEST_WRITTEN_FORMAT..=FORMAT_VERSION).contains(&format) {
        return Err(BlobError::FormatNotWritable {
            format,
            oldest: OLDEST_WRITTEN_FORMAT,
            newest: FORMAT_VERSION,
        });
    }
    match layout::first_misfit(config, format) {
        Some(layout::Misfit { path, needs }) => Err(BlobError::DoesNotFit {
            format,
            path,
            needs,
        }),
        None => Ok(()),
    }
}

/// The payload's model part (postcard) of `config` as format `format` lays it out, refused as
/// [`check_fits`] says rather than dropping a field.
pub fn encode_config_as(config: &Config, format: u16) -> Result<Vec<u8>, BlobError> {
    check_fits(config, format)?;
    postcard::to_allocvec(&layout::ConfigOut { config, format }).map_err(|_| BlobError::Payload {
        reason: "the model does not serialize",
    })
}

/// [`encode`] as format `format` (an older format while an upgrade is not finished).
pub fn encode_as(
    config: &Config,
    meta: BlobMeta,
    key: Option<&MacKey>,
    format: u16,
) -> Result<Vec<u8>, BlobError> {
    encode_with_history_as(config, &History::default(), meta, key, format)
}

/// [`encode_with_history`] as format `format`.
pub fn encode_with_history_as(
    config: &Config,
    history: &History,
    meta: BlobMeta,
    key: Option<&MacKey>,
    format: u16,
) -> Result<Vec<u8>, BlobError> {
    let payload = encode_config_as(config, format)?;
    encode_encoded_with_history_as(&payload, history, meta, key, format)
}

/// [`encode_with_history`] for a config already encoded (`config_payload` is the postcard of
/// the model, as [`crate::incremental::EncodedConfig`] builds it from the running config's).
pub fn encode_encoded_with_history(
    config_payload: &[u8],
    history: &History,
    meta: BlobMeta,
    key: Option<&MacKey>,
) -> Result<Vec<u8>, BlobError> {
    encode_encoded_with_history_as(config_payload, history, meta, key, FORMAT_VERSION)
}

/// [`encode_encoded_with_history`] with `config_payload` laid out as format `format` (from
/// [`encode_config_as`]); the history is laid out alike in every format this firmware writes.
pub fn encode_encoded_with_history_as(
    config_payload: &[u8],
    history: &History,
    meta: BlobMeta,
    key: Option<&MacKey>,
    format: u16,
) -> Result<Vec<u8>, BlobError> {
    if !(OLDEST_WRITTEN_FORMAT..=FORMAT_VERSION).contains(&format) {
        return Err(BlobError::FormatNotWritable {
            format,
            oldest: OLDEST_WRITTEN_FORMAT,
            newest: FORMAT_VERSION,
        });
    }
    // Room for a full history too, so the blob is built in place with one copy of the model.
    let room = HEADER_BYTES + config_payload.len() + 8 * 1024 + CRC_BYTES + MAC_BYTES;
    let mut out = Vec::with_capacity(room);
    out.extend_from_slice(&[0; HEADER_BYTES]);
    out.extend_from_slice(config_payload);
    out = postcard::to_extend(history, out).map_err(|_| BlobError::Payload {
        reason: "the history does not serialize",
    })?;
    let payload_len = out.len() - HEADER_BYTES;
    if payload_len > MAX_PAYLOAD_BYTES {
        return Err(BlobError::EncodeTooLarge {
            len: payload_len,
            max: MAX_PAYLOAD_BYTES,
        });
    }
    let header = BlobHeader {
        format_version: format,
        flags: if key.is_some() { FLAG_KEYED } else { 0 },
        generation: meta.generation,
        parent_generation: meta.parent_generation,
        pair_id: meta.pair_id,
        payload_len: u32::try_from(payload_len).map_err(|_| BlobError::EncodeTooLarge {
            len: payload_len,
            max: MAX_PAYLOAD_BYTES,
        })?,
    };
    let mut head = [0u8; HEADER_BYTES];
    header.emit(&mut head);
    if let Some(slot) = out.get_mut(..HEADER_BYTES) {
        slot.copy_from_slice(&head);
    }
    let crc = crc32(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    let mac = match key {
        Some(key) => mac_of(key, &out),
        None => [0; MAC_BYTES],
    };
    out.extend_from_slice(&mac);
    Ok(out)
}

/// Checks framing, length and CRC only, returning the header. Storage uses it to pick a slot
/// without decoding the payload.
pub fn check_integrity(bytes: &[u8]) -> Result<BlobHeader, BlobError> {
    let head: &[u8; HEADER_BYTES] = bytes
        .get(..HEADER_BYTES)
        .and_then(|h| h.try_into().ok())
        .ok_or(BlobError::TooShort { len: bytes.len() })?;
    if bytes.len() < OVERHEAD_BYTES {
        return Err(BlobError::TooShort { len: bytes.len() });
    }
    if head[0..4] != MAGIC {
        return Err(BlobError::BadMagic);
    }
    let header = BlobHeader::parse(head);
    let payload_len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
    if payload_len > MAX_PAYLOAD_BYTES {
        return Err(BlobError::PayloadTooLarge {
            claimed: u64::from(header.payload_len),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    let expected = payload_len + OVERHEAD_BYTES;
    if bytes.len() != expected {
        return Err(BlobError::LengthMismatch {
            expected,
            actual: bytes.len(),
        });
    }
    let crc_at = HEADER_BYTES + payload_len;
    let stored = bytes
        .get(crc_at..crc_at + CRC_BYTES)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
        .ok_or(BlobError::TooShort { len: bytes.len() })?;
    let computed = crc32(bytes.get(..crc_at).unwrap_or_default());
    if stored != computed {
        return Err(BlobError::CrcMismatch { stored, computed });
    }
    Ok(header)
}

/// The length of the blob at the start of `bytes` (a storage slot holds a blob plus padding),
/// judged from its header alone.
pub fn framed_len(bytes: &[u8]) -> Result<usize, BlobError> {
    let head: &[u8; HEADER_BYTES] = bytes
        .get(..HEADER_BYTES)
        .and_then(|h| h.try_into().ok())
        .ok_or(BlobError::TooShort { len: bytes.len() })?;
    if head[0..4] != MAGIC {
        return Err(BlobError::BadMagic);
    }
    let header = BlobHeader::parse(head);
    let payload_len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
    if payload_len > MAX_PAYLOAD_BYTES {
        return Err(BlobError::PayloadTooLarge {
            claimed: u64::from(header.payload_len),
            max: MAX_PAYLOAD_BYTES,
        });
    }
    Ok(payload_len + OVERHEAD_BYTES)
}

/// Checks a blob's framing, CRC, MAC (per `policy`), flags and format version without decoding
/// its payload; returns the header and whether a MAC was verified. Storage uses it to accept a
/// blob it is about to write (the payload was just encoded).
pub fn check_authentic(
    bytes: &[u8],
    policy: MacPolicy<'_>,
) -> Result<(BlobHeader, bool), BlobError> {
    let header = check_integrity(bytes)?;
    let payload_len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
    let mac_at = HEADER_BYTES + payload_len + CRC_BYTES;
    let signed = bytes.get(..mac_at).unwrap_or_default();
    let tag = bytes.get(mac_at..).unwrap_or_default();
    let authenticated = match (policy, header.is_keyed()) {
        (MacPolicy::Require(key), true) => {
            if !verify_mac(key, signed, tag) {
                return Err(BlobError::MacMismatch);
            }
            true
        }
        (MacPolicy::Require(_), false) => return Err(BlobError::MacMissing),
        (MacPolicy::Unkeyed, true) => return Err(BlobError::KeyRequired),
        (MacPolicy::Unkeyed, false) | (MacPolicy::Inspect, _) => false,
    };
    if header.flags & !FLAG_KEYED != 0 {
        return Err(BlobError::UnknownFlags {
            flags: header.flags,
        });
    }
    if !(OLDEST_FORMAT_VERSION..=FORMAT_VERSION).contains(&header.format_version) {
        return Err(BlobError::UnsupportedVersion {
            version: header.format_version,
            oldest: OLDEST_FORMAT_VERSION,
            newest: FORMAT_VERSION,
        });
    }
    Ok((header, authenticated))
}

/// Decodes and authenticates a blob. `last_accepted` is the newest generation this box already
/// accepted (None when it has accepted none); an older blob is refused.
pub fn decode(
    bytes: &[u8],
    policy: MacPolicy<'_>,
    last_accepted: Option<u64>,
) -> Result<DecodedBlob, BlobError> {
    let (header, authenticated) = check_authentic(bytes, policy)?;
    let payload_len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
    let payload = bytes
        .get(HEADER_BYTES..HEADER_BYTES + payload_len)
        .unwrap_or_default();
    let (config, history, migrated_from) = decode_payload(header.format_version, payload)?;
    if let Some(last) = last_accepted {
        if header.generation < last {
            return Err(BlobError::StaleGeneration {
                generation: header.generation,
                last_accepted: last,
            });
        }
    }
    Ok(DecodedBlob {
        header,
        config,
        history,
        authenticated,
        migrated_from,
    })
}

/// Decodes a payload of format `version`, migrating older formats to the current model.
fn decode_payload(
    version: u16,
    payload: &[u8],
) -> Result<(Config, History, Option<u16>), BlobError> {
    let reason = |error: postcard::Error| BlobError::Payload {
        reason: postcard_reason(&error),
    };
    let mut decoder = postcard::Deserializer::from_bytes(payload);
    let seed = layout::ConfigIn(version);
    match version {
        1 => {
            let config =
                serde::de::DeserializeSeed::deserialize(seed, &mut decoder).map_err(reason)?;
            if !decoder.finalize().map_err(reason)?.is_empty() {
                return Err(BlobError::Payload {
                    reason: "trailing bytes after the payload",
                });
            }
            Ok((config, History::default(), Some(1)))
        }
        2..=FORMAT_VERSION => {
            let config =
                serde::de::DeserializeSeed::deserialize(seed, &mut decoder).map_err(reason)?;
            let rest = decoder.finalize().map_err(reason)?;
            let migrated = (version < FORMAT_VERSION).then_some(version);
            let history = if version == 2 {
                decode_exact::<crate::history::HistoryV2>(rest)?.into()
            } else {
                decode_exact::<History>(rest)?
            };
            Ok((config, history, migrated))
        }
        other => Err(BlobError::UnsupportedVersion {
            version: other,
            oldest: OLDEST_FORMAT_VERSION,
            newest: FORMAT_VERSION,
        }),
    }
}

fn decode_exact<'de, T: serde::Deserialize<'de>>(payload: &'de [u8]) -> Result<T, BlobError> {
    match postcard::take_from_bytes::<T>(payload) {
        Ok((value, [])) => Ok(value),
        Ok(_) => Err(BlobError::Payload {
            reason: "trailing bytes after the payload",
        }),
        Err(error) => Err(BlobError::Payload {
            reason: postcard_reason(&error),
        }),
    }
}

fn postcard_reason(error: &postcard::Error) -> &'static str {
    use postcard::Error as E;
    match error {
        E::DeserializeUnexpectedEnd => "payload ends early",
        E::DeserializeBadVarint => "bad varint",
        E::DeserializeBadBool => "bad boolean",
        E::DeserializeBadChar | E::DeserializeBadUtf8 => "bad text",
        E::DeserializeBadOption => "bad option tag",
        E::DeserializeBadEnum => "unknown enum variant",
        E::DeserializeBadEncoding => "bad encoding",
        E::SerdeDeCustom => "a value is out of range or a list is longer than its maximum",
        _ => "malformed payload",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Config {
        let mut config = Config::default();
        config.system.hostname = "director1".try_into().unwrap();
        config
    }

    #[test]
    fn round_trip_unkeyed_and_keyed() {
        let meta = BlobMeta {
            generation: 7,
            parent_generation: 6,
            pair_id: 42,
        };
        let blob = encode(&sample(), meta, None).unwrap();
        let decoded = decode(&blob, MacPolicy::Unkeyed, None).unwrap();
        assert_eq!(decoded.config, sample());
        assert_eq!(decoded.header.generation, 7);
        assert!(!decoded.authenticated);

        let key = MacKey([9; 32]);
        let keyed = encode(&sample(), meta, Some(&key)).unwrap();
        let decoded = decode(&keyed, MacPolicy::Require(&key), Some(7)).unwrap();
        assert!(decoded.authenticated);
        assert_eq!(
            decode(&keyed, MacPolicy::Require(&MacKey([8; 32])), None),
            Err(BlobError::MacMismatch)
        );
        assert_eq!(
            decode(&blob, MacPolicy::Require(&key), None),
            Err(BlobError::MacMissing)
        );
        assert_eq!(
            decode(&keyed, MacPolicy::Unkeyed, None),
            Err(BlobError::KeyRequired)
        );
        assert!(decode(&keyed, MacPolicy::Inspect, None).is_ok());
    }

    #[test]
    fn refuses_stale_generation() {
        let blob = encode(
            &sample(),
            BlobMeta {
                generation: 3,
                ..BlobMeta::default()
            },
            None,
        )
        .unwrap();
        assert_eq!(
            decode(&blob, MacPolicy::Unkeyed, Some(4)),
            Err(BlobError::StaleGeneration {
                generation: 3,
                last_accepted: 4
            })
        );
        assert!(decode(&blob, MacPolicy::Unkeyed, Some(3)).is_ok());
    }

    #[test]
    fn refuses_huge_length_before_payload() {
        let mut blob = encode(&sample(), BlobMeta::default(), None).unwrap();
        blob[32..36].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            decode(&blob, MacPolicy::Inspect, None),
            Err(BlobError::PayloadTooLarge { .. })
        ));
    }

    #[test]
    fn refuses_newer_version_after_crc() {
        let mut blob = encode(&sample(), BlobMeta::default(), None).unwrap();
        let newer = FORMAT_VERSION + 1;
        blob[4..6].copy_from_slice(&newer.to_le_bytes());
        let crc_at = blob.len() - MAC_BYTES - CRC_BYTES;
        let crc = crc32(&blob[..crc_at]);
        blob[crc_at..crc_at + 4].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(
            decode(&blob, MacPolicy::Inspect, None),
            Err(BlobError::UnsupportedVersion { version, .. }) if version == newer
        ));
    }
}
