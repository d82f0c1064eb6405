//! Writing an older config format (an upgrade in progress): the frozen golden vectors of every
//! format this firmware writes are re-encoded byte for byte, a format 5 blob decodes to the
//! config it was written from, and a config the older format cannot hold is refused naming the
//! field, never written without it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tandem_config::blob::{self, BlobError, BlobMeta, MacKey, MacPolicy};
use tandem_config::model::{Check, TrackedCheck};
use tandem_config::Config;

fn golden_dir() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden")
}

fn golden_key() -> MacKey {
    MacKey(*b"tandem-golden-vector-key-32bytes")
}

/// Every golden vector (`vN_*.blob`) with its format N.
fn golden_vectors() -> Vec<(String, u16, Vec<u8>)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(golden_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(rest) = name.strip_prefix('v') else {
            continue;
        };
        if !name.ends_with(".blob") {
            continue;
        }
        let format: u16 = rest.split('_').next().unwrap().parse().unwrap();
        let bytes = std::fs::read(format!("{}/{name}", golden_dir())).unwrap();
        found.push((name, format, bytes));
    }
    found.sort();
    found
}

fn decode_golden(bytes: &[u8]) -> (blob::DecodedBlob, Option<MacKey>) {
    let header = blob::check_integrity(bytes).unwrap();
    let key = header.is_keyed().then(golden_key);
    let policy = key.as_ref().map_or(MacPolicy::Unkeyed, MacPolicy::Require);
    (blob::decode(bytes, policy, None).unwrap(), key)
}

fn meta_of(decoded: &blob::DecodedBlob) -> BlobMeta {
    BlobMeta {
        generation: decoded.header.generation,
        parent_generation: decoded.header.parent_generation,
        pair_id: decoded.header.pair_id,
    }
}

/// The oracle: each frozen vector of a format this firmware writes, decoded and encoded again
/// as that format, is exactly the frozen bytes (keyed ones under the golden key).
#[test]
fn every_writable_golden_vector_is_written_again_byte_for_byte_in_its_own_format() {
    let mut checked = Vec::new();
    for (name, format, bytes) in golden_vectors() {
        if format < blob::OLDEST_WRITTEN_FORMAT {
            continue;
        }
        let (decoded, key) = decode_golden(&bytes);
        assert_eq!(decoded.header.format_version, format, "{name}");
        let again = blob::encode_with_history_as(
            &decoded.config,
            &decoded.history,
            meta_of(&decoded),
            key.as_ref(),
            format,
        )
        .unwrap();
        assert_eq!(again, bytes, "{name}: format {format} written differently");
        checked.push(name);
    }
    // Formats 4, 5 and 6, unkeyed and keyed: three vectors each.
    assert_eq!(checked.len(), 9, "{checked:?}");
    for format in ["v4_", "v5_"] {
        assert!(checked
            .iter()
            .any(|n| n.starts_with(format) && n.contains("keyed")));
    }
}

/// Formats this firmware reads but does not write are refused by name, not written as 5.
#[test]
fn a_format_older_than_this_firmware_writes_is_refused() {
    for (name, format, bytes) in golden_vectors() {
        if format >= blob::OLDEST_WRITTEN_FORMAT {
            continue;
        }
        let (decoded, key) = decode_golden(&bytes);
        let error =
            blob::encode_as(&decoded.config, meta_of(&decoded), key.as_ref(), format).unwrap_err();
        assert_eq!(
            error,
            BlobError::FormatNotWritable {
                format,
                oldest: blob::OLDEST_WRITTEN_FORMAT,
                newest: blob::FORMAT_VERSION,
            },
            "{name}"
        );
    }
    assert!(matches!(
        blob::check_fits(&Config::default(), blob::FORMAT_VERSION + 1),
        Err(BlobError::FormatNotWritable { .. })
    ));
}

