//! Live config of the LVS director on real qemu boxes (lab image, `make lab-image`): box-a
//! directs a NAT service (wrr) to rs1 and rs2 (lab image, lab HTTP responder) and the operator
//! changes it on box-a's serial console with `set` / `delete` / `commit` / `rollback`. The host
//! kernel has no IPVS, so only a box can show what the engine did to the kernel table.
//!
//! 1. A weight change is one IPVS edit: `lvs status` shows the new weight and the other server
//!    untouched, both health checks keep running (same verdict time), the commit's answer lists
//!    exactly that change, and a client requesting the VIP in a loop meanwhile never fails.
//! 2. A third real server added by `set ...real_servers.rs3.address` is checked, enters once its
//!    check passes and gets its share of new connections (rs3 is a namespace on the private
//!    segment serving HTTP from this process: a fourth TCG guest would only slow the lab).
//! 3. A deleted real server leaves the kernel table and gets no more connections.
//! 4. `rollback` brings the table of before the deletion back.
//! 5. Deleting the whole virtual service empties the kernel table, removes the NAT gateway
//!    address and the source NAT the engine added (a config without a virtual service makes no
//!    director) and stops the engine; the VIP refuses connections. A `rollback` then starts the
//!    engine again, which reads the kernel table back and needs exactly one operation (add the
//!    service: its servers start down), so the table it found was empty; the traffic flows again.
//!
//! The checks tolerate two failures (a slow TCG guest must not flap a server out: the test
//! compares each check's verdict time before and after a commit to show it kept running).
//!
//! The scheduler's shares are exact: wrr over sequential new connections from one client repeats
//! with a period of the weights' sum, so every window of whole periods has exact counts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tandem_lab::servers::{nat_director, nat_real_server, wait_real_server_ready};
use tandem_lab::shell::exec_in;
use tandem_lab::{BoxSpec, Lab, QemuBox, Segment};

const BOOT: Duration = Duration::from_secs(240);
/// Until a real server's check passes (1 s interval; TCG on a loaded machine stretches it).
const CHECK_BOUND: Duration = Duration::from_secs(90);
/// One console command's answer (a commit waits for the engines).
const STEP: Duration = Duration::from_secs(120);

const VIP_URL: &str = "http://192.0.2.10/";
const RS1: &str = "198.51.100.11:80";
const RS2: &str = "198.51.100.12:80";
const RS3: &str = "198.51.100.13:80";
const SERVICE: &str = "TCP 192.0.2.10:80";

/// box-a: a NAT director (its VIP 192.0.2.10 on the public port) with this service.
fn director() -> String {
    nat_director("box-a", &["192.0.2.1", "192.0.2.10"]) + DIRECTOR_SERVICES
}

const DIRECTOR_SERVICES: &str = r#"
[[virtual_services]]
name = "web"
address = "192.0.2.10"
port = 80
scheduler = "wrr"
forwarding = "nat"
on_failure = "remove"
start_down = true
check = { kind = "tcp", timing = { interval_ms = 1000, timeout_ms = 3000, retries = 2, retry_delay_ms = 500 } }

[[virtual_services.real_servers]]
name = "rs1"
address = "198.51.100.11"
weight = 1

[[virtual_services.real_servers]]
name = "rs2"
address = "198.51.100.12"
weight = 1
"#;

/// Console output since `offset`, as lines, without the daemon's log lines (`[   1.234]
/// tandem: ...`): what answered a command.
fn answer_lines_since(b: &QemuBox, offset: usize) -> Vec<String> {
    let (bytes, _, _) = b.console.bytes_since(offset);
    String::from_utf8_lossy(&bytes)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty() && !l.contains("tandem: "))
        .collect()
}

/// Where the console's output ends now.
fn console_end(b: &QemuBox) -> usize {
    b.console.bytes_since(usize::MAX).1
}

/// Waits for an answer line starting with `prefix` (log lines and the echo do not count).
fn wait_answer(b: &QemuBox, prefix: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = b.console.wait_for(prefix, left).unwrap();
        let line = line.trim();
        if !line.contains("tandem: ") && line.starts_with(prefix) {
            return line.to_owned();
        }
    }
}

