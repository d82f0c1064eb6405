//! Import of keepalived.conf, Piranha lvs.cf and iptables (CLUSTERIP rules) into the Tandem
//! model.
//!
//! Import maps everything it can and reports every keyword it did not carry over, with its line:
//! nothing is dropped silently. A keyword whose effect Tandem keeps in another form (e.g. `serial_no`
//! becomes the blob generation) is reported as [`NoteKind::Adjusted`].
//!
//! One keepalived.conf is one box; [`pair::import_pair`] makes one pair config of the two
//! directors' files. One lvs.cf with an active backup is already a pair ([`lvs_pair`]).
//! An iptables file (iptables-save output or `iptables` command lines) gives a box's CLUSTERIP
//! load-sharing groups ([`iptables`]).

pub mod iptables;
pub mod keepalived;
pub mod lvs;
pub(crate) mod lvs_ftp;
pub(crate) mod lvs_pair;
pub mod pair;

pub use pair::{import_pair, ImportedPair, MergeKind, MergeNote, PairImportError};

use std::fmt;
use std::string::String;
use std::vec::Vec;

use crate::model::{Config, IfName, Interface};

/// Largest input accepted, in bytes.
pub const MAX_INPUT_BYTES: usize = 4 << 20;
/// Deepest block nesting accepted.
pub const MAX_DEPTH: usize = 16;

/// What happened to a keyword.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum NoteKind {
    /// Carried over in an equivalent form; nothing is lost.
    Adjusted,
    /// Not carried over: Tandem has no equivalent.
    NotCarried,
    /// The value is malformed and was skipped.
    Invalid,
}

/// One remark about the import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// 1-based line of the source.
    pub line: usize,
    pub keyword: String,
    pub kind: NoteKind,
    pub message: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            NoteKind::Adjusted => "adjusted",
            NoteKind::NotCarried => "not carried over",
            NoteKind::Invalid => "invalid",
        };
        write!(
            f,
            "line {}: {}: {kind}: {}",
            self.line, self.keyword, self.message
        )
    }
}

/// The imported config and the remarks about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub config: Config,
    pub notes: Vec<Note>,
}

impl Imported {
    /// Whether every keyword was carried over (notes are at most [`NoteKind::Adjusted`]).
    pub fn is_lossless(&self) -> bool {
        self.notes.iter().all(|n| n.kind == NoteKind::Adjusted)
    }
}

/// A file that cannot be imported at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    #[error("input is {len} bytes, above the {max}-byte maximum for an imported file")]
    TooLarge { len: usize, max: usize },
    #[error("line {line}: {message}")]
    Syntax { line: usize, message: String },
    #[error("cannot tell whether this is keepalived.conf, lvs.cf or iptables rules; pass --format keepalived, --format lvs or --format iptables")]
    UnknownFormat,
}

/// A source format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Keepalived,
    Lvs,
    /// iptables-save output or a file of `iptables` command lines; only CLUSTERIP rules map.
    Iptables,
}

impl Format {
    /// Parses `keepalived`, `lvs` or `iptables`.
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "keepalived" | "keepalived.conf" => Some(Format::Keepalived),
            "lvs" | "lvs.cf" | "piranha" => Some(Format::Lvs),
            "iptables" | "iptables-save" => Some(Format::Iptables),
            _ => None,
        }
    }
}

