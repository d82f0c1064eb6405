//! Validation: every rule the kernel and the protocols impose, checked before a config is used.
//!
//! All problems are reported at once, each naming where it is and what to change, e.g.
//! `vrrp "web_vip": virtual_router_id 20 is already used by vrrp "mail_vip" on eth0; pick
//! another id`. Errors make a config unusable; warnings are shown and the config still runs.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::net::IpAddr;
use core::ops::Range;

use crate::incremental::ServiceDiff;
use crate::model::{
    limits, BondMode, BoxHalf, CheckKind, Config, Forwarding, LinkMonitor, PairHalves, Protocol,
    Role, VirtualService, VrrpAuth, VrrpInstance, VrrpVersion,
};
use crate::net::{Family, IpCidr};

/// How bad a problem is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The config still runs; the operator should look.
    Warning,
    /// The config must not be used.
    Error,
}

/// One problem found in a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub severity: Severity,
    /// Where: `vrrp "web_vip"`, `virtual_server "10.0.0.1:80/tcp" real_server 192.168.0.2`.
    pub path: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl Issue {
    fn level(&self) -> &'static str {
        match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }

    /// The issue as one report line, as [`fmt::Display`] writes it, in one allocation (a
    /// 1000-service config can carry a thousand warnings on every commit).
    pub fn line(&self) -> String {
        let level = self.level();
        let mut line =
            String::with_capacity(level.len() + self.path.len() + self.message.len() + 4);
        for part in [level, ": ", &self.path, ": ", &self.message] {
            line.push_str(part);
        }
        line
    }
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.level(), self.path, self.message)
    }
}

struct Report(Vec<Issue>);

impl Report {
    fn error(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Issue {
            severity: Severity::Error,
            path: path.into(),
            message: message.into(),
        });
    }
    fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(Issue {
            severity: Severity::Warning,
            path: path.into(),
            message: message.into(),
        });
    }
}

/// Whether any of `issues` is an error.
pub fn has_errors(issues: &[Issue]) -> bool {
    issues.iter().any(|i| i.severity == Severity::Error)
}

/// Checks `config`, returning every error and warning.
pub fn validate(config: &Config) -> Vec<Issue> {
    Validation::full(config).issues
}

/// A validation report that remembers which issues each virtual service produced, so that the
/// validation of an edit of this config redoes only the services that changed (a commit of a
/// 1000-service config; see [`crate::incremental`]). Its issues are always exactly what
/// [`validate`] reports for the same config.
#[derive(Debug, Clone, Default)]
pub(crate) struct Validation {
    issues: Vec<Issue>,
    /// Per virtual service: the range of its issues in `issues`, and whether one of them is the
    /// duplicate-key error (which depends on the other services).
    services: Vec<(Range<usize>, bool)>,
    /// Whether the per-service issues depend on nothing but the service and the config outside
    /// the services. Not so when no interface has an address: then only the first NAT or DR
    /// real server of the whole config warns about it.
    reusable: bool,
}

// The incremental path serves `transaction` (std).
#[cfg_attr(not(feature = "std"), allow(dead_code))]
impl Validation {
    /// Validates `config` from scratch.
    pub(crate) fn full(config: &Config) -> Self {
        Self::run(config, None)
    }

    /// Validates `config`, an edit of the config `base` is the validation of, with `diff` taken
    /// between the two: an unchanged service reuses its issues when nothing they depend on
    /// changed.
    pub(crate) fn incremental(config: &Config, base: &Validation, diff: &ServiceDiff) -> Self {
        Self::run(config, Some((base, diff)))
    }

    fn run(config: &Config, base: Option<(&Validation, &ServiceDiff)>) -> Self {
        if let Some(pair) = &config.pair {
            return Self::pair(config, pair);
        }
        let mut report = Report(Vec::new());
        let ctx = Context::new(config);
        // The facts the services' checks read outside the services (links, addresses, VIPs,
        // marking rules) are equal in the two configs.
        let base = base.filter(|(base, diff)| {
            base.reusable && ctx.any_addresses() && diff.service_context_equal()
        });
        check_system(config, &mut report);
        check_interfaces(config, &ctx, &mut report);
        check_bonds(config, &ctx, &mut report);
        check_vrrp(config, &ctx, &mut report);
        check_sync_groups(config, &mut report);
        check_tls_trust(config, &mut report);
        let services = check_services(config, &ctx, &mut report, base);
        check_fwmark_rules(config, &mut report);
        check_roles(config, &ctx, &mut report);
        Validation {
            issues: report.0,
            services,
            reusable: ctx.any_addresses(),
        }
    }

    /// A pair config: the halves' references and the pair rules, then each box's effective
    /// config ([`Config::for_box`]) validated as a single box. An issue both boxes have is
    /// reported once as it is; one only box a (b) has gets its path prefixed `pair.a.`
    /// (`pair.b.`). Nothing is reused from an earlier validation: a pair config is validated
    /// whole, twice (once per box).
    fn pair(config: &Config, pair: &PairHalves) -> Self {
        let mut report = Report(Vec::new());
        for role in Role::BOTH {
            check_half_refs(config, role, pair.half(role), &mut report);
        }
        for group in &config.clusterip {
            if !group.local_nodes.is_empty() {
                report.error(format!("clusterip \"{}\".local_nodes", group.name), "lists buckets in a pair config, where both boxes would serve them; leave it empty: box a serves the odd buckets and box b the even ones");
            }
        }
        let boxes = Role::BOTH.map(|role| config.for_box(role));
        let [a, b] = [&boxes[0], &boxes[1]].map(|one| Self::run(one, None).issues);
        let mut only_b: Vec<Option<Issue>> = b.into_iter().map(Some).collect();
        let mut only_a = Vec::new();
        for issue in a {
            match only_b
                .iter_mut()
                .find(|other| other.as_ref() == Some(&issue))
            {
                Some(slot) => {
                    *slot = None;
                    report.0.push(issue);
                }
                None => only_a.push(issue),
            }
        }
        let only_b = only_b.into_iter().flatten();
        for (role, issues) in [(Role::A, only_a), (Role::B, only_b.collect())] {
            report.0.extend(issues.into_iter().map(|mut issue| {
                issue.path = format!("pair.{role}.{}", issue.path);
                issue
            }));
        }
        check_pair_rules(pair, &boxes, &mut report);
        Validation {
            issues: report.0,
            services: Vec::new(),
            reusable: false,
        }
    }

    /// Every error and warning, as [`validate`] returns them.
    pub(crate) fn issues(&self) -> &[Issue] {
        &self.issues
    }
}

/// Facts several checks need.
struct Context<'a> {
    config: &'a Config,
    /// Every configured interface address.
    subnets: Vec<(&'a str, IpCidr)>,
}

impl<'a> Context<'a> {
    fn new(config: &'a Config) -> Self {
        let subnets = config
            .interfaces
            .iter()
            .flat_map(|i| i.addresses.iter().map(move |a| (i.name.as_str(), *a)))
            .collect();
        Context { config, subnets }
    }

    /// Whether `name` (an alias label `eth0:1` counts as `eth0`) is an interface or bond.
    fn link_exists(&self, name: &str) -> bool {
        let base = name.split(':').next().unwrap_or(name);
        self.config.interface(base).is_some() || self.config.bond(base).is_some()
    }

