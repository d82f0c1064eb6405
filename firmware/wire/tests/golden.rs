//! Parse/emit against frames captured from keepalived v2.2.7 (see tests/golden/README.md).
// Test and bench code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tandem_wire::vrrp::{IPV4_GROUP, IPV6_GROUP};
use tandem_wire::{
    emit_gratuitous_arp, emit_unsolicited_na, AddressList, AdvertPacket, AdvertRepr, Auth,
    ChecksumVariant, Family, IpEndpoints, Ipv4ChecksumMode, Version,
};

const KEEPALIVED_MAC: [u8; 6] = [0x02, 0, 0, 0, 0x0a, 0x01];

fn golden(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.trim();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// Splits an Ethernet frame into (endpoints, ttl/hop limit, VRRP payload).
fn split(frame: &[u8]) -> (IpEndpoints, u8, &[u8]) {
    match u16::from_be_bytes([frame[12], frame[13]]) {
        0x0800 => {
            let ip = &frame[14..];
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
            assert_eq!(ip[9], 112);
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            (IpEndpoints::V4 { src, dst }, ip[8], &ip[ihl..total])
        }
        0x86dd => {
            let ip = &frame[14..];
            let len = usize::from(u16::from_be_bytes([ip[4], ip[5]]));
            assert_eq!(ip[6], 112);
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap());
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap());
            (IpEndpoints::V6 { src, dst }, ip[7], &ip[40..40 + len])
        }
        other => panic!("unexpected ethertype {other:#x}"),
    }
}

fn reemit(repr: &AdvertRepr<'_>, ep: &IpEndpoints) -> Vec<u8> {
    let mut out = vec![0u8; repr.buffer_len()];
    let n = repr
        .emit(&mut out, ep, Ipv4ChecksumMode::PseudoHeader)
        .unwrap();
    out.truncate(n);
    out
}

#[test]
fn keepalived_v2_pass_advert_parses_and_reemits_byte_for_byte() {
    for (file, priority) in [
        ("keepalived_v2_pass_ipv4.hex", 150),
        ("keepalived_v2_pass_ipv4_prio0.hex", 0),
    ] {
        let frame = golden(file);
        let (ep, ttl, payload) = split(&frame);
        assert_eq!(ttl, 255);
        assert_eq!(
            ep,
            IpEndpoints::V4 {
                src: Ipv4Addr::new(10, 99, 0, 1),
                dst: IPV4_GROUP
            }
        );
        let packet = AdvertPacket::new_checked(payload, Family::Ipv4).unwrap();
        let (repr, variant) = AdvertRepr::parse(&packet, &ep).unwrap();
        assert_eq!(variant, ChecksumVariant::V2Message);
        assert_eq!(repr.version, Version::V2);
        assert_eq!(repr.vrid, 10);
        assert_eq!(repr.priority, priority);
        assert_eq!(repr.interval_cs, 100);
        assert_eq!(repr.auth, Auth::simple_text(b"topSecret"));
        assert_eq!(repr.auth, Auth::SimpleText(*b"topSecre"));
        let vips = [Ipv4Addr::new(123, 123, 123, 1)];
        assert_eq!(repr.addresses, AddressList::Ipv4(&vips));

        // Our own value type with the configured data gives the same bytes.
        let ours = AdvertRepr {
            version: Version::V2,
            vrid: 10,
            priority,
            interval_cs: 100,
            auth: Auth::simple_text(b"topSecret"),
            addresses: AddressList::Ipv4(&vips),
        };
        assert_eq!(reemit(&ours, &ep), payload);
        assert_eq!(reemit(&repr, &ep), payload);
    }
}

