//! Config → director plan: per virtual service, the table entry the config asks for (every
//! real server healthy), its health policy and its health checks, keyed by the stable identity
//! (service, real server) so a new config compares against the running one slot by slot.
//! Pure, so the mapping is tested without a kernel; what cannot be honoured (`bindto`) is
//! reported as a note instead of being silently approximated. The trust anchors of the
//! `[[tls_trust]]` sets are parsed once per plan (a set whose PEM does not parse is a note
//! naming it, and the HTTPS checks that name it fail as not trusted).
//!
//! A plan is built per service and shared ([`Arc<ServicePlan>`]): given the previous config and
//! plan, a service configured exactly as before keeps its plan object, so a live apply skips it
//! by pointer and does work in proportion to what changed, not to the size of the config.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tandem_config::model::{self, Config};

use crate::health::{
    BodyCheck, CheckKey, CheckSpec, CheckTiming, DnsProbe, HttpProbe, HttpUrl, OnFailure, Probe,
    SendExpect, ServicePolicy, SubCheck, TlsTrust, TrustAnchors, UdpProbe,
};
use crate::{
    Family, Forwarding, Persistence, RealServer, RealServerId, Scheduler, SchedulerFlags,
    ServiceId, ServiceSettings, Table, VirtualService,
};

/// The stable identity of a health check: the real server it watches in one service. A new
/// config keeps a check whose slot and spec are unchanged (see [`crate::live`]).
pub type CheckSlot = (ServiceId, RealServerId);

/// One planned health check: what it runs and how the status names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedCheck {
    /// Shared with the running subscription while it stays.
    pub spec: Arc<CheckSpec>,
    /// Short description for the status (`http GET /health`, `tcp`); shared by the servers of
    /// a service that use the service's check.
    pub what: Arc<str>,
}

/// What one configured virtual service asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ServicePlan {
    /// The service with every active real server at its configured weight.
    pub service: VirtualService,
    /// Its health policy.
    pub policy: ServicePolicy,
    /// Its health checks by real server.
    pub checks: BTreeMap<RealServerId, PlannedCheck>,
    /// Servers start as down (`start_down`).
    pub start_down: bool,
    /// What of this service was skipped or approximated.
    pub notes: Vec<String>,
}

/// A service's plan and the index of the configured service it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedService {
    pub plan: Arc<ServicePlan>,
    /// Index in `config.virtual_services` (to recognise an unchanged service next time).
    pub source: usize,
}

/// Everything the director engine derives from the config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Per service id.
    pub services: BTreeMap<ServiceId, PlannedService>,
    /// Scheduler modules the table needs (`ip_vs_wrr`, ...).
    pub scheduler_modules: Vec<String>,
    /// IPVS application helpers the table needs: `ip_vs_ftp` for a TCP service on port 21
    /// with a NAT real server (see [`needs_ftp_helper`]).
    pub app_modules: Vec<String>,
    /// Config parts that were skipped or approximated, for the log and the status.
    pub notes: Vec<String>,
}

impl Plan {
    /// Whether some service is a firewall-mark service (then `fwmark_rules` must be installed).
    pub fn has_fwmark_services(&self) -> bool {
        self.services
            .keys()
            .any(|id| matches!(id, ServiceId::Fwmark { .. }))
    }

    /// Every module the table needs beyond `ip_vs`: schedulers, then application helpers.
    pub fn module_names(&self) -> impl Iterator<Item = &String> {
        self.scheduler_modules.iter().chain(&self.app_modules)
    }

    /// The plan of one service.
    pub fn service(&self, id: &ServiceId) -> Option<&ServicePlan> {
        self.services.get(id).map(|s| &*s.plan)
    }

    /// The check planned for a slot.
    pub fn check(&self, (id, server): &CheckSlot) -> Option<&PlannedCheck> {
        self.service(id)?.checks.get(server)
    }

    /// Number of planned checks.
    pub fn check_count(&self) -> usize {
        self.services.values().map(|s| s.plan.checks.len()).sum()
    }

    /// The whole desired table (a copy: for tests and status, not for the apply path).
    pub fn table(&self) -> Table {
        Table {
            services: self
                .services
                .iter()
                .map(|(id, s)| (*id, s.plan.service.clone()))
                .collect(),
        }
    }
}

/// The FTP control port. IPVS binds its FTP helper (`ip_vs_ftp`, loaded) to every NAT
/// connection whose virtual port is 21, and registers conntrack for a NAT service on port 21
/// itself (`__ip_vs_update_dest`: "FTP-NAT requires conntrack for mangling").
pub const FTP_PORT: u16 = 21;
/// The IPVS FTP helper module.
pub const FTP_HELPER: &str = "ip_vs_ftp";

