//! iptables import: the `-j CLUSTERIP` rules of a box become its load-sharing groups
//! (`[[clusterip]]`, [`ClusterIpGroup`]).
//!
//! Why it exists: boxes that shared one address with the kernel's CLUSTERIP target (TUM report
//! 5.4: every node answers ARP for the address with one multicast MAC and serves the hash buckets
//! of its `--local-node`; a failed node's buckets were taken over by hand with
//! `echo +N > /proc/net/ipt_CLUSTERIP/VIP`) keep that setup as iptables rules, either as
//! `iptables-save` output (`*filter`, `:CHAIN POLICY [p:b]`, `-A CHAIN ...`, `COMMIT`) or as a
//! script of `iptables -A/-I ...` lines. Kernels no longer have the target and Tandem does the
//! load sharing itself, so this is how such a setup moves onto a Tandem pair:
//! `tandem config import box1.rules`.
//!
//! What is mapped: one group per shared address (`-d VIP`), named `cluster_A_B_C_D`, with the
//! rule's `-i`, `--clustermac`, `--hashmode`, `--hash-init`, `--total-nodes` and `--local-node`.
//! Several rules for one address (one per port, or a later `-j CLUSTERIP` without parameters)
//! make one group; their `--local-node`s accumulate, their other parameters must agree.
//! Everything else in the file (filter and NAT rules, chain policies, shell commands) is a
//! [`NoteKind::NotCarried`] note with its line, one per rule; a CLUSTERIP rule that cannot be
//! imported is a [`NoteKind::Invalid`] note saying why, and the other rules still import.
//!
//! Hostile input: the file is at most [`MAX_INPUT_BYTES`], a rule at most [`MAX_WORDS`] words,
//! the groups at most [`limits::CLUSTERIP_GROUPS`], and past [`MAX_NOTES`] notes one summary note
//! per kind counts the rest, so memory stays proportional to the file and the notes bounded.

use std::borrow::Cow;
use std::format;
use std::string::String;
use std::vec::Vec;

use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{add_referenced_interfaces, ImportError, Imported, Note, NoteKind, MAX_INPUT_BYTES};
use crate::model::{limits, ClusterIpGroup, Config, HashTuple, IfName, Name, PortRole};
use crate::net::MacAddr;

/// Notes listed one by one; past this many, one summary note per kind counts the rest.
pub const MAX_NOTES: usize = 1000;
/// Words in one rule; iptables-save writes a few dozen at most.
pub const MAX_WORDS: usize = 256;
/// Characters of a rule quoted in a note.
const QUOTE_CHARS: usize = 120;
/// Highest `--total-nodes`: the buckets a Tandem group hashes into.
const MAX_TOTAL_NODES: u32 = 64;
/// The keyword of every note about a CLUSTERIP rule.
const CLUSTERIP: &str = "-j CLUSTERIP";

const NO_FILTER: &str = "Tandem has no general packet filter; filter this traffic on a firewall in front of the pair or on the servers";
const NO_NAT: &str = "Tandem does the NAT a director needs itself (LVS/NAT virtual services, and [nat_gateway] for the real servers' own traffic); configure those instead";
const NO_MARK: &str = "firewall marks are not read from iptables; describe marked traffic as [[fwmark_rules]] (address, protocol, ports and mark)";
const NO_EDIT: &str = "rule edits (-D, -R, -E) are not replayed; import a file that holds the final rules (iptables-save output)";
const NO_SHELL: &str = "not an iptables rule; the import reads iptables-save output and iptables command lines, and Tandem runs no shell commands: set what this did in the Tandem config";

/// Imports iptables-save output or a file of `iptables` command lines.
pub fn import(text: &str) -> Result<Imported, ImportError> {
    if text.len() > MAX_INPUT_BYTES {
        return Err(ImportError::TooLarge {
            len: text.len(),
            max: MAX_INPUT_BYTES,
        });
    }
    let mut notes = Capped::default();
    let mut state = State::default();
    let mut table = String::from("filter");
    let mut recognised = false;
    for (line, logical) in LogicalLines::new(text) {
        let trimmed = logical.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if trimmed == "COMMIT" {
            recognised = true;
            continue;
        }
        if let Some(name) = trimmed.strip_prefix('*') {
            recognised = true;
            table = quote(name.trim());
            continue;
        }
        if let Some(chain) = trimmed.strip_prefix(':') {
            recognised = true;
            chain_header(line, chain, &table, &mut notes);
            continue;
        }
        let first = trimmed.split_whitespace().next().unwrap_or("");
        let kind = line_kind(trimmed);
        if kind == LineKind::Other {
            notes.add(line, &quote(first), NoteKind::NotCarried, || {
                format!("`{}`: {NO_SHELL}", quote(trimmed))
            });
            continue;
        }
        let words = match split_words(trimmed) {
            Ok(words) => words,
            Err(reason) => {
                if kind != LineKind::Shell {
                    recognised = true;
                }
                notes.add(line, &quote(first), NoteKind::Invalid, || {
                    format!(
                        "cannot read `{}`: {reason}; if it is a CLUSTERIP rule, nothing of it was imported",
                        quote(trimmed)
                    )
                });
                continue;
            }
        };
        match kind {
            LineKind::Saved => {
                recognised = true;
                let words = strip_counters(&words);
                state.rule(line, trimmed, words, &table, false, &mut notes);
            }
            LineKind::Command { ipv6 } => {
                recognised = true;
                let words = command_words(&words);
                state.rule(line, trimmed, words, "filter", ipv6, &mut notes);
            }
            LineKind::Shell => state.shell(line, trimmed, &words, &mut notes),
            LineKind::Other => {}
        }
    }
    if !recognised {
        return Err(ImportError::Syntax {
            line: 1,
            message: String::from("no iptables rule, table header (*filter) or chain (:INPUT ACCEPT [0:0]) in this file; pass iptables-save output or a file of iptables commands, or name its format with --format keepalived or --format lvs"),
        });
    }
    let config = state.finish(&mut notes);
    Ok(Imported {
        config,
        notes: notes.finish(),
    })
}

/// Whether `line` (trimmed, not a comment) is iptables syntax: a table header, a chain, COMMIT,
/// a saved rule or an `iptables` command. [`super::detect`] asks this.
pub(crate) fn is_iptables_line(line: &str) -> bool {
    if line == "COMMIT" {
        return true;
    }
    if let Some(table) = line.strip_prefix('*') {
        return matches!(
            table.trim(),
            "filter" | "nat" | "mangle" | "raw" | "security"
        );
    }
    if let Some(chain) = line.strip_prefix(':') {
        // `:INPUT ACCEPT [0:0]`
        let mut words = chain.split_whitespace();
        return words.next().is_some()
            && words.next().is_some()
            && words
                .next()
                .is_some_and(|c| c.starts_with('[') && c.ends_with(']'));
    }
    matches!(line_kind(line), LineKind::Saved | LineKind::Command { .. })
        && (line.starts_with('[') || has_command_flag(line))
}

