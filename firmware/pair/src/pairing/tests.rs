//! The two state machines against each other on a virtual clock and a virtual cable that can
//! lose, repeat, reorder and forge datagrams.

use alloc::string::ToString;
use alloc::vec::Vec;
use core::time::Duration;

use tandem_wire::pairing::{
    BoxFacts, PairingWireError, Repr, ResultCode, ResultMessage, Role, Versions, MAX_DATAGRAM_LEN,
};

use super::*;
use crate::code::PairingCode;
use crate::Instant;

const VERSIONS: Versions = Versions {
    pairing: PROTOCOL_VERSION,
    channel: 1,
    blob: 3,
};

fn facts(role: Option<Role>, generation: u64) -> BoxFacts {
    BoxFacts {
        versions: VERSIONS,
        role,
        generation,
    }
}

fn code(value: u32) -> PairingCode {
    PairingCode::new(value).unwrap()
}

const CODE: u32 = 12_345_678;
const T0: Instant = Instant::from_secs(1000);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Toward {
    Starter,
    Joiner,
}

/// What the cable does with one datagram.
enum Deliver {
    Yes,
    Drop,
    /// Deliver it now and once more later (after the next datagram in the same direction).
    Twice,
}

/// Runs the exchange until the joiner has an outcome and nothing is in flight. Every datagram
/// goes through `cable` (its running index, direction, bytes).
fn run(
    starter: &mut Starter,
    joiner: &mut Joiner,
    mut now: Instant,
    mut cable: impl FnMut(usize, Toward, &[u8]) -> Deliver,
) -> Instant {
    let mut index = 0;
    let mut replay: Vec<(Toward, Vec<u8>)> = Vec::new();
    for _ in 0..10_000 {
        let mut moved = false;
        while let Some(datagram) = joiner.poll_transmit() {
            moved = true;
            index += 1;
            let late = replay_due(&mut replay, Toward::Starter);
            deliver(
                &mut cable,
                index,
                Toward::Starter,
                datagram,
                &mut replay,
                |d| {
                    let _ = starter.handle_datagram(now, d);
                },
            );
            for d in late {
                let _ = starter.handle_datagram(now, &d);
            }
        }
        while let Some(datagram) = starter.poll_transmit() {
            moved = true;
            index += 1;
            let late = replay_due(&mut replay, Toward::Joiner);
            deliver(
                &mut cable,
                index,
                Toward::Joiner,
                datagram,
                &mut replay,
                |d| {
                    let _ = joiner.handle_datagram(now, d);
                },
            );
            for d in late {
                let _ = joiner.handle_datagram(now, &d);
            }
        }
        if moved {
            continue;
        }
        if joiner.outcome().is_some() {
            return now;
        }
        let next = [joiner.poll_timeout(), starter.poll_timeout()]
            .into_iter()
            .flatten()
            .min()
            .expect("a running joiner has a timer");
        now = now.max(next);
        joiner.handle_timeout(now);
        starter.handle_timeout(now);
    }
    panic!("the exchange did not end");
}

fn replay_due(replay: &mut Vec<(Toward, Vec<u8>)>, toward: Toward) -> Vec<Vec<u8>> {
    let (due, keep): (Vec<_>, Vec<_>) = replay.drain(..).partition(|(t, _)| *t == toward);
    *replay = keep;
    due.into_iter().map(|(_, d)| d).collect()
}

fn deliver(
    cable: &mut impl FnMut(usize, Toward, &[u8]) -> Deliver,
    index: usize,
    toward: Toward,
    datagram: Vec<u8>,
    replay: &mut Vec<(Toward, Vec<u8>)>,
    mut to: impl FnMut(&[u8]),
) {
    match cable(index, toward, &datagram) {
        Deliver::Yes => to(&datagram),
        Deliver::Drop => {}
        Deliver::Twice => {
            to(&datagram);
            replay.push((toward, datagram));
        }
    }
}

fn perfect(_: usize, _: Toward, _: &[u8]) -> Deliver {
    Deliver::Yes
}

