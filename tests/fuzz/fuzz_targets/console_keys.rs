//! The serial console is untrusted input: line noise, a console server's garbage, a hostile
//! operator. The key decoder, the login gate and the console UI's app state machine take any
//! bytes (split across reads anywhere, with time passing) without panicking, the decoder's
//! buffer stays bounded, and a shut gate never lets keys through to the app.
#![no_main]

use tandem_tui::app::App;
use tandem_tui::keys::KeyDecoder;
use tandem_tui::login::{Gate, GateRequest};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut decoder = KeyDecoder::new(KeyDecoder::DEFAULT_ESC_TIMEOUT_MS);
    let mut gate = Gate::new(true, 60_000, 0);
    let mut app = App::new(0);
    let mut keys = Vec::new();
    let mut now = 0u64;
    // The first byte of each chunk sets its length and the time that passes before it.
    let mut rest = data;
    while let Some((&head, tail)) = rest.split_first() {
        let take = usize::from(head & 0x1f).min(tail.len());
        let (chunk, after) = tail.split_at(take);
        rest = after;
        now += u64::from(head >> 5) * 40;
        if decoder.poll_timeout().is_some_and(|at| at <= now) {
            decoder.handle_timeout(now, &mut keys);
        }
        decoder.feed(chunk, now, &mut keys);
        assert!(decoder.pending_len() <= KeyDecoder::MAX_SEQUENCE_LEN);
        for key in keys.drain(..) {
            if gate.is_open() {
                app.handle_key(key);
            } else {
                gate.handle_key(&key, now);
            }
        }
        for request in gate.take_requests() {
            // No password is right: every check fails, every store is refused.
            match request {
                GateRequest::Check(_) => gate.checked(false, now),
                GateRequest::Store(_) => gate.stored(Some("refused".into()), now),
            }
        }
        assert!(!gate.is_open(), "a wrong password opened the gate");
        for request in app.take_requests() {
            app.answer(request.id, "browse: x\tvalue\t1\nbrowse: end\n");
        }
        gate.tick(now);
        app.tick(now);
    }
    // The app itself, open, on the same bytes (what `tandem tui` feeds it with no gate).
    let mut decoder = KeyDecoder::default();
    decoder.feed(data, 0, &mut keys);
    decoder.handle_timeout(1_000, &mut keys);
    let mut app = App::new(0);
    for (n, key) in keys.drain(..).enumerate() {
        app.handle_key(key);
        if n % 5 == 0 {
            for request in app.take_requests() {
                app.answer(request.id, "set: refused\n");
            }
        }
    }
});
