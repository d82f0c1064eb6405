//! LAB ONLY: a tiny HTTP responder for real-server boxes in lab images (never in production
//! images). Built static and put into a lab image with `tandem-image build --extra`; tandem
//! starts it when the kernel command line says `tandem.lab_exec=/lab/lab-httpd`.
//!
//! - Ports 80 and 443 (plain HTTP on both, for multi-port firewall-mark services): every request
//!   gets `200 OK` with the body `served-by <box name>\n`.
//! - Port 8443: the same over TLS 1.2/1.3 (rustls on ring), with a self-signed certificate for
//!   `<box name>.lab` made at start (for HTTPS / keepalived `SSL_GET` checks).
//! - Port 7 (line echo, for long-lived connections such as the connection-sync test): the
//!   connection stays open and every line `<text>` is answered with `served-by <box name>
//!   <text>`, until the client closes it (or 10 minutes pass without a line).
//! - Port 21 (FTP, for FTP services behind a NAT director): a minimal server, enough for curl
//!   and the lab tests: any USER/PASS, PWD, TYPE, SIZE, PASV/EPSV (passive ports 10000-20000,
//!   the Red Hat LVS guide's range; the PASV reply carries the address the control connection
//!   arrived at: the real server's own, which a NAT director's `ip_vs_ftp` rewrites to the
//!   VIP), PORT/EPRT (the data connection opened from port 20, as FTP servers do), RETR of the
//!   one file `served-by` (the service body), QUIT. The greeting names the box
//!   (`220 lab-ftpd <box name> ready`), so a client can tie the bytes to the server it reached.
//! - Port 8081 (control): `GET /stop` closes the service ports (connections are refused, so
//!   health checks fail), `GET /start` opens them again; `GET /body/<word>` makes the body
//!   `served-by <box name> <word>\n` on every service port (digest checks see a changed page),
//!   `GET /body/` the usual one again; the reply says the new state.
//! - UDP echo on 7, DNS on 53 and `GET /icmp/off|on`: see `lab_httpd_datagram.rs`.
//!
//! std only and thread per connection: it serves a handful of test requests, not load.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::AtomicU16;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

#[path = "../lab_httpd_datagram.rs"]
mod lab_httpd_datagram;

const SERVICE_PORTS: [u16; 2] = [80, 443];
const TLS_PORT: u16 = 8443;
const ECHO_PORT: u16 = 7;
/// An echo connection idle this long is closed.
const ECHO_IDLE: Duration = Duration::from_secs(600);
/// Longest echoed line; a longer one ends the connection.
const ECHO_MAX_LINE: usize = 1024;
const CONTROL_PORT: u16 = 8081;
const FTP_PORT: u16 = 21;
/// Active-mode data connections leave from the port below the control port.
const FTP_DATA_PORT: u16 = 20;
/// The passive range of the Red Hat guide's iptables rule and vsftpd lines.
const FTP_PASSIVE: (u16, u16) = (10_000, 20_000);
/// The one file the FTP server has.
const FTP_FILE: &str = "served-by";
/// A control connection idle this long, or a passive port nobody connects to, is given up.
const FTP_IDLE: Duration = Duration::from_secs(60);
/// Longest command line; a longer one ends the session.
const FTP_MAX_LINE: usize = 512;

fn box_name() -> String {
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("tandem.name="))
        .unwrap_or("unknown")
        .to_owned()
}

/// Reads the request head (up to 4 KiB or a blank line) and returns its first line.
fn request_line(stream: &mut TcpStream) -> String {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while buf.len() < 4096 && !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    }
    String::from_utf8_lossy(&buf)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn respond(stream: &mut TcpStream, body: &str) {
    let reply = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes());
}

/// The body every service port answers with, changed by the control port.
type Body = Arc<Mutex<String>>;

