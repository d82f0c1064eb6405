//! `tandem-wire`: `no_std` packet codecs for the appliance's own protocols.
//!
//! Every codec follows smoltcp's `wire` shape: a zero-copy view (`Packet<T: AsRef<[u8]>>` with
//! `new_checked`, accessors that never panic after the length check) plus a value type (`Repr`
//! with `parse` / `emit` / `buffer_len`). Nothing here reads a clock or touches a socket.
//!
//! - [`vrrp`]: VRRPv2 (RFC 3768) and VRRPv3 (RFC 9568) advertisements for IPv4 and IPv6, with
//!   every checksum form met in the field.
//! - [`announce`]: gratuitous ARP and unsolicited Neighbor Advertisement frames a new master
//!   sends so that hosts and switches move the virtual addresses to it.
//! - [`arp`] and [`ndisc`]: the ARP request / Neighbor Solicitation a backup sends to its
//!   partner's own address on the service LAN, and the answers that prove the partner alive.
//! - [`checksum`]: the Internet checksum and the IPv4 / IPv6 pseudo-headers.
//! - [`tickle`]: tickle ACKs a new VIP holder sends its partner's clients after a takeover.
//! - [`peer_message`]: the connection list a box sends its partner over the peer cable.
//! - [`heartbeat`]: the fast pair heartbeat on the peer cable (health, liveness, RTT).
//! - [`pairing`]: the four datagrams of `pair start` / `pair join CODE` (SPAKE2 messages, roles,
//!   key confirmation, the result), fixed length per type, fuzzed.
//! - [`replication`]: config replication over the peer cable: each box's config state (UDP),
//!   and the challenge / push / result of a config push (TCP, length-framed), fuzzed.
//! - [`keyed`]: the pair id + HMAC-SHA256 rule both peer-cable codecs share.
//! - [`ntp`]: the NTP header the SNTP client sends and reads (RFC 5905 / RFC 4330), fuzzed.
//! - [`time`]: the injected [`time::Instant`] the sans-IO cores (`tandem-vrrp`, `tandem-pair`)
//!   share, so that both read the same point in time.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod announce;
pub mod arp;
pub mod checksum;
pub mod heartbeat;
pub mod keyed;
pub mod ndisc;
pub mod ntp;
pub mod pairing;
pub mod peer_message;
pub mod replication;
pub mod tickle;
pub mod time;
pub mod vrrp;

pub use announce::{
    emit_gratuitous_arp, emit_unsolicited_na, virtual_mac, AnnounceError, MacAddress,
    GRATUITOUS_ARP_LEN, UNSOLICITED_NA_LEN,
};
pub use vrrp::{
    AddressIter, AddressList, AdvertPacket, AdvertRepr, Auth, ChecksumVariant, Family, IpEndpoints,
    Ipv4ChecksumMode, Version, WireError,
};
