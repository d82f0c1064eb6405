//! The flashable disk image `tandem-<board>.img`: a raw GPT disk to `dd` onto a box's disk or a
//! USB stick, built in memory without root or loop devices (the `gpt` and `fatfs` crates).
//!
//! Partition 1, the EFI system partition (FAT32, [`ESP_BYTES`]): systemd-boot as the removable
//! media loader `/EFI/BOOT/BOOTX64.EFI` and as `/EFI/systemd/systemd-bootx64.efi`,
//! `/loader/loader.conf` (no menu, no editor), and the firmware as a unified kernel image in
//! slot a (`/EFI/Linux/tandem-1-a.efi`, its command line naming the slot); slot b is empty
//! until the first upgrade. Partition 2 ([`tandem_board::boot_disk::CONFIG_PARTITION_NAME`]):
//! two erased config slots and the identity region, the layout of a board's config disk.
//!
//! Reproducible byte for byte: the disk and partition GUIDs and the FAT volume id are derived
//! from the board name and the version, every FAT time stamp is the build time
//! (`SOURCE_DATE_EPOCH`, else 1980-01-01), files are written in a fixed order.

use std::io::{Cursor, Seek, SeekFrom, Write};

use gpt::disk::LogicalBlockSize;
use gpt::mbr::ProtectiveMBR;
use gpt::partition::Partition;
use gpt::partition_types::{OperatingSystem, Type};
use sha2::{Digest, Sha256};
use tandem_board::boot_disk::{
    Slot, SlotFile, CONFIG_PARTITION_NAME, CONFIG_PARTITION_TYPE, ESP_PARTITION_NAME, SLOT_DIR,
};

use crate::build::BuildError;

/// Bytes per logical block of the image.
pub const SECTOR: u64 = 512;
/// Partitions start on MiB boundaries (flash erase blocks, 4 KiB sectors).
pub const ALIGN: u64 = 1 << 20;
/// The EFI system partition: two slots of ~11 MB and room for a third being written.
pub const ESP_BYTES: u64 = 64 << 20;
/// The config partition: two 2 MiB config slots and the identity region, with room to grow.
pub const CONFIG_BYTES: u64 = tandem_board::boot_disk::CONFIG_PARTITION_BYTES;
/// The whole image: the GPT at each end takes less than the MiB before and after.
pub const DISK_BYTES: u64 = ALIGN + ESP_BYTES + CONFIG_BYTES + ALIGN;
/// Byte offsets of the partitions.
pub const ESP_START: u64 = ALIGN;
pub const CONFIG_START: u64 = ESP_START + ESP_BYTES;

// Partitions on MiB boundaries, the backup GPT (33 sectors) after the last one.
const _: () = assert!(ESP_START.is_multiple_of(ALIGN) && CONFIG_START.is_multiple_of(ALIGN));
const _: () = assert!(CONFIG_START + CONFIG_BYTES + 33 * SECTOR <= DISK_BYTES);

/// Where Debian's `systemd-boot-efi` puts the boot manager.
pub const DEBIAN_SYSTEMD_BOOT: &str = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";

/// `loader.conf`: boot the default at once, no menu, no editing of the command line (which
/// would bypass everything the image decides). `tandem-*` picks, among the slots, the first
/// in systemd-boot's order: the newest whose tries are not used up.
pub const LOADER_CONF: &str =
    "timeout 0\neditor no\nauto-entries no\nauto-firmware no\ndefault tandem-*\n";

/// What goes onto the disk.
#[derive(Debug, Clone)]
pub struct DiskRequest<'a> {
    pub board: &'a str,
    pub version: &'a str,
    /// systemd-boot's EFI binary.
    pub systemd_boot: &'a [u8],
    /// Slot a's unified kernel image.
    pub slot_a: &'a [u8],
    /// Seconds since 1970 for every time stamp.
    pub timestamp: u64,
}

/// A name-based GUID (RFC 9562 version 8): the first 16 bytes of SHA-256 over the board, the
/// version and what it names, so the same build gives the same GUIDs and two boards differ.
pub fn derived_guid(board: &str, version: &str, what: &str) -> uuid::Uuid {
    let digest = Sha256::digest(format!("tandem disk image\0{board}\0{version}\0{what}"));
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    bytes[6] = (bytes[6] & 0x0f) | 0x80;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes)
}

