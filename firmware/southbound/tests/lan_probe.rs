//! The LAN liveness probe against this machine's kernel: two network namespaces joined by a
//! veth, IPv4 and IPv6 (no DAD) on both ends. The other end's kernel answers ARP and Neighbor
//! Solicitation for its own addresses with no program running there; an address nobody holds
//! stays silent until the timeout. Needs root (network namespaces, CAP_NET_RAW).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use tandem_lab::netns::{veth_pair, Netns};
use tandem_southbound::lan_probe::{LanProbe, ProbeAnswer};

/// What the heartbeat's confirmation uses: three probes over 15 ms.
const TIMEOUT: Duration = Duration::from_millis(15);
const ATTEMPTS: u8 = 3;

const A4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const B4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const UNUSED4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 99);
const A6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
const B6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const UNUSED6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x99);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn pair() -> (Netns, Netns) {
    let a = Netns::new("probe-a").unwrap();
    let b = Netns::new("probe-b").unwrap();
    veth_pair(&a, "va", &b, "vb").unwrap();
    a.ip(&["addr", "add", "192.0.2.1/24", "dev", "va"]).unwrap();
    b.ip(&["addr", "add", "192.0.2.2/24", "dev", "vb"]).unwrap();
    a.ip(&["addr", "add", "2001:db8::1/64", "dev", "va", "nodad"])
        .unwrap();
    b.ip(&["addr", "add", "2001:db8::2/64", "dev", "vb", "nodad"])
        .unwrap();
    (a, b)
}

fn mac_of(ns: &Netns, link: &'static str) -> [u8; 6] {
    ns.run(move || runtime().block_on(async move { LanProbe::open(link).unwrap().mac().unwrap() }))
        .unwrap()
}

/// Runs one probe from `a`'s `va`.
fn probe(
    a: &Netns,
    target: IpAddr,
    source: IpAddr,
    timeout: Duration,
) -> (std::io::Result<Option<ProbeAnswer>>, Duration) {
    a.run(move || {
        runtime().block_on(async move {
            let mut probe = LanProbe::open("va").unwrap();
            let started = std::time::Instant::now();
            let result = probe.probe(target, source, timeout, ATTEMPTS).await;
            (result, started.elapsed())
        })
    })
    .unwrap()
}

fn answered(a: &Netns, target: IpAddr, source: IpAddr, partner: [u8; 6]) {
    // A generous window so a loaded machine cannot fail the test; the probe returns at the
    // first answer, and the figures printed show how fast that was.
    let (result, took) = probe(a, target, source, Duration::from_millis(500));
    let answer = result
        .unwrap()
        .unwrap_or_else(|| panic!("{target} did not answer"));
    println!(
        "{target} from {source}: rtt {:?}, elapsed {:?}, probes {}",
        answer.rtt, answer.elapsed, answer.probes_sent
    );
    assert_eq!(answer.from_mac, partner);
    assert!(answer.rtt <= answer.elapsed && answer.elapsed <= took);
    assert!(answer.probes_sent >= 1);
}

fn silent(a: &Netns, target: IpAddr, source: IpAddr) {
    let (result, took) = probe(a, target, source, TIMEOUT);
    assert_eq!(result.unwrap(), None, "{target} answered");
    assert!(took >= TIMEOUT, "gave up after {took:?}");
    assert!(took < TIMEOUT + Duration::from_millis(500), "took {took:?}");
    println!("{target} from {source}: silent, gave up after {took:?}");
}

#[test]
fn ipv4_partner_answers_arp_and_an_unused_address_stays_silent() {
    let (a, b) = pair();
    let partner = mac_of(&b, "vb");
    assert_ne!(partner, mac_of(&a, "va"));
    answered(&a, B4.into(), A4.into(), partner);
    // An RFC 5227 probe (sender 0.0.0.0) is answered too.
    answered(&a, B4.into(), Ipv4Addr::UNSPECIFIED.into(), partner);
    silent(&a, UNUSED4.into(), A4.into());
    // With the usual 15 ms window too.
    let (result, _) = probe(&a, B4.into(), A4.into(), TIMEOUT);
    assert!(result.unwrap().is_some());
}

