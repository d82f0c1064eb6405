//! Live reconfiguration (`Speaker::reconcile`) and the ingress decisions (healed split, unicast
//! peers) on a virtual clock: single speakers driven by hand, and two speakers on a lossless
//! bus with fixed latency.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use tandem_vrrp::time::{master_down_interval, skew_time};
use tandem_vrrp::{
    unicast_peer_allowed, Action, Cause, CauseKind, DiscardReason, GraceCause, HealedSplit,
    InstanceId, InstanceParams, Instant, MasterDownReason, ParamChange, ParamError, RxMeta,
    Speaker, State, TrackKind, TrackSpec, Transition, Version, ADDRESS_LIST_GRACE, REANNOUNCE_GAP,
};
use tandem_wire::vrrp::IPV4_GROUP;
use tandem_wire::{AddressList, AdvertRepr, Auth, IpEndpoints, Ipv4ChecksumMode};

use common::{kinds, transitions};

// ----- helpers -------------------------------------------------------------------------------

fn addr(vrid: u8, last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, vrid, last))
}

/// Instance `name` on eth0, VRID `vrid`, own address 10.0.vrid.own, VIP 10.0.vrid.100, 100 ms.
fn params(name: &str, vrid: u8, priority: u8, own: u8) -> InstanceParams {
    let mut p = InstanceParams::v3(
        name,
        "eth0",
        vrid,
        priority,
        addr(vrid, own),
        vec![addr(vrid, 100)],
    );
    p.advert_interval_cs = 10;
    p
}

fn track(name: &str, weight: i16) -> TrackSpec {
    TrackSpec {
        name: name.into(),
        kind: TrackKind::Interface,
        weight,
    }
}

fn ms(millis: u64) -> Instant {
    Instant::from_millis(millis)
}

fn drain(speaker: &mut Speaker) -> Vec<(InstanceId, Action)> {
    std::iter::from_fn(|| speaker.poll_action()).collect()
}

fn of(actions: &[(InstanceId, Action)], id: InstanceId) -> Vec<Action> {
    actions
        .iter()
        .filter(|(i, _)| *i == id)
        .map(|(_, a)| a.clone())
        .collect()
}

/// Fires the speaker's timers until `id` is master (a lone instance: Master_Down fires).
fn make_master(speaker: &mut Speaker, id: InstanceId) -> Instant {
    let mut now = Instant::ZERO;
    while speaker.instance(id).unwrap().state() != State::Master {
        now = speaker.poll_timeout().unwrap();
        speaker.handle_timeout(now);
    }
    drain(speaker);
    now
}

fn advert_bytes(vrid: u8, priority: u8, src: IpAddr, vips: &[Ipv4Addr]) -> Vec<u8> {
    let repr = AdvertRepr {
        version: Version::V3,
        vrid,
        priority,
        interval_cs: 10,
        auth: Auth::None,
        addresses: AddressList::Ipv4(vips),
    };
    let mut out = vec![0u8; repr.buffer_len()];
    let len = repr
        .emit(
            &mut out,
            &IpEndpoints::to_group(src),
            Ipv4ChecksumMode::PseudoHeader,
        )
        .unwrap();
    out.truncate(len);
    out
}

fn group_meta(src: IpAddr) -> RxMeta {
    RxMeta {
        src,
        dst: IpAddr::V4(IPV4_GROUP),
        ttl: 255,
    }
}

// ----- a two-box bus -------------------------------------------------------------------------

struct InFlight {
    from: usize,
    interface: String,
    meta: RxMeta,
    payload: Vec<u8>,
}

/// Lossless bus with fixed latency. Every action is logged with its node and instance id;
/// interfaces are remembered per id, so a removed instance's last adverts are still delivered.
struct Bus {
    nodes: Vec<Speaker>,
    interfaces: Vec<BTreeMap<InstanceId, String>>,
    now: Instant,
    latency: Duration,
    queue: BTreeMap<(Instant, u64), InFlight>,
    seq: u64,
    log: Vec<(Instant, usize, InstanceId, Action)>,
}

impl Bus {
    fn new(latency: Duration) -> Bus {
        Bus {
            nodes: Vec::new(),
            interfaces: Vec::new(),
            now: Instant::ZERO,
            latency,
            queue: BTreeMap::new(),
            seq: 0,
            log: Vec::new(),
        }
    }

    fn add_node(&mut self, instances: Vec<InstanceParams>) -> usize {
        let mut speaker = Speaker::new();
        for p in instances {
            speaker.add_instance(p, self.now).unwrap();
        }
        self.nodes.push(speaker);
        self.interfaces.push(BTreeMap::new());
        let node = self.nodes.len() - 1;
        self.collect(node);
        node
    }

    fn reconcile(&mut self, node: usize, wanted: Vec<InstanceParams>) -> tandem_vrrp::Reconciled {
        let out = self.nodes[node].reconcile(wanted, &[], self.now);
        self.collect(node);
        out
    }

    fn collect(&mut self, node: usize) {
        for (id, instance) in self.nodes[node].instances() {
            self.interfaces[node]
                .entry(id)
                .or_insert_with(|| instance.params().interface.clone());
        }
        while let Some((id, action)) = self.nodes[node].poll_action() {
            if let Action::SendAdvert(advert) = &action {
                self.seq += 1;
                let flight = InFlight {
                    from: node,
                    interface: self.interfaces[node][&id].clone(),
                    meta: RxMeta {
                        src: advert.src,
                        dst: advert.dst,
                        ttl: advert.ttl,
                    },
                    payload: advert.payload.clone(),
                };
                self.queue
                    .insert((self.now + self.latency, self.seq), flight);
            }
            self.log.push((self.now, node, id, action));
        }
    }

    fn run_until(&mut self, until: Instant) {
        loop {
            let next_packet = self.queue.keys().next().map(|(at, _)| *at);
            let next_timer = self.nodes.iter().filter_map(Speaker::poll_timeout).min();
            let next = [next_packet, next_timer].into_iter().flatten().min();
            let Some(next) = next.filter(|at| *at <= until) else {
                self.now = until;
                return;
            };
            self.now = next;
            while let Some(entry) = self.queue.first_entry() {
                if entry.key().0 > self.now {
                    break;
                }
                let flight = entry.remove();
                for node in 0..self.nodes.len() {
                    if node != flight.from {
                        let _ = self.nodes[node].handle_packet(
                            self.now,
                            &flight.interface,
                            flight.meta,
                            &flight.payload,
                        );
                        self.collect(node);
                    }
                }
            }
            for node in 0..self.nodes.len() {
                self.nodes[node].handle_timeout(self.now);
                self.collect(node);
            }
        }
    }

    fn instance(&self, node: usize, name: &str) -> &tandem_vrrp::Instance {
        let speaker = &self.nodes[node];
        speaker.instance(speaker.find(name).unwrap()).unwrap()
    }

