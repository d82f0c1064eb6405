//! `ping` for the console's Diagnostics: ICMP / ICMPv6 echo to one address over raw sockets
//! (the image has no `ping`), a few requests one second apart, each reply matched by its
//! identifier and sequence. Blocking: the daemon runs it on its blocking pool.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Most requests one `ping` sends.
pub const MAX_COUNT: u8 = 10;
/// Between two requests.
const INTERVAL: Duration = Duration::from_secs(1);

/// What a `ping` saw.
#[derive(Debug, Clone, PartialEq)]
pub struct PingReport {
    pub address: IpAddr,
    pub sent: u8,
    /// Round-trip times of the replies, in the order they came.
    pub rtts: Vec<Duration>,
}

impl PingReport {
    /// One line: sent, received, loss, min/avg/max.
    pub fn line(&self) -> String {
        let received = self.rtts.len();
        let sent = usize::from(self.sent.max(1));
        let loss = sent.saturating_sub(received) * 100 / sent;
        let mut text = format!(
            "ping {}: {} sent, {received} received, {loss}% loss",
            self.address, self.sent
        );
        if let (Some(min), Some(max)) = (self.rtts.iter().min(), self.rtts.iter().max()) {
            let total: Duration = self.rtts.iter().sum();
            let avg = total / u32::try_from(received).unwrap_or(1);
            let ms = |d: &Duration| d.as_secs_f64() * 1e3;
            text.push_str(&format!(
                ", rtt min/avg/max {:.3}/{:.3}/{:.3} ms",
                ms(min),
                ms(&avg),
                ms(max)
            ));
        }
        text
    }
}

/// The Internet checksum (RFC 1071) of `bytes`.
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|pair| {
            u32::from(u16::from_be_bytes([
                pair[0],
                pair.get(1).copied().unwrap_or(0),
            ]))
        })
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !u16::try_from(sum).unwrap_or(0xffff)
}

/// An echo request: type, code, checksum (v4 only: the kernel fills ICMPv6's), id, sequence,
/// a payload naming us.
fn request(v6: bool, identifier: u16, sequence: u16) -> [u8; 16] {
    let mut packet = [0u8; 16];
    packet[0] = if v6 { 128 } else { 8 };
    packet[4..6].copy_from_slice(&identifier.to_be_bytes());
    packet[6..8].copy_from_slice(&sequence.to_be_bytes());
    packet[8..16].copy_from_slice(b"tandem\0\0");
    if !v6 {
        let sum = checksum(&packet);
        packet[2..4].copy_from_slice(&sum.to_be_bytes());
    }
    packet
}

/// The sequence of an echo reply with our identifier from `address`, if `datagram` is one.
/// IPv4 raw sockets deliver the IP header first; ICMPv6 raw sockets do not.
fn reply_sequence(datagram: &[u8], v6: bool, identifier: u16) -> Option<u16> {
    let icmp = if v6 {
        datagram
    } else {
        let header = usize::from(datagram.first()? & 0x0f) * 4;
        datagram.get(header..)?
    };
    let reply_type = if v6 { 129 } else { 0 };
    if icmp.len() < 8 || icmp[0] != reply_type || icmp[1] != 0 {
        return None;
    }
    (u16::from_be_bytes([icmp[4], icmp[5]]) == identifier)
        .then(|| u16::from_be_bytes([icmp[6], icmp[7]]))
}

/// Sends `count` echo requests to `address`, one a second, and collects the replies that come
/// within `timeout` of their request.
pub fn ping(address: IpAddr, count: u8, timeout: Duration) -> std::io::Result<PingReport> {
    let count = count.clamp(1, MAX_COUNT);
    let v6 = address.is_ipv6();
    let socket = if v6 {
        Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?
    } else {
        Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4))?
    };
    socket.connect(&SockAddr::from(SocketAddr::new(address, 0)))?;
    let identifier = u16::try_from(std::process::id() & 0xffff).unwrap_or(0x7a6d) ^ 0x7a6d;
    let mut report = PingReport {
        address,
        sent: 0,
        rtts: Vec::new(),
    };
    let mut buffer = [0u8; 1500];
    for sequence in 0..u16::from(count) {
        let sent_at = Instant::now();
        socket.send(&request(v6, identifier, sequence))?;
        report.sent += 1;
        let deadline = sent_at + timeout.max(INTERVAL);
        let reply_by = sent_at + timeout;
        while let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        {
            socket.set_read_timeout(Some(left))?;
            let length = match nix::sys::socket::recv(
                socket.as_raw_fd(),
                &mut buffer,
                nix::sys::socket::MsgFlags::empty(),
            ) {
                Ok(length) => length,
                Err(Errno::EAGAIN | Errno::ETIMEDOUT) => break,
                Err(Errno::EINTR) => continue,
                // An ICMP error for a request (unreachable): no reply for it.
                Err(_) => continue,
            };
            let datagram = &buffer[..length];
            if reply_sequence(datagram, v6, identifier) == Some(sequence) {
                let rtt = sent_at.elapsed();
                if Instant::now() <= reply_by {
                    report.rtts.push(rtt);
                }
                // Wait out the second before the next request.
                if sequence + 1 < u16::from(count) {
                    if let Some(rest) = (sent_at + INTERVAL).checked_duration_since(Instant::now())
                    {
                        std::thread::sleep(rest);
                    }
                }
                break;
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_v4_request_carries_a_valid_checksum() {
        let packet = request(false, 0x1234, 7);
        assert_eq!(checksum(&packet), 0, "a packet with its checksum sums to 0");
        assert_eq!(packet[0], 8);
        assert_eq!(request(true, 1, 1)[0], 128);
    }

    #[test]
    fn replies_match_by_identifier_and_sequence_and_garbage_is_ignored() {
        let mut v4 = vec![0x45u8; 20];
        v4.extend_from_slice(&[0, 0, 0, 0, 0x12, 0x34, 0, 7]);
        assert_eq!(reply_sequence(&v4, false, 0x1234), Some(7));
        assert_eq!(reply_sequence(&v4, false, 0x4321), None);
        assert_eq!(
            reply_sequence(&[129, 0, 0, 0, 0, 1, 0, 2], true, 1),
            Some(2)
        );
        assert_eq!(reply_sequence(&[128, 0, 0, 0, 0, 1, 0, 2], true, 1), None);
        for garbage in [&[][..], &[0x4f][..], &[0x45, 1, 2][..]] {
            assert_eq!(reply_sequence(garbage, false, 1), None);
        }
    }

    #[test]
    fn pings_the_loopback_both_families() {
        // Raw sockets need CAP_NET_RAW: the test tiers run as root.
        for address in ["127.0.0.1", "::1"] {
            let report = ping(address.parse().unwrap(), 2, Duration::from_secs(1)).unwrap();
            assert_eq!(
                (report.sent, report.rtts.len()),
                (2, 2),
                "{}",
                report.line()
            );
        }
    }

    #[test]
    fn the_report_line_says_loss_and_times() {
        let report = PingReport {
            address: "192.0.2.1".parse().unwrap(),
            sent: 3,
            rtts: vec![Duration::from_millis(1), Duration::from_millis(3)],
        };
        assert_eq!(
            report.line(),
            "ping 192.0.2.1: 3 sent, 2 received, 33% loss, rtt min/avg/max 1.000/2.000/3.000 ms"
        );
    }
}
