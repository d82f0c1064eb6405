//! A ratatui [`Backend`] that drives a VT100 over a serial line.
//!
//! crossterm cannot drive the board's serial console: a serial tty reports a 0 x 0 window
//! size, crossterm asks the terminal for the cursor position on `clear` (an answer that may
//! never come over a serial line, or arrives mixed into the keystrokes), and it emits
//! 256-colour and truecolour codes that a VT100 shows as garbage. This backend never reads
//! from the terminal: the size is fixed by the caller (probed once, if wanted, with
//! [`SIZE_PROBE`] and [`size_from_cursor_report`]), and the cursor position, the graphic
//! rendition (SGR) and the G0 character set are tracked from the bytes already sent.
//!
//! At 115200 baud a byte costs ~87 us, so [`SerialBackend::draw`] sends as little as it can:
//! ratatui's `Terminal` hands it only the changed cells; consecutive cells need no cursor
//! movement, other jumps take the shortest of an absolute `CUP`, a relative move or a `CR`;
//! SGR is sent only when the rendition changes, and only the basic 8/16 ANSI colours (other
//! colours are mapped to the nearest of those: colour is decoration here, never meaning).
//!
//! Glyphs ([`GlyphMode`]): in `Ascii` every non-ASCII symbol is sent as `?` (a terminal
//! without UTF-8 would show the bytes as garbage); in `Utf8` symbols are sent as they are;
//! in `DecLineDrawing` box-drawing characters are sent in the DEC special graphics set
//! (`ESC ( 0`), switching the character set only at the ends of a run.
//!
//! Control characters in a cell are never sent (they would reach the terminal as commands):
//! they are shown as `?` in every mode.

use alloc::vec::Vec;
use core::fmt;

use embedded_io::{Error as _, ErrorKind, Write};
use ratatui_core::backend::{Backend, ClearType, WindowSize};
use ratatui_core::buffer::{Cell, CellDiffOption, CellWidth};
use ratatui_core::layout::{Position, Size};
use ratatui_core::style::{Color, Modifier};

use crate::glyphs::GlyphMode;

/// Asks the terminal for its size, busybox `resize` style: save the cursor, reset the
/// scrolling region, move to (999, 999) (the terminal stops at its last row and column),
/// ask for the cursor position (`ESC [ row ; col R` comes back), restore the cursor.
/// Feed the reported row and column to [`size_from_cursor_report`].
pub const SIZE_PROBE: &[u8] = b"\x1b7\x1b[r\x1b[999;999H\x1b[6n\x1b8";

/// The smallest terminal the size probe accepts (columns x rows).
const SMALLEST_PROBED_SIZE: Size = Size::new(20, 10);
/// The largest terminal the size probe accepts (columns x rows).
const LARGEST_PROBED_SIZE: Size = Size::new(255, 255);

/// What to send once when the UI starts: reset the attributes, select US ASCII as G0,
/// reset the scrolling region (cursor moves with `LF` must never scroll), turn autowrap off
/// (so writing the last cell of the last line never scrolls the screen), hide the cursor,
/// clear the screen and home the cursor.
pub fn init_sequence() -> &'static [u8] {
    b"\x1b[0m\x1b(B\x1b[r\x1b[?7l\x1b[?25l\x1b[2J\x1b[H"
}

/// What to send when the UI exits: reset the attributes and the character set, autowrap
/// back on, show the cursor, clear the screen and home the cursor.
pub fn exit_sequence() -> &'static [u8] {
    b"\x1b[0m\x1b(B\x1b[?7h\x1b[?25h\x1b[2J\x1b[H"
}

/// The terminal size from the answer to [`SIZE_PROBE`] (`ESC [ row ; col R`, 1-based), or
/// `None` when it is not a plausible console (smaller than 20 x 10 or larger than
/// 255 x 255 columns x rows); then keep the default 80 x 24.
pub fn size_from_cursor_report(row: u16, col: u16) -> Option<Size> {
    let columns_fit = (SMALLEST_PROBED_SIZE.width..=LARGEST_PROBED_SIZE.width).contains(&col);
    let rows_fit = (SMALLEST_PROBED_SIZE.height..=LARGEST_PROBED_SIZE.height).contains(&row);
    (columns_fit && rows_fit).then_some(Size::new(col, row))
}

/// Writing to the serial line failed; the backend forgets what it knew of the terminal's
/// state, so the next frame repositions and restyles from scratch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SerialError {
    kind: ErrorKind,
}

impl SerialError {
    /// What kind of IO error the writer reported (`WriteZero` if it accepted no bytes).
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
}

impl From<ErrorKind> for SerialError {
    fn from(kind: ErrorKind) -> Self {
        SerialError { kind }
    }
}

impl fmt::Display for SerialError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "writing to the serial console failed: {:?}",
            self.kind
        )
    }
}

impl core::error::Error for SerialError {}

impl embedded_io::Error for SerialError {
    fn kind(&self) -> ErrorKind {
        self.kind
    }
}

/// Where the terminal's cursor is, as far as the bytes sent tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TerminalCursor {
    Known(Position),
    /// A glyph was written into the last column: the cursor stays there, possibly with a
    /// wrap pending (autowrap on), so only `CR` or an absolute move is safe from here.
    AtRightMargin {
        row: u16,
    },
    Unknown,
}

/// The G0 character set selected on the terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CharacterSet {
    UsAscii,
    DecSpecialGraphics,
}

/// One of the 16 basic ANSI colours: 0-7 normal (SGR 30-37 / 40-47), 8-15 bright
/// (SGR 90-97 / 100-107).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BasicColor(u8);

impl BasicColor {
    fn foreground_parameter(self) -> u8 {
        if self.0 < 8 {
            30 + self.0
        } else {
            90 + (self.0 - 8)
        }
    }

    fn background_parameter(self) -> u8 {
        self.foreground_parameter() + 10
    }
}

/// The graphic rendition a VT100 can show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Rendition {
    /// Only [`RENDITION_ATTRIBUTES`].
    attributes: Modifier,
    foreground: Option<BasicColor>,
    background: Option<BasicColor>,
}

