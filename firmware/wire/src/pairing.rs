//! The pairing datagrams (`pair start` / `pair join CODE` on the two consoles): the four
//! messages of one SPAKE2 exchange over the peer cable, carried by the daemon as UDP on IPv6
//! link-local with hop limit 255. The protocol itself (who sends what when, the keys, the tags)
//! is `tandem_pair`; this module only checks and builds bytes.
//!
//! Every message has a fixed length for its type, so a datagram of any other length, an unknown
//! type, a non-zero reserved byte or an impossible field is refused with the reason before
//! anything looks at it. Tags sit at the end of a message and cover everything before them (and
//! the earlier messages of the exchange: see `tandem_pair`), so [`signed_part`] is the message
//! less its last [`TAG_LEN`] bytes.
//!
//! ```text
//! every message:  0..4 magic "TDPR"   4 version (1)   5 type   6..8 reserved (0)
//! box facts (16): +0..2 pairing version  +2..4 channel version  +4..6 blob version
//!                 +6 stored role (0 none, 1 a, 2 b)  +7 reserved (0)  +8..16 config generation
//!
//! HELLO   (1, joiner -> starter, 73 bytes)
//!   8..24 joiner nonce   24..40 joiner's box facts   40..73 joiner's SPAKE2 message ('A' + 32)
//! REPLY   (2, starter -> joiner, 123 bytes)
//!   8..24 joiner nonce (echo)   24..40 starter nonce   40..56 starter's box facts
//!   56 starter role (1 a, 2 b)   57 joiner role (the other one)
//!   58..91 starter's SPAKE2 message ('B' + 32)   91..123 starter's confirmation tag
//! CONFIRM (3, joiner -> starter, 72 bytes)
//!   8..24 joiner nonce   24..40 starter nonce   40..72 joiner's confirmation tag
//! RESULT  (4, starter -> joiner, 48 bytes; 80 when paired)
//!   8..24 joiner nonce   24..40 starter nonce (0: answered a HELLO without an exchange)
//!   40 outcome (1 paired, 2 wrong code, 3 locked, 4 expired, 5 busy, 6 version refused)
//!   41 tries left (wrong code only: 1..; else 0)   42..48 the starter's versions
//!   48..80 result tag (paired only)
//! ```
//!
//! All integers are big-endian. Nonces are never all-zero, except the starter nonce of a RESULT
//! that answers a HELLO (busy, locked, expired, version refused) before any exchange started.

use core::fmt;

use crate::keyed::{be_u16, be_u64};

/// Magic at the start of every pairing datagram.
pub const MAGIC: [u8; 4] = *b"TDPR";
/// The format version this codec speaks.
pub const VERSION: u8 = 1;
/// Bytes of a session nonce.
pub const NONCE_LEN: usize = 16;
/// Bytes of a SPAKE2 message (Ed25519 group: one side byte and a 32-byte point).
pub const SPAKE_MSG_LEN: usize = 33;
/// Bytes of a confirmation tag (HMAC-SHA256).
pub const TAG_LEN: usize = 32;
/// The side byte of the joiner's SPAKE2 message: it plays SPAKE2 side A.
pub const SPAKE_SIDE_JOINER: u8 = b'A';
/// The side byte of the starter's SPAKE2 message: it plays SPAKE2 side B.
pub const SPAKE_SIDE_STARTER: u8 = b'B';

/// Length of the header every message starts with.
pub const HEADER_LEN: usize = 8;
/// Length of the box facts block.
pub const FACTS_LEN: usize = 16;
/// Length of a HELLO.
pub const HELLO_LEN: usize = 73;
/// Length of a REPLY.
pub const REPLY_LEN: usize = 123;
/// Length of a CONFIRM.
pub const CONFIRM_LEN: usize = 72;
/// Length of a RESULT that is not "paired".
pub const RESULT_LEN: usize = 48;
/// Length of a "paired" RESULT (with its tag).
pub const RESULT_PAIRED_LEN: usize = RESULT_LEN + TAG_LEN;
/// Longest pairing datagram sent or accepted (the REPLY).
pub const MAX_DATAGRAM_LEN: usize = REPLY_LEN;

/// A per-exchange random value of one side.
pub type Nonce = [u8; NONCE_LEN];
/// A SPAKE2 message.
pub type SpakeMessage = [u8; SPAKE_MSG_LEN];
/// A confirmation tag.
pub type Tag = [u8; TAG_LEN];

mod field {
    use core::ops::Range;
    pub const MAGIC: Range<usize> = 0..4;
    pub const VERSION: usize = 4;
    pub const TYPE: usize = 5;
    pub const RESERVED: Range<usize> = 6..8;
    pub const JOINER_NONCE: Range<usize> = 8..24;

    pub const HELLO_FACTS: usize = 24;
    pub const HELLO_SPAKE: Range<usize> = 40..73;