/// Whether `vs` (with IPVS id `id`) needs the FTP helper: a TCP service on port 21 with a real
/// server (or sorry server) forwarded by NAT. The helper follows each control connection: it
/// rewrites the real server's private address in the PASV reply (227) to the VIP and opens the
/// data connections of passive (PASV/EPSV) and active (PORT/EPRT, from port 20) mode. DR and
/// TUN real servers answer the client themselves and need no helper; a firewall-mark service
/// (port 0) is left to its marking rules (the Red Hat guide's way), not to the helper.
pub fn needs_ftp_helper(vs: &model::VirtualService, id: &ServiceId) -> bool {
    let nat = |f: model::Forwarding| f == model::Forwarding::Nat;
    matches!(
        id,
        ServiceId::Inet {
            protocol: crate::Protocol::Tcp,
            port: FTP_PORT,
            ..
        }
    ) && (vs
        .real_servers
        .iter()
        .any(|rs| nat(rs.effective_forwarding(vs)))
        || vs
            .sorry_server
            .as_ref()
            .is_some_and(|s| nat(s.forwarding.unwrap_or(vs.forwarding))))
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
                model::Protocol::Tcp => crate::Protocol::Tcp,
                model::Protocol::Udp => crate::Protocol::Udp,
                model::Protocol::Sctp => crate::Protocol::Sctp,
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

/// The longest body an MD5 digest check reads (hashed as it arrives, never buffered); a
/// longer one fails the check, saying so. Health pages are small; this bounds the time and
/// bandwidth of one check against a server that sends without end.
pub const MAX_DIGEST_BODY: u64 = 8 << 20;

/// What a UDP check sends when the config gives no payload: keepalived's filler (its
/// `set_buf` over 32 bytes), so a server sees what it saw from keepalived.
pub const UDP_DEFAULT_PAYLOAD: &[u8; 32] = b"keepalived check - keepalived ch";

/// A configured check's probe and description.
pub(crate) type Probed = (Probe, Arc<str>);

/// The trust of each `[[tls_trust]]` set by name: its anchors, or why they cannot be used.
pub(crate) type Trusts = BTreeMap<String, TlsTrust>;

/// Parses every trust set once; a set that does not parse is noted, naming it.
pub(crate) fn trusts(config: &Config, notes: &mut Vec<String>) -> Trusts {
    config
        .tls_trust
        .iter()
        .map(|set| {
            let trust = match TrustAnchors::from_pem(set.pem.as_bytes()) {
                Ok(anchors) => TlsTrust::Anchors(anchors),
                Err(error) => {
                    let why = format!("tls_trust \"{}\": {error}", set.name);
                    notes.push(format!(
                        "{why}; the HTTPS checks naming it fail (certificate not trusted) until its pem is fixed"
                    ));
                    TlsTrust::Unusable(why)
                }
            };
            (set.name.as_str().to_owned(), trust)
        })
        .collect()
}

/// Whether some check of `vs` verifies certificates against a trust set.
fn names_a_trust_set(vs: &model::VirtualService) -> bool {
    let verifies = |check: Option<&model::Check>| {
        matches!(
            check.map(|c| &c.kind),
            Some(model::CheckKind::Http {
                tls_ca: Some(_),
                ..
            })
        )
    };
    verifies(vs.check.as_deref())
        || vs.more_checks.iter().any(|c| verifies(Some(c)))
        || vs.real_servers.iter().any(|rs| {
            verifies(rs.check.as_deref()) || rs.more_checks.iter().any(|c| verifies(Some(c)))
        })
}

fn url_path(path: &str) -> String {
    if path.is_empty() {
        "/".into()
    } else {
        path.to_owned()
    }
}

/// Status ranges of a URL: keepalived's default is any 2xx.
fn status_ranges(status: Option<&model::StatusCodes>) -> Vec<(u16, u16)> {
    match status {
        Some(codes) => codes.0.iter().map(|r| (r.first, r.last)).collect(),
        None => vec![(200, 299)],
    }
}

fn body_check(body: Option<&model::HttpBody>) -> Option<BodyCheck> {
    body.map(|body| match body {
        model::HttpBody::Contains(text) => BodyCheck::Contains(lossy(text)),
        model::HttpBody::Md5(digest) => BodyCheck::Md5 {
            digest: *digest,
            max_body: MAX_DIGEST_BODY,
        },
    })
}

/// `GET /path` and ` md5` when the body's digest is checked, for the status.
fn url_what(path: &str, body: Option<&BodyCheck>) -> String {
    let md5 = match body {
        Some(BodyCheck::Md5 { .. }) => " md5",
        _ => "",
    };
    format!("GET {path}{md5}")
}

fn record_type_name(record_type: model::DnsRecordType) -> &'static str {
    match record_type {
        model::DnsRecordType::A => "A",
        model::DnsRecordType::Ns => "NS",
        model::DnsRecordType::Cname => "CNAME",
        model::DnsRecordType::Soa => "SOA",
        model::DnsRecordType::Mx => "MX",
        model::DnsRecordType::Txt => "TXT",
        model::DnsRecordType::Aaaa => "AAAA",
    }
}

