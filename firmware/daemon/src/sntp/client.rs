//! The SNTP client (RFC 4330, client mode of RFC 5905) as a sans-IO state machine: the driver
//! ([`super`]) hands it the time (`now`, monotonic, for its schedule; `wall`, the box's wall
//! clock, for the four timestamps), random nonces and the datagrams that arrive; it answers
//! with the request to send, the sample a reply gives, and whether to step the clock.
//!
//! - **Schedule**: the first request goes out at once. A reply is awaited [`REPLY_TIMEOUT`];
//!   without one (or with one that carries no usable time) the next server of the list is
//!   asked. No server is asked twice within [`MIN_POLL`] (RFC 4330 section 10: never under 15
//!   s), and one that keeps not answering waits longer (16, 32, 64 s). Once synchronised the
//!   current server is asked every [`FIRST_POLL`], doubling after each good sample to
//!   [`MAX_POLL`]; after a step, a confirming request follows [`MIN_POLL`] later.
//! - **Samples**: offset = ((T2 - T1) + (T3 - T4)) / 2 and delay = (T4 - T1) - (T3 - T2), T1
//!   and T4 the box's wall clock at send and receipt, T2 and T3 the server's.
//! - **Ignored datagrams**: not from the server asked (address and port 123), shorter than a
//!   header, or not a reply to the outstanding request (the origin timestamp must echo the
//!   random nonce sent as transmit timestamp: an off-path spoofer cannot guess it) change
//!   nothing; the reply is awaited on. **Refused replies** (the nonce echoed): not mode 4, version outside 1..=4, a zero
//!   transmit timestamp; a server that is not synchronised itself (leap indicator 3, stratum 0
//!   or 16 and above) gives no time; kiss-o'-death `DENY` / `RSTR` stops asking that server
//!   until the config changes, `RATE` doubles the poll interval. Each refusal is reported and
//!   counted; a stray datagram changes nothing.
//! - **Stepping**: the first sample steps the clock, as does any sample off by more than
//!   [`STEP_THRESHOLD`]; smaller offsets are reported and left (there is no slewing: log
//!   timestamps stay within the threshold).
//! - **Synchronised** while the last good sample is under [`STALE_AFTER`] old.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use tandem_wire::ntp::{KissCode, Leap, Mode, NtpPacket, NtpRepr, Timestamp, NTP_PORT};

use crate::wallclock::Rfc3339;

/// How long a reply is awaited.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(3);
/// The least time between two requests to one server.
pub const MIN_POLL: Duration = Duration::from_secs(16);
/// The poll interval after the first good sample.
pub const FIRST_POLL: Duration = Duration::from_secs(64);
/// The longest poll interval.
pub const MAX_POLL: Duration = Duration::from_secs(1024);
/// An offset beyond which the clock is stepped (ntpd's step threshold).
pub const STEP_THRESHOLD: Duration = Duration::from_millis(128);
/// How long a good sample keeps the clock synchronised.
pub const STALE_AFTER: Duration = Duration::from_secs(3600);

/// Why a reply gave no time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Not a server's reply (mode 4).
    NotServerMode(Mode),
    /// A version no NTP speaks (0, 5..=7).
    BadVersion(u8),
    /// Stratum 0 with `DENY`, `RSTR`, `RATE` or another code.
    Kiss(KissCode),
    /// The server's own clock is not synchronised (leap indicator 3, stratum 0 or >= 16).
    Unsynchronised { leap: Leap, stratum: u8 },
    /// A zero transmit timestamp.
    ZeroTransmit,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::NotServerMode(mode) => {
                write!(f, "the reply is in mode {mode:?}, not a server's (4)")
            }
            Refusal::BadVersion(version) => {
                write!(f, "the reply claims NTP version {version}, which no server speaks")
            }
            Refusal::Kiss(KissCode::Deny | KissCode::Restrict) => write!(
                f,
                "kiss-o'-death {}: the server refuses this box; it is not asked again until \
                 the config changes (check its access rules)",
                match self {
                    Refusal::Kiss(code) => code.to_string(),
                    _ => String::new(),
                }
            ),
            Refusal::Kiss(KissCode::Rate) => f.write_str(
                "kiss-o'-death RATE: the server asks to be asked less often; the poll interval doubles",
            ),
            Refusal::Kiss(code) => write!(f, "kiss-o'-death {code}: the reply carries no time"),
            Refusal::Unsynchronised { leap, stratum } => write!(
                f,
                "the server is not synchronised itself (leap indicator {}, stratum {stratum}); \
                 give it an upstream source or name another server",
                match leap {
                    Leap::Unsynchronised => "3: alarm",
                    Leap::None => "0",
                    Leap::Insert => "1",
                    Leap::Delete => "2",
                }
            ),
            Refusal::ZeroTransmit => f.write_str("the reply has no transmit timestamp"),
        }
    }
}

