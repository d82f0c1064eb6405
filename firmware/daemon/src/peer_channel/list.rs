//! The connection lists of the peer channel as pure bookkeeping, with injected time.
//!
//! [`Outbox`]: this box's list (its connections on VIPs) cut into datagrams, sent when it
//! changes and at least every [`REFRESH`]. [`Inbox`]: the partner's datagrams assembled into
//! its latest complete list. Ordering: within one sender epoch a list only replaces an older
//! sequence; a half-assembled list is dropped when a newer sequence starts; a new epoch (the
//! partner restarted) starts afresh. Everything is bounded by [`MAX_CONNECTIONS`].

use std::time::{Duration, Instant};

use tandem_wire::peer_message::{
    entries_that_fit, PairKey, PeerMessage, PeerMessageRepr, TcpConnection, MAX_CHUNKS,
    MAX_DATAGRAM_LEN,
};

/// Most connections one list carries (the sender truncates, the receiver refuses more).
pub const MAX_CONNECTIONS: usize = 16384;
/// An unchanged list is sent again after this long.
pub const REFRESH: Duration = Duration::from_secs(1);

/// This box's side: what it last sent and when.
#[derive(Debug)]
pub struct Outbox {
    pair_id: u64,
    epoch: u64,
    sequence: u64,
    last: Option<(Vec<TcpConnection>, Instant)>,
    /// Connections left out of the last list because of [`MAX_CONNECTIONS`] / chunk limits.
    pub truncated: usize,
}

impl Outbox {
    pub fn new(pair_id: u64, epoch: u64) -> Outbox {
        Outbox {
            pair_id,
            epoch,
            sequence: 0,
            last: None,
            truncated: 0,
        }
    }

    /// The datagrams to send now for `current` (sorted, deduplicated by the caller), or
    /// nothing when the list is unchanged and was sent less than [`REFRESH`] ago.
    pub fn poll(
        &mut self,
        now: Instant,
        mut current: Vec<TcpConnection>,
        key: Option<&PairKey>,
    ) -> Vec<Vec<u8>> {
        let fresh = self.last.as_ref().is_some_and(|(list, sent)| {
            *list == current && now.saturating_duration_since(*sent) < REFRESH
        });
        if fresh {
            return Vec::new();
        }
        let total = current.len();
        current.truncate(MAX_CONNECTIONS);
        let mut chunks: Vec<&[TcpConnection]> = Vec::new();
        let mut rest: &[TcpConnection] = &current;
        loop {
            let fit = entries_that_fit(rest, key.is_some());
            let (chunk, after) = rest.split_at(fit);
            chunks.push(chunk);
            rest = after;
            if rest.is_empty() || fit == 0 || chunks.len() == usize::from(MAX_CHUNKS) {
                break;
            }
        }
        self.truncated = total - chunks.iter().map(|c| c.len()).sum::<usize>();
        self.sequence += 1;
        let count = u16::try_from(chunks.len()).unwrap_or(MAX_CHUNKS);
        let mut datagrams = Vec::with_capacity(chunks.len());
        for (index, chunk) in chunks.iter().enumerate() {
            let repr = PeerMessageRepr {
                pair_id: self.pair_id,
                epoch: self.epoch,
                sequence: self.sequence,
                chunk_index: u16::try_from(index).unwrap_or(0),
                chunk_count: count,
                entries: chunk,
            };
            let mut buffer = vec![0u8; MAX_DATAGRAM_LEN];
            if let Ok(length) = repr.emit(&mut buffer, key) {
                buffer.truncate(length);
                datagrams.push(buffer);
            }
        }
        self.last = Some((current, now));
        datagrams
    }

    /// Connections in the last list sent.
    pub fn reported(&self) -> usize {
        self.last.as_ref().map_or(0, |(list, _)| list.len())
    }

    #[cfg(test)]
    pub fn sequence(&self) -> u64 {
        self.sequence
    }
}

/// The partner's latest complete list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerList {
    pub epoch: u64,
    pub sequence: u64,
    pub connections: Vec<TcpConnection>,
    pub completed_at: Instant,
}

#[derive(Debug)]
struct Assembly {
    epoch: u64,
    sequence: u64,
    chunks: Vec<bool>,
    connections: Vec<TcpConnection>,
}

/// What one authenticated datagram did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A chunk of a list still being assembled.
    Partial,
    /// The last missing chunk: the list replaced the partner's previous one.
    Completed,
    /// An older list (or a chunk already held): ignored.
    Stale,
    /// The chunk count differs from the other chunks of its list: ignored.
    Inconsistent,
    /// The list would exceed [`MAX_CONNECTIONS`]: the assembly was dropped.
    TooLarge,
}

impl Outcome {
    /// Counter name of an outcome that is a refusal.
    pub fn refusal(self) -> Option<&'static str> {
        match self {
            Outcome::Partial | Outcome::Completed => None,
            Outcome::Stale => Some("stale"),
            Outcome::Inconsistent => Some("inconsistent chunks"),
            Outcome::TooLarge => Some("list too large"),
        }
    }
}

