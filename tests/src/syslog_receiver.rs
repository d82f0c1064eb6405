//! A syslog server for tests: receivers for UDP (RFC 5426, one message per datagram) and TCP
//! (RFC 6587 octet counting) running on threads inside a network namespace, and a strict RFC
//! 5424 parser ([`parse`]) that refuses anything the ABNF does not allow, so a test that finds
//! its lines parsed knows they are RFC 5424.

use std::io::Read;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One parsed RFC 5424 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub facility: u8,
    pub severity: u8,
    /// TIMESTAMP as time since the Unix epoch (None: the NILVALUE).
    pub timestamp: Option<Duration>,
    pub hostname: String,
    pub app_name: String,
    pub procid: String,
    pub msgid: String,
    /// MSG (without a BOM; None: no MSG part).
    pub msg: Option<String>,
}

/// Parses `bytes` as one RFC 5424 SYSLOG-MSG, strictly: PRI of 1 to 3 digits without a leading
/// zero and at most 191, VERSION 1, a TIMESTAMP that is the NILVALUE or a valid RFC 3339 time
/// (up to 6 fractional digits, `Z` or a numeric offset), HOSTNAME, APP-NAME, PROCID and MSGID
/// of printable US-ASCII within their lengths, STRUCTURED-DATA the NILVALUE (Tandem sends
/// none), MSG after a space if present (UTF-8 after a BOM).
pub fn parse(bytes: &[u8]) -> Result<Message, String> {
    let rest = bytes
        .strip_prefix(b"<")
        .ok_or("no PRI: a message starts with '<'")?;
    let close = rest
        .iter()
        .position(|b| *b == b'>')
        .ok_or("PRI not closed by '>'")?;
    let digits = &rest[..close];
    if digits.is_empty()
        || digits.len() > 3
        || !digits.iter().all(u8::is_ascii_digit)
        || (digits.len() > 1 && digits[0] == b'0')
    {
        return Err(format!("PRI {:?} is not 1 to 3 digits", ascii(digits)));
    }
    let pri: u16 = ascii(digits).parse().map_err(|e| format!("PRI: {e}"))?;
    if pri > 191 {
        return Err(format!("PRI {pri} above 191"));
    }
    let rest = &rest[close + 1..];
    let rest = rest
        .strip_prefix(b"1 ")
        .ok_or("VERSION is not 1 followed by a space")?;
    let (timestamp, rest) = field(rest, "TIMESTAMP", 64)?;
    let timestamp = if timestamp == "-" {
        None
    } else {
        Some(rfc3339(&timestamp)?)
    };
    let (hostname, rest) = field(rest, "HOSTNAME", 255)?;
    let (app_name, rest) = field(rest, "APP-NAME", 48)?;
    let (procid, rest) = field(rest, "PROCID", 128)?;
    let (msgid, rest) = field(rest, "MSGID", 32)?;
    let (sd, msg) = match rest.iter().position(|b| *b == b' ') {
        Some(at) => (&rest[..at], Some(&rest[at + 1..])),
        None => (rest, None),
    };
    if sd != b"-" {
        return Err(format!(
            "STRUCTURED-DATA {:?}: Tandem sends the NILVALUE",
            String::from_utf8_lossy(sd)
        ));
    }
    let msg = match msg {
        None => None,
        Some(bytes) => Some(match bytes.strip_prefix(b"\xEF\xBB\xBF") {
            Some(utf8) => String::from_utf8(utf8.to_vec())
                .map_err(|_| "MSG after a BOM is not UTF-8".to_owned())?,
            None => {
                if !bytes.is_ascii() {
                    return Err("MSG holds non-ASCII bytes without a BOM".into());
                }
                ascii(bytes)
            }
        }),
    };
    Ok(Message {
        facility: u8::try_from(pri / 8).unwrap_or(u8::MAX),
        severity: u8::try_from(pri % 8).unwrap_or(u8::MAX),
        timestamp,
        hostname,
        app_name,
        procid,
        msgid,
        msg,
    })
}

fn ascii(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A header field up to the next space: 1 to `max` printable US-ASCII characters.
fn field<'a>(bytes: &'a [u8], name: &str, max: usize) -> Result<(String, &'a [u8]), String> {
    let end = bytes
        .iter()
        .position(|b| *b == b' ')
        .ok_or_else(|| format!("{name} is not followed by a space"))?;
    let value = &bytes[..end];
    if value.is_empty() || value.len() > max || !value.iter().all(|b| (33..=126).contains(b)) {
        return Err(format!(
            "{name} {:?} is not 1 to {max} printable US-ASCII characters",
            String::from_utf8_lossy(value)
        ));
    }
    Ok((ascii(value), &bytes[end + 1..]))
}

