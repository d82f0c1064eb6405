//! Shared helpers for the state machine tests: packet builders and action collectors.
#![allow(dead_code, clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr};

use tandem_vrrp::{Action, Instance, InstanceParams, RxMeta, Transition};
use tandem_wire::vrrp::IPV4_GROUP;
use tandem_wire::{AddressList, AdvertRepr, Auth, IpEndpoints, Ipv4ChecksumMode, Version};

pub fn ip(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
}

pub const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);

pub fn v3(name: &str, priority: u8, own: u8) -> InstanceParams {
    InstanceParams::v3(name, "eth0", 51, priority, ip(own), vec![IpAddr::V4(VIP)])
}

pub struct Advert {
    pub version: Version,
    pub vrid: u8,
    pub priority: u8,
    pub interval_cs: u16,
    pub auth: Auth,
    pub vips: Vec<Ipv4Addr>,
}

impl Advert {
    pub fn v3(priority: u8) -> Advert {
        Advert {
            version: Version::V3,
            vrid: 51,
            priority,
            interval_cs: 100,
            auth: Auth::None,
            vips: vec![VIP],
        }
    }

    pub fn bytes(&self, src: IpAddr) -> Vec<u8> {
        let repr = AdvertRepr {
            version: self.version,
            vrid: self.vrid,
            priority: self.priority,
            interval_cs: self.interval_cs,
            auth: self.auth,
            addresses: AddressList::Ipv4(&self.vips),
        };
        let mut out = vec![0u8; repr.buffer_len()];
        repr.emit(
            &mut out,
            &IpEndpoints::to_group(src),
            Ipv4ChecksumMode::PseudoHeader,
        )
        .unwrap();
        out
    }
}

pub fn meta(src: IpAddr) -> RxMeta {
    RxMeta {
        src,
        dst: IpAddr::V4(IPV4_GROUP),
        ttl: 255,
    }
}

pub fn drain(instance: &mut Instance) -> Vec<Action> {
    std::iter::from_fn(|| instance.poll_action()).collect()
}

pub fn transitions(actions: &[Action]) -> Vec<Transition> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::StateChanged(t) => Some(t.clone()),
            _ => None,
        })
        .collect()
}

pub fn sent_priorities(actions: &[Action]) -> Vec<u8> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendAdvert(advert) => Some(advert.priority),
            _ => None,
        })
        .collect()
}

/// Kinds of actions in order, as short names.
pub fn kinds(actions: &[Action]) -> Vec<&'static str> {
    actions
        .iter()
        .map(|a| match a {
            Action::SendAdvert(_) => "advert",
            Action::AddVips { .. } => "add",
            Action::RemoveVips { .. } => "remove",
            Action::Announce { .. } => "announce",
            Action::StateChanged(_) => "state",
        })
        .collect()
}
