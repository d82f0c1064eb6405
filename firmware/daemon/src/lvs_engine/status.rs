//! `lvs status`: the kernel's table in `ipvsadm -Ln --stats` shape, with each real server's
//! health verdict and why it is in or out of rotation; and the same facts as metric families
//! ([`metrics`]). Pure rendering over read-back data.

use std::collections::BTreeMap;
use std::fmt::Write;

use tandem_ipvs::{DestEntry, ForwardMethod, ServiceEntry, ServiceKey, Stats};
use tandem_lvs::RealServerId;

use crate::metrics::{Families, Family, Labels};

/// What the engine knows about one checked real server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerHealthView {
    /// Check description (`tcp`, `http GET /`).
    pub check: String,
    /// Current verdict.
    pub up: bool,
    /// Last verdict change, as seconds since the engine started.
    pub since_s: Option<f64>,
    /// Last failure reason (when down).
    pub reason: Option<String>,
    /// Why the server is in or out of the kernel table right now.
    pub rotation: String,
}

fn fwd(method: ForwardMethod) -> &'static str {
    match method {
        ForwardMethod::Masq => "Masq",
        ForwardMethod::LocalNode => "Local",
        ForwardMethod::Tunnel => "Tunnel",
        ForwardMethod::DirectRoute => "Route",
        ForwardMethod::Bypass => "Bypass",
    }
}

fn service_head(key: &ServiceKey) -> String {
    match key {
        ServiceKey::Inet {
            protocol,
            addr,
            port,
        } => {
            let proto = protocol.to_string().to_ascii_uppercase();
            match addr {
                std::net::IpAddr::V6(a) => format!("{proto:<4} [{a}]:{port}"),
                std::net::IpAddr::V4(a) => format!("{proto:<4} {a}:{port}"),
            }
        }
        ServiceKey::Fwmark { mark, family } => match family {
            tandem_ipvs::Family::Inet => format!("FWM  {mark}"),
            tandem_ipvs::Family::Inet6 => format!("FWM  {mark} IPv6"),
        },
    }
}

fn stats_cols(s: &Stats) -> String {
    format!(
        "{:>8} {:>8} {:>8} {:>9} {:>9}",
        s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes
    )
}

/// Renders the status block. `health` is keyed by service and server; servers configured but
/// absent from the kernel (removed after a failure) are listed from `health` as `(out)`.
pub fn render(
    table: &[(ServiceEntry, Vec<DestEntry>)],
    health: &BTreeMap<(ServiceKey, RealServerId), ServerHealthView>,
    notes: &[String],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "lvs: {} virtual services, {} real servers in the kernel table",
        table.len(),
        table.iter().map(|(_, d)| d.len()).sum::<usize>()
    );
    let _ = writeln!(
        out,
        "lvs: Prot LocalAddress:Port Scheduler Flags |    Conns   InPkts  OutPkts   InBytes  OutBytes"
    );
    let _ = writeln!(
        out,
        "lvs:   -> RemoteAddress:Port Forward Weight ActiveConn InActConn | stats | health"
    );
    for (svc, dests) in table {
        let s = &svc.service;
        let mut flags = String::new();
        if s.flags & tandem_ipvs::uapi::IP_VS_SVC_F_PERSISTENT != 0 {
            let _ = write!(flags, " persistent {}", s.timeout);
        }
        let _ = writeln!(
            out,
            "lvs: {} {}{} | {}",
            service_head(&s.key),
            s.scheduler,
            flags,
            stats_cols(&svc.stats)
        );
        let mut listed = Vec::new();
        for d in dests {
            let id = RealServerId {
                addr: d.dest.addr,
                port: d.dest.port,
            };
            listed.push(id);
            let health_text = match health.get(&(s.key, id)) {
                Some(h) => health_words(h),
                None => "unchecked, in".to_owned(),
            };
            let _ = writeln!(
                out,
                "lvs:   -> {id} {} {} {} {} | {} | {health_text}",
                fwd(d.dest.forward),
                d.dest.weight,
                d.active_conns,
                d.inactive_conns,
                stats_cols(&d.stats)
            );
        }
        for ((key, id), h) in health.range((s.key, min_id())..) {
            if *key != s.key {
                break;
            }
            if !listed.contains(id) {
                let _ = writeln!(out, "lvs:   -> {id} (out) | {}", health_words(h));
            }
        }
    }
    for note in notes {
        let _ = writeln!(out, "lvs: note: {note}");
    }
    out
}

fn min_id() -> RealServerId {
    RealServerId {
        addr: std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        port: 0,
    }
}

fn health_words(h: &ServerHealthView) -> String {
    let mut text = format!("{} {}", h.check, if h.up { "up" } else { "down" });
    if let Some(since) = h.since_s {
        let _ = write!(text, " since {since:.1}s");
    }
    if let Some(reason) = &h.reason {
        let _ = write!(text, " last failure: {reason}");
    }
    let _ = write!(text, ", {}", h.rotation);
    text
}