fn v5_config() -> Config {
    let path = format!("{}/v5_director_managed_history.blob.toml", golden_dir());
    tandem_config::text::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_config_written_as_format_5_decodes_to_itself_migrated_from_5() {
    let config = v5_config();
    assert!(!config.virtual_services.is_empty() && !config.vrrp.is_empty());
    let meta = BlobMeta {
        generation: 12,
        parent_generation: 11,
        pair_id: 0x7a,
    };
    let key = golden_key();
    for key in [None, Some(&key)] {
        let bytes = blob::encode_as(&config, meta, key, 5).unwrap();
        let policy = key.map_or(MacPolicy::Unkeyed, MacPolicy::Require);
        let decoded = blob::decode(&bytes, policy, None).unwrap();
        assert_eq!(decoded.header.format_version, 5);
        assert_eq!(decoded.header.generation, 12);
        assert_eq!(decoded.migrated_from, Some(5));
        assert_eq!(decoded.config, config);
        // Format 5 is shorter by the empty lists it leaves out (one byte each).
        let lists = config.vrrp.len() + config.virtual_services.len() + config.real_server_count();
        let newest = blob::encode(&config, meta, key).unwrap();
        assert_eq!(newest.len() - bytes.len(), lists);
    }
}

fn tracked() -> TrackedCheck {
    TrackedCheck {
        name: "gw".try_into().unwrap(),
        address: "10.0.0.1".parse().unwrap(),
        port: Some(80),
        check: Check::default(),
        weight: -20,
    }
}

/// Each format 6 field refused by its path, in the order the encoder meets them; format 6
/// itself takes all of them.
#[test]
fn each_format_6_field_is_refused_in_format_5_by_its_path() {
    let base = v5_config();
    let instance = base.vrrp[0].name.to_string();
    // The first named service with a real server (unnamed ones are named by position).
    let at = base
        .virtual_services
        .iter()
        .position(|s| !s.name.is_empty() && !s.real_servers.is_empty())
        .unwrap();
    let service = base.virtual_services[at].name.to_string();
    let server = &base.virtual_services[at].real_servers[0];
    let server_segment = if server.name.is_empty() {
        server.address.to_string()
    } else {
        server.name.to_string()
    };

    let mut with_track = base.clone();
    with_track.vrrp.as_mut_slice()[0]
        .track_checks
        .push(tracked())
        .unwrap();
    let mut with_service_checks = base.clone();
    with_service_checks.virtual_services.as_mut_slice()[at]
        .more_checks
        .push(Check::default())
        .unwrap();
    let mut with_server_checks = base.clone();
    with_server_checks.virtual_services.as_mut_slice()[at]
        .real_servers
        .as_mut_slice()[0]
        .more_checks
        .push(Check::default())
        .unwrap();
    let cases = [
        (&with_track, format!("vrrp.{instance}.track_checks")),
        (
            &with_service_checks,
            format!("virtual_services.{service}.more_checks"),
        ),
        (
            &with_server_checks,
            format!("virtual_services.{service}.real_servers.{server_segment}.more_checks"),
        ),
    ];
    for (config, path) in cases {
        let error = blob::encode_as(config, BlobMeta::default(), None, 5).unwrap_err();
        assert_eq!(
            error,
            BlobError::DoesNotFit {
                format: 5,
                path: path.clone(),
                needs: 6
            }
        );
        let message = error.to_string();
        assert!(message.contains(&format!("delete {path}")), "{message}");
        assert!(
            message.contains("both boxes must bless firmware that reads format 6"),
            "{message}"
        );
        assert_eq!(blob::check_fits(config, 5), Err(error));
        // The path is one `delete` takes, and without the field the config fits.
        let edited = tandem_config::edit::delete(config, &path).unwrap();
        assert_eq!(edited, base);
        assert!(blob::check_fits(&edited, 5).is_ok());
        // Format 6 holds it.
        let bytes = blob::encode_as(config, BlobMeta::default(), None, 6).unwrap();
        let decoded = blob::decode(&bytes, MacPolicy::Unkeyed, None).unwrap();
        assert_eq!(decoded.config, *config);
    }
    // The first field met is named: the VRRP instances come before the services.
    let mut both = with_server_checks.clone();
    both.vrrp = with_track.vrrp.clone();
    assert!(matches!(
        blob::check_fits(&both, 5),
        Err(BlobError::DoesNotFit { path, .. }) if path.starts_with("vrrp.")
    ));
}

/// A real server without a name is named by its address, or by its position when another
/// server of the service has the same address; names with dots are quoted.
#[test]
fn the_path_of_a_misfit_can_be_deleted() {
    let text = r#"
        [[virtual_services]]
        name = "web.shop"
        address = "10.0.0.60"
        port = 80
        [[virtual_services.real_servers]]
        address = "10.0.0.61"
        port = 80
        [[virtual_services.real_servers]]
        address = "10.0.0.61"
        port = 8080
    "#;
    let mut config = tandem_config::text::from_toml(text).unwrap();
    config.virtual_services.as_mut_slice()[0]
        .real_servers
        .as_mut_slice()[1]
        .more_checks
        .push(Check::default())
        .unwrap();
    let Err(BlobError::DoesNotFit { path, .. }) = blob::check_fits(&config, 5) else {
        panic!("format 5 took more_checks");
    };
    assert_eq!(
        path,
        "virtual_services.\"web.shop\".real_servers.#1.more_checks"
    );
    let edited = tandem_config::edit::delete(&config, &path).unwrap();
    assert!(blob::check_fits(&edited, 5).is_ok());
    assert!(edited.virtual_services[0].real_servers[1]
        .more_checks
        .is_empty());
}

fn v4_config() -> Config {
    let path = format!("{}/v4_director_bonded_history.blob.toml", golden_dir());
    tandem_config::text::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_config_written_as_format_4_decodes_to_itself_migrated_from_4() {
    let config = v4_config();
    let bytes = blob::encode_as(&config, BlobMeta::default(), None, 4).unwrap();
    let decoded = blob::decode(&bytes, MacPolicy::Unkeyed, None).unwrap();
    assert_eq!(decoded.header.format_version, 4);
    assert_eq!(decoded.migrated_from, Some(4));
    assert_eq!(decoded.config, config);
}

/// Each format 5 field refused in format 4 by its path; format 5 holds it.
#[test]
fn each_format_5_field_is_refused_in_format_4_by_its_path() {
    use tandem_config::model::{CheckKind, HttpUrl, StatusCodes, SyslogTarget, TlsTrust};
    let base = v4_config();
    let segment = |name: &str, index: usize| {
        if name.is_empty() {
            format!("#{index}")
        } else {
            name.to_owned()
        }
    };
    let http = base
        .virtual_services
        .iter()
        .position(|s| {
            matches!(
                s.check.as_deref().map(|c| &c.kind),
                Some(CheckKind::Http { .. })
            )
        })
        .unwrap();
    let service = format!(
        "virtual_services.{}",
        segment(&base.virtual_services[http].name, http)
    );
    let server = &base.virtual_services[http].real_servers[0];
    let server_path = format!(
        "{service}.real_servers.{}",
        if server.name.is_empty() {
            server.address.to_string()
        } else {
            server.name.to_string()
        }
    );
    let instance = base.vrrp[0].name.to_string();
    type Edit = Box<dyn Fn(&mut Config)>;
    fn http_kind(config: &mut Config, http: usize) -> &mut CheckKind {
        &mut config.virtual_services.as_mut_slice()[http]
            .check
            .as_mut()
            .unwrap()
            .kind
    }
    let cases: Vec<(String, Edit)> = vec![
        (
            "management.syslog".into(),
            Box::new(|c: &mut Config| {
                c.management
                    .syslog
                    .push(SyslogTarget {
                        address: "192.0.2.5:514".parse().unwrap(),
                        transport: Default::default(),
                        facility: Default::default(),
                    })
                    .unwrap();
            }),
        ),
        (
            "management.time_servers".into(),
            Box::new(|c: &mut Config| {
                c.management
                    .time_servers
                    .push("192.0.2.123".parse().unwrap())
                    .unwrap();
            }),
        ),
        (
            format!("vrrp.{instance}.use_vmac"),
            Box::new(|c: &mut Config| c.vrrp.as_mut_slice()[0].use_vmac = true),
        ),
        (
            format!("vrrp.{instance}.vmac_interface"),
            Box::new(|c: &mut Config| {
                c.vrrp.as_mut_slice()[0].vmac_interface = Some("vrrp.10".try_into().unwrap());
            }),
        ),
        (
            format!("vrrp.{instance}.vmac_xmit_base"),
            Box::new(|c: &mut Config| c.vrrp.as_mut_slice()[0].vmac_xmit_base = true),
        ),
        (
            format!("{service}.check.kind.http.status"),
            Box::new(move |c: &mut Config| {
                if let CheckKind::Http { status, .. } = http_kind(c, http) {
                    *status = Some(StatusCodes::parse("200-299").unwrap());
                }
            }),
        ),
        (
            format!("{service}.check.kind.http.more_urls"),
            Box::new(move |c: &mut Config| {
                if let CheckKind::Http { more_urls, .. } = http_kind(c, http) {
                    more_urls
                        .push(HttpUrl {
                            path: "/more".try_into().unwrap(),
                            status: None,
                            body: None,
                            virtual_host: None,
                        })
                        .unwrap();
                }
            }),
        ),
        (
            format!("{service}.check.kind.http.tls_ca"),
            Box::new(move |c: &mut Config| {
                if let CheckKind::Http { tls_ca, .. } = http_kind(c, http) {
                    *tls_ca = Some("ca".try_into().unwrap());
                }
            }),
        ),
        (
            format!("{server_path}.check.kind"),
            Box::new(move |c: &mut Config| {
                c.virtual_services.as_mut_slice()[http]
                    .real_servers
                    .as_mut_slice()[0]
                    .check = Some(Box::new(Check {
                    kind: CheckKind::Ping,
                    ..Check::default()
                }));
            }),
        ),
        (
            "tls_trust".into(),
            Box::new(|c: &mut Config| {
                c.tls_trust
                    .push(TlsTrust {
                        name: "ca".try_into().unwrap(),
                        pem: String::from("-----BEGIN CERTIFICATE-----"),
                    })
                    .unwrap();
            }),
        ),
    ];
    for (path, edit) in cases {
        let mut config = base.clone();
        edit(&mut config);
        assert_ne!(config, base, "{path}: the edit changed nothing");
        let error = blob::encode_as(&config, BlobMeta::default(), None, 4).unwrap_err();
        assert_eq!(
            error,
            BlobError::DoesNotFit {
                format: 4,
                path: path.clone(),
                needs: 5
            }
        );
        let bytes = blob::encode_as(&config, BlobMeta::default(), None, 5).unwrap();
        let decoded = blob::decode(&bytes, MacPolicy::Unkeyed, None).unwrap();
        assert_eq!(decoded.config, config, "{path}");
    }
}
