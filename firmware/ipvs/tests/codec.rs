//! Encoding to exact bytes derived by hand from `include/uapi/linux/ip_vs.h` and the kernel's
//! `ip_vs_ctl.c` policies (little-endian host), and decoding of kernel-shaped replies.
// Test/bench helpers outside #[test] fns may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(target_endian = "little")]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use tandem_ipvs::*;

const FAMILY: u16 = 0x1234;

/// One attribute, padded: len (u16) type (u16) payload pad.
fn attr(ty: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&u16::try_from(4 + payload.len()).unwrap().to_le_bytes());
    v.extend_from_slice(&ty.to_le_bytes());
    v.extend_from_slice(payload);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}

fn nest(ty: u16, parts: &[Vec<u8>]) -> Vec<u8> {
    let inner: Vec<u8> = parts.concat();
    let mut v = attr(ty | 0x8000, &inner);
    v.truncate(4 + inner.len());
    v
}

fn message(ty: u16, flags: u16, seq: u32, cmd: u8, attrs: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&u32::try_from(20 + attrs.len()).unwrap().to_le_bytes());
    v.extend_from_slice(&ty.to_le_bytes());
    v.extend_from_slice(&flags.to_le_bytes());
    v.extend_from_slice(&seq.to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&[cmd, 1, 0, 0]);
    v.extend_from_slice(attrs);
    v
}

fn v4(a: [u8; 4]) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(a))
}

fn addr16(a: [u8; 4]) -> [u8; 16] {
    let mut o = [0u8; 16];
    o[..4].copy_from_slice(&a);
    o
}

fn tcp_vip() -> ServiceKey {
    ServiceKey::Inet {
        protocol: Protocol::Tcp,
        addr: v4([192, 0, 2, 1]),
        port: 80,
    }
}

#[test]
fn new_service_exact_bytes() {
    let svc = Service::new(tcp_vip(), "wlc");
    let mut buf = Vec::new();
    Request::NewService(svc)
        .encode(FAMILY, 7, &mut buf)
        .unwrap();

    #[rustfmt::skip]
    let expected: Vec<u8> = vec![
        104, 0, 0, 0,  0x34, 0x12,  5, 0,  7, 0, 0, 0,  0, 0, 0, 0, // nlmsghdr: REQUEST|ACK
        1, 1, 0, 0,                                                 // genl: NEW_SERVICE, v1
        84, 0, 1, 0x80,                                             // CMD_ATTR_SERVICE, nested
        6, 0, 1, 0,  2, 0, 0, 0,                                    // AF = AF_INET
        6, 0, 2, 0,  6, 0, 0, 0,                                    // PROTOCOL = TCP
        20, 0, 3, 0,  192, 0, 2, 1,  0, 0, 0, 0,  0, 0, 0, 0,  0, 0, 0, 0, // ADDR (nf_inet_addr)
        6, 0, 4, 0,  0, 80, 0, 0,                                   // PORT, big-endian
        8, 0, 6, 0,  b'w', b'l', b'c', 0,                           // SCHED_NAME
        12, 0, 7, 0,  0, 0, 0, 0,  0xff, 0xff, 0xff, 0xff,          // FLAGS {flags, mask}
        8, 0, 8, 0,  0, 0, 0, 0,                                    // TIMEOUT
        8, 0, 9, 0,  0xff, 0xff, 0xff, 0xff,                        // NETMASK (be32)
    ];
    assert_eq!(buf, expected);
}

