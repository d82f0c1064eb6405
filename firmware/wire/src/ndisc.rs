//! IPv6 Neighbor Discovery (RFC 4861) for the LAN liveness probe: the Neighbor Solicitation a
//! backup sends for its partner's address, and the zero-copy view that reads (and fully
//! validates) the Neighbor Advertisement the partner's kernel answers with.
//!
//! Frames here are whole Ethernet frames (destination MAC first), as an `AF_PACKET` raw socket
//! sends and receives them. The unsolicited NA a new master sends lives in
//! [`crate::announce`]; an NA it emits parses here too.

use core::fmt;
use core::net::Ipv6Addr;

use crate::announce::MacAddress;
use crate::checksum;

/// Ethertype of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// Length of a Neighbor Solicitation frame with the source link-layer address option
/// (Ethernet + IPv6 + 24-byte NS + 8-byte option).
pub const NEIGHBOR_SOLICITATION_LEN: usize = ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + NS_LEN + 8;
/// Length of a Neighbor Solicitation from the unspecified address (no option allowed).
pub const NEIGHBOR_SOLICITATION_DAD_LEN: usize = ETHERNET_HEADER_LEN + IPV6_HEADER_LEN + NS_LEN;
/// Hop limit every Neighbor Discovery message is sent with and must arrive with.
pub const NDISC_HOP_LIMIT: u8 = 255;

const ETHERNET_HEADER_LEN: usize = 14;
const IPV6_HEADER_LEN: usize = 40;
const NS_LEN: usize = 24;
const NA_LEN: usize = 24;
const NEXT_HEADER_ICMPV6: u8 = 58;
const NEIGHBOR_SOLICITATION: u8 = 135;
const NEIGHBOR_ADVERTISEMENT: u8 = 136;
const OPTION_SOURCE_LLADDR: u8 = 1;
const OPTION_TARGET_LLADDR: u8 = 2;
const IP: usize = ETHERNET_HEADER_LEN;
const ICMP: usize = ETHERNET_HEADER_LEN + IPV6_HEADER_LEN;

/// The solicited-node multicast address of `address` (ff02::1:ffXX:XXXX, RFC 4291 2.7.1):
/// where a Neighbor Solicitation for `address` is sent.
pub const fn solicited_node(address: Ipv6Addr) -> Ipv6Addr {
    let o = address.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | o[13] as u16,
        (o[14] as u16) << 8 | o[15] as u16,
    )
}

/// The Ethernet multicast MAC an IPv6 multicast address maps to (33:33 + its low 32 bits).
pub const fn multicast_mac(group: Ipv6Addr) -> MacAddress {
    let o = group.octets();
    [0x33, 0x33, o[12], o[13], o[14], o[15]]
}

/// Neighbor Advertisement flags (RFC 4861 section 4.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AdvertFlags {
    /// R: the sender is a router.
    pub router: bool,
    /// S: sent in answer to a solicitation.
    pub solicited: bool,
    /// O: override an existing cache entry.
    pub override_: bool,
}

/// Why bytes are not a valid Neighbor Advertisement frame, or why a frame could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NdiscError {
    /// The output buffer is too small.
    BufferTooSmall {
        /// Bytes the frame needs.
        needed: usize,
        /// Bytes available.
        len: usize,
    },
    /// Fewer bytes than the headers need.
    Truncated {
        /// Bytes needed so far.
        needed: usize,
        /// Bytes received.
        len: usize,
    },
    /// The Ethernet frame carries another protocol.
    NotIpv6 {
        /// The ethertype found.
        ethertype: u16,
    },
    /// The IP header's version nibble is not 6.
    BadVersion {
        /// Version found.
        version: u8,
    },
    /// The IPv6 payload length runs past the end of the frame.
    PayloadLength {
        /// Payload length the header declares.
        declared: usize,
        /// Bytes after the IPv6 header.
        available: usize,
    },
    /// The next header is not ICMPv6 (extension headers are not followed).
    NotIcmpv6 {
        /// Next header found.
        next_header: u8,
    },
    /// Hop limit other than 255: the message crossed a router and must be ignored (RFC 4861
    /// section 7.1.2).
    HopLimit {
        /// Hop limit found.
        hop_limit: u8,
    },
    /// ICMPv6, but not a Neighbor Advertisement (type 136, code 0).
    NotNeighborAdvert {
        /// ICMPv6 type found.
        icmp_type: u8,
        /// ICMPv6 code found.
        code: u8,
    },
    /// The ICMPv6 checksum over the pseudo-header and message does not verify.
    BadChecksum,
    /// An option with length zero or running past the message.
    BadOption {
        /// Offset of the option inside the ICMPv6 message.
        offset: usize,
    },
    /// The target address is multicast (RFC 4861 section 7.1.2).
    MulticastTarget,
    /// Solicited flag set on an advert sent to a multicast group (RFC 4861 section 7.1.2).
    SolicitedToMulticast,
}

