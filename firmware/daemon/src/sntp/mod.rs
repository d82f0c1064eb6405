//! Wall-clock time from the servers of `management.time_servers`: the SNTP client core
//! ([`client`]) driven over UDP on a thread and runtime of its own, stepping the clock when a
//! sample says so and telling [`crate::wallclock`] whether the clock is synchronised.
//!
//! **Stepping** goes through a [`ClockStep`]: on the appliance ([`SystemClock`]) it is
//! `clock_settime(CLOCK_REALTIME)`, which nothing of Tandem's timers notices (they all run on
//! CLOCK_MONOTONIC or CLOCK_BOOTTIME); under `tandem run` ([`VirtualClock`]) the host's clock
//! is never touched: the step becomes a correction of the daemon's own wall clock, and the log
//! says what the appliance would have done. (`TANDEM_CLOCK_SKEW_S=S` starts `tandem run`'s
//! clock S seconds off, so a host test sees a real step and its offset against a real server.)
//!
//! Without time servers, or without an answer, the box runs on whatever its clock says and
//! says so: `status` shows `time not synchronised (...)` with the reason, log lines carry no
//! wall-clock stamp, syslog messages carry the NILVALUE timestamp.

pub mod client;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::watch;

use crate::logring::{Log, Severity};
use crate::metrics::{Families, Family, Labels};
use crate::wallclock;
use client::{Client, Event};

/// How the clock is stepped.
pub trait ClockStep: Send + std::fmt::Debug {
    /// Moves the clock by `nanos` (positive: forward).
    fn step(&mut self, nanos: i128) -> Result<(), String>;
    /// What a step did, for the log (`clock stepped`).
    fn what(&self) -> &'static str;
}

/// The appliance's clock: CLOCK_REALTIME itself.
#[derive(Debug, Default)]
pub struct SystemClock;

impl ClockStep for SystemClock {
    fn step(&mut self, nanos: i128) -> Result<(), String> {
        use nix::time::{clock_gettime, clock_settime, ClockId};
        let now = clock_gettime(ClockId::CLOCK_REALTIME).map_err(|e| e.to_string())?;
        let now_nanos = i128::from(now.tv_sec()) * 1_000_000_000 + i128::from(now.tv_nsec());
        let then = now_nanos.saturating_add(nanos).max(0);
        let seconds = i64::try_from(then / 1_000_000_000).map_err(|e| e.to_string())?;
        let rest = i64::try_from(then % 1_000_000_000).map_err(|e| e.to_string())?;
        clock_settime(
            ClockId::CLOCK_REALTIME,
            nix::sys::time::TimeSpec::new(seconds, rest),
        )
        .map_err(|errno| format!("clock_settime: {errno}"))
    }

    fn what(&self) -> &'static str {
        "clock stepped"
    }
}

/// `tandem run`'s clock: the host's, plus a correction only this daemon applies.
#[derive(Debug, Default)]
pub struct VirtualClock;

impl ClockStep for VirtualClock {
    fn step(&mut self, nanos: i128) -> Result<(), String> {
        let nanos = i64::try_from(nanos).map_err(|_| "step out of range".to_owned())?;
        wallclock::correct_by(nanos);
        Ok(())
    }

    fn what(&self) -> &'static str {
        "clock stepped (tandem run: its own clock; the host's is left alone)"
    }
}

/// The daemon's end of the time client.
#[derive(Debug, Clone)]
pub struct TimeHandle {
    servers: Arc<watch::Sender<Vec<IpAddr>>>,
    client: Arc<Mutex<Client>>,
}

impl TimeHandle {
    /// Takes time from `servers` from now on; the same list again changes nothing.
    pub fn follow(&self, servers: Vec<IpAddr>) {
        self.servers.send_if_modified(|now| {
            let changed = *now != servers;
            *now = servers;
            changed
        });
    }

