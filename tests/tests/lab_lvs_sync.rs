//! IPVS connection sync between the two directors, on real qemu boxes (lab image,
//! `make lab-image`): an established connection survives the death of the director that
//! scheduled it.
//!
//! box-a (priority 200) and box-b (100) share VRRP VIP 192.0.2.10 and both direct an LVS DR
//! service on it (port 7, the lab responder's line echo) to rs1 and rs2; `peer_link.ipvs_sync`
//! is on, so each box runs a master and a backup sync daemon on its `peer` NIC (connected by
//! the peer cable, which has no configured address). A client opens ONE TCP connection to the
//! VIP and exchanges a line, then:
//!
//! 1. box-a's `lvs status` shows the connection as `local` and box-b's shows the same entry
//!    (client, VIP, real server) as `synced`;
//! 2. box-a is killed through QMP; box-b becomes VRRP master;
//! 3. the next line on the SAME connection is answered by the same real server, which only
//!    works if box-b forwards it there from the synced entry (a rescheduled connection would
//!    reach a server that has no such TCP connection and answers with a reset; a box-b without
//!    the entry drops the mid-stream segment, as IPVS only schedules a SYN).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tandem_lab::servers::{dr_director, dr_real_server, wait_real_server_ready};
use tandem_lab::{BoxSpec, Lab, QemuBox, Segment};

const BOOT: Duration = Duration::from_secs(240);
/// Until both real servers are in rotation on box-a after the boxes are ready.
const CHECK_BOUND: Duration = Duration::from_secs(90);
/// Until a director's status shows both sync daemons and their source address.
const SYNC_START: Duration = Duration::from_secs(90);
/// Until the synced entry shows on box-b (the master flushes its buffer within 2 s).
const SYNC_BOUND: Duration = Duration::from_secs(30);
/// Until box-b takes over after box-a dies (3 adverts of 1 s plus skew, under TCG).
const TAKEOVER: Duration = Duration::from_secs(60);
const VIP: &str = "192.0.2.10";
const CLIENT: &str = "192.0.2.100";
/// Pair id of the lab pair (`servers::dr_director`): sync id 0xa5 = 165.
const PAIR_ID: &str = "00000000000000a5";

fn specs() -> Vec<BoxSpec> {
    let director_nics = [Segment::Public, Segment::Peer];
    vec![
        BoxSpec::new("box-a", &director_nics).with_config(&dr_director(
            "box-a",
            "192.0.2.1",
            200,
            VIP,
            7,
        )),
        BoxSpec::new("box-b", &director_nics).with_config(&dr_director(
            "box-b",
            "192.0.2.2",
            100,
            VIP,
            7,
        )),
        dr_real_server("rs1", "192.0.2.21", VIP, &[Segment::Public]),
        dr_real_server("rs2", "192.0.2.22", VIP, &[Segment::Public]),
    ]
}

fn lvs_status(b: &QemuBox) -> Vec<String> {
    b.engine_status("lvs", Duration::from_secs(60)).unwrap()
}

