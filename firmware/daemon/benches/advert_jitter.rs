//! VRRP advert schedule jitter at 10 ms adverts, with tandem's console flooded, against an idle
//! baseline and keepalived in the same run.
//!
//! Three masters alone on one host segment (priority 150, advert interval 10 ms, v3, each its
//! own VRID so none hears a rival), and a capture namespace that joins 224.0.0.18 on a raw IP
//! protocol 112 socket and takes each advert's kernel receive timestamp (SO_TIMESTAMPNS), so the
//! capture thread's own scheduling (the flood loads the same cores) does not count:
//! - `idle`: tandem with its console a pipe that is read;
//! - `flooded`: tandem with its console a pty nobody reads, measured while `log` and `status`
//!   are typed on it every 20 ms (the console writer's queue fills and drops) and three threads
//!   flood its control socket with `log` requests;
//! - `keepalived`: keepalived 2.2.7 (`advert_int 0.01`, `vrrp_version 3`), no flood (it has no
//!   console to flood).
//!
//! The phases take turns in [`ROUNDS`] rounds of [`WINDOW`] each (the flood starts
//! [`FLOOD_LEAD`] before its window and stops after it), so load from elsewhere on the machine
//! falls on all three alike. A phase's figure is the deviation of every inter-arrival gap inside
//! its windows from the nominal 10 ms, |gap - 10 ms|: what a backup's Master_Down timer sees. A
//! late advert shows as one long gap (and, for a fixed-grid schedule like tandem's, one short
//! gap after it), a missed one as a 10 ms deviation.
//!
//! Figures (`bench: <name> <value> <unit>`): `vrrp_advert_jitter_10ms_<phase>_{p50,p99,max}`
//! in ms, the adverts captured per phase (at least [`MIN_ADVERTS`], or the run fails), the
//! flood's served `log` requests and the console messages tandem dropped, and the ratio of
//! tandem's flooded p99 to keepalived's p99. `ADVERT_JITTER_RAW=1` also prints every gap off by
//! more than 2 ms and each phase's sorted deviations to stderr. Needs root and keepalived.

#![allow(clippy::unwrap_used, clippy::expect_used)] // bench code: a failed step is a failed run

use std::io::{IoSliceMut, Read, Write};
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags};
use nix::sys::time::TimeSpec;
use tandem_lab::host::{keepalived, wait_tandem_query, HostSegment, ScratchDir, TandemRun};
use tandem_lab::netns::Netns;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const LIMIT: Duration = Duration::from_secs(20);
/// Rounds of one window per phase: 5 x 2 s = about 1,000 adverts per phase.
const ROUNDS: usize = 5;
const WINDOW: Duration = Duration::from_secs(2);
/// How long the flood runs before its window opens (the pty and the writer's queue fill).
const FLOOD_LEAD: Duration = Duration::from_millis(500);
/// Fewer adverts than this in a phase fails the run (nothing was measured).
const MIN_ADVERTS: usize = 300;
/// The advert interval every speaker is configured with.
const NOMINAL: Duration = Duration::from_millis(10);
const VRRP_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);

/// One measured speaker.
#[derive(Debug, Clone, Copy)]
struct Phase {
    name: &'static str,
    address: Ipv4Addr,
    vrid: u8,
    vip: Ipv4Addr,
}

const IDLE: Phase = Phase {
    name: "idle",
    address: Ipv4Addr::new(192, 0, 2, 2),
    vrid: 51,
    vip: Ipv4Addr::new(192, 0, 2, 101),
};
const FLOODED: Phase = Phase {
    name: "flooded",
    address: Ipv4Addr::new(192, 0, 2, 3),
    vrid: 52,
    vip: Ipv4Addr::new(192, 0, 2, 102),
};
const KEEPALIVED: Phase = Phase {
    name: "keepalived",
    address: Ipv4Addr::new(192, 0, 2, 4),
    vrid: 53,
    vip: Ipv4Addr::new(192, 0, 2, 103),
};
const PHASES: [Phase; 3] = [IDLE, FLOODED, KEEPALIVED];

fn tandem_config(phase: Phase) -> String {
    let Phase {
        name,
        address,
        vrid,
        vip,
    } = phase;
    format!(
        "[system]\nhostname = \"{name}\"\n\n[[interfaces]]\nname = \"eth0\"\naddresses = [\"{address}/24\"]\n\n\
         [[vrrp]]\nname = \"vi\"\nvrid = {vrid}\ninterface = \"eth0\"\npriority = 150\nadvert_interval_cs = 1\n\
         accept_mode = true\n\n[[vrrp.vips]]\naddress = \"{vip}\"\nprefix = 24\n"
    )
}