/// Whether a line names an iptables command (`-A`, `-I`, `-P`, ...), so that a line merely
/// starting with `-` is not taken for a rule when guessing the format.
fn has_command_flag(line: &str) -> bool {
    line.split_whitespace().any(|word| {
        matches!(
            word,
            "-A" | "--append"
                | "-I"
                | "--insert"
                | "-D"
                | "--delete"
                | "-R"
                | "--replace"
                | "-P"
                | "--policy"
                | "-N"
                | "--new-chain"
                | "-F"
                | "--flush"
                | "-X"
                | "--delete-chain"
                | "-Z"
                | "--zero"
                | "-E"
                | "--rename-chain"
        )
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineKind {
    /// iptables-save rule syntax: `-A INPUT ...`, `[0:0] -A INPUT ...`.
    Saved,
    /// `iptables ...`, `/sbin/iptables ...`, `$IPTABLES ...`, `sudo iptables ...`.
    Command { ipv6: bool },
    /// `echo ... > /proc/net/ipt_CLUSTERIP/VIP` or `ip addr add ...`: read for what they say
    /// about a group.
    Shell,
    /// Anything else.
    Other,
}

fn line_kind(line: &str) -> LineKind {
    let mut words = line.split_whitespace();
    let mut first = words.next().unwrap_or("");
    if first == "sudo" {
        first = words.next().unwrap_or("");
    }
    if first.starts_with('-') || (first.starts_with('[') && first.ends_with(']')) {
        return LineKind::Saved;
    }
    if let Some(ipv6) = command_name(first) {
        return LineKind::Command { ipv6 };
    }
    let base = first.rsplit('/').next().unwrap_or(first);
    if (base == "echo" && line.contains("/proc/net/ipt_CLUSTERIP/")) || base == "ip" {
        return LineKind::Shell;
    }
    LineKind::Other
}

/// `Some(ipv6)` when `word` runs iptables: `iptables`, `iptables-legacy`, `/sbin/iptables`,
/// `$IPTABLES`, `${IPT}`, and the same for ip6tables.
fn command_name(word: &str) -> Option<bool> {
    let base = word.rsplit('/').next().unwrap_or(word);
    let base = base.trim_matches(|c| matches!(c, '"' | '\''));
    for (name, ipv6) in [("ip6tables", true), ("iptables", false)] {
        if base == name
            || base
                .strip_prefix(name)
                .is_some_and(|rest| matches!(rest, "-legacy" | "-nft"))
        {
            return Some(ipv6);
        }
    }
    if let Some(variable) = base.strip_prefix('$') {
        let variable = variable.trim_start_matches('{').trim_end_matches('}');
        let upper = variable.to_ascii_uppercase();
        if upper.starts_with("IP6T") {
            return Some(true);
        }
        if upper.starts_with("IPT") {
            return Some(false);
        }
    }
    None
}

/// The words after the command name (and a leading `sudo`).
fn command_words(words: &[String]) -> &[String] {
    let skip = if words.first().is_some_and(|w| w == "sudo") {
        2
    } else {
        1
    };
    words.get(skip..).unwrap_or(&[])
}

/// The words after the packet counters `iptables-save -c` puts first (`[12:720] -A ...`).
fn strip_counters(words: &[String]) -> &[String] {
    match words.first() {
        Some(first) if first.starts_with('[') && first.ends_with(']') => {
            words.get(1..).unwrap_or(&[])
        }
        _ => words,
    }
}

/// `:CHAIN POLICY [packets:bytes]`: a built-in chain's policy other than ACCEPT is noted; a
/// user chain (`-`) and ACCEPT change nothing.
fn chain_header(line: usize, header: &str, table: &str, notes: &mut Capped) {
    let mut words = header.split_whitespace();
    let chain = words.next().unwrap_or("");
    let policy = words.next().unwrap_or("-");
    if !matches!(policy, "-" | "ACCEPT") {
        notes.add(line, "policy", NoteKind::NotCarried, || {
            format!(
                "chain {} ({} table) defaults to {}: {NO_FILTER}",
                quote(chain),
                table,
                quote(policy)
            )
        });
    }
}

/// What one rule says, as far as the import needs it.
#[derive(Debug, Default)]
struct Rule {
    table: Option<String>,
    /// `-A`, `-I`, `-P`, ... in its short form.
    command: Option<&'static str>,
    chain: Option<String>,
    policy: Option<String>,
    target: Option<String>,
    /// `-d` values with whether `!` negated them.
    destinations: Vec<(String, bool)>,
    /// `-i` values with whether `!` negated them.
    interfaces: Vec<(String, bool)>,
    new: bool,
    hashmode: Vec<String>,
    clustermac: Vec<String>,
    total_nodes: Vec<String>,
    local_nodes: Vec<String>,
    hash_init: Vec<String>,
    /// Every other match word (`-p tcp -m tcp --dport 80`), in order.
    restrictions: Vec<String>,
    /// An option that ended the line without its value.
    missing_value: Option<String>,
}

impl Rule {
    fn parse(words: &[String]) -> Rule {
        let mut rule = Rule::default();
        let mut negate = false;
        let mut cursor = Cursor { words, index: 0 };
        while let Some(word) = cursor.next() {
            let value = |cursor: &mut Cursor<'_>, rule: &mut Rule| -> Option<String> {
                let value = cursor.next().map(String::from);
                if value.is_none() {
                    rule.missing_value = Some(String::from(word));
                }
                value
            };
            match word {
                "!" => {
                    negate = true;
                    continue;
                }
                "-t" | "--table" => rule.table = value(&mut cursor, &mut rule),
                "-A" | "--append" | "-I" | "--insert" | "-D" | "--delete" | "-R" | "--replace"
                | "-N" | "--new-chain" | "-P" | "--policy" | "-E" | "--rename-chain" => {
                    let command = short_command(word);
                    let chain = value(&mut cursor, &mut rule);
                    if rule.command.is_none() {
                        rule.command = Some(command);
                        rule.chain = chain;
                        match command {
                            "-P" => rule.policy = value(&mut cursor, &mut rule),
                            "-E" => {
                                let _ = value(&mut cursor, &mut rule);
                            }
                            // `-I CHAIN 3`, `-D CHAIN 3`: the rule number.
                            _ => cursor.skip_if(|w| w.bytes().all(|b| b.is_ascii_digit())),
                        }
                    }
                }
                "-F" | "--flush" | "-X" | "--delete-chain" | "-Z" | "--zero" | "-L" | "--list"
                | "-S" | "--list-rules" => {
                    if rule.command.is_none() {
                        rule.command = Some(short_command(word));
                    }
                    cursor.skip_if(|w| !w.starts_with('-'));
                }
                "-d" | "--destination" | "--dst" => {
                    if let Some(mut address) = value(&mut cursor, &mut rule) {
                        // The old `-d ! ADDRESS` form.
                        if address == "!" {
                            negate = true;
                            address = value(&mut cursor, &mut rule).unwrap_or_default();
                        }
                        rule.destinations.push((address, negate));
                    }
                }
                "-i" | "--in-interface" => {
                    if let Some(mut name) = value(&mut cursor, &mut rule) {
                        if name == "!" {
                            negate = true;
                            name = value(&mut cursor, &mut rule).unwrap_or_default();
                        }
                        rule.interfaces.push((name, negate));
                    }
                }
                "-j" | "--jump" | "-g" | "--goto" => rule.target = value(&mut cursor, &mut rule),
                "--new" => rule.new = true,
                "--hashmode" => {
                    let v = value(&mut cursor, &mut rule);
                    rule.hashmode.extend(v);
                }
                "--clustermac" => {
                    let v = value(&mut cursor, &mut rule);
                    rule.clustermac.extend(v);
                }
                "--total-nodes" => {
                    let v = value(&mut cursor, &mut rule);
                    rule.total_nodes.extend(v);
                }
                "--local-node" => {
                    let v = value(&mut cursor, &mut rule);
                    rule.local_nodes.extend(v);
                }
                "--hash-init" => {
                    let v = value(&mut cursor, &mut rule);
                    rule.hash_init.extend(v);
                }
                "-c" | "--set-counters" => {
                    let _ = (value(&mut cursor, &mut rule), value(&mut cursor, &mut rule));
                }
                "-W" | "--wait-interval" => {
                    let _ = value(&mut cursor, &mut rule);
                }
                "-w" | "--wait" => cursor.skip_if(|w| w.bytes().all(|b| b.is_ascii_digit())),
                "-4" | "--ipv4" | "-6" | "--ipv6" | "-v" | "--verbose" | "-n" | "--numeric" => {}
                other => {
                    if negate {
                        rule.restrictions.push(String::from("!"));
                    }
                    rule.restrictions.push(String::from(other));
                }
            }
            negate = false;
        }
        rule
    }

    /// Whether the rule carries any CLUSTERIP parameter (else it refers to an earlier group).
    fn has_parameters(&self) -> bool {
        self.new
            || !self.hashmode.is_empty()
            || !self.clustermac.is_empty()
            || !self.total_nodes.is_empty()
            || !self.local_nodes.is_empty()
            || !self.hash_init.is_empty()
    }
}

/// Walks a rule's words.
#[derive(Debug)]
struct Cursor<'a> {
    words: &'a [String],
    index: usize,
}

impl<'a> Cursor<'a> {
    fn next(&mut self) -> Option<&'a str> {
        let word = self.words.get(self.index)?;
        self.index += 1;
        Some(word.as_str())
    }

    /// Steps over the next word if `test` says it belongs to the option before it.
    fn skip_if(&mut self, test: impl Fn(&str) -> bool) {
        if self.words.get(self.index).is_some_and(|w| test(w)) {
            self.index += 1;
        }
    }
}