    pub const REPLY_STARTER_NONCE: Range<usize> = 24..40;
    pub const REPLY_FACTS: usize = 40;
    pub const REPLY_STARTER_ROLE: usize = 56;
    pub const REPLY_JOINER_ROLE: usize = 57;
    pub const REPLY_SPAKE: Range<usize> = 58..91;
    pub const REPLY_TAG: Range<usize> = 91..123;

    pub const CONFIRM_STARTER_NONCE: Range<usize> = 24..40;
    pub const CONFIRM_TAG: Range<usize> = 40..72;

    pub const RESULT_STARTER_NONCE: Range<usize> = 24..40;
    pub const RESULT_OUTCOME: usize = 40;
    pub const RESULT_TRIES: usize = 41;
    pub const RESULT_VERSIONS: usize = 42;
    pub const RESULT_TAG: Range<usize> = 48..80;

    // Offsets inside a box facts block.
    pub const FACT_PAIRING: usize = 0;
    pub const FACT_CHANNEL: usize = 2;
    pub const FACT_BLOB: usize = 4;
    pub const FACT_ROLE: usize = 6;
    pub const FACT_RESERVED: usize = 7;
    pub const FACT_GENERATION: usize = 8;
}

/// The four message types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    /// Joiner -> starter: opens an exchange.
    Hello,
    /// Starter -> joiner: the starter's SPAKE2 message, roles and confirmation.
    Reply,
    /// Joiner -> starter: the joiner's confirmation.
    Confirm,
    /// Starter -> joiner: how it ended.
    Result,
}

impl MessageType {
    const fn to_byte(self) -> u8 {
        match self {
            MessageType::Hello => 1,
            MessageType::Reply => 2,
            MessageType::Confirm => 3,
            MessageType::Result => 4,
        }
    }

    const fn from_byte(byte: u8) -> Option<MessageType> {
        match byte {
            1 => Some(MessageType::Hello),
            2 => Some(MessageType::Reply),
            3 => Some(MessageType::Confirm),
            4 => Some(MessageType::Result),
            _ => None,
        }
    }

    /// Upper-case name, as in the protocol description.
    pub const fn as_str(self) -> &'static str {
        match self {
            MessageType::Hello => "HELLO",
            MessageType::Reply => "REPLY",
            MessageType::Confirm => "CONFIRM",
            MessageType::Result => "RESULT",
        }
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which box of the pair: the same two roles as `tandem_config::Role` (`a`, `b`), kept here so
/// that the codec needs no config model; the daemon maps one onto the other by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The box of `[pair.a]`.
    A,
    /// The box of `[pair.b]`.
    B,
}

impl Role {
    /// The partner's role.
    pub const fn other(self) -> Role {
        match self {
            Role::A => Role::B,
            Role::B => Role::A,
        }
    }

    /// `"a"` or `"b"`, as `tandem_config::Role` writes it.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::A => "a",
            Role::B => "b",
        }
    }

    const fn to_byte(self) -> u8 {
        match self {
            Role::A => 1,
            Role::B => 2,
        }
    }

    const fn from_byte(byte: u8) -> Option<Role> {
        match byte {
            1 => Some(Role::A),
            2 => Some(Role::B),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The format versions a box's firmware speaks; pairing boxes whose versions differ is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Versions {
    /// The pairing protocol (`tandem_pair::PROTOCOL_VERSION`).
    pub pairing: u16,
    /// The peer channel's datagrams.
    pub channel: u16,
    /// The config blob format.
    pub blob: u16,
}

impl fmt::Display for Versions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "pairing {}, channel {}, blob {}",
            self.pairing, self.channel, self.blob
        )
    }
}

/// What a box tells its partner about itself when pairing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct BoxFacts {
    /// The format versions of its firmware.
    pub versions: Versions,
    /// The role stored on its config disk (none on a factory-fresh box).
    pub role: Option<Role>,
    /// The generation of its running config (0: none).
    pub generation: u64,
}

/// The end of an exchange as the starter reports it in a RESULT.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultCode {
    /// The joiner's confirmation verified: both boxes hold the same key.
    Paired {
        /// Tag under the derived confirmation key over the whole exchange.
        tag: Tag,
    },
    /// The joiner's confirmation did not verify: the codes differ.
    WrongCode {
        /// Attempts the code still allows (at least 1; none left is [`ResultCode::Locked`]).
        tries_left: u8,
    },
    /// No tries left: the code is burned.
    Locked,
    /// The code's lifetime is over (or it was already used).
    Expired,
    /// Another exchange is in progress.
    Busy,
    /// The firmware versions differ (the RESULT carries the starter's).
    VersionRefused,
}