    fn state(&self, node: usize, name: &str) -> State {
        let speaker = &self.nodes[node];
        speaker
            .instance(speaker.find(name).unwrap())
            .unwrap()
            .state()
    }

    /// Transitions of `node` at or after `after`.
    fn transitions(&self, node: usize, after: Instant) -> Vec<Transition> {
        self.log
            .iter()
            .filter(|(at, n, _, _)| *n == node && *at >= after)
            .filter_map(|(_, _, _, a)| match a {
                Action::StateChanged(t) => Some(t.clone()),
                _ => None,
            })
            .collect()
    }

    /// Priorities of the adverts `node` sent at or after `after`, with their times.
    fn adverts(&self, node: usize, after: Instant) -> Vec<(Instant, u8)> {
        self.log
            .iter()
            .filter(|(at, n, _, _)| *n == node && *at >= after)
            .filter_map(|(at, _, _, a)| match a {
                Action::SendAdvert(advert) => Some((*at, advert.priority)),
                _ => None,
            })
            .collect()
    }
}

// ----- identity ------------------------------------------------------------------------------

#[test]
fn ids_stay_stable_across_removals_and_are_never_reused() {
    let mut speaker = Speaker::new();
    let t = Instant::ZERO;
    let a = speaker.add_instance(params("a", 1, 100, 1), t).unwrap();
    let b = speaker.add_instance(params("b", 2, 100, 1), t).unwrap();
    let c = speaker.add_instance(params("c", 3, 100, 1), t).unwrap();
    assert_eq!((a, b, c), (InstanceId(0), InstanceId(1), InstanceId(2)));
    drain(&mut speaker);

    // b goes: a and c keep their ids.
    let out = speaker.reconcile(
        vec![params("a", 1, 100, 1), params("c", 3, 100, 1)],
        &[],
        ms(10),
    );
    assert_eq!(out.removed, vec![b]);
    assert_eq!(out.unchanged, vec![a, c]);
    assert!(speaker.instance(b).is_none());
    assert_eq!(speaker.find("c"), Some(c));
    assert_eq!(speaker.find("b"), None);
    let ids: Vec<InstanceId> = speaker.instances().map(|(id, _)| id).collect();
    assert_eq!(ids, vec![a, c]);
    assert!(of(&drain(&mut speaker), b)
        .iter()
        .any(|a| matches!(a, Action::StateChanged(_))));

    // b comes back under the same key: a fresh id, never b's.
    let out = speaker.reconcile(
        vec![
            params("a", 1, 100, 1),
            params("b", 2, 100, 1),
            params("c", 3, 100, 1),
        ],
        &[],
        ms(20),
    );
    assert_eq!(out.added, vec![InstanceId(3)]);
    assert_eq!(speaker.find("b"), Some(InstanceId(3)));
    assert_eq!(
        speaker.id_of(&params("b", 2, 1, 1).key()),
        Some(InstanceId(3))
    );
    assert!(speaker.instance(b).is_none());
    // add_instance keeps counting from there too.
    let d = speaker
        .add_instance(params("d", 4, 100, 1), ms(30))
        .unwrap();
    assert_eq!(d, InstanceId(4));
    drain(&mut speaker);
    // Actions never name a removed id again.
    speaker.handle_timeout(ms(10_000));
    assert!(drain(&mut speaker).iter().all(|(id, _)| *id != b));
}

// ----- unchanged, added, removed, changed ---------------------------------------------------

#[test]
fn unchanged_instance_is_untouched_while_others_are_added_removed_and_changed() {
    let mut speaker = Speaker::new();
    let a = speaker
        .add_instance(params("a", 1, 100, 1), Instant::ZERO)
        .unwrap();
    let b = speaker
        .add_instance(params("b", 2, 100, 1), Instant::ZERO)
        .unwrap();
    let c = speaker
        .add_instance(params("c", 3, 100, 1), Instant::ZERO)
        .unwrap();
    let mut now = make_master(&mut speaker, a);
    assert_eq!(speaker.instance(b).unwrap().state(), State::Master);
    now = now + Duration::from_millis(35);
    speaker.handle_timeout(now);
    drain(&mut speaker);

    let before = speaker.instance(a).unwrap().status();
    let a_deadline = speaker.instance(a).unwrap().poll_timeout();
    let mut c_params = params("c", 3, 150, 1);
    c_params.preempt = false;
    let wanted = vec![params("new", 9, 100, 1), c_params, params("a", 1, 100, 1)];
    let out = speaker.reconcile(wanted, &[], now);
    assert_eq!(out.unchanged, vec![a]);
    assert_eq!(out.removed, vec![b]);
    assert_eq!(out.added, vec![InstanceId(3)]);
    assert_eq!(
        out.changed,
        vec![(
            c,
            vec![
                ParamChange::Priority { from: 100, to: 150 },
                ParamChange::Preempt {
                    from: true,
                    to: false
                }
            ]
        )]
    );
    assert!(out.refused.is_empty());

    let actions = drain(&mut speaker);
    assert!(of(&actions, a).is_empty(), "{actions:?}");
    assert_eq!(speaker.instance(a).unwrap().poll_timeout(), a_deadline);
    assert_eq!(speaker.instance(a).unwrap().status(), before);
    // b was master: priority 0, addresses gone, then Initialize, under its old id.
    assert_eq!(kinds(&of(&actions, b)), ["advert", "remove", "state"]);
    // c (master) changes nothing visible now: the next advert carries 150.
    assert!(of(&actions, c).is_empty());
    assert_eq!(kinds(&of(&actions, InstanceId(3))), ["state"]);

    // Nothing happened to a at all, and it keeps advertising on its old cadence.
    let next = a_deadline.unwrap();
    speaker.handle_timeout(next);
    let actions = drain(&mut speaker);
    assert_eq!(kinds(&of(&actions, a)), ["advert"]);
    match &of(&actions, c)[..] {
        [Action::SendAdvert(advert)] => assert_eq!(advert.priority, 150),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        speaker.instance(a).unwrap().transitions().iter().count(),
        before.transitions.len()
    );

    // The same config again is a no-op for everyone.
    let wanted = vec![
        params("new", 9, 100, 1),
        {
            let mut p = params("c", 3, 150, 1);
            p.preempt = false;
            p
        },
        params("a", 1, 100, 1),
    ];
    let deadline = speaker.poll_timeout();
    let out = speaker.reconcile(wanted, &[], next);
    assert!(out.is_noop(), "{out:?}");
    assert_eq!(out.unchanged.len(), 3);
    assert!(drain(&mut speaker).is_empty());
    assert_eq!(speaker.poll_timeout(), deadline);
}