fn pair(starter_facts: BoxFacts, joiner_facts: BoxFacts) -> (Starter, Joiner) {
    let mut starter = Starter::new(T0, code(CODE), starter_facts, [1; 32]);
    let mut joiner = Joiner::new(T0, code(CODE), joiner_facts, [2; 32]);
    run(&mut starter, &mut joiner, T0, perfect);
    (starter, joiner)
}

fn paired(outcome: Option<&Outcome>) -> &Paired {
    outcome
        .and_then(Outcome::paired)
        .unwrap_or_else(|| panic!("not paired: {outcome:?}"))
}

#[test]
fn a_full_exchange_pairs_both_boxes_alike() {
    let (starter, joiner) = pair(facts(None, 7), facts(None, 0));
    let s = paired(starter.outcome());
    let j = paired(joiner.outcome());
    assert_eq!(s.key, j.key);
    assert_eq!(s.pair_id, j.pair_id);
    assert_ne!(s.pair_id, 0);
    assert_ne!(s.key, [0; 32]);
    assert_eq!((s.my_role, s.peer_role), (Role::A, Role::B));
    assert_eq!((j.my_role, j.peer_role), (Role::B, Role::A));
    assert_eq!(s.peer_facts, facts(None, 0));
    assert_eq!(j.peer_facts, facts(None, 7));
    assert_eq!(starter.tries_left(), MAX_TRIES - 1);
    assert_eq!(starter.refusals().total() + joiner.refusals().total(), 0);
    assert!(joiner.poll_timeout().is_none());
    // Another exchange gives another key and id.
    let mut other_starter = Starter::new(T0, code(CODE), facts(None, 7), [3; 32]);
    let mut other_joiner = Joiner::new(T0, code(CODE), facts(None, 0), [4; 32]);
    run(&mut other_starter, &mut other_joiner, T0, perfect);
    let other = paired(other_joiner.outcome());
    assert_ne!(other.key, j.key);
    assert_ne!(other.pair_id, j.pair_id);
    assert_eq!(
        joiner.outcome().unwrap().to_string(),
        alloc::format!(
            "paired: this box is b, the partner is a (pair id {:016x})",
            j.pair_id
        )
    );
}

#[test]
fn the_starter_lingers_then_finishes() {
    let (mut starter, _) = pair(facts(None, 0), facts(None, 0));
    let end = starter.poll_timeout().unwrap();
    starter.handle_timeout(end - Duration::from_nanos(1));
    assert!(!starter.is_finished());
    starter.handle_timeout(end);
    assert!(starter.is_finished());
    assert_eq!(starter.poll_timeout(), None);
}

#[test]
fn a_wrong_code_is_reported_on_both_consoles() {
    let mut starter = Starter::new(T0, code(CODE), facts(None, 0), [1; 32]);
    let mut joiner = Joiner::new(T0, code(CODE + 1), facts(None, 0), [2; 32]);
    run(&mut starter, &mut joiner, T0, perfect);
    assert_eq!(
        joiner.outcome(),
        Some(&Outcome::WrongCode {
            tries_left: Some(2)
        })
    );
    assert_eq!(
        joiner.outcome().unwrap().to_string(),
        "wrong pairing code (2 tries left): check the code shown on the other console and run `pair join CODE` again"
    );
    assert_eq!(
        starter.poll_notice(),
        Some(Notice::WrongCode { tries_left: 2 })
    );
    assert_eq!(starter.poll_notice(), None);
    assert!(Notice::WrongCode { tries_left: 2 }
        .to_string()
        .starts_with("the other console entered a wrong pairing code (2 tries left)"));
    assert_eq!(starter.outcome(), None, "the code stays valid");
    assert_eq!(starter.tries_left(), 2);

    // The right code still pairs afterwards.
    let mut joiner = Joiner::new(T0, code(CODE), facts(None, 0), [5; 32]);
    run(&mut starter, &mut joiner, T0, perfect);
    assert_eq!(paired(joiner.outcome()).key, paired(starter.outcome()).key);
}