impl ResultCode {
    const fn to_byte(self) -> u8 {
        match self {
            ResultCode::Paired { .. } => 1,
            ResultCode::WrongCode { .. } => 2,
            ResultCode::Locked => 3,
            ResultCode::Expired => 4,
            ResultCode::Busy => 5,
            ResultCode::VersionRefused => 6,
        }
    }

    /// Lower-case name, for logs.
    pub const fn as_str(&self) -> &'static str {
        match self {
            ResultCode::Paired { .. } => "paired",
            ResultCode::WrongCode { .. } => "wrong code",
            ResultCode::Locked => "locked",
            ResultCode::Expired => "expired",
            ResultCode::Busy => "busy",
            ResultCode::VersionRefused => "version refused",
        }
    }
}

/// HELLO: the joiner opens an exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hello {
    pub joiner_nonce: Nonce,
    pub facts: BoxFacts,
    /// Side byte [`SPAKE_SIDE_JOINER`] and the point.
    pub spake: SpakeMessage,
}

/// REPLY: the starter's half of the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Reply {
    pub joiner_nonce: Nonce,
    pub starter_nonce: Nonce,
    pub facts: BoxFacts,
    pub starter_role: Role,
    /// Always `starter_role.other()`.
    pub joiner_role: Role,
    /// Side byte [`SPAKE_SIDE_STARTER`] and the point.
    pub spake: SpakeMessage,
    pub tag: Tag,
}

/// CONFIRM: the joiner's key confirmation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Confirm {
    pub joiner_nonce: Nonce,
    pub starter_nonce: Nonce,
    pub tag: Tag,
}

/// RESULT: how the starter ended the exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResultMessage {
    pub joiner_nonce: Nonce,
    /// All-zero when the RESULT answers a HELLO before any exchange started.
    pub starter_nonce: Nonce,
    pub code: ResultCode,
    /// The starter's firmware versions (so a refused joiner can name both).
    pub versions: Versions,
}

/// Why a pairing datagram was refused. Each variant is one counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairingWireError {
    /// Shorter than a header, or not the length its type has.
    BadLength { len: usize },
    /// Does not start with "TDPR": not a pairing datagram.
    BadMagic,
    /// A format version this box does not speak.
    UnsupportedVersion { version: u8 },
    /// A message type this version does not define.
    UnknownType { message_type: u8 },
    /// A reserved byte is not zero.
    Reserved,
    /// A stored role that is not none / a / b, or a role assignment that is not a and b.
    BadRole,
    /// An all-zero nonce where one is required.
    BadNonce,
    /// A SPAKE2 message with the wrong side byte for its sender.
    BadSpakeMessage,
    /// An outcome this version does not define, or tries left that do not fit the outcome.
    BadOutcome,
    /// The output buffer is too small (sender side).
    BufferTooSmall { needed: usize, len: usize },
}

impl PairingWireError {
    /// A short fixed name, the key of the receiver's counter.
    pub const fn reason(&self) -> &'static str {
        match self {
            PairingWireError::BadLength { .. } => "bad length",
            PairingWireError::BadMagic => "bad magic",
            PairingWireError::UnsupportedVersion { .. } => "unsupported version",
            PairingWireError::UnknownType { .. } => "unknown type",
            PairingWireError::Reserved => "reserved not zero",
            PairingWireError::BadRole => "bad role",
            PairingWireError::BadNonce => "bad nonce",
            PairingWireError::BadSpakeMessage => "bad SPAKE2 message",
            PairingWireError::BadOutcome => "bad outcome",
            PairingWireError::BufferTooSmall { .. } => "buffer too small",
        }
    }
}

impl fmt::Display for PairingWireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            PairingWireError::BadLength { len } => write!(
                f,
                "pairing datagram of {len} bytes does not have its type's length ({HELLO_LEN}, {REPLY_LEN}, {CONFIRM_LEN}, {RESULT_LEN} or {RESULT_PAIRED_LEN}); discard it"
            ),
            PairingWireError::BadMagic => {
                f.write_str("datagram is not a pairing message (bad magic); discard it")
            }
            PairingWireError::UnsupportedVersion { version } => write!(
                f,
                "pairing datagram version {version}, this box speaks {VERSION}; run the same firmware on both boxes"
            ),
            PairingWireError::UnknownType { message_type } => write!(
                f,
                "pairing message type {message_type} is not defined in version {VERSION}; run the same firmware on both boxes"
            ),
            PairingWireError::Reserved => f.write_str(
                "pairing datagram with a reserved byte not zero; run the same firmware on both boxes",
            ),
            PairingWireError::BadRole => f.write_str(
                "pairing datagram with a role that is not a or b (or both boxes given the same role); discard it",
            ),
            PairingWireError::BadNonce => {
                f.write_str("pairing datagram with an all-zero nonce; discard it")
            }
            PairingWireError::BadSpakeMessage => f.write_str(
                "pairing datagram whose SPAKE2 message is not from the side that sends it; discard it",
            ),
            PairingWireError::BadOutcome => f.write_str(
                "pairing result with an undefined outcome or tries left that do not fit it; discard it",
            ),
            PairingWireError::BufferTooSmall { needed, len } => write!(
                f,
                "buffer of {len} bytes cannot hold a {needed}-byte pairing datagram; pass MAX_DATAGRAM_LEN bytes"
            ),
        }
    }
}

