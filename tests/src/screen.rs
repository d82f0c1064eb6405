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
        let refused = format!("Wrong password ({} in a row)", failures + 1);
        let deadline = Instant::now() + limit;
        loop {
            self.press("\x15")?;
            self.press(password)?;
            self.press("\r")?;
            let rows = self.wait_until("an answer to the password", step, |rows| {
                rows.iter().any(|r| {
                    r.contains("Main menu")
                        || r.contains(&refused)
                        || r.contains("Too many failures")
                })
            })?;
            if rows.iter().any(|r| r.contains("Main menu")) {
                return Ok(true);
            }
            if rows.iter().any(|r| r.contains(&refused)) {
                return Ok(false);
            }
            if Instant::now() >= deadline {
                return Err(format!("the back-off never ended:\n{}", self.dump()));
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    /// Logs in with the right `password`, however many wrong tries came before and whatever
    /// back-off they left (it caps at 60 s), within `limit`.
    pub fn log_in(&self, password: &str, step: Duration, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            self.press("\x15")?;
            self.press(password)?;
            self.press("\r")?;
            let rows = self.wait_until("an answer to the password", step, |rows| {
                rows.iter().any(|r| {
                    r.contains("Main menu") || r.contains("wait") || r.contains("Wrong password")
                })
            })?;
            if rows.iter().any(|r| r.contains("Main menu")) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!("never logged in:\n{}", self.dump()));
            }
            std::thread::sleep(Duration::from_secs(2));
        }
    }

    fn console_name(&self) -> String {
        self.console.log_path.display().to_string()
    }
}
