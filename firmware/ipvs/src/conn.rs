//! The kernel's IPVS connection table as `/proc/net/ip_vs_conn_sync` prints it.
//!
//! Generic netlink has no connection dump, so `lvs status` reads this procfs file to show what
//! the sync daemons carried over: each line says whether the entry was created here (`LOCAL`)
//! or received from the partner's master daemon (`SYNC`). The format is the kernel's
//! `ip_vs_conn_sync_seq_show` (`net/netfilter/ipvs/ip_vs_conn.c`):
//!
//! ```text
//! Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires
//! TCP C0000264 9C40 C000020A 0007 C0000215 0007 ESTABLISHED SYNC       899
//! ```
//!
//! IPv4 addresses are 8 hex digits in host order of the printed value (`ntohl`), IPv6 ones are
//! `%pI6` (eight colon-separated groups), ports 4 hex digits. The parser is pure and never
//! panics; lines it cannot read are counted, not fatal.

use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Where the procfs file lives.
pub const CONN_SYNC_PATH: &str = "/proc/net/ip_vs_conn_sync";

/// Who created a connection entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Scheduled by this director.
    Local,
    /// Received from the partner's master sync daemon.
    Sync,
}

/// One connection entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `TCP`, `UDP`, `SCTP`, ... as the kernel names it.
    pub protocol: String,
    pub client: SocketAddr,
    pub virtual_addr: SocketAddr,
    pub real_server: SocketAddr,
    /// Protocol state (`ESTABLISHED`, `SYN_RECV`, `NONE` for templates, ...).
    pub state: String,
    pub origin: Origin,
    /// Seconds until the entry expires.
    pub expires_s: u64,
}

/// A summary of the table: counts over every line, the first entries in full.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnSummary {
    /// Entries created here.
    pub local: usize,
    /// Entries received from the partner.
    pub synced: usize,
    /// Lines that did not parse (a format this parser does not know).
    pub unreadable: usize,
    /// The first entries, at most the `keep` the caller asked for.
    pub entries: Vec<Connection>,
}

fn hex_u32(token: &str) -> Option<u32> {
    // from_str_radix alone would accept a leading `+`.
    if token.is_empty() || token.len() > 8 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u32::from_str_radix(token, 16).ok()
}

fn address(token: &str) -> Option<IpAddr> {
    if token.contains(':') {
        token.parse::<Ipv6Addr>().ok().map(IpAddr::V6)
    } else if token.len() == 8 {
        hex_u32(token).map(|v| IpAddr::V4(Ipv4Addr::from(v)))
    } else {
        None
    }
}

fn endpoint(addr: &str, port: &str) -> Option<SocketAddr> {
    let port = u16::try_from(hex_u32(port)?).ok()?;
    Some(SocketAddr::new(address(addr)?, port))
}

/// Parses one data line (not the header).
pub fn parse_line(line: &str) -> Option<Connection> {
    let mut words = line.split_whitespace();
    let protocol = words.next()?.to_owned();
    let client = endpoint(words.next()?, words.next()?)?;
    let virtual_addr = endpoint(words.next()?, words.next()?)?;
    let real_server = endpoint(words.next()?, words.next()?)?;
    let state = words.next()?.to_owned();
    let origin = match words.next()? {
        "LOCAL" => Origin::Local,
        "SYNC" => Origin::Sync,
        _ => return None,
    };
    let expires_s = words.next()?.parse().ok()?;
    if words.next().is_some() {
        return None;
    }
    Some(Connection {
        protocol,
        client,
        virtual_addr,
        real_server,
        state,
        origin,
        expires_s,
    })
}

/// Summarises the file's lines, keeping the first `keep` entries.
pub fn summarize(lines: impl Iterator<Item = String>, keep: usize) -> ConnSummary {
    let mut summary = ConnSummary::default();
    for line in lines {
        if line.starts_with("Pro ") || line.trim().is_empty() {
            continue;
        }
        match parse_line(&line) {
            Some(conn) => {
                match conn.origin {
                    Origin::Local => summary.local += 1,
                    Origin::Sync => summary.synced += 1,
                }
                if summary.entries.len() < keep {
                    summary.entries.push(conn);
                }
            }
            None => summary.unreadable += 1,
        }
    }
    summary
}

/// Reads and summarises [`CONN_SYNC_PATH`] (streamed: a large table is counted, not stored).
pub fn read_summary(keep: usize) -> std::io::Result<ConnSummary> {
    let file = std::fs::File::open(CONN_SYNC_PATH)?;
    let lines = std::io::BufReader::new(file).lines().map_while(Result::ok);
    Ok(summarize(lines, keep))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_lines_parse_for_both_families_and_origins() {
        let text = "Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires\n\
TCP C0000264 9C40 C000020A 0007 C0000215 0007 ESTABLISHED SYNC       899\n\
UDP C0000265 0035 C000020A 0035 C0000216 0035 UDP         LOCAL      299\n\
TCP 2001:0db8:0000:0000:0000:0000:0000:0064 9C41 2001:0db8:0000:0000:0000:0000:0000:000a 0050 2001:0db8:0000:0000:0000:0000:0000:0015 0050 SYN_RECV    LOCAL       59\n\
garbage line\n";
        let summary = summarize(text.lines().map(str::to_owned), 2);
        assert_eq!(
            (summary.local, summary.synced, summary.unreadable),
            (2, 1, 1)
        );
        assert_eq!(summary.entries.len(), 2, "keeps only the first 2");
        let first = &summary.entries[0];
        assert_eq!(first.protocol, "TCP");
        assert_eq!(first.client, "192.0.2.100:40000".parse().unwrap());
        assert_eq!(first.virtual_addr, "192.0.2.10:7".parse().unwrap());
        assert_eq!(first.real_server, "192.0.2.21:7".parse().unwrap());
        assert_eq!(first.state, "ESTABLISHED");
        assert_eq!(first.origin, Origin::Sync);
        assert_eq!(first.expires_s, 899);
        let v6 = parse_line(text.lines().nth(3).unwrap()).unwrap();
        assert_eq!(v6.client, "[2001:db8::64]:40001".parse().unwrap());
        assert_eq!(v6.real_server, "[2001:db8::15]:80".parse().unwrap());
    }

    #[test]
    fn hostile_lines_are_rejected_not_panicked_on() {
        for line in [
            "",
            "TCP",
            "TCP C0000264 9C40 C000020A 0007 C0000215 0007 ESTABLISHED SYNC",
            "TCP C0000264 19C40 C000020A 0007 C0000215 0007 ESTABLISHED SYNC 1",
            "TCP C00002641 9C40 C000020A 0007 C0000215 0007 ESTABLISHED SYNC 1",
            "TCP C0000264 9C40 C000020A 0007 C0000215 0007 ESTABLISHED OTHER 1",
            "TCP C0000264 9C40 C000020A 0007 C0000215 0007 ESTABLISHED SYNC -1",
            "TCP C0000264 9C40 C000020A 0007 C0000215 0007 ESTABLISHED SYNC 1 extra",
            "TCP ::::::::: 9C40 C000020A 0007 C0000215 0007 ESTABLISHED SYNC 1",
            "TCP +0000264 9C40 C000020A 0007 C0000215 0007 ESTABLISHED SYNC 1",
        ] {
            assert_eq!(parse_line(line), None, "{line:?}");
        }
    }
}