/// A zero-copy view of one pairing datagram.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

fn array<const N: usize>(bytes: &[u8], range: core::ops::Range<usize>) -> [u8; N] {
    bytes
        .get(range)
        .and_then(|b| <[u8; N]>::try_from(b).ok())
        .unwrap_or([0; N])
}

fn byte(bytes: &[u8], at: usize) -> u8 {
    bytes.get(at).copied().unwrap_or(0)
}

const fn is_zero(nonce: &Nonce) -> bool {
    let mut i = 0;
    while i < NONCE_LEN {
        if nonce[i] != 0 {
            return false;
        }
        i += 1;
    }
    true
}

/// The expected length of a message of `message_type` whose outcome byte (RESULT only) is
/// `outcome`.
const fn expected_len(message_type: MessageType, outcome: u8) -> usize {
    match message_type {
        MessageType::Hello => HELLO_LEN,
        MessageType::Reply => REPLY_LEN,
        MessageType::Confirm => CONFIRM_LEN,
        MessageType::Result => {
            if outcome == 1 {
                RESULT_PAIRED_LEN
            } else {
                RESULT_LEN
            }
        }
    }
}

fn read_facts(bytes: &[u8], at: usize) -> Result<BoxFacts, PairingWireError> {
    if byte(bytes, at + field::FACT_RESERVED) != 0 {
        return Err(PairingWireError::Reserved);
    }
    let role = match byte(bytes, at + field::FACT_ROLE) {
        0 => None,
        other => Some(Role::from_byte(other).ok_or(PairingWireError::BadRole)?),
    };
    Ok(BoxFacts {
        versions: read_versions(bytes, at),
        role,
        generation: be_u64(
            bytes,
            at + field::FACT_GENERATION..at + field::FACT_GENERATION + 8,
        ),
    })
}

