//! Two files, one pair: `tandem config import director1.conf director2.conf`.
//!
//! keepalived describes a director pair as two files that mostly agree (TUM report, appendix
//! B.11). Tandem describes it as one config: the shared part plus `[pair.a]` / `[pair.b]` halves
//! with what differs per box (`model::pair`). [`merge`] imports each file as a single box, moves
//! what a half can hold into the halves (the host name, a VRRP instance's priority, start state
//! and unicast addresses, interface and management addresses), and keeps everything else as the
//! first file has it. Whatever else still differs is a [`MergeNote`] naming the field, both
//! values and what the pair config kept: nothing from the second file is dropped silently.
//!
//! lvs.cf already describes both routers (Piranha copies one file to both), so two lvs.cf files
//! are expected to be equal: the first is kept and every difference noted.

use std::fmt;
use std::format;
use std::string::String;
use std::vec::Vec;

use super::{import, Format, ImportError, Imported, Note};
use crate::compare::compare;
use crate::model::{Config, InitialState, Interface, PairHalves, VrrpInstance, VrrpOverride};

/// What a merge note says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MergeKind {
    /// The two files differ where a half cannot differ: the pair config keeps one value.
    Differs,
    /// Both values are kept, but the pair will not behave as the operator likely meant.
    Warning,
}

/// One remark about how the two files became one pair config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergeNote {
    /// Where in the Tandem config, as its TOML headers and key (`[notify] email_from`).
    pub path: String,
    pub kind: MergeKind,
    pub message: String,
}

impl fmt::Display for MergeNote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            MergeKind::Differs => "differs",
            MergeKind::Warning => "warning",
        };
        write!(f, "{}: {kind}: {}", self.path, self.message)
    }
}

/// A pair config made of two files, with each file's own notes and the merge's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportedPair {
    /// The pair config: the shared part, `pair.a` from the first file, `pair.b` from the second.
    pub config: Config,
    /// The first file's notes, as its import alone gives them.
    pub first: Vec<Note>,
    /// The second file's notes.
    pub second: Vec<Note>,
    /// How the two became one.
    pub merge: Vec<MergeNote>,
}

/// Two files that cannot be imported as one pair.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PairImportError {
    #[error("first file (box a): {0}")]
    First(ImportError),
    #[error("second file (box b): {0}")]
    Second(ImportError),
    #[error("the first file is {first} and the second {second}: pass the keepalived.conf of each of the two directors, or one lvs.cf (it describes both routers)")]
    MixedFormats {
        first: &'static str,
        second: &'static str,
    },
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Keepalived => "keepalived.conf",
        Format::Lvs => "lvs.cf",
        Format::Iptables => "iptables rules",
    }
}

/// Imports the files of box a (`first`) and box b (`second`) as one pair config.
pub fn import_pair(
    first: &str,
    second: &str,
    format: Option<Format>,
) -> Result<ImportedPair, PairImportError> {
    let formats = match format {
        Some(format) => [Some(format), Some(format)],
        None => [super::detect(first), super::detect(second)],
    };
    if let [Some(a), Some(b)] = formats {
        if a != b {
            return Err(PairImportError::MixedFormats {
                first: format_name(a),
                second: format_name(b),
            });
        }
    }
    let a = import(first, formats[0]).map_err(PairImportError::First)?;
    let b = import(second, formats[1]).map_err(PairImportError::Second)?;
    Ok(merge(a, b))
}

/// Makes one pair config of two single-file imports, box a's first (see the module doc).
pub fn merge(first: Imported, second: Imported) -> ImportedPair {
    let mut merge = Vec::new();
    let config = if first.config.pair.is_some() || second.config.pair.is_some() {
        keep_first(&first.config, &second.config, &mut merge)
    } else {
        halves(&first.config, &second.config, &mut merge)
    };
    ImportedPair {
        config,
        first: first.notes,
        second: second.notes,
        merge,
    }
}

/// Two files that each describe the pair already (lvs.cf): the first, with every difference
/// noted.
fn keep_first(a: &Config, b: &Config, notes: &mut Vec<MergeNote>) -> Config {
    differences(a, b, notes);
    for note in notes.iter_mut() {
        note.message.push_str(
            " (each lvs.cf describes both routers; pulse expected the same file on both)",
        );
    }
    a.clone()
}