fn body_now(body: &Body) -> String {
    body.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// One HTTP exchange, then close.
fn serve_http(mut stream: TcpStream, body: &Body) {
    let _ = request_line(&mut stream);
    respond(&mut stream, &body_now(body));
}

/// The TLS server config: a self-signed ECDSA P-256 certificate for `<name>.lab`.
fn tls_config(name: &str) -> Result<Arc<rustls::ServerConfig>, String> {
    let made = rcgen::generate_simple_self_signed(vec![format!("{name}.lab")])
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(vec![made.cert.der().clone()], key)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(config))
}

/// One HTTPS exchange, then close_notify and close.
fn serve_https(stream: TcpStream, body: &Body, config: &Arc<rustls::ServerConfig>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let Ok(conn) = rustls::ServerConnection::new(Arc::clone(config)) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, stream);
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while head.len() < 4096 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(chunk.get(..n).unwrap_or_default()),
        }
    }
    let body = body_now(body);
    let reply = format!(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tls.write_all(reply.as_bytes());
    tls.conn.send_close_notify();
    let _ = tls.flush();
}

/// Answers every line with `<name> <line>` until the client closes or goes idle.
fn serve_echo(stream: TcpStream, name: &str) {
    let _ = stream.set_read_timeout(Some(ECHO_IDLE));
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream).take(u64::MAX);
    let mut line = String::new();
    loop {
        line.clear();
        reader.set_limit(u64::try_from(ECHO_MAX_LINE).unwrap_or(u64::MAX));
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if !line.ends_with('\n') => return,
            Ok(_) => {
                let reply = format!("{name} {}\n", line.trim_end());
                if writer.write_all(reply.as_bytes()).is_err() {
                    return;
                }
            }
        }
    }
}

/// The next passive port, cycling through [`FTP_PASSIVE`].
static NEXT_PASSIVE: AtomicU16 = AtomicU16::new(FTP_PASSIVE.0);

/// A listener on a passive port (the next free one of the range).
fn passive_listener() -> Option<TcpListener> {
    let (first, last) = FTP_PASSIVE;
    for _ in first..=last {
        let port = NEXT_PASSIVE.fetch_add(1, Ordering::SeqCst);
        if !(first..=last).contains(&port) {
            NEXT_PASSIVE.store(first, Ordering::SeqCst);
            continue;
        }
        if let Ok(listener) = TcpListener::bind(("0.0.0.0", port)) {
            return Some(listener);
        }
    }
    None
}

