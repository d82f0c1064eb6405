//! The box that ran `pair join CODE`: speaks first, retransmits its last datagram every
//! [`RETRANSMIT_INTERVAL`] until answered, and ends with an [`Outcome`] in every case (the
//! partner's verdict, or its own deadline).

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use tandem_wire::pairing::{
    signed_part, BoxFacts, Confirm, Hello, MessageType, Nonce, Reply, Repr, ResultCode,
    ResultMessage,
};

use super::{
    emit, Outbox, Outcome, Paired, Refusal, RefusalCounts, ANSWER_TIMEOUT, RESULT_TIMEOUT,
    RETRANSMIT_INTERVAL, SPAKE_MIN_INTERVAL,
};
use crate::code::PairingCode;
use crate::crypto::{self, Keys, SeedRng};
use crate::Instant;

#[derive(Debug)]
enum State {
    /// HELLO sent, no REPLY yet.
    AwaitReply {
        deadline: Instant,
        /// The partner answered BUSY: at the deadline that is the outcome, not `NoAnswer`.
        busy: bool,
    },
    /// REPLY handled, CONFIRM sent, waiting for the RESULT.
    AwaitResult(Box<Exchange>),
    /// Over: `outcome` is set. Keeps the datagrams that ended it so repeats are harmless.
    Done {
        reply: Option<Vec<u8>>,
        result: Option<Vec<u8>>,
    },
}

#[derive(Debug)]
struct Exchange {
    reply: Vec<u8>,
    confirm: Vec<u8>,
    starter_nonce: Nonce,
    keys: Keys,
    /// The starter's tag verified: the codes match.
    key_confirmed: bool,
    paired: Paired,
    deadline: Instant,
}

/// The `pair join CODE` side. See the module [`super`] for the protocol and its decisions.
pub struct Joiner {
    code: PairingCode,
    facts: BoxFacts,
    joiner_nonce: Nonce,
    /// Seed of the SPAKE2 secret: the state is rebuilt from it for each REPLY, so a refused
    /// REPLY does not consume it.
    spake_seed: [u8; 32],
    hello: Vec<u8>,
    state: State,
    next_send: Instant,
    /// No SPAKE2 computation before this ([`SPAKE_MIN_INTERVAL`]).
    spake_ready: Instant,
    outcome: Option<Outcome>,
    outbox: Outbox,
    refusals: RefusalCounts,
}

impl fmt::Debug for Joiner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Joiner")
            .field("state", &self.state)
            .field("next_send", &self.next_send)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

impl Joiner {
    /// `pair join CODE` at `now`, with this box's `facts` and 32 bytes from the OS's
    /// cryptographic RNG. The HELLO is queued at once.
    pub fn new(now: Instant, code: PairingCode, facts: BoxFacts, seed: [u8; 32]) -> Joiner {
        let mut rng = SeedRng::new(seed);
        let joiner_nonce = rng.nonce();
        let spake_seed = rng.seed32();
        let (_, spake) = crypto::joiner_spake(code, spake_seed);
        let hello = emit(&Repr::Hello(Hello {
            joiner_nonce,
            facts,
            spake,
        }));
        let mut outbox = Outbox::default();
        outbox.push(hello.clone());
        Joiner {
            code,
            facts,
            joiner_nonce,
            spake_seed,
            hello,
            state: State::AwaitReply {
                deadline: now + ANSWER_TIMEOUT,
                busy: false,
            },
            next_send: now + RETRANSMIT_INTERVAL,
            spake_ready: now,
            outcome: None,
            outbox,
            refusals: RefusalCounts::default(),
        }
    }

    /// How it ended; `None` while the exchange runs.
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
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

