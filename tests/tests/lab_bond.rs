//! Bonding on the appliance image (issue 13): the kernel's bonding driver is in the image, not
//! on this host, so every step runs in qemu boxes with two public NICs (`public`, `public2`) on
//! the public LAN.
//!
//! - active-backup: the bond comes up from the config with its first port as primary, a client
//!   pings the VIP every millisecond, QMP pulls the active port's cable: the bond fails over to
//!   the other port, the pings resume (the gap is printed), `bond status` names the new active
//!   port; the cable back: the primary is active again (primary_reselect always). Then a live
//!   commit sets primary_reselect failure, and the same pull and replug leave public2 active.
//! - A tracked bond below min_links: box-a's bond keeps carrier with one of two ports, but its
//!   VRRP instance tracks the bond with min_links 2, so it goes to FAULT and box-b takes the
//!   VIP; the cable back, box-a takes it back (preemption).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::net::Ipv4Addr;
use std::time::Duration;

use tandem_lab::pinger::{now_unix, Pinger};
use tandem_lab::{BoxSpec, Lab, QemuBox, Segment};

const BOOT: Duration = Duration::from_secs(240);
/// A console answer or a kernel reaction under TCG on a loaded 2-core machine.
const STEP: Duration = Duration::from_secs(90);
const VIP: &str = "192.0.2.50";

fn bonded_box(name: &str, own: &str, priority: u8, bond_extra: &str, vrrp_extra: &str) -> BoxSpec {
    let config = format!(
        r#"
[system]
hostname = "{name}"

[[interfaces]]
name = "public"

[[interfaces]]
name = "public2"

[[interfaces]]
name = "bond0"
addresses = ["{own}/24"]

[[bonds]]
name = "bond0"
slaves = ["public", "public2"]
{bond_extra}

[[vrrp]]
name = "web"
version = "v3"
vrid = 50
interface = "bond0"
priority = {priority}
advert_interval_cs = 100
accept_mode = true
{vrrp_extra}

[[vrrp.vips]]
address = "{VIP}"
prefix = 24
"#
    );
    BoxSpec::new(name, &[Segment::Public, Segment::Public2, Segment::Peer]).with_config(&config)
}

/// Waits until `bond status` on `b` has a line containing `pattern`; returns it.
fn bond_status(b: &QemuBox, pattern: &str) -> String {
    b.wait_reply("bond status", pattern, STEP)
        .unwrap_or_else(|e| panic!("{e}\n{}", b.console.transcript()))
}

