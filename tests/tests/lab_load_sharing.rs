//! Load sharing (CLUSTERIP on nftables) on the appliance image: box-a and box-b share
//! 192.0.2.60 on the public segment behind a multicast MAC, 16 buckets (a the odd, b the even),
//! joined by the peer cable; each runs the lab HTTP responder (`served-by <box>`).
//!
//! - Split: every one of 100 connections from the client is answered by exactly one box, none
//!   fails, both boxes serve (the image's kernel has the nftables modules: jhash, conntrack).
//! - box-b dies (QMP `quit`): box-a's heartbeat goes silent, its ARP probe to box-b is not
//!   answered, it takes box-b's buckets (the cause names it) and answers every new connection.
//! - box-b boots again: the buckets move back (each box holds 8), the long-lived connections
//!   box-a opened while alone (half of them in box-b's buckets) all still echo through box-a,
//!   and new connections are split again.
//!
//! Timing figures live in the benches.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use tandem_lab::netns::spawn_in;
use tandem_lab::{BoxSpec, Lab, Segment};

const BOOT: Duration = Duration::from_secs(240);
const SETTLE: Duration = Duration::from_secs(120);
const VIP: &str = "192.0.2.60";

fn config(name: &str, own: &str, local: &str) -> String {
    format!(
        r#"
[system]
hostname = "{name}"

[peer_link]
interface = "peer"
heartbeat_interval_ms = 50
dead_after_ms = 500

[[interfaces]]
name = "public"
addresses = ["{own}/24"]

[[interfaces]]
name = "peer"

[[clusterip]]
name = "web"
vip = "{VIP}"
interface = "public"
multicast_mac = "01:00:5e:7f:00:3c"
hash = "source-ip-port"
hash_init = 7
total_nodes = 16
local_nodes = [{local}]
"#
    )
}

/// `count` HTTP requests to the shared address from the client netns, each on a new
/// connection: who served each, or the error.
fn requests(client: &str, count: usize) -> Vec<Result<String, String>> {
    spawn_in(client, move || {
        (0..count)
            .map(|_| {
                let address: SocketAddr = format!("{VIP}:80").parse().unwrap();
                let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(10))
                    .map_err(|e| format!("connect: {e}"))?;
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                stream
                    .write_all(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n")
                    .map_err(|e| format!("write: {e}"))?;
                let mut reply = String::new();
                stream
                    .read_to_string(&mut reply)
                    .map_err(|e| format!("read: {e}"))?;
                reply
                    .lines()
                    .find_map(|line| line.strip_prefix("served-by "))
                    .map(str::to_owned)
                    .ok_or_else(|| format!("no served-by in {reply:?}"))
            })
            .collect()
    })
    .unwrap()
    .join()
    .unwrap()
    .unwrap()
}

fn count(results: &[Result<String, String>], name: &str) -> usize {
    results.iter().filter(|r| r.as_deref() == Ok(name)).count()
}

