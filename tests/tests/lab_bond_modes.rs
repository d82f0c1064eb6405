//! The bonding modes besides active-backup on the appliance image (issue 13, "Tests that must
//! exist"); the kernel's bonding driver is in the image, not on this host, so every step runs
//! in qemu boxes with two public NICs (`public`, `public2`) bonded as `bond0`.
//!
//! - 802.3ad between two boxes: box-a's public and public2 NICs are cabled straight to
//!   box-b's (`BoxSpec::with_direct_link`: a Linux bridge never forwards LACPDUs), both bonds
//!   run LACP at the fast rate. Both form one aggregator of both ports with the other box as
//!   partner (every port collecting and distributing); box-a pings box-b from its console
//!   while its public cable is pulled: box-a's aggregator keeps public2 at once, box-b's drops
//!   its public port when LACP times out (its NIC keeps carrier), and the pings are answered;
//!   the cable back, both ports aggregate again.
//! - balance-xor, balance-rr and broadcast: one box each on the public LAN (both ports on the
//!   lab's public bridge), a client pings each bond's address (broadcast answers twice).
//! - balance-tlb and balance-alb: the bond comes up with both ports and answers the client.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use tandem_lab::pinger::{now_unix, Pinger};
use tandem_lab::{BoxSpec, Lab, QemuBox, Segment};

/// Boot of up to three boxes under TCG on two shared cores.
const BOOT: Duration = Duration::from_secs(240);
/// A console answer or a kernel reaction under TCG on a loaded 2-core machine.
const STEP: Duration = Duration::from_secs(90);
/// How long each client pinger samples a bond once it answers.
const SAMPLE: Duration = Duration::from_secs(2);

/// A box whose `public` and `public2` NICs form `bond0` (`mode`, plus `bond_extra` lines)
/// holding `address`/24.
fn bonded_box(name: &str, mode: &str, address: &str, bond_extra: &str) -> BoxSpec {
    let config = format!(
        r#"
[system]
hostname = "{name}"

[[interfaces]]
name = "public"

[[interfaces]]
name = "public2"

[[interfaces]]
name = "bond0"
addresses = ["{address}/24"]

[[bonds]]
name = "bond0"
mode = "{mode}"
slaves = ["public", "public2"]
{bond_extra}
"#
    );
    BoxSpec::new(name, &[Segment::Public, Segment::Public2]).with_config(&config)
}

/// The last lines of `b`'s console, for a failure message.
fn tail(b: &QemuBox) -> String {
    let transcript = b.console.transcript();
    let lines: Vec<&str> = transcript.lines().collect();
    let from = lines.len().saturating_sub(80);
    format!(
        "--- {} console, last {} lines ---\n{}",
        b.name,
        lines.len() - from,
        lines[from..].join("\n")
    )
}

