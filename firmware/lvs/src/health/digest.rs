//! The MD5 of an HTTP body, streamed (keepalived's `digest`): the body is hashed as it arrives,
//! so memory stays one read chunk whatever the body's size. Pure: fed bytes, it says pass, fail
//! (mismatch, too long, cut short) or need more.
//!
//! The body ends at its `Content-Length` when the head gives one (bytes after it are not part of
//! it), else where the server closes the connection (the check sends HTTP/1.0 requests). A body
//! longer than the check's bound fails the check as soon as the bound is passed (or at once when
//! the `Content-Length` says so), instead of hashing without end.

use std::fmt;

use md5::{Digest, Md5};

use super::reply::{FailReason, Progress};

/// Lower-case hex of a digest, as keepalived's `genhash` prints it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hex(pub [u8; 16]);

impl fmt::Display for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The MD5 of `bytes` (for tests and tools that compute what a check expects).
pub fn md5(bytes: &[u8]) -> [u8; 16] {
    Md5::digest(bytes).into()
}

/// A body being hashed.
#[derive(Debug, Clone)]
pub struct BodyDigest {
    hasher: Md5,
    expected: [u8; 16],
    max_body: u64,
    content_length: Option<u64>,
    len: u64,
}

impl BodyDigest {
    /// Starts hashing a body whose head said `content_length` (if it did). Fails at once when
    /// that length is over `max_body`.
    pub fn new(
        expected: [u8; 16],
        max_body: u64,
        content_length: Option<u64>,
    ) -> Result<Self, FailReason> {
        if content_length.is_some_and(|n| n > max_body) {
            return Err(FailReason::BodyTooLong(max_body));
        }
        Ok(BodyDigest {
            hasher: Md5::new(),
            expected,
            max_body,
            content_length,
            len: 0,
        })
    }

    /// Bytes of the body hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was hashed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Hashes the next bytes of the body; a verdict once the body is complete or too long.
    pub fn feed(&mut self, bytes: &[u8]) -> Progress {
        let room = match self.content_length {
            Some(total) => total.saturating_sub(self.len),
            None => self.max_body.saturating_sub(self.len).saturating_add(1),
        };
        let take = bytes.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let part = bytes.get(..take).unwrap_or_default();
        self.len = self
            .len
            .saturating_add(u64::try_from(part.len()).unwrap_or(u64::MAX));
        if self.len > self.max_body {
            return Progress::Fail(FailReason::BodyTooLong(self.max_body));
        }
        self.hasher.update(part);
        if self.content_length == Some(self.len) {
            self.verdict()
        } else {
            Progress::NeedMore
        }
    }

    /// The verdict when the server closed the connection.
    pub fn finish(&self) -> Progress {
        match self.content_length {
            Some(total) if self.len < total => Progress::Fail(FailReason::Closed),
            _ => self.verdict(),
        }
    }

    fn verdict(&self) -> Progress {
        let got: [u8; 16] = self.hasher.clone().finalize().into();
        if got == self.expected {
            Progress::Pass
        } else {
            Progress::Fail(FailReason::DigestMismatch {
                expected: Hex(self.expected),
                got: Hex(got),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 1321's test suite.
    const ABC: [u8; 16] = [
        0x90, 0x01, 0x50, 0x98, 0x3c, 0xd2, 0x4f, 0xb0, 0xd6, 0x96, 0x3f, 0x7d, 0x28, 0xe1, 0x7f,
        0x72,
    ];

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(Hex(ABC).to_string(), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(md5(b"abc"), ABC);
    }

    #[test]
    fn streamed_until_close() {
        let mut d = BodyDigest::new(ABC, 10, None).unwrap();
        assert_eq!(d.feed(b"a"), Progress::NeedMore);
        assert_eq!(d.feed(b"bc"), Progress::NeedMore);
        assert_eq!(d.finish(), Progress::Pass);
        let mut d = BodyDigest::new(ABC, 10, None).unwrap();
        assert_eq!(d.feed(b"abd"), Progress::NeedMore);
        let Progress::Fail(reason) = d.finish() else {
            panic!("a changed body must fail");
        };
        assert_eq!(
            reason.to_string(),
            format!(
                "body MD5 {} does not match the expected 900150983cd24fb0d6963f7d28e17f72",
                Hex(md5(b"abd"))
            )
        );
    }

    #[test]
    fn content_length_ends_the_body() {
        let mut d = BodyDigest::new(ABC, 10, Some(3)).unwrap();
        assert_eq!(d.feed(b"ab"), Progress::NeedMore);
        // Bytes past the length are not the body.
        assert_eq!(d.feed(b"cXYZ"), Progress::Pass);
        let mut d = BodyDigest::new(ABC, 10, Some(3)).unwrap();
        assert_eq!(d.feed(b"ab"), Progress::NeedMore);
        assert_eq!(d.finish(), Progress::Fail(FailReason::Closed));
    }

    #[test]
    fn bodies_over_the_bound_fail() {
        assert_eq!(
            BodyDigest::new(ABC, 10, Some(11)).unwrap_err(),
            FailReason::BodyTooLong(10)
        );
        let mut d = BodyDigest::new(ABC, 4, None).unwrap();
        assert_eq!(d.feed(b"abcd"), Progress::NeedMore);
        assert_eq!(d.feed(b"e"), Progress::Fail(FailReason::BodyTooLong(4)));
        let mut d = BodyDigest::new(ABC, 4, None).unwrap();
        assert_eq!(
            d.feed(&[0; 100]),
            Progress::Fail(FailReason::BodyTooLong(4))
        );
        assert_eq!(d.len(), 5, "hashes no more than one byte past the bound");
    }
}
