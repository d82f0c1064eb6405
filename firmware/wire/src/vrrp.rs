//! VRRP advertisements: VRRPv2 (RFC 3768, IPv4 only, with authentication) and VRRPv3
//! (RFC 9568, IPv4 and IPv6).
//!
//! The view ([`AdvertPacket`]) wraps the IP payload exactly as a raw `IPPROTO_VRRP` socket
//! delivers it (no IP header). The value type ([`AdvertRepr`]) borrows its address list, either
//! from the received bytes or from the caller's configuration, so neither parse nor emit
//! allocates.
//!
//! Checksums met in the field, all accepted on receive (the variant found is reported so the
//! caller can count it) and selectable on send:
//! - VRRPv2: the message alone (RFC 3768 section 5.3.8).
//! - VRRPv3 over IPv6: the RFC 8200 pseudo-header (source, destination, length, next header 112).
//! - VRRPv3 over IPv4 with the pseudo-header (RFC 5798 section 5.2.8; keepalived computes this
//!   one, so it is the default on send).
//! - VRRPv3 over IPv4 over the message alone (RFC 9568 section 5.2.8 as published, and older
//!   implementations).
//! - VRRPv3 over IPv4 with the pseudo-header naming 224.0.0.18 as destination although the
//!   packet was unicast (keepalived before `old_unicast_checksum` was fixed).
//!
//! Layout (both versions share the first four bytes and the checksum position):
//! ```text
//! v2: |ver=2|type|  VRID  |Priority|Count IP| AuthType|AdverInt(s)|  Checksum  | IPv4 addrs | Auth data (8)
//! v3: |ver=3|type|  VRID  |Priority|Count IP|rsvd|Max Adver Int(cs)|  Checksum  | IPvX addrs
//! ```

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::checksum;

/// IP protocol number of VRRP.
pub const PROTOCOL: u8 = 112;
/// TTL / hop limit every VRRP packet is sent with and must arrive with.
pub const REQUIRED_TTL: u8 = 255;
/// IPv4 multicast group of VRRP (224.0.0.18).
pub const IPV4_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// IPv6 multicast group of VRRP (ff02::12).
pub const IPV6_GROUP: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// The only packet type: ADVERTISEMENT.
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// Fixed header length, both versions.
pub const HEADER_LEN: usize = 8;
/// VRRPv2 authentication data length (always present in v2).
pub const V2_AUTH_DATA_LEN: usize = 8;
/// VRRPv2 authentication type: none.
pub const AUTH_TYPE_NONE: u8 = 0;
/// VRRPv2 authentication type: simple text password (RFC 2338; reserved in RFC 3768 but still
/// spoken by keepalived's `auth_type PASS`).
pub const AUTH_TYPE_SIMPLE_TEXT: u8 = 1;
/// Largest VRRPv3 Max Adver Int (12 bits of centiseconds).
pub const V3_MAX_INTERVAL_CS: u16 = 0x0fff;

mod field {
    pub const VER_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT: usize = 3;
    pub const V2_AUTH_TYPE: usize = 4;
    pub const V2_ADVER_INT: usize = 5;
    pub const V3_INTERVAL: core::ops::Range<usize> = 4..6;
    pub const CHECKSUM: core::ops::Range<usize> = 6..8;
}

/// VRRP protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Version {
    /// RFC 3768: IPv4 only, interval in seconds, authentication field.
    V2,
    /// RFC 9568: IPv4 and IPv6, interval in centiseconds.
    V3,
}

impl Version {
    /// The value of the 4-bit version field.
    pub const fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// Address family of the packet (given by the IP header it arrived in, never by the payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4: 4-byte addresses.
    Ipv4,
    /// IPv6: 16-byte addresses.
    Ipv6,
}

impl Family {
    /// Bytes per address in the address list.
    pub const fn address_len(self) -> usize {
        match self {
            Family::Ipv4 => 4,
            Family::Ipv6 => 16,
        }
    }

    /// Family of an address.
    pub const fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }
}

/// Source and destination of the IP packet carrying an advertisement (the checksum
/// pseudo-header needs them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpEndpoints {
    /// Carried in IPv4.
    V4 {
        /// IPv4 source address.
        src: Ipv4Addr,
        /// IPv4 destination (224.0.0.18, or a unicast peer).
        dst: Ipv4Addr,
    },
    /// Carried in IPv6.
    V6 {
        /// IPv6 source address (the sender's link-local address).
        src: Ipv6Addr,
        /// IPv6 destination (ff02::12, or a unicast peer).
        dst: Ipv6Addr,
    },
}

