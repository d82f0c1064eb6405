//! `pair upgrade FILE|URL`: the rolling upgrade of a pair, as a sans-IO state machine with
//! injected time. The daemon's loop feeds it facts (pairing, the partner's firmware and VRRP
//! states) and the outcomes of what it asked for, and executes its [`Do`]s off the loop (the
//! bundle send on the pair service, the install on the blocking pool), so VRRP never waits.
//!
//! Order: the partner (the box that is not master of any VRRP instance) gets the bundle over
//! the peer cable and reboots into it first; once it is back, heard, runs the bundle's version
//! from its other slot and is blessed, this box hands over (`vrrp standby on`), installs the
//! bundle into its own other slot and reboots. Run on the backup while the partner is master,
//! it refuses and names the partner: upgrading the master first would cost two hand-overs.
//! Any failure leaves this box as it is (standby is switched off again if it was on).

use std::fmt::{self, Write as _};
use std::time::{Duration, Instant};

use tandem_board::bundle::Version;

/// How long the partner gets to reboot into the bundle and bless it (a TCG lab boot plus
/// `tandem.bless_after`, or a real box's boot plus the 60 s default, with room).
pub const PARTNER_BACK_LIMIT: Duration = Duration::from_secs(900);

/// The partner's firmware as its FIRMWARE message said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartnerSlot {
    pub version: Version,
    /// The slot letter it booted from (`a` / `b`).
    pub slot: char,
    pub blessed: bool,
}

/// What the daemon knows when the upgrade starts and at every tick.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub paired: bool,
    /// The partner is heard on the peer cable now.
    pub partner_heard: bool,
    /// Both boxes run the same config (replication stands in sync).
    pub configs_in_sync: bool,
    /// Whether this box's running slot is blessed (None: not booted from a slot).
    pub here_blessed: Option<bool>,
    /// None: the partner has not told its firmware (older firmware, or not heard yet).
    pub partner: Option<PartnerSlot>,
    /// VRRP instances the partner reports being master of.
    pub partner_masters: Vec<String>,
}

/// Why `pair upgrade` does not start; each says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    Running { step: &'static str },
    NotPaired,
    PartnerNotHeard,
    ConfigsDiffer,
    NotFromSlot,
    HereOnTrial,
    PartnerFirmwareUnknown,
    PartnerOnTrial,
    PartnerIsMaster { instances: Vec<String> },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::Running { step } => write!(
                f,
                "a pair upgrade is already running ({step}); `pair upgrade status` follows it"
            ),
            Refusal::NotPaired => f.write_str(
                "this box is not paired; upgrade it alone with `firmware install`, or pair first",
            ),
            Refusal::PartnerNotHeard => f.write_str(
                "the partner is not heard on the peer cable; check the cable and the partner \
                 (`pair status`)",
            ),
            Refusal::ConfigsDiffer => f.write_str(
                "the two boxes run different configs; settle it first (`compare peer`, then \
                 `pair push` or `pair adopt-peer`)",
            ),
            Refusal::NotFromSlot => f.write_str(
                "this box did not boot from a firmware slot of the disk image (`firmware \
                 status`); nothing to upgrade in turn",
            ),
            Refusal::HereOnTrial => f.write_str(
                "this box runs a slot still on trial; wait for its bless (`firmware status`)",
            ),
            Refusal::PartnerFirmwareUnknown => f.write_str(
                "the partner has not told its firmware version and slot (older firmware, or \
                 just booted); upgrade it with `firmware install` on the partner first",
            ),
            Refusal::PartnerOnTrial => f.write_str(
                "the partner runs a slot still on trial; wait for its bless (`pair status`)",
            ),
            Refusal::PartnerIsMaster { instances } => write!(
                f,
                "the partner is master of {}: the backup goes first, so run `pair upgrade` on \
                 the partner (it upgrades this box first)",
                instances.join(", ")
            ),
        }
    }
}

/// What the daemon must do next (each answered by the matching `*_done` call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Do {
    /// Send the bundle to the partner with reboot (`PairHandle::send_firmware`): [`PairUpgrade::sent`].
    SendBundle,
    /// `vrrp standby on`: [`PairUpgrade::standby_done`].
    StandbyOn,
    /// `firmware install` of the bundle here: [`PairUpgrade::installed`].
    InstallHere,
    /// Reboot this box into the new slot.
    Reboot,
    /// `vrrp standby off` after a failure (nothing to answer).
    StandbyOff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Idle,
    Sending,
    PartnerRebooting { from_slot: char, deadline: Instant },
    HandingOver,
    Installing,
    Rebooting,
    Failed,
}