/// A good sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub server: IpAddr,
    /// How far the box's clock is behind the server's, in nanoseconds (negative: ahead).
    pub offset_nanos: i128,
    /// The round trip, in nanoseconds (the server's time subtracted).
    pub delay_nanos: i128,
    pub stratum: u8,
    /// When it was taken.
    pub at: Instant,
}

/// What the driver is to do or know after an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A good sample; `step` says to step the clock by the sample's offset.
    Sample { sample: Sample, step: bool },
    /// A reply from `server` that gives no time.
    Refused { server: IpAddr, why: Refusal },
    /// `server` did not answer within [`REPLY_TIMEOUT`].
    NoAnswer { server: IpAddr },
}

/// A request to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    pub bytes: [u8; 48],
}

/// One configured server.
#[derive(Debug, Clone)]
struct Server {
    address: IpAddr,
    last_sent: Option<Instant>,
    /// Requests in a row without a usable answer.
    failures: u32,
    /// Since when it has not answered usefully (None: it did last time, or was never asked).
    silent_since: Option<Instant>,
    /// The last refusal it sent.
    refusal: Option<Refusal>,
    /// DENY / RSTR: not asked again.
    banned: bool,
}

/// The request waiting for its reply.
#[derive(Debug, Clone, Copy)]
struct Outstanding {
    server: usize,
    nonce: Timestamp,
    /// T1: the box's wall clock when it went.
    t1: Duration,
    deadline: Instant,
}

/// Counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    pub samples: u64,
    pub no_answers: u64,
    pub refused: u64,
    /// Datagrams that were no reply to the outstanding request (origin, source, none asked).
    pub ignored: u64,
    pub steps: u64,
}

/// The client.
#[derive(Debug, Clone)]
pub struct Client {
    servers: Vec<Server>,
    /// The server asked next (and kept while it answers).
    current: usize,
    outstanding: Option<Outstanding>,
    next_send: Instant,
    poll: Duration,
    last: Option<Sample>,
    /// The last step: by how much and when.
    stepped: Option<(i128, Instant)>,
    counts: Counts,
    /// [`MIN_POLL`], except in a host test that shortens it (`with_min_poll`).
    min_poll: Duration,
}

impl Client {
    /// A client of `servers` (in order of preference); the first request is due at `now`.
    pub fn new(servers: &[IpAddr], now: Instant) -> Client {
        Client {
            servers: servers
                .iter()
                .map(|address| Server {
                    address: *address,
                    last_sent: None,
                    failures: 0,
                    silent_since: None,
                    refusal: None,
                    banned: false,
                })
                .collect(),
            current: 0,
            outstanding: None,
            next_send: now,
            poll: FIRST_POLL,
            last: None,
            stepped: None,
            counts: Counts::default(),
            min_poll: MIN_POLL,
        }
    }

    /// The same client with `min_poll` in place of [`MIN_POLL`] (the confirming request after a
    /// step, the wait before asking a server again): only `tandem run`'s host tests shorten it
    /// (`TANDEM_SNTP_MIN_POLL_S`), against their own chronyd; the appliance keeps RFC 4330's.
    pub fn with_min_poll(mut self, min_poll: Duration) -> Client {
        self.min_poll = min_poll;
        self
    }

    /// The minimum poll this client keeps to ([`MIN_POLL`] but in host tests).
    pub fn min_poll(&self) -> Duration {
        self.min_poll
    }

    /// The counters.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// The last good sample.
    pub fn last_sample(&self) -> Option<Sample> {
        self.last
    }

