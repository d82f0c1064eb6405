//! Piranha lvs.cf import (Red Hat LVS: `pulse`, `lvs`, `nanny`).
//!
//! lvs.cf is `key = value` lines with `virtual NAME { ... server NAME { ... } }` blocks. Global
//! settings describe the router pair (primary/backup addresses, heartbeat) and the NAT router;
//! each virtual server carries one nanny check (send/expect) for all its real servers. With an
//! active backup the result is a pair config whose VRRP instances float what pulse floated
//! ([`super::lvs_pair`]).

use std::format;
use std::string::String;
use std::vec::Vec;

use core::net::{IpAddr, Ipv4Addr};

use super::lvs_ftp;
use super::lvs_pair::{self, Lines};
use super::{add_referenced_interfaces, bounded, ImportError, Imported, Notes, MAX_INPUT_BYTES};
use crate::model::{
    Check, CheckKind, CheckTiming, Config, Forwarding, IfName, Interface, NatGateway, OnFailure,
    PeerLink, PeerNode, Persistence, PortRole, Protocol, RealServer, Scheduler, VirtualService,
};
use crate::net::netmask_to_prefix;

const NO_SHELL: &str = "scripts cannot run on the appliance (it has no shell)";

/// One `key = value` line.
#[derive(Debug, Clone)]
struct Entry {
    line: usize,
    key: String,
    value: String,
}

/// A parsed lvs.cf: global entries and virtual blocks with their server blocks.
#[derive(Debug, Default)]
struct File {
    globals: Vec<Entry>,
    virtuals: Vec<Block>,
}

#[derive(Debug, Default)]
struct Block {
    line: usize,
    name: String,
    entries: Vec<Entry>,
    servers: Vec<Block>,
}

/// Decodes a quoted value: `"GET / HTTP/1.0\r\n\r\n"` with \n, \r, \t and \x (x itself).
pub(crate) fn unquote(value: &str) -> String {
    let inner = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value);
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn parse(text: &str) -> Result<File, ImportError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(ImportError::TooLarge {
            len: text.len(),
            max: MAX_INPUT_BYTES,
        });
    }
    let mut file = File::default();
    // 0: top level, 1: inside virtual, 2: inside server.
    let mut depth = 0;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if trimmed == "}" {
            if depth == 0 {
                return Err(ImportError::Syntax {
                    line,
                    message: String::from("'}' without a matching block; remove it"),
                });
            }
            depth -= 1;
            continue;
        }
        if let Some(header) = trimmed.strip_suffix('{') {
            let mut words = header.split_whitespace();
            let kind = words.next().unwrap_or("");
            let name = words.collect::<Vec<_>>().join(" ");
            let block = Block {
                line,
                name,
                ..Block::default()
            };
            match (depth, kind) {
                (0, "virtual") => file.virtuals.push(block),
                (1, "server") => {
                    if let Some(current) = file.virtuals.last_mut() {
                        current.servers.push(block);
                    }
                }
                _ => {
                    return Err(ImportError::Syntax { line, message: format!("unexpected block \"{kind}\" here; lvs.cf has virtual {{ server {{ }} }} blocks only") });
                }
            }
            depth += 1;
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(ImportError::Syntax {
                line,
                message: format!("\"{trimmed}\" is not a key = value line"),
            });
        };
        let entry = Entry {
            line,
            key: key.trim().into(),
            value: value.trim().into(),
        };
        match depth {
            0 => file.globals.push(entry),
            1 => {
                if let Some(current) = file.virtuals.last_mut() {
                    current.entries.push(entry);
                }
            }
            _ => {
                if let Some(server) = file.virtuals.last_mut().and_then(|v| v.servers.last_mut()) {
                    server.entries.push(entry);
                }
            }
        }
    }
    if depth != 0 {
        let line = text.lines().count();
        return Err(ImportError::Syntax {
            line,
            message: String::from("a block is not closed; add the missing '}'"),
        });
    }
    Ok(file)
}

