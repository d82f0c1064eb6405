//! `tandem`: the one binary of the appliance.
//!
//! As PID 1 it boots the box (see [`boot`]) and runs the daemon; run by hand it runs the daemon
//! in the foreground (`tandem run`) or answers `--version`. Everything else lives in libraries;
//! this crate wires them together.

mod bonds;
mod boot;
mod config_format;
mod config_store;
mod console;
mod console_login;
mod console_reader;
mod console_ui;
mod console_writer;
mod control;
mod daemon;
mod engine;
mod firmware_slot;
mod firmware_upgrade;
mod init;
mod logring;
mod lvs_engine;
mod metrics;
mod netconfig;
mod pair_board;
mod pair_service;
mod pair_upgrade;
mod panic_hook;
mod peer_channel;
mod peer_monitor;
mod ports;
mod realserver_engine;
mod sharing_board;
mod sharing_engine;
mod sntp;
mod syslog;
mod tui_driver;
mod vrrp_engine;
mod wallclock;

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
       tandem run [-c FILE] [--state DIR] [--name NAME] [--control SOCKET]
                                   run the daemon in the foreground (no init duties); with
                                   --state DIR commits survive a restart (-c FILE only seeds
                                   an empty DIR)
       tandem config check|show|import|export|encode|decode|diff ...
                                   offline config tools (`tandem config` for help)
       tandem [--control SOCKET] status | log | peer | vrrp status | lvs status |
              realserver status | poweroff | reboot | ping ADDRESS [COUNT] | neighbours |
              ports | ports assign ROLE PORT [ROLE PORT ...] | ports reset
       tandem [--control SOCKET] show running | show candidate | load FILE |
              set PATH VALUE | delete PATH | discard | compare | preview |
              commit [--confirm SECONDS] [--comment TEXT] | confirm |
              rollback [GENERATION] | history | browse [PATH]
                                   ask a running daemon (default socket /run/tandem/control.sock)
       tandem [--control SOCKET] tui [--glyphs ascii|utf8|dec] [--size COLSxROWS | --probe-size]
                                   the console UI against a running daemon, on this terminal
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
            state,
            name,
            control: socket,
        }) => foreground_main(started, config, state, name, socket),
        Ok(Invocation::Tui {
            options,
            control: socket,
        }) => {
            let ask = move |line: &str| {
                control::request(&socket, line).unwrap_or_else(|error| format!("{error}\n"))
            };
            match tui_driver::run_on_stdio(options, ask) {
                Ok(()) => ExitCode::SUCCESS,
                Err(message) => {
                    eprintln!("tandem: {message}");
                    ExitCode::from(1)
                }
            }
        }
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
        state: Option<PathBuf>,
        name: Option<String>,
        control: PathBuf,
    },
    /// The console UI against a running daemon, on this terminal.
    Tui {
        options: tui_driver::TuiOptions,
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
    let (mut config, mut name, mut state) = (None, None, None);
    let mut tui = tui_driver::TuiOptions::default();
    while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
        match arg {
            Long("version") | Short('V') if words.is_empty() => return Ok(Invocation::Version),
            Long("help") | Short('h') => return Ok(Invocation::Help),
            Long("control") => control = PathBuf::from(parser.value().map_err(|e| e.to_string())?),
            Short('c') | Long("config") if words.first().is_some_and(|w| w == "run") => {
                config = Some(PathBuf::from(parser.value().map_err(|e| e.to_string())?));
            }
            Long("state") if words.first().is_some_and(|w| w == "run") => {
                state = Some(PathBuf::from(parser.value().map_err(|e| e.to_string())?));
            }
            Long("name") if words.first().is_some_and(|w| w == "run") => {
                name = Some(text(parser.value().map_err(|e| e.to_string())?)?);
            }
            Long("glyphs") if words.first().is_some_and(|w| w == "tui") => {
                let value = text(parser.value().map_err(|e| e.to_string())?)?;
                tui.glyphs = tandem_tui::glyphs::GlyphMode::parse(&value)
                    .ok_or_else(|| format!("--glyphs {value}: use ascii, utf8 or dec"))?;
            }
            Long("size") if words.first().is_some_and(|w| w == "tui") => {
                let value = text(parser.value().map_err(|e| e.to_string())?)?;
                tui.size = parse_size(&value)?;
            }
            Long("probe-size") if words.first().is_some_and(|w| w == "tui") => {
                tui.probe_size = true;
            }
            Value(word) => {
                words.push(text(word)?);
                // After a daemon command's word the rest goes as typed: a value may start with
                // `-` (`set vrrp.vi_1.track_checks.web.weight -30`), and options belong to the
                // command (`commit --confirm 5`). Only `--control PATH` is still ours.
                if words.len() == 1 && words[0] != "run" && words[0] != "tui" {
                    let mut rest = parser.raw_args().map_err(|e| e.to_string())?;
                    while let Some(arg) = rest.next() {
                        if arg == "--control" {
                            let path = rest
                                .next()
                                .ok_or_else(|| String::from("--control needs a socket path"))?;
                            control = PathBuf::from(path);
                        } else {
                            words.push(text(arg)?);
                        }
                    }
                }
            }
            // After the command word, options belong to it (`commit --confirm 5`).
            Long(option) if !words.is_empty() && words[0] != "run" => {
                words.push(format!("--{option}"));
            }
            other => return Err(other.unexpected().to_string()),
        }
    }
    match words.first().map(String::as_str) {
        None => Err("missing command".into()),
        Some("run") if words.len() == 1 => Ok(Invocation::Run {
            config,
            state,
            name,
            control,
        }),
        Some("run") => Err(format!("unexpected argument `{}` after run", words[1])),
        Some("tui") if words.len() == 1 => Ok(Invocation::Tui {
            options: tui,
            control,
        }),
        Some("tui") => Err(format!("unexpected argument `{}` after tui", words[1])),
        Some(_) => {
            // The daemon resolves paths from its own directory: send `load`'s file absolute.
            if words.len() == 2 && words[0].eq_ignore_ascii_case("load") {
                if let Ok(absolute) = std::path::absolute(&words[1]) {
                    words[1] = absolute.display().to_string();
                }
            }
            // `set PATH VALUE`: the value goes raw (a TOML array keeps its quotes; the daemon
            // takes the rest of the line as the value, so it needs no quoting of its own).
            let line = match words.as_slice() {
                [set, path, value @ ..] if set.eq_ignore_ascii_case("set") && !value.is_empty() => {
                    format!("set {path} {}", value.join(" "))
                }
                _ => console::join_words(&words),
            };
            match console::parse(&line) {
                Ok(console::Command::Nothing) => Err("missing command".into()),
                Err(error) => Err(error.0),
                Ok(_) => Ok(Invocation::Control { line, control }),
            }
        }
    }
}