/// The probe for a configured check: every kind of check the model holds runs.
pub(crate) fn probe(kind: &model::CheckKind, trusts: &Trusts) -> Probed {
    match kind {
        model::CheckKind::Tcp => (Probe::Tcp, "tcp".into()),
        model::CheckKind::Http {
            path,
            status,
            body,
            virtual_host,
            tls,
            more_urls,
            tls_ca,
        } => {
            let host = virtual_host.as_ref().map(|h| h.as_str().to_owned());
            let trust = tls.then(|| match tls_ca {
                None => TlsTrust::AnyCertificate,
                Some(name) => trusts.get(name.as_str()).cloned().unwrap_or_else(|| {
                    TlsTrust::Unusable(format!("tls_ca \"{name}\" names no tls_trust set"))
                }),
            });
            let more_urls: Vec<HttpUrl> = more_urls
                .iter()
                .map(|url| HttpUrl {
                    path: url_path(&url.path),
                    host: url
                        .virtual_host
                        .as_ref()
                        .map(|h| h.as_str().to_owned())
                        .or_else(|| host.clone()),
                    status: status_ranges(url.status.as_ref()),
                    body: body_check(url.body.as_ref()),
                })
                .collect();
            let probe = HttpProbe {
                path: url_path(path),
                host,
                status: status_ranges(status.as_ref()),
                body: body_check(body.as_ref()),
                tls: trust,
                more_urls,
            };
            let mut what = format!(
                "{} {}",
                if *tls { "https" } else { "http" },
                url_what(&probe.path, probe.body.as_ref())
            );
            for url in &probe.more_urls {
                what.push_str(", ");
                what.push_str(&url_what(&url.path, url.body.as_ref()));
            }
            if let (true, Some(name)) = (*tls, tls_ca) {
                what.push_str(&format!(" (CA {name})"));
            }
            (Probe::Http(Box::new(probe)), what.into())
        }
        model::CheckKind::Smtp { .. } => (Probe::Smtp, "smtp".into()),
        model::CheckKind::SendExpect { send, expect } => (
            Probe::SendExpect(SendExpect {
                send: lossy(send),
                expect: lossy(expect),
            }),
            "send/expect".into(),
        ),
        model::CheckKind::Ping => (Probe::Ping, "ping".into()),
        model::CheckKind::Udp {
            payload,
            require_reply,
            expect,
        } => (
            Probe::Udp(UdpProbe {
                payload: if payload.is_empty() {
                    UDP_DEFAULT_PAYLOAD.to_vec()
                } else {
                    payload.to_vec()
                },
                require_reply: *require_reply,
                expect: expect.to_vec(),
            }),
            if *require_reply {
                "udp (reply required)".into()
            } else {
                "udp".into()
            },
        ),
        model::CheckKind::Dns { name, record_type } => (
            Probe::Dns(DnsProbe {
                name: name.as_str().to_owned(),
                record_type: record_type.code(),
            }),
            format!("dns {} {name}", record_type_name(*record_type)).into(),
        ),
    }
}

