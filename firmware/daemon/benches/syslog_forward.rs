//! Remote syslog figures on the host tier (issue 16): a `tandem run` box in a namespace with
//! two `management.syslog` servers (UDP and TCP) across a veth pair, and `debug log COUNT`
//! (the box's debug commands) as the source of lines.
//!
//! Figures (`bench: <name> <value> <unit>`):
//! - `syslog_log_line_us`: what one `Log::line` costs the writer (format, console write, ring
//!   push, subscriber wake-ups), from the box's own report of `debug log 100000`.
//! - `syslog_forward_{udp,tcp}_burst_ms_{p50,p99}`: bursts of `SYSLOG_BENCH_BURST` (default
//!   1000, within the 1024-line ring so none is dropped) lines; from the command sent until the
//!   server holds the whole burst (polled every 1 ms), both servers served at once by the
//!   forwarder's thread; `SYSLOG_BENCH_BURSTS` (default 20) bursts. `..._lines_per_s`: the
//!   burst over its median time.
//! - `syslog_rss_growth_kib`: the box's resident memory after 500,000 lines logged with both
//!   servers gone (the TCP server closed, the UDP port unreachable), less before: what the
//!   bounded queues cost (the ring holds 1024 lines whatever happens).
//!
//! Nothing is asserted; a setup step that fails ends the run.

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a failed step is a failed run

use std::time::{Duration, Instant};

use tandem_lab::figures::{percentile_sorted, report};
use tandem_lab::host::{tandem_query, wait_tandem_query, ScratchDir, TandemRun};
use tandem_lab::netns::{veth_pair, Netns};
use tandem_lab::syslog_receiver::Receiver;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const LIMIT: Duration = Duration::from_secs(30);
const BOX: &str = "198.51.100.2";
const SERVER: &str = "198.51.100.1";

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap()
}

/// Waits (1 ms polls) until `receiver` holds a message containing `text`.
fn wait_for(receiver: &Receiver, text: &str) {
    let deadline = Instant::now() + LIMIT;
    while !receiver
        .raw()
        .iter()
        .rev()
        .take(64)
        .any(|raw| String::from_utf8_lossy(raw).contains(text))
    {
        assert!(Instant::now() < deadline, "never received {text:?}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn main() {
    let burst = knob("SYSLOG_BENCH_BURST", 1000);
    let bursts = knob("SYSLOG_BENCH_BURSTS", 20);
    let dir = ScratchDir::new("slgb").unwrap();
    let node = Netns::new("slgb-b").unwrap();
    let server = Netns::new("slgb-s").unwrap();
    veth_pair(&node, "eth0", &server, "eth0").unwrap();
    node.ip(&["addr", "add", &format!("{BOX}/24"), "dev", "eth0"])
        .unwrap();
    server
        .ip(&["addr", "add", &format!("{SERVER}/24"), "dev", "eth0"])
        .unwrap();
    let mut udp = Receiver::udp(&server.name, format!("{SERVER}:5514").parse().unwrap()).unwrap();
    let mut tcp = Receiver::tcp(&server.name, format!("{SERVER}:5601").parse().unwrap()).unwrap();
    let control = dir.path.join("box.sock");
    let config = format!(
        "[system]\nhostname = \"bench\"\n\n\
         [management]\nsyslog = [{{ address = \"{SERVER}:5514\" }}, \
         {{ address = \"{SERVER}:5601\", transport = \"tcp\" }}]\n\n\
         [[interfaces]]\nname = \"eth0\"\naddresses = [\"{BOX}/24\"]\n"
    );
    let process = TandemRun {
        tandem: TANDEM.as_ref(),
        dir: &dir.path,
        name: "box",
        control: Some(&control),
    }
    .start_with_env(
        &node,
        &config,
        &["TANDEM_DEBUG_COMMANDS=1"],
        "syslog: forwarding the log to tcp://",
        LIMIT,
    )
    .unwrap();
    let ask = |words: &[&str]| tandem_query(TANDEM.as_ref(), &control, words);
    wait_tandem_query(TANDEM.as_ref(), &control, &["status"], LIMIT, |s| {
        s.contains(" connected")
    })
    .unwrap();

    // The writer's cost per line.
    let answer = ask(&["debug", "log", "100000"]);
    let millis: f64 = answer
        .split(" in ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("no time in {answer:?}"));
    println!(
        "bench: syslog_log_line_us {:.2} us",
        millis * 1000.0 / 100_000.0
    );
    wait_for(&tcp, "debug: line 100000 of 100000");
    wait_for(&udp, "debug: line 100000 of 100000");

    // Forwarding: bursts that fit the ring.
    let burst_text = burst.to_string();
    let last = format!("debug: line {burst} of {burst}");
    let (mut udp_times, mut tcp_times) = (Vec::new(), Vec::new());
    for _ in 0..bursts {
        let (udp_before, tcp_before) = (udp.count(), tcp.count());
        let began = Instant::now();
        let answer = ask(&["debug", "log", &burst_text]);
        assert!(answer.starts_with("debug: logged"), "{answer}");
        let (mut udp_done, mut tcp_done) = (None, None);
        let deadline = Instant::now() + LIMIT;
        while udp_done.is_none() || tcp_done.is_none() {
            assert!(Instant::now() < deadline, "a burst never arrived whole");
            if udp_done.is_none() && udp.count() >= udp_before + burst {
                udp_done = Some(began.elapsed());
            }
            if tcp_done.is_none() && tcp.count() >= tcp_before + burst {
                tcp_done = Some(began.elapsed());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let millis = |took: Option<Duration>| took.unwrap().as_secs_f64() * 1e3;
        udp_times.push(millis(udp_done));
        tcp_times.push(millis(tcp_done));
    }
    wait_for(&tcp, &last);
    for (name, times) in [("udp", &mut udp_times), ("tcp", &mut tcp_times)] {
        report(
            &format!("syslog_forward_{name}_burst_ms"),
            times,
            "ms",
            "SYSLOG_BENCH_RAW",
        );
        println!(
            "bench: syslog_forward_{name}_lines_per_s {:.0} lines/s",
            burst as f64 / (percentile_sorted(times, 50) / 1e3)
        );
    }

    // Memory with both servers gone.
    udp.close();
    tcp.close();
    wait_tandem_query(TANDEM.as_ref(), &control, &["status"], LIMIT, |s| {
        s.contains(" down: ")
    })
    .unwrap();
    let before = rss_kib(process.pid());
    for _ in 0..5 {
        ask(&["debug", "log", "100000"]);
    }
    let status = ask(&["status"]);
    let after = rss_kib(process.pid());
    eprintln!("{status}");
    println!(
        "bench: syslog_rss_growth_kib {} KiB ({before} KiB before 500000 lines with the servers gone, {after} KiB after)",
        after.saturating_sub(before)
    );
}
