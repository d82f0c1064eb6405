//! The connection list a box sends its partner over the peer cable, so that after a takeover
//! the new VIP holder knows which clients to tickle (see [`crate::tickle`]).
//!
//! One list (the TCP connections the sender terminates on its virtual addresses) travels as
//! one or more UDP datagrams of at most [`MAX_DATAGRAM_LEN`] bytes (the IPv6 minimum MTU less
//! the IPv6 and UDP headers, so nothing is ever fragmented). Every datagram is self-contained:
//!
//! ```text
//!  0..4   magic "TDCL"            4      version (1)       5   flags (bit 0: keyed)
//!  6..8   entries in this datagram (big-endian, like every field)
//!  8..16  pair id                 16..24 sender epoch (random per sender start)
//! 24..32  list sequence (grows per list within an epoch)
//! 32..34  chunk index            34..36 chunk count (the list's datagrams, 1..=MAX_CHUNKS)
//! 36..    entries: family (4 or 6), VIP, VIP port, client, client port
//!         (13 bytes for IPv4, 37 for IPv6)
//! end-32..end  HMAC-SHA256 over everything before it, present only when keyed
//! ```
//!
//! The decoder checks structure first (lengths, magic, version, flags, families, chunk range)
//! and then authentication (pair id, keyed or not as the receiver demands, MAC): a datagram
//! that fails either is refused with the reason, for a counter, and never reaches any state.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::keyed::{self, be_u16, be_u64, AuthFailure};
pub use crate::keyed::{KeyPolicy, PairKey, MAC_LEN};

/// Largest datagram sent or accepted: 1280 (IPv6 minimum MTU) - 40 (IPv6) - 8 (UDP).
pub const MAX_DATAGRAM_LEN: usize = 1232;
/// Magic at the start of every datagram.
pub const MAGIC: [u8; 4] = *b"TDCL";
/// The format version this codec speaks.
pub const VERSION: u8 = 1;
/// Fixed header length.
pub const HEADER_LEN: usize = 36;
/// Most datagrams one list may span (bounds what a receiver assembles).
pub const MAX_CHUNKS: u16 = 1024;
/// Flag: the datagram ends in an HMAC-SHA256 tag.
pub const FLAG_KEYED: u8 = 0x01;

const ENTRY_V4_LEN: usize = 1 + 4 + 2 + 4 + 2;
const ENTRY_V6_LEN: usize = 1 + 16 + 2 + 16 + 2;

mod field {
    use core::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const VERSION: usize = 4;
    pub const FLAGS: usize = 5;
    pub const COUNT: Range<usize> = 6..8;
    pub const PAIR_ID: Range<usize> = 8..16;
    pub const EPOCH: Range<usize> = 16..24;
    pub const SEQUENCE: Range<usize> = 24..32;
    pub const CHUNK_INDEX: Range<usize> = 32..34;
    pub const CHUNK_COUNT: Range<usize> = 34..36;
}

/// One TCP connection a box terminates on one of its virtual addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TcpConnection {
    /// The virtual address and service port the client connected to.
    pub vip: SocketAddr,
    /// The client's address and port.
    pub client: SocketAddr,
}

impl TcpConnection {
    /// Bytes the entry takes on the wire.
    pub const fn wire_len(&self) -> usize {
        match self.vip {
            SocketAddr::V4(_) => ENTRY_V4_LEN,
            SocketAddr::V6(_) => ENTRY_V6_LEN,
        }
    }
}

