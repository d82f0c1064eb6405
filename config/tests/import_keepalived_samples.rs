//! The keepalived.conf import corpus (issue 17): keepalived's own sample configs
//! (`doc/samples/keepalived.conf.*`) and the TUM report's configs each import with exactly the
//! notes listed here (kind, keyword, line), validate with exactly the errors listed, and export
//! back to a keepalived.conf that imports to the same config. Then the leniency rules (what
//! keepalived accepts imports, or one item is refused with its line), `include` files, and
//! hostile input (long lines, unbalanced braces, include loops, binary data).

// Test code: panics are the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use tandem_config::export;
use tandem_config::import::{self, keepalived, Format, ImportError, Imported, NoteKind};
use tandem_config::model::{CheckKind, DnsRecordType, HttpBody, OnFailure, VirtualService};
use tandem_config::validate::{validate, Severity};
use tandem_config::BoundedVec;
use tandem_config::Config;

/// A corpus file: its path under `tests/`, its notes as `"KIND keyword line"` (A adjusted, NC
/// not carried over, I invalid), its validation errors, and what the export cannot write.
struct Sample {
    file: &'static str,
    notes: &'static [&'static str],
    errors: &'static [&'static str],
    export_notes: &'static [&'static str],
}

const NO_MARKING_RULE_1: &str = "error: virtual_server \"fwmark 1\": fwmark 1 has no marking rule, so no packet will ever match; add a [[fwmark_rules]] entry with mark = 1";
const NO_MARKING_RULE_2: &str = "error: virtual_server \"fwmark 2\": fwmark 2 has no marking rule, so no packet will ever match; add a [[fwmark_rules]] entry with mark = 2";

const fn sample(file: &'static str, notes: &'static [&'static str]) -> Sample {
    Sample {
        file,
        notes,
        errors: &[],
        export_notes: &[],
    }
}

/// Every file of the corpus. The fwmark services validate with one error each: their marking
/// rule is an iptables rule outside keepalived.conf, which Tandem needs as [[fwmark_rules]].
const CORPUS: &[Sample] = &[
    sample(
        "import/keepalived/samples/keepalived.conf.HTTP_GET.port",
        &[],
    ),
    sample(
        "import/keepalived/samples/keepalived.conf.IPv6",
        &["A virtual_server_group 7"],
    ),
    sample("import/keepalived/samples/keepalived.conf.PING_CHECK", &[]),
    sample(
        "import/keepalived/samples/keepalived.conf.SMTP_CHECK",
        &["A host 64"],
    ),
    sample(
        "import/keepalived/samples/keepalived.conf.SSL_GET",
        &["A accept 13", "NC auth_type 20"],
    ),
    sample("import/keepalived/samples/keepalived.conf.UDP_CHECK", &[]),
    sample(
        "import/keepalived/samples/keepalived.conf.conditional_conf",
        &[
            "A accept 15",
            "NC @high 19",
            "NC @high 3",
            "NC @high 7",
            "NC @low 20",
            "NC @low 4",
            "NC @low 8",
            "NC track_script 25",
            "NC vrrp_script 6",
        ],
    ),
    Sample {
        file: "import/keepalived/samples/keepalived.conf.fwmark",
        notes: &[],
        errors: &[NO_MARKING_RULE_1],
        export_notes: &[],
    },
    sample("import/keepalived/samples/keepalived.conf.inhibit", &[]),
    sample(
        "import/keepalived/samples/keepalived.conf.misc_check",
        &["NC MISC_CHECK 23"],
    ),
    sample(
        "import/keepalived/samples/keepalived.conf.misc_check_arg",
        &["NC MISC_CHECK 22"],
    ),
    sample(
        "import/keepalived/samples/keepalived.conf.quorum",
        &["NC omega 30", "NC quorum_down 34", "NC quorum_up 33"],
    ),
    sample(
        "import/keepalived/samples/keepalived.conf.sample",
        &["A accept 13"],
    ),
    sample("import/keepalived/samples/keepalived.conf.status_code", &[]),
    sample(
        "import/keepalived/samples/keepalived.conf.track_interface",
        &["A accept 14", "NC static_routes 7", "NC virtual_routes 28"],
    ),
    Sample {
        file: "import/keepalived/samples/keepalived.conf.virtual_server_group",
        notes: &["A virtual_server group 22"],
        errors: &[NO_MARKING_RULE_1, NO_MARKING_RULE_2],
        export_notes: &[],
    },
    sample(
        "import/keepalived/samples/keepalived.conf.virtualhost",
        &["A SSL_GET 24"],
    ),
    sample(
        "import/keepalived/samples/keepalived.conf.vrrp",
        &[
            "A accept 13",
            "A accept 36",
            "A accept 49",
            "A accept 67",
            "A smtp_alert 17",
            "A smtp_alert 38",
            "A smtp_alert 52",
            "A smtp_alert 69",
        ],
    ),
    sample(
        "import/keepalived/samples/keepalived.conf.vrrp.localcheck",
        &[
            "A accept 103",
            "A accept 114",
            "A accept 124",
            "A accept 134",
            "A accept 144",
            "A accept 42",
            "A accept 64",
            "A accept 85",
            "A accept 94",
            "A vrrp_script 24",
            "A vrrp_script 30",
            "A vrrp_script 36",
            "NC track_script 56",
            "NC track_script 57",
            "NC track_script 78",
            "NC vrrp_script 11",
            "NC vrrp_script 19",
        ],
    ),
    Sample {
        file: "import/keepalived/samples/keepalived.conf.vrrp.lvs_syncd",
        notes: &[
            "A accept 26",
            "A accept 38",
            "A accept 8",
            "A lvs_sync_daemon_interface 11",
            "A vrrp_sync_group 3",
            "NC VI_2 4",
            "NC VI_3 5",
        ],
        errors: &[],
        // The sync daemon is written back; the peer port it runs beside is Tandem's own.
        export_notes: &[
            "interfaces: interface addresses, roles and MTUs are not part of keepalived.conf",
            "peer_link: the peer link is not part of keepalived.conf",
        ],
    },
    sample(
        "import/keepalived/samples/keepalived.conf.vrrp.routes",
        &["A accept 15", "NC static_routes 7", "NC virtual_routes 25"],
    ),
    sample(
        "import/keepalived/samples/keepalived.conf.vrrp.rules",
        &["A accept 14", "NC static_rules 9", "NC virtual_rules 24"],
    ),
    sample(
        "import/keepalived/samples/keepalived.conf.vrrp.scripts",
        &[
            "A accept 16",
            "A accept 38",
            "A accept 48",
            "A smtp_alert 19",
            "NC notify_backup 11",
            "NC notify_backup 32",
            "NC notify_fault 13",
            "NC notify_fault 34",
            "NC notify_master 12",
            "NC notify_master 33",
        ],
    ),
    sample(
        "import/keepalived/samples/keepalived.conf.vrrp.static_ipaddress",
        &[
            "A accept 13",
            "NC static_ipaddress 7",
            "NC virtual_routes 21",
        ],
    ),
    sample(
        "import/keepalived/samples/keepalived.conf.vrrp.sync",
        &[
            "A accept 103",
            "A accept 25",
            "A accept 35",
            "A accept 45",
            "A accept 54",
            "A accept 63",
            "A accept 73",
            "A accept 83",
            "A accept 93",
            "NC notify_backup 13",
            "NC notify_fault 15",
            "NC notify_master 14",
        ],
    ),
    // The report's real servers with five-number addresses are refused one by one (keepalived
    // refuses them too); the service imports without them.
    sample(
        "import/keepalived/seeds/tum_5_3_lvs.conf",
        &["I real_server 10", "I real_server 17"],
    ),
    sample(
        "import/keepalived/seeds/tum_5_3_vrrp.conf",
        &[
            "A accept 10",
            "A accept 25",
            "A auth_pass 18",
            "A auth_pass 33",
        ],
    ),
    // Appendix B.11: the two directors.
    sample(
        "data/director1.keepalived.conf",
        &[
            "A accept 19",
            "A accept 34",
            "A accept 56",
            "A accept 71",
            "A auth_pass 27",
            "A auth_pass 42",
            "A auth_pass 64",
            "A auth_pass 79",
        ],
    ),
    sample(
        "data/director2.keepalived.conf",
        &[
            "A accept 19",
            "A accept 34",
            "A accept 56",
            "A accept 71",
            "A auth_pass 27",
            "A auth_pass 42",
            "A auth_pass 64",
            "A auth_pass 79",
        ],
    ),
];

fn tests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests")
}

