//! Incremental verdicts on what a real server sent back. Pure functions over the bytes received
//! so far: they say pass, fail (with the reason) or need more. Garbage never panics (fuzz
//! target `health_reply`), and the caller caps how much it buffers (`MAX_REPLY`). [`HttpReply`]
//! takes an HTTP reply chunk by chunk: the head is buffered (up to `MAX_REPLY`), a body whose MD5
//! is checked is streamed into the hasher ([`super::digest`]). [`udp_verdict`] judges a UDP
//! check's reply (or silence); the ICMP echo and DNS verdicts live in [`super::icmp`] and
//! [`super::dns`].

use std::fmt;

use super::check::{BodyCheck, HttpExpect, UdpProbe};
use super::digest::{BodyDigest, Hex};
use super::dns::rcode_name;

/// The most reply bytes a check buffers before giving up.
pub const MAX_REPLY: usize = 64 * 1024;

/// Verdict so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The reply satisfies the check.
    Pass,
    /// The reply fails the check.
    Fail(FailReason),
    /// Not decided yet; read more (at end of stream this becomes a failure).
    NeedMore,
}

/// Why a check failed; shown to the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailReason {
    /// TCP connect failed (refused, unreachable).
    #[error("connect failed: {0}")]
    Connect(String),
    /// The attempt took longer than its timeout.
    #[error("timed out")]
    Timeout,
    /// Reading or writing failed.
    #[error("I/O error: {0}")]
    Io(String),
    /// The HTTP status line is malformed.
    #[error("malformed HTTP status line")]
    BadStatusLine,
    /// The HTTP status is not in an accepted range.
    #[error("HTTP status {0} not accepted")]
    Status(u16),
    /// The body does not contain the expected bytes.
    #[error("expected bytes not found in reply")]
    NoMatch,
    /// The SMTP greeting is not 220.
    #[error("SMTP greeting {0:?} is not 220")]
    SmtpGreeting(String),
    /// The server closed before a verdict.
    #[error("connection closed before a complete reply")]
    Closed,
    /// The reply exceeded the buffer limit.
    #[error("reply longer than {MAX_REPLY} bytes without a verdict")]
    TooLong,
    /// The TLS handshake failed (an alert, a protocol error, a peer that does not speak TLS).
    #[error("TLS handshake failed: {0}")]
    TlsHandshake(String),
    /// The server's certificate is not trusted (only when trust anchors are configured).
    #[error("TLS certificate not trusted: {0}")]
    Certificate(String),
    /// The body's MD5 is not the expected one.
    #[error("body MD5 {got} does not match the expected {expected}")]
    DigestMismatch {
        /// The configured digest.
        expected: Hex,
        /// The body's.
        got: Hex,
    },
    /// The body is longer than an MD5 check reads.
    #[error("body longer than {0} bytes, the most an MD5 digest check reads; digest a smaller page or use a `contains` check")]
    BodyTooLong(u64),
    /// One URL of a check with several URLs failed (the check is down at the first that fails).
    #[error("GET {path}: {reason}")]
    Url {
        /// The URL's path.
        path: String,
        /// Why it failed.
        reason: Box<FailReason>,
    },
    /// One check of a real server with several failed (the server is down at the first that
    /// fails).
    #[error("{what}: {reason}")]
    Check {
        /// The check (`tcp 10.0.1.1:5432`).
        what: String,
        /// Why it failed.
        reason: Box<FailReason>,
    },
    /// An ICMP error came back for what the check sent (port, host or network unreachable),
    /// seen as the socket's error.
    #[error("{0}")]
    Unreachable(String),
    /// No reply within the check's timeout where one is needed (`what` names the reply).
    #[error("no {0} within the timeout")]
    NoReply(&'static str),
    /// A UDP reply that does not start with the expected bytes.
    #[error("UDP reply {got} does not start with the expected {expected}")]
    UdpReply {
        /// What the check expects the reply to start with.
        expected: Shown,
        /// The start of what came.
        got: Shown,
    },
    /// The DNS server answered with an error RCODE.
    #[error("DNS reply {} (RCODE {})", rcode_name(*.0), .0)]
    DnsRcode(u8),
    /// The DNS server answered NOERROR without an answer record.
    #[error("DNS reply NOERROR without answers: the server has no such record for the name asked")]
    DnsNoAnswer,
}

/// Bytes shown to the operator: as text in quotes when they are printable ASCII, else as hex;
/// at most [`Shown::MAX`] of them (then `...`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    /// The bytes kept.
    pub bytes: Vec<u8>,
    /// Whether there were more.
    pub cut: bool,
}

