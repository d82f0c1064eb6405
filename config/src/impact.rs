//! Impact preview: what committing a candidate would do to the running box, one line per change,
//! each hitless or disruptive with the reason, so an operator can judge a commit before making it.
//!
//! It is a pure function of the two configs. It cannot know whether this box is VRRP master right
//! now, so a VIP gap is stated "if this box is master" (a backup loses nothing).
//!
//! # Identity rules
//!
//! These are the contract the daemon's engines follow: what keeps its identity is changed in place,
//! what changes identity is removed and added again.
//!
//! - **VRRP instance**: (interface, address family of the first VIP, VRID). A new interface,
//!   family or VRID recreates it: disruptive if this box is master, the VIPs are gone until the
//!   partner's Master_Down_Interval runs out (3 x advert interval + (256 - priority) x advert
//!   interval / 256, RFC 9568 §6.1, with the instance's own priority and interval standing in for
//!   the partner's). In place and hitless: name, priority (a lower one may hand over to the
//!   partner by preemption), version, preempt, preempt delay, VIPs (a removed VIP is disruptive:
//!   its traffic stops), tracking, GARP, advert interval, auth, accept mode, initial state,
//!   unicast source and peers. Sync groups (by name) change in place.
//! - **LVS virtual service**: its fwmark, else (address, port, protocol). A new key recreates it:
//!   connections to the old service are dropped. In place (IPVS edits the service): scheduler,
//!   flags, persistence, timeouts, quorum, sorry server, checks. The service's default forwarding
//!   method changes the destinations that follow it (see below).
//! - **Real server**: (service, address, effective port). Added is hitless; removed (or
//!   deactivated) drops its connections. In place and hitless: weight, thresholds, check, failure
//!   policy. A new forwarding method is disruptive for that server: IPVS edits the destination,
//!   but its existing connections keep the old method.
//! - **Interface** (by name): an added address is hitless, a removed one stops its traffic; a new
//!   role moves the name to another port; an MTU change may reset the link (driver-dependent).
//! - **Bond** (by name): a new mode, lacp_rate, ad_select or fail_over_mac takes the bond down
//!   and re-enslaves its ports (link flaps); a removed slave fails its
//!   traffic over; other settings change in place.
//! - **Firewall-mark rules**: one nftables transaction, hitless. **NAT gateway** and
//!   **real-server role** VIPs: added hitless, removed or moved disruptive. **Peer link**: any
//!   change restarts connection sync. **CLUSTERIP** groups (by name): a new address, interface or
//!   MAC is disruptive; hash and bucket changes are hitless (each box keeps the flows it has). **System** and **notification** settings are hitless; a new management
//!   address drops the sessions on the old one.
//! - **Pair halves** (`[pair.a]`, `[pair.b]`): each box is previewed on its effective config
//!   ([`Config::for_box`]) with the rules above; what only one box sees is listed for that box
//!   (`box a: ...`), what both see alike once.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;

use crate::incremental::ServiceDiff;
use crate::model::{
    Bond, ClusterIpGroup, Config, FwmarkRule, Interface, Management, NatGateway, Notify, PeerLink,
    RealServer, RealServerRole, Role, SyncGroup, System, TlsTrust, VirtualService, VrrpInstance,
};
use crate::net::Family;

/// The part of the daemon that carries a change out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Engine {
    System,
    Interfaces,
    Vrrp,
    Lvs,
    /// The real-server role (VIPs on lo, tunnel), not LVS real servers.
    RealServer,
    Bonds,
    ClusterIp,
    PeerLink,
    Management,
}

impl Engine {
    /// Lowercase name, as lines start with it.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::System => "system",
            Engine::Interfaces => "interfaces",
            Engine::Vrrp => "vrrp",
            Engine::Lvs => "lvs",
            Engine::RealServer => "real-server",
            Engine::Bonds => "bonds",
            Engine::ClusterIp => "clusterip",
            Engine::PeerLink => "peer-link",
            Engine::Management => "management",
        }
    }
}

impl fmt::Display for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether something appears, changes or goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImpactKind {
    Added,
    Changed,
    Removed,
}

/// Whether traffic notices a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disruption {
    Hitless,
    Disruptive { why: String },
}

impl Disruption {
    pub fn is_disruptive(&self) -> bool {
        matches!(self, Disruption::Disruptive { .. })
    }
}

impl fmt::Display for Disruption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Disruption::Hitless => f.write_str("hitless"),
            Disruption::Disruptive { why } => write!(f, "disruptive: {why}"),
        }
    }
}

/// One change and what it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Impact {
    pub engine: Engine,
    pub what: String,
    pub kind: ImpactKind,
    pub disruption: Disruption,
}

impl fmt::Display for Impact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.engine, self.what, self.disruption)
    }
}

/// Every change a commit would make, in config order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Preview {
    pub changes: Vec<Impact>,
}

impl Preview {
    /// Whether no change disrupts traffic.
    pub fn is_hitless(&self) -> bool {
        !self.changes.iter().any(|c| c.disruption.is_disruptive())
    }
}

impl fmt::Display for Preview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for change in &self.changes {
            writeln!(f, "{change}")?;
        }
        Ok(())
    }
}

/// What committing `candidate` over `running` does, change by change.
pub fn preview(running: &Config, candidate: &Config) -> Preview {
    preview_known(running, candidate, &ServiceDiff::new(running, candidate))
}

/// [`preview`] when the caller compared the two configs already (`diff` is of the same two).
pub(crate) fn preview_known(running: &Config, candidate: &Config, diff: &ServiceDiff) -> Preview {
    let mut out = Out::default();
    if diff.identical() {
        return Preview::default();
    }
    if running.pair.is_some() || candidate.pair.is_some() {
        return pair_preview(running, candidate);
    }
    // Destructured so that a new top-level field does not compile until it is previewed.
    let Config {
        system,
        management,
        peer_link,
        notify,
        interfaces,
        bonds,
        vrrp,
        sync_groups,
        virtual_services,
        fwmark_rules,
        nat_gateway,
        real_server,
        clusterip,
        pair: _,
        tls_trust,
    } = candidate;
    let old = running;
    system_changes(&mut out, old, system, notify);
    management_changes(&mut out, &old.management, management);
    peer_link_changes(&mut out, old.peer_link.as_ref(), peer_link.as_ref());
    for pair in pair_by(&old.interfaces, interfaces, |i| i.name.as_str()) {
        interface_changes(&mut out, pair);
    }
    for pair in pair_by(&old.bonds, bonds, |b| b.name.as_str()) {
        bond_changes(&mut out, pair);
    }
    for pair in rematch(pair_by(&old.vrrp, vrrp, vrrp_key), |v| v.name.as_str()) {
        vrrp_changes(&mut out, pair);
    }
    for pair in pair_by(&old.sync_groups, sync_groups, |g| g.name.as_str()) {
        sync_group_changes(&mut out, pair);
    }
    service_impacts(
        &mut out,
        &old.virtual_services,
        virtual_services,
        Some(diff),
    );
    if old.fwmark_rules != *fwmark_rules {
        fwmark_changes(&mut out, &old.fwmark_rules, fwmark_rules);
    }
    nat_gateway_changes(&mut out, old.nat_gateway.as_ref(), nat_gateway.as_ref());
    real_server_role_changes(&mut out, old.real_server.as_ref(), real_server.as_ref());
    for pair in pair_by(&old.clusterip, clusterip, |c| c.name.as_str()) {
        clusterip_changes(&mut out, pair);
    }
    for pair in pair_by(&old.tls_trust, tls_trust, |t| t.name.as_str()) {
        tls_trust_changes(&mut out, pair);
    }
    Preview { changes: out.0 }
}