    fn client(&self) -> Client {
        self.client
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The `status:` fact.
    pub fn status_line(&self) -> String {
        self.client()
            .status_line(Instant::now(), wallclock::synced_now())
    }

    /// The time families: synchronised, offset, delay and stratum of the last sample, steps,
    /// and requests by outcome.
    pub fn metrics(&self) -> Families {
        let client = self.client();
        let now = Instant::now();
        let mut families = Families::new();
        families.push(
            Family::gauge(
                "tandem_time_synchronised",
                "1 while an SNTP server's sample under an hour old vouches for the box's clock.",
            )
            .with(client.is_synced(now)),
        );
        if let Some(sample) = client.last_sample() {
            families.push(
                Family::gauge(
                    "tandem_time_offset_seconds",
                    "How far the box's clock was behind the time server at the last sample (negative: ahead), before any step it caused.",
                )
                .with(sample.offset_nanos as f64 / 1e9),
            );
            families.push(
                Family::gauge(
                    "tandem_time_delay_seconds",
                    "Round trip to the time server at the last sample.",
                )
                .with(sample.delay_nanos as f64 / 1e9),
            );
            let mut stratum = Family::gauge(
                "tandem_time_server_stratum",
                "Stratum of the time server of the last sample.",
            );
            stratum.add(
                Labels::of(&[("server", &sample.server.to_string())]),
                sample.stratum,
            );
            families.push(stratum);
        }
        let counts = client.counts();
        families.push(
            Family::counter(
                "tandem_time_steps_total",
                "Times the SNTP client stepped the clock (the first sample, and offsets over 0.128 s).",
            )
            .with(counts.steps),
        );
        let mut requests = Family::counter(
            "tandem_time_requests_total",
            "SNTP requests by outcome: answered (a sample), no_answer (none within 3 s), refused (kiss-o'-death, server unsynchronised, not a server reply).",
        );
        requests.add_each(
            &Labels::NONE,
            "result",
            [
                ("answered", counts.samples),
                ("no_answer", counts.no_answers),
                ("refused", counts.refused),
            ],
        );
        families.push(requests);
        families.push(
            Family::counter(
                "tandem_time_datagrams_ignored_total",
                "Datagrams on the SNTP socket that answered no request of this box (wrong source, origin timestamp not echoed, too short).",
            )
            .with(counts.ignored),
        );
        families
    }
}

/// Starts the time client's thread for `servers`; `clock` steps the clock; `min_poll` is
/// [`client::MIN_POLL`] but in `tandem run`'s host tests ([`foreground_min_poll`]).
pub fn spawn(
    log: Log,
    servers: Vec<IpAddr>,
    clock: Box<dyn ClockStep>,
    min_poll: Duration,
) -> Option<TimeHandle> {
    let (sender, wanted) = watch::channel(servers.clone());
    let client = Arc::new(Mutex::new(
        Client::new(&servers, Instant::now()).with_min_poll(min_poll),
    ));
    let shared = Arc::clone(&client);
    let thread_log = log.clone();
    let spawned = std::thread::Builder::new()
        .name("sntp".to_owned())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime.block_on(run(thread_log, wanted, shared, clock)),
                Err(error) => thread_log.line(format!(
                    "time: cannot start the SNTP client's runtime: {error}; the clock is not synchronised"
                )),
            }
        });
    if let Err(error) = spawned {
        log.line(format!(
            "time: cannot start the SNTP client's thread: {error}; the clock is not synchronised"
        ));
        return None;
    }
    Some(TimeHandle {
        servers: Arc::new(sender),
        client,
    })
}

/// What was last logged about the clock, so a state is logged once, not at every poll.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Told {
    Nothing,
    Synced(IpAddr),
    Unsynced(String),
}