#[test]
fn two_boxes_share_an_address_and_the_survivor_takes_the_dead_boxs_buckets_on_the_image() {
    let mut lab = Lab::new().expect("lab");
    let nics = [Segment::Public, Segment::Peer];
    lab.boot(
        &[
            BoxSpec::new("box-a", &nics)
                .with_config(&config("box-a", "192.0.2.1", "1, 3, 5, 7, 9, 11, 13, 15"))
                .with_lab_program("/lab/lab-httpd"),
            BoxSpec::new("box-b", &nics)
                .with_config(&config("box-b", "192.0.2.2", "2, 4, 6, 8, 10, 12, 14, 16"))
                .with_lab_program("/lab/lab-httpd"),
        ],
        BOOT,
    )
    .expect("boxes boot");
    for name in ["box-a", "box-b"] {
        let b = lab.box_named(name).unwrap();
        b.wait_reply("cluster status", "partner: 8 bucket(s)", SETTLE)
            .unwrap();
        b.wait_reply("cluster status", "this box: 8 bucket(s)", SETTLE)
            .unwrap();
    }
    let client = lab.add_client("cl", Segment::Public).unwrap();
    client.add_address("192.0.2.100/24").unwrap();
    let client = client.netns.clone();

    let split = requests(&client, 100);
    let failed: Vec<&String> = split.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failed.is_empty(), "failed connections: {failed:?}");
    let (on_a, on_b) = (count(&split, "box-a"), count(&split, "box-b"));
    eprintln!("split of 100 connections: box-a {on_a}, box-b {on_b}");
    assert_eq!(on_a + on_b, 100, "{split:?}");
    assert!(on_a >= 20 && on_b >= 20, "split {on_a} / {on_b}");
    let status = lab
        .box_named("box-a")
        .unwrap()
        .engine_status("cluster", SETTLE)
        .unwrap();
    eprintln!("box-a `cluster status`:\n{}", status.join("\n"));
    assert!(
        status
            .iter()
            .any(|l| l.contains("packets:") && !l.contains("dropped 0")),
        "box-a dropped none of box-b's packets: {status:#?}"
    );

    // box-b dies: box-a takes its buckets on the heartbeat's word.
    let mark = lab.box_named("box-a").unwrap().console.mark();
    lab.box_named("box-b").unwrap().kill().unwrap();
    let a = lab.box_named("box-a").unwrap();
    let took = a
        .console
        .wait_for_since(mark, "cluster: group web: took 8 bucket(s)", SETTLE)
        .unwrap();
    eprintln!("box-a: {took}");
    assert!(
        took.contains("partner heartbeat lost")
            && took.contains("partner silent on the service LAN"),
        "box-a took the buckets for another reason: {took}"
    );
    a.wait_reply("cluster status", "this box: 16 bucket(s)", SETTLE)
        .unwrap();
    let alone = requests(&client, 40);
    assert_eq!(count(&alone, "box-a"), 40, "{alone:?}");

    // Long-lived connections opened while box-a is alone (half of them in box-b's buckets),
    // then box-b boots again: the buckets move back and every one of them lives on.
    let mut long_lived = echo_connections(&client, 20);
    for (i, connection) in long_lived.iter_mut().enumerate() {
        assert_eq!(connection.echo(&format!("alone-{i}")).unwrap(), "box-a");
    }
    let spec_b = BoxSpec::new("box-b", &nics)
        .with_config(&config("box-b", "192.0.2.2", "2, 4, 6, 8, 10, 12, 14, 16"))
        .with_lab_program("/lab/lab-httpd");
    lab.restart_box(&spec_b, BOOT).unwrap();
    for name in ["box-a", "box-b"] {
        lab.box_named(name)
            .unwrap()
            .wait_reply("cluster status", "this box: 8 bucket(s)", SETTLE)
            .unwrap();
    }
    for (i, connection) in long_lived.iter_mut().enumerate() {
        let served = connection
            .echo(&format!("back-{i}"))
            .unwrap_or_else(|e| panic!("connection {i} opened while box-a was alone: {e}"));
        assert_eq!(served, "box-a", "connection {i}");
    }
    let again = requests(&client, 60);
    let failed: Vec<&String> = again.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(failed.is_empty(), "failed connections: {failed:?}");
    let (on_a, on_b) = (count(&again, "box-a"), count(&again, "box-b"));
    eprintln!("split after box-b's return: box-a {on_a}, box-b {on_b}");
    assert!(on_a >= 10 && on_b >= 10, "split {on_a} / {on_b}");
}

/// One connection to the lab responder's line echo (port 7).
struct Echo {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Echo {
    /// Sends `text`, returns the box that echoed it (`served-by <box> <text>`).
    fn echo(&mut self, text: &str) -> Result<String, String> {
        self.stream
            .write_all(format!("{text}\n").as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .map_err(|e| format!("read: {e}"))?;
        let rest = line
            .trim_end()
            .strip_prefix("served-by ")
            .ok_or_else(|| format!("echo {line:?}"))?;
        match rest.split_once(' ') {
            Some((name, echoed)) if echoed == text => Ok(name.to_owned()),
            _ => Err(format!("echo {line:?} for {text:?}")),
        }
    }
}

/// `count` connections to the shared address's echo port from the client netns.
fn echo_connections(client: &str, count: usize) -> Vec<Echo> {
    spawn_in(client, move || {
        (0..count)
            .map(|i| {
                let address: SocketAddr = format!("{VIP}:7").parse().unwrap();
                let stream = TcpStream::connect_timeout(&address, Duration::from_secs(10))
                    .unwrap_or_else(|e| panic!("echo connection {i}: {e}"));
                stream
                    .set_read_timeout(Some(Duration::from_secs(20)))
                    .unwrap();
                let reader = BufReader::new(stream.try_clone().unwrap());
                Echo { stream, reader }
            })
            .collect()
    })
    .unwrap()
    .join()
    .unwrap()
    .unwrap()
}
