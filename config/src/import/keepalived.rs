//! keepalived.conf import: `global_defs`, `vrrp_sync_group`, `vrrp_instance`, `virtual_server`.
//!
//! The file is read into a tree of statements (`words... { children }`), then each known keyword
//! is mapped onto the model. Scripts (`notify*`, `track_script`, `MISC_CHECK`) cannot run on an
//! appliance with no shell; they are reported with the built-in feature to use instead.

use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use core::net::IpAddr;

use super::{
    add_referenced_interfaces, bounded, ImportError, Imported, Notes, MAX_DEPTH, MAX_INPUT_BYTES,
};
use crate::model::{
    Check, CheckKind, CheckTiming, Config, Forwarding, HttpBody, IfName, InitialState, Notify,
    OnFailure, Persistence, Protocol, RealServer, Scheduler, SorryServer, SyncGroup, TrackedLink,
    Vip, VirtualService, VrrpAuth, VrrpInstance, VrrpVersion,
};
use crate::net::{netmask_to_prefix, IpCidr};

/// One statement: its words and, for a block, its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub line: usize,
    pub words: Vec<String>,
    pub children: Option<Vec<Node>>,
}

impl Node {
    fn keyword(&self) -> &str {
        self.words.first().map_or("", String::as_str)
    }
    fn arg(&self, index: usize) -> Option<&str> {
        self.words.get(index).map(String::as_str)
    }
    fn children(&self) -> &[Node] {
        self.children.as_deref().unwrap_or(&[])
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Open,
    Close,
    Newline,
}

fn tokenize(text: &str) -> Vec<(Token, usize)> {
    let mut tokens = Vec::new();
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            '\n' => {
                chars.next();
                tokens.push((Token::Newline, line));
                line += 1;
            }
            c if c.is_whitespace() => {
                chars.next();
            }
            '#' | '!' => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                }
            }
            '{' => {
                chars.next();
                tokens.push((Token::Open, line));
            }
            '}' => {
                chars.next();
                tokens.push((Token::Close, line));
            }
            '"' => {
                chars.next();
                let mut word = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(next) = chars.next() {
                                word.push(next);
                            }
                        }
                        '\n' => {
                            line += 1;
                            word.push(c);
                        }
                        c => word.push(c),
                    }
                }
                tokens.push((Token::Word(word), line));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '{' || c == '}' {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push((Token::Word(word), line));
            }
        }
    }
    tokens
}

/// Reads keepalived.conf syntax into a statement tree.
pub(crate) fn parse_tree(text: &str) -> Result<Vec<Node>, ImportError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(ImportError::TooLarge {
            len: text.len(),
            max: MAX_INPUT_BYTES,
        });
    }
    let tokens = tokenize(text);
    let mut position = 0;
    let nodes = parse_block(&tokens, &mut position, 0)?;
    Ok(nodes)
}

fn parse_block(
    tokens: &[(Token, usize)],
    position: &mut usize,
    depth: usize,
) -> Result<Vec<Node>, ImportError> {
    let mut nodes = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut start_line = 0;
    while let Some((token, line)) = tokens.get(*position) {
        *position += 1;
        match token {
            Token::Word(word) => {
                if words.is_empty() {
                    start_line = *line;
                }
                words.push(word.clone());
            }
            Token::Newline => {
                if !words.is_empty() {
                    nodes.push(Node {
                        line: start_line,
                        words: core::mem::take(&mut words),
                        children: None,
                    });
                }
            }
            Token::Open => {
                if depth + 1 > MAX_DEPTH {
                    return Err(ImportError::Syntax {
                        line: *line,
                        message: format!("blocks nested deeper than {MAX_DEPTH} levels"),
                    });
                }
                if words.is_empty() {
                    return Err(ImportError::Syntax {
                        line: *line,
                        message: String::from("'{' without a keyword before it"),
                    });
                }
                let children = parse_block(tokens, position, depth + 1)?;
                nodes.push(Node {
                    line: start_line,
                    words: core::mem::take(&mut words),
                    children: Some(children),
                });
            }
            Token::Close => {
                if !words.is_empty() {
                    nodes.push(Node {
                        line: start_line,
                        words: core::mem::take(&mut words),
                        children: None,
                    });
                }
                if depth == 0 {
                    return Err(ImportError::Syntax {
                        line: *line,
                        message: String::from("'}' without a matching '{'; remove it"),
                    });
                }
                return Ok(nodes);
            }
        }
    }
    if !words.is_empty() {
        nodes.push(Node {
            line: start_line,
            words,
            children: None,
        });
    }
    if depth > 0 {
        let line = tokens.last().map_or(1, |(_, line)| *line);
        return Err(ImportError::Syntax {
            line,
            message: String::from("a block is not closed; add the missing '}'"),
        });
    }
    Ok(nodes)
}