/// Why a datagram was refused. Each variant is one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerMessageError {
    /// Shorter than the header, or longer than [`MAX_DATAGRAM_LEN`].
    BadLength { len: usize },
    /// Does not start with "TDCL": not ours.
    BadMagic,
    /// A format version this box does not speak.
    UnsupportedVersion { version: u8 },
    /// Flag bits this version does not define.
    UnknownFlags { flags: u8 },
    /// Chunk count 0 or above [`MAX_CHUNKS`], or an index not below the count.
    BadChunk { index: u16, count: u16 },
    /// The entries do not fill the datagram exactly as the count says.
    BadEntries,
    /// An entry with an unknown family byte or a zero port.
    BadEntry,
    /// The datagram belongs to another pair.
    WrongPair { pair_id: u64 },
    /// The receiver needs a MAC and the datagram has none.
    MissingMac,
    /// The receiver has no key but the datagram is keyed.
    UnexpectedMac,
    /// The MAC does not verify under the pair key.
    BadMac,
    /// The entries do not fit in one datagram (sender side).
    TooManyEntries,
    /// The output buffer is too small (sender side).
    BufferTooSmall { needed: usize, len: usize },
}

impl PeerMessageError {
    /// A short fixed name, the key of the receiver's counter.
    pub const fn reason(&self) -> &'static str {
        match self {
            PeerMessageError::BadLength { .. } => "bad length",
            PeerMessageError::BadMagic => "bad magic",
            PeerMessageError::UnsupportedVersion { .. } => "unsupported version",
            PeerMessageError::UnknownFlags { .. } => "unknown flags",
            PeerMessageError::BadChunk { .. } => "bad chunk",
            PeerMessageError::BadEntries => "bad entries",
            PeerMessageError::BadEntry => "bad entry",
            PeerMessageError::WrongPair { .. } => "wrong pair",
            PeerMessageError::MissingMac => "missing MAC",
            PeerMessageError::UnexpectedMac => "unexpected MAC",
            PeerMessageError::BadMac => "bad MAC",
            PeerMessageError::TooManyEntries => "too many entries",
            PeerMessageError::BufferTooSmall { .. } => "buffer too small",
        }
    }
}

impl fmt::Display for PeerMessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PeerMessageError::BadLength { len } => write!(
                f,
                "connection list datagram of {len} bytes is outside {HEADER_LEN}..={MAX_DATAGRAM_LEN}; discard it"
            ),
            PeerMessageError::BadMagic => {
                f.write_str("datagram is not a connection list (bad magic); discard it")
            }
            PeerMessageError::UnsupportedVersion { version } => write!(
                f,
                "connection list version {version}, this box speaks {VERSION}; run the same firmware on both boxes"
            ),
            PeerMessageError::UnknownFlags { flags } => write!(
                f,
                "connection list flags {flags:#04x} are not defined in version {VERSION}; run the same firmware on both boxes"
            ),
            PeerMessageError::BadChunk { index, count } => write!(
                f,
                "connection list chunk {index} of {count} is out of range (1..={MAX_CHUNKS} chunks); discard it"
            ),
            PeerMessageError::BadEntries => f.write_str(
                "connection list entries do not fill the datagram as its count says; discard it",
            ),
            PeerMessageError::BadEntry => f.write_str(
                "connection list entry with an unknown family or a zero port; discard the datagram",
            ),
            PeerMessageError::WrongPair { pair_id } => write!(
                f,
                "connection list from pair {pair_id:016x}, not ours; check peer_link.pair_id on both boxes and the cabling"
            ),
            PeerMessageError::MissingMac => f.write_str(
                "unauthenticated connection list but this box is paired; pair the partner with the same key",
            ),
            PeerMessageError::UnexpectedMac => f.write_str(
                "authenticated connection list but this box has no pair key; pair this box with the partner's key",
            ),
            PeerMessageError::BadMac => f.write_str(
                "connection list MAC does not verify; the boxes have different pair keys (re-pair them) or someone forges traffic",
            ),
            PeerMessageError::TooManyEntries => f.write_str(
                "connection list entries do not fit in one datagram; split them with entries_that_fit",
            ),
            PeerMessageError::BufferTooSmall { needed, len } => write!(
                f,
                "buffer of {len} bytes cannot hold a {needed}-byte connection list datagram; pass MAX_DATAGRAM_LEN bytes"
            ),
        }
    }
}