/// One `bond status` of `bond0` on `b`: the bond's line, the 802.3ad aggregator's line in that
/// mode, then a line per port (log lines in between are left out).
fn bond_lines(b: &QemuBox, timeout: Duration) -> Result<Vec<String>, String> {
    b.console.skip_to_end();
    b.console.send_line("bond status")?;
    let mut lines: Vec<String> = Vec::new();
    let mut expected = usize::MAX;
    while lines.len() < expected {
        let line = b.console.wait_for("bond bond0: ", timeout)?;
        if line.contains("tandem: ") {
            continue;
        }
        let line = line.trim().to_owned();
        if lines.is_empty() {
            // "bond bond0: up mode M, ..., U of N ports up (min_links K)"
            let ports: usize = line
                .split(" of ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("{}: unreadable bond line {line:?}", b.name))?;
            expected = 1 + usize::from(line.contains("mode 802.3ad")) + ports;
        }
        lines.push(line);
    }
    Ok(lines)
}

/// Asks `bond status` on `b` once a second until `done` holds for its lines; returns them.
/// Panics after [`STEP`] naming `what`, with the last answer and the console's tail.
fn wait_bond(b: &QemuBox, what: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let deadline = Instant::now() + STEP;
    loop {
        let last = match bond_lines(b, Duration::from_secs(20)) {
            Ok(lines) if done(&lines) => return lines,
            Ok(lines) => lines,
            Err(error) => vec![error],
        };
        if Instant::now() >= deadline {
            panic!(
                "{}: bond status never showed {what} within {STEP:?}; last answer:\n{}\n{}",
                b.name,
                last.join("\n"),
                tail(b)
            );
        }
        std::thread::sleep(Duration::from_secs(1));
    }
}

/// The 802.3ad aggregator line's (aggregator id, ports, partner MAC).
fn aggregator(lines: &[String]) -> Option<(String, usize, String)> {
    // "bond bond0: 802.3ad aggregator 1, 2 ports, actor key 9, partner key 9, partner MAC"
    let line = lines.iter().find(|l| l.contains(": 802.3ad aggregator "))?;
    let rest = line.split(": 802.3ad aggregator ").nth(1)?;
    let mut fields = rest.split(", ");
    let id = fields.next()?.to_owned();
    let ports = fields.next()?.strip_suffix(" ports")?.parse().ok()?;
    let partner = fields.last()?.strip_prefix("partner ")?.to_owned();
    Some((id, ports, partner))
}

/// The line of `port`.
fn port_line<'a>(lines: &'a [String], port: &str) -> Option<&'a String> {
    let prefix = format!("bond bond0: port {port} ");
    lines.iter().find(|l| l.starts_with(&prefix))
}

/// Whether `port` is in aggregator `id` with both ends of its link in sync, collecting and
/// distributing.
fn aggregating(lines: &[String], port: &str, id: &str) -> bool {
    port_line(lines, port).is_some_and(|line| {
        line.contains(&format!(", aggregator {id}, actor "))
            && line.matches("in-sync,collecting,distributing").count() == 2
    })
}

/// Whether the bond runs one aggregator of exactly `ports` (all of them aggregating, on both
/// ends) with a partner whose MAC starts with `partner_prefix`.
fn aggregated(lines: &[String], ports: &[&str], partner_prefix: &str) -> bool {
    let Some((id, count, partner)) = aggregator(lines) else {
        return false;
    };
    count == ports.len()
        && partner.starts_with(partner_prefix)
        && ports.iter().all(|port| aggregating(lines, port, &id))
}

/// `ping ADDRESS COUNT` on `b`'s console: (sent, received, the summary line).
fn console_ping(b: &QemuBox, address: &str, count: u8) -> (u32, u32, String) {
    b.console.skip_to_end();
    b.console
        .send_line(&format!("ping {address} {count}"))
        .unwrap();
    let timeout = STEP + Duration::from_secs(3 * u64::from(count));
    let line = b
        .console
        .wait_for(&format!("ping {address}: "), timeout)
        .unwrap_or_else(|e| panic!("{e}\n{}", tail(b)));
    let line = line.trim().to_owned();
    let counts = summary_counts(&line);
    let (sent, received) =
        counts.unwrap_or_else(|| panic!("unreadable ping summary {line:?}\n{}", tail(b)));
    (sent, received, line)
}

/// "ping 192.0.2.2: 10 sent, 9 received, 10% loss, rtt min/avg/max ..." -> (10, 9).
fn summary_counts(line: &str) -> Option<(u32, u32)> {
    let counts = line.split(": ").nth(1)?;
    let number = |word: &str| {
        counts
            .split(", ")
            .find_map(|part| part.strip_suffix(word)?.parse().ok())
    };
    Some((number(" sent")?, number(" received")?))
}

