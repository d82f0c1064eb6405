//! Importing a director pair as one pair config: the two keepalived.conf files of appendix B.11
//! (TUM report) merged into the shared part plus `[pair.a]` / `[pair.b]`, exported back as one
//! file per box; a Piranha lvs.cf with an active backup as a pair whose VRRP instances float
//! what pulse floated; and the notes for everything a half cannot hold.

// Test code: panics are the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::IpAddr;

use tandem_config::cli;
use tandem_config::export;
use tandem_config::import::{self, Format, ImportedPair, MergeKind, NoteKind};
use tandem_config::model::{InitialState, Role, VrrpOverride};
use tandem_config::validate::{validate, Severity};
use tandem_config::{text, Config};

fn data(name: &str) -> String {
    std::fs::read_to_string(path(name)).unwrap()
}

fn path(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn errors(config: &Config) -> Vec<String> {
    validate(config)
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| i.to_string())
        .collect()
}

/// No validation errors in the pair config nor in either box's own config.
fn assert_valid(config: &Config) {
    assert_eq!(errors(config), Vec::<String>::new());
    for role in Role::BOTH {
        assert_eq!(
            errors(&config.for_box(role)),
            Vec::<String>::new(),
            "box {role}"
        );
    }
}

fn single(text: &str) -> Config {
    import::import(text, None).unwrap().config
}

fn b11() -> ImportedPair {
    import::import_pair(
        &data("director1.keepalived.conf"),
        &data("director2.keepalived.conf"),
        None,
    )
    .unwrap()
}

fn over<'a>(config: &'a Config, role: Role, name: &str) -> &'a VrrpOverride {
    config
        .pair
        .as_ref()
        .unwrap()
        .half(role)
        .vrrp
        .iter()
        .find(|o| o.name == name)
        .unwrap_or_else(|| panic!("no override of {name} in pair.{role}"))
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

#[test]
fn b11_pair_shares_the_services_and_splits_states_and_priorities() {
    let imported = b11();
    let config = &imported.config;
    let pair = config.pair.as_ref().unwrap();
    assert_eq!(pair.a.hostname, "director1");
    assert_eq!(pair.b.hostname, "director2");
    assert_eq!(config.system.hostname, "", "the halves name the boxes");

    // director1 masters the mail instances, director2 the web instances.
    for (name, a, b) in [
        (
            "mail_vip",
            (150, InitialState::Master),
            (100, InitialState::Backup),
        ),
        (
            "mail_gw",
            (150, InitialState::Master),
            (100, InitialState::Backup),
        ),
        (
            "web_vip",
            (100, InitialState::Backup),
            (150, InitialState::Master),
        ),
        (
            "web_gw",
            (100, InitialState::Backup),
            (150, InitialState::Master),
        ),
    ] {
        let (over_a, over_b) = (over(config, Role::A, name), over(config, Role::B, name));
        assert_eq!(
            (over_a.priority, over_a.initial_state),
            (Some(a.0), Some(a.1))
        );
        assert_eq!(
            (over_b.priority, over_b.initial_state),
            (Some(b.0), Some(b.1))
        );
        // The shared instance has the lower priority and starts as backup.
        let shared = config.vrrp_instance(name).unwrap();
        assert_eq!(
            (shared.priority, shared.initial_state),
            (100, InitialState::Backup)
        );
    }

    // The virtual services, instances and sync groups are held once, in the shared part.
    assert_eq!(config.virtual_services.len(), 4);
    assert_eq!(config.vrrp.len(), 4);
    assert_eq!(config.sync_groups.len(), 2);
    let one = single(&data("director1.keepalived.conf"));
    assert_eq!(config.virtual_services, one.virtual_services);

    // Box a runs exactly what director1.conf alone imports to.
    assert_eq!(config.for_box(Role::A), one);
    // Box b runs director2.conf, but for the sender address of the mails: the one field the two
    // files differ in that a half cannot hold, and the merge says so.
    let mut two = single(&data("director2.keepalived.conf"));
    assert_eq!(
        two.notify.as_ref().unwrap().email_from.as_deref(),
        Some("director2@your.domain.name")
    );
    two.notify = one.notify.clone();
    assert_eq!(config.for_box(Role::B), two);
    let merge: Vec<String> = imported.merge.iter().map(ToString::to_string).collect();
    assert_eq!(
        merge,
        ["[notify] email_from: differs: the first file has \"director1@your.domain.name\", the second \"director2@your.domain.name\"; the pair config keeps the first file's for both boxes (a [pair] half cannot hold email_from)"],
        "{merge:#?}"
    );
    // Each file's own notes are those of its single import.
    assert_eq!(
        imported.first,
        import::import(&data("director1.keepalived.conf"), None)
            .unwrap()
            .notes
    );
    assert_eq!(imported.second.len(), 8);
    assert_valid(config);
    // The text form carries the halves.
    let toml = text::to_toml(config).unwrap();
    assert!(
        toml.contains("[pair.a]\nhostname = \"director1\""),
        "{toml}"
    );
    assert_eq!(&text::from_toml(&toml).unwrap(), config);
}

