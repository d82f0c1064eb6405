//! Config replication between the two boxes over the peer cable (issue 11): what each box
//! tells its partner about its running config every 500 ms, and the push that carries a config
//! blob from one box to the other.
//!
//! Six kinds of message share one header. STATE and FIRMWARE travel as UDP datagrams of at
//! most [`MAX_DATAGRAM_LEN`] bytes; CHALLENGE, PUSH, BUNDLE and RESULT travel over a TCP
//! connection to the partner's push port, each in one frame (below). Every field is big-endian.
//!
//! Channel versions: FIRMWARE and BUNDLE are channel 4. Firmware that speaks channel 3 counts
//! a kind it does not know as bad, so a box sends them only to a partner whose STATE says
//! channel 4 or newer ([`speaks_firmware`]); replication itself is unchanged since channel 3,
//! so boxes of channel 3 and 4 replicate with each other ([`replicates_with`]).
//!
//! ```text
//! every kind:
//!  0..4   magic "TDRP"      4  version (1)     5  kind (1..=6)
//!  6      flags (bit 0: keyed; bit 1, PUSH only: force; bit 2, PUSH only: pull;
//!         bit 1, BUNDLE only: reboot after the install)
//!  7      reserved (0)
//!  8..16  pair id
//!
//! STATE (kind 1, 56 bytes + tag; UDP, sent by each box every 500 ms):
//! 16..24  sender session (random per boot, never 0)
//! 24..32  sequence (1, 2, ... per session)
//! 32..40  config generation          40..48  config digest
//! 48      sender role (0 none, 1 a, 2 b)
//! 49      relation: what the sender concluded about the receiver's config (0 unknown,
//!         1 in sync, 2 receiver behind: the sender will push, 3 receiver not in the
//!         sender's history)
//! 50      channel version (1)         51  reserved (0)
//! 52..54  newest config blob format the sender reads
//! 54..56  the sender's TCP push port (0: it accepts no push)
//!
//! CHALLENGE (kind 2, 52 bytes + tag; the push server's first message on a connection):
//! 16..32  server nonce (16 random bytes, never all zero)
//! 32..40  server generation          40..48  server digest
//! 48      server role                 49  channel version
//! 50..52  newest config blob format the server reads
//!
//! PUSH (kind 3, 40 + n bytes + tag; client to server):
//! 16..32  the server's nonce, echoed
//! 32      sender role                 33..36  reserved (0)
//! 36..40  blob length n (1..=MAX_BLOB_LEN; 0 exactly when pull: the client asks for the
//!         server's config, which comes back as a PUSH echoing the same nonce, for
//!         `pair adopt-peer` and `compare peer`)
//! 40..    the config blob (opaque here)
//!
//! RESULT (kind 4, 52 + m bytes + tag; server to client, the answer to a PUSH):
//! 16..32  the server's nonce, echoed
//! 32..40  server generation after the push      40..48  server digest after the push
//! 48      outcome (0 applied, 1 already running this config, 2 diverged: refused,
//!         3 invalid blob or config: refused, 4 busy, 5 version refused,
//!         6 not paired or wrong role)
//! 49      reserved (0)                50..52  message length m (0..=MAX_TEXT_LEN)
//! 52..    message for the operator (UTF-8, no control characters but newline and tab)
//!
//! FIRMWARE (kind 5, 68 bytes + tag; UDP, channel 4: sent with each STATE to a partner of
//! channel 4 or newer):
//! 16..24  sender session             24..32  sequence (the STATE's counter: one replay window)
//! 32      sender role                 33  running slot (0 not a slot image, 1 a, 2 b)
//! 34      slot state (0 exactly when no slot; 1 blessed, 2 on trial)
//! 35      version length v (1..=MAX_VERSION_LEN)
//! 36..68  firmware version (printable ASCII, no spaces), then zeros
//!
//! BUNDLE (kind 6, 40 + n bytes + tag; client to server after CHALLENGE, channel 4):
//! 16..32  the server's nonce, echoed
//! 32      sender role                 33..36  reserved (0)
//! 36..40  bundle length n (1..=MAX_BUNDLE_LEN)
//! 40..    a signed firmware bundle (opaque here); the server answers RESULT
//!
//! end-32..end  HMAC-SHA256 over everything before it, present only when keyed
//! ```
//!
//! Framing on TCP: a `u32` big-endian length ([`HEADER_LEN`]`..=`[`MAX_FRAME_LEN`]), then
//! exactly that many bytes of one message. A reader reads the 4-byte prefix, asks
//! [`frame_len`] (or [`frame_len_of`] for the one kind it expects next), which refuses a
//! hostile length before anything is read or allocated, then reads the message and decodes it.
//!
//! The decoder checks structure first (length, magic, version, kind, flags, lengths, enum
//! values, UTF-8) and then authentication with the rule every peer-cable message gets
//! ([`crate::keyed`]): the pair id must match, a paired box demands the tag, an unpaired box
//! refuses a keyed message. A message that fails either is refused with the reason, for a
//! counter. Freshness is the caller's business: STATE's session and sequence, and the nonce a
//! PUSH and its RESULT echo (the server issues a fresh one per connection; a client accepts
//! an "applied" or "already running" RESULT only with the generation and digest it pushed).

use core::fmt;

use crate::keyed::{self, be_u16, be_u32, be_u64, AuthFailure};
pub use crate::keyed::{KeyPolicy, PairKey, MAC_LEN};

/// Largest STATE datagram sent or accepted (the peer cable's bound: never fragmented).
pub const MAX_DATAGRAM_LEN: usize = crate::peer_message::MAX_DATAGRAM_LEN;
/// Magic at the start of every message.
pub const MAGIC: [u8; 4] = *b"TDRP";
/// The message format version this codec speaks.
pub const VERSION: u8 = 1;
/// The push channel version this firmware speaks (carried in STATE and CHALLENGE). 2: the
/// sealed payload of a PUSH may start with the console's admin password hash (an envelope the
/// daemon's `pair_service::seal` writes), so firmware that speaks 1 must not receive it. 3: that
/// payload may be a config delta over the generation the receiver runs (`tandem_config::delta`)
/// and a RESULT may say [`Outcome::NeedFull`]. 4: FIRMWARE (the sender's firmware version and
/// slot) and BUNDLE (a signed firmware bundle for the partner's other slot).
pub const CHANNEL_VERSION: u8 = 4;
/// The oldest channel version this firmware replicates configs with (PUSH and RESULT are
/// unchanged since 3).
pub const OLDEST_CHANNEL_VERSION: u8 = 3;
/// The channel version that knows FIRMWARE and BUNDLE.
pub const FIRMWARE_CHANNEL_VERSION: u8 = 4;
/// Longest firmware version string a FIRMWARE carries.
pub const MAX_VERSION_LEN: usize = 32;
/// A FIRMWARE message without its tag.
pub const FIRMWARE_LEN: usize = 68;
/// A BUNDLE message before its bundle.
pub const BUNDLE_HEADER_LEN: usize = 40;
/// Largest firmware bundle a BUNDLE carries (a bundle is bounded at ~24 MiB; room to grow).
pub const MAX_BUNDLE_LEN: usize = 64 << 20;
/// The header every kind starts with.
pub const HEADER_LEN: usize = 16;
/// A STATE message without its tag.
pub const STATE_LEN: usize = 56;
/// A CHALLENGE message without its tag.
pub const CHALLENGE_LEN: usize = 52;
/// A PUSH message before its blob.
pub const PUSH_HEADER_LEN: usize = 40;
/// A RESULT message before its text.
pub const RESULT_HEADER_LEN: usize = 52;
/// Length of the server's nonce.
pub const NONCE_LEN: usize = 16;
/// Largest config blob a PUSH carries: a 2 MiB slot's payload plus the blob's own framing.
pub const MAX_BLOB_LEN: usize = 2 * 1024 * 1024 + 72;
/// Longest RESULT message text, in bytes.
pub const MAX_TEXT_LEN: usize = 1024;
/// Largest message (a keyed BUNDLE of [`MAX_BUNDLE_LEN`] bytes), so the largest frame
/// payload; a reader bounds it by the kinds it expects ([`frame_len_of`]).
pub const MAX_FRAME_LEN: usize = BUNDLE_HEADER_LEN + MAX_BUNDLE_LEN + MAC_LEN;
/// The length prefix in front of every message on TCP.
pub const FRAME_PREFIX_LEN: usize = 4;

/// Kind byte of a STATE message.
pub const KIND_STATE: u8 = 1;
/// Kind byte of a CHALLENGE message.
pub const KIND_CHALLENGE: u8 = 2;
/// Kind byte of a PUSH message.
pub const KIND_PUSH: u8 = 3;
/// Kind byte of a RESULT message.
pub const KIND_RESULT: u8 = 4;
/// Kind byte of a FIRMWARE message (channel 4).
pub const KIND_FIRMWARE: u8 = 5;
/// Kind byte of a BUNDLE message (channel 4).
pub const KIND_BUNDLE: u8 = 6;

/// Flag: the message ends in an HMAC-SHA256 tag.
pub const FLAG_KEYED: u8 = 0x01;
/// Flag (PUSH only): `pair push`, overwrite a partner whose config diverged.
pub const FLAG_FORCE: u8 = 0x02;
/// PUSH flag: a request for the server's config (no blob); the answer is a PUSH.
pub const FLAG_PULL: u8 = 0x04;
/// BUNDLE flag: reboot into the installed slot after answering.
pub const FLAG_REBOOT: u8 = 0x02;

const _: () = assert!(STATE_LEN + MAC_LEN <= MAX_DATAGRAM_LEN);
const _: () = assert!(FIRMWARE_LEN + MAC_LEN <= MAX_DATAGRAM_LEN);
const _: () = assert!(FIRMWARE_LEN == 36 + MAX_VERSION_LEN);
const _: () = assert!(MAX_FRAME_LEN <= 0xffff_ffff);

/// The server's random per-connection nonce.
pub type Nonce = [u8; NONCE_LEN];

mod field {
    use core::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const VERSION: usize = 4;
    pub const KIND: usize = 5;
    pub const FLAGS: usize = 6;
    pub const RESERVED: usize = 7;
    pub const PAIR_ID: Range<usize> = 8..16;

    pub mod state {
        use core::ops::Range;
        pub const SESSION: Range<usize> = 16..24;
        pub const SEQUENCE: Range<usize> = 24..32;
        pub const GENERATION: Range<usize> = 32..40;
        pub const DIGEST: Range<usize> = 40..48;
        pub const ROLE: usize = 48;
        pub const RELATION: usize = 49;
        pub const CHANNEL_VERSION: usize = 50;
        pub const RESERVED: usize = 51;
        pub const BLOB_FORMAT: Range<usize> = 52..54;
        pub const PUSH_PORT: Range<usize> = 54..56;
    }

    pub mod challenge {
        use core::ops::Range;
        pub const NONCE: Range<usize> = 16..32;
        pub const GENERATION: Range<usize> = 32..40;
        pub const DIGEST: Range<usize> = 40..48;
        pub const ROLE: usize = 48;
        pub const CHANNEL_VERSION: usize = 49;
        pub const BLOB_FORMAT: Range<usize> = 50..52;
    }

    pub mod push {
        use core::ops::Range;
        pub const NONCE: Range<usize> = 16..32;
        pub const ROLE: usize = 32;
        pub const RESERVED: Range<usize> = 33..36;
        pub const BLOB_LEN: Range<usize> = 36..40;
        pub const BLOB: usize = 40;
    }

