//! The flashable disk image (`--disk`, issue 15): built twice from the same inputs it is the
//! same bytes, and a different build time changes them (the FAT and PE time stamps follow
//! `SOURCE_DATE_EPOCH`); read back it is a GPT disk with the EFI system partition and the config
//! partition where the appliance looks, systemd-boot where UEFI firmware looks, `loader.conf`
//! without menu or editor, and slot a's unified kernel image holding exactly the image's kernel
//! and initramfs and a command line naming slot a. The same checks run on the image `make
//! image` built.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use tandem_board::boot_disk::{CONFIG_PARTITION_NAME, CONFIG_PARTITION_TYPE, ESP_PARTITION_NAME};
use tandem_image::build::disk_image_name;
use tandem_image::kernel::Kernel;
use tandem_image::uki::pe_section;
use tandem_image::{build_disk_image, build_image, DiskInputs, ImageRequest};

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tandem-disk-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A kernel tree with the board's modules as small stand-ins (objcopy does not look inside).
fn fake_kernel(root: &Path) -> Kernel {
    let release = "6.1.0-99-amd64";
    let modules = root.join("lib/modules").join(release);
    std::fs::create_dir_all(modules.join("kernel/fake")).unwrap();
    let mut dep = String::new();
    for module in tandem_board::profiles::QEMU_LAB.all_modules() {
        let path = format!("kernel/fake/{module}.ko");
        std::fs::write(modules.join(&path), format!("module {module}")).unwrap();
        dep.push_str(&format!("{path}:\n"));
    }
    std::fs::write(modules.join("modules.dep"), dep).unwrap();
    std::fs::create_dir_all(root.join("boot")).unwrap();
    let vmlinuz = root.join("boot").join(format!("vmlinuz-{release}"));
    std::fs::write(&vmlinuz, vec![0x4b; 3 << 20]).unwrap();
    Kernel {
        release: release.into(),
        vmlinuz,
        modules,
    }
}

fn build(root: &Path, out: &str, timestamp: u64) -> (PathBuf, Vec<u8>) {
    let tandem = root.join("tandem");
    std::fs::write(&tandem, b"\x7fELF static stand-in").unwrap();
    let request = ImageRequest {
        board: tandem_board::by_name("qemu-lab").unwrap(),
        kernel: fake_kernel(root),
        tandem,
        out: root.join(out),
    };
    build_image(&request).unwrap();
    let inputs = DiskInputs {
        timestamp,
        ..DiskInputs::debian()
    };
    let report = build_disk_image(&request, &inputs)
        .unwrap_or_else(|e| panic!("{e} (make deps installs systemd-boot-efi and binutils)"));
    let bytes = std::fs::read(&report.path).unwrap();
    assert_eq!(report.disk_bytes, bytes.len() as u64);
    (request.out, bytes)
}

/// A partition's bytes, by its GPT name.
fn partition<'a>(disk: &'a [u8], name: &str) -> (&'a [u8], gpt::partition::Partition) {
    let gpt = gpt::GptConfig::new()
        .writable(false)
        .open_from_device(Cursor::new(disk.to_vec()))
        .unwrap();
    let part = gpt
        .partitions()
        .values()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no partition {name}: {:?}", gpt.partitions()))
        .clone();
    let start = usize::try_from(part.first_lba * 512).unwrap();
    let end = usize::try_from((part.last_lba + 1) * 512).unwrap();
    (&disk[start..end], part)
}

