//! The appendix B.11 keepalived.conf pair and a chapter-4 Piranha lvs.cf import with no loss,
//! validate, and export back to files that import to the same config.

// Test code: panics are the failure report, and the figures are small known values.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_lossless
)]

use tandem_config::blob::{self, BlobMeta};
use tandem_config::export;
use tandem_config::import::{self, Format, NoteKind};
use tandem_config::model::{
    CheckKind, Forwarding, InitialState, OnFailure, PeerLink, Scheduler, VrrpAuth, VrrpVersion,
};
use tandem_config::validate::{validate, Severity};
use tandem_config::Config;

fn data(name: &str) -> String {
    std::fs::read_to_string(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn errors(config: &Config) -> Vec<String> {
    validate(config)
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| i.to_string())
        .collect()
}

fn blob_of(config: &Config) -> Vec<u8> {
    blob::encode(config, BlobMeta::default(), None).unwrap()
}

#[test]
fn director1_imports_without_loss() {
    let imported = import::import(&data("director1.keepalived.conf"), None).unwrap();
    let lossy: Vec<_> = imported
        .notes
        .iter()
        .filter(|n| n.kind != NoteKind::Adjusted)
        .collect();
    assert!(lossy.is_empty(), "lost: {lossy:#?}");
    // Only the over-long passwords (VRRPv2 sends 8 bytes) and the implied accept mode of each
    // instance (keepalived's default without vrrp_strict) are adjusted.
    let keywords: Vec<&str> = imported.notes.iter().map(|n| n.keyword.as_str()).collect();
    assert_eq!(
        keywords.iter().filter(|k| **k == "auth_pass").count(),
        4,
        "{:#?}",
        imported.notes
    );
    assert_eq!(
        keywords.iter().filter(|k| **k == "accept").count(),
        4,
        "{:#?}",
        imported.notes
    );
    assert_eq!(imported.notes.len(), 8);
    let config = &imported.config;
    assert!(config.vrrp.iter().all(|v| v.accept_mode));
    assert_eq!(config.system.hostname.as_str(), "director1");
    let notify = config.notify.as_ref().unwrap();
    assert_eq!(notify.email_to[0].as_str(), "admin@your.domain.name");
    assert_eq!(notify.smtp_server, Some("123.123.123.1".parse().unwrap()));
    assert_eq!(notify.smtp_connect_timeout_s, 30);
    assert_eq!(config.sync_groups.len(), 2);
    assert_eq!(
        config.sync_groups[1]
            .members
            .iter()
            .map(|m| m.as_str())
            .collect::<Vec<_>>(),
        ["web_vip", "web_gw"]
    );
    assert_eq!(config.vrrp.len(), 4);
    let web = config.vrrp_instance("web_vip").unwrap();
    assert_eq!(
        (web.vrid, web.priority, web.advert_interval_cs),
        (20, 100, 100)
    );
    assert_eq!(web.version, VrrpVersion::V2);
    assert_eq!(web.initial_state, InitialState::Backup);
    assert_eq!(
        web.auth,
        Some(VrrpAuth::Pass("veryvery".try_into().unwrap()))
    );
    assert_eq!(
        web.vips[0].address,
        "123.123.123.2".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(web.vips[0].prefix, 32);
    assert_eq!(config.virtual_services.len(), 4);
    let smtp = &config.virtual_services[0];
    assert_eq!(smtp.port, 25);
    assert_eq!(smtp.scheduler, Scheduler::Rr);
    assert_eq!(smtp.forwarding, Forwarding::Nat);
    assert_eq!(smtp.persistence.unwrap().timeout_s, 50);
    assert_eq!(smtp.real_servers.len(), 2);
    let check = smtp.check.as_ref().unwrap();
    assert!(matches!(check.kind, CheckKind::Smtp { .. }));
    assert_eq!(
        (check.timing.interval_ms, check.timing.timeout_ms),
        (6000, 3000)
    );
    let http = &config.virtual_services[3];
    match &http.check.as_ref().unwrap().kind {
        CheckKind::Http { path, tls, .. } => {
            assert_eq!((path.as_str(), *tls), ("/index.html", false))
        }
        other => panic!("{other:?}"),
    }
    // eth0 and eth1 are created so the references validate.
    assert!(config.interface("eth0").is_some() && config.interface("eth1").is_some());
    assert_eq!(errors(config), Vec::<String>::new());
}

#[test]
fn director2_differs_from_director1_only_in_identity_state_and_priority() {
    let one = import::import(&data("director1.keepalived.conf"), Some(Format::Keepalived))
        .unwrap()
        .config;
    let two = import::import(&data("director2.keepalived.conf"), Some(Format::Keepalived))
        .unwrap()
        .config;
    assert_eq!(errors(&two), Vec::<String>::new());
    assert_eq!(two.system.hostname.as_str(), "director2");
    for (a, b) in one.vrrp.iter().zip(two.vrrp.iter()) {
        assert_ne!(a.initial_state, b.initial_state);
        assert_eq!(a.priority + b.priority, 250);
        assert_eq!((a.vrid, &a.vips), (b.vrid, &b.vips));
    }
    assert_eq!(one.virtual_services, two.virtual_services);
}

fn keepalived_round_trip(name: &str) {
    let first = import::import(&data(name), None).unwrap().config;
    let exported = export::keepalived::export(&first);
    // Every config element of these files exists in keepalived.conf.
    assert!(exported.notes.is_empty(), "{:#?}", exported.notes);
    let again = import::import(&exported.text, Some(Format::Keepalived)).unwrap();
    assert!(again.is_lossless(), "{:#?}", again.notes);
    assert_eq!(again.config, first, "exported text:\n{}", exported.text);
    assert_eq!(blob_of(&again.config), blob_of(&first));
}

#[test]
fn director1_exports_back_equivalently() {
    keepalived_round_trip("director1.keepalived.conf");
}

#[test]
fn director2_exports_back_equivalently() {
    keepalived_round_trip("director2.keepalived.conf");
}

#[test]
fn piranha_imports_without_loss_and_round_trips() {
    let imported = import::import(&data("piranha.lvs.cf"), None).unwrap();
    let lossy: Vec<_> = imported
        .notes
        .iter()
        .filter(|n| n.kind != NoteKind::Adjusted)
        .collect();
    assert!(lossy.is_empty(), "lost: {lossy:#?}");
    let config = &imported.config;
    let peer = config.peer_link.as_ref().unwrap();
    assert_eq!(
        peer.primary.as_ref().unwrap().private,
        Some("192.168.1.1".parse().unwrap())
    );
    assert_eq!(
        peer.backup.as_ref().unwrap().public,
        Some("10.0.0.2".parse().unwrap())
    );
    assert_eq!(
        (
            peer.heartbeat_interval_ms,
            peer.dead_after_ms,
            peer.heartbeat_port
        ),
        (6000, 18_000, 539)
    );
    // Each heartbeat field has its note at its own line: the slow Piranha times are kept, and
    // each says how to switch to the fast default.
    let field = |keyword: &str| {
        let notes: Vec<_> = imported
            .notes
            .iter()
            .filter(|n| n.keyword == keyword && n.message.starts_with("peer_link."))
            .collect();
        assert_eq!(notes.len(), 1, "{keyword}: {:#?}", imported.notes);
        assert_eq!(notes[0].kind, NoteKind::Adjusted);
        (notes[0].line, notes[0].message.clone())
    };
    let fast = "on a dedicated peer cable use the fast default (set peer_link.heartbeat_interval_ms 10, set peer_link.dead_after_ms 30)";
    assert_eq!(
        field("keepalive"),
        (13, format!("peer_link.heartbeat_interval_ms: imported Piranha keepalive 6 s (kept as 6000 ms): a heartbeat every 6 s on the peer link; {fast}"))
    );
    assert_eq!(
        field("deadtime"),
        (14, format!("peer_link.dead_after_ms: imported Piranha deadtime 18 s (kept as 18000 ms): a partner's death is noticed after 18 s; {fast}"))
    );
    assert_eq!(
        field("heartbeat_port"),
        (12, "peer_link.heartbeat_port = 539: the pair heartbeat's UDP port, sent on the peer link to ff02::1 (IPv6 link-local, hop limit 255), not to the partner's lvs.cf address as pulse sent it".to_owned())
    );
    let heartbeat = imported
        .notes
        .iter()
        .find(|n| n.keyword == "heartbeat")
        .unwrap();
    assert_eq!((heartbeat.line, heartbeat.kind), (11, NoteKind::Adjusted));
    assert_eq!(heartbeat.message, "the pair heartbeat runs on the peer link (peer_link.interface, the cable between the two boxes), always");
    assert!(peer.ipvs_sync);
    let nat = config.nat_gateway.as_ref().unwrap();
    assert_eq!(
        (
            nat.address.to_string().as_str(),
            nat.prefix,
            nat.interface.as_str()
        ),
        ("192.168.1.254", 24, "eth1:1")
    );
    let http = &config.virtual_services[0];
    assert_eq!(http.name.as_str(), "HTTP");
    assert_eq!(http.fwmark, Some(80));
    assert_eq!(http.interface.as_deref(), Some("eth0:1"));
    assert_eq!(http.address_prefix, Some(24));
    assert_eq!(http.persistence.unwrap().netmask_prefix, Some(24));
    assert_eq!(http.reentry_s, 15);
    assert_eq!(http.on_failure, OnFailure::Quiesce);
    let check = http.check.as_ref().unwrap();
    assert_eq!(check.timing.timeout_ms, 6000);
    match &check.kind {
        CheckKind::SendExpect { send, expect } => {
            assert_eq!(send.as_str(), "GET / HTTP/1.0\r\n\r\n");
            assert_eq!(expect.as_str(), "HTTP");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(http.real_servers.len(), 3);
    assert!(!http.real_servers[2].active);
    assert_eq!(http.real_servers[1].weight, 2);
    assert_eq!(config.virtual_services[1].real_servers[0].port, Some(21));
    // The FTP service is NAT on port 21: the director runs it with ip_vs_ftp, and says so.
    let ftp = imported.notes.iter().find(|n| n.keyword == "port").unwrap();
    assert_eq!(ftp.line, 59);
    assert!(
        ftp.message
            .starts_with("virtual FTP is FTP (tcp port 21) by NAT: the director loads ip_vs_ftp"),
        "{ftp}"
    );
    // The fwmark service got the marking rule Piranha documents, so it validates.
    assert_eq!(config.fwmark_rules.len(), 1);
    assert_eq!(errors(config), Vec::<String>::new());

    let exported = export::lvs::export(config);
    assert!(exported.notes.is_empty(), "{:#?}", exported.notes);
    let again = import::import(&exported.text, Some(Format::Lvs)).unwrap();
    assert!(again.is_lossless(), "{:#?}", again.notes);
    assert_eq!(&again.config, config, "exported text:\n{}", exported.text);
}

/// The peer-cable heartbeat defaults to 10 ms / 30 ms (three missed heartbeats), which
/// validates; lvs.cf times (whole seconds) are kept on import with a note, a missing one takes
/// Piranha's value, and the nanny check interval follows keepalive, never the 10 ms default.
#[test]
fn piranha_heartbeat_times_are_kept_and_reported() {
    let fast = PeerLink::default();
    assert_eq!((fast.heartbeat_interval_ms, fast.dead_after_ms), (10, 30));

    let service = "virtual web {\n address = 10.0.0.100 eth0:1\n port = 80\n server a {\n  address = 192.168.1.11\n }\n}\n";
    let import_lvs =
        |globals: &str| import::import(&format!("{globals}{service}"), Some(Format::Lvs)).unwrap();
    let times = |imported: &import::Imported| {
        let peer = imported.config.peer_link.as_ref().unwrap();
        let check = imported.config.virtual_services[0].check.as_ref().unwrap();
        (
            peer.heartbeat_interval_ms,
            peer.dead_after_ms,
            check.timing.interval_ms,
        )
    };
    // The heartbeat notes, as (line, keyword, message).
    let notes = |imported: &import::Imported| -> Vec<(usize, String, String)> {
        imported
            .notes
            .iter()
            .filter(|n| n.message.starts_with("peer_link."))
            .map(|n| (n.line, n.keyword.clone(), n.message.clone()))
            .collect()
    };

    // Both fields: a note each, at its own line.
    let both = import_lvs("primary = 10.0.0.1\nkeepalive = 2\ndeadtime = 10\n");
    assert_eq!(times(&both), (2000, 10_000, 2000));
    let both_notes = notes(&both);
    assert_eq!(
        both_notes
            .iter()
            .map(|(line, keyword, _)| (*line, keyword.as_str()))
            .collect::<Vec<_>>(),
        [(2, "keepalive"), (3, "deadtime")]
    );
    assert!(
        both_notes[0].2.contains("keepalive 2 s (kept as 2000 ms)"),
        "{both_notes:?}"
    );
    assert!(
        both_notes[1].2.contains("deadtime 10 s (kept as 10000 ms)")
            && both_notes[1].2.contains("noticed after 10 s"),
        "{both_notes:?}"
    );
    assert!(both.is_lossless(), "{:#?}", both.notes);

    // One field: its note says what the other became (Piranha's default).
    let only_deadtime = import_lvs("primary = 10.0.0.1\ndeadtime = 30\n");
    assert_eq!(times(&only_deadtime), (6000, 30_000, 6000));
    assert_eq!(
        notes(&only_deadtime),
        [(2, "deadtime".to_owned(), "peer_link.dead_after_ms: imported Piranha deadtime 30 s (kept as 30000 ms): a partner's death is noticed after 30 s (lvs.cf gives no keepalive: Piranha's 6 s, peer_link.heartbeat_interval_ms 6000); on a dedicated peer cable use the fast default (set peer_link.heartbeat_interval_ms 10, set peer_link.dead_after_ms 30)".to_owned())]
    );
    let only_keepalive = import_lvs("primary = 10.0.0.1\nkeepalive = 3\n");
    assert_eq!(times(&only_keepalive), (3000, 18_000, 3000));
    assert_eq!(
        notes(&only_keepalive),
        [(2, "keepalive".to_owned(), "peer_link.heartbeat_interval_ms: imported Piranha keepalive 3 s (kept as 3000 ms): a heartbeat every 3 s on the peer link (lvs.cf gives no deadtime: Piranha's 18 s, peer_link.dead_after_ms 18000); on a dedicated peer cable use the fast default (set peer_link.heartbeat_interval_ms 10, set peer_link.dead_after_ms 30)".to_owned())]
    );

    // No heartbeat times in the file: Tandem's defaults, no note, and checks stay at Piranha's
    // 6 s rather than the heartbeat's 10 ms.
    let neither = import_lvs("primary = 10.0.0.1\n");
    assert_eq!(times(&neither), (10, 30, 6000));
    assert_eq!(notes(&neither), []);

    for imported in [&both, &only_deadtime, &only_keepalive, &neither] {
        assert_eq!(errors(&imported.config), Vec::<String>::new());
    }
}

/// lvs.cf counts whole seconds: the 10 ms / 30 ms default is written as keepalive 1 / deadtime 3
/// (rounded up, still three missed heartbeats, not 1 s / 1 s) and the export says so.
#[test]
fn lvs_export_rounds_the_fast_heartbeat_to_whole_seconds() {
    let mut config = import::import(
        "primary = 10.0.0.1\nvirtual web {\n address = 10.0.0.100 eth0:1\n port = 80\n server a {\n  address = 192.168.1.11\n }\n}\n",
        Some(Format::Lvs),
    )
    .unwrap()
    .config;
    let peer = config.peer_link.as_mut().unwrap();
    assert_eq!((peer.heartbeat_interval_ms, peer.dead_after_ms), (10, 30));
    let exported = export::lvs::export(&config);
    assert!(
        exported.text.contains("keepalive = 1\ndeadtime = 3\n"),
        "{}",
        exported.text
    );
    let note = exported
        .notes
        .iter()
        .find(|n| n.path == "peer_link")
        .unwrap();
    assert!(
        note.message.contains("whole seconds")
            && note.message.contains("keepalive 1 s / deadtime 3 s"),
        "{note}"
    );
    let again = import::import(&exported.text, Some(Format::Lvs)).unwrap();
    let peer = again.config.peer_link.as_ref().unwrap();
    assert_eq!(
        (peer.heartbeat_interval_ms, peer.dead_after_ms),
        (1000, 3000)
    );
    assert_eq!(errors(&again.config), Vec::<String>::new());

    assert!(
        note.message.contains("same number of missed heartbeats"),
        "{note}"
    );

    // Otherwise each time is just rounded up; whole seconds are written as they are, without a
    // note.
    let peer = config.peer_link.as_mut().unwrap();
    (peer.heartbeat_interval_ms, peer.dead_after_ms) = (1500, 4000);
    let exported = export::lvs::export(&config);
    assert!(exported.text.contains("keepalive = 2\ndeadtime = 4\n"));
    let note = exported
        .notes
        .iter()
        .find(|n| n.path == "peer_link")
        .unwrap();
    assert!(note.message.contains("(rounded up)"), "{note}");
    let peer = config.peer_link.as_mut().unwrap();
    (peer.heartbeat_interval_ms, peer.dead_after_ms) = (6000, 18_000);
    let exported = export::lvs::export(&config);
    assert!(exported.text.contains("keepalive = 6\ndeadtime = 18\n"));
    assert!(exported.notes.iter().all(|n| n.path != "peer_link"));
}

#[test]
fn scripts_are_reported_with_the_built_in_alternative() {
    let text = "virtual_server 10.0.0.1 80 {\n  real_server 10.0.0.2 80 {\n    MISC_CHECK {\n      misc_path /bin/check\n    }\n  }\n}\nvrrp_instance x {\n  notify_master /bin/x\n}\n";
    let imported = import::import(text, None).unwrap();
    let misc = imported
        .notes
        .iter()
        .find(|n| n.keyword == "MISC_CHECK")
        .unwrap();
    assert_eq!(misc.line, 3);
    assert_eq!(misc.kind, NoteKind::NotCarried);
    assert!(misc.message.contains("no shell") && misc.message.contains("TCP_CHECK"));
    let notify = imported
        .notes
        .iter()
        .find(|n| n.keyword == "notify_master")
        .unwrap();
    assert_eq!(notify.line, 9);

    let lvs = "serial_no = 1\nvirtual dns {\n address = 10.0.0.5 eth0:1\n port = 53\n send_program = \"/usr/local/bin/dns %h\"\n frobnicate = 1\n}\n";
    let imported = import::import(lvs, None).unwrap();
    let program = imported
        .notes
        .iter()
        .find(|n| n.keyword == "send_program")
        .unwrap();
    assert_eq!((program.line, program.kind), (5, NoteKind::NotCarried));
    let unknown = imported
        .notes
        .iter()
        .find(|n| n.keyword == "frobnicate")
        .unwrap();
    assert_eq!(unknown.line, 6);
}

#[test]
fn every_unknown_keyword_is_listed_with_its_line() {
    let text = "global_defs {\n  router_id a\n  enable_script_security\n}\nvrrp_instance v {\n  interface eth0\n  virtual_router_id 1\n  priority 100\n  dont_track_primary\n  virtual_ipaddress {\n    10.0.0.1/24 dev eth0 scope global\n  }\n}\n";
    let imported = import::import(text, None).unwrap();
    let lines: Vec<(usize, &str)> = imported
        .notes
        .iter()
        .map(|n| (n.line, n.keyword.as_str()))
        .collect();
    assert!(lines.contains(&(3, "enable_script_security")), "{lines:?}");
    assert!(lines.contains(&(9, "dont_track_primary")), "{lines:?}");
    assert!(lines.contains(&(11, "scope")), "{lines:?}");
}

/// keepalived's accept mode: explicit `accept` / `no_accept` win; without them keepalived
/// accepts unless in strict mode (global `vrrp_strict` or the instance's `strict_mode`), and
/// strict mode refuses accept for a VRRPv2 non-owner. Implied values are reported.
#[test]
fn accept_mode_follows_keepalived_defaults_and_strict_mode() {
    let instance = |name: &str, extra: &str| {
        format!("vrrp_instance {name} {{\n  interface eth0\n  virtual_router_id 1\n  priority 100\n{extra}  virtual_ipaddress {{\n    10.0.0.1\n  }}\n}}\n")
    };
    let accept_of = |text: &str, name: &str| {
        let imported = import::import(text, Some(Format::Keepalived)).unwrap();
        let accept = imported.config.vrrp_instance(name).unwrap().accept_mode;
        (accept, imported.notes)
    };

    let (accept, notes) = accept_of(&instance("plain", ""), "plain");
    assert!(accept, "keepalived without vrrp_strict accepts");
    let note = notes.iter().find(|n| n.keyword == "accept").unwrap();
    assert_eq!((note.line, note.kind), (1, NoteKind::Adjusted));
    assert!(note.message.contains("accept_mode = true"), "{note}");

    let (accept, notes) = accept_of(&instance("refusing", "  no_accept\n"), "refusing");
    assert!(!accept);
    assert!(notes.iter().all(|n| n.keyword != "accept"), "{notes:#?}");

    let strict = format!(
        "global_defs {{\n  vrrp_strict\n}}\n{}",
        instance("s", "  version 3\n")
    );
    let (accept, notes) = accept_of(&strict, "s");
    assert!(!accept, "vrrp_strict implies no_accept");
    assert!(
        notes
            .iter()
            .any(|n| n.keyword == "accept" && n.message.contains("strict mode implies no_accept")),
        "{notes:#?}"
    );
    assert!(
        notes
            .iter()
            .any(|n| n.keyword == "vrrp_strict" && n.kind == NoteKind::NotCarried),
        "{notes:#?}"
    );

    let strict_v3_accept = format!(
        "global_defs {{\n  vrrp_strict\n}}\n{}",
        instance("s", "  version 3\n  accept\n")
    );
    assert!(
        accept_of(&strict_v3_accept, "s").0,
        "explicit accept stays with VRRPv3"
    );

    let strict_v2_accept = format!(
        "global_defs {{\n  vrrp_strict\n}}\n{}",
        instance("s", "  version 2\n  accept\n")
    );
    let (accept, notes) = accept_of(&strict_v2_accept, "s");
    assert!(!accept, "strict VRRPv2 refuses accept");
    let note = notes.iter().find(|n| n.keyword == "accept").unwrap();
    assert_eq!(note.line, 9, "{note}");

    let per_instance = instance("p", "  strict_mode\n") + &instance("q", "  strict_mode off\n");
    let imported = import::import(&per_instance, Some(Format::Keepalived)).unwrap();
    assert!(!imported.config.vrrp_instance("p").unwrap().accept_mode);
    assert!(imported.config.vrrp_instance("q").unwrap().accept_mode);

    // Export writes the choice out, so either value survives a round trip.
    for text in [instance("plain", ""), instance("refusing", "  no_accept\n")] {
        let first = import::import(&text, Some(Format::Keepalived))
            .unwrap()
            .config;
        let exported = export::keepalived::export(&first).text;
        let again = import::import(&exported, Some(Format::Keepalived)).unwrap();
        assert_eq!(again.config.vrrp, first.vrrp, "{exported}");
        assert!(
            again.notes.iter().all(|n| n.keyword != "accept"),
            "{:#?}",
            again.notes
        );
    }
}
