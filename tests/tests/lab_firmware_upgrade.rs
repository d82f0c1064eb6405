//! Firmware upgrade with signed bundles on the disk image under OVMF (issue 15, slice 3).
//!
//! The box boots a copy of the production disk image whose slot a carries the same kernel and
//! initramfs with line commands on the console and `tandem.bless_after=3`; its mgmt port gets
//! an address from the config, and the lab host serves bundles over HTTP on the mgmt segment.
//! The bundles are signed here with the key `make image` signed with (the development key
//! under target/, or `TANDEM_SIGNING_KEY`), whose public half the image carries.
//!
//! - A committed config change stands for the operator's config.
//! - Bad signature (a flipped image byte), wrong board, truncated: each `firmware fetch` is
//!   refused naming its reason and counted; the slot files are unchanged.
//! - The good bundle is fetched and installed: slot b is written as `tandem-2-b+3.efi`
//!   (install time printed); after `reboot` slot b runs on trial, is blessed after 3 s, and the
//!   config change is still there. The bundle's image says `tandem.slot=a` on its command line,
//!   as every bundle's image does: the box names its slot from the file systemd-boot started.
//! - And back: the same bundle installed from slot b writes `tandem-3-a+3.efi` (removing
//!   `tandem-1-a.efi` only after), the box boots slot a and blesses it, config still there.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

mod firmware_support;

use std::path::PathBuf;
use std::time::Duration;

use firmware_support::{disk_with_slot_a, test_uki, BOARD, VERSION};
use tandem_image::sign::{manifest_for, SigningKey, DEV_KEY_PATH};
use tandem_lab::{BoxSpec, Lab, QemuBox, Segment};

const BOOT: Duration = Duration::from_secs(300);
const STEP: Duration = Duration::from_secs(60);
const HOST: &str = "10.0.9.1";
const BOX: &str = "10.0.9.2";
const PORT: u16 = 8000;

/// Types `reboot` and waits for the next boot's ready line.
fn reboot(qemu_box: &QemuBox) {
    qemu_box.console.skip_to_end();
    qemu_box.console.send_line("reboot").unwrap();
    qemu_box.console.wait_for("tandem: ready ", BOOT).unwrap();
}

/// The number before ` ms)` in an install line.
fn install_ms(line: &str) -> u64 {
    let before = line.split(" ms)").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap()
}

/// Sends `command` once and waits for its reply line with `pattern` (log lines skipped).
fn once(qemu_box: &QemuBox, command: &str, pattern: &str) -> String {
    firmware_support::once(qemu_box, command, pattern, STEP)
}

/// The `firmware status` block, as one text.
fn firmware_status(qemu_box: &QemuBox) -> String {
    firmware_support::firmware_status(qemu_box, STEP)
}

