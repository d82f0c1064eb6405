//! The real-server role engine (`realserver`): makes this box accept traffic a director
//! forwards to it.
//!
//! - DR/TUN: every VIP on `lo` (/32 or /128) and `arp_ignore=1`, `arp_announce=2` (on `all`
//!   and each interface) so the box never answers ARP for the VIP; the director does.
//! - TUN: `ipip` loaded, `tunl0` up with the VIPs on it, `rp_filter` off (decapsulated packets
//!   arrive on `tunl0` from client addresses routed elsewhere).
//! - NAT: the default route via the director's NAT gateway address (`nat_gateway` in the
//!   config of a box that directs no virtual service), so replies go back through the director.
//!
//! `realserver status` is a self-check: it re-reads the kernel and names what is missing.
//!
//! **Live apply** (`EngineRequest::Apply`): the new role is diffed against the kernel as it is
//! now ([`changes`], pure): missing VIPs are added (also ones removed by hand: drift is
//! repaired), VIPs of the previous role that the new one drops are removed (only those: this
//! engine removes nothing it did not add), knobs not at their value are set, the default route
//! follows a changed NAT gateway. A config without a role (the daemon then stops the engine)
//! removes the previous role's VIPs; so does the shutdown. Knobs and the default route are left
//! as they are. The reply has one line per change.

pub mod lab_hook;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use tandem_config::Config;
use tandem_southbound::net::NetOp;
use tokio::sync::mpsc;

use crate::engine::EngineContext;
use crate::engine::{EngineHandle, EngineRequest};

/// The device carrying VIPs for DR (and TUN, besides `tunl0`).
const VIP_DEVICE: &str = "lo";
/// The kernel's fallback IPIP device, created when `ipip` loads.
const TUNNEL_DEVICE: &str = "tunl0";

/// What the role wants, derived from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub vips: Vec<IpAddr>,
    pub tunnel: bool,
    /// IPv4 default gateway (the director's NAT gateway address), for NAT real servers.
    pub nat_gateway: Option<Ipv4Addr>,
    /// Interfaces the ARP knobs are set on besides `all`.
    pub interfaces: Vec<String>,
}

impl Role {
    /// The role of `config`: a `real_server` section (DR/TUN), or a `nat_gateway` on a box
    /// that directs no virtual service (a NAT real server routing through that gateway).
    pub fn of(config: &Config) -> Option<Role> {
        let directs = config.virtual_services.iter().any(|vs| vs.active);
        let nat_gateway = match config.nat_gateway.as_ref().map(|g| g.address) {
            Some(IpAddr::V4(v4)) if !directs => Some(v4),
            _ => None,
        };
        if config.real_server.is_none() && nat_gateway.is_none() {
            return None;
        }
        let (vips, tunnel) = config
            .real_server
            .as_ref()
            .map_or((Vec::new(), false), |rs| {
                (rs.vips.iter().copied().collect(), rs.tunnel)
            });
        Some(Role {
            vips,
            tunnel,
            nat_gateway,
            interfaces: config
                .interfaces
                .iter()
                .map(|i| i.name.as_str().to_owned())
                .collect(),
        })
    }

    /// The sysctls the role needs, with their values.
    pub fn sysctls(&self) -> Vec<(String, &'static str)> {
        let mut out = Vec::new();
        if !self.vips.is_empty() {
            let mut devices = vec!["all".to_owned(), VIP_DEVICE.to_owned()];
            devices.extend(self.interfaces.iter().cloned());
            for dev in devices {
                out.push((format!("net.ipv4.conf.{dev}.arp_ignore"), "1"));
                out.push((format!("net.ipv4.conf.{dev}.arp_announce"), "2"));
            }
        }
        if self.tunnel {
            for dev in ["all", "default", TUNNEL_DEVICE] {
                out.push((format!("net.ipv4.conf.{dev}.rp_filter"), "0"));
            }
        }
        out
    }

