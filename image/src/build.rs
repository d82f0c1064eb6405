//! Assembling the initramfs and the image directory `target/image/<board>/`.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use flate2::{Compression, GzBuilder};
use tandem_board::modules::{module_name, ModuleError, ModuleIndex};
use tandem_board::BoardProfile;

use crate::cpio::{self, Entry, MODE_DIR, MODE_EXEC, MODE_FILE};
use crate::kernel::Kernel;

/// Where the board name lives in the image (read by `tandem` at boot).
pub const BOARD_FILE: &str = "etc/tandem/board";

/// What to build.
#[derive(Debug, Clone)]
pub struct ImageRequest {
    pub board: &'static BoardProfile,
    pub kernel: Kernel,
    /// The static `tandem` binary.
    pub tandem: PathBuf,
    /// Output directory, normally `target/image/<board>`.
    pub out: PathBuf,
}

/// Sizes of what was built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageReport {
    pub kernel_release: String,
    pub tandem_bytes: u64,
    pub kernel_bytes: u64,
    pub initramfs_bytes: u64,
    pub initramfs_uncompressed_bytes: u64,
    pub modules: Vec<String>,
    pub members: Vec<String>,
}

impl ImageReport {
    /// The `bench:`-style size lines.
    pub fn size_lines(&self) -> Vec<String> {
        vec![
            format!("bench: tandem_binary_bytes {} bytes", self.tandem_bytes),
            format!("bench: kernel_bytes {} bytes", self.kernel_bytes),
            format!("bench: initramfs_bytes {} bytes", self.initramfs_bytes),
            format!(
                "bench: image_total_bytes {} bytes",
                self.kernel_bytes + self.initramfs_bytes
            ),
        ]
    }
}

/// Why the image could not be built.
#[derive(Debug)]
pub enum BuildError {
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    Modules(ModuleError),
    Archive(cpio::CpioError),
    /// The binary is not a static executable and would not run in an image with no libraries.
    NotStatic {
        path: PathBuf,
    },
    /// The unified kernel image could not be assembled.
    Uki {
        what: String,
    },
    /// The disk image could not be laid out.
    Disk {
        what: String,
    },
    /// The signed bundle could not be made.
    Bundle {
        problem: String,
    },
}

impl core::fmt::Display for BuildError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BuildError::Read { path, source } => {
                write!(f, "cannot read {}: {source}", path.display())
            }
            BuildError::Write { path, source } => {
                write!(f, "cannot write {}: {source}", path.display())
            }
            BuildError::Modules(e) => write!(f, "{e}"),
            BuildError::Archive(e) => write!(f, "{e}"),
            BuildError::NotStatic { path } => write!(
                f,
                "{} is dynamically linked (it has a PT_INTERP); build it with \
                 RUSTFLAGS='-C target-feature=+crt-static' --target x86_64-unknown-linux-gnu \
                 (make tandem does)",
                path.display()
            ),
            BuildError::Uki { what } => write!(f, "unified kernel image: {what}"),
            BuildError::Disk { what } => write!(f, "disk image: {what}"),
            BuildError::Bundle { problem } => write!(f, "firmware bundle: {problem}"),
        }
    }
}

impl std::error::Error for BuildError {}

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

/// True when the ELF file has a program interpreter (i.e. needs a dynamic loader).
pub fn has_interpreter(elf: &[u8]) -> bool {
    // ELF64 little-endian: e_phoff at 0x20 (u64), e_phentsize at 0x36, e_phnum at 0x38.
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .and_then(|b| <[u8; 8]>::try_from(b).ok())
            .map(u64::from_le_bytes)
    };
    let (Some(phoff), Some(size), Some(count)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return false;
    };
    let Ok(phoff) = usize::try_from(phoff) else {
        return false;
    };
    (0..usize::from(count)).any(|i| {
        let at = phoff + i * usize::from(size);
        elf.get(at..at + 4) == Some(&3u32.to_le_bytes()[..]) // PT_INTERP
    })
}

/// Adds `path` and every parent directory not yet present.
fn add_with_parents(
    entries: &mut Vec<Entry>,
    dirs: &mut BTreeSet<String>,
    path: &str,
    mode: u32,
    data: Vec<u8>,
) {
    let mut prefix = String::new();
    let parts: Vec<&str> = path.split('/').collect();
    for part in parts.iter().take(parts.len().saturating_sub(1)) {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(part);
        if dirs.insert(prefix.clone()) {
            entries.push(Entry {
                path: prefix.clone(),
                mode: MODE_DIR,
                data: Vec::new(),
            });
        }
    }
    entries.push(Entry {
        path: path.to_owned(),
        mode,
        data,
    });
}