/// import(director1, director2) -> one keepalived.conf per box -> import of those two gives the
/// same pair config, and each exported file imports alone to what its original imports to.
#[test]
fn b11_pair_round_trips_through_one_file_per_box() {
    let pair = b11().config;
    let [(role_a, file_a), (role_b, file_b)] = export::keepalived::export_pair(&pair);
    assert_eq!((role_a, role_b), (Role::A, Role::B));
    for exported in [&file_a, &file_b] {
        assert!(exported.notes.is_empty(), "{:#?}", exported.notes);
    }
    assert!(file_a.text.contains("router_id director1"));
    assert!(file_b.text.contains("router_id director2"));
    assert_eq!(
        export::keepalived::pair_file_name(Role::B),
        "b.keepalived.conf"
    );

    let again = import::import_pair(&file_a.text, &file_b.text, None).unwrap();
    assert_eq!(again.config, pair);
    // The exported files agree on the sender address now, so nothing is left to note.
    assert!(again.merge.is_empty(), "{:#?}", again.merge);

    // Each exported file is equivalent to its input. Box a's exactly. Box b's carries the
    // shared `notification_email_from` (director1's: a pair config has one sender address and
    // keeps the first file's, as the merge noted), so that one field cannot round-trip for
    // director2; everything else is compared.
    assert_eq!(
        single(&file_a.text),
        single(&data("director1.keepalived.conf"))
    );
    let mut original_b = single(&data("director2.keepalived.conf"));
    let exported_b = single(&file_b.text);
    assert_eq!(
        exported_b.notify.as_ref().unwrap().email_from.as_deref(),
        Some("director1@your.domain.name")
    );
    original_b.notify = exported_b.notify.clone();
    assert_eq!(exported_b, original_b);
    // The single-box export of a pair config is its shared part, and says so.
    let shared = export::keepalived::export(&pair);
    assert!(
        shared.notes.iter().any(|n| n.path == "pair"),
        "{:#?}",
        shared.notes
    );
}

