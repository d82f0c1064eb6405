//! Piranha's two LVS routers as one Tandem pair config.
//!
//! lvs.cf names a primary and a backup router (`primary`, `backup`, `backup_active = 1`). pulse
//! moved every floating address (each virtual server's `address = IP DEVICE` alias and the
//! `nat_router`) to the backup at once when the primary stopped answering, and gave them back
//! when it returned. Tandem floats addresses with VRRP, so without this module an imported
//! lvs.cf floated nothing: the backup would never take the addresses over.
//!
//! [`derive`] builds what pulse did: one VRRP instance per interface (and address family) the
//! floating addresses live on, all in one sync group when there are several (pulse moved the
//! public and the private aliases together), `[pair.a]` = the primary (higher priority, starts
//! master) and `[pair.b]` = the backup, and each box's own address on an interface when a
//! floating address's netmask shows which interface that is. Every choice lvs.cf does not make
//! (the VRID, the advert interval, an interface guessed) is a note.
//!
//! It reads only what lvs.cf carries (`peer_link`, the virtual services' addresses, the NAT
//! gateway), never `vrrp`, `sync_groups` or `pair`, so the lvs.cf export calls it too: when a
//! config's instances and halves are exactly what its lvs.cf implies, they need no note.

use std::format;
use std::string::String;
use std::vec::Vec;

use core::net::IpAddr;

use super::Notes;
use crate::model::{
    BoxHalf, Config, IfName, InitialState, Interface, Name, PairHalves, SyncGroup, Vip,
    VrrpInstance, VrrpOverride, VrrpVersion,
};
use crate::net::{Family, IpCidr};

/// Priority of the primary (box a): the higher one, so it is master whenever it is up.
pub const PRIMARY_PRIORITY: u8 = 150;
/// Priority of the backup (box b), also the shared instances' own priority.
pub const BACKUP_PRIORITY: u8 = 100;
/// The first VRID picked; the next instances take the next ids.
pub const FIRST_VRID: u8 = 51;
/// The sync group of the instances when there are several.
pub const SYNC_GROUP: &str = "lvs";
/// Advert interval without a Piranha `keepalive` (VRRP's default, 1 s).
const DEFAULT_ADVERT_CS: u16 = 100;
/// VRRPv3's longest advert interval.
const MAX_ADVERT_CS: u16 = 4095;

/// Where the lvs.cf import found what the notes talk about (1-based lines; 0 when unknown).
#[derive(Debug, Default)]
pub(crate) struct Lines {
    /// The `backup` line.
    pub backup: usize,
    /// The `primary` and `primary_private` lines.
    pub primary: usize,
    pub primary_private: usize,
    /// The `keepalive` (else `deadtime`) line and its keyword, when the file has one.
    pub heartbeat: Option<(usize, &'static str)>,
    /// The `virtual` block of each virtual service, in the config's order.
    pub services: Vec<usize>,
    /// The `nat_router` line.
    pub nat_router: usize,
}

impl Lines {
    fn service(&self, index: usize) -> usize {
        self.services.get(index).copied().unwrap_or(self.backup)
    }
}

/// What an lvs.cf with a primary and an active backup implies beyond one router.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Floated {
    pub vrrp: Vec<VrrpInstance>,
    pub sync_groups: Vec<SyncGroup>,
    pub pair: PairHalves,
}

impl Floated {
    /// Whether `config` holds exactly these instances, sync groups and halves.
    pub fn is_in(&self, config: &Config) -> bool {
        config.vrrp.iter().eq(&self.vrrp)
            && config.sync_groups.iter().eq(&self.sync_groups)
            && config.pair.as_ref() == Some(&self.pair)
    }

    /// Adds the instances, the sync group and the halves to `config` (which has none).
    pub fn apply(self, config: &mut Config, notes: &mut Notes) {
        for instance in self.vrrp {
            let name = instance.name.clone();
            if config.vrrp.push(instance).is_err() {
                notes.invalid(
                    0,
                    "vrrp",
                    format!("too many VRRP instances; {name} not added"),
                );
            }
        }
        for group in self.sync_groups {
            let _ = config.sync_groups.push(group);
        }
        config.pair = Some(self.pair);
    }

    /// The interfaces the instances run on (to be described under `[[interfaces]]`).
    pub fn interfaces(&self) -> Vec<IfName> {
        self.vrrp.iter().map(|v| v.interface.clone()).collect()
    }
}

/// One address pulse floated.
struct Floating {
    address: IpAddr,
    prefix: u8,
    device: Option<IfName>,
    /// `virtual HTTP`, `nat_router`.
    what: String,
    line: usize,
}

/// The link part of a device or alias label (`eth0:1` -> `eth0`).
fn base(device: &str) -> &str {
    device.split(':').next().unwrap_or(device)
}

