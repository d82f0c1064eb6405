//! Hostile blobs: every truncation, every single-bit flip, replays, and the golden vectors.

// Test code: panics are the failure report, and the figures are small known values.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_lossless
)]

use tandem_config::blob::{self, BlobError, BlobMeta, MacKey, MacPolicy, CRC_BYTES, MAC_BYTES};
use tandem_config::import;
use tandem_config::{CommitOrigin, CommitRecord, Config, History};

fn director1() -> Config {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/director1.keepalived.conf"
    ))
    .unwrap();
    import::import(&text, None).unwrap().config
}

#[test]
fn every_truncation_is_refused_with_a_named_error() {
    let blob = blob::encode(
        &director1(),
        BlobMeta {
            generation: 9,
            ..BlobMeta::default()
        },
        None,
    )
    .unwrap();
    for len in 0..blob.len() {
        match blob::decode(&blob[..len], MacPolicy::Inspect, None) {
            Err(BlobError::TooShort { .. } | BlobError::LengthMismatch { .. }) => {}
            other => panic!("truncated to {len}: {other:?}"),
        }
    }
    let mut longer = blob.clone();
    longer.push(0);
    assert!(matches!(
        blob::decode(&longer, MacPolicy::Inspect, None),
        Err(BlobError::LengthMismatch { .. })
    ));
}

#[test]
fn every_single_bit_flip_is_refused() {
    let key = MacKey([0x5a; 32]);
    let meta = BlobMeta {
        generation: 3,
        parent_generation: 2,
        pair_id: 77,
    };
    for keyed in [false, true] {
        let blob = blob::encode(&director1(), meta, keyed.then_some(&key)).unwrap();
        let policy = if keyed {
            MacPolicy::Require(&key)
        } else {
            MacPolicy::Unkeyed
        };
        assert!(blob::decode(&blob, policy, None).is_ok());
        let mac_at = blob.len() - MAC_BYTES;
        for bit in 0..blob.len() * 8 {
            let mut damaged = blob.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            let result = blob::decode(&damaged, policy, None);
            let byte = bit / 8;
            if !keyed && byte >= mac_at {
                // An unkeyed blob's MAC slot is not covered by anything; a flip there is harmless
                // and must not make decoding fail or change the config.
                assert_eq!(result.map(|d| d.config), Ok(director1()));
                continue;
            }
            match result {
                Err(
                    BlobError::BadMagic
                    | BlobError::PayloadTooLarge { .. }
                    | BlobError::LengthMismatch { .. }
                    | BlobError::CrcMismatch { .. }
                    | BlobError::MacMismatch,
                ) => {}
                other => panic!("bit {bit} (byte {byte}, keyed {keyed}) flipped: {other:?}"),
            }
        }
    }
}

#[test]
fn replayed_older_generation_is_refused() {
    let old = blob::encode(
        &director1(),
        BlobMeta {
            generation: 4,
            ..BlobMeta::default()
        },
        None,
    )
    .unwrap();
    let new = blob::encode(
        &director1(),
        BlobMeta {
            generation: 5,
            parent_generation: 4,
            ..BlobMeta::default()
        },
        None,
    )
    .unwrap();
    let accepted = blob::decode(&new, MacPolicy::Unkeyed, Some(4)).unwrap();
    let last = accepted.header.generation;
    assert_eq!(
        blob::decode(&old, MacPolicy::Unkeyed, Some(last)),
        Err(BlobError::StaleGeneration {
            generation: 4,
            last_accepted: 5
        })
    );
    let message = blob::decode(&old, MacPolicy::Unkeyed, Some(last))
        .unwrap_err()
        .to_string();
    assert!(message.contains("older than generation 5"), "{message}");
}

#[test]
fn crc_covers_header_and_payload_exactly() {
    let blob = blob::encode(&Config::default(), BlobMeta::default(), None).unwrap();
    let crc_at = blob.len() - MAC_BYTES - CRC_BYTES;
    assert_eq!(
        blob::check_integrity(&blob).unwrap().payload_len as usize,
        crc_at - blob::HEADER_BYTES
    );
}