#[test]
fn lvs_cf_with_an_active_backup_is_a_pair_whose_vrrp_floats_the_addresses() {
    let imported = import::import(&data("piranha.lvs.cf"), None).unwrap();
    assert!(imported.is_lossless(), "{:#?}", imported.notes);
    let config = &imported.config;
    let vips = |name: &str| -> Vec<(IpAddr, u8, Option<String>)> {
        config
            .vrrp_instance(name)
            .unwrap_or_else(|| panic!("no instance {name}: {:#?}", config.vrrp))
            .vips
            .iter()
            .map(|v| (v.address, v.prefix, v.label.as_deref().map(String::from)))
            .collect()
    };
    // The virtual servers' addresses float on their interface, with pulse's alias labels.
    assert_eq!(
        vips("lvs_eth0"),
        [
            (ip("10.0.0.100"), 24, Some("eth0:1".into())),
            (ip("10.0.0.101"), 24, Some("eth0:2".into()))
        ]
    );
    // The NAT router's address floats too, so the VRRP engine (not the LVS engine) owns it.
    assert_eq!(
        vips("lvs_eth1"),
        [(ip("192.168.1.254"), 24, Some("eth1:1".into()))]
    );
    let eth0 = config.vrrp_instance("lvs_eth0").unwrap();
    assert_eq!((eth0.vrid, eth0.interface.as_str()), (51, "eth0"));
    assert_eq!(config.vrrp_instance("lvs_eth1").unwrap().vrid, 52);
    // keepalive = 6: adverts every 6 s.
    assert!(config.vrrp.iter().all(|v| v.advert_interval_cs == 600));
    assert_eq!(config.sync_groups.len(), 1);
    assert_eq!(config.sync_groups[0].members.len(), 2);

    // a is the primary: the higher priority, starting as master; b the backup.
    for name in ["lvs_eth0", "lvs_eth1"] {
        let (a, b) = (over(config, Role::A, name), over(config, Role::B, name));
        assert_eq!(
            (a.priority, a.initial_state),
            (Some(150), Some(InitialState::Master))
        );
        assert_eq!(
            (b.priority, b.initial_state),
            (Some(100), Some(InitialState::Backup))
        );
        assert!(a.priority > b.priority);
    }
    // Each box has its own address on the public and the private interface.
    let box_a = config.for_box(Role::A);
    let box_b = config.for_box(Role::B);
    let address = |config: &Config, name: &str| config.interface(name).unwrap().addresses.to_vec();
    assert_eq!(address(&box_a, "eth0"), ["10.0.0.1/24".parse().unwrap()]);
    assert_eq!(address(&box_b, "eth0"), ["10.0.0.2/24".parse().unwrap()]);
    assert_eq!(address(&box_a, "eth1"), ["192.168.1.1/24".parse().unwrap()]);
    assert_eq!(address(&box_b, "eth1"), ["192.168.1.2/24".parse().unwrap()]);
    assert_eq!(box_a.vrrp_instance("lvs_eth0").unwrap().priority, 150);
    assert_valid(config);
    // No validation finding at all but the missing host name.
    let findings: Vec<String> = validate(config).iter().map(ToString::to_string).collect();
    assert!(
        findings.iter().all(|f| f.contains("hostname")),
        "{findings:#?}"
    );

    // Every choice is a note: the pair, the VRIDs, the advert interval, the interfaces.
    let messages: Vec<String> = imported.notes.iter().map(ToString::to_string).collect();
    let has = |needle: &str| messages.iter().any(|m| m.contains(needle));
    assert!(has("line 9: backup: adjusted: the primary (10.0.0.1) and the backup (10.0.0.2) become one pair config"), "{messages:#?}");
    assert!(has("virtual_router_id 51 picked"), "{messages:#?}");
    assert!(
        has("line 16: nat_router: adjusted: vrrp lvs_eth1 floats 192.168.1.254/24"),
        "{messages:#?}"
    );
    assert!(
        has("line 13: keepalive: adjusted: the VRRP instances advertise every 6 s"),
        "{messages:#?}"
    );
    assert!(
        has("line 5: primary: adjusted: primary 10.0.0.1 lies in 10.0.0.100/24"),
        "{messages:#?}"
    );
    assert!(has("sync group lvs"), "{messages:#?}");

    // lvs.cf describes both routers: the export is one file, which needs no note for the
    // instances and halves (they are what its primary and backup imply) and imports back
    // equal.
    let exported = export::lvs::export(config);
    assert!(exported.notes.is_empty(), "{:#?}", exported.notes);
    let again = import::import(&exported.text, Some(Format::Lvs)).unwrap();
    assert_eq!(&again.config, config, "{}", exported.text);
    // Piranha copies one lvs.cf to both routers: two equal files are the same pair, and a
    // second file that differs is noted field by field (the first file's values are kept).
    let twice =
        import::import_pair(&data("piranha.lvs.cf"), &data("piranha.lvs.cf"), None).unwrap();
    assert_eq!(&twice.config, config);
    assert!(twice.merge.is_empty(), "{:#?}", twice.merge);
    let faster = data("piranha.lvs.cf").replace("keepalive = 6", "keepalive = 2");
    let differing = import::import_pair(&data("piranha.lvs.cf"), &faster, None).unwrap();
    assert_eq!(&differing.config, config);
    let notes: Vec<String> = differing.merge.iter().map(ToString::to_string).collect();
    assert!(
        notes.iter().any(|n| n.starts_with(
            "[peer_link] heartbeat_interval_ms: differs: the first file has 6000, the second 2000"
        ) && n.ends_with("pulse expected the same file on both)")),
        "{notes:#?}"
    );
    // Changed halves are not lvs.cf's any more: noted.
    let mut edited = config.clone();
    edited.pair.as_mut().unwrap().a.hostname = "lvs1".try_into().unwrap();
    let notes = export::lvs::export(&edited).notes;
    assert!(notes.iter().any(|n| n.path == "pair"), "{notes:#?}");
}