/// A zero-copy view of one datagram.
#[derive(Debug, Clone)]
pub struct PeerMessage<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> PeerMessage<T> {
    /// Wraps `buffer` without checks (accessors of a short buffer read zeros, never panic).
    pub const fn new_unchecked(buffer: T) -> PeerMessage<T> {
        PeerMessage { buffer }
    }

    /// Wraps `buffer` after checking its structure (not its authentication: see
    /// [`PeerMessage::authenticate`]).
    pub fn new_checked(buffer: T) -> Result<PeerMessage<T>, PeerMessageError> {
        let message = PeerMessage { buffer };
        message.check()?;
        Ok(message)
    }

    fn check(&self) -> Result<(), PeerMessageError> {
        let bytes = self.buffer.as_ref();
        let len = bytes.len();
        if !(HEADER_LEN..=MAX_DATAGRAM_LEN).contains(&len) {
            return Err(PeerMessageError::BadLength { len });
        }
        if bytes.get(field::MAGIC) != Some(&MAGIC[..]) {
            return Err(PeerMessageError::BadMagic);
        }
        let version = self.version();
        if version != VERSION {
            return Err(PeerMessageError::UnsupportedVersion { version });
        }
        let flags = self.flags();
        if flags & !FLAG_KEYED != 0 {
            return Err(PeerMessageError::UnknownFlags { flags });
        }
        let (index, count) = (self.chunk_index(), self.chunk_count());
        if count == 0 || count > MAX_CHUNKS || index >= count {
            return Err(PeerMessageError::BadChunk { index, count });
        }
        let end = if self.is_keyed() {
            len.checked_sub(MAC_LEN)
                .filter(|end| *end >= HEADER_LEN)
                .ok_or(PeerMessageError::BadEntries)?
        } else {
            len
        };
        let mut at = HEADER_LEN;
        for _ in 0..self.entry_count() {
            let (_, next) = read_entry(bytes, at, end)?;
            at = next;
        }
        if at != end {
            return Err(PeerMessageError::BadEntries);
        }
        Ok(())
    }

    pub fn version(&self) -> u8 {
        self.buffer
            .as_ref()
            .get(field::VERSION)
            .copied()
            .unwrap_or(0)
    }

    pub fn flags(&self) -> u8 {
        self.buffer.as_ref().get(field::FLAGS).copied().unwrap_or(0)
    }

    /// True when the datagram ends in a MAC.
    pub fn is_keyed(&self) -> bool {
        self.flags() & FLAG_KEYED != 0
    }

    pub fn entry_count(&self) -> u16 {
        be_u16(self.buffer.as_ref(), field::COUNT)
    }

    pub fn pair_id(&self) -> u64 {
        be_u64(self.buffer.as_ref(), field::PAIR_ID)
    }

    /// Random per sender start: a new epoch means the partner restarted.
    pub fn epoch(&self) -> u64 {
        be_u64(self.buffer.as_ref(), field::EPOCH)
    }

    /// Grows with every list the sender makes within one epoch.
    pub fn sequence(&self) -> u64 {
        be_u64(self.buffer.as_ref(), field::SEQUENCE)
    }

    pub fn chunk_index(&self) -> u16 {
        be_u16(self.buffer.as_ref(), field::CHUNK_INDEX)
    }

    pub fn chunk_count(&self) -> u16 {
        be_u16(self.buffer.as_ref(), field::CHUNK_COUNT)
    }