    pub mod firmware {
        use core::ops::Range;
        pub const SESSION: Range<usize> = 16..24;
        pub const SEQUENCE: Range<usize> = 24..32;
        pub const ROLE: usize = 32;
        pub const SLOT: usize = 33;
        pub const SLOT_STATE: usize = 34;
        pub const VERSION_LEN: usize = 35;
        pub const VERSION: Range<usize> = 36..68;
    }

    pub mod bundle {
        use core::ops::Range;
        pub const NONCE: Range<usize> = 16..32;
        pub const ROLE: usize = 32;
        pub const RESERVED: Range<usize> = 33..36;
        pub const BUNDLE_LEN: Range<usize> = 36..40;
        pub const BUNDLE: usize = 40;
    }

    pub mod result {
        use core::ops::Range;
        pub const NONCE: Range<usize> = 16..32;
        pub const GENERATION: Range<usize> = 32..40;
        pub const DIGEST: Range<usize> = 40..48;
        pub const OUTCOME: usize = 48;
        pub const RESERVED: usize = 49;
        pub const TEXT_LEN: Range<usize> = 50..52;
        pub const TEXT: usize = 52;
    }
}

/// The six kinds of replication message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A box's config state, every 500 ms over UDP.
    State,
    /// The push server's first message on a connection.
    Challenge,
    /// A config blob, client to server.
    Push,
    /// The server's answer to a push (or a bundle).
    Result,
    /// A box's firmware version and slot, over UDP (channel 4).
    Firmware,
    /// A signed firmware bundle for the server's other slot, client to server (channel 4).
    Bundle,
}

impl Kind {
    /// The kind byte on the wire.
    pub const fn to_byte(self) -> u8 {
        match self {
            Kind::State => KIND_STATE,
            Kind::Challenge => KIND_CHALLENGE,
            Kind::Push => KIND_PUSH,
            Kind::Result => KIND_RESULT,
            Kind::Firmware => KIND_FIRMWARE,
            Kind::Bundle => KIND_BUNDLE,
        }
    }

    /// The kind of a kind byte, if it is one.
    pub const fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            KIND_STATE => Some(Kind::State),
            KIND_CHALLENGE => Some(Kind::Challenge),
            KIND_PUSH => Some(Kind::Push),
            KIND_RESULT => Some(Kind::Result),
            KIND_FIRMWARE => Some(Kind::Firmware),
            KIND_BUNDLE => Some(Kind::Bundle),
            _ => None,
        }
    }

    /// Lower-case name, as counters and logs print it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::State => "state",
            Kind::Challenge => "challenge",
            Kind::Push => "push",
            Kind::Result => "result",
            Kind::Firmware => "firmware",
            Kind::Bundle => "bundle",
        }
    }

    /// Bytes before the variable part (blob or text), without the tag.
    const fn fixed_len(self) -> usize {
        match self {
            Kind::State => STATE_LEN,
            Kind::Challenge => CHALLENGE_LEN,
            Kind::Push => PUSH_HEADER_LEN,
            Kind::Result => RESULT_HEADER_LEN,
            Kind::Firmware => FIRMWARE_LEN,
            Kind::Bundle => BUNDLE_HEADER_LEN,
        }
    }

    /// Shortest message of this kind (unkeyed, smallest blob or empty text).
    pub const fn min_len(self) -> usize {
        match self {
            // A pull is a PUSH header alone (no blob); a BUNDLE carries at least one byte.
            Kind::Bundle => BUNDLE_HEADER_LEN + 1,
            _ => self.fixed_len(),
        }
    }

    /// Longest message of this kind (keyed, largest blob or text).
    pub const fn max_len(self) -> usize {
        match self {
            Kind::State | Kind::Challenge | Kind::Firmware => self.fixed_len() + MAC_LEN,
            Kind::Bundle => BUNDLE_HEADER_LEN + MAX_BUNDLE_LEN + MAC_LEN,
            Kind::Push => PUSH_HEADER_LEN + MAX_BLOB_LEN + MAC_LEN,
            Kind::Result => RESULT_HEADER_LEN + MAX_TEXT_LEN + MAC_LEN,
        }
    }
}

/// A box's role in the pair (fixed at pairing); on the wire, no role is 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PairRole {
    /// The box of `[pair.a]` (byte 1).
    A,
    /// The box of `[pair.b]` (byte 2).
    B,
}

const fn role_to_byte(role: Option<PairRole>) -> u8 {
    match role {
        None => 0,
        Some(PairRole::A) => 1,
        Some(PairRole::B) => 2,
    }
}

const fn role_from_byte(byte: u8) -> Result<Option<PairRole>, DecodeError> {
    match byte {
        0 => Ok(None),
        1 => Ok(Some(PairRole::A)),
        2 => Ok(Some(PairRole::B)),
        role => Err(DecodeError::UnknownRole { role }),
    }
}

/// Whether firmware that speaks `channel` is sent FIRMWARE and may be sent a BUNDLE.
pub const fn speaks_firmware(channel: u8) -> bool {
    channel >= FIRMWARE_CHANNEL_VERSION
}

/// Whether this firmware replicates configs with a partner that speaks `channel`.
pub const fn replicates_with(channel: u8) -> bool {
    channel >= OLDEST_CHANNEL_VERSION && channel <= CHANNEL_VERSION
}

/// Whether firmware of channels `a` and `b` work together as a pair: replication is the same
/// from channel 3 on, and firmware N and N+1 (one channel apart) must work together.
pub const fn channels_work_together(a: u8, b: u8) -> bool {
    let (low, high) = if a < b { (a, b) } else { (b, a) };
    low >= OLDEST_CHANNEL_VERSION && high - low <= 1
}

/// One of the two firmware slots of a box's disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotName {
    /// Slot a (byte 1).
    A,
    /// Slot b (byte 2).
    B,
}

impl SlotName {
    /// The slot's letter.
    pub const fn letter(self) -> char {
        match self {
            SlotName::A => 'a',
            SlotName::B => 'b',
        }
    }
}

/// The slot a box's firmware booted from, and whether it is blessed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RunningSlot {
    pub slot: SlotName,
    /// False: on trial (systemd-boot still counts its boots).
    pub blessed: bool,
}

const fn slot_to_bytes(slot: Option<RunningSlot>) -> (u8, u8) {
    match slot {
        None => (0, 0),
        Some(RunningSlot { slot, blessed }) => (
            match slot {
                SlotName::A => 1,
                SlotName::B => 2,
            },
            if blessed { 1 } else { 2 },
        ),
    }
}

const fn slot_from_bytes(slot: u8, state: u8) -> Result<Option<RunningSlot>, DecodeError> {
    let name = match slot {
        0 if state == 0 => return Ok(None),
        1 => SlotName::A,
        2 => SlotName::B,
        _ => return Err(DecodeError::UnknownSlot { slot, state }),
    };
    let blessed = match state {
        1 => true,
        2 => false,
        _ => return Err(DecodeError::UnknownSlot { slot, state }),
    };
    Ok(Some(RunningSlot {
        slot: name,
        blessed,
    }))
}

/// A firmware version as FIRMWARE carries it: 1..=[`MAX_VERSION_LEN`] bytes of printable
/// ASCII without spaces.
pub fn version_is_valid(version: &str) -> bool {
    (1..=MAX_VERSION_LEN).contains(&version.len()) && version.bytes().all(|b| b.is_ascii_graphic())
}

/// What the sender of a STATE concluded about the receiver's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relation {
    /// Not known yet (byte 0).
    Unknown,
    /// Both run the same config (byte 1).
    InSync,
    /// The receiver runs an older config in the sender's history: the sender will push
    /// (byte 2).
    ReceiverBehind,
    /// The receiver's config is not in the sender's history: the configs diverged, or the
    /// receiver is ahead (byte 3).
    ReceiverNotInHistory,
}

impl Relation {
    const fn to_byte(self) -> u8 {
        match self {
            Relation::Unknown => 0,
            Relation::InSync => 1,
            Relation::ReceiverBehind => 2,
            Relation::ReceiverNotInHistory => 3,
        }
    }

    const fn from_byte(byte: u8) -> Result<Relation, DecodeError> {
        match byte {
            0 => Ok(Relation::Unknown),
            1 => Ok(Relation::InSync),
            2 => Ok(Relation::ReceiverBehind),
            3 => Ok(Relation::ReceiverNotInHistory),
            relation => Err(DecodeError::UnknownRelation { relation }),
        }
    }

    /// Lower-case words, as status lines print them.
    pub const fn as_str(self) -> &'static str {
        match self {
            Relation::Unknown => "unknown",
            Relation::InSync => "in sync",
            Relation::ReceiverBehind => "receiver behind",
            Relation::ReceiverNotInHistory => "receiver not in history",
        }
    }
}

/// What the push server did with a PUSH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The config was stored and applied (byte 0).
    Applied,
    /// The server already runs this config (byte 1).
    AlreadyRunning,
    /// Refused: the server's config is not in the pushed config's history (byte 2); only a
    /// forced push (`pair push`) overwrites it.
    Diverged,
    /// Refused: the blob or the config in it is invalid (byte 3).
    Invalid,
    /// The server is busy (a commit or another push in progress); try again (byte 4).
    Busy,
    /// Refused: the server does not read the blob's format or speak the channel version
    /// (byte 5).
    VersionRefused,
    /// Refused: the server is not paired, or the sender's role is not its partner's (byte 6).
    NotPaired,
    /// A delta the server cannot take (it runs another generation than the delta's base, or
    /// the rebuilt config is not the sender's): send the whole blob (byte 7).
    NeedFull,
}

impl Outcome {
    const fn to_byte(self) -> u8 {
        match self {
            Outcome::Applied => 0,
            Outcome::AlreadyRunning => 1,
            Outcome::Diverged => 2,
            Outcome::Invalid => 3,
            Outcome::Busy => 4,
            Outcome::VersionRefused => 5,
            Outcome::NotPaired => 6,
            Outcome::NeedFull => 7,
        }
    }

    const fn from_byte(byte: u8) -> Result<Outcome, DecodeError> {
        match byte {
            0 => Ok(Outcome::Applied),
            1 => Ok(Outcome::AlreadyRunning),
            2 => Ok(Outcome::Diverged),
            3 => Ok(Outcome::Invalid),
            4 => Ok(Outcome::Busy),
            5 => Ok(Outcome::VersionRefused),
            6 => Ok(Outcome::NotPaired),
            7 => Ok(Outcome::NeedFull),
            outcome => Err(DecodeError::UnknownOutcome { outcome }),
        }
    }

    /// Lower-case words, as status lines print them.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::AlreadyRunning => "already running",
            Outcome::Diverged => "diverged",
            Outcome::Invalid => "invalid",
            Outcome::Busy => "busy",
            Outcome::VersionRefused => "version refused",
            Outcome::NotPaired => "not paired",
            Outcome::NeedFull => "needs the whole config",
        }
    }
}

