//! The postcard decoder of the model for every format version, so an older blob decodes with
//! the same code as a current one (a second copy of the model's decoder would cost the
//! appliance binary tens of KB of its 4 MiB). Format 3 appended one field to [`Config`]
//! (`pair`) and one to [`PeerLink`] (`uplink_probes`); a format 1 or 2 payload simply lacks
//! them, and they decode as their defaults: `pair: None`, no uplink probes. Format 4 appended
//! four fields to [`Bond`] (`primary_reselect`, `fail_over_mac`, `ad_select`, `mtu`), which an
//! older payload's bonds decode as the kernel's defaults, and one to [`ClusterIpGroup`]
//! (`unicast_flood_mac`: absent, multicast mode). Format 5 appended two fields to
//! [`Management`] (`syslog`, `time_servers`: none) and three to [`VrrpInstance`] (`use_vmac`:
//! off, `vmac_interface`: None, `vmac_xmit_base`: off), one to [`Config`] (`tls_trust`: none), and changed the
//! health check's kind: an HTTP check's `status` became a set of ranges and it gained
//! `more_urls` and `tls_ca`; `Ping`, `Udp` and `Dns` were appended. The checks of an older
//! payload decode through [`v4::CheckKind`], the old kind, into today's (the seeds below walk
//! the services and real servers down to their checks; a format 5 payload's services decode
//! with the model's own decoder). Format 6 appended `more_checks` to [`RealServer`] and to
//! [`VirtualService`] (several checks per real server) and `track_checks` to [`VrrpInstance`]
//! (keepalived's `track_script` as built-in checks); an older payload's services and real
//! servers decode through [`VirtualServiceIn`] and [`RealServerIn`] without them.

use core::fmt;
use core::marker::PhantomData;

use alloc::boxed::Box;

use serde::de::{DeserializeSeed, Deserializer, Error as _, SeqAccess, Visitor};
use serde::Deserialize;

use crate::bounded::BoundedVec;
use crate::model::{
    Bond, Check, ClusterIpGroup, Config, Management, PeerLink, RealServer, VirtualService,
    VrrpInstance,
};

mod out;
pub(super) use out::{first_misfit, ConfigOut, Misfit, OLDEST_WRITABLE};

/// The first format with `Config::pair` and `PeerLink::uplink_probes`.
const PAIR_FORMAT: u16 = 3;
/// The first format with `Bond::{primary_reselect, fail_over_mac, ad_select, mtu}` and
/// `ClusterIpGroup::unicast_flood_mac`.
const BOND_OPTIONS_FORMAT: u16 = 4;
/// The first format with `Management::{syslog, time_servers}` and
/// `VrrpInstance::{use_vmac, vmac_interface, vmac_xmit_base}`.
const MANAGEMENT_FORMAT: u16 = 5;
/// The first format with `RealServer::more_checks`, `VirtualService::more_checks` and
/// `VrrpInstance::track_checks`.
const MORE_CHECKS_FORMAT: u16 = 6;

/// Decodes a [`Config`] as format `version` lays it out.
#[derive(Clone, Copy)]
pub(super) struct ConfigIn(pub(super) u16);

/// Decodes an `Option<PeerLink>` as format `version` lays it out.
#[derive(Clone, Copy)]
struct PeerLinkIn(u16);

fn next<'de, T: Deserialize<'de>, A: SeqAccess<'de>>(seq: &mut A) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| A::Error::custom("payload ends early"))
}

impl<'de> DeserializeSeed<'de> for ConfigIn {
    type Value = Config;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Config, D::Error> {
        // Postcard reads a struct as a tuple of this many fields; the names are not read.
        const FIELDS: [&str; 15] = [""; 15];
        let count = if self.0 >= MANAGEMENT_FORMAT {
            15
        } else if self.0 >= PAIR_FORMAT {
            14
        } else {
            13
        };
        deserializer.deserialize_struct("Config", &FIELDS[..count], self)
    }
}

