//! Power-safe config storage: two slots written alternately (U-Boot redundant-environment style).
//!
//! Each slot holds one blob (with its own CRC, MAC and generation) followed by whatever the slot
//! held before. A save never touches the slot that [`SlotStore::load`] would currently return, so
//! a power cut at any point leaves either the old generation (the new slot is torn and fails its
//! CRC) or the new one. Load returns the newest valid slot and reports a damaged one.
//!
//! The device is behind [`BlockDevice`] so the appliance can use a small raw disk with no
//! filesystem, a PC a file, and tests the in-memory [`FaultyDevice`] that cuts power at any write.

use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::blob::{self, BlobError, DecodedBlob, MacPolicy, HEADER_BYTES};

/// A device error, with a message for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DeviceError(pub String);

/// Byte-addressed storage. Writes are durable only after [`BlockDevice::sync`] returns.
pub trait BlockDevice {
    /// Device size in bytes.
    fn capacity(&mut self) -> Result<u64, DeviceError>;
    /// Fills `buf` from `offset`.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError>;
    /// Writes `data` at `offset`.
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), DeviceError>;
    /// Makes every completed write durable.
    fn sync(&mut self) -> Result<(), DeviceError>;
}

/// What one slot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotState {
    /// Never written (erased or zero-filled).
    Empty,
    /// A blob that passed every check.
    Valid { generation: u64 },
    /// Something that is not a valid blob: torn write, bit rot, or a blob refused by policy.
    Damaged(BlobError),
    /// The device failed while reading the slot.
    Unreadable(DeviceError),
}

/// Why storage could not load or save.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The device is too small for two slots of the requested size.
    #[error("config device holds {capacity} bytes but two slots need {needed}: give the config disk at least {needed} bytes")]
    DeviceTooSmall { capacity: u64, needed: u64 },
    /// No slot holds a valid config.
    #[error("no valid config in either storage slot (slot 0: {slot0:?}, slot 1: {slot1:?}): restore a config with `tandem config encode` or from the partner")]
    NoValidSlot { slot0: SlotState, slot1: SlotState },
    /// The newest valid slot is older than a generation already accepted.
    #[error("stored config generation {generation} is older than generation {last_accepted} already accepted: refusing to roll back; fetch the current config from the partner")]
    Stale { generation: u64, last_accepted: u64 },
    /// The blob to save does not fit a slot.
    #[error("config blob of {len} bytes does not fit a {slot_bytes}-byte storage slot: make the slots larger or the config smaller")]
    BlobTooLarge { len: usize, slot_bytes: u64 },
    /// The blob to save is not valid itself.
    #[error("refusing to store an invalid blob: {0}")]
    InvalidBlob(BlobError),
    /// The blob to save is not newer than what is stored.
    #[error("refusing to store generation {generation}: generation {stored} is already stored; increment the generation")]
    GenerationNotNewer { generation: u64, stored: u64 },
    /// The device failed.
    #[error("config device error: {0}")]
    Device(#[from] DeviceError),
    /// The written slot did not read back valid.
    #[error("config slot {slot} did not verify after writing ({0}); the device may be failing", .reason)]
    VerifyFailed { slot: usize, reason: BlobError },
}

/// The result of a load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loaded {
    pub blob: DecodedBlob,
    /// Which slot it came from.
    pub slot: usize,
    /// The state of both slots, for the boot report (a damaged slot is repaired by the next save).
    pub slots: [SlotState; 2],
}

/// Bytes per slot on an appliance's config disk: room for the largest blob (1 MiB payload plus
/// framing). The disk holds two slots, so it needs at least twice this.
pub const APPLIANCE_SLOT_BYTES: u64 = 2 * 1024 * 1024;

/// Two alternating slots on a block device.
#[derive(Debug)]
pub struct SlotStore<D> {
    device: D,
    slot_bytes: u64,
    /// The slot `load` returns and its generation, as this store last saw or wrote it: a save
    /// then needs no full decode of both slots (the store is the device's only writer).
    newest: Option<(usize, u64)>,
}

impl<D: BlockDevice> SlotStore<D> {
    /// A store with slots of `slot_bytes` at offsets 0 and `slot_bytes`.
    pub fn new(device: D, slot_bytes: u64) -> Self {
        SlotStore {
            device,
            slot_bytes,
            newest: None,
        }
    }

