//! A second public port on the appliance image (issue 13, "Bonding", item 4): a `qemu-lab` box
//! booted with NICs on the public (PCI slot 3), second public (slot 7) and peer (slot 5)
//! segments
//!
//! - names its fifth NIC `public2` from the board profile (the boot log's `nics:` line, `ports`
//!   with its PCI id and carrier, `status`);
//! - has that NIC on the same LAN as `public` (the lab's public bridge), as two cables of a
//!   bonded public side to one switch would be;
//! - and each public port's cable is its own: QMP `set_link` off on `nic-public2` takes the
//!   carrier of `public2` down while `public` keeps it; back on, it comes back.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::process::Command;
use std::time::Duration;

use tandem_lab::{BoxSpec, Lab, Segment};

const BOOT: Duration = Duration::from_secs(240);
/// A console answer and a carrier change seen by sysfs, under TCG on a loaded 2-core machine.
const STEP: Duration = Duration::from_secs(60);

const PUBLIC_PORT: &str = "0000:00:03.0";
const PUBLIC2_PORT: &str = "0000:00:07.0";

/// The `ports` line of `port` as its role and carrier: `ports: ID name=ROLE role=ROLE
/// from=board carrier=CARRIER`.
fn port_line(port: &str, role: &str, carrier: &str) -> String {
    format!("ports: {port} name={role} role={role} from=board carrier={carrier} ")
}

#[test]
fn a_fifth_nic_is_public2_on_the_public_lan_with_a_cable_of_its_own() {
    let mut lab = Lab::new().unwrap();
    let spec = BoxSpec::new("box-a", &[Segment::Public, Segment::Public2, Segment::Peer]);
    lab.boot(std::slice::from_ref(&spec), BOOT).unwrap();
    let box_a = &lab.boxes[0];

    // Named by the board profile, in the board's order.
    box_a
        .console
        .wait_for_any_time("nics: public peer public2", STEP)
        .unwrap();
    box_a
        .wait_reply(
            "ports",
            "ports: board qemu-lab roles public private peer mgmt public2",
            STEP,
        )
        .unwrap();
    let line = box_a
        .wait_reply("ports", &port_line(PUBLIC2_PORT, "public2", "up"), STEP)
        .unwrap();
    assert!(
        line.contains("mac=52:54:00:1a:01:05 driver=virtio_net"),
        "{line}"
    );
    box_a
        .wait_reply("ports", &port_line(PUBLIC_PORT, "public", "up"), STEP)
        .unwrap();

    // Both public NICs are on the public LAN: their taps hang on the same bridge.
    for tap in ["box-a-public", "box-a-public2"] {
        let output = Command::new("ip")
            .args(["-n", &lab.id, "-o", "link", "show", tap])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(text.contains("master br-public "), "{tap}: {text}");
    }

    // The second public cable out: public2 loses its carrier, public keeps its own.
    box_a.set_cable(Segment::Public2, false).unwrap();
    box_a
        .wait_reply("ports", &port_line(PUBLIC2_PORT, "public2", "down"), STEP)
        .unwrap();
    box_a
        .wait_reply("ports", &port_line(PUBLIC_PORT, "public", "up"), STEP)
        .unwrap();
    box_a
        .wait_reply("status", "status: nic public2 public2 up carrier=no", STEP)
        .unwrap();

    // Back in: the carrier comes back.
    box_a.set_cable(Segment::Public2, true).unwrap();
    box_a
        .wait_reply("ports", &port_line(PUBLIC2_PORT, "public2", "up"), STEP)
        .unwrap();
    box_a
        .wait_reply("status", "status: nic public2 public2 up carrier=yes", STEP)
        .unwrap();
}