fn read_versions(bytes: &[u8], at: usize) -> Versions {
    let u16_at = |offset: usize| be_u16(bytes, at + offset..at + offset + 2);
    Versions {
        pairing: u16_at(field::FACT_PAIRING),
        channel: u16_at(field::FACT_CHANNEL),
        blob: u16_at(field::FACT_BLOB),
    }
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps `buffer` without checks (accessors of a short buffer read zeros, never panic).
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps `buffer` after checking everything a receiver can check without keys: magic,
    /// version, type, the type's exact length, reserved bytes, roles, nonces, SPAKE2 side bytes
    /// and the outcome.
    pub fn new_checked(buffer: T) -> Result<Packet<T>, PairingWireError> {
        let packet = Packet { buffer };
        packet.check()?;
        Ok(packet)
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn check(&self) -> Result<(), PairingWireError> {
        let bytes = self.buffer.as_ref();
        let len = bytes.len();
        if !(HEADER_LEN..=MAX_DATAGRAM_LEN).contains(&len) {
            return Err(PairingWireError::BadLength { len });
        }
        if bytes.get(field::MAGIC) != Some(&MAGIC[..]) {
            return Err(PairingWireError::BadMagic);
        }
        let version = self.version();
        if version != VERSION {
            return Err(PairingWireError::UnsupportedVersion { version });
        }
        let raw_type = byte(bytes, field::TYPE);
        let message_type =
            MessageType::from_byte(raw_type).ok_or(PairingWireError::UnknownType {
                message_type: raw_type,
            })?;
        let outcome = byte(bytes, field::RESULT_OUTCOME);
        if len != expected_len(message_type, outcome) {
            return Err(PairingWireError::BadLength { len });
        }
        if bytes
            .get(field::RESERVED)
            .is_none_or(|reserved| reserved.iter().any(|b| *b != 0))
        {
            return Err(PairingWireError::Reserved);
        }
        if is_zero(&self.joiner_nonce()) {
            return Err(PairingWireError::BadNonce);
        }
        match message_type {
            MessageType::Hello => {
                read_facts(bytes, field::HELLO_FACTS)?;
                if byte(bytes, field::HELLO_SPAKE.start) != SPAKE_SIDE_JOINER {
                    return Err(PairingWireError::BadSpakeMessage);
                }
            }
            MessageType::Reply => {
                read_facts(bytes, field::REPLY_FACTS)?;
                let starter = Role::from_byte(byte(bytes, field::REPLY_STARTER_ROLE));
                let joiner = Role::from_byte(byte(bytes, field::REPLY_JOINER_ROLE));
                match (starter, joiner) {
                    (Some(starter), Some(joiner)) if starter.other() == joiner => {}
                    _ => return Err(PairingWireError::BadRole),
                }
                if is_zero(&self.starter_nonce()) {
                    return Err(PairingWireError::BadNonce);
                }
                if byte(bytes, field::REPLY_SPAKE.start) != SPAKE_SIDE_STARTER {
                    return Err(PairingWireError::BadSpakeMessage);
                }
            }
            MessageType::Confirm => {
                if is_zero(&self.starter_nonce()) {
                    return Err(PairingWireError::BadNonce);
                }
            }
            MessageType::Result => {
                self.result_code()?;
                if outcome == 1 && is_zero(&self.starter_nonce()) {
                    return Err(PairingWireError::BadNonce);
                }
            }
        }
        Ok(())
    }

    pub fn version(&self) -> u8 {
        byte(self.buffer.as_ref(), field::VERSION)
    }

    /// The message type (`None` for an unknown type byte).
    pub fn message_type(&self) -> Option<MessageType> {
        MessageType::from_byte(byte(self.buffer.as_ref(), field::TYPE))
    }

    /// The joiner's nonce (every type carries it at the same place).
    pub fn joiner_nonce(&self) -> Nonce {
        array(self.buffer.as_ref(), field::JOINER_NONCE)
    }

    /// The starter's nonce (all-zero in a HELLO, which has none).
    pub fn starter_nonce(&self) -> Nonce {
        match self.message_type() {
            Some(MessageType::Reply) => array(self.buffer.as_ref(), field::REPLY_STARTER_NONCE),
            Some(MessageType::Confirm) => array(self.buffer.as_ref(), field::CONFIRM_STARTER_NONCE),
            Some(MessageType::Result) => array(self.buffer.as_ref(), field::RESULT_STARTER_NONCE),
            Some(MessageType::Hello) | None => [0; NONCE_LEN],
        }
    }

    fn result_code(&self) -> Result<ResultCode, PairingWireError> {
        let bytes = self.buffer.as_ref();
        let tries = byte(bytes, field::RESULT_TRIES);
        let code = match byte(bytes, field::RESULT_OUTCOME) {
            1 => ResultCode::Paired {
                tag: array(bytes, field::RESULT_TAG),
            },
            2 if tries > 0 => ResultCode::WrongCode { tries_left: tries },
            3 => ResultCode::Locked,
            4 => ResultCode::Expired,
            5 => ResultCode::Busy,
            6 => ResultCode::VersionRefused,
            _ => return Err(PairingWireError::BadOutcome),
        };
        if tries != 0 && !matches!(code, ResultCode::WrongCode { .. }) {
            return Err(PairingWireError::BadOutcome);
        }
        Ok(code)
    }
}

/// A pairing message as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Repr {
    Hello(Hello),
    Reply(Reply),
    Confirm(Confirm),
    Result(ResultMessage),
}

