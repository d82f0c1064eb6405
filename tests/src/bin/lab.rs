//! `lab`: boots the Tandem lab pair for `make run`.
//!
//! box-a and box-b (public, public2, private, peer; their public side an active-backup bond
//! `bond0` of public and public2) holding a VRRP VIP and balancing it by LVS direct routing over
//! rs1 and rs2 (public, private; the lab image, real-server role plus the lab HTTP responder),
//! and a client namespace on the public segment. On a terminal it attaches to box-a's console
//! until you press Ctrl-] (which tears the lab down); without one it waits for every box,
//! prints one status table and each director's bond, and exits.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tandem_lab::servers::{dr_director_bonded, dr_real_server};
use tandem_lab::{BoxSpec, Lab, QemuBox, Segment};

const BOOT: Duration = Duration::from_secs(240);
const PEER_WAIT: Duration = Duration::from_secs(60);
/// Until every NIC of a ready box reports up.
const NICS_WAIT: Duration = Duration::from_secs(60);
/// Until the VIP is up on box-a and both real servers pass their checks.
const BALANCE_WAIT: Duration = Duration::from_secs(120);
/// Ctrl-]: the detach key, as in telnet.
const DETACH: u8 = 0x1d;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("lab: {message}");
            ExitCode::from(1)
        }
    }
}

/// The lab's service address: a VRRP VIP held by box-a (box-b backs it up), balanced by LVS
/// direct routing to rs1 and rs2, which hold it on loopback and run the lab HTTP responder.
const VIP: &str = "192.0.2.10";

/// The boxes; `console_ui`: the directors run the console UI on their serial consoles (an
/// operator attached on a terminal), else line commands (the figures below read log lines).
fn specs(console_ui: bool) -> Vec<BoxSpec> {
    let director = [
        Segment::Public,
        Segment::Public2,
        Segment::Private,
        Segment::Peer,
    ];
    let real_server = [Segment::Public, Segment::Private];
    let ui = |spec: BoxSpec| {
        if console_ui {
            spec.with_console_ui()
        } else {
            spec
        }
    };
    vec![
        ui(
            BoxSpec::new("box-a", &director).with_config(&dr_director_bonded(
                "box-a",
                "192.0.2.1",
                200,
                VIP,
                80,
            )),
        ),
        ui(
            BoxSpec::new("box-b", &director).with_config(&dr_director_bonded(
                "box-b",
                "192.0.2.2",
                100,
                VIP,
                80,
            )),
        ),
        dr_real_server("rs1", "192.0.2.21", VIP, &real_server),
        dr_real_server("rs2", "192.0.2.22", VIP, &real_server),
    ]
}

/// Requests the VIP from the client until both real servers have answered (or time runs out);
/// returns how many answers each gave and how many requests failed.
fn balance(client: &tandem_lab::ClientNs) -> (usize, usize, usize) {
    let url = format!("http://{VIP}/");
    let deadline = Instant::now() + BALANCE_WAIT;
    let (mut rs1, mut rs2, mut failed) = (0, 0, 0);
    while Instant::now() < deadline && (rs1 + rs2 < 20 || rs1 == 0 || rs2 == 0) {
        match client.exec("curl", &["-s", "--max-time", "5", &url]) {
            Ok(body) if body.trim() == "served-by rs1" => rs1 += 1,
            Ok(body) if body.trim() == "served-by rs2" => rs2 += 1,
            _ => {
                failed += 1;
                std::thread::sleep(Duration::from_millis(500));
            }
        }
    }
    (rs1, rs2, failed)
}

