//! The pair heartbeat's failover as a client sees it, tandem against keepalived in the same
//! run, at the same advert interval, on the same topology.
//!
//! Topology (the one of `tests/pair_heartbeat.rs`): two boxes (network namespaces) on a bridged
//! service LAN with a client (bridge ports p1 client, p2 box A, p3 box B), and a veth "peer"
//! cable between the boxes. Tandem runs the heartbeat on it (defaults: 10 ms interval, dead
//! after 30 ms); keepalived has no use for it, but it is there all the same. Both boxes have
//! priority 100, so a restarted box stays backup (no preemption); one VRRP instance (v3), one
//! VIP; the client sends an ICMP echo to the VIP every 1 ms (`tandem_lab::pinger`).
//!
//! Drills and figures (`bench: <name> <value> <unit>`):
//! - Box death: the master's daemon is frozen (SIGSTOP; keepalived: its VRRP child too), its LAN
//!   and peer links go down (one `ip -batch`), then it is SIGKILLed. The figure is
//!   the client's longest silence between two echo replies from the cut until replies flow
//!   again: `pair_failover_gap_<impl>_<interval>_{p50,p99}` (ms), adverts every 1 s and 100 ms.
//!   Between trials the dead box's VIP is removed, its links come back and it is restarted as
//!   the new backup; the next trial starts only when the pair is whole again: the new backup
//!   has heard an advert from the master (a raw socket in its namespace) and, for tandem,
//!   `pair status` says "pair: partner alive" on both boxes. The cut comes at a random phase of
//!   the advert cycle. A trial where the VIP never answered again within 30 s counts in
//!   `..._failed_trials`.
//! - Service LAN split (1 s adverts; a fresh pair per run), the peer cable up. Two ways:
//!   `pair_lan_split_*`: the master's bridge port is set down (`ip link set pN down`), so its
//!   LAN interface loses carrier; `pair_lan_split_carrier_up_*`: the port is set to the bridge
//!   state "disabled" (`bridge link set dev pN state 0`), so it forwards nothing while both ends
//!   keep carrier (a split in the switching that the master's link state does not show).
//!   rtnetlink address events (`tandem_lab::address_monitor`) on both boxes record when each added or deleted the VIP;
//!   `..._dual_master_<impl>` (ms) is the total time within the observation window
//!   (`PAIR_BENCH_SPLIT_WINDOW_MS`, default 6000 ms from the cut; the split is healed at its
//!   end) during which both boxes held the VIP. A master that keeps the VIP while the backup
//!   takes over stays dual-master until the split heals, so such a figure is bounded by the
//!   window (keepalived with carrier up: about window - Master_Down_Interval), not a property
//!   of the implementation. `..._gap_<impl>` (ms) is the client's longest silence within the
//!   window, counting a silence still running at its end (the client reaches only the box
//!   whose port forwards; a gap equal to the window means the service did not come back
//!   before the heal). With `PAIR_BENCH_SPLITS` > 1 the figures are the largest over the runs.
//! - Peer cable cut (tandem only, 1 s adverts): the cable goes down (alternately on A's and on
//!   B's side) for Master_Down_Interval + 1 s, then comes back and the heartbeat is awaited.
//!   `pair_cable_cut_false_takeovers_tandem` (count) is the number of cuts during which the
//!   backup added the VIP (address events on it); the adverts still flow on the LAN, so 0 is
//!   right.
//!
//! Knobs: `PAIR_BENCH_TRIALS` (default 20) box deaths per figure; `PAIR_BENCH_INTERVALS` advert
//! intervals in centiseconds for the box deaths (default `100,10`); `PAIR_BENCH_SPLITS` (split
//! runs per implementation and kind, default 1); `PAIR_BENCH_CABLE_CUTS` (default 3);
//! `PAIR_BENCH_RAW=1` also prints every sorted sample to stderr. A tandem box death slower than
//! 100 ms prints the new master's `pair status` and log lines to stderr, and every tandem split
//! its decision lines. Needs root and keepalived. Nothing about timing is asserted: the bench
//! measures and prints; only a setup step that fails (a box that never comes up, a pair that
//! never becomes whole) ends the run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a failed step is a failed run

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;
use tandem_lab::address_monitor::AddressMonitor;
use tandem_lab::host::{
    keepalived, tandem_query, wait_tandem_query, HostProcess, HostSegment, ScratchDir, TandemRun,
};
use tandem_lab::netns::{veth_pair, Netns};
use tandem_lab::pinger::{now_unix, Pinger};
use tandem_lab::vrrp_status::instance_state;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const VIP: &str = "192.0.2.100";
const CLIENT: &str = "192.0.2.10";
const LIMIT: Duration = Duration::from_secs(30);
/// A box death slower than this prints tandem's decision lines.
const SLOW: Duration = Duration::from_millis(100);
/// VRRP's IP protocol number.
const VRRP_PROTO: i32 = 112;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Impl {
    Tandem,
    Keepalived,
}

