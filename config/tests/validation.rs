//! Validation names the field and the fix: each case breaks one rule of an otherwise clean
//! config and expects exactly that rule's finding (severity, where, and the words that say
//! what to do), and the clean config has no findings at all.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tandem_config::validate::{has_errors, Issue, Severity};
use tandem_config::{text, validate};

/// A director with one VRRP instance and one DR service over two real servers: no findings.
const CLEAN: &str = r#"
[system]
hostname = "lb1"

[[interfaces]]
name = "eth0"
addresses = ["192.0.2.2/24"]

[[interfaces]]
name = "eth1"
addresses = ["198.51.100.1/24"]

[[vrrp]]
name = "web"
vrid = 10
interface = "eth0"
priority = 150
advert_interval_cs = 100

[[vrrp.vips]]
address = "192.0.2.10"
prefix = 24

[[virtual_services]]
address = "192.0.2.10"
port = 80
protocol = "tcp"
scheduler = "wrr"
forwarding = "dr"

[virtual_services.check]
kind = "tcp"

[[virtual_services.real_servers]]
address = "192.0.2.21"
weight = 1

[[virtual_services.real_servers]]
address = "192.0.2.22"
weight = 3
"#;

fn issues(toml: &str) -> Vec<Issue> {
    let config = text::from_toml(toml).unwrap_or_else(|e| panic!("test config: {e}\n{toml}"));
    validate(&config)
}

/// `CLEAN` with `from` replaced by `to` (which must occur exactly once).
fn broken(from: &str, to: &str) -> String {
    assert_eq!(CLEAN.matches(from).count(), 1, "{from:?} must occur once");
    CLEAN.replacen(from, to, 1)
}

fn expect_only(toml: &str, severity: Severity, path: &str, words: &[&str]) {
    let found = issues(toml);
    assert_eq!(found.len(), 1, "expected one finding, got {found:#?}");
    let issue = &found[0];
    assert_eq!(issue.severity, severity, "{issue}");
    assert!(
        issue.path.contains(path),
        "path of {issue} should name {path}"
    );
    for word in words {
        assert!(issue.message.contains(word), "{issue} should say {word:?}");
    }
}

#[test]
fn the_clean_config_has_no_findings() {
    assert_eq!(issues(CLEAN), vec![]);
}

#[test]
fn vrrp_rules_name_the_instance_and_the_fix() {
    expect_only(
        &broken("vrid = 10", "vrid = 0"),
        Severity::Error,
        "vrrp \"web\"",
        &["virtual_router_id 0", "1 to 255"],
    );
    expect_only(
        &broken("priority = 150", "priority = 0"),
        Severity::Error,
        "vrrp \"web\"",
        &["priority 0", "1 to 254"],
    );
    expect_only(
        &broken("interface = \"eth0\"", "interface = \"eth9\""),
        Severity::Error,
        "vrrp \"web\"",
        &["eth9", "not configured"],
    );
    expect_only(
        &broken(
            "advert_interval_cs = 100",
            "version = \"v2\"\nadvert_interval_cs = 50",
        ),
        Severity::Error,
        "vrrp \"web\"",
        &["50 cs", "use version v3"],
    );
    // The service on the old VIP is then warned about too (nobody answers for it).
    let found = issues(&broken(
        "address = \"192.0.2.10\"\nprefix",
        "address = \"203.0.113.10\"\nprefix",
    ));
    assert!(
        found.iter().any(|i| i.severity == Severity::Error
            && i.path == "vrrp \"web\""
            && i.message.contains("203.0.113.10 is not inside any subnet")
            && i.message.contains("add the subnet to the interface")),
        "{found:#?}"
    );
}

#[test]
fn a_second_instance_with_the_same_id_on_the_same_link_is_refused() {
    let toml = format!(
        "{CLEAN}\n[[vrrp]]\nname = \"mail\"\nvrid = 10\ninterface = \"eth0\"\n\n[[vrrp.vips]]\naddress = \"192.0.2.11\"\nprefix = 24\n"
    );
    let found = issues(&toml);
    assert!(has_errors(&found));
    assert!(
        found.iter().any(|i| i.path.contains("vrrp \"mail\"")
            && i.message
                .contains("virtual_router_id 10 is already used by vrrp \"web\"")
            && i.message.contains("pick another id")),
        "{found:#?}"
    );
}

