//! ARP (RFC 826) over Ethernet for IPv4: the request a backup sends to ask "is my partner's
//! kernel still there?" on the service LAN, and the zero-copy view that reads the answer.
//!
//! The partner's kernel answers ARP without any daemon, so a reply (or any ARP the partner sends
//! on its own: a request, a gratuitous ARP) proves its box is alive even when the peer cable
//! is dead. [`proof_of_life`] applies that rule to a received frame.
//!
//! Frames here are whole Ethernet frames (destination MAC first), as an `AF_PACKET` raw socket
//! sends and receives them. Received frames may carry Ethernet padding up to 60 bytes; it is
//! ignored.

use core::fmt;
use core::net::Ipv4Addr;

use crate::announce::MacAddress;

/// Length of an ARP request frame as emitted (Ethernet header + ARP, no padding).
pub const ARP_FRAME_LEN: usize = ETHERNET_HEADER_LEN + ARP_LEN;

/// Ethertype of ARP.
pub const ETHERTYPE_ARP: u16 = 0x0806;

const ETHERNET_HEADER_LEN: usize = 14;
const ARP_LEN: usize = 28;
const BROADCAST: MacAddress = [0xff; 6];
const HARDWARE_ETHERNET: u16 = 1;
const PROTOCOL_IPV4: u16 = 0x0800;

mod field {
    use core::ops::Range;

    pub const ETH_DESTINATION: Range<usize> = 0..6;
    pub const ETH_SOURCE: Range<usize> = 6..12;
    pub const ETHERTYPE: Range<usize> = 12..14;
    pub const HARDWARE_TYPE: Range<usize> = 14..16;
    pub const PROTOCOL_TYPE: Range<usize> = 16..18;
    pub const HARDWARE_LEN: usize = 18;
    pub const PROTOCOL_LEN: usize = 19;
    pub const OPERATION: Range<usize> = 20..22;
    pub const SENDER_MAC: Range<usize> = 22..28;
    pub const SENDER_IP: Range<usize> = 28..32;
    pub const TARGET_MAC: Range<usize> = 32..38;
    pub const TARGET_IP: Range<usize> = 38..42;
}

/// Why bytes are not an Ethernet/IPv4 ARP frame, or why one could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpError {
    /// The output buffer is too small.
    BufferTooSmall {
        /// Bytes the frame needs.
        needed: usize,
        /// Bytes available.
        len: usize,
    },
    /// Fewer bytes than an Ethernet header plus an Ethernet/IPv4 ARP packet (42).
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// The Ethernet frame carries another protocol.
    NotArp {
        /// The ethertype found.
        ethertype: u16,
    },
    /// ARP for another hardware or protocol type (only Ethernet / IPv4 is spoken here).
    NotEthernetIpv4 {
        /// Hardware type found (1 is Ethernet).
        hardware: u16,
        /// Protocol type found (0x0800 is IPv4).
        protocol: u16,
        /// Hardware address length found (6 for Ethernet).
        hardware_len: u8,
        /// Protocol address length found (4 for IPv4).
        protocol_len: u8,
    },
}

impl fmt::Display for ArpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ArpError::BufferTooSmall { needed, len } => write!(
                f,
                "buffer of {len} bytes cannot hold a {needed}-byte ARP frame; pass a larger buffer"
            ),
            ArpError::Truncated { len } => write!(
                f,
                "{len}-byte frame is shorter than Ethernet + ARP ({ARP_FRAME_LEN} bytes); \
                 receive whole frames (AF_PACKET SOCK_RAW) into a buffer of at least 60 bytes"
            ),
            ArpError::NotArp { ethertype } => write!(
                f,
                "ethertype {ethertype:#06x} is not ARP (0x0806); bind the socket to ETH_P_ARP"
            ),
            ArpError::NotEthernetIpv4 {
                hardware,
                protocol,
                hardware_len,
                protocol_len,
            } => write!(
                f,
                "ARP for hardware type {hardware} / protocol {protocol:#06x} with address lengths \
                 {hardware_len}/{protocol_len}; only Ethernet/IPv4 (1 / 0x0800, 6/4) is understood"
            ),
        }
    }
}

/// ARP operation code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOperation {
    /// 1: who has the target protocol address?
    Request,
    /// 2: the sender has it.
    Reply,
    /// Anything else (RARP, InARP, ...).
    Unknown(u16),
}

impl From<u16> for ArpOperation {
    fn from(value: u16) -> Self {
        match value {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            other => ArpOperation::Unknown(other),
        }
    }
}