    /// When [`Joiner::handle_timeout`] must be called next (`None`: over).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.state {
            State::AwaitReply { deadline, .. } => Some(self.next_send.min(*deadline)),
            State::AwaitResult(exchange) => Some(self.next_send.min(exchange.deadline)),
            State::Done { .. } => None,
        }
    }

    /// Retransmits, or ends the exchange at its deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        let ended = match &self.state {
            State::AwaitReply { deadline, busy } if now >= *deadline => Some((
                if *busy {
                    Outcome::Busy
                } else {
                    Outcome::NoAnswer
                },
                None,
            )),
            State::AwaitResult(exchange) if now >= exchange.deadline => Some((
                if exchange.key_confirmed {
                    Outcome::NoResult
                } else {
                    Outcome::WrongCode { tries_left: None }
                },
                Some(exchange.reply.clone()),
            )),
            State::Done { .. } => return,
            _ => None,
        };
        if let Some((outcome, reply)) = ended {
            self.finish(outcome, reply, None);
            return;
        }
        if now >= self.next_send {
            let last = match &self.state {
                State::AwaitResult(exchange) => exchange.confirm.clone(),
                _ => self.hello.clone(),
            };
            self.outbox.push(last);
            self.next_send = now + RETRANSMIT_INTERVAL;
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
        let repr = Repr::decode(datagram).map_err(Refusal::Malformed)?;
        if let State::Done { reply, result } = &self.state {
            // Repeats of what ended it are harmless; anything else is late.
            let repeat = [reply, result]
                .into_iter()
                .any(|seen| seen.as_deref() == Some(datagram));
            return if repeat {
                Ok(())
            } else {
                Err(Refusal::Finished)
            };
        }
        match repr {
            Repr::Reply(reply) => self.on_reply(now, datagram, &reply),
            Repr::Result(result) => self.on_result(datagram, &result),
            other => Err(Refusal::WrongDirection {
                message_type: other.message_type(),
            }),
        }
    }

    fn on_reply(&mut self, now: Instant, datagram: &[u8], reply: &Reply) -> Result<(), Refusal> {
        if reply.joiner_nonce != self.joiner_nonce {
            return Err(Refusal::UnknownExchange {
                message_type: MessageType::Reply,
            });
        }
        if let State::AwaitResult(exchange) = &self.state {
            // The starter answered a repeated HELLO: harmless when it is the same REPLY (the
            // retransmit timer repeats the CONFIRM).
            return if exchange.reply == datagram {
                Ok(())
            } else {
                Err(Refusal::Conflicting {
                    message_type: MessageType::Reply,
                })
            };
        }
        if now < self.spake_ready {
            return Err(Refusal::RateLimited);
        }
        self.spake_ready = now + SPAKE_MIN_INTERVAL;
        let (spake, _) = crypto::joiner_spake(self.code, self.spake_seed);
        let shared = spake.finish(&reply.spake).map_err(|_| Refusal::BadSpake)?;
        let keys = crypto::derive(&shared, &self.joiner_nonce, &reply.starter_nonce);
        let key_confirmed = crypto::verify(
            &keys.confirm,
            crypto::LABEL_REPLY,
            &[&self.hello, signed_part(datagram)],
            &reply.tag,
        );
        // Sent even when the starter's tag failed: the starter must count the wrong try so
        // that both consoles report it.
        let mut confirm = Confirm {
            joiner_nonce: self.joiner_nonce,
            starter_nonce: reply.starter_nonce,
            tag: [0; 32],
        };
        let unsigned = emit(&Repr::Confirm(confirm));
        confirm.tag = crypto::tag(
            &keys.confirm,
            crypto::LABEL_CONFIRM,
            &[&self.hello, datagram, signed_part(&unsigned)],
        );
        let confirm = emit(&Repr::Confirm(confirm));
        self.outbox.push(confirm.clone());
        self.next_send = now + RETRANSMIT_INTERVAL;
        let paired = Paired {
            key: keys.pair_key,
            pair_id: keys.pair_id,
            my_role: reply.joiner_role,
            peer_role: reply.starter_role,
            peer_facts: reply.facts,
        };
        self.state = State::AwaitResult(Box::new(Exchange {
            reply: datagram.to_vec(),
            confirm,
            starter_nonce: reply.starter_nonce,
            keys,
            key_confirmed,
            paired,
            deadline: now + RESULT_TIMEOUT,
        }));
        Ok(())
    }

    fn on_result(&mut self, datagram: &[u8], result: &ResultMessage) -> Result<(), Refusal> {
        let unknown = Refusal::UnknownExchange {
            message_type: MessageType::Result,
        };
        let unexpected = Refusal::Unexpected {
            message_type: MessageType::Result,
        };
        if result.joiner_nonce != self.joiner_nonce {
            return Err(unknown);
        }
        match &self.state {
            State::AwaitReply { deadline, .. } => {
                // Answers to a HELLO; the starter nonce is 0, or that of an exchange whose
                // REPLY we never heard (it ended: expired or locked).
                let outcome = match result.code {
                    ResultCode::Busy => {
                        self.state = State::AwaitReply {
                            deadline: *deadline,
                            busy: true,
                        };
                        return Ok(());
                    }
                    ResultCode::Locked => Outcome::Locked,
                    ResultCode::Expired => Outcome::Expired,
                    ResultCode::VersionRefused => Outcome::VersionSkew {
                        ours: self.facts.versions,
                        theirs: result.versions,
                    },
                    ResultCode::Paired { .. } | ResultCode::WrongCode { .. } => {
                        return Err(unexpected)
                    }
                };
                self.finish(outcome, None, Some(datagram));
                Ok(())
            }
            State::AwaitResult(exchange) => {
                if result.starter_nonce != exchange.starter_nonce {
                    return Err(unknown);
                }
                let outcome = match result.code {
                    ResultCode::Paired { tag } => {
                        let authentic = exchange.key_confirmed
                            && crypto::verify(
                                &exchange.keys.confirm,
                                crypto::LABEL_RESULT,
                                &[
                                    &self.hello,
                                    &exchange.reply,
                                    &exchange.confirm,
                                    signed_part(datagram),
                                ],
                                &tag,
                            );
                        if !authentic {
                            return Err(Refusal::BadTag);
                        }
                        Outcome::Paired(exchange.paired.clone())
                    }
                    ResultCode::WrongCode { tries_left } => Outcome::WrongCode {
                        tries_left: Some(tries_left),
                    },
                    ResultCode::Locked => Outcome::Locked,
                    ResultCode::Expired => Outcome::Expired,
                    ResultCode::Busy | ResultCode::VersionRefused => return Err(unexpected),
                };
                let reply = Some(exchange.reply.clone());
                self.finish(outcome, reply, Some(datagram));
                Ok(())
            }
            State::Done { .. } => Err(Refusal::Finished),
        }
    }

    fn finish(&mut self, outcome: Outcome, reply: Option<Vec<u8>>, result: Option<&[u8]>) {
        self.outcome = Some(outcome);
        self.state = State::Done {
            reply,
            result: result.map(<[u8]>::to_vec),
        };
    }
}
