//! Path edits of a config, `set PATH VALUE` and `delete PATH`: how an operator builds a candidate
//! (VyOS / Junos style) before compare, preview and commit.
//!
//! # Paths
//!
//! A path is dot-separated over the TOML form of the model (what `tandem config show` prints):
//!
//! - a table field by its key: `system.hostname`, `vrrp.web_vip.garp.master_delay_s`;
//! - a list item by its `name`: `vrrp.web_vip`, `virtual_services.http.real_servers.rs3`;
//! - an item without a name by its `address` (`vrrp.web_vip.vips.10.0.0.10`: the dots of an
//!   address need no quotes), a plain value by itself (`vrrp.web_vip.unicast_peers.10.0.0.3`),
//!   or any item by its 0-based position `#N` (`fwmark_rules.#0`, `virtual_services.#2.port`);
//! - a segment in double quotes is one segment, dots and all: `vrrp."web.vip".priority`.
//!
//! # Values
//!
//! A value is read as a TOML value when it parses and fits (`150`, `true`, `["10.0.0.1/24"]`,
//! `{ address = "10.0.0.9", prefix = 24 }`), otherwise as text (`box-a`, `10.0.0.3`).
//!
//! - `set` through a named item that does not exist creates it with defaults and that name
//!   (`set virtual_services.http.real_servers.rs3.address 10.0.0.3`).
//! - `set` on a list with one value appends it (once); an array value replaces the whole list. A
//!   bare value appended to a list of tables becomes the new item's `address`
//!   (`set vrrp.web_vip.vips 10.0.0.12`).
//! - `set` under `pair` in a config without halves creates both, empty, first
//!   (`set pair.a.vrrp.web_vip.priority 150`: box a's override of instance `web_vip`).
//! - `set PATH none` clears an optional field, like `delete PATH`; on a field that always has a
//!   value, `none` is text (the enum value `none` of `arp_validate`).
//! - `delete` removes a list item or a value from a list, clears an optional field (a no-op when it
//!   is already clear) or empties a list. A field that always has a value cannot be deleted: the
//!   error names its default.
//!
//! Both are pure: the input is never changed and an error returns nothing else. They check that
//! the result fits the model (field names, types, list maxima) but not its semantic rules: that is
//! [`crate::validate()`], run on the candidate before commit.

use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use toml::{Table, Value};

use crate::model::Config;
use crate::tree::quote;

/// Existing items listed in a "no such item" error, at most.
const LISTED_ITEMS: usize = 20;

/// Why an edit was refused. Each message names the path and says what would work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    /// The path does not parse.
    #[error("`{path}`: {reason}")]
    BadPath { path: String, reason: String },
    /// A key that the model does not have at that level.
    #[error("{path}: unknown field `{field}`; the fields here are: {}", listing(.valid))]
    UnknownField {
        path: String,
        field: String,
        valid: Vec<String>,
    },
    /// No list item has that name, address or position.
    #[error("{path}: no item `{item}` here; existing: {} (name an item, or #N for its position)", listing(.existing))]
    NoSuchItem {
        path: String,
        item: String,
        existing: Vec<String>,
    },
    /// More than one item matches (same address): name it by position.
    #[error("{path}: `{item}` matches more than one item; use its position: {}", .positions.join(", "))]
    Ambiguous {
        path: String,
        item: String,
        positions: Vec<String>,
    },
    /// The value does not fit the field.
    #[error("{path}: expected {expected}, got {got}")]
    WrongType {
        path: String,
        expected: String,
        got: String,
    },
    /// The path goes on below a plain value.
    #[error("{path} is a value, not a section: nothing is inside it; use `set {path} VALUE`")]
    IntoScalar { path: String },
    /// Delete of a field that always has a value.
    #[error(
        "{path} cannot be deleted: it always has a value; set it instead (its default is {default})"
    )]
    Required { path: String, default: String },
    /// Any other refusal by the model (a text too long, a list above its maximum).
    #[error("{path}: {reason}")]
    Invalid { path: String, reason: String },
}

fn listing(items: &[String]) -> String {
    if items.is_empty() {
        String::from("none")
    } else {
        items.join(", ")
    }
}

/// Sets the field or list item at `path` to `value` (see the module doc for paths and values).
pub fn set(config: &Config, path: &str, value: &str) -> Result<Config, EditError> {
    let segments = parse_path(path)?;
    let tree = to_tree(config, &segments)?;
    let value = value.trim();
    let mut first_error = None;
    if value == "none" {
        match clear(config, &tree, &segments) {
            // A field that cannot be cleared: `none` may be an enum value, tried as text below.
            Err(
                error @ (EditError::Required { .. }
                | EditError::WrongType { .. }
                | EditError::Invalid { .. }),
            ) => first_error = Some(error),
            done => return done,
        }
    }
    let tree = seed_pair(tree, &segments)?;
    // Readings of the value, most literal first; the first error is the one reported.
    let text = Value::String(value.to_string());
    let parsed = value.parse::<Value>().unwrap_or_else(|_| text.clone());
    let mut address = Table::new();
    address.insert(String::from("address"), text.clone());
    let mut candidates = vec![(parsed.clone(), false)];
    if !parsed.is_str() {
        candidates.push((text.clone(), false));
    }
    candidates.push((text, true));
    if !parsed.is_array() {
        // A list the tree does not hold yet (in a new item or optional table) starts with it.
        candidates.push((Value::Array(vec![parsed]), false));
        candidates.push((Value::Array(vec![Value::Table(address)]), false));
    }
    for (candidate, as_address) in candidates {
        match assign(
            config,
            tree.clone(),
            &segments,
            candidate,
            as_address,
            value,
        ) {
            Ok(config) => return Ok(config),
            Err(error @ (EditError::WrongType { .. } | EditError::Invalid { .. })) => {
                first_error.get_or_insert(error);
            }
            Err(error) => return Err(first_error.unwrap_or(error)),
        }
    }
    Err(first_error.unwrap_or_else(|| EditError::Invalid {
        path: path.to_string(),
        reason: String::from("the value does not fit here"),
    }))
}