fn golden_dir() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden")
}

fn golden_key() -> MacKey {
    MacKey(*b"tandem-golden-vector-key-32bytes")
}

/// Golden vectors freeze format version 1, written by earlier firmware: these bytes must decode to
/// these configs forever, with an empty history. They are never regenerated.
#[test]
fn golden_vectors_of_format_1_decode() {
    let key = golden_key();
    let cases: [(&str, Option<&MacKey>, BlobMeta); 3] = [
        ("v1_empty.blob", None, BlobMeta::default()),
        (
            "v1_director1.blob",
            None,
            BlobMeta {
                generation: 12,
                parent_generation: 11,
                pair_id: 0,
            },
        ),
        (
            "v1_director1_keyed.blob",
            Some(&key),
            BlobMeta {
                generation: 13,
                parent_generation: 12,
                pair_id: 0x1234_5678_9abc_def0,
            },
        ),
    ];
    for (name, key, meta) in cases {
        let path = format!("{}/{name}", golden_dir());
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let policy = key.map_or(MacPolicy::Unkeyed, MacPolicy::Require);
        // The expected model is the frozen text next to the blob, not today's importer.
        let text = std::fs::read_to_string(format!("{path}.toml")).unwrap();
        let expected = tandem_config::text::from_toml(&text).unwrap();
        let decoded = blob::decode(&bytes, policy, None).unwrap();
        assert_eq!(decoded.header.format_version, 1);
        assert_eq!(decoded.header.generation, meta.generation);
        assert_eq!(decoded.header.pair_id, meta.pair_id);
        assert_eq!(decoded.config, expected, "{name}");
        assert_eq!(decoded.migrated_from, Some(1));
        assert_eq!(decoded.history, History::default());
    }
}

/// The golden records; format 3's carry a digest (`with_digest`), format 2's decode with 0.
fn golden_history_of(with_digest: bool) -> History {
    let mut history = History::default();
    let records = [
        (1, 0, CommitOrigin::Boot, "", false),
        (
            12,
            1_767_225_600,
            CommitOrigin::Console,
            "web_vip priority 150",
            false,
        ),
        (
            13,
            1_767_225_660,
            CommitOrigin::ControlSocket,
            "new VIP \"é\", confirm in 5 min",
            true,
        ),
    ];
    for (generation, unix_time_s, origin, comment, confirm_pending) in records {
        history.push(CommitRecord {
            generation,
            unix_time_s,
            origin,
            comment: comment.try_into().unwrap(),
            confirm_pending,
            digest: if with_digest {
                0x0123_4567_89ab_cdef ^ generation
            } else {
                0
            },
        });
    }
    history
}

fn golden_history() -> History {
    golden_history_of(true)
}

