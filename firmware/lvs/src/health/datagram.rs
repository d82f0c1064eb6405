//! The sockets of the datagram checks (ICMP echo, UDP, DNS over UDP), and what their errors
//! say to the operator.
//!
//! Every socket is connected to the target (the kernel then hands over only what the target
//! sends) and has `IP_RECVERR` / `IPV6_RECVERR` on, as keepalived's `UDP_CHECK` does, so an
//! ICMP port, host or network unreachable for what the check sent comes back as the socket's
//! error on the next receive (without it, a connected socket only sees port unreachable).
//!
//! Ping checks prefer an unprivileged ICMP datagram socket (`SOCK_DGRAM` / `IPPROTO_ICMP`:
//! the kernel hands each socket only the replies to it), which the kernel allows only to groups
//! in `net.ipv4.ping_group_range` (none by default; the daemon's LVS engine widens it to root's
//! group, as keepalived does); else a raw ICMP socket (PID 1 is root), which sees every ICMP
//! message from its target. The choice is made once per process: the first check that finds
//! datagram sockets refused uses raw sockets, and so does every check after it.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicU8, Ordering};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use super::icmp::Framing;
use super::reply::FailReason;

/// Which kind of ICMP socket a ping check uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpSocketKind {
    /// `SOCK_DGRAM` with `IPPROTO_ICMP` / `IPPROTO_ICMPV6` (ping sockets).
    Datagram,
    /// `SOCK_RAW` (needs `CAP_NET_RAW`).
    Raw,
}

/// The process' choice: 0 not made yet, 1 datagram, 2 raw.
static CHOSEN: AtomicU8 = AtomicU8::new(0);

/// The kind of ICMP socket ping checks use now (`None` before the first check).
pub fn icmp_socket_kind() -> Option<IcmpSocketKind> {
    match CHOSEN.load(Ordering::Relaxed) {
        1 => Some(IcmpSocketKind::Datagram),
        2 => Some(IcmpSocketKind::Raw),
        _ => None,
    }
}

fn domain(target: IpAddr) -> Domain {
    match target {
        IpAddr::V4(_) => Domain::IPV4,
        IpAddr::V6(_) => Domain::IPV6,
    }
}

/// Turns on the reporting of ICMP errors as the socket's error.
fn receive_errors(socket: &Socket, target: IpAddr) -> io::Result<()> {
    let fd = socket.as_fd();
    let set = match target {
        IpAddr::V4(_) => {
            nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::Ipv4RecvErr, &true)
        }
        IpAddr::V6(_) => {
            nix::sys::socket::setsockopt(&fd, nix::sys::socket::sockopt::Ipv6RecvErr, &true)
        }
    };
    set.map_err(io::Error::from)
}

/// A non-blocking socket connected to `target` (port 0 for ICMP).
fn connected(ty: Type, protocol: Protocol, target: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(domain(target.ip()), ty, Some(protocol))?;
    socket.set_nonblocking(true)?;
    receive_errors(&socket, target.ip())?;
    socket.connect(&SockAddr::from(target))?;
    Ok(socket)
}

/// A UDP socket for a UDP or DNS check of `target`.
pub fn udp(target: SocketAddr) -> Result<std::net::UdpSocket, FailReason> {
    connected(Type::DGRAM, Protocol::UDP, target)
        .map(std::net::UdpSocket::from)
        .map_err(|e| sent_or_received(&e))
}

/// An ICMP socket for a ping check of `target`, of `kind` or (`None`) of the process' choice,
/// and how what it receives is framed.
pub fn icmp(target: IpAddr, kind: Option<IcmpSocketKind>) -> Result<(Socket, Framing), FailReason> {
    let chosen = kind.or_else(icmp_socket_kind);
    if chosen != Some(IcmpSocketKind::Raw) {
        match icmp_of_kind(target, IcmpSocketKind::Datagram) {
            Ok(opened) => {
                if kind.is_none() {
                    CHOSEN.store(1, Ordering::Relaxed);
                }
                return Ok(opened);
            }
            // Asked for this kind, or an error of the target's (no route, say), not the kind's.
            Err(e) if kind.is_some() || !refused_kind(&e) => return Err(icmp_failure(&e)),
            Err(_) => {}
        }
    }
    let opened = icmp_of_kind(target, IcmpSocketKind::Raw).map_err(|e| icmp_failure(&e))?;
    if kind.is_none() {
        CHOSEN.store(2, Ordering::Relaxed);
    }
    Ok(opened)
}

fn icmp_of_kind(target: IpAddr, kind: IcmpSocketKind) -> io::Result<(Socket, Framing)> {
    let (protocol, raw_framing) = match target {
        IpAddr::V4(_) => (Protocol::ICMPV4, Framing::RawV4),
        IpAddr::V6(_) => (Protocol::ICMPV6, Framing::RawV6),
    };
    let (ty, framing) = match kind {
        IcmpSocketKind::Datagram => (Type::DGRAM, Framing::Datagram),
        IcmpSocketKind::Raw => (Type::RAW, raw_framing),
    };
    Ok((
        connected(ty, protocol, SocketAddr::new(target, 0))?,
        framing,
    ))
}

/// Whether opening a datagram ICMP socket failed for the socket kind (not allowed by
/// `ping_group_range`, or no ping sockets in this kernel).
fn refused_kind(error: &io::Error) -> bool {
    matches!(
        error.raw_os_error().map(nix::errno::Errno::from_raw),
        Some(
            nix::errno::Errno::EACCES
                | nix::errno::Errno::EPERM
                | nix::errno::Errno::EPROTONOSUPPORT
                | nix::errno::Errno::ESOCKTNOSUPPORT
        )
    )
}

fn icmp_failure(error: &io::Error) -> FailReason {
    match error.kind() {
        io::ErrorKind::PermissionDenied => FailReason::Io(format!(
            "cannot open an ICMP socket ({error}); ping checks need root (CAP_NET_RAW) or net.ipv4.ping_group_range holding the group"
        )),
        _ => sent_or_received(error),
    }
}

/// What a send or receive error of a datagram check says: the ICMP errors (with
/// `IP_RECVERR`) by name, anything else as it is.
pub fn sent_or_received(error: &io::Error) -> FailReason {
    let what = match error.kind() {
        io::ErrorKind::ConnectionRefused => "port unreachable (ICMP): nothing listens on the port",
        io::ErrorKind::HostUnreachable => {
            "host unreachable (ICMP, or no answer to ARP / neighbour discovery)"
        }
        io::ErrorKind::NetworkUnreachable => "network unreachable (ICMP, or no route)",
        _ => return FailReason::Io(error.to_string()),
    };
    FailReason::Unreachable(what.to_owned())
}