    fn link_addresses<'b>(&'b self, name: &'b str) -> impl Iterator<Item = &'b IpCidr> + 'b {
        let base = name.split(':').next().unwrap_or(name);
        self.subnets
            .iter()
            .filter(move |(n, _)| *n == base)
            .map(|(_, a)| a)
    }

    fn is_connected(&self, addr: &IpAddr) -> bool {
        self.subnets.iter().any(|(_, net)| net.contains(addr))
    }

    fn any_addresses(&self) -> bool {
        !self.subnets.is_empty()
    }

    fn is_floating_address(&self, addr: &IpAddr) -> bool {
        self.config
            .vrrp
            .iter()
            .any(|v| v.vips.iter().any(|vip| vip.address == *addr))
            || self.config.clusterip.iter().any(|c| c.vip == *addr)
            || self.subnets.iter().any(|(_, net)| net.addr == *addr)
    }
}

/// Every name a half refers to exists in the shared part, once per half.
fn check_half_refs(config: &Config, role: Role, half: &BoxHalf, report: &mut Report) {
    let mut seen: BTreeMap<&str, ()> = BTreeMap::new();
    for over in &half.interfaces {
        let path = format!("pair.{role}.interfaces.{}", over.name);
        if config.interface(&over.name).is_none() {
            report.error(
                &path,
                format!(
                    "no [[interfaces]] entry {}; add it or remove this override",
                    over.name
                ),
            );
        }
        if seen.insert(over.name.as_str(), ()).is_some() {
            report.error(&path, "is listed twice; merge the two entries");
        }
        if over.role.is_some() || over.mtu.is_some() {
            report.error(&path, "only the addresses differ per box; set role and mtu on the shared [[interfaces]] entry");
        }
    }
    let mut seen: BTreeMap<&str, ()> = BTreeMap::new();
    for over in &half.vrrp {
        let path = format!("pair.{role}.vrrp.{}", over.name);
        if config.vrrp_instance(&over.name).is_none() {
            report.error(
                &path,
                format!(
                    "no [[vrrp]] instance {}; add it or remove this override",
                    over.name
                ),
            );
        }
        if seen.insert(over.name.as_str(), ()).is_some() {
            report.error(&path, "is listed twice; merge the two entries");
        }
    }
}

/// The rules between the two boxes: no address on both, and a priority that picks the master.
fn check_pair_rules(pair: &PairHalves, boxes: &[Config; 2], report: &mut Report) {
    let [a, b] = boxes;
    // Where an address or priority of box `role` comes from: its half when it overrides it.
    let origin = |role: Role, half_has: bool, field: &str, shared: String| {
        if half_has {
            format!("pair.{role}.{field}")
        } else {
            shared
        }
    };
    for interface in &b.interfaces {
        for address in &interface.addresses {
            let Some(on_a) = a
                .interfaces
                .iter()
                .find(|i| i.addresses.iter().any(|x| x.addr == address.addr))
            else {
                continue;
            };
            let half =
                |role: Role, name: &str| pair.half(role).interfaces.iter().any(|o| o.name == name);
            let path = if half(Role::B, &interface.name) {
                format!("pair.b.interfaces.{}", interface.name)
            } else {
                origin(
                    Role::A,
                    half(Role::A, &on_a.name),
                    &format!("interfaces.{}", on_a.name),
                    format!("interface \"{}\"", interface.name),
                )
            };
            report.error(path, format!("both boxes would have address {}; give each box its own under [[pair.a.interfaces]] and [[pair.b.interfaces]]", address.addr));
        }
    }
    if let (Some(on_a), Some(on_b)) = (a.management.address, b.management.address) {
        if on_a.addr == on_b.addr {
            let path = if pair.b.management_address.is_some() {
                String::from("pair.b.management_address")
            } else {
                origin(
                    Role::A,
                    pair.a.management_address.is_some(),
                    "management_address",
                    String::from("management.address"),
                )
            };
            report.error(path, format!("both boxes would have management address {}; set pair.a.management_address and pair.b.management_address", on_a.addr));
        }
    }
    for instance in &b.vrrp {
        let Some(on_a) = a.vrrp_instance(&instance.name) else {
            continue;
        };
        if on_a.priority != instance.priority {
            continue;
        }
        let overrides = |role: Role| {
            pair.half(role)
                .vrrp
                .iter()
                .any(|o| o.name == instance.name && o.priority.is_some())
        };
        let path = if overrides(Role::B) {
            format!("pair.b.vrrp.{}.priority", instance.name)
        } else {
            origin(
                Role::A,
                overrides(Role::A),
                &format!("vrrp.{}.priority", instance.name),
                format!("vrrp \"{}\"", instance.name),
            )
        };
        report.warn(path, format!("both boxes have priority {}, so VRRP elects the master by address; give the box meant to be master a higher priority under [[pair.a.vrrp]] or [[pair.b.vrrp]]", instance.priority));
    }
}

fn check_system(config: &Config, report: &mut Report) {
    if config.system.hostname.is_empty() {
        report.warn(
            "system.hostname",
            "no hostname set; set one so the console and notifications say which box this is",
        );
    }
    if let Some(notify) = &config.notify {
        for address in notify.email_to.iter().chain(notify.email_from.iter()) {
            // A local mailbox (`acassen`) is a valid address to the relay, which adds its own
            // domain: keepalived and every MTA accept it.
            let (local, domain) = address.split_once('@').unwrap_or((address, "x"));
            let bad = |part: &str| {
                part.is_empty()
                    || part.contains('@')
                    || part.chars().any(|c| c.is_whitespace() || c.is_control())
            };
            if bad(local) || bad(domain) {
                report.error(
                    "notify",
                    format!("\"{address}\" is not a mailbox; write it as user@domain (or a local user name the relay knows)"),
                );
            }
        }
        if !notify.email_to.is_empty() && notify.smtp_server.is_none() {
            report.error("notify.smtp_server", "e-mail recipients are set but no SMTP server; set smtp_server to the relay's address");
        }
    }
    if let Some(metrics) = config.management.metrics {
        if metrics.port() == 0 {
            report.error(
                "management.metrics",
                "port 0 is not a listening port; pick a port such as 9100",
            );
        }
    }
    check_management_services(&config.management, report);
}

/// Syslog servers and time servers: real unicast destinations, each listed once.
fn check_management_services(management: &crate::model::Management, report: &mut Report) {
    for (index, target) in management.syslog.iter().enumerate() {
        let path = format!("management.syslog[{index}]");
        let address = target.address.ip();
        if address.is_unspecified() || address.is_multicast() || is_broadcast(address) {
            report.error(
                &path,
                format!(
                    "{address} is not a syslog server's address; give the server's unicast address"
                ),
            );
        }
        if target.address.port() == 0 {
            report.error(
                &path,
                "port 0 cannot be sent to; syslog servers listen on 514 (UDP and TCP)",
            );
        }
        let earlier = management.syslog[..index]
            .iter()
            .any(|other| (other.address, other.transport) == (target.address, target.transport));
        if earlier {
            report.error(
                &path,
                format!(
                    "{} over {} is listed twice; every line would be sent twice: remove one",
                    target.address,
                    target.transport.as_str()
                ),
            );
        }
    }
    for (index, server) in management.time_servers.iter().enumerate() {
        let path = format!("management.time_servers[{index}]");
        if server.is_unspecified() || server.is_multicast() || is_broadcast(*server) {
            report.error(
                &path,
                format!("{server} is not a time server's address; give the NTP server's unicast address"),
            );
        }
        if management.time_servers[..index].contains(server) {
            report.error(&path, format!("{server} is listed twice; remove one"));
        }
    }
}

