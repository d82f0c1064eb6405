//! A box's serial console seen through a VT100 emulator (the `vt100` crate): what an operator
//! on a terminal sees of the console UI, as rows of text and the reverse-video selection.
//! Waits poll the emulated screen until a condition holds, never for a fixed time.

use std::num::NonZeroU16;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::console::Console;

/// The console UI's terminal size (its default: a serial console reports none).
pub const ROWS: u16 = 24;
pub const COLS: u16 = 80;
const ROWS_NONZERO: NonZeroU16 = NonZeroU16::MIN.saturating_add(ROWS - 1);
const COLS_NONZERO: NonZeroU16 = NonZeroU16::MIN.saturating_add(COLS - 1);

/// An emulated terminal fed from a console's transcript.
pub struct Screen<'a> {
    console: &'a Console,
    parser: Mutex<(vt100::Parser, usize)>,
}

impl std::fmt::Debug for Screen<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Screen")
            .field("console", &self.console.log_path)
            .finish_non_exhaustive()
    }
}

impl<'a> Screen<'a> {
    /// Emulates the terminal from the console's first byte.
    pub fn new(console: &'a Console) -> Screen<'a> {
        Screen {
            console,
            parser: Mutex::new((vt100::Parser::new(ROWS_NONZERO, COLS_NONZERO, 0), 0)),
        }
    }

    /// The rows as text, after feeding what arrived.
    pub fn rows(&self) -> Vec<String> {
        let mut guard = self
            .parser
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (parser, offset) = &mut *guard;
        let (bytes, end, _) = self.console.bytes_since(*offset);
        parser.process(&bytes);
        *offset = end;
        parser.screen().rows(0, COLS).collect()
    }

    /// The row shown in reverse video inside the UI's box (the selection), if any.
    pub fn selected(&self) -> Option<String> {
        let rows = self.rows();
        let guard = self
            .parser
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let screen = guard.0.screen();
        // Row 0 is the title bar (always reversed); the box starts at row 1.
        (2..ROWS.saturating_sub(3)).find_map(|row| {
            let inverse = screen.cell(row, 3).is_some_and(|cell| cell.inverse());
            inverse.then(|| rows.get(usize::from(row)).cloned().unwrap_or_default())
        })
    }

    /// The screen as numbered rows, for failure messages.
    pub fn dump(&self) -> String {
        self.rows()
            .iter()
            .enumerate()
            .map(|(at, row)| format!("{at:2}|{row}\n"))
            .collect()
    }

    /// Waits until `holds(rows)`; the error names `what` and shows the screen.
    pub fn wait_until(
        &self,
        what: &str,
        timeout: Duration,
        holds: impl Fn(&[String]) -> bool,
    ) -> Result<Vec<String>, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let rows = self.rows();
            if holds(&rows) {
                return Ok(rows);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{}: the screen never showed {what} within {timeout:?}:\n{}",
                    self.console_name(),
                    self.dump()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until some row contains `text`.
    pub fn wait_for(&self, text: &str, timeout: Duration) -> Result<Vec<String>, String> {
        self.wait_until(&format!("{text:?}"), timeout, |rows| {
            rows.iter().any(|row| row.contains(text))
        })
    }

    /// Waits until row `row` contains `text`.
    pub fn wait_row(&self, row: u16, text: &str, timeout: Duration) -> Result<String, String> {
        let at = usize::from(row);
        let rows = self.wait_until(&format!("{text:?} on row {row}"), timeout, |rows| {
            rows.get(at).is_some_and(|r| r.contains(text))
        })?;
        Ok(rows.get(at).cloned().unwrap_or_default())
    }

    /// Waits until the message above the help line holds `text`. A message longer than a row
    /// takes up to four rows (the screen's box gives them up), so this reads every row between
    /// the box's bottom border and the help line, joined by spaces as they were wrapped.
    pub fn wait_message(&self, text: &str, timeout: Duration) -> Result<String, String> {
        let message = |rows: &[String]| -> String {
            let help = rows.len().saturating_sub(1);
            let border = rows[..help]
                .iter()
                .rposition(|r| r.starts_with('+') || r.starts_with('\u{2514}'))
                .map_or(help.saturating_sub(1), |at| at + 1);
            rows[border..help]
                .iter()
                .map(|r| r.trim_end())
                .collect::<Vec<_>>()
                .join(" ")
        };
        let rows = self.wait_until(&format!("the message {text:?}"), timeout, |rows| {
            message(rows).contains(text)
        })?;
        Ok(message(&rows))
    }

    /// Waits until nothing has arrived on the console for `quiet` (the box has consumed what
    /// was sent and drawn its answer), within `timeout`.
    pub fn wait_quiet(&self, quiet: Duration, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let (_, mut seen, _) = self.console.bytes_since(0);
        let mut since = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let (_, now, _) = self.console.bytes_since(seen);
            if now != seen {
                seen = now;
                since = Instant::now();
            } else if since.elapsed() >= quiet {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{}: the console never went quiet for {quiet:?}",
                    self.console_name()
                ));
            }
        }
    }

    /// Sends keys (bytes) to the console.
    pub fn press(&self, keys: &str) -> Result<(), String> {
        self.console.send(keys.as_bytes())
    }

    /// Moves the selection (Tab down, Shift-Tab up) to the row that contains `text`: straight
    /// there when the row is on screen, else a page at a time (at most `limit` presses in all),
    /// waiting for each move to show.
    pub fn select(&self, text: &str, limit: usize, timeout: Duration) -> Result<(), String> {
        const BACK_TAB: &str = "\x1b[Z";
        let mut pressed = 0;
        let mut downward = true;
        while pressed <= limit {
            let rows = self.rows();
            let selected_row = self.selected_row();
            let target = rows.iter().position(|row| row.contains(text));
            let (key, count) = match (target, selected_row) {
                (Some(t), Some(s)) if t == s => return Ok(()),
                (Some(t), Some(s)) if t > s => ("\t", t - s),
                (Some(t), Some(s)) => (BACK_TAB, s - t),
                _ => (if downward { "\t" } else { BACK_TAB }, 10),
            };
            let before = self.selected();
            self.press(&key.repeat(count))?;
            pressed += count;
            let moved = self.wait_until("the selection moving", timeout, |_| {
                self.selected() != before
            });
            if moved.is_err() {
                if target.is_none() && downward {
                    // The bottom of a long list: look upwards.
                    downward = false;
                    continue;
                }
                return moved.map(|_| ());
            }
        }
        Err(format!(
            "{}: no row containing {text:?} after {limit} presses:\n{}",
            self.console_name(),
            self.dump()
        ))
    }

    /// The screen row of the selection, if any.
    fn selected_row(&self) -> Option<usize> {
        let _ = self.rows();
        let guard = self
            .parser
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let screen = guard.0.screen();
        (2..ROWS.saturating_sub(3))
            .find(|row| screen.cell(*row, 3).is_some_and(|cell| cell.inverse()))
            .map(usize::from)
    }

    /// First boot: waits (up to `boot`) for the console UI to ask for the admin password,
    /// chooses `password` (typed twice) and waits for the main menu.
    pub fn create_password(
        &self,
        password: &str,
        boot: Duration,
        step: Duration,
    ) -> Result<(), String> {
        self.wait_for("no admin password yet", boot)?;
        self.press(password)?;
        self.press("\r")?;
        self.wait_for("the same again: _", step)?;
        self.press(password)?;
        self.press("\r")?;
        self.wait_for("Main menu", step).map(|_| ())
    }

    /// Types `password` at the login prompt until the gate answers it: true when it let us in,
    /// false when it said wrong. `failures` is how many wrong passwords came just before (the
    /// notice counts them, so a stale notice is never taken for this try's answer); a try the
    /// back-off dropped is typed again, within `limit`.
    pub fn try_password(
        &self,
        password: &str,
        failures: u32,
        step: Duration,
        limit: Duration,
    ) -> Result<bool, String> {
        let _ = failures; // the screen's own count is used: it is what the gate shows
        self.submit_password(password, step, limit, &["Main menu", "Wrong password"])
            .map(|shown| shown == "Main menu")
    }

    /// Logs in with the right `password`, however many wrong tries came before and whatever
    /// back-off they left (it caps at 60 s), within `limit`.
    pub fn log_in(&self, password: &str, step: Duration, limit: Duration) -> Result<(), String> {
        self.submit_password(password, step, limit, &["Main menu"])
            .map(|_| ())
    }

    /// Types `password` and Enter at the login prompt until one of `outcomes` shows. Each try
    /// waits for its own answer: the main menu, the refusal that counts one more failure
    /// than the screen showed before it, or a new back-off notice (the try was dropped: the
    /// gate drops keys while it backs off, so nothing was submitted). Before typing, a
    /// back-off the screen announces is waited out. Returns the outcome seen.
    fn submit_password<'o>(
        &self,
        password: &str,
        step: Duration,
        limit: Duration,
        outcomes: &[&'o str],
    ) -> Result<&'o str, String> {
        let deadline = Instant::now() + limit;
        loop {
            // A try still being checked: its answer first (keys typed now would reach the
            // menu if it lets us in).
            self.wait_until("the password check to end", step, |rows| {
                !rows.iter().any(|r| r.contains("Checking"))
            })?;
            let before = self.rows();
            if !before[0].contains("console login") {
                if let Some(menu) = outcomes.iter().find(|o| **o == "Main menu") {
                    return Ok(menu);
                }
            }
            let notice_before = gate_notice(&before);
            if let Some(seconds) = notice_before.as_deref().and_then(backoff_seconds) {
                std::thread::sleep(Duration::from_secs(seconds + 1));
            }
            self.press("\x15")?;
            self.press(password)?;
            self.press("\r")?;
            // A refusal always changes the notice (its count grows); a drop writes one too.
            let answered = self.wait_until("this try's answer", step, |rows| {
                let notice = gate_notice(rows);
                rows.iter().any(|r| r.contains("Main menu"))
                    || (notice.is_some() && notice != notice_before)
            });
            if let Ok(rows) = answered {
                let menu = rows.iter().any(|r| r.contains("Main menu"));
                let refused = gate_notice(&rows)
                    .as_deref()
                    .is_some_and(|n| n.contains("Wrong password ("));
                let seen = outcomes.iter().find(|o| {
                    (menu && **o == "Main menu")
                        || (!menu && refused && o.starts_with("Wrong password"))
                });
                if let Some(seen) = seen {
                    return Ok(seen);
                }
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no {outcomes:?} at the login prompt:\n{}",
                    self.dump()
                ));
            }
        }
    }

    fn console_name(&self) -> String {
        self.console.log_path.display().to_string()
    }
}

/// The login gate's notice line (a refusal, a back-off), if the screen shows one.
fn gate_notice(rows: &[String]) -> Option<String> {
    rows.iter()
        .find(|r| r.contains("Wrong password") || r.contains("Too many failures"))
        .map(|r| r.trim().to_owned())
}

/// `wait N s` in a notice.
fn backoff_seconds(notice: &str) -> Option<u64> {
    let rest = notice.split("wait ").nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}
