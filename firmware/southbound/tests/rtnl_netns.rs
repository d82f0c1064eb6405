//! The route-netlink executor and the link monitor against this machine's kernel, in network
//! namespaces: link dumps, the default route, kernel refusals with their errno, and link
//! notifications including an overrun of the monitor's socket (`ENOBUFS`), after which the
//! table must still end in the kernel's state.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_lab::netns::Netns;
use tandem_southbound::link_monitor::{self, LinkTable, LinkWatch};
use tandem_southbound::net::{NetExecutor, NetOp};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn links_routes_and_refusals() {
    let ns = Netns::new("rtnl").unwrap();
    ns.ip(&["link", "add", "va", "type", "veth", "peer", "name", "vb"])
        .unwrap();
    ns.ip(&["addr", "add", "198.51.100.2/24", "dev", "va"])
        .unwrap();
    ns.ip(&["link", "set", "va", "up"]).unwrap();
    let (links, first, second, unreachable, refused) = ns
        .run(|| {
            runtime().block_on(async {
                let net = NetExecutor::connect().unwrap();
                let links = net.links().await.unwrap();
                let gateway = |last| Ipv4Addr::new(198, 51, 100, last);
                let first = tandem_southbound::route::replace_default_v4(gateway(1)).await;
                let second = tandem_southbound::route::replace_default_v4(gateway(254)).await;
                let unreachable =
                    tandem_southbound::route::replace_default_v4(Ipv4Addr::new(203, 0, 113, 1))
                        .await;
                // A prefix length the kernel refuses (EINVAL).
                let refused = net
                    .apply(&[NetOp::AddAddress {
                        link: "va".into(),
                        address: "192.0.2.1".parse().unwrap(),
                        prefix_len: 40,
                    }])
                    .await;
                (links, first, second, unreachable, refused)
            })
        })
        .unwrap();
    let mut links = links;
    links.sort();
    assert_eq!(
        links,
        [
            ("lo".to_owned(), true),
            ("va".to_owned(), true),
            ("vb".to_owned(), false)
        ]
    );
    first.unwrap();
    second.unwrap();
    let routes = ns.ip(&["-4", "route", "show", "default"]).unwrap();
    // Replaced, not added: one default route, via the second gateway ("linkdown": vb is down).
    assert_eq!(routes.lines().count(), 1, "{routes}");
    assert!(
        routes.starts_with("default via 198.51.100.254 dev va proto static"),
        "{routes}"
    );
    let unreachable = unreachable.unwrap_err().to_string();
    assert!(
        unreachable.contains("via 203.0.113.1") && unreachable.contains("connected network"),
        "{unreachable}"
    );
    let refused = refused.unwrap_err();
    let text = refused.to_string();
    assert!(
        text.starts_with("kernel refused to add address 192.0.2.1/40 to va: Invalid argument"),
        "{text}"
    );
}

/// Waits (driving the runtime) until `done` holds for the published table.
fn wait_for(
    runtime: &tokio::runtime::Runtime,
    links: &mut LinkWatch,
    what: &str,
    done: impl Fn(&LinkTable) -> bool,
) -> Arc<LinkTable> {
    runtime.block_on(async {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let table = links.borrow_and_update().clone();
            if done(&table) {
                return table;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, links.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => panic!("the monitor stopped while waiting for {what}"),
                Err(_) => panic!("no {what} within 10 s; table {table:?}"),
            }
        }
    })
}

#[test]
fn the_monitor_follows_links_and_survives_an_overrun() {
    let ns = Arc::new(Netns::new("lmon").unwrap());
    let inner = Arc::clone(&ns);
    ns.run(move || {
        let ns = inner;
        let runtime = runtime();
        let mut links = runtime.block_on(async { link_monitor::spawn().unwrap() });
        wait_for(&runtime, &mut links, "lo", |t| {
            t.get("lo").is_some_and(|lo| lo.admin_up)
        });

        ns.ip(&["link", "add", "va", "type", "veth", "peer", "name", "vb"])
            .unwrap();
        wait_for(&runtime, &mut links, "va and vb, down", |t| {
            t.get("va").is_some_and(|l| !l.admin_up) && t.contains_key("vb")
        });
        ns.ip(&["link", "set", "va", "up"]).unwrap();
        wait_for(&runtime, &mut links, "va up without carrier", |t| {
            t.get("va").is_some_and(|l| l.admin_up && !l.carrier)
        });
        ns.ip(&["link", "set", "vb", "up"]).unwrap();
        wait_for(&runtime, &mut links, "va with carrier", |t| {
            t.get("va").is_some_and(|l| l.is_up())
        });
        ns.ip(&["link", "set", "vb", "down"]).unwrap();
        ns.ip(&["link", "set", "vb", "name", "peer"]).unwrap();
        wait_for(&runtime, &mut links, "vb renamed", |t| {
            !t.contains_key("vb") && t.contains_key("peer")
        });
        ns.ip(&["link", "add", "ve", "type", "veth", "peer", "name", "vf"])
            .unwrap();
        wait_for(&runtime, &mut links, "ve and vf", |t| {
            t.contains_key("ve") && t.contains_key("vf")
        });

        // Overrun: while the runtime is not polled, thousands of notifications (each over a
        // kilobyte) fill the socket's buffer and the kernel drops the rest. The last changes
        // (a rename, a link created, one deleted) are among the dropped ones: only the
        // re-dump after ENOBUFS can show them.
        let batch = std::env::temp_dir().join(format!("tandem-lmon-{}.batch", std::process::id()));
        let mut lines = String::new();
        for _ in 0..1000 {
            lines.push_str("link set va down\nlink set va up\n");
        }
        lines.push_str("link set va down\nlink set va name final0\n");
        lines.push_str("link add vc type veth peer name vd\nlink del ve\n");
        std::fs::write(&batch, lines).unwrap();
        ns.ip(&["-batch", batch.to_str().unwrap()]).unwrap();
        let _ = std::fs::remove_file(&batch);
        // The monitor's socket (route netlink, group RTMGRP_LINK) did drop notifications.
        let sockets = std::fs::read_to_string("/proc/thread-self/net/netlink").unwrap();
        let dropped = sockets.lines().skip(1).any(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&"0")
                && fields.get(3) == Some(&"00000001")
                && fields.get(8).is_some_and(|drops| *drops != "0")
        });
        assert!(dropped, "no overrun happened:\n{sockets}");
        let table = wait_for(&runtime, &mut links, "the state after the overrun", |t| {
            t.get("final0").is_some_and(|l| !l.admin_up)
                && t.contains_key("vc")
                && t.contains_key("vd")
        });
        let names: Vec<&str> = table.keys().map(String::as_str).collect();
        assert_eq!(names, ["final0", "lo", "peer", "vc", "vd"], "{table:?}");
    })
    .unwrap();
}
