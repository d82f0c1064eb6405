//! The `use_vmac` macvlan executor, its knobs and its report filter against this machine's
//! kernel, in a network namespace: a macvlan is made on its parent with the virtual MAC in
//! private mode, kept as it is, fixed in place (MAC, mode), replaced when it sits on another
//! parent, made again under a new name (the old one, which holds the MAC, deleted first), never
//! made over a link of another kind, and deleted; the knobs land in procfs of a link whose
//! name holds a dot; and the filter table drops the IGMP report a join on the macvlan sends.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::net::Ipv4Addr;

use tandem_lab::netns::Netns;
use tandem_southbound::macvlan::{
    set_sysctl, vmac_sysctls, Ensured, LinkFacts, MacvlanError, MacvlanExecutor, MacvlanSpec,
    MODE_PRIVATE,
};
use tandem_southbound::vmac_filter;

const MAC: [u8; 6] = [0x00, 0x00, 0x5e, 0x00, 0x01, 51];

fn spec(name: &str, parent: &str) -> MacvlanSpec {
    MacvlanSpec {
        name: name.into(),
        parent: parent.into(),
        mac: MAC,
        ipv6: false,
    }
}

#[test]
fn macvlans_are_made_kept_fixed_replaced_renamed_and_deleted() {
    let ns = Netns::new("mvl").unwrap();
    for (a, b) in [("va", "vb"), ("vc", "vd")] {
        ns.ip(&["link", "add", a, "type", "veth", "peer", "name", b])
            .unwrap();
        ns.ip(&["link", "set", a, "up"]).unwrap();
    }
    let indexes = |ns: &Netns| {
        let out = ns.ip(&["-o", "link", "show"]).unwrap();
        let index = |name: &str| -> u32 {
            out.lines()
                .find(|l| l.contains(&format!(" {name}@")) || l.contains(&format!(" {name}:")))
                .and_then(|l| l.split(':').next())
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        };
        (index("va"), index("vc"))
    };
    let (va, vc) = indexes(&ns);
    let steps = ns
        .run(move || {
            let exec = MacvlanExecutor::connect().unwrap();
            let mut out: Vec<(Result<Ensured, String>, Option<LinkFacts>)> = Vec::new();
            let mut step = |spec: &MacvlanSpec| {
                let ensured = exec.ensure_link(spec).map_err(|e| e.to_string());
                out.push((ensured, exec.find(&spec.name).unwrap()));
            };
            step(&spec("vrrp.51", "va"));
            step(&spec("vrrp.51", "va"));
            out
        })
        .unwrap();
    // Made: down, on va, with the MAC, private; then kept.
    let (made, facts) = &steps[0];
    assert_eq!(made, &Ok(Ensured::Created));
    let facts = facts.as_ref().unwrap();
    assert_eq!(
        (
            facts.kind.as_deref(),
            facts.parent,
            facts.mac,
            facts.mode,
            facts.up
        ),
        (
            Some("macvlan"),
            Some(va),
            Some(MAC),
            Some(MODE_PRIVATE),
            false
        )
    );
    assert_eq!(steps[1].0, Ok(Ensured::Kept));
    let detail = ns.ip(&["-d", "link", "show", "vrrp.51"]).unwrap();
    assert!(detail.contains("macvlan mode private"), "{detail}");
    assert!(detail.contains("00:00:5e:00:01:33"), "{detail}");

    // Someone changed its mode and MAC: fixed in place (same index).
    ns.ip(&[
        "link",
        "set",
        "vrrp.51",
        "address",
        "02:00:00:00:00:01",
        "type",
        "macvlan",
        "mode",
        "bridge",
    ])
    .unwrap();
    let (fixed, moved, renamed, refused, up, listed, deleted, again) = ns
        .run(move || {
            let exec = MacvlanExecutor::connect().unwrap();
            let before = exec.find("vrrp.51").unwrap().unwrap().index;
            let fixed = exec.ensure_link(&spec("vrrp.51", "va")).unwrap();
            let after = exec.find("vrrp.51").unwrap().unwrap();
            assert_eq!(after.index, before, "fixed in place");
            assert_eq!((after.mac, after.mode), (Some(MAC), Some(MODE_PRIVATE)));
            // On another parent: replaced.
            let moved = exec.ensure_link(&spec("vrrp.51", "vc")).unwrap();
            let on_vc = exec.find("vrrp.51").unwrap().unwrap().parent;
            // Renamed: the old one holds the MAC on vc and goes first.
            exec.set_up("vrrp.51").unwrap();
            let renamed = exec.ensure_link(&spec("vmac51", "vc")).unwrap();
            let old_gone = exec.find("vrrp.51").unwrap().is_none();
            // A veth under the name is never touched.
            let refused = exec.ensure_link(&spec("vb", "va")).unwrap_err();
            exec.set_up("vmac51").unwrap();
            let up = exec.find("vmac51").unwrap().unwrap().up;
            let listed: Vec<String> = exec
                .virtual_router_macvlans()
                .unwrap()
                .into_iter()
                .map(|l| l.name)
                .collect();
            let deleted = exec.delete("vmac51").unwrap();
            let again = exec.delete("vmac51").unwrap();
            (
                fixed,
                (moved, on_vc, old_gone),
                renamed,
                refused,
                up,
                listed,
                deleted,
                again,
            )
        })
        .unwrap();
    assert_eq!(fixed, Ensured::Fixed);
    assert_eq!(moved, (Ensured::Replaced, Some(vc), true));
    assert_eq!(renamed, Ensured::Created);
    assert!(
        matches!(&refused, MacvlanError::NotMacvlan { kind, .. } if kind == "veth"),
        "{refused}"
    );
    assert!(refused
        .to_string()
        .contains("set vmac_interface to another name"));
    assert!(
        ns.ip(&["link", "show", "vb"]).is_ok(),
        "the veth is still there"
    );
    assert!(up);
    assert_eq!(listed, ["vmac51"]);
    assert!(deleted && !again);
    assert!(ns.ip(&["link", "show", "vmac51"]).is_err());
}

