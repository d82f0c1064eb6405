//! Config transactions: the candidate, commit (optionally confirmed), rollback and history.
//!
//! There is one running config and at most one candidate, shared by the console, the control
//! socket and the CLI (Junos' shared `configure`). Edits change only the candidate; `commit`
//! validates it, persists it as a new generation (the store writes the slot that does not hold
//! the running generation, so a power cut leaves the old or the new one, never a mix) and only
//! then hands it to the engines. `commit --confirm S` remembers the config to return to; unless
//! `confirm` arrives within S seconds, [`Transactions::confirm_timed_out`] commits it back as a
//! new generation. `rollback [N]` is itself a commit of a stored generation. Every commit
//! carries the history (time, origin, comment) inside its blob, so `history` survives reboots.
//!
//! Pure apart from the store: the caller passes the clock in, so every path is tested without
//! a daemon, including a power cut at every write of a commit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use crate::blob::{self, BlobMeta};
use crate::history::{config_digest, CommitOrigin, CommitRecord, History};
use crate::impact::Preview;
use crate::incremental::{EncodedConfig, ServiceDiff};
use crate::storage::{BlockDevice, SlotStore, StoreError};
use crate::validate::Validation;
use crate::{Config, MacKey, MacPolicy, Severity};

/// Longest confirm window accepted (Junos allows an hour).
pub const MAX_CONFIRM: Duration = Duration::from_secs(3600);

/// Why a transaction step did nothing. Each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum TransactionError {
    #[error("{0}")]
    Edit(String),
    #[error("the candidate has {count} error(s), nothing was committed:\n{report}")]
    Invalid { count: usize, report: String },
    #[error("nothing to commit: the candidate equals the running config (generation {0})")]
    NothingToCommit(u64),
    #[error("cannot persist the config, nothing was applied: {0}")]
    Store(#[from] StoreError),
    #[error("cannot encode the config, nothing was applied: {0}")]
    Encode(#[from] crate::BlobError),
    #[error("no commit is waiting for confirmation")]
    NothingToConfirm,
    #[error(
        "generation {wanted} is not stored on this box (it keeps {kept}); load a saved copy with `load FILE`"
    )]
    NotStored { wanted: u64, kept: String },
    #[error("generation {0} is the running config already")]
    AlreadyRunning(u64),
    #[error(
        "the partner's config (generation {theirs}, digest {their_digest:016x}) does not \
         descend from this box's (generation {ours}, digest {our_digest:016x}): the configs \
         diverged; settle it with `pair adopt-peer` (take the partner's) or `pair push` (give \
         it this box's); `compare peer` shows the difference"
    )]
    Diverged {
        ours: u64,
        our_digest: u64,
        theirs: u64,
        their_digest: u64,
    },
    #[error("the partner's config is refused, nothing changed: {0}")]
    PartnerBlob(crate::BlobError),
    /// A delta that does not apply here; the partner then sends its whole blob.
    #[error(
        "the partner's config delta does not apply here ({0}); it sends the whole config instead"
    )]
    DeltaRefused(&'static str),
    #[error(
        "--confirm {0} s is outside 1..={max} s",
        max = MAX_CONFIRM.as_secs()
    )]
    ConfirmRange(u64),
}

/// What a commit asks for.
#[derive(Debug, Clone)]
pub struct CommitRequest {
    pub confirm: Option<Duration>,
    pub comment: String,
    pub origin: CommitOrigin,
}

/// A commit that was persisted: the engines must now apply `config`.
#[derive(Debug, Clone)]
pub struct Committed {
    pub generation: u64,
    pub config: Arc<Config>,
    /// What changes, per engine (for the commit's answer and the log).
    pub preview: Preview,
    /// Validation warnings (the commit went ahead).
    pub warnings: Vec<String>,
    /// A `commit --confirm` generation this plain commit confirmed (Junos: any commit inside
    /// the window confirms it).
    pub confirmed: Option<u64>,
}

/// A commit waiting for `confirm`.
#[derive(Debug, Clone)]
pub struct PendingConfirm {
    pub deadline: Instant,
    pub generation: u64,
    /// What the timeout returns to.
    pub restore: Arc<Config>,
    pub restore_generation: u64,
}

/// The running config, the candidate and the store.
#[derive(Debug)]
pub struct Transactions<D> {
    store: SlotStore<D>,
    running: Arc<Config>,
    generation: u64,
    history: History,
    candidate: Option<Config>,
    pending: Option<PendingConfirm>,
    /// The running config's encoding and validation, for the next commit to reuse (made by
    /// `open` or by the commit of the running config).
    baseline: Option<Baseline>,
    /// [`config_digest`] of the running config (0 before anything was encoded).
    digest: u64,
    /// The generation the running one was made from (the blob header's parent).
    parent_generation: u64,
    /// The blob format commits, rollbacks, adoptions and the partner's blob are written in
    /// (older than [`blob::FORMAT_VERSION`] while an upgrade is not finished).
    write_format: u16,
    /// The format of the newest blob found in the store at open (None: nothing stored).
    stored_format: Option<u16>,
}

/// A partner's generation as [`Transactions::take_partner`] takes it.
struct PartnerConfig {
    config: Config,
    meta: BlobMeta,
    history: History,
    /// The digest the sender claims (a delta's); the rebuilt config must have it.
    digest: Option<u64>,
}

/// What [`Transactions::adopt`] did with the partner's blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Adoption {
    /// This box was behind: the partner's blob is stored as it came (same generation).
    FastForward,
    /// Diverged and forced (`pair adopt-peer`, or the partner's `pair push`): stored as a new
    /// generation on top of this box's, so this box's previous config stays in its store.
    Forced,
}

/// The running config as a partner takes it whole, not yet framed: framing (CRC, MAC over
/// ~200 KB for 1000 x 10) is left to whoever needs the whole blob, which after a commit is
/// usually nobody (the partner takes a delta).
#[derive(Debug, Clone)]
pub struct PartnerBlob {
    payload: Arc<Vec<u8>>,
    history: History,
    meta: BlobMeta,
    /// The format `payload` is laid out in.
    format: u16,
}

impl PartnerBlob {
    /// The blob, keyed with `key` (None: unkeyed), as [`Transactions::adopt`] takes it.
    pub fn frame(&self, key: Option<&MacKey>) -> Result<Vec<u8>, TransactionError> {
        Ok(blob::encode_encoded_with_history_as(
            &self.payload,
            &self.history,
            self.meta,
            key,
            self.format,
        )?)
    }

    /// The generation it carries.
    pub fn generation(&self) -> u64 {
        self.meta.generation
    }
}

/// The running config's encoding and validation, cut per virtual service.
#[derive(Debug)]
struct Baseline {
    encoded: EncodedConfig,
    validation: Validation,
}

/// What [`Transactions::open`] found, for the boot log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// A stored generation is running.
    Stored { generation: u64 },
    /// The store was empty; the seed config was committed as generation 1.
    Seeded,
    /// Nothing stored and no seed: running with an empty config.
    Empty,
    /// The store could not be read; running with the seed (not persisted) or empty.
    Unreadable { error: String },
}

fn validation_report(config: &Config) -> (Vec<String>, Vec<String>) {
    report_lines(&crate::validate(config))
}

fn report_lines(issues: &[crate::Issue]) -> (Vec<String>, Vec<String>) {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for issue in issues {
        match issue.severity {
            Severity::Error => errors.push(issue.line()),
            _ => warnings.push(issue.line()),
        }
    }
    (errors, warnings)
}

