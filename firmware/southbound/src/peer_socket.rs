//! A UDP socket on the peer cable: IPv6 link-local only, hop limit 255 both ways (GTSM,
//! RFC 5082), for the datagrams the two boxes of a pair exchange (the connection lists that
//! drive tickle ACKs).
//!
//! The partner's link-local address needs no configuration: datagrams go to all-nodes
//! (`ff02::1`) out of the peer NIC, which on a dedicated cable reaches exactly the partner.
//! Every received datagram comes with its source and the hop limit it arrived with, so the
//! caller can refuse anything that is not link-local or that crossed a router.

use std::io::{self, IoSliceMut};
use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrIn6};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Hop limit sent, and required on receipt.
pub const PEER_HOP_LIMIT: u8 = 255;
/// IPv6 all-nodes, the destination of every datagram.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// One received datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerDatagram {
    pub source: Ipv6Addr,
    /// Hop limit on arrival (None: the kernel did not say, which the caller must refuse).
    pub hop_limit: Option<u8>,
    /// Bytes of the datagram at the start of the caller's buffer (may exceed the buffer when
    /// the datagram was truncated).
    pub length: usize,
    /// The datagram was longer than the buffer.
    pub truncated: bool,
}

/// True for fe80::/10.
pub fn is_link_local(address: Ipv6Addr) -> bool {
    address.segments()[0] & 0xffc0 == 0xfe80
}

/// The peer-cable UDP socket, bound to one interface and port.
#[derive(Debug)]
pub struct PeerSocket {
    inner: AsyncFd<Socket>,
    ifindex: u32,
    port: u16,
}

impl PeerSocket {
    /// Binds `[::]:port` on `ifname` only.
    pub fn open(ifname: &str, ifindex: u32, port: u16) -> io::Result<PeerSocket> {
        let socket = Socket::new(Domain::IPV6, Type::DGRAM, Some(Protocol::UDP))?;
        socket.set_only_v6(true)?;
        socket.bind_device(Some(ifname.as_bytes()))?;
        socket.set_unicast_hops_v6(u32::from(PEER_HOP_LIMIT))?;
        socket.set_multicast_hops_v6(u32::from(PEER_HOP_LIMIT))?;
        socket.set_multicast_if_v6(ifindex)?;
        socket.set_multicast_loop_v6(false)?;
        setsockopt(&socket, sockopt::Ipv6RecvHopLimit, &true)?;
        socket.bind(&SockAddr::from(SocketAddrV6::new(
            Ipv6Addr::UNSPECIFIED,
            port,
            0,
            0,
        )))?;
        socket.set_nonblocking(true)?;
        // SAFETY: `Socket` owns its descriptor: it stays open and unchanged until the `AsyncFd`
        // (which owns the `Socket`) is dropped, and `as_raw_fd` always returns that descriptor.
        #[allow(unsafe_code)]
        let inner = unsafe { AsyncFd::register(socket) }
            .map_err(|error| io::Error::other(error.to_string()))?;
        Ok(PeerSocket {
            inner,
            ifindex,
            port,
        })
    }

    /// Sends one datagram to the partner (all-nodes on the peer link, same port).
    pub async fn send(&self, datagram: &[u8]) -> io::Result<()> {
        let to = SockAddr::from(SocketAddrV6::new(ALL_NODES, self.port, 0, self.ifindex));
        self.inner
            .async_io(Interest::WRITABLE, |inner| inner.send_to(datagram, &to))
            .await
            .map(|_| ())
    }

    /// Waits for the next datagram.
    pub async fn recv(&self, buffer: &mut [u8]) -> io::Result<PeerDatagram> {
        loop {
            let mut guard = self.inner.readable().await?;
            match guard.try_io(|inner| receive(inner.get_ref(), buffer)) {
                Ok(result) => return result,
                Err(_would_block) => continue,
            }
        }
    }
}

fn receive(socket: &Socket, buffer: &mut [u8]) -> io::Result<PeerDatagram> {
    let mut control = nix::cmsg_space!(libc::c_int);
    let mut iov = [IoSliceMut::new(buffer)];
    let message = recvmsg::<SockaddrIn6>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut control),
        MsgFlags::MSG_TRUNC,
    )?;
    let mut hop_limit = None;
    for cmsg in message.cmsgs()? {
        if let ControlMessageOwned::Ipv6HopLimit(limit) = cmsg {
            hop_limit = u8::try_from(limit).ok();
        }
    }
    let source = message
        .address
        .map_or(Ipv6Addr::UNSPECIFIED, |address| address.ip());
    Ok(PeerDatagram {
        source,
        hop_limit,
        length: message.bytes,
        truncated: message.flags.contains(MsgFlags::MSG_TRUNC),
    })
}
