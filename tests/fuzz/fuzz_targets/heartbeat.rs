//! Pair heartbeats arrive from the peer cable, where a miscabled box or an attacker can send
//! anything. The codec must refuse any bytes without panicking and re-emit what it accepts to
//! the same bytes; the session ([`HeartbeatLink`]) fed a stream of arbitrary datagrams and
//! timer ticks must never panic, never declare a partner alive from unkeyed junk when it
//! requires a key, and keep its counters consistent.
#![no_main]

use core::time::Duration;

use tandem_vrrp::pair::{DatagramMeta, HeartbeatLink, HeartbeatSettings, LocalHealth};
use tandem_vrrp::Instant;
use tandem_wire::heartbeat::{self, InstanceHealth, KeyPolicy, MAX_DATAGRAM_LEN};

const SETTINGS: HeartbeatSettings = HeartbeatSettings {
    pair_id: 0,
    interval: Duration::from_millis(10),
    dead_after: Duration::from_millis(30),
};

/// One load-sharing group, so every emitted heartbeat carries the section.
const SHARING: [heartbeat::SharingHealth<'static>; 1] = [heartbeat::SharingHealth {
    name: "web",
    active: true,
    held: 0x5555,
    address: std::net::Ipv4Addr::new(192, 0, 2, 1),
}];

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // The codec: accepted bytes re-emit identically.
    if let Ok(packet) = heartbeat::decode(data, KeyPolicy::Unkeyed, 0) {
        let header = packet.header();
        let entries: Vec<InstanceHealth<'_>> = packet.entries().collect();
        assert_eq!(entries.len(), usize::from(packet.entry_count()));
        let groups: Vec<heartbeat::SharingHealth<'_>> = packet.sharing().collect();
        let mut out = [0u8; MAX_DATAGRAM_LEN];
        if header.session != 0 && header.sequence != 0 {
            let n = heartbeat::emit_with(&header, &entries, &groups, &mut out, None)
                .expect("accepted re-emits");
            assert_eq!(&out[..n], data);
        }
    }
    let _ = heartbeat::decode(data, KeyPolicy::Require(&[9; 32]), 0);

    // The session: the input split into datagrams (2-byte length prefixes), with ticks between.
    let mut keyed = HeartbeatLink::new(SETTINGS, Some([9; 32]), 1, Instant::ZERO);
    let mut open = HeartbeatLink::new(SETTINGS, None, 1, Instant::ZERO);
    let mut now = Instant::ZERO;
    let mut rest = data;
    let mut buffer = [0u8; MAX_DATAGRAM_LEN];
    while rest.len() >= 3 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])) % (MAX_DATAGRAM_LEN + 8);
        let hop_limit = rest[2];
        rest = &rest[3..];
        let (datagram, tail) = rest.split_at(len.min(rest.len()));
        rest = tail;
        now = now + Duration::from_micros(u64::from(hop_limit) * 100);
        let meta = DatagramMeta {
            link_local: hop_limit & 1 == 0,
            hop_limit: if hop_limit > 127 { 255 } else { hop_limit },
        };
        for link in [&mut keyed, &mut open] {
            let _ = link.handle_datagram(now, meta, datagram);
            if link.handle_timeout(now) {
                let health = LocalHealth {
                    generation: 1,
                    digest: 2,
                    uplink: None,
                    tracked_down: 0,
                    handover: false,
                    instances: &[],
                    sharing: &SHARING,
                };
                link.emit(now, &health, &mut buffer)
                    .expect("a heartbeat with one load-sharing group fits");
            }
            while link.poll_event().is_some() {}
            let counters = link.counters();
            assert!(counters.losses <= counters.ups);
        }
        // Nothing unkeyed can authenticate to a box that requires a key.
        assert!(!keyed.is_up());
        assert_eq!(keyed.counters().received, 0);
    }
});