/// A checked real server as the metrics show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckMetrics {
    /// The current verdict.
    pub up: bool,
    /// Down verdicts since the check started.
    pub failures: u64,
}

/// The `service` label of a virtual service: `tcp 192.0.2.10:80`, `fwmark 5` (as the config
/// and `lvs status` name it).
fn service_label(key: &ServiceKey) -> String {
    key.to_string()
}

/// The engine's metric families (its answer to `EngineRequest::Metrics`), from the kernel's
/// table as just read: per service its counters; per real server in the table its weight,
/// connections and counters, whether it is quiesced (weight 0 in the kernel while its
/// configured weight is not) and, when checked, its verdict and failures; per checked real
/// server the table does not hold (removed after a failure) its verdict and failures;
/// services with a quorum whether it holds.
pub fn metrics(
    table: &[(ServiceEntry, Vec<DestEntry>)],
    configured_weight: &dyn Fn(&ServiceKey, &RealServerId) -> Option<u32>,
    checks: &BTreeMap<(ServiceKey, RealServerId), CheckMetrics>,
    quorum: &[(ServiceKey, bool)],
) -> Families {
    let mut services = Family::gauge(
        "tandem_lvs_services",
        "Virtual services in the kernel's IPVS table.",
    );
    let mut service_connections = Family::counter(
        "tandem_lvs_service_connections_total",
        "Connections IPVS scheduled for the virtual service.",
    );
    let mut service_packets = Family::counter(
        "tandem_lvs_service_packets_total",
        "Packets of the virtual service, by direction (in: from clients, out: replies).",
    );
    let mut service_bytes = Family::counter(
        "tandem_lvs_service_bytes_total",
        "Bytes of the virtual service, by direction (in: from clients, out: replies).",
    );
    let mut weight = Family::gauge(
        "tandem_lvs_real_server_weight",
        "Real server weight in the kernel's table (0: no new connections).",
    );
    let mut quiesced = Family::gauge(
        "tandem_lvs_real_server_quiesced",
        "1 when the real server is in the table at weight 0 while its configured weight is not (failed check, waiting for re-entry).",
    );
    let mut active = Family::gauge(
        "tandem_lvs_real_server_active_connections",
        "Active (established) connections to the real server.",
    );
    let mut inactive = Family::gauge(
        "tandem_lvs_real_server_inactive_connections",
        "Inactive connections (closing, or UDP) to the real server.",
    );
    let mut connections = Family::counter(
        "tandem_lvs_real_server_connections_total",
        "Connections IPVS scheduled to the real server.",
    );
    let mut packets = Family::counter(
        "tandem_lvs_real_server_packets_total",
        "Packets to and from the real server, by direction.",
    );
    let mut bytes = Family::counter(
        "tandem_lvs_real_server_bytes_total",
        "Bytes to and from the real server, by direction.",
    );
    let mut up = Family::gauge(
        "tandem_lvs_real_server_up",
        "Health check verdict of the real server: 1 up, 0 down (checked servers only).",
    );
    let mut failures = Family::counter(
        "tandem_lvs_real_server_check_failures_total",
        "Down verdicts of the real server's health check since the check started.",
    );
    services.add(Labels::NONE, table.len());
    let directions = |labels: &Labels, family: &mut Family, inward: u64, outward: u64| {
        family.add_each(labels, "direction", [("in", inward), ("out", outward)]);
    };
    for (entry, dests) in table {
        let key = &entry.service.key;
        let service = Labels::of(&[("service", &service_label(key))]);
        let s = &entry.stats;
        service_connections.add(service.clone(), s.conns);
        directions(&service, &mut service_packets, s.inpkts, s.outpkts);
        directions(&service, &mut service_bytes, s.inbytes, s.outbytes);
        for dest in dests {
            let id = RealServerId {
                addr: dest.dest.addr,
                port: dest.dest.port,
            };
            let labels = service.and("real_server", &id.to_string());
            weight.add(labels.clone(), dest.dest.weight);
            let configured = configured_weight(key, &id).unwrap_or(0);
            quiesced.add(labels.clone(), dest.dest.weight == 0 && configured > 0);
            active.add(labels.clone(), dest.active_conns);
            inactive.add(labels.clone(), dest.inactive_conns);
            let s = &dest.stats;
            connections.add(labels.clone(), s.conns);
            directions(&labels, &mut packets, s.inpkts, s.outpkts);
            directions(&labels, &mut bytes, s.inbytes, s.outbytes);
        }
    }
    for ((key, id), check) in checks {
        let labels = Labels::of(&[
            ("service", &service_label(key)),
            ("real_server", &id.to_string()),
        ]);
        up.add(labels.clone(), check.up);
        failures.add(labels, check.failures);
    }
    let mut quorum_up = Family::gauge(
        "tandem_lvs_service_quorum_up",
        "1 while the virtual service holds its quorum of healthy real servers (services with a quorum only).",
    );
    for (key, holds) in quorum {
        quorum_up.add(Labels::of(&[("service", &service_label(key))]), *holds);
    }
    let mut families = Families::new();
    for family in [
        services,
        service_connections,
        service_packets,
        service_bytes,
        weight,
        quiesced,
        active,
        inactive,
        connections,
        packets,
        bytes,
        up,
        failures,
        quorum_up,
    ] {
        families.push(family);
    }
    families
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use tandem_ipvs::{Dest, Protocol, Service};

    #[test]
    fn renders_services_dests_health_and_removed_servers() {
        let key = ServiceKey::Inet {
            protocol: Protocol::Tcp,
            addr: "192.0.2.10".parse().unwrap(),
            port: 80,
        };
        let dest = |last: u8, weight| DestEntry {
            dest: Dest {
                addr: IpAddr::from([198, 51, 100, last]),
                port: 80,
                forward: ForwardMethod::Masq,
                weight,
                upper_threshold: 0,
                lower_threshold: 0,
                tunnel: None,
            },
            active_conns: 2,
            inactive_conns: 5,
            persist_conns: 0,
            stats: Stats {
                conns: 7,
                ..Stats::default()
            },
        };
        let table = vec![(
            ServiceEntry {
                service: Service::new(key, "wrr"),
                stats: Stats::default(),
            },
            vec![dest(11, 1)],
        )];
        let id = |last: u8| RealServerId {
            addr: IpAddr::from([198, 51, 100, last]),
            port: 80,
        };
        let mut health = BTreeMap::new();
        health.insert(
            (key, id(11)),
            ServerHealthView {
                check: "tcp".into(),
                up: true,
                since_s: None,
                reason: None,
                rotation: "in".into(),
            },
        );
        health.insert(
            (key, id(12)),
            ServerHealthView {
                check: "tcp".into(),
                up: false,
                since_s: Some(3.0),
                reason: Some("connect failed: refused".into()),
                rotation: "out: failed check (removed)".into(),
            },
        );
        let checks: BTreeMap<_, _> = health
            .iter()
            .map(|(slot, h)| {
                let failures = u64::from(!h.up);
                (*slot, CheckMetrics { up: h.up, failures })
            })
            .collect();
        let configured = |_: &ServiceKey, _: &RealServerId| Some(1);
        let mut out = Vec::new();
        metrics(&table, &configured, &checks, &[(key, true)])
            .render(crate::metrics::Format::Prometheus, &mut out);
        let metrics_text = String::from_utf8(out).unwrap();
        for line in [
            "tandem_lvs_services 1\n",
            "tandem_lvs_real_server_weight{service=\"tcp 192.0.2.10:80\",real_server=\"198.51.100.11:80\"} 1\n",
            "tandem_lvs_real_server_quiesced{service=\"tcp 192.0.2.10:80\",real_server=\"198.51.100.11:80\"} 0\n",
            "tandem_lvs_real_server_active_connections{service=\"tcp 192.0.2.10:80\",real_server=\"198.51.100.11:80\"} 2\n",
            "tandem_lvs_real_server_connections_total{service=\"tcp 192.0.2.10:80\",real_server=\"198.51.100.11:80\"} 7\n",
            "tandem_lvs_real_server_packets_total{service=\"tcp 192.0.2.10:80\",real_server=\"198.51.100.11:80\",direction=\"in\"} 0\n",
            "tandem_lvs_real_server_up{service=\"tcp 192.0.2.10:80\",real_server=\"198.51.100.12:80\"} 0\n",
            "tandem_lvs_real_server_check_failures_total{service=\"tcp 192.0.2.10:80\",real_server=\"198.51.100.12:80\"} 1\n",
            "tandem_lvs_service_quorum_up{service=\"tcp 192.0.2.10:80\"} 1\n",
        ] {
            assert!(metrics_text.contains(line), "{line} missing from\n{metrics_text}");
        }
        let text = render(&table, &health, &[]);
        assert!(text.contains("lvs: TCP  192.0.2.10:80 wrr |"), "{text}");
        assert!(
            text.contains("lvs:   -> 198.51.100.11:80 Masq 1 2 5 |        7"),
            "{text}"
        );
        assert!(text.contains("tcp up, in"), "{text}");
        assert!(
            text.contains("lvs:   -> 198.51.100.12:80 (out) | tcp down since 3.0s last failure: connect failed: refused, out: failed check (removed)"),
            "{text}"
        );
    }
}
