//! PID 1's console: the console UI on the board's serial tty, behind the login gate.
//!
//! `tandem.console=tui` (the default) puts the UI there; `tandem.console=lines` keeps the
//! line commands (scripts, the lab's console tests), and so does a tty that cannot be opened
//! as a terminal. The UI runs on a thread of its own and asks the daemon through the same
//! channel as the control socket, so a slow screen never delays the event loop. While it
//! runs, kernel messages are quietened (console loglevel 1) and the log goes only to the log
//! ring (the UI's Logs screen), never over the UI.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use crate::console_login::{ConsoleCredential, RESET_FLAG};
use crate::control::ControlRequest;
use crate::logring::Log;
use crate::tui_driver::{self, TuiOptions};

/// The kernel command-line key that picks the console's mode.
pub const MODE_FLAG: &str = "tandem.console";
/// `tandem.console_idle=SECONDS`: the idle logout (default 10 minutes).
pub const IDLE_FLAG: &str = "tandem.console_idle";
/// `tandem.console_glyphs=ascii|utf8|dec`.
pub const GLYPHS_FLAG: &str = "tandem.console_glyphs";

const PRINTK: &str = "/proc/sys/kernel/printk";

/// What the console runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleMode {
    /// The UI on this tty.
    Ui(PathBuf),
    /// Line commands on /dev/console (and why, when the UI was wanted).
    Lines(Option<String>),
}

/// Picks the console's mode from the command line and the board's console tty.
pub fn choose(cmdline: &str, board_tty: Option<&str>) -> ConsoleMode {
    let wanted = crate::init::cmdline_value(cmdline, MODE_FLAG).unwrap_or("tui");
    if wanted == "lines" {
        return ConsoleMode::Lines(None);
    }
    let Some(tty) = board_tty else {
        return ConsoleMode::Lines(Some(
            "no board profile names the console tty: line commands instead of the console UI"
                .into(),
        ));
    };
    let path = Path::new("/dev").join(tty);
    match tui_driver::is_terminal(&path) {
        Ok(()) => ConsoleMode::Ui(path),
        Err(error) => ConsoleMode::Lines(Some(format!(
            "{error}: line commands instead of the console UI"
        ))),
    }
}

/// The UI's options from the command line.
pub fn options(cmdline: &str) -> TuiOptions {
    let mut options = TuiOptions::default();
    if let Some(seconds) =
        crate::init::cmdline_value(cmdline, IDLE_FLAG).and_then(|s| s.parse().ok())
    {
        options.idle_logout = Duration::from_secs(seconds);
    }
    if let Some(glyphs) = crate::init::cmdline_value(cmdline, GLYPHS_FLAG)
        .and_then(tandem_tui::glyphs::GlyphMode::parse)
    {
        options.glyphs = glyphs;
    }
    options
}

/// Starts the UI thread on `tty`. It runs for the life of the box: when the tty hangs up or
/// fails, the UI starts again a second later.
pub fn start(
    tty: PathBuf,
    options: TuiOptions,
    cmdline: &str,
    mut credential: ConsoleCredential,
    control: mpsc::Sender<ControlRequest>,
    log: &Log,
) {
    if crate::init::cmdline_value(cmdline, RESET_FLAG) == Some("1") {
        match credential.reset() {
            Ok(()) => log.line(format!(
                "console: admin password removed ({RESET_FLAG}=1 on the kernel command line): \
                 the console asks for a new one; remove the flag again"
            )),
            Err(error) => log.line(format!(
                "console: {RESET_FLAG}: cannot remove the password: {error}"
            )),
        }
    }
    log.line(format!(
        "console: the console UI runs on {} (log lines go to its Logs screen)",
        tty.display()
    ));
    let ui_log = log.clone();
    let spawned = std::thread::Builder::new()
        .name("console-ui".into())
        .spawn(move || {
            let log = ui_log;
            quieten_kernel(&log);
            crate::console_writer::console().set_muted(true);
            loop {
                let ask = asker(control.clone());
                if let Err(error) = tui_driver::run_on_tty(&tty, options, ask, &mut credential) {
                    log.line(format!(
                        "console: the console UI stopped: {error}; it starts again"
                    ));
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        });
    if let Err(error) = spawned {
        crate::console_writer::console().set_muted(false);
        log.line(format!("console: cannot start the console UI: {error}"));
    }
}

/// Asks the daemon one command line, as the control socket does, and waits for the answer.
fn asker(control: mpsc::Sender<ControlRequest>) -> impl Fn(&str) -> String + Send + 'static {
    move |line: &str| {
        let (reply, answer) = oneshot::channel();
        let request = ControlRequest {
            line: line.to_owned(),
            reply,
        };
        if control.blocking_send(request).is_err() {
            return "the daemon is stopping\n".to_owned();
        }
        answer
            .blocking_recv()
            .unwrap_or_else(|_| "the daemon did not answer\n".to_owned())
    }
}

/// Console loglevel 1: only emergencies reach the tty while the UI draws on it.
fn quieten_kernel(log: &Log) {
    if let Err(error) = std::fs::write(PRINTK, "1") {
        log.line(format!(
            "console: cannot quieten kernel messages ({PRINTK}: {error})"
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_on_request_or_without_a_board_tty() {
        assert_eq!(
            choose("quiet tandem.console=lines", Some("ttyS0")),
            ConsoleMode::Lines(None)
        );
        assert!(matches!(choose("quiet", None), ConsoleMode::Lines(Some(_))));
        let ConsoleMode::Lines(Some(why)) = choose("quiet", Some("no-such-tty-here")) else {
            panic!("a missing tty must fall back to lines");
        };
        assert!(why.contains("no-such-tty-here"), "{why}");
    }

    #[test]
    fn options_come_from_the_command_line() {
        let given = options("tandem.console_idle=30 tandem.console_glyphs=utf8");
        assert_eq!(given.idle_logout, Duration::from_secs(30));
        assert_eq!(given.glyphs, tandem_tui::glyphs::GlyphMode::Utf8);
        assert_eq!(options("").idle_logout, Duration::from_secs(600));
    }
}
