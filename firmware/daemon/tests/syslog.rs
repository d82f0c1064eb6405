//! Remote syslog on the host tier: a `tandem run` box in a namespace with a VRRP instance and
//! two syslog servers of `management.syslog` (UDP, facility local4; TCP, facility daemon) on
//! a receiver namespace across a veth pair. The receivers parse every line strictly as RFC
//! 5424 (`tandem_lab::syslog_receiver::parse`).
//!
//! - Both servers get the log: the boot lines (the ring's backlog), the VRRP takeover as a
//!   warning, and 50 lines of `debug log 50` at severity debug, in order, with the box's name,
//!   APP-NAME `tandem`, the NILVALUE timestamp (no time servers: the clock is not vouched for)
//!   and the configured facility; TCP frames are octet-counted without a framing error.
//! - With both receivers gone (the TCP server closed, the UDP port unreachable) bursts of
//!   20,000 lines for 3 s block nothing: the control socket answers `status` throughout, VRRP keeps
//!   advertising every 20 ms (no gap a backup would take over in), and the drops are counted
//!   (`status` and the metrics). When the TCP server is back, the forwarder reconnects by
//!   itself and sends what the ring still holds: the newest lines, the burst's oldest dropped.
//!   The metrics endpoint shows the same counts (`tandem_syslog_*`), and passes promtool.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tandem_lab::host::{tandem_query, wait_tandem_query, HostProcess, ScratchDir, TandemRun};
use tandem_lab::netns::{veth_pair, Netns};
use tandem_lab::scrape::{promtool, sample, scrape};
use tandem_lab::syslog_receiver::Receiver;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const LIMIT: Duration = Duration::from_secs(20);
const BOX: &str = "198.51.100.2";
const SERVER: &str = "198.51.100.1";
const UDP_PORT: u16 = 5514;
const TCP_PORT: u16 = 5601;
const METRICS_PORT: u16 = 9100;
/// syslog facility codes: local4, daemon.
const LOCAL4: u8 = 20;
const DAEMON: u8 = 3;

struct Site {
    node: Netns,
    server: Netns,
    dir: ScratchDir,
}

impl Site {
    fn new(tag: &str) -> Site {
        let node = Netns::new(&format!("{tag}-b")).unwrap();
        let server = Netns::new(&format!("{tag}-s")).unwrap();
        veth_pair(&node, "eth0", &server, "eth0").unwrap();
        node.ip(&["addr", "add", &format!("{BOX}/24"), "dev", "eth0"])
            .unwrap();
        server
            .ip(&["addr", "add", &format!("{SERVER}/24"), "dev", "eth0"])
            .unwrap();
        Site {
            node,
            server,
            dir: ScratchDir::new(tag).unwrap(),
        }
    }

    fn control(&self) -> PathBuf {
        self.dir.path.join("box.sock")
    }

    fn udp(&self) -> Receiver {
        Receiver::udp(&self.server.name, address(UDP_PORT)).unwrap()
    }

    fn tcp(&self) -> Receiver {
        Receiver::tcp(&self.server.name, address(TCP_PORT)).unwrap()
    }

    /// The box: one VRRP instance advertising every `interval_cs`, both syslog servers, debug
    /// commands on.
    fn start(&self, interval_cs: u16) -> HostProcess {
        let config = format!(
            "[system]\nhostname = \"box-a\"\n\n\
             [management]\nmetrics = \"{BOX}:{METRICS_PORT}\"\nsyslog = [\n  {{ address = \"{SERVER}:{UDP_PORT}\", facility = \"local4\" }},\n  \
             {{ address = \"{SERVER}:{TCP_PORT}\", transport = \"tcp\" }},\n]\n\n\
             [[interfaces]]\nname = \"eth0\"\naddresses = [\"{BOX}/24\"]\n\n\
             [[vrrp]]\nname = \"web\"\nvrid = 81\ninterface = \"eth0\"\npriority = 150\n\
             advert_interval_cs = {interval_cs}\naccept_mode = true\n\n\
             [[vrrp.vips]]\naddress = \"198.51.100.100\"\nprefix = 24\n"
        );
        let control = self.control();
        TandemRun {
            tandem: TANDEM.as_ref(),
            dir: &self.dir.path,
            name: "box",
            control: Some(&control),
        }
        .start_with_env(
            &self.node,
            &config,
            &["TANDEM_DEBUG_COMMANDS=1"],
            "vrrp: running",
            LIMIT,
        )
        .unwrap()
    }

