//! Which TCP connections does this box terminate on its virtual addresses? Collected so the
//! partner can tickle those clients after a takeover (seed 000, CTDB's tickle ACKs).
//!
//! Two sources:
//! - Local sockets: an `inet_diag` dump over NETLINK_SOCK_DIAG for IPv4 and IPv6, asking the
//!   kernel for ESTABLISHED TCP sockets only. An IPv6 socket holding a v4-mapped address (a
//!   dual-stack listener's child) is reported as IPv4, which is what goes on the wire.
//! - IPVS: when `/proc/net/ip_vs_conn` exists the box is a director; its ESTABLISHED TCP
//!   entries are connections the clients see as terminated on the VIP, even though a real
//!   server answers them. Without connection sync the new director cannot carry them on, so
//!   tickling makes the clients reconnect at once.
//!
//! Both are filtered to the caller's virtual addresses. The procfs parser is pure and takes
//! the kernel's exact text (`ip_vs_conn_seq_show`: hex IPv4 / `%pI6` IPv6, hex ports).

use std::collections::BTreeSet;
use std::io;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use crate::nlmsg;
use netlink_sys::protocols::NETLINK_SOCK_DIAG;
use netlink_sys::{Socket, SocketAddr as NetlinkAddr};

/// Where IPVS shows its connection table.
pub const IPVS_CONNECTIONS: &str = "/proc/net/ip_vs_conn";
/// A dump that does not finish in this time is abandoned (the kernel answers in microseconds).
const DUMP_TIMEOUT: Duration = Duration::from_secs(2);
/// Receive buffer for dump replies (the kernel fills at most 32 KiB per datagram).
const RECEIVE_BUFFER: usize = 64 * 1024;

/// One established TCP connection seen from this box: the local end is a virtual address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TcpEndpoints {
    /// The virtual address and service port.
    pub local: SocketAddr,
    /// The client.
    pub remote: SocketAddr,
}

/// Established TCP sockets of this network namespace whose local address is in `local`,
/// from both families, sorted, each once.
pub fn established_tcp(local: &BTreeSet<IpAddr>) -> io::Result<Vec<TcpEndpoints>> {
    let mut socket = Socket::new(NETLINK_SOCK_DIAG)?;
    socket.bind_auto()?;
    socket.connect(&NetlinkAddr::new(0, 0))?;
    nix::sys::socket::setsockopt(
        &socket,
        nix::sys::socket::sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(i64::try_from(DUMP_TIMEOUT.as_secs()).unwrap_or(2), 0),
    )?;
    let mut found = BTreeSet::new();
    for (family, sequence) in [(AF_INET, 1), (AF_INET6, 2)] {
        dump_family(&socket, family, sequence, local, &mut found)?;
    }
    Ok(found.into_iter().collect())
}

/// `SOCK_DIAG_BY_FAMILY`: the message type of an `inet_diag_req_v2` and of its replies.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IPPROTO_TCP: u8 = 6;
/// `1 << TCP_ESTABLISHED`.
const STATES_ESTABLISHED: u32 = 1 << 1;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, `inet_diag_sockid` (48 bytes).
const REQUEST_LEN: usize = 56;

