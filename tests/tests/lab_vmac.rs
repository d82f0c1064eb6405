//! VRRP `use_vmac` on real qemu boxes: box-a (priority 200) and box-b (priority 100) each make
//! the macvlan `vrrp.50` on their public port (as PID 1 the engine loads `macvlan` from the
//! image), box-a holds the VIP on it, and the client's neighbour entry for the VIP is the
//! virtual router MAC 00:00:5e:00:01:32, not a box's own. When box-a dies (QMP `quit`) box-b
//! takes the VIP over on its macvlan and the client's pings resume through the same MAC.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::time::{Duration, Instant};

use tandem_lab::shell::{exec_in, reach};
use tandem_lab::{BoxSpec, Lab, Segment};

const BOOT: Duration = Duration::from_secs(240);
/// Master_Down_Interval is ~3.6 s of guest time; TCG on a loaded machine stretches that.
const TAKEOVER: Duration = Duration::from_secs(90);
const VIP: &str = "192.0.2.50";
const VMAC: &str = "00:00:5e:00:01:32";

fn boxes() -> [BoxSpec; 2] {
    [("box-a", "192.0.2.1", 200), ("box-b", "192.0.2.2", 100)].map(|(name, own, priority)| {
        let config = format!(
            r#"
[system]
hostname = "{name}"

[[interfaces]]
name = "public"
addresses = ["{own}/24"]

[[vrrp]]
name = "public_vip"
vrid = 50
interface = "public"
priority = {priority}
advert_interval_cs = 100
accept_mode = true
use_vmac = true

[[vrrp.vips]]
address = "{VIP}"
prefix = 24
"#
        );
        BoxSpec::new(name, &[Segment::Public]).with_config(&config)
    })
}

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
fn the_virtual_mac_answers_for_the_vip_and_moves_with_it() {
    let mut lab = Lab::new().expect("lab");
    lab.boot(&boxes(), BOOT).expect("boot");
    for name in ["box-a", "box-b"] {
        let console = &lab.box_named(name).unwrap().console;
        let loaded = console
            .wait_for_any_time("tandem: vrrp: use_vmac: loaded ", TAKEOVER)
            .unwrap();
        assert!(loaded.contains("macvlan"), "{name}: {loaded}");
        console
            .wait_for_any_time(
                &format!("vrrp: use_vmac: vrrp.50 created on public with MAC {VMAC}"),
                TAKEOVER,
            )
            .unwrap();
    }
    let a = lab.box_named("box-a").unwrap();
    a.console
        .wait_for_any_time("vrrp: public_vip: BACKUP -> MASTER", TAKEOVER)
        .unwrap();
    a.wait_reply(
        "vrrp status",
        &format!("vmac vrrp.50 ({VMAC}) on public"),
        TAKEOVER,
    )
    .unwrap();
    a.wait_reply(
        "vrrp status",
        &format!("virtual addresses: {VIP}/24 on vrrp.50"),
        TAKEOVER,
    )
    .unwrap();
    // box-b may have been master for a moment before box-a booted: wait for box-a.
    a.wait_reply("vrrp status", "state MASTER", TAKEOVER)
        .unwrap();

    let added = lab.add_client("cl", Segment::Public).unwrap();
    added.add_address("192.0.2.100/24").unwrap();
    let client = added.netns.clone();
    let client = client.as_str();
    assert!(reach(client, "192.0.2.1", TAKEOVER), "box-a unreachable");
    assert!(reach(client, "192.0.2.2", TAKEOVER), "box-b unreachable");
    let own = [
        neighbour_mac(client, "192.0.2.1"),
        neighbour_mac(client, "192.0.2.2"),
    ];
    assert!(reach(client, VIP, TAKEOVER), "VIP unreachable");
    assert_eq!(neighbour_mac(client, VIP), VMAC);
    assert!(!own.contains(&VMAC.to_owned()), "{own:?}");

    lab.box_named("box-b").unwrap().console.skip_to_end();
    lab.box_named("box-a").unwrap().kill().unwrap();
    let b = lab.box_named("box-b").unwrap();
    b.console
        .wait_for(
            "vrrp: public_vip: BACKUP -> MASTER: master silent for Master_Down_Interval (last master 192.0.2.1)",
            TAKEOVER,
        )
        .unwrap();
    let started = Instant::now();
    assert!(
        reach(client, VIP, TAKEOVER),
        "client's pings to the VIP did not resume"
    );
    eprintln!(
        "pings resumed {:?} after box-b's takeover line",
        started.elapsed()
    );
    // Same MAC, now box-b's macvlan answering: the client had nothing to relearn.
    assert_eq!(neighbour_mac(client, VIP), VMAC);
    b.wait_reply("vrrp status", "state MASTER", TAKEOVER)
        .unwrap();
}
