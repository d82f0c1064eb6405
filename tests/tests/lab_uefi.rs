//! The flashable disk image (issue 15) boots as a box boots from its disk: OVMF (code read-only,
//! the box's own variable store) finds systemd-boot on the image's EFI system partition, which
//! starts slot a's unified kernel image without a menu; the box reaches ready, keeps its config
//! on the image's `tandem-config` partition (never on the whole disk, whose GPT that would
//! wipe), and says which firmware and slot it runs: on the console UI's Firmware screen,
//! through `status`, as an operator sees it. A `-kernel` box in the same lab says it has no
//! slot and still keeps its config on its raw config disk.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::time::Duration;

use tandem_lab::screen::Screen;
use tandem_lab::{BoxSpec, Lab, Segment};

/// OVMF alone takes ~4 s under TCG and /init runs at ~9 s on a quiet machine; this one is busy.
const BOOT: Duration = Duration::from_secs(300);
const STEP: Duration = Duration::from_secs(60);
const PASSWORD: &str = "lab-admin-pw";

#[test]
fn the_disk_image_boots_under_ovmf_to_ready_and_status_names_its_slot() {
    let mut lab = Lab::new().expect("lab");
    lab.start_box(&BoxSpec::new("uefi", &[Segment::Public]).with_uefi_disk())
        .unwrap();
    lab.start_box(&BoxSpec::new("direct", &[Segment::Public]))
        .unwrap();
    let ready = lab.boxes[0].wait_ready(BOOT).unwrap();
    let uefi = &lab.boxes[0];
    // The firmware booted the disk (not a -kernel), systemd-boot handed over to the kernel.
    uefi.console
        .wait_for_any_time("BdsDxe: starting", STEP)
        .unwrap();
    uefi.console
        .wait_for_any_time("config: slots on partition tandem-config (/dev/vda2)", STEP)
        .unwrap();
    eprintln!("uefi box ready {ready:.3} s after /init");

    // The image's command line has no `tandem.console=lines`: the console UI, as shipped.
    let screen = Screen::new(&uefi.console);
    screen.create_password(PASSWORD, BOOT, STEP).unwrap();
    screen.press("m").unwrap();
    screen.wait_for("Main menu", STEP).unwrap();
    screen.press("f").unwrap();
    let version = env!("CARGO_PKG_VERSION");
    let rows = screen
        .wait_for(&format!("firmware {version} slot a (uefi)"), STEP)
        .unwrap_or_else(|e| panic!("{e}\n{}", screen.dump()));
    assert!(
        rows.iter().any(|r| r.contains("Firmware")),
        "{}",
        screen.dump()
    );

    // The -kernel box: no slot, its whole raw config disk for the config slots.
    let direct = &lab.boxes[1];
    direct.wait_ready(BOOT).unwrap();
    direct
        .console
        .wait_for_any_time("config: slots on the board's config disk /dev/vda", STEP)
        .unwrap();
    let status = direct.status(STEP).unwrap();
    assert!(
        status
            .iter()
            .any(|l| l == &format!("firmware {version} slot -: direct kernel boot")),
        "{status:?}"
    );
}