impl<'de> Visitor<'de> for ConfigIn {
    type Value = Config;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a config")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Config, A::Error> {
        // Fields in model order (struct expressions evaluate in the order written).
        Ok(Config {
            system: next(&mut seq)?,
            management: seq
                .next_element_seed(ManagementIn(self.0))?
                .ok_or_else(|| A::Error::custom("payload ends early"))?,
            peer_link: seq
                .next_element_seed(PeerLinkIn(self.0))?
                .ok_or_else(|| A::Error::custom("payload ends early"))?,
            notify: next(&mut seq)?,
            interfaces: next(&mut seq)?,
            bonds: seq
                .next_element_seed(ListIn::new(BondIn(self.0), "bonds"))?
                .ok_or_else(|| A::Error::custom("payload ends early"))?,
            vrrp: seq
                .next_element_seed(ListIn::new(VrrpInstanceIn(self.0), "VRRP instances"))?
                .ok_or_else(|| A::Error::custom("payload ends early"))?,
            sync_groups: next(&mut seq)?,
            virtual_services: if self.0 >= MORE_CHECKS_FORMAT {
                next(&mut seq)?
            } else {
                seq.next_element_seed(ListIn::new(VirtualServiceIn(self.0), "virtual services"))?
                    .ok_or_else(|| A::Error::custom("payload ends early"))?
            },
            fwmark_rules: next(&mut seq)?,
            nat_gateway: next(&mut seq)?,
            real_server: next(&mut seq)?,
            clusterip: seq
                .next_element_seed(ListIn::new(ClusterGroupIn(self.0), "load-sharing groups"))?
                .ok_or_else(|| A::Error::custom("payload ends early"))?,
            pair: if self.0 >= PAIR_FORMAT {
                next(&mut seq)?
            } else {
                None
            },
            tls_trust: if self.0 >= MANAGEMENT_FORMAT {
                next(&mut seq)?
            } else {
                BoundedVec::new()
            },
        })
    }
}

impl<'de> DeserializeSeed<'de> for PeerLinkIn {
    type Value = Option<PeerLink>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for PeerLinkIn {
    type Value = Option<PeerLink>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an optional peer link")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        const FIELDS: [&str; 10] = [""; 10];
        let count = if self.0 >= PAIR_FORMAT { 10 } else { 9 };
        deserializer
            .deserialize_struct("PeerLink", &FIELDS[..count], PeerLinkFields(self.0))
            .map(Some)
    }
}

/// The fields of a present peer link.
struct PeerLinkFields(u16);

impl<'de> Visitor<'de> for PeerLinkFields {
    type Value = PeerLink;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a peer link")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<PeerLink, A::Error> {
        Ok(PeerLink {
            interface: next(&mut seq)?,
            // A plain varint in postcard (hex text only in TOML).
            pair_id: next(&mut seq)?,
            heartbeat_interval_ms: next(&mut seq)?,
            dead_after_ms: next(&mut seq)?,
            heartbeat_port: next(&mut seq)?,
            ipvs_sync: next(&mut seq)?,
            ipvs_sync_interface: next(&mut seq)?,
            primary: next(&mut seq)?,
            backup: next(&mut seq)?,
            uplink_probes: if self.0 >= PAIR_FORMAT {
                next(&mut seq)?
            } else {
                BoundedVec::new()
            },
        })
    }
}

/// Decodes a bounded list whose elements each decode with `seed` (a per-format element
/// decoder such as [`BondIn`]).
struct ListIn<S, T, const N: usize> {
    seed: S,
    /// What the list holds, plural, for the error of a list that is too long.
    what: &'static str,
    element: PhantomData<T>,
}

impl<S, T, const N: usize> ListIn<S, T, N> {
    fn new(seed: S, what: &'static str) -> Self {
        ListIn {
            seed,
            what,
            element: PhantomData,
        }
    }
}

