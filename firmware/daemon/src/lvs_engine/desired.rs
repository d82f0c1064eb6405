//! Config → director plan: the table the config asks for (every real server healthy), each
//! service's health policy, and the health checks to subscribe. Pure, so the mapping is tested
//! without a kernel; what cannot be honoured (TLS checks, MD5 digests, `bindto`) is reported as
//! a note instead of being silently approximated.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tandem_config::model::{self, Config};
use tandem_lvs::health::{
    CheckKey, CheckSpec, CheckTiming, HttpProbe, OnFailure, Probe, SendExpect, ServicePolicy,
    SubscriberId,
};
use tandem_lvs::{
    Family, Forwarding, Persistence, RealServer, RealServerId, Scheduler, SchedulerFlags,
    ServiceId, ServiceSettings, Table, VirtualService,
};
use tandem_southbound::nft::{L4Proto, MarkRule};

/// One subscribed health check: whose it is and what it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCheck {
    pub service: ServiceId,
    pub server: RealServerId,
    pub spec: CheckSpec,
    /// Short description for the status (`http GET /health`, `tcp`).
    pub what: String,
}

/// Everything the director engine derives from the config.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// Services with every active real server at its configured weight.
    pub table: Table,
    /// Health policy per service.
    pub policies: BTreeMap<ServiceId, ServicePolicy>,
    /// Checks by subscriber id (dense, in table order).
    pub checks: BTreeMap<SubscriberId, PlannedCheck>,
    /// Servers that start as down (`start_down`), per service.
    pub start_down: BTreeMap<ServiceId, bool>,
    /// Scheduler modules the table needs (`ip_vs_wrr`, ...).
    pub scheduler_modules: Vec<String>,
    /// Config parts that were skipped or approximated, for the log and the status.
    pub notes: Vec<String>,
    /// Firewall-mark rules for fwmark services (table `inet tandem`), in config order.
    pub mark_rules: Vec<MarkRule>,
}

/// The nftables marking rules of `config.fwmark_rules`. A `0-0` port range means any port
/// (the keepalived/piranha form of a mark on a whole address).
pub fn mark_rules(config: &Config) -> Vec<MarkRule> {
    config
        .fwmark_rules
        .iter()
        .map(|rule| MarkRule {
            mark: rule.mark,
            protocol: match rule.protocol {
                model::Protocol::Tcp => L4Proto::Tcp,
                model::Protocol::Udp => L4Proto::Udp,
                model::Protocol::Sctp => L4Proto::Sctp,
            },
            destination: rule.destination.addr,
            prefix_len: rule.destination.prefix,
            ports: (rule.port_first, rule.port_last)
                .ne(&(0, 0))
                .then_some((rule.port_first, rule.port_last)),
        })
        .collect()
}

/// The IPVS service id of a configured virtual service, or why it has none.
pub fn service_id(vs: &model::VirtualService) -> Result<ServiceId, String> {
    match (vs.fwmark, vs.address) {
        (Some(mark), address) => Ok(ServiceId::Fwmark {
            family: match address {
                Some(IpAddr::V6(_)) => Family::Inet6,
                _ => Family::Inet,
            },
            mark,
        }),
        (None, Some(addr)) => Ok(ServiceId::Inet {
            protocol: match vs.protocol {
                model::Protocol::Tcp => tandem_lvs::Protocol::Tcp,
                model::Protocol::Udp => tandem_lvs::Protocol::Udp,
                model::Protocol::Sctp => tandem_lvs::Protocol::Sctp,
            },
            addr,
            port: vs.port,
        }),
        (None, None) => Err(format!(
            "virtual service {}: no address and no fwmark; set `address` or `fwmark`",
            vs.label()
        )),
    }
}