fn keepalived_config(phase: Phase) -> String {
    let Phase {
        name, vrid, vip, ..
    } = phase;
    format!(
        "global_defs {{\n  router_id {name}\n  vrrp_version 3\n}}\n\
         vrrp_instance VI {{\n  state MASTER\n  interface eth0\n  virtual_router_id {vrid}\n  priority 150\n  advert_int 0.01\n\
           virtual_ipaddress {{\n    {vip}/24 dev eth0\n  }}\n}}\n"
    )
}

/// A fresh namespace on `segment` with eth0 at `address`/24.
fn host(segment: &mut HostSegment, tag: &str, address: Ipv4Addr) -> Netns {
    let ns = Netns::new(tag).unwrap();
    segment.attach(&ns, "eth0").unwrap();
    ns.ip(&["addr", "add", &format!("{address}/24"), "dev", "eth0"])
        .unwrap();
    ns
}

/// One advert seen: its VRID and kernel receive time (ns, CLOCK_REALTIME).
#[derive(Debug, Clone, Copy)]
struct Arrival {
    vrid: u8,
    at: i128,
}

#[derive(Debug, Default)]
struct Captured {
    arrivals: Vec<Arrival>,
    /// Adverts without a kernel timestamp (stamped by the thread instead).
    user_stamped: usize,
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

/// A capture thread on `eth0` of `ns`, running until `stop`.
fn capture(
    ns: &Netns,
    stop: &Arc<AtomicBool>,
) -> JoinHandle<Result<Result<Captured, String>, String>> {
    let ifindex = ns.ifindex("eth0").unwrap();
    let stop = Arc::clone(stop);
    ns.spawn(move || capture_loop(ifindex, &stop)).unwrap()
}

fn capture_loop(ifindex: u32, stop: &AtomicBool) -> Result<Captured, String> {
    use socket2::{Domain, InterfaceIndexOrAddress, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(112)))
        .map_err(|e| format!("raw VRRP socket: {e}"))?;
    socket
        .join_multicast_v4_n(&VRRP_GROUP, &InterfaceIndexOrAddress::Index(ifindex))
        .map_err(|e| format!("join {VRRP_GROUP}: {e}"))?;
    // Only to look at the stop flag now and then: the arrival times come from the kernel.
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .map_err(|e| e.to_string())?;
    setsockopt(&socket, sockopt::ReceiveTimestampns, &true)
        .map_err(|e| format!("SO_TIMESTAMPNS: {e}"))?;
    let fd = socket.as_raw_fd();
    let mut captured = Captured::default();
    let mut buffer = [0u8; 1500];
    let mut control = nix::cmsg_space!(TimeSpec);
    while !stop.load(Ordering::Relaxed) {
        let mut iov = [IoSliceMut::new(&mut buffer)];
        let (len, stamp) = match recvmsg::<()>(fd, &mut iov, Some(&mut control), MsgFlags::empty())
        {
            Ok(message) => {
                let stamp = message.cmsgs().ok().and_then(|mut messages| {
                    messages.find_map(|m| match m {
                        ControlMessageOwned::ScmTimestampns(ts) => {
                            Some(i128::from(ts.tv_sec()) * 1_000_000_000 + i128::from(ts.tv_nsec()))
                        }
                        _ => None,
                    })
                });
                (message.bytes, stamp)
            }
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("recvmsg: {e}")),
        };
        let Some(vrid) = advert_vrid(buffer.get(..len).unwrap_or_default()) else {
            continue;
        };
        let at = stamp.unwrap_or_else(|| {
            captured.user_stamped += 1;
            now_ns()
        });
        captured.arrivals.push(Arrival { vrid, at });
    }
    Ok(captured)
}

/// The VRID of an IPv4 VRRPv3 advert with a non-zero priority from its phase's speaker.
fn advert_vrid(packet: &[u8]) -> Option<u8> {
    let first = *packet.first()?;
    let header = usize::from(first & 0x0f) * 4;
    let vrrp = packet.get(header..header + 3)?;
    let phase = PHASES.iter().find(|p| p.vrid == vrrp[1])?;
    (first >> 4 == 4
        && packet.get(9) == Some(&112)
        && packet.get(12..16) == Some(&phase.address.octets()[..])
        && vrrp[0] == 0x31
        && vrrp[2] != 0)
        .then_some(vrrp[1])
}

