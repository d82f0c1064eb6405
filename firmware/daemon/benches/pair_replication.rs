//! Pairing and config replication on the host tier, as an operator meets them.
//!
//! Topology (the one of `tests/pair_replication.rs`): two `tandem run` boxes in network
//! namespaces, each with its own `--state DIR`, joined by a veth "peer" cable. Box A starts
//! with a config of `PAIR_BENCH_SERVICES` x `PAIR_BENCH_SERVERS` (default 1000 x 10) virtual
//! services and real servers (the host kernel has no IPVS, so the director engine refuses to
//! start and no health check leaves the namespace); box B starts factory-fresh.
//!
//! Figures (`bench: <name> <value> <unit>`):
//! - `pair_pairing_ms`: `pair join CODE` sent on B's control socket until its answer says
//!   paired (both boxes ran the SPAKE2 exchange, key confirmation, and stored the identity),
//!   once the peer link's link-local addresses left duplicate address detection.
//! - `pair_initial_sync_ms`: from that answer until B runs A's whole config (B's `pair status`
//!   says in sync; polled every 5 ms, so the figure is up to 5 ms late).
//! - `pair_replicate_one_field_ms_{p50,p99}`: `commit` of one changed field sent on A until A's
//!   console prints that the generation was applied on the partner (commit, local apply, push
//!   over TCP, B's decode, validation, store and apply, and B's answer),
//!   `PAIR_BENCH_COMMITS` (default 20) commits.
//! - `pair_replicate_full_ms_{p50,p99}`: the same for a commit that changes every real server
//!   of the config (each commit alternates the weight of all of them).
//! - `pair_push_reported_ms_{p50,p99}`: what A itself reports for the transfer (push start to
//!   the partner's RESULT), over all commits.
//! - `pair_peer_rtt_ms`: one TCP connect over the peer cable (SYN, SYN-ACK), the RTT the
//!   issue's "<= 5 ms + RTT" adds.
//!
//! Nothing is asserted about timing; a setup step that fails ends the run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a failed step is a failed run

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tandem_lab::host::{tandem_query, wait_tandem_query, HostProcess, ScratchDir, TandemRun};
use tandem_lab::netns::{veth_pair, Netns};

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const LIMIT: Duration = Duration::from_secs(120);

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A config of `services` x `servers`, every real server at `weight`.
fn big_config(services: usize, servers: usize, weight: u32) -> String {
    let mut text = String::from(
        "[system]\nhostname = \"bench\"\n\n[peer_link]\ninterface = \"peer\"\n\n\
         [[interfaces]]\nname = \"peer\"\n\n",
    );
    for service in 0..services {
        let [_, _, hi, lo] = u32::try_from(service + 256).unwrap().to_be_bytes();
        let _ = write!(
            text,
            "[[virtual_services]]\naddress = \"10.0.{hi}.{lo}\"\nport = 80\nprotocol = \"tcp\"\n\n"
        );
        for server in 0..servers {
            let n = u32::try_from(service * servers + server).unwrap();
            let [_, b, c, d] = n.to_be_bytes();
            let _ = write!(
                text,
                "[[virtual_services.real_servers]]\naddress = \"172.{}.{c}.{d}\"\nport = 8080\nweight = {weight}\n\n",
                16 + b
            );
        }
    }
    text
}

struct Pair {
    a: Netns,
    b: Netns,
    dir: ScratchDir,
}

impl Pair {
    fn control(&self, name: &str) -> PathBuf {
        self.dir.path.join(format!("{name}.sock"))
    }

    fn start(&self, name: &str, config: Option<&str>) -> HostProcess {
        let ns = if name == "a" { &self.a } else { &self.b };
        let control = self.control(name);
        let state = self.dir.path.join(format!("{name}-state"));
        TandemRun {
            tandem: Path::new(TANDEM),
            dir: &self.dir.path,
            name,
            control: Some(&control),
        }
        .start_with(
            ns,
            config,
            &["--state", state.to_str().unwrap()],
            "pair: pairing and replication on peer",
            LIMIT,
        )
        .unwrap()
    }

    fn ask(&self, name: &str, words: &[&str]) -> String {
        tandem_query(TANDEM.as_ref(), &self.control(name), words)
    }
}

/// The `p`-th percentile (0..=100) of sorted samples, nearest rank.
fn percentile(sorted: &[f64], p: usize) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() - 1) * p + 50) / 100;
    sorted[rank.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<f64>) {
    samples.sort_by(f64::total_cmp);
    println!("bench: {name}_p50 {:.2} ms", percentile(&samples, 50));
    println!("bench: {name}_p99 {:.2} ms", percentile(&samples, 99));
}

