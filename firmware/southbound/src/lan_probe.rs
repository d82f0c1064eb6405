//! Second-path liveness check for the pair heartbeat: is the partner box alive on the service
//! LAN even though its heartbeat on the peer cable stopped?
//!
//! The partner's kernel answers ARP (IPv4) and Neighbor Solicitation (IPv6) for its own
//! addresses with no daemon involved, so [`LanProbe::probe`] sends a few of those to the
//! partner's address on a service interface and waits a short time (about 15 ms) for an
//! answer: an answer means only the cable failed (no takeover), silence means take over now.
//!
//! A `LanProbe` holds two `AF_PACKET` raw sockets on the interface, one bound to ARP and one
//! to IPv6, opened once. While idle each carries a classic BPF filter that drops everything,
//! so the kernel queues nothing for them. A probe swaps in a filter that passes only frames
//! from the probed address (ARP whose sender is the target; ICMPv6 Neighbor Advertisement with
//! hop limit 255 whose target is the target), so during the probe the task wakes only for the
//! answer, and puts the drop-all filter back when it ends (also when its future is dropped).
//!
//! The sockets are kept rather than opened per probe because closing an `AF_PACKET` socket
//! waits for an RCU grace period in the kernel (`synchronize_net`: about 10 ms measured here),
//! blocking the calling thread. Swapping a filter does not wait.
//!
//! Latency: run it on the runtime whose timing matters (the VRRP engine's thread). Nothing
//! in `probe` blocks: the first probe leaves before the first `.await`, the rest are spread
//! over the timeout by tokio timers (1 ms resolution). Dropping a `LanProbe` closes its
//! sockets and so does block for the grace period: keep it for the engine's life, or drop it
//! off the latency-critical path.
//!
//! Needs `CAP_NET_RAW` (root on the appliance).

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use nix::sys::socket::{recv, MsgFlags};
use socket2::{Domain, SockAddr, SockFilter, Socket, Type};
use tandem_wire::announce::MacAddress;
use tandem_wire::{arp, ndisc};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::time::Instant;

const ETH_P_ARP: u16 = 0x0806;
const ETH_P_IPV6: u16 = 0x86dd;
const ARPHRD_ETHER: u16 = 1;
/// Largest frame read (a standard Ethernet frame without FCS); longer ones are cut, which
/// cannot matter: answers are under 100 bytes.
const FRAME_BUFFER: usize = 1514;

/// The partner answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeAnswer {
    /// The MAC the answer came from (ARP sender hardware address, or the NA's target
    /// link-layer address option).
    pub from_mac: MacAddress,
    /// From the latest probe sent to the answer.
    pub rtt: Duration,
    /// From the first probe sent to the answer.
    pub elapsed: Duration,
    /// Probes sent before the answer came.
    pub probes_sent: u8,
}

/// Probes addresses on one Ethernet interface, one probe at a time (`probe` takes
/// `&mut self`: each probe owns the socket's filter while it runs). To probe several targets
/// at once, open one `LanProbe` per concurrent probe.
#[derive(Debug)]
pub struct LanProbe {
    ifname: String,
    ifindex: u32,
    arp: AsyncFd<Socket>,
    ipv6: AsyncFd<Socket>,
}