fn read_file<T: Read + std::io::Write + std::io::Seek>(
    fs: &fatfs::FileSystem<T>,
    path: &str,
) -> Vec<u8> {
    let mut data = Vec::new();
    fs.root_dir()
        .open_file(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .read_to_end(&mut data)
        .unwrap();
    data
}

/// Every check of a disk image built from `dir`'s kernel and initramfs.
fn check_disk(dir: &Path, disk: &[u8]) {
    assert_eq!(&disk[510..512], &[0x55, 0xaa], "protective MBR");
    assert_eq!(disk[450], 0xee, "protective MBR partition type");
    let (esp, esp_part) = partition(disk, ESP_PARTITION_NAME);
    assert_eq!(esp_part.part_type_guid, gpt::partition_types::EFI);
    assert_eq!(esp_part.first_lba * 512 % (1 << 20), 0, "MiB-aligned");
    let (config, config_part) = partition(disk, CONFIG_PARTITION_NAME);
    assert_eq!(
        config_part.part_type_guid.guid.to_string(),
        CONFIG_PARTITION_TYPE
    );
    assert_eq!(
        config.len() as u64,
        tandem_board::boot_disk::CONFIG_PARTITION_BYTES
    );
    assert!(config.iter().all(|&b| b == 0), "config slots ship erased");

    let fs = fatfs::FileSystem::new(Cursor::new(esp.to_vec()), fatfs::FsOptions::new()).unwrap();
    assert_eq!(fs.fat_type(), fatfs::FatType::Fat32);
    let systemd_boot = std::fs::read(tandem_image::disk::DEBIAN_SYSTEMD_BOOT).unwrap();
    assert_eq!(read_file(&fs, "EFI/BOOT/BOOTX64.EFI"), systemd_boot);
    assert_eq!(
        read_file(&fs, "EFI/systemd/systemd-bootx64.efi"),
        systemd_boot
    );
    let loader = String::from_utf8(read_file(&fs, "loader/loader.conf")).unwrap();
    for line in ["timeout 0", "editor no", "default tandem-*"] {
        assert!(loader.lines().any(|l| l == line), "{loader}");
    }
    let slots: Vec<String> = fs
        .root_dir()
        .open_dir("EFI/Linux")
        .unwrap()
        .iter()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "." && n != "..")
        .collect();
    assert_eq!(slots, ["tandem-1-a.efi"], "slot a filled, slot b empty");
    let uki = read_file(&fs, "EFI/Linux/tandem-1-a.efi");
    assert_eq!(
        pe_section(&uki, ".linux").unwrap(),
        std::fs::read(dir.join("vmlinuz")).unwrap()
    );
    assert_eq!(
        pe_section(&uki, ".initrd").unwrap(),
        std::fs::read(dir.join("initramfs.cpio.gz")).unwrap()
    );
    let cmdline = String::from_utf8(pe_section(&uki, ".cmdline").unwrap().to_vec()).unwrap();
    assert!(
        cmdline.split_whitespace().any(|w| w == "tandem.slot=a"),
        "{cmdline}"
    );
    assert!(cmdline.contains("console=ttyS0,115200"), "{cmdline}");
    let osrel = String::from_utf8(pe_section(&uki, ".osrel").unwrap().to_vec()).unwrap();
    assert!(
        osrel.contains(&format!("VERSION_ID={}", env!("CARGO_PKG_VERSION"))),
        "{osrel}"
    );
    assert!(
        !osrel.lines().any(|l| l.starts_with("ID=")),
        "no ID: slots sort by file name"
    );
    // systemd-boot's own section, so the stub is the systemd one.
    assert!(pe_section(&uki, ".sdmagic").is_some());
}

#[test]
fn the_disk_image_is_reproducible_and_holds_the_boot_chain_and_slot_a() {
    let root = temp("repro");
    let (dir_a, first) = build(&root, "a", 1_700_000_000);
    let (_, second) = build(&root, "b", 1_700_000_000);
    assert!(
        first == second,
        "two builds of the same inputs differ (first difference at byte {:?})",
        first.iter().zip(&second).position(|(x, y)| x != y)
    );
    let (_, later) = build(&root, "c", 1_800_000_000);
    assert_ne!(first, later, "the build time reaches the FAT and PE stamps");
    assert_eq!(first.len(), later.len());
    check_disk(&dir_a, &first);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn the_disk_image_make_image_built() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../target/image")
        .join("qemu-lab");
    let path = dir.join(disk_image_name("qemu-lab"));
    let disk = std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run make image first", path.display()));
    check_disk(&dir, &disk);
    let manifest = std::fs::read_to_string(dir.join("manifest.txt")).unwrap();
    assert!(
        manifest.contains(&format!("bench: disk_image_bytes {} bytes", disk.len())),
        "{manifest}"
    );
}