impl<'de, S, T, const N: usize> DeserializeSeed<'de> for ListIn<S, T, N>
where
    S: DeserializeSeed<'de, Value = T> + Copy,
{
    type Value = BoundedVec<T, N>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, S, T, const N: usize> Visitor<'de> for ListIn<S, T, N>
where
    S: DeserializeSeed<'de, Value = T> + Copy,
{
    type Value = BoundedVec<T, N>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of at most {N} {}", self.what)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut list = BoundedVec::new();
        while let Some(element) = seq.next_element_seed(self.seed)? {
            list.push(element).map_err(|_| {
                A::Error::custom(format_args!(
                    "list is longer than the maximum of {N} {}",
                    self.what
                ))
            })?;
        }
        Ok(list)
    }
}

/// Decodes the management settings as format `version` lays them out.
#[derive(Clone, Copy)]
struct ManagementIn(u16);

impl<'de> DeserializeSeed<'de> for ManagementIn {
    type Value = Management;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Management, D::Error> {
        const FIELDS: [&str; 6] = [""; 6];
        let count = if self.0 >= MANAGEMENT_FORMAT { 6 } else { 4 };
        deserializer.deserialize_struct("Management", &FIELDS[..count], self)
    }
}

impl<'de> Visitor<'de> for ManagementIn {
    type Value = Management;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("management settings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Management, A::Error> {
        let mut management = Management {
            interface: next(&mut seq)?,
            address: next(&mut seq)?,
            gateway: next(&mut seq)?,
            metrics: next(&mut seq)?,
            ..Management::default()
        };
        if self.0 >= MANAGEMENT_FORMAT {
            management.syslog = next(&mut seq)?;
            management.time_servers = next(&mut seq)?;
        }
        Ok(management)
    }
}

/// Decodes one VRRP instance as format `version` lays it out.
#[derive(Clone, Copy)]
struct VrrpInstanceIn(u16);

impl<'de> DeserializeSeed<'de> for VrrpInstanceIn {
    type Value = VrrpInstance;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<VrrpInstance, D::Error> {
        const FIELDS: [&str; 21] = [""; 21];
        let count = if self.0 >= MORE_CHECKS_FORMAT {
            21
        } else if self.0 >= MANAGEMENT_FORMAT {
            20
        } else {
            17
        };
        deserializer.deserialize_struct("VrrpInstance", &FIELDS[..count], self)
    }
}

impl<'de> Visitor<'de> for VrrpInstanceIn {
    type Value = VrrpInstance;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a VRRP instance")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<VrrpInstance, A::Error> {
        let mut instance = VrrpInstance {
            name: next(&mut seq)?,
            version: next(&mut seq)?,
            vrid: next(&mut seq)?,
            interface: next(&mut seq)?,
            priority: next(&mut seq)?,
            advert_interval_cs: next(&mut seq)?,
            initial_state: next(&mut seq)?,
            auth: next(&mut seq)?,
            preempt: next(&mut seq)?,
            preempt_delay_s: next(&mut seq)?,
            accept_mode: next(&mut seq)?,
            vips: next(&mut seq)?,
            unicast_source: next(&mut seq)?,
            unicast_peers: next(&mut seq)?,
            track_interfaces: next(&mut seq)?,
            track_bonds: next(&mut seq)?,
            garp: next(&mut seq)?,
            ..VrrpInstance::default()
        };
        if self.0 >= MANAGEMENT_FORMAT {
            instance.use_vmac = next(&mut seq)?;
            instance.vmac_interface = next(&mut seq)?;
            instance.vmac_xmit_base = next(&mut seq)?;
        }
        if self.0 >= MORE_CHECKS_FORMAT {
            instance.track_checks = next(&mut seq)?;
        }
        Ok(instance)
    }
}

/// Decodes one bond as format `version` lays it out.
#[derive(Clone, Copy)]
struct BondIn(u16);

impl<'de> DeserializeSeed<'de> for BondIn {
    type Value = Bond;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Bond, D::Error> {
        const FIELDS: [&str; 14] = [""; 14];
        let count = if self.0 >= BOND_OPTIONS_FORMAT {
            14
        } else {
            10
        };
        deserializer.deserialize_struct("Bond", &FIELDS[..count], self)
    }
}