#[test]
fn three_wrong_codes_lock_and_start_is_refused_for_the_lockout() {
    let mut gate = StartGate::new();
    let mut starter = gate.start(T0, code(CODE), facts(None, 0), [1; 32]).unwrap();
    let mut now = T0;
    let mut outcomes = Vec::new();
    for seed in 10..13u8 {
        let mut joiner = Joiner::new(now, code(1111), facts(None, 0), [seed; 32]);
        now = run(&mut starter, &mut joiner, now, perfect);
        gate.observe(&starter);
        outcomes.push(joiner.outcome().cloned().unwrap());
    }
    assert_eq!(
        outcomes,
        [
            Outcome::WrongCode {
                tries_left: Some(2)
            },
            Outcome::WrongCode {
                tries_left: Some(1)
            },
            Outcome::Locked,
        ]
    );
    assert_eq!(starter.outcome(), Some(&Outcome::Locked));
    assert!(Outcome::Locked.to_string().contains("burned"));
    let locked_at = starter.locked_at().unwrap();

    // The code is burned: even the right one gets LOCKED.
    let mut joiner = Joiner::new(now, code(CODE), facts(None, 0), [20; 32]);
    run(&mut starter, &mut joiner, now, perfect);
    assert_eq!(joiner.outcome(), Some(&Outcome::Locked));

    // A new `pair start` is refused for the lockout, then allowed.
    let refused = gate
        .start(
            locked_at + Duration::from_millis(500),
            code(4),
            facts(None, 0),
            [0; 32],
        )
        .unwrap_err();
    assert_eq!(refused.retry_in, LOCKOUT - Duration::from_millis(500));
    assert_eq!(
        refused.to_string(),
        "pairing is locked after 3 wrong codes: run `pair start` again in 60 s"
    );
    assert!(gate
        .start(locked_at + LOCKOUT, code(4), facts(None, 0), [0; 32])
        .is_ok());
}

#[test]
fn the_code_expires_after_five_minutes() {
    let mut starter = Starter::new(T0, code(CODE), facts(None, 0), [1; 32]);
    assert_eq!(starter.poll_timeout(), Some(T0 + CODE_LIFETIME));
    starter.handle_timeout(T0 + CODE_LIFETIME - Duration::from_nanos(1));
    assert_eq!(starter.outcome(), None);
    let expiry = starter.poll_timeout().unwrap();
    starter.handle_timeout(expiry);
    assert_eq!(starter.outcome(), Some(&Outcome::Expired));

    let mut joiner = Joiner::new(expiry, code(CODE), facts(None, 0), [2; 32]);
    run(&mut starter, &mut joiner, expiry, perfect);
    assert_eq!(joiner.outcome(), Some(&Outcome::Expired));
    assert!(joiner
        .outcome()
        .unwrap()
        .to_string()
        .contains("run `pair start` again"));
}

#[test]
fn an_exchange_waiting_at_expiry_ends_expired() {
    let mut starter = Starter::new(T0, code(CODE), facts(None, 0), [1; 32]);
    let late = T0 + CODE_LIFETIME - Duration::from_secs(1);
    let mut joiner = Joiner::new(late, code(CODE), facts(None, 0), [2; 32]);
    // Every CONFIRM is lost: the exchange still waits when the code expires, and the RESULT
    // the starter sends then ends the joiner too.
    run(&mut starter, &mut joiner, late, |_, toward, d| {
        if toward == Toward::Starter && d[5] == 3 {
            Deliver::Drop
        } else {
            Deliver::Yes
        }
    });
    assert_eq!(joiner.outcome(), Some(&Outcome::Expired));
    assert_eq!(starter.outcome(), Some(&Outcome::Expired));
}

#[test]
fn losing_every_other_datagram_still_pairs() {
    for first_lost in [0, 1] {
        let mut starter = Starter::new(T0, code(CODE), facts(None, 0), [1; 32]);
        let mut joiner = Joiner::new(T0, code(CODE), facts(None, 0), [2; 32]);
        // Every other datagram in each direction. (Every other one on the cable as a whole
        // would be no loss model but a filter: each answer would fall on a lost slot.)
        let mut sent = [0usize; 2];
        let end = run(&mut starter, &mut joiner, T0, |_, toward, _| {
            let count = &mut sent[usize::from(toward == Toward::Joiner)];
            *count += 1;
            if *count % 2 == first_lost {
                Deliver::Drop
            } else {
                Deliver::Yes
            }
        });
        assert_eq!(
            paired(joiner.outcome()).key,
            paired(starter.outcome()).key,
            "first lost {first_lost}"
        );
        assert!(end - T0 < Duration::from_secs(2));
        assert_eq!(starter.tries_left(), MAX_TRIES - 1, "one exchange, one try");
    }
}