    /// Whether the clock counts as synchronised at `now`.
    pub fn is_synced(&self, now: Instant) -> bool {
        self.last
            .is_some_and(|s| now.saturating_duration_since(s.at) < STALE_AFTER)
    }

    /// When the driver must call again: the outstanding request's deadline, else the next
    /// request's time (None: nothing to do, no usable server).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.outstanding {
            Some(outstanding) => Some(outstanding.deadline),
            None => self
                .servers
                .iter()
                .any(|s| !s.banned)
                .then_some(self.next_send),
        }
    }

    /// The request due at `now`, if one is: `wall` is the box's clock as it goes, `nonce` a
    /// fresh random number (the transmit timestamp the reply must echo).
    pub fn poll_transmit(&mut self, now: Instant, wall: Duration, nonce: u64) -> Option<Transmit> {
        if self.outstanding.is_some() || now < self.next_send {
            return None;
        }
        let at = self.usable_from(self.current)?;
        self.current = at;
        let server = self.servers.get_mut(at)?;
        server.last_sent = Some(now);
        let nonce = Timestamp(nonce);
        let mut bytes = [0u8; 48];
        NtpRepr::client_request(nonce).emit(&mut bytes).ok()?;
        self.outstanding = Some(Outstanding {
            server: at,
            nonce,
            t1: wall,
            deadline: now + REPLY_TIMEOUT,
        });
        self.counts.requests += 1;
        Some(Transmit {
            to: SocketAddr::new(server.address, NTP_PORT),
            bytes,
        })
    }

    /// The first server not banned from index `from` on (wrapping).
    fn usable_from(&self, from: usize) -> Option<usize> {
        let count = self.servers.len();
        (0..count)
            .map(|k| (from + k) % count)
            .find(|at| self.servers.get(*at).is_some_and(|s| !s.banned))
    }

    /// A datagram from `from` at `now` (`wall`: the box's clock as it arrived, T4).
    pub fn handle_reply(
        &mut self,
        now: Instant,
        wall: Duration,
        from: SocketAddr,
        bytes: &[u8],
    ) -> Option<Event> {
        let Some(outstanding) = self.outstanding else {
            self.counts.ignored += 1;
            return None;
        };
        let address = self.servers.get(outstanding.server)?.address;
        if from.ip() != address || from.port() != NTP_PORT {
            self.counts.ignored += 1;
            return None;
        }
        // Too short to echo the nonce, or not echoing it: nothing says this answers the
        // request (a spoofer could end it with any datagram otherwise); wait on for the reply.
        let Ok(packet) = NtpPacket::new_checked(bytes) else {
            self.counts.ignored += 1;
            return None;
        };
        let repr = NtpRepr::parse(&packet);
        if repr.origin_timestamp != outstanding.nonce {
            self.counts.ignored += 1;
            return None;
        }
        self.outstanding = None;
        if repr.mode != Mode::Server {
            return Some(self.refuse(now, outstanding.server, Refusal::NotServerMode(repr.mode)));
        }
        if !(1..=4).contains(&repr.version) {
            return Some(self.refuse(now, outstanding.server, Refusal::BadVersion(repr.version)));
        }
        if let Some(code @ (KissCode::Deny | KissCode::Restrict | KissCode::Rate)) =
            repr.kiss_code()
        {
            return Some(self.refuse(now, outstanding.server, Refusal::Kiss(code)));
        }
        if repr.leap == Leap::Unsynchronised || repr.stratum >= 16 {
            return Some(self.refuse(
                now,
                outstanding.server,
                Refusal::Unsynchronised {
                    leap: repr.leap,
                    stratum: repr.stratum,
                },
            ));
        }
        if let Some(code) = repr.kiss_code() {
            return Some(self.refuse(now, outstanding.server, Refusal::Kiss(code)));
        }
        if repr.transmit_timestamp == Timestamp::ZERO {
            return Some(self.refuse(now, outstanding.server, Refusal::ZeroTransmit));
        }
        let t1 = nanos(outstanding.t1);
        let t2 = repr.receive_timestamp.to_unix_nanos();
        let t3 = repr.transmit_timestamp.to_unix_nanos();
        let t4 = nanos(wall);
        let sample = Sample {
            server: address,
            offset_nanos: ((t2 - t1) + (t3 - t4)) / 2,
            delay_nanos: ((t4 - t1) - (t3 - t2)).max(0),
            stratum: repr.stratum,
            at: now,
        };
        self.counts.samples += 1;
        if let Some(server) = self.servers.get_mut(outstanding.server) {
            server.failures = 0;
            server.silent_since = None;
            server.refusal = None;
        }
        let step =
            self.last.is_none() || sample.offset_nanos.unsigned_abs() > STEP_THRESHOLD.as_nanos();
        self.last = Some(sample);
        if step {
            // Confirm the step soon; poll from the start again.
            self.poll = FIRST_POLL;
            self.next_send = now + self.min_poll;
        } else {
            self.next_send = now + self.poll;
            self.poll = (self.poll * 2).min(MAX_POLL);
        }
        Some(Event::Sample { sample, step })
    }

    /// The driver stepped the clock by `by_nanos` at `now` (as the last sample asked). The
    /// last sample's offset stays what was measured until the confirming sample replaces it.
    pub fn stepped(&mut self, by_nanos: i128, now: Instant) {
        self.stepped = Some((by_nanos, now));
        self.counts.steps += 1;
    }

    /// The deadline of the outstanding request passed: the event, if it had not been
    /// answered.
    pub fn handle_timeout(&mut self, now: Instant) -> Option<Event> {
        let outstanding = self.outstanding.filter(|o| now >= o.deadline)?;
        self.outstanding = None;
        self.counts.no_answers += 1;
        let server = self.servers.get_mut(outstanding.server)?;
        let address = server.address;
        server.refusal = None;
        self.failed(
            outstanding.server,
            now,
            outstanding.deadline - REPLY_TIMEOUT,
        );
        Some(Event::NoAnswer { server: address })
    }

    /// A reply of server `at` (to the request it answered) that gives no time.
    fn refuse(&mut self, now: Instant, at: usize, why: Refusal) -> Event {
        self.counts.refused += 1;
        let mut address = IpAddr::from([0, 0, 0, 0]);
        if let Some(server) = self.servers.get_mut(at) {
            address = server.address;
            server.refusal = Some(why.clone());
            if matches!(why, Refusal::Kiss(KissCode::Deny | KissCode::Restrict)) {
                server.banned = true;
            }
        }
        self.failed(at, now, now);
        if why == Refusal::Kiss(KissCode::Rate) {
            // Asked to ask less often: not again before the doubled interval.
            self.poll = (self.poll * 2).min(MAX_POLL);
            self.next_send = self.next_send.max(now + self.poll);
        }
        Event::Refused {
            server: address,
            why,
        }
    }

    /// Server `at` gave no time for the request sent at `sent`: the next server is asked, no
    /// sooner than its own least interval allows.
    fn failed(&mut self, at: usize, now: Instant, sent: Instant) {
        if let Some(server) = self.servers.get_mut(at) {
            server.failures = server.failures.saturating_add(1);
            server.silent_since.get_or_insert(sent);
        }
        let count = self.servers.len().max(1);
        let Some(next) = self.usable_from((at + 1) % count) else {
            return;
        };
        self.current = next;
        let Some(server) = self.servers.get(next) else {
            return;
        };
        // 16 s after the last request to it, 32 s after two failures, 64 s after three.
        let wait = self.min_poll * 2u32.pow(server.failures.saturating_sub(1).min(2));
        let earliest = server.last_sent.map_or(now, |last| last + wait);
        self.next_send = earliest.max(now);
    }

    /// The `status:` fact: `time synchronised to ...` or `time not synchronised (why)`. `wall`
    /// is the box's clock at `now` (to name when a silence began, when the clock is known).
    pub fn status_line(&self, now: Instant, wall: Option<Duration>) -> String {
        let ago = |at: Instant| now.saturating_duration_since(at).as_secs();
        let signed = |nanos: i128| {
            // Seconds with sign; f64 is plenty for display.
            let seconds = nanos as f64 / 1e9;
            format!("{seconds:+.6}")
        };
        if self.servers.is_empty() {
            return "time not synchronised (no time servers configured)".to_owned();
        }
        let mut line = String::new();
        if let Some(sample) = self.last.filter(|_| self.is_synced(now)) {
            let _ = write!(
                line,
                "time synchronised to {} stratum {} offset {} s delay {:.6} s, last sync {} s ago",
                sample.server,
                sample.stratum,
                signed(sample.offset_nanos),
                Duration::from_nanos(u64::try_from(sample.delay_nanos).unwrap_or(0)).as_secs_f64(),
                ago(sample.at)
            );
        } else {
            line.push_str("time not synchronised (");
            let mut reasons: Vec<String> = Vec::new();
            for server in &self.servers {
                if let Some(why) = &server.refusal {
                    reasons.push(format!("{}: {why}", server.address));
                } else if let Some(since) = server.silent_since {
                    let when = match wall {
                        Some(wall) => {
                            let then = wall.saturating_sub(now.saturating_duration_since(since));
                            format!(
                                "since {}",
                                Rfc3339 {
                                    since_epoch: then,
                                    digits: 0
                                }
                            )
                        }
                        None => format!("for {} s", ago(since)),
                    };
                    reasons.push(format!("no answer from {} {when}", server.address));
                }
            }
            if reasons.is_empty() {
                let asking = self
                    .outstanding
                    .and_then(|o| self.servers.get(o.server))
                    .or_else(|| self.servers.get(self.current))
                    .map_or_else(String::new, |s| s.address.to_string());
                reasons.push(format!("asking {asking}"));
            }
            line.push_str(&reasons.join("; "));
            line.push(')');
            if let Some(sample) = self.last {
                let _ = write!(
                    line,
                    "; last sync {} s ago from {}",
                    ago(sample.at),
                    sample.server
                );
            }
        }
        if let Some((by, at)) = self.stepped {
            let _ = write!(line, "; clock stepped {} s {} s ago", signed(by), ago(at));
        }
        line
    }
}