#[test]
fn keepalived_v3_ipv4_advert_uses_the_pseudo_header_and_reemits_byte_for_byte() {
    for (file, priority) in [
        ("keepalived_v3_ipv4.hex", 200),
        ("keepalived_v3_ipv4_prio0.hex", 0),
    ] {
        let frame = golden(file);
        let (ep, ttl, payload) = split(&frame);
        assert_eq!(ttl, 255);
        let packet = AdvertPacket::new_checked(payload, Family::Ipv4).unwrap();
        let (repr, variant) = AdvertRepr::parse(&packet, &ep).unwrap();
        assert_eq!(variant, ChecksumVariant::PseudoHeader);
        assert_eq!(
            (repr.version, repr.vrid, repr.priority, repr.interval_cs),
            (Version::V3, 51, priority, 50)
        );
        let vips = [Ipv4Addr::new(10, 99, 0, 100), Ipv4Addr::new(10, 99, 0, 101)];
        assert_eq!(repr.addresses, AddressList::Ipv4(&vips));
        let ours = AdvertRepr {
            version: Version::V3,
            vrid: 51,
            priority,
            interval_cs: 50,
            auth: Auth::None,
            addresses: AddressList::Ipv4(&vips),
        };
        assert_eq!(reemit(&ours, &ep), payload);

        // The RFC 9568 message-only form differs from keepalived's and is still accepted.
        let mut message_only = vec![0u8; ours.buffer_len()];
        ours.emit(&mut message_only, &ep, Ipv4ChecksumMode::MessageOnly)
            .unwrap();
        assert_ne!(message_only, payload);
        let packet = AdvertPacket::new_checked(&message_only[..], Family::Ipv4).unwrap();
        assert_eq!(
            AdvertRepr::parse(&packet, &ep).unwrap().1,
            ChecksumVariant::MessageOnly
        );
    }
}

#[test]
fn keepalived_v3_ipv6_advert_parses_and_reemits_byte_for_byte() {
    for (file, priority) in [
        ("keepalived_v3_ipv6.hex", 100),
        ("keepalived_v3_ipv6_prio0.hex", 0),
    ] {
        let frame = golden(file);
        let (ep, hop_limit, payload) = split(&frame);
        assert_eq!(hop_limit, 255);
        let src: Ipv6Addr = "fe80::ff:fe00:a01".parse().unwrap();
        assert_eq!(
            ep,
            IpEndpoints::V6 {
                src,
                dst: IPV6_GROUP
            }
        );
        let packet = AdvertPacket::new_checked(payload, Family::Ipv6).unwrap();
        let (repr, variant) = AdvertRepr::parse(&packet, &ep).unwrap();
        assert_eq!(variant, ChecksumVariant::PseudoHeader);
        assert_eq!(
            (repr.version, repr.vrid, repr.priority, repr.interval_cs),
            (Version::V3, 52, priority, 100)
        );
        let vip: Ipv6Addr = "fd00:99::100".parse().unwrap();
        assert!(repr.addresses.contains(IpAddr::V6(vip)));
        let vips = [vip];
        let ours = AdvertRepr {
            version: Version::V3,
            vrid: 52,
            priority,
            interval_cs: 100,
            auth: Auth::None,
            addresses: AddressList::Ipv6(&vips),
        };
        assert_eq!(reemit(&ours, &ep), payload);
        // IPv6 has no message-only form: the same bytes from another source fail.
        let other = IpEndpoints::V6 {
            src: "fe80::1".parse().unwrap(),
            dst: IPV6_GROUP,
        };
        assert!(AdvertRepr::parse(&packet, &other).is_err());
    }
}

#[test]
fn gratuitous_arp_matches_keepalived() {
    let frame = golden("keepalived_garp_ipv4.hex");
    let mut ours = [0u8; 64];
    let n = emit_gratuitous_arp(KEEPALIVED_MAC, Ipv4Addr::new(10, 99, 0, 100), &mut ours).unwrap();
    assert_eq!(&ours[..n], &frame[..]);
}

#[test]
fn unsolicited_na_matches_keepalived() {
    let frame = golden("keepalived_unsolicited_na.hex");
    let mut ours = [0u8; 128];
    let vip: Ipv6Addr = "fd00:99::100".parse().unwrap();
    let n = emit_unsolicited_na(KEEPALIVED_MAC, vip, false, &mut ours).unwrap();
    assert_eq!(&ours[..n], &frame[..]);
}