#[test]
fn persistent_fwmark_v6_service_bytes() {
    let key = ServiceKey::Fwmark {
        family: Family::Inet6,
        mark: 0x0102_0304,
    };
    let svc = Service {
        key,
        scheduler: "sh".into(),
        flags: uapi::IP_VS_SVC_F_PERSISTENT | uapi::IP_VS_SVC_F_SCHED1,
        timeout: 300,
        netmask: 64,
        pe_name: None,
    };
    let mut buf = Vec::new();
    Request::SetService(svc)
        .encode(FAMILY, 1, &mut buf)
        .unwrap();
    let expected_attrs = nest(
        1,
        &[
            attr(1, &10u16.to_le_bytes()),
            attr(5, &0x0102_0304u32.to_le_bytes()),
            attr(6, b"sh\0"),
            attr(7, &[9, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
            attr(8, &300u32.to_le_bytes()),
            attr(9, &64u32.to_le_bytes()), // IPv6: prefix length, host order
        ],
    );
    assert_eq!(buf, message(FAMILY, 5, 1, 2, &expected_attrs));
}

#[test]
fn set_dest_weight_exact_bytes() {
    let dest = Dest {
        addr: v4([10, 0, 0, 5]),
        port: 8080,
        forward: ForwardMethod::DirectRoute,
        weight: 3,
        upper_threshold: 100,
        lower_threshold: 10,
        tunnel: None,
    };
    let mut buf = Vec::new();
    Request::SetDest(tcp_vip(), dest)
        .encode(FAMILY, 9, &mut buf)
        .unwrap();
    let svc = nest(
        1,
        &[
            attr(1, &2u16.to_le_bytes()),
            attr(2, &6u16.to_le_bytes()),
            attr(3, &addr16([192, 0, 2, 1])),
            attr(4, &80u16.to_be_bytes()),
        ],
    );
    let dst = nest(
        2,
        &[
            attr(1, &addr16([10, 0, 0, 5])),
            attr(11, &2u16.to_le_bytes()),   // ADDR_FAMILY
            attr(2, &8080u16.to_be_bytes()), // PORT
            attr(3, &3u32.to_le_bytes()),    // FWD_METHOD = DROUTE
            attr(4, &3u32.to_le_bytes()),    // WEIGHT
            attr(5, &100u32.to_le_bytes()),  // U_THRESH
            attr(6, &10u32.to_le_bytes()),   // L_THRESH
        ],
    );
    assert_eq!(buf, message(FAMILY, 5, 9, 6, &[svc, dst].concat()));
    // Spot-check absolute offsets too: the weight payload sits right after FWD_METHOD.
    let pos = buf.windows(8).position(|w| w == [8, 0, 4, 0, 3, 0, 0, 0]);
    assert!(pos.is_some());
}

#[test]
fn tunnel_dest_carries_tunnel_attributes() {
    let dest = Dest {
        addr: IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)),
        port: 0,
        forward: ForwardMethod::Tunnel,
        weight: 1,
        upper_threshold: 0,
        lower_threshold: 0,
        tunnel: Some(Tunnel {
            kind: TunnelType::Gue,
            port: 6080,
            flags: 1,
        }),
    };
    let key = ServiceKey::Fwmark {
        family: Family::Inet6,
        mark: 5,
    };
    let mut buf = Vec::new();
    Request::NewDest(key, dest)
        .encode(FAMILY, 2, &mut buf)
        .unwrap();
    let svc = nest(
        1,
        &[attr(1, &10u16.to_le_bytes()), attr(5, &5u32.to_le_bytes())],
    );
    let a = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7).octets();
    let dst = nest(
        2,
        &[
            attr(1, &a),
            attr(11, &10u16.to_le_bytes()),
            attr(2, &0u16.to_be_bytes()),
            attr(3, &2u32.to_le_bytes()),
            attr(4, &1u32.to_le_bytes()),
            attr(13, &[1]),                   // TUN_TYPE = GUE (u8)
            attr(14, &6080u16.to_be_bytes()), // TUN_PORT (be16)
            attr(15, &1u16.to_le_bytes()),    // TUN_FLAGS = CSUM
            attr(5, &0u32.to_le_bytes()),
            attr(6, &0u32.to_le_bytes()),
        ],
    );
    assert_eq!(buf, message(FAMILY, 5, 2, 5, &[svc, dst].concat()));
}

#[test]
fn del_dest_and_dumps_and_config() {
    let mut buf = Vec::new();
    Request::DelDest(tcp_vip(), v4([10, 0, 0, 5]), 80)
        .encode(FAMILY, 3, &mut buf)
        .unwrap();
    let svc = nest(
        1,
        &[
            attr(1, &2u16.to_le_bytes()),
            attr(2, &6u16.to_le_bytes()),
            attr(3, &addr16([192, 0, 2, 1])),
            attr(4, &80u16.to_be_bytes()),
        ],
    );
    let dst = nest(
        2,
        &[
            attr(1, &addr16([10, 0, 0, 5])),
            attr(11, &2u16.to_le_bytes()),
            attr(2, &80u16.to_be_bytes()),
        ],
    );
    assert_eq!(buf, message(FAMILY, 5, 3, 7, &[svc.clone(), dst].concat()));

    buf.clear();
    Request::DumpServices.encode(FAMILY, 4, &mut buf).unwrap();
    assert_eq!(buf, message(FAMILY, 0x301, 4, 4, &[])); // REQUEST|DUMP, GET_SERVICE

    buf.clear();
    Request::DumpDests(tcp_vip())
        .encode(FAMILY, 5, &mut buf)
        .unwrap();
    assert_eq!(buf, message(FAMILY, 0x301, 5, 8, &svc));

    buf.clear();
    let t = Timeouts {
        tcp: Some(900),
        tcp_fin: None,
        udp: Some(300),
    };
    Request::SetConfig(t).encode(FAMILY, 6, &mut buf).unwrap();
    let attrs = [
        attr(4, &900u32.to_le_bytes()),
        attr(6, &300u32.to_le_bytes()),
    ]
    .concat();
    assert_eq!(buf, message(FAMILY, 5, 6, 12, &attrs));

    buf.clear();
    Request::GetInfo.encode(FAMILY, 8, &mut buf).unwrap();
    assert_eq!(buf, message(FAMILY, 5, 8, 15, &[]));
}

