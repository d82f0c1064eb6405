//! What the console UI costs on the serial line and in the CPU: bytes per full frame of each
//! screen (ASCII, UTF-8, DEC line drawing), bytes per selection move, and the in-process time
//! from a keypress to the last byte of its redraw (`handle_key` + `Terminal::draw` + taking
//! the bytes), p50 and p99 over 2000 presses. A plain `main`: run it with
//! `cargo bench -p tandem-tui --bench frames`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::Instant;

use ratatui_core::layout::Size;
use ratatui_core::terminal::Terminal;
use tandem_tui::app::{App, Screen, MENU};
use tandem_tui::glyphs::GlyphMode;
use tandem_tui::keys::Key;
use tandem_tui::render::render;
use tandem_tui::serial::{init_sequence, SerialBackend};

const WIDTH: u16 = 80;
const HEIGHT: u16 = 24;
const PRESSES: usize = 2000;
/// A byte on the wire at 115200 baud, 8N1, in microseconds.
const MICROS_PER_BYTE: f64 = 10.0 * 1e6 / 115_200.0;

const MODES: [(GlyphMode, &str); 3] = [
    (GlyphMode::Ascii, "ascii"),
    (GlyphMode::Utf8, "utf8"),
    (GlyphMode::DecLineDrawing, "dec"),
];

/// The daemon's answers (shapes as in tests/screens.rs, shortened).
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
             pair: end\n"
        }
        "vrrp status" => {
            "vrrp: 2 instances, 1 master\n\
             instance web_vip (v3 IPv4, eth0 VRID 51)\n\
             \x20 state master for 12.3s\n\
             \x20 priority 150 (configured 150), advert 100 cs, master down interval 3.4s\n\
             \x20 virtual addresses: 192.0.2.10/32 on eth0\n\
             instance db_vip (v3 IPv4, eth1 VRID 52)\n\
             \x20 state backup for 12.5s\n\
             \x20 virtual addresses: 10.0.0.20/24 on eth1\n"
        }
        "lvs status" => {
            "lvs: 2 virtual services, 4 real servers in the kernel table\n\
             lvs: TCP  192.0.2.10:443 wrr |     1520    20311    18774   2811034  20381442\n\
             lvs:   -> 10.0.0.11:443 Masq 1 3 41 |      760    10150     9380   1405010  10190201 | https up since 5.1s, in\n\
             lvs:   -> 10.0.0.12:443 Masq 1 2 38 |      760    10161     9394   1406024  10191241 | https up since 5.1s, in\n\
             lvs: UDP  192.0.2.10:53 rr |      310      310      310     21080     49600\n\
             lvs:   -> 10.0.0.21:53 Route 1 0 12 |      310      310      310     21080     49600 | dns up since 5.2s, in\n\
             lvs:   -> 10.0.0.22:53 (out) | dns down since 6.3s last failure: timed out, out: failed check (removed)\n\
             lvs: end\n"
        }
        "compare" => {
            "  [[vrrp]] name = \"web_vip\"\n\
             - priority = 100\n\
             + priority = 150\n"
        }
        "log" => {
            "[    1.030] tandem: config generation 7 loaded from /dev/vdb\n\
             [    2.877] tandem: vrrp: web_vip: INIT -> BACKUP: started\n\
             [    3.204] tandem: ready in 3.204 s\n\
             [    5.991] tandem: vrrp: web_vip: BACKUP -> MASTER: master down timer expired\n"
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
        "browse vrrp" => {
            "browse: web_vip\titem\tversion=\"v3\" vrid=51 interface=\"eth0\" priority=150 ...\n\
             browse: db_vip\titem\tversion=\"v3\" vrid=52 interface=\"eth1\" priority=100 ...\n\
             browse: end\n"
        }
        "browse vrrp.web_vip" => {
            "browse: name\tvalue\t\"web_vip\"\n\
             browse: vrid\tvalue\t51\n\
             browse: interface\tvalue\t\"eth0\"\n\
             browse: priority\tvalue\t150\n\
             browse: vips\tlist\t1 items\n\
             browse: track_interfaces\tvalue\t[\"eth1\"]\n\
             browse: unicast_src\tunset\t\n\
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
        line if line.starts_with("browse ") => "browse: end\n",
        other => return format!("{other}: unknown command\n"),
    };
    text.to_string()
}

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

fn screens() -> Vec<(String, App)> {
    let mut screens = vec![(String::from("menu"), started())];
    for item in MENU {
        let Some(screen) = item.screen else { continue };
        let mut app = started();
        press(&mut app, Key::Char(item.hotkey));
        screens.push((format!("{screen:?}"), app));
    }
    let mut item = started();
    press(&mut item, Key::Char('4'));
    press(&mut item, Key::Enter);
    screens.push((String::from("vrrp.web_vip"), item));
    screens
}

type SerialTerminal = Terminal<SerialBackend<Vec<u8>>>;

/// A terminal as the UI starts one: the init sequence, then a clear; its bytes dropped.
fn terminal(glyphs: GlyphMode) -> SerialTerminal {
    let mut backend = SerialBackend::new(Vec::new(), Size::new(WIDTH, HEIGHT), glyphs);
    backend.writer_mut().extend_from_slice(init_sequence());
    let mut terminal = Terminal::new(backend).unwrap();
    terminal.clear().unwrap();
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
