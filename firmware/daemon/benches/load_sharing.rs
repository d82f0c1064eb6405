//! Load sharing (`[[clusterip]]`, issue 14) as a client sees it: how long new connections go
//! unserved when a partner dies, and whether established connections live through a planned
//! bucket move.
//!
//! Topology (the one of `tests/load_sharing.rs`): two `tandem run` boxes (network namespaces)
//! on a bridged service LAN with a client (192.0.2.10), a veth peer cable between the boxes,
//! one group `web` (VIP 192.0.2.200 behind multicast MAC 01:00:5e:7f:00:01, hash
//! `source-ip-port`, seed 4242, 16 buckets; box A holds the odd-numbered buckets, box B the
//! even ones), and in each box's namespace a TCP responder on port 8080 that greets every
//! connection with its box's name and answers each line with `<name>:<line>`. Every
//! connection of the client comes from a source port of its own (a counter from 20000; a run
//! wraps only after 45000 ports), so which box must answer it is known in advance:
//! `tandem_southbound::cluster_filter::bucket` computes the kernel's bucket, and the bench
//! checks that prediction against every connection answered while both boxes are up
//! (mismatches are printed).
//!
//! Drill 1, partner loss (`LS_BENCH_TRIALS` trials, default 10): with both boxes up and split
//! (`cluster status`: each holds its 8 buckets and sees the other's 8), the client opens a new
//! connection every `LS_BENCH_ATTEMPT_US` (default 1500) microseconds (tokio's timer: 1 to
//! 2.5 ms apart), alternately from a port whose flow hashes into A's buckets and one into
//! B's. Each attempt sends a single SYN (connect timeout 200 ms, below the kernel's 1 s SYN
//! retransmission, so a lost SYN is a failed attempt rather than a hidden 1 s retry) and counts
//! as answered when the greeting arrives (within 1 s). Once 100 attempts have ended, box B
//! dies as in the test: its daemon is frozen (SIGSTOP), its LAN and peer links go down in one
//! `ip -batch`, it is SIGKILLed. The cut is the instant before SIGSTOP. The client goes on
//! until A's `cluster status` shows all 16 buckets and 200 more attempts have started, then
//! every pending attempt is awaited.
//! Per trial the figure is the time from the cut to the SYN of the first answered attempt in
//! B's buckets that comes after the last failed attempt (of any bucket) sent after the cut:
//! from then on every new connection was served. It overstates the outage by at most the
//! spacing of attempts in B's buckets (every other attempt: about 3 ms); the SYN of the last
//! failure (printed per trial on stderr) is a lower bound. A trial where A never held every
//! bucket within 20 s, or whose last attempt in B's buckets still failed, counts in
//! `load_sharing_takeover_failed_trials`. Figures: `load_sharing_takeover_{p50,p99}` (ms,
//! nearest rank: with 10 trials p99 is the worst trial), and
//! `load_sharing_takeover_logged_{p50,p99}`: the stamp of A's log line "this box holds 16 of
//! 16" after the cut (both on CLOCK_BOOTTIME), the engine's own view of the same takeover.
//! Then B comes back (links up, tandem restarted) and the next trial starts once both hold
//! their 8 buckets again.
//!
//! Drill 2, a planned move: with both boxes split, `LS_BENCH_CONNECTIONS` (default 200)
//! long-lived connections (ports not chosen by bucket) are opened and each answers one line.
//! The move is an operator's config change committed on both boxes at once (two threads, each
//! `set clusterip.web.local_nodes [...]` then `commit` on its box's control socket): the shares
//! swap, A to the even buckets and B to the odd ones, so every bucket changes hands, released
//! by one box before the other takes it (the engine's rule: never both). Once both boxes'
//! `cluster status` show the swapped buckets, one more line goes over every connection; a
//! connection survived when it answers with the same box's name as before. Figures:
//! `load_sharing_planned_move_survivors` and `..._connections` (count),
//! `load_sharing_planned_move_ms`: from the commits (sent at once) until the last bucket was
//! taken, by the boxes' log stamps, and `..._unowned_ms`: the longest time a bucket was held by
//! neither box (a box's "took" stamp minus the other's "released" stamp for the same buckets),
//! during which new connections in it go unanswered (their clients retransmit). New
//! connections after the move are checked against the swapped split (stderr).
//!
//! Needs root (network namespaces, nftables). Nothing about timing is asserted: the bench
//! measures and prints; only a setup step that fails (a box that never comes up, a split that
//! is never reached, a commit refused) ends the run. `LS_BENCH_RAW=1` also prints every sorted
//! sample and, per trial, every attempt around the takeover to stderr. The default run takes
//! about 10 s.

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a failed step is a failed run

