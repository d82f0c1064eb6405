//! Console input that line noise, a stuck key or a habit cannot turn into a command or a
//! lock-out.
//!
//! Bytes from the console are assembled into lines here rather than trusted to the tty: a line
//! longer than [`MAX_LINE`] is discarded whole (never split into commands), a line holding a
//! control character (an escape sequence, Ctrl-C, a NUL from a wrong baud rate) is discarded
//! and named, erase characters edit the line, and end-of-file on a terminal (Ctrl-D) is not
//! the end of the console. Only a console that is not a terminal (a closed pipe under `tandem
//! run`) ends; the daemon then runs headless. Every discard is counted.

use std::io::Read;
use std::os::fd::AsFd;
use std::time::Duration;

use tokio::sync::mpsc;

/// Longest command line accepted; anything longer is discarded whole.
pub const MAX_LINE: usize = 4096;

/// Why a line was thrown away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discard {
    /// Longer than [`MAX_LINE`] bytes (`length` counted up to the newline).
    TooLong { length: usize },
    /// Held a control character (the first one found).
    ControlCharacter { byte: u8 },
}

impl core::fmt::Display for Discard {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Discard::TooLong { length } => write!(
                f,
                "line of {length} bytes discarded (longest accepted: {MAX_LINE}); nothing was run"
            ),
            Discard::ControlCharacter { byte } => write!(
                f,
                "line discarded: it holds control character {} (0x{byte:02x}); nothing was run, \
                 type commands as plain text",
                control_name(*byte)
            ),
        }
    }
}

fn control_name(byte: u8) -> String {
    match byte {
        0x1b => "ESC".to_owned(),
        0x7f => "DEL".to_owned(),
        0..=0x1f => format!("Ctrl-{}", char::from(byte + 0x40)),
        _ => format!("0x{byte:02x}"),
    }
}

/// One thing the console produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleInput {
    Line(String),
    Discarded(Discard),
}

/// Turns a byte stream into lines, bounded and checked (pure, so every sequence is testable).
#[derive(Debug, Default)]
pub struct LineAssembler {
    line: Vec<u8>,
    /// Bytes seen in the current line beyond the limit (the line is being discarded).
    overflow: usize,
    control: Option<u8>,
}

impl LineAssembler {
    /// Feeds bytes; complete lines and discards are pushed to `out`.
    pub fn feed(&mut self, bytes: &[u8], out: &mut Vec<ConsoleInput>) {
        for &byte in bytes {
            match byte {
                b'\n' => out.push(self.finish()),
                // A terminal's CR (or CR LF) ends nothing by itself; it is dropped.
                b'\r' => {}
                // Erase: BS and DEL edit the line as a terminal in raw mode would.
                0x08 | 0x7f => {
                    if self.overflow == 0 {
                        self.line.pop();
                    }
                }
                b'\t' => self.push(b' '),
                0..=0x1f => {
                    self.control.get_or_insert(byte);
                }
                _ => self.push(byte),
            }
        }
    }

    fn push(&mut self, byte: u8) {
        if self.overflow > 0 || self.line.len() >= MAX_LINE {
            self.overflow += 1;
        } else {
            self.line.push(byte);
        }
    }

    fn finish(&mut self) -> ConsoleInput {
        let length = self.line.len() + self.overflow;
        let overflow = std::mem::take(&mut self.overflow);
        let control = self.control.take();
        let line = std::mem::take(&mut self.line);
        if overflow > 0 {
            ConsoleInput::Discarded(Discard::TooLong { length })
        } else if let Some(byte) = control {
            ConsoleInput::Discarded(Discard::ControlCharacter { byte })
        } else {
            ConsoleInput::Line(String::from_utf8_lossy(&line).into_owned())
        }
    }
}

/// Makes the console a plain line device: no software flow control (a stray Ctrl-S would stop
/// all output until Ctrl-Q), no signals from Ctrl-C/Ctrl-Z/Ctrl-\ (they arrive as bytes and
/// discard their line), and no end-of-file character. Canonical mode and echo stay, so the
/// operator sees and edits what they type. Not a terminal: nothing to do.
pub fn make_console_a_plain_line_device() -> Result<(), nix::errno::Errno> {
    use nix::sys::termios::{self, InputFlags, LocalFlags, SetArg, SpecialCharacterIndices};
    let stdin = std::io::stdin();
    let fd = stdin.as_fd();
    let mut settings = match termios::tcgetattr(fd) {
        Ok(settings) => settings,
        Err(nix::errno::Errno::ENOTTY) => return Ok(()),
        Err(errno) => return Err(errno),
    };
    settings
        .input_flags
        .remove(InputFlags::IXON | InputFlags::IXOFF | InputFlags::IXANY);
    settings.local_flags.remove(LocalFlags::ISIG);
    // _POSIX_VDISABLE is 0 on Linux.
    settings.control_chars[SpecialCharacterIndices::VEOF as usize] = 0;
    termios::tcsetattr(fd, SetArg::TCSANOW, &settings)
}

