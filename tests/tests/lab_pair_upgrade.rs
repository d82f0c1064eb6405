//! Rolling `pair upgrade` (issue 15, item 4) on two OVMF boxes booted from copies of the disk
//! image, with a client pinging the VIP throughout.
//!
//! box-a (priority 200, master) and box-b (priority 100) pair from their consoles and share a
//! VRRP VIP on the public segment at 1 s adverts (box-b's Master_Down_Interval 3.61 s). box-a
//! fetches the signed bundle from the lab host and runs `pair upgrade` on it: box-b (the
//! backup) gets it over the peer cable and reboots into slot b first; once it is back and
//! blessed, box-a hands over with priority 0 (`vrrp standby on`), installs into its own slot b
//! and reboots; back, it blesses and preempts. Both end on slot b blessed with the config
//! unchanged, and the client's worst gap (printed) stays below box-b's
//! Master_Down_Interval: the hand-overs are planned, never a failure detection.
//!
//! One boot per box plus the two upgrade reboots; the bundle carries the same build as slot a
//! (the version does not change; the slot and its bless are what the upgrade waits for).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

mod firmware_support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use firmware_support::{disk_with_slot_a, signed_bundle, test_uki, VERSION};
use tandem_lab::pinger::Pinger;
use tandem_lab::{BoxSpec, Lab, QemuBox, Segment};

const BOOT: Duration = Duration::from_secs(300);
const STEP: Duration = Duration::from_secs(120);
/// The whole upgrade: a box's reboot under TCG twice, the bless, the transfer and installs.
const UPGRADE: Duration = Duration::from_secs(900);
const HOST: &str = "10.0.9.1";
const PORT: u16 = 8000;
const VIP: &str = "192.0.2.50";
/// box-b's Master_Down_Interval at priority 100 and 1 s adverts: 3 s + 156/256 s.
const MASTER_DOWN: Duration = Duration::from_millis(3_609);

const PAIR_CONFIG: &str = r#"
[peer_link]
interface = "peer"
heartbeat_interval_ms = 50
dead_after_ms = 500

[[interfaces]]
name = "mgmt"

[[interfaces]]
name = "public"

[[interfaces]]
name = "peer"

[[vrrp]]
name = "public_vip"
version = "v3"
vrid = 54
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
name = "mgmt"
addresses = ["10.0.9.2/24"]

[[pair.a.interfaces]]
name = "public"
addresses = ["192.0.2.1/24"]

[[pair.a.vrrp]]
name = "public_vip"
priority = 200

[pair.b]
hostname = "box-b"

[[pair.b.interfaces]]
name = "mgmt"
addresses = ["10.0.9.3/24"]

[[pair.b.interfaces]]
name = "public"
addresses = ["192.0.2.2/24"]

[[pair.b.vrrp]]
name = "public_vip"
priority = 100
"#;

/// The running generation's `history` line (the config both boxes must keep).
fn running_config(qemu_box: &QemuBox) -> String {
    qemu_box
        .wait_reply("history", " (running) ", STEP)
        .unwrap()
        .trim()
        .to_owned()
}

/// Sends `command` once and waits for its reply line with `pattern` (log lines skipped).
fn once(qemu_box: &QemuBox, command: &str, pattern: &str) -> String {
    firmware_support::once(qemu_box, command, pattern, STEP)
}

