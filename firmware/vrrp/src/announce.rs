//! When a master (re)announces its virtual addresses: the keepalived `garp_master_*` schedule
//! as pure data.
//!
//! On becoming master a burst of `master_repeat` gratuitous ARPs / unsolicited NAs goes out at
//! once ([`burst_size`]), a second burst `master_delay_s` later (0: none), and while master one
//! of `master_refresh_repeat` every `master_refresh_s` (0: none). Leaving master cancels what
//! is still pending. The engine asks [`AnnounceSchedule::take_due`] what to send and sends it.
//!
//! The engine reports the speaker's actions as it drains them: each first burst it sends for an
//! `Action::Announce` ([`AnnounceSchedule::announced`]), each transition
//! ([`AnnounceSchedule::state_changed`]) and the end of the batch
//! ([`AnnounceSchedule::end_of_batch`]). A takeover's `StateChanged` to Master follows its
//! announcement in the same batch and starts the schedule from the first burst; addresses a
//! master gains on a live apply are announced with no transition, so they get one burst of
//! their own and leave the schedule as it is.
//!
//! It lives beside the core rather than in the daemon because it is pure time arithmetic over
//! the injected [`Instant`]: the schedule is tested on a virtual clock next to the speaker whose
//! transitions drive it.

use core::time::Duration;
use std::collections::BTreeMap;

use tandem_config::model::Garp;

use crate::speaker::InstanceId;
use crate::status::State;
use crate::time::Instant;