impl Repr {
    /// Checks `packet` and reads its fields.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Repr, PairingWireError> {
        packet.check()?;
        let bytes = packet.buffer.as_ref();
        let joiner_nonce = packet.joiner_nonce();
        let starter_nonce = packet.starter_nonce();
        let raw_type = byte(bytes, field::TYPE);
        let message_type =
            MessageType::from_byte(raw_type).ok_or(PairingWireError::UnknownType {
                message_type: raw_type,
            })?;
        Ok(match message_type {
            MessageType::Hello => Repr::Hello(Hello {
                joiner_nonce,
                facts: read_facts(bytes, field::HELLO_FACTS)?,
                spake: array(bytes, field::HELLO_SPAKE),
            }),
            MessageType::Reply => {
                let starter_role = Role::from_byte(byte(bytes, field::REPLY_STARTER_ROLE))
                    .ok_or(PairingWireError::BadRole)?;
                Repr::Reply(Reply {
                    joiner_nonce,
                    starter_nonce,
                    facts: read_facts(bytes, field::REPLY_FACTS)?,
                    starter_role,
                    joiner_role: starter_role.other(),
                    spake: array(bytes, field::REPLY_SPAKE),
                    tag: array(bytes, field::REPLY_TAG),
                })
            }
            MessageType::Confirm => Repr::Confirm(Confirm {
                joiner_nonce,
                starter_nonce,
                tag: array(bytes, field::CONFIRM_TAG),
            }),
            MessageType::Result => Repr::Result(ResultMessage {
                joiner_nonce,
                starter_nonce,
                code: packet.result_code()?,
                versions: read_versions(bytes, field::RESULT_VERSIONS),
            }),
        })
    }

    /// Checks and parses one received datagram.
    pub fn decode(datagram: &[u8]) -> Result<Repr, PairingWireError> {
        Repr::parse(&Packet::new_checked(datagram)?)
    }

    /// The message's type.
    pub const fn message_type(&self) -> MessageType {
        match self {
            Repr::Hello(_) => MessageType::Hello,
            Repr::Reply(_) => MessageType::Reply,
            Repr::Confirm(_) => MessageType::Confirm,
            Repr::Result(_) => MessageType::Result,
        }
    }

    /// Bytes the message takes on the wire.
    pub const fn buffer_len(&self) -> usize {
        match self {
            Repr::Hello(_) => HELLO_LEN,
            Repr::Reply(_) => REPLY_LEN,
            Repr::Confirm(_) => CONFIRM_LEN,
            Repr::Result(result) => match result.code {
                ResultCode::Paired { .. } => RESULT_PAIRED_LEN,
                _ => RESULT_LEN,
            },
        }
    }

    /// Refuses what a receiver would refuse, so that everything emitted decodes.
    fn validate(&self) -> Result<(), PairingWireError> {
        let joiner_nonce = match self {
            Repr::Hello(m) => &m.joiner_nonce,
            Repr::Reply(m) => &m.joiner_nonce,
            Repr::Confirm(m) => &m.joiner_nonce,
            Repr::Result(m) => &m.joiner_nonce,
        };
        if is_zero(joiner_nonce) {
            return Err(PairingWireError::BadNonce);
        }
        match self {
            Repr::Hello(hello) => {
                if hello.spake[0] != SPAKE_SIDE_JOINER {
                    return Err(PairingWireError::BadSpakeMessage);
                }
            }
            Repr::Reply(reply) => {
                if reply.starter_role.other() != reply.joiner_role {
                    return Err(PairingWireError::BadRole);
                }
                if is_zero(&reply.starter_nonce) {
                    return Err(PairingWireError::BadNonce);
                }
                if reply.spake[0] != SPAKE_SIDE_STARTER {
                    return Err(PairingWireError::BadSpakeMessage);
                }
            }
            Repr::Confirm(confirm) => {
                if is_zero(&confirm.starter_nonce) {
                    return Err(PairingWireError::BadNonce);
                }
            }
            Repr::Result(result) => match result.code {
                ResultCode::WrongCode { tries_left: 0 } => {
                    return Err(PairingWireError::BadOutcome)
                }
                ResultCode::Paired { .. } if is_zero(&result.starter_nonce) => {
                    return Err(PairingWireError::BadNonce)
                }
                _ => {}
            },
        }
        Ok(())
    }

    /// Writes the message into the front of `buffer` and returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, PairingWireError> {
        self.validate()?;
        let needed = self.buffer_len();
        let len = buffer.len();
        let out = buffer
            .get_mut(..needed)
            .ok_or(PairingWireError::BufferTooSmall { needed, len })?;
        out.fill(0);
        out[field::MAGIC].copy_from_slice(&MAGIC);
        out[field::VERSION] = VERSION;
        out[field::TYPE] = self.message_type().to_byte();
        match self {
            Repr::Hello(hello) => {
                out[field::JOINER_NONCE].copy_from_slice(&hello.joiner_nonce);
                write_facts(out, field::HELLO_FACTS, &hello.facts);
                out[field::HELLO_SPAKE].copy_from_slice(&hello.spake);
            }
            Repr::Reply(reply) => {
                out[field::JOINER_NONCE].copy_from_slice(&reply.joiner_nonce);
                out[field::REPLY_STARTER_NONCE].copy_from_slice(&reply.starter_nonce);
                write_facts(out, field::REPLY_FACTS, &reply.facts);
                out[field::REPLY_STARTER_ROLE] = reply.starter_role.to_byte();
                out[field::REPLY_JOINER_ROLE] = reply.joiner_role.to_byte();
                out[field::REPLY_SPAKE].copy_from_slice(&reply.spake);
                out[field::REPLY_TAG].copy_from_slice(&reply.tag);
            }
            Repr::Confirm(confirm) => {
                out[field::JOINER_NONCE].copy_from_slice(&confirm.joiner_nonce);
                out[field::CONFIRM_STARTER_NONCE].copy_from_slice(&confirm.starter_nonce);
                out[field::CONFIRM_TAG].copy_from_slice(&confirm.tag);
            }
            Repr::Result(result) => {
                out[field::JOINER_NONCE].copy_from_slice(&result.joiner_nonce);
                out[field::RESULT_STARTER_NONCE].copy_from_slice(&result.starter_nonce);
                out[field::RESULT_OUTCOME] = result.code.to_byte();
                if let ResultCode::WrongCode { tries_left } = result.code {
                    out[field::RESULT_TRIES] = tries_left;
                }
                write_versions(out, field::RESULT_VERSIONS, &result.versions);
                if let ResultCode::Paired { tag } = result.code {
                    out[field::RESULT_TAG].copy_from_slice(&tag);
                }
            }
        }
        Ok(needed)
    }
}