/// Deletes the list item at `path`, or clears the optional field or list at `path`.
pub fn delete(config: &Config, path: &str) -> Result<Config, EditError> {
    let segments = parse_path(path)?;
    clear(config, &to_tree(config, &segments)?, &segments)
}

pub use crate::entry_kind::EntryKind;

/// One child of a browsed node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The path segment that names it below the browsed path (quoted when it holds a dot and
    /// is a key).
    pub segment: String,
    pub kind: EntryKind,
    /// Its value on one line (a value), or a summary (a table, list or item).
    pub shown: String,
}

/// The children of the node at `path` (empty: the top level), set fields and unset ones
/// alike: what a console UI lists so an operator can reach every field of the model.
pub fn browse(config: &Config, path: &str) -> Result<Vec<Entry>, EditError> {
    if path.trim().is_empty() {
        let mut entries = Vec::new();
        for key in TOP_LEVEL {
            let value = top_level_value(config, key).map_err(|reason| EditError::Invalid {
                path: (*key).to_string(),
                reason,
            })?;
            entries.push(entry_for(key, value.as_ref()));
        }
        return Ok(entries);
    }
    let segments = parse_path(path)?;
    let key = segments.first().map_or("", String::as_str);
    if !TOP_LEVEL.contains(&key) {
        return Err(EditError::UnknownField {
            path: key.to_string(),
            field: key.to_string(),
            valid: TOP_LEVEL.iter().map(|k| (*k).to_string()).collect(),
        });
    }
    let tree = seed_pair(to_tree(config, &segments)?, &segments)?;
    let mut root = tree.clone();
    let resolved = resolve(&mut root, &segments, false)?;
    let parent = node_mut(&mut root, &resolved.steps).ok_or_else(|| lost(&resolved))?;
    let node = match (parent, &resolved.target) {
        (Value::Table(table), Target::Key(key)) => table
            .get(key)
            .cloned()
            .unwrap_or_else(|| Value::Table(Table::new())),
        (Value::Array(items), Target::Item(index)) => {
            items.get(*index).cloned().ok_or_else(|| lost(&resolved))?
        }
        (Value::Array(items), Target::NewItem(name)) => {
            return Err(EditError::NoSuchItem {
                path: resolved.path(),
                item: name.clone(),
                existing: labels(items),
            })
        }
        _ => return Err(lost(&resolved)),
    };
    match node {
        Value::Table(table) => {
            let mut entries: Vec<Entry> = table
                .iter()
                .map(|(key, value)| entry_for(key, Some(value)))
                .collect();
            for field in field_names(config, &tree, &segments)? {
                if !table.contains_key(&field) {
                    entries.push(entry_for(&field, None));
                }
            }
            Ok(entries)
        }
        Value::Array(items) => {
            let labels: Vec<String> = items
                .iter()
                .enumerate()
                .map(|(index, item)| label_of(item, index))
                .collect();
            Ok(items
                .iter()
                .enumerate()
                .map(|(index, item)| {
                    // A label two items share (services on one address, different ports) would
                    // be ambiguous in a path: those items go by position.
                    let label = &labels[index];
                    let shared = labels.iter().filter(|other| *other == label).count() > 1;
                    Entry {
                        segment: if shared {
                            format!("#{index}")
                        } else {
                            label.clone()
                        },
                        kind: EntryKind::Item,
                        shown: summary(item),
                    }
                })
                .collect())
        }
        _ => Err(EditError::IntoScalar {
            path: resolved.path(),
        }),
    }
}

/// The fields the model has at the table `segments` names: the deserializer lists them when a
/// probe key it does not know is put there. Empty where the table is not a plain struct.
fn field_names(
    config: &Config,
    tree: &Value,
    segments: &[String],
) -> Result<Vec<String>, EditError> {
    const PROBE: &str = "__fields__";
    let mut root = tree.clone();
    let mut probe: Vec<String> = segments.to_vec();
    probe.push(String::from(PROBE));
    let resolved = resolve(&mut root, &probe, false)?;
    let Some(Value::Table(parent)) = node_mut(&mut root, &resolved.steps) else {
        return Ok(Vec::new());
    };
    parent.insert(String::from(PROBE), Value::Integer(0));
    match from_tree(config, root, &resolved, "") {
        Err(EditError::UnknownField { valid, .. }) => Ok(valid),
        _ => Ok(Vec::new()),
    }
}

fn entry_for(key: &str, value: Option<&Value>) -> Entry {
    let segment = if key.contains('.') {
        quote(key)
    } else {
        key.to_string()
    };
    let (kind, shown) = match value {
        None => (EntryKind::Unset, String::new()),
        Some(table @ Value::Table(_)) => (EntryKind::Table, summary(table)),
        Some(Value::Array(items)) if items.is_empty() || items.iter().any(Value::is_table) => {
            (EntryKind::List, format!("{} items", items.len()))
        }
        Some(other) => (EntryKind::Value, inline(other)),
    };
    Entry {
        segment,
        kind,
        shown,
    }
}

fn label_of(item: &Value, index: usize) -> String {
    match item {
        Value::Table(table) => ["name", "address"]
            .into_iter()
            .filter_map(|key| table.get(key).and_then(Value::as_str))
            .find(|label| !label.is_empty())
            .map_or_else(|| format!("#{index}"), str::to_string),
        Value::String(text) => text.clone(),
        other => inline(other),
    }
}

