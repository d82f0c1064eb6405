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
//! engine sees (VIP placement, unicast peers, gratuitous ARP settings, the vmac).
//!
//! `use_vmac` (keepalived's): the plan names the instance's macvlan ([`VmacPlan`]: its name and
//! the virtual router MAC) and puts the virtual addresses that would go on the instance's
//! interface on it instead, as keepalived does (a VIP given another interface stays there).
//! A macvlan without a configured name is named as keepalived names it, over the whole config
//! ([`vmac_names`]): `vrrp.{VRID}` when free, else (IPv6) `vrrp6.{VRID}`, then
//! `vrrp1.{VRID}`, `vrrp2.{VRID}`, ... skipping names taken by configured interfaces, by
//! configured vmac names and by earlier instances. With unicast peers the adverts stay on the
//! instance's interface ([`VmacPlan::xmit_base`]). The engine makes the macvlan; the core never
//! sees it, so turning `use_vmac` on or off moves a master's addresses and nothing else.

use core::fmt;
use core::time::Duration;
use std::net::IpAddr;

use tandem_config::model::{Garp, TrackedLink, VrrpAuth, VrrpInstance, VrrpVersion};
use tandem_config::Config;
use tandem_wire::{virtual_mac, Auth, Family, Ipv4ChecksumMode, MacAddress, Version};

use crate::params::{
    check_track_name, InstanceKey, InstanceParams, ParamError, TrackKind, TrackSpec,
};

/// One virtual address and where it is added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipPlacement {
    pub address: IpAddr,
    pub prefix: u8,
    /// The link the address goes on (the VIP's own interface, else the instance's).
    pub link: String,
}

/// The macvlan of a `use_vmac` instance, on the instance's interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmacPlan {
    /// The macvlan's name.
    pub name: String,
    /// The virtual router MAC of the instance's VRID and family.
    pub mac: MacAddress,
    /// Adverts are sent and heard on the instance's interface, not the macvlan (keepalived's
    /// `vmac_xmit_base`); the addresses and announcements stay on the macvlan. Set for unicast
    /// peers, as keepalived sets it: a unicast advert's ARP from the virtual MAC would reach
    /// only the partner's own macvlan of that MAC, which never answers for the partner's
    /// address.
    pub xmit_base: bool,
}

/// Everything the engine needs to run one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstancePlan {
    pub params: InstanceParams,
    pub vips: Vec<VipPlacement>,
    /// Adverts go to each of these instead of the multicast group (empty: multicast).
    pub unicast_peers: Vec<IpAddr>,
    pub garp: Garp,
    /// `use_vmac`: the macvlan adverts leave from and the virtual addresses go on.
    pub vmac: Option<VmacPlan>,
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
    /// The instance's macvlan (`use_vmac`) could not be made; `reason` says why and what to do.
    Vmac { instance: String, reason: String },
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
            PlanError::Vmac { reason, .. } => format!("use_vmac: {reason}"),
        }
    }
}

impl fmt::Display for PlanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let instance = match self {
            PlanError::NoVirtualAddresses { instance }
            | PlanError::NoPrimaryAddress { instance, .. }
            | PlanError::Params { instance, .. }
            | PlanError::Vmac { instance, .. } => instance,
        };
        write!(f, "vrrp \"{instance}\": {}", self.reason())
    }
}

impl std::error::Error for PlanError {}

/// The name of each instance's macvlan (None without `use_vmac`), in `instances`' order, as
/// keepalived names them: a configured `vmac_interface` as it is; else `vrrp.{VRID}` if no
/// configured vmac name, no name in `taken` (the config's interfaces and bonds) and no earlier
/// instance has it, then (IPv6 first tries `vrrp6.{VRID}`) `vrrp1.{VRID}`, `vrrp2.{VRID}`, ...
pub fn vmac_names(instances: &[VrrpInstance], taken: &[&str]) -> Vec<Option<String>> {
    let mut used: Vec<String> = taken.iter().map(|t| (*t).to_owned()).collect();
    used.extend(
        instances
            .iter()
            .filter(|i| i.use_vmac)
            .filter_map(|i| i.vmac_interface.as_ref())
            .map(|name| name.as_str().to_owned()),
    );
    let mut out = Vec::with_capacity(instances.len());
    for instance in instances {
        if !instance.use_vmac {
            out.push(None);
            continue;
        }
        if let Some(name) = &instance.vmac_interface {
            out.push(Some(name.as_str().to_owned()));
            continue;
        }
        let ipv6 = instance_key(instance).is_some_and(|key| key.ipv6);
        let vrid = instance.vrid;
        let numbered = (1u16..).filter(|n| !ipv6 || *n != 6);
        let mut candidates = core::iter::once(format!("vrrp.{vrid}"))
            .chain(ipv6.then(|| format!("vrrp6.{vrid}")))
            .chain(numbered.map(|n| format!("vrrp{n}.{vrid}")));
        let name = candidates
            .find(|name| !used.contains(name))
            .unwrap_or_default();
        used.push(name.clone());
        out.push(Some(name));
    }
    out
}

