//! IPVS connection sync between the two directors (`peer_link.ipvs_sync`): the kernel's own
//! sync daemons, started and checked over generic netlink, so established connections survive
//! a failover of the VIP.
//!
//! - **Both roles on both boxes.** The kernel runs a master (sends the connections this box
//!   schedules) and a backup (creates the connections the partner sends) at the same time. The
//!   box holding the VIP is the only one with traffic, so only its master has anything to send;
//!   the other box's backup keeps a copy. No VRRP state is consulted and nothing switches on a
//!   transition, so a failover never races a role change, and a split brain (both boxes holding
//!   the VIP) still syncs in both directions instead of losing one side's state.
//! - **Idempotent.** The running daemons are read back (`GET_DAEMON`); a missing one is started,
//!   one with another interface, sync id, group or port is stopped and restarted, an identical
//!   one is left alone (a restarted tandem disturbs nothing). The engine stops both when it
//!   shuts down.
//! - **Sync id** = the low 8 bits of `peer_link.pair_id` (the kernel's sync id is one byte on
//!   the wire). A backup drops messages carrying another id, so a cable to the wrong box cannot
//!   inject connections. An unpaired box (pair id 0) uses id 0, which the kernel's backup treats
//!   as "accept every id".
//! - **Group** 224.0.0.81, UDP port 8848, TTL 1: the kernel defaults, which keepalived's
//!   `lvs_sync_daemon` and `ipvsadm --start-daemon` also use, so a Tandem box can take over
//!   from a keepalived director during a migration.
//! - **An IPv4 address on the sync interface.** `ip_vs_sync.c` binds the master's socket to
//!   `inet_select_addr(dev, 0, RT_SCOPE_UNIVERSE)`. The appliance's peer NIC has only its IPv6
//!   link-local, so that would pick an address of *another* port (the public one) as the
//!   source of the sync datagrams on the peer cable; the partner then accepts them only while
//!   `rp_filter` is off (strict reverse-path filtering drops a source routed via another port),
//!   and a box with no IPv4 anywhere would send from 0.0.0.0. So when the sync interface has no
//!   IPv4 address, the engine gives it an IPv4 link-local one (RFC 3927, 169.254.1.0 to
//!   169.254.254.255, /16) derived from the last two bytes of its MAC before starting the
//!   daemons: the source is then on the cable's own subnet whatever the sysctls. IPv4 has no
//!   DAD in the kernel, so the address is usable at once. The two boxes' NICs would have to
//!   share those two MAC bytes to collide (the receiver drops its own address as a martian
//!   source); `lvs status` shows the address so that case is visible. The backup's receive
//!   socket needs no address: it binds to the group on the interface and joins it there.
//! - **Modules**: the sync code is part of `ip_vs`, which the engine loads anyway; IGMP and
//!   IPv4 multicast are built into the kernel.

use std::fmt::Write;
use std::net::{IpAddr, Ipv4Addr};

use tandem_config::Config;
use tandem_ipvs::conn::{ConnSummary, Origin};
use tandem_ipvs::{Request, SyncDaemon, SyncRole};
use tandem_southbound::net::NetOp;

/// The kernel's default sync multicast group (`IP_VS_SYNC_GROUP`).
pub const SYNC_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// The kernel's default sync UDP port (`IP_VS_SYNC_PORT`).
pub const SYNC_PORT: u16 = 8848;
/// Prefix of the IPv4 link-local network (169.254.0.0/16).
pub const LINK_LOCAL_PREFIX: u8 = 16;

/// What the config asks of the sync daemons.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncPlan {
    /// Interface of the sync traffic.
    pub interface: String,
    /// The config field that named `interface` (for error messages).
    pub field: &'static str,
    /// Sync id both daemons use.
    pub sync_id: u32,
}

/// The sync id of a pair: the low 8 bits of its pair id (0, "accept all", when unpaired).
pub fn sync_id(pair_id: u64) -> u32 {
    u32::from(pair_id.to_le_bytes()[0])
}