#[test]
fn ipv6_partner_answers_neighbor_solicitation_and_an_unused_address_stays_silent() {
    let (a, b) = pair();
    let partner = mac_of(&b, "vb");
    answered(&a, B6.into(), A6.into(), partner);
    // DAD-style solicitation from ::, answered to ff02::1.
    answered(&a, B6.into(), Ipv6Addr::UNSPECIFIED.into(), partner);
    silent(&a, UNUSED6.into(), A6.into());
    let (result, _) = probe(&a, B6.into(), A6.into(), TIMEOUT);
    assert!(result.unwrap().is_some());
}

#[test]
fn a_down_partner_link_means_silence() {
    let (a, b) = pair();
    // The partner's address is gone (as when its box is dead): nobody answers.
    b.ip(&["addr", "del", "192.0.2.2/24", "dev", "vb"]).unwrap();
    b.ip(&["addr", "del", "2001:db8::2/64", "dev", "vb"])
        .unwrap();
    silent(&a, B4.into(), A4.into());
    silent(&a, B6.into(), A6.into());
}

#[test]
fn errors_name_the_interface_and_what_to_do() {
    let (a, _b) = pair();
    let missing = a
        .run(|| runtime().block_on(async { LanProbe::open("nosuch0").unwrap_err().to_string() }))
        .unwrap();
    assert!(
        missing.contains("nosuch0") && missing.contains("ip link"),
        "{missing}"
    );
    let (result, _) = probe(&a, B4.into(), A6.into(), TIMEOUT);
    let mixed = result.unwrap_err();
    assert_eq!(mixed.kind(), std::io::ErrorKind::InvalidInput);
    assert!(mixed.to_string().contains("va"), "{mixed}");
}

#[test]
fn one_lan_probe_serves_many_rounds_without_stale_answers() {
    let (a, b) = pair();
    let b_handle = b.name.clone();
    let results = a
        .run(move || {
            runtime().block_on(async move {
                let mut probe = LanProbe::open("va").unwrap();
                let window = Duration::from_millis(500);
                let mut seen = Vec::new();
                seen.push(
                    probe
                        .probe(B4.into(), A4.into(), window, ATTEMPTS)
                        .await
                        .unwrap(),
                );
                seen.push(
                    probe
                        .probe(B6.into(), A6.into(), window, ATTEMPTS)
                        .await
                        .unwrap(),
                );
                seen.push(
                    probe
                        .probe(UNUSED4.into(), A4.into(), TIMEOUT, 1)
                        .await
                        .unwrap(),
                );
                // Idle for a while: the drop-all filter keeps the queue empty, so answers
                // from now on are fresh ones.
                tokio::time::sleep(Duration::from_millis(20)).await;
                seen.push(
                    probe
                        .probe(B4.into(), A4.into(), window, ATTEMPTS)
                        .await
                        .unwrap(),
                );
                // The partner loses its addresses: the next rounds find silence.
                for args in [
                    ["addr", "del", "192.0.2.2/24", "dev", "vb"],
                    ["addr", "del", "2001:db8::2/64", "dev", "vb"],
                ] {
                    tandem_lab::shell::ip_in(&b_handle, &args).unwrap();
                }
                seen.push(
                    probe
                        .probe(B4.into(), A4.into(), TIMEOUT, ATTEMPTS)
                        .await
                        .unwrap(),
                );
                seen.push(
                    probe
                        .probe(B6.into(), A6.into(), TIMEOUT, ATTEMPTS)
                        .await
                        .unwrap(),
                );
                seen
            })
        })
        .unwrap();
    let answered: Vec<bool> = results.iter().map(Option::is_some).collect();
    assert_eq!(
        answered,
        [true, true, false, true, false, false],
        "{results:?}"
    );
}
