//! Config → what the director installs besides the IPVS table (which `tandem_lvs::plan` maps):
//! the fwmark rules (table `inet tandem`), the source NAT of the NAT real servers (table
//! `inet tandem_nat`) and who owns the NAT gateway address. Pure, so each is tested without a
//! kernel; the engine compares the result with what it installed and touches only a change.
//!
//! **NAT gateway address: one owner.** When some VRRP instance lists the gateway address among
//! its `vips`, the address floats with VRRP: only the master holds it, so the VRRP engine owns
//! it and the LVS engine never adds it. Otherwise the LVS engine owns it: it adds it, and
//! removes it (only an address it added) when a new config drops or changes it.
//!
//! **Only a director has them.** A config without an active virtual service does not make the
//! box a director: its `nat_gateway` is then the address a NAT real server routes through (the
//! real-server role, `realserver_engine::Role`). So the NAT gateway address and the source NAT
//! go with the last virtual service: the engine that stops because the config no longer asks
//! for it removes them with its IPVS services, instead of leaving them without an owner.

use std::net::IpAddr;

use tandem_config::model::{self, Config};
use tandem_lvs::plan::Plan;
use tandem_southbound::net::NetOp;
use tandem_southbound::nft::{L4Proto, MarkRule};
use tandem_southbound::snat::MasqueradeRule;

/// The nftables marking rules of `config.fwmark_rules`. A `0-0` port range means any port
/// (the keepalived/piranha form of a mark on a whole address).
pub fn mark_rules(config: &Config) -> Vec<MarkRule> {
    config
        .fwmark_rules
        .iter()
        .map(|rule| MarkRule {
            mark: rule.mark,
            protocol: match rule.protocol {
                model::Protocol::Tcp => L4Proto::Tcp,
                model::Protocol::Udp => L4Proto::Udp,
                model::Protocol::Sctp => L4Proto::Sctp,
            },
            destination: rule.destination.addr,
            prefix_len: rule.destination.prefix,
            ports: (rule.port_first, rule.port_last)
                .ne(&(0, 0))
                .then_some((rule.port_first, rule.port_last)),
        })
        .collect()
}

/// The marking rules the director installs: the config's, when some service is a fwmark
/// service (none otherwise).
pub fn planned_mark_rules(config: &Config, plan: &Plan) -> Vec<MarkRule> {
    if plan.has_fwmark_services() {
        mark_rules(config)
    } else {
        Vec::new()
    }
}

/// The link part of an interface or alias label (`private:1` → `private`).
fn link_of(interface: &str) -> String {
    interface.split(':').next().unwrap_or_default().to_owned()
}

/// Whether `config` makes this box a director: some virtual service is active.
pub fn directs(config: &Config) -> bool {
    config.virtual_services.iter().any(|vs| vs.active)
}

/// The director's NAT gateway: `config.nat_gateway` while the config directs (see the module
/// documentation).
fn director_gateway(config: &Config) -> Option<&model::NatGateway> {
    config.nat_gateway.as_ref().filter(|_| directs(config))
}

/// The real servers behind the NAT gateway reach the outside through this box: what their
/// IPv4 network sends out of any other port is masqueraded. IPv6 real servers have addresses of
/// their own (no NAT66), and without a NAT gateway (or without a virtual service) there is
/// nothing to masquerade.
pub fn source_nat_rules(config: &Config) -> Vec<MasqueradeRule> {
    director_gateway(config)
        .and_then(|gateway| match gateway.address {
            IpAddr::V4(address) => {
                let prefix_len = gateway.prefix.min(32);
                let mask = tandem_config::net::prefix_to_netmask(prefix_len);
                Some(MasqueradeRule {
                    network: IpAddr::V4(address & mask),
                    prefix_len,
                    inside_port: link_of(gateway.interface.as_str()),
                })
            }
            IpAddr::V6(_) => None,
        })
        .into_iter()
        .collect()
}

/// The NAT gateway address as the LVS engine adds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayAddress {
    pub link: String,
    pub address: IpAddr,
    pub prefix_len: u8,
}

impl GatewayAddress {
    pub fn add_op(&self) -> NetOp {
        NetOp::AddAddress {
            link: self.link.clone(),
            address: self.address,
            prefix_len: self.prefix_len,
        }
    }

