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

pub mod lab_hook;

use std::net::IpAddr;

use tandem_config::Config;
use tandem_southbound::net::NetOp;
use tokio::sync::mpsc;

use crate::engine::{EngineHandle, EngineRequest};
use crate::engines::EngineContext;

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
    pub nat_gateway: Option<std::net::Ipv4Addr>,
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
    lab_hook::spawn_if_requested(&context.log);
    let role = Role::of(config)?;
    let (requests, inbox) = mpsc::channel(16);
    let context = context.clone();
    tokio::spawn(async move {
        apply(&role, &context).await;
        run(role, context, inbox).await;
    });
    Some(EngineHandle {
        name: "realserver",
        requests,
    })
}

async fn apply(role: &Role, context: &EngineContext) {
    let log = &context.log;
    if role.tunnel {
        crate::engines::load_feature_modules(log, "realserver", &["ipip"]);
    }
    if role.tunnel {
        let up = NetOp::SetLinkUp {
            name: TUNNEL_DEVICE.into(),
        };
        if let Err(error) = context.net.apply(std::slice::from_ref(&up)).await {
            log.line(format!("realserver: {error}"));
        }
    }
    for (key, value) in role.sysctls() {
        if let Err(error) = tandem_southbound::sysctl::set(&key, value) {
            log.line(format!("realserver: {error}"));
        }
    }
    for op in role.address_ops() {
        if let Err(error) = context.net.apply(std::slice::from_ref(&op)).await {
            log.line(format!("realserver: {error}"));
        }
    }
    if let Some(gateway) = role.nat_gateway {
        if let Err(error) = tandem_southbound::route::replace_default_v4(gateway).await {
            log.line(format!("realserver: {error}"));
        }
    }
    let problems = self_check(role, context).await;
    if problems.is_empty() {
        log.line("realserver: role in place");
    } else {
        for problem in problems {
            log.line(format!("realserver: missing: {problem}"));
        }
    }
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

async fn run(role: Role, context: EngineContext, mut inbox: mpsc::Receiver<EngineRequest>) {
    while let Some(request) = inbox.recv().await {
        match request {
            EngineRequest::Status(reply) => {
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
                let missing = self_check(&role, &context).await;
                if missing.is_empty() {
                    text.push_str("realserver: self-check ok\n");
                }
                for m in missing {
                    text.push_str(&format!("realserver: missing: {m}\n"));
                }
                text.push_str("realserver: end\n");
                let _ = reply.send(text);
            }
            EngineRequest::Track { .. } => {}
            EngineRequest::Shutdown(done) => {
                let _ = done.send(());
                return;
            }
        }
    }
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
}
