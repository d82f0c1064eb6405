//! Maintenance mode (`vrrp standby on|off`) on one instance and one speaker: what is sent,
//! what is refused while in standby, and how leaving it resumes.
// Test and bench code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use tandem_vrrp::{Cause, CauseKind, Instance, Instant, PartnerCause, Speaker, State};

const T0: Instant = Instant::from_secs(100);

fn master(priority: u8) -> Instance {
    let mut r = Instance::new(v3("r", priority, 1), T0).unwrap();
    let deadline = r.poll_timeout().unwrap();
    r.handle_timeout(deadline);
    assert_eq!(r.state(), State::Master);
    drain(&mut r);
    r
}

#[test]
fn master_sends_priority_zero_drops_addresses_and_goes_backup() {
    let mut r = master(100);
    assert!(r.set_standby(T0 + Duration::from_secs(5), true));
    let actions = drain(&mut r);
    assert_eq!(kinds(&actions), ["advert", "remove", "state"]);
    assert_eq!(sent_priorities(&actions), [0]);
    assert_eq!(transitions(&actions)[0].cause, Cause::Standby);
    assert_eq!(r.state(), State::Backup);
    assert!(r.standby());
    assert_eq!(r.counters().transitions(CauseKind::Standby), 1);
    assert_eq!(r.counters().priority_zero_sent, 1);
    // A second `on` changes nothing.
    assert!(!r.set_standby(T0 + Duration::from_secs(6), true));
    assert!(drain(&mut r).is_empty());
}

#[test]
fn standby_backup_never_promotes_and_resumes_at_once_when_off() {
    let mut r = master(100);
    let on = T0 + Duration::from_secs(5);
    r.set_standby(on, true);
    drain(&mut r);
    // Silence: the Master_Down_Timer fires but does not promote.
    let deadline = r.poll_timeout().unwrap();
    r.handle_timeout(deadline);
    assert_eq!(r.state(), State::Backup);
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.poll_timeout(), None);
    // Neither the pair heartbeat's force nor a held-back release promotes.
    let later = deadline + Duration::from_secs(10);
    assert!(!r.force_master(later, Cause::Partner(PartnerCause::HandOver)));
    r.set_held_back(later, true, Cause::Startup);
    assert!(!r.set_held_back(later, false, Cause::Startup));
    assert_eq!(r.state(), State::Backup);
    // Off: nobody was heard since the timer fired, so it takes over now.
    assert!(r.set_standby(later, false));
    let actions = drain(&mut r);
    assert_eq!(kinds(&actions), ["advert", "add", "announce", "state"]);
    assert_eq!(sent_priorities(&actions), [100]);
    assert_eq!(r.state(), State::Master);
}

#[test]
fn standby_keeps_following_a_master_and_off_waits_for_its_timer() {
    let mut r = Instance::new(v3("r", 100, 1), T0).unwrap();
    r.set_standby(T0, true);
    drain(&mut r);
    // A higher-priority master is heard: followed as usual.
    let t1 = T0 + Duration::from_millis(500);
    r.handle_packet(t1, meta(ip(2)), &Advert::v3(150).bytes(ip(2)))
        .unwrap();
    assert_eq!(r.master().unwrap().address, ip(2));
    let deadline = r.poll_timeout().unwrap();
    // Off while the master is alive: nothing changes, the running timer runs on.
    assert!(!r.set_standby(t1 + Duration::from_millis(10), false));
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.poll_timeout(), Some(deadline));
    r.handle_timeout(deadline);
    assert_eq!(
        r.state(),
        State::Master,
        "out of standby a silent master is replaced"
    );
}

#[test]
fn owner_starts_backup_in_standby_and_takes_its_addresses_when_off() {
    let mut speaker = Speaker::new();
    speaker.set_standby(T0, true);
    let id = speaker.add_instance(v3("owner", 255, 1), T0).unwrap();
    assert_eq!(speaker.instance(id).unwrap().state(), State::Backup);
    assert!(speaker.instance(id).unwrap().standby());
    let deadline = speaker.poll_timeout().unwrap();
    speaker.handle_timeout(deadline);
    assert_eq!(speaker.instance(id).unwrap().state(), State::Backup);
    while speaker.poll_action().is_some() {}
    assert_eq!(speaker.set_standby(deadline, false), 1);
    assert!(!speaker.standby());
    let instance = speaker.instance(id).unwrap();
    assert_eq!(instance.state(), State::Master);
    assert_eq!(
        instance.transitions().iter().last().unwrap().cause,
        Cause::AddressOwner
    );
}