#[test]
fn duplicated_and_reordered_datagrams_are_harmless() {
    // Every datagram twice, the copy arriving after the next one in the same direction.
    let mut starter = Starter::new(T0, code(CODE), facts(None, 0), [1; 32]);
    let mut joiner = Joiner::new(T0, code(CODE), facts(None, 0), [2; 32]);
    run(&mut starter, &mut joiner, T0, |_, _, _| Deliver::Twice);
    assert_eq!(paired(joiner.outcome()).key, paired(starter.outcome()).key);
    assert_eq!(starter.tries_left(), MAX_TRIES - 1);
    assert_eq!(starter.refusals().total(), 0);
    assert_eq!(joiner.refusals().total(), 0);

    // By hand: a HELLO repeated after the CONFIRM gets the cached RESULT, byte for byte; the
    // same REPLY repeated gets nothing new; old datagrams after the end are harmless.
    let mut starter = Starter::new(T0, code(CODE), facts(None, 0), [1; 32]);
    let mut joiner = Joiner::new(T0, code(CODE), facts(None, 0), [2; 32]);
    let hello = joiner.poll_transmit().unwrap();
    starter.handle_datagram(T0, &hello).unwrap();
    starter.handle_datagram(T0, &hello).unwrap();
    let reply = starter.poll_transmit().unwrap();
    assert_eq!(starter.poll_transmit().as_deref(), Some(&reply[..]));
    joiner.handle_datagram(T0, &reply).unwrap();
    joiner.handle_datagram(T0, &reply).unwrap();
    let confirm = joiner.poll_transmit().unwrap();
    assert_eq!(joiner.poll_transmit(), None);
    starter.handle_datagram(T0, &confirm).unwrap();
    let result = starter.poll_transmit().unwrap();
    starter.handle_datagram(T0, &hello).unwrap();
    assert_eq!(starter.poll_transmit().as_deref(), Some(&result[..]));
    starter.handle_datagram(T0, &confirm).unwrap();
    assert_eq!(starter.poll_transmit().as_deref(), Some(&result[..]));
    joiner.handle_datagram(T0, &result).unwrap();
    joiner.handle_datagram(T0, &result).unwrap();
    joiner.handle_datagram(T0, &reply).unwrap();
    assert!(joiner.outcome().unwrap().paired().is_some());
    assert_eq!(starter.tries_left(), MAX_TRIES - 1);
}

/// Everything observable that a refusal must leave alone.
fn starter_state(starter: &Starter) -> (u8, Option<Outcome>, Option<Instant>, bool) {
    (
        starter.tries_left(),
        starter.outcome().cloned(),
        starter.poll_timeout(),
        starter.is_finished(),
    )
}

fn joiner_state(joiner: &Joiner) -> (Option<Outcome>, Option<Instant>) {
    (joiner.outcome().cloned(), joiner.poll_timeout())
}

/// A HELLO whose SPAKE2 point does not decompress (found by trying: about half of all
/// 32-byte strings are not points).
fn hello_with_bad_point(good: &[u8]) -> Vec<u8> {
    for candidate in 2u8..=255 {
        let mut hello = good.to_vec();
        hello[41..73].fill(candidate);
        let mut probe = Starter::new(T0, code(CODE), facts(None, 0), [1; 32]);
        if probe.handle_datagram(T0, &hello) == Err(Refusal::BadSpake) {
            return hello;
        }
    }
    panic!("no invalid point found");
}