impl LanProbe {
    /// Opens the probe's sockets on `ifname`: it must exist in this network namespace, be
    /// Ethernet, and this process needs `CAP_NET_RAW`. Call it from inside a tokio runtime
    /// with IO enabled (the sockets are registered with it), once per interface.
    ///
    /// The interface index is resolved here: if the interface is deleted and created again,
    /// open a new `LanProbe`.
    pub fn open(ifname: &str) -> io::Result<LanProbe> {
        let ifindex = nix::net::if_::if_nametoindex(ifname).map_err(|errno| {
            explain(
                ifname,
                "resolving the interface",
                io::Error::from(errno),
                "check that it exists in this network namespace (`ip link show`)",
            )
        })?;
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(io::Error::other(format!(
                "LAN probe on {ifname}: open() was called outside a tokio runtime; call it from \
                 the runtime that will run the probes"
            )));
        }
        let arp = open_socket(ifname, ifindex, ETH_P_ARP)?;
        let ipv6 = open_socket(ifname, ifindex, ETH_P_IPV6)?;
        let probe = LanProbe {
            ifname: ifname.to_owned(),
            ifindex,
            arp,
            ipv6,
        };
        probe.mac()?;
        Ok(probe)
    }

    /// The interface name.
    pub fn ifname(&self) -> &str {
        &self.ifname
    }

    /// The interface index resolved at open.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The interface's current MAC, read from the kernel (one `getsockname`) on each call.
    pub fn mac(&self) -> io::Result<MacAddress> {
        let ifname = &self.ifname;
        let bound = self
            .arp
            .get_ref()
            .local_addr()
            .map_err(|e| explain(ifname, "reading the link address", e, ""))?;
        let mut storage = bound.as_storage();
        // SAFETY: `sockaddr_storage` (128 bytes, aligned for every socket address type) holds a
        // `sockaddr_ll` (20 bytes) whole; that type is plain old data, so any bytes are a valid
        // value, and getsockname on an AF_PACKET socket wrote one (the rest stays zeroed).
        #[allow(unsafe_code)]
        let ll = unsafe { *storage.view_as::<libc::sockaddr_ll>() };
        match (ll.sll_hatype, ll.sll_halen, ll.sll_addr) {
            (ARPHRD_ETHER, 6, [a, b, c, d, e, f, _, _]) => Ok([a, b, c, d, e, f]),
            (hatype, _, _) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!(
                    "LAN probe on {ifname}: link type {hatype} is not Ethernet; probe on an \
                     Ethernet interface (physical, bond, VLAN, veth)"
                ),
            )),
        }
    }

    /// Sends up to `attempts` (at least one) probes for `target` spread evenly over `timeout`
    /// and returns at the first answer from `target`; `Ok(None)` once `timeout` has passed
    /// without one.
    ///
    /// `source` must be of `target`'s family:
    /// - IPv4: our address on this interface in the partner's subnet (the partner's kernel may
    ///   check it against its routes), or 0.0.0.0 for an RFC 5227 probe that the partner
    ///   answers without caching anything about us.
    /// - IPv6: an address of ours on this interface; the link-local one always works. `::`
    ///   sends a DAD-style solicitation, answered to ff02::1.
    ///
    /// Any ARP the partner sends with its address as sender during the window counts as an
    /// answer (its own request or a gratuitous ARP proves it alive just as well).
    pub async fn probe(
        &mut self,
        target: IpAddr,
        source: IpAddr,
        timeout: Duration,
        attempts: u8,
    ) -> io::Result<Option<ProbeAnswer>> {
        let attempts = attempts.max(1);
        let (socket, filter) = match (target, source) {
            (IpAddr::V4(target), IpAddr::V4(_)) => (&self.arp, arp_filter(target)),
            (IpAddr::V6(target), IpAddr::V6(_)) => (&self.ipv6, advert_filter(target)),
            _ => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!(
                        "LAN probe on {}: target {target} and source {source} are of different \
                         families; pass a source address of the target's family",
                        self.ifname
                    ),
                ))
            }
        };
        let ifname = &self.ifname;
        let our_mac = self.mac()?;
        let frame = request_frame(our_mac, source, target).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("LAN probe on {ifname}: {e}"),
            )
        })?;
        let mut buffer = [0u8; FRAME_BUFFER];
        // Arm: pass the target's frames from now on, and forget whatever an earlier probe left
        // queued (a stale answer is no proof of life now).
        let _armed = Armed::new(socket.get_ref(), &filter)
            .map_err(|e| explain(ifname, "attaching the BPF filter", e, ""))?;
        while recv(socket.as_raw_fd(), &mut buffer, MsgFlags::MSG_DONTWAIT).is_ok() {}

        let start = Instant::now();
        let deadline = start + timeout;
        let spacing = timeout / u32::from(attempts);
        let mut sent = 0u8;
        let mut last_sent = start;
        loop {
            let now = Instant::now();
            if sent < attempts && now >= start + spacing * u32::from(sent) {
                send(ifname, socket.get_ref(), &frame)?;
                sent += 1;
                last_sent = Instant::now();
            }
            let wake = if sent < attempts {
                (start + spacing * u32::from(sent)).min(deadline)
            } else {
                deadline
            };
            tokio::select! {
                biased;
                ready = socket.readable() => {
                    let mut guard = ready.map_err(|e| {
                        explain(ifname, "waiting for an answer", e, "")
                    })?;
                    loop {
                        let received = guard.try_io(|inner| {
                            recv(inner.as_raw_fd(), &mut buffer, MsgFlags::MSG_DONTWAIT)
                                .map_err(io::Error::from)
                        });
                        let length = match received {
                            Err(_would_block) => break,
                            Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Ok(Err(e)) => return Err(explain(ifname, "receiving", e, "")),
                            Ok(Ok(length)) => length,
                        };
                        let received = buffer.get(..length).unwrap_or_default();
                        if let Some(from_mac) = answer_from(received, target, our_mac) {
                            let now = Instant::now();
                            return Ok(Some(ProbeAnswer {
                                from_mac,
                                rtt: now.duration_since(last_sent),
                                elapsed: now.duration_since(start),
                                probes_sent: sent,
                            }));
                        }
                    }
                }
                () = tokio::time::sleep_until(wake) => {
                    if sent >= attempts && Instant::now() >= deadline {
                        return Ok(None);
                    }
                }
            }
        }
    }
}

