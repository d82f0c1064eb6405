//! Draws an [`App`] into a ratatui frame: a title bar (box, pair role, generation, alarms,
//! uncommitted changes, a commit-confirm countdown), the screen in a bordered box, a message or
//! prompt line and a help line. Focus and selection are reverse video; nothing depends on
//! colour. Borders follow the [`GlyphMode`]: ASCII unless the operator chose otherwise.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use ratatui_core::buffer::Buffer;
use ratatui_core::layout::Rect;
use ratatui_core::style::{Modifier, Style};
use ratatui_core::symbols::border;
use ratatui_core::terminal::Frame;
use ratatui_core::widgets::Widget;
use ratatui_widgets::block::Block;
use ratatui_widgets::borders::Borders;

use crate::app::tree::EntryKind;
use crate::app::{App, Modal, Screen, MENU};
use crate::glyphs::GlyphMode;

/// ASCII borders: every terminal has them.
const ASCII_BORDER: border::Set<'static> = border::Set {
    top_left: "+",
    top_right: "+",
    bottom_left: "+",
    bottom_right: "+",
    vertical_left: "|",
    vertical_right: "|",
    horizontal_top: "-",
    horizontal_bottom: "-",
};

fn reversed() -> Style {
    Style::default().add_modifier(Modifier::REVERSED)
}

fn bold() -> Style {
    Style::default().add_modifier(Modifier::BOLD)
}

/// Draws the whole UI.
pub fn render(app: &App, glyphs: GlyphMode, frame: &mut Frame<'_>) {
    let area = frame.area();
    draw(app, glyphs, area, frame.buffer_mut());
}

