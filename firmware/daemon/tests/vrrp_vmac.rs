//! VRRP `use_vmac` on the host tier: `tandem run` boxes (and keepalived) in network namespaces
//! on one bridged segment, with a client namespace that pings the virtual address and an
//! `AF_PACKET` socket in the client that sees every frame the segment floods to it.
//!
//! What must hold: each box makes the macvlan (`vrrp.51`, private mode, the virtual router MAC
//! 00:00:5e:00:01:33 / 00:00:5e:00:02:33), the master holds the VIP on it, the client's
//! neighbour entry for the VIP is the virtual MAC (also after the master asked the client's MAC
//! itself), adverts and gratuitous ARPs on the wire come from the virtual MAC and never from a
//! box's own MAC, no IGMP report of the VRRP group leaves from the virtual MAC, a failover moves
//! the VIP and the bridge learns the virtual MAC on the other box's port, a cable pulled from
//! the master's interface faults it (the macvlan follows its parent), the macvlan goes when
//! the daemon stops or `use_vmac` is turned off live, and keepalived with `use_vmac` on the
//! other side elects and fails over with it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tandem_lab::host::{
    keepalived, tandem_query, wait_tandem_query, HostProcess, HostSegment, ScratchDir, TandemRun,
};
use tandem_lab::netns::Netns;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const VRID: u8 = 51;
const VMAC4: &str = "00:00:5e:00:01:33";
const VMAC6: &str = "00:00:5e:00:02:33";
const VIP4: &str = "192.0.2.100";
const VIP6: &str = "2001:db8::100";
/// Upper bound for any takeover or convergence (adverts every 100 ms).
const WAIT: Duration = Duration::from_secs(15);

/// One frame the client saw, as far as these tests look.
#[derive(Debug, Clone)]
struct Frame {
    source_mac: String,
    /// IPv4 protocol or IPv6 next header after a hop-by-hop header.
    protocol: Option<u8>,
    ip_source: Option<IpAddr>,
    /// ARP: the sender's hardware and protocol address.
    arp_sender: Option<(String, Ipv4Addr)>,
    /// ICMPv6 type and, for MLDv1, its group.
    icmpv6: Option<(u8, Option<Ipv6Addr>)>,
}

fn mac_text(bytes: &[u8]) -> String {
    let parts: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

fn parse_frame(bytes: &[u8]) -> Option<Frame> {
    let source_mac = mac_text(bytes.get(6..12)?);
    let ethertype = u16::from_be_bytes([*bytes.get(12)?, *bytes.get(13)?]);
    let payload = bytes.get(14..)?;
    let mut frame = Frame {
        source_mac,
        protocol: None,
        ip_source: None,
        arp_sender: None,
        icmpv6: None,
    };
    match ethertype {
        0x0800 => {
            frame.protocol = payload.get(9).copied();
            let src: [u8; 4] = payload.get(12..16)?.try_into().ok()?;
            frame.ip_source = Some(IpAddr::V4(src.into()));
        }
        0x86dd => {
            let src: [u8; 16] = payload.get(8..24)?.try_into().ok()?;
            frame.ip_source = Some(IpAddr::V6(src.into()));
            let mut next = *payload.get(6)?;
            let mut at = 40;
            if next == 0 {
                next = *payload.get(at)?;
                at += (usize::from(*payload.get(at + 1)?) + 1) * 8;
            }
            frame.protocol = Some(next);
            if next == 58 {
                let kind = *payload.get(at)?;
                let group = payload
                    .get(at + 8..at + 24)
                    .and_then(|g| <[u8; 16]>::try_from(g).ok())
                    .map(Ipv6Addr::from);
                frame.icmpv6 = Some((kind, group.filter(|_| matches!(kind, 131 | 132))));
            }
        }
        0x0806 => {
            let sender_ip: [u8; 4] = payload.get(14..18)?.try_into().ok()?;
            frame.arp_sender = Some((mac_text(payload.get(8..14)?), sender_ip.into()));
        }
        _ => {}
    }
    Some(frame)
}

/// Every frame arriving at the client's `eth0` while it runs.
struct Capture {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Result<Vec<Frame>, String>>,
}

impl Capture {
    fn start(client: &Netns) -> Capture {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let (ready, opened) = std::sync::mpsc::channel();
        let thread = client
            .spawn(move || {
                // ETH_P_ALL in network byte order.
                let socket = socket2::Socket::new(
                    socket2::Domain::PACKET,
                    socket2::Type::RAW,
                    Some(socket2::Protocol::from(i32::from(0x0003u16.to_be()))),
                )
                .unwrap();
                socket
                    .set_read_timeout(Some(Duration::from_millis(50)))
                    .unwrap();
                ready.send(()).unwrap();
                let mut frames = Vec::new();
                let mut buffer = vec![0u8; 2048];
                let mut reader = &socket;
                while !flag.load(Ordering::Relaxed) {
                    if let Ok(length) = reader.read(&mut buffer) {
                        frames.extend(parse_frame(&buffer[..length]));
                    }
                }
                frames
            })
            .unwrap();
        opened.recv_timeout(Duration::from_secs(5)).unwrap();
        Capture { stop, thread }
    }

    fn finish(self) -> Vec<Frame> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap().unwrap()
    }
}

