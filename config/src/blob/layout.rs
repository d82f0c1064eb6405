//! The postcard decoder of the model for every format version, so an older blob decodes with
//! the same code as a current one (a second copy of the model's decoder would cost the
//! appliance binary tens of KB of its 4 MiB). Format 3 appended one field to [`Config`]
//! (`pair`) and one to [`PeerLink`] (`uplink_probes`); a format 1 or 2 payload simply lacks
//! them, and they decode as their defaults: `pair: None`, no uplink probes. A later format that
//! changes more than appended fields gets a decode-only `vN` module of the old types instead.

use core::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, SeqAccess, Visitor};
use serde::Deserialize;

use crate::bounded::BoundedVec;
use crate::model::{Config, PeerLink};

/// The first format with `Config::pair` and `PeerLink::uplink_probes`.
const PAIR_FORMAT: u16 = 3;

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
        const FIELDS: [&str; 14] = [""; 14];
        let count = if self.0 >= PAIR_FORMAT { 14 } else { 13 };
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
            management: next(&mut seq)?,
            peer_link: seq
                .next_element_seed(PeerLinkIn(self.0))?
                .ok_or_else(|| A::Error::custom("payload ends early"))?,
            notify: next(&mut seq)?,
            interfaces: next(&mut seq)?,
            bonds: next(&mut seq)?,
            vrrp: next(&mut seq)?,
            sync_groups: next(&mut seq)?,
            virtual_services: next(&mut seq)?,
            fwmark_rules: next(&mut seq)?,
            nat_gateway: next(&mut seq)?,
            real_server: next(&mut seq)?,
            clusterip: next(&mut seq)?,
            pair: if self.0 >= PAIR_FORMAT {
                next(&mut seq)?
            } else {
                None
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
