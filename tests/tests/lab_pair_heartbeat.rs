//! The pair heartbeat on the appliance image: box-a (priority 200) and box-b (priority 100)
//! share a VIP on the public segment at 1 s adverts and are joined by the peer cable.
//!
//! - The heartbeat comes up both ways (`pair status`: partner alive).
//! - The peer cable pulled (QMP `set_link`): both boxes raise the alarm after probing the
//!   partner on the public segment, and box-b does not take over; replugged, it heals.
//! - box-a dies (QMP `quit`): box-b's heartbeat goes silent, its ARP probe to 192.0.2.1 is not
//!   answered, and it takes over on the heartbeat's word (the cause names it), not after
//!   VRRP's Master_Down_Interval; the client reaches the VIP through box-b.
//!
//! TCG guests on a shared 2-core machine stall for tens of milliseconds, so the lab runs the
//! heartbeat at 50 ms / dead after 500 ms (the probe window follows the dead time); the
//! default 10 ms / 30 ms is for real boxes. Timing figures live in the benches.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::time::Duration;

use tandem_lab::lab_pair::{vip_config, VIP};
use tandem_lab::shell::reach;
use tandem_lab::{BoxSpec, Lab, Segment};

const BOOT: Duration = Duration::from_secs(240);
const SETTLE: Duration = Duration::from_secs(120);
/// How long box-b must stay backup with the cable pulled: longer than the Master_Down_Interval
/// (3.6 s of guest time) with room for a slow guest.
const NO_TAKEOVER: Duration = Duration::from_secs(10);

fn config(name: &str, own: &str, priority: u8) -> String {
    vip_config(name, own, priority, &[])
}

#[test]
fn the_pair_heartbeat_alarms_on_a_cut_cable_and_takes_over_a_dead_box_on_the_image() {
    let mut lab = Lab::new().expect("lab");
    let nics = [Segment::Public, Segment::Peer];
    lab.boot(
        &[
            BoxSpec::new("box-a", &nics).with_config(&config("box-a", "192.0.2.1", 200)),
            BoxSpec::new("box-b", &nics).with_config(&config("box-b", "192.0.2.2", 100)),
        ],
        BOOT,
    )
    .expect("boxes boot");
    lab.box_named("box-a")
        .unwrap()
        .wait_reply("vrrp status", "state MASTER", SETTLE)
        .unwrap();
    lab.box_named("box-b")
        .unwrap()
        .wait_reply("vrrp status", "state BACKUP", SETTLE)
        .unwrap();
    for name in ["box-a", "box-b"] {
        let line = lab
            .box_named(name)
            .unwrap()
            .wait_reply("pair status", "pair: partner alive", SETTLE)
            .unwrap();
        assert!(line.contains("peer carrier up"), "{name}: {line}");
    }
    let client = lab.add_client("cl", Segment::Public).unwrap();
    client.add_address("192.0.2.100/24").unwrap();
    let client = client.netns.clone();
    assert!(reach(&client, VIP, SETTLE), "VIP unreachable");

    // The cable pulled at box-a: an alarm on both consoles, no takeover.
    let mark_a = lab.box_named("box-a").unwrap().console.mark();
    let mark_b = lab.box_named("box-b").unwrap().console.mark();
    lab.box_named("box-a")
        .unwrap()
        .set_cable(Segment::Peer, false)
        .unwrap();
    for (name, mark) in [("box-a", mark_a), ("box-b", mark_b)] {
        let alarm = lab
            .box_named(name)
            .unwrap()
            .console
            .wait_for_since(mark, "pair heartbeat: ALARM: peer cable down", SETTLE)
            .unwrap();
        assert!(
            alarm.contains("partner answers on the service LAN"),
            "{name}: {alarm}"
        );
    }
    let b = lab.box_named("box-b").unwrap();
    assert!(
        b.console
            .wait_for_since(mark_b, "vrrp: public_vip: BACKUP -> MASTER", NO_TAKEOVER)
            .is_err(),
        "box-b took over although only the peer cable was cut"
    );
    b.wait_reply("vrrp status", "state BACKUP", SETTLE).unwrap();
    lab.box_named("box-a")
        .unwrap()
        .set_cable(Segment::Peer, true)
        .unwrap();
    lab.box_named("box-b")
        .unwrap()
        .wait_reply("pair status", "pair: partner alive", SETTLE)
        .unwrap();

    // box-a dies: box-b takes over on the heartbeat.
    let mark = lab.box_named("box-b").unwrap().console.mark();
    lab.box_named("box-a").unwrap().kill().unwrap();
    let b = lab.box_named("box-b").unwrap();
    let takeover = b
        .console
        .wait_for_since(mark, "vrrp: public_vip: BACKUP -> MASTER", SETTLE)
        .unwrap();
    assert!(
        takeover.contains("partner heartbeat lost")
            && takeover.contains("partner silent on the service LAN"),
        "box-b took over for another reason: {takeover}"
    );
    eprintln!("box-b: {takeover}");
    let decision = b
        .wait_reply("pair status", "took over public_vip", SETTLE)
        .unwrap();
    eprintln!("box-b: {decision}");
    assert!(reach(&client, VIP, SETTLE), "the VIP did not come back");
}