#[test]
fn sync_daemon_bytes() {
    let d = SyncDaemon {
        role: SyncRole::Master,
        ifname: "eth3".into(),
        sync_id: 42,
        max_len: Some(1400),
        group: Some(v4([239, 1, 2, 3])),
        port: Some(8848),
        ttl: Some(1),
    };
    let mut buf = Vec::new();
    Request::NewDaemon(d).encode(FAMILY, 1, &mut buf).unwrap();
    let n = nest(
        3,
        &[
            attr(1, &1u32.to_le_bytes()),
            attr(2, b"eth3\0"),
            attr(3, &42u32.to_le_bytes()),
            attr(4, &1400u16.to_le_bytes()),
            attr(5, &[239, 1, 2, 3]),
            // host order: ip_vs_ctl.c uses nla_get_u16/nla_put_u16 for the sync port
            attr(7, &8848u16.to_ne_bytes()),
            attr(8, &[1]),
        ],
    );
    assert_eq!(buf, message(FAMILY, 5, 1, 9, &n));

    buf.clear();
    Request::DelDaemon(SyncRole::Backup)
        .encode(FAMILY, 2, &mut buf)
        .unwrap();
    assert_eq!(
        buf,
        message(FAMILY, 5, 2, 10, &nest(3, &[attr(1, &2u32.to_le_bytes())]))
    );
}

/// A GET_DAEMON dump entry as `ip_vs_genl_fill_daemon` writes it (kernel 6.x): the port is
/// a host-order u16, the group an IPv4 address.
#[test]
fn sync_daemon_reply_decodes_kernel_shape() {
    let n = nest(
        3,
        &[
            attr(1, &2u32.to_le_bytes()),
            attr(2, b"peer\0"),
            attr(3, &7u32.to_le_bytes()),
            attr(4, &1472u16.to_le_bytes()),
            attr(7, &8848u16.to_le_bytes()),
            attr(8, &[1]),
            attr(5, &[224, 0, 0, 81]),
        ],
    );
    let msg = message(FAMILY, 2, 1, 9, &n);
    let m = NlMsgIter::new(&msg).next().unwrap().unwrap();
    let Reply::Daemon(d) = decode_reply(m.payload, None).unwrap() else {
        panic!("not a daemon")
    };
    assert_eq!(
        d,
        SyncDaemon {
            role: SyncRole::Backup,
            ifname: "peer".into(),
            sync_id: 7,
            max_len: Some(1472),
            group: Some(v4([224, 0, 0, 81])),
            port: Some(8848),
            ttl: Some(1),
        }
    );
}

#[test]
fn get_family_bytes() {
    let mut buf = Vec::new();
    encode_get_family(1, &mut buf).unwrap();
    let mut expected = message(0x10, 5, 1, 3, &attr(2, b"IPVS\0"));
    expected[17] = 2; // controller version 2
    assert_eq!(buf, expected);
}

#[test]
fn encode_rejects_bad_names_and_weights() {
    let mut buf = Vec::new();
    let svc = Service::new(tcp_vip(), "a-very-long-scheduler");
    assert!(matches!(
        Request::NewService(svc).encode(FAMILY, 1, &mut buf),
        Err(EncodeError::SchedulerName(_))
    ));
    assert!(
        buf.is_empty(),
        "a failed encode leaves the buffer untouched"
    );
    let dest = Dest {
        addr: v4([10, 0, 0, 1]),
        port: 80,
        forward: ForwardMethod::Masq,
        weight: u32::MAX,
        upper_threshold: 0,
        lower_threshold: 0,
        tunnel: None,
    };
    assert!(matches!(
        Request::NewDest(tcp_vip(), dest).encode(FAMILY, 1, &mut buf),
        Err(EncodeError::Weight(_))
    ));
    assert!(buf.is_empty());
}

fn stats32() -> Vec<u8> {
    nest(
        10,
        &[
            attr(1, &5u32.to_le_bytes()),
            attr(2, &100u32.to_le_bytes()),
            attr(3, &90u32.to_le_bytes()),
            attr(4, &10_000u64.to_le_bytes()),
            attr(5, &9_000u64.to_le_bytes()),
            attr(6, &1u32.to_le_bytes()),
        ],
    )
}