fn nanos(since_epoch: Duration) -> i128 {
    i128::try_from(since_epoch.as_nanos()).unwrap_or(i128::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SERVER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 1));
    const OTHER: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 2));

    /// The reply of an unsynchronised chrony 4.3 (no `local`, no sources), captured: leap 3,
    /// stratum 0, reference id 0, origin 0x0123456789abcdef.
    const UNSYNCHRONISED_CHRONY: [u8; 48] = [
        0xe4, 0x00, 0x00, 0xe6, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
        0xcd, 0xef, 0xee, 0xbb, 0xca, 0xa7, 0x92, 0xb8, 0x5a, 0x47, 0xee, 0xbb, 0xca, 0xa7, 0x92,
        0xbc, 0xf8, 0xd6,
    ];

    fn from(server: IpAddr) -> SocketAddr {
        SocketAddr::new(server, NTP_PORT)
    }

    /// A server's reply to `request`: it received at `t2` and sent at `t3` (its clock).
    fn reply(request: &Transmit, t2: Duration, t3: Duration, stratum: u8) -> [u8; 48] {
        let asked = NtpRepr::parse(&NtpPacket::new_checked(&request.bytes[..]).unwrap());
        let repr = NtpRepr {
            mode: Mode::Server,
            stratum,
            reference_id: [127, 127, 1, 1],
            origin_timestamp: asked.transmit_timestamp,
            receive_timestamp: Timestamp::from_unix(t2),
            transmit_timestamp: Timestamp::from_unix(t3),
            ..NtpRepr::client_request(Timestamp::ZERO)
        };
        let mut bytes = [0u8; 48];
        repr.emit(&mut bytes).unwrap();
        bytes
    }

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn the_four_timestamps_give_offset_and_delay_and_the_first_sample_steps() {
        let start = Instant::now();
        let mut client = Client::new(&[SERVER], start);
        assert_eq!(client.poll_timeout(), Some(start));
        // The box's clock says 1000 s; the server's is 3600 s ahead; 20 ms each way, 2 ms
        // inside the server.
        let request = client
            .poll_transmit(start, secs(1000.0), 0xdead_beef)
            .unwrap();
        assert_eq!(request.to, from(SERVER));
        assert_eq!(request.bytes[0], 0x23);
        assert_eq!(request.bytes[40..48], 0xdead_beefu64.to_be_bytes());
        assert!(
            client.poll_transmit(start, secs(1000.0), 1).is_none(),
            "one at a time"
        );
        let answer = reply(&request, secs(4600.020), secs(4600.022), 3);
        let arrived = start + Duration::from_millis(42);
        let event = client
            .handle_reply(arrived, secs(1000.042), from(SERVER), &answer)
            .unwrap();
        let Event::Sample { sample, step } = event else {
            panic!("{event:?}")
        };
        assert!(step, "the first sample steps");
        assert!(
            (sample.offset_nanos - 3_600_000_000_000).abs() < 1_000,
            "{sample:?}"
        );
        assert!(
            (sample.delay_nanos - 40_000_000).abs() < 1_000,
            "{sample:?}"
        );
        assert_eq!(sample.stratum, 3);
        assert!(client.is_synced(arrived));
        client.stepped(sample.offset_nanos, arrived);
        let line = client.status_line(arrived, None);
        assert!(
            line.starts_with(
                "time synchronised to 192.0.2.1 stratum 3 offset +3600.000000 s delay 0.040000 s"
            ),
            "{line}"
        );
        assert!(line.contains("clock stepped +3600.000000 s"), "{line}");
        // A confirming request MIN_POLL later; a small offset then is left alone.
        assert_eq!(client.poll_timeout(), Some(arrived + MIN_POLL));
        let later = arrived + MIN_POLL;
        let request = client.poll_transmit(later, secs(4616.0), 7).unwrap();
        let answer = reply(&request, secs(4616.011), secs(4616.011), 3);
        let event = client
            .handle_reply(later, secs(4616.020), from(SERVER), &answer)
            .unwrap();
        let Event::Sample { sample, step } = event else {
            panic!("{event:?}")
        };
        assert!(!step);
        assert!(
            (sample.offset_nanos - 1_000_000).abs() < 1_000,
            "{sample:?}"
        );
        assert_eq!(client.poll_timeout(), Some(later + FIRST_POLL));
        // Later polls double to the cap; an offset past the threshold steps again.
        let mut now = later + FIRST_POLL;
        let mut wall = 4700.0;
        for expected in [128, 256, 512, 1024, 1024] {
            let request = client.poll_transmit(now, secs(wall), 9).unwrap();
            let answer = reply(&request, secs(wall), secs(wall), 3);
            client.handle_reply(now, secs(wall), from(SERVER), &answer);
            assert_eq!(
                client.poll_timeout(),
                Some(now + Duration::from_secs(expected))
            );
            now += Duration::from_secs(expected);
            wall += 2000.0;
        }
        let request = client.poll_transmit(now, secs(wall), 9).unwrap();
        let answer = reply(&request, secs(wall - 0.2), secs(wall - 0.2), 3);
        let event = client.handle_reply(now, secs(wall), from(SERVER), &answer);
        assert!(
            matches!(event, Some(Event::Sample { step: true, .. })),
            "{event:?}"
        );
        assert_eq!(client.counts().samples, 8);
    }

    #[test]
    fn a_host_test_may_shorten_the_confirming_poll() {
        let start = Instant::now();
        let mut client = Client::new(&[SERVER], start).with_min_poll(Duration::from_secs(2));
        let request = client.poll_transmit(start, secs(1000.0), 5).unwrap();
        let answer = reply(&request, secs(4600.020), secs(4600.022), 3);
        let arrived = start + Duration::from_millis(42);
        let event = client.handle_reply(arrived, secs(1000.042), from(SERVER), &answer);
        assert!(
            matches!(event, Some(Event::Sample { step: true, .. })),
            "{event:?}"
        );
        assert_eq!(
            client.poll_timeout(),
            Some(arrived + Duration::from_secs(2))
        );
    }

    #[test]
    fn spoofed_stale_and_stray_datagrams_change_nothing() {
        let start = Instant::now();
        let mut client = Client::new(&[SERVER], start);
        assert!(client
            .handle_reply(start, secs(1.0), from(SERVER), &[0u8; 48])
            .is_none());
        let request = client.poll_transmit(start, secs(1000.0), 42).unwrap();
        let good = reply(&request, secs(1000.0), secs(1000.0), 2);
        // Another origin (a guess, or the reply to an earlier request).
        let mut spoofed = good;
        spoofed[31] ^= 1;
        assert!(client
            .handle_reply(start, secs(1000.0), from(SERVER), &spoofed)
            .is_none());
        // The right bytes from elsewhere: another host, or another port.
        assert!(client
            .handle_reply(start, secs(1000.0), from(OTHER), &good)
            .is_none());
        assert!(client
            .handle_reply(start, secs(1000.0), SocketAddr::new(SERVER, 1123), &good)
            .is_none());
        assert_eq!(client.counts().ignored, 4);
        assert!(!client.is_synced(start));
        // The real reply still counts.
        let event = client.handle_reply(start, secs(1000.0), from(SERVER), &good);
        assert!(matches!(event, Some(Event::Sample { .. })), "{event:?}");
    }

    #[test]
    fn servers_that_give_no_time_are_refused_with_their_reason() {
        let start = Instant::now();
        type Spoil = fn(&mut [u8; 48]);
        let cases: [(Spoil, &str); 7] = [
            (
                |b| b[0] = 0x24 | 0xc0,
                "not synchronised itself (leap indicator 3: alarm, stratum 2)",
            ),
            (|b| b[1] = 16, "leap indicator 0, stratum 16"),
            (
                |b| {
                    b[1] = 0;
                    b[12..16].copy_from_slice(b"INIT");
                },
                "kiss-o'-death INIT",
            ),
            (|b| b[0] = 0x23, "mode Client"),
            (|b| b[0] = 0x04, "version 0"),
            (|b| b[40..48].fill(0), "no transmit timestamp"),
            (
                |b| {
                    b[1] = 0;
                    b[12..16].copy_from_slice(b"DENY");
                },
                "refuses this box",
            ),
        ];
        for (spoil, expected) in cases {
            let mut client = Client::new(&[SERVER], start);
            let request = client.poll_transmit(start, secs(1000.0), 42).unwrap();
            let mut answer = reply(&request, secs(1000.0), secs(1000.0), 2);
            spoil(&mut answer);
            let event = client
                .handle_reply(start, secs(1000.0), from(SERVER), &answer)
                .unwrap();
            let Event::Refused { server, why } = event else {
                panic!("{expected}: {event:?}")
            };
            assert_eq!(server, SERVER);
            assert!(why.to_string().contains(expected), "{why}");
            assert!(!client.is_synced(start));
            let line = client.status_line(start, None);
            assert!(
                line.starts_with("time not synchronised (192.0.2.1: "),
                "{line}"
            );
        }
        // A captured reply of an unsynchronised chrony: leap 3 and stratum 0 with no kiss
        // code is a server without time, not a kiss-o'-death.
        let mut client = Client::new(&[SERVER], start);
        let request = client
            .poll_transmit(start, secs(1000.0), 0x0123_4567_89ab_cdef)
            .unwrap();
        assert_eq!(
            request.bytes[40..48],
            0x0123_4567_89ab_cdefu64.to_be_bytes()
        );
        let event = client.handle_reply(start, secs(1000.0), from(SERVER), &UNSYNCHRONISED_CHRONY);
        assert_eq!(
            event,
            Some(Event::Refused {
                server: SERVER,
                why: Refusal::Unsynchronised {
                    leap: Leap::Unsynchronised,
                    stratum: 0
                }
            })
        );
        // A datagram too short to echo the nonce cannot end the request.
        client
            .poll_transmit(start + MIN_POLL, secs(1016.0), 1)
            .unwrap();
        let event = client.handle_reply(start + MIN_POLL, secs(1016.0), from(SERVER), &[0x24; 47]);
        assert_eq!(event, None);
        assert_eq!(client.counts().ignored, 1);
        assert_eq!(
            client.poll_timeout(),
            Some(start + MIN_POLL + REPLY_TIMEOUT)
        );
    }

    #[test]
    fn silence_moves_to_the_next_server_and_deny_bans_one() {
        let start = Instant::now();
        let mut client = Client::new(&[SERVER, OTHER], start);
        let first = client.poll_transmit(start, secs(1000.0), 1).unwrap();
        assert_eq!(first.to, from(SERVER));
        assert_eq!(client.poll_timeout(), Some(start + REPLY_TIMEOUT));
        assert!(client
            .handle_timeout(start + Duration::from_secs(1))
            .is_none());
        let timeout = start + REPLY_TIMEOUT;
        assert_eq!(
            client.handle_timeout(timeout),
            Some(Event::NoAnswer { server: SERVER })
        );
        // The other server is asked at once.
        assert_eq!(client.poll_timeout(), Some(timeout));
        let second = client.poll_transmit(timeout, secs(1003.0), 2).unwrap();
        assert_eq!(second.to, from(OTHER));
        let mut deny = reply(&second, secs(1003.0), secs(1003.0), 0);
        deny[12..16].copy_from_slice(b"DENY");
        let event = client.handle_reply(timeout, secs(1003.0), from(OTHER), &deny);
        assert!(matches!(
            event,
            Some(Event::Refused {
                why: Refusal::Kiss(KissCode::Deny),
                ..
            })
        ));
        // Back to the first, 16 s after it was asked; the banned one never again.
        assert_eq!(client.poll_timeout(), Some(start + MIN_POLL));
        let line = client.status_line(timeout, None);
        assert_eq!(
            line,
            "time not synchronised (no answer from 192.0.2.1 for 3 s; 192.0.2.2: kiss-o'-death \
             DENY: the server refuses this box; it is not asked again until the config \
             changes (check its access rules))"
        );
        // The silent server is asked 16, 32, 64, 64 s after each request.
        let mut now = start + MIN_POLL;
        let mut sent = vec![start];
        for _ in 0..4 {
            let request = client.poll_transmit(now, secs(1000.0), 3).unwrap();
            assert_eq!(request.to.ip(), SERVER);
            sent.push(now);
            now += REPLY_TIMEOUT;
            client.handle_timeout(now);
            now = client.poll_timeout().unwrap();
        }
        let gaps: Vec<u64> = sent.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
        assert_eq!(gaps, [16, 32, 64, 64]);
        assert!(client
            .status_line(now, Some(secs(1_796_295_662.0)))
            .contains("no answer from 192.0.2.1 since 2026-12-03T"));
        let only_banned = {
            let mut client = Client::new(&[OTHER], start);
            let request = client.poll_transmit(start, secs(1.0), 5).unwrap();
            let mut rstr = reply(&request, secs(1.0), secs(1.0), 0);
            rstr[12..16].copy_from_slice(b"RSTR");
            client.handle_reply(start, secs(1.0), from(OTHER), &rstr);
            client
        };
        assert_eq!(only_banned.poll_timeout(), None, "nobody left to ask");
    }

    #[test]
    fn a_rate_kiss_slows_the_polls_and_no_servers_says_so() {
        let start = Instant::now();
        let mut client = Client::new(&[SERVER], start);
        let request = client.poll_transmit(start, secs(1000.0), 1).unwrap();
        let answer = reply(&request, secs(1000.0), secs(1000.0), 2);
        client.handle_reply(start, secs(1000.0), from(SERVER), &answer);
        let now = start + MIN_POLL;
        let request = client.poll_transmit(now, secs(1016.0), 2).unwrap();
        let mut rate = reply(&request, secs(1016.0), secs(1016.0), 0);
        rate[12..16].copy_from_slice(b"RATE");
        let event = client.handle_reply(now, secs(1016.0), from(SERVER), &rate);
        assert!(matches!(
            event,
            Some(Event::Refused {
                why: Refusal::Kiss(KissCode::Rate),
                ..
            })
        ));
        let due = client.poll_timeout().unwrap();
        assert!(
            due >= start + 2 * FIRST_POLL,
            "asked again {:?} after",
            due - start
        );
        assert!(
            client.is_synced(now),
            "a RATE kiss does not undo the last sample"
        );
        let none = Client::new(&[], start);
        assert_eq!(none.poll_timeout(), None);
        assert_eq!(
            none.status_line(start, None),
            "time not synchronised (no time servers configured)"
        );
        assert!(!none.is_synced(start));
        let fresh = Client::new(&[SERVER], start);
        assert_eq!(
            fresh.status_line(start, None),
            "time not synchronised (asking 192.0.2.1)"
        );
    }
}