#[test]
fn refused_instance_leaves_the_rest_untouched() {
    let mut speaker = Speaker::new();
    let a = speaker
        .add_instance(params("a", 1, 100, 1), Instant::ZERO)
        .unwrap();
    let b = speaker
        .add_instance(params("b", 2, 100, 1), Instant::ZERO)
        .unwrap();
    let now = make_master(&mut speaker, a);
    let deadline = speaker.poll_timeout();
    let status_a = speaker.instance(a).unwrap().status();
    let status_b = speaker.instance(b).unwrap().status();

    let mut bad_new = params("bad", 7, 100, 1);
    bad_new.priority = 0;
    let mut bad_change = params("b", 2, 100, 1);
    bad_change.virtual_addresses.clear();
    let out = speaker.reconcile(
        vec![
            params("a", 1, 100, 1),
            bad_new,
            bad_change,
            // Same key as a, given twice.
            params("a-again", 1, 120, 1),
        ],
        &[],
        now,
    );
    assert_eq!(out.unchanged, vec![a]);
    assert!(out.added.is_empty() && out.removed.is_empty() && out.changed.is_empty());
    let refused: Vec<(&str, Option<InstanceId>, &ParamError)> = out
        .refused
        .iter()
        .map(|r| (r.name.as_str(), r.kept, &r.error))
        .collect();
    assert_eq!(
        refused,
        vec![
            ("bad", None, &ParamError::PriorityZero),
            ("b", Some(b), &ParamError::NoVirtualAddresses),
            (
                "a-again",
                Some(a),
                &ParamError::DuplicateVrid {
                    interface: "eth0".into(),
                    vrid: 1
                }
            ),
        ]
    );
    // Nothing moved: b keeps running with its old parameters.
    assert!(drain(&mut speaker).is_empty());
    assert_eq!(speaker.poll_timeout(), deadline);
    assert_eq!(speaker.instance(a).unwrap().status(), status_a);
    assert_eq!(speaker.instance(b).unwrap().status(), status_b);
    assert_eq!(speaker.instances().count(), 2);
}

// ----- two boxes -----------------------------------------------------------------------------

#[test]
fn lowered_master_priority_hands_over_to_a_preempting_backup_with_one_transition_each() {
    let latency = Duration::from_micros(50);
    let mut bus = Bus::new(latency);
    let a = bus.add_node(vec![params("vr", 5, 200, 1)]);
    let b = bus.add_node(vec![params("vr", 5, 100, 2)]);
    bus.run_until(ms(2_000));
    assert_eq!(bus.state(a, "vr"), State::Master);
    assert_eq!(bus.state(b, "vr"), State::Backup);

    let change = bus.now;
    let last_high = bus
        .adverts(a, Instant::ZERO)
        .last()
        .map(|(at, _)| *at)
        .unwrap();
    let out = bus.reconcile(a, vec![params("vr", 5, 50, 1)]);
    assert_eq!(
        out.changed,
        vec![(
            InstanceId(0),
            vec![ParamChange::Priority { from: 200, to: 50 }]
        )]
    );
    assert!(
        bus.transitions(a, change).is_empty(),
        "no transition on the change"
    );
    bus.run_until(ms(3_000));

    assert_eq!(bus.state(a, "vr"), State::Backup);
    assert_eq!(bus.state(b, "vr"), State::Master);
    let ta = bus.transitions(a, change);
    let tb = bus.transitions(b, change);
    assert_eq!(ta.len(), 1, "{ta:?}");
    assert_eq!(tb.len(), 1, "{tb:?}");
    assert_eq!(
        tb[0].cause,
        Cause::MasterDown {
            reason: MasterDownReason::Preempting,
            last_master: Some(addr(5, 1))
        }
    );
    assert_eq!(
        ta[0].cause,
        Cause::HigherPriority {
            from: addr(5, 2),
            priority: 100
        }
    );
    // A's next advert carried 50; B discarded it (RFC 9568 6.4.2) and preempted when its
    // Master_Down_Timer, last reset by a priority-200 advert, ran out.
    let after: Vec<u8> = bus.adverts(a, change).iter().map(|(_, p)| *p).collect();
    assert_eq!(after.first(), Some(&50));
    let speaker = &bus.nodes[b];
    let instance = speaker.instance(speaker.find("vr").unwrap()).unwrap();
    assert!(instance.counters().lower_priority_ignored >= 1);
    assert_eq!(
        tb[0].at,
        last_high + latency + master_down_interval(100, 10),
        "Master_Down_Interval after the last priority-200 advert"
    );
    // A yields as soon as B's first advert arrives.
    assert_eq!(ta[0].at, tb[0].at + latency);
}

#[test]
fn removed_master_sends_priority_zero_and_the_backup_takes_over_after_skew_time() {
    let latency = Duration::from_micros(20);
    let mut bus = Bus::new(latency);
    let a = bus.add_node(vec![params("vr", 5, 200, 1), params("other", 6, 200, 1)]);
    let b = bus.add_node(vec![params("vr", 5, 100, 2), params("other", 6, 100, 2)]);
    bus.run_until(ms(2_000));
    assert_eq!(bus.state(a, "vr"), State::Master);
    let vr = bus.nodes[a].find("vr").unwrap();
    let other = bus.nodes[a].find("other").unwrap();
    let other_deadline = bus.nodes[a].instance(other).unwrap().poll_timeout();

    let stop = bus.now;
    let out = bus.reconcile(a, vec![params("other", 6, 200, 1)]);
    assert_eq!(out.removed, vec![vr]);
    assert_eq!(out.unchanged, vec![other]);
    assert_eq!(
        bus.nodes[a].instance(other).unwrap().poll_timeout(),
        other_deadline
    );
    // The removed instance's last actions, under its old id: priority 0, addresses gone.
    let last: Vec<Action> = bus
        .log
        .iter()
        .filter(|(at, n, id, _)| *at >= stop && *n == a && *id == vr)
        .map(|(_, _, _, action)| action.clone())
        .collect();
    assert_eq!(kinds(&last), ["advert", "remove", "state"]);
    assert!(matches!(&last[0], Action::SendAdvert(advert) if advert.priority == 0));
    assert_eq!(
        last[1],
        Action::RemoveVips {
            addresses: vec![addr(5, 100)]
        }
    );
    assert!(matches!(
        &last[2],
        Action::StateChanged(Transition {
            to: State::Initialize,
            cause: Cause::Shutdown,
            ..
        })
    ));
    assert!(bus.nodes[a].instance(vr).is_none());

    bus.run_until(ms(3_000));
    assert_eq!(bus.state(b, "vr"), State::Master);
    let tb: Vec<Transition> = bus
        .transitions(b, stop)
        .into_iter()
        .filter(|t| t.to == State::Master)
        .collect();
    assert_eq!(tb.len(), 1, "only vr moves: {tb:?}");
    assert_eq!(tb[0].cause.kind(), CauseKind::MasterLeft);
    // Skew_Time of priority 100 at 100 ms (60.9375 ms), not Master_Down_Interval.
    assert_eq!(tb[0].at - stop, latency + skew_time(100, 10));
    assert_eq!(bus.state(a, "other"), State::Master);
    assert!(
        bus.transitions(a, stop).len() == 1,
        "only the removal's own transition"
    );
}

