//! VRRP failover as a client sees it, tandem against keepalived in the same run.
//!
//! Two boxes of one implementation (network namespaces on one bridge, equal priority 100 so a
//! restarted box stays backup) and a client that sends an ICMP echo to the VIP every 1 ms (its own raw socket, see `tandem_lab::pinger`). Per
//! trial the master is SIGKILLed and its VIP removed (the box is gone); the figure is the
//! longest silence between two echo replies from the kill until replies flow again. Then the
//! dead box is restarted as the new backup and the next trial kills the other one.
//!
//! Figures (`bench: <name> <value> <unit>`):
//! - `vrrp_failover_gap_<impl>_<interval>_{p50,p99}`: adverts every 1 s, 100 ms, 10 ms (v3);
//! - `vrrp_planned_handover_gap_<impl>_100ms_{p50,p99}`: SIGTERM instead (priority 0);
//! - `vrrp_act_{vips_added,first_announce}_{p50,p99}`: tandem's own timestamps from the
//!   Master_Down timer expiry to the VIP being added and the first gratuitous ARP sent.
//!
//! `VRRP_BENCH_TRIALS` (default 30) sets the trials per figure, `VRRP_BENCH_INTERVALS` the
//! advert intervals in centiseconds (default `100,10,1`); `VRRP_BENCH_RAW=1` also prints every
//! sorted sample to stderr. Needs root and keepalived.

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a failed step is a failed run

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;
use tandem_lab::host::{keepalived, HostProcess, HostSegment, ScratchDir, TandemRun};
use tandem_lab::netns::Netns;
use tandem_lab::pinger::{now_unix, Pinger};

const VIP: &str = "192.0.2.100";
const LIMIT: Duration = Duration::from_secs(30);

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
    process: Option<HostProcess>,
    starts: u32,
}

struct Pair {
    _segment: HostSegment,
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

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let started = Instant::now();
    while started.elapsed() < LIMIT {
        if check() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    panic!("timed out waiting for {what}");
}

impl Pair {
    fn new(imp: Impl, advert_cs: u16) -> Pair {
        let tag = format!("b{}{advert_cs}", &imp.name()[..1]);
        let mut segment = HostSegment::new(&format!("{tag}s")).unwrap();
        let mut make = |suffix: &str, address: &'static str| {
            let ns = Netns::new(&format!("{tag}{suffix}")).unwrap();
            segment.attach(&ns, "eth0").unwrap();
            ns.ip(&["addr", "add", &format!("{address}/24"), "dev", "eth0"])
                .unwrap();
            ns
        };
        let a = make("a", "192.0.2.2");
        let b = make("b", "192.0.2.3");
        let client = make("c", "192.0.2.10");
        let dir = ScratchDir::new(&tag).unwrap();
        Pair {
            _segment: segment,
            nodes: [
                Node {
                    ns: a,
                    address: "192.0.2.2",
                    process: None,
                    starts: 0,
                },
                Node {
                    ns: b,
                    address: "192.0.2.3",
                    process: None,
                    starts: 0,
                },
            ],
            client,
            dir,
            imp,
            advert_cs,
        }
    }

