//! Frames a new master sends so the LAN moves the virtual addresses to it: a gratuitous ARP per
//! IPv4 address and an unsolicited Neighbor Advertisement per IPv6 address (RFC 9568 section
//! 6.4.2, "Active_Down_Timer fires").
//!
//! Built with smoltcp's `wire` types; the byte layout matches what keepalived sends (see the
//! golden captures), so switches and hosts that cope with keepalived cope with us.

use core::fmt;
use core::net::{Ipv4Addr, Ipv6Addr};

use smoltcp::phy::ChecksumCapabilities;
use smoltcp::wire::{
    ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame, EthernetProtocol,
    EthernetRepr, Icmpv6Packet, Icmpv6Repr, IpProtocol, Ipv6Packet, Ipv6Repr, NdiscNeighborFlags,
    NdiscRepr, RawHardwareAddress,
};

use crate::vrrp::Family;

/// A 48-bit Ethernet MAC address.
pub type MacAddress = [u8; 6];

/// Length of a gratuitous ARP frame (Ethernet header + ARP, no padding).
pub const GRATUITOUS_ARP_LEN: usize = 14 + 28;
/// Length of an unsolicited NA frame (Ethernet + IPv6 + NA with target link-layer option).
pub const UNSOLICITED_NA_LEN: usize = 14 + 40 + 32;

/// IPv6 all-nodes multicast (ff02::1), destination of unsolicited NAs.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// Why an announcement frame could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnnounceError {
    /// The output buffer is too small.
    BufferTooSmall {
        /// Bytes the frame needs.
        needed: usize,
        /// Bytes available.
        len: usize,
    },
}

impl fmt::Display for AnnounceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            AnnounceError::BufferTooSmall { needed, len } => write!(
                f,
                "buffer of {len} bytes cannot hold a {needed}-byte announcement frame; pass a larger buffer"
            ),
        }
    }
}

/// The VRRP virtual router MAC: 00-00-5E-00-01-{VRID} for IPv4, 00-00-5E-00-02-{VRID} for IPv6
/// (RFC 9568 section 7.3).
pub const fn virtual_mac(vrid: u8, family: Family) -> MacAddress {
    let kind = match family {
        Family::Ipv4 => 0x01,
        Family::Ipv6 => 0x02,
    };
    [0x00, 0x00, 0x5e, 0x00, kind, vrid]
}

/// Writes a broadcast gratuitous ARP for `address` into `buffer` and returns its length.
///
/// Same form as keepalived: an ARP request from `source_mac` with sender and target protocol
/// address both `address` and target hardware address ff:ff:ff:ff:ff:ff.
pub fn emit_gratuitous_arp(
    source_mac: MacAddress,
    address: Ipv4Addr,
    buffer: &mut [u8],
) -> Result<usize, AnnounceError> {
    let len = buffer.len();
    let Some(out) = buffer.get_mut(..GRATUITOUS_ARP_LEN) else {
        return Err(AnnounceError::BufferTooSmall {
            needed: GRATUITOUS_ARP_LEN,
            len,
        });
    };
    let source = EthernetAddress(source_mac);
    let ethernet = EthernetRepr {
        src_addr: source,
        dst_addr: EthernetAddress::BROADCAST,
        ethertype: EthernetProtocol::Arp,
    };
    let arp = ArpRepr::EthernetIpv4 {
        operation: ArpOperation::Request,
        source_hardware_addr: source,
        source_protocol_addr: address,
        target_hardware_addr: EthernetAddress::BROADCAST,
        target_protocol_addr: address,
    };
    let mut frame = EthernetFrame::new_unchecked(out);
    ethernet.emit(&mut frame);
    arp.emit(&mut ArpPacket::new_unchecked(frame.payload_mut()));
    Ok(GRATUITOUS_ARP_LEN)
}

/// Writes an unsolicited Neighbor Advertisement for `address` to ff02::1 into `buffer` and
/// returns its length: Override set, Router set when `router` (RFC 9568 wants it for a
/// router; keepalived leaves it clear), target link-layer address option `source_mac`, hop
/// limit 255, source address `address` itself (as keepalived does).
pub fn emit_unsolicited_na(
    source_mac: MacAddress,
    address: Ipv6Addr,
    router: bool,
    buffer: &mut [u8],
) -> Result<usize, AnnounceError> {
    let len = buffer.len();
    let Some(out) = buffer.get_mut(..UNSOLICITED_NA_LEN) else {
        return Err(AnnounceError::BufferTooSmall {
            needed: UNSOLICITED_NA_LEN,
            len,
        });
    };
    let mut flags = NdiscNeighborFlags::OVERRIDE;
    if router {
        flags |= NdiscNeighborFlags::ROUTER;
    }
    let icmp = Icmpv6Repr::Ndisc(NdiscRepr::NeighborAdvert {
        flags,
        target_addr: address,
        lladdr: Some(RawHardwareAddress::from(EthernetAddress(source_mac))),
    });
    let ipv6 = Ipv6Repr {
        src_addr: address,
        dst_addr: ALL_NODES,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.buffer_len(),
        hop_limit: 255,
    };
    let ethernet = EthernetRepr {
        src_addr: EthernetAddress(source_mac),
        // 33:33 + low 32 bits of ff02::1.
        dst_addr: EthernetAddress([0x33, 0x33, 0, 0, 0, 1]),
        ethertype: EthernetProtocol::Ipv6,
    };
    let mut frame = EthernetFrame::new_unchecked(out);
    ethernet.emit(&mut frame);
    let mut ip_packet = Ipv6Packet::new_unchecked(frame.payload_mut());
    ipv6.emit(&mut ip_packet);
    let mut icmp_packet = Icmpv6Packet::new_unchecked(ip_packet.payload_mut());
    icmp.emit(
        &address,
        &ALL_NODES,
        &mut icmp_packet,
        &ChecksumCapabilities::default(),
    );
    Ok(UNSOLICITED_NA_LEN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn virtual_macs_follow_rfc_9568() {
        assert_eq!(virtual_mac(10, Family::Ipv4), [0, 0, 0x5e, 0, 1, 10]);
        assert_eq!(virtual_mac(255, Family::Ipv6), [0, 0, 0x5e, 0, 2, 255]);
    }

    #[test]
    fn router_flag_is_set_on_request() {
        let mut buf = [0u8; UNSOLICITED_NA_LEN];
        emit_unsolicited_na([2, 0, 0, 0, 0, 1], Ipv6Addr::LOCALHOST, true, &mut buf).unwrap();
        // ICMPv6 starts at 14 + 40; flags byte is at offset 4 of the NA.
        assert_eq!(buf[14 + 40 + 4], 0xa0);
    }

    #[test]
    fn short_buffers_are_refused() {
        let mut buf = [0u8; 41];
        assert_eq!(
            emit_gratuitous_arp([0; 6], Ipv4Addr::LOCALHOST, &mut buf),
            Err(AnnounceError::BufferTooSmall {
                needed: 42,
                len: 41
            })
        );
    }
}
