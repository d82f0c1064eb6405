//! The checks VRRP instances track (keepalived `track_script`, run as built-in checks): the
//! health scheduler and probes of `tandem_lvs::health` (the one prober of the box) on a thread
//! and runtime of their own, started with the first tracked check, so no probe (a TLS
//! handshake, a server that answers slowly) runs on the VRRP thread. Subscriptions go over an
//! unbounded channel (the VRRP loop never waits to send; the config bounds their number), the
//! verdicts after rise / fall come back on a channel the loop selects on, as link changes do.
//!
//! Each (instance, check) is one subscriber: identical checks of several instances are probed
//! once, each with its own counts. A check whose definition changes is subscribed anew starting
//! in the state the core holds, so a live change causes no transition by itself; a check that
//! stays unchanged keeps its subscription and counts.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use tokio::sync::mpsc;

use tandem_lvs::health::runner::{self, Command};
use tandem_lvs::health::{CheckSpec, HealthEvent, HealthScheduler, SubscriberId};
use tandem_lvs::plan::PlannedCheck;
use tandem_vrrp::InstanceId;

use crate::logring::Log;

/// Probes of tracked checks running at once.
const MAX_IN_FLIGHT: usize = 32;
/// Verdicts waiting for the VRRP loop (the checker waits when it is full, never the loop).
const EVENT_QUEUE: usize = 256;

/// One wanted check of a running instance.
#[derive(Debug, Clone)]
pub struct Wanted {
    pub instance: InstanceId,
    /// The core's track name (`check NAME`).
    pub track: String,
    pub check: PlannedCheck,
    /// The state the core holds for it now (None: a new check, up as the core takes it).
    pub core_state: Option<bool>,
}

#[derive(Debug, Clone)]
struct Subscription {
    instance: InstanceId,
    track: String,
    check: PlannedCheck,
    up: bool,
    /// Why the last round that took it down failed.
    last_failure: Option<String>,
    /// Times it went down.
    downs: u64,
}

/// A verdict for the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub instance: InstanceId,
    pub track: String,
    pub up: bool,
    /// Why it failed (down only).
    pub reason: Option<String>,
}

/// The tracked checks of every instance and the checker thread that runs them.
#[derive(Debug)]
pub struct TrackedChecks {
    log: Log,
    commands: Option<mpsc::UnboundedSender<Command>>,
    events: mpsc::Sender<HealthEvent>,
    inbox: Option<mpsc::Receiver<HealthEvent>>,
    subs: BTreeMap<SubscriberId, Subscription>,
    next: u64,
}

impl TrackedChecks {
    pub fn new(log: Log) -> TrackedChecks {
        let (events, inbox) = mpsc::channel(EVENT_QUEUE);
        TrackedChecks {
            log,
            commands: None,
            events,
            inbox: Some(inbox),
            subs: BTreeMap::new(),
            next: 0,
        }
    }

    /// The verdicts' receiving end, for the loop (once).
    pub fn take_inbox(&mut self) -> mpsc::Receiver<HealthEvent> {
        self.inbox.take().unwrap_or_else(|| mpsc::channel(1).1)
    }

