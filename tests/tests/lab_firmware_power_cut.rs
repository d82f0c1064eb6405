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

use std::path::{Path, PathBuf};
use std::time::Duration;

use tandem_board::boot_disk::Slot;
use tandem_image::build::slot_cmdline;
use tandem_image::disk::write_esp_file;
use tandem_image::sign::{manifest_for, SigningKey, DEV_KEY_PATH};
use tandem_image::uki::{build_uki, os_release, UkiRequest, DEBIAN_STUB};
use tandem_lab::{BoxSpec, Lab, QemuBox, Segment};

const BOOT: Duration = Duration::from_secs(300);
const STEP: Duration = Duration::from_secs(60);
const VERSION: &str = env!("CARGO_PKG_VERSION");
const BOARD: &str = "qemu-lab";
const HOST: &str = "10.0.9.1";
const BOX: &str = "10.0.9.2";
const PORT: u16 = 8000;
/// How long an install may take to reach a step (the steps before it pause 4 s each).
const PAUSED: Duration = Duration::from_secs(120);

fn test_uki(dir: &Path) -> Vec<u8> {
    let image_dir = tandem_lab::image_dir(BOARD);
    let board = tandem_board::by_name(BOARD).unwrap();
    build_uki(&UkiRequest {
        stub: Path::new(DEBIAN_STUB),
        kernel: &image_dir.join("vmlinuz"),
        initramfs: &image_dir.join("initramfs.cpio.gz"),
        os_release: os_release(VERSION, board.name),
        cmdline: format!(
            "{} tandem.name=cut tandem.console=lines tandem.bless_after=never \
             tandem.install_pause=4",
            slot_cmdline(board, Slot::A)
        ),
        timestamp: 0,
        work: &dir.join("uki"),
    })
    .unwrap()
}

/// The `firmware status` block, as one text.
fn firmware_status(qemu_box: &QemuBox) -> String {
    qemu_box.console.skip_to_end();
    qemu_box.console.send_line("firmware status").unwrap();
    let mut text = String::new();
    loop {
        let line = qemu_box.console.wait_for("firmware: ", STEP).unwrap();
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

/// Sends `command` once and waits for its reply line with `pattern` (log lines skipped).
fn once(qemu_box: &QemuBox, command: &str, pattern: &str) -> String {
    qemu_box.console.skip_to_end();
    qemu_box.console.send_line(command).unwrap();
    loop {
        let line = qemu_box
            .console
            .wait_for(pattern, STEP)
            .unwrap_or_else(|e| panic!("`{command}`: {e}"));
        if !line.contains("tandem: ") {
            return line;
        }
    }
}

#[test]
fn a_power_cut_at_any_step_of_an_install_leaves_a_box_that_boots() {
    let dir = std::env::temp_dir().join(format!("tandem-fw-cut-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let uki = test_uki(&dir);
    let source = tandem_lab::uefi::disk_image(BOARD);
    let mut disk = std::fs::read(&source)
        .unwrap_or_else(|e| panic!("{}: {e}; run make image first", source.display()));
    write_esp_file(&mut disk, "EFI/Linux/tandem-1-a.efi", &uki, 0).unwrap();
    let image: PathBuf = dir.join("cut.img");
    std::fs::write(&image, disk).unwrap();
    let key = SigningKey::from_env(&tandem_lab::workspace_root().join(DEV_KEY_PATH)).unwrap();
    let good = key.bundle(&manifest_for(BOARD, VERSION).unwrap(), &uki);

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
