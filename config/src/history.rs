//! The commit history a blob carries (format 2): who committed which generation, when and why.
//!
//! It travels inside the signed blob so that both boxes of a pair, and a box after a reboot, show
//! the same `history` without a separate log file. It is bounded ([`HISTORY_ENTRIES`] records,
//! newest last) so it never grows the blob by more than a few kilobytes.
//!
//! The types are encoded with postcard, which is not self-describing: fields and enum variants are
//! frozen by the golden vectors of each format. Append new [`CommitOrigin`] variants at the end
//! only. Format 3 appended [`CommitRecord::digest`] (the lineage replication checks a fast-forward
//! against); a format 2 history decodes through [`HistoryV2`] with digest 0 (unknown).

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
    /// [`config_digest`] of the config this generation holds (0: unknown, a format 2 record).
    /// With the generation it names the config exactly: the partner box's config is an
    /// ancestor of this one when its (generation, digest) is in this history.
    pub digest: u64,
}

/// The 64-bit digest that names a config's content: the first 8 bytes (big-endian) of the
/// SHA-256 of its postcard encoding (the blob payload's model part). Equal configs have equal
/// digests on both boxes; it is never 0 (0 means unknown).
///
/// Both boxes of a pair must compute the same digest for the same config, also while one runs
/// firmware that writes an older format (a rolling upgrade: `blob::encode_as`). Today every
/// firmware hashes the format 6 layout. **When format 7 comes**, hash a config in the oldest
/// layout from 6 up that holds it (`blob::check_fits`), not in the newest: a config firmware
/// at format 6 can hold then has the digest that firmware computes, and replication between
/// the two versions stays a fast-forward instead of `Diverged`.
pub fn config_digest(config_payload: &[u8]) -> u64 {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(config_payload);
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_be_bytes(first).max(1)
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

    /// Whether the config named by (`generation`, `digest`) is in this history: a box running
    /// it is behind the box with this history (a fast-forward). Digest 0 (unknown) never
    /// matches.
    pub fn contains(&self, generation: u64, digest: u64) -> bool {
        digest != 0
            && self
                .entries
                .iter()
                .any(|r| r.generation == generation && r.digest == digest)
    }
}

/// Format 2's history layout (records without a digest), for decoding only.
#[derive(Debug, Deserialize)]
pub(crate) struct HistoryV2 {
    entries: BoundedVec<CommitRecordV2, HISTORY_ENTRIES>,
}

#[derive(Debug, Clone, Deserialize)]
struct CommitRecordV2 {
    generation: u64,
    unix_time_s: u64,
    origin: CommitOrigin,
    comment: heapless::String<COMMENT_BYTES>,
    confirm_pending: bool,
}

impl From<HistoryV2> for History {
    fn from(old: HistoryV2) -> History {
        let mut history = History::default();
        for r in old.entries.iter().cloned() {
            history.push(CommitRecord {
                generation: r.generation,
                unix_time_s: r.unix_time_s,
                origin: r.origin,
                comment: r.comment,
                confirm_pending: r.confirm_pending,
                digest: 0,
            });
        }
        history
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
            digest: generation * 7,
        }
    }

    #[test]
    fn contains_matches_generation_and_digest() {
        let mut history = History::default();
        history.push(record(3));
        assert!(history.contains(3, 21));
        assert!(!history.contains(3, 22));
        assert!(!history.contains(4, 21));
        assert!(!History::default().contains(0, 0));
    }

    #[test]
    fn digest_is_never_zero_and_tells_configs_apart() {
        assert_ne!(config_digest(b""), 0);
        assert_ne!(config_digest(b"a"), config_digest(b"b"));
        assert_eq!(config_digest(b"a"), config_digest(b"a"));
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
