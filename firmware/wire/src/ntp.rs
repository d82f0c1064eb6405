//! NTP packets (RFC 5905 section 7.3) as an SNTP client (RFC 4330) sends and reads them: the
//! 48-byte header, with the 64-bit timestamps and the 32-bit short format.
//!
//! The box asks its configured time servers for the time over UDP port 123; a reply comes off
//! the management network, where anyone can send anything, so the view never panics on any
//! bytes and every decision about a reply (its mode, stratum, kiss code, origin timestamp) is
//! the client's, made on the parsed [`NtpRepr`]. Extension fields and a MAC after the header
//! (NTPv4 with symmetric keys or NTS) are ignored: the client sends none and needs none.

use core::fmt;
use core::time::Duration;

/// UDP port of NTP servers.
pub const NTP_PORT: u16 = 123;
/// Length of the NTP header (what a client request is, and the least a reply has).
pub const HEADER_LEN: usize = 48;
/// Seconds from the NTP prime epoch (1900-01-01 00:00 UTC) to the Unix epoch.
pub const UNIX_EPOCH_NTP_SECONDS: u64 = 2_208_988_800;

mod field {
    use core::ops::Range;

    pub const LI_VN_MODE: usize = 0;
    pub const STRATUM: usize = 1;
    pub const POLL: usize = 2;
    pub const PRECISION: usize = 3;
    pub const ROOT_DELAY: Range<usize> = 4..8;
    pub const ROOT_DISPERSION: Range<usize> = 8..12;
    pub const REFERENCE_ID: Range<usize> = 12..16;
    pub const REFERENCE_TIMESTAMP: Range<usize> = 16..24;
    pub const ORIGIN_TIMESTAMP: Range<usize> = 24..32;
    pub const RECEIVE_TIMESTAMP: Range<usize> = 32..40;
    pub const TRANSMIT_TIMESTAMP: Range<usize> = 40..48;
}

/// Why bytes are not an NTP packet, or why one could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NtpError {
    /// Fewer bytes than the 48-byte NTP header.
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// The output buffer is too small.
    BufferTooSmall {
        /// Bytes the packet needs.
        needed: usize,
        /// Bytes available.
        len: usize,
    },
}

impl fmt::Display for NtpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            NtpError::Truncated { len } => write!(
                f,
                "{len}-byte datagram is shorter than an NTP header ({HEADER_LEN} bytes); \
                 the sender is not an NTP server (or the reply was cut)"
            ),
            NtpError::BufferTooSmall { needed, len } => write!(
                f,
                "buffer of {len} bytes cannot hold a {needed}-byte NTP packet; pass a larger buffer"
            ),
        }
    }
}

/// The leap indicator (two bits): a leap second at the end of the day, or the server's clock
/// not synchronised (3, "alarm").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leap {
    /// 0: no warning.
    None,
    /// 1: the last minute of the day has 61 seconds.
    Insert,
    /// 2: the last minute of the day has 59 seconds.
    Delete,
    /// 3: the server's clock is not synchronised.
    Unsynchronised,
}

impl Leap {
    fn from_bits(bits: u8) -> Leap {
        match bits & 0b11 {
            0 => Leap::None,
            1 => Leap::Insert,
            2 => Leap::Delete,
            _ => Leap::Unsynchronised,
        }
    }

    fn bits(self) -> u8 {
        match self {
            Leap::None => 0,
            Leap::Insert => 1,
            Leap::Delete => 2,
            Leap::Unsynchronised => 3,
        }
    }
}

/// The association mode (three bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// 0: reserved.
    Reserved,
    /// 1: symmetric active.
    SymmetricActive,
    /// 2: symmetric passive.
    SymmetricPassive,
    /// 3: client (what the box sends).
    Client,
    /// 4: server (the only mode a reply may have).
    Server,
    /// 5: broadcast.
    Broadcast,
    /// 6: NTP control message.
    Control,
    /// 7: private use.
    Private,
}