/// Reads the console on a thread of its own (it is a blocking tty) and sends what it assembles.
pub fn spawn() -> mpsc::UnboundedReceiver<ConsoleInput> {
    let (sender, receiver) = mpsc::unbounded_channel();
    let spawned = std::thread::Builder::new()
        .name("console-in".into())
        .spawn(move || {
            let stdin = std::io::stdin();
            let terminal = nix::unistd::isatty(stdin.as_fd()).unwrap_or(false);
            let mut assembler = LineAssembler::default();
            let mut buffer = [0u8; 1024];
            let mut out = Vec::new();
            loop {
                match stdin.lock().read(&mut buffer) {
                    // End of file on a terminal is Ctrl-D or a hang-up: the console stays ours.
                    Ok(0) if terminal => std::thread::sleep(Duration::from_millis(100)),
                    Ok(0) => return,
                    Ok(n) => {
                        assembler.feed(buffer.get(..n).unwrap_or_default(), &mut out);
                        for input in out.drain(..) {
                            if sender.send(input).is_err() {
                                return;
                            }
                        }
                    }
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) if terminal => std::thread::sleep(Duration::from_millis(100)),
                    Err(_) => return,
                }
            }
        });
    // Without the reader thread the receiver reports closed at once; the loop then runs
    // headless rather than spinning.
    let _ = spawned;
    receiver
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assemble(bytes: &[u8]) -> Vec<ConsoleInput> {
        let mut assembler = LineAssembler::default();
        let mut out = Vec::new();
        assembler.feed(bytes, &mut out);
        out
    }

    fn line(text: &str) -> ConsoleInput {
        ConsoleInput::Line(text.to_owned())
    }

    #[test]
    fn a_long_line_is_discarded_whole_never_split_into_commands() {
        let mut input = vec![b'x'; 4096];
        input.extend_from_slice(b"poweroff\nstatus\n");
        assert_eq!(
            assemble(&input),
            [
                ConsoleInput::Discarded(Discard::TooLong { length: 4104 }),
                line("status")
            ]
        );
        let mut huge = vec![b'a'; 1 << 20];
        huge.push(b'\n');
        assert_eq!(
            assemble(&huge),
            [ConsoleInput::Discarded(Discard::TooLong {
                length: 1 << 20
            })]
        );
        let mut exact = vec![b'y'; MAX_LINE];
        exact.push(b'\n');
        assert_eq!(assemble(&exact), [line(&"y".repeat(MAX_LINE))]);
    }

    #[test]
    fn control_characters_discard_their_line_and_are_named() {
        assert_eq!(
            assemble(b"pow\0eroff\n"),
            [ConsoleInput::Discarded(Discard::ControlCharacter {
                byte: 0
            })]
        );
        assert_eq!(
            assemble(b"\x1b[Astatus\r\n"),
            [ConsoleInput::Discarded(Discard::ControlCharacter {
                byte: 0x1b
            })]
        );
        let text = Discard::ControlCharacter { byte: 3 }.to_string();
        assert!(text.contains("Ctrl-C"), "{text}");
        assert_eq!(assemble(b"\x04\x03\x1a\x1c\x13\x11"), []);
        assert_eq!(
            assemble(b"\x04\x03\x1a\x1c\x13\x11\nstatus\n"),
            [
                ConsoleInput::Discarded(Discard::ControlCharacter { byte: 4 }),
                line("status")
            ]
        );
    }

    #[test]
    fn terminal_editing_and_line_endings() {
        assert_eq!(assemble(b"statx\x7fus\r\n"), [line("status")]);
        assert_eq!(assemble(b"vrrp\tstatus\n"), [line("vrrp status")]);
        assert_eq!(assemble(b"\x08\x08log\n"), [line("log")]);
        let mut split = LineAssembler::default();
        let mut out = Vec::new();
        split.feed(b"sta", &mut out);
        assert!(out.is_empty());
        split.feed(b"tus\n", &mut out);
        assert_eq!(out, [line("status")]);
    }

    #[test]
    fn random_bytes_never_panic_and_never_exceed_the_bound() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut assembler = LineAssembler::default();
        let mut out = Vec::new();
        for _ in 0..256 {
            let chunk: Vec<u8> = (0..1024)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state.to_le_bytes()[0]
                })
                .collect();
            assembler.feed(&chunk, &mut out);
        }
        for input in &out {
            if let ConsoleInput::Line(text) = input {
                assert!(text.len() <= 3 * MAX_LINE);
                assert!(!text.chars().any(|c| c.is_ascii_control()));
            }
        }
    }
}