/// A probe's filter on a socket; the drop-all filter goes back when this is dropped.
struct Armed<'a> {
    socket: &'a Socket,
}

impl<'a> Armed<'a> {
    fn new(socket: &'a Socket, filter: &[SockFilter]) -> io::Result<Armed<'a>> {
        socket.attach_filter(filter)?;
        Ok(Armed { socket })
    }
}

impl Drop for Armed<'_> {
    fn drop(&mut self) {
        // Cannot fail for a valid one-instruction program on an open socket; if it ever did,
        // the socket would only queue the last target's frames, which the next probe drains.
        let _ = self.socket.attach_filter(&DROP_ALL);
    }
}

/// A packet socket with the drop-all filter attached, then bound to `protocol` on `ifindex`
/// (so nothing unfiltered is ever queued), non-blocking, registered with the runtime.
fn open_socket(ifname: &str, ifindex: u32, protocol: u16) -> io::Result<AsyncFd<Socket>> {
    let socket = Socket::new(Domain::PACKET, Type::RAW, None).map_err(|e| {
        explain(
            ifname,
            "opening an AF_PACKET socket",
            e,
            "the process needs CAP_NET_RAW",
        )
    })?;
    socket
        .attach_filter(&DROP_ALL)
        .map_err(|e| explain(ifname, "attaching the BPF filter", e, ""))?;
    socket
        .bind(&link_address(ifindex, protocol)?)
        .map_err(|e| {
            explain(
                ifname,
                "binding the packet socket",
                e,
                "the interface may have been deleted or recreated: open the LanProbe again",
            )
        })?;
    socket
        .set_nonblocking(true)
        .map_err(|e| explain(ifname, "setting O_NONBLOCK", e, ""))?;
    // SAFETY: `Socket` owns its descriptor: it stays open and unchanged until the `AsyncFd`
    // (which owns the `Socket`) is dropped, and `as_raw_fd` always returns that descriptor.
    #[allow(unsafe_code)]
    let registered = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) };
    registered.map_err(|e| {
        explain(
            ifname,
            "registering the probe socket",
            io::Error::other(e.to_string()),
            "open the LanProbe on a tokio runtime with IO enabled (`enable_all`)",
        )
    })
}

fn send(ifname: &str, socket: &Socket, frame: &[u8]) -> io::Result<()> {
    loop {
        match socket.send(frame) {
            Ok(sent) if sent == frame.len() => return Ok(()),
            Ok(sent) => {
                return Err(io::Error::other(format!(
                    "LAN probe on {ifname}: short frame send ({sent} of {} bytes)",
                    frame.len()
                )))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(explain(
                    ifname,
                    "sending the probe",
                    e,
                    "check that the interface is up with carrier (`ip link show`)",
                ))
            }
        }
    }
}

/// The ARP request or Neighbor Solicitation for `target`.
fn request_frame(our_mac: MacAddress, source: IpAddr, target: IpAddr) -> Result<Vec<u8>, String> {
    let mut frame = vec![0u8; ndisc::NEIGHBOR_SOLICITATION_LEN];
    let length = match (source, target) {
        (IpAddr::V4(source), IpAddr::V4(target)) => {
            arp::emit_arp_request(our_mac, source, target, &mut frame).map_err(|e| e.to_string())?
        }
        (IpAddr::V6(source), IpAddr::V6(target)) => {
            ndisc::emit_neighbor_solicitation(our_mac, source, target, &mut frame)
                .map_err(|e| e.to_string())?
        }
        _ => return Err(format!("{source} and {target} differ in family")),
    };
    frame.truncate(length);
    Ok(frame)
}

/// The MAC that proves `target` alive in `frame`, if it does.
fn answer_from(frame: &[u8], target: IpAddr, our_mac: MacAddress) -> Option<MacAddress> {
    match target {
        IpAddr::V4(target) => arp::proof_of_life(frame, target, our_mac).map(|s| s.mac),
        IpAddr::V6(target) => ndisc::proof_of_life(frame, target, our_mac).map(|s| s.mac),
    }
}

// Classic BPF opcodes (linux/filter.h).
const LD_H_ABS: u16 = 0x28;
const LD_W_ABS: u16 = 0x20;
const LD_B_ABS: u16 = 0x30;
const JEQ_K: u16 = 0x15;
const RET_K: u16 = 0x06;
/// Bytes of an accepted frame to queue: all of it.
const ACCEPT: u32 = 0x0004_0000;
/// The idle filter: queue nothing.
const DROP_ALL: [SockFilter; 1] = [SockFilter::new(RET_K, 0, 0, 0)];