/// The preview of a pair config: each box's effective config ([`Config::for_box`]) before and
/// after. A change both boxes see alike is listed once as it is; one that only one box sees (its
/// half changed, or a shared change its half overrides on the other) is listed for that box,
/// `what` starting with `box a: ` or `box b: `. The identity rules are the single-box ones, so a
/// changed priority, unicast source or peers, or initial state in a half is hitless in place,
/// and a changed interface address is hitless when added, disruptive when removed.
fn pair_preview(running: &Config, candidate: &Config) -> Preview {
    let [a, b] = Role::BOTH.map(|role| {
        let (old, new) = (running.for_box(role), candidate.for_box(role));
        preview_known(&old, &new, &ServiceDiff::new(&old, &new)).changes
    });
    let mut changes = Vec::with_capacity(a.len().max(b.len()));
    let mut only_b: Vec<Option<Impact>> = b.into_iter().map(Some).collect();
    let mut only_a = Vec::new();
    for change in a {
        match only_b
            .iter_mut()
            .find(|other| other.as_ref() == Some(&change))
        {
            Some(slot) => {
                *slot = None;
                changes.push(change);
            }
            None => only_a.push(change),
        }
    }
    for (role, list) in [
        (Role::A, only_a),
        (Role::B, only_b.into_iter().flatten().collect()),
    ] {
        changes.extend(list.into_iter().map(|mut change| {
            change.what = format!("box {role}: {}", change.what);
            change
        }));
    }
    Preview { changes }
}

fn system_changes(out: &mut Out, old: &Config, system: &System, notify: &Option<Notify>) {
    let mut fields = Fields::default();
    fields.show("hostname", &old.system.hostname, &system.hostname);
    fields.changed(
        "console password",
        &old.system.console_password_hash,
        &system.console_password_hash,
    );
    fields.changed("notifications", &old.notify, notify);
    out.fields(Engine::System, "", fields, None);
}

fn management_changes(out: &mut Out, was: &Management, is: &Management) {
    let why = (was.address.is_some() || was.interface.is_some())
        .then_some("management sessions to the old address drop");
    let mut fields = Fields::default();
    fields.opt("interface", &was.interface, &is.interface);
    fields.opt("address", &was.address, &is.address);
    out.fields(Engine::Management, "", fields, why);
    let mut fields = Fields::default();
    fields.opt("gateway", &was.gateway, &is.gateway);
    fields.opt("metrics", &was.metrics, &is.metrics);
    fields.changed("syslog", &was.syslog, &is.syslog);
    fields.changed("time_servers", &was.time_servers, &is.time_servers);
    out.fields(Engine::Management, "", fields, None);
}

/// A trust set: the TLS checks naming it verify against the new anchors from their next run.
fn tls_trust_changes(out: &mut Out, pair: (Option<&TlsTrust>, Option<&TlsTrust>)) {
    match pair {
        (None, Some(new)) => out.hitless(
            Engine::Lvs,
            ImpactKind::Added,
            format!("TLS trust set {} added", new.name),
        ),
        (Some(old), None) => out.hitless(
            Engine::Lvs,
            ImpactKind::Removed,
            format!("TLS trust set {} removed", old.name),
        ),
        (Some(old), Some(new)) if old != new => out.hitless(
            Engine::Lvs,
            ImpactKind::Changed,
            format!(
                "TLS trust set {}: certificates changed (checks naming it verify against them from their next run)",
                new.name
            ),
        ),
        _ => {}
    }
}

fn fwmark_changes(out: &mut Out, old: &[FwmarkRule], new: &[FwmarkRule]) {
    let key = |r: &FwmarkRule| {
        let d = r.destination;
        (
            r.mark,
            r.protocol.ip_protocol(),
            d.addr,
            d.prefix,
            r.port_first,
            r.port_last,
        )
    };
    let pairs = pair_by(old, new, key);
    let added = pairs.iter().filter(|p| p.0.is_none()).count();
    let removed = pairs.iter().filter(|p| p.1.is_none()).count();
    let what =
        format!("firewall-mark rules: {added} added, {removed} removed (one nftables transaction)");
    out.hitless(Engine::Lvs, ImpactKind::Changed, what);
}

fn nat_gateway_changes(out: &mut Out, old: Option<&NatGateway>, new: Option<&NatGateway>) {
    match (old, new) {
        (None, Some(new)) => out.hitless(
            Engine::Lvs,
            ImpactKind::Added,
            format!(
                "NAT gateway {}/{} on {} added",
                new.address, new.prefix, new.interface
            ),
        ),
        (Some(was), None) => out.disruptive(
            Engine::Lvs,
            ImpactKind::Removed,
            format!("NAT gateway {} removed", was.address),
            "NAT real servers lose their default gateway: their replies stop",
        ),
        (Some(was), Some(new)) if was != new => out.disruptive(
            Engine::Lvs,
            ImpactKind::Changed,
            format!(
                "NAT gateway {}/{} on {} -> {}/{} on {}",
                was.address, was.prefix, was.interface, new.address, new.prefix, new.interface
            ),
            "the gateway address is removed and added again: NAT replies are lost meanwhile",
        ),
        _ => {}
    }
}

/// Old and new items paired by `key`: first the removed ones (old order), then every new item
/// (new order) with its old counterpart when it has one. Equal keys pair up in order.
pub(crate) fn pair_by<'a, T, K: Ord>(
    old: &'a [T],
    new: &'a [T],
    key: impl Fn(&'a T) -> K,
) -> Vec<(Option<&'a T>, Option<&'a T>)> {
    let mut by_key: BTreeMap<K, Vec<usize>> = BTreeMap::new();
    for (index, item) in old.iter().enumerate().rev() {
        by_key.entry(key(item)).or_default().push(index);
    }
    let matched: Vec<Option<usize>> = new
        .iter()
        .map(|item| by_key.get_mut(&key(item)).and_then(Vec::pop))
        .collect();
    let mut used = vec![false; old.len()];
    for index in matched.iter().flatten() {
        if let Some(slot) = used.get_mut(*index) {
            *slot = true;
        }
    }
    let removed = old
        .iter()
        .zip(&used)
        .filter(|(_, used)| !**used)
        .map(|(item, _)| (Some(item), None));
    let current = new
        .iter()
        .zip(matched)
        .map(|(item, index)| (index.and_then(|i| old.get(i)), Some(item)));
    removed.chain(current).collect()
}