impl IpEndpoints {
    /// Endpoints of a multicast advertisement from `src` to the VRRP group of its family.
    pub const fn to_group(src: IpAddr) -> IpEndpoints {
        match src {
            IpAddr::V4(src) => IpEndpoints::V4 {
                src,
                dst: IPV4_GROUP,
            },
            IpAddr::V6(src) => IpEndpoints::V6 {
                src,
                dst: IPV6_GROUP,
            },
        }
    }

    /// Endpoints from a source and destination of the same family; `None` when they differ.
    pub const fn new(src: IpAddr, dst: IpAddr) -> Option<IpEndpoints> {
        match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => Some(IpEndpoints::V4 { src, dst }),
            (IpAddr::V6(src), IpAddr::V6(dst)) => Some(IpEndpoints::V6 { src, dst }),
            _ => None,
        }
    }

    /// The address family.
    pub const fn family(&self) -> Family {
        match self {
            IpEndpoints::V4 { .. } => Family::Ipv4,
            IpEndpoints::V6 { .. } => Family::Ipv6,
        }
    }

    /// The source address.
    pub const fn src(&self) -> IpAddr {
        match *self {
            IpEndpoints::V4 { src, .. } => IpAddr::V4(src),
            IpEndpoints::V6 { src, .. } => IpAddr::V6(src),
        }
    }
}

/// Which checksum form a VRRPv3-over-IPv4 advertisement is sent with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ipv4ChecksumMode {
    /// With the IPv4 pseudo-header (RFC 5798; keepalived sends and requires this form).
    #[default]
    PseudoHeader,
    /// Over the VRRP message alone (RFC 9568 section 5.2.8 as published; some older peers).
    MessageOnly,
}

/// The checksum form a received advertisement verified under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumVariant {
    /// VRRPv2: message only (the only v2 form).
    V2Message,
    /// VRRPv3 with the pseudo-header of the packet's real source and destination.
    PseudoHeader,
    /// VRRPv3 over IPv4 with the pseudo-header naming 224.0.0.18 though the packet was unicast
    /// (old keepalived unicast form).
    PseudoHeaderGroupDestination,
    /// VRRPv3 over IPv4 computed over the message alone.
    MessageOnly,
}

/// Why an advertisement could not be parsed or emitted. Each message names the field and what
/// to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// The payload is shorter than the 8-byte fixed VRRP header.
    Truncated {
        /// Bytes received.
        len: usize,
    },
    /// The version field is neither 2 nor 3.
    UnsupportedVersion {
        /// The version field found.
        version: u8,
    },
    /// The type field is not 1 (ADVERTISEMENT); RFC 9568 section 5.2.2 says discard.
    UnknownType {
        /// The type field found.
        kind: u8,
    },
    /// The payload is shorter than the fixed header plus `count` addresses (plus v2
    /// authentication data).
    TooShortForAddressCount {
        /// The Count IPvX Addr field.
        count: u8,
        /// Bytes the count requires.
        needed: usize,
        /// Bytes received.
        len: usize,
    },
    /// VRRPv2 is defined for IPv4 only, but this packet came in IPv6.
    V2OverIpv6,
    /// The checksum does not verify under any accepted form.
    BadChecksum {
        /// The checksum field found.
        found: u16,
    },
    /// The output buffer is too small for the advertisement.
    BufferTooSmall {
        /// Bytes the advertisement needs.
        needed: usize,
        /// Bytes available.
        len: usize,
    },
    /// The advertisement interval cannot be encoded in this version's field.
    IntervalNotRepresentable {
        /// Version being emitted.
        version: Version,
        /// The interval in centiseconds.
        centiseconds: u16,
    },
    /// The address list's family differs from the IP endpoints' family.
    AddressFamilyMismatch,
    /// More than 255 addresses.
    TooManyAddresses {
        /// Number of addresses given.
        count: usize,
    },
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WireError::Truncated { len } => write!(
                f,
                "VRRP payload is {len} bytes, shorter than the 8-byte header; discard it (the sender is broken or hostile)"
            ),
            WireError::UnsupportedVersion { version } => write!(
                f,
                "VRRP version field is {version}; only 2 (RFC 3768) and 3 (RFC 9568) exist, discard it"
            ),
            WireError::UnknownType { kind } => write!(
                f,
                "VRRP type field is {kind}; only 1 (ADVERTISEMENT) is defined, discard it"
            ),
            WireError::TooShortForAddressCount { count, needed, len } => write!(
                f,
                "VRRP Count IPvX Addr is {count}, which needs {needed} bytes, but only {len} arrived; discard it"
            ),
            WireError::V2OverIpv6 => write!(
                f,
                "VRRPv2 arrived over IPv6, where only VRRPv3 is defined; discard it"
            ),
            WireError::BadChecksum { found } => write!(
                f,
                "VRRP checksum {found:#06x} verifies under no accepted form (pseudo-header, message-only); discard it"
            ),
            WireError::BufferTooSmall { needed, len } => write!(
                f,
                "buffer of {len} bytes cannot hold a {needed}-byte advertisement; pass a larger buffer"
            ),
            WireError::IntervalNotRepresentable { version, centiseconds } => write!(
                f,
                "advertisement interval {centiseconds} cs cannot be encoded in VRRPv{}: v2 needs whole seconds 1-255, v3 needs 1-4095 cs",
                version.number()
            ),
            WireError::AddressFamilyMismatch => write!(
                f,
                "virtual addresses and IP endpoints are of different families; configure one family per instance"
            ),
            WireError::TooManyAddresses { count } => write!(
                f,
                "{count} virtual addresses given; VRRP carries at most 255 per advertisement"
            ),
        }
    }
}

