//! Pairing datagrams arrive from the peer cable before the boxes share any key, so anyone on
//! the cable can send anything. The codec must refuse any bytes without panicking and re-emit
//! what it accepts to the same bytes; a `Starter` and a `Joiner` in the middle of a genuine
//! exchange, fed arbitrary datagrams (and the genuine ones, interleaved) with timer ticks
//! between, must never panic, and a joiner that ends paired must hold the starter's key.
#![no_main]

use core::time::Duration;

use tandem_pair::{BoxFacts, Instant, Joiner, PairingCode, Starter, Versions};
use tandem_wire::pairing::{Repr, MAX_DATAGRAM_LEN};

const FACTS: BoxFacts = BoxFacts {
    versions: Versions {
        pairing: tandem_pair::PROTOCOL_VERSION,
        channel: 1,
        blob: 3,
    },
    role: None,
    generation: 0,
};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The codec: accepted bytes re-emit identically and decode to the same value.
    if let Ok(repr) = Repr::decode(data) {
        let mut out = [0u8; MAX_DATAGRAM_LEN];
        let n = repr.emit(&mut out).expect("accepted re-emits");
        assert_eq!(&out[..n], data);
        assert_eq!(Repr::decode(&out[..n]), Ok(repr));
    }

    // The state machines, mid-exchange: HELLO handled by the starter, REPLY by the joiner.
    let Some(code) = PairingCode::new(12_345_678) else {
        return;
    };
    let mut now = Instant::from_secs(1);
    let mut starter = Starter::new(now, code, FACTS, [1; 32]);
    let mut joiner = Joiner::new(now, code, FACTS, [2; 32]);
    let mut to_starter: Vec<Vec<u8>> = joiner.poll_transmit().into_iter().collect();
    let mut to_joiner: Vec<Vec<u8>> = Vec::new();
    for d in to_starter.drain(..) {
        let _ = starter.handle_datagram(now, &d);
    }
    while let Some(d) = starter.poll_transmit() {
        let _ = joiner.handle_datagram(now, &d);
    }

    // The input: [selector, length (2 bytes), datagram]..., selector bit 0 the target, bit 1
    // "deliver the genuine datagrams in flight too", bits 2.. a time step.
    let mut rest = data;
    while rest.len() >= 3 {
        let selector = rest[0];
        let len = usize::from(u16::from_be_bytes([rest[1], rest[2]])) % (MAX_DATAGRAM_LEN + 8);
        rest = &rest[3..];
        let (datagram, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        if selector & 1 == 0 {
            let _ = starter.handle_datagram(now, datagram);
        } else {
            let _ = joiner.handle_datagram(now, datagram);
        }
        while let Some(d) = joiner.poll_transmit() {
            to_starter.push(d);
        }
        while let Some(d) = starter.poll_transmit() {
            to_joiner.push(d);
        }
        if selector & 2 != 0 {
            for d in to_starter.drain(..) {
                let _ = starter.handle_datagram(now, &d);
            }
            while let Some(d) = starter.poll_transmit() {
                to_joiner.push(d);
            }
            for d in to_joiner.drain(..) {
                let _ = joiner.handle_datagram(now, &d);
            }
        }
        to_starter.truncate(64);
        to_joiner.truncate(64);
        now = now + Duration::from_millis(u64::from(selector >> 2) * 50);
        starter.handle_timeout(now);
        joiner.handle_timeout(now);
    }
    if let Some(paired) = joiner.outcome().and_then(|o| o.paired()) {
        let ours = starter.outcome().and_then(|o| o.paired());
        assert_eq!(
            ours.map(|p| p.key),
            Some(paired.key),
            "a joiner paired alone"
        );
    }
});