/// Messages per address in the burst sent at once (a zero repeat still announces once: a new
/// master must be found).
pub fn burst_size(garp: &Garp) -> u8 {
    garp.master_repeat.max(1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// The delayed second burst after becoming master.
    Second,
    /// A periodic refresh while master.
    Refresh { period: Duration },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    instance: InstanceId,
    at: Instant,
    repeat: u8,
    kind: Kind,
}

/// Pending announcement bursts of every instance.
#[derive(Debug, Default)]
pub struct AnnounceSchedule {
    pending: Vec<Pending>,
    /// First bursts of the batch of actions being drained, by when they went out.
    announced: BTreeMap<InstanceId, Instant>,
}

impl AnnounceSchedule {
    /// `instance`'s first burst for an `Action::Announce` went out at `at`.
    pub fn announced(&mut self, instance: InstanceId, at: Instant) {
        self.announced.insert(instance, at);
    }

    /// `instance` entered state `to`. Master after a burst of this batch is a takeover: the
    /// later bursts are scheduled from that burst with `garp` (None: the instance has no
    /// settings to schedule with) and true is returned. Any other state cancels what is
    /// pending.
    pub fn state_changed(&mut self, instance: InstanceId, to: State, garp: Option<&Garp>) -> bool {
        if to != State::Master {
            self.cancel(instance);
            return false;
        }
        match (self.announced.remove(&instance), garp) {
            (Some(at), Some(garp)) => {
                self.became_master(instance, at, garp);
                true
            }
            _ => false,
        }
    }

    /// The batch is drained: a burst no takeover followed (a live apply's gained addresses)
    /// was all there is to it.
    pub fn end_of_batch(&mut self) {
        self.announced.clear();
    }

    /// `instance` became master and sent its first burst ([`burst_size`]) at `now`: schedules
    /// the later ones (replacing any still pending for it).
    pub fn became_master(&mut self, instance: InstanceId, now: Instant, garp: &Garp) {
        self.cancel(instance);
        if garp.master_delay_s > 0 && garp.master_repeat > 0 {
            self.pending.push(Pending {
                instance,
                at: now + Duration::from_secs(u64::from(garp.master_delay_s)),
                repeat: garp.master_repeat,
                kind: Kind::Second,
            });
        }
        if garp.master_refresh_s > 0 && garp.master_refresh_repeat > 0 {
            let period = Duration::from_secs(u64::from(garp.master_refresh_s));
            self.pending.push(Pending {
                instance,
                at: now + period,
                repeat: garp.master_refresh_repeat,
                kind: Kind::Refresh { period },
            });
        }
    }

    /// `instance` left master: nothing more is announced for it.
    pub fn cancel(&mut self, instance: InstanceId) {
        self.pending.retain(|p| p.instance != instance);
    }

    /// The earliest pending burst.
    pub fn next_due(&self) -> Option<Instant> {
        self.pending.iter().map(|p| p.at).min()
    }

    /// Bursts due at `now` as `(instance, repeat)`; refreshes are rescheduled.
    pub fn take_due(&mut self, now: Instant) -> Vec<(InstanceId, u8)> {
        let mut due = Vec::new();
        self.pending.retain_mut(|p| {
            if p.at > now {
                return true;
            }
            due.push((p.instance, p.repeat));
            match p.kind {
                Kind::Second => false,
                Kind::Refresh { period } => {
                    p.at = (p.at + period).max(now + period / 2);
                    true
                }
            }
        });
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: usize) -> InstanceId {
        InstanceId(n)
    }

    fn garp(delay: u16, repeat: u8, refresh: u16, refresh_repeat: u8) -> Garp {
        Garp {
            master_delay_s: delay,
            master_repeat: repeat,
            master_refresh_s: refresh,
            master_refresh_repeat: refresh_repeat,
        }
    }

    #[test]
    fn keepalived_defaults_send_two_bursts() {
        let mut schedule = AnnounceSchedule::default();
        assert_eq!(burst_size(&Garp::default()), 5);
        schedule.became_master(id(0), Instant::ZERO, &Garp::default());
        assert_eq!(schedule.next_due(), Some(Instant::from_secs(5)));
        assert!(schedule.take_due(Instant::from_millis(4999)).is_empty());
        assert_eq!(schedule.take_due(Instant::from_secs(5)), vec![(id(0), 5)]);
        assert_eq!(schedule.next_due(), None);
    }

    #[test]
    fn refresh_repeats_until_cancelled() {
        let mut schedule = AnnounceSchedule::default();
        assert_eq!(burst_size(&garp(0, 2, 10, 1)), 2);
        schedule.became_master(id(3), Instant::ZERO, &garp(0, 2, 10, 1));
        assert_eq!(schedule.take_due(Instant::from_secs(10)), vec![(id(3), 1)]);
        assert_eq!(schedule.next_due(), Some(Instant::from_secs(20)));
        // A late wake-up does not cause a catch-up storm.
        assert_eq!(schedule.take_due(Instant::from_secs(45)), vec![(id(3), 1)]);
        assert_eq!(schedule.next_due(), Some(Instant::from_secs(50)));
        schedule.cancel(id(3));
        assert_eq!(schedule.next_due(), None);
    }

    #[test]
    fn becoming_master_again_replaces_the_old_schedule() {
        let mut schedule = AnnounceSchedule::default();
        schedule.became_master(id(1), Instant::ZERO, &Garp::default());
        schedule.became_master(id(2), Instant::ZERO, &Garp::default());
        schedule.became_master(id(1), Instant::from_secs(3), &Garp::default());
        assert_eq!(schedule.take_due(Instant::from_secs(5)), vec![(id(2), 5)]);
        assert_eq!(schedule.take_due(Instant::from_secs(8)), vec![(id(1), 5)]);
        // A zero repeat still announces once: a new master must be found.
        assert_eq!(burst_size(&garp(0, 0, 0, 0)), 1);
        schedule.became_master(id(4), Instant::ZERO, &garp(0, 0, 0, 0));
        assert_eq!(schedule.next_due(), None);
    }

    #[test]
    fn only_a_takeover_in_the_batch_of_its_burst_is_scheduled() {
        let mut schedule = AnnounceSchedule::default();
        let defaults = Garp::default();
        // Gained addresses: a burst, no transition.
        schedule.announced(id(0), Instant::ZERO);
        schedule.end_of_batch();
        assert!(!schedule.state_changed(id(0), State::Master, Some(&defaults)));
        assert_eq!(schedule.next_due(), None);
        // A takeover: scheduled from the burst, not from the transition.
        schedule.announced(id(0), Instant::from_secs(1));
        assert!(schedule.state_changed(id(0), State::Master, Some(&defaults)));
        schedule.end_of_batch();
        assert_eq!(schedule.next_due(), Some(Instant::from_secs(6)));
        // Leaving master cancels.
        assert!(!schedule.state_changed(id(0), State::Backup, Some(&defaults)));
        assert_eq!(schedule.next_due(), None);
        // No settings: nothing to schedule with.
        schedule.announced(id(1), Instant::ZERO);
        assert!(!schedule.state_changed(id(1), State::Master, None));
        assert_eq!(schedule.next_due(), None);
    }
}