fn is_broadcast(address: IpAddr) -> bool {
    matches!(address, IpAddr::V4(v4) if v4.is_broadcast())
}

fn check_interfaces(config: &Config, ctx: &Context<'_>, report: &mut Report) {
    let mut seen: BTreeMap<&str, ()> = BTreeMap::new();
    let mut roles = BTreeMap::new();
    for interface in &config.interfaces {
        let path = format!("interface \"{}\"", interface.name);
        if interface.name.is_empty() {
            report.error(
                "interfaces",
                "an interface has no name; give every interface a name",
            );
        }
        if seen.insert(interface.name.as_str(), ()).is_some() {
            report.error(&path, "is listed twice; merge the two entries");
        }
        if let Some(role) = interface.role {
            if let Some(other) = roles.insert(role, interface.name.as_str()) {
                report.error(&path, format!("role {} is already given to interface \"{other}\"; each board port role belongs to one interface", role.as_str()));
            }
        }
        for address in &interface.addresses {
            if !address.is_valid() {
                report.error(
                    &path,
                    format!("address {address} has a prefix longer than the address"),
                );
            }
        }
        if let Some(mtu) = interface.mtu {
            if mtu < 68 {
                report.error(&path, format!("mtu {mtu} is below the IPv4 minimum of 68"));
            }
        }
    }
    if let Some(name) = &config.management.interface {
        if !ctx.link_exists(name) {
            report.error(
                "management.interface",
                format!("interface \"{name}\" is not configured; add it under [[interfaces]]"),
            );
        }
    }
    if let Some(peer) = &config.peer_link {
        if !ctx.link_exists(&peer.interface) {
            report.error(
                "peer_link.interface",
                format!(
                    "interface \"{}\" is not configured; add it under [[interfaces]]",
                    peer.interface
                ),
            );
        }
        if peer.heartbeat_interval_ms == 0 {
            report.error("peer_link.heartbeat_interval_ms", "must be above 0");
        }
        if peer.dead_after_ms <= peer.heartbeat_interval_ms {
            report.error("peer_link.dead_after_ms", format!("{} ms is not longer than the heartbeat interval {} ms; make it at least three intervals", peer.dead_after_ms, peer.heartbeat_interval_ms));
        }
        if peer.heartbeat_port == 0 {
            report.error(
                "peer_link.heartbeat_port",
                "port 0 is not usable; the Piranha default is 539",
            );
        }
        for probe in &peer.uplink_probes {
            if !ctx.is_connected(probe) {
                report.error(
                    "peer_link.uplink_probes",
                    format!("{probe} is not inside the subnet of any configured interface address; add the address of its service LAN under [[interfaces]] or remove it"),
                );
            }
        }
        if let Some(sync) = &peer.ipvs_sync_interface {
            if !ctx.link_exists(sync) {
                report.error(
                    "peer_link.ipvs_sync_interface",
                    format!("interface \"{sync}\" is not configured"),
                );
            }
        }
    }
}

fn check_bonds(config: &Config, ctx: &Context<'_>, report: &mut Report) {
    let mut owner: BTreeMap<&str, &str> = BTreeMap::new();
    let mut names: BTreeMap<&str, ()> = BTreeMap::new();
    for bond in &config.bonds {
        let path = format!("bond \"{}\"", bond.name);
        if names.insert(bond.name.as_str(), ()).is_some() {
            report.error(&path, "is defined twice; merge the two entries");
        }
        if bond.slaves.is_empty() {
            report.error(&path, "has no slaves; list the ports under slaves");
        }
        let peer_link = config
            .peer_link
            .as_ref()
            .map_or("peer", |link| link.interface.as_str());
        for slave in &bond.slaves {
            if slave.as_str() == peer_link {
                report.error(&path, format!("slave \"{slave}\" is the peer link (the cable to the partner box: heartbeat, replication, IPVS sync); bond service ports only"));
            }
            if config.bond(slave).is_some() {
                report.error(
                    &path,
                    format!("slave \"{slave}\" is a bond; a bond's ports must be board ports"),
                );
            }
            if config.interface(slave).is_some_and(|i| i.mtu.is_some()) {
                report.warn(&path, format!("slave \"{slave}\" has an MTU of its own; the bond sets its ports' MTU: set mtu on the bond instead"));
            }
            if config.interface(slave).is_none() {
                report.error(&path, format!("slave \"{slave}\" is not a configured interface; add it under [[interfaces]]"));
            } else if config
                .interface(slave)
                .is_some_and(|i| !i.addresses.is_empty())
            {
                report.error(
                    &path,
                    format!("slave \"{slave}\" has addresses of its own; move them to the bond"),
                );
            }
            if slave.as_str() == bond.name.as_str() {
                report.error(&path, "lists itself as a slave");
            }
            if let Some(other) = owner.insert(slave.as_str(), bond.name.as_str()) {
                if other != bond.name.as_str() {
                    report.error(&path, format!("slave \"{slave}\" already belongs to bond \"{other}\"; a port can be in one bond only"));
                }
            }
        }
        if let Some(primary) = &bond.primary {
            if !bond.mode.has_primary() {
                report.error(&path, format!("primary is set but mode {} has no primary; remove it or use active-backup, balance-tlb or balance-alb", bond.mode.kernel_name()));
            }
            if !bond.slaves.iter().any(|s| s == primary) {
                report.error(
                    &path,
                    format!("primary \"{primary}\" is not one of its slaves; add it to slaves"),
                );
            }
        }
        match &bond.monitor {
            LinkMonitor::Mii { interval_ms } => {
                if *interval_ms == 0 {
                    report.warn(
                        &path,
                        "miimon interval 0 disables link monitoring; set interval_ms to e.g. 100",
                    );
                }
            }
            LinkMonitor::Arp {
                interval_ms,
                targets,
                validate,
            } => {
                if matches!(
                    bond.mode,
                    BondMode::Ieee8023ad | BondMode::BalanceTlb | BondMode::BalanceAlb
                ) {
                    report.error(
                        &path,
                        format!(
                            "the ARP monitor does not work in mode {}; use the MII monitor",
                            bond.mode.kernel_name()
                        ),
                    );
                }
                if targets.is_empty() {
                    report.error(
                        &path,
                        "ARP monitor has no targets; add at least one address to targets",
                    );
                }
                if *interval_ms == 0 {
                    report.error(&path, "ARP monitor interval 0 disables it; set interval_ms");
                }
                if *validate == crate::model::ArpValidate::None
                    && bond.mode == BondMode::ActiveBackup
                {
                    report.warn(
                        &path,
                        "ARP monitor without validation: ARP traffic of other hosts keeps a port with a dead path looking up; set validate = \"all\"",
                    );
                }
            }
        }
        if bond.lacp_rate == crate::model::LacpRate::Fast && bond.mode != BondMode::Ieee8023ad {
            report.warn(&path, "lacp_rate applies to mode 802.3ad only");
        }
        if bond.ad_select != crate::model::AdSelect::default() && bond.mode != BondMode::Ieee8023ad
        {
            report.warn(&path, "ad_select applies to mode 802.3ad only");
        }
        if bond.fail_over_mac != crate::model::FailOverMac::default()
            && bond.mode != BondMode::ActiveBackup
        {
            report.error(
                &path,
                format!(
                    "fail_over_mac {} is for mode active-backup only (in {} every port must keep the bond's MAC); remove fail_over_mac",
                    bond.fail_over_mac.kernel_name(),
                    bond.mode.kernel_name()
                ),
            );
        }
        if bond.primary_reselect != crate::model::PrimaryReselect::default()
            && !bond.mode.has_primary()
        {
            report.warn(
                &path,
                format!(
                    "primary_reselect applies to modes with a primary (active-backup, balance-tlb, balance-alb), not {}",
                    bond.mode.kernel_name()
                ),
            );
        }
        if bond.xmit_hash_policy != crate::model::XmitHashPolicy::default()
            && !matches!(
                bond.mode,
                BondMode::BalanceXor
                    | BondMode::Ieee8023ad
                    | BondMode::BalanceTlb
                    | BondMode::BalanceAlb
            )
        {
            report.warn(
                &path,
                format!(
                    "xmit_hash_policy applies to balance-xor, 802.3ad, balance-tlb and balance-alb, not {}",
                    bond.mode.kernel_name()
                ),
            );
        }
        if let Some(mtu) = bond.mtu {
            if mtu < 68 {
                report.error(&path, format!("mtu {mtu} is below 68, the smallest IPv4 allows; use 1500 or leave it unset"));
            }
        }
        if bond.min_links > 0 && bond.mode != BondMode::Ieee8023ad {
            report.warn(
                &path,
                format!(
                    "min_links: the kernel drops the carrier of an 802.3ad bond only; in {} Tandem's VRRP tracking counts the ports itself",
                    bond.mode.kernel_name()
                ),
            );
        }
        if usize::from(bond.min_links) > bond.slaves.len() {
            report.error(
                &path,
                format!(
                    "min_links {} is more than its {} slaves; the bond would never come up",
                    bond.min_links,
                    bond.slaves.len()
                ),
            );
        }
        if config
            .interface(&bond.name)
            .is_some_and(|i| i.role.is_some())
        {
            report.error(
                &path,
                "has the same name as a board port; name bonds bond0, bond1, ...",
            );
        }
        let _ = ctx;
    }
}

