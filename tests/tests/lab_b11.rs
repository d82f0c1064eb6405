//! The TUM report's appendix B.11 director1 keepalived.conf, imported with `tandem-config`'s
//! importer and moved to the lab's addresses (123.123.123.0/24 -> 192.0.2.0/24 public,
//! 192.168.0.0/24 -> 198.51.100.0/24 private, eth0/eth1 -> the public/private ports), runs for
//! real on box-a: its four VRRPv2 instances with PASS auth take their VIPs, its NAT web service
//! balances a client's requests over rs1 and rs2 (the web real servers .201/.202, routed back
//! through the imported web_gw VIP), and the mail real servers, which do not exist in the lab,
//! are reported out with a reason.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::time::{Duration, Instant};

use tandem_config::net::IpCidr;
use tandem_lab::servers::nat_real_server;
use tandem_lab::{BoxSpec, Lab, Segment};

const BOOT: Duration = Duration::from_secs(240);
const SETTLE: Duration = Duration::from_secs(120);

fn director_config() -> String {
    let original = std::fs::read_to_string(
        tandem_lab::workspace_root().join("config/tests/data/director1.keepalived.conf"),
    )
    .unwrap();
    let moved = original
        .replace("123.123.123.", "192.0.2.")
        .replace("192.168.0.", "198.51.100.")
        .replace("eth0", "public")
        .replace("eth1", "private");
    let imported = tandem_config::import::import(&moved, None).unwrap();
    let mut config = imported.config;
    // keepalived.conf carries no interface addresses: give the director its own on each port.
    let mut interfaces = tandem_config::BoundedVec::new();
    for interface in config.interfaces.iter() {
        let mut interface = interface.clone();
        let own = match interface.name.as_str() {
            "public" => "192.0.2.5/24",
            "private" => "198.51.100.5/24",
            other => panic!("unexpected interface {other} in the imported B.11 config"),
        };
        interface
            .addresses
            .push(own.parse::<IpCidr>().unwrap())
            .unwrap();
        interfaces.push(interface).unwrap();
    }
    config.interfaces = interfaces;
    let errors: Vec<_> = tandem_config::validate(&config)
        .into_iter()
        .filter(|issue| issue.severity == tandem_config::Severity::Error)
        .collect();
    assert!(
        errors.is_empty(),
        "the adapted B.11 config does not validate: {errors:?}"
    );
    tandem_config::text::to_toml(&config).unwrap()
}

#[test]
fn the_imported_b11_director_balances_web_traffic_for_real() {
    let mut lab = Lab::new().expect("lab");
    let specs = [
        BoxSpec::new("box-a", &[Segment::Public, Segment::Private]).with_config(&director_config()),
        // The web real servers of B.11 (.201/.202), routed back through its web_gw VIP (.2).
        nat_real_server("rs1", "198.51.100.201", "198.51.100.2"),
        nat_real_server("rs2", "198.51.100.202", "198.51.100.2"),
    ];
    lab.boot(&specs, BOOT).expect("boxes boot");
    {
        let client = lab.add_client("cl", Segment::Public).unwrap();
        for last in 100..104 {
            client.add_address(&format!("192.0.2.{last}/24")).unwrap();
        }
    }
    let director = lab.box_named("box-a").unwrap();
    for instance in ["mail_vip", "mail_gw", "web_vip", "web_gw"] {
        director
            .console
            .wait_for_any_time(&format!("vrrp: {instance}: BACKUP -> MASTER"), SETTLE)
            .unwrap();
    }

    // B.11 makes the web service persistent (50 s): each client address must stick to one real
    // server, and rr must hand different client addresses to both.
    let client = &lab.clients[0];
    let ask = |source: &str| -> Option<String> {
        let body = client
            .exec(
                "curl",
                &[
                    "-s",
                    "--max-time",
                    "5",
                    "--interface",
                    source,
                    "http://192.0.2.2/index.html",
                ],
            )
            .ok()?;
        body.trim().strip_prefix("served-by ").map(str::to_owned)
    };
    // Wait until the service answers at all (VIPs up, checks passed).
    let deadline = Instant::now() + SETTLE;
    while ask("192.0.2.100").is_none() {
        assert!(Instant::now() < deadline, "the web VIP never answered");
        std::thread::sleep(Duration::from_millis(500));
    }
    // Both web servers in rotation (a slower guest's first check may still be pending).
    let deadline = Instant::now() + SETTLE;
    loop {
        let director = lab.boxes.iter().find(|b| b.name == "box-a").unwrap();
        let status = director.engine_status("lvs", SETTLE).unwrap();
        let in_rotation = |server: &str| {
            status
                .iter()
                .any(|line| line.contains(server) && line.ends_with(", in"))
        };
        if in_rotation("198.51.100.201:80") && in_rotation("198.51.100.202:80") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "both web servers never in rotation:\n{}",
            status.join("\n")
        );
        std::thread::sleep(Duration::from_secs(1));
    }
    let mut served = std::collections::BTreeSet::new();
    for last in 100..104 {
        let source = format!("192.0.2.{last}");
        let answers: Vec<Option<String>> = (0..3).map(|_| ask(&source)).collect();
        let first = answers[0].clone().expect("answered");
        assert!(
            answers.iter().all(|a| a.as_deref() == Some(first.as_str())),
            "{source} moved: {answers:?}"
        );
        served.insert(first);
    }
    assert_eq!(
        served.len(),
        2,
        "both web servers should serve some clients: {served:?}"
    );

    let director = lab.box_named("box-a").unwrap();
    let status = director
        .engine_status("lvs", Duration::from_secs(60))
        .unwrap();
    let text = status.join("\n");
    assert!(text.contains("192.0.2.2:80"), "{text}");
    assert!(text.contains("198.51.100.201:80 Masq"), "{text}");
    assert!(text.contains("198.51.100.202:80 Masq"), "{text}");
    // The mail servers of B.11 do not exist here: once their SMTP checks (delay_loop 6 s,
    // connect_timeout 3 s) fail they must be shown out, with why.
    let deadline = Instant::now() + SETTLE;
    loop {
        let status = director
            .engine_status("lvs", Duration::from_secs(60))
            .unwrap();
        let mail = status
            .iter()
            .find(|l| l.contains("198.51.100.101:25"))
            .cloned();
        let mail = mail.expect("mail server listed");
        if !mail.contains("up, in") {
            assert!(mail.contains("down") || mail.contains("out"), "{mail}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the missing mail server stays in: {mail}"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
}
