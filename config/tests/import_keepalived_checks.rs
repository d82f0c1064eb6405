//! keepalived's several checkers per real server and its tracked scripts, imported into blob
//! format 6's `more_checks` and `track_checks`, and exported back (issue 17).

// Test code: panics are the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::path::Path;

use tandem_config::export;
use tandem_config::import::{self, keepalived, Format, Imported, NoteKind};
use tandem_config::model::{Check, CheckKind, TrackedCheck};
use tandem_config::validate::{has_errors, validate};

fn corpus(file: &str) -> Imported {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    keepalived::import_file(&path, &text).unwrap()
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The notes of `imported` about `keyword`, as `"KIND line: message"`.
fn notes_of(imported: &Imported, keyword: &str) -> Vec<String> {
    imported
        .notes
        .iter()
        .filter(|n| n.keyword == keyword)
        .map(|n| {
            let kind = match n.kind {
                NoteKind::Adjusted => "A",
                NoteKind::NotCarried => "NC",
                NoteKind::Invalid => "I",
            };
            format!("{kind} {}: {}", n.line, n.message)
        })
        .collect()
}

/// Exports `imported`'s config and imports it again: the same config.
fn exports_back(imported: &Imported) -> String {
    let exported = export::keepalived::export(&imported.config);
    let again = import::import(&exported.text, Some(Format::Keepalived)).unwrap();
    assert_eq!(again.config, imported.config, "{}", exported.text);
    exported.text
}

#[test]
fn the_localcheck_sample_tracks_its_connect_scripts_as_checks() {
    let imported = corpus("import/keepalived/samples/keepalived.conf.vrrp.localcheck");
    let vi1 = imported.config.vrrp_instance("VI_1").unwrap();
    let tcp = |name: &str, port: u16| TrackedCheck {
        name: name.try_into().unwrap(),
        address: ip("127.0.0.1"),
        port: Some(port),
        check: Check {
            kind: CheckKind::Tcp,
            timing: tandem_config::model::CheckTiming {
                interval_ms: 1000,
                timeout_ms: 1000,
                retries: 0,
                retry_delay_ms: 1000,
            },
            ..Check::default()
        },
        weight: -2,
    };
    let expected = vec![
        tcp("chk_http_port", 80),
        tcp("chk_https_port", 443),
        tcp("chk_smtp_port", 25),
    ];
    assert_eq!(vi1.track_checks.to_vec(), expected);
    let vi2 = imported.config.vrrp_instance("VI_2").unwrap();
    assert_eq!(vi2.track_checks.to_vec(), expected);
    assert!(!has_errors(&validate(&imported.config)));
    assert_eq!(
        notes_of(&imported, "vrrp_script"),
        [
            "NC 11: scripts cannot run on the appliance (it has no shell): \"killall -0 sshd\" is not run; the instances tracking it do not react to it: track a built-in check instead ([[vrrp.track_checks]]: tcp, http, ping, udp, dns ...)",
            "NC 19: scripts cannot run on the appliance (it has no shell): \"killall -0 haproxy\" is not run; the instances tracking it do not react to it: track a built-in check instead ([[vrrp.track_checks]]: tcp, http, ping, udp, dns ...)",
            "A 24: \"</dev/tcp/127.0.0.1/80\" is a TCP connect to 127.0.0.1 port 80: the instances tracking it track the built-in check that does the same (track_checks)",
            "A 30: \"</dev/tcp/127.0.0.1/443\" is a TCP connect to 127.0.0.1 port 443: the instances tracking it track the built-in check that does the same (track_checks)",
            "A 36: \"</dev/tcp/127.0.0.1/25\" is a TCP connect to 127.0.0.1 port 25: the instances tracking it track the built-in check that does the same (track_checks)",
        ]
    );
    assert_eq!(
        notes_of(&imported, "track_script"),
        [
            "NC 56: \"chk_sshd\": scripts cannot run on the appliance (it has no shell); the instance does not react to it (see the vrrp_script's note)",
            "NC 57: \"chk_haproxy\": scripts cannot run on the appliance (it has no shell); the instance does not react to it (see the vrrp_script's note)",
            "NC 78: \"chk_haproxy\": scripts cannot run on the appliance (it has no shell); the instance does not react to it (see the vrrp_script's note)",
        ]
    );
    let text = exports_back(&imported);
    assert!(
        text.contains("vrrp_script chk_http_port {\n    script \"/usr/bin/nc -z 127.0.0.1 80\"\n    interval 1\n    timeout 1\n}"),
        "{text}"
    );
    assert!(
        text.contains("    track_script {\n        chk_http_port weight -2\n        chk_https_port weight -2\n        chk_smtp_port weight -2\n    }"),
        "{text}"
    );
}

const SCRIPTS: &str = r#"
vrrp_script chk_api {
    script "/usr/bin/curl -fsS -o /dev/null http://10.0.0.7:8080/health"
    interval 2
    fall 3
    rise 2
    weight 10
}
vrrp_script chk_gw {
    script "ping -c 1 -W 1 10.0.0.1"
    interval 5
}
vrrp_script chk_named {
    script "nc -z db.example 5432"
}
vrrp_script chk_tls {
    script "timeout 3 curl -fk https://[2001:db8::7]/ready"
    weight -20 reverse
}
vrrp_instance web {
    interface eth0
    virtual_router_id 51
    priority 100
    virtual_ipaddress {
        10.0.0.100/24
    }
    track_script {
        chk_api
        chk_gw weight -30
        chk_named
        chk_tls
        chk_missing
    }
}
"#;

#[test]
fn scripts_that_connect_fetch_or_ping_become_tracked_checks_with_their_weight_and_timing() {
    let imported = import::import(SCRIPTS, Some(Format::Keepalived)).unwrap();
    let web = imported.config.vrrp_instance("web").unwrap();
    let names: Vec<&str> = web.track_checks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["chk_api", "chk_gw", "chk_tls"]);
    // curl --fail: an HTTP GET; fall 3 is two retries an interval apart; the script's weight.
    let api = &web.track_checks[0];
    assert_eq!(
        (api.address, api.port, api.weight),
        (ip("10.0.0.7"), Some(8080), 10)
    );
    assert!(
        matches!(&api.check.kind, CheckKind::Http { path, tls: false, status: None, .. } if path == "/health")
    );
    let timing = api.check.timing;
    assert_eq!(
        (
            timing.interval_ms,
            timing.timeout_ms,
            timing.retries,
            timing.retry_delay_ms
        ),
        (2000, 2000, 2, 2000)
    );
    // ping -c 1: a ping check; track_script's weight overrides the script's (0).
    let gw = &web.track_checks[1];
    assert_eq!(
        (gw.address, gw.port, gw.weight),
        (ip("10.0.0.1"), None, -30)
    );
    assert_eq!(gw.check.kind, CheckKind::Ping);
    assert_eq!(
        (gw.check.timing.interval_ms, gw.check.timing.timeout_ms),
        (5000, 1000)
    );
    // An HTTPS fetch of an IPv6 address with the default port, bounded by timeout(1).
    let tls = &web.track_checks[2];
    assert_eq!(
        (tls.address, tls.port, tls.weight),
        (ip("2001:db8::7"), Some(443), -20)
    );
    assert!(matches!(&tls.check.kind, CheckKind::Http { tls: true, path, .. } if path == "/ready"));
    assert_eq!(tls.check.timing.timeout_ms, 3000);
    assert!(!has_errors(&validate(&imported.config)));

    assert_eq!(
        notes_of(&imported, "vrrp_script")[2],
        "NC 13: \"nc -z db.example 5432\" is a TCP connect to db.example port 5432, but db.example is a host name and the appliance does no DNS lookups; the instances tracking it do not react to it: track a built-in check instead ([[vrrp.track_checks]]: tcp, http, ping, udp, dns ...)"
    );
    assert_eq!(
        notes_of(&imported, "rise"),
        ["NC 6: a tracked check counts as passing again at its first pass"]
    );
    assert_eq!(
        notes_of(&imported, "weight"),
        ["NC 18: reverse is not carried: the weight applies as without it (> 0 added while the check passes, < 0 while it fails)"]
    );
    assert_eq!(
        notes_of(&imported, "track_script"),
        [
            "NC 30: \"chk_named\": scripts cannot run on the appliance (it has no shell); the instance does not react to it (see the vrrp_script's note)",
            "I 32: no vrrp_script is called \"chk_missing\"; keepalived ignores it, and so does the import",
        ]
    );

    // Exported as scripts keepalived runs, which import back to the same checks.
    let text = exports_back(&imported);
    for line in [
        "script \"/usr/bin/curl -fsS -o /dev/null http://10.0.0.7:8080/health\"",
        "script \"/bin/ping -c 1 10.0.0.1\"",
        "script \"/usr/bin/curl -fsSk -o /dev/null https://[2001:db8::7]:443/ready\"",
        "fall 3",
        "chk_gw weight -30",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
}

#[test]
fn every_checker_of_a_real_server_is_run_the_first_as_check_the_others_as_more_checks() {
    let text = r#"
virtual_server 10.0.0.100 80 {
    delay_loop 6
    lb_kind NAT
    protocol TCP
    real_server 10.0.1.1 80 {
        HTTP_GET {
            url {
                path /health
            }
        }
        TCP_CHECK {
            connect_port 5432
            delay_loop 10
        }
    }
    real_server 10.0.1.2 80 {
        TCP_CHECK {
        }
        PING_CHECK {
        }
        MISC_CHECK {
            misc_path "nc -z 10.0.1.2 9000"
        }
        UDP_CHECK {
            connect_port 53
        }
        DNS_CHECK {
            connect_port 53
        }
    }
}
"#;
    let imported = import::import(text, Some(Format::Keepalived)).unwrap();
    let service = &imported.config.virtual_services[0];
    let first = &service.real_servers[0];
    assert!(matches!(
        first.check.as_deref().map(|c| &c.kind),
        Some(CheckKind::Http { .. })
    ));
    assert_eq!(first.more_checks.len(), 1);
    let tcp = &first.more_checks[0];
    assert_eq!(
        (&tcp.kind, tcp.connect_port, tcp.timing.interval_ms),
        (&CheckKind::Tcp, Some(5432), 10_000)
    );
    // Four checks at most: the fifth checker is reported, not dropped silently.
    let second = &service.real_servers[1];
    let kinds: Vec<&CheckKind> = second.effective_checks(service).map(|c| &c.kind).collect();
    assert_eq!(
        kinds,
        [
            &CheckKind::Tcp,
            &CheckKind::Ping,
            &CheckKind::Tcp,
            &second.more_checks[2].kind
        ]
    );
    assert!(matches!(kinds[3], CheckKind::Udp { .. }));
    assert_eq!(second.more_checks[1].connect_port, Some(9000));
    assert_eq!(
        notes_of(&imported, "DNS_CHECK"),
        ["NC 28: Tandem runs at most 4 checks per real server (check and 3 more_checks); this one is not run"]
    );
    assert!(!has_errors(&validate(&imported.config)));
    let text = exports_back(&imported);
    assert!(
        text.contains("        TCP_CHECK {\n            delay_loop 10\n"),
        "{text}"
    );
}

#[test]
fn checkers_every_real_server_shares_are_the_services_checks() {
    let server = |address: &str| {
        format!("    real_server {address} 80 {{\n        HTTP_GET {{\n            url {{\n                path /\n            }}\n        }}\n        TCP_CHECK {{\n            connect_port 8443\n        }}\n    }}\n")
    };
    let text = format!(
        "virtual_server 10.0.0.100 80 {{\n    lb_kind NAT\n{}{}}}\n",
        server("10.0.1.1"),
        server("10.0.1.2")
    );
    let imported = import::import(&text, Some(Format::Keepalived)).unwrap();
    let service = &imported.config.virtual_services[0];
    assert!(matches!(
        service.check.as_deref().map(|c| &c.kind),
        Some(CheckKind::Http { .. })
    ));
    assert_eq!(service.more_checks.len(), 1);
    assert_eq!(service.more_checks[0].connect_port, Some(8443));
    for server in &service.real_servers {
        assert!(server.check.is_none() && server.more_checks.is_empty());
        assert_eq!(server.effective_checks(service).count(), 2);
    }
    exports_back(&imported);
}

#[test]
fn smtp_hosts_are_further_checks_of_their_real_server() {
    let imported = corpus("import/keepalived/samples/keepalived.conf.SMTP_CHECK");
    let servers = &imported.config.virtual_services[0].real_servers;
    let hosts = |index: usize| -> Vec<(Option<IpAddr>, Option<u16>, Option<IpAddr>)> {
        servers[index]
            .more_checks
            .iter()
            .map(|c| {
                assert!(
                    matches!(&c.kind, CheckKind::Smtp { helo_name: Some(h) } if h == "foo.bar.com")
                );
                assert_eq!(c.timing.timeout_ms, 10_000);
                (c.connect_address, c.connect_port, c.bind_address)
            })
            .collect()
    };
    assert_eq!(
        hosts(1),
        [
            (Some(ip("192.168.155.10")), None, None),
            (Some(ip("64.233.167.99")), None, None),
        ]
    );
    assert_eq!(
        hosts(2),
        [
            (None, None, Some(ip("172.16.1.2"))),
            (Some(ip("192.168.155.11")), None, Some(ip("192.168.155.2"))),
            (Some(ip("64.233.167.100")), Some(587), None),
        ]
    );
    exports_back(&imported);
}