/// Checks the golden vector `name` of format `version` (history `history`, header `meta`,
/// keyed with `key`): it decodes to the frozen text beside it with its header and history; an
/// older format decodes as migrated and is written again in the current one, the current format
/// is written again to exactly the frozen bytes. With `TANDEM_WRITE_GOLDEN` set, the current
/// format's files are written first from `config` (only when adding a new format version).
fn check_golden(
    name: &str,
    version: u16,
    config: Option<&Config>,
    history: &History,
    key: Option<&MacKey>,
    meta: BlobMeta,
) {
    let path = format!("{}/{name}", golden_dir());
    let current = version == blob::FORMAT_VERSION;
    if let (true, Some(config), Some(_)) =
        (current, config, std::env::var_os("TANDEM_WRITE_GOLDEN"))
    {
        let bytes = blob::encode_with_history(config, history, meta, key).unwrap();
        std::fs::write(&path, bytes).unwrap();
        let text = tandem_config::text::to_toml(config).unwrap();
        std::fs::write(format!("{path}.toml"), text).unwrap();
    }
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let policy = key.map_or(MacPolicy::Unkeyed, MacPolicy::Require);
    // The expected model is the frozen text next to the blob, not today's importer.
    let text = std::fs::read_to_string(format!("{path}.toml")).unwrap();
    let expected = tandem_config::text::from_toml(&text).unwrap();
    let decoded = blob::decode(&bytes, policy, None).unwrap();
    assert_eq!(decoded.header.format_version, version, "{name}");
    assert_eq!(decoded.header.generation, meta.generation, "{name}");
    assert_eq!(decoded.header.pair_id, meta.pair_id, "{name}");
    assert_eq!(decoded.config, expected, "{name}");
    if let Some(config) = config {
        assert_eq!(decoded.config, *config, "{name}");
    }
    assert_eq!(decoded.history, *history, "{name}");
    if current {
        assert_eq!(decoded.migrated_from, None, "{name}");
        assert_eq!(
            blob::encode_with_history(&expected, history, meta, key).unwrap(),
            bytes,
            "{name} encoding changed"
        );
    } else {
        assert_eq!(decoded.migrated_from, Some(version), "{name}");
        let again = blob::encode_with_history(&decoded.config, history, meta, key).unwrap();
        let redecoded = blob::decode(&again, policy, None).unwrap();
        assert_eq!(redecoded.header.format_version, blob::FORMAT_VERSION);
        assert_eq!(redecoded.config, expected, "{name}");
        assert_eq!(redecoded.migrated_from, None);
    }
}

/// Golden vectors freeze format version 2 (model, then commit history), written by earlier
/// firmware: they decode forever, migrated to today's model (`pair: None`, no uplink probes),
/// and re-encode as format 3. They are never regenerated.
#[test]
fn golden_vectors_of_format_2_decode() {
    let key = golden_key();
    let cases: [(&str, History, Option<&MacKey>, BlobMeta); 3] = [
        (
            "v2_empty.blob",
            History::default(),
            None,
            BlobMeta::default(),
        ),
        (
            "v2_director1_history.blob",
            golden_history_of(false),
            None,
            BlobMeta {
                generation: 12,
                parent_generation: 11,
                pair_id: 0,
            },
        ),
        (
            "v2_director1_history_keyed.blob",
            golden_history_of(false),
            Some(&key),
            BlobMeta {
                generation: 13,
                parent_generation: 12,
                pair_id: 0x1234_5678_9abc_def0,
            },
        ),
    ];
    for (name, history, key, meta) in cases {
        check_golden(name, 2, None, &history, key, meta);
        let text = std::fs::read_to_string(format!("{}/{name}.toml", golden_dir())).unwrap();
        assert_eq!(tandem_config::text::from_toml(&text).unwrap().pair, None);
    }
}

/// A pair config: director1 as the shared part, each box's hostname, management address,
/// interface addresses and VRRP settings in its half, and uplink probes on the peer link.
fn director_pair() -> Config {
    let mut config = director1();
    config.system.hostname = "director".try_into().unwrap();
    let shared = r#"
        [peer_link]
        interface = "eth1"
        pair_id = "123456789abcdef0"
        uplink_probes = ["10.0.0.254", "2001:db8::fe"]

        [pair.a]
        hostname = "director1"
        management_address = "192.168.100.11/24"
        [[pair.a.interfaces]]
        name = "eth0"
        addresses = ["10.0.0.2/24", "2001:db8::2/64"]
        [[pair.a.vrrp]]
        name = "web_vip"
        priority = 150
        unicast_source = "10.0.0.2"
        unicast_peers = ["10.0.0.3"]
        initial_state = "master"

        [pair.b]
        hostname = "director2"
        management_address = "192.168.100.12/24"
        [[pair.b.interfaces]]
        name = "eth0"
        addresses = ["10.0.0.3/24", "2001:db8::3/64"]
        [[pair.b.vrrp]]
        name = "web_vip"
        priority = 100
        [[pair.b.vrrp]]
        name = "mail_vip"
        initial_state = "backup"
    "#;
    let extra = tandem_config::text::from_toml(shared).unwrap();
    config.peer_link = extra.peer_link;
    config.pair = extra.pair;
    config
}

