//! `make bench` part: the bonding figures of issue 13, on one lab box (image as `make image`
//! builds it; TCG on the lab host, so they are upper bounds for real hardware) whose two public
//! NICs, `public` and `public2`, are an active-backup bond `bond0` holding the box's address.
//!
//! - `bond_create_to_carrier_ms`, `bond_create_to_operational_ms`: from the bond's create
//!   request at boot to the kernel's carrier bit on it, and to its operstate up (linkwatch has
//!   attached its transmit queue: it sends from then on), as the daemon logs them (`config:
//!   bonds: bond0 carrier up X ms, operational Y ms after its create request`, from 1 ms sysfs
//!   polls; ports enslaved, primary set and bond up are inside the figures).
//! - `bond_unchanged_reconcile_ops`: a commit that changes only the host name, and the number
//!   of bond operations it caused (`config: bonds: unchanged (0 operations)`).
//! - `bond_ab_gap_miimon{100,10}_ms_p50/_p99`, `bond_ab_lost_pings_miimon{100,10}_p50/_p99`: a
//!   client on the public LAN pings the bond's address every millisecond; per trial the
//!   ACTIVE port's cable is pulled (QMP), and once `bond status` shows the other port active
//!   and pings answer again, the longest time without a reply since the pull and the pings
//!   lost in the trial are recorded; the cable back, the next trial waits for 2 of 2 ports up.
//!   Between the two series a live commit sets `miimon` to 10. Percentiles are nearest-rank
//!   over the trials (with 10 trials p99 is the largest).
//!
//! Nothing here asserts a figure; a failed step ends the run with an error.

use std::net::Ipv4Addr;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use tandem_lab::pinger::{now_unix, Pinger};
use tandem_lab::{BoxSpec, Lab, QemuBox, Segment};

const BOOT: Duration = Duration::from_secs(240);
/// A console answer or a kernel reaction under TCG on a loaded 2-core machine.
const STEP: Duration = Duration::from_secs(90);
const TRIALS: usize = 10;
/// The bond's own address, pinged by the client.
const BOND_ADDRESS: &str = "192.0.2.1";
const CLIENT_ADDRESS: &str = "192.0.2.100/24";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bondbench: {message}");
            ExitCode::from(1)
        }
    }
}

fn bonded_box() -> BoxSpec {
    let config = format!(
        r#"
[system]
hostname = "bondbench"

[[interfaces]]
name = "public"

[[interfaces]]
name = "public2"

[[interfaces]]
name = "bond0"
addresses = ["{BOND_ADDRESS}/24"]

[[bonds]]
name = "bond0"
slaves = ["public", "public2"]
"#
    );
    BoxSpec::new("bench", &[Segment::Public, Segment::Public2]).with_config(&config)
}

fn run() -> Result<(), String> {
    let mut lab = Lab::new()?;
    lab.boot(&[bonded_box()], BOOT)?;
    let netns = lab.add_client("cl", Segment::Public)?.netns.clone();
    lab.clients
        .first()
        .ok_or("no client")?
        .add_address(CLIENT_ADDRESS)?;
    let b = lab.boxes.first().ok_or("no box")?;

    // Create -> carrier (and operational), at boot.
    let created = b
        .console
        .wait_for_any_time("config: bonds: bond0 created (", STEP)?;
    let timed = b
        .console
        .wait_for_any_time("config: bonds: bond0 carrier up ", STEP)?;
    eprintln!("{created}\n{timed}");
    let ms_after = |word: &str| {
        timed
            .split(word)
            .nth(1)
            .and_then(|rest| rest.split(" ms").next())
            .and_then(|number| number.parse::<f64>().ok())
            .ok_or_else(|| format!("unreadable creation line {timed:?}"))
    };
    println!(
        "bench: bond_create_to_carrier_ms {:.1} ms",
        ms_after("carrier up ")?
    );
    println!(
        "bench: bond_create_to_operational_ms {:.1} ms",
        ms_after("operational ")?
    );
    bond_status(b, "active public, 2 of 2 ports up")?;

    // An unrelated commit: how many bond operations it costs.
    let operations = commit(b, "system.hostname", "bondbench-renamed")?;
    println!("bench: bond_unchanged_reconcile_ops {operations} count");

    let target: Ipv4Addr = BOND_ADDRESS.parse().map_err(|e| format!("{e}"))?;
    for miimon in [100, 10] {
        if miimon != 100 {
            let operations = commit(
                b,
                "bonds.bond0.monitor.mii.interval_ms",
                &miimon.to_string(),
            )?;
            eprintln!("miimon {miimon}: {operations} bond operations");
            bond_status(b, &format!("miimon {miimon} ms, carrier yes"))?;
        }
        let mut gaps = Vec::new();
        let mut lost = Vec::new();
        for trial in 1..=TRIALS {
            let (gap, lost_pings, port) = trial_pull_active(b, &netns, target)?;
            eprintln!(
                "miimon {miimon} trial {trial}: pulled {port}, gap {gap:.1} ms, {lost_pings} pings lost"
            );
            gaps.push(gap);
            lost.push(lost_pings as f64);
        }
        println!(
            "bench: bond_ab_gap_miimon{miimon}_ms_p50 {:.1} ms",
            percentile(&mut gaps, 50)
        );
        println!(
            "bench: bond_ab_gap_miimon{miimon}_ms_p99 {:.1} ms",
            percentile(&mut gaps, 99)
        );
        println!(
            "bench: bond_ab_lost_pings_miimon{miimon}_p50 {:.0} count",
            percentile(&mut lost, 50)
        );
        println!(
            "bench: bond_ab_lost_pings_miimon{miimon}_p99 {:.0} count",
            percentile(&mut lost, 99)
        );
    }
    Ok(())
}