/// Why a replication message (or a frame length) was refused. Each variant is one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// Shorter than the common header, or longer than [`MAX_FRAME_LEN`].
    BadLength { len: usize },
    /// A frame length prefix outside the lengths a message (of the expected kind) can have.
    BadFrameLength { len: u32 },
    /// Does not start with "TDRP": not a replication message.
    BadMagic,
    /// A message format version this box does not speak.
    UnsupportedVersion { version: u8 },
    /// A kind byte this version does not define.
    UnknownKind { kind: u8 },
    /// A valid message of another kind than the one the receiver expects.
    UnexpectedKind { expected: Kind, found: Kind },
    /// Flag bits this kind does not define, or reserved bytes not zero.
    UnknownFlags { flags: u8 },
    /// Shorter than the fixed part of its kind (and its tag when keyed).
    Truncated { len: usize, needed: usize },
    /// The message is not as long as its kind, blob length or text length say.
    LengthMismatch { len: usize, expected: usize },
    /// A PUSH's blob length is 0 or above [`MAX_BLOB_LEN`].
    BadBlobLength { len: u32 },
    /// A BUNDLE's bundle length is 0 or above [`MAX_BUNDLE_LEN`].
    BadBundleLength { len: u32 },
    /// A FIRMWARE's version is empty, too long, not printable ASCII, or not zero-padded.
    BadFirmwareVersion,
    /// A FIRMWARE's slot and slot state bytes are not a pair this version defines.
    UnknownSlot { slot: u8, state: u8 },
    /// A RESULT's text length is above [`MAX_TEXT_LEN`].
    BadTextLength { len: u16 },
    /// A RESULT's text is not UTF-8, or has control characters other than newline and tab.
    BadText,
    /// A role byte other than 0 (none), 1 (a) and 2 (b).
    UnknownRole { role: u8 },
    /// A relation byte this version does not define.
    UnknownRelation { relation: u8 },
    /// An outcome byte this version does not define.
    UnknownOutcome { outcome: u8 },
    /// A STATE with session or sequence 0 (never sent).
    BadSession,
    /// An all-zero nonce (never sent: the server draws it at random).
    ZeroNonce,
    /// The message belongs to another pair.
    WrongPair { pair_id: u64 },
    /// The receiver needs a MAC and the message has none.
    MissingMac,
    /// The receiver has no key but the message is keyed.
    UnexpectedMac,
    /// The MAC does not verify under the pair key.
    BadMac,
}

impl DecodeError {
    /// A short fixed name, the key of the receiver's counter.
    pub const fn reason(&self) -> &'static str {
        match self {
            DecodeError::BadLength { .. } => "bad length",
            DecodeError::BadFrameLength { .. } => "bad frame length",
            DecodeError::BadMagic => "bad magic",
            DecodeError::UnsupportedVersion { .. } => "unsupported version",
            DecodeError::UnknownKind { .. } => "unknown kind",
            DecodeError::UnexpectedKind { .. } => "unexpected kind",
            DecodeError::UnknownFlags { .. } => "unknown flags",
            DecodeError::Truncated { .. } => "truncated",
            DecodeError::LengthMismatch { .. } => "length mismatch",
            DecodeError::BadBlobLength { .. } => "bad blob length",
            DecodeError::BadBundleLength { .. } => "bad bundle length",
            DecodeError::BadFirmwareVersion => "bad firmware version",
            DecodeError::UnknownSlot { .. } => "unknown slot",
            DecodeError::BadTextLength { .. } => "bad text length",
            DecodeError::BadText => "bad text",
            DecodeError::UnknownRole { .. } => "unknown role",
            DecodeError::UnknownRelation { .. } => "unknown relation",
            DecodeError::UnknownOutcome { .. } => "unknown outcome",
            DecodeError::BadSession => "bad session",
            DecodeError::ZeroNonce => "zero nonce",
            DecodeError::WrongPair { .. } => "wrong pair",
            DecodeError::MissingMac => "missing MAC",
            DecodeError::UnexpectedMac => "unexpected MAC",
            DecodeError::BadMac => "bad MAC",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::BadLength { len } => write!(
                f,
                "replication message of {len} bytes is outside {HEADER_LEN}..={MAX_FRAME_LEN}; drop it"
            ),
            DecodeError::BadFrameLength { len } => write!(
                f,
                "replication frame announces {len} bytes, more or fewer than such a message can have; close the connection without reading it"
            ),
            DecodeError::BadMagic => {
                f.write_str("not a replication message (bad magic); drop it")
            }
            DecodeError::UnsupportedVersion { version } => write!(
                f,
                "replication message version {version}, this box speaks {VERSION}; run the same firmware on both boxes"
            ),
            DecodeError::UnknownKind { kind } => write!(
                f,
                "replication message kind {kind} is not defined in version {VERSION}; run the same firmware on both boxes"
            ),
            DecodeError::UnexpectedKind { expected, found } => write!(
                f,
                "replication {} message where a {} was expected; drop it (and close the connection)",
                found.as_str(),
                expected.as_str()
            ),
            DecodeError::UnknownFlags { flags } => write!(
                f,
                "replication message flags {flags:#04x} (or reserved bytes) are not defined for its kind in version {VERSION}; run the same firmware on both boxes"
            ),
            DecodeError::Truncated { len, needed } => write!(
                f,
                "replication message of {len} bytes is shorter than the {needed} bytes its kind needs; drop it"
            ),
            DecodeError::LengthMismatch { len, expected } => write!(
                f,
                "replication message is {len} bytes but its fields say {expected}; drop it"
            ),
            DecodeError::BadBlobLength { len } => write!(
                f,
                "config push announces a {len}-byte blob, outside 1..={MAX_BLOB_LEN}; drop it"
            ),
            DecodeError::BadBundleLength { len } => write!(
                f,
                "firmware bundle transfer announces {len} bytes, outside 1..={MAX_BUNDLE_LEN}; drop it"
            ),
            DecodeError::BadFirmwareVersion => f.write_str(
                "partner firmware message with a version that is empty, longer than 32 bytes or not printable ASCII; drop it (run released firmware on the partner)",
            ),
            DecodeError::UnknownSlot { slot, state } => write!(
                f,
                "partner firmware message with slot {slot} state {state} (slot 0 none, 1 a, 2 b; state 1 blessed, 2 on trial); run the same firmware on both boxes"
            ),
            DecodeError::BadTextLength { len } => write!(
                f,
                "push result text of {len} bytes is longer than {MAX_TEXT_LEN}; drop it"
            ),
            DecodeError::BadText => f.write_str(
                "push result text is not UTF-8 or has control characters; drop it",
            ),
            DecodeError::UnknownRole { role } => write!(
                f,
                "replication message with pair role {role} (0 none, 1 a, 2 b); run the same firmware on both boxes"
            ),
            DecodeError::UnknownRelation { relation } => write!(
                f,
                "config state with relation {relation}, not defined in version {VERSION}; run the same firmware on both boxes"
            ),
            DecodeError::UnknownOutcome { outcome } => write!(
                f,
                "push result with outcome {outcome}, not defined in version {VERSION}; run the same firmware on both boxes"
            ),
            DecodeError::BadSession => {
                f.write_str("config state with session or sequence 0; drop it")
            }
            DecodeError::ZeroNonce => {
                f.write_str("replication message with an all-zero nonce; drop it and close the connection")
            }
            DecodeError::WrongPair { pair_id } => write!(
                f,
                "replication message from pair {pair_id:016x}, not ours; check peer_link.pair_id on both boxes and the cabling"
            ),
            DecodeError::MissingMac => f.write_str(
                "unauthenticated replication message but this box is paired; pair the partner with the same key",
            ),
            DecodeError::UnexpectedMac => f.write_str(
                "authenticated replication message but this box has no pair key; pair this box with the partner",
            ),
            DecodeError::BadMac => f.write_str(
                "replication message MAC does not verify; the boxes have different pair keys (re-pair them) or someone forges traffic",
            ),
        }
    }
}

/// Why a message could not be written (sender side: a caller's mistake).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// The output buffer is too small.
    BufferTooSmall { needed: usize, len: usize },
    /// The blob is empty or longer than [`MAX_BLOB_LEN`].
    BadBlobLength { len: usize },
    /// The RESULT text is longer than [`MAX_TEXT_LEN`] bytes.
    TextTooLong { len: usize },
    /// The RESULT text has control characters other than newline and tab.
    BadText,
    /// A STATE with session or sequence 0.
    BadSession,
    /// An all-zero nonce.
    ZeroNonce,
    /// The BUNDLE's bundle is empty or longer than [`MAX_BUNDLE_LEN`].
    BadBundleLength { len: usize },
    /// The FIRMWARE's version is not 1..=32 bytes of printable ASCII.
    BadFirmwareVersion,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::BufferTooSmall { needed, len } => write!(
                f,
                "buffer of {len} bytes cannot hold a {needed}-byte replication message; size it with buffer_len"
            ),
            EncodeError::BadBlobLength { len } => write!(
                f,
                "config blob of {len} bytes cannot be pushed (1..={MAX_BLOB_LEN}); check the config store"
            ),
            EncodeError::TextTooLong { len } => write!(
                f,
                "push result text of {len} bytes is longer than {MAX_TEXT_LEN}; shorten it with clip_text"
            ),
            EncodeError::BadText => f.write_str(
                "push result text has control characters; keep to printable text, newlines and tabs",
            ),
            EncodeError::BadSession => {
                f.write_str("config state needs a non-zero session and sequence; start the sequence at 1")
            }
            EncodeError::ZeroNonce => {
                f.write_str("all-zero nonce; draw the server nonce from the random source")
            }
            EncodeError::BadBundleLength { len } => write!(
                f,
                "firmware bundle of {len} bytes cannot be sent (1..={MAX_BUNDLE_LEN}); check the bundle file"
            ),
            EncodeError::BadFirmwareVersion => f.write_str(
                "firmware version must be 1..=32 bytes of printable ASCII without spaces; check how the version string is built",
            ),
        }
    }
}

/// A box's config state, sent to its partner every 500 ms over UDP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateRepr {
    pub pair_id: u64,
    /// Random per boot of the sender, never 0.
    pub session: u64,
    /// 1, 2, ... within the session.
    pub sequence: u64,
    pub role: Option<PairRole>,
    /// The sender's running config generation.
    pub generation: u64,
    /// The sender's running config digest.
    pub digest: u64,
    /// What the sender concluded about the receiver's config.
    pub relation: Relation,
    /// Newest config blob format the sender reads.
    pub blob_format: u16,
    /// Push channel version the sender speaks ([`CHANNEL_VERSION`]).
    pub channel_version: u8,
    /// The sender's TCP push port (0: it accepts no push).
    pub push_port: u16,
}

/// The push server's first message on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChallengeRepr {
    pub pair_id: u64,
    /// Random per connection, never all zero; the PUSH and the RESULT echo it.
    pub nonce: Nonce,
    pub role: Option<PairRole>,
    pub generation: u64,
    pub digest: u64,
    pub channel_version: u8,
    /// Newest config blob format the server reads.
    pub blob_format: u16,
}

/// A config blob pushed to the partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushRepr<'a> {
    pub pair_id: u64,
    /// The nonce of the server's CHALLENGE on this connection.
    pub nonce: Nonce,
    pub role: Option<PairRole>,
    /// `pair push`: overwrite a partner whose config diverged.
    pub force: bool,
    /// A request for the server's config (`pair adopt-peer`, `compare peer`): no blob.
    pub pull: bool,
    /// The config blob, 1..=[`MAX_BLOB_LEN`] bytes (none when `pull`).
    pub blob: &'a [u8],
}

/// The push server's answer to a PUSH.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResultRepr<'a> {
    pub pair_id: u64,
    /// The nonce of the server's CHALLENGE on this connection.
    pub nonce: Nonce,
    pub outcome: Outcome,
    /// The server's generation after the push.
    pub generation: u64,
    /// The server's digest after the push.
    pub digest: u64,
    /// What the client shows the operator: at most [`MAX_TEXT_LEN`] bytes, no control
    /// characters but newline and tab.
    pub message: &'a str,
}

