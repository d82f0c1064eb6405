//! What the console UI's tests and the frames bench share: the 80 x 24 screen and the glyph
//! modes; a fake daemon (`answer`) with the app driven against it (`settle`, `press`,
//! `started`) and every screen reachable from the menu (`screens`); a serial terminal started
//! as the UI starts one; and the `Harness` that draws the same frames into ratatui's
//! `TestBackend` and through `SerialBackend` into a VT100 emulator, with the comparison of the
//! two. Used by `mod support;` from tests/screens.rs and tests/serial_vt100.rs, and by
//! `#[path = "../tests/support/mod.rs"] mod support;` from benches/frames.rs.

// Each of the three users takes a different part of this module (serial_vt100.rs draws its
// own frames and never drives an `App`; the bench has no emulator), so what one of them does
// not use is dead code there.
#![allow(dead_code)]

use ratatui_core::backend::TestBackend;
use ratatui_core::buffer::{Buffer, CellWidth};
use ratatui_core::layout::Size;
use ratatui_core::style::{Color, Modifier};
use ratatui_core::terminal::{Frame, Terminal};
use tandem_tui::app::{App, Modal, Screen, MENU};
use tandem_tui::glyphs::GlyphMode;
use tandem_tui::keys::Key;
use tandem_tui::serial::{init_sequence, SerialBackend};

pub const WIDTH: u16 = 80;
pub const HEIGHT: u16 = 24;

pub const MODES: [(GlyphMode, &str); 3] = [
    (GlyphMode::Ascii, "ascii"),
    (GlyphMode::Utf8, "utf8"),
    (GlyphMode::DecLineDrawing, "dec"),
];

pub const REFUSAL: &str = "set: vrrp.web_vip.priority: expected a number from 1 to 254, got 300\n";

