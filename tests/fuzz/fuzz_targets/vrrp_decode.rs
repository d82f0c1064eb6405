//! Fuzzes the VRRP decode path end to end: the wire view and value type for both families and
//! every checksum form, re-emit of whatever parses, and a v2 and a v3 instance fed the bytes
//! (no input may panic, and a discarded packet must leave the state untouched).
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tandem_vrrp::{Auth, Instance, InstanceParams, Instant, RxMeta};
use tandem_wire::{AdvertPacket, AdvertRepr, IpEndpoints, Ipv4ChecksumMode};

fn instances() -> Vec<Instance> {
    let v4 = |last| IpAddr::V4(Ipv4Addr::new(10, 0, 0, last));
    let v6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1));
    let vip6: IpAddr = IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x100));
    let params = [
        InstanceParams::v3("v3", "eth0", 51, 100, v4(1), vec![v4(100)]),
        InstanceParams::v2(
            "v2",
            "eth0",
            51,
            100,
            v4(1),
            vec![v4(100)],
            Auth::simple_text(b"secret"),
        ),
        InstanceParams::v3("v6", "eth0", 51, 100, v6, vec![vip6]),
    ];
    params
        .into_iter()
        .map(|p| Instance::new(p, Instant::ZERO).unwrap())
        .collect()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else {
        return;
    };
    let endpoints = [
        IpEndpoints::V4 {
            src: Ipv4Addr::new(10, 0, 0, 2),
            dst: Ipv4Addr::new(224, 0, 0, 18),
        },
        IpEndpoints::V4 {
            src: Ipv4Addr::new(10, 0, 0, 2),
            dst: Ipv4Addr::new(10, 0, 0, 1),
        },
        IpEndpoints::V6 {
            src: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2),
            dst: Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12),
        },
    ];
    let ep = endpoints[usize::from(selector % 3)];
    let family = ep.family();
    if let Ok(packet) = AdvertPacket::new_checked(payload, family) {
        let _ = packet.verify_checksum(&ep);
        if let Ok((repr, _)) = AdvertRepr::parse(&packet, &ep) {
            let mut out = vec![0u8; repr.buffer_len()];
            for mode in [
                Ipv4ChecksumMode::PseudoHeader,
                Ipv4ChecksumMode::MessageOnly,
            ] {
                if let Ok(n) = repr.emit(&mut out, &ep, mode) {
                    let again = AdvertPacket::new_checked(&out[..n], family)
                        .expect("own output is complete");
                    let (back, _) = AdvertRepr::parse(&again, &ep).expect("own output parses");
                    assert_eq!(back.priority, repr.priority);
                    assert_eq!(back.addresses, repr.addresses);
                }
            }
        }
    }
    let (src, dst) = match ep {
        IpEndpoints::V4 { src, dst } => (IpAddr::V4(src), IpAddr::V4(dst)),
        IpEndpoints::V6 { src, dst } => (IpAddr::V6(src), IpAddr::V6(dst)),
    };
    let ttl = if selector & 0x80 == 0 { 255 } else { selector };
    for mut instance in instances() {
        while instance.poll_action().is_some() {}
        let before_state = instance.state();
        let before_deadline = instance.poll_timeout();
        let result =
            instance.handle_packet(Instant::from_millis(10), RxMeta { src, dst, ttl }, payload);
        if result.is_err() {
            assert_eq!(instance.state(), before_state);
            assert_eq!(instance.poll_timeout(), before_deadline);
            assert!(instance.poll_action().is_none());
        }
    }
});