/// Golden vectors freeze format version 3 (model with pair halves and uplink probes, then commit
/// history). Never regenerated: format 4 is written since, and these bytes are what boxes that
/// ran format 3 firmware hold on their disks.
#[test]
fn golden_vectors_of_format_3_decode() {
    let key = golden_key();
    let cases: [(&str, Config, History, Option<&MacKey>, BlobMeta); 4] = [
        (
            "v3_empty.blob",
            Config::default(),
            History::default(),
            None,
            BlobMeta::default(),
        ),
        (
            "v3_director1_history.blob",
            director1(),
            golden_history(),
            None,
            BlobMeta {
                generation: 12,
                parent_generation: 11,
                pair_id: 0,
            },
        ),
        (
            "v3_director_pair_history.blob",
            director_pair(),
            golden_history(),
            None,
            BlobMeta {
                generation: 14,
                parent_generation: 13,
                pair_id: 0x1234_5678_9abc_def0,
            },
        ),
        (
            "v3_director_pair_history_keyed.blob",
            director_pair(),
            golden_history(),
            Some(&key),
            BlobMeta {
                generation: 15,
                parent_generation: 14,
                pair_id: 0x1234_5678_9abc_def0,
            },
        ),
    ];
    for (name, config, history, key, meta) in cases {
        check_golden(name, 3, Some(&config), &history, key, meta);
    }
}

/// A pair config whose public side is an 802.3ad bond of two ports with every bond option
/// format 4 appended away from its default, beside an active-backup bond at the defaults.
fn director_bonded() -> Config {
    let mut config = director_pair();
    let bonds = r#"
        [[bonds]]
        name = "bond0"
        mode = "802.3ad"
        slaves = ["eth0", "eth2"]
        lacp_rate = "fast"
        xmit_hash_policy = "layer3+4"
        min_links = 1
        ad_select = "count"
        mtu = 9000

        [[bonds]]
        name = "bond1"
        slaves = ["eth3", "eth4"]
        primary = "eth3"
        primary_reselect = "failure"
        fail_over_mac = "active"
        monitor = { arp = { interval_ms = 200, targets = ["10.0.0.254"], validate = "all" } }
    "#;
    config.bonds = tandem_config::text::from_toml(bonds).unwrap().bonds;
    config
}

/// Golden vectors freeze format version 4 (format 3 plus the bond options primary_reselect,
/// fail_over_mac, ad_select and mtu). Never regenerated: format 5 is written since, and these
/// bytes are what boxes that ran format 4 firmware hold on their disks.
#[test]
fn golden_vectors_of_format_4_decode() {
    let key = golden_key();
    let cases: [(&str, Config, History, Option<&MacKey>, BlobMeta); 3] = [
        (
            "v4_empty.blob",
            Config::default(),
            History::default(),
            None,
            BlobMeta::default(),
        ),
        (
            "v4_director_bonded_history.blob",
            director_bonded(),
            golden_history(),
            None,
            BlobMeta {
                generation: 16,
                parent_generation: 15,
                pair_id: 0x1234_5678_9abc_def0,
            },
        ),
        (
            "v4_director_bonded_history_keyed.blob",
            director_bonded(),
            golden_history(),
            Some(&key),
            BlobMeta {
                generation: 17,
                parent_generation: 16,
                pair_id: 0x1234_5678_9abc_def0,
            },
        ),
    ];
    for (name, config, history, key, meta) in cases {
        check_golden(name, 4, Some(&config), &history, key, meta);
    }
}

