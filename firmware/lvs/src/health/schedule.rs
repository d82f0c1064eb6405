//! Sans-IO health-check scheduler (time is injected; nothing here reads a clock or a socket).
//!
//! Identical checks ([`CheckKey`]) are run once and their result fans out to every subscriber
//! (a real server in some service). Each check's first round starts at a jittered offset within
//! its interval so a thousand checks do not fire together. A round is one attempt plus up to
//! `retries` retries; the round's verdict feeds each subscriber's rise/fall counters, and a
//! change of state comes out as a [`HealthEvent`].
//!
//! Contract: `subscribe`/`unsubscribe` as config changes; `poll_attempt(now)` until `None` and
//! run each attempt; `handle_result` when it finishes; `poll_event` for transitions; sleep until
//! `poll_timeout()`.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::check::{CheckKey, CheckSpec, CheckTiming};
use super::reply::FailReason;

/// Who wants to know a check's verdict; chosen by the caller (e.g. an index of a real server
/// in a service).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriberId(pub u64);

/// Handle of a deduplicated check; never reused within one scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckId(u64);

/// An attempt to run now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// Pass back to [`HealthScheduler::handle_result`].
    pub check: CheckId,
    /// What to run.
    pub key: Arc<CheckKey>,
    /// 0 for the first attempt of a round, then 1.. for retries.
    pub retry: u32,
}

/// A subscriber's health changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthEvent {
    /// Whose.
    pub subscriber: SubscriberId,
    /// New state.
    pub up: bool,
    /// When the deciding round finished.
    pub at: Instant,
    /// Why it went down (`None` when going up).
    pub reason: Option<FailReason>,
}

#[derive(Debug)]
struct CheckState {
    key: Arc<CheckKey>,
    subscribers: Vec<SubscriberId>,
    interval: Duration,
    retries: u32,
    retry_delay: Duration,
    due: Instant,
    round_started: Instant,
    retry: u32,
    in_flight: bool,
}

#[derive(Debug)]
struct SubState {
    check: CheckId,
    timing: CheckTiming,
    up: bool,
    /// Whether a verdict was reported: a subscriber that starts down reports its first failed
    /// round too (else its status says "not checked yet" however long the check fails).
    reported: bool,
    good: u32,
    bad: u32,
}

/// The scheduler. See the module documentation for the call contract.
#[derive(Debug)]
pub struct HealthScheduler {
    checks: HashMap<CheckId, CheckState>,
    by_key: HashMap<Arc<CheckKey>, CheckId>,
    subs: HashMap<SubscriberId, SubState>,
    timers: BinaryHeap<Reverse<(Instant, CheckId)>>,
    events: VecDeque<HealthEvent>,
    next_id: u64,
    rng: u64,
}

impl HealthScheduler {
    /// An empty scheduler; `seed` drives start jitter (fixed seeds make tests repeatable).
    pub fn new(seed: u64) -> Self {
        HealthScheduler {
            checks: HashMap::new(),
            by_key: HashMap::new(),
            subs: HashMap::new(),
            timers: BinaryHeap::new(),
            events: VecDeque::new(),
            next_id: 0,
            rng: seed,
        }
    }