/// The check of one real server, or a note saying why it is not checked. `service_probe` is
/// the service's check, probed once for all the servers that use it. A server with several
/// checks (`more_checks`) gets one check of [`Probe::Every`] of them, on the first check's
/// interval and retries: it is up while every one passes, and a failure names the one that
/// failed.
fn planned_check(
    vs: &model::VirtualService,
    trusts: &Trusts,
    service_probe: Option<&Probed>,
    rs: &model::RealServer,
    server: RealServerId,
    notes: &mut Vec<String>,
) -> Option<PlannedCheck> {
    let mut checks = rs.effective_checks(vs);
    let check = checks.next()?;
    let (first, what) = match (&rs.check, service_probe) {
        (None, Some(probed)) => probed.clone(),
        _ => probe(&check.kind, trusts),
    };
    let key = check_key(vs, check, first, server, None, notes)?;
    let timing = CheckTiming {
        interval: Duration::from_millis(u64::from(check.timing.interval_ms.max(100))),
        retries: u32::from(check.timing.retries),
        retry_delay: Duration::from_millis(u64::from(check.timing.retry_delay_ms)),
        rise: 1,
        fall: 1,
        start_up: !vs.start_down,
    };
    let mut every = Vec::new();
    let mut whats = vec![what.to_string()];
    for (index, more) in checks.enumerate() {
        let (more_probe, more_what) = probe(&more.kind, trusts);
        let Some(more_key) = check_key(vs, more, more_probe, server, Some(index), notes) else {
            continue;
        };
        if (
            more.timing.interval_ms,
            more.timing.retries,
            more.timing.retry_delay_ms,
        ) != (
            check.timing.interval_ms,
            check.timing.retries,
            check.timing.retry_delay_ms,
        ) {
            let note = format!(
                "{}: the further checks of a real server run with its first check's interval and retries (all of its checks run together)",
                vs.label()
            );
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
        if every.is_empty() {
            every.push(SubCheck {
                what: sub_what(&what, &key),
                key: key.clone(),
            });
        }
        every.push(SubCheck {
            what: sub_what(&more_what, &more_key),
            key: more_key,
        });
        whats.push(more_what.to_string());
    }
    let key = if every.is_empty() {
        key
    } else {
        CheckKey {
            target: key.target,
            timeout: every.iter().map(|c| c.key.timeout).sum(),
            probe: Probe::Every(every),
        }
    };
    Some(PlannedCheck {
        spec: Arc::new(CheckSpec { key, timing }),
        what: if whats.len() == 1 {
            what
        } else {
            whats.join(" + ").into()
        },
    })
}

/// How a failure of one of several checks names it: what it is and where it goes.
fn sub_what(what: &str, key: &CheckKey) -> String {
    match key.probe {
        Probe::Ping => format!("{what} {}", key.target.ip()),
        _ => format!("{what} {}", key.target),
    }
}

/// What `check` of `server` connects to, or a note why it cannot (a port-0 target); `more` is
/// the index of a further check (None: the first, which leaves the server unchecked).
fn check_key(
    vs: &model::VirtualService,
    check: &model::Check,
    probe: Probe,
    server: RealServerId,
    more: Option<usize>,
    notes: &mut Vec<String>,
) -> Option<CheckKey> {
    let which = more.map_or(String::new(), |index| format!("more_checks[{index}]: "));
    let target_port = check.connect_port.unwrap_or(server.port);
    // An ICMP echo has no port.
    if target_port == 0 && check.kind != model::CheckKind::Ping {
        let what = if more.is_some() {
            "not run"
        } else {
            "not checked"
        };
        notes.push(format!(
            "{} {server}: {which}check has no port; set `connect_port` ({what})",
            vs.label()
        ));
        return None;
    }
    if check.bind_address.is_some() {
        notes.push(format!(
            "{} {server}: {which}check `bind_address` is ignored",
            vs.label()
        ));
    }
    Some(CheckKey {
        probe,
        target: SocketAddr::new(check.connect_address.unwrap_or(server.addr), target_port),
        timeout: Duration::from_millis(u64::from(check.timing.timeout_ms.max(1))),
    })
}

/// The plan of one configured service with id `id`.
fn plan_service(vs: &model::VirtualService, id: ServiceId, trusts: &Trusts) -> ServicePlan {
    let mut notes = Vec::new();
    let mut service = VirtualService::new(settings(vs, id.family()));
    let mut checks = BTreeMap::new();
    let service_probe = vs.check.as_ref().map(|check| probe(&check.kind, trusts));
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
            notes.push(format!(
                "{} {server}: per-server on_failure is not supported; the service's applies",
                vs.label()
            ));
        }
        match planned_check(vs, trusts, service_probe.as_ref(), rs, server, &mut notes) {
            Some(check) => {
                checks.insert(server, check);
            }
            // A server listed twice: the last one applies, check included.
            None => {
                checks.remove(&server);
            }
        }
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
    let policy = ServicePolicy {
        on_failure: match vs.on_failure {
            model::OnFailure::Remove => OnFailure::Remove,
            model::OnFailure::Quiesce => OnFailure::Quiesce,
        },
        reentry: Duration::from_secs(u64::from(vs.reentry_s)),
        sorry_server,
        quorum: vs.quorum,
        hysteresis: vs.hysteresis,
    };
    ServicePlan {
        service,
        policy,
        checks,
        start_down: vs.start_down,
        notes,
    }
}

/// Builds the director plan of `config` from scratch.
pub fn from_config(config: &Config) -> Plan {
    from_config_reusing(config, None)
}