/// A table or item on one line, at most ~60 characters: its plain fields inline.
fn summary(value: &Value) -> String {
    const WIDTH: usize = 60;
    let Value::Table(table) = value else {
        return inline(value);
    };
    let mut text = String::new();
    for (key, value) in table {
        if value.is_table() || key == "name" {
            continue;
        }
        if value
            .as_array()
            .is_some_and(|items| items.iter().any(Value::is_table))
        {
            continue;
        }
        let part = format!("{key}={}", inline(value));
        if text.len() + part.len() + 1 > WIDTH {
            text.push_str(" ...");
            break;
        }
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&part);
    }
    text
}

/// Splits a path at dots outside double quotes.
fn parse_path(path: &str) -> Result<Vec<String>, EditError> {
    let bad = |reason: &str| EditError::BadPath {
        path: path.to_string(),
        reason: reason.to_string(),
    };
    let path = path.trim();
    if path.is_empty() {
        return Err(bad(
            "empty path: name what to change, e.g. `system.hostname`",
        ));
    }
    let mut segments = Vec::new();
    let mut current = String::new();
    let (mut quoted, mut was_quoted) = (false, false);
    for c in path.chars() {
        match c {
            '"' => (quoted, was_quoted) = (!quoted, true),
            '.' if !quoted => {
                if current.is_empty() && !was_quoted {
                    return Err(bad("empty segment: remove the extra dot"));
                }
                segments.push(core::mem::take(&mut current));
                was_quoted = false;
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err(bad("unclosed double quote"));
    }
    if current.is_empty() && !was_quoted {
        return Err(bad("empty segment: remove the extra dot"));
    }
    segments.push(current);
    Ok(segments)
}

/// The part of `config` a path edits, as a TOML tree: its top-level field alone in a table (the
/// rest of a large config is never converted). An unknown field gives an empty table.
fn to_tree(config: &Config, segments: &[String]) -> Result<Value, EditError> {
    let key = segments.first().map_or("", String::as_str);
    let mut root = Table::new();
    let value = top_level_value(config, key).map_err(|error| EditError::Invalid {
        path: key.to_string(),
        reason: format!("cannot be written as TOML: {error}"),
    })?;
    if let Some(value) = value {
        root.insert(key.to_string(), value);
    }
    Ok(Value::Table(root))
}

/// A `set` under `pair` when the config has no halves yet starts from empty halves, so that
/// `pair.a.vrrp.web_vip.priority` finds the list `pair.a.vrrp` to create `web_vip` in.
fn seed_pair(tree: Value, segments: &[String]) -> Result<Value, EditError> {
    let absent = tree.as_table().is_some_and(|t| !t.contains_key("pair"));
    if segments.first().is_some_and(|key| key == "pair") && absent {
        let seeded = Config {
            pair: Some(crate::model::PairHalves::default()),
            ..Config::default()
        };
        return to_tree(&seeded, segments);
    }
    Ok(tree)
}

/// Back to the model: the tree holds one top-level field, which replaces that field of `config`.
/// A refusal is blamed on the edited path.
///
/// The tree goes through TOML text and the model's text deserializer, which the binary carries
/// anyway for config files: deserializing the model from a `toml::Value` would add a second
/// instantiation of every model type (~190 KB of the 4 MiB the appliance binary may weigh).
fn from_tree(
    config: &Config,
    root: Value,
    resolved: &Resolved,
    text: &str,
) -> Result<Config, EditError> {
    let written = toml::to_string(&root).map_err(|error| EditError::Invalid {
        path: resolved.path(),
        reason: format!("cannot be written as TOML: {error}"),
    })?;
    let partial = toml::from_str::<Config>(&written)
        .map_err(|error| explain(&value_style(&error, &written), resolved, text))?;
    let mut edited = config.clone();
    let key = resolved.shown.first().map_or("", |(key, _)| key.as_str());
    take_top_level(&mut edited, partial, key);
    Ok(edited)
}

/// A text deserializer's error as the value deserializer words it: the reason, then
/// "in `table.key`" (the path of the line at fault, without list positions).
fn value_style(error: &toml::de::Error, written: &str) -> String {
    let reason = error.message().trim();
    let unknown_field = reason.starts_with("unknown field");
    let path = error
        .span()
        .map(|span| key_path_at(written, span.start, unknown_field))
        .unwrap_or_default();
    if path.is_empty() {
        reason.to_string()
    } else {
        format!("{reason}\nin `{path}`")
    }
}

/// The dotted key path of the line holding byte `offset` of TOML text we wrote (headers
/// `[a.b]` / `[[a]]`, then `key = value` lines). With `table_only` the key itself is left out
/// (an unknown field is named by the error already).
fn key_path_at(written: &str, offset: usize, table_only: bool) -> String {
    let mut header = String::new();
    let mut consumed = 0;
    for line in written.lines() {
        let end = consumed + line.len() + 1;
        let trimmed = line.trim();
        let is_header = trimmed.starts_with('[');
        if is_header {
            header = trimmed
                .trim_start_matches('[')
                .trim_end_matches(']')
                .split('.')
                .map(|part| part.trim().trim_matches('"'))
                .collect::<Vec<_>>()
                .join(".");
        }
        if offset < end {
            if is_header && table_only {
                // The header names the unknown table itself: its parent holds the field.
                return header
                    .rsplit_once('.')
                    .map_or(String::new(), |(parent, _)| parent.to_string());
            }
            if is_header || table_only {
                return header;
            }
            let key = trimmed
                .split_once('=')
                .map_or("", |(key, _)| key.trim().trim_matches('"'));
            return match (header.is_empty(), key.is_empty()) {
                (true, _) => key.to_string(),
                (false, true) => header,
                (false, false) => format!("{header}.{key}"),
            };
        }
        consumed = end;
    }
    header
}

/// `top_level_value` and `take_top_level` over every field of [`Config`]; the exhaustive
/// destructuring makes a new field a compile error here until it is listed.
macro_rules! top_level {
    (required: $($required:ident),*; optional: $($optional:ident),*) => {
        /// The field `key` of `config` as a TOML tree, through the text form (see
        /// [`from_tree`] for why not `toml::Value::try_from`).
        fn top_level_value(config: &Config, key: &str) -> Result<Option<Value>, String> {
            let Config { $($required,)* $($optional,)* } = config;
            let mut partial = Config::default();
            let mut known = false;
            $(if key == stringify!($required) {
                partial.$required = $required.clone();
                known = true;
            })*
            $(if key == stringify!($optional) {
                partial.$optional = $optional.clone();
                known = true;
            })*
            if !known {
                return Ok(None);
            }
            let written = toml::to_string(&partial).map_err(|error| error.to_string())?;
            let mut table: Table = toml::from_str(&written).map_err(|error| error.to_string())?;
            Ok(table.remove(key))
        }

        /// Every top-level field of the model, in the order `show` prints them.
        const TOP_LEVEL: &[&str] = &[$(stringify!($required),)* $(stringify!($optional),)*];

        fn take_top_level(config: &mut Config, partial: Config, key: &str) {
            let Config { $($required,)* $($optional,)* } = partial;
            $(if key == stringify!($required) {
                config.$required = $required;
            })*
            $(if key == stringify!($optional) {
                config.$optional = $optional;
            })*
        }
    };
}

top_level!(
    required: system, management, interfaces, bonds, vrrp, sync_groups, virtual_services,
        fwmark_rules, clusterip, tls_trust;
    optional: peer_link, notify, nat_gateway, real_server, pair
);

/// One step from a table or list down to a child.
#[derive(Debug, Clone)]
enum Step {
    Key(String),
    Item(usize),
}

/// What a path names inside its parent.
#[derive(Debug, Clone)]
enum Target {
    /// A field of a table (present or not).
    Key(String),
    /// An existing list item.
    Item(usize),
    /// A list item by a name no item has.
    NewItem(String),
}

/// A path resolved against a tree: steps to the parent, the target, and for messages the path as
/// the operator wrote it, each segment marked as a key or an item.
#[derive(Debug)]
struct Resolved {
    steps: Vec<Step>,
    target: Target,
    shown: Vec<(String, bool)>,
}

impl Resolved {
    fn path(&self) -> String {
        join(self.shown.iter().map(|(segment, _)| segment.as_str()))
    }
}

fn join<'a>(segments: impl IntoIterator<Item = &'a str>) -> String {
    segments.into_iter().collect::<Vec<_>>().join(".")
}

/// Walks `segments` down `root`. Missing tables on the way are created (they are optional fields
/// or typos, which deserialization tells apart); a missing named item is created with that name
/// when `create_items`, else it is an error.
fn resolve(
    root: &mut Value,
    segments: &[String],
    create_items: bool,
) -> Result<Resolved, EditError> {
    let mut node = root;
    let mut steps = Vec::new();
    let mut shown: Vec<(String, bool)> = Vec::new();
    let mut at = 0;
    loop {
        let rest = segments.get(at..).unwrap_or_default();
        let Some(first) = rest.first() else {
            return Err(EditError::BadPath {
                path: join(segments.iter().map(String::as_str)),
                reason: String::from("the path names no field"),
            });
        };
        match node {
            Value::Table(table) => {
                shown.push((first.clone(), true));
                if rest.len() == 1 {
                    return Ok(Resolved {
                        steps,
                        target: Target::Key(first.clone()),
                        shown,
                    });
                }
                node = table
                    .entry(first.clone())
                    .or_insert_with(|| Value::Table(Table::new()));
                steps.push(Step::Key(first.clone()));
                at += 1;
            }
            Value::Array(items) => {
                let here = join(shown.iter().map(|(s, _)| s.as_str()));
                let (index, used) = match find_item(items, rest, &here)? {
                    Some(found) => found,
                    None if rest.len() == 1 => {
                        shown.push((first.clone(), false));
                        return Ok(Resolved {
                            steps,
                            target: Target::NewItem(first.clone()),
                            shown,
                        });
                    }
                    None if create_items && !first.starts_with('#') => {
                        let mut item = Table::new();
                        item.insert(String::from("name"), Value::String(first.clone()));
                        items.push(Value::Table(item));
                        (items.len() - 1, 1)
                    }
                    None => {
                        return Err(EditError::NoSuchItem {
                            path: format!("{here}.{first}"),
                            item: first.clone(),
                            existing: labels(items),
                        })
                    }
                };
                shown.push((join(rest.iter().take(used).map(String::as_str)), false));
                if rest.len() == used {
                    return Ok(Resolved {
                        steps,
                        target: Target::Item(index),
                        shown,
                    });
                }
                let Some(item) = items.get_mut(index) else {
                    return Err(EditError::Invalid {
                        path: here,
                        reason: String::from("the list changed while it was edited"),
                    });
                };
                node = item;
                steps.push(Step::Item(index));
                at += used;
            }
            _ => {
                return Err(EditError::IntoScalar {
                    path: join(shown.iter().map(|(s, _)| s.as_str())),
                })
            }
        }
    }
}

/// The item `segments` starts with: `#N`, else the item whose name, address or plain value is
/// the longest run of segments joined with dots (so `10.0.0.10` needs no quotes). Returns its
/// index and how many segments it took.
fn find_item(
    items: &[Value],
    segments: &[String],
    here: &str,
) -> Result<Option<(usize, usize)>, EditError> {
    let Some(first) = segments.first() else {
        return Ok(None);
    };
    if let Some(number) = first.strip_prefix('#') {
        let index = number.parse::<usize>().map_err(|_| EditError::BadPath {
            path: format!("{here}.{first}"),
            reason: String::from("#N takes a position: #0 is the first item"),
        })?;
        return Ok((index < items.len()).then_some((index, 1)));
    }
    for used in (1..=segments.len()).rev() {
        let wanted = join(segments.iter().take(used).map(String::as_str));
        let found: Vec<usize> = items
            .iter()
            .enumerate()
            .filter(|(_, item)| item_is(item, &wanted))
            .map(|(index, _)| index)
            .collect();
        match found.as_slice() {
            [] => continue,
            [index] => return Ok(Some((*index, used))),
            many => {
                return Err(EditError::Ambiguous {
                    path: format!("{here}.{wanted}"),
                    item: wanted,
                    positions: many.iter().map(|i| format!("#{i}")).collect(),
                })
            }
        }
    }
    Ok(None)
}

fn item_is(item: &Value, wanted: &str) -> bool {
    match item {
        Value::Table(table) => ["name", "address"]
            .into_iter()
            .any(|key| table.get(key).and_then(Value::as_str) == Some(wanted)),
        Value::String(text) => text == wanted,
        other => inline(other) == wanted,
    }
}

/// How the items of a list are named in messages: name, else address, else value, else `#N`.
fn labels(items: &[Value]) -> Vec<String> {
    let mut labels: Vec<String> = items
        .iter()
        .take(LISTED_ITEMS)
        .enumerate()
        .map(|(index, item)| label_of(item, index))
        .collect();
    if items.len() > LISTED_ITEMS {
        labels.push(format!("and {} more", items.len() - LISTED_ITEMS));
    }
    labels
}

fn node_mut<'a>(root: &'a mut Value, steps: &[Step]) -> Option<&'a mut Value> {
    steps.iter().try_fold(root, |node, step| match step {
        Step::Key(key) => node.as_table_mut()?.get_mut(key),
        Step::Item(index) => node.as_array_mut()?.get_mut(*index),
    })
}