#[test]
fn decode_kernel_shaped_service_reply() {
    // As ip_vs_genl_fill_service emits it (kernel 6.1): AF, PROTOCOL, ADDR, PORT, SCHED_NAME,
    // FLAGS{flags|HASHED, ~0}, TIMEOUT, NETMASK, STATS, STATS64.
    let stats64 = nest(
        12,
        &[attr(1, &(1u64 << 40).to_le_bytes()), attr(11, &[0; 8])],
    );
    let svc = nest(
        1,
        &[
            attr(1, &2u16.to_le_bytes()),
            attr(2, &6u16.to_le_bytes()),
            attr(3, &addr16([192, 0, 2, 1])),
            attr(4, &80u16.to_be_bytes()),
            attr(6, b"mh\0"),
            attr(7, &[0x1b, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]),
            attr(8, &360u32.to_le_bytes()),
            attr(9, &[255, 255, 255, 0]),
            stats32(),
            stats64,
        ],
    );
    let msg = message(FAMILY, 2, 1, 1, &svc);
    let m = NlMsgIter::new(&msg).next().unwrap().unwrap();
    let Reply::Service(entry) = decode_reply(m.payload, None).unwrap() else {
        panic!("not a service")
    };
    assert_eq!(entry.service.key, tcp_vip());
    assert_eq!(entry.service.scheduler, "mh");
    // HASHED (0x2) is kernel bookkeeping and is dropped.
    assert_eq!(entry.service.flags, 0x19);
    assert_eq!(entry.service.timeout, 360);
    assert_eq!(entry.service.netmask, 0xffff_ff00);
    assert_eq!(entry.stats.conns, 1 << 40, "STATS64 wins over STATS");
    assert_eq!(decode_datagram(&msg).unwrap(), 1);
}

#[test]
fn decode_kernel_shaped_dest_reply_without_family_attr() {
    let dst = nest(
        2,
        &[
            attr(1, &addr16([10, 0, 0, 9])),
            attr(2, &443u16.to_be_bytes()),
            attr(3, &0u32.to_le_bytes()),
            attr(4, &7u32.to_le_bytes()),
            attr(5, &0u32.to_le_bytes()),
            attr(6, &0u32.to_le_bytes()),
            attr(7, &12u32.to_le_bytes()),
            attr(8, &3u32.to_le_bytes()),
            attr(9, &1u32.to_le_bytes()),
            stats32(),
        ],
    );
    let msg = message(FAMILY, 2, 1, 5, &dst);
    let m = NlMsgIter::new(&msg).next().unwrap().unwrap();
    assert!(
        decode_reply(m.payload, None).is_err(),
        "family unknown without ADDR_FAMILY"
    );
    let Reply::Dest(d) = decode_reply(m.payload, Some(Family::Inet)).unwrap() else {
        panic!()
    };
    assert_eq!(d.dest.addr, v4([10, 0, 0, 9]));
    assert_eq!(d.dest.port, 443);
    assert_eq!(d.dest.forward, ForwardMethod::Masq);
    assert_eq!(d.dest.weight, 7);
    assert_eq!(
        (d.active_conns, d.inactive_conns, d.persist_conns),
        (12, 3, 1)
    );
    assert_eq!(
        (d.stats.conns, d.stats.inbytes, d.stats.cps),
        (5, 10_000, 1)
    );
}

#[test]
fn decode_error_ack_and_family_reply() {
    let mut ack = Vec::new();
    ack.extend_from_slice(&36u32.to_le_bytes());
    ack.extend_from_slice(&2u16.to_le_bytes());
    ack.extend_from_slice(&0u16.to_le_bytes());
    ack.extend_from_slice(&9u32.to_le_bytes());
    ack.extend_from_slice(&0u32.to_le_bytes());
    ack.extend_from_slice(&(-17i32).to_le_bytes());
    ack.extend_from_slice(&[0u8; 16]);
    let m = NlMsgIter::new(&ack).next().unwrap().unwrap();
    assert_eq!((m.ty, m.seq), (2, 9));
    assert_eq!(nla::error_code(m.payload).unwrap(), 17);

    let fam = message(
        0x10,
        0,
        1,
        1,
        &[attr(2, b"IPVS\0"), attr(1, &0x1du16.to_le_bytes())].concat(),
    );
    let m = NlMsgIter::new(&fam).next().unwrap().unwrap();
    assert_eq!(decode_family_id(m.payload).unwrap(), 0x1d);
}

#[test]
fn garbage_never_panics() {
    // A cheap deterministic sweep; the fuzz target ipvs_reply goes further.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let base = message(
        FAMILY,
        2,
        1,
        1,
        &nest(1, &[attr(1, &2u16.to_le_bytes()), stats32()]),
    );
    for _ in 0..20_000 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let mut m = base.clone();
        let i = usize::try_from(seed % u64::try_from(m.len()).unwrap()).unwrap();
        m[i] = seed.to_le_bytes()[4];
        let cut = usize::try_from((seed >> 40) % u64::try_from(m.len() + 1).unwrap()).unwrap();
        let _ = decode_datagram(&m[..cut]);
        let _ = decode_datagram(&m);
    }
}
