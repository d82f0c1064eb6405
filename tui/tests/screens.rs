//! The real app's screens: every screen reachable from the menu is driven against a fake
//! daemon, drawn at 80 x 24 into ratatui's `TestBackend` in each glyph mode and compared with a
//! golden text file (`tests/snapshots/<screen>-<mode>.txt`; `UPDATE_SNAPSHOTS=1` rewrites
//! them). The same frames go through `SerialBackend` into a VT100 emulator, which must show
//! what the buffer holds, before and after a selection move; and the serial byte budgets hold.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::PathBuf;

use ratatui_core::backend::TestBackend;
use ratatui_core::buffer::Buffer;
use ratatui_core::layout::{Rect, Size};
use ratatui_core::style::{Color, Modifier};
use ratatui_core::terminal::Terminal;
use tandem_tui::app::{App, Modal, Screen, MENU};
use tandem_tui::glyphs::GlyphMode;
use tandem_tui::keys::Key;
use tandem_tui::render::{draw, render};
use tandem_tui::serial::{init_sequence, SerialBackend};

const WIDTH: u16 = 80;
const HEIGHT: u16 = 24;

/// Largest full frame of a screen in ASCII mode (~270 ms at 115200 baud).
const FULL_FRAME_BUDGET: usize = 3072;
/// Largest selection move (~35 ms at 115200 baud).
const SELECTION_MOVE_BUDGET: usize = 400;

const MODES: [(GlyphMode, &str); 3] = [
    (GlyphMode::Ascii, "ascii"),
    (GlyphMode::Utf8, "utf8"),
    (GlyphMode::DecLineDrawing, "dec"),
];

const REFUSAL: &str = "set: vrrp.web_vip.priority: expected a number from 1 to 254, got 300\n";

