//! Bytes from the terminal -> [`Key`]s: the console UI's own key decoder for the serial line.
//!
//! Why our own: terminal libraries (crossterm, termion) read the tty themselves, with std, their
//! own clock and their own thread; here the daemon owns the serial fd (PID 1's console at
//! 115200 baud) and the UI is `no_std` and sans-IO. And a serial line has the classic problem
//! this module exists to solve: ESC is both a key and the first byte of every escape sequence,
//! and a read may end anywhere, even inside a sequence or a UTF-8 character.
//!
//! The contract, as in smoltcp / quinn-proto: nothing here reads a clock or a device. The caller
//! hands over what it read with [`KeyDecoder::feed`] and the time of the read, asks
//! [`KeyDecoder::poll_timeout`] when to come back, and calls [`KeyDecoder::handle_timeout`] then.
//! A key split across reads decodes as if read whole, as long as no gap reaches the timeout.
//!
//! Decisions:
//! - A lone ESC is [`Key::Esc`] once the timeout passes with nothing after it
//!   ([`KeyDecoder::DEFAULT_ESC_TIMEOUT_MS`] says why 100 ms). ESC followed by a byte that
//!   starts no sequence (Alt+x, or Esc typed just before another key) is [`Key::Esc`] and then
//!   that key: no keystroke is lost, and the UI never has to know about Alt.
//! - CR, LF and CR LF are one [`Key::Enter`] each: an LF right after a CR (same read or the
//!   next, whatever the gap) is dropped. Ctrl-J right after Enter is thus lost; it is an Enter.
//! - CSI (`ESC [`) and SS3 (`ESC O`) sequences: xterm, VT220, PuTTY, rxvt and Linux console
//!   spellings; modifier parameters (`ESC [ 1;5A`) decode to the base key. SS3 keypad keys
//!   (application keypad) decode to their characters and `ESC O M` to Enter.
//! - A cursor-position report (`ESC [ row ; col R`) is never a key: it is kept for
//!   [`KeyDecoder::take_cursor_report`]. xterm's Shift/Ctrl-F3 (`ESC [ 1;2R`) has the same
//!   spelling and is read as a report too; plain F3 (`ESC O R`, `ESC [ 13~`) is a key.
//! - Line noise never becomes characters and is counted in [`KeyDecoder::discarded`]: an
//!   unknown sequence is swallowed up to its final byte; one longer than
//!   [`KeyDecoder::MAX_SEQUENCE_LEN`] is dropped and the rest of it swallowed; a sequence cut
//!   by a byte that cannot continue it (a control byte, a new ESC, a non-ASCII byte) is dropped
//!   and that byte decoded afresh; a sequence still incomplete at the timeout is dropped.
//! - UTF-8 is decoded strictly (no overlong forms, no surrogates); an invalid or cut byte
//!   sequence is dropped and counted, and so are C1 controls: raw bytes 0x80..0x9f (8-bit CSI
//!   included) are invalid UTF-8, and U+0080..U+009F sent as UTF-8 are not keys.
//! - Control bytes: 0x01..0x1a are [`Key::Ctrl`] with the letter (the app decides what Ctrl-C,
//!   Ctrl-D, Ctrl-Z mean), except 0x08 (Backspace), 0x09 (Tab), 0x0a and 0x0d (Enter);
//!   0x1c..0x1f are `Ctrl('\\')`, `Ctrl(']')`, `Ctrl('^')`, `Ctrl('_')`; 0x7f is Backspace;
//!   NUL (Ctrl-Space, or a line break condition) is dropped and counted.
//! - Memory is bounded: one fixed buffer of [`KeyDecoder::MAX_SEQUENCE_LEN`] bytes; the keys go
//!   to the caller's vector.

use alloc::vec::Vec;
use core::mem;

const ESC: u8 = 0x1b;
const CR: u8 = b'\r';
const LF: u8 = b'\n';

/// A key as the UI sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// A printable character (never a control character).
    Char(char),
    /// CR, LF, CR LF, or keypad Enter.
    Enter,
    /// Tab (0x09).
    Tab,
    /// Shift-Tab (`ESC [ Z`).
    BackTab,
    /// 0x7f or 0x08.
    Backspace,
    /// Delete (`ESC [ 3 ~`).
    Delete,
    /// A lone ESC, after the timeout, or ESC followed by a byte that starts no sequence.
    Esc,
    /// Cursor up.
    Up,
    /// Cursor down.
    Down,
    /// Cursor left.
    Left,
    /// Cursor right.
    Right,
    /// Home.
    Home,
    /// End.
    End,
    /// Insert.
    Insert,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// A function key, F1 to F12 as 1..=12.
    F(u8),
    /// A control byte not otherwise mapped: a lowercase letter for 0x01..0x1a (Ctrl-C is
    /// `Ctrl('c')`), or one of `\`, `]`, `^`, `_` for 0x1c..0x1f.
    Ctrl(char),
}