    /// Address operations for the VIPs (host routes on `lo`, and on `tunl0` for TUN).
    pub fn address_ops(&self) -> Vec<NetOp> {
        let mut ops = Vec::new();
        for vip in &self.vips {
            let prefix_len = if vip.is_ipv4() { 32 } else { 128 };
            ops.push(NetOp::AddAddress {
                link: VIP_DEVICE.into(),
                address: *vip,
                prefix_len,
            });
            if self.tunnel && vip.is_ipv4() {
                ops.push(NetOp::AddAddress {
                    link: TUNNEL_DEVICE.into(),
                    address: *vip,
                    prefix_len,
                });
            }
        }
        ops
    }
}

/// Starts the real-server engine when the config gives this box a real-server role.
pub fn start(config: &Config, context: &EngineContext) -> Option<EngineHandle> {
    let role = Role::of(config)?;
    let (requests, inbox) = mpsc::channel(16);
    let context = context.clone();
    tokio::spawn(async move {
        for line in reconcile(None, Some(&role), &context).await {
            context.log.line(format!("realserver: {line}"));
        }
        let problems = self_check(&role, &context).await;
        if problems.is_empty() {
            context.log.line("realserver: role in place");
        } else {
            for problem in problems {
                context.log.line(format!("realserver: missing: {problem}"));
            }
        }
        run(Some(role), context, inbox).await;
    });
    Some(EngineHandle {
        name: "realserver",
        requests,
    })
}

/// What the kernel has now, as far as a role is concerned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelView {
    /// Addresses per device (`lo`, `tunl0`); a device missing here could not be read.
    pub addresses: BTreeMap<String, Vec<IpAddr>>,
    /// Current values of the role's knobs (`None`: the knob is absent).
    pub sysctls: BTreeMap<String, Option<String>>,
    /// Whether `tunl0` exists and is up.
    pub tunnel_up: bool,
    /// The IPv4 default gateway.
    pub default_gateway: Option<Ipv4Addr>,
}

impl KernelView {
    /// Whether `address` is on `link` (`None`: the link could not be read).
    fn has(&self, link: &str, address: &IpAddr) -> Option<bool> {
        self.addresses.get(link).map(|a| a.contains(address))
    }
}

/// One change that brings the kernel to a role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Load `ipip` and bring `tunl0` up.
    Tunnel,
    /// Set a knob.
    Sysctl {
        key: String,
        value: &'static str,
        was: Option<String>,
    },
    /// Add or remove a VIP; `repair` when the role already had it (it went missing).
    Address { op: NetOp, repair: bool },
    /// Route by default via the NAT gateway.
    DefaultRoute {
        via: Ipv4Addr,
        was: Option<Ipv4Addr>,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Tunnel => write!(f, "{TUNNEL_DEVICE} up (ipip)"),
            Change::Sysctl { key, value, was } => match was {
                Some(was) => write!(f, "{key} = {value} (was {was})"),
                None => write!(f, "{key} = {value}"),
            },
            Change::Address {
                op:
                    NetOp::AddAddress {
                        link,
                        address,
                        prefix_len,
                    },
                repair,
            } => {
                write!(f, "VIP {address}/{prefix_len} ")?;
                if *repair {
                    write!(f, "on {link} was missing: added again")
                } else {
                    write!(f, "added to {link}")
                }
            }
            Change::Address {
                op:
                    NetOp::DelAddress {
                        link,
                        address,
                        prefix_len,
                    },
                ..
            } => write!(f, "VIP {address}/{prefix_len} removed from {link}"),
            Change::Address { op, .. } => write!(f, "{op}"),
            Change::DefaultRoute { via, was } => match was {
                Some(was) => write!(f, "default route via {via} (was via {was})"),
                None => write!(f, "default route via {via} (there was none)"),
            },
        }
    }
}

