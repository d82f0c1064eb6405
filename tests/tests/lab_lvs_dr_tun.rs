//! LVS direct routing (DR) and IP-in-IP tunnelling (TUN) on real qemu boxes (lab image,
//! `make lab-image`). box-a directs a wrr 1:3 service on VIP 192.0.2.10 to rs1 and rs2, which
//! run the lab-only HTTP responder and hold the VIP through the real-server engine; a client
//! namespace on the public segment requests the VIP.
//!
//! - DR: the real servers share the public segment with the director; the VIP is on their `lo`
//!   with `arp_ignore`/`arp_announce` set, so only the director answers ARP for it, and they
//!   reply to the client directly.
//! - TUN: the director reaches the real servers over the private segment (198.51.100.0/24) in
//!   IP-in-IP; they decapsulate on `tunl0` (the engine loads `ipip`) and reply to the client over
//!   their public leg.
//!
//! Asserts the kernel table as `lvs status` reads it back (forwarding method and weights), the
//! scheduler's proportions over new connections, and the real-server self-check. The two
//! tests boot three boxes each; they take turns so six TCG guests never share two cores.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::sync::Mutex;
use std::time::{Duration, Instant};

use tandem_lab::servers::{dr_real_server, wait_real_server_ready};
use tandem_lab::{BoxSpec, Lab, QemuBox, Segment};

const BOOT: Duration = Duration::from_secs(240);
/// Until both real servers' checks pass after the director boots (TCG, loaded machine).
const CHECK_BOUND: Duration = Duration::from_secs(60);

/// One lab at a time in this file.
static ONE_LAB: Mutex<()> = Mutex::new(());

fn director(forwarding: &str, rs1: &str, rs2: &str, private: bool) -> String {
    let private = if private {
        "\n[[interfaces]]\nname = \"private\"\naddresses = [\"198.51.100.1/24\"]\n"
    } else {
        ""
    };
    format!(
        r#"
[system]
hostname = "box-a"

[[interfaces]]
name = "public"
addresses = ["192.0.2.1/24", "192.0.2.10/24"]
{private}
[[virtual_services]]
name = "web"
address = "192.0.2.10"
port = 80
scheduler = "wrr"
forwarding = "{forwarding}"
start_down = true
check = {{ kind = "tcp", timing = {{ interval_ms = 1000, timeout_ms = 1000, retries = 0, retry_delay_ms = 200 }} }}

[[virtual_services.real_servers]]
address = "{rs1}"
weight = 1

[[virtual_services.real_servers]]
address = "{rs2}"
weight = 3
"#
    )
}

/// A TUN real server: tunnel endpoint on the private segment, replies over its public leg.
fn tun_real_server(name: &str, last: u8) -> BoxSpec {
    let config = format!(
        r#"
[system]
hostname = "{name}"

[[interfaces]]
name = "public"
addresses = ["192.0.2.{last}/24"]

[[interfaces]]
name = "private"
addresses = ["198.51.100.{last}/24"]

[real_server]
vips = ["192.0.2.10"]
tunnel = true
"#
    );
    BoxSpec::new(name, &[Segment::Public, Segment::Private])
        .with_config(&config)
        .with_lab_program("/lab/lab-httpd")
}

/// `<engine> status` lines of a box (see `QemuBox::engine_status`).
fn engine_status(b: &QemuBox, engine: &str) -> Vec<String> {
    b.engine_status(engine, Duration::from_secs(60)).unwrap()
}

/// `n` requests to the VIP from the client; returns (served by rs1, served by rs2, failures
/// with their request number and what curl said).
fn requests(lab: &Lab, n: usize) -> (usize, usize, Vec<String>) {
    let client = &lab.clients[0];
    let (mut rs1, mut rs2, mut failed) = (0, 0, Vec::new());
    for i in 0..n {
        match client.exec("curl", &["-sS", "--max-time", "10", "http://192.0.2.10/"]) {
            Ok(body) if body.trim() == "served-by rs1" => rs1 += 1,
            Ok(body) if body.trim() == "served-by rs2" => rs2 += 1,
            other => failed.push(format!("request {i}: {other:?}")),
        }
    }
    (rs1, rs2, failed)
}

