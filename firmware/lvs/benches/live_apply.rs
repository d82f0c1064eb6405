//! Commit -> applied for one real-server weight change in a 1000 x 10 config: the pure part of
//! the director's live apply (new config -> plan -> check reconcile -> health carry-over ->
//! effective table -> diff against the kernel table -> ops and report lines), measured as the
//! thread's CPU time (and wall time) over `LIVE_APPLY_RUNS` runs (default 200). The kernel
//! part (one `SET_DEST`) is not included: see `lvsbench` for IPVS round trips. Also: the same
//! for an identical config, and a plan built from scratch (what every apply cost before plans
//! were reused per service).
//! Prints `bench: <name> <value> <unit>` lines; the target is p99 <= 5 ms.
// Bench code: a failed step is a failed run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::time::{clock_gettime, ClockId};
use tandem_config::model::{self, Config};
use tandem_lvs::live::{describe_op, LiveState};
use tandem_lvs::{plan, Table};

const SERVICES: u32 = 1_000;
const PER_SERVICE: u32 = 10;

/// 1000 TCP services of 10 TCP-checked NAT real servers; `weight` gives each server's weight.
fn config(weight: impl Fn(u32, u32) -> u32) -> Config {
    let mut config = Config::default();
    for s in 0..SERVICES {
        let [_, _, a, b] = (s + 1).to_be_bytes();
        let mut vs = model::VirtualService {
            address: Some(IpAddr::V4(Ipv4Addr::new(198, 18, a, b))),
            port: 80,
            on_failure: model::OnFailure::Quiesce,
            check: Some(Box::new(model::Check {
                timing: model::CheckTiming {
                    interval_ms: 1000,
                    timeout_ms: 500,
                    retries: 1,
                    retry_delay_ms: 200,
                },
                ..Default::default()
            })),
            ..Default::default()
        };
        for r in 0..PER_SERVICE {
            let [_, x, y, z] = (s * PER_SERVICE + r + 1).to_be_bytes();
            vs.real_servers
                .push(model::RealServer {
                    address: IpAddr::V4(Ipv4Addr::new(10, x, y, z)),
                    weight: weight(s, r),
                    ..Default::default()
                })
                .unwrap();
        }
        config.virtual_services.push(vs).unwrap();
    }
    config
}

fn thread_cpu() -> Duration {
    Duration::from(clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap())
}

fn pct(values: &mut [Duration], p: usize) -> Duration {
    values.sort();
    values[((values.len() - 1) * p + 50) / 100]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    let runs: usize = std::env::var("LIVE_APPLY_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let now = Instant::now();
    let old = Arc::new(config(|_, _| 1));
    // The running director: its plan applied, the kernel table equal to what it asked for.
    let mut running = LiveState::new();
    let first = running.apply(Arc::clone(&old), &Table::default(), now);
    let mut kernel = Table::default();
    for op in &first.ops {
        kernel.apply(op).unwrap();
    }
    assert_eq!(first.checks.subscribe.len(), 10_000);

    // A commit hands the engine a freshly decoded config: nothing shared with the old one.
    let changed = Arc::new(config(|s, r| if (s, r) == (500, 5) { 5 } else { 1 }));
    let identical = Arc::new(config(|_, _| 1));
    let mut cpu = Vec::with_capacity(runs);
    let mut wall = Vec::with_capacity(runs);
    let mut identical_cpu = Vec::with_capacity(runs);
    for _ in 0..runs {
        let mut state = running.clone();
        let (cpu0, wall0) = (thread_cpu(), Instant::now());
        let decision = state.apply(Arc::clone(black_box(&changed)), &kernel, now);
        let lines: Vec<String> = decision
            .ops
            .iter()
            .flat_map(|op| describe_op(op, kernel.services.get(op.service())))
            .chain(decision.lines.iter().cloned())
            .collect();
        let (cpu1, wall1) = (thread_cpu(), Instant::now());
        cpu.push(cpu1.saturating_sub(cpu0));
        wall.push(wall1 - wall0);
        assert_eq!(decision.ops.len(), 1, "one SET_DEST");
        assert!(decision.checks.is_empty(), "no subscription changes");
        assert_eq!(lines.len(), 1, "{lines:?}");
        black_box(lines);

        let mut state = running.clone();
        let cpu0 = thread_cpu();
        let decision = state.apply(Arc::clone(black_box(&identical)), &kernel, now);
        identical_cpu.push(thread_cpu().saturating_sub(cpu0));
        assert!(decision.ops.is_empty() && decision.checks.is_empty());
    }
    let mut plan_only = Vec::with_capacity(runs);
    for _ in 0..runs {
        let cpu0 = thread_cpu();
        black_box(plan::from_config(black_box(&changed)));
        plan_only.push(thread_cpu().saturating_sub(cpu0));
    }
    println!(
        "bench: lvs_live_apply_one_weight_1000x10_cpu_p50 {:.2} ms",
        ms(pct(&mut cpu, 50))
    );
    println!(
        "bench: lvs_live_apply_one_weight_1000x10_cpu_p99 {:.2} ms",
        ms(pct(&mut cpu, 99))
    );
    println!(
        "bench: lvs_live_apply_one_weight_1000x10_wall_p50 {:.2} ms",
        ms(pct(&mut wall, 50))
    );
    println!(
        "bench: lvs_live_apply_one_weight_1000x10_wall_p99 {:.2} ms",
        ms(pct(&mut wall, 99))
    );
    println!(
        "bench: lvs_live_apply_identical_1000x10_cpu_p50 {:.2} ms",
        ms(pct(&mut identical_cpu, 50))
    );
    println!(
        "bench: lvs_live_apply_identical_1000x10_cpu_p99 {:.2} ms",
        ms(pct(&mut identical_cpu, 99))
    );
    println!(
        "bench: lvs_plan_from_scratch_1000x10_cpu_p50 {:.2} ms",
        ms(pct(&mut plan_only, 50))
    );
    println!("bench: lvs_live_apply_runs {runs} runs");
}
