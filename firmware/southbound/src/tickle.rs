//! Sends tickle ACKs (whole IP packets built by `tandem_wire::tickle`) from raw sockets.
//!
//! `AF_INET` / `AF_INET6` `SOCK_RAW` with `IPPROTO_RAW`: the kernel takes the IP header as
//! given (IPv4: `IP_HDRINCL` is implied, the kernel only fills in a zero identification and the
//! header checksum; IPv6: `IPPROTO_RAW` implies header inclusion too), so the tickle leaves
//! from the virtual address although no socket of ours owns that connection. Routing picks the
//! interface as for any packet to the client.

use std::io;
use std::net::{IpAddr, SocketAddrV4, SocketAddrV6};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// IP protocol number `IPPROTO_RAW` (header included by the sender).
const IPPROTO_RAW: i32 = 255;

/// One raw socket per family, opened when first needed.
#[derive(Debug, Default)]
pub struct TickleSocket {
    v4: Option<Socket>,
    v6: Option<Socket>,
}

impl TickleSocket {
    pub fn new() -> TickleSocket {
        TickleSocket::default()
    }

    /// Sends one whole IP packet (header included) to `destination`, the packet's own
    /// destination address.
    pub fn send(&mut self, packet: &[u8], destination: IpAddr) -> io::Result<()> {
        let (socket, to) = match destination {
            IpAddr::V4(v4) => (
                open(&mut self.v4, Domain::IPV4)?,
                SockAddr::from(SocketAddrV4::new(v4, 0)),
            ),
            // The port of an IPv6 raw sendto must be 0 (or the protocol).
            IpAddr::V6(v6) => (
                open(&mut self.v6, Domain::IPV6)?,
                SockAddr::from(SocketAddrV6::new(v6, 0, 0, 0)),
            ),
        };
        let sent = socket.send_to(packet, &to)?;
        if sent == packet.len() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("raw socket sent {sent} of {} bytes", packet.len()),
            ))
        }
    }
}

fn open(slot: &mut Option<Socket>, domain: Domain) -> io::Result<&Socket> {
    if slot.is_none() {
        let socket = Socket::new(domain, Type::RAW, Some(Protocol::from(IPPROTO_RAW)))?;
        *slot = Some(socket);
    }
    slot.as_ref()
        .ok_or_else(|| io::Error::other("raw socket vanished after opening"))
}