use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use socket2::{Domain, Protocol, Socket, Type};
use tandem_lab::host::{
    tandem_query, wait_tandem_query, HostProcess, HostSegment, ScratchDir, TandemRun,
};
use tandem_lab::netns::{veth_pair, Netns};
use tandem_southbound::cluster_filter::{bucket, HashFields};
use tokio::io::AsyncBufReadExt;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const LIMIT: Duration = Duration::from_secs(20);
/// How long a log line the status already reflects may take to show up.
const SECOND: Duration = Duration::from_secs(1);
const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 200);
const CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
const PORT: u16 = 8080;
const OWN: [&str; 2] = ["192.0.2.2", "192.0.2.3"];
const NAMES: [&str; 2] = ["a", "b"];
const BUCKETS: u8 = 16;
const SEED: u32 = 4242;
/// One SYN per attempt: below the kernel's first SYN retransmission (1 s).
const CONNECT_TIMEOUT: Duration = Duration::from_millis(200);
const GREETING_TIMEOUT: Duration = Duration::from_secs(1);
/// Attempts completed before the cut (the split working as it should).
const WARMUP: usize = 100;
/// Attempts started after A's status shows every bucket.
const TAIL: usize = 200;
/// Connections after the planned move, checked against the swapped split.
const AFTER_MOVE: usize = 100;

/// Bucket numbers (1-based, as `local_nodes` writes them) from `first` in steps of 2.
fn every_other(first: u8) -> Vec<String> {
    (first..=BUCKETS)
        .step_by(2)
        .map(|n| n.to_string())
        .collect()
}

/// The box (0 = A, 1 = B) whose bucket a connection from `port` falls in: A holds the
/// odd-numbered buckets (`swapped`: the even ones).
fn home(port: u16, swapped: bool) -> usize {
    let index = bucket(
        HashFields::SourceIpPort,
        SEED,
        u32::from(BUCKETS),
        CLIENT,
        port,
        PORT,
    );
    // Bucket numbers are 1-based: index 0 is bucket 1 (odd).
    let odd_numbered = index.is_multiple_of(2);
    usize::from(odd_numbered == swapped)
}

/// Source ports, each used once (wrapping after 64511 connections).
#[derive(Debug)]
struct Ports(AtomicU32);

impl Ports {
    fn next(&self) -> u16 {
        let n = self.0.fetch_add(1, Ordering::Relaxed);
        u16::try_from(20_000 + n % 45_000).unwrap_or(20_000)
    }
}

/// A socket bound to the client's address and a fresh source port (with `home`, one whose
/// flows hash into that box's buckets of the initial split); closing it resets the connection
/// (no TIME_WAIT on either side).
fn client_socket(ports: &Ports, home_box: Option<usize>) -> std::io::Result<(Socket, u16)> {
    let mut last = None;
    for _ in 0..1000 {
        let port = ports.next();
        if home_box.is_some_and(|wanted| home(port, false) != wanted) {
            continue;
        }
        let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
        socket.set_linger(Some(Duration::ZERO))?;
        match socket.bind(&SocketAddr::from((CLIENT, port)).into()) {
            Ok(()) => return Ok((socket, port)),
            Err(error) => last = Some(error),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
}

/// A responder in `ns`: every connection first hears `name`, then each line comes back as
/// `name:line`.
fn responder(ns: &Netns, name: &'static str) {
    let listener = ns
        .run(|| TcpListener::bind(("0.0.0.0", PORT)))
        .unwrap()
        .unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                if stream.write_all(format!("{name}\n").as_bytes()).is_err() {
                    return;
                }
                let Ok(clone) = stream.try_clone() else {
                    return;
                };
                let mut reader = BufReader::new(clone);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
                    if stream
                        .write_all(format!("{name}:{line}").as_bytes())
                        .is_err()
                    {
                        return;
                    }
                    line.clear();
                }
            });
        }
    });
}

