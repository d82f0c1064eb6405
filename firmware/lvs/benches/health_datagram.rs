//! Datagram health checks per second on one core (a current-thread runtime, at most 256
//! attempts in flight): ICMP echo on a datagram ICMP socket and on a raw one, UDP with a reply
//! required, and DNS, in a network namespace of their own (so datagram ICMP sockets can be
//! allowed there). Pings go to 200 loopback addresses in turn, as to 200 real servers (a raw
//! socket connected to one address sees only that address's ICMP), and once more all to one
//! address, the raw socket's worst case (every socket sees every reply). The UDP echo and the
//! DNS responder run on another thread; echo replies come from the kernel. Bounded in count
//! and time. Prints `bench:` lines.
// Bench helpers may unwrap: a failure is the bench failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_lab::netns::Netns;
use tandem_lvs::health::datagram::IcmpSocketKind;
use tandem_lvs::health::probe::{dns_check, ping, udp_check};
use tandem_lvs::health::{DnsProbe, FailReason, UdpProbe};
use tokio::task::JoinSet;

const ATTEMPTS: u64 = 20_000;
const IN_FLIGHT: usize = 256;
const TIMEOUT: Duration = Duration::from_secs(2);

/// A UDP server on its own thread inside the namespace: answers each datagram with `answer`'s
/// reply, until `stop`.
fn server(ns: &Netns, stop: &Arc<AtomicBool>, answer: fn(&[u8]) -> Vec<u8>) -> SocketAddr {
    let socket = ns.run(|| UdpSocket::bind("127.0.0.1:0")).unwrap().unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    // Room for every request in flight, so the bench server drops none.
    socket2::SockRef::from(&socket)
        .set_recv_buffer_size(4 << 20)
        .unwrap();
    let addr = socket.local_addr().unwrap();
    let stop = Arc::clone(stop);
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((n, from)) = socket.recv_from(&mut buf) {
                let _ = socket.send_to(&answer(&buf[..n]), from);
            }
        }
    });
    addr
}

/// The DNS answer the responder gives: the query with QR set and one (unwritten) answer
/// counted, which is all the verdict reads.
fn dns_answer(query: &[u8]) -> Vec<u8> {
    let mut reply = query.to_vec();
    if reply.len() >= 12 {
        reply[2] |= 0x80;
        reply[6..8].copy_from_slice(&1u16.to_be_bytes());
    }
    reply
}

/// `ATTEMPTS` attempts made by `attempt`, at most `IN_FLIGHT` at once, on a current-thread
/// runtime on a thread inside `ns`: checks per second and failures.
fn rate<A, F>(ns: &Netns, attempt: A) -> (f64, u64)
where
    A: Fn(u64) -> F + Send + 'static,
    F: Future<Output = Result<(), FailReason>> + Send + 'static,
{
    ns.run(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let begun = Instant::now();
            let mut tasks = JoinSet::new();
            let (mut started, mut done, mut failures) = (0u64, 0u64, 0u64);
            while done < ATTEMPTS {
                assert!(
                    begun.elapsed() < Duration::from_secs(60),
                    "bench bounded at 60 s"
                );
                while started < ATTEMPTS && tasks.len() < IN_FLIGHT {
                    tasks.spawn(attempt(started));
                    started += 1;
                }
                if let Some(result) = tasks.join_next().await {
                    done += 1;
                    if !matches!(result, Ok(Ok(()))) {
                        failures += 1;
                    }
                }
            }
            (done as f64 / begun.elapsed().as_secs_f64(), failures)
        })
    })
    .unwrap()
}

fn main() {
    let ns = Netns::new("dgbench").unwrap();
    ns.exec("sysctl", &["-qw", "net.ipv4.ping_group_range=0 0"])
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let echo = server(&ns, &stop, <[u8]>::to_vec);
    let dns = server(&ns, &stop, dns_answer);
    let localhost = IpAddr::V4(Ipv4Addr::LOCALHOST);
    // 127.0.0.1 ..= 127.0.0.200 by attempt.
    let host = |n: u64| IpAddr::V4(Ipv4Addr::new(127, 0, 0, u8::try_from(n % 200 + 1).unwrap()));
    let udp = UdpProbe {
        payload: b"tandem health check".to_vec(),
        require_reply: true,
        expect: b"tandem".to_vec(),
    };
    let query = DnsProbe {
        name: "www.example.com".into(),
        record_type: 1,
    };

    let figures = [
        (
            "ping_datagram",
            rate(&ns, move |n| {
                ping(host(n), Some(IcmpSocketKind::Datagram), TIMEOUT)
            }),
        ),
        (
            "ping_raw",
            rate(&ns, move |n| {
                ping(host(n), Some(IcmpSocketKind::Raw), TIMEOUT)
            }),
        ),
        (
            "ping_raw_one_target",
            rate(&ns, move |_| {
                ping(localhost, Some(IcmpSocketKind::Raw), TIMEOUT)
            }),
        ),
        (
            "udp",
            rate(&ns, move |_| {
                let udp = udp.clone();
                async move { udp_check(echo, &udp, TIMEOUT).await }
            }),
        ),
        (
            "dns",
            rate(&ns, move |_| {
                let query = query.clone();
                async move { dns_check(dns, &query, TIMEOUT).await }
            }),
        ),
    ];
    stop.store(true, Ordering::Relaxed);
    for (name, (rate, failures)) in figures {
        println!("bench: health_{name}_checks_per_s {rate:.0} checks/s");
        println!("bench: health_{name}_failed_checks {failures} checks");
    }
}