#[test]
fn an_802_3ad_aggregator_between_two_boxes_keeps_traffic_when_a_link_is_pulled() {
    let mut lab = Lab::new().unwrap();
    let lacp = "lacp_rate = \"fast\"";
    // Each box's public and public2 cabled straight to the other's: no bridge in between.
    let direct = |spec: BoxSpec, peer: &str| {
        spec.with_direct_link(Segment::Public, peer)
            .with_direct_link(Segment::Public2, peer)
    };
    let started = Instant::now();
    lab.boot(
        &[
            direct(bonded_box("box-a", "802.3ad", "192.0.2.1", lacp), "box-b"),
            direct(bonded_box("box-b", "802.3ad", "192.0.2.2", lacp), "box-a"),
        ],
        BOOT,
    )
    .unwrap();
    println!(
        "two boxes ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let both = ["public", "public2"];
    // The lab's MACs are 52:54:00:1a:<box number>:<segment>: each box's partner is the other.
    let (a_mac, b_mac) = ("52:54:00:1a:01:", "52:54:00:1a:02:");
    let a = &lab.boxes[0];
    let b = &lab.boxes[1];
    for (x, partner) in [(a, b_mac), (b, a_mac)] {
        x.console
            .wait_for_any_time(
                "config: bonds: bond0 created (802.3ad, miimon 100 ms)",
                STEP,
            )
            .unwrap_or_else(|e| panic!("{e}\n{}", tail(x)));
        let lines = wait_bond(x, "one aggregator of both ports with the other box", |l| {
            aggregated(l, &both, partner)
        });
        println!("{}:\n{}", x.name, lines.join("\n"));
    }
    let (_, received, line) = console_ping(a, "192.0.2.2", 3);
    assert!(
        received > 0,
        "box-b's bond does not answer: {line}\n{}",
        tail(a)
    );
    println!("box-a, both links: {line}");

    // box-a's public cable out while box-a pings box-b: box-a loses the port's carrier at once;
    // box-b's NIC keeps carrier and drops its port from the aggregator when LACP times out.
    let cut = a.console.mark();
    a.console.send_line("ping 192.0.2.2 10").unwrap();
    a.set_cable(Segment::Public, false).unwrap();
    let across = a
        .console
        .wait_for_since(cut, "ping 192.0.2.2: ", STEP + Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\n{}", tail(a)));
    println!("box-a, public pulled during the pings: {}", across.trim());
    let lines = wait_bond(a, "public2 alone in the aggregator, public down", |l| {
        aggregated(l, &["public2"], b_mac)
            && port_line(l, "public").is_some_and(|p| p.contains(", mii down,"))
            && l[0].contains("carrier yes")
            && l[0].contains("1 of 2 ports up")
    });
    println!("box-a:\n{}", lines.join("\n"));
    let lines = wait_bond(
        b,
        "public2 alone in the aggregator (public timed out)",
        |l| aggregated(l, &["public2"], a_mac) && l[0].contains("carrier yes"),
    );
    println!("box-b:\n{}", lines.join("\n"));
    let (sent, received, line) = console_ping(a, "192.0.2.2", 5);
    println!("box-a, one link: {line}");
    assert_eq!(
        received,
        sent,
        "pings over the remaining link are lost: {line}\n{}",
        tail(a)
    );
    // The cut comes before the first request (QMP acts at once, the console line crawls in
    // under TCG): box-b's replies hashed to the dead link are lost until its LACP times out
    // (3 s at the fast rate), the rest are answered.
    let (_, received_across) = summary_counts(across.trim()).unwrap_or((0, 0));
    assert!(
        received_across >= 5,
        "more than half the pings lost while the link was pulled: {}\n{}",
        across.trim(),
        tail(a)
    );

    // The cable back: both ports aggregate again on both boxes.
    a.set_cable(Segment::Public, true).unwrap();
    wait_bond(a, "both ports back in one aggregator", |l| {
        aggregated(l, &both, b_mac)
    });
    wait_bond(b, "both ports back in one aggregator", |l| {
        aggregated(l, &both, a_mac)
    });
    let (_, received, line) = console_ping(a, "192.0.2.2", 3);
    assert!(received > 0, "{line}\n{}", tail(a));
    println!("802.3ad: {:.1} s in all", started.elapsed().as_secs_f64());
}

/// What a client's pinger saw of one bond.
struct Sample {
    line: String,
    answered: u64,
    /// Replies, duplicates included (broadcast answers on both ports).
    replies: u64,
}

/// Pings `address` from `client` every millisecond until it answers, samples [`SAMPLE`] more,
/// and checks that at least 90% of the probes were answered (TCG delays replies, it does not
/// drop them: a bond sending on a dead or wrong port loses half or all).
fn ping_from_client(client: &str, b: &QemuBox, address: &str) -> Sample {
    let pinger = Pinger::start_in(client, address.parse::<Ipv4Addr>().unwrap()).unwrap();
    let from = now_unix();
    assert!(
        pinger.wait_reply_after(from, STEP),
        "{} ({address}) does not answer the client\n{}",
        b.name,
        tail(b)
    );
    let answering = now_unix();
    std::thread::sleep(SAMPLE);
    let replies = u64::try_from(pinger.replies().len()).unwrap_or(u64::MAX);
    let report = pinger.stop().unwrap();
    assert!(
        report.answered > 0 && report.answered * 10 >= report.sent * 9,
        "{} ({address}) answers too few pings: {report:?}\n{}",
        b.name,
        tail(b)
    );
    Sample {
        line: format!(
            "{}: first reply after {:.0} ms; {} sent, {} answered, {replies} replies, longest gap \
             {:.1} ms",
            b.name,
            (answering - from) * 1e3,
            report.sent,
            report.answered,
            report.longest_gap.as_secs_f64() * 1e3
        ),
        answered: report.answered,
        replies,
    }
}

/// Boots one bonded box per `(name, mode, address)` on the public LAN, waits until each bond
/// is up with both ports (`bond status`), then pings each from a client (a broadcast bond must
/// answer twice); prints what the client saw.
fn modes_on_the_public_lan(boxes: &[(&str, &str, &str)]) {
    let mut lab = Lab::new().unwrap();
    let started = Instant::now();
    let specs: Vec<BoxSpec> = boxes
        .iter()
        .map(|(name, mode, address)| bonded_box(name, mode, address, ""))
        .collect();
    lab.boot(&specs, BOOT).unwrap();
    println!(
        "{} boxes ready in {:.1} s",
        boxes.len(),
        started.elapsed().as_secs_f64()
    );
    let client = lab.add_client("cl", Segment::Public).unwrap();
    client.add_address("192.0.2.100/24").unwrap();
    let client = client.netns.clone();
    let mut samples = Vec::new();
    for (name, mode, address) in boxes {
        let b = lab.boxes.iter().find(|b| b.name == *name).unwrap();
        let up = format!("bond bond0: up mode {mode}, miimon 100 ms, carrier yes, ");
        let lines = wait_bond(b, "the bond up with 2 of 2 ports", |l| {
            l[0].starts_with(&up) && l[0].contains(", 2 of 2 ports up")
        });
        println!("{name}:\n{}", lines.join("\n"));
        let sample = ping_from_client(&client, b, address);
        if *mode == "broadcast" {
            // Every frame leaves on both ports, and both copies reach the client's bridge port.
            assert!(
                sample.replies > sample.answered,
                "broadcast answered each ping once: {}\n{}",
                sample.line,
                tail(b)
            );
        }
        samples.push(sample.line);
    }
    println!("{:.1} s in all", started.elapsed().as_secs_f64());
    for line in samples {
        println!("{line}");
    }
}

#[test]
fn balance_xor_balance_rr_and_broadcast_bonds_answer_a_client() {
    modes_on_the_public_lan(&[
        ("xor", "balance-xor", "192.0.2.11"),
        ("rr", "balance-rr", "192.0.2.12"),
        ("bcast", "broadcast", "192.0.2.13"),
    ]);
}

#[test]
fn balance_tlb_and_balance_alb_bonds_come_up_and_answer_a_client() {
    modes_on_the_public_lan(&[
        ("tlb", "balance-tlb", "192.0.2.21"),
        ("alb", "balance-alb", "192.0.2.22"),
    ]);
}