fn check_vrrp(config: &Config, ctx: &Context<'_>, report: &mut Report) {
    let mut names: BTreeMap<&str, ()> = BTreeMap::new();
    // (interface, family, vrid) -> instance name
    let mut vrids: BTreeMap<(&str, Family, u8), &str> = BTreeMap::new();
    let mut vip_owner: BTreeMap<IpAddr, &str> = BTreeMap::new();
    for instance in &config.vrrp {
        let path = format!("vrrp \"{}\"", instance.name);
        if instance.name.is_empty() {
            report.error("vrrp", "an instance has no name; name every instance");
        }
        if names.insert(instance.name.as_str(), ()).is_some() {
            report.error(&path, "is defined twice; rename one");
        }
        if instance.vrid == 0 {
            report.error(&path, "virtual_router_id 0 is not allowed; use 1 to 255");
        }
        if instance.priority == 0 {
            report.error(&path, "priority 0 is reserved for a master resigning; use 1 to 254 (255 only on the address owner)");
        }
        if !ctx.link_exists(&instance.interface) {
            report.error(&path, format!("interface \"{}\" is not configured; add it under [[interfaces]] or fix the name", instance.interface));
        }
        match instance.version {
            VrrpVersion::V2 => {
                if instance.advert_interval_cs == 0
                    || instance.advert_interval_cs % 100 != 0
                    || instance.advert_interval_cs > 25_500
                {
                    report.error(&path, format!("advert interval {} cs is not a whole number of seconds from 1 to 255, which VRRPv2 requires; use version v3 for sub-second adverts", instance.advert_interval_cs));
                }
            }
            VrrpVersion::V3 => {
                if instance.advert_interval_cs == 0 || instance.advert_interval_cs > 4095 {
                    report.error(
                        &path,
                        format!(
                            "advert interval {} cs is outside VRRPv3's 1 to 4095 cs",
                            instance.advert_interval_cs
                        ),
                    );
                }
                if instance.auth.is_some() {
                    report.error(
                        &path,
                        "VRRPv3 has no authentication (RFC 9568); remove auth or use version v2",
                    );
                }
            }
        }
        if let Some(VrrpAuth::Pass(pass)) = &instance.auth {
            if pass.is_empty() {
                report.error(
                    &path,
                    "auth password is empty; set 1 to 8 characters or remove auth",
                );
            }
        }
        check_vmac(instance, ctx, &path, report);
        if instance.vips.is_empty() {
            report.error(
                &path,
                "has no virtual addresses; add at least one under vips",
            );
        }
        let family = instance
            .vips
            .first()
            .map(|v| Family::of(&v.address))
            .unwrap_or_default();
        for vip in &instance.vips {
            let vip_family = Family::of(&vip.address);
            if vip_family != family {
                report.error(&path, format!("mixes IPv4 and IPv6 virtual addresses ({}); VRRP runs one instance per family, split it in two", vip.address));
            }
            if vip_family == Family::Ipv6 && instance.version == VrrpVersion::V2 {
                report.error(&path, format!("virtual address {} is IPv6 but VRRPv2 carries IPv4 only; set version = \"v3\"", vip.address));
            }
            if vip.prefix > vip_family.max_prefix() {
                report.error(
                    &path,
                    format!(
                        "virtual address {}/{} has a prefix longer than the address",
                        vip.address, vip.prefix
                    ),
                );
            }
            let link = vip
                .interface
                .as_deref()
                .unwrap_or(instance.interface.as_str());
            if vip.interface.is_some() && !ctx.link_exists(link) {
                report.error(
                    &path,
                    format!(
                        "virtual address {} goes on interface \"{link}\", which is not configured",
                        vip.address
                    ),
                );
            }
            let mut link_addrs = ctx.link_addresses(link).peekable();
            if !ctx.link_exists(link) {
                // Already reported as not configured: no follow-on noise about its addresses.
            } else if link_addrs.peek().is_none() {
                report.warn(&path, format!("interface \"{link}\" has no address, so virtual address {} cannot be checked against its subnet; add the interface's address", vip.address));
            } else if !link_addrs.any(|net| net.contains(&vip.address)) {
                report.error(&path, format!("virtual address {} is not inside any subnet of interface \"{link}\"; fix the address or add the subnet to the interface", vip.address));
            }
            if let Some(other) = vip_owner.insert(vip.address, instance.name.as_str()) {
                if other != instance.name.as_str() {
                    report.error(&path, format!("virtual address {} is also held by vrrp \"{other}\"; an address can float with one instance only", vip.address));
                }
            }
        }
        if instance.vrid != 0 {
            if let Some(other) = vrids.insert(
                (instance.interface.as_str(), family, instance.vrid),
                instance.name.as_str(),
            ) {
                report.error(&path, format!("virtual_router_id {} is already used by vrrp \"{other}\" on {}; pick another id", instance.vrid, instance.interface));
            }
        }
        for peer in &instance.unicast_peers {
            if Family::of(peer) != family {
                report.error(
                    &path,
                    format!("unicast peer {peer} is not in the family of the virtual addresses"),
                );
            }
        }
        if let Some(source) = &instance.unicast_source {
            if Family::of(source) != family {
                report.error(
                    &path,
                    format!(
                        "unicast source {source} is not in the family of the virtual addresses"
                    ),
                );
            }
        }
        for tracked in &instance.track_interfaces {
            if !ctx.link_exists(&tracked.name) {
                report.error(
                    &path,
                    format!("tracked interface \"{}\" is not configured", tracked.name),
                );
            }
            if !(-254..=254).contains(&tracked.weight) {
                report.error(
                    &path,
                    format!(
                        "tracked interface \"{}\" weight {} is outside -254 to 254",
                        tracked.name, tracked.weight
                    ),
                );
            }
        }
        for tracked in &instance.track_bonds {
            if config.bond(&tracked.name).is_none() {
                report.error(
                    &path,
                    format!(
                        "tracked bond \"{}\" is not configured; add it under [[bonds]]",
                        tracked.name
                    ),
                );
            }
            if !(-254..=254).contains(&tracked.weight) {
                report.error(
                    &path,
                    format!(
                        "tracked bond \"{}\" weight {} is outside -254 to 254",
                        tracked.name, tracked.weight
                    ),
                );
            }
        }
        check_track_checks(instance, &config.tls_trust, &path, report);
        if !instance.preempt && instance.preempt_delay_s > 0 {
            report.warn(&path, "preempt_delay_s has no effect with preempt = false");
        }
    }
}

