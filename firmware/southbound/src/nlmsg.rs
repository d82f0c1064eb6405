//! Route-netlink bytes by hand: walking `nlmsghdr`s and `rtattr`s, reading the few fields Tandem
//! uses, and building the few requests it sends.
//!
//! Why this exists: the 4 MiB size budget. rtnetlink's connection decodes every message the
//! kernel sends into netlink-packet-route's `RouteNetlinkMessage`, which instantiates the parsers
//! of every link kind, tc filter and action and route attribute: about 400 KB of the appliance
//! binary, to read an interface index, two flags, a name, a carrier byte and an address. Here
//! the readers borrow the received bytes, decode only those fields, and skip everything else.
//!
//! Every reader takes untrusted bytes: anything short or inconsistent ends the walk (a message
//! iterator yields [`Malformed`] once, an attribute iterator just stops) or reads as `None`.
//! Nothing here panics, indexes out of bounds, or allocates beyond the request it builds.
//!
//! Layouts (`<linux/netlink.h>`, `<linux/rtnetlink.h>`, `<linux/if_link.h>`,
//! `<linux/if_addr.h>`): every integer in host byte order, every message and attribute padded to
//! 4 bytes; the tests feed bytes captured from a kernel (`testdata/rtnetlink/`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `struct nlmsghdr`: length, type, flags, sequence number, port id.
pub const HEADER_LEN: usize = 16;
/// `struct rtattr` / `struct nlattr`: length, type.
const ATTRIBUTE_HEADER_LEN: usize = 4;
/// `struct ifinfomsg`: family, pad, type, index, flags, change mask.
pub const IFINFOMSG_LEN: usize = 16;
/// `struct ifaddrmsg`: family, prefix length, flags, scope, index.
pub const IFADDRMSG_LEN: usize = 8;
/// `struct rtmsg`: family, dst/src length, tos, table, protocol, scope, type, flags.
pub const RTMSG_LEN: usize = 12;

// Message types.
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;
pub const RTM_NEWLINK: u16 = 16;
pub const RTM_DELLINK: u16 = 17;
pub const RTM_GETLINK: u16 = 18;
pub const RTM_SETLINK: u16 = 19;
pub const RTM_NEWADDR: u16 = 20;
pub const RTM_DELADDR: u16 = 21;
pub const RTM_GETADDR: u16 = 22;
pub const RTM_NEWROUTE: u16 = 24;

// Header flags.
pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_DUMP: u16 = 0x300;
pub const NLM_F_REPLACE: u16 = 0x100;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;

/// Attribute types carry two flag bits (nested, network byte order) above the type.
const NLA_TYPE_MASK: u16 = 0x3fff;
/// The flag bit saying an attribute holds attributes ([`Request::nested`] sets it; the kernel's
/// strict parsers want it, the others ignore it, and the readers mask it off).
pub const NLA_F_NESTED: u16 = 0x8000;

// Attributes.
pub const IFLA_IFNAME: u16 = 3;
pub const IFLA_CARRIER: u16 = 33;
pub const IFA_ADDRESS: u16 = 1;
pub const IFA_LOCAL: u16 = 2;
pub const IFA_BROADCAST: u16 = 4;
pub const IFA_MULTICAST: u16 = 7;
pub const IFA_FLAGS: u16 = 8;
pub const RTA_GATEWAY: u16 = 5;

// Values.
pub const IFF_UP: u32 = 0x1;
pub const IFF_LOWER_UP: u32 = 0x1_0000;
pub const IFA_F_NODAD: u32 = 0x2;
pub const AF_INET: u8 = 2;
pub const AF_INET6: u8 = 10;
pub const RT_TABLE_MAIN: u8 = 254;
pub const RTPROT_STATIC: u8 = 4;
pub const RT_SCOPE_UNIVERSE: u8 = 0;
pub const RTN_UNICAST: u8 = 1;
/// `RTMGRP_LINK`: the multicast group of link notifications.
pub const RTMGRP_LINK: u32 = 1;

