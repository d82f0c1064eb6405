//! The pair heartbeat: one small datagram each box sends its partner over the peer cable every
//! few milliseconds (BFD-like), carrying its health, so that the partner can take over in tens
//! of milliseconds when this box dies and can refuse to take over when only the service LAN
//! split (see `tandem_vrrp::pair`).
//!
//! ```text
//!  0..4   magic "TDHB"            4      version (1)         5   flags
//!  6..8   instance entries (big-endian, like every field)
//!  8..16  pair id                 16..24 sender session (random per sender start, never 0)
//! 24..32  sequence (1, 2, ... per session)
//! 32..40  echoed session: the receiver's session as the sender last heard it (0: none yet)
//! 40..48  echoed sequence: the receiver's last sequence the sender heard
//! 48..52  echo delay: microseconds between hearing that sequence and sending this datagram
//! 52..56  the sender's transmit interval in microseconds
//! 56..64  config generation        64..72 config digest
//! 72      uplink score (gateways answering; meaningful with FLAG_UPLINK_MEASURED)
//! 73      tracked objects down (saturating)      74..76 reserved (0)
//! 76..    instance entries: name length n (1..=64), name (UTF-8), VRID, family (4 or 6),
//!         state (0 initialize, 1 backup, 2 master, 3 fault), effective priority,
//!         entry flags (bit 0: hears the master's adverts, bit 1: held back),
//!         the sender's own address on the instance's LAN (4 or 16 bytes)
//! then, with FLAG_SHARING only, the load-sharing section: group count (1 byte), and per
//!         group: name length n (1..=64), name (UTF-8), group flags (bit 0: the group runs on
//!         the sender), the buckets the sender holds (64-bit mask, bit i = bucket i), the
//!         sender's own IPv4 address on the group's LAN (0.0.0.0: none)
//! end-32..end  HMAC-SHA256 over everything before it, present only when keyed
//! ```
//!
//! Freshness is the receiver's business (`tandem_vrrp::pair`): the echoed session is the
//! receiver's own random per-boot value, so a datagram captured in an earlier boot of the
//! receiver is refused; within a session the sequence must grow. The decoder here checks
//! structure first and then authentication (pair id, keyed or not as the receiver demands, MAC):
//! a datagram that fails either is refused with the reason, for a counter.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::keyed::{self, be_u32, be_u64, AuthFailure};
pub use crate::keyed::{KeyPolicy, PairKey, MAC_LEN};

/// Largest datagram sent or accepted (the peer channel's bound: never fragmented).
pub const MAX_DATAGRAM_LEN: usize = crate::peer_message::MAX_DATAGRAM_LEN;
/// Magic at the start of every heartbeat.
pub const MAGIC: [u8; 4] = *b"TDHB";
/// The format version this codec speaks.
pub const VERSION: u8 = 1;
/// Fixed header length.
pub const HEADER_LEN: usize = 76;
/// Longest instance name carried.
pub const MAX_NAME_LEN: usize = 64;

/// Flag: the datagram ends in an HMAC-SHA256 tag.
pub const FLAG_KEYED: u8 = 0x01;
/// Flag: the sender asks the partner to take over everything it holds (planned hand-over).
pub const FLAG_HANDOVER: u8 = 0x02;
/// Flag: the sender has more instances than fit; the entries are the first ones.
pub const FLAG_TRUNCATED: u8 = 0x04;
/// Flag: the uplink score was measured (else the sender has no gateway to probe).
pub const FLAG_UPLINK_MEASURED: u8 = 0x08;
/// Flag: a load-sharing section follows the instance entries.
pub const FLAG_SHARING: u8 = 0x10;
const KNOWN_FLAGS: u8 =
    FLAG_KEYED | FLAG_HANDOVER | FLAG_TRUNCATED | FLAG_UPLINK_MEASURED | FLAG_SHARING;
/// Group flag: the load-sharing group runs on the sender (its address and rules are in place).
pub const GROUP_ACTIVE: u8 = 0x01;
const KNOWN_GROUP_FLAGS: u8 = GROUP_ACTIVE;
/// Most load-sharing groups one heartbeat carries.
pub const MAX_SHARING_GROUPS: usize = 16;

/// Entry flag: a backup hears the current master's adverts on the LAN.
pub const ENTRY_HEARS_MASTER: u8 = 0x01;
/// Entry flag: the instance is held back from taking over (the partner is master).
pub const ENTRY_HELD_BACK: u8 = 0x02;
const KNOWN_ENTRY_FLAGS: u8 = ENTRY_HEARS_MASTER | ENTRY_HELD_BACK;

mod field {
    use core::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const VERSION: usize = 4;
    pub const FLAGS: usize = 5;
    pub const COUNT: Range<usize> = 6..8;
    pub const PAIR_ID: Range<usize> = 8..16;
    pub const SESSION: Range<usize> = 16..24;
    pub const SEQUENCE: Range<usize> = 24..32;
    pub const ECHO_SESSION: Range<usize> = 32..40;
    pub const ECHO_SEQUENCE: Range<usize> = 40..48;
    pub const ECHO_DELAY: Range<usize> = 48..52;
    pub const INTERVAL: Range<usize> = 52..56;
    pub const GENERATION: Range<usize> = 56..64;
    pub const DIGEST: Range<usize> = 64..72;
    pub const UPLINK: usize = 72;
    pub const TRACKED_DOWN: usize = 73;
    pub const RESERVED: Range<usize> = 74..76;
}

