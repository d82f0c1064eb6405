//! VRRP on real qemu boxes: box-a (priority 200) and box-b (priority 100) share a virtual
//! address on the public segment. The client reaches it through box-a; when box-a dies (QMP
//! `quit`, no goodbye) box-b takes the address over and the client's pings resume, now
//! answered by box-b's MAC (moved by its gratuitous ARP or a fresh resolution).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::time::{Duration, Instant};

use tandem_lab::servers::vrrp_pair;
use tandem_lab::shell::{exec_in, reach};
use tandem_lab::{Lab, Segment};

const BOOT: Duration = Duration::from_secs(240);
/// Master_Down_Interval is ~3.6 s of guest time; TCG on a loaded machine stretches that.
const TAKEOVER: Duration = Duration::from_secs(90);
const VIP: &str = "192.0.2.50";

/// The MAC in the client's neighbour table for `address`.
fn neighbour_mac(client: &str, address: &str) -> String {
    let out = exec_in(
        client,
        "ip",
        &["neigh", "show", "to", address, "dev", "eth0"],
    )
    .unwrap_or_default();
    out.split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn the_vip_moves_to_box_b_when_box_a_dies() {
    let mut lab = Lab::new().expect("lab");
    lab.boot(&vrrp_pair("public_vip", 50, VIP), BOOT)
        .expect("boot");
    lab.box_named("box-a")
        .unwrap()
        .console
        .wait_for_any_time("vrrp: public_vip: BACKUP -> MASTER", TAKEOVER)
        .unwrap();
    let added = lab.add_client("cl", Segment::Public).unwrap();
    added.add_address("192.0.2.100/24").unwrap();
    let client = added.netns.clone();
    let client = client.as_str();
    assert!(reach(client, "192.0.2.1", TAKEOVER), "box-a unreachable");
    assert!(reach(client, "192.0.2.2", TAKEOVER), "box-b unreachable");
    let (mac_a, mac_b) = (
        neighbour_mac(client, "192.0.2.1"),
        neighbour_mac(client, "192.0.2.2"),
    );
    assert_ne!(mac_a, mac_b);
    // box-a holds the VIP (box-b may have been master for a moment before box-a booted).
    let started = Instant::now();
    while started.elapsed() < TAKEOVER {
        assert!(reach(client, VIP, TAKEOVER), "VIP unreachable");
        if neighbour_mac(client, VIP) == mac_a {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(
        neighbour_mac(client, VIP),
        mac_a,
        "box-a should hold the VIP"
    );

    lab.box_named("box-a").unwrap().kill().unwrap();
    let b = lab.box_named("box-b").unwrap();
    b.console
        .wait_for_any_time(
            "vrrp: public_vip: BACKUP -> MASTER: master silent for Master_Down_Interval (last master 192.0.2.1)",
            TAKEOVER,
        )
        .unwrap();
    // The client's pings resume, now answered by box-b.
    assert!(
        reach(client, VIP, TAKEOVER),
        "client's pings to the VIP did not resume"
    );
    assert_eq!(neighbour_mac(client, VIP), mac_b);
}
