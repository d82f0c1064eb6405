//! What the firmware lab tests share (lab_firmware_upgrade, lab_firmware_power_cut,
//! lab_pair_firmware, lab_pair_upgrade): slot a's unified kernel image built from the lab image
//! with the test's own kernel command line, the disk image carrying it, the bundle signed with
//! the key `make image` signed with, and the console exchanges of an install. A module of the
//! test crates (not of the lab library) because it builds images with tandem-image, a
//! dev-dependency the static lab programs must not pull in.

#![allow(dead_code)] // each test uses its part
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::path::Path;
use std::time::Duration;

use tandem_board::boot_disk::Slot;
use tandem_image::build::slot_cmdline;
use tandem_image::disk::write_esp_file;
use tandem_image::sign::{manifest_for, SigningKey, DEV_KEY_PATH};
use tandem_image::uki::{build_uki, os_release, UkiRequest, DEBIAN_STUB};
use tandem_lab::QemuBox;

/// The board every firmware test boots.
pub const BOARD: &str = "qemu-lab";
/// The firmware version the tests build (this crate's, as the image's).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Slot a's image of the lab image (kernel and initramfs of `make lab-image`): `tandem.slot=a`,
/// then `extra` on its command line (e.g. `tandem.console=lines tandem.bless_after=3`).
pub fn test_uki(dir: &Path, extra: &str) -> Vec<u8> {
    let image_dir = tandem_lab::image_dir(BOARD);
    let board = tandem_board::by_name(BOARD).unwrap();
    build_uki(&UkiRequest {
        stub: Path::new(DEBIAN_STUB),
        kernel: &image_dir.join("vmlinuz"),
        initramfs: &image_dir.join("initramfs.cpio.gz"),
        os_release: os_release(VERSION, board.name),
        cmdline: format!("{} {extra}", slot_cmdline(board, Slot::A)),
        timestamp: 0,
        work: &dir.join("uki"),
    })
    .unwrap()
}

/// The production disk image (`make image`) with `uki` as slot a's file.
pub fn disk_with_slot_a(uki: &[u8]) -> Vec<u8> {
    let source = tandem_lab::uefi::disk_image(BOARD);
    let mut disk = std::fs::read(&source)
        .unwrap_or_else(|e| panic!("{}: {e}; run make image first", source.display()));
    write_esp_file(&mut disk, "EFI/Linux/tandem-1-a.efi", uki, 0).unwrap();
    disk
}

/// `image` as a bundle for [`BOARD`] at [`VERSION`], signed with the key `make image` signed
/// the disk image's key file with (the development key under target/, or TANDEM_SIGNING_KEY).
pub fn signed_bundle(image: &[u8]) -> Vec<u8> {
    let key = SigningKey::from_env(&tandem_lab::workspace_root().join(DEV_KEY_PATH)).unwrap();
    key.bundle(&manifest_for(BOARD, VERSION).unwrap(), image)
}

/// Sends `command` once and waits up to `limit` for its reply line with `pattern` (never
/// resent: it writes; the log lines the box writes meanwhile, `tandem: ...`, are skipped).
pub fn once(qemu_box: &QemuBox, command: &str, pattern: &str, limit: Duration) -> String {
    qemu_box.console.skip_to_end();
    qemu_box.console.send_line(command).unwrap();
    loop {
        let line = qemu_box
            .console
            .wait_for(pattern, limit)
            .unwrap_or_else(|e| panic!("`{command}`: {e}"));
        if !line.contains("tandem: ") {
            return line;
        }
    }
}

/// The `firmware status` block, as one text (each line trimmed, up to `firmware: end`).
pub fn firmware_status(qemu_box: &QemuBox, limit: Duration) -> String {
    qemu_box.console.skip_to_end();
    qemu_box.console.send_line("firmware status").unwrap();
    let mut text = String::new();
    loop {
        let line = qemu_box.console.wait_for("firmware: ", limit).unwrap();
        if line.contains("tandem: ") {
            continue;
        }
        let line = line.trim().to_owned();
        text.push_str(&line);
        text.push('\n');
        if line == "firmware: end" {
            return text;
        }
    }
}