/// Zero-copy view of a VRRP advertisement (the IP payload).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvertPacket<T: AsRef<[u8]>> {
    buffer: T,
    family: Family,
}

impl<T: AsRef<[u8]>> AdvertPacket<T> {
    /// Wraps a buffer without checking its length; accessors may panic until
    /// [`check_len`](Self::check_len) succeeds.
    pub const fn new_unchecked(buffer: T, family: Family) -> Self {
        AdvertPacket { buffer, family }
    }

    /// Wraps a buffer and checks that the fixed header, the counted addresses and (v2) the
    /// authentication data are all present.
    pub fn new_checked(buffer: T, family: Family) -> Result<Self, WireError> {
        let packet = Self::new_unchecked(buffer, family);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks the length against the header and the address count. Versions other than 2 are
    /// measured with the v3 layout (no authentication data).
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated { len });
        }
        let needed = self.message_len();
        if len < needed {
            return Err(WireError::TooShortForAddressCount {
                count: self.count(),
                needed,
                len,
            });
        }
        Ok(())
    }

    /// The family given at construction.
    pub const fn family(&self) -> Family {
        self.family
    }

    /// Returns the underlying buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    fn byte(&self, index: usize) -> u8 {
        self.buffer.as_ref()[index]
    }

    /// The 4-bit version field.
    pub fn version_field(&self) -> u8 {
        self.byte(field::VER_TYPE) >> 4
    }

    /// The 4-bit type field.
    pub fn kind(&self) -> u8 {
        self.byte(field::VER_TYPE) & 0x0f
    }

    /// Virtual Router Identifier.
    pub fn vrid(&self) -> u8 {
        self.byte(field::VRID)
    }

    /// Sender's priority (0 = leaving, 255 = address owner).
    pub fn priority(&self) -> u8 {
        self.byte(field::PRIORITY)
    }

    /// Count IPvX Addr.
    pub fn count(&self) -> u8 {
        self.byte(field::COUNT)
    }

    /// VRRPv2 Auth Type (meaningless for v3, where these bits are the interval).
    pub fn v2_auth_type(&self) -> u8 {
        self.byte(field::V2_AUTH_TYPE)
    }

    /// VRRPv2 Adver Int in seconds.
    pub fn v2_adver_int(&self) -> u8 {
        self.byte(field::V2_ADVER_INT)
    }

    /// VRRPv3 Max Adver Int in centiseconds (the low 12 bits; the 4 reserved bits ignored).
    pub fn v3_max_adver_int(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::V3_INTERVAL];
        u16::from_be_bytes([b[0], b[1]]) & V3_MAX_INTERVAL_CS
    }

    /// The checksum field.
    pub fn checksum(&self) -> u16 {
        let b = &self.buffer.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    fn has_v2_layout(&self) -> bool {
        self.version_field() == 2
    }

    /// Bytes of the address list the count announces.
    pub fn addresses_len(&self) -> usize {
        usize::from(self.count()) * self.family.address_len()
    }

    /// Length of the VRRP message the header describes (header, addresses, v2 auth data).
    /// Bytes past it are not part of the message.
    pub fn message_len(&self) -> usize {
        let auth = if self.has_v2_layout() {
            V2_AUTH_DATA_LEN
        } else {
            0
        };
        HEADER_LEN + self.addresses_len() + auth
    }

    /// The raw address list.
    pub fn address_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..HEADER_LEN + self.addresses_len()]
    }

    /// VRRPv2 authentication data (8 bytes); empty for other versions.
    pub fn v2_auth_data(&self) -> &[u8] {
        if self.has_v2_layout() {
            let start = HEADER_LEN + self.addresses_len();
            &self.buffer.as_ref()[start..start + V2_AUTH_DATA_LEN]
        } else {
            &[]
        }
    }

    /// The VRRP message: header through the last counted field.
    pub fn message(&self) -> &[u8] {
        &self.buffer.as_ref()[..self.message_len()]
    }

    /// Verifies the checksum under every accepted form for this version and family and says
    /// which one matched.
    pub fn verify_checksum(&self, endpoints: &IpEndpoints) -> Result<ChecksumVariant, WireError> {
        let message = self.message();
        let bad = Err(WireError::BadChecksum {
            found: self.checksum(),
        });
        if self.has_v2_layout() {
            return if checksum::finish(checksum::accumulate(0, message)) == 0 {
                Ok(ChecksumVariant::V2Message)
            } else {
                bad
            };
        }
        let Ok(length) = u16::try_from(message.len()) else {
            return bad;
        };
        match *endpoints {
            IpEndpoints::V6 { src, dst } => {
                let pseudo = checksum::ipv6_pseudo_header(src, dst, PROTOCOL, u32::from(length));
                if checksum::finish(checksum::accumulate(pseudo, message)) == 0 {
                    Ok(ChecksumVariant::PseudoHeader)
                } else {
                    bad
                }
            }
            IpEndpoints::V4 { src, dst } => {
                let pseudo = checksum::ipv4_pseudo_header(src, dst, PROTOCOL, length);
                if checksum::finish(checksum::accumulate(pseudo, message)) == 0 {
                    return Ok(ChecksumVariant::PseudoHeader);
                }
                if checksum::finish(checksum::accumulate(0, message)) == 0 {
                    return Ok(ChecksumVariant::MessageOnly);
                }
                if dst != IPV4_GROUP {
                    let group = checksum::ipv4_pseudo_header(src, IPV4_GROUP, PROTOCOL, length);
                    if checksum::finish(checksum::accumulate(group, message)) == 0 {
                        return Ok(ChecksumVariant::PseudoHeaderGroupDestination);
                    }
                }
                bad
            }
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> AdvertPacket<T> {
    fn bytes_mut(&mut self) -> &mut [u8] {
        self.buffer.as_mut()
    }

    /// Sets version and type.
    pub fn set_version_and_type(&mut self, version: u8, kind: u8) {
        self.bytes_mut()[field::VER_TYPE] = (version << 4) | (kind & 0x0f);
    }

    /// Sets the VRID.
    pub fn set_vrid(&mut self, vrid: u8) {
        self.bytes_mut()[field::VRID] = vrid;
    }

    /// Sets the priority.
    pub fn set_priority(&mut self, priority: u8) {
        self.bytes_mut()[field::PRIORITY] = priority;
    }

    /// Sets the address count.
    pub fn set_count(&mut self, count: u8) {
        self.bytes_mut()[field::COUNT] = count;
    }

    /// Sets the v2 Auth Type and Adver Int bytes.
    pub fn set_v2_auth_type_and_interval(&mut self, auth_type: u8, seconds: u8) {
        let b = self.bytes_mut();
        b[field::V2_AUTH_TYPE] = auth_type;
        b[field::V2_ADVER_INT] = seconds;
    }

    /// Sets the v3 reserved bits to zero and Max Adver Int.
    pub fn set_v3_max_adver_int(&mut self, centiseconds: u16) {
        let value = centiseconds & V3_MAX_INTERVAL_CS;
        self.bytes_mut()[field::V3_INTERVAL].copy_from_slice(&value.to_be_bytes());
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.bytes_mut()[field::CHECKSUM].copy_from_slice(&value.to_be_bytes());
    }

    /// Mutable address list.
    pub fn address_bytes_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + self.addresses_len();
        &mut self.bytes_mut()[HEADER_LEN..end]
    }

    /// Mutable v2 authentication data (empty for v3).
    pub fn v2_auth_data_mut(&mut self) -> &mut [u8] {
        if self.has_v2_layout() {
            let start = HEADER_LEN + self.addresses_len();
            &mut self.bytes_mut()[start..start + V2_AUTH_DATA_LEN]
        } else {
            &mut []
        }
    }

    /// Computes and stores the checksum for `endpoints` (v2 and `MessageOnly` ignore them).
    pub fn fill_checksum(&mut self, endpoints: &IpEndpoints, mode: Ipv4ChecksumMode) {
        self.set_checksum(0);
        let message = self.message();
        let length = u16::try_from(message.len()).unwrap_or(u16::MAX);
        let start = if self.has_v2_layout() {
            0
        } else {
            match (*endpoints, mode) {
                (IpEndpoints::V6 { src, dst }, _) => {
                    checksum::ipv6_pseudo_header(src, dst, PROTOCOL, u32::from(length))
                }
                (IpEndpoints::V4 { src, dst }, Ipv4ChecksumMode::PseudoHeader) => {
                    checksum::ipv4_pseudo_header(src, dst, PROTOCOL, length)
                }
                (IpEndpoints::V4 { .. }, Ipv4ChecksumMode::MessageOnly) => 0,
            }
        };
        let sum = checksum::finish(checksum::accumulate(start, message));
        self.set_checksum(sum);
    }
}

/// VRRPv2 authentication.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Auth {
    /// Auth Type 0: no authentication (data zero on send, ignored on receive).
    None,
    /// Auth Type 1: simple text password, zero-padded to 8 bytes (keepalived `auth_type PASS`).
    SimpleText([u8; 8]),
    /// Any other Auth Type (2 = IP Authentication Header, or unassigned), kept for counting.
    Other {
        /// The Auth Type field.
        auth_type: u8,
        /// The authentication data.
        data: [u8; 8],
    },
}

