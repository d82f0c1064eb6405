//! The metrics endpoint on the host tier: two `tandem run` boxes on a bridged service LAN with
//! a client, joined by a veth peer cable, one VRRP instance, `[management] metrics` set.
//!
//! - A scrape from the client passes Debian's `promtool check metrics` (exit status 0: it
//!   parses and lints clean) on both boxes, and shows real values: the build, uptime, config
//!   generation, the master's and the backup's VRRP state, priority and advert counters, the
//!   pair heartbeat up with its round trip, the engines running and no engine errors or
//!   gather failures. With `Accept: application/openmetrics-text` the body is OpenMetrics
//!   (counter families named without `_total`, `# EOF`). Another method or path gets 405 / 404.
//!   A commit that moves `management.metrics` to another port rebinds (the old port refuses),
//!   one that removes it stops serving.
//! - Hostile clients while the pair runs 10 ms adverts: 200 connections held open sending a
//!   byte now and then (slowloris), oversized heads and garbage, over and over; a well-behaved
//!   scraper, one attempt each time, gets every scrape within 5 s; the partner never takes
//!   over (no master_silent transition, adverts keep arriving), the endpoint counts what it
//!   closed, and the daemon's resident memory stays within a bound.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Deref;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_lab::host::HostProcess;
use tandem_lab::pair_lan::{PairLan, A_OWN, B_OWN};
use tandem_lab::vrrp_status::instance_state;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const LIMIT: Duration = Duration::from_secs(20);
const VIP: &str = "192.0.2.100";
const PORT: u16 = 9100;

/// The LAN (client, box A, box B) and the cable.
struct Pair(PairLan);

impl Deref for Pair {
    type Target = PairLan;
    fn deref(&self) -> &PairLan {
        &self.0
    }
}

impl Pair {
    fn new(tag: &str) -> Pair {
        Pair(PairLan::new(tag, Path::new(TANDEM), LIMIT, &[]).unwrap())
    }

    /// Box `name` (a: priority 150, b: 100) with adverts every `interval_cs` and the metrics
    /// endpoint on every address, port [`PORT`].
    fn start(&self, name: &str, interval_cs: u16) -> HostProcess {
        let (own, priority) = if name == "a" {
            (A_OWN, 150)
        } else {
            (B_OWN, 100)
        };
        let config = format!(
            "[system]\nhostname = \"{name}\"\n\n\
             [management]\nmetrics = \"0.0.0.0:{PORT}\"\n\n\
             [peer_link]\ninterface = \"peer\"\n\n\
             [[interfaces]]\nname = \"eth0\"\naddresses = [\"{own}/24\"]\n\n\
             [[interfaces]]\nname = \"peer\"\n\n\
             [[vrrp]]\nname = \"web\"\nvrid = 72\ninterface = \"eth0\"\npriority = {priority}\n\
             advert_interval_cs = {interval_cs}\naccept_mode = true\n\n\
             [[vrrp.vips]]\naddress = \"{VIP}\"\nprefix = 24\n"
        );
        let process = self.run(name, &config, "vrrp: running").unwrap();
        process
            .console
            .wait_for_any_time(
                &format!("metrics: serving http://0.0.0.0:{PORT}/metrics"),
                LIMIT,
            )
            .unwrap();
        process
    }

    /// Both running, A master, B backup, the heartbeat up both ways.
    fn start_both(&self, interval_cs: u16) -> (HostProcess, HostProcess) {
        let b = self.start("b", interval_cs);
        let a = self.start("a", interval_cs);
        self.wait_state("a", "MASTER");
        self.wait_state("b", "BACKUP");
        for name in ["a", "b"] {
            self.wait_pair(name, "pair: partner alive");
        }
        (a, b)
    }

    /// One request from the client's namespace; the whole answer (head and body).
    fn http(&self, to: &str, port: u16, request: &[u8]) -> Result<String, String> {
        let address: SocketAddr = format!("{to}:{port}").parse().unwrap();
        let request = request.to_vec();
        self.client.run(move || exchange(address, &request))?
    }