/// Prints a phase's figures from the adverts inside its `windows` (ns); returns its p99 (ms).
fn report(phase: Phase, captured: &Captured, windows: &[(i128, i128)]) -> f64 {
    let name = format!("vrrp_advert_jitter_10ms_{}", phase.name);
    let raw = std::env::var_os("ADVERT_JITTER_RAW").is_some();
    let nominal = i128::try_from(NOMINAL.as_nanos()).unwrap();
    let mut count = 0;
    let mut gaps_ns = Vec::new();
    for &(start, end) in windows {
        let inside: Vec<i128> = captured
            .arrivals
            .iter()
            .filter(|a| a.vrid == phase.vrid && (start..end).contains(&a.at))
            .map(|a| a.at)
            .collect();
        count += inside.len();
        for pair in inside.windows(2) {
            let gap = pair[1] - pair[0];
            if raw && (gap - nominal).abs() > 2_000_000 {
                eprintln!(
                    "{name}: gap {:.3} ms at {:.3} s into a window",
                    gap as f64 / 1e6,
                    (pair[0] - start) as f64 / 1e9
                );
            }
            gaps_ns.push(gap);
        }
    }
    println!("bench: {name}_adverts {count} adverts");
    assert!(
        count >= MIN_ADVERTS,
        "{}: only {count} adverts captured in {ROUNDS} x {WINDOW:?}",
        phase.name
    );
    let mut deviations: Vec<f64> = gaps_ns
        .iter()
        .map(|gap| {
            let deviation = u64::try_from((gap - nominal).abs()).unwrap_or(u64::MAX);
            Duration::from_nanos(deviation).as_secs_f64() * 1000.0
        })
        .collect();
    deviations.sort_by(f64::total_cmp);
    if raw {
        let text: Vec<String> = deviations.iter().map(|v| format!("{v:.3}")).collect();
        eprintln!("{name} deviations (ms): {}", text.join(" "));
    }
    gaps_ns.sort_unstable();
    let total: i128 = gaps_ns.iter().sum();
    eprintln!(
        "{name}: {} gaps, mean {:.4} ms, shortest {:.3} ms, longest {:.3} ms",
        gaps_ns.len(),
        total as f64 / gaps_ns.len().max(1) as f64 / 1e6,
        gaps_ns.first().copied().unwrap_or(0) as f64 / 1e6,
        gaps_ns.last().copied().unwrap_or(0) as f64 / 1e6,
    );
    let p99 = tandem_lab::figures::percentile_sorted(&deviations, 99);
    println!(
        "bench: {name}_p50 {:.3} ms",
        tandem_lab::figures::percentile_sorted(&deviations, 50)
    );
    println!("bench: {name}_p99 {p99:.3} ms");
    println!(
        "bench: {name}_max {:.3} ms",
        deviations.last().copied().unwrap_or(f64::NAN)
    );
    p99
}

/// Waits until `tandem` at `control` is master.
fn wait_tandem_master(control: &Path) {
    wait_tandem_query(
        Path::new(TANDEM),
        control,
        &["vrrp", "status"],
        LIMIT,
        |t| t.contains("state MASTER"),
    )
    .unwrap_or_else(|last| panic!("tandem never became master:\n{last}"));
}

/// One request over the control socket, answered in full.
fn ask(control: &Path, request: &[u8]) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(control)?;
    stream.set_read_timeout(Some(LIMIT))?;
    stream.write_all(request)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

/// `tandem run` with stdin, stdout and stderr on a pty whose other end (returned) nobody reads.
fn start_on_pty(ns: &Netns, dir: &Path, phase: Phase, control: &Path) -> (Child, std::fs::File) {
    let (child, pty) = TandemRun {
        tandem: Path::new(TANDEM),
        dir,
        name: phase.name,
        control: Some(control),
    }
    .start_on_pty(ns, &tandem_config(phase))
    .unwrap();
    // Typing must never block the bench: a full input queue just loses the keystrokes.
    nix::fcntl::fcntl(
        &pty,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .unwrap();
    (child, pty)
}

/// One burst of the flood: three control-socket `log` flooders and a typist on the pty.
#[derive(Debug)]
struct Flood {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Flood {
    /// Starts flooding; `served` counts the `log` requests answered.
    fn start(control: &Path, pty: &Arc<std::fs::File>, served: &Arc<AtomicU64>) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads: Vec<JoinHandle<()>> = (0..3)
            .map(|_| {
                let (control, stop, served) =
                    (control.to_path_buf(), Arc::clone(&stop), Arc::clone(served));
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match ask(&control, b"log\n") {
                            Ok(answer) if answer.contains("tandem:") => {
                                served.fetch_add(1, Ordering::Relaxed);
                            }
                            _ => std::thread::sleep(Duration::from_millis(1)),
                        }
                    }
                })
            })
            .collect();
        let (pty, typist_stop) = (Arc::clone(pty), Arc::clone(&stop));
        threads.push(std::thread::spawn(move || {
            while !typist_stop.load(Ordering::Relaxed) {
                // `log` answers 1,024 lines onto the unread console; EAGAIN is expected.
                let _ = (&*pty).write_all(b"log\nstatus\n");
                std::thread::sleep(Duration::from_millis(20));
            }
        }));
        Flood { stop, threads }
    }

    fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().unwrap();
        }
    }
}