#[test]
fn lvs_cf_choices_the_file_does_not_make_are_noted() {
    // No keepalive, one address without a device, no netmask to place the routers by, an
    // inactive service.
    let text = "primary = 10.0.0.1\nbackup_active = 1\nbackup = 10.0.0.2\n\
                virtual web {\n address = 10.0.0.100 eth0:1\n port = 80\n server a {\n  address = 192.168.1.11\n }\n}\n\
                virtual dns {\n address = 10.0.0.53\n port = 53\n server b {\n  address = 192.168.1.12\n }\n}\n\
                virtual old {\n active = 0\n address = 10.0.0.99 eth0:3\n port = 81\n}\n";
    let imported = import::import(text, Some(Format::Lvs)).unwrap();
    let config = &imported.config;
    let instance = config.vrrp_instance("lvs_eth0").unwrap();
    assert_eq!(instance.advert_interval_cs, 100);
    let floated: Vec<IpAddr> = instance.vips.iter().map(|v| v.address).collect();
    assert_eq!(floated, [ip("10.0.0.100"), ip("10.0.0.53")]);
    let note = |keyword: &str, needle: &str| {
        imported
            .notes
            .iter()
            .find(|n| n.keyword == keyword && n.message.contains(needle))
            .unwrap_or_else(|| panic!("no {keyword} note with {needle:?}: {:#?}", imported.notes))
            .clone()
    };
    assert!(note("keepalive", "gives no keepalive")
        .message
        .contains("advert_interval_cs = 100"));
    let guessed = note("address", "gives no device");
    assert_eq!(guessed.line, 11);
    assert!(guessed.message.contains("floats on eth0"), "{guessed}");
    assert_eq!(note("active", "is inactive").line, 18);
    let primary = note("primary", "cannot tell its interface");
    assert_eq!((primary.line, primary.kind), (1, NoteKind::Adjusted));
    assert_valid(config);

    // Without an active backup there is no pair, as before.
    let lone = text.replace("backup_active = 1", "backup_active = 0");
    let imported = import::import(&lone, Some(Format::Lvs)).unwrap();
    assert_eq!(imported.config.pair, None);
    assert!(imported.config.vrrp.is_empty());
}

#[test]
fn what_a_half_cannot_hold_is_noted_with_both_values() {
    let second = data("director2.keepalived.conf")
        // web_gw advertises at another interval on director2...
        .replacen("virtual_router_id 21\n    priority 150\n    advert_int 1", "virtual_router_id 21\n    priority 150\n    advert_int 2", 1)
        // ...and director2 balances one more service.
        + "\nvirtual_server 123.123.123.2 443 {\n    lb_algo rr\n    lb_kind NAT\n    protocol TCP\n    real_server 192.168.0.201 443 {\n        TCP_CHECK {\n        }\n    }\n}\n";
    let imported = import::import_pair(&data("director1.keepalived.conf"), &second, None).unwrap();
    let notes: Vec<String> = imported.merge.iter().map(ToString::to_string).collect();
    assert!(
        notes.contains(&"[[vrrp]] name = \"web_gw\" advert_interval_cs: differs: the first file has 100, the second 200; the pair config keeps the first file's for both boxes (a [pair] half cannot hold advert_interval_cs)".to_string()),
        "{notes:#?}"
    );
    let extra = imported
        .merge
        .iter()
        .find(|n| n.message.contains("only the second file has"))
        .unwrap_or_else(|| panic!("{notes:#?}"));
    assert_eq!(extra.kind, MergeKind::Differs);
    assert_eq!(
        extra.to_string(),
        "(top level): differs: only the second file has [[virtual_services]] address = \"123.123.123.2\", port = 443, protocol = \"tcp\" (and 29 more lines of it); it is NOT in the pair config (a [pair] half cannot hold it): add it to the shared part if both boxes should have it"
    );
    // The first file's values are kept.
    let config = &imported.config;
    assert_eq!(
        config.vrrp_instance("web_gw").unwrap().advert_interval_cs,
        100
    );
    assert_eq!(config.virtual_services.len(), 4);
    assert_valid(config);
}

