//! VRRP's raw IP sockets (IP protocol 112) on one interface, for IPv4 and IPv6.
//!
//! Adverts go to 224.0.0.18 / ff02::12 (or unicast peers) with TTL / hop limit 255, and every
//! received advert comes back with the TTL or hop limit it arrived with, so the state machine
//! can discard anything that crossed a router (RFC 9568 section 7.1). IPv4 headers are built
//! here (IP_HDRINCL) so the source address used in the VRRPv3 checksum is the one on the wire;
//! IPv6 pins its source with IPV6_PKTINFO for the same reason. A `use_vmac` instance's socket
//! sits on its macvlan ([`VrrpSocket::open_on_vmac`]).

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    recvmsg, sendmsg, setsockopt, sockopt, ControlMessage, ControlMessageOwned, MsgFlags,
    SockaddrIn6,
};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// IP protocol number of VRRP.
pub const IPPROTO_VRRP: i32 = 112;
/// 224.0.0.18.
pub const VRRP_GROUP_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// ff02::12.
pub const VRRP_GROUP_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// TTL / hop limit VRRP sends and requires.
pub const VRRP_TTL: u8 = 255;

/// One received datagram: where the VRRP payload sits in the caller's buffer and how it came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    pub source: IpAddr,
    pub destination: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6) on arrival.
    pub ttl: u8,
    /// Start of the VRRP payload in the buffer.
    pub offset: usize,
    /// Length of the VRRP payload.
    pub length: usize,
}

/// A datagram the socket could not make sense of (counted by the caller, never fatal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Shorter than an IPv4 header, or a header length / total length that does not fit.
    BadIpv4Header,
    /// IPv6 delivery without the hop limit or destination the socket asked the kernel for.
    MissingAncillaryData,
}

/// A VRRP raw socket bound to one interface.
#[derive(Debug)]
pub struct VrrpSocket {
    inner: AsyncFd<Socket>,
    ipv6: bool,
    ifindex: u32,
}

