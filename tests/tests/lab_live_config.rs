//! Live config and the console on the appliance image, under qemu.
//!
//! - A commit typed on the serial console is applied at once (a client reaches the added
//!   address), survives a reboot (the box comes up on the new generation from its config
//!   disk), and `history` shows it with its comment.
//! - Control keys (Ctrl-D, Ctrl-C, Ctrl-Z, Ctrl-\, Ctrl-S, Ctrl-Q) and 256 KiB of random bytes
//!   at full speed on the master's serial console: afterwards the console still answers, the
//!   box did not reboot, and its partner never took over.
//! - A panic in PID 1 (the lab-only `debug panic`) is written to the console and the box
//!   reboots cleanly instead of taking the kernel down.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::time::{Duration, Instant};

use tandem_lab::servers::vrrp_pair;
use tandem_lab::shell::reach;
use tandem_lab::{BoxSpec, Lab, Segment};

const BOOT: Duration = Duration::from_secs(240);
const STEP: Duration = Duration::from_secs(90);

fn interface_config(name: &str, address: &str) -> String {
    format!(
        "[system]\nhostname = \"{name}\"\n\n[[interfaces]]\nname = \"public\"\naddresses = [\"{address}/24\"]\n"
    )
}

/// `vrrp status` typed on the box's console (the block ends with the `tickle:` line).
fn vrrp_status(b: &tandem_lab::QemuBox) -> String {
    b.console.skip_to_end();
    let from = b.console.transcript().len();
    b.console.send_line("vrrp status").unwrap();
    b.console.wait_for("tickle: ", STEP).unwrap();
    let (bytes, _, _) = b.console.bytes_since(from);
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn a_console_commit_applies_live_and_survives_a_reboot() {
    let mut lab = Lab::new().expect("lab");
    let spec = BoxSpec::new("box-c", &[Segment::Public])
        .with_config(&interface_config("box-c", "192.0.2.1"));
    lab.boot(std::slice::from_ref(&spec), BOOT).expect("boot");
    let added = lab.add_client("cl", Segment::Public).unwrap();
    added.add_address("192.0.2.100/24").unwrap();
    let client = added.netns.clone();
    assert!(reach(&client, "192.0.2.1", STEP), "box-c unreachable");
    assert!(!reach(&client, "192.0.2.7", Duration::from_secs(2)));

    let b = lab.box_named("box-c").unwrap();
    b.console.skip_to_end();
    b.console
        .send_line("set interfaces.public.addresses [\"192.0.2.1/24\", \"192.0.2.7/24\"]")
        .unwrap();
    b.console
        .wait_for("set: interfaces.public.addresses", STEP)
        .unwrap();
    b.console.send_line("compare").unwrap();
    b.console.wait_for("+ ", STEP).unwrap();
    b.console
        .send_line("commit --comment \"second address\"")
        .unwrap();
    b.console
        .wait_for("commit: generation 2 applied", STEP)
        .unwrap();
    assert!(
        reach(&client, "192.0.2.7", STEP),
        "the committed address does not answer"
    );

    b.console.send_line("reboot").unwrap();
    let status = b.wait_exit(STEP).unwrap();
    assert!(status.success(), "qemu: {status:?}");
    lab.restart_box(&spec, BOOT).expect("restart");
    let b = lab.box_named("box-c").unwrap();
    b.console
        .wait_for_any_time("config: generation 2 from /dev/vda", BOOT)
        .unwrap();
    assert!(
        reach(&client, "192.0.2.7", STEP),
        "the address is gone after the reboot"
    );
    b.console.skip_to_end();
    b.console.send_line("history").unwrap();
    let line = b.console.wait_for("second address", STEP).unwrap();
    assert!(line.contains("console"), "{line}");
}

#[test]
fn control_keys_and_line_noise_on_the_serial_console_change_nothing() {
    let mut lab = Lab::new().expect("lab");
    lab.boot(&vrrp_pair("web", 60, "192.0.2.60"), BOOT)
        .expect("boot");
    lab.box_named("box-a")
        .unwrap()
        .console
        .wait_for_any_time("vrrp: web: BACKUP -> MASTER", STEP)
        .unwrap();
    // box-b may have been master for a moment before box-a came up; wait until it is backup.
    let b = lab.box_named("box-b").unwrap();
    let started = Instant::now();
    loop {
        let status = vrrp_status(b);
        if status.contains("state BACKUP") && status.contains("192.0.2.1 priority 200") {
            break;
        }
        assert!(
            started.elapsed() < STEP,
            "box-b never settled as backup:\n{status}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let b_settled = b.console.transcript().len();

    let a = lab.box_named("box-a").unwrap();
    for key in [
        b"\x04", b"\x03", b"\x1a", b"\x1c", b"\x13", b"\x11", b"\x04",
    ] {
        a.console.send(key).unwrap();
        a.console.send(b"\r").unwrap();
    }
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let noise: Vec<u8> = (0..256 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[3]
        })
        .collect();
    for chunk in noise.chunks(4096) {
        a.console.send(chunk).unwrap();
    }
    // A line of its own after the noise (the tty may hold a partial line from it).
    a.console.send(b"\r\r").unwrap();
    std::thread::sleep(Duration::from_secs(2));
    a.console.skip_to_end();
    let started = Instant::now();
    let status = loop {
        a.console.send_line("status").unwrap();
        if let Ok(line) = a.console.wait_for("status: end", Duration::from_secs(10)) {
            break line;
        }
        assert!(
            started.elapsed() < STEP,
            "the console no longer answers `status`"
        );
    };
    assert!(status.contains("status: end"));
    a.console.send_line("status").unwrap();
    let counters = a.console.wait_for("status: console", STEP).unwrap();
    assert!(counters.contains("control-chars="), "{counters}");
    let transcript = a.console.transcript();
    assert_eq!(
        transcript.matches("starting as /init").count(),
        1,
        "box-a rebooted"
    );
    assert!(!transcript.contains("Kernel panic"), "box-a panicked");
    assert!(!transcript.contains("poweroff requested"));
    assert!(a.is_running());
    let b = lab.box_named("box-b").unwrap();
    let (since, _, _) = b.console.bytes_since(b_settled);
    let since = String::from_utf8_lossy(&since);
    assert!(!since.contains("-> MASTER"), "box-b took over:\n{since}");
    let status = vrrp_status(b);
    assert!(status.contains("state BACKUP"), "{status}");
}

#[test]
fn a_panic_in_pid_1_is_logged_and_the_box_reboots_cleanly() {
    let mut lab = Lab::new().expect("lab");
    let mut spec = BoxSpec::new("box-p", &[Segment::Public])
        .with_config(&interface_config("box-p", "192.0.2.1"));
    spec.append = "tandem.debug=1".into();
    lab.boot(std::slice::from_ref(&spec), BOOT).expect("boot");
    let b = lab.box_named("box-p").unwrap();
    b.console.skip_to_end();
    b.console.send_line("debug panic").unwrap();
    let line = b.console.wait_for("PANIC in thread", STEP).unwrap();
    assert!(line.contains("deliberate panic"), "{line}");
    assert!(line.contains("rebooting cleanly"), "{line}");
    // The lab runs qemu with -no-reboot, so a reboot ends qemu. A dead PID 1 would end it too
    // (the kernel panics and panic=-1 reboots at once): the transcript tells them apart.
    let status = b.wait_exit(STEP).unwrap();
    assert!(status.success(), "qemu: {status:?}");
    let transcript = b.console.transcript();
    assert!(
        !transcript.contains("Attempted to kill init") && !transcript.contains("Kernel panic"),
        "the kernel panicked:\n{transcript}"
    );
    // reboot(2) was called (the kernel's own line), not an abort of PID 1.
    assert!(
        transcript.contains("reboot: Restarting system"),
        "no clean restart:\n{transcript}"
    );

    // Without tandem.debug=1 the command is refused.
    let spec = BoxSpec::new("box-q", &[Segment::Public]);
    lab.boot(std::slice::from_ref(&spec), BOOT).expect("boot");
    let q = lab.box_named("box-q").unwrap();
    q.console.skip_to_end();
    q.console.send_line("debug panic").unwrap();
    q.console
        .wait_for("debug commands are not enabled", STEP)
        .unwrap();
    assert!(q.is_running());
}