/// The pair `config` (a single-router lvs.cf import) implies, or None when lvs.cf has no
/// active backup or nothing to float (each said in a note when the file names a backup).
pub(crate) fn derive(config: &Config, lines: &Lines, notes: &mut Notes) -> Option<Floated> {
    let peer = config.peer_link.as_ref()?;
    let backup_node = peer.backup.as_ref()?;
    let primary_node = peer.primary.clone().unwrap_or_default();
    let (Some(primary), Some(backup)) = (primary_node.public, backup_node.public) else {
        notes.adjusted(lines.backup, "backup", "no pair made: a pair needs both the primary's and the backup's public address (primary = IP, backup = IP); nothing floats between the two routers until [[vrrp]] instances and [pair] halves are added");
        return None;
    };
    let floating = floating_addresses(config, lines, notes);
    if floating.is_empty() {
        notes.adjusted(lines.backup, "backup", "no pair made: no active virtual server and no nat_router has an address, so there is nothing to float between the primary and the backup");
        return None;
    }
    let advert_interval_cs = advert_interval(peer.heartbeat_interval_ms, lines, notes);
    let vrrp = instances(floating, advert_interval_cs, notes);
    let mut sync_groups = Vec::new();
    if vrrp.len() > 1 {
        let mut group = SyncGroup {
            name: Name::try_from(SYNC_GROUP).unwrap_or_default(),
            ..SyncGroup::default()
        };
        for instance in &vrrp {
            let _ = group.members.push(instance.name.clone());
        }
        notes.adjusted(
            lines.backup,
            "backup",
            format!(
                "instances {} fail over together (sync group {SYNC_GROUP}), as pulse moved all floating addresses at once",
                names(&vrrp)
            ),
        );
        sync_groups.push(group);
    }
    let mut pair = PairHalves::default();
    for instance in &vrrp {
        for (half, priority, state) in [
            (&mut pair.a, PRIMARY_PRIORITY, InitialState::Master),
            (&mut pair.b, BACKUP_PRIORITY, InitialState::Backup),
        ] {
            let _ = half.vrrp.push(VrrpOverride {
                name: instance.name.clone(),
                priority: Some(priority),
                initial_state: Some(state),
                ..VrrpOverride::default()
            });
        }
    }
    notes.adjusted(
        lines.backup,
        "backup",
        format!(
            "the primary ({primary}) and the backup ({backup}) become one pair config: [pair.a] is the primary (priority {PRIMARY_PRIORITY}, starts master), [pair.b] the backup (priority {BACKUP_PRIORITY}, starts backup), the shared instances keep priority {BACKUP_PRIORITY}; preempt stays on, so the primary takes the addresses back when it returns, as pulse did"
        ),
    );
    box_addresses(
        &vrrp,
        (("primary", lines.primary), "backup"),
        (primary, Some(backup)),
        &mut pair,
        notes,
    );
    if let Some(private) = primary_node.private {
        box_addresses(
            &vrrp,
            (("primary_private", lines.primary_private), "backup_private"),
            (private, backup_node.private),
            &mut pair,
            notes,
        );
    }
    Some(Floated {
        vrrp,
        sync_groups,
        pair,
    })
}