/// A box on the segment: its namespace and its own addresses.
struct Node {
    ns: Netns,
    v4: &'static str,
    /// The bridge port it hangs on (`p1`, `p2`, ...).
    port: String,
}

impl Node {
    fn mac(&self) -> String {
        let out = self.ns.ip(&["-o", "link", "show", "dev", "eth0"]).unwrap();
        out.split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .unwrap()
            .to_owned()
    }

    fn link_local(&self) -> Ipv6Addr {
        let out = self
            .ns
            .ip(&["-6", "-o", "addr", "show", "dev", "eth0", "scope", "link"])
            .unwrap();
        let word = out
            .split_whitespace()
            .skip_while(|w| *w != "inet6")
            .nth(1)
            .unwrap();
        word.split('/').next().unwrap().parse().unwrap()
    }

    fn holds(&self, link: &str, vip: &str) -> bool {
        self.ns
            .ip(&["-o", "addr", "show", "dev", link])
            .is_ok_and(|out| out.contains(&format!(" {vip}/")))
    }

    fn has_link(&self, link: &str) -> bool {
        self.ns.ip(&["link", "show", "dev", link]).is_ok()
    }

    fn knob(&self, key: &str) -> String {
        self.ns
            .exec("cat", &[&format!("/proc/sys/net/{key}")])
            .unwrap()
            .trim()
            .to_owned()
    }
}

struct Site {
    segment: HostSegment,
    a: Node,
    b: Node,
    client: Node,
    dir: ScratchDir,
    ipv6: bool,
}

