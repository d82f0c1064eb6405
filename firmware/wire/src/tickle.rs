//! Tickle ACKs: the bogus TCP ACK a new VIP holder sends each client its partner was serving
//! (CTDB's trick, seed 000).
//!
//! The client's TCP sees sequence and acknowledgement numbers outside its window and answers
//! with a (challenge) ACK carrying the real numbers. That ACK reaches the new holder, whose
//! kernel has no socket for it and answers with a RST the client accepts: the client learns at
//! once that its connection is gone instead of waiting out retransmission timeouts.
//!
//! A tickle is a whole IP packet (header included) as a raw `IPPROTO_RAW` socket sends it:
//! 20 + 20 bytes over IPv4, 40 + 20 over IPv6, no TCP options, no payload. CTDB sends
//! sequence 0, acknowledgement 0 and window 1234 ("easier to spot in a sniffer"); so do we.

use core::fmt;
use core::net::{IpAddr, SocketAddr};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    IpAddress, IpProtocol, Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, TcpControl, TcpPacket,
    TcpRepr, TcpSeqNumber,
};

/// Window a tickle advertises (CTDB's marker value).
pub const TICKLE_WINDOW: u16 = 1234;
/// TTL / hop limit of a tickle.
pub const TICKLE_HOP_LIMIT: u8 = 64;
/// Length of an IPv4 tickle (IPv4 header + TCP header).
pub const TICKLE_V4_LEN: usize = 20 + 20;
/// Length of an IPv6 tickle (IPv6 header + TCP header).
pub const TICKLE_V6_LEN: usize = 40 + 20;
/// A buffer of this size holds a tickle of either family.
pub const TICKLE_MAX_LEN: usize = TICKLE_V6_LEN;

const TCP_HEADER_LEN: usize = 20;

/// Why a tickle could not be built or read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickleError {
    /// Source and destination are of different address families.
    MixedFamilies,
    /// A port is 0, which no TCP connection uses.
    ZeroPort,
    /// The output buffer is too small.
    BufferTooSmall {
        /// Bytes the packet needs.
        needed: usize,
        /// Bytes available.
        len: usize,
    },
    /// The bytes are not a well-formed IPv4 / IPv6 packet carrying a TCP segment with a valid
    /// checksum.
    Malformed,
    /// A well-formed TCP segment, but not a bare ACK without payload.
    NotAnAck,
}

impl fmt::Display for TickleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            TickleError::MixedFamilies => f.write_str(
                "tickle source and destination are of different address families; pair a VIP with clients of its own family",
            ),
            TickleError::ZeroPort => {
                f.write_str("tickle port is 0; no TCP connection uses port 0, drop the entry")
            }
            TickleError::BufferTooSmall { needed, len } => write!(
                f,
                "buffer of {len} bytes cannot hold a {needed}-byte tickle; pass TICKLE_MAX_LEN bytes"
            ),
            TickleError::Malformed => f.write_str(
                "not an IP packet with a TCP segment whose checksum verifies; it is not a tickle",
            ),
            TickleError::NotAnAck => {
                f.write_str("TCP segment is not a bare ACK without payload; it is not a tickle")
            }
        }
    }
}

/// One tickle ACK: from the VIP's side of a connection to the client's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TickleAckRepr {
    /// The VIP and the service port the client connected to.
    pub from: SocketAddr,
    /// The client's address and port.
    pub to: SocketAddr,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
}

impl TickleAckRepr {
    /// The CTDB form: sequence 0, acknowledgement 0, window 1234.
    pub const fn new(from: SocketAddr, to: SocketAddr) -> TickleAckRepr {
        TickleAckRepr {
            from,
            to,
            seq: 0,
            ack: 0,
            window: TICKLE_WINDOW,
        }
    }

    /// Bytes the packet takes (40 for IPv4, 60 for IPv6).
    pub const fn buffer_len(&self) -> usize {
        match self.from.ip() {
            IpAddr::V4(_) => TICKLE_V4_LEN,
            IpAddr::V6(_) => TICKLE_V6_LEN,
        }
    }

