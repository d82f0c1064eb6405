//! From config to running parameters: each `[[vrrp]]` instance becomes the core's
//! [`InstanceParams`] plus what only the engine needs (where each virtual address goes, with
//! which prefix; the unicast peers; the gratuitous ARP settings).
//!
//! It lives beside the core rather than in the daemon because it is a pure decision: the
//! interface addresses the primary address is picked from are passed in, so the mapping is
//! tested without a kernel. On a live apply, [`instance_key`] says which running instance a
//! configured one is (new ones may wait for their primary address, running ones do not),
//! [`candidate_addresses`] keeps a running instance on its primary address and never picks a
//! virtual address some master holds, and [`plan_changes`] names what changed that only the
//! engine sees (VIP placement, unicast peers, gratuitous ARP settings).

use core::fmt;
use core::time::Duration;
use std::net::IpAddr;

use tandem_config::model::{Garp, TrackedLink, VrrpAuth, VrrpInstance, VrrpVersion};
use tandem_wire::{Auth, Ipv4ChecksumMode, Version};

use crate::params::{InstanceKey, InstanceParams, ParamError, TrackKind, TrackSpec};

/// One virtual address and where it is added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipPlacement {
    pub address: IpAddr,
    pub prefix: u8,
    /// The link the address goes on (the VIP's own interface, else the instance's).
    pub link: String,
}

/// Everything the engine needs to run one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstancePlan {
    pub params: InstanceParams,
    pub vips: Vec<VipPlacement>,
    /// Adverts go to each of these instead of the multicast group (empty: multicast).
    pub unicast_peers: Vec<IpAddr>,
    pub garp: Garp,
}

impl InstancePlan {
    /// Where `address` goes, if it is one of the instance's virtual addresses.
    pub fn placement(&self, address: &IpAddr) -> Option<&VipPlacement> {
        self.vips.iter().find(|v| v.address == *address)
    }

    /// True when the family is IPv6.
    pub fn is_ipv6(&self) -> bool {
        self.params.primary_address.is_ipv6()
    }
}

/// Why an instance cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlanError {
    /// The instance has no virtual address (validation should have refused it).
    NoVirtualAddresses { instance: String },
    /// The interface has no address to send adverts from.
    NoPrimaryAddress {
        instance: String,
        interface: String,
        ipv6: bool,
    },
    /// The core refused the parameters.
    Params { instance: String, error: ParamError },
}

impl PlanError {
    /// What is wrong, without the instance's name.
    pub fn reason(&self) -> String {
        match self {
            PlanError::NoVirtualAddresses { .. } => {
                "no virtual addresses; add at least one under vips".to_owned()
            }
            PlanError::NoPrimaryAddress {
                interface,
                ipv6: false,
                ..
            } => format!(
                "interface {interface} has no IPv4 address to send adverts from; add one under [[interfaces]] or set unicast_source"
            ),
            PlanError::NoPrimaryAddress {
                interface,
                ipv6: true,
                ..
            } => format!(
                "interface {interface} has no IPv6 link-local address to send adverts from; bring the link up with IPv6 enabled or set unicast_source"
            ),
            PlanError::Params { error, .. } => error.to_string(),
        }
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let instance = match self {
            PlanError::NoVirtualAddresses { instance }
            | PlanError::NoPrimaryAddress { instance, .. }
            | PlanError::Params { instance, .. } => instance,
        };
        write!(f, "vrrp \"{instance}\": {}", self.reason())
    }
}

impl std::error::Error for PlanError {}

/// The address adverts are sent from: `unicast_source` if set, else the interface's primary
/// address of the instance's family (first IPv4 address that is not one of our virtual
/// addresses; first IPv6 link-local address, as RFC 9568 section 5.1.2.2 requires).
pub fn primary_address(
    instance: &VrrpInstance,
    interface_addresses: &[(IpAddr, u8)],
) -> Result<IpAddr, PlanError> {
    if let Some(source) = instance.unicast_source {
        return Ok(source);
    }
    let first_vip = instance
        .vips
        .iter()
        .next()
        .ok_or_else(|| PlanError::NoVirtualAddresses {
            instance: instance.name.as_str().to_owned(),
        })?;
    let ipv6 = first_vip.address.is_ipv6();
    let is_vip = |a: &IpAddr| instance.vips.iter().any(|v| v.address == *a);
    interface_addresses
        .iter()
        .map(|(address, _)| *address)
        .find(|address| match address {
            IpAddr::V4(_) => !ipv6 && !is_vip(address),
            IpAddr::V6(v6) => ipv6 && v6.is_unicast_link_local(),
        })
        .ok_or_else(|| PlanError::NoPrimaryAddress {
            instance: instance.name.as_str().to_owned(),
            interface: instance.interface.as_str().to_owned(),
            ipv6,
        })
}

