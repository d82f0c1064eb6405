//! Piranha lvs.cf export.
//!
//! lvs.cf describes both routers, so a pair config is one file. The VRRP instances, sync group
//! and halves the lvs.cf import derives from the primary and backup (`import::lvs_pair`) are
//! written as those two addresses and need no note; any other instance or half is noted.

use std::fmt::Write as _;
use std::format;
use std::string::String;

use super::{Exported, Notes};
use crate::import::lvs_pair;
use crate::model::{CheckKind, Config, Forwarding, OnFailure, Scheduler, VirtualService};
use crate::net::{prefix_to_netmask, Family};

/// Encodes a send/expect string with Piranha's escapes.
pub(crate) fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn network_name(forwarding: Forwarding) -> &'static str {
    match forwarding {
        Forwarding::Nat => "nat",
        Forwarding::Dr => "direct",
        Forwarding::Tun => "tunnel",
    }
}

/// The peer link's heartbeat times as lvs.cf `keepalive` / `deadtime`, which count whole
/// seconds: each is rounded up (Tandem's 10 ms default becomes 1 s). Where rounding would leave
/// deadtime no longer than keepalive (10 ms / 30 ms would give 1 s / 1 s, a partner declared
/// dead after a single late heartbeat), deadtime keeps the config's number of missed
/// heartbeats instead: 1 s / 3 s.
fn heartbeat_seconds(interval_ms: u32, dead_after_ms: u32) -> (u32, u32) {
    let keepalive = interval_ms.div_ceil(1000);
    let mut deadtime = dead_after_ms.div_ceil(1000);
    if deadtime <= keepalive && interval_ms > 0 && dead_after_ms > interval_ms {
        deadtime = keepalive.saturating_mul(dead_after_ms.div_ceil(interval_ms));
    }
    (keepalive, deadtime)
}

/// Writes `config` as lvs.cf.
pub fn export(config: &Config) -> Exported {
    let mut out = String::new();
    let mut notes = Notes::default();
    let _ = writeln!(out, "serial_no = 1");
    if let Some(peer) = &config.peer_link {
        if let Some(primary) = &peer.primary {
            if let Some(address) = primary.public {
                let _ = writeln!(out, "primary = {address}");
            }
            if let Some(address) = primary.private {
                let _ = writeln!(out, "primary_private = {address}");
            }
        }
        let _ = writeln!(out, "service = lvs");
        match &peer.backup {
            Some(backup) => {
                let _ = writeln!(out, "backup_active = 1");
                if let Some(address) = backup.public {
                    let _ = writeln!(out, "backup = {address}");
                }
                if let Some(address) = backup.private {
                    let _ = writeln!(out, "backup_private = {address}");
                }
            }
            None => {
                let _ = writeln!(out, "backup_active = 0");
            }
        }
        let _ = writeln!(out, "heartbeat = 1");
        let _ = writeln!(out, "heartbeat_port = {}", peer.heartbeat_port);
        let (keepalive_s, deadtime_s) =
            heartbeat_seconds(peer.heartbeat_interval_ms, peer.dead_after_ms);
        let _ = writeln!(out, "keepalive = {keepalive_s}");
        let _ = writeln!(out, "deadtime = {deadtime_s}");
        if peer.heartbeat_interval_ms % 1000 != 0 || peer.dead_after_ms % 1000 != 0 {
            notes.add(
                "peer_link",
                format!(
                    "lvs.cf counts heartbeat times in whole seconds: heartbeat_interval_ms {} / dead_after_ms {} written as keepalive {keepalive_s} s / deadtime {deadtime_s} s ({}); pulse notices a partner's death after {deadtime_s} s",
                    peer.heartbeat_interval_ms,
                    peer.dead_after_ms,
                    if deadtime_s == peer.dead_after_ms.div_ceil(1000) {
                        "rounded up"
                    } else {
                        "rounded up, deadtime kept at the same number of missed heartbeats"
                    }
                ),
            );
        }
        if peer.pair_id != 0 {
            notes.add(
                "peer_link.pair_id",
                "the pairing identity is not part of lvs.cf",
            );
        }
    } else {
        let _ = writeln!(out, "service = lvs");
    }
    let network = config
        .virtual_services
        .first()
        .map(|s| s.forwarding)
        .unwrap_or_default();
    let _ = writeln!(out, "network = {}", network_name(network));
    if let Some(nat) = &config.nat_gateway {
        let _ = writeln!(out, "nat_router = {} {}", nat.address, nat.interface);
        if nat.address.is_ipv4() {
            let _ = writeln!(out, "nat_nmask = {}", prefix_to_netmask(nat.prefix));
        }
    }
    let _ = writeln!(out, "debug_level = NONE");
    let _ = writeln!(out, "monitor_links = 1");
    if let Some(peer) = &config.peer_link {
        let _ = writeln!(out, "syncdaemon = {}", u8::from(peer.ipvs_sync));
        if let Some(interface) = &peer.ipvs_sync_interface {
            let _ = writeln!(out, "syncd_iface = {interface}");
        }
    }
    for (index, service) in config.virtual_services.iter().enumerate() {
        virtual_block(service, index, network, &mut out, &mut notes);
    }
    not_carried(config, &mut notes);
    Exported {
        text: out,
        notes: notes.0,
    }
}

