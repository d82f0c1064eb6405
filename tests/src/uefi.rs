//! The lab's UEFI boot mode: a box that boots the flashable disk image
//! (`target/image/<board>/tandem-<board>.img`, `make image`) under OVMF, as a box boots from its
//! disk: OVMF's code read-only, a copy of its variable store per box (systemd-boot keeps its
//! state there), a copy of the disk image per box (systemd-boot renames boot-counted slot files
//! and the box writes its config into the image's config partition). The `-kernel` boots stay
//! the lab's default: they skip OVMF and systemd-boot and are faster.

use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::lab::LabError;

/// Debian's `ovmf`: the firmware code (mapped read-only) and the pristine variable store.
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// The disk image `make image` writes for `board`.
pub fn disk_image(board: &str) -> PathBuf {
    crate::image_dir(board).join(format!("tandem-{board}.img"))
}

/// A box's own copies of the disk image and the variable store.
#[derive(Debug, Clone)]
pub struct UefiFiles {
    pub disk: PathBuf,
    pub vars: PathBuf,
}

impl UefiFiles {
    /// Where box `name` of the lab in `dir` keeps them.
    pub fn of(dir: &Path, name: &str) -> UefiFiles {
        UefiFiles {
            disk: dir.join(format!("{name}.disk.img")),
            vars: dir.join(format!("{name}.OVMF_VARS.fd")),
        }
    }
}

/// Copies the disk image `image` and the variable store for a fresh box and writes `config`
/// (TOML) into the image's config partition (None: the erased slots the image ships with).
pub fn prepare(
    dir: &Path,
    name: &str,
    image: PathBuf,
    config: Option<&str>,
) -> Result<UefiFiles, LabError> {
    if !image.is_file() {
        return Err(format!(
            "no disk image {}: run `make image` first",
            image.display()
        ));
    }
    for path in [OVMF_CODE, OVMF_VARS] {
        if !Path::new(path).is_file() {
            return Err(format!(
                "{path} missing: install Debian's ovmf (make deps does)"
            ));
        }
    }
    let files = UefiFiles::of(dir, name);
    fs::copy(&image, &files.disk)
        .map_err(|e| format!("copy {} to {}: {e}", image.display(), files.disk.display()))?;
    fs::copy(OVMF_VARS, &files.vars)
        .map_err(|e| format!("copy {OVMF_VARS} to {}: {e}", files.vars.display()))?;
    if config.is_some() {
        write_config_partition(&files.disk, config)?;
    }
    Ok(files)
}

/// The qemu arguments that boot `files` under OVMF: firmware code read-only, the box's variable
/// store, the disk on virtio in PCI slot 8 (where the `-kernel` boxes have their config disk).
pub fn qemu_args(files: &UefiFiles) -> Vec<String> {
    vec![
        "-drive".into(),
        format!("if=pflash,format=raw,unit=0,readonly=on,file={OVMF_CODE}"),
        "-drive".into(),
        format!("if=pflash,format=raw,unit=1,file={}", files.vars.display()),
        "-drive".into(),
        format!("file={},format=raw,if=none,id=disk", files.disk.display()),
        "-device".into(),
        "virtio-blk-pci,drive=disk,addr=0x8,bootindex=0".into(),
    ]
}

/// The byte range of the GPT partition named `name` in the disk image `image` (512-byte
/// sectors), read from the primary GPT.
pub fn gpt_partition(image: &[u8], name: &str) -> Option<(u64, u64)> {
    const SECTOR: usize = 512;
    let header = image.get(SECTOR..2 * SECTOR)?;
    if header.get(0..8)? != b"EFI PART" {
        return None;
    }
    let u32_at = |b: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
    };
    let u64_at = |b: &[u8], at: usize| -> Option<u64> {
        Some(u64::from_le_bytes(b.get(at..at + 8)?.try_into().ok()?))
    };
    let entries_lba = usize::try_from(u64_at(header, 72)?).ok()?;
    let count = usize::try_from(u32_at(header, 80)?).ok()?;
    let size = usize::try_from(u32_at(header, 84)?).ok()?;
    let wanted: Vec<u16> = name.encode_utf16().collect();
    (0..count).find_map(|i| {
        let at = entries_lba * SECTOR + i * size;
        let entry = image.get(at..at + size)?;
        let first = u64_at(entry, 32)?;
        let last = u64_at(entry, 40)?;
        let label: Vec<u16> = entry
            .get(56..size.min(128))?
            .chunks(2)
            .map(|c| u16::from_le_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
            .take_while(|&c| c != 0)
            .collect();
        (first != 0 && label == wanted).then_some((first * 512, (last + 1 - first) * 512))
    })
}

/// Writes a config store (two slots, `config` as generation 1, an erased identity region) into
/// the disk image's `tandem-config` partition.
pub fn write_config_partition(disk: &Path, config: Option<&str>) -> Result<(), LabError> {
    let image = fs::read(disk).map_err(|e| format!("{}: {e}", disk.display()))?;
    let (offset, len) = gpt_partition(&image, tandem_board::boot_disk::CONFIG_PARTITION_NAME)
        .ok_or_else(|| format!("{}: no tandem-config partition", disk.display()))?;
    let store = disk.with_extension("config.tmp");
    crate::lab::write_config_disk(&store, config)?;
    let bytes = fs::read(&store).map_err(|e| format!("{}: {e}", store.display()))?;
    let _ = fs::remove_file(&store);
    if bytes.len() as u64 > len {
        return Err(format!(
            "config store of {} bytes does not fit the {len}-byte config partition",
            bytes.len()
        ));
    }
    let mut file = fs::OpenOptions::new()
        .write(true)
        .open(disk)
        .map_err(|e| format!("{}: {e}", disk.display()))?;
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.write_all(&bytes))
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("{}: {e}", disk.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_are_found_by_name_in_a_gpt() {
        let mut image = vec![0u8; 64 * 1024];
        image[512..520].copy_from_slice(b"EFI PART");
        image[512 + 72..512 + 80].copy_from_slice(&2u64.to_le_bytes());
        image[512 + 80..512 + 84].copy_from_slice(&128u32.to_le_bytes());
        image[512 + 84..512 + 88].copy_from_slice(&128u32.to_le_bytes());
        let entry = 1024 + 128; // the second entry
        image[entry + 32..entry + 40].copy_from_slice(&100u64.to_le_bytes());
        image[entry + 40..entry + 48].copy_from_slice(&199u64.to_le_bytes());
        for (i, unit) in "tandem-config".encode_utf16().enumerate() {
            image[entry + 56 + 2 * i..entry + 58 + 2 * i].copy_from_slice(&unit.to_le_bytes());
        }
        assert_eq!(
            gpt_partition(&image, "tandem-config"),
            Some((100 * 512, 100 * 512))
        );
        assert_eq!(gpt_partition(&image, "tandem-esp"), None);
        assert_eq!(gpt_partition(&[0u8; 1024], "tandem-config"), None);
    }
}