#[test]
fn an_active_backup_bond_fails_over_and_honours_primary_reselect() {
    let mut lab = Lab::new().unwrap();
    lab.boot(&[bonded_box("box-a", "192.0.2.1", 200, "", "")], BOOT)
        .unwrap();
    let a = lab.box_named("box-a").unwrap();
    a.console
        .wait_for_any_time(
            "config: bonds: bond0 created (active-backup, miimon 100 ms)",
            STEP,
        )
        .unwrap();
    a.console
        .wait_for_any_time("vrrp: web: BACKUP -> MASTER", STEP)
        .unwrap();
    // Safe defaults: MII every 100 ms and the first port as primary, so it is the active one.
    bond_status(
        a,
        "bond bond0: up mode active-backup, miimon 100 ms, carrier yes, active public, 2 of 2 ports up",
    );
    bond_status(
        a,
        "bond bond0: port public2 backup, mii up, link failures 0",
    );
    let client = lab.add_client("cl", Segment::Public).unwrap();
    client.add_address("192.0.2.100/24").unwrap();
    let pinger = Pinger::start_in(&client.netns, VIP.parse::<Ipv4Addr>().unwrap()).unwrap();
    assert!(
        pinger.wait_reply_after(now_unix(), STEP),
        "the VIP does not answer"
    );

    // The active port's cable out: public2 takes over.
    let a = lab.box_named("box-a").unwrap();
    let cut = now_unix();
    a.set_cable(Segment::Public, false).unwrap();
    bond_status(a, "active public2, 1 of 2 ports up");
    bond_status(
        a,
        "bond bond0: port public backup, mii down, link failures 1",
    );
    // The failover is logged with its cause.
    a.console
        .wait_for_any_time(
            "bond bond0: failover: active port now public2 (public: mii down, link failures 1)",
            STEP,
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", a.console.transcript()));
    assert!(
        pinger.wait_reply_after(now_unix(), STEP),
        "the pings did not resume over public2"
    );
    let gap = pinger.longest_gap_since(cut);
    println!(
        "active-backup failover at miimon 100: client gap {:.1} ms",
        gap.as_secs_f64() * 1e3
    );

    // Back: the primary is active again (primary_reselect always, the kernel's default).
    a.set_cable(Segment::Public, true).unwrap();
    bond_status(a, "active public, 2 of 2 ports up");
    a.console
        .wait_for_any_time(
            "bond bond0: failover: active port now public (the primary port is back; public2 stays up as the backup)",
            STEP,
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", a.console.transcript()));
    assert!(pinger.wait_reply_after(now_unix(), STEP));

    // Live: primary_reselect failure keeps the port that took over.
    a.wait_reply(
        "set bonds.bond0.primary_reselect failure",
        "set: bonds.bond0.primary_reselect",
        STEP,
    )
    .unwrap();
    a.wait_reply("commit", "commit: generation 2 persisted", STEP)
        .unwrap();
    a.console
        .wait_for_any_time("config: bonds: bond0: primary_reselect failure", STEP)
        .unwrap();
    bond_status(a, "active public, 2 of 2 ports up");
    a.set_cable(Segment::Public, false).unwrap();
    bond_status(a, "active public2, 1 of 2 ports up");
    a.set_cable(Segment::Public, true).unwrap();
    bond_status(a, "active public2, 2 of 2 ports up");
    // Still public2 a while later: the recovered primary did not take over.
    std::thread::sleep(Duration::from_secs(2));
    bond_status(a, "active public2, 2 of 2 ports up");
    assert!(pinger.wait_reply_after(now_unix(), STEP));
    let report = pinger.stop().unwrap();
    println!("pings: {report:?}");
    assert!(report.answered > 0);
}

#[test]
fn a_tracked_bond_below_min_links_moves_the_vip_to_the_partner() {
    let mut lab = Lab::new().unwrap();
    let quorum = "min_links = 2";
    let track = "track_bonds = [{ name = \"bond0\", weight = 0 }]";
    lab.boot(
        &[
            bonded_box("box-a", "192.0.2.1", 200, quorum, track),
            bonded_box("box-b", "192.0.2.2", 100, "", ""),
        ],
        BOOT,
    )
    .unwrap();
    let a = lab.box_named("box-a").unwrap();
    a.console
        .wait_for_any_time("vrrp: web: BACKUP -> MASTER", STEP)
        .unwrap();
    bond_status(
        a,
        "carrier yes, active public, 2 of 2 ports up (min_links 2)",
    );
    let b = lab.box_named("box-b").unwrap();
    b.console.skip_to_end();

    // One of box-a's two ports out: the bond still has carrier, but not its quorum.
    let a = lab.box_named("box-a").unwrap();
    let cut = a.console.mark();
    a.set_cable(Segment::Public2, false).unwrap();
    bond_status(
        a,
        "carrier yes, active public, 1 of 2 ports up (min_links 2)",
    );
    a.console
        .wait_for_since(cut, "vrrp: web: MASTER -> FAULT: tracked bond0 down", STEP)
        .unwrap_or_else(|e| panic!("{e}\n{}", a.console.transcript()));
    a.console
        .wait_for_since(
            cut,
            "vrrp: tracked bond0 is below min_links 2: 1 of its ports with carrier",
            STEP,
        )
        .unwrap_or_else(|e| panic!("{e}\n{}", a.console.transcript()));
    let b = lab.box_named("box-b").unwrap();
    b.console
        .wait_for("vrrp: web: BACKUP -> MASTER", STEP)
        .unwrap_or_else(|e| panic!("{e}\n{}", b.console.transcript()));
    let client = lab.add_client("cl", Segment::Public).unwrap();
    client.add_address("192.0.2.100/24").unwrap();
    let pinger = Pinger::start_in(&client.netns, VIP.parse::<Ipv4Addr>().unwrap()).unwrap();
    assert!(
        pinger.wait_reply_after(now_unix(), STEP),
        "box-b does not answer for the VIP"
    );

    // Quorum back: box-a leaves FAULT and, with the higher priority, preempts.
    let a = lab.box_named("box-a").unwrap();
    a.console.skip_to_end();
    a.set_cable(Segment::Public2, true).unwrap();
    a.console
        .wait_for("vrrp: web: BACKUP -> MASTER", STEP)
        .unwrap_or_else(|e| panic!("{e}\n{}", a.console.transcript()));
    assert!(pinger.wait_reply_after(now_unix(), STEP));
    pinger.stop().unwrap();
}
