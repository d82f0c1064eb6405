//! LVS director and real-server roles on real qemu boxes (lab image, `make lab-image`):
//! box-a directs a NAT service (wrr 1:3) and a persistent one to rs1 and rs2, which run the
//! lab-only HTTP responder; a client namespace on the public segment requests the VIPs.
//! Asserts the scheduler's proportions, draining of a stopped server within the check bound
//! while requests keep succeeding, re-entry after the re-entry time, persistence, the kernel
//! table as `lvs status` reads it back, and the real-server self-check. A third, firewall-mark
//! service balances ports 80 and 443 of one VIP by NAT to the same real servers listed without
//! a port (port 0: IPVS keeps each packet's destination port), as keepalived configs do.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::time::Duration;

use tandem_lab::servers::{nat_director, nat_real_server, rs1_control, wait_real_server_ready};
use tandem_lab::{BoxSpec, Lab, QemuBox, Segment};

const BOOT: Duration = Duration::from_secs(240);
/// Check interval 1 s, no retries, 1 s timeout: a stopped server is out within a few seconds
/// of guest time; TCG on a loaded machine stretches that, so allow generously.
const CHECK_BOUND: Duration = Duration::from_secs(60);

/// box-a: a NAT director (its VIPs 192.0.2.10 and .11 on the public port) with these services.
fn director() -> String {
    nat_director(
        "box-a",
        &["192.0.2.1", "192.0.2.10", "192.0.2.11", "192.0.2.12"],
    ) + DIRECTOR_SERVICES
}

const DIRECTOR_SERVICES: &str = r#"
[[virtual_services]]
name = "web"
address = "192.0.2.10"
port = 80
scheduler = "wrr"
forwarding = "nat"
on_failure = "remove"
start_down = true
reentry_s = 3
check = { kind = "tcp", timing = { interval_ms = 1000, timeout_ms = 1000, retries = 0, retry_delay_ms = 200 } }

[[virtual_services.real_servers]]
address = "198.51.100.11"
weight = 1

[[virtual_services.real_servers]]
address = "198.51.100.12"
weight = 3

[[virtual_services]]
name = "sticky"
address = "192.0.2.11"
port = 80
scheduler = "rr"
forwarding = "nat"
persistence = { timeout_s = 120 }

[[virtual_services.real_servers]]
address = "198.51.100.11"

[[virtual_services.real_servers]]
address = "198.51.100.12"

[[fwmark_rules]]
mark = 12
protocol = "tcp"
destination = "192.0.2.12"
port_first = 80
port_last = 80

[[fwmark_rules]]
mark = 12
protocol = "tcp"
destination = "192.0.2.12"
port_first = 443
port_last = 443

[[virtual_services]]
name = "ports"
fwmark = 12
scheduler = "rr"
forwarding = "nat"

[[virtual_services.real_servers]]
address = "198.51.100.11"

[[virtual_services.real_servers]]
address = "198.51.100.12"
"#;

/// `<engine> status` lines of a box (see `QemuBox::engine_status`).
fn engine_status(b: &QemuBox, engine: &str) -> Vec<String> {
    b.engine_status(engine, Duration::from_secs(60)).unwrap()
}

/// `n` requests to `url` from the client; returns (served by rs1, served by rs2, failures).
fn requests(lab: &Lab, url: &str, n: usize) -> (usize, usize, usize) {
    let client = &lab.clients[0];
    let (mut rs1, mut rs2, mut failed) = (0, 0, 0);
    for _ in 0..n {
        match client.exec("curl", &["-s", "--max-time", "10", url]) {
            Ok(body) if body.trim() == "served-by rs1" => rs1 += 1,
            Ok(body) if body.trim() == "served-by rs2" => rs2 += 1,
            _ => failed += 1,
        }
    }
    (rs1, rs2, failed)
}

