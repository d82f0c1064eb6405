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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::health::HttpProbe;

    fn instance(checks: &str) -> Config {
        let text = format!(
            r#"
[[vrrp]]
name = "web"
vrid = 7
interface = "eth0"

[[vrrp.vips]]
address = "192.0.2.100"
prefix = 24
{checks}"#
        );
        tandem_config::text::from_toml(&text).unwrap()
    }

    fn planned(config: &Config) -> TrackedChecks {
        let mut notes = Vec::new();
        let trusts = trust_sets(config, &mut notes);
        assert!(notes.is_empty(), "{notes:?}");
        instance_checks(&config.vrrp[0], &trusts)
    }

    #[test]
    fn tcp_and_http_checks_map_to_specs_with_their_target_and_timing() {
        let config = instance(
            r#"
[[vrrp.track_checks]]
name = "port"
address = "192.0.2.9"
port = 8080
weight = -50
check = { kind = "tcp", timing = { interval_ms = 2000, timeout_ms = 700, retries = 2, retry_delay_ms = 300 } }

[[vrrp.track_checks]]
name = "health"
address = "192.0.2.9"
port = 80
weight = 0
check = { kind = { http = { path = "/health", status = 200 } }, connect_port = 8081, connect_address = "192.0.2.10" }

[[vrrp.track_checks]]
name = "gw"
address = "192.0.2.1"
weight = 10
check = { kind = "ping" }
"#,
        );
        let out = planned(&config);
        assert!(out.notes.is_empty(), "{:?}", out.notes);
        let [port, health, gw] = &out.checks[..] else {
            panic!("{:?}", out.checks);
        };
        assert_eq!((port.name.as_str(), port.weight), ("port", -50));
        let spec = &port.check.spec;
        assert_eq!(spec.key.probe, Probe::Tcp);
        assert_eq!(spec.key.target, "192.0.2.9:8080".parse().unwrap());
        assert_eq!(spec.key.timeout, Duration::from_millis(700));
        assert_eq!(spec.timing.interval, Duration::from_secs(2));
        assert_eq!(spec.timing.retries, 2);
        assert_eq!(spec.timing.retry_delay, Duration::from_millis(300));
        assert!(spec.timing.start_up);
        assert_eq!(&*port.check.what, "tcp 192.0.2.9:8080");

        // connect_address / connect_port override the tracked address and port.
        assert_eq!(
            health.check.spec.key.target,
            "192.0.2.10:8081".parse().unwrap()
        );
        let Probe::Http(http) = &health.check.spec.key.probe else {
            panic!("{:?}", health.check.spec.key.probe);
        };
        assert_eq!(
            **http,
            HttpProbe {
                path: "/health".into(),
                host: None,
                status: vec![(200, 200)],
                body: None,
                tls: None,
                more_urls: Vec::new(),
            }
        );
        assert_eq!(&*health.check.what, "http GET /health 192.0.2.10:8081");
        assert_eq!(gw.check.spec.key.probe, Probe::Ping);
        assert_eq!(&*gw.check.what, "ping 192.0.2.1");
    }

    #[test]
    fn fall_is_retries_an_interval_apart_and_rise_is_one_round() {
        use crate::health::{FailReason, HealthScheduler, SubscriberId};
        use std::time::Instant;

        // keepalived `interval 1` + `fall 3`, as the importer maps it: two retries 1 s apart.
        let config = instance(
            r#"
[[vrrp.track_checks]]
name = "port"
address = "192.0.2.9"
port = 80
weight = -50
check = { kind = "tcp", timing = { interval_ms = 1000, timeout_ms = 1000, retries = 2, retry_delay_ms = 1000 } }
"#,
        );
        let out = planned(&config);
        let spec = CheckSpec::clone(&out.checks[0].check.spec);
        let mut sched = HealthScheduler::new(1);
        let t0 = Instant::now();
        let sub = SubscriberId(1);
        sched.subscribe(sub, spec, t0);
        let fail = || Err(FailReason::Connect("Connection refused".into()));
        // Runs the attempt due next, with `result`, and returns when it ran.
        let step = |sched: &mut HealthScheduler, result: Result<(), FailReason>| {
            let at = sched.poll_timeout().unwrap();
            let attempt = sched.poll_attempt(at).unwrap();
            sched.handle_result(attempt.check, result, at);
            at
        };
        let first = step(&mut sched, fail());
        assert_eq!(sched.poll_event(), None, "one failure is not a fall");
        let second = step(&mut sched, fail());
        assert_eq!(second - first, Duration::from_secs(1));
        assert_eq!(sched.poll_event(), None);
        let third = step(&mut sched, fail());
        assert_eq!(third - first, Duration::from_secs(2));
        let down = sched.poll_event().unwrap();
        assert!(!down.up, "three failures an interval apart: down");
        assert_eq!(
            down.reason.unwrap().to_string(),
            "connect failed: Connection refused"
        );
        step(&mut sched, Ok(()));
        assert!(sched.poll_event().unwrap().up, "up at the first pass");
    }

    #[test]
    fn a_check_without_a_port_is_a_note_naming_it() {
        let config = instance(
            r#"
[[vrrp.track_checks]]
name = "port"
address = "192.0.2.9"
weight = -50
check = { kind = "tcp" }
"#,
        );
        let out = planned(&config);
        assert!(out.checks.is_empty());
        assert_eq!(
            out.notes,
            ["vrrp web: check port has no port; set its `port` (or the check's `connect_port`) (not run)"]
        );
    }
}