#[test]
fn dr_and_tun_cannot_change_the_port() {
    for forwarding in ["dr", "tun"] {
        let toml = broken(
            "address = \"192.0.2.22\"\nweight = 3",
            "address = \"192.0.2.22\"\nport = 8080\nweight = 3",
        )
        .replace(
            "forwarding = \"dr\"",
            &format!("forwarding = \"{forwarding}\""),
        );
        expect_only(
            &toml,
            Severity::Error,
            "real_server 192.0.2.22:8080",
            &[
                &format!(
                    "{} cannot change the port (80 to 8080)",
                    forwarding.to_uppercase()
                ),
                "use NAT",
            ],
        );
    }
    // NAT can: the director rewrites the port.
    let nat = broken(
        "address = \"192.0.2.22\"\nweight = 3",
        "address = \"192.0.2.22\"\nport = 8080\nweight = 3",
    )
    .replace("forwarding = \"dr\"", "forwarding = \"nat\"");
    assert!(!has_errors(&issues(&nat)), "{:#?}", issues(&nat));
}

#[test]
fn dr_real_servers_must_be_on_a_connected_segment() {
    expect_only(
        &broken("address = \"192.0.2.22\"", "address = \"203.0.113.22\""),
        Severity::Error,
        "real_server 203.0.113.22",
        &["directly connected", "use TUN"],
    );
}

#[test]
fn every_problem_is_reported_at_once() {
    let toml = broken("vrid = 10", "vrid = 0").replace("priority = 150", "priority = 0");
    let found = issues(&toml);
    assert_eq!(
        found
            .iter()
            .filter(|i| i.severity == Severity::Error)
            .count(),
        2,
        "{found:#?}"
    );
}

/// Two public ports bonded, the bond carrying the address; `bond_extra` is appended to the
/// bond (its own `slaves` line replaces the two ports), `rest` to the config.
fn bonded(bond_extra: &str, rest: &str) -> Vec<Issue> {
    let slaves = if bond_extra.contains("slaves") {
        ""
    } else {
        "slaves = [\"public\", \"public2\"]"
    };
    let text = format!(
        r#"
[system]
hostname = "lb1"

[[interfaces]]
name = "public"
role = "public"

[[interfaces]]
name = "public2"
role = "public2"

[[interfaces]]
name = "peer"
role = "peer"

[[interfaces]]
name = "bond0"
addresses = ["192.0.2.2/24"]

[[bonds]]
name = "bond0"
{slaves}
{bond_extra}
{rest}
"#
    );
    validate(&text::from_toml(&text).unwrap())
}

fn only(issues: &[Issue], severity: Severity, words: &str) {
    assert!(
        issues.iter().any(|i| i.severity == severity
            && i.path == "bond \"bond0\""
            && i.message.contains(words)),
        "no {severity:?} naming bond \"bond0\" with {words:?} in {issues:#?}"
    );
}

#[test]
fn a_bond_of_two_ports_with_nothing_but_its_ports_is_clean() {
    let issues = bonded("", "");
    assert!(issues.is_empty(), "{issues:#?}");
}

#[test]
fn bond_combinations_the_kernel_or_the_pair_would_refuse_are_errors_with_their_path() {
    let issues = bonded("mode = \"802.3ad\"\nfail_over_mac = \"active\"", "");
    only(&issues, Severity::Error, "remove fail_over_mac");
    let issues = bonded(
        "monitor = { arp = { interval_ms = 100, targets = [], validate = \"all\" } }",
        "",
    );
    only(
        &issues,
        Severity::Error,
        "add at least one address to targets",
    );
    let issues = bonded("", "[[bonds]]\nname = \"bond1\"\nslaves = [\"public2\"]\n");
    assert!(
        issues.iter().any(|i| i.severity == Severity::Error
            && i.path == "bond \"bond1\""
            && i.message.contains("a port can be in one bond only")),
        "{issues:#?}"
    );
    let issues = bonded("slaves = [\"public\", \"peer\"]", "");
    only(&issues, Severity::Error, "is the peer link");
    let issues = bonded("mtu = 40", "");
    only(&issues, Severity::Error, "mtu 40");
    assert!(has_errors(&bonded(
        "mode = \"balance-rr\"\nprimary = \"public\"",
        ""
    )));
}

