//! Pairing from the console UI on the appliance image (issues 11 and 12), through both boxes'
//! serial consoles and a VT100 emulator:
//!
//! - box-a (configured) and box-b (erased config disk) each ask for an admin password on first
//!   boot; each gets its own.
//! - Pair screen on box-a: `s` shows the code; Pair screen on box-b: `j`, the code, Enter: paired.
//!   box-b's title bar then shows role b and box-a's generation (it received the config).
//! - The admin password came with the config: after logout, box-b refuses its own first-boot
//!   password and takes box-a's.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::time::Duration;

use tandem_lab::screen::Screen;
use tandem_lab::{BoxSpec, Lab, Segment};

const BOOT: Duration = Duration::from_secs(240);
const STEP: Duration = Duration::from_secs(30);
const ENTER: &str = "\r";
/// How long the back-off may keep dropping tries.
const LIMIT: Duration = Duration::from_secs(120);

const BOX_A: &str = r#"
[system]
hostname = "box-a"

[[interfaces]]
name = "public"
addresses = ["192.0.2.1/24"]
"#;

#[test]
fn pairing_from_the_console_ui_brings_the_config_and_the_admin_password() {
    let mut lab = Lab::new().unwrap();
    let segments = [Segment::Public, Segment::Peer];
    lab.start_box(
        &BoxSpec::new("box-a", &segments)
            .with_config(BOX_A)
            .with_console_ui(),
    )
    .unwrap();
    lab.start_box(&BoxSpec::new("box-b", &segments).with_console_ui())
        .unwrap();
    let a = Screen::new(&lab.boxes[0].console);
    let b = Screen::new(&lab.boxes[1].console);
    a.create_password("password-of-a", BOOT, STEP).unwrap();
    b.create_password("password-of-b", BOOT, STEP).unwrap();
    a.wait_until("generation 1 on box-a", STEP, |rows| {
        rows[0].contains("gen 1")
    })
    .unwrap();

    // The code on box-a's Pair screen.
    a.press("7").unwrap();
    a.wait_for("pair: ", STEP).unwrap();
    a.press("s").unwrap();
    let rows = a.wait_for("pair: code ", STEP).unwrap();
    let code = rows
        .iter()
        .find_map(|row| {
            row.split_whitespace()
                .skip_while(|w| *w != "code")
                .nth(1)
                .map(str::to_owned)
        })
        .unwrap();

    // Joined from box-b's Pair screen.
    b.press("7").unwrap();
    b.wait_for("pair: ", STEP).unwrap();
    b.press("j").unwrap();
    b.wait_row(23, "pairing code", STEP).unwrap();
    b.press(&code).unwrap();
    b.press(ENTER).unwrap();
    b.wait_for("paired", STEP).unwrap();
    b.wait_until(
        "role b and box-a's generation on box-b",
        Duration::from_secs(120),
        |rows| rows[0].contains("role b") && rows[0].contains("gen 1"),
    )
    .unwrap();

    // box-b's password is box-a's now.
    b.press("m").unwrap();
    b.press("q").unwrap();
    b.wait_for("Logged out", STEP).unwrap();
    assert!(
        !b.try_password("password-of-b", 0, STEP, LIMIT).unwrap(),
        "box-b still took its own password:\n{}",
        b.dump()
    );
    assert!(
        b.try_password("password-of-a", 1, STEP, LIMIT).unwrap(),
        "box-b refused box-a's password:\n{}",
        b.dump()
    );
}