/// The bonded pair config with format 5's management plane (two syslog servers, two time
/// servers), a VRRP instance on a macvlan with the virtual MAC, and format 5's checks: an
/// HTTPS check of two URLs with status ranges verified against a trust set, a ping, a UDP and
/// a DNS check.
fn director_managed() -> Config {
    let mut config = director_bonded();
    let extra = r#"
        [management]
        interface = "eth5"
        address = "192.168.100.10/24"
        metrics = "192.168.100.10:9100"
        syslog = [
            { address = "192.168.100.5:514" },
            { address = "[2001:db8::5]:6514", transport = "tcp", facility = "local4" },
        ]
        time_servers = ["192.168.100.1", "2001:db8::123"]

        [[vrrp]]
        name = "lan_vip"
        vrid = 61
        interface = "eth3"
        use_vmac = true
        vmac_interface = "vrrp.lan"
        vmac_xmit_base = true
        vips = [{ address = "10.0.3.100", prefix = 24 }]

        [[tls_trust]]
        name = "internal"
        pem = """
-----BEGIN CERTIFICATE-----
MIIBszCCAVmgAwIBAgIUYm9ndXMtYnV0LXdlbGwtZm9ybWVkMAoGCCqGSM49BAMC
-----END CERTIFICATE-----
"""

        [[virtual_services]]
        name = "api"
        address = "10.0.0.50"
        port = 443
        forwarding = "dr"
        [virtual_services.check.kind.http]
        path = "/healthz"
        status = "200-299 401 503"
        tls = true
        tls_ca = "internal"
        virtual_host = "api.example"
        [[virtual_services.check.kind.http.more_urls]]
        path = "/readyz"
        status = 200
        body = { md5 = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15] }
        [[virtual_services.real_servers]]
        address = "10.0.0.51"
        check = { kind = "ping" }
        [[virtual_services.real_servers]]
        address = "10.0.0.52"
        check = { kind = { udp = { payload = "0a0b", require_reply = true, expect = "0c" } } }
        [[virtual_services.real_servers]]
        address = "10.0.0.53"
        check = { kind = { dns = { name = "example.org", record_type = "AAAA" } } }
    "#;
    let extra = tandem_config::text::from_toml(extra).unwrap();
    config.management = extra.management;
    config.tls_trust = extra.tls_trust;
    for instance in extra.vrrp.iter() {
        config.vrrp.push(instance.clone()).unwrap();
    }
    for service in extra.virtual_services.iter() {
        config.virtual_services.push(service.clone()).unwrap();
    }
    config
}

/// Golden vectors freeze format version 5 (format 4 plus `management.syslog`,
/// `management.time_servers`, the VRRP instance's `use_vmac` and `vmac_interface`, the trust
/// sets, and the check kinds: HTTP status ranges, `more_urls`, `tls_ca`, ping, UDP, DNS).
/// Regenerate them only when adding a new format version (`TANDEM_WRITE_GOLDEN=1` writes the
/// current format's files), never to change v5.
#[test]
fn golden_vectors_of_format_5_decode() {
    let key = golden_key();
    let cases: [(&str, Config, History, Option<&MacKey>, BlobMeta); 3] = [
        (
            "v5_empty.blob",
            Config::default(),
            History::default(),
            None,
            BlobMeta::default(),
        ),
        (
            "v5_director_managed_history.blob",
            director_managed(),
            golden_history(),
            None,
            BlobMeta {
                generation: 18,
                parent_generation: 17,
                pair_id: 0x1234_5678_9abc_def0,
            },
        ),
        (
            "v5_director_managed_history_keyed.blob",
            director_managed(),
            golden_history(),
            Some(&key),
            BlobMeta {
                generation: 19,
                parent_generation: 18,
                pair_id: 0x1234_5678_9abc_def0,
            },
        ),
    ];
    for (name, config, history, key, meta) in cases {
        check_golden(name, 5, Some(&config), &history, key, meta);
    }
}