/// The changes that bring the kernel (`kernel`) from the `previous` role (what this engine set
/// up before, `None` at start) to `role` (`None`: no role any more). Pure.
pub fn changes(previous: Option<&Role>, role: Option<&Role>, kernel: &KernelView) -> Vec<Change> {
    let mut out = Vec::new();
    let wanted = role.map(Role::address_ops).unwrap_or_default();
    let before = previous.map(Role::address_ops).unwrap_or_default();
    if role.is_some_and(|r| r.tunnel) && !kernel.tunnel_up {
        out.push(Change::Tunnel);
    }
    let asked_before: Vec<String> = previous
        .map(Role::sysctls)
        .unwrap_or_default()
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    for (key, value) in role.map(Role::sysctls).unwrap_or_default() {
        let current = kernel.sysctls.get(&key).cloned().flatten();
        // An absent knob (its interface is missing) was reported when the role first asked.
        let absent = kernel.sysctls.get(&key).is_some_and(Option::is_none);
        if absent && asked_before.contains(&key) {
            continue;
        }
        if current.as_deref() != Some(value) {
            out.push(Change::Sysctl {
                key,
                value,
                was: current,
            });
        }
    }
    for op in &before {
        let NetOp::AddAddress {
            link,
            address,
            prefix_len,
        } = op
        else {
            continue;
        };
        let kept = wanted.iter().any(|w| match w {
            NetOp::AddAddress {
                link: l,
                address: a,
                ..
            } => l == link && a == address,
            _ => false,
        });
        if !kept && kernel.has(link, address) != Some(false) {
            out.push(Change::Address {
                op: NetOp::DelAddress {
                    link: link.clone(),
                    address: *address,
                    prefix_len: *prefix_len,
                },
                repair: false,
            });
        }
    }
    for op in &wanted {
        let NetOp::AddAddress { link, address, .. } = op else {
            continue;
        };
        if kernel.has(link, address) != Some(true) {
            out.push(Change::Address {
                op: op.clone(),
                repair: before.contains(op),
            });
        }
    }
    if let Some(via) = role.and_then(|r| r.nat_gateway) {
        if kernel.default_gateway != Some(via) {
            out.push(Change::DefaultRoute {
                via,
                was: kernel.default_gateway,
            });
        }
    }
    out
}

/// Reads what `changes` needs to know about the roles from the kernel.
async fn read_kernel(roles: [Option<&Role>; 2], context: &EngineContext) -> KernelView {
    let mut view = KernelView::default();
    let mut links: Vec<String> = Vec::new();
    for role in roles.into_iter().flatten() {
        for op in role.address_ops() {
            if let NetOp::AddAddress { link, .. } = op {
                if !links.contains(&link) {
                    links.push(link);
                }
            }
        }
    }
    for link in links {
        if let Ok(present) = context.net.addresses(&link).await {
            view.addresses
                .insert(link, present.into_iter().map(|(a, _)| a).collect());
        }
    }
    if let [_, Some(role)] = roles {
        for (key, _) in role.sysctls() {
            let value = tandem_southbound::sysctl::get(&key).ok();
            view.sysctls.insert(key, value);
        }
        if role.tunnel {
            let links = context.net.links().await.unwrap_or_default();
            view.tunnel_up = links.iter().any(|(name, up)| name == TUNNEL_DEVICE && *up);
        }
        if role.nat_gateway.is_some() {
            view.default_gateway = tandem_southbound::route::default_gateway_v4();
        }
    }
    view
}

/// Brings the kernel from `previous` to `role` (see [`changes`]); returns one line per change
/// made or failed.
async fn reconcile(
    previous: Option<&Role>,
    role: Option<&Role>,
    context: &EngineContext,
) -> Vec<String> {
    let kernel = read_kernel([previous, role], context).await;
    let mut lines = Vec::new();
    for change in changes(previous, role, &kernel) {
        let result = match &change {
            Change::Tunnel => {
                crate::engine::load_feature_modules(&context.log, "realserver", &["ipip"]);
                let up = NetOp::SetLinkUp {
                    name: TUNNEL_DEVICE.into(),
                };
                context
                    .net
                    .apply(std::slice::from_ref(&up))
                    .await
                    .map_err(|e| e.to_string())
            }
            Change::Sysctl { key, value, .. } => {
                tandem_southbound::sysctl::set(key, value).map_err(|e| e.to_string())
            }
            Change::Address { op, .. } => context
                .net
                .apply(std::slice::from_ref(op))
                .await
                .map_err(|e| e.to_string()),
            Change::DefaultRoute { via, .. } => tandem_southbound::route::replace_default_v4(*via)
                .await
                .map_err(|e| e.to_string()),
        };
        lines.push(match result {
            Ok(()) => change.to_string(),
            Err(error) => format!("{change}: failed: {error}"),
        });
    }
    if let (Some(was), Some(role)) = (previous.and_then(|p| p.nat_gateway), role) {
        if role.nat_gateway.is_none() && kernel.default_gateway == Some(was) {
            lines.push(format!(
                "default route via {was} left in place (no NAT gateway configured any more; change it by hand if it should go)"
            ));
        }
    }
    lines
}