    fn ask(&self, words: &[&str]) -> String {
        tandem_query(TANDEM.as_ref(), &self.control(), words)
    }

    fn wait_status(&self, what: &str, check: impl Fn(&str) -> bool) -> String {
        wait_tandem_query(TANDEM.as_ref(), &self.control(), &["status"], LIMIT, check)
            .unwrap_or_else(|last| panic!("status never showed {what}; last answer:\n{last}"))
    }
}

fn address(port: u16) -> SocketAddr {
    format!("{SERVER}:{port}").parse().unwrap()
}

/// The `status: syslog <transport> ...` fact.
fn syslog_fact<'a>(status: &'a str, transport: &str) -> &'a str {
    let prefix = format!("status: syslog {transport} ");
    status
        .lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {prefix} in:\n{status}"))
}

/// A `name=N` count in a status fact.
fn count(fact: &str, name: &str) -> u64 {
    fact.split_whitespace()
        .find_map(|word| word.strip_prefix(&format!("{name}=")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in {fact}"))
}

#[test]
fn lines_reach_udp_and_tcp_servers_as_rfc5424() {
    let site = Site::new("slg");
    let udp = site.udp();
    let tcp = site.tcp();
    let _box = site.start(100);
    site.wait_status("the TCP server connected", |status| {
        status.contains(&format!(
            "status: syslog tcp {SERVER}:{TCP_PORT} facility=daemon "
        )) && status.contains(" connected")
    });
    let status = site.ask(&["status"]);
    assert!(
        status.contains(&format!(
            "status: syslog udp {SERVER}:{UDP_PORT} facility=local4 "
        )),
        "{status}"
    );
    assert!(
        status.contains("status: time not synchronised (no time servers configured)"),
        "{status}"
    );
    assert!(
        status.contains(&format!(
            "status: metrics serving http://{BOX}:{METRICS_PORT}/metrics"
        )),
        "{status}"
    );

    // The boot log (the ring's backlog) and the takeover.
    for receiver in [&udp, &tcp] {
        receiver.wait_for("ready", LIMIT).unwrap();
        let takeover = receiver
            .wait_for("vrrp: web: BACKUP -> MASTER", LIMIT)
            .unwrap();
        assert_eq!(
            takeover.severity, 4,
            "a takeover is a warning: {takeover:?}"
        );
        assert_eq!(takeover.msgid, "vrrp");
    }
    let answer = site.ask(&["debug", "log", "50"]);
    assert!(answer.starts_with("debug: logged 50 lines"), "{answer}");
    for (receiver, facility) in [(&udp, LOCAL4), (&tcp, DAEMON)] {
        receiver.wait_for("debug: line 50 of 50", LIMIT).unwrap();
        let messages = receiver.messages().unwrap();
        for message in &messages {
            assert_eq!(message.facility, facility, "{message:?}");
            assert_eq!(message.hostname, "box-a", "{message:?}");
            assert_eq!(message.app_name, "tandem", "{message:?}");
            assert_eq!(message.procid, "-", "{message:?}");
            assert_eq!(message.timestamp, None, "the clock is not synchronised");
            assert!(message.msg.is_some(), "{message:?}");
        }
        let debug: Vec<&str> = messages
            .iter()
            .filter(|m| m.msgid == "debug")
            .map(|m| m.msg.as_deref().unwrap())
            .collect();
        let expected: Vec<String> = (1..=50).map(|n| format!("debug: line {n} of 50")).collect();
        assert_eq!(debug, expected, "every line once, in order");
        assert!(messages
            .iter()
            .filter(|m| m.msgid == "debug")
            .all(|m| m.severity == 7));
    }
    assert!(tcp.errors().is_empty(), "framing: {:?}", tcp.errors());
    let status = site.ask(&["status"]);
    for transport in ["udp", "tcp"] {
        let fact = syslog_fact(&status, transport);
        assert_eq!(count(fact, "dropped"), 0, "{fact}");
        assert!(count(fact, "sent") >= 52, "{fact}");
    }
}

/// Watches the box's VRRP adverts from the server's namespace: the longest gap between two,
/// until stopped.
struct AdvertWatch {
    stop: Arc<AtomicBool>,
    gaps: Arc<Mutex<(u64, Duration)>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl AdvertWatch {
    fn start(server: &Netns) -> AdvertWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let gaps = Arc::new(Mutex::new((0u64, Duration::ZERO)));
        let (thread_stop, thread_gaps) = (Arc::clone(&stop), Arc::clone(&gaps));
        let thread = server
            .spawn(move || {
                use socket2::{Domain, Protocol, Socket, Type};
                let socket =
                    Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112))).unwrap();
                socket
                    .join_multicast_v4(
                        &std::net::Ipv4Addr::new(224, 0, 0, 18),
                        &SERVER.parse().unwrap(),
                    )
                    .unwrap();
                socket
                    .set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                let mut buffer = [std::mem::MaybeUninit::<u8>::uninit(); 1500];
                let mut last: Option<Instant> = None;
                while !thread_stop.load(Ordering::Relaxed) {
                    if socket.recv(&mut buffer).is_ok() {
                        let now = Instant::now();
                        let mut gaps = thread_gaps.lock().unwrap();
                        gaps.0 += 1;
                        if let Some(last) = last {
                            gaps.1 = gaps.1.max(now - last);
                        }
                        last = Some(now);
                    }
                }
            })
            .unwrap();
        AdvertWatch {
            stop,
            gaps,
            thread: Some(thread),
        }
    }

    /// Adverts seen and the longest gap so far; the gap restarts from zero.
    fn take(&self) -> (u64, Duration) {
        let mut gaps = self.gaps.lock().unwrap();
        let seen = *gaps;
        gaps.1 = Duration::ZERO;
        seen
    }
}