    /// The checker, started on first use; None when its thread cannot start (logged).
    fn commands(&mut self) -> Option<&mpsc::UnboundedSender<Command>> {
        if self.commands.is_none() {
            let (commands, mut unbounded) = mpsc::unbounded_channel::<Command>();
            let events = self.events.clone();
            let log = self.log.clone();
            let spawned = std::thread::Builder::new()
                .name("vrrp-checks".to_owned())
                .spawn(move || {
                    let runtime = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(runtime) => runtime,
                        Err(error) => {
                            log.line(format!("vrrp: checks: cannot start a runtime: {error}"));
                            return;
                        }
                    };
                    runtime.block_on(async move {
                        let (bounded, inbox) = mpsc::channel(64);
                        // The loop's unbounded sends, handed to the runner at its pace.
                        tokio::spawn(async move {
                            while let Some(command) = unbounded.recv().await {
                                if bounded.send(command).await.is_err() {
                                    break;
                                }
                            }
                        });
                        let seed = u64::from(std::process::id()) ^ 0x7ac4;
                        runner::run(
                            HealthScheduler::new(seed),
                            inbox,
                            events,
                            MAX_IN_FLIGHT,
                            None,
                        )
                        .await;
                    });
                });
            match spawned {
                Ok(_) => self.commands = Some(commands),
                Err(error) => {
                    self.log.line(format!(
                        "vrrp: checks: cannot start the checker thread: {error}"
                    ));
                    return None;
                }
            }
        }
        self.commands.as_ref()
    }

    fn send(&mut self, command: Command) {
        if let Some(commands) = self.commands() {
            // Fails only when the checker thread ended, which its own line logged.
            let _ = commands.send(command);
        }
    }

    /// Makes the subscriptions those of `wanted`: an unchanged check keeps its subscription,
    /// a changed one is subscribed anew from the core's state, the rest are dropped. Returns
    /// the checks that were running and changed definition: (instance, track, what it runs).
    pub fn sync(&mut self, wanted: Vec<Wanted>) -> Vec<(InstanceId, String, Arc<str>)> {
        let mut kept: Vec<SubscriberId> = Vec::new();
        let mut changed = Vec::new();
        for want in wanted {
            let existing = self
                .subs
                .iter()
                .find(|(_, s)| s.instance == want.instance && s.track == want.track)
                .map(|(id, _)| *id);
            match existing {
                Some(id) if self.subs.get(&id).is_some_and(|s| s.check == want.check) => {
                    kept.push(id);
                }
                existing => {
                    let id = existing.unwrap_or_else(|| {
                        self.next += 1;
                        SubscriberId(self.next)
                    });
                    if existing.is_some() {
                        changed.push((
                            want.instance,
                            want.track.clone(),
                            Arc::clone(&want.check.what),
                        ));
                    }
                    let up = want.core_state.unwrap_or(true);
                    let mut spec = CheckSpec::clone(&want.check.spec);
                    spec.timing.start_up = up;
                    let (last_failure, downs) = self
                        .subs
                        .get(&id)
                        .map(|s| (s.last_failure.clone(), s.downs))
                        .unwrap_or_default();
                    self.subs.insert(
                        id,
                        Subscription {
                            instance: want.instance,
                            track: want.track,
                            check: want.check,
                            up,
                            last_failure,
                            downs,
                        },
                    );
                    self.send(Command::Subscribe(id, spec));
                    kept.push(id);
                }
            }
        }
        let gone: Vec<SubscriberId> = self
            .subs
            .keys()
            .filter(|id| !kept.contains(id))
            .copied()
            .collect();
        for id in gone {
            self.subs.remove(&id);
            self.send(Command::Unsubscribe(id));
        }
        changed
    }

    /// Records a verdict; None for a subscription that is gone (a result that raced a change).
    pub fn on_event(&mut self, event: HealthEvent) -> Option<Verdict> {
        let sub = self.subs.get_mut(&event.subscriber)?;
        sub.up = event.up;
        let reason = event.reason.map(|r| r.to_string());
        if !event.up {
            sub.downs += 1;
            sub.last_failure.clone_from(&reason);
        }
        Some(Verdict {
            instance: sub.instance,
            track: sub.track.clone(),
            up: event.up,
            reason,
        })
    }

    /// The status lines of `instance`'s checks: what each runs, its state, and why it last
    /// failed.
    pub fn status_lines(&self, instance: InstanceId) -> Vec<String> {
        self.subs
            .values()
            .filter(|s| s.instance == instance)
            .map(|s| {
                let timing = &s.check.spec.timing;
                let mut line = format!(
                    "{}: {} every {} ms: {}",
                    s.track,
                    s.check.what,
                    timing.interval.as_millis(),
                    if s.up { "up" } else { "down" }
                );
                match (&s.last_failure, s.up) {
                    (Some(why), false) => {
                        let _ = write!(line, " ({why})");
                    }
                    (Some(why), true) => {
                        let _ = write!(line, " (last failure: {why}; down {} times)", s.downs);
                    }
                    (None, _) => {}
                }
                line
            })
            .collect()
    }

    /// Checks subscribed (for tests and status).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.subs.len()
    }

    /// The shared spec of a subscription, for tests.
    #[cfg(test)]
    fn spec_of(&self, instance: InstanceId, track: &str) -> Option<Arc<CheckSpec>> {
        self.subs
            .values()
            .find(|s| s.instance == instance && s.track == track)
            .map(|s| Arc::clone(&s.check.spec))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::net::SocketAddr;
    use std::time::{Duration, Instant};

    use tandem_lvs::health::{CheckKey, CheckTiming, FailReason, Probe};

    use super::*;

    fn planned(port: u16) -> PlannedCheck {
        PlannedCheck {
            spec: Arc::new(CheckSpec {
                key: CheckKey {
                    probe: Probe::Tcp,
                    target: SocketAddr::from(([127, 0, 0, 1], port)),
                    timeout: Duration::from_millis(200),
                },
                timing: CheckTiming::default(),
            }),
            what: format!("tcp 127.0.0.1:{port}").into(),
        }
    }

    fn want(instance: usize, port: u16, core_state: Option<bool>) -> Wanted {
        Wanted {
            instance: InstanceId(instance),
            track: "check web".into(),
            check: planned(port),
            core_state,
        }
    }

    #[tokio::test]
    async fn verdicts_map_to_their_instance_and_status_keeps_the_reason() {
        let mut checks = TrackedChecks::new(Log::default());
        checks.sync(vec![want(1, 9, None), want(2, 9, None)]);
        assert_eq!(checks.len(), 2);
        let sub = *checks
            .subs
            .iter()
            .find(|(_, s)| s.instance == InstanceId(2))
            .unwrap()
            .0;
        let verdict = checks
            .on_event(HealthEvent {
                subscriber: sub,
                up: false,
                at: Instant::now(),
                reason: Some(FailReason::Connect("Connection refused".into())),
            })
            .unwrap();
        assert_eq!(verdict.instance, InstanceId(2));
        assert_eq!(verdict.track, "check web");
        assert_eq!(
            checks.status_lines(InstanceId(2)),
            ["check web: tcp 127.0.0.1:9 every 6000 ms: down (connect failed: Connection refused)"]
        );
        assert_eq!(
            checks.status_lines(InstanceId(1)),
            ["check web: tcp 127.0.0.1:9 every 6000 ms: up"]
        );
        checks.on_event(HealthEvent {
            subscriber: sub,
            up: true,
            at: Instant::now(),
            reason: None,
        });
        assert!(checks.status_lines(InstanceId(2))[0]
            .ends_with("up (last failure: connect failed: Connection refused; down 1 times)"));
        // Gone subscriptions: a late verdict is dropped.
        checks.sync(vec![want(1, 9, None)]);
        assert!(checks
            .on_event(HealthEvent {
                subscriber: sub,
                up: false,
                at: Instant::now(),
                reason: None,
            })
            .is_none());
    }

    #[tokio::test]
    async fn an_unchanged_check_keeps_its_subscription_a_changed_one_starts_from_the_core() {
        let mut checks = TrackedChecks::new(Log::default());
        checks.sync(vec![want(1, 9, None)]);
        let first = checks.spec_of(InstanceId(1), "check web").unwrap();
        let id = *checks.subs.keys().next().unwrap();
        checks.sync(vec![want(1, 9, Some(false))]);
        assert!(Arc::ptr_eq(
            &first,
            &checks.spec_of(InstanceId(1), "check web").unwrap()
        ));
        assert!(checks.subs[&id].up, "kept as it was");
        checks.sync(vec![want(1, 10, Some(false))]);
        assert_eq!(checks.len(), 1);
        assert_eq!(*checks.subs.keys().next().unwrap(), id, "same subscriber");
        assert!(!checks.subs[&id].up, "starts where the core stands");
    }
}