/// A VRRP state as the partner reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    Initialize,
    Backup,
    Master,
    Fault,
}

impl PeerState {
    const fn to_byte(self) -> u8 {
        match self {
            PeerState::Initialize => 0,
            PeerState::Backup => 1,
            PeerState::Master => 2,
            PeerState::Fault => 3,
        }
    }

    const fn from_byte(byte: u8) -> Option<PeerState> {
        match byte {
            0 => Some(PeerState::Initialize),
            1 => Some(PeerState::Backup),
            2 => Some(PeerState::Master),
            3 => Some(PeerState::Fault),
            _ => None,
        }
    }

    /// Lower-case name, as status lines print it.
    pub const fn as_str(self) -> &'static str {
        match self {
            PeerState::Initialize => "initialize",
            PeerState::Backup => "backup",
            PeerState::Master => "master",
            PeerState::Fault => "fault",
        }
    }
}

/// One VRRP instance's health as its box reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceHealth<'a> {
    /// The instance's name in the (shared) config.
    pub name: &'a str,
    pub vrid: u8,
    pub state: PeerState,
    pub priority: u8,
    /// A backup hears the current master's adverts.
    pub hears_master: bool,
    /// The instance is held back from taking over because the partner is master.
    pub held_back: bool,
    /// The sender's own address on the instance's LAN (its advert source); its family is the
    /// instance's.
    pub source: IpAddr,
}

impl InstanceHealth<'_> {
    /// Bytes the entry takes on the wire.
    pub fn wire_len(&self) -> usize {
        1 + self.name.len()
            + 5
            + match self.source {
                IpAddr::V4(_) => 4,
                IpAddr::V6(_) => 16,
            }
    }
}

/// One load-sharing group as its box reports it: which hash buckets it holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SharingHealth<'a> {
    /// The group's name in the config.
    pub name: &'a str,
    /// The group runs on the sender (address, shared MAC and rules in place).
    pub active: bool,
    /// Buckets the sender accepts new flows in (bit i = bucket i).
    pub held: u64,
    /// The sender's own address on the group's LAN (a second path to probe it by).
    pub address: Ipv4Addr,
}

impl SharingHealth<'_> {
    /// Bytes the entry takes on the wire.
    pub fn wire_len(&self) -> usize {
        1 + self.name.len() + 1 + 8 + 4
    }
}

/// Why a heartbeat was refused. Each variant is one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatError {
    /// Shorter than the header, or longer than [`MAX_DATAGRAM_LEN`].
    BadLength { len: usize },
    /// Does not start with "TDHB": not a heartbeat.
    BadMagic,
    /// A format version this box does not speak.
    UnsupportedVersion { version: u8 },
    /// Flag bits this version does not define, or reserved bytes not zero.
    UnknownFlags { flags: u8 },
    /// The entries do not fill the datagram exactly as the count says.
    BadEntries,
    /// An entry with an empty, over-long or non-UTF-8 name, an unknown family or state, or
    /// undefined entry flags.
    BadEntry,
    /// Session 0 or sequence 0 (never sent).
    BadSession,
    /// The heartbeat belongs to another pair.
    WrongPair { pair_id: u64 },
    /// The receiver needs a MAC and the heartbeat has none.
    MissingMac,
    /// The receiver has no key but the heartbeat is keyed.
    UnexpectedMac,
    /// The MAC does not verify under the pair key.
    BadMac,
    /// The entries do not fit in one datagram (sender side).
    TooManyEntries,
    /// The output buffer is too small (sender side).
    BufferTooSmall { needed: usize, len: usize },
}

impl HeartbeatError {
    /// A short fixed name, the key of the receiver's counter.
    pub const fn reason(&self) -> &'static str {
        match self {
            HeartbeatError::BadLength { .. } => "bad length",
            HeartbeatError::BadMagic => "bad magic",
            HeartbeatError::UnsupportedVersion { .. } => "unsupported version",
            HeartbeatError::UnknownFlags { .. } => "unknown flags",
            HeartbeatError::BadEntries => "bad entries",
            HeartbeatError::BadEntry => "bad entry",
            HeartbeatError::BadSession => "bad session",
            HeartbeatError::WrongPair { .. } => "wrong pair",
            HeartbeatError::MissingMac => "missing MAC",
            HeartbeatError::UnexpectedMac => "unexpected MAC",
            HeartbeatError::BadMac => "bad MAC",
            HeartbeatError::TooManyEntries => "too many entries",
            HeartbeatError::BufferTooSmall { .. } => "buffer too small",
        }
    }
}