fn short_command(word: &str) -> &'static str {
    match word {
        "-A" | "--append" => "-A",
        "-I" | "--insert" => "-I",
        "-D" | "--delete" => "-D",
        "-R" | "--replace" => "-R",
        "-N" | "--new-chain" => "-N",
        "-P" | "--policy" => "-P",
        "-E" | "--rename-chain" => "-E",
        "-F" | "--flush" => "-F",
        "-X" | "--delete-chain" => "-X",
        "-Z" | "--zero" => "-Z",
        "-L" | "--list" => "-L",
        _ => "-S",
    }
}

/// A CLUSTERIP rule's parameters, read and checked.
#[derive(Debug, Default)]
struct Parameters {
    mac: Option<MacAddr>,
    total_nodes: Option<u8>,
    local_nodes: Vec<u32>,
    hash: Option<HashTuple>,
    hash_init: Option<u32>,
}

impl Parameters {
    fn read(rule: &Rule) -> Result<Parameters, String> {
        let mac = match once(&rule.clustermac, "--clustermac")? {
            None => None,
            Some(text) => {
                let mac: MacAddr = text.parse().map_err(|_| {
                    format!(
                        "--clustermac {} is not a MAC address; write six hex bytes such as 01:00:5e:00:00:20",
                        quote(text)
                    )
                })?;
                if !mac.is_multicast() {
                    return Err(format!("--clustermac {mac} is not a multicast MAC (the lowest bit of its first byte is 0), and every box must accept the address's frames: use a multicast MAC such as 01:00:5e:00:00:20"));
                }
                Some(mac)
            }
        };
        let total_nodes = match once(&rule.total_nodes, "--total-nodes")? {
            None => None,
            Some(text) => match number(text) {
                Some(n @ 1..=MAX_TOTAL_NODES) => u8::try_from(n).ok(),
                _ => return Err(format!("--total-nodes {} is outside 1 to {MAX_TOTAL_NODES}; give the number of buckets the address is shared in (the number of nodes, 2 for a pair)", quote(text))),
            },
        };
        let mut local_nodes = Vec::new();
        for text in &rule.local_nodes {
            match number(text) {
                Some(n) => local_nodes.push(n),
                None => {
                    return Err(format!(
                        "--local-node {} is not a number; give this box's node, from 1 to --total-nodes",
                        quote(text)
                    ))
                }
            }
        }
        let hash = match once(&rule.hashmode, "--hashmode")? {
            None => None,
            Some("sourceip") => Some(HashTuple::SourceIp),
            Some("sourceip-sourceport") => Some(HashTuple::SourceIpPort),
            Some("sourceip-sourceport-destport") => Some(HashTuple::SourceIpPortDestinationPort),
            Some(other) => return Err(format!("--hashmode {} is unknown; use sourceip, sourceip-sourceport or sourceip-sourceport-destport", quote(other))),
        };
        let hash_init = match once(&rule.hash_init, "--hash-init")? {
            None => None,
            Some(text) => Some(number(text).ok_or_else(|| {
                format!(
                    "--hash-init {} is not a number from 0 to 4294967295; give the same seed on every box",
                    quote(text)
                )
            })?),
        };
        Ok(Parameters {
            mac,
            total_nodes,
            local_nodes,
            hash,
            hash_init,
        })
    }
}

/// The one value of an option that iptables takes once per rule.
fn once<'a>(values: &'a [String], option: &str) -> Result<Option<&'a str>, String> {
    match values {
        [] => Ok(None),
        [value] => Ok(Some(value.as_str())),
        _ => Err(format!("{option} is given twice; give it once")),
    }
}

/// A number as iptables reads one (strtoul base 0): decimal, `0x` hex or `0` octal.
fn number(text: &str) -> Option<u32> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        if hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return u32::from_str_radix(hex, 16).ok();
        }
        return None;
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match text.strip_prefix('0') {
        Some(octal) if !octal.is_empty() => u32::from_str_radix(octal, 8).ok(),
        _ => text.parse().ok(),
    }
}