    fn jitter(&mut self, interval: Duration) -> Duration {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        let nanos = u64::try_from(interval.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(z % nanos)
    }

    /// Number of distinct checks (after deduplication).
    pub fn check_count(&self) -> usize {
        self.checks.len()
    }

    /// Adds (or replaces) a subscriber's check. Returns the shared check's id.
    pub fn subscribe(&mut self, sub: SubscriberId, spec: CheckSpec, now: Instant) -> CheckId {
        self.unsubscribe(sub);
        let key = Arc::new(spec.key);
        let id = match self.by_key.get(&key) {
            Some(id) => *id,
            None => {
                let id = CheckId(self.next_id);
                self.next_id += 1;
                let due = now + self.jitter(spec.timing.interval);
                self.checks.insert(
                    id,
                    CheckState {
                        key: Arc::clone(&key),
                        subscribers: Vec::new(),
                        interval: spec.timing.interval,
                        retries: spec.timing.retries,
                        retry_delay: spec.timing.retry_delay,
                        due,
                        round_started: due,
                        retry: 0,
                        in_flight: false,
                    },
                );
                self.by_key.insert(key, id);
                self.timers.push(Reverse((due, id)));
                id
            }
        };
        let timing = spec.timing;
        self.subs.insert(
            sub,
            SubState {
                check: id,
                timing,
                up: timing.start_up,
                reported: false,
                good: 0,
                bad: 0,
            },
        );
        if let Some(c) = self.checks.get_mut(&id) {
            c.subscribers.push(sub);
        }
        self.recompute_timing(id);
        id
    }

    /// Removes a subscriber; a check nobody subscribes to any more is dropped.
    pub fn unsubscribe(&mut self, sub: SubscriberId) {
        let Some(state) = self.subs.remove(&sub) else {
            return;
        };
        let id = state.check;
        let empty = match self.checks.get_mut(&id) {
            Some(c) => {
                c.subscribers.retain(|s| *s != sub);
                c.subscribers.is_empty()
            }
            None => false,
        };
        if empty {
            if let Some(c) = self.checks.remove(&id) {
                self.by_key.remove(&c.key);
            }
        } else {
            self.recompute_timing(id);
        }
    }

    /// The strictest timing among a check's subscribers: shortest interval and retry delay,
    /// most retries.
    fn recompute_timing(&mut self, id: CheckId) {
        let Some(c) = self.checks.get(&id) else {
            return;
        };
        let timings = c
            .subscribers
            .iter()
            .filter_map(|s| self.subs.get(s))
            .map(|s| s.timing);
        let (mut interval, mut retries, mut retry_delay) = (Duration::MAX, 0, Duration::MAX);
        for t in timings {
            interval = interval.min(t.interval);
            retries = retries.max(t.retries);
            retry_delay = retry_delay.min(t.retry_delay);
        }
        if let Some(c) = self.checks.get_mut(&id) {
            c.interval = interval;
            c.retries = retries;
            c.retry_delay = retry_delay;
        }
    }

    /// Current state of a subscriber.
    pub fn is_up(&self, sub: SubscriberId) -> Option<bool> {
        self.subs.get(&sub).map(|s| s.up)
    }

    /// When the next attempt is due (`None`: nothing scheduled).
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse((due, id))) = self.timers.peek().copied() {
            if self.is_live_timer(due, id) {
                return Some(due);
            }
            self.timers.pop();
        }
        None
    }

    fn is_live_timer(&self, due: Instant, id: CheckId) -> bool {
        self.checks
            .get(&id)
            .is_some_and(|c| !c.in_flight && c.due == due)
    }

    /// The next attempt due at `now`, if any. Call until `None`.
    pub fn poll_attempt(&mut self, now: Instant) -> Option<Attempt> {
        while let Some(Reverse((due, id))) = self.timers.peek().copied() {
            if due > now {
                return None;
            }
            self.timers.pop();
            if !self.is_live_timer(due, id) {
                continue;
            }
            let c = self.checks.get_mut(&id)?;
            c.in_flight = true;
            if c.retry == 0 {
                c.round_started = due;
            }
            return Some(Attempt {
                check: id,
                key: Arc::clone(&c.key),
                retry: c.retry,
            });
        }
        None
    }

    /// Feeds an attempt's result. Results for checks removed meanwhile are ignored.
    pub fn handle_result(&mut self, check: CheckId, result: Result<(), FailReason>, now: Instant) {
        let Some(c) = self.checks.get_mut(&check) else {
            return;
        };
        c.in_flight = false;
        if result.is_err() && c.retry < c.retries {
            c.retry += 1;
            c.due = now + c.retry_delay;
            self.timers.push(Reverse((c.due, check)));
            return;
        }
        c.retry = 0;
        c.due = (c.round_started + c.interval).max(now);
        self.timers.push(Reverse((c.due, check)));
        let subscribers = c.subscribers.clone();
        for sub in subscribers {
            let Some(s) = self.subs.get_mut(&sub) else {
                continue;
            };
            match &result {
                Ok(()) => {
                    s.bad = 0;
                    s.good = s.good.saturating_add(1);
                    if !s.up && s.good >= s.timing.rise.max(1) {
                        s.up = true;
                        s.reported = true;
                        self.events.push_back(HealthEvent {
                            subscriber: sub,
                            up: true,
                            at: now,
                            reason: None,
                        });
                    }
                }
                Err(reason) => {
                    s.good = 0;
                    s.bad = s.bad.saturating_add(1);
                    let first_down = !s.up && !s.reported;
                    if (s.up || first_down) && s.bad >= s.timing.fall.max(1) {
                        s.up = false;
                        s.reported = true;
                        self.events.push_back(HealthEvent {
                            subscriber: sub,
                            up: false,
                            at: now,
                            reason: Some(reason.clone()),
                        });
                    }
                }
            }
        }
    }

    /// The next health transition, oldest first.
    pub fn poll_event(&mut self) -> Option<HealthEvent> {
        self.events.pop_front()
    }
}