#[test]
fn vip_added_to_a_master_is_added_and_announced_with_no_state_change() {
    let mut bus = Bus::new(Duration::from_micros(50));
    let a = bus.add_node(vec![params("vr", 5, 200, 1)]);
    let b = bus.add_node(vec![params("vr", 5, 100, 2)]);
    bus.run_until(ms(2_000));
    let change = bus.now;
    let deadline = bus.nodes[a].poll_timeout();

    let with = |p: InstanceParams| {
        let mut p = p;
        p.virtual_addresses = vec![addr(5, 100), addr(5, 101)];
        p
    };
    let out_a = bus.reconcile(a, vec![with(params("vr", 5, 200, 1))]);
    let out_b = bus.reconcile(b, vec![with(params("vr", 5, 100, 2))]);
    let expected = vec![ParamChange::VirtualAddresses {
        added: vec![addr(5, 101)],
        removed: vec![],
    }];
    assert_eq!(out_a.changed, vec![(InstanceId(0), expected.clone())]);
    assert_eq!(out_b.changed, vec![(InstanceId(0), expected)]);
    assert_eq!(
        out_a.accept_resync().collect::<Vec<_>>(),
        vec![InstanceId(0)]
    );

    let on_a: Vec<Action> = bus
        .log
        .iter()
        .filter(|(at, n, _, _)| *at >= change && *n == a)
        .map(|(_, _, _, action)| action.clone())
        .collect();
    assert_eq!(
        on_a,
        vec![
            Action::AddVips {
                addresses: vec![addr(5, 101)],
                accept: false
            },
            Action::Announce {
                addresses: vec![addr(5, 101)]
            }
        ]
    );
    // The backup has nothing to do in the kernel; the master's advert timer is untouched.
    assert!(bus.log.iter().all(|(at, n, _, _)| *at < change || *n != b));
    assert_eq!(bus.nodes[a].poll_timeout(), deadline);
    let speaker = &bus.nodes[a];
    assert_eq!(
        speaker.instance(InstanceId(0)).unwrap().accept_drops(),
        vec![addr(5, 100), addr(5, 101)]
    );

    // Both agree on the new list: adverts keep flowing, nobody moves.
    bus.run_until(ms(4_000));
    assert!(bus.transitions(a, change).is_empty());
    assert!(bus.transitions(b, change).is_empty());
    let speaker = &bus.nodes[b];
    let backup = speaker.instance(InstanceId(0)).unwrap();
    assert_eq!(backup.counters().discarded_total(), 0);
}

// ----- changes in place ----------------------------------------------------------------------

#[test]
fn an_address_moving_between_masters_is_removed_before_it_is_added() {
    let mut speaker = Speaker::new();
    let moving = addr(1, 50);
    let mut first = params("first", 1, 100, 1);
    first.virtual_addresses = vec![addr(1, 100)];
    let mut second = params("second", 2, 100, 1);
    second.virtual_addresses = vec![addr(2, 100), moving];
    let x = speaker.add_instance(first.clone(), Instant::ZERO).unwrap();
    let y = speaker.add_instance(second.clone(), Instant::ZERO).unwrap();
    let now = make_master(&mut speaker, x);
    make_master(&mut speaker, y);

    // The address moves from y to x (x has the lower id, so id order would add it first).
    first.virtual_addresses.push(moving);
    second.virtual_addresses.retain(|a| *a != moving);
    speaker.reconcile(vec![first, second], &[], now);
    let actions = drain(&mut speaker);
    assert_eq!(
        actions,
        vec![
            (
                y,
                Action::RemoveVips {
                    addresses: vec![moving]
                }
            ),
            (
                x,
                Action::AddVips {
                    addresses: vec![moving],
                    accept: false
                }
            ),
            (
                x,
                Action::Announce {
                    addresses: vec![moving]
                }
            ),
        ]
    );
}

#[test]
fn accept_mode_change_of_a_master_needs_no_transition_and_shows_in_its_drops() {
    let mut speaker = Speaker::new();
    let id = speaker
        .add_instance(params("vr", 1, 100, 1), Instant::ZERO)
        .unwrap();
    let now = make_master(&mut speaker, id);
    assert_eq!(
        speaker.instance(id).unwrap().accept_drops(),
        vec![addr(1, 100)]
    );
    let deadline = speaker.poll_timeout();
    let mut p = params("vr", 1, 100, 1);
    p.accept_mode = true;
    let out = speaker.reconcile(vec![p], &[], now);
    assert_eq!(
        out.changed,
        vec![(
            id,
            vec![ParamChange::AcceptMode {
                from: false,
                to: true
            }]
        )]
    );
    assert_eq!(out.accept_resync().collect::<Vec<_>>(), vec![id]);
    assert!(drain(&mut speaker).is_empty());
    assert_eq!(speaker.poll_timeout(), deadline);
    assert!(speaker.instance(id).unwrap().accept_drops().is_empty());
}

#[test]
fn master_uses_a_new_interval_from_the_next_advert() {
    let mut speaker = Speaker::new();
    let id = speaker
        .add_instance(params("vr", 1, 100, 1), Instant::ZERO)
        .unwrap();
    let became = make_master(&mut speaker, id);
    let next = speaker.poll_timeout().unwrap();
    assert_eq!(next, became + Duration::from_millis(100));
    let mut p = params("vr", 1, 100, 1);
    p.advert_interval_cs = 50;
    speaker.reconcile(vec![p], &[], became + Duration::from_millis(30));
    assert!(drain(&mut speaker).is_empty());
    // The advert already scheduled goes out on time, carrying 50 cs; the next is 500 ms later.
    assert_eq!(speaker.poll_timeout(), Some(next));
    speaker.handle_timeout(next);
    let actions = drain(&mut speaker);
    let Some((_, Action::SendAdvert(advert))) = actions.first() else {
        panic!("{actions:?}");
    };
    let packet =
        tandem_wire::AdvertPacket::new_checked(&advert.payload[..], tandem_wire::Family::Ipv4)
            .unwrap();
    let repr = AdvertRepr::parse(&packet, &IpEndpoints::new(advert.src, advert.dst).unwrap())
        .unwrap()
        .0;
    assert_eq!(repr.interval_cs, 50);
    assert_eq!(
        speaker.poll_timeout(),
        Some(next + Duration::from_millis(500))
    );
}

