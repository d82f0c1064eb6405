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
use crate::control::ControlRequest;
use crate::engine::EngineHandle;
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
    engines: Vec<EngineHandle>,
}

/// Where a command's answer goes.
#[derive(Debug)]
enum Reply {
    Console,
    Control(tokio::sync::oneshot::Sender<String>),
}

impl Reply {
    fn send(self, text: String) {
        match self {
            Reply::Console => {
                let mut stdout = std::io::stdout().lock();
                let _ = stdout.write_all(text.as_bytes());
                let _ = stdout.flush();
            }
            Reply::Control(sender) => {
                let _ = sender.send(text);
            }
        }
    }
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
            engines: Vec::new(),
        }
    }

    /// Adds a running role engine (addressed on the console by its name).
    pub fn add_engine(&mut self, engine: EngineHandle) {
        self.engines.push(engine);
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

    /// Runs until a signal or a command (console or control socket) ends it.
    pub async fn run(mut self, control: mpsc::Receiver<ControlRequest>) -> Exit {
        let mut commands = Some(spawn_console_reader());
        let mut control = Some(control);
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
                line = recv_or_pending(&mut commands) => {
                    let Some(line) = line else {
                        // Console closed (run mode with stdin at EOF): keep running headless.
                        commands = None;
                        continue;
                    };
                    if let Some(exit) = self.on_command(&line, Reply::Console, &mut probe) {
                        break exit;
                    }
                }
                request = recv_or_pending(&mut control) => {
                    let Some(request) = request else {
                        control = None;
                        continue;
                    };
                    let reply = Reply::Control(request.reply);
                    if let Some(exit) = self.on_command(&request.line, reply, &mut probe) {
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
        for engine in &self.engines {
            if !engine.shutdown().await {
                self.log
                    .line(format!("{}: did not stop cleanly", engine.name));
            }
        }
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

    fn on_command(
        &mut self,
        line: &str,
        reply: Reply,
        probe: &mut Option<JoinHandle<ProbeResult>>,
    ) -> Option<Exit> {
        let (text, exit) = match console::parse(line) {
            Ok(Command::Nothing) => (String::new(), None),
            Ok(Command::Help) => (format!("{}\n", console::HELP), None),
            Ok(Command::Status) => (self.status_text(), None),
            Ok(Command::Log) => {
                let mut text = self.log.lines().join("\n");
                text.push('\n');
                (text, None)
            }
            Ok(Command::Peer) => {
                if probe.is_none() {
                    *probe = self.start_probe();
                }
                let text = if probe.is_some() {
                    "peer: probing; the result is logged\n"
                } else {
                    "peer: this box has no peer port\n"
                };
                (text.to_owned(), None)
            }
            Ok(Command::EngineStatus(name)) => {
                match self.engines.iter().find(|engine| engine.name == name) {
                    Some(engine) => {
                        let engine = engine.clone();
                        tokio::spawn(async move { reply.send(engine.status().await) });
                        return None;
                    }
                    None => (format!("{name}: not configured on this box\n"), None),
                }
            }
            Ok(Command::Poweroff) => {
                self.log.line("poweroff requested");
                (
                    "powering off\n".to_owned(),
                    Some(self.end(PowerAction::Poweroff)),
                )
            }
            Ok(Command::Reboot) => {
                self.log.line("reboot requested");
                (
                    "rebooting\n".to_owned(),
                    Some(self.end(PowerAction::Reboot)),
                )
            }
            Err(error) => (format!("{error}\n"), None),
        };
        reply.send(text);
        exit
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
                for engine in &self.engines {
                    engine.track(name, now == Some(true));
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
            // Admin state from the IFF_UP flag: operstate lags behind it by the kernel's
            // linkwatch delay, which under emulation can be seconds.
            let state = match sysfs::admin_up(sys_class_net, name) {
                Some(true) => "up",
                Some(false) => "down",
                None => "absent",
            };
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

/// Receives from a channel; a closed channel (`None`) waits forever instead of spinning.
async fn recv_or_pending<R: Receive>(channel: &mut Option<R>) -> Option<R::Item> {
    match channel {
        Some(receiver) => receiver.receive().await,
        None => std::future::pending().await,
    }
}

/// The two kinds of tokio receiver the loop reads.
trait Receive {
    type Item;
    async fn receive(&mut self) -> Option<Self::Item>;
}

impl<T> Receive for mpsc::Receiver<T> {
    type Item = T;
    async fn receive(&mut self) -> Option<T> {
        self.recv().await
    }
}

impl<T> Receive for mpsc::UnboundedReceiver<T> {
    type Item = T;
    async fn receive(&mut self) -> Option<T> {
        self.recv().await
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
    // Without the reader thread the receiver reports closed at once; the loop then runs
    // headless rather than spinning.
    let _ = spawned;
    receiver
}
