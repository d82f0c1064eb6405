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
