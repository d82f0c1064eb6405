//! RFC 9568 / RFC 3768 section 7.1: every "MUST discard" rule, each with its own counter, and
//! a discarded packet changes no state (timers, master, actions, transitions).
// Test and bench code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::*;
use tandem_vrrp::{
    Auth, DiscardReason, Instance, InstanceParams, Instant, RxMeta, Speaker, State, Status, Version,
};

const T0: Instant = Instant::from_secs(50);

/// Everything but the counters.
fn snapshot(instance: &Instance) -> Status {
    let mut status = instance.status();
    status.counters = Default::default();
    status
}

fn assert_discarded(instance: &mut Instance, meta: RxMeta, payload: &[u8], reason: DiscardReason) {
    drain(instance);
    let before = snapshot(instance);
    let count = instance.counters().discarded(reason);
    let total = instance.counters().discarded_total();
    let received = instance.counters().adverts_received;
    let now = T0 + Duration::from_millis(700);
    assert_eq!(instance.handle_packet(now, meta, payload), Err(reason));
    assert_eq!(
        instance.counters().discarded(reason),
        count + 1,
        "{reason:?} counter"
    );
    assert_eq!(
        instance.counters().discarded_total(),
        total + 1,
        "only one counter moves"
    );
    assert_eq!(instance.counters().adverts_received, received);
    assert_eq!(snapshot(instance), before, "{reason:?} changed state");
    assert!(
        instance.poll_action().is_none(),
        "{reason:?} produced an action"
    );
}

/// A backup that has heard a master (so a reset timer would show) and a master.
fn instances(params: InstanceParams) -> Vec<Instance> {
    let mut backup = Instance::new(params.clone(), T0).unwrap();
    let mut master = Instance::new(params, T0).unwrap();
    master.handle_timeout(master.poll_timeout().unwrap());
    assert_eq!(master.state(), State::Master);
    let _ = &mut backup;
    vec![backup, master]
}

fn v3_instances() -> Vec<Instance> {
    instances(v3("r", 100, 1))
}

fn recompute_checksum(bytes: &mut [u8], src: IpAddr) {
    let mut packet = tandem_wire::AdvertPacket::new_unchecked(bytes, tandem_wire::Family::Ipv4);
    packet.fill_checksum(&tandem_wire::IpEndpoints::to_group(src), Default::default());
}

#[test]
fn ttl_other_than_255_is_discarded() {
    for mut r in v3_instances() {
        for ttl in [0, 1, 64, 254] {
            let m = RxMeta { ttl, ..meta(ip(2)) };
            assert_discarded(
                &mut r,
                m,
                &Advert::v3(200).bytes(ip(2)),
                DiscardReason::TtlNot255,
            );
        }
    }
    // Also on the parsed-advert entry point.
    let mut r = Instance::new(v3("r", 100, 1), T0).unwrap();
    let bytes = Advert::v3(200).bytes(ip(2));
    let packet =
        tandem_wire::AdvertPacket::new_checked(&bytes[..], tandem_wire::Family::Ipv4).unwrap();
    let (repr, _) =
        tandem_wire::AdvertRepr::parse(&packet, &tandem_wire::IpEndpoints::to_group(ip(2)))
            .unwrap();
    let before = snapshot(&r);
    assert_eq!(
        r.handle_advert(T0, ip(2), &repr, 254),
        Err(DiscardReason::TtlNot255)
    );
    assert_eq!(snapshot(&r), before);
    assert_eq!(r.handle_advert(T0, ip(2), &repr, 255), Ok(()));
}

#[test]
fn version_mismatch_is_discarded() {
    for mut r in v3_instances() {
        let mut v2 = Advert::v3(200);
        v2.version = Version::V2;
        assert_discarded(
            &mut r,
            meta(ip(2)),
            &v2.bytes(ip(2)),
            DiscardReason::VersionMismatch,
        );
        let mut bytes = Advert::v3(200).bytes(ip(2));
        bytes[0] = 0x11;
        assert_discarded(&mut r, meta(ip(2)), &bytes, DiscardReason::VersionMismatch);
    }
}

#[test]
fn unknown_type_is_discarded() {
    for mut r in v3_instances() {
        let mut bytes = Advert::v3(200).bytes(ip(2));
        bytes[0] = 0x32;
        recompute_checksum(&mut bytes, ip(2));
        assert_discarded(&mut r, meta(ip(2)), &bytes, DiscardReason::UnknownType);
    }
}

#[test]
fn packets_too_short_are_discarded() {
    for mut r in v3_instances() {
        let bytes = Advert::v3(200).bytes(ip(2));
        for len in 0..8 {
            assert_discarded(&mut r, meta(ip(2)), &bytes[..len], DiscardReason::Truncated);
        }
        // Count says 2 addresses, one present.
        let mut two = Advert::v3(200);
        two.vips.push(Ipv4Addr::new(10, 0, 0, 101));
        let bytes = two.bytes(ip(2));
        assert_discarded(
            &mut r,
            meta(ip(2)),
            &bytes[..12],
            DiscardReason::TooShortForAddressCount,
        );
        let mut lying = Advert::v3(200).bytes(ip(2));
        lying[3] = 255;
        assert_discarded(
            &mut r,
            meta(ip(2)),
            &lying,
            DiscardReason::TooShortForAddressCount,
        );
    }
}