impl Impl {
    fn name(self) -> &'static str {
        match self {
            Impl::Tandem => "tandem",
            Impl::Keepalived => "keepalived",
        }
    }
}

struct Node {
    ns: Netns,
    address: &'static str,
    /// Its port on the service LAN's bridge.
    port: &'static str,
    process: Option<HostProcess>,
    starts: u32,
}

/// Two boxes of one implementation, the client, the bridge and the peer cable.
struct Bed {
    segment: HostSegment,
    nodes: [Node; 2],
    client: Netns,
    dir: ScratchDir,
    imp: Impl,
    advert_cs: u16,
}

fn holds_vip(ns: &Netns) -> bool {
    ns.ip(&["-o", "addr", "show", "dev", "eth0"])
        .is_ok_and(|out| out.contains(&format!(" {VIP}/")))
}

/// Polls `check` every 5 ms until it holds (true) or `limit` passes (false).
fn wait_for(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    while started.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    check()
}

fn wait_until(what: &str, check: impl FnMut() -> bool) {
    assert!(wait_for(LIMIT, check), "timed out waiting for {what}");
}

/// Waits until a VRRP advert from `from` arrives in `ns`, on a raw socket opened now (so the
/// advert was sent after the call): the box there has a master to listen to.
fn wait_advert(ns: &Netns, from: &str, limit: Duration) -> bool {
    use std::io::Read;
    let from: Ipv4Addr = from.parse().unwrap();
    ns.run(move || {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(VRRP_PROTO)))
            .expect("raw VRRP socket");
        // The daemon there has joined the group already; joining here too makes the delivery
        // independent of what the daemon does.
        let _ = socket.join_multicast_v4(&Ipv4Addr::new(224, 0, 0, 18), &Ipv4Addr::UNSPECIFIED);
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let deadline = Instant::now() + limit;
        let mut buffer = [0u8; 1500];
        while Instant::now() < deadline {
            let Ok(len) = (&socket).read(&mut buffer) else {
                continue;
            };
            if len >= 20 && buffer[12..16] == from.octets() {
                return true;
            }
        }
        false
    })
    .unwrap_or(false)
}

/// Waits until `monitor` has seen the VIP added.
fn vip_added(monitor: &AddressMonitor, limit: Duration) -> bool {
    let vip: IpAddr = VIP.parse().unwrap();
    wait_for(limit, || {
        monitor
            .events()
            .iter()
            .any(|event| event.address == vip && !event.deleted)
    })
}

/// Stops `monitor` and returns (unix time, deleted) for each event on the VIP.
fn vip_events(monitor: AddressMonitor) -> Vec<(f64, bool)> {
    let vip: IpAddr = VIP.parse().unwrap();
    monitor
        .stop()
        .into_iter()
        .filter(|event| event.address == vip)
        .map(|event| (event.at, event.deleted))
        .collect()
}

