//! The real app's screens: every screen reachable from the menu is driven against a fake
//! daemon, drawn at 80 x 24 into ratatui's `TestBackend` in each glyph mode and compared with a
//! golden text file (`tests/snapshots/<screen>-<mode>.txt`; `UPDATE_SNAPSHOTS=1` rewrites
//! them). The same frames go through `SerialBackend` into a VT100 emulator, which must show
//! what the buffer holds, before and after a selection move; and the serial byte budgets hold.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::fmt::Write as _;
use std::path::PathBuf;

use ratatui_core::buffer::Buffer;
use ratatui_core::layout::Rect;
use ratatui_core::style::{Color, Modifier};
use support::{press, screens, started, vrrp_item, Harness, HEIGHT, MODES, WIDTH};
use tandem_tui::app::App;
use tandem_tui::glyphs::GlyphMode;
use tandem_tui::keys::Key;
use tandem_tui::render::{draw, render};

/// Largest full frame of a screen in ASCII mode (~270 ms at 115200 baud).
const FULL_FRAME_BUDGET: usize = 3072;
/// Largest selection move (~35 ms at 115200 baud).
const SELECTION_MOVE_BUDGET: usize = 400;

fn is_tree_screen(app: &App) -> bool {
    app.trees.contains_key(&app.screen) && !app.live && app.modal.is_none() && app.assign.is_none()
}

fn buffer_of(app: &App, glyphs: GlyphMode) -> Buffer {
    let area = Rect::new(0, 0, WIDTH, HEIGHT);
    let mut buffer = Buffer::empty(area);
    draw(app, glyphs, area, &mut buffer);
    buffer
}

/// The buffer's text: one line per row, trailing blanks trimmed.
fn text_of(buffer: &Buffer) -> String {
    let mut text = String::new();
    for y in 0..buffer.area.height {
        let mut row = String::new();
        for x in 0..buffer.area.width {
            row.push_str(buffer[(x, y)].symbol());
        }
        writeln!(text, "{}", row.trim_end()).unwrap();
    }
    text
}

fn snapshot_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots")
}

/// Compares `text` with the golden file, or rewrites it under `UPDATE_SNAPSHOTS=1`; returns
/// what is wrong.
fn check_snapshot(name: &str, text: &str) -> Option<String> {
    let path = snapshot_dir().join(format!("{name}.txt"));
    if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::create_dir_all(snapshot_dir()).unwrap();
        std::fs::write(&path, text).unwrap();
        return None;
    }
    match std::fs::read_to_string(&path) {
        Err(error) => Some(format!(
            "{}: {error}; create it with `UPDATE_SNAPSHOTS=1 cargo test -p tandem-tui --test \
             screens` and check what it shows",
            path.display()
        )),
        Ok(golden) if golden == text => None,
        Ok(golden) => {
            let mut report = format!(
                "{} differs (UPDATE_SNAPSHOTS=1 rewrites it if the change is meant):\n",
                path.display()
            );
            let golden_rows: Vec<&str> = golden.lines().collect();
            for (row, drawn) in text.lines().enumerate() {
                let expected = golden_rows.get(row).copied().unwrap_or("<missing>");
                if expected != drawn {
                    writeln!(report, "  row {row:2} golden: {expected:?}").unwrap();
                    writeln!(report, "  row {row:2} drawn:  {drawn:?}").unwrap();
                }
            }
            if golden_rows.len() != text.lines().count() {
                writeln!(report, "  {} rows in the golden file", golden_rows.len()).unwrap();
            }
            Some(report)
        }
    }
}