#[test]
fn forged_truncated_and_oversized_datagrams_are_refused_by_reason() {
    let mut starter = Starter::new(T0, code(CODE), facts(None, 0), [1; 32]);
    let mut joiner = Joiner::new(T0, code(CODE), facts(None, 0), [2; 32]);
    let hello = joiner.poll_transmit().unwrap();

    let mut oversized = hello.clone();
    oversized.resize(MAX_DATAGRAM_LEN + 1, 0);
    let mut other_magic = hello.clone();
    other_magic[..4].copy_from_slice(b"TDHB");
    let mut wrong_side = hello.clone();
    wrong_side[40] = b'B';
    let garbage = [0xa5u8; 1500];
    let before = starter_state(&starter);
    let cases: [(&[u8], &str); 7] = [
        (&hello[..hello.len() - 1], "bad length"),
        (&hello[..3], "bad length"),
        (&oversized, "bad length"),
        (&other_magic, "bad magic"),
        (&wrong_side, "bad SPAKE2 message"),
        (&garbage, "bad length"),
        (&hello_with_bad_point(&hello), "bad SPAKE2 point"),
    ];
    for (datagram, reason) in cases {
        let refusal = starter.handle_datagram(T0, datagram).unwrap_err();
        assert_eq!(refusal.reason(), reason, "{refusal}");
        assert_eq!(starter_state(&starter), before);
        assert_eq!(starter.poll_transmit(), None);
    }
    assert_eq!(starter.refusals().get("bad length"), 4);
    assert_eq!(starter.refusals().total(), 7);
    // The invalid point cost a SPAKE2 computation: the next one waits SPAKE_MIN_INTERVAL.
    assert_eq!(
        starter.handle_datagram(T0, &hello),
        Err(Refusal::RateLimited)
    );
    assert_eq!(starter_state(&starter), before);
    assert_eq!(starter.poll_transmit(), None);

    // Messages for the other side, and a CONFIRM of no exchange.
    let forged_reply = {
        let mut probe = Starter::new(T0, code(CODE), facts(None, 0), [9; 32]);
        probe.handle_datagram(T0, &hello).unwrap();
        probe.poll_transmit().unwrap()
    };
    assert!(matches!(
        starter.handle_datagram(T0, &forged_reply),
        Err(Refusal::WrongDirection { .. })
    ));
    let mut stray_confirm = [0u8; 72];
    stray_confirm[..8].copy_from_slice(b"TDPR\x01\x03\x00\x00");
    stray_confirm[8..40].fill(1);
    assert!(matches!(
        starter.handle_datagram(T0, &stray_confirm),
        Err(Refusal::UnknownExchange { .. })
    ));
    assert_eq!(starter_state(&starter), before);

    // The joiner: a REPLY for another HELLO's nonce, a HELLO, a forged "paired" RESULT.
    let joiner_before = joiner_state(&joiner);
    assert!(matches!(
        joiner.handle_datagram(T0, &hello),
        Err(Refusal::WrongDirection { .. })
    ));
    let mut foreign = Joiner::new(T0, code(CODE), facts(None, 0), [8; 32]);
    let foreign_hello = foreign.poll_transmit().unwrap();
    let mut probe = Starter::new(T0, code(CODE), facts(None, 0), [9; 32]);
    probe.handle_datagram(T0, &foreign_hello).unwrap();
    let foreign_reply = probe.poll_transmit().unwrap();
    assert!(matches!(
        joiner.handle_datagram(T0, &foreign_reply),
        Err(Refusal::UnknownExchange { .. })
    ));
    assert_eq!(joiner_state(&joiner), joiner_before);

    // The real exchange, with a forged "paired" RESULT before the real one.
    starter
        .handle_datagram(T0 + SPAKE_MIN_INTERVAL, &hello)
        .unwrap();
    let reply = starter.poll_transmit().unwrap();
    joiner.handle_datagram(T0, &reply).unwrap();
    let confirm = joiner.poll_transmit().unwrap();
    let Repr::Reply(parsed) = Repr::decode(&reply).unwrap() else {
        unreachable!()
    };
    let forged = emit(&Repr::Result(ResultMessage {
        joiner_nonce: parsed.joiner_nonce,
        starter_nonce: parsed.starter_nonce,
        code: ResultCode::Paired { tag: [7; 32] },
        versions: VERSIONS,
    }));
    let joiner_before = joiner_state(&joiner);
    assert_eq!(joiner.handle_datagram(T0, &forged), Err(Refusal::BadTag));
    assert_eq!(joiner_state(&joiner), joiner_before);
    // A conflicting REPLY for the same HELLO (another starter nonce).
    let mut other = Starter::new(T0, code(CODE), facts(None, 0), [6; 32]);
    other.handle_datagram(T0, &hello).unwrap();
    assert!(matches!(
        joiner.handle_datagram(T0, &other.poll_transmit().unwrap()),
        Err(Refusal::Conflicting { .. })
    ));
    // A HELLO reusing the nonce with other bytes.
    let mut twisted = hello.clone();
    twisted[39] ^= 1;
    assert!(matches!(
        starter.handle_datagram(T0, &twisted),
        Err(Refusal::Conflicting { .. })
    ));
    starter.handle_datagram(T0, &confirm).unwrap();
    joiner
        .handle_datagram(T0, &starter.poll_transmit().unwrap())
        .unwrap();
    assert_eq!(paired(joiner.outcome()).key, paired(starter.outcome()).key);
    // After the end, something new is late.
    assert_eq!(joiner.handle_datagram(T0, &forged), Err(Refusal::Finished));
    assert_eq!(joiner.refusals().get("exchange finished"), 1);
    assert_eq!(
        Refusal::Malformed(PairingWireError::BadMagic).reason(),
        "bad magic"
    );
}