impl<'de> Visitor<'de> for BondIn {
    type Value = Bond;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a bond")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bond, A::Error> {
        let mut bond = Bond {
            name: next(&mut seq)?,
            mode: next(&mut seq)?,
            slaves: next(&mut seq)?,
            monitor: next(&mut seq)?,
            up_delay_ms: next(&mut seq)?,
            down_delay_ms: next(&mut seq)?,
            lacp_rate: next(&mut seq)?,
            xmit_hash_policy: next(&mut seq)?,
            primary: next(&mut seq)?,
            min_links: next(&mut seq)?,
            ..Bond::default()
        };
        if self.0 >= BOND_OPTIONS_FORMAT {
            bond.primary_reselect = next(&mut seq)?;
            bond.fail_over_mac = next(&mut seq)?;
            bond.ad_select = next(&mut seq)?;
            bond.mtu = next(&mut seq)?;
        }
        Ok(bond)
    }
}

/// Decodes one load-sharing group as format `version` lays it out.
#[derive(Clone, Copy)]
struct ClusterGroupIn(u16);

impl<'de> DeserializeSeed<'de> for ClusterGroupIn {
    type Value = ClusterIpGroup;
    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<ClusterIpGroup, D::Error> {
        const FIELDS: [&str; 9] = [""; 9];
        let count = if self.0 >= BOND_OPTIONS_FORMAT { 9 } else { 8 };
        deserializer.deserialize_struct("ClusterIpGroup", &FIELDS[..count], self)
    }
}

impl<'de> Visitor<'de> for ClusterGroupIn {
    type Value = ClusterIpGroup;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a load-sharing group")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ClusterIpGroup, A::Error> {
        Ok(ClusterIpGroup {
            name: next(&mut seq)?,
            vip: next(&mut seq)?,
            interface: next(&mut seq)?,
            multicast_mac: next(&mut seq)?,
            hash: next(&mut seq)?,
            hash_init: next(&mut seq)?,
            total_nodes: next(&mut seq)?,
            local_nodes: next(&mut seq)?,
            unicast_flood_mac: if self.0 >= BOND_OPTIONS_FORMAT {
                next(&mut seq)?
            } else {
                None
            },
        })
    }
}

/// Decodes one virtual service of a format 5 or older payload: no `more_checks` (format 6),
/// its checks in the old layout up to format 4.
#[derive(Clone, Copy)]
struct VirtualServiceIn(u16);

impl<'de> DeserializeSeed<'de> for VirtualServiceIn {
    type Value = VirtualService;
    fn deserialize<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<VirtualService, D::Error> {
        const FIELDS: [&str; 20] = [""; 20];
        deserializer.deserialize_struct("VirtualService", &FIELDS, self)
    }
}

impl<'de> Visitor<'de> for VirtualServiceIn {
    type Value = VirtualService;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a virtual service")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<VirtualService, A::Error> {
        Ok(VirtualService {
            name: next(&mut seq)?,
            active: next(&mut seq)?,
            address: next(&mut seq)?,
            address_prefix: next(&mut seq)?,
            interface: next(&mut seq)?,
            port: next(&mut seq)?,
            protocol: next(&mut seq)?,
            fwmark: next(&mut seq)?,
            scheduler: next(&mut seq)?,
            scheduler_flags: next(&mut seq)?,
            persistence: next(&mut seq)?,
            forwarding: next(&mut seq)?,
            quorum: next(&mut seq)?,
            hysteresis: next(&mut seq)?,
            sorry_server: next(&mut seq)?,
            on_failure: next(&mut seq)?,
            reentry_s: next(&mut seq)?,
            start_down: next(&mut seq)?,
            check: seq
                .next_element_seed(CheckIn(self.0))?
                .ok_or_else(|| A::Error::custom("payload ends early"))?,
            real_servers: seq
                .next_element_seed(ListIn::new(RealServerIn(self.0), "real servers"))?
                .ok_or_else(|| A::Error::custom("payload ends early"))?,
            more_checks: BoundedVec::new(),
        })
    }
}