/// What the daemon answers to a console command line (the shapes of `daemon.rs`, the config
/// editor's `browse` and `compare`, and the engines' status texts).
fn answer(line: &str) -> String {
    let text: &str = match line {
        "status" => {
            "status: name=box-a board=qemu-lab ready=3.2\n\
             status: nic public eth0 up carrier=yes\n\
             status: nic private eth1 up carrier=yes\n\
             status: nic peer eth2 up carrier=no\n\
             status: peer reachable fe80::1 rtt=0.4ms\n\
             status: pair heartbeat eth2 partner-alive rtt=0.3ms uplink=1\n\
             status: config generation=7 candidate=changed\n\
             status: end\n"
        }
        "pair status" => {
            "pair: paired: this box is a, pair id 8e3161fecc5bd18b, keyed (HMAC-SHA256)\n\
             pair: link eth2 open\n\
             pair: heartbeat on eth2 udp/539 every 100 ms, dead after 300 ms (HMAC-SHA256, pair 8e3161fecc5bd18b)\n\
             pair: partner alive (last heard 42 ms ago, missed 0, rtt 0.31 ms), peer carrier up; sent 1208 received 1207 lost 0 times; refused: none\n\
             pair: partner runs config generation 7 (this box 7); instances: web_vip backup 100, db_vip master 150\n\
             pair: uplink score 1 (1 of 1 routers answer)\n\
             pair: end\n"
        }
        "vrrp status" => {
            "vrrp: 2 instances, 1 master\n\
             instance web_vip (v3 IPv4, eth0 VRID 51)\n\
             \x20 state master for 12.3s\n\
             \x20 why: master down timer expired\n\
             \x20 priority 150 (configured 150), advert 100 cs, master down interval 3.4s\n\
             \x20 master: this box (192.0.2.2)\n\
             \x20 virtual addresses: 192.0.2.10/32 on eth0\n\
             instance db_vip (v3 IPv4, eth1 VRID 52)\n\
             \x20 state backup for 12.5s\n\
             \x20 why: started\n\
             \x20 priority 100 (configured 100), advert 100 cs, master down interval 3.6s\n\
             \x20 master: 10.0.0.3 priority 150 advert 100 cs, last heard 0.4s ago\n\
             \x20 virtual addresses: 10.0.0.20/24 on eth1\n\
             unmatched: VRID not configured 0, truncated 0, family mismatch 0\n"
        }
        "lvs status" => {
            "lvs: 2 virtual services, 4 real servers in the kernel table\n\
             lvs: Prot LocalAddress:Port Scheduler Flags |    Conns   InPkts  OutPkts   InBytes  OutBytes\n\
             lvs:   -> RemoteAddress:Port Forward Weight ActiveConn InActConn | stats | health\n\
             lvs: TCP  192.0.2.10:443 wrr |     1520    20311    18774   2811034  20381442\n\
             lvs:   -> 10.0.0.11:443 Masq 1 3 41 |      760    10150     9380   1405010  10190201 | https up since 5.1s, in\n\
             lvs:   -> 10.0.0.12:443 Masq 1 2 38 |      760    10161     9394   1406024  10191241 | https up since 5.1s, in\n\
             lvs: UDP  192.0.2.10:53 rr |      310      310      310     21080     49600\n\
             lvs:   -> 10.0.0.21:53 Route 1 0 12 |      310      310      310     21080     49600 | dns up since 5.2s, in\n\
             lvs:   -> 10.0.0.22:53 (out) | dns down since 6.3s last failure: timed out, out: failed check (removed)\n\
             lvs: sync: master on peer sync id 3 group 224.0.0.81:8848 running\n\
             lvs: connections: 2 (1 local, 1 synced from the partner)\n\
             lvs: end\n"
        }
        "compare" => {
            "  [[vrrp]] name = \"web_vip\"\n\
             - priority = 100\n\
             + priority = 150\n\
             \x20 [[virtual_services]] name = \"web\"\n\
             + [[virtual_services.real_servers]]\n\
             + address = \"10.0.0.13\"\n\
             + weight = 1\n"
        }
        "log" => {
            "[    0.412] tandem: board qemu-lab: eth0 public, eth1 private, eth2 peer\n\
             [    1.030] tandem: config generation 7 loaded from /dev/vdb\n\
             [    1.204] tandem: pair: this box is a of pair 8e3161fecc5bd18b\n\
             [    2.877] tandem: vrrp: web_vip: INIT -> BACKUP: started\n\
             [    2.878] tandem: vrrp: db_vip: INIT -> BACKUP: started\n\
             [    3.204] tandem: ready in 3.204 s\n\
             [    5.991] tandem: vrrp: web_vip: BACKUP -> MASTER: master down timer expired\n\
             [    5.992] tandem: vrrp: web_vip: added VIP 192.0.2.10/32\n\
             [    6.310] tandem: lvs: real server 10.0.0.22:53 of dns DOWN: timed out\n\
             [    7.100] tandem: peer: reachable from fe80::1 (rtt 0.4 ms)\n"
        }
        "browse" => {
            "browse: system\ttable\thostname=\"box-a\" timezone=\"UTC\"\n\
             browse: management\ttable\tssh=true console_glyphs=\"ascii\"\n\
             browse: peer_link\ttable\tinterface=\"eth2\" heartbeat_interval_ms=100 ...\n\
             browse: notify\tunset\t\n\
             browse: interfaces\tlist\t3 items\n\
             browse: bonds\tlist\t0 items\n\
             browse: vrrp\tlist\t2 items\n\
             browse: sync_groups\tlist\t1 items\n\
             browse: virtual_services\tlist\t2 items\n\
             browse: fwmark_rules\tlist\t0 items\n\
             browse: clusterip\tlist\t1 items\n\
             browse: end\n"
        }
        "browse interfaces" => {
            "browse: eth0\titem\taddresses=[\"192.0.2.2/24\"] mtu=1500\n\
             browse: eth1\titem\taddresses=[\"10.0.0.2/24\"] mtu=1500\n\
             browse: eth2\titem\taddresses=[] mtu=9000\n\
             browse: end\n"
        }
        "browse bonds" => "browse: end\n",
        "browse vrrp" => {
            "browse: web_vip\titem\tversion=\"v3\" vrid=51 interface=\"eth0\" priority=150 ...\n\
             browse: db_vip\titem\tversion=\"v3\" vrid=52 interface=\"eth1\" priority=100 ...\n\
             browse: end\n"
        }
        "browse vrrp.web_vip" => {
            "browse: name\tvalue\t\"web_vip\"\n\
             browse: version\tvalue\t\"v3\"\n\
             browse: vrid\tvalue\t51\n\
             browse: interface\tvalue\t\"eth0\"\n\
             browse: priority\tvalue\t150\n\
             browse: advert_interval_cs\tvalue\t100\n\
             browse: preempt\tvalue\ttrue\n\
             browse: vips\tlist\t1 items\n\
             browse: track_interfaces\tvalue\t[\"eth1\"]\n\
             browse: garp\ttable\tmaster_delay_s=5 master_repeat=5\n\
             browse: unicast_src\tunset\t\n\
             browse: auth\tunset\t\n\
             browse: end\n"
        }
        "browse virtual_services" => {
            "browse: web\titem\tactive=true address=\"192.0.2.10\" port=443 protocol=\"tcp\" ...\n\
             browse: dns\titem\tactive=true address=\"192.0.2.10\" port=53 protocol=\"udp\" ...\n\
             browse: end\n"
        }
        "browse clusterip" => {
            "browse: web_share\titem\taddress=\"192.0.2.20\" interface=\"eth0\" nodes=2\n\
             browse: end\n"
        }
        "set vrrp.web_vip.priority 300" => REFUSAL,
        other => return format!("{other}: unknown command; `help` lists the commands\n"),
    };
    text.to_string()
}