/// The plan when `peer_link.ipvs_sync` is on.
pub fn plan(config: &Config) -> Option<SyncPlan> {
    let peer = config.peer_link.as_ref().filter(|p| p.ipvs_sync)?;
    let (interface, field) = match &peer.ipvs_sync_interface {
        Some(name) => (name.as_str().to_owned(), "peer_link.ipvs_sync_interface"),
        None => (peer.interface.as_str().to_owned(), "peer_link.interface"),
    };
    Some(SyncPlan {
        interface,
        field,
        sync_id: sync_id(peer.pair_id),
    })
}

impl SyncPlan {
    /// The two daemons this box runs: master and backup, kernel defaults for group, port, TTL
    /// and message size.
    pub fn daemons(&self) -> [SyncDaemon; 2] {
        [SyncRole::Master, SyncRole::Backup].map(|role| SyncDaemon {
            role,
            ifname: self.interface.clone(),
            sync_id: self.sync_id,
            max_len: None,
            group: None,
            port: None,
            ttl: None,
        })
    }
}

/// Whether a running daemon does what `wanted` asks (unset fields of `wanted` mean the kernel
/// defaults; the kernel reports what it filled in).
pub fn matches(running: &SyncDaemon, wanted: &SyncDaemon) -> bool {
    let group = wanted.group.unwrap_or(IpAddr::V4(SYNC_GROUP));
    let port = wanted.port.unwrap_or(SYNC_PORT);
    running.role == wanted.role
        && running.ifname == wanted.ifname
        && running.sync_id == wanted.sync_id
        && running.group.is_none_or(|g| g == group)
        && running.port.is_none_or(|p| p == port)
        && wanted
            .ttl
            .is_none_or(|t| running.ttl.is_none_or(|r| r == t))
        && wanted
            .max_len
            .is_none_or(|m| running.max_len.is_none_or(|r| r == m))
}

/// The requests that turn `running` into `wanted`: nothing for a matching daemon, a start for a
/// missing one, a stop and a start for one that differs.
pub fn reconcile(wanted: &[SyncDaemon], running: &[SyncDaemon]) -> Vec<Request> {
    let mut requests = Vec::new();
    for daemon in wanted {
        match running.iter().find(|r| r.role == daemon.role) {
            Some(r) if matches(r, daemon) => {}
            Some(_) => {
                requests.push(Request::DelDaemon(daemon.role));
                requests.push(Request::NewDaemon(daemon.clone()));
            }
            None => requests.push(Request::NewDaemon(daemon.clone())),
        }
    }
    requests
}

/// The requests that stop every running daemon.
pub fn stop(running: &[SyncDaemon]) -> Vec<Request> {
    running.iter().map(|d| Request::DelDaemon(d.role)).collect()
}

/// The IPv4 link-local address for a MAC: 169.254.1.0 + (last two bytes mod 65024), which
/// stays inside RFC 3927's usable 169.254.1.0 to 169.254.254.255.
pub fn link_local_v4(mac: [u8; 6]) -> Ipv4Addr {
    let tail = u32::from(u16::from_be_bytes([mac[4], mac[5]]));
    let host = 0x0100 + tail % (0xff00 - 0x0100);
    let [_, _, high, low] = host.to_be_bytes();
    Ipv4Addr::new(169, 254, high, low)
}

/// The address to add so the sync interface has an IPv4 source, or None when it already has
/// one. `present` is what the kernel has on the interface.
pub fn address_op(interface: &str, present: &[(IpAddr, u8)], mac: [u8; 6]) -> Option<NetOp> {
    if present.iter().any(|(a, _)| a.is_ipv4()) {
        return None;
    }
    Some(NetOp::AddAddress {
        link: interface.to_owned(),
        address: IpAddr::V4(link_local_v4(mac)),
        prefix_len: LINK_LOCAL_PREFIX,
    })
}

