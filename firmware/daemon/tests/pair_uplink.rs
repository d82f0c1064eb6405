//! Uplink scoring in the pair's split arbitration, on the host tier: two `tandem run` boxes on
//! a bridged service LAN with a client and an upstream router (a plain namespace holding the
//! gateway address, whose kernel answers ARP), joined by a veth peer cable, one VRRP instance
//! at the usual 1 s adverts; both boxes probe the router (`peer_link.uplink_probes`).
//!
//! - The master's bridge port blocked, carrier up on both sides: the master no longer reaches
//!   the router, the backup still does. The master counts it down after three missed probes,
//!   yields to the partner's better score, and the backup takes over; rtnetlink address events
//!   on both boxes show the VIP deleted on A before it is added on B (never two masters), and
//!   the client, on B's side of the bridge, reaches the VIP.
//! - The router silent for one or two probes (its ARP off) moves nothing: the misses show in
//!   `pair status`, the score stays. Silent for three, both boxes count it down (no split: the
//!   score changes nothing); one answer counts it up again.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::net::Ipv4Addr;
use std::ops::Deref;
use std::path::Path;
use std::time::Duration;

use tandem_lab::address_monitor::AddressMonitor;
use tandem_lab::host::HostProcess;
use tandem_lab::pair_lan::{PairLan, A_OWN, B_OWN};
use tandem_lab::pinger::{now_unix, Pinger};
use tandem_lab::vrrp_status::instance_state;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const LIMIT: Duration = Duration::from_secs(30);
const VIP: &str = "192.0.2.100";
/// The upstream router both boxes probe.
const GATEWAY: &str = "192.0.2.1";
/// The heartbeat's dead time: longer than the 30 ms default, so that a debug build on a busy
/// host (other tests' boxes running) does not lose the heartbeat in the middle of a drill;
/// heartbeat deaths are `pair_heartbeat`'s subject, the uplink score is this file's.
const DEAD_AFTER_MS: u32 = 300;

/// The LAN (bridge ports p1 client, p2 box A, p3 box B, p4 the router `<tag>-g`) and the cable.
struct Pair(PairLan);

impl Deref for Pair {
    type Target = PairLan;
    fn deref(&self) -> &PairLan {
        &self.0
    }
}

impl Pair {
    fn new(tag: &str) -> Pair {
        Pair(PairLan::new(tag, Path::new(TANDEM), LIMIT, &[("g", GATEWAY)]).unwrap())
    }

    fn start(&self, name: &str) -> HostProcess {
        let (own, priority) = if name == "a" {
            (A_OWN, 150)
        } else {
            (B_OWN, 100)
        };
        let config = format!(
            "[system]\nhostname = \"{name}\"\n\n\
             [peer_link]\ninterface = \"peer\"\ndead_after_ms = {DEAD_AFTER_MS}\n\
             uplink_probes = [\"{GATEWAY}\"]\n\n\
             [[interfaces]]\nname = \"eth0\"\naddresses = [\"{own}/24\"]\n\n\
             [[interfaces]]\nname = \"peer\"\n\n\
             [[vrrp]]\nname = \"web\"\nvrid = 72\ninterface = \"eth0\"\npriority = {priority}\n\
             advert_interval_cs = 100\naccept_mode = true\n\n\
             [[vrrp.vips]]\naddress = \"{VIP}\"\nprefix = 24\n"
        );
        self.run(name, &config, "vrrp: running").unwrap()
    }

    fn state(&self, name: &str) -> Option<String> {
        instance_state(&self.ask(name, &["vrrp", "status"]), "web").map(str::to_owned)
    }

    /// Both running, A master, B backup, the heartbeat up both ways, each box reaching the
    /// router and knowing the other's score.
    fn start_both(&self) -> (HostProcess, HostProcess) {
        let a = self.start("a");
        self.wait_state("a", "MASTER");
        let b = self.start("b");
        self.wait_state("b", "BACKUP");
        for name in ["a", "b"] {
            self.wait(name, &["pair", "status"], "the router answering", |text| {
                text.contains("pair: partner alive")
                    && text.contains("pair: uplink score 1 of 1 routers answering")
                    && text.contains("; partner 1\n")
                    && router(text).is_some_and(|(state, _)| state == "answering")
            });
        }
        (a, b)
    }