impl Mode {
    fn from_bits(bits: u8) -> Mode {
        match bits & 0b111 {
            0 => Mode::Reserved,
            1 => Mode::SymmetricActive,
            2 => Mode::SymmetricPassive,
            3 => Mode::Client,
            4 => Mode::Server,
            5 => Mode::Broadcast,
            6 => Mode::Control,
            _ => Mode::Private,
        }
    }

    fn bits(self) -> u8 {
        match self {
            Mode::Reserved => 0,
            Mode::SymmetricActive => 1,
            Mode::SymmetricPassive => 2,
            Mode::Client => 3,
            Mode::Server => 4,
            Mode::Broadcast => 5,
            Mode::Control => 6,
            Mode::Private => 7,
        }
    }
}

/// An NTP timestamp: seconds since 1900 (modulo 2^32: the era is not on the wire) in the high
/// 32 bits, the fraction of a second in the low 32.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Timestamp(pub u64);

impl Timestamp {
    /// Zero: "unknown" in every timestamp field (a server's reply with a zero transmit
    /// timestamp is refused).
    pub const ZERO: Timestamp = Timestamp(0);

    /// The whole seconds (since 1900, modulo 2^32).
    pub fn seconds(self) -> u32 {
        u32::try_from(self.0 >> 32).unwrap_or(u32::MAX)
    }

    /// The fraction of a second, in units of 2^-32 s.
    pub fn fraction(self) -> u32 {
        u32::try_from(self.0 & 0xffff_ffff).unwrap_or(u32::MAX)
    }

    /// The timestamp of `since_unix_epoch` (wrapped into its era).
    pub fn from_unix(since_unix_epoch: Duration) -> Timestamp {
        let seconds = (since_unix_epoch.as_secs() + UNIX_EPOCH_NTP_SECONDS) & 0xffff_ffff;
        let fraction = (u64::from(since_unix_epoch.subsec_nanos()) << 32) / 1_000_000_000;
        Timestamp((seconds << 32) | fraction)
    }

    /// Nanoseconds since the Unix epoch (negative before 1970), reading the era as RFC 4330
    /// section 3 does: a timestamp with the top bit of its seconds set is in 1968-2036 (era
    /// 0), one without it in 2036-2104 (era 1).
    pub fn to_unix_nanos(self) -> i128 {
        let mut seconds = i128::from(self.seconds());
        if seconds < 1 << 31 {
            seconds += 1 << 32;
        }
        let nanos = (i128::from(self.fraction()) * 1_000_000_000) >> 32;
        (seconds - i128::from(UNIX_EPOCH_NTP_SECONDS)) * 1_000_000_000 + nanos
    }
}

/// A short-format duration (16.16 fixed point seconds): root delay and root dispersion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Short(pub u32);

impl Short {
    /// The duration in nanoseconds.
    pub fn nanos(self) -> u64 {
        (u64::from(self.0) * 1_000_000_000) >> 16
    }
}

/// A server's kiss-o'-death code (RFC 5905 section 7.4): a reply with stratum 0 carries it as
/// four ASCII characters in the reference id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KissCode {
    /// `DENY`: access denied; stop asking this server.
    Deny,
    /// `RSTR`: access restricted; stop asking this server.
    Restrict,
    /// `RATE`: asking too often; ask less often.
    Rate,
    /// Any other code (`INIT`, `STEP`, ...): this reply carries no time.
    Other([u8; 4]),
}

impl KissCode {
    /// The code of reference id `id`.
    pub fn from_reference_id(id: [u8; 4]) -> KissCode {
        match &id {
            b"DENY" => KissCode::Deny,
            b"RSTR" => KissCode::Restrict,
            b"RATE" => KissCode::Rate,
            _ => KissCode::Other(id),
        }
    }
}

impl fmt::Display for KissCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = match self {
            KissCode::Deny => *b"DENY",
            KissCode::Restrict => *b"RSTR",
            KissCode::Rate => *b"RATE",
            KissCode::Other(id) => *id,
        };
        for byte in id {
            if byte.is_ascii_graphic() {
                write!(f, "{}", char::from(byte))?;
            } else {
                write!(f, "\\x{byte:02x}")?;
            }
        }
        Ok(())
    }
}

