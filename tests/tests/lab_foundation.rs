//! Foundation lab tests on real qemu boxes booted from the built image (`make image`):
//! the peer cable carries traffic between two boxes, pulling it stops that, a killed box
//! disappears, and a console request powers a box off cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::time::Duration;

use tandem_lab::{BoxSpec, Lab, Segment};

const BOOT: Duration = Duration::from_secs(180);
/// Probe period 1 s, three misses: a dead peer is declared within ~4 s of guest time; TCG on a
/// loaded 2-core machine stretches that, so allow generously.
const DETECT: Duration = Duration::from_secs(60);

#[test]
fn peer_cable_ping_pull_kill_and_poweroff() {
    let mut lab = Lab::new().expect("lab");
    let pair = [
        BoxSpec::new("box-a", &[Segment::Public, Segment::Peer]),
        BoxSpec::new("box-b", &[Segment::Public, Segment::Peer]),
    ];
    let ready = lab.boot(&pair, BOOT).expect("both boxes boot");
    for seconds in &ready {
        assert!(
            *seconds > 0.0 && *seconds < 60.0,
            "implausible ready time {seconds}"
        );
    }

    // The boxes named their NICs after the board roles and reach each other over the peer cable.
    for name in ["box-a", "box-b"] {
        let b = lab.box_named(name).unwrap();
        b.console
            .wait_for_any_time("nics: public peer", BOOT)
            .unwrap();
        // The board's watchdog timeout (qemu-lab: 30 s) is the driver's now, as it answered.
        b.console
            .wait_for_any_time(
                "watchdog: /dev/watchdog0 armed, resets a box hung for 30 s",
                BOOT,
            )
            .unwrap();
        b.console
            .wait_for("peer: reachable from fe80::", DETECT)
            .unwrap();
        // The kernel publishes operstate a moment after carrier (linkwatch): poll for it.
        let mut status = Vec::new();
        for _ in 0..30 {
            status = b.status(Duration::from_secs(30)).unwrap();
            let has = |prefix: &str| status.iter().any(|l| l.starts_with(prefix));
            if has("nic public public up") && has("nic peer peer up carrier=yes") {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        let has = |prefix: &str| status.iter().any(|l| l.starts_with(prefix));
        assert!(has("nic public public up"), "{status:?}");
        assert!(has("nic peer peer up carrier=yes"), "{status:?}");
        assert!(has("peer reachable fe80::"), "{status:?}");
    }
    // Each box heard the other one, not itself: box-b's MAC-derived address answered box-a.
    let a_heard = lab
        .box_named("box-a")
        .unwrap()
        .console
        .wait_for_any_time("peer: reachable", DETECT)
        .unwrap();
    assert!(
        a_heard.contains("fe80::5054:ff:fe1a:203"),
        "box-a should hear box-b: {a_heard}"
    );
    let b_heard = lab
        .box_named("box-b")
        .unwrap()
        .console
        .wait_for_any_time("peer: reachable", DETECT)
        .unwrap();
    assert!(
        b_heard.contains("fe80::5054:ff:fe1a:103"),
        "box-b should hear box-a: {b_heard}"
    );

    // Pull box-a's peer cable: box-a sees carrier loss, both sides lose the peer.
    lab.box_named("box-a")
        .unwrap()
        .set_cable(Segment::Peer, false)
        .unwrap();
    lab.box_named("box-a")
        .unwrap()
        .console
        .wait_for("link peer: carrier down", DETECT)
        .unwrap();
    lab.box_named("box-a")
        .unwrap()
        .console
        .wait_for("peer: unreachable", DETECT)
        .unwrap();
    lab.box_named("box-b")
        .unwrap()
        .console
        .wait_for("peer: unreachable", DETECT)
        .unwrap();
    let status = lab
        .box_named("box-a")
        .unwrap()
        .status(Duration::from_secs(30))
        .unwrap();
    assert!(
        status.iter().any(|l| l.starts_with("peer unreachable")),
        "{status:?}"
    );

    // Plug it back: reachable again on both sides.
    lab.box_named("box-a")
        .unwrap()
        .set_cable(Segment::Peer, true)
        .unwrap();
    lab.box_named("box-a")
        .unwrap()
        .console
        .wait_for("peer: reachable", DETECT)
        .unwrap();
    lab.box_named("box-b")
        .unwrap()
        .console
        .wait_for("peer: reachable", DETECT)
        .unwrap();

    // Kill box-b like a power cut: its qemu is gone and box-a notices.
    lab.box_named("box-b").unwrap().kill().unwrap();
    assert!(!lab.box_named("box-b").unwrap().is_running());
    lab.box_named("box-a")
        .unwrap()
        .console
        .wait_for("peer: unreachable", DETECT)
        .unwrap();

    // A console request powers box-a off cleanly: qemu exits on its own with success.
    let a = lab.box_named("box-a").unwrap();
    a.console.send_line("poweroff").unwrap();
    a.console.wait_for("tandem: powering off", DETECT).unwrap();
    let status = a.wait_exit(DETECT).unwrap();
    assert!(
        status.success(),
        "qemu should exit cleanly on guest poweroff: {status}"
    );
}

#[test]
fn unknown_console_input_is_answered_and_changes_nothing() {
    let mut lab = Lab::new().expect("lab");
    lab.boot(&[BoxSpec::new("box-c", &[Segment::Public])], BOOT)
        .expect("boot");
    let b = lab.box_named("box-c").unwrap();
    // A line holding control characters (an arrow key, a NUL of a wrong baud rate) is
    // discarded whole with a reason; a plain unknown word is answered as such.
    b.console.send(b"\x1b[A\x00garbage \xff\xfe\r").unwrap();
    b.console
        .wait_for(
            "line discarded: it holds control character ESC (0x1b); nothing was run",
            DETECT,
        )
        .unwrap();
    b.console.send_line("garbage").unwrap();
    b.console.wait_for("unknown command", DETECT).unwrap();
    b.console.send_line("help").unwrap();
    b.console.wait_for("commands: status", DETECT).unwrap();
    let status = b.status(Duration::from_secs(30)).unwrap();
    assert!(
        status
            .iter()
            .any(|l| l.starts_with("name=box-c board=qemu-lab")),
        "{status:?}"
    );
    assert!(status.iter().any(|l| l == "peer none"), "{status:?}");
    assert!(b.is_running());
}

#[test]
fn a_box_applies_the_config_on_its_config_disk_and_a_client_reaches_it() {
    let mut lab = Lab::new().expect("lab");
    let config = r#"
[system]
hostname = "box-d"
[[interfaces]]
name = "public"
addresses = ["192.0.2.1/24", "2001:db8::1/64"]
"#;
    lab.boot(
        &[BoxSpec::new("box-d", &[Segment::Public]).with_config(config)],
        BOOT,
    )
    .expect("boot");
    let b = lab.box_named("box-d").unwrap();
    b.console
        .wait_for_any_time("config: generation 1 from /dev/vda", BOOT)
        .unwrap();
    b.console
        .wait_for_any_time("config: applied", BOOT)
        .unwrap();
    let client = lab.add_client("cl", Segment::Public).unwrap();
    client.add_address("192.0.2.100/24").unwrap();
    client.add_address("2001:db8::100/64").unwrap();
    let mut last = String::new();
    for _ in 0..20 {
        match client.exec("ping", &["-c", "1", "-W", "2", "192.0.2.1"]) {
            Ok(_) => {
                last.clear();
                break;
            }
            Err(e) => last = e,
        }
    }
    assert!(
        last.is_empty(),
        "client cannot reach the configured address: {last}"
    );
    client
        .exec("ping", &["-6", "-c", "1", "-W", "5", "2001:db8::1"])
        .unwrap();
}

#[test]
fn an_erased_config_disk_leaves_the_box_unconfigured_and_says_so() {
    let mut lab = Lab::new().expect("lab");
    lab.boot(&[BoxSpec::new("box-e", &[Segment::Public])], BOOT)
        .expect("boot");
    let b = lab.box_named("box-e").unwrap();
    let line = b
        .console
        .wait_for_any_time("config: nothing stored in /dev/vda", BOOT)
        .unwrap();
    assert!(line.contains("running unconfigured"), "{line}");
}