/// Polls the console output from `offset` until a line contains `pattern` (log lines too).
fn wait_output_since(b: &QemuBox, offset: usize, pattern: &str, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        let (bytes, _, closed) = b.console.bytes_since(offset);
        let text = String::from_utf8_lossy(&bytes);
        if let Some(line) = text.lines().find(|l| l.contains(pattern)) {
            return line.trim().to_owned();
        }
        assert!(
            !closed && Instant::now() < deadline,
            "{}: no line with `{pattern}` within {timeout:?}:\n{text}",
            b.name
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `set PATH VALUE` / `delete PATH` on the console; asserts the candidate took it.
fn edit(b: &QemuBox, line: &str) {
    let keyword = line.split_whitespace().next().unwrap();
    b.console.skip_to_end();
    b.console.send_line(line).unwrap();
    let answer = wait_answer(b, &format!("{keyword}: "), STEP);
    assert!(answer.contains("(candidate;"), "`{line}`: {answer}");
}

/// A commit's (or rollback's) answer: the generation, the impact preview lines and the lines
/// the engines reported as applied (each without the `commit: ` prefix).
#[derive(Debug)]
struct Answer {
    generation: u64,
    preview: Vec<String>,
    applied: Vec<String>,
    /// Where the console output stood when the command was sent.
    sent_at: usize,
}

impl Answer {
    /// The applied lines of one engine (`lvs: ...`).
    fn of(&self, engine: &str) -> Vec<&str> {
        let prefix = format!("{engine}: ");
        self.applied
            .iter()
            .filter(|l| l.starts_with(&prefix))
            .map(String::as_str)
            .collect()
    }
}

/// Sends `command` (`commit ...` or `rollback`) and waits until the engines applied it.
fn commit(b: &QemuBox, command: &str) -> Answer {
    let what = command.split_whitespace().next().unwrap();
    let began = Instant::now();
    b.console.skip_to_end();
    let sent_at = console_end(b);
    b.console.send_line(command).unwrap();
    let first = wait_answer(b, &format!("{what}: "), STEP);
    let generation: u64 = first
        .strip_prefix(&format!("{what}: generation "))
        .and_then(|rest| rest.strip_suffix(" persisted"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("`{command}` refused: {first}"));
    let done = format!("{what}: generation {generation} applied");
    while wait_answer(b, &done, STEP) != done {}
    let took = began.elapsed();
    let lines: Vec<String> = answer_lines_since(b, sent_at)
        .into_iter()
        .filter_map(|l| l.strip_prefix(&format!("{what}: ")).map(str::to_owned))
        .collect();
    let mut preview = Vec::new();
    let mut applied = Vec::new();
    for line in lines {
        if let Some(line) = line.strip_prefix("applied: ") {
            applied.push(line.to_owned());
        } else if !line.starts_with("generation ") {
            preview.push(line);
        }
    }
    let answer = Answer {
        generation,
        preview,
        applied,
        sent_at,
    };
    eprintln!("`{command}` answered in {took:.1?}: {answer:#?}");
    answer
}

/// `lvs status` lines of the director.
fn lvs_status(b: &QemuBox) -> Vec<String> {
    b.engine_status("lvs", STEP).unwrap()
}

/// The status line of real server `server` (`198.51.100.11:80`), if the kernel has it.
fn server_line<'a>(status: &'a [String], server: &str) -> Option<&'a str> {
    let needle = format!("-> {server} ");
    status
        .iter()
        .find(|l| l.contains(&needle))
        .map(String::as_str)
}

/// Whether `server` is in the kernel table with `weight` after a passed check.
fn in_with_weight(status: &[String], server: &str, weight: u32) -> bool {
    server_line(status, server).is_some_and(|l| {
        l.contains(&format!("-> {server} Masq {weight} "))
            && l.contains("| tcp up since ")
            && l.ends_with(", in")
    })
}

/// The health words of a server's status line (`tcp up since 12.3s, in`).
fn health_of(status: &[String], server: &str) -> String {
    server_line(status, server)
        .and_then(|l| l.rsplit(" | ").next())
        .unwrap_or_else(|| panic!("{server} not in {status:?}"))
        .to_owned()
}

/// The kernel's real servers as (server, forwarding, weight), sorted.
fn kernel_servers(status: &[String]) -> Vec<(String, String, String)> {
    let mut servers: Vec<_> = status
        .iter()
        .filter_map(|l| l.strip_prefix("lvs:   -> "))
        .filter(|l| !l.contains("(out)"))
        .map(|l| {
            let mut words = l.split_whitespace();
            let mut next = || words.next().unwrap_or_default().to_owned();
            (next(), next(), next())
        })
        .collect();
    servers.sort();
    servers
}

/// The connections IPVS scheduled to `server` so far (its first stats column).
fn connections_of(status: &[String], server: &str) -> u64 {
    server_line(status, server)
        .and_then(|l| l.split(" | ").nth(1))
        .and_then(|stats| stats.split_whitespace().next())
        .and_then(|conns| conns.parse().ok())
        .unwrap_or_else(|| panic!("no counters of {server} in {status:?}"))
}

/// Polls `lvs status` until `ready` holds (or `timeout` passes); returns the last status.
fn wait_status(b: &QemuBox, timeout: Duration, ready: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let status = lvs_status(b);
        if ready(&status) || Instant::now() > deadline {
            return status;
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// One request to the VIP from the client namespace: which server answered.
fn request(client: &str) -> Result<String, String> {
    let body = exec_in(client, "curl", &["-sS", "--max-time", "10", VIP_URL])?;
    match body.trim().strip_prefix("served-by ") {
        Some(name) => Ok(name.to_owned()),
        None => Err(format!("unexpected answer {body:?}")),
    }
}

/// `n` sequential requests; returns how many each of rs1, rs2, rs3 answered, and the failures.
fn requests(client: &str, n: usize) -> ([usize; 3], Vec<String>) {
    let mut counts = [0; 3];
    let mut failed = Vec::new();
    for i in 0..n {
        match request(client).as_deref() {
            Ok("rs1") => counts[0] += 1,
            Ok("rs2") => counts[1] += 1,
            Ok("rs3") => counts[2] += 1,
            other => failed.push(format!("request {i}: {other:?}")),
        }
    }
    (counts, failed)
}

/// Requests to the VIP in a loop on a thread until stopped: what the client saw meanwhile.
struct TrafficLoop {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<(Vec<String>, Vec<String>)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TrafficLoop {
    fn start(client: &str) -> TrafficLoop {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new((Vec::new(), Vec::new())));
        let client = client.to_owned();
        let thread = {
            let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let result = request(&client);
                    let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
                    match result {
                        Ok(name) => seen.0.push(name),
                        Err(error) => {
                            let line = format!("request {}: {error}", seen.0.len());
                            seen.1.push(line);
                        }
                    }
                }
            })
        };
        TrafficLoop {
            stop,
            seen,
            thread: Some(thread),
        }
    }

    /// Answers so far.
    fn answered(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .0
            .len()
    }

    /// Waits until `more` further requests were answered (or a request failed).
    fn wait_more(&self, more: usize, timeout: Duration) {
        let target = self.answered() + more;
        let deadline = Instant::now() + timeout;
        loop {
            let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if seen.0.len() >= target || !seen.1.is_empty() || Instant::now() > deadline {
                return;
            }
            drop(seen);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the loop; returns the servers that answered and the failures.
    fn stop(mut self) -> (Vec<String>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        std::mem::take(&mut *self.seen.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// Serves `served-by <name>` over HTTP on port 80 inside namespace `netns` (a real server made
/// of a namespace): a thread of this process that entered the namespace, one thread per
/// connection. Returns once it listens.
fn serve_http_in(netns: &str, name: &'static str) {
    let path = format!("/run/netns/{netns}");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let (ready, listening) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let listener = TcpListener::bind("0.0.0.0:80").expect("bind port 80");
        ready.send(()).unwrap();
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                // Read the request head (a TCP check sends nothing and closes: EOF).
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut head = Vec::new();
                let mut chunk = [0u8; 1024];
                while head.len() < 4096 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                    }
                }
                let body = format!("served-by {name}\n");
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            });
        }
    });
    listening
        .recv_timeout(Duration::from_secs(10))
        .expect("rs3 listens");
}