#[test]
fn role_rule() {
    use Role::{A, B};
    assert_eq!(assign_roles(None, None), (A, B));
    assert_eq!(assign_roles(Some(B), None), (B, A));
    assert_eq!(assign_roles(Some(A), None), (A, B));
    assert_eq!(assign_roles(None, Some(A)), (B, A));
    assert_eq!(assign_roles(None, Some(B)), (A, B));
    // Both have roles: the starter's wins.
    assert_eq!(assign_roles(Some(A), Some(A)), (A, B));
    assert_eq!(assign_roles(Some(B), Some(A)), (B, A));

    // Replacement: the survivor (b) starts, the factory-fresh box joins and becomes a.
    let (starter, joiner) = pair(facts(Some(B), 40), facts(None, 0));
    let j = paired(joiner.outcome());
    assert_eq!((j.my_role, j.peer_role), (A, B));
    assert_eq!(j.peer_facts.role, Some(B));
    assert_eq!(j.peer_facts.generation, 40);
    assert_eq!(paired(starter.outcome()).my_role, B);

    // Replacement the other way round: the fresh box starts, the survivor (a) joins.
    let (starter, joiner) = pair(facts(None, 0), facts(Some(A), 40));
    assert_eq!(paired(starter.outcome()).my_role, B);
    assert_eq!(paired(joiner.outcome()).my_role, A);
}

#[test]
fn version_skew_is_refused_naming_both_versions() {
    let newer = Versions {
        blob: 4,
        ..VERSIONS
    };
    let mut starter = Starter::new(T0, code(CODE), facts(None, 0), [1; 32]);
    let mut joiner = Joiner::new(
        T0,
        code(CODE),
        BoxFacts {
            versions: newer,
            role: None,
            generation: 0,
        },
        [2; 32],
    );
    run(&mut starter, &mut joiner, T0, perfect);
    let outcome = joiner.outcome().unwrap();
    assert_eq!(
        outcome,
        &Outcome::VersionSkew {
            ours: newer,
            theirs: VERSIONS
        }
    );
    assert_eq!(
        outcome.to_string(),
        "firmware versions differ (this box: pairing 1, channel 1, blob 4; partner: pairing 1, channel 1, blob 3): install the same firmware on both boxes, then pair again"
    );
    let notice = starter.poll_notice().unwrap();
    assert_eq!(
        notice,
        Notice::VersionSkew {
            ours: VERSIONS,
            theirs: newer
        }
    );
    assert!(notice.to_string().contains("blob 3") && notice.to_string().contains("blob 4"));
    assert_eq!(starter.tries_left(), MAX_TRIES, "no try used");
    assert_eq!(starter.outcome(), None);
}

