//! DNS checks (keepalived `DNS_CHECK`), sans IO: the query a check sends and the verdict on
//! each datagram that comes back.
//!
//! As keepalived's `check_dns.c`: one question, class IN, RD set, a random ID; a datagram too
//! short for a header, with another ID, or without QR is not the answer and is ignored (keep
//! waiting until the timeout); the answer fails on any RCODE but NOERROR, and a NOERROR answer
//! passes with or without answer records. A NOERROR without records (NODATA, or a referral from
//! an authoritative server asked about a name outside its zones, as keepalived's default SOA
//! query of "." often gets) is up in keepalived, so it is up here: a server that keepalived
//! keeps in the table must not leave it when its config is imported. (Session 10 required a
//! record and turned such servers down; that broke migrations silently.)

use super::reply::{FailReason, Progress};

/// The DNS header's length.
const HEADER: usize = 12;
/// QR (this is a response) in the flags.
const QR: u16 = 0x8000;
/// RD (recursion desired) in the flags.
const RD: u16 = 0x0100;
/// Class IN.
const CLASS_IN: u16 = 1;

/// Why a name cannot be asked for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// A label is empty (`a..b`) or longer than 63 bytes.
    #[error("DNS name {0:?} has an empty label or one longer than 63 bytes")]
    Label(String),
    /// The name is longer than 255 bytes on the wire.
    #[error("DNS name {0:?} is longer than 255 bytes")]
    TooLong(String),
}

/// The query for `name` (`.` is the root; a trailing dot is allowed) of type `record_type`.
pub fn query(id: u16, name: &str, record_type: u16) -> Result<Vec<u8>, NameError> {
    let mut message = Vec::with_capacity(HEADER + name.len() + 6);
    message.extend_from_slice(&id.to_be_bytes());
    message.extend_from_slice(&RD.to_be_bytes());
    // QDCOUNT 1, ANCOUNT, NSCOUNT, ARCOUNT 0.
    message.extend_from_slice(&[0, 1, 0, 0, 0, 0, 0, 0]);
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if !trimmed.is_empty() {
        for label in trimmed.split('.') {
            let length = u8::try_from(label.len())
                .ok()
                .filter(|n| (1..=63).contains(n))
                .ok_or_else(|| NameError::Label(name.to_owned()))?;
            message.push(length);
            message.extend_from_slice(label.as_bytes());
        }
    }
    message.push(0);
    if message.len() - HEADER > 255 {
        return Err(NameError::TooLong(name.to_owned()));
    }
    message.extend_from_slice(&record_type.to_be_bytes());
    message.extend_from_slice(&CLASS_IN.to_be_bytes());
    Ok(message)
}

/// Verdict on one datagram received for the query with `id`: [`Progress::NeedMore`] when it
/// is not the answer (too short, another ID, not a response), else pass or fail.
pub fn reply_verdict(id: u16, data: &[u8]) -> Progress {
    let Some(header) = data.get(..HEADER) else {
        return Progress::NeedMore;
    };
    let field = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
    if field(0) != id || field(2) & QR == 0 {
        return Progress::NeedMore;
    }
    // RCODE: the low 4 bits of the flags.
    let rcode = header[3] & 0x0f;
    if rcode != 0 {
        return Progress::Fail(FailReason::DnsRcode(rcode));
    }
    Progress::Pass
}

/// The name of an RCODE (RFC 1035, RFC 2136).
pub fn rcode_name(rcode: u8) -> &'static str {
    match rcode {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMP",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => "an error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response to `query` with `rcode` and `answers` answer records (records not written:
    /// the verdict reads the header only).
    fn response(query: &[u8], rcode: u8, answers: u16) -> Vec<u8> {
        let mut reply = query.to_vec();
        reply[2] |= 0x80;
        reply[3] = (reply[3] & 0xf0) | rcode;
        reply[6..8].copy_from_slice(&answers.to_be_bytes());
        reply
    }

    #[test]
    fn queries_are_encoded_as_keepalived_sends_them() {
        // SOA of the root: the header, a single zero byte, type 6, class IN.
        let root = query(0xbeef, ".", 6).unwrap();
        assert_eq!(
            root,
            [0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 1]
        );
        let name = query(1, "www.example.com", 1).unwrap();
        assert_eq!(&name[12..29], b"\x03www\x07example\x03com\x00");
        assert_eq!(&name[29..], &[0, 1, 0, 1]);
        assert_eq!(query(1, "www.example.com.", 1).unwrap(), name);
        assert_eq!(
            query(1, "a..b", 1),
            Err(NameError::Label("a..b".to_owned()))
        );
        let long_label = "x".repeat(64);
        assert!(matches!(query(1, &long_label, 1), Err(NameError::Label(_))));
        let long_name = vec!["y".repeat(63); 5].join(".");
        assert!(matches!(
            query(1, &long_name, 1),
            Err(NameError::TooLong(_))
        ));
    }

    #[test]
    fn answers_are_judged_as_keepalived_judges_them() {
        let sent = query(0x1234, "example.com", 6).unwrap();
        assert_eq!(
            reply_verdict(0x1234, &response(&sent, 0, 1)),
            Progress::Pass
        );
        assert_eq!(
            reply_verdict(0x1234, &response(&sent, 3, 0)),
            Progress::Fail(FailReason::DnsRcode(3))
        );
        assert_eq!(
            FailReason::DnsRcode(3).to_string(),
            "DNS reply NXDOMAIN (RCODE 3)"
        );
        assert_eq!(
            reply_verdict(0x1234, &response(&sent, 5, 0)),
            Progress::Fail(FailReason::DnsRcode(5))
        );
        assert_eq!(
            FailReason::DnsRcode(5).to_string(),
            "DNS reply REFUSED (RCODE 5)"
        );
        // NOERROR without answer records (NODATA, a referral): up, as in keepalived.
        assert_eq!(
            reply_verdict(0x1234, &response(&sent, 0, 0)),
            Progress::Pass
        );
        // Not the answer: another ID, the query itself (QR clear), a short datagram.
        assert_eq!(
            reply_verdict(0x1235, &response(&sent, 0, 1)),
            Progress::NeedMore
        );
        assert_eq!(reply_verdict(0x1234, &sent), Progress::NeedMore);
        assert_eq!(
            reply_verdict(0x1234, &response(&sent, 0, 1)[..11]),
            Progress::NeedMore
        );
        assert_eq!(
            FailReason::DnsRcode(14).to_string(),
            "DNS reply an error (RCODE 14)"
        );
    }
}
