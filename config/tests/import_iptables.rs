//! iptables import: the TUM report's ClusterIP rules (5.4) on each of two boxes, a realistic
//! iptables-save file with a filter table and two shared addresses, every refused CLUSTERIP rule
//! with its line, format detection next to keepalived.conf and lvs.cf, the CLI's `--format
//! iptables`, and hostile input. Every imported config validates, encodes and reads back.

// Test code: panics are the failure report, and the figures are small known values.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_lossless
)]

use std::net::{IpAddr, Ipv4Addr};

use tandem_config::blob::{self, BlobMeta};
use tandem_config::import::{self, Format, ImportError, Imported, Note, NoteKind};
use tandem_config::model::{limits, ClusterIpGroup, HashTuple};
use tandem_config::net::MacAddr;
use tandem_config::validate::{validate, Severity};
use tandem_config::{cli, text, Config};

fn fixture(name: &str) -> String {
    std::fs::read_to_string(fixture_path(name)).unwrap()
}

fn fixture_path(name: &str) -> String {
    format!(
        "{}/tests/import/iptables/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

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

/// The config validates without errors, encodes as a blob and survives the TOML form.
fn runs_as_it_is(config: &Config) {
    assert_eq!(errors(config), Vec::<String>::new(), "{config:#?}");
    let blob = blob::encode(config, BlobMeta::default(), None).unwrap();
    assert!(!blob.is_empty());
    let toml = text::to_toml(config).unwrap();
    assert_eq!(&text::from_toml(&toml).unwrap(), config, "{toml}");
}

fn group<'a>(imported: &'a Imported, name: &str) -> &'a ClusterIpGroup {
    imported
        .config
        .clusterip
        .iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("no group {name}: {:#?}", imported.config.clusterip))
}