impl VrrpSocket {
    /// Opens the IPv4 socket on `ifname` and joins 224.0.0.18 there.
    pub fn open_ipv4(ifname: &str, ifindex: u32) -> io::Result<VrrpSocket> {
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(IPPROTO_VRRP)))?;
        socket.bind_device(Some(ifname.as_bytes()))?;
        socket.set_header_included_v4(true)?;
        socket.join_multicast_v4_n(&VRRP_GROUP_V4, &InterfaceIndexOrAddress::Index(ifindex))?;
        socket.set_multicast_loop_v4(false)?;
        socket.set_nonblocking(true)?;
        Ok(VrrpSocket {
            inner: register(socket)?,
            ipv6: false,
            ifindex,
        })
    }

    /// Opens the IPv6 socket on `ifname` and joins ff02::12 there.
    pub fn open_ipv6(ifname: &str, ifindex: u32) -> io::Result<VrrpSocket> {
        let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::from(IPPROTO_VRRP)))?;
        socket.bind_device(Some(ifname.as_bytes()))?;
        socket.join_multicast_v6(&VRRP_GROUP_V6, ifindex)?;
        socket.set_multicast_loop_v6(false)?;
        socket.set_multicast_hops_v6(u32::from(VRRP_TTL))?;
        socket.set_unicast_hops_v6(u32::from(VRRP_TTL))?;
        setsockopt(&socket, sockopt::Ipv6RecvHopLimit, &true)?;
        setsockopt(&socket, sockopt::Ipv6RecvPacketInfo, &true)?;
        socket.set_nonblocking(true)?;
        Ok(VrrpSocket {
            inner: register(socket)?,
            ipv6: true,
            ifindex,
        })
    }

    /// Opens the socket of a `use_vmac` instance on its macvlan `ifname` (see
    /// [`crate::macvlan`]): the group is joined there, where the partner's adverts from the same
    /// virtual MAC arrive, and adverts leave from it, so their source MAC is the virtual MAC.
    /// Their source address is still the parent's: an IPv6 macvlan has no address of its own,
    /// so the socket may send from the parent's link-local address (`IPV6_FREEBIND`).
    pub fn open_on_vmac(ifname: &str, ifindex: u32, ipv6: bool) -> io::Result<VrrpSocket> {
        if !ipv6 {
            return VrrpSocket::open_ipv4(ifname, ifindex);
        }
        let socket = VrrpSocket::open_ipv6(ifname, ifindex)?;
        socket.inner.get_ref().set_freebind_v6(true)?;
        Ok(socket)
    }

    /// Waits for the next datagram. `Ok(Err(_))` is a malformed one (count it, keep going).
    pub async fn recv(&self, buffer: &mut [u8]) -> io::Result<Result<Received, Malformed>> {
        loop {
            let mut guard = self.inner.readable().await?;
            let result = guard.try_io(|inner| {
                if self.ipv6 {
                    recv_ipv6(inner.get_ref(), buffer)
                } else {
                    let length = nix::sys::socket::recv(
                        inner.get_ref().as_raw_fd(),
                        buffer,
                        MsgFlags::empty(),
                    )?;
                    Ok(parse_ipv4(buffer.get(..length).unwrap_or_default()))
                }
            });
            match result {
                Ok(received) => return received,
                Err(_would_block) => continue,
            }
        }
    }

    /// Sends a VRRP payload from `source` to `destination` with TTL / hop limit 255.
    pub async fn send(&self, source: IpAddr, destination: IpAddr, vrrp: &[u8]) -> io::Result<()> {
        match (source, destination) {
            (IpAddr::V4(source), IpAddr::V4(destination)) => {
                let header = ipv4_header(source, destination, vrrp.len())?;
                let to = SockAddr::from(SocketAddrV4::new(destination, 0));
                self.inner
                    .async_io(Interest::WRITABLE, |inner| {
                        let slices = [IoSlice::new(&header), IoSlice::new(vrrp)];
                        inner.send_to_vectored(&slices, &to)
                    })
                    .await
                    .map(|_| ())
            }
            (IpAddr::V6(source), IpAddr::V6(destination)) => {
                let scope = if destination.is_multicast() || is_link_local(destination) {
                    self.ifindex
                } else {
                    0
                };
                let to = SockaddrIn6::from(SocketAddrV6::new(destination, 0, 0, scope));
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr {
                        s6_addr: source.octets(),
                    },
                    ipi6_ifindex: self.ifindex,
                };
                self.inner
                    .async_io(Interest::WRITABLE, |inner| {
                        let cmsgs = [ControlMessage::Ipv6PacketInfo(&info)];
                        sendmsg(
                            inner.as_raw_fd(),
                            &[IoSlice::new(vrrp)],
                            &cmsgs,
                            MsgFlags::empty(),
                            Some(&to),
                        )
                        .map_err(io::Error::from)
                    })
                    .await
                    .map(|_| ())
            }
            _ => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "VRRP source and destination must be of the same address family",
            )),
        }
    }
}

/// Hands an owned socket to the tokio reactor.
fn register(socket: Socket) -> io::Result<AsyncFd<Socket>> {
    // SAFETY: `Socket` owns its descriptor: it stays open and unchanged until the `AsyncFd`
    // (which owns the `Socket`) is dropped, and `as_raw_fd` always returns that descriptor.
    #[allow(unsafe_code)]
    let registered = unsafe { AsyncFd::register(socket) };
    registered.map_err(|error| io::Error::other(error.to_string()))
}

fn is_link_local(address: Ipv6Addr) -> bool {
    address.segments()[0] & 0xffc0 == 0xfe80
}

