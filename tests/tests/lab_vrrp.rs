//! VRRP on real qemu boxes: box-a (priority 200) and box-b (priority 100) share a virtual
//! address on the public segment. The client reaches it through box-a; when box-a dies (QMP
//! `quit`, no goodbye) box-b takes the address over and the client's pings resume, now
//! answered by box-b's MAC (moved by its gratuitous ARP or a fresh resolution). A master
//! without Accept_Mode (the RFC default) drops what is addressed to its VIP, on the image: the
//! VRRP engine loads nf_tables alone, with the crc32c provider libcrc32c needs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::time::{Duration, Instant};

use tandem_lab::servers::vrrp_pair;
use tandem_lab::shell::{exec_in, reach};
use tandem_lab::{BoxSpec, Lab, Segment};

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

    // box-b may already have logged a takeover while box-a booted: only a line after the kill
    // counts.
    lab.box_named("box-b").unwrap().console.skip_to_end();
    lab.box_named("box-a").unwrap().kill().unwrap();
    let b = lab.box_named("box-b").unwrap();
    b.console
        .wait_for(
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

#[test]
fn a_master_without_accept_mode_drops_traffic_to_its_vip() {
    let config = format!(
        r#"
[system]
hostname = "box-a"

[[interfaces]]
name = "public"
addresses = ["192.0.2.1/24"]

[[vrrp]]
name = "public_vip"
version = "v3"
vrid = 50
interface = "public"
priority = 200
advert_interval_cs = 100
# The RFC default, spelled out: a master that does not own the VIP drops what is sent to it.
accept_mode = false

[[vrrp.vips]]
address = "{VIP}"
prefix = 24
"#
    );
    let mut lab = Lab::new().expect("lab");
    lab.boot(
        &[BoxSpec::new("box-a", &[Segment::Public]).with_config(&config)],
        BOOT,
    )
    .expect("boot");
    let a = lab.box_named("box-a").unwrap();
    // As PID 1 without modprobe: nf_tables needs libcrc32c, whose init needs a crc32c provider.
    let loaded = a
        .console
        .wait_for_any_time("tandem: vrrp: accept_mode: loaded ", TAKEOVER)
        .unwrap();
    assert!(
        loaded.ends_with("crc32c_generic libcrc32c nf_tables"),
        "{loaded}"
    );
    a.console
        .wait_for_any_time(
            &format!("vrrp: accept_mode=false: dropping local delivery to {VIP}"),
            TAKEOVER,
        )
        .unwrap();
    let added = lab.add_client("cl", Segment::Public).unwrap();
    added.add_address("192.0.2.100/24").unwrap();
    let client = added.netns.clone();
    assert!(reach(&client, "192.0.2.1", TAKEOVER), "box-a unreachable");
    // ARP is not IP: the VIP still resolves to box-a, but its echo requests are dropped.
    assert!(
        exec_in(&client, "ping", &["-c", "3", "-i", "0.5", "-W", "2", VIP]).is_err(),
        "box-a answered a ping to its VIP without accept mode"
    );
    assert_eq!(
        neighbour_mac(&client, VIP),
        neighbour_mac(&client, "192.0.2.1")
    );
    let line = lab
        .box_named("box-a")
        .unwrap()
        .wait_reply(
            "vrrp status",
            &format!(
                "accept_mode=false: 3 packets to VIPs dropped (1 address in table inet \
                 tandem_vrrp: {VIP})"
            ),
            TAKEOVER,
        )
        .unwrap();
    assert!(!line.contains("failed"), "{line}");
}
