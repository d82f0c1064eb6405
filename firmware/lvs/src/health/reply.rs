//! Incremental verdicts on what a real server sent back. Pure functions over the bytes received
//! so far: they say pass, fail (with the reason) or need more. Garbage never panics (fuzz
//! target `health_reply`), and the caller caps how much it buffers (`MAX_REPLY`).

use super::check::HttpProbe;

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

/// Verdict on an HTTP reply received so far. `eof` says the server closed the connection.
pub fn http_verdict(probe: &HttpProbe, data: &[u8], eof: bool) -> Progress {
    let status = match http_status(data) {
        None if eof || data.len() >= MAX_REPLY => return Progress::Fail(FailReason::BadStatusLine),
        None => return Progress::NeedMore,
        Some(Err(e)) => return Progress::Fail(e),
        Some(Ok(s)) => s,
    };
    let accepted = if probe.status.is_empty() {
        (200..=399).contains(&status)
    } else {
        probe
            .status
            .iter()
            .any(|&(lo, hi)| (lo..=hi).contains(&status))
    };
    if !accepted {
        return Progress::Fail(FailReason::Status(status));
    }
    let Some(needle) = &probe.body_contains else {
        return Progress::Pass;
    };
    let body = match find(data, b"\r\n\r\n") {
        Some(p) => &data[p + 4..],
        None => match find(data, b"\n\n") {
            Some(p) => &data[p + 2..],
            None if eof => return Progress::Fail(FailReason::Closed),
            None => return too_long_or_more(data),
        },
    };
    if find(body, needle).is_some() {
        Progress::Pass
    } else if eof {
        Progress::Fail(FailReason::NoMatch)
    } else {
        too_long_or_more(data)
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

    fn probe(status: Vec<(u16, u16)>, body: Option<&[u8]>) -> HttpProbe {
        HttpProbe {
            path: "/".into(),
            host: None,
            status,
            body_contains: body.map(<[u8]>::to_vec),
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
}