/// An RFC 3339 `FULL-DATE "T" FULL-TIME` as RFC 5424 restricts it, as time since the epoch.
fn rfc3339(text: &str) -> Result<Duration, String> {
    let wrong = || format!("TIMESTAMP {text:?} is not RFC 3339 as RFC 5424 allows it");
    let b = text.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(wrong());
    }
    let number = |range: std::ops::Range<usize>| -> Result<i64, String> {
        let part = text.get(range).ok_or_else(wrong)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(wrong());
        }
        part.parse().map_err(|_| wrong())
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return Err(wrong());
    }
    let mut rest = &text[19..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 6 {
            return Err(wrong());
        }
        let value: u32 = fraction[..digits].parse().map_err(|_| wrong())?;
        nanos = value * 10u32.pow(9 - u32::try_from(digits).map_err(|_| wrong())?);
        rest = &fraction[digits..];
    }
    let offset_seconds = match rest {
        "Z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return Err(wrong()),
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return Err(wrong());
            }
            let hours: i64 = rest[1..3].parse().map_err(|_| wrong())?;
            let minutes: i64 = rest[4..6].parse().map_err(|_| wrong())?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    // days from civil (H. Hinnant).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Ok(Duration::new(
        u64::try_from(seconds).map_err(|_| wrong())?,
        nanos,
    ))
}

/// What a receiver got: each message's raw bytes, in order.
type Inbox = Arc<Mutex<Vec<Vec<u8>>>>;

/// A receiver thread, stopped (its socket closed) by [`Receiver::close`] or on drop.
#[derive(Debug)]
pub struct Receiver {
    inbox: Inbox,
    /// Framing errors (TCP) as text.
    errors: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl Receiver {
    /// A UDP receiver on `address` inside namespace `netns`: one message per datagram.
    pub fn udp(netns: &str, address: SocketAddr) -> Result<Receiver, String> {
        let (inbox, errors, stop) = Receiver::parts();
        let (thread_inbox, thread_stop) = (Arc::clone(&inbox), Arc::clone(&stop));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = crate::netns::spawn_in(netns, move || {
            let socket = UdpSocket::bind(address)
                .and_then(|socket| {
                    socket.set_read_timeout(Some(Duration::from_millis(50)))?;
                    // Room for bursts of thousands of datagrams (the kernel caps it at
                    // net.core.rmem_max; a test that counts datagrams should not lose them
                    // to its own receiver).
                    let socket = socket2::Socket::from(socket);
                    socket.set_recv_buffer_size(8 << 20)?;
                    Ok(UdpSocket::from(socket))
                })
                .map_err(|e| format!("bind {address}: {e}"));
            let socket = match socket {
                Ok(socket) => {
                    let _ = ready_tx.send(Ok(()));
                    socket
                }
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                    return;
                }
            };
            let mut buffer = vec![0u8; 65_536];
            while !thread_stop.load(Ordering::Relaxed) {
                if let Ok(length) = socket.recv(&mut buffer) {
                    lock(&thread_inbox).push(buffer[..length].to_vec());
                }
            }
        })?;
        Receiver::started(inbox, errors, stop, thread, &ready_rx)
    }