/// The attributes sent, with their SGR parameters. Italic and crossed-out are dropped (a
/// VT100 has neither), rapid blink is sent as blink, hidden cells are sent as blanks.
const RENDITION_ATTRIBUTES: [(Modifier, u8); 5] = [
    (Modifier::BOLD, 1),
    (Modifier::DIM, 2),
    (Modifier::UNDERLINED, 4),
    (Modifier::SLOW_BLINK, 5),
    (Modifier::REVERSED, 7),
];

impl Rendition {
    fn of(cell: &Cell) -> Rendition {
        let mut attributes = Modifier::empty();
        for (attribute, _) in RENDITION_ATTRIBUTES {
            if cell.modifier.contains(attribute) {
                attributes |= attribute;
            }
        }
        if cell.modifier.contains(Modifier::RAPID_BLINK) {
            attributes |= Modifier::SLOW_BLINK;
        }
        let mut foreground = nearest_basic_color(cell.fg);
        let mut background = nearest_basic_color(cell.bg);
        if foreground.is_some() && foreground == background && cell.fg != cell.bg {
            // Two different colours that map to the same basic one would hide the text.
            foreground = None;
            background = None;
        }
        Rendition {
            attributes,
            foreground,
            background,
        }
    }
}

/// The xterm RGB values of the 16 basic colours, to find the nearest one.
const BASIC_COLOR_RGB: [(u8, u8, u8); 16] = [
    (0, 0, 0),
    (205, 0, 0),
    (0, 205, 0),
    (205, 205, 0),
    (0, 0, 238),
    (205, 0, 205),
    (0, 205, 205),
    (229, 229, 229),
    (127, 127, 127),
    (255, 0, 0),
    (0, 255, 0),
    (255, 255, 0),
    (92, 92, 255),
    (255, 0, 255),
    (0, 255, 255),
    (255, 255, 255),
];

/// The channel levels of the xterm 6 x 6 x 6 colour cube (indexes 16-231).
const COLOR_CUBE_LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];

/// The basic colour a ratatui colour is sent as; `None` for the terminal's default.
fn nearest_basic_color(color: Color) -> Option<BasicColor> {
    let index = match color {
        Color::Reset => return None,
        Color::Black => 0,
        Color::Red => 1,
        Color::Green => 2,
        Color::Yellow => 3,
        Color::Blue => 4,
        Color::Magenta => 5,
        Color::Cyan => 6,
        Color::Gray => 7,
        Color::DarkGray => 8,
        Color::LightRed => 9,
        Color::LightGreen => 10,
        Color::LightYellow => 11,
        Color::LightBlue => 12,
        Color::LightMagenta => 13,
        Color::LightCyan => 14,
        Color::White => 15,
        Color::Indexed(index @ 0..=15) => index,
        Color::Indexed(index @ 16..=231) => {
            let cube_index = index - 16;
            let level = |step: u8| COLOR_CUBE_LEVELS[usize::from(step % 6)];
            nearest_rgb(
                level(cube_index / 36),
                level(cube_index / 6),
                level(cube_index),
            )
        }
        Color::Indexed(grey_index) => {
            let grey = 8 + (grey_index - 232) * 10;
            nearest_rgb(grey, grey, grey)
        }
        Color::Rgb(red, green, blue) => nearest_rgb(red, green, blue),
    };
    Some(BasicColor(index))
}

fn nearest_rgb(red: u8, green: u8, blue: u8) -> u8 {
    let distance = |(basic_red, basic_green, basic_blue): (u8, u8, u8)| {
        let square = |a: u8, b: u8| u32::from(a.abs_diff(b)).pow(2);
        square(red, basic_red) + square(green, basic_green) + square(blue, basic_blue)
    };
    let mut nearest = 0;
    let mut nearest_distance = u32::MAX;
    for (index, rgb) in (0u8..).zip(BASIC_COLOR_RGB) {
        let candidate_distance = distance(rgb);
        if candidate_distance < nearest_distance {
            nearest = index;
            nearest_distance = candidate_distance;
        }
    }
    nearest
}

/// `;parameter` for everything `wanted` shows that `current` does not.
fn rendition_parameters(current: Rendition, wanted: Rendition) -> ShortSequence {
    let mut parameters = ShortSequence::new();
    let mut push_parameter = |parameter: u8| {
        parameters.push(b';');
        parameters.push_decimal(u32::from(parameter));
    };
    for (attribute, parameter) in RENDITION_ATTRIBUTES {
        if wanted.attributes.contains(attribute) && !current.attributes.contains(attribute) {
            push_parameter(parameter);
        }
    }
    if wanted.foreground != current.foreground {
        if let Some(foreground) = wanted.foreground {
            push_parameter(foreground.foreground_parameter());
        }
    }
    if wanted.background != current.background {
        if let Some(background) = wanted.background {
            push_parameter(background.background_parameter());
        }
    }
    parameters
}