impl fmt::Display for HeartbeatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            HeartbeatError::BadLength { len } => write!(
                f,
                "heartbeat of {len} bytes is outside {HEADER_LEN}..={MAX_DATAGRAM_LEN}; discard it"
            ),
            HeartbeatError::BadMagic => f.write_str("datagram is not a heartbeat (bad magic); discard it"),
            HeartbeatError::UnsupportedVersion { version } => write!(
                f,
                "heartbeat version {version}, this box speaks {VERSION}; run the same firmware on both boxes"
            ),
            HeartbeatError::UnknownFlags { flags } => write!(
                f,
                "heartbeat flags {flags:#04x} (or reserved bytes) are not defined in version {VERSION}; run the same firmware on both boxes"
            ),
            HeartbeatError::BadEntries => {
                f.write_str("heartbeat entries do not fill the datagram as its count says; discard it")
            }
            HeartbeatError::BadEntry => f.write_str(
                "heartbeat entry with a bad name, family, state or flags; discard the datagram",
            ),
            HeartbeatError::BadSession => f.write_str("heartbeat with session or sequence 0; discard it"),
            HeartbeatError::WrongPair { pair_id } => write!(
                f,
                "heartbeat from pair {pair_id:016x}, not ours; check peer_link.pair_id on both boxes and the cabling"
            ),
            HeartbeatError::MissingMac => f.write_str(
                "unauthenticated heartbeat but this box is paired; pair the partner with the same key",
            ),
            HeartbeatError::UnexpectedMac => f.write_str(
                "authenticated heartbeat but this box has no pair key; pair this box with the partner",
            ),
            HeartbeatError::BadMac => f.write_str(
                "heartbeat MAC does not verify; the boxes have different pair keys (re-pair them) or someone forges traffic",
            ),
            HeartbeatError::TooManyEntries => {
                f.write_str("heartbeat entries do not fit in one datagram; use entries_that_fit")
            }
            HeartbeatError::BufferTooSmall { needed, len } => write!(
                f,
                "buffer of {len} bytes cannot hold a {needed}-byte heartbeat; pass MAX_DATAGRAM_LEN bytes"
            ),
        }
    }
}

/// A zero-copy view of one heartbeat.
#[derive(Debug, Clone)]
pub struct HeartbeatPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> HeartbeatPacket<T> {
    /// Wraps `buffer` without checks (accessors of a short buffer read zeros, never panic).
    pub const fn new_unchecked(buffer: T) -> HeartbeatPacket<T> {
        HeartbeatPacket { buffer }
    }

    /// Wraps `buffer` after checking its structure (not its authentication: see
    /// [`HeartbeatPacket::authenticate`]).
    pub fn new_checked(buffer: T) -> Result<HeartbeatPacket<T>, HeartbeatError> {
        let packet = HeartbeatPacket { buffer };
        packet.check()?;
        Ok(packet)
    }

    fn check(&self) -> Result<(), HeartbeatError> {
        let bytes = self.buffer.as_ref();
        let len = bytes.len();
        if !(HEADER_LEN..=MAX_DATAGRAM_LEN).contains(&len) {
            return Err(HeartbeatError::BadLength { len });
        }
        if bytes.get(field::MAGIC) != Some(&MAGIC[..]) {
            return Err(HeartbeatError::BadMagic);
        }
        let version = self.byte(field::VERSION);
        if version != VERSION {
            return Err(HeartbeatError::UnsupportedVersion { version });
        }
        let flags = self.flags();
        let reserved_clear = bytes
            .get(field::RESERVED)
            .is_some_and(|reserved| reserved.iter().all(|b| *b == 0));
        let uplink_clear = flags & FLAG_UPLINK_MEASURED != 0 || self.byte(field::UPLINK) == 0;
        if flags & !KNOWN_FLAGS != 0 || !reserved_clear || !uplink_clear {
            return Err(HeartbeatError::UnknownFlags { flags });
        }
        if self.session() == 0 || self.sequence() == 0 {
            return Err(HeartbeatError::BadSession);
        }
        let end = self.entries_end().ok_or(HeartbeatError::BadEntries)?;
        let mut at = HEADER_LEN;
        for _ in 0..self.entry_count() {
            let (_, next) = read_entry(bytes, at, end)?;
            at = next;
        }
        if flags & FLAG_SHARING != 0 {
            let count = usize::from(*bytes.get(at).ok_or(HeartbeatError::BadEntries)?);
            // A section is sent only with groups in it.
            if at >= end || count == 0 || count > MAX_SHARING_GROUPS {
                return Err(HeartbeatError::BadEntries);
            }
            at += 1;
            for _ in 0..count {
                let (_, next) = read_group(bytes, at, end)?;
                at = next;
            }
        }
        if at != end {
            return Err(HeartbeatError::BadEntries);
        }
        Ok(())
    }

    /// Where the load-sharing section's count byte sits (None without one).
    fn sharing_at(&self) -> Option<usize> {
        if self.flags() & FLAG_SHARING == 0 {
            return None;
        }
        let bytes = self.buffer.as_ref();
        let end = self.entries_end()?;
        let mut at = HEADER_LEN;
        for _ in 0..self.entry_count() {
            at = read_entry(bytes, at, end).ok()?.1;
        }
        Some(at)
    }

