//! ICMP / ICMPv6 echo for ping checks (keepalived `PING_CHECK`), sans IO: the echo request a
//! check sends and the verdict on each datagram its socket receives.
//!
//! The socket is an unprivileged ICMP datagram socket where `net.ipv4.ping_group_range` allows
//! one (the kernel then writes the identifier and the checksum, hands over only the replies to
//! this socket's identifier, and no IP header), else a raw socket (we write both; an IPv4 raw
//! socket also hands over the IP header, an ICMPv6 one does not, and the kernel computes the
//! ICMPv6 checksum itself). [`Framing`] says which. Whatever arrives that is not the reply to
//! this request (another identifier or sequence, another type, garbage) is ignored:
//! [`Progress::NeedMore`]. ICMP errors for the request reach the check as the socket's error
//! (`IP_RECVERR`), not through here.

use super::reply::Progress;

/// ICMP echo request / reply types.
const ECHO_REQUEST_V4: u8 = 8;
const ECHO_REPLY_V4: u8 = 0;
const ECHO_REQUEST_V6: u8 = 128;
const ECHO_REPLY_V6: u8 = 129;
/// The ICMP echo header: type, code, checksum, identifier, sequence.
const HEADER: usize = 8;
/// What every request carries after its 8-byte nonce (keepalived sends its own filler too).
const FILLER: &[u8] = b"tandem health check";

/// How the received datagrams are framed, and whether the identifier is ours to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// An ICMP datagram socket (IPv4 or IPv6): the ICMP message alone; the kernel matched the
    /// identifier (it wrote its own into the request).
    Datagram,
    /// A raw ICMPv4 socket: the IPv4 header, then the ICMP message.
    RawV4,
    /// A raw ICMPv6 socket: the ICMPv6 message alone.
    RawV6,
}

/// One echo request of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoRequest {
    /// ICMPv6 rather than ICMP.
    pub v6: bool,
    /// Identifier (a datagram socket's kernel replaces it).
    pub ident: u16,
    /// Sequence number.
    pub seq: u16,
    /// Payload: a per-attempt nonce and the filler; the reply must carry it back unchanged.
    pub payload: Vec<u8>,
}

impl EchoRequest {
    /// The request for attempt `nonce`, with the identifier and sequence it gives.
    pub fn new(v6: bool, nonce: u64) -> Self {
        let [a, b, c, d, ..] = nonce.to_be_bytes();
        let mut payload = nonce.to_be_bytes().to_vec();
        payload.extend_from_slice(FILLER);
        EchoRequest {
            v6,
            ident: u16::from_be_bytes([a, b]),
            seq: u16::from_be_bytes([c, d]),
            payload,
        }
    }

    /// The ICMP message to send. The IPv4 checksum is filled in (a raw socket sends it as
    /// is); the ICMPv6 one is left 0 (the kernel computes it over the pseudo-header).
    pub fn encode(&self) -> Vec<u8> {
        let mut message = Vec::with_capacity(HEADER + self.payload.len());
        message.push(if self.v6 {
            ECHO_REQUEST_V6
        } else {
            ECHO_REQUEST_V4
        });
        message.push(0);
        message.extend_from_slice(&[0, 0]);
        message.extend_from_slice(&self.ident.to_be_bytes());
        message.extend_from_slice(&self.seq.to_be_bytes());
        message.extend_from_slice(&self.payload);
        if !self.v6 {
            let sum = checksum(&message).to_be_bytes();
            message[2..4].copy_from_slice(&sum);
        }
        message
    }
}

/// The Internet checksum (RFC 1071) of `data`.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|pair| match pair {
            [a, b] => u32::from(u16::from_be_bytes([*a, *b])),
            [a] => u32::from(u16::from_be_bytes([*a, 0])),
            _ => 0,
        })
        .fold(0u32, u32::wrapping_add);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // `sum` fits 16 bits after the folding above.
    !u16::try_from(sum).unwrap_or(u16::MAX)
}