#[test]
fn nat_director_balances_drains_readmits_and_persists() {
    let mut lab = Lab::new().expect("lab");
    let specs = [
        BoxSpec::new("box-a", &[Segment::Public, Segment::Private]).with_config(&director()),
        nat_real_server("rs1", "198.51.100.11", "198.51.100.254"),
        nat_real_server("rs2", "198.51.100.12", "198.51.100.254"),
    ];
    lab.boot(&specs, BOOT).expect("boxes boot");
    {
        let client = lab.add_client("cl", Segment::Public).unwrap();
        client.add_address("192.0.2.100/24").unwrap();
        client
            .exec(
                "ip",
                &["route", "add", "198.51.100.0/24", "via", "192.0.2.1"],
            )
            .unwrap();
    }
    let director = lab.box_named("box-a").unwrap();
    director
        .console
        .wait_for_any_time(
            "lvs: table in sync: 3 services, 4 real servers, 7 ops",
            BOOT,
        )
        .unwrap();
    director
        .console
        .wait_for_any_time("NAT gateway 198.51.100.254/24 on private added", BOOT)
        .unwrap();
    for name in ["rs1", "rs2"] {
        let status = wait_real_server_ready(lab.box_named(name).unwrap(), BOOT).unwrap();
        assert!(
            status
                .iter()
                .any(|l| l.contains("nat_gateway 198.51.100.254")),
            "{status:?}"
        );
    }

    // The kernel table as read back over genetlink: wait until both web servers passed a check.
    let has = |s: &[String], needle: &str| s.iter().any(|l| l.contains(needle));
    let deadline = std::time::Instant::now() + CHECK_BOUND;
    let status = loop {
        let status = engine_status(lab.box_named("box-a").unwrap(), "lvs");
        // start_down: a web server is only in after a passed check, so a server the director
        // probed before it was up cannot flap out between this wait and the requests.
        let up = |line: &str| {
            status
                .iter()
                .any(|l| l.contains(line) && l.contains("| tcp up since "))
        };
        let both_in = up("-> 198.51.100.11:80 Masq 1 ") && up("-> 198.51.100.12:80 Masq 3 ");
        if both_in || std::time::Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(has(&status, "lvs: TCP  192.0.2.10:80 wrr |"), "{status:?}");
    assert!(
        has(&status, "lvs: TCP  192.0.2.11:80 rr persistent 120 |"),
        "{status:?}"
    );
    assert!(has(&status, "-> 198.51.100.11:80 Masq 1 "), "{status:?}");
    assert!(has(&status, "-> 198.51.100.12:80 Masq 3 "), "{status:?}");
    // The fwmark service's servers have port 0 in the kernel: the packet's port is kept.
    assert!(has(&status, "lvs: FWM  12 rr |"), "{status:?}");
    assert!(has(&status, "-> 198.51.100.11:0 Masq 1 "), "{status:?}");
    assert!(has(&status, "-> 198.51.100.12:0 Masq 1 "), "{status:?}");

    // One fwmark service, two ports, the same two servers: each port answers, from the port
    // the client asked (the responder answers on 80 and 443 alike), rr alternating over both.
    for port in [80, 443] {
        let (rs1, rs2, failed) = requests(&lab, &format!("http://192.0.2.12:{port}/"), 8);
        assert_eq!(
            (rs1, rs2, failed),
            (4, 4, 0),
            "fwmark NAT service, port {port}"
        );
    }

    // wrr 1:3 over sequential new connections: exactly one in four goes to rs1.
    let (rs1, rs2, failed) = requests(&lab, "http://192.0.2.10/", 40);
    assert_eq!(failed, 0, "rs1={rs1} rs2={rs2}");
    assert_eq!((rs1, rs2), (10, 30), "wrr 1:3");

    // Persistence: one client stays on one server.
    let (p1, p2, failed) = requests(&lab, "http://192.0.2.11/", 12);
    assert_eq!(failed, 0);
    assert!(p1 == 12 || p2 == 12, "persistent service split: {p1}/{p2}");

    // Stop the service on rs1: its check fails, the director removes it, requests still work.
    lab.box_named("box-a").unwrap().console.skip_to_end();
    assert!(rs1_control(&lab, "stop").unwrap().contains("rs1 stopped"));
    let director = lab.box_named("box-a").unwrap();
    director
        .console
        .wait_for("198.51.100.11:80: check tcp failed: down", CHECK_BOUND)
        .unwrap();
    director
        .console
        .wait_for(
            "lvs: remove 198.51.100.11:80 from tcp 192.0.2.10:80",
            CHECK_BOUND,
        )
        .unwrap();
    let status = engine_status(lab.box_named("box-a").unwrap(), "lvs");
    assert!(
        has(&status, "-> 198.51.100.11:80 (out) | tcp down"),
        "{status:?}"
    );
    assert!(has(&status, "out: failed check (removed)"), "{status:?}");
    let (rs1, rs2, failed) = requests(&lab, "http://192.0.2.10/", 12);
    assert_eq!((rs1, rs2, failed), (0, 12, 0), "drained to rs2");

    // Restart it: back after the check passes and the re-entry time (3 s) has passed.
    lab.box_named("box-a").unwrap().console.skip_to_end();
    assert!(rs1_control(&lab, "start").unwrap().contains("rs1 serving"));
    let director = lab.box_named("box-a").unwrap();
    director
        .console
        .wait_for("198.51.100.11:80: check tcp passed: up", CHECK_BOUND)
        .unwrap();
    director
        .console
        .wait_for("re-entry time passed", CHECK_BOUND)
        .unwrap();
    director
        .console
        .wait_for(
            "lvs: add 198.51.100.11:80 weight 1 to tcp 192.0.2.10:80",
            CHECK_BOUND,
        )
        .unwrap();
    // The engine logs an op before it sends it to the kernel; its status (answered after the
    // apply, from the table read back) is what says rs1 is in again.
    let status = engine_status(lab.box_named("box-a").unwrap(), "lvs");
    assert!(has(&status, "-> 198.51.100.11:80 Masq 1 "), "{status:?}");
    assert!(has(&status, "tcp up since"), "{status:?}");
    let (rs1, rs2, failed) = requests(&lab, "http://192.0.2.10/", 8);
    assert_eq!(failed, 0);
    // wrr 1:3 again; re-adding a destination restarts the scheduler's cycle at a point that
    // depends on when the re-add lands, so 8 requests give rs1 two or three of them.
    assert_eq!(rs1 + rs2, 8);
    assert!(
        (2..=3).contains(&rs1),
        "back to wrr 1:3: rs1 {rs1}, rs2 {rs2}"
    );
}