fn num<T: core::str::FromStr>(entry: &Entry, notes: &mut Notes) -> Option<T> {
    match entry.value.parse() {
        Ok(value) => Some(value),
        Err(_) => {
            notes.invalid(
                entry.line,
                &entry.key,
                format!("\"{}\" is not a valid number here", entry.value),
            );
            None
        }
    }
}

fn ip(text: &str, entry: &Entry, notes: &mut Notes) -> Option<IpAddr> {
    match text.parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            notes.invalid(
                entry.line,
                &entry.key,
                format!("\"{text}\" is not an IP address (the appliance does no DNS lookups)"),
            );
            None
        }
    }
}

fn netmask(entry: &Entry, notes: &mut Notes) -> Option<u8> {
    let prefix = entry
        .value
        .parse::<Ipv4Addr>()
        .ok()
        .and_then(netmask_to_prefix);
    if prefix.is_none() {
        notes.invalid(
            entry.line,
            &entry.key,
            format!("\"{}\" is not a contiguous IPv4 netmask", entry.value),
        );
    }
    prefix
}

fn flag(entry: &Entry, notes: &mut Notes) -> bool {
    num::<u8>(entry, notes).unwrap_or(0) != 0
}

/// Splits `address = 10.0.0.1 eth0:1` into the address and the device.
fn address_and_device(entry: &Entry, notes: &mut Notes) -> (Option<IpAddr>, Option<IfName>) {
    let mut words = entry.value.split_whitespace();
    let addr = words.next().and_then(|a| ip(a, entry, notes));
    let device = words
        .next()
        .and_then(|d| bounded(d, entry.line, &entry.key, notes));
    (addr, device)
}