    /// A TCP receiver on `address` inside namespace `netns`: accepts connections one after the
    /// other and splits each into octet-counted messages (a framing error ends the connection
    /// and is recorded).
    pub fn tcp(netns: &str, address: SocketAddr) -> Result<Receiver, String> {
        let (inbox, errors, stop) = Receiver::parts();
        let (thread_inbox, thread_errors, thread_stop) =
            (Arc::clone(&inbox), Arc::clone(&errors), Arc::clone(&stop));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = crate::netns::spawn_in(netns, move || {
            let listener = TcpListener::bind(address)
                .and_then(|listener| {
                    listener.set_nonblocking(true)?;
                    Ok(listener)
                })
                .map_err(|e| format!("bind {address}: {e}"));
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
            while !thread_stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if let Err(error) = read_frames(stream, &thread_inbox, &thread_stop) {
                            lock(&thread_errors).push(error);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        })?;
        Receiver::started(inbox, errors, stop, thread, &ready_rx)
    }

    fn parts() -> (Inbox, Arc<Mutex<Vec<String>>>, Arc<AtomicBool>) {
        (Arc::default(), Arc::default(), Arc::default())
    }

    fn started(
        inbox: Inbox,
        errors: Arc<Mutex<Vec<String>>>,
        stop: Arc<AtomicBool>,
        thread: JoinHandle<Result<(), String>>,
        ready: &std::sync::mpsc::Receiver<Result<(), String>>,
    ) -> Result<Receiver, String> {
        ready
            .recv_timeout(Duration::from_secs(5))
            .map_err(|_| "the receiver thread did not start".to_owned())??;
        Ok(Receiver {
            inbox,
            errors,
            stop,
            thread: Some(thread),
        })
    }

    /// Every message received so far, raw.
    pub fn raw(&self) -> Vec<Vec<u8>> {
        lock(&self.inbox).clone()
    }

    /// How many messages arrived.
    pub fn count(&self) -> usize {
        lock(&self.inbox).len()
    }

    /// Framing errors seen (TCP).
    pub fn errors(&self) -> Vec<String> {
        lock(&self.errors).clone()
    }

    /// Every message so far, parsed (a message that does not parse is an error naming it).
    pub fn messages(&self) -> Result<Vec<Message>, String> {
        self.raw()
            .iter()
            .map(|bytes| {
                parse(bytes).map_err(|e| format!("{e}: {:?}", String::from_utf8_lossy(bytes)))
            })
            .collect()
    }

    /// Waits until a message whose MSG contains `text` arrived; returns it parsed.
    pub fn wait_for(&self, text: &str, timeout: Duration) -> Result<Message, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .raw()
                .into_iter()
                .find(|raw| String::from_utf8_lossy(raw).contains(text));
            if let Some(raw) = found {
                return parse(&raw)
                    .map_err(|e| format!("{e}: {:?}", String::from_utf8_lossy(&raw)));
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no message with {text:?} within {timeout:?}; {} received",
                    self.count()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the thread: the socket closes (a UDP sender then meets port unreachable, a TCP
    /// sender a closed connection).
    pub fn close(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.close();
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Reads octet-counted frames (`LEN SP MSG`) until the peer closes or `stop`.
fn read_frames(
    mut stream: std::net::TcpStream,
    inbox: &Inbox,
    stop: &AtomicBool,
) -> Result<(), String> {
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| e.to_string())?;
    let mut pending: Vec<u8> = Vec::new();
    let mut buffer = [0u8; 16_384];
    while !stop.load(Ordering::Relaxed) {
        match stream.read(&mut buffer) {
            Ok(0) => break,
            Ok(length) => pending.extend_from_slice(&buffer[..length]),
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(error) => return Err(error.to_string()),
        }
        loop {
            let Some(space) = pending.iter().position(|b| *b == b' ') else {
                if pending.len() > 10 {
                    return Err(format!("no MSG-LEN: {:?}", ascii(&pending[..10])));
                }
                break;
            };
            let digits = &pending[..space];
            if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) || digits[0] == b'0' {
                return Err(format!("MSG-LEN {:?} is not a number", ascii(digits)));
            }
            let length: usize = ascii(digits).parse().map_err(|e| format!("MSG-LEN: {e}"))?;
            if pending.len() < space + 1 + length {
                break;
            }
            lock(inbox).push(pending[space + 1..space + 1 + length].to_vec());
            pending.drain(..space + 1 + length);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parser_takes_rfc5424_and_nothing_else() {
        let message =
            parse(b"<164>1 2026-12-03T11:01:02.123456Z box-a tandem - vrrp - vrrp: web: up")
                .unwrap();
        assert_eq!((message.facility, message.severity), (20, 4));
        assert_eq!(
            message.timestamp,
            Some(Duration::new(1_796_295_662, 123_456_000))
        );
        assert_eq!(message.hostname, "box-a");
        assert_eq!(message.app_name, "tandem");
        assert_eq!(message.msgid, "vrrp");
        assert_eq!(message.msg.as_deref(), Some("vrrp: web: up"));
        let nil = parse(b"<30>1 - box-a tandem - - -").unwrap();
        assert_eq!((nil.timestamp, nil.msg), (None, None));
        let offset = parse(b"<30>1 2026-12-03T12:01:02+01:00 h a - - - x").unwrap();
        assert_eq!(offset.timestamp, Some(Duration::from_secs(1_796_295_662)));
        let bom = parse(b"<30>1 - h a - - - \xEF\xBB\xBF\xC2\xABx").unwrap();
        assert_eq!(bom.msg.as_deref(), Some("\u{ab}x"));
        for bad in [
            &b"<192>1 - h a - - - x"[..],
            b"<030>1 - h a - - - x",
            b"<30>2 - h a - - - x",
            b"<30>1 2026-12-03 11:01:02Z h a - - - x",
            b"<30>1 2026-12-03T11:01:02.1234567Z h a - - - x",
            b"<30>1 2026-13-03T11:01:02Z h a - - - x",
            b"<30>1 - h a - - [x@1] x",
            b"<30>1 - h a - - - \xC2\xAB",
            b"<30>1 - h\x7f a - - - x",
            b"<30>1 - h a - -",
            b"30>1 - h a - - - x",
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