fn settings(vs: &model::VirtualService, family: Family) -> ServiceSettings {
    let scheduler = Scheduler::from_name(vs.scheduler.kernel_name());
    let mut flags = SchedulerFlags::empty();
    if vs.scheduler_flags.fallback {
        flags = flags.with(SchedulerFlags::FALLBACK);
    }
    if vs.scheduler_flags.port {
        flags = flags.with(SchedulerFlags::PORT);
    }
    let persistence = vs.persistence.map(|p| Persistence {
        timeout_s: p.timeout_s,
        netmask: match family {
            Family::Inet => {
                let prefix = u32::from(p.netmask_prefix.unwrap_or(32).min(32));
                u32::MAX.checked_shl(32 - prefix).unwrap_or(0)
            }
            Family::Inet6 => u32::from(p.netmask_prefix.unwrap_or(128).min(128)),
        },
        engine: None,
    });
    ServiceSettings {
        scheduler,
        scheduler_flags: flags,
        persistence,
        one_packet: vs.scheduler_flags.one_packet,
    }
}

fn forwarding(f: model::Forwarding) -> Forwarding {
    match f {
        model::Forwarding::Nat => Forwarding::Nat,
        model::Forwarding::Dr => Forwarding::DirectRouting,
        model::Forwarding::Tun => Forwarding::IPIP,
    }
}

fn lossy(text: &str) -> Vec<u8> {
    text.as_bytes().to_vec()
}

/// The probe for a configured check, or why it cannot be run as configured.
fn probe(kind: &model::CheckKind) -> Result<(Probe, String), String> {
    match kind {
        model::CheckKind::Tcp => Ok((Probe::Tcp, "tcp".into())),
        model::CheckKind::Http { tls: true, .. } => {
            Err("HTTPS checks are not supported yet; use an HTTP or TCP check".into())
        }
        model::CheckKind::Http {
            body: Some(model::HttpBody::Md5(_)),
            ..
        } => Err("HTTP MD5 digest checks are not supported yet; use `contains`".into()),
        model::CheckKind::Http {
            path,
            status,
            body,
            virtual_host,
            ..
        } => {
            let body_contains = match body {
                Some(model::HttpBody::Contains(text)) => Some(lossy(text)),
                _ => None,
            };
            let probe = HttpProbe {
                path: if path.is_empty() {
                    "/".into()
                } else {
                    path.as_str().to_owned()
                },
                host: virtual_host.as_ref().map(|h| h.as_str().to_owned()),
                status: match status {
                    Some(code) => vec![(*code, *code)],
                    None => vec![(200, 299)],
                },
                body_contains,
            };
            let what = format!("http GET {}", probe.path);
            Ok((Probe::Http(probe), what))
        }
        model::CheckKind::Smtp { .. } => Ok((Probe::Smtp, "smtp".into())),
        model::CheckKind::SendExpect { send, expect } => Ok((
            Probe::SendExpect(SendExpect {
                send: lossy(send),
                expect: lossy(expect),
            }),
            "send/expect".into(),
        )),
    }
}

