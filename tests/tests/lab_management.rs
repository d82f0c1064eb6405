//! The management plane on the appliance image (issue 16): one box whose RTC starts in 2016,
//! so it boots with its clock years wrong, on the lab's management segment with a host
//! there running chronyd (`local stratum 8`, `-x`: the lab host's clock is never touched), a
//! UDP and a TCP syslog server, and a metrics scraper. One boot:
//!
//! - The box steps its real clock (`clock_settime`) by the years it was wrong and, after the
//!   confirming sample, `status` shows it synchronised to the lab host with an offset of
//!   milliseconds.
//! - Both syslog servers receive the box's log as RFC 5424 (parsed strictly): the boot lines
//!   (the ring's backlog, sent once the management network is up) with the NILVALUE timestamp,
//!   the lines from the step on with timestamps within a second or two of the lab host's
//!   clock, the box's name, APP-NAME `tandem`, each server's facility.
//! - A commit made after the step carries today's date in `history`, and a commit that
//!   changes the UDP server's facility is followed at once.
//! - The metrics endpoint shows the time synchronised, the step and the syslog counters, and
//!   passes promtool.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::mem::ManuallyDrop;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tandem_lab::host::HostProcess;
use tandem_lab::netns::Netns;
use tandem_lab::scrape::{promtool, sample, scrape};
use tandem_lab::syslog_receiver::Receiver;
use tandem_lab::{BoxSpec, Lab, Segment};

const BOOT: Duration = Duration::from_secs(240);
const SETTLE: Duration = Duration::from_secs(120);
const BOX: &str = "192.168.100.11";
const HOST: &str = "192.168.100.1";
const UDP_PORT: u16 = 5514;
const TCP_PORT: u16 = 5601;
const METRICS_PORT: u16 = 9100;
/// 2016-01-01T00:00:00Z: where the box's RTC starts.
const RTC_BASE: &str = "2016-01-01T00:00:00";
const RTC_BASE_UNIX: f64 = 1_451_606_400.0;

