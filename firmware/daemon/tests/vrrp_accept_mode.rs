//! VRRP Accept_Mode (RFC 9568 section 6.4.3) on the host tier: `tandem run` masters an IPv4
//! and an IPv6 instance on a bridged segment with a client namespace.
//!
//! With `accept_mode = false` (the RFC default) the client's pings to the VIPs get no answer,
//! while ARP and neighbour discovery for them are answered (the client's entries carry tandem's
//! MAC, and a unicast reachability probe to the IPv6 VIP is answered); `vrrp status` counts the
//! drops. An instance that goes BACKUP (keepalived preempts it) leaves the table, and a stopped
//! tandem leaves no table at all. With `accept_mode = true` the pings are answered and no table
//! exists. The table is read back with the host's `nft` (the daemon itself never shells out).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tandem_lab::host::{
    keepalived, tandem_query, wait_tandem_query, HostProcess, HostSegment, ScratchDir, TandemRun,
};
use tandem_lab::netns::Netns;

/// The binary under test.
const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const VIP4: &str = "192.0.2.100";
const VIP6: &str = "2001:db8::100";
const LIMIT: Duration = Duration::from_secs(15);

struct Site {
    _segment: HostSegment,
    tandem_ns: Netns,
    keepalived_ns: Netns,
    client: Netns,
    dir: ScratchDir,
}

impl Site {
    fn new(tag: &str) -> Site {
        let mut segment = HostSegment::new(&format!("{tag}-sg")).unwrap();
        let tandem_ns = Netns::new(&format!("{tag}-t")).unwrap();
        let keepalived_ns = Netns::new(&format!("{tag}-k")).unwrap();
        let client = Netns::new(&format!("{tag}-c")).unwrap();
        for (ns, v4, v6) in [
            (&tandem_ns, "192.0.2.2", "2001:db8::2"),
            (&keepalived_ns, "192.0.2.3", "2001:db8::3"),
            (&client, "192.0.2.10", "2001:db8::10"),
        ] {
            segment.attach(ns, "eth0").unwrap();
            ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", "eth0"])
                .unwrap();
            ns.ip(&["addr", "add", &format!("{v6}/64"), "dev", "eth0", "nodad"])
                .unwrap();
        }
        let dir = ScratchDir::new(tag).unwrap();
        Site {
            _segment: segment,
            tandem_ns,
            keepalived_ns,
            client,
            dir,
        }
    }

    fn control(&self) -> PathBuf {
        self.dir.path.join("tandem.sock")
    }

    fn start_tandem(&self, accept_mode: bool) -> HostProcess {
        let mut config = String::from(
            "[system]\nhostname = \"tandem\"\n\n[[interfaces]]\nname = \"eth0\"\naddresses = [\"192.0.2.2/24\", \"2001:db8::2/64\"]\n",
        );
        for (name, vrid, vip, prefix) in [("v4", 51, VIP4, 24), ("v6", 52, VIP6, 64)] {
            config.push_str(&format!(
                "\n[[vrrp]]\nname = \"{name}\"\nvrid = {vrid}\ninterface = \"eth0\"\npriority = 150\n\
                 advert_interval_cs = 10\naccept_mode = {accept_mode}\n\n\
                 [[vrrp.vips]]\naddress = \"{vip}\"\nprefix = {prefix}\n"
            ));
        }
        let control = self.control();
        TandemRun {
            tandem: Path::new(TANDEM),
            dir: &self.dir.path,
            name: "tandem",
            control: Some(&control),
        }
        .start(
            &self.tandem_ns,
            &config,
            "vrrp: running",
            Duration::from_secs(20),
        )
        .unwrap()
    }

    fn status(&self) -> String {
        tandem_query(TANDEM.as_ref(), &self.control(), &["vrrp", "status"])
    }

    fn wait_status(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let control = self.control();
        wait_tandem_query(TANDEM.as_ref(), &control, &["vrrp", "status"], LIMIT, check)
            .unwrap_or_else(|last| panic!("tandem never reached `{what}`; last status:\n{last}"))
    }

    /// Table `inet tandem_vrrp` in tandem's namespace, or None when there is none.
    fn table(&self) -> Option<String> {
        self.tandem_ns
            .exec("nft", &["list", "table", "inet", "tandem_vrrp"])
            .ok()
    }