/// Where the decoder is between two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between keys; the buffer is empty.
    Ground,
    /// ESC seen: `[` or `O` would start a sequence, anything else makes it [`Key::Esc`].
    Escape,
    /// `ESC [` and parameter bytes so far, in the buffer.
    Csi,
    /// `ESC [ [`: the Linux console's F1..F5 (`ESC [ [ A` .. `E`) need one more byte.
    LinuxFunctionKey,
    /// `ESC O` and parameter bytes so far, in the buffer.
    Ss3,
    /// A sequence over [`KeyDecoder::MAX_SEQUENCE_LEN`], already counted: its remaining bytes
    /// are swallowed up to its final byte; the buffer is empty.
    SkipOverlong,
    /// A UTF-8 lead byte and continuation bytes so far, in the buffer, of `expected_len`.
    Utf8 { expected_len: usize },
}

/// What a complete escape sequence meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoded {
    Key(Key),
    CursorReport { row: u16, column: u16 },
    Unknown,
}

/// Bytes from the terminal -> [`Key`]s, with injected time. See the module documentation.
#[derive(Debug, Clone)]
pub struct KeyDecoder {
    esc_timeout_ms: u64,
    state: State,
    /// The pending sequence (from its ESC) or UTF-8 character; `buffered` bytes of it are used.
    buffer: [u8; KeyDecoder::MAX_SEQUENCE_LEN],
    buffered: usize,
    /// When the last non-empty read was fed: a pending state expires `esc_timeout_ms` later.
    last_input_ms: u64,
    /// The previous byte was a CR, so an LF now is the second half of one Enter.
    after_cr: bool,
    cursor_report: Option<(u16, u16)>,
    discarded: u64,
}

impl Default for KeyDecoder {
    fn default() -> Self {
        KeyDecoder::new(KeyDecoder::DEFAULT_ESC_TIMEOUT_MS)
    }
}

impl KeyDecoder {
    /// How long a pending ESC (or an incomplete sequence) waits for its next byte.
    ///
    /// On the wire a whole sequence takes well under 2 ms (16 bytes at 115200 baud, 87 us a
    /// byte), but it can reach us in two reads: USB-serial adapters flush a partial packet
    /// after their latency timer (16 ms by default on FTDI), and console servers and SSH hops
    /// add network jitter. A longer timeout only delays a lone Esc (100 ms still feels
    /// immediate; it is vim's `ttimeoutlen` too) and merges Esc with a `[` or `O` typed within
    /// it: any other key after ESC is decoded as Esc and that key anyway.
    pub const DEFAULT_ESC_TIMEOUT_MS: u64 = 100;

    /// The longest escape sequence taken, from its ESC to its final byte: the longest real key
    /// (`ESC [ 1 5 ; 1 6 ~`, `ESC [ 1 2 3 4 5 ; 1 2 3 4 5 R`) is 13 bytes.
    pub const MAX_SEQUENCE_LEN: usize = 16;

    /// A decoder whose pending ESC becomes [`Key::Esc`] after `esc_timeout_ms` without input.
    #[must_use]
    pub fn new(esc_timeout_ms: u64) -> Self {
        KeyDecoder {
            esc_timeout_ms,
            state: State::Ground,
            buffer: [0; KeyDecoder::MAX_SEQUENCE_LEN],
            buffered: 0,
            last_input_ms: 0,
            after_cr: false,
            cursor_report: None,
            discarded: 0,
        }
    }

    /// Feeds bytes read at `now_ms` (a monotonic millisecond clock); decoded keys are pushed
    /// to `out`.
    ///
    /// A deadline already passed (see [`KeyDecoder::poll_timeout`]) is handled first, so a late
    /// call to [`KeyDecoder::handle_timeout`] changes nothing.
    pub fn feed(&mut self, bytes: &[u8], now_ms: u64, out: &mut Vec<Key>) {
        self.handle_timeout(now_ms, out);
        if bytes.is_empty() {
            return;
        }
        for &byte in bytes {
            self.step(byte, out);
        }
        self.last_input_ms = now_ms;
    }