/// The client's loop: sends what it asks to, feeds it replies and timeouts, steps the clock.
async fn run(
    log: Log,
    mut wanted: watch::Receiver<Vec<IpAddr>>,
    shared: Arc<Mutex<Client>>,
    mut clock: Box<dyn ClockStep>,
) {
    let lock = || shared.lock().unwrap_or_else(PoisonError::into_inner);
    let mut socket: Option<UdpSocket> = None;
    let mut buffer = [0u8; 512];
    let mut told = Told::Nothing;
    let mut servers = wanted.borrow_and_update().clone();
    if servers.is_empty() {
        wallclock::set_synced(false);
    } else {
        log.at(Severity::Info, format!("time: asking {}", list(&servers)));
    }
    loop {
        let now = Instant::now();
        let transmit =
            lock().poll_transmit(now, wallclock::now(), crate::peer_channel::random_epoch());
        if let Some(transmit) = transmit {
            // A new socket (and source port) per request: a late reply to an earlier one
            // meets a closed port.
            socket = match request(transmit.to, &transmit.bytes).await {
                Ok(opened) => Some(opened),
                Err(error) => {
                    let line = format!("time: cannot ask {}: {error}", transmit.to.ip());
                    if told != Told::Unsynced(line.clone()) {
                        log.at(Severity::Warning, &line);
                        told = Told::Unsynced(line);
                    }
                    None
                }
            };
        }
        let due = lock().poll_timeout();
        let event = tokio::select! {
            changed = wanted.changed() => {
                if changed.is_err() {
                    return;
                }
                let next = wanted.borrow_and_update().clone();
                if next != servers {
                    servers = next;
                    let min_poll = lock().min_poll();
                    *lock() = Client::new(&servers, Instant::now()).with_min_poll(min_poll);
                    socket = None;
                    told = Told::Nothing;
                    wallclock::set_synced(false);
                    log.at(Severity::Notice, if servers.is_empty() {
                        "time: no time servers configured; the clock is not synchronised".to_owned()
                    } else {
                        format!("time: asking {}", list(&servers))
                    });
                }
                None
            }
            () = sleep_until(due) => lock().handle_timeout(Instant::now()),
            received = receive(socket.as_ref(), &mut buffer) => match received {
                Ok((length, from)) => {
                    let wall = wallclock::now();
                    let bytes = buffer.get(..length).unwrap_or_default();
                    lock().handle_reply(Instant::now(), wall, from, bytes)
                }
                Err(_) => {
                    socket = None;
                    None
                }
            },
        };
        if let Some(event) = event {
            told = on_event(&log, &shared, clock.as_mut(), event, told);
        }
        let synced = lock().is_synced(Instant::now());
        if wallclock::is_synced() != synced {
            wallclock::set_synced(synced);
            if !synced && !servers.is_empty() {
                log.at(
                    Severity::Warning,
                    format!(
                        "time: not synchronised: no usable sample for {} s",
                        client::STALE_AFTER.as_secs()
                    ),
                );
            }
        }
    }
}

/// Acts on one event: steps the clock, logs what changed; returns what was told now.
fn on_event(
    log: &Log,
    shared: &Mutex<Client>,
    clock: &mut dyn ClockStep,
    event: Event,
    told: Told,
) -> Told {
    match event {
        Event::Sample { sample, step } => {
            let seconds = sample.offset_nanos as f64 / 1e9;
            if step {
                match clock.step(sample.offset_nanos) {
                    Ok(()) => {
                        // Vouched for from here on: the step's own line carries the time.
                        wallclock::set_synced(true);
                        shared
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .stepped(sample.offset_nanos, Instant::now());
                        log.at(
                            Severity::Notice,
                            format!(
                                "time: {} by {seconds:+.6} s: synchronised to {} (stratum {}, delay {:.6} s)",
                                clock.what(),
                                sample.server,
                                sample.stratum,
                                sample.delay_nanos as f64 / 1e9
                            ),
                        );
                        return Told::Synced(sample.server);
                    }
                    Err(error) => {
                        log.at(
                            Severity::Error,
                            format!(
                                "time: cannot step the clock by {seconds:+.6} s: {error}; timestamps stay off by that much"
                            ),
                        );
                        return Told::Unsynced(error);
                    }
                }
            }
            wallclock::set_synced(true);
            if told != Told::Synced(sample.server) {
                log.at(
                    Severity::Notice,
                    format!(
                        "time: synchronised to {} (stratum {}, offset {seconds:+.6} s)",
                        sample.server, sample.stratum
                    ),
                );
            }
            Told::Synced(sample.server)
        }
        Event::NoAnswer { server } => {
            let line = format!("time: no answer from {server}");
            if told != Told::Unsynced(line.clone()) {
                log.at(
                    Severity::Warning,
                    format!("{line} within {} s", client::REPLY_TIMEOUT.as_secs()),
                );
            }
            Told::Unsynced(line)
        }
        Event::Refused { server, why } => {
            let line = format!("time: {server}: {why}");
            if told != Told::Unsynced(line.clone()) {
                log.at(Severity::Warning, &line);
            }
            Told::Unsynced(line)
        }
    }
}