/// Imports a corpus file as `tandem config import FILE` does (with its path, for includes).
fn import_corpus(file: &str) -> Imported {
    let path = tests_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    keepalived::import_file(&path, &text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn brief(imported: &Imported) -> Vec<String> {
    let mut notes: Vec<String> = imported
        .notes
        .iter()
        .map(|n| {
            let kind = match n.kind {
                NoteKind::Adjusted => "A",
                NoteKind::NotCarried => "NC",
                NoteKind::Invalid => "I",
            };
            format!("{kind} {} {}", n.keyword, n.line)
        })
        .collect();
    notes.sort();
    notes
}

fn errors(config: &Config) -> Vec<String> {
    validate(config)
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| i.to_string())
        .collect()
}

fn service<'a>(config: &'a Config, label: &str) -> &'a VirtualService {
    config
        .virtual_services
        .iter()
        .find(|s| s.label() == label)
        .unwrap_or_else(|| panic!("no service {label}"))
}

#[test]
fn the_corpus_is_every_sample_and_seed_file() {
    let mut listed: Vec<&str> = CORPUS.iter().map(|s| s.file).collect();
    listed.sort_unstable();
    let mut found = Vec::new();
    for dir in ["import/keepalived/samples", "import/keepalived/seeds"] {
        for entry in std::fs::read_dir(tests_dir().join(dir)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            found.push(format!("{dir}/{name}"));
        }
    }
    found.push("data/director1.keepalived.conf".into());
    found.push("data/director2.keepalived.conf".into());
    found.sort();
    assert_eq!(listed, found);
    // keepalived's doc/samples has 25 keepalived.conf.* files.
    assert_eq!(found.iter().filter(|f| f.contains("/samples/")).count(), 25);
}

#[test]
fn every_corpus_file_imports_with_exactly_its_notes_and_errors() {
    for sample in CORPUS {
        let imported = import_corpus(sample.file);
        assert_eq!(brief(&imported), sample.notes, "{}", sample.file);
        assert_eq!(errors(&imported.config), sample.errors, "{}", sample.file);
        // No cosmetic setting makes an import invalid (the CLI's exit code 1).
        let invalid: Vec<_> = imported
            .notes
            .iter()
            .filter(|n| n.kind == NoteKind::Invalid)
            .collect();
        if !sample.file.contains("tum_5_3_lvs") {
            assert!(invalid.is_empty(), "{}: {invalid:#?}", sample.file);
        }
    }
}

/// `tandem config import FILE` (no --format) on every file: exit 0 when it imports clean and
/// validates, 1 when an item was refused or validation has errors (the fwmark marking rules).
#[test]
fn the_cli_imports_every_corpus_file() {
    let out =
        std::env::temp_dir().join(format!("tandem-keepalived-cli-{}.toml", std::process::id()));
    for sample in CORPUS {
        let path = tests_dir().join(sample.file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            import::detect(&text),
            Some(Format::Keepalived),
            "{}",
            sample.file
        );
        let args: Vec<String> = [
            "import",
            path.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let code = tandem_config::cli::run(&args, &mut stdout, &mut stderr);
        let refused = sample.notes.iter().any(|n| n.starts_with("I "));
        let expected = i32::from(refused || !sample.errors.is_empty());
        assert_eq!(
            code,
            expected,
            "{}: {}",
            sample.file,
            String::from_utf8_lossy(&stderr)
        );
        let toml = std::fs::read_to_string(&out).unwrap();
        assert_eq!(
            tandem_config::text::from_toml(&toml).unwrap(),
            import_corpus(sample.file).config,
            "{}",
            sample.file
        );
    }
    let _ = std::fs::remove_file(&out);
}

#[test]
fn every_corpus_file_exports_back_to_the_same_config() {
    for sample in CORPUS {
        let first = import_corpus(sample.file).config;
        let exported = export::keepalived::export(&first);
        let export_notes: Vec<String> = exported.notes.iter().map(|n| n.to_string()).collect();
        assert_eq!(export_notes, sample.export_notes, "{}", sample.file);
        let again = import::import(&exported.text, Some(Format::Keepalived)).unwrap();
        assert!(
            again.is_lossless(),
            "{}: {:#?}\n{}",
            sample.file,
            again.notes,
            exported.text
        );
        assert_eq!(
            again.config, first,
            "{}: exported text:\n{}",
            sample.file, exported.text
        );
    }
}

/// The 16 bytes of a 32-digit hex MD5.
fn md5_hex(hex: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap();
    }
    out
}