/// Decodes one real server of a format 5 or older payload (no `more_checks`).
#[derive(Clone, Copy)]
struct RealServerIn(u16);

impl<'de> DeserializeSeed<'de> for RealServerIn {
    type Value = RealServer;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<RealServer, D::Error> {
        const FIELDS: [&str; 10] = [""; 10];
        deserializer.deserialize_struct("RealServer", &FIELDS, self)
    }
}

impl<'de> Visitor<'de> for RealServerIn {
    type Value = RealServer;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a real server")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RealServer, A::Error> {
        Ok(RealServer {
            name: next(&mut seq)?,
            address: next(&mut seq)?,
            port: next(&mut seq)?,
            weight: next(&mut seq)?,
            forwarding: next(&mut seq)?,
            active: next(&mut seq)?,
            upper_threshold: next(&mut seq)?,
            lower_threshold: next(&mut seq)?,
            on_failure: next(&mut seq)?,
            check: seq
                .next_element_seed(CheckIn(self.0))?
                .ok_or_else(|| A::Error::custom("payload ends early"))?,
            more_checks: BoundedVec::new(),
        })
    }
}

/// Decodes an optional (boxed) check of a format 5 or older payload: format 5's with the
/// model's decoder, older ones' kind through [`v4::CheckKind`].
#[derive(Clone, Copy)]
struct CheckIn(u16);

impl<'de> DeserializeSeed<'de> for CheckIn {
    type Value = Option<Box<Check>>;
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for CheckIn {
    type Value = Option<Box<Check>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an optional health check")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        if self.0 >= MANAGEMENT_FORMAT {
            return Box::<Check>::deserialize(deserializer).map(Some);
        }
        const FIELDS: [&str; 5] = [""; 5];
        deserializer
            .deserialize_struct("Check", &FIELDS, CheckFields)
            .map(|check| Some(Box::new(check)))
    }
}

/// The fields of a present check of a format 4 or older payload.
struct CheckFields;

impl<'de> Visitor<'de> for CheckFields {
    type Value = Check;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a health check")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Check, A::Error> {
        let kind: v4::CheckKind = next(&mut seq)?;
        Ok(Check {
            kind: kind.into(),
            timing: next(&mut seq)?,
            connect_port: next(&mut seq)?,
            connect_address: next(&mut seq)?,
            bind_address: next(&mut seq)?,
        })
    }
}

/// The health check kind as formats 1 to 4 laid it out, decode only.
mod v4 {
    use serde::Deserialize;

    use crate::bounded::BoundedVec;
    use crate::model::{self, limits, HttpBody, StatusCodes};

    type Text = heapless::String<{ limits::URL_BYTES }>;
    type SendExpectText = heapless::String<{ limits::SEND_EXPECT_BYTES }>;

    /// Variants in their order of then (postcard writes the index).
    #[derive(Deserialize)]
    pub(super) enum CheckKind {
        Tcp,
        Http {
            path: Text,
            status: Option<u16>,
            body: Option<HttpBody>,
            virtual_host: Option<Text>,
            tls: bool,
        },
        Smtp {
            helo_name: Option<Text>,
        },
        SendExpect {
            send: SendExpectText,
            expect: SendExpectText,
        },
    }

