//! Import time of a 1000 virtual services x 10 real servers config written as keepalived.conf
//! and as Piranha lvs.cf (issue 17's figure): the text is the exporter's rendering of the
//! generated config the other benches use (a TCP check per service, one VRRP instance), so
//! it is what an operator with that many services hands `tandem config import`. p50/p99 over
//! 20 imports each, and the throughput in MB/s; the import must carry every service over.

// Bench code: panics are the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use tandem_config::export;
use tandem_config::import::{self, Format};

#[path = "../tests/common/mod.rs"]
mod common;
use common::generated;

const RUNS: usize = 20;

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[((sorted.len() - 1) * p + 50) / 100]
}

fn measure(label: &str, text: &str, format: Format, services: usize, servers: usize) {
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        let imported = import::import(text, Some(format)).unwrap();
        times.push(start.elapsed());
        assert_eq!(imported.config.virtual_services.len(), services, "{label}");
        assert_eq!(imported.config.real_server_count(), servers, "{label}");
    }
    times.sort();
    let p50 = percentile(&times, 50);
    let megabytes = text.len() as f64 / 1e6;
    println!(
        "bench: import {label} 1000x10 ({:.1} MB, {} lines): p50 {:.1} ms / p99 {:.1} ms ({:.0} MB/s)",
        megabytes,
        text.lines().count(),
        p50.as_secs_f64() * 1e3,
        percentile(&times, 99).as_secs_f64() * 1e3,
        megabytes / p50.as_secs_f64()
    );
}

fn main() {
    let config = generated(1000, 10);
    let keepalived = export::keepalived::export(&config).text;
    measure(
        "keepalived.conf",
        &keepalived,
        Format::Keepalived,
        1000,
        10_000,
    );
    let lvs = export::lvs::export(&config).text;
    measure("lvs.cf", &lvs, Format::Lvs, 1000, 10_000);
}
