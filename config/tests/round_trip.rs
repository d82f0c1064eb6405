//! Property tests: text -> blob -> text is the identity, and import -> export -> import reaches a
//! fixed point (the same blob) for keepalived.conf and lvs.cf.

// Test code: panics are the failure report, and the figures are small known values.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_lossless
)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use tandem_config::blob::{self, BlobMeta, MacPolicy};
use tandem_config::export;
use tandem_config::import::{self, Format};
use tandem_config::model::*;
use tandem_config::net::IpCidr;
use tandem_config::text;
use tandem_config::BoundedVec;

fn name() -> impl Strategy<Value = Name> {
    "[a-z][a-z0-9_]{0,12}".prop_map(|s| Name::try_from(s.as_str()).unwrap())
}

fn ifname() -> impl Strategy<Value = IfName> {
    prop_oneof![Just("eth0"), Just("eth1"), Just("bond0"), Just("public")]
        .prop_map(|s| IfName::try_from(s).unwrap())
}

fn ipv4() -> impl Strategy<Value = IpAddr> {
    any::<[u8; 4]>().prop_map(|b| IpAddr::V4(Ipv4Addr::from(b)))
}

fn ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![4 => ipv4(), 1 => any::<[u8; 16]>().prop_map(|b| IpAddr::V6(Ipv6Addr::from(b)))]
}

fn check() -> impl Strategy<Value = Check> {
    let kind = prop_oneof![
        Just(CheckKind::Tcp),
        (
            "/[a-z]{0,10}",
            proptest::option::of(proptest::collection::vec((200u16..600, 0u16..50), 1..4)),
            any::<bool>(),
            proptest::option::of(any::<[u8; 16]>()),
            proptest::collection::vec("/[a-z]{0,10}", 0..3),
        )
            .prop_map(|(path, status, tls, md5, more)| CheckKind::Http {
                path: path.as_str().try_into().unwrap(),
                status: status.map(|ranges| {
                    StatusCodes(
                        BoundedVec::from_vec(
                            ranges
                                .into_iter()
                                .map(|(first, span)| StatusRange {
                                    first,
                                    last: first + span,
                                })
                                .collect(),
                        )
                        .unwrap(),
                    )
                }),
                body: md5.map(HttpBody::Md5),
                virtual_host: None,
                tls,
                more_urls: BoundedVec::from_vec(
                    more.iter()
                        .map(|path| HttpUrl {
                            path: path.as_str().try_into().unwrap(),
                            ..HttpUrl::default()
                        })
                        .collect(),
                )
                .unwrap(),
                tls_ca: None,
            }),
        Just(CheckKind::Ping),
        (proptest::collection::vec(any::<u8>(), 0..8), any::<bool>()).prop_map(
            |(payload, require_reply)| CheckKind::Udp {
                payload: heapless::Vec::from_slice(&payload).unwrap(),
                require_reply,
                expect: heapless::Vec::from_slice(&payload[..payload.len().min(2)]).unwrap(),
            }
        ),
        (
            "[a-z]{1,10}\\.example",
            prop_oneof![
                Just(DnsRecordType::A),
                Just(DnsRecordType::Soa),
                Just(DnsRecordType::Aaaa)
            ]
        )
            .prop_map(|(name, record_type)| CheckKind::Dns {
                name: name.as_str().try_into().unwrap(),
                record_type,
            }),
        Just(CheckKind::Smtp { helo_name: None }),
        ("[ -~]{0,20}", "[ -~]{1,10}").prop_map(|(send, expect)| CheckKind::SendExpect {
            send: send.as_str().try_into().unwrap(),
            expect: expect.as_str().try_into().unwrap(),
        }),
    ];
    (kind, 1u32..120, 1u32..30, 0u8..5, 0u32..10).prop_map(
        |(kind, interval, timeout, retries, delay)| Check {
            kind,
            timing: CheckTiming {
                interval_ms: interval * 1000,
                timeout_ms: timeout * 1000,
                retries,
                retry_delay_ms: delay * 1000,
            },
            ..Check::default()
        },
    )
}

fn real_server() -> impl Strategy<Value = RealServer> {
    (
        name(),
        ipv4(),
        proptest::option::of(1u16..),
        0u32..1000,
        proptest::option::of(prop_oneof![
            Just(Forwarding::Nat),
            Just(Forwarding::Dr),
            Just(Forwarding::Tun)
        ]),
        any::<bool>(),
        proptest::option::of(check()),
        proptest::collection::vec(check(), 0..=3),
    )
        .prop_map(
            |(name, address, port, weight, forwarding, active, check, more)| RealServer {
                name,
                address,
                port,
                weight,
                forwarding,
                active,
                // Further checks only beside a check (validation's rule).
                more_checks: if check.is_some() {
                    BoundedVec::from_vec(more).unwrap()
                } else {
                    BoundedVec::new()
                },
                check: check.map(Box::new),
                ..RealServer::default()
            },
        )
}

