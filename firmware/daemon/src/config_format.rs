//! Which config blob format this box writes while a firmware upgrade is not finished.
//!
//! New firmware reads every older format but must not write its newest one before both boxes
//! have blessed it: a slot on trial falls back to the previous firmware after three failed
//! boots, and that firmware must read the config this box stored meanwhile; a partner on
//! older firmware must read the blobs this box pushes. So the write format is the oldest of
//! the format the store held at boot (what the previous firmware wrote) while this box's slot
//! is on trial, and the newest format the partner reads when paired and heard. Once the slot
//! is blessed and the partner reads the newest format, the next write is the newest format.
//! Sans-IO: the daemon feeds the facts every tick and applies the answer to its
//! transactions; the commit refuses what the write format cannot hold (`tandem-config`).

use tandem_config::blob::{FORMAT_VERSION, OLDEST_WRITTEN_FORMAT};

/// What the write format depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts {
    /// The format of the newest blob the store held at boot (None: nothing stored).
    pub stored_at_boot: Option<u16>,
    /// The running firmware slot is on trial (not blessed yet).
    pub on_trial: bool,
    /// The newest format the partner's firmware reads, when paired and heard this boot.
    pub partner_reads: Option<u16>,
}

/// The format to write and why it is not the newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteFormat {
    pub format: u16,
    /// The slot is on trial and the previous firmware wrote this older format.
    pub trial: Option<u16>,
    /// The partner reads only up to this older format.
    pub partner: Option<u16>,
    /// The older format asked for is one this firmware cannot write (it writes the oldest
    /// it can instead).
    pub unwritable: Option<u16>,
}

impl WriteFormat {
    /// The write format for `facts`.
    pub fn decide(facts: Facts) -> WriteFormat {
        let older = |format: Option<u16>| format.filter(|f| *f < FORMAT_VERSION);
        let trial = older(facts.stored_at_boot).filter(|_| facts.on_trial);
        let partner = older(facts.partner_reads);
        let wanted = [trial, partner]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(FORMAT_VERSION);
        WriteFormat {
            format: wanted.max(OLDEST_WRITTEN_FORMAT),
            trial,
            partner,
            unwritable: (wanted < OLDEST_WRITTEN_FORMAT).then_some(wanted),
        }
    }

    /// `writing 5 (slot on trial; 6 after bless)`, `writing 5 (the partner reads up to 5)`,
    /// `writing 6`.
    pub fn describe(&self) -> String {
        let mut why = Vec::new();
        if let Some(format) = self.trial {
            why.push(format!(
                "slot on trial, the firmware before it wrote {format}; {FORMAT_VERSION} after bless"
            ));
        }
        if let Some(format) = self.partner {
            why.push(format!("the partner reads up to {format}"));
        }
        if let Some(format) = self.unwritable {
            why.push(format!(
                "{format} is older than this firmware writes: a fallback cannot read this \
                 box's config"
            ));
        }
        if why.is_empty() {
            format!("writing {}", self.format)
        } else {
            format!("writing {} ({})", self.format, why.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEWEST: u16 = FORMAT_VERSION;
    const OLDER: u16 = FORMAT_VERSION - 1;

    #[test]
    fn the_oldest_constraint_wins_and_a_blessed_slot_with_a_current_partner_writes_the_newest() {
        let on_trial = Facts {
            stored_at_boot: Some(OLDER),
            on_trial: true,
            partner_reads: None,
        };
        let decided = WriteFormat::decide(on_trial);
        assert_eq!(decided.format, OLDER);
        assert_eq!(
            decided.describe(),
            format!(
                "writing {OLDER} (slot on trial, the firmware before it wrote {OLDER}; \
                 {NEWEST} after bless)"
            )
        );
        // Blessed: the stored format no longer matters.
        let blessed = Facts {
            on_trial: false,
            ..on_trial
        };
        assert_eq!(WriteFormat::decide(blessed).format, NEWEST);
        assert_eq!(
            WriteFormat::decide(blessed).describe(),
            format!("writing {NEWEST}")
        );
        // On trial over a store this firmware wrote (or nothing): the newest.
        for stored in [Some(NEWEST), None] {
            let facts = Facts {
                stored_at_boot: stored,
                ..on_trial
            };
            assert_eq!(WriteFormat::decide(facts).format, NEWEST);
        }
        // A partner on older firmware holds a blessed box back.
        let partner_old = Facts {
            partner_reads: Some(OLDER),
            ..blessed
        };
        let decided = WriteFormat::decide(partner_old);
        assert_eq!(decided.format, OLDER);
        assert_eq!(
            decided.describe(),
            format!("writing {OLDER} (the partner reads up to {OLDER})")
        );
        // A partner on newer firmware does not lift anything.
        let partner_new = Facts {
            partner_reads: Some(NEWEST + 1),
            ..on_trial
        };
        assert_eq!(WriteFormat::decide(partner_new).format, OLDER);
    }

    #[test]
    fn a_format_older_than_this_firmware_writes_is_written_as_the_oldest_it_can_and_said() {
        let facts = Facts {
            stored_at_boot: Some(OLDEST_WRITTEN_FORMAT - 1),
            on_trial: true,
            partner_reads: Some(OLDEST_WRITTEN_FORMAT),
        };
        let decided = WriteFormat::decide(facts);
        assert_eq!(decided.format, OLDEST_WRITTEN_FORMAT);
        assert_eq!(decided.unwritable, Some(OLDEST_WRITTEN_FORMAT - 1));
        assert!(
            decided
                .describe()
                .contains("older than this firmware writes"),
            "{}",
            decided.describe()
        );
    }
}
