#![no_main]
// Health-check reply parsers see whatever a (possibly broken or hostile) real server sends.
// The streamed HTTP reply (MD5 digest checks) must give the same verdict however the reply is
// cut into reads. The datagram verdicts (ICMP echo, DNS, UDP) take any datagram, and pass only
// what is the answer; a DNS query is built for any name or refused.
use tandem_lvs::health::icmp::{echo_verdict, EchoRequest, Framing};
use tandem_lvs::health::reply::{
    expect_verdict, http_status, http_verdict, smtp_verdict, udp_verdict, HttpReply, Progress,
};
use tandem_lvs::health::{dns, BodyCheck, HttpProbe, UdpProbe};

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

    datagrams(data);
});

fn datagrams(data: &[u8]) {
    let first = data.first().copied().unwrap_or(0);
    // ICMP echo: whatever comes, only the reply to this request passes.
    let nonce = u64::from_be_bytes(std::array::from_fn(|i| data.get(i).copied().unwrap_or(0)));
    for framing in [Framing::Datagram, Framing::RawV4, Framing::RawV6] {
        let request = EchoRequest::new(framing == Framing::RawV6, nonce);
        if echo_verdict(&request, framing, data) == Progress::Pass {
            assert!(data.ends_with(&request.payload));
        }
    }
    // DNS: a pass is a response with the ID and NOERROR (answer records or not, as keepalived).
    let id = u16::from_be_bytes([first, data.get(1).copied().unwrap_or(0)]);
    if dns::reply_verdict(id, data) == Progress::Pass {
        assert!(data.len() >= 12 && data[2] & 0x80 != 0 && data[3] & 0x0f == 0);
        assert_eq!(u16::from_be_bytes([data[0], data[1]]), id);
    }
    let _ = dns::reply_verdict(!id, data);
    if let Ok(query) = dns::query(id, &String::from_utf8_lossy(data), u16::from(first)) {
        assert!(query.len() >= 17 && query.starts_with(&id.to_be_bytes()));
        assert_eq!(
            dns::reply_verdict(id, &query),
            Progress::NeedMore,
            "a query is no answer"
        );
    }
    // UDP: with a reply required, a pass agrees with the expected bytes over the shorter of
    // the two (keepalived's comparison).
    let expect = data
        .get(..usize::from(first % 4))
        .unwrap_or_default()
        .to_vec();
    let probe = UdpProbe {
        payload: Vec::new(),
        require_reply: true,
        expect,
    };
    if udp_verdict(&probe, Some(data)).is_ok() {
        let compared = data.len().min(probe.expect.len());
        assert_eq!(data[..compared], probe.expect[..compared]);
    }
    if let Err(reason) = udp_verdict(&probe, Some(data)) {
        let _ = reason.to_string();
    }
}