fn has(lines: &[String], needle: &str) -> bool {
    lines.iter().any(|l| l.contains(needle))
}

/// Boots the lab, waits for the roles, checks the table and the real servers, and sends 40
/// requests to the VIP, asserting wrr 1:3.
fn run_lab(specs: &[BoxSpec], method: &str, servers: [&str; 2], tunnel: bool) {
    let _turn = ONE_LAB
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut lab = Lab::new().expect("lab");
    lab.boot(specs, BOOT).expect("boxes boot");
    lab.add_client("cl", Segment::Public)
        .unwrap()
        .add_address("192.0.2.100/24")
        .unwrap();
    lab.box_named("box-a")
        .unwrap()
        .console
        // start_down: no real server is in before its first passed check.
        .wait_for_any_time("lvs: table in sync: 1 services, 0 real servers", BOOT)
        .unwrap();
    for name in ["rs1", "rs2"] {
        let status = wait_real_server_ready(lab.box_named(name).unwrap(), BOOT).unwrap();
        let role = format!(
            "realserver: vips 192.0.2.10 tunnel {} nat_gateway none",
            if tunnel { "yes" } else { "no" }
        );
        assert!(status.contains(&role), "{name}: {status:?}");
    }

    // The servers start down (`start_down`: the boxes boot together, so the director would
    // otherwise send the first requests to servers not yet up) and enter once their check
    // passes; wait until both are in with their weights and a passed check.
    let in_rotation = |line: &str, server: &str, weight: u8| {
        line.contains(&format!("-> {server}:80 {method} {weight} "))
            && line.contains("| tcp up since ")
            && line.ends_with(", in")
    };
    let both_in = |status: &[String]| {
        status.iter().any(|l| in_rotation(l, servers[0], 1))
            && status.iter().any(|l| in_rotation(l, servers[1], 3))
    };
    let deadline = Instant::now() + CHECK_BOUND;
    let status = loop {
        let status = engine_status(lab.box_named("box-a").unwrap(), "lvs");
        if both_in(&status) || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(has(&status, "lvs: TCP  192.0.2.10:80 wrr |"), "{status:?}");
    assert!(both_in(&status), "{status:?}");

    // The client resolves the VIP to the director, never to a real server.
    lab.clients[0]
        .exec("ping", &["-c", "1", "-W", "10", "192.0.2.1"])
        .unwrap();
    let (rs1, rs2, failed) = requests(&lab, 40);
    assert!(failed.is_empty(), "rs1={rs1} rs2={rs2} {failed:?}");
    assert_eq!((rs1, rs2), (10, 30), "wrr 1:3");
    let mac = |ip: &str| {
        let line = lab.clients[0].exec("ip", &["neigh", "show", ip]).unwrap();
        line.split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no neighbour entry for {ip}: {line}"))
    };
    assert_eq!(
        mac("192.0.2.10"),
        mac("192.0.2.1"),
        "VIP answered by a real server"
    );

    // After the traffic the real servers still pass their self-check.
    let status = engine_status(lab.box_named("rs1").unwrap(), "realserver");
    assert!(
        status.contains(&"realserver: self-check ok".to_owned()),
        "{status:?}"
    );
}

#[test]
fn dr_director_balances_to_real_servers_holding_the_vip_on_lo() {
    let specs = [
        BoxSpec::new("box-a", &[Segment::Public]).with_config(&director(
            "dr",
            "192.0.2.21",
            "192.0.2.22",
            false,
        )),
        dr_real_server("rs1", "192.0.2.21", "192.0.2.10", &[Segment::Public]),
        dr_real_server("rs2", "192.0.2.22", "192.0.2.10", &[Segment::Public]),
    ];
    run_lab(&specs, "Route", ["192.0.2.21", "192.0.2.22"], false);
}

#[test]
fn tun_director_balances_to_real_servers_over_ipip() {
    let specs = [
        BoxSpec::new("box-a", &[Segment::Public, Segment::Private]).with_config(&director(
            "tun",
            "198.51.100.21",
            "198.51.100.22",
            true,
        )),
        tun_real_server("rs1", 21),
        tun_real_server("rs2", 22),
    ];
    run_lab(&specs, "Tunnel", ["198.51.100.21", "198.51.100.22"], true);
}

/// A firewall-mark service: TCP to 192.0.2.12:80 is marked 5 by the director's nftables rule
/// (table `inet tandem`, installed over netlink) and IPVS balances mark 5 over DR (rr).
#[test]
fn fwmark_dr_service_balances_marked_traffic() {
    const FWMARK_DIRECTOR: &str = r#"
[system]
hostname = "box-a"

[[interfaces]]
name = "public"
addresses = ["192.0.2.1/24", "192.0.2.12/24"]

[[fwmark_rules]]
mark = 5
protocol = "tcp"
destination = "192.0.2.12"
port_first = 80
port_last = 80

[[virtual_services]]
name = "marked"
fwmark = 5
scheduler = "rr"
forwarding = "dr"
start_down = true
check = { kind = "tcp", timing = { interval_ms = 1000, timeout_ms = 1000, retries = 0, retry_delay_ms = 200 } }

[[virtual_services.real_servers]]
address = "192.0.2.21"
port = 80

[[virtual_services.real_servers]]
address = "192.0.2.22"
port = 80
"#;
    let rs = |name: &str, last: u8| {
        let config = format!(
            "[system]\nhostname = \"{name}\"\n\n[[interfaces]]\nname = \"public\"\n\
             addresses = [\"192.0.2.{last}/24\"]\n\n[real_server]\nvips = [\"192.0.2.12\"]\n"
        );
        BoxSpec::new(name, &[Segment::Public])
            .with_config(&config)
            .with_lab_program("/lab/lab-httpd")
    };
    let specs = [
        BoxSpec::new("box-a", &[Segment::Public]).with_config(FWMARK_DIRECTOR),
        rs("rs1", 21),
        rs("rs2", 22),
    ];
    let _turn = ONE_LAB
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut lab = Lab::new().expect("lab");
    lab.boot(&specs, BOOT).expect("boxes boot");
    lab.add_client("cl", Segment::Public)
        .unwrap()
        .add_address("192.0.2.100/24")
        .unwrap();
    let director = lab.box_named("box-a").unwrap();
    director
        .console
        .wait_for_any_time("lvs: firewall marks: 1 rules in table inet tandem", BOOT)
        .unwrap();
    for name in ["rs1", "rs2"] {
        wait_real_server_ready(lab.box_named(name).unwrap(), BOOT).unwrap();
    }
    let in_rotation = |status: &[String], server: &str| {
        status.iter().any(|l| {
            l.contains(&format!("-> {server}:80 Route 1 ")) && l.contains("| tcp up since ")
        })
    };
    let deadline = Instant::now() + CHECK_BOUND;
    let status = loop {
        let status = engine_status(lab.box_named("box-a").unwrap(), "lvs");
        let both = in_rotation(&status, "192.0.2.21") && in_rotation(&status, "192.0.2.22");
        if both || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    assert!(has(&status, "lvs: FWM  5 rr |"), "{status:?}");
    assert!(in_rotation(&status, "192.0.2.21"), "{status:?}");
    assert!(in_rotation(&status, "192.0.2.22"), "{status:?}");

    // rr over the marked VIP: strict alternation, so 8 requests split 4/4.
    let client = &lab.clients[0];
    let (mut rs1, mut rs2, mut failed) = (0, 0, Vec::new());
    for i in 0..8 {
        match client.exec("curl", &["-sS", "--max-time", "10", "http://192.0.2.12/"]) {
            Ok(body) if body.trim() == "served-by rs1" => rs1 += 1,
            Ok(body) if body.trim() == "served-by rs2" => rs2 += 1,
            other => failed.push(format!("request {i}: {other:?}")),
        }
    }
    assert!(failed.is_empty(), "rs1={rs1} rs2={rs2} {failed:?}");
    assert_eq!((rs1, rs2), (4, 4), "rr over the fwmark service");
    // The kernel folds its per-CPU counters into the totals every 2 s (the rate estimator).
    let connections = |status: &[String]| -> Option<u64> {
        let service = status.iter().find(|l| l.starts_with("lvs: FWM  5 rr |"))?;
        service
            .split('|')
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        let status = engine_status(lab.box_named("box-a").unwrap(), "lvs");
        if connections(&status) == Some(8) || Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    assert_eq!(
        connections(&status),
        Some(8),
        "every marked connection went through IPVS: {status:?}"
    );
}

#[test]
fn fwmark_80_443_persistent_service_keeps_a_client_on_one_server_across_both_ports() {
    // The seeds' HTTP+HTTPS case: ports 80 and 443 of one address share a mark, the marked
    // service is persistent, so a client's port-80 and port-443 connections land on one server.
    const DIRECTOR: &str = r#"
[system]
hostname = "box-a"

[[interfaces]]
name = "public"
addresses = ["192.0.2.1/24", "192.0.2.13/24"]

[[fwmark_rules]]
mark = 80
protocol = "tcp"
destination = "192.0.2.13"
port_first = 80
port_last = 80

[[fwmark_rules]]
mark = 80
protocol = "tcp"
destination = "192.0.2.13"
port_first = 443
port_last = 443

[[virtual_services]]
name = "web"
fwmark = 80
scheduler = "rr"
forwarding = "dr"
start_down = true
persistence = { timeout_s = 300 }
check = { kind = "tcp", timing = { interval_ms = 1000, timeout_ms = 1000, retries = 0, retry_delay_ms = 200 } }

[[virtual_services.real_servers]]
address = "192.0.2.21"
port = 80

[[virtual_services.real_servers]]
address = "192.0.2.22"
port = 80
"#;
    let specs = [
        BoxSpec::new("box-a", &[Segment::Public]).with_config(DIRECTOR),
        dr_real_server("rs1", "192.0.2.21", "192.0.2.13", &[Segment::Public]),
        dr_real_server("rs2", "192.0.2.22", "192.0.2.13", &[Segment::Public]),
    ];
    let _turn = ONE_LAB
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut lab = Lab::new().expect("lab");
    lab.boot(&specs, BOOT).expect("boxes boot");
    {
        let client = lab.add_client("cl", Segment::Public).unwrap();
        for last in 100..106 {
            client.add_address(&format!("192.0.2.{last}/24")).unwrap();
        }
    }
    lab.box_named("box-a")
        .unwrap()
        .console
        .wait_for_any_time("lvs: firewall marks: 2 rules in table inet tandem", BOOT)
        .unwrap();
    // Until both servers passed their first check (start_down) and the service answers.
    let deadline = Instant::now() + CHECK_BOUND;
    loop {
        let status = engine_status(lab.box_named("box-a").unwrap(), "lvs");
        let up = status
            .iter()
            .filter(|l| l.contains("| tcp up since "))
            .count();
        if up == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "real servers never came up: {status:?}"
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let client = &lab.clients[0];
    let ask = |source: &str, port: u16| -> Option<String> {
        let url = format!("http://192.0.2.13:{port}/");
        let body = client
            .exec(
                "curl",
                &["-s", "--max-time", "5", "--interface", source, &url],
            )
            .ok()?;
        body.trim().strip_prefix("served-by ").map(str::to_owned)
    };
    let mut served = std::collections::BTreeSet::new();
    for last in 100..106 {
        let source = format!("192.0.2.{last}");
        let http = ask(&source, 80).unwrap_or_else(|| panic!("{source}: no answer on port 80"));
        let https = ask(&source, 443).unwrap_or_else(|| panic!("{source}: no answer on port 443"));
        let again = ask(&source, 80).unwrap_or_else(|| panic!("{source}: no second answer"));
        assert_eq!(
            http, https,
            "{source}: port 80 and 443 went to different servers"
        );
        assert_eq!(http, again, "{source}: persistence broke");
        served.insert(http);
    }
    assert_eq!(
        served.len(),
        2,
        "clients should be spread over both servers: {served:?}"
    );
}
