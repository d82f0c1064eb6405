//! `make bench` part: the metrics endpoint (issue 16) on one lab box (image as `make image`
//! builds it; TCG on the lab host, so the figures are upper bounds for real hardware) that
//! directs `METRICS_BENCH_SERVICES` x `METRICS_BENCH_SERVERS` (default 1000 x 10) virtual
//! services and real servers in its kernel's IPVS table, with `[management] metrics` on its
//! public port; a client namespace on the public segment scrapes it.
//!
//! - `metrics_scrape_ms_p50`, `metrics_scrape_ms_max`: `GET /metrics` sent until the last byte
//!   of the answer, `SCRAPES` scrapes 1 s apart, each a new snapshot (the daemon's loop and
//!   every engine asked, the IPVS table read back, every family rendered).
//! - `metrics_scrape_bytes`, `metrics_scrape_series`: the body's size and its samples.
//! - `metrics_rss_kib`: the daemon's resident memory after those scrapes, as it reports it
//!   (`tandem_process_resident_memory_bytes`); `metrics_rss_1000_idle_kib`,
//!   `metrics_open_fds_1000_idle` and `metrics_scrape_1000_idle_ms` while the client holds
//!   1,000 idle connections to the endpoint (the endpoint keeps 8; the others are closed as
//!   newer ones arrive).
//!
//! Nothing is asserted about a figure; a failed step ends the run with an error.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_lab::netns::spawn_in;
use tandem_lab::{BoxSpec, Lab, Segment};

const BOOT: Duration = Duration::from_secs(240);
/// The IPVS load of 1000 x 10 under TCG.
const LOADED: Duration = Duration::from_secs(600);
const SCRAPES: usize = 5;
const BOX_ADDRESS: &str = "192.0.2.1";
const PORT: u16 = 9100;
/// The services share this many virtual addresses (ports 1000 and up) on the public port (an
/// interface holds 16 addresses: these, the box's own and one in the real servers' subnet).
const VIRTUAL_ADDRESSES: usize = 14;

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The box's config: `services` x `servers` NAT services on the public port (the real
/// servers on a connected subnet, no health checks) and the metrics endpoint.
fn config(services: usize, servers: usize) -> String {
    let mut text = format!(
        "[system]\nhostname = \"bench\"\n\n[management]\nmetrics = \"{BOX_ADDRESS}:{PORT}\"\n\n\
         [[interfaces]]\nname = \"public\"\naddresses = [\"{BOX_ADDRESS}/24\", "
    );
    for address in 1..=VIRTUAL_ADDRESSES {
        let _ = write!(text, "\"10.0.0.{address}/24\", ");
    }
    text.push_str("\"172.31.255.254/12\"]\n\n");
    for service in 0..services {
        let address = 1 + service % VIRTUAL_ADDRESSES;
        let port = 1000 + service / VIRTUAL_ADDRESSES;
        let _ = write!(
            text,
            "[[virtual_services]]\naddress = \"10.0.0.{address}\"\nport = {port}\nprotocol = \"tcp\"\n\n"
        );
        for server in 0..servers {
            let n = u32::try_from(service * servers + server).unwrap_or(u32::MAX);
            let [_, b, c, d] = n.to_be_bytes();
            let _ = write!(
                text,
                "[[virtual_services.real_servers]]\naddress = \"172.{}.{c}.{d}\"\nport = 8080\n\n",
                16 + b
            );
        }
    }
    text
}

/// One scrape: the body and how long it took to the last byte.
fn scrape(address: SocketAddr) -> Result<(String, Duration), String> {
    let began = Instant::now();
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(10))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: bench\r\n\r\n")
        .map_err(|e| format!("send: {e}"))?;
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    let took = began.elapsed();
    let answer = String::from_utf8(answer).map_err(|e| e.to_string())?;
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no head in {answer:?}"))?;
    if !head.starts_with("HTTP/1.1 200 ") {
        return Err(format!("answered {head}"));
    }
    Ok((body.to_owned(), took))
}