const NO_SHELL: &str = "scripts cannot run on the appliance (it has no shell)";

fn num<T: core::str::FromStr>(node: &Node, index: usize, notes: &mut Notes) -> Option<T> {
    let Some(text) = node.arg(index) else {
        notes.invalid(node.line, node.keyword(), "value missing");
        return None;
    };
    match text.parse() {
        Ok(value) => Some(value),
        Err(_) => {
            notes.invalid(
                node.line,
                node.keyword(),
                format!("\"{text}\" is not a valid number here"),
            );
            None
        }
    }
}

fn ip(node: &Node, index: usize, notes: &mut Notes) -> Option<IpAddr> {
    let Some(text) = node.arg(index) else {
        notes.invalid(node.line, node.keyword(), "address missing");
        return None;
    };
    match text.parse() {
        Ok(value) => Some(value),
        Err(_) => {
            notes.invalid(
                node.line,
                node.keyword(),
                format!("\"{text}\" is not an IP address (the appliance does no DNS lookups)"),
            );
            None
        }
    }
}

/// Seconds (possibly fractional) to milliseconds.
fn seconds_ms(node: &Node, index: usize, notes: &mut Notes) -> Option<u32> {
    let text = node.arg(index)?;
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let whole: u32 = whole.parse().ok()?;
    let mut frac_ms = 0u32;
    for (position, digit) in fraction.chars().take(3).enumerate() {
        let digit = digit.to_digit(10)?;
        frac_ms += digit * [100, 10, 1][position];
    }
    let value = whole
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(frac_ms));
    if value.is_none() {
        notes.invalid(
            node.line,
            node.keyword(),
            format!("\"{text}\" seconds is out of range"),
        );
    }
    value
}

fn seconds_ms_noted(node: &Node, index: usize, notes: &mut Notes) -> Option<u32> {
    let value = seconds_ms(node, index, notes);
    if value.is_none() && node.arg(index).is_some_and(|t| t.parse::<f64>().is_err()) {
        notes.invalid(node.line, node.keyword(), "not a number of seconds");
    }
    value
}

fn flag_arg(node: &Node) -> bool {
    !matches!(node.arg(1), Some("false" | "off" | "no" | "0"))
}

/// Imports keepalived.conf text.
pub fn import(text: &str) -> Result<Imported, ImportError> {
    let tree = parse_tree(text)?;
    let mut notes = Notes::default();
    let mut config = Config::default();
    let mut default_version = VrrpVersion::V2;
    let mut strict = false;
    // Global VRRP version must be known before instances.
    for node in &tree {
        if node.keyword() == "global_defs" {
            for child in node.children() {
                if child.keyword() == "vrrp_strict" {
                    strict = true;
                }
                if child.keyword() == "vrrp_version" {
                    default_version = if child.arg(1) == Some("3") {
                        VrrpVersion::V3
                    } else {
                        VrrpVersion::V2
                    };
                }
            }
        }
    }
    let mut referenced: Vec<IfName> = Vec::new();
    for node in &tree {
        match node.keyword() {
            "global_defs" => global_defs(node, &mut config, &mut notes),
            "vrrp_sync_group" => sync_group(node, &mut config, &mut notes),
            "vrrp_instance" => {
                if let Some(mut instance) = vrrp_instance(node, default_version, &mut notes) {
                    accept_mode(node, &mut instance, strict, &mut notes);
                    referenced.push(instance.interface.clone());
                    referenced.extend(instance.vips.iter().filter_map(|v| v.interface.clone()));
                    referenced.extend(instance.track_interfaces.iter().map(|t| t.name.clone()));
                    if config.vrrp.push(instance).is_err() {
                        notes.invalid(node.line, "vrrp_instance", "too many VRRP instances");
                    }
                }
            }
            "virtual_server" => {
                if let Some(service) = virtual_server(node, &mut notes) {
                    if config.virtual_services.push(service).is_err() {
                        notes.invalid(node.line, "virtual_server", "too many virtual services");
                    }
                }
            }
            "vrrp_script" => notes.not_carried(node.line, "vrrp_script", format!("{NO_SHELL}; track links with track_interface, or bonds")),
            "include" => notes.not_carried(node.line, "include", "included files are not read; import each file and merge, or concatenate them first"),
            other => notes.not_carried(node.line, other, "this keepalived block has no Tandem equivalent"),
        }
    }
    add_referenced_interfaces(&mut config, &referenced);
    Ok(Imported {
        config,
        notes: notes.0,
    })
}