/// What the corpus files import to, beyond their notes.
#[test]
fn the_samples_import_what_keepalived_runs() {
    // A local mailbox is imported as it is (the relay adds its domain), with the rest of the
    // notification settings, and validates.
    let http_port = import_corpus("import/keepalived/samples/keepalived.conf.HTTP_GET.port");
    let notify = http_port.config.notify.as_ref().unwrap();
    assert_eq!(
        notify
            .email_to
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>(),
        ["acassen"]
    );
    assert_eq!(
        notify.email_from.as_deref(),
        Some("Alexandre.Cassen@firewall.loc")
    );
    assert_eq!(notify.smtp_server, Some("192.168.200.1".parse().unwrap()));
    assert_eq!(http_port.config.system.hostname.as_str(), "LVS_DEVEL");
    let check = service(&http_port.config, "192.168.200.100:443/tcp")
        .check
        .as_deref()
        .unwrap();
    assert_eq!(check.connect_port, Some(444));
    // SSL_GET is an HTTPS check of its url and digest, on its connect_port; keepalived's
    // defaults otherwise (any 2xx, no virtual host, so no SNI).
    assert!(matches!(
        &check.kind,
        CheckKind::Http {
            tls: true,
            path,
            status: None,
            body: Some(HttpBody::Md5(digest)),
            virtual_host: None,
            more_urls,
            tls_ca: None,
        } if path == "/" && *digest == md5_hex("ff20ad2481f97b1754ef3e12ecd3a9cc") && more_urls.is_empty()
    ));
    assert_eq!(
        (
            check.timing.interval_ms,
            check.timing.timeout_ms,
            check.timing.retries,
            check.timing.retry_delay_ms
        ),
        (6000, 3000, 3, 3000)
    );

    // fwmark: real servers without a port keep the packet's port (IPVS port 0).
    let fwmark = import_corpus("import/keepalived/samples/keepalived.conf.fwmark").config;
    let marked = service(&fwmark, "fwmark 1");
    assert!(marked.real_servers.iter().all(|r| r.port == Some(0)));
    assert_eq!(marked.check.as_ref().unwrap().connect_port, Some(80));

    // An HTTP_GET digest is the MD5 the check compares the body with.
    let inhibit = import_corpus("import/keepalived/samples/keepalived.conf.inhibit").config;
    let check = inhibit.virtual_services[0].real_servers[0]
        .check
        .as_deref()
        .or(inhibit.virtual_services[0].check.as_deref())
        .unwrap();
    assert!(matches!(
        &check.kind,
        CheckKind::Http {
            tls: false,
            body: Some(HttpBody::Md5(_)),
            ..
        }
    ));

    // The virtual host of an SSL_GET is also its TLS server name, which keepalived sends only
    // with enable_sni: said at import.
    let vhost = import_corpus("import/keepalived/samples/keepalived.conf.virtualhost");
    let check = vhost.config.virtual_services[0].check.as_deref().unwrap();
    assert!(matches!(
        &check.kind,
        CheckKind::Http { tls: true, virtual_host: Some(h), .. } if h == "www.firewall.loc"
    ));
    let note = vhost.notes.iter().find(|n| n.keyword == "SSL_GET").unwrap();
    assert_eq!(note.message, "the virtual host is also sent as the TLS server name (SNI), which keepalived does only with enable_sni: a server that picks its certificate by name picks this one's");

    // inhibit_on_failure on a real server: quiesced, not removed.
    assert_eq!(
        inhibit.virtual_services[0].real_servers[0].on_failure,
        Some(OnFailure::Quiesce)
    );

    // sorry_server, nopreempt.
    let sample = import_corpus("import/keepalived/samples/keepalived.conf.sample").config;
    let sorry = sample.virtual_services[0].sorry_server.as_ref().unwrap();
    assert_eq!(
        (sorry.address, sorry.port, sorry.inhibit),
        (
            "192.168.200.200".parse::<IpAddr>().unwrap(),
            Some(1358),
            false
        )
    );
    assert!(!sample.vrrp[0].preempt);

    // status_code 200-299 400-499 503 505: every range and code is checked.
    let status = import_corpus("import/keepalived/samples/keepalived.conf.status_code");
    let check = status.config.virtual_services[0].check.as_deref().unwrap();
    let CheckKind::Http {
        tls: true,
        status: Some(codes),
        path,
        ..
    } = &check.kind
    else {
        panic!("{:?}", check.kind)
    };
    assert_eq!(
        (path.as_str(), codes.to_string().as_str()),
        ("/", "200-299 400-499 503 505")
    );
    assert!(!status.notes.iter().any(|n| n.keyword == "status_code"));

    // virtual_server_group: one service per address and fwmark, all alike.
    let group = import_corpus("import/keepalived/samples/keepalived.conf.virtual_server_group");
    let labels: Vec<String> = group
        .config
        .virtual_services
        .iter()
        .map(VirtualService::label)
        .collect();
    let mut expected = vec![
        "10.0.0.1:8080/tcp".to_string(),
        "10.0.0.2:80/tcp".into(),
        "192.168.200.1:1358/tcp".into(),
    ];
    expected.extend((3..=10).map(|n| format!("192.168.200.{n}:80/tcp")));
    expected.extend(["fwmark 1".to_string(), "fwmark 2".into()]);
    assert_eq!(labels, expected);
    let first = &group.config.virtual_services[0];
    for other in &group.config.virtual_services {
        assert_eq!(other.real_servers.len(), 2);
        assert_eq!(other.check, first.check);
        assert_eq!(other.persistence, first.persistence);
    }
    let note = group
        .notes
        .iter()
        .find(|n| n.keyword == "virtual_server group")
        .unwrap();
    assert_eq!(note.message, "virtual_server_group VSG_1 (10.0.0.1 8080, 10.0.0.2 80, 192.168.200.1 1358, 192.168.200.3-10 80, fwmark 1, fwmark 2) is expanded into 13 services with these settings and real servers: Tandem has no service groups, so each service checks its real servers on its own");

    // SMTP_CHECK host blocks: the checker's own connect_timeout makes every host an extra check.
    let smtp = import_corpus("import/keepalived/samples/keepalived.conf.SMTP_CHECK").config;
    let servers = &smtp.virtual_services[0].real_servers;
    let second = servers[1].check.as_deref().unwrap();
    assert_eq!(
        (second.connect_address, second.timing.timeout_ms),
        (None, 10_000)
    );
    assert!(matches!(&second.kind, CheckKind::Smtp { helo_name: Some(h) } if h == "foo.bar.com"));

    // The deprecated lvs_sync_daemon_interface of an instance is the global sync daemon; the
    // sync group whose members are not inside group { } is empty and removed, as keepalived does.
    let syncd = import_corpus("import/keepalived/samples/keepalived.conf.vrrp.lvs_syncd").config;
    let peer = syncd.peer_link.as_ref().unwrap();
    assert!(peer.ipvs_sync);
    assert_eq!(peer.ipvs_sync_interface.as_deref(), Some("eth1"));
    assert!(syncd.sync_groups.is_empty());

    // quorum and alpha.
    let quorum = import_corpus("import/keepalived/samples/keepalived.conf.quorum").config;
    let pool = &quorum.virtual_services[0];
    assert_eq!(
        (pool.quorum, pool.hysteresis, pool.start_down),
        (7, 2, true)
    );

    // An unresolvable MISC_CHECK leaves the real server unchecked, and says so.
    let misc = import_corpus("import/keepalived/samples/keepalived.conf.misc_check");
    assert!(misc.config.virtual_services[0].check.is_none());
    assert!(misc.config.virtual_services[0].real_servers[0]
        .check
        .is_none());
    let note = misc
        .notes
        .iter()
        .find(|n| n.keyword == "MISC_CHECK")
        .unwrap();
    assert!(
        note.message.contains("the real server is not checked"),
        "{note}"
    );

    // The report's typo: the two real servers are refused with their line and reason.
    let lvs = import_corpus("import/keepalived/seeds/tum_5_3_lvs.conf");
    assert!(lvs.config.virtual_services[0].real_servers.is_empty());
    assert_eq!(
        lvs.notes[0].to_string(),
        "line 10: real_server: invalid: \"192.168.178.0.101\" is not an IP address (the appliance does no DNS lookups)"
    );
}

