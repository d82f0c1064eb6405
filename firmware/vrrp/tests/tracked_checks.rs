//! Tracked checks (keepalived `track_script`, run as built-in health checks) in the sans-IO
//! core: their weights move the priority as a tracked link's do (clamped to 1..=254, the
//! address owner stays 255), weight 0 faults, each check belongs to its own instance (two
//! instances may define a check of one name; a link event never reaches a check), and a live
//! change keeps a kept check's state without a transition.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::net::{IpAddr, Ipv4Addr};

use tandem_vrrp::{
    check_track_name, Action, Cause, Instance, InstanceId, InstanceParams, Instant, Speaker, State,
    TrackKind, TrackSpec,
};

use common::{drain, kinds, v3};

fn check(name: &str, weight: i16) -> TrackSpec {
    TrackSpec {
        name: check_track_name(name),
        kind: TrackKind::Check,
        weight,
    }
}

fn ms(millis: u64) -> Instant {
    Instant::from_millis(millis)
}

fn with_checks(priority: u8, tracks: Vec<TrackSpec>) -> InstanceParams {
    let mut params = v3("r", priority, 1);
    params.tracks = tracks;
    params
}

#[test]
fn check_weights_move_the_priority_within_1_to_254() {
    let mut r = Instance::new(
        with_checks(240, vec![check("web", 20), check("db", -60)]),
        Instant::ZERO,
    )
    .unwrap();
    assert_eq!(
        r.effective_priority(),
        254,
        "240 + 20 passing, clamped to 254"
    );
    assert!(r.handle_check_event(ms(1), "check db", false));
    assert_eq!(r.effective_priority(), 200, "240 + 20 - 60");
    assert!(r.handle_check_event(ms(2), "check web", false));
    assert_eq!(
        r.effective_priority(),
        180,
        "the bonus goes while web fails"
    );
    assert!(r.handle_check_event(ms(3), "check db", true));
    assert_eq!(r.effective_priority(), 240);
    assert!(!r.handle_check_event(ms(4), "check other", false));
    assert!(
        !r.handle_check_event(ms(4), "web", false),
        "the check's track name, not the bare one"
    );

    let mut low = Instance::new(with_checks(10, vec![check("web", -60)]), Instant::ZERO).unwrap();
    low.handle_check_event(ms(1), "check web", false);
    assert_eq!(
        low.effective_priority(),
        1,
        "never below 1 (0 means resign)"
    );
    assert_eq!(low.state(), State::Backup, "a weight is no fault");
    let status = low.status();
    assert_eq!(status.tracks, vec![("check web".to_owned(), false)]);
}

#[test]
fn a_weight_zero_check_faults_and_its_recovery_restarts_the_instance() {
    let mut r = Instance::new(with_checks(100, vec![check("api", 0)]), Instant::ZERO).unwrap();
    r.handle_timeout(r.poll_timeout().unwrap());
    assert_eq!(r.state(), State::Master);
    drain(&mut r);
    r.handle_check_event(ms(5000), "check api", false);
    let actions = drain(&mut r);
    assert_eq!(kinds(&actions), ["advert", "remove", "state"]);
    assert_eq!(r.state(), State::Fault);
    assert_eq!(
        r.status().fault,
        Some(Cause::TrackDown {
            track: "check api".into()
        })
    );
    r.handle_check_event(ms(6000), "check api", true);
    assert_eq!(r.state(), State::Backup);
    assert!(drain(&mut r)
        .iter()
        .any(|a| matches!(a, Action::StateChanged(t) if t.cause == Cause::FaultCleared)));
}

#[test]
fn the_address_owner_keeps_255_but_a_weight_zero_check_still_faults_it() {
    // keepalived drops a weighted track_script from a priority-255 instance; weight 0 stays.
    let mut owner = Instance::new(
        with_checks(255, vec![check("web", -100), check("api", 0)]),
        Instant::ZERO,
    )
    .unwrap();
    assert_eq!(owner.state(), State::Master);
    owner.handle_check_event(ms(1), "check web", false);
    assert_eq!(owner.effective_priority(), 255);
    assert_eq!(owner.state(), State::Master);
    owner.handle_check_event(ms(2), "check api", false);
    assert_eq!(owner.state(), State::Fault);
}

fn speaker_params(name: &str, vrid: u8, tracks: Vec<TrackSpec>) -> InstanceParams {
    let mut p = InstanceParams::v3(
        name,
        "eth0",
        vrid,
        150,
        IpAddr::V4(Ipv4Addr::new(10, 0, vrid, 1)),
        vec![IpAddr::V4(Ipv4Addr::new(10, 0, vrid, 100))],
    );
    p.advert_interval_cs = 10;
    p.tracks = tracks;
    p
}