fn notes_on(imported: &Imported, line: usize) -> Vec<&Note> {
    imported.notes.iter().filter(|n| n.line == line).collect()
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

#[test]
fn tum_report_boxes_import_to_one_group_each() {
    for (file, node) in [("tum_box1.rules", 1u8), ("tum_box2.rules", 2)] {
        let text = fixture(file);
        assert_eq!(import::detect(&text), Some(Format::Iptables), "{file}");
        let imported = import::import(&text, None).unwrap();
        assert_eq!(imported.config.clusterip.len(), 1, "{file}");
        let group = group(&imported, "cluster_123_123_123_1");
        assert_eq!(group.vip, v4(123, 123, 123, 1));
        assert_eq!(group.interface, "eth0");
        assert_eq!(group.multicast_mac, MacAddr([0x01, 0x00, 0x5e, 0, 0, 0x20]));
        assert_eq!(group.hash, HashTuple::SourceIp);
        assert_eq!(group.hash_init, 1);
        assert_eq!(group.total_nodes, 2);
        assert_eq!(&group.local_nodes[..], &[node], "{file}");
        assert!(imported.config.interface("eth0").is_some());

        // Nothing is lost: the address command, the interface name and the port match are
        // adjusted, each on its line.
        assert!(imported.is_lossless(), "{file}: {:#?}", imported.notes);
        let address = notes_on(&imported, 3);
        assert_eq!(address.len(), 1, "{:#?}", imported.notes);
        assert_eq!(address[0].keyword, "ip addr");
        assert!(address[0]
            .message
            .contains("Tandem puts group cluster_123_123_123_1's address on eth0 itself"));
        let rule = notes_on(&imported, 4);
        let keywords: Vec<&str> = rule.iter().map(|n| n.keyword.as_str()).collect();
        assert_eq!(keywords, ["-j CLUSTERIP", "-i"], "{:#?}", imported.notes);
        assert!(
            rule[0].message.starts_with(
                "the group answers every port of 123.123.123.1; this rule shared only `-p tcp --dport 80`"
            ),
            "{}",
            rule[0].message
        );
        assert!(
            rule[1].message.contains("interface eth0 is kept as named")
                && rule[1]
                    .message
                    .contains("`set interfaces.eth0.name public` and `set clusterip.cluster_123_123_123_1.interface public`"),
            "{}",
            rule[1].message
        );
        assert_eq!(imported.notes.len(), 3, "{:#?}", imported.notes);
        runs_as_it_is(&imported.config);
    }
}

#[test]
fn tum_report_takeover_command_needs_nothing() {
    // 5.4.2: box 1 takes over node 2's buckets, and gives them back.
    let text = format!(
        "{}echo \"+2\" > /proc/net/ipt_CLUSTERIP/123.123.123.1\necho \"-2\" > /proc/net/ipt_CLUSTERIP/123.123.123.1\n",
        fixture("tum_box1.rules")
    );
    let imported = import::import(&text, None).unwrap();
    assert_eq!(
        &group(&imported, "cluster_123_123_123_1").local_nodes[..],
        &[1],
        "a takeover is no configuration"
    );
    for line in [5, 6] {
        let notes = notes_on(&imported, line);
        assert_eq!(notes.len(), 1, "{:#?}", imported.notes);
        assert_eq!(notes[0].kind, NoteKind::Adjusted);
        assert_eq!(notes[0].keyword, "ipt_CLUSTERIP");
        assert!(notes[0]
            .message
            .contains("moves buckets of group cluster_123_123_123_1 itself"));
    }
}

#[test]
fn saved_filter_table_with_two_addresses() {
    let text = fixture("two_vips.rules");
    assert_eq!(import::detect(&text), Some(Format::Iptables));
    let imported = import::import(&text, None).unwrap();
    assert_eq!(imported.config.clusterip.len(), 2, "{:#?}", imported.notes);

    let web = group(&imported, "cluster_123_123_123_1");
    assert_eq!(web.vip, v4(123, 123, 123, 1));
    assert_eq!(web.multicast_mac, MacAddr([0x01, 0x00, 0x5e, 0, 0, 0x20]));
    assert_eq!(
        (web.hash, web.hash_init, web.total_nodes),
        (HashTuple::SourceIp, 0, 2)
    );
    assert_eq!(&web.local_nodes[..], &[1]);

    let tls = group(&imported, "cluster_123_123_123_2");
    assert_eq!(tls.vip, v4(123, 123, 123, 2));
    assert_eq!(tls.multicast_mac, MacAddr([0x01, 0x00, 0x5e, 0, 0, 0x21]));
    assert_eq!(
        (tls.hash, tls.hash_init, tls.total_nodes),
        (HashTuple::SourceIpPort, 0xdead_beef, 4)
    );
    assert_eq!(
        &tls.local_nodes[..],
        &[2, 4],
        "line 22's --local-node 4 joins"
    );
    assert_eq!(tls.interface, "eth0");
    assert_eq!(imported.config.interfaces.len(), 1, "eth0 once");

    // Every rule that is not CLUSTERIP is one not-carried note on its line; chain headers with
    // ACCEPT or `-` are silent, INPUT's DROP policy is noted.
    let not_carried: Vec<(usize, &str)> = imported
        .notes
        .iter()
        .filter(|n| n.kind == NoteKind::NotCarried)
        .map(|n| (n.line, n.keyword.as_str()))
        .collect();
    assert_eq!(
        not_carried,
        [
            (7, "-j SNAT"),
            (12, "policy"),
            (16, "-j ACCEPT"),
            (17, "-j ACCEPT"),
            (18, "-j ACCEPT"),
            (20, "-j ACCEPT"),
            (24, "-j ACCEPT"),
            (25, "-j LOGDROP"),
            (26, "-j ACCEPT"),
            (27, "-j LOG"),
            (28, "-j DROP"),
        ],
        "{:#?}",
        imported.notes
    );
    let snat = notes_on(&imported, 7)[0];
    assert!(snat.message.contains("(nat table, chain POSTROUTING)"));
    assert!(snat.message.contains("[nat_gateway]"));
    let policy = notes_on(&imported, 12)[0];
    assert!(policy
        .message
        .starts_with("chain INPUT (filter table) defaults to DROP"));
    assert!(notes_on(&imported, 25)[0]
        .message
        .contains("-m comment --comment \"drop the rest, logged\" -j LOGDROP"));

    // The CLUSTERIP rules: adjusted only.
    assert!(imported.notes.iter().all(|n| n.kind != NoteKind::Invalid));
    let joins = notes_on(&imported, 22);
    assert!(
        joins
            .iter()
            .any(|n| n.message.starts_with("local node 4 joins group cluster_123_123_123_2 (line 21): this box serves buckets 2 and 4")),
        "{joins:#?}"
    );
    let reference = notes_on(&imported, 23);
    assert_eq!(reference.len(), 1, "{reference:#?}");
    assert!(reference[0]
        .message
        .contains("shared only `-p tcp -m tcp --dport 8443`"));
    runs_as_it_is(&imported.config);
}

#[test]
fn every_refused_rule_names_its_line_and_the_rest_imports() {
    let imported = import::import(&fixture("errors.rules"), None).unwrap();
    let names: Vec<&str> = imported
        .config
        .clusterip
        .iter()
        .map(|g| g.name.as_str())
        .collect();
    assert_eq!(names, ["cluster_10_1_0_1", "cluster_10_1_0_14"]);
    assert_eq!(
        &group(&imported, "cluster_10_1_0_1").local_nodes[..],
        &[1],
        "the conflicting rules add no local node"
    );
    assert_eq!(group(&imported, "cluster_10_1_0_1").total_nodes, 2);
    let invalid: Vec<(usize, &str)> = imported
        .notes
        .iter()
        .filter(|n| n.kind == NoteKind::Invalid)
        .map(|n| (n.line, n.message.as_str()))
        .collect();
    let expected: [(usize, &str); 13] = [
        (5, "missing -d VIP"),
        (6, "missing --clustermac for 10.1.0.3"),
        (7, "missing --total-nodes for 10.1.0.4"),
        (8, "missing --local-node for 10.1.0.5"),
        (9, "--clustermac 00:16:3e:00:01:06 is not a multicast MAC"),
        (10, "--total-nodes 0 is outside 1 to 64"),
        (11, "--total-nodes 65 is outside 1 to 64"),
        (12, "--local-node 3 is outside 1 to --total-nodes 2"),
        (13, "--local-node 0 is outside 1 to --total-nodes 2"),
        (
            14,
            "conflicts with line 4, which makes group cluster_10_1_0_1 for 10.1.0.1: --total-nodes 3 here, 2 there",
        ),
        (
            15,
            "conflicts with line 4, which makes group cluster_10_1_0_1 for 10.1.0.1: --clustermac 01:00:5e:00:01:ff here, 01:00:5e:00:01:01 there, --hash-init 8 here, 7 there",
        ),
        (
            16,
            "missing --clustermac and --total-nodes and --local-node for 10.1.0.12",
        ),
        (17, "missing -i for 10.1.0.13"),
    ];
    assert_eq!(invalid.len(), expected.len(), "{invalid:#?}");
    for ((line, message), (want_line, want)) in invalid.iter().zip(expected) {
        assert_eq!(*line, want_line, "{message}");
        assert!(message.starts_with(want), "line {line}: {message}");
        // Each says what to do and quotes the refused rule (the deferred reference says so
        // in its own words).
        assert!(
            message.contains("rule not imported"),
            "line {line}: {message}"
        );
    }
    // The good rules around the refused ones are fine; the config runs.
    runs_as_it_is(&imported.config);
}

#[test]
fn detection_keeps_keepalived_and_lvs_apart_from_iptables() {
    assert_eq!(
        import::detect(&data("director1.keepalived.conf")),
        Some(Format::Keepalived)
    );
    assert_eq!(
        import::detect(&data("director2.keepalived.conf")),
        Some(Format::Keepalived)
    );
    assert_eq!(import::detect(&data("piranha.lvs.cf")), Some(Format::Lvs));
    for text in [
        "*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n",
        "# Generated by iptables-save v1.8.7\n*mangle\n",
        ":INPUT ACCEPT [0:0]\n",
        "-A INPUT -j ACCEPT\n",
        "#!/bin/sh\n/sbin/iptables -F\n",
        "#!/bin/sh\nmodprobe ipt_CLUSTERIP\nip addr add 10.0.0.1 dev eth0\niptables -A INPUT -j ACCEPT\n",
    ] {
        assert_eq!(import::detect(text), Some(Format::Iptables), "{text}");
    }
    for text in ["", "hello world\n", "\u{0}\u{1}binary\n"] {
        assert_eq!(import::detect(text), None, "{text:?}");
    }
    assert_eq!(Format::from_name("iptables"), Some(Format::Iptables));
    assert_eq!(Format::from_name("iptables-save"), Some(Format::Iptables));
    assert_eq!(
        import::import("hello world\n", None).unwrap_err(),
        ImportError::UnknownFormat
    );
    assert!(ImportError::UnknownFormat
        .to_string()
        .contains("--format iptables"));
}

#[test]
fn forced_format_on_a_file_without_iptables_says_so() {
    let err =
        import::import(&data("director1.keepalived.conf"), Some(Format::Iptables)).unwrap_err();
    match err {
        ImportError::Syntax { message, .. } => {
            assert!(message.contains("no iptables rule"), "{message}")
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn cli_imports_with_and_without_format() {
    let dir = std::env::temp_dir().join(format!("tandem-config-iptables-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("box1.toml");
    let box1 = fixture_path("tum_box1.rules");
    for format in [None, Some("iptables"), Some("iptables-save")] {
        let mut args = vec![String::from("import"), box1.clone()];
        if let Some(format) = format {
            args.extend([String::from("--format"), String::from(format)]);
        }
        args.extend([String::from("-o"), out.to_str().unwrap().to_string()]);
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let code = cli::run(&args, &mut stdout, &mut stderr);
        let stderr = String::from_utf8(stderr).unwrap();
        assert_eq!(code, 0, "{format:?}: {stderr}");
        assert!(stderr.contains("-j CLUSTERIP: adjusted"), "{stderr}");
        let config = text::from_toml(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(config.clusterip.len(), 1);
    }
    // Refused rules fail the command (exit 1) but still write what imported.
    let args = [
        "import".to_string(),
        fixture_path("errors.rules"),
        "-o".to_string(),
        out.to_str().unwrap().to_string(),
    ];
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let code = cli::run(&args, &mut stdout, &mut stderr);
    let stderr = String::from_utf8(stderr).unwrap();
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("errors.rules: line 5: -j CLUSTERIP: invalid: missing -d VIP"));
    let config = text::from_toml(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(config.clusterip.len(), 2);
    std::fs::remove_dir_all(&dir).unwrap();
}

const RULE: &str = "-A INPUT -d 10.0.0.1 -i public -j CLUSTERIP --new --hashmode sourceip --clustermac 01:00:5e:00:00:01 --total-nodes 2 --local-node 1";

#[test]
fn hostile_input_gives_errors_or_notes_in_bounded_memory() {
    // A 1 MB line.
    let long = format!(
        "-A INPUT -m comment --comment {} -j ACCEPT\n{RULE}\n",
        "x".repeat(1 << 20)
    );
    let imported = import::import(&long, None).unwrap();
    assert_eq!(imported.config.clusterip.len(), 1);
    assert!(
        imported.notes[0].message.len() < 400,
        "the note quotes the rule shortened"
    );
    // A 1 MB line of separate words.
    let words = format!("-A INPUT {}\n{RULE}\n", "-x ".repeat(350_000));
    let imported = import::import(&words, Some(Format::Iptables)).unwrap();
    assert_eq!(imported.config.clusterip.len(), 1);
    assert_eq!(imported.notes[0].kind, NoteKind::Invalid);
    assert!(imported.notes[0].message.contains("more than 256 words"));

    // Binary garbage: undetectable, and with the format forced, an error.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let garbage: Vec<u8> = (0..200_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect();
    let garbage = String::from_utf8_lossy(&garbage).into_owned();
    let _ = import::detect(&garbage);
    match import::import(&garbage, Some(Format::Iptables)) {
        Err(ImportError::Syntax { .. }) => {}
        Ok(imported) => {
            assert!(imported.config.clusterip.is_empty());
            assert!(imported.notes.len() <= import::iptables::MAX_NOTES + 3);
        }
        Err(other) => panic!("{other:?}"),
    }

    // 100k rules: notes stop at the cap, with a summary.
    let mut many = String::from("*filter\n");
    for index in 0..100_000 {
        many.push_str(&format!(
            "-A INPUT -s 10.{}.{}.0/24 -j DROP\n",
            index / 256 % 256,
            index % 256
        ));
    }
    many.push_str(RULE);
    many.push_str("\nCOMMIT\n");
    assert!(many.len() < import::MAX_INPUT_BYTES);
    let imported = import::import(&many, None).unwrap();
    assert_eq!(imported.config.clusterip.len(), 1);
    assert_eq!(imported.notes.len(), import::iptables::MAX_NOTES + 1);
    let summary = imported
        .notes
        .iter()
        .find(|n| n.keyword == "notes")
        .unwrap();
    assert!(
        summary
            .message
            .starts_with("99000 more lines from 1002 to 100001 are not carried over"),
        "{}",
        summary.message
    );

    // Unbalanced quotes: that rule is invalid, the next one imports.
    let quotes = format!(
        "-A INPUT -m comment --comment \"open -j ACCEPT\n-A INPUT -j LOG --log-prefix 'x\n{RULE}\n"
    );
    let imported = import::import(&quotes, None).unwrap();
    assert_eq!(imported.config.clusterip.len(), 1);
    let kinds: Vec<(usize, NoteKind)> = imported.notes.iter().map(|n| (n.line, n.kind)).collect();
    assert_eq!(kinds, [(1, NoteKind::Invalid), (2, NoteKind::Invalid)]);
    assert!(imported.notes[0].message.contains("a quote is not closed"));

    // Too large.
    let huge = "#".repeat(import::MAX_INPUT_BYTES + 1);
    assert!(matches!(
        import::import(&huge, Some(Format::Iptables)),
        Err(ImportError::TooLarge { .. })
    ));
}

#[test]
fn groups_past_the_limit_are_refused_with_a_note() {
    let mut text = String::new();
    let count = limits::CLUSTERIP_GROUPS + 2;
    for index in 1..=count {
        text.push_str(&format!(
            "iptables -A INPUT -d 10.0.1.{index} -i public -j CLUSTERIP --new --hashmode sourceip --clustermac 01:00:5e:00:01:{index:02x} --total-nodes 2 --local-node 1\n"
        ));
    }
    let imported = import::import(&text, None).unwrap();
    assert_eq!(imported.config.clusterip.len(), limits::CLUSTERIP_GROUPS);
    let refused: Vec<usize> = imported
        .notes
        .iter()
        .filter(|n| n.kind == NoteKind::Invalid)
        .map(|n| n.line)
        .collect();
    assert_eq!(refused, [count - 1, count]);
    assert!(imported.notes[0].message.contains(&format!(
        "Tandem holds at most {}",
        limits::CLUSTERIP_GROUPS
    )));
    runs_as_it_is(&imported.config);
}

#[test]
fn the_two_tum_boxes_import_as_one_pair_that_splits_the_buckets() {
    let pair =
        import::import_pair(&fixture("tum_box1.rules"), &fixture("tum_box2.rules"), None).unwrap();
    assert!(
        pair.merge
            .iter()
            .all(|note| !note.path.contains("clusterip")),
        "{:?}",
        pair.merge
    );
    let config = pair.config;
    assert!(config.clusterip[0].local_nodes.is_empty());
    assert!(errors(&config).is_empty(), "{:?}", errors(&config));
    // Box a serves node 1, box b node 2, as the two files did.
    let a = config.for_box(tandem_config::model::Role::A);
    let b = config.for_box(tandem_config::model::Role::B);
    assert_eq!(
        a.clusterip[0]
            .local_nodes
            .iter()
            .copied()
            .collect::<Vec<u8>>(),
        [1]
    );
    assert_eq!(
        b.clusterip[0]
            .local_nodes
            .iter()
            .copied()
            .collect::<Vec<u8>>(),
        [2]
    );
}