#[test]
fn backup_master_down_timer_is_recomputed_only_when_its_span_changes() {
    let mut speaker = Speaker::new();
    let id = speaker
        .add_instance(params("vr", 1, 100, 1), Instant::ZERO)
        .unwrap();
    drain(&mut speaker);
    // No master heard yet: Master_Adver_Interval is our own, so a new interval moves the
    // deadline, counted from when the timer was armed (startup, t = 0).
    assert_eq!(
        speaker.poll_timeout(),
        Some(Instant::ZERO + master_down_interval(100, 10))
    );
    let mut p = params("vr", 1, 100, 1);
    p.advert_interval_cs = 20;
    speaker.reconcile(vec![p.clone()], &[], ms(100));
    assert!(drain(&mut speaker).is_empty());
    assert_eq!(
        speaker.poll_timeout(),
        Some(Instant::ZERO + master_down_interval(100, 20))
    );

    // A v3 master is heard with 10 cs: its interval counts from now on, ours does not.
    let heard = ms(200);
    speaker
        .handle_packet(
            heard,
            "eth0",
            group_meta(addr(1, 9)),
            &advert_bytes(1, 200, addr(1, 9), &[Ipv4Addr::new(10, 0, 1, 100)]),
        )
        .unwrap();
    assert_eq!(
        speaker.poll_timeout(),
        Some(heard + master_down_interval(100, 10))
    );
    let mut q = p.clone();
    q.advert_interval_cs = 40;
    let out = speaker.reconcile(vec![q.clone()], &[], ms(250));
    assert_eq!(out.changed.len(), 1);
    assert_eq!(
        speaker.poll_timeout(),
        Some(heard + master_down_interval(100, 10))
    );
    assert_eq!(speaker.instance(id).unwrap().master_adver_interval_cs(), 10);

    // A priority change moves Skew_Time: recomputed from the same arming time.
    q.priority = 50;
    speaker.reconcile(vec![q], &[], ms(260));
    assert_eq!(
        speaker.poll_timeout(),
        Some(heard + master_down_interval(50, 10))
    );
    assert!(drain(&mut speaker).is_empty());
    assert_eq!(speaker.instance(id).unwrap().state(), State::Backup);
}

#[test]
fn becoming_the_owner_takes_over_at_once_and_ceasing_keeps_the_state() {
    let mut speaker = Speaker::new();
    let id = speaker
        .add_instance(params("vr", 1, 100, 1), Instant::ZERO)
        .unwrap();
    drain(&mut speaker);
    let now = ms(500);
    let out = speaker.reconcile(vec![params("vr", 1, 255, 1)], &[], now);
    assert_eq!(out.accept_resync().collect::<Vec<_>>(), vec![id]);
    let actions = of(&drain(&mut speaker), id);
    assert_eq!(kinds(&actions), ["advert", "add", "announce", "state"]);
    assert!(matches!(actions[1], Action::AddVips { accept: true, .. }));
    let t = &transitions(&actions)[0];
    assert_eq!(
        (t.from, t.to, &t.cause),
        (State::Backup, State::Master, &Cause::AddressOwner)
    );
    assert!(speaker.instance(id).unwrap().accept_drops().is_empty());

    // Back to 150: still master, now filtering (accept mode off), next advert says 150.
    let later = ms(550);
    speaker.reconcile(vec![params("vr", 1, 150, 1)], &[], later);
    assert!(drain(&mut speaker).is_empty());
    let instance = speaker.instance(id).unwrap();
    assert_eq!(instance.state(), State::Master);
    assert_eq!(instance.effective_priority(), 150);
    assert_eq!(instance.accept_drops(), vec![addr(1, 100)]);
    speaker.handle_timeout(speaker.poll_timeout().unwrap());
    match &drain(&mut speaker)[..] {
        [(_, Action::SendAdvert(advert))] => assert_eq!(advert.priority, 150),
        other => panic!("{other:?}"),
    }
}

#[test]
fn track_changes_restore_priority_and_follow_known_states() {
    let mut speaker = Speaker::new();
    let mut a = params("a", 1, 100, 1);
    a.tracks = vec![track("eth1", -30)];
    let mut b = params("b", 2, 100, 1);
    b.tracks = vec![track("eth1", 0)];
    let ia = speaker.add_instance(a.clone(), Instant::ZERO).unwrap();
    let ib = speaker.add_instance(b.clone(), Instant::ZERO).unwrap();
    let c = params("c", 3, 100, 1);
    let ic = speaker.add_instance(c.clone(), Instant::ZERO).unwrap();
    speaker.handle_track_event(ms(10), "eth1", false);
    drain(&mut speaker);
    assert_eq!(speaker.instance(ia).unwrap().effective_priority(), 70);
    assert_eq!(speaker.instance(ib).unwrap().state(), State::Fault);

    // a stops tracking eth1: its priority is restored. b stops too: it leaves FAULT.
    // c starts tracking eth1 with weight 0: eth1 is known down (b still tracks it before the
    // change, a too), so c goes to FAULT rather than assuming up.
    let a2 = params("a", 1, 100, 1);
    let b2 = params("b", 2, 100, 1);
    let mut c2 = c.clone();
    c2.tracks = vec![track("eth1", 0)];
    let out = speaker.reconcile(vec![a2, b2, c2], &[], ms(20));
    assert_eq!(out.changed.len(), 3);
    assert_eq!(speaker.instance(ia).unwrap().effective_priority(), 100);
    assert_eq!(speaker.instance(ib).unwrap().state(), State::Backup);
    assert_eq!(speaker.instance(ic).unwrap().state(), State::Fault);
    let actions = drain(&mut speaker);
    assert!(of(&actions, ia).is_empty());
    assert_eq!(transitions(&of(&actions, ib))[0].cause, Cause::FaultCleared);
    assert_eq!(
        transitions(&of(&actions, ic))[0].cause,
        Cause::TrackDown {
            track: "eth1".into()
        }
    );
    // An object nobody tracked starts up.
    let mut a3 = params("a", 1, 100, 1);
    a3.tracks = vec![track("eth9", 0)];
    let mut c3 = c;
    c3.tracks = vec![track("eth1", 0)];
    speaker.reconcile(vec![a3, params("b", 2, 100, 1), c3], &[], ms(30));
    assert_eq!(speaker.instance(ia).unwrap().state(), State::Backup);
    assert_eq!(
        speaker.instance(ia).unwrap().track_state("eth9"),
        Some(true)
    );
}

