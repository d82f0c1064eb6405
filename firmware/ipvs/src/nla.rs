//! Netlink attribute (TLV) writing and reading, and netlink/genetlink message framing.
//!
//! Writing appends to a `Vec<u8>` with the kernel's 4-byte alignment; reading walks borrowed bytes
//! and reports malformed lengths as errors (never panics, never reads past the buffer), because
//! replies are untrusted input as far as the parser is concerned.

use crate::uapi::{GENL_HDRLEN, NLA_F_NESTED, NLA_HDRLEN, NLA_TYPE_MASK, NLMSG_HDRLEN};

/// Rounds `len` up to the netlink alignment of 4 bytes.
pub(crate) const fn align4(len: usize) -> usize {
    (len + 3) & !3
}

/// The attribute or message was longer than its 16-bit (attribute) or 32-bit (message) length
/// field can say; shorten the names in the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("netlink attribute or message too long for its length field; shorten the request")]
pub struct TooLong;

/// Appends attributes to a message buffer.
#[derive(Debug)]
pub(crate) struct NlaWriter<'a> {
    pub(crate) buf: &'a mut Vec<u8>,
}

impl NlaWriter<'_> {
    pub(crate) fn put(&mut self, ty: u16, payload: &[u8]) -> Result<(), TooLong> {
        let len = u16::try_from(NLA_HDRLEN + payload.len()).map_err(|_| TooLong)?;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(payload);
        self.pad();
        Ok(())
    }

    fn pad(&mut self) {
        let padded = align4(self.buf.len());
        self.buf.resize(padded, 0);
    }

    pub(crate) fn put_u8(&mut self, ty: u16, v: u8) -> Result<(), TooLong> {
        self.put(ty, &[v])
    }
    pub(crate) fn put_u16(&mut self, ty: u16, v: u16) -> Result<(), TooLong> {
        self.put(ty, &v.to_ne_bytes())
    }
    pub(crate) fn put_be16(&mut self, ty: u16, v: u16) -> Result<(), TooLong> {
        self.put(ty, &v.to_be_bytes())
    }
    pub(crate) fn put_u32(&mut self, ty: u16, v: u32) -> Result<(), TooLong> {
        self.put(ty, &v.to_ne_bytes())
    }
    /// A NUL-terminated string (NLA_NUL_STRING / NLA_STRING both accept it).
    pub(crate) fn put_cstr(&mut self, ty: u16, s: &str) -> Result<(), TooLong> {
        let len = u16::try_from(NLA_HDRLEN + s.len() + 1).map_err(|_| TooLong)?;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
        self.pad();
        Ok(())
    }

    /// Starts a nested attribute; returns the offset to pass to [`Self::nest_end`].
    pub(crate) fn nest_start(&mut self, ty: u16) -> usize {
        let start = self.buf.len();
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
        start
    }

    pub(crate) fn nest_end(&mut self, start: usize) -> Result<(), TooLong> {
        let len = u16::try_from(self.buf.len() - start).map_err(|_| TooLong)?;
        self.buf[start..start + 2].copy_from_slice(&len.to_ne_bytes());
        Ok(())
    }
}

/// Writes a netlink + genetlink header and returns the message start offset; finish the message
/// with [`finish_message`] after writing its attributes.
pub(crate) fn start_genl_message(
    buf: &mut Vec<u8>,
    family: u16,
    flags: u16,
    seq: u32,
    cmd: u8,
    version: u8,
) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched by finish_message
    buf.extend_from_slice(&family.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills in ours
    buf.extend_from_slice(&[cmd, version, 0, 0]);
    start
}

pub(crate) fn finish_message(buf: &mut [u8], start: usize) -> Result<(), TooLong> {
    let len = u32::try_from(buf.len() - start).map_err(|_| TooLong)?;
    buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
    Ok(())
}

