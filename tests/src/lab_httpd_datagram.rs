//! LAB ONLY, part of the `lab-httpd` binary (included by path, not a module of the tandem-lab
//! library): the datagram services of a lab real server, for ping, UDP and DNS checks.
//!
//! - UDP port 7: echo (RFC 862), every datagram sent back as it came.
//! - UDP port 53: a tiny DNS responder: `<box name>.lab` has one A record (192.0.2.53), every
//!   other name is NXDOMAIN; queries it cannot read are FORMERR, non-queries are ignored.
//! - Both close while the service ports are stopped (`GET /stop`: the kernel then answers
//!   ICMP port unreachable) and open again on `GET /start`.
//! - `GET /icmp/off` makes the box ignore ICMP echo requests (`icmp_echo_ignore_all`, IPv4 and
//!   IPv6), `GET /icmp/on` answers them again: a ping check sees the box down and up.
//!
//! std only, one thread per port, datagrams of at most 512 bytes read.

use std::net::UdpSocket;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

const ECHO_PORT: u16 = 7;
const DNS_PORT: u16 = 53;
/// The A record of `<box name>.lab`.
const ADDRESS: [u8; 4] = [192, 0, 2, 53];

/// Starts the UDP echo and the DNS responder, open while `serving` is set.
pub fn start(name: &str, serving: &Arc<AtomicBool>) {
    let serving_echo = Arc::clone(serving);
    std::thread::spawn(move || udp_loop(ECHO_PORT, &serving_echo, |query| Some(query.to_vec())));
    let serving_dns = Arc::clone(serving);
    let zone_name = format!("{name}.lab");
    std::thread::spawn(move || {
        udp_loop(DNS_PORT, &serving_dns, |query| {
            dns_answer(&zone_name, query)
        });
    });
}

/// Handles a control path of its own (`/icmp/off`, `/icmp/on`); false for any other.
pub fn control(path: &str) -> bool {
    let ignore = match path {
        "/icmp/off" => "1",
        "/icmp/on" => "0",
        _ => return false,
    };
    for key in [
        "/proc/sys/net/ipv4/icmp_echo_ignore_all",
        "/proc/sys/net/ipv6/icmp/echo_ignore_all",
    ] {
        if let Err(e) = std::fs::write(key, ignore) {
            println!("lab-httpd: {key}: {e}");
        }
    }
    println!(
        "lab-httpd: icmp echo {}",
        if ignore == "1" { "ignored" } else { "answered" }
    );
    true
}

/// Keeps UDP `port` bound while `serving` is set; answers each datagram with `reply`'s.
fn udp_loop(port: u16, serving: &AtomicBool, reply: impl Fn(&[u8]) -> Option<Vec<u8>>) {
    let mut socket: Option<UdpSocket> = None;
    let mut buf = [0u8; 512];
    loop {
        let want = serving.load(Ordering::SeqCst);
        if want && socket.is_none() {
            match UdpSocket::bind(("0.0.0.0", port)) {
                Ok(s) => {
                    let _ = s.set_read_timeout(Some(Duration::from_millis(50)));
                    println!("lab-httpd: serving on udp port {port}");
                    socket = Some(s);
                }
                Err(e) => {
                    println!("lab-httpd: cannot bind udp port {port}: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        } else if !want && socket.is_some() {
            socket = None;
            println!("lab-httpd: stopped udp port {port}");
        }
        match socket.as_ref().map(|s| s.recv_from(&mut buf)) {
            Some(Ok((n, from))) => {
                if let (Some(s), Some(answer)) = (&socket, reply(buf.get(..n).unwrap_or_default()))
                {
                    let _ = s.send_to(&answer, from);
                }
            }
            Some(Err(_)) => {}
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

/// The answer to a DNS query: one A record for `zone_name`, NXDOMAIN for other names, FORMERR
/// for a query whose question cannot be read; None for what is not a query.
fn dns_answer(zone_name: &str, query: &[u8]) -> Option<Vec<u8>> {
    let header = query.get(..12)?;
    if header[2] & 0x80 != 0 {
        return None;
    }
    let mut reply = header.to_vec();
    // QR, the query's opcode and RD; RA clear; counts set below.
    reply[2] = 0x80 | (header[2] & 0x79);
    reply[3] = 0;
    reply[4..12].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
    let Some((name, end)) = question(query) else {
        reply[3] = 1;
        return Some(reply);
    };
    let question = query.get(12..end)?;
    reply[5] = 1;
    reply.extend_from_slice(question);
    let qtype = u16::from_be_bytes([query[end - 4], query[end - 3]]);
    if !name.eq_ignore_ascii_case(zone_name) {
        reply[3] = 3;
    } else if qtype == 1 {
        reply[7] = 1;
        // The question's name (a pointer to offset 12), A, IN, TTL 60, 4 bytes.
        reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        reply.extend_from_slice(&ADDRESS);
    }
    Some(reply)
}

/// The first question's name (dotted, without the final dot) and where the question ends.
fn question(query: &[u8]) -> Option<(String, usize)> {
    if query.get(4..6)? != [0, 1] {
        return None;
    }
    let mut at = 12;
    let mut labels = Vec::new();
    loop {
        let length = usize::from(*query.get(at)?);
        at += 1;
        if length == 0 {
            break;
        }
        if length > 63 {
            return None;
        }
        labels.push(String::from_utf8_lossy(query.get(at..at + length)?).into_owned());
        at += length;
    }
    let end = at + 4;
    query.get(..end)?;
    Some((labels.join("."), end))
}