impl Shown {
    /// The most bytes kept.
    pub const MAX: usize = 32;

    /// The first [`Shown::MAX`] bytes of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Shown {
            bytes: bytes.get(..Self::MAX).unwrap_or(bytes).to_vec(),
            cut: bytes.len() > Self::MAX,
        }
    }
}

impl fmt::Display for Shown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = &self.bytes[..];
        if bytes.is_empty() {
            f.write_str("(empty)")?;
        } else if bytes.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            write!(f, "\"{}\"", String::from_utf8_lossy(bytes))?;
        } else {
            f.write_str("0x")?;
            bytes.iter().try_for_each(|b| write!(f, "{b:02x}"))?;
        }
        if self.cut {
            f.write_str("...")?;
        }
        Ok(())
    }
}

/// Verdict on a UDP check's reply: `None` is silence until the timeout (up unless a reply is
/// required, as keepalived's `UDP_CHECK`); a reply must start with `expect` when a reply is
/// required (any reply is up otherwise).
pub fn udp_verdict(probe: &UdpProbe, reply: Option<&[u8]>) -> Result<(), FailReason> {
    match reply {
        None if probe.require_reply => Err(FailReason::NoReply("UDP reply")),
        None => Ok(()),
        Some(data) if probe.require_reply && !data.starts_with(&probe.expect) => {
            Err(FailReason::UdpReply {
                expected: Shown::of(&probe.expect),
                got: Shown::of(data),
            })
        }
        Some(_) => Ok(()),
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Parses `HTTP/x.y SSS ...` from the first line; `None` until the line is complete.
pub fn http_status(data: &[u8]) -> Option<Result<u16, FailReason>> {
    let end = find(data, b"\n")?;
    let line = data[..end].strip_suffix(b"\r").unwrap_or(&data[..end]);
    let rest = match line.strip_prefix(b"HTTP/") {
        Some(r) => r,
        None => return Some(Err(FailReason::BadStatusLine)),
    };
    let sp = match rest.iter().position(|&b| b == b' ') {
        Some(p) => p,
        None => return Some(Err(FailReason::BadStatusLine)),
    };
    let code = &rest[sp + 1..];
    let digits = match code.get(..3) {
        Some(d) if d.iter().all(u8::is_ascii_digit) => d,
        _ => return Some(Err(FailReason::BadStatusLine)),
    };
    if code.get(3).is_some_and(|&b| b != b' ') {
        return Some(Err(FailReason::BadStatusLine));
    }
    let status = digits
        .iter()
        .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
    Some(Ok(status))
}

/// The status verdict of an HTTP reply received so far: `None` while it is accepted (or not
/// complete yet: then `Some(NeedMore)`).
fn status_verdict<E: HttpExpect + ?Sized>(probe: &E, data: &[u8], eof: bool) -> Option<Progress> {
    let status = match http_status(data) {
        None if eof || data.len() >= MAX_REPLY => {
            return Some(Progress::Fail(FailReason::BadStatusLine))
        }
        None => return Some(Progress::NeedMore),
        Some(Err(e)) => return Some(Progress::Fail(e)),
        Some(Ok(s)) => s,
    };
    let accepted = if probe.status().is_empty() {
        (200..=399).contains(&status)
    } else {
        probe
            .status()
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&status))
    };
    (!accepted).then_some(Progress::Fail(FailReason::Status(status)))
}