/// Imports lvs.cf text.
pub fn import(text: &str) -> Result<Imported, ImportError> {
    let file = parse(text)?;
    let mut notes = Notes::default();
    let mut config = Config::default();
    let mut peer = PeerLink::default();
    let mut primary = PeerNode::default();
    let mut backup = PeerNode::default();
    let mut backup_active = false;
    let mut any_pair = false;
    let mut network = Forwarding::Nat;
    let mut nat: Option<NatGateway> = None;
    let mut nat_prefix: Option<u8> = None;
    let mut referenced: Vec<IfName> = Vec::new();
    // (line, seconds) of `keepalive` and `deadtime`.
    let mut keepalive: Option<(usize, u32)> = None;
    let mut deadtime: Option<(usize, u32)> = None;
    let mut lines = Lines::default();

    for entry in &file.globals {
        let line = entry.line;
        match entry.key.as_str() {
            "serial_no" => notes.adjusted(
                line,
                "serial_no",
                "replaced by the config generation, which every commit increments",
            ),
            "service" => {
                if entry.value == "lvs" {
                    notes.adjusted(line, "service", "Tandem always runs the LVS router");
                } else {
                    notes.not_carried(line, "service", format!("\"{}\" (failover services without LVS) is not supported; use VRRP instances", entry.value));
                }
            }
            "primary" => {
                any_pair = true;
                lines.primary = line;
                primary.public = ip(&entry.value, entry, &mut notes);
            }
            "primary_private" => {
                any_pair = true;
                lines.primary_private = line;
                primary.private = ip(&entry.value, entry, &mut notes);
            }
            "backup" => {
                any_pair = true;
                lines.backup = line;
                backup.public = ip(&entry.value, entry, &mut notes);
            }
            "backup_private" => {
                any_pair = true;
                backup.private = ip(&entry.value, entry, &mut notes);
            }
            "backup_active" => backup_active = flag(entry, &mut notes),
            "heartbeat" => {
                if flag(entry, &mut notes) {
                    notes.adjusted(
                        line,
                        "heartbeat",
                        "the pair heartbeat runs on the peer link (peer_link.interface, the cable between the two boxes), always",
                    );
                } else {
                    notes.not_carried(
                        line,
                        "heartbeat",
                        "Tandem always runs the heartbeat; it cannot be turned off",
                    );
                }
            }
            "heartbeat_port" => {
                any_pair = true;
                if let Some(port) = num::<u16>(entry, &mut notes) {
                    peer.heartbeat_port = port;
                    notes.adjusted(
                        line,
                        "heartbeat_port",
                        format!("peer_link.heartbeat_port = {port}: the pair heartbeat's UDP port, sent on the peer link to ff02::1 (IPv6 link-local, hop limit 255), not to the partner's lvs.cf address as pulse sent it"),
                    );
                }
            }
            "keepalive" => {
                any_pair = true;
                keepalive = Some((line, num::<u32>(entry, &mut notes).unwrap_or(6)));
            }
            "deadtime" => {
                any_pair = true;
                deadtime = Some((line, num::<u32>(entry, &mut notes).unwrap_or(18)));
            }
            "network" => {
                network = match entry.value.as_str() {
                    "nat" => Forwarding::Nat,
                    "direct" => Forwarding::Dr,
                    "tunnel" => Forwarding::Tun,
                    other => {
                        notes.invalid(
                            line,
                            "network",
                            format!("\"{other}\" is not nat, direct or tunnel"),
                        );
                        Forwarding::Nat
                    }
                }
            }
            "nat_router" => {
                lines.nat_router = line;
                let (addr, device) = address_and_device(entry, &mut notes);
                if let (Some(address), Some(interface)) = (addr, device) {
                    referenced.push(interface.clone());
                    nat = Some(NatGateway {
                        address,
                        prefix: 24,
                        interface,
                    });
                } else {
                    notes.invalid(
                        line,
                        "nat_router",
                        "expected \"nat_router = ADDRESS DEVICE\"",
                    );
                }
            }
            "nat_nmask" => nat_prefix = netmask(entry, &mut notes),
            "debug_level" => {
                if entry.value == "NONE" {
                    notes.adjusted(
                        line,
                        "debug_level",
                        "Tandem reports on the console and the metrics endpoint",
                    );
                } else {
                    notes.not_carried(
                        line,
                        "debug_level",
                        "debug logging levels are not configurable",
                    );
                }
            }
            "monitor_links" => notes.adjusted(
                line,
                "monitor_links",
                "Tandem always monitors the links of its ports",
            ),
            // Sync needs the peer link's settings even in a file without primary/backup.
            "syncdaemon" => {
                peer.ipvs_sync = flag(entry, &mut notes);
                any_pair |= peer.ipvs_sync;
            }
            "syncd_iface" => {
                any_pair = true;
                peer.ipvs_sync_interface = bounded(&entry.value, line, "syncd_iface", &mut notes);
                if let Some(name) = &peer.ipvs_sync_interface {
                    referenced.push(name.clone());
                }
            }
            "rsh_command" => notes.adjusted(
                line,
                "rsh_command",
                "Tandem replicates the config over the peer link; no rsh or ssh",
            ),
            other => notes.not_carried(
                line,
                other,
                "global lvs.cf setting with no Tandem equivalent",
            ),
        }
    }
    if let Some(mut gateway) = nat {
        if let Some(prefix) = nat_prefix {
            gateway.prefix = prefix;
        }
        config.nat_gateway = Some(gateway);
    }
    heartbeat_times(&mut peer, keepalive, deadtime, &mut notes);
    lines.heartbeat = match (keepalive, deadtime) {
        (Some((line, _)), _) => Some((line, "keepalive")),
        (None, Some((line, _))) => Some((line, "deadtime")),
        (None, None) => None,
    };
    if any_pair {
        peer.primary = Some(primary);
        if backup_active {
            peer.backup = Some(backup);
        } else if backup.public.is_some() || backup.private.is_some() {
            notes.not_carried(
                1,
                "backup",
                "backup_active = 0: the backup router's addresses are not carried over",
            );
        }
        let peer_port = peer.interface.clone();
        if config.interface(&peer_port).is_none() {
            let _ = config.interfaces.push(Interface {
                name: peer_port,
                role: Some(PortRole::Peer),
                ..Interface::default()
            });
        }
        config.peer_link = Some(peer.clone());
    }
    // Nanny checks every keepalive seconds. Without a keepalive the check interval is Piranha's
    // 6 s, not the peer link's millisecond heartbeat default.
    let check_interval_ms = match keepalive {
        Some((_, seconds)) if seconds > 0 => seconds.saturating_mul(1000),
        _ => PIRANHA_KEEPALIVE_S * 1000,
    };

    for block in &file.virtuals {
        if let Some(service) = virtual_block(
            block,
            network,
            check_interval_ms,
            config.nat_gateway.as_ref(),
            &mut referenced,
            &mut notes,
        ) {
            if config.virtual_services.push(service).is_err() {
                notes.invalid(block.line, "virtual", "too many virtual services");
            } else {
                lines.services.push(block.line);
            }
        }
    }
    // lvs.cf gives no marking rules: mark what the virtual server names (Piranha's documented
    // iptables rule for its address and port; for FTP also the guide's passive range) and ask
    // the operator to add further ports.
    for service in config.virtual_services.iter() {
        let rules = lvs_ftp::implied_fwmark_rules(service);
        if rules
            .first()
            .is_some_and(|rule| config.fwmark_rules.iter().any(|r| r.mark == rule.mark))
        {
            continue;
        }
        for rule in rules {
            let _ = config.fwmark_rules.push(rule);
        }
    }
    // With an active backup, float what pulse floated (last: it reads the services and the NAT
    // router).
    if let Some(floated) = lvs_pair::derive(&config, &lines, &mut notes) {
        referenced.extend(floated.interfaces());
        floated.apply(&mut config, &mut notes);
    }
    add_referenced_interfaces(&mut config, &referenced);
    Ok(Imported {
        config,
        notes: notes.0,
    })
}