/// The checks a VRRP instance tracks (keepalived `track_script`): named once each, a unicast
/// address, a port unless the check needs none, a weight within -254..=254, and every rule a
/// real server's check has.
fn check_track_checks(
    instance: &VrrpInstance,
    trust: &[crate::model::TlsTrust],
    path: &str,
    report: &mut Report,
) {
    let mut names: BTreeMap<&str, ()> = BTreeMap::new();
    for (index, tracked) in instance.track_checks.iter().enumerate() {
        let here = || {
            if tracked.name.is_empty() {
                format!("{path} track_checks[{index}]")
            } else {
                format!("{path} track_checks \"{}\"", tracked.name)
            }
        };
        if tracked.name.is_empty() {
            report.error(here(), "has no name; name every tracked check");
        } else if names.insert(tracked.name.as_str(), ()).is_some() {
            report.error(here(), "is defined twice in this instance; rename one");
        }
        let address = tracked.check.connect_address.unwrap_or(tracked.address);
        if address.is_unspecified() || address.is_multicast() {
            report.error(
                here(),
                format!(
                    "address {address} is not a unicast address; set address to the host to check"
                ),
            );
        }
        let needs_port = !matches!(tracked.check.kind, CheckKind::Ping);
        if needs_port && tracked.port.or(tracked.check.connect_port).is_none() {
            report.error(
                here(),
                "has no port; set port (only a ping check needs none)",
            );
        }
        if tracked.port == Some(0) || tracked.check.connect_port == Some(0) {
            report.error(
                here(),
                "port 0 cannot be checked; set the port the service listens on",
            );
        }
        if !(-254..=254).contains(&tracked.weight) {
            report.error(
                here(),
                format!(
                    "weight {} is outside -254 to 254 (0: FAULT while the check fails)",
                    tracked.weight
                ),
            );
        }
        check_check(here, &tracked.check, trust, report);
    }
}

/// `use_vmac` and its macvlan's name. Without a name the macvlan is named as keepalived names
/// it (`vrrp.{vrid}`, else `vrrp6.{vrid}` / `vrrp1.{vrid}` / ..., skipping names configured
/// here), so only configured names can clash.
fn check_vmac(instance: &VrrpInstance, ctx: &Context<'_>, path: &str, report: &mut Report) {
    if instance.vmac_xmit_base && !instance.use_vmac {
        report.warn(
            path,
            "vmac_xmit_base is set but use_vmac is off, so adverts leave from the interface anyway; set use_vmac = true or remove vmac_xmit_base",
        );
    }
    if let Some(name) = &instance.vmac_interface {
        if !instance.use_vmac {
            report.warn(
                path,
                "vmac_interface is set but use_vmac is off, so no macvlan is made; set use_vmac = true or remove vmac_interface",
            );
        }
        if name.is_empty()
            || name.contains(['/', ' ', ':'])
            || name.as_str() == "."
            || name.as_str() == ".."
        {
            report.error(
                path,
                format!("vmac_interface \"{name}\" is not a valid interface name"),
            );
        } else if ctx.link_exists(name) {
            report.error(
                path,
                format!("vmac_interface \"{name}\" is already an interface of this config; give the macvlan a name of its own, such as vrrp.{}", instance.vrid),
            );
        } else if instance.use_vmac {
            // One macvlan carries one virtual MAC: a name is one instance's.
            let earlier = ctx
                .config
                .vrrp
                .iter()
                .take_while(|other| !core::ptr::eq(*other, instance))
                .find(|other| other.use_vmac && other.vmac_interface.as_ref() == Some(name));
            if let Some(other) = earlier {
                report.error(
                    path,
                    format!("vmac_interface \"{name}\" is also the macvlan of vrrp \"{}\"; each instance needs a macvlan of its own (its virtual MAC differs): rename one, or leave vmac_interface unset for the default name", other.name),
                );
            }
        }
    }
    if !instance.use_vmac {
        return;
    }
    if !instance.unicast_peers.is_empty() {
        report.warn(
            path,
            format!("use_vmac with unicast peers: the adverts leave from \"{}\" with its own MAC (keepalived's vmac_xmit_base, which keepalived sets for unicast too); the virtual addresses and gratuitous ARPs use the virtual MAC", instance.interface),
        );
    }
    // keepalived: addresses on the instance's interface move to the macvlan; an address given
    // another interface stays there, with that interface's MAC.
    for vip in &instance.vips {
        if let Some(link) = vip.interface.as_ref().filter(|l| **l != instance.interface) {
            report.warn(
                path,
                format!("use_vmac: virtual address {} goes on interface \"{link}\", so it stays there with that interface's own MAC (only the addresses of \"{}\" move to the macvlan with the virtual MAC)", vip.address, instance.interface),
            );
        }
    }
}

fn check_sync_groups(config: &Config, report: &mut Report) {
    let mut member_of: BTreeMap<&str, &str> = BTreeMap::new();
    for group in &config.sync_groups {
        let path = format!("sync_group \"{}\"", group.name);
        for member in &group.members {
            if config.vrrp_instance(member).is_none() {
                report.error(&path, format!("member \"{member}\" is not a vrrp instance; fix the name or add the instance"));
            }
            if let Some(other) = member_of.insert(member.as_str(), group.name.as_str()) {
                report.error(&path, format!("member \"{member}\" is already in sync_group \"{other}\"; an instance belongs to one group"));
            }
        }
        if group.members.len() < 2 {
            report.warn(
                &path,
                "has fewer than two members, so it synchronises nothing",
            );
        }
    }
}

