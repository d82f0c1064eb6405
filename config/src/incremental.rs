//! What a commit reuses from the running config: which virtual services the candidate left
//! unchanged ([`ServiceDiff`], one comparison pass shared by the nothing-to-commit test,
//! validation, encoding and the preview) and the running config's encoding cut per service
//! ([`EncodedConfig`]), so a one-weight edit of a 1000 x 10 config re-encodes one service and
//! copies the bytes of the others.
//!
//! Services pair by position: the usual edit keeps every service where it was. After an insert
//! or a removal the services behind it are simply treated as changed (redone, never reused), so
//! the results are those of the full computation in every case; tests compare the two.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::ops::Range;

use crate::blob::BlobError;
use crate::model::Config;

/// Which virtual services of `new` equal the one at the same position in `old`, and whether
/// everything else is equal.
#[derive(Debug, Clone)]
pub(crate) struct ServiceDiff {
    /// Every field but `virtual_services` is equal.
    rest_equal: bool,
    /// The fields outside the services that a service's own checks read are equal (see
    /// [`ServiceDiff::service_context_equal`]).
    service_context_equal: bool,
    /// Both have as many services.
    same_len: bool,
    /// Per service of `new`: equal to `old`'s service at the same index.
    unchanged: Vec<bool>,
}

impl ServiceDiff {
    pub(crate) fn new(old: &Config, new: &Config) -> Self {
        // Destructured so that a new top-level field does not compile until it is compared.
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
        } = new;
        // What `validate::check_service` reads outside the service: interface and bond names,
        // interface addresses (connected subnets), VRRP and load-sharing VIPs (floating
        // addresses), firewall-mark rules. A change of the host name, the peer link or the
        // management plane leaves every unchanged service's issues as they were.
        let service_context_equal = old.interfaces == *interfaces
            && old.bonds == *bonds
            && old.vrrp == *vrrp
            && old.clusterip == *clusterip
            && old.fwmark_rules == *fwmark_rules
            && old.tls_trust == *tls_trust;
        let rest_equal = service_context_equal
            && old.system == *system
            && old.management == *management
            && old.peer_link == *peer_link
            && old.notify == *notify
            && old.sync_groups == *sync_groups
            && old.nat_gateway == *nat_gateway
            && old.real_server == *real_server
            && old.pair == *pair;
        let unchanged = virtual_services
            .iter()
            .enumerate()
            .map(|(index, service)| old.virtual_services.get(index) == Some(service))
            .collect();
        ServiceDiff {
            rest_equal,
            service_context_equal,
            same_len: old.virtual_services.len() == virtual_services.len(),
            unchanged,
        }
    }

    /// The two configs are equal (what `old == new` says).
    pub(crate) fn identical(&self) -> bool {
        self.rest_equal && self.same_len && self.unchanged.iter().all(|same| *same)
    }

    /// Everything but the virtual services is equal.
    pub(crate) fn rest_equal(&self) -> bool {
        self.rest_equal
    }

    /// What the services' own checks read outside the services is equal, so an unchanged
    /// service's validation issues are still its issues.
    pub(crate) fn service_context_equal(&self) -> bool {
        self.service_context_equal
    }

    /// Both configs have as many virtual services.
    pub(crate) fn same_len(&self) -> bool {
        self.same_len
    }

    /// Service `index` of the new config equals the old config's service `index`.
    pub(crate) fn unchanged(&self, index: usize) -> bool {
        self.unchanged.get(index).copied().unwrap_or(false)
    }
}

/// A config's payload (the postcard of the model, without history) and where each virtual
/// service's bytes are in it.
#[derive(Debug, Clone, Default)]
pub(crate) struct EncodedConfig {
    /// Shared with what frames the running config for the partner (framed only when asked).
    bytes: Arc<Vec<u8>>,
    services: Vec<Range<usize>>,
}

fn encode_error(_: postcard::Error) -> BlobError {
    BlobError::Payload {
        reason: "the model does not serialize",
    }
}

