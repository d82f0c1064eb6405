//! Ping, UDP and DNS checks against this machine's kernel, in network namespaces of their own:
//! ICMP and ICMPv6 echo over a veth on both socket kinds (datagram where ping_group_range
//! allows, raw), an address with nothing behind it and a host that ignores echoes seen down;
//! UDP checks as keepalived's `UDP_CHECK` (a matching reply, a wrong one, silence with and
//! without a reply required, port and host unreachable); DNS checks against Debian's dnsmasq
//! (an answer, NODATA, NXDOMAIN, REFUSED, a silent port, dnsmasq stopped), and keepalived's
//! `PING_CHECK`, `UDP_CHECK` and `DNS_CHECK` imported, planned and run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::future::Future;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use tandem_lab::netns::{veth_pair, Netns};
use tandem_lvs::health::datagram::{icmp_socket_kind, IcmpSocketKind};
use tandem_lvs::health::probe::{dns_check, ping, run_probe, udp_check};
use tandem_lvs::health::{DnsProbe, FailReason, UdpProbe};

const SHORT: Duration = Duration::from_millis(500);

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// Runs `future` on a thread inside `netns` (its sockets live there).
fn inside<T: Send + 'static, F: Future<Output = T> + 'static>(
    netns: &Netns,
    future: impl FnOnce() -> F + Send + 'static,
) -> T {
    netns.run(move || block_on(future())).unwrap()
}

fn sysctl(netns: &Netns, setting: &str) {
    netns.exec("sysctl", &["-qw", setting]).unwrap();
}

/// Two namespaces on a veth: `a` (192.0.2.1, 2001:db8::1) checks `b` (192.0.2.2,
/// 2001:db8::2); 192.0.2.3 and 2001:db8::3 have nothing behind them. A failed neighbour lookup
/// takes one solicitation of 200 ms.
fn pair(tag: &str) -> (Netns, Netns) {
    let a = Netns::new(&format!("{tag}a")).unwrap();
    let b = Netns::new(&format!("{tag}b")).unwrap();
    veth_pair(&a, "a0", &b, "b0").unwrap();
    for (ns, link, v4, v6) in [
        (&a, "a0", "192.0.2.1/24", "2001:db8::1/64"),
        (&b, "b0", "192.0.2.2/24", "2001:db8::2/64"),
    ] {
        ns.ip(&["addr", "add", v4, "dev", link]).unwrap();
        ns.ip(&["addr", "add", v6, "dev", link, "nodad"]).unwrap();
    }
    for setting in [
        "net.ipv4.neigh.a0.mcast_solicit=1",
        "net.ipv4.neigh.a0.retrans_time_ms=200",
        "net.ipv6.neigh.a0.mcast_solicit=1",
        "net.ipv6.neigh.a0.retrans_time_ms=200",
    ] {
        sysctl(&a, setting);
    }
    (a, b)
}

