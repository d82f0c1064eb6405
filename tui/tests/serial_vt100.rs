//! The serial backend against a VT100 emulator: the same frames are drawn into ratatui's
//! `TestBackend` (what the app meant) and into a `SerialBackend<Vec<u8>>`, whose bytes are
//! fed to `vt100::Parser` (what a terminal shows); every cell's symbol, bold, inverse and
//! colours must agree, after the first frame and after each diff-drawn one. Also the byte
//! budgets of a menu screen at 115200 baud, and what must never be sent.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use ratatui_core::layout::{Constraint, Layout, Position};
use ratatui_core::style::{Color, Modifier, Style};
use ratatui_core::symbols::border;
use ratatui_core::terminal::Frame;
use ratatui_core::text::{Line, Span};
use ratatui_widgets::block::Block;
use ratatui_widgets::list::{List, ListState};
use ratatui_widgets::paragraph::Paragraph;
use support::{Harness, HEIGHT, WIDTH};
use tandem_tui::glyphs::GlyphMode;
use tandem_tui::render::ASCII_BORDER;
use tandem_tui::serial::init_sequence;

const MENU_ITEMS: [&str; 15] = [
    "Network interfaces",
    "Partner link",
    "Virtual addresses",
    "Sync groups",
    "Load balancer services",
    "Real servers",
    "Health checks",
    "Time and NTP",
    "Administrator password",
    "SSH access",
    "Firmware update",
    "Configuration backup",
    "Diagnostics",
    "Reboot",
    "Log out",
];

/// What a menu frame shows.
#[derive(Clone, Copy)]
struct MenuScreen {
    border_set: border::Set<'static>,
    selected: usize,
    node_state: &'static str,
    node_state_color: Color,
    /// Adds a wide symbol and an accented letter (UTF-8 only, `?` elsewhere).
    language_item: Option<&'static str>,
}

impl MenuScreen {
    fn new(border_set: border::Set<'static>) -> MenuScreen {
        MenuScreen {
            border_set,
            selected: 2,
            node_state: "MASTER",
            node_state_color: Color::Green,
            language_item: None,
        }
    }
}

fn draw_menu(frame: &mut Frame, screen: &MenuScreen) {
    let outer = Block::bordered()
        .border_set(screen.border_set)
        .title(" Tandem - pair setup ");
    let inner = outer.inner(frame.area());
    frame.render_widget(outer, frame.area());

    let [header_area, list_area, status_area] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Fill(1),
        Constraint::Length(1),
    ])
    .areas(inner);

    let header = Line::from(vec![
        Span::raw(" Node "),
        Span::styled("alpha", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw("   state "),
        Span::styled(
            screen.node_state,
            Style::new()
                .fg(screen.node_state_color)
                .add_modifier(Modifier::BOLD),
        ),
        Span::raw("   partner "),
        Span::styled("reachable", Style::new().fg(Color::LightCyan)),
    ]);
    frame.render_widget(Paragraph::new(header), header_area);

    let mut items: Vec<String> = MENU_ITEMS
        .iter()
        .enumerate()
        .map(|(index, item)| format!("{:>2}  {item}", index + 1))
        .collect();
    if let Some(language) = screen.language_item {
        items[13] = format!("14  {language}");
    }
    let list = List::new(items)
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .highlight_symbol("> ");
    let mut list_state = ListState::default().with_selected(Some(screen.selected));
    frame.render_stateful_widget(list, list_area, &mut list_state);

    let status = Paragraph::new(" Up/Down move   Enter select   Esc back   ? help")
        .style(Style::new().add_modifier(Modifier::REVERSED));
    frame.render_widget(status, status_area);
}

impl Harness {
    fn draw_menu(&mut self, screen: MenuScreen) -> Vec<u8> {
        self.draw(|frame| draw_menu(frame, &screen))
    }
}

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|window| *window == needle)
        .count()
}