    fn tcp(&self) -> TcpRepr<'static> {
        TcpRepr {
            src_port: self.from.port(),
            dst_port: self.to.port(),
            control: TcpControl::None,
            seq_number: TcpSeqNumber(i32::from_ne_bytes(self.seq.to_ne_bytes())),
            ack_number: Some(TcpSeqNumber(i32::from_ne_bytes(self.ack.to_ne_bytes()))),
            window_len: self.window,
            window_scale: None,
            max_seg_size: None,
            sack_permitted: false,
            sack_ranges: [None, None, None],
            timestamp: None,
            payload: &[],
        }
    }

    /// Writes the whole IP packet (header with checksum, TCP with checksum) into `buffer` and
    /// returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, TickleError> {
        if self.from.port() == 0 || self.to.port() == 0 {
            return Err(TickleError::ZeroPort);
        }
        let needed = self.buffer_len();
        let len = buffer.len();
        let out = buffer
            .get_mut(..needed)
            .ok_or(TickleError::BufferTooSmall { needed, len })?;
        out.fill(0);
        let caps = ChecksumCapabilities::default();
        let tcp = self.tcp();
        match (self.from.ip(), self.to.ip()) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                let ip = Ipv4Repr {
                    src_addr: src,
                    dst_addr: dst,
                    next_header: IpProtocol::Tcp,
                    payload_len: TCP_HEADER_LEN,
                    hop_limit: TICKLE_HOP_LIMIT,
                };
                let mut packet = Ipv4Packet::new_unchecked(&mut *out);
                ip.emit(&mut packet, &caps);
                let mut segment = TcpPacket::new_unchecked(packet.payload_mut());
                tcp.emit(
                    &mut segment,
                    &IpAddress::Ipv4(src),
                    &IpAddress::Ipv4(dst),
                    &caps,
                );
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                let ip = Ipv6Repr {
                    src_addr: src,
                    dst_addr: dst,
                    next_header: IpProtocol::Tcp,
                    payload_len: TCP_HEADER_LEN,
                    hop_limit: TICKLE_HOP_LIMIT,
                };
                let mut packet = Ipv6Packet::new_unchecked(&mut *out);
                ip.emit(&mut packet);
                let mut segment = TcpPacket::new_unchecked(packet.payload_mut());
                tcp.emit(
                    &mut segment,
                    &IpAddress::Ipv6(src),
                    &IpAddress::Ipv6(dst),
                    &caps,
                );
            }
            _ => return Err(TickleError::MixedFamilies),
        }
        Ok(needed)
    }

    /// Reads a tickle back from a whole IP packet (checksums verified): for tests and captures.
    pub fn parse(packet: &[u8]) -> Result<TickleAckRepr, TickleError> {
        let caps = ChecksumCapabilities::default();
        let version = packet.first().map(|b| b >> 4);
        let (src, dst, payload): (IpAddr, IpAddr, &[u8]) = match version {
            Some(4) => {
                let view = Ipv4Packet::new_checked(packet).map_err(|_| TickleError::Malformed)?;
                let ip = Ipv4Repr::parse(&view, &caps).map_err(|_| TickleError::Malformed)?;
                if ip.next_header != IpProtocol::Tcp {
                    return Err(TickleError::Malformed);
                }
                let header = usize::from(view.header_len());
                let payload = packet
                    .get(header..header + ip.payload_len)
                    .ok_or(TickleError::Malformed)?;
                (IpAddr::V4(ip.src_addr), IpAddr::V4(ip.dst_addr), payload)
            }
            Some(6) => {
                let view = Ipv6Packet::new_checked(packet).map_err(|_| TickleError::Malformed)?;
                let ip = Ipv6Repr::parse(&view).map_err(|_| TickleError::Malformed)?;
                if ip.next_header != IpProtocol::Tcp {
                    return Err(TickleError::Malformed);
                }
                (
                    IpAddr::V6(ip.src_addr),
                    IpAddr::V6(ip.dst_addr),
                    view.payload(),
                )
            }
            _ => return Err(TickleError::Malformed),
        };
        let segment = TcpPacket::new_checked(payload).map_err(|_| TickleError::Malformed)?;
        let tcp = TcpRepr::parse(&segment, &ip_address(src), &ip_address(dst), &caps)
            .map_err(|_| TickleError::Malformed)?;
        let Some(ack) = tcp.ack_number else {
            return Err(TickleError::NotAnAck);
        };
        if tcp.control != TcpControl::None || !tcp.payload.is_empty() {
            return Err(TickleError::NotAnAck);
        }
        Ok(TickleAckRepr {
            from: SocketAddr::new(src, tcp.src_port),
            to: SocketAddr::new(dst, tcp.dst_port),
            seq: u32::from_ne_bytes(tcp.seq_number.0.to_ne_bytes()),
            ack: u32::from_ne_bytes(ack.0.to_ne_bytes()),
            window: tcp.window_len,
        })
    }
}