/// The identity the core will give `instance` (interface, family, VRID): the family is that
/// of `unicast_source` if set, else of the first virtual address, as [`primary_address`]
/// picks it. None without either (the plan is refused anyway).
pub fn instance_key(instance: &VrrpInstance) -> Option<InstanceKey> {
    let ipv6 = match instance.unicast_source {
        Some(source) => source.is_ipv6(),
        None => instance.vips.iter().next()?.address.is_ipv6(),
    };
    Some(InstanceKey {
        interface: instance.interface.as_str().to_owned(),
        ipv6,
        vrid: instance.vrid,
    })
}

/// The interface addresses a primary address may be picked from on a live apply: none of
/// `exclude` (every virtual address a running or configured instance has: a master holds them
/// on the interface), and `current` (the running instance's primary address) first while the
/// interface still has it, so an apply does not move a running instance to another source.
pub fn candidate_addresses(
    interface_addresses: &[(IpAddr, u8)],
    exclude: &[IpAddr],
    current: Option<IpAddr>,
) -> Vec<(IpAddr, u8)> {
    let mut out: Vec<(IpAddr, u8)> = interface_addresses
        .iter()
        .filter(|(address, _)| !exclude.contains(address))
        .copied()
        .collect();
    if let Some(position) = current.and_then(|c| out.iter().position(|(a, _)| *a == c)) {
        let entry = out.remove(position);
        out.insert(0, entry);
    }
    out
}

/// What changed between two plans of one instance that the core does not see: where a kept
/// virtual address goes (prefix, link), the unicast peers, the gratuitous ARP settings. One
/// phrase per change.
pub fn plan_changes(old: &InstancePlan, new: &InstancePlan) -> Vec<String> {
    let mut out = Vec::new();
    for vip in &new.vips {
        if let Some(before) = old.placement(&vip.address).filter(|b| *b != vip) {
            out.push(format!(
                "VIP {} moved from /{} on {} to /{} on {}",
                vip.address, before.prefix, before.link, vip.prefix, vip.link
            ));
        }
    }
    if old.unicast_peers != new.unicast_peers {
        let list = |peers: &[IpAddr]| {
            if peers.is_empty() {
                "multicast".to_owned()
            } else {
                let texts: Vec<String> = peers.iter().map(IpAddr::to_string).collect();
                format!("unicast to {}", texts.join(","))
            }
        };
        out.push(format!(
            "adverts {} -> {}",
            list(&old.unicast_peers),
            list(&new.unicast_peers)
        ));
    }
    if old.garp != new.garp {
        let garp = |g: &Garp| {
            format!(
                "{} after {} s, refresh {} every {} s",
                g.master_repeat, g.master_delay_s, g.master_refresh_repeat, g.master_refresh_s
            )
        };
        out.push(format!(
            "gratuitous ARP/NA {} -> {}",
            garp(&old.garp),
            garp(&new.garp)
        ));
    }
    out
}

fn track_spec(link: &TrackedLink, kind: TrackKind) -> TrackSpec {
    TrackSpec {
        name: link.name.as_str().to_owned(),
        kind,
        weight: link.weight,
    }
}

/// The instance's own interface, tracked with weight 0 unless the config tracks it already: a
/// master whose LAN lost carrier goes to FAULT and gives its addresses up (keepalived does the
/// same), so the partner takes over instead of both claiming the VIP on either side of a cut.
fn own_interface_track(instance: &VrrpInstance) -> Option<TrackSpec> {
    let listed = instance
        .track_interfaces
        .iter()
        .chain(instance.track_bonds.iter())
        .any(|link| link.name == instance.interface);
    (!listed).then(|| TrackSpec {
        name: instance.interface.as_str().to_owned(),
        kind: TrackKind::Interface,
        weight: 0,
    })
}