fn list(servers: &[IpAddr]) -> String {
    servers
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sends `bytes` to `to` from a new socket, which it returns (the reply comes to it).
async fn request(to: SocketAddr, bytes: &[u8]) -> std::io::Result<UdpSocket> {
    let local: SocketAddr = if to.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await?;
    socket.send_to(bytes, to).await?;
    Ok(socket)
}

/// The next datagram on `socket`; without a socket, forever.
async fn receive(
    socket: Option<&UdpSocket>,
    buffer: &mut [u8],
) -> std::io::Result<(usize, SocketAddr)> {
    match socket {
        Some(socket) => socket.recv_from(buffer).await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `due`; without one, forever.
async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// `tandem run`'s SNTP minimum poll from `TANDEM_SNTP_MIN_POLL_S` (1..=16 s: a host test's
/// own chronyd confirms a step in seconds instead of 16), logged; [`client::MIN_POLL`] without
/// it or with a value outside that range (said so).
pub fn foreground_min_poll(log: &Log) -> Duration {
    let Some(text) = std::env::var_os("TANDEM_SNTP_MIN_POLL_S") else {
        return client::MIN_POLL;
    };
    let limit = client::MIN_POLL.as_secs();
    match text.to_str().and_then(|t| t.trim().parse::<u64>().ok()) {
        Some(seconds) if (1..=limit).contains(&seconds) => {
            log.at(
                Severity::Notice,
                format!("time: TANDEM_SNTP_MIN_POLL_S: polls at least {seconds} s apart"),
            );
            Duration::from_secs(seconds)
        }
        _ => {
            log.at(
                Severity::Warning,
                format!(
                    "time: TANDEM_SNTP_MIN_POLL_S={text:?} is not 1..={limit} seconds; \
                     polling at least {limit} s apart"
                ),
            );
            client::MIN_POLL
        }
    }
}

/// `tandem run`'s clock starts `TANDEM_CLOCK_SKEW_S` seconds off (a host test's deliberately
/// wrong clock: negative is behind), logged; without the variable (or with a value that is not
/// a number of seconds under a century) it starts right.
pub fn apply_foreground_skew(log: &Log) {
    let Some(text) = std::env::var_os("TANDEM_CLOCK_SKEW_S") else {
        return;
    };
    let seconds = text.to_str().and_then(|t| t.trim().parse::<f64>().ok());
    match seconds.filter(|s| s.is_finite() && s.abs() < 3.2e9) {
        Some(seconds) => {
            // Bounded above: well within i64 nanoseconds.
            #[allow(clippy::cast_possible_truncation)]
            let nanos = (seconds * 1e9) as i64;
            wallclock::correct_by(nanos);
            log.at(
                Severity::Notice,
                format!(
                    "time: TANDEM_CLOCK_SKEW_S: this daemon's clock starts {seconds:+.3} s off"
                ),
            );
        }
        None => log.at(
            Severity::Warning,
            format!("time: TANDEM_CLOCK_SKEW_S={text:?} is not a number of seconds; ignored"),
        ),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// Records steps instead of making them.
    #[derive(Debug, Default)]
    struct Recorder(Arc<Mutex<Vec<i128>>>);

    impl ClockStep for Recorder {
        fn step(&mut self, nanos: i128) -> Result<(), String> {
            self.0.lock().unwrap().push(nanos);
            Ok(())
        }
        fn what(&self) -> &'static str {
            "clock stepped (recorded)"
        }
    }

    #[tokio::test]
    async fn a_server_without_port_123_is_asked_and_silence_is_reported() {
        // Port 123 on loopback has no server: the request goes, nothing answers.
        let log = Log::default();
        let steps = Arc::new(Mutex::new(Vec::new()));
        let handle = spawn(
            log.clone(),
            vec![IpAddr::from([127, 0, 0, 1])],
            Box::new(Recorder(Arc::clone(&steps))),
            client::MIN_POLL,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let line = handle.status_line();
            if line.contains("no answer from 127.0.0.1") {
                break;
            }
            assert!(Instant::now() < deadline, "{line}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(steps.lock().unwrap().is_empty());
        assert!(log
            .lines()
            .iter()
            .any(|l| l.contains("time: no answer from 127.0.0.1 within 3 s")));
        let text = {
            let mut out = Vec::new();
            handle
                .metrics()
                .render(crate::metrics::Format::Prometheus, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert!(text.contains("tandem_time_synchronised 0\n"), "{text}");
        assert!(
            text.contains("tandem_time_requests_total{result=\"no_answer\"} 1\n"),
            "{text}"
        );
    }
}