/// Accepts one connection on `listener` within [`FTP_IDLE`].
fn accept_data(listener: &TcpListener) -> Option<TcpStream> {
    let _ = listener.set_nonblocking(true);
    let deadline = std::time::Instant::now() + FTP_IDLE;
    while std::time::Instant::now() < deadline {
        match listener.accept() {
            Ok((stream, _)) => {
                let _ = stream.set_nonblocking(false);
                return Some(stream);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    None
}

/// An active-mode data connection to `to`, from port 20 of the control connection's address
/// (SO_REUSEADDR: the previous transfer's socket may still be in TIME_WAIT).
fn connect_from_port_20(local: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(to), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::new(local, FTP_DATA_PORT).into())?;
    socket.connect_timeout(&to.into(), Duration::from_secs(10))?;
    Ok(socket.into())
}

/// `h1,h2,h3,h4,p1,p2` of PORT.
fn parse_port(argument: &str) -> Option<SocketAddr> {
    let numbers: Vec<u8> = argument
        .split(',')
        .map(|n| n.trim().parse().ok())
        .collect::<Option<_>>()?;
    let [a, b, c, d, high, low] = numbers.as_slice() else {
        return None;
    };
    Some(SocketAddr::new(
        IpAddr::V4(Ipv4Addr::new(*a, *b, *c, *d)),
        u16::from_be_bytes([*high, *low]),
    ))
}

/// `|1|h.h.h.h|port|` (or `|2|...`) of EPRT.
fn parse_eprt(argument: &str) -> Option<SocketAddr> {
    let delimiter = argument.chars().next()?;
    let fields: Vec<&str> = argument.split(delimiter).collect();
    let [_, _, address, port, _] = fields.as_slice() else {
        return None;
    };
    Some(SocketAddr::new(address.parse().ok()?, port.parse().ok()?))
}

/// Where the next transfer's data connection comes from.
enum DataChannel {
    None,
    Passive(TcpListener),
    Active(SocketAddr),
}

/// One FTP control connection: commands until QUIT, EOF, an over-long line or idleness.
fn serve_ftp(stream: TcpStream, name: &str, body: &Body) {
    let _ = stream.set_read_timeout(Some(FTP_IDLE));
    let (Ok(mut out), Ok(local)) = (stream.try_clone(), stream.local_addr()) else {
        return;
    };
    let mut reader = BufReader::new(stream).take(u64::MAX);
    let mut say = |text: &str| out.write_all(format!("{text}\r\n").as_bytes()).is_ok();
    if !say(&format!("220 lab-ftpd {name} ready")) {
        return;
    }
    let mut data = DataChannel::None;
    let mut line = String::new();
    loop {
        line.clear();
        reader.set_limit(u64::try_from(FTP_MAX_LINE).unwrap_or(u64::MAX));
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) if !line.ends_with('\n') => return,
            Ok(_) => {}
        }
        let command = line.trim_end();
        let (verb, argument) = command.split_once(' ').unwrap_or((command, ""));
        let reply = match verb.to_ascii_uppercase().as_str() {
            "USER" => "331 any password will do".to_owned(),
            "PASS" => "230 logged in".to_owned(),
            "PWD" => "257 \"/\" is the current directory".to_owned(),
            "CWD" => "250 directory changed".to_owned(),
            "TYPE" => "200 type set".to_owned(),
            "SYST" => "215 UNIX Type: L8".to_owned(),
            "NOOP" => "200 ok".to_owned(),
            "SIZE" if argument == FTP_FILE => format!("213 {}", body_now(body).len()),
            "SIZE" => "550 no such file".to_owned(),
            "PASV" | "EPSV" => match (passive_listener(), local.ip()) {
                (Some(listener), IpAddr::V4(ip)) => {
                    let port = listener.local_addr().map_or(0, |a| a.port());
                    data = DataChannel::Passive(listener);
                    if verb.eq_ignore_ascii_case("PASV") {
                        let [a, b, c, d] = ip.octets();
                        let [high, low] = port.to_be_bytes();
                        format!("227 Entering Passive Mode ({a},{b},{c},{d},{high},{low})")
                    } else {
                        format!("229 Entering Extended Passive Mode (|||{port}|)")
                    }
                }
                _ => "425 cannot open a passive port".to_owned(),
            },
            "PORT" | "EPRT" => {
                let to = if verb.eq_ignore_ascii_case("PORT") {
                    parse_port(argument)
                } else {
                    parse_eprt(argument)
                };
                match to {
                    Some(to) => {
                        data = DataChannel::Active(to);
                        format!("200 {verb} ok")
                    }
                    None => "501 cannot read the address".to_owned(),
                }
            }
            "RETR" if argument == FTP_FILE => {
                let channel = std::mem::replace(&mut data, DataChannel::None);
                let connection = match channel {
                    DataChannel::Passive(listener) => {
                        if !say("150 opening data connection") {
                            return;
                        }
                        accept_data(&listener)
                    }
                    DataChannel::Active(to) => {
                        if !say("150 opening data connection") {
                            return;
                        }
                        connect_from_port_20(local.ip(), to).ok()
                    }
                    DataChannel::None => {
                        if !say("425 use PASV, EPSV, PORT or EPRT first") {
                            return;
                        }
                        continue;
                    }
                };
                match connection {
                    Some(mut connection) => {
                        let sent = connection.write_all(body_now(body).as_bytes()).is_ok();
                        drop(connection);
                        if sent {
                            "226 transfer complete".to_owned()
                        } else {
                            "426 transfer aborted".to_owned()
                        }
                    }
                    None => "425 no data connection".to_owned(),
                }
            }
            "RETR" => "550 no such file".to_owned(),
            "QUIT" => {
                let _ = say("221 bye");
                return;
            }
            _ => "502 not implemented".to_owned(),
        };
        if !say(&reply) {
            return;
        }
    }
}

