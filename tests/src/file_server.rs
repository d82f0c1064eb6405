//! A host-side HTTP/1.0 file server in a lab client namespace: what a box's `firmware fetch`
//! pulls bundles from in the lab (the management network's update server).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use crate::lab::LabError;

/// Serves `files` (URL path -> bytes; anything else 404) on `address` inside the network
/// namespace `netns`, one thread per connection, until the test process ends. Returns once
/// the socket listens.
pub fn serve(
    netns: &str,
    address: SocketAddr,
    files: Vec<(String, Vec<u8>)>,
) -> Result<(), LabError> {
    let path = format!("/run/netns/{netns}");
    let ns = std::fs::File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let files = Arc::new(files);
    std::thread::spawn(move || {
        let listener = nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("setns {path}: {e}"))
            .and_then(|()| TcpListener::bind(address).map_err(|e| format!("bind {address}: {e}")));
        let listener = match listener {
            Ok(listener) => {
                let _ = ready_tx.send(Ok(()));
                listener
            }
            Err(error) => {
                let _ = ready_tx.send(Err(error));
                return;
            }
        };
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let files = Arc::clone(&files);
            std::thread::spawn(move || answer(stream, &files));
        }
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .map_err(|e| format!("file server on {address}: {e}"))?
}

fn answer(mut stream: std::net::TcpStream, files: &[(String, Vec<u8>)]) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        if stream.read(&mut byte).unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    let wanted = head.split_whitespace().nth(1).unwrap_or("/");
    match files.iter().find(|(p, _)| p == wanted) {
        Some((_, body)) => {
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(body);
        }
        None => {
            let _ = stream.write_all(b"HTTP/1.0 404 Not Found\r\n\r\n");
        }
    }
}