/// `len` rounded up to the netlink alignment (4), saturating.
fn align(len: usize) -> usize {
    len.saturating_add(3) & !3
}

fn u16_at(bytes: &[u8], offset: usize) -> Option<u16> {
    let raw: [u8; 2] = bytes.get(offset..offset.checked_add(2)?)?.try_into().ok()?;
    Some(u16::from_ne_bytes(raw))
}

fn u32_at(bytes: &[u8], offset: usize) -> Option<u32> {
    let raw: [u8; 4] = bytes.get(offset..offset.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_ne_bytes(raw))
}

fn i32_at(bytes: &[u8], offset: usize) -> Option<i32> {
    let raw: [u8; 4] = bytes.get(offset..offset.checked_add(4)?)?.try_into().ok()?;
    Some(i32::from_ne_bytes(raw))
}

/// One netlink message inside a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    pub kind: u16,
    pub flags: u16,
    pub sequence: u32,
    /// The sender's port id as written in the header (not checked: the socket says who sent).
    pub port: u32,
    /// Everything after the 16-byte header, up to the message's own length.
    pub payload: &'a [u8],
}

/// A datagram holding a message whose length does not fit: the rest of it was not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Malformed;

/// The messages of one received datagram, in order.
///
/// Yields `Err(Malformed)` once and then ends when a header is short, claims less than a
/// header or more than the datagram holds; trailing padding after the last message is fine.
#[derive(Debug, Clone)]
pub struct Messages<'a> {
    rest: &'a [u8],
}

/// Walks the messages of `datagram`.
pub fn messages(datagram: &[u8]) -> Messages<'_> {
    Messages { rest: datagram }
}

impl<'a> Iterator for Messages<'a> {
    type Item = Result<Message<'a>, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let rest = std::mem::take(&mut self.rest);
        let parsed = (|| {
            let length = usize::try_from(u32_at(rest, 0)?).ok()?;
            if length < HEADER_LEN {
                return None;
            }
            let message = Message {
                kind: u16_at(rest, 4)?,
                flags: u16_at(rest, 6)?,
                sequence: u32_at(rest, 8)?,
                port: u32_at(rest, 12)?,
                payload: rest.get(HEADER_LEN..length)?,
            };
            // The last message of a datagram may come without its padding.
            Some((message, rest.get(align(length)..).unwrap_or_default()))
        })();
        match parsed {
            Some((message, after)) => {
                self.rest = after;
                Some(Ok(message))
            }
            None => Some(Err(Malformed)),
        }
    }
}

/// The attributes after a fixed header, as (type without flag bits, value).
///
/// Ends at the first attribute whose length is shorter than its header or longer than what is
/// left.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    rest: &'a [u8],
}

/// Walks the attributes in `bytes` (the payload after its fixed header).
pub fn attributes(bytes: &[u8]) -> Attributes<'_> {
    Attributes { rest: bytes }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let rest = std::mem::take(&mut self.rest);
        let length = usize::from(u16_at(rest, 0)?);
        let kind = u16_at(rest, 2)? & NLA_TYPE_MASK;
        let value = rest.get(ATTRIBUTE_HEADER_LEN..length)?;
        self.rest = rest.get(align(length)..).unwrap_or_default();
        Some((kind, value))
    }
}

/// The errno of an `NLMSG_ERROR` payload, negated as the kernel writes it: 0 is an ack.
/// `None` when the payload is too short to hold it.
pub fn error_code(payload: &[u8]) -> Option<i32> {
    i32_at(payload, 0)
}

/// The status of an `NLMSG_DONE` payload (0, or a negative errno when the dump failed part
/// way); kernels before 2.6.x sent no payload at all, which reads as 0.
pub fn done_code(payload: &[u8]) -> i32 {
    i32_at(payload, 0).unwrap_or(0)
}

