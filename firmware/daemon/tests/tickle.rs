//! Tickle ACKs on the host tier (seed 000): after a takeover the new master resets the clients
//! its dead partner was serving, instead of leaving them hanging until TCP gives up.
//!
//! Box A (priority 200) and box B (priority 100) run `tandem run` in their own namespaces on a
//! bridged public segment with a client namespace, and a veth pair is the peer cable between
//! them. A server in A's namespace holds accepted connections without ever writing; the client
//! connects to the VIP and to A's own address and blocks in read. Once B's `vrrp status` shows
//! it learned the VIP connection over the peer cable, A's tandem is SIGKILLed and A's public
//! link taken down: B takes the VIP, tickles the client, and the client's VIP connection ends
//! with a reset. The connection to A's own address (not on a VIP, never reported) stays open.
//! Both families: an IPv4 VIP and an IPv6 VIP (VRRPv3 over IPv6, IPv6 tickles).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::io::{ErrorKind, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tandem_lab::host::{wait_tandem_query, HostProcess, HostSegment, ScratchDir, TandemRun};
use tandem_lab::netns::{veth_pair, Netns};

/// The binary under test.
const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
/// Addresses of one family: VIP, A's own, B's own, the client's, prefix length.
#[derive(Clone, Copy)]
struct Plan {
    vip: &'static str,
    a_own: &'static str,
    b_own: &'static str,
    client: &'static str,
    prefix: u8,
}

const IPV4: Plan = Plan {
    vip: "192.0.2.10",
    a_own: "192.0.2.2",
    b_own: "192.0.2.3",
    client: "192.0.2.50",
    prefix: 24,
};

const IPV6: Plan = Plan {
    vip: "2001:db8::10",
    a_own: "2001:db8::2",
    b_own: "2001:db8::3",
    client: "2001:db8::50",
    prefix: 64,
};

impl Plan {
    fn socket(&self, address: &str) -> SocketAddr {
        SocketAddr::new(address.parse().unwrap(), PORT)
    }
}
const PORT: u16 = 7000;
/// Upper bound for any step (elections run at 100 ms adverts here).
const LIMIT: Duration = Duration::from_secs(15);

/// How a held connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    Reset,
    Eof,
    Timeout,
    Error(String),
}

struct Pair {
    _segment: HostSegment,
    a: Netns,
    b: Netns,
    client: Netns,
    dir: ScratchDir,
    plan: Plan,
}

impl Pair {
    fn new(tag: &str, plan: Plan) -> Pair {
        let mut segment = HostSegment::new(&format!("{tag}-sg")).unwrap();
        let a = Netns::new(&format!("{tag}-a")).unwrap();
        let b = Netns::new(&format!("{tag}-b")).unwrap();
        let client = Netns::new(&format!("{tag}-c")).unwrap();
        for (ns, own) in [(&a, plan.a_own), (&b, plan.b_own), (&client, plan.client)] {
            segment.attach(ns, "eth0").unwrap();
            let address = format!("{own}/{}", plan.prefix);
            ns.ip(&["addr", "add", &address, "dev", "eth0", "nodad"])
                .unwrap();
        }
        veth_pair(&a, "peer", &b, "peer").unwrap();
        let dir = ScratchDir::new(tag).unwrap();
        Pair {
            _segment: segment,
            a,
            b,
            client,
            dir,
            plan,
        }
    }

    fn control(&self, name: &str) -> PathBuf {
        self.dir.path.join(format!("{name}.sock"))
    }