/// How one connection attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Outcome {
    /// The greeting of box 0 (A) or 1 (B) arrived.
    Answered(usize),
    /// No SYN-ACK within the connect timeout.
    ConnectTimeout,
    /// Connected, but no greeting (reset, closed or timed out).
    NoGreeting,
    /// The connect failed otherwise (e.g. a reset).
    Failed(String),
}

#[derive(Debug, Clone)]
struct Attempt {
    port: u16,
    /// When its SYN was sent.
    sent: Instant,
    outcome: Outcome,
}

impl Attempt {
    fn answered(&self) -> bool {
        matches!(self.outcome, Outcome::Answered(_))
    }

    /// How a failed attempt failed, for the per-trial summary.
    fn failure(&self) -> Option<&'static str> {
        match self.outcome {
            Outcome::Answered(_) => None,
            Outcome::ConnectTimeout => Some("no SYN-ACK"),
            Outcome::NoGreeting => Some("connected, no greeting"),
            Outcome::Failed(_) => Some("connect error"),
        }
    }
}

/// One attempt from `socket` (bound to `port`).
async fn attempt(socket: Socket, port: u16) -> Attempt {
    let address = SocketAddr::from((VIP, PORT));
    let finish = |sent, outcome| Attempt {
        port,
        sent,
        outcome,
    };
    let prepared = socket
        .set_nonblocking(true)
        .map(|()| tokio::net::TcpSocket::from_std_stream(TcpStream::from(socket)));
    let sent = Instant::now();
    let socket = match prepared {
        Ok(socket) => socket,
        Err(error) => return finish(sent, Outcome::Failed(error.to_string())),
    };
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, socket.connect(address)).await {
        Err(_) => return finish(sent, Outcome::ConnectTimeout),
        Ok(Err(error)) => return finish(sent, Outcome::Failed(error.to_string())),
        Ok(Ok(stream)) => stream,
    };
    let mut reader = tokio::io::BufReader::new(stream);
    let mut greeting = String::new();
    let outcome = match tokio::time::timeout(GREETING_TIMEOUT, reader.read_line(&mut greeting))
        .await
    {
        Ok(Ok(n)) if n > 0 => match NAMES.iter().position(|name| *name == greeting.trim_end()) {
            Some(index) => Outcome::Answered(index),
            None => Outcome::Failed(format!("greeting {greeting:?}")),
        },
        _ => Outcome::NoGreeting,
    };
    finish(sent, outcome)
}

/// The client's stream of new connections, on a thread in the client's namespace.
struct Client {
    stop: Arc<AtomicBool>,
    launched: Arc<AtomicUsize>,
    done: Arc<Mutex<Vec<Attempt>>>,
    thread: std::thread::JoinHandle<Result<(), String>>,
}