fn addr(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn ping_sees_hosts_up_and_down_on_either_socket_kind() {
    let (a, b) = pair("ping");
    // Datagram ICMP sockets for root's group in `a` (none allowed in a new namespace).
    sysctl(&a, "net.ipv4.ping_group_range=0 0");
    for kind in [IcmpSocketKind::Datagram, IcmpSocketKind::Raw] {
        for up in ["192.0.2.2", "2001:db8::2"] {
            let verdict = inside(&a, move || {
                ping(addr(up), Some(kind), Duration::from_secs(2))
            });
            assert_eq!(verdict, Ok(()), "{kind:?} {up}");
        }
        // Nothing behind the address: no neighbour answers, so no echo reply either (or the
        // kernel's host unreachable, whichever comes first).
        for nothing in ["192.0.2.3", "2001:db8::3"] {
            let verdict = inside(&a, move || ping(addr(nothing), Some(kind), SHORT));
            assert!(
                matches!(
                    &verdict,
                    Err(FailReason::NoReply(_) | FailReason::Unreachable(_))
                ),
                "{kind:?} {nothing}: {verdict:?}"
            );
        }
    }
    // `b` stops answering echoes (ICMP blocked): down, saying no reply came.
    sysctl(&b, "net.ipv4.icmp_echo_ignore_all=1");
    sysctl(&b, "net.ipv6.icmp.echo_ignore_all=1");
    for kind in [IcmpSocketKind::Datagram, IcmpSocketKind::Raw] {
        for blocked in ["192.0.2.2", "2001:db8::2"] {
            let verdict = inside(&a, move || ping(addr(blocked), Some(kind), SHORT));
            assert_eq!(
                verdict,
                Err(FailReason::NoReply("ICMP echo reply")),
                "{kind:?} {blocked}"
            );
        }
    }
    assert_eq!(
        FailReason::NoReply("ICMP echo reply").to_string(),
        "no ICMP echo reply within the timeout"
    );
    // Answering again: up again.
    sysctl(&b, "net.ipv4.icmp_echo_ignore_all=0");
    let verdict = inside(&a, || ping(addr("192.0.2.2"), None, Duration::from_secs(2)));
    assert_eq!(verdict, Ok(()));
}

/// Where datagram ICMP sockets are not allowed (a new namespace's ping_group_range), the
/// check falls back to a raw socket (the tests run as root, as PID 1 on the appliance).
#[test]
fn ping_falls_back_to_a_raw_socket() {
    let ns = Netns::new("pingraw").unwrap();
    let datagram = inside(&ns, || {
        ping(addr("127.0.0.1"), Some(IcmpSocketKind::Datagram), SHORT)
    });
    assert!(
        matches!(&datagram, Err(FailReason::Io(why)) if why.contains("ping_group_range")),
        "{datagram:?}"
    );
    let key = tandem_lvs::health::CheckKey {
        probe: tandem_lvs::health::Probe::Ping,
        target: SocketAddr::new(addr("127.0.0.1"), 0),
        timeout: Duration::from_secs(2),
    };
    let verdict = inside(&ns, move || async move { run_probe(&key).await });
    assert_eq!(verdict, Ok(()));
    let verdict = inside(&ns, || ping(addr("::1"), None, Duration::from_secs(2)));
    assert_eq!(verdict, Ok(()));
    assert!(icmp_socket_kind().is_some());
}

/// A UDP server on a thread: answers every datagram with `reply` followed by what came
/// (nothing at all with `reply` None). Returns its address.
fn udp_server(ns: &Netns, reply: Option<&'static [u8]>) -> SocketAddr {
    let socket = ns.run(|| UdpSocket::bind("127.0.0.1:0")).unwrap().unwrap();
    let address = socket.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            if let Some(reply) = reply {
                let mut answer = reply.to_vec();
                answer.extend_from_slice(&buf[..n]);
                let _ = socket.send_to(&answer, from);
            }
        }
    });
    address
}

fn udp(require_reply: bool, expect: &[u8]) -> UdpProbe {
    UdpProbe {
        payload: b"hello".to_vec(),
        require_reply,
        expect: expect.to_vec(),
    }
}

#[test]
fn udp_checks_as_keepalived_udp_check() {
    let ns = Netns::new("udp").unwrap();
    let echo = udp_server(&ns, Some(b"PONG "));
    let silent = udp_server(&ns, None);
    // A port nothing listens on: bound and closed again.
    let closed = ns
        .run(|| {
            UdpSocket::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
        })
        .unwrap();
    let check = |target: SocketAddr, probe: UdpProbe| {
        inside(&ns, move || async move {
            udp_check(target, &probe, SHORT).await
        })
    };

    // A reply starting with the expected bytes: up; any reply without expect: up.
    assert_eq!(check(echo, udp(true, b"PONG hello")), Ok(()));
    assert_eq!(check(echo, udp(true, b"")), Ok(()));
    assert_eq!(check(echo, udp(false, b"")), Ok(()));
    // Another reply: down, showing both.
    let wrong = check(echo, udp(true, b"PING")).unwrap_err();
    assert_eq!(
        wrong.to_string(),
        "UDP reply \"PONG hello\" does not start with the expected \"PING\""
    );
    // Silence: up unless a reply is required (keepalived's rule).
    let begun = Instant::now();
    assert_eq!(check(silent, udp(false, b"")), Ok(()));
    assert!(begun.elapsed() >= SHORT, "silence is waited for");
    assert_eq!(
        check(silent, udp(true, b"")),
        Err(FailReason::NoReply("UDP reply"))
    );
    // Nothing on the port: ICMP port unreachable, down either way.
    for require_reply in [false, true] {
        let verdict = check(closed, udp(require_reply, b"")).unwrap_err();
        assert_eq!(
            verdict.to_string(),
            "port unreachable (ICMP): nothing listens on the port"
        );
    }
}

#[test]
fn a_udp_check_of_an_address_with_nothing_behind_it_is_down() {
    let (a, _b) = pair("udph");
    // No neighbour answers: the kernel's host unreachable comes back as the socket's error
    // (IP_RECVERR), so even without a reply required the server is down, as keepalived sees it.
    for target in ["192.0.2.3:7", "[2001:db8::3]:7"] {
        let target: SocketAddr = target.parse().unwrap();
        let verdict = inside(&a, move || async move {
            udp_check(target, &udp(false, b""), Duration::from_secs(5)).await
        });
        assert_eq!(
            verdict.map_err(|e| e.to_string()),
            Err("host unreachable (ICMP, or no answer to ARP / neighbour discovery)".to_owned()),
            "{target}"
        );
    }
}

