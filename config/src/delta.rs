//! A commit as a delta for a partner that runs the commit's base: the virtual services that
//! changed, the rest of the config only when it changed, and the new generation's name.
//!
//! Why: replication used to send the whole blob on every commit, and the partner decoded,
//! checked and compared all of it; for a one-field change of a 1000 x 10 config that is most
//! of the commit-to-applied time. The partner rebuilds the config from the running config it
//! already holds and the delta, then goes the way of a full blob (validation, store, apply).
//! Nothing is trusted from the base match alone: the rebuilt config's digest must equal the
//! sender's `digest`, or the delta is refused and the sender sends the whole blob.
//!
//! Services pair by position, as in a commit ([`crate::incremental`]): a service listed in
//! `services` replaces (or appends at) its index, every other index keeps the base's service.
//! Format (postcard after [`DELTA_MAGIC`]): [`ConfigDelta`]; bounded by the model's limits.

use alloc::vec::Vec;

use serde::{Deserialize, Serialize};

use crate::bounded::BoundedVec;
use crate::history::History;
use crate::incremental::ServiceDiff;
use crate::model::{limits, Config, VirtualService};

/// The first bytes of an encoded delta (a config blob never starts with them).
pub const DELTA_MAGIC: [u8; 4] = *b"TDDL";

/// What changed from the base generation to the new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigDelta {
    /// The generation and digest the receiver must run for the delta to apply.
    pub base_generation: u64,
    pub base_digest: u64,
    /// The new generation's header fields and its config's digest.
    pub generation: u64,
    pub parent_generation: u64,
    pub pair_id: u64,
    pub digest: u64,
    /// The new generation's commit history (it names the base, for the fast-forward test).
    pub history: History,
    /// Every field but `virtual_services` (which is empty here), when any of them changed.
    pub rest: Option<Config>,
    /// How many virtual services the new config has.
    pub service_count: u32,
    /// The services that differ from the base's at the same index, with their index.
    pub services: BoundedVec<(u32, VirtualService), { limits::VIRTUAL_SERVICES }>,
}

/// Why a delta cannot be made or taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeltaError {
    /// Not a delta, truncated, or not decodable.
    Malformed,
    /// The delta names an index or a count the base cannot fill.
    Inconsistent,
}

impl core::fmt::Display for DeltaError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            DeltaError::Malformed => "the config delta does not decode",
            DeltaError::Inconsistent => "the config delta does not fit the config it names",
        })
    }
}

/// The new generation a delta describes (as [`crate::blob::BlobMeta`] plus the digest).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeltaTarget {
    pub generation: u64,
    pub parent_generation: u64,
    pub pair_id: u64,
    pub digest: u64,
}

/// `config` without its virtual services.
fn rest_of(config: &Config) -> Config {
    Config::clone_parts(config, false, true)
}

/// The delta from `base` (generation `base_generation`, digest `base_digest`) to `new`,
/// encoded with its magic.
pub fn encode(
    base: &Config,
    base_generation: u64,
    base_digest: u64,
    new: &Config,
    target: DeltaTarget,
    history: &History,
) -> Result<Vec<u8>, DeltaError> {
    let diff = ServiceDiff::new(base, new);
    let mut services = BoundedVec::default();
    for (index, service) in new.virtual_services.iter().enumerate() {
        if !diff.unchanged(index) {
            let index = u32::try_from(index).map_err(|_| DeltaError::Inconsistent)?;
            services
                .push((index, service.clone()))
                .map_err(|_| DeltaError::Inconsistent)?;
        }
    }
    let delta = ConfigDelta {
        base_generation,
        base_digest,
        generation: target.generation,
        parent_generation: target.parent_generation,
        pair_id: target.pair_id,
        digest: target.digest,
        history: history.clone(),
        rest: (!diff.rest_equal()).then(|| rest_of(new)),
        service_count: u32::try_from(new.virtual_services.len())
            .map_err(|_| DeltaError::Inconsistent)?,
        services,
    };
    let mut out = Vec::from(DELTA_MAGIC);
    let body = postcard::to_allocvec(&delta).map_err(|_| DeltaError::Malformed)?;
    out.extend_from_slice(&body);
    Ok(out)
}

/// Whether `bytes` hold a delta (rather than a config blob).
pub fn is_delta(bytes: &[u8]) -> bool {
    bytes.starts_with(&DELTA_MAGIC)
}

/// The delta in `bytes` (magic first; nothing may follow it).
pub fn decode(bytes: &[u8]) -> Result<ConfigDelta, DeltaError> {
    let body = bytes
        .strip_prefix(&DELTA_MAGIC)
        .ok_or(DeltaError::Malformed)?;
    match postcard::take_from_bytes::<ConfigDelta>(body) {
        Ok((delta, [])) => Ok(delta),
        _ => Err(DeltaError::Malformed),
    }
}