/// One trial: pings running, the active port's cable out until the pings resume over the
/// other port, then back in until both ports are up. Returns the longest gap between replies
/// since the pull (ms), the pings lost, and the port pulled.
fn trial_pull_active(
    b: &QemuBox,
    netns: &str,
    target: Ipv4Addr,
) -> Result<(f64, u64, &'static str), String> {
    let status = bond_status(b, "2 of 2 ports up")?;
    let active = status
        .split("active ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .ok_or_else(|| format!("no active port in {status:?}"))?;
    let (segment, other) = match active {
        "public" => (Segment::Public, "public2"),
        "public2" => (Segment::Public2, "public"),
        _ => return Err(format!("unexpected active port in {status:?}")),
    };
    let pinger = Pinger::start_in(netns, target)?;
    if !pinger.wait_reply_after(now_unix(), STEP) {
        return Err(format!("{BOND_ADDRESS} does not answer before the pull"));
    }
    // A steady stream before the cut.
    std::thread::sleep(Duration::from_millis(300));
    let cut = now_unix();
    b.set_cable(segment, false)?;
    bond_status(b, &format!("active {other}, 1 of 2 ports up"))?;
    if !pinger.wait_reply_after(now_unix(), STEP) {
        return Err(format!("the pings did not resume over {other}"));
    }
    let gap = pinger.longest_gap_since(cut).as_secs_f64() * 1e3;
    let report = pinger.stop()?;
    b.set_cable(segment, true)?;
    bond_status(b, "2 of 2 ports up")?;
    // Let a failback to the primary settle before the next pull.
    std::thread::sleep(Duration::from_secs(1));
    Ok((gap, report.lost, segment.name()))
}

/// Waits until `bond status` shows a line with `pattern`; returns it.
fn bond_status(b: &QemuBox, pattern: &str) -> Result<String, String> {
    b.wait_reply("bond status", pattern, STEP)
}

/// Sets `path` to `value` and commits (sent once: a second `commit` would be another
/// transaction); returns the bond operations the apply logged.
fn commit(b: &QemuBox, path: &str, value: &str) -> Result<usize, String> {
    b.wait_reply(
        &format!("set {path} {value}"),
        &format!("set: {path} (candidate"),
        STEP,
    )?;
    let mark = b.console.mark();
    b.console.send_line("commit")?;
    // The reply, not the log's `tandem: config: commit: ...` lines.
    let reply = line_since(b, mark, |line| {
        line.contains("commit: ") && !line.contains("tandem: ")
    })?;
    if !reply.contains(" persisted") {
        return Err(format!("commit of {path}: {reply}"));
    }
    let line = line_since(b, mark, |line| {
        line.contains("tandem: config: bonds: ") && line.contains(" operation")
    })?;
    let words = line.split("config: bonds: ").nth(1).unwrap_or_default();
    let number = if words.starts_with("unchanged") {
        "0"
    } else {
        words.split_whitespace().next().unwrap_or_default()
    };
    number
        .parse()
        .map_err(|_| format!("no operation count in {line:?}"))
}

/// The first complete console line after `mark` for which `wanted` holds (trimmed).
fn line_since(b: &QemuBox, mark: usize, wanted: impl Fn(&str) -> bool) -> Result<String, String> {
    let deadline = Instant::now() + STEP;
    loop {
        let (bytes, _, closed) = b.console.bytes_since(mark);
        let text = String::from_utf8_lossy(&bytes);
        // Only complete lines: the last piece may still be arriving.
        let complete = text.rsplit_once('\n').map_or("", |(lines, _)| lines);
        if let Some(line) = complete.lines().map(str::trim).find(|line| wanted(line)) {
            return Ok(line.to_owned());
        }
        if closed || Instant::now() >= deadline {
            return Err(format!(
                "{}: no such line within {STEP:?}; console since:\n{text}",
                b.name
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Nearest-rank percentile `p` of `values` (sorted in place); NaN when empty.
fn percentile(values: &mut [f64], p: usize) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = (p * values.len()).div_ceil(100).max(1);
    values.get(rank - 1).copied().unwrap_or(f64::NAN)
}