    impl From<CheckKind> for model::CheckKind {
        fn from(old: CheckKind) -> Self {
            match old {
                CheckKind::Tcp => model::CheckKind::Tcp,
                CheckKind::Http {
                    path,
                    status,
                    body,
                    virtual_host,
                    tls,
                } => model::CheckKind::Http {
                    path,
                    status: status.map(StatusCodes::single),
                    body,
                    virtual_host,
                    tls,
                    more_urls: BoundedVec::new(),
                    tls_ca: None,
                },
                CheckKind::Smtp { helo_name } => model::CheckKind::Smtp { helo_name },
                CheckKind::SendExpect { send, expect } => {
                    model::CheckKind::SendExpect { send, expect }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AdSelect, BondMode, FailOverMac, PrimaryReselect};
    use crate::net::MacAddr;
    use alloc::vec::Vec;

    fn config_with(bonds: Vec<Bond>) -> Config {
        Config {
            bonds: BoundedVec::from_vec(bonds).unwrap(),
            ..Config::default()
        }
    }

    fn bond(name: &str) -> Bond {
        Bond {
            name: name.try_into().unwrap(),
            mode: BondMode::Ieee8023ad,
            slaves: BoundedVec::from_vec(vec!["public".try_into().unwrap()]).unwrap(),
            min_links: 1,
            ..Bond::default()
        }
    }

    /// `config` laid out as format 4 wrote it: without format 5's two management fields, two
    /// fields of each VRRP instance and the trust sets (the tests' configs hold no VRRP
    /// instance, no check and no trust set).
    fn format_4_payload(config: &Config) -> Vec<u8> {
        assert!(config.vrrp.is_empty() && config.tls_trust.is_empty());
        assert!(config.virtual_services.is_empty());
        let current = postcard::to_allocvec(config).unwrap();
        let before = postcard::to_allocvec(&config.system).unwrap().len();
        let management = &config.management;
        let old_management = postcard::to_allocvec(&(
            &management.interface,
            &management.address,
            &management.gateway,
            &management.metrics,
        ))
        .unwrap();
        let new_management = postcard::to_allocvec(management).unwrap();
        assert_eq!(
            current[before..before + new_management.len()],
            new_management[..]
        );
        let mut old = current[..before].to_vec();
        old.extend_from_slice(&old_management);
        old.extend_from_slice(&current[before + new_management.len()..]);
        // The trust sets come last: an empty list is one byte 0.
        assert_eq!(old.pop(), Some(0));
        old
    }

    fn decode(version: u16, payload: &[u8]) -> Config {
        let mut decoder = postcard::Deserializer::from_bytes(payload);
        let config = ConfigIn(version).deserialize(&mut decoder).unwrap();
        assert!(decoder.finalize().unwrap().is_empty());
        config
    }

    #[test]
    fn a_format_3_bond_decodes_with_the_kernel_defaults_of_the_appended_options() {
        let config = config_with(vec![bond("bond0"), bond("bond1")]);
        let payload = format_4_payload(&config);
        // The format 3 layout: each bond without its last four fields, which at their defaults
        // are one byte each (three enum variant indexes 0, then None).
        let mut old = payload.clone();
        for name in ["bond1", "bond0"] {
            let one = postcard::to_allocvec(&bond(name)).unwrap();
            assert_eq!(one[one.len() - 4..], [0, 0, 0, 0]);
            let at = old
                .windows(one.len())
                .position(|window| window == one.as_slice())
                .unwrap();
            old.drain(at + one.len() - 4..at + one.len());
        }
        assert_eq!(old.len(), payload.len() - 8);
        assert_eq!(decode(3, &old), config);
        // The same bytes read as format 4 do not pass for a config.
        let mut decoder = postcard::Deserializer::from_bytes(&old);
        let as_new = ConfigIn(4).deserialize(&mut decoder);
        assert!(as_new.is_err() || !decoder.finalize().unwrap_or_default().is_empty());
    }

    #[test]
    fn format_4_carries_the_bond_options() {
        let mut one = bond("bond0");
        one.primary_reselect = PrimaryReselect::Failure;
        one.fail_over_mac = FailOverMac::Follow;
        one.ad_select = AdSelect::Count;
        one.mtu = Some(9000);
        let config = config_with(vec![one]);
        let payload = format_4_payload(&config);
        assert_eq!(decode(4, &payload), config);
        assert_eq!(decode(5, &postcard::to_allocvec(&config).unwrap()), config);
    }

    fn group(name: &str, unicast: Option<MacAddr>) -> ClusterIpGroup {
        ClusterIpGroup {
            name: name.try_into().unwrap(),
            vip: "10.0.0.20".parse().unwrap(),
            interface: "public".try_into().unwrap(),
            unicast_flood_mac: unicast,
            ..ClusterIpGroup::default()
        }
    }

    #[test]
    fn a_format_3_load_sharing_group_decodes_in_multicast_mode() {
        let groups = vec![group("web", None), group("dns", None)];
        let config = Config {
            clusterip: BoundedVec::from_vec(groups).unwrap(),
            ..Config::default()
        };
        let payload = format_4_payload(&config);
        // Format 3 lays each group out without `unicast_flood_mac` (None: one byte 0).
        let mut old = payload.clone();
        for name in ["dns", "web"] {
            let one = postcard::to_allocvec(&group(name, None)).unwrap();
            assert_eq!(one[one.len() - 1], 0);
            let at = old
                .windows(one.len())
                .position(|window| window == one.as_slice())
                .unwrap();
            old.remove(at + one.len() - 1);
        }
        assert_eq!(decode(3, &old), config);
        let unicast = MacAddr([0x02, 0x54, 0x44, 0, 0, 1]);
        let config = Config {
            clusterip: BoundedVec::from_vec(vec![group("web", Some(unicast))]).unwrap(),
            ..Config::default()
        };
        let payload = format_4_payload(&config);
        assert_eq!(decode(4, &payload), config);
        assert_eq!(config.clusterip[0].shared_mac(), (unicast, true));
    }

    fn instance(name: &str, vrid: u8) -> VrrpInstance {
        VrrpInstance {
            name: name.try_into().unwrap(),
            vrid,
            interface: "public".try_into().unwrap(),
            ..VrrpInstance::default()
        }
    }

    /// Removes the last `n` bytes (zeros: empty lists) of the first copy of `item` in `payload`.
    fn drain_tail(payload: &mut Vec<u8>, item: &[u8], n: usize) {
        assert!(item[item.len() - n..].iter().all(|&byte| byte == 0));
        let at = payload
            .windows(item.len())
            .position(|window| window == item)
            .unwrap();
        payload.drain(at + item.len() - n..at + item.len());
    }

    #[test]
    fn format_6_carries_more_checks_and_tracked_checks_and_format_5_decodes_without_them() {
        let text = r#"
            [[vrrp]]
            name = "web"
            vrid = 51
            interface = "public"
            [[virtual_services]]
            name = "shop"
            address = "10.0.0.60"
            port = 80
            check = { kind = { http = { path = "/", status = "200-299" } } }
            [[virtual_services.real_servers]]
            address = "10.0.0.61"
            [[virtual_services.real_servers]]
            address = "10.0.0.62"
            check = { kind = "tcp", connect_port = 5432 }
            [[virtual_services]]
            name = "dns"
            address = "10.0.0.70"
            port = 53
            protocol = "udp"
            check = { kind = { dns = { name = "example.org" } } }
            [[virtual_services.real_servers]]
            address = "10.0.0.71"
        "#;
        let config = crate::text::from_toml(text).unwrap();
        let payload = postcard::to_allocvec(&config).unwrap();
        assert_eq!(decode(6, &payload), config);
        // Format 5: every real server and service without `more_checks` and the instance
        // without `track_checks` (each an empty list, its last byte). Services first (their
        // bytes hold the real servers'), last to first so earlier copies stay where they were.
        let mut old = payload.clone();
        for service in config.virtual_services.iter().rev() {
            drain_tail(&mut old, &postcard::to_allocvec(service).unwrap(), 1);
            for server in service.real_servers.iter().rev() {
                drain_tail(&mut old, &postcard::to_allocvec(server).unwrap(), 1);
            }
        }
        drain_tail(
            &mut old,
            &postcard::to_allocvec(&config.vrrp[0]).unwrap(),
            1,
        );
        assert_eq!(old.len(), payload.len() - 6);
        assert_eq!(decode(5, &old), config);
        // The format 5 bytes do not pass for format 6, nor the format 6 bytes for format 5.
        let mut decoder = postcard::Deserializer::from_bytes(&old);
        let as_new = ConfigIn(6).deserialize(&mut decoder);
        assert!(as_new.is_err() || !decoder.finalize().unwrap_or_default().is_empty());
        let mut decoder = postcard::Deserializer::from_bytes(&payload);
        let as_old = ConfigIn(5).deserialize(&mut decoder);
        assert!(!matches!(as_old, Ok(c) if c == config));

        // Format 6 with the new fields set round-trips.
        let mut config = config;
        let shop = &mut config.virtual_services.as_mut_slice()[0];
        shop.more_checks.push(Check::default()).unwrap();
        let server = &mut shop.real_servers.as_mut_slice()[1];
        server.more_checks.push(Check::default()).unwrap();
        config.vrrp.as_mut_slice()[0]
            .track_checks
            .push(crate::model::TrackedCheck {
                name: "chk".try_into().unwrap(),
                address: "127.0.0.1".parse().unwrap(),
                port: Some(80),
                check: Check::default(),
                weight: -20,
            })
            .unwrap();
        let payload = postcard::to_allocvec(&config).unwrap();
        assert_eq!(decode(6, &payload), config);
    }

    #[test]
    fn format_5_carries_syslog_time_servers_and_vmac_and_format_4_decodes_without_them() {
        use crate::model::{SyslogFacility, SyslogTarget, SyslogTransport};
        let mut config = Config {
            vrrp: BoundedVec::from_vec(vec![instance("web", 51), instance("db", 52)]).unwrap(),
            ..Config::default()
        };
        config.management.metrics = Some("192.0.2.1:9100".parse().unwrap());
        // Format 4: each instance without its last three format 5 fields (false, None, false:
        // 0, 0, 0) and format 6's `track_checks` (an empty list: 0), and the management settings
        // without theirs (two empty lists: 0, 0).
        let current = postcard::to_allocvec(&config).unwrap();
        let mut old = current.clone();
        for name in ["db", "web"] {
            let one =
                postcard::to_allocvec(&instance(name, if name == "db" { 52 } else { 51 })).unwrap();
            assert_eq!(one[one.len() - 4..], [0, 0, 0, 0]);
            let at = old
                .windows(one.len())
                .position(|window| window == one.as_slice())
                .unwrap();
            old.drain(at + one.len() - 4..at + one.len());
        }
        let management = postcard::to_allocvec(&config.management).unwrap();
        let at = old
            .windows(management.len())
            .position(|window| window == management.as_slice())
            .unwrap();
        old.drain(at + management.len() - 2..at + management.len());
        assert_eq!(old.pop(), Some(0), "no trust sets");
        assert_eq!(old.len(), current.len() - 11);
        assert_eq!(decode(4, &old), config);

        config.management.syslog = BoundedVec::from_vec(vec![SyslogTarget {
            address: "192.0.2.5:514".parse().unwrap(),
            transport: SyslogTransport::Tcp,
            facility: SyslogFacility::Local3,
        }])
        .unwrap();
        config.management.time_servers =
            BoundedVec::from_vec(vec!["192.0.2.123".parse().unwrap()]).unwrap();
        config.vrrp.as_mut_slice()[1].use_vmac = true;
        config.vrrp.as_mut_slice()[1].vmac_interface = Some("vrrp.52".try_into().unwrap());
        config.vrrp.as_mut_slice()[1].vmac_xmit_base = true;
        let payload = postcard::to_allocvec(&config).unwrap();
        assert_eq!(decode(6, &payload), config);
        // Format 5: each instance without `track_checks` (its last byte, an empty list).
        let mut old = payload.clone();
        for one in config.vrrp.iter().rev() {
            let one = postcard::to_allocvec(one).unwrap();
            drain_tail(&mut old, &one, 1);
        }
        assert_eq!(decode(5, &old), config);
        // Facilities travel as their RFC 5424 code.
        assert_eq!(SyslogFacility::Local3.code(), 19);
        assert_eq!(
            postcard::to_allocvec(&SyslogFacility::Local3).unwrap(),
            [19]
        );
    }
}