/// Polls `lvs status` of `b` until `done` accepts it; returns the status.
fn wait_status(
    b: &QemuBox,
    what: &str,
    bound: Duration,
    done: impl Fn(&[String]) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + bound;
    loop {
        let status = lvs_status(b);
        if done(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "{}: {what} not seen within {bound:?}: {status:#?}",
            b.name
        );
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Polls `lvs status` of `b` until a line starts with `prefix`; returns that line.
fn wait_status_line(b: &QemuBox, prefix: &str, bound: Duration) -> String {
    let status = wait_status(b, prefix, bound, |s| {
        s.iter().any(|l| l.starts_with(prefix))
    });
    status.into_iter().find(|l| l.starts_with(prefix)).unwrap()
}

/// Sends one line and returns the answer line (without the newline).
fn exchange(writer: &mut TcpStream, reader: &mut BufReader<TcpStream>, line: &str) -> String {
    writer.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut answer = String::new();
    reader.read_line(&mut answer).unwrap();
    answer.trim_end().to_owned()
}

#[test]
fn an_established_connection_survives_the_director_failover() {
    let mut lab = Lab::new().expect("lab");
    lab.boot(&specs(), BOOT).expect("boxes boot");
    lab.add_client("cl", Segment::Public)
        .unwrap()
        .add_address(&format!("{CLIENT}/24"))
        .unwrap();

    // Both directors run both sync daemons on the peer NIC, which got an IPv4 link-local source.
    // The daemons' start and the source address are separate steps in no order the engine
    // promises, so the status is polled until it shows both.
    let sync_id = u32::from_str_radix(PAIR_ID, 16).unwrap() & 0xff;
    for name in ["box-a", "box-b"] {
        let b = lab.box_named(name).unwrap();
        b.console
            .wait_for_any_time(
                &format!("lvs: sync: master and backup started on peer sync id {sync_id} group 224.0.0.81:8848"),
                BOOT,
            )
            .unwrap();
        let daemons = ["master", "backup"].map(|role| {
            format!("lvs: sync: {role} on peer sync id {sync_id} group 224.0.0.81:8848 running")
        });
        wait_status(
            b,
            "both sync daemons running and a 169.254 source address on peer",
            SYNC_START,
            |status| {
                daemons.iter().all(|line| status.contains(line))
                    && status.iter().any(|l| {
                        l.starts_with("lvs: sync: source address 169.254.")
                            && l.ends_with(" on peer")
                    })
            },
        );
    }
    for name in ["rs1", "rs2"] {
        wait_real_server_ready(lab.box_named(name).unwrap(), BOOT).unwrap();
    }
    lab.box_named("box-a")
        .unwrap()
        .console
        .wait_for_any_time("vrrp: web_vip: BACKUP -> MASTER", BOOT)
        .unwrap();
    // Both directors have both servers in their table (box-b binds the synced entry to one).
    for name in ["box-a", "box-b"] {
        wait_status(
            lab.box_named(name).unwrap(),
            "both real servers in rotation",
            CHECK_BOUND,
            |status| {
                ["192.0.2.21", "192.0.2.22"].iter().all(|server| {
                    status.iter().any(|l| {
                        l.starts_with(&format!("lvs:   -> {server}:7 Route 1 "))
                            && l.ends_with(", in")
                    })
                })
            },
        );
    }

    // One long-lived connection through box-a.
    let mut writer = lab.clients[0]
        .connect_tcp(format!("{VIP}:7").parse().unwrap(), Duration::from_secs(20))
        .unwrap();
    writer
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let client_port = writer.local_addr().unwrap().port();
    let mut reader = BufReader::new(writer.try_clone().unwrap());
    let first = exchange(&mut writer, &mut reader, "before failover");
    let server = match first.as_str() {
        "served-by rs1 before failover" => "rs1",
        "served-by rs2 before failover" => "rs2",
        other => panic!("unexpected answer {other:?}"),
    };
    let server_ip = if server == "rs1" {
        "192.0.2.21"
    } else {
        "192.0.2.22"
    };
    let entry = format!(
        "lvs: conn TCP client {CLIENT}:{client_port} vip {VIP}:7 server {server_ip}:7 ESTABLISHED"
    );

    let on_a = wait_status_line(
        lab.box_named("box-a").unwrap(),
        &format!("{entry} local expires "),
        SYNC_BOUND,
    );
    let on_b = wait_status_line(
        lab.box_named("box-b").unwrap(),
        &format!("{entry} synced expires "),
        SYNC_BOUND,
    );
    eprintln!("box-a: {on_a}\nbox-b: {on_b}");

    // box-a dies; box-b takes the VIP over.
    lab.box_named("box-b").unwrap().console.skip_to_end();
    lab.box_named("box-a").unwrap().kill().unwrap();
    let takeover = lab
        .box_named("box-b")
        .unwrap()
        .console
        .wait_for("vrrp: web_vip: BACKUP -> MASTER", TAKEOVER)
        .unwrap();
    eprintln!("box-b: {takeover}");

    // The same connection, now through box-b, reaches the same real server.
    let second = exchange(&mut writer, &mut reader, "after failover");
    assert_eq!(second, format!("served-by {server} after failover"));
    let third = exchange(&mut writer, &mut reader, "still there");
    assert_eq!(third, format!("served-by {server} still there"));
    // box-b now carries the connection it received, still bound to that server.
    let after = wait_status_line(
        lab.box_named("box-b").unwrap(),
        &format!("{entry} "),
        SYNC_BOUND,
    );
    eprintln!("box-b after: {after}");
}