/// A filter that accepts a frame when every `(load opcode, offset, value)` check holds.
fn all_equal(checks: &[(u16, u32, u32)]) -> Vec<SockFilter> {
    let n = checks.len();
    let mut program = Vec::with_capacity(2 * n + 2);
    for (k, &(load, offset, value)) in checks.iter().enumerate() {
        // From the instruction after this jump to the final "drop" at 2n + 1.
        let to_drop = u8::try_from(2 * (n - k) - 1).unwrap_or(u8::MAX);
        program.push(SockFilter::new(load, 0, 0, offset));
        program.push(SockFilter::new(JEQ_K, 0, to_drop, value));
    }
    program.push(SockFilter::new(RET_K, 0, 0, ACCEPT));
    program.push(SockFilter::new(RET_K, 0, 0, 0));
    program
}

/// ARP frames whose sender protocol address is `target`.
fn arp_filter(target: Ipv4Addr) -> Vec<SockFilter> {
    all_equal(&[
        (LD_H_ABS, 12, u32::from(ETH_P_ARP)),
        (LD_W_ABS, 28, u32::from(target)),
    ])
}

/// ICMPv6 Neighbor Advertisements with hop limit 255 whose target is `target` (no extension
/// headers: Linux sends none on neighbor discovery).
fn advert_filter(target: Ipv6Addr) -> Vec<SockFilter> {
    let o = target.octets();
    let word = |i: usize| u32::from_be_bytes([o[i], o[i + 1], o[i + 2], o[i + 3]]);
    all_equal(&[
        (LD_H_ABS, 12, u32::from(ETH_P_IPV6)),
        (LD_B_ABS, 14 + 6, 58),
        (LD_B_ABS, 14 + 7, 255),
        (LD_B_ABS, 14 + 40, 136),
        (LD_W_ABS, 14 + 48, word(0)),
        (LD_W_ABS, 14 + 52, word(4)),
        (LD_W_ABS, 14 + 56, word(8)),
        (LD_W_ABS, 14 + 60, word(12)),
    ])
}

/// `sockaddr_ll` for `protocol` (host order; 0 = receive nothing) on `ifindex`.
fn link_address(ifindex: u32, protocol: u16) -> io::Result<SockAddr> {
    let ifindex = i32::try_from(ifindex).map_err(|_| io::Error::other("ifindex out of range"))?;
    // SAFETY: the closure writes a `sockaddr_ll` into storage that socket2 zeroed and sized for
    // any socket address (`sockaddr_storage` is larger than `sockaddr_ll`), sets the family to
    // AF_PACKET to match, and reports exactly `size_of::<sockaddr_ll>()` as the length.
    #[allow(unsafe_code)]
    let ((), address) = unsafe {
        SockAddr::try_init(|storage, length| {
            let ll = storage.cast::<libc::sockaddr_ll>();
            (*ll).sll_family = u16::try_from(libc::AF_PACKET).unwrap_or_default();
            (*ll).sll_protocol = protocol.to_be();
            (*ll).sll_ifindex = ifindex;
            *length = libc::socklen_t::try_from(size_of::<libc::sockaddr_ll>()).unwrap_or_default();
            Ok(())
        })
    }?;
    Ok(address)
}

/// An error that names the interface, the step, and what to check.
fn explain(ifname: &str, step: &str, error: io::Error, hint: &str) -> io::Error {
    let hint = match (error.raw_os_error(), hint) {
        (Some(libc::EPERM | libc::EACCES), _) => "the process needs CAP_NET_RAW",
        (Some(libc::ENETDOWN), _) => "the interface is down: bring it up (`ip link set up`)",
        (Some(libc::ENODEV | libc::ENXIO), "") => {
            "the interface is gone or was renamed: open the LanProbe again"
        }
        (_, hint) => hint,
    };
    let message = if hint.is_empty() {
        format!("LAN probe on {ifname}: {step}: {error}")
    } else {
        format!("LAN probe on {ifname}: {step}: {error}; {hint}")
    };
    io::Error::new(error.kind(), message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_jump_to_the_final_drop() {
        let program = arp_filter(Ipv4Addr::new(192, 0, 2, 2));
        assert_eq!(program.len(), 6);
        let program = advert_filter(Ipv6Addr::LOCALHOST);
        assert_eq!(program.len(), 18);
    }

    #[test]
    fn mixed_families_are_refused() {
        let err = request_frame(
            [2, 0, 0, 0, 0, 1],
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        )
        .unwrap_err();
        assert!(err.contains("differ in family"), "{err}");
    }

    #[test]
    fn errors_name_the_interface_and_the_fix() {
        let err = explain(
            "eth1",
            "opening",
            io::Error::from_raw_os_error(libc::EPERM),
            "",
        );
        let text = err.to_string();
        assert!(
            text.contains("eth1") && text.contains("CAP_NET_RAW"),
            "{text}"
        );
        assert!(LanProbe::open("no-such-if0")
            .unwrap_err()
            .to_string()
            .contains("no-such-if0"));
    }
}