    fn start(&self, name: &str, ns: &Netns, own: &str, priority: u8) -> HostProcess {
        let (vip, prefix) = (self.plan.vip, self.plan.prefix);
        let config = format!(
            "[system]\nhostname = \"{name}\"\n\n\
             [peer_link]\ninterface = \"peer\"\n\n\
             [[interfaces]]\nname = \"eth0\"\naddresses = [\"{own}/{prefix}\"]\n\n\
             [[interfaces]]\nname = \"peer\"\n\n\
             [[vrrp]]\nname = \"web\"\nvrid = 61\ninterface = \"eth0\"\npriority = {priority}\n\
             advert_interval_cs = 10\naccept_mode = true\n\n\
             [[vrrp.vips]]\naddress = \"{vip}\"\nprefix = {prefix}\n"
        );
        let control = self.control(name);
        TandemRun {
            tandem: Path::new(TANDEM),
            dir: &self.dir.path,
            name,
            control: Some(&control),
        }
        .start(ns, &config, "vrrp: running", LIMIT)
        .unwrap()
    }

    fn wait_status(&self, name: &str, what: &str, check: impl Fn(&str) -> bool) -> String {
        let control = self.control(name);
        wait_tandem_query(TANDEM.as_ref(), &control, &["vrrp", "status"], LIMIT, check)
            .unwrap_or_else(|last| panic!("{name} never reached `{what}`; last status:\n{last}"))
    }
}

/// A server in `ns` that accepts `count` connections on all addresses and hands them back
/// (the caller holds them; nothing is ever written).
fn serve(ns: &Netns, count: usize, ipv6: bool) -> mpsc::Receiver<TcpStream> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (tx, rx) = mpsc::channel();
    ns.spawn(move || {
        let any = if ipv6 { "::" } else { "0.0.0.0" };
        let listener = TcpListener::bind((any, PORT)).unwrap();
        ready_tx.send(()).unwrap();
        for stream in listener.incoming().take(count) {
            let _ = tx.send(stream.unwrap());
        }
    })
    .unwrap();
    ready_rx.recv_timeout(LIMIT).unwrap();
    rx
}

/// Connects from `ns` to `to` and blocks in read for up to `limit`; the first receiver says
/// "connected", the second how the connection ended.
fn hold(
    ns: &Netns,
    to: SocketAddr,
    limit: Duration,
) -> (mpsc::Receiver<()>, mpsc::Receiver<Ending>) {
    let (connected_tx, connected_rx) = mpsc::channel();
    let (ended_tx, ended_rx) = mpsc::channel();
    ns.spawn(move || {
        let mut stream = match TcpStream::connect_timeout(&to, LIMIT) {
            Ok(stream) => stream,
            Err(error) => {
                let _ = ended_tx.send(Ending::Error(format!("connect: {error}")));
                return;
            }
        };
        let _ = connected_tx.send(());
        stream.set_read_timeout(Some(limit)).unwrap();
        let mut buffer = [0u8; 64];
        let ending = match stream.read(&mut buffer) {
            Ok(0) => Ending::Eof,
            Ok(n) => Ending::Error(format!("{n} unexpected bytes")),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => Ending::Reset,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Ending::Timeout
            }
            Err(e) => Ending::Error(e.to_string()),
        };
        let _ = ended_tx.send(ending);
    })
    .unwrap();
    (connected_rx, ended_rx)
}

/// From A's namespace to B's link-local address on the peer cable: garbage, a well-formed
/// (empty) list of another pair, and a well-formed list of this pair with hop limit 64.
fn forge_on_peer_cable(pair: &Pair) {
    let out = pair
        .b
        .ip(&["-6", "-o", "addr", "show", "dev", "peer", "scope", "link"])
        .unwrap();
    let b_link_local: std::net::Ipv6Addr = out
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .unwrap()
        .parse()
        .unwrap();
    let scope = pair.a.ifindex("peer").unwrap();
    pair.a
        .run(move || {
            use tandem_wire::peer_message::{PeerMessageRepr, MAX_DATAGRAM_LEN};
            let to = std::net::SocketAddrV6::new(b_link_local, 5539, 0, scope);
            let socket = std::net::UdpSocket::bind("[::]:0").unwrap();
            let hops = |hops: i32| {
                nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::Ipv6Ttl, &hops)
                    .unwrap();
            };
            let list = |pair_id: u64| {
                let mut buffer = vec![0u8; MAX_DATAGRAM_LEN];
                let repr = PeerMessageRepr {
                    pair_id,
                    epoch: 1,
                    sequence: u64::MAX,
                    chunk_index: 0,
                    chunk_count: 1,
                    entries: &[],
                };
                let len = repr.emit(&mut buffer, None).unwrap();
                buffer.truncate(len);
                buffer
            };
            hops(255);
            socket.send_to(&[0u8; 40], to).unwrap();
            socket.send_to(&list(99), to).unwrap();
            hops(64);
            socket.send_to(&list(0), to).unwrap();
        })
        .unwrap();
}

