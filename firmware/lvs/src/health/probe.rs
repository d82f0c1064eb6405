//! Performs one check attempt over tokio TCP: connect, exchange, verdict. The whole attempt is
//! bounded by the check's timeout. Connections are closed with a reset (SO_LINGER 0) so
//! thousands of checks per second leave no TIME_WAIT sockets behind on the director.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::check::{CheckKey, Probe};
use super::reply::{expect_verdict, http_verdict, smtp_verdict, FailReason, Progress, MAX_REPLY};

/// Runs one attempt of `key` and returns its verdict.
pub async fn run_probe(key: &CheckKey) -> Result<(), FailReason> {
    match tokio::time::timeout(key.timeout, attempt(key)).await {
        Ok(r) => r,
        Err(_) => Err(FailReason::Timeout),
    }
}

async fn attempt(key: &CheckKey) -> Result<(), FailReason> {
    let mut stream = TcpStream::connect(key.target)
        .await
        .map_err(|e| FailReason::Connect(e.to_string()))?;
    let result = exchange(&key.probe, key.target, &mut stream).await;
    // Reset instead of FIN: no TIME_WAIT on our side.
    let _ = socket2::SockRef::from(&stream).set_linger(Some(std::time::Duration::ZERO));
    drop(stream);
    result
}

async fn exchange(
    probe: &Probe,
    target: SocketAddr,
    stream: &mut TcpStream,
) -> Result<(), FailReason> {
    match probe {
        Probe::Tcp => Ok(()),
        Probe::Http(http) => {
            let host = match &http.host {
                Some(h) => h.clone(),
                None => target.to_string(),
            };
            let request = format!(
                "GET {} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: tandem-health\r\nConnection: close\r\n\r\n",
                http.path
            );
            write(stream, request.as_bytes()).await?;
            read_until(stream, |data, eof| http_verdict(http, data, eof)).await
        }
        Probe::Smtp => {
            let verdict = read_until(stream, smtp_verdict).await;
            if verdict.is_ok() {
                let _ = stream.write_all(b"QUIT\r\n").await;
            }
            verdict
        }
        Probe::SendExpect(se) => {
            if !se.send.is_empty() {
                write(stream, &se.send).await?;
            }
            if se.expect.is_empty() {
                return Ok(());
            }
            read_until(stream, |data, eof| expect_verdict(&se.expect, data, eof)).await
        }
    }
}

async fn write(stream: &mut TcpStream, bytes: &[u8]) -> Result<(), FailReason> {
    stream
        .write_all(bytes)
        .await
        .map_err(|e| FailReason::Io(e.to_string()))
}

async fn read_until(
    stream: &mut TcpStream,
    mut verdict: impl FnMut(&[u8], bool) -> Progress,
) -> Result<(), FailReason> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| FailReason::Io(e.to_string()))?;
        let room = MAX_REPLY.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..n.min(room)]);
        match verdict(&buf, n == 0) {
            Progress::Pass => return Ok(()),
            Progress::Fail(reason) => return Err(reason),
            Progress::NeedMore if n == 0 => return Err(FailReason::Closed),
            Progress::NeedMore => {}
        }
    }
}
