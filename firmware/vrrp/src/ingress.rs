//! Pure decisions the engine makes around a received advertisement, kept here so they are
//! tested on the virtual clock:
//!
//! - [`unicast_peer_allowed`]: a unicast advert is taken only from a configured peer (as
//!   keepalived does); multicast adverts and instances without peers are not filtered.
//! - [`HealedSplit`]: a master that hears a lower-priority master (a partition has healed, the
//!   LAN may still point at the other box) announces its addresses again, at most once per
//!   [`REANNOUNCE_GAP`] per instance. [`crate::Speaker::receive`] reports it.
//! - [`Accepted::address_list_grace`]: the first advert with another address list that an
//!   instance processed during a live change's grace (see [`crate::ADDRESS_LIST_GRACE`]).

use core::time::Duration;
use std::net::IpAddr;

use crate::instance::RxMeta;
use crate::speaker::InstanceId;
use crate::status::AddressListGrace;

/// At most one healed-split re-announcement per instance in this time.
pub const REANNOUNCE_GAP: Duration = Duration::from_secs(1);

/// True when an advert with `meta` may be handed to an instance whose configured unicast peers
/// are `peers`: it was multicast, or the instance has no peers (multicast mode), or its source
/// is one of them.
pub fn unicast_peer_allowed(meta: &RxMeta, peers: &[IpAddr]) -> bool {
    meta.dst.is_multicast() || peers.is_empty() || peers.contains(&meta.src)
}

/// A lower-priority master was heard by an instance that is master: the engine announces the
/// instance's virtual addresses again (gratuitous ARP / unsolicited NA), no state changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealedSplit {
    /// The other master.
    pub from: IpAddr,
    /// Its advertised priority (below ours, not 0).
    pub priority: u8,
}

/// A received advert taken by an instance (see [`crate::Speaker::receive`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    /// The instance that took it.
    pub id: InstanceId,
    /// Set when the engine must announce the instance's addresses again now.
    pub healed_split: Option<HealedSplit>,
    /// Set on the first advert with a different address list processed during an
    /// [`AddressListGrace`] (worth a log line: the pair's VIP lists differ until the other
    /// box is committed too); later ones are only counted
    /// ([`crate::Counters::address_list_differs_accepted`]).
    pub address_list_grace: Option<AddressListGrace>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn meta(src: u8, dst: IpAddr) -> RxMeta {
        RxMeta {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, src)),
            dst,
            ttl: 255,
        }
    }

    #[test]
    fn unicast_adverts_come_only_from_configured_peers() {
        let us = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let group = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 18));
        let peers = [IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2))];
        assert!(unicast_peer_allowed(&meta(2, us), &peers));
        assert!(!unicast_peer_allowed(&meta(3, us), &peers));
        // Multicast is never filtered; no peers means multicast mode, nothing filtered.
        assert!(unicast_peer_allowed(&meta(3, group), &peers));
        assert!(unicast_peer_allowed(&meta(3, us), &[]));
    }
}
