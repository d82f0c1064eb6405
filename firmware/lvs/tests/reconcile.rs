//! Property tests of the reconciler over seeded random tables, plus targeted cases.
// Test/bench helpers outside #[test] fns may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tandem_ipvs::Request;
use tandem_lvs::*;

/// xorshift64*: deterministic, so a failing seed can be replayed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[usize::try_from(self.below(xs.len() as u64)).unwrap()]
    }
}

fn service_id(rng: &mut Rng) -> ServiceId {
    match rng.below(3) {
        0 => ServiceId::Inet {
            protocol: *rng.pick(&[Protocol::Tcp, Protocol::Udp, Protocol::Sctp]),
            addr: IpAddr::V4(Ipv4Addr::new(
                192,
                0,
                2,
                u8::try_from(rng.below(4)).unwrap(),
            )),
            port: *rng.pick(&[80, 443]),
        },
        1 => ServiceId::Inet {
            protocol: Protocol::Tcp,
            addr: IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0,
                0,
                0,
                0,
                0,
                u16::try_from(rng.below(3)).unwrap(),
            )),
            port: 80,
        },
        _ => ServiceId::Fwmark {
            family: Family::Inet,
            mark: u32::try_from(rng.below(3)).unwrap() + 1,
        },
    }
}

fn settings(rng: &mut Rng) -> ServiceSettings {
    let mut s = ServiceSettings::new(random_scheduler(rng));
    if rng.below(3) == 0 {
        s.scheduler_flags = SchedulerFlags::FALLBACK;
    }
    if rng.below(3) == 0 {
        s.persistence = Some(Persistence {
            timeout_s: *rng.pick(&[60, 300]),
            netmask: u32::MAX,
            engine: None,
        });
    }
    s
}

fn table(rng: &mut Rng) -> Table {
    let mut t = Table::default();
    for _ in 0..rng.below(6) {
        let mut vs = VirtualService::new(settings(rng));
        for _ in 0..rng.below(6) {
            let id = RealServerId {
                addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, u8::try_from(rng.below(6)).unwrap())),
                port: *rng.pick(&[80, 8080]),
            };
            let fwd = *rng.pick(&[Forwarding::Nat, Forwarding::DirectRouting, Forwarding::IPIP]);
            let mut rs = RealServer::new(fwd, u32::try_from(rng.below(4)).unwrap());
            rs.upper_threshold = u32::try_from(rng.below(2)).unwrap() * 100;
            vs.real_servers.insert(id, rs);
        }
        t.services.insert(service_id(rng), vs);
    }
    t
}

/// A table derived from `base` by small edits, so diffs exercise edits and not only add/delete.
fn mutate(rng: &mut Rng, base: &Table) -> Table {
    let mut t = base.clone();
    let other = table(rng);
    for (id, vs) in other.services {
        match rng.below(4) {
            0 => {
                t.services.insert(id, vs);
            }
            1 => {
                t.services.remove(&id);
            }
            _ => {}
        }
    }
    for vs in t.services.values_mut() {
        if rng.below(2) == 0 {
            vs.settings.scheduler = random_scheduler(rng);
        }
        for rs in vs.real_servers.values_mut() {
            if rng.below(3) == 0 {
                rs.weight = u32::try_from(rng.below(4)).unwrap();
            }
        }
    }
    t
}

#[test]
fn diff_applied_to_kernel_model_yields_desired() {
    for seed in 1..=2000u64 {
        let mut rng = Rng(seed * 0x9e37_79b9);
        let current = table(&mut rng);
        let desired = if seed % 2 == 0 {
            mutate(&mut rng, &current)
        } else {
            table(&mut rng)
        };
        let ops = diff(&desired, &current);
        let mut kernel = current.clone();
        for op in &ops {
            kernel
                .apply(op)
                .unwrap_or_else(|e| panic!("seed {seed}: {e} in {ops:?}"));
        }
        assert_eq!(kernel, desired, "seed {seed}");
        assert!(
            diff(&desired, &kernel).is_empty(),
            "seed {seed}: not a fixpoint"
        );
    }
}

#[test]
fn diff_of_equal_tables_is_empty() {
    for seed in 1..=500u64 {
        let mut rng = Rng(seed);
        let t = table(&mut rng);
        assert!(diff(&t, &t.clone()).is_empty());
    }
}

#[test]
fn ordering_services_before_dests_and_dests_before_service_deletes() {
    for seed in 1..=2000u64 {
        let mut rng = Rng(seed ^ 0xdead_beef);
        let current = table(&mut rng);
        let desired = mutate(&mut rng, &current);
        let ops = diff(&desired, &current);
        for (i, op) in ops.iter().enumerate() {
            match op {
                Op::AddRealServer(s, ..) | Op::EditRealServer(s, ..) => {
                    // Its service exists already or is added earlier.
                    let added_later = ops[i..]
                        .iter()
                        .any(|o| matches!(o, Op::AddService(x, _) if x == s));
                    assert!(!added_later, "seed {seed}: dest before its service");
                }
                Op::DeleteService(s) => {
                    let dest_after = ops[i..]
                        .iter()
                        .any(|o| matches!(o, Op::DeleteRealServer(x, _) if x == s));
                    assert!(!dest_after, "seed {seed}: dest deleted after its service");
                    // The kernel deletes the dests with the service: no redundant per-dest deletes.
                    assert!(!ops
                        .iter()
                        .any(|o| matches!(o, Op::DeleteRealServer(x, _) if x == s)));
                }
                _ => {}
            }
        }
        // Adds come before deletes within a service: the service never empties in between.
        let first_delete = ops
            .iter()
            .position(|o| matches!(o, Op::DeleteRealServer(..)));
        let last_add = ops.iter().rposition(|o| matches!(o, Op::AddRealServer(..)));
        if let (Some(d), Some(a)) = (first_delete, last_add) {
            assert!(a < d, "seed {seed}");
        }
    }
}

