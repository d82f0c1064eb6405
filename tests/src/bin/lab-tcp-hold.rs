//! lab-tcp-hold: holds TCP connections open without writing, to see how a connection ends
//! when its server side moves away (tickle ACK tests, in the lab image and on the host tier).
//!
//! ```text
//! lab-tcp-hold listen ADDR           accept connections on ADDR and hold them (never write)
//! lab-tcp-hold hold ADDR [SECONDS]   connect to ADDR, print "connected", block in read and
//!                                    print how it ended: "reset after N ms", "eof after N ms"
//!                                    or "timeout after N ms" (default 60 s); exit 0
//! ```
//! std only: it is linked statically into the lab image.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// How a held connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Reset,
    Eof,
    Timeout,
}

impl Ending {
    fn word(self) -> &'static str {
        match self {
            Ending::Reset => "reset",
            Ending::Eof => "eof",
            Ending::Timeout => "timeout",
        }
    }
}

/// Reads (discarding anything the peer sends) until the connection ends or `limit` passes.
fn hold(stream: &mut TcpStream, limit: Duration) -> std::io::Result<(Ending, Duration)> {
    let started = Instant::now();
    let mut buffer = [0u8; 512];
    loop {
        let Some(left) = limit
            .checked_sub(started.elapsed())
            .filter(|d| !d.is_zero())
        else {
            return Ok((Ending::Timeout, started.elapsed()));
        };
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buffer) {
            Ok(0) => return Ok((Ending::Eof, started.elapsed())),
            Ok(_) => continue,
            Err(error) if error.kind() == ErrorKind::ConnectionReset => {
                return Ok((Ending::Reset, started.elapsed()))
            }
            Err(error) if matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                continue
            }
            Err(error) => return Err(error),
        }
    }
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || {
        eprintln!("usage: lab-tcp-hold listen ADDR | hold ADDR [SECONDS]");
        ExitCode::from(2)
    };
    let Some(address) = args.get(1).and_then(|a| a.parse::<SocketAddr>().ok()) else {
        return usage();
    };
    match args.first().map(String::as_str) {
        Some("listen") => {
            let listener = match TcpListener::bind(address) {
                Ok(listener) => listener,
                Err(error) => {
                    eprintln!("lab-tcp-hold: cannot listen on {address}: {error}");
                    return ExitCode::FAILURE;
                }
            };
            say(&format!("listening {address}"));
            let mut held = Vec::new();
            for stream in listener.incoming() {
                match stream {
                    Ok(stream) => {
                        let peer = stream
                            .peer_addr()
                            .map_or_else(|_| "?".to_owned(), |p| p.to_string());
                        say(&format!("accepted {peer}"));
                        held.push(stream);
                    }
                    Err(error) => eprintln!("lab-tcp-hold: accept: {error}"),
                }
            }
            ExitCode::SUCCESS
        }
        Some("hold") => {
            let seconds = match args.get(2).map(|s| s.parse::<u64>()) {
                None => 60,
                Some(Ok(seconds)) => seconds,
                Some(Err(_)) => return usage(),
            };
            let mut stream = match TcpStream::connect_timeout(&address, Duration::from_secs(10)) {
                Ok(stream) => stream,
                Err(error) => {
                    eprintln!("lab-tcp-hold: cannot connect to {address}: {error}");
                    return ExitCode::FAILURE;
                }
            };
            say("connected");
            match hold(&mut stream, Duration::from_secs(seconds)) {
                Ok((ending, after)) => {
                    say(&format!("{} after {} ms", ending.word(), after.as_millis()));
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("lab-tcp-hold: read: {error}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => usage(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        (client, server)
    }

    #[test]
    fn a_closed_server_reads_as_eof() {
        let (mut client, server) = pair();
        drop(server);
        let (ending, _) = hold(&mut client, Duration::from_secs(10)).unwrap();
        assert_eq!(ending, Ending::Eof);
    }

    #[test]
    fn an_aborted_server_reads_as_reset() {
        let (mut client, server) = pair();
        // SO_LINGER 0: close sends RST instead of FIN.
        nix::sys::socket::setsockopt(
            &server,
            nix::sys::socket::sockopt::Linger,
            &nix::libc::linger {
                l_onoff: 1,
                l_linger: 0,
            },
        )
        .unwrap();
        drop(server);
        let (ending, _) = hold(&mut client, Duration::from_secs(10)).unwrap();
        assert_eq!(ending, Ending::Reset);
    }

    #[test]
    fn a_silent_server_reads_as_timeout() {
        let (mut client, _server) = pair();
        let (ending, after) = hold(&mut client, Duration::from_millis(200)).unwrap();
        assert_eq!(ending, Ending::Timeout);
        assert!(after >= Duration::from_millis(200));
    }
}
