//! A unified kernel image (UKI): Debian's systemd EFI stub (`linuxx64.efi.stub`, package
//! `systemd-boot-efi`) with the kernel, the initramfs, the kernel command line and an os-release
//! text added as PE sections, so one EFI file boots the firmware and systemd-boot lists it by
//! itself (type #2 entry).
//!
//! The sections are added by binutils' `objcopy` on the build host (never in the appliance),
//! at addresses after the stub's own image, each aligned so the loader maps them where the stub
//! looks. objcopy stamps the PE header with the current time; the stamp is set to the build's
//! fixed time afterwards and the PE checksum recomputed, so the same inputs give the same bytes.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::build::BuildError;

/// Where Debian's `systemd-boot-efi` puts the stub.
pub const DEBIAN_STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

/// What goes into one UKI.
#[derive(Debug, Clone)]
pub struct UkiRequest<'a> {
    pub stub: &'a Path,
    pub kernel: &'a Path,
    pub initramfs: &'a Path,
    /// The `.osrel` text (os-release format).
    pub os_release: String,
    /// The `.cmdline` text.
    pub cmdline: String,
    /// The PE time stamp (seconds since 1970, truncated to 32 bits as PE keeps it).
    pub timestamp: u64,
    /// A scratch directory for the section files and objcopy's output.
    pub work: &'a Path,
}

/// The os-release text of a slot's UKI. It has no `ID`/`IMAGE_ID` on purpose: without them
/// systemd-boot orders the slots by file name (see `tandem_board::boot_disk`), not by version.
pub fn os_release(version: &str, board: &str) -> String {
    format!(
        "NAME=\"Tandem\"\nPRETTY_NAME=\"Tandem {version} ({board})\"\nVERSION=\"{version}\"\n\
         VERSION_ID={version}\nTANDEM_BOARD={board}\n"
    )
}

fn le_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn le_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

/// Offsets of the PE header fields this module reads or patches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeFields {
    /// COFF `TimeDateStamp`.
    pub timestamp_at: usize,
    /// Optional header `CheckSum`.
    pub checksum_at: usize,
    /// Optional header `SizeOfImage` (its value).
    pub size_of_image: u32,
}

/// Finds the PE32+ header fields; `None` when `pe` is not a PE32+ image.
pub fn pe_fields(pe: &[u8]) -> Option<PeFields> {
    if pe.get(0..2) != Some(b"MZ") {
        return None;
    }
    let header = usize::try_from(le_u32(pe, 0x3c)?).ok()?;
    if pe.get(header..header + 4) != Some(b"PE\0\0") {
        return None;
    }
    let optional = header + 24;
    if le_u16(pe, optional)? != 0x20b {
        return None; // PE32+ only
    }
    Some(PeFields {
        timestamp_at: header + 8,
        checksum_at: optional + 64,
        size_of_image: le_u32(pe, optional + 56)?,
    })
}

/// The PE image checksum (as `MapFileAndCheckSum`, and binutils, compute it): the 16-bit
/// one's-complement-style sum of the file with the checksum field taken as zero, plus the
/// file length.
pub fn pe_checksum(pe: &[u8], checksum_at: usize) -> u32 {
    let mut sum: u64 = 0;
    for (i, chunk) in pe.chunks(2).enumerate() {
        let at = i * 2;
        if at >= checksum_at && at < checksum_at + 4 {
            continue;
        }
        let word = u16::from_le_bytes([chunk[0], chunk.get(1).copied().unwrap_or(0)]);
        sum += u64::from(word);
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum = (sum & 0xffff) + (sum >> 16);
    let length = u64::try_from(pe.len()).unwrap_or(u64::MAX);
    u32::try_from((sum + length) & 0xffff_ffff).unwrap_or(u32::MAX)
}

/// One PE section header: name, virtual address, and where its bytes are in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeSection {
    pub name: String,
    /// The section's own size (the file copy is padded to the file alignment).
    pub virtual_size: u32,
    pub virtual_address: u32,
    pub file_offset: u32,
    pub file_size: u32,
}

/// The section table of a PE32+ image (for checks of a built UKI).
pub fn pe_sections(pe: &[u8]) -> Option<Vec<PeSection>> {
    pe_fields(pe)?;
    let header = usize::try_from(le_u32(pe, 0x3c)?).ok()?;
    let count = usize::from(le_u16(pe, header + 6)?);
    let optional_size = usize::from(le_u16(pe, header + 20)?);
    let table = header + 24 + optional_size;
    (0..count)
        .map(|i| {
            let at = table + i * 40;
            let name = pe.get(at..at + 8)?;
            let name = String::from_utf8_lossy(name)
                .trim_end_matches('\0')
                .to_owned();
            Some(PeSection {
                name,
                virtual_size: le_u32(pe, at + 8)?,
                virtual_address: le_u32(pe, at + 12)?,
                file_size: le_u32(pe, at + 16)?,
                file_offset: le_u32(pe, at + 20)?,
            })
        })
        .collect()
}

