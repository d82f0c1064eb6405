#![no_main]
// Health-check reply parsers see whatever a (possibly broken or hostile) real server sends.
use tandem_lvs::health::reply::{expect_verdict, http_status, http_verdict, smtp_verdict};
use tandem_lvs::health::HttpProbe;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let probe = HttpProbe {
        path: "/".into(),
        host: None,
        status: vec![(200, 299), (301, 302)],
        body_contains: Some(b"OK".to_vec()),
    };
    let _ = http_status(data);
    for eof in [false, true] {
        let _ = http_verdict(&probe, data, eof);
        let _ = smtp_verdict(data, eof);
        let _ = expect_verdict(b"+PONG", data, eof);
    }
});
