//! Southbound against this machine's kernel, in network namespaces: VRRP raw sockets carry
//! adverts with TTL / hop limit 255 both ways, addresses are added and removed idempotently
//! (IPv6 without DAD), links are renamed, and whole frames leave through AF_PACKET.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use tandem_lab::netns::{veth_pair, Netns};
use tandem_southbound::net::{NetExecutor, NetOp};
use tandem_southbound::packet::FrameSender;
use tandem_southbound::vrrp_socket::{Received, VrrpSocket, VRRP_GROUP_V4, VRRP_GROUP_V6};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn pair() -> (Netns, Netns) {
    let a = Netns::new("a").unwrap();
    let b = Netns::new("b").unwrap();
    veth_pair(&a, "va", &b, "vb").unwrap();
    a.ip(&["addr", "add", "192.0.2.1/24", "dev", "va"]).unwrap();
    b.ip(&["addr", "add", "192.0.2.2/24", "dev", "vb"]).unwrap();
    (a, b)
}

fn link_local(ns: &Netns, link: &str) -> Ipv6Addr {
    let out = ns
        .ip(&["-6", "-o", "addr", "show", "dev", link, "scope", "link"])
        .unwrap();
    let word = out
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .unwrap();
    word.split('/').next().unwrap().parse().unwrap()
}

const PAYLOAD: &[u8] = b"\x31\x07\x64\x01\x00\x64\x00\x00vrrp";

/// Receives one datagram in `receiver` on `rx_link` while `sender` sends one from `tx_link`.
fn exchange(
    receiver: &Netns,
    rx_link: &'static str,
    sender: &Netns,
    tx_link: &'static str,
    source: IpAddr,
    destination: IpAddr,
) -> (Received, Vec<u8>) {
    let rx_index = receiver.ifindex(rx_link).unwrap();
    let tx_index = sender.ifindex(tx_link).unwrap();
    let v6 = source.is_ipv6();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let listener = receiver
        .spawn(move || {
            runtime().block_on(async move {
                let socket = if v6 {
                    VrrpSocket::open_ipv6(rx_link, rx_index).unwrap()
                } else {
                    VrrpSocket::open_ipv4(rx_link, rx_index).unwrap()
                };
                ready_tx.send(()).unwrap();
                let mut buffer = [0u8; 1500];
                let got = tokio::time::timeout(Duration::from_secs(10), socket.recv(&mut buffer))
                    .await
                    .expect("no advert within 10 s")
                    .unwrap()
                    .expect("well-formed datagram");
                (got, buffer[got.offset..got.offset + got.length].to_vec())
            })
        })
        .unwrap();
    ready_rx.recv().unwrap();
    sender
        .run(move || {
            runtime().block_on(async move {
                let socket = if v6 {
                    VrrpSocket::open_ipv6(tx_link, tx_index).unwrap()
                } else {
                    VrrpSocket::open_ipv4(tx_link, tx_index).unwrap()
                };
                socket.send(source, destination, PAYLOAD).await.unwrap();
            })
        })
        .unwrap();
    listener.join().unwrap().unwrap()
}

#[test]
fn ipv4_adverts_cross_with_ttl_255_multicast_and_unicast() {
    let (a, b) = pair();
    let source = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let (got, payload) = exchange(&b, "vb", &a, "va", source, IpAddr::V4(VRRP_GROUP_V4));
    assert_eq!(got.source, source);
    assert_eq!(got.destination, IpAddr::V4(VRRP_GROUP_V4));
    assert_eq!(got.ttl, 255);
    assert_eq!(payload, PAYLOAD);
    let unicast = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));
    let (got, _) = exchange(&b, "vb", &a, "va", source, unicast);
    assert_eq!((got.destination, got.ttl), (unicast, 255));
}

#[test]
fn ipv6_adverts_cross_with_hop_limit_255_from_the_link_local_source() {
    let (a, b) = pair();
    let source = IpAddr::V6(link_local(&a, "va"));
    let (got, payload) = exchange(&b, "vb", &a, "va", source, IpAddr::V6(VRRP_GROUP_V6));
    assert_eq!(got.source, source);
    assert_eq!(got.destination, IpAddr::V6(VRRP_GROUP_V6));
    assert_eq!(got.ttl, 255);
    assert_eq!(payload, PAYLOAD);
}