    fn start(&mut self, index: usize) {
        let node = &mut self.nodes[index];
        node.starts += 1;
        let name = format!("n{index}-{}", node.starts);
        let dir = self.dir.path.clone();
        let process = match self.imp {
            Impl::Tandem => {
                let config = format!(
                    "[system]\nhostname = \"{name}\"\n\n[[interfaces]]\nname = \"eth0\"\naddresses = [\"{}/24\"]\n\n\
                     [[vrrp]]\nname = \"vi\"\nvrid = 51\ninterface = \"eth0\"\npriority = 100\nadvert_interval_cs = {}\n\
                     accept_mode = true\n\n\
                     [[vrrp.vips]]\naddress = \"{VIP}\"\nprefix = 24\n",
                    node.address, self.advert_cs
                );
                let control = dir.join(format!("{name}.sock"));
                TandemRun {
                    tandem: Path::new(env!("CARGO_BIN_EXE_tandem")),
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
                     vrrp_instance VI {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 100\n  advert_int {interval}\n\
                       virtual_ipaddress {{\n    {VIP}/24 dev eth0\n  }}\n}}\n"
                );
                let _ = node
                    .ns
                    .ip(&["addr", "del", &format!("{VIP}/24"), "dev", "eth0"]);
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

    /// Stops node `index`: SIGKILL (crash; its VIP is removed as a dead box's would be) or
    /// SIGTERM (planned: it hands over itself).
    fn stop(&mut self, index: usize, crash: bool) {
        let node = &mut self.nodes[index];
        let Some(mut process) = node.process.take() else {
            return;
        };
        if crash {
            let child = self.dir.path.join(format!("{}.vrrp.pid", process.name));
            if let Ok(pid) = std::fs::read_to_string(&child) {
                if let Ok(pid) = pid.trim().parse() {
                    let _ =
                        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
            process.signal(Signal::SIGKILL).unwrap();
            let _ = node
                .ns
                .ip(&["addr", "del", &format!("{VIP}/24"), "dev", "eth0"]);
            drop(process);
        } else {
            process.signal(Signal::SIGTERM).unwrap();
            let _ = process.wait(Duration::from_secs(10));
        }
    }

    fn master(&self) -> Option<usize> {
        (0..2).find(|i| holds_vip(&self.nodes[*i].ns))
    }

    /// Starts both; node 0 first so it becomes master.
    fn bring_up(&mut self) {
        self.start(0);
        wait_until("the first master", || holds_vip(&self.nodes[0].ns));
        self.start(1);
        self.settle();
    }

    fn settle(&self) {
        std::thread::sleep(Duration::from_millis(u64::from(self.advert_cs) * 30 + 300));
    }

    /// One trial: stop the master, measure the client's longest silence; restart it as backup.
    /// Returns the gap and tandem's act-latency line of the new master, if any.
    fn trial(&mut self, crash: bool) -> Option<(Duration, Option<(f64, f64)>)> {
        let master = self.master()?;
        let other = 1 - master;
        if let Some(p) = &self.nodes[other].process {
            p.console.skip_to_end();
        }
        let ping = Pinger::start(&self.client, VIP.parse().unwrap()).unwrap();
        // Kill at a random phase of the master's advert cycle: a fixed delay would always hit
        // the same phase and bias one implementation against the other.
        let interval_us = u64::from(self.advert_cs) * 10_000;
        let phase_us = u64::from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos()),
        ) % interval_us.max(1);
        std::thread::sleep(Duration::from_millis(200) + Duration::from_micros(phase_us));
        let killed_at = now_unix();
        self.stop(master, crash);
        wait_until("the takeover", || holds_vip(&self.nodes[other].ns));
        let resumed = ping.wait_reply_after(killed_at + 0.001, LIMIT);
        std::thread::sleep(Duration::from_millis(50));
        let gap = ping.longest_gap_since(killed_at);
        let _ = ping.stop();
        let act = self.nodes[other].process.as_ref().and_then(|p| {
            p.console
                .wait_for("act latency", Duration::from_millis(200))
                .ok()
                .and_then(|line| parse_act(&line))
        });
        self.start(master);
        self.settle();
        resumed.then_some((gap, act))
    }
}

/// `... VIPs added 1736 us -> first announce 1838 us` -> (1736, 1838).
fn parse_act(line: &str) -> Option<(f64, f64)> {
    let number_after = |key: &str| -> Option<f64> {
        line.split(key)
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some((
        number_after("VIPs added ")?,
        number_after("first announce ")?,
    ))
}

fn report(name: &str, values: &mut [f64], unit: &str) {
    tandem_lab::figures::report(name, values, unit, "VRRP_BENCH_RAW");
}

fn interval_name(cs: u16) -> &'static str {
    match cs {
        100 => "1s",
        10 => "100ms",
        _ => "10ms",
    }
}

fn main() {
    if Netns::new("bprobe").is_err() {
        println!("vrrp_failover: cannot create network namespaces (needs root); skipped");
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let trials: usize = std::env::var("VRRP_BENCH_TRIALS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let mut act_vips = Vec::new();
    let mut act_announce = Vec::new();
    let intervals: Vec<u16> = std::env::var("VRRP_BENCH_INTERVALS")
        .ok()
        .map(|v| v.split(',').filter_map(|n| n.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![100, 10, 1]);
    for advert_cs in intervals {
        for imp in [Impl::Tandem, Impl::Keepalived] {
            let mut pair = Pair::new(imp, advert_cs);
            pair.bring_up();
            let mut gaps = Vec::new();
            let mut failed = 0;
            for _ in 0..trials {
                match pair.trial(true) {
                    Some((gap, act)) => {
                        gaps.push(gap.as_secs_f64() * 1000.0);
                        if let Some((vips, announce)) = act {
                            act_vips.push(vips);
                            act_announce.push(announce);
                        }
                    }
                    None => failed += 1,
                }
            }
            let name = format!(
                "vrrp_failover_gap_{}_{}",
                imp.name(),
                interval_name(advert_cs)
            );
            report(&name, &mut gaps, "ms");
            if failed > 0 {
                println!("bench: {name}_failed_trials {failed} trials");
            }
            if advert_cs == 10 {
                let mut planned = Vec::new();
                for _ in 0..trials {
                    if let Some((gap, _)) = pair.trial(false) {
                        planned.push(gap.as_secs_f64() * 1000.0);
                    }
                }
                let name = format!("vrrp_planned_handover_gap_{}_100ms", imp.name());
                report(&name, &mut planned, "ms");
                if planned.len() < trials {
                    println!(
                        "bench: {name}_failed_trials {} trials",
                        trials - planned.len()
                    );
                }
            }
            pair.stop(0, true);
            pair.stop(1, true);
        }
    }
    report("vrrp_act_vips_added", &mut act_vips, "us");
    report("vrrp_act_first_announce", &mut act_announce, "us");
}