/// Why a sync daemon could not be started, with the field to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    #[error("{field}: no interface \"{interface}\" on this box, so the IPVS sync daemons cannot start; set {field} to an existing port (or remove peer_link.ipvs_sync_interface to use the peer link)")]
    NoInterface {
        field: &'static str,
        interface: String,
    },
    #[error("{field}: interface \"{interface}\" is down or has no IPv4 stack, so the {role} sync daemon cannot join 224.0.0.81; bring the port up (it must be listed under [[interfaces]])")]
    Unreachable {
        field: &'static str,
        interface: String,
        role: &'static str,
    },
    #[error("{field}: the kernel refused the {role} sync daemon on \"{interface}\": {request} failed with errno {errno}; check the interface, or turn peer_link.ipvs_sync off")]
    Refused {
        field: &'static str,
        interface: String,
        role: &'static str,
        request: String,
        errno: i32,
    },
}

/// Names a role for people.
pub fn role_name(role: SyncRole) -> &'static str {
    match role {
        SyncRole::Master => "master",
        SyncRole::Backup => "backup",
    }
}

const ENODEV: i32 = 19;
const ENETUNREACH: i32 = 101;
const EADDRNOTAVAIL: i32 = 99;

/// Turns a refused request into the error that names the field and the fix.
pub fn explain(plan: &SyncPlan, request: &Request, errno: i32, text: &str) -> SyncError {
    let role = match request {
        Request::NewDaemon(d) => role_name(d.role),
        Request::DelDaemon(r) => role_name(*r),
        _ => "sync",
    };
    match errno {
        ENODEV => SyncError::NoInterface {
            field: plan.field,
            interface: plan.interface.clone(),
        },
        ENETUNREACH | EADDRNOTAVAIL => SyncError::Unreachable {
            field: plan.field,
            interface: plan.interface.clone(),
            role,
        },
        _ => SyncError::Refused {
            field: plan.field,
            interface: plan.interface.clone(),
            role,
            request: text.to_owned(),
            errno,
        },
    }
}

/// Status lines of the daemons: what runs, and what the plan expected but is missing.
pub fn render_daemons(
    plan: Option<&SyncPlan>,
    running: &[SyncDaemon],
    source: Option<IpAddr>,
) -> String {
    let mut out = String::new();
    if plan.is_none() && running.is_empty() {
        let _ = writeln!(out, "lvs: sync: off (peer_link.ipvs_sync = false)");
        return out;
    }
    for daemon in running {
        let group = daemon.group.unwrap_or(IpAddr::V4(SYNC_GROUP));
        let port = daemon.port.unwrap_or(SYNC_PORT);
        let _ = writeln!(
            out,
            "lvs: sync: {} on {} sync id {} group {group}:{port} running",
            role_name(daemon.role),
            daemon.ifname,
            daemon.sync_id
        );
    }
    if let Some(plan) = plan {
        for wanted in plan.daemons() {
            if !running.iter().any(|r| matches(r, &wanted)) {
                let _ = writeln!(
                    out,
                    "lvs: sync: {} on {} sync id {} NOT running as configured (see the log)",
                    role_name(wanted.role),
                    wanted.ifname,
                    wanted.sync_id
                );
            }
        }
        match source {
            Some(address) => {
                let _ = writeln!(
                    out,
                    "lvs: sync: source address {address} on {}",
                    plan.interface
                );
            }
            None => {
                let _ = writeln!(
                    out,
                    "lvs: sync: no IPv4 address on {} (sync datagrams leave from another port's)",
                    plan.interface
                );
            }
        }
    }
    out
}

/// Most connection entries listed one by one in the status.
pub const LISTED_CONNECTIONS: usize = 16;

