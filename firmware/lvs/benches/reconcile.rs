//! Reconciler figures: one weight change against a 37k real-server table, and a cold 1000x10
//! diff. Prints `bench: <name> <value> <unit>` lines.
// Test/bench helpers outside #[test] fns may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use tandem_lvs::*;

fn build(services: u32, per: u32) -> Table {
    let mut t = Table::default();
    for s in 0..services {
        let [_, _, a, b] = (s + 1).to_be_bytes();
        let id = ServiceId::Inet {
            protocol: Protocol::Tcp,
            addr: IpAddr::V4(Ipv4Addr::new(198, 18, a, b)),
            port: 80,
        };
        let mut vs = VirtualService::new(ServiceSettings::new(Scheduler::WeightedLeastConnections));
        for r in 0..per {
            let [_, x, y, z] = (s * per + r + 1).to_be_bytes();
            vs.real_servers.insert(
                RealServerId {
                    addr: IpAddr::V4(Ipv4Addr::new(10, x, y, z)),
                    port: 80,
                },
                RealServer::new(Forwarding::DirectRouting, 1),
            );
        }
        t.services.insert(id, vs);
    }
    t
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let current = build(3_700, 10); // 37,000 real servers
    let mut desired = current.clone();
    let (sid, vs) = desired
        .services
        .iter_mut()
        .nth(1_850)
        .map(|(k, v)| (*k, v))
        .unwrap();
    let rid = *vs.real_servers.keys().nth(5).unwrap();
    vs.real_servers.get_mut(&rid).unwrap().weight = 0;

    let mut full = Vec::new();
    let mut scoped = Vec::new();
    for _ in 0..101 {
        let t = Instant::now();
        let ops = diff(black_box(&desired), black_box(&current));
        full.push(t.elapsed());
        assert_eq!(ops.len(), 1);
        let t = Instant::now();
        let ops = diff_service(&sid, desired.services.get(&sid), current.services.get(&sid));
        scoped.push(t.elapsed());
        assert_eq!(ops.len(), 1);
    }
    println!(
        "bench: lvs_one_weight_change_cpu_37k {} us",
        median(full).as_micros()
    );
    println!(
        "bench: lvs_one_weight_change_service_diff_37k {:.2} us",
        median(scoped).as_secs_f64() * 1e6
    );

    let desired = build(1_000, 10);
    let empty = Table::default();
    let mut cold = Vec::new();
    for _ in 0..21 {
        let t = Instant::now();
        let ops = diff(black_box(&desired), black_box(&empty));
        cold.push(t.elapsed());
        assert_eq!(ops.len(), 11_000);
    }
    println!(
        "bench: lvs_diff_1000x10_cold {:.3} ms",
        median(cold).as_secs_f64() * 1e3
    );
}
