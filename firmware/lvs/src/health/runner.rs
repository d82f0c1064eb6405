//! The tokio driver of a [`HealthScheduler`]: sleeps until the next deadline, spawns due
//! attempts (bounded in number), feeds their results back, and forwards health transitions.
//! Used by the daemon with its real clock; the scheduler itself stays sans-IO.

use std::time::Instant;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::check::CheckSpec;
use super::probe::run_probe;
use super::reply::FailReason;
use super::schedule::{CheckId, HealthEvent, HealthScheduler, SubscriberId};

/// Configuration changes for a running [`run`] loop.
#[derive(Debug, Clone)]
pub enum Command {
    /// Start (or replace) a subscriber's check.
    Subscribe(SubscriberId, CheckSpec),
    /// Stop a subscriber's check.
    Unsubscribe(SubscriberId),
}

/// Counters of a finished [`run`] loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunStats {
    /// Attempts completed.
    pub attempts: u64,
    /// Attempts that failed.
    pub failures: u64,
}

/// Drives `sched` until `commands` closes (or `stop_after` attempts completed, for benches),
/// sending every transition to `events`. At most `max_in_flight` attempts run at once.
pub async fn run(
    mut sched: HealthScheduler,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<HealthEvent>,
    max_in_flight: usize,
    stop_after: Option<u64>,
) -> RunStats {
    let mut tasks: JoinSet<(CheckId, Result<(), FailReason>)> = JoinSet::new();
    let mut stats = RunStats::default();
    let mut commands_open = true;
    loop {
        let now = Instant::now();
        while commands_open && tasks.len() < max_in_flight.max(1) {
            let Some(attempt) = sched.poll_attempt(now) else {
                break;
            };
            tasks.spawn(async move {
                let result = run_probe(&attempt.key).await;
                (attempt.check, result)
            });
        }
        while let Some(ev) = sched.poll_event() {
            if events.send(ev).await.is_err() {
                return stats;
            }
        }
        if stop_after.is_some_and(|n| stats.attempts >= n) || (!commands_open && tasks.is_empty()) {
            return stats;
        }
        let deadline = if commands_open && tasks.len() < max_in_flight.max(1) {
            sched.poll_timeout()
        } else {
            None
        };
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Ok((check, result)) = done {
                    stats.attempts += 1;
                    if result.is_err() {
                        stats.failures += 1;
                    }
                    sched.handle_result(check, result, Instant::now());
                }
            }
            cmd = commands.recv(), if commands_open => match cmd {
                Some(Command::Subscribe(sub, spec)) => {
                    sched.subscribe(sub, spec, Instant::now());
                }
                Some(Command::Unsubscribe(sub)) => sched.unsubscribe(sub),
                None => commands_open = false,
            },
            () = sleep => {}
        }
    }
}
