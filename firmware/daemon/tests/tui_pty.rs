//! `tandem tui` in a pty against `tandem run`: the console UI as an operator meets it, keys
//! typed into a real terminal (raw mode, the UI's own key decoder) and the frames it writes
//! parsed by a VT100 emulator, talking to a daemon over its control socket.
//!
//! - The menu comes up with the box's name in the title bar; `1` shows the dashboard (the
//!   daemon's status), `m` is the menu again.
//! - An edit and a commit through the UI: System, `system`, Enter on `hostname`, a new value,
//!   the message line says it was set; Commit, `c`, Enter (no comment): the daemon runs it.
//! - A refused value stays in the prompt with the daemon's reason; Ctrl-C cancels the prompt and
//!   the UI goes on.
//! - Logout exits with status 0 and leaves the terminal as it found it (cursor shown).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::fs::File;
use std::io::{Read, Write};
use std::num::NonZeroU16;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, FcntlArg, FdFlag};
use tandem_lab::host::{
    tandem_query, wait_tandem_query, HostProcess, HostSegment, ScratchDir, TandemRun,
};
use tandem_lab::netns::Netns;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
/// Generous: a busy 2-core machine runs these next to other tests.
const LIMIT: Duration = Duration::from_secs(20);
/// The UI draws 80 x 24 unless told otherwise (it does not ask the terminal).
const ROWS: u16 = 24;
const COLS: u16 = 80;
/// The message (or prompt) line: the second-to-last row.
const MESSAGE_ROW: usize = ROWS as usize - 2;
/// An open prompt takes the last row (the help line's).
const PROMPT_ROW: usize = ROWS as usize - 1;

const CONFIG: &str = "[system]\nhostname = \"box-a\"\n\n\
[[interfaces]]\nname = \"eth0\"\naddresses = [\"192.0.2.2/24\"]\n\n\
[[vrrp]]\nname = \"web\"\nvrid = 51\ninterface = \"eth0\"\npriority = 150\n\n\
[[vrrp.vips]]\naddress = \"192.0.2.100\"\nprefix = 24\n";

/// `tandem run` named `box-a` in its own namespace, with one interface on a segment and its
/// control socket in a scratch directory. Dropped: the daemon is killed, then the namespaces
/// are deleted and the directory removed (fields drop in this order).
struct Daemon {
    _process: HostProcess,
    _segment: HostSegment,
    _netns: Netns,
    control: PathBuf,
    _dir: ScratchDir,
}

impl Daemon {
    fn start(tag: &str) -> Daemon {
        let mut segment = HostSegment::new(&format!("{tag}-sg")).unwrap();
        let netns = Netns::new(&format!("{tag}-a")).unwrap();
        segment.attach(&netns, "eth0").unwrap();
        let dir = ScratchDir::new(tag).unwrap();
        let control = dir.path.join("box-a.sock");
        let process = TandemRun {
            tandem: Path::new(TANDEM),
            dir: &dir.path,
            name: "box-a",
            control: Some(&control),
        }
        .start(&netns, CONFIG, "config: applied", LIMIT)
        .unwrap();
        Daemon {
            _process: process,
            _segment: segment,
            _netns: netns,
            control,
            _dir: dir,
        }
    }

    fn ask(&self, words: &[&str]) -> String {
        tandem_query(Path::new(TANDEM), &self.control, words)
    }
}

/// What the terminal received: every byte, and the screen they drew.
struct Seen {
    parser: vt100::Parser,
    bytes: Vec<u8>,
}

/// `tandem --control SOCKET tui` on a pty; killed when dropped (unless it has exited).
struct Tui {
    child: Child,
    /// The pty's master end: what is written here is typed on the UI's terminal.
    keyboard: File,
    seen: Arc<Mutex<Seen>>,
}

impl Tui {
    fn start(control: &Path) -> Tui {
        let pty = nix::pty::openpty(None, None).unwrap();
        // Neither end may leak into processes other tests start meanwhile (a daemon holding
        // the slave open would keep this terminal alive after the UI exits).
        for fd in [&pty.master, &pty.slave] {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).unwrap();
        }
        let slave = File::from(pty.slave);
        let mut command = Command::new(TANDEM);
        command
            .arg("--control")
            .arg(control)
            .arg("tui")
            .stdin(slave.try_clone().unwrap())
            .stdout(slave.try_clone().unwrap())
            .stderr(slave);
        let child = command.spawn().unwrap();
        // Only the child holds the slave now: its exit hangs the terminal up (EIO below).
        drop(command);
        let keyboard = File::from(pty.master);
        let mut screen_end = keyboard.try_clone().unwrap();
        let seen = Arc::new(Mutex::new(Seen {
            parser: vt100::Parser::new(
                NonZeroU16::new(ROWS).unwrap(),
                NonZeroU16::new(COLS).unwrap(),
                0,
            ),
            bytes: Vec::new(),
        }));
        let shared = Arc::clone(&seen);
        std::thread::Builder::new()
            .name("tui-screen".into())
            .spawn(move || {
                let mut buffer = [0u8; 4096];
                loop {
                    match screen_end.read(&mut buffer) {
                        Ok(0) => return,
                        Ok(n) => {
                            let mut seen = shared.lock().unwrap();
                            seen.parser.process(&buffer[..n]);
                            seen.bytes.extend_from_slice(&buffer[..n]);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => return,
                    }
                }
            })
            .unwrap();
        Tui {
            child,
            keyboard,
            seen,
        }
    }