/// `--size 80x24`: columns by rows, within what a console UI can use.
fn parse_size(text: &str) -> Result<tandem_tui::ratatui_core::layout::Size, String> {
    let wrong = || format!("--size {text}: use COLSxROWS from 40x12 to 255x255, e.g. 80x24");
    let (cols, rows) = text.split_once(['x', 'X']).ok_or_else(wrong)?;
    let cols: u16 = cols.parse().map_err(|_| wrong())?;
    let rows: u16 = rows.parse().map_err(|_| wrong())?;
    if !(40..=255).contains(&cols) || !(12..=255).contains(&rows) {
        return Err(wrong());
    }
    Ok(tandem_tui::ratatui_core::layout::Size::new(cols, rows))
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
    panic_hook::install(log.clone(), true);
    let action = match runtime() {
        Ok(runtime) => runtime.block_on(async {
            let outcome = boot::boot_appliance(&log).await;
            let location = config_store::find_config_location(
                outcome.board.and_then(|b| b.config_device),
                Path::new("/sys/class/block"),
                Path::new("/dev"),
            );
            let outcome_config_device = location.device.as_deref();
            let ready = started.elapsed().as_secs_f64();
            log.line(format!(
                "ready {ready:.3} s after /init (kernel up {:.3} s) name={} board={} nics={}",
                logring::boot_seconds(),
                outcome.name,
                outcome.board.map_or("unknown", |b| b.name),
                outcome.roles.assigned.len()
            ));
            log.line(location.note.clone());
            let device = config_store::appliance_device(outcome_config_device, &log);
            let transactions = config_store::open(device, None, &log);
            let identity = config_store::identity_store(outcome_config_device, None, &log);
            let links = link_watch(&log);
            let mut daemon = Daemon::new(
                Mode::Appliance,
                log.clone(),
                outcome,
                ready,
                transactions,
                engine_context(&log, links.clone()),
            );
            if let Some(links) = links {
                daemon.follow_links(links);
            }
            daemon.open_identity(identity);
            let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
            daemon.set_firmware(firmware_slot::Firmware::open(&cmdline, &log));
            if init::cmdline_value(&cmdline, "tandem.debug") == Some("1") {
                daemon.enable_debug_commands();
            }
            daemon.arm_watchdog();
            daemon.bring_up().await;
            daemon.start_pair_service();
            daemon.start_metrics(started);
            daemon.start_syslog_and_time();
            let (control_tx, control_rx) = tokio::sync::mpsc::channel(16);
            let console_tty = daemon.board.map(|b| b.console.tty);
            match console_ui::choose(&cmdline, console_tty) {
                console_ui::ConsoleMode::Ui(tty) => {
                    let store = config_store::identity_store(outcome_config_device, None, &log);
                    let credential = console_login::ConsoleCredential::new(store, log.clone());
                    daemon.leave_the_console_to_the_ui();
                    console_ui::start(
                        tty,
                        console_ui::options(&cmdline),
                        &cmdline,
                        credential,
                        control_tx.clone(),
                        &log,
                    );
                }
                console_ui::ConsoleMode::Lines(Some(why)) => log.line(format!("console: {why}")),
                console_ui::ConsoleMode::Lines(None) => {}
            }
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
    console_writer::console().drain(std::time::Duration::from_secs(1));
    let errno = init::power(action);
    log.line(format!(
        "error: reboot(2) refused: {errno}; waiting for the watchdog"
    ));
    loop {
        std::thread::sleep(std::time::Duration::from_secs(3600));
    }
}

/// Link changes from rtnetlink notifications, one source for the daemon and every engine
/// (logged fallback: carriers are polled).
fn link_watch(log: &Log) -> Option<tandem_southbound::link_monitor::LinkWatch> {
    match tandem_southbound::link_monitor::spawn() {
        Ok(links) => Some(links),
        Err(error) => {
            log.line(format!(
                "warning: no link notifications ({error}); carriers are polled instead"
            ));
            None
        }
    }
}

/// Netlink and the log for the engines (None, logged, when netlink is unavailable).
fn engine_context(
    log: &Log,
    links: Option<tandem_southbound::link_monitor::LinkWatch>,
) -> Option<engine::EngineContext> {
    match tandem_southbound::net::NetExecutor::connect() {
        Ok(net) => Some(engine::EngineContext {
            log: log.clone(),
            net,
            peer: peer_channel::PeerSlot::default(),
            links,
            pair: pair_board::PairBoard::default(),
            sharing: sharing_board::SharingBoard::default(),
        }),
        Err(error) => {
            log.line(format!("error: {error}; no config can be applied"));
            None
        }
    }
}

/// `tandem run`: the daemon in the foreground of a normal host, without init duties.
fn foreground_main(
    started: Instant,
    config: Option<PathBuf>,
    state: Option<PathBuf>,
    name: Option<String>,
    control_path: PathBuf,
) -> ExitCode {
    let log = Log::default();
    panic_hook::install(log.clone(), false);
    let device = match state
        .as_deref()
        .map(config_store::state_dir_device)
        .transpose()
    {
        Ok(device) => device,
        Err(error) => {
            eprintln!(
                "tandem: cannot use --state {}: {error}",
                state.as_deref().unwrap_or(Path::new("")).display()
            );
            return ExitCode::from(1);
        }
    };
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
        let device = device.unwrap_or_else(|| {
            log.line("config: no --state DIR: commits last until this daemon stops");
            config_store::AnyDevice::memory()
        });
        let transactions = config_store::open(device, config, &log);
        let identity_store = config_store::identity_store(None, state.as_deref(), &log);
        let links = link_watch(&log);
        let identity = boot::BootOutcome {
            name,
            board: None,
            roles: tandem_board::RoleAssignment::default(),
        };
        let mut daemon = Daemon::new(
            Mode::Foreground,
            log.clone(),
            identity,
            ready,
            transactions,
            engine_context(&log, links.clone()),
        );
        if let Some(links) = links {
            daemon.follow_links(links);
        }
        daemon.open_identity(identity_store);
        if std::env::var_os("TANDEM_DEBUG_COMMANDS").is_some_and(|v| v == "1") {
            daemon.enable_debug_commands();
        }
        if let Ok(value) = std::env::var(firmware_slot::SIMULATED_TRIAL_ENV) {
            let key = firmware_slot::BLESS_AFTER_KEY;
            let (after, note) = firmware_slot::BlessAfter::from_cmdline(&format!("{key}={value}"));
            if let Some(note) = note {
                log.line(note);
            }
            daemon.set_firmware(firmware_slot::Firmware::simulated_trial(after));
        }
        daemon.bring_up().await;
        daemon.start_pair_service();
        daemon.start_metrics(started);
        daemon.start_syslog_and_time();
        daemon.run(control_rx).await;
        server.drain().await;
        let _ = std::fs::remove_file(&control_path);
        log.line("stopped");
        console_writer::console().drain(std::time::Duration::from_secs(2));
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
                state: None,
                name: Some("rs1".into()),
                control: "/s".into()
            })
        );
        assert_eq!(
            parse_args(args(&["run"])),
            Ok(Invocation::Run {
                config: None,
                state: None,
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
        assert_eq!(
            parse_args(args(&["commit", "--confirm", "5", "--comment", "new vip"])),
            Ok(Invocation::Control {
                line: "commit --confirm 5 --comment \"new vip\"".into(),
                control: PathBuf::from(control::APPLIANCE_SOCKET)
            })
        );
        assert_eq!(
            parse_args(args(&[
                "set",
                "vrrp.web.vips",
                "[{ address = \"192.0.2.9\" }]"
            ])),
            Ok(Invocation::Control {
                line: "set vrrp.web.vips [{ address = \"192.0.2.9\" }]".into(),
                control: PathBuf::from(control::APPLIANCE_SOCKET)
            })
        );
        assert_eq!(
            parse_args(args(&["run", "--state", "/var/lib/tandem"])),
            Ok(Invocation::Run {
                config: None,
                state: Some("/var/lib/tandem".into()),
                name: None,
                control: PathBuf::from(control::APPLIANCE_SOCKET)
            })
        );
        // A value starting with `-` is a value, not an option.
        assert_eq!(
            parse_args(args(&["set", "vrrp.web.priority", "-30"])),
            Ok(Invocation::Control {
                line: "set vrrp.web.priority -30".into(),
                control: PathBuf::from(control::APPLIANCE_SOCKET)
            })
        );
        assert_eq!(
            parse_args(args(&["status", "--control", "/y.sock"])),
            Ok(Invocation::Control {
                line: "status".into(),
                control: "/y.sock".into()
            })
        );
        assert!(parse_args(args(&["run", "--bogus"])).is_err());
        assert!(parse_args(args(&["run", "extra"])).is_err());
        assert!(parse_args(args(&[])).is_err());
    }
}