/// A box's firmware, sent with each STATE to a partner of channel 4 or newer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirmwareRepr<'a> {
    pub pair_id: u64,
    /// The sender's STATE session (random per boot, never 0).
    pub session: u64,
    /// From the same counter as the STATE's sequence (one replay window covers both).
    pub sequence: u64,
    pub role: Option<PairRole>,
    /// The running firmware's version (`0.2.0`, maybe with a suffix): see
    /// [`version_is_valid`].
    pub version: &'a str,
    /// The slot it booted from, None when it is not a slot image (a `-kernel` boot, a host).
    pub slot: Option<RunningSlot>,
}

/// A signed firmware bundle sent to the partner for its other slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BundleRepr<'a> {
    pub pair_id: u64,
    /// The nonce of the server's CHALLENGE on this connection.
    pub nonce: Nonce,
    pub role: Option<PairRole>,
    /// Reboot into the installed slot after answering.
    pub reboot: bool,
    /// The bundle, 1..=[`MAX_BUNDLE_LEN`] bytes (checked by the receiver, opaque here).
    pub bundle: &'a [u8],
}

/// One replication message of any kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message<'a> {
    State(StateRepr),
    Challenge(ChallengeRepr),
    Push(PushRepr<'a>),
    Result(ResultRepr<'a>),
    Firmware(FirmwareRepr<'a>),
    Bundle(BundleRepr<'a>),
}

/// A zero-copy view of one replication message.
#[derive(Debug, Clone)]
pub struct ReplicationPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> ReplicationPacket<T> {
    /// Wraps `buffer` without checks (accessors of a short buffer read zeros, never panic).
    pub const fn new_unchecked(buffer: T) -> ReplicationPacket<T> {
        ReplicationPacket { buffer }
    }

    /// Wraps `buffer` after checking its whole structure (not its authentication: see
    /// [`ReplicationPacket::authenticate`]).
    pub fn new_checked(buffer: T) -> Result<ReplicationPacket<T>, DecodeError> {
        read(buffer.as_ref())?;
        Ok(ReplicationPacket { buffer })
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    pub fn version(&self) -> u8 {
        byte(self.buffer.as_ref(), field::VERSION)
    }

    /// The kind byte (see [`Kind::from_byte`]).
    pub fn kind(&self) -> u8 {
        byte(self.buffer.as_ref(), field::KIND)
    }

    pub fn flags(&self) -> u8 {
        byte(self.buffer.as_ref(), field::FLAGS)
    }

    /// True when the message ends in a MAC.
    pub fn is_keyed(&self) -> bool {
        self.flags() & FLAG_KEYED != 0
    }

    pub fn pair_id(&self) -> u64 {
        be_u64(self.buffer.as_ref(), field::PAIR_ID)
    }

    /// Checks the pair id and the MAC as `policy` demands.
    pub fn authenticate(
        &self,
        expected_pair_id: u64,
        policy: KeyPolicy<'_>,
    ) -> Result<(), DecodeError> {
        authenticate(self.buffer.as_ref(), expected_pair_id, policy)
    }
}

impl<'a> Message<'a> {
    /// Reads the message `packet` holds, checking its structure (not its authentication).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &ReplicationPacket<&'a T>,
    ) -> Result<Message<'a>, DecodeError> {
        read(T::as_ref(packet.buffer))
    }

    pub const fn kind(&self) -> Kind {
        match self {
            Message::State(_) => Kind::State,
            Message::Challenge(_) => Kind::Challenge,
            Message::Push(_) => Kind::Push,
            Message::Result(_) => Kind::Result,
            Message::Firmware(_) => Kind::Firmware,
            Message::Bundle(_) => Kind::Bundle,
        }
    }

    pub const fn pair_id(&self) -> u64 {
        match self {
            Message::State(repr) => repr.pair_id,
            Message::Challenge(repr) => repr.pair_id,
            Message::Push(repr) => repr.pair_id,
            Message::Result(repr) => repr.pair_id,
            Message::Firmware(repr) => repr.pair_id,
            Message::Bundle(repr) => repr.pair_id,
        }
    }

    /// Bytes the message takes (without a frame prefix).
    pub fn buffer_len(&self, keyed: bool) -> usize {
        match self {
            Message::State(repr) => repr.buffer_len(keyed),
            Message::Challenge(repr) => repr.buffer_len(keyed),
            Message::Push(repr) => repr.buffer_len(keyed),
            Message::Result(repr) => repr.buffer_len(keyed),
            Message::Firmware(repr) => repr.buffer_len(keyed),
            Message::Bundle(repr) => repr.buffer_len(keyed),
        }
    }

    /// Writes the message (with a MAC when `key` is given) and returns its length.
    pub fn emit(&self, buffer: &mut [u8], key: Option<&PairKey>) -> Result<usize, EncodeError> {
        match self {
            Message::State(repr) => repr.emit(buffer, key),
            Message::Challenge(repr) => repr.emit(buffer, key),
            Message::Push(repr) => repr.emit(buffer, key),
            Message::Result(repr) => repr.emit(buffer, key),
            Message::Firmware(repr) => repr.emit(buffer, key),
            Message::Bundle(repr) => repr.emit(buffer, key),
        }
    }

    /// Bytes the message takes in a TCP frame (prefix included).
    pub fn framed_len(&self, keyed: bool) -> usize {
        FRAME_PREFIX_LEN + self.buffer_len(keyed)
    }

    /// Writes the message as a TCP frame (length prefix, then the message) and returns the
    /// frame's length.
    pub fn emit_frame(
        &self,
        buffer: &mut [u8],
        key: Option<&PairKey>,
    ) -> Result<usize, EncodeError> {
        let needed = self.framed_len(key.is_some());
        let len = buffer.len();
        let out = buffer
            .get_mut(..needed)
            .ok_or(EncodeError::BufferTooSmall { needed, len })?;
        let (prefix, message) = out.split_at_mut(FRAME_PREFIX_LEN);
        let written = self.emit(message, key)?;
        // Every message is at most MAX_FRAME_LEN bytes, which fits a u32 (asserted above).
        let length =
            u32::try_from(written).map_err(|_| EncodeError::BadBlobLength { len: written })?;
        prefix.copy_from_slice(&length.to_be_bytes());
        Ok(FRAME_PREFIX_LEN + written)
    }
}

macro_rules! kind_parse {
    ($variant:ident, $repr:ty $(, $lt:lifetime)?) => {
        /// Reads a message of this kind from `packet`, checking its structure (not its
        /// authentication); a valid message of another kind is
        /// [`DecodeError::UnexpectedKind`].
        pub fn parse<$($lt,)? T: AsRef<[u8]> + ?Sized>(
            packet: &ReplicationPacket<&$($lt)? T>,
        ) -> Result<$repr, DecodeError> {
            match Message::parse(packet)? {
                Message::$variant(repr) => Ok(repr),
                other => Err(DecodeError::UnexpectedKind {
                    expected: Kind::$variant,
                    found: other.kind(),
                }),
            }
        }
    };
}

impl StateRepr {
    kind_parse!(State, StateRepr);

    /// Bytes the message takes.
    pub const fn buffer_len(&self, keyed: bool) -> usize {
        STATE_LEN + tag_len(keyed)
    }

    /// Writes the message (with a MAC when `key` is given) and returns its length.
    pub fn emit(&self, buffer: &mut [u8], key: Option<&PairKey>) -> Result<usize, EncodeError> {
        use field::state as f;
        if self.session == 0 || self.sequence == 0 {
            return Err(EncodeError::BadSession);
        }
        let needed = self.buffer_len(key.is_some());
        let out = start(buffer, needed, Kind::State, keyed_flag(key), self.pair_id)?;
        out[f::SESSION].copy_from_slice(&self.session.to_be_bytes());
        out[f::SEQUENCE].copy_from_slice(&self.sequence.to_be_bytes());
        out[f::GENERATION].copy_from_slice(&self.generation.to_be_bytes());
        out[f::DIGEST].copy_from_slice(&self.digest.to_be_bytes());
        out[f::ROLE] = role_to_byte(self.role);
        out[f::RELATION] = self.relation.to_byte();
        out[f::CHANNEL_VERSION] = self.channel_version;
        out[f::BLOB_FORMAT].copy_from_slice(&self.blob_format.to_be_bytes());
        out[f::PUSH_PORT].copy_from_slice(&self.push_port.to_be_bytes());
        Ok(seal(out, key))
    }
}

impl ChallengeRepr {
    kind_parse!(Challenge, ChallengeRepr);

    /// Bytes the message takes.
    pub const fn buffer_len(&self, keyed: bool) -> usize {
        CHALLENGE_LEN + tag_len(keyed)
    }

    /// Writes the message (with a MAC when `key` is given) and returns its length.
    pub fn emit(&self, buffer: &mut [u8], key: Option<&PairKey>) -> Result<usize, EncodeError> {
        use field::challenge as f;
        if self.nonce == [0; NONCE_LEN] {
            return Err(EncodeError::ZeroNonce);
        }
        let needed = self.buffer_len(key.is_some());
        let out = start(
            buffer,
            needed,
            Kind::Challenge,
            keyed_flag(key),
            self.pair_id,
        )?;
        out[f::NONCE].copy_from_slice(&self.nonce);
        out[f::GENERATION].copy_from_slice(&self.generation.to_be_bytes());
        out[f::DIGEST].copy_from_slice(&self.digest.to_be_bytes());
        out[f::ROLE] = role_to_byte(self.role);
        out[f::CHANNEL_VERSION] = self.channel_version;
        out[f::BLOB_FORMAT].copy_from_slice(&self.blob_format.to_be_bytes());
        Ok(seal(out, key))
    }
}

impl PushRepr<'_> {
    kind_parse!(Push, PushRepr<'p>, 'p);

    /// Bytes the message takes.
    pub const fn buffer_len(&self, keyed: bool) -> usize {
        PUSH_HEADER_LEN + self.blob.len() + tag_len(keyed)
    }

    /// Writes the message (with a MAC when `key` is given) and returns its length.
    pub fn emit(&self, buffer: &mut [u8], key: Option<&PairKey>) -> Result<usize, EncodeError> {
        use field::push as f;
        let blob_len = self.blob.len();
        let wire_len = u32::try_from(blob_len)
            .ok()
            .filter(|_| blob_length_fits(blob_len, self.pull))
            .ok_or(EncodeError::BadBlobLength { len: blob_len })?;
        if self.nonce == [0; NONCE_LEN] {
            return Err(EncodeError::ZeroNonce);
        }
        let mut flags = keyed_flag(key);
        if self.force {
            flags |= FLAG_FORCE;
        }
        if self.pull {
            flags |= FLAG_PULL;
        }
        let needed = self.buffer_len(key.is_some());
        let out = start(buffer, needed, Kind::Push, flags, self.pair_id)?;
        out[f::NONCE].copy_from_slice(&self.nonce);
        out[f::ROLE] = role_to_byte(self.role);
        out[f::BLOB_LEN].copy_from_slice(&wire_len.to_be_bytes());
        out[f::BLOB..f::BLOB + blob_len].copy_from_slice(self.blob);
        Ok(seal(out, key))
    }
}

impl ResultRepr<'_> {
    kind_parse!(Result, ResultRepr<'p>, 'p);

    /// Bytes the message takes.
    pub const fn buffer_len(&self, keyed: bool) -> usize {
        RESULT_HEADER_LEN + self.message.len() + tag_len(keyed)
    }

    /// Writes the message (with a MAC when `key` is given) and returns its length.
    pub fn emit(&self, buffer: &mut [u8], key: Option<&PairKey>) -> Result<usize, EncodeError> {
        use field::result as f;
        let text = self.message.as_bytes();
        let text_len = text.len();
        let wire_len = u16::try_from(text_len)
            .ok()
            .filter(|_| text_len <= MAX_TEXT_LEN)
            .ok_or(EncodeError::TextTooLong { len: text_len })?;
        if !text_is_printable(self.message) {
            return Err(EncodeError::BadText);
        }
        if self.nonce == [0; NONCE_LEN] {
            return Err(EncodeError::ZeroNonce);
        }
        let needed = self.buffer_len(key.is_some());
        let out = start(buffer, needed, Kind::Result, keyed_flag(key), self.pair_id)?;
        out[f::NONCE].copy_from_slice(&self.nonce);
        out[f::GENERATION].copy_from_slice(&self.generation.to_be_bytes());
        out[f::DIGEST].copy_from_slice(&self.digest.to_be_bytes());
        out[f::OUTCOME] = self.outcome.to_byte();
        out[f::TEXT_LEN].copy_from_slice(&wire_len.to_be_bytes());
        out[f::TEXT..f::TEXT + text_len].copy_from_slice(text);
        Ok(seal(out, key))
    }
}

