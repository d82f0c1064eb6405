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

use crate::app::assign::{AssignFlow, Phase, PortLine};
use crate::app::prompt::Prompt;
use crate::app::tree::EntryKind;
use crate::app::{App, Modal, Screen, MENU};
use crate::glyphs::GlyphMode;
use crate::login::{Gate, GateState};

/// The borders drawn in [`GlyphMode::Ascii`]: every terminal has them.
pub const ASCII_BORDER: border::Set<'static> = border::Set {
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

/// A `status:` fact of the management plane: the metrics endpoint, a remote syslog server,
/// the time.
fn is_management_fact(fact: &str) -> bool {
    ["metrics ", "syslog ", "time "]
        .iter()
        .any(|prefix| fact.starts_with(prefix))
}

/// Draws the whole UI.
pub fn render(app: &App, glyphs: GlyphMode, frame: &mut Frame<'_>) {
    let area = frame.area();
    draw(app, glyphs, area, frame.buffer_mut());
}

/// Draws the login gate (first-boot password, login, back-off) instead of the UI.
pub fn render_gate(app: &App, gate: &Gate, glyphs: GlyphMode, frame: &mut Frame<'_>) {
    let area = frame.area();
    draw_gate(app, gate, glyphs, area, frame.buffer_mut());
}

/// What [`render_gate`] draws, into a buffer.
pub fn draw_gate(app: &App, gate: &Gate, glyphs: GlyphMode, area: Rect, buf: &mut Buffer) {
    let name = if app.bar.box_name.is_empty() {
        "-"
    } else {
        app.bar.box_name.as_str()
    };
    let title_bar = format!(" Tandem  {name}  console login");
    let Some(inner) = frame_chrome(area, buf, &title_bar, " Login ", glyphs, 0) else {
        return;
    };
    let width = usize::from(area.width);
    let mut row = inner.y + 1;
    for line in wrap(&gate.notice, usize::from(inner.width).saturating_sub(2)) {
        if row >= inner.y + inner.height {
            break;
        }
        buf.set_stringn(inner.x + 1, row, line, usize::from(inner.width), bold());
        row += 1;
    }
    row += 1;
    if row < inner.y + inner.height && gate.state != GateState::Waiting {
        let line = format!("{} {}_", gate.prompt.label, gate.prompt.shown());
        buf.set_stringn(
            inner.x + 1,
            row,
            line,
            usize::from(inner.width).saturating_sub(2),
            Style::default(),
        );
    }
    let help = "Enter: submit  Ctrl-U: clear  | forgot it? see README: password recovery";
    buf.set_stringn(
        area.x,
        area.y + area.height - 1,
        help,
        width,
        Style::default(),
    );
}

fn border_set(glyphs: GlyphMode) -> border::Set<'static> {
    match glyphs {
        GlyphMode::Ascii => ASCII_BORDER,
        GlyphMode::Utf8 | GlyphMode::DecLineDrawing => border::PLAIN,
    }
}

