//! The pair identity: which box of the pair this is (its role), the pair id and the pair key.
//!
//! Pairing (`pair start` / `pair join CODE`) produces it; it is stored on the box's own config
//! disk *apart from* the replicated blob (the blob travels to the partner, the key must not),
//! right after the two config slots, in two copies written alternately like the slots: a power
//! cut leaves the old record or the new one. `unpair` writes a record with no role.
//!
//! Each copy also holds, at offset 512, the console's admin password hash (a PHC string; see
//! `encode_credential`), a record of its own with its own sequence, so the box's keys and its
//! password are written independently and neither ever travels in the blob.
//!
//! At offset 1024 each copy holds the box's port map (which physical port plays which role,
//! as the operator chose with `ports assign`; see `encode_port_map`), again a record of its own:
//! a hardware fact of this box, never replicated.
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

use alloc::string::String;
use alloc::vec::Vec;
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
    #[error("the password hash is {length} bytes, more than the {MAX_CREDENTIAL_BYTES} the config disk keeps: use Argon2id's standard parameters")]
    CredentialTooLong { length: usize },
    #[error("the port map holds at most {MAX_PORT_MAP_ENTRIES} entries of a role and a port id of at most {MAX_PORT_ID_BYTES} bytes: assign ports by their PCI path or MAC")]
    PortMapTooLarge,
}

impl From<DeviceError> for IdentityError {
    fn from(error: DeviceError) -> Self {
        IdentityError::Device(error)
    }
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

/// A valid record (its sequence and identity), or None for anything else (erased, torn,
/// foreign, newer version).
fn decode_identity(bytes: &[u8; RECORD_BYTES]) -> Option<(u64, Option<PairIdentity>)> {
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
    Some((le_u64(&bytes[6..14]), identity))
}

/// Where the credential record sits in each identity copy (after the identity record).
const CREDENTIAL_OFFSET: u64 = 512;
/// The longest password hash stored (a PHC string of Argon2id is about 100 bytes).
pub const MAX_CREDENTIAL_BYTES: usize = 200;
const CREDENTIAL_RECORD_BYTES: usize = 16 + MAX_CREDENTIAL_BYTES + 4;
const CREDENTIAL_MAGIC: [u8; 4] = *b"TDPW";

/// The credential record:
///
/// ```text
/// offset  size  field
///      0     4  magic "TDPW"
///      4     2  version (1)
///      6     8  sequence
///     14     2  hash length n (0: no password)
///     16   200  the hash (PHC string), n bytes, zero padded
///    216     4  CRC-32 of bytes 0..216
/// ```
fn encode_credential(sequence: u64, hash: &[u8]) -> [u8; CREDENTIAL_RECORD_BYTES] {
    let mut out = [0u8; CREDENTIAL_RECORD_BYTES];
    let body = CREDENTIAL_RECORD_BYTES - 4;
    out[0..4].copy_from_slice(&CREDENTIAL_MAGIC);
    out[4..6].copy_from_slice(&VERSION.to_le_bytes());
    out[6..14].copy_from_slice(&sequence.to_le_bytes());
    let length = hash.len().min(MAX_CREDENTIAL_BYTES);
    out[14..16].copy_from_slice(&u16::try_from(length).unwrap_or(0).to_le_bytes());
    out[16..16 + length].copy_from_slice(&hash[..length]);
    let crc = crc32(&out[..body]);
    out[body..].copy_from_slice(&crc.to_le_bytes());
    out
}

fn decode_credential(bytes: &[u8; CREDENTIAL_RECORD_BYTES]) -> Option<(u64, Option<String>)> {
    let body = CREDENTIAL_RECORD_BYTES - 4;
    if bytes[0..4] != CREDENTIAL_MAGIC || bytes[4..6] != VERSION.to_le_bytes() {
        return None;
    }
    if crc32(&bytes[..body]).to_le_bytes() != bytes[body..] {
        return None;
    }
    let length = usize::from(u16::from_le_bytes([bytes[14], bytes[15]]));
    let hash = bytes
        .get(16..16 + length)
        .filter(|_| length <= MAX_CREDENTIAL_BYTES)?;
    let hash = core::str::from_utf8(hash).ok()?;
    Some((
        le_u64(&bytes[6..14]),
        (!hash.is_empty()).then(|| String::from(hash)),
    ))
}

/// Where the port-map record sits in each identity copy (after the credential record).
const PORT_MAP_OFFSET: u64 = 1024;
/// Entries the port map holds at most (a board has four roles).
pub const MAX_PORT_MAP_ENTRIES: usize = 8;
/// The longest role word stored.
const PORT_MAP_ROLE_BYTES: usize = 8;
/// The longest port id stored (a PCI path is 12 bytes, a MAC 17).
pub const MAX_PORT_ID_BYTES: usize = 24;
const PORT_MAP_ENTRY_BYTES: usize = PORT_MAP_ROLE_BYTES + MAX_PORT_ID_BYTES;
const PORT_MAP_RECORD_BYTES: usize = 16 + MAX_PORT_MAP_ENTRIES * PORT_MAP_ENTRY_BYTES + 4;
const PORT_MAP_MAGIC: [u8; 4] = *b"TDPM";

/// The operator's port map as stored: (role word, port id) pairs such as
/// `("public", "0000:00:04.0")`. The board crate gives them meaning.
pub type PortMap = Vec<(String, String)>;

/// What the port-map record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredPortMap {
    /// Never written (or too small a device): the board profile's ports.
    Missing,
    /// Written, but neither copy passes its checks: the board profile's ports, and say so.
    Corrupt,
    /// The operator's map (empty after `ports reset`).
    Map(PortMap),
}

