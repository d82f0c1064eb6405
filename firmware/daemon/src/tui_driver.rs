//! Runs the console UI ([`tandem_tui`]) on a terminal: raw mode, a reader thread for the
//! keyboard, a worker thread that asks the daemon (one request at a time, in order), and the
//! loop that feeds keys and answers to the app and writes each frame in one `write`.
//!
//! The same driver serves `tandem [--control SOCKET] tui` on any terminal (answers over the
//! control socket) and, on the box, the serial console (answers over the in-process channel):
//! only the `ask` function differs. Nothing here blocks the daemon: a slow answer only delays
//! the screen that asked.

use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::termios::{self, SetArg, Termios};
use tandem_tui::app::App;
use tandem_tui::glyphs::GlyphMode;
use tandem_tui::keys::{Key, KeyDecoder};
use tandem_tui::login::{Gate, GateRequest};

use crate::console_login::ConsoleCredential;
use tandem_tui::ratatui_core::layout::Size;
use tandem_tui::ratatui_core::terminal::Terminal;
use tandem_tui::serial::{self, SerialBackend};

/// How the UI draws.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TuiOptions {
    pub size: Size,
    pub glyphs: GlyphMode,
    /// Ask the terminal its size (a cursor-position report, silently 80 x 24 without one).
    pub probe_size: bool,
    /// An idle session logs out after this long (with a login gate).
    pub idle_logout: Duration,
}

impl Default for TuiOptions {
    fn default() -> TuiOptions {
        TuiOptions {
            size: Size::new(80, 24),
            glyphs: GlyphMode::Ascii,
            probe_size: false,
            idle_logout: Duration::from_millis(tandem_tui::login::DEFAULT_IDLE_LOGOUT_MS),
        }
    }
}

/// How long the size probe waits for the terminal's answer.
const SIZE_PROBE_WAIT: Duration = Duration::from_millis(300);

/// What the loop waits for.
enum Event {
    Bytes(Vec<u8>),
    /// The keyboard is gone (EOF on a pipe, a hung-up terminal).
    InputClosed,
    Answer(u64, String),
}

/// The terminal's settings, restored when the UI ends (also on an early return).
struct RawMode<'fd> {
    fd: BorrowedFd<'fd>,
    saved: Termios,
}

impl<'fd> RawMode<'fd> {
    /// Raw input: no echo, no line editing, no signals (Ctrl-C, Ctrl-Z and Ctrl-\ reach the
    /// UI as keys), no flow control (Ctrl-S never freezes the console), 8-bit clean.
    fn enter(fd: BorrowedFd<'fd>) -> Result<RawMode<'fd>, String> {
        let saved = termios::tcgetattr(fd).map_err(|e| format!("the terminal: {e}"))?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(fd, SetArg::TCSANOW, &raw).map_err(|e| format!("raw mode: {e}"))?;
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.fd, SetArg::TCSANOW, &self.saved);
    }
}

fn millis(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// `tandem tui` on this process's terminal (stdin/stdout).
pub fn run_on_stdio(
    options: TuiOptions,
    ask: impl Fn(&str) -> String + Send + 'static,
) -> Result<(), String> {
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let _raw = if termios::tcgetattr(fd).is_ok() {
        Some(RawMode::enter(fd)?)
    } else {
        None
    };
    let input = std::io::stdin();
    let output = std::io::stdout();
    run(options, input, output, ask, None)
}

/// Whether `tty` opens as a terminal (the console UI needs one).
pub fn is_terminal(tty: &std::path::Path) -> Result<(), String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(tty)
        .map_err(|e| format!("{}: {e}", tty.display()))?;
    termios::tcgetattr(file.as_fd())
        .map(|_| ())
        .map_err(|e| format!("{}: not a terminal ({e})", tty.display()))
}

/// The UI on the box's serial console (`tty`, e.g. `/dev/ttyS0`), behind the login gate.
/// Returns when the tty cannot be used (the caller falls back to line commands).
pub fn run_on_tty(
    tty: &std::path::Path,
    options: TuiOptions,
    ask: impl Fn(&str) -> String + Send + 'static,
    credential: &mut ConsoleCredential,
) -> Result<(), String> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY)
        .open(tty)
        .map_err(|e| format!("{}: {e}", tty.display()))?;
    let _raw = RawMode::enter(file.as_fd())?;
    let input = file
        .try_clone()
        .map_err(|e| format!("{}: {e}", tty.display()))?;
    run(options, input, &file, ask, Some(credential))
}