fn vip() -> ServiceId {
    ServiceId::Inet {
        protocol: Protocol::Tcp,
        addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        port: 80,
    }
}
fn rs(i: u8) -> RealServerId {
    RealServerId {
        addr: IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)),
        port: 80,
    }
}

fn one_service(weights: &[u32]) -> Table {
    let mut vs = VirtualService::new(ServiceSettings::new(Scheduler::WeightedLeastConnections));
    for (i, w) in weights.iter().enumerate() {
        vs.real_servers.insert(
            rs(u8::try_from(i).unwrap() + 1),
            RealServer::new(Forwarding::DirectRouting, *w),
        );
    }
    let mut t = Table::default();
    t.services.insert(vip(), vs);
    t
}

#[test]
fn weight_change_is_one_set_dest_and_scheduler_change_is_set_service() {
    let current = one_service(&[1, 1, 1]);
    let desired = one_service(&[1, 0, 1]);
    let ops = diff(&desired, &current);
    assert_eq!(
        ops,
        vec![Op::EditRealServer(
            vip(),
            rs(2),
            RealServer::new(Forwarding::DirectRouting, 0)
        )]
    );
    assert!(matches!(ops[0].to_request(), Request::SetDest(_, d) if d.weight == 0));

    let mut desired = current.clone();
    desired.services.get_mut(&vip()).unwrap().settings.scheduler = Scheduler::Maglev;
    desired
        .services
        .get_mut(&vip())
        .unwrap()
        .settings
        .scheduler_flags = SchedulerFlags::FALLBACK.with(SchedulerFlags::PORT);
    let ops = diff(&desired, &current);
    assert_eq!(ops.len(), 1);
    let Request::SetService(svc) = ops[0].to_request() else {
        panic!("{ops:?}")
    };
    assert_eq!(svc.scheduler, "mh");
    assert_eq!(svc.flags, 0x18);

    // Forwarding change is an edit too.
    let mut desired = current.clone();
    desired
        .services
        .get_mut(&vip())
        .unwrap()
        .real_servers
        .get_mut(&rs(1))
        .unwrap()
        .forwarding = Forwarding::Nat;
    assert!(matches!(
        diff(&desired, &current).as_slice(),
        [Op::EditRealServer(..)]
    ));
}

#[test]
fn restarted_daemon_adopts_identical_kernel_table_with_zero_ops() {
    // Desired table -> requests -> what the kernel would report back -> table: no ops.
    let mut desired = one_service(&[3, 2, 0]);
    let mut fw = VirtualService::new(ServiceSettings {
        scheduler: Scheduler::SourceHash,
        scheduler_flags: SchedulerFlags::FALLBACK.with(SchedulerFlags::PORT),
        persistence: Some(Persistence {
            timeout_s: 300,
            netmask: 0xffff_ff00,
            engine: None,
        }),
        one_packet: false,
    });
    fw.real_servers
        .insert(rs(9), RealServer::new(Forwarding::IPIP, 5));
    let gue = Forwarding::Tunnel {
        encap: TunnelType::Gue,
        port: 6080,
        flags: 1,
    };
    fw.real_servers.insert(rs(10), RealServer::new(gue, 5));
    desired.services.insert(
        ServiceId::Fwmark {
            family: Family::Inet,
            mark: 7,
        },
        fw,
    );

    let mut readback = Vec::new();
    for op in diff(&desired, &Table::default()) {
        match op.to_request() {
            Request::NewService(s) => readback.push((
                tandem_ipvs::ServiceEntry {
                    service: s,
                    stats: Default::default(),
                },
                Vec::new(),
            )),
            Request::NewDest(k, d) => {
                let entry = readback
                    .iter_mut()
                    .find(|(s, _)| s.service.key == k)
                    .unwrap();
                // Kernels >= 5.2 report the IPIP tunnel type explicitly.
                let mut d = d;
                if d.forward == tandem_ipvs::ForwardMethod::Tunnel && d.tunnel.is_none() {
                    d.tunnel = Some(tandem_ipvs::Tunnel {
                        kind: TunnelType::Ipip,
                        port: 0,
                        flags: 0,
                    });
                }
                entry.1.push(tandem_ipvs::DestEntry {
                    dest: d,
                    active_conns: 4,
                    inactive_conns: 0,
                    persist_conns: 0,
                    stats: Default::default(),
                });
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let kernel = Table::from_kernel(&readback);
    assert_eq!(kernel, desired);
    assert!(diff(&desired, &kernel).is_empty());
}

#[test]
fn kernel_local_node_rewrite_is_not_a_difference() {
    let desired = one_service(&[1]);
    let mut kernel = desired.clone();
    kernel
        .services
        .get_mut(&vip())
        .unwrap()
        .real_servers
        .get_mut(&rs(1))
        .unwrap()
        .forwarding = Forwarding::LocalNode;
    assert!(diff(&desired, &kernel).is_empty());
}

#[test]
fn diff_service_matches_full_diff_for_that_service() {
    let current = one_service(&[1, 1, 1]);
    let desired = one_service(&[1, 5]);
    let full = diff(&desired, &current);
    let one = diff_service(
        &vip(),
        desired.services.get(&vip()),
        current.services.get(&vip()),
    );
    assert_eq!(full, one);
    assert_eq!(one.len(), 2);
}

fn random_scheduler(rng: &mut Rng) -> Scheduler {
    let name: &&str = rng.pick(&Scheduler::ALL_NAMES);
    Scheduler::from_name(name)
}