impl Drop for AdvertWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn servers_gone_block_nothing_and_drops_are_counted() {
    let site = Site::new("sld");
    let mut udp = site.udp();
    let mut tcp = site.tcp();
    // 20 ms adverts: a backup would take over after 3 x 20 ms + skew (~67 ms) of silence.
    let _box = site.start(2);
    site.wait_status("the TCP server connected", |status| {
        status.contains(" connected")
    });
    tcp.wait_for("vrrp: web: BACKUP -> MASTER", LIMIT).unwrap();
    let watch = AdvertWatch::start(&site.server);

    // Both servers go away.
    tcp.close();
    udp.close();
    site.wait_status("the TCP server down", |status| {
        syslog_fact(status, "tcp").contains(" down: ")
    });
    let _ = watch.take();

    // A burst of 20,000 lines while `status` is asked over and over.
    let asking = Arc::new(AtomicBool::new(true));
    let slowest = Arc::new(Mutex::new((0u32, Duration::ZERO)));
    let asker = {
        let (asking, slowest, control) =
            (Arc::clone(&asking), Arc::clone(&slowest), site.control());
        std::thread::spawn(move || {
            while asking.load(Ordering::Relaxed) {
                let asked = Instant::now();
                let answer = tandem_query(TANDEM.as_ref(), &control, &["status"]);
                let took = asked.elapsed();
                assert!(answer.ends_with("status: end\n"), "{answer}");
                let mut slowest = slowest.lock().unwrap();
                slowest.0 += 1;
                slowest.1 = slowest.1.max(took);
            }
        })
    };
    // Bursts of 20,000 lines for 3 s.
    let began = Instant::now();
    let mut bursts = 0u64;
    let mut slowest_burst = Duration::ZERO;
    while began.elapsed() < Duration::from_secs(3) {
        let asked = Instant::now();
        let answer = site.ask(&["debug", "log", "20000"]);
        slowest_burst = slowest_burst.max(asked.elapsed());
        assert!(answer.starts_with("debug: logged 20000 lines"), "{answer}");
        bursts += 1;
    }
    let lines = bursts * 20_000;
    // Let the forwarder work through the last burst (UDP) while `status` is still asked.
    let status = site.wait_status("the UDP drops counted", |status| {
        let fact = syslog_fact(status, "udp");
        count(fact, "sent") + count(fact, "dropped") >= lines
    });
    asking.store(false, Ordering::Relaxed);
    asker.join().unwrap();
    let (answers, slowest) = *slowest.lock().unwrap();
    let (adverts, longest_gap) = watch.take();
    eprintln!(
        "syslog with the servers gone: {bursts} bursts of 20000 lines, the slowest logged in \
         {slowest_burst:?}; {answers} status answers, slowest {slowest:?}; {adverts} adverts \
         seen, longest gap {longest_gap:?}\n{status}"
    );
    assert!(answers >= 10, "status answered {answers} times");
    assert!(adverts >= 100, "{adverts} adverts in 3 s at 20 ms");
    assert!(slowest < Duration::from_secs(2), "status took {slowest:?}");
    assert!(
        longest_gap < Duration::from_millis(67),
        "VRRP went {longest_gap:?} without an advert"
    );
    let udp_fact = syslog_fact(&status, "udp");
    assert!(count(udp_fact, "dropped") >= 1, "{udp_fact}");
    assert!(udp_fact.contains("sending fails: "), "{udp_fact}");
    let tcp_fact = syslog_fact(&status, "tcp");
    assert!(
        count(tcp_fact, "dropped") >= lines - 1024,
        "the ring keeps 1024 lines for the TCP server; the rest is dropped: {tcp_fact}"
    );
    assert_eq!(count(tcp_fact, "queued"), 1024, "{tcp_fact}");

