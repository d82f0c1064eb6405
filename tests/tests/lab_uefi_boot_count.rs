//! Boot counting and blessing on the disk image under OVMF (issue 15, slice 2). Each box boots a
//! copy of the production disk image to which the test added a slot b on trial, as an upgrade
//! will write it: `EFI/Linux/tandem-2-b+3.efi`, the same kernel and initramfs with a command
//! line naming slot b (and line commands on the console, so the test can type `reboot`).
//!
//! - `good` (`tandem.bless_after=3`): systemd-boot starts slot b (the newer generation) and
//!   counts the try (`+2-1`); after 3 s of health the box renames it to `tandem-2-b.efi`
//!   (blessed) and says so; after a reboot slot b boots again, blessed, with no counter.
//! - `never` (`tandem.bless_after=never`, a build that never blesses): slot b boots three times
//!   (`+2-1`, `+1-2`, `+0-3`), then systemd-boot skips it and slot a, which nothing touched,
//!   boots again and says that slot b used up its tries. The second try is a hang, not a
//!   reboot (`tandem.test_hang=2`): PID 1 stops petting the i6300esb and stops answering, and
//!   the watchdog resets the box; systemd-boot counts that try like the others.
//!
//! Both boxes run at once: `good`'s reboot overlaps `never`'s tries (one boot each, no more).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::path::{Path, PathBuf};
use std::time::Duration;

use tandem_board::boot_disk::Slot;
use tandem_image::build::slot_cmdline;
use tandem_image::disk::write_esp_file;
use tandem_image::uki::{build_uki, os_release, UkiRequest, DEBIAN_STUB};
use tandem_lab::{BoxSpec, Lab, QemuBox, Segment};

const BOOT: Duration = Duration::from_secs(300);
const STEP: Duration = Duration::from_secs(60);
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A copy of the production disk image with slot b on trial, booting with `extra` words.
fn image_with_trial_slot_b(dir: &Path, name: &str, extra: &str) -> PathBuf {
    let image_dir = tandem_lab::image_dir("qemu-lab");
    let board = tandem_board::by_name("qemu-lab").unwrap();
    let work = dir.join(format!("{name}-uki"));
    let uki = build_uki(&UkiRequest {
        stub: Path::new(DEBIAN_STUB),
        kernel: &image_dir.join("vmlinuz"),
        initramfs: &image_dir.join("initramfs.cpio.gz"),
        os_release: os_release(VERSION, board.name),
        cmdline: format!(
            "{} tandem.name={name} tandem.console=lines {extra}",
            slot_cmdline(board, Slot::B)
        ),
        timestamp: 0,
        work: &work,
    })
    .unwrap();
    let source = tandem_lab::uefi::disk_image("qemu-lab");
    let mut disk = std::fs::read(&source)
        .unwrap_or_else(|e| panic!("{}: {e}; run make image first", source.display()));
    write_esp_file(&mut disk, "EFI/Linux/tandem-2-b+3.efi", &uki, 0).unwrap();
    let path = dir.join(format!("{name}.img"));
    std::fs::write(&path, disk).unwrap();
    path
}

/// Types `reboot` and waits for the next boot's ready line.
fn reboot(qemu_box: &QemuBox) {
    start_reboot(qemu_box);
    qemu_box.console.wait_for("tandem: ready ", BOOT).unwrap();
}

/// Types `reboot`; the caller waits for the next boot's ready line with `wait_for`.
fn start_reboot(qemu_box: &QemuBox) {
    qemu_box.console.skip_to_end();
    qemu_box.console.send_line("reboot").unwrap();
}