    /// The entries (after [`PeerMessage::new_checked`], exactly `entry_count` of them).
    pub fn entries(&self) -> Entries<'_> {
        let bytes = self.buffer.as_ref();
        let end = if self.is_keyed() {
            bytes.len().saturating_sub(MAC_LEN)
        } else {
            bytes.len()
        };
        Entries {
            bytes,
            at: HEADER_LEN,
            end,
            left: self.entry_count(),
        }
    }

    /// Checks the pair id and the MAC as `policy` demands.
    pub fn authenticate(
        &self,
        policy: KeyPolicy<'_>,
        pair_id: u64,
    ) -> Result<(), PeerMessageError> {
        keyed::authenticate(
            self.buffer.as_ref(),
            self.is_keyed(),
            self.pair_id(),
            pair_id,
            policy,
        )
        .map_err(|failure| match failure {
            AuthFailure::WrongPair { pair_id } => PeerMessageError::WrongPair { pair_id },
            AuthFailure::MissingMac => PeerMessageError::MissingMac,
            AuthFailure::UnexpectedMac => PeerMessageError::UnexpectedMac,
            AuthFailure::BadMac => PeerMessageError::BadMac,
        })
    }
}

/// Checks structure and authentication of one received datagram.
pub fn decode<'a>(
    datagram: &'a [u8],
    policy: KeyPolicy<'_>,
    pair_id: u64,
) -> Result<PeerMessage<&'a [u8]>, PeerMessageError> {
    let message = PeerMessage::new_checked(datagram)?;
    message.authenticate(policy, pair_id)?;
    Ok(message)
}

/// Reads the entry at `at` (ending before `end`); returns it and where the next one starts.
fn read_entry(
    bytes: &[u8],
    at: usize,
    end: usize,
) -> Result<(TcpConnection, usize), PeerMessageError> {
    let family = *bytes
        .get(at)
        .filter(|_| at < end)
        .ok_or(PeerMessageError::BadEntries)?;
    let len = match family {
        4 => ENTRY_V4_LEN,
        6 => ENTRY_V6_LEN,
        _ => return Err(PeerMessageError::BadEntry),
    };
    let next = at + len;
    let entry = bytes
        .get(at + 1..next)
        .filter(|_| next <= end)
        .ok_or(PeerMessageError::BadEntries)?;
    let width = if family == 4 { 4 } else { 16 };
    let address = |from: usize| -> Option<IpAddr> {
        let raw = entry.get(from..from + width)?;
        Some(if family == 4 {
            IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(raw).ok()?))
        } else {
            IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(raw).ok()?))
        })
    };
    let vip = address(0).ok_or(PeerMessageError::BadEntries)?;
    let vport = be_u16(entry, width..width + 2);
    let client = address(width + 2).ok_or(PeerMessageError::BadEntries)?;
    let cport = be_u16(entry, 2 * width + 2..2 * width + 4);
    if vport == 0 || cport == 0 {
        return Err(PeerMessageError::BadEntry);
    }
    Ok((
        TcpConnection {
            vip: SocketAddr::new(vip, vport),
            client: SocketAddr::new(client, cport),
        },
        next,
    ))
}

/// Iterator over the entries of a checked datagram.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    bytes: &'a [u8],
    at: usize,
    end: usize,
    left: u16,
}

impl Iterator for Entries<'_> {
    type Item = TcpConnection;

    fn next(&mut self) -> Option<TcpConnection> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (entry, next) = read_entry(self.bytes, self.at, self.end).ok()?;
        self.at = next;
        Some(entry)
    }
}

/// How many of the leading `entries` fit in one datagram (at least 0, at most all).
pub fn entries_that_fit(entries: &[TcpConnection], keyed: bool) -> usize {
    let mut room = MAX_DATAGRAM_LEN - HEADER_LEN - if keyed { MAC_LEN } else { 0 };
    let mut fitted = 0;
    for entry in entries.iter().take(usize::from(u16::MAX)) {
        let Some(left) = room.checked_sub(entry.wire_len()) else {
            break;
        };
        room = left;
        fitted += 1;
    }
    fitted
}

/// One datagram to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerMessageRepr<'a> {
    pub pair_id: u64,
    pub epoch: u64,
    pub sequence: u64,
    pub chunk_index: u16,
    pub chunk_count: u16,
    /// Every entry must have VIP and client of one family and no zero port.
    pub entries: &'a [TcpConnection],
}

