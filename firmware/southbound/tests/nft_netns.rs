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

/// Source NAT for NAT real servers (`inet tandem_nat`): a router namespace between a private
/// and a public segment; a real server's own connection to an outside host arrives from the
/// router's public address while the rule is in, from its own address once the table is gone,
/// and traffic back out of the inside port keeps its source.
#[test]
fn snat_masquerades_what_the_real_servers_send_out_of_other_ports() {
    use std::io::Read;
    use std::net::{SocketAddr, TcpListener, TcpStream};
    use std::time::Duration;
    use tandem_lab::netns::veth_pair;
    use tandem_southbound::snat::{self, MasqueradeRule};

    let router = Netns::new("snatr").unwrap();
    let server = Netns::new("snats").unwrap();
    let outside = Netns::new("snato").unwrap();
    veth_pair(&router, "private", &server, "eth0").unwrap();
    veth_pair(&router, "public", &outside, "eth0").unwrap();
    for (ns, link, address) in [
        (&router, "private", "198.51.100.1/24"),
        (&router, "public", "192.0.2.1/24"),
        (&server, "eth0", "198.51.100.10/24"),
        (&outside, "eth0", "192.0.2.100/24"),
    ] {
        ns.ip(&["addr", "add", address, "dev", link]).unwrap();
        ns.ip(&["link", "set", link, "up"]).unwrap();
        ns.ip(&["link", "set", "lo", "up"]).unwrap();
    }
    server
        .ip(&["route", "add", "default", "via", "198.51.100.1"])
        .unwrap();
    // The outside host can route back, so without SNAT the real server's own address shows.
    outside
        .ip(&["route", "add", "198.51.100.0/24", "via", "192.0.2.1"])
        .unwrap();
    router
        .exec("sysctl", &["-qw", "net.ipv4.ip_forward=1"])
        .unwrap();

    // Where a connection from the real server to 192.0.2.100:9000 appears to come from.
    let seen_source = || -> std::net::IpAddr {
        let listener = outside
            .run(|| TcpListener::bind("192.0.2.100:9000").unwrap())
            .unwrap();
        let client = server
            .spawn(|| {
                let to: SocketAddr = "192.0.2.100:9000".parse().unwrap();
                let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(5)).unwrap();
                let mut byte = [0u8; 1];
                let _ = stream.read(&mut byte);
            })
            .unwrap();
        let (stream, peer) = listener.accept().unwrap();
        drop(stream);
        client.join().unwrap().unwrap();
        peer.ip()
    };

    assert_eq!(
        seen_source(),
        "198.51.100.10".parse::<std::net::IpAddr>().unwrap()
    );
    let rules = vec![MasqueradeRule {
        network: "198.51.100.0".parse().unwrap(),
        prefix_len: 24,
        inside_port: "private".into(),
    }];
    router.run(move || snat::replace(&rules)).unwrap().unwrap();
    let text = router
        .exec("nft", &["list", "table", "inet", "tandem_nat"])
        .unwrap();
    assert!(
        text.contains("type nat hook postrouting priority srcnat; policy accept;"),
        "{text}"
    );
    assert!(
        text.contains("ip saddr 198.51.100.0/24 oifname != \"private\" masquerade"),
        "{text}"
    );
    assert_eq!(
        seen_source(),
        "192.0.2.1".parse::<std::net::IpAddr>().unwrap()
    );

    router.run(|| snat::replace(&[])).unwrap().unwrap();
    let ruleset = router.exec("nft", &["list", "ruleset"]).unwrap();
    assert!(!ruleset.contains("tandem_nat"), "{ruleset}");
    assert_eq!(
        seen_source(),
        "198.51.100.10".parse::<std::net::IpAddr>().unwrap()
    );
}