/// What Tandem reads of an `RTM_NEWLINK` / `RTM_DELLINK` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link<'a> {
    pub index: u32,
    /// `IFF_*` flags (`IFF_UP`, `IFF_LOWER_UP`, ...).
    pub flags: u32,
    /// `IFLA_IFNAME` without its terminating NUL.
    pub name: Option<&'a [u8]>,
    /// `IFLA_CARRIER` when present and one byte long.
    pub carrier: Option<bool>,
}

/// Reads a link message's payload (`None`: shorter than `struct ifinfomsg`).
pub fn link(payload: &[u8]) -> Option<Link<'_>> {
    let index = u32_at(payload, 4)?;
    let flags = u32_at(payload, 8)?;
    let mut link = Link {
        index,
        flags,
        name: None,
        carrier: None,
    };
    for (kind, value) in attributes(payload.get(IFINFOMSG_LEN..)?) {
        match kind {
            IFLA_IFNAME => {
                let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
                link.name = value.get(..end);
            }
            IFLA_CARRIER => {
                if let [carrier] = value {
                    link.carrier = Some(*carrier != 0);
                }
            }
            _ => {}
        }
    }
    Some(link)
}

/// What Tandem reads of an `RTM_NEWADDR` payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    pub prefix_len: u8,
    pub index: u32,
    /// `IFA_ADDRESS` (the local address, or the peer's on a point-to-point link), when it is
    /// 4 or 16 bytes long.
    pub address: Option<IpAddr>,
}

/// Reads an address message's payload (`None`: shorter than `struct ifaddrmsg`).
pub fn address(payload: &[u8]) -> Option<Address> {
    let prefix_len = *payload.get(1)?;
    let index = u32_at(payload, 4)?;
    let mut address = None;
    for (kind, value) in attributes(payload.get(IFADDRMSG_LEN..)?) {
        if kind == IFA_ADDRESS && address.is_none() {
            address = ip_address(value);
        }
    }
    Some(Address {
        prefix_len,
        index,
        address,
    })
}

fn ip_address(value: &[u8]) -> Option<IpAddr> {
    if let Ok(v4) = <[u8; 4]>::try_from(value) {
        return Some(IpAddr::V4(Ipv4Addr::from(v4)));
    }
    let v6 = <[u8; 16]>::try_from(value).ok()?;
    Some(IpAddr::V6(Ipv6Addr::from(v6)))
}

/// A request being built: header, fixed part, attributes. The sequence number goes in last.
#[derive(Debug, Clone)]
pub struct Request {
    bytes: Vec<u8>,
    /// An attribute too long for its 16-bit length was asked for.
    oversized: bool,
}

impl Request {
    /// A request of type `kind` with header `flags` and the fixed part `fixed` (`ifinfomsg`,
    /// `ifaddrmsg`, `rtmsg`), which is padded to 4 bytes.
    pub fn new(kind: u16, flags: u16, fixed: &[u8]) -> Request {
        let mut bytes = Vec::with_capacity(64);
        bytes.extend_from_slice(&[0; 4]);
        bytes.extend_from_slice(&kind.to_ne_bytes());
        bytes.extend_from_slice(&flags.to_ne_bytes());
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(fixed);
        bytes.resize(align(bytes.len()), 0);
        Request {
            bytes,
            oversized: false,
        }
    }

    /// Appends attribute `kind` holding `value` (padded to 4 bytes).
    pub fn attribute(mut self, kind: u16, value: &[u8]) -> Request {
        let Some(length) = value
            .len()
            .checked_add(ATTRIBUTE_HEADER_LEN)
            .and_then(|length| u16::try_from(length).ok())
        else {
            self.oversized = true;
            return self;
        };
        self.bytes.extend_from_slice(&length.to_ne_bytes());
        self.bytes.extend_from_slice(&kind.to_ne_bytes());
        self.bytes.extend_from_slice(value);
        self.bytes.resize(align(self.bytes.len()), 0);
        self
    }