/// Draws the whole UI into a buffer (what [`render`] does, without a terminal).
pub fn draw(app: &App, glyphs: GlyphMode, area: Rect, buf: &mut Buffer) {
    if area.height < 6 || area.width < 20 {
        buf.set_stringn(
            area.x,
            area.y,
            "terminal too small",
            usize::from(area.width),
            bold(),
        );
        return;
    }
    let width = usize::from(area.width);
    // Title bar.
    buf.set_style(Rect { height: 1, ..area }, reversed());
    buf.set_stringn(area.x, area.y, title_bar(app), width, reversed());
    // The screen.
    let body = Rect {
        x: area.x,
        y: area.y + 1,
        width: area.width,
        height: area.height - 3,
    };
    let set = match glyphs {
        GlyphMode::Ascii => ASCII_BORDER,
        GlyphMode::Utf8 | GlyphMode::DecLineDrawing => border::PLAIN,
    };
    let title = match (app.screen, app.trees.get(&app.screen)) {
        (screen, Some(tree)) if !app.live => {
            let path = tree.path();
            if path.is_empty() {
                format!(" {} ", screen.title())
            } else {
                format!(" {}: {path} ", screen.title())
            }
        }
        (screen, Some(_)) => format!(" {}: live ", screen.title()),
        (screen, None) => format!(" {} ", screen.title()),
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_set(set)
        .title(title);
    let inner = block.inner(body);
    block.render(body, buf);
    let lines = body_lines(app, usize::from(inner.height));
    for (row, (text, style)) in lines.into_iter().enumerate() {
        let Ok(row) = u16::try_from(row) else { break };
        if row >= inner.height {
            break;
        }
        if style != Style::default() {
            buf.set_style(
                Rect {
                    y: inner.y + row,
                    height: 1,
                    ..inner
                },
                style,
            );
        }
        buf.set_stringn(
            inner.x,
            inner.y + row,
            text,
            usize::from(inner.width),
            style,
        );
    }
    // Message or prompt, then help.
    let message_row = area.y + area.height - 2;
    let (message, style) = message_line(app);
    buf.set_stringn(area.x, message_row, message, width, style);
    let help = format!("{}  |  m menu  b back  Ctrl-L repaint", app.screen.help());
    buf.set_stringn(
        area.x,
        area.y + area.height - 1,
        help,
        width,
        Style::default(),
    );
}

fn title_bar(app: &App) -> String {
    let bar = &app.bar;
    let mut text = format!(
        " Tandem  {}  role {}  gen {}",
        if bar.box_name.is_empty() {
            "-"
        } else {
            &bar.box_name
        },
        if bar.role.is_empty() { "-" } else { &bar.role },
        if bar.generation.is_empty() {
            "-"
        } else {
            &bar.generation
        },
    );
    if bar.alarms > 0 {
        text.push_str(&format!("  ALARMS {}", bar.alarms));
    }
    if bar.diverged {
        text.push_str("  DIVERGED");
    }
    if bar.uncommitted > 0 {
        text.push_str(&format!("  {} uncommitted changes", bar.uncommitted));
    }
    if let Some((generation, seconds)) = app.confirm_countdown() {
        text.push_str(&format!("  CONFIRM gen {generation} in {seconds}s"));
    }
    text
}

fn message_line(app: &App) -> (String, Style) {
    match &app.modal {
        Some(Modal::Prompt { prompt, error, .. }) => {
            let mut line = format!("{} {}_", prompt.label, prompt.shown());
            if let Some(error) = error {
                line = format!("{error} | {line}");
            }
            (line, bold())
        }
        None => (app.message.clone(), Style::default()),
    }
}

/// The lines inside the box, with their style, at most `height`.
fn body_lines(app: &App, height: usize) -> Vec<(String, Style)> {
    let plain = |text: String| (text, Style::default());
    match app.screen {
        Screen::Menu => MENU
            .iter()
            .enumerate()
            .map(|(at, item)| {
                let text = format!(" {}  {}", item.hotkey, item.title);
                let style = if at == app.menu_selected {
                    reversed()
                } else {
                    Style::default()
                };
                (text, style)
            })
            .collect(),
        screen if app.trees.contains_key(&screen) && !app.live => tree_lines(app, screen, height),
        Screen::Dashboard => {
            let mut lines: Vec<(String, Style)> = Vec::new();
            let status = app
                .text(Screen::Dashboard)
                .map(|v| v.lines.as_slice())
                .unwrap_or_default();
            for line in status {
                if let Some(fact) = line.strip_prefix("status: ") {
                    if fact != "end" {
                        lines.push(plain(fact.to_string()));
                    }
                }
            }
            for (screen, heading) in [(Screen::Vrrp, "VRRP"), (Screen::Services, "Services")] {
                if let Some(view) = app.text(screen) {
                    lines.push((heading.to_string(), bold()));
                    lines.extend(view.lines.iter().take(8).map(|l| plain(l.clone())));
                }
            }
            lines
        }
        Screen::Power => alloc::vec![
            plain(String::from("r  reboot this box (asks first)")),
            plain(String::from("o  power this box off (asks first)")),
        ],
        screen => {
            let mut lines: Vec<(String, Style)> = Vec::new();
            if let Some(notice) = screen.not_there_yet() {
                for chunk in wrap(notice, 76) {
                    lines.push((chunk, bold()));
                }
            }
            if screen == Screen::Logs {
                if let Some(filter) = &app.log_filter {
                    lines.push((format!("filter: {filter}"), bold()));
                }
            }
            if let Some(view) = app.text(screen) {
                let room = height.saturating_sub(lines.len()).max(1);
                // Scroll so the line at `scroll` is shown; a following view shows the end.
                let start = if view.follow {
                    view.lines.len().saturating_sub(room)
                } else {
                    view.scroll.min(view.lines.len().saturating_sub(1))
                };
                lines.extend(
                    view.lines
                        .iter()
                        .skip(start)
                        .take(room)
                        .map(|l| plain(l.clone())),
                );
            } else {
                lines.push(plain(String::from("(asking the daemon)")));
            }
            lines
        }
    }
}

fn tree_lines(app: &App, screen: Screen, height: usize) -> Vec<(String, Style)> {
    let Some(tree) = app.trees.get(&screen) else {
        return Vec::new();
    };
    if let Some(error) = &tree.error {
        return wrap(error, 76).into_iter().map(|l| (l, bold())).collect();
    }
    if tree.entries.is_empty() {
        let hint = if tree.is_list() {
            "(empty: a adds an item)"
        } else {
            "(asking the daemon)"
        };
        return alloc::vec![(hint.to_string(), Style::default())];
    }
    let start = (tree.selected + 1).saturating_sub(height);
    tree.entries
        .iter()
        .enumerate()
        .skip(start)
        .take(height)
        .map(|(at, entry)| {
            let (marker, shown) = match entry.kind {
                EntryKind::Table | EntryKind::List | EntryKind::Item => (">", entry.shown.as_str()),
                EntryKind::Value => ("=", entry.shown.as_str()),
                EntryKind::Unset => (" ", "(not set)"),
            };
            let text = format!(" {marker} {:<26} {shown}", entry.segment);
            let style = if at == tree.selected {
                reversed()
            } else {
                Style::default()
            };
            (text, style)
        })
        .collect()
}

/// Splits text into lines of at most `width` characters at blanks.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(core::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}