#[test]
fn a_joiner_alone_retransmits_then_reports_no_answer() {
    let mut joiner = Joiner::new(T0, code(CODE), facts(None, 0), [2; 32]);
    let hello = joiner.poll_transmit().unwrap();
    let mut sent = 1;
    let mut now = T0;
    while let Some(next) = joiner.poll_timeout() {
        assert!(next > now);
        now = next;
        joiner.handle_timeout(now);
        while let Some(datagram) = joiner.poll_transmit() {
            assert_eq!(datagram, hello);
            sent += 1;
        }
    }
    assert_eq!(now, T0 + ANSWER_TIMEOUT);
    // One at the start, then every 250 ms until the deadline (which ends it instead).
    assert_eq!(sent, 60);
    assert_eq!(joiner.outcome(), Some(&Outcome::NoAnswer));
    assert_eq!(
        joiner.outcome().unwrap().to_string(),
        "no answer from the partner: is the peer cable plugged in and did the other console run `pair start`?"
    );
}

#[test]
fn a_second_joiner_is_busy_until_the_first_exchange_is_abandoned() {
    let mut starter = Starter::new(T0, code(CODE), facts(None, 0), [1; 32]);
    // The first joiner sends its HELLO and vanishes.
    let mut first = Joiner::new(T0, code(CODE), facts(None, 0), [2; 32]);
    starter
        .handle_datagram(T0, &first.poll_transmit().unwrap())
        .unwrap();
    let _reply = starter.poll_transmit().unwrap();
    // The second one hears BUSY, keeps trying, and pairs once the first is abandoned.
    let mut second = Joiner::new(T0, code(CODE), facts(None, 0), [3; 32]);
    let hello = second.poll_transmit().unwrap();
    starter.handle_datagram(T0, &hello).unwrap();
    let busy = starter.poll_transmit().unwrap();
    assert!(matches!(
        Repr::decode(&busy),
        Ok(Repr::Result(ResultMessage {
            code: ResultCode::Busy,
            ..
        }))
    ));
    second.handle_datagram(T0, &busy).unwrap();
    assert_eq!(second.outcome(), None);
    run(&mut starter, &mut second, T0, perfect);
    assert_eq!(
        starter.poll_notice(),
        Some(Notice::Abandoned { tries_left: 2 })
    );
    assert_eq!(paired(second.outcome()).key, paired(starter.outcome()).key);
    assert_eq!(starter.tries_left(), 1);

    // A joiner that hears only BUSY until its deadline says so.
    let mut starter = Starter::new(T0, code(CODE), facts(None, 0), [1; 32]);
    let mut first = Joiner::new(T0, code(CODE), facts(None, 0), [2; 32]);
    let first_hello = first.poll_transmit().unwrap();
    let mut second = Joiner::new(T0, code(CODE), facts(None, 0), [3; 32]);
    let mut now = T0;
    while second.outcome().is_none() {
        // The first joiner's HELLO keeps its exchange alive (up to ATTEMPT_MAX).
        let _ = starter.handle_datagram(now, &first_hello);
        while let Some(d) = second.poll_transmit() {
            let _ = starter.handle_datagram(now, &d);
        }
        while let Some(d) = starter.poll_transmit() {
            let _ = second.handle_datagram(now, &d);
        }
        now = second
            .poll_timeout()
            .map_or(now, |t| t.min(now + Duration::from_secs(1)));
        second.handle_timeout(now);
        starter.handle_timeout(now);
    }
    assert_eq!(second.outcome(), Some(&Outcome::Busy));
}

#[test]
fn a_lost_result_leaves_the_joiner_unsure_and_says_so() {
    let mut starter = Starter::new(T0, code(CODE), facts(None, 0), [1; 32]);
    let mut joiner = Joiner::new(T0, code(CODE), facts(None, 0), [2; 32]);
    run(&mut starter, &mut joiner, T0, |_, toward, d| {
        if toward == Toward::Joiner && d[5] == 4 {
            Deliver::Drop
        } else {
            Deliver::Yes
        }
    });
    assert!(starter.outcome().unwrap().paired().is_some());
    assert_eq!(joiner.outcome(), Some(&Outcome::NoResult));
    assert!(Outcome::NoResult.to_string().contains("pair status"));

    // With a wrong code the joiner knows that much even without the RESULT.
    let mut starter = Starter::new(T0, code(CODE), facts(None, 0), [1; 32]);
    let mut joiner = Joiner::new(T0, code(1), facts(None, 0), [2; 32]);
    run(&mut starter, &mut joiner, T0, |_, toward, d| {
        if toward == Toward::Joiner && d[5] == 4 {
            Deliver::Drop
        } else {
            Deliver::Yes
        }
    });
    assert_eq!(
        joiner.outcome(),
        Some(&Outcome::WrongCode { tries_left: None })
    );
    assert_eq!(starter.tries_left(), 2);
}