/// The managed pair config with format 6's checks: a service whose real servers without a
/// check of their own run an HTTP and a TCP check, a real server with three checks of its own,
/// and a VRRP instance tracking a TCP connect (weight -30), an HTTP GET (weight 0: FAULT) and a
/// ping (weight +10, rise/fall as the check's timing).
fn director_checked() -> Config {
    let mut config = director_managed();
    let extra = r#"
        [[vrrp]]
        name = "db_vip"
        vrid = 62
        interface = "eth3"
        vips = [{ address = "10.0.3.101", prefix = 24 }]
        [[vrrp.track_checks]]
        name = "chk_db"
        address = "127.0.0.1"
        port = 5432
        weight = -30
        check = { kind = "tcp", timing = { interval_ms = 2000, timeout_ms = 1000, retries = 2 } }
        [[vrrp.track_checks]]
        name = "chk_api"
        address = "10.0.3.7"
        port = 8080
        weight = 0
        [vrrp.track_checks.check.kind.http]
        path = "/health"
        status = 200
        [[vrrp.track_checks]]
        name = "chk_gw"
        address = "10.0.3.1"
        weight = 10
        check = { kind = "ping" }

        [[virtual_services]]
        name = "shop"
        address = "10.0.0.60"
        port = 80
        check = { kind = { http = { path = "/" } } }
        more_checks = [{ kind = "tcp", connect_port = 5432 }]
        [[virtual_services.real_servers]]
        address = "10.0.0.61"
        [[virtual_services.real_servers]]
        address = "10.0.0.62"
        check = { kind = "tcp" }
        more_checks = [
            { kind = "ping" },
            { kind = { http = { path = "/ready", status = "200-204" } } },
            { kind = "tcp", connect_port = 9000, connect_address = "10.0.1.62" },
        ]
    "#;
    let extra = tandem_config::text::from_toml(extra).unwrap();
    for instance in extra.vrrp.iter() {
        config.vrrp.push(instance.clone()).unwrap();
    }
    for service in extra.virtual_services.iter() {
        config.virtual_services.push(service.clone()).unwrap();
    }
    config
}

/// Golden vectors freeze format version 6 (format 5 plus `more_checks` of real servers and
/// services, and `track_checks` of VRRP instances). Regenerate them only when adding a new
/// format version (`TANDEM_WRITE_GOLDEN=1` writes the current format's files), never to change
/// v6.
#[test]
fn golden_vectors_of_format_6_decode() {
    let key = golden_key();
    let cases: [(&str, Config, History, Option<&MacKey>, BlobMeta); 3] = [
        (
            "v6_empty.blob",
            Config::default(),
            History::default(),
            None,
            BlobMeta::default(),
        ),
        (
            "v6_director_checked_history.blob",
            director_checked(),
            golden_history(),
            None,
            BlobMeta {
                generation: 20,
                parent_generation: 19,
                pair_id: 0x1234_5678_9abc_def0,
            },
        ),
        (
            "v6_director_checked_history_keyed.blob",
            director_checked(),
            golden_history(),
            Some(&key),
            BlobMeta {
                generation: 21,
                parent_generation: 20,
                pair_id: 0x1234_5678_9abc_def0,
            },
        ),
    ];
    for (name, config, history, key, meta) in cases {
        check_golden(name, 6, Some(&config), &history, key, meta);
    }
    let config = director_checked();
    let shop = config
        .virtual_services
        .iter()
        .find(|s| s.name == "shop")
        .unwrap();
    let kinds = |server: &tandem_config::model::RealServer| -> Vec<String> {
        server
            .effective_checks(shop)
            .map(|check| format!("{:?}", check.kind).chars().take(4).collect())
            .collect()
    };
    assert_eq!(kinds(&shop.real_servers[0]), ["Http", "Tcp"]);
    assert_eq!(kinds(&shop.real_servers[1]), ["Tcp", "Ping", "Http", "Tcp"]);
    let db = config.vrrp_instance("db_vip").unwrap();
    assert_eq!(db.track_checks.len(), 3);
    assert_eq!(db.track_checks[0].check.timing.interval_ms, 2000);
}