/// A lab-only file put into the image (`--extra SRC:DEST`): test programs such as the lab's
/// HTTP responder. Production images are built without any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFile {
    /// File on the build host.
    pub source: PathBuf,
    /// Path inside the image, relative (`lab/lab-httpd`).
    pub dest: String,
}

impl ExtraFile {
    /// Parses `SRC:DEST`; DEST must be a relative path without `..` and must not be `init`.
    pub fn parse(text: &str) -> Result<ExtraFile, String> {
        let (source, dest) = text
            .split_once(':')
            .ok_or_else(|| format!("--extra {text}: expected SRC:DEST"))?;
        let dest = dest.trim_start_matches('/');
        if source.is_empty()
            || dest.is_empty()
            || dest == "init"
            || dest
                .split('/')
                .any(|p| p == ".." || p == "." || p.is_empty())
        {
            return Err(format!(
                "--extra {text}: DEST must be a plain path inside the image (not init, no ..)"
            ));
        }
        Ok(ExtraFile {
            source: PathBuf::from(source),
            dest: dest.to_owned(),
        })
    }
}

/// Builds the initramfs members for a board: `/init`, board data, modules.
pub fn initramfs_entries(request: &ImageRequest) -> Result<(Vec<Entry>, Vec<String>), BuildError> {
    initramfs_entries_with(request, &[])
}

