//! Health scheduling and policy on a virtual clock (no sockets, no sleeping).
// Test/bench helpers outside #[test] fns may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tandem_lvs::health::*;
use tandem_lvs::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn tcp_check(port: u16, interval: Duration, fall: u32, rise: u32, retries: u32) -> CheckSpec {
    CheckSpec {
        key: CheckKey {
            probe: Probe::Tcp,
            target: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)), port),
            timeout: ms(50),
        },
        timing: CheckTiming {
            interval,
            retries,
            retry_delay: ms(20),
            rise,
            fall,
            start_up: true,
        },
    }
}

/// Runs the scheduler on a virtual clock until `until`, answering attempts with `alive(now)`
/// after `latency`. Returns the events seen and the attempt count.
fn simulate(
    sched: &mut HealthScheduler,
    start: Instant,
    until: Instant,
    latency: Duration,
    alive: impl Fn(Instant) -> bool,
) -> (Vec<HealthEvent>, usize) {
    let mut now = start;
    let mut pending: Vec<(Instant, Attempt)> = Vec::new();
    let mut events = Vec::new();
    let mut attempts = 0;
    while now <= until {
        while let Some(a) = sched.poll_attempt(now) {
            attempts += 1;
            pending.push((now + latency, a));
        }
        pending.sort_by_key(|(t, _)| *t);
        while pending.first().is_some_and(|(t, _)| *t <= now) {
            let (t, a) = pending.remove(0);
            let r = if alive(t) {
                Ok(())
            } else {
                Err(FailReason::Connect("refused".into()))
            };
            sched.handle_result(a.check, r, t);
        }
        while let Some(e) = sched.poll_event() {
            events.push(e);
        }
        // Jump the virtual clock to the next thing that happens.
        let next_timer = sched.poll_timeout();
        let next_done = pending.first().map(|(t, _)| *t);
        now = match (next_timer, next_done) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => break,
        };
    }
    (events, attempts)
}

#[test]
fn dead_server_detected_within_one_interval_at_100ms() {
    let t0 = Instant::now();
    let mut s = HealthScheduler::new(7);
    s.subscribe(SubscriberId(1), tcp_check(80, ms(100), 1, 1, 0), t0);
    let dies = t0 + ms(1_000);
    let (events, _) = simulate(&mut s, t0, t0 + ms(2_000), ms(1), |t| t < dies);
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(!events[0].up);
    let lag = events[0].at - dies;
    assert!(lag <= ms(101), "down event {lag:?} after death");
}

#[test]
fn identical_checks_run_once_and_fan_out() {
    let t0 = Instant::now();
    let mut s = HealthScheduler::new(1);
    let a = s.subscribe(SubscriberId(1), tcp_check(80, ms(100), 1, 1, 0), t0);
    let b = s.subscribe(SubscriberId(2), tcp_check(80, ms(300), 2, 1, 0), t0);
    let c = s.subscribe(SubscriberId(3), tcp_check(81, ms(100), 1, 1, 0), t0);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(s.check_count(), 2);
    let (events, attempts) = simulate(&mut s, t0, t0 + ms(1_000), ms(1), |_| false);
    // Shared check at the shortest interval (100 ms): ~10 rounds per target, 2 targets.
    assert!((18..=22).contains(&attempts), "{attempts}");
    let down: Vec<_> = events.iter().map(|e| e.subscriber.0).collect();
    assert_eq!(down.len(), 3);
    // Subscriber 2 has fall=2: it goes down one round after subscriber 1.
    let at = |id| events.iter().find(|e| e.subscriber.0 == id).unwrap().at;
    assert_eq!(at(2) - at(1), ms(100));
    s.unsubscribe(SubscriberId(1));
    assert_eq!(s.check_count(), 2);
    s.unsubscribe(SubscriberId(2));
    assert_eq!(s.check_count(), 1);
}

#[test]
fn jittered_first_rounds_spread_over_the_interval() {
    let t0 = Instant::now();
    let mut s = HealthScheduler::new(42);
    for port in 0..100 {
        s.subscribe(
            SubscriberId(u64::from(port)),
            tcp_check(1000 + port, ms(1_000), 1, 1, 0),
            t0,
        );
    }
    let mut firsts = Vec::new();
    let mut now = t0;
    while let Some(t) = s.poll_timeout() {
        if t > t0 + ms(1_000) {
            break;
        }
        now = now.max(t);
        while let Some(a) = s.poll_attempt(now) {
            firsts.push(now - t0);
            s.handle_result(a.check, Ok(()), now);
        }
    }
    assert_eq!(
        firsts.len(),
        100,
        "every check starts within its first interval"
    );
    let early = firsts.iter().filter(|d| **d < ms(500)).count();
    assert!(
        (25..=75).contains(&early),
        "starts not spread: {early} in first half"
    );
}