/// The DEC special graphics letter for a box-drawing character (or one of the few other
/// symbols the set has): heavy, double, rounded and dashed lines become the plain ones.
fn dec_special_graphic(symbol: char) -> Option<u8> {
    let letter = match symbol {
        '─' | '━' | '═' | '┄' | '┅' | '┈' | '┉' | '╌' | '╍' | '╴' | '╶' | '╸' | '╺' => {
            b'q'
        }
        '│' | '┃' | '║' | '┆' | '┇' | '┊' | '┋' | '╎' | '╏' | '╵' | '╷' | '╹' | '╻' => {
            b'x'
        }
        '┌' | '┍' | '┎' | '┏' | '╒' | '╓' | '╔' | '╭' => b'l',
        '┐' | '┑' | '┒' | '┓' | '╕' | '╖' | '╗' | '╮' => b'k',
        '└' | '┕' | '┖' | '┗' | '╘' | '╙' | '╚' | '╰' => b'm',
        '┘' | '┙' | '┚' | '┛' | '╛' | '╜' | '╝' | '╯' => b'j',
        '├' | '┝' | '┞' | '┟' | '┠' | '┡' | '┢' | '┣' | '╞' | '╟' | '╠' => {
            b't'
        }
        '┤' | '┥' | '┦' | '┧' | '┨' | '┩' | '┪' | '┫' | '╡' | '╢' | '╣' => {
            b'u'
        }
        '┬' | '┭' | '┮' | '┯' | '┰' | '┱' | '┲' | '┳' | '╤' | '╥' | '╦' => {
            b'w'
        }
        '┴' | '┵' | '┶' | '┷' | '┸' | '┹' | '┺' | '┻' | '╧' | '╨' | '╩' => {
            b'v'
        }
        '┼' | '┽' | '┾' | '┿' | '╀' | '╁' | '╂' | '╃' | '╄' | '╅' | '╆' | '╇' | '╈' | '╉' | '╊'
        | '╋' | '╪' | '╫' | '╬' => b'n',
        '◆' => b'`',
        '░' | '▒' | '▓' => b'a',
        '°' => b'f',
        '±' => b'g',
        '▔' => b'o',
        '▁' => b's',
        '≤' => b'y',
        '≥' => b'z',
        'π' => b'{',
        '≠' => b'|',
        '£' => b'}',
        '·' => b'~',
        _ => return None,
    };
    Some(letter)
}

/// Bytes that mean the same in US ASCII and in DEC special graphics (the graphics replace
/// only `_` to `~`), so sending them needs no character set switch.
fn same_in_both_character_sets(byte: u8) -> bool {
    (0x20..=0x5e).contains(&byte)
}

fn is_printable_ascii(byte: u8) -> bool {
    (0x20..=0x7e).contains(&byte)
}

/// What is sent for a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Glyph<'a> {
    /// Printable ASCII, or (in UTF-8 mode) a grapheme without control characters.
    Text(&'a str),
    /// A letter of the DEC special graphics set.
    DecSpecialGraphic(u8),
    /// `?`: a symbol this terminal cannot show.
    Substitute,
    /// A space: a hidden cell, or a symbol without width.
    Blank,
}

impl Glyph<'_> {
    /// The columns the terminal advances when it prints this glyph.
    fn columns(self) -> u16 {
        match self {
            Glyph::Text(text) => text.cell_width(),
            Glyph::DecSpecialGraphic(_) | Glyph::Substitute | Glyph::Blank => 1,
        }
    }
}

/// How many columns ratatui gives a cell (at least one).
fn cell_columns(cell: &Cell) -> u16 {
    let columns = match cell.diff_option {
        CellDiffOption::ForcedWidth(width) => width.get(),
        _ if cell.symbol().chars().any(char::is_control) => 1,
        _ => cell.symbol().cell_width(),
    };
    columns.max(1)
}

/// A short escape sequence, built on the stack to compare the lengths of cursor moves.
#[derive(Debug, Clone, Copy)]
struct ShortSequence {
    bytes: [u8; 32],
    length: usize,
    overflowed: bool,
}

impl ShortSequence {
    fn new() -> ShortSequence {
        ShortSequence {
            bytes: [0; 32],
            length: 0,
            overflowed: false,
        }
    }

    fn push(&mut self, byte: u8) {
        match self.bytes.get_mut(self.length) {
            Some(slot) => {
                *slot = byte;
                self.length += 1;
            }
            None => self.overflowed = true,
        }
    }

    fn push_all(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.push(byte);
        }
    }

    fn push_decimal(&mut self, value: u32) {
        let mut digits = [0u8; 10]; // a u32 has at most 10 digits
        let mut first_digit = digits.len();
        let mut remaining = value;
        loop {
            first_digit -= 1;
            digits[first_digit] = b'0' + u8::try_from(remaining % 10).unwrap_or_default();
            remaining /= 10;
            if remaining == 0 {
                break;
            }
        }
        self.push_all(digits.get(first_digit..).unwrap_or_default());
    }

    /// `ESC [ n <final>`, with `n` left out when it is 1 (the default).
    fn push_csi_count(&mut self, count: u16, final_byte: u8) {
        self.push_all(b"\x1b[");
        if count != 1 {
            self.push_decimal(u32::from(count));
        }
        self.push(final_byte);
    }

    fn as_bytes(&self) -> &[u8] {
        self.bytes.get(..self.length).unwrap_or_default()
    }

    /// The cost of sending this sequence; an overflowed one is never chosen.
    fn cost(&self) -> usize {
        if self.overflowed {
            usize::MAX
        } else {
            self.length
        }
    }
}

/// `CUP`: `ESC [ row ; col H` (1-based), shortened when the row or column is the first.
fn absolute_move(target: Position) -> ShortSequence {
    let mut sequence = ShortSequence::new();
    sequence.push_all(b"\x1b[");
    if target.x == 0 {
        if target.y != 0 {
            sequence.push_decimal(u32::from(target.y) + 1);
        }
    } else {
        sequence.push_decimal(u32::from(target.y) + 1);
        sequence.push(b';');
        sequence.push_decimal(u32::from(target.x) + 1);
    }
    sequence.push(b'H');
    sequence
}

/// Up or down from `from_row` to `to_row`; at the start of a line a down move of one or
/// two rows is sent as `LF`s (the init sequence resets the scrolling region, and a move
/// down never passes the last row, so they never scroll).
fn push_vertical_move(
    sequence: &mut ShortSequence,
    from_row: u16,
    to_row: u16,
    at_line_start: bool,
) {
    if to_row > from_row {
        let rows = to_row - from_row;
        if at_line_start && rows <= 2 {
            for _ in 0..rows {
                sequence.push(b'\n');
            }
        } else {
            sequence.push_csi_count(rows, b'B');
        }
    } else if to_row < from_row {
        sequence.push_csi_count(from_row - to_row, b'A');
    }
}

fn push_horizontal_move(sequence: &mut ShortSequence, from_column: u16, to_column: u16) {
    if to_column > from_column {
        sequence.push_csi_count(to_column - from_column, b'C');
    } else if to_column < from_column {
        sequence.push_csi_count(from_column - to_column, b'D');
    }
}