#[test]
fn bond_settings_that_silently_do_nothing_are_warned_about() {
    only(
        &bonded("monitor = { mii = { interval_ms = 0 } }", ""),
        Severity::Warning,
        "disables link monitoring",
    );
    only(
        &bonded(
            "monitor = { arp = { interval_ms = 100, targets = [\"192.0.2.1\"], validate = \"none\" } }",
            "",
        ),
        Severity::Warning,
        "validate = \"all\"",
    );
    only(
        &bonded("ad_select = \"count\"", ""),
        Severity::Warning,
        "802.3ad only",
    );
    only(
        &bonded("mode = \"balance-rr\"\nprimary_reselect = \"failure\"", ""),
        Severity::Warning,
        "modes with a primary",
    );
}

/// `CLEAN` with one load-sharing group appended (`extra` lines inside it).
fn with_group(extra: &str) -> String {
    format!(
        "{CLEAN}\n[[clusterip]]\nname = \"share\"\nvip = \"192.0.2.50\"\ninterface = \"eth0\"\nlocal_nodes = [1, 3]\ntotal_nodes = 4\n{extra}\n"
    )
}

#[test]
fn load_sharing_groups_name_the_field_and_the_fix() {
    assert_eq!(issues(&with_group("")), vec![]);
    expect_only(
        &with_group("unicast_flood_mac = \"03:54:44:00:00:01\""),
        Severity::Error,
        "clusterip \"share\"",
        &["not a unicast MAC", "02:54:44:00:00:01"],
    );
    expect_only(
        &with_group("unicast_flood_mac = \"00:54:44:00:00:01\""),
        Severity::Warning,
        "clusterip \"share\"",
        &["globally administered", "locally administered"],
    );
    assert_eq!(
        issues(&with_group("unicast_flood_mac = \"02:54:44:00:00:01\"")),
        vec![]
    );
    expect_only(
        &with_group("multicast_mac = \"00:00:5e:00:00:01\""),
        Severity::Error,
        "clusterip \"share\"",
        &["not a multicast MAC", "unicast_flood_mac"],
    );
    // The shared address may be no VRRP address and no interface address.
    let found = issues(&with_group("").replace("vip = \"192.0.2.50\"", "vip = \"192.0.2.10\""));
    assert!(
        found.iter().any(|i| i.path.contains("clusterip \"share\"")
            && i.message.contains("also a VRRP virtual address")),
        "{found:#?}"
    );
    let found = issues(&with_group("").replace("vip = \"192.0.2.50\"", "vip = \"192.0.2.2\""));
    assert!(
        found
            .iter()
            .any(|i| i.message.contains("is an interface address")),
        "{found:#?}"
    );
    expect_only(
        &with_group("").replace("local_nodes = [1, 3]\n", ""),
        Severity::Warning,
        "clusterip \"share\"",
        &["local_nodes is empty", "serves every bucket"],
    );
}

#[test]
fn a_pair_config_splits_the_buckets_and_refuses_shared_local_nodes() {
    let pair = "\n[pair.a]\nhostname = \"lb1\"\n\n[pair.b]\nhostname = \"lb2\"\n";
    let listed = format!("{}{pair}", with_group(""));
    let found = issues(&listed);
    assert!(
        found.iter().any(|i| i.severity == Severity::Error
            && i.path == "clusterip \"share\".local_nodes"
            && i.message.contains("box a serves the odd buckets")),
        "{found:#?}"
    );
    let split = format!(
        "{}{pair}",
        with_group("").replace("local_nodes = [1, 3]\n", "")
    );
    // The pair's other findings (both boxes with one address) are not about the group.
    let found = issues(&split);
    assert!(
        !found.iter().any(|i| i.path.contains("clusterip")),
        "{found:#?}"
    );
    let config = text::from_toml(&split).unwrap();
    let a = config.for_box(tandem_config::model::Role::A);
    let b = config.for_box(tandem_config::model::Role::B);
    assert_eq!(
        a.clusterip[0]
            .local_nodes
            .iter()
            .copied()
            .collect::<Vec<u8>>(),
        [1, 3]
    );
    assert_eq!(
        b.clusterip[0]
            .local_nodes
            .iter()
            .copied()
            .collect::<Vec<u8>>(),
        [2, 4]
    );
}