impl EncodedConfig {
    /// Encodes `config`. With `base` (the encoding of the config `diff` was taken against),
    /// unchanged services are copied from it instead of being serialized again. The bytes are
    /// exactly `postcard::to_allocvec(config)`.
    pub(crate) fn encode(
        config: &Config,
        base: Option<(&EncodedConfig, &ServiceDiff)>,
    ) -> Result<Self, BlobError> {
        // Postcard writes a struct as its fields in order and a tuple likewise, so the model is
        // its fields before the services, the services as a sequence (length, then each one),
        // and the fields after them. Destructured: a new field does not compile until placed.
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
        let room = base.map_or(4096, |(base, _)| base.bytes.len() + 4096);
        let mut bytes = Vec::with_capacity(room);
        let before = (
            system,
            management,
            peer_link,
            notify,
            interfaces,
            bonds,
            vrrp,
            sync_groups,
        );
        bytes = postcard::to_extend(&before, bytes).map_err(encode_error)?;
        // A sequence's length is a varint, as a `usize` alone is.
        bytes = postcard::to_extend(&virtual_services.len(), bytes).map_err(encode_error)?;
        let mut services = Vec::with_capacity(virtual_services.len());
        for (index, service) in virtual_services.iter().enumerate() {
            let start = bytes.len();
            let reused = base.and_then(|(base, diff)| {
                let range = base.services.get(index)?;
                diff.unchanged(index)
                    .then(|| base.bytes.get(range.clone()))
                    .flatten()
            });
            match reused {
                Some(old) => bytes.extend_from_slice(old),
                None => bytes = postcard::to_extend(service, bytes).map_err(encode_error)?,
            }
            services.push(start..bytes.len());
        }
        let after = (
            fwmark_rules,
            nat_gateway,
            real_server,
            clusterip,
            pair,
            tls_trust,
        );
        bytes = postcard::to_extend(&after, bytes).map_err(encode_error)?;
        Ok(EncodedConfig {
            bytes: Arc::new(bytes),
            services,
        })
    }

    /// The payload: the postcard of the model.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The bytes, shared.
    pub(crate) fn shared_bytes(&self) -> Arc<Vec<u8>> {
        Arc::clone(&self.bytes)
    }
}

#[cfg(test)]
mod tests {
    //! The incremental results must be the full ones: random chains of edits, each checked
    //! against validation, encoding, equality and preview done from scratch.

    use alloc::boxed::Box;
    use alloc::vec;
    use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::model::{
        Check, CheckKind, CheckTiming, Forwarding, FwmarkRule, Interface, RealServer, Vip,
        VirtualService, VrrpInstance, VrrpVersion,
    };
    use crate::net::IpCidr;
    use crate::validate::Validation;
    use crate::BoundedVec;