fn not_carried(config: &Config, notes: &mut Notes) {
    // What an import of this file derives from its primary and backup needs no note.
    let implied = lvs_pair::derive(config, &lvs_pair::Lines::default(), &mut Default::default())
        .is_some_and(|floated| floated.is_in(config));
    let sections: [(&str, bool); 9] = [
        ("vrrp", !implied && !config.vrrp.is_empty()),
        ("sync_groups", !implied && !config.sync_groups.is_empty()),
        ("pair", !implied && config.pair.is_some()),
        ("bonds", !config.bonds.is_empty()),
        ("notify", config.notify.is_some()),
        (
            "fwmark_rules",
            config
                .fwmark_rules
                .iter()
                .any(|rule| !is_implied_rule(config, rule)),
        ),
        ("real_server", config.real_server.is_some()),
        ("clusterip", !config.clusterip.is_empty()),
        (
            "management",
            config.management != crate::model::Management::default(),
        ),
    ];
    for (name, present) in sections {
        if present {
            let message = if name == "pair" {
                "the halves are not part of lvs.cf (it has only the primary's and the backup's addresses, from peer_link)"
            } else {
                "not part of lvs.cf"
            };
            notes.add(name, message);
        }
    }
    if !config.system.hostname.is_empty() {
        notes.add("system.hostname", "not part of lvs.cf");
    }
}

/// Whether `rule` is one that import derives from a fwmark virtual server (its address and
/// port, and for FTP the guide's passive range), and so is carried by that virtual server.
fn is_implied_rule(config: &Config, rule: &crate::model::FwmarkRule) -> bool {
    config
        .virtual_services
        .iter()
        .any(|s| crate::import::lvs_ftp::implied_fwmark_rules(s).contains(rule))
}

