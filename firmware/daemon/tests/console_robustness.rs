//! The console and the control socket cannot stall VRRP or run half a line, on the host tier.
//!
//! - A master whose console is a pty nobody reads (typed `log` commands pile up on it) while
//!   its control socket is flooded with `log`: its partner, at 10 ms adverts, never sees it go
//!   silent, `status` answers in under 100 ms, and the console writer says it dropped output.
//! - Over-long lines (4,096 + `poweroff`, 1 MB) and lines with control characters, on the
//!   console and over the control socket: discarded whole, counted, nothing else happens.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_lab::host::{wait_tandem_query, HostSegment, ScratchDir, TandemRun};
use tandem_lab::netns::Netns;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const LIMIT: Duration = Duration::from_secs(20);

fn vrrp_config(name: &str, address: &str, priority: u8) -> String {
    format!(
        "[system]\nhostname = \"{name}\"\n\n[[interfaces]]\nname = \"eth0\"\naddresses = [\"{address}/24\"]\n\n\
         [[vrrp]]\nname = \"web\"\nvrid = 51\ninterface = \"eth0\"\npriority = {priority}\n\
         advert_interval_cs = 1\naccept_mode = true\n\n[[vrrp.vips]]\naddress = \"192.0.2.100\"\nprefix = 24\n"
    )
}

/// One request over the control socket, answered in full; with how long it took.
fn ask(control: &Path, request: &[u8]) -> (String, Duration) {
    let began = Instant::now();
    let mut stream = UnixStream::connect(control).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    (answer, began.elapsed())
}

