//! Health-check capacity on one core against loopback listeners, IPVS encoding of a cold
//! 1000x10 load, and how fast a dead server is seen at a 100 ms check interval (the drain
//! bound: detection here plus one IPVS weight change, measured by lvsbench in the lab).
//! Bounded in count and time; stops by itself. Prints `bench:` lines.
// Test/bench helpers outside #[test] fns may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use tandem_lvs::health::runner::run;
use tandem_lvs::health::*;
use tandem_lvs::*;
use tokio::sync::mpsc;

const HOSTS: u8 = 50;
const PORTS_PER_HOST: usize = 20;
const ATTEMPTS: u64 = 30_000;

fn start_listeners() -> (Vec<SocketAddr>, std::sync::mpsc::Sender<()>) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut addrs = Vec::new();
            for h in 1..=HOSTS {
                for _ in 0..PORTS_PER_HOST {
                    let l = tokio::net::TcpListener::bind((Ipv4Addr::new(127, 0, 0, h), 0))
                        .await
                        .unwrap();
                    addrs.push(l.local_addr().unwrap());
                    tokio::spawn(async move {
                        while let Ok((s, _)) = l.accept().await {
                            drop(s);
                        }
                    });
                }
            }
            addr_tx.send(addrs).unwrap();
            while stop_rx.try_recv().is_err() {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    });
    (addr_rx.recv().unwrap(), stop_tx)
}

fn tcp_checks_per_second() {
    let (targets, stop) = start_listeners();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (rate, failures) = rt.block_on(async move {
        let (cmd_tx, cmd_rx) = mpsc::channel(targets.len() + 1);
        let (ev_tx, mut ev_rx) = mpsc::channel(1024);
        tokio::spawn(async move { while ev_rx.recv().await.is_some() {} });
        let now = Instant::now();
        let mut sched = HealthScheduler::new(1);
        for (i, t) in targets.iter().enumerate() {
            let spec = CheckSpec {
                key: CheckKey {
                    probe: Probe::Tcp,
                    target: *t,
                    timeout: Duration::from_millis(500),
                },
                timing: CheckTiming {
                    interval: Duration::from_millis(10),
                    retries: 0,
                    ..Default::default()
                },
            };
            sched.subscribe(SubscriberId(u64::try_from(i).unwrap()), spec, now);
        }
        let start = Instant::now();
        let stats = tokio::time::timeout(
            Duration::from_secs(30),
            run(sched, cmd_rx, ev_tx, 512, Some(ATTEMPTS)),
        )
        .await
        .expect("bench bounded at 30 s");
        drop(cmd_tx);

        (
            stats.attempts as f64 / start.elapsed().as_secs_f64(),
            stats.failures,
        )
    });
    let _ = stop.send(());
    println!("bench: health_tcp_checks_per_s {rate:.0} checks/s");
    println!("bench: health_tcp_failed_checks {failures} checks");
}

fn ipvs_encode() {
    let mut desired = Table::default();
    for s in 0..1000u32 {
        let [_, _, a, b] = (s + 1).to_be_bytes();
        let id = ServiceId::Inet {
            protocol: Protocol::Tcp,
            addr: IpAddr::V4(Ipv4Addr::new(198, 18, a, b)),
            port: 80,
        };
        let mut vs = VirtualService::new(ServiceSettings::new(Scheduler::WeightedRoundRobin));
        for r in 0..10u32 {
            let [_, x, y, z] = (s * 10 + r + 1).to_be_bytes();
            vs.real_servers.insert(
                RealServerId {
                    addr: IpAddr::V4(Ipv4Addr::new(10, x, y, z)),
                    port: 80,
                },
                RealServer::new(Forwarding::Nat, 1),
            );
        }
        desired.services.insert(id, vs);
    }
    let mut best = Duration::MAX;
    let mut bytes = 0;
    for _ in 0..11 {
        let t = Instant::now();
        let ops = diff(&desired, &Table::default());
        let mut buf = Vec::with_capacity(2 << 20);
        for (seq, op) in (1u32..).zip(&ops) {
            op.to_request().encode(0x20, seq, &mut buf).unwrap();
        }
        best = best.min(t.elapsed());
        bytes = buf.len();
    }
    println!(
        "bench: ipvs_encode_1000x10 {:.3} ms",
        best.as_secs_f64() * 1e3
    );
    println!("bench: ipvs_encode_1000x10_bytes {bytes} bytes");
}