#[test]
fn bad_checksum_is_discarded() {
    for mut r in v3_instances() {
        let mut bytes = Advert::v3(200).bytes(ip(2));
        bytes[7] ^= 0x40;
        assert_discarded(&mut r, meta(ip(2)), &bytes, DiscardReason::BadChecksum);
        // Right checksum for another source address.
        let bytes = Advert::v3(200).bytes(ip(9));
        assert_discarded(&mut r, meta(ip(2)), &bytes, DiscardReason::BadChecksum);
    }
}

#[test]
fn vrid_not_configured_is_discarded() {
    for mut r in v3_instances() {
        let mut other = Advert::v3(200);
        other.vrid = 52;
        assert_discarded(
            &mut r,
            meta(ip(2)),
            &other.bytes(ip(2)),
            DiscardReason::VridNotConfigured,
        );
    }
    let mut speaker = Speaker::new();
    let id = speaker.add_instance(v3("r", 100, 1), T0).unwrap();
    while speaker.poll_action().is_some() {}
    let mut other = Advert::v3(200);
    other.vrid = 52;
    assert_eq!(
        speaker.handle_packet(T0, "eth0", meta(ip(2)), &other.bytes(ip(2))),
        Err(DiscardReason::VridNotConfigured)
    );
    // Right VRID, wrong interface.
    assert_eq!(
        speaker.handle_packet(T0, "eth1", meta(ip(2)), &Advert::v3(200).bytes(ip(2))),
        Err(DiscardReason::VridNotConfigured)
    );
    assert_eq!(speaker.counters().vrid_not_configured, 2);
    assert_eq!(
        speaker.handle_packet(T0, "eth0", meta(ip(2)), &Advert::v3(200).bytes(ip(2))),
        Ok(id)
    );
}

#[test]
fn address_owner_discards_everything() {
    let mut r = Instance::new(v3("owner", 255, 1), T0).unwrap();
    for priority in [0, 100, 255] {
        assert_discarded(
            &mut r,
            meta(ip(2)),
            &Advert::v3(priority).bytes(ip(2)),
            DiscardReason::LocalIsOwner,
        );
    }
    assert_eq!(r.state(), State::Master);
}

#[test]
fn address_list_mismatch_is_discarded_unless_from_the_owner() {
    for mut r in v3_instances() {
        let mut other = Advert::v3(200);
        other.vips = vec![Ipv4Addr::new(10, 0, 0, 200)];
        assert_discarded(
            &mut r,
            meta(ip(2)),
            &other.bytes(ip(2)),
            DiscardReason::AddressListMismatch,
        );
        other.vips = vec![VIP, Ipv4Addr::new(10, 0, 0, 200)];
        assert_discarded(
            &mut r,
            meta(ip(2)),
            &other.bytes(ip(2)),
            DiscardReason::AddressListMismatch,
        );
        other.vips = vec![];
        assert_discarded(
            &mut r,
            meta(ip(2)),
            &other.bytes(ip(2)),
            DiscardReason::AddressListMismatch,
        );
        // The owner's advert is processed anyway (RFC 9568 section 7.1), and counted.
        other.priority = 255;
        other.vips = vec![Ipv4Addr::new(10, 0, 0, 200)];
        r.handle_packet(T0, meta(ip(2)), &other.bytes(ip(2)))
            .unwrap();
        assert_eq!(r.counters().address_list_mismatch_from_owner, 1);
        assert_eq!(r.state(), State::Backup);
    }
    // Order does not matter.
    let mut params = v3("r", 100, 1);
    params
        .virtual_addresses
        .push(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 101)));
    let mut r = Instance::new(params, T0).unwrap();
    let mut reordered = Advert::v3(200);
    reordered.vips = vec![Ipv4Addr::new(10, 0, 0, 101), VIP];
    assert_eq!(
        r.handle_packet(T0, meta(ip(2)), &reordered.bytes(ip(2))),
        Ok(())
    );
}

#[test]
fn v3_interval_zero_is_discarded() {
    for mut r in v3_instances() {
        let mut zero = Advert::v3(200).bytes(ip(2));
        zero[4] = 0;
        zero[5] = 0;
        recompute_checksum(&mut zero, ip(2));
        assert_discarded(&mut r, meta(ip(2)), &zero, DiscardReason::IntervalZero);
    }
}