/// Builds the director plan of `config`.
pub fn plan(config: &Config) -> Plan {
    let mut plan = Plan::default();
    let mut next_subscriber = 0u64;
    let mut schedulers = Vec::new();
    for vs in config.virtual_services.iter() {
        if !vs.active {
            continue;
        }
        let id = match service_id(vs) {
            Ok(id) => id,
            Err(note) => {
                plan.notes.push(note);
                continue;
            }
        };
        let settings = settings(vs, id.family());
        let module = format!("ip_vs_{}", settings.scheduler.name());
        if !schedulers.contains(&module) {
            schedulers.push(module);
        }
        let mut service = VirtualService::new(settings);
        for rs in vs.real_servers.iter().filter(|rs| rs.active) {
            let server = RealServerId {
                addr: rs.address,
                port: rs.effective_port(vs),
            };
            service.real_servers.insert(
                server,
                RealServer {
                    forwarding: forwarding(rs.effective_forwarding(vs)),
                    weight: rs.weight,
                    upper_threshold: rs.upper_threshold,
                    lower_threshold: rs.lower_threshold,
                },
            );
            if rs.on_failure.is_some_and(|f| f != vs.on_failure) {
                plan.notes.push(format!(
                    "{} {server}: per-server on_failure is not supported; the service's applies",
                    vs.label()
                ));
            }
            let Some(check) = rs.effective_check(vs) else {
                continue;
            };
            let target_port = check.connect_port.unwrap_or(server.port);
            if target_port == 0 {
                plan.notes.push(format!(
                    "{} {server}: check has no port; set `connect_port` (not checked)",
                    vs.label()
                ));
                continue;
            }
            if check.bind_address.is_some() {
                plan.notes.push(format!(
                    "{} {server}: check `bind_address` is ignored",
                    vs.label()
                ));
            }
            let (probe, what) = match probe(&check.kind) {
                Ok(p) => p,
                Err(why) => {
                    plan.notes
                        .push(format!("{} {server}: {why} (not checked)", vs.label()));
                    continue;
                }
            };
            let key = CheckKey {
                probe,
                target: SocketAddr::new(check.connect_address.unwrap_or(server.addr), target_port),
                timeout: Duration::from_millis(u64::from(check.timing.timeout_ms.max(1))),
            };
            let timing = CheckTiming {
                interval: Duration::from_millis(u64::from(check.timing.interval_ms.max(100))),
                retries: u32::from(check.timing.retries),
                retry_delay: Duration::from_millis(u64::from(check.timing.retry_delay_ms)),
                rise: 1,
                fall: 1,
                start_up: !vs.start_down,
            };
            plan.checks.insert(
                SubscriberId(next_subscriber),
                PlannedCheck {
                    service: id,
                    server,
                    spec: CheckSpec { key, timing },
                    what,
                },
            );
            next_subscriber += 1;
        }
        let sorry_server = vs.sorry_server.as_ref().map(|s| {
            (
                RealServerId {
                    addr: s.address,
                    port: s.port.unwrap_or(vs.port),
                },
                RealServer::new(forwarding(s.forwarding.unwrap_or(vs.forwarding)), 1),
            )
        });
        plan.policies.insert(
            id,
            ServicePolicy {
                on_failure: match vs.on_failure {
                    model::OnFailure::Remove => OnFailure::Remove,
                    model::OnFailure::Quiesce => OnFailure::Quiesce,
                },
                reentry: Duration::from_secs(u64::from(vs.reentry_s)),
                sorry_server,
                quorum: vs.quorum,
                hysteresis: vs.hysteresis,
            },
        );
        plan.start_down.insert(id, vs.start_down);
        if plan.table.services.insert(id, service).is_some() {
            plan.notes.push(format!(
                "virtual service {} is configured twice; the last one applies",
                vs.label()
            ));
        }
    }
    plan.scheduler_modules = schedulers;
    if plan
        .table
        .services
        .keys()
        .any(|id| matches!(id, ServiceId::Fwmark { .. }))
    {
        plan.mark_rules = mark_rules(config);
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"
[[virtual_services]]
address = "192.0.2.10"
port = 80
scheduler = "wrr"
on_failure = "quiesce"
reentry_s = 5
persistence = { timeout_s = 300, netmask_prefix = 24 }
check = { kind = "tcp", timing = { interval_ms = 1000, timeout_ms = 500, retries = 0, retry_delay_ms = 100 } }

[[virtual_services.real_servers]]
address = "198.51.100.11"
weight = 1

[[virtual_services.real_servers]]
address = "198.51.100.12"
port = 8080
weight = 3
forwarding = "dr"

[[virtual_services.real_servers]]
address = "198.51.100.13"
active = false

[[virtual_services]]
fwmark = 7
scheduler = "sh"
scheduler_flags = { fallback = true, port = false, one_packet = false }
forwarding = "tun"

[[virtual_services.real_servers]]
address = "198.51.100.11"
port = 0

[[virtual_services]]
address = "192.0.2.11"
port = 25
active = false

[[fwmark_rules]]
mark = 7
destination = "192.0.2.20"
port_first = 80
port_last = 81

[[fwmark_rules]]
mark = 7
protocol = "udp"
destination = "2001:db8::/64"
"#;

    #[test]
    fn config_maps_to_table_policies_and_checks() {
        let config = tandem_config::text::from_toml(CONFIG).unwrap();
        let plan = plan(&config);
        assert_eq!(plan.table.services.len(), 2, "inactive service skipped");
        let web = ServiceId::Inet {
            protocol: tandem_lvs::Protocol::Tcp,
            addr: "192.0.2.10".parse().unwrap(),
            port: 80,
        };
        let svc = &plan.table.services[&web];
        assert_eq!(svc.settings.scheduler, Scheduler::WeightedRoundRobin);
        assert_eq!(
            svc.settings.persistence,
            Some(Persistence {
                timeout_s: 300,
                netmask: 0xffff_ff00,
                engine: None
            })
        );
        assert_eq!(svc.real_servers.len(), 2, "inactive real server skipped");
        let rs2 = RealServerId {
            addr: "198.51.100.12".parse().unwrap(),
            port: 8080,
        };
        assert_eq!(
            svc.real_servers[&rs2],
            RealServer::new(Forwarding::DirectRouting, 3)
        );
        let rs1 = RealServerId {
            addr: "198.51.100.11".parse().unwrap(),
            port: 80,
        };
        assert_eq!(svc.real_servers[&rs1], RealServer::new(Forwarding::Nat, 1));
        let policy = &plan.policies[&web];
        assert_eq!(policy.on_failure, OnFailure::Quiesce);
        assert_eq!(policy.reentry, Duration::from_secs(5));

        let mark = ServiceId::Fwmark {
            family: Family::Inet,
            mark: 7,
        };
        let fw = &plan.table.services[&mark];
        assert!(fw
            .settings
            .scheduler_flags
            .contains(SchedulerFlags::FALLBACK));
        assert_eq!(
            fw.real_servers.values().next().unwrap().forwarding,
            Forwarding::IPIP
        );

        // Two checks for the web service; the fwmark server has no check.
        assert_eq!(plan.checks.len(), 2);
        let check = plan.checks.values().find(|c| c.server == rs2).unwrap();
        assert_eq!(check.spec.key.target, "198.51.100.12:8080".parse().unwrap());
        assert_eq!(check.spec.key.timeout, Duration::from_millis(500));
        assert_eq!(check.spec.timing.interval, Duration::from_secs(1));
        assert_eq!(check.spec.timing.retries, 0);
        assert!(check.spec.timing.start_up);
        assert_eq!(plan.scheduler_modules, ["ip_vs_wrr", "ip_vs_sh"]);
        assert_eq!(
            plan.mark_rules,
            [
                MarkRule {
                    mark: 7,
                    protocol: L4Proto::Tcp,
                    destination: "192.0.2.20".parse().unwrap(),
                    prefix_len: 32,
                    ports: Some((80, 81)),
                },
                MarkRule {
                    mark: 7,
                    protocol: L4Proto::Udp,
                    destination: "2001:db8::".parse().unwrap(),
                    prefix_len: 64,
                    ports: None,
                },
            ]
        );
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    }

    #[test]
    fn unsupported_checks_are_noted_not_approximated() {
        let text = r#"
[[virtual_services]]
address = "192.0.2.10"
port = 443
check = { kind = { http = { path = "/", status = 200, tls = true } } }

[[virtual_services.real_servers]]
address = "198.51.100.11"
"#;
        let config = tandem_config::text::from_toml(text).unwrap();
        let plan = plan(&config);
        assert!(plan.checks.is_empty());
        assert_eq!(plan.notes.len(), 1);
        assert!(plan.notes[0].contains("HTTPS"), "{}", plan.notes[0]);
        assert_eq!(plan.table.real_server_count(), 1);
    }
}
