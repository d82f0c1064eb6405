//! Tracked checks on the image (qemu): box-a (priority 200) tracks a web server on the public
//! segment (a client namespace, 192.0.2.100:8080) with an HTTP check of weight -150; box-b has
//! priority 100. While the server answers 200, box-a holds the VIP. When it answers 503, box-a's
//! priority falls to 50 (its status names the check and the reason), box-b takes over and the
//! client's neighbour entry for the VIP moves to box-b; when the server answers again box-a
//! preempts and the VIP comes back. The checks run on the appliance's own checker thread.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_lab::netns::spawn_in;
use tandem_lab::shell::{exec_in, reach};
use tandem_lab::{BoxSpec, Lab, Segment};

const BOOT: Duration = Duration::from_secs(240);
/// A check round (500 ms) plus Master_Down_Interval (~3.6 s guest time), stretched by TCG.
const TAKEOVER: Duration = Duration::from_secs(90);
const VIP: &str = "192.0.2.50";
const CHECK: &str = "check web: http GET /health 192.0.2.100:8080 every 500 ms";

const SERVE: u8 = 0;
const FAILING: u8 = 1;
const EXIT: u8 = 2;

/// `200 ok` for every request while serving, `503` while failing.
fn web_server(netns: &str, mode: Arc<AtomicU8>) -> std::thread::JoinHandle<Result<(), String>> {
    spawn_in(netns, move || {
        let listener = TcpListener::bind("192.0.2.100:8080").unwrap();
        listener.set_nonblocking(true).unwrap();
        while mode.load(Ordering::SeqCst) != EXIT {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_secs(2)))
                        .unwrap();
                    let mut request = [0u8; 1024];
                    let _ = stream.read(&mut request);
                    let reply: &[u8] = if mode.load(Ordering::SeqCst) == FAILING {
                        b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"
                    } else {
                        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
                    };
                    let _ = stream.write_all(reply);
                }
                // Nothing waiting: look again shortly.
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    })
    .unwrap()
}

fn config(name: &str, own: &str, priority: u8, tracked: bool) -> String {
    let mut text = format!(
        r#"
[system]
hostname = "{name}"

[[interfaces]]
name = "public"
addresses = ["{own}/24"]

[[vrrp]]
name = "public_vip"
version = "v3"
vrid = 50
interface = "public"
priority = {priority}
advert_interval_cs = 100
accept_mode = true

[[vrrp.vips]]
address = "{VIP}"
prefix = 24
"#
    );
    if tracked {
        text.push_str(
            r#"
[[vrrp.track_checks]]
name = "web"
address = "192.0.2.100"
port = 8080
weight = -150
check = { kind = { http = { path = "/health", status = 200 } }, timing = { interval_ms = 500, timeout_ms = 2000, retries = 0, retry_delay_ms = 500 } }
"#,
        );
    }
    text
}

/// The MAC in the client's neighbour table for `address`.
fn neighbour_mac(client: &str, address: &str) -> String {
    let out = exec_in(
        client,
        "ip",
        &["neigh", "show", "to", address, "dev", "eth0"],
    )
    .unwrap_or_default();
    out.split_whitespace()
        .skip_while(|w| *w != "lladdr")
        .nth(1)
        .unwrap_or_default()
        .to_owned()
}

/// Pings the VIP until the client's neighbour entry for it is `mac`.
fn wait_vip_at(client: &str, mac: &str) {
    let started = Instant::now();
    while started.elapsed() < TAKEOVER {
        if reach(client, VIP, TAKEOVER) && neighbour_mac(client, VIP) == mac {
            return;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!(
        "the VIP's neighbour entry is {}, not {mac}",
        neighbour_mac(client, VIP)
    );
}

#[test]
fn a_tracked_check_moves_the_vip_to_box_b_and_back() {
    let mut lab = Lab::new().expect("lab");
    // The web server first: box-a's check finds it from its first round.
    let client = lab.add_client("cl", Segment::Public).unwrap();
    client.add_address("192.0.2.100/24").unwrap();
    let client = client.netns.clone();
    let mode = Arc::new(AtomicU8::new(SERVE));
    let server = web_server(&client, Arc::clone(&mode));
    lab.boot(
        &[
            BoxSpec::new("box-a", &[Segment::Public]).with_config(&config(
                "box-a",
                "192.0.2.1",
                200,
                true,
            )),
            BoxSpec::new("box-b", &[Segment::Public]).with_config(&config(
                "box-b",
                "192.0.2.2",
                100,
                false,
            )),
        ],
        BOOT,
    )
    .expect("boot");
    let a = lab.box_named("box-a").unwrap();
    a.wait_reply("vrrp status", &format!("{CHECK}: up"), TAKEOVER)
        .unwrap();
    a.wait_reply("vrrp status", "priority 200 (configured 200)", TAKEOVER)
        .unwrap();
    let client = client.as_str();
    assert!(reach(client, "192.0.2.1", TAKEOVER), "box-a unreachable");
    assert!(reach(client, "192.0.2.2", TAKEOVER), "box-b unreachable");
    let (mac_a, mac_b) = (
        neighbour_mac(client, "192.0.2.1"),
        neighbour_mac(client, "192.0.2.2"),
    );
    assert_ne!(mac_a, mac_b);
    wait_vip_at(client, &mac_a);

    // 503: box-a's check fails, its priority falls below box-b's, box-b takes over.
    lab.box_named("box-b").unwrap().console.skip_to_end();
    mode.store(FAILING, Ordering::SeqCst);
    let a = lab.box_named("box-a").unwrap();
    a.console
        .wait_for_any_time(
            "vrrp: public_vip: check web down: HTTP status 503 not accepted",
            TAKEOVER,
        )
        .unwrap();
    a.wait_reply(
        "vrrp status",
        &format!("{CHECK}: down (HTTP status 503 not accepted)"),
        TAKEOVER,
    )
    .unwrap();
    a.wait_reply("vrrp status", "priority 50 (configured 200)", TAKEOVER)
        .unwrap();
    lab.box_named("box-b")
        .unwrap()
        .console
        .wait_for("vrrp: public_vip: BACKUP -> MASTER", TAKEOVER)
        .unwrap();
    wait_vip_at(client, &mac_b);

    // Back: box-a's priority is 200 again and it preempts.
    let a = lab.box_named("box-a").unwrap();
    a.console.skip_to_end();
    mode.store(SERVE, Ordering::SeqCst);
    a.console
        .wait_for("vrrp: public_vip: BACKUP -> MASTER", TAKEOVER)
        .unwrap();
    a.wait_reply(
        "vrrp status",
        &format!("{CHECK}: up (last failure: HTTP status 503 not accepted; down 1 times)"),
        TAKEOVER,
    )
    .unwrap();
    wait_vip_at(client, &mac_a);

    mode.store(EXIT, Ordering::SeqCst);
    server.join().unwrap().unwrap();
}