    /// The device, for tests and for closing it.
    pub fn into_device(self) -> D {
        self.device
    }

    fn check_size(&mut self) -> Result<(), StoreError> {
        let capacity = self.device.capacity()?;
        let needed = self.slot_bytes.saturating_mul(2);
        if capacity < needed {
            return Err(StoreError::DeviceTooSmall { capacity, needed });
        }
        Ok(())
    }

    fn slot_offset(&self, slot: usize) -> u64 {
        if slot == 0 {
            0
        } else {
            self.slot_bytes
        }
    }

    /// Reads and decodes one slot.
    fn read_slot(
        &mut self,
        slot: usize,
        policy: MacPolicy<'_>,
    ) -> (SlotState, Option<DecodedBlob>) {
        let offset = self.slot_offset(slot);
        let mut head = [0u8; HEADER_BYTES];
        if let Err(error) = self.device.read_at(offset, &mut head) {
            return (SlotState::Unreadable(error), None);
        }
        if head.iter().all(|&b| b == 0xFF) || head.iter().all(|&b| b == 0) {
            return (SlotState::Empty, None);
        }
        let len = match blob::framed_len(&head) {
            Ok(len) => len,
            Err(error) => return (SlotState::Damaged(error), None),
        };
        if u64::try_from(len).map_or(true, |len| len > self.slot_bytes) {
            return (
                SlotState::Damaged(BlobError::LengthMismatch {
                    expected: len,
                    actual: usize::try_from(self.slot_bytes).unwrap_or(usize::MAX),
                }),
                None,
            );
        }
        let mut bytes = vec![0u8; len];
        if let Err(error) = self.device.read_at(offset, &mut bytes) {
            return (SlotState::Unreadable(error), None);
        }
        match blob::decode(&bytes, policy, None) {
            Ok(decoded) => (
                SlotState::Valid {
                    generation: decoded.header.generation,
                },
                Some(decoded),
            ),
            Err(error) => (SlotState::Damaged(error), None),
        }
    }

    /// Reads both slots; returns the index of the newest valid one.
    fn scan(
        &mut self,
        policy: MacPolicy<'_>,
    ) -> ([SlotState; 2], [Option<DecodedBlob>; 2], Option<usize>) {
        let (state0, blob0) = self.read_slot(0, policy);
        let (state1, blob1) = self.read_slot(1, policy);
        let newest = match (&blob0, &blob1) {
            (Some(a), Some(b)) => Some(if b.header.generation > a.header.generation {
                1
            } else {
                0
            }),
            (Some(_), None) => Some(0),
            (None, Some(_)) => Some(1),
            (None, None) => None,
        };
        self.newest = newest.and_then(|slot| {
            [&blob0, &blob1][slot]
                .as_ref()
                .map(|blob| (slot, blob.header.generation))
        });
        ([state0, state1], [blob0, blob1], newest)
    }

    /// Every valid config the store holds (at most two: the newest and the one before it),
    /// newest first. Rollback reads the older one from here.
    pub fn stored(&mut self, policy: MacPolicy<'_>) -> Result<Vec<DecodedBlob>, StoreError> {
        self.check_size()?;
        let (_, blobs, _) = self.scan(policy);
        let mut stored: Vec<DecodedBlob> = blobs.into_iter().flatten().collect();
        stored.sort_by_key(|blob| core::cmp::Reverse(blob.header.generation));
        Ok(stored)
    }

    /// Loads the newest valid config. `last_accepted` is the newest generation this box has
    /// accepted before (from the partner or an earlier boot); an older stored one is refused.
    pub fn load(
        &mut self,
        policy: MacPolicy<'_>,
        last_accepted: Option<u64>,
    ) -> Result<Loaded, StoreError> {
        self.check_size()?;
        let (slots, blobs, newest) = self.scan(policy);
        let Some(slot) = newest else {
            let [slot0, slot1] = slots;
            return Err(StoreError::NoValidSlot { slot0, slot1 });
        };
        let [blob0, blob1] = blobs;
        let Some(blob) = (if slot == 0 { blob0 } else { blob1 }) else {
            let [slot0, slot1] = slots;
            return Err(StoreError::NoValidSlot { slot0, slot1 });
        };
        if let Some(last) = last_accepted {
            if blob.header.generation < last {
                return Err(StoreError::Stale {
                    generation: blob.header.generation,
                    last_accepted: last,
                });
            }
        }
        Ok(Loaded { blob, slot, slots })
    }