fn virtual_block(
    service: &VirtualService,
    index: usize,
    network: Forwarding,
    out: &mut String,
    notes: &mut Notes,
) {
    let path = format!("virtual_server \"{}\"", service.label());
    let name = if service.name.is_empty() {
        format!("vs{}", index + 1)
    } else {
        service.name.to_string()
    };
    if service.forwarding != network {
        notes.add(
            &path,
            format!(
                "lvs.cf has one forwarding method for all services ({}); this service's is lost",
                network_name(network)
            ),
        );
    }
    let _ = writeln!(out, "virtual {name} {{");
    let _ = writeln!(out, "     active = {}", u8::from(service.active));
    match (service.address, &service.interface) {
        (Some(address), Some(interface)) => {
            let _ = writeln!(out, "     address = {address} {interface}");
        }
        (Some(address), None) => {
            let _ = writeln!(out, "     address = {address}");
        }
        (None, _) => notes.add(
            &path,
            "lvs.cf needs an address for every virtual server; none written",
        ),
    }
    if let Some(prefix) = service.address_prefix {
        if service.address.is_some_and(|a| a.is_ipv4()) {
            let _ = writeln!(out, "     vip_nmask = {}", prefix_to_netmask(prefix));
        }
    }
    if let Some(mark) = service.fwmark {
        let _ = writeln!(out, "     fwmark = {mark}");
    }
    let _ = writeln!(out, "     port = {}", service.port);
    if let Some(persistence) = &service.persistence {
        let _ = writeln!(out, "     persistent = {}", persistence.timeout_s);
        if let Some(prefix) = persistence.netmask_prefix {
            if service.address.map(|a| Family::of(&a)).unwrap_or_default() == Family::Ipv4 {
                let _ = writeln!(out, "     pmask = {}", prefix_to_netmask(prefix));
            } else {
                notes.add(&path, "lvs.cf has no IPv6 persistence netmask");
            }
        }
    }
    if !service.more_checks.is_empty() {
        notes.add(
            &path,
            "nanny runs one check per service: the further checks (more_checks) are not part of lvs.cf",
        );
    }
    let check = service
        .check
        .as_ref()
        .or_else(|| service.real_servers.iter().find_map(|r| r.check.as_ref()));
    match check.map(|c| &c.kind) {
        Some(CheckKind::SendExpect { send, expect }) => {
            if !send.is_empty() {
                let _ = writeln!(out, "     send = {}", quote(send));
            }
            if !expect.is_empty() {
                let _ = writeln!(out, "     expect = {}", quote(expect));
            }
        }
        Some(CheckKind::Tcp) => {}
        Some(CheckKind::Http {
            path: url,
            virtual_host,
            ..
        }) => {
            let request = match virtual_host {
                Some(host) => {
                    format!("GET {url} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
                }
                None => format!("GET {url} HTTP/1.0\r\n\r\n"),
            };
            let _ = writeln!(out, "     send = {}", quote(&request));
            let _ = writeln!(out, "     expect = \"HTTP/1.\"");
            notes.add(&path, "HTTP check written as send/expect; status code, body match and TLS are not checked by nanny");
        }
        Some(CheckKind::Smtp { .. }) => {
            let _ = writeln!(out, "     expect = \"220\"");
            notes.add(
                &path,
                "SMTP check written as expect \"220\" (the greeting); HELO is not sent by nanny",
            );
        }
        Some(CheckKind::Ping | CheckKind::Udp { .. } | CheckKind::Dns { .. }) => notes.add(
            &path,
            "nanny has no ping, UDP or DNS check; written without send/expect (nanny connects over TCP)",
        ),
        None => notes.add(&path, "has no check; nanny always checks (a TCP connect)"),
    }
    let _ = writeln!(out, "     use_regex = 0");
    let _ = writeln!(out, "     load_monitor = none");
    let _ = writeln!(out, "     scheduler = {}", service.scheduler.kernel_name());
    let _ = writeln!(out, "     protocol = {}", service.protocol.as_str());
    if let Some(check) = check {
        let _ = writeln!(
            out,
            "     timeout = {}",
            check.timing.timeout_ms.div_ceil(1000)
        );
        if check.timing.timeout_ms % 1000 != 0 {
            notes.add(
                &path,
                "lvs.cf counts the timeout in whole seconds; rounded up",
            );
        }
    }
    let _ = writeln!(out, "     reentry = {}", service.reentry_s);
    let _ = writeln!(
        out,
        "     quiesce_server = {}",
        u8::from(service.on_failure == OnFailure::Quiesce)
    );
    if service.quorum != 1 || service.hysteresis != 0 {
        notes.add(&path, "quorum and hysteresis are not part of lvs.cf");
    }
    if service.sorry_server.is_some() {
        notes.add(&path, "the sorry server is not part of lvs.cf");
    }
    if service.scheduler_flags != crate::model::SchedulerFlags::default()
        && service.scheduler != Scheduler::Wlc
    {
        notes.add(&path, "scheduler flags are not part of lvs.cf");
    }
    if service.start_down {
        notes.add(&path, "start_down (alpha) is not part of lvs.cf");
    }
    for (number, server) in service.real_servers.iter().enumerate() {
        let server_path = format!("{path} real_server {}", server.address);
        let name = if server.name.is_empty() {
            format!("rs{}", number + 1)
        } else {
            server.name.to_string()
        };
        let _ = writeln!(out, "     server {name} {{");
        let _ = writeln!(out, "         address = {}", server.address);
        let _ = writeln!(out, "         active = {}", u8::from(server.active));
        if let Some(port) = server.port {
            let _ = writeln!(out, "         port = {port}");
        }
        let _ = writeln!(out, "         weight = {}", server.weight);
        let _ = writeln!(out, "     }}");
        if server.forwarding.is_some_and(|f| f != network) {
            notes.add(&server_path, "per-server forwarding is not part of lvs.cf");
        }
        if server.check.is_some() && service.check.is_some() {
            notes.add(&server_path, "per-server checks are not part of lvs.cf");
        }
        if !server.more_checks.is_empty() {
            notes.add(
                &server_path,
                "nanny runs one check per service: the further checks (more_checks) are not part of lvs.cf",
            );
        }
        if server.upper_threshold != 0 || server.lower_threshold != 0 || server.on_failure.is_some()
        {
            notes.add(
                &server_path,
                "thresholds and per-server failure policy are not part of lvs.cf",
            );
        }
    }
    let _ = writeln!(out, "}}");
}