/// Builds the director plan of `config`, keeping the plan object of every service configured
/// exactly as in `previous` (the config the previous plan was built from, and that plan) and,
/// when it verifies certificates, with the same trust sets.
pub fn from_config_reusing(config: &Config, previous: Option<(&Config, &Plan)>) -> Plan {
    let mut plan = Plan::default();
    let trusts = trusts(config, &mut plan.notes);
    let trust_changed = previous.is_some_and(|(old, _)| old.tls_trust != config.tls_trust);
    for (source, vs) in config.virtual_services.iter().enumerate() {
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
        if plan.services.contains_key(&id) {
            plan.notes.push(format!(
                "virtual service {} is configured twice; the last one applies",
                vs.label()
            ));
        }
        let reused = previous.and_then(|(config, plan)| {
            let before = plan.services.get(&id)?;
            (config.virtual_services.get(before.source) == Some(vs)
                && !(trust_changed && names_a_trust_set(vs)))
            .then(|| Arc::clone(&before.plan))
        });
        let service = reused.unwrap_or_else(|| Arc::new(plan_service(vs, id, &trusts)));
        plan.notes.extend(service.notes.iter().cloned());
        let scheduler = service.service.settings.scheduler.name();
        if !plan
            .scheduler_modules
            .iter()
            .any(|m| m.strip_prefix("ip_vs_") == Some(scheduler))
        {
            plan.scheduler_modules.push(format!("ip_vs_{scheduler}"));
        }
        if needs_ftp_helper(vs, &id) && !plan.app_modules.iter().any(|m| m == FTP_HELPER) {
            plan.app_modules.push(FTP_HELPER.to_owned());
        }
        plan.services.insert(
            id,
            PlannedService {
                plan: service,
                source,
            },
        );
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
"#;

    fn web() -> ServiceId {
        ServiceId::Inet {
            protocol: crate::Protocol::Tcp,
            addr: "192.0.2.10".parse().unwrap(),
            port: 80,
        }
    }

    #[test]
    fn config_maps_to_table_policies_and_checks() {
        let config = tandem_config::text::from_toml(CONFIG).unwrap();
        let plan = from_config(&config);
        assert_eq!(plan.services.len(), 2, "inactive service skipped");
        let svc = &plan.service(&web()).unwrap().service;
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
        let policy = &plan.service(&web()).unwrap().policy;
        assert_eq!(policy.on_failure, OnFailure::Quiesce);
        assert_eq!(policy.reentry, Duration::from_secs(5));

        let mark = ServiceId::Fwmark {
            family: Family::Inet,
            mark: 7,
        };
        let fw = &plan.service(&mark).unwrap().service;
        assert!(fw
            .settings
            .scheduler_flags
            .contains(SchedulerFlags::FALLBACK));
        assert_eq!(
            fw.real_servers.values().next().unwrap().forwarding,
            Forwarding::IPIP
        );
        assert!(plan.has_fwmark_services());

        // Two checks for the web service, keyed by (service, server); the fwmark server has none.
        assert_eq!(plan.check_count(), 2);
        let check = plan.check(&(web(), rs2)).unwrap();
        assert_eq!(check.spec.key.target, "198.51.100.12:8080".parse().unwrap());
        assert_eq!(check.spec.key.timeout, Duration::from_millis(500));
        assert_eq!(check.spec.timing.interval, Duration::from_secs(1));
        assert_eq!(check.spec.timing.retries, 0);
        assert!(check.spec.timing.start_up);
        assert_eq!(&*check.what, "tcp");
        assert_eq!(plan.scheduler_modules, ["ip_vs_wrr", "ip_vs_sh"]);
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    }

    #[test]
    fn https_and_digest_checks_are_planned() {
        let text = r#"
[[virtual_services]]
address = "192.0.2.10"
port = 443
check = { kind = { http = { path = "/", status = 200, tls = true, virtual_host = "api.example", body = { md5 = [144, 1, 80, 152, 60, 210, 79, 176, 214, 150, 63, 125, 40, 225, 127, 114] } } } }

[[virtual_services.real_servers]]
address = "198.51.100.11"
"#;
        let config = tandem_config::text::from_toml(text).unwrap();
        let plan = from_config(&config);
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
        assert_eq!(plan.check_count(), 1);
        let server = RealServerId {
            addr: "198.51.100.11".parse().unwrap(),
            port: 443,
        };
        let service = ServiceId::Inet {
            protocol: crate::Protocol::Tcp,
            addr: "192.0.2.10".parse().unwrap(),
            port: 443,
        };
        let check = plan.check(&(service, server)).unwrap();
        assert_eq!(&*check.what, "https GET / md5");
        let Probe::Http(http) = &check.spec.key.probe else {
            panic!("{check:?}");
        };
        assert_eq!(http.tls, Some(TlsTrust::AnyCertificate));
        assert_eq!(http.host.as_deref(), Some("api.example"));
        assert_eq!(http.status, [(200, 200)]);
        assert_eq!(
            http.body,
            Some(BodyCheck::Md5 {
                digest: crate::health::digest::md5(b"abc"),
                max_body: MAX_DIGEST_BODY
            })
        );
    }

    #[test]
    fn a_service_configured_twice_keeps_only_the_last_ones_checks() {
        let text = r#"
[[virtual_services]]
address = "192.0.2.10"
port = 80
check = { kind = "tcp" }

[[virtual_services.real_servers]]
address = "198.51.100.11"

[[virtual_services]]
address = "192.0.2.10"
port = 80

[[virtual_services.real_servers]]
address = "198.51.100.12"
"#;
        let config = tandem_config::text::from_toml(text).unwrap();
        let plan = from_config(&config);
        assert_eq!(plan.check_count(), 0, "{plan:?}");
        assert_eq!(plan.table().real_server_count(), 1);
        assert_eq!(plan.notes.len(), 1, "{:?}", plan.notes);
    }

    #[test]
    fn an_unchanged_service_keeps_its_plan_object() {
        let config = tandem_config::text::from_toml(CONFIG).unwrap();
        let first = from_config(&config);
        let mut changed = config.clone();
        changed.virtual_services.as_mut_slice()[0]
            .real_servers
            .as_mut_slice()[0]
            .weight = 7;
        let second = from_config_reusing(&changed, Some((&config, &first)));
        let mark = ServiceId::Fwmark {
            family: Family::Inet,
            mark: 7,
        };
        assert!(Arc::ptr_eq(
            &first.services[&mark].plan,
            &second.services[&mark].plan
        ));
        assert!(!Arc::ptr_eq(
            &first.services[&web()].plan,
            &second.services[&web()].plan
        ));
        assert_eq!(
            second,
            from_config(&changed),
            "same plan as built from scratch"
        );
    }

    fn only_check(plan: &Plan) -> &PlannedCheck {
        assert_eq!(plan.check_count(), 1, "{plan:?}");
        plan.services
            .values()
            .next()
            .unwrap()
            .plan
            .checks
            .values()
            .next()
            .unwrap()
    }

    fn one_service(check: &str, extra: &str) -> Config {
        let text = format!(
            r#"{extra}
[[virtual_services]]
address = "192.0.2.10"
port = 53
protocol = "udp"
check = {check}

[[virtual_services.real_servers]]
address = "198.51.100.11"
"#
        );
        tandem_config::text::from_toml(&text).unwrap()
    }

    #[test]
    fn ping_udp_and_dns_checks_are_planned() {
        let plan = from_config(&one_service(r#"{ kind = "ping" }"#, ""));
        let check = only_check(&plan);
        assert_eq!(check.spec.key.probe, Probe::Ping);
        assert_eq!(&*check.what, "ping");
        assert_eq!(
            check.spec.key.target.ip(),
            "198.51.100.11".parse::<IpAddr>().unwrap()
        );

        // A ping has no port: a fwmark service's port-0 server is checked all the same.
        let text = r#"
[[virtual_services]]
fwmark = 3
check = { kind = "ping" }

[[virtual_services.real_servers]]
address = "198.51.100.11"
port = 0
"#;
        let plan = from_config(&tandem_config::text::from_toml(text).unwrap());
        assert_eq!(plan.check_count(), 1, "{:?}", plan.notes);
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);

        let plan = from_config(&one_service(
            r#"{ kind = { udp = { payload = "0102", require_reply = true, expect = "41" } } }"#,
            "",
        ));
        let check = only_check(&plan);
        assert_eq!(
            check.spec.key.probe,
            Probe::Udp(UdpProbe {
                payload: vec![1, 2],
                require_reply: true,
                expect: b"A".to_vec()
            })
        );
        assert_eq!(&*check.what, "udp (reply required)");
        // No payload: keepalived's filler.
        let plan = from_config(&one_service(r#"{ kind = { udp = {} } }"#, ""));
        let Probe::Udp(udp) = &only_check(&plan).spec.key.probe else {
            panic!("{plan:?}");
        };
        assert_eq!(udp.payload, UDP_DEFAULT_PAYLOAD);
        assert!(!udp.require_reply);

        let plan = from_config(&one_service(
            r#"{ kind = { dns = { name = "example.com", record_type = "A" } } }"#,
            "",
        ));
        let check = only_check(&plan);
        assert_eq!(
            check.spec.key.probe,
            Probe::Dns(DnsProbe {
                name: "example.com".into(),
                record_type: 1
            })
        );
        assert_eq!(&*check.what, "dns A example.com");
        let plan = from_config(&one_service(r#"{ kind = { dns = {} } }"#, ""));
        assert_eq!(
            &*only_check(&plan).what,
            "dns SOA .",
            "keepalived's default"
        );
    }

    #[test]
    fn status_ranges_and_every_url_are_planned() {
        let plan = from_config(&one_service(
            r#"{ kind = { http = { path = "/a", status = "200-299 503", virtual_host = "www.example", more_urls = [{ path = "/b", status = 204 }, { path = "/c", virtual_host = "c.example", body = { contains = "ok" } }] } } }"#,
            "",
        ));
        let check = only_check(&plan);
        let Probe::Http(http) = &check.spec.key.probe else {
            panic!("{check:?}");
        };
        assert_eq!(http.status, [(200, 299), (503, 503)]);
        assert_eq!(
            http.more_urls,
            [
                HttpUrl {
                    path: "/b".into(),
                    host: Some("www.example".into()),
                    status: vec![(204, 204)],
                    body: None,
                },
                HttpUrl {
                    path: "/c".into(),
                    host: Some("c.example".into()),
                    status: vec![(200, 299)],
                    body: Some(BodyCheck::Contains(b"ok".to_vec())),
                },
            ]
        );
        assert_eq!(&*check.what, "http GET /a, GET /b, GET /c");
    }

    fn ca_pem() -> String {
        let made = rcgen::generate_simple_self_signed(vec!["ca.example".to_owned()]).unwrap();
        made.cert.pem()
    }

    fn trust_set(name: &str, pem: &str) -> String {
        format!("[[tls_trust]]\nname = \"{name}\"\npem = '''\n{pem}'''\n")
    }

    #[test]
    fn tls_ca_verifies_against_the_named_set_built_once() {
        let check = r#"{ kind = { http = { path = "/", tls = true, tls_ca = "corp" } } }"#;
        let config = one_service(check, &trust_set("corp", &ca_pem()));
        let plan = from_config(&config);
        assert!(plan.notes.is_empty(), "{:?}", plan.notes);
        let planned = only_check(&plan);
        let Probe::Http(http) = &planned.spec.key.probe else {
            panic!("{planned:?}");
        };
        let Some(TlsTrust::Anchors(anchors)) = &http.tls else {
            panic!("{http:?}");
        };
        assert_eq!(anchors.len(), 1);
        assert_eq!(&*planned.what, "https GET / (CA corp)");

        // The same config again reuses the service's plan; a changed set re-plans it.
        let first = &plan.services.values().next().unwrap().plan;
        let again = from_config_reusing(&config, Some((&config, &plan)));
        assert!(Arc::ptr_eq(
            first,
            &again.services.values().next().unwrap().plan
        ));
        let renewed = one_service(check, &trust_set("corp", &ca_pem()));
        let replanned = from_config_reusing(&renewed, Some((&config, &plan)));
        assert!(!Arc::ptr_eq(
            first,
            &replanned.services.values().next().unwrap().plan
        ));
        assert_ne!(
            only_check(&replanned).spec,
            planned.spec,
            "the new CA is used"
        );
    }

    #[test]
    fn a_trust_set_that_does_not_parse_is_a_note_and_its_checks_fail() {
        let broken = "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n";
        let config = one_service(
            r#"{ kind = { http = { path = "/", tls = true, tls_ca = "corp" } } }"#,
            &trust_set("corp", broken),
        );
        let plan = from_config(&config);
        assert_eq!(plan.notes.len(), 1, "{:?}", plan.notes);
        assert!(
            plan.notes[0].starts_with("tls_trust \"corp\": "),
            "{:?}",
            plan.notes
        );
        assert!(plan.notes[0].contains("fail"), "{:?}", plan.notes);
        let planned = only_check(&plan);
        let Probe::Http(http) = &planned.spec.key.probe else {
            panic!("{planned:?}");
        };
        assert!(
            matches!(&http.tls, Some(TlsTrust::Unusable(why)) if why.starts_with("tls_trust \"corp\"")),
            "{http:?}"
        );
    }

    /// The FTP helper is asked for by a TCP port-21 service with a NAT real server (or NAT sorry
    /// server), once, and by nothing else: not DR, not UDP, not another port, not a firewall-mark
    /// service whose marks cover port 21, not an inactive service.
    #[test]
    fn the_ftp_helper_is_planned_for_nat_tcp_services_on_port_21_only() {
        let helper = |services: &str| {
            let config = tandem_config::text::from_toml(services).unwrap();
            from_config(&config).app_modules
        };
        let service = |header: &str, rs: &str| {
            format!("[[virtual_services]]\n{header}\n[[virtual_services.real_servers]]\naddress = \"198.51.100.11\"\n{rs}\n")
        };
        let ftp = "address = \"192.0.2.10\"\nport = 21\nforwarding = \"nat\"";
        assert_eq!(helper(&service(ftp, "")), [FTP_HELPER]);
        // Two FTP services (another VIP, a DR one with a NAT real server): still one module.
        let two = service(ftp, "")
            + &service(
                "address = \"192.0.2.11\"\nport = 21\nforwarding = \"dr\"",
                "forwarding = \"nat\"",
            );
        assert_eq!(helper(&two), [FTP_HELPER]);
        for (header, rs) in [
            (ftp, "forwarding = \"dr\""),
            (
                "address = \"192.0.2.10\"\nport = 21\nforwarding = \"tun\"",
                "",
            ),
            (
                "address = \"192.0.2.10\"\nport = 21\nprotocol = \"udp\"\nforwarding = \"nat\"",
                "",
            ),
            (
                "address = \"192.0.2.10\"\nport = 2121\nforwarding = \"nat\"",
                "",
            ),
            ("fwmark = 21\nforwarding = \"nat\"", "port = 0"),
            (
                "address = \"192.0.2.10\"\nport = 21\nforwarding = \"nat\"\nactive = false",
                "",
            ),
        ] {
            assert!(helper(&service(header, rs)).is_empty(), "{header} / {rs}");
        }
        let sorry = "address = \"192.0.2.10\"\nport = 21\nforwarding = \"dr\"\nsorry_server = { address = \"198.51.100.99\", forwarding = \"nat\" }";
        assert_eq!(helper(&service(sorry, "")), [FTP_HELPER]);
    }

    #[test]
    fn a_real_server_with_several_checks_runs_every_one_of_them() {
        let text = r#"
[[virtual_services]]
address = "192.0.2.10"
port = 80
check = { kind = { http = { path = "/health" } }, timing = { timeout_ms = 2000 } }
more_checks = [{ kind = "tcp", connect_port = 5432, timing = { timeout_ms = 1000 } }]

[[virtual_services.real_servers]]
address = "198.51.100.11"

[[virtual_services.real_servers]]
address = "198.51.100.12"
check = { kind = "tcp" }
more_checks = [{ kind = "ping" }, { kind = "tcp", connect_port = 0 }]
"#;
        let plan = from_config(&tandem_config::text::from_toml(text).unwrap());
        let service = plan.services.values().next().unwrap();
        let checks: Vec<&PlannedCheck> = service.plan.checks.values().collect();
        assert_eq!(checks.len(), 2);
        // The service's two checks, for the server without its own.
        let Probe::Every(every) = &checks[0].spec.key.probe else {
            panic!("{:?}", checks[0]);
        };
        let whats: Vec<&str> = every.iter().map(|c| c.what.as_str()).collect();
        assert_eq!(
            whats,
            [
                "http GET /health 198.51.100.11:80",
                "tcp 198.51.100.11:5432"
            ]
        );
        assert!(matches!(every[0].key.probe, Probe::Http(_)));
        assert_eq!(every[1].key.probe, Probe::Tcp);
        assert_eq!(&*checks[0].what, "http GET /health + tcp");
        assert_eq!(checks[0].spec.key.timeout, Duration::from_millis(3000));
        assert_eq!(
            checks[0].spec.key.target,
            "198.51.100.11:80".parse::<SocketAddr>().unwrap()
        );
        // Its own three, the third without a port: not run, and said so.
        let Probe::Every(every) = &checks[1].spec.key.probe else {
            panic!("{:?}", checks[1]);
        };
        let whats: Vec<&str> = every.iter().map(|c| c.what.as_str()).collect();
        assert_eq!(whats, ["tcp 198.51.100.12:80", "ping 198.51.100.12"]);
        assert!(
            service.plan.notes.contains(
                &"192.0.2.10:80/tcp 198.51.100.12:80: more_checks[1]: check has no port; set `connect_port` (not run)"
                    .to_string()
            ),
            "{:?}",
            service.plan.notes
        );
        // A further check with its own interval runs on the first's: noted once per service.
        let timing_notes = service
            .plan
            .notes
            .iter()
            .filter(|n| n.contains("first check's interval"))
            .count();
        assert_eq!(timing_notes, 0);
        let text = text.replace(
            "timing = { timeout_ms = 1000 }",
            "timing = { timeout_ms = 1000, interval_ms = 1000 }",
        );
        let plan = from_config(&tandem_config::text::from_toml(&text).unwrap());
        let notes = &plan.services.values().next().unwrap().plan.notes;
        assert_eq!(
            notes
                .iter()
                .filter(|n| n.contains("first check's interval"))
                .count(),
            1,
            "{notes:?}"
        );
        // One check alone is planned as before, not as Every.
        let plan = from_config(&one_service(r#"{ kind = "ping" }"#, ""));
        assert_eq!(only_check(&plan).spec.key.probe, Probe::Ping);
    }
}
