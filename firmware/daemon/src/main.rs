//! `tandem`: the one binary of the appliance.
//!
//! As PID 1 it boots the box (see [`boot`]) and runs the daemon; run by hand it runs the daemon
//! in the foreground (`tandem run`) or answers `--version`. Everything else lives in libraries;
//! this crate wires them together.

mod boot;
mod config_store;
mod console;
mod control;
mod daemon;
mod engine;
mod engines;
mod init;
mod logring;
mod lvs_engine;
mod netconfig;
mod peer_channel;
mod peer_monitor;
mod realserver_engine;
mod vrrp_engine;

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use daemon::{Daemon, Exit, Mode};
use logring::Log;

/// `tandem <version>`, printed by `--version` and at boot.
pub const VERSION_LINE: &str = concat!("tandem ", env!("CARGO_PKG_VERSION"));

const USAGE: &str = "\
usage: tandem --version
       tandem run [-c FILE] [--name NAME] [--control SOCKET]
                                   run the daemon in the foreground (no init duties)
       tandem config check|show|import|export|encode|decode|diff ...
                                   offline config tools (`tandem config` for help)
       tandem [--control SOCKET] status | log | peer | vrrp status | lvs status |
              realserver status | poweroff | reboot
                                   ask a running daemon (default socket /run/tandem/control.sock)