impl From<ArpOperation> for u16 {
    fn from(value: ArpOperation) -> Self {
        match value {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
            ArpOperation::Unknown(other) => other,
        }
    }
}

/// A zero-copy view of an Ethernet frame carrying an Ethernet/IPv4 ARP packet.
///
/// After [`ArpFrame::new_checked`] every accessor is in bounds and the frame is known to be
/// Ethernet/IPv4 ARP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ArpFrame<T> {
    /// Wraps `buffer` after checking its length, ethertype and the ARP hardware / protocol
    /// types and address lengths.
    pub fn new_checked(buffer: T) -> Result<ArpFrame<T>, ArpError> {
        let bytes = buffer.as_ref();
        let Some(header) = bytes.get(..ARP_FRAME_LEN) else {
            return Err(ArpError::Truncated { len: bytes.len() });
        };
        let word = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
        let ethertype = word(field::ETHERTYPE.start);
        if ethertype != ETHERTYPE_ARP {
            return Err(ArpError::NotArp { ethertype });
        }
        let hardware = word(field::HARDWARE_TYPE.start);
        let protocol = word(field::PROTOCOL_TYPE.start);
        let hardware_len = header[field::HARDWARE_LEN];
        let protocol_len = header[field::PROTOCOL_LEN];
        if (hardware, protocol, hardware_len, protocol_len)
            != (HARDWARE_ETHERNET, PROTOCOL_IPV4, 6, 4)
        {
            return Err(ArpError::NotEthernetIpv4 {
                hardware,
                protocol,
                hardware_len,
                protocol_len,
            });
        }
        Ok(ArpFrame { buffer })
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    fn mac(&self, range: core::ops::Range<usize>) -> MacAddress {
        let mut mac = [0u8; 6];
        if let Some(bytes) = self.bytes().get(range) {
            mac.copy_from_slice(bytes);
        }
        mac
    }

    fn ip(&self, range: core::ops::Range<usize>) -> Ipv4Addr {
        let mut octets = [0u8; 4];
        if let Some(bytes) = self.bytes().get(range) {
            octets.copy_from_slice(bytes);
        }
        Ipv4Addr::from(octets)
    }

    /// Ethernet destination MAC.
    pub fn ethernet_destination(&self) -> MacAddress {
        self.mac(field::ETH_DESTINATION)
    }

    /// Ethernet source MAC.
    pub fn ethernet_source(&self) -> MacAddress {
        self.mac(field::ETH_SOURCE)
    }

    /// ARP operation.
    pub fn operation(&self) -> ArpOperation {
        let bytes = self.bytes();
        let code = match bytes.get(field::OPERATION) {
            Some(&[high, low]) => u16::from_be_bytes([high, low]),
            _ => 0,
        };
        ArpOperation::from(code)
    }

    /// Sender hardware address.
    pub fn sender_mac(&self) -> MacAddress {
        self.mac(field::SENDER_MAC)
    }

    /// Sender protocol address.
    pub fn sender_ip(&self) -> Ipv4Addr {
        self.ip(field::SENDER_IP)
    }

    /// Target hardware address.
    pub fn target_mac(&self) -> MacAddress {
        self.mac(field::TARGET_MAC)
    }

    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        self.ip(field::TARGET_IP)
    }
}

