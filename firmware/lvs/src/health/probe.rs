//! Performs one check attempt over tokio TCP: connect, TLS handshake for HTTPS checks
//! ([`super::tls`]), exchange, verdict. The whole attempt is bounded by the check's timeout.
//! Connections are closed with a reset (SO_LINGER 0, set as soon as the socket connects, so a
//! failed handshake resets too) so thousands of checks per second leave no TIME_WAIT sockets
//! behind on the director.

use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::check::{CheckKey, HttpProbe, Probe};
use super::reply::{expect_verdict, smtp_verdict, FailReason, HttpReply, Progress, MAX_REPLY};
use super::tls;

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
    // Reset instead of FIN when the socket is dropped: no TIME_WAIT on our side.
    let _ = socket2::SockRef::from(&stream).set_linger(Some(std::time::Duration::ZERO));
    match &key.probe {
        Probe::Http(http) => match &http.tls {
            Some(trust) => {
                let mut tls = tls::connect(trust, http.host.as_deref(), key.target, stream).await?;
                http_exchange(http, key.target, &mut tls).await
            }
            None => http_exchange(http, key.target, &mut stream).await,
        },
        probe => exchange(probe, &mut stream).await,
    }
}

/// An HTTP/1.0 GET and its reply, on a plain or TLS stream.
async fn http_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    http: &HttpProbe,
    target: SocketAddr,
    stream: &mut S,
) -> Result<(), FailReason> {
    let host = match &http.host {
        Some(h) => h.clone(),
        None => target.to_string(),
    };
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: tandem-health\r\nConnection: close\r\n\r\n",
        http.path
    );
    write(stream, request.as_bytes()).await?;
    let mut reply = HttpReply::default();
    let mut chunk = [0u8; 4096];
    loop {
        let n = read(stream, &mut chunk).await?;
        let data = chunk.get(..n).unwrap_or_default();
        match reply.feed(http, data, n == 0) {
            Progress::Pass => return Ok(()),
            Progress::Fail(reason) => return Err(reason),
            Progress::NeedMore if n == 0 => return Err(FailReason::Closed),
            Progress::NeedMore => {}
        }
    }
}

async fn exchange(probe: &Probe, stream: &mut TcpStream) -> Result<(), FailReason> {
    match probe {
        Probe::Tcp | Probe::Http(_) => Ok(()),
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

async fn write<S: AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> Result<(), FailReason> {
    stream
        .write_all(bytes)
        .await
        .map_err(|e| FailReason::Io(e.to_string()))?;
    // A TLS stream holds what it encrypted until flushed.
    stream
        .flush()
        .await
        .map_err(|e| FailReason::Io(e.to_string()))
}

/// One read; 0 at the end of the stream. A TLS peer that closes without `close_notify` ends the
/// stream too: the reply is judged on what arrived (HTTP/1.0 replies end at the close, and the
/// verdicts see a cut-short reply as one).
async fn read<S: AsyncRead + Unpin>(stream: &mut S, chunk: &mut [u8]) -> Result<usize, FailReason> {
    match stream.read(chunk).await {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
        Err(e) => Err(FailReason::Io(e.to_string())),
    }
}

async fn read_until(
    stream: &mut TcpStream,
    mut verdict: impl FnMut(&[u8], bool) -> Progress,
) -> Result<(), FailReason> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = read(stream, &mut chunk).await?;
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