/// Keeps `port` open while `serving` is set, closed otherwise; each connection is handed to
/// `handler` on its own thread.
fn service_loop(
    port: u16,
    serving: Arc<AtomicBool>,
    handler: Arc<dyn Fn(TcpStream) + Send + Sync>,
) {
    let mut listener: Option<TcpListener> = None;
    loop {
        let want = serving.load(Ordering::SeqCst);
        if want && listener.is_none() {
            match TcpListener::bind(("0.0.0.0", port)) {
                Ok(l) => {
                    let _ = l.set_nonblocking(true);
                    println!("lab-httpd: serving on port {port}");
                    listener = Some(l);
                }
                Err(e) => {
                    println!("lab-httpd: cannot bind port {port}: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        } else if !want && listener.is_some() {
            listener = None;
            println!("lab-httpd: stopped port {port}");
        }
        match listener.as_ref().map(TcpListener::accept) {
            Some(Ok((stream, _))) => {
                let _ = stream.set_nonblocking(false);
                let handler = Arc::clone(&handler);
                std::thread::spawn(move || handler(stream));
            }
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

fn main() {
    let name = box_name();
    let serving = Arc::new(AtomicBool::new(true));
    let body: Body = Arc::new(Mutex::new(format!("served-by {name}\n")));
    for port in SERVICE_PORTS {
        let (serving, body) = (Arc::clone(&serving), Arc::clone(&body));
        let handler = Arc::new(move |stream: TcpStream| serve_http(stream, &body));
        std::thread::spawn(move || service_loop(port, serving, handler));
    }
    match tls_config(&name) {
        Ok(config) => {
            let (serving, body) = (Arc::clone(&serving), Arc::clone(&body));
            let handler = Arc::new(move |stream: TcpStream| serve_https(stream, &body, &config));
            std::thread::spawn(move || service_loop(TLS_PORT, serving, handler));
        }
        Err(e) => println!("lab-httpd: no TLS on port {TLS_PORT}: {e}"),
    }
    {
        let (serving, body, name) = (Arc::clone(&serving), Arc::clone(&body), name.clone());
        let handler = Arc::new(move |stream: TcpStream| serve_ftp(stream, &name, &body));
        std::thread::spawn(move || service_loop(FTP_PORT, serving, handler));
    }
    {
        let (serving, prefix) = (Arc::clone(&serving), format!("served-by {name}"));
        let handler = Arc::new(move |stream: TcpStream| serve_echo(stream, &prefix));
        std::thread::spawn(move || service_loop(ECHO_PORT, serving, handler));
    }
    lab_httpd_datagram::start(&name, &serving);
    let control = loop {
        match TcpListener::bind(("0.0.0.0", CONTROL_PORT)) {
            Ok(l) => break l,
            Err(e) => {
                println!("lab-httpd: cannot bind control port {CONTROL_PORT}: {e}");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    };
    println!("lab-httpd: control on port {CONTROL_PORT}");
    for stream in control.incoming() {
        let Ok(mut stream) = stream else { continue };
        let line = request_line(&mut stream);
        let path = line.split_whitespace().nth(1).unwrap_or_default();
        match path {
            "/stop" => serving.store(false, Ordering::SeqCst),
            "/start" => serving.store(true, Ordering::SeqCst),
            path => {
                if let Some(word) = path.strip_prefix("/body/") {
                    let text = match word {
                        "" => format!("served-by {name}\n"),
                        word => format!("served-by {name} {word}\n"),
                    };
                    *body.lock().unwrap_or_else(PoisonError::into_inner) = text;
                } else {
                    lab_httpd_datagram::control(path);
                }
            }
        }
        // Give the service loop a moment to act before answering.
        std::thread::sleep(Duration::from_millis(50));
        let state = if serving.load(Ordering::SeqCst) {
            "serving"
        } else {
            "stopped"
        };
        let now = body_now(&body);
        respond(&mut stream, &format!("{name} {state}, body {now:?}\n"));
    }
}