#[test]
fn knobs_reach_a_dotted_name_and_the_filter_drops_the_macvlans_igmp_report() {
    let ns = Netns::new("mvk").unwrap();
    ns.ip(&["link", "add", "va", "type", "veth", "peer", "name", "vb"])
        .unwrap();
    ns.ip(&["link", "set", "va", "up"]).unwrap();
    ns.ip(&["link", "set", "vb", "up"]).unwrap();
    let (knobs, dropped) = ns
        .run(|| {
            let exec = MacvlanExecutor::connect().unwrap();
            exec.ensure_link(&spec("vrrp.51", "va")).unwrap();
            for (key, value) in vmac_sysctls("vrrp.51", false) {
                set_sysctl(&key, value).unwrap();
            }
            let read = |knob: &str| {
                std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/vrrp.51/{knob}"))
                    .unwrap()
                    .trim()
                    .to_owned()
            };
            let knobs = [
                read("arp_ignore"),
                read("accept_local"),
                read("rp_filter"),
                read("promote_secondaries"),
            ];
            vmac_filter::replace(&["vrrp.51".to_owned()]).unwrap();
            exec.set_up("vrrp.51").unwrap();
            // Joining the VRRP group on the macvlan sends an IGMP report from it.
            let socket = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::DGRAM,
                Some(socket2::Protocol::UDP),
            )
            .unwrap();
            let index = exec.find("vrrp.51").unwrap().unwrap().index;
            socket
                .join_multicast_v4_n(
                    &Ipv4Addr::new(224, 0, 0, 18),
                    &socket2::InterfaceIndexOrAddress::Index(index),
                )
                .unwrap();
            // The report leaves at once (IGMPv3 unsolicited report on join).
            let started = std::time::Instant::now();
            let mut dropped = 0;
            while dropped == 0 && started.elapsed() < std::time::Duration::from_secs(5) {
                dropped = vmac_filter::dropped_packets().unwrap();
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            vmac_filter::replace(&[]).unwrap();
            (knobs, dropped)
        })
        .unwrap();
    assert_eq!(knobs, ["1", "1", "0", "1"].map(String::from));
    assert!(dropped >= 1, "no IGMP report dropped");
    let tables = ns.exec("nft", &["list", "tables"]).unwrap();
    assert!(!tables.contains("tandem_vmac"), "{tables}");
}

#[test]
fn a_strict_all_rp_filter_is_moved_onto_the_links_and_put_back() {
    let ns = Netns::new("mvr").unwrap();
    ns.ip(&["link", "add", "va", "type", "veth", "peer", "name", "vb"])
        .unwrap();
    let (during, after) = ns
        .run(|| {
            let read = |name: &str| {
                std::fs::read_to_string(format!("/proc/sys/net/ipv4/conf/{name}/rp_filter"))
                    .unwrap()
                    .trim()
                    .to_owned()
            };
            let write = |name: &str, value: &str| {
                std::fs::write(format!("/proc/sys/net/ipv4/conf/{name}/rp_filter"), value).unwrap()
            };
            write("all", "1");
            write("default", "0");
            write("va", "0");
            write("vb", "2");
            let moved = tandem_southbound::macvlan::move_all_rp_filter().unwrap();
            let during = ["all", "default", "va", "vb"].map(read);
            tandem_southbound::macvlan::put_back_rp_filter(&moved);
            let after = ["all", "default", "va", "vb"].map(read);
            (during, after)
        })
        .unwrap();
    // No link loosened (vb's loose 2 stays), all cleared so a macvlan's 0 counts.
    assert_eq!(during, ["0", "1", "1", "2"].map(String::from));
    assert_eq!(after, ["1", "0", "0", "2"].map(String::from));
}
