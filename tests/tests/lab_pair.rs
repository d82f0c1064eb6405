//! The pair on the appliance image: pairing from the two consoles, replication both ways, and
//! the replacement of a dead box.
//!
//! box-a boots with a pair config (the shared VRRP instance and VIP, and each box's address,
//! hostname and priority in `[pair.a]` / `[pair.b]`); box-b boots factory-fresh (an erased
//! config disk). `pair start` on box-a's console shows the code, `pair join CODE` on box-b's
//! pairs them: box-b receives the whole config and runs its half (backup, priority 100) while
//! box-a runs its own (master, priority 200), and a client reaches the VIP.
//!
//! - A commit on box-a is running on box-b, and one on box-b on box-a.
//! - Replacement: box-b dies, its config disk is erased (a new box from the shelf), it boots,
//!   `pair start` on box-a and `pair join CODE` on it: it comes up with the pair config and
//!   box-b's half, takes the VRRP backup role, and the client reaches the VIP throughout
//!   (box-a stays master).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::time::Duration;

use tandem_lab::shell::reach;
use tandem_lab::{BoxSpec, Lab, Segment};

const BOOT: Duration = Duration::from_secs(240);
const SETTLE: Duration = Duration::from_secs(120);
const VIP: &str = "192.0.2.50";

const PAIR_CONFIG: &str = r#"
[system]
hostname = "director"

[peer_link]
interface = "peer"
heartbeat_interval_ms = 50
dead_after_ms = 500

[[interfaces]]
name = "public"

[[interfaces]]
name = "peer"

[[vrrp]]
name = "public_vip"
version = "v3"
vrid = 53
interface = "public"
priority = 100
advert_interval_cs = 100
accept_mode = true

[[vrrp.vips]]
address = "192.0.2.50"
prefix = 24

[pair.a]
hostname = "box-a"

[[pair.a.interfaces]]
name = "public"
addresses = ["192.0.2.1/24"]

[[pair.a.vrrp]]
name = "public_vip"
priority = 200

[pair.b]
hostname = "box-b"

[[pair.b.interfaces]]
name = "public"
addresses = ["192.0.2.2/24"]

[[pair.b.vrrp]]
name = "public_vip"
priority = 100
"#;

/// `pair start` on box-a, `pair join CODE` on box-b; returns box-b's answer line.
fn pair_up(lab: &mut Lab) -> String {
    tandem_lab::lab_pair::pair_from_consoles(lab, SETTLE).unwrap()
}

#[test]
fn pairing_replication_and_a_replacement_box_on_the_image() {
    let mut lab = Lab::new().expect("lab");
    let nics = [Segment::Public, Segment::Peer];
    let spec_b = BoxSpec::new("box-b", &nics);
    lab.boot(
        &[
            BoxSpec::new("box-a", &nics).with_config(PAIR_CONFIG),
            spec_b.clone(),
        ],
        BOOT,
    )
    .expect("boxes boot");
    let joined = pair_up(&mut lab);
    assert!(
        joined.contains("stored on this box's config disk"),
        "{joined}"
    );
    // box-a runs its half: master with the VIP; box-b received the config and runs its half.
    lab.box_named("box-a")
        .unwrap()
        .wait_reply("vrrp status", "state MASTER", SETTLE)
        .unwrap();
    let b = lab.box_named("box-b").unwrap();
    b.wait_reply("pair status", "in sync", SETTLE).unwrap();
    b.wait_reply("vrrp status", "state BACKUP", SETTLE).unwrap();
    b.wait_reply("show running", "hostname = \"box-b\"", SETTLE)
        .unwrap();
    // The heartbeat runs under the new pair key on both boxes.
    for name in ["box-a", "box-b"] {
        lab.box_named(name)
            .unwrap()
            .wait_reply("pair status", "pair: partner alive", SETTLE)
            .unwrap();
    }
    let client = lab.add_client("cl", Segment::Public).unwrap();
    client.add_address("192.0.2.100/24").unwrap();
    let client = client.netns.clone();
    assert!(reach(&client, VIP, SETTLE), "VIP unreachable");

    // A commit on box-a runs on box-b, and one on box-b on box-a.
    let a = lab.box_named("box-a").unwrap();
    a.console.send_line("set system.hostname shared-1").unwrap();
    a.console.send_line("commit").unwrap();
    a.console
        .wait_for("commit: generation 2 applied", SETTLE)
        .unwrap();
    lab.box_named("box-b")
        .unwrap()
        .wait_reply("show running", "hostname = \"shared-1\"", SETTLE)
        .unwrap();
    let b = lab.box_named("box-b").unwrap();
    b.console.send_line("set system.hostname shared-2").unwrap();
    b.console.send_line("commit").unwrap();
    b.console
        .wait_for("commit: generation 3 applied", SETTLE)
        .unwrap();
    lab.box_named("box-a")
        .unwrap()
        .wait_reply("show running", "hostname = \"shared-2\"", SETTLE)
        .unwrap();
    assert!(
        reach(&client, VIP, SETTLE),
        "VIP unreachable after the commits"
    );

    // box-b dies and is replaced by a factory-fresh box.
    lab.box_named("box-b").unwrap().kill().unwrap();
    assert!(
        reach(&client, VIP, SETTLE),
        "VIP unreachable with box-b dead"
    );
    lab.erase_config_disk("box-b").unwrap();
    lab.restart_box(&spec_b, BOOT).unwrap();
    let fresh = lab
        .box_named("box-b")
        .unwrap()
        .wait_reply("pair status", "pair: not paired", SETTLE)
        .unwrap();
    assert!(fresh.contains("not paired"), "{fresh}");
    let joined = pair_up(&mut lab);
    assert!(joined.contains("the partner is a"), "{joined}");
    let b = lab.box_named("box-b").unwrap();
    b.wait_reply("pair status", "in sync", SETTLE).unwrap();
    b.wait_reply("show running", "hostname = \"shared-2\"", SETTLE)
        .unwrap();
    b.wait_reply("vrrp status", "state BACKUP", SETTLE).unwrap();
    lab.box_named("box-a")
        .unwrap()
        .wait_reply("vrrp status", "state MASTER", SETTLE)
        .unwrap();
    assert!(
        reach(&client, VIP, SETTLE),
        "VIP unreachable after the replacement"
    );
}