impl Site {
    fn new(tag: &str, ipv6: bool) -> Site {
        let mut segment = HostSegment::new(&format!("{tag}-sg")).unwrap();
        let mut nodes = Vec::new();
        for (index, (suffix, v4, v6)) in [
            ("a", "192.0.2.2", "2001:db8::2"),
            ("b", "192.0.2.3", "2001:db8::3"),
            ("c", "192.0.2.10", "2001:db8::10"),
        ]
        .into_iter()
        .enumerate()
        {
            let ns = Netns::new(&format!("{tag}-{suffix}")).unwrap();
            segment.attach(&ns, "eth0").unwrap();
            ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", "eth0"])
                .unwrap();
            ns.ip(&["addr", "add", &format!("{v6}/64"), "dev", "eth0", "nodad"])
                .unwrap();
            nodes.push(Node {
                ns,
                v4,
                port: format!("p{}", index + 1),
            });
        }
        let client = nodes.pop().unwrap();
        let b = nodes.pop().unwrap();
        let a = nodes.pop().unwrap();
        // Link-local addresses come a moment after the links are up.
        for node in [&a, &b] {
            let started = Instant::now();
            while node
                .ns
                .ip(&[
                    "-6",
                    "addr",
                    "show",
                    "dev",
                    "eth0",
                    "scope",
                    "link",
                    "tentative",
                ])
                .is_ok_and(|o| o.contains("inet6"))
                || !node
                    .ns
                    .ip(&["-6", "addr", "show", "dev", "eth0", "scope", "link"])
                    .is_ok_and(|o| o.contains("fe80"))
            {
                assert!(started.elapsed() < WAIT, "no link-local address");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Site {
            segment,
            a,
            b,
            client,
            dir: ScratchDir::new(tag).unwrap(),
            ipv6,
        }
    }

    fn vip(&self) -> &'static str {
        if self.ipv6 {
            VIP6
        } else {
            VIP4
        }
    }

    fn control(&self, node: &Node) -> PathBuf {
        self.dir.path.join(format!("{}.sock", node.ns.name))
    }

    fn tandem_config(&self, node: &Node, priority: u8, use_vmac: bool) -> String {
        self.tandem_config_with(node, priority, use_vmac, "")
    }

    /// [`Site::tandem_config`] with `extra` lines in the instance.
    fn tandem_config_with(&self, node: &Node, priority: u8, use_vmac: bool, extra: &str) -> String {
        let prefix = if self.ipv6 { 64 } else { 24 };
        let v6 = if node.v4.ends_with(".2") {
            "2001:db8::2"
        } else {
            "2001:db8::3"
        };
        format!(
            "[system]\nhostname = \"{}\"\n\n[[interfaces]]\nname = \"eth0\"\naddresses = [\"{}/24\", \"{v6}/64\"]\n\n\
             [[vrrp]]\nname = \"vi\"\nvrid = {VRID}\ninterface = \"eth0\"\npriority = {priority}\nadvert_interval_cs = 10\n\
             accept_mode = true\nuse_vmac = {use_vmac}\n{extra}\n\n[[vrrp.vips]]\naddress = \"{}\"\nprefix = {prefix}\n\n\
             [vrrp.garp]\nmaster_delay_s = 1\nmaster_repeat = 2\n",
            node.ns.name,
            node.v4,
            self.vip()
        )
    }

    fn start_tandem(&self, node: &Node, priority: u8, use_vmac: bool) -> HostProcess {
        self.start_tandem_with(node, &self.tandem_config(node, priority, use_vmac))
    }

    fn start_tandem_with(&self, node: &Node, config: &str) -> HostProcess {
        let control = self.control(node);
        TandemRun {
            tandem: Path::new(TANDEM),
            dir: &self.dir.path,
            name: &node.ns.name,
            control: Some(&control),
        }
        .start(&node.ns, config, "vrrp: running", Duration::from_secs(20))
        .unwrap()
    }

    fn keepalived_config(&self, priority: u8) -> String {
        let prefix = if self.ipv6 { 64 } else { 24 };
        format!(
            "global_defs {{\n  router_id keepalived\n  vrrp_version 3\n}}\n\
             vrrp_instance VI {{\n  state BACKUP\n  interface eth0\n  use_vmac\n  virtual_router_id {VRID}\n  priority {priority}\n  advert_int 0.1\n\
             \n  virtual_ipaddress {{\n    {}/{prefix} dev eth0\n  }}\n}}\n",
            self.vip()
        )
    }

    fn status(&self, node: &Node) -> String {
        tandem_query(TANDEM.as_ref(), &self.control(node), &["vrrp", "status"])
    }

    fn ask(&self, node: &Node, words: &[&str]) -> String {
        tandem_query(TANDEM.as_ref(), &self.control(node), words)
    }

    fn wait_status(&self, node: &Node, what: &str, check: impl Fn(&str) -> bool) -> String {
        wait_tandem_query(
            TANDEM.as_ref(),
            &self.control(node),
            &["vrrp", "status"],
            WAIT,
            check,
        )
        .unwrap_or_else(|last| {
            panic!(
                "{} never reached `{what}`; last status:\n{last}",
                node.ns.name
            )
        })
    }

    fn wait(&self, what: &str, check: impl Fn() -> bool) {
        let started = Instant::now();
        while !check() {
            assert!(started.elapsed() < WAIT, "never: {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Pings the VIP from the client until one answer comes back.
    fn client_reaches_vip(&self) {
        let ping = if self.ipv6 { "ping6" } else { "ping" };
        let started = Instant::now();
        while self
            .client
            .ns
            .exec(ping, &["-c", "1", "-W", "1", self.vip()])
            .is_err()
        {
            assert!(
                started.elapsed() < WAIT,
                "client never reached {}",
                self.vip()
            );
        }
    }

    /// The MAC the client's neighbour table has for the VIP.
    fn client_neighbour(&self) -> String {
        let out = self
            .client
            .ns
            .ip(&["neigh", "show", "to", self.vip(), "dev", "eth0"])
            .unwrap();
        out.split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .unwrap_or_default()
            .to_owned()
    }

    /// The bridge port the segment learned `mac` on.
    fn learned_port(&self, mac: &str) -> String {
        let out = self
            .segment
            .netns
            .exec("bridge", &["fdb", "show", "br", "br0"])
            .unwrap();
        out.lines()
            .find(|l| l.starts_with(mac))
            .and_then(|l| l.split_whitespace().nth(2))
            .unwrap_or_default()
            .to_owned()
    }

    /// A dead box: the daemon is killed and its kernel no longer answers (its macvlan, with
    /// the VIP on it, goes with it).
    fn crash(&self, process: HostProcess, node: &Node) {
        let child_pid = self.dir.path.join(format!("{}.vrrp.pid", process.name));
        if let Ok(pid) = std::fs::read_to_string(child_pid) {
            let pid = nix::unistd::Pid::from_raw(pid.trim().parse().unwrap());
            let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
        }
        process.signal(Signal::SIGKILL).unwrap();
        drop(process);
        let _ = node.ns.ip(&["link", "del", "vrrp.51"]);
    }
}

/// Adverts (IP protocol 112) the client saw, as (source MAC, source address).
fn adverts(frames: &[Frame]) -> Vec<(String, IpAddr)> {
    frames
        .iter()
        .filter(|f| f.protocol == Some(112))
        .filter_map(|f| f.ip_source.map(|ip| (f.source_mac.clone(), ip)))
        .collect()
}

#[test]
fn a_tandem_pair_serves_the_virtual_mac_and_fails_over() {
    let site = Site::new("vmp", false);
    let capture = Capture::start(&site.client.ns);
    let a = site.start_tandem(&site.a, 200, true);
    let status = site.wait_status(&site.a, "MASTER", |s| s.contains("state MASTER"));
    assert!(
        status.contains("virtual addresses: 192.0.2.100/24 on vrrp.51"),
        "{status}"
    );
    assert!(
        status.contains("vmac vrrp.51 (00:00:5e:00:01:33) on eth0"),
        "{status}"
    );
    let b = site.start_tandem(&site.b, 100, true);
    let status = site.wait_status(&site.b, "BACKUP behind a", |s| {
        s.contains("state BACKUP") && s.contains("master: 192.0.2.2 priority 200")
    });
    // The partner's adverts come from the same virtual MAC: the kernel hands them to the
    // macvlan alone, and the macvlan's socket heard them.
    assert!(
        status.contains("socket vrrp.51 (vmac on eth0) IPv4: received "),
        "{status}"
    );
    assert!(
        !status.contains("socket vrrp.51 (vmac on eth0) IPv4: received 0,"),
        "{status}"
    );
    let detail = site.b.ns.ip(&["-d", "link", "show", "vrrp.51"]).unwrap();
    assert!(
        detail.contains("macvlan mode private") && detail.contains(VMAC4),
        "{detail}"
    );
    assert!(site.a.holds("vrrp.51", VIP4));
    assert!(!site.a.holds("eth0", VIP4));
    assert!(!site.b.holds("vrrp.51", VIP4));
    // keepalived's knobs on the macvlan and its parent, and arp_announce on the parent.
    assert_eq!(site.b.knob("ipv4/conf/vrrp.51/arp_ignore"), "1");
    assert_eq!(site.b.knob("ipv4/conf/vrrp.51/rp_filter"), "0");
    assert_eq!(site.b.knob("ipv6/conf/vrrp.51/disable_ipv6"), "1");
    assert_eq!(site.b.knob("ipv4/conf/eth0/arp_filter"), "1");
    assert_eq!(site.b.knob("ipv4/conf/eth0/arp_announce"), "2");

    site.client_reaches_vip();
    assert_eq!(site.client_neighbour(), VMAC4);
    // The master asks for the client's MAC itself (its entry flushed): the client's entry for
    // the VIP stays on the virtual MAC.
    site.a.ns.ip(&["neigh", "flush", "dev", "eth0"]).unwrap();
    site.client_reaches_vip();
    assert_eq!(site.client_neighbour(), VMAC4);
    site.wait("the bridge learns the virtual MAC on a's port", || {
        site.learned_port(VMAC4) == site.a.port
    });

    // a's cable pulled: the macvlan follows its parent's carrier, a's tracking of eth0 puts
    // it in FAULT and b takes over; plugged back, a preempts again.
    let port = |up: &str| {
        site.segment
            .netns
            .ip(&["link", "set", &site.a.port, up])
            .unwrap()
    };
    port("down");
    site.wait_status(&site.a, "FAULT", |s| s.contains("state FAULT"));
    let vmac_link = site.a.ns.ip(&["link", "show", "vrrp.51"]).unwrap();
    assert!(!vmac_link.contains("LOWER_UP"), "{vmac_link}");
    assert!(!site.a.holds("vrrp.51", VIP4));
    site.wait_status(&site.b, "MASTER while a is cut off", |s| {
        s.contains("state MASTER")
    });
    port("up");
    site.wait_status(&site.a, "MASTER again", |s| s.contains("state MASTER"));
    site.wait_status(&site.b, "BACKUP again", |s| s.contains("state BACKUP"));
    site.wait("a holds the VIP again", || site.a.holds("vrrp.51", VIP4));
    site.client_reaches_vip();
    assert_eq!(site.client_neighbour(), VMAC4);

    // a dies: b takes the VIP; the client keeps its entry and reaches b through it.
    site.crash(a, &site.a);
    site.wait_status(&site.b, "MASTER", |s| s.contains("state MASTER"));
    site.wait("b holds the VIP on its macvlan", || {
        site.b.holds("vrrp.51", VIP4)
    });
    site.client_reaches_vip();
    assert_eq!(site.client_neighbour(), VMAC4);
    site.wait("the bridge learns the virtual MAC on b's port", || {
        site.learned_port(VMAC4) == site.b.port
    });

    // A clean stop removes the macvlan and puts the parent's knobs back.
    let mut b = b;
    b.signal(Signal::SIGTERM).unwrap();
    assert!(b.wait(Duration::from_secs(10)).unwrap());
    assert!(!site.b.has_link("vrrp.51"));
    assert_eq!(site.b.knob("ipv4/conf/eth0/arp_filter"), "0");
    assert_eq!(site.b.knob("ipv4/conf/eth0/arp_announce"), "0");

    let frames = capture.finish();
    let seen = adverts(&frames);
    let a_ip: IpAddr = "192.0.2.2".parse().unwrap();
    let b_ip: IpAddr = "192.0.2.3".parse().unwrap();
    assert!(seen.iter().any(|(_, ip)| *ip == a_ip), "no advert from a");
    assert!(seen.iter().any(|(_, ip)| *ip == b_ip), "no advert from b");
    let own_macs = [site.a.mac(), site.b.mac()];
    for (mac, ip) in &seen {
        assert_eq!(
            mac, VMAC4,
            "advert from {ip} left from {mac}, not the virtual MAC"
        );
        assert!(!own_macs.contains(mac));
    }
    let garps: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.arp_sender == Some((VMAC4.to_owned(), VIP4.parse().unwrap())))
        .collect();
    assert!(
        garps.len() >= 2,
        "gratuitous ARPs from the virtual MAC: {garps:?}"
    );
    assert!(
        !frames.iter().any(|f| f
            .arp_sender
            .as_ref()
            .is_some_and(|(mac, ip)| *ip == VIP4.parse::<Ipv4Addr>().unwrap() && mac != VMAC4)),
        "an ARP for the VIP from a box's own MAC"
    );
    let reports: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.source_mac == VMAC4 && f.protocol == Some(2))
        .collect();
    assert!(reports.is_empty(), "IGMP from the virtual MAC: {reports:?}");
}

#[test]
fn an_ipv6_pair_serves_the_virtual_mac_without_an_address_of_its_own() {
    let site = Site::new("vm6", true);
    let capture = Capture::start(&site.client.ns);
    let a = site.start_tandem(&site.a, 200, true);
    let status = site.wait_status(&site.a, "MASTER", |s| s.contains("state MASTER"));
    assert!(
        status.contains("vmac vrrp.51 (00:00:5e:00:02:33) on eth0"),
        "{status}"
    );
    let _b = site.start_tandem(&site.b, 100, true);
    site.wait_status(&site.b, "BACKUP behind a", |s| {
        s.contains("state BACKUP") && s.contains("priority 200 advert 10 cs")
    });
    // No link-local (nor any) address on the backup's macvlan: nothing of it reaches the wire.
    let addresses = site
        .b
        .ns
        .ip(&["-6", "addr", "show", "dev", "vrrp.51"])
        .unwrap();
    assert!(!addresses.contains("inet6"), "{addresses}");
    assert!(site.a.holds("vrrp.51", VIP6));
    site.client_reaches_vip();
    assert_eq!(site.client_neighbour(), VMAC6);

    site.crash(a, &site.a);
    site.wait("b holds the VIP on its macvlan", || {
        site.b.holds("vrrp.51", VIP6)
    });
    site.client_reaches_vip();
    assert_eq!(site.client_neighbour(), VMAC6);

    let frames = capture.finish();
    let seen = adverts(&frames);
    let a_ll = IpAddr::V6(site.a.link_local());
    assert!(
        seen.iter().any(|(_, ip)| *ip == a_ll),
        "no advert from a's link-local"
    );
    for (mac, ip) in &seen {
        assert_eq!(mac, VMAC6, "advert from {ip} left from {mac}");
    }
    let group = Some(Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12));
    let reports: Vec<&Frame> = frames
        .iter()
        .filter(|f| f.source_mac == VMAC6)
        .filter(|f| {
            matches!(f.icmpv6, Some((131 | 132, g)) if g == group)
                || matches!(f.icmpv6, Some((143 | 133, _)))
        })
        .collect();
    assert!(
        reports.is_empty(),
        "VRRP group reports from the virtual MAC: {reports:?}"
    );
}

#[test]
fn keepalived_with_use_vmac_elects_and_fails_over_with_tandem() {
    let site = Site::new("vmk", false);
    // keepalived 200 on box b is master; tandem 100 on box a hears it through its macvlan.
    let keepalived_process = keepalived(
        &site.b.ns,
        "keepalived",
        &site.keepalived_config(200),
        &site.dir.path,
    )
    .unwrap();
    keepalived_process
        .console
        .wait_for("Entering MASTER STATE", WAIT)
        .unwrap();
    let detail = site.b.ns.ip(&["-d", "link", "show", "vrrp.51"]).unwrap();
    assert!(detail.contains(VMAC4), "keepalived's vmac: {detail}");
    let _tandem = site.start_tandem(&site.a, 100, true);
    let status = site.wait_status(&site.a, "BACKUP behind keepalived", |s| {
        s.contains("state BACKUP") && s.contains("master: 192.0.2.3 priority 200")
    });
    assert!(status.contains("discarded: none"), "{status}");
    site.client_reaches_vip();
    // (Not the client's neighbour entry here: keepalived leaves arp_announce at 0 on eth0, so
    // its box asks for the client's MAC with the VIP as sender from eth0's own MAC, and the
    // client's entry for the VIP moves there. Tandem sets arp_announce=2 on the parent.)
    site.wait(
        "the bridge learns the virtual MAC on keepalived's port",
        || site.learned_port(VMAC4) == site.b.port,
    );

    // keepalived dies: tandem takes over behind the same MAC.
    site.crash(keepalived_process, &site.b);
    site.wait_status(&site.a, "MASTER", |s| s.contains("state MASTER"));
    // Tandem's gratuitous ARPs from the virtual MAC put the client's entry there.
    site.wait("the client's entry on the virtual MAC", || {
        site.client_neighbour() == VMAC4
    });
    site.client_reaches_vip();
    assert_eq!(site.client_neighbour(), VMAC4);
    site.wait("the bridge learns the virtual MAC on tandem's port", || {
        site.learned_port(VMAC4) == site.a.port
    });

    // keepalived back at 50: it hears tandem's adverts from the virtual MAC on its macvlan and
    // stays backup.
    let again = keepalived(
        &site.b.ns,
        "keepalived-again",
        &site.keepalived_config(50),
        &site.dir.path,
    )
    .unwrap();
    again
        .console
        .wait_for("Entering BACKUP STATE", WAIT)
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        again
            .console
            .wait_for_any_time("Entering MASTER STATE", Duration::from_millis(1))
            .is_err(),
        "keepalived took over although tandem 100 advertises"
    );
    assert!(!site.b.holds("vrrp.51", VIP4));
    assert!(site.status(&site.a).contains("state MASTER"));
}