    /// Saves `blob_bytes` into the slot `load` would not return, syncs, and reads it back.
    /// `policy` must be the one `load` uses. Returns the slot written.
    pub fn save(&mut self, blob_bytes: &[u8], policy: MacPolicy<'_>) -> Result<usize, StoreError> {
        self.check_size()?;
        let (header, _) =
            blob::check_authentic(blob_bytes, policy).map_err(StoreError::InvalidBlob)?;
        if u64::try_from(blob_bytes.len()).map_or(true, |len| len > self.slot_bytes) {
            return Err(StoreError::BlobTooLarge {
                len: blob_bytes.len(),
                slot_bytes: self.slot_bytes,
            });
        }
        let newest = match self.newest {
            Some(known) => Some(known),
            None => {
                self.scan(policy);
                self.newest
            }
        };
        let target = match newest {
            Some((current, stored)) => {
                if header.generation <= stored {
                    return Err(StoreError::GenerationNotNewer {
                        generation: header.generation,
                        stored,
                    });
                }
                1 - current
            }
            None => 0,
        };
        let offset = self.slot_offset(target);
        // Whatever happens next, the slot written may be torn: forget what we knew.
        self.newest = None;
        self.device.write_at(offset, blob_bytes)?;
        self.device.sync()?;
        // Read back: the bytes must be exactly what was written (the blob was checked above).
        let mut back = vec![0u8; blob_bytes.len()];
        self.device.read_at(offset, &mut back)?;
        if back != blob_bytes {
            let reason = match blob::check_integrity(&back) {
                Err(reason) => reason,
                Ok(_) => BlobError::CrcMismatch {
                    stored: 0,
                    computed: 0,
                },
            };
            return Err(StoreError::VerifyFailed {
                slot: target,
                reason,
            });
        }
        self.newest = Some((target, header.generation));
        Ok(target)
    }
}

impl<D: BlockDevice> SlotStore<D> {
    /// Erases both slots: every byte 0xFF (as [`MemDevice::erased`], what a factory-fresh
    /// store reads), written in pieces and synced, so the next [`SlotStore::load`] finds no
    /// config and the box starts from its seed (factory reset). Neither slot is kept: the old
    /// generations (and the secrets they hold) are gone.
    pub fn erase(&mut self) -> Result<(), StoreError> {
        self.check_size()?;
        self.newest = None;
        const PIECE: usize = 64 * 1024;
        let erased = vec![0xFF_u8; PIECE];
        let end = self.slot_bytes.saturating_mul(2);
        let mut offset = 0;
        while offset < end {
            // At most PIECE (the buffer's length), so it fits a usize.
            let len = usize::try_from(end - offset).map_or(PIECE, |left| left.min(PIECE));
            self.device.write_at(offset, &erased[..len])?;
            offset += len as u64;
        }
        self.device.sync()?;
        Ok(())
    }
}

/// A device in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemDevice {
    pub bytes: Vec<u8>,
}

impl MemDevice {
    /// An erased device (all 0xFF, like flash) of `len` bytes.
    pub fn erased(len: usize) -> Self {
        MemDevice {
            bytes: vec![0xFF; len],
        }
    }
}

fn range_of(
    offset: u64,
    len: usize,
    capacity: usize,
) -> Result<core::ops::Range<usize>, DeviceError> {
    let start = usize::try_from(offset)
        .map_err(|_| DeviceError(String::from("offset beyond the device")))?;
    let end = start.checked_add(len).filter(|&end| end <= capacity);
    end.map(|end| start..end)
        .ok_or_else(|| DeviceError(String::from("access beyond the end of the device")))
}

impl BlockDevice for MemDevice {
    fn capacity(&mut self) -> Result<u64, DeviceError> {
        u64::try_from(self.bytes.len()).map_err(|_| DeviceError(String::from("device too large")))
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        let range = range_of(offset, buf.len(), self.bytes.len())?;
        buf.copy_from_slice(&self.bytes[range]);
        Ok(())
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        let range = range_of(offset, data.len(), self.bytes.len())?;
        self.bytes[range].copy_from_slice(data);
        Ok(())
    }
    fn sync(&mut self) -> Result<(), DeviceError> {
        Ok(())
    }
}

