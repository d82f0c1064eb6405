//! Live config on a large config and on hostile input: compare and preview of a 1000 x 10 config,
//! and `set` / `delete` never panicking, whatever the path and value.

// Test code: panics are the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use proptest::prelude::*;
use tandem_config::impact::{Disruption, Engine};
use tandem_config::{compare, delete, preview, set, text, Config};

fn sample() -> Config {
    text::from_toml(include_str!("data/live.toml")).unwrap()
}

#[test]
fn compare_and_preview_a_1000_x_10_config() {
    let running = common::generated(1000, 10);
    assert_eq!(running.real_server_count(), 10_000);
    assert!(compare(&running, &running).is_empty());
    assert!(preview(&running, &running).changes.is_empty());

    let candidate = set(
        &running,
        "virtual_services.#500.real_servers.#3.weight",
        "7",
    )
    .unwrap();
    let candidate = delete(&candidate, "virtual_services.#999").unwrap();
    let candidate = set(&candidate, "vrrp.vip.priority", "150").unwrap();
    let label = running.virtual_services[500].label();
    let server = &running.virtual_services[500].real_servers[3];
    let gone = running.virtual_services[999].label();

    let lines = compare(&running, &candidate);
    let header = format!(
        "[[virtual_services]] address = \"{}\", port = 80, protocol = \"tcp\"",
        running.virtual_services[500].address.unwrap()
    );
    let server_header = format!(
        "[[virtual_services.real_servers]] address = \"{}\", port = 8080",
        server.address
    );
    let at = lines
        .iter()
        .position(|l| *l == header)
        .expect("service header");
    assert_eq!(
        lines[at..at + 4],
        [
            header,
            server_header,
            "- weight = 100".into(),
            "+ weight = 7".into()
        ]
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| *l == "- [[virtual_services]]")
            .count(),
        1
    );
    assert!(lines.contains(&"+ priority = 150".to_string()), "{lines:?}");

    let changes: Vec<String> = preview(&running, &candidate)
        .changes
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        changes,
        [
            "vrrp: instance vip: priority 100 -> 150: hitless".to_string(),
            format!("lvs: service {gone} removed: disruptive: connections to it are dropped"),
            format!(
                "lvs: service {label}: real server {}:8080: weight 100 -> 7: hitless",
                server.address
            ),
        ]
    );
}

#[test]
fn preview_of_everything_changed_is_complete() {
    let running = common::generated(200, 10);
    let mut candidate = running.clone();
    for service in candidate.virtual_services.as_mut_slice() {
        for server in service.real_servers.as_mut_slice() {
            server.weight = 5;
        }
    }
    let preview = preview(&running, &candidate);
    assert_eq!(preview.changes.len(), 2000);
    assert!(preview.is_hitless());
    assert!(preview
        .changes
        .iter()
        .all(|c| c.engine == Engine::Lvs && c.disruption == Disruption::Hitless));
    assert_eq!(compare(&running, &candidate).len(), 200 * (1 + 10 * 3));
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("vrrp".to_string()),
        Just("web_vip".to_string()),
        Just("vips".to_string()),
        Just("virtual_services".to_string()),
        Just("http".to_string()),
        Just("real_servers".to_string()),
        Just("rs1".to_string()),
        Just("system".to_string()),
        Just("peer_link".to_string()),
        Just("bonds".to_string()),
        Just("monitor".to_string()),
        Just("priority".to_string()),
        Just("address".to_string()),
        Just("10".to_string()),
        Just("#0".to_string()),
        Just("#99999999999999999999".to_string()),
        Just("\"".to_string()),
        "[a-z_#0-9\".]{0,8}",
        any::<String>(),
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("none".to_string()),
        Just("150".to_string()),
        Just("-1".to_string()),
        Just("true".to_string()),
        Just("10.0.0.9".to_string()),
        Just("[1, 2]".to_string()),
        Just("{ address = \"10.0.0.9\" }".to_string()),
        Just("{ a = { b = [] } }".to_string()),
        Just("1979-05-27T07:32:00Z".to_string()),
        Just("nan".to_string()),
        Just("[".repeat(200)),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn edits_never_panic_and_results_fit_the_model(
        segments in proptest::collection::vec(segment(), 0..6),
        value in value(),
    ) {
        let config = sample();
        let path = segments.join(".");
        for result in [set(&config, &path, &value), delete(&config, &path)] {
            match result {
                Ok(edited) => {
                    // Whatever an edit makes is a model value: it survives the text form.
                    let shown = text::to_toml(&edited).unwrap();
                    prop_assert_eq!(&text::from_toml(&shown).unwrap(), &edited);
                    let _ = compare(&config, &edited);
                    let _ = preview(&config, &edited);
                }
                Err(error) => prop_assert!(!error.to_string().is_empty()),
            }
        }
    }
}