/// The shared address of a CLUSTERIP rule: its one `-d`, a single IPv4 address.
fn shared_address(rule: &Rule) -> Result<Ipv4Addr, String> {
    let (value, negated) =
        match rule.destinations.as_slice() {
            [] => return Err(String::from(
                "missing -d VIP: CLUSTERIP shares the rule's destination address; add -d ADDRESS",
            )),
            [(value, negated)] => (value.as_str(), *negated),
            _ => {
                return Err(String::from(
                    "-d is given twice; give the one shared address",
                ))
            }
        };
    if negated {
        return Err(format!(
            "`! -d {}` matches every address but one; CLUSTERIP shares one address: write -d ADDRESS",
            quote(value)
        ));
    }
    if value.contains(',') {
        return Err(format!(
            "-d {} lists several addresses; write one CLUSTERIP rule per shared address",
            quote(value)
        ));
    }
    let (address, mask) = match value.split_once('/') {
        Some((address, mask)) => (address, Some(mask)),
        None => (value, None),
    };
    let address: Ipv4Addr = match address.parse() {
        Ok(address) => address,
        Err(_) if address.parse::<Ipv6Addr>().is_ok() => {
            return Err(format!(
                "-d {} is an IPv6 address; CLUSTERIP shares IPv4 addresses only",
                quote(value)
            ))
        }
        Err(_) => return Err(format!("-d {} is not an IPv4 address (the import neither resolves host names nor expands shell variables); write the address", quote(value))),
    };
    if !matches!(mask, None | Some("32" | "255.255.255.255")) {
        return Err(format!(
            "-d {} is a network; CLUSTERIP shares one address: write -d {address}/32",
            quote(value)
        ));
    }
    if address.is_unspecified() || address.is_multicast() || address.is_broadcast() {
        return Err(format!(
            "-d {address} cannot be shared by the boxes; write the service address"
        ));
    }
    Ok(address)
}

/// The interface of a CLUSTERIP rule: its one `-i`, if any.
fn interface_of(rule: &Rule) -> Result<Option<IfName>, String> {
    let (name, negated) = match rule.interfaces.as_slice() {
        [] => return Ok(None),
        [(name, negated)] => (name.as_str(), *negated),
        _ => return Err(String::from("-i is given twice; name the one interface")),
    };
    if negated || name.is_empty() || name.ends_with('+') {
        return Err(format!(
            "-i {}{} is not one interface; CLUSTERIP answers on one: name it (-i eth0)",
            if negated { "! " } else { "" },
            quote(name)
        ));
    }
    IfName::try_from(name).map(Some).map_err(|_| {
        format!(
            "-i {} is longer than the kernel's 15-byte interface names; write the interface's name",
            quote(name)
        )
    })
}

/// The group name for `vip`: `cluster_123_123_123_1`.
fn group_name(vip: Ipv4Addr) -> Name {
    let [a, b, c, d] = vip.octets();
    Name::try_from(format!("cluster_{a}_{b}_{c}_{d}").as_str()).unwrap_or_default()
}

/// A rule or command that refers to a group by address, checked once every group is known.
#[derive(Debug)]
enum Later {
    /// `-j CLUSTERIP` without parameters: joins the group the `--new` rule for `vip` made.
    Reference {
        line: usize,
        vip: Ipv4Addr,
        interface: Option<IfName>,
        restrictions: String,
    },
    /// `echo +N > /proc/net/ipt_CLUSTERIP/VIP`: a manual takeover.
    Takeover {
        line: usize,
        vip: Option<Ipv4Addr>,
        quoted: String,
    },
    /// `ip addr add VIP dev IFACE`.
    Address {
        line: usize,
        vip: Option<Ipv4Addr>,
        quoted: String,
    },
}

/// The groups found so far, each with the line of the rule that made it.
#[derive(Debug, Default)]
struct State {
    groups: Vec<(usize, ClusterIpGroup)>,
    later: Vec<Later>,
}

impl State {
    fn group(&self, vip: Ipv4Addr) -> Option<&(usize, ClusterIpGroup)> {
        self.groups.iter().find(|(_, g)| g.vip == IpAddr::V4(vip))
    }

    /// One rule, iptables-save or command form; `words` start after the command name.
    fn rule(
        &mut self,
        line: usize,
        text: &str,
        words: &[String],
        table: &str,
        ipv6: bool,
        notes: &mut Capped,
    ) {
        let rule = Rule::parse(words);
        let table = rule.table.as_deref().unwrap_or(table);
        let chain = rule.chain.as_deref().unwrap_or("");
        match rule.command {
            // Chains themselves, flushes, counters and listings leave nothing to carry: their
            // rules are noted one by one.
            Some("-N" | "-F" | "-X" | "-Z" | "-L" | "-S") => {}
            Some("-P") => {
                let policy = rule.policy.as_deref().unwrap_or("");
                if policy != "ACCEPT" {
                    notes.add(line, "policy", NoteKind::NotCarried, || {
                        format!(
                            "chain {} ({} table) defaults to {}: {NO_FILTER}",
                            quote(chain),
                            quote(table),
                            quote(policy)
                        )
                    });
                }
            }
            Some("-D" | "-R" | "-E") => {
                notes.add(line, "rule edit", NoteKind::NotCarried, || {
                    format!("`{}`: {NO_EDIT}", quote(text))
                });
            }
            Some(_) if ipv6 => {
                notes.add(line, "ip6tables", NoteKind::NotCarried, || {
                    format!(
                        "`{}`: ip6tables rules are not carried over (CLUSTERIP shares IPv4 addresses only); {NO_FILTER}",
                        quote(text)
                    )
                });
            }
            Some(_) if rule.target.as_deref() == Some("CLUSTERIP") => {
                match self.clusterip(line, &rule) {
                    Ok(adjusted) => {
                        for (keyword, message) in adjusted {
                            notes.add(line, keyword, NoteKind::Adjusted, || message);
                        }
                    }
                    Err(reason) => notes.add(line, CLUSTERIP, NoteKind::Invalid, || {
                        format!("{reason} (rule not imported: `{}`)", quote(text))
                    }),
                }
            }
            Some(_) => {
                let target = rule.target.as_deref().unwrap_or("");
                let keyword = if target.is_empty() {
                    String::from("rule")
                } else {
                    format!("-j {}", quote(target))
                };
                let why = if table == "nat" {
                    NO_NAT
                } else if table == "mangle" || matches!(target, "MARK" | "CONNMARK") {
                    NO_MARK
                } else {
                    NO_FILTER
                };
                notes.add(line, &keyword, NoteKind::NotCarried, || {
                    format!(
                        "`{}` ({} table, chain {}): {why}",
                        quote(text),
                        quote(table),
                        quote(chain)
                    )
                });
            }
            None => {
                notes.add(line, "rule", NoteKind::NotCarried, || {
                    format!(
                        "`{}` has no command (-A, -I, -P, ...): not an iptables rule; {NO_FILTER}",
                        quote(text)
                    )
                });
            }
        }
    }

