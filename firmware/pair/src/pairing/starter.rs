//! The box that ran `pair start`: shows the code and answers joiners until it pairs, its code
//! expires, or [`MAX_TRIES`] exchanges fail. It never sends on its own: every datagram it
//! queues answers one it received (the joiner retransmits).

use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use tandem_wire::pairing::{
    signed_part, BoxFacts, Confirm, Hello, MessageType, Nonce, Repr, ResultCode, ResultMessage,
    Role,
};

use super::{
    assign_roles, emit, Notice, Outbox, Outcome, Paired, Refusal, RefusalCounts, ATTEMPT_IDLE,
    ATTEMPT_MAX, CODE_LIFETIME, LINGER, LOCKOUT, MAX_TRIES, SPAKE_MIN_INTERVAL,
};
use crate::code::PairingCode;
use crate::crypto::{self, Keys, SeedRng};
use crate::Instant;

/// One exchange (one try), from its HELLO on.
#[derive(Debug)]
struct Attempt {
    joiner_nonce: Nonce,
    starter_nonce: Nonce,
    hello: Vec<u8>,
    reply: Vec<u8>,
    keys: Keys,
    joiner_facts: BoxFacts,
    starter_role: Role,
    joiner_role: Role,
    started: Instant,
    last_heard: Instant,
    /// `None` while waiting for the CONFIRM; then the CONFIRM that ended it (if one did) and
    /// the RESULT that answers it and every repeat.
    end: Option<AttemptEnd>,
}

#[derive(Debug)]
struct AttemptEnd {
    confirm: Option<Vec<u8>>,
    result: Vec<u8>,
}

impl Attempt {
    fn deadline(&self) -> Instant {
        (self.last_heard + ATTEMPT_IDLE).min(self.started + ATTEMPT_MAX)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The code is valid.
    Open,
    /// Paired, locked or expired at this instant; answers repeats until [`LINGER`] after it.
    Ended { at: Instant },
    /// Past the linger: nothing more to do (still answers, if the daemon keeps feeding it).
    Finished,
}

/// The `pair start` side. See the module [`super`] for the protocol and its decisions.
pub struct Starter {
    code: PairingCode,
    facts: BoxFacts,
    rng: SeedRng,
    expires: Instant,
    tries_left: u8,
    attempts: Vec<Attempt>,
    phase: Phase,
    locked_at: Option<Instant>,
    outcome: Option<Outcome>,
    outbox: Outbox,
    notices: alloc::collections::VecDeque<Notice>,
    /// The nonce of the last version-refused HELLO (one notice per joiner, not per repeat).
    refused_version: Option<Nonce>,
    /// No SPAKE2 computation before this ([`SPAKE_MIN_INTERVAL`]).
    spake_ready: Instant,
    refusals: RefusalCounts,
}

impl fmt::Debug for Starter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Starter")
            .field("expires", &self.expires)
            .field("tries_left", &self.tries_left)
            .field("attempts", &self.attempts.len())
            .field("phase", &self.phase)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

impl Starter {
    /// `pair start` at `now` with `code` (show it on the console), this box's `facts` and 32
    /// bytes from the OS's cryptographic RNG. Prefer [`StartGate::start`], which enforces the
    /// [`LOCKOUT`].
    pub fn new(now: Instant, code: PairingCode, facts: BoxFacts, seed: [u8; 32]) -> Starter {
        Starter {
            code,
            facts,
            rng: SeedRng::new(seed),
            expires: now + CODE_LIFETIME,
            tries_left: MAX_TRIES,
            attempts: Vec::new(),
            phase: Phase::Open,
            locked_at: None,
            outcome: None,
            outbox: Outbox::default(),
            notices: alloc::collections::VecDeque::new(),
            refused_version: None,
            spake_ready: now,
            refusals: RefusalCounts::default(),
        }
    }

    /// The code to show.
    pub fn code(&self) -> PairingCode {
        self.code
    }

    /// When the code expires.
    pub fn expires_at(&self) -> Instant {
        self.expires
    }

    /// Exchanges the code still allows.
    pub fn tries_left(&self) -> u8 {
        self.tries_left
    }

    /// When this starter locked (for [`StartGate::observe`]).
    pub fn locked_at(&self) -> Option<Instant> {
        self.locked_at
    }

