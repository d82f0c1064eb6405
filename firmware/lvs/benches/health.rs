//! Health-check capacity on one core against loopback listeners, and IPVS encoding of a cold
//! 1000x10 load. Bounded in count and time; stops by itself. Prints `bench:` lines.
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

fn main() {
    ipvs_encode();
    tcp_checks_per_second();
}