#[test]
fn preempt_delay_change_moves_a_running_window_only() {
    let mut speaker = Speaker::new();
    let mut p = params("vr", 1, 200, 1);
    p.preempt_delay = Duration::from_secs(10);
    let id = speaker.add_instance(p.clone(), Instant::ZERO).unwrap();
    drain(&mut speaker);
    let lower = advert_bytes(1, 100, addr(1, 9), &[Ipv4Addr::new(10, 0, 1, 100)]);
    let from = group_meta(addr(1, 9));
    speaker
        .handle_packet(ms(100), "eth0", from, &lower)
        .unwrap();
    // Within the 10 s window the lower master is accepted (timer reset).
    assert_eq!(
        speaker.poll_timeout(),
        Some(ms(100) + master_down_interval(200, 10))
    );
    // Shrinking the delay to 1 s (window counted from startup, t = 0).
    p.preempt_delay = Duration::from_secs(1);
    speaker.reconcile(vec![p], &[], ms(200));
    speaker
        .handle_packet(ms(300), "eth0", from, &lower)
        .unwrap();
    assert_eq!(
        speaker.poll_timeout(),
        Some(ms(300) + master_down_interval(200, 10))
    );
    speaker
        .handle_packet(ms(1_000), "eth0", from, &lower)
        .unwrap();
    assert_eq!(
        speaker.poll_timeout(),
        Some(ms(300) + master_down_interval(200, 10)),
        "window over: lower priority ignored, preempting"
    );
    assert_eq!(
        speaker
            .instance(id)
            .unwrap()
            .counters()
            .lower_priority_ignored,
        1
    );
}

// ----- sync groups ---------------------------------------------------------------------------

fn group(name: &str, members: &[&str]) -> (String, Vec<String>) {
    (
        name.to_owned(),
        members.iter().map(|m| (*m).to_owned()).collect(),
    )
}

#[test]
fn sync_groups_are_replaced_and_an_unchanged_group_is_untouched() {
    let mut speaker = Speaker::new();
    let mut faulty = params("c", 3, 100, 1);
    faulty.tracks = vec![track("eth1", -10)];
    let all = vec![
        params("a", 1, 100, 1),
        params("b", 2, 100, 1),
        faulty.clone(),
        params("d", 4, 100, 1),
    ];
    let groups = vec![group("ab", &["a", "b"]), group("cd", &["c", "d"])];
    let out = speaker.reconcile(all.clone(), &groups, Instant::ZERO);
    assert_eq!(out.added.len(), 4);
    assert_eq!(out.groups.added, vec!["ab".to_owned(), "cd".to_owned()]);
    // In a group a negative weight acts as fault: c down holds d in FAULT too.
    speaker.handle_track_event(ms(10), "eth1", false);
    let d = speaker.find("d").unwrap();
    let c = speaker.find("c").unwrap();
    assert_eq!(speaker.instance(d).unwrap().state(), State::Fault);
    drain(&mut speaker);
    let a = speaker.find("a").unwrap();
    let deadline_a = speaker.instance(a).unwrap().poll_timeout();

    // c is removed: group cd changes and d is released; ab is untouched.
    let out = speaker.reconcile(
        vec![all[0].clone(), all[1].clone(), all[3].clone()],
        &[group("ab", &["a", "b"]), group("cd", &["c", "d"])],
        ms(20),
    );
    assert_eq!(out.removed, vec![c]);
    assert_eq!(out.groups.unchanged, vec!["ab".to_owned()]);
    assert_eq!(out.groups.changed, vec!["cd".to_owned()]);
    assert_eq!(
        out.groups.errors,
        vec![ParamError::SyncGroupMember {
            group: "cd".into(),
            member: "c".into()
        }]
    );
    assert_eq!(speaker.instance(d).unwrap().state(), State::Backup);
    let actions = drain(&mut speaker);
    assert!(of(&actions, a).is_empty());
    assert_eq!(speaker.instance(a).unwrap().poll_timeout(), deadline_a);
    assert_eq!(transitions(&of(&actions, d))[0].cause, Cause::FaultCleared);

    // Dissolving ab: a and b run on their own, without a transition.
    let out = speaker.reconcile(
        vec![all[0].clone(), all[1].clone(), all[3].clone()],
        &[group("cd", &["d"]), group("cd", &["a"])],
        ms(30),
    );
    assert_eq!(out.groups.removed, vec!["ab".to_owned()]);
    assert_eq!(out.groups.unchanged, vec!["cd".to_owned()]);
    assert_eq!(
        out.groups.errors,
        vec![ParamError::DuplicateSyncGroup { group: "cd".into() }]
    );
    assert!(drain(&mut speaker).is_empty());
}

// ----- address-list grace (a live VIP change committed on one box at a time) ----------------

fn with_vips(mut p: InstanceParams, vrid: u8, lasts: &[u8]) -> InstanceParams {
    p.virtual_addresses = lasts.iter().map(|l| addr(vrid, *l)).collect();
    p
}

#[test]
fn vip_added_on_the_master_first_keeps_the_backup_backing_off_within_the_grace() {
    let latency = Duration::from_micros(50);
    let mut bus = Bus::new(latency);
    let a = bus.add_node(vec![params("vr", 5, 200, 1)]);
    let b = bus.add_node(vec![params("vr", 5, 100, 2)]);
    bus.run_until(ms(2_000));
    assert_eq!(bus.state(b, "vr"), State::Backup);
    assert!(bus.instance(b, "vr").address_list_grace().is_none());

    // The master is committed first: it adds and announces the VIP, and tolerates the old list
    // for the grace.
    let change = bus.now;
    bus.reconcile(a, vec![with_vips(params("vr", 5, 200, 1), 5, &[100, 101])]);
    let grace_a = bus.instance(a, "vr").address_list_grace().unwrap();
    assert_eq!(grace_a.cause, GraceCause::Reconciled);
    assert_eq!(grace_a.until, change + ADDRESS_LIST_GRACE);
    assert_eq!(grace_a.accepted, 0);

    // The backup, still with the old list, keeps deferring to the master: its adverts are
    // processed (counted apart), none discarded, no transition anywhere.
    bus.run_until(change + Duration::from_secs(60));
    assert!(bus.transitions(a, change).is_empty());
    assert!(bus.transitions(b, change).is_empty());
    assert_eq!(bus.state(a, "vr"), State::Master);
    assert_eq!(bus.state(b, "vr"), State::Backup);
    let backup = bus.instance(b, "vr");
    assert_eq!(
        backup
            .counters()
            .discarded(DiscardReason::AddressListMismatch),
        0
    );
    let accepted = backup.counters().address_list_differs_accepted;
    assert!(accepted >= 590, "{accepted}");
    let grace_b = backup.address_list_grace().unwrap();
    assert_eq!(
        grace_b.cause,
        GraceCause::MasterChanged { master: addr(5, 1) }
    );
    assert_eq!(grace_b.accepted, accepted);
    assert!(grace_b.opened > change && grace_b.opened <= change + Duration::from_millis(101));
    assert_eq!(grace_b.until, grace_b.opened + ADDRESS_LIST_GRACE);
    assert_eq!(backup.status().address_list_grace, Some(grace_b));
    assert_eq!(backup.master().unwrap().address, addr(5, 1));

    // The backup is committed too: the next advert matches and ends its grace; from then on
    // everything is as before the change.
    let fixed = bus.now;
    let out = bus.reconcile(b, vec![with_vips(params("vr", 5, 100, 2), 5, &[100, 101])]);
    assert_eq!(out.changed.len(), 1);
    bus.run_until(fixed + Duration::from_secs(1));
    let backup = bus.instance(b, "vr");
    assert!(backup.address_list_grace().is_none());
    assert_eq!(backup.counters().address_list_differs_accepted, accepted);
    assert!(bus.transitions(a, change).is_empty());
    assert!(bus.transitions(b, change).is_empty());
    // The check is back: another list from anyone but the owner is discarded again.
    let now = bus.now;
    let stranger = addr(5, 9);
    let other_list = advert_bytes(5, 250, stranger, &[Ipv4Addr::new(10, 0, 5, 100)]);
    assert_eq!(
        bus.nodes[b].handle_packet(now, "eth0", group_meta(stranger), &other_list),
        Err(DiscardReason::AddressListMismatch)
    );
    let from_master = advert_bytes(5, 200, addr(5, 1), &[Ipv4Addr::new(10, 0, 5, 100)]);
    assert_eq!(
        bus.nodes[b].handle_packet(now, "eth0", group_meta(addr(5, 1)), &from_master),
        Ok(InstanceId(0)),
        "the followed master changing its list again opens a new grace"
    );
}