#[test]
fn addresses_are_added_and_removed_idempotently_and_ipv6_skips_dad() {
    let (a, _b) = pair();
    // DAD back on for this link, so NODAD on the address is what makes it usable at once.
    a.exec("sysctl", &["-qw", "net.ipv6.conf.va.accept_dad=1"])
        .unwrap();
    let v4 = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10));
    let v6 = IpAddr::V6("2001:db8::10".parse().unwrap());
    let ops = vec![
        NetOp::AddAddress {
            link: "va".into(),
            address: v4,
            prefix_len: 24,
        },
        NetOp::AddAddress {
            link: "va".into(),
            address: v4,
            prefix_len: 24,
        },
        NetOp::AddAddress {
            link: "va".into(),
            address: v6,
            prefix_len: 64,
        },
    ];
    let listed = a
        .run(move || {
            runtime().block_on(async move {
                let executor = NetExecutor::connect().unwrap();
                executor.apply(&ops).await.unwrap();
                executor.addresses("va").await.unwrap()
            })
        })
        .unwrap();
    assert!(listed.contains(&(v4, 24)), "{listed:?}");
    assert!(listed.contains(&(v6, 64)), "{listed:?}");
    let shown = a.ip(&["-6", "addr", "show", "dev", "va"]).unwrap();
    assert!(
        shown.contains("2001:db8::10/64") && !shown.contains("tentative"),
        "{shown}"
    );

    let ops = vec![
        NetOp::DelAddress {
            link: "va".into(),
            address: v4,
            prefix_len: 24,
        },
        NetOp::DelAddress {
            link: "va".into(),
            address: v4,
            prefix_len: 24,
        },
        NetOp::DelAddress {
            link: "va".into(),
            address: v6,
            prefix_len: 64,
        },
    ];
    let result = a
        .run(move || {
            runtime().block_on(async move { NetExecutor::connect().unwrap().apply(&ops).await })
        })
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
    let shown = a.ip(&["addr", "show", "dev", "va"]).unwrap();
    assert!(
        !shown.contains("192.0.2.10") && !shown.contains("2001:db8::10"),
        "{shown}"
    );

    // An operation on a link that does not exist names it.
    let error = a
        .run(|| {
            runtime().block_on(async {
                NetExecutor::connect()
                    .unwrap()
                    .apply(&[NetOp::SetLinkUp {
                        name: "nosuch0".into(),
                    }])
                    .await
                    .unwrap_err()
                    .to_string()
            })
        })
        .unwrap();
    assert!(
        error.contains("nosuch0") && error.contains("no such link"),
        "{error}"
    );
}

#[test]
fn links_are_renamed_while_down_then_brought_up() {
    let (a, _b) = pair();
    let ops = tandem_southbound::net::role_link_ops(&[(tandem_board::NicRole::Peer, "va".into())]);
    a.run(move || {
        runtime()
            .block_on(async move { NetExecutor::connect().unwrap().apply(&ops).await.unwrap() })
    })
    .unwrap();
    let shown = a.ip(&["-o", "link", "show", "dev", "peer"]).unwrap();
    assert!(shown.contains("peer@") && shown.contains(",UP"), "{shown}");
}

#[test]
fn whole_frames_leave_through_af_packet() {
    let (a, b) = pair();
    let index = a.ifindex("va").unwrap();
    let capture = b
        .spawn(|| {
            std::process::Command::new("timeout")
                .args([
                    "20",
                    "tcpdump",
                    "-i",
                    "vb",
                    "-c",
                    "1",
                    "-n",
                    "-e",
                    "--immediate-mode",
                ])
                .arg("ether proto 0x88b5")
                .output()
                .unwrap()
        })
        .unwrap();
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 1, 0x88, 0xb5]);
    frame.extend_from_slice(&[0x42; 46]);
    // Keep sending until tcpdump has seen one (it needs a moment to attach).
    a.run(move || {
        let sender = FrameSender::open(index).unwrap();
        for _ in 0..40 {
            sender.send(&frame).unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .unwrap();
    let output = capture.join().unwrap().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("02:00:00:00:00:01 > ff:ff:ff:ff:ff:ff"),
        "{text}"
    );
}
