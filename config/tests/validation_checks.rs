//! Validation of format 6's checks: a real server's (or service's) `more_checks` and a VRRP
//! instance's `track_checks` obey every rule `check` has, each finding naming the list, the
//! entry and the fix.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use tandem_config::validate::{Issue, Severity};
use tandem_config::{text, validate};

/// One VRRP instance and one DR service over two real servers; `{vrrp}` and `{service}` and
/// `{server}` are where each test adds its lines.
const BASE: &str = r#"
[system]
hostname = "lb1"

[[interfaces]]
name = "eth0"
addresses = ["192.0.2.2/24"]

[[vrrp]]
name = "web"
vrid = 10
interface = "eth0"
priority = 150
{vrrp}

[[vrrp.vips]]
address = "192.0.2.10"
prefix = 24

[[virtual_services]]
address = "192.0.2.10"
port = 80
forwarding = "dr"
check = { kind = "tcp" }
{service}

[[virtual_services.real_servers]]
address = "192.0.2.21"
{server}

[[virtual_services.real_servers]]
address = "192.0.2.22"
"#;

fn issues(vrrp: &str, service: &str, server: &str) -> Vec<Issue> {
    let toml = BASE
        .replace("{vrrp}", vrrp)
        .replace("{service}", service)
        .replace("{server}", server);
    let config = text::from_toml(&toml).unwrap_or_else(|e| panic!("test config: {e}\n{toml}"));
    validate(&config)
}

fn only(found: &[Issue], severity: Severity, path: &str, words: &[&str]) {
    assert_eq!(found.len(), 1, "expected one finding, got {found:#?}");
    let issue = &found[0];
    assert_eq!(issue.severity, severity, "{issue}");
    assert!(issue.path.contains(path), "{issue} should name {path}");
    for word in words {
        assert!(issue.message.contains(word), "{issue} should say {word:?}");
    }
}

const SERVER: &str = "virtual_server \"192.0.2.10:80/tcp\" real_server 192.0.2.21:80";

#[test]
fn more_checks_beside_a_check_are_clean() {
    let service =
        r#"more_checks = [{ kind = { http = { path = "/ready", status = "200-204" } } }]"#;
    let server = r#"check = { kind = "tcp", connect_port = 8080 }
more_checks = [{ kind = "ping" }, { kind = { dns = { name = "example.org" } } }, { kind = "tcp", connect_port = 9000 }]"#;
    assert_eq!(issues("", service, server), vec![]);
}

