//! The daemon's event loop: signals, console commands, periodic work, probe results.
//!
//! One task owns all state and handles one event at a time, so nothing needs a lock. Blocking
//! work (the peer probe) runs on the blocking pool and comes back as an event.

use std::fs::File;
use std::io::{BufRead, Read, Write};
use std::path::Path;
use std::time::Duration;

use tandem_board::{NicRole, RoleAssignment};
use tandem_southbound::{probe, sysfs};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::console::{self, Command};
use crate::init::{self, PowerAction};
use crate::logring::Log;
use crate::peer_monitor::{PeerEvent, PeerMonitor, PeerState};

/// How the process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// PID 1 of the appliance: owns the box, ends it with poweroff or reboot.
    Appliance,
    /// `tandem run` on a normal host: stops on SIGTERM / SIGINT / `poweroff`.
    Foreground,
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Power(PowerAction),
    Stop,
}

/// Period of the housekeeping tick (watchdog, carrier, peer probe).
const TICK: Duration = Duration::from_secs(1);
/// How long one peer probe waits for an answer.
const PROBE_TIMEOUT: Duration = Duration::from_millis(700);

/// Everything the loop knows.
#[derive(Debug)]
pub struct Daemon {
    pub mode: Mode,
    pub log: Log,
    pub name: String,
    pub board: Option<&'static tandem_board::BoardProfile>,
    pub roles: RoleAssignment,
    /// Seconds from `/init` (or process start) to ready.
    pub ready_seconds: f64,
    peer: PeerMonitor,
    probe_sequence: u16,
    carriers: Vec<(String, Option<bool>)>,
    watchdog: Option<File>,
}

type ProbeResult = std::io::Result<Option<probe::EchoReply>>;

impl Daemon {
    pub fn new(
        mode: Mode,
        log: Log,
        name: String,
        board: Option<&'static tandem_board::BoardProfile>,
        roles: RoleAssignment,
        ready_seconds: f64,
    ) -> Daemon {
        let carriers = roles
            .assigned
            .iter()
            .map(|(_, name)| (name.clone(), None))
            .collect();
        Daemon {
            mode,
            log,
            name,
            board,
            roles,
            ready_seconds,
            peer: PeerMonitor::default(),
            probe_sequence: 0,
            carriers,
            watchdog: None,
        }
    }

    /// Opens and starts petting the board's hardware watchdog, if it has one.
    pub fn arm_watchdog(&mut self) {
        let Some(spec) = self.board.and_then(|b| b.watchdog) else {
            return;
        };
        match std::fs::OpenOptions::new().write(true).open(spec.device) {
            Ok(file) => {
                self.log.line(format!("watchdog: {} armed", spec.device));
                self.watchdog = Some(file);
            }
            Err(error) => self.log.line(format!(
                "warning: watchdog {} not available ({error}); a hung box will not reset itself",
                spec.device
            )),
        }
    }