/// A move relative to a known cursor position.
fn relative_move(from: Position, target: Position) -> ShortSequence {
    let mut sequence = ShortSequence::new();
    push_vertical_move(&mut sequence, from.y, target.y, from.x == 0);
    push_horizontal_move(&mut sequence, from.x, target.x);
    sequence
}

/// `CR`, then a move relative to the start of `from_row`.
fn move_from_line_start(from_row: u16, target: Position) -> ShortSequence {
    let mut sequence = ShortSequence::new();
    sequence.push(b'\r');
    push_vertical_move(&mut sequence, from_row, target.y, true);
    push_horizontal_move(&mut sequence, 0, target.x);
    sequence
}

fn cheaper(first: ShortSequence, second: ShortSequence) -> ShortSequence {
    if second.cost() < first.cost() {
        second
    } else {
        first
    }
}

/// A ratatui backend writing VT100 bytes to an [`embedded_io::Write`] (the serial tty).
///
/// Each backend call queues its bytes and hands them to the writer in one `write` loop at
/// its end; [`Backend::flush`] also flushes the writer.
#[derive(Debug)]
pub struct SerialBackend<W: Write> {
    writer: W,
    size: Size,
    glyphs: GlyphMode,
    queued: Vec<u8>,
    cursor: TerminalCursor,
    /// `None` until an SGR reset was sent (or after a write error).
    rendition: Option<Rendition>,
    /// `None` after a write error: the terminal may have seen any part of a switch.
    character_set: Option<CharacterSet>,
    cursor_visible: Option<bool>,
    bytes_written: u64,
    substituted: u64,
}

impl<W: Write> SerialBackend<W> {
    /// A backend for a terminal of `size` (columns x rows) showing `glyphs`. Nothing is
    /// sent yet; send [`init_sequence`] first (or call `Terminal::clear`).
    pub fn new(writer: W, size: Size, glyphs: GlyphMode) -> Self {
        SerialBackend {
            writer,
            size,
            glyphs,
            queued: Vec::new(),
            cursor: TerminalCursor::Unknown,
            rendition: None,
            // Selected by the init sequence (and every terminal's power-on default).
            character_set: Some(CharacterSet::UsAscii),
            cursor_visible: None,
            bytes_written: 0,
            substituted: 0,
        }
    }

    /// The writer the bytes go to.
    pub fn writer(&self) -> &W {
        &self.writer
    }

    /// The writer, e.g. to send [`init_sequence`] or [`SIZE_PROBE`] through it. Bytes
    /// written this way move the cursor or change the attributes behind the backend's
    /// back: call `Terminal::clear` afterwards.
    pub fn writer_mut(&mut self) -> &mut W {
        &mut self.writer
    }

    /// The writer, dropping the backend.
    pub fn into_writer(self) -> W {
        self.writer
    }

    /// Bytes the writer accepted since the backend was made.
    pub fn bytes_written(&self) -> u64 {
        self.bytes_written
    }

    /// Cells sent as `?` because the glyph mode cannot show their symbol.
    pub fn substituted(&self) -> u64 {
        self.substituted
    }

    /// The glyph mode the backend sends symbols in.
    pub fn glyphs(&self) -> GlyphMode {
        self.glyphs
    }

    /// Changes the size reported to ratatui (e.g. once a [`SIZE_PROBE`] answer arrived);
    /// the next `Terminal::draw` notices it, clears the screen and redraws everything.
    pub fn set_size(&mut self, size: Size) {
        self.size = size;
    }

    /// Hands the queued bytes to the writer. On an error the queue is dropped and the
    /// terminal's state is forgotten, so the next frame starts from absolute moves and an
    /// SGR reset.
    fn send_queued(&mut self) -> Result<(), SerialError> {
        let mut unsent: &[u8] = &self.queued;
        let outcome = loop {
            if unsent.is_empty() {
                break Ok(());
            }
            match self.writer.write(unsent) {
                Ok(0) => break Err(SerialError::from(ErrorKind::WriteZero)),
                Ok(accepted) => {
                    self.bytes_written += accepted as u64;
                    unsent = unsent.get(accepted..).unwrap_or_default();
                }
                Err(error) => break Err(SerialError::from(error.kind())),
            }
        };
        self.queued.clear();
        if outcome.is_err() {
            self.forget_terminal_state();
        }
        outcome
    }

    fn forget_terminal_state(&mut self) {
        self.cursor = TerminalCursor::Unknown;
        self.rendition = None;
        self.character_set = None;
        self.cursor_visible = None;
    }