fn service() -> impl Strategy<Value = VirtualService> {
    (
        name(),
        ipv4(),
        1u16..,
        proptest::sample::select(Scheduler::ALL.to_vec()),
        proptest::option::of((1u32..10_000, proptest::option::of(8u8..=32))),
        proptest::option::of(check()),
        proptest::collection::vec(real_server(), 0..6),
        prop_oneof![
            Just(Forwarding::Nat),
            Just(Forwarding::Dr),
            Just(Forwarding::Tun)
        ],
        (any::<bool>(), 0u32..100),
        proptest::collection::vec(check(), 0..=2),
    )
        .prop_map(
            |(
                name,
                address,
                port,
                scheduler,
                persistence,
                check,
                servers,
                forwarding,
                (quiesce, reentry_s),
                more,
            )| VirtualService {
                more_checks: if check.is_some() {
                    BoundedVec::from_vec(more).unwrap()
                } else {
                    BoundedVec::new()
                },
                name,
                address: Some(address),
                port,
                scheduler,
                persistence: persistence.map(|(timeout_s, netmask_prefix)| Persistence {
                    timeout_s,
                    netmask_prefix,
                }),
                check: check.map(Box::new),
                forwarding,
                on_failure: if quiesce {
                    OnFailure::Quiesce
                } else {
                    OnFailure::Remove
                },
                reentry_s,
                real_servers: BoundedVec::from_vec(servers).unwrap(),
                ..VirtualService::default()
            },
        )
}

fn tracked_check() -> impl Strategy<Value = TrackedCheck> {
    (
        name(),
        ip(),
        proptest::option::of(1u16..),
        check(),
        -254i16..=254,
    )
        .prop_map(|(name, address, port, check, weight)| TrackedCheck {
            name,
            address,
            port,
            check,
            weight,
        })
}

fn vrrp() -> impl Strategy<Value = VrrpInstance> {
    (
        name(),
        1u8..,
        ifname(),
        1u8..255,
        1u16..40,
        any::<bool>(),
        proptest::collection::vec((ip(), 0u8..=32), 1..4),
        proptest::option::of("[a-zA-Z0-9]{1,8}"),
        any::<bool>(),
        proptest::collection::vec(tracked_check(), 0..3),
    )
        .prop_map(
            |(name, vrid, interface, priority, seconds, master, vips, pass, preempt, tracked)| {
                VrrpInstance {
                    track_checks: BoundedVec::from_vec(tracked).unwrap(),
                    name,
                    vrid,
                    interface,
                    priority,
                    version: VrrpVersion::V2,
                    advert_interval_cs: seconds * 100,
                    initial_state: if master {
                        InitialState::Master
                    } else {
                        InitialState::Backup
                    },
                    auth: pass.map(|p| VrrpAuth::Pass(p.as_str().try_into().unwrap())),
                    preempt,
                    vips: BoundedVec::from_vec(
                        vips.into_iter()
                            .map(|(address, prefix)| Vip {
                                address,
                                prefix: prefix.min(if address.is_ipv4() { 32 } else { 128 }),
                                interface: None,
                                label: None,
                            })
                            .collect(),
                    )
                    .unwrap(),
                    ..VrrpInstance::default()
                }
            },
        )
}

