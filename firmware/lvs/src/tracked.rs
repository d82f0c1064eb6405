//! The checks a VRRP instance tracks (keepalived `vrrp_script` + `track_script`, which the
//! importer maps to a built-in TCP or HTTP(S) check) as the health-check specs the real servers'
//! checks use, so one scheduler and one set of probes serve both: the VRRP engine subscribes
//! what this plans on a checker of its own and feeds the verdicts to its core. Pure, like
//! [`crate::plan`]; what cannot run is a note naming the instance and the check.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tandem_config::model::{self, Config, VrrpInstance};

use crate::health::{CheckKey, CheckSpec, CheckTiming, Probe};
use crate::plan::{probe, trusts, PlannedCheck, Trusts};

/// One tracked check of an instance, ready to subscribe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedPlan {
    /// The check's configured name (unique within its instance).
    pub name: String,
    /// Its weight (see `tandem_config::model::TrackedCheck::weight`).
    pub weight: i16,
    /// What runs, how often, and how the status names it.
    pub check: PlannedCheck,
}

/// The tracked checks of one instance and what of them cannot run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackedChecks {
    /// The checks that run, in config order.
    pub checks: Vec<TrackedPlan>,
    /// One line per check that does not run or runs with a setting ignored.
    pub notes: Vec<String>,
}

/// Whether some tracked check of `config` verifies a certificate against a trust set (only
/// then are the sets parsed).
fn names_a_trust_set(config: &Config) -> bool {
    config.vrrp.iter().any(|instance| {
        instance.track_checks.iter().any(|tracked| {
            matches!(
                tracked.check.kind,
                model::CheckKind::Http {
                    tls_ca: Some(_),
                    ..
                }
            )
        })
    })
}

/// The trust sets the tracked checks of `config` may name, parsed once per apply (empty when
/// no check names one); a set that does not parse is a note.
pub fn trust_sets(config: &Config, notes: &mut Vec<String>) -> TrustSets {
    if names_a_trust_set(config) {
        TrustSets(trusts(config, notes))
    } else {
        TrustSets::default()
    }
}

/// The parsed `[[tls_trust]]` sets (see [`trust_sets`]).
#[derive(Debug, Clone, Default)]
pub struct TrustSets(Trusts);

/// The checks `instance` tracks, as specs for the health scheduler.
pub fn instance_checks(instance: &VrrpInstance, trusts: &TrustSets) -> TrackedChecks {
    let mut out = TrackedChecks::default();
    for tracked in instance.track_checks.iter() {
        let check = &tracked.check;
        let label = format!("vrrp {}: check {}", instance.name, tracked.name);
        let port = check.connect_port.or(tracked.port).unwrap_or(0);
        // An ICMP echo has no port.
        if port == 0 && check.kind != model::CheckKind::Ping {
            out.notes.push(format!(
                "{label} has no port; set its `port` (or the check's `connect_port`) (not run)"
            ));
            continue;
        }
        if check.bind_address.is_some() {
            out.notes
                .push(format!("{label}: `bind_address` is ignored"));
        }
        let (probe, what) = probe(&check.kind, &trusts.0);
        let target = SocketAddr::new(check.connect_address.unwrap_or(tracked.address), port);
        let what: Arc<str> = match probe {
            Probe::Ping => format!("{what} {}", target.ip()).into(),
            _ => format!("{what} {target}").into(),
        };
        let key = CheckKey {
            probe,
            target,
            timeout: Duration::from_millis(u64::from(check.timing.timeout_ms.max(1))),
        };
        let timing = CheckTiming {
            interval: Duration::from_millis(u64::from(check.timing.interval_ms.max(100))),
            retries: u32::from(check.timing.retries),
            retry_delay: Duration::from_millis(u64::from(check.timing.retry_delay_ms)),
            rise: 1,
            fall: 1,
            // Up until a round says otherwise, as a tracked link and a real server start.
            start_up: true,
        };
        out.checks.push(TrackedPlan {
            name: tracked.name.as_str().to_owned(),
            weight: tracked.weight,
            check: PlannedCheck {
                spec: Arc::new(CheckSpec { key, timing }),
                what,
            },
        });
    }
    out
}
