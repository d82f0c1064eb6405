//! The pair identity: which box of the pair this is (its role), the pair id and the pair key.
//!
//! Pairing (`pair start` / `pair join CODE`) produces it; it is stored on the box's own config
//! disk *apart from* the replicated blob (the blob travels to the partner, the key must not),
//! right after the two config slots, in two copies written alternately like the slots: a power
//! cut leaves the old record or the new one. `unpair` writes a record with no role.
//!
//! ```text
//! offset  size  field (one copy; the second copy starts IDENTITY_COPY_BYTES later)
//!      0     4  magic "TDID"
//!      4     2  version (1), little endian like the blob header
//!      6     8  sequence: grows with every write; the valid copy with the larger one wins
//!     14     1  role: 0 unpaired, 1 a, 2 b
//!     15     1  reserved (0)
//!     16     8  pair id
//!     24    32  pair key (HMAC-SHA256 of the blob and of every peer datagram)
//!     56     8  paired at, seconds since the Unix epoch (0: unknown)
//!     64     4  CRC-32 of bytes 0..64
//! ```

use core::fmt;

use crate::crc32::crc32;
use crate::model::Role;
use crate::storage::{BlockDevice, DeviceError};

/// Bytes of one copy (a sector multiple, so a torn write damages one copy only).
pub const IDENTITY_COPY_BYTES: u64 = 4096;
/// Bytes the identity needs on the device after the config slots.
pub const IDENTITY_BYTES: u64 = 2 * IDENTITY_COPY_BYTES;
const RECORD_BYTES: usize = 68;
const MAGIC: [u8; 4] = *b"TDID";
const VERSION: u16 = 1;

/// What pairing gave this box.
#[derive(Clone, PartialEq, Eq)]
pub struct PairIdentity {
    pub role: Role,
    pub pair_id: u64,
    pub key: [u8; 32],
    pub paired_at_unix_s: u64,
}

impl fmt::Debug for PairIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the key.
        f.debug_struct("PairIdentity")
            .field("role", &self.role)
            .field("pair_id", &format_args!("{:016x}", self.pair_id))
            .field("paired_at_unix_s", &self.paired_at_unix_s)
            .finish_non_exhaustive()
    }
}

/// Why the identity could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    #[error("the config disk holds {capacity} bytes, but the pair identity needs {needed}: give the config disk at least {needed} bytes")]
    TooSmall { capacity: u64, needed: u64 },
    #[error("config disk: {0}")]
    Device(DeviceError),
}

impl From<DeviceError> for IdentityError {
    fn from(error: DeviceError) -> Self {
        IdentityError::Device(error)
    }
}

/// The two identity copies at `base` on a device.
#[derive(Debug)]
pub struct IdentityStore<D> {
    device: D,
    base: u64,
    /// The sequence of the newest valid copy and which copy it is.
    newest: Option<(u64, usize)>,
}

struct Record {
    sequence: u64,
    identity: Option<PairIdentity>,
}

fn encode(sequence: u64, identity: Option<&PairIdentity>) -> [u8; RECORD_BYTES] {
    let mut out = [0u8; RECORD_BYTES];
    out[0..4].copy_from_slice(&MAGIC);
    out[4..6].copy_from_slice(&VERSION.to_le_bytes());
    out[6..14].copy_from_slice(&sequence.to_le_bytes());
    if let Some(identity) = identity {
        out[14] = match identity.role {
            Role::A => 1,
            Role::B => 2,
        };
        out[16..24].copy_from_slice(&identity.pair_id.to_le_bytes());
        out[24..56].copy_from_slice(&identity.key);
        out[56..64].copy_from_slice(&identity.paired_at_unix_s.to_le_bytes());
    }
    let crc = crc32(&out[..64]);
    out[64..68].copy_from_slice(&crc.to_le_bytes());
    out
}

fn le_u64(bytes: &[u8]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes.get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(word)
}

/// A valid record, or None for anything else (erased, torn, foreign, newer version).
fn decode(bytes: &[u8; RECORD_BYTES]) -> Option<Record> {
    if bytes[0..4] != MAGIC || bytes[4..6] != VERSION.to_le_bytes() {
        return None;
    }
    if crc32(&bytes[..64]).to_le_bytes() != bytes[64..68] {
        return None;
    }
    let role = match bytes[14] {
        0 => None,
        1 => Some(Role::A),
        2 => Some(Role::B),
        _ => return None,
    };
    let identity = role.map(|role| {
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes[24..56]);
        PairIdentity {
            role,
            pair_id: le_u64(&bytes[16..24]),
            key,
            paired_at_unix_s: le_u64(&bytes[56..64]),
        }
    });
    Some(Record {
        sequence: le_u64(&bytes[6..14]),
        identity,
    })
}

impl<D: BlockDevice> IdentityStore<D> {
    /// The identity region starting at `base` (after the config slots: `2 * slot_bytes`).
    pub fn new(device: D, base: u64) -> Self {
        IdentityStore {
            device,
            base,
            newest: None,
        }
    }