/// A config giving interfaces every board port role `PortRole` had before `public2` (issue 13):
/// postcard writes an enum variant as its index, so a new role is appended and these bytes,
/// written by the encoder of that time, decode to the same roles forever. Never regenerated
/// (`TANDEM_WRITE_GOLDEN_ROLES=1` wrote them once, before `public2` existed).
#[test]
fn golden_vector_of_the_four_port_roles_decodes_after_roles_were_appended() {
    let path = format!("{}/v3_port_roles.blob", golden_dir());
    let text = r#"
        [[interfaces]]
        name = "mgmt"
        role = "mgmt"
        [[interfaces]]
        name = "public"
        role = "public"
        addresses = ["10.0.0.2/24"]
        [[interfaces]]
        name = "private"
        role = "private"
        [[interfaces]]
        name = "peer"
        role = "peer"
    "#;
    let config = tandem_config::text::from_toml(text).unwrap();
    let meta = BlobMeta {
        generation: 3,
        parent_generation: 2,
        pair_id: 0,
    };
    if std::env::var_os("TANDEM_WRITE_GOLDEN_ROLES").is_some() {
        let bytes = blob::encode_with_history(&config, &History::default(), meta, None).unwrap();
        std::fs::write(&path, bytes).unwrap();
    }
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let decoded = blob::decode(&bytes, MacPolicy::Unkeyed, None).unwrap();
    assert_eq!(decoded.header.format_version, 3);
    assert_eq!(decoded.config, config);
    let roles: Vec<&str> = decoded
        .config
        .interfaces
        .iter()
        .map(|interface| interface.role.map_or("-", |role| role.as_str()))
        .collect();
    assert_eq!(roles, ["mgmt", "public", "private", "peer"]);
    // The roles' indexes today (the blob's framing may change with a new format version; the
    // model's postcard bytes of a role may not).
    for (role, index) in [("mgmt", 0u8), ("public", 1), ("private", 2), ("peer", 3)] {
        let interface = decoded.config.interfaces.iter().find(|i| i.name == role);
        let role = interface.and_then(|i| i.role).unwrap();
        assert_eq!(postcard::to_allocvec(&role).unwrap(), [index]);
    }
}

#[test]
fn history_round_trips_and_is_bounded() {
    let mut history = golden_history();
    for generation in 14..60 {
        history.push(CommitRecord {
            generation,
            unix_time_s: generation * 60,
            origin: CommitOrigin::Cli,
            comment: "x".repeat(128).as_str().try_into().unwrap(),
            confirm_pending: false,
            digest: 0,
        });
    }
    assert_eq!(history.entries.len(), 32);
    let meta = BlobMeta {
        generation: 59,
        ..BlobMeta::default()
    };
    let bytes = blob::encode_with_history(&director1(), &history, meta, None).unwrap();
    let decoded = blob::decode(&bytes, MacPolicy::Unkeyed, None).unwrap();
    assert_eq!(decoded.history, history);
    // A 33rd record in the payload is refused, not truncated.
    let mut config_bytes = postcard::to_allocvec(&director1()).unwrap();
    let mut entries = history.entries.into_vec();
    entries.push(entries[0].clone());
    config_bytes.extend(postcard::to_allocvec(&entries).unwrap());
    let framed = frame(&config_bytes);
    assert!(matches!(
        blob::decode(&framed, MacPolicy::Unkeyed, None),
        Err(BlobError::Payload { .. })
    ));
    // A format 2 payload without its history, or with bytes after it, is refused.
    let config_only = postcard::to_allocvec(&director1()).unwrap();
    assert!(matches!(
        blob::decode(&frame(&config_only), MacPolicy::Unkeyed, None),
        Err(BlobError::Payload { .. })
    ));
    let mut trailing = postcard::to_allocvec(&director1()).unwrap();
    trailing.extend([0, 0]);
    assert!(matches!(
        blob::decode(&frame(&trailing), MacPolicy::Unkeyed, None),
        Err(BlobError::Payload { .. })
    ));
}

/// `payload` framed as an unkeyed format 3 blob with a correct header and CRC.
fn frame(payload: &[u8]) -> Vec<u8> {
    let mut framed = blob::encode(&Config::default(), BlobMeta::default(), None).unwrap();
    framed.truncate(blob::HEADER_BYTES);
    framed[32..36].copy_from_slice(&(payload.len() as u32).to_le_bytes());
    framed.extend_from_slice(payload);
    let crc = tandem_config::crc32::crc32(&framed);
    framed.extend_from_slice(&crc.to_le_bytes());
    framed.extend_from_slice(&[0; MAC_BYTES]);
    framed
}