/// Total time within [from, to] during which both boxes held the VIP, given whether each held
/// it at `from` and each box's (time, deleted) events.
fn both_held(held: [bool; 2], events: [&[(f64, bool)]; 2], from: f64, to: f64) -> f64 {
    let mut merged: Vec<(f64, usize, bool)> = events
        .iter()
        .enumerate()
        .flat_map(|(box_index, list)| list.iter().map(move |(t, del)| (*t, box_index, *del)))
        .filter(|(t, _, _)| *t > from)
        .collect();
    merged.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut held = held;
    let mut at = from;
    let mut total = 0.0;
    for (t, box_index, deleted) in merged {
        let t = t.min(to);
        if held[0] && held[1] {
            total += t - at;
        }
        at = t;
        held[box_index] = !deleted;
    }
    if held[0] && held[1] {
        total += to - at;
    }
    total
}

/// The longest silence between replies within (from, to], counting the stretch from the last
/// reply to `to` (service not back by the end of the window).
fn longest_silence(replies: &[f64], from: f64, to: f64) -> f64 {
    let mut previous = replies
        .iter()
        .copied()
        .rfind(|t| *t <= from)
        .unwrap_or(from);
    let mut longest: f64 = 0.0;
    for t in replies.iter().copied().filter(|t| *t > from && *t <= to) {
        longest = longest.max(t - previous);
        previous = t;
    }
    longest.max(to - previous)
}

/// The node names: index 0 is box A, 1 is box B.
fn node_name(index: usize) -> &'static str {
    if index == 0 {
        "a"
    } else {
        "b"
    }
}

impl Bed {
    fn new(imp: Impl, advert_cs: u16, tag: &str) -> Bed {
        let mut segment = HostSegment::new(&format!("{tag}s")).unwrap();
        let client = Netns::new(&format!("{tag}c")).unwrap();
        let a = Netns::new(&format!("{tag}a")).unwrap();
        let b = Netns::new(&format!("{tag}b")).unwrap();
        // Bridge ports in attach order: p1 client, p2 box A, p3 box B.
        for (ns, own) in [(&client, CLIENT), (&a, "192.0.2.2"), (&b, "192.0.2.3")] {
            segment.attach(ns, "eth0").unwrap();
            ns.ip(&["addr", "add", &format!("{own}/24"), "dev", "eth0", "nodad"])
                .unwrap();
        }
        veth_pair(&a, "peer", &b, "peer").unwrap();
        let dir = ScratchDir::new(tag).unwrap();
        for (file, verb) in [("down", "down"), ("up", "up")] {
            std::fs::write(
                dir.path.join(format!("links-{file}.batch")),
                format!("link set eth0 {verb}\nlink set peer {verb}\n"),
            )
            .unwrap();
        }
        let node = |ns, address, port| Node {
            ns,
            address,
            port,
            process: None,
            starts: 0,
        };
        Bed {
            segment,
            nodes: [node(a, "192.0.2.2", "p2"), node(b, "192.0.2.3", "p3")],
            client,
            dir,
            imp,
            advert_cs,
        }
    }

    fn control(&self, index: usize) -> PathBuf {
        let node = &self.nodes[index];
        self.dir
            .path
            .join(format!("{}-{}.sock", node_name(index), node.starts))
    }

