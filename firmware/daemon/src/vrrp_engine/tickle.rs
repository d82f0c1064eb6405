//! Tickle ACKs after a takeover (seed 000, CTDB): the clients the partner was serving on an
//! instance's VIPs learn at once that their connections are gone.
//!
//! When an instance becomes master (its VIPs are added and the first gratuitous ARP / NA is
//! out) the partner's last reported connections on those VIPs are taken from the peer channel
//! and each gets a tickle ACK (VIP:port -> client:port, seq 0, ack 0, window 1234) in
//! [`ROUNDS`]: two 10 ms apart against a lost first packet, and a third after one second
//! (CTDB's interval), past the 500 ms a Linux client waits between answers to out-of-window
//! segments (`tcp_invalid_ratelimit`), in case the first answer was lost. The client answers
//! each with an ACK; this box's kernel has no socket for it and answers RST.
//!
//! The sending runs on the blocking pool, never on the engine's task: adverts keep their
//! timing however many clients there are. The list is used once (taken from the channel).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tandem_southbound::tickle::TickleSocket;
use tandem_wire::peer_message::TcpConnection;
use tandem_wire::tickle::{TickleAckRepr, TICKLE_MAX_LEN};

use crate::logring::Log;
use crate::peer_channel::PeerSlot;

/// When each round of tickles goes out, from the takeover.
pub const ROUNDS: [Duration; 3] = [
    Duration::ZERO,
    Duration::from_millis(10),
    Duration::from_millis(1000),
];

/// What the last takeover of one instance sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TakeoverTickles {
    /// Connections tickled.
    pub connections: u64,
    /// Tickle packets sent.
    pub packets: u64,
    /// Packets the kernel refused.
    pub send_errors: u64,
    /// All rounds are out.
    pub finished: bool,
}

/// The engine's tickler: the daemon's peer channel plus what each takeover did.
#[derive(Debug, Default)]
pub struct Tickler {
    channel: PeerSlot,
    log: Option<Log>,
    /// By instance index.
    last: HashMap<usize, Arc<Mutex<TakeoverTickles>>>,
}

impl Tickler {
    /// Tickles through the daemon's peer channel (whichever is current at a takeover).
    pub fn new(channel: PeerSlot, log: &Log) -> Tickler {
        Tickler {
            channel,
            log: Some(log.clone()),
            last: HashMap::new(),
        }
    }

    /// `instance` (`name`) became master of `vips`: tickles the partner's clients on them.
    pub fn became_master(&mut self, instance: usize, name: &str, vips: &[IpAddr]) {
        let Some(channel) = self.channel.get() else {
            return;
        };
        let connections = channel.take_for(vips);
        let record = Arc::new(Mutex::new(TakeoverTickles {
            connections: u64::try_from(connections.len()).unwrap_or(u64::MAX),
            finished: connections.is_empty(),
            ..TakeoverTickles::default()
        }));
        self.last.insert(instance, Arc::clone(&record));
        if connections.is_empty() {
            return;
        }
        let log = self.log.clone();
        let name = name.to_owned();
        if let Some(log) = &log {
            log.line(format!(
                "vrrp: {name}: tickling {} connections the partner reported",
                connections.len()
            ));
        }
        tokio::task::spawn_blocking(move || {
            let packets = tickle_packets(&connections);
            let mut socket = TickleSocket::new();
            let mut first_error = None;
            let started = std::time::Instant::now();
            for offset in ROUNDS {
                if let Some(wait) = offset.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
                let (mut sent, mut failed) = (0u64, 0u64);
                for (packet, destination) in &packets {
                    match socket.send(packet, *destination) {
                        Ok(()) => sent += 1,
                        Err(error) => {
                            failed += 1;
                            first_error.get_or_insert(error);
                        }
                    }
                }
                let mut record = record
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                record.packets += sent;
                record.send_errors += failed;
            }
            let done = {
                let mut record = record
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                record.finished = true;
                *record
            };
            if let Some(log) = log {
                log.line(format!(
                    "vrrp: {name}: tickled {} connections: {} packets, {} send errors{}",
                    done.connections,
                    done.packets,
                    done.send_errors,
                    first_error.map_or(String::new(), |e| format!(" (first: {e})"))
                ));
            }
        });
    }

    /// Status lines: per instance what the partner reported and what the last takeover sent,
    /// then the channel's own line.
    pub fn status_text<'a>(
        &self,
        instances: impl Iterator<Item = (usize, &'a str, &'a [IpAddr])>,
    ) -> String {
        let mut out = String::new();
        let Some(channel) = self.channel.get() else {
            let _ = writeln!(
                out,
                "tickle: off (no peer link: connections are not shared with the partner)"
            );
            return out;
        };
        for (index, name, vips) in instances {
            let partner = match channel.partner_count(vips) {
                Some((count, age)) => format!(
                    "partner reported {count} connection{} on its VIPs (age {:.1} s)",
                    if count == 1 { "" } else { "s" },
                    age.as_secs_f64()
                ),
                None => "partner reported nothing yet".to_owned(),
            };
            let last = match self.last.get(&index) {
                Some(record) => {
                    let r = *record
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    format!(
                        "last takeover tickled {} ({} packets, {} send errors{})",
                        r.connections,
                        r.packets,
                        r.send_errors,
                        if r.finished { "" } else { ", sending" }
                    )
                }
                None => "no takeover yet".to_owned(),
            };
            let _ = writeln!(out, "tickle {name}: {partner}; {last}");
        }
        out.push_str(&channel.status_line());
        out
    }
}

/// One tickle packet per connection with its destination (entries that cannot be built, such
/// as mixed families, are skipped: the decoder refuses them anyway).
pub fn tickle_packets(connections: &[TcpConnection]) -> Vec<(Vec<u8>, IpAddr)> {
    connections
        .iter()
        .filter_map(|connection| {
            let mut buffer = [0u8; TICKLE_MAX_LEN];
            let length = TickleAckRepr::new(connection.vip, connection.client)
                .emit(&mut buffer)
                .ok()?;
            Some((buffer.get(..length)?.to_vec(), connection.client.ip()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_connection_becomes_one_tickle_from_the_vip_to_the_client() {
        let connections = [
            TcpConnection {
                vip: "192.0.2.10:7000".parse().unwrap(),
                client: "192.0.2.50:40001".parse().unwrap(),
            },
            TcpConnection {
                vip: "[2001:db8::10]:443".parse().unwrap(),
                client: "[2001:db8::99]:51000".parse().unwrap(),
            },
        ];
        let packets = tickle_packets(&connections);
        assert_eq!(packets.len(), 2);
        for ((packet, destination), connection) in packets.iter().zip(&connections) {
            let tickle = TickleAckRepr::parse(packet).unwrap();
            assert_eq!(
                tickle,
                TickleAckRepr::new(connection.vip, connection.client)
            );
            assert_eq!(*destination, connection.client.ip());
        }
    }

    #[test]
    fn without_a_peer_link_status_says_tickles_are_off() {
        let tickler = Tickler::default();
        let vips: Vec<IpAddr> = vec!["192.0.2.10".parse().unwrap()];
        let text = tickler.status_text([(0, "web", vips.as_slice())].into_iter());
        assert!(text.starts_with("tickle: off"), "{text}");
    }
}