    /// Appends attribute `kind` with [`NLA_F_NESTED`] holding the attributes `inner` appends to
    /// the request it is handed (`IFLA_LINKINFO`); its length covers them with their padding,
    /// as the kernel's `nla_nest_end` writes it.
    pub fn nested(mut self, kind: u16, inner: impl FnOnce(Request) -> Request) -> Request {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(&[0; ATTRIBUTE_HEADER_LEN]);
        let mut request = inner(self);
        let length = request
            .bytes
            .len()
            .checked_sub(start)
            .and_then(|length| u16::try_from(length).ok());
        let header = request
            .bytes
            .get_mut(start..start.saturating_add(ATTRIBUTE_HEADER_LEN));
        match (length, header) {
            (Some(length), Some(header)) => {
                header[..2].copy_from_slice(&length.to_ne_bytes());
                header[2..].copy_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
            }
            _ => request.oversized = true,
        }
        request
    }

    /// Appends a string attribute with its terminating NUL (`IFLA_IFNAME`).
    pub fn string(self, kind: u16, value: &str) -> Request {
        let mut terminated = Vec::with_capacity(value.len() + 1);
        terminated.extend_from_slice(value.as_bytes());
        terminated.push(0);
        self.attribute(kind, &terminated)
    }

    /// The bytes to send with `sequence` in the header (`None`: an attribute or the whole
    /// message does not fit its length field).
    pub fn finish(mut self, sequence: u32) -> Option<Vec<u8>> {
        if self.oversized {
            return None;
        }
        let length = u32::try_from(self.bytes.len()).ok()?;
        self.bytes
            .get_mut(0..4)?
            .copy_from_slice(&length.to_ne_bytes());
        self.bytes
            .get_mut(8..12)?
            .copy_from_slice(&sequence.to_ne_bytes());
        Some(self.bytes)
    }
}

/// `struct ifinfomsg` for link requests: family `AF_UNSPEC`, `index`, the `IFF_*` `flags` to
/// set and the `change` mask saying which of them to change.
pub fn ifinfomsg(index: u32, flags: u32, change: u32) -> [u8; IFINFOMSG_LEN] {
    let mut out = [0; IFINFOMSG_LEN];
    out[4..8].copy_from_slice(&index.to_ne_bytes());
    out[8..12].copy_from_slice(&flags.to_ne_bytes());
    out[12..16].copy_from_slice(&change.to_ne_bytes());
    out
}

/// `struct ifaddrmsg` for address requests (flags and scope 0).
pub fn ifaddrmsg(family: u8, prefix_len: u8, index: u32) -> [u8; IFADDRMSG_LEN] {
    let mut out = [0; IFADDRMSG_LEN];
    out[0] = family;
    out[1] = prefix_len;
    out[4..8].copy_from_slice(&index.to_ne_bytes());
    out
}

/// `struct rtmsg` for a unicast route to `family`'s default destination (prefix length 0) in the
/// main table, protocol static, scope universe.
pub fn rtmsg_default(family: u8) -> [u8; RTMSG_LEN] {
    let mut out = [0; RTMSG_LEN];
    out[0] = family;
    out[4] = RT_TABLE_MAIN;
    out[5] = RTPROT_STATIC;
    out[6] = RT_SCOPE_UNIVERSE;
    out[7] = RTN_UNICAST;
    out
}

#[cfg(test)]
#[cfg(target_endian = "little")] // the captured bytes are from an x86_64 kernel
mod tests {
    //! The byte files were captured from an x86_64 6.18 kernel with
    //! `testdata/rtnetlink/capture.py`.

    use super::*;

    const GETLINK_LO: &[u8] = include_bytes!("../testdata/rtnetlink/getlink_lo.bin");
    const DUMP_LINKS: &[u8] = include_bytes!("../testdata/rtnetlink/dump_links.bin");
    const DUMP_ADDRESSES: &[u8] = include_bytes!("../testdata/rtnetlink/dump_addresses.bin");
    const ACK: &[u8] = include_bytes!("../testdata/rtnetlink/ack.bin");
    const EEXIST: &[u8] = include_bytes!("../testdata/rtnetlink/error_eexist.bin");
    const ENODEV: &[u8] = include_bytes!("../testdata/rtnetlink/error_enodev.bin");
    const UP_NO_CARRIER: &[u8] =
        include_bytes!("../testdata/rtnetlink/notify_newlink_up_no_carrier.bin");
    const UP_CARRIER: &[u8] = include_bytes!("../testdata/rtnetlink/notify_newlink_up_carrier.bin");
    const DELLINK: &[u8] = include_bytes!("../testdata/rtnetlink/notify_dellink.bin");