#[test]
fn vip_removed_on_the_backup_first_is_tolerated_until_the_master_matches() {
    let mut bus = Bus::new(Duration::from_micros(50));
    let a = bus.add_node(vec![with_vips(params("vr", 5, 200, 1), 5, &[100, 101])]);
    let b = bus.add_node(vec![with_vips(params("vr", 5, 100, 2), 5, &[100, 101])]);
    bus.run_until(ms(2_000));
    let change = bus.now;

    let out = bus.reconcile(b, vec![params("vr", 5, 100, 2)]);
    assert_eq!(
        out.changed[0].1,
        vec![ParamChange::VirtualAddresses {
            added: vec![],
            removed: vec![addr(5, 101)]
        }]
    );
    bus.run_until(change + Duration::from_secs(30));
    assert!(bus.transitions(a, change).is_empty());
    assert!(bus.transitions(b, change).is_empty());
    let backup = bus.instance(b, "vr");
    let grace = backup.address_list_grace().unwrap();
    assert_eq!(grace.cause, GraceCause::Reconciled);
    assert!(grace.accepted >= 290, "{grace:?}");
    assert_eq!(
        backup
            .counters()
            .discarded(DiscardReason::AddressListMismatch),
        0
    );

    // The master follows: lists match, the grace ends, nothing moved.
    let fixed = bus.now;
    bus.reconcile(a, vec![params("vr", 5, 200, 1)]);
    bus.run_until(fixed + Duration::from_secs(1));
    assert!(bus.instance(b, "vr").address_list_grace().is_none());
    assert!(bus.transitions(a, change).is_empty());
    assert!(bus.transitions(b, change).is_empty());
    assert_eq!(bus.state(a, "vr"), State::Master);
}

#[test]
fn after_the_grace_lists_that_still_differ_are_discarded_again() {
    let latency = Duration::from_micros(50);
    let mut bus = Bus::new(latency);
    let a = bus.add_node(vec![params("vr", 5, 200, 1)]);
    let b = bus.add_node(vec![params("vr", 5, 100, 2)]);
    bus.run_until(ms(2_000));
    let change = bus.now;
    bus.reconcile(a, vec![with_vips(params("vr", 5, 200, 1), 5, &[100, 101])]);

    // Just before the end nothing has moved.
    bus.run_until(change + (ADDRESS_LIST_GRACE - Duration::from_secs(1)));
    assert!(bus.transitions(b, change).is_empty());
    assert_eq!(bus.state(b, "vr"), State::Backup);
    let until = bus.instance(b, "vr").address_list_grace().unwrap().until;

    // The backup was never committed: once the grace is over, the master's adverts are
    // discarded as before the grace existed, and the backup takes over when its
    // Master_Down_Timer runs out (as it would have at once without a grace).
    bus.run_until(change + ADDRESS_LIST_GRACE + Duration::from_secs(2));
    let tb = bus.transitions(b, change);
    assert_eq!(tb.len(), 1, "{tb:?}");
    assert_eq!(tb[0].to, State::Master);
    assert_eq!(
        tb[0].cause,
        Cause::MasterDown {
            reason: MasterDownReason::Silence,
            last_master: Some(addr(5, 1))
        }
    );
    assert!(tb[0].at >= until && tb[0].at <= until + master_down_interval(100, 10));
    let backup = bus.instance(b, "vr");
    assert!(
        backup
            .counters()
            .discarded(DiscardReason::AddressListMismatch)
            > 0
    );
    // The ended grace stays visible (lists still differ) and is not reopened.
    let ended = backup.address_list_grace().unwrap();
    assert!(!ended.running(bus.now));
    assert_eq!(ended.until, until);
    // The master's own grace ended too: it discards the old list, as before.
    let master = bus.instance(a, "vr");
    assert!(
        master
            .counters()
            .discarded(DiscardReason::AddressListMismatch)
            > 0
    );
    assert!(!master.address_list_grace().unwrap().running(bus.now));
}

#[test]
fn receive_reports_the_first_advert_of_a_grace_only() {
    let mut speaker = Speaker::new();
    let id = speaker
        .add_instance(params("vr", 1, 100, 1), Instant::ZERO)
        .unwrap();
    let master = addr(1, 9);
    let ours = [Ipv4Addr::new(10, 0, 1, 100)];
    let theirs = [Ipv4Addr::new(10, 0, 1, 100), Ipv4Addr::new(10, 0, 1, 101)];
    // A different list from a master never heard with ours: discarded (no grace).
    assert_eq!(
        speaker
            .receive(
                ms(100),
                "eth0",
                group_meta(master),
                &advert_bytes(1, 200, master, &theirs)
            )
            .unwrap_err(),
        DiscardReason::AddressListMismatch
    );
    let accepted = speaker
        .receive(
            ms(200),
            "eth0",
            group_meta(master),
            &advert_bytes(1, 200, master, &ours),
        )
        .unwrap();
    assert_eq!(accepted.address_list_grace, None);
    let first = speaker
        .receive(
            ms(300),
            "eth0",
            group_meta(master),
            &advert_bytes(1, 200, master, &theirs),
        )
        .unwrap();
    let grace = first.address_list_grace.unwrap();
    assert_eq!(grace.cause, GraceCause::MasterChanged { master });
    assert_eq!((grace.opened, grace.accepted), (ms(300), 1));
    let second = speaker
        .receive(
            ms(400),
            "eth0",
            group_meta(master),
            &advert_bytes(1, 200, master, &theirs),
        )
        .unwrap();
    assert_eq!(second.address_list_grace, None);
    let instance = speaker.instance(id).unwrap();
    assert_eq!(instance.counters().address_list_differs_accepted, 2);
    assert_eq!(instance.counters().adverts_received, 3);
    // The grace is the instance's: another sender's different list is processed too.
    let other = addr(1, 8);
    assert!(speaker
        .receive(
            ms(500),
            "eth0",
            group_meta(other),
            &advert_bytes(1, 50, other, &theirs)
        )
        .is_ok());
    // A reorder is no change at all: no grace.
    let mut p = params("vr", 2, 100, 1);
    p.virtual_addresses = vec![addr(2, 100), addr(2, 101)];
    let two = speaker.add_instance(p.clone(), ms(600)).unwrap();
    p.virtual_addresses.reverse();
    speaker.reconcile(vec![params("vr", 1, 100, 1), p], &[], ms(700));
    assert!(speaker
        .instance(two)
        .unwrap()
        .address_list_grace()
        .is_none());
}