/// Runs the UI until Logout (or the keyboard closes): `input` gives the terminal's bytes,
/// `output` takes the frames, `ask` answers one command line. With a `credential` the UI sits
/// behind the login gate and Logout returns to it (the UI then runs until the keyboard closes).
pub fn run(
    options: TuiOptions,
    mut input: impl Read + Send + 'static,
    mut output: impl Write,
    ask: impl Fn(&str) -> String + Send + 'static,
    mut credential: Option<&mut ConsoleCredential>,
) -> Result<(), String> {
    let started = Instant::now();
    let (events_tx, events) = mpsc::channel::<Event>();
    let keyboard = events_tx.clone();
    std::thread::Builder::new()
        .name("tui-input".into())
        .spawn(move || {
            let mut buffer = [0u8; 256];
            loop {
                match input.read(&mut buffer) {
                    Ok(0) => {
                        let _ = keyboard.send(Event::InputClosed);
                        return;
                    }
                    Ok(n) => {
                        if keyboard.send(Event::Bytes(buffer[..n].to_vec())).is_err() {
                            return;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => {
                        let _ = keyboard.send(Event::InputClosed);
                        return;
                    }
                }
            }
        })
        .map_err(|e| format!("cannot start the input thread: {e}"))?;
    let (requests_tx, requests) = mpsc::channel::<tandem_tui::app::Request>();
    let answers = events_tx;
    std::thread::Builder::new()
        .name("tui-ask".into())
        .spawn(move || {
            while let Ok(request) = requests.recv() {
                let text = ask(&request.line);
                if answers.send(Event::Answer(request.id, text)).is_err() {
                    return;
                }
            }
        })
        .map_err(|e| format!("cannot start the request thread: {e}"))?;

    let write = |output: &mut dyn Write, bytes: &[u8]| -> Result<(), String> {
        output
            .write_all(bytes)
            .and_then(|()| output.flush())
            .map_err(|e| format!("the terminal: {e}"))
    };
    write(&mut output, serial::init_sequence())?;
    let mut decoder = KeyDecoder::new(KeyDecoder::DEFAULT_ESC_TIMEOUT_MS);
    let mut size = options.size;
    let mut early: Vec<Event> = Vec::new();
    let mut typed_early = Vec::new();
    if options.probe_size {
        write(&mut output, serial::SIZE_PROBE)?;
        let deadline = Instant::now() + SIZE_PROBE_WAIT;
        let mut keys = Vec::new();
        while let Some(wait) = deadline.checked_duration_since(Instant::now()) {
            match events.recv_timeout(wait) {
                Ok(Event::Bytes(bytes)) => {
                    decoder.feed(&bytes, millis(started), &mut keys);
                    if let Some((row, col)) = decoder.take_cursor_report() {
                        if let Some(probed) = serial::size_from_cursor_report(row, col) {
                            size = probed;
                        }
                        break;
                    }
                }
                Ok(other) => early.push(other),
                Err(_) => break,
            }
        }
        // Keys typed while the probe waited are not lost.
        typed_early = keys;
    }
    let backend = SerialBackend::new(Vec::with_capacity(4096), size, options.glyphs);
    let mut terminal = Terminal::new(backend).map_err(|e| format!("the terminal: {e}"))?;
    let mut app = App::new(millis(started));
    let idle_ms = u64::try_from(options.idle_logout.as_millis()).unwrap_or(u64::MAX);
    let mut gate = credential
        .as_mut()
        .map(|credential| Gate::new(credential.is_set(), idle_ms, millis(started)));
    let mut keys = Vec::new();
    keys.extend(typed_early);
    let mut pending = early.into_iter();
    loop {
        let now = millis(started);
        for key in keys.drain(..) {
            if key == Key::Ctrl('l') {
                terminal.clear().map_err(|e| format!("the terminal: {e}"))?;
                continue;
            }
            match gate.as_mut() {
                Some(gate) if !gate.is_open() => gate.handle_key(&key, now),
                Some(gate) => {
                    gate.handle_key(&key, now);
                    app.handle_key(key);
                }
                None => app.handle_key(key),
            }
        }
        app.tick(now);
        if let Some(gate) = gate.as_mut() {
            gate.tick(now);
            if app.wants_quit() {
                gate.logout("logout");
                app = App::new(now);
            }
        }
        for request in app.take_requests() {
            if requests_tx.send(request).is_err() {
                return Err("the request thread stopped".into());
            }
        }
        if app.take_repaint() {
            terminal.clear().map_err(|e| format!("the terminal: {e}"))?;
        }
        terminal
            .draw(|frame| match &gate {
                Some(gate) if !gate.is_open() => {
                    tandem_tui::render::render_gate(&app, gate, options.glyphs, frame);
                }
                _ => tandem_tui::render::render(&app, options.glyphs, frame),
            })
            .map_err(|e| format!("the terminal: {e}"))?;
        let frame = std::mem::take(terminal.backend_mut().writer_mut());
        if !frame.is_empty() {
            write(&mut output, &frame)?;
        }
        *terminal.backend_mut().writer_mut() = frame;
        terminal.backend_mut().writer_mut().clear();
        // The gate's checks run after the frame that says "Checking ..." is out: Argon2id is
        // slow on purpose (seconds under emulation), and only this thread waits for it.
        if let (Some(gate), Some(credential)) = (gate.as_mut(), credential.as_mut()) {
            let requests = gate.take_requests();
            let worked = !requests.is_empty();
            for request in requests {
                match request {
                    GateRequest::Check(password) => {
                        let good = credential.verify(&password);
                        gate.checked(good, millis(started));
                    }
                    GateRequest::Store(password) => {
                        let stored = credential.set(&password).err();
                        gate.stored(stored, millis(started));
                    }
                }
            }
            for line in gate.take_events() {
                credential.log(line);
            }
            if worked {
                continue;
            }
        }
        if app.wants_quit() && gate.is_none() {
            break;
        }
        let deadline = [
            Some(app.poll_timeout()),
            decoder.poll_timeout(),
            gate.as_ref().and_then(|g| g.poll_timeout(millis(started))),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now + 1000);
        let wait = Duration::from_millis(deadline.saturating_sub(millis(started)).max(1));
        let event = match pending.next() {
            Some(event) => Ok(event),
            None => events.recv_timeout(wait),
        };
        match event {
            Ok(Event::Bytes(bytes)) => decoder.feed(&bytes, millis(started), &mut keys),
            Ok(Event::Answer(id, text)) => app.answer(id, &text),
            Ok(Event::InputClosed) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        if decoder
            .poll_timeout()
            .is_some_and(|at| at <= millis(started))
        {
            decoder.handle_timeout(millis(started), &mut keys);
        }
    }
    write(&mut output, serial::exit_sequence())?;
    Ok(())
}