    /// A `-j CLUSTERIP` rule: makes or joins its address's group. Returns the adjusted notes,
    /// or why the rule is refused (then nothing of it is kept).
    fn clusterip(
        &mut self,
        line: usize,
        rule: &Rule,
    ) -> Result<Vec<(&'static str, String)>, String> {
        if let Some(option) = &rule.missing_value {
            return Err(format!("{} has no value; complete it", quote(option)));
        }
        let vip = shared_address(rule)?;
        let interface = interface_of(rule)?;
        let parameters = Parameters::read(rule)?;
        let mut adjusted = Vec::new();
        let restrictions = restriction_text(&rule.restrictions);
        if let Some((first, group)) = self
            .groups
            .iter_mut()
            .find(|(_, g)| g.vip == IpAddr::V4(vip))
        {
            let differences = differences(group, interface.as_ref(), &parameters);
            if !differences.is_empty() {
                return Err(format!(
                    "conflicts with line {first}, which makes group {} for {vip}: {}; every rule for one address must give the same -i, --clustermac, --total-nodes, --hashmode and --hash-init: make them equal",
                    group.name,
                    differences.join(", ")
                ));
            }
            for &node in &parameters.local_nodes {
                let node = local_node(node, group.total_nodes)?;
                if group.local_nodes.contains(&node) {
                    continue;
                }
                if group.local_nodes.push(node).is_err() {
                    return Err(format!(
                        "--local-node {node}: group {} already has {} local nodes, the most a box serves; serve fewer buckets or use fewer --total-nodes",
                        group.name,
                        limits::CLUSTERIP_LOCAL_NODES
                    ));
                }
                adjusted.push((CLUSTERIP, format!(
                    "local node {node} joins group {} (line {first}): this box serves buckets {}; the kernel kept the first --new rule's --local-node for an address (more took `echo +{node} > /proc/net/ipt_CLUSTERIP/{vip}`), Tandem serves every --local-node the rules name",
                    group.name,
                    list(&group.local_nodes)
                )));
            }
        } else if !rule.has_parameters() {
            self.later.push(Later::Reference {
                line,
                vip,
                interface,
                restrictions,
            });
            return Ok(adjusted);
        } else {
            let mut missing = Vec::new();
            if parameters.mac.is_none() {
                missing.push("--clustermac");
            }
            if parameters.total_nodes.is_none() {
                missing.push("--total-nodes");
            }
            if parameters.local_nodes.is_empty() {
                missing.push("--local-node");
            }
            if !missing.is_empty() {
                return Err(format!(
                    "missing {} for {vip}: the first rule for an address makes its group and needs --new --hashmode MODE --clustermac MAC --total-nodes N --local-node N; add them",
                    missing.join(" and ")
                ));
            }
            let Some(interface) = interface else {
                return Err(format!("missing -i for {vip}: the group answers on one interface; add -i and the port clients reach {vip} on"));
            };
            let total_nodes = parameters.total_nodes.unwrap_or(2);
            let mut local_nodes = crate::bounded::BoundedVec::new();
            for &node in &parameters.local_nodes {
                let node = local_node(node, total_nodes)?;
                if !local_nodes.contains(&node) && local_nodes.push(node).is_err() {
                    return Err(format!(
                        "more than {} --local-node values; a box serves at most that many buckets",
                        limits::CLUSTERIP_LOCAL_NODES
                    ));
                }
            }
            if self.groups.len() >= limits::CLUSTERIP_GROUPS {
                return Err(format!(
                    "{vip} would be load-sharing group {}, and Tandem holds at most {}; share fewer addresses (or give them one group each in another config)",
                    self.groups.len() + 1,
                    limits::CLUSTERIP_GROUPS
                ));
            }
            let hash = parameters.hash.unwrap_or_else(|| {
                adjusted.push(("--hashmode", String::from("no --hashmode: the group hashes the source address (sourceip), which iptables would have needed spelt out")));
                HashTuple::SourceIp
            });
            let mut group = ClusterIpGroup {
                name: group_name(vip),
                vip: IpAddr::V4(vip),
                ..ClusterIpGroup::default()
            };
            group.interface = interface;
            group.multicast_mac = parameters.mac.unwrap_or(group.multicast_mac);
            group.hash = hash;
            group.hash_init = parameters.hash_init.unwrap_or(0);
            group.total_nodes = total_nodes;
            group.local_nodes = local_nodes;
            self.groups.push((line, group));
        }
        if !restrictions.is_empty() {
            adjusted.push((CLUSTERIP, restricted(vip, &restrictions)));
        }
        Ok(adjusted)
    }

    /// `echo +N > /proc/net/ipt_CLUSTERIP/VIP` and `ip addr add VIP dev IFACE`.
    fn shell(&mut self, line: usize, text: &str, words: &[String], notes: &mut Capped) {
        let quoted = quote(text);
        if let Some(path) = words
            .iter()
            .find_map(|w| w.split_once("/proc/net/ipt_CLUSTERIP/").map(|(_, vip)| vip))
        {
            let vip = path.parse().ok();
            self.later.push(Later::Takeover { line, vip, quoted });
            return;
        }
        // ip addr add ADDRESS[/PREFIX] [brd ...] dev IFACE
        let adds = matches!(
            words.get(1).map(String::as_str),
            Some("a" | "ad" | "addr" | "address")
        ) && words.get(2).is_some_and(|w| w == "add");
        if adds {
            let vip = words
                .get(3)
                .and_then(|w| w.split('/').next())
                .and_then(|a| a.parse().ok());
            self.later.push(Later::Address { line, vip, quoted });
            return;
        }
        notes.add(line, "ip", NoteKind::NotCarried, || {
            format!("`{quoted}`: {NO_SHELL}")
        });
    }