/// Debian's dnsmasq in a namespace: `www.tandem.test` has an A record only, the rest of
/// `tandem.test` does not exist, and with no upstream every other name is refused.
struct Dnsmasq {
    child: Child,
}

impl Dnsmasq {
    fn start(ns: &Netns, port: u16) -> Dnsmasq {
        let child = ns
            .command("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--conf-file=/dev/null",
                "--no-resolv",
                "--no-hosts",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--pid-file=",
                "--user=root",
                &format!("--port={port}"),
                "--local=/tandem.test/",
                "--host-record=www.tandem.test,192.0.2.80",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (make deps installs dnsmasq-base)");
        Dnsmasq { child }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dns(name: &str, record_type: u16) -> DnsProbe {
    DnsProbe {
        name: name.to_owned(),
        record_type,
    }
}

#[test]
fn dns_checks_against_dnsmasq() {
    let ns = Netns::new("dns").unwrap();
    let server: SocketAddr = "127.0.0.1:53".parse().unwrap();
    let mut dnsmasq = Dnsmasq::start(&ns, server.port());
    let check = |probe: DnsProbe| {
        inside(&ns, move || async move {
            dns_check(server, &probe, SHORT).await
        })
    };
    // Up once dnsmasq listens (until then: port unreachable).
    let deadline = Instant::now() + Duration::from_secs(20);
    while check(dns("www.tandem.test", 1)).is_err() {
        assert!(Instant::now() < deadline, "dnsmasq never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(check(dns("www.tandem.test.", 1)), Ok(()));
    // NOERROR without an answer (it has no AAAA, NODATA): up, as keepalived judges it.
    assert_eq!(check(dns("www.tandem.test", 28)), Ok(()));
    // NXDOMAIN and REFUSED, named.
    let nxdomain = check(dns("nope.tandem.test", 1)).unwrap_err();
    assert_eq!(nxdomain.to_string(), "DNS reply NXDOMAIN (RCODE 3)");
    let refused = check(dns(".", 6)).unwrap_err();
    assert_eq!(refused.to_string(), "DNS reply REFUSED (RCODE 5)");

    // A port that takes the query and never answers.
    let silent = udp_server(&ns, None);
    let verdict = inside(&ns, move || async move {
        dns_check(silent, &dns("www.tandem.test", 1), SHORT).await
    });
    assert_eq!(verdict, Err(FailReason::NoReply("DNS reply")));

    // dnsmasq stops: port unreachable.
    let _ = dnsmasq.child.kill();
    let _ = dnsmasq.child.wait();
    let down = check(dns("www.tandem.test", 1)).unwrap_err();
    assert_eq!(
        down.to_string(),
        "port unreachable (ICMP): nothing listens on the port"
    );
}

/// keepalived's PING_CHECK, UDP_CHECK and DNS_CHECK, imported, planned and run.
#[test]
fn imported_keepalived_ping_udp_and_dns_checks_run() {
    let ns = Netns::new("kaimp").unwrap();
    let _dnsmasq = Dnsmasq::start(&ns, 53);
    let echo = udp_server(&ns, Some(b"OK "));
    let text = format!(
        r#"
virtual_server 192.0.2.10 53 {{
    protocol UDP
    real_server 127.0.0.1 53 {{
        DNS_CHECK {{
            type A
            name www.tandem.test
            connect_timeout 1
        }}
    }}
}}
virtual_server 192.0.2.10 {udp_port} {{
    protocol UDP
    real_server 127.0.0.1 {udp_port} {{
        UDP_CHECK {{
            payload 70696e67
            require_reply 4f4b
            connect_timeout 1
        }}
    }}
}}
virtual_server 192.0.2.10 80 {{
    protocol TCP
    real_server 127.0.0.1 80 {{
        PING_CHECK {{
            connect_timeout 1
        }}
    }}
}}
"#,
        udp_port = echo.port()
    );
    let imported = tandem_config::import::keepalived::import(&text).unwrap();
    let plan = tandem_lvs::plan::from_config(&imported.config);
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    let mut checks: Vec<_> = plan
        .services
        .values()
        .flat_map(|s| s.plan.checks.values().cloned())
        .collect();
    checks.sort_by_key(|c| c.what.to_string());
    let whats: Vec<&str> = checks.iter().map(|c| &*c.what).collect();
    assert_eq!(
        whats,
        ["dns A www.tandem.test", "ping", "udp (reply required)"]
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    for check in checks {
        let key = check.spec.key.clone();
        loop {
            let attempt = key.clone();
            let verdict = inside(&ns, move || async move { run_probe(&attempt).await });
            if verdict.is_ok() {
                break;
            }
            // dnsmasq may still be starting; nothing else should fail.
            assert!(
                Instant::now() < deadline && key.target.port() == 53,
                "{}: {verdict:?}",
                check.what
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
