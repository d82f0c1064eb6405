//! Address value types shared by the model: an address with a prefix length and a MAC address.
//!
//! They are written as text (`192.0.2.1/24`, `01:00:5e:00:00:01`) in the human form and as fixed
//! bytes in the blob, so the blob stays compact and the text stays readable.

use alloc::string::String;
use core::fmt;
use core::net::IpAddr;
use core::str::FromStr;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An address family.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    #[default]
    Ipv4,
    Ipv6,
}

impl Family {
    /// The family of `addr`.
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::Ipv4,
            IpAddr::V6(_) => Family::Ipv6,
        }
    }

    /// The longest prefix in this family.
    pub fn max_prefix(self) -> u8 {
        match self {
            Family::Ipv4 => 32,
            Family::Ipv6 => 128,
        }
    }
}

/// An address with a prefix length, e.g. an interface address `192.0.2.10/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpCidr {
    pub addr: IpAddr,
    pub prefix: u8,
}

/// A text that is not an address with a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidrParseError;

impl fmt::Display for CidrParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected an address with an optional prefix length, e.g. 192.0.2.1/24")
    }
}

impl IpCidr {
    /// A host route: the whole address (`/32` or `/128`).
    pub fn host(addr: IpAddr) -> IpCidr {
        IpCidr {
            addr,
            prefix: Family::of(&addr).max_prefix(),
        }
    }

    /// Whether `other` lies in this address's subnet.
    pub fn contains(&self, other: &IpAddr) -> bool {
        match (self.addr, other) {
            (IpAddr::V4(net), IpAddr::V4(other)) => {
                let mask = prefix_mask_u32(self.prefix);
                u32::from(net) & mask == u32::from(*other) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(other)) => {
                let mask = prefix_mask_u128(self.prefix);
                u128::from(net) & mask == u128::from(*other) & mask
            }
            _ => false,
        }
    }

    /// Whether the prefix length fits the family.
    pub fn is_valid(&self) -> bool {
        self.prefix <= Family::of(&self.addr).max_prefix()
    }
}

fn prefix_mask_u32(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p if p >= 32 => u32::MAX,
        p => u32::MAX << (32 - u32::from(p)),
    }
}

fn prefix_mask_u128(prefix: u8) -> u128 {
    match prefix {
        0 => 0,
        p if p >= 128 => u128::MAX,
        p => u128::MAX << (128 - u32::from(p)),
    }
}

/// The prefix length of a dotted IPv4 netmask such as `255.255.255.0`, if the mask is contiguous.
pub fn netmask_to_prefix(mask: core::net::Ipv4Addr) -> Option<u8> {
    let bits = u32::from(mask);
    let ones = bits.leading_ones();
    if bits.checked_shl(ones).unwrap_or(0) != 0 {
        return None;
    }
    u8::try_from(ones).ok()
}

/// The dotted IPv4 netmask of a prefix length.
pub fn prefix_to_netmask(prefix: u8) -> core::net::Ipv4Addr {
    core::net::Ipv4Addr::from(prefix_mask_u32(prefix))
}

impl fmt::Display for IpCidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for IpCidr {
    type Err = CidrParseError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => {
                let addr: IpAddr = addr.parse().map_err(|_| CidrParseError)?;
                let prefix: u8 = prefix.parse().map_err(|_| CidrParseError)?;
                (addr, prefix)
            }
            None => {
                let addr: IpAddr = text.parse().map_err(|_| CidrParseError)?;
                (addr, Family::of(&addr).max_prefix())
            }
        };
        let cidr = IpCidr { addr, prefix };
        if cidr.is_valid() {
            Ok(cidr)
        } else {
            Err(CidrParseError)
        }
    }
}

impl Serialize for IpCidr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            (self.addr, self.prefix).serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for IpCidr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = <String>::deserialize(deserializer)?;
            text.parse().map_err(D::Error::custom)
        } else {
            let (addr, prefix) = <(IpAddr, u8)>::deserialize(deserializer)?;
            let cidr = IpCidr { addr, prefix };
            if cidr.is_valid() {
                Ok(cidr)
            } else {
                Err(D::Error::custom("prefix length longer than the address"))
            }
        }
    }
}

/// An Ethernet MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Whether the group bit is set (a multicast MAC, as a CLUSTERIP group needs).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl FromStr for MacAddr {
    type Err = &'static str;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        const MESSAGE: &str = "expected a MAC address such as 01:00:5e:00:00:01";
        let mut bytes = [0u8; 6];
        let mut parts = text.split(':');
        for byte in &mut bytes {
            let part = parts.next().ok_or(MESSAGE)?;
            if part.len() != 2 {
                return Err(MESSAGE);
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| MESSAGE)?;
        }
        if parts.next().is_some() {
            return Err(MESSAGE);
        }
        Ok(MacAddr(bytes))
    }
}

impl Serialize for MacAddr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = <String>::deserialize(deserializer)?;
            text.parse().map_err(D::Error::custom)
        } else {
            Ok(MacAddr(<[u8; 6]>::deserialize(deserializer)?))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_contains_and_parses() {
        let net: IpCidr = "192.168.0.1/24".parse().unwrap();
        assert!(net.contains(&"192.168.0.200".parse().unwrap()));
        assert!(!net.contains(&"192.168.1.1".parse().unwrap()));
        assert!(!net.contains(&"::1".parse().unwrap()));
        assert_eq!("10.0.0.1".parse::<IpCidr>().unwrap().prefix, 32);
        assert!("10.0.0.1/33".parse::<IpCidr>().is_err());
        let v6: IpCidr = "2001:db8::1/64".parse().unwrap();
        assert!(v6.contains(&"2001:db8::ffff".parse().unwrap()));
    }

    #[test]
    fn netmask_conversion() {
        assert_eq!(
            netmask_to_prefix("255.255.255.0".parse().unwrap()),
            Some(24)
        );
        assert_eq!(
            netmask_to_prefix("255.255.255.255".parse().unwrap()),
            Some(32)
        );
        assert_eq!(netmask_to_prefix("0.0.0.0".parse().unwrap()), Some(0));
        assert_eq!(netmask_to_prefix("255.0.255.0".parse().unwrap()), None);
        assert_eq!(prefix_to_netmask(20).to_string(), "255.255.240.0");
    }

    #[test]
    fn mac_round_trip() {
        let mac: MacAddr = "01:00:5e:7f:00:01".parse().unwrap();
        assert!(mac.is_multicast());
        assert_eq!(mac.to_string(), "01:00:5e:7f:00:01");
        assert!("01:00:5e:7f:00".parse::<MacAddr>().is_err());
    }
}