impl Auth {
    /// A simple-text password as keepalived stores it: the first 8 bytes, zero padded.
    pub fn simple_text(password: &[u8]) -> Auth {
        let mut data = [0u8; 8];
        let n = password.len().min(8);
        data[..n].copy_from_slice(&password[..n]);
        Auth::SimpleText(data)
    }

    /// The Auth Type field value.
    pub const fn auth_type(&self) -> u8 {
        match self {
            Auth::None => AUTH_TYPE_NONE,
            Auth::SimpleText(_) => AUTH_TYPE_SIMPLE_TEXT,
            Auth::Other { auth_type, .. } => *auth_type,
        }
    }

    fn data(&self) -> [u8; 8] {
        match self {
            Auth::None => [0; 8],
            Auth::SimpleText(data) | Auth::Other { data, .. } => *data,
        }
    }
}

/// An address list: borrowed from received bytes, or from the caller's addresses for emit.
#[derive(Debug, Clone, Copy)]
pub enum AddressList<'a> {
    /// Raw bytes of a received list (length is a multiple of the family's address length).
    Wire {
        /// Address family.
        family: Family,
        /// The bytes.
        bytes: &'a [u8],
    },
    /// IPv4 addresses.
    Ipv4(&'a [Ipv4Addr]),
    /// IPv6 addresses.
    Ipv6(&'a [Ipv6Addr]),
}

impl<'a> AddressList<'a> {
    /// The family of the addresses.
    pub fn family(&self) -> Family {
        match self {
            AddressList::Wire { family, .. } => *family,
            AddressList::Ipv4(_) => Family::Ipv4,
            AddressList::Ipv6(_) => Family::Ipv6,
        }
    }

    /// Number of addresses.
    pub fn len(&self) -> usize {
        match self {
            AddressList::Wire { family, bytes } => bytes.len() / family.address_len(),
            AddressList::Ipv4(a) => a.len(),
            AddressList::Ipv6(a) => a.len(),
        }
    }

    /// True when the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Iterates the addresses in list order.
    pub fn iter(&self) -> AddressIter<'a> {
        AddressIter {
            list: *self,
            index: 0,
        }
    }

    /// True when `addr` is in the list.
    pub fn contains(&self, addr: IpAddr) -> bool {
        self.iter().any(|a| a == addr)
    }

    /// True when both lists hold the same addresses, in any order (duplicates must match in
    /// number too).
    pub fn same_set(&self, other: &AddressList<'_>) -> bool {
        self.len() == other.len()
            && self.iter().all(|a| {
                self.iter().filter(|&b| b == a).count() == other.iter().filter(|&b| b == a).count()
            })
    }
}