/// "pair: generation 7 applied on the partner in 3.2 ms" -> 3.2
fn reported_ms(line: &str) -> Option<f64> {
    line.split(" in ")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn main() {
    let services = knob("PAIR_BENCH_SERVICES", 1000);
    let servers = knob("PAIR_BENCH_SERVERS", 10);
    let commits = knob("PAIR_BENCH_COMMITS", 20);
    let pair = Pair {
        a: Netns::new("prb-a").unwrap(),
        b: Netns::new("prb-b").unwrap(),
        dir: ScratchDir::new("prb").unwrap(),
    };
    veth_pair(&pair.a, "peer", &pair.b, "peer").unwrap();
    // A fresh veth's link-local addresses are tentative (duplicate address detection) for
    // about a second; a real peer link has been up for long when an operator pairs.
    for ns in [&pair.a, &pair.b] {
        let deadline = Instant::now() + LIMIT;
        loop {
            let out = ns.ip(&["-6", "addr", "show", "dev", "peer"]).unwrap();
            if out.contains("fe80") && !out.contains("tentative") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "link-local address never left DAD"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let a = pair.start("a", Some(&big_config(services, servers, 100)));
    let _b = pair.start("b", None);
    println!("bench: pair_config {services} x {servers}");

    // Pairing: code entered on B -> paired.
    let started = pair.ask("a", &["pair", "start"]);
    let code = started
        .split_whitespace()
        .skip_while(|w| *w != "code")
        .nth(1)
        .unwrap_or_else(|| panic!("no code in {started:?}"))
        .to_owned();
    let t0 = Instant::now();
    let joined = pair.ask("b", &["pair", "join", &code]);
    let pairing = t0.elapsed();
    assert!(joined.contains("paired: this box is b"), "{joined}");
    println!(
        "bench: pair_pairing_ms {:.1} ms",
        pairing.as_secs_f64() * 1e3
    );

    // The fresh box receives the whole config.
    let t1 = Instant::now();
    let deadline = t1 + LIMIT;
    loop {
        if pair.ask("b", &["pair", "status"]).contains("in sync") {
            break;
        }
        assert!(Instant::now() < deadline, "B never got A's config");
        std::thread::sleep(Duration::from_millis(5));
    }
    println!(
        "bench: pair_initial_sync_ms {:.1} ms",
        t1.elapsed().as_secs_f64() * 1e3
    );
    wait_tandem_query(
        TANDEM.as_ref(),
        &pair.control("a"),
        &["pair", "status"],
        LIMIT,
        |t| t.contains("in sync"),
    )
    .unwrap();

    // The peer cable's RTT: one TCP handshake to B's pair port.
    let b_address = {
        let out = pair
            .b
            .ip(&["-6", "-o", "addr", "show", "dev", "peer"])
            .unwrap();
        out.split_whitespace()
            .skip_while(|w| *w != "inet6")
            .nth(1)
            .and_then(|a| a.split('/').next())
            .unwrap()
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
    };
    let scope = pair.a.ifindex("peer").unwrap();
    let rtt = pair
        .a
        .run(move || {
            let to = std::net::SocketAddrV6::new(b_address, 5540, 0, scope);
            let t = Instant::now();
            let _stream = std::net::TcpStream::connect(to).unwrap();
            t.elapsed()
        })
        .unwrap();
    println!("bench: pair_peer_rtt_ms {:.3} ms", rtt.as_secs_f64() * 1e3);

    let mut one_field = Vec::new();
    let mut reported = Vec::new();
    for round in 0..commits {
        let set = pair.ask("a", &["set", "system.hostname", &format!("bench-{round}")]);
        assert!(set.contains("set:"), "{set}");
        let mark = a.console.mark();
        let t = Instant::now();
        let committed = pair.ask("a", &["commit"]);
        assert!(committed.contains("applied"), "{committed}");
        let line = a
            .console
            .wait_for_since(mark, "applied on the partner in", LIMIT)
            .unwrap();
        one_field.push(t.elapsed().as_secs_f64() * 1e3);
        reported.extend(reported_ms(&line));
    }
    report("pair_replicate_one_field_ms", one_field);

    let mut full = Vec::new();
    let full_rounds = commits.min(5);
    for round in 0..full_rounds {
        let path = pair.dir.path.join(format!("full-{round}.toml"));
        std::fs::write(
            &path,
            big_config(services, servers, 50 + u32::try_from(round).unwrap()),
        )
        .unwrap();
        let loaded = pair.ask("a", &["load", path.to_str().unwrap()]);
        assert!(loaded.contains("candidate"), "{loaded}");
        let mark = a.console.mark();
        let t = Instant::now();
        let committed = pair.ask("a", &["commit"]);
        assert!(committed.contains("applied"), "{committed}");
        let line = a
            .console
            .wait_for_since(mark, "applied on the partner in", LIMIT)
            .unwrap();
        full.push(t.elapsed().as_secs_f64() * 1e3);
        reported.extend(reported_ms(&line));
    }
    report("pair_replicate_full_ms", full);
    report("pair_push_reported_ms", reported);
}