/// An item's fate, after identity and name matching.
#[derive(Debug)]
enum Fate<'a, T> {
    Added(&'a T),
    Removed(&'a T),
    Kept(&'a T, &'a T),
    /// Same name, new identity: removed and added again.
    Recreated(&'a T, &'a T),
}

/// Pairs a removed and an added item that share a non-empty name as recreated.
fn rematch<'a, T: PartialEq>(
    pairs: Vec<(Option<&'a T>, Option<&'a T>)>,
    name: impl Fn(&T) -> &str,
) -> Vec<Fate<'a, T>> {
    let mut removed: BTreeMap<&str, Vec<&'a T>> = BTreeMap::new();
    for pair in pairs.iter().rev() {
        if let (Some(old), None) = *pair {
            if !name(old).is_empty() {
                removed.entry(name(old)).or_default().push(old);
            }
        }
    }
    let mut recreated: Vec<&T> = Vec::new();
    let mut fates = Vec::new();
    for pair in &pairs {
        match *pair {
            (Some(old), Some(new)) if old != new => fates.push(Fate::Kept(old, new)),
            (None, Some(new)) => match removed.get_mut(name(new)).and_then(Vec::pop) {
                Some(old) => {
                    recreated.push(old);
                    fates.push(Fate::Recreated(old, new));
                }
                None => fates.push(Fate::Added(new)),
            },
            _ => {}
        }
    }
    let gone = pairs.iter().filter_map(|pair| match *pair {
        (Some(old), None) if !recreated.iter().any(|r| core::ptr::eq(*r, old)) => {
            Some(Fate::Removed(old))
        }
        _ => None,
    });
    gone.chain(fates).collect()
}

#[derive(Debug, Default)]
struct Out(Vec<Impact>);

impl Out {
    fn hitless(&mut self, engine: Engine, kind: ImpactKind, what: String) {
        self.0.push(Impact {
            engine,
            what,
            kind,
            disruption: Disruption::Hitless,
        });
    }

    fn disruptive(&mut self, engine: Engine, kind: ImpactKind, what: String, why: &str) {
        self.0.push(Impact {
            engine,
            what,
            kind,
            disruption: Disruption::Disruptive {
                why: why.to_string(),
            },
        });
    }

    /// One change per changed field, under `prefix` ("instance web_vip"), all with one rule.
    fn fields(&mut self, engine: Engine, prefix: &str, fields: Fields, why: Option<&str>) {
        for field in fields.0 {
            let what = if prefix.is_empty() {
                field
            } else {
                format!("{prefix}: {field}")
            };
            match why {
                Some(why) => self.disruptive(engine, ImpactKind::Changed, what, why),
                None => self.hitless(engine, ImpactKind::Changed, what),
            }
        }
    }
}

/// Changed fields as "name old -> new".
#[derive(Debug, Default)]
struct Fields(Vec<String>);

impl Fields {
    fn show<T: PartialEq + fmt::Display>(&mut self, name: &str, old: &T, new: &T) {
        if old != new {
            self.0.push(format!("{name} {old} -> {new}"));
        }
    }

    fn opt<T: PartialEq + fmt::Display>(&mut self, name: &str, old: &Option<T>, new: &Option<T>) {
        if old != new {
            let text = |v: &Option<T>| {
                v.as_ref()
                    .map_or_else(|| String::from("none"), T::to_string)
            };
            self.0
                .push(format!("{name} {} -> {}", text(old), text(new)));
        }
    }

    /// An enum by its lowercase variant name.
    fn variant<T: PartialEq + fmt::Debug>(&mut self, name: &str, old: &T, new: &T) {
        if old != new {
            let text = |v: &T| format!("{v:?}").to_lowercase();
            self.0
                .push(format!("{name} {} -> {}", text(old), text(new)));
        }
    }

    /// Something too big (or secret) to show.
    fn changed<T: PartialEq>(&mut self, name: &str, old: &T, new: &T) {
        if old != new {
            self.0.push(format!("{name} changed"));
        }
    }
}

fn peer_link_changes(out: &mut Out, old: Option<&PeerLink>, new: Option<&PeerLink>) {
    const RESTART: &str =
        "connection sync restarts: a takeover in the next seconds may lose new connections";
    match (old, new) {
        (None, Some(_)) => out.hitless(
            Engine::PeerLink,
            ImpactKind::Added,
            "peer link configured".into(),
        ),
        (Some(_), None) => out.disruptive(
            Engine::PeerLink,
            ImpactKind::Removed,
            "peer link removed".into(),
            "connection sync stops: a takeover loses the established connections",
        ),
        (Some(was), Some(is)) => {
            let mut fields = Fields::default();
            fields.show("interface", &was.interface, &is.interface);
            fields.show(
                "pair_id",
                &format!("{:016x}", was.pair_id),
                &format!("{:016x}", is.pair_id),
            );
            fields.show(
                "heartbeat_interval_ms",
                &was.heartbeat_interval_ms,
                &is.heartbeat_interval_ms,
            );
            fields.show("dead_after_ms", &was.dead_after_ms, &is.dead_after_ms);
            fields.show("heartbeat_port", &was.heartbeat_port, &is.heartbeat_port);
            fields.show("ipvs_sync", &was.ipvs_sync, &is.ipvs_sync);
            fields.opt(
                "ipvs_sync_interface",
                &was.ipvs_sync_interface,
                &is.ipvs_sync_interface,
            );
            fields.changed("primary", &was.primary, &is.primary);
            fields.changed("backup", &was.backup, &is.backup);
            fields.changed("uplink_probes", &was.uplink_probes, &is.uplink_probes);
            out.fields(Engine::PeerLink, "", fields, Some(RESTART));
        }
        (None, None) => {}
    }
}