impl FirmwareRepr<'_> {
    kind_parse!(Firmware, FirmwareRepr<'p>, 'p);

    /// Bytes the message takes.
    pub const fn buffer_len(&self, keyed: bool) -> usize {
        FIRMWARE_LEN + tag_len(keyed)
    }

    /// Writes the message (with a MAC when `key` is given) and returns its length.
    pub fn emit(&self, buffer: &mut [u8], key: Option<&PairKey>) -> Result<usize, EncodeError> {
        use field::firmware as f;
        if self.session == 0 || self.sequence == 0 {
            return Err(EncodeError::BadSession);
        }
        let version = self.version.as_bytes();
        let version_len = u8::try_from(version.len())
            .ok()
            .filter(|_| version_is_valid(self.version))
            .ok_or(EncodeError::BadFirmwareVersion)?;
        let needed = self.buffer_len(key.is_some());
        let out = start(
            buffer,
            needed,
            Kind::Firmware,
            keyed_flag(key),
            self.pair_id,
        )?;
        out[f::SESSION].copy_from_slice(&self.session.to_be_bytes());
        out[f::SEQUENCE].copy_from_slice(&self.sequence.to_be_bytes());
        out[f::ROLE] = role_to_byte(self.role);
        let (slot, state) = slot_to_bytes(self.slot);
        out[f::SLOT] = slot;
        out[f::SLOT_STATE] = state;
        out[f::VERSION_LEN] = version_len;
        out[f::VERSION.start..f::VERSION.start + version.len()].copy_from_slice(version);
        Ok(seal(out, key))
    }
}

impl BundleRepr<'_> {
    kind_parse!(Bundle, BundleRepr<'p>, 'p);

    /// Bytes the message takes.
    pub const fn buffer_len(&self, keyed: bool) -> usize {
        BUNDLE_HEADER_LEN + self.bundle.len() + tag_len(keyed)
    }

    /// Writes the message (with a MAC when `key` is given) and returns its length.
    pub fn emit(&self, buffer: &mut [u8], key: Option<&PairKey>) -> Result<usize, EncodeError> {
        use field::bundle as f;
        let bundle_len = self.bundle.len();
        let wire_len = u32::try_from(bundle_len)
            .ok()
            .filter(|_| (1..=MAX_BUNDLE_LEN).contains(&bundle_len))
            .ok_or(EncodeError::BadBundleLength { len: bundle_len })?;
        if self.nonce == [0; NONCE_LEN] {
            return Err(EncodeError::ZeroNonce);
        }
        let mut flags = keyed_flag(key);
        if self.reboot {
            flags |= FLAG_REBOOT;
        }
        let needed = self.buffer_len(key.is_some());
        let out = start(buffer, needed, Kind::Bundle, flags, self.pair_id)?;
        out[f::NONCE].copy_from_slice(&self.nonce);
        out[f::ROLE] = role_to_byte(self.role);
        out[f::BUNDLE_LEN].copy_from_slice(&wire_len.to_be_bytes());
        out[f::BUNDLE..f::BUNDLE + bundle_len].copy_from_slice(self.bundle);
        Ok(seal(out, key))
    }
}

/// A pull carries no blob; a push carries 1..=[`MAX_BLOB_LEN`] bytes.
const fn blob_length_fits(len: usize, pull: bool) -> bool {
    if pull {
        len == 0
    } else {
        len >= 1 && len <= MAX_BLOB_LEN
    }
}

/// Checks structure and then authentication of one received message of any kind.
pub fn decode<'a>(
    bytes: &'a [u8],
    expected_pair_id: u64,
    policy: KeyPolicy<'_>,
) -> Result<Message<'a>, DecodeError> {
    let message = read(bytes)?;
    authenticate(bytes, expected_pair_id, policy)?;
    Ok(message)
}

/// The message length a TCP frame's prefix announces, refused unless some message can be that
/// long: call it before reading or allocating anything for the message.
pub fn frame_len(prefix: [u8; FRAME_PREFIX_LEN]) -> Result<usize, DecodeError> {
    bounded_frame_len(prefix, HEADER_LEN, MAX_FRAME_LEN)
}

/// Like [`frame_len`] for a reader that expects one `kind` next (a client waiting for a
/// CHALLENGE or a RESULT never reads more than a few hundred bytes).
pub fn frame_len_of(prefix: [u8; FRAME_PREFIX_LEN], kind: Kind) -> Result<usize, DecodeError> {
    bounded_frame_len(prefix, kind.min_len(), kind.max_len())
}

/// `text` cut to at most [`MAX_TEXT_LEN`] bytes on a character boundary.
pub fn clip_text(text: &str) -> &str {
    if text.len() <= MAX_TEXT_LEN {
        return text;
    }
    let mut end = MAX_TEXT_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or("")
}

fn bounded_frame_len(
    prefix: [u8; FRAME_PREFIX_LEN],
    min: usize,
    max: usize,
) -> Result<usize, DecodeError> {
    let len = u32::from_be_bytes(prefix);
    usize::try_from(len)
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or(DecodeError::BadFrameLength { len })
}

fn byte(bytes: &[u8], at: usize) -> u8 {
    bytes.get(at).copied().unwrap_or(0)
}

fn nonce(bytes: &[u8], range: core::ops::Range<usize>) -> Result<Nonce, DecodeError> {
    let nonce = bytes
        .get(range)
        .and_then(|b| Nonce::try_from(b).ok())
        .unwrap_or([0; NONCE_LEN]);
    if nonce == [0; NONCE_LEN] {
        return Err(DecodeError::ZeroNonce);
    }
    Ok(nonce)
}

const fn tag_len(keyed: bool) -> usize {
    if keyed {
        MAC_LEN
    } else {
        0
    }
}

const fn keyed_flag(key: Option<&PairKey>) -> u8 {
    if key.is_some() {
        FLAG_KEYED
    } else {
        0
    }
}

fn text_is_printable(text: &str) -> bool {
    !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
}

/// Checks the structure of `bytes` and reads the message (authentication is separate).
fn read(bytes: &[u8]) -> Result<Message<'_>, DecodeError> {
    let len = bytes.len();
    if !(HEADER_LEN..=MAX_FRAME_LEN).contains(&len) {
        return Err(DecodeError::BadLength { len });
    }
    if bytes.get(field::MAGIC) != Some(&MAGIC[..]) {
        return Err(DecodeError::BadMagic);
    }
    let version = byte(bytes, field::VERSION);
    if version != VERSION {
        return Err(DecodeError::UnsupportedVersion { version });
    }
    let kind_byte = byte(bytes, field::KIND);
    let kind = Kind::from_byte(kind_byte).ok_or(DecodeError::UnknownKind { kind: kind_byte })?;
    let flags = byte(bytes, field::FLAGS);
    let known = match kind {
        Kind::Push => FLAG_KEYED | FLAG_FORCE | FLAG_PULL,
        Kind::Bundle => FLAG_KEYED | FLAG_REBOOT,
        _ => FLAG_KEYED,
    };
    let reserved_clear = byte(bytes, field::RESERVED) == 0
        && match kind {
            Kind::State => byte(bytes, field::state::RESERVED) == 0,
            Kind::Push => bytes
                .get(field::push::RESERVED)
                .is_none_or(|reserved| reserved.iter().all(|b| *b == 0)),
            Kind::Result => byte(bytes, field::result::RESERVED) == 0,
            Kind::Bundle => bytes
                .get(field::bundle::RESERVED)
                .is_none_or(|reserved| reserved.iter().all(|b| *b == 0)),
            Kind::Challenge | Kind::Firmware => true,
        };
    if flags & !known != 0 || !reserved_clear {
        // Reserved bytes past the end read as zero; a truncated message is refused below.
        return Err(DecodeError::UnknownFlags { flags });
    }
    let fixed = kind.fixed_len() + tag_len(flags & FLAG_KEYED != 0);
    if len < fixed {
        return Err(DecodeError::Truncated { len, needed: fixed });
    }
    let exact = |expected: usize| {
        if len == expected {
            Ok(())
        } else {
            Err(DecodeError::LengthMismatch { len, expected })
        }
    };
    let pair_id = be_u64(bytes, field::PAIR_ID);
    match kind {
        Kind::State => {
            use field::state as f;
            exact(fixed)?;
            let role = role_from_byte(byte(bytes, f::ROLE))?;
            let relation = Relation::from_byte(byte(bytes, f::RELATION))?;
            let (session, sequence) = (be_u64(bytes, f::SESSION), be_u64(bytes, f::SEQUENCE));
            if session == 0 || sequence == 0 {
                return Err(DecodeError::BadSession);
            }
            Ok(Message::State(StateRepr {
                pair_id,
                session,
                sequence,
                role,
                generation: be_u64(bytes, f::GENERATION),
                digest: be_u64(bytes, f::DIGEST),
                relation,
                blob_format: be_u16(bytes, f::BLOB_FORMAT),
                channel_version: byte(bytes, f::CHANNEL_VERSION),
                push_port: be_u16(bytes, f::PUSH_PORT),
            }))
        }
        Kind::Challenge => {
            use field::challenge as f;
            exact(fixed)?;
            let role = role_from_byte(byte(bytes, f::ROLE))?;
            Ok(Message::Challenge(ChallengeRepr {
                pair_id,
                nonce: nonce(bytes, f::NONCE)?,
                role,
                generation: be_u64(bytes, f::GENERATION),
                digest: be_u64(bytes, f::DIGEST),
                channel_version: byte(bytes, f::CHANNEL_VERSION),
                blob_format: be_u16(bytes, f::BLOB_FORMAT),
            }))
        }
        Kind::Push => {
            use field::push as f;
            let wire_len = be_u32(bytes, f::BLOB_LEN);
            let pull = flags & FLAG_PULL != 0;
            let blob_len = usize::try_from(wire_len)
                .ok()
                .filter(|n| blob_length_fits(*n, pull))
                .ok_or(DecodeError::BadBlobLength { len: wire_len })?;
            exact(fixed + blob_len)?;
            let blob =
                bytes
                    .get(f::BLOB..f::BLOB + blob_len)
                    .ok_or(DecodeError::LengthMismatch {
                        len,
                        expected: fixed + blob_len,
                    })?;
            let role = role_from_byte(byte(bytes, f::ROLE))?;
            Ok(Message::Push(PushRepr {
                pair_id,
                nonce: nonce(bytes, f::NONCE)?,
                role,
                force: flags & FLAG_FORCE != 0,
                pull,
                blob,
            }))
        }
        Kind::Result => {
            use field::result as f;
            let wire_len = be_u16(bytes, f::TEXT_LEN);
            let text_len = usize::from(wire_len);
            if text_len > MAX_TEXT_LEN {
                return Err(DecodeError::BadTextLength { len: wire_len });
            }
            exact(fixed + text_len)?;
            let outcome = Outcome::from_byte(byte(bytes, f::OUTCOME))?;
            let message = bytes
                .get(f::TEXT..f::TEXT + text_len)
                .and_then(|text| core::str::from_utf8(text).ok())
                .filter(|text| text_is_printable(text))
                .ok_or(DecodeError::BadText)?;
            Ok(Message::Result(ResultRepr {
                pair_id,
                nonce: nonce(bytes, f::NONCE)?,
                outcome,
                generation: be_u64(bytes, f::GENERATION),
                digest: be_u64(bytes, f::DIGEST),
                message,
            }))
        }
        Kind::Firmware => {
            use field::firmware as f;
            exact(fixed)?;
            let role = role_from_byte(byte(bytes, f::ROLE))?;
            let slot = slot_from_bytes(byte(bytes, f::SLOT), byte(bytes, f::SLOT_STATE))?;
            let (session, sequence) = (be_u64(bytes, f::SESSION), be_u64(bytes, f::SEQUENCE));
            if session == 0 || sequence == 0 {
                return Err(DecodeError::BadSession);
            }
            let version_len = usize::from(byte(bytes, f::VERSION_LEN));
            let field = bytes.get(f::VERSION).unwrap_or(&[]);
            let (text, padding) = field.split_at(version_len.min(field.len()));
            let version = core::str::from_utf8(text)
                .ok()
                .filter(|v| version_is_valid(v) && padding.iter().all(|b| *b == 0))
                .ok_or(DecodeError::BadFirmwareVersion)?;
            Ok(Message::Firmware(FirmwareRepr {
                pair_id,
                session,
                sequence,
                role,
                version,
                slot,
            }))
        }
        Kind::Bundle => {
            use field::bundle as f;
            let wire_len = be_u32(bytes, f::BUNDLE_LEN);
            let bundle_len = usize::try_from(wire_len)
                .ok()
                .filter(|n| (1..=MAX_BUNDLE_LEN).contains(n))
                .ok_or(DecodeError::BadBundleLength { len: wire_len })?;
            exact(fixed + bundle_len)?;
            let bundle = bytes.get(f::BUNDLE..f::BUNDLE + bundle_len).ok_or(
                DecodeError::LengthMismatch {
                    len,
                    expected: fixed + bundle_len,
                },
            )?;
            let role = role_from_byte(byte(bytes, f::ROLE))?;
            Ok(Message::Bundle(BundleRepr {
                pair_id,
                nonce: nonce(bytes, f::NONCE)?,
                role,
                reboot: flags & FLAG_REBOOT != 0,
                bundle,
            }))
        }
    }
}