#[test]
fn retries_then_rise_and_fall() {
    let t0 = Instant::now();
    let mut s = HealthScheduler::new(3);
    s.subscribe(SubscriberId(1), tcp_check(80, ms(100), 2, 3, 1), t0);
    // One failed attempt followed by a successful retry is a good round: no event.
    let flap = |t: Instant| (t - t0).as_millis() % 100 > 10;
    let (events, attempts) = simulate(&mut s, t0, t0 + ms(500), ms(1), flap);
    assert!(events.is_empty(), "{events:?}");
    assert!(attempts > 5);

    let t1 = t0 + ms(600);
    let dead_until = t1 + ms(1_000);
    let (events, _) = simulate(&mut s, t1, t1 + ms(2_000), ms(1), |t| t >= dead_until);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(!events[0].up);
    assert!(events[1].up);
    // rise = 3: up only after three good rounds after recovery (>= 200 ms after).
    assert!(
        events[1].at - dead_until >= ms(200),
        "{:?}",
        events[1].at - dead_until
    );
}

fn vip_service(n: u8) -> (VirtualService, Vec<RealServerId>) {
    let mut vs = VirtualService::new(ServiceSettings::new(Scheduler::WeightedRoundRobin));
    let mut ids = Vec::new();
    for i in 1..=n {
        let id = RealServerId {
            addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)),
            port: 80,
        };
        vs.real_servers
            .insert(id, RealServer::new(Forwarding::DirectRouting, 2));
        ids.push(id);
    }
    (vs, ids)
}

#[test]
fn quiesce_remove_and_reentry() {
    let t0 = Instant::now();
    let (config, ids) = vip_service(3);
    let mut policy = ServicePolicy {
        reentry: ms(5_000),
        ..Default::default()
    };
    let mut h = ServiceHealth::new();
    assert_eq!(h.evaluate(&config, &policy, t0), config);

    h.set_health(ids[0], false, t0);
    let out = h.evaluate(&config, &policy, t0);
    assert_eq!(out.real_servers[&ids[0]].weight, 0, "quiesced");
    assert_eq!(out.real_servers.len(), 3);
    policy.on_failure = OnFailure::Remove;
    assert_eq!(
        h.evaluate(&config, &policy, t0).real_servers.len(),
        2,
        "removed"
    );

    // Recovers at t0+1s: out until t0+6s.
    h.set_health(ids[0], true, t0 + ms(1_000));
    assert!(!h
        .evaluate(&config, &policy, t0 + ms(5_999))
        .real_servers
        .contains_key(&ids[0]));
    assert_eq!(h.next_deadline(&policy), Some(t0 + ms(6_000)));
    assert_eq!(h.evaluate(&config, &policy, t0 + ms(6_000)), config);
    assert_eq!(h.next_deadline(&policy), None);

    // A relapse during re-entry restarts the wait.
    h.set_health(ids[1], false, t0 + ms(7_000));
    h.set_health(ids[1], true, t0 + ms(8_000));
    h.set_health(ids[1], false, t0 + ms(9_000));
    h.set_health(ids[1], true, t0 + ms(10_000));
    assert!(!h
        .evaluate(&config, &policy, t0 + ms(14_000))
        .real_servers
        .contains_key(&ids[1]));
    assert!(h
        .evaluate(&config, &policy, t0 + ms(15_000))
        .real_servers
        .contains_key(&ids[1]));
}

/// Two servers recover a millisecond apart; the engine evaluates at the first one's re-entry
/// deadline and only reads the clock again after the second one's deadline passed (a busy
/// machine). The second deadline must still be reported, or that server never re-enters.
#[test]
fn a_reentry_deadline_passing_between_evaluations_is_not_lost() {
    let t0 = Instant::now();
    let (config, ids) = vip_service(2);
    let policy = ServicePolicy {
        on_failure: OnFailure::Remove,
        reentry: ms(3_000),
        ..Default::default()
    };
    let mut h = ServiceHealth::new();
    h.set_initial(ids[0], false);
    h.set_initial(ids[1], false);
    assert!(h.evaluate(&config, &policy, t0).real_servers.is_empty());
    h.set_health(ids[0], true, t0 + ms(100));
    h.set_health(ids[1], true, t0 + ms(101));
    assert_eq!(h.next_deadline(&policy), Some(t0 + ms(3_100)));
    let first = h.evaluate(&config, &policy, t0 + ms(3_100));
    assert!(first.real_servers.contains_key(&ids[0]));
    assert!(!first.real_servers.contains_key(&ids[1]));
    // Whatever the clock says now, the second deadline is still due.
    assert_eq!(h.next_deadline(&policy), Some(t0 + ms(3_101)));
    assert_eq!(h.evaluate(&config, &policy, t0 + ms(3_500)), config);
    assert_eq!(h.next_deadline(&policy), None);
}

