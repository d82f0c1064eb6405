//! Assigning port roles by carrier from the console UI on the appliance image (issue 12, "plug
//! the cable into the port you want as public"), through the serial console and a VT100
//! emulator:
//!
//! - box-a boots with NICs on the public (PCI slot 3) and private (slot 4) segments; the board
//!   profile names them `public` and `private`. First boot: the admin password.
//! - Ports screen: both ports with their board roles. The private segment's cable is pulled;
//!   `w` starts the flow; the cable goes back in: port 0000:00:04.0 is proposed as public and
//!   taken; private, peer, mgmt and the optional public2 are skipped; the new map is saved.
//! - The Ports screen (`ports`) shows the saved map: 0000:00:04.0 -> public, 0000:00:03.0 ->
//!   private, still under their old names until the next boot.
//! - Reboot from Power; the box boots again from the same disk: the boot log places the roles
//!   by the operator's map, and the Ports screen shows the port that was private named
//!   `public` (from the operator) and the other one `private`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::time::Duration;

use tandem_lab::screen::Screen;
use tandem_lab::{BoxSpec, Lab, Segment};

const BOOT: Duration = Duration::from_secs(240);
/// One screen update under TCG on a loaded 2-core machine.
const STEP: Duration = Duration::from_secs(30);
const PASSWORD: &str = "lab-admin-pw";
const ENTER: &str = "\r";
const PROMPT_ROW: u16 = 23;
/// How long the login back-off may keep dropping tries.
const LIMIT: Duration = Duration::from_secs(120);

const PUBLIC_PORT: &str = "0000:00:03.0";
const PRIVATE_PORT: &str = "0000:00:04.0";

/// The screen row that shows `port` in the ports list (`  ID  ROLE (FROM) ...`), if any.
fn port_row<'r>(rows: &'r [String], port: &str) -> Option<&'r str> {
    rows.iter()
        .map(String::as_str)
        .find(|row| row.contains(&format!("  {port}  ")))
}

/// Waits until the ports list shows `port` with every one of `texts` on its row.
fn wait_port(screen: &Screen<'_>, port: &str, texts: &[&str], timeout: Duration) {
    screen
        .wait_until(&format!("{port} with {texts:?}"), timeout, |rows| {
            port_row(rows, port).is_some_and(|row| texts.iter().all(|t| row.contains(t)))
        })
        .unwrap();
}

#[test]
fn a_port_chosen_by_carrier_takes_its_role_at_the_next_boot() {
    let mut lab = Lab::new().unwrap();
    let spec = BoxSpec::new("box-a", &[Segment::Public, Segment::Private]).with_console_ui();
    lab.start_box(&spec).unwrap();
    {
        let box_a = &lab.boxes[0];
        let screen = Screen::new(&box_a.console);
        screen.create_password(PASSWORD, BOOT, STEP).unwrap();

        // The Ports screen: each port with the role the board profile gave it.
        screen.press("2").unwrap();
        screen.wait_for("Ports and addresses", STEP).unwrap();
        wait_port(&screen, PUBLIC_PORT, &["public (board)", " up "], STEP);
        wait_port(&screen, PRIVATE_PORT, &["private (board)", " up "], STEP);

        // The private segment's cable out: its carrier goes down.
        box_a.set_cable(Segment::Private, false).unwrap();
        wait_port(&screen, PRIVATE_PORT, &["private (board)", " down "], STEP);

        // Assign by carrier: the flow watches for PUBLIC and sees the private port down.
        screen.press("w").unwrap();
        screen
            .wait_for("Plug the cable into the port you want as PUBLIC", STEP)
            .unwrap();
        wait_port(&screen, PRIVATE_PORT, &["seen down"], STEP);
        // The cable back in: that port is proposed for public; Enter takes it.
        box_a.set_cable(Segment::Private, true).unwrap();
        screen
            .wait_for(
                &format!("port {PRIVATE_PORT} (now private) as public? Enter: yes"),
                STEP,
            )
            .unwrap();
        screen.press(ENTER).unwrap();
        // The other roles keep what they have (public2, the optional last step, included).
        for role in ["PRIVATE", "PEER", "MGMT", "PUBLIC2"] {
            screen
                .wait_for(
                    &format!("Plug the cable into the port you want as {role}"),
                    STEP,
                )
                .unwrap();
            screen.press("s").unwrap();
        }
        let rows = screen
            .wait_for("Save? (takes effect at the next boot)", STEP)
            .unwrap();
        let summary = |role: &str| {
            rows.iter()
                .find(|row| row.contains(&format!("  {role:<8} 0000:")))
                .cloned()
                .unwrap_or_default()
        };
        assert!(
            summary("public").contains(&format!("{PRIVATE_PORT}   chosen")),
            "{}",
            screen.dump()
        );
        assert!(
            summary("private").contains(&format!("{PUBLIC_PORT}   swapped")),
            "{}",
            screen.dump()
        );
        screen.press(ENTER).unwrap();
        screen
            .wait_message("takes effect at the next boot", STEP)
            .unwrap();

        // `ports` shows the saved map: the roles move at the next boot, not now.
        wait_port(
            &screen,
            PRIVATE_PORT,
            &["private (board)", "-> public"],
            STEP,
        );
        wait_port(
            &screen,
            PUBLIC_PORT,
            &["public (board)", "-> private"],
            STEP,
        );
        screen
            .wait_for(
                &format!("saved public={PRIVATE_PORT} private={PUBLIC_PORT}"),
                STEP,
            )
            .unwrap();

        // Reboot from the Power screen.
        screen.press("m").unwrap();
        screen.wait_for("Main menu", STEP).unwrap();
        screen.press("p").unwrap();
        screen.wait_for("reboot this box", STEP).unwrap();
        screen.press("r").unwrap();
        screen
            .wait_row(PROMPT_ROW, "Reboot this box now?", STEP)
            .unwrap();
        screen.press("yes").unwrap();
        screen.press(ENTER).unwrap();
    }
    lab.boxes[0].wait_exit(BOOT).unwrap();
    lab.restart_box(&spec, BOOT).unwrap();

    // The boot placed the roles by the operator's map.
    let box_a = &lab.boxes[0];
    box_a
        .console
        .wait_for_any_time(
            &format!("ports: public={PRIVATE_PORT} (operator) private={PUBLIC_PORT} (operator)"),
            STEP,
        )
        .unwrap();
    box_a
        .console
        .wait_for_any_time("nics: public private", STEP)
        .unwrap();
    let screen = Screen::new(&box_a.console);
    // The login gate first (until it is drawn, the screen holds the boot log).
    screen
        .wait_for("Log in with the admin password", BOOT)
        .unwrap();
    screen.log_in(PASSWORD, STEP, LIMIT).unwrap();
    screen.press("2").unwrap();
    screen.wait_for("Ports and addresses", STEP).unwrap();
    wait_port(&screen, PRIVATE_PORT, &["public (operator)", " up "], STEP);
    wait_port(&screen, PUBLIC_PORT, &["private (operator)", " up "], STEP);
    let rows = screen.rows();
    assert!(
        !rows.iter().any(|row| row.contains("-> ")),
        "nothing left for the next boot:\n{}",
        screen.dump()
    );
}