/// What the daemon answers to a console command line (the shapes of `daemon.rs`, the config
/// editor's `browse` and `compare`, and the engines' status texts).
pub fn answer(line: &str) -> String {
    let text: &str = match line {
        "status" => {
            "status: name=box-a board=qemu-lab ready=3.2\n\
             status: nic public eth0 up carrier=yes\n\
             status: nic private eth1 up carrier=yes\n\
             status: nic peer eth2 up carrier=no\n\
             status: peer reachable fe80::1 rtt=0.4ms\n\
             status: pair heartbeat eth2 partner-alive rtt=0.3ms uplink=1\n\
             status: config generation=7 candidate=changed\n\
             status: metrics serving http://192.168.100.11:9100/metrics\n\
             status: syslog udp 192.168.100.1:514 facility=daemon sent=412 dropped=0 ready\n\
             status: syslog tcp 192.168.100.2:601 facility=local0 sent=380 dropped=31 (queue_full=31 send_failed=0) queued=12 connected\n\
             status: time synchronised to 192.168.100.1 stratum 2 offset +0.000412 s delay 0.000630 s, last sync 37 s ago\n\
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
        "ports" => return ports_answer("up"),
        "set vrrp.web_vip.priority 300" => REFUSAL,
        other => return format!("{other}: unknown command; `help` lists the commands\n"),
    };
    text.to_string()
}

/// The daemon's `ports`: a saved map that swaps public and private at the next boot; the
/// private port's carrier is `private_carrier`.
pub fn ports_answer(private_carrier: &str) -> String {
    format!(
        "ports: board qemu-lab roles public private peer mgmt\n\
         ports: 0000:00:03.0 name=public role=public from=board next=private carrier=up mac=52:54:00:1a:01:01 driver=virtio_net\n\
         ports: 0000:00:04.0 name=private role=private from=board next=public carrier={private_carrier} mac=52:54:00:1a:01:02 driver=virtio_net\n\
         ports: 0000:00:05.0 name=peer role=peer from=board carrier=down mac=52:54:00:1a:01:03 driver=virtio_net\n\
         ports: saved public=0000:00:04.0 private=0000:00:03.0\n\
         ports: end\n"
    )
}

/// Answers every queued request (and what the answers queue) until nothing is queued.
pub fn settle(app: &mut App) {
    settle_with(app, answer);
}

/// [`settle`] with another daemon.
pub fn settle_with(app: &mut App, answer: impl Fn(&str) -> String) {
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

pub fn press(app: &mut App, key: Key) {
    app.handle_key(key);
    settle(app);
}

pub fn started() -> App {
    let mut app = App::new(0);
    settle(&mut app);
    app
}

pub fn slug(screen: Screen) -> &'static str {
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
pub fn vrrp_item() -> App {
    let mut app = started();
    press(&mut app, Key::Char('4'));
    press(&mut app, Key::Enter);
    assert_eq!(app.trees[&Screen::Vrrp].path(), "vrrp.web_vip");
    app
}

/// The priority typed out of range: the prompt comes back with the daemon's refusal.
pub fn refused_prompt() -> App {
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

/// The Ports screen's assign flow, watching for PUBLIC: the private port was seen down.
pub fn assign_watching() -> App {
    let mut app = started();
    press(&mut app, Key::Char('2'));
    app.handle_key(Key::Char('w'));
    settle_with(&mut app, |line| match line {
        "ports" => ports_answer("down"),
        other => answer(other),
    });
    assert!(app.assign.is_some(), "w starts the flow");
    app
}

/// The private port's carrier came back: proposed as public.
pub fn assign_proposed() -> App {
    let mut app = assign_watching();
    app.tick(app.now_ms + 500);
    settle(&mut app);
    app
}

/// Public taken, the other roles skipped: the new map and the question.
pub fn assign_summary() -> App {
    let mut app = assign_proposed();
    press(&mut app, Key::Enter);
    for _ in 0..3 {
        press(&mut app, Key::Char('s'));
    }
    app
}

/// The `ports` of a 4-port box (`x86-1u-4port-igb`: four ports, each with a role, and public2
/// offered for any of them); the mgmt port's carrier is `mgmt_carrier`.
pub fn igb_ports_answer(mgmt_carrier: &str) -> String {
    format!(
        "ports: board x86-1u-4port-igb roles public private peer mgmt public2\n\
         ports: 0000:01:00.0 name=mgmt role=mgmt from=board carrier={mgmt_carrier} mac=00:1b:21:00:00:01 driver=igb\n\
         ports: 0000:02:00.0 name=public role=public from=board carrier=up mac=00:1b:21:00:00:02 driver=igb\n\
         ports: 0000:03:00.0 name=private role=private from=board carrier=up mac=00:1b:21:00:00:03 driver=igb\n\
         ports: 0000:04:00.0 name=peer role=peer from=board carrier=up mac=00:1b:21:00:00:04 driver=igb\n\
         ports: saved none (the board profile's ports)\n\
         ports: end\n"
    )
}

/// The 4-port box's assign flow at its last step, the optional public2: the four usual roles
/// skipped, the mgmt port's cable pulled and plugged back, proposed as public2.
pub fn assign_public2() -> App {
    let mut app = started();
    press(&mut app, Key::Char('2'));
    let igb = |carrier: &'static str| {
        move |line: &str| match line {
            "ports" => igb_ports_answer(carrier),
            other => answer(other),
        }
    };
    app.handle_key(Key::Char('w'));
    settle_with(&mut app, igb("up"));
    for _ in 0..4 {
        app.handle_key(Key::Char('s'));
        settle_with(&mut app, igb("up"));
    }
    assert_eq!(
        app.assign.as_ref().and_then(|flow| flow.role()),
        Some("public2")
    );
    for carrier in ["down", "up"] {
        app.tick(app.now_ms + 500);
        settle_with(&mut app, igb(carrier));
    }
    app
}

/// Every screen reachable from the menu, named as its snapshot files are.
pub fn screens() -> Vec<(String, App)> {
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
    screens.push((String::from("ports-assign-watching"), assign_watching()));
    screens.push((String::from("ports-assign-proposed"), assign_proposed()));
    screens.push((String::from("ports-assign-summary"), assign_summary()));
    screens.push((String::from("ports-assign-public2"), assign_public2()));
    screens
}

pub type SerialTerminal = Terminal<SerialBackend<Vec<u8>>>;

/// A terminal as the UI starts one: the init sequence, then `Terminal::clear` (their bytes are
/// in the writer).
pub fn serial_terminal(glyphs: GlyphMode) -> SerialTerminal {
    let mut backend = SerialBackend::new(Vec::new(), Size::new(WIDTH, HEIGHT), glyphs);
    backend.writer_mut().extend_from_slice(init_sequence());
    let mut terminal = Terminal::new(backend).unwrap();
    terminal.clear().unwrap();
    terminal
}

/// The same frames drawn through both backends, the serial bytes fed to an emulator.
pub struct Harness {
    pub glyphs: GlyphMode,
    /// What the app meant.
    pub expected: Terminal<TestBackend>,
    pub serial: SerialTerminal,
    /// What a terminal shows.
    pub emulator: vt100::Parser,
    bytes_fed: usize,
}

impl Harness {
    /// Starts as the app does: the init sequence, then `Terminal::clear`.
    pub fn new(glyphs: GlyphMode) -> Harness {
        let mut harness = Harness {
            glyphs,
            expected: Terminal::new(TestBackend::new(WIDTH, HEIGHT)).unwrap(),
            serial: serial_terminal(glyphs),
            emulator: vt100::Parser::new(HEIGHT.try_into().unwrap(), WIDTH.try_into().unwrap(), 0),
            bytes_fed: 0,
        };
        harness.feed_emulator();
        harness
    }

    /// Feeds the bytes sent since the last call to the emulator; returns them.
    fn feed_emulator(&mut self) -> Vec<u8> {
        let new_bytes = self.serial.backend().writer()[self.bytes_fed..].to_vec();
        self.emulator.process(&new_bytes);
        self.bytes_fed += new_bytes.len();
        new_bytes
    }

    /// Draws a frame through both backends; returns the serial bytes it cost.
    pub fn draw(&mut self, render: impl Fn(&mut Frame)) -> Vec<u8> {
        self.expected.draw(&render).unwrap();
        self.serial.draw(&render).unwrap();
        self.feed_emulator()
    }

    /// Every byte sent so far, the init sequence first.
    pub fn all_bytes(&self) -> &[u8] {
        self.serial.backend().writer()
    }

    #[track_caller]
    pub fn assert_emulator_shows_expected(&self, context: &str) {
        assert_screen_shows(
            self.expected.backend().buffer(),
            self.emulator.screen(),
            self.glyphs,
            context,
        );
    }
}

/// The DEC special graphics letter the emulator shows for a box-drawing symbol: vt100 does
/// not implement `ESC ( 0`, so it shows the letter itself (`q` for `─`, ...). A real VT100
/// shows the line.
fn dec_letter(symbol: &str) -> Option<&'static str> {
    Some(match symbol {
        "─" | "━" | "═" => "q",
        "│" | "┃" | "║" => "x",
        "┌" | "┏" | "╔" | "╭" => "l",
        "┐" | "┓" | "╗" | "╮" => "k",
        "└" | "┗" | "╚" | "╰" => "m",
        "┘" | "┛" | "╝" | "╯" => "j",
        _ => return None,
    })
}

/// What the terminal must show for a symbol of the buffer in `glyphs` mode.
pub fn shown_symbol(symbol: &str, glyphs: GlyphMode) -> &str {
    match glyphs {
        GlyphMode::Utf8 => symbol,
        _ if symbol.is_ascii() => symbol,
        GlyphMode::DecLineDrawing => dec_letter(symbol).unwrap_or("?"),
        GlyphMode::Ascii => "?",
    }
}

/// The named colours in the order of their SGR codes (30-37, then 90-97), which is the
/// emulator's index 0-15 for each. An expectation of its own, deliberately not the serial
/// backend's private colour table, so that a wrong entry there shows here.
const SGR_NAMED_COLORS: [Color; 16] = [
    Color::Black,
    Color::Red,
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Magenta,
    Color::Cyan,
    Color::Gray,
    Color::DarkGray,
    Color::LightRed,
    Color::LightGreen,
    Color::LightYellow,
    Color::LightBlue,
    Color::LightMagenta,
    Color::LightCyan,
    Color::White,
];

/// The emulator's colour for a named ratatui colour.
fn emulator_color(color: Color) -> vt100::Color {
    if color == Color::Reset {
        return vt100::Color::Default;
    }
    let index = SGR_NAMED_COLORS
        .iter()
        .position(|&named| named == color)
        .unwrap_or_else(|| panic!("the screens compared use named colours only, not {color:?}"));
    vt100::Color::Idx(index.try_into().unwrap())
}

/// The emulator's screen shows `expected`: every cell's symbol (as `glyphs` sends it), bold,
/// inverse, colours and width.
#[track_caller]
pub fn assert_screen_shows(
    expected: &Buffer,
    screen: &vt100::Screen,
    glyphs: GlyphMode,
    context: &str,
) {
    for row in 0..HEIGHT {
        let mut column = 0;
        while column < WIDTH {
            let cell = &expected[(column, row)];
            let shown = screen.cell(row, column).unwrap();
            let where_ = format!("{context}: column {column}, row {row}");
            let shown_contents = match shown.contents() {
                "" => " ",
                contents => contents,
            };
            assert_eq!(
                shown_contents,
                shown_symbol(cell.symbol(), glyphs),
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
            assert_eq!(shown.fgcolor(), emulator_color(cell.fg), "fg at {where_}");
            assert_eq!(shown.bgcolor(), emulator_color(cell.bg), "bg at {where_}");
            let wide = cell.symbol().cell_width() == 2;
            assert_eq!(
                shown.is_wide(),
                wide && glyphs == GlyphMode::Utf8,
                "width at {where_}"
            );
            if wide {
                // The column a wide symbol covers keeps stale content in the TestBackend
                // (ratatui never sends it); the emulator has the wide symbol's continuation,
                // or in the 8-bit modes the blank sent after the `?`.
                if glyphs != GlyphMode::Utf8 {
                    let covered = screen.cell(row, column + 1).unwrap();
                    assert_eq!(covered.contents(), " ", "blank after `?` at {where_}");
                }
                column += 2;
            } else {
                column += 1;
            }
        }
    }
}