    /// Starts the daemon of box `index` (it comes up as backup if the other is master).
    fn start(&mut self, index: usize) {
        self.nodes[index].starts += 1;
        let control = self.control(index);
        let node = &mut self.nodes[index];
        let name = format!("{}-{}", node_name(index), node.starts);
        let dir = self.dir.path.clone();
        let process = match self.imp {
            Impl::Tandem => {
                let config = format!(
                    "[system]\nhostname = \"{name}\"\n\n\
                     [peer_link]\ninterface = \"peer\"\n\n\
                     [[interfaces]]\nname = \"eth0\"\naddresses = [\"{}/24\"]\n\n\
                     [[interfaces]]\nname = \"peer\"\n\n\
                     [[vrrp]]\nname = \"web\"\nvrid = 71\ninterface = \"eth0\"\npriority = 100\n\
                     advert_interval_cs = {}\naccept_mode = true\n\n\
                     [[vrrp.vips]]\naddress = \"{VIP}\"\nprefix = 24\n",
                    node.address, self.advert_cs
                );
                TandemRun {
                    tandem: Path::new(TANDEM),
                    dir: &dir,
                    name: &name,
                    control: Some(&control),
                }
                .start(&node.ns, &config, "vrrp: running", LIMIT)
                .unwrap()
            }
            Impl::Keepalived => {
                let interval = f64::from(self.advert_cs) / 100.0;
                let config = format!(
                    "global_defs {{\n  router_id {name}\n  vrrp_version 3\n}}\n\
                     vrrp_instance web {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 71\n  priority 100\n  advert_int {interval}\n\
                       virtual_ipaddress {{\n    {VIP}/24 dev eth0\n  }}\n}}\n"
                );
                let process = keepalived(&node.ns, &name, &config, &dir).unwrap();
                process
                    .console
                    .wait_for("Entering BACKUP STATE", LIMIT)
                    .unwrap();
                process
            }
        };
        node.process = Some(process);
    }

    fn ask(&self, index: usize, words: &[&str]) -> String {
        tandem_query(TANDEM.as_ref(), &self.control(index), words)
    }

    fn wait_ask(&self, index: usize, words: &[&str], check: impl Fn(&str) -> bool) -> bool {
        wait_tandem_query(TANDEM.as_ref(), &self.control(index), words, LIMIT, check).is_ok()
    }

    /// Waits until box `backup` is a backup listening to the other box as master: tandem's
    /// `vrrp status` says BACKUP and `pair status` "partner alive" on both boxes; then (both
    /// implementations) an advert from the master reaches the backup's namespace.
    fn wait_whole(&self, backup: usize) {
        let master = 1 - backup;
        if self.imp == Impl::Tandem {
            assert!(
                self.wait_ask(backup, &["vrrp", "status"], |text| {
                    instance_state(text, "web") == Some("BACKUP")
                }),
                "box {} never became backup",
                node_name(backup)
            );
            for index in [backup, master] {
                assert!(
                    self.wait_ask(index, &["pair", "status"], |text| text
                        .contains("pair: partner alive")),
                    "box {} never heard its partner: {}",
                    node_name(index),
                    self.ask(index, &["pair", "status"])
                );
            }
        }
        assert!(
            wait_advert(&self.nodes[backup].ns, self.nodes[master].address, LIMIT),
            "box {} hears no adverts from box {}",
            node_name(backup),
            node_name(master)
        );
    }

    /// Box A first, so that it becomes master; then B as its backup.
    fn bring_up(&mut self) {
        self.start(0);
        wait_until("the first master", || holds_vip(&self.nodes[0].ns));
        self.start(1);
        self.wait_whole(1);
    }

    fn master(&self) -> Option<usize> {
        (0..2).find(|i| holds_vip(&self.nodes[*i].ns))
    }

    /// Box death: SIGSTOP (keepalived's VRRP child too), both links down in one `ip -batch`,
    /// SIGKILL.
    fn kill_box(&mut self, index: usize) {
        // As when the power fails, everything stops at once: the daemon is frozen first (a
        // link going down under a live daemon lets it fault and hand over on the heartbeat, a
        // planned hand-over rather than a death; a daemon killed while its kernel still answers
        // ARP for a few ms is a crash, not a death), then the links go dark together, then it
        // is killed.
        let batch = self.dir.path.join("links-down.batch");
        let node = &mut self.nodes[index];
        let process = node.process.take();
        let vrrp_child = process.as_ref().and_then(|process| {
            let child = self.dir.path.join(format!("{}.vrrp.pid", process.name));
            let pid: i32 = std::fs::read_to_string(&child).ok()?.trim().parse().ok()?;
            Some(nix::unistd::Pid::from_raw(pid))
        });
        for signal in [Signal::SIGSTOP, Signal::SIGKILL] {
            if let Some(pid) = vrrp_child {
                let _ = nix::sys::signal::kill(pid, signal);
            }
            if let Some(process) = &process {
                process.signal(signal).unwrap();
            }
            if signal == Signal::SIGSTOP {
                node.ns.ip(&["-batch", batch.to_str().unwrap()]).unwrap();
            }
        }
        drop(process);
    }

