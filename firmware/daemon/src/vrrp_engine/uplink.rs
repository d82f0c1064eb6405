//! Uplink scoring for the pair's split arbitration: which box still reaches the upstream
//! routers of its service LANs (`peer_link.uplink_probes`).
//!
//! Every [`PROBE_EVERY`] each configured router is probed (ARP for IPv4, Neighbor Solicitation
//! for IPv6: `southbound::lan_probe`) from the interface whose configured subnet holds it, with
//! this box's address in that subnet as the source. The score is the number of routers counted
//! up, with hysteresis: a router is up after one answer and down only after
//! [`DOWN_AFTER_MISSES`] consecutive misses (one lost ARP never moves a VIP); a router behind
//! an interface without carrier counts as down at once (nothing can reach it). The heartbeat
//! carries the score (`FLAG_UPLINK_MEASURED`: none is sent before the first round is in); in a
//! split the master yields only to a partner with a strictly better one
//! (`tandem_vrrp::pair::arbitrate`). Without routers configured the score stays the count of
//! service LANs with carrier.
//!
//! [`UplinkProbes`] is the bookkeeping, sans-IO: rounds are planned and their results fed in
//! with an injected [`Instant`]. [`Uplink`] adds the I/O: each round is a task on the VRRP
//! thread's runtime that reports back over the pair link's probe channel, so the loop never
//! waits for an answer. Its probe sockets are its own (one [`LanProbe`] per router, kept
//! between rounds), apart from the ones the takeover path uses, so a round never holds a socket
//! a takeover needs; they are opened on the blocking pool and closed there (closing a packet
//! socket blocks for ~10 ms).

use core::time::Duration;
use std::collections::BTreeMap;
use std::net::IpAddr;

use tokio::sync::mpsc;

use tandem_config::Config;
use tandem_southbound::lan_probe::LanProbe;
use tandem_vrrp::Instant;

use crate::pair_board::{GatewayView, UplinkView};

use super::pair_link::ProbeNews;

/// How often each router is probed.
pub(super) const PROBE_EVERY: Duration = Duration::from_secs(1);
/// Consecutive unanswered probes after which a router counts as down.
pub(super) const DOWN_AFTER_MISSES: u32 = 3;
/// How long one probe waits for the answer (a LAN answers ARP in well under a millisecond; a
/// slow lab guest in a few): half the period, so rounds never overlap.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// A round whose results have not come back after this long is given up (its sockets are
/// opened again by the next round).
const ROUND_STALE: Duration = Duration::from_secs(5);

/// One router as this box sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    address: IpAddr,
    /// The interface it is probed from and this box's address there (None: no configured
    /// interface address has it in its subnet).
    from: Option<(String, IpAddr)>,
    /// Counted up (after an answer, until [`DOWN_AFTER_MISSES`] misses in a row).
    up: bool,
    /// Unanswered probes in a row.
    misses: u32,
    answered: u64,
    probed: u64,
    rtt: Option<Duration>,
    /// The last probe's error (a miss), cleared by an answer.
    error: Option<String>,
}

/// One probe of a round: the router, its interface and the source address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Job {
    pub interface: String,
    pub target: IpAddr,
    pub source: IpAddr,
}

/// What one probe found: the round trip of the answer, `Ok(None)` for silence, or why it could
/// not run (counted as a miss).
pub(super) type ProbeResult = Result<Option<Duration>, String>;

/// The routers' bookkeeping and score, sans-IO.
#[derive(Debug, Default)]
pub(super) struct UplinkProbes {
    targets: Vec<Target>,
    next_round: Option<Instant>,
    /// The round out (its number and when it started).
    in_flight: Option<(u64, Instant)>,
    round: u64,
    /// A round has come back since the targets were set: the score means something.
    measured: bool,
}

impl UplinkProbes {
    /// The routers of `config` (`peer_link.uplink_probes`), each with the interface and address
    /// of the first configured subnet that holds it.
    pub(super) fn targets_of(config: &Config) -> Vec<(IpAddr, Option<(String, IpAddr)>)> {
        let Some(link) = &config.peer_link else {
            return Vec::new();
        };
        link.uplink_probes
            .iter()
            .map(|router| {
                let from = config.interfaces.iter().find_map(|interface| {
                    interface
                        .addresses
                        .iter()
                        .find(|own| own.addr != *router && own.contains(router))
                        .map(|own| (interface.name.as_str().to_owned(), own.addr))
                });
                (*router, from)
            })
            .collect()
    }