    // The TCP server is back: the forwarder reconnects by itself (backoff) and sends the
    // lines the ring kept, the newest ones.
    let tcp = site.tcp();
    tcp.wait_for("debug: line 20000 of 20000", Duration::from_secs(90))
        .unwrap();
    let messages = tcp.messages().unwrap();
    let first_debug = messages
        .iter()
        .find_map(|m| {
            m.msg
                .as_deref()?
                .strip_prefix("debug: line ")?
                .split(' ')
                .next()?
                .parse::<u32>()
                .ok()
        })
        .unwrap();
    assert!(
        first_debug > 20_000 - 1024,
        "the first line after reconnecting is {first_debug}: older than the ring holds"
    );
    site.wait_status("the TCP server connected again", |status| {
        syslog_fact(status, "tcp").contains(" connected")
    });

    // The metrics say the same, and pass promtool.
    let body = scrape(
        &site.server.name,
        format!("{BOX}:{METRICS_PORT}").parse().unwrap(),
    )
    .unwrap();
    let value = |series: &str| -> f64 {
        sample(&body, series).unwrap_or_else(|| panic!("no {series} in:\n{body}"))
    };
    let tcp_label = format!("target=\"tcp://{SERVER}:{TCP_PORT}\"");
    let udp_label = format!("target=\"udp://{SERVER}:{UDP_PORT}\"");
    assert!(
        value(&format!(
            "tandem_syslog_lines_dropped_total{{{tcp_label},reason=\"queue_full\"}}"
        )) >= (lines - 1024) as f64
    );
    assert!(
        value(&format!(
            "tandem_syslog_lines_dropped_total{{{udp_label},reason=\"send_failed\"}}"
        )) >= 1.0
    );
    assert!(value(&format!("tandem_syslog_lines_sent_total{{{tcp_label}}}")) >= 1024.0);
    assert_eq!(
        value(&format!("tandem_syslog_target_up{{{tcp_label}}}")),
        1.0
    );
    assert_eq!(value("tandem_time_synchronised"), 0.0);
    let (clean, said) = promtool(&body).unwrap();
    assert!(
        clean,
        "promtool check metrics refused the scrape: {said}\n{body}"
    );
}
