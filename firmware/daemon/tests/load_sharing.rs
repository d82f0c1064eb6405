//! Load sharing (CLUSTERIP on nftables) on the host tier: two `tandem run` boxes on a bridged
//! service LAN, joined by a veth peer cable, sharing one address behind a multicast MAC, each
//! with a small TCP responder that says which box it is.
//!
//! - Split: >= 200 connections from the client, each answered by exactly one box, none
//!   failing, the split within 35-65 %.
//! - Partner killed (SIGKILL and its links down): the survivor takes every bucket (on the
//!   heartbeat's loss and the silent LAN probe) and answers every new connection.
//! - Partner back: the split is restored, and the connections the survivor opened while alone
//!   (half of them in the buckets that move back) keep working: no reset.
//! - Frames for the shared address that hash to the other box never reach a local socket: the
//!   boxes' drop counters grow while each box's responder only ever sees its own share.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::ops::Deref;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tandem_lab::host::{tandem_query, HostProcess};
use tandem_lab::netns::Netns;
use tandem_lab::pair_lan::{PairLan, A_OWN, B_OWN};

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const LIMIT: Duration = Duration::from_secs(20);
const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);
const PORT: u16 = 8080;
const BUCKETS: u8 = 16;

/// The LAN (client, box A, box B), the cable and a responder on each box.
struct Pair {
    lan: PairLan,
    /// Connections each box's responder accepted.
    accepted: [Arc<AtomicU64>; 2],
}

/// A responder in `ns`: every connection first hears `name`, then gets each line echoed.
fn responder(ns: &Netns, name: &'static str, accepted: Arc<AtomicU64>) {
    let listener = ns
        .run(|| TcpListener::bind(("0.0.0.0", PORT)))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            accepted.fetch_add(1, Ordering::Relaxed);
            std::thread::spawn(move || {
                if stream.write_all(format!("{name}\n").as_bytes()).is_err() {
                    return;
                }
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if stream.write_all(line.as_bytes()).is_err() {
                        return;
                    }
                    line.clear();
                }
            });
        }
    });
}

/// One connection to the shared address and the box that answered it.
struct Connection {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    served_by: String,
}

impl Connection {
    /// Sends a line and reads it back: the connection still works end to end.
    fn echo(&mut self, text: &str) -> Result<(), String> {
        self.stream
            .write_all(format!("{text}\n").as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let mut line = String::new();
        self.reader
            .read_line(&mut line)
            .map_err(|e| format!("read: {e}"))?;
        if line.trim_end() == text {
            Ok(())
        } else {
            Err(format!("echo {line:?} for {text:?}"))
        }
    }
}

impl Deref for Pair {
    type Target = PairLan;
    fn deref(&self) -> &PairLan {
        &self.lan
    }
}

impl Pair {
    fn new(tag: &str) -> Pair {
        let lan = PairLan::new(tag, Path::new(TANDEM), LIMIT, &[]).unwrap();
        let accepted = [Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))];
        responder(&lan.a, "a", Arc::clone(&accepted[0]));
        responder(&lan.b, "b", Arc::clone(&accepted[1]));
        Pair { lan, accepted }
    }

    fn start(&self, name: &str) -> HostProcess {
        let (own, first) = if name == "a" { (A_OWN, 1) } else { (B_OWN, 2) };
        let local: Vec<String> = (first..=BUCKETS)
            .step_by(2)
            .map(|n| n.to_string())
            .collect();
        let config = format!(
            "[system]\nhostname = \"{name}\"\n\n\
             [peer_link]\ninterface = \"peer\"\n\n\
             [[interfaces]]\nname = \"eth0\"\naddresses = [\"{own}/24\"]\n\n\
             [[interfaces]]\nname = \"peer\"\n\n\
             [[clusterip]]\nname = \"web\"\nvip = \"{VIP}\"\ninterface = \"eth0\"\n\
             multicast_mac = \"01:00:5e:7f:00:01\"\nhash = \"source-ip-port\"\nhash_init = 4242\n\
             total_nodes = {BUCKETS}\nlocal_nodes = [{}]\n",
            local.join(", ")
        );
        self.run(name, &config, "cluster: group web:").unwrap()
    }

    /// Waits until box `name` holds `count` buckets.
    fn wait_holding(&self, name: &str, count: u8) -> String {
        let line = format!("this box: {count} bucket(s)");
        self.wait(name, &["cluster", "status"], &line, |text| {
            text.contains(&line)
        })
    }

    /// Opens `count` connections from the client (a new source port each) and reads who
    /// answered. A connection that fails fails the test.
    fn connect(&self, count: usize) -> Vec<Connection> {
        self.client
            .run(move || {
                (0..count)
                    .map(|i| {
                        let address = SocketAddr::from((VIP, PORT));
                        let stream = TcpStream::connect_timeout(&address, Duration::from_secs(5))
                            .unwrap_or_else(|e| panic!("connection {i} to {address}: {e}"));
                        stream
                            .set_read_timeout(Some(Duration::from_secs(5)))
                            .unwrap();
                        let mut reader = BufReader::new(stream.try_clone().unwrap());
                        let mut served_by = String::new();
                        reader
                            .read_line(&mut served_by)
                            .unwrap_or_else(|e| panic!("connection {i}: no greeting: {e}"));
                        Connection {
                            stream,
                            reader,
                            served_by: served_by.trim_end().to_owned(),
                        }
                    })
                    .collect()
            })
            .unwrap()
    }
}