/// The partner's side: assembly and the latest complete list.
#[derive(Debug, Default)]
pub struct Inbox {
    pub current: Option<PartnerList>,
    assembling: Option<Assembly>,
}

impl Inbox {
    /// Takes one datagram that passed [`tandem_wire::peer_message::decode`].
    pub fn accept(&mut self, now: Instant, message: &PeerMessage<&[u8]>) -> Outcome {
        let (epoch, sequence) = (message.epoch(), message.sequence());
        let count = usize::from(message.chunk_count());
        let index = usize::from(message.chunk_index());
        if let Some(current) = &self.current {
            if current.epoch == epoch && sequence <= current.sequence {
                return Outcome::Stale;
            }
        }
        let same_list = self
            .assembling
            .as_ref()
            .is_some_and(|a| a.epoch == epoch && a.sequence == sequence);
        if !same_list {
            let older = self
                .assembling
                .as_ref()
                .is_some_and(|a| a.epoch == epoch && sequence < a.sequence);
            if older {
                return Outcome::Stale;
            }
            self.assembling = Some(Assembly {
                epoch,
                sequence,
                chunks: vec![false; count],
                connections: Vec::new(),
            });
        }
        let Some(assembly) = self.assembling.as_mut() else {
            return Outcome::Stale;
        };
        if assembly.chunks.len() != count {
            return Outcome::Inconsistent;
        }
        match assembly.chunks.get_mut(index) {
            Some(seen) if !*seen => *seen = true,
            _ => return Outcome::Stale,
        }
        if assembly.connections.len() + usize::from(message.entry_count()) > MAX_CONNECTIONS {
            self.assembling = None;
            return Outcome::TooLarge;
        }
        assembly.connections.extend(message.entries());
        if assembly.chunks.iter().all(|seen| *seen) {
            if let Some(done) = self.assembling.take() {
                let mut connections = done.connections;
                connections.sort_unstable();
                connections.dedup();
                self.current = Some(PartnerList {
                    epoch: done.epoch,
                    sequence: done.sequence,
                    connections,
                    completed_at: now,
                });
            }
            return Outcome::Completed;
        }
        Outcome::Partial
    }

    /// Removes and returns the partner's connections whose VIP is in `vips` (the takeover of
    /// those addresses uses them once).
    pub fn take_for(&mut self, vips: &[std::net::IpAddr]) -> Vec<TcpConnection> {
        let Some(current) = self.current.as_mut() else {
            return Vec::new();
        };
        let (taken, kept): (Vec<_>, Vec<_>) = current
            .connections
            .iter()
            .partition(|c| vips.contains(&c.vip.ip()));
        current.connections = kept;
        taken
    }