    /// Runs until a signal or a console command ends it.
    pub async fn run(mut self) -> Exit {
        let mut commands = spawn_console_reader();
        let (Ok(mut terminate), Ok(mut interrupt), Ok(mut child)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::child()),
        ) else {
            self.log
                .line("error: cannot install signal handlers; stopping");
            return Exit::Stop;
        };
        let mut tick = tokio::time::interval(TICK);
        let mut probe: Option<JoinHandle<ProbeResult>> = None;
        let exit = loop {
            tokio::select! {
                _ = terminate.recv() => {
                    self.log.line("SIGTERM: shutting down");
                    break self.end(PowerAction::Poweroff);
                }
                _ = interrupt.recv() => {
                    self.log.line("SIGINT (ctrl-alt-del): shutting down");
                    break self.end(PowerAction::Reboot);
                }
                _ = child.recv() => {
                    let reaped = init::reap_children();
                    if reaped > 0 {
                        self.log.line(format!("reaped {reaped} orphaned process(es)"));
                    }
                }
                line = commands.recv() => {
                    let Some(line) = line else {
                        // Console closed (run mode with stdin at EOF): keep running headless.
                        commands = mpsc::unbounded_channel().1;
                        continue;
                    };
                    if let Some(exit) = self.on_console_line(&line, &mut probe) {
                        break exit;
                    }
                }
                _ = tick.tick() => self.on_tick(&mut probe),
                result = wait_probe(&mut probe) => {
                    probe = None;
                    self.on_probe_result(result);
                }
            }
        };
        if let Some(mut watchdog) = self.watchdog.take() {
            // Magic close: a clean shutdown must not end in a watchdog reset.
            let _ = watchdog.write_all(b"V");
        }
        exit
    }

    fn end(&self, action: PowerAction) -> Exit {
        match self.mode {
            Mode::Appliance => Exit::Power(action),
            Mode::Foreground => Exit::Stop,
        }
    }

    fn on_console_line(
        &mut self,
        line: &str,
        probe: &mut Option<JoinHandle<ProbeResult>>,
    ) -> Option<Exit> {
        match console::parse(line) {
            Ok(Command::Nothing) => None,
            Ok(Command::Help) => {
                println!("{}", console::HELP);
                None
            }
            Ok(Command::Status) => {
                print!("{}", self.status_text());
                let _ = std::io::stdout().flush();
                None
            }
            Ok(Command::Log) => {
                for line in self.log.lines() {
                    println!("{line}");
                }
                None
            }
            Ok(Command::Peer) => {
                if probe.is_none() {
                    *probe = self.start_probe();
                }
                if probe.is_none() {
                    println!("peer: this box has no peer port");
                }
                None
            }
            Ok(Command::Poweroff) => {
                self.log.line("console: poweroff requested");
                Some(self.end(PowerAction::Poweroff))
            }
            Ok(Command::Reboot) => {
                self.log.line("console: reboot requested");
                Some(self.end(PowerAction::Reboot))
            }
            Err(error) => {
                println!("{error}");
                None
            }
        }
    }

    fn on_tick(&mut self, probe: &mut Option<JoinHandle<ProbeResult>>) {
        if let Some(watchdog) = &mut self.watchdog {
            let _ = watchdog.write_all(b"\0");
        }
        let sys_class_net = Path::new("/sys/class/net");
        for (name, last) in &mut self.carriers {
            let now = sysfs::carrier(sys_class_net, name);
            if now != *last {
                let text = match now {
                    Some(true) => "carrier up",
                    Some(false) => "carrier down (cable pulled or partner port off)",
                    None => "link down",
                };
                if last.is_some() || now != Some(true) {
                    self.log.line(format!("link {name}: {text}"));
                }
                *last = now;
            }
        }
        if probe.is_none() {
            *probe = self.start_probe();
        }
    }

    fn start_probe(&mut self) -> Option<JoinHandle<ProbeResult>> {
        let ifname = self.roles.nic_for(NicRole::Peer)?.to_owned();
        let ifindex = sysfs::ifindex(Path::new("/sys/class/net"), &ifname)?;
        self.probe_sequence = self.probe_sequence.wrapping_add(1);
        let sequence = self.probe_sequence;
        let identifier = u16::try_from(std::process::id() & 0xffff).unwrap_or(1);
        Some(tokio::task::spawn_blocking(move || {
            probe::echo_all_nodes(&ifname, ifindex, identifier, sequence, PROBE_TIMEOUT)
        }))
    }

    fn on_probe_result(&mut self, result: ProbeResult) {
        let answer = match result {
            Ok(reply) => reply.map(|r| (r.from, r.rtt)),
            Err(error) => {
                self.log.line(format!("peer: probe failed: {error}"));
                None
            }
        };
        match self.peer.on_probe(answer) {
            Some(PeerEvent::Reachable { from, rtt }) => self.log.line(format!(
                "peer: reachable from {from} (rtt {:.1} ms)",
                rtt.as_secs_f64() * 1e3
            )),
            Some(PeerEvent::Unreachable { misses }) => self.log.line(format!(
                "peer: unreachable ({misses} probes unanswered on the peer port)"
            )),
            None => {}
        }
    }

    /// The status block: one `status:` line per fact, ending with `status: end`.
    pub fn status_text(&self) -> String {
        let mut text = format!(
            "status: name={} board={} ready={:.3}\n",
            self.name,
            self.board.map_or("-", |b| b.name),
            self.ready_seconds
        );
        let sys_class_net = Path::new("/sys/class/net");
        for (role, name) in &self.roles.assigned {
            let state = sysfs::operstate(sys_class_net, name).unwrap_or_else(|| "absent".into());
            let carrier = match sysfs::carrier(sys_class_net, name) {
                Some(true) => "yes",
                Some(false) => "no",
                None => "-",
            };
            text.push_str(&format!(
                "status: nic {role} {name} {state} carrier={carrier}\n"
            ));
        }
        if self.roles.nic_for(NicRole::Peer).is_some() {
            text.push_str(&match self.peer.state() {
                PeerState::Unknown => "status: peer unknown\n".to_owned(),
                PeerState::Reachable { from, rtt } => format!(
                    "status: peer reachable {from} rtt={:.1}ms\n",
                    rtt.as_secs_f64() * 1e3
                ),
                PeerState::Unreachable { misses } => {
                    format!("status: peer unreachable misses={misses}\n")
                }
            });
        } else {
            text.push_str("status: peer none\n");
        }
        text.push_str("status: end\n");
        text
    }
}

async fn wait_probe(probe: &mut Option<JoinHandle<ProbeResult>>) -> ProbeResult {
    match probe {
        Some(handle) => handle
            .await
            .unwrap_or_else(|join| Err(std::io::Error::other(join.to_string()))),
        None => std::future::pending().await,
    }
}

/// Reads console lines on a thread of its own (the console is a blocking tty).
fn spawn_console_reader() -> mpsc::UnboundedReceiver<String> {
    let (sender, receiver) = mpsc::unbounded_channel();
    let spawned = std::thread::Builder::new()
        .name("console".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let mut line = Vec::new();
            let mut locked = stdin.lock();
            loop {
                line.clear();
                // Bound what one line may hold: a stuck key must not eat memory.
                match (&mut locked).take(4096).read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        if sender
                            .send(String::from_utf8_lossy(&line).into_owned())
                            .is_err()
                        {
                            return;
                        }
                    }
                }
            }
        });
    if spawned.is_err() {
        return mpsc::unbounded_channel().1;
    }
    receiver
}