fn import_text(text: &str) -> Imported {
    keepalived::import(text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn kinds(imported: &Imported) -> Vec<(NoteKind, String, usize)> {
    imported
        .notes
        .iter()
        .map(|n| (n.kind, n.keyword.clone(), n.line))
        .collect()
}

#[test]
fn notification_settings_never_make_the_import_invalid() {
    let long = format!("{}@example.com", "x".repeat(100));
    let text = format!(
        "global_defs {{\n notification_email {{\n  acassen\n  ops@example.com\n  {long}\n }}\n notification_email_from keepalived\n smtp_server 10.0.0.25 2525\n smtp_connect_timeout soon\n router_id {}\n}}\n",
        "r".repeat(70)
    );
    let imported = import_text(&text);
    assert!(
        imported.notes.iter().all(|n| n.kind != NoteKind::Invalid),
        "{:#?}",
        imported.notes
    );
    assert_eq!(
        kinds(&imported)
            .iter()
            .map(|(_, k, l)| (k.as_str(), *l))
            .collect::<Vec<_>>(),
        // The over-long address, the unreadable timeout and router_id; the local mailbox
        // `acassen` and the local sender `keepalived` are imported.
        [
            ("notification_email", 5),
            ("smtp_connect_timeout", 9),
            ("router_id", 10),
        ]
    );
    let notify = imported.config.notify.as_ref().unwrap();
    assert_eq!(
        notify
            .email_to
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>(),
        ["acassen", "ops@example.com"]
    );
    assert_eq!(notify.email_from.as_deref(), Some("keepalived"));
    assert_eq!(
        (
            notify.smtp_server,
            notify.smtp_port,
            notify.smtp_connect_timeout_s
        ),
        (Some("10.0.0.25".parse().unwrap()), 2525, 30)
    );
    assert_eq!(errors(&imported.config), Vec::<String>::new());

    // keepalived sends no mail without a server; Tandem refuses recipients without one.
    let imported = import_text(
        "global_defs {\n notification_email {\n  ops@example.com\n }\n smtp_server relay.example.com\n}\n",
    );
    assert_eq!(
        kinds(&imported),
        [
            (NoteKind::NotCarried, "smtp_server".into(), 5),
            (NoteKind::NotCarried, "notification_email".into(), 2),
        ]
    );
    assert!(imported.config.notify.as_ref().unwrap().email_to.is_empty());
    assert_eq!(errors(&imported.config), Vec::<String>::new());
}

fn only_check(imported: &Imported) -> &tandem_config::model::Check {
    let service = &imported.config.virtual_services[0];
    service
        .check
        .as_deref()
        .or(service.real_servers[0].check.as_deref())
        .unwrap()
}

fn one_server(check: &str) -> String {
    format!("virtual_server 10.0.0.1 80 {{\n delay_loop 10\n real_server 192.168.1.10 80 {{\n{check}\n }}\n}}\n")
}

#[test]
fn status_code_lists_and_ranges_are_kept_whole() {
    let status = |codes: &str| {
        let imported = import_text(&one_server(&format!(
            "  HTTP_GET {{\n   url {{\n    path /\n    status_code {codes}\n   }}\n  }}"
        )));
        let CheckKind::Http { status, .. } = &only_check(&imported).kind else {
            panic!()
        };
        (status.as_ref().map(ToString::to_string), kinds(&imported))
    };
    let text = |s: &str| Some(s.to_string());
    assert_eq!(status("200"), (text("200"), vec![]));
    // keepalived's default, any 2xx, is no list at all.
    assert_eq!(status("200-299"), (None, vec![]));
    assert_eq!(status("200-249 250-299"), (text("200-249 250-299"), vec![]));
    assert_eq!(status("200 204"), (text("200 204"), vec![]));
    assert_eq!(
        status("200-299 400-499 503"),
        (text("200-299 400-499 503"), vec![])
    );
    assert_eq!(
        status("ok 200"),
        (
            text("200"),
            vec![(NoteKind::Invalid, "status_code".to_string(), 7)]
        )
    );
    // More ranges than a URL holds: the rest are reported, not silently dropped.
    let many: Vec<String> = (0..20).map(|i| (200 + i).to_string()).collect();
    let (kept, notes) = status(&many.join(" "));
    assert_eq!(kept.unwrap().split(' ').count(), 16);
    assert_eq!(
        notes,
        [(NoteKind::NotCarried, "status_code".to_string(), 7)]
    );
}

#[test]
fn every_url_of_a_checker_is_checked() {
    let imported = import_text(&one_server(
        "  HTTP_GET {\n   url {\n    path /a\n   }\n   url {\n    path /b\n    status_code 200 503\n    virtualhost b.example\n   }\n   url {\n    path /c\n    digest 900150983CD24FB0D6963F7D28E17F72\n   }\n  }",
    ));
    assert_eq!(kinds(&imported), []);
    let CheckKind::Http {
        path, more_urls, ..
    } = &only_check(&imported).kind
    else {
        panic!()
    };
    assert_eq!(path.as_str(), "/a");
    let more: Vec<(&str, Option<String>, Option<&str>, bool)> = more_urls
        .iter()
        .map(|url| {
            (
                url.path.as_str(),
                url.status.as_ref().map(ToString::to_string),
                url.virtual_host.as_deref(),
                url.body.is_some(),
            )
        })
        .collect();
    assert_eq!(
        more,
        [
            ("/b", Some("200 503".to_string()), Some("b.example"), false),
            ("/c", None, None, true)
        ]
    );
}

#[test]
fn ping_udp_and_dns_checks_import_as_checks_that_run() {
    let imported = import_text(&one_server("  PING_CHECK {\n   retry 2\n  }"));
    assert_eq!(kinds(&imported), []);
    assert_eq!(only_check(&imported).kind, CheckKind::Ping);
    assert_eq!(only_check(&imported).timing.retries, 2);

    let imported = import_text(&one_server(
        "  UDP_CHECK {\n   connect_port 53\n   payload 0a0B\n   require_reply 0c\n   min_reply_length 2\n  }",
    ));
    assert_eq!(
        kinds(&imported),
        [(NoteKind::NotCarried, "min_reply_length".to_string(), 8)]
    );
    let check = only_check(&imported);
    assert_eq!(check.connect_port, Some(53));
    assert_eq!(
        check.kind,
        CheckKind::Udp {
            payload: heapless::Vec::from_slice(&[0x0a, 0x0b]).unwrap(),
            require_reply: true,
            expect: heapless::Vec::from_slice(&[0x0c]).unwrap(),
        }
    );
    let imported = import_text(&one_server("  UDP_CHECK {\n   payload xyz\n  }"));
    assert_eq!(
        kinds(&imported),
        [(NoteKind::Invalid, "payload".to_string(), 5)]
    );

    let imported = import_text(&one_server(
        "  DNS_CHECK {\n   type aaaa\n   name example.org\n  }",
    ));
    assert_eq!(kinds(&imported), []);
    assert_eq!(
        only_check(&imported).kind,
        CheckKind::Dns {
            name: "example.org".try_into().unwrap(),
            record_type: DnsRecordType::Aaaa,
        }
    );
    // keepalived's defaults: SOA of the root.
    let imported = import_text(&one_server("  DNS_CHECK {\n  }"));
    assert_eq!(
        only_check(&imported).kind,
        CheckKind::Dns {
            name: ".".try_into().unwrap(),
            record_type: DnsRecordType::Soa,
        }
    );
    let imported = import_text(&one_server("  DNS_CHECK {\n   type SRV\n  }"));
    assert_eq!(
        kinds(&imported),
        [(NoteKind::Invalid, "type".to_string(), 5)]
    );
}

#[test]
fn ssl_get_is_an_https_check_with_keepalived_defaults() {
    let imported = import_text(&one_server(
        "  SSL_GET {\n   url {\n    path /healthz\n    digest 900150983CD24FB0D6963F7D28E17F72\n   }\n  }",
    ));
    let check = only_check(&imported);
    assert_eq!(
        check.kind,
        CheckKind::Http {
            path: "/healthz".try_into().unwrap(),
            status: None,
            body: Some(HttpBody::Md5(md5_hex("900150983cd24fb0d6963f7d28e17f72"))),
            virtual_host: None,
            tls: true,
            more_urls: BoundedVec::new(),
            tls_ca: None,
        }
    );
    // The real server's port, keepalived's timing (connect_timeout 5 s, retry 1 after 1 s).
    assert_eq!(check.connect_port, None);
    assert_eq!(
        (
            check.timing.interval_ms,
            check.timing.timeout_ms,
            check.timing.retries,
            check.timing.retry_delay_ms
        ),
        (10_000, 5000, 1, 1000)
    );
    assert_eq!(kinds(&imported), []);

    // A virtual host is sent as SNI: silently with enable_sni, said without it.
    let sni = |extra: &str| {
        kinds(&import_text(&one_server(&format!(
            "  SSL_GET {{\n   virtualhost api.example\n{extra}   url {{\n    path /\n   }}\n  }}"
        ))))
    };
    assert_eq!(sni("   enable_sni\n"), []);
    assert_eq!(sni(""), [(NoteKind::Adjusted, "SSL_GET".to_string(), 4)]);

    // keepalived's SSL block (CA, client certificate) is reported, and the checks still run.
    let imported = import_text(&format!(
        "SSL {{\n ca /etc/keepalived/ca.pem\n certificate /etc/keepalived/client.pem\n}}\n{}",
        one_server("  SSL_GET {\n   url {\n    path /\n   }\n  }")
    ));
    assert_eq!(
        kinds(&imported),
        [(NoteKind::NotCarried, "SSL".to_string(), 1)]
    );
    assert!(matches!(
        only_check(&imported).kind,
        CheckKind::Http { tls: true, .. }
    ));
}

#[test]
fn a_url_without_a_path_is_skipped_and_the_others_are_all_checked() {
    let imported = import_text(&one_server(
        "  HTTP_GET {\n   url {\n    status_code 200\n   }\n   url {\n    path /a\n   }\n   url {\n    path /b\n   }\n  }",
    ));
    let CheckKind::Http { path, .. } = &only_check(&imported).kind else {
        panic!()
    };
    assert_eq!(path.as_str(), "/a");
    let CheckKind::Http { more_urls, .. } = &only_check(&imported).kind else {
        panic!()
    };
    assert_eq!(more_urls.len(), 1);
    assert_eq!(more_urls[0].path.as_str(), "/b");
    let notes: Vec<String> = imported.notes.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        notes,
        [
            "line 5: url: not carried over: has no path, so keepalived ignores it (\"url has no path - ignoring\")",
        ]
    );
    // An HTTP_GET without a usable url is ignored by keepalived: no check, said so.
    let imported = import_text(&one_server("  HTTP_GET {\n   connect_timeout 3\n  }"));
    assert!(imported.config.virtual_services[0].check.is_none());
    assert_eq!(
        kinds(&imported),
        [(NoteKind::NotCarried, "HTTP_GET".to_string(), 4)]
    );
}

#[test]
fn timing_is_inherited_from_the_real_server_and_the_service() {
    let imported = import_text(
        "virtual_server 10.0.0.1 80 {\n delay_loop 10\n connect_timeout 4\n retry 2\n real_server 192.168.1.10 80 {\n  delay_before_retry 7\n  retry 5\n  TCP_CHECK {\n   connect_timeout 2\n  }\n }\n real_server 192.168.1.11 80 {\n  TCP_CHECK {\n   delay_loop 20\n  }\n }\n}\n",
    );
    assert!(imported.notes.is_empty(), "{:#?}", imported.notes);
    let servers = &imported.config.virtual_services[0].real_servers;
    let timing = |index: usize| {
        let t = servers[index].check.as_deref().unwrap().timing;
        (t.interval_ms, t.timeout_ms, t.retries, t.retry_delay_ms)
    };
    assert_eq!(timing(0), (10_000, 2000, 5, 7000));
    assert_eq!(timing(1), (20_000, 4000, 2, 1000));
}

#[test]
fn misc_check_scripts_that_a_builtin_does_become_that_check() {
    let misc = |script: &str| {
        let imported = import_text(&one_server(&format!(
            "  MISC_CHECK {{\n   misc_path \"{script}\"\n  }}"
        )));
        let check = imported.config.virtual_services[0].check.clone();
        (check, imported.notes)
    };
    let (check, notes) = misc("nc -z -w 2 192.168.1.10 8080");
    let check = check.unwrap();
    assert_eq!(check.kind, CheckKind::Tcp);
    assert_eq!(
        (
            check.connect_address,
            check.connect_port,
            check.timing.timeout_ms
        ),
        (None, Some(8080), 2000)
    );
    assert_eq!(notes[0].kind, NoteKind::Adjusted);
    assert_eq!(notes[0].message, "\"nc -z -w 2 192.168.1.10 8080\" is a TCP connect to 192.168.1.10 port 8080: imported as the built-in check that does the same");

    // The script's bound is the delay_loop unless misc_timeout says otherwise.
    let (check, _) = misc("/bin/bash -c '</dev/tcp/192.168.1.10/80'");
    let check = check.unwrap();
    assert_eq!(
        (
            &check.kind,
            check.connect_address,
            check.connect_port,
            check.timing.timeout_ms
        ),
        (&CheckKind::Tcp, None, None, 10_000)
    );

    let (check, _) = misc("curl -sf http://192.168.1.20:8080/health?deep=1");
    let check = check.unwrap();
    assert!(
        matches!(&check.kind, CheckKind::Http { path, tls: false, status: None, .. } if path == "/health?deep=1")
    );
    assert_eq!(
        (check.connect_address, check.connect_port),
        (Some("192.168.1.20".parse().unwrap()), Some(8080))
    );

    // Not mapped: curl without --fail succeeds on any answer; a host name needs DNS.
    for script in [
        "curl http://192.168.1.10/",
        "nc -z backend.example 80",
        "/usr/local/bin/check.sh",
    ] {
        let (check, notes) = misc(script);
        assert_eq!(check, None, "{script}");
        assert_eq!(notes[0].kind, NoteKind::NotCarried, "{script}");
    }
}

#[test]
fn virtual_server_groups_expand_ranges_and_refuse_what_cannot_fit() {
    let imported = import_text(
        "virtual_server_group G {\n ae00::2-b 80\n 10.0.0.0/30 443\n 10.0.1.5-10.0.1.6 25\n fwmark 7 inet6\n 10.0.0.0/8 80\n 10.0.2.1 http\n}\nvirtual_server group G {\n real_server 10.0.9.1 {\n }\n}\nvirtual_server group H {\n}\nvirtual_server_group unused {\n 10.1.1.1 80\n}\n",
    );
    let labels: Vec<String> = imported
        .config
        .virtual_services
        .iter()
        .map(VirtualService::label)
        .collect();
    let mut expected: Vec<String> = (2..=0xb).map(|n| format!("[ae00::{n:x}]:80/tcp")).collect();
    expected.extend((0..4).map(|n| format!("10.0.0.{n}:443/tcp")));
    expected.extend(["10.0.1.5:25/tcp".into(), "10.0.1.6:25/tcp".into()]);
    expected.push("fwmark 7".into());
    assert_eq!(labels, expected);
    assert_eq!(
        kinds(&imported),
        [
            (NoteKind::Invalid, "virtual_server_group".into(), 6),
            (NoteKind::Invalid, "virtual_server_group".into(), 7),
            (NoteKind::Adjusted, "virtual_server group".into(), 9),
            (NoteKind::Invalid, "virtual_server group".into(), 13),
            (NoteKind::Adjusted, "virtual_server_group".into(), 15),
        ]
    );
    assert!(imported.notes[0].message.contains("16777216 addresses"));
}

#[test]
fn sorry_server_and_inhibit_map_to_the_model() {
    let imported = import_text(
        "virtual_server 10.0.0.1 80 {\n inhibit_on_failure\n sorry_server_inhibit\n sorry_server 10.0.0.99 8080\n real_server 10.0.0.10 80 {\n  inhibit_on_failure false\n }\n}\nvirtual_server 10.0.0.2 80 {\n sorry_server_inhibit\n}\n",
    );
    let first = &imported.config.virtual_services[0];
    assert_eq!(first.on_failure, OnFailure::Quiesce);
    assert_eq!(first.real_servers[0].on_failure, Some(OnFailure::Remove));
    let sorry = first.sorry_server.as_ref().unwrap();
    assert_eq!((sorry.port, sorry.inhibit), (Some(8080), true));
    assert_eq!(imported.config.virtual_services[1].sorry_server, None);
    assert_eq!(
        kinds(&imported),
        [(NoteKind::NotCarried, "sorry_server_inhibit".into(), 10)]
    );
}

/// A fresh directory for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tandem-keepalived-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write(dir: &Path, file: &str, text: &str) -> PathBuf {
    let path = dir.join(file);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, text).unwrap();
    path
}

