//! Validation of `use_vmac` (keepalived's VRRP virtual MAC): carried out now, so a config with
//! it is clean; what remains refused or warned about names the field and the fix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tandem_config::validate::{Issue, Severity};
use tandem_config::{text, validate};

const BASE: &str = r#"
[system]
hostname = "lb1"

[[interfaces]]
name = "eth0"
addresses = ["192.0.2.2/24", "2001:db8::2/64"]

[[interfaces]]
name = "eth1"
addresses = ["198.51.100.1/24"]
"#;

/// `BASE` plus one instance per `(name, vrid, vip, extra lines)`.
fn config(instances: &[(&str, u8, &str, &str)]) -> Vec<Issue> {
    let mut toml = BASE.to_owned();
    for (name, vrid, vip, extra) in instances {
        let prefix = if vip.contains(':') { 64 } else { 24 };
        toml.push_str(&format!(
            "\n[[vrrp]]\nname = \"{name}\"\nvrid = {vrid}\ninterface = \"eth0\"\npriority = 150\nuse_vmac = true\n{extra}\n\n[[vrrp.vips]]\naddress = \"{vip}\"\nprefix = {prefix}\n"
        ));
    }
    let parsed = text::from_toml(&toml).unwrap_or_else(|e| panic!("test config: {e}\n{toml}"));
    validate(&parsed)
}

#[test]
fn use_vmac_is_clean_for_ipv4_and_ipv6_on_one_vrid() {
    // Default names: vrrp.51 and vrrp6.51, as keepalived names them.
    let found = config(&[
        ("web4", 51, "192.0.2.100", ""),
        ("web6", 51, "2001:db8::100", ""),
        ("named", 52, "192.0.2.101", "vmac_interface = \"vip52\""),
    ]);
    assert_eq!(found, vec![]);
}

#[test]
fn a_vmac_name_is_one_instances() {
    let found = config(&[
        ("web", 51, "192.0.2.100", "vmac_interface = \"vmac\""),
        ("api", 52, "192.0.2.101", "vmac_interface = \"vmac\""),
    ]);
    assert_eq!(found.len(), 1, "{found:#?}");
    let issue = &found[0];
    assert_eq!(issue.severity, Severity::Error);
    assert!(issue.path.contains("vrrp \"api\""), "{issue}");
    for words in ["also the macvlan of vrrp \"web\"", "rename one"] {
        assert!(issue.message.contains(words), "{issue}");
    }
}

#[test]
fn an_address_on_another_interface_keeps_that_interfaces_mac() {
    let mut toml = BASE.to_owned();
    toml.push_str(
        "\n[[vrrp]]\nname = \"web\"\nvrid = 51\ninterface = \"eth0\"\npriority = 150\nuse_vmac = true\n\n\
         [[vrrp.vips]]\naddress = \"192.0.2.100\"\nprefix = 24\n\n\
         [[vrrp.vips]]\naddress = \"198.51.100.100\"\nprefix = 24\ninterface = \"eth1\"\n",
    );
    let found = validate(&text::from_toml(&toml).unwrap());
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].severity, Severity::Warning);
    assert!(
        found[0].message.contains("198.51.100.100")
            && found[0]
                .message
                .contains("stays there with that interface's own MAC"),
        "{}",
        found[0]
    );
}

#[test]
fn unicast_peers_keep_the_adverts_on_the_interface_and_say_so() {
    let found = config(&[("web", 51, "192.0.2.100", "unicast_peers = [\"192.0.2.3\"]")]);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].severity, Severity::Warning);
    assert!(found[0].message.contains("vmac_xmit_base"), "{}", found[0]);
}