/// The pair config of two single-box configs: the shared part is `a`'s with the per-box
/// fields taken out into the halves; `b`, with the same fields taken out, must equal it.
fn halves(a: &Config, b: &Config, notes: &mut Vec<MergeNote>) -> Config {
    let mut shared = a.clone();
    let mut other = b.clone();
    let mut pair = PairHalves::default();

    if a.system.hostname != b.system.hostname {
        shared.system.hostname.clear();
        pair.a.hostname = a.system.hostname.clone();
        pair.b.hostname = b.system.hostname.clone();
    } else if !a.system.hostname.is_empty() {
        notes.push(MergeNote {
            path: String::from("[system] hostname"),
            kind: MergeKind::Warning,
            message: format!(
                "both files name the box \"{}\"; each box should have its own: set pair.b.hostname",
                a.system.hostname
            ),
        });
    }
    other.system.hostname = shared.system.hostname.clone();

    if a.management.address != b.management.address {
        shared.management.address = None;
        pair.a.management_address = a.management.address;
        pair.b.management_address = b.management.address;
    }
    other.management.address = shared.management.address;

    for interface in shared.interfaces.as_mut_slice() {
        let Some(theirs) = other
            .interfaces
            .as_mut_slice()
            .iter_mut()
            .find(|i| i.name == interface.name)
        else {
            continue;
        };
        if interface.addresses == theirs.addresses {
            continue;
        }
        for (half, addresses) in [
            (&mut pair.a, &interface.addresses),
            (&mut pair.b, &theirs.addresses),
        ] {
            let _ = half.interfaces.push(Interface {
                name: interface.name.clone(),
                addresses: addresses.clone(),
                ..Interface::default()
            });
        }
        interface.addresses = Default::default();
        theirs.addresses = Default::default();
    }

    for instance in shared.vrrp.as_mut_slice() {
        let Some(theirs) = other
            .vrrp
            .as_mut_slice()
            .iter_mut()
            .find(|v| v.name == instance.name)
        else {
            continue;
        };
        let (over_a, over_b) = split_instance(instance, theirs, notes);
        for (half, over) in [(&mut pair.a, over_a), (&mut pair.b, over_b)] {
            if over
                != (VrrpOverride {
                    name: over.name.clone(),
                    ..VrrpOverride::default()
                })
            {
                let _ = half.vrrp.push(over);
            }
        }
    }

    // Load sharing: a pair config lists no buckets per group (box a serves the odd ones,
    // box b the even ones: `Config::for_box`), so each file's `local_nodes` go.
    for group in shared.clusterip.as_mut_slice() {
        let theirs = other
            .clusterip
            .as_mut_slice()
            .iter_mut()
            .find(|g| g.name == group.name);
        let mine: Vec<u8> = group.local_nodes.iter().copied().collect();
        let split_a: Vec<u8> = (1..=group.total_nodes).step_by(2).collect();
        let split_b: Vec<u8> = (2..=group.total_nodes).step_by(2).collect();
        let same_split = match &theirs {
            Some(theirs) => {
                let mut a_sorted = mine.clone();
                a_sorted.sort_unstable();
                let mut b_sorted: Vec<u8> = theirs.local_nodes.iter().copied().collect();
                b_sorted.sort_unstable();
                a_sorted == split_a && b_sorted == split_b
            }
            None => false,
        };
        if !mine.is_empty() && !same_split {
            notes.push(MergeNote {
                path: format!("[[clusterip]] {} local_nodes", group.name),
                kind: MergeKind::Warning,
                message: format!(
                    "the files split the {} buckets their own way ({mine:?} on the first box); the pair splits them odd to box a, even to box b",
                    group.total_nodes
                ),
            });
        }
        group.local_nodes = Default::default();
        if let Some(theirs) = theirs {
            theirs.local_nodes = Default::default();
        }
    }

    differences(&shared, &other, notes);
    shared.pair = Some(pair);
    shared
}