    /// New routers (a commit): unchanged ones (same address, interface and source) keep their
    /// state, new ones start down and unprobed; the first round is due at once.
    pub(super) fn set_targets(
        &mut self,
        now: Instant,
        wanted: Vec<(IpAddr, Option<(String, IpAddr)>)>,
    ) {
        let mut old = std::mem::take(&mut self.targets);
        let changed = old.len() != wanted.len()
            || old.iter().zip(&wanted).any(|(target, (address, from))| {
                target.address != *address || target.from != *from
            });
        self.targets = wanted
            .into_iter()
            .map(|(address, from)| {
                match old
                    .iter()
                    .position(|t| t.address == address && t.from == from)
                {
                    Some(index) => old.swap_remove(index),
                    None => Target {
                        address,
                        from,
                        up: false,
                        misses: 0,
                        answered: 0,
                        probed: 0,
                        rtt: None,
                        error: None,
                    },
                }
            })
            .collect();
        if self.targets.is_empty() {
            self.next_round = None;
            self.measured = false;
        } else if changed {
            // A round out now probed the old routers: its news is dropped (a new number).
            self.round += 1;
            self.next_round = Some(now);
            // A new router has no history: the score waits for a round that probed it.
            self.measured &= self
                .targets
                .iter()
                .all(|t| t.probed > 0 || t.from.is_none());
        }
    }

    /// Routers are configured: the score is theirs, not the carrier count.
    pub(super) fn is_configured(&self) -> bool {
        !self.targets.is_empty()
    }

    /// When [`due`](Self::due) may next say yes (None: nothing to probe).
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        match self.in_flight {
            Some((_, started)) => Some(started + ROUND_STALE),
            None => self.next_round,
        }
    }

    /// A round should start now (the last one came back, or went stale, and the period passed).
    pub(super) fn due(&mut self, now: Instant) -> bool {
        if let Some((_, started)) = self.in_flight {
            if now < started + ROUND_STALE {
                return false;
            }
            self.in_flight = None;
        }
        self.next_round.is_some_and(|at| at <= now)
    }

    /// Starts a round: its number and the probes to send (routers without an interface are
    /// never probed: they stay down).
    pub(super) fn begin_round(&mut self, now: Instant) -> (u64, Vec<Job>) {
        self.round += 1;
        self.in_flight = Some((self.round, now));
        // Fixed cadence from the last scheduled round; a late one restarts it from now.
        let next = self.next_round.unwrap_or(now) + PROBE_EVERY;
        self.next_round = Some(if next <= now { now + PROBE_EVERY } else { next });
        let jobs = self
            .targets
            .iter()
            .filter_map(|target| {
                let (interface, source) = target.from.clone()?;
                Some(Job {
                    interface,
                    target: target.address,
                    source,
                })
            })
            .collect();
        (self.round, jobs)
    }

    /// A round came back: each router's answer or miss. Returns a line per router whose state
    /// changed (up, down).
    pub(super) fn finish_round(
        &mut self,
        round: u64,
        probed: &[IpAddr],
        results: &[(IpAddr, ProbeResult)],
    ) -> Vec<String> {
        if self.in_flight.is_some_and(|(out, _)| out == round) {
            self.in_flight = None;
        }
        if round != self.round {
            // Given up as stale, or a commit changed the routers since: its news is old.
            return Vec::new();
        }
        self.measured = true;
        let mut lines = Vec::new();
        for address in probed {
            let Some(target) = self.targets.iter_mut().find(|t| t.address == *address) else {
                continue;
            };
            let result = results.iter().find(|(a, _)| a == address).map_or_else(
                || Err("the probe task failed".to_owned()),
                |(_, r)| r.clone(),
            );
            target.probed += 1;
            let via = target
                .from
                .as_ref()
                .map_or_else(String::new, |(interface, _)| format!(" on {interface}"));
            match result {
                Ok(Some(rtt)) => {
                    target.answered += 1;
                    target.misses = 0;
                    target.rtt = Some(rtt);
                    target.error = None;
                    if !std::mem::replace(&mut target.up, true) {
                        lines.push(format!(
                            "uplink router {address}{via} answers (in {:.2} ms): counted up",
                            rtt.as_secs_f64() * 1000.0
                        ));
                    }
                }
                Ok(None) | Err(_) => {
                    target.misses = target.misses.saturating_add(1);
                    if let Err(error) = result {
                        if target.error.as_ref() != Some(&error) {
                            lines.push(format!("uplink router {address}{via}: {error}"));
                        }
                        target.error = Some(error);
                    }
                    if target.up && target.misses >= DOWN_AFTER_MISSES {
                        target.up = false;
                        lines.push(format!(
                            "uplink router {address}{via} did not answer {} probes in a row: counted down",
                            target.misses
                        ));
                    }
                }
            }
        }
        lines
    }

    /// The score: routers counted up whose interface has carrier; None before the first
    /// round came back (nothing measured) or without routers.
    pub(super) fn score(&self, carrier: impl Fn(&str) -> bool) -> Option<u8> {
        if !self.measured || self.targets.is_empty() {
            return None;
        }
        let up = self
            .targets
            .iter()
            .filter(|t| {
                t.up && t
                    .from
                    .as_ref()
                    .is_some_and(|(interface, _)| carrier(interface))
            })
            .count();
        Some(u8::try_from(up).unwrap_or(u8::MAX))
    }

    /// For `pair status`.
    pub(super) fn view(&self, score: Option<u8>, carrier: impl Fn(&str) -> bool) -> UplinkView {
        UplinkView {
            score,
            gateways: self
                .targets
                .iter()
                .map(|t| GatewayView {
                    address: t.address,
                    from: t.from.clone(),
                    answering: t.up,
                    carrier: t
                        .from
                        .as_ref()
                        .is_some_and(|(interface, _)| carrier(interface)),
                    misses: t.misses,
                    answered: t.answered,
                    probed: t.probed,
                    rtt: t.rtt,
                    error: t.error.clone(),
                })
                .collect(),
            every: PROBE_EVERY,
            down_after: DOWN_AFTER_MISSES,
        }
    }
}

