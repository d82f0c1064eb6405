//! Live config speed on a 1000 virtual services x 10 real servers config.
//! Target: compare + preview well under 20 ms.

// Test code: panics are the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use tandem_config::{compare, delete, preview, set, Config};

#[path = "../tests/common/mod.rs"]
mod common;
use common::generated;

/// The fastest of `rounds` runs: the figure least disturbed by other work on the machine.
fn time(rounds: u32, mut run: impl FnMut()) -> Duration {
    (0..rounds)
        .map(|_| {
            let start = Instant::now();
            run();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn ms(duration: Duration) -> String {
    format!("{:.3} ms", duration.as_secs_f64() * 1e3)
}

fn main() {
    let running = generated(1000, 10);
    // An operator's commit: a weight, a removed service, a VRRP priority, a new real server.
    let edited = set(
        &running,
        "virtual_services.#500.real_servers.#3.weight",
        "7",
    )
    .unwrap();
    let edited = delete(&edited, "virtual_services.#999").unwrap();
    let edited = set(&edited, "vrrp.vip.priority", "150").unwrap();
    let edited = set(&edited, "virtual_services.#10.real_servers", "172.31.0.1").unwrap();
    // The worst case: every real server changed.
    let mut everything = running.clone();
    for service in everything.virtual_services.as_mut_slice() {
        for server in service.real_servers.as_mut_slice() {
            server.weight += 1;
        }
    }
    let both = |candidate: &Config| {
        black_box(compare(black_box(&running), black_box(candidate)));
        black_box(preview(black_box(&running), black_box(candidate)));
    };
    let rounds = 50;
    println!(
        "bench: live_compare_preview_1000x10_equal {}",
        ms(time(rounds, || both(&running)))
    );
    println!(
        "bench: live_compare_preview_1000x10_few_changes {}",
        ms(time(rounds, || both(&edited)))
    );
    println!(
        "bench: live_compare_1000x10_few_changes {}",
        ms(time(rounds, || {
            black_box(compare(&running, &edited));
        }))
    );
    println!(
        "bench: live_preview_1000x10_few_changes {}",
        ms(time(rounds, || {
            black_box(preview(&running, &edited));
        }))
    );
    println!(
        "bench: live_compare_preview_1000x10_all_servers_changed {}",
        ms(time(15, || both(&everything)))
    );
    println!(
        "bench: live_compare_1000x10_all_servers_changed {}",
        ms(time(15, || {
            black_box(compare(&running, &everything));
        }))
    );
    println!(
        "bench: live_preview_1000x10_all_servers_changed {}",
        ms(time(15, || {
            black_box(preview(&running, &everything));
        }))
    );
    println!(
        "bench: live_set_1000x10 {}",
        ms(time(15, || {
            black_box(
                set(
                    &running,
                    "virtual_services.#500.real_servers.#3.weight",
                    "7",
                )
                .unwrap(),
            );
        }))
    );
    println!(
        "bench: live_set_refused_1000x10 {}",
        ms(time(15, || {
            black_box(set(&running, "vrrp.vip.priority", "abc").unwrap_err());
        }))
    );
}