fn lost(resolved: &Resolved) -> EditError {
    EditError::Invalid {
        path: resolved.path(),
        reason: String::from("the path does not lead to a field"),
    }
}

/// The address reading of a value is only for appending to a list; elsewhere it adds nothing.
fn not_a_list(resolved: &Resolved) -> EditError {
    EditError::Invalid {
        path: resolved.path(),
        reason: String::from("not a list"),
    }
}

/// One `set` attempt with one reading of the value.
fn assign(
    config: &Config,
    mut root: Value,
    segments: &[String],
    value: Value,
    as_address: bool,
    text: &str,
) -> Result<Config, EditError> {
    let resolved = resolve(&mut root, segments, true)?;
    let parent = node_mut(&mut root, &resolved.steps).ok_or_else(|| lost(&resolved))?;
    match (parent, &resolved.target) {
        (Value::Table(table), Target::Key(key)) => match table.get_mut(key) {
            Some(Value::Array(items)) if !value.is_array() => {
                let item = if as_address {
                    let mut item = Table::new();
                    item.insert(String::from("address"), value);
                    Value::Table(item)
                } else {
                    value
                };
                if !items.contains(&item) {
                    items.push(item);
                }
            }
            _ if as_address => return Err(not_a_list(&resolved)),
            _ => {
                table.insert(key.clone(), value);
            }
        },
        _ if as_address => return Err(not_a_list(&resolved)),
        (Value::Array(items), Target::Item(index)) => {
            let mut value = value;
            if let (Some(Value::Table(old)), Value::Table(new)) = (items.get(*index), &mut value) {
                if let Some(name) = old.get("name") {
                    new.entry("name").or_insert_with(|| name.clone());
                }
            }
            if let Some(slot) = items.get_mut(*index) {
                *slot = value;
            }
        }
        (Value::Array(items), Target::NewItem(name)) => match value {
            Value::Table(mut item) => {
                item.entry("name")
                    .or_insert_with(|| Value::String(name.clone()));
                items.push(Value::Table(item));
            }
            _ => {
                return Err(EditError::NoSuchItem {
                    path: resolved.path(),
                    item: name.clone(),
                    existing: labels(items),
                })
            }
        },
        _ => return Err(lost(&resolved)),
    }
    from_tree(config, root, &resolved, text)
}