/// Where the head ends and the body starts (after the blank line), if it does in `data`.
fn body_start(data: &[u8]) -> Option<usize> {
    let crlf = find(data, b"\r\n\r\n").map(|p| p + 4);
    let lf = find(data, b"\n\n").map(|p| p + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The `Content-Length` of a head, when it gives exactly one readable value.
fn content_length(head: &[u8]) -> Option<u64> {
    let mut found = None;
    for line in head.split(|&b| b == b'\n').skip(1) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        if !line[..colon].eq_ignore_ascii_case(b"content-length") {
            continue;
        }
        let value = std::str::from_utf8(&line[colon + 1..]).ok()?.trim();
        let n = value.parse::<u64>().ok()?;
        if found.is_some_and(|f| f != n) {
            return None;
        }
        found = Some(n);
    }
    found
}

/// Verdict on an HTTP reply received so far. `eof` says the server closed the connection.
/// A body MD5 is taken over the bytes given (at most `MAX_REPLY` of them); the prober streams
/// longer bodies through [`HttpReply`].
pub fn http_verdict<E: HttpExpect + ?Sized>(probe: &E, data: &[u8], eof: bool) -> Progress {
    if let Some(progress) = status_verdict(probe, data, eof) {
        return progress;
    }
    let needle = match probe.body() {
        None => return Progress::Pass,
        Some(BodyCheck::Contains(needle)) => needle,
        Some(BodyCheck::Md5 { .. }) => {
            let mut reply = HttpReply::default();
            return reply.feed(probe, data.get(..MAX_REPLY).unwrap_or(data), eof);
        }
    };
    let body = match body_start(data) {
        Some(p) => &data[p..],
        None if eof => return Progress::Fail(FailReason::Closed),
        None => return too_long_or_more(data),
    };
    if find(body, needle).is_some() {
        Progress::Pass
    } else if eof {
        Progress::Fail(FailReason::NoMatch)
    } else {
        too_long_or_more(data)
    }
}

/// An HTTP reply taken chunk by chunk, for every HTTP probe: the head (and, for a `contains`
/// check, the body) is buffered up to `MAX_REPLY` and judged by [`http_verdict`]; with an MD5
/// check, the body after the head goes through a [`BodyDigest`] and is never buffered. The
/// verdict is the same however the reply is cut into chunks.
#[derive(Debug, Clone, Default)]
pub struct HttpReply {
    head: Vec<u8>,
    digest: Option<BodyDigest>,
}

impl HttpReply {
    /// Takes the next `chunk` (empty at end of stream, with `eof`).
    pub fn feed<E: HttpExpect + ?Sized>(&mut self, probe: &E, chunk: &[u8], eof: bool) -> Progress {
        if let Some(digest) = &mut self.digest {
            let progress = digest.feed(chunk);
            return match progress {
                Progress::NeedMore if eof => digest.finish(),
                other => other,
            };
        }
        let Some(BodyCheck::Md5 {
            digest: expected,
            max_body,
        }) = probe.body()
        else {
            let room = MAX_REPLY.saturating_sub(self.head.len());
            self.head
                .extend_from_slice(chunk.get(..room).unwrap_or(chunk));
            return http_verdict(probe, &self.head, eof);
        };
        // The head: at most MAX_REPLY bytes are looked at, whatever the chunks.
        self.head.extend_from_slice(chunk);
        let view = self.head.get(..MAX_REPLY).unwrap_or(&self.head);
        if let Some(progress) = status_verdict(probe, view, eof) {
            return progress;
        }
        let Some(start) = body_start(view) else {
            return if eof {
                Progress::Fail(FailReason::Closed)
            } else {
                too_long_or_more(view)
            };
        };
        let digest = match BodyDigest::new(*expected, *max_body, content_length(&view[..start])) {
            Ok(d) => d,
            Err(reason) => return Progress::Fail(reason),
        };
        let digest = self.digest.insert(digest);
        // What came after the head so far (in this chunk or, cut short, in earlier ones).
        let progress = digest.feed(self.head.get(start..).unwrap_or_default());
        self.head = Vec::new();
        match progress {
            Progress::NeedMore if eof => digest.finish(),
            other => other,
        }
    }
}

fn too_long_or_more(data: &[u8]) -> Progress {
    if data.len() >= MAX_REPLY {
        Progress::Fail(FailReason::TooLong)
    } else {
        Progress::NeedMore
    }
}

/// Verdict on an SMTP greeting: the first line must start with `220` followed by a space, a
/// dash (multi-line greeting) or the line end.
pub fn smtp_verdict(data: &[u8], eof: bool) -> Progress {
    let Some(end) = find(data, b"\n") else {
        return if eof {
            Progress::Fail(FailReason::Closed)
        } else {
            too_long_or_more(data)
        };
    };
    let line = data[..end].strip_suffix(b"\r").unwrap_or(&data[..end]);
    let ok = line.starts_with(b"220") && matches!(line.get(3), None | Some(b' ') | Some(b'-'));
    if ok {
        Progress::Pass
    } else {
        let shown = String::from_utf8_lossy(&line[..line.len().min(64)]).into_owned();
        Progress::Fail(FailReason::SmtpGreeting(shown))
    }
}

/// Verdict for send/expect: the reply must contain `expect` (empty expects pass at once).
pub fn expect_verdict(expect: &[u8], data: &[u8], eof: bool) -> Progress {
    if find(data, expect).is_some() {
        Progress::Pass
    } else if eof {
        Progress::Fail(FailReason::NoMatch)
    } else {
        too_long_or_more(data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::check::HttpProbe;

    fn probe(status: Vec<(u16, u16)>, body: Option<&[u8]>) -> HttpProbe {
        HttpProbe {
            path: "/".into(),
            host: None,
            status,
            body: body.map(|b| BodyCheck::Contains(b.to_vec())),
            tls: None,
            more_urls: Vec::new(),
        }
    }

    #[test]
    fn http_status_lines() {
        assert_eq!(http_status(b"HTTP/1.1 200 OK\r\n"), Some(Ok(200)));
        assert_eq!(http_status(b"HTTP/1.0 503\r\n"), Some(Ok(503)));
        assert_eq!(http_status(b"HTTP/1.1 200 OK"), None);
        assert_eq!(
            http_status(b"SSH-2.0-OpenSSH\r\n"),
            Some(Err(FailReason::BadStatusLine))
        );
        assert_eq!(
            http_status(b"HTTP/1.1 2x0 OK\n"),
            Some(Err(FailReason::BadStatusLine))
        );
        assert_eq!(
            http_status(b"HTTP/1.1 2000 OK\n"),
            Some(Err(FailReason::BadStatusLine))
        );
    }

    #[test]
    fn http_ranges_and_body() {
        let p = probe(vec![(200, 204)], Some(b"alive"));
        let ok = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nI am alive\n";
        assert_eq!(http_verdict(&p, ok, false), Progress::Pass);
        assert_eq!(http_verdict(&p, &ok[..30], false), Progress::NeedMore);
        let dead = b"HTTP/1.1 200 OK\r\n\r\nI am dead";
        assert_eq!(http_verdict(&p, dead, false), Progress::NeedMore);
        assert_eq!(
            http_verdict(&p, dead, true),
            Progress::Fail(FailReason::NoMatch)
        );
        let err = b"HTTP/1.1 500 Internal\r\n\r\nalive";
        assert_eq!(
            http_verdict(&p, err, false),
            Progress::Fail(FailReason::Status(500))
        );
        // "alive" inside a header is not the body.
        let hdr = b"HTTP/1.1 200 OK\r\nX-State: alive\r\n\r\nnope";
        assert_eq!(
            http_verdict(&p, hdr, true),
            Progress::Fail(FailReason::NoMatch)
        );
        let default = probe(vec![], None);
        assert_eq!(
            http_verdict(&default, b"HTTP/1.1 302 Found\r\n", false),
            Progress::Pass
        );
        assert_eq!(
            http_verdict(&default, b"HTTP/1.1 404 No\r\n", false),
            Progress::Fail(FailReason::Status(404))
        );
    }

    fn md5_probe(body: &[u8], max_body: u64) -> HttpProbe {
        HttpProbe {
            body: Some(BodyCheck::Md5 {
                digest: crate::health::digest::md5(body),
                max_body,
            }),
            ..probe(vec![(200, 299)], None)
        }
    }

    /// Feeds `reply` in chunks of `size`, then the end of the stream.
    fn fed_in_chunks(probe: &HttpProbe, reply: &[u8], size: usize) -> Progress {
        let mut r = HttpReply::default();
        for chunk in reply.chunks(size) {
            let p = r.feed(probe, chunk, false);
            if p != Progress::NeedMore {
                return p;
            }
        }
        r.feed(probe, b"", true)
    }

    #[test]
    fn md5_bodies_streamed_in_any_chunks() {
        let p = md5_probe(b"hello, world\n", 1000);
        let close = b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nhello, world\n";
        let sized = b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nhello, world\ntrailing junk";
        for size in [1, 2, 7, 40, 4096] {
            assert_eq!(fed_in_chunks(&p, close, size), Progress::Pass, "{size}");
            assert_eq!(fed_in_chunks(&p, sized, size), Progress::Pass, "{size}");
            // A changed body, and a status the check does not accept (before any body).
            let changed = b"HTTP/1.0 200 OK\r\n\r\nhello, World\n";
            assert!(matches!(
                fed_in_chunks(&p, changed, size),
                Progress::Fail(FailReason::DigestMismatch { .. })
            ));
            let error = b"HTTP/1.0 500 Oops\r\n\r\nhello, world\n";
            assert_eq!(
                fed_in_chunks(&p, error, size),
                Progress::Fail(FailReason::Status(500))
            );
        }
        // The buffered verdict agrees.
        assert_eq!(http_verdict(&p, close, true), Progress::Pass);
        assert_eq!(http_verdict(&p, close, false), Progress::NeedMore);
        assert_eq!(http_verdict(&p, sized, false), Progress::Pass);
    }

    #[test]
    fn md5_bodies_are_bounded() {
        let p = md5_probe(b"x", 16);
        let announced = b"HTTP/1.0 200 OK\r\nContent-length: 17\r\n\r\n";
        assert_eq!(
            fed_in_chunks(&p, announced, 5),
            Progress::Fail(FailReason::BodyTooLong(16))
        );
        let mut endless = b"HTTP/1.0 200 OK\r\n\r\n".to_vec();
        endless.extend_from_slice(&[b'x'; 17]);
        assert_eq!(
            fed_in_chunks(&p, &endless, 3),
            Progress::Fail(FailReason::BodyTooLong(16))
        );
        // A cut-short body (fewer bytes than announced) is not hashed as if complete.
        let short = b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nx";
        assert_eq!(
            fed_in_chunks(&p, short, 4),
            Progress::Fail(FailReason::Closed)
        );
        // A head that never ends.
        let head = vec![b'H'; MAX_REPLY + 10];
        assert_eq!(
            fed_in_chunks(&p, &head, 4096),
            Progress::Fail(FailReason::BadStatusLine)
        );
        let mut long_head = b"HTTP/1.0 200 OK\r\n".to_vec();
        long_head.resize(MAX_REPLY + 10, b'h');
        assert_eq!(
            fed_in_chunks(&p, &long_head, 4096),
            Progress::Fail(FailReason::TooLong)
        );
    }

    #[test]
    fn smtp_greetings() {
        assert_eq!(
            smtp_verdict(b"220 mail.example ESMTP\r\n", false),
            Progress::Pass
        );
        assert_eq!(
            smtp_verdict(b"220-first line\r\n220 second\r\n", false),
            Progress::Pass
        );
        assert_eq!(smtp_verdict(b"220", false), Progress::NeedMore);
        assert_eq!(
            smtp_verdict(b"220", true),
            Progress::Fail(FailReason::Closed)
        );
        assert!(matches!(
            smtp_verdict(b"554 go away\r\n", false),
            Progress::Fail(FailReason::SmtpGreeting(_))
        ));
        assert!(matches!(
            smtp_verdict(b"2200 x\r\n", false),
            Progress::Fail(_)
        ));
    }

    #[test]
    fn expect_strings_and_limits() {
        assert_eq!(
            expect_verdict(b"+PONG", b"+PONG\r\n", false),
            Progress::Pass
        );
        assert_eq!(expect_verdict(b"+PONG", b"-ERR", false), Progress::NeedMore);
        assert_eq!(
            expect_verdict(b"+PONG", b"-ERR", true),
            Progress::Fail(FailReason::NoMatch)
        );
        assert_eq!(expect_verdict(b"", b"", true), Progress::Pass);
        let big = vec![b'x'; MAX_REPLY];
        assert_eq!(
            expect_verdict(b"y", &big, false),
            Progress::Fail(FailReason::TooLong)
        );
    }

    fn udp(require_reply: bool, expect: &[u8]) -> UdpProbe {
        UdpProbe {
            payload: b"ping".to_vec(),
            require_reply,
            expect: expect.to_vec(),
        }
    }

    #[test]
    fn udp_replies_and_silence_as_keepalived() {
        // Without require_reply: silence until the timeout and any reply are up.
        assert_eq!(udp_verdict(&udp(false, b""), None), Ok(()));
        assert_eq!(udp_verdict(&udp(false, b""), Some(b"whatever")), Ok(()));
        // With it: silence is down; a reply must start with expect (empty: any reply).
        assert_eq!(
            udp_verdict(&udp(true, b""), None),
            Err(FailReason::NoReply("UDP reply"))
        );
        assert_eq!(
            FailReason::NoReply("UDP reply").to_string(),
            "no UDP reply within the timeout"
        );
        assert_eq!(udp_verdict(&udp(true, b""), Some(b"")), Ok(()));
        assert_eq!(udp_verdict(&udp(true, b"PONG"), Some(b"PONG 1")), Ok(()));
        let wrong = udp_verdict(&udp(true, b"PONG"), Some(b"PANG")).unwrap_err();
        assert_eq!(
            wrong.to_string(),
            "UDP reply \"PANG\" does not start with the expected \"PONG\""
        );
        // A reply shorter than expect is not a match (keepalived compares only the shorter).
        assert!(udp_verdict(&udp(true, b"PONG"), Some(b"PO")).is_err());
        // Binary bytes as hex, long ones cut.
        let binary = udp_verdict(&udp(true, &[0xde, 0xad]), Some(&[0u8; 40])).unwrap_err();
        assert_eq!(
            binary.to_string(),
            format!(
                "UDP reply 0x{}... does not start with the expected 0xdead",
                "00".repeat(32)
            )
        );
        assert_eq!(Shown::of(b"").to_string(), "(empty)");
    }
}