fn global_defs(node: &Node, config: &mut Config, notes: &mut Notes) {
    let mut notify = Notify::default();
    let mut any_notify = false;
    for child in node.children() {
        match child.keyword() {
            "router_id" => {
                if let Some(name) = child
                    .arg(1)
                    .and_then(|n| bounded(n, child.line, "router_id", notes))
                {
                    config.system.hostname = name;
                }
            }
            "notification_email" => {
                any_notify = true;
                for address in child.children() {
                    for word in &address.words {
                        if let Some(value) =
                            bounded(word, address.line, "notification_email", notes)
                        {
                            if notify.email_to.push(value).is_err() {
                                notes.invalid(
                                    address.line,
                                    "notification_email",
                                    "too many recipients (maximum 8)",
                                );
                            }
                        }
                    }
                }
            }
            "notification_email_from" => {
                any_notify = true;
                notify.email_from = child
                    .arg(1)
                    .and_then(|v| bounded(v, child.line, "notification_email_from", notes));
            }
            "smtp_server" => {
                any_notify = true;
                notify.smtp_server = ip(child, 1, notes);
                if child.arg(2).is_some() {
                    notify.smtp_port = num(child, 2, notes).unwrap_or(25);
                }
            }
            "smtp_connect_timeout" => {
                any_notify = true;
                notify.smtp_connect_timeout_s = num(child, 1, notes).unwrap_or(30);
            }
            "vrrp_version" => {}
            "lvs_sync_daemon" | "lvs_sync_daemon_interface" => lvs_sync_daemon(child, config, notes),
            "vrrp_strict" => notes.not_carried(
                child.line,
                "vrrp_strict",
                "strict mode's checks and resets are not applied; its no_accept default is (instances without accept get accept_mode = false)",
            ),
            other => notes.not_carried(
                child.line,
                other,
                "global setting with no Tandem equivalent",
            ),
        }
    }
    if any_notify {
        config.notify = Some(notify);
    }
}

/// `lvs_sync_daemon <IFACE> <VRRP_INSTANCE> [id N] [maxlen N] [port N] [ttl N] [group IP]`
/// (and the older `lvs_sync_daemon_interface <IFACE>`): IPVS connection sync on `IFACE`, as
/// `peer_link.ipvs_sync` with `peer_link.ipvs_sync_interface` (the peer link is created when
/// the file has none). keepalived runs the master daemon on the instance's MASTER and the
/// backup on its BACKUP; Tandem runs both on both directors, so the instance is not needed.
fn lvs_sync_daemon(node: &Node, config: &mut Config, notes: &mut Notes) {
    let keyword = node.keyword();
    let Some(interface) = node.arg(1) else {
        notes.invalid(
            node.line,
            keyword,
            "the interface is missing: lvs_sync_daemon <interface> <vrrp_instance>",
        );
        return;
    };
    let Some(interface) =
        bounded::<{ crate::model::limits::IFNAME_BYTES }>(interface, node.line, keyword, notes)
    else {
        return;
    };
    let peer = config
        .peer_link
        .get_or_insert_with(crate::model::PeerLink::default);
    peer.ipvs_sync = true;
    peer.ipvs_sync_interface = Some(interface.clone());
    let peer_port = peer.interface.clone();
    if config.interface(&peer_port).is_none() {
        let _ = config.interfaces.push(crate::model::Interface {
            name: peer_port,
            role: Some(crate::model::PortRole::Peer),
            ..crate::model::Interface::default()
        });
    }
    add_referenced_interfaces(config, &[interface]);
    if keyword == "lvs_sync_daemon" {
        match node.arg(2) {
            Some(instance) => notes.adjusted(node.line, keyword, format!("Tandem runs the master and the backup sync daemon on both directors at once, so connections are synced whichever holds the VIP; instance \"{instance}\" is not needed")),
            None => notes.invalid(node.line, keyword, "the VRRP instance is missing: lvs_sync_daemon <interface> <vrrp_instance>"),
        }
    }
    let mut options = node.words.iter().skip(3);
    while let Some(option) = options.next() {
        let value = options.next();
        match (option.as_str(), value) {
            ("id", Some(id)) => notes.not_carried(node.line, "lvs_sync_daemon id", format!("sync id {id} is not kept: Tandem derives the sync id from the pair id (its low 8 bits)")),
            ("maxlen" | "port" | "ttl" | "group", Some(value)) => notes.not_carried(node.line, &format!("lvs_sync_daemon {option}"), format!("{value} is not kept: Tandem uses the kernel defaults (group 224.0.0.81, port 8848, TTL 1, message size from the MTU)")),
            (option, _) => notes.invalid(node.line, keyword, format!("\"{option}\" needs a value, or is not an lvs_sync_daemon option (id, maxlen, port, ttl, group)")),
        }
    }
}