fn authenticate(
    bytes: &[u8],
    expected_pair_id: u64,
    policy: KeyPolicy<'_>,
) -> Result<(), DecodeError> {
    let keyed = byte(bytes, field::FLAGS) & FLAG_KEYED != 0;
    keyed::authenticate(
        bytes,
        keyed,
        be_u64(bytes, field::PAIR_ID),
        expected_pair_id,
        policy,
    )
    .map_err(|failure| match failure {
        AuthFailure::WrongPair { pair_id } => DecodeError::WrongPair { pair_id },
        AuthFailure::MissingMac => DecodeError::MissingMac,
        AuthFailure::UnexpectedMac => DecodeError::UnexpectedMac,
        AuthFailure::BadMac => DecodeError::BadMac,
    })
}

/// Takes the first `needed` bytes of `buffer`, zeroed, and writes the common header.
fn start(
    buffer: &mut [u8],
    needed: usize,
    kind: Kind,
    flags: u8,
    pair_id: u64,
) -> Result<&mut [u8], EncodeError> {
    let len = buffer.len();
    let out = buffer
        .get_mut(..needed)
        .ok_or(EncodeError::BufferTooSmall { needed, len })?;
    out.fill(0);
    out[field::MAGIC].copy_from_slice(&MAGIC);
    out[field::VERSION] = VERSION;
    out[field::KIND] = kind.to_byte();
    out[field::FLAGS] = flags;
    out[field::PAIR_ID].copy_from_slice(&pair_id.to_be_bytes());
    Ok(out)
}