    /// The glyph sent for `cell` in this backend's glyph mode.
    fn glyph_for<'cell>(&self, cell: &'cell Cell) -> Glyph<'cell> {
        if cell.modifier.contains(Modifier::HIDDEN) {
            return Glyph::Blank;
        }
        let symbol = cell.symbol();
        if symbol.is_empty() {
            return Glyph::Blank;
        }
        if symbol.bytes().all(is_printable_ascii) {
            return Glyph::Text(symbol);
        }
        match self.glyphs {
            GlyphMode::Ascii => Glyph::Substitute,
            GlyphMode::Utf8 if symbol.chars().any(char::is_control) => Glyph::Substitute,
            GlyphMode::Utf8 if symbol.cell_width() == 0 => Glyph::Blank,
            GlyphMode::Utf8 => Glyph::Text(symbol),
            GlyphMode::DecLineDrawing => {
                let mut chars = symbol.chars();
                match (chars.next().and_then(dec_special_graphic), chars.next()) {
                    (Some(letter), None) => Glyph::DecSpecialGraphic(letter),
                    _ => Glyph::Substitute,
                }
            }
        }
    }

    fn queue_cell(&mut self, at: Position, cell: &Cell) {
        if at.x >= self.size.width || at.y >= self.size.height {
            return;
        }
        let columns_left = self.size.width - at.x;
        let mut glyph = self.glyph_for(cell);
        let span = cell_columns(cell).max(glyph.columns()).min(columns_left);
        if glyph.columns() > span {
            // A wide symbol in the last column: the terminal would wrap or drop it.
            glyph = Glyph::Substitute;
        }

        self.queue_cursor_move(at);
        self.queue_rendition(Rendition::of(cell));
        match glyph {
            Glyph::Text(text) => {
                if !text.bytes().all(same_in_both_character_sets) {
                    self.queue_character_set(CharacterSet::UsAscii);
                }
                self.queued.extend_from_slice(text.as_bytes());
            }
            Glyph::DecSpecialGraphic(letter) => {
                self.queue_character_set(CharacterSet::DecSpecialGraphics);
                self.queued.push(letter);
            }
            Glyph::Substitute => {
                self.substituted += 1;
                self.queued.push(b'?');
            }
            Glyph::Blank => self.queued.push(b' '),
        }
        // Fill the rest of a wide cell sent as a narrow glyph, so nothing stale shows.
        for _ in glyph.columns()..span {
            self.queued.push(b' ');
        }

        let end = at.x + span;
        self.cursor = if end < self.size.width {
            TerminalCursor::Known(Position::new(end, at.y))
        } else {
            TerminalCursor::AtRightMargin { row: at.y }
        };
    }

    /// Queues the cheapest move of the cursor to `target`, or none if it is there.
    fn queue_cursor_move(&mut self, target: Position) {
        let moves = match self.cursor {
            TerminalCursor::Known(at) if at == target => return,
            TerminalCursor::Known(at) => cheaper(
                cheaper(absolute_move(target), relative_move(at, target)),
                move_from_line_start(at.y, target),
            ),
            TerminalCursor::AtRightMargin { row } => {
                cheaper(absolute_move(target), move_from_line_start(row, target))
            }
            TerminalCursor::Unknown => absolute_move(target),
        };
        self.queued.extend_from_slice(moves.as_bytes());
        self.cursor = TerminalCursor::Known(target);
    }

    /// Queues the SGR sequence that turns the current rendition into `wanted`: only the
    /// additions when nothing has to be turned off, else a reset and all of `wanted`.
    fn queue_rendition(&mut self, wanted: Rendition) {
        match self.rendition {
            Some(current) if current == wanted => return,
            Some(current)
                if wanted.attributes.contains(current.attributes)
                    && (wanted.foreground.is_some() || current.foreground.is_none())
                    && (wanted.background.is_some() || current.background.is_none()) =>
            {
                let additions = rendition_parameters(current, wanted);
                self.queued.extend_from_slice(b"\x1b[");
                // Drop the first parameter's separator.
                self.queued
                    .extend_from_slice(additions.as_bytes().get(1..).unwrap_or_default());
            }
            _ => {
                self.queued.extend_from_slice(b"\x1b[0");
                let all = rendition_parameters(Rendition::default(), wanted);
                self.queued.extend_from_slice(all.as_bytes());
            }
        }
        self.queued.push(b'm');
        self.rendition = Some(wanted);
    }

    fn queue_character_set(&mut self, wanted: CharacterSet) {
        if self.character_set == Some(wanted) {
            return;
        }
        self.queued.extend_from_slice(match wanted {
            CharacterSet::UsAscii => b"\x1b(B",
            CharacterSet::DecSpecialGraphics => b"\x1b(0",
        });
        self.character_set = Some(wanted);
    }

    /// Erases paint the current background on many terminals: reset it first.
    fn queue_plain_rendition_for_erase(&mut self) {
        if self.rendition != Some(Rendition::default()) {
            self.queued.extend_from_slice(b"\x1b[0m");
            self.rendition = Some(Rendition::default());
        }
    }

    fn queue_cursor_visibility(&mut self, visible: bool) {
        if self.cursor_visible != Some(visible) {
            self.queued
                .extend_from_slice(if visible { b"\x1b[?25h" } else { b"\x1b[?25l" });
            self.cursor_visible = Some(visible);
        }
    }
}

impl<W: Write> Backend for SerialBackend<W> {
    type Error = SerialError;