#[test]
fn two_masters_with_equal_priority_are_warned_about() {
    let file = |router: &str| {
        format!("global_defs {{\n    router_id {router}\n}}\nvrrp_instance VI_1 {{\n    state MASTER\n    interface eth0\n    virtual_router_id 51\n    priority 100\n    virtual_ipaddress {{\n        10.0.0.10\n    }}\n}}\n")
    };
    let imported = import::import_pair(&file("lb1"), &file("lb2"), None).unwrap();
    let warnings: Vec<_> = imported
        .merge
        .iter()
        .filter(|n| n.kind == MergeKind::Warning)
        .collect();
    assert_eq!(warnings.len(), 1, "{:#?}", imported.merge);
    assert_eq!(warnings[0].path, "[[vrrp]] name = \"VI_1\"");
    assert!(
        warnings[0]
            .message
            .contains("both files start as MASTER with priority 100")
            && warnings[0]
                .message
                .contains("set pair.a.vrrp.VI_1.priority 150"),
        "{}",
        warnings[0]
    );
    // Nothing differs, so the halves hold only the host names; both boxes start as master.
    let config = &imported.config;
    let pair = config.pair.as_ref().unwrap();
    assert!(pair.a.vrrp.is_empty() && pair.b.vrrp.is_empty());
    assert_eq!(config.vrrp[0].initial_state, InitialState::Master);
    assert_valid(config);

    // Unicast addresses are per box: each goes to its half.
    let unicast = |source: &str, peer: &str| {
        file("lb").replace(
            "    priority 100\n",
            &format!("    priority 100\n    unicast_src_ip {source}\n    unicast_peer {{\n        {peer}\n    }}\n"),
        )
    };
    let imported = import::import_pair(
        &unicast("10.0.0.2", "10.0.0.3"),
        &unicast("10.0.0.3", "10.0.0.2"),
        None,
    )
    .unwrap();
    let config = &imported.config;
    assert_eq!(config.vrrp[0].unicast_source, None);
    assert!(config.vrrp[0].unicast_peers.is_empty());
    let b = config.for_box(Role::B);
    assert_eq!(b.vrrp[0].unicast_source, Some(ip("10.0.0.3")));
    assert_eq!(b.vrrp[0].unicast_peers.to_vec(), [ip("10.0.0.2")]);
    assert_eq!(
        config.for_box(Role::A).vrrp[0].unicast_source,
        Some(ip("10.0.0.2"))
    );
}

#[test]
fn a_keepalived_and_an_lvs_file_are_refused() {
    let error = import::import_pair(
        &data("director1.keepalived.conf"),
        &data("piranha.lvs.cf"),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("the first file is keepalived.conf and the second lvs.cf"),
        "{error}"
    );
    let error = import::import_pair(
        &data("director1.keepalived.conf"),
        "vrrp_instance x {\n",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(error.starts_with("second file (box b): line"), "{error}");
}

fn run(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(ToString::to_string).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = cli::run(&args, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

/// As an operator would: two files in, one TOML out; a pair config out as one keepalived.conf
/// per box in a directory; those two back in give the same TOML.
#[test]
fn cli_imports_two_files_and_exports_one_per_box() {
    let dir = std::env::temp_dir().join(format!("tandem-import-pair-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let toml = dir.join("pair.toml");
    let toml = toml.to_str().unwrap();
    let (d1, d2) = (
        path("director1.keepalived.conf"),
        path("director2.keepalived.conf"),
    );
    let (code, _, err) = run(&["import", &d1, &d2, "-o", toml]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("[notify] email_from: differs"), "{err}");
    assert!(err.contains("0 error(s)"), "{err}");
    assert_eq!(
        text::from_toml(&std::fs::read_to_string(toml).unwrap()).unwrap(),
        b11().config
    );

    // A pair config needs a directory (or one box).
    let (code, _, err) = run(&["export", "--format", "keepalived", toml]);
    assert_eq!(code, 2);
    assert!(
        err.contains("pass -o DIR to write DIR/a.keepalived.conf and DIR/b.keepalived.conf"),
        "{err}"
    );
    let out = dir.join("out");
    let (code, _, err) = run(&[
        "export",
        "--format",
        "keepalived",
        toml,
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("b.keepalived.conf: box b (director2)"),
        "{err}"
    );
    let (code, box_b, _) = run(&["export", "--format", "keepalived", toml, "--box", "b"]);
    assert_eq!(code, 0);
    let file_b = out.join("b.keepalived.conf");
    assert_eq!(std::fs::read_to_string(&file_b).unwrap(), box_b);

    let again = dir.join("again.toml");
    let file_a = out.join("a.keepalived.conf");
    let (code, _, err) = run(&[
        "import",
        file_a.to_str().unwrap(),
        file_b.to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        std::fs::read_to_string(&again).unwrap(),
        std::fs::read_to_string(toml).unwrap()
    );
    let (code, _, err) = run(&["import", &d1, &d2, &d1]);
    assert_eq!(code, 2);
    assert!(err.contains("two directors' files"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}