fn dump_family(
    socket: &Socket,
    family: u8,
    sequence: u32,
    local: &BTreeSet<IpAddr>,
    found: &mut BTreeSet<TcpEndpoints>,
) -> io::Result<()> {
    let mut fixed = [0u8; REQUEST_LEN];
    fixed[0] = family;
    fixed[1] = IPPROTO_TCP;
    fixed[4..8].copy_from_slice(&STATES_ESTABLISHED.to_ne_bytes());
    let bytes = nlmsg::Request::new(
        SOCK_DIAG_BY_FAMILY,
        nlmsg::NLM_F_REQUEST | nlmsg::NLM_F_DUMP,
        &fixed,
    )
    .finish(sequence)
    .unwrap_or_default();
    socket.send(&bytes, 0)?;
    let mut buffer = vec![0u8; RECEIVE_BUFFER];
    loop {
        let length = socket.recv(&mut &mut buffer[..], 0)?;
        for message in nlmsg::messages(buffer.get(..length).unwrap_or_default()) {
            let message = message.map_err(|_| {
                io::Error::new(io::ErrorKind::InvalidData, "sock_diag reply: malformed")
            })?;
            if message.sequence != sequence {
                continue;
            }
            match message.kind {
                nlmsg::NLMSG_DONE => return Ok(()),
                nlmsg::NLMSG_ERROR => {
                    let code = nlmsg::error_code(message.payload).unwrap_or(0);
                    if code != 0 {
                        return Err(io::Error::from_raw_os_error(-code));
                    }
                }
                SOCK_DIAG_BY_FAMILY => {
                    if let Some(endpoints) = endpoints(message.payload) {
                        if local.contains(&endpoints.local.ip())
                            && endpoints.local.is_ipv4() == endpoints.remote.is_ipv4()
                        {
                            found.insert(endpoints);
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

/// The two ends of an `inet_diag_msg` (family at 0, `inet_diag_sockid` at 4: ports big-endian,
/// then source and destination, 16 bytes each).
fn endpoints(payload: &[u8]) -> Option<TcpEndpoints> {
    let family = *payload.first()?;
    let port = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes(
            payload.get(at..at + 2)?.try_into().ok()?,
        ))
    };
    let address = |at: usize| -> Option<IpAddr> {
        if family == AF_INET {
            let raw: [u8; 4] = payload.get(at..at + 4)?.try_into().ok()?;
            Some(IpAddr::from(raw))
        } else if family == AF_INET6 {
            let raw: [u8; 16] = payload.get(at..at + 16)?.try_into().ok()?;
            Some(unmapped(IpAddr::from(raw)))
        } else {
            None
        }
    };
    Some(TcpEndpoints {
        local: SocketAddr::new(address(8)?, port(4)?),
        remote: SocketAddr::new(address(24)?, port(6)?),
    })
}

/// `::ffff:a.b.c.d` as `a.b.c.d`; every other address unchanged.
fn unmapped(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// ESTABLISHED TCP entries of `/proc/net/ip_vs_conn` whose virtual address is in `vips`;
/// `Ok(None)` when the file does not exist (IPVS not loaded: not a director).
pub fn ipvs_established(
    path: &Path,
    vips: &BTreeSet<IpAddr>,
) -> io::Result<Option<Vec<TcpEndpoints>>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(parse_ipvs_connections(&text, vips))),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error),
    }
}

/// Parses the text of `/proc/net/ip_vs_conn` (header line, then one connection per line:
/// protocol, client address and port, virtual address and port, destination address and port,
/// state, expiry seconds, optional persistence-engine name and data). Lines that do not parse
/// are skipped: the file is the kernel's, never an attacker's, but a future kernel may add
/// columns at the end, which are ignored.
pub fn parse_ipvs_connections(text: &str, vips: &BTreeSet<IpAddr>) -> Vec<TcpEndpoints> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let mut fields = line.split_ascii_whitespace();
        let (Some(protocol), Some(client), Some(cport), Some(vip), Some(vport)) = (
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
            fields.next(),
        ) else {
            continue;
        };
        // Destination address and port, then the state.
        let state = fields.nth(2);
        if protocol != "TCP" || state != Some("ESTABLISHED") {
            continue;
        }
        let (Some(client), Some(cport), Some(vip), Some(vport)) = (
            ipvs_address(client),
            ipvs_port(cport),
            ipvs_address(vip),
            ipvs_port(vport),
        ) else {
            continue;
        };
        if !vips.contains(&vip) || client.is_ipv4() != vip.is_ipv4() || cport == 0 || vport == 0 {
            continue;
        }
        found.insert(TcpEndpoints {
            local: SocketAddr::new(vip, vport),
            remote: SocketAddr::new(client, cport),
        });
    }
    found.into_iter().collect()
}

/// `C0000264` (IPv4 as 8 hex digits, host order printed big-endian) or
/// `2001:0db8:0000:0000:0000:0000:0000:0010` (`%pI6`).
fn ipvs_address(field: &str) -> Option<IpAddr> {
    if field.len() == 8 && field.bytes().all(|b| b.is_ascii_hexdigit()) {
        return u32::from_str_radix(field, 16)
            .ok()
            .map(|bits| IpAddr::V4(bits.into()));
    }
    if field.contains(':') {
        return field.parse::<Ipv6Addr>().ok().map(IpAddr::V6);
    }
    None
}