impl fmt::Display for NdiscError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            NdiscError::BufferTooSmall { needed, len } => write!(
                f,
                "buffer of {len} bytes cannot hold a {needed}-byte neighbor discovery frame; \
                 pass a larger buffer"
            ),
            NdiscError::Truncated { needed, len } => write!(
                f,
                "{len}-byte frame is shorter than the {needed} bytes its headers need; receive \
                 whole frames (AF_PACKET SOCK_RAW) into a buffer of at least 1514 bytes"
            ),
            NdiscError::NotIpv6 { ethertype } => write!(
                f,
                "ethertype {ethertype:#06x} is not IPv6 (0x86dd); bind the socket to ETH_P_IPV6"
            ),
            NdiscError::BadVersion { version } => {
                write!(
                    f,
                    "IP version {version} in an IPv6 ethertype frame; frame is corrupt"
                )
            }
            NdiscError::PayloadLength {
                declared,
                available,
            } => write!(
                f,
                "IPv6 payload length {declared} exceeds the {available} bytes received; frame \
                 is truncated"
            ),
            NdiscError::NotIcmpv6 { next_header } => write!(
                f,
                "IPv6 next header {next_header} is not ICMPv6 (58); neighbor discovery from \
                 Linux carries no extension headers"
            ),
            NdiscError::HopLimit { hop_limit } => write!(
                f,
                "hop limit {hop_limit} is not 255: the message was routed, and RFC 4861 says \
                 to ignore it"
            ),
            NdiscError::NotNeighborAdvert { icmp_type, code } => write!(
                f,
                "ICMPv6 type {icmp_type} code {code} is not a Neighbor Advertisement (136/0)"
            ),
            NdiscError::BadChecksum => write!(
                f,
                "ICMPv6 checksum does not verify; the frame was corrupted (or checksum \
                 offload left it unfilled on a locally generated frame)"
            ),
            NdiscError::BadOption { offset } => write!(
                f,
                "neighbor discovery option at offset {offset} has length zero or runs past the \
                 message; RFC 4861 says to discard it"
            ),
            NdiscError::MulticastTarget => {
                write!(
                    f,
                    "Neighbor Advertisement for a multicast target is invalid"
                )
            }
            NdiscError::SolicitedToMulticast => write!(
                f,
                "Neighbor Advertisement to a multicast group with the Solicited flag is invalid"
            ),
        }
    }
}

fn word(bytes: &[u8], at: usize) -> u16 {
    match bytes.get(at..at + 2) {
        Some(&[high, low]) => u16::from_be_bytes([high, low]),
        _ => 0,
    }
}

fn ipv6_at(bytes: &[u8], at: usize) -> Ipv6Addr {
    let mut octets = [0u8; 16];
    if let Some(slice) = bytes.get(at..at + 16) {
        octets.copy_from_slice(slice);
    }
    Ipv6Addr::from(octets)
}

fn mac_at(bytes: &[u8], at: usize) -> MacAddress {
    let mut mac = [0u8; 6];
    if let Some(slice) = bytes.get(at..at + 6) {
        mac.copy_from_slice(slice);
    }
    mac
}