/// A zero-copy view of an NTP packet (the 48-byte header; anything after it is ignored).
#[derive(Debug, Clone)]
pub struct NtpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> NtpPacket<T> {
    /// Wraps `buffer` without checking its length; accessors may then return zeros for
    /// missing bytes (never panic).
    pub fn new_unchecked(buffer: T) -> NtpPacket<T> {
        NtpPacket { buffer }
    }

    /// Wraps `buffer` after checking it holds the whole header.
    pub fn new_checked(buffer: T) -> Result<NtpPacket<T>, NtpError> {
        let packet = NtpPacket::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Whether the buffer holds the 48-byte header.
    pub fn check_len(&self) -> Result<(), NtpError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(NtpError::Truncated { len });
        }
        Ok(())
    }

    /// The wrapped buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn byte(&self, at: usize) -> u8 {
        self.buffer.as_ref().get(at).copied().unwrap_or(0)
    }

    fn array<const N: usize>(&self, range: core::ops::Range<usize>) -> [u8; N] {
        self.buffer
            .as_ref()
            .get(range)
            .and_then(|bytes| <[u8; N]>::try_from(bytes).ok())
            .unwrap_or([0; N])
    }

    /// The leap indicator.
    pub fn leap(&self) -> Leap {
        Leap::from_bits(self.byte(field::LI_VN_MODE) >> 6)
    }

    /// The version number (1 to 4 in use; 0 and 5 to 7 are nobody's).
    pub fn version(&self) -> u8 {
        (self.byte(field::LI_VN_MODE) >> 3) & 0b111
    }

    /// The association mode.
    pub fn mode(&self) -> Mode {
        Mode::from_bits(self.byte(field::LI_VN_MODE))
    }

    /// The stratum: 0 a kiss-o'-death, 1 a primary server, 2..=15 secondary, 16 unsynchronised.
    pub fn stratum(&self) -> u8 {
        self.byte(field::STRATUM)
    }

    /// The poll exponent (log2 seconds).
    pub fn poll(&self) -> i8 {
        i8::from_be_bytes([self.byte(field::POLL)])
    }

    /// The precision exponent of the server's clock (log2 seconds).
    pub fn precision(&self) -> i8 {
        i8::from_be_bytes([self.byte(field::PRECISION)])
    }

    /// Round-trip delay to the reference clock.
    pub fn root_delay(&self) -> Short {
        Short(u32::from_be_bytes(self.array(field::ROOT_DELAY)))
    }

    /// Dispersion to the reference clock.
    pub fn root_dispersion(&self) -> Short {
        Short(u32::from_be_bytes(self.array(field::ROOT_DISPERSION)))
    }

    /// The reference id: a kiss code at stratum 0, a refclock name at 1, the upstream
    /// server's IPv4 address (or an IPv6 address's hash) above.
    pub fn reference_id(&self) -> [u8; 4] {
        self.array(field::REFERENCE_ID)
    }

    fn timestamp(&self, range: core::ops::Range<usize>) -> Timestamp {
        Timestamp(u64::from_be_bytes(self.array(range)))
    }

    /// When the server's clock was last set.
    pub fn reference_timestamp(&self) -> Timestamp {
        self.timestamp(field::REFERENCE_TIMESTAMP)
    }

    /// The request's transmit timestamp, copied by the server (T1 as the client sent it).
    pub fn origin_timestamp(&self) -> Timestamp {
        self.timestamp(field::ORIGIN_TIMESTAMP)
    }

    /// When the request reached the server (T2).
    pub fn receive_timestamp(&self) -> Timestamp {
        self.timestamp(field::RECEIVE_TIMESTAMP)
    }

    /// When the reply left the server (T3); a client's own request carries its nonce here.
    pub fn transmit_timestamp(&self) -> Timestamp {
        self.timestamp(field::TRANSMIT_TIMESTAMP)
    }

    /// The kiss code of a stratum 0 packet (None above stratum 0).
    pub fn kiss_code(&self) -> Option<KissCode> {
        (self.stratum() == 0).then(|| KissCode::from_reference_id(self.reference_id()))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> NtpPacket<T> {
    fn put(&mut self, range: core::ops::Range<usize>, bytes: &[u8]) {
        if let Some(slot) = self.buffer.as_mut().get_mut(range) {
            slot.copy_from_slice(bytes);
        }
    }

    fn put_byte(&mut self, at: usize, value: u8) {
        if let Some(slot) = self.buffer.as_mut().get_mut(at) {
            *slot = value;
        }
    }

    /// Sets leap indicator, version and mode.
    pub fn set_leap_version_mode(&mut self, leap: Leap, version: u8, mode: Mode) {
        self.put_byte(
            field::LI_VN_MODE,
            (leap.bits() << 6) | ((version & 0b111) << 3) | mode.bits(),
        );
    }

    /// Sets the stratum.
    pub fn set_stratum(&mut self, stratum: u8) {
        self.put_byte(field::STRATUM, stratum);
    }

    /// Sets the poll exponent.
    pub fn set_poll(&mut self, poll: i8) {
        self.put_byte(field::POLL, poll.to_be_bytes()[0]);
    }

    /// Sets the precision exponent.
    pub fn set_precision(&mut self, precision: i8) {
        self.put_byte(field::PRECISION, precision.to_be_bytes()[0]);
    }

    /// Sets the root delay.
    pub fn set_root_delay(&mut self, value: Short) {
        self.put(field::ROOT_DELAY, &value.0.to_be_bytes());
    }

    /// Sets the root dispersion.
    pub fn set_root_dispersion(&mut self, value: Short) {
        self.put(field::ROOT_DISPERSION, &value.0.to_be_bytes());
    }

    /// Sets the reference id.
    pub fn set_reference_id(&mut self, id: [u8; 4]) {
        self.put(field::REFERENCE_ID, &id);
    }

    /// Sets the reference timestamp.
    pub fn set_reference_timestamp(&mut self, value: Timestamp) {
        self.put(field::REFERENCE_TIMESTAMP, &value.0.to_be_bytes());
    }

    /// Sets the origin timestamp.
    pub fn set_origin_timestamp(&mut self, value: Timestamp) {
        self.put(field::ORIGIN_TIMESTAMP, &value.0.to_be_bytes());
    }

    /// Sets the receive timestamp.
    pub fn set_receive_timestamp(&mut self, value: Timestamp) {
        self.put(field::RECEIVE_TIMESTAMP, &value.0.to_be_bytes());
    }

    /// Sets the transmit timestamp.
    pub fn set_transmit_timestamp(&mut self, value: Timestamp) {
        self.put(field::TRANSMIT_TIMESTAMP, &value.0.to_be_bytes());
    }
}

/// The header's fields as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NtpRepr {
    pub leap: Leap,
    pub version: u8,
    pub mode: Mode,
    pub stratum: u8,
    pub poll: i8,
    pub precision: i8,
    pub root_delay: Short,
    pub root_dispersion: Short,
    pub reference_id: [u8; 4],
    pub reference_timestamp: Timestamp,
    pub origin_timestamp: Timestamp,
    pub receive_timestamp: Timestamp,
    pub transmit_timestamp: Timestamp,
}