/// Status lines of the connection table summary.
pub fn render_connections(summary: &ConnSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "lvs: connections: {} ({} local, {} synced from the partner)",
        summary.local + summary.synced,
        summary.local,
        summary.synced
    );
    for conn in &summary.entries {
        let _ = writeln!(
            out,
            "lvs: conn {} client {} vip {} server {} {} {} expires {}s",
            conn.protocol,
            conn.client,
            conn.virtual_addr,
            conn.real_server,
            conn.state,
            match conn.origin {
                Origin::Local => "local",
                Origin::Sync => "synced",
            },
            conn.expires_s
        );
    }
    let listed = summary.entries.len();
    let total = summary.local + summary.synced;
    if total > listed {
        let _ = writeln!(out, "lvs: conn ... {} more", total - listed);
    }
    if summary.unreadable > 0 {
        let _ = writeln!(
            out,
            "lvs: conn {} lines of the kernel table were unreadable",
            summary.unreadable
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        tandem_config::text::from_toml(text).unwrap()
    }

    const BASE: &str = r#"
[system]
hostname = "box-a"
[[interfaces]]
name = "peer"
[[interfaces]]
name = "private"
"#;

    #[test]
    fn plan_follows_the_peer_link_and_derives_the_sync_id() {
        assert_eq!(plan(&config(BASE)), None);
        let off = format!("{BASE}[peer_link]\ninterface = \"peer\"\n");
        assert_eq!(plan(&config(&off)), None);
        let on = format!(
            "{BASE}[peer_link]\ninterface = \"peer\"\npair_id = \"00000000000012ab\"\nipvs_sync = true\n"
        );
        assert_eq!(
            plan(&config(&on)),
            Some(SyncPlan {
                interface: "peer".into(),
                field: "peer_link.interface",
                sync_id: 0xab,
            })
        );
        let other = format!(
            "{BASE}[peer_link]\ninterface = \"peer\"\nipvs_sync = true\nipvs_sync_interface = \"private\"\n"
        );
        assert_eq!(
            plan(&config(&other)),
            Some(SyncPlan {
                interface: "private".into(),
                field: "peer_link.ipvs_sync_interface",
                sync_id: 0,
            })
        );
        assert_eq!(sync_id(0), 0);
        assert_eq!(sync_id(0xffff_ffff_ffff_ff07), 7);
    }

    fn plan_peer(id: u32) -> SyncPlan {
        SyncPlan {
            interface: "peer".into(),
            field: "peer_link.interface",
            sync_id: id,
        }
    }

    /// What the kernel reports for a daemon started with only role, interface and id.
    fn as_kernel_reports(mut d: SyncDaemon) -> SyncDaemon {
        d.max_len = Some(1472);
        d.group = Some(IpAddr::V4(SYNC_GROUP));
        d.port = Some(SYNC_PORT);
        d.ttl = Some(1);
        d
    }

    #[test]
    fn missing_daemons_start_and_identical_ones_are_left_alone() {
        let plan = plan_peer(5);
        let wanted = plan.daemons();
        assert_eq!(
            reconcile(&wanted, &[]),
            vec![
                Request::NewDaemon(wanted[0].clone()),
                Request::NewDaemon(wanted[1].clone())
            ]
        );
        let running: Vec<_> = wanted.iter().cloned().map(as_kernel_reports).collect();
        assert_eq!(reconcile(&wanted, &running), vec![]);
        assert_eq!(
            reconcile(&wanted, &running[1..]),
            vec![Request::NewDaemon(wanted[0].clone())]
        );
    }

    #[test]
    fn a_differing_daemon_is_restarted() {
        let wanted = plan_peer(5).daemons();
        let mut other_id = as_kernel_reports(wanted[0].clone());
        other_id.sync_id = 9;
        let mut other_port = as_kernel_reports(wanted[1].clone());
        other_port.port = Some(8849);
        assert_eq!(
            reconcile(&wanted, &[other_id, other_port]),
            vec![
                Request::DelDaemon(SyncRole::Master),
                Request::NewDaemon(wanted[0].clone()),
                Request::DelDaemon(SyncRole::Backup),
                Request::NewDaemon(wanted[1].clone()),
            ]
        );
        let mut other_if = as_kernel_reports(wanted[1].clone());
        other_if.ifname = "public".into();
        let mut other_group = as_kernel_reports(wanted[0].clone());
        other_group.group = Some("239.1.1.1".parse().unwrap());
        assert_eq!(reconcile(&wanted, &[other_group, other_if]).len(), 4);
        assert_eq!(
            stop(&[as_kernel_reports(wanted[1].clone())]),
            vec![Request::DelDaemon(SyncRole::Backup)]
        );
    }

    #[test]
    fn link_local_address_is_derived_from_the_mac_inside_rfc3927_range() {
        assert_eq!(
            link_local_v4([0x52, 0x54, 0, 0x12, 0x34, 0x56]),
            Ipv4Addr::new(169, 254, 0x35, 0x56)
        );
        for tail in [0u16, 1, 0xfeff, 0xff00, 0xffff] {
            let [a, b] = tail.to_be_bytes();
            let ip = link_local_v4([2, 0, 0, 0, a, b]);
            let [_, _, high, _] = ip.octets();
            assert!((1..=254).contains(&high), "{tail:#x} -> {ip}");
        }
        // Different MACs of one vendor (consecutive serials) get different addresses.
        assert_ne!(
            link_local_v4([0x52, 0x54, 0, 0, 0, 1]),
            link_local_v4([0x52, 0x54, 0, 0, 0, 2])
        );
    }

    #[test]
    fn an_address_is_added_only_when_the_interface_has_no_ipv4() {
        let mac = [0x52, 0x54, 0, 0, 0x01, 0x02];
        let v6: IpAddr = "fe80::1".parse().unwrap();
        assert_eq!(
            address_op("peer", &[(v6, 64)], mac),
            Some(NetOp::AddAddress {
                link: "peer".into(),
                address: IpAddr::V4(Ipv4Addr::new(169, 254, 2, 2)),
                prefix_len: 16,
            })
        );
        let v4: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(address_op("peer", &[(v6, 64), (v4, 24)], mac), None);
    }

    #[test]
    fn kernel_refusals_name_the_field_and_the_fix() {
        let plan = SyncPlan {
            interface: "eth9".into(),
            field: "peer_link.ipvs_sync_interface",
            sync_id: 0,
        };
        let request = Request::NewDaemon(plan.daemons()[0].clone());
        let text = explain(&plan, &request, 19, "NEW_DAEMON").to_string();
        assert!(
            text.starts_with("peer_link.ipvs_sync_interface: no interface \"eth9\""),
            "{text}"
        );
        assert!(text.contains("set peer_link.ipvs_sync_interface to an existing port"));
        let text = explain(&plan, &request, 101, "NEW_DAEMON").to_string();
        assert!(text.contains("master sync daemon"), "{text}");
        let text = explain(&plan, &request, 22, "NEW_DAEMON x").to_string();
        assert!(text.contains("errno 22"), "{text}");
    }

    #[test]
    fn status_shows_running_daemons_missing_ones_and_connections() {
        let plan = plan_peer(3);
        let running = vec![as_kernel_reports(plan.daemons()[0].clone())];
        let text = render_daemons(Some(&plan), &running, Some("169.254.1.2".parse().unwrap()));
        assert_eq!(
            text,
            "lvs: sync: master on peer sync id 3 group 224.0.0.81:8848 running\n\
lvs: sync: backup on peer sync id 3 NOT running as configured (see the log)\n\
lvs: sync: source address 169.254.1.2 on peer\n"
        );
        assert_eq!(
            render_daemons(None, &[], None),
            "lvs: sync: off (peer_link.ipvs_sync = false)\n"
        );
        let summary = tandem_ipvs::conn::summarize(
            [
                "TCP C0000264 9C40 C000020A 0007 C0000215 0007 ESTABLISHED SYNC       899",
                "TCP C0000265 9C40 C000020A 0007 C0000216 0007 ESTABLISHED LOCAL      899",
            ]
            .into_iter()
            .map(str::to_owned),
            1,
        );
        assert_eq!(
            render_connections(&summary),
            "lvs: connections: 2 (1 local, 1 synced from the partner)\n\
lvs: conn TCP client 192.0.2.100:40000 vip 192.0.2.10:7 server 192.0.2.21:7 ESTABLISHED synced expires 899s\n\
lvs: conn ... 1 more\n"
        );
    }
}