#[test]
fn pair_upgrade_upgrades_the_backup_first_and_the_client_sees_only_planned_hand_overs() {
    let dir = std::env::temp_dir().join(format!("tandem-pair-up-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let uki = test_uki(&dir, "tandem.console=lines tandem.bless_after=3");
    let disk = disk_with_slot_a(&uki);
    let images: Vec<PathBuf> = ["a", "b"]
        .iter()
        .map(|name| {
            let image = dir.join(format!("{name}.img"));
            std::fs::write(&image, &disk).unwrap();
            image
        })
        .collect();
    drop(disk);
    let bundle = signed_bundle(&uki);

    let mut lab = Lab::new().expect("lab");
    let host = lab.add_client("pup", Segment::Mgmt).unwrap();
    host.add_address(&format!("{HOST}/24")).unwrap();
    tandem_lab::file_server::serve(
        &host.netns.clone(),
        format!("{HOST}:{PORT}").parse().unwrap(),
        vec![("/new.bundle".into(), bundle.clone())],
    )
    .unwrap();
    let nics = [Segment::Mgmt, Segment::Public, Segment::Peer];
    lab.boot(
        &[
            BoxSpec::new("box-a", &nics)
                .with_uefi_disk_image(&images[0])
                .with_config(PAIR_CONFIG),
            BoxSpec::new("box-b", &nics).with_uefi_disk_image(&images[1]),
        ],
        BOOT,
    )
    .expect("boxes boot");
    std::fs::remove_dir_all(&dir).unwrap();

    // Pair from the consoles; box-a master, box-b backup, both on slot a blessed.
    tandem_lab::lab_pair::pair_from_consoles(&mut lab, STEP).unwrap();
    let b = lab.box_named("box-b").unwrap();
    b.wait_reply("pair status", "in sync", STEP).unwrap();
    b.wait_reply("vrrp status", "state BACKUP", STEP).unwrap();
    let a = lab.box_named("box-a").unwrap();
    a.wait_reply("vrrp status", "state MASTER", STEP).unwrap();
    let told = format!("pair: partner firmware {VERSION} slot a blessed");
    a.wait_reply("pair status", &told, STEP).unwrap();
    let config_a = running_config(a);
    let config_b = running_config(lab.box_named("box-b").unwrap());

    let client = lab.add_client("puc", Segment::Public).unwrap();
    client.add_address("192.0.2.100/24").unwrap();
    let pinger = Pinger::start_in(&client.netns.clone(), VIP.parse().unwrap()).unwrap();
    assert!(
        pinger.wait_reply_after(tandem_lab::pinger::now_unix(), STEP),
        "the client never reached the VIP"
    );
    let began = Instant::now();

    // box-a fetches the bundle and runs the rolling upgrade.
    let a = lab.box_named("box-a").unwrap();
    once(
        a,
        &format!("firmware fetch http://{HOST}:{PORT}/new.bundle"),
        "signature good",
    );
    let mark_b = lab.box_named("box-b").unwrap().console.mark();
    let a = lab.box_named("box-a").unwrap();
    let started = once(
        a,
        "pair upgrade /run/tandem/fetched.bundle",
        "pair upgrade: ",
    );
    assert!(
        started.contains(&format!("pair upgrade: to {VERSION}: the partner first")),
        "{started}"
    );

    // box-b first: installed, rebooted into slot b, blessed.
    let b = lab.box_named("box-b").unwrap();
    b.console
        .wait_for_since(
            mark_b,
            &format!("firmware: {VERSION} slot b (uefi), on trial as tandem-2-b+2-1.efi"),
            UPGRADE,
        )
        .unwrap();
    b.console
        .wait_for_since(mark_b, "firmware: slot b blessed after", UPGRADE)
        .unwrap();

    // box-a hands over (box-b master on the heartbeat's word), installs, reboots, blesses.
    let a = lab.box_named("box-a").unwrap();
    a.console
        .wait_for_any_time(
            "pair upgrade: the partner is back blessed; handing over",
            UPGRADE,
        )
        .unwrap();
    let b = lab.box_named("box-b").unwrap();
    b.console
        .wait_for_since(mark_b, "vrrp: public_vip: BACKUP -> MASTER", STEP)
        .unwrap();
    let a = lab.box_named("box-a").unwrap();
    a.console
        .wait_for_any_time(
            &format!("firmware: {VERSION} slot b (uefi), on trial as tandem-2-b+2-1.efi"),
            UPGRADE,
        )
        .unwrap();
    a.console
        .wait_for_any_time("firmware: slot b blessed after", UPGRADE)
        .unwrap();
    a.wait_reply("vrrp status", "state MASTER", STEP).unwrap();
    let took = began.elapsed();

    // Both on slot b blessed, each knowing the other's, the config unchanged.
    for name in ["box-a", "box-b"] {
        let qemu_box = lab.box_named(name).unwrap();
        qemu_box
            .wait_reply(
                "pair status",
                &format!("pair: partner firmware {VERSION} slot b blessed"),
                STEP,
            )
            .unwrap();
    }
    assert_eq!(running_config(lab.box_named("box-a").unwrap()), config_a);
    assert_eq!(running_config(lab.box_named("box-b").unwrap()), config_b);

    let report = pinger.stop().unwrap();
    println!(
        "bench: pair_upgrade_worst_client_gap_ms {} ms ({} of {} pings lost; the whole upgrade {} s, under TCG)",
        report.longest_gap.as_millis(),
        report.lost,
        report.sent,
        took.as_secs()
    );
    assert!(
        report.longest_gap < MASTER_DOWN,
        "worst gap {:?}: not a planned hand-over (Master_Down_Interval {MASTER_DOWN:?})",
        report.longest_gap
    );
}