impl PartialEq for AddressList<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.family() == other.family()
            && self.len() == other.len()
            && self.iter().zip(other.iter()).all(|(a, b)| a == b)
    }
}

impl Eq for AddressList<'_> {}

/// Iterator over an [`AddressList`].
#[derive(Debug, Clone)]
pub struct AddressIter<'a> {
    list: AddressList<'a>,
    index: usize,
}

impl Iterator for AddressIter<'_> {
    type Item = IpAddr;

    fn next(&mut self) -> Option<IpAddr> {
        let i = self.index;
        let item = match self.list {
            AddressList::Wire {
                family: Family::Ipv4,
                bytes,
            } => {
                let b = bytes.get(i * 4..i * 4 + 4)?;
                IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
            }
            AddressList::Wire {
                family: Family::Ipv6,
                bytes,
            } => {
                let b: [u8; 16] = bytes.get(i * 16..i * 16 + 16)?.try_into().ok()?;
                IpAddr::V6(Ipv6Addr::from(b))
            }
            AddressList::Ipv4(a) => IpAddr::V4(*a.get(i)?),
            AddressList::Ipv6(a) => IpAddr::V6(*a.get(i)?),
        };
        self.index += 1;
        Some(item)
    }
}

/// A VRRP advertisement as values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvertRepr<'a> {
    /// Protocol version.
    pub version: Version,
    /// Virtual Router Identifier (1-255 on the wire; 0 is parsed and left to the receiver).
    pub vrid: u8,
    /// Sender priority.
    pub priority: u8,
    /// Advertisement interval in centiseconds (v2: seconds x 100).
    pub interval_cs: u16,
    /// Authentication (always [`Auth::None`] for v3).
    pub auth: Auth,
    /// Virtual addresses.
    pub addresses: AddressList<'a>,
}