/// A Neighbor Solicitation as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighborSolicitRepr {
    /// Our MAC: Ethernet source and the source link-layer address option.
    pub source_mac: MacAddress,
    /// Our address on the link (link-local or global), or `::` for a DAD-style probe (the
    /// target then answers to ff02::1 and the frame carries no option, as RFC 4861 demands).
    pub source: Ipv6Addr,
    /// The address whose owner we look for.
    pub target: Ipv6Addr,
}

impl NeighborSolicitRepr {
    /// Bytes [`NeighborSolicitRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        if self.source.is_unspecified() {
            NEIGHBOR_SOLICITATION_DAD_LEN
        } else {
            NEIGHBOR_SOLICITATION_LEN
        }
    }

    /// Writes the whole frame to the target's solicited-node group (hop limit 255, ICMPv6
    /// checksum filled in) into `buffer` and returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, NdiscError> {
        let needed = self.buffer_len();
        let len = buffer.len();
        let Some(out) = buffer.get_mut(..needed) else {
            return Err(NdiscError::BufferTooSmall { needed, len });
        };
        out.fill(0);
        let group = solicited_node(self.target);
        let icmp_len = needed - ICMP;
        out[0..6].copy_from_slice(&multicast_mac(group));
        out[6..12].copy_from_slice(&self.source_mac);
        out[12..14].copy_from_slice(&ETHERTYPE_IPV6.to_be_bytes());
        out[IP] = 0x60;
        // `icmp_len` is 24 or 32.
        out[IP + 4..IP + 6].copy_from_slice(&u16::try_from(icmp_len).unwrap_or(0).to_be_bytes());
        out[IP + 6] = NEXT_HEADER_ICMPV6;
        out[IP + 7] = NDISC_HOP_LIMIT;
        out[IP + 8..IP + 24].copy_from_slice(&self.source.octets());
        out[IP + 24..IP + 40].copy_from_slice(&group.octets());
        out[ICMP] = NEIGHBOR_SOLICITATION;
        out[ICMP + 8..ICMP + 24].copy_from_slice(&self.target.octets());
        if !self.source.is_unspecified() {
            out[ICMP + 24] = OPTION_SOURCE_LLADDR;
            out[ICMP + 25] = 1;
            out[ICMP + 26..ICMP + 32].copy_from_slice(&self.source_mac);
        }
        let pseudo = checksum::ipv6_pseudo_header(
            self.source,
            group,
            NEXT_HEADER_ICMPV6,
            u32::try_from(icmp_len).unwrap_or(0),
        );
        let sum = checksum::finish(checksum::accumulate(pseudo, &out[ICMP..]));
        out[ICMP + 2..ICMP + 4].copy_from_slice(&sum.to_be_bytes());
        Ok(needed)
    }
}

/// Writes a Neighbor Solicitation for `target` from `our_mac` / `our_ip` into `buffer` and
/// returns its length. See [`NeighborSolicitRepr`].
pub fn emit_neighbor_solicitation(
    our_mac: MacAddress,
    our_ip: Ipv6Addr,
    target: Ipv6Addr,
    buffer: &mut [u8],
) -> Result<usize, NdiscError> {
    NeighborSolicitRepr {
        source_mac: our_mac,
        source: our_ip,
        target,
    }
    .emit(buffer)
}

/// A zero-copy view of an Ethernet frame carrying a valid Neighbor Advertisement.
///
/// [`NeighborAdvertFrame::new_checked`] runs every receive check RFC 4861 section 7.1.2 asks
/// for (hop limit 255, ICMPv6 type 136 code 0, checksum, length, options, target not
/// multicast, no Solicited flag to a group), so accessors never fail afterwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighborAdvertFrame<T: AsRef<[u8]>> {
    buffer: T,
    /// End of the ICMPv6 message (IPv6 payload length applied; Ethernet padding excluded).
    end: usize,
}