fn sync_group(node: &Node, config: &mut Config, notes: &mut Notes) {
    let mut group = SyncGroup::default();
    if let Some(name) = node
        .arg(1)
        .and_then(|n| bounded(n, node.line, "vrrp_sync_group", notes))
    {
        group.name = name;
    }
    for child in node.children() {
        match child.keyword() {
            "group" => {
                for member in child.children() {
                    for word in &member.words {
                        if let Some(name) = bounded::<32>(word, member.line, "group", notes) {
                            if group.members.push(name).is_err() {
                                notes.invalid(member.line, "group", "too many members");
                            }
                        }
                    }
                }
            }
            other if other.starts_with("notify") => notes.not_carried(child.line, other, format!("{NO_SHELL}; state changes are sent by e-mail ([notify]) and on the metrics endpoint")),
            "smtp_alert" => notes.adjusted(child.line, "smtp_alert", "Tandem mails every state change when [notify] is set"),
            other => notes.not_carried(child.line, other, "sync group setting with no Tandem equivalent"),
        }
    }
    if config.sync_groups.push(group).is_err() {
        notes.invalid(node.line, "vrrp_sync_group", "too many sync groups");
    }
}

fn vrrp_instance(
    node: &Node,
    default_version: VrrpVersion,
    notes: &mut Notes,
) -> Option<VrrpInstance> {
    let mut instance = VrrpInstance {
        version: default_version,
        ..VrrpInstance::default()
    };
    instance.name = node
        .arg(1)
        .and_then(|n| bounded(n, node.line, "vrrp_instance", notes))?;
    for child in node.children() {
        let line = child.line;
        match child.keyword() {
            "state" => {
                instance.initial_state = match child.arg(1) {
                    Some("MASTER") => InitialState::Master,
                    Some("BACKUP") => InitialState::Backup,
                    other => {
                        notes.invalid(line, "state", format!("{other:?} is neither MASTER nor BACKUP"));
                        InitialState::Backup
                    }
                }
            }
            "interface" => {
                if let Some(name) = child.arg(1).and_then(|n| bounded(n, line, "interface", notes)) {
                    instance.interface = name;
                }
            }
            "virtual_router_id" => instance.vrid = num(child, 1, notes).unwrap_or(0),
            "priority" => instance.priority = num(child, 1, notes).unwrap_or(100),
            "advert_int" => {
                if let Some(ms) = seconds_ms_noted(child, 1, notes) {
                    instance.advert_interval_cs = u16::try_from(ms / 10).unwrap_or(u16::MAX);
                    if ms % 10 != 0 {
                        notes.adjusted(line, "advert_int", "rounded down to whole centiseconds");
                    }
                }
            }
            "version" => {
                instance.version = match child.arg(1) {
                    Some("3") => VrrpVersion::V3,
                    Some("2") => VrrpVersion::V2,
                    other => {
                        notes.invalid(line, "version", format!("{other:?} is not 2 or 3"));
                        instance.version
                    }
                }
            }
            "authentication" => authentication(child, &mut instance, notes),
            "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                if child.keyword() == "virtual_ipaddress_excluded" {
                    notes.adjusted(line, "virtual_ipaddress_excluded", "excluded addresses float with the instance like the others (Tandem always lists every address in adverts)");
                }
                for entry in child.children() {
                    if let Some(vip) = vip(entry, notes) {
                        if instance.vips.push(vip).is_err() {
                            notes.invalid(entry.line, "virtual_ipaddress", "too many virtual addresses (maximum 64)");
                        }
                    }
                }
            }
            "nopreempt" => instance.preempt = false,
            "preempt" => instance.preempt = true,
            "preempt_delay" => instance.preempt_delay_s = num(child, 1, notes).unwrap_or(0),
            // Decided together with vrrp_strict by `accept_mode` after the block.
            "accept" | "no_accept" => {}
            "strict_mode" => notes.not_carried(line, "strict_mode", "strict mode's checks and resets are not applied; its no_accept default is"),
            "unicast_src_ip" => instance.unicast_source = ip(child, 1, notes),
            "unicast_peer" => {
                for entry in child.children() {
                    if entry.words.len() > 1 {
                        notes.not_carried(entry.line, "unicast_peer", "per-peer options are not carried over");
                    }
                    if let Some(addr) = ip(entry, 0, notes) {
                        if instance.unicast_peers.push(addr).is_err() {
                            notes.invalid(entry.line, "unicast_peer", "too many unicast peers (maximum 16)");
                        }
                    }
                }
            }
            "track_interface" => {
                for entry in child.children() {
                    let Some(name) = entry.arg(0).and_then(|n| bounded::<15>(n, entry.line, "track_interface", notes)) else { continue };
                    let weight = if entry.arg(1) == Some("weight") { num(entry, 2, notes).unwrap_or(0) } else { 0 };
                    if instance.track_interfaces.push(TrackedLink { name, weight }).is_err() {
                        notes.invalid(entry.line, "track_interface", "too many tracked interfaces (maximum 16)");
                    }
                }
            }
            "garp_master_delay" => instance.garp.master_delay_s = num(child, 1, notes).unwrap_or(5),
            "garp_master_repeat" => instance.garp.master_repeat = num(child, 1, notes).unwrap_or(5),
            "garp_master_refresh" => instance.garp.master_refresh_s = num(child, 1, notes).unwrap_or(0),
            "garp_master_refresh_repeat" => instance.garp.master_refresh_repeat = num(child, 1, notes).unwrap_or(1),
            "track_script" => notes.not_carried(line, "track_script", format!("{NO_SHELL}; track links with track_interface or bonds instead")),
            other if other.starts_with("notify") => notes.not_carried(line, other, format!("{NO_SHELL}; state changes are sent by e-mail ([notify]) and on the metrics endpoint")),
            "smtp_alert" => notes.adjusted(line, "smtp_alert", "Tandem mails every state change when [notify] is set"),
            other => notes.not_carried(line, other, "VRRP setting with no Tandem equivalent"),
        }
    }
    Some(instance)
}

