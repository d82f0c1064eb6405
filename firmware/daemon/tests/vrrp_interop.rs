//! VRRP interop on the host tier: `tandem run` and keepalived in network namespaces on one
//! bridged segment, with a client namespace that pings the virtual address.
//!
//! Every scenario runs against the real keepalived (Debian's package): elections both ways,
//! preempt on and off, the priority-0 hand-over on SIGTERM, VRRPv2 with a PASS password (TUM
//! report appendix B.11), VRRPv3 over IPv4 and IPv6, unicast peers, and a SIGKILLed master whose
//! address the other side takes while the client keeps reaching it. Adverts run at 100 ms (v3)
//! so each test takes seconds; no assertion is about timing beyond generous upper bounds.

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
const TANDEM4: &str = "192.0.2.2";
const KEEPALIVED4: &str = "192.0.2.3";
const CLIENT4: &str = "192.0.2.10";
/// Upper bound for any takeover (Master_Down_Interval is ~0.3-3.6 s here).
const TAKEOVER: Duration = Duration::from_secs(15);

/// A segment with a tandem box, a keepalived box and a client, all on `eth0`.
struct Site {
    _segment: HostSegment,
    tandem_ns: Netns,
    keepalived_ns: Netns,
    client: Netns,
    dir: ScratchDir,
    ipv6: bool,
}