    pub fn del_op(&self) -> NetOp {
        NetOp::DelAddress {
            link: self.link.clone(),
            address: self.address,
            prefix_len: self.prefix_len,
        }
    }
}

impl std::fmt::Display for GatewayAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{} on {}", self.address, self.prefix_len, self.link)
    }
}

/// Who holds the NAT gateway address.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum GatewayOwner {
    /// No NAT gateway configured.
    #[default]
    None,
    /// The LVS engine adds it.
    Lvs(GatewayAddress),
    /// It floats with this VRRP instance: only the master holds it.
    Vrrp { address: IpAddr, instance: String },
}

impl GatewayOwner {
    /// The address the LVS engine must hold, if it owns one.
    pub fn lvs(&self) -> Option<&GatewayAddress> {
        match self {
            GatewayOwner::Lvs(address) => Some(address),
            _ => None,
        }
    }

    /// The log line naming the owner.
    pub fn describe(&self) -> String {
        match self {
            GatewayOwner::None => "NAT gateway: none configured".to_owned(),
            GatewayOwner::Lvs(address) => {
                format!("NAT gateway {address}: owned by the LVS engine (not in any VRRP instance's vips)")
            }
            GatewayOwner::Vrrp { address, instance } => format!(
                "NAT gateway {address}: floated by VRRP instance {instance} (only its master holds it); the LVS engine does not add it"
            ),
        }
    }
}

/// Who owns the NAT gateway address of `config` (see the module documentation).
pub fn gateway_owner(config: &Config) -> GatewayOwner {
    let Some(gateway) = director_gateway(config) else {
        return GatewayOwner::None;
    };
    let floating = config.vrrp.iter().find(|instance| {
        instance
            .vips
            .iter()
            .any(|vip| vip.address == gateway.address)
    });
    match floating {
        Some(instance) => GatewayOwner::Vrrp {
            address: gateway.address,
            instance: if instance.name.is_empty() {
                format!("vrid {} on {}", instance.vrid, instance.interface.as_str())
            } else {
                instance.name.as_str().to_owned()
            },
        },
        None => GatewayOwner::Lvs(GatewayAddress {
            link: link_of(gateway.interface.as_str()),
            address: gateway.address,
            prefix_len: gateway.prefix,
        }),
    }
}

/// What to do with the NAT gateway address when ownership moves from `owned` (what this engine
/// added and still holds) to `owner`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GatewayChange {
    /// The engine's address to remove (gone or changed).
    pub remove: Option<GatewayAddress>,
    /// The engine's address, left in place for VRRP (which now owns it).
    pub hand_over: Option<GatewayAddress>,
    /// The address to add (newly owned).
    pub add: Option<GatewayAddress>,
    /// The address to check is still there (owned before and after, unchanged).
    pub keep: Option<GatewayAddress>,
}