impl<'a> AdvertRepr<'a> {
    /// Parses a checked packet: version 2 or 3, type ADVERTISEMENT, complete, checksum valid
    /// under an accepted form (returned alongside).
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &AdvertPacket<&'a T>,
        endpoints: &IpEndpoints,
    ) -> Result<(AdvertRepr<'a>, ChecksumVariant), WireError> {
        let version = match packet.version_field() {
            2 => Version::V2,
            3 => Version::V3,
            version => return Err(WireError::UnsupportedVersion { version }),
        };
        if packet.kind() != TYPE_ADVERTISEMENT {
            return Err(WireError::UnknownType {
                kind: packet.kind(),
            });
        }
        packet.check_len()?;
        if version == Version::V2 && packet.family() == Family::Ipv6 {
            return Err(WireError::V2OverIpv6);
        }
        let variant = packet.verify_checksum(endpoints)?;
        let bytes: &'a [u8] = packet.buffer.as_ref();
        let start = HEADER_LEN;
        let end = start + packet.addresses_len();
        let addresses = AddressList::Wire {
            family: packet.family(),
            bytes: &bytes[start..end],
        };
        let (interval_cs, auth) = match version {
            Version::V2 => {
                let mut data = [0u8; 8];
                data.copy_from_slice(packet.v2_auth_data());
                let auth = match packet.v2_auth_type() {
                    AUTH_TYPE_NONE => Auth::None,
                    AUTH_TYPE_SIMPLE_TEXT => Auth::SimpleText(data),
                    auth_type => Auth::Other { auth_type, data },
                };
                (u16::from(packet.v2_adver_int()) * 100, auth)
            }
            Version::V3 => (packet.v3_max_adver_int(), Auth::None),
        };
        let repr = AdvertRepr {
            version,
            vrid: packet.vrid(),
            priority: packet.priority(),
            interval_cs,
            auth,
            addresses,
        };
        Ok((repr, variant))
    }

    /// Bytes [`emit`](Self::emit) writes.
    pub fn buffer_len(&self) -> usize {
        let auth = match self.version {
            Version::V2 => V2_AUTH_DATA_LEN,
            Version::V3 => 0,
        };
        HEADER_LEN + self.addresses.len() * self.addresses.family().address_len() + auth
    }

    /// Writes the advertisement into the start of `buffer` (which must hold
    /// [`buffer_len`](Self::buffer_len) bytes) with its checksum, and returns the length
    /// written.
    pub fn emit(
        &self,
        buffer: &mut [u8],
        endpoints: &IpEndpoints,
        mode: Ipv4ChecksumMode,
    ) -> Result<usize, WireError> {
        let family = self.addresses.family();
        if family != endpoints.family() {
            return Err(WireError::AddressFamilyMismatch);
        }
        let count =
            u8::try_from(self.addresses.len()).map_err(|_| WireError::TooManyAddresses {
                count: self.addresses.len(),
            })?;
        let interval_error = WireError::IntervalNotRepresentable {
            version: self.version,
            centiseconds: self.interval_cs,
        };
        match self.version {
            Version::V2 if family == Family::Ipv6 => return Err(WireError::V2OverIpv6),
            Version::V2 if self.interval_cs == 0 || !self.interval_cs.is_multiple_of(100) => {
                return Err(interval_error)
            }
            Version::V3 if self.interval_cs == 0 || self.interval_cs > V3_MAX_INTERVAL_CS => {
                return Err(interval_error)
            }
            _ => {}
        }
        let needed = self.buffer_len();
        let len = buffer.len();
        let Some(out) = buffer.get_mut(..needed) else {
            return Err(WireError::BufferTooSmall { needed, len });
        };
        let mut packet = AdvertPacket::new_unchecked(out, family);
        packet.set_version_and_type(self.version.number(), TYPE_ADVERTISEMENT);
        packet.set_vrid(self.vrid);
        packet.set_priority(self.priority);
        packet.set_count(count);
        match self.version {
            Version::V2 => {
                let seconds = u8::try_from(self.interval_cs / 100).map_err(|_| interval_error)?;
                packet.set_v2_auth_type_and_interval(self.auth.auth_type(), seconds);
            }
            Version::V3 => packet.set_v3_max_adver_int(self.interval_cs),
        }
        let step = family.address_len();
        for (slot, addr) in packet
            .address_bytes_mut()
            .chunks_exact_mut(step)
            .zip(self.addresses.iter())
        {
            match addr {
                IpAddr::V4(a) => slot.copy_from_slice(&a.octets()),
                IpAddr::V6(a) => slot.copy_from_slice(&a.octets()),
            }
        }
        if self.version == Version::V2 {
            packet.v2_auth_data_mut().copy_from_slice(&self.auth.data());
        }
        packet.fill_checksum(endpoints, mode);
        Ok(needed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v3_ipv4_sample() -> ([u8; 16], IpEndpoints) {
        let addrs = [Ipv4Addr::new(10, 0, 0, 100), Ipv4Addr::new(10, 0, 0, 101)];
        let repr = AdvertRepr {
            version: Version::V3,
            vrid: 51,
            priority: 200,
            interval_cs: 50,
            auth: Auth::None,
            addresses: AddressList::Ipv4(&addrs),
        };
        let ep = IpEndpoints::V4 {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: IPV4_GROUP,
        };
        let mut buf = [0u8; 16];
        assert_eq!(
            repr.emit(&mut buf, &ep, Ipv4ChecksumMode::PseudoHeader),
            Ok(16)
        );
        (buf, ep)
    }

    #[test]
    fn v3_round_trip_keeps_every_field() {
        let (buf, ep) = v3_ipv4_sample();
        let packet = AdvertPacket::new_checked(&buf[..], Family::Ipv4).unwrap();
        let (repr, variant) = AdvertRepr::parse(&packet, &ep).unwrap();
        assert_eq!(variant, ChecksumVariant::PseudoHeader);
        assert_eq!(
            (repr.version, repr.vrid, repr.priority, repr.interval_cs),
            (Version::V3, 51, 200, 50)
        );
        assert_eq!(repr.addresses.len(), 2);
        assert!(repr
            .addresses
            .contains(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 101))));
    }

    #[test]
    fn reserved_bits_are_ignored_on_receive() {
        let (mut buf, ep) = v3_ipv4_sample();
        buf[4] |= 0xf0;
        // Re-fill the checksum over the dirty reserved bits, as a sender setting them would.
        let mut packet = AdvertPacket::new_unchecked(&mut buf[..], Family::Ipv4);
        packet.fill_checksum(&ep, Ipv4ChecksumMode::PseudoHeader);
        let packet = AdvertPacket::new_checked(&buf[..], Family::Ipv4).unwrap();
        assert_eq!(AdvertRepr::parse(&packet, &ep).unwrap().0.interval_cs, 50);
    }

    #[test]
    fn every_length_shorter_than_the_message_is_refused() {
        let (buf, _) = v3_ipv4_sample();
        for len in 0..buf.len() {
            let err = AdvertPacket::new_checked(&buf[..len], Family::Ipv4).unwrap_err();
            if len < HEADER_LEN {
                assert_eq!(err, WireError::Truncated { len });
            } else {
                assert_eq!(
                    err,
                    WireError::TooShortForAddressCount {
                        count: 2,
                        needed: 16,
                        len
                    }
                );
            }
        }
    }

    #[test]
    fn message_only_and_group_destination_checksums_are_accepted_and_named() {
        let (mut buf, _) = v3_ipv4_sample();
        let unicast = IpEndpoints::V4 {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
        };
        // Sent with the group in the pseudo-header but delivered unicast: old keepalived form.
        let packet = AdvertPacket::new_checked(&buf[..], Family::Ipv4).unwrap();
        assert_eq!(
            packet.verify_checksum(&unicast),
            Ok(ChecksumVariant::PseudoHeaderGroupDestination)
        );
        let mut packet = AdvertPacket::new_unchecked(&mut buf[..], Family::Ipv4);
        packet.fill_checksum(&unicast, Ipv4ChecksumMode::MessageOnly);
        let packet = AdvertPacket::new_checked(&buf[..], Family::Ipv4).unwrap();
        assert_eq!(
            packet.verify_checksum(&unicast),
            Ok(ChecksumVariant::MessageOnly)
        );
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let (buf, ep) = v3_ipv4_sample();
        for byte in 0..buf.len() {
            let mut bad = buf;
            bad[byte] ^= 0x01;
            let packet = AdvertPacket::new_unchecked(&bad[..], Family::Ipv4);
            if packet.check_len().is_err() {
                continue;
            }
            assert!(
                matches!(
                    packet.verify_checksum(&ep),
                    Err(WireError::BadChecksum { .. })
                ),
                "byte {byte}"
            );
        }
    }

    #[test]
    fn unknown_version_and_type_are_refused() {
        let (mut buf, ep) = v3_ipv4_sample();
        buf[0] = 0x41;
        let packet = AdvertPacket::new_unchecked(&buf[..], Family::Ipv4);
        assert_eq!(
            AdvertRepr::parse(&packet, &ep),
            Err(WireError::UnsupportedVersion { version: 4 })
        );
        buf[0] = 0x32;
        let packet = AdvertPacket::new_unchecked(&buf[..], Family::Ipv4);
        assert_eq!(
            AdvertRepr::parse(&packet, &ep),
            Err(WireError::UnknownType { kind: 2 })
        );
    }

    #[test]
    fn emit_refuses_what_the_wire_cannot_carry() {
        let addrs = [Ipv4Addr::new(10, 0, 0, 100)];
        let ep = IpEndpoints::V4 {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: IPV4_GROUP,
        };
        let mut repr = AdvertRepr {
            version: Version::V2,
            vrid: 1,
            priority: 100,
            interval_cs: 150,
            auth: Auth::None,
            addresses: AddressList::Ipv4(&addrs),
        };
        let mut buf = [0u8; 64];
        assert!(matches!(
            repr.emit(&mut buf, &ep, Ipv4ChecksumMode::PseudoHeader),
            Err(WireError::IntervalNotRepresentable { .. })
        ));
        repr.version = Version::V3;
        repr.interval_cs = 4096;
        assert!(matches!(
            repr.emit(&mut buf, &ep, Ipv4ChecksumMode::PseudoHeader),
            Err(WireError::IntervalNotRepresentable { .. })
        ));
        repr.interval_cs = 100;
        assert_eq!(
            repr.emit(&mut buf[..11], &ep, Ipv4ChecksumMode::PseudoHeader),
            Err(WireError::BufferTooSmall {
                needed: 12,
                len: 11
            })
        );
        let v6 = IpEndpoints::to_group(IpAddr::V6(Ipv6Addr::LOCALHOST));
        assert_eq!(
            repr.emit(&mut buf, &v6, Ipv4ChecksumMode::PseudoHeader),
            Err(WireError::AddressFamilyMismatch)
        );
    }

    #[test]
    fn address_lists_compare_as_sets_and_in_order() {
        let a = [Ipv4Addr::new(1, 1, 1, 1), Ipv4Addr::new(2, 2, 2, 2)];
        let b = [Ipv4Addr::new(2, 2, 2, 2), Ipv4Addr::new(1, 1, 1, 1)];
        let c = [Ipv4Addr::new(2, 2, 2, 2), Ipv4Addr::new(2, 2, 2, 2)];
        let wire = [1u8, 1, 1, 1, 2, 2, 2, 2];
        let w = AddressList::Wire {
            family: Family::Ipv4,
            bytes: &wire,
        };
        assert!(AddressList::Ipv4(&a).same_set(&AddressList::Ipv4(&b)));
        assert!(!AddressList::Ipv4(&a).same_set(&AddressList::Ipv4(&c)));
        assert_eq!(w, AddressList::Ipv4(&a));
        assert_ne!(w, AddressList::Ipv4(&b));
    }
}