#[test]
fn lvs_director_applies_weight_add_delete_rollback_and_removal_live() {
    let started = Instant::now();
    let mut lab = Lab::new().expect("lab");
    let specs = [
        BoxSpec::new("box-a", &[Segment::Public, Segment::Private]).with_config(&director()),
        nat_real_server("rs1", "198.51.100.11", "198.51.100.254"),
        nat_real_server("rs2", "198.51.100.12", "198.51.100.254"),
    ];
    lab.boot(&specs, BOOT).expect("boxes boot");
    let client = {
        let client = lab.add_client("cl", Segment::Public).unwrap();
        client.add_address("192.0.2.100/24").unwrap();
        client.netns.clone()
    };
    {
        // rs3: not configured yet; it serves from the start and routes through the director.
        let rs3 = lab.add_client("rs3", Segment::Private).unwrap();
        rs3.add_address("198.51.100.13/24").unwrap();
        tandem_lab::shell::ip_in(
            &rs3.netns,
            &["route", "add", "default", "via", "198.51.100.254"],
        )
        .unwrap();
        serve_http_in(&rs3.netns, "rs3");
    }
    let director = lab.box_named("box-a").unwrap();
    director
        .console
        .wait_for_any_time("lvs: table in sync: 1 services, 0 real servers", BOOT)
        .unwrap();
    // At start the source NAT precedes the IPVS modules: its own module loads must work.
    director
        .console
        .wait_for_any_time(
            "lvs: source NAT: 198.51.100.0/24 out of any port but private is masqueraded",
            BOOT,
        )
        .unwrap();
    for name in ["rs1", "rs2"] {
        wait_real_server_ready(lab.box_named(name).unwrap(), BOOT).unwrap();
    }
    let director = lab.box_named("box-a").unwrap();
    let status = wait_status(director, CHECK_BOUND, |s| {
        in_with_weight(s, RS1, 1) && in_with_weight(s, RS2, 1)
    });
    assert!(
        in_with_weight(&status, RS1, 1) && in_with_weight(&status, RS2, 1),
        "{status:?}"
    );
    let (counts, failed) = requests(&client, 12);
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(counts, [6, 6, 0], "wrr 1:1");
    eprintln!("booted and balanced after {:.1?}", started.elapsed());

    // 1. Weight of rs1 1 -> 5 while the client requests the VIP in a loop.
    let traffic = TrafficLoop::start(&client);
    traffic.wait_more(5, STEP);
    let (rs1_health, rs2_health) = (health_of(&status, RS1), health_of(&status, RS2));
    edit(
        director,
        "set virtual_services.web.real_servers.rs1.weight 5",
    );
    director.console.send_line("compare").unwrap();
    wait_answer(director, "- weight = 1", STEP);
    wait_answer(director, "+ weight = 5", STEP);
    let answer = commit(director, "commit --comment \"rs1 weight 5\"");
    assert_eq!(
        answer.of("lvs"),
        [format!("lvs: weight of {RS1} in {SERVICE} 1 -> 5")],
        "{answer:#?}"
    );
    assert_eq!(answer.applied.len(), 1, "{answer:#?}");
    assert_eq!(answer.preview.len(), 1, "{answer:#?}");
    assert!(
        answer.preview[0].contains("rs1") && answer.preview[0].contains("weight 1 -> 5"),
        "{answer:#?}"
    );
    traffic.wait_more(5, STEP);
    let status = lvs_status(director);
    assert!(in_with_weight(&status, RS1, 5), "{status:?}");
    assert!(in_with_weight(&status, RS2, 1), "{status:?}");
    // The checks ran on: same verdict, same time of it (a restarted check would have none yet).
    assert_eq!(health_of(&status, RS1), rs1_health, "{status:?}");
    assert_eq!(health_of(&status, RS2), rs2_health, "{status:?}");

    // 2. A third real server: checked, in once its check passed, then its share of traffic.
    edit(
        director,
        "set virtual_services.web.real_servers.rs3.address 198.51.100.13",
    );
    let answer = commit(director, "commit --comment \"rs3 added\"");
    let lvs = answer.of("lvs");
    assert_eq!(lvs.len(), 2, "{answer:#?}");
    assert!(
        lvs.contains(&format!("lvs: health check tcp of {RS3} in {SERVICE} added").as_str()),
        "{answer:#?}"
    );
    assert!(
        lvs.iter().any(|l| l.starts_with(&format!(
            "lvs: real server {RS3} added to {SERVICE} (weight 1)"
        ))),
        "{answer:#?}"
    );
    let status = wait_status(director, CHECK_BOUND, |s| in_with_weight(s, RS3, 1));
    assert!(in_with_weight(&status, RS3, 1), "{status:?}");
    assert!(in_with_weight(&status, RS1, 5), "{status:?}");
    assert!(in_with_weight(&status, RS2, 1), "{status:?}");
    assert_eq!(health_of(&status, RS1), rs1_health, "{status:?}");
    let table_with_three = kernel_servers(&status);
    traffic.wait_more(7, STEP);
    let (served, failed) = traffic.stop();
    assert!(
        failed.is_empty(),
        "the client failed during the live changes: {failed:?}"
    );
    eprintln!(
        "traffic during the weight change and the added server: {} answers, none failed ({} from rs3)",
        served.len(),
        served.iter().filter(|s| *s == "rs3").count()
    );
    let (counts, failed) = requests(&client, 14);
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(counts, [10, 2, 2], "wrr 5:1:1");
    // IPVS's per-server counters (the estimator sums them every 2 s): rs3 was scheduled.
    let status = wait_status(director, STEP, |s| connections_of(s, RS3) >= 2);
    assert!(connections_of(&status, RS3) >= 2, "{status:?}");

    // 3. rs2 deleted: out of the table, no more connections.
    edit(director, "delete virtual_services.web.real_servers.rs2");
    let answer = commit(director, "commit");
    let mut lvs = answer.of("lvs");
    lvs.sort_unstable();
    assert_eq!(
        lvs,
        [
            format!("lvs: health check of {RS2} in {SERVICE} removed"),
            format!("lvs: real server {RS2} removed from {SERVICE}"),
        ],
        "{answer:#?}"
    );
    let status = lvs_status(director);
    assert!(server_line(&status, RS2).is_none(), "{status:?}");
    assert!(in_with_weight(&status, RS1, 5), "{status:?}");
    assert!(in_with_weight(&status, RS3, 1), "{status:?}");
    let (counts, failed) = requests(&client, 12);
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(counts, [10, 0, 2], "wrr 5:1 without rs2");

    // 4. rollback: rs2 back (once its check passes), the table as before the deletion.
    let answer = commit(director, "rollback");
    assert!(
        answer
            .of("lvs")
            .contains(&format!("lvs: health check tcp of {RS2} in {SERVICE} added").as_str()),
        "{answer:#?}"
    );
    let status = wait_status(director, CHECK_BOUND, |s| in_with_weight(s, RS2, 1));
    assert!(in_with_weight(&status, RS2, 1), "{status:?}");
    assert_eq!(kernel_servers(&status), table_with_three, "{status:?}");
    let (counts, failed) = requests(&client, 14);
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(counts, [10, 2, 2], "wrr 5:1:1 after the rollback");
    let before_removal = answer.generation;

    // 5. The whole virtual service deleted: the engine deletes it, then stops.
    edit(director, "delete virtual_services.web");
    let answer = commit(director, "commit --comment \"no more LVS\"");
    let lvs = answer.of("lvs");
    assert!(
        lvs.contains(&format!("lvs: service {SERVICE} removed (with its 3 real servers)").as_str()),
        "{answer:#?}"
    );
    // A config without a virtual service makes no director: the NAT gateway address and the
    // source NAT go with the service (the engine added them), before the engine stops.
    assert!(
        lvs.contains(&"lvs: NAT gateway 198.51.100.254/24 on private removed"),
        "{answer:#?}"
    );
    assert!(
        lvs.contains(&"lvs: source NAT removed (table inet tandem_nat)"),
        "{answer:#?}"
    );
    assert_eq!(
        lvs.last(),
        Some(&"lvs: stopped (the config no longer asks for it)"),
        "{answer:#?}"
    );
    director.console.skip_to_end();
    director.console.send_line("lvs status").unwrap();
    let line = wait_answer(director, "lvs: ", STEP);
    assert_eq!(line, "lvs: not configured on this box");
    // Nothing listens on the VIP on the director itself: refused (curl's 7), not a timeout.
    let refused = request(&client).expect_err("the VIP still answers");
    assert!(refused.contains("exit status: 7"), "{refused}");

    // The engine starts again on a rollback: it reads the kernel table back and needs exactly
    // one operation, adding the service (its servers start down until checked): the table it
    // found was empty. Had the service stayed, it would have deleted its 3 servers instead.
    let answer = commit(director, "rollback");
    assert_eq!(answer.generation, before_removal + 2, "{answer:#?}");
    assert!(answer.of("lvs").contains(&"lvs: started"), "{answer:#?}");
    let line = wait_output_since(director, answer.sent_at, "lvs: table in sync: ", STEP);
    assert!(
        line.contains("lvs: table in sync: 1 services, 0 real servers, 1 ops"),
        "{line}"
    );
    wait_output_since(
        director,
        answer.sent_at,
        "lvs: NAT gateway 198.51.100.254/24 on private added",
        STEP,
    );
    let status = wait_status(director, CHECK_BOUND, |s| {
        kernel_servers(s) == table_with_three
            && [(RS1, 5), (RS2, 1), (RS3, 1)]
                .iter()
                .all(|(rs, w)| in_with_weight(s, rs, *w))
    });
    assert_eq!(kernel_servers(&status), table_with_three, "{status:?}");
    let (counts, failed) = requests(&client, 14);
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(counts, [10, 2, 2], "wrr 5:1:1 after the engine restarted");
    eprintln!("all steps done after {:.1?}", started.elapsed());
}