#[test]
fn use_vmac_turns_on_renames_and_turns_off_live() {
    let site = Site::new("vml", false);
    let _a = site.start_tandem(&site.a, 200, false);
    site.wait_status(&site.a, "MASTER", |s| s.contains("state MASTER"));
    site.wait("a holds the VIP on eth0", || site.a.holds("eth0", VIP4));
    site.client_reaches_vip();
    let own = site.a.mac();
    assert_eq!(site.client_neighbour(), own);

    let commit = |pairs: &[(&str, &str)]| {
        for (path, value) in pairs {
            let answer = site.ask(&site.a, &["set", path, value]);
            assert!(!answer.contains("error"), "set {path}: {answer}");
        }
        let answer = site.ask(&site.a, &["commit"]);
        assert!(answer.contains("applied"), "commit: {answer}");
        answer
    };
    // On: the master's VIP moves to the new macvlan and is announced from the virtual MAC.
    let answer = commit(&[("vrrp.vi.use_vmac", "true")]);
    assert!(
        answer.contains("VIP 192.0.2.100 moved from /24 on eth0 to /24 on vrrp.51"),
        "{answer}"
    );
    assert!(site.a.holds("vrrp.51", VIP4) && !site.a.holds("eth0", VIP4));
    site.wait("the client's entry moves to the virtual MAC", || {
        site.client_neighbour() == VMAC4
    });
    site.client_reaches_vip();
    let status = site.status(&site.a);
    assert!(status.contains("state MASTER"), "no transition: {status}");
    assert!(
        status.contains("transitions by cause: Startup 1, MasterSilent 1"),
        "{status}"
    );

    // Renamed: made under the new name (the old one goes), the VIP follows.
    commit(&[("vrrp.vi.vmac_interface", "vip51")]);
    site.wait("the VIP on vip51", || site.a.holds("vip51", VIP4));
    site.wait("vrrp.51 gone", || !site.a.has_link("vrrp.51"));
    site.client_reaches_vip();
    assert_eq!(site.client_neighbour(), VMAC4);

    // Off: back on eth0 with its own MAC, the macvlan deleted.
    let answer = commit(&[("vrrp.vi.use_vmac", "false")]);
    assert!(answer.contains("to /24 on eth0"), "{answer}");
    site.wait("vip51 deleted", || !site.a.has_link("vip51"));
    assert!(site.a.holds("eth0", VIP4));
    site.wait("the client's entry moves back to a's own MAC", || {
        site.client_neighbour() == own
    });
    site.client_reaches_vip();
    assert!(site.status(&site.a).contains("state MASTER"));
}