fn served_by(connections: &[Connection], name: &str) -> usize {
    connections.iter().filter(|c| c.served_by == name).count()
}

#[test]
fn two_boxes_share_one_address_take_over_a_dead_partner_and_give_its_buckets_back() {
    let pair = Pair::new("ls");
    let mut a = pair.start("a");
    let b = pair.start("b");
    pair.wait(
        "a",
        &["cluster", "status"],
        "the partner's buckets",
        |text| text.contains("partner: 8 bucket(s) 2,4,6"),
    );
    pair.wait_holding("a", 8);
    pair.wait_holding("b", 8);

    // The split: every connection answered by exactly one box (the other dropped its SYN:
    // a second answer would reset the connection), none failed.
    let before = pair.accepted.each_ref().map(|n| n.load(Ordering::Relaxed));
    let mut split = pair.connect(200);
    let on_a = served_by(&split, "a");
    let on_b = served_by(&split, "b");
    eprintln!("split of 200 connections: a {on_a}, b {on_b}");
    assert_eq!(on_a + on_b, 200);
    assert!(
        (70..=130).contains(&on_a),
        "split {on_a} a / {on_b} b is outside 35-65 %"
    );
    // Each responder saw exactly its own connections: the other box's frames never reached a
    // local socket.
    let after = pair.accepted.each_ref().map(|n| n.load(Ordering::Relaxed));
    assert_eq!(
        [after[0] - before[0], after[1] - before[1]],
        [on_a as u64, on_b as u64]
    );
    for (i, connection) in split.iter_mut().enumerate() {
        connection.echo(&format!("split-{i}")).unwrap();
    }
    for name in ["a", "b"] {
        let status = tandem_query(TANDEM.as_ref(), &pair.control(name), &["cluster", "status"]);
        let dropped = status
            .lines()
            .find_map(|line| line.split("dropped ").nth(1))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or_else(|| panic!("no drop counter on {name}:\n{status}"));
        assert!(dropped > 0, "box {name} dropped nothing:\n{status}");
    }
    drop(split);

    // Box B dies: frozen, links dark, killed.
    let mut b = b;
    b.signal(nix::sys::signal::Signal::SIGSTOP).unwrap();
    let batch = pair.dir.path.join("dark.batch");
    std::fs::write(&batch, "link set eth0 down\nlink set peer down\n").unwrap();
    pair.b.ip(&["-batch", batch.to_str().unwrap()]).unwrap();
    b.signal(nix::sys::signal::Signal::SIGKILL).unwrap();
    let _ = b.wait(Duration::from_secs(5));
    let status = pair.wait_holding("a", BUCKETS);
    assert!(
        status.contains("partner silent on the service LAN"),
        "{status}"
    );
    assert!(status.contains("taken over: 2,4,6"), "{status}");
    eprintln!("a after b died:\n{status}");
    let mut alone = pair.connect(100);
    assert_eq!(served_by(&alone, "a"), 100, "a dead box answered");

    // B is back: the buckets move back, A's connections (half of them in B's buckets) live on.
    pair.b.ip(&["link", "set", "eth0", "up"]).unwrap();
    pair.b.ip(&["link", "set", "peer", "up"]).unwrap();
    let _b = pair.start("b");
    pair.wait_holding("b", 8);
    let status = pair.wait_holding("a", 8);
    assert!(status.contains("released 8 bucket(s)"), "{status}");
    eprintln!("a after b came back:\n{status}");
    for (i, connection) in alone.iter_mut().enumerate() {
        connection
            .echo(&format!("after-{i}"))
            .unwrap_or_else(|e| panic!("connection {i} opened while a was alone broke: {e}"));
    }
    let again = pair.connect(200);
    let on_a = served_by(&again, "a");
    assert!(
        (70..=130).contains(&on_a),
        "split after the return {on_a} a / {} b",
        200 - on_a
    );
    a.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    let _ = a.wait(Duration::from_secs(5));
}

#[test]
fn rules_that_vanished_from_the_kernel_are_rebuilt_at_the_next_move() {
    let pair = Pair::new("lsr");
    let _a = pair.start("a");
    // Alone past the boot grace: a serves every bucket.
    pair.wait_holding("a", BUCKETS);
    // Someone removes the table behind the engine's back.
    pair.a
        .exec("nft", &["delete", "table", "ip", "tandem_cluster"])
        .unwrap();
    // b arrives: a's release fails on the missing sets, a rebuilds its rules from the
    // running config and the move completes.
    let _b = pair.start("b");
    pair.wait("a", &["log"], "the failed move", |text| {
        text.contains("cluster: moving buckets failed")
    });
    pair.wait_holding("a", 8);
    pair.wait_holding("b", 8);
    let rules = pair
        .a
        .exec("nft", &["list", "table", "ip", "tandem_cluster"])
        .unwrap();
    assert!(rules.contains("jhash"), "{rules}");
    let connections = pair.connect(60);
    assert_eq!(connections.len(), 60);
    assert!(served_by(&connections, "a") > 0 && served_by(&connections, "b") > 0);
}