/// The port-map record:
///
/// ```text
/// offset  size  field
///      0     4  magic "TDPM"
///      4     2  version (1)
///      6     8  sequence
///     14     1  entries n (at most 8)
///     15     1  reserved (0)
///     16   256  8 entries of 32 bytes: role word (8 bytes), port id (24 bytes), zero padded
///    272     4  CRC-32 of bytes 0..272
/// ```
fn encode_port_map(sequence: u64, map: &[(String, String)]) -> [u8; PORT_MAP_RECORD_BYTES] {
    let mut out = [0u8; PORT_MAP_RECORD_BYTES];
    let body = PORT_MAP_RECORD_BYTES - 4;
    out[0..4].copy_from_slice(&PORT_MAP_MAGIC);
    out[4..6].copy_from_slice(&VERSION.to_le_bytes());
    out[6..14].copy_from_slice(&sequence.to_le_bytes());
    let count = map.len().min(MAX_PORT_MAP_ENTRIES);
    out[14] = u8::try_from(count).unwrap_or(0);
    for (at, (role, port)) in map.iter().take(count).enumerate() {
        let start = 16 + at * PORT_MAP_ENTRY_BYTES;
        let role = role.as_bytes();
        let port = port.as_bytes();
        let role_len = role.len().min(PORT_MAP_ROLE_BYTES);
        let port_len = port.len().min(MAX_PORT_ID_BYTES);
        out[start..start + role_len].copy_from_slice(&role[..role_len]);
        let port_at = start + PORT_MAP_ROLE_BYTES;
        out[port_at..port_at + port_len].copy_from_slice(&port[..port_len]);
    }
    let crc = crc32(&out[..body]);
    out[body..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// A zero-padded text field.
fn padded_text(bytes: &[u8]) -> Option<String> {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    if bytes[end..].iter().any(|b| *b != 0) {
        return None;
    }
    core::str::from_utf8(&bytes[..end]).ok().map(String::from)
}

fn decode_port_map(bytes: &[u8; PORT_MAP_RECORD_BYTES]) -> Option<(u64, PortMap)> {
    let body = PORT_MAP_RECORD_BYTES - 4;
    if bytes[0..4] != PORT_MAP_MAGIC || bytes[4..6] != VERSION.to_le_bytes() {
        return None;
    }
    if crc32(&bytes[..body]).to_le_bytes() != bytes[body..] {
        return None;
    }
    let count = usize::from(bytes[14]);
    if count > MAX_PORT_MAP_ENTRIES {
        return None;
    }
    let mut map = PortMap::new();
    for entry in bytes[16..body]
        .chunks_exact(PORT_MAP_ENTRY_BYTES)
        .take(count)
    {
        let role = padded_text(&entry[..PORT_MAP_ROLE_BYTES])?;
        let port = padded_text(&entry[PORT_MAP_ROLE_BYTES..])?;
        if role.is_empty() || port.is_empty() {
            return None;
        }
        map.push((role, port));
    }
    Some((le_u64(&bytes[6..14]), map))
}

/// Two copies of one fixed-size record at `offset` inside each of the two identity copies,
/// written alternately with a growing sequence: the newest valid copy wins, so a power cut
/// leaves the old record or the new one. The identity and the admin credential each use one.
#[derive(Debug)]
struct TwoCopies {
    base: u64,
    offset: u64,
    /// The sequence of the newest valid copy and which copy it is.
    newest: Option<(u64, usize)>,
}

impl TwoCopies {
    fn at(&self, copy: usize) -> u64 {
        self.base + IDENTITY_COPY_BYTES * copy as u64 + self.offset
    }

    fn has_room<D: BlockDevice>(&self, device: &mut D) -> Result<(), IdentityError> {
        let capacity = device.capacity()?;
        let needed = self.base + IDENTITY_BYTES;
        if capacity < needed {
            return Err(IdentityError::TooSmall { capacity, needed });
        }
        Ok(())
    }

    /// The newest valid record as `decode` reads it (sequence, value); None when neither copy
    /// is valid or the device has no room for the region.
    fn load<D: BlockDevice, T, const N: usize>(
        &mut self,
        device: &mut D,
        decode: impl Fn(&[u8; N]) -> Option<(u64, T)>,
    ) -> Result<Option<T>, IdentityError> {
        if self.has_room(device).is_err() {
            self.newest = None;
            return Ok(None);
        }
        let mut best: Option<(u64, T, usize)> = None;
        for copy in 0..2 {
            let mut bytes = [0u8; N];
            device.read_at(self.at(copy), &mut bytes)?;
            if let Some((sequence, value)) = decode(&bytes) {
                if best.as_ref().is_none_or(|(b, _, _)| sequence > *b) {
                    best = Some((sequence, value, copy));
                }
            }
        }
        self.newest = best.as_ref().map(|(sequence, _, copy)| (*sequence, *copy));
        Ok(best.map(|(_, value, _)| value))
    }

    /// Whether either copy starts with `magic` (a record was written there, valid or not).
    fn written<D: BlockDevice>(&self, device: &mut D, magic: [u8; 4]) -> bool {
        (0..2).any(|copy| {
            let mut bytes = [0u8; 4];
            device.read_at(self.at(copy), &mut bytes).is_ok() && bytes == magic
        })
    }

    /// Writes `encode(sequence)` into the copy that does not hold the newest record.
    fn save<D: BlockDevice, T, const N: usize>(
        &mut self,
        device: &mut D,
        decode: impl Fn(&[u8; N]) -> Option<(u64, T)>,
        encode: impl Fn(u64) -> [u8; N],
    ) -> Result<(), IdentityError> {
        self.has_room(device)?;
        // Read again first: another handle on the same disk (the console UI's, the daemon's)
        // may have written a copy since, and overwriting the newest would lose it.
        self.load(device, decode)?;
        let (sequence, copy) = match self.newest {
            Some((sequence, copy)) => (sequence + 1, 1 - copy),
            None => (1, 0),
        };
        device.write_at(self.at(copy), &encode(sequence))?;
        device.sync()?;
        self.newest = Some((sequence, copy));
        Ok(())
    }
}

/// The two identity copies at `base` on a device.
#[derive(Debug)]
pub struct IdentityStore<D> {
    device: D,
    copies: TwoCopies,
    /// The admin credential record beside the identity in each copy.
    credential: TwoCopies,
    /// The operator's port map, the third record of each copy.
    port_map: TwoCopies,
}

impl<D: BlockDevice> IdentityStore<D> {
    /// The identity region starting at `base` (after the config slots: `2 * slot_bytes`).
    pub fn new(device: D, base: u64) -> Self {
        IdentityStore {
            device,
            copies: TwoCopies {
                base,
                offset: 0,
                newest: None,
            },
            credential: TwoCopies {
                base,
                offset: CREDENTIAL_OFFSET,
                newest: None,
            },
            port_map: TwoCopies {
                base,
                offset: PORT_MAP_OFFSET,
                newest: None,
            },
        }
    }

    /// The stored identity (None: never paired, or unpaired). A damaged copy is skipped; a
    /// device too small to hold the region reads as unpaired.
    pub fn load(&mut self) -> Result<Option<PairIdentity>, IdentityError> {
        let record = self.copies.load(&mut self.device, decode_identity)?;
        Ok(record.flatten())
    }

    /// Stores `identity` (None: unpaired) in the copy that does not hold the newest record.
    pub fn save(&mut self, identity: Option<&PairIdentity>) -> Result<(), IdentityError> {
        self.copies
            .save(&mut self.device, decode_identity, |sequence| {
                encode(sequence, identity)
            })
    }

    /// The admin password hash (a PHC string such as `$argon2id$v=19$...`), None when the box
    /// has none (factory-fresh, or reset by the recovery path).
    pub fn load_credential(&mut self) -> Result<Option<String>, IdentityError> {
        let record = self.credential.load(&mut self.device, decode_credential)?;
        Ok(record.flatten())
    }

    /// Stores the admin password hash (None: removes it, so the next console session asks
    /// for a new password). A hash longer than [`MAX_CREDENTIAL_BYTES`] is refused.
    pub fn save_credential(&mut self, hash: Option<&str>) -> Result<(), IdentityError> {
        let bytes = hash.map(str::as_bytes).unwrap_or_default();
        if bytes.len() > MAX_CREDENTIAL_BYTES {
            return Err(IdentityError::CredentialTooLong {
                length: bytes.len(),
            });
        }
        self.credential
            .save(&mut self.device, decode_credential, |sequence| {
                encode_credential(sequence, bytes)
            })
    }

    /// The operator's port map. A damaged copy is skipped (the other one counts); with both
    /// damaged the record reads [`StoredPortMap::Corrupt`] and the board profile's ports apply.
    pub fn load_port_map(&mut self) -> Result<StoredPortMap, IdentityError> {
        match self.port_map.load(&mut self.device, decode_port_map)? {
            Some(map) => Ok(StoredPortMap::Map(map)),
            None if self.port_map.written(&mut self.device, PORT_MAP_MAGIC) => {
                Ok(StoredPortMap::Corrupt)
            }
            None => Ok(StoredPortMap::Missing),
        }
    }

    /// Stores the port map (empty: the board profile's ports) in the copy that does not hold
    /// the newest record, after reading both again. At most [`MAX_PORT_MAP_ENTRIES`] entries of
    /// a role word up to 8 bytes and a port id up to [`MAX_PORT_ID_BYTES`].
    pub fn save_port_map(&mut self, map: &[(String, String)]) -> Result<(), IdentityError> {
        let too_long = map
            .iter()
            .any(|(role, port)| role.len() > PORT_MAP_ROLE_BYTES || port.len() > MAX_PORT_ID_BYTES);
        if map.len() > MAX_PORT_MAP_ENTRIES
            || too_long
            || map.iter().any(|(r, p)| r.is_empty() || p.is_empty())
        {
            return Err(IdentityError::PortMapTooLarge);
        }
        self.port_map
            .save(&mut self.device, decode_port_map, |sequence| {
                encode_port_map(sequence, map)
            })
    }

    /// Erases the whole identity region (pair key and role, admin credential, port map): both
    /// copies of every record become 0xFF, what a factory-fresh device reads, synced. The next
    /// boot is unpaired, asks for a new admin password and uses the board profile's ports. A
    /// device without room for the region holds nothing to erase.
    pub fn erase(&mut self) -> Result<(), IdentityError> {
        if self.copies.has_room(&mut self.device).is_err() {
            return Ok(());
        }
        for record in [&mut self.copies, &mut self.credential, &mut self.port_map] {
            record.newest = None;
        }
        // Both copies: 8 KiB.
        let erased = [0xFF_u8; 2 * 4096];
        debug_assert_eq!(erased.len() as u64, IDENTITY_BYTES);
        self.device.write_at(self.copies.base, &erased)?;
        self.device.sync()?;
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
    fn erase_forgets_identity_credential_and_port_map_and_nothing_outside_the_region() {
        // The region at 4096 on a device with bytes before and after it.
        let mut device = MemDevice::erased(4096 + 8192 + 512);
        device.bytes[..4096].fill(0x11);
        device.bytes[4096 + 8192..].fill(0x22);
        let mut store = IdentityStore::new(device, 4096);
        store.save(Some(&identity(Role::A))).unwrap();
        store.save(Some(&identity(Role::B))).unwrap();
        store.save_credential(Some("$argon2id$v=19$x")).unwrap();
        let ports = [("peer".to_owned(), "eth3".to_owned())];
        store.save_port_map(&ports).unwrap();
        store.erase().unwrap();
        // At once and after a "reboot": nothing of it is left.
        assert_eq!(store.load().unwrap(), None);
        assert_eq!(store.load_credential().unwrap(), None);
        let device = store.into_device();
        assert!(device.bytes[4096..4096 + 8192].iter().all(|b| *b == 0xFF));
        assert!(device.bytes[..4096].iter().all(|b| *b == 0x11));
        assert!(device.bytes[4096 + 8192..].iter().all(|b| *b == 0x22));
        let mut store = IdentityStore::new(device, 4096);
        assert_eq!(store.load().unwrap(), None);
        assert_eq!(store.load_credential().unwrap(), None);
        assert_eq!(store.load_port_map().unwrap(), StoredPortMap::Missing);
        // Usable again afterwards.
        store.save(Some(&identity(Role::A))).unwrap();
        assert_eq!(store.load().unwrap(), Some(identity(Role::A)));
        // Too small a device: nothing to erase, no error.
        IdentityStore::new(MemDevice::erased(4096), 4096)
            .erase()
            .unwrap();
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
    fn the_credential_lives_beside_the_identity_and_survives_its_writes() {
        let mut store = IdentityStore::new(MemDevice::erased(4096 + 8192), 4096);
        assert_eq!(store.load_credential().unwrap(), None);
        let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";
        store.save_credential(Some(hash)).unwrap();
        store.save(Some(&identity(Role::A))).unwrap();
        store.save(None).unwrap();
        let mut store = IdentityStore::new(store.into_device(), 4096);
        assert_eq!(store.load_credential().unwrap().as_deref(), Some(hash));
        assert_eq!(store.load().unwrap(), None);
        store.save_credential(None).unwrap();
        let mut store = IdentityStore::new(store.into_device(), 4096);
        assert_eq!(store.load_credential().unwrap(), None);
        let long = "x".repeat(MAX_CREDENTIAL_BYTES + 1);
        assert!(matches!(
            store.save_credential(Some(&long)),
            Err(IdentityError::CredentialTooLong { .. })
        ));
    }

    #[test]
    fn a_power_cut_leaves_the_old_or_the_new_credential() {
        for cut_after in 0..8 {
            let mut store = IdentityStore::new(MemDevice::erased(8192), 0);
            store.save_credential(Some("old")).unwrap();
            let mut faulty = FaultyDevice::new(store.into_device(), 16);
            faulty.writes_left = Some(cut_after);
            faulty.torn_bytes = 7;
            let mut store = IdentityStore::new(faulty, 0);
            let _ = store.save_credential(Some("new"));
            let mut store = IdentityStore::new(store.into_device().inner, 0);
            let loaded = store.load_credential().unwrap();
            assert!(
                matches!(loaded.as_deref(), Some("old" | "new")),
                "cut after {cut_after}: {loaded:?}"
            );
        }
    }

    fn port_map(pairs: &[(&str, &str)]) -> PortMap {
        pairs
            .iter()
            .map(|(role, port)| (String::from(*role), String::from(*port)))
            .collect()
    }

    #[test]
    fn the_port_map_round_trips_beside_the_identity_and_the_credential() {
        let mut store = IdentityStore::new(MemDevice::erased(4096 + 8192), 4096);
        assert_eq!(store.load_port_map().unwrap(), StoredPortMap::Missing);
        let map = port_map(&[
            ("public", "0000:00:04.0"),
            ("private", "0000:00:03.0"),
            ("mgmt", "52:54:00:1a:01:04"),
        ]);
        store.save_credential(Some("hash")).unwrap();
        store.save_port_map(&map).unwrap();
        store.save(Some(&identity(Role::A))).unwrap();
        store.save_credential(Some("hash2")).unwrap();
        let mut store = IdentityStore::new(store.into_device(), 4096);
        assert_eq!(store.load_port_map().unwrap(), StoredPortMap::Map(map));
        assert_eq!(store.load_credential().unwrap().as_deref(), Some("hash2"));
        assert_eq!(store.load().unwrap(), Some(identity(Role::A)));
        // `ports reset`: an empty map, the board profile's ports.
        store.save_port_map(&[]).unwrap();
        let mut store = IdentityStore::new(store.into_device(), 4096);
        assert_eq!(
            store.load_port_map().unwrap(),
            StoredPortMap::Map(PortMap::new())
        );
    }

    #[test]
    fn a_port_map_that_does_not_fit_is_refused() {
        let mut store = IdentityStore::new(MemDevice::erased(8192), 0);
        let long = port_map(&[("public", "0000:00:04.0-and-much-more-than-24")]);
        assert_eq!(
            store.save_port_map(&long),
            Err(IdentityError::PortMapTooLarge)
        );
        let many: PortMap = (0..9)
            .map(|n| (String::from("public"), alloc::format!("port{n}")))
            .collect();
        assert_eq!(
            store.save_port_map(&many),
            Err(IdentityError::PortMapTooLarge)
        );
        assert_eq!(store.load_port_map().unwrap(), StoredPortMap::Missing);
    }

    #[test]
    fn a_damaged_port_map_copy_falls_back_to_the_other_and_two_read_as_corrupt() {
        let old = port_map(&[("public", "0000:00:03.0")]);
        let new = port_map(&[("public", "0000:00:04.0"), ("private", "0000:00:03.0")]);
        let mut store = IdentityStore::new(MemDevice::erased(8192), 0);
        store.save_port_map(&old).unwrap(); // copy 0
        store.save_port_map(&new).unwrap(); // copy 1
        let mut device = store.into_device();
        // A flipped bit in the newest copy: the older one counts.
        let newest = IDENTITY_COPY_BYTES + PORT_MAP_OFFSET + 20;
        let mut byte = [0u8; 1];
        device.read_at(newest, &mut byte).unwrap();
        device.write_at(newest, &[byte[0] ^ 0x10]).unwrap();
        let mut store = IdentityStore::new(device, 0);
        assert_eq!(
            store.load_port_map().unwrap(),
            StoredPortMap::Map(old.clone())
        );
        // The next save replaces the damaged copy and reads back.
        store.save_port_map(&new).unwrap();
        let mut store = IdentityStore::new(store.into_device(), 0);
        assert_eq!(store.load_port_map().unwrap(), StoredPortMap::Map(new));
        // Both copies damaged: corrupt, never a half map.
        let mut device = store.into_device();
        for copy in 0..2 {
            device
                .write_at(
                    IDENTITY_COPY_BYTES * copy + PORT_MAP_OFFSET + 270,
                    &[0xa5, 0x5a],
                )
                .unwrap();
        }
        let mut store = IdentityStore::new(device, 0);
        assert_eq!(store.load_port_map().unwrap(), StoredPortMap::Corrupt);
        // The identity and credential are untouched by it.
        assert_eq!(store.load().unwrap(), None);
    }

    #[test]
    fn a_power_cut_leaves_the_old_or_the_new_port_map() {
        let old = port_map(&[("public", "0000:00:03.0")]);
        let new = port_map(&[("public", "0000:00:04.0"), ("private", "0000:00:03.0")]);
        for cut_after in 0..8 {
            let mut store = IdentityStore::new(MemDevice::erased(8192), 0);
            store.save_port_map(&old).unwrap();
            let mut faulty = FaultyDevice::new(store.into_device(), 16);
            faulty.writes_left = Some(cut_after);
            faulty.torn_bytes = 7;
            let mut store = IdentityStore::new(faulty, 0);
            let _ = store.save_port_map(&new);
            let mut store = IdentityStore::new(store.into_device().inner, 0);
            let loaded = store.load_port_map().unwrap();
            assert!(
                loaded == StoredPortMap::Map(old.clone())
                    || loaded == StoredPortMap::Map(new.clone()),
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