    /// Resolves what waited for every group, adds the interfaces the groups name, and returns
    /// the config.
    fn finish(self, notes: &mut Capped) -> Config {
        for later in &self.later {
            match later {
                Later::Reference {
                    line,
                    vip,
                    interface,
                    restrictions,
                } => match self.group(*vip) {
                    Some((first, group)) => {
                        if let Some(name) = interface.as_ref().filter(|n| **n != group.interface) {
                            notes.add(*line, CLUSTERIP, NoteKind::Invalid, || format!(
                                "conflicts with line {first}, which makes group {} for {vip}: -i {name} here, -i {} there; every rule for one address must give the same -i: make them equal (rule not imported)",
                                group.name, group.interface
                            ));
                        } else if !restrictions.is_empty() {
                            notes.add(*line, CLUSTERIP, NoteKind::Adjusted, || {
                                restricted(*vip, restrictions)
                            });
                        }
                    }
                    None => notes.add(*line, CLUSTERIP, NoteKind::Invalid, || format!(
                        "missing --clustermac and --total-nodes and --local-node for {vip}: this -j CLUSTERIP without parameters refers to a group, and no rule in the file makes one for {vip}; add --new --hashmode MODE --clustermac MAC --total-nodes N --local-node N (rule not imported)"
                    )),
                },
                Later::Takeover { line, vip, quoted } => {
                    match vip.and_then(|vip| self.group(vip)) {
                        Some((_, group)) => notes.add(*line, "ipt_CLUSTERIP", NoteKind::Adjusted, || format!(
                            "`{quoted}`: a pair moves buckets of group {} itself: a box serves its failed partner's buckets and hands them back when the partner returns (what this did by hand or from heartbeat's IPaddr2); nothing to configure",
                            group.name
                        )),
                        None => notes.add(*line, "ipt_CLUSTERIP", NoteKind::NotCarried, || format!(
                            "`{quoted}`: no CLUSTERIP rule in this file shares that address, so there is no group to take over; import the file with its rule"
                        )),
                    }
                }
                Later::Address { line, vip, quoted } => {
                    match vip.and_then(|vip| self.group(vip)) {
                        Some((_, group)) => notes.add(*line, "ip addr", NoteKind::Adjusted, || format!(
                            "`{quoted}`: Tandem puts group {}'s address on {} itself",
                            group.name, group.interface
                        )),
                        None => notes.add(*line, "ip addr", NoteKind::NotCarried, || format!(
                            "`{quoted}`: addresses are not read from shell commands; add the address to its port under [[interfaces]]"
                        )),
                    }
                }
            }
        }
        let mut config = Config::default();
        let mut named: Vec<IfName> = Vec::new();
        for (line, group) in self.groups {
            if !named.contains(&group.interface) {
                named.push(group.interface.clone());
                if !is_port_role(&group.interface) {
                    notes.add(line, "-i", NoteKind::Adjusted, || format!(
                        "interface {} is kept as named and added under [[interfaces]]; the appliance names its ports by role (public, private, peer, mgmt): rename it to the port clients reach the shared address on, e.g. `set interfaces.{}.name public` and `set clusterip.{}.interface public` on the console (for every group on {})",
                        group.interface, group.interface, group.name, group.interface
                    ));
                }
            }
            // At most CLUSTERIP_GROUPS were made.
            let _ = config.clusterip.push(group);
        }
        add_referenced_interfaces(&mut config, &named);
        config
    }
}

/// The ways `interface` and `parameters` differ from `group`, as `--option here, there`.
fn differences(
    group: &ClusterIpGroup,
    interface: Option<&IfName>,
    parameters: &Parameters,
) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(name) = interface.filter(|n| **n != group.interface) {
        out.push(format!("-i {name} here, -i {} there", group.interface));
    }
    if let Some(mac) = parameters.mac.filter(|m| *m != group.multicast_mac) {
        out.push(format!(
            "--clustermac {mac} here, {} there",
            group.multicast_mac
        ));
    }
    if let Some(total) = parameters.total_nodes.filter(|t| *t != group.total_nodes) {
        out.push(format!(
            "--total-nodes {total} here, {} there",
            group.total_nodes
        ));
    }
    if let Some(hash) = parameters.hash.filter(|h| *h != group.hash) {
        out.push(format!(
            "--hashmode {} here, {} there",
            hash_name(hash),
            hash_name(group.hash)
        ));
    }
    if let Some(seed) = parameters.hash_init.filter(|s| *s != group.hash_init) {
        out.push(format!(
            "--hash-init {seed} here, {} there",
            group.hash_init
        ));
    }
    out
}

fn hash_name(hash: HashTuple) -> &'static str {
    match hash {
        HashTuple::SourceIp => "sourceip",
        HashTuple::SourceIpPort => "sourceip-sourceport",
        HashTuple::SourceIpPortDestinationPort => "sourceip-sourceport-destport",
    }
}

/// `node` as a bucket of a group of `total` buckets.
fn local_node(node: u32, total: u8) -> Result<u8, String> {
    match u8::try_from(node) {
        Ok(n) if n >= 1 && n <= total => Ok(n),
        _ => Err(format!(
            "--local-node {node} is outside 1 to --total-nodes {total}; number this box's node from 1 to {total}"
        )),
    }
}

fn list(nodes: &[u8]) -> String {
    let mut out = String::new();
    for (index, node) in nodes.iter().enumerate() {
        if index > 0 {
            out.push_str(if index + 1 == nodes.len() {
                " and "
            } else {
                ", "
            });
        }
        out.push_str(&format!("{node}"));
    }
    out
}

fn restriction_text(words: &[String]) -> String {
    quote(&words.join(" "))
}

fn restricted(vip: Ipv4Addr, restrictions: &str) -> String {
    format!("the group answers every port of {vip}; this rule shared only `{restrictions}` of its traffic (the rest reached every box)")
}

fn is_port_role(name: &str) -> bool {
    [
        PortRole::Mgmt,
        PortRole::Public,
        PortRole::Private,
        PortRole::Peer,
        PortRole::Public2,
    ]
    .iter()
    .any(|role| role.as_str() == name)
}

/// `text` shortened to [`QUOTE_CHARS`] characters for a note.
fn quote(text: &str) -> String {
    match text.char_indices().nth(QUOTE_CHARS) {
        Some((end, _)) => format!("{}...", text.get(..end).unwrap_or("")),
        None => String::from(text),
    }
}

/// Splits a line into words as a shell would: blanks separate, `"..."` (with `\"`), `'...'`
/// and `\x` quote, `#` at the start of a word comments out the rest.
fn split_words(line: &str) -> Result<Vec<String>, String> {
    const UNCLOSED: &str = "a quote is not closed; close it";
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.peek() {
            None | Some('#') => break,
            Some(_) => {}
        }
        if words.len() == MAX_WORDS {
            return Err(format!(
                "it has more than {MAX_WORDS} words, more than any iptables rule; split it"
            ));
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            match c {
                '"' => loop {
                    match chars.next() {
                        None => return Err(String::from(UNCLOSED)),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(next @ ('"' | '\\' | '$' | '`')) => word.push(next),
                            Some(next) => {
                                word.push('\\');
                                word.push(next);
                            }
                            None => return Err(String::from(UNCLOSED)),
                        },
                        Some(other) => word.push(other),
                    }
                },
                '\'' => loop {
                    match chars.next() {
                        None => return Err(String::from(UNCLOSED)),
                        Some('\'') => break,
                        Some(other) => word.push(other),
                    }
                },
                '\\' => {
                    if let Some(next) = chars.next() {
                        word.push(next);
                    }
                }
                other => word.push(other),
            }
        }
        words.push(word);
    }
    Ok(words)
}

/// The file's lines with `\`-continued ones joined, each with its first line's number.
struct LogicalLines<'a> {
    lines: core::iter::Enumerate<core::str::Lines<'a>>,
}

impl<'a> LogicalLines<'a> {
    fn new(text: &'a str) -> Self {
        LogicalLines {
            lines: text.lines().enumerate(),
        }
    }
}

/// The line without its continuation backslash, if it ends with one.
fn continued(line: &str) -> Option<&str> {
    line.trim_end()
        .strip_suffix('\\')
        .filter(|rest| !rest.ends_with('\\'))
}