/// What every screen and the login gate have around them: the title bar in reverse video on
/// the top row, then a box titled `box_title` down to the third row from the bottom (the
/// last two rows are the caller's), or `extra_rows` higher (a message that needs more than
/// its one row). Returns the inside of the box; `None`, with "terminal too small" written
/// instead, when `area` has no room for them.
fn frame_chrome(
    area: Rect,
    buf: &mut Buffer,
    title_bar_text: &str,
    box_title: &str,
    glyphs: GlyphMode,
    extra_rows: u16,
) -> Option<Rect> {
    if area.height < 6 || area.width < 20 {
        buf.set_stringn(
            area.x,
            area.y,
            "terminal too small",
            usize::from(area.width),
            bold(),
        );
        return None;
    }
    buf.set_style(Rect { height: 1, ..area }, reversed());
    buf.set_stringn(
        area.x,
        area.y,
        title_bar_text,
        usize::from(area.width),
        reversed(),
    );
    let body = Rect {
        x: area.x,
        y: area.y + 1,
        width: area.width,
        height: area.height - 3 - extra_rows.min(area.height.saturating_sub(6)),
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .border_set(border_set(glyphs))
        .title(box_title);
    let inner = block.inner(body);
    block.render(body, buf);
    Some(inner)
}

/// Draws the whole UI into a buffer (what [`render`] does, without a terminal).
pub fn draw(app: &App, glyphs: GlyphMode, area: Rect, buf: &mut Buffer) {
    let title = match (app.screen, app.trees.get(&app.screen)) {
        (Screen::Ports, _) if app.assign.is_some() => {
            format!(" {}: assign roles by carrier ", Screen::Ports.title())
        }
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
    // The message (or a prompt's refusal) takes as many rows as it needs, up to
    // MESSAGE_ROWS, the screen's box giving them up: a refusal's reason is never cut.
    let width = usize::from(area.width);
    let message = match &app.modal {
        Some(Modal::Prompt { error, .. }) => error.clone().unwrap_or_else(|| {
            String::from("Enter: submit   Esc or Ctrl-C: cancel   Ctrl-U: clear")
        }),
        None => app.message.clone(),
    };
    let room = usize::from(area.height.saturating_sub(9)).clamp(1, MESSAGE_ROWS);
    let message_rows = message_rows(&message, width, room);
    let extra_rows = u16::try_from(message_rows.len().saturating_sub(1)).unwrap_or(0);
    // The title bar, then the screen in its box.
    let Some(inner) = frame_chrome(area, buf, &title_bar(app), &title, glyphs, extra_rows) else {
        return;
    };
    let lines = body_lines(app, usize::from(inner.height), usize::from(inner.width));
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
    // The message (or a prompt's refusal), then help (or the prompt itself).
    let last_row = area.y + area.height - 1;
    let message_style = if app.modal.is_some() {
        bold()
    } else {
        Style::default()
    };
    let first_message_row = last_row.saturating_sub(extra_rows + 1);
    for (row, text) in (first_message_row..).zip(&message_rows) {
        buf.set_stringn(area.x, row, text, width, message_style);
    }
    match &app.modal {
        Some(Modal::Prompt { prompt, .. }) => {
            buf.set_stringn(area.x, last_row, prompt_line(prompt, width), width, bold());
        }
        None => {
            let help = if let Some(flow) = &app.assign {
                String::from(match flow.phase {
                    Phase::Loading => "Esc or Ctrl-C: cancel",
                    Phase::Watching => "s skip (keep)  Esc or Ctrl-C: cancel",
                    Phase::Proposed(_) => "Enter yes  n no, keep watching  s skip  Esc: cancel",
                    Phase::Summary => "Enter save  n or Esc: cancel (nothing changes)",
                })
            } else if app.screen == Screen::Menu {
                format!("{}  |  Ctrl-L repaint", app.screen.help())
            } else {
                format!("{}  |  m menu", app.screen.help())
            };
            buf.set_stringn(area.x, last_row, help, width, Style::default());
        }
    }
}

/// `label text_`, scrolled so the cursor stays on screen in `width` columns.
fn prompt_line(prompt: &Prompt, width: usize) -> String {
    let shown = prompt.shown();
    let label = prompt.label.chars().count() + 1;
    let room = width.saturating_sub(label + 1).max(8);
    let chars: Vec<char> = shown.chars().collect();
    let start = (prompt.cursor + 1).saturating_sub(room);
    let cursor_at = prompt.cursor - start;
    let mut line = format!("{} ", prompt.label);
    let visible: Vec<char> = chars.iter().skip(start).take(room).copied().collect();
    for (at, c) in visible.iter().enumerate() {
        line.push(if at == cursor_at { '_' } else { *c });
    }
    if cursor_at >= visible.len() {
        line.push('_');
    }
    line
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

/// The lines inside the box, with their style, at most `height`.
fn body_lines(app: &App, height: usize, width: usize) -> Vec<(String, Style)> {
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
        Screen::Ports if app.assign.is_some() => match &app.assign {
            Some(flow) => assign_lines(app, flow, height),
            None => Vec::new(),
        },
        Screen::Ports if !app.live => {
            // The physical ports with their roles and carrier (`ports`, refreshed with the
            // status): plug a cable in and watch which port comes up; w assigns roles by it.
            let mut lines: Vec<(String, Style)> = Vec::new();
            if !app.ports.ports.is_empty() {
                lines.push((
                    String::from("Ports (w: assign roles by carrier, for the next boot):"),
                    bold(),
                ));
                for port in &app.ports.ports {
                    lines.push(plain(port_line(port)));
                }
                for note in &app.ports.notes {
                    lines.push(plain(format!("  {note}")));
                }
                lines.push(plain(String::new()));
            }
            let room = height.saturating_sub(lines.len()).max(1);
            lines.extend(tree_lines(app, Screen::Ports, room, width));
            lines
        }
        screen if app.trees.contains_key(&screen) && !app.live => {
            tree_lines(app, screen, height, width)
        }
        Screen::Dashboard => {
            let mut lines: Vec<(String, Style)> = Vec::new();
            let status = app
                .text(Screen::Dashboard)
                .map(|v| v.lines.as_slice())
                .unwrap_or_default();
            // The box's facts first, then the management plane's (metrics endpoint, remote
            // syslog servers, time) under their own heading.
            let facts = status
                .iter()
                .filter_map(|line| line.strip_prefix("status: "))
                .filter(|fact| *fact != "end");
            let (management, own): (Vec<&str>, Vec<&str>) =
                facts.partition(|fact| is_management_fact(fact));
            lines.extend(own.iter().map(|fact| plain(fact.to_string())));
            if !management.is_empty() {
                lines.push((String::from("Management"), bold()));
                // Each fact whole: wrapped, the continuation indented.
                for fact in management {
                    for (at, chunk) in wrap(fact, width.saturating_sub(2).max(20))
                        .into_iter()
                        .enumerate()
                    {
                        lines.push(plain(if at == 0 { chunk } else { format!("  {chunk}") }));
                    }
                }
            }
            for (screen, heading) in [(Screen::Vrrp, "VRRP"), (Screen::Services, "Services")] {
                if let Some(view) = app.text(screen) {
                    lines.push((heading.to_string(), bold()));
                    lines.extend(view.lines.iter().map(|l| plain(l.clone())));
                }
            }
            // Tab and n/p scroll the dashboard like any text screen.
            let scroll = app.text(Screen::Dashboard).map_or(0, |v| v.scroll);
            lines.into_iter().skip(scroll).take(height).collect()
        }
        Screen::Power => alloc::vec![
            plain(String::from("r  reboot this box (asks first)")),
            plain(String::from("o  power this box off (asks first)")),
            plain(String::from(
                "f  factory reset: erase the config, pair key, admin password and port map;",
            )),
            plain(String::from(
                "   the firmware stays; reboots into the factory config (asks first)",
            )),
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

/// A port of the `ports` answer in one line of the Ports screen: id, role (and where it came
/// from, or the kernel name without one), the role saved for the next boot, carrier, MAC.
fn port_line(port: &PortLine) -> String {
    let who = if port.role == "-" || port.role.is_empty() {
        format!("{} (no role)", port.name)
    } else {
        format!("{} ({})", port.role, port.from)
    };
    let next = port
        .next
        .as_ref()
        .map_or(String::new(), |next| format!("-> {next}"));
    format!(
        "  {:<12}  {who:<18}  {next:<10}  {:<4}  {}",
        port.id,
        carrier_word(port.carrier),
        port.mac
    )
}

fn carrier_word(carrier: Option<bool>) -> &'static str {
    match carrier {
        Some(true) => "up",
        Some(false) => "down",
        None => "-",
    }
}

/// The assign flow: the step's instruction (or the proposal, or the new map), then the ports
/// with their carrier as last polled.
fn assign_lines(app: &App, flow: &AssignFlow, height: usize) -> Vec<(String, Style)> {
    let plain = |text: String| (text, Style::default());
    let mut lines = Vec::new();
    let total = flow.roles.len();
    match &flow.phase {
        Phase::Loading => lines.push(plain(String::from("(asking the daemon for the ports)"))),
        Phase::Watching | Phase::Proposed(_) => {
            let role = flow.role().unwrap_or("-");
            lines.push(plain(format!("Role {} of {total}: {role}", flow.step + 1)));
            lines.push((
                format!(
                    "Plug the cable into the port you want as {}",
                    role.to_ascii_uppercase()
                ),
                bold(),
            ));
            lines.push(plain(String::from(
                "(s: skip and keep, Esc/Ctrl-C: cancel)",
            )));
            if role == "public2" {
                // The one optional step: most boxes have no bonded public side.
                lines.push(plain(String::from(
                    "Optional: the second public port of a bonded public side; none: s.",
                )));
            }
            lines.push(plain(String::from(
                "A cable already in that port: pull it out, then plug it back in.",
            )));
            lines.push(plain(String::new()));
            if let Phase::Proposed(id) = &flow.phase {
                let now = app
                    .ports
                    .ports
                    .iter()
                    .find(|port| port.id == *id)
                    .map_or("-", |port| port.role.as_str());
                lines.push((
                    format!("port {id} (now {now}) as {role}? Enter: yes"),
                    reversed(),
                ));
                lines.push(plain(String::new()));
            }
        }
        Phase::Summary => {
            lines.push((
                String::from("New map (takes effect at the next boot):"),
                bold(),
            ));
            for (role, port, how) in flow.new_map(&app.ports) {
                let now = app
                    .ports
                    .ports
                    .iter()
                    .find(|p| p.id == port)
                    .map_or("-", |p| p.role.as_str());
                let mut text = format!("  {role:<8} {port:<13}  {how:<7}");
                if now != role {
                    text.push_str(&format!("  (now {now})"));
                }
                lines.push(plain(text));
            }
            if flow.chosen.is_empty() {
                lines.push(plain(String::from(
                    "Nothing chosen: Enter closes, the map stays as it is.",
                )));
            } else {
                lines.push((
                    String::from("Save? (takes effect at the next boot)"),
                    bold(),
                ));
            }
            lines.push(plain(String::new()));
        }
    }
    lines.push(plain(String::from("  port          now        carrier")));
    for port in &app.ports.ports {
        let mut text = format!(
            "  {:<12}  {:<9}  {:<7}",
            port.id,
            if port.role == "-" {
                port.name.as_str()
            } else {
                port.role.as_str()
            },
            carrier_word(port.carrier)
        );
        if let Some(role) = flow.chosen_for_port(&port.id) {
            text.push_str(&format!("  chosen as {role}"));
        } else if flow.phase == Phase::Watching && flow.seen_down.contains(&port.id) {
            text.push_str("  seen down: plug it in");
        }
        lines.push(plain(text));
    }
    lines.truncate(height);
    lines
}

fn tree_lines(app: &App, screen: Screen, height: usize, width: usize) -> Vec<(String, Style)> {
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
            let text = format!(
                " {marker} {:<26} {}",
                entry.segment,
                fit(shown, width.saturating_sub(30))
            );
            let style = if at == tree.selected {
                reversed()
            } else {
                Style::default()
            };
            (text, style)
        })
        .collect()
}

/// `text` in at most `width` characters: cut at a blank before the limit, with `...` saying
/// that more is there (a value is never shown cut in the middle as if it were whole).
fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let cut: String = text.chars().take(width.saturating_sub(4)).collect();
    let cut = match cut.rfind(' ') {
        Some(at) if at > 0 => &cut[..at],
        _ => cut.as_str(),
    };
    format!("{cut} ...")
}

/// Splits text into lines of at most `width` characters at blanks.
/// Most rows a message takes above the help line (the screen's box gives them up).
const MESSAGE_ROWS: usize = 4;

/// `text` in rows of `width` columns, words kept whole where they fit and cut where one is
/// longer than a row; at most `rows` rows, the last ending in `...` when more was left.
/// Always at least one row (an empty one for no message).
fn message_rows(text: &str, width: usize, rows: usize) -> Vec<String> {
    let width = width.max(4);
    if text.chars().count() <= width {
        return Vec::from([String::from(text)]);
    }
    let mut words: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        let chars: Vec<char> = word.chars().collect();
        for piece in chars.chunks(width) {
            words.push(piece.iter().collect());
        }
    }
    let mut lines = wrap(&words.join(" "), width);
    if lines.len() > rows {
        lines.truncate(rows.max(1));
        if let Some(last) = lines.last_mut() {
            let kept: String = last.chars().take(width - 3).collect();
            *last = format!("{kept}...");
        }
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

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
