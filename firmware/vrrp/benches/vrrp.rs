//! Figures for the VRRP hot paths, printed as `bench: <name> <value> <unit>`:
//! - `vrrp_decode_v3`: view + parse + checksum of keepalived's captured v3 IPv4 advert;
//! - `vrrp_handle_packet_v3`: a backup taking a valid advert (all section 7.1 checks, timer reset);
//! - `vrrp_timeout_to_actions`: `handle_timeout` at Master_Down expiry until AddVips and the
//!   GARP/NA Announce action have been polled (advert built, addresses listed).
// Test and bench code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant as WallClock;

use tandem_vrrp::{Action, Instance, InstanceParams, Instant, RxMeta};
use tandem_wire::vrrp::IPV4_GROUP;
use tandem_wire::{AdvertPacket, AdvertRepr, Family, IpEndpoints};

/// keepalived v2.2.7, VRRPv3 VRID 51 priority 200, 50 cs, two VIPs (tests/golden).
const V3_PAYLOAD: [u8; 16] = [
    0x31, 0x33, 0xc8, 0x02, 0x00, 0x32, 0x06, 0x12, 0x0a, 0x63, 0x00, 0x64, 0x0a, 0x63, 0x00, 0x65,
];

fn report(name: &str, iterations: u32, elapsed: std::time::Duration) {
    let ns = elapsed.as_nanos() / u128::from(iterations);
    println!("bench: {name} {ns} ns");
}

fn main() {
    let src = Ipv4Addr::new(10, 99, 0, 1);
    let endpoints = IpEndpoints::V4 {
        src,
        dst: IPV4_GROUP,
    };

    let iterations = 1_000_000;
    let start = WallClock::now();
    for _ in 0..iterations {
        let packet = AdvertPacket::new_checked(black_box(&V3_PAYLOAD[..]), Family::Ipv4).unwrap();
        let parsed = AdvertRepr::parse(&packet, &endpoints).unwrap();
        black_box(parsed);
    }
    report("vrrp_decode_v3", iterations, start.elapsed());

    let params = InstanceParams::v3(
        "bench",
        "eth0",
        51,
        100,
        IpAddr::V4(Ipv4Addr::new(10, 99, 0, 2)),
        vec![
            IpAddr::V4(Ipv4Addr::new(10, 99, 0, 100)),
            IpAddr::V4(Ipv4Addr::new(10, 99, 0, 101)),
        ],
    );
    let mut backup = Instance::new(params.clone(), Instant::ZERO).unwrap();
    while backup.poll_action().is_some() {}
    let meta = RxMeta {
        src: IpAddr::V4(src),
        dst: IpAddr::V4(IPV4_GROUP),
        ttl: 255,
    };
    let start = WallClock::now();
    for i in 0..iterations {
        let now = Instant::from_micros(u64::from(i));
        backup
            .handle_packet(now, meta, black_box(&V3_PAYLOAD))
            .unwrap();
    }
    report("vrrp_handle_packet_v3", iterations, start.elapsed());

    let rounds = 100_000u32;
    let mut instances: Vec<Instance> = (0..rounds)
        .map(|_| {
            let mut i = Instance::new(params.clone(), Instant::ZERO).unwrap();
            while i.poll_action().is_some() {}
            i
        })
        .collect();
    let deadline = instances[0].poll_timeout().unwrap();
    let start = WallClock::now();
    for instance in &mut instances {
        instance.handle_timeout(deadline);
        let mut added = false;
        loop {
            match instance.poll_action() {
                Some(Action::AddVips { addresses, .. }) => added = black_box(!addresses.is_empty()),
                Some(Action::Announce { addresses }) => {
                    black_box(addresses);
                    break;
                }
                Some(other) => {
                    black_box(other);
                }
                None => panic!("no announce"),
            }
        }
        assert!(added);
    }
    report("vrrp_timeout_to_actions", rounds, start.elapsed());
}