impl<'a> Iterator for LogicalLines<'a> {
    type Item = (usize, Cow<'a, str>);

    fn next(&mut self) -> Option<Self::Item> {
        let (index, first) = self.lines.next()?;
        let Some(head) = continued(first) else {
            return Some((index + 1, Cow::Borrowed(first)));
        };
        let mut joined = String::from(head);
        for (_, next) in self.lines.by_ref() {
            joined.push(' ');
            match continued(next) {
                Some(part) => joined.push_str(part),
                None => {
                    joined.push_str(next);
                    break;
                }
            }
        }
        Some((index + 1, Cow::Owned(joined)))
    }
}

/// Notes with a cap: the first [`MAX_NOTES`] are kept, the rest counted per kind.
#[derive(Debug, Default)]
struct Capped {
    notes: Vec<Note>,
    /// Per kind (adjusted, not carried, invalid): how many were left out, first and last line.
    dropped: [(usize, usize, usize); 3],
}

impl Capped {
    /// Adds a note; `message` is only built when the note is kept.
    fn add(
        &mut self,
        line: usize,
        keyword: &str,
        kind: NoteKind,
        message: impl FnOnce() -> String,
    ) {
        if self.notes.len() < MAX_NOTES {
            self.notes.push(Note {
                line,
                keyword: String::from(keyword),
                kind,
                message: message(),
            });
            return;
        }
        let slot = match kind {
            NoteKind::Adjusted => 0,
            NoteKind::NotCarried => 1,
            NoteKind::Invalid => 2,
        };
        if let Some((count, first, last)) = self.dropped.get_mut(slot) {
            if *count == 0 {
                *first = line;
            }
            *count += 1;
            *first = (*first).min(line);
            *last = (*last).max(line);
        }
    }