    /// The load-sharing groups (after [`HeartbeatPacket::new_checked`]; none without the
    /// section).
    pub fn sharing(&self) -> Groups<'_> {
        let bytes = self.buffer.as_ref();
        match self.sharing_at() {
            Some(at) => Groups {
                bytes,
                at: at + 1,
                end: self.entries_end().unwrap_or(0),
                left: bytes.get(at).copied().unwrap_or(0),
            },
            None => Groups {
                bytes,
                at: 0,
                end: 0,
                left: 0,
            },
        }
    }

    fn byte(&self, at: usize) -> u8 {
        self.buffer.as_ref().get(at).copied().unwrap_or(0)
    }

    fn entries_end(&self) -> Option<usize> {
        let len = self.buffer.as_ref().len();
        if self.is_keyed() {
            len.checked_sub(MAC_LEN).filter(|end| *end >= HEADER_LEN)
        } else {
            Some(len)
        }
    }

    pub fn flags(&self) -> u8 {
        self.byte(field::FLAGS)
    }

    /// True when the datagram ends in a MAC.
    pub fn is_keyed(&self) -> bool {
        self.flags() & FLAG_KEYED != 0
    }

    pub fn entry_count(&self) -> u16 {
        let bytes = self.buffer.as_ref();
        bytes
            .get(field::COUNT)
            .and_then(|b| <[u8; 2]>::try_from(b).ok())
            .map_or(0, u16::from_be_bytes)
    }

    pub fn pair_id(&self) -> u64 {
        be_u64(self.buffer.as_ref(), field::PAIR_ID)
    }

    pub fn session(&self) -> u64 {
        be_u64(self.buffer.as_ref(), field::SESSION)
    }

    pub fn sequence(&self) -> u64 {
        be_u64(self.buffer.as_ref(), field::SEQUENCE)
    }

    /// Checks the pair id and the MAC as `policy` demands.
    pub fn authenticate(&self, policy: KeyPolicy<'_>, pair_id: u64) -> Result<(), HeartbeatError> {
        keyed::authenticate(
            self.buffer.as_ref(),
            self.is_keyed(),
            self.pair_id(),
            pair_id,
            policy,
        )
        .map_err(|failure| match failure {
            AuthFailure::WrongPair { pair_id } => HeartbeatError::WrongPair { pair_id },
            AuthFailure::MissingMac => HeartbeatError::MissingMac,
            AuthFailure::UnexpectedMac => HeartbeatError::UnexpectedMac,
            AuthFailure::BadMac => HeartbeatError::BadMac,
        })
    }
}

/// `len` bytes at `from`, all before `end`.
fn within(bytes: &[u8], end: usize, from: usize, len: usize) -> Result<&[u8], HeartbeatError> {
    let to = from.checked_add(len).ok_or(HeartbeatError::BadEntries)?;
    if to > end {
        return Err(HeartbeatError::BadEntries);
    }
    bytes.get(from..to).ok_or(HeartbeatError::BadEntries)
}

/// The length-prefixed name (1..=MAX_NAME_LEN bytes of UTF-8) an entry starts with.
fn read_name(bytes: &[u8], at: usize, end: usize) -> Result<&str, HeartbeatError> {
    let name_len = usize::from(
        *within(bytes, end, at, 1)?
            .first()
            .ok_or(HeartbeatError::BadEntries)?,
    );
    if name_len == 0 || name_len > MAX_NAME_LEN {
        return Err(HeartbeatError::BadEntry);
    }
    core::str::from_utf8(within(bytes, end, at + 1, name_len)?)
        .map_err(|_| HeartbeatError::BadEntry)
}

/// Reads the entry at `at` (ending before `end`); returns it and where the next one starts.
fn read_entry(
    bytes: &[u8],
    at: usize,
    end: usize,
) -> Result<(InstanceHealth<'_>, usize), HeartbeatError> {
    let within = |from: usize, len: usize| within(bytes, end, from, len);
    let name = read_name(bytes, at, end)?;
    let name_len = name.len();
    let fixed = within(at + 1 + name_len, 5)?;
    let [vrid, family, state, priority, flags] =
        <[u8; 5]>::try_from(fixed).map_err(|_| HeartbeatError::BadEntries)?;
    let state = PeerState::from_byte(state).ok_or(HeartbeatError::BadEntry)?;
    if flags & !KNOWN_ENTRY_FLAGS != 0 {
        return Err(HeartbeatError::BadEntry);
    }
    let address_at = at + 1 + name_len + 5;
    let (source, next) = match family {
        4 => {
            let raw = within(address_at, 4)?;
            let octets = <[u8; 4]>::try_from(raw).map_err(|_| HeartbeatError::BadEntries)?;
            (IpAddr::V4(Ipv4Addr::from(octets)), address_at + 4)
        }
        6 => {
            let raw = within(address_at, 16)?;
            let octets = <[u8; 16]>::try_from(raw).map_err(|_| HeartbeatError::BadEntries)?;
            (IpAddr::V6(Ipv6Addr::from(octets)), address_at + 16)
        }
        _ => return Err(HeartbeatError::BadEntry),
    };
    Ok((
        InstanceHealth {
            name,
            vrid,
            state,
            priority,
            hears_master: flags & ENTRY_HEARS_MASTER != 0,
            held_back: flags & ENTRY_HELD_BACK != 0,
            source,
        },
        next,
    ))
}