/// Moves what differs between two files' instance of the same name into overrides; both
/// instances are left with the shared values.
fn split_instance(
    ours: &mut VrrpInstance,
    theirs: &mut VrrpInstance,
    notes: &mut Vec<MergeNote>,
) -> (VrrpOverride, VrrpOverride) {
    let mut a = VrrpOverride {
        name: ours.name.clone(),
        ..VrrpOverride::default()
    };
    let mut b = a.clone();
    if ours.initial_state == InitialState::Master
        && theirs.initial_state == InitialState::Master
        && ours.priority == theirs.priority
    {
        notes.push(MergeNote {
            path: format!("[[vrrp]] name = \"{}\"", ours.name),
            kind: MergeKind::Warning,
            message: format!(
                "both files start as MASTER with priority {}: both boxes take the virtual addresses at start-up until the adverts elect one (the higher primary address wins); give the box meant to hold them a higher priority: set pair.a.vrrp.{}.priority {}",
                ours.priority,
                ours.name,
                ours.priority.saturating_add(50).min(254)
            ),
        });
    }
    if ours.priority != theirs.priority {
        a.priority = Some(ours.priority);
        b.priority = Some(theirs.priority);
        // The lower one: a box running the shared part alone (not paired yet) does not
        // outbid a configured master.
        ours.priority = ours.priority.min(theirs.priority);
    }
    if ours.initial_state != theirs.initial_state {
        a.initial_state = Some(ours.initial_state);
        b.initial_state = Some(theirs.initial_state);
        ours.initial_state = InitialState::Backup;
    }
    if ours.unicast_source != theirs.unicast_source {
        a.unicast_source = ours.unicast_source;
        b.unicast_source = theirs.unicast_source;
        ours.unicast_source = None;
    }
    if ours.unicast_peers != theirs.unicast_peers {
        // A half's empty list keeps the shared one: the shared list is empty, so a box whose
        // file had no peers still has none.
        a.unicast_peers = core::mem::take(&mut ours.unicast_peers);
        b.unicast_peers = theirs.unicast_peers.clone();
    }
    theirs.priority = ours.priority;
    theirs.initial_state = ours.initial_state;
    theirs.unicast_source = ours.unicast_source;
    theirs.unicast_peers = ours.unicast_peers.clone();
    (a, b)
}

/// Fields that identify a list item in a note (as `compare` matches items).
const IDENTITY: [&str; 5] = ["name", "address", "port", "protocol", "fwmark"];

/// A table or list item only one file has, as `compare` renders it (`- [[vrrp.vips]]`, then
/// its fields).
struct Item {
    /// Where it sits: its parent's headers.
    path: String,
    sign: char,
    header: String,
    depth: usize,
    /// Its own fields that say which item it is.
    identity: Vec<String>,
    /// Its other fields and nested tables.
    more: usize,
    /// Inside a nested table of the item: its fields do not identify it.
    nested: bool,
}

/// How deep a header sits: `[[virtual_services.real_servers]] ...` is 2.
fn depth_of(header: &str) -> usize {
    header
        .trim_start_matches('[')
        .split(']')
        .next()
        .unwrap_or_default()
        .split('.')
        .count()
}

/// One note per difference between the shared parts, from [`compare`]'s structural lines:
/// a field both files have with two values, or a field, table or list item only one has.
fn differences(a: &Config, b: &Config, notes: &mut Vec<MergeNote>) {
    let mut context: Vec<String> = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    let mut item: Option<Item> = None;
    for line in compare(a, b) {
        if line.starts_with('[') {
            close(item.take(), notes);
            flush(&context, &mut fields, notes);
            context.truncate(depth_of(&line).saturating_sub(1));
            context.push(line);
            continue;
        }
        let sign = line.chars().next().unwrap_or('+');
        let body = line.get(2..).unwrap_or_default();
        if body.starts_with('[') {
            let depth = depth_of(body);
            if let Some(open) = item.as_mut().filter(|open| depth > open.depth) {
                open.nested = true;
                open.more += 1;
                continue;
            }
            close(item.take(), notes);
            flush(&context, &mut fields, notes);
            let parent = context.get(..depth.saturating_sub(1)).unwrap_or(&context);
            item = Some(Item {
                path: parent.join(" "),
                sign,
                header: String::from(body),
                depth,
                identity: Vec::new(),
                more: 0,
                nested: false,
            });
            continue;
        }
        match item.as_mut() {
            Some(open) => {
                let key = body.split(" = ").next().unwrap_or_default();
                if !open.nested && IDENTITY.contains(&key) && !body.ends_with(" = \"\"") {
                    open.identity.push(String::from(body));
                } else {
                    open.more += 1;
                }
            }
            None => fields.push(line),
        }
    }
    close(item.take(), notes);
    flush(&context, &mut fields, notes);
}

