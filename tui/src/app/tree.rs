//! A config screen's browser: the candidate's fields under one root path, one level at a time,
//! as the daemon's `browse PATH` lists them (set and unset fields alike, list items by name),
//! so every field of the model is reachable from the console without a form per field.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

pub use tandem_config::entry_kind::EntryKind;

/// One line of a browsed level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub segment: String,
    pub kind: EntryKind,
    pub shown: String,
}

/// Parses a `browse` answer: `browse: SEGMENT<TAB>KIND<TAB>SHOWN` lines, then `browse: end`.
/// Anything else (an error) comes back as the error text.
pub fn parse_browse(answer: &str) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    let mut ended = false;
    for line in answer.lines() {
        let Some(rest) = line.strip_prefix("browse: ") else {
            continue;
        };
        if rest == "end" {
            ended = true;
            continue;
        }
        let mut parts = rest.splitn(3, '\t');
        let (Some(segment), Some(kind), shown) = (parts.next(), parts.next(), parts.next()) else {
            return Err(rest.to_string());
        };
        let Some(kind) = EntryKind::parse(kind) else {
            return Err(rest.to_string());
        };
        entries.push(Entry {
            segment: segment.to_string(),
            kind,
            shown: shown.unwrap_or_default().to_string(),
        });
    }
    if ended {
        Ok(entries)
    } else {
        Err(answer
            .lines()
            .next()
            .unwrap_or("no answer")
            .trim_start_matches("browse: ")
            .to_string())
    }
}

/// Where a config screen stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    /// The screen's root path (`vrrp`, `virtual_services`; empty: the whole config).
    pub root: &'static str,
    /// Segments below the root, one per level opened.
    pub below: Vec<String>,
    /// The kind of the entry each level was opened from (a list's level adds items).
    pub opened_kinds: Vec<EntryKind>,
    pub entries: Vec<Entry>,
    pub selected: usize,
    /// Why the level could not be listed, if it could not.
    pub error: Option<String>,
    /// Selections of the levels above, restored on the way back up.
    selections: Vec<usize>,
}

impl Tree {
    pub fn new(root: &'static str) -> Tree {
        Tree {
            root,
            below: Vec::new(),
            opened_kinds: Vec::new(),
            entries: Vec::new(),
            selected: 0,
            error: None,
            selections: Vec::new(),
        }
    }

    /// The path of the level shown, as `browse` and `set` take it.
    pub fn path(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        if !self.root.is_empty() {
            parts.push(self.root);
        }
        parts.extend(self.below.iter().map(String::as_str));
        parts.join(".")
    }

    /// The path of an entry of the level shown.
    pub fn path_of(&self, entry: &Entry) -> String {
        let here = self.path();
        if here.is_empty() {
            entry.segment.clone()
        } else {
            format!("{here}.{}", entry.segment)
        }
    }

    pub fn selected_entry(&self) -> Option<&Entry> {
        self.entries.get(self.selected)
    }

    /// Whether the level shown is a list (items are added to it).
    pub fn is_list(&self) -> bool {
        let opened_from_list = self.opened_kinds.last() == Some(&EntryKind::List);
        let root_is_list = self.below.is_empty() && !self.root.is_empty();
        opened_from_list || root_is_list
    }

    /// Whether the items of the list shown are named (else they are keyed by address or value).
    pub fn items_named(&self) -> Option<bool> {
        self.entries.first().map(|first| {
            !first.segment.starts_with('#')
                && !first.segment.contains('.')
                && !first.segment.contains(':')
        })
    }

    /// Opens the selected entry (it must [`EntryKind::opens`]).
    pub fn open_selected(&mut self) -> bool {
        let Some(entry) = self.selected_entry().cloned() else {
            return false;
        };
        if !entry.kind.opens() {
            return false;
        }
        self.below.push(entry.segment);
        self.opened_kinds.push(entry.kind);
        self.selections.push(self.selected);
        self.selected = 0;
        self.entries.clear();
        self.error = None;
        true
    }

    /// Back up one level; false at the root.
    pub fn close(&mut self) -> bool {
        if self.below.pop().is_none() {
            return false;
        }
        self.opened_kinds.pop();
        self.selected = self.selections.pop().unwrap_or(0);
        self.entries.clear();
        self.error = None;
        true
    }

    /// A fresh listing of the level shown.
    pub fn listed(&mut self, answer: &str) {
        match parse_browse(answer) {
            Ok(entries) => {
                self.entries = entries;
                self.error = None;
                self.selected = self.selected.min(self.entries.len().saturating_sub(1));
            }
            Err(error) => {
                self.entries.clear();
                self.error = Some(error);
                self.selected = 0;
            }
        }
    }

    pub fn move_by(&mut self, delta: isize) {
        let count = self.entries.len();
        if count == 0 {
            return;
        }
        let last = count - 1;
        self.selected = if delta < 0 {
            self.selected.saturating_sub(delta.unsigned_abs())
        } else {
            self.selected.saturating_add(delta.unsigned_abs()).min(last)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ANSWER: &str =
        "browse: web_vip\titem\tinterface=\"eth0\" vrid=51\nbrowse: db\titem\t\nbrowse: end\n";

    #[test]
    fn parses_entries_and_errors() {
        let entries = parse_browse(ANSWER).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].segment, "web_vip");
        assert_eq!(entries[0].kind, EntryKind::Item);
        assert_eq!(entries[1].shown, "");
        let error = parse_browse("browse: vrrp.nope: no item `nope`; the items are: web_vip\n");
        assert_eq!(
            error,
            Err("vrrp.nope: no item `nope`; the items are: web_vip".into())
        );
    }

    #[test]
    fn opens_and_closes_levels_keeping_the_selection() {
        let mut tree = Tree::new("vrrp");
        assert_eq!(tree.path(), "vrrp");
        assert!(tree.is_list());
        tree.listed(ANSWER);
        tree.move_by(1);
        assert!(tree.open_selected());
        assert_eq!(tree.path(), "vrrp.db");
        assert!(!tree.is_list());
        assert!(tree.close());
        assert_eq!(tree.selected, 1);
        assert!(!tree.close());
        let mut whole = Tree::new("");
        whole.listed("browse: system\ttable\t\nbrowse: end\n");
        assert_eq!(whole.path_of(&whole.entries[0]), "system");
    }
}