/// Writes the tag into the last [`MAC_LEN`] bytes of `out` when keyed; returns the length.
fn seal(out: &mut [u8], key: Option<&PairKey>) -> usize {
    let len = out.len();
    if let Some(key) = key {
        let (signed, tag) = out.split_at_mut(len.saturating_sub(MAC_LEN));
        tag.copy_from_slice(&keyed::tag(key, signed));
    }
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec;
    use std::vec::Vec;

    const KEY: PairKey = [7; 32];
    const PAIR: u64 = 0x0123_4567_89ab_cdef;
    const NONCE: Nonce = [
        0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e,
        0x1f,
    ];
    const BLOB: &[u8] = b"TDCF blob bytes, opaque to this codec";

    fn state() -> StateRepr {
        StateRepr {
            pair_id: PAIR,
            session: 0x1122_3344_5566_7788,
            sequence: 5,
            role: Some(PairRole::A),
            generation: 7,
            digest: 0xdead_beef_0000_0001,
            relation: Relation::ReceiverBehind,
            blob_format: 3,
            channel_version: CHANNEL_VERSION,
            push_port: 7001,
        }
    }

    fn challenge() -> ChallengeRepr {
        ChallengeRepr {
            pair_id: PAIR,
            nonce: NONCE,
            role: Some(PairRole::B),
            generation: 6,
            digest: 0x0102_0304_0506_0708,
            channel_version: CHANNEL_VERSION,
            blob_format: 3,
        }
    }

    fn push() -> PushRepr<'static> {
        PushRepr {
            pair_id: PAIR,
            nonce: NONCE,
            role: Some(PairRole::A),
            force: true,
            pull: false,
            blob: BLOB,
        }
    }

    fn result() -> ResultRepr<'static> {
        ResultRepr {
            pair_id: PAIR,
            nonce: NONCE,
            outcome: Outcome::Diverged,
            generation: 6,
            digest: 0x0102_0304_0506_0708,
            message: "refused: b's config diverged\n\tuse `pair push` to overwrite — ü",
        }
    }

    fn firmware() -> FirmwareRepr<'static> {
        FirmwareRepr {
            pair_id: PAIR,
            session: 0x1122_3344_5566_7788,
            sequence: 6,
            role: Some(PairRole::B),
            version: "0.2.0-rc1+g1234567",
            slot: Some(RunningSlot {
                slot: SlotName::B,
                blessed: false,
            }),
        }
    }

    const BUNDLE: &[u8] = b"TANDEMFW bundle bytes, opaque to this codec";

    fn bundle() -> BundleRepr<'static> {
        BundleRepr {
            pair_id: PAIR,
            nonce: NONCE,
            role: Some(PairRole::A),
            reboot: true,
            bundle: BUNDLE,
        }
    }

    fn samples() -> [Message<'static>; 11] {
        let unforced = PushRepr {
            force: false,
            role: None,
            ..push()
        };
        let pull = PushRepr {
            force: false,
            pull: true,
            blob: &[],
            ..push()
        };
        let empty = ResultRepr {
            outcome: Outcome::Applied,
            message: "",
            ..result()
        };
        [
            Message::State(state()),
            Message::Challenge(challenge()),
            Message::Push(push()),
            Message::Push(unforced),
            Message::Push(pull),
            Message::Result(result()),
            Message::Result(empty),
            Message::Firmware(firmware()),
            Message::Firmware(FirmwareRepr {
                version: "12345678901234567890123456789012",
                slot: None,
                ..firmware()
            }),
            Message::Bundle(bundle()),
            Message::Bundle(BundleRepr {
                reboot: false,
                bundle: &[0xa5],
                ..bundle()
            }),
        ]
    }

    fn policy(key: Option<&PairKey>) -> KeyPolicy<'_> {
        key.map_or(KeyPolicy::Unkeyed, KeyPolicy::Require)
    }

    fn encode(message: &Message<'_>, key: Option<&PairKey>) -> Vec<u8> {
        let mut buffer = vec![0u8; message.buffer_len(key.is_some())];
        let len = message.emit(&mut buffer, key).unwrap();
        assert_eq!(len, buffer.len());
        buffer
    }

    #[test]
    fn every_kind_round_trips_keyed_and_unkeyed() {
        for message in samples() {
            for key in [None, Some(&KEY)] {
                let bytes = encode(&message, key);
                assert_eq!(decode(&bytes, PAIR, policy(key)).unwrap(), message);
                let packet = ReplicationPacket::new_checked(&bytes[..]).unwrap();
                assert_eq!(Message::parse(&packet).unwrap(), message);
                assert_eq!(packet.kind(), message.kind().to_byte());
                assert_eq!(packet.is_keyed(), key.is_some());
                assert_eq!(packet.pair_id(), PAIR);
                packet.authenticate(PAIR, policy(key)).unwrap();
                // The same message framed for TCP.
                let mut frame = vec![0u8; message.framed_len(key.is_some())];
                let framed = message.emit_frame(&mut frame, key).unwrap();
                assert_eq!(framed, frame.len());
                let prefix: [u8; 4] = frame[..4].try_into().unwrap();
                assert_eq!(frame_len(prefix).unwrap(), bytes.len());
                assert_eq!(frame_len_of(prefix, message.kind()).unwrap(), bytes.len());
                assert_eq!(&frame[4..], &bytes[..]);
            }
        }
    }

    #[test]
    fn kind_parsers_take_their_kind_only() {
        let bytes = encode(&Message::State(state()), None);
        let packet = ReplicationPacket::new_unchecked(&bytes[..]);
        assert_eq!(StateRepr::parse(&packet).unwrap(), state());
        assert_eq!(
            PushRepr::parse(&packet).unwrap_err(),
            DecodeError::UnexpectedKind {
                expected: Kind::Push,
                found: Kind::State
            }
        );
        let bytes = encode(&Message::Result(result()), Some(&KEY));
        let packet = ReplicationPacket::new_unchecked(&bytes[..]);
        assert_eq!(ResultRepr::parse(&packet).unwrap(), result());
        assert!(ChallengeRepr::parse(&packet).is_err());
        let bytes = encode(&Message::Challenge(challenge()), None);
        let packet = ReplicationPacket::new_unchecked(&bytes[..]);
        assert_eq!(ChallengeRepr::parse(&packet).unwrap(), challenge());
        let bytes = encode(&Message::Push(push()), None);
        let packet = ReplicationPacket::new_unchecked(&bytes[..]);
        assert_eq!(PushRepr::parse(&packet).unwrap(), push());
    }

    #[test]
    fn firmware_and_bundle_layouts_are_fixed() {
        let bytes = encode(&Message::Firmware(firmware()), None);
        assert_eq!(bytes.len(), FIRMWARE_LEN);
        assert_eq!(
            &bytes[..8],
            &[b'T', b'D', b'R', b'P', 1, KIND_FIRMWARE, 0, 0]
        );
        assert_eq!(&bytes[24..32], &[0, 0, 0, 0, 0, 0, 0, 6]);
        // role b, slot b, on trial, 18 bytes of version
        assert_eq!(&bytes[32..36], &[2, 2, 2, 18]);
        assert_eq!(&bytes[36..54], b"0.2.0-rc1+g1234567");
        assert!(bytes[54..].iter().all(|b| *b == 0));
        let bytes = encode(&Message::Bundle(bundle()), Some(&KEY));
        assert_eq!(
            &bytes[..8],
            &[
                b'T',
                b'D',
                b'R',
                b'P',
                1,
                KIND_BUNDLE,
                FLAG_KEYED | FLAG_REBOOT,
                0
            ]
        );
        assert_eq!(&bytes[16..32], &NONCE);
        assert_eq!(&bytes[32..40], &[1, 0, 0, 0, 0, 0, 0, 43]);
        assert_eq!(&bytes[40..83], BUNDLE);
        assert_eq!(&bytes[83..], &keyed::tag(&KEY, &bytes[..83]));
    }

    #[test]
    fn firmware_and_bundle_damage_is_refused_with_its_reason() {
        let fw = encode(&Message::Firmware(firmware()), None);
        assert_eq!(
            patched(&fw, 33, 3),
            DecodeError::UnknownSlot { slot: 3, state: 2 }
        );
        assert_eq!(
            patched(&fw, 34, 0),
            DecodeError::UnknownSlot { slot: 2, state: 0 }
        );
        assert_eq!(
            patched(&fw, 33, 0),
            DecodeError::UnknownSlot { slot: 0, state: 2 }
        );
        assert_eq!(patched(&fw, 35, 0), DecodeError::BadFirmwareVersion);
        assert_eq!(patched(&fw, 35, 33), DecodeError::BadFirmwareVersion);
        // A shorter length leaves version bytes in the padding.
        assert_eq!(patched(&fw, 35, 17), DecodeError::BadFirmwareVersion);
        assert_eq!(patched(&fw, 36, b' '), DecodeError::BadFirmwareVersion);
        assert_eq!(patched(&fw, 36, 0xc3), DecodeError::BadFirmwareVersion);
        assert_eq!(patched(&fw, 60, b'x'), DecodeError::BadFirmwareVersion);
        assert_eq!(patched(&fw, 31, 0), DecodeError::BadSession);
        assert_eq!(patched(&fw, 32, 3), DecodeError::UnknownRole { role: 3 });
        assert_eq!(
            patched(&fw, 6, FLAG_REBOOT),
            DecodeError::UnknownFlags { flags: FLAG_REBOOT }
        );
        let mut long = fw.clone();
        long.push(0);
        assert_eq!(
            decode(&long, PAIR, KeyPolicy::Unkeyed).unwrap_err(),
            DecodeError::LengthMismatch {
                len: FIRMWARE_LEN + 1,
                expected: FIRMWARE_LEN
            }
        );
        let bundle = encode(&Message::Bundle(bundle()), None);
        assert_eq!(
            patched(&bundle, 6, FLAG_PULL),
            DecodeError::UnknownFlags { flags: FLAG_PULL }
        );
        assert_eq!(
            patched(&bundle, 34, 1),
            DecodeError::UnknownFlags { flags: FLAG_REBOOT }
        );
        assert_eq!(
            patched(&bundle, 39, 0),
            DecodeError::BadBundleLength { len: 0 }
        );
        assert_eq!(
            patched(&bundle, 36, 0x04),
            DecodeError::BadBundleLength { len: 0x0400_002b }
        );
        assert_eq!(
            patched(&bundle, 39, 44),
            DecodeError::LengthMismatch {
                len: bundle.len(),
                expected: BUNDLE_HEADER_LEN + 44
            }
        );
        let mut zero = bundle.clone();
        zero[16..32].fill(0);
        assert_eq!(
            decode(&zero, PAIR, KeyPolicy::Unkeyed).unwrap_err(),
            DecodeError::ZeroNonce
        );
    }

    #[test]
    fn a_channel_3_partner_is_never_sent_the_channel_4_kinds() {
        // The kinds a channel-3 decoder knows are 1..=4: FIRMWARE and BUNDLE would be counted
        // as bad, so the sender gates them on the partner's channel.
        assert!(!speaks_firmware(3));
        assert!(speaks_firmware(FIRMWARE_CHANNEL_VERSION));
        assert!(speaks_firmware(CHANNEL_VERSION));
        const { assert!(KIND_FIRMWARE > KIND_RESULT && KIND_BUNDLE > KIND_RESULT) };
        // Replication itself works across 3 and 4 (N and N+1), not with 2 or a future 5.
        assert!(replicates_with(3) && replicates_with(4));
        assert!(!replicates_with(2) && !replicates_with(5));
        assert!(channels_work_together(3, 4) && channels_work_together(4, 3));
        assert!(channels_work_together(4, 4) && channels_work_together(4, 5));
        assert!(!channels_work_together(2, 3) && !channels_work_together(3, 5));
    }

    #[test]
    fn emit_refuses_bad_versions_and_bundles() {
        let mut buffer = vec![0u8; 256];
        for version in [
            "",
            "0.2.0 beta",
            "0.2.0\n",
            "ü",
            "123456789012345678901234567890123",
        ] {
            let repr = FirmwareRepr {
                version,
                ..firmware()
            };
            assert_eq!(
                repr.emit(&mut buffer, None),
                Err(EncodeError::BadFirmwareVersion),
                "{version:?}"
            );
        }
        let repr = FirmwareRepr {
            sequence: 0,
            ..firmware()
        };
        assert_eq!(repr.emit(&mut buffer, None), Err(EncodeError::BadSession));
        let empty = BundleRepr {
            bundle: &[],
            ..bundle()
        };
        assert_eq!(
            empty.emit(&mut buffer, None),
            Err(EncodeError::BadBundleLength { len: 0 })
        );
    }

    #[test]
    fn the_layouts_are_fixed() {
        let bytes = encode(&Message::State(state()), None);
        assert_eq!(
            bytes,
            [
                b'T',
                b'D',
                b'R',
                b'P',
                1,
                KIND_STATE,
                0,
                0, // magic, version, kind, flags
                0x01,
                0x23,
                0x45,
                0x67,
                0x89,
                0xab,
                0xcd,
                0xef, // pair id
                0x11,
                0x22,
                0x33,
                0x44,
                0x55,
                0x66,
                0x77,
                0x88, // session
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                5, // sequence
                0,
                0,
                0,
                0,
                0,
                0,
                0,
                7, // generation
                0xde,
                0xad,
                0xbe,
                0xef,
                0,
                0,
                0,
                1, // digest
                1,
                2,
                CHANNEL_VERSION,
                0, // role a, receiver behind, channel, reserved
                0,
                3,
                0x1b,
                0x59, // blob format 3, push port 7001
            ]
        );
        let bytes = encode(&Message::Push(push()), Some(&KEY));
        assert_eq!(
            &bytes[..8],
            &[b'T', b'D', b'R', b'P', 1, KIND_PUSH, 0x03, 0]
        );
        assert_eq!(&bytes[16..32], &NONCE);
        assert_eq!(&bytes[32..40], &[1, 0, 0, 0, 0, 0, 0, 37]);
        assert_eq!(&bytes[40..77], BLOB);
        assert_eq!(&bytes[77..], &keyed::tag(&KEY, &bytes[..77]));
        let bytes = encode(&Message::Result(result()), None);
        assert_eq!(&bytes[48..52], &[2, 0, 0, 65]);
        assert_eq!(&bytes[52..], result().message.as_bytes());
        let bytes = encode(&Message::Challenge(challenge()), None);
        assert_eq!(bytes.len(), CHALLENGE_LEN);
        assert_eq!(&bytes[48..52], &[2, CHANNEL_VERSION, 0, 3]);
    }

    /// `bytes` with `at` set to `value`, decoded unkeyed.
    fn patched(bytes: &[u8], at: usize, value: u8) -> DecodeError {
        let mut copy = bytes.to_vec();
        copy[at] = value;
        decode(&copy, PAIR, KeyPolicy::Unkeyed).unwrap_err()
    }

    #[test]
    fn structural_damage_is_refused_with_its_reason() {
        let state = encode(&Message::State(state()), None);
        assert_eq!(
            decode(&state[..10], PAIR, KeyPolicy::Unkeyed).unwrap_err(),
            DecodeError::BadLength { len: 10 }
        );
        assert_eq!(
            decode(&state[..40], PAIR, KeyPolicy::Unkeyed).unwrap_err(),
            DecodeError::Truncated {
                len: 40,
                needed: STATE_LEN
            }
        );
        assert_eq!(patched(&state, 0, b'X'), DecodeError::BadMagic);
        assert_eq!(
            patched(&state, 4, 2),
            DecodeError::UnsupportedVersion { version: 2 }
        );
        assert_eq!(patched(&state, 5, 0), DecodeError::UnknownKind { kind: 0 });
        assert_eq!(patched(&state, 5, 7), DecodeError::UnknownKind { kind: 7 });
        assert_eq!(
            patched(&state, 6, FLAG_FORCE),
            DecodeError::UnknownFlags { flags: FLAG_FORCE }
        );
        assert_eq!(
            patched(&state, 6, 0x80),
            DecodeError::UnknownFlags { flags: 0x80 }
        );
        assert_eq!(
            patched(&state, 7, 1),
            DecodeError::UnknownFlags { flags: 0 }
        );
        assert_eq!(
            patched(&state, 51, 1),
            DecodeError::UnknownFlags { flags: 0 }
        );
        // Keyed flag set on an unkeyed message: its tag is missing.
        assert_eq!(
            patched(&state, 6, FLAG_KEYED),
            DecodeError::Truncated {
                len: STATE_LEN,
                needed: STATE_LEN + MAC_LEN
            }
        );
        let mut longer = state.clone();
        longer.push(0);
        assert_eq!(
            decode(&longer, PAIR, KeyPolicy::Unkeyed).unwrap_err(),
            DecodeError::LengthMismatch {
                len: STATE_LEN + 1,
                expected: STATE_LEN
            }
        );
        assert_eq!(patched(&state, 48, 3), DecodeError::UnknownRole { role: 3 });
        assert_eq!(
            patched(&state, 49, 4),
            DecodeError::UnknownRelation { relation: 4 }
        );
        let mut zero_session = state.clone();
        zero_session[16..24].fill(0);
        assert_eq!(
            decode(&zero_session, PAIR, KeyPolicy::Unkeyed).unwrap_err(),
            DecodeError::BadSession
        );
        assert_eq!(patched(&state, 31, 0), DecodeError::BadSession);

        let challenge = encode(&Message::Challenge(challenge()), None);
        assert_eq!(
            patched(&challenge, 48, 0xff),
            DecodeError::UnknownRole { role: 0xff }
        );
        let mut zero_nonce = challenge.clone();
        zero_nonce[16..32].fill(0);
        assert_eq!(
            decode(&zero_nonce, PAIR, KeyPolicy::Unkeyed).unwrap_err(),
            DecodeError::ZeroNonce
        );

        let push = encode(&Message::Push(push()), None);
        assert_eq!(patched(&push, 32, 7), DecodeError::UnknownRole { role: 7 });
        assert_eq!(
            patched(&push, 34, 1),
            DecodeError::UnknownFlags { flags: FLAG_FORCE }
        );
        let blob_len = |value: u32| {
            let mut copy = push.clone();
            copy[36..40].copy_from_slice(&value.to_be_bytes());
            decode(&copy, PAIR, KeyPolicy::Unkeyed).unwrap_err()
        };
        assert_eq!(
            blob_len(36),
            DecodeError::LengthMismatch {
                len: push.len(),
                expected: push.len() - 1
            }
        );
        assert_eq!(
            blob_len(38),
            DecodeError::LengthMismatch {
                len: push.len(),
                expected: push.len() + 1
            }
        );
        assert_eq!(blob_len(0), DecodeError::BadBlobLength { len: 0 });
        // A pull carries no blob, and nothing but a pull may lack one.
        let pull = encode(
            &Message::Push(PushRepr {
                pair_id: PAIR,
                nonce: NONCE,
                role: Some(PairRole::A),
                force: false,
                pull: true,
                blob: &[],
            }),
            None,
        );
        let mut pull_with_blob = pull.clone();
        pull_with_blob[36..40].copy_from_slice(&1u32.to_be_bytes());
        pull_with_blob.push(0);
        assert_eq!(
            decode(&pull_with_blob, PAIR, KeyPolicy::Unkeyed).unwrap_err(),
            DecodeError::BadBlobLength { len: 1 }
        );
        let hostile = u32::try_from(MAX_BLOB_LEN + 1).unwrap();
        assert_eq!(
            blob_len(hostile),
            DecodeError::BadBlobLength { len: hostile }
        );
        assert_eq!(
            blob_len(u32::MAX),
            DecodeError::BadBlobLength { len: u32::MAX }
        );

        let result = encode(&Message::Result(result()), None);
        assert_eq!(
            patched(&result, 48, 8),
            DecodeError::UnknownOutcome { outcome: 8 }
        );
        assert_eq!(
            patched(&result, 49, 1),
            DecodeError::UnknownFlags { flags: 0 }
        );
        let text_len = |value: u16| {
            let mut copy = result.clone();
            copy[50..52].copy_from_slice(&value.to_be_bytes());
            decode(&copy, PAIR, KeyPolicy::Unkeyed).unwrap_err()
        };
        assert_eq!(text_len(1025), DecodeError::BadTextLength { len: 1025 });
        assert_eq!(
            text_len(u16::MAX),
            DecodeError::BadTextLength { len: u16::MAX }
        );
        assert_eq!(
            text_len(1),
            DecodeError::LengthMismatch {
                len: result.len(),
                expected: RESULT_HEADER_LEN + 1
            }
        );
        // Not UTF-8: a lone continuation byte, a truncated sequence, an overlong encoding.
        assert_eq!(patched(&result, 52, 0x80), DecodeError::BadText);
        assert_eq!(
            patched(&result, result.len() - 1, 0xc3),
            DecodeError::BadText
        );
        let mut overlong = result.clone();
        overlong[52..54].copy_from_slice(&[0xc0, 0xaf]);
        assert_eq!(
            decode(&overlong, PAIR, KeyPolicy::Unkeyed).unwrap_err(),
            DecodeError::BadText
        );
        // A terminal escape in the operator's message.
        assert_eq!(patched(&result, 52, 0x1b), DecodeError::BadText);
        assert_eq!(patched(&result, 52, 0x7f), DecodeError::BadText);

        let huge = vec![0u8; MAX_FRAME_LEN + 1];
        assert_eq!(
            decode(&huge, PAIR, KeyPolicy::Unkeyed).unwrap_err(),
            DecodeError::BadLength {
                len: MAX_FRAME_LEN + 1
            }
        );
    }

    #[test]
    fn structure_is_checked_before_authentication() {
        let keyed = encode(&Message::State(state()), Some(&KEY));
        let mut wrong = keyed.clone();
        wrong[48] = 9;
        wrong[8] ^= 0xff;
        assert_eq!(
            decode(&wrong, PAIR, KeyPolicy::Unkeyed).unwrap_err(),
            DecodeError::UnknownRole { role: 9 }
        );
    }

    #[test]
    fn frame_lengths_are_bounded_before_anything_is_read() {
        let len = |n: u32| frame_len(n.to_be_bytes());
        assert_eq!(len(0), Err(DecodeError::BadFrameLength { len: 0 }));
        assert_eq!(len(15), Err(DecodeError::BadFrameLength { len: 15 }));
        assert_eq!(len(16), Ok(16));
        let max = u32::try_from(MAX_FRAME_LEN).unwrap();
        assert_eq!(len(max), Ok(MAX_FRAME_LEN));
        assert_eq!(
            len(max + 1),
            Err(DecodeError::BadFrameLength { len: max + 1 })
        );
        assert_eq!(
            len(u32::MAX),
            Err(DecodeError::BadFrameLength { len: u32::MAX })
        );
        let of = |n: usize, kind| frame_len_of(u32::try_from(n).unwrap().to_be_bytes(), kind);
        assert!(of(RESULT_HEADER_LEN + MAX_TEXT_LEN + MAC_LEN, Kind::Result).is_ok());
        assert!(of(RESULT_HEADER_LEN + MAX_TEXT_LEN + MAC_LEN + 1, Kind::Result).is_err());
        assert!(of(CHALLENGE_LEN + MAC_LEN + 1, Kind::Challenge).is_err());
        assert!(of(CHALLENGE_LEN - 1, Kind::Challenge).is_err());
        // A pull is a PUSH header alone; anything shorter is refused.
        assert!(of(PUSH_HEADER_LEN, Kind::Push).is_ok());
        assert!(of(PUSH_HEADER_LEN - 1, Kind::Push).is_err());
        assert!(of(Kind::Push.max_len(), Kind::Push).is_ok());
        assert!(of(Kind::Push.max_len() + 1, Kind::Push).is_err());
        // A bundle frame is far larger, and only a reader that expects one takes it.
        assert!(of(MAX_FRAME_LEN, Kind::Bundle).is_ok());
        assert!(of(MAX_FRAME_LEN + 1, Kind::Bundle).is_err());
        assert!(of(BUNDLE_HEADER_LEN, Kind::Bundle).is_err());
        assert!(of(FIRMWARE_LEN + MAC_LEN + 1, Kind::Firmware).is_err());
        assert!(of(STATE_LEN + MAC_LEN, Kind::State).is_ok());
        for kind in [
            Kind::State,
            Kind::Challenge,
            Kind::Push,
            Kind::Result,
            Kind::Firmware,
            Kind::Bundle,
        ] {
            assert!(kind.min_len() >= HEADER_LEN && kind.max_len() <= MAX_FRAME_LEN);
            assert_eq!(Kind::from_byte(kind.to_byte()), Some(kind));
        }
    }

    #[test]
    fn the_largest_push_is_the_largest_push_frame() {
        let blob = vec![0xa5u8; MAX_BLOB_LEN];
        let message = Message::Push(PushRepr {
            blob: &blob,
            ..push()
        });
        let bytes = encode(&message, Some(&KEY));
        assert_eq!(bytes.len(), Kind::Push.max_len());
        assert_eq!(
            decode(&bytes, PAIR, KeyPolicy::Require(&KEY)).unwrap(),
            message
        );
    }

    #[test]
    fn authentication_failures_are_refused_with_their_reason() {
        for message in samples() {
            let keyed = encode(&message, Some(&KEY));
            let plain = encode(&message, None);
            assert_eq!(
                decode(&keyed, PAIR ^ 1, KeyPolicy::Require(&KEY)).unwrap_err(),
                DecodeError::WrongPair { pair_id: PAIR }
            );
            assert_eq!(
                decode(&plain, 5, KeyPolicy::Unkeyed).unwrap_err(),
                DecodeError::WrongPair { pair_id: PAIR }
            );
            assert_eq!(
                decode(&plain, PAIR, KeyPolicy::Require(&KEY)).unwrap_err(),
                DecodeError::MissingMac
            );
            assert_eq!(
                decode(&keyed, PAIR, KeyPolicy::Unkeyed).unwrap_err(),
                DecodeError::UnexpectedMac
            );
            assert_eq!(
                decode(&keyed, PAIR, KeyPolicy::Require(&[8; 32])).unwrap_err(),
                DecodeError::BadMac
            );
            // Any flipped bit in a keyed message is refused (structure, pair or MAC).
            for bit in 0..keyed.len() * 8 {
                let mut broken = keyed.clone();
                broken[bit / 8] ^= 1 << (bit % 8);
                assert!(
                    decode(&broken, PAIR, KeyPolicy::Require(&KEY)).is_err(),
                    "{:?} bit {bit}",
                    message.kind()
                );
            }
        }
    }

    #[test]
    fn every_truncation_is_refused_without_panicking() {
        for message in samples() {
            for key in [None, Some(&KEY)] {
                let bytes = encode(&message, key);
                for cut in 0..bytes.len() {
                    let short = &bytes[..cut];
                    assert!(decode(short, PAIR, policy(key)).is_err(), "cut {cut}");
                    assert!(ReplicationPacket::new_checked(short).is_err());
                    let view = ReplicationPacket::new_unchecked(short);
                    let _ = (view.version(), view.kind(), view.flags(), view.pair_id());
                    let _ = view.authenticate(PAIR, policy(key));
                }
            }
        }
    }

    #[test]
    fn emit_refuses_what_cannot_be_sent() {
        let mut buffer = vec![0u8; 256];
        let zero = StateRepr {
            session: 0,
            ..state()
        };
        assert_eq!(zero.emit(&mut buffer, None), Err(EncodeError::BadSession));
        let zero = StateRepr {
            sequence: 0,
            ..state()
        };
        assert_eq!(zero.emit(&mut buffer, None), Err(EncodeError::BadSession));
        let zero = ChallengeRepr {
            nonce: [0; NONCE_LEN],
            ..challenge()
        };
        assert_eq!(zero.emit(&mut buffer, None), Err(EncodeError::ZeroNonce));
        let empty = PushRepr {
            blob: &[],
            ..push()
        };
        assert_eq!(
            empty.emit(&mut buffer, None),
            Err(EncodeError::BadBlobLength { len: 0 })
        );
        let big = vec![0u8; MAX_BLOB_LEN + 1];
        let big = PushRepr {
            blob: &big,
            ..push()
        };
        assert_eq!(
            big.emit(&mut buffer, None),
            Err(EncodeError::BadBlobLength {
                len: MAX_BLOB_LEN + 1
            })
        );
        let long = "x".repeat(MAX_TEXT_LEN + 1);
        let long = ResultRepr {
            message: &long,
            ..result()
        };
        assert_eq!(
            long.emit(&mut buffer, None),
            Err(EncodeError::TextTooLong {
                len: MAX_TEXT_LEN + 1
            })
        );
        let escape = ResultRepr {
            message: "\u{1b}[2J",
            ..result()
        };
        assert_eq!(escape.emit(&mut buffer, None), Err(EncodeError::BadText));
        let mut small = [0u8; 60];
        assert_eq!(
            Message::State(state()).emit(&mut small, Some(&KEY)),
            Err(EncodeError::BufferTooSmall {
                needed: STATE_LEN + MAC_LEN,
                len: 60
            })
        );
        assert_eq!(
            Message::State(state()).emit_frame(&mut small[..STATE_LEN], None),
            Err(EncodeError::BufferTooSmall {
                needed: STATE_LEN + 4,
                len: STATE_LEN
            })
        );
    }

    #[test]
    fn clipped_text_fits_and_keeps_whole_characters() {
        assert_eq!(clip_text("short"), "short");
        let long = "é".repeat(MAX_TEXT_LEN);
        let clipped = clip_text(&long);
        assert_eq!(clipped.len(), MAX_TEXT_LEN);
        let odd = std::format!("x{long}");
        assert_eq!(clip_text(&odd).len(), MAX_TEXT_LEN - 1);
    }

    #[test]
    fn errors_say_what_to_do() {
        use std::string::ToString;
        let errors = [
            DecodeError::BadFrameLength { len: u32::MAX },
            DecodeError::WrongPair { pair_id: 1 },
            DecodeError::UnexpectedKind {
                expected: Kind::Challenge,
                found: Kind::Push,
            },
        ];
        for error in errors {
            let text = error.to_string();
            assert!(text.contains(';'), "{text}");
            assert!(!error.reason().is_empty());
        }
        assert!(EncodeError::TextTooLong { len: 2000 }
            .to_string()
            .contains("clip_text"));
    }
}