impl NtpRepr {
    /// An SNTP client request (version 4, mode 3) carrying `nonce` as its transmit timestamp
    /// and nothing else: no clock reading of the box leaves it (RFC 9109's data
    /// minimisation), and the server's reply must echo the nonce as its origin timestamp.
    pub fn client_request(nonce: Timestamp) -> NtpRepr {
        NtpRepr {
            leap: Leap::None,
            version: 4,
            mode: Mode::Client,
            stratum: 0,
            poll: 0,
            precision: 0,
            root_delay: Short(0),
            root_dispersion: Short(0),
            reference_id: [0; 4],
            reference_timestamp: Timestamp::ZERO,
            origin_timestamp: Timestamp::ZERO,
            receive_timestamp: Timestamp::ZERO,
            transmit_timestamp: nonce,
        }
    }

    /// The fields of `packet` (checked with [`NtpPacket::new_checked`]).
    pub fn parse<T: AsRef<[u8]>>(packet: &NtpPacket<T>) -> NtpRepr {
        NtpRepr {
            leap: packet.leap(),
            version: packet.version(),
            mode: packet.mode(),
            stratum: packet.stratum(),
            poll: packet.poll(),
            precision: packet.precision(),
            root_delay: packet.root_delay(),
            root_dispersion: packet.root_dispersion(),
            reference_id: packet.reference_id(),
            reference_timestamp: packet.reference_timestamp(),
            origin_timestamp: packet.origin_timestamp(),
            receive_timestamp: packet.receive_timestamp(),
            transmit_timestamp: packet.transmit_timestamp(),
        }
    }