/// Maps one configured instance (with its interface's addresses) to an [`InstancePlan`].
pub fn instance_plan(
    instance: &VrrpInstance,
    interface_addresses: &[(IpAddr, u8)],
) -> Result<InstancePlan, PlanError> {
    let name = instance.name.as_str();
    let primary_address = primary_address(instance, interface_addresses)?;
    let virtual_addresses: Vec<IpAddr> = instance.vips.iter().map(|v| v.address).collect();
    let params = InstanceParams {
        name: name.to_owned(),
        interface: instance.interface.as_str().to_owned(),
        version: match instance.version {
            VrrpVersion::V2 => Version::V2,
            VrrpVersion::V3 => Version::V3,
        },
        vrid: instance.vrid,
        priority: instance.priority,
        advert_interval_cs: instance.advert_interval_cs,
        primary_address,
        virtual_addresses,
        preempt: instance.preempt,
        preempt_delay: Duration::from_secs(u64::from(instance.preempt_delay_s)),
        accept_mode: instance.accept_mode,
        auth: match &instance.auth {
            Some(VrrpAuth::Pass(password)) => Auth::simple_text(password.as_bytes()),
            None => Auth::None,
        },
        ipv4_checksum: Ipv4ChecksumMode::PseudoHeader,
        tracks: instance
            .track_interfaces
            .iter()
            .map(|l| track_spec(l, TrackKind::Interface))
            .chain(
                instance
                    .track_bonds
                    .iter()
                    .map(|l| track_spec(l, TrackKind::Bond)),
            )
            .chain(own_interface_track(instance))
            .collect(),
    };
    params.validate().map_err(|error| PlanError::Params {
        instance: name.to_owned(),
        error,
    })?;
    let vips = instance
        .vips
        .iter()
        .map(|vip| VipPlacement {
            address: vip.address,
            prefix: vip.prefix,
            link: vip
                .interface
                .as_ref()
                .map_or(instance.interface.as_str(), |i| i.as_str())
                .to_owned(),
        })
        .collect();
    Ok(InstancePlan {
        params,
        vips,
        unicast_peers: instance.unicast_peers.iter().copied().collect(),
        garp: instance.garp.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_config::model::Vip;

    fn instance(toml_vips: &[(&str, u8)]) -> VrrpInstance {
        let mut instance = VrrpInstance {
            name: "web".try_into().unwrap(),
            interface: "eth0".try_into().unwrap(),
            vrid: 20,
            priority: 150,
            ..VrrpInstance::default()
        };
        for (address, prefix) in toml_vips {
            instance
                .vips
                .push(Vip {
                    address: address.parse().unwrap(),
                    prefix: *prefix,
                    ..Vip::default()
                })
                .unwrap();
        }
        instance
    }

    fn addrs(list: &[&str]) -> Vec<(IpAddr, u8)> {
        list.iter().map(|a| (a.parse().unwrap(), 24)).collect()
    }

    #[test]
    fn ipv4_primary_skips_our_own_vips() {
        let inst = instance(&[("192.0.2.100", 24)]);
        let plan = instance_plan(&inst, &addrs(&["192.0.2.100", "192.0.2.2", "fe80::1"])).unwrap();
        assert_eq!(
            plan.params.primary_address,
            "192.0.2.2".parse::<IpAddr>().unwrap()
        );
        assert_eq!(plan.params.version, Version::V3);
        assert_eq!(
            plan.vips,
            vec![VipPlacement {
                address: "192.0.2.100".parse().unwrap(),
                prefix: 24,
                link: "eth0".into()
            }]
        );
    }

    #[test]
    fn ipv6_primary_is_link_local() {
        let inst = instance(&[("2001:db8::100", 64)]);
        let plan = instance_plan(
            &inst,
            &addrs(&["192.0.2.2", "2001:db8::2", "fe80::2", "fe80::3"]),
        )
        .unwrap();
        assert_eq!(
            plan.params.primary_address,
            "fe80::2".parse::<IpAddr>().unwrap()
        );
        let missing = instance_plan(&inst, &addrs(&["2001:db8::2"])).unwrap_err();
        assert!(missing.to_string().contains("link-local"), "{missing}");
    }

    #[test]
    fn v2_password_tracks_and_unicast_map_through() {
        let mut inst = instance(&[("192.0.2.100", 32)]);
        inst.version = VrrpVersion::V2;
        inst.auth = Some(VrrpAuth::Pass("topSecre".try_into().unwrap()));
        inst.unicast_source = Some("192.0.2.9".parse().unwrap());
        inst.unicast_peers
            .push("192.0.2.3".parse().unwrap())
            .unwrap();
        inst.track_interfaces
            .push(TrackedLink {
                name: "eth1".try_into().unwrap(),
                weight: -50,
            })
            .unwrap();
        inst.vips.as_mut_slice()[0].interface = Some("eth2".try_into().unwrap());
        let plan = instance_plan(&inst, &[]).unwrap();
        assert_eq!(plan.params.auth, Auth::simple_text(b"topSecre"));
        assert_eq!(
            plan.params.primary_address,
            "192.0.2.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            plan.unicast_peers,
            vec!["192.0.2.3".parse::<IpAddr>().unwrap()]
        );
        assert_eq!(plan.params.tracks[0].weight, -50);
        assert_eq!(plan.params.tracks[0].kind, TrackKind::Interface);
        assert_eq!(plan.vips[0].link, "eth2");
    }

    #[test]
    fn the_instance_tracks_its_own_interface_unless_the_config_does() {
        let mut inst = instance(&[("192.0.2.100", 32)]);
        let own = |plan: &InstancePlan| {
            plan.params
                .tracks
                .iter()
                .filter(|t| t.name == "eth0")
                .map(|t| (t.kind, t.weight))
                .collect::<Vec<_>>()
        };
        let plan = instance_plan(&inst, &addrs(&["192.0.2.2"])).unwrap();
        assert_eq!(own(&plan), vec![(TrackKind::Interface, 0)]);
        // Listed by the operator (a weight instead of a fault): that one, once.
        inst.track_interfaces
            .push(TrackedLink {
                name: "eth0".try_into().unwrap(),
                weight: -20,
            })
            .unwrap();
        let plan = instance_plan(&inst, &addrs(&["192.0.2.2"])).unwrap();
        assert_eq!(own(&plan), vec![(TrackKind::Interface, -20)]);
    }

    #[test]
    fn the_key_follows_the_family_the_primary_address_is_picked_by() {
        let mut inst = instance(&[("2001:db8::100", 64)]);
        let key = instance_key(&inst).unwrap();
        assert_eq!(
            (key.interface.as_str(), key.ipv6, key.vrid),
            ("eth0", true, 20)
        );
        inst.unicast_source = Some("192.0.2.9".parse().unwrap());
        assert!(!instance_key(&inst).unwrap().ipv6);
        assert_eq!(instance_key(&instance(&[])), None);
    }

    #[test]
    fn a_running_instance_keeps_its_primary_and_never_takes_a_held_vip() {
        let inst = instance(&[("192.0.2.100", 24)]);
        // A master of another instance holds 192.0.2.50, listed first by the kernel.
        let on_link = addrs(&["192.0.2.50", "192.0.2.2", "192.0.2.3"]);
        let exclude: Vec<IpAddr> = vec!["192.0.2.50".parse().unwrap()];
        let fresh = candidate_addresses(&on_link, &exclude, None);
        assert_eq!(
            instance_plan(&inst, &fresh).unwrap().params.primary_address,
            "192.0.2.2".parse::<IpAddr>().unwrap()
        );
        let kept = candidate_addresses(&on_link, &exclude, Some("192.0.2.3".parse().unwrap()));
        assert_eq!(
            instance_plan(&inst, &kept).unwrap().params.primary_address,
            "192.0.2.3".parse::<IpAddr>().unwrap()
        );
        // A current primary that is gone is no candidate.
        let gone = candidate_addresses(&on_link, &exclude, Some("192.0.2.9".parse().unwrap()));
        assert_eq!(gone, fresh);
    }

    #[test]
    fn engine_only_changes_are_named() {
        let inst = instance(&[("192.0.2.100", 24), ("192.0.2.101", 24)]);
        let old = instance_plan(&inst, &addrs(&["192.0.2.2"])).unwrap();
        assert!(plan_changes(&old, &old).is_empty());
        let mut changed = inst.clone();
        changed.vips.as_mut_slice()[0].prefix = 25;
        changed
            .unicast_peers
            .push("192.0.2.3".parse().unwrap())
            .unwrap();
        changed.garp.master_repeat = 2;
        let new = instance_plan(&changed, &addrs(&["192.0.2.2"])).unwrap();
        assert_eq!(old.params, new.params, "nothing the core sees");
        assert_eq!(
            plan_changes(&old, &new),
            vec![
                "VIP 192.0.2.100 moved from /24 on eth0 to /25 on eth0".to_owned(),
                "adverts multicast -> unicast to 192.0.2.3".to_owned(),
                "gratuitous ARP/NA 5 after 5 s, refresh 1 every 0 s -> 2 after 5 s, refresh 1 every 0 s"
                    .to_owned(),
            ]
        );
        let error = PlanError::NoPrimaryAddress {
            instance: "web".into(),
            interface: "eth0".into(),
            ipv6: false,
        };
        assert!(
            error
                .to_string()
                .starts_with("vrrp \"web\": interface eth0"),
            "{error}"
        );
        assert!(error.reason().starts_with("interface eth0"), "{error}");
    }

    #[test]
    fn bad_parameters_are_refused_with_the_instance_named() {
        let mut inst = instance(&[("192.0.2.100", 32)]);
        inst.version = VrrpVersion::V2;
        inst.advert_interval_cs = 50;
        let error = instance_plan(&inst, &addrs(&["192.0.2.2"])).unwrap_err();
        assert!(error.to_string().starts_with("vrrp \"web\""), "{error}");
    }
}