    /// The dead box back: its stale VIP removed, links up, daemon restarted as the backup.
    fn revive(&mut self, index: usize) {
        let batch = self.dir.path.join("links-up.batch");
        let ns = &self.nodes[index].ns;
        let _ = ns.ip(&["addr", "del", &format!("{VIP}/24"), "dev", "eth0"]);
        ns.ip(&["-batch", batch.to_str().unwrap()]).unwrap();
        self.start(index);
        self.wait_whole(index);
    }

    /// One box death; the client's longest silence, or None if the VIP never answered again.
    fn death_trial(&mut self) -> Option<Duration> {
        if !wait_for(LIMIT, || self.master().is_some()) {
            return None;
        }
        let master = self.master()?;
        let other = 1 - master;
        let mark = self.nodes[other]
            .process
            .as_ref()
            .map_or(0, |p| p.console.mark());
        // The takeover is watched by events, not by polling: nothing forks during the window.
        let monitor = AddressMonitor::start(&self.nodes[other].ns).unwrap();
        let ping = Pinger::start(&self.client, VIP.parse().unwrap()).unwrap();
        let answering = ping.wait_reply_after(now_unix(), LIMIT);
        // The cut at a random phase of the advert cycle (and of the heartbeat's).
        let interval_us = u64::from(self.advert_cs) * 10_000;
        let phase_us = u64::from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos()),
        ) % interval_us.max(1);
        std::thread::sleep(Duration::from_millis(100) + Duration::from_micros(phase_us));
        let cut = now_unix();
        self.kill_box(master);
        let took = vip_added(&monitor, LIMIT);
        let took_seen = now_unix();
        drop(monitor);
        let resumed = answering && took && ping.wait_reply_after(took_seen, LIMIT);
        let gap = ping.longest_gap_since(cut);
        let _ = ping.stop();
        if self.imp == Impl::Tandem && (!resumed || gap > SLOW) {
            self.explain(other, mark, gap, resumed);
        }
        self.revive(master);
        resumed.then_some(gap)
    }

    /// Prints a slow tandem takeover's story: the new master's pair decisions and log lines.
    fn explain(&self, index: usize, mark: usize, gap: Duration, resumed: bool) {
        let status = self.ask(index, &["pair", "status"]);
        let log = self.nodes[index]
            .process
            .as_ref()
            .map(|p| String::from_utf8_lossy(&p.console.bytes_since(mark).0).into_owned())
            .unwrap_or_default();
        eprintln!(
            "pair_failover: tandem {} at {} ms adverts: client gap {:.1} ms{}\n{status}box {} log since the trial began:\n{log}",
            node_name(index),
            u32::from(self.advert_cs) * 10,
            gap.as_secs_f64() * 1000.0,
            if resumed {
                ""
            } else {
                " (VIP never answered again)"
            },
            node_name(index),
        );
    }
}

/// How the service LAN is split at the master's bridge port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Split {
    /// `ip link set pN down`: the master's LAN interface loses carrier.
    PortDown,
    /// `bridge link set dev pN state 0`: the port forwards nothing, carrier stays up on both
    /// ends (a split somewhere in the switching, invisible to the master's link state).
    CarrierUp,
}

impl Split {
    /// The figure names' part after `pair_lan_split_`.
    fn prefix(self) -> &'static str {
        match self {
            Split::PortDown => "",
            Split::CarrierUp => "carrier_up_",
        }
    }

    fn set(self, segment: &Netns, port: &str, split: bool) {
        match self {
            Split::PortDown => {
                segment.ip(&["link", "set", port, if split { "down" } else { "up" }])
            }
            Split::CarrierUp => segment.exec(
                "bridge",
                &[
                    "link",
                    "set",
                    "dev",
                    port,
                    "state",
                    if split { "0" } else { "3" },
                ],
            ),
        }
        .unwrap();
    }
}