/// How IPVS keys a service, for the duplicate check.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ServiceKey {
    Fwmark(u32, Family),
    Address(IpAddr, u16, u8),
    /// Neither address nor fwmark (itself an error): keyed by its label.
    Label(String),
}

fn service_family(service: &VirtualService) -> Option<Family> {
    match (service.address, service.fwmark) {
        (Some(addr), _) => Some(Family::of(&addr)),
        (None, Some(_)) => Some(
            service
                .real_servers
                .first()
                .map(|r| Family::of(&r.address))
                .unwrap_or_default(),
        ),
        (None, None) => None,
    }
}

/// Checks the services; returns each one's issues (see [`Validation`]). With `base`, an
/// unchanged service without a duplicate-key error in either config takes its issues from it.
fn check_services(
    config: &Config,
    ctx: &Context<'_>,
    report: &mut Report,
    base: Option<(&Validation, &ServiceDiff)>,
) -> Vec<(Range<usize>, bool)> {
    let mut ranges = Vec::with_capacity(config.virtual_services.len());
    let total = config.real_server_count();
    if total > limits::REAL_SERVERS_TOTAL {
        report.error(
            "virtual_services",
            format!(
                "{total} real servers in all, above the maximum of {}; remove some",
                limits::REAL_SERVERS_TOTAL
            ),
        );
    }
    // Per service, the nearest earlier one with the same IPVS key, first: whether a service
    // can reuse its issues depends on it.
    let mut keys: BTreeMap<ServiceKey, usize> = BTreeMap::new();
    let same_key: Vec<Option<usize>> = config
        .virtual_services
        .iter()
        .enumerate()
        .map(|(index, service)| {
            let family = service_family(service).unwrap_or(Family::Ipv4);
            let key = match (service.fwmark, service.address) {
                (Some(mark), _) => ServiceKey::Fwmark(mark, family),
                (None, Some(addr)) => {
                    ServiceKey::Address(addr, service.port, service.protocol.ip_protocol())
                }
                (None, None) => ServiceKey::Label(service.label()),
            };
            keys.insert(key, index)
        })
        .collect();
    drop(keys);
    let mut warned_no_addresses = false;
    for (index, service) in config.virtual_services.iter().enumerate() {
        let start = report.0.len();
        let duplicate = same_key.get(index).is_some_and(Option::is_some);
        let reused = base.and_then(|(base, diff)| {
            let (range, base_duplicate) = base.services.get(index)?;
            (diff.unchanged(index) && !base_duplicate && !duplicate)
                .then(|| base.issues.get(range.clone()))
                .flatten()
        });
        if let Some(issues) = reused {
            report.0.extend_from_slice(issues);
            ranges.push((start..report.0.len(), duplicate));
            continue;
        }
        check_service(
            config,
            ctx,
            report,
            service,
            same_key.get(index).copied().flatten(),
            &mut warned_no_addresses,
        );
        ranges.push((start..report.0.len(), duplicate));
    }
    ranges
}

/// One service's checks; `same_key` is the nearest earlier service with its IPVS key.
fn check_service(
    config: &Config,
    ctx: &Context<'_>,
    report: &mut Report,
    service: &VirtualService,
    same_key: Option<usize>,
    warned_no_addresses: &mut bool,
) {
    // Built only when there is something to report (a 1000-service config otherwise formats
    // 1000 paths in every full validation).
    let path = || format!("virtual_server \"{}\"", service.display_label());
    let family = match service_family(service) {
        Some(family) => family,
        None => {
            report.error(
                path(),
                "has neither an address nor a fwmark; set address (and port) or fwmark",
            );
            Family::Ipv4
        }
    };
    if let Some(other) = same_key {
        let other = config
            .virtual_services
            .get(other)
            .map(VirtualService::label)
            .unwrap_or_default();
        report.error(path(), format!("has the same address, port and protocol (or fwmark) as virtual_server \"{other}\"; IPVS keys services by them"));
    }
    if service.fwmark.is_none() && service.port == 0 && service.persistence.is_none() {
        report.error(
            path(),
            "port 0 (all ports) needs persistence; set a port or persistence",
        );
    }
    if let Some(mark) = service.fwmark {
        if mark == 0 {
            report.error(
                path(),
                "fwmark 0 is the unmarked traffic; use a mark from 1",
            );
        } else if !config.fwmark_rules.iter().any(|r| r.mark == mark) {
            report.error(path(), format!("fwmark {mark} has no marking rule, so no packet will ever match; add a [[fwmark_rules]] entry with mark = {mark}"));
        }
    }
    if let Some(prefix) = service.address_prefix {
        if prefix > family.max_prefix() {
            report.error(
                path(),
                format!("address prefix /{prefix} is longer than the address"),
            );
        }
    }
    if let Some(interface) = &service.interface {
        if !ctx.link_exists(interface) {
            report.error(
                path(),
                format!("interface \"{interface}\" is not configured"),
            );
        }
    }
    if let Some(addr) = &service.address {
        if !ctx.is_floating_address(addr) && service.interface.is_none() {
            report.warn(path(), format!("address {addr} is not a VRRP or CLUSTERIP virtual address nor an interface address, so no box will answer for it; add it to a vrrp instance's vips"));
        }
    }
    let flags = service.scheduler_flags;
    if (flags.fallback || flags.port) && !service.scheduler.takes_hash_flags() {
        report.error(path(), format!("scheduler flags fallback/port apply to sh and mh only, not {}; remove them or change the scheduler", service.scheduler.kernel_name()));
    }
    if flags.one_packet && service.protocol != Protocol::Udp {
        report.error(
            path(),
            "one-packet scheduling (ops) applies to UDP services only",
        );
    }
    if let Some(persistence) = &service.persistence {
        if let Some(prefix) = persistence.netmask_prefix {
            if prefix > family.max_prefix() {
                report.error(
                    path(),
                    format!("persistence netmask /{prefix} is longer than the address"),
                );
            }
        }
    }
    if let Some(check) = &service.check {
        check_check(path, check, &config.tls_trust, report);
    }
    check_more_checks(
        path,
        service.check.is_some(),
        &service.more_checks,
        &config.tls_trust,
        report,
    );
    if let Some(sorry) = &service.sorry_server {
        if Family::of(&sorry.address) != family
            && sorry.forwarding.unwrap_or(service.forwarding) != Forwarding::Tun
        {
            report.error(path(), format!("sorry server {} is not in the service's address family; only TUN can cross families", sorry.address));
        }
    }
    let mut seen: BTreeMap<(IpAddr, u16), ()> = BTreeMap::new();
    let mut weight_sum: u64 = 0;
    for server in &service.real_servers {
        check_real_server(
            service,
            server,
            family,
            ctx,
            &mut seen,
            warned_no_addresses,
            report,
        );
        if server.active {
            weight_sum += u64::from(server.weight);
        }
    }
    if !service.real_servers.is_empty() && u64::from(service.quorum) > weight_sum {
        report.warn(path(), format!("quorum {} is above the total weight {weight_sum} of its active real servers, so the service never counts as up", service.quorum));
    }
    if service.hysteresis > service.quorum {
        report.warn(
            path(),
            format!(
                "hysteresis {} exceeds quorum {}",
                service.hysteresis, service.quorum
            ),
        );
    }
}