/// The value of the unlabelled sample `name`.
fn value(body: &str, name: &str) -> Result<f64, String> {
    body.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no {name} in the scrape"))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("metricsbench: {message}");
            ExitCode::from(1)
        }
    }
}

fn run() -> Result<(), String> {
    let services = knob("METRICS_BENCH_SERVICES", 1000);
    let servers = knob("METRICS_BENCH_SERVERS", 10);
    let mut lab = Lab::new()?;
    let mut spec =
        BoxSpec::new("bench", &[Segment::Public]).with_config(&config(services, servers));
    spec.memory_mb = 512;
    lab.boot(&[spec], BOOT)?;
    lab.box_named("bench")?
        .console
        .wait_for_any_time(&format!("lvs: table in sync: {services} services"), LOADED)?;
    let netns = {
        let client = lab.add_client("mb", Segment::Public)?;
        client.add_address("192.0.2.100/24")?;
        client.netns.clone()
    };
    let address: SocketAddr = format!("{BOX_ADDRESS}:{PORT}")
        .parse()
        .map_err(|e| format!("{e}"))?;

    let in_client = |f: Box<dyn FnOnce() -> Result<(String, Duration), String> + Send>| {
        spawn_in(&netns, f)?
            .join()
            .map_err(|_| "the client thread panicked".to_owned())?
    };
    let mut took = Vec::new();
    let mut body = String::new();
    for _ in 0..SCRAPES {
        // Past the snapshot's freshness: every scrape gathers anew.
        std::thread::sleep(Duration::from_secs(1));
        let (text, time) = in_client(Box::new(move || scrape(address)))??;
        took.push(time);
        body = text;
    }
    took.sort();
    let series = body
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .count();
    let failures = body
        .lines()
        .filter(|line| line.starts_with("tandem_metrics_gather_failures_total{"))
        .collect::<Vec<_>>();
    if !failures.is_empty() {
        eprintln!("metricsbench: sources that did not answer in time: {failures:?}");
    }
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "bench: metrics_scrape_ms_p50 {:.1} ms",
        ms(took[took.len() / 2])
    );
    println!(
        "bench: metrics_scrape_ms_max {:.1} ms",
        ms(took[took.len() - 1])
    );
    println!("bench: metrics_scrape_bytes {} bytes", body.len());
    println!("bench: metrics_scrape_series {series} samples");
    let rss = value(&body, "tandem_process_resident_memory_bytes")?;
    println!("bench: metrics_rss_kib {:.0} KiB", rss / 1024.0);

    // 1,000 idle connections held open by the client while it scrapes once more.
    let holding = Arc::new(AtomicBool::new(true));
    let opened = {
        let holding = Arc::clone(&holding);
        spawn_in(&netns, move || {
            let mut held = Vec::new();
            for _ in 0..1000 {
                if let Ok(stream) = TcpStream::connect_timeout(&address, Duration::from_secs(5)) {
                    held.push(stream);
                }
            }
            let count = held.len();
            while holding.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(50));
            }
            count
        })?
    };
    std::thread::sleep(Duration::from_secs(3));
    let (idle_body, idle_took) = in_client(Box::new(move || scrape(address)))??;
    holding.store(false, Ordering::Relaxed);
    let connected = opened
        .join()
        .map_err(|_| "the holding thread panicked".to_owned())??;
    println!(
        "bench: metrics_rss_1000_idle_kib {:.0} KiB",
        value(&idle_body, "tandem_process_resident_memory_bytes")? / 1024.0
    );
    println!(
        "bench: metrics_open_fds_1000_idle {:.0} fds",
        value(&idle_body, "tandem_process_open_fds")?
    );
    println!("bench: metrics_scrape_1000_idle_ms {:.1} ms", ms(idle_took));
    eprintln!("metricsbench: {connected} of 1000 idle connections were made");
    Ok(())
}
