//! Tickle ACKs on the appliance image (seed 000): after a takeover the new master resets the
//! clients its dead partner was serving, so they reconnect at once instead of hanging until
//! TCP gives up. The host tier (`firmware/daemon/tests/tickle.rs`) runs the same protocol in
//! namespaces of the host kernel, which autoloads the sock_diag modules; here the boxes are
//! the real image under qemu, with no modprobe: this fails if the image does not carry and
//! load `inet_diag` + `tcp_diag` (box-a then cannot read its own connections, reports none,
//! and box-b has nothing to tickle).
//!
//! box-a (priority 200, lab image running the lab responder: line echo on port 7 of every
//! address) and box-b (priority 100, production image) share VRRP VIP 192.0.2.10 with
//! `accept_mode = true` (a local service on the VIP) and a peer cable. The client holds two
//! idle connections to box-a's echo port: one to the VIP, one to box-a's own address. Then:
//!
//! 1. box-a reports exactly one connection (the VIP's) and box-b's `vrrp status` shows the
//!    partner reported it;
//! 2. box-a dies through QMP `quit` (no goodbye); box-b becomes master and tickles the client;
//! 3. the client's VIP connection ends with a reset (ECONNRESET) within a bound, and box-b
//!    reports the three tickle rounds sent; the connection to box-a's own address (not on a
//!    VIP, never reported) is not touched.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tandem_lab::{BoxSpec, Lab, QemuBox, Segment};

const BOOT: Duration = Duration::from_secs(240);
/// Elections, status conditions and the partner's list (sent at least every second).
const SETTLE: Duration = Duration::from_secs(120);
/// From box-a's death to box-b's takeover (Master_Down_Interval ~3.6 s of guest time, TCG on
/// a loaded machine stretches it).
const TAKEOVER: Duration = Duration::from_secs(90);
/// From box-b's takeover to the client's reset (the first tickle leaves right after the first
/// gratuitous ARP; later rounds at 10 ms and 1 s).
const RESET: Duration = Duration::from_secs(60);
/// How long the client's reads block: longer than the whole test.
const HOLD: Duration = Duration::from_secs(900);
const VIP: &str = "192.0.2.10";
const BOX_A: &str = "192.0.2.1";
const BOX_B: &str = "192.0.2.2";
const CLIENT: &str = "192.0.2.100";
/// The lab responder's line echo.
const PORT: u16 = 7;

fn config(name: &str, own: &str, priority: u8) -> String {
    format!(
        r#"
[system]
hostname = "{name}"

[[interfaces]]
name = "public"
addresses = ["{own}/24"]

[[interfaces]]
name = "peer"

[peer_link]
interface = "peer"
pair_id = "00000000000000a5"
# The pair heartbeat at a pace TCG guests keep (the 10 ms / 30 ms default is for real boxes).
heartbeat_interval_ms = 50
dead_after_ms = 500

[[vrrp]]
name = "web"
version = "v3"
vrid = 10
interface = "public"
priority = {priority}
advert_interval_cs = 100
# The client's connections end on a local service on the VIP: accept traffic to it.
accept_mode = true

[[vrrp.vips]]
address = "{VIP}"
prefix = 24
"#
    )
}

/// How a held connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    Reset,
    Eof,
    Timeout,
    Error(String),
}

/// One line to the echo service and its answer (proves which box terminates the connection).
fn exchange(stream: &TcpStream, line: &str) -> String {
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    (&*stream)
        .write_all(format!("{line}\n").as_bytes())
        .unwrap();
    let mut answer = String::new();
    BufReader::new(stream).read_line(&mut answer).unwrap();
    answer.trim_end().to_owned()
}

/// Blocks in read on `stream` (idle: nothing more is sent) and reports how and when it ended.
fn hold(stream: TcpStream) -> mpsc::Receiver<(Ending, Instant)> {
    let (ended_tx, ended_rx) = mpsc::channel();
    std::thread::spawn(move || {
        stream.set_read_timeout(Some(HOLD)).unwrap();
        let mut buffer = [0u8; 64];
        let ending = match (&stream).read(&mut buffer) {
            Ok(0) => Ending::Eof,
            Ok(n) => Ending::Error(format!("{n} unexpected bytes")),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Ending::Reset,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Ending::Timeout
            }
            Err(e) => Ending::Error(e.to_string()),
        };
        let _ = ended_tx.send((ending, Instant::now()));
    });
    ended_rx
}

/// Waits until `vrrp status` of `b` has a line containing `pattern`; returns it.
fn vrrp_status_line(b: &QemuBox, pattern: &str, bound: Duration) -> String {
    b.wait_reply("vrrp status", pattern, bound)
        .unwrap_or_else(|e| panic!("{}: never `{pattern}`: {e}", b.name))
}

