//! One config for the pair: the shared part (everything else in [`Config`]) and what differs per
//! box, one [`BoxHalf`] for each of the two boxes (like Junos `groups node0/node1`).
//!
//! A box runs [`Config::for_box`] of its [`Role`]: the shared part with its own half laid over
//! it. Every field of a half is an override: absent (or an empty list) keeps the shared value.
//!
//! ```toml
//! [pair.a]
//! hostname = "director1"
//! management_address = "192.168.100.11/24"
//!
//! [[pair.a.interfaces]]
//! name = "public"
//! addresses = ["10.0.0.2/24"]
//!
//! [[pair.a.vrrp]]
//! name = "web_vip"
//! priority = 150
//! initial_state = "master"
//! ```

use core::fmt;
use core::net::IpAddr;
use core::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{limits, Config, InitialState, Interface, Name};
use crate::bounded::BoundedVec;
use crate::net::IpCidr;

/// Which box of the pair this is. Fixed at pairing; written `"a"` / `"b"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The box of `[pair.a]`.
    A,
    /// The box of `[pair.b]`.
    B,
}

impl Role {
    /// Both roles, a first.
    pub const BOTH: [Role; 2] = [Role::A, Role::B];

    /// `"a"` or `"b"`, as in paths (`pair.a`) and the text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::A => "a",
            Role::B => "b",
        }
    }

    /// The partner's role.
    pub fn other(self) -> Role {
        match self {
            Role::A => Role::B,
            Role::B => Role::A,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that is not `a` or `b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadRole;

impl fmt::Display for BadRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a pair role is \"a\" or \"b\"")
    }
}

impl FromStr for Role {
    type Err = BadRole;
    fn from_str(text: &str) -> Result<Self, BadRole> {
        match text {
            "a" | "A" => Ok(Role::A),
            "b" | "B" => Ok(Role::B),
            _ => Err(BadRole),
        }
    }
}

/// The per-box parts of a pair config (`[pair.a]`, `[pair.b]`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PairHalves {
    /// What box a runs differently from the shared part.
    pub a: BoxHalf,
    /// What box b runs differently from the shared part.
    pub b: BoxHalf,
}

impl PairHalves {
    /// The half of `role`.
    pub fn half(&self, role: Role) -> &BoxHalf {
        match role {
            Role::A => &self.a,
            Role::B => &self.b,
        }
    }
}

/// What one box of the pair has of its own. Each field overrides the shared value; an absent
/// field (or an empty list) keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BoxHalf {
    /// This box's host name; replaces `system.hostname` (empty: keep it).
    pub hostname: heapless::String<{ limits::HOSTNAME_BYTES }>,
    /// This box's management address with prefix length; replaces `management.address`.
    pub management_address: Option<IpCidr>,
    /// Interfaces whose addresses differ on this box (`[[pair.a.interfaces]]` with `name` and
    /// `addresses`): each replaces the addresses of the shared `[[interfaces]]` entry of the same
    /// name (which must exist) whole; an empty list leaves it without addresses on this box.
    /// Only the addresses differ per box: `role` and `mtu` here are refused by validation.
    /// (The shared entry's type, so the text and blob forms need no code of their own.)
    pub interfaces: BoundedVec<Interface, { limits::INTERFACES }>,
    /// VRRP instances with per-box settings: each changes the shared `[[vrrp]]` instance of the
    /// same name (which must exist).
    pub vrrp: BoundedVec<VrrpOverride, { limits::VRRP_INSTANCES }>,
}

/// This box's settings of one VRRP instance (`[[pair.a.vrrp]]`). Each absent field keeps the
/// shared instance's value.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VrrpOverride {
    /// The name of a shared `[[vrrp]]` instance.
    pub name: Name,
    /// This box's priority, 1..=254 (the higher one is master; equal ones elect by address).
    pub priority: Option<u8>,
    /// This box's source address for unicast adverts (normally its own interface address).
    pub unicast_source: Option<IpAddr>,
    /// The peers this box sends unicast adverts to (normally the partner's address), replacing
    /// the shared list whole (empty: keep the shared list).
    pub unicast_peers: BoundedVec<IpAddr, { limits::UNICAST_PEERS }>,
    /// The state this box starts in (`master` on the box meant to hold the VIPs).
    pub initial_state: Option<InitialState>,
}

impl Config {
    /// The config box `role` runs: the shared part with that box's half laid over it, and no
    /// `pair` (the result is a single-box config, what the engines consume; validating it
    /// checks that box alone). Overrides naming an interface or instance the shared part does
    /// not have are skipped here (validation reports them). A config without `pair` is its own
    /// effective config for either role.
    pub fn for_box(&self, role: Role) -> Config {
        let Some(pair) = &self.pair else {
            return self.clone();
        };
        let half = pair.half(role);
        // Not `self.clone()`: the halves would be cloned only to be dropped.
        let mut config = Config::clone_without_pair(self);
        if !half.hostname.is_empty() {
            config.system.hostname = half.hostname.clone();
        }
        if let Some(address) = half.management_address {
            config.management.address = Some(address);
        }
        for over in &half.interfaces {
            if let Some(interface) = config
                .interfaces
                .as_mut_slice()
                .iter_mut()
                .find(|i| i.name == over.name)
            {
                interface.addresses = over.addresses.clone();
            }
        }
        // Load sharing: a group that lists no buckets is split, odd to a and even to b.
        let first = match role {
            Role::A => 1,
            Role::B => 2,
        };
        for group in config.clusterip.as_mut_slice() {
            if group.local_nodes.is_empty() {
                for bucket in (first..=group.total_nodes.min(64)).step_by(2) {
                    let _ = group.local_nodes.push(bucket);
                }
            }
        }
        for over in &half.vrrp {
            let Some(instance) = config
                .vrrp
                .as_mut_slice()
                .iter_mut()
                .find(|v| v.name == over.name)
            else {
                continue;
            };
            if let Some(priority) = over.priority {
                instance.priority = priority;
            }
            if let Some(source) = over.unicast_source {
                instance.unicast_source = Some(source);
            }
            if !over.unicast_peers.is_empty() {
                instance.unicast_peers = over.unicast_peers.clone();
            }
            if let Some(state) = over.initial_state {
                instance.initial_state = state;
            }
        }
        config
    }

    /// The shared part alone (no half laid over it, no `pair`): what a box runs that has a
    /// pair config but no role yet (it is not paired).
    pub fn shared_part(&self) -> Config {
        Config::clone_without_pair(self)
    }

    fn clone_without_pair(config: &Config) -> Config {
        Config::clone_parts(config, true, false)
    }

    /// A copy of `config`, with its virtual services and its `pair` section only if asked for
    /// (the rest always).
    pub(crate) fn clone_parts(config: &Config, services: bool, with_pair: bool) -> Config {
        // Destructured so that a new top-level field does not compile until it is carried.
        let Config {
            system,
            management,
            peer_link,
            notify,
            interfaces,
            bonds,
            vrrp,
            sync_groups,
            virtual_services,
            fwmark_rules,
            nat_gateway,
            real_server,
            clusterip,
            pair,
            tls_trust,
        } = config;
        Config {
            system: system.clone(),
            management: management.clone(),
            peer_link: peer_link.clone(),
            notify: notify.clone(),
            interfaces: interfaces.clone(),
            bonds: bonds.clone(),
            vrrp: vrrp.clone(),
            sync_groups: sync_groups.clone(),
            virtual_services: if services {
                virtual_services.clone()
            } else {
                BoundedVec::default()
            },
            fwmark_rules: fwmark_rules.clone(),
            nat_gateway: nat_gateway.clone(),
            real_server: real_server.clone(),
            clusterip: clusterip.clone(),
            pair: if with_pair { pair.clone() } else { None },
            tls_trust: tls_trust.clone(),
        }
    }
}