fn config() -> String {
    format!(
        "[system]\nhostname = \"box-a\"\n\n\
         [management]\nmetrics = \"{BOX}:{METRICS_PORT}\"\ntime_servers = [\"{HOST}\"]\n\
         syslog = [\n  {{ address = \"{HOST}:{UDP_PORT}\" }},\n  \
         {{ address = \"{HOST}:{TCP_PORT}\", transport = \"tcp\", facility = \"local0\" }},\n]\n\n\
         [[interfaces]]\nname = \"mgmt\"\naddresses = [\"{BOX}/24\"]\n"
    )
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// The number after `word` in `text`.
fn number_after(text: &str, word: &str) -> Option<f64> {
    let mut words = text.split_whitespace();
    words.find(|w| *w == word)?;
    words.next()?.parse().ok()
}

#[test]
fn the_box_takes_the_lab_hosts_time_and_sends_it_its_log() {
    let mut lab = Lab::new().unwrap();
    let host = lab.add_client("mg", Segment::Mgmt).unwrap();
    host.add_address(&format!("{HOST}/24")).unwrap();
    let host_ns = host.netns.clone();
    // The lab owns (and deletes) the namespace: never drop this handle.
    let netns = ManuallyDrop::new(Netns {
        name: host_ns.clone(),
    });
    let chrony_config = lab.dir.join("chrony.conf");
    std::fs::write(
        &chrony_config,
        format!(
            "local stratum 8\nallow\nbindaddress {HOST}\ncmdport 0\npidfile {}\ndriftfile {}\n",
            lab.dir.join("chronyd.pid").display(),
            lab.dir.join("chrony.drift").display()
        ),
    )
    .unwrap();
    let chronyd = HostProcess::start(
        &netns,
        "chronyd",
        Path::new("/usr/sbin/chronyd"),
        &["-x", "-d", "-f", chrony_config.to_str().unwrap()],
        &lab.dir,
    )
    .expect("chronyd not found: install Debian's chrony package (`make deps`)");
    chronyd
        .console
        .wait_for("Disabled control of system clock", SETTLE)
        .unwrap();
    let mut udp = Receiver::udp(&host_ns, format!("{HOST}:{UDP_PORT}").parse().unwrap()).unwrap();
    let tcp = Receiver::tcp(&host_ns, format!("{HOST}:{TCP_PORT}").parse().unwrap()).unwrap();

    lab.boot(
        &[BoxSpec::new("box-a", &[Segment::Mgmt])
            .with_config(&config())
            .with_rtc_base(RTC_BASE)],
        BOOT,
    )
    .unwrap();
    let booted = unix_now();
    let a = lab.box_named("box-a").unwrap();

    // The first sample steps the real clock by the years it was wrong.
    let stepped = a
        .console
        .wait_for_any_time("tandem: time: clock stepped by ", SETTLE)
        .unwrap();
    let step = number_after(&stepped, "by").unwrap_or_else(|| panic!("no step: {stepped}"));
    let expected = booted - RTC_BASE_UNIX;
    assert!(
        (step - expected).abs() < 120.0,
        "stepped {step} s; the RTC was about {expected} s behind: {stepped}"
    );
    assert!(
        stepped.contains(&format!("synchronised to {HOST} (stratum 8")),
        "{stepped}"
    );
    // The confirming sample, 16 s later: milliseconds off.
    let deadline = Instant::now() + SETTLE;
    let time = loop {
        let status = a.status(Duration::from_secs(20)).unwrap();
        let time = status
            .iter()
            .find(|fact| fact.starts_with("time "))
            .cloned()
            .unwrap_or_default();
        if number_after(&time, "offset").is_some_and(|offset| offset.abs() < 1.0) {
            break time;
        }
        assert!(Instant::now() < deadline, "never confirmed: {time}");
        std::thread::sleep(Duration::from_secs(2));
    };
    let offset = number_after(&time, "offset").unwrap();
    eprintln!("box-a: stepped {step:+.3} s, then {time}");
    assert!(
        time.starts_with(&format!("time synchronised to {HOST} stratum 8 ")),
        "{time}"
    );
    assert!(offset.abs() < 0.1, "{time}");
    assert!(time.contains("clock stepped +"), "{time}");

    // The syslog servers got the boot log without timestamps and the rest with the time.
    for (receiver, facility) in [(&udp, 3u8), (&tcp, 16u8)] {
        receiver.wait_for("ready ", SETTLE).unwrap();
        let step_line = receiver.wait_for("time: clock stepped by", SETTLE).unwrap();
        let messages = receiver.messages().unwrap();
        for message in &messages {
            assert_eq!(message.hostname, "box-a", "{message:?}");
            assert_eq!(message.app_name, "tandem", "{message:?}");
            assert_eq!(message.facility, facility, "{message:?}");
        }
        let at = messages.iter().position(|m| *m == step_line).unwrap();
        assert!(
            messages[..at].iter().all(|m| m.timestamp.is_none()),
            "a line before the step carried the wrong clock"
        );
        assert!(messages[at..].iter().all(|m| m.timestamp.is_some()));
        assert_eq!(step_line.severity, 5, "a step is a notice");
    }
    assert!(tcp.errors().is_empty(), "{:?}", tcp.errors());

    // A commit now: its history record carries today's date; the UDP server's new facility
    // (local5) is used at once.
    let before = udp.count();
    a.console
        .send_line(&format!(
            "set management.syslog [{{ address = \"{HOST}:{UDP_PORT}\", facility = \"local5\" }}, \
             {{ address = \"{HOST}:{TCP_PORT}\", transport = \"tcp\", facility = \"local0\" }}]"
        ))
        .unwrap();
    a.console.wait_for("set: ", SETTLE).unwrap();
    a.console
        .send_line("commit --comment \"after sntp\"")
        .unwrap();
    a.console.wait_for("generation 2 applied", SETTLE).unwrap();
    let changed = udp
        .wait_for(
            &format!("syslog: udp://{HOST}:{UDP_PORT}: facility local5 from now on"),
            SETTLE,
        )
        .unwrap();
    let received = unix_now();
    assert_eq!(changed.facility, 21, "local5 after the commit: {changed:?}");
    let stamp = changed.timestamp.unwrap().as_secs_f64();
    assert!(
        (received - stamp) > -1.0 && (received - stamp) < 5.0,
        "syslog timestamp {stamp}, the lab host's clock {received}"
    );
    assert!(udp.count() > before);
    let history = a.wait_reply("history", "after sntp", SETTLE).unwrap();
    let words: Vec<&str> = history.split_whitespace().collect();
    let date = words
        .iter()
        .position(|w| w.len() == 10 && w.as_bytes()[4] == b'-' && w.as_bytes()[7] == b'-')
        .unwrap_or_else(|| panic!("no date in {history}"));
    let committed = tandem_lab::syslog_receiver::parse(
        format!("<30>1 {}T{}Z h a - - -", words[date], words[date + 1]).as_bytes(),
    )
    .unwrap_or_else(|e| panic!("no date and time in {history}: {e}"))
    .timestamp
    .unwrap()
    .as_secs_f64();
    assert!(
        (received - committed).abs() < 60.0,
        "history says {history}; the lab host's clock {received}"
    );

    // The metrics.
    let body = scrape(&host_ns, format!("{BOX}:{METRICS_PORT}").parse().unwrap()).unwrap();
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
    assert!(
        sample(
            &body,
            &format!("tandem_syslog_lines_sent_total{{target=\"tcp://{HOST}:{TCP_PORT}\"}}")
        )
        .unwrap_or(0.0)
            >= 10.0,
        "{body}"
    );
    let (clean, said) = promtool(&body).unwrap();
    assert!(
        clean,
        "promtool check metrics refused the scrape: {said}\n{body}"
    );
    udp.close();
}
