//! SNTP on the host tier against Debian's chrony: chronyd (`local stratum 8`, `allow`, `-x`:
//! it never touches the host's clock) in a server namespace, a `tandem run` box across a veth
//! pair with `management.time_servers` naming it. The box's clock starts an hour behind
//! (`TANDEM_CLOCK_SKEW_S=-3600`): `tandem run` never steps the host's clock, its SNTP driver
//! corrects the daemon's own clock instead, so the step it makes and the offset it reports are
//! the appliance's.
//!
//! - The box synchronises: `status` shows chrony's address and stratum, the step of about
//!   +3600 s, and after the confirming sample an offset of a few milliseconds; the metrics
//!   agree (synchronised 1, one step) and pass promtool. Log lines after the step carry the
//!   wall-clock time, and so do the RFC 5424 timestamps a syslog server receives, both
//!   within a second of the host's clock; lines before it carried none.
//! - A second chronyd without a time source answers with leap indicator 3: the box refuses it
//!   and says why. A server that does not answer: `no answer from ...`. No servers: `no time
//!   servers configured`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tandem_lab::host::{tandem_query, wait_tandem_query, HostProcess, ScratchDir, TandemRun};
use tandem_lab::netns::{veth_pair, Netns};
use tandem_lab::scrape::{promtool, sample, scrape};
use tandem_lab::syslog_receiver::Receiver;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const LIMIT: Duration = Duration::from_secs(20);
const BOX: &str = "198.51.100.2";
/// chronyd with `local stratum 8`.
const CHRONY: &str = "198.51.100.1";
/// chronyd without a source: not synchronised.
const UNSYNCHRONISED: &str = "198.51.100.3";
/// Nobody.
const SILENT: &str = "198.51.100.9";
const SYSLOG_PORT: u16 = 5514;
const METRICS_PORT: u16 = 9100;

/// chronyd on `address` in `netns`, serving its own clock (`local`) or nothing.
fn chronyd(netns: &Netns, dir: &Path, name: &str, address: &str, local: bool) -> HostProcess {
    let config = dir.join(format!("{name}.conf"));
    std::fs::write(
        &config,
        format!(
            "{}allow\nbindaddress {address}\ncmdport 0\npidfile {}\ndriftfile {}\n",
            if local { "local stratum 8\n" } else { "" },
            dir.join(format!("{name}.pid")).display(),
            dir.join(format!("{name}.drift")).display(),
        ),
    )
    .unwrap();
    let chronyd = HostProcess::start(
        netns,
        name,
        Path::new("/usr/sbin/chronyd"),
        &["-x", "-d", "-f", config.to_str().unwrap()],
        dir,
    )
    .expect("chronyd not found: install Debian's chrony package (`make deps`)");
    chronyd
        .console
        .wait_for("Disabled control of system clock", LIMIT)
        .unwrap();
    chronyd
}

fn unix_now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

/// The signed difference `a - b` in seconds.
fn seconds_between(a: Duration, b: Duration) -> f64 {
    a.as_secs_f64() - b.as_secs_f64()
}

/// The number after `word` in `text` (`offset +0.001234`).
fn number_after(text: &str, word: &str) -> Option<f64> {
    let mut words = text.split_whitespace();
    words.find(|w| *w == word)?;
    words.next()?.parse().ok()
}

/// The `status: time ...` fact.
fn time_fact(status: &str) -> &str {
    status
        .lines()
        .find(|line| line.starts_with("status: time "))
        .unwrap_or_else(|| panic!("no time fact in:\n{status}"))
}

/// `2026-12-03T11:01:02.123Z` (the log's stamp) as time since the epoch.
fn log_stamp(line: &str) -> Option<Duration> {
    let stamp = line.split("] ").nth(1)?.split(' ').next()?;
    let message =
        tandem_lab::syslog_receiver::parse(format!("<30>1 {stamp} h a - - -").as_bytes()).ok()?;
    message.timestamp
}