/// An Ethernet/IPv4 ARP frame as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    /// Ethernet destination (broadcast for a request).
    pub ethernet_destination: MacAddress,
    /// Ethernet source.
    pub ethernet_source: MacAddress,
    /// Request, reply, or other.
    pub operation: ArpOperation,
    /// Sender hardware address.
    pub sender_mac: MacAddress,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address (zero in a request, as Linux sends it).
    pub target_mac: MacAddress,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    /// A broadcast request from `our_mac` / `our_ip` asking for `target`, in the form Linux
    /// sends (target hardware address zero). `our_ip` may be 0.0.0.0 (an RFC 5227 probe: the
    /// target answers without learning anything about us).
    pub const fn request(our_mac: MacAddress, our_ip: Ipv4Addr, target: Ipv4Addr) -> ArpRepr {
        ArpRepr {
            ethernet_destination: BROADCAST,
            ethernet_source: our_mac,
            operation: ArpOperation::Request,
            sender_mac: our_mac,
            sender_ip: our_ip,
            target_mac: [0; 6],
            target_ip: target,
        }
    }

    /// Reads a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &ArpFrame<T>) -> ArpRepr {
        ArpRepr {
            ethernet_destination: frame.ethernet_destination(),
            ethernet_source: frame.ethernet_source(),
            operation: frame.operation(),
            sender_mac: frame.sender_mac(),
            sender_ip: frame.sender_ip(),
            target_mac: frame.target_mac(),
            target_ip: frame.target_ip(),
        }
    }

    /// Bytes [`ArpRepr::emit`] writes.
    pub const fn buffer_len(&self) -> usize {
        ARP_FRAME_LEN
    }

    /// Writes the frame (no padding: the NIC or the kernel pads to 60 bytes) into `buffer` and
    /// returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, ArpError> {
        let len = buffer.len();
        let Some(out) = buffer.get_mut(..ARP_FRAME_LEN) else {
            return Err(ArpError::BufferTooSmall {
                needed: ARP_FRAME_LEN,
                len,
            });
        };
        out[field::ETH_DESTINATION].copy_from_slice(&self.ethernet_destination);
        out[field::ETH_SOURCE].copy_from_slice(&self.ethernet_source);
        out[field::ETHERTYPE].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
        out[field::HARDWARE_TYPE].copy_from_slice(&HARDWARE_ETHERNET.to_be_bytes());
        out[field::PROTOCOL_TYPE].copy_from_slice(&PROTOCOL_IPV4.to_be_bytes());
        out[field::HARDWARE_LEN] = 6;
        out[field::PROTOCOL_LEN] = 4;
        out[field::OPERATION].copy_from_slice(&u16::from(self.operation).to_be_bytes());
        out[field::SENDER_MAC].copy_from_slice(&self.sender_mac);
        out[field::SENDER_IP].copy_from_slice(&self.sender_ip.octets());
        out[field::TARGET_MAC].copy_from_slice(&self.target_mac);
        out[field::TARGET_IP].copy_from_slice(&self.target_ip.octets());
        Ok(ARP_FRAME_LEN)
    }
}

/// Writes a broadcast ARP request for `target` from `our_mac` / `our_ip` into `buffer` and
/// returns its length ([`ARP_FRAME_LEN`]). See [`ArpRepr::request`].
pub fn emit_arp_request(
    our_mac: MacAddress,
    our_ip: Ipv4Addr,
    target: Ipv4Addr,
    buffer: &mut [u8],
) -> Result<usize, ArpError> {
    ArpRepr::request(our_mac, our_ip, target).emit(buffer)
}

/// A host that showed itself alive on the LAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpSender {
    /// Its IPv4 address (the sender protocol address).
    pub ip: Ipv4Addr,
    /// Its MAC (the sender hardware address).
    pub mac: MacAddress,
    /// What it sent.
    pub operation: ArpOperation,
}