/// Why a reply could not be decoded. Replies come from the kernel, so any of these means a
/// kernel/ABI mismatch or corrupted input; the message names the offending field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// A netlink message header is truncated or its length field is out of range.
    #[error("netlink message header truncated or length {0} out of range")]
    BadMessageLength(usize),
    /// A netlink attribute header is truncated or its length field is out of range.
    #[error("netlink attribute truncated or length {0} out of range")]
    BadAttributeLength(usize),
    /// An attribute payload has the wrong size for its type.
    #[error("attribute {field} has {got} bytes, expected {expected}")]
    BadAttributeSize {
        /// Name of the attribute.
        field: &'static str,
        /// Payload length found.
        got: usize,
        /// Payload length required.
        expected: usize,
    },
    /// A required attribute is missing.
    #[error("required attribute {0} missing from reply")]
    Missing(&'static str),
    /// An attribute holds a value this crate does not know.
    #[error("attribute {field} has unsupported value {value}")]
    Unsupported {
        /// Name of the attribute.
        field: &'static str,
        /// The value found.
        value: u64,
    },
    /// A string attribute is not valid UTF-8 or not NUL-terminated within bounds.
    #[error("string attribute {0} is not valid")]
    BadString(&'static str),
    /// The generic netlink header is shorter than 4 bytes.
    #[error("generic netlink header truncated")]
    ShortGenlHeader,
}

/// Iterator over the attributes in `data`: yields `(type without flags, payload)`; yields one
/// error and then stops on a malformed attribute.
#[derive(Debug, Clone)]
pub struct NlaIter<'a> {
    data: &'a [u8],
    failed: bool,
}

impl<'a> NlaIter<'a> {
    /// Walks the attributes in `data`.
    pub fn new(data: &'a [u8]) -> Self {
        NlaIter {
            data,
            failed: false,
        }
    }
}

impl<'a> Iterator for NlaIter<'a> {
    type Item = Result<(u16, &'a [u8]), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.data.len() < NLA_HDRLEN {
            // Trailing bytes shorter than a header are padding; the kernel never sends them.
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([self.data[0], self.data[1]]));
        let ty = u16::from_ne_bytes([self.data[2], self.data[3]]) & NLA_TYPE_MASK;
        if len < NLA_HDRLEN || len > self.data.len() {
            self.failed = true;
            return Some(Err(DecodeError::BadAttributeLength(len)));
        }
        let payload = &self.data[NLA_HDRLEN..len];
        let next = align4(len).min(self.data.len());
        self.data = &self.data[next..];
        Some(Ok((ty, payload)))
    }
}

pub(crate) fn get_u8(field: &'static str, p: &[u8]) -> Result<u8, DecodeError> {
    match p {
        [b] => Ok(*b),
        _ => Err(size_err(field, p, 1)),
    }
}
pub(crate) fn get_u16(field: &'static str, p: &[u8]) -> Result<u16, DecodeError> {
    let a: [u8; 2] = p.try_into().map_err(|_| size_err(field, p, 2))?;
    Ok(u16::from_ne_bytes(a))
}
pub(crate) fn get_be16(field: &'static str, p: &[u8]) -> Result<u16, DecodeError> {
    let a: [u8; 2] = p.try_into().map_err(|_| size_err(field, p, 2))?;
    Ok(u16::from_be_bytes(a))
}
pub(crate) fn get_u32(field: &'static str, p: &[u8]) -> Result<u32, DecodeError> {
    let a: [u8; 4] = p.try_into().map_err(|_| size_err(field, p, 4))?;
    Ok(u32::from_ne_bytes(a))
}
pub(crate) fn get_u64(field: &'static str, p: &[u8]) -> Result<u64, DecodeError> {
    let a: [u8; 8] = p.try_into().map_err(|_| size_err(field, p, 8))?;
    Ok(u64::from_ne_bytes(a))
}
/// A NUL-terminated (or unterminated, as NLA_STRING allows) string of at most `max` bytes.
pub(crate) fn get_str(field: &'static str, p: &[u8], max: usize) -> Result<String, DecodeError> {
    let text = match p.iter().position(|&b| b == 0) {
        Some(nul) => &p[..nul],
        None => p,
    };
    if text.len() >= max {
        return Err(DecodeError::BadString(field));
    }
    core::str::from_utf8(text)
        .map(str::to_owned)
        .map_err(|_| DecodeError::BadString(field))
}

fn size_err(field: &'static str, p: &[u8], expected: usize) -> DecodeError {
    DecodeError::BadAttributeSize {
        field,
        got: p.len(),
        expected,
    }
}

/// One netlink message borrowed from a receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NlMsg<'a> {
    /// `nlmsg_type`: a family id, or NLMSG_ERROR / NLMSG_DONE.
    pub ty: u16,
    /// `nlmsg_flags`.
    pub flags: u16,
    /// `nlmsg_seq`: echoes the request's sequence number.
    pub seq: u32,
    /// Bytes after the 16-byte netlink header.
    pub payload: &'a [u8],
}