fn import_path(path: &Path) -> Result<Imported, ImportError> {
    keepalived::import_file(path, &std::fs::read_to_string(path).unwrap())
}

#[test]
fn includes_are_read_relative_to_the_including_file_with_globs() {
    let dir = scratch("include");
    let main = write(
        &dir,
        "keepalived.conf",
        "global_defs {\n router_id lb1\n}\ninclude conf.d/*.conf # the services\ninclude vrrp/{b,a}.inc\ninclude missing/*.conf\n",
    );
    write(
        &dir,
        "conf.d/10-web.conf",
        "! web\nvirtual_server 10.0.0.1 80 {\n lb_algo rr\n frobnicate yes\n real_server 192.168.1.10 80 {\n }\n}\n",
    );
    // Inside a block, relative to conf.d/ (the including file), not to keepalived.conf.
    write(
        &dir,
        "conf.d/20-mail.conf",
        "virtual_server 10.0.0.1 25 {\n include servers/mail.inc\n}\n",
    );
    write(
        &dir,
        "conf.d/servers/mail.inc",
        "real_server 192.168.1.20 25 {\n}\nreal_server 192.168.1.21 25 {\n}\n",
    );
    write(&dir, "conf.d/.hidden.conf", "garbage {\n");
    write(&dir, "conf.d/README", "garbage {\n");
    for name in ["a", "b"] {
        write(
            &dir,
            &format!("vrrp/{name}.inc"),
            &format!(
                "vrrp_instance VI_{name} {{\n interface eth0\n virtual_router_id {id}\n no_accept\n virtual_ipaddress {{\n  10.0.0.{id}\n }}\n}}\n",
                id = if name == "a" { 1 } else { 2 }
            ),
        );
    }
    let imported = import_path(&main).unwrap();
    let labels: Vec<String> = imported
        .config
        .virtual_services
        .iter()
        .map(VirtualService::label)
        .collect();
    assert_eq!(labels, ["10.0.0.1:80/tcp", "10.0.0.1:25/tcp"]);
    assert_eq!(imported.config.virtual_services[1].real_servers.len(), 2);
    let instances: Vec<&str> = imported
        .config
        .vrrp
        .iter()
        .map(|v| v.name.as_str())
        .collect();
    // Brace alternatives in their order, as glob(3) gives them.
    assert_eq!(instances, ["VI_b", "VI_a"]);
    let notes: Vec<String> = imported.notes.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        notes,
        [
            "line 6: include: not carried over: \"missing/*.conf\" matches no file, so nothing is included (keepalived skips it too); copy the included files along with the imported one",
            "line 4: frobnicate: not carried over: in conf.d/10-web.conf: virtual_server setting with no Tandem equivalent",
        ]
    );

    // Text without its path: the includes are named, not read.
    let alone = keepalived::import(&std::fs::read_to_string(&main).unwrap()).unwrap();
    assert!(alone.config.virtual_services.is_empty());
    assert_eq!(
        kinds(&alone),
        [
            (NoteKind::NotCarried, "include".into(), 4),
            (NoteKind::NotCarried, "include".into(), 5),
            (NoteKind::NotCarried, "include".into(), 6),
        ]
    );

    // `tandem config import FILE` reads the includes.
    let args: Vec<String> = ["import", main.to_str().unwrap()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = tandem_config::cli::run(&args, &mut out, &mut err);
    let (out, err) = (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("192.168.1.21"), "{out}");
    assert!(err.contains("in conf.d/10-web.conf"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_absolute_include_is_found_next_to_the_imported_file() {
    let dir = scratch("absolute");
    let main = write(
        &dir,
        "keepalived.conf",
        "include /etc/keepalived-tandem-test/conf.d/*.conf\ninclude /etc/keepalived-tandem-test/lvs.conf\n",
    );
    write(&dir, "conf.d/web.conf", "virtual_server 10.0.0.1 80 {\n}\n");
    write(&dir, "lvs.conf", "virtual_server 10.0.0.1 443 {\n}\n");
    let imported = import_path(&main).unwrap();
    assert_eq!(imported.config.virtual_services.len(), 2);
    let notes: Vec<String> = imported.notes.iter().map(|n| n.to_string()).collect();
    assert_eq!(
        notes,
        [
            "line 1: include: adjusted: \"/etc/keepalived-tandem-test/conf.d/*.conf\" matches no file on this host; read \"conf.d/*.conf\" next to the imported file instead",
            "line 2: include: adjusted: \"/etc/keepalived-tandem-test/lvs.conf\" matches no file on this host; read \"lvs.conf\" next to the imported file instead",
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn syntax_error(result: Result<Imported, ImportError>) -> (usize, String) {
    match result {
        Err(ImportError::Syntax { line, message }) => (line, message),
        other => panic!("{other:?}"),
    }
}

#[test]
fn include_loops_depth_size_and_unreadable_files_are_clear_errors() {
    let dir = scratch("loops");
    // a includes b includes a.
    let a = write(&dir, "a.conf", "! a\ninclude b.conf\n");
    write(&dir, "b.conf", "include ./a.conf\n");
    assert_eq!(
        syntax_error(import_path(&a)),
        (1, "in b.conf: include loop: a.conf includes b.conf includes a.conf; keepalived would read these files over and over: remove the include that closes the loop".into())
    );
    // A file including itself through a glob.
    let own = write(&dir, "self/keepalived.conf", "include *.conf\n");
    let (line, message) = syntax_error(import_path(&own));
    assert_eq!(line, 1);
    assert!(
        message.starts_with("include loop: keepalived.conf includes keepalived.conf;"),
        "{message}"
    );

    // A chain deeper than the bound.
    for level in 0..12 {
        write(
            &dir,
            &format!("deep/{level}.conf"),
            &format!("include {}.conf\n", level + 1),
        );
    }
    let (line, message) = syntax_error(import_path(&dir.join("deep/0.conf")));
    assert_eq!(line, 1);
    assert!(message.contains("nested deeper than 8 levels"), "{message}");

    // Included files count towards the 4 MiB bound.
    let filler: String = format!("# {}\n", "x".repeat(1000)).repeat(2500);
    let big = write(&dir, "big/main.conf", "include part*.conf\n");
    write(&dir, "big/part1.conf", &filler);
    write(&dir, "big/part2.conf", &filler);
    assert!(matches!(
        import_path(&big),
        Err(ImportError::TooLarge { max, .. }) if max == import::MAX_INPUT_BYTES
    ));

    // Binary data in an included file.
    let binary = write(&dir, "bin/main.conf", "global_defs {\n}\ninclude blob\n");
    std::fs::write(
        dir.join("bin/blob"),
        [0x7f, b'E', b'L', b'F', 0xff, 0xfe, 0],
    )
    .unwrap();
    assert_eq!(
        syntax_error(import_path(&binary)),
        (
            3,
            "blob is not text (not UTF-8 at byte 4): is it a keepalived.conf?".into()
        )
    );
    std::fs::write(
        dir.join("bin/blob"),
        "virtual_server 10.0.0.1 80 {\n\0\n}\n",
    )
    .unwrap();
    assert_eq!(
        syntax_error(import_path(&binary)),
        (
            2,
            "in blob: byte 0x00 is not text: this is not a keepalived.conf (binary data?)".into()
        )
    );

    // An executable file is not read, as keepalived does not read it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let main = write(&dir, "exec/main.conf", "include *.sh\n");
        let script = write(&dir, "exec/run.sh", "virtual_server 10.0.0.1 80 {\n}\n");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let imported = import_path(&main).unwrap();
        assert!(imported.config.virtual_services.is_empty());
        assert_eq!(
            kinds(&imported),
            [(NoteKind::NotCarried, "include".into(), 1)]
        );
    }

    // A brace pattern of 2^8 alternatives is bounded.
    let braces = write(
        &dir,
        "braces/main.conf",
        "include {a,b}{c,d}{e,f}{g,h}{i,j}{k,l}{m,n}{o,p}\n",
    );
    let imported = import_path(&braces).unwrap();
    assert_eq!(
        kinds(&imported),
        [(NoteKind::NotCarried, "include".into(), 1)]
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn hostile_text_gives_a_clear_error_and_never_panics() {
    // A 1 MB line: keepalived skips lines over 1022 bytes, so it is an error, with its line.
    let long = format!("global_defs {{\n router_id {}\n}}\n", "a".repeat(1 << 20));
    let (line, message) = syntax_error(keepalived::import(&long));
    assert_eq!(line, 2);
    assert!(
        message.starts_with("the line is 1048587 bytes long"),
        "{message}"
    );

    // Unbalanced braces name the line of the block left open, or of the extra brace.
    assert_eq!(
        syntax_error(keepalived::import(
            "global_defs {\n}\nvrrp_instance VI_1 {\n state MASTER\n"
        )),
        (
            3,
            "the block opened here is not closed; add the missing '}'".into()
        )
    );
    assert_eq!(
        syntax_error(keepalived::import("global_defs {\n}\n}\n")),
        (3, "'}' without a matching '{'; remove it".into())
    );
    assert!(matches!(
        keepalived::import(&"a {\n".repeat(100)),
        Err(ImportError::Syntax { .. })
    ));

    // Binary data: control bytes are refused with their line.
    assert_eq!(
        syntax_error(keepalived::import("global_defs {\n\u{1}\u{2}\n}\n")),
        (
            2,
            "byte 0x01 is not text: this is not a keepalived.conf (binary data?)".into()
        )
    );
    assert!(matches!(
        keepalived::import(&"# filler\n".repeat(600_000)),
        Err(ImportError::TooLarge { .. })
    ));

    // Pseudo-random text made of keepalived's own words: an import or an error, never a panic;
    // what imports validates and exports without a panic either.
    let words = [
        "{",
        "}",
        "\n",
        "virtual_server",
        "real_server",
        "vrrp_instance",
        "virtual_server_group",
        "group",
        "fwmark",
        "HTTP_GET",
        "SSL_GET",
        "TCP_CHECK",
        "SMTP_CHECK",
        "MISC_CHECK",
        "url",
        "status_code",
        "200-299",
        "path",
        "/",
        "digest",
        "host",
        "connect_ip",
        "include",
        "@a",
        "@^b",
        "$X=1",
        "10.0.0.1",
        "10.0.0.1-9",
        "ae00::1-ff",
        "10.0.0.0/8",
        "80",
        "0",
        "-1",
        "99999999999",
        "\"",
        "#",
        "!",
        "misc_path",
        "nc -z 10.0.0.1 80",
        "sorry_server",
        "notification_email",
        "acassen",
        "smtp_server",
        "global_defs",
        "\u{e9}",
        "\t",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..2000 {
        let mut text = String::new();
        for _ in 0..(state % 200) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let index = usize::try_from(state).unwrap_or_default() % words.len();
            text.push_str(words[index]);
            text.push(' ');
        }
        if let Ok(imported) = import::import(&text, Some(Format::Keepalived)) {
            let _ = validate(&imported.config);
            let exported = export::keepalived::export(&imported.config);
            let _ = import::import(&exported.text, Some(Format::Keepalived));
        }
    }
}

#[test]
fn use_vmac_imports_with_its_name_and_the_rest_is_said() {
    let conf = |extra: &str| {
        format!("vrrp_instance VI_1 {{\n interface eth0\n virtual_router_id 51\n{extra}\n virtual_ipaddress {{\n  10.0.0.10/24\n }}\n}}\n")
    };
    // (keepalived's accept default is said for every VRRPv2 instance.)
    let accept = (NoteKind::Adjusted, "accept".to_string(), 1);
    let imported = import_text(&conf(" use_vmac"));
    assert_eq!(kinds(&imported), std::slice::from_ref(&accept));
    assert!(imported.config.vrrp[0].use_vmac);
    assert_eq!(imported.config.vrrp[0].vmac_interface, None);
    let imported = import_text(&conf(" use_vmac vrrp.web\n vmac_xmit_base"));
    assert_eq!(
        imported.config.vrrp[0].vmac_interface.as_deref(),
        Some("vrrp.web")
    );
    assert!(imported.config.vrrp[0].vmac_xmit_base);
    assert_eq!(kinds(&imported), [accept]);
    assert!(validate(&imported.config)
        .iter()
        .all(|issue| issue.severity != Severity::Error));
}