/// Whether `frame` proves `target` alive: any Ethernet/IPv4 ARP (reply, request, gratuitous)
/// whose sender protocol address is `target` and whose sender hardware address is not
/// `our_mac` (so our own frames looped back never count). Everything else is `None`.
pub fn proof_of_life(frame: &[u8], target: Ipv4Addr, our_mac: MacAddress) -> Option<ArpSender> {
    let frame = ArpFrame::new_checked(frame).ok()?;
    let (ip, mac) = (frame.sender_ip(), frame.sender_mac());
    (ip == target && mac != our_mac && ip != Ipv4Addr::UNSPECIFIED).then_some(ArpSender {
        ip,
        mac,
        operation: frame.operation(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::{emit_gratuitous_arp, GRATUITOUS_ARP_LEN};

    const OURS: MacAddress = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    const PARTNER: MacAddress = [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef];
    const OUR_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    const PARTNER_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

    /// The ARP reply a Linux 6.18 kernel sent to the request below (tcpdump -xx on a veth).
    #[rustfmt::skip]
    const KERNEL_REPLY: [u8; 42] = [
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef, 0x08, 0x06,
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef,
        0xc0, 0x00, 0x02, 0x02, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0xc0, 0x00, 0x02, 0x01,
    ];

    /// The same reply as a physical NIC delivers it: zero-padded to the 60-byte minimum.
    fn padded_reply() -> [u8; 60] {
        let mut frame = [0u8; 60];
        frame[..ARP_FRAME_LEN].copy_from_slice(&KERNEL_REPLY);
        frame
    }

    /// The request is byte for byte the one the kernel sent in the same capture.
    #[test]
    fn request_has_the_linux_layout() {
        let mut buf = [0u8; 64];
        let n = emit_arp_request(OURS, OUR_IP, PARTNER_IP, &mut buf).unwrap();
        assert_eq!(n, ARP_FRAME_LEN);
        let expected: [u8; 42] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x06,
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56,
            192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 192, 0, 2, 2,
        ];
        assert_eq!(buf[..n], expected);
    }

    #[test]
    fn request_reads_back_through_smoltcp() {
        use smoltcp::wire::{ArpPacket, ArpRepr as SmolArp, EthernetFrame};
        let mut buf = [0u8; ARP_FRAME_LEN];
        emit_arp_request(OURS, OUR_IP, PARTNER_IP, &mut buf).unwrap();
        let frame = EthernetFrame::new_checked(&buf[..]).unwrap();
        let arp = SmolArp::parse(&ArpPacket::new_checked(frame.payload()).unwrap()).unwrap();
        let SmolArp::EthernetIpv4 {
            operation,
            source_protocol_addr,
            target_protocol_addr,
            ..
        } = arp
        else {
            panic!("not Ethernet/IPv4: {arp:?}");
        };
        assert_eq!(operation, smoltcp::wire::ArpOperation::Request);
        assert_eq!(source_protocol_addr, OUR_IP);
        assert_eq!(target_protocol_addr, PARTNER_IP);
    }

    #[test]
    fn the_kernel_reply_parses_padded_or_not_and_proves_life() {
        let padded = padded_reply();
        let frame = ArpFrame::new_checked(&padded[..]).unwrap();
        let repr = ArpRepr::parse(&frame);
        assert_eq!(repr.operation, ArpOperation::Reply);
        assert_eq!(repr.sender_mac, PARTNER);
        assert_eq!(repr.target_ip, OUR_IP);
        let mut again = [0u8; ARP_FRAME_LEN];
        repr.emit(&mut again).unwrap();
        assert_eq!(again, KERNEL_REPLY);
        assert_eq!(
            proof_of_life(&KERNEL_REPLY, PARTNER_IP, OURS),
            proof_of_life(&padded, PARTNER_IP, OURS)
        );
        assert_eq!(
            proof_of_life(&padded, PARTNER_IP, OURS),
            Some(ArpSender {
                ip: PARTNER_IP,
                mac: PARTNER,
                operation: ArpOperation::Reply
            })
        );
    }

    #[test]
    fn only_the_target_other_than_us_counts() {
        // Someone else's reply.
        assert_eq!(
            proof_of_life(&KERNEL_REPLY, Ipv4Addr::new(192, 0, 2, 3), OURS),
            None
        );
        // Our own frame looped back (sender MAC is ours).
        assert_eq!(proof_of_life(&KERNEL_REPLY, PARTNER_IP, PARTNER), None);
        // The partner's own request for some host, or its gratuitous ARP, counts too.
        let mut buf = [0u8; ARP_FRAME_LEN];
        emit_arp_request(PARTNER, PARTNER_IP, Ipv4Addr::new(192, 0, 2, 9), &mut buf).unwrap();
        assert!(proof_of_life(&buf, PARTNER_IP, OURS).is_some());
        let mut garp = [0u8; GRATUITOUS_ARP_LEN];
        emit_gratuitous_arp(PARTNER, PARTNER_IP, &mut garp).unwrap();
        let seen = proof_of_life(&garp, PARTNER_IP, OURS).unwrap();
        assert_eq!(seen.operation, ArpOperation::Request);
        // An RFC 5227 probe (sender 0.0.0.0) never proves 0.0.0.0 alive.
        emit_arp_request(PARTNER, Ipv4Addr::UNSPECIFIED, PARTNER_IP, &mut buf).unwrap();
        assert_eq!(proof_of_life(&buf, Ipv4Addr::UNSPECIFIED, OURS), None);
    }

    #[test]
    fn malformed_frames_are_refused_with_a_reason() {
        assert_eq!(
            ArpFrame::new_checked(&KERNEL_REPLY[..41]),
            Err(ArpError::Truncated { len: 41 })
        );
        let mut ipv4 = KERNEL_REPLY;
        ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(
            ArpFrame::new_checked(&ipv4[..]),
            Err(ArpError::NotArp { ethertype: 0x0800 })
        );
        let mut other = KERNEL_REPLY;
        other[18] = 8;
        assert_eq!(
            ArpFrame::new_checked(&other[..]),
            Err(ArpError::NotEthernetIpv4 {
                hardware: 1,
                protocol: 0x0800,
                hardware_len: 8,
                protocol_len: 4
            })
        );
        assert_eq!(
            emit_arp_request(OURS, OUR_IP, PARTNER_IP, &mut [0u8; 41]),
            Err(ArpError::BufferTooSmall {
                needed: 42,
                len: 41
            })
        );
        assert!(proof_of_life(&[], PARTNER_IP, OURS).is_none());
    }
}
