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

use std::time::{Duration, Instant};

use tandem_lab::screen::Screen;
use tandem_lab::{BoxSpec, Lab, Segment};

const BOOT: Duration = Duration::from_secs(240);
const STEP: Duration = Duration::from_secs(30);
const ENTER: &str = "\r";
const CTRL_U: &str = "\x15";

const BOX_A: &str = r#"
[system]
hostname = "box-a"

[[interfaces]]
name = "public"
addresses = ["192.0.2.1/24"]
"#;

fn first_boot(screen: &Screen<'_>, password: &str) {
    screen.wait_for("no admin password yet", BOOT).unwrap();
    screen.press(password).unwrap();
    screen.press(ENTER).unwrap();
    screen.wait_for("the same again: _", STEP).unwrap();
    screen.press(password).unwrap();
    screen.press(ENTER).unwrap();
    screen.wait_for("Main menu", STEP).unwrap();
}

/// Types `password` at the login prompt until the gate answers it; true when it let us in.
/// `failures` is how many wrong passwords came just before (the notice counts them, so a
/// stale notice is never taken for this try's answer); a try dropped by the back-off is
/// typed again.
fn try_password(screen: &Screen<'_>, password: &str, failures: u32) -> bool {
    let refused = format!("Wrong password ({} in a row)", failures + 1);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        screen.press(CTRL_U).unwrap();
        screen.press(password).unwrap();
        screen.press(ENTER).unwrap();
        let rows = screen
            .wait_until("an answer to the password", STEP, |rows| {
                rows.iter().any(|r| {
                    r.contains("Main menu")
                        || r.contains(&refused)
                        || r.contains("Too many failures")
                })
            })
            .unwrap();
        if rows.iter().any(|r| r.contains("Main menu")) {
            return true;
        }
        if rows.iter().any(|r| r.contains(&refused)) {
            return false;
        }
        assert!(
            Instant::now() < deadline,
            "the back-off never ended:\n{}",
            screen.dump()
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}

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
    first_boot(&a, "password-of-a");
    first_boot(&b, "password-of-b");
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
        !try_password(&b, "password-of-b", 0),
        "box-b still took its own password:\n{}",
        b.dump()
    );
    assert!(
        try_password(&b, "password-of-a", 1),
        "box-b refused box-a's password:\n{}",
        b.dump()
    );
}