/// keepalived's accept mode (`vrrp_complete_instance` in keepalived/vrrp/vrrp.c): `accept` /
/// `no_accept` when given, else accept unless the instance runs in strict mode (`strict_mode`,
/// else global `vrrp_strict`); strict mode also turns accept off for a VRRPv2 instance that is
/// not the address owner. RFC 9568's default is the opposite (no accept), so an implied value
/// is reported.
fn accept_mode(node: &Node, instance: &mut VrrpInstance, global_strict: bool, notes: &mut Notes) {
    let mut explicit = None;
    let mut strict = None;
    for child in node.children() {
        match child.keyword() {
            "accept" => explicit = Some((true, child.line)),
            "no_accept" => explicit = Some((false, child.line)),
            "strict_mode" => strict = Some(flag_arg(child)),
            _ => {}
        }
    }
    let strict = strict.unwrap_or(global_strict);
    let mut accept = explicit.map_or(!strict, |(accept, _)| accept);
    if accept && strict && instance.priority != 255 && instance.version == VrrpVersion::V2 {
        accept = false;
        let line = explicit.map_or(node.line, |(_, line)| line);
        notes.adjusted(line, "accept", "strict mode refuses accept mode for VRRPv2 (RFC 3768 has none), as keepalived does: accept_mode = false");
    } else if explicit.is_none() {
        let message = if accept {
            "not given: keepalived without vrrp_strict accepts traffic to the virtual addresses, so accept_mode = true (the RFC 9568 default is false; add no_accept for it)"
        } else {
            "not given: strict mode implies no_accept, so accept_mode = false"
        };
        notes.adjusted(node.line, "accept", message);
    }
    instance.accept_mode = accept;
}

fn authentication(node: &Node, instance: &mut VrrpInstance, notes: &mut Notes) {
    let mut kind = None;
    let mut pass = None;
    for child in node.children() {
        match child.keyword() {
            "auth_type" => kind = child.arg(1).map(|k| (k.to_string(), child.line)),
            "auth_pass" => pass = child.arg(1).map(|p| (p.to_string(), child.line)),
            other => notes.not_carried(
                child.line,
                other,
                "authentication setting with no Tandem equivalent",
            ),
        }
    }
    match kind {
        Some((kind, _)) if kind == "PASS" => {
            let (text, line) = pass.unwrap_or_default();
            let mut short = String::new();
            for c in text.chars() {
                if short.len() + c.len_utf8() > 8 {
                    break;
                }
                short.push(c);
            }
            if short.len() < text.len() {
                notes.adjusted(line, "auth_pass", format!("longer than 8 characters; VRRPv2 (and keepalived) send only the first 8, \"{short}\""));
            }
            if let Ok(value) = heapless::String::<8>::try_from(short.as_str()) {
                instance.auth = Some(VrrpAuth::Pass(value));
            }
        }
        Some((kind, line)) => notes.not_carried(
            line,
            "auth_type",
            format!(
                "{kind} authentication is not supported (RFC 3768 removed AH); use PASS or none"
            ),
        ),
        None => {}
    }
}

fn vip(entry: &Node, notes: &mut Notes) -> Option<Vip> {
    let text = entry.arg(0)?;
    let cidr: IpCidr = match text.parse() {
        Ok(cidr) => cidr,
        Err(_) => {
            notes.invalid(
                entry.line,
                "virtual_ipaddress",
                format!("\"{text}\" is not an address"),
            );
            return None;
        }
    };
    let mut vip = Vip {
        address: cidr.addr,
        prefix: cidr.prefix,
        interface: None,
        label: None,
    };
    let mut words = entry.words.iter().skip(1);
    while let Some(word) = words.next() {
        match word.as_str() {
            "dev" => {
                vip.interface = words
                    .next()
                    .and_then(|n| bounded(n, entry.line, "dev", notes))
            }
            "label" => {
                vip.label = words
                    .next()
                    .and_then(|n| bounded(n, entry.line, "label", notes))
            }
            other => {
                notes.not_carried(
                    entry.line,
                    other,
                    "virtual address option with no Tandem equivalent",
                );
                if matches!(other, "brd" | "scope" | "broadcast") {
                    words.next();
                }
            }
        }
    }
    Some(vip)
}