    /// `GET /metrics` from the client: the body, after checking the status line.
    fn scrape(&self, to: &str, accept: Option<&str>) -> (String, String) {
        let accept = accept.map_or_else(String::new, |a| format!("Accept: {a}\r\n"));
        let request = format!("GET /metrics HTTP/1.1\r\nHost: {to}\r\n{accept}\r\n");
        let answer = self.http(to, PORT, request.as_bytes()).unwrap();
        let (head, body) = answer.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        (head.to_owned(), body.to_owned())
    }
}

fn exchange(address: SocketAddr, request: &[u8]) -> Result<String, String> {
    let mut stream =
        TcpStream::connect_timeout(&address, Duration::from_secs(5)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    stream.write_all(request).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    String::from_utf8(answer).map_err(|e| e.to_string())
}

/// The value of the sample `series` (name and labels exactly as rendered).
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|value| value.parse().ok())
}

fn value(body: &str, series: &str) -> f64 {
    sample(body, series).unwrap_or_else(|| panic!("no {series} in:\n{body}"))
}

/// `promtool check metrics` over `body`: its exit status and what it said.
fn promtool(body: &str) -> (bool, String) {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool not found: install Debian's prometheus package (`make deps`)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), said)
}

/// The daemon's resident memory in KiB (`VmRSS` of /proc/PID/status).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in:\n{status}"))
}