#[test]
fn sorry_server_and_quorum_hysteresis() {
    let t0 = Instant::now();
    let (config, ids) = vip_service(4); // weights 2 each: full sum 8
    let sorry_id = RealServerId {
        addr: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
        port: 8080,
    };
    let sorry = RealServer::new(Forwarding::Nat, 1);
    let policy = ServicePolicy {
        sorry_server: Some((sorry_id, sorry)),
        quorum: 5,
        hysteresis: 2, // lost below 3, regained at 7
        ..Default::default()
    };
    let mut h = ServiceHealth::new();
    assert_eq!(h.evaluate(&config, &policy, t0), config);
    h.set_health(ids[0], false, t0);
    h.set_health(ids[1], false, t0); // live sum 4: inside the band, still up
    let out = h.evaluate(&config, &policy, t0);
    assert_eq!(h.quorum_up(), Some(true));
    assert!(!out.real_servers.contains_key(&sorry_id));
    h.set_health(ids[2], false, t0); // live 2 < 3: lost
    let out = h.evaluate(&config, &policy, t0);
    assert_eq!(h.quorum_up(), Some(false));
    assert_eq!(out.real_servers.len(), 1);
    assert_eq!(out.real_servers[&sorry_id], sorry);
    h.set_health(ids[0], true, t0); // live 4: inside the band, still lost
    h.set_health(ids[1], true, t0); // live 6 < 7: still lost
    assert_eq!(h.evaluate(&config, &policy, t0).real_servers.len(), 1);
    h.set_health(ids[2], true, t0); // live 8 >= 7: regained
    assert_eq!(h.evaluate(&config, &policy, t0), config);

    // Default quorum (1): the sorry server appears exactly when all are down.
    let p = ServicePolicy {
        sorry_server: Some((sorry_id, sorry)),
        ..Default::default()
    };
    let mut h = ServiceHealth::new();
    for id in &ids[..3] {
        h.set_health(*id, false, t0);
    }
    assert!(!h
        .evaluate(&config, &p, t0)
        .real_servers
        .contains_key(&sorry_id));
    h.set_health(ids[3], false, t0);
    let out = h.evaluate(&config, &p, t0);
    assert_eq!(
        out.real_servers.keys().copied().collect::<Vec<_>>(),
        vec![sorry_id]
    );
}

#[test]
fn health_results_drive_the_reconciler_to_one_set_dest() {
    let t0 = Instant::now();
    let (config, ids) = vip_service(3);
    let policy = ServicePolicy::default();
    let mut h = ServiceHealth::new();
    let vip = ServiceId::Inet {
        protocol: Protocol::Tcp,
        addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        port: 80,
    };
    let before = h.evaluate(&config, &policy, t0);
    h.set_health(ids[1], false, t0);
    let after = h.evaluate(&config, &policy, t0);
    let ops = diff_service(&vip, Some(&after), Some(&before));
    assert_eq!(
        ops,
        vec![Op::EditRealServer(
            vip,
            ids[1],
            RealServer::new(Forwarding::DirectRouting, 0)
        )]
    );
}

/// A subscriber that starts down (keepalived's `alpha`) reports its first failed round once,
/// with the failure (its status would otherwise say "not checked yet" for ever); later failed
/// rounds report nothing, and recovery reports up.
#[test]
fn a_start_down_subscriber_reports_its_first_failure_once() {
    let t0 = Instant::now();
    let mut s = HealthScheduler::new(3);
    let mut spec = tcp_check(80, ms(100), 2, 1, 0);
    spec.timing.start_up = false;
    s.subscribe(SubscriberId(1), spec, t0);
    let alive_from = t0 + ms(1_000);
    let (events, attempts) = simulate(&mut s, t0, t0 + ms(1_500), ms(1), |t| t >= alive_from);
    assert!(attempts > 5);
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(!events[0].up && events[0].reason.is_some(), "{events:?}");
    assert!(events[0].at < alive_from);
    assert!(events[1].up && events[1].at >= alive_from, "{events:?}");
}