    /// When [`KeyDecoder::handle_timeout`] must be called (a pending lone ESC, an incomplete
    /// sequence or UTF-8 character), if at all.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<u64> {
        match self.state {
            State::Ground => None,
            _ => Some(self.last_input_ms.saturating_add(self.esc_timeout_ms)),
        }
    }

    /// At/after the deadline: a pending ESC becomes [`Key::Esc`] (an incomplete sequence or
    /// UTF-8 character is discarded and counted). Before it, or with nothing pending, nothing.
    pub fn handle_timeout(&mut self, now_ms: u64, out: &mut Vec<Key>) {
        match self.poll_timeout() {
            Some(deadline) if now_ms >= deadline => {}
            _ => return,
        }
        match self.state {
            State::Ground | State::SkipOverlong => {}
            State::Escape => out.push(Key::Esc),
            State::Csi | State::LinuxFunctionKey | State::Ss3 | State::Utf8 { .. } => {
                self.count_discarded();
            }
        }
        self.reset();
    }

    /// Bytes/sequences dropped as line noise (unknown or over-long escape sequences, invalid
    /// UTF-8, C1 controls, NUL), since creation.
    #[must_use]
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    /// The last cursor-position report (`ESC [ row ; col R`, 1-based) since the previous call,
    /// as (row, column): the answer to a `ESC [ 6 n` size probe.
    pub fn take_cursor_report(&mut self) -> Option<(u16, u16)> {
        self.cursor_report.take()
    }

    /// The bytes held for an incomplete sequence or character: at most
    /// [`KeyDecoder::MAX_SEQUENCE_LEN`].
    #[must_use]
    pub fn pending_len(&self) -> usize {
        self.buffered
    }

    fn step(&mut self, byte: u8, out: &mut Vec<Key>) {
        if mem::take(&mut self.after_cr) && byte == LF {
            return;
        }
        match self.state {
            State::Ground => self.ground(byte, out),
            State::Escape => self.escape(byte, out),
            State::Csi | State::Ss3 => self.sequence(byte, out),
            State::LinuxFunctionKey => self.linux_function_key(byte, out),
            State::SkipOverlong => self.skip_overlong(byte, out),
            State::Utf8 { expected_len } => self.utf8(byte, expected_len, out),
        }
    }

    fn ground(&mut self, byte: u8, out: &mut Vec<Key>) {
        match byte {
            0x00 => self.count_discarded(),
            CR => {
                out.push(Key::Enter);
                self.after_cr = true;
            }
            LF => out.push(Key::Enter),
            0x08 | 0x7f => out.push(Key::Backspace),
            b'\t' => out.push(Key::Tab),
            ESC => self.begin(State::Escape, byte),
            0x01..=0x1a => out.push(Key::Ctrl(char::from(b'a' + (byte - 1)))),
            // 0x1c..0x1f are Ctrl with `\`, `]`, `^`, `_` (0x5c..0x5f).
            0x1c..=0x1f => out.push(Key::Ctrl(char::from(byte + 0x40))),
            0x20..=0x7e => out.push(Key::Char(char::from(byte))),
            0x80..=0xff => match utf8_len(byte) {
                Some(expected_len) => self.begin(State::Utf8 { expected_len }, byte),
                None => self.count_discarded(),
            },
        }
    }

    fn escape(&mut self, byte: u8, out: &mut Vec<Key>) {
        match byte {
            b'[' => self.advance(State::Csi, byte),
            b'O' => self.advance(State::Ss3, byte),
            _ => {
                out.push(Key::Esc);
                self.reset();
                self.ground(byte, out);
            }
        }
    }

    /// A byte after `ESC [` or `ESC O` (both in the buffer).
    fn sequence(&mut self, byte: u8, out: &mut Vec<Key>) {
        let is_csi = self.state == State::Csi;
        let has_parameters = self.buffered > 2;
        // rxvt ends modified keys with `$` (Shift), `^` (Ctrl), `@` (both): `$` is an
        // intermediate byte in ECMA-48, but after parameters no keyboard sends one.
        let is_final = matches!(byte, 0x40..=0x7e) || (is_csi && byte == b'$' && has_parameters);
        let is_parameter = !is_final
            && if is_csi {
                matches!(byte, 0x20..=0x3f)
            } else {
                matches!(byte, 0x30..=0x3f)
            };
        if is_csi && byte == b'[' && !has_parameters {
            self.advance(State::LinuxFunctionKey, byte);
        } else if !is_final && !is_parameter {
            self.abort(byte, out);
        } else if self.buffered == KeyDecoder::MAX_SEQUENCE_LEN {
            self.count_discarded();
            self.reset();
            if !is_final {
                self.state = State::SkipOverlong;
            }
        } else if is_parameter {
            self.push(byte);
        } else {
            let parameters = self.buffer.get(2..self.buffered).unwrap_or(&[]);
            let decoded = if is_csi {
                decode_csi(parameters, byte)
            } else {
                decode_ss3(parameters, byte)
            };
            self.finish(decoded, out);
        }
    }

    fn linux_function_key(&mut self, byte: u8, out: &mut Vec<Key>) {
        match byte {
            b'A'..=b'E' => self.finish(Decoded::Key(Key::F(byte - b'A' + 1)), out),
            0x40..=0x7e => self.finish(Decoded::Unknown, out),
            _ => self.abort(byte, out),
        }
    }

    fn skip_overlong(&mut self, byte: u8, out: &mut Vec<Key>) {
        match byte {
            0x20..=0x3f => {}
            0x40..=0x7e => self.reset(),
            _ => {
                self.reset();
                self.ground(byte, out);
            }
        }
    }

    fn utf8(&mut self, byte: u8, expected_len: usize, out: &mut Vec<Key>) {
        let lead = self.buffer.first().copied().unwrap_or(0);
        // The second byte's range excludes overlong forms, surrogates and code points over
        // U+10FFFF (RFC 3629, table 3-7 of the Unicode standard).
        let continuation = match (self.buffered, lead) {
            (1, 0xe0) => 0xa0..=0xbf,
            (1, 0xed) => 0x80..=0x9f,
            (1, 0xf0) => 0x90..=0xbf,
            (1, 0xf4) => 0x80..=0x8f,
            _ => 0x80..=0xbf,
        };
        if !continuation.contains(&byte) {
            self.abort(byte, out);
            return;
        }
        self.push(byte);
        if self.buffered < expected_len {
            return;
        }
        let character = self
            .buffer
            .get(..self.buffered)
            .and_then(|bytes| core::str::from_utf8(bytes).ok())
            .and_then(|text| text.chars().next());
        self.reset();
        match character {
            Some(character) if !character.is_control() => out.push(Key::Char(character)),
            _ => self.count_discarded(),
        }
    }

    /// Drops the pending sequence or character (counted) because `byte` cannot continue it,
    /// and decodes `byte` afresh.
    fn abort(&mut self, byte: u8, out: &mut Vec<Key>) {
        self.count_discarded();
        self.reset();
        self.ground(byte, out);
    }

    fn finish(&mut self, decoded: Decoded, out: &mut Vec<Key>) {
        match decoded {
            Decoded::Key(key) => out.push(key),
            Decoded::CursorReport { row, column } => self.cursor_report = Some((row, column)),
            Decoded::Unknown => self.count_discarded(),
        }
        self.reset();
    }

    fn begin(&mut self, state: State, byte: u8) {
        self.reset();
        self.advance(state, byte);
    }

    fn advance(&mut self, state: State, byte: u8) {
        self.state = state;
        self.push(byte);
    }

    /// Callers check for room first; a full buffer drops the byte rather than panic.
    fn push(&mut self, byte: u8) {
        if let Some(slot) = self.buffer.get_mut(self.buffered) {
            *slot = byte;
            self.buffered += 1;
        }
    }

    fn reset(&mut self) {
        self.state = State::Ground;
        self.buffered = 0;
    }

    fn count_discarded(&mut self) {
        self.discarded = self.discarded.saturating_add(1);
    }
}