impl Site {
    fn new(tag: &str, ipv6: bool) -> Site {
        let mut segment = HostSegment::new(&format!("{tag}-sg")).unwrap();
        let tandem_ns = Netns::new(&format!("{tag}-t")).unwrap();
        let keepalived_ns = Netns::new(&format!("{tag}-k")).unwrap();
        let client = Netns::new(&format!("{tag}-c")).unwrap();
        for (ns, v4, v6) in [
            (&tandem_ns, TANDEM4, "2001:db8::2"),
            (&keepalived_ns, KEEPALIVED4, "2001:db8::3"),
            (&client, CLIENT4, "2001:db8::10"),
        ] {
            segment.attach(ns, "eth0").unwrap();
            ns.ip(&["addr", "add", &format!("{v4}/24"), "dev", "eth0"])
                .unwrap();
            ns.ip(&["addr", "add", &format!("{v6}/64"), "dev", "eth0"])
                .unwrap();
        }
        let dir = ScratchDir::new(tag).unwrap();
        Site {
            _segment: segment,
            tandem_ns,
            keepalived_ns,
            client,
            dir,
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

    fn control(&self) -> PathBuf {
        self.dir.path.join("tandem.sock")
    }

    fn start_tandem(&self, name: &str, config: &str) -> HostProcess {
        let control = self.control();
        TandemRun {
            tandem: Path::new(TANDEM),
            dir: &self.dir.path,
            name,
            control: Some(&control),
        }
        .start(
            &self.tandem_ns,
            config,
            "vrrp: running",
            Duration::from_secs(20),
        )
        .unwrap()
    }

    /// SIGKILLs `process` and removes the VIP it left in `ns`: the box is gone, its kernel no
    /// longer answers for the address.
    /// keepalived's VRRP child is killed first, or it would notice its parent's death and
    /// leave cleanly with priority 0.
    fn crash(&self, process: HostProcess, ns: &Netns) {
        let child_pid = self.dir.path.join(format!("{}.vrrp.pid", process.name));
        if let Ok(pid) = std::fs::read_to_string(child_pid) {
            let pid = nix::unistd::Pid::from_raw(pid.trim().parse().unwrap());
            nix::sys::signal::kill(pid, Signal::SIGKILL).unwrap();
        }
        process.signal(Signal::SIGKILL).unwrap();
        drop(process);
        let prefix = if self.ipv6 { 64 } else { 24 };
        let _ = ns.ip(&[
            "addr",
            "del",
            &format!("{}/{prefix}", self.vip()),
            "dev",
            "eth0",
        ]);
    }

    fn start_keepalived(&self, name: &str, config: &str) -> HostProcess {
        keepalived(&self.keepalived_ns, name, config, &self.dir.path).unwrap()
    }

    fn status(&self) -> String {
        tandem_query(TANDEM.as_ref(), &self.control(), &["vrrp", "status"])
    }

    /// Waits until `check(status)` holds; returns the status text.
    fn wait_status(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        let control = self.control();
        wait_tandem_query(
            TANDEM.as_ref(),
            &control,
            &["vrrp", "status"],
            TAKEOVER,
            check,
        )
        .unwrap_or_else(|last| panic!("tandem never reached `{what}`; last status:\n{last}"))
    }

    fn holds_vip(&self, ns: &Netns) -> bool {
        ns.ip(&["-o", "addr", "show", "dev", "eth0"])
            .is_ok_and(|out| out.contains(&format!(" {}/", self.vip())))
    }

    fn wait_vip(&self, ns: &Netns, held: bool) -> Duration {
        let started = Instant::now();
        while started.elapsed() < TAKEOVER {
            if self.holds_vip(ns) == held {
                return started.elapsed();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!(
            "{} {} the VIP after {TAKEOVER:?}",
            ns.name,
            if held { "never took" } else { "never released" }
        );
    }

    /// Pings the VIP from the client until one answer comes back.
    fn client_reaches_vip(&self) -> Duration {
        let started = Instant::now();
        let ping = if self.ipv6 { "ping6" } else { "ping" };
        while started.elapsed() < TAKEOVER {
            if self
                .client
                .exec(ping, &["-c", "1", "-W", "1", self.vip()])
                .is_ok()
            {
                return started.elapsed();
            }
        }
        panic!("client never reached {}", self.vip());
    }

    /// The MAC the client's neighbour table has for the VIP.
    fn client_neighbour_mac(&self) -> String {
        let out = self
            .client
            .ip(&["neigh", "show", "to", self.vip(), "dev", "eth0"])
            .unwrap();
        out.split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .unwrap_or_default()
            .to_owned()
    }

    fn mac_of(ns: &Netns) -> String {
        let out = ns.ip(&["-o", "link", "show", "dev", "eth0"]).unwrap();
        out.split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .unwrap()
            .to_owned()
    }

    /// Waits until the client's neighbour entry for the VIP names `ns`'s MAC (moved by a
    /// gratuitous ARP / unsolicited NA, or by a fresh resolution).
    fn wait_client_points_at(&self, ns: &Netns) {
        let want = Site::mac_of(ns);
        let started = Instant::now();
        while started.elapsed() < TAKEOVER {
            if self.client_neighbour_mac() == want {
                return;
            }
            let _ = self.client_reaches_vip();
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "client's neighbour entry for the VIP is {}, not {want}",
            self.client_neighbour_mac()
        );
    }
}

/// What differs between the scenarios' instance configs.
#[derive(Clone)]
struct Vr {
    version: u8,
    priority: u8,
    advert_cs: u16,
    preempt: bool,
    password: Option<&'static str>,
    unicast: bool,
    ipv6: bool,
}

impl Vr {
    fn v3(priority: u8) -> Vr {
        Vr {
            version: 3,
            priority,
            advert_cs: 10,
            preempt: true,
            password: None,
            unicast: false,
            ipv6: false,
        }
    }

    fn vip(&self) -> &'static str {
        if self.ipv6 {
            VIP6
        } else {
            VIP4
        }
    }

    fn tandem_config(&self) -> String {
        let (own, peer) = (TANDEM4, KEEPALIVED4);
        let mut text = format!(
            "[system]\nhostname = \"tandem\"\n\n[[interfaces]]\nname = \"eth0\"\naddresses = [\"{own}/24\", \"2001:db8::2/64\"]\n\n\
             [[vrrp]]\nname = \"vi\"\nversion = \"v{}\"\nvrid = 51\ninterface = \"eth0\"\npriority = {}\nadvert_interval_cs = {}\npreempt = {}\n\
             accept_mode = true\n",
            self.version, self.priority, self.advert_cs, self.preempt
        );
        // The client pings the VIP on whichever box holds it: like keepalived without
        // vrrp_strict, accept traffic to it (vrrp_accept_mode.rs tests the RFC default).
        if self.unicast {
            text.push_str(&format!(
                "unicast_source = \"{own}\"\nunicast_peers = [\"{peer}\"]\n"
            ));
        }
        if let Some(password) = self.password {
            text.push_str(&format!("\n[vrrp.auth]\npass = \"{password}\"\n"));
        }
        let prefix = if self.ipv6 { 64 } else { 24 };
        text.push_str(&format!(
            "\n[[vrrp.vips]]\naddress = \"{}\"\nprefix = {prefix}\n",
            self.vip()
        ));
        // Two bursts a second apart, so a test sees the second one too.
        text.push_str("\n[vrrp.garp]\nmaster_delay_s = 1\nmaster_repeat = 3\n");
        text
    }

    fn keepalived_config(&self) -> String {
        let interval = f64::from(self.advert_cs) / 100.0;
        let mut text = format!(
            "global_defs {{\n  router_id keepalived\n  vrrp_version {}\n}}\n\
             vrrp_instance VI {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority {}\n  advert_int {interval}\n",
            self.version, self.priority
        );
        if !self.preempt {
            text.push_str("  nopreempt\n");
        }
        if let Some(password) = self.password {
            text.push_str(&format!(
                "  authentication {{\n    auth_type PASS\n    auth_pass {password}\n  }}\n"
            ));
        }
        if self.unicast {
            text.push_str(&format!(
                "  unicast_src_ip {KEEPALIVED4}\n  unicast_peer {{\n    {TANDEM4}\n  }}\n"
            ));
        }
        let prefix = if self.ipv6 { 64 } else { 24 };
        text.push_str(&format!(
            "  virtual_ipaddress {{\n    {}/{prefix} dev eth0\n  }}\n}}\n",
            self.vip()
        ));
        text
    }
}

#[test]
fn tandem_with_the_higher_priority_wins_and_serves_the_client() {
    let site = Site::new("vhi", false);
    let _keepalived = site.start_keepalived("keepalived", &Vr::v3(100).keepalived_config());
    let _tandem = site.start_tandem("tandem", &Vr::v3(200).tandem_config());
    let status = site.wait_status("MASTER", |s| s.contains("state MASTER"));
    assert!(status.contains("priority 200 (configured 200)"), "{status}");
    site.wait_vip(&site.tandem_ns, true);
    site.wait_vip(&site.keepalived_ns, false);
    site.client_reaches_vip();
    site.wait_client_points_at(&site.tandem_ns);
    // keepalived hears our adverts (pseudo-header checksum) and stays backup.
    std::thread::sleep(Duration::from_millis(800));
    assert!(!site.holds_vip(&site.keepalived_ns));
    assert!(site.status().contains("state MASTER"));
}

#[test]
fn keepalived_with_the_higher_priority_preempts_tandem() {
    let site = Site::new("vkh", false);
    let _tandem = site.start_tandem("tandem", &Vr::v3(100).tandem_config());
    site.wait_status("MASTER alone", |s| s.contains("state MASTER"));
    site.wait_vip(&site.tandem_ns, true);
    let keepalived = site.start_keepalived("keepalived", &Vr::v3(200).keepalived_config());
    let status = site.wait_status("BACKUP behind keepalived", |s| {
        s.contains("state BACKUP") && s.contains("master: 192.0.2.3 priority 200")
    });
    assert!(
        status.contains("why: higher priority 200 advertised by 192.0.2.3"),
        "{status}"
    );
    site.wait_vip(&site.tandem_ns, false);
    keepalived
        .console
        .wait_for_any_time("Entering MASTER STATE", TAKEOVER)
        .unwrap();
    site.wait_vip(&site.keepalived_ns, true);
    site.wait_client_points_at(&site.keepalived_ns);
}

#[test]
fn preempt_on_takes_over_and_preempt_off_waits() {
    // Preempt on: tandem 200 joins keepalived 100 and takes over.
    let site = Site::new("vpr", false);
    let keepalived = site.start_keepalived("keepalived", &Vr::v3(100).keepalived_config());
    keepalived
        .console
        .wait_for("Entering MASTER STATE", TAKEOVER)
        .unwrap();
    let tandem = site.start_tandem("tandem", &Vr::v3(200).tandem_config());
    let status = site.wait_status("MASTER by preemption", |s| s.contains("state MASTER"));
    assert!(
        status.contains("why: preempting a lower-priority master"),
        "{status}"
    );
    site.wait_vip(&site.keepalived_ns, false);
    site.crash(tandem, &site.tandem_ns);
    // Preempt off: keepalived took the VIP back; tandem 200 without preempt stays backup.
    site.wait_vip(&site.keepalived_ns, true);
    let quiet = Vr {
        preempt: false,
        ..Vr::v3(200)
    };
    let _tandem = site.start_tandem("tandem-nopreempt", &quiet.tandem_config());
    site.wait_status("BACKUP", |s| {
        s.contains("state BACKUP") && s.contains("master: 192.0.2.3 priority 100")
    });
    // Twenty advert intervals later it still defers to the lower-priority master.
    std::thread::sleep(Duration::from_secs(2));
    let status = site.status();
    assert!(status.contains("state BACKUP"), "{status}");
    assert!(status.contains("lower priority ignored 0"), "{status}");
    assert!(site.holds_vip(&site.keepalived_ns));
    assert!(!site.holds_vip(&site.tandem_ns));
}

#[test]
fn sigterm_hands_over_with_priority_zero() {
    let site = Site::new("vp0", false);
    let keepalived = site.start_keepalived("keepalived", &Vr::v3(100).keepalived_config());
    let mut tandem = site.start_tandem("tandem", &Vr::v3(200).tandem_config());
    site.wait_status("MASTER", |s| s.contains("state MASTER"));
    site.wait_vip(&site.tandem_ns, true);
    keepalived
        .console
        .wait_for_any_time("Entering BACKUP STATE", TAKEOVER)
        .unwrap();
    keepalived.console.skip_to_end();
    tandem.signal(Signal::SIGTERM).unwrap();
    let took = site.wait_vip(&site.keepalived_ns, true);
    assert!(tandem.wait(Duration::from_secs(10)).unwrap());
    assert!(
        !site.holds_vip(&site.tandem_ns),
        "tandem left its VIP behind"
    );
    tandem
        .console
        .wait_for_any_time("shut down: priority 0 sent", Duration::from_secs(1))
        .unwrap();
    keepalived
        .console
        .wait_for("Entering MASTER STATE", TAKEOVER)
        .unwrap();
    // Skew_Time at priority 100 and 100 ms adverts is 61 ms, Master_Down_Interval 361 ms.
    eprintln!("priority-0 hand-over: keepalived held the VIP {took:?} after SIGTERM");
    site.client_reaches_vip();
}

#[test]
fn standby_hands_over_on_priority_zero_holds_and_off_preempts_back() {
    // 1 s adverts: keepalived's Skew_Time at priority 100 is 0.61 s, its Master_Down_Interval
    // 3.61 s from the last advert heard (at least 2.6 s after the standby), so a take-over
    // inside 2 s is the priority-0 hand-over, not a failure detection.
    let slow = |priority| Vr {
        advert_cs: 100,
        ..Vr::v3(priority)
    };
    let site = Site::new("vsb", false);
    let keepalived = site.start_keepalived("keepalived", &slow(100).keepalived_config());
    let _tandem = site.start_tandem("tandem", &slow(200).tandem_config());
    site.wait_status("MASTER", |s| s.contains("state MASTER"));
    site.wait_vip(&site.tandem_ns, true);
    keepalived
        .console
        .wait_for_any_time("Entering BACKUP STATE", TAKEOVER)
        .unwrap();
    keepalived.console.skip_to_end();

    let started = Instant::now();
    let answer = tandem_query(TANDEM.as_ref(), &site.control(), &["vrrp", "standby", "on"]);
    assert!(
        answer.contains("vrrp standby: on: 1 master instance"),
        "{answer}"
    );
    site.wait_vip(&site.keepalived_ns, true);
    let took = started.elapsed();
    assert!(!site.holds_vip(&site.tandem_ns), "tandem kept its VIP");
    assert!(
        took < Duration::from_secs(2),
        "keepalived took the VIP {took:?} after the standby: a failure detection, not a hand-over"
    );
    eprintln!("standby hand-over: keepalived held the VIP {took:?} after `vrrp standby on`");
    let status = site.wait_status("BACKUP in standby", |s| {
        s.contains("state BACKUP") && s.contains("STANDBY (maintenance)")
    });
    assert!(status.contains("why: standby (maintenance)"), "{status}");
    site.client_reaches_vip();
    // Two Master_Down_Intervals later tandem 200 still defers to keepalived 100.
    std::thread::sleep(Duration::from_secs(8));
    let status = site.status();
    assert!(status.contains("state BACKUP"), "{status}");
    assert!(site.holds_vip(&site.keepalived_ns));
    assert!(!site.holds_vip(&site.tandem_ns));

    let answer = tandem_query(
        TANDEM.as_ref(),
        &site.control(),
        &["vrrp", "standby", "off"],
    );
    assert!(answer.contains("vrrp standby: off"), "{answer}");
    let status = site.wait_status("MASTER again", |s| s.contains("state MASTER"));
    assert!(
        status.contains("why: preempting a lower-priority master"),
        "{status}"
    );
    assert!(!status.contains("STANDBY"), "{status}");
    site.wait_vip(&site.tandem_ns, true);
    keepalived
        .console
        .wait_for("Entering BACKUP STATE", TAKEOVER)
        .unwrap();
    site.wait_vip(&site.keepalived_ns, false);
    site.client_reaches_vip();
}

#[test]
fn v2_with_a_password_interoperates() {
    // TUM report appendix B.11: VRRPv2, auth_type PASS, 1 s adverts.
    let site = Site::new("vv2", false);
    let vr = Vr {
        version: 2,
        advert_cs: 100,
        password: Some("topSecre"),
        ..Vr::v3(150)
    };
    let keepalived = site.start_keepalived("keepalived", &vr.keepalived_config());
    let _tandem = site.start_tandem(
        "tandem",
        &Vr {
            priority: 100,
            ..vr.clone()
        }
        .tandem_config(),
    );
    let status = site.wait_status("BACKUP behind keepalived", |s| {
        s.contains("state BACKUP") && s.contains("master: 192.0.2.3 priority 150 advert 100 cs")
    });
    assert!(status.contains("discarded: none"), "{status}");
    site.wait_vip(&site.keepalived_ns, true);
    site.crash(keepalived, &site.keepalived_ns);
    let status = site.wait_status("MASTER after keepalived died", |s| {
        s.contains("state MASTER")
    });
    assert!(
        status.contains("why: master silent for Master_Down_Interval (last master 192.0.2.3)"),
        "{status}"
    );
    site.wait_vip(&site.tandem_ns, true);
    site.client_reaches_vip();
    site.wait_client_points_at(&site.tandem_ns);
}

#[test]
fn v2_with_the_wrong_password_is_discarded_and_counted() {
    let site = Site::new("vpw", false);
    let vr = Vr {
        version: 2,
        advert_cs: 100,
        password: Some("topSecre"),
        ..Vr::v3(150)
    };
    let _keepalived = site.start_keepalived("keepalived", &vr.keepalived_config());
    let _tandem = site.start_tandem(
        "tandem",
        &Vr {
            priority: 100,
            password: Some("wrongPwd"),
            ..vr.clone()
        }
        .tandem_config(),
    );
    let status = site.wait_status("password discards", |s| {
        s.contains("VRRPv2 password differs from ours: ")
    });
    assert!(!status.contains("master: 192.0.2.3"), "{status}");
}

#[test]
fn v3_over_ipv6_fails_over_both_ways_and_the_client_follows() {
    let site = Site::new("vv6", true);
    let vr = Vr {
        ipv6: true,
        ..Vr::v3(200)
    };
    let _keepalived = site.start_keepalived(
        "keepalived",
        &Vr {
            priority: 100,
            ..vr.clone()
        }
        .keepalived_config(),
    );
    let tandem = site.start_tandem("tandem", &vr.tandem_config());
    let status = site.wait_status("MASTER", |s| s.contains("state MASTER"));
    assert!(status.contains("v3 IPv6"), "{status}");
    assert!(status.contains("this box (fe80::"), "{status}");
    site.wait_vip(&site.tandem_ns, true);
    site.client_reaches_vip();
    site.wait_client_points_at(&site.tandem_ns);
    // keepalived stays backup: it accepts our IPv6 adverts.
    std::thread::sleep(Duration::from_millis(800));
    assert!(!site.holds_vip(&site.keepalived_ns));
    site.crash(tandem, &site.tandem_ns);
    site.wait_vip(&site.keepalived_ns, true);
    site.client_reaches_vip();
    site.wait_client_points_at(&site.keepalived_ns);
}

#[test]
fn unicast_peers_interoperate() {
    let site = Site::new("vuc", false);
    let vr = Vr {
        unicast: true,
        ..Vr::v3(200)
    };
    // tandem 200 is master; keepalived 100 hears only unicast adverts and stays backup.
    let tandem = site.start_tandem("tandem", &vr.tandem_config());
    site.wait_vip(&site.tandem_ns, true);
    let keepalived = site.start_keepalived(
        "keepalived",
        &Vr {
            priority: 100,
            ..vr.clone()
        }
        .keepalived_config(),
    );
    keepalived
        .console
        .wait_for("Entering BACKUP STATE", TAKEOVER)
        .unwrap();
    std::thread::sleep(Duration::from_secs(1));
    assert!(!site.holds_vip(&site.keepalived_ns));
    // SIGKILL: keepalived takes over on silence.
    site.crash(tandem, &site.tandem_ns);
    site.wait_vip(&site.keepalived_ns, true);
    site.client_reaches_vip();
    // A lower-priority tandem hears keepalived's unicast adverts and stays backup.
    let _tandem = site.start_tandem(
        "tandem-low",
        &Vr {
            priority: 50,
            ..vr.clone()
        }
        .tandem_config(),
    );
    let status = site.wait_status("BACKUP behind keepalived", |s| {
        s.contains("state BACKUP") && s.contains("master: 192.0.2.3 priority 100")
    });
    assert!(
        status.contains("unicast from 192.0.2.2 to 192.0.2.3"),
        "{status}"
    );
}

#[test]
fn killed_keepalived_master_is_replaced_and_the_client_follows_the_garp() {
    let site = Site::new("vkm", false);
    let keepalived = site.start_keepalived("keepalived", &Vr::v3(200).keepalived_config());
    keepalived
        .console
        .wait_for("Entering MASTER STATE", TAKEOVER)
        .unwrap();
    let tandem = site.start_tandem("tandem", &Vr::v3(100).tandem_config());
    site.wait_status("BACKUP", |s| {
        s.contains("state BACKUP") && s.contains("master: 192.0.2.3")
    });
    site.client_reaches_vip();
    assert_eq!(
        site.client_neighbour_mac(),
        Site::mac_of(&site.keepalived_ns)
    );
    site.crash(keepalived, &site.keepalived_ns);
    let took = site.wait_vip(&site.tandem_ns, true);
    // The gratuitous ARP alone moves the client's entry: no traffic from the client needed.
    let want = Site::mac_of(&site.tandem_ns);
    let started = Instant::now();
    while site.client_neighbour_mac() != want && started.elapsed() < TAKEOVER {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(site.client_neighbour_mac(), want);
    site.client_reaches_vip();
    tandem
        .console
        .wait_for_any_time(
            "act latency: timer expiry -> VIPs added",
            Duration::from_secs(1),
        )
        .unwrap();
    eprintln!("SIGKILL failover: tandem held the VIP {took:?} after the kill");
}