impl Step {
    fn word(self) -> &'static str {
        match self {
            Step::Idle => "idle",
            Step::Sending => "sending the bundle to the partner",
            Step::PartnerRebooting { .. } => {
                "waiting for the partner to come back blessed on the new version"
            }
            Step::HandingOver => "handing over to the partner (vrrp standby on)",
            Step::Installing => "installing here",
            Step::Rebooting => "rebooting this box into the new slot",
            Step::Failed => "failed",
        }
    }
}

/// The upgrade's state.
#[derive(Debug, Clone)]
pub struct PairUpgrade {
    step: Step,
    target: Option<Version>,
    started: Option<Instant>,
    step_since: Option<Instant>,
    last_error: Option<String>,
    limit: Duration,
}

impl Default for PairUpgrade {
    fn default() -> PairUpgrade {
        PairUpgrade::new(PARTNER_BACK_LIMIT)
    }
}

impl PairUpgrade {
    /// Idle, with `limit` for the partner's reboot and bless.
    pub fn new(limit: Duration) -> PairUpgrade {
        PairUpgrade {
            step: Step::Idle,
            target: None,
            started: None,
            step_since: None,
            last_error: None,
            limit,
        }
    }

    /// True between a start and its reboot or failure.
    pub fn running(&self) -> bool {
        !matches!(self.step, Step::Idle | Step::Failed | Step::Rebooting)
    }

    /// Whether an upgrade could start now, before any bundle is read: which box must run it
    /// is decided first (the backup goes first), then the firmware on both.
    pub fn precheck(&self, facts: &Facts) -> Result<(), Refusal> {
        if self.running() {
            return Err(Refusal::Running {
                step: self.step.word(),
            });
        }
        if !facts.paired {
            return Err(Refusal::NotPaired);
        }
        if !facts.partner_heard {
            return Err(Refusal::PartnerNotHeard);
        }
        if !facts.configs_in_sync {
            return Err(Refusal::ConfigsDiffer);
        }
        if !facts.partner_masters.is_empty() {
            return Err(Refusal::PartnerIsMaster {
                instances: facts.partner_masters.clone(),
            });
        }
        match facts.here_blessed {
            None => return Err(Refusal::NotFromSlot),
            Some(false) => return Err(Refusal::HereOnTrial),
            Some(true) => {}
        }
        let Some(partner) = facts.partner else {
            return Err(Refusal::PartnerFirmwareUnknown);
        };
        if !partner.blessed {
            return Err(Refusal::PartnerOnTrial);
        }
        Ok(())
    }

    /// Starts an upgrade to `target` (a bundle already checked here like `firmware install`
    /// checks it) or says why not (the facts are checked again: they may have changed while
    /// the bundle was read); on success the first thing to do is [`Do::SendBundle`].
    pub fn start(&mut self, now: Instant, facts: &Facts, target: Version) -> Result<Do, Refusal> {
        self.precheck(facts)?;
        self.target = Some(target);
        self.started = Some(now);
        self.last_error = None;
        self.enter(now, Step::Sending);
        Ok(Do::SendBundle)
    }

    /// The partner's answer to the bundle (`Ok`: installed there, rebooting). `partner_slot`
    /// is the slot it ran when the bundle was sent.
    pub fn sent(&mut self, now: Instant, result: Result<String, String>, partner_slot: char) {
        if self.step != Step::Sending {
            return;
        }
        match result {
            Ok(_) => {
                let deadline = now + self.limit;
                self.enter(
                    now,
                    Step::PartnerRebooting {
                        from_slot: partner_slot,
                        deadline,
                    },
                );
            }
            Err(why) => self.fail(now, format!("the partner did not take the bundle: {why}")),
        }
    }