impl PeerMessageRepr<'_> {
    /// Bytes the datagram takes.
    pub fn buffer_len(&self, keyed: bool) -> usize {
        HEADER_LEN
            + self
                .entries
                .iter()
                .map(TcpConnection::wire_len)
                .sum::<usize>()
            + if keyed { MAC_LEN } else { 0 }
    }

    /// Writes the datagram (with a MAC when `key` is given) and returns its length.
    pub fn emit(
        &self,
        buffer: &mut [u8],
        key: Option<&PairKey>,
    ) -> Result<usize, PeerMessageError> {
        let needed = self.buffer_len(key.is_some());
        let count =
            u16::try_from(self.entries.len()).map_err(|_| PeerMessageError::TooManyEntries)?;
        if needed > MAX_DATAGRAM_LEN {
            return Err(PeerMessageError::TooManyEntries);
        }
        if self.chunk_count == 0
            || self.chunk_count > MAX_CHUNKS
            || self.chunk_index >= self.chunk_count
        {
            return Err(PeerMessageError::BadChunk {
                index: self.chunk_index,
                count: self.chunk_count,
            });
        }
        let len = buffer.len();
        let out = buffer
            .get_mut(..needed)
            .ok_or(PeerMessageError::BufferTooSmall { needed, len })?;
        out[field::MAGIC].copy_from_slice(&MAGIC);
        out[field::VERSION] = VERSION;
        out[field::FLAGS] = if key.is_some() { FLAG_KEYED } else { 0 };
        out[field::COUNT].copy_from_slice(&count.to_be_bytes());
        out[field::PAIR_ID].copy_from_slice(&self.pair_id.to_be_bytes());
        out[field::EPOCH].copy_from_slice(&self.epoch.to_be_bytes());
        out[field::SEQUENCE].copy_from_slice(&self.sequence.to_be_bytes());
        out[field::CHUNK_INDEX].copy_from_slice(&self.chunk_index.to_be_bytes());
        out[field::CHUNK_COUNT].copy_from_slice(&self.chunk_count.to_be_bytes());
        let mut at = HEADER_LEN;
        for entry in self.entries {
            if entry.vip.port() == 0 || entry.client.port() == 0 {
                return Err(PeerMessageError::BadEntry);
            }
            let slot = out
                .get_mut(at..at + entry.wire_len())
                .ok_or(PeerMessageError::TooManyEntries)?;
            match (entry.vip, entry.client) {
                (SocketAddr::V4(vip), SocketAddr::V4(client)) => {
                    slot[0] = 4;
                    slot[1..5].copy_from_slice(&vip.ip().octets());
                    slot[5..7].copy_from_slice(&vip.port().to_be_bytes());
                    slot[7..11].copy_from_slice(&client.ip().octets());
                    slot[11..13].copy_from_slice(&client.port().to_be_bytes());
                }
                (SocketAddr::V6(vip), SocketAddr::V6(client)) => {
                    slot[0] = 6;
                    slot[1..17].copy_from_slice(&vip.ip().octets());
                    slot[17..19].copy_from_slice(&vip.port().to_be_bytes());
                    slot[19..35].copy_from_slice(&client.ip().octets());
                    slot[35..37].copy_from_slice(&client.port().to_be_bytes());
                }
                _ => return Err(PeerMessageError::BadEntry),
            }
            at += entry.wire_len();
        }
        if let Some(key) = key {
            let (signed, tag) = out.split_at_mut(at);
            tag.copy_from_slice(&keyed::tag(key, signed));
        }
        Ok(needed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    const KEY: PairKey = [7; 32];
    const PAIR: u64 = 0x0123_4567_89ab_cdef;

    fn conn(vip: &str, client: &str) -> TcpConnection {
        TcpConnection {
            vip: vip.parse().unwrap(),
            client: client.parse().unwrap(),
        }
    }

    fn sample() -> Vec<TcpConnection> {
        std::vec![
            conn("192.0.2.10:7000", "192.0.2.50:40001"),
            conn("[2001:db8::10]:443", "[2001:db8::99]:51000"),
            conn("192.0.2.10:80", "203.0.113.7:65535"),
        ]
    }

    fn repr(entries: &[TcpConnection]) -> PeerMessageRepr<'_> {
        PeerMessageRepr {
            pair_id: PAIR,
            epoch: 42,
            sequence: 9,
            chunk_index: 1,
            chunk_count: 3,
            entries,
        }
    }

    #[test]
    fn keyed_and_unkeyed_datagrams_round_trip() {
        let entries = sample();
        for key in [None, Some(&KEY)] {
            let mut buffer = [0u8; MAX_DATAGRAM_LEN];
            let len = repr(&entries).emit(&mut buffer, key).unwrap();
            assert_eq!(
                len,
                HEADER_LEN + 13 + 37 + 13 + if key.is_some() { 32 } else { 0 }
            );
            let policy = key.map_or(KeyPolicy::Unkeyed, KeyPolicy::Require);
            let message = decode(&buffer[..len], policy, PAIR).unwrap();
            assert_eq!(message.epoch(), 42);
            assert_eq!(message.sequence(), 9);
            assert_eq!((message.chunk_index(), message.chunk_count()), (1, 3));
            assert_eq!(message.entries().collect::<Vec<_>>(), entries);
        }
    }

    #[test]
    fn the_header_layout_is_fixed() {
        let entries = [conn("192.0.2.10:7000", "192.0.2.50:40001")];
        let mut buffer = [0u8; 64];
        let len = repr(&entries).emit(&mut buffer, None).unwrap();
        assert_eq!(
            &buffer[..len],
            &[
                b'T', b'D', b'C', b'L', 1, 0, 0, 1, // magic, version, flags, count
                0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, // pair id
                0, 0, 0, 0, 0, 0, 0, 42, // epoch
                0, 0, 0, 0, 0, 0, 0, 9, // sequence
                0, 1, 0, 3, // chunk 1 of 3
                4, 192, 0, 2, 10, 0x1b, 0x58, 192, 0, 2, 50, 0x9c, 0x41,
            ][..]
        );
    }

    #[test]
    fn authentication_failures_are_refused_with_their_reason() {
        let entries = sample();
        let mut keyed = [0u8; MAX_DATAGRAM_LEN];
        let keyed_len = repr(&entries).emit(&mut keyed, Some(&KEY)).unwrap();
        let mut plain = [0u8; MAX_DATAGRAM_LEN];
        let plain_len = repr(&entries).emit(&mut plain, None).unwrap();
        let keyed = &keyed[..keyed_len];
        let plain = &plain[..plain_len];
        let other_key = [8u8; 32];
        assert_eq!(
            decode(keyed, KeyPolicy::Require(&other_key), PAIR).unwrap_err(),
            PeerMessageError::BadMac
        );
        assert_eq!(
            decode(plain, KeyPolicy::Require(&KEY), PAIR).unwrap_err(),
            PeerMessageError::MissingMac
        );
        assert_eq!(
            decode(keyed, KeyPolicy::Unkeyed, PAIR).unwrap_err(),
            PeerMessageError::UnexpectedMac
        );
        assert_eq!(
            decode(plain, KeyPolicy::Unkeyed, 5).unwrap_err(),
            PeerMessageError::WrongPair { pair_id: PAIR }
        );
        // Any flipped bit in a keyed datagram is refused (structure or MAC).
        for bit in 0..keyed.len() * 8 {
            let mut broken = keyed.to_vec();
            broken[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode(&broken, KeyPolicy::Require(&KEY), PAIR).is_err(),
                "bit {bit}"
            );
        }
    }

    #[test]
    fn structural_damage_is_refused_never_panics() {
        let entries = sample();
        let mut buffer = [0u8; MAX_DATAGRAM_LEN];
        let len = repr(&entries).emit(&mut buffer, None).unwrap();
        let good = &buffer[..len];
        for cut in 0..len {
            assert!(PeerMessage::new_checked(&good[..cut]).is_err(), "cut {cut}");
        }
        let mut longer = good.to_vec();
        longer.push(0);
        assert_eq!(
            PeerMessage::new_checked(&longer[..]).unwrap_err(),
            PeerMessageError::BadEntries
        );
        let patch = |at: usize, value: u8| {
            let mut bytes = good.to_vec();
            bytes[at] = value;
            PeerMessage::new_checked(bytes).unwrap_err()
        };
        assert_eq!(patch(0, b'X'), PeerMessageError::BadMagic);
        assert_eq!(
            patch(4, 2),
            PeerMessageError::UnsupportedVersion { version: 2 }
        );
        assert_eq!(
            patch(5, 0x80),
            PeerMessageError::UnknownFlags { flags: 0x80 }
        );
        assert_eq!(
            patch(33, 3),
            PeerMessageError::BadChunk { index: 3, count: 3 }
        );
        assert_eq!(
            patch(35, 0),
            PeerMessageError::BadChunk { index: 1, count: 0 }
        );
        assert_eq!(patch(HEADER_LEN, 5), PeerMessageError::BadEntry);
        assert_eq!(patch(7, 2), PeerMessageError::BadEntries);
        assert_eq!(patch(7, 4), PeerMessageError::BadEntries);
        let huge = [0u8; MAX_DATAGRAM_LEN + 1];
        assert_eq!(
            PeerMessage::new_checked(&huge[..]).unwrap_err(),
            PeerMessageError::BadLength {
                len: MAX_DATAGRAM_LEN + 1
            }
        );
    }

    #[test]
    fn zero_ports_and_mixed_families_are_refused() {
        let mut buffer = [0u8; MAX_DATAGRAM_LEN];
        let entries = [conn("192.0.2.10:7000", "192.0.2.50:40001")];
        let len = repr(&entries).emit(&mut buffer, None).unwrap();
        let mut zero = buffer[..len].to_vec();
        zero[HEADER_LEN + 11] = 0;
        zero[HEADER_LEN + 12] = 0;
        assert_eq!(
            PeerMessage::new_checked(zero).unwrap_err(),
            PeerMessageError::BadEntry
        );
        let mixed = [TcpConnection {
            vip: "192.0.2.10:7000".parse().unwrap(),
            client: "[2001:db8::1]:4000".parse().unwrap(),
        }];
        assert_eq!(
            repr(&mixed).emit(&mut buffer, None).unwrap_err(),
            PeerMessageError::BadEntry
        );
    }

    #[test]
    fn chunking_fills_datagrams_to_the_limit_and_no_further() {
        let v4: Vec<TcpConnection> = (1..=200u16)
            .map(|port| conn("192.0.2.10:80", &std::format!("192.0.2.50:{port}")))
            .collect();
        let unkeyed = entries_that_fit(&v4, false);
        let keyed = entries_that_fit(&v4, true);
        assert_eq!(unkeyed, (MAX_DATAGRAM_LEN - HEADER_LEN) / 13);
        assert_eq!(keyed, (MAX_DATAGRAM_LEN - HEADER_LEN - MAC_LEN) / 13);
        let mut buffer = [0u8; MAX_DATAGRAM_LEN];
        let len = repr(&v4[..keyed]).emit(&mut buffer, Some(&KEY)).unwrap();
        assert!(len <= MAX_DATAGRAM_LEN);
        assert_eq!(
            repr(&v4[..keyed + 1])
                .emit(&mut buffer, Some(&KEY))
                .unwrap_err(),
            PeerMessageError::TooManyEntries
        );
        assert_eq!(entries_that_fit(&[], true), 0);
    }
}
