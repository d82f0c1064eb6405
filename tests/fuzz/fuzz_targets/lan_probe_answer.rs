//! The LAN liveness probe's answer parsers (ARP and Neighbor Advertisement frames off the
//! service LAN, where anyone can send anything) must refuse any bytes without panicking; what
//! the ARP view accepts must re-emit to the same 42 bytes, an accepted advert's checksum must
//! verify, and a solicitation built from the input must never pass for an advert. A repaired
//! copy of the input (IPv6 / ICMPv6 type 136 headers forced, length and checksum fixed up)
//! takes the fuzzer past the checksum into the option and flag checks.
#![no_main]

use std::net::{Ipv4Addr, Ipv6Addr};

use tandem_wire::arp::{self, ArpFrame, ArpRepr, ARP_FRAME_LEN};
use tandem_wire::checksum;
use tandem_wire::ndisc::{self, NeighborAdvertFrame, NeighborAdvertRepr};

const OURS: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(frame) = ArpFrame::new_checked(data) {
        let repr = ArpRepr::parse(&frame);
        let mut out = [0u8; ARP_FRAME_LEN];
        let n = repr.emit(&mut out).expect("42 bytes fit");
        assert_eq!(&out[..n], &data[..ARP_FRAME_LEN]);
        if let Some(sender) = arp::proof_of_life(data, repr.sender_ip, OURS) {
            assert_eq!(sender.mac, repr.sender_mac);
            assert_ne!(sender.mac, OURS);
        }
    }
    let _ = arp::proof_of_life(data, Ipv4Addr::new(192, 0, 2, 2), OURS);

    check_advert(data);
    let _ = ndisc::proof_of_life(data, Ipv6Addr::LOCALHOST, OURS);
    check_advert(&repaired(data));

    // A solicitation from addresses taken from the input is well formed and never an advert.
    if let (Some(source), Some(target)) = (data.get(..16), data.get(16..32)) {
        let source = Ipv6Addr::from(<[u8; 16]>::try_from(source).expect("16 bytes"));
        let target = Ipv6Addr::from(<[u8; 16]>::try_from(target).expect("16 bytes"));
        let mut out = [0u8; ndisc::NEIGHBOR_SOLICITATION_LEN];
        let n = ndisc::emit_neighbor_solicitation(OURS, source, target, &mut out).expect("fits");
        assert!(NeighborAdvertFrame::new_checked(&out[..n]).is_err());
        let group = ndisc::solicited_node(target);
        let pseudo = checksum::ipv6_pseudo_header(source, group, 58, (n - 54) as u32);
        assert_eq!(
            checksum::finish(checksum::accumulate(pseudo, &out[54..n])),
            0
        );
    }
});

/// Whatever the advert view accepts is self-consistent.
fn check_advert(data: &[u8]) {
    if let Ok(frame) = NeighborAdvertFrame::new_checked(data) {
        let repr = NeighborAdvertRepr::parse(&frame);
        let length = usize::from(u16::from_be_bytes([data[18], data[19]]));
        let pseudo = checksum::ipv6_pseudo_header(repr.source, repr.destination, 58, length as u32);
        assert_eq!(
            checksum::finish(checksum::accumulate(pseudo, &data[54..54 + length])),
            0
        );
        assert!(!repr.target.is_multicast());
        let sender = ndisc::proof_of_life(data, repr.target, OURS);
        assert_eq!(sender.is_some(), repr.ethernet_source != OURS);
    }
}

/// `data` with the headers an advert needs forced in, the payload length clamped to what is
/// there and the ICMPv6 checksum recomputed.
fn repaired(data: &[u8]) -> Vec<u8> {
    let mut frame = data.to_vec();
    if frame.len() < 78 {
        return frame;
    }
    frame[12..14].copy_from_slice(&[0x86, 0xdd]);
    frame[14] = 0x60 | (frame[14] & 0x0f);
    let length =
        (frame.len() - 54).min(usize::from(u16::from_be_bytes([frame[18], frame[19]])).max(24));
    frame[18..20].copy_from_slice(&(length as u16).to_be_bytes());
    frame[20] = 58;
    frame[21] = 255;
    frame[54] = 136;
    frame[55] = 0;
    frame[56..58].fill(0);
    let source = Ipv6Addr::from(<[u8; 16]>::try_from(&frame[22..38]).expect("16 bytes"));
    let destination = Ipv6Addr::from(<[u8; 16]>::try_from(&frame[38..54]).expect("16 bytes"));
    let pseudo = checksum::ipv6_pseudo_header(source, destination, 58, length as u32);
    let sum = checksum::finish(checksum::accumulate(pseudo, &frame[54..54 + length]));
    frame[56..58].copy_from_slice(&sum.to_be_bytes());
    frame
}