fn scheduler(node: &Node, notes: &mut Notes) -> Option<Scheduler> {
    let name = node.arg(1)?;
    let found = Scheduler::from_kernel_name(name);
    if found.is_none() {
        notes.invalid(
            node.line,
            node.keyword(),
            format!("\"{name}\" is not a kernel IPVS scheduler"),
        );
    }
    found
}

fn forwarding(node: &Node, notes: &mut Notes) -> Option<Forwarding> {
    match node.arg(1).map(str::to_ascii_uppercase).as_deref() {
        Some("NAT") => Some(Forwarding::Nat),
        Some("DR") => Some(Forwarding::Dr),
        Some("TUN") => Some(Forwarding::Tun),
        other => {
            notes.invalid(
                node.line,
                node.keyword(),
                format!("{other:?} is not NAT, DR or TUN"),
            );
            None
        }
    }
}

fn protocol(node: &Node, notes: &mut Notes) -> Option<Protocol> {
    match node.arg(1).map(str::to_ascii_uppercase).as_deref() {
        Some("TCP") => Some(Protocol::Tcp),
        Some("UDP") => Some(Protocol::Udp),
        Some("SCTP") => Some(Protocol::Sctp),
        other => {
            notes.invalid(
                node.line,
                node.keyword(),
                format!("{other:?} is not TCP, UDP or SCTP"),
            );
            None
        }
    }
}

/// Timing defaults shared by a service's checks (keepalived `delay_loop` default: 60 s).
#[derive(Clone, Copy)]
struct TimingDefaults {
    timing: CheckTiming,
}

fn virtual_server(node: &Node, notes: &mut Notes) -> Option<VirtualService> {
    let mut service = VirtualService::default();
    match node.arg(1) {
        Some("fwmark") => service.fwmark = Some(num(node, 2, notes)?),
        Some("group") => {
            notes.not_carried(
                node.line,
                "virtual_server group",
                "virtual_server_group is not supported; write one virtual_server per address",
            );
            return None;
        }
        Some(_) => {
            service.address = Some(ip(node, 1, notes)?);
            service.port = match node.arg(2) {
                Some(_) => num(node, 2, notes)?,
                None => 0,
            };
        }
        None => {
            notes.invalid(node.line, "virtual_server", "address missing");
            return None;
        }
    }
    service.quorum = 1;
    let mut defaults = TimingDefaults {
        timing: CheckTiming {
            interval_ms: 60_000,
            timeout_ms: 5000,
            retries: 1,
            retry_delay_ms: 1000,
        },
    };
    let mut virtualhost: Option<heapless::String<128>> = None;
    let mut persistence_granularity: Option<u8> = None;
    // First pass: service-level settings that real servers inherit.
    for child in node.children() {
        match child.keyword() {
            "delay_loop" => {
                defaults.timing.interval_ms = seconds_ms_noted(child, 1, notes).unwrap_or(60_000)
            }
            "connect_timeout" => {
                defaults.timing.timeout_ms = seconds_ms_noted(child, 1, notes).unwrap_or(5000)
            }
            "retry" | "nb_get_retry" => defaults.timing.retries = num(child, 1, notes).unwrap_or(1),
            "delay_before_retry" => {
                defaults.timing.retry_delay_ms = seconds_ms_noted(child, 1, notes).unwrap_or(1000)
            }
            "virtualhost" => {
                virtualhost = child
                    .arg(1)
                    .and_then(|v| bounded(v, child.line, "virtualhost", notes))
            }
            "lb_kind" | "lvs_method" => {
                service.forwarding = forwarding(child, notes).unwrap_or_default()
            }
            _ => {}
        }
    }
    let mut servers: Vec<(RealServer, Option<Check>, usize)> = Vec::new();
    for child in node.children() {
        let line = child.line;
        match child.keyword() {
            "delay_loop" | "connect_timeout" | "retry" | "nb_get_retry" | "delay_before_retry" | "virtualhost" | "lb_kind" | "lvs_method" => {}
            "lb_algo" | "lvs_sched" => service.scheduler = scheduler(child, notes).unwrap_or_default(),
            "protocol" => service.protocol = protocol(child, notes).unwrap_or_default(),
            "persistence_timeout" => {
                let timeout_s = if child.arg(1).is_some() { num(child, 1, notes).unwrap_or(360) } else { 360 };
                service.persistence = Some(Persistence { timeout_s, netmask_prefix: service.persistence.and_then(|p| p.netmask_prefix) });
            }
            "persistence_granularity" => {
                let text = child.arg(1).unwrap_or("");
                persistence_granularity = match text.parse::<core::net::Ipv4Addr>().ok().and_then(netmask_to_prefix) {
                    Some(prefix) => Some(prefix),
                    None => match text.trim_start_matches('/').parse::<u8>() {
                        Ok(prefix) => Some(prefix),
                        Err(_) => {
                            notes.invalid(line, "persistence_granularity", format!("\"{text}\" is not a contiguous netmask"));
                            None
                        }
                    },
                };
            }
            "quorum" => service.quorum = num(child, 1, notes).unwrap_or(1),
            "hysteresis" => service.hysteresis = num(child, 1, notes).unwrap_or(0),
            "alpha" => service.start_down = true,
            "ops" => service.scheduler_flags.one_packet = true,
            "sh-port" | "mh-port" => service.scheduler_flags.port = true,
            "sh-fallback" | "mh-fallback" => service.scheduler_flags.fallback = true,
            "inhibit_on_failure" => service.on_failure = if flag_arg(child) { OnFailure::Quiesce } else { OnFailure::Remove },
            "sorry_server" => {
                if let Some(address) = ip(child, 1, notes) {
                    let port = if child.arg(2).is_some() { num(child, 2, notes) } else { None };
                    let previous = service.sorry_server.take().unwrap_or_default();
                    service.sorry_server = Some(SorryServer { address, port, ..previous });
                }
            }
            "sorry_server_inhibit" => {
                let mut sorry = service.sorry_server.take().unwrap_or_default();
                sorry.inhibit = flag_arg(child);
                service.sorry_server = Some(sorry);
            }
            "sorry_server_lvs_method" => {
                let mut sorry = service.sorry_server.take().unwrap_or_default();
                sorry.forwarding = forwarding(child, notes);
                service.sorry_server = Some(sorry);
            }
            "real_server" => {
                if let Some(server) = real_server(child, &service, defaults, virtualhost.as_ref(), notes) {
                    servers.push((server.0, server.1, line));
                }
            }
            "quorum_up" | "quorum_down" => notes.not_carried(line, child.keyword(), format!("{NO_SHELL}; quorum changes are sent by e-mail ([notify]) and on the metrics endpoint")),
            other => notes.not_carried(line, other, "virtual_server setting with no Tandem equivalent"),
        }
    }
    if let Some(prefix) = persistence_granularity {
        match &mut service.persistence {
            Some(persistence) => persistence.netmask_prefix = Some(prefix),
            None => notes.not_carried(
                node.line,
                "persistence_granularity",
                "has no effect without persistence_timeout",
            ),
        }
    }
    // Hoist a check every real server shares onto the service (compact, and how people think).
    let shared = match servers.first() {
        Some((_, Some(first), _)) if servers.iter().all(|(_, c, _)| c.as_ref() == Some(first)) => {
            Some(first.clone())
        }
        _ => None,
    };
    for (mut server, check, line) in servers {
        server.check = if shared.is_some() {
            None
        } else {
            check.map(Box::new)
        };
        if service.real_servers.push(server).is_err() {
            notes.invalid(
                line,
                "real_server",
                "too many real servers in this service (maximum 1024)",
            );
        }
    }
    service.check = shared.map(Box::new);
    if service.real_servers.is_empty() {
        service.check = None;
    }
    Some(service)
}