/// Time from a real server's service stopping (its port now refuses) to the runner's Down
/// event, with a 100 ms interval, no retries, fall 1, 100 ms timeout; the stop falls at a
/// random phase of the check cycle. Then the quiesce diff of the service (weight 0).
fn drain_detection() {
    const TRIALS: usize = 30;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut detect_ms = Vec::with_capacity(TRIALS);
    let mut decide_us = Vec::with_capacity(TRIALS);
    rt.block_on(async {
        for trial in 0..TRIALS {
            let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .await
                .unwrap();
            let target = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                while let Ok((s, _)) = listener.accept().await {
                    drop(s);
                }
            });
            let mut sched = HealthScheduler::new(u64::try_from(trial).unwrap() + 7);
            let spec = CheckSpec {
                key: CheckKey {
                    probe: Probe::Tcp,
                    target,
                    timeout: Duration::from_millis(100),
                },
                timing: CheckTiming {
                    interval: Duration::from_millis(100),
                    retries: 0,
                    rise: 1,
                    fall: 1,
                    start_up: true,
                    ..Default::default()
                },
            };
            sched.subscribe(SubscriberId(1), spec, Instant::now());
            let (cmd_tx, cmd_rx) = mpsc::channel(4);
            let (ev_tx, mut ev_rx) = mpsc::channel(16);
            let runner = tokio::spawn(run(sched, cmd_rx, ev_tx, 4, None));
            // Random phase: 300 ms of healthy checks plus 0..100 ms.
            let phase = Duration::from_micros(
                u64::from(
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .subsec_nanos(),
                ) % 100_000,
            );
            tokio::time::sleep(Duration::from_millis(300) + phase).await;
            server.abort();
            let _ = server.await;
            let killed = Instant::now();
            let down = loop {
                let event = tokio::time::timeout(Duration::from_secs(5), ev_rx.recv())
                    .await
                    .expect("a Down event within 5 s")
                    .expect("runner alive");
                if !event.up {
                    break Instant::now();
                }
            };
            detect_ms.push(down.duration_since(killed).as_secs_f64() * 1e3);
            // The engine's reaction: quiesce the server in its service and diff that service.
            let started = Instant::now();
            let mut service =
                VirtualService::new(ServiceSettings::new(Scheduler::WeightedRoundRobin));
            let id = RealServerId {
                addr: target.ip(),
                port: target.port(),
            };
            service
                .real_servers
                .insert(id, RealServer::new(Forwarding::Nat, 1));
            let mut quiesced = service.clone();
            if let Some(server) = quiesced.real_servers.get_mut(&id) {
                server.weight = 0;
            }
            let key = ServiceId::Inet {
                protocol: Protocol::Tcp,
                addr: target.ip(),
                port: 80,
            };
            let ops = diff_service(&key, Some(&quiesced), Some(&service));
            assert_eq!(ops.len(), 1, "one weight change");
            decide_us.push(started.elapsed().as_secs_f64() * 1e6);
            drop(cmd_tx);
            runner.abort();
        }
    });
    let pct = |values: &mut Vec<f64>, p: usize| {
        values.sort_by(f64::total_cmp);
        values[((values.len() - 1) * p + 50) / 100]
    };
    println!(
        "bench: lvs_dead_server_detected_100ms_p50 {:.1} ms",
        pct(&mut detect_ms, 50)
    );
    println!(
        "bench: lvs_dead_server_detected_100ms_p99 {:.1} ms",
        pct(&mut detect_ms, 99)
    );
    println!(
        "bench: lvs_dead_server_quiesce_diff_p99 {:.1} us",
        pct(&mut decide_us, 99)
    );
}

fn main() {
    ipvs_encode();
    tcp_checks_per_second();
    drain_detection();
}
