//! Performs one check attempt: over tokio TCP (connect, TLS handshake for HTTPS checks
//! ([`super::tls`]), exchange, verdict), or with one datagram (ICMP echo, UDP, DNS: a socket
//! from [`super::datagram`], one request, the replies judged by the sans-IO verdicts until one
//! decides or the timeout passes). Every attempt is bounded by the check's timeout (an HTTP
//! check with several URLs: each URL, fetched on a connection of its own, by the timeout) and
//! reads into fixed buffers. TCP connections are closed with a reset (SO_LINGER 0, set as soon
//! as the socket connects, so a failed handshake resets too) so thousands of checks per second
//! leave no TIME_WAIT sockets behind on the director.

use std::io::Read as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::Instant;

use super::check::{CheckKey, DnsProbe, HttpExpect, HttpProbe, Probe, SubCheck, UdpProbe};
use super::datagram::{self, IcmpSocketKind};
use super::dns;
use super::icmp::{echo_verdict, EchoRequest};
use super::reply::{
    expect_verdict, smtp_verdict, udp_verdict, FailReason, HttpReply, Progress, MAX_REPLY,
};
use super::tls::{self, TlsTrust};

/// The largest datagram read: an Ethernet frame's payload (a longer reply is cut to this,
/// which every verdict allows: they read a header or a prefix).
const MAX_DATAGRAM: usize = 1500;

/// Runs one attempt of `key` and returns its verdict.
pub async fn run_probe(key: &CheckKey) -> Result<(), FailReason> {
    match &key.probe {
        Probe::Ping => ping(key.target.ip(), None, key.timeout).await,
        Probe::Udp(udp) => udp_check(key.target, udp, key.timeout).await,
        Probe::Dns(query) => dns_check(key.target, query, key.timeout).await,
        Probe::Http(http) if !http.more_urls.is_empty() => every_url(key, http).await,
        Probe::Every(checks) => every_check(checks).await,
        _ => match tokio::time::timeout(key.timeout, attempt(key)).await {
            Ok(r) => r,
            Err(_) => Err(FailReason::Timeout),
        },
    }
}

async fn attempt(key: &CheckKey) -> Result<(), FailReason> {
    match &key.probe {
        Probe::Http(http) => {
            fetch(
                key.target,
                http.tls.as_ref(),
                http.host.as_deref(),
                &http.path,
                &**http,
            )
            .await
        }
        probe => {
            let mut stream = connect(key.target).await?;
            exchange(probe, &mut stream).await
        }
    }
}

async fn connect(target: SocketAddr) -> Result<TcpStream, FailReason> {
    let stream = TcpStream::connect(target)
        .await
        .map_err(|e| FailReason::Connect(e.to_string()))?;
    // Reset instead of FIN when the socket is dropped: no TIME_WAIT on our side.
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    Ok(stream)
}

/// Every check of a real server in turn, each within its own timeout; down at the first that
/// fails, naming it.
async fn every_check(checks: &[SubCheck]) -> Result<(), FailReason> {
    for check in checks {
        // Boxed: the plan never nests `Every`, but the future type is recursive all the same.
        Box::pin(run_probe(&check.key))
            .await
            .map_err(|reason| FailReason::Check {
                what: check.what.clone(),
                reason: Box::new(reason),
            })?;
    }
    Ok(())
}

/// Every URL of an HTTP check in turn, each on its own connection within the timeout; down
/// at the first that fails, naming it.
async fn every_url(key: &CheckKey, http: &HttpProbe) -> Result<(), FailReason> {
    type Url<'a> = (Option<&'a str>, &'a str, &'a (dyn HttpExpect + Sync));
    let first: Url<'_> = (http.host.as_deref(), &http.path, http);
    let rest = http
        .more_urls
        .iter()
        .map(|url| -> Url<'_> { (url.host.as_deref(), &url.path, url) });
    for (host, path, expect) in std::iter::once(first).chain(rest) {
        let fetched = fetch(key.target, http.tls.as_ref(), host, path, expect);
        let verdict = match tokio::time::timeout(key.timeout, fetched).await {
            Ok(verdict) => verdict,
            Err(_) => Err(FailReason::Timeout),
        };
        verdict.map_err(|reason| FailReason::Url {
            path: path.to_owned(),
            reason: Box::new(reason),
        })?;
    }
    Ok(())
}

/// One GET of `path` on a new connection (TLS when `tls` says so) and its verdict.
async fn fetch<E: HttpExpect + ?Sized>(
    target: SocketAddr,
    tls: Option<&TlsTrust>,
    host: Option<&str>,
    path: &str,
    expect: &E,
) -> Result<(), FailReason> {
    let stream = connect(target).await?;
    match tls {
        Some(trust) => {
            let mut tls = tls::connect(trust, host, target, stream).await?;
            http_exchange(host, path, expect, target, &mut tls).await
        }
        None => {
            let mut stream = stream;
            http_exchange(host, path, expect, target, &mut stream).await
        }
    }
}