fn interface_changes(out: &mut Out, pair: (Option<&Interface>, Option<&Interface>)) {
    let list = |i: &Interface| {
        let addresses: Vec<String> = i.addresses.iter().map(ToString::to_string).collect();
        addresses.join(", ")
    };
    match pair {
        (None, Some(new)) => out.hitless(
            Engine::Interfaces,
            ImpactKind::Added,
            format!("interface {} added", new.name),
        ),
        (Some(old), None) if old.addresses.is_empty() => out.hitless(
            Engine::Interfaces,
            ImpactKind::Removed,
            format!("interface {} removed", old.name),
        ),
        (Some(old), None) => out.disruptive(
            Engine::Interfaces,
            ImpactKind::Removed,
            format!("interface {} removed", old.name),
            &format!("traffic to its addresses {} stops", list(old)),
        ),
        (Some(old), Some(new)) if old != new => {
            let prefix = format!("interface {}", new.name);
            let mut fields = Fields::default();
            fields.opt(
                "role",
                &old.role.map(|r| r.as_str()),
                &new.role.map(|r| r.as_str()),
            );
            out.fields(
                Engine::Interfaces,
                &prefix,
                fields,
                Some("the name moves to another port"),
            );
            let mut fields = Fields::default();
            fields.opt("mtu", &old.mtu, &new.mtu);
            let why = "the NIC may reset its link to change the MTU (driver-dependent)";
            out.fields(Engine::Interfaces, &prefix, fields, Some(why));
            for pair in pair_by(&old.addresses, &new.addresses, |a| (a.addr, a.prefix)) {
                match pair {
                    (None, Some(added)) => out.hitless(
                        Engine::Interfaces,
                        ImpactKind::Added,
                        format!("{prefix}: address {added} added"),
                    ),
                    (Some(removed), None) => out.disruptive(
                        Engine::Interfaces,
                        ImpactKind::Removed,
                        format!("{prefix}: address {removed} removed"),
                        "traffic to it stops",
                    ),
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

fn bond_changes(out: &mut Out, pair: (Option<&Bond>, Option<&Bond>)) {
    match pair {
        (None, Some(new)) => out.hitless(
            Engine::Bonds,
            ImpactKind::Added,
            format!("bond {} added", new.name),
        ),
        (Some(old), None) => out.disruptive(
            Engine::Bonds,
            ImpactKind::Removed,
            format!("bond {} removed", old.name),
            "its slaves are released: traffic over the bond stops",
        ),
        (Some(old), Some(new)) if old != new => {
            let prefix = format!("bond {}", new.name);
            let mut fields = Fields::default();
            // What the kernel takes only from a bond that is down (mode, lacp_rate, ad_select)
            // or has no ports (mode, fail_over_mac): its ports are released and taken again.
            fields.show("mode", &old.mode.kernel_name(), &new.mode.kernel_name());
            fields.variant("lacp_rate", &old.lacp_rate, &new.lacp_rate);
            fields.variant("ad_select", &old.ad_select, &new.ad_select);
            fields.variant("fail_over_mac", &old.fail_over_mac, &new.fail_over_mac);
            out.fields(
                Engine::Bonds,
                &prefix,
                fields,
                Some("bond taken down and its ports re-enslaved: link flaps"),
            );
            for pair in pair_by(&old.slaves, &new.slaves, |slave| slave.as_str()) {
                match pair {
                    (None, Some(slave)) => out.hitless(
                        Engine::Bonds,
                        ImpactKind::Added,
                        format!("{prefix}: slave {slave} added"),
                    ),
                    (Some(slave), None) => out.disruptive(
                        Engine::Bonds,
                        ImpactKind::Removed,
                        format!("{prefix}: slave {slave} removed"),
                        "traffic it carries fails over to another slave (brief loss)",
                    ),
                    _ => {}
                }
            }
            let mut fields = Fields::default();
            fields.changed("monitor", &old.monitor, &new.monitor);
            fields.show("up_delay_ms", &old.up_delay_ms, &new.up_delay_ms);
            fields.show("down_delay_ms", &old.down_delay_ms, &new.down_delay_ms);
            fields.variant(
                "xmit_hash_policy",
                &old.xmit_hash_policy,
                &new.xmit_hash_policy,
            );
            fields.opt("primary", &old.primary, &new.primary);
            fields.show("min_links", &old.min_links, &new.min_links);
            fields.variant(
                "primary_reselect",
                &old.primary_reselect,
                &new.primary_reselect,
            );
            fields.opt("mtu", &old.mtu, &new.mtu);
            out.fields(Engine::Bonds, &prefix, fields, None);
        }
        _ => {}
    }
}

fn vrrp_key(instance: &VrrpInstance) -> (String, Option<Family>, u8) {
    let family = instance.vips.first().map(|vip| Family::of(&vip.address));
    (instance.interface.to_string(), family, instance.vrid)
}

/// Master_Down_Interval of RFC 9568 §6.1 in centiseconds, rounded up.
fn master_down_cs(instance: &VrrpInstance) -> u32 {
    let interval = u32::from(instance.advert_interval_cs);
    let skew = (256 - u32::from(instance.priority)) * interval;
    3 * interval + skew.div_ceil(256)
}

fn vip_gap(instance: &VrrpInstance) -> String {
    let tenths = master_down_cs(instance).div_ceil(10);
    format!(
        "VIP gap up to {}.{} s if this box is master",
        tenths / 10,
        tenths % 10
    )
}

fn family_name(family: Option<Family>) -> &'static str {
    match family {
        Some(Family::Ipv4) => "IPv4",
        Some(Family::Ipv6) => "IPv6",
        None => "none (no VIPs)",
    }
}

fn vrrp_changes(out: &mut Out, fate: Fate<'_, VrrpInstance>) {
    match fate {
        Fate::Added(new) => out.hitless(
            Engine::Vrrp,
            ImpactKind::Added,
            format!(
                "instance {} added (VRID {} on {})",
                new.name, new.vrid, new.interface
            ),
        ),
        Fate::Removed(old) => out.disruptive(
            Engine::Vrrp,
            ImpactKind::Removed,
            format!("instance {} removed", old.name),
            &format!("its VIPs leave this box: {}", vip_gap(old)),
        ),
        Fate::Recreated(old, new) => {
            let ((old_if, old_family, old_vrid), (new_if, new_family, new_vrid)) =
                (vrrp_key(old), vrrp_key(new));
            let mut why = Vec::new();
            if old_if != new_if {
                why.push(format!("interface changed {old_if} -> {new_if}"));
            }
            if old_family != new_family {
                let (a, b) = (family_name(old_family), family_name(new_family));
                why.push(format!("address family changed {a} -> {b}"));
            }
            if old_vrid != new_vrid {
                why.push(format!("VRID changed {old_vrid} -> {new_vrid}"));
            }
            out.disruptive(
                Engine::Vrrp,
                ImpactKind::Changed,
                format!("instance {} recreated ({})", new.name, why.join(", ")),
                &vip_gap(old),
            );
        }
        Fate::Kept(old, new) => {
            let prefix = format!("instance {}", new.name);
            let mut fields = Fields::default();
            if old.name != new.name {
                fields.0.push(format!("renamed from {}", old.name));
            }
            if new.priority < old.priority {
                fields.0.push(format!(
                    "priority {} -> {}, may hand over to the partner (preempt)",
                    old.priority, new.priority
                ));
            } else {
                fields.show("priority", &old.priority, &new.priority);
            }
            fields.variant("version", &old.version, &new.version);
            fields.show(
                "advert_interval_cs",
                &old.advert_interval_cs,
                &new.advert_interval_cs,
            );
            fields.variant("initial_state", &old.initial_state, &new.initial_state);
            fields.changed("auth", &old.auth, &new.auth);
            fields.show("preempt", &old.preempt, &new.preempt);
            fields.show(
                "preempt_delay_s",
                &old.preempt_delay_s,
                &new.preempt_delay_s,
            );
            fields.show("accept_mode", &old.accept_mode, &new.accept_mode);
            fields.opt("unicast_source", &old.unicast_source, &new.unicast_source);
            fields.changed("unicast_peers", &old.unicast_peers, &new.unicast_peers);
            fields.changed(
                "track_interfaces",
                &old.track_interfaces,
                &new.track_interfaces,
            );
            fields.changed("track_bonds", &old.track_bonds, &new.track_bonds);
            fields.changed("track_checks", &old.track_checks, &new.track_checks);
            fields.changed("garp", &old.garp, &new.garp);
            out.fields(Engine::Vrrp, &prefix, fields, None);
            for pair in pair_by(&old.vips, &new.vips, |vip| vip.address) {
                match pair {
                    (None, Some(vip)) => out.hitless(
                        Engine::Vrrp,
                        ImpactKind::Added,
                        format!("{prefix}: VIP {} added", vip.address),
                    ),
                    (Some(vip), None) => out.disruptive(
                        Engine::Vrrp,
                        ImpactKind::Removed,
                        format!("{prefix}: VIP {} removed", vip.address),
                        "its traffic stops",
                    ),
                    (Some(was), Some(is)) if was != is => out.hitless(
                        Engine::Vrrp,
                        ImpactKind::Changed,
                        format!(
                            "{prefix}: VIP {} changed (prefix, interface or label)",
                            is.address
                        ),
                    ),
                    _ => {}
                }
            }
        }
    }
}

fn sync_group_changes(out: &mut Out, pair: (Option<&SyncGroup>, Option<&SyncGroup>)) {
    let (kind, what) = match pair {
        (None, Some(new)) => (ImpactKind::Added, format!("sync group {} added", new.name)),
        (Some(old), None) => (
            ImpactKind::Removed,
            format!("sync group {} removed", old.name),
        ),
        (Some(old), Some(new)) if old != new => (
            ImpactKind::Changed,
            format!("sync group {}: members changed", new.name),
        ),
        _ => return,
    };
    out.hitless(Engine::Vrrp, kind, what);
}

/// The services' part of the preview. With `diff` (of the configs holding them), services that
/// kept their places and keys pair by position and only those `diff` found changed are looked
/// at: what pairing by key and `rematch` (the path without `diff`) find, without a map of 1000
/// keys and a second comparison of every pair.
fn service_impacts(
    out: &mut Out,
    old_services: &[VirtualService],
    new_services: &[VirtualService],
    diff: Option<&ServiceDiff>,
) {
    let positional = diff.filter(|diff| {
        diff.same_len()
            && old_services
                .iter()
                .zip(new_services)
                .all(|(o, n)| service_key(o) == service_key(n))
    });
    let fates = match positional {
        Some(diff) => old_services
            .iter()
            .zip(new_services)
            .enumerate()
            .filter(|(index, _)| !diff.unchanged(*index))
            .map(|(_, (old, new))| Fate::Kept(old, new))
            .collect(),
        None => rematch(pair_by(old_services, new_services, service_key), |s| {
            s.name.as_str()
        }),
    };
    for fate in fates {
        service_changes(out, fate);
    }
}

/// The services' impacts with and without `diff`, for the tests of the shortcut.
#[cfg(test)]
pub(crate) fn service_impacts_both_ways(
    old: &Config,
    new: &Config,
    diff: &ServiceDiff,
) -> (Vec<Impact>, Vec<Impact>) {
    let (mut with, mut without) = (Out::default(), Out::default());
    service_impacts(
        &mut with,
        &old.virtual_services,
        &new.virtual_services,
        Some(diff),
    );
    service_impacts(
        &mut without,
        &old.virtual_services,
        &new.virtual_services,
        None,
    );
    (with.0, without.0)
}

/// How IPVS knows a virtual service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum ServiceKey {
    Fwmark(u32),
    Address(Option<IpAddr>, u16, u8),
}

fn service_key(service: &VirtualService) -> ServiceKey {
    match service.fwmark {
        Some(mark) => ServiceKey::Fwmark(mark),
        None => ServiceKey::Address(
            service.address,
            service.port,
            service.protocol.ip_protocol(),
        ),
    }
}

/// `fwmark 7` or `10.0.0.10:80/tcp`.
fn endpoint(service: &VirtualService) -> String {
    match (service.fwmark, service.address) {
        (Some(mark), _) => format!("fwmark {mark}"),
        (None, Some(IpAddr::V6(address))) => {
            format!("[{address}]:{}/{}", service.port, service.protocol.as_str())
        }
        (None, Some(address)) => {
            format!("{address}:{}/{}", service.port, service.protocol.as_str())
        }
        (None, None) => format!(":{}/{}", service.port, service.protocol.as_str()),
    }
}

fn service_changes(out: &mut Out, fate: Fate<'_, VirtualService>) {
    const DROPPED: &str = "connections to it are dropped";
    match fate {
        Fate::Added(new) => out.hitless(
            Engine::Lvs,
            ImpactKind::Added,
            format!(
                "service {} added ({} real servers)",
                new.label(),
                new.real_servers.len()
            ),
        ),
        Fate::Removed(old) => out.disruptive(
            Engine::Lvs,
            ImpactKind::Removed,
            format!("service {} removed", old.label()),
            DROPPED,
        ),
        Fate::Recreated(old, new) => out.disruptive(
            Engine::Lvs,
            ImpactKind::Changed,
            format!(
                "service {} recreated ({} -> {})",
                new.label(),
                endpoint(old),
                endpoint(new)
            ),
            "connections to the old service are dropped",
        ),
        Fate::Kept(old, new) => {
            let prefix = format!("service {}", new.label());
            match (old.active, new.active) {
                (true, false) => {
                    let what = format!("{prefix} deactivated");
                    return out.disruptive(Engine::Lvs, ImpactKind::Removed, what, DROPPED);
                }
                (false, true) => {
                    let what = format!("{prefix} activated");
                    return out.hitless(Engine::Lvs, ImpactKind::Added, what);
                }
                _ => {}
            }
            let mut fields = Fields::default();
            if old.name != new.name {
                fields.0.push(format!("renamed from {}", old.label()));
            }
            fields.show(
                "scheduler",
                &old.scheduler.kernel_name(),
                &new.scheduler.kernel_name(),
            );
            fields.changed(
                "scheduler_flags",
                &old.scheduler_flags,
                &new.scheduler_flags,
            );
            fields.changed("persistence", &old.persistence, &new.persistence);
            fields.show("quorum", &old.quorum, &new.quorum);
            fields.show("hysteresis", &old.hysteresis, &new.hysteresis);
            fields.changed("sorry_server", &old.sorry_server, &new.sorry_server);
            fields.variant("on_failure", &old.on_failure, &new.on_failure);
            fields.show("reentry_s", &old.reentry_s, &new.reentry_s);
            fields.show("start_down", &old.start_down, &new.start_down);
            fields.changed("check", &old.check, &new.check);
            fields.changed("more_checks", &old.more_checks, &new.more_checks);
            fields.opt("address_prefix", &old.address_prefix, &new.address_prefix);
            fields.opt("interface", &old.interface, &new.interface);
            out.fields(Engine::Lvs, &prefix, fields, None);
            if old.forwarding != new.forwarding {
                let followers = new
                    .real_servers
                    .iter()
                    .filter(|rs| rs.forwarding.is_none())
                    .count();
                let what = format!(
                    "{prefix}: forwarding {} -> {} ({followers} real servers follow it)",
                    forwarding_name(old.forwarding),
                    forwarding_name(new.forwarding)
                );
                if followers == 0 {
                    out.hitless(Engine::Lvs, ImpactKind::Changed, what);
                } else {
                    out.disruptive(Engine::Lvs, ImpactKind::Changed, what, KEEP_METHOD);
                }
            }
            real_server_changes(out, &prefix, old, new);
        }
    }
}

const KEEP_METHOD: &str =
    "IPVS edits the destination, but its existing connections keep the old forwarding method";

fn forwarding_name(forwarding: crate::model::Forwarding) -> String {
    forwarding.keepalived_name().to_lowercase()
}

fn real_server_changes(out: &mut Out, prefix: &str, old: &VirtualService, new: &VirtualService) {
    const DROPPED: &str = "its connections are dropped (set its weight to 0 first to drain them)";
    fn keyed(service: &VirtualService) -> Vec<((IpAddr, u16), &RealServer)> {
        let servers = service.real_servers.iter();
        servers
            .map(|rs| ((rs.address, rs.effective_port(service)), rs))
            .collect()
    }
    let (old_keyed, new_keyed) = (keyed(old), keyed(new));
    let label = |rs: &RealServer, service: &VirtualService| {
        if rs.name.is_empty() {
            format!(
                "{prefix}: real server {}:{}",
                rs.address,
                rs.effective_port(service)
            )
        } else {
            format!("{prefix}: real server {}", rs.name)
        }
    };
    for pair in pair_by(&old_keyed, &new_keyed, |(key, _)| *key) {
        match pair {
            (None, Some((_, rs))) => out.hitless(
                Engine::Lvs,
                ImpactKind::Added,
                format!("{} added", label(rs, new)),
            ),
            (Some((_, rs)), None) => out.disruptive(
                Engine::Lvs,
                ImpactKind::Removed,
                format!("{} removed", label(rs, old)),
                DROPPED,
            ),
            (Some((_, was)), Some((_, is))) => {
                let what = label(is, new);
                match (was.active, is.active) {
                    (true, false) => {
                        out.disruptive(
                            Engine::Lvs,
                            ImpactKind::Removed,
                            format!("{what} deactivated"),
                            DROPPED,
                        );
                        continue;
                    }
                    (false, true) => {
                        out.hitless(Engine::Lvs, ImpactKind::Added, format!("{what} activated"));
                        continue;
                    }
                    _ => {}
                }
                let (from, to) = (was.effective_forwarding(old), is.effective_forwarding(new));
                if was.forwarding != is.forwarding && from != to {
                    let what = format!(
                        "{what}: forwarding {} -> {}",
                        forwarding_name(from),
                        forwarding_name(to)
                    );
                    out.disruptive(Engine::Lvs, ImpactKind::Changed, what, KEEP_METHOD);
                }
                let mut fields = Fields::default();
                if was.name != is.name {
                    fields.0.push(format!("renamed from {}", label(was, old)));
                }
                fields.show("weight", &was.weight, &is.weight);
                fields.show("upper_threshold", &was.upper_threshold, &is.upper_threshold);
                fields.show("lower_threshold", &was.lower_threshold, &is.lower_threshold);
                fields.changed("on_failure", &was.on_failure, &is.on_failure);
                fields.changed("check", &was.check, &is.check);
                fields.changed("more_checks", &was.more_checks, &is.more_checks);
                out.fields(Engine::Lvs, &what, fields, None);
            }
            (None, None) => {}
        }
    }
}

fn real_server_role_changes(
    out: &mut Out,
    old: Option<&RealServerRole>,
    new: Option<&RealServerRole>,
) {
    const REFUSED: &str = "traffic from the director to it is no longer accepted";
    let (was, is) = match (old, new) {
        (Some(was), Some(is)) => (was, is),
        (None, Some(_)) => {
            let what = String::from("real-server role added");
            return out.hitless(Engine::RealServer, ImpactKind::Added, what);
        }
        (Some(_), None) => {
            let what = String::from("real-server role removed");
            let why = "traffic from the director to its VIPs is no longer accepted";
            return out.disruptive(Engine::RealServer, ImpactKind::Removed, what, why);
        }
        (None, None) => return,
    };
    for pair in pair_by(&was.vips, &is.vips, |vip| *vip) {
        match pair {
            (None, Some(vip)) => out.hitless(
                Engine::RealServer,
                ImpactKind::Added,
                format!("VIP {vip} added"),
            ),
            (Some(vip), None) => out.disruptive(
                Engine::RealServer,
                ImpactKind::Removed,
                format!("VIP {vip} removed"),
                REFUSED,
            ),
            _ => {}
        }
    }
    match (was.tunnel, is.tunnel) {
        (true, false) => out.disruptive(
            Engine::RealServer,
            ImpactKind::Removed,
            "tunnel from the director closed".into(),
            "tunnelled traffic from the director is dropped",
        ),
        (false, true) => out.hitless(
            Engine::RealServer,
            ImpactKind::Added,
            "tunnel from the director opened".into(),
        ),
        _ => {}
    }
}

fn clusterip_changes(out: &mut Out, pair: (Option<&ClusterIpGroup>, Option<&ClusterIpGroup>)) {
    match pair {
        (None, Some(new)) => out.hitless(
            Engine::ClusterIp,
            ImpactKind::Added,
            format!("group {} added ({})", new.name, new.vip),
        ),
        (Some(old), None) => out.disruptive(
            Engine::ClusterIp,
            ImpactKind::Removed,
            format!("group {} removed", old.name),
            &format!(
                "{} stops answering on this box: its connections here are reset",
                old.vip
            ),
        ),
        (Some(old), Some(new)) if old != new => {
            let prefix = format!("group {}", new.name);
            let mut fields = Fields::default();
            fields.show("vip", &old.vip, &new.vip);
            fields.show("interface", &old.interface, &new.interface);
            fields.show("multicast_mac", &old.multicast_mac, &new.multicast_mac);
            fields.opt(
                "unicast_flood_mac",
                &old.unicast_flood_mac,
                &new.unicast_flood_mac,
            );
            let why = "the shared address is added again: its connections on this box are reset";
            out.fields(Engine::ClusterIp, &prefix, fields, Some(why));
            // Each box keeps accepting the flows it has (conntrack marks them), whatever bucket
            // they hash to now; only new flows follow the new buckets.
            let mut fields = Fields::default();
            fields.variant("hash", &old.hash, &new.hash);
            fields.show("hash_init", &old.hash_init, &new.hash_init);
            fields.show("total_nodes", &old.total_nodes, &new.total_nodes);
            fields.changed("local_nodes", &old.local_nodes, &new.local_nodes);
            out.fields(Engine::ClusterIp, &prefix, fields, None);
        }
        _ => {}
    }
}

#[cfg(test)]
#[cfg(feature = "std")]
mod tests {
    use super::*;
    use crate::edit::{delete, set};
    use crate::text;

    fn sample() -> Config {
        text::from_toml(include_str!("../tests/data/live.toml")).unwrap()
    }

    /// The preview lines of applying `edits` (`path value`, or `-path` to delete) to the sample.
    fn lines(edits: &[&str]) -> Vec<String> {
        let running = sample();
        let mut candidate = running.clone();
        for edit in edits {
            candidate = match edit.strip_prefix('-') {
                Some(path) => delete(&candidate, path),
                None => {
                    let (path, value) = edit.split_once(' ').unwrap();
                    set(&candidate, path, value)
                }
            }
            .unwrap_or_else(|e| panic!("{edit}: {e}"));
        }
        preview(&running, &candidate)
            .changes
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn nothing_changed_nothing_to_preview() {
        assert!(preview(&sample(), &sample()).changes.is_empty());
        assert!(preview(&sample(), &sample()).is_hitless());
    }

    #[test]
    fn vrrp_in_place_changes_are_hitless() {
        assert_eq!(
            lines(&["vrrp.web_vip.priority 150"]),
            ["vrrp: instance web_vip: priority 100 -> 150: hitless"]
        );
        assert_eq!(
            lines(&["vrrp.web_vip.priority 90"]),
            ["vrrp: instance web_vip: priority 100 -> 90, may hand over to the partner (preempt): hitless"]
        );
        assert_eq!(
            lines(&[
                "vrrp.web_vip.advert_interval_cs 50",
                "vrrp.web_vip.preempt false",
                "vrrp.web_vip.auth.pass secret"
            ]),
            [
                "vrrp: instance web_vip: advert_interval_cs 100 -> 50: hitless",
                "vrrp: instance web_vip: auth changed: hitless",
                "vrrp: instance web_vip: preempt true -> false: hitless",
            ]
        );
        assert_eq!(
            lines(&[
                "vrrp.web_vip.unicast_peers 10.0.0.4",
                "vrrp.web_vip.accept_mode true",
                "vrrp.web_vip.garp.master_repeat 2"
            ]),
            [
                "vrrp: instance web_vip: accept_mode false -> true: hitless",
                "vrrp: instance web_vip: unicast_peers changed: hitless",
                "vrrp: instance web_vip: garp changed: hitless",
            ]
        );
    }

    #[test]
    fn vrrp_vips_added_hitless_removed_disruptive() {
        assert_eq!(
            lines(&[
                "vrrp.web_vip.vips 10.0.0.12",
                "-vrrp.web_vip.vips.10.0.0.11"
            ]),
            [
                "vrrp: instance web_vip: VIP 10.0.0.11 removed: disruptive: its traffic stops",
                "vrrp: instance web_vip: VIP 10.0.0.12 added: hitless",
            ]
        );
    }

    #[test]
    fn vrrp_identity_change_recreates_with_the_master_down_gap() {
        // The running instance's priority 205 and interval 1 s: 3 s + 51/256 s = 3.2 s.
        let running = set(&sample(), "vrrp.web_vip.priority", "205").unwrap();
        let candidate = set(&running, "vrrp.web_vip.vrid", "52").unwrap();
        assert_eq!(
            preview(&running, &candidate).to_string(),
            "vrrp: instance web_vip recreated (VRID changed 51 -> 52): disruptive: VIP gap up to 3.2 s if this box is master\n"
        );
        assert_eq!(
            lines(&["vrrp.web_vip.interface private"]),
            ["vrrp: instance web_vip recreated (interface changed public -> private): disruptive: VIP gap up to 3.7 s if this box is master"]
        );
        let family = lines(&["vrrp.web_vip.vips [{ address = \"fd00::10\", prefix = 128 }]"]);
        assert_eq!(
            family,
            ["vrrp: instance web_vip recreated (address family changed IPv4 -> IPv6): disruptive: VIP gap up to 3.7 s if this box is master"]
        );
        assert_eq!(
            lines(&["-vrrp.web_vip"]),
            ["vrrp: instance web_vip removed: disruptive: its VIPs leave this box: VIP gap up to 3.7 s if this box is master"]
        );
        // A rename keeps the identity.
        assert_eq!(
            lines(&["vrrp.web_vip.name web"]),
            ["vrrp: instance web: renamed from web_vip: hitless"]
        );
        assert_eq!(
            lines(&["vrrp.db.vrid 60", "vrrp.db.interface public"]),
            ["vrrp: instance db added (VRID 60 on public): hitless"]
        );
    }

    #[test]
    fn master_down_interval_follows_rfc_9568() {
        let mut instance = VrrpInstance {
            priority: 100,
            advert_interval_cs: 100,
            ..VrrpInstance::default()
        };
        // 3 * 100 + ceil(156 * 100 / 256) = 300 + 61.
        assert_eq!(master_down_cs(&instance), 361);
        instance.priority = 254;
        instance.advert_interval_cs = 10;
        assert_eq!(master_down_cs(&instance), 31);
        instance.priority = 255;
        instance.advert_interval_cs = u16::MAX;
        assert_eq!(master_down_cs(&instance), 3 * 65535 + 256);
    }

    #[test]
    fn lvs_service_rules() {
        assert_eq!(
            lines(&[
                "virtual_services.http.scheduler rr",
                "virtual_services.http.persistence.timeout_s 300"
            ]),
            [
                "lvs: service http: scheduler wlc -> rr: hitless",
                "lvs: service http: persistence changed: hitless",
            ]
        );
        assert_eq!(
            lines(&["virtual_services.http.port 8080"]),
            ["lvs: service http recreated (10.0.0.10:80/tcp -> 10.0.0.10:8080/tcp): disruptive: connections to the old service are dropped"]
        );
        assert_eq!(
            lines(&["-virtual_services.http"]),
            ["lvs: service http removed: disruptive: connections to it are dropped"]
        );
        assert_eq!(
            lines(&["virtual_services.http.active false"]),
            ["lvs: service http deactivated: disruptive: connections to it are dropped"]
        );
        assert_eq!(
            lines(&[
                "virtual_services.dns.address 10.0.0.11",
                "virtual_services.dns.port 53",
                "virtual_services.dns.protocol udp"
            ]),
            ["lvs: service dns added (0 real servers): hitless"]
        );
        assert_eq!(
            lines(&["virtual_services.http.forwarding dr"]),
            ["lvs: service http: forwarding nat -> dr (2 real servers follow it): disruptive: IPVS edits the destination, but its existing connections keep the old forwarding method"]
        );
    }

    #[test]
    fn more_checks_and_tracked_checks_change_in_place() {
        use crate::model::{Check, CheckKind, TrackedCheck};
        let running = sample();
        let mut candidate = running.clone();
        let ping = Check {
            kind: CheckKind::Ping,
            ..Check::default()
        };
        let http = &mut candidate.virtual_services.as_mut_slice()[0];
        http.check = Some(Box::new(Check::default()));
        http.more_checks.push(ping.clone()).unwrap();
        let rs2 = &mut http.real_servers.as_mut_slice()[1];
        rs2.check = Some(Box::new(Check::default()));
        rs2.more_checks.push(ping.clone()).unwrap();
        candidate.vrrp.as_mut_slice()[0]
            .track_checks
            .push(TrackedCheck {
                name: "gw".try_into().unwrap(),
                address: "10.0.0.1".parse().unwrap(),
                check: ping,
                weight: -20,
                ..TrackedCheck::default()
            })
            .unwrap();
        let lines: Vec<String> = preview(&running, &candidate)
            .changes
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "vrrp: instance web_vip: track_checks changed: hitless",
                "lvs: service http: check changed: hitless",
                "lvs: service http: more_checks changed: hitless",
                "lvs: service http: real server rs2: check changed: hitless",
                "lvs: service http: real server rs2: more_checks changed: hitless",
            ]
        );
    }

    #[test]
    fn lvs_real_server_rules() {
        assert_eq!(
            lines(&[
                "virtual_services.http.real_servers.rs1.weight 5",
                "virtual_services.http.real_servers.rs1.upper_threshold 100"
            ]),
            [
                "lvs: service http: real server rs1: weight 1 -> 5: hitless",
                "lvs: service http: real server rs1: upper_threshold 0 -> 100: hitless",
            ]
        );
        assert_eq!(
            lines(&["virtual_services.http.real_servers.rs3.address 10.0.1.13", "-virtual_services.http.real_servers.rs2"]),
            [
                "lvs: service http: real server rs2 removed: disruptive: its connections are dropped (set its weight to 0 first to drain them)",
                "lvs: service http: real server rs3 added: hitless",
            ]
        );
        assert_eq!(
            lines(&["virtual_services.http.real_servers.rs1.forwarding tun"]),
            ["lvs: service http: real server rs1: forwarding nat -> tun: disruptive: IPVS edits the destination, but its existing connections keep the old forwarding method"]
        );
        // Naming the method the server already follows changes nothing on the wire.
        assert!(lines(&["virtual_services.http.real_servers.rs1.forwarding nat"]).is_empty());
        assert_eq!(
            lines(&["virtual_services.http.real_servers.rs1.port 8080"]),
            [
                "lvs: service http: real server rs1 removed: disruptive: its connections are dropped (set its weight to 0 first to drain them)",
                "lvs: service http: real server rs1 added: hitless",
            ]
        );
    }

    #[test]
    fn interfaces_bonds_and_the_rest() {
        assert_eq!(
            lines(&["interfaces.public.addresses 10.0.0.4/24", "-interfaces.private.addresses.10.0.1.2/24"]),
            [
                "interfaces: interface public: address 10.0.0.4/24 added: hitless",
                "interfaces: interface private: address 10.0.1.2/24 removed: disruptive: traffic to it stops",
            ]
        );
        assert_eq!(
            lines(&["bonds.bond0.mode 802.3ad", "bonds.bond0.slaves eth4", "bonds.bond0.min_links 1"]),
            [
                "bonds: bond bond0: mode active-backup -> 802.3ad: disruptive: bond taken down and its ports re-enslaved: link flaps",
                "bonds: bond bond0: slave eth4 added: hitless",
                "bonds: bond bond0: min_links 0 -> 1: hitless",
            ]
        );
        assert_eq!(
            lines(&["system.hostname box-b"]),
            ["system: hostname box-a -> box-b: hitless"]
        );
        assert_eq!(
            lines(&["fwmark_rules { mark = 3, destination = \"10.0.0.0/24\" }"]),
            ["lvs: firewall-mark rules: 1 added, 0 removed (one nftables transaction): hitless"]
        );
        let sync =
            "connection sync restarts: a takeover in the next seconds may lose new connections";
        let running = set(&sample(), "peer_link.ipvs_sync", "true").unwrap();
        let candidate = set(&running, "peer_link.ipvs_sync", "false").unwrap();
        let preview = preview(&running, &candidate);
        assert_eq!(
            preview.to_string(),
            format!("peer-link: ipvs_sync true -> false: disruptive: {sync}\n")
        );
        assert!(!preview.is_hitless());
        assert_eq!(
            lines(&[
                "nat_gateway.address 10.0.1.1",
                "nat_gateway.interface private"
            ]),
            ["lvs: NAT gateway 10.0.1.1/24 on private added: hitless"]
        );
        assert_eq!(
            lines(&["real_server.vips 10.0.0.10"]),
            ["real-server: real-server role added: hitless"]
        );
        assert_eq!(
            lines(&[
                "clusterip.web.vip 10.0.0.20",
                "clusterip.web.interface public"
            ]),
            ["clusterip: group web added (10.0.0.20): hitless"]
        );
        assert_eq!(
            lines(&["management.address 192.168.9.2/24"]),
            ["management: address none -> 192.168.9.2/24: hitless"]
        );
    }

    #[test]
    fn role_and_clusterip_changes_say_why() {
        let running = set(&sample(), "real_server.vips", "10.0.0.10").unwrap();
        let running = set(&running, "clusterip.web.vip", "10.0.0.20").unwrap();
        let candidate = delete(&running, "real_server.vips.10.0.0.10").unwrap();
        let candidate = set(&candidate, "clusterip.web.local_nodes", "[1]").unwrap();
        let changes: Vec<String> = preview(&running, &candidate)
            .changes
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            changes,
            [
                "real-server: VIP 10.0.0.10 removed: disruptive: traffic from the director to it is no longer accepted",
                "clusterip: group web: local_nodes changed: hitless",
            ]
        );
    }
}