#[test]
fn a_fwmark_nat_service_may_leave_its_real_servers_port_to_the_packet() {
    // One fwmark service balancing ports 80 and 443 by NAT to servers without a port: IPVS
    // keeps each packet's destination port (`dest->port ? dest->port : vport`).
    let toml = CLEAN.replace("forwarding = \"dr\"", "forwarding = \"nat\"")
        + r#"
[[fwmark_rules]]
mark = 7
protocol = "tcp"
destination = "192.0.2.10/32"
port_first = 80
port_last = 80

[[fwmark_rules]]
mark = 7
protocol = "tcp"
destination = "192.0.2.10/32"
port_first = 443
port_last = 443

[[virtual_services]]
name = "web-ports"
fwmark = 7
protocol = "tcp"
scheduler = "rr"
forwarding = "nat"

[[virtual_services.real_servers]]
address = "198.51.100.21"

[[virtual_services.real_servers]]
address = "198.51.100.22"
"#;
    let found = issues(&toml);
    assert!(
        !found
            .iter()
            .any(|i| i.path.contains("web-ports") || i.message.contains("port")),
        "{found:#?}"
    );
}

#[test]
fn notification_addresses_may_be_local_mailboxes_but_not_garbage() {
    let with =
        |to: &str| format!("{CLEAN}\n[notify]\nemail_to = [{to}]\nsmtp_server = \"192.0.2.25\"\n");
    assert_eq!(issues(&with("\"acassen\", \"ops@example.com\"")), vec![]);
    for bad in [
        "\"ops@\"",
        "\"@example.com\"",
        "\"a b@example.com\"",
        "\"a@b@c\"",
    ] {
        expect_only(
            &with(bad),
            Severity::Error,
            "notify",
            &["is not a mailbox", "user@domain"],
        );
    }
}

#[test]
fn a_load_sharing_interface_without_an_own_address_is_warned_about() {
    let toml = with_group("").replace(
        "name = \"eth0\"\naddresses = [\"192.0.2.2/24\"]",
        "name = \"eth0\"\naddresses = [\"2001:db8::2/64\"]",
    );
    let found = issues(&toml);
    assert!(
        found.iter().any(|i| i.severity == Severity::Warning
            && i.path.contains("clusterip \"share\"")
            && i.message.contains("no IPv4 address of this box's own")
            && i.message.contains("give the interface an address")),
        "{found:#?}"
    );
}