    fn offset(&self, copy: usize) -> u64 {
        self.base + IDENTITY_COPY_BYTES * copy as u64
    }

    fn check_room(&mut self) -> Result<(), IdentityError> {
        let capacity = self.device.capacity()?;
        let needed = self.base + IDENTITY_BYTES;
        if capacity < needed {
            return Err(IdentityError::TooSmall { capacity, needed });
        }
        Ok(())
    }

    /// The stored identity (None: never paired, or unpaired). A damaged copy is skipped; a
    /// device too small to hold the region reads as unpaired.
    pub fn load(&mut self) -> Result<Option<PairIdentity>, IdentityError> {
        if self.check_room().is_err() {
            self.newest = None;
            return Ok(None);
        }
        let mut best: Option<(Record, usize)> = None;
        for copy in 0..2 {
            let mut bytes = [0u8; RECORD_BYTES];
            self.device.read_at(self.offset(copy), &mut bytes)?;
            if let Some(record) = decode(&bytes) {
                if best
                    .as_ref()
                    .is_none_or(|(b, _)| record.sequence > b.sequence)
                {
                    best = Some((record, copy));
                }
            }
        }
        self.newest = best.as_ref().map(|(r, copy)| (r.sequence, *copy));
        Ok(best.and_then(|(record, _)| record.identity))
    }

    /// Stores `identity` (None: unpaired) in the copy that does not hold the newest record.
    pub fn save(&mut self, identity: Option<&PairIdentity>) -> Result<(), IdentityError> {
        self.check_room()?;
        if self.newest.is_none() {
            self.load()?;
        }
        let (sequence, copy) = match self.newest {
            Some((sequence, copy)) => (sequence + 1, 1 - copy),
            None => (1, 0),
        };
        let bytes = encode(sequence, identity);
        self.device.write_at(self.offset(copy), &bytes)?;
        self.device.sync()?;
        self.newest = Some((sequence, copy));
        Ok(())
    }

    /// The device (tests "reboot" by opening it again).
    pub fn into_device(self) -> D {
        self.device
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{FaultyDevice, MemDevice};

    fn identity(role: Role) -> PairIdentity {
        PairIdentity {
            role,
            pair_id: 0x1234_5678_9abc_def0,
            key: [9; 32],
            paired_at_unix_s: 1_767_225_600,
        }
    }

    #[test]
    fn saves_alternate_and_the_newest_wins_after_a_reboot() {
        let mut store = IdentityStore::new(MemDevice::erased(4096 + 8192), 4096);
        assert_eq!(store.load().unwrap(), None);
        store.save(Some(&identity(Role::B))).unwrap();
        store.save(Some(&identity(Role::A))).unwrap();
        let mut store = IdentityStore::new(store.into_device(), 4096);
        assert_eq!(store.load().unwrap(), Some(identity(Role::A)));
        store.save(None).unwrap();
        let mut store = IdentityStore::new(store.into_device(), 4096);
        assert_eq!(store.load().unwrap(), None);
        assert!(!format!("{:?}", identity(Role::A)).contains("9, 9"));
    }

    #[test]
    fn a_device_without_room_says_how_big_it_must_be() {
        let mut store = IdentityStore::new(MemDevice::erased(4096), 4096);
        assert_eq!(store.load().unwrap(), None);
        let error = store.save(Some(&identity(Role::A))).unwrap_err();
        assert_eq!(
            error,
            IdentityError::TooSmall {
                capacity: 4096,
                needed: 4096 + 8192
            }
        );
        assert!(error.to_string().contains("at least 12288 bytes"));
    }

    #[test]
    fn a_power_cut_at_any_write_leaves_the_old_or_the_new_identity() {
        for cut_after in 0..8 {
            let mut store = IdentityStore::new(MemDevice::erased(8192), 0);
            store.save(Some(&identity(Role::A))).unwrap();
            let mut faulty = FaultyDevice::new(store.into_device(), 16);
            faulty.writes_left = Some(cut_after);
            faulty.torn_bytes = 7;
            let mut store = IdentityStore::new(faulty, 0);
            let _ = store.save(Some(&identity(Role::B)));
            let device = store.into_device().inner;
            let mut store = IdentityStore::new(device, 0);
            let loaded = store.load().unwrap();
            assert!(
                loaded == Some(identity(Role::A)) || loaded == Some(identity(Role::B)),
                "cut after {cut_after}: {loaded:?}"
            );
        }
    }

    #[test]
    fn hostile_bytes_read_as_unpaired_never_a_panic() {
        let mut device = MemDevice::erased(8192);
        let mut record = encode(5, Some(&identity(Role::A)));
        record[14] = 7;
        let crc = crc32(&record[..64]);
        record[64..68].copy_from_slice(&crc.to_le_bytes());
        device.write_at(0, &record).unwrap();
        let mut store = IdentityStore::new(device, 0);
        assert_eq!(store.load().unwrap(), None);
    }
}
