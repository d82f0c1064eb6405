//! Factory reset on the appliance image, under qemu: `factory-reset` on the serial console says
//! what it erases and erases nothing; `factory-reset confirm` without it is refused; with it the
//! box erases its config disk's two config slots and its identity region (pair key, admin
//! password, port map), reboots, and comes up unconfigured with no generation stored.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::time::Duration;

use tandem_config::identity::IDENTITY_BYTES;
use tandem_config::storage::APPLIANCE_SLOT_BYTES;
use tandem_lab::{BoxSpec, Lab, Segment};

const BOOT: Duration = Duration::from_secs(240);
const STEP: Duration = Duration::from_secs(90);

#[test]
fn factory_reset_erases_config_and_keys_and_boots_unconfigured() {
    let mut lab = Lab::new().expect("lab");
    let spec = BoxSpec::new("box-r", &[Segment::Public]).with_config(
        "[system]\nhostname = \"box-r\"\n\n[[interfaces]]\nname = \"public\"\naddresses = [\"192.0.2.1/24\"]\n",
    );
    lab.boot(std::slice::from_ref(&spec), BOOT).expect("boot");
    let disk = lab.dir.join("box-r.config.img");
    let b = lab.box_named("box-r").unwrap();
    b.console.skip_to_end();
    b.console.send_line("set system.hostname renamed").unwrap();
    b.console.wait_for("set: system.hostname", STEP).unwrap();
    b.console.send_line("commit").unwrap();
    b.console
        .wait_for("commit: generation 2 applied", STEP)
        .unwrap();
    // A port map (stored in the identity region) to see it go too.
    b.console.send_line("ports reset").unwrap();
    b.console
        .wait_for("ports: the board profile's ports are back", STEP)
        .unwrap();

    // Not asked for first: refused, the box keeps running.
    b.console.send_line("factory-reset confirm").unwrap();
    b.console
        .wait_for("type `factory-reset` first", STEP)
        .unwrap();
    // Asked for: the warning, and still nothing erased.
    b.console.send_line("factory-reset").unwrap();
    b.console
        .wait_for("Type `factory-reset confirm` within 60 s", STEP)
        .unwrap();
    assert!(b.is_running());
    b.console.send_line("factory-reset confirm").unwrap();
    b.console
        .wait_for("Rebooting into the factory config", STEP)
        .unwrap();
    let status = b.wait_exit(STEP).unwrap();
    assert!(status.success(), "qemu: {status:?}");

    // Every byte of the slots and the identity region reads as a fresh disk.
    let bytes = std::fs::read(&disk).unwrap();
    let region = usize::try_from(2 * APPLIANCE_SLOT_BYTES + IDENTITY_BYTES).unwrap();
    assert!(bytes.len() >= region);
    let kept = bytes[..region].iter().filter(|b| **b != 0xFF).count();
    assert_eq!(kept, 0, "{kept} bytes of the config disk were not erased");

    lab.restart_box(&spec, BOOT).expect("restart");
    let b = lab.box_named("box-r").unwrap();
    b.console
        .wait_for_any_time("config: nothing stored in /dev/vda", BOOT)
        .unwrap();
    b.console.skip_to_end();
    // Nothing stored: the history is empty (a generation would print `history:     N ...`).
    b.console.send_line("history").unwrap();
    b.console.wait_for("history: no commits yet", STEP).unwrap();
    b.console.send_line("status").unwrap();
    let line = b.console.wait_for("status: name=", STEP).unwrap();
    assert!(!line.contains("renamed"), "{line}");
}