/// Guesses the format of `text` from its first statement: lvs.cf uses `key = value`,
/// keepalived.conf blocks, iptables-save `*table`, `:CHAIN` and `-A` lines (or `iptables`
/// commands). A file whose first statement is none of these (a shell script that sets an address
/// before its `iptables` lines) is iptables if any line is an iptables rule.
pub fn detect(text: &str) -> Option<Format> {
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let mut words = line.split_whitespace();
        let mut first = words.next().unwrap_or("");
        // keepalived's `@ID ...` lines (read when it runs with `-i ID`).
        if first.starts_with('@') {
            first = words.next().unwrap_or("");
        }
        // keepalived's top-level keywords (`install_keyword_root`) and `include`.
        if matches!(
            first,
            "global_defs"
                | "vrrp_instance"
                | "vrrp_sync_group"
                | "virtual_server"
                | "virtual_server_group"
                | "vrrp_script"
                | "include"
                | "includer"
                | "includem"
                | "includew"
                | "includeb"
                | "includea"
                | "static_ipaddress"
                | "static_routes"
                | "static_rules"
                | "net_namespace"
                | "net_namespace_ipvs"
                | "namespace_with_ipsets"
                | "instance"
                | "use_pid_dir"
                | "child_wait_time"
                | "linkbeat_use_polling"
                | "linkbeat_interfaces"
                | "interface_up_down_delays"
                | "track_file"
                | "vrrp_track_file"
                | "vrrp_track_process"
                | "track_group"
                | "garp_group"
                | "bfd_instance"
                | "SSL"
        ) {
            return Some(Format::Keepalived);
        }
        if matches!(
            first,
            "serial_no"
                | "primary"
                | "service"
                | "virtual"
                | "backup"
                | "network"
                | "heartbeat"
                | "nat_router"
        ) {
            return Some(Format::Lvs);
        }
        if iptables::is_iptables_line(line) {
            return Some(Format::Iptables);
        }
        if line.contains('=') {
            return Some(Format::Lvs);
        }
        return text
            .lines()
            .any(|line| iptables::is_iptables_line(line.trim()))
            .then_some(Format::Iptables);
    }
    None
}

/// Imports `text` in `format` (detected when None).
pub fn import(text: &str, format: Option<Format>) -> Result<Imported, ImportError> {
    match format.or_else(|| detect(text)) {
        Some(Format::Keepalived) => keepalived::import(text),
        Some(Format::Lvs) => lvs::import(text),
        Some(Format::Iptables) => iptables::import(text),
        None => Err(ImportError::UnknownFormat),
    }
}

/// Collects notes during an import.
#[derive(Debug, Default)]
pub(crate) struct Notes(pub Vec<Note>);

impl Notes {
    pub fn add(&mut self, line: usize, keyword: &str, kind: NoteKind, message: impl Into<String>) {
        self.0.push(Note {
            line,
            keyword: keyword.into(),
            kind,
            message: message.into(),
        });
    }
    pub fn not_carried(&mut self, line: usize, keyword: &str, message: impl Into<String>) {
        self.add(line, keyword, NoteKind::NotCarried, message);
    }
    pub fn invalid(&mut self, line: usize, keyword: &str, message: impl Into<String>) {
        self.add(line, keyword, NoteKind::Invalid, message);
    }
    pub fn adjusted(&mut self, line: usize, keyword: &str, message: impl Into<String>) {
        self.add(line, keyword, NoteKind::Adjusted, message);
    }
}

/// Truncating conversion into a bounded string, reporting when it does not fit.
pub(crate) fn bounded<const N: usize>(
    text: &str,
    line: usize,
    keyword: &str,
    notes: &mut Notes,
) -> Option<heapless::String<N>> {
    match heapless::String::<N>::try_from(text) {
        Ok(value) => Some(value),
        Err(_) => {
            notes.invalid(
                line,
                keyword,
                format!("\"{text}\" is longer than {N} bytes; shorten it"),
            );
            None
        }
    }
}

/// Adds an interface entry for every name the config references but does not describe, so that
/// references validate (keepalived.conf and lvs.cf do not list interfaces). Alias labels
/// (`eth0:1`) count as their base interface.
pub(crate) fn add_referenced_interfaces(config: &mut Config, names: &[IfName]) {
    for name in names {
        let base = name.split(':').next().unwrap_or(name.as_str());
        if base.is_empty() || config.interface(base).is_some() || config.bond(base).is_some() {
            continue;
        }
        let Ok(base) = IfName::try_from(base) else {
            continue;
        };
        let _ = config.interfaces.push(Interface {
            name: base,
            ..Interface::default()
        });
    }
}
