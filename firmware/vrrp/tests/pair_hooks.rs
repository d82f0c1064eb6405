//! Tier 2: the pair heartbeat's hooks into one instance on a virtual clock: a held-back backup
//! does not promote on silence (a service LAN split), is promoted when the hold is released
//! after its timer expired, still preempts a master it hears, and `force_master` /
//! `yield_master` move it at once.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use tandem_vrrp::{Cause, Instance, Instant, PartnerCause, State};

const T0: Instant = Instant::from_secs(100);

fn split() -> Cause {
    Cause::Partner(PartnerCause::LanSplit)
}

#[test]
fn a_held_backup_stays_backup_on_silence_and_promotes_when_released() {
    let mut r = Instance::new(v3("r", 100, 1), T0).unwrap();
    drain(&mut r);
    assert!(!r.set_held_back(T0, true, split()));
    let deadline = r.poll_timeout().unwrap();
    r.handle_timeout(deadline);
    assert_eq!(r.state(), State::Backup);
    assert!(r.master_unheard());
    assert!(drain(&mut r).is_empty(), "no advert, no address while held");
    // Still held a second later: nothing.
    r.handle_timeout(deadline + Duration::from_secs(1));
    assert_eq!(r.state(), State::Backup);
    // Released (the partner reported backup): promoted at once, with that cause.
    let released = Cause::Partner(PartnerCause::Released { state: "backup" });
    assert!(r.set_held_back(deadline + Duration::from_secs(2), false, released.clone()));
    assert_eq!(r.state(), State::Master);
    let actions = drain(&mut r);
    assert_eq!(kinds(&actions), ["advert", "add", "announce", "state"]);
    assert_eq!(transitions(&actions)[0].cause, released);
}

#[test]
fn releasing_a_hold_before_expiry_changes_nothing() {
    let mut r = Instance::new(v3("r", 100, 1), T0).unwrap();
    drain(&mut r);
    r.set_held_back(T0, true, split());
    let deadline = r.poll_timeout().unwrap();
    assert!(!r.set_held_back(T0 + Duration::from_millis(10), false, split()));
    assert_eq!(r.state(), State::Backup);
    assert_eq!(r.poll_timeout(), Some(deadline));
    r.handle_timeout(deadline);
    assert_eq!(r.state(), State::Master, "the timer works as before");
}

#[test]
fn force_master_promotes_a_backup_only() {
    let mut r = Instance::new(v3("r", 100, 1), T0).unwrap();
    drain(&mut r);
    let lost = Cause::Partner(PartnerCause::Lost {
        silent_ms: 41,
        why: "silent for 30 ms".into(),
    });
    assert!(r.force_master(T0 + Duration::from_millis(50), lost.clone()));
    assert_eq!(r.state(), State::Master);
    let actions = drain(&mut r);
    assert_eq!(kinds(&actions), ["advert", "add", "announce", "state"]);
    assert_eq!(transitions(&actions)[0].cause, lost);
    assert!(
        transitions(&actions)[0]
            .cause
            .to_string()
            .contains("took over 41 ms"),
        "{}",
        transitions(&actions)[0].cause
    );
    // Already master: nothing.
    assert!(!r.force_master(T0 + Duration::from_millis(60), split()));
    assert!(drain(&mut r).is_empty());
}

#[test]
fn yield_master_steps_down_and_stays_held() {
    let mut r = Instance::new(v3("r", 100, 1), T0).unwrap();
    let deadline = r.poll_timeout().unwrap();
    r.handle_timeout(deadline);
    drain(&mut r);
    assert_eq!(r.state(), State::Master);
    let at = deadline + Duration::from_millis(5);
    assert!(r.yield_master(at, split()));
    assert_eq!(r.state(), State::Backup);
    let actions = drain(&mut r);
    assert_eq!(kinds(&actions), ["remove", "state"]);
    // Held: its own Master_Down_Timer does not bring it back while the partner serves.
    let next = r.poll_timeout().unwrap();
    r.handle_timeout(next);
    assert_eq!(r.state(), State::Backup);
    assert!(r.held_back());
}

#[test]
fn a_held_backup_that_hears_the_lower_priority_master_again_preempts_after_the_split() {
    // r (priority 200, preempt) gave the VIP to its partner in a split and is held back.
    let mut r = Instance::new(v3("r", 200, 1), T0).unwrap();
    let deadline = r.poll_timeout().unwrap();
    r.handle_timeout(deadline);
    assert_eq!(r.state(), State::Master);
    assert!(r.yield_master(deadline + Duration::from_millis(5), split()));
    let expiry = r.poll_timeout().unwrap();
    r.handle_timeout(expiry);
    assert!(r.master_unheard(), "the split: the master is not heard");
    drain(&mut r);
    // The LAN heals: the partner's adverts (priority 100) arrive again. r hears the master
    // (no longer a split) and, preempting, takes the VIP back after a Master_Down_Interval.
    let healed = expiry + Duration::from_secs(1);
    let advert = Advert::v3(100).bytes(ip(2));
    r.handle_packet(healed, meta(ip(2)), &advert).unwrap();
    assert!(!r.master_unheard(), "the master is heard again");
    assert_eq!(r.state(), State::Backup);
    let next = r.poll_timeout().expect("a Master_Down_Timer runs again");
    r.handle_timeout(next);
    assert_eq!(
        r.state(),
        State::Master,
        "preempted the lower-priority master"
    );
}