/// A FAT date and time from seconds since 1970 (UTC), clamped to what FAT can hold.
fn fat_time(seconds: u64) -> fatfs::DateTime {
    const FAT_MIN: u64 = 315_532_800; // 1980-01-01
    const FAT_MAX: u64 = 4_354_819_199; // 2107-12-31 23:59:59
    let seconds = seconds.clamp(FAT_MIN, FAT_MAX);
    let days = seconds / 86_400;
    let rem = seconds % 86_400;
    // Civil date from days since 1970 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    let part = |v: u64| u16::try_from(v).unwrap_or(0);
    fatfs::DateTime {
        date: fatfs::Date {
            year: part(year),
            month: part(month),
            day: part(day),
        },
        time: fatfs::Time {
            hour: part(rem / 3600),
            min: part(rem % 3600 / 60),
            sec: part(rem % 60),
            millis: 0,
        },
    }
}

/// Every FAT time stamp is the build's.
#[derive(Debug)]
struct FixedTime(fatfs::DateTime);

impl fatfs::TimeProvider for FixedTime {
    fn get_current_date(&self) -> fatfs::Date {
        self.0.date
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        self.0
    }
}

fn fat_error(what: &str, error: std::io::Error) -> BuildError {
    BuildError::Disk {
        what: format!("EFI system partition: {what}: {error}"),
    }
}

/// The files of the EFI system partition, in the order they are written.
pub fn esp_files<'a>(request: &DiskRequest<'a>) -> Vec<(String, &'a [u8])> {
    vec![
        ("EFI/BOOT/BOOTX64.EFI".to_owned(), request.systemd_boot),
        (
            "EFI/systemd/systemd-bootx64.efi".to_owned(),
            request.systemd_boot,
        ),
        (
            format!("{SLOT_DIR}/{}", SlotFile::blessed(1, Slot::A).file_name()),
            request.slot_a,
        ),
        ("loader/loader.conf".to_owned(), LOADER_CONF.as_bytes()),
    ]
}

/// Formats `volume` as FAT32 and writes the partition's files into it.
fn write_esp(volume: &mut [u8], request: &DiskRequest<'_>) -> Result<(), BuildError> {
    let volume_id = u32::from_le_bytes(
        derived_guid(request.board, request.version, "esp volume id").as_bytes()[..4]
            .try_into()
            .unwrap_or([0; 4]),
    );
    fatfs::format_volume(
        Cursor::new(&mut *volume),
        fatfs::FormatVolumeOptions::new()
            .fat_type(fatfs::FatType::Fat32)
            .volume_id(volume_id)
            .volume_label(*b"TANDEM-ESP "),
    )
    .map_err(|e| fat_error("format", e))?;
    // fatfs keeps the provider for the file system's lifetime ('static); a host tool leaks one.
    let time: &'static FixedTime = Box::leak(Box::new(FixedTime(fat_time(request.timestamp))));
    let fs = fatfs::FileSystem::new(
        Cursor::new(&mut *volume),
        fatfs::FsOptions::new()
            .time_provider(time)
            .update_accessed_date(false),
    )
    .map_err(|e| fat_error("mount", e))?;
    {
        let root = fs.root_dir();
        for (path, data) in esp_files(request) {
            let mut dir = root.clone();
            let parts: Vec<&str> = path.split('/').collect();
            let (name, parents) = parts.split_last().ok_or_else(|| BuildError::Disk {
                what: format!("empty path {path}"),
            })?;
            for parent in parents {
                dir = match dir.open_dir(parent) {
                    Ok(existing) => existing,
                    Err(_) => dir
                        .create_dir(parent)
                        .map_err(|e| fat_error(&format!("mkdir {parent}"), e))?,
                };
            }
            let mut file = dir
                .create_file(name)
                .map_err(|e| fat_error(&format!("create {path}"), e))?;
            file.truncate().map_err(|e| fat_error(&path, e))?;
            file.write_all(data).map_err(|e| fat_error(&path, e))?;
            file.flush().map_err(|e| fat_error(&path, e))?;
        }
    }
    fs.unmount().map_err(|e| fat_error("unmount", e))
}