impl Client {
    fn start(ns: &Netns, ports: &Arc<Ports>, interval: Duration) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let launched = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(Mutex::new(Vec::new()));
        let (thread_stop, thread_launched, thread_done, ports) = (
            Arc::clone(&stop),
            Arc::clone(&launched),
            Arc::clone(&done),
            Arc::clone(ports),
        );
        let thread = ns
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let mut tasks = tokio::task::JoinSet::new();
                    let mut tick = tokio::time::interval(interval);
                    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                    while !thread_stop.load(Ordering::Relaxed) {
                        tick.tick().await;
                        // Alternately into A's buckets and into B's.
                        let launched = thread_launched.fetch_add(1, Ordering::Relaxed);
                        let (socket, port) = client_socket(&ports, Some(launched % 2)).unwrap();
                        let done = Arc::clone(&thread_done);
                        tasks.spawn(async move {
                            let result = attempt(socket, port).await;
                            done.lock().unwrap().push(result);
                        });
                        while tasks.try_join_next().is_some() {}
                    }
                    while tasks.join_next().await.is_some() {}
                });
            })
            .unwrap();
        Client {
            stop,
            launched,
            done,
            thread,
        }
    }

    fn launched(&self) -> usize {
        self.launched.load(Ordering::Relaxed)
    }

    fn completed(&self) -> usize {
        self.done.lock().unwrap().len()
    }

    /// Stops launching, awaits every pending attempt and returns them all, in SYN order.
    fn finish(self) -> Vec<Attempt> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap().unwrap();
        let mut attempts = std::mem::take(&mut *self.done.lock().unwrap());
        attempts.sort_by_key(|a| a.sent);
        attempts
    }
}

/// One long-lived connection of drill 2.
struct Connection {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
    port: u16,
    served_by: usize,
}

impl Connection {
    /// Opens a connection from a fresh port and reads which box answered.
    fn open(ports: &Ports) -> Result<Connection, String> {
        let (socket, port) = client_socket(ports, None).map_err(|e| e.to_string())?;
        socket
            .connect_timeout(
                &SocketAddr::from((VIP, PORT)).into(),
                Duration::from_secs(5),
            )
            .map_err(|e| format!("port {port}: connect: {e}"))?;
        let stream = TcpStream::from(socket);
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
        let mut greeting = String::new();
        reader
            .read_line(&mut greeting)
            .map_err(|e| format!("port {port}: no greeting: {e}"))?;
        let served_by = NAMES
            .iter()
            .position(|name| *name == greeting.trim_end())
            .ok_or_else(|| format!("port {port}: greeting {greeting:?}"))?;
        Ok(Connection {
            stream,
            reader,
            port,
            served_by,
        })
    }

    /// Sends a line; Ok when the box that answered the greeting echoes it.
    fn echo(&mut self, text: &str) -> Result<(), String> {
        self.stream
            .write_all(format!("{text}\n").as_bytes())
            .map_err(|e| format!("write: {e}"))?;
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => return Err("closed".to_owned()),
            Err(e) => return Err(format!("read: {e}")),
            Ok(_) => {}
        }
        let wanted = format!("{}:{text}", NAMES[self.served_by]);
        if line.trim_end() == wanted {
            Ok(())
        } else {
            Err(format!("answer {line:?} for {wanted:?}"))
        }
    }
}

/// Seconds since boot (CLOCK_BOOTTIME): the clock of the daemons' log stamps.
fn boot_seconds() -> f64 {
    nix::time::clock_gettime(nix::time::ClockId::CLOCK_BOOTTIME)
        .map(|t| t.tv_sec() as f64 + f64::from(u32::try_from(t.tv_nsec()).unwrap_or(0)) / 1e9)
        .unwrap_or(0.0)
}