fn ip_address(address: IpAddr) -> IpAddress {
    match address {
        IpAddr::V4(v4) => IpAddress::Ipv4(v4),
        IpAddr::V6(v6) => IpAddress::Ipv6(v6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    /// 192.0.2.10:7000 -> 192.0.2.100:40000, seq 0, ack 0, window 1234, TTL 64, DF.
    ///
    /// IPv4 header sum by hand: 4500 + 0028 + 0000 + 4000 + 4006 + c000 + 020a + c000 + 0264
    /// = 0x2_499c -> 0x499e -> checksum !0x499e = 0xb661.
    /// TCP sum: pseudo-header c000 + 020a + c000 + 0264 + 0006 + 0014 = 0x1_8488; header
    /// 1b58 + 9c40 + 0 + 0 + 0 + 0 + 5010 + 04d2 + 0 + 0 = 0x1_0c7a; total 0x2_9102 -> 0x9104
    /// -> checksum !0x9104 = 0x6efb.
    #[test]
    fn ipv4_tickle_matches_the_hand_computed_bytes() {
        let repr = TickleAckRepr::new(v4("192.0.2.10:7000"), v4("192.0.2.100:40000"));
        let mut buffer = [0xaau8; TICKLE_MAX_LEN];
        assert_eq!(repr.emit(&mut buffer), Ok(40));
        let expected: [u8; 40] = [
            0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0xb6, 0x61, 192, 0, 2, 10,
            192, 0, 2, 100, // IPv4
            0x1b, 0x58, 0x9c, 0x40, 0, 0, 0, 0, 0, 0, 0, 0, 0x50, 0x10, 0x04, 0xd2, 0x6e, 0xfb, 0,
            0, // TCP
        ];
        assert_eq!(buffer[..40], expected);
        assert_eq!(TickleAckRepr::parse(&buffer[..40]), Ok(repr));
    }

    #[test]
    fn ipv6_tickle_round_trips_and_its_checksum_verifies() {
        let repr = TickleAckRepr {
            seq: 0xdead_beef,
            ack: 7,
            ..TickleAckRepr::new(
                "[2001:db8::10]:443".parse().unwrap(),
                "[2001:db8::99]:51000".parse().unwrap(),
            )
        };
        let mut buffer = [0u8; TICKLE_MAX_LEN];
        assert_eq!(repr.emit(&mut buffer), Ok(60));
        assert_eq!(buffer[0] >> 4, 6);
        assert_eq!(buffer[6], 6, "next header TCP");
        assert_eq!(buffer[7], TICKLE_HOP_LIMIT);
        assert_eq!(&buffer[4..6], &20u16.to_be_bytes(), "payload length");
        assert_eq!(buffer[40 + 13], 0x10, "ACK alone");
        assert_eq!(TickleAckRepr::parse(&buffer), Ok(repr));
        // One flipped bit anywhere in the TCP header breaks the checksum.
        for bit in 0..(20 * 8) {
            let mut broken = buffer;
            broken[40 + bit / 8] ^= 1 << (bit % 8);
            assert_ne!(TickleAckRepr::parse(&broken), Ok(repr), "bit {bit}");
        }
    }

    #[test]
    fn bad_requests_are_refused() {
        let mut buffer = [0u8; TICKLE_MAX_LEN];
        let mixed = TickleAckRepr::new(v4("192.0.2.10:80"), "[2001:db8::1]:80".parse().unwrap());
        assert_eq!(mixed.emit(&mut buffer), Err(TickleError::MixedFamilies));
        let zero = TickleAckRepr::new(v4("192.0.2.10:0"), v4("192.0.2.1:80"));
        assert_eq!(zero.emit(&mut buffer), Err(TickleError::ZeroPort));
        let fine = TickleAckRepr::new(v4("192.0.2.10:80"), v4("192.0.2.1:80"));
        assert_eq!(
            fine.emit(&mut buffer[..39]),
            Err(TickleError::BufferTooSmall {
                needed: 40,
                len: 39
            })
        );
        assert_eq!(TickleAckRepr::parse(&[]), Err(TickleError::Malformed));
        for cut in 0..40 {
            fine.emit(&mut buffer).unwrap();
            assert!(TickleAckRepr::parse(&buffer[..cut]).is_err());
        }
    }
}