fn run() -> Result<(), String> {
    let mut lab = Lab::new()?;
    let started = Instant::now();
    let attached = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    for spec in specs(attached) {
        lab.start_box(&spec)?;
    }
    let client = lab.add_client("client", Segment::Public)?;
    client.add_address("192.0.2.100/24")?;
    let client_ns = client.netns.clone();
    eprintln!(
        "lab {}: booting box-a, box-b, rs1, rs2; client namespace {client_ns}",
        lab.id
    );

    if attached {
        return attach(&lab.boxes[0]);
    }

    let mut rows = Vec::new();
    for b in &lab.boxes {
        let ready = b.wait_ready(BOOT)?;
        rows.push((b.name.clone(), ready));
    }
    let boot_wall = started.elapsed().as_secs_f64();
    println!(
        "{:<8} {:>9} {:>9} {:<28}",
        "box", "ready_s", "nics_up", "peer cable"
    );
    for (b, (name, ready)) in lab.boxes.iter().zip(&rows) {
        let peer = if b.segments.contains(&Segment::Peer) {
            match b
                .console
                .wait_for_any_time("peer: reachable from", PEER_WAIT)
            {
                Ok(line) => format!(
                    "reachable {}",
                    line.split("from ")
                        .nth(1)
                        .and_then(|s| s.split_whitespace().next())
                        .unwrap_or("?")
                ),
                Err(_) => "UNREACHABLE".to_owned(),
            }
        } else {
            "-".to_owned()
        };
        let (up, total) = nics_up(b)?;
        println!(
            "{name:<8} {ready:>9.3} {:>9} {peer:<28}",
            format!("{up}/{total}")
        );
    }
    println!(
        "all {} boxes ready; lab booted in {boot_wall:.1} s wall time",
        rows.len()
    );
    // The directors' public side: both ports of the bond up, one of them active.
    for b in lab
        .boxes
        .iter()
        .filter(|b| b.segments.contains(&Segment::Public2))
    {
        let line = b.wait_reply("bond status", "2 of 2 ports up", NICS_WAIT)?;
        let status = line
            .get(line.find("bond bond0:").unwrap_or(0)..)
            .unwrap_or(&line);
        println!("{}: {status}", b.name);
    }
    let box_a = lab.boxes.first().ok_or("no box-a")?;
    box_a
        .console
        .wait_for_any_time("vrrp: web_vip: BACKUP -> MASTER", BALANCE_WAIT)?;
    let client = lab.clients.first().ok_or("no client")?;
    let (rs1, rs2, failed) = balance(client);
    println!(
        "client -> http://{VIP}/ via box-a: rs1 answered {rs1}, rs2 answered {rs2}, {failed} failed \
         while the lab settled"
    );
    if rs1 == 0 || rs2 == 0 {
        return Err(format!("box-a is not balancing {VIP} over rs1 and rs2"));
    }
    Ok(())
}

/// (NICs up, NICs the box has), from the box's own status output. The kernel publishes a
/// NIC's operstate a moment after its carrier (linkwatch), so a NIC still coming up after the
/// ready line is waited for, up to [`NICS_WAIT`]; the last reading is what is reported.
fn nics_up(b: &QemuBox) -> Result<(usize, usize), String> {
    let deadline = Instant::now() + NICS_WAIT;
    loop {
        let status = b.status(Duration::from_secs(60))?;
        let nics: Vec<&String> = status.iter().filter(|l| l.starts_with("nic ")).collect();
        let up = nics.iter().filter(|l| l.contains(" up ")).count();
        if up == nics.len() || Instant::now() >= deadline {
            return Ok((up, nics.len()));
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// Puts the terminal in raw mode and restores it when dropped.
struct RawTerminal(Option<nix::sys::termios::Termios>);

impl RawTerminal {
    fn enter() -> RawTerminal {
        let stdin = std::io::stdin();
        let saved = nix::sys::termios::tcgetattr(&stdin).ok();
        if let Some(saved) = &saved {
            let mut raw = saved.clone();
            nix::sys::termios::cfmakeraw(&mut raw);
            let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &raw);
        }
        RawTerminal(saved)
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(saved) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(
                std::io::stdin(),
                nix::sys::termios::SetArg::TCSANOW,
                saved,
            );
        }
    }
}

/// Connects the terminal to a box console until Ctrl-] or until the box goes away.
fn attach(b: &QemuBox) -> Result<(), String> {
    eprintln!(
        "attached to {} console; press Ctrl-] to detach (this tears the lab down)\r",
        b.name
    );
    let _raw = RawTerminal::enter();
    let (keys_tx, keys_rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buffer = [0u8; 256];
        while let Ok(n) = stdin.read(&mut buffer) {
            if n == 0 || keys_tx.send(buffer[..n].to_vec()).is_err() {
                return;
            }
        }
    });
    let mut offset = 0;
    let mut stdout = std::io::stdout();
    loop {
        let (bytes, next, closed) = b.console.bytes_since(offset);
        offset = next;
        if !bytes.is_empty() {
            let _ = stdout.write_all(&bytes);
            let _ = stdout.flush();
        }
        if closed {
            eprintln!("\r\n{} is gone; tearing the lab down\r", b.name);
            return Ok(());
        }
        match keys_rx.recv_timeout(Duration::from_millis(20)) {
            Ok(keys) => {
                if let Some(at) = keys.iter().position(|k| *k == DETACH) {
                    b.console.send(&keys[..at])?;
                    eprintln!("\r\ndetached; tearing the lab down\r");
                    return Ok(());
                }
                b.console.send(&keys)?;
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        }
    }
}