/// Piranha's heartbeat times when lvs.cf leaves one of them out (also used for a malformed one).
const PIRANHA_KEEPALIVE_S: u32 = 6;
const PIRANHA_DEADTIME_S: u32 = 18;

/// Carries `keepalive` / `deadtime` (whole seconds) over unchanged: the import must not change
/// how fast the pair fails over. A file that gives only one of them gets Piranha's value for the
/// other, which is what pulse ran with. Each given field gets its own note at its own line
/// (`keepalive` -> `peer_link.heartbeat_interval_ms`, `deadtime` -> `peer_link.dead_after_ms`;
/// with an active backup `keepalive` is also the VRRP advert interval, noted by
/// [`lvs_pair`]); because Tandem's heartbeat on the dedicated peer cable defaults to
/// 10 ms / 30 ms, each says how slow the imported times are and how to switch. Without either
/// keyword the peer link keeps Tandem's defaults.
fn heartbeat_times(
    peer: &mut PeerLink,
    keepalive: Option<(usize, u32)>,
    deadtime: Option<(usize, u32)>,
    notes: &mut Notes,
) {
    if keepalive.is_none() && deadtime.is_none() {
        return;
    }
    let keepalive_s = keepalive.map_or(PIRANHA_KEEPALIVE_S, |(_, s)| s);
    let deadtime_s = deadtime.map_or(PIRANHA_DEADTIME_S, |(_, s)| s);
    peer.heartbeat_interval_ms = keepalive_s.saturating_mul(1000);
    peer.dead_after_ms = deadtime_s.saturating_mul(1000);
    let fast = PeerLink::default();
    let switch = format!(
        "on a dedicated peer cable use the fast default (set peer_link.heartbeat_interval_ms {}, set peer_link.dead_after_ms {})",
        fast.heartbeat_interval_ms, fast.dead_after_ms,
    );
    if let Some((line, _)) = keepalive {
        let other = if deadtime.is_none() {
            format!(
                " (lvs.cf gives no deadtime: Piranha's {deadtime_s} s, peer_link.dead_after_ms {})",
                peer.dead_after_ms
            )
        } else {
            String::new()
        };
        notes.adjusted(
            line,
            "keepalive",
            format!(
                "peer_link.heartbeat_interval_ms: imported Piranha keepalive {keepalive_s} s (kept as {} ms): a heartbeat every {keepalive_s} s on the peer link{other}; {switch}",
                peer.heartbeat_interval_ms,
            ),
        );
    }
    if let Some((line, _)) = deadtime {
        let other = if keepalive.is_none() {
            format!(" (lvs.cf gives no keepalive: Piranha's {keepalive_s} s, peer_link.heartbeat_interval_ms {})", peer.heartbeat_interval_ms)
        } else {
            String::new()
        };
        notes.adjusted(
            line,
            "deadtime",
            format!(
                "peer_link.dead_after_ms: imported Piranha deadtime {deadtime_s} s (kept as {} ms): a partner's death is noticed after {deadtime_s} s{other}; {switch}",
                peer.dead_after_ms,
            ),
        );
    }
}