    /// How it ended: `Paired`, `Locked` or `Expired`; `None` while the code is valid.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
    }

    /// True once the linger after the end is over: the daemon may drop the starter.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Finished
    }

    /// Refused datagrams by reason.
    pub fn refusals(&self) -> &RefusalCounts {
        &self.refusals
    }

    /// Datagrams dropped because `poll_transmit` was not called.
    pub fn dropped_transmits(&self) -> u64 {
        self.outbox.dropped()
    }

    /// The next datagram to send to the partner.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        self.outbox.pop()
    }

    /// The next thing the console should say while the code stays valid.
    pub fn poll_notice(&mut self) -> Option<Notice> {
        self.notices.pop_front()
    }

    /// When [`Starter::handle_timeout`] must be called next (`None`: finished).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.phase {
            Phase::Open => {
                let waiting = self
                    .attempts
                    .iter()
                    .filter(|a| a.end.is_none())
                    .map(Attempt::deadline);
                Some(waiting.fold(self.expires, Instant::min))
            }
            Phase::Ended { at } => Some(at + LINGER),
            Phase::Finished => None,
        }
    }

    /// Runs the timers: expiry, abandoned exchanges, the end of the linger.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.phase {
            Phase::Open if now >= self.expires => {
                self.end_waiting(ResultCode::Expired);
                self.finish(now, Outcome::Expired);
            }
            Phase::Open => {
                let abandoned = self
                    .attempts
                    .iter()
                    .position(|a| a.end.is_none() && now >= a.deadline());
                if let Some(index) = abandoned {
                    if self.tries_left == 0 {
                        self.end_attempt(index, None, ResultCode::Locked);
                        self.lock(now);
                    } else {
                        self.end_attempt(index, None, ResultCode::Expired);
                        self.notices.push_back(Notice::Abandoned {
                            tries_left: self.tries_left,
                        });
                    }
                }
            }
            Phase::Ended { at } if now >= at + LINGER => self.phase = Phase::Finished,
            Phase::Ended { .. } | Phase::Finished => {}
        }
    }

    /// One datagram from the peer cable. A refusal is counted and changes nothing else.
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) -> Result<(), Refusal> {
        let result = self.handle(now, datagram);
        if let Err(refusal) = &result {
            self.refusals.count(refusal);
        }
        result
    }

    fn handle(&mut self, now: Instant, datagram: &[u8]) -> Result<(), Refusal> {
        // Timers first, so that a datagram after the deadline never sees an open code.
        self.handle_timeout(now);
        match Repr::decode(datagram).map_err(Refusal::Malformed)? {
            Repr::Hello(hello) => self.on_hello(now, datagram, &hello),
            Repr::Confirm(confirm) => self.on_confirm(now, datagram, &confirm),
            other => Err(Refusal::WrongDirection {
                message_type: other.message_type(),
            }),
        }
    }

    fn on_hello(&mut self, now: Instant, datagram: &[u8], hello: &Hello) -> Result<(), Refusal> {
        if let Some(attempt) = self
            .attempts
            .iter_mut()
            .find(|a| a.joiner_nonce == hello.joiner_nonce)
        {
            // A repeat of a HELLO already answered: the same answer again.
            if attempt.hello != datagram {
                return Err(Refusal::Conflicting {
                    message_type: MessageType::Hello,
                });
            }
            let answer = match &attempt.end {
                None => {
                    attempt.last_heard = now;
                    attempt.reply.clone()
                }
                Some(end) => end.result.clone(),
            };
            self.outbox.push(answer);
            return Ok(());
        }
        let refuse = match self.phase {
            Phase::Open if self.facts.versions != hello.facts.versions => {
                if self.refused_version != Some(hello.joiner_nonce) {
                    self.refused_version = Some(hello.joiner_nonce);
                    self.notices.push_back(Notice::VersionSkew {
                        ours: self.facts.versions,
                        theirs: hello.facts.versions,
                    });
                }
                Some(ResultCode::VersionRefused)
            }
            Phase::Open if self.attempts.iter().any(|a| a.end.is_none()) => Some(ResultCode::Busy),
            // Tries are used by REPLYs; none left and none waiting means it locked.
            Phase::Open if self.tries_left == 0 => Some(ResultCode::Locked),
            Phase::Open => None,
            Phase::Ended { .. } | Phase::Finished => Some(if self.locked_at.is_some() {
                ResultCode::Locked
            } else {
                ResultCode::Expired
            }),
        };
        if let Some(code) = refuse {
            let result = self.result(hello.joiner_nonce, [0; 16], code);
            self.outbox.push(result);
            return Ok(());
        }
        self.open_attempt(now, datagram, hello)
    }

    /// Answers a new HELLO with a REPLY; uses one try.
    fn open_attempt(
        &mut self,
        now: Instant,
        datagram: &[u8],
        hello: &Hello,
    ) -> Result<(), Refusal> {
        if now < self.spake_ready {
            return Err(Refusal::RateLimited);
        }
        self.spake_ready = now + SPAKE_MIN_INTERVAL;
        // Draw from a copy of the stream: a refused HELLO leaves the starter as it was.
        let mut rng = self.rng.clone();
        let (spake, spake_message) = crypto::starter_spake(self.code, rng.seed32());
        let shared = spake.finish(&hello.spake).map_err(|_| Refusal::BadSpake)?;
        let starter_nonce = rng.nonce();
        self.rng = rng;
        let keys = crypto::derive(&shared, &hello.joiner_nonce, &starter_nonce);
        let (starter_role, joiner_role) = assign_roles(self.facts.role, hello.facts.role);
        let mut reply = tandem_wire::pairing::Reply {
            joiner_nonce: hello.joiner_nonce,
            starter_nonce,
            facts: self.facts,
            starter_role,
            joiner_role,
            spake: spake_message,
            tag: [0; 32],
        };
        let unsigned = emit(&Repr::Reply(reply));
        reply.tag = crypto::tag(
            &keys.confirm,
            crypto::LABEL_REPLY,
            &[datagram, signed_part(&unsigned)],
        );
        let reply = emit(&Repr::Reply(reply));
        self.tries_left = self.tries_left.saturating_sub(1);
        self.outbox.push(reply.clone());
        self.attempts.push(Attempt {
            joiner_nonce: hello.joiner_nonce,
            starter_nonce,
            hello: datagram.to_vec(),
            reply,
            keys,
            joiner_facts: hello.facts,
            starter_role,
            joiner_role,
            started: now,
            last_heard: now,
            end: None,
        });
        Ok(())
    }

    fn on_confirm(
        &mut self,
        now: Instant,
        datagram: &[u8],
        confirm: &Confirm,
    ) -> Result<(), Refusal> {
        let index = self
            .attempts
            .iter()
            .position(|a| {
                a.joiner_nonce == confirm.joiner_nonce && a.starter_nonce == confirm.starter_nonce
            })
            .ok_or(Refusal::UnknownExchange {
                message_type: MessageType::Confirm,
            })?;
        let attempt = &mut self.attempts[index];
        if let Some(end) = &attempt.end {
            // A repeat: the same RESULT. A CONFIRM after the exchange ended without one
            // (abandoned, expired) gets that RESULT too; another CONFIRM is refused.
            if end.confirm.as_deref().is_some_and(|c| c != datagram) {
                return Err(Refusal::Conflicting {
                    message_type: MessageType::Confirm,
                });
            }
            let result = end.result.clone();
            self.outbox.push(result);
            return Ok(());
        }
        attempt.last_heard = now;
        let confirmed = crypto::verify(
            &attempt.keys.confirm,
            crypto::LABEL_CONFIRM,
            &[&attempt.hello, &attempt.reply, signed_part(datagram)],
            &confirm.tag,
        );
        if confirmed {
            let paired = Paired {
                key: attempt.keys.pair_key,
                pair_id: attempt.keys.pair_id,
                my_role: attempt.starter_role,
                peer_role: attempt.joiner_role,
                peer_facts: attempt.joiner_facts,
            };
            let mut result = ResultMessage {
                joiner_nonce: attempt.joiner_nonce,
                starter_nonce: attempt.starter_nonce,
                code: ResultCode::Paired { tag: [0; 32] },
                versions: self.facts.versions,
            };
            let unsigned = emit(&Repr::Result(result));
            let tag = crypto::tag(
                &attempt.keys.confirm,
                crypto::LABEL_RESULT,
                &[
                    &attempt.hello,
                    &attempt.reply,
                    datagram,
                    signed_part(&unsigned),
                ],
            );
            result.code = ResultCode::Paired { tag };
            let bytes = emit(&Repr::Result(result));
            self.outbox.push(bytes.clone());
            attempt.end = Some(AttemptEnd {
                confirm: Some(datagram.to_vec()),
                result: bytes,
            });
            self.finish(now, Outcome::Paired(paired));
        } else if self.tries_left == 0 {
            self.end_attempt(index, Some(datagram), ResultCode::Locked);
            self.lock(now);
        } else {
            let tries_left = self.tries_left;
            self.end_attempt(index, Some(datagram), ResultCode::WrongCode { tries_left });
            self.notices.push_back(Notice::WrongCode { tries_left });
        }
        Ok(())
    }

    fn result(&self, joiner_nonce: Nonce, starter_nonce: Nonce, code: ResultCode) -> Vec<u8> {
        emit(&Repr::Result(ResultMessage {
            joiner_nonce,
            starter_nonce,
            code,
            versions: self.facts.versions,
        }))
    }

    /// Ends the exchange at `index` with `code` and sends that RESULT.
    fn end_attempt(&mut self, index: usize, confirm: Option<&[u8]>, code: ResultCode) {
        let Some(attempt) = self.attempts.get(index) else {
            return;
        };
        let result = self.result(attempt.joiner_nonce, attempt.starter_nonce, code);
        self.outbox.push(result.clone());
        if let Some(attempt) = self.attempts.get_mut(index) {
            attempt.end = Some(AttemptEnd {
                confirm: confirm.map(<[u8]>::to_vec),
                result,
            });
        }
    }

    /// Ends every waiting exchange with `code` (at expiry).
    fn end_waiting(&mut self, code: ResultCode) {
        for index in 0..self.attempts.len() {
            if self.attempts.get(index).is_some_and(|a| a.end.is_none()) {
                self.end_attempt(index, None, code);
            }
        }
    }

    fn lock(&mut self, now: Instant) {
        self.locked_at = Some(now);
        self.finish(now, Outcome::Locked);
    }

    fn finish(&mut self, now: Instant, outcome: Outcome) {
        self.outcome = Some(outcome);
        self.phase = Phase::Ended { at: now };
    }
}