impl<T: AsRef<[u8]>> NeighborAdvertFrame<T> {
    /// Wraps `buffer` after validating it.
    pub fn new_checked(buffer: T) -> Result<NeighborAdvertFrame<T>, NdiscError> {
        let bytes = buffer.as_ref();
        let len = bytes.len();
        if len < ICMP {
            return Err(NdiscError::Truncated { needed: ICMP, len });
        }
        let ethertype = word(bytes, 12);
        if ethertype != ETHERTYPE_IPV6 {
            return Err(NdiscError::NotIpv6 { ethertype });
        }
        let version = bytes.get(IP).map_or(0, |b| b >> 4);
        if version != 6 {
            return Err(NdiscError::BadVersion { version });
        }
        let declared = usize::from(word(bytes, IP + 4));
        let available = len - ICMP;
        if declared > available {
            return Err(NdiscError::PayloadLength {
                declared,
                available,
            });
        }
        let next_header = bytes.get(IP + 6).copied().unwrap_or(0);
        if next_header != NEXT_HEADER_ICMPV6 {
            return Err(NdiscError::NotIcmpv6 { next_header });
        }
        let hop_limit = bytes.get(IP + 7).copied().unwrap_or(0);
        if hop_limit != NDISC_HOP_LIMIT {
            return Err(NdiscError::HopLimit { hop_limit });
        }
        let end = ICMP + declared;
        let Some(message) = bytes.get(ICMP..end) else {
            return Err(NdiscError::PayloadLength {
                declared,
                available,
            });
        };
        let (icmp_type, code) = match message {
            [icmp_type, code, ..] => (*icmp_type, *code),
            _ => (0, 0),
        };
        if message.len() < 2 || icmp_type != NEIGHBOR_ADVERTISEMENT || code != 0 {
            return Err(NdiscError::NotNeighborAdvert { icmp_type, code });
        }
        if message.len() < NA_LEN {
            return Err(NdiscError::Truncated {
                needed: ICMP + NA_LEN,
                len: end,
            });
        }
        let source = ipv6_at(bytes, IP + 8);
        let destination = ipv6_at(bytes, IP + 24);
        let pseudo = checksum::ipv6_pseudo_header(
            source,
            destination,
            NEXT_HEADER_ICMPV6,
            u32::try_from(declared).unwrap_or(u32::MAX),
        );
        if checksum::finish(checksum::accumulate(pseudo, message)) != 0 {
            return Err(NdiscError::BadChecksum);
        }
        let mut offset = NA_LEN;
        while offset < message.len() {
            let units = message.get(offset + 1).copied().unwrap_or(0);
            let next = offset + usize::from(units) * 8;
            if units == 0 || next > message.len() {
                return Err(NdiscError::BadOption { offset });
            }
            offset = next;
        }
        let frame = NeighborAdvertFrame { buffer, end };
        if frame.target().is_multicast() {
            return Err(NdiscError::MulticastTarget);
        }
        if frame.destination().is_multicast() && frame.flags().solicited {
            return Err(NdiscError::SolicitedToMulticast);
        }
        Ok(frame)
    }

    fn bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }

    /// Ethernet source MAC.
    pub fn ethernet_source(&self) -> MacAddress {
        mac_at(self.bytes(), 6)
    }

    /// Ethernet destination MAC.
    pub fn ethernet_destination(&self) -> MacAddress {
        mac_at(self.bytes(), 0)
    }

    /// IPv6 source address.
    pub fn source(&self) -> Ipv6Addr {
        ipv6_at(self.bytes(), IP + 8)
    }

    /// IPv6 destination address.
    pub fn destination(&self) -> Ipv6Addr {
        ipv6_at(self.bytes(), IP + 24)
    }

    /// Router / Solicited / Override flags.
    pub fn flags(&self) -> AdvertFlags {
        let byte = self.bytes().get(ICMP + 4).copied().unwrap_or(0);
        AdvertFlags {
            router: byte & 0x80 != 0,
            solicited: byte & 0x40 != 0,
            override_: byte & 0x20 != 0,
        }
    }

    /// The address the advert is about.
    pub fn target(&self) -> Ipv6Addr {
        ipv6_at(self.bytes(), ICMP + 8)
    }

    /// The target link-layer address option, when present with a 6-byte address.
    pub fn target_mac(&self) -> Option<MacAddress> {
        let message = self.bytes().get(ICMP..self.end)?;
        let mut offset = NA_LEN;
        while let (Some(&kind), Some(&units)) = (message.get(offset), message.get(offset + 1)) {
            if kind == OPTION_TARGET_LLADDR && units == 1 {
                return Some(mac_at(message, offset + 2));
            }
            if units == 0 {
                return None;
            }
            offset += usize::from(units) * 8;
        }
        None
    }
}