fn virtual_block(
    block: &Block,
    network: Forwarding,
    check_interval_ms: u32,
    nat_gateway: Option<&NatGateway>,
    referenced: &mut Vec<IfName>,
    notes: &mut Notes,
) -> Option<VirtualService> {
    let mut service = VirtualService {
        forwarding: network,
        scheduler: Scheduler::Wlc,
        ..VirtualService::default()
    };
    service.name = bounded(&block.name, block.line, "virtual", notes)?;
    let mut send: Option<String> = None;
    let mut expect: Option<String> = None;
    let mut timing = CheckTiming {
        interval_ms: check_interval_ms,
        timeout_ms: 6000,
        retries: 0,
        retry_delay_ms: 0,
    };
    let mut persistence_prefix = None;
    for entry in &block.entries {
        let line = entry.line;
        match entry.key.as_str() {
            "active" => service.active = flag(entry, notes),
            "address" => {
                let (addr, device) = address_and_device(entry, notes);
                service.address = addr;
                if let Some(device) = &device {
                    referenced.push(device.clone());
                }
                service.interface = device;
            }
            "vip_nmask" => service.address_prefix = netmask(entry, notes),
            "port" => service.port = num(entry, notes).unwrap_or(0),
            "fwmark" => service.fwmark = num(entry, notes),
            "persistent" => {
                let timeout_s = num(entry, notes).unwrap_or(0);
                service.persistence = Some(Persistence {
                    timeout_s,
                    netmask_prefix: None,
                });
            }
            "pmask" => persistence_prefix = netmask(entry, notes),
            "send" => send = Some(unquote(&entry.value)),
            "expect" => expect = Some(unquote(&entry.value)),
            "use_regex" => {
                if flag(entry, notes) {
                    notes.not_carried(line, "use_regex", "regular expressions are not supported; expect is matched as the start of the reply");
                }
            }
            "send_program" => notes.not_carried(
                line,
                "send_program",
                format!(
                    "{NO_SHELL}; use send/expect, or an HTTP or SMTP check in the Tandem config"
                ),
            ),
            "load_monitor" => {
                if entry.value != "none" {
                    notes.not_carried(
                        line,
                        "load_monitor",
                        "rup/ruptime load monitoring is not supported; use a weighted scheduler",
                    );
                }
            }
            "scheduler" => {
                service.scheduler = Scheduler::from_kernel_name(&entry.value).unwrap_or_else(|| {
                    notes.invalid(
                        line,
                        "scheduler",
                        format!("\"{}\" is not a kernel IPVS scheduler", entry.value),
                    );
                    Scheduler::Wlc
                })
            }
            "protocol" => {
                service.protocol = match entry.value.as_str() {
                    "tcp" => Protocol::Tcp,
                    "udp" => Protocol::Udp,
                    other => {
                        notes.invalid(line, "protocol", format!("\"{other}\" is not tcp or udp"));
                        Protocol::Tcp
                    }
                }
            }
            "timeout" => {
                timing.timeout_ms =
                    num::<u32>(entry, notes).map_or(6000, |s| s.saturating_mul(1000))
            }
            "reentry" => service.reentry_s = num(entry, notes).unwrap_or(0),
            "quiesce_server" => {
                service.on_failure = if flag(entry, notes) {
                    OnFailure::Quiesce
                } else {
                    OnFailure::Remove
                }
            }
            other => notes.not_carried(
                line,
                other,
                "virtual server setting with no Tandem equivalent",
            ),
        }
    }
    let line_of = |key: &str| {
        block
            .entries
            .iter()
            .find(|e| e.key == key)
            .map_or(block.line, |e| e.line)
    };
    let ftp_lines = lvs_ftp::Lines {
        block: block.line,
        port: line_of("port"),
        fwmark: line_of("fwmark"),
    };
    lvs_ftp::persistence(&mut service, ftp_lines, notes);
    if let Some(persistence) = &mut service.persistence {
        persistence.netmask_prefix = persistence_prefix;
    } else if persistence_prefix.is_some() {
        notes.not_carried(block.line, "pmask", "has no effect without persistent");
    }
    let send = send.filter(|s| !s.is_empty());
    let expect = expect.filter(|s| !s.is_empty());
    let kind = match (send, expect) {
        (None, None) => CheckKind::Tcp,
        (send, expect) => CheckKind::SendExpect {
            send: bounded(&send.unwrap_or_default(), block.line, "send", notes).unwrap_or_default(),
            expect: bounded(&expect.unwrap_or_default(), block.line, "expect", notes)
                .unwrap_or_default(),
        },
    };
    service.check = Some(Box::new(Check {
        kind,
        timing,
        ..Check::default()
    }));
    for server in &block.servers {
        let mut real = RealServer {
            name: bounded(&server.name, server.line, "server", notes).unwrap_or_default(),
            ..RealServer::default()
        };
        let mut has_address = false;
        for entry in &server.entries {
            match entry.key.as_str() {
                "address" => {
                    if let Some(address) = ip(&entry.value, entry, notes) {
                        real.address = address;
                        has_address = true;
                    }
                }
                "active" => real.active = flag(entry, notes),
                "weight" => real.weight = num(entry, notes).unwrap_or(1),
                "port" => real.port = num(entry, notes),
                other => notes.not_carried(
                    entry.line,
                    other,
                    "real server setting with no Tandem equivalent",
                ),
            }
        }
        if !has_address {
            notes.invalid(server.line, "server", "has no address; skipped");
            continue;
        }
        if service.real_servers.push(real).is_err() {
            notes.invalid(
                server.line,
                "server",
                "too many real servers in this service (maximum 1024)",
            );
        }
    }
    keep_ports_of_marked_packets(&mut service);
    lvs_ftp::finish(&mut service, ftp_lines, nat_gateway, notes);
    Some(service)
}