fn ipvs_port(field: &str) -> Option<u16> {
    if field.len() == 4 {
        u16::from_str_radix(field, 16).ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines in the exact layout of the kernel's `ip_vs_conn_seq_show` (`%-3s %08X %04X %08X
    /// %04X %08X %04X %-11s %7u%s` for IPv4, `%pI6` for IPv6): the first data line is a real
    /// capture (from an Erlang IPVS monitor's test suite), the others follow the same format
    /// with this lab's addresses.
    const SAMPLE: &str = "\
Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData
TCP 0A004FB6 0045 0A004FB6 1F90 0A004FB6 1F91 SYN_RECV         57
TCP C0000232 9C41 C000020A 1B58 C6336402 1B58 ESTABLISHED     899
TCP C0000233 D431 C000020A 0050 C6336403 0050 ESTABLISHED     898 sip 1234567@example
TCP C0000234 D432 C000020A 0050 C6336403 0050 FIN_WAIT        119
UDP C0000235 8001 C000020A 0035 C6336403 0035 UDP             299
TCP C0000236 D433 C000020B 0050 C6336403 0050 ESTABLISHED     900
TCP 2001:0db8:0000:0000:0000:0000:0000:0099 C738 2001:0db8:0000:0000:0000:0000:0000:0010 01BB 2001:0db8:0001:0000:0000:0000:0000:0002 01BB ESTABLISHED     897
TCP 2001:0db8:0000:0000:0000:0000:0000:0099 C739 2001:0db8:0000:0000:0000:0000:0000:0010 01BB C6336403 01BB ESTABLISHED     897
garbage line
TCP ZZZZZZZZ 0045 C000020A 1F90 0A004FB6 1F91 ESTABLISHED     57
";

    fn vips() -> BTreeSet<IpAddr> {
        ["192.0.2.10", "2001:db8::10"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect()
    }

    fn ends(local: &str, remote: &str) -> TcpEndpoints {
        TcpEndpoints {
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
        }
    }

    #[test]
    fn established_tcp_entries_on_our_vips_are_found() {
        let found = parse_ipvs_connections(SAMPLE, &vips());
        assert_eq!(
            found,
            vec![
                ends("192.0.2.10:80", "192.0.2.51:54321"),
                ends("192.0.2.10:7000", "192.0.2.50:40001"),
                ends("[2001:db8::10]:443", "[2001:db8::99]:51000"),
                ends("[2001:db8::10]:443", "[2001:db8::99]:51001"),
            ]
        );
    }

    #[test]
    fn nothing_is_found_for_other_vips_or_empty_text() {
        let other: BTreeSet<IpAddr> = ["198.51.100.1".parse().unwrap()].into();
        assert!(parse_ipvs_connections(SAMPLE, &other).is_empty());
        assert!(parse_ipvs_connections("", &vips()).is_empty());
        let header_only = SAMPLE.lines().next().unwrap();
        assert!(parse_ipvs_connections(header_only, &vips()).is_empty());
    }

    #[test]
    fn a_missing_table_means_not_a_director() {
        let path = Path::new("/nonexistent/ip_vs_conn");
        assert_eq!(ipvs_established(path, &vips()).unwrap(), None);
    }

    #[test]
    fn mapped_addresses_are_reported_as_ipv4() {
        let mapped: IpAddr = "::ffff:192.0.2.10".parse().unwrap();
        assert_eq!(unmapped(mapped), "192.0.2.10".parse::<IpAddr>().unwrap());
        let v6: IpAddr = "2001:db8::10".parse().unwrap();
        assert_eq!(unmapped(v6), v6);
    }

    /// An established loopback connection on `bind` (its listener's address, its client's), and
    /// what a real dump finds for the listener's local address.
    fn dump_on(bind: &str) -> (SocketAddr, SocketAddr, Vec<TcpEndpoints>) {
        use std::net::{TcpListener, TcpStream};
        let listener = TcpListener::bind(bind).unwrap();
        let server = listener.local_addr().unwrap();
        let client = TcpStream::connect(server).unwrap();
        let (_accepted, _) = listener.accept().unwrap();
        let local: BTreeSet<IpAddr> = [server.ip()].into();
        let found = established_tcp(&local).unwrap();
        (server, client.local_addr().unwrap(), found)
    }

    /// A real dump: an established loopback connection is found when its local address is asked
    /// for, and not otherwise.
    #[test]
    fn the_kernel_dump_finds_an_established_socket() {
        let (server, client, found) = dump_on("127.0.0.1:0");
        let expected = TcpEndpoints {
            local: server,
            remote: client,
        };
        assert!(found.contains(&expected), "{found:?}");
        // The client's own socket (local = 127.0.0.1 too) is there as the reverse pair.
        assert!(found.contains(&TcpEndpoints {
            local: client,
            remote: server,
        }));
        let elsewhere: BTreeSet<IpAddr> = ["192.0.2.77".parse().unwrap()].into();
        assert!(established_tcp(&elsewhere).unwrap().is_empty());
    }

    #[test]
    fn the_kernel_dump_finds_an_established_ipv6_socket() {
        let (server, client, found) = dump_on("[::1]:0");
        assert!(
            found.contains(&TcpEndpoints {
                local: server,
                remote: client,
            }),
            "{found:?}"
        );
    }
}