    /// Called at every tick: the partner's return, or the time limit.
    pub fn tick(&mut self, now: Instant, facts: &Facts) -> Option<Do> {
        let Step::PartnerRebooting {
            from_slot,
            deadline,
        } = self.step
        else {
            return None;
        };
        let back = facts.partner_heard
            && facts.partner.is_some_and(|p| {
                Some(p.version) == self.target && p.slot != from_slot && p.blessed
            });
        if back {
            self.enter(now, Step::HandingOver);
            return Some(Do::StandbyOn);
        }
        if now >= deadline {
            let seen = facts.partner.map_or_else(
                || "its firmware not told".to_owned(),
                |p| {
                    format!(
                        "{} slot {} {}",
                        p.version,
                        p.slot,
                        if p.blessed { "blessed" } else { "on trial" }
                    )
                },
            );
            self.fail(
                now,
                format!(
                    "the partner did not come back blessed on {} within {} s (last seen: {seen}, \
                     {}); this box stays as it is: look at the partner's console \
                     (`firmware status`)",
                    self.target_word(),
                    self.limit.as_secs(),
                    if facts.partner_heard {
                        "heard"
                    } else {
                        "not heard"
                    }
                ),
            );
        }
        None
    }

    /// `vrrp standby on` answered (`Err`: it could not hand over).
    pub fn standby_done(&mut self, now: Instant, result: Result<(), String>) -> Option<Do> {
        if self.step != Step::HandingOver {
            return None;
        }
        match result {
            Ok(()) => {
                self.enter(now, Step::Installing);
                Some(Do::InstallHere)
            }
            Err(why) => {
                self.fail(now, format!("the hand-over failed: {why}"));
                Some(Do::StandbyOff)
            }
        }
    }

    /// The local install answered (`Ok`: the other slot is written).
    pub fn installed(&mut self, now: Instant, result: Result<String, String>) -> Option<Do> {
        if self.step != Step::Installing {
            return None;
        }
        match result {
            Ok(_) => {
                self.enter(now, Step::Rebooting);
                Some(Do::Reboot)
            }
            Err(why) => {
                self.fail(
                    now,
                    format!(
                        "the install here failed: {}; this box resumes VRRP and keeps its \
                         firmware (the partner already runs {})",
                        why.trim_end(),
                        self.target_word()
                    ),
                );
                Some(Do::StandbyOff)
            }
        }
    }

    /// `pair upgrade status`: the step, elapsed times and the last error.
    pub fn status_text(&self, now: Instant) -> String {
        let mut out = String::new();
        let since =
            |at: Option<Instant>| at.map_or(0, |at| now.saturating_duration_since(at).as_secs());
        let _ = write!(out, "pair upgrade: {}", self.step.word());
        if self.step != Step::Idle {
            let _ = write!(
                out,
                " (to {}; started {} s ago, this step {} s)",
                self.target_word(),
                since(self.started),
                since(self.step_since)
            );
        }
        if let Step::PartnerRebooting { deadline, .. } = self.step {
            let _ = write!(
                out,
                "; gives up in {} s",
                deadline.saturating_duration_since(now).as_secs()
            );
        }
        out.push('\n');
        if let Some(error) = &self.last_error {
            let _ = writeln!(out, "pair upgrade: last error: {error}");
        }
        out
    }