    /// xorshift64*: deterministic, no dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: usize) -> usize {
            usize::try_from(self.next() % u64::try_from(n.max(1)).unwrap()).unwrap()
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }
    }

    fn v4(c: u8, d: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, c, d))
    }

    fn server(rng: &mut Rng, index: u8) -> RealServer {
        RealServer {
            address: if rng.chance(90) {
                IpAddr::V4(Ipv4Addr::new(172, 16, 1, index))
            } else {
                IpAddr::V4(Ipv4Addr::new(192, 168, 9, index))
            },
            port: rng.chance(80).then_some(8080),
            weight: 100,
            ..RealServer::default()
        }
    }

    fn service(rng: &mut Rng, index: u8) -> VirtualService {
        let mut service = VirtualService {
            address: Some(v4(1, index)),
            port: 80,
            check: rng.chance(50).then(|| {
                Box::new(Check {
                    kind: CheckKind::Tcp,
                    ..Check::default()
                })
            }),
            ..VirtualService::default()
        };
        if rng.chance(20) {
            service.name = alloc::format!("svc{index}").as_str().try_into().unwrap();
        }
        if rng.chance(10) {
            service.address = Some(IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)));
        }
        if rng.chance(10) {
            service.forwarding = Forwarding::Dr;
        }
        // Further checks, beside a check or (an error) without one.
        if rng.chance(20) {
            let _ = service.more_checks.push(Check {
                kind: CheckKind::Ping,
                ..Check::default()
            });
        }
        for server_index in 0..u8::try_from(rng.below(6)).unwrap() {
            service
                .real_servers
                .push(server(rng, server_index))
                .unwrap();
        }
        service
    }

    fn base(rng: &mut Rng) -> Config {
        let mut config = Config::default();
        config.system.hostname = "box".try_into().unwrap();
        for (name, addr) in [("public", "10.0.0.2/16"), ("private", "172.16.0.2/12")] {
            let addresses = BoundedVec::from_vec(vec![addr.parse::<IpCidr>().unwrap()]).unwrap();
            config
                .interfaces
                .push(Interface {
                    name: name.try_into().unwrap(),
                    addresses,
                    ..Interface::default()
                })
                .unwrap();
        }
        let mut vrrp = VrrpInstance {
            name: "vip".try_into().unwrap(),
            vrid: 1,
            interface: "public".try_into().unwrap(),
            version: VrrpVersion::V3,
            advert_interval_cs: 100,
            ..VrrpInstance::default()
        };
        for index in 0..20u8 {
            config.virtual_services.push(service(rng, index)).unwrap();
            if index % 3 == 0 {
                vrrp.vips
                    .push(Vip {
                        address: v4(1, index),
                        prefix: 32,
                        interface: None,
                        label: None,
                    })
                    .unwrap();
            }
        }
        config.vrrp.push(vrrp).unwrap();
        config
    }

    /// One random edit, from a weight change to conflicts between services.
    fn edit(rng: &mut Rng, config: &mut Config) {
        let services = config.virtual_services.len();
        let pick = rng.below(services);
        let other = rng.below(services);
        match rng.below(18) {
            0..=2 => {
                if let Some(service) = config.virtual_services.as_mut_slice().get_mut(pick) {
                    let servers = service.real_servers.len();
                    if let Some(rs) = service
                        .real_servers
                        .as_mut_slice()
                        .get_mut(rng.below(servers))
                    {
                        rs.weight = u32::try_from(rng.below(200)).unwrap();
                    }
                }
            }
            // A duplicate VIP:port (the IPVS key) introduced by the change.
            3 => {
                let address = config.virtual_services.get(other).and_then(|s| s.address);
                if let Some(service) = config.virtual_services.as_mut_slice().get_mut(pick) {
                    service.address = address;
                    service.port = 80;
                }
            }
            // A duplicate removed again, or a service moved to a fresh address.
            4 => {
                if let Some(service) = config.virtual_services.as_mut_slice().get_mut(pick) {
                    service.address = Some(v4(2, u8::try_from(rng.below(250)).unwrap()));
                }
            }
            5 => {
                config.virtual_services.remove(pick);
            }
            6 => {
                let mut all = core::mem::take(&mut config.virtual_services).into_vec();
                let copy = all.get(other).cloned().unwrap_or_default();
                all.insert(pick.min(all.len()), copy);
                config.virtual_services = BoundedVec::from_vec(all).unwrap();
            }
            7 => {
                let mut all = core::mem::take(&mut config.virtual_services).into_vec();
                if pick < all.len() && other < all.len() {
                    all.swap(pick, other);
                }
                config.virtual_services = BoundedVec::from_vec(all).unwrap();
            }
            // Outside the services and outside what their checks read.
            17 => {
                config.system.hostname = alloc::format!("h{}", rng.below(4))
                    .as_str()
                    .try_into()
                    .unwrap();
                config.peer_link = rng.chance(50).then(crate::model::PeerLink::default);
            }
            // A real server listed twice.
            8 => {
                if let Some(service) = config.virtual_services.as_mut_slice().get_mut(pick) {
                    if let Some(first) = service.real_servers.first().cloned() {
                        let _ = service.real_servers.push(first);
                    }
                }
            }
            // Outside the services: what the services' checks read.
            9 => {
                if let Some(vrrp) = config.vrrp.as_mut_slice().first_mut() {
                    let address = v4(1, u8::try_from(rng.below(25)).unwrap());
                    let _ = vrrp.vips.push(Vip {
                        address,
                        prefix: 32,
                        interface: None,
                        label: None,
                    });
                }
            }
            10 => {
                if let Some(interface) = config.interfaces.as_mut_slice().get_mut(rng.below(2)) {
                    interface.addresses = if interface.addresses.is_empty() {
                        BoundedVec::from_vec(vec!["172.16.0.2/12".parse().unwrap()]).unwrap()
                    } else {
                        BoundedVec::new()
                    };
                }
            }
            11 => {
                let mark = u32::try_from(rng.below(3) + 1).unwrap();
                if let Some(service) = config.virtual_services.as_mut_slice().get_mut(pick) {
                    service.fwmark = Some(mark);
                }
            }
            12 => {
                let mark = u32::try_from(rng.below(3) + 1).unwrap();
                let _ = config.fwmark_rules.push(FwmarkRule {
                    mark,
                    ..FwmarkRule::default()
                });
            }
            13 => {
                if let Some(service) = config.virtual_services.as_mut_slice().get_mut(pick) {
                    service.check = Some(Box::new(Check {
                        kind: CheckKind::Tcp,
                        timing: CheckTiming {
                            interval_ms: 0,
                            ..CheckTiming::default()
                        },
                        ..Check::default()
                    }));
                }
            }
            14 => {
                if let Some(service) = config.virtual_services.as_mut_slice().get_mut(pick) {
                    service.name = alloc::format!("n{}", rng.below(4))
                        .as_str()
                        .try_into()
                        .unwrap();
                }
            }
            15 => {
                if let Some(service) = config.virtual_services.as_mut_slice().get_mut(pick) {
                    service.forwarding = Forwarding::Dr;
                    service.port = if rng.chance(50) { 0 } else { 443 };
                }
            }
            16 if config.virtual_services.len() < 40 => {
                let index = u8::try_from(rng.below(250)).unwrap();
                let fresh = service(rng, index);
                config.virtual_services.push(fresh).unwrap();
            }
            // No edit at all.
            _ => {}
        }
    }

    #[test]
    fn incremental_results_are_the_full_ones_over_random_edits() {
        let mut edits = 0;
        for seed in 1..=40u64 {
            let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let mut running = base(&mut rng);
            let mut validation = Validation::full(&running);
            let mut encoded = EncodedConfig::encode(&running, None).unwrap();
            for _ in 0..30 {
                let mut candidate = running.clone();
                for _ in 0..=rng.below(3) {
                    edit(&mut rng, &mut candidate);
                }
                edits += 1;
                let diff = ServiceDiff::new(&running, &candidate);
                assert_eq!(diff.identical(), running == candidate);
                let incremental = Validation::incremental(&candidate, &validation, &diff);
                assert_eq!(incremental.issues(), crate::validate(&candidate).as_slice());
                let bytes = EncodedConfig::encode(&candidate, Some((&encoded, &diff))).unwrap();
                assert_eq!(bytes.bytes(), postcard::to_allocvec(&candidate).unwrap());
                let (with, without) =
                    crate::impact::service_impacts_both_ways(&running, &candidate, &diff);
                assert_eq!(with, without);
                // Chained like commits: the next edit starts from these results.
                running = candidate;
                validation = incremental;
                encoded = bytes;
            }
        }
        assert!(edits >= 1200);
    }

    #[test]
    fn the_piecewise_encoding_is_postcard_for_every_top_level_field() {
        let text = include_str!("../tests/golden/v2_director1_history.blob.toml");
        let mut config = crate::text::from_toml(text).unwrap();
        // Every top-level field away from its default, so a field placed wrongly shows.
        config.management.metrics = Some("127.0.0.1:9100".parse().unwrap());
        config.peer_link = Some(crate::model::PeerLink::default());
        config.bonds.push(crate::model::Bond::default()).unwrap();
        config
            .sync_groups
            .push(crate::model::SyncGroup::default())
            .unwrap();
        config.fwmark_rules.push(FwmarkRule::default()).unwrap();
        config.nat_gateway = Some(crate::model::NatGateway::default());
        config.real_server = Some(crate::model::RealServerRole::default());
        config
            .clusterip
            .push(crate::model::ClusterIpGroup::default())
            .unwrap();
        assert!(!config.virtual_services.is_empty() && !config.vrrp.is_empty());
        assert!(config.notify.is_some() && !config.interfaces.is_empty());
        let encoded = EncodedConfig::encode(&config, None).unwrap();
        assert_eq!(encoded.bytes(), postcard::to_allocvec(&config).unwrap());
    }
}