/// An in-memory device that loses power after a set number of sector writes.
///
/// Writes are split into `sector_bytes` pieces, as a disk performs them. When the budget runs
/// out, the next sector is torn (only its first `torn_bytes` land) and every later write or sync
/// fails, as if the box lost power. Tests then "reboot" by loading from `inner`.
#[derive(Debug, Clone)]
pub struct FaultyDevice {
    pub inner: MemDevice,
    pub sector_bytes: usize,
    /// Sector writes that still succeed; None: no cut.
    pub writes_left: Option<usize>,
    /// Bytes of the torn sector that land at the cut.
    pub torn_bytes: usize,
    /// Whether power has been cut.
    pub cut: bool,
    /// Sector writes performed so far.
    pub writes_done: usize,
}

impl FaultyDevice {
    /// A device over `inner` that never fails until `writes_left` is set.
    pub fn new(inner: MemDevice, sector_bytes: usize) -> Self {
        FaultyDevice {
            inner,
            sector_bytes: sector_bytes.max(1),
            writes_left: None,
            torn_bytes: 0,
            cut: false,
            writes_done: 0,
        }
    }

    fn power_cut() -> DeviceError {
        DeviceError(String::from("power cut (fault injection)"))
    }
}

impl BlockDevice for FaultyDevice {
    fn capacity(&mut self) -> Result<u64, DeviceError> {
        self.inner.capacity()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        if self.cut {
            return Err(Self::power_cut());
        }
        self.inner.read_at(offset, buf)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        let mut at = offset;
        for chunk in data.chunks(self.sector_bytes) {
            if self.cut {
                return Err(Self::power_cut());
            }
            match self.writes_left {
                Some(0) => {
                    let torn = &chunk[..self.torn_bytes.min(chunk.len())];
                    self.inner.write_at(at, torn)?;
                    self.cut = true;
                    return Err(Self::power_cut());
                }
                Some(ref mut left) => *left -= 1,
                None => {}
            }
            self.inner.write_at(at, chunk)?;
            self.writes_done += 1;
            at += u64::try_from(chunk.len()).map_err(|_| Self::power_cut())?;
        }
        Ok(())
    }
    fn sync(&mut self) -> Result<(), DeviceError> {
        if self.cut {
            return Err(Self::power_cut());
        }
        Ok(())
    }
}

/// A file or raw block device (`/dev/vdb` on the appliance).
#[cfg(feature = "std")]
#[derive(Debug)]
pub struct FileDevice {
    file: std::fs::File,
}

#[cfg(feature = "std")]
impl FileDevice {
    /// Opens `path` for reading and writing.
    pub fn open(path: &std::path::Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        Ok(FileDevice { file })
    }

    /// Creates (or truncates) a file of `len` bytes filled with 0xFF.
    pub fn create(path: &std::path::Path, len: u64) -> std::io::Result<Self> {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        let block = vec![0xFFu8; 4096];
        let mut left = len;
        while left > 0 {
            let n = usize::try_from(left.min(4096)).unwrap_or(4096);
            file.write_all(&block[..n])?;
            left -= u64::try_from(n).unwrap_or(4096);
        }
        file.sync_all()?;
        Ok(FileDevice { file })
    }
}

#[cfg(feature = "std")]
fn io_error(error: std::io::Error) -> DeviceError {
    DeviceError(std::format!("{error}"))
}

#[cfg(feature = "std")]
impl BlockDevice for FileDevice {
    fn capacity(&mut self) -> Result<u64, DeviceError> {
        use std::io::{Seek, SeekFrom};
        // Works for regular files and for block devices (whose metadata length is 0).
        self.file.seek(SeekFrom::End(0)).map_err(io_error)
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DeviceError> {
        use std::os::unix::fs::FileExt;
        self.file.read_exact_at(buf, offset).map_err(io_error)
    }
    fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), DeviceError> {
        use std::os::unix::fs::FileExt;
        self.file.write_all_at(data, offset).map_err(io_error)
    }
    fn sync(&mut self) -> Result<(), DeviceError> {
        self.file.sync_data().map_err(io_error)
    }
}
