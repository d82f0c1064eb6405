#![no_main]
// Health-check reply parsers see whatever a (possibly broken or hostile) real server sends.
// The streamed HTTP reply (MD5 digest checks) must give the same verdict however the reply is
// cut into reads.
use tandem_lvs::health::reply::{
    expect_verdict, http_status, http_verdict, smtp_verdict, HttpReply, Progress,
};
use tandem_lvs::health::{BodyCheck, HttpProbe};

fn streamed(probe: &HttpProbe, data: &[u8], size: usize) -> Progress {
    let mut reply = HttpReply::default();
    for chunk in data.chunks(size.max(1)) {
        let p = reply.feed(probe, chunk, false);
        if p != Progress::NeedMore {
            return p;
        }
    }
    reply.feed(probe, b"", true)
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let probe = HttpProbe {
        path: "/".into(),
        host: None,
        status: vec![(200, 299), (301, 302)],
        body: Some(BodyCheck::Contains(b"OK".to_vec())),
        tls: None,
        more_urls: Vec::new(),
    };
    let _ = http_status(data);
    for eof in [false, true] {
        let _ = http_verdict(&probe, data, eof);
        let _ = smtp_verdict(data, eof);
        let _ = expect_verdict(b"+PONG", data, eof);
    }
    let md5 = HttpProbe {
        body: Some(BodyCheck::Md5 {
            digest: [0x42; 16],
            max_body: 64,
        }),
        ..probe.clone()
    };
    let size = usize::from(data.first().copied().unwrap_or(1));
    assert_eq!(streamed(&md5, data, size), streamed(&md5, data, data.len()));
    let _ = streamed(&probe, data, size);
});