/// An HTTP/1.0 GET and its reply, on a plain or TLS stream.
async fn http_exchange<E: HttpExpect + ?Sized, S: AsyncRead + AsyncWrite + Unpin>(
    host: Option<&str>,
    path: &str,
    expect: &E,
    target: SocketAddr,
    stream: &mut S,
) -> Result<(), FailReason> {
    let host = match host {
        Some(h) => h.to_owned(),
        None => target.to_string(),
    };
    let request = format!(
        "GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: tandem-health\r\nConnection: close\r\n\r\n"
    );
    write(stream, request.as_bytes()).await?;
    let mut reply = HttpReply::default();
    let mut chunk = [0u8; 4096];
    loop {
        let n = read(stream, &mut chunk).await?;
        let data = chunk.get(..n).unwrap_or_default();
        match reply.feed(expect, data, n == 0) {
            Progress::Pass => return Ok(()),
            Progress::Fail(reason) => return Err(reason),
            Progress::NeedMore if n == 0 => return Err(FailReason::Closed),
            Progress::NeedMore => {}
        }
    }
}

async fn exchange(probe: &Probe, stream: &mut TcpStream) -> Result<(), FailReason> {
    match probe {
        Probe::Tcp
        | Probe::Http(_)
        | Probe::Ping
        | Probe::Udp(_)
        | Probe::Dns(_)
        | Probe::Every(_) => Ok(()),
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

/// A number for one attempt's request (ICMP identifier and sequence, DNS ID): a counter
/// mixed with the start time, so attempts and restarts differ (not a secret: the reply must
/// also come from the target, to a connected socket).
fn nonce() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut z = COUNTER
        .fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed)
        .wrapping_add(u64::try_from(start & u128::from(u64::MAX)).unwrap_or_default());
    // splitmix64
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// One ICMP echo to `target` on a socket of `kind` (`None`: the process' choice, see
/// [`datagram`]): up when the reply to it comes within `timeout`.
pub async fn ping(
    target: IpAddr,
    kind: Option<IcmpSocketKind>,
    timeout: Duration,
) -> Result<(), FailReason> {
    let deadline = Instant::now() + timeout;
    let (socket, framing) = datagram::icmp(target, kind)?;
    let request = EchoRequest::new(target.is_ipv6(), nonce());
    // SAFETY: `Socket` owns its descriptor: it stays open and unchanged until the `AsyncFd`
    // (which owns the `Socket`) is dropped, and `as_raw_fd` always returns that descriptor.
    #[allow(unsafe_code)]
    let registered = unsafe { AsyncFd::register(socket) };
    let socket = registered.map_err(|e| FailReason::Io(e.to_string()))?;
    let exchange = async {
        let message = request.encode();
        socket
            .async_io(tokio::io::Interest::WRITABLE, |s| s.send(&message))
            .await
            .map_err(|e| datagram::sent_or_received(&e))?;
        let mut buf = [0u8; MAX_DATAGRAM];
        loop {
            let n = socket
                .async_io(tokio::io::Interest::READABLE, |mut s| s.read(&mut buf))
                .await
                .map_err(|e| datagram::sent_or_received(&e))?;
            if echo_verdict(&request, framing, buf.get(..n).unwrap_or_default()) == Progress::Pass {
                return Ok(());
            }
        }
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Ok(result) => result,
        Err(_) => Err(FailReason::NoReply("ICMP echo reply")),
    }
}

/// A connected UDP socket to `target`, on tokio.
fn udp_socket(target: SocketAddr) -> Result<UdpSocket, FailReason> {
    UdpSocket::from_std(datagram::udp(target)?).map_err(|e| FailReason::Io(e.to_string()))
}

/// A UDP check: the payload sent, then the first reply (or the ICMP error, or silence until
/// the timeout) judged by [`udp_verdict`].
pub async fn udp_check(
    target: SocketAddr,
    probe: &UdpProbe,
    timeout: Duration,
) -> Result<(), FailReason> {
    let deadline = Instant::now() + timeout;
    let socket = udp_socket(target)?;
    let exchange = async {
        socket
            .send(&probe.payload)
            .await
            .map_err(|e| datagram::sent_or_received(&e))?;
        let mut buf = [0u8; MAX_DATAGRAM];
        let n = socket
            .recv(&mut buf)
            .await
            .map_err(|e| datagram::sent_or_received(&e))?;
        udp_verdict(probe, Some(buf.get(..n).unwrap_or_default()))
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Ok(result) => result,
        Err(_) => udp_verdict(probe, None),
    }
}

/// A DNS check: the query sent, then the replies judged by [`dns::reply_verdict`] until the
/// answer comes (or the ICMP error, or the timeout).
pub async fn dns_check(
    target: SocketAddr,
    probe: &DnsProbe,
    timeout: Duration,
) -> Result<(), FailReason> {
    let deadline = Instant::now() + timeout;
    let [a, b, ..] = nonce().to_be_bytes();
    let id = u16::from_be_bytes([a, b]);
    let query = dns::query(id, &probe.name, probe.record_type)
        .map_err(|e| FailReason::Io(e.to_string()))?;
    let socket = udp_socket(target)?;
    let exchange = async {
        socket
            .send(&query)
            .await
            .map_err(|e| datagram::sent_or_received(&e))?;
        let mut buf = [0u8; MAX_DATAGRAM];
        loop {
            let n = socket
                .recv(&mut buf)
                .await
                .map_err(|e| datagram::sent_or_received(&e))?;
            match dns::reply_verdict(id, buf.get(..n).unwrap_or_default()) {
                Progress::Pass => return Ok(()),
                Progress::Fail(reason) => return Err(reason),
                Progress::NeedMore => {}
            }
        }
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Ok(result) => result,
        Err(_) => Err(FailReason::NoReply("DNS reply")),
    }
}