/// Writes (or replaces) the file `path` on the EFI system partition of a disk image this module
/// built: how tests put a second slot or a boot-counted name onto a copy of the image, as an
/// upgrade will.
pub fn write_esp_file(
    disk: &mut [u8],
    path: &str,
    data: &[u8],
    timestamp: u64,
) -> Result<(), BuildError> {
    let start = usize::try_from(ESP_START).map_err(gpt_error)?;
    let end = usize::try_from(ESP_START + ESP_BYTES).map_err(gpt_error)?;
    let len = disk.len();
    let volume = disk.get_mut(start..end).ok_or_else(|| BuildError::Disk {
        what: format!("a disk image of {len} bytes has no EFI system partition"),
    })?;
    let time: &'static FixedTime = Box::leak(Box::new(FixedTime(fat_time(timestamp))));
    let fs = fatfs::FileSystem::new(
        Cursor::new(volume),
        fatfs::FsOptions::new()
            .time_provider(time)
            .update_accessed_date(false),
    )
    .map_err(|e| fat_error("mount", e))?;
    {
        let (dir_path, name) = path.rsplit_once('/').unwrap_or(("", path));
        let root = fs.root_dir();
        let dir = if dir_path.is_empty() {
            root
        } else {
            root.open_dir(dir_path)
                .map_err(|e| fat_error(&format!("open {dir_path}"), e))?
        };
        let mut file = dir
            .create_file(name)
            .map_err(|e| fat_error(&format!("create {path}"), e))?;
        file.truncate().map_err(|e| fat_error(path, e))?;
        file.write_all(data).map_err(|e| fat_error(path, e))?;
        file.flush().map_err(|e| fat_error(path, e))?;
    }
    fs.unmount().map_err(|e| fat_error("unmount", e))
}

fn gpt_error(error: impl std::fmt::Display) -> BuildError {
    BuildError::Disk {
        what: format!("partition table: {error}"),
    }
}

/// Builds the whole disk image in memory.
pub fn build_disk(request: &DiskRequest<'_>) -> Result<Vec<u8>, BuildError> {
    let mut image = vec![0u8; usize::try_from(DISK_BYTES).map_err(gpt_error)?];
    let config_type = uuid::Uuid::parse_str(CONFIG_PARTITION_TYPE).map_err(gpt_error)?;
    let lba = |bytes: u64| bytes / SECTOR;
    let partitions = std::collections::BTreeMap::from([
        (
            1,
            Partition {
                part_type_guid: gpt::partition_types::EFI,
                part_guid: derived_guid(request.board, request.version, "esp partition"),
                first_lba: lba(ESP_START),
                last_lba: lba(ESP_START + ESP_BYTES) - 1,
                flags: 0,
                name: ESP_PARTITION_NAME.to_owned(),
            },
        ),
        (
            2,
            Partition {
                part_type_guid: Type {
                    guid: config_type,
                    os: OperatingSystem::Custom("Tandem".to_owned()),
                },
                part_guid: derived_guid(request.board, request.version, "config partition"),
                first_lba: lba(CONFIG_START),
                last_lba: lba(CONFIG_START + CONFIG_BYTES) - 1,
                flags: 0,
                name: CONFIG_PARTITION_NAME.to_owned(),
            },
        ),
    ]);
    let mut disk = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(LogicalBlockSize::Lb512)
        .change_partition_count(true)
        .create_from_device(
            Cursor::new(&mut image[..]),
            Some(derived_guid(request.board, request.version, "disk")),
        )
        .map_err(gpt_error)?;
    disk.update_partitions(partitions).map_err(gpt_error)?;
    let mut device = disk.write().map_err(gpt_error)?;
    let blocks = u32::try_from(lba(DISK_BYTES) - 1).map_err(gpt_error)?;
    ProtectiveMBR::with_lb_size(blocks)
        .overwrite_lba0(&mut device)
        .map_err(gpt_error)?;
    device.seek(SeekFrom::Start(0)).map_err(gpt_error)?;
    let esp_range = usize::try_from(ESP_START).map_err(gpt_error)?
        ..usize::try_from(ESP_START + ESP_BYTES).map_err(gpt_error)?;
    write_esp(&mut image[esp_range], request)?;
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fat_times_are_civil_dates_clamped_to_fat() {
        let t = fat_time(1_700_000_000); // 2023-11-14 22:13:20 UTC
        assert_eq!((t.date.year, t.date.month, t.date.day), (2023, 11, 14));
        assert_eq!((t.time.hour, t.time.min, t.time.sec), (22, 13, 20));
        let t = fat_time(0);
        assert_eq!((t.date.year, t.date.month, t.date.day), (1980, 1, 1));
        let t = fat_time(951_782_400); // 2000-02-29
        assert_eq!((t.date.year, t.date.month, t.date.day), (2000, 2, 29));
    }

    #[test]
    fn derived_guids_are_stable_version_8_and_differ_by_purpose_and_board() {
        let a = derived_guid("qemu-lab", "0.1.0", "disk");
        assert_eq!(a, derived_guid("qemu-lab", "0.1.0", "disk"));
        assert_ne!(a, derived_guid("qemu-lab", "0.1.0", "esp partition"));
        assert_ne!(a, derived_guid("x86-1u-4port-igb", "0.1.0", "disk"));
        assert_ne!(a, derived_guid("qemu-lab", "0.2.0", "disk"));
        assert_eq!(a.get_version_num(), 8);
    }
}