    fn draw<'a, I>(&mut self, content: I) -> Result<(), SerialError>
    where
        I: Iterator<Item = (u16, u16, &'a Cell)>,
    {
        for (x, y, cell) in content {
            self.queue_cell(Position::new(x, y), cell);
        }
        // Leave G0 in ASCII between frames: anything else reaching the console (a kernel
        // message, the exit sequence) would be shown as line drawing.
        if self.character_set == Some(CharacterSet::DecSpecialGraphics) {
            self.queue_character_set(CharacterSet::UsAscii);
        }
        self.send_queued()
    }

    fn hide_cursor(&mut self) -> Result<(), SerialError> {
        self.queue_cursor_visibility(false);
        self.send_queued()
    }

    fn show_cursor(&mut self) -> Result<(), SerialError> {
        self.queue_cursor_visibility(true);
        self.send_queued()
    }

    /// The tracked position; the terminal is never asked (its answer would arrive mixed
    /// into the keystrokes, if at all).
    fn get_cursor_position(&mut self) -> Result<Position, SerialError> {
        Ok(match self.cursor {
            TerminalCursor::Known(position) => position,
            TerminalCursor::AtRightMargin { row } => {
                Position::new(self.size.width.saturating_sub(1), row)
            }
            TerminalCursor::Unknown => Position::ORIGIN,
        })
    }

    fn set_cursor_position<P: Into<Position>>(&mut self, position: P) -> Result<(), SerialError> {
        let position = position.into();
        let target = Position::new(
            position.x.min(self.size.width.saturating_sub(1)),
            position.y.min(self.size.height.saturating_sub(1)),
        );
        self.queue_cursor_move(target);
        self.send_queued()
    }

    fn clear(&mut self) -> Result<(), SerialError> {
        self.queued.extend_from_slice(b"\x1b[0m\x1b[2J\x1b[H");
        self.rendition = Some(Rendition::default());
        self.cursor = TerminalCursor::Known(Position::ORIGIN);
        self.send_queued()
    }

    fn clear_region(&mut self, clear_type: ClearType) -> Result<(), SerialError> {
        self.queue_plain_rendition_for_erase();
        self.queued.extend_from_slice(match clear_type {
            ClearType::All => b"\x1b[2J",
            ClearType::AfterCursor => b"\x1b[J",
            ClearType::BeforeCursor => b"\x1b[1J",
            ClearType::CurrentLine => b"\x1b[2K",
            ClearType::UntilNewLine => b"\x1b[K",
        });
        self.send_queued()
    }

    /// The fixed size: a serial tty has no window size to ask for.
    fn size(&self) -> Result<Size, SerialError> {
        Ok(self.size)
    }

    fn window_size(&mut self) -> Result<WindowSize, SerialError> {
        Ok(WindowSize {
            columns_rows: self.size,
            pixels: Size::ZERO,
        })
    }

    fn flush(&mut self) -> Result<(), SerialError> {
        self.send_queued()?;
        self.writer
            .flush()
            .map_err(|error| SerialError::from(error.kind()))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use alloc::string::String;
    use alloc::vec;

    use super::*;

    fn backend(glyphs: GlyphMode) -> SerialBackend<Vec<u8>> {
        SerialBackend::new(Vec::new(), Size::new(80, 24), glyphs)
    }

    fn cell(symbol: &str) -> Cell {
        let mut cell = Cell::EMPTY;
        cell.set_symbol(symbol);
        cell
    }

    fn styled(symbol: &str, modifier: Modifier, fg: Color, bg: Color) -> Cell {
        let mut cell = cell(symbol);
        cell.modifier = modifier;
        cell.fg = fg;
        cell.bg = bg;
        cell
    }

    /// Draws `cells` after a `clear` (cursor home, rendition reset); returns what the draw
    /// sent, as text.
    fn sent_by_draw(backend: &mut SerialBackend<Vec<u8>>, cells: &[(u16, u16, Cell)]) -> String {
        backend.clear().unwrap();
        let before = backend.writer().len();
        backend
            .draw(cells.iter().map(|(x, y, cell)| (*x, *y, cell)))
            .unwrap();
        String::from_utf8(backend.writer()[before..].to_vec()).unwrap()
    }

    fn draw_after_clear(glyphs: GlyphMode, cells: &[(u16, u16, Cell)]) -> String {
        sent_by_draw(&mut backend(glyphs), cells)
    }

    #[test]
    fn consecutive_cells_need_no_cursor_move() {
        let sent = draw_after_clear(
            GlyphMode::Ascii,
            &[(0, 0, cell("a")), (1, 0, cell("b")), (2, 0, cell("c"))],
        );
        assert_eq!(sent, "abc");
    }

    #[test]
    fn cursor_moves_take_the_cheapest_form() {
        let sent = draw_after_clear(
            GlyphMode::Ascii,
            &[
                (5, 0, cell("a")),   // from home: ESC[6C is shorter than ESC[1;6H
                (7, 0, cell("b")),   // one to the right: ESC[C
                (0, 1, cell("c")),   // next line start: CR LF
                (0, 3, cell("d")),   // two lines down from column 1: CR LF LF
                (40, 20, cell("e")), // far away: CUP
                (1, 20, cell("f")),  // back on the same line: CR ESC[C beats ESC[40D
                (10, 2, cell("g")),  // up: ESC[18A ESC[8C is longer than ESC[3;11H
                (79, 2, cell("h")),  // the last column ...
                (0, 3, cell("i")),   // ... then only CR (LF) or CUP: CR LF
                (79, 3, cell("j")),
                (5, 10, cell("k")), // from the right margin: CUP, never relative
            ],
        );
        assert_eq!(
            sent,
            "\x1b[5Ca\x1b[Cb\r\nc\r\n\nd\x1b[21;41He\r\x1b[Cf\x1b[3;11Hg\x1b[68Ch\r\ni\
             \x1b[78Cj\x1b[11;6Hk"
        );
    }

    #[test]
    fn rendition_changes_send_only_what_changed() {
        let bold = Modifier::BOLD;
        let sent = draw_after_clear(
            GlyphMode::Ascii,
            &[
                (0, 0, cell("a")),
                (1, 0, styled("b", bold, Color::Reset, Color::Reset)),
                (
                    2,
                    0,
                    styled("c", bold | Modifier::REVERSED, Color::Red, Color::Reset),
                ),
                (
                    3,
                    0,
                    styled("d", bold | Modifier::REVERSED, Color::LightRed, Color::Blue),
                ),
                (
                    4,
                    0,
                    styled("e", Modifier::UNDERLINED, Color::Reset, Color::White),
                ),
                (5, 0, styled("f", Modifier::DIM, Color::Reset, Color::White)),
                (6, 0, cell("g")),
            ],
        );
        assert_eq!(
            sent,
            "a\x1b[1mb\x1b[7;31mc\x1b[91;44md\x1b[0;4;107me\x1b[0;2;107mf\x1b[0mg"
        );
    }

    #[test]
    fn italic_crossed_out_and_blink_speeds_are_what_a_vt100_has() {
        let sent = draw_after_clear(
            GlyphMode::Ascii,
            &[
                (
                    0,
                    0,
                    styled(
                        "a",
                        Modifier::ITALIC | Modifier::CROSSED_OUT,
                        Color::Reset,
                        Color::Reset,
                    ),
                ),
                (
                    1,
                    0,
                    styled("b", Modifier::RAPID_BLINK, Color::Reset, Color::Reset),
                ),
            ],
        );
        assert_eq!(sent, "a\x1b[5mb");
    }

    #[test]
    fn hidden_cells_are_sent_as_blanks() {
        let sent = draw_after_clear(
            GlyphMode::Utf8,
            &[(
                0,
                0,
                styled("s", Modifier::HIDDEN, Color::Reset, Color::Reset),
            )],
        );
        assert_eq!(sent, " ");
    }

    #[test]
    fn colours_map_to_the_nearest_basic_colour() {
        let nearest = |color| nearest_basic_color(color).map(|BasicColor(index)| index);
        assert_eq!(nearest(Color::Reset), None);
        assert_eq!(nearest(Color::Gray), Some(7));
        assert_eq!(nearest(Color::White), Some(15));
        assert_eq!(nearest(Color::Indexed(4)), Some(4));
        assert_eq!(nearest(Color::Indexed(196)), Some(9)); // (255, 0, 0)
        assert_eq!(nearest(Color::Indexed(16)), Some(0)); // cube black
        assert_eq!(nearest(Color::Indexed(231)), Some(15)); // cube white
        assert_eq!(nearest(Color::Indexed(232)), Some(0)); // darkest grey
        assert_eq!(nearest(Color::Indexed(244)), Some(8)); // mid grey (128)
        assert_eq!(nearest(Color::Indexed(255)), Some(7)); // lightest grey (238)
        assert_eq!(nearest(Color::Rgb(0, 0, 200)), Some(4));
        assert_eq!(nearest(Color::Rgb(250, 250, 250)), Some(15));
        assert_eq!(BasicColor(3).foreground_parameter(), 33);
        assert_eq!(BasicColor(12).background_parameter(), 104);
    }

    #[test]
    fn different_colours_mapped_to_one_are_dropped_so_the_text_stays_visible() {
        let sent = draw_after_clear(
            GlyphMode::Ascii,
            &[
                (
                    0,
                    0,
                    styled("a", Modifier::empty(), Color::Rgb(10, 10, 10), Color::Black),
                ),
                (
                    1,
                    0,
                    styled("b", Modifier::empty(), Color::Black, Color::Black),
                ),
            ],
        );
        assert_eq!(sent, "a\x1b[30;40mb");
    }

    #[test]
    fn ascii_mode_sends_question_marks_for_non_ascii_and_blanks_the_rest_of_a_wide_cell() {
        let mut backend = backend(GlyphMode::Ascii);
        let sent = sent_by_draw(
            &mut backend,
            &[
                (0, 0, cell("é")),
                (1, 0, cell("漢")),
                (3, 0, cell("─")),
                (4, 0, cell("x")),
            ],
        );
        assert_eq!(sent, "?? ?x");
        assert_eq!(backend.substituted(), 3);
    }

    #[test]
    fn utf8_mode_sends_symbols_as_they_are_and_a_wide_one_moves_two_columns() {
        let sent = draw_after_clear(
            GlyphMode::Utf8,
            &[
                (0, 0, cell("漢")),
                (2, 0, cell("字")),
                (4, 0, cell("─")),
                (5, 0, cell("é")),
            ],
        );
        assert_eq!(sent, "漢字─é");
    }

    #[test]
    fn a_wide_symbol_in_the_last_column_is_substituted() {
        let mut backend = backend(GlyphMode::Utf8);
        let sent = sent_by_draw(&mut backend, &[(79, 0, cell("漢")), (0, 1, cell("a"))]);
        assert_eq!(sent, "\x1b[79C?\r\na");
        assert_eq!(backend.substituted(), 1);
    }

    #[test]
    fn control_characters_never_reach_the_terminal() {
        for glyphs in [GlyphMode::Ascii, GlyphMode::Utf8, GlyphMode::DecLineDrawing] {
            let mut backend = backend(glyphs);
            let sent = sent_by_draw(
                &mut backend,
                &[
                    (0, 0, cell("\x1b")),
                    (1, 0, cell("\u{9b}")),
                    (2, 0, cell("\r")),
                    (3, 0, cell("\x07")),
                ],
            );
            assert_eq!(sent, "????", "{glyphs:?}");
            assert_eq!(backend.substituted(), 4);
        }
    }

    #[test]
    fn dec_line_drawing_switches_the_character_set_once_per_run() {
        let mut backend = backend(GlyphMode::DecLineDrawing);
        let row: Vec<(u16, u16, Cell)> =
            ["╭", "─", "─", " ", "T", "─", "╮", "a", "┃", "═", "é", "b"]
                .iter()
                .zip(0..)
                .map(|(symbol, x)| (x, 0, cell(symbol)))
                .collect();
        let sent = sent_by_draw(&mut backend, &row);
        // The space and `T` are the same in both sets: no switch for them; `?` neither.
        assert_eq!(sent, "\x1b(0lqq Tqk\x1b(Ba\x1b(0xq?\x1b(Bb");
        assert_eq!(backend.substituted(), 1);

        // A frame ending inside a run leaves G0 in ASCII.
        let sent = sent_by_draw(&mut backend, &[(0, 5, cell("┼"))]);
        assert_eq!(sent, "\x1b[6H\x1b(0n\x1b(B");
    }

    #[test]
    fn the_dec_map_covers_ratatuis_line_sets() {
        use ratatui_core::symbols::line;
        for set in [
            line::NORMAL,
            line::ROUNDED,
            line::DOUBLE,
            line::THICK,
            line::LIGHT_DOUBLE_DASHED,
            line::HEAVY_TRIPLE_DASHED,
            line::LIGHT_QUADRUPLE_DASHED,
        ] {
            for symbol in [
                set.vertical,
                set.horizontal,
                set.top_right,
                set.top_left,
                set.bottom_right,
                set.bottom_left,
                set.vertical_left,
                set.vertical_right,
                set.horizontal_down,
                set.horizontal_up,
                set.cross,
            ] {
                let mut chars = symbol.chars();
                let letter = chars.next().and_then(dec_special_graphic);
                assert!(
                    letter.is_some() && chars.next().is_none(),
                    "{symbol} has no DEC letter"
                );
            }
        }
    }

    #[test]
    fn clear_and_clear_region_send_the_vt100_codes() {
        let mut backend = backend(GlyphMode::Ascii);
        backend.clear().unwrap();
        assert_eq!(backend.writer(), b"\x1b[0m\x1b[2J\x1b[H");
        assert_eq!(backend.get_cursor_position().unwrap(), Position::ORIGIN);

        let mut backend = backend_with_reverse_drawn();
        let before = backend.writer().len();
        for clear_type in [
            ClearType::UntilNewLine,
            ClearType::CurrentLine,
            ClearType::AfterCursor,
            ClearType::BeforeCursor,
            ClearType::All,
        ] {
            backend.clear_region(clear_type).unwrap();
        }
        // The reversed rendition is reset once, before the first erase (erases paint the
        // current background on many terminals).
        assert_eq!(
            &backend.writer()[before..],
            b"\x1b[0m\x1b[K\x1b[2K\x1b[J\x1b[1J\x1b[2J"
        );
    }

    fn backend_with_reverse_drawn() -> SerialBackend<Vec<u8>> {
        let mut backend = backend(GlyphMode::Ascii);
        let reversed = styled("r", Modifier::REVERSED, Color::Reset, Color::Blue);
        sent_by_draw(&mut backend, &[(3, 3, reversed)]);
        backend
    }

    #[test]
    fn cursor_visibility_and_position_are_sent_only_when_they_change() {
        let mut backend = backend(GlyphMode::Ascii);
        backend.clear().unwrap();
        let before = backend.writer().len();
        backend.hide_cursor().unwrap();
        backend.hide_cursor().unwrap();
        backend.show_cursor().unwrap();
        backend.set_cursor_position((4, 2)).unwrap();
        backend.set_cursor_position((4, 2)).unwrap();
        backend.set_cursor_position((500, 500)).unwrap();
        assert_eq!(
            &backend.writer()[before..],
            b"\x1b[?25l\x1b[?25h\x1b[3;5H\x1b[24;80H"
        );
        assert_eq!(
            backend.get_cursor_position().unwrap(),
            Position::new(79, 23)
        );
    }

    #[test]
    fn size_is_fixed_and_window_size_has_no_pixels() {
        let mut backend = backend(GlyphMode::Ascii);
        assert_eq!(backend.size().unwrap(), Size::new(80, 24));
        assert_eq!(
            backend.window_size().unwrap(),
            WindowSize {
                columns_rows: Size::new(80, 24),
                pixels: Size::ZERO
            }
        );
        backend.set_size(Size::new(132, 43));
        assert_eq!(backend.size().unwrap(), Size::new(132, 43));
        assert!(backend.writer().is_empty(), "the terminal was queried");
    }

    #[test]
    fn size_from_cursor_report_accepts_plausible_consoles_only() {
        assert_eq!(size_from_cursor_report(24, 80), Some(Size::new(80, 24)));
        assert_eq!(size_from_cursor_report(10, 20), Some(Size::new(20, 10)));
        assert_eq!(size_from_cursor_report(255, 255), Some(Size::new(255, 255)));
        assert_eq!(size_from_cursor_report(9, 80), None);
        assert_eq!(size_from_cursor_report(24, 19), None);
        assert_eq!(size_from_cursor_report(999, 999), None);
        assert_eq!(size_from_cursor_report(0, 0), None);
    }

    #[test]
    fn init_and_exit_sequences() {
        let init = init_sequence();
        for part in [
            &b"\x1b[0m"[..],
            b"\x1b(B",
            b"\x1b[?7l",
            b"\x1b[?25l",
            b"\x1b[2J",
        ] {
            assert!(init.windows(part.len()).any(|window| window == part));
        }
        let exit = exit_sequence();
        for part in [&b"\x1b[0m"[..], b"\x1b[?7h", b"\x1b[?25h", b"\x1b[2J"] {
            assert!(exit.windows(part.len()).any(|window| window == part));
        }
    }

    /// A writer that takes `accepts` bytes per write, then fails or returns 0.
    #[derive(Debug, Default)]
    struct FlakyWriter {
        accepted: Vec<u8>,
        accepts: usize,
        writes_left: usize,
        then_zero: bool,
    }

    impl embedded_io::ErrorType for FlakyWriter {
        type Error = ErrorKind;
    }

    impl Write for FlakyWriter {
        fn write(&mut self, bytes: &[u8]) -> Result<usize, ErrorKind> {
            if self.writes_left == 0 {
                return if self.then_zero {
                    Ok(0)
                } else {
                    Err(ErrorKind::BrokenPipe)
                };
            }
            self.writes_left -= 1;
            let taken = bytes.len().min(self.accepts);
            self.accepted.extend_from_slice(&bytes[..taken]);
            Ok(taken)
        }

        fn flush(&mut self) -> Result<(), ErrorKind> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_are_completed_and_counted() {
        let writer = FlakyWriter {
            accepts: 3,
            writes_left: usize::MAX,
            ..FlakyWriter::default()
        };
        let mut backend = SerialBackend::new(writer, Size::new(80, 24), GlyphMode::Ascii);
        backend.clear().unwrap();
        assert_eq!(backend.writer().accepted, b"\x1b[0m\x1b[2J\x1b[H");
        assert_eq!(backend.bytes_written(), 11);
    }

    #[test]
    fn a_write_error_is_reported_and_the_terminal_state_forgotten() {
        for then_zero in [false, true] {
            let writer = FlakyWriter {
                accepts: 5,
                writes_left: 3,
                then_zero,
                ..FlakyWriter::default()
            };
            let mut backend = SerialBackend::new(writer, Size::new(80, 24), GlyphMode::Ascii);
            backend.clear().unwrap(); // 11 bytes: 3 writes
            let error = backend.set_cursor_position((3, 3)).unwrap_err();
            let expected = if then_zero {
                ErrorKind::WriteZero
            } else {
                ErrorKind::BrokenPipe
            };
            assert_eq!(error.kind(), expected);
            assert_eq!(backend.bytes_written(), 11);
            assert_eq!(backend.cursor, TerminalCursor::Unknown);
            assert_eq!(backend.rendition, None);
            assert!(!alloc::format!("{error}").is_empty());

            // The next attempt starts over: absolute move, SGR reset, character set.
            backend.writer_mut().writes_left = usize::MAX;
            backend.writer_mut().accepted.clear();
            backend.draw(vec![(1, 0, &cell("a"))].into_iter()).unwrap();
            assert_eq!(backend.writer().accepted, b"\x1b[1;2H\x1b[0m\x1b(Ba");
        }
    }
}