#[test]
fn arbitrary_bytes_never_panic_or_pair() {
    // A cheap in-crate version of the fuzz target: deterministic pseudo-random datagrams,
    // mutations of real ones included.
    let mut starter = Starter::new(T0, code(CODE), facts(None, 0), [1; 32]);
    let mut joiner = Joiner::new(T0, code(CODE), facts(None, 0), [2; 32]);
    let hello = joiner.poll_transmit().unwrap();
    let mut rng = crate::crypto::SeedRng::new([3; 32]);
    let mut now = T0;
    for round in 0..3000u32 {
        let mut datagram = hello.clone();
        let mut pick = [0u8; 4];
        rng.fill(&mut pick);
        let len = usize::from(pick[0]) % (MAX_DATAGRAM_LEN + 4);
        datagram.resize(len, pick[1]);
        let at = usize::from(pick[2]) % len.max(1);
        if let Some(byte) = datagram.get_mut(at) {
            *byte ^= pick[3] | 1;
        }
        if round % 7 == 0 {
            datagram[5.min(len.saturating_sub(1))..]
                .iter_mut()
                .for_each(|b| *b = pick[3]);
        }
        let _ = starter.handle_datagram(now, &datagram);
        let _ = joiner.handle_datagram(now, &datagram);
        while starter.poll_transmit().is_some() {}
        while joiner.poll_transmit().is_some() {}
        now = now + Duration::from_millis(1);
        starter.handle_timeout(now);
        joiner.handle_timeout(now);
    }
    assert!(starter.outcome().is_none_or(|o| o.paired().is_none()));
    assert!(joiner.outcome().is_none_or(|o| o.paired().is_none()));
}

#[test]
fn exchange_time() {
    // `cargo test --release -p tandem-pair exchange_time -- --nocapture` prints the figure.
    let rounds = 20u32;
    let start = std::time::Instant::now();
    for i in 0..rounds {
        let seed = i.to_be_bytes()[3];
        let mut starter = Starter::new(T0, code(CODE), facts(None, 0), [seed; 32]);
        let mut joiner = Joiner::new(T0, code(CODE), facts(None, 0), [seed ^ 0xff; 32]);
        run(&mut starter, &mut joiner, T0, perfect);
        assert!(joiner.outcome().unwrap().paired().is_some());
    }
    let each = start.elapsed() / rounds;
    std::println!("bench: pairing exchange (both sides, CPU only) {each:?} per exchange");
}

#[test]
fn a_flood_of_invalid_points_costs_one_computation_per_interval() {
    let mut starter = Starter::new(T0, code(CODE), facts(None, 0), [1; 32]);
    let mut joiner = Joiner::new(T0, code(CODE), facts(None, 0), [2; 32]);
    let hello = joiner.poll_transmit().unwrap();
    let bad = hello_with_bad_point(&hello);
    let mut now = T0;
    for _ in 0..100 {
        let _ = starter.handle_datagram(now, &bad);
        now = now + Duration::from_millis(10);
    }
    // 1 s of flood: one computation per SPAKE_MIN_INTERVAL.
    assert_eq!(starter.refusals().get("bad SPAKE2 point"), 5);
    assert_eq!(starter.refusals().get("rate limited"), 95);
    assert_eq!(starter.tries_left(), MAX_TRIES);
    // The genuine joiner still pairs (its repeated HELLO gets through).
    run(&mut starter, &mut joiner, now, perfect);
    assert_eq!(paired(joiner.outcome()).key, paired(starter.outcome()).key);
}