    /// The notes in line order, with a summary per kind of those left out.
    fn finish(mut self) -> Vec<Note> {
        for (kind, (count, first, last)) in
            [NoteKind::Adjusted, NoteKind::NotCarried, NoteKind::Invalid]
                .into_iter()
                .zip(self.dropped)
        {
            if count > 0 {
                let what = match kind {
                    NoteKind::Adjusted => "adjusted",
                    NoteKind::NotCarried => "not carried over",
                    NoteKind::Invalid => "invalid",
                };
                self.notes.push(Note {
                    line: first,
                    keyword: String::from("notes"),
                    kind,
                    message: format!(
                        "{count} more lines from {first} to {last} are {what} and not listed: an import lists {MAX_NOTES} notes; import a file with only the CLUSTERIP rules (iptables-save | grep -e CLUSTERIP -e '^[*:]' -e COMMIT) to see each"
                    ),
                });
            }
        }
        self.notes.sort_by_key(|note| note.line);
        self.notes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_RULE: &str = "iptables -I INPUT -d 123.123.123.1 -i eth0 -p tcp --dport 80 -j CLUSTERIP --new --hashmode sourceip --clustermac 01:00:5E:00:00:20 --total-nodes 2 --local-node 1 --hash-init 1";

    fn only_group(imported: &Imported) -> &ClusterIpGroup {
        assert_eq!(imported.config.clusterip.len(), 1, "{:#?}", imported.notes);
        &imported.config.clusterip[0]
    }

    fn kinds(imported: &Imported) -> Vec<(usize, NoteKind)> {
        imported.notes.iter().map(|n| (n.line, n.kind)).collect()
    }

    #[test]
    fn seed_rule_makes_one_group() {
        let imported = import(SEED_RULE).unwrap();
        let group = only_group(&imported);
        assert_eq!(group.name, "cluster_123_123_123_1");
        assert_eq!(group.vip, IpAddr::V4(Ipv4Addr::new(123, 123, 123, 1)));
        assert_eq!(group.interface, "eth0");
        assert_eq!(group.multicast_mac, MacAddr([1, 0, 0x5e, 0, 0, 0x20]));
        assert_eq!(group.hash, HashTuple::SourceIp);
        assert_eq!(group.hash_init, 1);
        assert_eq!(group.total_nodes, 2);
        assert_eq!(&group.local_nodes[..], &[1]);
        assert!(imported.config.interface("eth0").is_some());
        assert!(imported.is_lossless(), "{:#?}", imported.notes);
    }

    #[test]
    fn words_follow_shell_quoting() {
        assert_eq!(
            split_words(r#"-A X -m comment --comment "a \"b\" c" -j 'LOG' x\ y # end"#).unwrap(),
            [
                "-A",
                "X",
                "-m",
                "comment",
                "--comment",
                "a \"b\" c",
                "-j",
                "LOG",
                "x y"
            ]
        );
        assert!(split_words("-A X --comment \"open").is_err());
        assert!(split_words("-A X --comment 'open").is_err());
        let many = "a ".repeat(MAX_WORDS + 1);
        assert!(split_words(&many).unwrap_err().contains("words"));
    }

    #[test]
    fn numbers_read_as_iptables_reads_them() {
        assert_eq!(number("10"), Some(10));
        assert_eq!(number("0x10"), Some(16));
        assert_eq!(number("010"), Some(8));
        assert_eq!(number("0"), Some(0));
        assert_eq!(number("4294967295"), Some(u32::MAX));
        assert_eq!(number("4294967296"), None);
        assert_eq!(number("-1"), None);
        assert_eq!(number(""), None);
        assert_eq!(number("0x"), None);
        assert_eq!(number("09"), None);
    }

    #[test]
    fn continued_lines_join() {
        let text = "iptables -A INPUT -d 10.0.0.5 -i public \\\n  -j CLUSTERIP --new --hashmode sourceip \\\n --clustermac 01:00:5e:00:00:05 --total-nodes 2 --local-node 2\n-A x";
        let lines: Vec<_> = LogicalLines::new(text).map(|(n, _)| n).collect();
        assert_eq!(lines, [1, 4]);
        let imported = import(text).unwrap();
        let group = only_group(&imported);
        assert_eq!(&group.local_nodes[..], &[2]);
        assert_eq!(group.interface, "public");
        // A role name needs no renaming note; the `-A x` line is not carried.
        assert_eq!(kinds(&imported), [(4, NoteKind::NotCarried)]);
    }

    #[test]
    fn detects_saved_and_command_lines() {
        for line in [
            "*filter",
            "*nat",
            ":INPUT ACCEPT [0:0]",
            "COMMIT",
            "-A INPUT -j ACCEPT",
            "[0:0] -A INPUT -j ACCEPT",
            SEED_RULE,
            "/sbin/iptables -t nat -A POSTROUTING -j MASQUERADE",
            "$IPTABLES -A FORWARD -j ACCEPT",
            "sudo iptables -P INPUT DROP",
            "ip6tables -A INPUT -j DROP",
        ] {
            assert!(is_iptables_line(line), "{line}");
        }
        for line in [
            "global_defs {",
            "virtual_server 10.0.0.1 80 {",
            "serial_no = 3",
            "* 2",
            "-x",
            "echo hello",
            "iptablesque",
        ] {
            assert!(!is_iptables_line(line), "{line}");
        }
    }

    #[test]
    fn later_rules_for_one_address_accumulate_local_nodes() {
        let text = "\
-A INPUT -d 10.0.0.7/32 -i eth1 -p tcp -m tcp --dport 80 -j CLUSTERIP --new --hashmode sourceip-sourceport --clustermac 01:00:5E:00:00:07 --total-nodes 4 --local-node 1 --hash-init 0
-A INPUT -d 10.0.0.7/32 -i eth1 -p tcp -m tcp --dport 443 -j CLUSTERIP --new --hashmode sourceip-sourceport --clustermac 01:00:5E:00:00:07 --total-nodes 4 --local-node 3 --hash-init 0
-A INPUT -d 10.0.0.7/32 -i eth1 -p udp -j CLUSTERIP
";
        let imported = import(text).unwrap();
        let group = only_group(&imported);
        assert_eq!(&group.local_nodes[..], &[1, 3]);
        assert_eq!(group.hash, HashTuple::SourceIpPort);
        assert!(imported.is_lossless(), "{:#?}", imported.notes);
        let joins: Vec<_> = imported
            .notes
            .iter()
            .filter(|n| n.message.contains("local node 3 joins"))
            .collect();
        assert_eq!(joins.len(), 1, "{:#?}", imported.notes);
        assert_eq!(joins[0].line, 2);
        assert!(joins[0].message.contains("buckets 1 and 3"));
        // Each rule's protocol and port are noted as dropped restrictions.
        for (line, restriction) in [
            (1, "-p tcp -m tcp --dport 80"),
            (2, "--dport 443"),
            (3, "-p udp"),
        ] {
            assert!(
                imported.notes.iter().any(|n| n.line == line
                    && n.kind == NoteKind::Adjusted
                    && n.message.contains("answers every port of 10.0.0.7")
                    && n.message.contains(restriction)),
                "line {line}: {:#?}",
                imported.notes
            );
        }
    }

    #[test]
    fn takeover_and_address_commands_are_explained() {
        let text = format!(
            "ip addr add 123.123.123.1 dev eth0\n{SEED_RULE}\necho \"+2\" > /proc/net/ipt_CLUSTERIP/123.123.123.1\necho \"-2\" > /proc/net/ipt_CLUSTERIP/10.9.9.9\nmodprobe ipt_CLUSTERIP\n"
        );
        let imported = import(&text).unwrap();
        only_group(&imported);
        let by_line = |line: usize| {
            imported
                .notes
                .iter()
                .find(|n| n.line == line)
                .unwrap_or_else(|| panic!("no note on line {line}: {:#?}", imported.notes))
        };
        assert_eq!(by_line(1).kind, NoteKind::Adjusted);
        assert!(by_line(1).message.contains("on eth0 itself"));
        assert_eq!(by_line(3).kind, NoteKind::Adjusted);
        assert!(by_line(3).message.contains("moves buckets"));
        assert_eq!(by_line(4).kind, NoteKind::NotCarried);
        assert_eq!(by_line(5).kind, NoteKind::NotCarried);
        assert_eq!(by_line(5).keyword, "modprobe");
    }

    #[test]
    fn hostile_lines_never_panic() {
        for text in [
            "-A",
            "-A INPUT -j",
            "-A INPUT -j CLUSTERIP --new --clustermac",
            "-A INPUT -d ! -j CLUSTERIP",
            "-A INPUT ! -d 1.2.3.4 -j CLUSTERIP",
            "-A INPUT -d 1.2.3.4 -i eth+ -j CLUSTERIP --new --clustermac 01:00:5e:00:00:01 --total-nodes 2 --local-node 1",
            "-A INPUT -d 1.2.3.4 -i 0123456789abcdefgh -j CLUSTERIP --new --clustermac 01:00:5e:00:00:01 --total-nodes 2 --local-node 1",
            "-A INPUT -d 1.2.3.4 -i eth0 -j CLUSTERIP --new --clustermac 01:00:5e:00:00:01 --clustermac 01:00:5e:00:00:01 --total-nodes 2 --local-node 1",
            "-A INPUT -d 1.2.3.4 -i eth0 -j CLUSTERIP --new --clustermac 01:00:5e:00:00:01 --total-nodes 2 --local-node 99999999999",
            "-A INPUT -d 1.2.3.4 -i eth0 -j CLUSTERIP --new --clustermac 01:00:5e:00:00:01 --total-nodes 2 --local-node 1 --hashmode nope",
            "-A INPUT -d 1.2.3.4 -i eth0 -j CLUSTERIP --new --clustermac 01:00:5e:00:00:01 --total-nodes 2 --local-node 1 --hash-init -5",
            "-A INPUT -d ::1 -i eth0 -j CLUSTERIP --new --clustermac 01:00:5e:00:00:01 --total-nodes 2 --local-node 1",
            "-A INPUT -d 1.2.3.0/24 -i eth0 -j CLUSTERIP --new --clustermac 01:00:5e:00:00:01 --total-nodes 2 --local-node 1",
            "-A INPUT -d 1.2.3.4,1.2.3.5 -i eth0 -j CLUSTERIP --new --clustermac 01:00:5e:00:00:01 --total-nodes 2 --local-node 1",
            "-A INPUT -d 0.0.0.0 -i eth0 -j CLUSTERIP --new --clustermac 01:00:5e:00:00:01 --total-nodes 2 --local-node 1",
            "-A INPUT -d $VIP -i eth0 -j CLUSTERIP --new --clustermac 01:00:5e:00:00:01 --total-nodes 2 --local-node 1",
            "-A INPUT -d 1.2.3.4 -i eth0 -j CLUSTERIP --new --clustermac 01:00:5e:00:00:01 --total-nodes 2 --local-node 1 --comment \"unclosed",
            "echo > /proc/net/ipt_CLUSTERIP/",
            "ip a add",
            "ip",
            ":",
            "*",
            "[",
            "[] -A",
            "iptables",
            "sudo",
            "\\",
            "iptables -A X \\",
        ] {
            let result = import(text);
            if let Ok(imported) = &result {
                assert!(imported.config.clusterip.is_empty(), "{text}: {imported:#?}");
            }
        }
    }

    #[test]
    fn notes_are_capped_with_a_summary() {
        let text = "-A INPUT -j ACCEPT\n".repeat(MAX_NOTES + 50);
        let imported = import(&text).unwrap();
        assert_eq!(imported.notes.len(), MAX_NOTES + 1);
        let summary = imported
            .notes
            .iter()
            .find(|n| n.keyword == "notes")
            .unwrap();
        assert_eq!(summary.kind, NoteKind::NotCarried);
        assert_eq!(summary.line, MAX_NOTES + 1);
        assert!(
            summary.message.starts_with(&format!(
                "50 more lines from {} to {}",
                MAX_NOTES + 1,
                MAX_NOTES + 50
            )),
            "{}",
            summary.message
        );
    }

    #[test]
    fn quotes_are_cut_on_a_character_boundary() {
        let long = "é".repeat(QUOTE_CHARS + 10);
        let quoted = quote(&long);
        assert_eq!(quoted.chars().count(), QUOTE_CHARS + 3);
        assert!(quoted.ends_with("..."));
    }
}
