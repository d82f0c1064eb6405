//! A power cut during a firmware install (issue 15): qemu is killed (QMP `quit`: what the guest
//! had not flushed is lost, as in a power cut) at each point of the write, and the box boots
//! again from the same disk. The box runs slot a with `tandem.install_pause=4`, which makes the
//! install log each step and pause after it, so the test stops the box exactly there (the kill
//! follows the line within a fraction of a second; 4 s leaves room on a loaded machine, and the
//! pauses of the steps before the cut are the test's own waiting, 3 of them in all).
//!
//! - after the first MiB of the temporary file (not flushed): slot a boots, blessed; slot b is
//!   still empty (the temporary name is no slot file);
//! - after the temporary file is whole and flushed, before the rename: the same;
//! - after the rename: the new slot b is whole, so systemd-boot tries it (`tandem-2-b+2-1.efi`)
//!   and the box comes up on it (it would fall back to slot a after three failed tries, which
//!   `lab_uefi_boot_count` shows);
//! - each install after a cut starts over a left-over temporary file (it is replaced).
//!
//! Slot a's file is never touched: after every cut it is still `tandem-1-a.efi`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

mod firmware_support;

use std::path::PathBuf;
use std::time::Duration;

use firmware_support::{disk_with_slot_a, signed_bundle, test_uki, VERSION};
use tandem_lab::{BoxSpec, Lab, QemuBox, Segment};

const BOOT: Duration = Duration::from_secs(300);
const STEP: Duration = Duration::from_secs(60);
const HOST: &str = "10.0.9.1";
const BOX: &str = "10.0.9.2";
const PORT: u16 = 8000;
/// How long an install may take to reach a step (the steps before it pause 4 s each).
const PAUSED: Duration = Duration::from_secs(120);

/// Sends `command` once and waits for its reply line with `pattern` (log lines skipped).
fn once(qemu_box: &QemuBox, command: &str, pattern: &str) -> String {
    firmware_support::once(qemu_box, command, pattern, STEP)
}

/// The `firmware status` block, as one text.
fn firmware_status(qemu_box: &QemuBox) -> String {
    firmware_support::firmware_status(qemu_box, STEP)
}

#[test]
fn a_power_cut_at_any_step_of_an_install_leaves_a_box_that_boots() {
    let dir = std::env::temp_dir().join(format!("tandem-fw-cut-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let uki = test_uki(
        &dir,
        "tandem.name=cut tandem.console=lines tandem.bless_after=never tandem.install_pause=4",
    );
    let disk = disk_with_slot_a(&uki);
    let image: PathBuf = dir.join("cut.img");
    std::fs::write(&image, disk).unwrap();
    let good = signed_bundle(&uki);

    let mut lab = Lab::new().expect("lab");
    let host = lab.add_client("cut", Segment::Mgmt).unwrap();
    host.add_address(&format!("{HOST}/24")).unwrap();
    tandem_lab::file_server::serve(
        &host.netns.clone(),
        format!("{HOST}:{PORT}").parse().unwrap(),
        vec![("/good.bundle".into(), good)],
    )
    .unwrap();
    let config = format!("[[interfaces]]\nname = \"mgmt\"\naddresses = [\"{BOX}/24\"]\n");
    let spec = BoxSpec::new("cut", &[Segment::Mgmt])
        .with_uefi_disk_image(&image)
        .with_config(&config);
    lab.start_box(&spec).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    lab.boxes[0].wait_ready(BOOT).unwrap();

    for (step, new_slot_boots) in [
        ("temp-partly-written", false),
        ("temp-flushed", false),
        ("renamed", true),
    ] {
        let cut = &lab.boxes[0];
        once(
            cut,
            &format!("firmware fetch http://{HOST}:{PORT}/good.bundle"),
            "signature good",
        );
        cut.console.skip_to_end();
        cut.console
            .send_line("firmware install /run/tandem/fetched.bundle")
            .unwrap();
        cut.console
            .wait_for(&format!("firmware: install step {step} "), PAUSED)
            .unwrap_or_else(|e| panic!("{step}: {e}"));
        // The power cut.
        lab.boxes[0].kill().unwrap();
        lab.restart_box(&spec, BOOT)
            .unwrap_or_else(|e| panic!("no boot after a cut at {step}: {e}"));
        let cut = &lab.boxes[0];
        let status = firmware_status(cut);
        if new_slot_boots {
            assert!(
                status.contains(&format!(
                    "firmware: running {VERSION} slot b (uefi), on trial as tandem-2-b+2-1.efi"
                )),
                "cut at {step}: {status}"
            );
        } else {
            assert!(
                status.contains(&format!("firmware: running {VERSION} slot a (uefi)\n")),
                "cut at {step}: {status}"
            );
            assert!(
                status.contains("firmware: slot b: empty\n"),
                "cut at {step}: {status}"
            );
        }
        assert!(
            status.contains("firmware: slot a: tandem-1-a.efi\n"),
            "cut at {step}: {status}"
        );
        println!(
            "cut at {step}: the box booted; {}",
            status.lines().next().unwrap()
        );
    }
}