/// [`initramfs_entries`] plus lab-only extra files (executable when the source is).
pub fn initramfs_entries_with(
    request: &ImageRequest,
    extras: &[ExtraFile],
) -> Result<(Vec<Entry>, Vec<String>), BuildError> {
    let tandem = read(&request.tandem)?;
    if has_interpreter(&tandem) {
        return Err(BuildError::NotStatic {
            path: request.tandem.clone(),
        });
    }
    let dep_path = request.kernel.modules.join("modules.dep");
    let dep = String::from_utf8_lossy(&read(&dep_path)?).into_owned();
    let builtin_text =
        std::fs::read_to_string(request.kernel.modules.join("modules.builtin")).unwrap_or_default();
    let index = ModuleIndex::parse(&dep, &builtin_text).map_err(BuildError::Modules)?;
    let order = index
        .load_order(request.board.all_modules())
        .map_err(BuildError::Modules)?;

    let base = format!("lib/modules/{}", request.kernel.release);
    let builtin_wanted: Vec<&str> = request
        .board
        .all_modules()
        .filter(|m| index.is_builtin(m))
        .collect();
    let builtin_lines: String = builtin_text
        .lines()
        .filter(|line| builtin_wanted.contains(&module_name(line).as_str()))
        .map(|line| format!("{line}\n"))
        .collect();

    // Sorted by path so the archive does not depend on resolution order.
    let mut files: Vec<(String, u32, Vec<u8>)> = vec![
        ("init".to_owned(), MODE_EXEC, tandem),
        (
            BOARD_FILE.to_owned(),
            MODE_FILE,
            format!("{}\n", request.board.name).into_bytes(),
        ),
        (
            format!("{base}/modules.dep"),
            MODE_FILE,
            index.subset_text(&order).into_bytes(),
        ),
        (
            format!("{base}/modules.builtin"),
            MODE_FILE,
            builtin_lines.into_bytes(),
        ),
    ];
    for relative in &order {
        files.push((
            format!("{base}/{relative}"),
            MODE_FILE,
            read(&request.kernel.modules.join(relative))?,
        ));
    }
    for extra in extras {
        use std::os::unix::fs::PermissionsExt;
        let executable = std::fs::metadata(&extra.source)
            .map(|m| m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false);
        files.push((
            extra.dest.clone(),
            if executable { MODE_EXEC } else { MODE_FILE },
            read(&extra.source)?,
        ));
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let mut entries = Vec::new();
    let mut dirs = BTreeSet::new();
    for (path, mode, data) in files {
        add_with_parents(&mut entries, &mut dirs, &path, mode, data);
    }
    let modules = order.iter().map(|p| module_name(p)).collect();
    Ok((entries, modules))
}

/// Builds `vmlinuz` and `initramfs.cpio.gz` into `request.out` and returns their sizes.
pub fn build_image(request: &ImageRequest) -> Result<ImageReport, BuildError> {
    build_image_with(request, &[])
}

/// [`build_image`] with lab-only extra files in the initramfs.
pub fn build_image_with(
    request: &ImageRequest,
    extras: &[ExtraFile],
) -> Result<ImageReport, BuildError> {
    let (entries, modules) = initramfs_entries_with(request, extras)?;
    let mut archive = Vec::new();
    cpio::write_archive(&mut archive, &entries).map_err(BuildError::Archive)?;
    let mut gz = GzBuilder::new()
        .mtime(0)
        .operating_system(3)
        .write(Vec::new(), Compression::best());
    gz.write_all(&archive).map_err(|source| BuildError::Write {
        path: request.out.clone(),
        source,
    })?;
    let compressed = gz.finish().map_err(|source| BuildError::Write {
        path: request.out.clone(),
        source,
    })?;

    std::fs::create_dir_all(&request.out).map_err(|source| BuildError::Write {
        path: request.out.clone(),
        source,
    })?;
    let kernel = read(&request.kernel.vmlinuz)?;
    write(&request.out.join("vmlinuz"), &kernel)?;
    write(&request.out.join("initramfs.cpio.gz"), &compressed)?;
    let members: Vec<String> = entries.iter().map(|e| e.path.clone()).collect();
    let tandem_bytes = entries
        .iter()
        .find(|e| e.path == "init")
        .map_or(0, |e| u64::try_from(e.data.len()).unwrap_or(u64::MAX));
    let report = ImageReport {
        kernel_release: request.kernel.release.clone(),
        tandem_bytes,
        kernel_bytes: u64::try_from(kernel.len()).unwrap_or(u64::MAX),
        initramfs_bytes: u64::try_from(compressed.len()).unwrap_or(u64::MAX),
        initramfs_uncompressed_bytes: u64::try_from(archive.len()).unwrap_or(u64::MAX),
        modules,
        members,
    };
    let mut manifest = format!(
        "board {}\nkernel {}\nmodules {}\n",
        request.board.name,
        report.kernel_release,
        report.modules.join(" ")
    );
    for line in report.size_lines() {
        manifest.push_str(&line);
        manifest.push('\n');
    }
    write(&request.out.join("manifest.txt"), manifest.as_bytes())?;
    Ok(report)
}

/// Where the disk image's EFI parts come from (Debian's `systemd-boot-efi` by default).
#[derive(Debug, Clone)]
pub struct DiskInputs {
    pub stub: PathBuf,
    pub systemd_boot: PathBuf,
    /// Seconds since 1970 for every time stamp (`SOURCE_DATE_EPOCH`).
    pub timestamp: u64,
    /// The firmware version (the UKI's os-release, the GUIDs).
    pub version: String,
}

impl DiskInputs {
    /// Debian's paths, `SOURCE_DATE_EPOCH` (else 1980-01-01, FAT's first day) and this
    /// workspace's version.
    pub fn debian() -> DiskInputs {
        let timestamp = std::env::var("SOURCE_DATE_EPOCH")
            .ok()
            .and_then(|text| text.trim().parse().ok())
            .unwrap_or(315_532_800);
        DiskInputs {
            stub: PathBuf::from(crate::uki::DEBIAN_STUB),
            systemd_boot: PathBuf::from(crate::disk::DEBIAN_SYSTEMD_BOOT),
            timestamp,
            version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// What the disk image step wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskReport {
    pub path: PathBuf,
    pub disk_bytes: u64,
    pub uki_bytes: u64,
    /// The kernel command line of slot a.
    pub cmdline: String,
}

impl DiskReport {
    /// The `bench:`-style size lines.
    pub fn size_lines(&self) -> Vec<String> {
        vec![
            format!("bench: disk_image_bytes {} bytes", self.disk_bytes),
            format!("bench: uki_bytes {} bytes", self.uki_bytes),
        ]
    }
}

/// The disk image's file name for a board.
pub fn disk_image_name(board: &str) -> String {
    format!("tandem-{board}.img")
}

/// The kernel command line of a slot's UKI: the board's console, quiet, reboot at once on a
/// panic (a crash then counts as a failed boot), and the slot.
pub fn slot_cmdline(board: &BoardProfile, slot: tandem_board::boot_disk::Slot) -> String {
    format!(
        "console={},{} quiet panic=-1 {}={slot}",
        board.console.tty,
        board.console.baud,
        tandem_board::boot_disk::SLOT_CMDLINE_KEY
    )
}

/// Writes `tandem-<board>.img` into `request.out` from the `vmlinuz` and `initramfs.cpio.gz`
/// [`build_image`] left there, and adds its sizes to `manifest.txt`.
pub fn build_disk_image(
    request: &ImageRequest,
    inputs: &DiskInputs,
) -> Result<DiskReport, BuildError> {
    build_disk_image_signed(request, inputs, None).map(|(report, _)| report)
}

/// What the bundle step wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleReport {
    pub path: PathBuf,
    pub bytes: u64,
}

/// [`build_disk_image`], and with `key` also the signed bundle
/// `tandem-<board>-<version>.bundle` of the same slot image (`tandem_board::bundle`).
pub fn build_disk_image_signed(
    request: &ImageRequest,
    inputs: &DiskInputs,
    key: Option<&crate::sign::SigningKey>,
) -> Result<(DiskReport, Option<BundleReport>), BuildError> {
    let slot = tandem_board::boot_disk::Slot::A;
    let cmdline = slot_cmdline(request.board, slot);
    let work = request.out.join(".uki-work");
    let uki = crate::uki::build_uki(&crate::uki::UkiRequest {
        stub: &inputs.stub,
        kernel: &request.out.join("vmlinuz"),
        initramfs: &request.out.join("initramfs.cpio.gz"),
        os_release: crate::uki::os_release(&inputs.version, request.board.name),
        cmdline: cmdline.clone(),
        timestamp: inputs.timestamp,
        work: &work,
    })?;
    let _ = std::fs::remove_dir_all(&work);
    let systemd_boot = read(&inputs.systemd_boot)?;
    let image = crate::disk::build_disk(&crate::disk::DiskRequest {
        board: request.board.name,
        version: &inputs.version,
        systemd_boot: &systemd_boot,
        slot_a: &uki,
        timestamp: inputs.timestamp,
    })?;
    let path = request.out.join(disk_image_name(request.board.name));
    write(&path, &image)?;
    let report = DiskReport {
        path,
        disk_bytes: u64::try_from(image.len()).unwrap_or(u64::MAX),
        uki_bytes: u64::try_from(uki.len()).unwrap_or(u64::MAX),
        cmdline,
    };
    let manifest_path = request.out.join("manifest.txt");
    let mut manifest = std::fs::read_to_string(&manifest_path).unwrap_or_default();
    manifest.push_str(&format!("cmdline {}\n", report.cmdline));
    for line in report.size_lines() {
        manifest.push_str(&line);
        manifest.push('\n');
    }
    let bundle = match key {
        None => None,
        Some(key) => {
            let bundle_manifest = crate::sign::manifest_for(request.board.name, &inputs.version)
                .map_err(|problem| BuildError::Bundle { problem })?;
            let bytes = key.bundle(&bundle_manifest, &uki);
            let path = request.out.join(tandem_board::bundle::bundle_file_name(
                request.board.name,
                &inputs.version,
            ));
            write(&path, &bytes)?;
            let bytes = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
            manifest.push_str(&format!("bench: bundle_bytes {bytes} bytes\n"));
            Some(BundleReport { path, bytes })
        }
    };
    write(&manifest_path, manifest.as_bytes())?;
    Ok((report, bundle))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parents_are_added_once_before_their_children() {
        let mut entries = Vec::new();
        let mut dirs = BTreeSet::new();
        add_with_parents(&mut entries, &mut dirs, "a/b/c", MODE_FILE, vec![]);
        add_with_parents(&mut entries, &mut dirs, "a/b/d", MODE_FILE, vec![]);
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a", "a/b", "a/b/c", "a/b/d"]);
    }

    #[test]
    fn extra_files_parse_and_refuse_escapes() {
        assert_eq!(
            ExtraFile::parse("target/x/lab-httpd:/lab/lab-httpd"),
            Ok(ExtraFile {
                source: "target/x/lab-httpd".into(),
                dest: "lab/lab-httpd".into()
            })
        );
        for bad in [
            "nocolon",
            "a:",
            "a:init",
            "a:lab/../init",
            ":lab/x",
            "a:lab//x",
        ] {
            assert!(ExtraFile::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn dynamic_executables_are_recognised() {
        let this = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        // Test binaries are built without crt-static, so they carry an interpreter.
        assert!(has_interpreter(&this));
        assert!(!has_interpreter(b"not an elf"));
    }
}