/// Frames 1-3 of every mode: a first full frame, a selection move (diff), then a state
/// change with another colour, the wide symbol replaced and a far selection.
fn assert_frames_match_the_emulator(harness: &mut Harness, first: MenuScreen) {
    harness.draw_menu(first);
    harness.assert_emulator_shows_expected("first frame");

    let second = MenuScreen {
        selected: first.selected + 1,
        ..first
    };
    harness.draw_menu(second);
    harness.assert_emulator_shows_expected("selection moved down");

    let third = MenuScreen {
        selected: 13,
        node_state: "BACKUP",
        node_state_color: Color::Yellow,
        language_item: first.language_item.map(|_| "Language / lang"),
        ..second
    };
    harness.draw_menu(third);
    harness.assert_emulator_shows_expected("state changed, far selection");

    harness.draw_menu(first);
    harness.assert_emulator_shows_expected("back to the first frame");
}

#[test]
fn utf8_frames_show_on_the_emulator_as_drawn() {
    let mut harness = Harness::new(GlyphMode::Utf8);
    let mut first = MenuScreen::new(border::PLAIN);
    first.language_item = Some("Sprache / 漢字 / é");
    assert_frames_match_the_emulator(&mut harness, first);
    assert_eq!(harness.serial.backend().substituted(), 0);
}

#[test]
fn ascii_frames_show_on_the_emulator_and_send_no_byte_above_0x7f() {
    let mut harness = Harness::new(GlyphMode::Ascii);
    let mut first = MenuScreen::new(ASCII_BORDER);
    first.language_item = Some("Sprache / 漢字 / é");
    assert_frames_match_the_emulator(&mut harness, first);

    assert!(
        harness.all_bytes().iter().all(u8::is_ascii),
        "a byte >= 0x80 was sent in ASCII mode"
    );
    // 漢, 字 and é in the first and last frames.
    assert_eq!(harness.serial.backend().substituted(), 6);
}

#[test]
fn ascii_mode_substitutes_unicode_borders_too() {
    let mut harness = Harness::new(GlyphMode::Ascii);
    harness.draw_menu(MenuScreen::new(border::ROUNDED));
    harness.assert_emulator_shows_expected("rounded borders in ASCII mode");
    assert!(harness.all_bytes().iter().all(u8::is_ascii));
    let border_cells = 2 * u64::from(WIDTH) + 2 * u64::from(HEIGHT - 2);
    let title_cells = " Tandem - pair setup ".len() as u64;
    assert_eq!(
        harness.serial.backend().substituted(),
        border_cells - title_cells
    );
}

#[test]
fn dec_line_drawing_frames_show_on_the_emulator_as_dec_letters() {
    // The emulator ignores `ESC ( 0`: it shows `l q k x m j` where a VT100 draws the
    // lines, so the screens are compared against those letters (see `shown_symbol`).
    for border_set in [
        border::ROUNDED,
        border::DOUBLE,
        border::THICK,
        border::PLAIN,
    ] {
        let mut harness = Harness::new(GlyphMode::DecLineDrawing);
        let mut first = MenuScreen::new(border_set);
        first.language_item = Some("Sprache / é");
        assert_frames_match_the_emulator(&mut harness, first);

        let bytes = harness.all_bytes();
        let to_graphics = count(bytes, b"\x1b(0");
        let to_ascii = count(bytes, b"\x1b(B");
        // A switch per run, not per cell: on each row at most the left border and the
        // right border (a top/bottom line with its title is two runs).
        assert!(
            to_graphics <= 4 * usize::from(HEIGHT),
            "{to_graphics} switches to DEC graphics"
        );
        // The init sequence's, then one back after each run.
        assert_eq!(to_ascii, 1 + to_graphics);
        let last_switch = bytes
            .windows(2)
            .rposition(|window| window == b"\x1b(")
            .unwrap();
        assert_eq!(bytes[last_switch + 2], b'B', "G0 left in DEC graphics");
        assert!(bytes.iter().all(u8::is_ascii));
        // é in the first and the last frame.
        assert_eq!(harness.serial.backend().substituted(), 2);
    }
}