fn check_real_server(
    service: &VirtualService,
    server: &crate::model::RealServer,
    family: Family,
    ctx: &Context<'_>,
    seen: &mut BTreeMap<(IpAddr, u16), ()>,
    warned_no_addresses: &mut bool,
    report: &mut Report,
) {
    let port = server.effective_port(service);
    // The path is only built when there is something to report (10,000 servers validate often).
    let path = || match server.address {
        IpAddr::V6(addr) => format!(
            "virtual_server \"{}\" real_server [{addr}]:{port}",
            service.display_label()
        ),
        IpAddr::V4(addr) => format!(
            "virtual_server \"{}\" real_server {addr}:{port}",
            service.display_label()
        ),
    };
    if seen.insert((server.address, port), ()).is_some() {
        report.error(path(), "is listed twice in this service; remove one");
    }
    if server.address.is_unspecified() || server.address.is_multicast() {
        report.error(path(), "is not a unicast address");
    }
    if i32::try_from(server.weight).is_err() {
        report.error(
            path(),
            format!(
                "weight {} is above the kernel maximum {}",
                server.weight,
                i32::MAX
            ),
        );
    }
    if server.upper_threshold > 0 && server.lower_threshold > server.upper_threshold {
        report.error(
            path(),
            format!(
                "lower threshold {} is above upper threshold {}",
                server.lower_threshold, server.upper_threshold
            ),
        );
    }
    // A real server of a fwmark service without a port (or with port 0) keeps each packet's
    // destination port, NAT included (IPVS: `dest->port ? dest->port : vport`): how one
    // fwmark service balances many ports to the same servers.
    let forwarding = server.effective_forwarding(service);
    if port == 0 && forwarding == Forwarding::Nat && service.fwmark.is_none() {
        report.error(
            path(),
            "port 0 is not usable with NAT; set the server's port",
        );
    }
    let same_family = Family::of(&server.address) == family;
    match forwarding {
        Forwarding::Nat | Forwarding::Dr if !same_family => {
            report.error(path(), format!("{} forwarding needs the real server in the virtual address's family; use TUN to cross families", forwarding.keepalived_name()));
        }
        Forwarding::Dr | Forwarding::Nat if !ctx.any_addresses() => {
            if !*warned_no_addresses {
                report.warn("interfaces", "no interface has an address, so real servers cannot be checked for reachability; add the interfaces' addresses");
                *warned_no_addresses = true;
            }
        }
        Forwarding::Dr => {
            if !ctx.is_connected(&server.address) {
                report.error(path(), "is not on a directly connected subnet, which direct routing (DR) needs; put it on a connected segment or use TUN");
            }
            if service.port != 0 && server.port.is_some_and(|p| p != service.port) {
                report.error(
                    path(),
                    format!(
                        "DR cannot change the port ({} to {port}); use NAT or the service's port",
                        service.port
                    ),
                );
            }
        }
        Forwarding::Nat => {
            if !ctx.is_connected(&server.address) {
                report.warn(path(), "is not on a directly connected subnet; with NAT its replies must route back through this box");
            }
        }
        Forwarding::Tun => {
            // The director encapsulates the packet unchanged: the real server sees the VIP's port.
            if service.port != 0 && server.port.is_some_and(|p| p != service.port) {
                report.error(
                    path(),
                    format!(
                        "TUN cannot change the port ({} to {port}); use NAT or the service's port",
                        service.port
                    ),
                );
            }
        }
    }
    if let Some(check) = &server.check {
        check_check(path, check, &ctx.config.tls_trust, report);
    }
    check_more_checks(
        path,
        server.check.is_some(),
        &server.more_checks,
        &ctx.config.tls_trust,
        report,
    );
}

/// The further checks of a real server or service: each as `check` is, and only beside a
/// `check` (the first check lives there).
fn check_more_checks(
    path: impl Fn() -> String,
    has_check: bool,
    more: &[crate::model::Check],
    trust: &[crate::model::TlsTrust],
    report: &mut Report,
) {
    if !more.is_empty() && !has_check {
        report.error(
            format!("{} more_checks", path()),
            "is set without check; move the first of them to check",
        );
    }
    for (index, check) in more.iter().enumerate() {
        check_check(
            || format!("{} more_checks[{index}]", path()),
            check,
            trust,
            report,
        );
    }
}

fn check_check(
    path: impl Fn() -> String,
    check: &crate::model::Check,
    trust: &[crate::model::TlsTrust],
    report: &mut Report,
) {
    if check.timing.interval_ms == 0 {
        report.error(
            path(),
            "check interval 0 would check without pause; set timing.interval_ms",
        );
    }
    if check.timing.timeout_ms == 0 {
        report.error(
            path(),
            "check timeout 0 fails every check; set timing.timeout_ms",
        );
    }
    match &check.kind {
        CheckKind::Http {
            path: url,
            status,
            tls,
            more_urls,
            tls_ca,
            ..
        } => {
            check_url(&path, url, status.as_ref(), report);
            for extra in more_urls {
                check_url(&path, &extra.path, extra.status.as_ref(), report);
            }
            if let Some(name) = tls_ca {
                if !*tls {
                    report.error(
                        path(),
                        format!("tls_ca \"{name}\" is set on a plain HTTP check; set tls = true or remove tls_ca"),
                    );
                }
                if !trust.iter().any(|set| set.name == *name) {
                    report.error(
                        path(),
                        format!("tls_ca \"{name}\" names no [[tls_trust]] set; add one with the CA certificates in PEM, or remove tls_ca to check without verifying"),
                    );
                }
            }
        }
        CheckKind::Udp {
            require_reply,
            expect,
            ..
        } => {
            if !expect.is_empty() && !*require_reply {
                report.warn(
                    path(),
                    "a UDP check's expect is only compared when require_reply = true; set it or remove expect",
                );
            }
        }
        CheckKind::Dns { name, .. } => {
            if let Err(why) = dns_name_problem(name) {
                report.error(path(), format!("DNS check name \"{name}\" {why}"));
            }
        }
        CheckKind::Tcp
        | CheckKind::Smtp { .. }
        | CheckKind::SendExpect { .. }
        | CheckKind::Ping => {}
    }
}

/// One URL of an HTTP check: an absolute path and real status codes.
fn check_url(
    path: &impl Fn() -> String,
    url: &str,
    status: Option<&crate::model::StatusCodes>,
    report: &mut Report,
) {
    if !url.starts_with('/') {
        report.error(
            path(),
            format!("HTTP check path \"{url}\" must start with /"),
        );
    }
    for range in status.map(|codes| &codes.0[..]).unwrap_or_default() {
        if !(100..=599).contains(&range.first) || !(100..=599).contains(&range.last) {
            report.error(
                path(),
                format!(
                    "HTTP status {}-{} is not within the HTTP status codes 100 to 599",
                    range.first, range.last
                ),
            );
        } else if range.first > range.last {
            report.error(
                path(),
                format!(
                    "HTTP status range {}-{} runs backwards; write {}-{}",
                    range.first, range.last, range.last, range.first
                ),
            );
        }
    }
}