impl<D: BlockDevice> Transactions<D> {
    /// Opens the store. A stored generation wins over `seed`; `seed` only fills an empty store
    /// (`tandem run -c FILE --state DIR`).
    ///
    /// It also encodes and validates the running config once (about 3 ms CPU for 1000 x 10), so
    /// that the first commit after boot reuses the unchanged services like every later one.
    pub fn open(store: SlotStore<D>, seed: Option<Config>, unix_time_s: u64) -> (Self, Opened) {
        let (mut transactions, opened) = Self::open_store(store, seed, unix_time_s);
        if transactions.baseline.is_none() {
            transactions.baseline =
                EncodedConfig::encode(&transactions.running, None)
                    .ok()
                    .map(|encoded| Baseline {
                        encoded,
                        validation: Validation::full(&transactions.running),
                    });
        }
        if let Some(baseline) = &transactions.baseline {
            transactions.digest = config_digest(baseline.encoded.bytes());
        }
        transactions.ensure_lineage();
        (transactions, opened)
    }

    fn open_store(store: SlotStore<D>, seed: Option<Config>, unix_time_s: u64) -> (Self, Opened) {
        let mut transactions = Transactions {
            store,
            running: Arc::new(Config::default()),
            generation: 0,
            history: History::default(),
            candidate: None,
            pending: None,
            baseline: None,
            digest: 0,
            parent_generation: 0,
            write_format: blob::FORMAT_VERSION,
            stored_format: None,
        };
        let stored = match transactions.store.stored(MacPolicy::Unkeyed) {
            Ok(stored) => stored,
            Err(error) => {
                if let Some(seed) = seed {
                    transactions.running = Arc::new(seed);
                }
                return (
                    transactions,
                    Opened::Unreadable {
                        error: error.to_string(),
                    },
                );
            }
        };
        if let Some(newest) = stored.into_iter().next() {
            transactions.generation = newest.header.generation;
            transactions.parent_generation = newest.header.parent_generation;
            transactions.stored_format = Some(newest.header.format_version);
            transactions.history = newest.history;
            transactions.running = Arc::new(newest.config);
            let generation = transactions.generation;
            return (transactions, Opened::Stored { generation });
        }
        let Some(seed) = seed else {
            return (transactions, Opened::Empty);
        };
        transactions.candidate = Some(seed.clone());
        let request = CommitRequest {
            confirm: None,
            comment: "seeded from -c FILE".to_owned(),
            origin: CommitOrigin::Boot,
        };
        match transactions.commit(&request, unix_time_s, Instant::now()) {
            Ok(_) => (transactions, Opened::Seeded),
            Err(error) => {
                transactions.candidate = None;
                transactions.running = Arc::new(seed);
                (
                    transactions,
                    Opened::Unreadable {
                        error: error.to_string(),
                    },
                )
            }
        }
    }

    /// The store's device (tests "reboot" by opening it again).
    pub fn into_device(self) -> D {
        self.store.into_device()
    }

    /// Factory reset of the store: both slots erased (every stored generation and its history
    /// gone). What runs in memory is untouched; the caller reboots, and the box starts from its
    /// seed config.
    pub fn erase_store(&mut self) -> Result<(), TransactionError> {
        self.store.erase()?;
        Ok(())
    }

    pub fn running(&self) -> &Arc<Config> {
        &self.running
    }

    /// Makes the history name the running generation with its digest, which replication's
    /// fast-forward check needs: a blob stored without a history (format 1, a disk written by
    /// a tool) gets a record for its generation, a format 2 record (digest 0) gets the digest.
    /// In memory until the next commit stores it; the partner sees it in every push.
    fn ensure_lineage(&mut self) {
        if self.generation == 0 || self.digest == 0 {
            return;
        }
        let (generation, digest) = (self.generation, self.digest);
        match self
            .history
            .entries
            .as_mut_slice()
            .iter_mut()
            .find(|r| r.generation == generation)
        {
            Some(record) => {
                if record.digest == 0 {
                    record.digest = digest;
                }
            }
            None => self.history.push(CommitRecord {
                generation,
                unix_time_s: 0,
                origin: CommitOrigin::Boot,
                comment: heapless::String::try_from("stored without a history; it starts here")
                    .unwrap_or_default(),
                confirm_pending: false,
                digest,
            }),
        }
    }

    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// The running config as a blob for the partner: the same generation, history and content
    /// as stored here, with a MAC under `key` when the pair has one.
    pub fn blob_for_partner(&self, key: Option<&MacKey>) -> Result<Vec<u8>, TransactionError> {
        self.partner_blob()?.frame(key)
    }

    /// What [`Transactions::blob_for_partner`] frames, to frame later and elsewhere: the
    /// payload is shared with this box's own encoding, so taking it costs no copy.
    /// In the write format: a partner whose firmware reads only an older format gets that.
    pub fn partner_blob(&self) -> Result<PartnerBlob, TransactionError> {
        let payload = match &self.baseline {
            _ if self.write_format < blob::FORMAT_VERSION => {
                Arc::new(blob::encode_config_as(&self.running, self.write_format)?)
            }
            Some(baseline) => baseline.encoded.shared_bytes(),
            None => EncodedConfig::encode(&self.running, None)?.shared_bytes(),
        };
        Ok(PartnerBlob {
            payload,
            history: self.history.clone(),
            meta: BlobMeta {
                generation: self.generation,
                parent_generation: self.parent_generation,
                pair_id: self.running.peer_link.as_ref().map_or(0, |p| p.pair_id),
            },
            format: self.write_format,
        })
    }

    /// Takes the partner's config from its blob: decoded and checked under `policy`, validated
    /// whole, and then a fast-forward (this box runs nothing yet, or the partner's history
    /// holds this box's generation and digest: stored as it came) or, with `force`, a new
    /// generation on top of this box's. Anything else is [`TransactionError::Diverged`] and
    /// changes nothing; so does any refusal. A pending `commit --confirm` and the candidate
    /// are dropped (the partner's config replaces what they were about).
    pub fn adopt(
        &mut self,
        bytes: &[u8],
        policy: MacPolicy<'_>,
        force: bool,
        unix_time_s: u64,
    ) -> Result<(Committed, Adoption), TransactionError> {
        let decoded = blob::decode(bytes, policy, None).map_err(TransactionError::PartnerBlob)?;
        let partner = PartnerConfig {
            config: decoded.config,
            meta: BlobMeta {
                generation: decoded.header.generation,
                parent_generation: decoded.header.parent_generation,
                pair_id: decoded.header.pair_id,
            },
            history: decoded.history,
            digest: None,
        };
        self.take_partner(partner, force, unix_time_s)
    }

    /// The delta from `base` (this box's previous generation `base_generation`, digest
    /// `base_digest`) to the running config, for a partner that runs that base.
    pub fn delta_for_partner(
        &self,
        base: &Config,
        base_generation: u64,
        base_digest: u64,
    ) -> Result<Vec<u8>, TransactionError> {
        let target = crate::delta::DeltaTarget {
            generation: self.generation,
            parent_generation: self.parent_generation,
            pair_id: self.running.peer_link.as_ref().map_or(0, |p| p.pair_id),
            digest: self.digest,
        };
        crate::delta::encode(
            base,
            base_generation,
            base_digest,
            &self.running,
            target,
            &self.history,
        )
        .map_err(|_| TransactionError::DeltaRefused("it cannot be encoded"))
    }