fn recv_ipv6(socket: &Socket, buffer: &mut [u8]) -> io::Result<Result<Received, Malformed>> {
    let mut control = nix::cmsg_space!(libc::c_int, libc::in6_pktinfo);
    let mut iov = [IoSliceMut::new(buffer)];
    let message = recvmsg::<SockaddrIn6>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::empty(),
    )?;
    let (mut hop_limit, mut destination) = (None, None);
    for cmsg in message.cmsgs()? {
        match cmsg {
            ControlMessageOwned::Ipv6HopLimit(limit) => hop_limit = u8::try_from(limit).ok(),
            ControlMessageOwned::Ipv6PacketInfo(info) => {
                destination = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
            }
            _ => {}
        }
    }
    let source = message.address.map(|a| a.ip());
    let length = message.bytes;
    Ok(match (source, destination, hop_limit) {
        (Some(source), Some(destination), Some(ttl)) => Ok(Received {
            source: IpAddr::V6(source),
            destination: IpAddr::V6(destination),
            ttl,
            offset: 0,
            length,
        }),
        _ => Err(Malformed::MissingAncillaryData),
    })
}

/// Splits a raw IPv4 delivery into header facts and the payload's place.
pub fn parse_ipv4(datagram: &[u8]) -> Result<Received, Malformed> {
    let first = *datagram.first().ok_or(Malformed::BadIpv4Header)?;
    let header_length = usize::from(first & 0x0f) * 4;
    if first >> 4 != 4 || header_length < 20 || datagram.len() < header_length {
        return Err(Malformed::BadIpv4Header);
    }
    let octets = |at: usize| -> Result<[u8; 4], Malformed> {
        datagram
            .get(at..at + 4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .ok_or(Malformed::BadIpv4Header)
    };
    let total = datagram
        .get(2..4)
        .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
        .ok_or(Malformed::BadIpv4Header)?;
    // The kernel hands raw sockets the datagram as received; trailing link padding is not VRRP.
    if total < header_length || total > datagram.len() {
        return Err(Malformed::BadIpv4Header);
    }
    Ok(Received {
        source: IpAddr::V4(Ipv4Addr::from(octets(12)?)),
        destination: IpAddr::V4(Ipv4Addr::from(octets(16)?)),
        ttl: *datagram.get(8).ok_or(Malformed::BadIpv4Header)?,
        offset: header_length,
        length: total - header_length,
    })
}

/// The IPv4 header for an advert: TOS internetwork control, TTL 255, protocol 112. The kernel
/// fills in the identification and the header checksum.
pub fn ipv4_header(
    source: Ipv4Addr,
    destination: Ipv4Addr,
    payload: usize,
) -> io::Result<[u8; 20]> {
    let total = u16::try_from(20 + payload)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "advert larger than 64 KiB"))?;
    let mut header = [0u8; 20];
    header[0] = 0x45;
    header[1] = 0xc0;
    header[2..4].copy_from_slice(&total.to_be_bytes());
    header[8] = VRRP_TTL;
    header[9] = 112;
    header[12..16].copy_from_slice(&source.octets());
    header[16..20].copy_from_slice(&destination.octets());
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_headers_round_trip_and_garbage_is_refused() {
        let source = Ipv4Addr::new(192, 0, 2, 1);
        let header = ipv4_header(source, VRRP_GROUP_V4, 8).unwrap();
        let mut datagram = header.to_vec();
        datagram.extend_from_slice(&[0x31, 1, 100, 1, 0, 100, 0, 0]);
        datagram.extend_from_slice(&[0; 6]); // Ethernet padding after the datagram
        let got = parse_ipv4(&datagram).unwrap();
        assert_eq!(got.source, IpAddr::V4(source));
        assert_eq!(got.destination, IpAddr::V4(VRRP_GROUP_V4));
        assert_eq!((got.ttl, got.offset, got.length), (255, 20, 8));
        assert_eq!(parse_ipv4(&[]), Err(Malformed::BadIpv4Header));
        assert_eq!(parse_ipv4(&[0x46; 20]), Err(Malformed::BadIpv4Header));
        for cut in 0..datagram.len() {
            let _ = parse_ipv4(&datagram[..cut]);
        }
        let mut lying = datagram.clone();
        lying[2..4].copy_from_slice(&500u16.to_be_bytes());
        assert_eq!(parse_ipv4(&lying), Err(Malformed::BadIpv4Header));
    }
}
