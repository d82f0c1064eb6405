//! `pair upgrade` and `vrrp standby` over the control socket on the host tier: two `tandem run`
//! boxes joined by a veth peer cable. A host box boots from no firmware slot, so what runs
//! here are the refusals in their order (the upgrade itself is the lab's `lab_pair_upgrade`;
//! the hand-over is `vrrp_interop`'s standby test against keepalived).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::path::Path;
use std::time::Duration;

use tandem_lab::cable_pair::CablePair;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const LIMIT: Duration = Duration::from_secs(20);
const A_CONFIG: &str = "[system]\nhostname = \"one\"\n\n[peer_link]\ninterface = \"peer\"\n\n[[interfaces]]\nname = \"peer\"\n";

#[test]
fn pair_upgrade_refuses_in_order_and_says_what_to_do() {
    let pair = CablePair::new("pup", Path::new(TANDEM)).unwrap();
    let _a = pair.start("a", Some(A_CONFIG), LIMIT).unwrap();
    let _b = pair.start("b", None, LIMIT).unwrap();

    let status = pair.ask("a", &["pair", "upgrade", "status"]);
    assert_eq!(status, "pair upgrade: idle\n");
    // Unpaired: refused before the file is even read.
    let unpaired = pair.ask("a", &["pair", "upgrade", "/nonexistent.bundle"]);
    assert!(
        unpaired.contains("pair upgrade: refused: this box is not paired"),
        "{unpaired}"
    );
    // No VRRP instance: nothing to hand over.
    let standby = pair.ask("a", &["vrrp", "standby", "on"]);
    assert!(
        standby.contains("vrrp standby: no VRRP instance runs on this box"),
        "{standby}"
    );

    // Paired and in sync: a host box runs from no slot, which is said before any byte is read.
    assert!(pair.pair_up().unwrap().contains("paired"));
    pair.wait("a", &["pair", "status"], "in sync", LIMIT)
        .unwrap_or_else(|last| panic!("never in sync:\n{last}"));
    // (Replication's standing is noted with each STATE, every 500 ms: a refusal changes
    // nothing, so asking again is safe.)
    let no_slot = pair
        .wait(
            "a",
            &["pair", "upgrade", "/nonexistent.bundle"],
            "pair upgrade: refused: this box did not boot from a firmware slot",
            LIMIT,
        )
        .unwrap_or_else(|last| panic!("never refused for the slot:\n{last}"));
    assert!(!no_slot.contains("cannot read"), "{no_slot}");
    let status = pair.ask("b", &["pair", "upgrade", "status"]);
    assert_eq!(status, "pair upgrade: idle\n");
}