/// The bytes of section `name`, without the file alignment's padding.
pub fn pe_section<'a>(pe: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let section = pe_sections(pe)?.into_iter().find(|s| s.name == name)?;
    let start = usize::try_from(section.file_offset).ok()?;
    let len = usize::try_from(section.file_size.min(section.virtual_size)).ok()?;
    pe.get(start..start + len)
}

fn align_up(value: u64, align: u64) -> u64 {
    value.div_ceil(align) * align
}

fn read(path: &Path) -> Result<Vec<u8>, BuildError> {
    std::fs::read(path).map_err(|source| BuildError::Read {
        path: path.to_owned(),
        source,
    })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), BuildError> {
    std::fs::write(path, bytes).map_err(|source| BuildError::Write {
        path: path.to_owned(),
        source,
    })
}

/// Builds the UKI and returns its bytes.
pub fn build_uki(request: &UkiRequest<'_>) -> Result<Vec<u8>, BuildError> {
    let stub = read(request.stub)?;
    let fields = pe_fields(&stub).ok_or_else(|| BuildError::Uki {
        what: format!(
            "{} is not a PE32+ EFI stub; install Debian's systemd-boot-efi (make deps does)",
            request.stub.display()
        ),
    })?;
    let kernel_len = std::fs::metadata(request.kernel)
        .map_err(|source| BuildError::Read {
            path: request.kernel.to_owned(),
            source,
        })?
        .len();
    std::fs::create_dir_all(request.work).map_err(|source| BuildError::Write {
        path: request.work.to_owned(),
        source,
    })?;
    let osrel = request.work.join("osrel");
    let cmdline = request.work.join("cmdline");
    write(&osrel, request.os_release.as_bytes())?;
    write(&cmdline, request.cmdline.as_bytes())?;
    // Small sections on page boundaries after the stub; the kernel and the initramfs on MiB
    // boundaries (the stub hands the kernel over from where the loader mapped it).
    const PAGE: u64 = 0x1000;
    const MIB: u64 = 0x10_0000;
    let osrel_at = align_up(u64::from(fields.size_of_image), PAGE);
    let cmdline_at = align_up(osrel_at + request.os_release.len() as u64, PAGE);
    let linux_at = align_up(cmdline_at + request.cmdline.len() as u64, MIB);
    let initrd_at = align_up(linux_at + kernel_len, MIB);
    let out: PathBuf = request.work.join("uki.efi");
    let sections: [(&str, &Path, u64); 4] = [
        (".osrel", &osrel, osrel_at),
        (".cmdline", &cmdline, cmdline_at),
        (".linux", request.kernel, linux_at),
        (".initrd", request.initramfs, initrd_at),
    ];
    let mut command = Command::new("objcopy");
    for (name, file, at) in sections {
        command
            .arg("--add-section")
            .arg(format!("{name}={}", file.display()))
            .arg("--change-section-vma")
            .arg(format!("{name}={at:#x}"));
    }
    command.arg(request.stub).arg(&out);
    let output = command.output().map_err(|e| BuildError::Uki {
        what: format!("cannot run objcopy: {e}; install binutils (make deps does)"),
    })?;
    if !output.status.success() {
        return Err(BuildError::Uki {
            what: format!(
                "objcopy failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            ),
        });
    }
    let mut uki = read(&out)?;
    let _ = std::fs::remove_file(&out);
    let fields = pe_fields(&uki).ok_or_else(|| BuildError::Uki {
        what: "objcopy wrote something that is not a PE32+ image".into(),
    })?;
    let stamp = u32::try_from(request.timestamp & 0xffff_ffff).unwrap_or(0);
    uki[fields.timestamp_at..fields.timestamp_at + 4].copy_from_slice(&stamp.to_le_bytes());
    let checksum = pe_checksum(&uki, fields.checksum_at);
    uki[fields.checksum_at..fields.checksum_at + 4].copy_from_slice(&checksum.to_le_bytes());
    Ok(uki)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_debian_stub_parses_and_its_checksum_is_recomputed_as_binutils_does() {
        let Ok(stub) = std::fs::read(DEBIAN_STUB) else {
            return; // systemd-boot-efi not installed: the image tests say so
        };
        let fields = pe_fields(&stub).unwrap();
        assert!(fields.size_of_image > 0x1000);
        let stored = le_u32(&stub, fields.checksum_at).unwrap();
        assert_eq!(pe_checksum(&stub, fields.checksum_at), stored);
    }

    #[test]
    fn non_pe_input_is_refused() {
        assert_eq!(pe_fields(b"not a PE"), None);
        let mut fake = vec![0u8; 0x200];
        fake[0..2].copy_from_slice(b"MZ");
        fake[0x3c] = 0x80;
        fake[0x80..0x84].copy_from_slice(b"PE\0\0");
        assert_eq!(pe_fields(&fake), None, "a PE32 (not PE32+) optional header");
    }

    #[test]
    fn os_release_names_version_and_board_but_no_id() {
        let text = os_release("0.1.0", "qemu-lab");
        assert!(text.contains("VERSION_ID=0.1.0\n"));
        assert!(text.contains("TANDEM_BOARD=qemu-lab\n"));
        assert!(!text
            .lines()
            .any(|l| l.starts_with("ID=") || l.starts_with("IMAGE_ID=")));
    }
}