// ----- ingress -------------------------------------------------------------------------------

#[test]
fn healed_split_reannounces_at_most_once_per_gap() {
    let mut speaker = Speaker::new();
    let id = speaker
        .add_instance(params("vr", 1, 150, 1), Instant::ZERO)
        .unwrap();
    let became = make_master(&mut speaker, id);
    let vips = [Ipv4Addr::new(10, 0, 1, 100)];
    let other = addr(1, 9);
    let lower = advert_bytes(1, 100, other, &vips);

    let t0 = became + Duration::from_secs(1);
    let accepted = speaker
        .receive(t0, "eth0", group_meta(other), &lower)
        .unwrap();
    assert_eq!(accepted.id, id);
    assert_eq!(
        accepted.healed_split,
        Some(HealedSplit {
            from: other,
            priority: 100
        })
    );
    // The master also answered at once (RFC 9568 6.4.3) and stays master.
    assert_eq!(kinds(&of(&drain(&mut speaker), id)), ["advert"]);
    assert_eq!(speaker.instance(id).unwrap().state(), State::Master);

    // Within the gap: no second re-announcement; at the gap: again.
    let soon = t0 + (REANNOUNCE_GAP - Duration::from_nanos(1));
    let accepted = speaker
        .receive(soon, "eth0", group_meta(other), &lower)
        .unwrap();
    assert_eq!(accepted.healed_split, None);
    let accepted = speaker
        .receive(t0 + REANNOUNCE_GAP, "eth0", group_meta(other), &lower)
        .unwrap();
    assert!(accepted.healed_split.is_some());

    // Priority 0 is a leaving master, not a split; a higher one makes us backup.
    let later = t0 + REANNOUNCE_GAP * 3;
    let zero = advert_bytes(1, 0, other, &vips);
    let accepted = speaker
        .receive(later, "eth0", group_meta(other), &zero)
        .unwrap();
    assert_eq!(accepted.healed_split, None);
    let higher = advert_bytes(1, 200, other, &vips);
    let accepted = speaker
        .receive(later + REANNOUNCE_GAP, "eth0", group_meta(other), &higher)
        .unwrap();
    assert_eq!(accepted.healed_split, None);
    assert_eq!(speaker.instance(id).unwrap().state(), State::Backup);
    // As backup, a lower master is no split to heal.
    let accepted = speaker
        .receive(
            later + REANNOUNCE_GAP * 2,
            "eth0",
            group_meta(other),
            &lower,
        )
        .unwrap();
    assert_eq!(accepted.healed_split, None);
    // Discards are still discards.
    assert!(speaker
        .receive(later, "eth1", group_meta(other), &lower)
        .is_err());
}

#[test]
fn unicast_adverts_are_filtered_by_the_instance_found_by_demux() {
    let mut speaker = Speaker::new();
    let id = speaker
        .add_instance(params("vr", 1, 100, 1), Instant::ZERO)
        .unwrap();
    let peers = [addr(1, 2)];
    let payload = advert_bytes(1, 200, addr(1, 3), &[Ipv4Addr::new(10, 0, 1, 100)]);
    let unicast = RxMeta {
        src: addr(1, 3),
        dst: addr(1, 1),
        ttl: 255,
    };
    assert_eq!(speaker.demux("eth0", &unicast, &payload), Some(id));
    assert_eq!(speaker.demux("eth1", &unicast, &payload), None);
    assert_eq!(speaker.demux("eth0", &unicast, &payload[..1]), None);
    assert!(!unicast_peer_allowed(&unicast, &peers));
    let from_peer = RxMeta {
        src: addr(1, 2),
        ..unicast
    };
    assert!(unicast_peer_allowed(&from_peer, &peers));
    assert!(unicast_peer_allowed(&group_meta(addr(1, 3)), &peers));
    // demux counted nothing.
    assert_eq!(speaker.counters().vrid_not_configured, 0);
}

#[test]
fn a_group_whose_members_lost_and_regained_their_links_one_by_one_comes_back() {
    // B.11's mail group at boot: mail_vip tracks eth0, mail_gw eth1 (their own interfaces),
    // both links come up a moment after the instances start. Each member, faulted on its own
    // link, holds the other; when eth0 comes back first mail_vip follows mail_gw (still down),
    // and when eth1 comes back mail_gw's own fault clears while the group still holds it.
    // Both must leave FAULT (they once stayed there for good, each following the other).
    let mut speaker = Speaker::new();
    let mut vip = params("mail_vip", 10, 100, 1);
    vip.tracks = vec![track("eth0", 0)];
    let mut gw = params("mail_gw", 11, 100, 1);
    gw.tracks = vec![track("eth1", 0)];
    speaker.reconcile(
        vec![vip, gw],
        &[group("mailserver", &["mail_vip", "mail_gw"])],
        Instant::ZERO,
    );
    speaker.handle_track_event(ms(5), "eth0", false);
    speaker.handle_track_event(ms(6), "eth1", false);
    let (v, g) = (
        speaker.find("mail_vip").unwrap(),
        speaker.find("mail_gw").unwrap(),
    );
    assert_eq!(speaker.instance(v).unwrap().state(), State::Fault);
    assert_eq!(speaker.instance(g).unwrap().state(), State::Fault);
    speaker.handle_track_event(ms(1000), "eth0", true);
    assert_eq!(
        speaker.instance(v).unwrap().state(),
        State::Fault,
        "mail_gw still has eth1 down: the group holds mail_vip"
    );
    speaker.handle_track_event(ms(1001), "eth1", true);
    assert_eq!(speaker.instance(v).unwrap().state(), State::Backup);
    assert_eq!(speaker.instance(g).unwrap().state(), State::Backup);
}
