//! Interface addresses and MTUs from the config, as [`NetOp`]s.
//!
//! Only adds what the config names and the kernel lacks: addresses the config does not own
//! (VRRP VIPs, link-locals, what an operator added by hand on a host) are never removed here.

use std::net::IpAddr;

use tandem_config::Config;
use tandem_southbound::net::NetOp;

/// Operations that give each configured interface its configured addresses. `present` lists
/// what the kernel already has per interface.
pub fn address_ops(config: &Config, present: &[(String, Vec<(IpAddr, u8)>)]) -> Vec<NetOp> {
    let mut ops = Vec::new();
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
        let ops = address_ops(&config, &have);
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
}