/// The `output dropped N messages` count of a `status` answer.
fn dropped_messages(status: &str) -> u64 {
    status_line(status, "status: console")
        .split("output dropped ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

fn status_line<'a>(status: &'a str, prefix: &str) -> &'a str {
    status
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` in:\n{status}"))
}

/// `name=N` from a status line.
fn counter(line: &str, name: &str) -> u64 {
    line.split(|c: char| c.is_whitespace() || c == ';')
        .find_map(|word| word.strip_prefix(&format!("{name}=")))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no {name}= in {line}"))
}

#[test]
fn an_unread_console_and_a_log_flood_never_silence_the_master() {
    let mut segment = HostSegment::new("crsg").unwrap();
    let a_ns = Netns::new("cr-a").unwrap();
    let b_ns = Netns::new("cr-b").unwrap();
    segment.attach(&a_ns, "eth0").unwrap();
    segment.attach(&b_ns, "eth0").unwrap();
    let dir = ScratchDir::new("crflood").unwrap();
    let b_control = dir.path.join("b.sock");
    let b = TandemRun {
        tandem: Path::new(TANDEM),
        dir: &dir.path,
        name: "b",
        control: Some(&b_control),
    }
    .start(
        &b_ns,
        &vrrp_config("b", "192.0.2.3", 100),
        "vrrp: running",
        LIMIT,
    )
    .unwrap();

    // Box a: stdin and stdout are a pty whose other end is written to but never read.
    let a_control: PathBuf = dir.path.join("a.sock");
    let (mut a, mut master) = TandemRun {
        tandem: Path::new(TANDEM),
        dir: &dir.path,
        name: "a",
        control: Some(&a_control),
    }
    .start_on_pty(&a_ns, &vrrp_config("a", "192.0.2.2", 150))
    .unwrap();
    wait_tandem_query(
        TANDEM.as_ref(),
        &a_control,
        &["vrrp", "status"],
        LIMIT,
        |t| t.contains("state MASTER"),
    )
    .expect("a never became master");
    wait_tandem_query(
        TANDEM.as_ref(),
        &b_control,
        &["vrrp", "status"],
        LIMIT,
        |t| t.contains("state BACKUP") && t.contains("192.0.2.2 priority 150"),
    )
    .expect("b never settled as backup of a");
    let b_settled_at = b.console.transcript().len();

    // Pile output onto the unread console and flood the control socket with `log`, for at
    // least 5 s and until the console has had to drop output (how long that takes depends on
    // how fast a busy machine serves the flood: a condition, not a fixed span).
    let flooding = Arc::new(AtomicBool::new(true));
    let flooders: Vec<_> = (0..3)
        .map(|_| {
            let control = a_control.clone();
            let flooding = Arc::clone(&flooding);
            std::thread::spawn(move || {
                let mut asked = 0u64;
                while flooding.load(Ordering::Relaxed) {
                    let (answer, _) = ask(&control, b"log\n");
                    assert!(answer.contains("tandem:"), "{answer}");
                    asked += 1;
                }
                asked
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = Vec::new();
    let began = Instant::now();
    loop {
        // `log` typed on the console: its answers fill the pty and then the writer's queue.
        let _ = master.write_all(b"log\nstatus\nhelp\n");
        let (answer, took) = ask(&a_control, b"status\n");
        assert!(answer.contains("status: end"), "{answer}");
        latencies.push(took);
        let elapsed = began.elapsed();
        if (elapsed >= Duration::from_secs(5) && dropped_messages(&answer) > 0)
            || elapsed >= Duration::from_secs(60)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    flooding.store(false, Ordering::Relaxed);
    let floods: u64 = flooders.into_iter().map(|t| t.join().unwrap()).sum();
    assert!(floods > 50, "only {floods} log requests were served");
    // A stalled daemon never answers (before the bounded writer: a 5 s client timeout); a
    // busy 2-core machine may stretch one answer, not the typical one.
    latencies.sort();
    let median = latencies[latencies.len() / 2];
    let slowest = latencies[latencies.len() - 1];
    assert!(
        median < Duration::from_millis(100),
        "status took {median:?} (median) during the flood"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "status took {slowest:?} once during the flood"
    );
    let (status, _) = ask(&a_control, b"status\n");
    let console = status_line(&status, "status: console");
    assert!(
        dropped_messages(&status) > 0,
        "the unread console dropped nothing in 60 s: {console}"
    );
    // The partner never saw the master go silent.
    let (during, _, _) = b.console.bytes_since(b_settled_at);
    let during = String::from_utf8_lossy(&during);
    assert!(
        !during.to_ascii_lowercase().contains("backup -> master"),
        "b took over during the flood:\n{during}"
    );
    let (b_status, _) = ask(&b_control, b"vrrp status\n");
    assert!(b_status.contains("state BACKUP"), "{b_status}");
    let received: u64 = b_status
        .split("received ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(
        received > 400,
        "b heard only {received} adverts: {b_status}"
    );
    drop(master);
    let _ = a.kill();
    let _ = a.wait();
}

#[test]
fn over_long_and_control_lines_are_discarded_whole_and_counted() {
    let netns = Netns::new("cr-l").unwrap();
    netns.ip(&["link", "set", "lo", "up"]).unwrap();
    let dir = ScratchDir::new("crlines").unwrap();
    let control = dir.path.join("t.sock");
    let tandem = TandemRun {
        tandem: Path::new(TANDEM),
        dir: &dir.path,
        name: "t",
        control: Some(&control),
    }
    .start_with(&netns, None, &[], "ready", LIMIT)
    .unwrap();

    // On the console (stdin).
    let mut long = vec![b'x'; 4096];
    long.extend_from_slice(b"poweroff\n");
    tandem.console.send(&long).unwrap();
    let mut huge = vec![b'y'; 1 << 20];
    huge.push(b'\n');
    tandem.console.send(&huge).unwrap();
    tandem.console.send(b"pow\x00eroff\n").unwrap();
    tandem.console.send(b"\x1b[Areboot\n").unwrap();
    tandem.console.send(b"\x04\x03\x1a\x1c\n").unwrap();
    let status = wait_tandem_query(TANDEM.as_ref(), &control, &["status"], LIMIT, |t| {
        t.contains("too-long=2 control-chars=3")
    })
    .unwrap_or_else(|last| panic!("console discards not counted:\n{last}"));
    assert!(status.contains("unknown=0"), "{status}");
    tandem
        .console
        .wait_for_any_time("line of 4104 bytes discarded", LIMIT)
        .unwrap();
    tandem
        .console
        .wait_for_any_time("control character Ctrl-@ (0x00)", LIMIT)
        .unwrap();

    // Over the control socket.
    let mut request = vec![b'z'; 1 << 20];
    request.push(b'\n');
    let (answer, _) = ask(&control, &request);
    assert!(answer.contains("discarded"), "{answer}");
    let mut request = vec![b'x'; 4096];
    request.extend_from_slice(b"poweroff\n");
    let (answer, _) = ask(&control, &request);
    assert!(answer.contains("4104 bytes discarded"), "{answer}");
    let (answer, _) = ask(&control, b"power\x00off\n");
    assert!(answer.contains("control character"), "{answer}");
    let (status, _) = ask(&control, b"status\n");
    assert!(
        status_line(&status, "status: console").ends_with("control requests refused 3"),
        "{status}"
    );
    let console_line = status_line(&status, "status: console");
    assert_eq!(counter(console_line, "too-long"), 2, "{console_line}");
    // Nothing else happened: still running, still answering, never powered off.
    assert!(!tandem.console.transcript().contains("poweroff requested"));
    assert!(!tandem.console.transcript().contains("reboot requested"));
    let (answer, _) = ask(&control, b"help\n");
    assert!(answer.contains("commands:"), "{answer}");
}
