//! `lvs status`: the kernel's table in `ipvsadm -Ln --stats` shape, with each real server's
//! health verdict and why it is in or out of rotation. Pure text rendering over read-back data.

use std::collections::BTreeMap;
use std::fmt::Write;

use tandem_ipvs::{DestEntry, ForwardMethod, ServiceEntry, ServiceKey, Stats};
use tandem_lvs::RealServerId;

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