    const ALL: &[&[u8]] = &[
        GETLINK_LO,
        DUMP_LINKS,
        DUMP_ADDRESSES,
        ACK,
        EEXIST,
        ENODEV,
        UP_NO_CARRIER,
        UP_CARRIER,
        DELLINK,
    ];

    fn all(datagram: &[u8]) -> Vec<Message<'_>> {
        messages(datagram).collect::<Result<_, _>>().unwrap()
    }

    #[test]
    fn constants_match_the_c_headers() {
        let u16s = [
            (NLMSG_ERROR, libc::NLMSG_ERROR),
            (NLMSG_DONE, libc::NLMSG_DONE),
            (NLM_F_REQUEST, libc::NLM_F_REQUEST),
            (NLM_F_MULTI, libc::NLM_F_MULTI),
            (NLM_F_ACK, libc::NLM_F_ACK),
            (NLM_F_DUMP, libc::NLM_F_DUMP),
            (NLM_F_REPLACE, libc::NLM_F_REPLACE),
            (NLM_F_EXCL, libc::NLM_F_EXCL),
            (NLM_F_CREATE, libc::NLM_F_CREATE),
            (NLA_TYPE_MASK, libc::NLA_TYPE_MASK & 0xffff),
            (NLA_F_NESTED, libc::NLA_F_NESTED),
            (AF_INET.into(), libc::AF_INET),
            (AF_INET6.into(), libc::AF_INET6),
        ];
        for (ours, theirs) in u16s {
            assert_eq!(i32::from(ours), theirs);
        }
        let types = [
            (RTM_NEWLINK, libc::RTM_NEWLINK),
            (RTM_DELLINK, libc::RTM_DELLINK),
            (RTM_GETLINK, libc::RTM_GETLINK),
            (RTM_SETLINK, libc::RTM_SETLINK),
            (RTM_NEWADDR, libc::RTM_NEWADDR),
            (RTM_DELADDR, libc::RTM_DELADDR),
            (RTM_GETADDR, libc::RTM_GETADDR),
            (RTM_NEWROUTE, libc::RTM_NEWROUTE),
            (IFLA_IFNAME, libc::IFLA_IFNAME),
            (IFLA_CARRIER, libc::IFLA_CARRIER),
            (IFA_ADDRESS, libc::IFA_ADDRESS),
            (IFA_LOCAL, libc::IFA_LOCAL),
            (IFA_BROADCAST, libc::IFA_BROADCAST),
            (IFA_MULTICAST, libc::IFA_MULTICAST),
            (IFA_FLAGS, libc::IFA_FLAGS),
            (RTA_GATEWAY, libc::RTA_GATEWAY),
        ];
        for (ours, theirs) in types {
            assert_eq!(ours, theirs);
        }
        assert_eq!(i64::from(IFF_UP), i64::from(libc::IFF_UP));
        assert_eq!(i64::from(IFF_LOWER_UP), i64::from(libc::IFF_LOWER_UP));
        assert_eq!(IFA_F_NODAD, libc::IFA_F_NODAD);
        assert_eq!(RT_TABLE_MAIN, libc::RT_TABLE_MAIN);
        assert_eq!(RTPROT_STATIC, libc::RTPROT_STATIC);
        assert_eq!(RT_SCOPE_UNIVERSE, libc::RT_SCOPE_UNIVERSE);
        assert_eq!(RTN_UNICAST, libc::RTN_UNICAST);
        assert_eq!(i64::from(RTMGRP_LINK), i64::from(libc::RTMGRP_LINK));
        assert_eq!(HEADER_LEN, size_of::<libc::nlmsghdr>());
        assert_eq!(IFINFOMSG_LEN, size_of::<libc::ifinfomsg>());
        assert_eq!(IFADDRMSG_LEN, size_of::<libc::ifaddrmsg>());
    }

    #[test]
    fn a_link_reply_reads_index_flags_name_and_carrier() {
        let [reply] = all(GETLINK_LO)[..] else {
            panic!("one message")
        };
        assert_eq!(reply.kind, RTM_NEWLINK);
        assert_eq!(reply.sequence, 1);
        assert_eq!(reply.flags & NLM_F_MULTI, 0);
        let lo = link(reply.payload).unwrap();
        assert_eq!(lo.index, 1);
        assert_eq!(lo.name, Some(&b"lo"[..]));
        // Down in a fresh namespace: LOOPBACK only, yet the carrier attribute says 1.
        assert_eq!(lo.flags, 0x8);
        assert_eq!(lo.carrier, Some(true));
    }

    #[test]
    fn a_dump_is_several_multi_messages_then_done() {
        let dump = all(DUMP_LINKS);
        let names: Vec<_> = dump
            .iter()
            .filter(|m| m.kind == RTM_NEWLINK)
            .map(|m| {
                let l = link(m.payload).unwrap();
                (l.index, l.name.unwrap())
            })
            .collect();
        assert_eq!(names, [(1, &b"lo"[..]), (2, &b"vb"[..]), (3, &b"va"[..])]);
        assert!(dump.iter().all(|m| m.flags & NLM_F_MULTI != 0));
        assert!(dump.iter().all(|m| m.sequence == 2));
        let done = dump.last().unwrap();
        assert_eq!(done.kind, NLMSG_DONE);
        assert_eq!(done_code(done.payload), 0);
        assert_eq!(done_code(&[]), 0);
    }

    #[test]
    fn notifications_carry_admin_state_carrier_and_removal() {
        let [up] = all(UP_NO_CARRIER)[..] else {
            panic!()
        };
        let vb = link(up.payload).unwrap();
        assert_eq!((up.kind, up.sequence, up.port), (RTM_NEWLINK, 0, 0));
        assert_eq!(vb.name, Some(&b"vb"[..]));
        assert!(vb.flags & IFF_UP != 0 && vb.flags & IFF_LOWER_UP == 0);
        assert_eq!(vb.carrier, Some(false));

        let [up] = all(UP_CARRIER)[..] else { panic!() };
        let va = link(up.payload).unwrap();
        assert_eq!((va.index, va.name), (3, Some(&b"va"[..])));
        assert!(va.flags & IFF_UP != 0 && va.flags & IFF_LOWER_UP != 0);
        assert_eq!(va.carrier, Some(true));

        let [gone] = all(DELLINK)[..] else { panic!() };
        assert_eq!(gone.kind, RTM_DELLINK);
        assert_eq!(link(gone.payload).unwrap().index, 3);
    }

    #[test]
    fn acks_and_errors_carry_the_negated_errno() {
        let [ack] = all(ACK)[..] else { panic!() };
        assert_eq!((ack.kind, ack.sequence), (NLMSG_ERROR, 3));
        assert_eq!(error_code(ack.payload), Some(0));
        let [exists] = all(EEXIST)[..] else { panic!() };
        assert_eq!(error_code(exists.payload), Some(-libc::EEXIST));
        let [no_device] = all(ENODEV)[..] else {
            panic!()
        };
        assert_eq!(error_code(no_device.payload), Some(-libc::ENODEV));
        assert_eq!(error_code(&[1, 2, 3]), None);
    }

    #[test]
    fn address_dumps_read_prefix_index_and_address() {
        let dump = all(DUMP_ADDRESSES);
        let addresses: Vec<_> = dump
            .iter()
            .filter(|m| m.kind == RTM_NEWADDR)
            .map(|m| address(m.payload).unwrap())
            .collect();
        assert_eq!(
            addresses,
            [
                Address {
                    prefix_len: 24,
                    index: 3,
                    address: Some("192.0.2.1".parse().unwrap()),
                },
                Address {
                    prefix_len: 64,
                    index: 3,
                    address: Some("2001:db8::1".parse().unwrap()),
                },
            ]
        );
    }

    #[test]
    fn built_requests_match_what_the_kernel_was_sent() {
        // The capture sent this exact address add (sequence 3) and got ACK back.
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let IpAddr::V4(v4) = a else { panic!() };
        let request = Request::new(
            RTM_NEWADDR,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE,
            &ifaddrmsg(AF_INET, 24, 3),
        )
        .attribute(IFA_ADDRESS, &v4.octets())
        .attribute(IFA_LOCAL, &v4.octets())
        .attribute(IFA_BROADCAST, &[192, 0, 2, 255])
        .finish(3)
        .unwrap();
        // The ack echoes the request's header: length 48, type 20, the flags, sequence 3.
        let [ack] = all(ACK)[..] else { panic!() };
        let echoed = &ack.payload[4..4 + HEADER_LEN];
        assert_eq!(&request[..12], &echoed[..12]);
        assert_eq!(request.len(), 48);

        // A name attribute is NUL-terminated and padded; the message walks back as built.
        let rename = Request::new(RTM_SETLINK, NLM_F_REQUEST, &ifinfomsg(7, IFF_UP, IFF_UP))
            .string(IFLA_IFNAME, "public")
            .finish(9)
            .unwrap();
        assert_eq!(rename.len(), HEADER_LEN + IFINFOMSG_LEN + 12);
        let [message] = all(&rename)[..] else {
            panic!()
        };
        assert_eq!((message.kind, message.sequence), (RTM_SETLINK, 9));
        let parsed = link(message.payload).unwrap();
        assert_eq!(
            (parsed.index, parsed.flags, parsed.name),
            (7, IFF_UP, Some(&b"public"[..]))
        );

        let route = Request::new(RTM_NEWROUTE, NLM_F_REQUEST, &rtmsg_default(AF_INET))
            .attribute(RTA_GATEWAY, &[198, 51, 100, 1])
            .finish(1)
            .unwrap();
        assert_eq!(
            &route[HEADER_LEN..],
            &[2, 0, 0, 0, 254, 4, 0, 1, 0, 0, 0, 0, 8, 0, 5, 0, 198, 51, 100, 1]
        );

        let too_long = vec![b'x'; 70_000];
        assert!(Request::new(RTM_SETLINK, 0, &[])
            .attribute(IFLA_IFNAME, &too_long)
            .finish(1)
            .is_none());
    }

    #[test]
    fn nested_attributes_carry_the_flag_and_cover_their_padded_contents() {
        // IFLA_LINKINFO (18) { IFLA_INFO_KIND (1) "bond\0", IFLA_INFO_DATA (2) { 1: u8 1 } }
        let request = Request::new(RTM_NEWLINK, NLM_F_REQUEST, &[])
            .nested(18, |r| {
                r.string(1, "bond").nested(2, |r| r.attribute(1, &[1]))
            })
            .attribute(IFLA_CARRIER, &[1])
            .finish(5)
            .unwrap();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            28, 0, 18, 0x80,
                9, 0, 1, 0, b'b', b'o', b'n', b'd', 0, 0, 0, 0,
                12, 0, 2, 0x80,
                    5, 0, 1, 0, 1, 0, 0, 0,
            5, 0, 33, 0, 1, 0, 0, 0,
        ];
        assert_eq!(&request[HEADER_LEN..], expected);
        // The readers mask the flag and walk into the nest.
        let [(kind, value), (carrier, _)] =
            attributes(&request[HEADER_LEN..]).collect::<Vec<_>>()[..]
        else {
            panic!()
        };
        assert_eq!((kind, carrier), (18, IFLA_CARRIER));
        let inner: Vec<_> = attributes(value).map(|(kind, _)| kind).collect();
        assert_eq!(inner, [1, 2]);
        // An empty nest is a bare header; one over 64 KiB fails like a long attribute.
        let empty = Request::new(0, 0, &[]).nested(2, |r| r).finish(0).unwrap();
        assert_eq!(&empty[HEADER_LEN..], &[4, 0, 2, 0x80]);
        let too_long = vec![b'x'; 40_000];
        assert!(Request::new(0, 0, &[])
            .nested(2, |r| r.attribute(1, &too_long).attribute(1, &too_long))
            .finish(0)
            .is_none());
    }

    /// Reads everything a caller would from `bytes`, to prove it does not panic.
    fn read_everything(bytes: &[u8]) {
        for message in messages(bytes) {
            let Ok(message) = message else { break };
            let _ = link(message.payload);
            let _ = address(message.payload);
            let _ = error_code(message.payload);
            let _ = done_code(message.payload);
            for _ in attributes(message.payload) {}
        }
        let _ = link(bytes);
        let _ = address(bytes);
        for _ in attributes(bytes) {}
    }

    #[test]
    fn truncated_datagrams_end_in_malformed_never_a_panic() {
        for datagram in ALL {
            for cut in 0..datagram.len() {
                let short = &datagram[..cut];
                read_everything(short);
                let walked: Vec<_> = messages(short).collect();
                // Cut inside a message: everything before it, then Malformed, then the end.
                if let Some(Err(Malformed)) = walked.last() {
                    assert!(walked[..walked.len() - 1].iter().all(Result::is_ok));
                }
            }
        }
        assert_eq!(messages(&[]).count(), 0);
        // A length below the header size, or above the datagram, is malformed.
        let mut tiny = ACK.to_vec();
        tiny[..4].copy_from_slice(&8u32.to_ne_bytes());
        assert_eq!(messages(&tiny).collect::<Vec<_>>(), [Err(Malformed)]);
        let mut huge = ACK.to_vec();
        huge[..4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(messages(&huge).collect::<Vec<_>>(), [Err(Malformed)]);
    }

    #[test]
    fn hostile_attribute_lengths_stop_the_walk() {
        // Zero, short and overlong attribute lengths.
        for length in [0u16, 1, 3, 4, 5, 0xffff] {
            let mut payload = ifinfomsg(4, IFF_UP, 0).to_vec();
            payload.extend_from_slice(&length.to_ne_bytes());
            payload.extend_from_slice(&IFLA_IFNAME.to_ne_bytes());
            payload.extend_from_slice(b"eth0\0\0\0\0");
            let parsed = link(&payload).unwrap();
            assert_eq!(parsed.index, 4);
            assert!(parsed.name.is_none_or(|name| b"eth0".starts_with(name)));
        }
        // A name without NUL is taken whole; a carrier of the wrong size is ignored.
        let payload = Request::new(0, 0, &ifinfomsg(4, 0, 0))
            .attribute(IFLA_IFNAME, b"eth0")
            .attribute(IFLA_CARRIER, &[1, 0])
            .finish(0)
            .unwrap();
        let parsed = link(&payload[HEADER_LEN..]).unwrap();
        assert_eq!((parsed.name, parsed.carrier), (Some(&b"eth0"[..]), None));
        // Addresses of other sizes are not addresses.
        let payload = Request::new(0, 0, &ifaddrmsg(AF_INET, 8, 2))
            .attribute(IFA_ADDRESS, &[10, 0, 0])
            .finish(0)
            .unwrap();
        assert_eq!(address(&payload[HEADER_LEN..]).unwrap().address, None);
        assert_eq!(link(&[0; 15]), None);
        assert_eq!(address(&[0; 7]), None);
    }

    #[test]
    fn random_corruption_never_panics() {
        // xorshift: deterministic, no dependency.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for datagram in ALL {
            for _ in 0..2000 {
                let mut bytes = datagram.to_vec();
                for _ in 0..1 + next() % 8 {
                    let at = usize::try_from(next() % u64::try_from(bytes.len()).unwrap()).unwrap();
                    bytes[at] = u8::try_from(next() & 0xff).unwrap();
                }
                read_everything(&bytes);
            }
        }
    }
}
