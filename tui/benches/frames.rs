//! What the console UI costs on the serial line and in the CPU: bytes per full frame of each
//! screen (ASCII, UTF-8, DEC line drawing), bytes per selection move, and the in-process time
//! from a keypress to the last byte of its redraw (`handle_key` + `Terminal::draw` + taking
//! the bytes), p50 and p99 over 2000 presses. The screens are tests/screens.rs's, drawn against
//! the same fake daemon (tests/support). A plain `main`: run it with
//! `cargo bench -p tandem-tui --bench frames`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::hint::black_box;
use std::time::Instant;

use support::{press, screens, serial_terminal, started, SerialTerminal, MODES};
use tandem_tui::app::{App, Screen};
use tandem_tui::glyphs::GlyphMode;
use tandem_tui::keys::Key;
use tandem_tui::render::render;

const PRESSES: usize = 2000;
/// A byte on the wire at 115200 baud, 8N1, in microseconds.
const MICROS_PER_BYTE: f64 = 10.0 * 1e6 / 115_200.0;

/// A terminal as the UI starts one (80 x 24), the bytes of its start dropped.
fn terminal(glyphs: GlyphMode) -> SerialTerminal {
    let mut terminal = serial_terminal(glyphs);
    terminal.backend_mut().writer_mut().clear();
    terminal
}

/// Draws `app`; returns the bytes the frame sent.
fn frame(terminal: &mut SerialTerminal, app: &App, glyphs: GlyphMode) -> Vec<u8> {
    terminal.draw(|frame| render(app, glyphs, frame)).unwrap();
    std::mem::take(terminal.backend_mut().writer_mut())
}

fn frame_bytes() {
    println!("bytes per frame at 80x24 (full frame / Tab: selection or scroll moved by one)");
    println!(
        "{:<14} {:>12} {:>12} {:>12}",
        "screen", "ascii", "utf8", "dec"
    );
    let mut largest = (0, String::new());
    for (name, app) in screens() {
        let mut row = format!("{name:<14}");
        for (glyphs, mode) in MODES {
            let mut app = app.clone();
            let mut terminal = terminal(glyphs);
            let full = frame(&mut terminal, &app, glyphs).len();
            press(&mut app, Key::Tab);
            let moved = frame(&mut terminal, &app, glyphs).len();
            row.push_str(&format!(" {full:>5} / {moved:>4}"));
            if full > largest.0 {
                largest = (full, format!("{name} {mode}"));
            }
        }
        println!("{row}");
    }
    println!(
        "largest full frame: {} bytes ({}), {:.0} ms at 115200 baud",
        largest.0,
        largest.1,
        largest.0 as f64 * MICROS_PER_BYTE / 1000.0
    );
    // The lines `make bench` collects.
    println!("bench: tui_full_frame_bytes_max {} bytes", largest.0);
}

/// p50 and p99 of `PRESSES` timed Tab presses on `app`, redrawn each time; `reset` puts the
/// selection back (untimed) when Tab would no longer move it.
fn keypress_to_last_byte(
    label: &str,
    mut app: App,
    glyphs: GlyphMode,
    reset: impl Fn(&mut App) -> bool,
) {
    let mut terminal = terminal(glyphs);
    frame(&mut terminal, &app, glyphs);
    let mut micros = Vec::with_capacity(PRESSES);
    let mut bytes = 0usize;
    for _ in 0..PRESSES {
        if reset(&mut app) {
            frame(&mut terminal, &app, glyphs);
        }
        let start = Instant::now();
        app.handle_key(Key::Tab);
        terminal
            .draw(|frame| render(black_box(&app), glyphs, frame))
            .unwrap();
        let sent = std::mem::take(terminal.backend_mut().writer_mut());
        let elapsed = start.elapsed();
        bytes += black_box(sent).len();
        micros.push(elapsed.as_secs_f64() * 1e6);
    }
    assert!(
        app.take_requests().is_empty(),
        "{label}: Tab asked the daemon"
    );
    micros.sort_by(f64::total_cmp);
    let at = |percent: usize| micros[(micros.len() * percent / 100).min(micros.len() - 1)];
    let per_press = bytes as f64 / PRESSES as f64;
    let slug = label.replace([' ', '(', ')'], "_").replace("__", "_");
    println!("bench: tui_keypress_redraw_{slug}_us_p50 {:.1} us", at(50));
    println!("bench: tui_keypress_bytes_{slug} {per_press:.0} bytes");
    println!(
        "{label:<22} p50 {:7.1} us  p99 {:7.1} us  max {:8.1} us  {per_press:5.0} bytes/press \
         ({:.1} ms on the wire)",
        at(50),
        at(99),
        micros[micros.len() - 1],
        per_press * MICROS_PER_BYTE / 1000.0,
    );
}

fn main() {
    frame_bytes();
    println!();
    println!("keypress (Tab) -> last byte of the redraw, in process, {PRESSES} presses");
    for (glyphs, mode) in MODES {
        keypress_to_last_byte(&format!("menu {mode}"), started(), glyphs, |_| false);
    }
    for (glyphs, mode) in MODES {
        let mut system = started();
        press(&mut system, Key::Char('s'));
        let last = system.trees[&Screen::System].entries.len() - 1;
        keypress_to_last_byte(
            &format!("tree (System) {mode}"),
            system,
            glyphs,
            move |app| {
                let tree = &app.trees[&Screen::System];
                if tree.selected < last {
                    return false;
                }
                app.handle_key(Key::PageUp);
                app.handle_key(Key::PageUp);
                true
            },
        );
    }
}
