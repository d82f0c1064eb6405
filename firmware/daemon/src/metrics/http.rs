//! The smallest HTTP/1.x the endpoint needs, pure: where a request head ends, what it asks
//! for, and the response head. Nothing here allocates from what the client sent; the head is
//! read into a fixed buffer of [`MAX_HEAD`] bytes by the server and parsed in place.
//!
//! Served: `GET /metrics` (and `HEAD`), `GET /` (a line pointing at `/metrics`). Everything
//! else gets a status and a one-line body: a head that does not parse 400, another path 404,
//! another method 405 (with `Allow`), a head over [`MAX_HEAD`] 431, a version other than
//! HTTP/1.0 or 1.1 505. Every response closes the connection (`Connection: close`): one
//! request per connection keeps each connection's state to the head buffer.

use std::fmt::Write as _;

/// The largest request head read (request line and headers, with the blank line).
pub const MAX_HEAD: usize = 4096;

/// What the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Metrics,
    Index,
}

/// A request the endpoint answers with 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub target: Target,
    /// `HEAD`: the head of the response only.
    pub head_only: bool,
    /// The `Accept` header asks for `application/openmetrics-text`.
    pub openmetrics: bool,
}

/// A request the endpoint refuses, with its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 400: the head is not HTTP (the reason goes in the body).
    BadRequest(&'static str),
    /// 404: a path other than `/metrics` and `/`.
    NotFound,
    /// 405: a method other than GET and HEAD.
    MethodNotAllowed,
    /// 431: the head is longer than [`MAX_HEAD`].
    HeadTooLarge,
    /// 505: not HTTP/1.0 or HTTP/1.1.
    VersionNotSupported,
}

impl Refusal {
    /// Status code and reason phrase.
    pub fn status(self) -> (u16, &'static str) {
        match self {
            Refusal::BadRequest(_) => (400, "Bad Request"),
            Refusal::NotFound => (404, "Not Found"),
            Refusal::MethodNotAllowed => (405, "Method Not Allowed"),
            Refusal::HeadTooLarge => (431, "Request Header Fields Too Large"),
            Refusal::VersionNotSupported => (505, "HTTP Version Not Supported"),
        }
    }

    /// The one-line body: what was wrong and what to do.
    pub fn body(self) -> String {
        match self {
            Refusal::BadRequest(why) => format!("bad request: {why}; send GET /metrics HTTP/1.1\n"),
            Refusal::NotFound => "not found: the metrics are at /metrics\n".to_owned(),
            Refusal::MethodNotAllowed => {
                "method not allowed: the endpoint is read-only; use GET /metrics\n".to_owned()
            }
            Refusal::HeadTooLarge => format!(
                "request head too large: at most {MAX_HEAD} bytes of request line and headers\n"
            ),
            Refusal::VersionNotSupported => {
                "HTTP version not supported: use HTTP/1.1 or HTTP/1.0\n".to_owned()
            }
        }
    }
}

/// The length of the head at the start of `buffer` (through its blank line), once complete.
/// Lines may end in CRLF or a bare LF.
pub fn head_end(buffer: &[u8]) -> Option<usize> {
    buffer.iter().enumerate().find_map(|(at, byte)| {
        if *byte != b'\n' {
            return None;
        }
        let rest = buffer.get(at + 1..)?;
        if rest.first() == Some(&b'\n') {
            Some(at + 2)
        } else if rest.starts_with(b"\r\n") {
            Some(at + 3)
        } else {
            None
        }
    })
}

/// Parses a complete head (what [`head_end`] delimited).
pub fn parse(head: &[u8]) -> Result<Request, Refusal> {
    let text = std::str::from_utf8(head).map_err(|_| Refusal::BadRequest("not text"))?;
    let mut lines = text
        .split('\n')
        .map(|line| line.strip_suffix('\r').unwrap_or(line));
    let request_line = lines.next().unwrap_or_default();
    let mut words = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Err(Refusal::BadRequest(
            "the request line is not METHOD TARGET VERSION",
        ));
    };
    if method.is_empty() || !method.bytes().all(is_token) {
        return Err(Refusal::BadRequest("the method is not a token"));
    }
    if target.is_empty() || target.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(Refusal::BadRequest(
            "the target is empty or holds control bytes",
        ));
    }
    match version {
        "HTTP/1.1" | "HTTP/1.0" => {}
        v if v.starts_with("HTTP/") => return Err(Refusal::VersionNotSupported),
        _ => return Err(Refusal::BadRequest("the version is not HTTP/1.x")),
    }
    let mut openmetrics = false;
    for line in lines {
        if line.is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(Refusal::BadRequest("a header line without a colon"));
        };
        if name.is_empty() || !name.bytes().all(is_token) {
            // Also folded (obsolete) continuation lines, which start with whitespace.
            return Err(Refusal::BadRequest("a header name is not a token"));
        }
        if value.bytes().any(|b| (b < b' ' && b != b'\t') || b == 0x7f) {
            return Err(Refusal::BadRequest("a header value holds control bytes"));
        }
        if name.eq_ignore_ascii_case("accept") && contains_ignore_case(value, "openmetrics-text") {
            openmetrics = true;
        }
    }
    let head_only = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Err(Refusal::MethodNotAllowed),
    };
    let target = match path_of(target) {
        "/metrics" => Target::Metrics,
        "/" => Target::Index,
        _ => return Err(Refusal::NotFound),
    };
    Ok(Request {
        target,
        head_only,
        openmetrics,
    })
}