/// `delete`, and `set ... none`.
fn clear(config: &Config, tree: &Value, segments: &[String]) -> Result<Config, EditError> {
    let mut root = tree.clone();
    let resolved = resolve(&mut root, segments, false)?;
    let parent = node_mut(&mut root, &resolved.steps).ok_or_else(|| lost(&resolved))?;
    match (parent, &resolved.target) {
        (Value::Array(items), Target::Item(index)) => {
            if *index < items.len() {
                items.remove(*index);
            }
            from_tree(config, root, &resolved, "")
        }
        (Value::Array(items), Target::NewItem(name)) => Err(EditError::NoSuchItem {
            path: resolved.path(),
            item: name.clone(),
            existing: labels(items),
        }),
        (Value::Table(table), Target::Key(key)) => {
            if table.remove(key).is_none() {
                // Already clear, or a typo: a probe value tells them apart.
                table.insert(key.clone(), Value::Table(Table::new()));
                return match from_tree(config, root, &resolved, "") {
                    Err(error @ EditError::UnknownField { .. }) => Err(error),
                    _ => Ok(config.clone()),
                };
            }
            let edited = from_tree(config, root, &resolved, "")?;
            // A field that comes back after a round trip always has a value.
            let mut back = to_tree(&edited, segments)?;
            let field = node_mut(&mut back, &resolved.steps)
                .and_then(|parent| parent.as_table())
                .and_then(|parent| parent.get(key));
            match field {
                None => Ok(edited),
                Some(Value::Array(items)) if items.is_empty() => Ok(edited),
                Some(Value::Table(table)) if table.is_empty() => Ok(edited),
                Some(default) => Err(EditError::Required {
                    path: resolved.path(),
                    default: inline(default),
                }),
            }
        }
        _ => Err(lost(&resolved)),
    }
}

