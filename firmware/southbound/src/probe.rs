//! Peer-cable reachability: an ICMPv6 echo to all-nodes (`ff02::1`) on one link.
//!
//! The peer cable carries IPv6 link-local addresses the kernel derives from each NIC's MAC, so
//! the partner box answers without any configuration. A reply from another address on that link
//! proves the cable, both NICs and the partner's kernel are alive.

use std::net::{Ipv6Addr, SocketAddrV6};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{recvfrom, SockaddrIn6};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

const ECHO_REQUEST: u8 = 128;
const ECHO_REPLY: u8 = 129;

/// A partner that answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EchoReply {
    pub from: Ipv6Addr,
    pub rtt: Duration,
}

/// Sends one echo request to `ff02::1` out of `ifname` and waits up to `timeout` for the first
/// reply. `Ok(None)` means nobody answered in time.
pub fn echo_all_nodes(
    ifname: &str,
    ifindex: u32,
    identifier: u16,
    sequence: u16,
    timeout: Duration,
) -> std::io::Result<Option<EchoReply>> {
    let socket = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    socket.bind_device(Some(ifname.as_bytes()))?;
    socket.set_multicast_if_v6(ifindex)?;
    socket.set_multicast_loop_v6(false)?;
    socket.set_multicast_hops_v6(1)?;

    let mut request = [0u8; 16];
    request[0] = ECHO_REQUEST;
    request[4..6].copy_from_slice(&identifier.to_be_bytes());
    request[6..8].copy_from_slice(&sequence.to_be_bytes());
    request[8..16].copy_from_slice(b"tandem\0\0");
    // The kernel fills in the ICMPv6 checksum on raw ICMPv6 sockets.
    let destination = SocketAddrV6::new(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1), 0, 0, ifindex);
    let sent_at = Instant::now();
    socket.send_to(&request, &SockAddr::from(destination))?;

    let deadline = sent_at + timeout;
    let mut buffer = [0u8; 1500];
    loop {
        let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            return Ok(None);
        };
        socket.set_read_timeout(Some(left))?;
        let (length, from) = match recvfrom::<SockaddrIn6>(socket.as_raw_fd(), &mut buffer) {
            Ok(got) => got,
            Err(Errno::EAGAIN | Errno::ETIMEDOUT) => return Ok(None),
            Err(Errno::EINTR) => continue,
            Err(errno) => return Err(errno.into()),
        };
        let received = buffer.get(..length).unwrap_or_default();
        if let (true, Some(from)) = (is_our_reply(received, identifier, sequence), from) {
            return Ok(Some(EchoReply {
                from: from.ip(),
                rtt: sent_at.elapsed(),
            }));
        }
    }
}

/// An echo reply (type 129) carrying our identifier and sequence.
fn is_our_reply(packet: &[u8], identifier: u16, sequence: u16) -> bool {
    packet.len() >= 8
        && packet.first() == Some(&ECHO_REPLY)
        && packet.get(4..6) == Some(&identifier.to_be_bytes()[..])
        && packet.get(6..8) == Some(&sequence.to_be_bytes()[..])
}