/// A Neighbor Advertisement as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighborAdvertRepr {
    /// Ethernet source MAC.
    pub ethernet_source: MacAddress,
    /// IPv6 source.
    pub source: Ipv6Addr,
    /// IPv6 destination.
    pub destination: Ipv6Addr,
    /// R / S / O.
    pub flags: AdvertFlags,
    /// The address advertised.
    pub target: Ipv6Addr,
    /// The target link-layer address option, if any.
    pub target_mac: Option<MacAddress>,
}

impl NeighborAdvertRepr {
    /// Reads a checked frame.
    pub fn parse<T: AsRef<[u8]>>(frame: &NeighborAdvertFrame<T>) -> NeighborAdvertRepr {
        NeighborAdvertRepr {
            ethernet_source: frame.ethernet_source(),
            source: frame.source(),
            destination: frame.destination(),
            flags: frame.flags(),
            target: frame.target(),
            target_mac: frame.target_mac(),
        }
    }
}

/// A host that showed itself alive on the LAN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdiscSender {
    /// The advertised (probed) address.
    pub ip: Ipv6Addr,
    /// Its MAC: the target link-layer address option, else the Ethernet source.
    pub mac: MacAddress,
    /// The advert's flags.
    pub flags: AdvertFlags,
}

/// Whether `frame` proves `target` alive: a valid Neighbor Advertisement for `target` whose
/// Ethernet source is not `our_mac` (our own frames looped back never count).
pub fn proof_of_life(frame: &[u8], target: Ipv6Addr, our_mac: MacAddress) -> Option<NdiscSender> {
    let frame = NeighborAdvertFrame::new_checked(frame).ok()?;
    let ethernet_source = frame.ethernet_source();
    if frame.target() != target || ethernet_source == our_mac {
        return None;
    }
    Some(NdiscSender {
        ip: target,
        mac: frame.target_mac().unwrap_or(ethernet_source),
        flags: frame.flags(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::announce::{emit_unsolicited_na, UNSOLICITED_NA_LEN};

    const OURS: MacAddress = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];
    const PARTNER: MacAddress = [0x52, 0x54, 0x00, 0xab, 0xcd, 0xef];
    const OUR_IP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
    const PARTNER_IP: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0xab, 0xcd02);

    /// The Neighbor Solicitation the kernel (Linux 6.18) itself sent from `OUR_IP` for
    /// `PARTNER_IP` (tcpdump -xx on a veth, `ping -6` to an unresolved neighbour).
    #[rustfmt::skip]
    const KERNEL_NS: [u8; 86] = [
        0x33, 0x33, 0xff, 0xab, 0xcd, 0x02, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x86, 0xdd,
        0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0x02, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0xff, 0xab, 0xcd, 0x02, 0x87, 0x00,
        0xfc, 0x13, 0x00, 0x00, 0x00, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0xab, 0xcd, 0x02, 0x01, 0x01, 0x52, 0x54, 0x00, 0x12,
        0x34, 0x56,
    ];

    /// The partner kernel's answer to it: unicast back, flags S|O, target link-layer address
    /// option, hop limit 255, checksum 0xd02c (same capture).
    #[rustfmt::skip]
    const KERNEL_NA: [u8; 86] = [
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x52, 0x54, 0x00, 0xab, 0xcd, 0xef, 0x86, 0xdd,
        0x60, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xab, 0xcd, 0x02, 0x20, 0x01, 0x0d, 0xb8,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x88, 0x00,
        0xd0, 0x2c, 0x60, 0x00, 0x00, 0x00, 0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0xab, 0xcd, 0x02, 0x02, 0x01, 0x52, 0x54, 0x00, 0xab,
        0xcd, 0xef,
    ];

    #[test]
    fn solicited_node_group_and_mac() {
        assert_eq!(
            solicited_node(PARTNER_IP),
            "ff02::1:ffab:cd02".parse::<Ipv6Addr>().unwrap()
        );
        assert_eq!(
            multicast_mac(solicited_node(PARTNER_IP)),
            [0x33, 0x33, 0xff, 0xab, 0xcd, 0x02]
        );
    }

    #[test]
    fn solicitation_is_byte_for_byte_what_the_kernel_sends() {
        let mut buf = [0u8; 128];
        let n = emit_neighbor_solicitation(OURS, OUR_IP, PARTNER_IP, &mut buf).unwrap();
        assert_eq!(n, NEIGHBOR_SOLICITATION_LEN);
        assert_eq!(buf[..n], KERNEL_NS);
        // The checksum verifies (sums to zero) over pseudo-header + message.
        let pseudo = checksum::ipv6_pseudo_header(OUR_IP, solicited_node(PARTNER_IP), 58, 32);
        assert_eq!(
            checksum::finish(checksum::accumulate(pseudo, &buf[54..n])),
            0
        );
        assert_eq!(buf[56..58], [0xfc, 0x13]);
    }

    #[test]
    fn solicitation_reads_back_through_smoltcp_with_its_checksum() {
        use smoltcp::phy::ChecksumCapabilities;
        use smoltcp::wire::{
            EthernetFrame, Icmpv6Packet, Icmpv6Repr, Ipv6Packet, NdiscRepr, RawHardwareAddress,
        };
        let mut buf = [0u8; NEIGHBOR_SOLICITATION_LEN];
        emit_neighbor_solicitation(OURS, OUR_IP, PARTNER_IP, &mut buf).unwrap();
        let ethernet = EthernetFrame::new_checked(&buf[..]).unwrap();
        let ip = Ipv6Packet::new_checked(ethernet.payload()).unwrap();
        assert_eq!(ip.hop_limit(), 255);
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(&ip.src_addr(), &ip.dst_addr()));
        let repr = Icmpv6Repr::parse(
            &ip.src_addr(),
            &ip.dst_addr(),
            &icmp,
            &ChecksumCapabilities::default(),
        )
        .unwrap();
        assert_eq!(
            repr,
            Icmpv6Repr::Ndisc(NdiscRepr::NeighborSolicit {
                target_addr: PARTNER_IP,
                lladdr: Some(RawHardwareAddress::from_bytes(&OURS)),
            })
        );
    }

    #[test]
    fn dad_style_solicitation_has_no_option() {
        let mut buf = [0u8; 128];
        let n =
            emit_neighbor_solicitation(OURS, Ipv6Addr::UNSPECIFIED, PARTNER_IP, &mut buf).unwrap();
        assert_eq!(n, NEIGHBOR_SOLICITATION_DAD_LEN);
        assert_eq!(buf[18..20], [0, 24]);
        let pseudo =
            checksum::ipv6_pseudo_header(Ipv6Addr::UNSPECIFIED, solicited_node(PARTNER_IP), 58, 24);
        assert_eq!(
            checksum::finish(checksum::accumulate(pseudo, &buf[54..n])),
            0
        );
    }

    #[test]
    fn kernel_answer_parses_and_proves_life() {
        let answer = KERNEL_NA;
        let frame = NeighborAdvertFrame::new_checked(&answer[..]).unwrap();
        let repr = NeighborAdvertRepr::parse(&frame);
        assert_eq!(
            repr,
            NeighborAdvertRepr {
                ethernet_source: PARTNER,
                source: PARTNER_IP,
                destination: OUR_IP,
                flags: AdvertFlags {
                    router: false,
                    solicited: true,
                    override_: true
                },
                target: PARTNER_IP,
                target_mac: Some(PARTNER),
            }
        );
        let seen = proof_of_life(&answer, PARTNER_IP, OURS).unwrap();
        assert_eq!(seen.mac, PARTNER);
        assert_eq!(proof_of_life(&answer, OUR_IP, OURS), None);
        assert_eq!(proof_of_life(&answer, PARTNER_IP, PARTNER), None);
    }

    #[test]
    fn unsolicited_na_from_announce_parses() {
        let mut buf = [0u8; UNSOLICITED_NA_LEN];
        emit_unsolicited_na(PARTNER, PARTNER_IP, true, &mut buf).unwrap();
        let frame = NeighborAdvertFrame::new_checked(&buf[..]).unwrap();
        assert_eq!(frame.target(), PARTNER_IP);
        assert_eq!(frame.target_mac(), Some(PARTNER));
        assert!(frame.flags().router && frame.flags().override_ && !frame.flags().solicited);
        assert!(proof_of_life(&buf, PARTNER_IP, OURS).is_some());
    }

    #[test]
    fn advert_without_option_takes_the_ethernet_source() {
        let mut answer = KERNEL_NA;
        answer[18..20].copy_from_slice(&[0, 24]);
        let pseudo = checksum::ipv6_pseudo_header(PARTNER_IP, OUR_IP, 58, 24);
        answer[56..58].fill(0);
        let sum = checksum::finish(checksum::accumulate(pseudo, &answer[54..78]));
        answer[56..58].copy_from_slice(&sum.to_be_bytes());
        let frame = NeighborAdvertFrame::new_checked(&answer[..78]).unwrap();
        assert_eq!(frame.target_mac(), None);
        // Trailing bytes past the payload length (padding) are ignored.
        assert_eq!(
            proof_of_life(&answer, PARTNER_IP, OURS).map(|s| s.mac),
            Some(PARTNER)
        );
    }

    #[test]
    fn every_receive_check_refuses_with_a_reason() {
        let good = KERNEL_NA;
        let check = |edit: &dyn Fn(&mut [u8; 86])| {
            let mut frame = good;
            edit(&mut frame);
            NeighborAdvertFrame::new_checked(&frame[..]).map(|_| ())
        };
        assert_eq!(
            NeighborAdvertFrame::new_checked(&good[..40]).map(|_| ()),
            Err(NdiscError::Truncated {
                needed: 54,
                len: 40
            })
        );
        assert_eq!(
            check(&|f| f[12] = 0x08),
            Err(NdiscError::NotIpv6 { ethertype: 0x08dd })
        );
        assert_eq!(
            check(&|f| f[14] = 0x40),
            Err(NdiscError::BadVersion { version: 4 })
        );
        assert_eq!(
            check(&|f| f[19] = 33),
            Err(NdiscError::PayloadLength {
                declared: 33,
                available: 32
            })
        );
        assert_eq!(
            check(&|f| f[20] = 0),
            Err(NdiscError::NotIcmpv6 { next_header: 0 })
        );
        assert_eq!(
            check(&|f| f[21] = 64),
            Err(NdiscError::HopLimit { hop_limit: 64 })
        );
        assert_eq!(
            check(&|f| f[54] = 135),
            Err(NdiscError::NotNeighborAdvert {
                icmp_type: 135,
                code: 0
            })
        );
        assert_eq!(check(&|f| f[70] ^= 1), Err(NdiscError::BadChecksum));
        assert_eq!(
            check(&|f| {
                // Option length zero, checksum adjusted so only the option check can fail.
                f[79] = 0;
                f[57] = f[57].wrapping_add(1);
                if f[57] == 0 {
                    f[56] = f[56].wrapping_add(1);
                }
            }),
            Err(NdiscError::BadOption { offset: 24 })
        );
        assert_eq!(
            emit_neighbor_solicitation(OURS, OUR_IP, PARTNER_IP, &mut [0u8; 85]),
            Err(NdiscError::BufferTooSmall {
                needed: 86,
                len: 85
            })
        );
    }
}