/// lvsd adds a fwmark service's real servers with ipvsadm, which gives a destination without a
/// port the service's port, 0 for a fwmark service: each connection keeps its destination port
/// (IPVS `dest->port ? dest->port : vport`), NAT included, which is how one mark balances several
/// ports (the guide's HTTP + HTTPS on mark 80). Nanny checks the virtual server's `port`, so the
/// check connects there.
fn keep_ports_of_marked_packets(service: &mut VirtualService) {
    if service.fwmark.is_none() {
        return;
    }
    for server in service.real_servers.as_mut_slice() {
        server.port.get_or_insert(0);
    }
    if service.port != 0 {
        if let Some(check) = service.check.as_mut() {
            check.connect_port.get_or_insert(service.port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unquote_decodes_escapes() {
        assert_eq!(
            unquote("\"GET / HTTP/1.0\\r\\n\\r\\n\""),
            "GET / HTTP/1.0\r\n\r\n"
        );
        assert_eq!(unquote("\"a\\\"b\""), "a\"b");
    }

    #[test]
    fn refuses_unbalanced_blocks() {
        assert!(matches!(
            import("virtual x {\n port = 80\n"),
            Err(ImportError::Syntax { .. })
        ));
        assert!(matches!(
            import("}\n"),
            Err(ImportError::Syntax { line: 1, .. })
        ));
        assert!(matches!(
            import("nonsense\n"),
            Err(ImportError::Syntax { line: 1, .. })
        ));
    }
}
