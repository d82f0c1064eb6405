//! nftables firewall marks against this machine's kernel, in a fresh network namespace: rules
//! install, a second set replaces the first in one batch, an empty set removes Tandem's table,
//! and another table survives it all. Read back with the host's `nft list ruleset`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use tandem_lab::netns::Netns;
use tandem_southbound::nft::{replace, L4Proto, MarkRule};

fn rule(mark: u32, dst: &str, prefix_len: u8, ports: Option<(u16, u16)>) -> MarkRule {
    MarkRule {
        mark,
        protocol: L4Proto::Tcp,
        destination: dst.parse().unwrap(),
        prefix_len,
        ports,
    }
}

#[test]
fn rules_install_and_replace_atomically_in_a_netns() {
    let netns = Netns::new("nft").unwrap();
    let install = |rules: Vec<MarkRule>| netns.run(move || replace(&rules)).unwrap().unwrap();
    let ruleset = || netns.exec("nft", &["list", "ruleset"]).unwrap();

    // Someone else's table must survive our replacements.
    netns.exec("nft", &["add", "table", "ip", "other"]).unwrap();
    install(vec![
        rule(7, "192.0.2.10", 32, Some((80, 80))),
        MarkRule {
            protocol: L4Proto::Udp,
            ..rule(8, "198.51.100.0", 24, Some((5000, 5010)))
        },
        rule(9, "2001:db8::", 64, None),
    ]);
    let text = ruleset();
    assert!(text.contains("table inet tandem {"), "{text}");
    assert!(text.contains("chain prerouting {"), "{text}");
    assert!(
        text.contains("type filter hook prerouting priority mangle; policy accept;"),
        "{text}"
    );
    assert!(
        text.contains("ip daddr 192.0.2.10 tcp dport 80 meta mark set 0x00000007"),
        "{text}"
    );
    assert!(
        text.contains("ip daddr 198.51.100.0/24 udp dport 5000-5010 meta mark set 0x00000008"),
        "{text}"
    );
    assert!(
        text.contains("meta l4proto tcp ip6 daddr 2001:db8::/64 meta mark set 0x00000009"),
        "{text}"
    );
    assert!(text.contains("table ip other"), "{text}");

    install(vec![rule(11, "203.0.113.0", 24, Some((443, 443)))]);
    let text = ruleset();
    assert!(
        text.contains("ip daddr 203.0.113.0/24 tcp dport 443 meta mark set 0x0000000b"),
        "{text}"
    );
    assert!(!text.contains("0x00000007"), "old rules replaced: {text}");
    assert_eq!(text.matches("meta mark set").count(), 1, "{text}");

    install(Vec::new());
    let text = ruleset();
    assert!(!text.contains("tandem"), "{text}");
    assert!(text.contains("table ip other"), "{text}");
}

/// Accept_Mode enforcement (`inet tandem_vrrp`): local delivery to the listed addresses stops
/// and is counted, the LVS table beside it is untouched, and an empty list removes the table.
#[test]
fn vip_filter_drops_local_delivery_counts_it_and_leaves_the_lvs_table_alone() {
    use tandem_southbound::vip_filter;

    let netns = Netns::new("nftvip").unwrap();
    netns.ip(&["link", "set", "lo", "up"]).unwrap();
    netns
        .ip(&["addr", "add", "192.0.2.100/32", "dev", "lo"])
        .unwrap();
    netns
        .ip(&["addr", "add", "2001:db8::100/128", "dev", "lo", "nodad"])
        .unwrap();
    let ping = |address: &str| netns.exec("ping", &["-c", "1", "-W", "1", address]).is_ok();
    assert!(
        ping("192.0.2.100") && ping("2001:db8::100"),
        "VIPs answer before"
    );

    netns
        .run(|| replace(&[rule(7, "192.0.2.10", 32, Some((80, 80)))]))
        .unwrap()
        .unwrap();
    let vips: Vec<std::net::IpAddr> = vec![
        "192.0.2.100".parse().unwrap(),
        "2001:db8::100".parse().unwrap(),
    ];
    netns
        .run(move || vip_filter::replace(&vips))
        .unwrap()
        .unwrap();
    let text = netns
        .exec("nft", &["list", "table", "inet", "tandem_vrrp"])
        .unwrap();
    assert!(text.contains("chain accept_mode {"), "{text}");
    assert!(
        text.contains("type filter hook input priority 110; policy accept;")
            || text.contains("type filter hook input priority filter + 110; policy accept;"),
        "{text}"
    );
    assert!(
        text.contains("icmpv6 type 135-136 accept")
            || text.contains("icmpv6 type nd-neighbor-solicit-nd-neighbor-advert accept"),
        "{text}"
    );
    assert!(
        text.contains("ip daddr 192.0.2.100 counter packets 0 bytes 0 drop"),
        "{text}"
    );
    assert!(
        text.contains("ip6 daddr 2001:db8::100 counter packets 0 bytes 0 drop"),
        "{text}"
    );

    assert!(!ping("192.0.2.100"), "IPv4 VIP still answers");
    assert!(!ping("2001:db8::100"), "IPv6 VIP still answers");
    assert!(ping("127.0.0.1"), "other local traffic must pass");
    let dropped = netns.run(vip_filter::dropped_packets).unwrap().unwrap();
    assert!(dropped >= 2, "dropped {dropped}");
    let text = netns.exec("nft", &["list", "ruleset"]).unwrap();
    assert!(
        text.contains("table inet tandem {"),
        "LVS table kept: {text}"
    );

    netns.run(|| vip_filter::replace(&[])).unwrap().unwrap();
    let text = netns.exec("nft", &["list", "ruleset"]).unwrap();
    assert!(!text.contains("tandem_vrrp"), "{text}");
    assert!(text.contains("table inet tandem {"), "{text}");
    assert_eq!(netns.run(vip_filter::dropped_packets).unwrap().unwrap(), 0);
    assert!(
        ping("192.0.2.100") && ping("2001:db8::100"),
        "VIPs answer after"
    );
    netns.run(|| replace(&[])).unwrap().unwrap();
}