/// [`vmac_names`] of a config's instances, with its interfaces and bonds taken.
pub fn config_vmac_names(config: &Config) -> Vec<Option<String>> {
    let taken: Vec<&str> = config
        .interfaces
        .iter()
        .map(|i| i.name.as_str())
        .chain(config.bonds.iter().map(|b| b.name.as_str()))
        .collect();
    let instances: Vec<VrrpInstance> = config.vrrp.iter().cloned().collect();
    vmac_names(&instances, &taken)
}

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
    if old.vmac != new.vmac {
        let vmac = |v: &Option<VmacPlan>| match v {
            Some(v) => format!("{} ({})", v.name, mac_text(&v.mac)),
            None => "none".to_owned(),
        };
        out.push(format!("vmac {} -> {}", vmac(&old.vmac), vmac(&new.vmac)));
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

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_text(mac: &MacAddress) -> String {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

/// Maps one configured instance (with its interface's addresses) to an [`InstancePlan`]; a
/// `use_vmac` instance's macvlan is named as if it were the only instance (see
/// [`instance_plan_named`]).
pub fn instance_plan(
    instance: &VrrpInstance,
    interface_addresses: &[(IpAddr, u8)],
) -> Result<InstancePlan, PlanError> {
    let names = vmac_names(core::slice::from_ref(instance), &[]);
    let vmac_name = names.first().and_then(Option::as_deref);
    instance_plan_named(instance, interface_addresses, vmac_name)
}

/// [`instance_plan`] with the macvlan's name given (from [`vmac_names`] over the config);
/// ignored without `use_vmac`.
pub fn instance_plan_named(
    instance: &VrrpInstance,
    interface_addresses: &[(IpAddr, u8)],
    vmac_name: Option<&str>,
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
            .chain(instance.track_checks.iter().map(|check| TrackSpec {
                name: check_track_name(check.name.as_str()),
                kind: TrackKind::Check,
                weight: check.weight,
            }))
            .collect(),
    };
    params.validate().map_err(|error| PlanError::Params {
        instance: name.to_owned(),
        error,
    })?;
    let family = if primary_address.is_ipv6() {
        Family::Ipv6
    } else {
        Family::Ipv4
    };
    let vmac = instance.use_vmac.then(|| VmacPlan {
        name: vmac_name.map_or_else(|| format!("vrrp.{}", instance.vrid), ToOwned::to_owned),
        mac: virtual_mac(instance.vrid, family),
        // Configured (keepalived's vmac_xmit_base), or forced for unicast peers.
        xmit_base: instance.vmac_xmit_base || !instance.unicast_peers.is_empty(),
    });
    let vips = instance
        .vips
        .iter()
        .map(|vip| {
            let link = vip
                .interface
                .as_ref()
                .map_or(instance.interface.as_str(), |i| i.as_str());
            // keepalived: the instance's own interface means its vmac.
            let link = match &vmac {
                Some(vmac) if link == instance.interface.as_str() => vmac.name.as_str(),
                _ => link,
            };
            VipPlacement {
                address: vip.address,
                prefix: vip.prefix,
                link: link.to_owned(),
            }
        })
        .collect();
    Ok(InstancePlan {
        params,
        vips,
        unicast_peers: instance.unicast_peers.iter().copied().collect(),
        garp: instance.garp.clone(),
        vmac,
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
    fn use_vmac_puts_the_instance_interface_vips_on_a_macvlan_with_the_virtual_mac() {
        let mut inst = instance(&[
            ("192.0.2.100", 24),
            ("192.0.2.101", 24),
            ("198.51.100.1", 24),
        ]);
        inst.vips.as_mut_slice()[1].interface = Some("eth0".try_into().unwrap());
        inst.vips.as_mut_slice()[2].interface = Some("eth1".try_into().unwrap());
        let plain = instance_plan(&inst, &addrs(&["192.0.2.2"])).unwrap();
        assert_eq!(plain.vmac, None);
        inst.use_vmac = true;
        let plan = instance_plan(&inst, &addrs(&["192.0.2.2"])).unwrap();
        assert_eq!(
            plan.vmac,
            Some(VmacPlan {
                name: "vrrp.20".into(),
                mac: [0, 0, 0x5e, 0, 1, 20],
                xmit_base: false,
            })
        );
        let links: Vec<&str> = plan.vips.iter().map(|v| v.link.as_str()).collect();
        assert_eq!(links, ["vrrp.20", "vrrp.20", "eth1"]);
        // The core sees no difference: only the engine moves the addresses.
        assert_eq!(plain.params, plan.params);
        assert_eq!(
            plan_changes(&plain, &plan),
            vec![
                "VIP 192.0.2.100 moved from /24 on eth0 to /24 on vrrp.20".to_owned(),
                "VIP 192.0.2.101 moved from /24 on eth0 to /24 on vrrp.20".to_owned(),
                "vmac none -> vrrp.20 (00:00:5e:00:01:14)".to_owned(),
            ]
        );
        let six = instance(&[("2001:db8::100", 64)]);
        let named = VrrpInstance {
            use_vmac: true,
            vmac_interface: Some("v6vmac".try_into().unwrap()),
            ..six
        };
        let plan = instance_plan_named(&named, &addrs(&["fe80::2"]), Some("v6vmac")).unwrap();
        assert_eq!(plan.vmac.as_ref().unwrap().mac, [0, 0, 0x5e, 0, 2, 20]);
        assert_eq!(plan.vips[0].link, "v6vmac");
        // Unicast peers: adverts on the interface (keepalived's vmac_xmit_base), VIPs on the
        // macvlan all the same.
        let mut unicast = named.clone();
        unicast
            .unicast_peers
            .push("2001:db8::3".parse().unwrap())
            .unwrap();
        let plan = instance_plan_named(&unicast, &addrs(&["fe80::2"]), Some("v6vmac")).unwrap();
        assert!(plan.vmac.as_ref().unwrap().xmit_base);
        assert_eq!(plan.vips[0].link, "v6vmac");
        // Configured without unicast peers (keepalived's vmac_xmit_base), off by default.
        let plan = instance_plan_named(&named, &addrs(&["fe80::2"]), Some("v6vmac")).unwrap();
        assert!(!plan.vmac.as_ref().unwrap().xmit_base);
        let base = VrrpInstance {
            vmac_xmit_base: true,
            ..named
        };
        let plan = instance_plan_named(&base, &addrs(&["fe80::2"]), Some("v6vmac")).unwrap();
        assert!(plan.vmac.as_ref().unwrap().xmit_base);
        assert_eq!(plan.vips[0].link, "v6vmac");
    }

    #[test]
    fn vmac_names_follow_keepalived() {
        let with = |vrid: u8, vip: &str, name: Option<&str>| VrrpInstance {
            vrid,
            use_vmac: true,
            vmac_interface: name.map(|n| n.try_into().unwrap()),
            ..instance(&[(vip, 24)])
        };
        let without = instance(&[("192.0.2.1", 24)]);
        // IPv4 then IPv6 on one VRID; an IPv6 instance alone is vrrp.{VRID} too.
        let names = vmac_names(
            &[
                with(51, "192.0.2.100", None),
                without,
                with(51, "2001:db8::100", None),
                with(52, "2001:db8::101", None),
            ],
            &[],
        );
        assert_eq!(
            names,
            [
                Some("vrrp.51".to_owned()),
                None,
                Some("vrrp6.51".to_owned()),
                Some("vrrp.52".to_owned())
            ]
        );
        // IPv6 first: the IPv4 one numbers on. A configured name, even later, and a configured
        // interface are never taken.
        let names = vmac_names(
            &[
                with(7, "2001:db8::100", None),
                with(7, "192.0.2.100", None),
                with(8, "192.0.2.101", None),
                with(9, "192.0.2.102", Some("vrrp.8")),
                with(10, "2001:db8::102", None),
                with(10, "192.0.2.103", None),
                with(10, "192.0.2.104", None),
            ],
            &["vrrp6.10"],
        );
        assert_eq!(
            names,
            [
                Some("vrrp.7".to_owned()),
                Some("vrrp1.7".to_owned()),
                Some("vrrp1.8".to_owned()),
                Some("vrrp.8".to_owned()),
                Some("vrrp.10".to_owned()),
                Some("vrrp1.10".to_owned()),
                Some("vrrp2.10".to_owned()),
            ]
        );
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