/// Iterator over the entries of a checked heartbeat.
#[derive(Debug, Clone)]
pub struct Entries<'a> {
    bytes: &'a [u8],
    at: usize,
    end: usize,
    left: u16,
}

impl<'a> Iterator for Entries<'a> {
    type Item = InstanceHealth<'a>;

    fn next(&mut self) -> Option<InstanceHealth<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (entry, next) = read_entry(self.bytes, self.at, self.end).ok()?;
        self.at = next;
        Some(entry)
    }
}

/// Reads the load-sharing entry at `at` (ending before `end`).
fn read_group(
    bytes: &[u8],
    at: usize,
    end: usize,
) -> Result<(SharingHealth<'_>, usize), HeartbeatError> {
    let within = |from: usize, len: usize| within(bytes, end, from, len);
    let name = read_name(bytes, at, end)?;
    let name_len = name.len();
    let fixed = within(at + 1 + name_len, 13)?;
    let flags = fixed[0];
    if flags & !KNOWN_GROUP_FLAGS != 0 {
        return Err(HeartbeatError::BadEntry);
    }
    let held = u64::from_be_bytes(
        <[u8; 8]>::try_from(&fixed[1..9]).map_err(|_| HeartbeatError::BadEntries)?,
    );
    let address = <[u8; 4]>::try_from(&fixed[9..13]).map_err(|_| HeartbeatError::BadEntries)?;
    Ok((
        SharingHealth {
            name,
            active: flags & GROUP_ACTIVE != 0,
            held,
            address: Ipv4Addr::from(address),
        },
        at + 1 + name_len + 13,
    ))
}

/// Iterator over the load-sharing groups of a checked heartbeat.
#[derive(Debug, Clone)]
pub struct Groups<'a> {
    bytes: &'a [u8],
    at: usize,
    end: usize,
    left: u8,
}

impl<'a> Iterator for Groups<'a> {
    type Item = SharingHealth<'a>;

    fn next(&mut self) -> Option<SharingHealth<'a>> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let (group, next) = read_group(self.bytes, self.at, self.end).ok()?;
        self.at = next;
        Some(group)
    }
}

/// A heartbeat's fixed fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HeartbeatHeader {
    pub pair_id: u64,
    pub session: u64,
    pub sequence: u64,
    pub echo_session: u64,
    pub echo_sequence: u64,
    pub echo_delay_us: u32,
    pub interval_us: u32,
    pub generation: u64,
    pub digest: u64,
    /// Gateways answering, when measured.
    pub uplink: Option<u8>,
    pub tracked_down: u8,
    pub handover: bool,
    pub truncated: bool,
}

impl<T: AsRef<[u8]>> HeartbeatPacket<T> {
    /// The fixed fields.
    pub fn header(&self) -> HeartbeatHeader {
        let bytes = self.buffer.as_ref();
        let flags = self.flags();
        HeartbeatHeader {
            pair_id: self.pair_id(),
            session: self.session(),
            sequence: self.sequence(),
            echo_session: be_u64(bytes, field::ECHO_SESSION),
            echo_sequence: be_u64(bytes, field::ECHO_SEQUENCE),
            echo_delay_us: be_u32(bytes, field::ECHO_DELAY),
            interval_us: be_u32(bytes, field::INTERVAL),
            generation: be_u64(bytes, field::GENERATION),
            digest: be_u64(bytes, field::DIGEST),
            uplink: (flags & FLAG_UPLINK_MEASURED != 0).then(|| self.byte(field::UPLINK)),
            tracked_down: self.byte(field::TRACKED_DOWN),
            handover: flags & FLAG_HANDOVER != 0,
            truncated: flags & FLAG_TRUNCATED != 0,
        }
    }

    /// The instance entries (after [`HeartbeatPacket::new_checked`], exactly `entry_count`).
    pub fn entries(&self) -> Entries<'_> {
        Entries {
            bytes: self.buffer.as_ref(),
            at: HEADER_LEN,
            end: self.entries_end().unwrap_or(0),
            left: self.entry_count(),
        }
    }
}

/// Checks structure and authentication of one received heartbeat.
pub fn decode<'a>(
    datagram: &'a [u8],
    policy: KeyPolicy<'_>,
    pair_id: u64,
) -> Result<HeartbeatPacket<&'a [u8]>, HeartbeatError> {
    let packet = HeartbeatPacket::new_checked(datagram)?;
    packet.authenticate(policy, pair_id)?;
    Ok(packet)
}