/// Iterator over the netlink messages in one datagram; yields one error and stops on a
/// malformed header.
#[derive(Debug, Clone)]
pub struct NlMsgIter<'a> {
    data: &'a [u8],
    failed: bool,
}

impl<'a> NlMsgIter<'a> {
    /// Walks the messages in a received datagram.
    pub fn new(data: &'a [u8]) -> Self {
        NlMsgIter {
            data,
            failed: false,
        }
    }
}

impl<'a> Iterator for NlMsgIter<'a> {
    type Item = Result<NlMsg<'a>, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.data.is_empty() {
            return None;
        }
        if self.data.len() < NLMSG_HDRLEN {
            self.failed = true;
            return Some(Err(DecodeError::BadMessageLength(self.data.len())));
        }
        let d = self.data;
        let len = u32::from_ne_bytes([d[0], d[1], d[2], d[3]]);
        let len = usize::try_from(len).unwrap_or(usize::MAX);
        if len < NLMSG_HDRLEN || len > d.len() {
            self.failed = true;
            return Some(Err(DecodeError::BadMessageLength(len)));
        }
        let msg = NlMsg {
            ty: u16::from_ne_bytes([d[4], d[5]]),
            flags: u16::from_ne_bytes([d[6], d[7]]),
            seq: u32::from_ne_bytes([d[8], d[9], d[10], d[11]]),
            payload: &d[NLMSG_HDRLEN..len],
        };
        let next = align4(len).min(d.len());
        self.data = &d[next..];
        Some(Ok(msg))
    }
}

/// Splits a generic netlink payload into `(cmd, attributes)`.
pub fn split_genl(payload: &[u8]) -> Result<(u8, &[u8]), DecodeError> {
    if payload.len() < GENL_HDRLEN {
        return Err(DecodeError::ShortGenlHeader);
    }
    Ok((payload[0], &payload[GENL_HDRLEN..]))
}

/// The errno carried by an NLMSG_ERROR payload, as a positive number (0 = acknowledgement).
pub fn error_code(payload: &[u8]) -> Result<i32, DecodeError> {
    let a: [u8; 4] = payload
        .get(..4)
        .and_then(|s| s.try_into().ok())
        .ok_or(DecodeError::BadMessageLength(payload.len()))?;
    Ok(i32::from_ne_bytes(a).saturating_neg())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_padding_and_nesting() {
        let mut buf = Vec::new();
        let mut w = NlaWriter { buf: &mut buf };
        let n = w.nest_start(1);
        w.put_u8(2, 7).unwrap();
        w.put_cstr(3, "wlc").unwrap();
        w.nest_end(n).unwrap();
        // nest hdr(4) + u8 attr (5 -> 8) + "wlc\0" attr (8) = 20
        assert_eq!(buf.len(), 20);
        assert_eq!(&buf[..4], &[20, 0, 1, 0x80]);
        assert_eq!(&buf[4..12], &[5, 0, 2, 0, 7, 0, 0, 0]);
        assert_eq!(&buf[12..20], &[8, 0, 3, 0, b'w', b'l', b'c', 0]);
        let outer: Vec<_> = NlaIter::new(&buf).collect::<Result<_, _>>().unwrap();
        assert_eq!(outer.len(), 1);
        assert_eq!(outer[0].0, 1);
        let inner: Vec<_> = NlaIter::new(outer[0].1).collect::<Result<_, _>>().unwrap();
        assert_eq!(inner, vec![(2, &[7u8][..]), (3, &b"wlc\0"[..])]);
    }

    #[test]
    fn malformed_attribute_yields_one_error() {
        let bad = [9u8, 0, 1, 0, 1, 2]; // claims 9 bytes, has 6
        let items: Vec<_> = NlaIter::new(&bad).collect();
        assert_eq!(items, vec![Err(DecodeError::BadAttributeLength(9))]);
        let zero = [0u8, 0, 1, 0];
        assert_eq!(NlaIter::new(&zero).count(), 1);
    }

    #[test]
    fn malformed_message_yields_one_error() {
        let mut buf = vec![0u8; 20];
        buf[..4].copy_from_slice(&40u32.to_ne_bytes());
        let items: Vec<_> = NlMsgIter::new(&buf).collect();
        assert_eq!(items, vec![Err(DecodeError::BadMessageLength(40))]);
    }
}