fn master(speaker: &mut Speaker, id: InstanceId) -> Instant {
    let mut now = Instant::ZERO;
    while speaker.instance(id).unwrap().state() != State::Master {
        now = speaker.poll_timeout().unwrap();
        speaker.handle_timeout(now);
    }
    while speaker.poll_action().is_some() {}
    now
}

#[test]
fn a_check_is_its_own_instances_alone() {
    let mut speaker = Speaker::new();
    let a = speaker
        .add_instance(
            speaker_params("a", 1, vec![check("web", -50)]),
            Instant::ZERO,
        )
        .unwrap();
    let b = speaker
        .add_instance(
            speaker_params("b", 2, vec![check("web", -50)]),
            Instant::ZERO,
        )
        .unwrap();
    assert!(speaker.handle_check_event(ms(1), a, "check web", false));
    assert_eq!(speaker.instance(a).unwrap().effective_priority(), 100);
    assert_eq!(
        speaker.instance(b).unwrap().effective_priority(),
        150,
        "b's check of the same name is another check"
    );
    // The link path (carrier, bonds, external verdicts) never reaches a check.
    assert_eq!(speaker.handle_track_event(ms(2), "check web", true), 0);
    assert_eq!(speaker.instance(a).unwrap().effective_priority(), 100);
    // A new instance's check starts up, whatever another instance's check of that name says.
    let c = speaker
        .add_instance(speaker_params("c", 3, vec![check("web", 0)]), ms(3))
        .unwrap();
    assert_eq!(speaker.instance(c).unwrap().state(), State::Backup);
    // An instance that is gone: the late result is dropped.
    speaker.reconcile(
        vec![
            speaker_params("a", 1, vec![check("web", -50)]),
            speaker_params("b", 2, vec![check("web", -50)]),
        ],
        &[],
        ms(4),
    );
    assert!(!speaker.handle_check_event(ms(5), c, "check web", false));
}

#[test]
fn a_live_change_keeps_a_kept_checks_state_without_a_transition() {
    let mut speaker = Speaker::new();
    let a = speaker
        .add_instance(
            speaker_params("a", 1, vec![check("web", -50)]),
            Instant::ZERO,
        )
        .unwrap();
    let t = master(&mut speaker, a);
    speaker.handle_check_event(t, a, "check web", false);
    assert_eq!(speaker.instance(a).unwrap().effective_priority(), 100);
    while speaker.poll_action().is_some() {}

    // Reweighted: still down, the new weight counts; a check added starts up. No transition.
    let out = speaker.reconcile(
        vec![speaker_params(
            "a",
            1,
            vec![check("web", -30), check("db", -10)],
        )],
        &[],
        t + core::time::Duration::from_millis(1),
    );
    assert_eq!(out.changed.len(), 1);
    let instance = speaker.instance(a).unwrap();
    assert_eq!(instance.state(), State::Master);
    assert_eq!(instance.effective_priority(), 120);
    assert_eq!(instance.track_state("check web"), Some(false));
    assert_eq!(instance.track_state("check db"), Some(true));
    let actions: Vec<Action> = std::iter::from_fn(|| speaker.poll_action())
        .map(|(_, a)| a)
        .collect();
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::StateChanged(_) | Action::RemoveVips { .. })),
        "{actions:?}"
    );

    // Removed: its weight is gone at once.
    speaker.reconcile(
        vec![speaker_params("a", 1, vec![check("db", -10)])],
        &[],
        t + core::time::Duration::from_millis(2),
    );
    assert_eq!(speaker.instance(a).unwrap().effective_priority(), 150);
    assert_eq!(speaker.instance(a).unwrap().state(), State::Master);

    // A link and a check of the same bare name are two objects: the link's state is not the
    // check's.
    let mut linked = speaker_params("a", 1, vec![check("db", -10)]);
    linked.tracks.push(TrackSpec {
        name: "db".into(),
        kind: TrackKind::Interface,
        weight: -20,
    });
    speaker.reconcile(vec![linked], &[], t + core::time::Duration::from_millis(3));
    speaker.handle_track_event(t + core::time::Duration::from_millis(4), "db", false);
    assert_eq!(speaker.instance(a).unwrap().effective_priority(), 130);
    assert_eq!(
        speaker.instance(a).unwrap().track_state("check db"),
        Some(true)
    );
}