/// One service-LAN split on a fresh pair at 1 s adverts: (dual-master ms, client gap ms).
fn lan_split(imp: Impl, split: Split, window: Duration, run: usize) -> (f64, f64) {
    let tag = format!("l{}{}{run}", &imp.name()[..1], split.prefix().len());
    let mut bed = Bed::new(imp, 100, &tag);
    bed.bring_up();
    let master = bed.master().unwrap();
    let monitors = [
        AddressMonitor::start(&bed.nodes[0].ns).unwrap(),
        AddressMonitor::start(&bed.nodes[1].ns).unwrap(),
    ];
    let ping = Pinger::start(&bed.client, VIP.parse().unwrap()).unwrap();
    assert!(
        ping.wait_reply_after(now_unix(), LIMIT),
        "the VIP never answered the client"
    );
    let held = [holds_vip(&bed.nodes[0].ns), holds_vip(&bed.nodes[1].ns)];
    let cut = now_unix();
    let port = bed.nodes[master].port;
    split.set(&bed.segment.netns, port, true);
    // The observation window (a measurement span, not a wait for a condition).
    std::thread::sleep(window.saturating_sub(Duration::from_secs_f64(now_unix() - cut)));
    let end = now_unix();
    split.set(&bed.segment.netns, port, false);
    let gap = longest_silence(&ping.replies(), cut, end);
    let _ = ping.stop();
    let [on_a, on_b] = monitors.map(vip_events);
    let dual = both_held(held, [&on_a, &on_b], cut, end);
    let story = |events: &[(f64, bool)]| -> String {
        let text: Vec<String> = events
            .iter()
            .filter(|(t, _)| *t > cut)
            .map(|(t, deleted)| {
                format!(
                    "{} at {:.1} ms",
                    if *deleted { "deleted" } else { "added" },
                    (t - cut) * 1000.0
                )
            })
            .collect();
        if text.is_empty() {
            "no change".to_owned()
        } else {
            text.join(", ")
        }
    };
    eprintln!(
        "pair_failover: LAN split {split:?} {} run {run} (box {} cut off): VIP on A: {}; on B: {}; both {:.1} ms, client gap {:.1} ms",
        imp.name(),
        node_name(master),
        story(&on_a),
        story(&on_b),
        dual * 1000.0,
        gap * 1000.0
    );
    if imp == Impl::Tandem {
        for index in 0..2 {
            let status = bed.ask(index, &["pair", "status"]);
            for line in status
                .lines()
                .filter(|l| l.contains("decision") || l.contains("ALARM"))
            {
                eprintln!("  {}: {line}", node_name(index));
            }
        }
    }
    (dual * 1000.0, gap * 1000.0)
}

/// Cuts the peer cable `cuts` times (tandem, 1 s adverts) for Master_Down_Interval + 1 s each;
/// returns how many times the backup added the VIP meanwhile.
fn cable_cuts(cuts: usize) -> usize {
    let advert_cs = 100;
    let mut bed = Bed::new(Impl::Tandem, advert_cs, "cc");
    bed.bring_up();
    // Master_Down_Interval = 3 * Advert_Interval + Skew_Time, Skew = (256 - 100) / 256 adverts.
    let advert = Duration::from_millis(u64::from(advert_cs) * 10);
    let down_for = advert * 3 + advert * 156 / 256 + Duration::from_secs(1);
    let mut takeovers = 0;
    for cut in 0..cuts {
        assert!(wait_for(LIMIT, || bed.master().is_some()), "no master");
        let master = bed.master().unwrap();
        let backup = 1 - master;
        let side = cut % 2;
        let monitor = AddressMonitor::start(&bed.nodes[backup].ns).unwrap();
        bed.nodes[side]
            .ns
            .ip(&["link", "set", "peer", "down"])
            .unwrap();
        let started = Instant::now();
        if !bed.wait_ask(backup, &["pair", "status"], |text| {
            text.contains("ALARM: peer cable down")
        }) {
            eprintln!(
                "pair_failover: cable cut {cut}: box {} raised no cable alarm",
                node_name(backup)
            );
        }
        // The cable stays down this long (a measurement span).
        std::thread::sleep(down_for.saturating_sub(started.elapsed()));
        let took = holds_vip(&bed.nodes[backup].ns);
        let status = bed.ask(backup, &["pair", "status"]);
        bed.nodes[side]
            .ns
            .ip(&["link", "set", "peer", "up"])
            .unwrap();
        for index in [backup, master] {
            assert!(
                bed.wait_ask(index, &["pair", "status"], |text| {
                    text.contains("pair: partner alive") && !text.contains("ALARM")
                }),
                "the heartbeat did not come back on box {}",
                node_name(index)
            );
        }
        let added = vip_events(monitor).iter().any(|(_, deleted)| !deleted);
        if added || took {
            takeovers += 1;
            eprintln!(
                "pair_failover: cable cut {cut} (on {}'s side): backup {} took the VIP\n{status}",
                node_name(side),
                node_name(backup)
            );
        }
    }
    takeovers
}