    /// Blocks (`true`) or unblocks A's bridge port: the bridge stops forwarding it, both ends
    /// keep carrier.
    fn block_a(&self, blocked: bool) {
        let state = if blocked { "0" } else { "3" };
        self.segment
            .netns
            .exec("bridge", &["link", "set", "dev", "p2", "state", state])
            .unwrap();
    }

    /// The router answers ARP (`true`) or drops every request (the interface's NOARP flag).
    fn gateway_arp(&self, on: bool) {
        self.extra[0]
            .ip(&[
                "link",
                "set",
                "dev",
                "eth0",
                "arp",
                if on { "on" } else { "off" },
            ])
            .unwrap();
    }
}

/// The router's state word(s) and its misses in a row, from `pair status`.
fn router(text: &str) -> Option<(String, u32)> {
    let prefix = format!("pair: uplink router {GATEWAY} on eth0 from ");
    let line = text.lines().find(|line| line.starts_with(&prefix))?;
    let (_, rest) = line.split_once(": ")?.1.split_once(": ")?;
    let (state, details) = rest.split_once(" (misses ")?;
    let misses = details.split(',').next()?.parse().ok()?;
    Some((state.to_owned(), misses))
}

/// The (time, deleted) events of `monitor` for the VIP.
fn vip_events(monitor: AddressMonitor) -> Vec<(f64, bool)> {
    let vip: std::net::IpAddr = VIP.parse().unwrap();
    monitor
        .stop()
        .into_iter()
        .filter(|event| event.address == vip)
        .map(|event| (event.at, event.deleted))
        .collect()
}

#[test]
fn a_split_gives_the_vip_to_the_box_that_still_reaches_the_router() {
    let pair = Pair::new("upl");
    let (_a, _b) = pair.start_both();
    let on_a = AddressMonitor::start(&pair.a).unwrap();
    let on_b = AddressMonitor::start(&pair.b).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    // A's port stops forwarding: neither box hears the other's adverts, A no longer reaches
    // the router, B still does. Equal scores would keep the VIP on A (B held back); A's drops
    // to 0 after three missed probes, and A yields to B's 1.
    let cut = now_unix();
    pair.block_a(true);
    pair.wait_state("b", "MASTER");
    let took = now_unix() - cut;
    pair.wait_state("a", "BACKUP");
    let on_a_status = pair.wait_pair("a", "gave the VIPs to the partner");
    let (state, misses) = router(&on_a_status).unwrap();
    assert!(
        state == "not answering" && misses >= 3,
        "A's router: {state}, misses {misses}\n{on_a_status}"
    );
    assert!(
        on_a_status.contains("uplink score 1 -> 0 (upstream routers answering)")
            && on_a_status.contains("pair: uplink score 0 of 1 routers answering")
            && on_a_status.contains("; partner 1\n"),
        "{on_a_status}"
    );
    let vrrp_a = pair.ask("a", &["vrrp", "status"]);
    assert!(
        vrrp_a.contains("service LAN split: the partner has the better uplink (1, this box 0)"),
        "{vrrp_a}"
    );
    let on_b_status = pair.ask("b", &["pair", "status"]);
    assert_eq!(
        router(&on_b_status).map(|(state, _)| state),
        Some("answering".to_owned()),
        "{on_b_status}"
    );
    // The client, on B's side of the bridge, reaches the VIP.
    let pinger = Pinger::start(&pair.client, VIP.parse::<Ipv4Addr>().unwrap()).unwrap();
    assert!(
        pinger.wait_reply_after(now_unix(), LIMIT),
        "the client never reached the VIP through B"
    );
    // Longer than the Master_Down_Interval (3.6 s): A, not hearing B's adverts, stays backup
    // (held back on B's report), and never takes the VIP back.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(pair.state("a").as_deref(), Some("BACKUP"));
    assert_eq!(pair.state("b").as_deref(), Some("MASTER"));
    let report = pinger.stop().unwrap();
    let a_events = vip_events(on_a);
    let b_events = vip_events(on_b);
    let a_deleted = a_events
        .iter()
        .find(|(_, deleted)| *deleted)
        .unwrap_or_else(|| panic!("A never gave the VIP up: {a_events:?}"));
    let b_added = b_events
        .iter()
        .find(|(_, deleted)| !*deleted)
        .unwrap_or_else(|| panic!("B never took the VIP: {b_events:?}"));
    // Each monitor stamps an event when its own reader thread gets it: on a busy machine the
    // two stamps can be out of order by a scheduling delay. The order itself holds by
    // construction (B is released on A's backup report, which A sends only after its delete
    // completed); this bounds what the stamps can show.
    const READER_SKEW: f64 = 0.002;
    assert!(
        a_deleted.0 <= b_added.0 + READER_SKEW,
        "both held the VIP: A deleted it at {:.6}, B added it at {:.6}",
        a_deleted.0,
        b_added.0
    );
    assert!(
        a_events.iter().all(|(_, deleted)| *deleted),
        "A took the VIP back: {a_events:?}"
    );
    eprintln!(
        "carrier-up split, master cut off the router: B master {:.2} s after the block \
         (VIP deleted on A {:.1} ms before B added it); client pings: {report:?}\n{on_a_status}",
        took,
        (b_added.0 - a_deleted.0) * 1000.0
    );
}