    /// How many of the partner's connections are on `vips`, and how old the list is.
    pub fn count_for(&self, now: Instant, vips: &[std::net::IpAddr]) -> Option<(usize, Duration)> {
        self.current.as_ref().map(|current| {
            (
                current
                    .connections
                    .iter()
                    .filter(|c| vips.contains(&c.vip.ip()))
                    .count(),
                now.saturating_duration_since(current.completed_at),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_wire::peer_message::{decode, KeyPolicy};

    const PAIR: u64 = 77;

    fn conns(count: u16, vip: &str) -> Vec<TcpConnection> {
        (1..=count)
            .map(|port| TcpConnection {
                vip: format!("{vip}:80").parse().unwrap(),
                client: format!("192.0.2.200:{port}").parse().unwrap(),
            })
            .collect()
    }

    fn feed(inbox: &mut Inbox, now: Instant, datagrams: &[Vec<u8>]) -> Vec<Outcome> {
        datagrams
            .iter()
            .map(|d| {
                let message = decode(d, KeyPolicy::Unkeyed, PAIR).unwrap();
                inbox.accept(now, &message)
            })
            .collect()
    }

    #[test]
    fn a_large_list_crosses_in_chunks_and_is_assembled_whole() {
        let t0 = Instant::now();
        let mut outbox = Outbox::new(PAIR, 1);
        let list = conns(500, "192.0.2.10");
        let datagrams = outbox.poll(t0, list.clone(), None);
        assert_eq!(datagrams.len(), 500usize.div_ceil(91));
        assert!(datagrams.iter().all(|d| d.len() <= MAX_DATAGRAM_LEN));
        let mut inbox = Inbox::default();
        // Arrival order does not matter.
        let mut reversed = datagrams.clone();
        reversed.reverse();
        let outcomes = feed(&mut inbox, t0, &reversed);
        assert_eq!(outcomes.last(), Some(&Outcome::Completed));
        assert!(outcomes[..outcomes.len() - 1]
            .iter()
            .all(|o| *o == Outcome::Partial));
        assert_eq!(inbox.current.as_ref().unwrap().connections, list);
        // The same datagrams again are stale and change nothing.
        assert!(feed(&mut inbox, t0, &datagrams)
            .iter()
            .all(|o| *o == Outcome::Stale));
    }

    #[test]
    fn unchanged_lists_wait_for_the_refresh_and_changes_go_at_once() {
        let t0 = Instant::now();
        let mut outbox = Outbox::new(PAIR, 1);
        assert_eq!(outbox.poll(t0, conns(1, "192.0.2.10"), None).len(), 1);
        let later = t0 + Duration::from_millis(250);
        assert!(outbox.poll(later, conns(1, "192.0.2.10"), None).is_empty());
        assert_eq!(outbox.poll(later, conns(2, "192.0.2.10"), None).len(), 1);
        assert_eq!(outbox.sequence(), 2);
        assert_eq!(
            outbox
                .poll(later + REFRESH, conns(2, "192.0.2.10"), None)
                .len(),
            1
        );
        // An empty list is still one datagram: the partner learns there is nothing to tickle.
        assert_eq!(outbox.poll(later + REFRESH, Vec::new(), None).len(), 1);
        assert_eq!(outbox.reported(), 0);
    }

    #[test]
    fn a_newer_sequence_drops_the_half_assembled_older_one() {
        let t0 = Instant::now();
        let mut outbox = Outbox::new(PAIR, 1);
        let first = outbox.poll(t0, conns(200, "192.0.2.10"), None);
        let second = outbox.poll(t0, conns(3, "192.0.2.10"), None);
        assert!(first.len() > 1);
        let mut inbox = Inbox::default();
        assert_eq!(feed(&mut inbox, t0, &first[..1]), vec![Outcome::Partial]);
        assert_eq!(feed(&mut inbox, t0, &second), vec![Outcome::Completed]);
        assert_eq!(inbox.current.as_ref().unwrap().connections.len(), 3);
        // The rest of the older list arrives late: refused, nothing changes.
        assert!(feed(&mut inbox, t0, &first[1..])
            .iter()
            .all(|o| *o == Outcome::Stale));
        assert_eq!(inbox.current.as_ref().unwrap().sequence, 2);
    }

    #[test]
    fn a_restarted_partner_is_believed_from_its_first_list() {
        let t0 = Instant::now();
        let mut before = Outbox::new(PAIR, 1);
        for n in 1..=5 {
            before.poll(t0 + REFRESH * n, conns(1, "192.0.2.10"), None);
        }
        let mut inbox = Inbox::default();
        feed(
            &mut inbox,
            t0,
            &before.poll(t0 + REFRESH * 9, conns(4, "192.0.2.10"), None),
        );
        let mut after = Outbox::new(PAIR, 2);
        let outcome = feed(
            &mut inbox,
            t0,
            &after.poll(t0, conns(2, "192.0.2.10"), None),
        );
        assert_eq!(outcome, vec![Outcome::Completed]);
        assert_eq!(inbox.current.as_ref().unwrap().connections.len(), 2);
    }

    #[test]
    fn taking_for_vips_leaves_the_other_instances_connections() {
        let t0 = Instant::now();
        let mut outbox = Outbox::new(PAIR, 1);
        let mut list = conns(3, "192.0.2.10");
        list.extend(conns(2, "192.0.2.11"));
        list.sort_unstable();
        let mut inbox = Inbox::default();
        feed(&mut inbox, t0, &outbox.poll(t0, list, None));
        let vip: std::net::IpAddr = "192.0.2.11".parse().unwrap();
        let later = t0 + Duration::from_millis(800);
        assert_eq!(
            inbox.count_for(later, &[vip]),
            Some((2, Duration::from_millis(800)))
        );
        assert_eq!(inbox.take_for(&[vip]).len(), 2);
        assert_eq!(inbox.count_for(later, &[vip]).map(|c| c.0), Some(0));
        assert_eq!(inbox.current.as_ref().unwrap().connections.len(), 3);
    }

    #[test]
    fn oversized_lists_are_truncated_by_the_sender() {
        let t0 = Instant::now();
        let mut outbox = Outbox::new(PAIR, 1);
        let huge: Vec<TcpConnection> = (0..(MAX_CONNECTIONS + 10))
            .map(|i| TcpConnection {
                vip: "192.0.2.10:80".parse().unwrap(),
                client: std::net::SocketAddr::new(
                    std::net::Ipv4Addr::from(0xc633_0000 + u32::try_from(i).unwrap()).into(),
                    1000,
                ),
            })
            .collect();
        let datagrams = outbox.poll(t0, huge, None);
        assert_eq!(outbox.truncated, 10);
        let mut inbox = Inbox::default();
        assert_eq!(
            feed(&mut inbox, t0, &datagrams).last(),
            Some(&Outcome::Completed)
        );
        assert_eq!(
            inbox.current.as_ref().unwrap().connections.len(),
            MAX_CONNECTIONS
        );
    }
}