#[test]
fn the_box_takes_chronys_time_and_says_why_when_it_cannot() {
    let dir = ScratchDir::new("sntp").unwrap();
    let node = Netns::new("sntp-b").unwrap();
    let server = Netns::new("sntp-s").unwrap();
    veth_pair(&node, "eth0", &server, "eth0").unwrap();
    node.ip(&["addr", "add", &format!("{BOX}/24"), "dev", "eth0"])
        .unwrap();
    for address in [CHRONY, UNSYNCHRONISED] {
        server
            .ip(&["addr", "add", &format!("{address}/24"), "dev", "eth0"])
            .unwrap();
    }
    let _chrony = chronyd(&server, &dir.path, "chrony-local", CHRONY, true);
    let _unsynchronised = chronyd(&server, &dir.path, "chrony-none", UNSYNCHRONISED, false);
    let syslog = Receiver::udp(
        &server.name,
        format!("{CHRONY}:{SYSLOG_PORT}").parse().unwrap(),
    )
    .unwrap();

    let control: PathBuf = dir.path.join("box.sock");
    let config = format!(
        "[system]\nhostname = \"box-a\"\n\n\
         [management]\nmetrics = \"{BOX}:{METRICS_PORT}\"\ntime_servers = [\"{CHRONY}\"]\n\
         syslog = [{{ address = \"{CHRONY}:{SYSLOG_PORT}\" }}]\n\n\
         [[interfaces]]\nname = \"eth0\"\naddresses = [\"{BOX}/24\"]\n"
    );
    let _box = TandemRun {
        tandem: TANDEM.as_ref(),
        dir: &dir.path,
        name: "box",
        control: Some(&control),
    }
    .start_with_env(
        &node,
        &config,
        // Polls 2 s apart instead of RFC 4330's 16 (our own chronyd): the confirming sample
        // comes 2 s after the step.
        &[
            "TANDEM_CLOCK_SKEW_S=-3600",
            "TANDEM_DEBUG_COMMANDS=1",
            "TANDEM_SNTP_MIN_POLL_S=2",
        ],
        "time: TANDEM_CLOCK_SKEW_S",
        LIMIT,
    )
    .unwrap();
    let ask = |words: &[&str]| tandem_query(TANDEM.as_ref(), &control, words);
    let wait_time = |what: &str, limit: Duration, check: &dyn Fn(&str) -> bool| -> String {
        wait_tandem_query(TANDEM.as_ref(), &control, &["status"], limit, |status| {
            status.contains("status: time ") && check(time_fact(status))
        })
        .unwrap_or_else(|last| panic!("status never showed {what}; last answer:\n{last}"))
    };

    // The first sample steps the box's clock by about an hour.
    let status = wait_time("synchronised", LIMIT, &|fact| {
        fact.contains(&format!("time synchronised to {CHRONY} stratum 8 "))
    });
    let fact = time_fact(&status);
    let step = number_after(fact, "stepped").unwrap_or_else(|| panic!("no step in {fact}"));
    assert!((step - 3600.0).abs() < 1.0, "stepped {step} s: {fact}");
    // The confirming sample, a minimum poll (2 s here) later, measures what is left:
    // milliseconds.
    let status = wait_time("the confirming sample", Duration::from_secs(40), &|fact| {
        number_after(fact, "offset").is_some_and(|offset| offset.abs() < 1.0)
    });
    let fact = time_fact(&status);
    let offset = number_after(fact, "offset").unwrap();
    let delay = number_after(fact, "delay").unwrap();
    eprintln!(
        "sntp against chrony: stepped {step:+.6} s, then offset {offset:+.6} s, delay {delay:.6} s"
    );
    assert!(offset.abs() < 0.05, "{fact}");
    assert!((0.0..0.5).contains(&delay), "{fact}");

    // Log lines after the step carry the wall clock, those before it none; so do the
    // timestamps the syslog server receives.
    let before = unix_now();
    let answer = ask(&["debug", "log", "1"]);
    let after = unix_now();
    assert!(answer.starts_with("debug: logged 1 lines"), "{answer}");
    let near_now = |stamp: Duration| {
        seconds_between(stamp, before) > -0.5 && seconds_between(stamp, after) < 0.5
    };
    let log = ask(&["log"]);
    let lines: Vec<&str> = log.lines().collect();
    let stepped_at = lines
        .iter()
        .position(|line| line.contains("time: clock stepped"))
        .unwrap_or_else(|| panic!("no step in the log:\n{log}"));
    assert!(
        lines[..stepped_at]
            .iter()
            .all(|line| log_stamp(line).is_none()),
        "{log}"
    );
    assert!(
        log_stamp(lines[stepped_at]).is_some(),
        "{}",
        lines[stepped_at]
    );
    let last = lines.last().unwrap();
    assert!(last.ends_with("tandem: debug: line 1 of 1"), "{last}");
    let stamp = log_stamp(last).unwrap_or_else(|| panic!("no wall-clock stamp: {last}"));
    assert!(
        near_now(stamp),
        "the log says {stamp:?}, the host {before:?}: {last}"
    );
    let debug = syslog.wait_for("debug: line 1 of 1", LIMIT).unwrap();
    let timestamp = debug.timestamp.expect("a timestamp after the step");
    assert!(
        near_now(timestamp),
        "syslog says {timestamp:?}, the host {before:?}"
    );
    let received = syslog.messages().unwrap();
    let stepped = received
        .iter()
        .position(|m| {
            m.msg
                .as_deref()
                .unwrap_or("")
                .contains("time: clock stepped")
        })
        .expect("the step's line reached the syslog server");
    assert!(received[stepped].timestamp.is_some());
    assert!(
        received[..stepped].iter().all(|m| m.timestamp.is_none()),
        "a line before the step had a timestamp"
    );

    // The metrics agree, and pass promtool.
    let body = scrape(
        &server.name,
        format!("{BOX}:{METRICS_PORT}").parse().unwrap(),
    )
    .unwrap();
    assert_eq!(
        sample(&body, "tandem_time_synchronised"),
        Some(1.0),
        "{body}"
    );
    assert_eq!(
        sample(&body, "tandem_time_steps_total"),
        Some(1.0),
        "{body}"
    );
    let metric_offset = sample(&body, "tandem_time_offset_seconds").unwrap();
    assert!(metric_offset.abs() < 0.05, "{body}");
    assert_eq!(
        sample(
            &body,
            &format!("tandem_time_server_stratum{{server=\"{CHRONY}\"}}")
        ),
        Some(8.0)
    );
    let (clean, said) = promtool(&body).unwrap();
    assert!(
        clean,
        "promtool check metrics refused the scrape: {said}\n{body}"
    );

    // A server that is not synchronised itself is refused, with the reason.
    let answer = ask(&[
        "set",
        "management.time_servers",
        &format!("[\"{UNSYNCHRONISED}\"]"),
    ]);
    assert!(answer.starts_with("set: "), "{answer}");
    let answer = ask(&["commit"]);
    assert!(answer.contains("applied"), "{answer}");
    wait_time("the unsynchronised server refused", LIMIT, &|fact| {
        fact.starts_with(&format!(
            "status: time not synchronised ({UNSYNCHRONISED}: the server is not synchronised \
             itself (leap indicator 3: alarm"
        ))
    });

    // A server that does not answer.
    let answer = ask(&["set", "management.time_servers", &format!("[\"{SILENT}\"]")]);
    assert!(answer.starts_with("set: "), "{answer}");
    assert!(ask(&["commit"]).contains("applied"));
    wait_time("no answer", LIMIT, &|fact| {
        fact.starts_with(&format!(
            "status: time not synchronised (no answer from {SILENT} for "
        ))
    });

    // None at all.
    assert!(ask(&["delete", "management.time_servers"]).starts_with("delete: "));
    assert!(ask(&["commit"]).contains("applied"));
    wait_time("no servers", LIMIT, &|fact| {
        fact == "status: time not synchronised (no time servers configured)"
    });
    let log = ask(&["log"]);
    let last = log.lines().last().unwrap();
    assert!(
        log_stamp(last).is_none(),
        "unsynchronised, yet stamped: {last}"
    );
}