fn names(vrrp: &[VrrpInstance]) -> String {
    vrrp.iter()
        .map(|v| v.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Every address pulse floated, once, in file order: the active virtual servers' addresses,
/// then the NAT router.
fn floating_addresses(config: &Config, lines: &Lines, notes: &mut Notes) -> Vec<Floating> {
    let mut floating: Vec<Floating> = Vec::new();
    let mut inactive = Vec::new();
    let mut candidates = Vec::new();
    for (index, service) in config.virtual_services.iter().enumerate() {
        let Some(address) = service.address else {
            continue;
        };
        let what = format!("virtual {}", service.name);
        if !service.active {
            inactive.push((address, what, lines.service(index)));
            continue;
        }
        let max = Family::of(&address).max_prefix();
        let prefix = service.address_prefix.map_or(max, |p| p.min(max));
        candidates.push(Floating {
            address,
            prefix,
            device: service.interface.clone(),
            what,
            line: lines.service(index),
        });
    }
    if let Some(nat) = &config.nat_gateway {
        let max = Family::of(&nat.address).max_prefix();
        candidates.push(Floating {
            address: nat.address,
            prefix: nat.prefix.min(max),
            device: Some(nat.interface.clone()),
            what: String::from("nat_router"),
            line: lines.nat_router,
        });
    }
    for candidate in candidates {
        match floating.iter().find(|f| f.address == candidate.address) {
            Some(first) => {
                if candidate.device.as_deref().map(base) != first.device.as_deref().map(base)
                    && candidate.device.is_some()
                {
                    notes.adjusted(
                        candidate.line,
                        "address",
                        format!(
                            "{} shares {} with {}, which already floats it on {}; its device {} is not used",
                            candidate.what,
                            candidate.address,
                            first.what,
                            first.device.as_deref().map_or("the guessed interface", base),
                            candidate.device.as_deref().unwrap_or_default()
                        ),
                    );
                }
            }
            None => floating.push(candidate),
        }
    }
    for (address, what, line) in inactive {
        if floating.iter().all(|f| f.address != address) {
            notes.adjusted(
                line,
                "active",
                format!("{what} is inactive: its address {address} does not float; add it to the vips of the instance on its interface when you activate it"),
            );
        }
    }
    guess_devices(&mut floating, notes);
    floating
}

/// An address without a device goes on the interface most other addresses use (the first one
/// on a tie), or `eth0` when none has a device.
fn guess_devices(floating: &mut [Floating], notes: &mut Notes) {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for device in floating.iter().filter_map(|f| f.device.as_deref()) {
        match counts.iter_mut().find(|(name, _)| *name == base(device)) {
            Some((_, count)) => *count += 1,
            None => counts.push((base(device), 1)),
        }
    }
    let mut best: Option<(&str, usize)> = None;
    for (name, count) in counts {
        if best.is_none_or(|(_, most)| count > most) {
            best = Some((name, count));
        }
    }
    let (guess, why) = match best {
        Some((name, _)) => (
            IfName::try_from(name).unwrap_or_default(),
            "the interface of the other floating addresses",
        ),
        None => (
            IfName::try_from("eth0").unwrap_or_default(),
            "no floating address names a device",
        ),
    };
    for item in floating.iter_mut().filter(|f| f.device.is_none()) {
        notes.adjusted(
            item.line,
            "address",
            format!(
                "{} gives no device for {}: it floats on {guess} ({why}); fix the instance's interface if that is wrong",
                item.what, item.address
            ),
        );
        item.device = Some(guess.clone());
    }
}

/// The advert interval: Piranha's `keepalive` (the peer link's heartbeat interval, whole
/// seconds, when the file gave one), else VRRP's 1 s.
fn advert_interval(heartbeat_ms: u32, lines: &Lines, notes: &mut Notes) -> u16 {
    if heartbeat_ms < 1000 {
        notes.adjusted(lines.backup, "keepalive", format!("lvs.cf gives no keepalive: the VRRP instances advertise every 1 s (advert_interval_cs = {DEFAULT_ADVERT_CS}, the VRRP default), so the backup takes over about 3 s after the primary stops"));
        return DEFAULT_ADVERT_CS;
    }
    let wanted = heartbeat_ms / 10;
    let cs = u16::try_from(wanted)
        .unwrap_or(MAX_ADVERT_CS)
        .min(MAX_ADVERT_CS);
    let (line, keyword) = lines.heartbeat.unwrap_or((lines.backup, "keepalive"));
    let seconds = heartbeat_ms / 1000;
    let capped = if u32::from(cs) < wanted {
        format!(" (capped: VRRPv3 advertises at most every {MAX_ADVERT_CS} cs)")
    } else {
        String::new()
    };
    notes.adjusted(
        line,
        keyword,
        format!(
            "the VRRP instances advertise every {seconds} s like pulse's keepalive (advert_interval_cs = {cs}{capped}): the backup takes over after 3 missed adverts, about {} s; for 1 s adverts set advert_interval_cs = 100 on each instance",
            3 * u32::from(cs) / 100
        ),
    );
    cs
}

/// One instance per (interface, family), in the order the addresses came.
fn instances(
    floating: Vec<Floating>,
    advert_interval_cs: u16,
    notes: &mut Notes,
) -> Vec<VrrpInstance> {
    let mut vrrp: Vec<VrrpInstance> = Vec::new();
    // Per instance: what each address came from, for the note.
    let mut sources: Vec<Vec<String>> = Vec::new();
    let mut first_lines: Vec<(usize, &'static str)> = Vec::new();
    for item in floating {
        let device = item.device.unwrap_or_default();
        let link = base(&device);
        let family = Family::of(&item.address);
        let name = match family {
            Family::Ipv4 => format!("lvs_{link}"),
            Family::Ipv6 => format!("lvs_{link}_v6"),
        };
        let index = match vrrp.iter().position(|v| v.name == name.as_str()) {
            Some(index) => index,
            None => {
                let Some(vrid) = u8::try_from(usize::from(FIRST_VRID) + vrrp.len()).ok() else {
                    notes.not_carried(
                        item.line,
                        "address",
                        format!(
                            "{} does not float: no VRID is left for another instance",
                            item.address
                        ),
                    );
                    continue;
                };
                let (Ok(name), Ok(interface)) =
                    (Name::try_from(name.as_str()), IfName::try_from(link))
                else {
                    continue;
                };
                vrrp.push(VrrpInstance {
                    name,
                    version: VrrpVersion::V3,
                    vrid,
                    interface,
                    priority: BACKUP_PRIORITY,
                    advert_interval_cs,
                    initial_state: InitialState::Backup,
                    preempt: true,
                    accept_mode: true,
                    ..VrrpInstance::default()
                });
                sources.push(Vec::new());
                let keyword = if item.what == "nat_router" {
                    "nat_router"
                } else {
                    "address"
                };
                first_lines.push((item.line, keyword));
                vrrp.len() - 1
            }
        };
        // An alias label (`eth0:1`) is kept: it is how pulse named the address (IPv4 only).
        let label = (device.contains(':') && family == Family::Ipv4).then(|| device.clone());
        let vip = Vip {
            address: item.address,
            prefix: item.prefix,
            interface: None,
            label: label.clone(),
        };
        let (Some(instance), Some(source)) = (vrrp.get_mut(index), sources.get_mut(index)) else {
            continue;
        };
        if instance.vips.push(vip).is_err() {
            notes.not_carried(
                item.line,
                "address",
                format!(
                    "{} does not float: {} already has the maximum of 64 addresses; split it",
                    item.address, instance.name
                ),
            );
            continue;
        }
        let label = label.map(|l| format!(", label {l}")).unwrap_or_default();
        source.push(format!(
            "{}/{} ({}{label})",
            item.address, item.prefix, item.what
        ));
    }
    for ((instance, source), (line, keyword)) in vrrp.iter().zip(&sources).zip(first_lines) {
        notes.adjusted(
            line,
            keyword,
            format!(
                "vrrp {} floats {} on {}: virtual_router_id {} picked (lvs.cf has none; change it if another VRRP router on that LAN uses it), VRRPv3 with multicast adverts, accept_mode = true (pulse's aliases were ordinary addresses the router answered on)",
                instance.name,
                source.join(", "),
                instance.interface,
                instance.vrid
            ),
        );
    }
    vrrp
}

/// Puts a router's own address (`primary`, `primary_private`) and its partner's on the
/// interface whose floating address's subnet holds them, in each box's half.
fn box_addresses(
    vrrp: &[VrrpInstance],
    ((a_key, line), b_key): ((&str, usize), &str),
    (a_address, b_address): (IpAddr, Option<IpAddr>),
    pair: &mut PairHalves,
    notes: &mut Notes,
) {
    let covering = vrrp.iter().find_map(|instance| {
        instance.vips.iter().find_map(|vip| {
            let net = IpCidr {
                addr: vip.address,
                prefix: vip.prefix,
            };
            (vip.prefix < Family::of(&vip.address).max_prefix()
                && vip.address != a_address
                && net.contains(&a_address))
            .then_some((instance.interface.clone(), net))
        })
    });
    let Some((interface, net)) = covering else {
        notes.adjusted(
            line,
            a_key,
            format!("{a_key} {a_address}: no floating address with a netmask (vip_nmask, nat_nmask) covers it, so the import cannot tell its interface; add each box's address under [[pair.a.interfaces]] / [[pair.b.interfaces]]"),
        );
        return;
    };
    let cidr = |addr| IpCidr {
        addr,
        prefix: net.prefix,
    };
    add_address(&mut pair.a, &interface, cidr(a_address));
    let b_text = match b_address {
        Some(b_address) if net.contains(&b_address) && b_address != a_address => {
            add_address(&mut pair.b, &interface, cidr(b_address));
            format!(", [pair.b] gets {b_key} {}", cidr(b_address))
        }
        Some(b_address) => format!(
            "; {b_key} {b_address} is not in that subnet, so [pair.b] has no address on {interface}: add it"
        ),
        None => format!("; lvs.cf gives no {b_key}, so [pair.b] has no address on {interface}: add it"),
    };
    notes.adjusted(
        line,
        a_key,
        format!(
            "{a_key} {a_address} lies in {}/{} (a floating address on {interface}): [pair.a] gets {} on {interface}{b_text}",
            net.addr,
            net.prefix,
            cidr(a_address)
        ),
    );
}

fn add_address(half: &mut BoxHalf, interface: &IfName, address: IpCidr) {
    let index = match half.interfaces.iter().position(|i| i.name == *interface) {
        Some(index) => index,
        None => {
            if half
                .interfaces
                .push(Interface {
                    name: interface.clone(),
                    ..Interface::default()
                })
                .is_err()
            {
                return;
            }
            half.interfaces.len() - 1
        }
    };
    if let Some(entry) = half.interfaces.as_mut_slice().get_mut(index) {
        if !entry.addresses.contains(&address) {
            let _ = entry.addresses.push(address);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_strips_the_alias() {
        assert_eq!(base("eth0:1"), "eth0");
        assert_eq!(base("eth1"), "eth1");
        assert_eq!(base(""), "");
    }
}