/// The length of the UTF-8 character `lead` starts, or `None` for a byte that starts none
/// (a continuation byte, an overlong 0xc0/0xc1, or 0xf5..0xff).
fn utf8_len(lead: u8) -> Option<usize> {
    match lead {
        0xc2..=0xdf => Some(2),
        0xe0..=0xef => Some(3),
        0xf0..=0xf4 => Some(4),
        _ => None,
    }
}

/// Numeric parameters `n;n;...` (an empty one is `None`: the default).
#[derive(Debug, Clone, Copy)]
struct Parameters {
    values: [Option<u16>; KeyDecoder::MAX_SEQUENCE_LEN],
    count: usize,
}

impl Parameters {
    /// `None` if any byte is not a digit or `;` (private markers, sub-parameters,
    /// intermediates) or a number does not fit a `u16`.
    fn parse(bytes: &[u8]) -> Option<Parameters> {
        let mut parameters = Parameters {
            values: [None; KeyDecoder::MAX_SEQUENCE_LEN],
            count: 0,
        };
        if bytes.is_empty() {
            return Some(parameters);
        }
        for field in bytes.split(|&byte| byte == b';') {
            let value = if field.is_empty() {
                None
            } else {
                let mut number: u16 = 0;
                for &byte in field {
                    if !byte.is_ascii_digit() {
                        return None;
                    }
                    number = number
                        .checked_mul(10)?
                        .checked_add(u16::from(byte - b'0'))?;
                }
                Some(number)
            };
            *parameters.values.get_mut(parameters.count)? = value;
            parameters.count += 1;
        }
        Some(parameters)
    }

    fn first(&self) -> Option<u16> {
        self.values.first().copied().flatten()
    }
}

/// Keys whose final byte is the same after `ESC [` and `ESC O`; modifiers are ignored.
fn common_final(final_byte: u8) -> Option<Key> {
    Some(match final_byte {
        b'A' => Key::Up,
        b'B' => Key::Down,
        b'C' => Key::Right,
        b'D' => Key::Left,
        b'H' => Key::Home,
        b'F' => Key::End,
        b'P' => Key::F(1),
        b'Q' => Key::F(2),
        b'S' => Key::F(4),
        _ => return None,
    })
}

/// `ESC [ parameters final`.
fn decode_csi(parameter_bytes: &[u8], final_byte: u8) -> Decoded {
    let Some(parameters) = Parameters::parse(parameter_bytes) else {
        return Decoded::Unknown;
    };
    if let Some(key) = common_final(final_byte) {
        return Decoded::Key(key);
    }
    match final_byte {
        b'Z' => Decoded::Key(Key::BackTab),
        b'R' => match (parameters.count, parameters.values) {
            (2, [Some(row), Some(column), ..]) => Decoded::CursorReport { row, column },
            _ => Decoded::Unknown,
        },
        // VT220 editing and function keys; `^`, `$`, `@` are rxvt's modified forms.
        b'~' | b'^' | b'$' | b'@' => {
            let key = match parameters.first() {
                Some(1 | 7) => Key::Home,
                Some(2) => Key::Insert,
                Some(3) => Key::Delete,
                Some(4 | 8) => Key::End,
                Some(5) => Key::PageUp,
                Some(6) => Key::PageDown,
                Some(11) => Key::F(1),
                Some(12) => Key::F(2),
                Some(13) => Key::F(3),
                Some(14) => Key::F(4),
                Some(15) => Key::F(5),
                Some(17) => Key::F(6),
                Some(18) => Key::F(7),
                Some(19) => Key::F(8),
                Some(20) => Key::F(9),
                Some(21) => Key::F(10),
                Some(23) => Key::F(11),
                Some(24) => Key::F(12),
                _ => return Decoded::Unknown,
            };
            Decoded::Key(key)
        }
        _ => Decoded::Unknown,
    }
}

