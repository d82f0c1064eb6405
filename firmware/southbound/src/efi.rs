//! What the boot loader left for the running system, and the EFI system partition it booted
//! from: systemd-boot's variables in efivarfs (`LoaderEntrySelected`, the entry it started;
//! `LoaderBootCountPath`, the name it renamed a boot-counted entry to), and the partition
//! mounted as vfat so a slot file can be renamed (blessed) with the rename flushed to the disk,
//! or a new slot file written (an install: a temporary name, flushed, renamed, flushed).

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

/// Free bytes on the file system mounted at `path`.
pub fn free_bytes(path: &Path) -> std::io::Result<u64> {
    let stat = nix::sys::statvfs::statvfs(path).map_err(std::io::Error::from)?;
    Ok(stat.blocks_available().saturating_mul(stat.fragment_size()))
}

/// Writes a new slot file on the EFI system partition mounted at `esp` (remounted read-write
/// for the write only, read-only again also when it failed): see [`write_slot_file`].
pub fn install_on_esp(
    esp: &Path,
    dir: &Path,
    temp: &str,
    bytes: &[u8],
    name: &str,
    remove: &[String],
    step: &mut dyn FnMut(InstallStep),
) -> std::io::Result<()> {
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
    let written = write_slot_file(dir, temp, bytes, name, remove, step);
    let read_only = remount(MsFlags::MS_RDONLY);
    written.and(read_only)
}

/// The points of [`write_slot_file`] after which it tells its caller (the lab's power-cut
/// test stops the box at each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallStep {
    /// The first MiB of the temporary file is written, nothing flushed.
    TempPartly,
    /// The temporary file is whole and flushed with its directory.
    TempFlushed,
    /// Renamed to the final name and the directory flushed.
    Renamed,
    /// The old files are removed and the directory flushed.
    Done,
}

impl InstallStep {
    pub fn word(self) -> &'static str {
        match self {
            InstallStep::TempPartly => "temp-partly-written",
            InstallStep::TempFlushed => "temp-flushed",
            InstallStep::Renamed => "renamed",
            InstallStep::Done => "old-files-removed",
        }
    }
}

/// Writes `bytes` into `dir` so that a power cut at any moment leaves either the old files or
/// the new one under its final name, never a partial file under a name the boot loader
/// picks: the bytes go to `temp` (a name the boot loader ignores: not `*.efi`), which is
/// flushed with its directory, then renamed to `name`, the file and the directory flushed
/// again (until then the new name may be on the disk as an empty file, which systemd-boot
/// skips); only
/// then are the files in `remove` deleted (and the directory flushed). A failed write removes
/// `temp` again.
pub fn write_slot_file(
    dir: &Path,
    temp: &str,
    bytes: &[u8],
    name: &str,
    remove: &[String],
    step: &mut dyn FnMut(InstallStep),
) -> std::io::Result<()> {
    use std::io::Write;
    let temp_path = dir.join(temp);
    match fs::remove_file(&temp_path) {
        Ok(()) => {}
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(error),
    }
    let written = (|| {
        let mut file = fs::File::create(&temp_path)?;
        let (first, rest) = bytes.split_at(bytes.len().min(1 << 20));
        file.write_all(first)?;
        step(InstallStep::TempPartly);
        file.write_all(rest)?;
        file.sync_all()?;
        fs::File::open(dir)?.sync_all()
    })();
    if let Err(error) = written {
        let _ = fs::remove_file(&temp_path);
        return Err(error);
    }
    step(InstallStep::TempFlushed);
    fs::rename(&temp_path, dir.join(name))?;
    // vfat writes the renamed file's new directory entry with size and first cluster 0 and
    // fills them in when the inode is written back: flush the file itself, then the directory
    // (`lab_firmware_power_cut` found a cut here leaving an empty `tandem-2-b+3.efi`, which
    // systemd-boot skipped). Cut before that, the box boots the running slot.
    fs::File::open(dir.join(name))?.sync_all()?;
    fs::File::open(dir)?.sync_all()?;
    step(InstallStep::Renamed);
    for old in remove.iter().filter(|old| old.as_str() != name) {
        match fs::remove_file(dir.join(old)) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    fs::File::open(dir)?.sync_all()?;
    step(InstallStep::Done);
    Ok(())
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
        fs::write(dir.join("tandem-1-b+0-3.efi"), b"old b").unwrap();
        fs::write(dir.join("tandem-new.tmp"), b"left by a power cut").unwrap();
        let mut steps = Vec::new();
        write_slot_file(
            &dir,
            "tandem-new.tmp",
            b"new b",
            "tandem-3-b+3.efi",
            &["tandem-1-b+0-3.efi".to_owned()],
            &mut |step| {
                let seen = (
                    dir.join("tandem-new.tmp").exists(),
                    dir.join("tandem-3-b+3.efi").exists(),
                    dir.join("tandem-1-b+0-3.efi").exists(),
                );
                steps.push((step, seen));
            },
        )
        .unwrap();
        assert_eq!(
            steps,
            [
                (InstallStep::TempPartly, (true, false, true)),
                (InstallStep::TempFlushed, (true, false, true)),
                (InstallStep::Renamed, (false, true, true)),
                (InstallStep::Done, (false, true, false)),
            ],
            "the old slot file goes only after the new one is in place"
        );
        assert_eq!(fs::read(dir.join("tandem-3-b+3.efi")).unwrap(), b"new b");
        assert!(!dir.join("tandem-new.tmp").exists());
        assert!(!dir.join("tandem-1-b+0-3.efi").exists());
        assert_eq!(
            fs::read(dir.join("a.efi")).unwrap(),
            b"x",
            "other files untouched"
        );
        assert!(free_bytes(&dir).unwrap() > 0);
        fs::remove_dir_all(&dir).unwrap();
    }
}