    /// The last failure, if any.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    fn target_word(&self) -> String {
        self.target
            .map_or_else(|| "?".to_owned(), |version| version.to_string())
    }

    fn enter(&mut self, now: Instant, step: Step) {
        self.step = step;
        self.step_since = Some(now);
    }

    fn fail(&mut self, now: Instant, why: String) {
        self.last_error = Some(why);
        self.enter(now, Step::Failed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OLD: Version = Version(0, 1, 0);
    const NEW: Version = Version(0, 2, 0);

    /// Makes one fact wrong.
    type Spoil = fn(&mut Facts);

    fn ready() -> Facts {
        Facts {
            paired: true,
            partner_heard: true,
            configs_in_sync: true,
            here_blessed: Some(true),
            partner: Some(PartnerSlot {
                version: OLD,
                slot: 'a',
                blessed: true,
            }),
            partner_masters: Vec::new(),
        }
    }

    fn started(now: Instant) -> PairUpgrade {
        let mut upgrade = PairUpgrade::new(Duration::from_secs(600));
        assert_eq!(upgrade.start(now, &ready(), NEW), Ok(Do::SendBundle));
        upgrade
    }

    #[test]
    fn refusals_name_what_is_missing_and_change_nothing() {
        let now = Instant::now();
        let cases: Vec<(Spoil, Refusal)> = vec![
            (|f| f.paired = false, Refusal::NotPaired),
            (|f| f.partner_heard = false, Refusal::PartnerNotHeard),
            (|f| f.configs_in_sync = false, Refusal::ConfigsDiffer),
            (|f| f.here_blessed = None, Refusal::NotFromSlot),
            (|f| f.here_blessed = Some(false), Refusal::HereOnTrial),
            (|f| f.partner = None, Refusal::PartnerFirmwareUnknown),
            (
                |f| {
                    if let Some(p) = f.partner.as_mut() {
                        p.blessed = false;
                    }
                },
                Refusal::PartnerOnTrial,
            ),
            (
                |f| f.partner_masters = vec!["web".into()],
                Refusal::PartnerIsMaster {
                    instances: vec!["web".into()],
                },
            ),
        ];
        for (spoil, refusal) in cases {
            let mut facts = ready();
            spoil(&mut facts);
            let mut upgrade = PairUpgrade::default();
            assert_eq!(upgrade.start(now, &facts, NEW), Err(refusal));
            assert!(!upgrade.running());
            assert_eq!(upgrade.status_text(now), "pair upgrade: idle\n");
        }
        let master = Refusal::PartnerIsMaster {
            instances: vec!["web".into(), "gw".into()],
        };
        assert!(master.to_string().contains("master of web, gw"));
        // Which box runs it is decided before its firmware: a backup not booted from a slot
        // is still told to run it on the master.
        let mut facts = ready();
        facts.partner_masters = vec!["web".into()];
        facts.here_blessed = None;
        facts.partner = None;
        assert!(matches!(
            PairUpgrade::default().precheck(&facts),
            Err(Refusal::PartnerIsMaster { .. })
        ));
        assert!(master
            .to_string()
            .contains("run `pair upgrade` on the partner"));
        // A second start while one runs.
        let mut upgrade = started(now);
        assert_eq!(
            upgrade.start(now, &ready(), NEW),
            Err(Refusal::Running {
                step: "sending the bundle to the partner"
            })
        );
    }

    #[test]
    fn partner_first_then_hand_over_install_and_reboot() {
        let t0 = Instant::now();
        let mut upgrade = started(t0);
        assert!(upgrade.running());
        // Nothing happens on ticks while sending.
        assert_eq!(upgrade.tick(t0, &ready()), None);
        upgrade.sent(t0 + Duration::from_secs(5), Ok("installed".into()), 'a');
        let status = upgrade.status_text(t0 + Duration::from_secs(65));
        assert!(
            status.contains("waiting for the partner to come back blessed on the new version (to 0.2.0; started 65 s ago, this step 60 s); gives up in 540 s"),
            "{status}"
        );
        // Still the old firmware (before its reboot), then gone, then back on trial: wait.
        let mut facts = ready();
        assert_eq!(upgrade.tick(t0 + Duration::from_secs(6), &facts), None);
        facts.partner_heard = false;
        facts.partner = None;
        assert_eq!(upgrade.tick(t0 + Duration::from_secs(30), &facts), None);
        facts.partner_heard = true;
        facts.partner = Some(PartnerSlot {
            version: NEW,
            slot: 'b',
            blessed: false,
        });
        assert_eq!(upgrade.tick(t0 + Duration::from_secs(90), &facts), None);
        // Blessed on the new version from the other slot: hand over.
        facts.partner = Some(PartnerSlot {
            version: NEW,
            slot: 'b',
            blessed: true,
        });
        let t1 = t0 + Duration::from_secs(100);
        assert_eq!(upgrade.tick(t1, &facts), Some(Do::StandbyOn));
        assert_eq!(upgrade.tick(t1, &facts), None, "asked once");
        assert_eq!(upgrade.standby_done(t1, Ok(())), Some(Do::InstallHere));
        assert_eq!(
            upgrade.installed(t1 + Duration::from_secs(3), Ok("written".into())),
            Some(Do::Reboot)
        );
        assert!(!upgrade.running());
        assert!(upgrade
            .status_text(t1 + Duration::from_secs(4))
            .starts_with("pair upgrade: rebooting this box into the new slot"));
        assert_eq!(upgrade.last_error(), None);
    }

    #[test]
    fn the_same_slot_and_version_is_not_taken_for_the_return() {
        let t0 = Instant::now();
        let mut upgrade = started(t0);
        upgrade.sent(t0, Ok(String::new()), 'a');
        let mut facts = ready();
        // The right version but from the slot it ran before: not the new slot (yet).
        facts.partner = Some(PartnerSlot {
            version: NEW,
            slot: 'a',
            blessed: true,
        });
        assert_eq!(upgrade.tick(t0 + Duration::from_secs(1), &facts), None);
        // Heard is required too.
        facts.partner = Some(PartnerSlot {
            version: NEW,
            slot: 'b',
            blessed: true,
        });
        facts.partner_heard = false;
        assert_eq!(upgrade.tick(t0 + Duration::from_secs(2), &facts), None);
    }

    #[test]
    fn a_refused_bundle_fails_without_touching_this_box() {
        let t0 = Instant::now();
        let mut upgrade = started(t0);
        upgrade.sent(
            t0,
            Err("the partner refused the bundle: wrong board".into()),
            'a',
        );
        assert!(!upgrade.running());
        assert!(upgrade
            .last_error()
            .is_some_and(|e| e.contains("did not take the bundle: the partner refused")));
        assert_eq!(upgrade.tick(t0 + Duration::from_secs(1000), &ready()), None);
        // It can start again after a failure.
        assert_eq!(upgrade.start(t0, &ready(), NEW), Ok(Do::SendBundle));
        assert_eq!(upgrade.last_error(), None);
    }

    #[test]
    fn a_partner_that_never_returns_times_out_with_what_was_seen() {
        let t0 = Instant::now();
        let mut upgrade = started(t0);
        upgrade.sent(t0, Ok(String::new()), 'a');
        let mut facts = ready();
        facts.partner = Some(PartnerSlot {
            version: OLD,
            slot: 'a',
            blessed: true,
        });
        assert_eq!(upgrade.tick(t0 + Duration::from_secs(599), &facts), None);
        assert!(upgrade.running());
        assert_eq!(upgrade.tick(t0 + Duration::from_secs(600), &facts), None);
        assert!(!upgrade.running());
        let error = upgrade.last_error().unwrap_or_default().to_owned();
        assert!(
            error.contains("did not come back blessed on 0.2.0 within 600 s"),
            "{error}"
        );
        assert!(
            error.contains("last seen: 0.1.0 slot a blessed, heard"),
            "{error}"
        );
        assert!(upgrade
            .status_text(t0 + Duration::from_secs(601))
            .contains("pair upgrade: last error: the partner did not come back"));
    }

    #[test]
    fn a_failed_hand_over_or_install_resumes_vrrp_here() {
        let t0 = Instant::now();
        let mut facts = ready();
        facts.partner = Some(PartnerSlot {
            version: NEW,
            slot: 'b',
            blessed: true,
        });
        let mut upgrade = started(t0);
        upgrade.sent(t0, Ok(String::new()), 'a');
        assert_eq!(upgrade.tick(t0, &facts), Some(Do::StandbyOn));
        assert_eq!(
            upgrade.standby_done(t0, Err("vrrp engine stopped".into())),
            Some(Do::StandbyOff)
        );
        assert!(upgrade
            .last_error()
            .is_some_and(|e| e.contains("hand-over failed")));

        let mut upgrade = started(t0);
        upgrade.sent(t0, Ok(String::new()), 'a');
        assert_eq!(upgrade.tick(t0, &facts), Some(Do::StandbyOn));
        assert_eq!(upgrade.standby_done(t0, Ok(())), Some(Do::InstallHere));
        assert_eq!(
            upgrade.installed(t0, Err("firmware: install refused: no room\n".into())),
            Some(Do::StandbyOff)
        );
        let error = upgrade.last_error().unwrap_or_default();
        assert!(
            error.contains(
                "install here failed: firmware: install refused: no room; this box resumes VRRP"
            ),
            "{error}"
        );
        assert!(error.contains("the partner already runs 0.2.0"), "{error}");
        // Late answers after a failure change nothing.
        assert_eq!(upgrade.installed(t0, Ok(String::new())), None);
        assert_eq!(upgrade.standby_done(t0, Ok(())), None);
    }
}