/// Answers every queued request (and what the answers queue) until nothing is queued.
fn settle(app: &mut App) {
    for _ in 0..16 {
        let requests = app.take_requests();
        if requests.is_empty() {
            return;
        }
        for request in requests {
            app.answer(request.id, &answer(&request.line));
        }
    }
    panic!("the app keeps asking the daemon");
}

fn press(app: &mut App, key: Key) {
    app.handle_key(key);
    settle(app);
}

fn started() -> App {
    let mut app = App::new(0);
    settle(&mut app);
    app
}

fn slug(screen: Screen) -> &'static str {
    match screen {
        Screen::Menu => "menu",
        Screen::Dashboard => "dashboard",
        Screen::Ports => "ports",
        Screen::Bonds => "bonds",
        Screen::Vrrp => "vrrp",
        Screen::Services => "services",
        Screen::LoadSharing => "load-sharing",
        Screen::Pair => "pair",
        Screen::Commit => "commit",
        Screen::Logs => "logs",
        Screen::Diagnostics => "diagnostics",
        Screen::System => "system",
        Screen::Firmware => "firmware",
        Screen::Power => "power",
    }
}

/// `vrrp.web_vip`: the VRRP screen one level down.
fn vrrp_item() -> App {
    let mut app = started();
    press(&mut app, Key::Char('4'));
    press(&mut app, Key::Enter);
    assert_eq!(app.trees[&Screen::Vrrp].path(), "vrrp.web_vip");
    app
}

/// The priority typed out of range: the prompt comes back with the daemon's refusal.
fn refused_prompt() -> App {
    let mut app = vrrp_item();
    while app.trees[&Screen::Vrrp]
        .selected_entry()
        .is_some_and(|entry| entry.segment != "priority")
    {
        app.handle_key(Key::Tab);
    }
    press(&mut app, Key::Enter);
    press(&mut app, Key::Ctrl('u'));
    for c in "300".chars() {
        press(&mut app, Key::Char(c));
    }
    press(&mut app, Key::Enter);
    let Some(Modal::Prompt { prompt, error, .. }) = &app.modal else {
        panic!("the refused prompt did not come back: {:?}", app.modal);
    };
    assert_eq!(prompt.text, "300");
    assert_eq!(error.as_deref(), Some(REFUSAL.trim_end()));
    app
}

/// Every screen reachable from the menu, named as its snapshot files are.
fn screens() -> Vec<(String, App)> {
    let mut screens = vec![(String::from("menu"), started())];
    for item in MENU {
        let Some(screen) = item.screen else { continue };
        let mut app = started();
        press(&mut app, Key::Char(item.hotkey));
        assert_eq!(app.screen, screen, "hotkey {}", item.hotkey);
        screens.push((slug(screen).to_string(), app));
    }
    screens.push((String::from("vrrp-web_vip"), vrrp_item()));
    screens.push((String::from("prompt-refused"), refused_prompt()));
    screens
}