    /// Bytes [`NtpRepr::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// The kiss code, when this is a stratum 0 packet.
    pub fn kiss_code(&self) -> Option<KissCode> {
        (self.stratum == 0).then(|| KissCode::from_reference_id(self.reference_id))
    }

    /// Writes the header into the start of `buffer`; returns its length.
    pub fn emit(&self, buffer: &mut [u8]) -> Result<usize, NtpError> {
        let len = buffer.len();
        let header = buffer
            .get_mut(..HEADER_LEN)
            .ok_or(NtpError::BufferTooSmall {
                needed: HEADER_LEN,
                len,
            })?;
        let mut packet = NtpPacket::new_unchecked(header);
        packet.set_leap_version_mode(self.leap, self.version, self.mode);
        packet.set_stratum(self.stratum);
        packet.set_poll(self.poll);
        packet.set_precision(self.precision);
        packet.set_root_delay(self.root_delay);
        packet.set_root_dispersion(self.root_dispersion);
        packet.set_reference_id(self.reference_id);
        packet.set_reference_timestamp(self.reference_timestamp);
        packet.set_origin_timestamp(self.origin_timestamp);
        packet.set_receive_timestamp(self.receive_timestamp);
        packet.set_transmit_timestamp(self.transmit_timestamp);
        Ok(HEADER_LEN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply of chrony 4.3 (`local stratum 8`, in a namespace) to a request whose transmit
    /// timestamp was 0x0123456789abcdef: leap 0, version 4, mode 4, stratum 8, poll 0 (the
    /// request's), precision -26, reference id 127.127.1.1 (its local clock).
    const CHRONY_REPLY: [u8; 48] = [
        0x24, 0x08, 0x00, 0xe6, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x7f, 0x7f, 0x01,
        0x01, 0xee, 0xbb, 0xca, 0x6d, 0x23, 0xb7, 0x2d, 0xf2, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
        0xcd, 0xef, 0xee, 0xbb, 0xca, 0x6e, 0xc1, 0xd5, 0x4e, 0xcd, 0xee, 0xbb, 0xca, 0x6e, 0xc1,
        0xd9, 0xf9, 0xc8,
    ];

    #[test]
    fn a_server_reply_reads_field_by_field_and_emits_back_the_same_bytes() {
        let packet = NtpPacket::new_checked(&CHRONY_REPLY[..]).unwrap();
        let repr = NtpRepr::parse(&packet);
        assert_eq!(repr.leap, Leap::None);
        assert_eq!(repr.version, 4);
        assert_eq!(repr.mode, Mode::Server);
        assert_eq!(repr.stratum, 8);
        assert_eq!(repr.poll, 0);
        assert_eq!(repr.precision, -26);
        assert_eq!(repr.reference_id, [127, 127, 1, 1]);
        assert_eq!(repr.origin_timestamp, Timestamp(0x0123_4567_89ab_cdef));
        assert_eq!(repr.kiss_code(), None);
        assert!(repr.transmit_timestamp > repr.receive_timestamp);
        // 0xeebbca6e seconds since 1900 (era 0): 2026-12-03 11:01:02 UTC.
        let unix = repr.receive_timestamp.to_unix_nanos() / 1_000_000_000;
        assert_eq!(unix, 0xeebb_ca6e - 2_208_988_800);
        assert_eq!(unix, 1_796_295_662);
        let mut out = [0u8; HEADER_LEN];
        assert_eq!(repr.emit(&mut out), Ok(HEADER_LEN));
        assert_eq!(out, CHRONY_REPLY);
    }

    #[test]
    fn a_client_request_carries_only_the_nonce() {
        let repr = NtpRepr::client_request(Timestamp(0x1122_3344_5566_7788));
        let mut out = [0xffu8; 60];
        assert_eq!(repr.emit(&mut out), Ok(48));
        assert_eq!(out[0], 0x23, "leap 0, version 4, mode 3");
        assert!(out[1..40].iter().all(|b| *b == 0));
        assert_eq!(out[40..48], 0x1122_3344_5566_7788u64.to_be_bytes());
        assert_eq!(out[48..], [0xff; 12], "nothing written past the header");
        assert_eq!(
            repr.emit(&mut [0u8; 47]),
            Err(NtpError::BufferTooSmall {
                needed: 48,
                len: 47
            })
        );
    }

    #[test]
    fn short_and_odd_packets_never_panic() {
        assert_eq!(
            NtpPacket::new_checked(&[0u8; 47][..]).unwrap_err(),
            NtpError::Truncated { len: 47 }
        );
        let unchecked = NtpPacket::new_unchecked(&[0xe7u8][..]);
        assert_eq!(unchecked.leap(), Leap::Unsynchronised);
        assert_eq!(unchecked.version(), 4);
        assert_eq!(unchecked.mode(), Mode::Private);
        assert_eq!(unchecked.transmit_timestamp(), Timestamp::ZERO);
        assert_eq!(unchecked.kiss_code(), Some(KissCode::Other([0; 4])));
        // Extension fields after the header are ignored.
        let mut long = [0u8; 68];
        long[..48].copy_from_slice(&CHRONY_REPLY);
        let packet = NtpPacket::new_checked(&long[..]).unwrap();
        assert_eq!(NtpRepr::parse(&packet).stratum, 8);
    }

    #[test]
    fn kiss_codes_are_read_at_stratum_zero_only() {
        let mut bytes = CHRONY_REPLY;
        bytes[1] = 0;
        bytes[12..16].copy_from_slice(b"RATE");
        let packet = NtpPacket::new_checked(&bytes[..]).unwrap();
        assert_eq!(packet.kiss_code(), Some(KissCode::Rate));
        bytes[12..16].copy_from_slice(b"DENY");
        assert_eq!(
            NtpRepr::parse(&NtpPacket::new_checked(&bytes[..]).unwrap()).kiss_code(),
            Some(KissCode::Deny)
        );
        bytes[12..16].copy_from_slice(b"RSTR");
        assert_eq!(
            NtpPacket::new_unchecked(&bytes[..]).kiss_code(),
            Some(KissCode::Restrict)
        );
        bytes[12..16].copy_from_slice(&[b'I', b'N', 0x01, b'T']);
        let code = NtpPacket::new_unchecked(&bytes[..]).kiss_code().unwrap();
        assert_eq!(std::format!("{code}"), "IN\\x01T");
        bytes[1] = 2;
        assert_eq!(NtpPacket::new_unchecked(&bytes[..]).kiss_code(), None);
    }

    #[test]
    fn timestamps_convert_across_eras() {
        let unix = Duration::new(1_700_000_000, 250_000_000);
        let stamp = Timestamp::from_unix(unix);
        assert_eq!(stamp.fraction(), 1 << 30);
        assert_eq!(stamp.to_unix_nanos(), 1_700_000_000_250_000_000);
        // 2040 is in era 1: the seconds wrapped past 2^32 on the wire.
        let later = Duration::from_secs(2_208_988_800);
        let stamp = Timestamp::from_unix(later);
        assert!(stamp.seconds() < 1 << 31);
        assert_eq!(stamp.to_unix_nanos(), 2_208_988_800_000_000_000);
        // The top of era 0 and the bottom of era 1 are one second apart.
        let end_of_era0 = Timestamp(0xffff_ffff << 32).to_unix_nanos();
        let start_of_era1 = Timestamp(0).to_unix_nanos();
        assert_eq!(start_of_era1 - end_of_era0, 1_000_000_000);
        // 1968 (era 0, top bit set) is before the Unix epoch.
        assert!(Timestamp(0x8000_0000 << 32).to_unix_nanos() < 0);
        assert_eq!(Short(0x0001_8000).nanos(), 1_500_000_000);
    }
}