    fn wait_table(&self, what: &str, check: impl Fn(Option<&str>) -> bool) {
        let deadline = Instant::now() + LIMIT;
        while Instant::now() < deadline {
            if check(self.table().as_deref()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("table never {what}: {:?}", self.table());
    }

    fn ping(&self, address: &str) -> bool {
        self.client
            .exec("ping", &["-c", "1", "-W", "1", address])
            .is_ok()
    }

    fn tandem_mac(&self) -> String {
        let out = self
            .tandem_ns
            .ip(&["-o", "link", "show", "dev", "eth0"])
            .unwrap();
        out.split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .unwrap()
            .to_owned()
    }

    /// The client's neighbour entry for `address`: (MAC, state words).
    fn neighbour(&self, address: &str) -> (String, String) {
        let out = self
            .client
            .ip(&["neigh", "show", "to", address, "dev", "eth0"])
            .unwrap();
        let mac = out
            .split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        (mac, out)
    }
}

#[test]
fn without_accept_mode_the_vips_drop_traffic_but_answer_arp_and_nd() {
    let site = Site::new("acc0");
    let mut tandem = site.start_tandem(false);
    site.wait_status("both MASTER", |s| s.contains("2 instances, 2 master"));
    site.wait_table("holding both VIPs", |t| {
        t.is_some_and(|t| {
            t.contains("ip daddr 192.0.2.100 counter")
                && t.contains("ip6 daddr 2001:db8::100 counter")
        })
    });

    // No echo replies from a VIP...
    assert!(!site.ping(VIP4), "IPv4 VIP answered a ping");
    assert!(!site.ping(VIP6), "IPv6 VIP answered a ping");
    // ...but address resolution works: ARP (not IP, never filtered) and NS to the
    // solicited-node group both brought tandem's MAC.
    let mac = site.tandem_mac();
    let (arp_mac, arp) = site.neighbour(VIP4);
    assert_eq!(arp_mac, mac, "{arp}");
    assert!(
        !arp.contains("FAILED") && !arp.contains("INCOMPLETE"),
        "{arp}"
    );
    let (nd_mac, nd) = site.neighbour(VIP6);
    assert_eq!(nd_mac, mac, "{nd}");

    // Neighbour unreachability detection sends its NS to the VIP itself (unicast). Mark the
    // client's entry stale, send one packet (DELAY), and after the one-second probe delay the
    // unicast probe must be answered (REACHABLE); a dropped probe ends in FAILED after three.
    site.client
        .exec(
            "sysctl",
            &["-w", "net.ipv6.neigh.eth0.delay_first_probe_time=1"],
        )
        .unwrap();
    site.client
        .ip(&[
            "-6", "neigh", "change", VIP6, "lladdr", &mac, "dev", "eth0", "nud", "stale",
        ])
        .unwrap();
    assert!(site.neighbour(VIP6).1.contains("STALE"));
    assert!(!site.ping(VIP6));
    std::thread::sleep(Duration::from_millis(4500));
    let (nd_mac, nd) = site.neighbour(VIP6);
    assert_eq!(nd_mac, mac, "{nd}");
    assert!(
        nd.contains("REACHABLE"),
        "unicast NS to the VIP unanswered: {nd}"
    );

    let status = site.status();
    let line = status
        .lines()
        .find(|l| l.starts_with("accept_mode=false: "))
        .unwrap_or_else(|| panic!("no accept_mode line:\n{status}"));
    let dropped: u64 = line
        .trim_start_matches("accept_mode=false: ")
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(dropped >= 3, "{line}");
    assert!(line.contains("packets to VIPs dropped"), "{line}");

    // keepalived (priority 200) preempts the IPv4 instance: its VIP leaves the table.
    let _keepalived = keepalived(
        &site.keepalived_ns,
        "keepalived",
        "global_defs {\n  router_id keepalived\n  vrrp_version 3\n}\n\
         vrrp_instance VI {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 200\n  advert_int 0.1\n\
           virtual_ipaddress {\n    192.0.2.100/24 dev eth0\n  }\n}\n",
        &site.dir.path,
    )
    .unwrap();
    site.wait_status("v4 BACKUP", |s| s.contains("2 instances, 1 master"));
    site.wait_table("without the IPv4 VIP", |t| {
        t.is_some_and(|t| !t.contains("192.0.2.100") && t.contains("2001:db8::100"))
    });
    // The drops counted before the change are kept in the total.
    let status = site.status();
    assert!(status.contains("accept_mode=false: "), "{status}");

    // A stopped tandem leaves no table behind.
    tandem.signal(Signal::SIGTERM).unwrap();
    assert!(tandem.wait(Duration::from_secs(10)).unwrap());
    assert_eq!(site.table(), None);
    let tables = site.tandem_ns.exec("nft", &["list", "tables"]).unwrap();
    assert!(!tables.contains("tandem_vrrp"), "{tables}");
}

#[test]
fn with_accept_mode_the_vips_answer_and_no_table_exists() {
    let site = Site::new("acc1");
    let _tandem = site.start_tandem(true);
    site.wait_status("both MASTER", |s| s.contains("2 instances, 2 master"));
    let deadline = Instant::now() + LIMIT;
    while !site.ping(VIP4) {
        assert!(Instant::now() < deadline, "IPv4 VIP never answered");
    }
    assert!(site.ping(VIP6), "IPv6 VIP did not answer");
    assert_eq!(site.neighbour(VIP4).0, site.tandem_mac());
    assert_eq!(site.table(), None);
    let status = site.status();
    assert!(!status.contains("accept_mode=false"), "{status}");
}

/// Sends one TCP segment from the client to `VIP4:port` with `flags` and reports whether the
/// VIP answered with a reset within a second (a raw TCP socket in the client sees it).
fn vip_resets(site: &Site, port: u16, flags: u8) -> bool {
    site.client
        .run(move || {
            use socket2::{Domain, Protocol, SockAddr, Socket, Type};
            let client: std::net::Ipv4Addr = "192.0.2.10".parse().unwrap();
            let vip: std::net::Ipv4Addr = VIP4.parse().unwrap();
            let listen = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP)).unwrap();
            listen
                .set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let sender = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::TCP)).unwrap();
            // A bare TCP header (the kernel adds the IP header): ports, seq 1, ack 1, flags.
            let mut tcp = [0u8; 20];
            tcp[0..2].copy_from_slice(&40_000u16.to_be_bytes());
            tcp[2..4].copy_from_slice(&port.to_be_bytes());
            tcp[4..8].copy_from_slice(&1u32.to_be_bytes());
            tcp[8..12].copy_from_slice(&1u32.to_be_bytes());
            tcp[12] = 5 << 4;
            tcp[13] = flags;
            tcp[14..16].copy_from_slice(&1234u16.to_be_bytes());
            let mut pseudo = Vec::new();
            pseudo.extend_from_slice(&client.octets());
            pseudo.extend_from_slice(&vip.octets());
            pseudo.extend_from_slice(&[0, 6, 0, 20]);
            pseudo.extend_from_slice(&tcp);
            let mut sum: u32 = pseudo
                .chunks(2)
                .map(|p| u32::from(u16::from_be_bytes([p[0], p[1]])))
                .sum();
            while sum > 0xffff {
                sum = (sum & 0xffff) + (sum >> 16);
            }
            tcp[16..18].copy_from_slice(&(!u16::try_from(sum).unwrap()).to_be_bytes());
            sender
                .send_to(&tcp, &SockAddr::from(std::net::SocketAddrV4::new(vip, 0)))
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(1);
            let mut buffer = [0u8; 1500];
            while Instant::now() < deadline {
                let Ok(len) = std::io::Read::read(&mut &listen, &mut buffer) else {
                    continue;
                };
                let packet = &buffer[..len];
                let header = usize::from(packet[0] & 0x0f) * 4;
                let segment = &packet[header..];
                let from_vip = packet[12..16] == vip.octets();
                let to_us = segment[2..4] == 40_000u16.to_be_bytes();
                if from_vip && to_us && segment[13] & 0x04 != 0 {
                    return true;
                }
            }
            false
        })
        .unwrap()
}

#[test]
fn without_accept_mode_a_tcp_segment_without_syn_is_reset_and_a_syn_is_dropped() {
    // A tickle ACK's answer from the partner's client is such a segment: the reset it gets
    // is what makes the client reconnect after a takeover.
    let site = Site::new("acc2");
    let _tandem = site.start_tandem(false);
    site.wait_status("both MASTER", |s| s.contains("2 instances, 2 master"));
    site.wait_table("holding the IPv4 VIP", |t| {
        t.is_some_and(|t| t.contains("ip daddr 192.0.2.100 counter"))
    });
    // Resolve the VIP first (the ping itself is dropped).
    assert!(!site.ping(VIP4));
    assert_eq!(site.neighbour(VIP4).0, site.tandem_mac());
    // ACK only (0x10): reset by the stack. SYN (0x02): dropped, no answer at all.
    assert!(
        vip_resets(&site, 8080, 0x10),
        "a bare ACK to the VIP got no reset"
    );
    assert!(
        !vip_resets(&site, 8080, 0x02),
        "a SYN to the VIP was answered"
    );
}
