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
//! - Port 8081 (control): `GET /stop` closes the service ports (connections are refused, so
//!   health checks fail), `GET /start` opens them again; `GET /body/<word>` makes the body
//!   `served-by <box name> <word>\n` on every service port (digest checks see a changed page),
//!   `GET /body/` the usual one again; the reply says the new state.
//! - UDP echo on 7, DNS on 53 and `GET /icmp/off|on`: see `lab_httpd_datagram.rs`.
//!
//! std only and thread per connection: it serves a handful of test requests, not load.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
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