/// The reply text: each line prefixed, none when nothing changed.
fn report(context: &EngineContext, lines: &[String]) -> String {
    let mut text = String::new();
    for line in lines {
        context.log.line(format!("realserver: {line}"));
        text.push_str("realserver: ");
        text.push_str(line);
        text.push('\n');
    }
    text
}
/// Everything the role needs that the kernel does not have right now.
async fn self_check(role: &Role, context: &EngineContext) -> Vec<String> {
    let mut missing = Vec::new();
    for (key, value) in role.sysctls() {
        match tandem_southbound::sysctl::get(&key) {
            Ok(v) if v == value => {}
            Ok(v) => missing.push(format!("{key}={value} (is {v})")),
            Err(_) => missing.push(format!("{key}={value} (knob absent)")),
        }
    }
    let mut present: Vec<(String, Vec<(IpAddr, u8)>)> = Vec::new();
    for op in role.address_ops() {
        let NetOp::AddAddress { link, address, .. } = &op else {
            continue;
        };
        if !present.iter().any(|(l, _)| l == link) {
            let addrs = context.net.addresses(link).await.unwrap_or_default();
            present.push((link.clone(), addrs));
        }
        let has = present
            .iter()
            .any(|(l, addrs)| l == link && addrs.iter().any(|(a, _)| a == address));
        if !has {
            missing.push(format!("VIP {address} on {link}"));
        }
    }
    if role.tunnel {
        let links = context.net.links().await.unwrap_or_default();
        if !links.iter().any(|(name, up)| name == TUNNEL_DEVICE && *up) {
            missing.push(format!("{TUNNEL_DEVICE} up (load ipip)"));
        }
    }
    if let Some(gateway) = role.nat_gateway {
        match tandem_southbound::route::default_gateway_v4() {
            Some(g) if g == gateway => {}
            Some(g) => missing.push(format!("default route via {gateway} (is via {g})")),
            None => missing.push(format!("default route via {gateway}")),
        }
    }
    missing
}

async fn run(
    mut role: Option<Role>,
    context: EngineContext,
    mut inbox: mpsc::Receiver<EngineRequest>,
) {
    while let Some(request) = inbox.recv().await {
        match request {
            EngineRequest::Status(reply) => {
                let _ = reply.send(status_text(role.as_ref(), &context).await);
            }
            EngineRequest::Metrics(reply) => {
                let _ = reply.send(metrics(role.as_ref(), &context).await);
            }
            EngineRequest::Apply { config, reply } => {
                let new = Role::of(&config);
                let lines = reconcile(role.as_ref(), new.as_ref(), &context).await;
                role = new;
                let _ = reply.send(report(&context, &lines));
            }
            EngineRequest::Track { .. } => {}
            EngineRequest::Standby { reply, .. } => {
                let _ = reply.send(
                    "realserver: standby is a VRRP state: `vrrp standby on|off`\n".to_owned(),
                );
            }
            EngineRequest::Shutdown(done) => {
                // Leave cleanly: the VIPs this engine added go (the box stops accepting traffic
                // for them); knobs and the default route stay.
                let lines = reconcile(role.as_ref(), None, &context).await;
                for line in lines {
                    context.log.line(format!("realserver: {line}"));
                }
                let _ = done.send(());
                return;
            }
        }
    }
}

/// The metric families: the VIPs of the role, and what the self-check finds missing as the
/// engine's errors.
async fn metrics(role: Option<&Role>, context: &EngineContext) -> crate::metrics::Families {
    use crate::metrics::{Families, Family};
    let missing = match role {
        Some(role) => self_check(role, context).await.len(),
        None => 0,
    };
    let mut families = Families::new();
    families.push(
        Family::gauge(
            "tandem_realserver_vips",
            "Virtual addresses this real server accepts traffic for (on lo, and tunl0 for TUN).",
        )
        .with(role.map_or(0, |role| role.vips.len())),
    );
    families.push(crate::metrics::engine_errors("realserver", missing));
    families
}