/// What an uplink round found, back to the engine's loop.
#[derive(Debug)]
pub(super) struct UplinkOutcome {
    round: u64,
    probed: Vec<IpAddr>,
    results: Vec<(IpAddr, ProbeResult)>,
    /// The probes that worked, back for the next round.
    probers: Vec<((String, IpAddr), LanProbe)>,
}

/// The routers' bookkeeping and their probe sockets.
#[derive(Debug, Default)]
pub(super) struct Uplink {
    pub probes: UplinkProbes,
    /// One probe per (interface, router), kept between rounds.
    probers: BTreeMap<(String, IpAddr), LanProbe>,
}

impl Uplink {
    /// A commit: the routers of `config`; sockets of routers no longer probed are closed.
    pub(super) fn reconfigure(&mut self, config: &Config, now: Instant) {
        let targets = UplinkProbes::targets_of(config);
        let kept: Vec<(String, IpAddr)> = targets
            .iter()
            .filter_map(|(address, from)| from.as_ref().map(|(i, _)| (i.clone(), *address)))
            .collect();
        let gone: Vec<LanProbe> = {
            let keys: Vec<(String, IpAddr)> = self
                .probers
                .keys()
                .filter(|key| !kept.contains(key))
                .cloned()
                .collect();
            keys.iter()
                .filter_map(|key| self.probers.remove(key))
                .collect()
        };
        close_off_thread(gone);
        self.probes.set_targets(now, targets);
    }

    /// Starts a round if one is due: a task probes every router at once and reports back on
    /// `results`. Returns false when nothing was due.
    pub(super) fn start_round(&mut self, now: Instant, results: &mpsc::Sender<ProbeNews>) -> bool {
        if !self.probes.due(now) {
            return false;
        }
        let (round, jobs) = self.probes.begin_round(now);
        let probed: Vec<IpAddr> = jobs.iter().map(|job| job.target).collect();
        if jobs.is_empty() {
            // Only routers without an interface: nothing to send, the round is over.
            self.probes.finish_round(round, &probed, &[]);
            return true;
        }
        let work: Vec<(Job, Option<LanProbe>)> = jobs
            .into_iter()
            .map(|job| {
                let prober = self.probers.remove(&(job.interface.clone(), job.target));
                (job, prober)
            })
            .collect();
        let results = results.clone();
        tokio::spawn(async move {
            let mut tasks = tokio::task::JoinSet::new();
            for (job, prober) in work {
                tasks.spawn(probe_one(job, prober));
            }
            let mut found = Vec::new();
            let mut probers = Vec::new();
            while let Some(joined) = tasks.join_next().await {
                // A failed task leaves its router without a result: a miss.
                let Ok((target, result, prober)) = joined else {
                    continue;
                };
                found.push((target, result));
                probers.extend(prober);
            }
            let _ = results
                .send(ProbeNews::Uplink(UplinkOutcome {
                    round,
                    probed,
                    results: found,
                    probers,
                }))
                .await;
        });
        true
    }