#[test]
fn a_signed_bundle_is_fetched_installed_and_blessed_and_bad_ones_write_nothing() {
    let dir = std::env::temp_dir().join(format!("tandem-fw-upgrade-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let uki = test_uki(
        &dir,
        "tandem.name=up tandem.console=lines tandem.bless_after=3",
    );
    let disk = disk_with_slot_a(&uki);
    let image: PathBuf = dir.join("up.img");
    std::fs::write(&image, disk).unwrap();

    let key = SigningKey::from_env(&tandem_lab::workspace_root().join(DEV_KEY_PATH)).unwrap();
    let manifest = manifest_for(BOARD, VERSION).unwrap();
    let good = key.bundle(&manifest, &uki);
    let mut bad_signature = good.clone();
    let at = good.len() / 2;
    bad_signature[at] ^= 0x40;
    let mut other_board = manifest.clone();
    other_board.board = "apu2".into();
    let wrong_board = key.bundle(&other_board, &uki);
    let truncated = good[..good.len() - 4096].to_vec();

    let mut lab = Lab::new().expect("lab");
    let host = lab.add_client("fw", Segment::Mgmt).unwrap();
    host.add_address(&format!("{HOST}/24")).unwrap();
    tandem_lab::file_server::serve(
        &host.netns.clone(),
        format!("{HOST}:{PORT}").parse().unwrap(),
        vec![
            ("/good.bundle".into(), good.clone()),
            ("/bad-signature.bundle".into(), bad_signature),
            ("/wrong-board.bundle".into(), wrong_board),
            ("/truncated.bundle".into(), truncated),
        ],
    )
    .unwrap();
    let config = format!("[[interfaces]]\nname = \"mgmt\"\naddresses = [\"{BOX}/24\"]\n");
    lab.start_box(
        &BoxSpec::new("up", &[Segment::Mgmt])
            .with_uefi_disk_image(&image)
            .with_config(&config),
    )
    .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let up = &lab.boxes[0];
    up.wait_ready(BOOT).unwrap();
    up.console
        .wait_for_any_time(&format!("firmware: {VERSION} slot a (uefi)"), STEP)
        .unwrap();

    // The operator's config: a change committed before the upgrade.
    once(
        up,
        "set system.hostname kept-across",
        "set: system.hostname",
    );
    once(up, "commit --comment before-upgrade", "commit: ");
    up.wait_reply("show running", "kept-across", STEP).unwrap();

    // Bad bundles: refused with their reasons, counted, nothing written.
    let before = firmware_status(up);
    assert!(
        before.contains("firmware: slot a: tandem-1-a.efi\n"),
        "{before}"
    );
    assert!(before.contains("firmware: slot b: empty\n"), "{before}");
    for (path, reason, says) in [
        (
            "bad-signature",
            "bad_signature",
            "signature does not match its bytes",
        ),
        (
            "wrong-board",
            "wrong_board",
            "for board apu2, this box is qemu-lab",
        ),
        ("truncated", "truncated", "truncated:"),
    ] {
        let line = once(
            up,
            &format!("firmware fetch http://{HOST}:{PORT}/{path}.bundle"),
            &format!("refused ({reason})"),
        );
        assert!(line.contains(says), "{line}");
        assert!(line.contains("nothing was written"), "{line}");
    }
    let after_refusals = firmware_status(up);
    assert!(
        after_refusals.contains("firmware: refused: bad_signature 1, truncated 1, wrong_board 1\n"),
        "{after_refusals}"
    );
    assert!(
        after_refusals.contains("firmware: slot b: empty\n"),
        "{after_refusals}"
    );
    assert!(
        after_refusals.contains("firmware: slot a: tandem-1-a.efi\n"),
        "{after_refusals}"
    );

    // `firmware install` checks a file on the box the same way.
    let line = once(
        up,
        "firmware install /etc/tandem/board",
        "refused (not_a_bundle)",
    );
    assert!(line.contains("nothing was written"), "{line}");

    // The good one: fetched into RAM, checked, installed into slot b.
    let fetched = once(
        up,
        &format!("firmware fetch http://{HOST}:{PORT}/good.bundle"),
        "signature good",
    );
    assert!(
        fetched.contains(&format!("{} bytes", good.len())),
        "{fetched}"
    );
    let installed = once(
        up,
        "firmware install /run/tandem/fetched.bundle",
        "firmware: installed ",
    );
    assert!(
        installed.contains(&format!(
            "{VERSION} into slot b as tandem-2-b+3.efi ({} bytes in",
            uki.len()
        )),
        "{installed}"
    );
    println!(
        "bench: firmware_install_write_ms {} ms ({} bytes, slot a -> b, under TCG)",
        install_ms(&installed),
        uki.len()
    );
    let written = firmware_status(up);
    assert!(
        written.contains("firmware: slot b: tandem-2-b+3.efi\n"),
        "{written}"
    );
    assert!(
        written.contains("firmware: slot a: tandem-1-a.efi\n"),
        "{written}"
    );
    assert!(
        written.contains("firmware: next boot tandem-2-b+3.efi\n"),
        "{written}"
    );

    // Slot b on trial, blessed, the config kept.
    reboot(up);
    up.console
        .wait_for_any_time(
            &format!("firmware: {VERSION} slot b (uefi), on trial as tandem-2-b+2-1.efi"),
            STEP,
        )
        .unwrap();
    let blessed = up
        .console
        .wait_for_any_time("firmware: slot b blessed after", STEP)
        .unwrap();
    assert!(
        blessed.contains("tandem-2-b+2-1.efi -> tandem-2-b.efi"),
        "{blessed}"
    );
    up.wait_reply("show running", "kept-across", STEP).unwrap();

    // And back to slot a: the old slot a file goes only once the new one is in place.
    once(
        up,
        &format!("firmware fetch http://{HOST}:{PORT}/good.bundle"),
        "signature good",
    );
    let installed = once(
        up,
        "firmware install /run/tandem/fetched.bundle",
        "firmware: installed ",
    );
    assert!(
        installed.contains(&format!("{VERSION} into slot a as tandem-3-a+3.efi")),
        "{installed}"
    );
    println!(
        "bench: firmware_install_write_ms {} ms ({} bytes, slot b -> a, under TCG)",
        install_ms(&installed),
        uki.len()
    );
    let written = firmware_status(up);
    assert!(
        written.contains("firmware: slot a: tandem-3-a+3.efi\n"),
        "{written}"
    );
    assert!(
        written.contains("firmware: slot b: tandem-2-b.efi\n"),
        "{written}"
    );
    reboot(up);
    up.console
        .wait_for_any_time(
            &format!("firmware: {VERSION} slot a (uefi), on trial as tandem-3-a+2-1.efi"),
            STEP,
        )
        .unwrap();
    up.console
        .wait_for_any_time("firmware: slot a blessed after", STEP)
        .unwrap();
    up.wait_reply("show running", "kept-across", STEP).unwrap();
    let last = firmware_status(up);
    assert!(
        last.contains("firmware: slot a: tandem-3-a.efi\n"),
        "{last}"
    );
    assert!(
        last.contains("firmware: slot b: tandem-2-b.efi\n"),
        "{last}"
    );
}