As PID 1 (the appliance's /init) tandem boots the box and takes no arguments.";

fn main() -> ExitCode {
    let started = Instant::now();
    if std::process::id() == 1 {
        appliance_main(started);
    }
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.first().is_some_and(|first| first == "config") {
        let rest: Vec<String> = args
            .iter()
            .skip(1)
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let code = tandem_config::cli::run(&rest, &mut std::io::stdout(), &mut std::io::stderr());
        return ExitCode::from(u8::try_from(code).unwrap_or(2));
    }
    match parse_args(args) {
        Ok(Invocation::Version) => {
            println!("{VERSION_LINE}");
            ExitCode::SUCCESS
        }
        Ok(Invocation::Help) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Invocation::Run {
            config,
            name,
            control: socket,
        }) => foreground_main(started, config, name, socket),
        Ok(Invocation::Control {
            line,
            control: socket,
        }) => match control::request(&socket, &line) {
            Ok(answer) => {
                print!("{answer}");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("tandem: {message}");
                ExitCode::from(1)
            }
        },
        Err(message) => {
            eprintln!("tandem: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Invocation {
    Version,
    Help,
    Run {
        config: Option<PathBuf>,
        name: Option<String>,
        control: PathBuf,
    },
    /// A command for a running daemon, sent over its control socket.
    Control {
        line: String,
        control: PathBuf,
    },
}

fn parse_args(args: Vec<OsString>) -> Result<Invocation, String> {
    use lexopt::prelude::*;
    let text = |value: OsString| value.string().map_err(|e| e.to_string());
    let mut parser = lexopt::Parser::from_args(args);
    let mut control = PathBuf::from(control::APPLIANCE_SOCKET);
    let mut words: Vec<String> = Vec::new();
    let (mut config, mut name) = (None, None);
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("version") | Short('V') if words.is_empty() => return Ok(Invocation::Version),
            Long("help") | Short('h') => return Ok(Invocation::Help),
            Long("control") => control = PathBuf::from(parser.value().map_err(|e| e.to_string())?),
            Short('c') | Long("config") if words.first().is_some_and(|w| w == "run") => {
                config = Some(PathBuf::from(parser.value().map_err(|e| e.to_string())?));
            }
            Long("name") if words.first().is_some_and(|w| w == "run") => {
                name = Some(text(parser.value().map_err(|e| e.to_string())?)?);
            }
            Value(word) => words.push(text(word)?),
            other => return Err(other.unexpected().to_string()),
        }
    }
    match words.first().map(String::as_str) {
        None => Err("missing command".into()),
        Some("run") if words.len() == 1 => Ok(Invocation::Run {
            config,
            name,
            control,
        }),
        Some("run") => Err(format!("unexpected argument `{}` after run", words[1])),
        Some(_) => {
            let line = words.join(" ");
            match console::parse(&line) {
                Ok(console::Command::Nothing) | Err(_) => Err(format!("unknown command `{line}`")),
                Ok(_) => Ok(Invocation::Control { line, control }),
            }
        }
    }
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()
}

/// PID 1: boot, run, then power off or reboot. Never returns.
fn appliance_main(started: Instant) -> ! {
    let log = Log::default();
    let action = match runtime() {
        Ok(runtime) => runtime.block_on(async {
            let outcome = boot::boot_appliance(&log).await;
            let outcome_config_device = outcome.board.and_then(|b| b.config_device);
            let ready = started.elapsed().as_secs_f64();
            log.line(format!(
                "ready {ready:.3} s after /init (kernel up {:.3} s) name={} board={} nics={}",
                logring::boot_seconds(),
                outcome.name,
                outcome.board.map_or("unknown", |b| b.name),
                outcome.roles.assigned.len()
            ));
            let mut daemon = Daemon::new(
                Mode::Appliance,
                log.clone(),
                outcome.name,
                outcome.board,
                outcome.roles,
                ready,
            );
            daemon.arm_watchdog();
            let config = outcome_config_device
                .and_then(|device| config_store::load_from_disk(Path::new(device), &log));
            if let Some(config) = &config {
                for engine in start_engines(config, &log).await {
                    daemon.add_engine(engine);
                }
            }
            let (control_tx, control_rx) = tokio::sync::mpsc::channel(16);
            let server = match control::listen(Path::new(control::APPLIANCE_SOCKET), control_tx) {
                Ok(server) => Some(server),
                Err(error) => {
                    log.line(format!("warning: no control socket: {error}"));
                    None
                }
            };
            let exit = daemon.run(control_rx).await;
            if let Some(server) = server {
                server.drain().await;
            }
            match exit {
                Exit::Power(action) => action,
                Exit::Stop => init::PowerAction::Poweroff,
            }
        }),
        Err(error) => {
            log.line(format!(
                "error: cannot start the event loop: {error}; powering off"
            ));
            init::PowerAction::Poweroff
        }
    };
    log.line(match action {
        init::PowerAction::Poweroff => "powering off",
        init::PowerAction::Reboot => "rebooting",
    });
    let errno = init::power(action);
    log.line(format!(
        "error: reboot(2) refused: {errno}; waiting for the watchdog"
    ));
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// Applies `config` and starts its engines (logging, not failing, when netlink is unavailable).
async fn start_engines(config: &tandem_config::Config, log: &Log) -> Vec<engine::EngineHandle> {
    match tandem_southbound::net::NetExecutor::connect() {
        Ok(net) => {
            let context = engines::EngineContext {
                log: log.clone(),
                net,
            };
            engines::bring_up(config, &context).await
        }
        Err(error) => {
            log.line(format!("error: {error}; the config is not applied"));
            Vec::new()
        }
    }
}

/// `tandem run`: the daemon in the foreground of a normal host, without init duties.
fn foreground_main(
    started: Instant,
    config: Option<PathBuf>,
    name: Option<String>,
    control_path: PathBuf,
) -> ExitCode {
    let log = Log::default();
    let config = match config.as_deref().map(tandem_config::load_path).transpose() {
        Ok(loaded) => loaded.map(|(config, warnings)| {
            for warning in warnings {
                eprintln!("tandem: {warning}");
            }
            config
        }),
        Err(error) => {
            eprintln!("tandem: {error}");
            return ExitCode::from(1);
        }
    };
    let hostname = config
        .as_ref()
        .map(|c| c.system.hostname.as_str().to_owned());
    let name = name
        .or(hostname.filter(|h| !h.is_empty()))
        .unwrap_or_else(|| {
            nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "tandem".into())
        });
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("tandem: cannot start the event loop: {error}");
            return ExitCode::from(1);
        }
    };
    if control::request(&control_path, "help").is_ok() {
        eprintln!(
            "tandem: another daemon answers on {}; give this one its own --control SOCKET",
            control_path.display()
        );
        return ExitCode::from(1);
    }
    runtime.block_on(async {
        let (control_tx, control_rx) = tokio::sync::mpsc::channel(16);
        let server = match control::listen(&control_path, control_tx) {
            Ok(server) => server,
            Err(error) => {
                eprintln!(
                    "tandem: cannot listen on {}: {error}",
                    control_path.display()
                );
                return ExitCode::from(1);
            }
        };
        let ready = started.elapsed().as_secs_f64();
        log.line(format!(
            "{VERSION_LINE} ready {ready:.3} s after start name={name} (foreground)"
        ));
        let mut daemon = Daemon::new(
            Mode::Foreground,
            log.clone(),
            name,
            None,
            tandem_board::RoleAssignment::default(),
            ready,
        );
        if let Some(config) = &config {
            for engine in start_engines(config, &log).await {
                daemon.add_engine(engine);
            }
        }
        daemon.run(control_rx).await;
        server.drain().await;
        let _ = std::fs::remove_file(&control_path);
        log.line("stopped");
        ExitCode::SUCCESS
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn command_line() {
        let default = PathBuf::from(control::APPLIANCE_SOCKET);
        assert_eq!(parse_args(args(&["--version"])), Ok(Invocation::Version));
        assert_eq!(
            parse_args(args(&[
                "run",
                "-c",
                "/x.toml",
                "--name",
                "rs1",
                "--control",
                "/s"
            ])),
            Ok(Invocation::Run {
                config: Some("/x.toml".into()),
                name: Some("rs1".into()),
                control: "/s".into()
            })
        );
        assert_eq!(
            parse_args(args(&["run"])),
            Ok(Invocation::Run {
                config: None,
                name: None,
                control: default.clone()
            })
        );
        assert_eq!(
            parse_args(args(&["vrrp", "status"])),
            Ok(Invocation::Control {
                line: "vrrp status".into(),
                control: default
            })
        );
        assert_eq!(
            parse_args(args(&["--control", "/x.sock", "status"])),
            Ok(Invocation::Control {
                line: "status".into(),
                control: "/x.sock".into()
            })
        );
        assert!(parse_args(args(&["frobnicate"]))
            .unwrap_err()
            .contains("frobnicate"));
        assert!(parse_args(args(&["status", "-c", "x"])).is_err());
        assert!(parse_args(args(&["run", "--bogus"])).is_err());
        assert!(parse_args(args(&["run", "extra"])).is_err());
        assert!(parse_args(args(&[])).is_err());
    }
}