/// The gateway address change from `owned` to `owner`.
pub fn gateway_change(owned: Option<&GatewayAddress>, owner: &GatewayOwner) -> GatewayChange {
    let wanted = owner.lvs();
    match (owned, wanted) {
        (Some(old), Some(new)) if old == new => GatewayChange {
            keep: Some(new.clone()),
            ..GatewayChange::default()
        },
        (old, new) => {
            let handed = matches!(
                (old, owner),
                (Some(old), GatewayOwner::Vrrp { address, .. }) if old.address == *address
            );
            GatewayChange {
                remove: old.filter(|_| !handed).cloned(),
                hand_over: old.filter(|_| handed).cloned(),
                add: new.cloned(),
                keep: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GATEWAY: &str = r#"
[nat_gateway]
address = "198.51.100.1"
prefix = 24
interface = "private:1"

[[virtual_services]]
address = "192.0.2.10"
port = 80

[[virtual_services.real_servers]]
address = "198.51.100.11"
"#;

    #[test]
    fn fwmark_rules_map_to_marking_rules() {
        let config = tandem_config::text::from_toml(
            r#"
[[virtual_services]]
fwmark = 7

[[virtual_services.real_servers]]
address = "198.51.100.11"
port = 0

[[fwmark_rules]]
mark = 7
destination = "192.0.2.20"
port_first = 80
port_last = 81

[[fwmark_rules]]
mark = 7
protocol = "udp"
destination = "2001:db8::/64"
"#,
        )
        .unwrap();
        let plan = tandem_lvs::plan::from_config(&config);
        assert_eq!(
            planned_mark_rules(&config, &plan),
            [
                MarkRule {
                    mark: 7,
                    protocol: L4Proto::Tcp,
                    destination: "192.0.2.20".parse().unwrap(),
                    prefix_len: 32,
                    ports: Some((80, 81)),
                },
                MarkRule {
                    mark: 7,
                    protocol: L4Proto::Udp,
                    destination: "2001:db8::".parse().unwrap(),
                    prefix_len: 64,
                    ports: None,
                },
            ]
        );
        // Without a fwmark service the rules are not installed.
        assert!(planned_mark_rules(&config, &Plan::default()).is_empty());
    }

    #[test]
    fn source_nat_masquerades_the_gateway_network_out_of_other_ports() {
        let config = tandem_config::text::from_toml(GATEWAY).unwrap();
        assert_eq!(
            source_nat_rules(&config),
            [MasqueradeRule {
                network: "198.51.100.0".parse().unwrap(),
                prefix_len: 24,
                inside_port: "private".into(),
            }]
        );
        assert!(source_nat_rules(&Config::default()).is_empty());
        // Without an active virtual service the box is no director: nothing to masquerade.
        let mut inactive = config.clone();
        for service in inactive.virtual_services.as_mut_slice() {
            service.active = false;
        }
        assert!(source_nat_rules(&inactive).is_empty());
        inactive.virtual_services.retain(|_| false);
        assert!(source_nat_rules(&inactive).is_empty());
    }

    #[test]
    fn the_lvs_engine_owns_the_gateway_unless_vrrp_floats_it() {
        let config = tandem_config::text::from_toml(GATEWAY).unwrap();
        let ours = GatewayAddress {
            link: "private".into(),
            address: "198.51.100.1".parse().unwrap(),
            prefix_len: 24,
        };
        assert_eq!(gateway_owner(&config), GatewayOwner::Lvs(ours.clone()));
        let floated = tandem_config::text::from_toml(&format!(
            r#"{GATEWAY}
[[vrrp]]
name = "VI_NAT"
vrid = 9
interface = "private"
vips = [{{ address = "198.51.100.1", prefix = 24 }}]
"#
        ))
        .unwrap();
        let owner = gateway_owner(&floated);
        assert_eq!(
            owner,
            GatewayOwner::Vrrp {
                address: ours.address,
                instance: "VI_NAT".into()
            }
        );
        assert!(owner.describe().contains("does not add it"));
        assert_eq!(gateway_owner(&Config::default()), GatewayOwner::None);
        // Its last virtual service gone, the box is no director: the gateway is not its own (a
        // NAT real server's config names the address it routes through the same way).
        let mut no_service = config.clone();
        no_service.virtual_services.retain(|_| false);
        assert_eq!(gateway_owner(&no_service), GatewayOwner::None);
        assert_eq!(
            gateway_change(Some(&ours), &gateway_owner(&no_service)),
            GatewayChange {
                remove: Some(ours.clone()),
                ..Default::default()
            }
        );

        // Unchanged: kept (only checked). Moved to VRRP: handed over, not removed.
        let lvs = GatewayOwner::Lvs(ours.clone());
        assert_eq!(
            gateway_change(Some(&ours), &lvs),
            GatewayChange {
                keep: Some(ours.clone()),
                ..Default::default()
            }
        );
        assert_eq!(
            gateway_change(Some(&ours), &owner),
            GatewayChange {
                hand_over: Some(ours.clone()),
                ..Default::default()
            }
        );
        // Changed prefix: the old one goes, the new one comes. Gone: removed. New: added.
        let wider = GatewayAddress {
            prefix_len: 16,
            ..ours.clone()
        };
        assert_eq!(
            gateway_change(Some(&ours), &GatewayOwner::Lvs(wider.clone())),
            GatewayChange {
                remove: Some(ours.clone()),
                add: Some(wider),
                ..Default::default()
            }
        );
        assert_eq!(
            gateway_change(Some(&ours), &GatewayOwner::None),
            GatewayChange {
                remove: Some(ours.clone()),
                ..Default::default()
            }
        );
        assert_eq!(
            gateway_change(None, &lvs),
            GatewayChange {
                add: Some(ours),
                ..Default::default()
            }
        );
        // Never added by us: nothing to remove when VRRP takes it.
        assert_eq!(gateway_change(None, &owner), GatewayChange::default());
    }
}