    /// Takes the partner's commit as a delta (see [`crate::delta`]): only over the running
    /// config it names, and only a fast-forward; the rebuilt config must have the partner's
    /// digest. Any mismatch is [`TransactionError::DeltaRefused`] and changes nothing (the
    /// partner sends its whole blob then). The bytes came sealed under the pair key.
    pub fn adopt_delta(
        &mut self,
        bytes: &[u8],
        unix_time_s: u64,
    ) -> Result<(Committed, Adoption), TransactionError> {
        let delta = crate::delta::decode(bytes)
            .map_err(|_| TransactionError::DeltaRefused("it does not decode"))?;
        if (delta.base_generation, delta.base_digest) != (self.generation, self.digest) {
            if (delta.generation, delta.digest) == (self.generation, self.digest) {
                return Err(TransactionError::AlreadyRunning(delta.generation));
            }
            return Err(TransactionError::DeltaRefused(
                "it is for another generation than this box runs",
            ));
        }
        let config = delta
            .apply(&self.running)
            .map_err(|_| TransactionError::DeltaRefused("it does not fit this box's config"))?;
        let partner = PartnerConfig {
            config,
            meta: BlobMeta {
                generation: delta.generation,
                parent_generation: delta.parent_generation,
                pair_id: delta.pair_id,
            },
            history: delta.history,
            digest: Some(delta.digest),
        };
        self.take_partner(partner, false, unix_time_s)
    }