/// The path of an origin-form (`/metrics?x`) or absolute-form (`http://host/metrics`) target.
fn path_of(target: &str) -> &str {
    let path = match target.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map_or("/", |at| rest.get(at..).unwrap_or("/")),
        None => target,
    };
    path.split(['?', '#']).next().unwrap_or(path)
}

fn is_token(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&byte)
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle.as_bytes()))
}

/// A response head: status, `Content-Type`, `Content-Length`, `Connection: close`, and
/// `Allow` on a 405.
pub fn response_head(status: (u16, &str), content_type: &str, length: usize) -> String {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n",
        status.0, status.1
    );
    if status.0 == 405 {
        head.push_str("Allow: GET, HEAD\r\n");
    }
    let _ = write!(head, "Cache-Control: no-store\r\nConnection: close\r\n\r\n");
    head
}

/// The body of `GET /`.
pub const INDEX: &str = "tandem: metrics at /metrics (Prometheus text or OpenMetrics)\n";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn finds_the_end_of_a_head_with_crlf_or_lf() {
        assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\n"), Some(18));
        assert_eq!(head_end(b"GET / HTTP/1.1\n\nrest"), Some(16));
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
        assert_eq!(head_end(b""), None);
        assert_eq!(head_end(b"\n"), None);
    }

    #[test]
    fn a_scrape_parses_and_asks_for_openmetrics_when_accept_says_so() {
        let prometheus = b"GET /metrics HTTP/1.1\r\nHost: 10.0.0.1:9100\r\nUser-Agent: Prometheus/2.42.0\r\n\
            Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\n\r\n";
        assert_eq!(
            parse(prometheus),
            Ok(Request {
                target: Target::Metrics,
                head_only: false,
                openmetrics: true
            })
        );
        let curl = b"GET /metrics?x=1 HTTP/1.0\nAccept: */*\n\n";
        assert_eq!(
            parse(curl),
            Ok(Request {
                target: Target::Metrics,
                head_only: false,
                openmetrics: false
            })
        );
        assert_eq!(
            parse(b"HEAD http://box:9100/ HTTP/1.1\r\n\r\n").map(|r| (r.target, r.head_only)),
            Ok((Target::Index, true))
        );
    }

    #[test]
    fn wrong_method_path_and_version_are_refused_with_their_status() {
        assert_eq!(
            parse(b"POST /metrics HTTP/1.1\r\n\r\n"),
            Err(Refusal::MethodNotAllowed)
        );
        assert_eq!(
            parse(b"GET /admin HTTP/1.1\r\n\r\n"),
            Err(Refusal::NotFound)
        );
        assert_eq!(
            parse(b"GET /metrics HTTP/2.0\r\n\r\n"),
            Err(Refusal::VersionNotSupported)
        );
        assert_eq!(Refusal::MethodNotAllowed.status().0, 405);
        assert!(response_head((405, "Method Not Allowed"), "text/plain", 3)
            .contains("Allow: GET, HEAD\r\n"));
    }

    #[test]
    fn garbage_is_a_bad_request() {
        for garbage in [
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"[..],
            b"GET\r\n\r\n",
            b"GET  /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1 extra\r\n\r\n",
            b"GET /met\x01rics HTTP/1.1\r\n\r\n",
            b"GET /metrics SPDY/3\r\n\r\n",
            b"G(T /metrics HTTP/1.1\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nNo colon here\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\n folded: x\r\n\r\n",
            b"GET /metrics HTTP/1.1\r\nX: a\x00b\r\n\r\n",
            b"\r\n\r\n",
        ] {
            assert!(
                matches!(parse(garbage), Err(Refusal::BadRequest(_))),
                "{garbage:?}: {:?}",
                parse(garbage)
            );
        }
    }

    #[test]
    fn refusals_say_what_to_do() {
        assert!(Refusal::HeadTooLarge.body().contains("4096"));
        assert_eq!(Refusal::HeadTooLarge.status().0, 431);
        assert!(Refusal::NotFound.body().contains("/metrics"));
        assert!(Refusal::BadRequest("x").body().contains("GET /metrics"));
        let head = response_head((200, "OK"), "text/plain", 12);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(head.contains("Content-Length: 12\r\n"));
        assert!(head.ends_with("Connection: close\r\n\r\n"));
    }
}