/// Verdict on one received datagram: [`Progress::Pass`] for the echo reply to `request`,
/// [`Progress::NeedMore`] for anything else (not ours: keep waiting until the timeout).
pub fn echo_verdict(request: &EchoRequest, framing: Framing, data: &[u8]) -> Progress {
    let message = match framing {
        Framing::Datagram | Framing::RawV6 => data,
        Framing::RawV4 => {
            let Some(&first) = data.first() else {
                return Progress::NeedMore;
            };
            let header = usize::from(first & 0x0f) * 4;
            if first >> 4 != 4 || header < 20 || data.get(9) != Some(&1) {
                return Progress::NeedMore;
            }
            data.get(header..).unwrap_or_default()
        }
    };
    let Some((head, payload)) = message.split_at_checked(HEADER) else {
        return Progress::NeedMore;
    };
    let reply_type = if request.v6 {
        ECHO_REPLY_V6
    } else {
        ECHO_REPLY_V4
    };
    let ident_ok = framing == Framing::Datagram || head[4..6] == request.ident.to_be_bytes();
    if head[0] == reply_type
        && head[1] == 0
        && ident_ok
        && head[6..8] == request.seq.to_be_bytes()
        && payload == request.payload
    {
        Progress::Pass
    } else {
        Progress::NeedMore
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reply a host sends to `request` (type changed, checksum recomputed for IPv4).
    fn reply_to(request: &EchoRequest) -> Vec<u8> {
        let mut message = request.encode();
        message[0] = if request.v6 { 129 } else { 0 };
        message[2..4].copy_from_slice(&[0, 0]);
        if !request.v6 {
            let sum = checksum(&message).to_be_bytes();
            message[2..4].copy_from_slice(&sum);
        }
        message
    }

    fn with_ipv4_header(message: &[u8]) -> Vec<u8> {
        let mut packet = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0, 192, 0, 2, 1, 192, 0, 2, 2,
        ];
        packet.extend_from_slice(message);
        packet
    }

    #[test]
    fn requests_carry_a_valid_checksum_and_the_nonce() {
        let request = EchoRequest::new(false, 0x0102_0304_0506_0708);
        assert_eq!((request.ident, request.seq), (0x0102, 0x0304));
        let message = request.encode();
        assert_eq!(&message[..2], &[8, 0]);
        assert_eq!(
            checksum(&message),
            0,
            "a message with its checksum sums to 0"
        );
        assert_eq!(&message[8..16], &0x0102_0304_0506_0708u64.to_be_bytes());
        assert!(message.ends_with(FILLER));
        let v6 = EchoRequest::new(true, 7).encode();
        assert_eq!(
            &v6[..4],
            &[128, 0, 0, 0],
            "ICMPv6 checksum left to the kernel"
        );
        // RFC 1071's example.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
        assert_eq!(checksum(&[0xff]), !0xff00);
    }

    #[test]
    fn only_the_reply_to_this_request_passes() {
        let request = EchoRequest::new(false, 42);
        let reply = reply_to(&request);
        assert_eq!(
            echo_verdict(&request, Framing::Datagram, &reply),
            Progress::Pass
        );
        assert_eq!(
            echo_verdict(&request, Framing::RawV4, &with_ipv4_header(&reply)),
            Progress::Pass
        );
        // A raw socket without the IP header, or a datagram one with it: not parsed as ours.
        assert_eq!(
            echo_verdict(&request, Framing::RawV4, &reply),
            Progress::NeedMore
        );
        // Our own request looped back, another sequence, another identifier (raw only), a
        // changed payload, a cut-short message.
        let own = request.encode();
        assert_eq!(
            echo_verdict(&request, Framing::Datagram, &own),
            Progress::NeedMore
        );
        let mut other_seq = reply.clone();
        other_seq[7] ^= 1;
        assert_eq!(
            echo_verdict(&request, Framing::Datagram, &other_seq),
            Progress::NeedMore
        );
        let mut other_ident = reply.clone();
        other_ident[4] ^= 1;
        assert_eq!(
            echo_verdict(&request, Framing::RawV4, &with_ipv4_header(&other_ident)),
            Progress::NeedMore
        );
        assert_eq!(
            echo_verdict(&request, Framing::Datagram, &other_ident),
            Progress::Pass,
            "a datagram socket's kernel wrote its own identifier"
        );
        let mut changed = reply.clone();
        changed[12] ^= 0xff;
        assert_eq!(
            echo_verdict(&request, Framing::Datagram, &changed),
            Progress::NeedMore
        );
        assert_eq!(
            echo_verdict(&request, Framing::Datagram, &reply[..7]),
            Progress::NeedMore
        );
        assert_eq!(
            echo_verdict(&request, Framing::RawV4, &[]),
            Progress::NeedMore
        );
        // IPv6.
        let v6 = EchoRequest::new(true, 9);
        assert_eq!(
            echo_verdict(&v6, Framing::RawV6, &reply_to(&v6)),
            Progress::Pass
        );
        assert_eq!(
            echo_verdict(&v6, Framing::RawV6, &reply),
            Progress::NeedMore,
            "an ICMPv4 reply type is not an ICMPv6 reply"
        );
    }
}