#[test]
fn more_checks_obey_every_rule_of_check_and_name_their_index() {
    let server = |more: &str| {
        format!("check = {{ kind = \"tcp\" }}\nmore_checks = [{{ kind = \"ping\" }}, {more}]")
    };
    only(
        &issues(
            "",
            "",
            &server(r#"{ kind = { http = { path = "health" } } }"#),
        ),
        Severity::Error,
        &format!("{SERVER} more_checks[1]"),
        &["\"health\" must start with /"],
    );
    only(
        &issues(
            "",
            "",
            &server(r#"{ kind = "tcp", timing = { interval_ms = 0 } }"#),
        ),
        Severity::Error,
        &format!("{SERVER} more_checks[1]"),
        &["interval 0", "timing.interval_ms"],
    );
    only(
        &issues(
            "",
            "",
            &server(r#"{ kind = { http = { path = "/", tls = true, tls_ca = "corp" } } }"#),
        ),
        Severity::Error,
        &format!("{SERVER} more_checks[1]"),
        &["tls_ca \"corp\" names no [[tls_trust]] set"],
    );
    only(
        &issues("", "", &server(r#"{ kind = { dns = { name = "a..b" } } }"#)),
        Severity::Error,
        &format!("{SERVER} more_checks[1]"),
        &["empty label"],
    );
    // The service's own further checks, named under the service.
    only(
        &issues(
            "",
            r#"more_checks = [{ kind = { http = { path = "/", status = "299-200" } } }]"#,
            "",
        ),
        Severity::Error,
        "virtual_server \"192.0.2.10:80/tcp\" more_checks[0]",
        &["runs backwards"],
    );
}

#[test]
fn more_checks_need_a_check_beside_them() {
    only(
        &issues("", "", r#"more_checks = [{ kind = "ping" }]"#),
        Severity::Error,
        &format!("{SERVER} more_checks"),
        &["without check", "move the first of them to check"],
    );
    let toml = BASE
        .replace("{vrrp}", "")
        .replace(
            "check = { kind = \"tcp\" }\n{service}",
            "more_checks = [{ kind = \"tcp\" }]",
        )
        .replace("{server}", "");
    let found = validate(&text::from_toml(&toml).unwrap());
    only(
        &found,
        Severity::Error,
        "virtual_server \"192.0.2.10:80/tcp\" more_checks",
        &["without check"],
    );
}

const TRACKED: &str = r#"
[[vrrp.track_checks]]
name = "chk_db"
address = "192.0.2.30"
port = 5432
weight = -30
check = { kind = "tcp" }

[[vrrp.track_checks]]
name = "chk_gw"
address = "192.0.2.1"
weight = 0
check = { kind = "ping" }

[[vrrp.track_checks]]
name = "chk_api"
address = "127.0.0.1"
port = 8080
weight = 20
[vrrp.track_checks.check.kind.http]
path = "/health"
"#;

#[test]
fn tracked_checks_with_names_addresses_ports_and_weights_are_clean() {
    assert_eq!(issues(TRACKED, "", ""), vec![]);
}

#[test]
fn each_tracked_check_rule_names_the_instance_the_check_and_the_fix() {
    let broken = |from: &str, to: &str| {
        assert_eq!(TRACKED.matches(from).count(), 1, "{from:?} must occur once");
        issues(&TRACKED.replacen(from, to, 1), "", "")
    };
    only(
        &broken("name = \"chk_gw\"", "name = \"chk_db\""),
        Severity::Error,
        "vrrp \"web\" track_checks \"chk_db\"",
        &["defined twice", "rename one"],
    );
    only(
        &broken("name = \"chk_gw\"\n", ""),
        Severity::Error,
        "vrrp \"web\" track_checks[1]",
        &["has no name"],
    );
    only(
        &broken("weight = -30", "weight = -300"),
        Severity::Error,
        "vrrp \"web\" track_checks \"chk_db\"",
        &["weight -300 is outside -254 to 254"],
    );
    only(
        &broken("address = \"192.0.2.30\"", "address = \"0.0.0.0\""),
        Severity::Error,
        "vrrp \"web\" track_checks \"chk_db\"",
        &["not a unicast address", "set address"],
    );
    only(
        &broken("port = 5432\n", ""),
        Severity::Error,
        "vrrp \"web\" track_checks \"chk_db\"",
        &["has no port", "set port"],
    );
    // connect_port stands in for port, as on a real server's check.
    assert_eq!(
        broken("port = 5432\n", "")
            .iter()
            .filter(|issue| issue.message.contains("no port"))
            .count(),
        1
    );
    assert_eq!(
        broken(
            "port = 5432\nweight = -30\ncheck = { kind = \"tcp\" }",
            "weight = -30\ncheck = { kind = \"tcp\", connect_port = 5432 }"
        ),
        vec![]
    );
    only(
        &broken("path = \"/health\"", "path = \"health\""),
        Severity::Error,
        "vrrp \"web\" track_checks \"chk_api\"",
        &["must start with /"],
    );
    only(
        &broken(
            "check = { kind = \"tcp\" }",
            "check = { kind = \"tcp\", timing = { timeout_ms = 0 } }",
        ),
        Severity::Error,
        "vrrp \"web\" track_checks \"chk_db\"",
        &["timeout 0", "timing.timeout_ms"],
    );
}