#[test]
fn the_new_master_resets_the_dead_partners_ipv4_clients_and_only_those() {
    takeover_resets_the_vip_clients(Pair::new("tk4", IPV4));
}

#[test]
fn the_new_master_resets_the_dead_partners_ipv6_clients_and_only_those() {
    takeover_resets_the_vip_clients(Pair::new("tk6", IPV6));
}

fn takeover_resets_the_vip_clients(pair: Pair) {
    let plan = pair.plan;
    let mut box_a = pair.start("box-a", &pair.a, plan.a_own, 200);
    let _box_b = pair.start("box-b", &pair.b, plan.b_own, 100);
    pair.wait_status("box-a", "MASTER", |s| s.contains("state MASTER"));
    pair.wait_status("box-b", "BACKUP", |s| s.contains("state BACKUP"));

    let accepted = serve(&pair.a, 2, plan.prefix == 64);
    let vip = plan.socket(plan.vip);
    let own = plan.socket(plan.a_own);
    let (vip_connected, vip_ended) = hold(&pair.client, vip, Duration::from_secs(60));
    vip_connected.recv_timeout(LIMIT).unwrap();
    let (own_connected, own_ended) = hold(&pair.client, own, Duration::from_secs(60));
    own_connected.recv_timeout(LIMIT).unwrap();
    let _held: Vec<TcpStream> = (0..2)
        .map(|_| accepted.recv_timeout(LIMIT).unwrap())
        .collect();

    // A reports exactly the VIP connection, and B learns it over the peer cable.
    pair.wait_status("box-a", "one reported connection", |s| {
        s.contains("this box reports 1 connections")
    });
    let learned = pair.wait_status("box-b", "the partner's connection", |s| {
        s.contains("tickle web: partner reported 1 connection on its VIPs")
    });
    assert!(learned.contains("no takeover yet"), "{learned}");
    assert!(learned.contains("refused: none"), "{learned}");

    // Hostile datagrams on the peer cable are counted by reason and change nothing.
    forge_on_peer_cable(&pair);
    let hardened = pair.wait_status("box-b", "refusals counted", |s| {
        s.contains("bad magic 1") && s.contains("hop limit not 255 1") && s.contains("wrong pair 1")
    });
    assert!(
        hardened.contains("tickle web: partner reported 1 connection on its VIPs"),
        "{hardened}"
    );

    // A dies hard and leaves the segment.
    box_a.signal(Signal::SIGKILL).unwrap();
    box_a.wait(LIMIT).ok();
    pair.a.ip(&["link", "set", "eth0", "down"]).unwrap();
    let killed = Instant::now();

    pair.wait_status("box-b", "MASTER", |s| s.contains("state MASTER"));
    let ending = vip_ended.recv_timeout(LIMIT).unwrap();
    assert_eq!(ending, Ending::Reset, "the VIP connection must be reset");
    let reset_after = killed.elapsed();
    let status = pair.wait_status("box-b", "tickles sent", |s| {
        s.contains("last takeover tickled 1 (3 packets, 0 send errors)")
    });
    assert!(
        status.contains("partner reported 0 connections on its VIPs"),
        "the list is used once: {status}"
    );
    // The connection to A's own address was never reported: nobody touches it.
    assert_eq!(
        own_ended.recv_timeout(Duration::from_secs(3)),
        Err(mpsc::RecvTimeoutError::Timeout),
        "the connection to A's own address must stay open"
    );
    eprintln!("client reset {reset_after:?} after the master was killed");
}