#[test]
fn family_mismatch_and_own_adverts_are_discarded() {
    for mut r in v3_instances() {
        let v6 = RxMeta {
            src: "fe80::2".parse().unwrap(),
            dst: "ff02::12".parse().unwrap(),
            ttl: 255,
        };
        assert_discarded(
            &mut r,
            v6,
            &Advert::v3(200).bytes(ip(2)),
            DiscardReason::FamilyMismatch,
        );
        let mixed = RxMeta {
            dst: "ff02::12".parse().unwrap(),
            ..meta(ip(2))
        };
        assert_discarded(
            &mut r,
            mixed,
            &Advert::v3(200).bytes(ip(2)),
            DiscardReason::FamilyMismatch,
        );
        assert_discarded(
            &mut r,
            meta(ip(1)),
            &Advert::v3(200).bytes(ip(1)),
            DiscardReason::OwnAdvert,
        );
    }
}

fn v2_params() -> InstanceParams {
    InstanceParams::v2(
        "mail_vip",
        "eth0",
        51,
        100,
        ip(1),
        vec![IpAddr::V4(VIP)],
        Auth::simple_text(b"topSecret"),
    )
}

fn v2_advert(auth: Auth) -> Advert {
    Advert {
        version: Version::V2,
        vrid: 51,
        priority: 200,
        interval_cs: 100,
        auth,
        vips: vec![VIP],
    }
}

#[test]
fn v2_authentication_mismatches_are_discarded() {
    for mut r in instances(v2_params()) {
        assert_discarded(
            &mut r,
            meta(ip(2)),
            &v2_advert(Auth::None).bytes(ip(2)),
            DiscardReason::AuthTypeMismatch,
        );
        let ah = Auth::Other {
            auth_type: 2,
            data: *b"topSecre",
        };
        assert_discarded(
            &mut r,
            meta(ip(2)),
            &v2_advert(ah).bytes(ip(2)),
            DiscardReason::AuthTypeMismatch,
        );
        let wrong = Auth::simple_text(b"verySecret");
        assert_discarded(
            &mut r,
            meta(ip(2)),
            &v2_advert(wrong).bytes(ip(2)),
            DiscardReason::AuthFailure,
        );
        // Only the first 8 bytes count, as in keepalived.
        let long = Auth::simple_text(b"topSecretAndMore");
        assert_eq!(
            r.handle_packet(T0, meta(ip(2)), &v2_advert(long).bytes(ip(2))),
            Ok(())
        );
    }
    // No authentication configured: a PASS advert is a type mismatch; data of type 0 is ignored.
    let mut params = v2_params();
    params.auth = Auth::None;
    let mut r = Instance::new(params, T0).unwrap();
    assert_discarded(
        &mut r,
        meta(ip(2)),
        &v2_advert(Auth::simple_text(b"x")).bytes(ip(2)),
        DiscardReason::AuthTypeMismatch,
    );
    assert_eq!(
        r.handle_packet(T0, meta(ip(2)), &v2_advert(Auth::None).bytes(ip(2))),
        Ok(())
    );
}

#[test]
fn v2_advert_interval_mismatch_is_discarded() {
    for mut r in instances(v2_params()) {
        let mut advert = v2_advert(Auth::simple_text(b"topSecret"));
        advert.interval_cs = 200;
        assert_discarded(
            &mut r,
            meta(ip(2)),
            &advert.bytes(ip(2)),
            DiscardReason::IntervalMismatch,
        );
    }
}

#[test]
fn v2_over_ipv6_is_discarded() {
    let ll: IpAddr = "fe80::1".parse().unwrap();
    let mut r = Instance::new(
        InstanceParams::v3("r6", "eth0", 51, 100, ll, vec!["fd00::1".parse().unwrap()]),
        T0,
    )
    .unwrap();
    let mut bytes = [0u8; 8 + 16 + 8];
    bytes[0] = 0x21;
    bytes[1] = 51;
    bytes[3] = 1;
    let m = RxMeta {
        src: "fe80::2".parse().unwrap(),
        dst: "ff02::12".parse().unwrap(),
        ttl: 255,
    };
    assert_discarded(&mut r, m, &bytes, DiscardReason::VersionMismatch);
}

#[test]
fn hostile_bytes_never_change_state() {
    // Deterministic pseudo-random garbage and bit-flipped valid adverts.
    let valid = Advert::v3(200).bytes(ip(2));
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut rejected = 0;
    for mut r in v3_instances() {
        drain(&mut r);
        for _ in 0..20_000 {
            let mut bytes = valid.clone();
            let flips = next() % 4 + 1;
            for _ in 0..flips {
                let i = usize::try_from(next() % 12).unwrap();
                bytes[i] ^= 1 << (next() % 8);
            }
            let len = usize::try_from(next() % 13).unwrap();
            let before = snapshot(&r);
            let total = r.counters().discarded_total();
            if r.handle_packet(T0, meta(ip(2)), &bytes[..len]).is_err() {
                rejected += 1;
                assert_eq!(snapshot(&r), before, "{bytes:?} changed state");
                assert_eq!(r.counters().discarded_total(), total + 1);
                assert!(r.poll_action().is_none());
            } else {
                drain(&mut r);
            }
        }
    }
    assert!(rejected > 39_000, "only {rejected} rejected");
}