    /// The partner's config, decoded from its blob or rebuilt from a delta.
    fn take_partner(
        &mut self,
        partner: PartnerConfig,
        force: bool,
        unix_time_s: u64,
    ) -> Result<(Committed, Adoption), TransactionError> {
        let PartnerConfig {
            config,
            meta,
            history,
            digest,
        } = partner;
        // As a commit does: one comparison with the running config, and only the services
        // that changed encoded and validated again (a one-field change of a 1000 x 10 config
        // costs its decode, not a full re-encode and re-validation).
        let diff = ServiceDiff::new(&self.running, &config);
        let (encoded, validation) = match &self.baseline {
            Some(baseline) => (
                EncodedConfig::encode(&config, Some((&baseline.encoded, &diff)))?,
                Validation::incremental(&config, &baseline.validation, &diff),
            ),
            None => (
                EncodedConfig::encode(&config, None)?,
                Validation::full(&config),
            ),
        };
        let their_digest = config_digest(encoded.bytes());
        if digest.is_some_and(|expected| expected != their_digest) {
            return Err(TransactionError::DeltaRefused(
                "the config it rebuilds is not the partner's",
            ));
        }
        let theirs = meta.generation;
        if theirs == self.generation && their_digest == self.digest {
            return Err(TransactionError::AlreadyRunning(theirs));
        }
        let (errors, warnings) = report_lines(validation.issues());
        if !errors.is_empty() {
            return Err(TransactionError::Invalid {
                count: errors.len(),
                report: errors.join("\n"),
            });
        }
        let fast_forward = theirs > self.generation
            && (self.generation == 0 || history.contains(self.generation, self.digest));
        if fast_forward {
            // Stored with the same generation, parent and history, so both boxes hold the same
            // config under the same name; framed the way this box stores (unkeyed on its own
            // disk, like its own commits) and in its write format (refused when the partner's
            // config does not fit it: this box's fallback firmware could not read it).
            let stored = self.encode_stored(&config, &encoded, &history, meta)?;
            self.store.save(&stored, MacPolicy::Unkeyed)?;
            let preview = crate::impact::preview_known(&self.running, &config, &diff);
            self.baseline = Some(Baseline {
                encoded,
                validation,
            });
            self.parent_generation = meta.parent_generation;
            self.generation = theirs;
            self.digest = their_digest;
            self.history = history;
            self.running = Arc::new(config);
            self.candidate = None;
            self.pending = None;
            let committed = Committed {
                generation: theirs,
                config: Arc::clone(&self.running),
                preview,
                warnings,
                confirmed: None,
            };
            return Ok((committed, Adoption::FastForward));
        }
        if !force {
            return Err(TransactionError::Diverged {
                ours: self.generation,
                our_digest: self.digest,
                theirs,
                their_digest,
            });
        }
        // Forced: the partner's history, then this commit, numbered past both boxes' own.
        let ours = self.generation;
        let our_digest = self.digest;
        let saved = (
            core::mem::replace(&mut self.history, history),
            self.generation,
        );
        self.generation = ours.max(theirs);
        let request = CommitRequest {
            confirm: None,
            comment: format!(
                "adopted the partner's generation {theirs} ({their_digest:016x}) over this \
                 box's diverged generation {ours} ({our_digest:016x})"
            ),
            origin: CommitOrigin::Peer,
        };
        let known = Known {
            validation,
            diff: Some(diff),
            warnings,
        };
        match self.persist(config, &request, unix_time_s, known) {
            Ok(committed) => {
                self.parent_generation = theirs;
                self.pending = None;
                Ok((committed, Adoption::Forced))
            }
            Err(failed) => {
                self.history = saved.0;
                self.generation = saved.1;
                Err(failed.0)
            }
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The blob format this box writes (see [`Transactions::set_write_format`]).
    pub fn write_format(&self) -> u16 {
        self.write_format
    }

    /// The format of the newest blob the store held at open (what the firmware before this
    /// one wrote, on the first boot after an upgrade); None when nothing was stored.
    pub fn stored_format(&self) -> Option<u16> {
        self.stored_format
    }

    /// Sets the format every later write uses: commits, rollbacks, confirm timeouts, adoptions
    /// and the blob for the partner. Refused (nothing changed) for a format this firmware does
    /// not write. The running config is not written again: the next commit uses it.
    pub fn set_write_format(&mut self, format: u16) -> Result<(), crate::BlobError> {
        if !(blob::OLDEST_WRITTEN_FORMAT..=blob::FORMAT_VERSION).contains(&format) {
            return Err(crate::BlobError::FormatNotWritable {
                format,
                oldest: blob::OLDEST_WRITTEN_FORMAT,
                newest: blob::FORMAT_VERSION,
            });
        }
        self.write_format = format;
        Ok(())
    }

    /// Whether the candidate fits the write format (`preview` and `commit` say why not).
    pub fn candidate_fits(&self) -> Result<(), crate::BlobError> {
        blob::check_fits(self.candidate(), self.write_format)
    }

    /// `config` (encoded in the newest layout as `encoded`) as the blob this box stores: in
    /// the write format, re-encoded in its layout when that is older.
    fn encode_stored(
        &self,
        config: &Config,
        encoded: &EncodedConfig,
        history: &History,
        meta: BlobMeta,
    ) -> Result<Vec<u8>, crate::BlobError> {
        if self.write_format >= blob::FORMAT_VERSION {
            return blob::encode_encoded_with_history(encoded.bytes(), history, meta, None);
        }
        let payload = blob::encode_config_as(config, self.write_format)?;
        blob::encode_encoded_with_history_as(&payload, history, meta, None, self.write_format)
    }

    /// The candidate (the running config when nothing was edited).
    pub fn candidate(&self) -> &Config {
        self.candidate.as_ref().unwrap_or(&self.running)
    }

    /// True when the candidate differs from the running config.
    pub fn has_changes(&self) -> bool {
        self.candidate
            .as_ref()
            .is_some_and(|candidate| *candidate != *self.running)
    }

    pub fn pending(&self) -> Option<&PendingConfirm> {
        self.pending.as_ref()
    }

    pub fn history(&self) -> &History {
        &self.history
    }

    /// `set PATH VALUE` on the candidate.
    pub fn set(&mut self, path: &str, value: &str) -> Result<(), TransactionError> {
        let edited = crate::edit::set(self.candidate(), path, value)
            .map_err(|e| TransactionError::Edit(e.to_string()))?;
        self.candidate = Some(edited);
        Ok(())
    }

    /// `delete PATH` on the candidate.
    pub fn delete(&mut self, path: &str) -> Result<(), TransactionError> {
        let edited = crate::edit::delete(self.candidate(), path)
            .map_err(|e| TransactionError::Edit(e.to_string()))?;
        self.candidate = Some(edited);
        Ok(())
    }

    /// Replaces the candidate (`load FILE`); returns the validation report lines.
    pub fn load(&mut self, config: Config) -> Vec<String> {
        let (errors, warnings) = validation_report(&config);
        self.candidate = Some(config);
        errors.into_iter().chain(warnings).collect()
    }

    /// Drops the candidate's changes.
    pub fn discard(&mut self) {
        self.candidate = None;
    }

    /// `compare`: the candidate against the running config as +/- lines.
    pub fn compare(&self) -> Vec<String> {
        crate::compare::compare(&self.running, self.candidate())
    }

    /// `preview`: what a commit would change, per engine.
    pub fn preview(&self) -> Preview {
        crate::impact::preview(&self.running, self.candidate())
    }

    /// Validates, persists and makes the candidate the running config.
    pub fn commit(
        &mut self,
        request: &CommitRequest,
        unix_time_s: u64,
        now: Instant,
    ) -> Result<Committed, TransactionError> {
        if let Some(confirm) = request.confirm {
            if confirm.is_zero() || confirm > MAX_CONFIRM {
                return Err(TransactionError::ConfirmRange(confirm.as_secs()));
            }
        }
        let needs_change = self.generation > 0 && request.confirm.is_none();
        if needs_change && self.candidate.is_none() {
            return Err(TransactionError::NothingToCommit(self.generation));
        }
        // Taken, not cloned (a 1000 x 10 config clones in milliseconds); put back on failure.
        let candidate = match self.candidate.take() {
            Some(candidate) => candidate,
            None => (*self.running).clone(),
        };
        // One comparison with the running config, shared by every step below.
        let diff = ServiceDiff::new(&self.running, &candidate);
        if needs_change && diff.identical() {
            self.candidate = Some(candidate);
            return Err(TransactionError::NothingToCommit(self.generation));
        }
        let validation = match &self.baseline {
            Some(baseline) => Validation::incremental(&candidate, &baseline.validation, &diff),
            None => Validation::full(&candidate),
        };
        let (errors, warnings) = report_lines(validation.issues());
        if !errors.is_empty() {
            self.candidate = Some(candidate);
            return Err(TransactionError::Invalid {
                count: errors.len(),
                report: errors.join("\n"),
            });
        }
        let previous = (Arc::clone(&self.running), self.generation);
        let known = Known {
            validation,
            diff: Some(diff),
            warnings,
        };
        let committed = match self.persist(candidate, request, unix_time_s, known) {
            Ok(committed) => committed,
            Err(failed) => {
                let (error, candidate) = *failed;
                self.candidate = Some(candidate);
                return Err(error);
            }
        };
        let mut committed = committed;
        self.pending = match (request.confirm, self.pending.take()) {
            (None, earlier) => {
                committed.confirmed = earlier.map(|pending| pending.generation);
                None
            }
            // A second commit while one waits keeps the original point to return to.
            (Some(confirm), Some(earlier)) => Some(PendingConfirm {
                deadline: now + confirm,
                generation: committed.generation,
                ..earlier
            }),
            (Some(confirm), None) => Some(PendingConfirm {
                deadline: now + confirm,
                generation: committed.generation,
                restore: previous.0,
                restore_generation: previous.1,
            }),
        };
        Ok(committed)
    }

    /// `confirm`: keeps the commit waiting for it.
    pub fn confirm(&mut self) -> Result<u64, TransactionError> {
        let pending = self
            .pending
            .take()
            .ok_or(TransactionError::NothingToConfirm)?;
        Ok(pending.generation)
    }

    /// The confirm window passed: commits the config from before the unconfirmed commit.
    pub fn confirm_timed_out(&mut self, unix_time_s: u64) -> Result<Committed, TransactionError> {
        let pending = self
            .pending
            .take()
            .ok_or(TransactionError::NothingToConfirm)?;
        let config = (*pending.restore).clone();
        let known = Known::validate(&config);
        let request = CommitRequest {
            confirm: None,
            comment: format!(
                "generation {} was not confirmed in time: back to the config of generation {}",
                pending.generation, pending.restore_generation
            ),
            origin: CommitOrigin::ConfirmTimeout,
        };
        let committed = self
            .persist(config, &request, unix_time_s, known)
            .map_err(|failed| failed.0)?;
        // The candidate is the running config again.
        self.candidate = None;
        Ok(committed)
    }

    /// `rollback [N]`: commits stored generation N (default: the one before the running one).
    pub fn rollback(
        &mut self,
        wanted: Option<u64>,
        origin: CommitOrigin,
        unix_time_s: u64,
    ) -> Result<Committed, TransactionError> {
        let stored = self.store.stored(MacPolicy::Unkeyed)?;
        let kept: Vec<u64> = stored.iter().map(|b| b.header.generation).collect();
        let wanted = match wanted {
            Some(generation) => generation,
            None => kept
                .iter()
                .copied()
                .find(|g| *g < self.generation)
                .ok_or_else(|| TransactionError::NotStored {
                    wanted: self.generation.saturating_sub(1),
                    kept: describe_kept(&kept),
                })?,
        };
        if wanted == self.generation {
            return Err(TransactionError::AlreadyRunning(wanted));
        }
        let Some(blob) = stored.into_iter().find(|b| b.header.generation == wanted) else {
            return Err(TransactionError::NotStored {
                wanted,
                kept: describe_kept(&kept),
            });
        };
        let request = CommitRequest {
            confirm: None,
            comment: format!("rollback to generation {wanted}"),
            origin,
        };
        let known = Known::validate(&blob.config);
        let committed = self
            .persist(blob.config, &request, unix_time_s, known)
            .map_err(|failed| failed.0)?;
        self.candidate = None;
        self.pending = None;
        Ok(committed)
    }

    /// Writes `config` as the next generation; on success it is the running config, on failure
    /// it comes back with the error and nothing changed.
    fn persist(
        &mut self,
        config: Config,
        request: &CommitRequest,
        unix_time_s: u64,
        known: Known,
    ) -> Result<Committed, Box<(TransactionError, Config)>> {
        let Known {
            validation,
            diff,
            warnings,
        } = known;
        let generation = self.generation + 1;
        // Unchanged services are copied from the running config's encoding.
        let base = self.baseline.as_ref().zip(diff.as_ref());
        let encoded = match EncodedConfig::encode(&config, base.map(|(b, d)| (&b.encoded, d))) {
            Ok(encoded) => encoded,
            Err(error) => return Err(Box::new((error.into(), config))),
        };
        let digest = config_digest(encoded.bytes());
        let mut history = self.history.clone();
        // Longer comments are cut at the history's bound, at a character boundary.
        let mut comment = heapless::String::<{ crate::history::COMMENT_BYTES }>::new();
        for c in request.comment.chars() {
            if comment.push(c).is_err() {
                break;
            }
        }
        history.push(CommitRecord {
            generation,
            unix_time_s,
            origin: request.origin,
            comment,
            confirm_pending: request.confirm.is_some(),
            digest,
        });
        let meta = BlobMeta {
            generation,
            parent_generation: self.generation,
            pair_id: config.peer_link.as_ref().map_or(0, |p| p.pair_id),
        };
        let bytes = match self.encode_stored(&config, &encoded, &history, meta) {
            Ok(bytes) => bytes,
            Err(error) => return Err(Box::new((error.into(), config))),
        };
        if let Err(error) = self.store.save(&bytes, MacPolicy::Unkeyed) {
            return Err(Box::new((error.into(), config)));
        }
        let preview = match &diff {
            Some(diff) => crate::impact::preview_known(&self.running, &config, diff),
            None => crate::impact::preview(&self.running, &config),
        };
        self.baseline = Some(Baseline {
            encoded,
            validation,
        });
        self.parent_generation = self.generation;
        self.generation = generation;
        self.digest = digest;
        self.history = history;
        self.running = Arc::new(config);
        self.candidate = None;
        Ok(Committed {
            generation,
            config: Arc::clone(&self.running),
            preview,
            warnings,
            confirmed: None,
        })
    }
}

/// What a commit knows of the config it persists.
struct Known {
    validation: Validation,
    /// The comparison with the running config, when the commit made one.
    diff: Option<ServiceDiff>,
    /// The validation's warnings as report lines.
    warnings: Vec<String>,
}

impl Known {
    /// A config committed without an edit (rollback, confirm timeout): validated afresh.
    fn validate(config: &Config) -> Self {
        let validation = Validation::full(config);
        let (_, warnings) = report_lines(validation.issues());
        Known {
            validation,
            diff: None,
            warnings,
        }
    }
}

fn describe_kept(kept: &[u64]) -> String {
    match kept {
        [] => "no generation".to_owned(),
        [one] => format!("only generation {one}"),
        many => format!(
            "generations {}",
            many.iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(" and ")
        ),
    }
}

/// `history` as text, newest first.
pub fn render_history(history: &History, running: u64) -> String {
    let mut text = String::new();
    for record in history.entries.iter().rev() {
        let when = if record.unix_time_s == 0 {
            "time unknown".to_owned()
        } else {
            format_utc(record.unix_time_s)
        };
        text.push_str(&format!(
            "history: {:>5}{} {when} {}{}{}\n",
            record.generation,
            if record.generation == running {
                " (running)"
            } else {
                ""
            },
            record.origin.as_str(),
            if record.confirm_pending {
                " commit-confirm"
            } else {
                ""
            },
            if record.comment.is_empty() {
                String::new()
            } else {
                format!(": {}", record.comment)
            }
        ));
    }
    if text.is_empty() {
        text.push_str("history: no commits yet\n");
    }
    text
}

/// `YYYY-MM-DD HH:MM:SS UTC` from seconds since the epoch (civil-from-days, H. Hinnant).
pub fn format_utc(unix: u64) -> String {
    let days = i64::try_from(unix / 86_400).unwrap_or(0);
    let seconds = unix % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// Seconds since the epoch by the wall clock (0 when it is unset or before 2020: unknown).
pub fn unix_now() -> u64 {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if seconds > 1_577_836_800 {
        seconds
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::{FaultyDevice, MemDevice};

    const SLOT: u64 = 64 * 1024;

    fn config(hostname: &str, addresses: &[&str]) -> Config {
        let mut text = format!(
            "[system]\nhostname = \"{hostname}\"\n[[interfaces]]\nname = \"eth0\"\naddresses = ["
        );
        text.push_str(
            &addresses
                .iter()
                .map(|a| format!("\"{a}\""))
                .collect::<Vec<_>>()
                .join(", "),
        );
        text.push_str("]\n");
        crate::text::from_toml(&text).unwrap()
    }

    fn memory() -> SlotStore<MemDevice> {
        SlotStore::new(MemDevice::erased(usize::try_from(SLOT * 2).unwrap()), SLOT)
    }

    fn request(confirm: Option<u64>) -> CommitRequest {
        CommitRequest {
            confirm: confirm.map(Duration::from_secs),
            comment: "test".into(),
            origin: CommitOrigin::ControlSocket,
        }
    }

    #[test]
    fn a_seed_fills_an_empty_store_and_a_stored_generation_wins_over_it() {
        let (mut tx, opened) = Transactions::open(memory(), Some(config("a", &["10.0.0.1/24"])), 1);
        assert_eq!(opened, Opened::Seeded);
        assert_eq!(tx.generation(), 1);
        tx.set("system.hostname", "b").unwrap();
        tx.commit(&request(None), 2, Instant::now()).unwrap();
        let device = tx.into_device();
        let (tx, opened) =
            Transactions::open(SlotStore::new(device, SLOT), Some(config("seed", &[])), 3);
        assert_eq!(opened, Opened::Stored { generation: 2 });
        assert_eq!(tx.running().system.hostname.as_str(), "b");
        let origins: Vec<CommitOrigin> = tx.history().entries.iter().map(|r| r.origin).collect();
        assert_eq!(origins, [CommitOrigin::Boot, CommitOrigin::ControlSocket]);
    }

    /// `config(hostname, ["10.0.0.1/24"])` with a VRRP instance that tracks a check (format 6).
    fn tracking(hostname: &str) -> Config {
        let text = format!(
            "[system]\nhostname = \"{hostname}\"\n[[interfaces]]\nname = \"eth0\"\n\
             addresses = [\"10.0.0.1/24\"]\n[[vrrp]]\nname = \"web\"\nvrid = 51\n\
             interface = \"eth0\"\n[[vrrp.vips]]\naddress = \"10.0.0.10\"\nprefix = 24\n\
             [[vrrp.track_checks]]\nname = \"gw\"\naddress = \"10.0.0.254\"\nport = 80\n\
             weight = -20\n[vrrp.track_checks.check]\nkind = \"tcp\"\n"
        );
        let config = crate::text::from_toml(&text).unwrap();
        let (errors, _) = validation_report(&config);
        assert!(errors.is_empty(), "{errors:?}");
        config
    }

    fn stored_formats<D: BlockDevice>(tx: &mut Transactions<D>) -> Vec<(u64, u16)> {
        let stored = tx.store.stored(MacPolicy::Unkeyed).unwrap();
        stored
            .iter()
            .map(|b| (b.header.generation, b.header.format_version))
            .collect()
    }

    fn refused_as_misfit(error: &TransactionError) -> bool {
        matches!(
            error,
            TransactionError::Encode(crate::BlobError::DoesNotFit { format: 5, path, needs: 6 })
                if path == "vrrp.web.track_checks"
        )
    }

    #[test]
    fn an_older_write_format_refuses_what_it_cannot_hold_until_it_moves_up() {
        let (mut tx, _) = Transactions::open(memory(), Some(config("a", &["10.0.0.1/24"])), 1);
        assert_eq!(tx.write_format(), blob::FORMAT_VERSION);
        assert_eq!(stored_formats(&mut tx), [(1, 6)]);
        assert!(matches!(
            tx.set_write_format(3),
            Err(crate::BlobError::FormatNotWritable { format: 3, .. })
        ));
        tx.set_write_format(5).unwrap();
        assert_eq!(tx.write_format(), 5);

        // A candidate format 5 cannot hold: refused by commit, named by candidate_fits,
        // nothing written, the running config and generation unchanged, the candidate kept.
        tx.load(tracking("a"));
        assert!(tx.candidate_fits().is_err());
        let error = tx.commit(&request(None), 2, Instant::now()).unwrap_err();
        assert!(refused_as_misfit(&error), "{error}");
        assert!(
            error.to_string().contains("delete vrrp.web.track_checks"),
            "{error}"
        );
        assert_eq!(tx.generation(), 1);
        assert!(tx.running().vrrp.is_empty());
        assert!(tx.has_changes());
        assert_eq!(stored_formats(&mut tx), [(1, 6)]);

        // What fits is written as format 5, and the partner's blob is format 5 too.
        tx.discard();
        assert_eq!(commit_hostname(&mut tx, "b", 3), 2);
        assert_eq!(stored_formats(&mut tx), [(2, 5), (1, 6)]);
        let for_partner = tx.blob_for_partner(None).unwrap();
        let decoded = blob::decode(&for_partner, MacPolicy::Unkeyed, None).unwrap();
        assert_eq!(decoded.header.format_version, 5);
        assert_eq!(decoded.config, **tx.running());

        // The write format moves up: the same candidate commits, as format 6.
        tx.set_write_format(6).unwrap();
        tx.load(tracking("b"));
        assert!(tx.candidate_fits().is_ok());
        assert_eq!(
            tx.commit(&request(None), 4, Instant::now())
                .unwrap()
                .generation,
            3
        );
        assert_eq!(stored_formats(&mut tx), [(3, 6), (2, 5)]);

        // Back down (a partner on older firmware): a rollback to a config that fits is written
        // as format 5; neither a rollback nor a commit of one that does not fit is written.
        tx.set_write_format(5).unwrap();
        let rolled = tx
            .rollback(Some(2), CommitOrigin::ControlSocket, 5)
            .unwrap();
        assert_eq!(rolled.generation, 4);
        assert_eq!(stored_formats(&mut tx), [(4, 5), (3, 6)]);
        let error = tx
            .rollback(Some(3), CommitOrigin::ControlSocket, 6)
            .unwrap_err();
        assert!(refused_as_misfit(&error), "{error}");
        assert_eq!(tx.generation(), 4);
        // A confirm timeout back to a config that fits: written as format 5.
        tx.set_write_format(6).unwrap();
        tx.load(tracking("d"));
        tx.commit(&request(Some(30)), 7, Instant::now()).unwrap();
        tx.set_write_format(5).unwrap();
        tx.load(tracking("e"));
        assert!(refused_as_misfit(
            &tx.commit(&request(None), 8, Instant::now()).unwrap_err()
        ));
        assert!(tx.pending().is_some());
        tx.discard();
        let back = tx.confirm_timed_out(9).unwrap();
        assert_eq!(back.generation, 6);
        assert!(back.config.vrrp.is_empty());
        assert_eq!(stored_formats(&mut tx), [(6, 5), (5, 6)]);

        // A reboot: the store says which format the firmware before wrote.
        let device = tx.into_device();
        let (tx, _) = Transactions::open(SlotStore::new(device, SLOT), None, 11);
        assert_eq!(tx.stored_format(), Some(5));
        assert_eq!(tx.write_format(), blob::FORMAT_VERSION);
    }

    #[test]
    fn a_partner_config_the_write_format_cannot_hold_is_refused_and_changes_nothing() {
        let (mut a, _) = Transactions::open(memory(), Some(config("a", &["10.0.0.1/24"])), 1);
        let (mut b, _) = Transactions::open(memory(), None, 1);
        b.adopt(
            &a.blob_for_partner(None).unwrap(),
            MacPolicy::Unkeyed,
            false,
            2,
        )
        .unwrap();
        b.set_write_format(5).unwrap();
        a.load(tracking("a"));
        a.commit(&request(None), 3, Instant::now()).unwrap();
        let error = b
            .adopt(
                &a.blob_for_partner(None).unwrap(),
                MacPolicy::Unkeyed,
                false,
                4,
            )
            .unwrap_err();
        assert!(refused_as_misfit(&error), "{error}");
        assert_eq!(b.generation(), 1);
        assert_eq!(stored_formats(&mut b), [(1, 6)]);
        // Once it writes format 6 it takes it.
        b.set_write_format(6).unwrap();
        b.adopt(
            &a.blob_for_partner(None).unwrap(),
            MacPolicy::Unkeyed,
            false,
            5,
        )
        .unwrap();
        assert_eq!(b.generation(), 2);
        assert_eq!(b.running().vrrp[0].track_checks.len(), 1);
    }

    fn commit_hostname(tx: &mut Transactions<MemDevice>, hostname: &str, time: u64) -> u64 {
        tx.set("system.hostname", hostname).unwrap();
        tx.commit(&request(None), time, Instant::now())
            .unwrap()
            .generation
    }

    #[test]
    fn a_partner_blob_taken_earlier_frames_its_own_generation_after_later_commits() {
        let (mut a, _) = Transactions::open(memory(), Some(config("a", &["10.0.0.1/24"])), 1);
        let key = MacKey([7; 32]);
        let earlier = a.partner_blob().unwrap();
        let earlier_blob = a.blob_for_partner(Some(&key)).unwrap();
        commit_hostname(&mut a, "a2", 2);
        commit_hostname(&mut a, "a3", 3);
        assert_eq!(earlier.generation(), 1);
        assert_eq!(earlier.frame(Some(&key)).unwrap(), earlier_blob);
        let (mut b, _) = Transactions::open(memory(), None, 1);
        b.adopt(&earlier_blob, MacPolicy::Require(&key), false, 4)
            .unwrap();
        assert_eq!(b.running().system.hostname.as_str(), "a");
        // Taken now, it is the running generation's.
        let now = a.partner_blob().unwrap();
        assert_eq!(now.generation(), 3);
        assert_eq!(now.frame(None).unwrap(), a.blob_for_partner(None).unwrap());
    }

    #[test]
    fn a_delta_over_the_running_base_lands_as_the_whole_blob_would() {
        let (mut a, _) = Transactions::open(memory(), Some(config("a", &["10.0.0.1/24"])), 1);
        let (mut b, _) = Transactions::open(memory(), None, 1);
        let key = MacKey([7; 32]);
        b.adopt(
            &a.blob_for_partner(Some(&key)).unwrap(),
            MacPolicy::Require(&key),
            false,
            2,
        )
        .unwrap();
        let (base, base_generation, base_digest) =
            (Arc::clone(a.running()), a.generation(), a.digest());
        commit_hostname(&mut a, "a2", 3);
        let delta = a
            .delta_for_partner(&base, base_generation, base_digest)
            .unwrap();
        assert!(delta.len() < a.blob_for_partner(Some(&key)).unwrap().len());
        // A box running something else refuses it and keeps what it runs.
        let (mut c, _) = Transactions::open(memory(), Some(config("c", &["10.0.0.3/24"])), 1);
        let before = (c.generation(), c.digest());
        assert!(matches!(
            c.adopt_delta(&delta, 4),
            Err(TransactionError::DeltaRefused(_))
        ));
        assert_eq!((c.generation(), c.digest()), before);
        // The partner running the base takes it: same generation, digest and history as A.
        let (done, how) = b.adopt_delta(&delta, 4).unwrap();
        assert_eq!(how, Adoption::FastForward);
        assert_eq!(done.generation, a.generation());
        assert_eq!((b.generation(), b.digest()), (a.generation(), a.digest()));
        assert_eq!(b.history(), a.history());
        assert_eq!(**b.running(), **a.running());
        // Again: it runs that generation already.
        assert!(matches!(
            b.adopt_delta(&delta, 5),
            Err(TransactionError::AlreadyRunning(_))
        ));
        // A delta whose claimed digest is not what it rebuilds is refused.
        let mut forged = crate::delta::decode(&delta).unwrap();
        forged.digest ^= 1;
        forged.base_generation = b.generation();
        forged.base_digest = b.digest();
        forged.generation += 1;
        let mut bytes = crate::delta::DELTA_MAGIC.to_vec();
        bytes.extend_from_slice(&postcard::to_allocvec(&forged).unwrap());
        assert!(matches!(
            b.adopt_delta(&bytes, 6),
            Err(TransactionError::DeltaRefused(_))
        ));
        assert_eq!((b.generation(), b.digest()), (a.generation(), a.digest()));
    }

    #[test]
    fn the_partner_fast_forwards_and_then_runs_the_same_generation_and_digest() {
        let (mut a, _) = Transactions::open(memory(), Some(config("a", &["10.0.0.1/24"])), 1);
        let (mut b, _) = Transactions::open(memory(), None, 1);
        assert_eq!((b.generation(), b.digest()), (0, b.digest()));
        // A fresh box takes anything.
        let key = MacKey([7; 32]);
        let blob = a.blob_for_partner(Some(&key)).unwrap();
        let (done, how) = b.adopt(&blob, MacPolicy::Require(&key), false, 2).unwrap();
        assert_eq!(how, Adoption::FastForward);
        assert_eq!(done.generation, 1);
        assert_eq!((b.generation(), b.digest()), (a.generation(), a.digest()));
        assert_eq!(b.history(), a.history());
        // Two commits on A while B missed the first push: still a fast-forward.
        commit_hostname(&mut a, "a2", 3);
        commit_hostname(&mut a, "a3", 4);
        let blob = a.blob_for_partner(Some(&key)).unwrap();
        b.adopt(&blob, MacPolicy::Require(&key), false, 5).unwrap();
        assert_eq!(b.running().system.hostname.as_str(), "a3");
        assert_eq!((b.generation(), b.digest()), (3, a.digest()));
        // The same push again changes nothing.
        assert!(matches!(
            b.adopt(&blob, MacPolicy::Require(&key), false, 5),
            Err(TransactionError::AlreadyRunning(3))
        ));
        // B then commits and A fast-forwards the other way; B's reboot keeps what it adopted.
        commit_hostname(&mut b, "b4", 6);
        let blob = b.blob_for_partner(None).unwrap();
        a.adopt(&blob, MacPolicy::Unkeyed, false, 7).unwrap();
        assert_eq!(a.running().system.hostname.as_str(), "b4");
        let device = b.into_device();
        let (b, opened) = Transactions::open(SlotStore::new(device, SLOT), None, 8);
        assert_eq!(opened, Opened::Stored { generation: 4 });
        assert_eq!(b.digest(), a.digest());
    }

    #[test]
    fn a_blob_stored_without_history_still_fast_forwards_its_partner() {
        // A config disk written by a tool: generation 1, no history records.
        let mut store = memory();
        let first = config("a", &["10.0.0.1/24"]);
        let meta = BlobMeta {
            generation: 1,
            parent_generation: 0,
            pair_id: 0,
        };
        store
            .save(
                &blob::encode(&first, meta, None).unwrap(),
                MacPolicy::Unkeyed,
            )
            .unwrap();
        let (mut a, _) = Transactions::open(store, None, 1);
        assert!(a.history().contains(1, a.digest()));
        let (mut b, _) = Transactions::open(memory(), None, 1);
        b.adopt(
            &a.blob_for_partner(None).unwrap(),
            MacPolicy::Unkeyed,
            false,
            2,
        )
        .unwrap();
        commit_hostname(&mut a, "a2", 3);
        b.adopt(
            &a.blob_for_partner(None).unwrap(),
            MacPolicy::Unkeyed,
            false,
            4,
        )
        .unwrap();
        assert_eq!(b.running().system.hostname.as_str(), "a2");
    }

    #[test]
    fn diverged_configs_are_refused_unless_forced_and_the_loser_stays_stored() {
        let (mut a, _) = Transactions::open(memory(), Some(config("a", &["10.0.0.1/24"])), 1);
        let (mut b, _) = Transactions::open(memory(), None, 1);
        b.adopt(
            &a.blob_for_partner(None).unwrap(),
            MacPolicy::Unkeyed,
            false,
            2,
        )
        .unwrap();
        // The cable is out: both commit.
        commit_hostname(&mut a, "edited-on-a", 3);
        commit_hostname(&mut b, "edited-on-b", 3);
        assert_eq!(a.generation(), b.generation());
        assert_ne!(a.digest(), b.digest());
        let from_a = a.blob_for_partner(None).unwrap();
        let refused = b.adopt(&from_a, MacPolicy::Unkeyed, false, 4).unwrap_err();
        assert!(matches!(
            refused,
            TransactionError::Diverged {
                ours: 2,
                theirs: 2,
                ..
            }
        ));
        assert!(refused.to_string().contains("pair adopt-peer"), "{refused}");
        assert_eq!(b.running().system.hostname.as_str(), "edited-on-b");
        // `pair adopt-peer` on B: a new generation past both, with A's history under it.
        let (done, how) = b.adopt(&from_a, MacPolicy::Unkeyed, true, 5).unwrap();
        assert_eq!(how, Adoption::Forced);
        assert_eq!(done.generation, 3);
        assert_eq!(b.running().system.hostname.as_str(), "edited-on-a");
        assert_eq!(b.digest(), a.digest());
        assert_eq!(b.history().latest().unwrap().origin, CommitOrigin::Peer);
        // A then fast-forwards to B's generation 3 (its own generation 2 is in B's history).
        a.adopt(
            &b.blob_for_partner(None).unwrap(),
            MacPolicy::Unkeyed,
            false,
            6,
        )
        .unwrap();
        assert_eq!((a.generation(), a.digest()), (b.generation(), b.digest()));
        // B's own diverged generation 2 is still in its store.
        let stored = b.store.stored(MacPolicy::Unkeyed).unwrap();
        assert!(stored
            .iter()
            .any(|blob| blob.config.system.hostname.as_str() == "edited-on-b"));
    }

    #[test]
    fn a_bad_partner_blob_changes_nothing() {
        let (a, _) = Transactions::open(memory(), Some(config("a", &["10.0.0.1/24"])), 1);
        let (mut b, _) = Transactions::open(memory(), Some(config("b", &["10.0.0.2/24"])), 1);
        let key = MacKey([1; 32]);
        let blob = a.blob_for_partner(Some(&key)).unwrap();
        // Wrong key, no key, a flipped bit, a truncation: refused, B untouched.
        let before = (b.generation(), b.digest());
        assert!(matches!(
            b.adopt(&blob, MacPolicy::Require(&MacKey([2; 32])), true, 2),
            Err(TransactionError::PartnerBlob(_))
        ));
        assert!(b.adopt(&blob, MacPolicy::Unkeyed, true, 2).is_err());
        let mut flipped = blob.clone();
        flipped[40] ^= 1;
        assert!(b
            .adopt(&flipped, MacPolicy::Require(&key), true, 2)
            .is_err());
        assert!(b
            .adopt(&blob[..blob.len() - 1], MacPolicy::Require(&key), true, 2)
            .is_err());
        // An invalid config (one interface listed twice) is refused whole even when forced.
        let bad = crate::text::from_toml(
            "[[interfaces]]\nname = \"eth0\"\n[[interfaces]]\nname = \"eth0\"\n",
        )
        .unwrap();
        let bad_blob = blob::encode(
            &bad,
            BlobMeta {
                generation: 9,
                parent_generation: 8,
                pair_id: 0,
            },
            None,
        )
        .unwrap();
        assert!(matches!(
            b.adopt(&bad_blob, MacPolicy::Unkeyed, true, 2),
            Err(TransactionError::Invalid { .. })
        ));
        assert_eq!((b.generation(), b.digest()), before);
        assert_eq!(b.running().system.hostname.as_str(), "b");
    }

    #[test]
    fn edits_touch_only_the_candidate_until_commit() {
        let (mut tx, _) = Transactions::open(memory(), Some(config("a", &["10.0.0.1/24"])), 1);
        assert!(!tx.has_changes());
        assert!(matches!(
            tx.commit(&request(None), 1, Instant::now()),
            Err(TransactionError::NothingToCommit(1))
        ));
        tx.set("system.hostname", "b").unwrap();
        assert!(tx.has_changes());
        assert_eq!(tx.running().system.hostname.as_str(), "a");
        assert!(!tx.compare().is_empty());
        assert!(tx.set("system.no_such_field", "1").is_err());
        tx.discard();
        assert!(!tx.has_changes());
    }

    #[test]
    fn edits_that_restore_the_running_config_leave_nothing_to_commit() {
        let (mut tx, _) = Transactions::open(memory(), Some(config("a", &["10.0.0.1/24"])), 1);
        tx.set("system.hostname", "b").unwrap();
        tx.set("system.hostname", "a").unwrap();
        assert!(matches!(
            tx.commit(&request(None), 2, Instant::now()),
            Err(TransactionError::NothingToCommit(1))
        ));
        // The candidate stays (`compare` shows no change), and a real change still commits.
        assert!(!tx.has_changes());
        tx.load(config("a", &["10.0.0.1/24"]));
        assert!(matches!(
            tx.commit(&request(None), 2, Instant::now()),
            Err(TransactionError::NothingToCommit(1))
        ));
        tx.set("interfaces.eth0.addresses", "10.0.0.2/24").unwrap();
        let committed = tx.commit(&request(None), 2, Instant::now()).unwrap();
        assert_eq!(committed.generation, 2);
        // `--confirm` commits even an unchanged candidate (it starts a confirm window).
        assert!(tx.commit(&request(Some(5)), 3, Instant::now()).is_ok());
    }

    #[test]
    fn commits_report_what_a_full_validation_reports_and_store_what_they_ran() {
        let mut running = config("a", &["10.0.0.1/24"]);
        for index in 0..8u8 {
            let service = crate::model::VirtualService {
                name: format!("s{index}").as_str().try_into().unwrap(),
                address: Some(std::net::IpAddr::from([10, 0, 0, 100 + index])),
                port: 80,
                ..Default::default()
            };
            running.virtual_services.push(service).unwrap();
        }
        let (mut tx, _) = Transactions::open(memory(), Some(running), 1);
        let mut refused = 0;
        let edits: [(&str, &str); 5] = [
            ("virtual_services.s0.port", "81"),
            // The same IPVS key as service s1: refused, the report names both.
            ("virtual_services.s2.address", "10.0.0.101"),
            ("virtual_services.s1.port", "82"),
            ("virtual_services.s3.address", "10.0.0.1"),
            ("system.hostname", "b"),
        ];
        for (path, value) in edits {
            tx.set(path, value).unwrap();
            let (errors, warnings) = validation_report(tx.candidate());
            match tx.commit(&request(None), 2, Instant::now()) {
                Ok(committed) => {
                    assert!(errors.is_empty());
                    assert_eq!(committed.warnings, warnings);
                    let device = tx.into_device();
                    let (reopened, _) = Transactions::open(SlotStore::new(device, SLOT), None, 3);
                    assert_eq!(reopened.running(), &committed.config);
                    tx = reopened;
                }
                Err(TransactionError::Invalid { count, report }) => {
                    assert_eq!((count, report), (errors.len(), errors.join("\n")));
                    tx.discard();
                    refused += 1;
                }
                Err(other) => panic!("{path} {value}: {other}"),
            }
        }
        assert_eq!(refused, 1);
        assert_eq!(tx.generation(), 5);
    }

    #[test]
    fn an_invalid_candidate_is_refused_whole() {
        let (mut tx, _) = Transactions::open(memory(), Some(config("a", &[])), 1);
        let mut broken = config("a", &[]);
        broken
            .vrrp
            .push(crate::model::VrrpInstance::default())
            .unwrap();
        tx.load(broken);
        let error = tx.commit(&request(None), 1, Instant::now()).unwrap_err();
        assert!(matches!(error, TransactionError::Invalid { .. }), "{error}");
        assert_eq!(tx.generation(), 1);
    }

    #[test]
    fn an_unconfirmed_commit_returns_to_the_config_before_it() {
        let start = Instant::now();
        let (mut tx, _) = Transactions::open(memory(), Some(config("a", &[])), 1);
        tx.set("system.hostname", "b").unwrap();
        tx.commit(&request(Some(5)), 2, start).unwrap();
        // A second commit inside the window keeps the original point to return to.
        tx.set("system.hostname", "c").unwrap();
        tx.commit(&request(Some(5)), 3, start + Duration::from_secs(1))
            .unwrap();
        let pending = tx.pending().unwrap().clone();
        assert_eq!(pending.restore_generation, 1);
        assert_eq!(pending.deadline, start + Duration::from_secs(6));
        let back = tx.confirm_timed_out(4).unwrap();
        assert_eq!(back.generation, 4);
        assert_eq!(tx.running().system.hostname.as_str(), "a");
        assert!(tx.pending().is_none());
        let last = tx.history().entries.iter().last().unwrap();
        assert_eq!(last.origin, CommitOrigin::ConfirmTimeout);
        // A plain commit inside the window confirms it (and says so).
        tx.set("system.hostname", "e").unwrap();
        tx.commit(&request(Some(5)), 5, start).unwrap();
        tx.set("system.hostname", "f").unwrap();
        let plain = tx.commit(&request(None), 6, start).unwrap();
        assert_eq!(plain.confirmed, Some(plain.generation - 1));
        assert!(tx.pending().is_none());
        // Confirmed in time: it stays.
        tx.set("system.hostname", "d").unwrap();
        tx.commit(&request(Some(5)), 5, start).unwrap();
        assert_eq!(tx.confirm().unwrap(), 7);
        assert!(matches!(
            tx.confirm(),
            Err(TransactionError::NothingToConfirm)
        ));
        assert!(matches!(
            tx.commit(&request(Some(0)), 5, start),
            Err(TransactionError::ConfirmRange(0))
        ));
    }

    #[test]
    fn rollback_is_a_commit_of_a_stored_generation() {
        let (mut tx, _) = Transactions::open(memory(), Some(config("a", &[])), 1);
        tx.set("system.hostname", "b").unwrap();
        tx.commit(&request(None), 2, Instant::now()).unwrap();
        let back = tx.rollback(None, CommitOrigin::Console, 3).unwrap();
        assert_eq!(back.generation, 3);
        assert_eq!(tx.running().system.hostname.as_str(), "a");
        // Generation 1 was overwritten by 3: only 2 and 3 are kept.
        let error = tx.rollback(Some(1), CommitOrigin::Console, 4).unwrap_err();
        assert!(error.to_string().contains("generations 3 and 2"), "{error}");
        assert!(matches!(
            tx.rollback(Some(3), CommitOrigin::Console, 4),
            Err(TransactionError::AlreadyRunning(3))
        ));
        tx.rollback(Some(2), CommitOrigin::Console, 4).unwrap();
        assert_eq!(tx.running().system.hostname.as_str(), "b");
        assert_eq!(tx.generation(), 4);
    }

    #[test]
    fn a_power_cut_at_any_write_of_a_commit_leaves_the_old_or_the_new_generation() {
        let old = config("old", &["10.0.0.1/24"]);
        let new = config("new", &["10.0.0.2/24", "2001:db8::2/64"]);
        let mut cuts = 0;
        let mut saw_new = false;
        for torn in [0, 1, 31] {
            for cut_after in 0.. {
                let device =
                    FaultyDevice::new(MemDevice::erased(usize::try_from(SLOT * 2).unwrap()), 64);
                let (mut tx, _) =
                    Transactions::open(SlotStore::new(device, SLOT), Some(old.clone()), 1);
                tx.load(new.clone());
                let mut device = tx.into_device();
                device.writes_left = Some(cut_after);
                device.torn_bytes = torn;
                let (mut tx, _) = Transactions::open(SlotStore::new(device, SLOT), None, 1);
                tx.load(new.clone());
                let result = tx.commit(&request(None), 2, Instant::now());
                if result.is_err() {
                    // Nothing half-applied: the daemon still runs the old generation.
                    assert_eq!(**tx.running(), old);
                    assert_eq!(tx.generation(), 1);
                }
                let device = tx.into_device();
                let finished = !device.cut;
                // Reboot: the memory as the cut left it.
                let rebooted = FaultyDevice::new(device.inner, 64);
                let (tx, opened) = Transactions::open(SlotStore::new(rebooted, SLOT), None, 3);
                match opened {
                    Opened::Stored { generation: 1 } => assert_eq!(**tx.running(), old),
                    Opened::Stored { generation: 2 } => {
                        assert_eq!(**tx.running(), new);
                        saw_new = true;
                    }
                    other => panic!("cut after {cut_after} writes: {other:?}"),
                }
                cuts += 1;
                if finished {
                    break;
                }
            }
        }
        assert!(cuts > 10, "only {cuts} cuts");
        assert!(saw_new);
    }

    #[test]
    fn wall_clock_rendering() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_utc(1_796_169_600), "2026-12-02 00:00:00 UTC");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00 UTC");
    }
}