/// `realserver status`: the role and the self-check.
async fn status_text(role: Option<&Role>, context: &EngineContext) -> String {
    let Some(role) = role else {
        return "realserver: no real-server role in the config\nrealserver: end\n".to_owned();
    };
    let mut text = format!(
        "realserver: vips {} tunnel {} nat_gateway {}\n",
        if role.vips.is_empty() {
            "none".to_owned()
        } else {
            role.vips
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",")
        },
        if role.tunnel { "yes" } else { "no" },
        role.nat_gateway
            .map_or("none".to_owned(), |g| g.to_string())
    );
    let missing = self_check(role, context).await;
    if missing.is_empty() {
        text.push_str("realserver: self-check ok\n");
    }
    for m in missing {
        text.push_str(&format!("realserver: missing: {m}\n"));
    }
    text.push_str("realserver: end\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dr_tun_role_sets_arp_knobs_rp_filter_and_vips() {
        let config = tandem_config::text::from_toml(
            r#"
[[interfaces]]
name = "private"
addresses = ["198.51.100.11/24"]

[real_server]
vips = ["192.0.2.10"]
tunnel = true
"#,
        )
        .unwrap();
        let role = Role::of(&config).unwrap();
        let sysctls = role.sysctls();
        for dev in ["all", "lo", "private"] {
            assert!(sysctls.contains(&(format!("net.ipv4.conf.{dev}.arp_ignore"), "1")));
            assert!(sysctls.contains(&(format!("net.ipv4.conf.{dev}.arp_announce"), "2")));
        }
        assert!(sysctls.contains(&("net.ipv4.conf.tunl0.rp_filter".to_owned(), "0")));
        let vip: IpAddr = "192.0.2.10".parse().unwrap();
        assert_eq!(
            role.address_ops(),
            vec![
                NetOp::AddAddress {
                    link: "lo".into(),
                    address: vip,
                    prefix_len: 32
                },
                NetOp::AddAddress {
                    link: "tunl0".into(),
                    address: vip,
                    prefix_len: 32
                },
            ]
        );
        assert_eq!(role.nat_gateway, None);
    }

    #[test]
    fn nat_role_only_routes_via_the_gateway() {
        let config = tandem_config::text::from_toml(
            r#"
[[interfaces]]
name = "private"
addresses = ["198.51.100.11/24"]

[nat_gateway]
address = "198.51.100.1"
prefix = 24
interface = "private"
"#,
        )
        .unwrap();
        let role = Role::of(&config).unwrap();
        assert!(role.sysctls().is_empty());
        assert!(role.address_ops().is_empty());
        assert_eq!(role.nat_gateway, Some("198.51.100.1".parse().unwrap()));
        assert!(Role::of(&Config::default()).is_none());
        // A director's own NAT gateway is not a route for itself.
        let mut director = config.clone();
        let vs = tandem_config::model::VirtualService {
            address: Some("192.0.2.10".parse().unwrap()),
            ..Default::default()
        };
        director.virtual_services.push(vs).unwrap();
        assert!(Role::of(&director).is_none());
    }

    fn role(vips: &[&str], tunnel: bool, nat_gateway: Option<&str>) -> Role {
        Role {
            vips: vips.iter().map(|v| v.parse().unwrap()).collect(),
            tunnel,
            nat_gateway: nat_gateway.map(|g| g.parse().unwrap()),
            interfaces: vec!["private".into()],
        }
    }

    /// The kernel with `role` fully in place.
    fn in_place(role: &Role) -> KernelView {
        let mut view = KernelView {
            tunnel_up: role.tunnel,
            default_gateway: role.nat_gateway,
            ..Default::default()
        };
        for (key, value) in role.sysctls() {
            view.sysctls.insert(key, Some(value.to_owned()));
        }
        view.addresses
            .insert("lo".into(), vec!["127.0.0.1".parse().unwrap()]);
        view.addresses.insert("tunl0".into(), Vec::new());
        for op in role.address_ops() {
            if let NetOp::AddAddress { link, address, .. } = op {
                view.addresses.entry(link).or_default().push(address);
            }
        }
        view
    }

    fn lines(changes: &[Change]) -> Vec<String> {
        changes.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn a_role_in_place_needs_no_change() {
        let dr = role(&["192.0.2.10"], true, None);
        assert!(changes(Some(&dr), Some(&dr), &in_place(&dr)).is_empty());
        let nat = role(&[], false, Some("198.51.100.1"));
        assert!(changes(Some(&nat), Some(&nat), &in_place(&nat)).is_empty());
    }

    #[test]
    fn the_first_apply_sets_up_everything_missing() {
        let dr = role(&["192.0.2.10"], true, None);
        let mut kernel = in_place(&role(&[], false, None));
        kernel
            .sysctls
            .insert("net.ipv4.conf.all.arp_ignore".into(), Some("0".into()));
        let out = lines(&changes(None, Some(&dr), &kernel));
        assert_eq!(out[0], "tunl0 up (ipip)");
        assert!(out.contains(&"net.ipv4.conf.all.arp_ignore = 1 (was 0)".to_owned()));
        assert!(out.contains(&"net.ipv4.conf.lo.arp_announce = 2".to_owned()));
        assert!(out.contains(&"VIP 192.0.2.10/32 added to lo".to_owned()));
        assert!(out.contains(&"VIP 192.0.2.10/32 added to tunl0".to_owned()));
    }

    #[test]
    fn a_knob_of_a_missing_interface_is_reported_once() {
        let dr = role(&["192.0.2.10"], false, None);
        let mut kernel = in_place(&dr);
        kernel
            .sysctls
            .insert("net.ipv4.conf.private.arp_ignore".into(), None);
        assert_eq!(
            lines(&changes(None, Some(&dr), &kernel)),
            ["net.ipv4.conf.private.arp_ignore = 1"]
        );
        assert!(changes(Some(&dr), Some(&dr), &kernel).is_empty());
    }

    #[test]
    fn a_vip_removed_by_hand_is_added_again() {
        let dr = role(&["192.0.2.10", "192.0.2.11"], false, None);
        let mut kernel = in_place(&dr);
        kernel
            .addresses
            .get_mut("lo")
            .unwrap()
            .retain(|a| *a != "192.0.2.11".parse::<IpAddr>().unwrap());
        assert_eq!(
            lines(&changes(Some(&dr), Some(&dr), &kernel)),
            ["VIP 192.0.2.11/32 on lo was missing: added again"]
        );
    }

    #[test]
    fn a_changed_vip_replaces_only_the_previous_roles_address() {
        let before = role(&["192.0.2.10"], false, None);
        let after = role(&["192.0.2.20"], false, None);
        let mut kernel = in_place(&before);
        // An address someone else put on lo is not ours to remove.
        kernel
            .addresses
            .get_mut("lo")
            .unwrap()
            .push("192.0.2.99".parse().unwrap());
        assert_eq!(
            changes(Some(&before), Some(&after), &kernel),
            [
                Change::Address {
                    op: NetOp::DelAddress {
                        link: "lo".into(),
                        address: "192.0.2.10".parse().unwrap(),
                        prefix_len: 32
                    },
                    repair: false
                },
                Change::Address {
                    op: NetOp::AddAddress {
                        link: "lo".into(),
                        address: "192.0.2.20".parse().unwrap(),
                        prefix_len: 32
                    },
                    repair: false
                },
            ]
        );
    }

    #[test]
    fn no_role_removes_the_previous_vips_and_nothing_else() {
        let before = role(&["192.0.2.10"], true, None);
        let out = lines(&changes(Some(&before), None, &in_place(&before)));
        assert_eq!(
            out,
            [
                "VIP 192.0.2.10/32 removed from lo",
                "VIP 192.0.2.10/32 removed from tunl0"
            ]
        );
        // Already gone: nothing to do.
        assert!(changes(Some(&before), None, &in_place(&role(&[], false, None))).is_empty());
    }

    #[test]
    fn a_changed_nat_gateway_moves_the_default_route() {
        let before = role(&[], false, Some("198.51.100.1"));
        let after = role(&[], false, Some("198.51.100.254"));
        assert_eq!(
            lines(&changes(Some(&before), Some(&after), &in_place(&before))),
            ["default route via 198.51.100.254 (was via 198.51.100.1)"]
        );
    }
}
