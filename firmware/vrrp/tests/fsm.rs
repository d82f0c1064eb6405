//! Tier 2: RFC 9568 section 6 / RFC 3768 rules on a virtual clock, exact deadlines.
// Test and bench code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::*;
use tandem_vrrp::{
    Action, Auth, Cause, CauseKind, Instance, InstanceParams, Instant, MasterDownReason, State,
    TrackKind, TrackSpec, Version,
};

const T0: Instant = Instant::from_secs(100);

fn at(base: Instant, nanos: u64) -> Instant {
    Instant::from_nanos(base.as_nanos() + nanos)
}

#[test]
fn backup_arms_master_down_interval_with_fractional_skew() {
    let mut r = Instance::new(v3("r", 100, 1), T0).unwrap();
    assert_eq!(r.state(), State::Backup);
    // 3 * 1 s + (156 * 100 / 256) cs = 3.609375 s.
    assert_eq!(r.poll_timeout(), Some(at(T0, 3_609_375_000)));
    let actions = drain(&mut r);
    assert_eq!(kinds(&actions), ["state"]);
    assert_eq!(transitions(&actions)[0].cause, Cause::Startup);
}

#[test]
fn master_down_timer_fires_exactly_at_its_deadline() {
    let mut r = Instance::new(v3("r", 100, 1), T0).unwrap();
    drain(&mut r);
    let deadline = r.poll_timeout().unwrap();
    // One nanosecond early: nothing.
    r.handle_timeout(Instant::from_nanos(at(deadline, 0).as_nanos() - 1));
    assert_eq!(r.state(), State::Backup);
    assert!(drain(&mut r).is_empty());
    r.handle_timeout(deadline);
    // At the deadline: advert, addresses, burst, then the state change.
    let actions = drain(&mut r);
    assert_eq!(kinds(&actions), ["advert", "add", "announce", "state"]);
    assert_eq!(sent_priorities(&actions), [100]);
    assert_eq!(r.state(), State::Master);
    let t = &transitions(&actions)[0];
    assert_eq!(
        t.cause,
        Cause::MasterDown {
            reason: MasterDownReason::Silence,
            last_master: None
        }
    );
    assert_eq!(r.poll_timeout(), Some(deadline + Duration::from_secs(1)));
    match &actions[1] {
        Action::AddVips { addresses, accept } => {
            assert_eq!(addresses, &vec![IpAddr::V4(VIP)]);
            assert!(!accept, "accept mode off by default");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn master_keeps_its_advert_cadence_even_when_called_late() {
    let mut r = Instance::new(v3("r", 100, 1), T0).unwrap();
    let d = r.poll_timeout().unwrap();
    r.handle_timeout(d);
    drain(&mut r);
    let first = r.poll_timeout().unwrap();
    // Called 3 ms late: next deadline stays on the 1 s grid.
    r.handle_timeout(first + Duration::from_millis(3));
    assert_eq!(sent_priorities(&drain(&mut r)), [100]);
    assert_eq!(r.poll_timeout(), Some(first + Duration::from_secs(1)));
    // Called 5 s late (process stalled): re-anchors to now instead of bursting.
    let late = first + Duration::from_secs(6);
    r.handle_timeout(late);
    assert_eq!(sent_priorities(&drain(&mut r)), [100]);
    assert_eq!(r.poll_timeout(), Some(late + Duration::from_secs(1)));
}

#[test]
fn backup_resets_master_down_timer_on_each_advert() {
    let mut r = Instance::new(v3("r", 100, 1), T0).unwrap();
    let t1 = T0 + Duration::from_millis(900);
    r.handle_packet(t1, meta(ip(2)), &Advert::v3(150).bytes(ip(2)))
        .unwrap();
    assert_eq!(
        r.poll_timeout(),
        Some(t1 + Duration::from_nanos(3_609_375_000))
    );
    let master = r.master().unwrap();
    assert_eq!(
        (master.address, master.priority, master.last_seen),
        (ip(2), 150, t1)
    );
}

#[test]
fn priority_zero_makes_backup_wait_only_skew_time() {
    let mut r = Instance::new(v3("r", 100, 1), T0).unwrap();
    r.handle_packet(T0, meta(ip(2)), &Advert::v3(150).bytes(ip(2)))
        .unwrap();
    let t1 = T0 + Duration::from_millis(500);
    r.handle_packet(t1, meta(ip(2)), &Advert::v3(0).bytes(ip(2)))
        .unwrap();
    let deadline = t1 + Duration::from_nanos(609_375_000);
    assert_eq!(r.poll_timeout(), Some(deadline));
    drain(&mut r);
    r.handle_timeout(deadline);
    let actions = drain(&mut r);
    assert_eq!(
        transitions(&actions)[0].cause,
        Cause::MasterDown {
            reason: MasterDownReason::PriorityZero,
            last_master: Some(ip(2))
        }
    );
    assert_eq!(r.counters().priority_zero_received, 1);
    assert_eq!(r.counters().transitions(CauseKind::MasterLeft), 1);
}

#[test]
fn v3_backup_learns_the_master_interval() {
    let mut r = Instance::new(v3("r", 100, 1), T0).unwrap();
    let mut advert = Advert::v3(150);
    advert.interval_cs = 50;
    r.handle_packet(T0, meta(ip(2)), &advert.bytes(ip(2)))
        .unwrap();
    assert_eq!(r.master_adver_interval_cs(), 50);
    // 3 * 0.5 s + 156 * 50 / 256 cs = 1.5 s + 304.6875 ms.
    assert_eq!(
        r.poll_timeout(),
        Some(T0 + Duration::from_nanos(1_804_687_500))
    );
    // As master it still advertises its own configured interval.
    r.handle_timeout(r.poll_timeout().unwrap());
    assert_eq!(r.state(), State::Master);
}

#[test]
fn preempting_backup_ignores_lower_priority_and_takes_over() {
    let mut r = Instance::new(v3("r", 200, 1), T0).unwrap();
    let first_deadline = r.poll_timeout().unwrap();
    r.handle_packet(
        T0 + Duration::from_millis(500),
        meta(ip(2)),
        &Advert::v3(100).bytes(ip(2)),
    )
    .unwrap();
    assert_eq!(
        r.poll_timeout(),
        Some(first_deadline),
        "lower priority must not reset the timer"
    );
    assert_eq!(r.counters().lower_priority_ignored, 1);
    drain(&mut r);
    r.handle_timeout(first_deadline);
    let t = transitions(&drain(&mut r)).remove(0);
    assert_eq!(
        t.cause,
        Cause::MasterDown {
            reason: MasterDownReason::Preempting,
            last_master: Some(ip(2))
        }
    );
}

#[test]
fn nopreempt_backup_defers_to_a_lower_priority_master() {
    let mut params = v3("r", 200, 1);
    params.preempt = false;
    let mut r = Instance::new(params, T0).unwrap();
    let t1 = T0 + Duration::from_millis(500);
    r.handle_packet(t1, meta(ip(2)), &Advert::v3(100).bytes(ip(2)))
        .unwrap();
    assert_eq!(r.poll_timeout(), Some(t1 + r.master_down_interval()));
    assert_eq!(r.master().unwrap().priority, 100);
}

#[test]
fn preempt_delay_tolerates_a_lower_master_until_it_expires() {
    let mut params = v3("r", 200, 1);
    params.preempt_delay = Duration::from_secs(5);
    let mut r = Instance::new(params, T0).unwrap();
    let mdi = r.master_down_interval();
    let mut now = T0;
    for _ in 0..5 {
        now = now + Duration::from_secs(1);
        r.handle_packet(now, meta(ip(2)), &Advert::v3(100).bytes(ip(2)))
            .unwrap();
        assert_eq!(r.state(), State::Backup);
    }
    // now = T0 + 5 s: the delay is over, this advert is ignored and the timer runs out.
    assert_eq!(r.poll_timeout(), Some(T0 + Duration::from_secs(4) + mdi));
    assert_eq!(r.counters().lower_priority_ignored, 1);
    r.handle_timeout(T0 + Duration::from_secs(4) + mdi);
    assert_eq!(r.state(), State::Master);
}

#[test]
fn master_yields_to_higher_priority_and_learns_its_interval() {
    let mut r = Instance::new(v3("r", 100, 1), T0).unwrap();
    r.handle_timeout(r.poll_timeout().unwrap());
    drain(&mut r);
    let now = T0 + Duration::from_secs(10);
    let mut advert = Advert::v3(150);
    advert.interval_cs = 20;
    r.handle_packet(now, meta(ip(2)), &advert.bytes(ip(2)))
        .unwrap();
    let actions = drain(&mut r);
    assert_eq!(kinds(&actions), ["remove", "state"]);
    assert_eq!(r.state(), State::Backup);
    assert_eq!(
        transitions(&actions)[0].cause,
        Cause::HigherPriority {
            from: ip(2),
            priority: 150
        }
    );
    // 3 * 0.2 s + 156 * 20 / 256 cs.
    assert_eq!(
        r.poll_timeout(),
        Some(now + Duration::from_nanos(600_000_000 + 121_875_000))
    );
}

#[test]
fn equal_priority_tie_breaks_on_the_higher_primary_address() {
    let mut r = Instance::new(v3("r", 100, 5), T0).unwrap();
    r.handle_timeout(r.poll_timeout().unwrap());
    drain(&mut r);
    // Lower address, same priority: we stay master and answer at once (RFC 9568 6.4.3).
    r.handle_packet(
        T0 + Duration::from_secs(5),
        meta(ip(4)),
        &Advert::v3(100).bytes(ip(4)),
    )
    .unwrap();
    assert_eq!(r.state(), State::Master);
    assert_eq!(sent_priorities(&drain(&mut r)), [100]);
    assert_eq!(r.counters().lower_priority_answered, 1);
    // Higher address, same priority: we yield.
    r.handle_packet(
        T0 + Duration::from_secs(6),
        meta(ip(6)),
        &Advert::v3(100).bytes(ip(6)),
    )
    .unwrap();
    assert_eq!(r.state(), State::Backup);
    assert_eq!(
        transitions(&drain(&mut r))[0].cause,
        Cause::EqualPriorityHigherAddress { from: ip(6) }
    );
}

#[test]
fn master_answers_priority_zero_with_an_immediate_advert() {
    let mut r = Instance::new(v3("r", 100, 1), T0).unwrap();
    r.handle_timeout(r.poll_timeout().unwrap());
    drain(&mut r);
    let now = T0 + Duration::from_millis(4_200);
    r.handle_packet(now, meta(ip(2)), &Advert::v3(0).bytes(ip(2)))
        .unwrap();
    assert_eq!(sent_priorities(&drain(&mut r)), [100]);
    assert_eq!(r.poll_timeout(), Some(now + Duration::from_secs(1)));
    assert_eq!(r.state(), State::Master);
}

#[test]
fn shutdown_of_a_master_sends_priority_zero_then_drops_addresses() {
    let mut r = Instance::new(v3("r", 100, 1), T0).unwrap();
    r.handle_timeout(r.poll_timeout().unwrap());
    drain(&mut r);
    r.handle_shutdown(T0 + Duration::from_secs(5));
    let actions = drain(&mut r);
    assert_eq!(kinds(&actions), ["advert", "remove", "state"]);
    assert_eq!(sent_priorities(&actions), [0]);
    assert_eq!(r.state(), State::Initialize);
    assert_eq!(r.poll_timeout(), None);
    // Adverts are ignored while down; startup brings it back as backup.
    r.handle_packet(
        T0 + Duration::from_secs(6),
        meta(ip(2)),
        &Advert::v3(150).bytes(ip(2)),
    )
    .unwrap();
    assert_eq!(r.counters().ignored_while_inactive, 1);
    r.handle_startup(T0 + Duration::from_secs(7));
    assert_eq!(r.state(), State::Backup);
}

#[test]
fn shutdown_of_a_backup_sends_nothing() {
    let mut r = Instance::new(v3("r", 100, 1), T0).unwrap();
    drain(&mut r);
    r.handle_shutdown(T0 + Duration::from_secs(1));
    assert_eq!(kinds(&drain(&mut r)), ["state"]);
    assert_eq!(r.poll_timeout(), None);
}

#[test]
fn address_owner_starts_as_master_and_accepts_traffic() {
    let mut r = Instance::new(v3("owner", 255, 1), T0).unwrap();
    let actions = drain(&mut r);
    assert_eq!(kinds(&actions), ["advert", "add", "announce", "state"]);
    assert_eq!(sent_priorities(&actions), [255]);
    assert_eq!(transitions(&actions)[0].cause, Cause::AddressOwner);
    assert!(matches!(actions[1], Action::AddVips { accept: true, .. }));
    assert_eq!(r.poll_timeout(), Some(T0 + Duration::from_secs(1)));
}

#[test]
fn accept_mode_is_passed_to_the_address_action() {
    let mut params = v3("r", 100, 1);
    params.accept_mode = true;
    let mut r = Instance::new(params, T0).unwrap();
    r.handle_timeout(r.poll_timeout().unwrap());
    assert!(drain(&mut r)
        .iter()
        .any(|a| matches!(a, Action::AddVips { accept: true, .. })));
}

#[test]
fn tracking_weights_move_priority_and_weight_zero_faults() {
    let mut params = v3("r", 100, 1);
    params.tracks = vec![
        TrackSpec {
            name: "eth1".into(),
            kind: TrackKind::Interface,
            weight: -60,
        },
        TrackSpec {
            name: "pool".into(),
            kind: TrackKind::External,
            weight: 20,
        },
        TrackSpec {
            name: "bond0".into(),
            kind: TrackKind::Bond,
            weight: 0,
        },
    ];
    let mut r = Instance::new(params, T0).unwrap();
    assert_eq!(
        r.effective_priority(),
        120,
        "positive weight counts while up"
    );
    assert!(r.handle_track_event(T0, "eth1", false));
    assert_eq!(r.effective_priority(), 60);
    assert!(r.handle_track_event(T0, "pool", false));
    assert_eq!(r.effective_priority(), 40);
    assert!(!r.handle_track_event(T0, "unknown", false));
    // Skew follows the effective priority.
    assert_eq!(
        r.skew_time(),
        Duration::from_nanos(216 * 100 * 10_000_000 / 256)
    );

    r.handle_timeout(r.poll_timeout().unwrap());
    assert_eq!(r.state(), State::Master);
    drain(&mut r);
    let t = T0 + Duration::from_secs(20);
    r.handle_track_event(t, "bond0", false);
    let actions = drain(&mut r);
    assert_eq!(kinds(&actions), ["advert", "remove", "state"]);
    assert_eq!(sent_priorities(&actions), [0]);
    assert_eq!(r.state(), State::Fault);
    assert_eq!(
        r.status().fault,
        Some(Cause::TrackDown {
            track: "bond0".into()
        })
    );
    assert_eq!(r.poll_timeout(), None);
    r.handle_track_event(t + Duration::from_secs(1), "bond0", true);
    assert_eq!(r.state(), State::Backup);
    assert_eq!(transitions(&drain(&mut r))[0].cause, Cause::FaultCleared);
}

#[test]
fn transition_history_is_bounded_and_counted_per_cause() {
    let mut r = Instance::new(v3("r", 100, 1), T0).unwrap();
    let mut now = T0;
    for _ in 0..40 {
        now = r.poll_timeout().unwrap();
        r.handle_timeout(now);
        now = now + Duration::from_millis(10);
        r.handle_packet(now, meta(ip(2)), &Advert::v3(200).bytes(ip(2)))
            .unwrap();
    }
    assert_eq!(r.transitions().len(), 32);
    assert_eq!(r.counters().transitions(CauseKind::MasterSilent), 40);
    assert_eq!(r.counters().transitions(CauseKind::HigherPriority), 40);
    assert_eq!(r.counters().transitions(CauseKind::Startup), 1);
    let status = r.status();
    assert_eq!(status.state, State::Backup);
    assert_eq!(status.master.unwrap().address, ip(2));
    assert_eq!(status.transitions.last().unwrap().at, now);
}

#[test]
fn ipv6_instance_runs_on_hop_limit_255() {
    let ll: IpAddr = "fe80::1".parse().unwrap();
    let peer: IpAddr = "fe80::2".parse().unwrap();
    let vip: IpAddr = "fd00::100".parse().unwrap();
    let mut r =
        Instance::new(InstanceParams::v3("r6", "eth0", 52, 100, ll, vec![vip]), T0).unwrap();
    let vips = [match vip {
        IpAddr::V6(v) => v,
        IpAddr::V4(_) => unreachable!(),
    }];
    let repr = tandem_wire::AdvertRepr {
        version: Version::V3,
        vrid: 52,
        priority: 150,
        interval_cs: 100,
        auth: Auth::None,
        addresses: tandem_wire::AddressList::Ipv6(&vips),
    };
    let ep = tandem_wire::IpEndpoints::to_group(peer);
    let mut bytes = vec![0u8; repr.buffer_len()];
    repr.emit(&mut bytes, &ep, tandem_wire::Ipv4ChecksumMode::PseudoHeader)
        .unwrap();
    let meta6 = tandem_vrrp::RxMeta {
        src: peer,
        dst: "ff02::12".parse().unwrap(),
        ttl: 255,
    };
    r.handle_packet(T0, meta6, &bytes).unwrap();
    assert_eq!(r.master().unwrap().address, peer);
    drain(&mut r);
    r.handle_timeout(r.poll_timeout().unwrap());
    let actions = drain(&mut r);
    match &actions[0] {
        Action::SendAdvert(a) => {
            assert_eq!(
                (a.src, a.dst, a.ttl),
                (ll, "ff02::12".parse().unwrap(), 255)
            );
        }
        other => panic!("{other:?}"),
    }
}

/// keepalived's own B.11 `mail_vip` advert (captured) keeps a Tandem v2 backup quiet.
#[test]
fn keepalived_v2_pass_advert_is_accepted_by_a_v2_backup() {
    let hex = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../wire/tests/golden/keepalived_v2_pass_ipv4.hex"
    ))
    .unwrap();
    let frame: Vec<u8> = (0..hex.trim().len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let payload = &frame[14 + 20..];
    let keepalived = IpAddr::V4(Ipv4Addr::new(10, 99, 0, 1));
    let params = InstanceParams::v2(
        "mail_vip",
        "eth0",
        10,
        100,
        IpAddr::V4(Ipv4Addr::new(10, 99, 0, 2)),
        vec![IpAddr::V4(Ipv4Addr::new(123, 123, 123, 1))],
        Auth::simple_text(b"topSecret"),
    );
    let mut r = Instance::new(params.clone(), T0).unwrap();
    r.handle_packet(T0, meta(keepalived), payload).unwrap();
    assert_eq!(r.master().unwrap().priority, 150);
    assert_eq!(r.poll_timeout(), Some(T0 + r.master_down_interval()));
    // And our own v2 advert for the same config is byte-identical apart from priority/checksum.
    r.handle_timeout(r.poll_timeout().unwrap());
    let sent = drain(&mut r)
        .into_iter()
        .find_map(|a| match a {
            Action::SendAdvert(a) => Some(a.payload),
            _ => None,
        })
        .unwrap();
    assert_eq!(sent.len(), payload.len());
    assert_eq!(sent[..2], payload[..2]);
    assert_eq!(sent[3..6], payload[3..6]);
    assert_eq!(sent[8..], payload[8..]);
}