/// `output dropped N messages` from tandem's `status`.
fn console_dropped(control: &Path) -> u64 {
    let status = ask(control, b"status\n").unwrap();
    status
        .lines()
        .find(|l| l.starts_with("status: console"))
        .and_then(|line| line.split("output dropped ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no console drop counter in:\n{status}"))
}

fn main() {
    if Netns::new("aprobe").is_err() {
        println!("advert_jitter: cannot create network namespaces (needs root); skipped");
        return;
    }
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let mut segment = HostSegment::new("ajs").unwrap();
    let observer = host(&mut segment, "ajc", Ipv4Addr::new(192, 0, 2, 10));
    let dir = ScratchDir::new("advjit").unwrap();

    // idle: tandem, its console a pipe that is read.
    let idle_ns = host(&mut segment, "aj1", IDLE.address);
    let idle_control: PathBuf = dir.path.join("idle.sock");
    let idle = TandemRun {
        tandem: Path::new(TANDEM),
        dir: &dir.path,
        name: IDLE.name,
        control: Some(&idle_control),
    }
    .start(&idle_ns, &tandem_config(IDLE), "vrrp: running", LIMIT)
    .unwrap();
    // flooded: tandem, its console an unread pty.
    let flooded_ns = host(&mut segment, "aj2", FLOODED.address);
    let flooded_control: PathBuf = dir.path.join("flooded.sock");
    let (mut flooded, pty) = start_on_pty(&flooded_ns, &dir.path, FLOODED, &flooded_control);
    let pty = Arc::new(pty);
    // keepalived.
    let keepalived_ns = host(&mut segment, "aj3", KEEPALIVED.address);
    let mut peer = keepalived(
        &keepalived_ns,
        KEEPALIVED.name,
        &keepalived_config(KEEPALIVED),
        &dir.path,
    )
    .unwrap();
    wait_tandem_master(&idle_control);
    wait_tandem_master(&flooded_control);
    peer.console
        .wait_for("Entering MASTER STATE", LIMIT)
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let stop_capture = Arc::new(AtomicBool::new(false));
    let capturing = capture(&observer, &stop_capture);
    std::thread::sleep(Duration::from_millis(100));
    let served = Arc::new(AtomicU64::new(0));
    let mut windows: [Vec<(i128, i128)>; 3] = Default::default();
    for _ in 0..ROUNDS {
        for (index, phase) in PHASES.iter().enumerate() {
            let flood = (phase.vrid == FLOODED.vrid).then(|| {
                let flood = Flood::start(&flooded_control, &pty, &served);
                std::thread::sleep(FLOOD_LEAD);
                flood
            });
            let start = now_ns();
            std::thread::sleep(WINDOW);
            windows[index].push((start, now_ns()));
            if let Some(flood) = flood {
                flood.stop();
            }
        }
    }
    stop_capture.store(true, Ordering::Relaxed);
    let captured = capturing.join().unwrap().unwrap().unwrap();
    let dropped = console_dropped(&flooded_control);

    // SIGTERM: keepalived stops its VRRP child itself (SIGKILL would orphan it).
    peer.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    let _ = peer.wait(Duration::from_secs(5));
    let _ = flooded.kill();
    let _ = flooded.wait();
    drop(idle);

    if captured.user_stamped > 0 {
        println!(
            "bench: vrrp_advert_jitter_10ms_user_stamped {} adverts",
            captured.user_stamped
        );
    }
    report(IDLE, &captured, &windows[0]);
    let flooded_p99 = report(FLOODED, &captured, &windows[1]);
    println!(
        "bench: vrrp_advert_jitter_10ms_flooded_log_requests {} requests",
        served.load(Ordering::Relaxed)
    );
    println!("bench: vrrp_advert_jitter_10ms_flooded_console_dropped {dropped} messages");
    let keepalived_p99 = report(KEEPALIVED, &captured, &windows[2]);
    println!(
        "bench: vrrp_advert_jitter_10ms_flooded_vs_keepalived_p99 {:.2} x",
        flooded_p99 / keepalived_p99
    );
}