    /// The screen's rows as text.
    fn rows(&self) -> Vec<String> {
        let seen = self.seen.lock().unwrap();
        seen.parser.screen().rows(0, COLS).collect()
    }

    fn dump(rows: &[String]) -> String {
        rows.iter()
            .enumerate()
            .map(|(at, row)| format!("{at:2}|{row}\n"))
            .collect()
    }

    /// Polls the screen until `check` holds on its rows (returned); fails with the screen.
    fn wait_until(&self, what: &str, check: impl Fn(&[String]) -> bool) -> Vec<String> {
        let deadline = Instant::now() + LIMIT;
        loop {
            let rows = self.rows();
            if check(&rows) {
                return rows;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the screen never showed {what} within {LIMIT:?}; it shows:\n{}",
                    Tui::dump(&rows)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the screen contains `text` (on one row).
    fn wait_screen(&self, text: &str) -> Vec<String> {
        self.wait_until(&format!("{text:?}"), |rows| {
            rows.iter().any(|row| row.contains(text))
        })
    }

    /// Waits until the message line contains `text`.
    fn wait_message(&self, text: &str) -> String {
        let rows = self.wait_until(&format!("{text:?} on the message line"), |rows| {
            rows[MESSAGE_ROW].contains(text)
        });
        rows[MESSAGE_ROW].clone()
    }

    /// Waits until the prompt line (the last row) contains `text`.
    fn wait_prompt(&self, text: &str) -> String {
        let rows = self.wait_until(&format!("{text:?} on the prompt line"), |rows| {
            rows[PROMPT_ROW].contains(text)
        });
        rows[PROMPT_ROW].clone()
    }

    /// Types `keys` on the terminal.
    fn press(&mut self, keys: &str) {
        self.keyboard.write_all(keys.as_bytes()).unwrap();
        self.keyboard.flush().unwrap();
    }

    /// How many bytes the terminal has received so far.
    fn received(&self) -> usize {
        self.seen.lock().unwrap().bytes.len()
    }

    /// Waits until the bytes received after the first `from` contain `wanted`.
    fn wait_bytes(&self, from: usize, wanted: &[u8]) {
        let deadline = Instant::now() + LIMIT;
        loop {
            {
                let seen = self.seen.lock().unwrap();
                let after = &seen.bytes[from.min(seen.bytes.len())..];
                if after.windows(wanted.len()).any(|w| w == wanted) {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "the terminal never received {:?}; after byte {from} it got {:?}",
                    String::from_utf8_lossy(wanted),
                    String::from_utf8_lossy(after)
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the UI to exit.
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + LIMIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() >= deadline {
                panic!(
                    "tandem tui still running {LIMIT:?} after logout; the screen:\n{}",
                    Tui::dump(&self.rows())
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the UI and waits for the main menu with the box's name in the title bar.
    fn at_menu(daemon: &Daemon) -> Tui {
        let tui = Tui::start(&daemon.control);
        tui.wait_until("the main menu with box-a in the title bar", |rows| {
            rows[0].contains("Tandem  box-a")
                && rows.iter().any(|r| r.contains("Main menu"))
                && rows.iter().any(|r| r.contains("1  Dashboard"))
                && rows.iter().any(|r| r.contains("q  Logout"))
        });
        tui
    }
}

impl Drop for Tui {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const CTRL_C: &str = "\x03";
const CTRL_U: &str = "\x15";
const TAB: &str = "\t";
const ENTER: &str = "\r";

#[test]
fn menu_with_the_box_name_then_the_dashboard_and_back() {
    let daemon = Daemon::start("tuim");
    let mut tui = Tui::at_menu(&daemon);
    tui.press("1");
    let rows = tui.wait_screen("generation=");
    assert!(
        rows.iter().any(|r| r.contains("name=box-a")),
        "the dashboard shows the status:\n{}",
        Tui::dump(&rows)
    );
    assert!(rows[1].contains(" Dashboard "), "{}", Tui::dump(&rows));
    tui.press("m");
    tui.wait_until("the main menu again", |rows| {
        rows.iter().any(|r| r.contains("Main menu"))
            && rows.iter().any(|r| r.contains("q  Logout"))
            && !rows.iter().any(|r| r.contains("generation="))
    });
}

#[test]
fn hostname_edited_and_committed_through_the_ui() {
    let daemon = Daemon::start("tuic");
    let mut tui = Tui::at_menu(&daemon);
    // System: the whole config tree; `system` is its first entry.
    tui.press("s");
    tui.wait_until("the top level of the config", |rows| {
        rows.iter().any(|r| r.contains("> system"))
            && rows.iter().any(|r| r.contains("> management"))
    });
    tui.press(ENTER);
    tui.wait_screen("console_password_hash");
    // `hostname` is the first field of `system`.
    tui.press(ENTER);
    tui.wait_prompt("system.hostname = box-a_");
    tui.press(CTRL_U);
    tui.wait_prompt("system.hostname = _");
    tui.press("box-z");
    tui.wait_prompt("system.hostname = box-z_");
    tui.press(ENTER);
    let message = tui.wait_message("set: system.hostname (candidate;");
    assert!(!message.contains('|'), "no refusal: {message}");
    tui.wait_screen("\"box-z\"");
    // The candidate changed; the running config did not.
    assert!(
        daemon
            .ask(&["show", "running"])
            .contains("hostname = \"box-a\""),
        "{}",
        daemon.ask(&["show", "running"])
    );
    tui.press("m");
    tui.wait_screen("Main menu");
    tui.press("8");
    tui.wait_screen("c commit t confirmed");
    tui.press("c");
    tui.wait_prompt("commit comment (Enter for none): _");
    tui.press(ENTER);
    tui.wait_message("commit: generation 2");
    tui.wait_until("generation 2 in the title bar", |rows| {
        rows[0].contains("gen 2")
    });
    wait_tandem_query(
        Path::new(TANDEM),
        &daemon.control,
        &["show", "running"],
        LIMIT,
        |running| running.contains("hostname = \"box-z\""),
    )
    .unwrap_or_else(|last| panic!("the running config never had hostname box-z:\n{last}"));
    let history = daemon.ask(&["history"]);
    assert!(
        history
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("2")),
        "no generation 2 in the history:\n{history}"
    );
}

#[test]
fn a_refused_value_stays_in_the_prompt_with_the_reason() {
    let daemon = Daemon::start("tuir");
    let mut tui = Tui::at_menu(&daemon);
    tui.press("4");
    tui.wait_screen("> web");
    tui.press(ENTER);
    // The instance's fields (set ones first, by name), `priority` the ninth of them.
    tui.wait_screen("= priority");
    tui.press(&TAB.repeat(8));
    tui.press(ENTER);
    tui.wait_prompt("vrrp.web.priority = 150_");
    tui.press(CTRL_U);
    tui.press("999");
    tui.wait_prompt("vrrp.web.priority = 999_");
    tui.press(ENTER);
    let refusal = "set: vrrp.web.priority: expected an integer 1..=254, got 999";
    tui.wait_message(refusal);
    // The prompt is still open under the reason, with the refused text in it; editing it
    // (one Backspace and a 4) gives 994.
    tui.wait_prompt("vrrp.web.priority = 999_");
    tui.press("\x7f4");
    tui.press(ENTER);
    tui.wait_message("expected an integer 1..=254, got 994");
    // Nothing reached the candidate.
    let candidate = daemon.ask(&["show", "candidate"]);
    assert!(candidate.contains("priority = 150"), "{candidate}");
    // Ctrl-C cancels the prompt; the UI goes on.
    tui.press(CTRL_C);
    let rows = tui.wait_until("the prompt closed", |rows| {
        !rows[MESSAGE_ROW].contains("vrrp.web.priority")
    });
    assert!(
        rows[MESSAGE_ROW].contains("cancelled"),
        "{}",
        Tui::dump(&rows)
    );
    tui.press("m");
    tui.wait_until("the main menu again", |rows| {
        rows.iter().any(|r| r.contains("Main menu")) && rows.iter().any(|r| r.contains("q  Logout"))
    });
    assert!(
        tui.child.try_wait().unwrap().is_none(),
        "the UI exited on Ctrl-C"
    );
}

#[test]
fn logout_exits_cleanly_and_restores_the_terminal() {
    let daemon = Daemon::start("tuiq");
    let mut tui = Tui::at_menu(&daemon);
    tui.press("1");
    tui.wait_screen("generation=");
    let before = tui.received();
    tui.press("m");
    tui.wait_screen("Main menu");
    tui.press("q");
    let status = tui.wait_exit();
    assert!(status.success(), "tandem tui exited with {status}");
    // The exit sequence: the cursor shown again (the UI hid it), the screen cleared.
    tui.wait_bytes(before, b"\x1b[?25h");
    let seen = tui.seen.lock().unwrap();
    assert!(
        !seen.parser.screen().hide_cursor(),
        "the cursor stays hidden"
    );
    // The daemon is untouched by a UI leaving.
    drop(seen);
    assert!(daemon.ask(&["status"]).contains("name=box-a"));
}