#[test]
fn a_router_silent_for_fewer_than_three_probes_moves_nothing() {
    let pair = Pair::new("upm");
    let (_a, _b) = pair.start_both();
    // One or two probes unanswered: the misses show, the router stays counted.
    pair.gateway_arp(false);
    let mut seen = 0;
    for name in ["a", "b"] {
        let text = pair.wait(name, &["pair", "status"], "a missed probe", |text| {
            router(text).is_some_and(|(_, misses)| misses >= 1)
        });
        let (state, misses) = router(&text).unwrap();
        assert_eq!(state, "answering", "{name}: {text}");
        seen = seen.max(misses);
    }
    pair.gateway_arp(true);
    for name in ["a", "b"] {
        let text = pair.wait(
            name,
            &["pair", "status"],
            "the router answering again",
            |text| router(text).is_some_and(|(_, misses)| misses == 0),
        );
        assert!(
            text.contains("pair: uplink score 1 of 1 routers answering")
                && !text.contains("uplink score 1 -> 0"),
            "{name}: the score moved on {seen} missed probes:\n{text}"
        );
    }
    eprintln!("{seen} probes missed in a row: score kept");
    assert_eq!(pair.state("a").as_deref(), Some("MASTER"));
    assert_eq!(pair.state("b").as_deref(), Some("BACKUP"));
    // Silent for three: counted down on both boxes. Equal scores and no split: nothing moves.
    pair.gateway_arp(false);
    for name in ["a", "b"] {
        let text = pair.wait_pair(name, "uplink score 1 -> 0");
        let (state, misses) = router(&text).unwrap();
        assert!(state == "not answering" && misses >= 3, "{name}: {text}");
    }
    assert_eq!(pair.state("a").as_deref(), Some("MASTER"));
    assert_eq!(pair.state("b").as_deref(), Some("BACKUP"));
    // One answer counts it up again.
    pair.gateway_arp(true);
    for name in ["a", "b"] {
        pair.wait_pair(name, "uplink score 0 -> 1");
    }
    assert_eq!(pair.state("a").as_deref(), Some("MASTER"));
    // The summary line carries the score.
    let status = pair.ask("a", &["status"]);
    assert!(
        status.contains("status: pair heartbeat peer ") && status.contains(" uplink=1/1"),
        "{status}"
    );
}