#[test]
fn unicast_peers_advertise_from_the_interface_and_keep_the_vip_on_the_virtual_mac() {
    let site = Site::new("vmu", false);
    let unicast = |node: &Node, peer: &Node| {
        format!(
            "unicast_source = \"{}\"\nunicast_peers = [\"{}\"]",
            node.v4, peer.v4
        )
    };
    let capture = Capture::start(&site.client.ns);
    let a = site.start_tandem_with(
        &site.a,
        &site.tandem_config_with(&site.a, 200, true, &unicast(&site.a, &site.b)),
    );
    site.wait_status(&site.a, "MASTER", |s| s.contains("state MASTER"));
    let _b = site.start_tandem_with(
        &site.b,
        &site.tandem_config_with(&site.b, 100, true, &unicast(&site.b, &site.a)),
    );
    // keepalived's vmac_xmit_base: the adverts go between the interfaces (an ARP from the
    // virtual MAC would reach only the partner's macvlan of that MAC, which never answers).
    let status = site.wait_status(&site.b, "BACKUP behind a", |s| {
        s.contains("state BACKUP") && s.contains("master: 192.0.2.2 priority 200")
    });
    assert!(
        status.contains("adverts from eth0 (unicast peers: keepalived's vmac_xmit_base)"),
        "{status}"
    );
    assert!(!status.contains("socket vrrp.51"), "{status}");
    site.client_reaches_vip();
    assert_eq!(site.client_neighbour(), VMAC4);
    site.crash(a, &site.a);
    site.wait("b holds the VIP on its macvlan", || {
        site.b.holds("vrrp.51", VIP4)
    });
    site.client_reaches_vip();
    assert_eq!(site.client_neighbour(), VMAC4);
    let frames = capture.finish();
    let garps = frames
        .iter()
        .filter(|f| f.arp_sender == Some((VMAC4.to_owned(), VIP4.parse().unwrap())))
        .count();
    assert!(garps >= 2, "gratuitous ARPs from the virtual MAC: {garps}");
}