fn is_tree_screen(app: &App) -> bool {
    app.trees.contains_key(&app.screen) && !app.live && app.modal.is_none()
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

/// One app state drawn into a `TestBackend` and through `SerialBackend` into an emulator.
struct Harness {
    glyphs: GlyphMode,
    expected: Terminal<TestBackend>,
    serial: Terminal<SerialBackend<Vec<u8>>>,
    emulator: vt100::Parser,
    bytes_fed: usize,
}

impl Harness {
    fn new(glyphs: GlyphMode) -> Harness {
        let mut backend = SerialBackend::new(Vec::new(), Size::new(WIDTH, HEIGHT), glyphs);
        backend.writer_mut().extend_from_slice(init_sequence());
        let mut serial = Terminal::new(backend).unwrap();
        serial.clear().unwrap();
        let mut harness = Harness {
            glyphs,
            expected: Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap(),
            serial,
            emulator: vt100::Parser::new(HEIGHT.try_into().unwrap(), WIDTH.try_into().unwrap(), 0),
            bytes_fed: 0,
        };
        harness.feed_emulator();
        harness
    }

    fn feed_emulator(&mut self) -> Vec<u8> {
        let new_bytes = self.serial.backend().writer()[self.bytes_fed..].to_vec();
        self.emulator.process(&new_bytes);
        self.bytes_fed += new_bytes.len();
        new_bytes
    }

    /// Draws `app` through both backends; returns the serial bytes of the frame.
    fn draw(&mut self, app: &App) -> Vec<u8> {
        self.expected
            .draw(|frame| render(app, self.glyphs, frame))
            .unwrap();
        self.serial
            .draw(|frame| render(app, self.glyphs, frame))
            .unwrap();
        self.feed_emulator()
    }

    #[track_caller]
    fn assert_emulator_shows_expected(&self, context: &str) {
        let expected = self.expected.backend().buffer();
        let screen = self.emulator.screen();
        for row in 0..HEIGHT {
            for column in 0..WIDTH {
                let cell = &expected[(column, row)];
                let shown = screen.cell(row, column).unwrap();
                let where_ = format!("{context}: column {column}, row {row}");
                let contents = match shown.contents() {
                    "" => " ",
                    contents => contents,
                };
                assert_eq!(
                    contents,
                    shown_symbol(cell.symbol(), self.glyphs),
                    "symbol at {where_}"
                );
                assert_eq!(
                    shown.bold(),
                    cell.modifier.contains(Modifier::BOLD),
                    "bold at {where_}"
                );
                assert_eq!(
                    shown.inverse(),
                    cell.modifier.contains(Modifier::REVERSED),
                    "inverse at {where_}"
                );
                // The UI never depends on colour, and sends none.
                assert_eq!((cell.fg, cell.bg), (Color::Reset, Color::Reset));
                assert_eq!(shown.fgcolor(), vt100::Color::Default, "fg at {where_}");
                assert_eq!(shown.bgcolor(), vt100::Color::Default, "bg at {where_}");
            }
        }
    }
}

/// The DEC special graphics letter the emulator shows for a line (vt100 ignores `ESC ( 0`).
fn dec_letter(symbol: &str) -> Option<&'static str> {
    Some(match symbol {
        "─" => "q",
        "│" => "x",
        "┌" => "l",
        "┐" => "k",
        "└" => "m",
        "┘" => "j",
        _ => return None,
    })
}

fn shown_symbol(symbol: &str, glyphs: GlyphMode) -> &str {
    match glyphs {
        GlyphMode::Utf8 => symbol,
        _ if symbol.is_ascii() => symbol,
        GlyphMode::DecLineDrawing => dec_letter(symbol).unwrap_or("?"),
        GlyphMode::Ascii => "?",
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
            let full_frame = harness.draw(&app);
            // What `render` draws into a frame is what `draw` draws into a buffer.
            assert_eq!(
                *harness.expected.backend().buffer(),
                buffer_of(&app, glyphs)
            );
            harness.assert_emulator_shows_expected(&format!("{name}-{mode}, full frame"));

            // Tab: the next line on the menu and tree screens, a line of scroll on texts.
            let was_tree = is_tree_screen(&app);
            press(&mut app, Key::Tab);
            let moved = harness.draw(&app);
            harness.assert_emulator_shows_expected(&format!("{name}-{mode}, after Tab"));
            let unchanged = harness.draw(&app);
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