#[test]
fn the_new_master_resets_the_dead_partners_clients_on_the_image() {
    let mut lab = Lab::new().expect("lab");
    let nics = [Segment::Public, Segment::Peer];
    lab.boot(
        &[
            BoxSpec::new("box-a", &nics)
                .with_config(&config("box-a", BOX_A, 200))
                .with_lab_program("/lab/lab-httpd"),
            BoxSpec::new("box-b", &nics).with_config(&config("box-b", BOX_B, 100)),
        ],
        BOOT,
    )
    .expect("boxes boot");
    // Both images carry the sock_diag modules and the peer channel loads them (as PID 1, no
    // modprobe): the exact line of engines::load_feature_modules.
    for name in ["box-a", "box-b"] {
        lab.box_named(name)
            .unwrap()
            .console
            .wait_for_any_time("tandem: peer channel: loaded inet_diag tcp_diag", SETTLE)
            .unwrap();
    }
    let a = lab.box_named("box-a").unwrap();
    a.console
        .wait_for_any_time(&format!("lab-httpd: serving on port {PORT}"), BOOT)
        .unwrap();
    // box-a holds the VIP (box-b may have been master for a moment while box-a booted).
    vrrp_status_line(a, "state MASTER", SETTLE);
    vrrp_status_line(lab.box_named("box-b").unwrap(), "state BACKUP", SETTLE);

    let client = lab.add_client("cl", Segment::Public).unwrap();
    client.add_address(&format!("{CLIENT}/24")).unwrap();
    let to = |address: &str| SocketAddr::new(address.parse().unwrap(), PORT);
    let on_vip = client
        .connect_tcp(to(VIP), Duration::from_secs(30))
        .unwrap();
    let on_own = client
        .connect_tcp(to(BOX_A), Duration::from_secs(30))
        .unwrap();
    assert_eq!(
        exchange(&on_vip, "on the vip"),
        "served-by box-a on the vip"
    );
    assert_eq!(exchange(&on_own, "on box-a"), "served-by box-a on box-a");
    let client_port = on_vip.local_addr().unwrap().port();
    let vip_ended = hold(on_vip);
    let own_ended = hold(on_own);

    // box-a reports exactly the VIP connection, and box-b learns it over the peer cable.
    let a = lab.box_named("box-a").unwrap();
    let reported = vrrp_status_line(a, "this box reports 1 connections", SETTLE);
    assert!(reported.contains("collect errors 0"), "{reported}");
    let b = lab.box_named("box-b").unwrap();
    // (Not "no takeover yet": box-b may have been master for a moment while box-a booted.)
    let learned = vrrp_status_line(
        b,
        "tickle web: partner reported 1 connection on its VIPs",
        SETTLE,
    );
    let channel = vrrp_status_line(b, "peer channel peer udp/5539", SETTLE);
    assert!(channel.contains("refused: none"), "{channel}");
    eprintln!("box-a: {reported}\nbox-b: {learned}\nclient port {client_port}");

    // box-a dies hard; box-b takes the VIP over and tickles the client (the engine logs the
    // tickling and the transition in no promised order: both are looked for after the kill).
    let mark = lab.box_named("box-b").unwrap().console.mark();
    lab.box_named("box-a").unwrap().kill().unwrap();
    let killed = Instant::now();
    let b = lab.box_named("box-b").unwrap();
    let takeover = b
        .console
        .wait_for_since(mark, "vrrp: web: BACKUP -> MASTER", TAKEOVER)
        .unwrap();
    let took_over = killed.elapsed();
    b.console
        .wait_for_since(
            mark,
            "vrrp: web: tickling 1 connections the partner reported",
            RESET,
        )
        .unwrap();
    let (ending, ended_at) = vip_ended.recv_timeout(RESET).unwrap_or_else(|_| {
        panic!(
            "the client's VIP connection did not end within {RESET:?} of the takeover; \
             box-b console tail:\n{}",
            tail(&b.console.transcript())
        )
    });
    let reset_after = ended_at.saturating_duration_since(killed);
    assert_eq!(ending, Ending::Reset, "the VIP connection must be reset");

    let sent = vrrp_status_line(
        b,
        "last takeover tickled 1 (3 packets, 0 send errors)",
        SETTLE,
    );
    // The list is used once.
    assert!(
        sent.starts_with("tickle web: partner reported 0 connections on its VIPs"),
        "{sent}"
    );
    // The connection to box-a's own address was never reported: nothing touched it, not even
    // after all three rounds are out.
    let own = own_ended.recv_timeout(Duration::from_secs(5));
    assert!(
        own == Err(mpsc::RecvTimeoutError::Timeout),
        "the connection to box-a's own address must stay open: {own:?}"
    );
    eprintln!(
        "box-b: {takeover}\nbox-b took over {took_over:?} after box-a was killed; \
         the client's VIP connection was reset {reset_after:?} after it"
    );
}

/// The last lines of a console transcript.
fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