#[test]
fn every_screen_matches_its_snapshot_in_every_glyph_mode() {
    let mut failures = Vec::new();
    let screens = screens();
    for (name, app) in &screens {
        for (glyphs, mode) in MODES {
            let buffer = buffer_of(app, glyphs);
            let text = text_of(&buffer);
            assert_eq!(text.lines().count(), usize::from(HEIGHT), "{name}-{mode}");
            assert!(
                text.lines()
                    .all(|row| row.chars().count() <= usize::from(WIDTH)),
                "{name}-{mode}: a row wider than the screen"
            );
            if glyphs == GlyphMode::Ascii {
                assert!(text.is_ascii(), "{name}-{mode}: non-ASCII in the buffer");
            }
            if glyphs == GlyphMode::DecLineDrawing {
                // DEC line drawing is a matter of the bytes sent: the buffer is UTF-8's.
                assert_eq!(buffer, buffer_of(app, GlyphMode::Utf8), "{name}-{mode}");
            }
            failures.extend(check_snapshot(&format!("{name}-{mode}"), &text));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    println!("{} screens x {} glyph modes", screens.len(), MODES.len());
}

/// Row `y` of the box's inside carries reverse video on every inner column, and no other row
/// of the inside does.
#[track_caller]
fn assert_only_row_reversed(buffer: &Buffer, y: u16, context: &str) {
    for row in 2..HEIGHT - 3 {
        for x in 1..WIDTH - 1 {
            let reversed = buffer[(x, row)].modifier.contains(Modifier::REVERSED);
            assert_eq!(reversed, row == y, "{context}: column {x}, row {row}");
        }
    }
    // The borders never take the selection's style.
    for row in [1, y, HEIGHT - 3] {
        for x in [0, WIDTH - 1] {
            assert!(
                !buffer[(x, row)].modifier.contains(Modifier::REVERSED),
                "{context}: border at column {x}, row {row}"
            );
        }
    }
}

#[test]
fn the_selection_is_reverse_video_on_the_menu_and_tree_screens() {
    let mut menu = started();
    for glyphs in [GlyphMode::Ascii, GlyphMode::Utf8] {
        let buffer = buffer_of(&menu, glyphs);
        assert_only_row_reversed(&buffer, 2, "menu, first line");
        // The title bar is reverse video too, all of it.
        assert!((0..WIDTH).all(|x| buffer[(x, 0)].modifier.contains(Modifier::REVERSED)));
    }
    press(&mut menu, Key::Tab);
    press(&mut menu, Key::Tab);
    assert_only_row_reversed(&buffer_of(&menu, GlyphMode::Ascii), 4, "menu, third line");

    let mut vrrp = started();
    press(&mut vrrp, Key::Char('4'));
    assert_only_row_reversed(&buffer_of(&vrrp, GlyphMode::Ascii), 2, "vrrp, first item");
    press(&mut vrrp, Key::Tab);
    let buffer = buffer_of(&vrrp, GlyphMode::Utf8);
    assert_only_row_reversed(&buffer, 3, "vrrp, second item");
    assert!(text_of(&buffer).lines().nth(3).unwrap().contains("db_vip"));

    let mut item = vrrp_item();
    press(&mut item, Key::Tab);
    press(&mut item, Key::Tab);
    let buffer = buffer_of(&item, GlyphMode::Ascii);
    assert_only_row_reversed(&buffer, 4, "vrrp.web_vip, vrid");
    assert!(text_of(&buffer).lines().nth(4).unwrap().contains("vrid"));
}

/// Draws `app` through both of the harness's backends; returns the serial bytes of the frame.
fn draw_app(harness: &mut Harness, app: &App) -> Vec<u8> {
    let glyphs = harness.glyphs;
    harness.draw(|frame| render(app, glyphs, frame))
}

/// The emulator shows what the buffer holds; and the UI never depends on colour, so it sends
/// none.
#[track_caller]
fn assert_shown_without_colour(harness: &Harness, context: &str) {
    harness.assert_emulator_shows_expected(context);
    for cell in &harness.expected.backend().buffer().content {
        assert_eq!(
            (cell.fg, cell.bg),
            (Color::Reset, Color::Reset),
            "{context}"
        );
    }
}

#[test]
fn serial_frames_show_on_the_emulator_as_drawn_within_the_byte_budgets() {
    let mut largest_full_frame = (0, String::new());
    let mut largest_move = (0, String::new());
    for (name, app) in screens() {
        for (glyphs, mode) in MODES {
            let mut app = app.clone();
            let mut harness = Harness::new(glyphs);
            let full_frame = draw_app(&mut harness, &app);
            // What `render` draws into a frame is what `draw` draws into a buffer.
            assert_eq!(
                *harness.expected.backend().buffer(),
                buffer_of(&app, glyphs)
            );
            assert_shown_without_colour(&harness, &format!("{name}-{mode}, full frame"));

            // Tab: the next line on the menu and tree screens, a line of scroll on texts.
            let was_tree = is_tree_screen(&app);
            press(&mut app, Key::Tab);
            let moved = draw_app(&mut harness, &app);
            assert_shown_without_colour(&harness, &format!("{name}-{mode}, after Tab"));
            let unchanged = draw_app(&mut harness, &app);
            assert!(
                unchanged.is_empty(),
                "{name}-{mode}: unchanged frame sent bytes"
            );

            let all = harness.serial.backend().writer();
            if glyphs == GlyphMode::Utf8 {
                assert!(std::str::from_utf8(all).is_ok(), "{name}-{mode}: bad UTF-8");
            } else {
                // ASCII and DEC line drawing are 7-bit.
                assert!(
                    all.iter().all(u8::is_ascii),
                    "{name}-{mode}: a byte >= 0x80"
                );
            }
            if glyphs != GlyphMode::DecLineDrawing {
                assert_eq!(harness.serial.backend().substituted(), 0, "{name}-{mode}");
            }
            println!(
                "{name:>15} {mode:<5}: full frame {:5} bytes, Tab {:4} bytes",
                full_frame.len(),
                moved.len()
            );
            if glyphs == GlyphMode::Ascii {
                if full_frame.len() > largest_full_frame.0 {
                    largest_full_frame = (full_frame.len(), name.clone());
                }
                if (name == "menu" || was_tree) && moved.len() > largest_move.0 {
                    largest_move = (moved.len(), name.clone());
                }
                let one_line = app
                    .trees
                    .get(&app.screen)
                    .is_some_and(|t| t.entries.len() <= 1);
                if name == "menu" || (was_tree && !one_line) {
                    assert!(!moved.is_empty(), "{name}: Tab moved nothing");
                }
            }
        }
    }
    let (full, full_screen) = largest_full_frame;
    let (moved, moved_screen) = largest_move;
    println!(
        "ASCII budgets: largest full frame {full} bytes ({full_screen}, {:.0} ms at 115200 \
         baud) <= {FULL_FRAME_BUDGET}; largest selection move {moved} bytes ({moved_screen}, \
         {:.1} ms) <= {SELECTION_MOVE_BUDGET}",
        full as f64 * 10.0 / 115.2,
        moved as f64 * 10.0 / 115.2,
    );
    assert!(
        full <= FULL_FRAME_BUDGET,
        "{full_screen}: full frame {full} bytes"
    );
    assert!(
        moved <= SELECTION_MOVE_BUDGET,
        "{moved_screen}: selection move {moved} bytes"
    );
}

/// A reply longer than a row (an install refusal, a commit's reason) is shown whole: the
/// message takes the rows it needs above the help line and the screen's box gives them up;
/// beyond four rows it ends in `...`. A short message keeps its one row.
#[test]
fn a_long_reply_is_shown_whole_over_several_rows() {
    let mut app = started();
    let reason = "firmware: install refused: this box did not boot from a Tandem disk image \
                  slot (tandem.slot= names none and no EFI loader entry was found); flash \
                  tandem-qemu-lab.img to the box's disk first";
    app.message = String::from(reason);
    let text = text_of(&buffer_of(&app, GlyphMode::Ascii));
    let rows: Vec<&str> = text.lines().collect();
    let height = usize::from(HEIGHT);
    assert_eq!(rows.len(), height);
    // The help line stays last, the message's rows right above it, the box closed above them.
    assert!(
        rows[height - 1].contains("Ctrl-L repaint"),
        "help line: {}",
        rows[height - 1]
    );
    let shown: Vec<&str> = rows[height - 4..height - 1].to_vec();
    assert_eq!(
        shown.join(" ").split_whitespace().collect::<Vec<_>>(),
        reason.split_whitespace().collect::<Vec<_>>(),
        "the message over three rows:\n{text}"
    );
    assert!(
        rows[height - 5].starts_with('+'),
        "the box's bottom border above it:\n{text}"
    );
    assert!(shown
        .iter()
        .all(|row| row.chars().count() <= usize::from(WIDTH)));

    // Far too long: four rows, the last cut with "...".
    app.message = reason.repeat(4);
    let text = text_of(&buffer_of(&app, GlyphMode::Ascii));
    let rows: Vec<&str> = text.lines().collect();
    assert!(rows[height - 2].ends_with("..."), "cut with ...:\n{text}");
    assert!(
        rows[height - 6].starts_with('+'),
        "four message rows:\n{text}"
    );

    // A one-row message: the box keeps its size (the snapshots' layout).
    app.message = String::from("committed generation 7");
    let text = text_of(&buffer_of(&app, GlyphMode::Ascii));
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows[height - 2], "committed generation 7");
    assert!(rows[height - 3].starts_with('+'), "{text}");
}
