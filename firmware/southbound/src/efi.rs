//! What the boot loader left for the running system, and the EFI system partition it booted
//! from: systemd-boot's variables in efivarfs (`LoaderEntrySelected`, the entry it started;
//! `LoaderBootCountPath`, the name it renamed a boot-counted entry to), and the partition
//! mounted as vfat so a slot file can be renamed (blessed) with the rename flushed to the disk.

use std::fs;
use std::path::Path;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};

/// Where efivarfs is mounted.
pub const EFIVARS: &str = "/sys/firmware/efi/efivars";
/// The vendor GUID of systemd-boot's variables (the Boot Loader Interface).
pub const LOADER_GUID: &str = "4a67b082-0a4c-41cf-b6c7-440b29bb8c4f";

/// Mounts efivarfs at `target` (already mounted: fine).
pub fn mount_efivarfs(target: &Path) -> Result<(), Errno> {
    match mount(
        Some("efivarfs"),
        target,
        Some("efivarfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    ) {
        Ok(()) | Err(Errno::EBUSY) => Ok(()),
        Err(errno) => Err(errno),
    }
}

/// An EFI string variable's value: 4 bytes of attributes, then UTF-16LE up to a NUL. None when
/// it is not that.
pub fn decode_string_variable(bytes: &[u8]) -> Option<String> {
    let text = bytes.get(4..)?;
    if text.len() % 2 != 0 {
        return None;
    }
    let units: Vec<u16> = text
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    String::from_utf16(&units).ok()
}

/// systemd-boot's variable `name` as a string (None: not set, or not a string).
pub fn loader_variable(efivars: &Path, name: &str) -> std::io::Result<Option<String>> {
    match fs::read(efivars.join(format!("{name}-{LOADER_GUID}"))) {
        Ok(bytes) => Ok(decode_string_variable(&bytes)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// The mount flags of the EFI system partition (read-only but for a rename).
fn esp_flags() -> MsFlags {
    MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC
}

/// Mounts the FAT EFI system partition `device` at `target` (created), read-only (FAT has no
/// journal: it is written only while a slot file is renamed, see [`rename_on_esp`]), long
/// names kept as written.
pub fn mount_esp(device: &Path, target: &Path) -> Result<(), String> {
    fs::create_dir_all(target).map_err(|e| format!("mkdir {}: {e}", target.display()))?;
    match mount(
        Some(device),
        target,
        Some("vfat"),
        esp_flags() | MsFlags::MS_RDONLY,
        Some("codepage=437,iocharset=ascii,shortname=mixed,errors=remount-ro"),
    ) {
        Ok(()) | Err(Errno::EBUSY) => Ok(()),
        Err(errno) => Err(format!(
            "mount {} on {} (vfat): {}",
            device.display(),
            target.display(),
            errno.desc()
        )),
    }
}

/// Renames `from` to `to` in `dir` on the EFI system partition mounted at `esp`: remounted
/// read-write for the rename only, flushed, and read-only again (also when the rename failed).
pub fn rename_on_esp(esp: &Path, dir: &Path, from: &str, to: &str) -> std::io::Result<()> {
    let remount = |flags: MsFlags| {
        mount(
            None::<&str>,
            esp,
            None::<&str>,
            MsFlags::MS_REMOUNT | esp_flags() | flags,
            None::<&str>,
        )
        .map_err(std::io::Error::from)
    };
    remount(MsFlags::empty())?;
    let renamed = rename_flushed(dir, from, to);
    let read_only = remount(MsFlags::MS_RDONLY);
    renamed.and(read_only)
}

/// Renames `from` to `to` in `dir` and flushes the directory, so the new name is on the disk
/// before this returns (FAT has no journal: unflushed, a power cut could lose the rename).
pub fn rename_flushed(dir: &Path, from: &str, to: &str) -> std::io::Result<()> {
    fs::rename(dir.join(from), dir.join(to))?;
    fs::File::open(dir.join(to))?.sync_all()?;
    fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn variable(text: &str) -> Vec<u8> {
        let mut bytes = vec![0x06, 0, 0, 0]; // boot service + runtime access
        for unit in text.encode_utf16().chain([0]) {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        bytes
    }

    #[test]
    fn string_variables_decode_and_bad_ones_do_not() {
        assert_eq!(
            decode_string_variable(&variable("tandem-2-b+3.efi")),
            Some("tandem-2-b+3.efi".to_owned())
        );
        assert_eq!(
            decode_string_variable(&variable("\\EFI\\Linux\\tandem-2-b+2-1.efi")),
            Some("\\EFI\\Linux\\tandem-2-b+2-1.efi".to_owned())
        );
        assert_eq!(decode_string_variable(&[6, 0, 0]), None);
        assert_eq!(
            decode_string_variable(&[6, 0, 0, 0, b'a']),
            None,
            "odd length"
        );
        assert_eq!(
            decode_string_variable(&[6, 0, 0, 0, 0x00, 0xd8]),
            None,
            "lone surrogate"
        );
    }

    #[test]
    fn variables_are_read_by_name_and_guid() {
        let dir = std::env::temp_dir().join(format!("tandem-efivars-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join(format!("LoaderEntrySelected-{LOADER_GUID}")),
            variable("tandem-1-a.efi"),
        )
        .unwrap();
        assert_eq!(
            loader_variable(&dir, "LoaderEntrySelected").unwrap(),
            Some("tandem-1-a.efi".to_owned())
        );
        assert_eq!(loader_variable(&dir, "LoaderBootCountPath").unwrap(), None);
        fs::write(dir.join("a+1.efi"), b"x").unwrap();
        rename_flushed(&dir, "a+1.efi", "a.efi").unwrap();
        assert!(dir.join("a.efi").exists() && !dir.join("a+1.efi").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