    /// A round came back: its sockets are kept, its results counted. Returns the lines to log.
    pub(super) fn finish_round(&mut self, outcome: UplinkOutcome) -> Vec<String> {
        let mut extra = Vec::new();
        for (key, prober) in outcome.probers {
            if let Some(old) = self.probers.insert(key, prober) {
                extra.push(old);
            }
        }
        close_off_thread(extra);
        self.probes
            .finish_round(outcome.round, &outcome.probed, &outcome.results)
    }

    /// The engine stops: close the sockets off the loop.
    pub(super) fn stop(&mut self) {
        close_off_thread(std::mem::take(&mut self.probers).into_values().collect());
    }
}

/// Closing a packet socket blocks for an RCU grace period (~10 ms): never on the loop.
fn close_off_thread(probers: Vec<LanProbe>) {
    if !probers.is_empty() {
        tokio::task::spawn_blocking(move || drop(probers));
    }
}

/// One probe of a round, with the router's socket (opened on the blocking pool if it has none
/// yet). The socket comes back unless it failed: a failed one is closed, the next round opens a
/// new one (the interface may have been recreated).
async fn probe_one(
    job: Job,
    prober: Option<LanProbe>,
) -> (IpAddr, ProbeResult, Option<((String, IpAddr), LanProbe)>) {
    let Job {
        interface,
        target,
        source,
    } = job;
    let prober = match prober {
        Some(prober) => Ok(prober),
        None => {
            let name = interface.clone();
            match tokio::task::spawn_blocking(move || LanProbe::open(&name)).await {
                Ok(opened) => opened.map_err(|error| error.to_string()),
                Err(error) => Err(format!("opening the probe on {interface}: {error}")),
            }
        }
    };
    let mut prober = match prober {
        Ok(prober) => prober,
        Err(error) => return (target, Err(error), None),
    };
    match prober.probe(target, source, PROBE_TIMEOUT, 1).await {
        Ok(answer) => (
            target,
            Ok(answer.map(|a| a.rtt)),
            Some(((interface, target), prober)),
        ),
        Err(error) => {
            close_off_thread(vec![prober]);
            (target, Err(error.to_string()), None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const GW: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    const GW2: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));

    fn from() -> Option<(String, IpAddr)> {
        Some(("eth0".to_owned(), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2))))
    }

    fn carrier(_: &str) -> bool {
        true
    }

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    /// Runs one round at `at` in which `answers` answered (the others were silent).
    fn round(probes: &mut UplinkProbes, at: u64, answers: &[IpAddr]) -> Vec<String> {
        assert!(probes.due(ms(at)), "a round is due at {at} ms");
        let (round, jobs) = probes.begin_round(ms(at));
        let probed: Vec<IpAddr> = jobs.iter().map(|j| j.target).collect();
        let results: Vec<(IpAddr, ProbeResult)> = probed
            .iter()
            .map(|t| {
                (
                    *t,
                    Ok(answers.contains(t).then_some(Duration::from_micros(200))),
                )
            })
            .collect();
        probes.finish_round(round, &probed, &results)
    }

    #[test]
    fn up_after_one_answer_down_after_three_misses() {
        let mut probes = UplinkProbes::default();
        probes.set_targets(ms(0), vec![(GW, from())]);
        assert!(probes.is_configured());
        // Nothing measured before the first round is in: the heartbeat sends no score.
        assert_eq!(probes.score(carrier), None);
        assert_eq!(probes.poll_timeout(), Some(ms(0)));
        let lines = round(&mut probes, 0, &[GW]);
        assert_eq!(probes.score(carrier), Some(1));
        assert!(lines[0].contains("counted up"), "{lines:?}");
        // Every second, not before.
        assert!(!probes.due(ms(999)));
        assert_eq!(probes.poll_timeout(), Some(ms(1000)));
        // One and two misses keep it up.
        assert!(round(&mut probes, 1000, &[]).is_empty());
        assert!(round(&mut probes, 2000, &[]).is_empty());
        assert_eq!(probes.score(carrier), Some(1));
        // An answer resets the count.
        round(&mut probes, 3000, &[GW]);
        round(&mut probes, 4000, &[]);
        round(&mut probes, 5000, &[]);
        assert_eq!(probes.score(carrier), Some(1));
        // The third miss in a row counts it down.
        let lines = round(&mut probes, 6000, &[]);
        assert_eq!(probes.score(carrier), Some(0));
        assert!(lines[0].contains("3 probes in a row"), "{lines:?}");
        // One answer brings it back.
        round(&mut probes, 7000, &[GW]);
        assert_eq!(probes.score(carrier), Some(1));
        let view = probes.view(Some(1), carrier);
        assert_eq!((view.gateways[0].answered, view.gateways[0].probed), (3, 8));
    }

    #[test]
    fn a_router_without_carrier_or_interface_counts_down() {
        let mut probes = UplinkProbes::default();
        probes.set_targets(ms(0), vec![(GW, from()), (GW2, None)]);
        let (round_no, jobs) = probes.begin_round(ms(0));
        // The router outside every configured subnet is never probed.
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].interface, "eth0");
        probes.finish_round(
            round_no,
            &[GW],
            &[(GW, Ok(Some(Duration::from_micros(90))))],
        );
        assert_eq!(probes.score(carrier), Some(1));
        assert_eq!(probes.score(|_| false), Some(0));
    }

    #[test]
    fn errors_and_missing_results_are_misses_and_stale_rounds_are_ignored() {
        let mut probes = UplinkProbes::default();
        probes.set_targets(ms(0), vec![(GW, from())]);
        round(&mut probes, 0, &[GW]);
        // A round out for too long is given up; its late news changes nothing.
        assert!(probes.due(ms(1000)));
        let (stale, _) = probes.begin_round(ms(1000));
        assert!(!probes.due(ms(2000)));
        assert_eq!(probes.poll_timeout(), Some(ms(6000)));
        assert!(probes.due(ms(6000)));
        let (fresh, _) = probes.begin_round(ms(6000));
        assert!(probes
            .finish_round(stale, &[GW], &[(GW, Err("late".into()))])
            .is_empty());
        // An error is a miss, reported once; a task that never answered is a miss too.
        let lines = probes.finish_round(fresh, &[GW], &[(GW, Err("no carrier".into()))]);
        assert!(lines[0].contains("no carrier"), "{lines:?}");
        round(&mut probes, 7000, &[]);
        let view = probes.view(None, carrier);
        assert_eq!(view.gateways[0].misses, 2);
        let (last, _) = {
            assert!(probes.due(ms(8000)));
            probes.begin_round(ms(8000))
        };
        let lines = probes.finish_round(last, &[GW], &[]);
        assert!(
            lines.iter().any(|l| l.contains("counted down")),
            "{lines:?}"
        );
        assert_eq!(probes.score(carrier), Some(0));
    }

    #[test]
    fn a_commit_keeps_unchanged_routers_and_new_ones_start_unmeasured() {
        let mut probes = UplinkProbes::default();
        probes.set_targets(ms(0), vec![(GW, from())]);
        round(&mut probes, 0, &[GW]);
        // The same router again: state kept, no extra round.
        probes.set_targets(ms(500), vec![(GW, from())]);
        assert_eq!(probes.score(carrier), Some(1));
        assert!(!probes.due(ms(500)));
        // A second router: probed at once, the score waits for it.
        let second = Some((
            "eth1".to_owned(),
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, 2)),
        ));
        probes.set_targets(ms(600), vec![(GW, from()), (GW2, second)]);
        assert_eq!(probes.score(carrier), None);
        round(&mut probes, 600, &[GW, GW2]);
        assert_eq!(probes.score(carrier), Some(2));
        // None left: no score, no rounds (the carrier count applies again).
        probes.set_targets(ms(700), Vec::new());
        assert!(!probes.is_configured());
        assert_eq!(probes.poll_timeout(), None);
    }

    #[test]
    fn routers_are_placed_in_the_subnet_that_holds_them() {
        let config = tandem_config::text::from_toml(
            "[peer_link]\ninterface = \"peer\"\nuplink_probes = [\"192.0.2.1\", \"2001:db8::1\"]\n\n\
             [[interfaces]]\nname = \"peer\"\n\n\
             [[interfaces]]\nname = \"eth0\"\naddresses = [\"192.0.2.2/24\", \"2001:db8::2/64\"]\n",
        );
        let Ok(config) = config else {
            panic!("test config: {config:?}");
        };
        let targets = UplinkProbes::targets_of(&config);
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[0].1, from());
        assert_eq!(
            targets[1].1,
            Some(("eth0".to_owned(), "2001:db8::2".parse().unwrap()))
        );
    }
}
