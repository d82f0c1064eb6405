//! The commit history a blob carries (format 2): who committed which generation, when and why.
//!
//! It travels inside the signed blob so that both boxes of a pair, and a box after a reboot, show
//! the same `history` without a separate log file. It is bounded ([`HISTORY_ENTRIES`] records,
//! newest last) so it never grows the blob by more than a few kilobytes.
//!
//! The types are encoded with postcard, which is not self-describing: fields and enum variants are
//! frozen by the golden vectors of format 2. Append new [`CommitOrigin`] variants at the end only.

use serde::{Deserialize, Serialize};

use crate::bounded::BoundedVec;

/// Records a history keeps; pushing one more drops the oldest.
pub const HISTORY_ENTRIES: usize = 32;
/// Bytes of a commit comment.
pub const COMMENT_BYTES: usize = 128;

/// Where a commit came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitOrigin {
    /// An operator on the serial console.
    Console,
    /// A client of the control socket.
    ControlSocket,
    /// `tandem config` on the command line.
    Cli,
    /// Replicated from the partner box.
    Peer,
    /// Written at boot (first boot, migration of an older blob).
    Boot,
    /// A `commit confirmed` that was not confirmed in time and was rolled back.
    ConfirmTimeout,
    /// An operator's rollback to an earlier generation.
    Rollback,
    /// Imported from keepalived.conf or lvs.cf.
    Import,
}

impl CommitOrigin {
    /// Lowercase name for messages.
    pub fn as_str(self) -> &'static str {
        match self {
            CommitOrigin::Console => "console",
            CommitOrigin::ControlSocket => "control-socket",
            CommitOrigin::Cli => "cli",
            CommitOrigin::Peer => "peer",
            CommitOrigin::Boot => "boot",
            CommitOrigin::ConfirmTimeout => "confirm-timeout",
            CommitOrigin::Rollback => "rollback",
            CommitOrigin::Import => "import",
        }
    }
}

/// One commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitRecord {
    /// The blob generation the commit wrote.
    pub generation: u64,
    /// Seconds since the Unix epoch; 0 when the clock was unknown.
    pub unix_time_s: u64,
    pub origin: CommitOrigin,
    /// The operator's comment (`commit comment "..."`); may be empty.
    pub comment: heapless::String<COMMENT_BYTES>,
    /// A `commit confirmed` still waiting for its confirmation.
    pub confirm_pending: bool,
}

/// The last commits, newest last.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct History {
    pub entries: BoundedVec<CommitRecord, HISTORY_ENTRIES>,
}

impl History {
    /// Appends `record`, dropping the oldest records beyond [`HISTORY_ENTRIES`].
    pub fn push(&mut self, record: CommitRecord) {
        while self.entries.len() >= HISTORY_ENTRIES {
            self.entries.remove(0);
        }
        // Cannot fail: there is room now. A full vector would only lose this record.
        let _ = self.entries.push(record);
    }

    /// The newest record.
    pub fn latest(&self) -> Option<&CommitRecord> {
        self.entries.last()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(generation: u64) -> CommitRecord {
        CommitRecord {
            generation,
            unix_time_s: 0,
            origin: CommitOrigin::Console,
            comment: heapless::String::new(),
            confirm_pending: false,
        }
    }

    #[test]
    fn push_keeps_the_newest_32() {
        let mut history = History::default();
        for generation in 1..=40 {
            history.push(record(generation));
        }
        assert_eq!(history.entries.len(), HISTORY_ENTRIES);
        assert_eq!(history.entries[0].generation, 9);
        assert_eq!(history.latest().map(|r| r.generation), Some(40));
    }
}