/// Turns a deserialization message ("REASON\nin `a.b`") into an [`EditError`] on the operator's
/// path. The message's key path has no list items in it, so it is laid over the operator's
/// segments: keys must agree, items are taken as written, and keys beyond the path are appended.
fn explain(message: &str, resolved: &Resolved, text: &str) -> EditError {
    let mut lines = message.lines();
    let reason = lines.next().unwrap_or_default().trim();
    let mut keys: Vec<&str> = lines
        .find_map(|line| line.trim().strip_prefix("in `")?.strip_suffix('`'))
        .map(|path| path.split('.').collect())
        .unwrap_or_default();
    let unknown = reason
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split_once('`'));
    if let Some((field, _)) = unknown {
        keys.push(field);
    }
    let path = blame(&resolved.shown, &keys);
    if let Some((field, rest)) = unknown {
        return EditError::UnknownField {
            path,
            field: field.to_string(),
            valid: backticked(rest),
        };
    }
    if text.is_empty() || path != resolved.path() {
        // Not the value itself: a field the edit created or left without a value.
        return EditError::Invalid {
            path,
            reason: reason.to_string(),
        };
    }
    let got = if text.parse::<Value>().is_ok_and(|v| !v.is_str()) {
        text.to_string()
    } else {
        format!("{text:?}")
    };
    if let Some((_, rest)) = reason
        .strip_prefix("unknown variant `")
        .and_then(|rest| rest.split_once('`'))
    {
        return EditError::WrongType {
            path,
            expected: format!("one of {}", backticked(rest).join(", ")),
            got,
        };
    }
    let is_value_error = ["invalid type", "invalid value", "invalid length"]
        .iter()
        .any(|start| reason.starts_with(start));
    match reason.split_once(", expected ") {
        Some((_, expected)) if is_value_error => EditError::WrongType {
            expected: expected_text(expected, keys.last().copied()),
            path,
            got,
        },
        _ => EditError::Invalid {
            path,
            reason: format!("{reason}, got {got}"),
        },
    }
}

fn blame(shown: &[(String, bool)], keys: &[&str]) -> String {
    let mut path = Vec::new();
    let mut keys = keys.iter().peekable();
    for (segment, is_key) in shown {
        if *is_key {
            if keys.peek().is_some_and(|key| **key == segment) {
                keys.next();
            } else {
                break;
            }
        }
        path.push(segment.as_str());
    }
    path.extend(keys.copied());
    join(path)
}

/// The `a`, `b` of "expected one of `a`, `b`".
fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// A value on one line, as TOML writes it inline.
fn inline(value: &Value) -> String {
    match value {
        Value::String(text) => quote(text),
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        Value::Table(table) if table.is_empty() => String::from("{}"),
        Value::Table(table) => {
            let fields: Vec<String> = table
                .iter()
                .map(|(key, value)| format!("{} = {}", quote(key), inline(value)))
                .collect();
            format!("{{ {} }}", fields.join(", "))
        }
        Value::Integer(number) => number.to_string(),
        Value::Float(number) => number.to_string(),
        Value::Boolean(flag) => flag.to_string(),
        Value::Datetime(time) => time.to_string(),
    }
}