fn write_versions(out: &mut [u8], at: usize, versions: &Versions) {
    out[at + field::FACT_PAIRING..at + field::FACT_PAIRING + 2]
        .copy_from_slice(&versions.pairing.to_be_bytes());
    out[at + field::FACT_CHANNEL..at + field::FACT_CHANNEL + 2]
        .copy_from_slice(&versions.channel.to_be_bytes());
    out[at + field::FACT_BLOB..at + field::FACT_BLOB + 2]
        .copy_from_slice(&versions.blob.to_be_bytes());
}

fn write_facts(out: &mut [u8], at: usize, facts: &BoxFacts) {
    write_versions(out, at, &facts.versions);
    out[at + field::FACT_ROLE] = facts.role.map_or(0, Role::to_byte);
    out[at + field::FACT_GENERATION..at + field::FACT_GENERATION + 8]
        .copy_from_slice(&facts.generation.to_be_bytes());
}

/// The part of a message its tag covers: everything before the last [`TAG_LEN`] bytes (the
/// whole message for types without a tag is the caller's business: see `tandem_pair`).
pub fn signed_part(datagram: &[u8]) -> &[u8] {
    &datagram[..datagram.len().saturating_sub(TAG_LEN)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    const FACTS: BoxFacts = BoxFacts {
        versions: Versions {
            pairing: 1,
            channel: 1,
            blob: 3,
        },
        role: Some(Role::B),
        generation: 0x0102_0304_0506_0708,
    };

    fn spake(side: u8) -> SpakeMessage {
        let mut message = [0x5a; SPAKE_MSG_LEN];
        message[0] = side;
        message
    }

    fn samples() -> Vec<Repr> {
        let mut out = Vec::new();
        out.push(Repr::Hello(Hello {
            joiner_nonce: [1; 16],
            facts: BoxFacts {
                role: None,
                ..FACTS
            },
            spake: spake(SPAKE_SIDE_JOINER),
        }));
        out.push(Repr::Reply(Reply {
            joiner_nonce: [1; 16],
            starter_nonce: [2; 16],
            facts: FACTS,
            starter_role: Role::B,
            joiner_role: Role::A,
            spake: spake(SPAKE_SIDE_STARTER),
            tag: [3; 32],
        }));
        out.push(Repr::Confirm(Confirm {
            joiner_nonce: [1; 16],
            starter_nonce: [2; 16],
            tag: [4; 32],
        }));
        for code in [
            ResultCode::Paired { tag: [5; 32] },
            ResultCode::WrongCode { tries_left: 2 },
            ResultCode::Locked,
            ResultCode::Expired,
            ResultCode::Busy,
            ResultCode::VersionRefused,
        ] {
            out.push(Repr::Result(ResultMessage {
                joiner_nonce: [1; 16],
                starter_nonce: [2; 16],
                code,
                versions: FACTS.versions,
            }));
        }
        out
    }

    fn emitted(repr: &Repr) -> Vec<u8> {
        let mut buffer = [0u8; MAX_DATAGRAM_LEN];
        let len = repr.emit(&mut buffer).unwrap();
        assert_eq!(len, repr.buffer_len());
        buffer[..len].to_vec()
    }

    #[test]
    fn every_message_round_trips() {
        for repr in samples() {
            let bytes = emitted(&repr);
            assert_eq!(Repr::decode(&bytes).unwrap(), repr, "{repr:?}");
            let packet = Packet::new_checked(&bytes[..]).unwrap();
            assert_eq!(packet.message_type(), Some(repr.message_type()));
            assert_eq!(packet.joiner_nonce(), [1; 16]);
        }
    }

    #[test]
    fn layout_matches_the_table() {
        let hello = emitted(&samples()[0]);
        assert_eq!(hello.len(), 73);
        assert_eq!(&hello[..8], b"TDPR\x01\x01\x00\x00");
        assert_eq!(
            &hello[24..40],
            &[0, 1, 0, 1, 0, 3, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert_eq!(hello[40], b'A');
        let reply = emitted(&samples()[1]);
        assert_eq!(reply.len(), 123);
        assert_eq!(reply[46], 2, "stored role b");
        assert_eq!((reply[56], reply[57]), (2, 1));
        assert_eq!(reply[58], b'B');
        assert_eq!(&reply[91..], &[3; 32]);
        assert_eq!(signed_part(&reply).len(), 91);
        let wrong = emitted(&samples()[4]);
        assert_eq!(wrong.len(), 48);
        assert_eq!((wrong[40], wrong[41]), (2, 2));
        assert_eq!(&wrong[42..48], &[0, 1, 0, 1, 0, 3]);
        assert_eq!(emitted(&samples()[3]).len(), 80);
    }

    #[test]
    fn refusals_name_their_reason() {
        let reply = emitted(&samples()[1]);
        let refused = |bytes: &[u8]| Repr::decode(bytes).unwrap_err();
        assert_eq!(refused(&reply[..5]), PairingWireError::BadLength { len: 5 });
        assert_eq!(
            refused(&reply[..122]),
            PairingWireError::BadLength { len: 122 }
        );
        let mut long = reply.clone();
        long.push(0);
        assert_eq!(refused(&long), PairingWireError::BadLength { len: 124 });
        let mut bad = reply.clone();
        bad[0] = b'X';
        assert_eq!(refused(&bad), PairingWireError::BadMagic);
        let mut bad = reply.clone();
        bad[4] = 2;
        assert_eq!(
            refused(&bad),
            PairingWireError::UnsupportedVersion { version: 2 }
        );
        let mut bad = reply.clone();
        bad[5] = 9;
        assert_eq!(
            refused(&bad),
            PairingWireError::UnknownType { message_type: 9 }
        );
        let mut bad = reply.clone();
        bad[7] = 1;
        assert_eq!(refused(&bad), PairingWireError::Reserved);
        let mut bad = reply.clone();
        bad[47] = 1;
        assert_eq!(refused(&bad), PairingWireError::Reserved);
        let mut bad = reply.clone();
        bad[46] = 3;
        assert_eq!(refused(&bad), PairingWireError::BadRole);
        let mut bad = reply.clone();
        bad[57] = 2;
        assert_eq!(refused(&bad), PairingWireError::BadRole);
        let mut bad = reply.clone();
        bad[8..24].fill(0);
        assert_eq!(refused(&bad), PairingWireError::BadNonce);
        let mut bad = reply.clone();
        bad[24..40].fill(0);
        assert_eq!(refused(&bad), PairingWireError::BadNonce);
        let mut bad = reply.clone();
        bad[58] = b'A';
        assert_eq!(refused(&bad), PairingWireError::BadSpakeMessage);
        let mut hello = emitted(&samples()[0]);
        hello[40] = b'S';
        assert_eq!(refused(&hello), PairingWireError::BadSpakeMessage);

        let mut wrong = emitted(&samples()[4]);
        wrong[41] = 0;
        assert_eq!(refused(&wrong), PairingWireError::BadOutcome);
        let mut locked = emitted(&samples()[5]);
        locked[41] = 1;
        assert_eq!(refused(&locked), PairingWireError::BadOutcome);
        locked[41] = 0;
        locked[40] = 7;
        assert_eq!(refused(&locked), PairingWireError::BadOutcome);
        // A "paired" outcome in a 48-byte RESULT: the length does not fit the outcome.
        locked[40] = 1;
        assert_eq!(refused(&locked), PairingWireError::BadLength { len: 48 });
        for error in [
            PairingWireError::BadMagic,
            PairingWireError::BadOutcome,
            PairingWireError::BufferTooSmall { needed: 1, len: 0 },
        ] {
            assert!(!error.reason().is_empty());
            assert!(std::format!("{error}").contains("pairing"));
        }
    }

    #[test]
    fn emit_refuses_what_would_not_decode() {
        let mut buffer = [0u8; MAX_DATAGRAM_LEN];
        let Repr::Reply(mut reply) = samples()[1] else {
            unreachable!()
        };
        reply.joiner_role = Role::B;
        assert_eq!(
            Repr::Reply(reply).emit(&mut buffer).unwrap_err(),
            PairingWireError::BadRole
        );
        let Repr::Result(mut result) = samples()[4] else {
            unreachable!()
        };
        result.code = ResultCode::WrongCode { tries_left: 0 };
        assert_eq!(
            Repr::Result(result).emit(&mut buffer).unwrap_err(),
            PairingWireError::BadOutcome
        );
        // A result that answers a HELLO may have no starter nonce, a paired one may not.
        result.starter_nonce = [0; 16];
        result.code = ResultCode::Busy;
        assert!(Repr::decode(&emitted(&Repr::Result(result))).is_ok());
        result.code = ResultCode::Paired { tag: [1; 32] };
        assert_eq!(
            Repr::Result(result).emit(&mut buffer).unwrap_err(),
            PairingWireError::BadNonce
        );
        let mut small = [0u8; 72];
        assert_eq!(
            samples()[1].emit(&mut small).unwrap_err(),
            PairingWireError::BufferTooSmall {
                needed: 123,
                len: 72
            }
        );
    }

    #[test]
    fn unchecked_views_never_panic() {
        for len in 0..=MAX_DATAGRAM_LEN + 2 {
            let bytes = [0xffu8; MAX_DATAGRAM_LEN + 2];
            let packet = Packet::new_unchecked(&bytes[..len]);
            let _ = (
                packet.joiner_nonce(),
                packet.starter_nonce(),
                packet.version(),
            );
            let _ = Repr::parse(&packet);
        }
    }
}