/// The note for an item only one file has.
fn close(item: Option<Item>, notes: &mut Vec<MergeNote>) {
    let Some(item) = item else {
        return;
    };
    let mut what = item.header;
    if !item.identity.is_empty() {
        what = format!("{what} {}", item.identity.join(", "));
    }
    if item.more > 0 {
        what = format!("{what} (and {} more lines of it)", item.more);
    }
    let message = if item.sign == '-' {
        format!("only the first file has {what}; the pair config keeps it, so both boxes have it")
    } else {
        format!("only the second file has {what}; it is NOT in the pair config (a [pair] half cannot hold it): add it to the shared part if both boxes should have it")
    };
    notes.push(MergeNote {
        path: top_level(&item.path),
        kind: MergeKind::Differs,
        message,
    });
}

fn top_level(path: &str) -> String {
    if path.is_empty() {
        String::from("(top level)")
    } else {
        String::from(path)
    }
}

/// The `key` and value of a `- key = value` / `+ key = value` line.
fn key_of(line: &str) -> (&str, &str) {
    let body = line.get(2..).unwrap_or_default();
    body.split_once(" = ").unwrap_or((body, ""))
}

/// Notes for the `-` (first file) and `+` (second file) field lines under `context`: one per
/// field both have, one for the fields only one has.
fn flush(context: &[String], lines: &mut Vec<String>, notes: &mut Vec<MergeNote>) {
    if lines.is_empty() {
        return;
    }
    let lines = core::mem::take(lines);
    let path = context.join(" ");
    let plus: Vec<&String> = lines.iter().filter(|l| l.starts_with('+')).collect();
    let mut used = vec![false; plus.len()];
    let mut only_first = Vec::new();
    for line in lines.iter().filter(|l| l.starts_with('-')) {
        let (key, first) = key_of(line);
        let found = plus
            .iter()
            .enumerate()
            .find(|(index, other)| used.get(*index) == Some(&false) && key_of(other).0 == key);
        match found {
            Some((index, other)) => {
                if let Some(slot) = used.get_mut(index) {
                    *slot = true;
                }
                let second = key_of(other).1;
                let path = if path.is_empty() {
                    String::from(key)
                } else {
                    format!("{path} {key}")
                };
                notes.push(MergeNote {
                    path,
                    kind: MergeKind::Differs,
                    message: format!(
                        "the first file has {first}, the second {second}; the pair config keeps the first file's for both boxes (a [pair] half cannot hold {key})"
                    ),
                });
            }
            None => only_first.push(line.get(2..).unwrap_or_default()),
        }
    }
    let only_second: Vec<&str> = plus
        .iter()
        .enumerate()
        .filter(|(index, _)| used.get(*index) == Some(&false))
        .map(|(_, line)| line.get(2..).unwrap_or_default())
        .collect();
    if !only_first.is_empty() {
        notes.push(MergeNote {
            path: top_level(&path),
            kind: MergeKind::Differs,
            message: format!(
                "only the first file has {}; the pair config keeps it for both boxes",
                only_first.join(", ")
            ),
        });
    }
    if !only_second.is_empty() {
        notes.push(MergeNote {
            path: top_level(&path),
            kind: MergeKind::Differs,
            message: format!(
                "only the second file has {}; it is NOT in the pair config (a [pair] half cannot hold it): add it to the shared part if both boxes should have it",
                only_second.join(", ")
            ),
        });
    }
}