/// Serde's "expected" in operator words.
fn expected_text(expected: &str, field: Option<&str>) -> String {
    let text = match (expected, field) {
        ("u8", Some("priority")) => "an integer 1..=254",
        ("u8", Some("vrid")) => "an integer 1..=255",
        ("u8", _) => "an integer 0..=255",
        ("u16", _) => "an integer 0..=65535",
        ("i16", _) => "an integer -32768..=32767",
        ("u32", _) => "an integer 0..=4294967295",
        ("u64", _) => "an integer 0 or more",
        ("a boolean", _) => "true or false",
        ("a string", _) => "text",
        (other, _) => match other.strip_prefix("struct ") {
            Some(name) => {
                return format!("an inline table of {name} fields, e.g. {{ key = value }}")
            }
            None => return other.to_string(),
        },
    };
    text.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Forwarding, LinkMonitor};
    use crate::text;

    fn sample() -> Config {
        text::from_toml(include_str!("../tests/data/live.toml")).unwrap()
    }

    fn ok(config: &Config, path: &str, value: &str) -> Config {
        set(config, path, value).unwrap_or_else(|e| panic!("set {path} {value}: {e}"))
    }

    fn err(config: &Config, path: &str, value: &str) -> String {
        let result = set(config, path, value);
        result.map(|_| ()).unwrap_err().to_string()
    }

    fn browsed(config: &Config, path: &str) -> Vec<(String, EntryKind, String)> {
        browse(config, path)
            .unwrap_or_else(|e| panic!("browse {path}: {e}"))
            .into_iter()
            .map(|e| (e.segment, e.kind, e.shown))
            .collect()
    }

    #[test]
    fn browse_lists_set_and_unset_fields_at_every_level() {
        let config = sample();
        let top = browsed(&config, "");
        let kinds: Vec<(&str, EntryKind)> = top.iter().map(|(s, k, _)| (s.as_str(), *k)).collect();
        assert!(kinds.contains(&("system", EntryKind::Table)), "{top:?}");
        assert!(kinds.contains(&("vrrp", EntryKind::List)), "{top:?}");
        assert_eq!(top.len(), TOP_LEVEL.len());
        let vrrp = browsed(&config, "vrrp");
        assert_eq!(vrrp[0].0, "web_vip");
        assert_eq!(vrrp[0].1, EntryKind::Item);
        let instance = browsed(&config, "vrrp.web_vip");
        let priority = instance.iter().find(|(s, _, _)| s == "priority").unwrap();
        assert_eq!(priority.1, EntryKind::Value);
        assert_eq!(priority.2, config.vrrp[0].priority.to_string());
        // An optional field left out is listed as unset, so the UI can reach it.
        let management = browsed(&config, "management");
        assert!(
            management
                .iter()
                .any(|(s, k, _)| s == "metrics" && *k == EntryKind::Unset),
            "{management:?}"
        );
        // Items by name, then a nested list of tables.
        // Items that share a label (two unnamed services on one address) go by position, so
        // every segment opens exactly one item.
        let mut twins = Config::default();
        for port in [80, 443] {
            let service = crate::model::VirtualService {
                address: Some("10.0.0.10".parse().unwrap()),
                port,
                ..Default::default()
            };
            twins.virtual_services.push(service).unwrap();
        }
        let listed = browsed(&twins, "virtual_services");
        let segments: Vec<&str> = listed.iter().map(|(s, _, _)| s.as_str()).collect();
        assert_eq!(segments, ["#0", "#1"]);
        assert!(browse(&twins, "virtual_services.#1").is_ok());
        let servers = browsed(&config, "virtual_services.http.real_servers");
        assert_eq!(servers.len(), config.virtual_services[0].real_servers.len());
        assert!(servers.iter().all(|(_, k, _)| *k == EntryKind::Item));
    }

    #[test]
    fn browse_refuses_what_is_not_there_by_name() {
        let config = sample();
        let unknown = browse(&config, "vrp").unwrap_err().to_string();
        assert!(
            unknown.contains("unknown field `vrp`") && unknown.contains("vrrp"),
            "{unknown}"
        );
        let missing = browse(&config, "vrrp.nope").unwrap_err().to_string();
        assert!(missing.contains("web_vip"), "{missing}");
        let scalar = browse(&config, "system.hostname").unwrap_err();
        assert!(matches!(scalar, EditError::IntoScalar { .. }), "{scalar:?}");
        // An absent optional table lists its fields, all unset.
        let peer_link = browsed(&Config::default(), "peer_link");
        assert!(
            peer_link.iter().any(|(s, _, _)| s == "interface"),
            "{peer_link:?}"
        );
        assert!(peer_link.iter().all(|(_, k, _)| *k == EntryKind::Unset));
    }

    #[test]
    fn sets_scalars_by_name() {
        let config = ok(&sample(), "vrrp.web_vip.priority", "150");
        assert_eq!(config.vrrp_instance("web_vip").unwrap().priority, 150);
        let config = ok(&config, "system.hostname", "box-b");
        assert_eq!(config.system.hostname, "box-b");
        // A value that parses as TOML but does not fit is taken as text.
        let config = ok(&config, "system.hostname", "1234");
        assert_eq!(config.system.hostname, "1234");
        let config = ok(&config, "vrrp.web_vip.garp.master_delay_s", "2");
        assert_eq!(config.vrrp[0].garp.master_delay_s, 2);
        let config = ok(&config, "vrrp.\"web_vip\".preempt", "false");
        assert!(!config.vrrp[0].preempt);
    }

    #[test]
    fn creates_a_named_real_server_with_defaults() {
        let config = ok(
            &sample(),
            "virtual_services.http.real_servers.rs3.address",
            "10.0.1.13",
        );
        let servers = &config.virtual_services[0].real_servers;
        assert_eq!(servers.len(), 3);
        let rs3 = &servers[2];
        assert_eq!(
            (rs3.name.as_str(), rs3.address.to_string()),
            ("rs3", "10.0.1.13".into())
        );
        assert_eq!((rs3.weight, rs3.active, rs3.port), (1, true, None));
        // A whole item as an inline table keeps the name it is addressed by.
        let config = ok(
            &config,
            "virtual_services.http.real_servers.rs4",
            "{ address = \"10.0.1.14\", weight = 5 }",
        );
        let rs4 = &config.virtual_services[0].real_servers[3];
        assert_eq!((rs4.name.as_str(), rs4.weight), ("rs4", 5));
    }

    #[test]
    fn items_by_address_position_and_value() {
        let config = ok(&sample(), "vrrp.web_vip.vips.10.0.0.11.prefix", "24");
        assert_eq!(config.vrrp[0].vips[1].prefix, 24);
        let config = ok(&config, "vrrp.web_vip.vips.#0.prefix", "25");
        assert_eq!(config.vrrp[0].vips[0].prefix, 25);
        let config = ok(
            &config,
            "virtual_services.#0.real_servers.10.0.1.12.weight",
            "7",
        );
        assert_eq!(config.virtual_services[0].real_servers[1].weight, 7);
        let config = delete(&config, "vrrp.web_vip.unicast_peers.10.0.0.3").unwrap();
        assert!(config.vrrp[0].unicast_peers.is_empty());
    }

    #[test]
    fn lists_append_replace_and_delete() {
        let config = ok(&sample(), "vrrp.web_vip.vips", "10.0.0.12");
        let vips: Vec<String> = config.vrrp[0]
            .vips
            .iter()
            .map(|v| v.address.to_string())
            .collect();
        assert_eq!(vips, ["10.0.0.10", "10.0.0.11", "10.0.0.12"]);
        assert_eq!(config.vrrp[0].vips[2].prefix, 32, "defaults fill the rest");
        // Appending is idempotent.
        assert_eq!(
            ok(&config, "vrrp.web_vip.unicast_peers", "10.0.0.3"),
            config
        );
        let config = ok(&config, "vrrp.web_vip.unicast_peers", "10.0.0.4");
        assert_eq!(config.vrrp[0].unicast_peers.len(), 2);
        let config = ok(&config, "interfaces.public.addresses", "[\"10.0.0.5/24\"]");
        assert_eq!(config.interfaces[0].addresses.len(), 1);
        let config = ok(
            &config,
            "vrrp.web_vip.vips",
            "{ address = \"10.0.0.13\", prefix = 24 }",
        );
        assert_eq!(config.vrrp[0].vips[3].prefix, 24);
        let config = delete(&config, "vrrp.web_vip.vips.10.0.0.10").unwrap();
        assert_eq!(config.vrrp[0].vips.len(), 3);
        let config = delete(&config, "vrrp.web_vip.vips").unwrap();
        assert!(config.vrrp[0].vips.is_empty());
    }

    #[test]
    fn lists_start_in_new_items_and_tables() {
        let config = ok(&sample(), "vrrp.web_gw.vips", "10.0.1.1");
        let web_gw = config.vrrp_instance("web_gw").unwrap();
        assert_eq!(web_gw.vips[0].address.to_string(), "10.0.1.1");
        assert_eq!(web_gw.vrid, 1, "defaults fill the rest");
        let config = ok(&config, "real_server.vips", "10.0.0.10");
        assert_eq!(config.real_server.unwrap().vips.len(), 1);
    }

    #[test]
    fn deletes_items_and_optional_fields() {
        let config = delete(&sample(), "virtual_services.http.real_servers.rs2").unwrap();
        assert_eq!(config.virtual_services[0].real_servers.len(), 1);
        let config = delete(&config, "vrrp.web_vip").unwrap();
        assert!(config.vrrp.is_empty());
        let config = ok(&config, "peer_link.ipvs_sync", "true");
        assert!(config.peer_link.as_ref().unwrap().ipvs_sync);
        let cleared = delete(&config, "peer_link").unwrap();
        assert_eq!(cleared.peer_link, None);
        assert_eq!(ok(&config, "peer_link", "none").peer_link, None);
        // Clearing what is already clear changes nothing.
        assert_eq!(delete(&cleared, "peer_link").unwrap(), cleared);
        assert_eq!(delete(&cleared, "peer_link.primary").unwrap(), cleared);
    }

    #[test]
    fn none_is_text_where_it_is_an_enum_value() {
        let config = ok(
            &sample(),
            "bonds.bond0.monitor",
            "{ arp = { interval_ms = 100, targets = [\"10.0.0.1\"], validate = \"all\" } }",
        );
        let config = ok(&config, "bonds.bond0.monitor.arp.validate", "none");
        assert!(matches!(config.bonds[0].monitor, LinkMonitor::Arp { .. }));
        let config = ok(&config, "virtual_services.http.forwarding", "dr");
        assert_eq!(config.virtual_services[0].forwarding, Forwarding::Dr);
    }

    #[test]
    fn errors_name_the_path_and_the_fix() {
        let config = sample();
        assert_eq!(
            err(&config, "vrrp.web_vip.priority", "abc"),
            "vrrp.web_vip.priority: expected an integer 1..=254, got \"abc\""
        );
        assert_eq!(
            err(&config, "vrrp.web_vip.priority", "300"),
            "vrrp.web_vip.priority: expected an integer 1..=254, got 300"
        );
        let unknown = err(&config, "vrrp.web_vip.prio", "1");
        assert!(
            unknown.starts_with(
                "vrrp.web_vip.prio: unknown field `prio`; the fields here are: name, version, vrid"
            ),
            "{unknown}"
        );
        let unknown = err(&config, "vrrp.web_vip.garpp.master_delay_s", "1");
        assert!(
            unknown.starts_with("vrrp.web_vip.garpp: unknown field `garpp`"),
            "{unknown}"
        );
        let top = err(&config, "sytem.hostname", "x");
        assert!(
            top.starts_with(
                "sytem: unknown field `sytem`; the fields here are: system, management"
            ),
            "{top}"
        );
        assert_eq!(
            delete(&config, "vrrp.web_gw").unwrap_err().to_string(),
            "vrrp.web_gw: no item `web_gw` here; existing: web_vip (name an item, or #N for its position)"
        );
        let gone = delete(&config, "virtual_services.http.real_servers.rs9").unwrap_err();
        assert!(gone.to_string().contains("existing: rs1, rs2"), "{gone}");
        assert!(err(&config, "vrrp.#5.priority", "1").contains("no item `#5`"));
        assert_eq!(
            err(&config, "system.hostname.x", "1"),
            "system.hostname is a value, not a section: nothing is inside it; use `set system.hostname VALUE`"
        );
        assert_eq!(
            delete(&config, "vrrp.web_vip.priority").unwrap_err().to_string(),
            "vrrp.web_vip.priority cannot be deleted: it always has a value; set it instead (its default is 100)"
        );
        assert!(matches!(
            delete(&config, "vrrp.web_vip.name"),
            Err(EditError::Required { .. })
        ));
        assert!(matches!(
            delete(&config, "system"),
            Err(EditError::Required { .. })
        ));
        let variant = err(&config, "virtual_services.http.scheduler", "fast");
        assert!(
            variant.contains("expected one of rr, wrr, lc, wlc"),
            "{variant}"
        );
        let address = err(
            &config,
            "virtual_services.http.real_servers.rs1.address",
            "10.0.0.x",
        );
        assert_eq!(address, "virtual_services.http.real_servers.rs1.address: invalid IP address syntax, got \"10.0.0.x\"");
        let long = err(&config, "system.hostname", &"x".repeat(70));
        assert!(
            long.starts_with("system.hostname: expected a string no more than 63 bytes long"),
            "{long}"
        );
        // A created item whose name does not fit is blamed on its name.
        let name = err(&config, &format!("vrrp.{}.priority", "n".repeat(40)), "5");
        assert!(
            name.contains(".name: invalid length 40, expected a string no more than 32 bytes"),
            "{name}"
        );
        assert!(matches!(
            set(&config, "", "1"),
            Err(EditError::BadPath { .. })
        ));
        assert!(matches!(
            set(&config, "vrrp..x", "1"),
            Err(EditError::BadPath { .. })
        ));
        assert!(matches!(
            set(&config, "vrrp.\"web", "1"),
            Err(EditError::BadPath { .. })
        ));
        assert!(matches!(
            set(&config, "vrrp.#x", "1"),
            Err(EditError::BadPath { .. })
        ));
    }

    #[test]
    fn errors_leave_the_input_alone() {
        let config = sample();
        let before = config.clone();
        let _ = set(&config, "vrrp.web_vip.priority", "abc");
        let _ = delete(&config, "vrrp.web_vip.priority");
        assert_eq!(config, before);
    }
}