fn real_server(
    node: &Node,
    service: &VirtualService,
    defaults: TimingDefaults,
    virtualhost: Option<&heapless::String<128>>,
    notes: &mut Notes,
) -> Option<(RealServer, Option<Check>)> {
    let address = ip(node, 1, notes)?;
    let port = match node.arg(2) {
        Some(_) => Some(num::<u16>(node, 2, notes)?),
        None => None,
    };
    let mut server = RealServer {
        address,
        port,
        ..RealServer::default()
    };
    if (server.port == Some(service.port) && service.fwmark.is_none())
        || (server.port == Some(0) && service.fwmark.is_some())
    {
        server.port = None;
    }
    let mut defaults = defaults;
    for child in node.children() {
        if child.keyword() == "delay_loop" {
            defaults.timing.interval_ms =
                seconds_ms_noted(child, 1, notes).unwrap_or(defaults.timing.interval_ms);
        }
    }
    let mut check: Option<Check> = None;
    for child in node.children() {
        let line = child.line;
        match child.keyword() {
            "delay_loop" => {}
            "weight" => server.weight = num(child, 1, notes).unwrap_or(1),
            "inhibit_on_failure" => {
                server.on_failure = Some(if flag_arg(child) { OnFailure::Quiesce } else { OnFailure::Remove })
            }
            "uthreshold" => server.upper_threshold = num(child, 1, notes).unwrap_or(0),
            "lthreshold" => server.lower_threshold = num(child, 1, notes).unwrap_or(0),
            "lvs_method" => server.forwarding = forwarding(child, notes),
            "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "SMTP_CHECK" => {
                if check.is_some() {
                    notes.not_carried(line, child.keyword(), "Tandem runs one check per real server; this extra check is dropped");
                    continue;
                }
                check = Some(health_check(child, defaults, virtualhost, notes));
            }
            "MISC_CHECK" => notes.not_carried(line, "MISC_CHECK", format!("{NO_SHELL}; use the built-in TCP_CHECK, HTTP_GET or SMTP_CHECK, or a send/expect check")),
            other if other.ends_with("_CHECK") => notes.not_carried(line, other, "this check type is not built in; use TCP_CHECK, HTTP_GET, SMTP_CHECK or a send/expect check"),
            other if other.starts_with("notify") => notes.not_carried(line, other, format!("{NO_SHELL}; real-server changes are sent by e-mail ([notify]) and on the metrics endpoint")),
            other => notes.not_carried(line, other, "real_server setting with no Tandem equivalent"),
        }
    }
    if server.forwarding == Some(service.forwarding) {
        server.forwarding = None;
    }
    if server.on_failure == Some(service.on_failure) {
        server.on_failure = None;
    }
    Some((server, check))
}