/// How many of the leading `instances` fit in one heartbeat.
pub fn entries_that_fit(instances: &[InstanceHealth<'_>], keyed: bool) -> usize {
    let mut room = MAX_DATAGRAM_LEN - HEADER_LEN - if keyed { MAC_LEN } else { 0 };
    let mut fitted = 0;
    for entry in instances.iter().take(usize::from(u16::MAX)) {
        let Some(left) = room.checked_sub(entry.wire_len()) else {
            break;
        };
        room = left;
        fitted += 1;
    }
    fitted
}

/// Bytes a heartbeat with `instances` takes.
pub fn buffer_len(instances: &[InstanceHealth<'_>], keyed: bool) -> usize {
    buffer_len_with(instances, &[], keyed)
}

/// Bytes the load-sharing section of `groups` takes (0 for none).
pub fn sharing_len(groups: &[SharingHealth<'_>]) -> usize {
    if groups.is_empty() {
        0
    } else {
        1 + groups.iter().map(SharingHealth::wire_len).sum::<usize>()
    }
}

/// Bytes a heartbeat with `instances` and the load-sharing `groups` takes.
pub fn buffer_len_with(
    instances: &[InstanceHealth<'_>],
    groups: &[SharingHealth<'_>],
    keyed: bool,
) -> usize {
    HEADER_LEN
        + instances
            .iter()
            .map(InstanceHealth::wire_len)
            .sum::<usize>()
        + sharing_len(groups)
        + if keyed { MAC_LEN } else { 0 }
}

/// Writes a heartbeat (with a MAC when `key` is given) and returns its length.
pub fn emit(
    header: &HeartbeatHeader,
    instances: &[InstanceHealth<'_>],
    buffer: &mut [u8],
    key: Option<&PairKey>,
) -> Result<usize, HeartbeatError> {
    emit_with(header, instances, &[], buffer, key)
}

/// Writes a heartbeat with a load-sharing section for `groups` (none when empty).
pub fn emit_with(
    header: &HeartbeatHeader,
    instances: &[InstanceHealth<'_>],
    groups: &[SharingHealth<'_>],
    buffer: &mut [u8],
    key: Option<&PairKey>,
) -> Result<usize, HeartbeatError> {
    if header.session == 0 || header.sequence == 0 {
        return Err(HeartbeatError::BadSession);
    }
    if groups.len() > MAX_SHARING_GROUPS {
        return Err(HeartbeatError::TooManyEntries);
    }
    let needed = buffer_len_with(instances, groups, key.is_some());
    let count = u16::try_from(instances.len()).map_err(|_| HeartbeatError::TooManyEntries)?;
    if needed > MAX_DATAGRAM_LEN {
        return Err(HeartbeatError::TooManyEntries);
    }
    let len = buffer.len();
    let out = buffer
        .get_mut(..needed)
        .ok_or(HeartbeatError::BufferTooSmall { needed, len })?;
    out.fill(0);
    let mut flags = 0;
    if key.is_some() {
        flags |= FLAG_KEYED;
    }
    if header.handover {
        flags |= FLAG_HANDOVER;
    }
    if header.truncated {
        flags |= FLAG_TRUNCATED;
    }
    if header.uplink.is_some() {
        flags |= FLAG_UPLINK_MEASURED;
    }
    if !groups.is_empty() {
        flags |= FLAG_SHARING;
    }
    out[field::MAGIC].copy_from_slice(&MAGIC);
    out[field::VERSION] = VERSION;
    out[field::FLAGS] = flags;
    out[field::COUNT].copy_from_slice(&count.to_be_bytes());
    out[field::PAIR_ID].copy_from_slice(&header.pair_id.to_be_bytes());
    out[field::SESSION].copy_from_slice(&header.session.to_be_bytes());
    out[field::SEQUENCE].copy_from_slice(&header.sequence.to_be_bytes());
    out[field::ECHO_SESSION].copy_from_slice(&header.echo_session.to_be_bytes());
    out[field::ECHO_SEQUENCE].copy_from_slice(&header.echo_sequence.to_be_bytes());
    out[field::ECHO_DELAY].copy_from_slice(&header.echo_delay_us.to_be_bytes());
    out[field::INTERVAL].copy_from_slice(&header.interval_us.to_be_bytes());
    out[field::GENERATION].copy_from_slice(&header.generation.to_be_bytes());
    out[field::DIGEST].copy_from_slice(&header.digest.to_be_bytes());
    out[field::UPLINK] = header.uplink.unwrap_or(0);
    out[field::TRACKED_DOWN] = header.tracked_down;
    let mut at = HEADER_LEN;
    for entry in instances {
        let name = entry.name.as_bytes();
        let name_len = u8::try_from(name.len())
            .ok()
            .filter(|n| (1..=MAX_NAME_LEN).contains(&usize::from(*n)))
            .ok_or(HeartbeatError::BadEntry)?;
        let slot = out
            .get_mut(at..at + entry.wire_len())
            .ok_or(HeartbeatError::TooManyEntries)?;
        slot[0] = name_len;
        let (name_slot, rest) = slot[1..].split_at_mut(name.len());
        name_slot.copy_from_slice(name);
        let mut entry_flags = 0;
        if entry.hears_master {
            entry_flags |= ENTRY_HEARS_MASTER;
        }
        if entry.held_back {
            entry_flags |= ENTRY_HELD_BACK;
        }
        rest[0] = entry.vrid;
        rest[2] = entry.state.to_byte();
        rest[3] = entry.priority;
        rest[4] = entry_flags;
        match entry.source {
            IpAddr::V4(v4) => {
                rest[1] = 4;
                rest[5..9].copy_from_slice(&v4.octets());
            }
            IpAddr::V6(v6) => {
                rest[1] = 6;
                rest[5..21].copy_from_slice(&v6.octets());
            }
        }
        at += entry.wire_len();
    }
    if !groups.is_empty() {
        out[at] = u8::try_from(groups.len()).map_err(|_| HeartbeatError::TooManyEntries)?;
        at += 1;
        for group in groups {
            let name = group.name.as_bytes();
            let name_len = u8::try_from(name.len())
                .ok()
                .filter(|n| (1..=MAX_NAME_LEN).contains(&usize::from(*n)))
                .ok_or(HeartbeatError::BadEntry)?;
            let slot = out
                .get_mut(at..at + group.wire_len())
                .ok_or(HeartbeatError::TooManyEntries)?;
            slot[0] = name_len;
            let (name_slot, rest) = slot[1..].split_at_mut(name.len());
            name_slot.copy_from_slice(name);
            rest[0] = if group.active { GROUP_ACTIVE } else { 0 };
            rest[1..9].copy_from_slice(&group.held.to_be_bytes());
            rest[9..13].copy_from_slice(&group.address.octets());
            at += group.wire_len();
        }
    }
    if let Some(key) = key {
        let tag = keyed::tag(key, &out[..at]);
        out[at..at + MAC_LEN].copy_from_slice(&tag);
    }
    Ok(needed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: PairKey = [7; 32];

    fn header() -> HeartbeatHeader {
        HeartbeatHeader {
            pair_id: 0xa5,
            session: 0x1122_3344_5566_7788,
            sequence: 42,
            echo_session: 9,
            echo_sequence: 41,
            echo_delay_us: 1500,
            interval_us: 10_000,
            generation: 7,
            digest: 0xdead_beef,
            uplink: Some(2),
            tracked_down: 1,
            handover: false,
            truncated: false,
        }
    }

    fn instances() -> [InstanceHealth<'static>; 2] {
        [
            InstanceHealth {
                name: "web_vip",
                vrid: 51,
                state: PeerState::Master,
                priority: 150,
                hears_master: false,
                held_back: false,
                source: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            },
            InstanceHealth {
                name: "v6",
                vrid: 52,
                state: PeerState::Backup,
                priority: 100,
                hears_master: true,
                held_back: true,
                source: IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1)),
            },
        ]
    }

    #[test]
    fn round_trip_keyed_and_unkeyed() {
        let list = instances();
        for key in [None, Some(&KEY)] {
            let mut buffer = [0u8; MAX_DATAGRAM_LEN];
            let len = emit(&header(), &list, &mut buffer, key).unwrap();
            assert_eq!(len, buffer_len(&list, key.is_some()));
            let policy = key.map_or(KeyPolicy::Unkeyed, KeyPolicy::Require);
            let packet = decode(&buffer[..len], policy, 0xa5).unwrap();
            assert_eq!(packet.header(), header());
            let parsed: std::vec::Vec<_> = packet.entries().collect();
            assert_eq!(parsed, list);
        }
    }

    fn groups() -> [SharingHealth<'static>; 2] {
        [
            SharingHealth {
                name: "web",
                active: true,
                held: 0x5555_5555_5555_5555,
                address: Ipv4Addr::new(10, 0, 0, 2),
            },
            SharingHealth {
                name: "dns",
                active: false,
                held: 0,
                address: Ipv4Addr::UNSPECIFIED,
            },
        ]
    }

    #[test]
    fn the_sharing_section_round_trips_after_the_instances() {
        let list = instances();
        let shared = groups();
        for key in [None, Some(&KEY)] {
            let mut buffer = [0u8; MAX_DATAGRAM_LEN];
            let len = emit_with(&header(), &list, &shared, &mut buffer, key).unwrap();
            assert_eq!(len, buffer_len_with(&list, &shared, key.is_some()));
            let policy = key.map_or(KeyPolicy::Unkeyed, KeyPolicy::Require);
            let packet = decode(&buffer[..len], policy, 0xa5).unwrap();
            assert_eq!(packet.header(), header());
            assert_eq!(packet.entries().collect::<std::vec::Vec<_>>(), list);
            assert_eq!(packet.sharing().collect::<std::vec::Vec<_>>(), shared);
            // Without the section: no groups.
            let len = emit(&header(), &list, &mut buffer, key).unwrap();
            let packet = decode(&buffer[..len], policy, 0xa5).unwrap();
            assert_eq!(packet.sharing().count(), 0);
        }
    }

    #[test]
    fn a_damaged_sharing_section_is_refused() {
        let shared = groups();
        let mut buffer = [0u8; MAX_DATAGRAM_LEN];
        let len = emit_with(&header(), &[], &shared, &mut buffer, None).unwrap();
        // The count byte says 3 groups where 2 follow.
        let mut bad = buffer;
        bad[HEADER_LEN] = 3;
        assert_eq!(
            decode(&bad[..len], KeyPolicy::Unkeyed, 0xa5).unwrap_err(),
            HeartbeatError::BadEntries
        );
        // An undefined group flag.
        let mut bad = buffer;
        bad[HEADER_LEN + 1 + 1 + 3] = 0x80;
        assert_eq!(
            decode(&bad[..len], KeyPolicy::Unkeyed, 0xa5).unwrap_err(),
            HeartbeatError::BadEntry
        );
        // The flag without a section.
        let len = emit(&header(), &[], &mut buffer, None).unwrap();
        buffer[5] |= FLAG_SHARING;
        assert_eq!(
            decode(&buffer[..len], KeyPolicy::Unkeyed, 0xa5).unwrap_err(),
            HeartbeatError::BadEntries
        );
        // Every truncation of a section is refused, never a panic.
        let len = emit_with(&header(), &[], &shared, &mut buffer, None).unwrap();
        for cut in HEADER_LEN..len {
            assert!(decode(&buffer[..cut], KeyPolicy::Unkeyed, 0xa5).is_err());
        }
        let many = [shared[0]; MAX_SHARING_GROUPS + 1];
        assert_eq!(
            emit_with(&header(), &[], &many, &mut buffer, None).unwrap_err(),
            HeartbeatError::TooManyEntries
        );
    }

    #[test]
    fn refusals_name_their_reason() {
        let list = instances();
        let mut buffer = [0u8; MAX_DATAGRAM_LEN];
        let len = emit(&header(), &list, &mut buffer, Some(&KEY)).unwrap();
        let datagram = &buffer[..len];
        assert_eq!(
            decode(datagram, KeyPolicy::Require(&KEY), 0xa6).unwrap_err(),
            HeartbeatError::WrongPair { pair_id: 0xa5 }
        );
        assert_eq!(
            decode(datagram, KeyPolicy::Require(&[8; 32]), 0xa5).unwrap_err(),
            HeartbeatError::BadMac
        );
        assert_eq!(
            decode(datagram, KeyPolicy::Unkeyed, 0xa5).unwrap_err(),
            HeartbeatError::UnexpectedMac
        );
        let mut tampered = datagram.to_vec();
        tampered[30] ^= 1;
        assert_eq!(
            decode(&tampered, KeyPolicy::Require(&KEY), 0xa5).unwrap_err(),
            HeartbeatError::BadMac
        );
        let mut plain = [0u8; MAX_DATAGRAM_LEN];
        let plain_len = emit(&header(), &list, &mut plain, None).unwrap();
        assert_eq!(
            decode(&plain[..plain_len], KeyPolicy::Require(&KEY), 0xa5).unwrap_err(),
            HeartbeatError::MissingMac
        );
        assert_eq!(
            decode(&plain[..plain_len - 1], KeyPolicy::Unkeyed, 0xa5).unwrap_err(),
            HeartbeatError::BadEntries
        );
        assert_eq!(
            decode(&plain[..10], KeyPolicy::Unkeyed, 0xa5).unwrap_err(),
            HeartbeatError::BadLength { len: 10 }
        );
        let mut bad_state = plain;
        // First entry: name length 7, name, vrid, family, state.
        bad_state[HEADER_LEN + 1 + 7 + 2] = 9;
        assert_eq!(
            decode(&bad_state[..plain_len], KeyPolicy::Unkeyed, 0xa5).unwrap_err(),
            HeartbeatError::BadEntry
        );
        let mut reserved = plain;
        reserved[75] = 1;
        assert!(matches!(
            decode(&reserved[..plain_len], KeyPolicy::Unkeyed, 0xa5).unwrap_err(),
            HeartbeatError::UnknownFlags { .. }
        ));
        let mut version = plain;
        version[4] = 2;
        assert_eq!(
            decode(&version[..plain_len], KeyPolicy::Unkeyed, 0xa5).unwrap_err(),
            HeartbeatError::UnsupportedVersion { version: 2 }
        );
    }

    #[test]
    fn emit_refuses_what_cannot_be_sent() {
        let mut buffer = [0u8; MAX_DATAGRAM_LEN];
        let mut zero = header();
        zero.session = 0;
        assert_eq!(
            emit(&zero, &[], &mut buffer, None).unwrap_err(),
            HeartbeatError::BadSession
        );
        let long = "x".repeat(65);
        let mut entry = instances()[0];
        entry.name = &long;
        assert_eq!(
            emit(&header(), &[entry], &mut buffer, None).unwrap_err(),
            HeartbeatError::BadEntry
        );
        let many = [instances()[1]; 100];
        let fit = entries_that_fit(&many, true);
        assert!(fit > 10 && fit < 100);
        assert!(emit(&header(), &many[..fit], &mut buffer, Some(&KEY)).is_ok());
        assert_eq!(
            emit(&header(), &many[..=fit], &mut buffer, Some(&KEY)).unwrap_err(),
            HeartbeatError::TooManyEntries
        );
        let mut small = [0u8; 80];
        assert!(matches!(
            emit(&header(), &instances(), &mut small, None).unwrap_err(),
            HeartbeatError::BufferTooSmall { .. }
        ));
    }
}