#[test]
fn syslog_and_time_servers_must_be_unicast_and_listed_once() {
    let managed = |extra: &str| {
        broken(
            "[system]\n",
            &format!("[management]\n{extra}\n\n[system]\n"),
        )
    };
    let clean = managed(
        r#"syslog = [{ address = "198.51.100.5:514" }, { address = "198.51.100.5:514", transport = "tcp" }]
time_servers = ["198.51.100.1", "2001:db8::1"]"#,
    );
    assert_eq!(issues(&clean), vec![]);
    expect_only(
        &managed(r#"syslog = [{ address = "0.0.0.0:514" }]"#),
        Severity::Error,
        "management.syslog[0]",
        &["not a syslog server's address", "unicast"],
    );
    expect_only(
        &managed(r#"syslog = [{ address = "198.51.100.5:0" }]"#),
        Severity::Error,
        "management.syslog[0]",
        &["port 0", "514"],
    );
    expect_only(
        &managed(
            r#"syslog = [{ address = "198.51.100.5:514" }, { address = "198.51.100.5:514" }]"#,
        ),
        Severity::Error,
        "management.syslog[1]",
        &["listed twice", "udp"],
    );
    expect_only(
        &managed(r#"time_servers = ["224.0.1.1"]"#),
        Severity::Error,
        "management.time_servers[0]",
        &["not a time server's address"],
    );
    expect_only(
        &managed(r#"time_servers = ["198.51.100.1", "198.51.100.1"]"#),
        Severity::Error,
        "management.time_servers[1]",
        &["listed twice"],
    );
    // Unknown keys and facilities are refused by the parser, naming them.
    let typo = managed(r#"syslog = [{ address = "198.51.100.5:514", facility = "local9" }]"#);
    let error = text::from_toml(&typo).unwrap_err().to_string();
    assert!(error.contains("local9"), "{error}");
}

#[test]
fn a_vmac_name_must_be_its_own_and_needs_use_vmac() {
    expect_only(
        &broken(
            "advert_interval_cs = 100\n",
            "advert_interval_cs = 100\nvmac_interface = \"vrrp.10\"\n",
        ),
        Severity::Warning,
        "vrrp \"web\"",
        &["use_vmac is off", "set use_vmac = true"],
    );
    let clash = issues(&broken(
        "advert_interval_cs = 100\n",
        "advert_interval_cs = 100\nuse_vmac = true\nvmac_interface = \"eth1\"\n",
    ));
    assert!(
        clash.iter().any(|issue| issue.severity == Severity::Error
            && issue.message.contains("already an interface")),
        "{clash:?}"
    );
}

#[test]
fn http_status_ranges_trust_sets_and_dns_names_are_checked() {
    let with_check = |check: &str| broken("[virtual_services.check]\nkind = \"tcp\"\n", check);
    let https = r#"[virtual_services.check.kind.http]
path = "/health"
status = "200-299 401"
tls = true
tls_ca = "internal"
"#;
    let trust = "\n[[tls_trust]]\nname = \"internal\"\npem = \"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\"\n";
    assert_eq!(issues(&(with_check(https) + trust)), vec![]);
    expect_only(
        &with_check(https),
        Severity::Error,
        "virtual_server \"192.0.2.10:80/tcp\"",
        &["tls_ca \"internal\" names no [[tls_trust]] set"],
    );
    expect_only(
        &(with_check(&https.replace("200-299 401", "200-700")) + trust),
        Severity::Error,
        "virtual_server \"192.0.2.10:80/tcp\"",
        &["200-700", "100 to 599"],
    );
    expect_only(
        &(with_check(&https.replace("200-299 401", "299-200")) + trust),
        Severity::Error,
        "virtual_server \"192.0.2.10:80/tcp\"",
        &["runs backwards", "200-299"],
    );
    expect_only(
        &(with_check(&https.replace("tls = true", "tls = false")) + trust),
        Severity::Error,
        "virtual_server \"192.0.2.10:80/tcp\"",
        &["plain HTTP check", "tls = true"],
    );
    expect_only(
        &(with_check(https) + &trust.replace("-----BEGIN CERTIFICATE-----", "garbage")),
        Severity::Error,
        "tls_trust \"internal\"",
        &["no certificate"],
    );
    let bad_status = text::from_toml(&with_check(&https.replace("200-299 401", "2xx")));
    assert!(bad_status
        .unwrap_err()
        .to_string()
        .contains("\"2xx\" is not an HTTP status code"),);
    expect_only(
        &with_check("[virtual_services.check.kind.dns]\nname = \"bad..name\"\n"),
        Severity::Error,
        "virtual_server \"192.0.2.10:80/tcp\"",
        &["DNS check name \"bad..name\"", "empty label"],
    );
    assert_eq!(
        issues(&with_check(
            "[virtual_services.check.kind.dns]\nrecord_type = \"A\"\n"
        )),
        vec![]
    );
    assert_eq!(
        issues(&broken("kind = \"tcp\"\n", "kind = \"ping\"\n")),
        vec![]
    );
}