fn health_check(
    node: &Node,
    defaults: TimingDefaults,
    virtualhost: Option<&heapless::String<128>>,
    notes: &mut Notes,
) -> Check {
    let mut check = Check {
        timing: defaults.timing,
        ..Check::default()
    };
    let mut path: heapless::String<128> = heapless::String::new();
    let _ = path.push('/');
    let mut status = None;
    let mut body = None;
    let mut vhost = virtualhost.cloned();
    let mut helo = None;
    let mut urls = 0;
    for child in node.children() {
        let line = child.line;
        match child.keyword() {
            "connect_timeout" => {
                check.timing.timeout_ms = seconds_ms_noted(child, 1, notes).unwrap_or(5000)
            }
            "retry" | "nb_get_retry" => check.timing.retries = num(child, 1, notes).unwrap_or(1),
            "delay_before_retry" => {
                check.timing.retry_delay_ms = seconds_ms_noted(child, 1, notes).unwrap_or(1000)
            }
            "connect_port" => check.connect_port = num(child, 1, notes),
            "connect_ip" => check.connect_address = ip(child, 1, notes),
            "bindto" => check.bind_address = ip(child, 1, notes),
            "virtualhost" => {
                vhost = child
                    .arg(1)
                    .and_then(|v| bounded(v, line, "virtualhost", notes))
            }
            "helo_name" => {
                helo = child
                    .arg(1)
                    .and_then(|v| bounded(v, line, "helo_name", notes))
            }
            "url" => {
                urls += 1;
                if urls > 1 {
                    notes.not_carried(
                        line,
                        "url",
                        "Tandem checks one URL per real server; this extra url is dropped",
                    );
                    continue;
                }
                for entry in child.children() {
                    match entry.keyword() {
                        "path" => {
                            if let Some(value) = entry
                                .arg(1)
                                .and_then(|v| bounded(v, entry.line, "path", notes))
                            {
                                path = value;
                            }
                        }
                        "status_code" => status = num(entry, 1, notes),
                        "digest" => match entry.arg(1).and_then(parse_md5) {
                            Some(digest) => body = Some(HttpBody::Md5(digest)),
                            None => notes.invalid(entry.line, "digest", "not a 32-digit hex MD5"),
                        },
                        other => notes.not_carried(
                            entry.line,
                            other,
                            "url setting with no Tandem equivalent",
                        ),
                    }
                }
            }
            other => notes.not_carried(line, other, "check setting with no Tandem equivalent"),
        }
    }
    check.kind = match node.keyword() {
        "HTTP_GET" | "SSL_GET" => CheckKind::Http {
            path,
            status,
            body,
            virtual_host: vhost,
            tls: node.keyword() == "SSL_GET",
        },
        "SMTP_CHECK" => CheckKind::Smtp { helo_name: helo },
        _ => CheckKind::Tcp,
    };
    check
}

fn parse_md5(text: &str) -> Option<[u8; 16]> {
    if text.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (index, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_handles_inline_blocks_and_comments() {
        let tree = parse_tree("a 1 { b 2 } # c\n! x\nd {\n e\n}\n").unwrap();
        assert_eq!(tree.len(), 2);
        assert_eq!(tree[0].words, ["a", "1"]);
        assert_eq!(tree[0].children().len(), 1);
        assert_eq!(tree[1].children()[0].words, ["e"]);
        assert_eq!(tree[1].line, 3);
    }

    #[test]
    fn tree_refuses_unbalanced() {
        assert!(matches!(
            parse_tree("a {\n b\n"),
            Err(ImportError::Syntax { .. })
        ));
        assert!(matches!(
            parse_tree("}\n"),
            Err(ImportError::Syntax { line: 1, .. })
        ));
        let deep = "a {".repeat(40);
        assert!(matches!(parse_tree(&deep), Err(ImportError::Syntax { .. })));
    }
}