/// Why `name` is not a DNS name a query can carry (RFC 1035: labels of 1 to 63 bytes, 255 in
/// all), if it is not. "." is the root.
fn dns_name_problem(name: &str) -> Result<(), &'static str> {
    if name == "." {
        return Ok(());
    }
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if trimmed.is_empty() || trimmed.len() > 253 {
        return Err("is not a DNS name; write a name such as example.com or . for the root");
    }
    if trimmed
        .split('.')
        .any(|label| label.is_empty() || label.len() > 63)
    {
        return Err("has an empty label or one longer than 63 bytes");
    }
    if !trimmed.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("has spaces or non-ASCII bytes; write it in ASCII (punycode for IDNs)");
    }
    Ok(())
}

/// The trust sets TLS checks verify against: named once, each with at least one certificate.
fn check_tls_trust(config: &Config, report: &mut Report) {
    for (index, set) in config.tls_trust.iter().enumerate() {
        let path = format!("tls_trust \"{}\"", set.name);
        if set.name.is_empty() {
            report.error(
                format!("tls_trust[{index}]"),
                "a trust set has no name; name it so checks can refer to it with tls_ca",
            );
        }
        if config.tls_trust[..index]
            .iter()
            .any(|other| other.name == set.name)
        {
            report.error(&path, "is defined twice; rename one");
        }
        if set.pem.len() > limits::TLS_TRUST_PEM_BYTES {
            report.error(
                &path,
                format!(
                    "pem is {} bytes, more than the {} a set may hold; keep only the CA certificates the checks need",
                    set.pem.len(),
                    limits::TLS_TRUST_PEM_BYTES
                ),
            );
        }
        if !set.pem.contains("-----BEGIN CERTIFICATE-----") {
            report.error(
                &path,
                "pem holds no certificate; paste the CA certificates as -----BEGIN CERTIFICATE----- blocks",
            );
        }
    }
}

fn check_fwmark_rules(config: &Config, report: &mut Report) {
    for (index, rule) in config.fwmark_rules.iter().enumerate() {
        let path = format!("fwmark_rules[{index}]");
        if rule.mark == 0 {
            report.error(&path, "mark 0 cannot be matched; use a mark from 1");
        }
        if rule.port_first > rule.port_last {
            report.error(
                &path,
                format!(
                    "port range {}-{} is reversed",
                    rule.port_first, rule.port_last
                ),
            );
        }
        if !rule.destination.is_valid() {
            report.error(&path, "destination prefix is longer than the address");
        }
        if !config
            .virtual_services
            .iter()
            .any(|s| s.fwmark == Some(rule.mark))
        {
            report.warn(
                &path,
                format!("mark {} is used by no virtual service", rule.mark),
            );
        }
    }
}

fn check_roles(config: &Config, ctx: &Context<'_>, report: &mut Report) {
    if let Some(nat) = &config.nat_gateway {
        let path = "nat_gateway";
        if !ctx.link_exists(&nat.interface) {
            report.error(
                path,
                format!("interface \"{}\" is not configured", nat.interface),
            );
        }
        if nat.prefix > Family::of(&nat.address).max_prefix() {
            report.error(
                path,
                format!("prefix /{} is longer than the address", nat.prefix),
            );
        }
    }
    if let Some(role) = &config.real_server {
        if role.vips.is_empty() {
            report.error(
                "real_server",
                "the real-server role has no virtual addresses; list the directors' VIPs",
            );
        }
    }
    let mut names: BTreeMap<&str, ()> = BTreeMap::new();
    let mut vips: BTreeMap<IpAddr, &str> = BTreeMap::new();
    for group in &config.clusterip {
        let path = format!("clusterip \"{}\"", group.name);
        if names.insert(group.name.as_str(), ()).is_some() {
            report.error(&path, "is defined twice");
        }
        if !group.vip.is_ipv4() || group.vip.is_unspecified() {
            report.error(&path, format!("vip {} cannot be shared: load sharing takes a unicast IPv4 address (ARP carries the shared MAC; IPv6 neighbour discovery is not rewritten); use a VRRP instance for an IPv6 address", group.vip));
        }
        if let Some(other) = vips.insert(group.vip, group.name.as_str()) {
            report.error(&path, format!("vip {} is also the address of group \"{other}\"; each group shares its own address", group.vip));
        }
        if config
            .vrrp
            .iter()
            .any(|v| v.vips.iter().any(|vip| vip.address == group.vip))
        {
            report.error(&path, format!("vip {} is also a VRRP virtual address: one box would hold it alone while both share it; remove it from one of the two", group.vip));
        }
        if ctx.subnets.iter().any(|(_, net)| net.addr == group.vip) {
            report.error(
                &path,
                format!(
                    "vip {} is an interface address; share an address no box has of its own",
                    group.vip
                ),
            );
        }
        match group.unicast_flood_mac {
            None if !group.multicast_mac.is_multicast() => {
                report.error(&path, format!("MAC {} is not a multicast MAC (lowest bit of the first byte); use e.g. 01:00:5e:..., or set unicast_flood_mac for unicast flooding mode", group.multicast_mac));
            }
            None => {}
            Some(mac) if mac.is_multicast() || mac.0 == [0; 6] => {
                report.error(&path, format!("unicast_flood_mac {mac} is not a unicast MAC (lowest bit of the first byte must be 0); use a locally administered one such as 02:54:44:00:00:01"));
            }
            Some(mac) if mac.0[0] & 0x02 == 0 => {
                report.warn(&path, format!("unicast_flood_mac {mac} is a globally administered MAC: if a device on the LAN owns it, switches learn it and stop flooding; use a locally administered one (second-lowest bit of the first byte set, e.g. 02:...)"));
            }
            Some(_) => {}
        }
        if group.total_nodes == 0 || group.total_nodes > 64 {
            report.error(
                &path,
                format!("total_nodes {} is outside 1 to 64", group.total_nodes),
            );
        }
        if group.local_nodes.is_empty() && group.total_nodes > 0 {
            report.warn(&path, "local_nodes is empty: this box serves every bucket; in a pair config the boxes split them (pair them, or list this box's buckets in local_nodes and the partner's on the partner)");
        }
        let mut seen = 0u64;
        for &node in &group.local_nodes {
            if node == 0 || node > group.total_nodes {
                report.error(
                    &path,
                    format!(
                        "local node {node} is outside 1 to total_nodes {}",
                        group.total_nodes
                    ),
                );
            } else {
                let bit = 1u64 << (node - 1).min(63);
                if seen & bit != 0 {
                    report.error(&path, format!("local node {node} is listed twice"));
                }
                seen |= bit;
            }
        }
        if !ctx.link_exists(&group.interface) {
            report.error(
                &path,
                format!("interface \"{}\" is not configured", group.interface),
            );
        } else if !ctx
            .link_addresses(&group.interface)
            .any(|cidr| cidr.addr.is_ipv4())
        {
            // The heartbeat carries this box's own address on the group's LAN: it is what the
            // partner probes before it takes this box's buckets over.
            report.warn(&path, format!("interface \"{}\" has no IPv4 address of this box's own, so after a heartbeat loss the partner cannot probe this box on that LAN and never takes its buckets over; give the interface an address", group.interface));
        }
    }
}