/// Keeps `pair start` refused for [`LOCKOUT`] after a starter locked. The daemon keeps one for
/// the box's lifetime and calls [`StartGate::observe`] after handling its starter's input.
#[derive(Debug, Clone, Default)]
pub struct StartGate {
    refused_until: Option<Instant>,
}

impl StartGate {
    /// A gate that lets the first `pair start` through.
    pub const fn new() -> StartGate {
        StartGate {
            refused_until: None,
        }
    }

    /// `pair start`: a new [`Starter`], unless a lockout is in force.
    pub fn start(
        &self,
        now: Instant,
        code: PairingCode,
        facts: BoxFacts,
        seed: [u8; 32],
    ) -> Result<Starter, StartRefused> {
        match self.refused_until {
            Some(until) if now < until => Err(StartRefused {
                retry_in: until - now,
            }),
            _ => Ok(Starter::new(now, code, facts, seed)),
        }
    }

    /// Notes a lockout of `starter` (call after its `handle_*`; cheap, idempotent).
    pub fn observe(&mut self, starter: &Starter) {
        if let Some(at) = starter.locked_at() {
            let until = at + LOCKOUT;
            self.refused_until = Some(self.refused_until.map_or(until, |u| u.max(until)));
        }
    }

    /// Until when `pair start` is refused.
    pub fn refused_until(&self) -> Option<Instant> {
        self.refused_until
    }
}

/// `pair start` during a lockout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartRefused {
    /// Time left of the lockout.
    pub retry_in: Duration,
}

impl fmt::Display for StartRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Round up: "0 s" would invite a retry that is still refused.
        let secs = self.retry_in.as_secs() + u64::from(self.retry_in.subsec_nanos() > 0);
        write!(
            f,
            "pairing is locked after {MAX_TRIES} wrong codes: run `pair start` again in {secs} s"
        )
    }
}