fn report(name: &str, values: &mut [f64], unit: &str) {
    tandem_lab::figures::report(name, values, unit, "PAIR_BENCH_RAW");
}

fn interval_name(cs: u16) -> String {
    match cs {
        100 => "1s".to_owned(),
        10 => "100ms".to_owned(),
        1 => "10ms".to_owned(),
        _ => format!("{}ms", u32::from(cs) * 10),
    }
}

fn env_number<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    if Netns::new("pprobe").is_err() {
        println!("pair_failover: cannot create network namespaces (needs root); skipped");
        return;
    }
    if !Path::new("/usr/sbin/keepalived").exists() {
        println!("pair_failover: /usr/sbin/keepalived missing; skipped");
        return;
    }
    let trials: usize = env_number("PAIR_BENCH_TRIALS", 20);
    let splits: usize = env_number("PAIR_BENCH_SPLITS", 1);
    let cuts: usize = env_number("PAIR_BENCH_CABLE_CUTS", 3);
    let window = Duration::from_millis(env_number("PAIR_BENCH_SPLIT_WINDOW_MS", 6000));
    let intervals: Vec<u16> = std::env::var("PAIR_BENCH_INTERVALS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 10]);
    for &advert_cs in &intervals {
        for imp in [Impl::Tandem, Impl::Keepalived] {
            let mut bed = Bed::new(
                imp,
                advert_cs,
                &format!("pd{}{advert_cs}", &imp.name()[..1]),
            );
            bed.bring_up();
            let mut gaps = Vec::new();
            for _ in 0..trials {
                if let Some(gap) = bed.death_trial() {
                    gaps.push(gap.as_secs_f64() * 1000.0);
                }
            }
            let name = format!(
                "pair_failover_gap_{}_{}",
                imp.name(),
                interval_name(advert_cs)
            );
            report(&name, &mut gaps, "ms");
            if gaps.len() < trials {
                println!("bench: {name}_failed_trials {} trials", trials - gaps.len());
            }
        }
    }
    for split in [Split::PortDown, Split::CarrierUp] {
        for imp in [Impl::Tandem, Impl::Keepalived] {
            let (mut dual, mut gap) = (0.0_f64, 0.0_f64);
            for run in 0..splits {
                let (d, g) = lan_split(imp, split, window, run);
                dual = dual.max(d);
                gap = gap.max(g);
            }
            if splits > 0 {
                let (prefix, name) = (split.prefix(), imp.name());
                println!("bench: pair_lan_split_{prefix}dual_master_{name} {dual:.1} ms");
                println!("bench: pair_lan_split_{prefix}gap_{name} {gap:.1} ms");
            }
        }
    }
    if cuts > 0 {
        println!(
            "bench: pair_cable_cut_false_takeovers_tandem {} count",
            cable_cuts(cuts)
        );
    }
}
