//! Interface addresses from the config, as [`NetOp`]s: desired vs kernel.
//!
//! Adds what the config names and the kernel lacks (so drift is repaired at every apply), and
//! removes what the previous config named, the new one does not, and the kernel still has.
//! Addresses no config of ours named (VRRP VIPs, link-locals, what an operator added by hand on
//! a host) are never removed here.

use std::net::IpAddr;

use tandem_config::Config;
use tandem_southbound::net::NetOp;

/// Operations that move interface addresses from `old` (None at boot) to `config`. `present`
/// lists what the kernel has per interface.
pub fn address_ops(
    old: Option<&Config>,
    config: &Config,
    present: &[(String, Vec<(IpAddr, u8)>)],
) -> Vec<NetOp> {
    let mut ops = Vec::new();
    for interface in old.iter().flat_map(|old| old.interfaces.iter()) {
        let link = interface.name.as_str();
        let wanted = config.interface(link);
        let have = present
            .iter()
            .find(|(name, _)| name == link)
            .map(|(_, a)| a.as_slice())
            .unwrap_or_default();
        for cidr in interface.addresses.iter() {
            let still_wanted = wanted.is_some_and(|w| w.addresses.iter().any(|c| c == cidr));
            if !still_wanted && have.contains(&(cidr.addr, cidr.prefix)) {
                ops.push(NetOp::DelAddress {
                    link: link.to_owned(),
                    address: cidr.addr,
                    prefix_len: cidr.prefix,
                });
            }
        }
    }
    for interface in config.interfaces.iter() {
        let link = interface.name.as_str();
        let have = present
            .iter()
            .find(|(name, _)| name == link)
            .map(|(_, a)| a.as_slice());
        ops.push(NetOp::SetLinkUp {
            name: link.to_owned(),
        });
        for cidr in interface.addresses.iter() {
            let wanted = (cidr.addr, cidr.prefix);
            if !have.is_some_and(|have| have.contains(&wanted)) {
                ops.push(NetOp::AddAddress {
                    link: link.to_owned(),
                    address: cidr.addr,
                    prefix_len: cidr.prefix,
                });
            }
        }
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_missing_addresses_are_added_and_nothing_is_removed() {
        let config = tandem_config::text::from_toml(
            r#"
[system]
hostname = "box-a"
[[interfaces]]
name = "public"
addresses = ["192.0.2.1/24", "2001:db8::1/64"]
"#,
        )
        .unwrap();
        let have = vec![(
            "public".to_owned(),
            vec![
                ("192.0.2.1".parse().unwrap(), 24),
                ("192.0.2.99".parse().unwrap(), 32),
            ],
        )];
        let ops = address_ops(None, &config, &have);
        assert_eq!(
            ops,
            vec![
                NetOp::SetLinkUp {
                    name: "public".into()
                },
                NetOp::AddAddress {
                    link: "public".into(),
                    address: "2001:db8::1".parse().unwrap(),
                    prefix_len: 64
                },
            ]
        );
    }

    #[test]
    fn only_what_the_old_config_named_is_removed() {
        let old = tandem_config::text::from_toml(
            r#"
[[interfaces]]
name = "public"
addresses = ["192.0.2.1/24", "192.0.2.2/24"]
"#,
        )
        .unwrap();
        let new = tandem_config::text::from_toml(
            r#"
[[interfaces]]
name = "public"
addresses = ["192.0.2.1/24", "192.0.2.3/24"]
"#,
        )
        .unwrap();
        let have = vec![(
            "public".to_owned(),
            vec![
                ("192.0.2.1".parse().unwrap(), 24),
                ("192.0.2.2".parse().unwrap(), 24),
                ("192.0.2.99".parse().unwrap(), 32),
            ],
        )];
        let ops = address_ops(Some(&old), &new, &have);
        assert_eq!(
            ops,
            vec![
                NetOp::DelAddress {
                    link: "public".into(),
                    address: "192.0.2.2".parse().unwrap(),
                    prefix_len: 24
                },
                NetOp::SetLinkUp {
                    name: "public".into()
                },
                NetOp::AddAddress {
                    link: "public".into(),
                    address: "192.0.2.3".parse().unwrap(),
                    prefix_len: 24
                },
            ]
        );
        // Identical configs with the kernel in step: nothing but the idempotent link-up.
        let ops = address_ops(
            Some(&new),
            &new,
            &[(
                "public".to_owned(),
                vec![
                    ("192.0.2.1".parse().unwrap(), 24),
                    ("192.0.2.3".parse().unwrap(), 24),
                ],
            )],
        );
        assert_eq!(
            ops,
            vec![NetOp::SetLinkUp {
                name: "public".into()
            }]
        );
    }
}