#[test]
fn a_trial_slot_is_blessed_after_health_holds_and_one_never_blessed_falls_back_after_three_boots() {
    let dir = std::env::temp_dir().join(format!("tandem-boot-count-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good_image = image_with_trial_slot_b(&dir, "good", "tandem.bless_after=3");
    let never_image =
        image_with_trial_slot_b(&dir, "never", "tandem.bless_after=never tandem.test_hang=2");
    let mut lab = Lab::new().expect("lab");
    lab.start_box(&BoxSpec::new("good", &[Segment::Public]).with_uefi_disk_image(&good_image))
        .unwrap();
    lab.start_box(&BoxSpec::new("never", &[Segment::Public]).with_uefi_disk_image(&never_image))
        .unwrap();
    // The copies are the boxes' own now.
    std::fs::remove_dir_all(&dir).unwrap();

    // good: slot b on its first try, blessed once health held for 3 s.
    let good = &lab.boxes[0];
    good.wait_ready(BOOT).unwrap();
    good.console
        .wait_for_any_time(
            &format!("firmware: {VERSION} slot b (uefi), on trial as tandem-2-b+2-1.efi"),
            STEP,
        )
        .unwrap();
    let blessed = good
        .console
        .wait_for_any_time("firmware: slot b blessed after", STEP)
        .unwrap();
    assert!(
        blessed.contains("tandem-2-b+2-1.efi -> tandem-2-b.efi"),
        "{blessed}"
    );
    good.wait_reply(
        "firmware status",
        "firmware: blessed: renamed to tandem-2-b.efi",
        STEP,
    )
    .unwrap();
    let status = good.status(STEP).unwrap();
    assert!(
        status
            .iter()
            .any(|l| l == &format!("firmware {VERSION} slot b (uefi), blessed as tandem-2-b.efi")),
        "{status:?}"
    );
    // The bless is on the disk: slot b boots again, without a counter (checked after `never`'s
    // tries, which run meanwhile).
    start_reboot(good);

    // never: three tries of slot b (the second one hangs), then back to slot a.
    let never = &lab.boxes[1];
    never.wait_ready(BOOT).unwrap();
    for (try_number, name) in [
        (1, "tandem-2-b+2-1.efi"),
        (2, "tandem-2-b+1-2.efi"),
        (3, "tandem-2-b+0-3.efi"),
    ] {
        if try_number == 2 {
            reboot(never);
        }
        never
            .console
            .wait_for_any_time(
                &format!("firmware: {VERSION} slot b (uefi), on trial as {name}"),
                STEP,
            )
            .unwrap_or_else(|e| panic!("try {try_number}: {e}"));
        if try_number == 2 {
            // The hang: logged, then nothing answers, and the box comes back with no `reboot`
            // typed, no panic and no clean shutdown: the watchdog reset it.
            never
                .console
                .wait_for_any_time(
                    &format!("firmware: tandem.test_hang=2: try 2 of {name} hangs now"),
                    STEP,
                )
                .unwrap();
            let mark = never.console.mark();
            let hung_at = std::time::Instant::now();
            never.console.send_line("firmware status").unwrap();
            never.console.wait_for("tandem: ready ", BOOT).unwrap();
            println!(
                "try 2 hung; ready again {:.1} s later (i6300esb reset + boot)",
                hung_at.elapsed().as_secs_f64()
            );
            let (bytes, _, _) = never.console.bytes_since(mark);
            let text = String::from_utf8_lossy(&bytes);
            let hung = &text[..text.find("tandem: ready ").unwrap()];
            // The daemon's answer, its panic hook's line, the kernel's panic, a clean reboot's
            // lines (the daemon's and the kernel's).
            for not_expected in [
                "firmware: running",
                "PANIC",
                "Kernel panic",
                "rebooting",
                "powering off",
                "Restarting system",
            ] {
                assert!(
                    !hung.contains(not_expected),
                    "`{not_expected}` while hung:\n{hung}"
                );
            }
            continue;
        }
        never
            .wait_reply(
                "firmware status",
                "firmware: on trial, never blessed (tandem.bless_after=never)",
                STEP,
            )
            .unwrap();
        if try_number == 1 {
            continue;
        }
        // Slot a's own command line: the console UI, which logs nothing after its start; the
        // boot log line before it says where the box came back to and why.
        reboot(never);
        never
            .console
            .wait_for(
                &format!(
                    "firmware: {VERSION} slot a (uefi) (tandem-2-b+0-3.efi used up its tries: \
                     fell back)"
                ),
                STEP,
            )
            .unwrap();
    }

    good.console.wait_for("tandem: ready ", BOOT).unwrap();
    good.console
        .wait_for(&format!("firmware: {VERSION} slot b (uefi)"), STEP)
        .unwrap();
    good.wait_reply(
        "firmware status",
        "firmware: systemd-boot started tandem-2-b.efi",
        STEP,
    )
    .unwrap();
    let text = good
        .wait_reply("firmware status", "firmware: slot a: ", STEP)
        .unwrap();
    assert!(text.contains("slot a: tandem-1-a.efi"), "{text}");
}
