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
//! - `pair_replicate_one_field_ms_{p50,p99}`: `commit` of one changed field sent on A's control
//!   socket (by this bench, not a client process) until A's console prints that the generation
//!   was applied on the partner (commit, local apply, push
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
use std::path::Path;
use std::time::{Duration, Instant};

use tandem_lab::cable_pair::{code_in, peer_link_local, CablePair};
use tandem_lab::host::HostProcess;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const LIMIT: Duration = Duration::from_secs(120);

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A config of `services` x `servers`, every real server at `weight`. As a big real config is
/// built: the services share 15 virtual addresses (ports 1000 and up), which the box holds on
/// its interface beside an address in the real servers' subnet, so validation has nothing to
/// warn about (a config whose 1000 addresses no box answers for, or whose 10,000 real servers
/// are on no connected subnet, carries a warning each, formatted on every commit on both
/// boxes).
fn big_config(services: usize, servers: usize, weight: u32) -> String {
    let mut text = String::from(
        "[system]\nhostname = \"bench\"\n\n[peer_link]\ninterface = \"peer\"\n\n\
         [[interfaces]]\nname = \"peer\"\naddresses = [",
    );
    for address in 1..=VIRTUAL_ADDRESSES {
        let _ = write!(text, "\"10.0.0.{address}/24\", ");
    }
    // The real servers' subnet, directly connected (as a NAT director's private side is).
    text.push_str("\"172.31.255.254/12\"]\n\n");
    for service in 0..services {
        let address = 1 + service % VIRTUAL_ADDRESSES;
        let port = 1000 + service / VIRTUAL_ADDRESSES;
        let _ = write!(
            text,
            "[[virtual_services]]\naddress = \"10.0.0.{address}\"\nport = {port}\nprotocol = \"tcp\"\n\n"
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

/// Virtual addresses the services of [`big_config`] share.
const VIRTUAL_ADDRESSES: usize = 15;

fn report(name: &str, mut samples: Vec<f64>) {
    samples.sort_by(f64::total_cmp);
    println!(
        "bench: {name}_p50 {:.2} ms",
        tandem_lab::figures::percentile_sorted(&samples, 50)
    );
    println!(
        "bench: {name}_p99 {:.2} ms",
        tandem_lab::figures::percentile_sorted(&samples, 99)
    );
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

/// `line` on the control socket at `path`, spoken here rather than through a `tandem` client
/// process (whose start would be part of every figure); the daemon's answer.
fn control_request(path: &Path, line: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(path).unwrap();
    stream.write_all(format!("{line}\n").as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// `commit` on box a until a's console says the partner applied it, in ms; what a reported
/// for the transfer itself goes to `reported`.
fn commit_until_applied_on_partner(
    pair: &CablePair,
    a: &HostProcess,
    reported: &mut Vec<f64>,
) -> f64 {
    let mark = a.console.mark();
    let t = Instant::now();
    let committed = control_request(&pair.control("a"), "commit");
    assert!(committed.contains("applied"), "{committed}");
    let line = a
        .console
        .wait_for_since(mark, "applied on the partner in", LIMIT)
        .unwrap();
    let elapsed = t.elapsed().as_secs_f64() * 1e3;
    reported.extend(reported_ms(&line));
    elapsed
}

fn main() {
    let services = knob("PAIR_BENCH_SERVICES", 1000);
    let servers = knob("PAIR_BENCH_SERVERS", 10);
    let commits = knob("PAIR_BENCH_COMMITS", 20);
    let pair = CablePair::new("prb", Path::new(TANDEM)).unwrap();
    // A fresh veth's link-local addresses are tentative (duplicate address detection) for
    // about a second; a real peer link has been up for long when an operator pairs.
    pair.wait_link_local(LIMIT).unwrap();
    let a = pair
        .start("a", Some(&big_config(services, servers, 100)), LIMIT)
        .unwrap();
    let _b = pair.start("b", None, LIMIT).unwrap();
    println!("bench: pair_config {services} x {servers}");

    // Pairing: code entered on B -> paired.
    let started = pair.ask("a", &["pair", "start"]);
    let code = code_in(&started).unwrap_or_else(|| panic!("no code in {started:?}"));
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
    pair.wait("a", &["pair", "status"], "in sync", LIMIT)
        .unwrap();

    // The peer cable's RTT: one TCP handshake to B's pair port.
    let b_address = peer_link_local(&pair.b).unwrap();
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

    let mut reported = Vec::new();
    let mut one_field = Vec::new();
    for round in 0..commits {
        let set = pair.ask("a", &["set", "system.hostname", &format!("bench-{round}")]);
        assert!(set.contains("set:"), "{set}");
        one_field.push(commit_until_applied_on_partner(&pair, &a, &mut reported));
    }
    report("pair_replicate_one_field_ms", one_field);

    let mut full = Vec::new();
    for round in 0..commits.min(5) {
        let path = pair.dir.path.join(format!("full-{round}.toml"));
        let weight = 50 + u32::try_from(round).unwrap();
        std::fs::write(&path, big_config(services, servers, weight)).unwrap();
        let loaded = pair.ask("a", &["load", path.to_str().unwrap()]);
        assert!(loaded.contains("candidate"), "{loaded}");
        full.push(commit_until_applied_on_partner(&pair, &a, &mut reported));
    }
    report("pair_replicate_full_ms", full);
    report("pair_push_reported_ms", reported);
}
