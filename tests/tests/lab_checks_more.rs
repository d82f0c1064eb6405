//! keepalived's `PING_CHECK`, `UDP_CHECK` and `DNS_CHECK`, imported and run on a qemu director
//! (lab image): box-a directs three NAT services to rs1, whose lab-httpd answers UDP echo on 7
//! and DNS on 53 (`rs1.lab` A). The keepalived.conf is imported as an operator would; the
//! director's log shows each check see rs1 up; rs1 stops its service ports and the UDP and DNS
//! checks see it down (ICMP port unreachable) while the ping check keeps it up; rs1 ignores
//! echo requests and the ping check sees it down (no echo reply); all three see it up again
//! when it serves and answers again. On the appliance the ping check runs on a datagram ICMP
//! socket (the LVS engine widens `ping_group_range` to root's group, as keepalived does).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::time::Duration;

use tandem_lab::servers::{boot_nat_director_with_rs1, director_with_keepalived, rs1_control};
use tandem_lab::Lab;

const BOOT: Duration = Duration::from_secs(240);
/// Checks every second with a 1 s timeout: TCG on a loaded machine stretches that, so allow
/// generously.
const CHECK_BOUND: Duration = Duration::from_secs(60);

/// keepalived.conf for box-a: UDP 7 with a UDP_CHECK that wants its payload echoed, UDP 53 with
/// a DNS_CHECK of rs1.lab's A record, TCP 80 with a PING_CHECK. `alpha` starts rs1 down until
/// a check passes, so the log shows the first pass.
fn keepalived_conf() -> String {
    let service = |protocol: &str, port: u16, checker: &str| {
        format!(
            r#"
virtual_server 192.0.2.10 {port} {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol {protocol}
    alpha

    real_server 198.51.100.11 {port} {{
        weight 1
        {checker}
    }}
}}
"#
        )
    };
    let timing = "connect_timeout 1\n            retry 0\n            delay_before_retry 1";
    service(
        "UDP",
        7,
        &format!("UDP_CHECK {{\n            payload 74616e64656d\n            require_reply 74616e64656d\n            {timing}\n        }}"),
    ) + &service(
        "UDP",
        53,
        &format!("DNS_CHECK {{\n            type A\n            name rs1.lab\n            {timing}\n        }}"),
    ) + &service(
        "TCP",
        80,
        &format!("PING_CHECK {{\n            {timing}\n        }}"),
    )
}

const UDP: &str = "198.51.100.11:7: check udp (reply required)";
const DNS: &str = "198.51.100.11:53: check dns A rs1.lab";
const PING: &str = "198.51.100.11:80: check ping";

#[test]
fn imported_ping_udp_and_dns_checks_see_a_real_server_up_and_down() {
    let mut lab = Lab::new().expect("lab");
    boot_nat_director_with_rs1(
        &mut lab,
        &director_with_keepalived(&keepalived_conf()).unwrap(),
        BOOT,
    )
    .expect("boxes boot");
    let rs1 = lab.box_named("rs1").unwrap();
    for line in [
        "lab-httpd: serving on udp port 7",
        "lab-httpd: serving on udp port 53",
    ] {
        rs1.console.wait_for_any_time(line, BOOT).unwrap();
    }

    // Up: the echo matches, rs1.lab has its A record, rs1 answers echo requests; rs1 enters
    // every service.
    let director = lab.box_named("box-a").unwrap();
    for line in [
        format!("{UDP} passed: up"),
        format!("{DNS} passed: up"),
        format!("{PING} passed: up"),
        "lvs: add 198.51.100.11:7 weight 1 to udp 192.0.2.10:7".to_owned(),
        "lvs: add 198.51.100.11:53 weight 1 to udp 192.0.2.10:53".to_owned(),
        "lvs: add 198.51.100.11:80 weight 1 to tcp 192.0.2.10:80".to_owned(),
    ] {
        director.console.wait_for_any_time(&line, BOOT).unwrap();
    }

    // rs1 closes its service ports: the UDP and DNS checks see port unreachable; the box still
    // answers pings.
    let mark = director.console.mark();
    assert!(rs1_control(&lab, "stop").unwrap().contains("rs1 stopped"));
    let director = lab.box_named("box-a").unwrap();
    let unreachable = "failed: down (port unreachable (ICMP): nothing listens on the port)";
    for check in [UDP, DNS] {
        director
            .console
            .wait_for_since(mark, &format!("{check} {unreachable}"), CHECK_BOUND)
            .unwrap();
    }
    let status = director
        .engine_status("lvs", Duration::from_secs(60))
        .unwrap();
    for (server, health) in [
        ("-> 198.51.100.11:7 (out) ", "| udp (reply required) down"),
        ("-> 198.51.100.11:53 (out) ", "| dns A rs1.lab down"),
        ("-> 198.51.100.11:80 Masq 1 ", "| ping up"),
    ] {
        assert!(
            status
                .iter()
                .any(|l| l.contains(server) && l.contains(health)),
            "{server:?} {health:?} in {status:?}"
        );
    }

    // rs1 ignores echo requests: the ping check sees no reply.
    let mark = director.console.mark();
    assert!(rs1_control(&lab, "icmp/off")
        .unwrap()
        .contains("rs1 stopped"));
    let director = lab.box_named("box-a").unwrap();
    director
        .console
        .wait_for_since(
            mark,
            &format!("{PING} failed: down (no ICMP echo reply within the timeout)"),
            CHECK_BOUND,
        )
        .unwrap();

    // Serving and answering again: all three up.
    let mark = director.console.mark();
    rs1_control(&lab, "icmp/on").unwrap();
    assert!(rs1_control(&lab, "start").unwrap().contains("rs1 serving"));
    let director = lab.box_named("box-a").unwrap();
    for check in [UDP, DNS, PING] {
        director
            .console
            .wait_for_since(mark, &format!("{check} passed: up"), CHECK_BOUND)
            .unwrap();
    }
    // For the record: the director's check lines.
    for line in director.console.transcript().lines() {
        if line.contains(": check ") {
            eprintln!("box-a: {}", line.trim());
        }
    }
}
