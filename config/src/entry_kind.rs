//! What a child of a browsed config node is: the words `browse PATH` answers with, shared by
//! the daemon that writes them ([`crate::edit::browse`], std) and the console UI that reads
//! them (no_std), so both sides of that text always agree.

/// What a child of a browsed node is, so a UI knows what Enter does on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A plain value or a list of plain values: edited with `set`.
    Value,
    /// A table: browsed further.
    Table,
    /// A list of tables (or an empty list): browsed further, items added with `set`.
    List,
    /// An item of a list, by its name, address or `#N`.
    Item,
    /// A field the model has that holds no value (an optional field left out).
    Unset,
}

impl EntryKind {
    /// The word `browse` answers with.
    pub fn word(self) -> &'static str {
        match self {
            EntryKind::Value => "value",
            EntryKind::Table => "table",
            EntryKind::List => "list",
            EntryKind::Item => "item",
            EntryKind::Unset => "unset",
        }
    }

    /// The kind a `browse` word names.
    pub fn parse(word: &str) -> Option<EntryKind> {
        [
            EntryKind::Value,
            EntryKind::Table,
            EntryKind::List,
            EntryKind::Item,
            EntryKind::Unset,
        ]
        .into_iter()
        .find(|kind| kind.word() == word)
    }

    /// Opens to another level (Enter browses) rather than being edited.
    pub fn opens(self) -> bool {
        matches!(self, EntryKind::Table | EntryKind::List | EntryKind::Item)
    }
}

#[cfg(test)]
mod tests {
    use super::EntryKind;

    #[test]
    fn every_word_parses_back() {
        for kind in [
            EntryKind::Value,
            EntryKind::Table,
            EntryKind::List,
            EntryKind::Item,
            EntryKind::Unset,
        ] {
            assert_eq!(EntryKind::parse(kind.word()), Some(kind));
        }
        assert_eq!(EntryKind::parse("nope"), None);
    }
}