/// `ESC O parameters final`: cursor and F1..F4 keys, and the application keypad.
fn decode_ss3(parameter_bytes: &[u8], final_byte: u8) -> Decoded {
    if Parameters::parse(parameter_bytes).is_none() {
        return Decoded::Unknown;
    }
    if let Some(key) = common_final(final_byte) {
        return Decoded::Key(key);
    }
    let key = match final_byte {
        b'R' => Key::F(3),
        b'M' => Key::Enter,
        b'X' => Key::Char('='),
        b'j' => Key::Char('*'),
        b'k' => Key::Char('+'),
        b'l' => Key::Char(','),
        b'm' => Key::Char('-'),
        b'n' => Key::Char('.'),
        b'o' => Key::Char('/'),
        b'p'..=b'y' => Key::Char(char::from(final_byte - b'p' + b'0')),
        _ => return Decoded::Unknown,
    };
    Decoded::Key(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use alloc::vec;

    const TIMEOUT: u64 = KeyDecoder::DEFAULT_ESC_TIMEOUT_MS;

    /// Decodes `bytes` fed whole, then lets any pending state time out.
    fn decode(bytes: &[u8]) -> (Vec<Key>, u64) {
        let mut decoder = KeyDecoder::default();
        let mut keys = Vec::new();
        decoder.feed(bytes, 0, &mut keys);
        decoder.handle_timeout(TIMEOUT, &mut keys);
        assert_eq!(decoder.poll_timeout(), None);
        (keys, decoder.discarded())
    }

    fn keys(bytes: &[u8]) -> Vec<Key> {
        let (keys, discarded) = decode(bytes);
        assert_eq!(discarded, 0, "{bytes:?}");
        keys
    }

    #[test]
    fn keys_plain_bytes() {
        assert_eq!(
            keys(b"aZ~ 0"),
            [
                Key::Char('a'),
                Key::Char('Z'),
                Key::Char('~'),
                Key::Char(' '),
                Key::Char('0')
            ]
        );
        assert_eq!(keys(b"\t"), [Key::Tab]);
        assert_eq!(keys(b"\x7f\x08"), [Key::Backspace, Key::Backspace]);
    }

    #[test]
    fn keys_enter_from_cr_lf_and_cr_lf() {
        assert_eq!(keys(b"\r"), [Key::Enter]);
        assert_eq!(keys(b"\n"), [Key::Enter]);
        assert_eq!(keys(b"\r\n"), [Key::Enter]);
        assert_eq!(keys(b"\r\r\n\n"), [Key::Enter, Key::Enter, Key::Enter]);
        assert_eq!(keys(b"\n\r"), [Key::Enter, Key::Enter]);
        assert_eq!(keys(b"\ra\n"), [Key::Enter, Key::Char('a'), Key::Enter]);
        // CR at the end of one read, LF at the start of the next, even much later.
        let mut decoder = KeyDecoder::default();
        let mut out = Vec::new();
        decoder.feed(b"x\r", 0, &mut out);
        decoder.feed(b"\ny", 5_000, &mut out);
        assert_eq!(out, [Key::Char('x'), Key::Enter, Key::Char('y')]);
    }

    #[test]
    fn keys_control_bytes() {
        for (byte, letter) in [
            (0x01, 'a'),
            (0x03, 'c'),
            (0x04, 'd'),
            (0x0c, 'l'),
            (0x1a, 'z'),
            (0x1c, '\\'),
            (0x1d, ']'),
            (0x1e, '^'),
            (0x1f, '_'),
        ] {
            assert_eq!(keys(&[byte]), [Key::Ctrl(letter)], "{byte:#x}");
        }
        for byte in 0x01..=0x1au8 {
            let expected = match byte {
                0x08 => Key::Backspace,
                0x09 => Key::Tab,
                0x0a | 0x0d => Key::Enter,
                _ => Key::Ctrl(char::from(b'a' + byte - 1)),
            };
            assert_eq!(keys(&[byte]), [expected], "{byte:#x}");
        }
        assert_eq!(decode(b"\0a\0"), (vec![Key::Char('a')], 2));
    }

    #[test]
    fn keys_cursor_and_editing() {
        let cases: &[(&[u8], Key)] = &[
            (b"\x1b[A", Key::Up),
            (b"\x1b[B", Key::Down),
            (b"\x1b[C", Key::Right),
            (b"\x1b[D", Key::Left),
            (b"\x1bOA", Key::Up),
            (b"\x1bOB", Key::Down),
            (b"\x1bOC", Key::Right),
            (b"\x1bOD", Key::Left),
            (b"\x1b[H", Key::Home),
            (b"\x1b[F", Key::End),
            (b"\x1bOH", Key::Home),
            (b"\x1bOF", Key::End),
            (b"\x1b[1~", Key::Home),
            (b"\x1b[4~", Key::End),
            (b"\x1b[7~", Key::Home),
            (b"\x1b[8~", Key::End),
            (b"\x1b[2~", Key::Insert),
            (b"\x1b[3~", Key::Delete),
            (b"\x1b[5~", Key::PageUp),
            (b"\x1b[6~", Key::PageDown),
            (b"\x1b[Z", Key::BackTab),
            (b"\x1bOM", Key::Enter),
            (b"\x1bOp", Key::Char('0')),
            (b"\x1bOy", Key::Char('9')),
            (b"\x1bOk", Key::Char('+')),
        ];
        for &(bytes, key) in cases {
            assert_eq!(keys(bytes), [key], "{bytes:?}");
        }
    }

    #[test]
    fn keys_modifiers_decode_to_the_base_key() {
        let cases: &[(&[u8], Key)] = &[
            (b"\x1b[1;5A", Key::Up),
            (b"\x1b[1;2B", Key::Down),
            (b"\x1b[1;3C", Key::Right),
            (b"\x1b[1;8D", Key::Left),
            (b"\x1b[1;5H", Key::Home),
            (b"\x1b[1;2F", Key::End),
            (b"\x1b[3;5~", Key::Delete),
            (b"\x1b[15;2~", Key::F(5)),
            (b"\x1b[1;2P", Key::F(1)),
            (b"\x1b[1;5S", Key::F(4)),
            (b"\x1bO5A", Key::Up),
            (b"\x1bO1;2P", Key::F(1)),
            (b"\x1b[3^", Key::Delete),
            (b"\x1b[5$", Key::PageUp),
            (b"\x1b[24@", Key::F(12)),
        ];
        for &(bytes, key) in cases {
            assert_eq!(keys(bytes), [key], "{bytes:?}");
        }
    }

    #[test]
    fn keys_function_keys() {
        let cases: &[(&[u8], u8)] = &[
            (b"\x1bOP", 1),
            (b"\x1bOQ", 2),
            (b"\x1bOR", 3),
            (b"\x1bOS", 4),
            (b"\x1b[11~", 1),
            (b"\x1b[12~", 2),
            (b"\x1b[13~", 3),
            (b"\x1b[14~", 4),
            (b"\x1b[15~", 5),
            (b"\x1b[17~", 6),
            (b"\x1b[18~", 7),
            (b"\x1b[19~", 8),
            (b"\x1b[20~", 9),
            (b"\x1b[21~", 10),
            (b"\x1b[23~", 11),
            (b"\x1b[24~", 12),
            (b"\x1b[[A", 1),
            (b"\x1b[[E", 5),
        ];
        for &(bytes, number) in cases {
            assert_eq!(keys(bytes), [Key::F(number)], "{bytes:?}");
        }
    }

    #[test]
    fn keys_cursor_report_is_not_a_key() {
        let mut decoder = KeyDecoder::default();
        let mut out = Vec::new();
        decoder.feed(b"a\x1b[24;80Rb", 0, &mut out);
        assert_eq!(out, [Key::Char('a'), Key::Char('b')]);
        assert_eq!(decoder.take_cursor_report(), Some((24, 80)));
        assert_eq!(decoder.take_cursor_report(), None);
        decoder.feed(b"\x1b[1;1R\x1b[999;65535R", 0, &mut out);
        assert_eq!(decoder.take_cursor_report(), Some((999, 65535)));
        assert_eq!(out.len(), 2);
        assert_eq!(decoder.discarded(), 0);
        // Not a report: one number, or a number over u16.
        assert_eq!(decode(b"\x1b[5R\x1b[1;65536R"), (vec![], 2));
    }

    #[test]
    fn keys_alt_is_esc_then_the_key() {
        assert_eq!(keys(b"\x1bx"), [Key::Esc, Key::Char('x')]);
        assert_eq!(keys(b"\x1b\x1b"), [Key::Esc, Key::Esc]);
        assert_eq!(keys(b"\x1b\x1b[A"), [Key::Esc, Key::Up]);
        assert_eq!(keys(b"\x1b\r"), [Key::Esc, Key::Enter]);
        assert_eq!(keys(b"\x1b\x03"), [Key::Esc, Key::Ctrl('c')]);
        assert_eq!(keys("\x1bé".as_bytes()), [Key::Esc, Key::Char('é')]);
    }

    #[test]
    fn keys_unknown_sequences_are_swallowed_and_counted() {
        assert_eq!(
            decode(b"a\x1b[99~b\x1b[?1;2cc\x1b[200~d\x1bOzf\x1b[[Zg\x1b[1:2Ah\x1b[ qi"),
            (
                vec![
                    Key::Char('a'),
                    Key::Char('b'),
                    Key::Char('c'),
                    Key::Char('d'),
                    Key::Char('f'),
                    Key::Char('g'),
                    Key::Char('h'),
                    Key::Char('i')
                ],
                7
            )
        );
        // Cut by a byte that cannot continue it: dropped, and the byte decoded.
        assert_eq!(decode(b"\x1b[1;5\x1b[B"), (vec![Key::Down], 1));
        assert_eq!(decode(b"\x1b[12\r"), (vec![Key::Enter], 1));
        assert_eq!(decode("\x1b[3é".as_bytes()), (vec![Key::Char('é')], 1));
    }

    #[test]
    fn keys_overlong_sequences_are_dropped_whole() {
        // 16 bytes: still decoded (a parameter with leading zeros).
        let longest = b"\x1b[0000000000005~";
        assert_eq!(longest.len(), KeyDecoder::MAX_SEQUENCE_LEN);
        assert_eq!(keys(longest), [Key::PageUp]);
        // 17 bytes, ending with the final byte: dropped, nothing leaks.
        assert_eq!(decode(b"\x1b[00000000000005~x"), (vec![Key::Char('x')], 1));
        // Far longer: dropped once, the rest swallowed up to the final byte.
        let mut bytes = b"\x1b[".to_vec();
        bytes.extend(core::iter::repeat_n(b'9', 1000));
        bytes.extend(b";5Hxy");
        assert_eq!(decode(&bytes), (vec![Key::Char('x'), Key::Char('y')], 1));
    }

    #[test]
    fn keys_utf8() {
        assert_eq!(
            keys("é€😀ü".as_bytes()),
            [
                Key::Char('é'),
                Key::Char('€'),
                Key::Char('😀'),
                Key::Char('ü')
            ]
        );
        // Split across reads at every byte.
        let mut decoder = KeyDecoder::default();
        let mut out = Vec::new();
        for (time, byte) in (0..).zip("€😀".as_bytes()) {
            decoder.feed(&[*byte], time, &mut out);
        }
        assert_eq!(out, [Key::Char('€'), Key::Char('😀')]);
        let invalid: &[(&[u8], usize, u64)] = &[
            (b"\xff", 0, 1),             // never in UTF-8
            (b"\x80", 0, 1),             // continuation without lead
            (b"\xc0\xaf", 0, 2),         // overlong '/'
            (b"\xe0\x80\xaf", 0, 3),     // overlong
            (b"\xed\xa0\x80", 0, 3),     // surrogate
            (b"\xf4\x90\x80\x80", 0, 4), // over U+10FFFF
            (b"\xc3a", 1, 1),            // cut by ASCII
            (b"\xe2\x82", 0, 1),         // cut by the timeout
            (b"\x9b", 0, 1),             // 8-bit CSI (C1)
            (b"\xc2\x9b", 0, 1),         // U+009B, a C1 control
        ];
        for &(bytes, key_count, discarded) in invalid {
            let (keys, counted) = decode(bytes);
            assert_eq!((keys.len(), counted), (key_count, discarded), "{bytes:?}");
        }
        assert_eq!(
            decode(b"\xc3\xa9\xff\xc3\xa9"),
            (vec![Key::Char('é'); 2], 1)
        );
    }

    #[test]
    fn keys_lone_esc_after_the_timeout() {
        let mut decoder = KeyDecoder::new(TIMEOUT);
        let mut out = Vec::new();
        assert_eq!(decoder.poll_timeout(), None);
        decoder.feed(b"\x1b", 1_000, &mut out);
        assert!(out.is_empty());
        assert_eq!(decoder.poll_timeout(), Some(1_000 + TIMEOUT));
        decoder.handle_timeout(1_000 + TIMEOUT - 1, &mut out);
        assert!(out.is_empty());
        decoder.handle_timeout(1_000 + TIMEOUT, &mut out);
        assert_eq!(out, [Key::Esc]);
        assert_eq!(decoder.poll_timeout(), None);
        assert_eq!(decoder.discarded(), 0);
        decoder.handle_timeout(5_000, &mut out);
        assert_eq!(out, [Key::Esc]);
    }

    #[test]
    fn keys_late_feed_handles_the_missed_deadline_first() {
        let mut decoder = KeyDecoder::default();
        let mut out = Vec::new();
        decoder.feed(b"\x1b", 0, &mut out);
        decoder.feed(b"[A", TIMEOUT, &mut out);
        assert_eq!(out, [Key::Esc, Key::Char('['), Key::Char('A')]);
        // Within the timeout, the same bytes are one key; the deadline follows the last read.
        out.clear();
        decoder.feed(b"\x1b", 1_000, &mut out);
        decoder.feed(b"[", 1_000 + TIMEOUT - 1, &mut out);
        assert_eq!(decoder.poll_timeout(), Some(1_000 + 2 * TIMEOUT - 1));
        decoder.feed(b"A", 1_000 + 2 * TIMEOUT - 2, &mut out);
        assert_eq!(out, [Key::Up]);
    }

    #[test]
    fn keys_incomplete_sequence_at_timeout_is_discarded() {
        for bytes in [&b"\x1b["[..], b"\x1b[1;", b"\x1bO", b"\x1b[["] {
            let mut decoder = KeyDecoder::default();
            let mut out = Vec::new();
            decoder.feed(bytes, 10, &mut out);
            assert_eq!(decoder.poll_timeout(), Some(10 + TIMEOUT));
            decoder.handle_timeout(10 + TIMEOUT, &mut out);
            assert!(out.is_empty(), "{bytes:?}");
            assert_eq!(decoder.discarded(), 1, "{bytes:?}");
            assert_eq!(decoder.pending_len(), 0);
            decoder.feed(b"A", 1_000, &mut out);
            assert_eq!(out, [Key::Char('A')], "{bytes:?}");
        }
    }

    /// Text, UTF-8, arrows, F-keys, CR LF, BackTab, a cursor report, unknown and over-long
    /// sequences, Alt+x, control keys, noise.
    fn mixed_input() -> (Vec<u8>, Vec<Key>) {
        let mut bytes = Vec::new();
        let mut keys = Vec::new();
        let parts: &[(&[u8], &[Key])] = &[
            (b"ab", &[Key::Char('a'), Key::Char('b')]),
            (
                "é€😀".as_bytes(),
                &[Key::Char('é'), Key::Char('€'), Key::Char('😀')],
            ),
            (b"\x1b[A\x1bOB", &[Key::Up, Key::Down]),
            (b"\x1b[1;5C\x1b[D", &[Key::Right, Key::Left]),
            (
                b"\x1bOP\x1b[15~\x1b[24~",
                &[Key::F(1), Key::F(5), Key::F(12)],
            ),
            (
                b"x\r\ny\r\r\n",
                &[
                    Key::Char('x'),
                    Key::Enter,
                    Key::Char('y'),
                    Key::Enter,
                    Key::Enter,
                ],
            ),
            (b"\x1b[Z\t", &[Key::BackTab, Key::Tab]),
            (b"\x1b[24;80R", &[]),
            (b"\x1b[99~\x1b[?25h", &[]),
            (
                b"\x1b[3~\x1b[5~\x1b[H\x1b[4~",
                &[Key::Delete, Key::PageUp, Key::Home, Key::End],
            ),
            (
                b"\x1bq\x03\x1a\x7f",
                &[
                    Key::Esc,
                    Key::Char('q'),
                    Key::Ctrl('c'),
                    Key::Ctrl('z'),
                    Key::Backspace,
                ],
            ),
            (b"\x1b[1111111111111111111111;5H", &[]),
            (b"\xff\0", &[]),
            (
                "z\x1b\x1b[[Bü\n".as_bytes(),
                &[
                    Key::Char('z'),
                    Key::Esc,
                    Key::F(2),
                    Key::Char('ü'),
                    Key::Enter,
                ],
            ),
        ];
        for (part_bytes, part_keys) in parts {
            bytes.extend_from_slice(part_bytes);
            keys.extend_from_slice(part_keys);
        }
        (bytes, keys)
    }

    /// Feeds `chunks` with `gap_ms` between reads, then lets everything time out.
    fn decode_chunks<'a>(
        chunks: impl IntoIterator<Item = &'a [u8]>,
        gap_ms: u64,
    ) -> (Vec<Key>, u64, Option<(u16, u16)>) {
        let mut decoder = KeyDecoder::default();
        let mut out = Vec::new();
        let mut now = 0;
        for chunk in chunks {
            decoder.feed(chunk, now, &mut out);
            assert!(decoder.poll_timeout().is_none_or(|deadline| deadline > now));
            now += gap_ms;
        }
        decoder.handle_timeout(now + TIMEOUT, &mut out);
        (out, decoder.discarded(), decoder.take_cursor_report())
    }

    #[test]
    fn keys_same_for_every_split() {
        let (bytes, expected_keys) = mixed_input();
        let whole = decode_chunks([&bytes[..]], 0);
        assert_eq!(whole, (expected_keys, 5, Some((24, 80))));
        for split in 0..=bytes.len() {
            let (head, tail) = bytes.split_at(split);
            assert_eq!(
                decode_chunks([head, tail], TIMEOUT - 1),
                whole,
                "split at {split}"
            );
        }
        assert_eq!(
            decode_chunks(bytes.chunks(1), TIMEOUT - 1),
            whole,
            "one byte per read"
        );
        for size in 2..8 {
            assert_eq!(
                decode_chunks(bytes.chunks(size), 1),
                whole,
                "{size} bytes per read"
            );
        }
    }

    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn assert_plausible(key: Key) {
        match key {
            Key::Char(character) => assert!(!character.is_control(), "{key:?}"),
            Key::Ctrl(character) => {
                assert!(character.is_ascii_lowercase() || "\\]^_".contains(character));
            }
            Key::F(number) => assert!((1..=12).contains(&number), "{key:?}"),
            _ => {}
        }
    }

    /// 1 MB of pseudo-random bytes, in random reads at random times: no panic, the buffer
    /// stays within its bound, every key is one the UI can get. `escape_heavy` makes most
    /// bytes ESC, `[`, `O`, digits, `;` and final bytes, to reach every state.
    fn random_noise(seed: u64, escape_heavy: bool) {
        const ALPHABET: &[u8] = b"\x1b\x1b\x1b[[[OO0123456789;;~~ABCDHFPQRSZRu\r\n\xc3\xa9\xe2\x82";
        let mut random = XorShift(seed);
        let mut decoder = KeyDecoder::new(TIMEOUT);
        let mut out = Vec::new();
        let mut now = 0u64;
        let mut total = 0usize;
        let mut chunk = Vec::new();
        while total < 1 << 20 {
            let length = usize::try_from(random.next() % 64).unwrap() + 1;
            chunk.clear();
            for _ in 0..length {
                let value = random.next();
                let byte = if escape_heavy && !value.is_multiple_of(4) {
                    ALPHABET[usize::try_from((value >> 8) % 64).unwrap() % ALPHABET.len()]
                } else {
                    value.to_le_bytes()[3]
                };
                chunk.push(byte);
            }
            total += length;
            now += random.next() % (TIMEOUT + TIMEOUT / 2);
            if decoder
                .poll_timeout()
                .is_some_and(|deadline| deadline <= now)
            {
                decoder.handle_timeout(now, &mut out);
            }
            decoder.feed(&chunk, now, &mut out);
            assert!(decoder.pending_len() <= KeyDecoder::MAX_SEQUENCE_LEN);
            out.drain(..).for_each(assert_plausible);
            let _ = decoder.take_cursor_report();
        }
        decoder.handle_timeout(now + TIMEOUT, &mut out);
        assert_eq!(decoder.pending_len(), 0);
        assert_eq!(decoder.poll_timeout(), None);
        assert!(decoder.discarded() > 0);
    }

    #[test]
    fn keys_random_bytes_never_panic_and_stay_bounded() {
        random_noise(0x9e37_79b9_7f4a_7c15, false);
        random_noise(0x2545_f491_4f6c_dd1d, true);
    }
}
