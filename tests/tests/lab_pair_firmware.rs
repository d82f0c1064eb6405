//! A firmware bundle sent to the partner over the peer cable (issue 15, item 4's building
//! block), on two OVMF boxes booted from copies of the disk image, one boot each.
//!
//! box-a and box-b pair from their consoles; each `pair status` names the other's firmware
//! version and slot (FIRMWARE, channel 4). box-a fetches the signed bundle from the lab host
//! (the signature, not the transport, is the trust) and `pair install-partner` sends it to
//! box-b as BUNDLE: box-b runs `firmware install`'s checks and writes its slot b
//! (`tandem-2-b+3.efi`), its slot a untouched, and box-a's operator reads box-b's answer.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

mod firmware_support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use firmware_support::{disk_with_slot_a, signed_bundle, test_uki, VERSION};
use tandem_lab::{BoxSpec, Lab, QemuBox, Segment};

const BOOT: Duration = Duration::from_secs(300);
const STEP: Duration = Duration::from_secs(120);
const HOST: &str = "10.0.9.1";
const PORT: u16 = 8000;

const PAIR_CONFIG: &str = r#"
[peer_link]
interface = "peer"

[[interfaces]]
name = "mgmt"

[[interfaces]]
name = "peer"

[pair.a]
hostname = "box-a"

[[pair.a.interfaces]]
name = "mgmt"
addresses = ["10.0.9.2/24"]

[pair.b]
hostname = "box-b"

[[pair.b.interfaces]]
name = "mgmt"
addresses = ["10.0.9.3/24"]
"#;

/// Sends `command` once and waits for its reply line with `pattern` (log lines skipped).
fn once(qemu_box: &QemuBox, command: &str, pattern: &str) -> String {
    firmware_support::once(qemu_box, command, pattern, STEP)
}

/// The `firmware status` block, as one text.
fn firmware_status(qemu_box: &QemuBox) -> String {
    firmware_support::firmware_status(qemu_box, STEP)
}

#[test]
fn pair_install_partner_writes_the_partners_other_slot() {
    let dir = std::env::temp_dir().join(format!("tandem-pair-fw-{}", std::process::id()));
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
    let good = signed_bundle(&uki);

    let mut lab = Lab::new().expect("lab");
    let host = lab.add_client("pfw", Segment::Mgmt).unwrap();
    host.add_address(&format!("{HOST}/24")).unwrap();
    tandem_lab::file_server::serve(
        &host.netns.clone(),
        format!("{HOST}:{PORT}").parse().unwrap(),
        vec![("/good.bundle".into(), good.clone())],
    )
    .unwrap();
    let nics = [Segment::Mgmt, Segment::Peer];
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

    // Pair from the consoles.
    tandem_lab::lab_pair::pair_from_consoles(&mut lab, STEP).unwrap();
    let b = lab.box_named("box-b").unwrap();
    b.wait_reply("pair status", "in sync", STEP).unwrap();

    // Each names the other's firmware: the version, slot a, blessed (no boot counter).
    let told = format!("pair: partner firmware {VERSION} slot a blessed (replication channel 4)");
    for name in ["box-a", "box-b"] {
        lab.box_named(name)
            .unwrap()
            .wait_reply("pair status", &told, STEP)
            .unwrap();
    }

    // box-a fetches the bundle (checked there too) and sends it over the peer cable.
    let a = lab.box_named("box-a").unwrap();
    a.wait_reply("show running", "hostname = \"box-a\"", STEP)
        .unwrap();
    let fetched = once(
        a,
        &format!("firmware fetch http://{HOST}:{PORT}/good.bundle"),
        "signature good",
    );
    assert!(
        fetched.contains(&format!("{} bytes", good.len())),
        "{fetched}"
    );
    let began = Instant::now();
    let sent = once(
        a,
        "pair install-partner /run/tandem/fetched.bundle",
        "pair: install-partner: ",
    );
    assert!(
        sent.contains(&format!(
            "sent /run/tandem/fetched.bundle ({} bytes); the partner answered:",
            good.len()
        )),
        "{sent}"
    );
    let installed = a
        .console
        .wait_for("partner: firmware: installed ", STEP)
        .unwrap();
    println!(
        "bench: pair_install_partner_ms {} ms ({} bytes over the peer cable, checked and written on the partner, under TCG)",
        began.elapsed().as_millis(),
        good.len()
    );
    assert!(
        installed.contains(&format!(
            "{VERSION} into slot b as tandem-2-b+3.efi ({} bytes in",
            uki.len()
        )),
        "{installed}"
    );

    // box-b: slot b written, slot a untouched, next boot slot b; the transfer in its log.
    let b = lab.box_named("box-b").unwrap();
    b.console
        .wait_for_any_time(
            &format!(
                "firmware: the partner sent a bundle of {} bytes",
                good.len()
            ),
            STEP,
        )
        .unwrap();
    let written = firmware_status(b);
    assert!(
        written.contains("firmware: slot b: tandem-2-b+3.efi\n"),
        "{written}"
    );
    assert!(
        written.contains("firmware: slot a: tandem-1-a.efi\n"),
        "{written}"
    );
    assert!(
        written.contains("firmware: next boot tandem-2-b+3.efi\n"),
        "{written}"
    );
    // box-a's own slots are untouched.
    let a = lab.box_named("box-a").unwrap();
    let own = firmware_status(a);
    assert!(own.contains("firmware: slot b: empty\n"), "{own}");
}