/// The stamp of a log line `[  12.345] tandem: ...`.
fn stamp(line: &str) -> Option<f64> {
    let start = line.find('[')?;
    let end = line[start..].find(']')? + start;
    line[start + 1..end].trim().parse().ok()
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

/// The two boxes (processes first: they die before their namespaces go), the client, the LAN.
struct Pair {
    boxes: [Option<HostProcess>; 2],
    ns: [Netns; 2],
    client: Netns,
    _segment: HostSegment,
    dir: ScratchDir,
    ports: Arc<Ports>,
}

impl Pair {
    fn new(tag: &str) -> Pair {
        let mut segment = HostSegment::new(&format!("{tag}s")).unwrap();
        let client = Netns::new(&format!("{tag}c")).unwrap();
        let a = Netns::new(&format!("{tag}a")).unwrap();
        let b = Netns::new(&format!("{tag}b")).unwrap();
        let client_address = CLIENT.to_string();
        for (ns, own) in [
            (&client, client_address.as_str()),
            (&a, OWN[0]),
            (&b, OWN[1]),
        ] {
            segment.attach(ns, "eth0").unwrap();
            ns.ip(&["addr", "add", &format!("{own}/24"), "dev", "eth0", "nodad"])
                .unwrap();
        }
        veth_pair(&a, "peer", &b, "peer").unwrap();
        responder(&a, NAMES[0]);
        responder(&b, NAMES[1]);
        let dir = ScratchDir::new(tag).unwrap();
        for verb in ["down", "up"] {
            std::fs::write(
                dir.path.join(format!("links-{verb}.batch")),
                format!("link set eth0 {verb}\nlink set peer {verb}\n"),
            )
            .unwrap();
        }
        Pair {
            boxes: [None, None],
            ns: [a, b],
            client,
            _segment: segment,
            dir,
            ports: Arc::new(Ports(AtomicU32::new(0))),
        }
    }

    fn control(&self, index: usize) -> PathBuf {
        self.dir.path.join(format!("{}.sock", NAMES[index]))
    }

    /// Starts box `index` with its share of the buckets (A the odd ones, B the even ones).
    fn start(&mut self, index: usize) {
        let name = NAMES[index];
        let own = OWN[index];
        let local = every_other(if index == 0 { 1 } else { 2 }).join(", ");
        let config = format!(
            "[system]\nhostname = \"{name}\"\n\n\
             [peer_link]\ninterface = \"peer\"\n\n\
             [[interfaces]]\nname = \"eth0\"\naddresses = [\"{own}/24\"]\n\n\
             [[interfaces]]\nname = \"peer\"\n\n\
             [[clusterip]]\nname = \"web\"\nvip = \"{VIP}\"\ninterface = \"eth0\"\n\
             multicast_mac = \"01:00:5e:7f:00:01\"\nhash = \"source-ip-port\"\nhash_init = {SEED}\n\
             total_nodes = {BUCKETS}\nlocal_nodes = [{local}]\n"
        );
        let control = self.control(index);
        let process = TandemRun {
            tandem: Path::new(TANDEM),
            dir: &self.dir.path,
            name,
            control: Some(&control),
        }
        .start(&self.ns[index], &config, "cluster: group web:", LIMIT)
        .unwrap();
        self.boxes[index] = Some(process);
    }

    fn ask(&self, index: usize, words: &[&str]) -> String {
        tandem_query(TANDEM.as_ref(), &self.control(index), words)
    }

    fn wait(&self, index: usize, what: &str, check: impl Fn(&str) -> bool) -> String {
        wait_tandem_query(
            TANDEM.as_ref(),
            &self.control(index),
            &["cluster", "status"],
            LIMIT,
            check,
        )
        .unwrap_or_else(|last| panic!("{} never showed {what}; last answer:\n{last}", NAMES[index]))
    }

    /// Waits until both boxes hold their own 8 buckets (as configured now) and each sees the
    /// other's 8 on the heartbeat.
    fn wait_split(&self) {
        for index in 0..2 {
            self.wait(index, "the split", |text| {
                text.contains("this box: 8 bucket(s)") && text.contains("partner: 8 bucket(s)")
            });
        }
    }

    fn console_mark(&self, index: usize) -> usize {
        self.boxes[index].as_ref().unwrap().console.mark()
    }

    /// The first log line of box `index` containing `pattern` after `mark`.
    fn logged(
        &self,
        index: usize,
        mark: usize,
        pattern: &str,
        limit: Duration,
    ) -> Result<String, String> {
        self.boxes[index]
            .as_ref()
            .unwrap()
            .console
            .wait_for_since(mark, pattern, limit)
    }

    /// Box death: SIGSTOP, both links down in one `ip -batch`, SIGKILL.
    fn kill(&mut self, index: usize) {
        let batch = self.dir.path.join("links-down.batch");
        let mut process = self.boxes[index].take().unwrap();
        process.signal(Signal::SIGSTOP).unwrap();
        self.ns[index]
            .ip(&["-batch", batch.to_str().unwrap()])
            .unwrap();
        process.signal(Signal::SIGKILL).unwrap();
        let _ = process.wait(Duration::from_secs(5));
    }

    /// The dead box back: links up, daemon restarted, the split restored.
    fn revive(&mut self, index: usize) {
        let batch = self.dir.path.join("links-up.batch");
        self.ns[index]
            .ip(&["-batch", batch.to_str().unwrap()])
            .unwrap();
        self.start(index);
        self.wait_split();
    }
}

/// One partner loss as the client and box A saw it (ms after the cut).
struct Takeover {
    /// Cut to the SYN of the first answered attempt in B's buckets after the last failure;
    /// None when the last attempt in B's buckets failed.
    served: Option<f64>,
    /// Cut to the SYN of the last failed attempt (0 without one).
    last_failure: f64,
    /// Cut to A's log stamp of holding every bucket.
    logged: f64,
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// One partner loss, B revived afterwards; None when A never took every bucket.
fn takeover_trial(pair: &mut Pair, trial: usize, interval: Duration) -> Option<Takeover> {
    let client = Client::start(&pair.client, &pair.ports, interval);
    assert!(
        wait_for(LIMIT, || client.completed() >= WARMUP),
        "the client completed no {WARMUP} attempts"
    );
    let mark = pair.console_mark(0);
    let cut = Instant::now();
    let cut_boot = boot_seconds();
    pair.kill(1);
    let line = pair.logged(0, mark, "this box holds 16 of 16", LIMIT);
    let held_all = line.is_ok()
        && wait_tandem_query(
            TANDEM.as_ref(),
            &pair.control(0),
            &["cluster", "status"],
            LIMIT,
            |text| text.contains("this box: 16 bucket(s)"),
        )
        .is_ok();
    let from = client.launched();
    // The tail: attempts started once A shows every bucket.
    let tail_started = wait_for(LIMIT, || client.launched() >= from + TAIL);
    let attempts = client.finish();
    let status = pair.ask(0, &["cluster", "status"]);
    pair.revive(1);
    let Ok(line) = line else {
        eprintln!("load_sharing: trial {trial}: A never held every bucket\n{status}");
        return None;
    };
    if !held_all || !tail_started {
        eprintln!("load_sharing: trial {trial}: A's status never showed every bucket\n{status}");
        return None;
    }
    let logged = stamp(&line).map_or(f64::NAN, |t| (t - cut_boot) * 1000.0);

    let (before, after): (Vec<&Attempt>, Vec<&Attempt>) =
        attempts.iter().partition(|a| a.sent < cut);
    // Before the cut every answer comes from the box the hash names.
    let misrouted = before
        .iter()
        .filter(|a| matches!(a.outcome, Outcome::Answered(by) if by != home(a.port, false)))
        .count();
    let broken_at_cut = before.iter().filter(|a| !a.answered()).count();
    let failed: Vec<&&Attempt> = after.iter().filter(|a| !a.answered()).collect();
    let own_failed = failed.iter().filter(|a| home(a.port, false) == 0).count();
    let answered_by_b = after
        .iter()
        .filter(|a| a.outcome == Outcome::Answered(1))
        .count();
    let last_failure = failed.last().map(|a| a.sent);
    let served = after
        .iter()
        .filter(|a| home(a.port, false) == 1 && last_failure.is_none_or(|t| a.sent > t))
        .find(|a| a.answered())
        .map(|a| ms(a.sent - cut));
    let last_b = after.iter().rfind(|a| home(a.port, false) == 1);
    let recovered = last_b.is_some_and(|a| a.answered());
    let mut kinds: Vec<String> = Vec::new();
    for kind in ["no SYN-ACK", "connected, no greeting", "connect error"] {
        let n = failed.iter().filter(|a| a.failure() == Some(kind)).count();
        if n > 0 {
            kinds.push(format!("{kind} {n}"));
        }
    }
    eprintln!(
        "load_sharing: trial {trial}: served again {} ms after the cut (last failure {:.1} ms, A logged all 16 at {logged:.1} ms); {} attempts after the cut, {} failed ({}), {} of them in A's own buckets, {answered_by_b} answered by B; {broken_at_cut} attempts sent before the cut failed; {misrouted} answers before the cut from the wrong box",
        served.map_or("never".to_owned(), |v| format!("{v:.1}")),
        last_failure.map_or(0.0, |t| ms(t - cut)),
        after.len(),
        failed.len(),
        if kinds.is_empty() {
            "none".to_owned()
        } else {
            kinds.join(", ")
        },
        own_failed,
    );
    if std::env::var_os("LS_BENCH_RAW").is_some() {
        // Every attempt up to 10 ms past the figure: ms after the cut, home box, answer.
        let end = served.unwrap_or(f64::INFINITY) + 10.0;
        let text: Vec<String> = after
            .iter()
            .map(|a| (ms(a.sent - cut), a))
            .take_while(|(t, _)| *t <= end)
            .map(|(t, a)| {
                format!(
                    "{t:.1}{}{}",
                    NAMES[home(a.port, false)],
                    match a.outcome {
                        Outcome::Answered(by) => NAMES[by],
                        _ => "-",
                    }
                )
            })
            .collect();
        eprintln!(
            "load_sharing: trial {trial} attempts (ms after the cut, home box, answered by): {}",
            text.join(" ")
        );
    }
    if !recovered {
        eprintln!("load_sharing: trial {trial}: the last attempt in B's buckets failed\n{status}");
    }
    Some(Takeover {
        served: served.filter(|_| recovered),
        last_failure: last_failure.map_or(0.0, |t| ms(t - cut)),
        logged,
    })
}

/// The planned move: (survivors, connections, move ms, longest unowned ms).
fn planned_move(pair: &Pair, count: usize) -> (usize, usize, f64, f64) {
    let ports = Arc::clone(&pair.ports);
    let mut connections: Vec<Connection> = pair
        .client
        .run(move || {
            (0..count)
                .map(|_| Connection::open(&ports))
                .collect::<Result<Vec<_>, String>>()
        })
        .unwrap()
        .unwrap();
    let misrouted = connections
        .iter()
        .filter(|c| c.served_by != home(c.port, false))
        .count();
    let on_a = connections.iter().filter(|c| c.served_by == 0).count();
    let mut broken_before = 0;
    for (i, connection) in connections.iter_mut().enumerate() {
        if let Err(error) = connection.echo(&format!("before-{i}")) {
            broken_before += 1;
            eprintln!("load_sharing: connection {i} failed before the move: {error}");
        }
    }
    eprintln!(
        "load_sharing: planned move: {count} connections, {on_a} on A, {} on B, {misrouted} not where the hash says, {broken_before} not answering before the move",
        count - on_a
    );

    let marks = [pair.console_mark(0), pair.console_mark(1)];
    let new_shares = [every_other(2), every_other(1)];
    let started = boot_seconds();
    let answers: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..2)
            .map(|index| {
                let value = format!("[{}]", new_shares[index].join(", "));
                scope.spawn(move || {
                    let set = pair.ask(index, &["set", "clusterip.web.local_nodes", &value]);
                    let commit = pair.ask(index, &["commit", "--comment", "swap the buckets"]);
                    format!("{set}{commit}")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (index, answer) in answers.iter().enumerate() {
        assert!(
            answer.contains("applied"),
            "commit on {}: {answer}",
            NAMES[index]
        );
    }
    for (index, share) in new_shares.iter().enumerate() {
        let wanted = format!("this box: 8 bucket(s) {}", share.join(","));
        pair.wait(index, &wanted, |text| text.contains(&wanted));
    }
    // The stamps of each box's release of its old buckets and take of its new ones (one log
    // line or two).
    let mut took = [f64::NAN; 2];
    let mut released = [f64::NAN; 2];
    for index in 0..2 {
        let (new, old) = (&new_shares[index], &new_shares[1 - index]);
        let take = pair.logged(
            index,
            marks[index],
            &format!("took 8 bucket(s) {}", new.join(",")),
            SECOND,
        );
        let release = pair.logged(
            index,
            marks[index],
            &format!("released 8 bucket(s) {}", old.join(",")),
            SECOND,
        );
        took[index] = take.as_deref().ok().and_then(stamp).unwrap_or(f64::NAN);
        released[index] = release.as_deref().ok().and_then(stamp).unwrap_or(f64::NAN);
        let process = pair.boxes[index].as_ref().unwrap();
        let log =
            String::from_utf8_lossy(&process.console.bytes_since(marks[index]).0).into_owned();
        eprintln!(
            "load_sharing: {} logged after the commits:\n{}",
            NAMES[index],
            log.lines()
                .filter(|l| l.contains("cluster:"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let move_ms = (took[0].max(took[1]) - started) * 1000.0;
    // A's new buckets were B's: unowned from B's release to A's take; and the other way.
    let unowned_ms = ((took[0] - released[1]).max(took[1] - released[0]) * 1000.0).max(0.0);

    let mut survivors = 0;
    for (i, connection) in connections.iter_mut().enumerate() {
        match connection.echo(&format!("after-{i}")) {
            Ok(()) => survivors += 1,
            Err(error) => eprintln!(
                "load_sharing: connection {i} (port {}, on {}) broke in the move: {error}",
                connection.port, NAMES[connection.served_by]
            ),
        }
    }
    drop(connections);
    let ports = Arc::clone(&pair.ports);
    let fresh: Vec<Result<Connection, String>> = pair
        .client
        .run(move || (0..AFTER_MOVE).map(|_| Connection::open(&ports)).collect())
        .unwrap();
    let failed = fresh.iter().filter(|c| c.is_err()).count();
    let swapped_right = fresh
        .iter()
        .flatten()
        .filter(|c| c.served_by == home(c.port, true))
        .count();
    eprintln!(
        "load_sharing: after the move: {AFTER_MOVE} new connections, {swapped_right} answered by the box the swapped split names, {failed} failed"
    );
    (survivors, count, move_ms, unowned_ms)
}

fn report(name: &str, values: &mut [f64], unit: &str) {
    tandem_lab::figures::report(name, values, unit, "LS_BENCH_RAW");
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
    if Netns::new("lsprobe").is_err() {
        println!("load_sharing: cannot create network namespaces (needs root); skipped");
        return;
    }
    let trials: usize = env_number("LS_BENCH_TRIALS", 10);
    let count: usize = env_number("LS_BENCH_CONNECTIONS", 200);
    let interval = Duration::from_micros(env_number("LS_BENCH_ATTEMPT_US", 1500).max(100));
    let mut pair = Pair::new("lsb");
    pair.start(0);
    pair.start(1);
    pair.wait_split();

    let mut served = Vec::new();
    let mut logged = Vec::new();
    let mut lower = Vec::new();
    for trial in 0..trials {
        if let Some(takeover) = takeover_trial(&mut pair, trial, interval) {
            logged.push(takeover.logged);
            if let Some(v) = takeover.served {
                served.push(v);
                lower.push(takeover.last_failure);
            }
        }
    }
    if trials > 0 {
        if std::env::var_os("LS_BENCH_RAW").is_some() {
            let mut sorted = lower.clone();
            sorted.sort_by(f64::total_cmp);
            let text: Vec<String> = sorted.iter().map(|v| format!("{v:.1}")).collect();
            eprintln!(
                "load_sharing_takeover last failures (ms): {}",
                text.join(" ")
            );
        }
        report("load_sharing_takeover", &mut served, "ms");
        println!(
            "bench: load_sharing_takeover_failed_trials {} trials",
            trials - served.len()
        );
        report("load_sharing_takeover_logged", &mut logged, "ms");
    }

    if count > 0 {
        let (survivors, total, move_ms, unowned_ms) = planned_move(&pair, count);
        println!("bench: load_sharing_planned_move_survivors {survivors} count");
        println!("bench: load_sharing_planned_move_connections {total} count");
        println!("bench: load_sharing_planned_move_ms {move_ms:.1} ms");
        println!("bench: load_sharing_planned_move_unowned_ms {unowned_ms:.1} ms");
    }
}