impl ConfigDelta {
    /// The new config: `base` with this delta's services and rest.
    pub fn apply(&self, base: &Config) -> Result<Config, DeltaError> {
        let count = usize::try_from(self.service_count).map_err(|_| DeltaError::Inconsistent)?;
        if count > limits::VIRTUAL_SERVICES {
            return Err(DeltaError::Inconsistent);
        }
        let mut config = match &self.rest {
            Some(rest) if rest.virtual_services.is_empty() => rest.clone(),
            Some(_) => return Err(DeltaError::Inconsistent),
            None => rest_of(base),
        };
        let mut changed = self.services.iter().peekable();
        let mut previous: Option<u32> = None;
        for index in 0..count {
            let service = match changed.peek() {
                Some((at, service)) if usize::try_from(*at).ok() == Some(index) => {
                    // Indices strictly ascending: a repeated one would be lost silently.
                    if previous.is_some_and(|p| p >= *at) {
                        return Err(DeltaError::Inconsistent);
                    }
                    previous = Some(*at);
                    changed.next();
                    service.clone()
                }
                _ => base
                    .virtual_services
                    .get(index)
                    .cloned()
                    .ok_or(DeltaError::Inconsistent)?,
            };
            config
                .virtual_services
                .push(service)
                .map_err(|_| DeltaError::Inconsistent)?;
        }
        if changed.next().is_some() {
            // An index at or past the count, or out of order.
            return Err(DeltaError::Inconsistent);
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RealServer;

    fn config(services: usize) -> Config {
        let mut config = Config::default();
        for index in 0..services {
            let mut service = VirtualService {
                port: u16::try_from(1000 + index).unwrap(),
                ..VirtualService::default()
            };
            for server in 0..3u8 {
                service
                    .real_servers
                    .push(RealServer {
                        address: core::net::IpAddr::V4(core::net::Ipv4Addr::new(
                            10,
                            0,
                            u8::try_from(index).unwrap(),
                            server,
                        )),
                        weight: 1,
                        ..RealServer::default()
                    })
                    .unwrap();
            }
            config.virtual_services.push(service).unwrap();
        }
        config
    }

    fn target() -> DeltaTarget {
        DeltaTarget {
            generation: 8,
            parent_generation: 7,
            pair_id: 5,
            digest: 0x77,
        }
    }

    fn round_trip(base: &Config, new: &Config) -> (usize, Config) {
        let bytes = encode(base, 7, 0x66, new, target(), &History::default()).unwrap();
        assert!(is_delta(&bytes));
        let delta = decode(&bytes).unwrap();
        assert_eq!((delta.base_generation, delta.base_digest), (7, 0x66));
        (bytes.len(), delta.apply(base).unwrap())
    }

    #[test]
    fn a_one_field_change_travels_as_one_service_and_rebuilds_the_new_config() {
        let base = config(50);
        let mut new = base.clone();
        new.virtual_services.as_mut_slice()[20]
            .real_servers
            .as_mut_slice()[1]
            .weight = 9;
        let (bytes, rebuilt) = round_trip(&base, &new);
        assert_eq!(rebuilt, new);
        let whole = postcard::to_allocvec(&new).unwrap().len();
        assert!(bytes * 10 < whole, "delta {bytes} B, config {whole} B");
        let delta =
            decode(&encode(&base, 7, 0x66, &new, target(), &History::default()).unwrap()).unwrap();
        assert_eq!(delta.services.len(), 1);
        assert!(delta.rest.is_none());
    }

    #[test]
    fn inserts_removals_and_changes_outside_the_services_rebuild_exactly() {
        let base = config(10);
        let mut inserted = base.clone();
        inserted.virtual_services = BoundedVec::default();
        for (index, service) in base.virtual_services.iter().enumerate() {
            if index == 3 {
                let extra = config(1).virtual_services.iter().next().unwrap().clone();
                inserted.virtual_services.push(extra).unwrap();
            }
            inserted.virtual_services.push(service.clone()).unwrap();
        }
        assert_eq!(round_trip(&base, &inserted).1, inserted);
        let mut removed = base.clone();
        removed.virtual_services.remove(4);
        assert_eq!(round_trip(&base, &removed).1, removed);
        let mut renamed = base.clone();
        renamed.system.hostname = "other".try_into().unwrap();
        assert_eq!(round_trip(&base, &renamed).1, renamed);
        assert_eq!(round_trip(&base, &Config::default()).1, Config::default());
        assert_eq!(round_trip(&Config::default(), &base).1, base);
    }

    #[test]
    fn a_delta_that_does_not_fit_its_base_or_does_not_decode_is_refused() {
        let base = config(10);
        let mut new = base.clone();
        new.virtual_services.as_mut_slice()[9].port = 1;
        let bytes = encode(&base, 7, 0x66, &new, target(), &History::default()).unwrap();
        // Applied to a shorter config than its base: index 5.. cannot be filled.
        assert_eq!(
            decode(&bytes).unwrap().apply(&config(5)),
            Err(DeltaError::Inconsistent)
        );
        let mut delta = decode(&bytes).unwrap();
        delta.service_count = 9; // the changed service at index 9 lies past the count
        assert_eq!(delta.apply(&base), Err(DeltaError::Inconsistent));
        let mut twice = decode(&bytes).unwrap();
        let first = twice.services.iter().next().unwrap().clone();
        twice.services.push(first).unwrap();
        assert_eq!(twice.apply(&base), Err(DeltaError::Inconsistent));
        let mut with_services = decode(&bytes).unwrap();
        with_services.rest = Some(base.clone());
        assert_eq!(with_services.apply(&base), Err(DeltaError::Inconsistent));
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(decode(&trailing), Err(DeltaError::Malformed));
        assert_eq!(decode(b"TNDM...."), Err(DeltaError::Malformed));
    }
}