#[test]
fn byte_budget_of_a_menu_screen_in_ascii_mode() {
    let mut harness = Harness::new(GlyphMode::Ascii);
    let start_up = harness.all_bytes().len();
    let menu = MenuScreen::new(ASCII_BORDER);

    let full_frame = harness.draw_menu(menu).len();
    harness.assert_emulator_shows_expected("full frame");
    let selection_moved = harness
        .draw_menu(MenuScreen {
            selected: menu.selected + 1,
            ..menu
        })
        .len();
    harness.assert_emulator_shows_expected("selection moved");
    let unchanged = harness.draw_menu(MenuScreen {
        selected: menu.selected + 1,
        ..menu
    });

    println!(
        "serial budget, 80x24 ASCII menu: init + clear {start_up} bytes, full frame \
         {full_frame} bytes ({:.0} ms at 115200 baud), selection moved by one line \
         {selection_moved} bytes ({:.1} ms), unchanged frame {} bytes",
        full_frame as f64 * 10.0 / 115.2,
        selection_moved as f64 * 10.0 / 115.2,
        unchanged.len(),
    );
    assert!(full_frame <= 3072, "full frame {full_frame} bytes");
    assert!(
        selection_moved <= 400,
        "selection move {selection_moved} bytes"
    );
    assert!(
        unchanged.is_empty(),
        "an unchanged frame sent {unchanged:?}"
    );
    assert_eq!(
        harness.serial.backend().bytes_written(),
        harness.all_bytes().len() as u64 - init_sequence().len() as u64
    );
}

#[test]
fn indexed_and_rgb_colours_are_sent_as_basic_colours_only() {
    let mut harness = Harness::new(GlyphMode::Ascii);
    let colors = [
        Color::Indexed(200),
        Color::Indexed(16),
        Color::Indexed(244),
        Color::Indexed(9),
        Color::Rgb(255, 128, 0),
        Color::Rgb(10, 10, 10),
        Color::Rgb(250, 250, 250),
    ];
    let bytes = harness.draw(|frame| {
        let lines: Vec<Line> = colors
            .iter()
            .map(|&color| {
                Line::from(vec![
                    Span::styled("foreground", Style::new().fg(color)),
                    Span::raw(" "),
                    Span::styled("background", Style::new().bg(color)),
                    Span::raw(" "),
                    Span::styled("both", Style::new().fg(color).bg(Color::Rgb(0, 0, 90))),
                ])
            })
            .collect();
        frame.render_widget(Paragraph::new(lines), frame.area());
    });
    for forbidden in [&b"38;5"[..], b"48;5", b"38;2", b"48;2"] {
        assert_eq!(
            count(&bytes, forbidden),
            0,
            "{} sent",
            String::from_utf8_lossy(forbidden)
        );
    }
    let screen = harness.emulator.screen();
    for row in 0..u16::try_from(colors.len()).unwrap() {
        for column in 0..21 {
            let cell = screen.cell(row, column).unwrap();
            for color in [cell.fgcolor(), cell.bgcolor()] {
                assert!(
                    matches!(color, vt100::Color::Default | vt100::Color::Idx(0..=15)),
                    "{color:?} at column {column}, row {row}"
                );
            }
        }
    }
    // Magenta-ish 200 becomes bright magenta, the 9 stays bright red.
    assert_eq!(screen.cell(0, 0).unwrap().fgcolor(), vt100::Color::Idx(13));
    assert_eq!(screen.cell(3, 0).unwrap().fgcolor(), vt100::Color::Idx(9));
    assert_eq!(screen.cell(0, 11).unwrap().bgcolor(), vt100::Color::Idx(13));
}

#[test]
fn a_text_cursor_is_shown_where_the_frame_puts_it() {
    let mut harness = Harness::new(GlyphMode::Ascii);
    harness.draw(|frame| {
        frame.render_widget(Paragraph::new("Password: ****"), frame.area());
        frame.set_cursor_position(Position::new(14, 0));
    });
    assert!(!harness.emulator.screen().hide_cursor());
    assert_eq!(harness.emulator.screen().cursor_position(), (0, 14));

    harness.draw(|frame| {
        frame.render_widget(Paragraph::new("Saved."), frame.area());
    });
    assert!(harness.emulator.screen().hide_cursor());
    harness.assert_emulator_shows_expected("after the input");
}