#[test]
fn a_scrape_passes_promtool_shows_the_pair_and_follows_commits() {
    let pair = Pair::new("mtr");
    let (a, _b) = pair.start_both(100);

    let (head, body) = pair.scrape(A_OWN, None);
    assert!(
        head.contains("Content-Type: text/plain; version=0.0.4"),
        "{head}"
    );
    let (clean, said) = promtool(&body);
    assert!(
        clean,
        "promtool check metrics refused a's scrape: {said}\n{body}"
    );
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        value(
            &body,
            &format!("tandem_build_info{{version=\"{version}\"}}")
        ),
        1.0
    );
    assert!(value(&body, "tandem_uptime_seconds") > 0.0);
    assert!(value(&body, "tandem_config_generation") >= 1.0);
    assert_eq!(value(&body, "tandem_config_applied"), 1.0);
    assert_eq!(
        value(
            &body,
            "tandem_vrrp_state{vrrp_instance=\"web\",state=\"master\"}"
        ),
        1.0
    );
    assert_eq!(
        value(
            &body,
            "tandem_vrrp_state{vrrp_instance=\"web\",state=\"backup\"}"
        ),
        0.0
    );
    assert_eq!(
        value(&body, "tandem_vrrp_priority{vrrp_instance=\"web\"}"),
        150.0
    );
    assert!(
        value(
            &body,
            "tandem_vrrp_adverts_sent_total{vrrp_instance=\"web\"}"
        ) >= 1.0
    );
    assert_eq!(
        value(
            &body,
            "tandem_vrrp_discards_total{vrrp_instance=\"web\",reason=\"bad_checksum\"}"
        ),
        0.0
    );
    assert_eq!(value(&body, "tandem_pair_heartbeat_up"), 1.0);
    let rtt = value(&body, "tandem_pair_heartbeat_rtt_seconds");
    assert!(rtt > 0.0 && rtt < 0.5, "heartbeat rtt {rtt}");
    assert!(value(&body, "tandem_pair_heartbeat_received_total") >= 1.0);
    assert_eq!(value(&body, "tandem_pair_peer_link_carrier"), 1.0);
    assert_eq!(value(&body, "tandem_engine_running{engine=\"vrrp\"}"), 1.0);
    assert_eq!(value(&body, "tandem_engine_errors{engine=\"vrrp\"}"), 0.0);
    assert_eq!(
        value(&body, "tandem_pair_replication_state{state=\"unpaired\"}"),
        1.0
    );
    assert!(
        !body.contains("tandem_metrics_gather_failures_total{"),
        "a source did not answer:\n{body}"
    );
    assert_eq!(body.matches("# TYPE tandem_vrrp_state ").count(), 1);

    let (_, backup) = pair.scrape(B_OWN, None);
    let (clean, said) = promtool(&backup);
    assert!(
        clean,
        "promtool check metrics refused b's scrape: {said}\n{backup}"
    );
    assert_eq!(
        value(
            &backup,
            "tandem_vrrp_state{vrrp_instance=\"web\",state=\"backup\"}"
        ),
        1.0
    );
    assert!(
        value(
            &backup,
            "tandem_vrrp_adverts_received_total{vrrp_instance=\"web\"}"
        ) >= 1.0
    );

    // OpenMetrics when asked for, as Prometheus asks.
    let (head, open) = pair.scrape(
        A_OWN,
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    );
    assert!(
        head.contains("Content-Type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(open.ends_with("# EOF\n"), "{open}");
    assert!(
        open.contains("# TYPE tandem_vrrp_adverts_sent counter\n"),
        "{open}"
    );
    assert!(open.contains("\ntandem_vrrp_adverts_sent_total{vrrp_instance=\"web\"} "));
    assert!(open.contains("# TYPE tandem_build info\n"), "{open}");

    // Read-only: other methods and paths are refused with their status.
    let answer = pair
        .http(
            A_OWN,
            PORT,
            b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 405 "), "{answer}");
    let answer = pair
        .http(A_OWN, PORT, b"GET /config HTTP/1.1\r\n\r\n")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");

    // A commit moves the endpoint; another removes it.
    let answer = pair.ask("a", &["set", "management.metrics", "0.0.0.0:9101"]);
    assert!(answer.starts_with("set: "), "{answer}");
    let mark = a.console.mark();
    let answer = pair.ask("a", &["commit"]);
    assert!(answer.contains("applied"), "{answer}");
    a.console
        .wait_for_since(mark, "metrics: serving http://0.0.0.0:9101/metrics", LIMIT)
        .unwrap();
    let moved = pair
        .http(A_OWN, 9101, b"GET /metrics HTTP/1.0\r\n\r\n")
        .unwrap();
    assert!(moved.starts_with("HTTP/1.1 200 OK"), "{moved}");
    assert!(moved.contains("tandem_config_generation 2\n"), "{moved}");
    let old = pair.http(A_OWN, PORT, b"GET /metrics HTTP/1.0\r\n\r\n");
    assert!(old.is_err(), "the old port still answers: {old:?}");
    let answer = pair.ask("a", &["delete", "management.metrics"]);
    assert!(answer.starts_with("delete: "), "{answer}");
    let mark = a.console.mark();
    let answer = pair.ask("a", &["commit"]);
    assert!(answer.contains("applied"), "{answer}");
    a.console
        .wait_for_since(mark, "metrics: no longer serving on 0.0.0.0:9101", LIMIT)
        .unwrap();
    let gone = pair.http(A_OWN, 9101, b"GET /metrics HTTP/1.0\r\n\r\n");
    assert!(
        gone.is_err(),
        "still served after the commit removed it: {gone:?}"
    );
}

/// `s` percent-encoded for a URL query.
fn query_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The first value of a Prometheus instant query's answer (`"value":[TIME,"VALUE"]`).
fn query_value(answer: &str) -> Option<f64> {
    let rest = answer.split("\"value\":[").nth(1)?;
    rest.split('"').nth(1)?.parse().ok()
}

/// The samples of a range query's first series (`"values":[[TIME,"VALUE"],...]`).
fn range_values(answer: &str) -> Vec<(f64, f64)> {
    let Some(rest) = answer.split("\"values\":[").nth(1) else {
        return Vec::new();
    };
    rest.split('[')
        .filter_map(|pair| {
            let (time, value) = pair.split_once(',')?;
            let value = value.split('"').nth(1)?;
            Some((time.parse().ok()?, value.parse().ok()?))
        })
        .collect()
}

#[test]
fn a_real_prometheus_scrapes_it_every_second() {
    let pair = Pair::new("mtp");
    let _a = pair.start("a", 10);
    pair.wait("a", &["vrrp", "status"], "MASTER", |text| {
        instance_state(text, "web") == Some("MASTER")
    });
    let config = pair.dir.path.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             scrape_configs:\n  - job_name: tandem\n    static_configs:\n      - targets: ['{A_OWN}:{PORT}']\n"
        ),
    )
    .unwrap();
    let storage = pair.dir.path.join("prometheus-data");
    let prometheus = HostProcess::start(
        &pair.client,
        "prometheus",
        Path::new("/usr/bin/prometheus"),
        &[
            &format!("--config.file={}", config.display()),
            &format!("--storage.tsdb.path={}", storage.display()),
            "--web.listen-address=127.0.0.1:9090",
        ],
        &pair.dir.path,
    )
    .expect("Debian's prometheus package is needed (`make deps`)");
    let ask = |query: &str| {
        let request = format!(
            "GET /api/v1/query?query={} HTTP/1.0\r\n\r\n",
            query_encode(query)
        );
        pair.http("127.0.0.1", 9090, request.as_bytes())
            .unwrap_or_default()
    };
    // Up on every scrape for at least 4 scrapes.
    let began = Instant::now();
    let scraped = loop {
        let answer = ask("sum_over_time(up{job=\"tandem\"}[1m])");
        if query_value(&answer).is_some_and(|n| n >= 4.0) {
            break answer;
        }
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "prometheus never scraped tandem 4 times; last answer {answer}\n{}",
            prometheus.console.transcript()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let up = ask("min_over_time(up{job=\"tandem\"}[1m])");
    assert_eq!(
        query_value(&up),
        Some(1.0),
        "a scrape failed: {up}\n{scraped}"
    );
    let targets = pair
        .http("127.0.0.1", 9090, b"GET /api/v1/targets HTTP/1.0\r\n\r\n")
        .unwrap();
    assert!(targets.contains("\"lastError\":\"\""), "{targets}");
    let samples = ask("scrape_samples_scraped{job=\"tandem\"}");
    assert!(query_value(&samples).is_some_and(|n| n > 50.0), "{samples}");
    let master = ask("tandem_vrrp_state{job=\"tandem\",vrrp_instance=\"web\",state=\"master\"}");
    assert_eq!(query_value(&master), Some(1.0), "{master}");
    // The counter as Prometheus stored it, scrape by scrape: 10 adverts a second.
    let sent = ask("tandem_vrrp_adverts_sent_total{vrrp_instance=\"web\"}[1m]");
    let series = range_values(&sent);
    let (Some(first), Some(last)) = (series.first(), series.last()) else {
        panic!("no samples: {sent}");
    };
    let rate = (last.1 - first.1) / (last.0 - first.0);
    assert!(rate > 5.0 && rate < 20.0, "{rate} adverts a second: {sent}");
    assert!(
        series.windows(2).all(|pair| pair[1].1 > pair[0].1),
        "a scrape saw no new advert (a stale snapshot?): {sent}"
    );
}

/// Hostile clients from the client's namespace until `stop`: slowloris connections (held,
/// a byte now and then, replaced every 2 s), oversized heads, garbage. Returns how many
/// connections each kind made.
fn hostile(
    pair: &Pair,
    stop: &Arc<AtomicBool>,
    made: &Arc<[AtomicU64; 3]>,
) -> Vec<std::thread::JoinHandle<Result<(), String>>> {
    let address: SocketAddr = format!("{A_OWN}:{PORT}").parse().unwrap();
    let mut threads = Vec::new();
    let (stop1, made1) = (Arc::clone(stop), Arc::clone(made));
    threads.push(
        pair.client
            .spawn(move || {
                while !stop1.load(Ordering::Relaxed) {
                    let mut held = Vec::new();
                    for _ in 0..200 {
                        if let Ok(stream) =
                            TcpStream::connect_timeout(&address, Duration::from_secs(1))
                        {
                            held.push(stream);
                            made1[0].fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    for byte in b"GET /met" {
                        if stop1.load(Ordering::Relaxed) {
                            break;
                        }
                        for stream in &mut held {
                            let _ = stream.write_all(&[*byte]);
                        }
                        std::thread::sleep(Duration::from_millis(250));
                    }
                }
            })
            .unwrap(),
    );
    let (stop2, made2) = (Arc::clone(stop), Arc::clone(made));
    threads.push(
        pair.client
            .spawn(move || {
                let mut huge = b"GET /metrics HTTP/1.1\r\nX-Fill: ".to_vec();
                huge.resize(64 << 10, b'a');
                while !stop2.load(Ordering::Relaxed) {
                    let _ = exchange(address, &huge);
                    made2[1].fetch_add(1, Ordering::Relaxed);
                }
            })
            .unwrap(),
    );
    let (stop3, made3) = (Arc::clone(stop), Arc::clone(made));
    threads.push(
        pair.client
            .spawn(move || {
                let mut seed = 0x2545_f491_4f6c_dd1du64;
                while !stop3.load(Ordering::Relaxed) {
                    let mut garbage = Vec::with_capacity(300);
                    for _ in 0..256 {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        garbage.push(seed.to_le_bytes()[0]);
                    }
                    garbage.extend_from_slice(b"\r\n\r\n");
                    let _ = exchange(address, &garbage);
                    made3[2].fetch_add(1, Ordering::Relaxed);
                }
            })
            .unwrap(),
    );
    threads
}

#[test]
fn hostile_clients_neither_starve_a_scraper_nor_grow_memory_nor_delay_vrrp() {
    let pair = Pair::new("mth");
    // 10 ms adverts: the backup takes over after ~40 ms of the master's silence.
    let (a, _b) = pair.start_both(1);
    let (_, before) = pair.scrape(B_OWN, None);
    let heard_before = value(
        &before,
        "tandem_vrrp_adverts_received_total{vrrp_instance=\"web\"}",
    );
    // b started alone and took over once before a came; any later takeover counts here.
    let silent = "tandem_vrrp_transitions_total{vrrp_instance=\"web\",cause=\"master_silent\"}";
    let took_over_before = value(&before, silent);
    let rss_before = rss_kib(a.pid());

    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new([AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)]);
    let began = Instant::now();
    let threads = hostile(&pair, &stop, &made);
    let mut slowest = Duration::ZERO;
    let mut scrapes = 0;
    let mut rss_peak = rss_before;
    while began.elapsed() < Duration::from_secs(12) {
        let asked = Instant::now();
        let answer = pair
            .http(A_OWN, PORT, b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap_or_else(|error| panic!("scrape {scrapes} failed under attack: {error}"));
        let took = asked.elapsed();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.contains("tandem_vrrp_state{"), "{answer}");
        slowest = slowest.max(took);
        scrapes += 1;
        rss_peak = rss_peak.max(rss_kib(a.pid()));
        std::thread::sleep(Duration::from_millis(200));
    }
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().unwrap().unwrap();
    }
    let elapsed = began.elapsed();
    let made: Vec<u64> = made.iter().map(|n| n.load(Ordering::Relaxed)).collect();
    eprintln!(
        "metrics under attack: {scrapes} scrapes, slowest {slowest:?}; hostile connections: \
         slowloris {}, oversized {}, garbage {}; a's RSS {rss_before} KiB before, peak {rss_peak} KiB",
        made[0], made[1], made[2]
    );
    assert!(
        slowest < Duration::from_secs(5),
        "a scrape took {slowest:?} under attack"
    );
    assert!(made[0] >= 400 && made[1] >= 10 && made[2] >= 10, "{made:?}");
    assert!(
        rss_peak < rss_before + 16 * 1024 && rss_peak < 128 * 1024,
        "a's RSS grew from {rss_before} KiB to {rss_peak} KiB"
    );

    // The endpoint closed what it had to and said so.
    let (_, body) = pair.scrape(A_OWN, None);
    let closed = |reason: &str| {
        value(
            &body,
            &format!("tandem_metrics_connections_closed_total{{reason=\"{reason}\"}}"),
        )
    };
    assert!(closed("evicted") >= 100.0, "{body}");
    assert!(value(&body, "tandem_metrics_responses_total{code=\"431\"}") >= 1.0);
    assert!(value(&body, "tandem_metrics_responses_total{code=\"400\"}") >= 1.0);
    assert_eq!(
        value(
            &body,
            "tandem_vrrp_state{vrrp_instance=\"web\",state=\"master\"}"
        ),
        1.0
    );

    // VRRP never waited: the backup heard the master throughout and never took over.
    let (_, after) = pair.scrape(B_OWN, None);
    assert_eq!(
        value(&after, silent),
        took_over_before,
        "b took over during the attack"
    );
    assert_eq!(
        value(
            &after,
            "tandem_vrrp_state{vrrp_instance=\"web\",state=\"backup\"}"
        ),
        1.0
    );
    let heard = value(
        &after,
        "tandem_vrrp_adverts_received_total{vrrp_instance=\"web\"}",
    ) - heard_before;
    let expected = elapsed.as_secs_f64() * 100.0;
    assert!(
        heard > expected * 0.5,
        "b heard {heard} adverts in {elapsed:?} (100 a second sent)"
    );
}
