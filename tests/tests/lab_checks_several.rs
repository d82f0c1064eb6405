//! keepalived's several checkers on one real server, imported (blob format 6 `more_checks`) and
//! run on a qemu director (lab image): box-a directs a NAT service to rs1, which is checked by
//! an HTTP_GET of its lab-httpd control port (8081, which `/stop` leaves open) and a TCP_CHECK of
//! the service port 80. Both pass: rs1 enters the table. rs1 closes its service ports: the TCP
//! check fails while the HTTP one still passes, rs1 leaves the table and the director's log and
//! status name the TCP check as the reason. rs1 serves again: every check passes, rs1 is back.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::time::Duration;

use tandem_config::model::CheckKind;
use tandem_lab::servers::{boot_nat_director_with_rs1, director_with_keepalived, rs1_control};
use tandem_lab::Lab;

const BOOT: Duration = Duration::from_secs(240);
/// Checks every second with a 1 s timeout: TCG on a loaded machine stretches that, so allow
/// generously.
const CHECK_BOUND: Duration = Duration::from_secs(60);

/// keepalived.conf for box-a: TCP 80 to rs1 with two checkers; `alpha` starts rs1 down until
/// the checks pass, so the log shows the first pass.
const KEEPALIVED_CONF: &str = r#"
virtual_server 192.0.2.10 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    alpha

    real_server 198.51.100.11 80 {
        weight 1
        HTTP_GET {
            url {
                path /state
            }
            connect_port 8081
            connect_timeout 1
            retry 0
            delay_before_retry 1
        }
        TCP_CHECK {
            connect_timeout 1
            retry 0
            delay_before_retry 1
        }
    }
}
"#;

/// The director's config: the lab's NAT director with the imported service.
fn director() -> String {
    let text = director_with_keepalived(KEEPALIVED_CONF).unwrap();
    // One real server: its checks are the service's (hoisted), an HTTP and a TCP check.
    let config = tandem_config::text::from_toml(&text).unwrap();
    let service = &config.virtual_services[0];
    let kinds: Vec<&CheckKind> = service.real_servers[0]
        .effective_checks(service)
        .map(|c| &c.kind)
        .collect();
    assert!(
        matches!(kinds.as_slice(), [CheckKind::Http { .. }, CheckKind::Tcp]),
        "{kinds:?}"
    );
    text
}

const CHECK: &str = "198.51.100.11:80: check http GET /state + tcp";
const ADD: &str = "lvs: add 198.51.100.11:80 weight 1 to tcp 192.0.2.10:80";
const REMOVE: &str = "lvs: remove 198.51.100.11:80 from tcp 192.0.2.10:80";

#[test]
fn a_real_server_leaves_the_table_when_one_of_its_two_checks_fails() {
    let mut lab = Lab::new().expect("lab");
    boot_nat_director_with_rs1(&mut lab, &director(), BOOT).expect("boxes boot");

    // Both checks pass: rs1 enters the service.
    let director = lab.box_named("box-a").unwrap();
    for line in [format!("{CHECK} passed: up"), ADD.to_owned()] {
        director.console.wait_for_any_time(&line, BOOT).unwrap();
    }

    // rs1 closes its service ports; its control port (the HTTP check's) stays open. The TCP
    // check fails and is named; rs1 leaves the table.
    let mark = director.console.mark();
    assert!(rs1_control(&lab, "stop").unwrap().contains("rs1 stopped"));
    let director = lab.box_named("box-a").unwrap();
    let down = format!("{CHECK} failed: down (tcp 198.51.100.11:80: connect failed");
    director
        .console
        .wait_for_since(mark, &down, CHECK_BOUND)
        .unwrap();
    director
        .console
        .wait_for_since(mark, REMOVE, CHECK_BOUND)
        .unwrap();
    let status = director
        .engine_status("lvs", Duration::from_secs(60))
        .unwrap();
    assert!(
        status
            .iter()
            .any(|l| l.contains("-> 198.51.100.11:80 (out) ")
                && l.contains("| http GET /state + tcp down")
                && l.contains("tcp 198.51.100.11:80: connect failed")),
        "{status:?}"
    );
    // The HTTP check alone would pass: its URL still answers (the attempt reached the TCP check
    // only because the HTTP one passed).
    assert!(rs1_control(&lab, "state").unwrap().contains("rs1 stopped"));

    // Serving again: every check passes, rs1 is back.
    let director = lab.box_named("box-a").unwrap();
    let mark = director.console.mark();
    assert!(rs1_control(&lab, "start").unwrap().contains("rs1 serving"));
    let director = lab.box_named("box-a").unwrap();
    for line in [format!("{CHECK} passed: up"), ADD.to_owned()] {
        director
            .console
            .wait_for_since(mark, &line, CHECK_BOUND)
            .unwrap();
    }
    // For the record: the director's check and table lines.
    for line in director.console.transcript().lines() {
        if line.contains(": check ") || line.contains("198.51.100.11:80 from") {
            eprintln!("box-a: {}", line.trim());
        }
    }
}
