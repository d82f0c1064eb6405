//! HTTP check capacity on one core: plain HTTP GET, HTTPS GET (TLS 1.3, a full handshake per
//! check: ECDHE X25519 and an ECDSA P-256 certificate, session resumption off as in the
//! checker), HTTPS with a TLS 1.2 server, and HTTPS with the MD5 of a 16 KiB body. The checker
//! runs on one current-thread runtime, as the LVS engine's does; the servers run on another
//! thread (their handshakes cost about as much as the checker's, so on a machine with few cores
//! the servers share the CPU with it). Besides checks per second of wall time, each run prints
//! checks per CPU second of the checker's thread: what one core does when the checker has it to
//! itself, whatever else the machine runs. Bounded in count and time. Prints `bench:` lines.
// Test/bench helpers outside #[test] fns may unwrap: a failure is the bench failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tandem_lvs::health::digest::md5;
use tandem_lvs::health::runner::run;
use tandem_lvs::health::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

const HOSTS: u8 = 10;
const PORTS_PER_HOST: usize = 5;

#[derive(Clone, Copy, PartialEq)]
enum Server {
    Http,
    Tls13,
    Tls12,
}

fn acceptor(versions: &[&'static rustls::SupportedProtocolVersion]) -> TlsAcceptor {
    let made = rcgen::generate_simple_self_signed(vec!["bench.example".to_owned()]).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![made.cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der())),
        )
        .unwrap();
    TlsAcceptor::from(Arc::new(config))
}

/// Reads a request head, answers `reply`, closes.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut s: S, reply: &[u8]) {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let _ = s.write_all(reply).await;
    let _ = s.shutdown().await;
}

/// Listeners answering `body` on a thread of their own; dropping the sender stops them.
fn start_servers(kind: Server, body: Vec<u8>) -> (Vec<SocketAddr>, std::sync::mpsc::Sender<()>) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let mut reply = format!(
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            reply.extend_from_slice(&body);
            let reply: Arc<[u8]> = reply.into();
            let tls = match kind {
                Server::Http => None,
                Server::Tls13 => Some(acceptor(&[&rustls::version::TLS13])),
                Server::Tls12 => Some(acceptor(&[&rustls::version::TLS12])),
            };
            let mut addrs = Vec::new();
            for h in 1..=HOSTS {
                for _ in 0..PORTS_PER_HOST {
                    let l = tokio::net::TcpListener::bind((Ipv4Addr::new(127, 0, 1, h), 0))
                        .await
                        .unwrap();
                    addrs.push(l.local_addr().unwrap());
                    let (tls, reply) = (tls.clone(), Arc::clone(&reply));
                    tokio::spawn(async move {
                        while let Ok((s, _)) = l.accept().await {
                            let (tls, reply) = (tls.clone(), Arc::clone(&reply));
                            tokio::spawn(async move {
                                match tls {
                                    None => answer(s, &reply).await,
                                    Some(tls) => {
                                        if let Ok(s) = tls.accept(s).await {
                                            answer(s, &reply).await;
                                        }
                                    }
                                }
                            });
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

/// CPU time of the calling thread.
fn thread_cpu() -> Duration {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap();
    Duration::from(t)
}

/// Checks per second of `probe` against servers of `kind` (of wall time, of the checker
/// thread's CPU time), and failed checks.
fn checks_per_second(kind: Server, body: &[u8], probe: &Probe, attempts: u64) -> (f64, f64, u64) {
    let (targets, stop) = start_servers(kind, body.to_vec());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let probe = probe.clone();
    let result = rt.block_on(async move {
        let (cmd_tx, cmd_rx) = mpsc::channel(targets.len() + 1);
        let (ev_tx, mut ev_rx) = mpsc::channel(1024);
        tokio::spawn(async move { while ev_rx.recv().await.is_some() {} });
        let now = Instant::now();
        let mut sched = HealthScheduler::new(1);
        for (i, t) in targets.iter().enumerate() {
            let spec = CheckSpec {
                key: CheckKey {
                    probe: probe.clone(),
                    target: *t,
                    timeout: Duration::from_secs(5),
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
        let cpu = thread_cpu();
        let stats = tokio::time::timeout(
            Duration::from_secs(60),
            run(sched, cmd_rx, ev_tx, 64, Some(attempts)),
        )
        .await
        .expect("bench bounded at 60 s");
        drop(cmd_tx);
        (
            stats.attempts as f64 / start.elapsed().as_secs_f64(),
            stats.attempts as f64 / (thread_cpu() - cpu).as_secs_f64(),
            stats.failures,
        )
    });
    let _ = stop.send(());
    result
}

fn http(tls: bool, body: Option<BodyCheck>) -> Probe {
    Probe::Http(Box::new(HttpProbe {
        path: "/healthz".into(),
        host: Some("bench.example".into()),
        status: vec![(200, 299)],
        body,
        tls: tls.then_some(TlsTrust::AnyCertificate),
        more_urls: Vec::new(),
    }))
}

fn main() {
    let small = b"ok\n".to_vec();
    let page: Vec<u8> = b"abcdefghijklmnopqrstuvwxyz\n"
        .iter()
        .copied()
        .cycle()
        .take(16 * 1024)
        .collect();
    let md5_page = Some(BodyCheck::Md5 {
        digest: md5(&page),
        max_body: 1 << 20,
    });
    let runs: [(&str, Server, &[u8], Probe, u64); 4] = [
        ("http", Server::Http, &small, http(false, None), 20_000),
        (
            "https_tls13",
            Server::Tls13,
            &small,
            http(true, None),
            4_000,
        ),
        (
            "https_tls12",
            Server::Tls12,
            &small,
            http(true, None),
            4_000,
        ),
        (
            "https_md5_16k",
            Server::Tls13,
            &page,
            http(true, md5_page),
            4_000,
        ),
    ];
    for (name, kind, body, probe, attempts) in runs {
        let (rate, per_cpu, failures) = checks_per_second(kind, body, &probe, attempts);
        println!("bench: health_{name}_checks_per_s {rate:.0} checks/s");
        println!("bench: health_{name}_checks_per_cpu_s {per_cpu:.0} checks/s");
        println!("bench: health_{name}_failed_checks {failures} checks");
    }
}
