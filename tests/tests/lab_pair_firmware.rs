//! A firmware bundle sent to the partner over the peer cable (issue 15, item 4's building
//! block), on two OVMF boxes booted from copies of the disk image, one boot each.
//!
//! box-a and box-b pair from their consoles; each `pair status` names the other's firmware
//! version and slot (FIRMWARE, channel 4). box-a fetches the signed bundle from the lab host
//! (the signature, not the transport, is the trust) and `pair install-partner` sends it to
//! box-b as BUNDLE: box-b runs `firmware install`'s checks and writes its slot b
//! (`tandem-2-b+3.efi`), its slot a untouched, and box-a's operator reads box-b's answer.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tandem_board::boot_disk::Slot;
use tandem_image::build::slot_cmdline;
use tandem_image::disk::write_esp_file;
use tandem_image::sign::{manifest_for, SigningKey, DEV_KEY_PATH};
use tandem_image::uki::{build_uki, os_release, UkiRequest, DEBIAN_STUB};
use tandem_lab::{BoxSpec, Lab, QemuBox, Segment};

const BOOT: Duration = Duration::from_secs(300);
const STEP: Duration = Duration::from_secs(120);
const VERSION: &str = env!("CARGO_PKG_VERSION");
const HOST: &str = "10.0.9.1";
const PORT: u16 = 8000;
const BOARD: &str = "qemu-lab";

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

/// Slot a's image: line commands on the console.
fn test_uki(dir: &Path) -> Vec<u8> {
    let image_dir = tandem_lab::image_dir(BOARD);
    let board = tandem_board::by_name(BOARD).unwrap();
    build_uki(&UkiRequest {
        stub: Path::new(DEBIAN_STUB),
        kernel: &image_dir.join("vmlinuz"),
        initramfs: &image_dir.join("initramfs.cpio.gz"),
        os_release: os_release(VERSION, board.name),
        cmdline: format!(
            "{} tandem.console=lines tandem.bless_after=3",
            slot_cmdline(board, Slot::A)
        ),
        timestamp: 0,
        work: &dir.join("uki"),
    })
    .unwrap()
}

/// Sends `command` once and waits for its reply line with `pattern` (never resent: it writes;
/// log lines are skipped).
fn once(qemu_box: &QemuBox, command: &str, pattern: &str) -> String {
    qemu_box.console.skip_to_end();
    qemu_box.console.send_line(command).unwrap();
    loop {
        let line = qemu_box
            .console
            .wait_for(pattern, STEP)
            .unwrap_or_else(|e| panic!("`{command}`: {e}"));
        if !line.contains("tandem: ") {
            return line;
        }
    }
}

/// The `firmware status` block, as one text.
fn firmware_status(qemu_box: &QemuBox) -> String {
    qemu_box.console.skip_to_end();
    qemu_box.console.send_line("firmware status").unwrap();
    let mut text = String::new();
    loop {
        let line = qemu_box.console.wait_for("firmware: ", STEP).unwrap();
        if line.contains("tandem: ") {
            continue;
        }
        let line = line.trim().to_owned();
        text.push_str(&line);
        text.push('\n');
        if line == "firmware: end" {
            return text;
        }
    }
}

#[test]
fn pair_install_partner_writes_the_partners_other_slot() {
    let dir = std::env::temp_dir().join(format!("tandem-pair-fw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let uki = test_uki(&dir);
    let source = tandem_lab::uefi::disk_image(BOARD);
    let mut disk = std::fs::read(&source)
        .unwrap_or_else(|e| panic!("{}: {e}; run make image first", source.display()));
    write_esp_file(&mut disk, "EFI/Linux/tandem-1-a.efi", &uki, 0).unwrap();
    let images: Vec<PathBuf> = ["a", "b"]
        .iter()
        .map(|name| {
            let image = dir.join(format!("{name}.img"));
            std::fs::write(&image, &disk).unwrap();
            image
        })
        .collect();
    drop(disk);
    let key = SigningKey::from_env(&tandem_lab::workspace_root().join(DEV_KEY_PATH)).unwrap();
    let good = key.bundle(&manifest_for(BOARD, VERSION).unwrap(), &uki);

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
    let a = lab.box_named("box-a").unwrap();
    let line = a.wait_reply("pair start", "pair: code ", STEP).unwrap();
    let code = line
        .split_whitespace()
        .skip_while(|w| *w != "code")
        .nth(1)
        .unwrap_or_else(|| panic!("no code in {line:?}"))
        .to_owned();
    let b = lab.box_named("box-b").unwrap();
    once(
        b,
        &format!("pair join {code}"),
        "pair: paired: this box is b",
    );
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