fn config() -> impl Strategy<Value = Config> {
    (
        proptest::option::of("[a-z][a-z0-9-]{0,20}"),
        proptest::collection::vec(vrrp(), 0..4),
        proptest::collection::vec(service(), 0..5),
        proptest::collection::vec(
            (
                ifname(),
                proptest::collection::vec((ipv4(), 0u8..=32), 0..3),
            ),
            0..3,
        ),
        any::<u64>(),
    )
        .prop_map(|(hostname, vrrp, services, interfaces, pair_id)| {
            let mut config = Config::default();
            if let Some(hostname) = hostname {
                config.system.hostname = hostname.as_str().try_into().unwrap();
            }
            config.vrrp = BoundedVec::from_vec(vrrp).unwrap();
            config.virtual_services = BoundedVec::from_vec(services).unwrap();
            for (name, addresses) in interfaces {
                let addresses = addresses
                    .into_iter()
                    .map(|(addr, prefix)| IpCidr { addr, prefix })
                    .collect();
                config
                    .interfaces
                    .push(Interface {
                        name,
                        addresses: BoundedVec::from_vec(addresses).unwrap(),
                        ..Interface::default()
                    })
                    .unwrap();
            }
            if pair_id % 2 == 1 {
                config.peer_link = Some(PeerLink {
                    pair_id,
                    uplink_probes: BoundedVec::from_vec(vec![IpAddr::V4(Ipv4Addr::from(
                        (pair_id >> 32) as u32,
                    ))])
                    .unwrap(),
                    ..PeerLink::default()
                });
            }
            if pair_id % 4 >= 2 {
                // Halves from what was generated: a hostname, the first interface's addresses
                // reversed, and an override of the first VRRP instance.
                let mut pair = PairHalves::default();
                pair.a.hostname = "box-a".try_into().unwrap();
                pair.b.management_address = Some(IpCidr {
                    addr: IpAddr::V4(Ipv4Addr::from(pair_id as u32)),
                    prefix: 24,
                });
                if let Some(first) = config.interfaces.first() {
                    let mut addresses = first.addresses.to_vec();
                    addresses.reverse();
                    pair.b
                        .interfaces
                        .push(Interface {
                            name: first.name.clone(),
                            addresses: BoundedVec::from_vec(addresses).unwrap(),
                            ..Interface::default()
                        })
                        .unwrap();
                }
                if let Some(first) = config.vrrp.first() {
                    pair.a
                        .vrrp
                        .push(VrrpOverride {
                            name: first.name.clone(),
                            priority: Some((pair_id % 254) as u8 + 1),
                            unicast_peers: if pair_id % 8 >= 4 {
                                BoundedVec::from_vec(vec![IpAddr::V4(Ipv4Addr::LOCALHOST)]).unwrap()
                            } else {
                                BoundedVec::new()
                            },
                            initial_state: Some(InitialState::Master),
                            ..VrrpOverride::default()
                        })
                        .unwrap();
                }
                config.pair = Some(pair);
            }
            config
        })
}

fn blob_of(config: &Config) -> Vec<u8> {
    blob::encode(config, BlobMeta::default(), None).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn text_blob_text_is_identity(config in config()) {
        let text = text::to_toml(&config).unwrap();
        prop_assert_eq!(&text::from_toml(&text).unwrap(), &config);
        let decoded = blob::decode(&blob_of(&config), MacPolicy::Unkeyed, None).unwrap();
        prop_assert_eq!(&decoded.config, &config);
        prop_assert_eq!(text::to_toml(&decoded.config).unwrap(), text);
    }

    #[test]
    fn keepalived_import_export_import_is_stable(config in config()) {
        let first = import::import(&export::keepalived::export(&config).text, Some(Format::Keepalived)).unwrap().config;
        let exported = export::keepalived::export(&first);
        let second = import::import(&exported.text, Some(Format::Keepalived)).unwrap();
        prop_assert_eq!(blob_of(&second.config), blob_of(&first), "{}", exported.text);
    }

    #[test]
    fn lvs_import_export_import_is_stable(config in config()) {
        let first = import::import(&export::lvs::export(&config).text, Some(Format::Lvs)).unwrap().config;
        let exported = export::lvs::export(&first);
        let second = import::import(&exported.text, Some(Format::Lvs)).unwrap();
        prop_assert_eq!(blob_of(&second.config), blob_of(&first), "{}", exported.text);
    }

    #[test]
    fn importers_never_panic(text in "[ -~\n{}=\"#]{0,400}") {
        let _ = import::import(&text, Some(Format::Keepalived));
        let _ = import::import(&text, Some(Format::Lvs));
    }

    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), valid in config()) {
        let _ = blob::decode(&bytes, MacPolicy::Inspect, None);
        // A valid header in front of garbage exercises the payload decoder.
        let mut framed = blob_of(&valid);
        let payload_end = framed.len() - blob::MAC_BYTES - blob::CRC_BYTES;
        let head = blob::HEADER_BYTES.min(payload_end);
        for (offset, byte) in bytes.iter().enumerate() {
            if head + offset < payload_end { framed[head + offset] = *byte; }
        }
        let crc = tandem_config::crc32::crc32(&framed[..payload_end]);
        framed[payload_end..payload_end + 4].copy_from_slice(&crc.to_le_bytes());
        if let Ok(decoded) = blob::decode(&framed, MacPolicy::Inspect, None) {
            let _ = tandem_config::validate(&decoded.config);
        }
    }
}
