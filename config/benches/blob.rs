//! Blob size and speed for a 1000 virtual services x 10 real servers config.
//! Targets: <= 24 bytes per real server, decode+validate <= 5 ms.

// Test code: panics are the failure report, and the figures are small known values.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_lossless
)]

use std::hint::black_box;
use std::time::Instant;

use tandem_config::blob::{self, BlobMeta, MacKey, MacPolicy};
use tandem_config::{validate, BoundedVec};

#[path = "../tests/common/mod.rs"]
mod common;
use common::generated;

fn main() {
    let config = generated(1000, 10);
    let key = MacKey([1; 32]);
    let meta = BlobMeta {
        generation: 1,
        parent_generation: 0,
        pair_id: 1,
    };
    let bytes = blob::encode(&config, meta, Some(&key)).unwrap();
    let servers = config.real_server_count();
    let rounds = 20u32;

    let start = Instant::now();
    for _ in 0..rounds {
        black_box(blob::encode(black_box(&config), meta, Some(&key)).unwrap());
    }
    let encode = start.elapsed() / rounds;

    let start = Instant::now();
    for _ in 0..rounds {
        let decoded = blob::decode(black_box(&bytes), MacPolicy::Require(&key), Some(1)).unwrap();
        black_box(validate(&decoded.config));
    }
    let decode_validate = start.elapsed() / rounds;
    let start = Instant::now();
    for _ in 0..rounds {
        black_box(blob::decode(black_box(&bytes), MacPolicy::Require(&key), Some(1)).unwrap());
    }
    let decode_only = start.elapsed() / rounds;
    let errors = validate(&config)
        .into_iter()
        .filter(|i| i.severity == tandem_config::Severity::Error)
        .count();

    // The same config with one real server removed: bytes attributable to one real server.
    let mut smaller = config.clone();
    let mut trimmed = smaller.virtual_services[0].real_servers.clone().into_vec();
    trimmed.pop();
    smaller.virtual_services.as_mut_slice()[0].real_servers =
        BoundedVec::from_vec(trimmed).unwrap();
    let one_server = bytes.len() - blob::encode(&smaller, meta, Some(&key)).unwrap().len();

    println!("bench: config_blob_bytes_1000x10 {} bytes", bytes.len());
    println!(
        "bench: config_bytes_per_real_server {:.1} bytes",
        bytes.len() as f64 / servers as f64
    );
    println!("bench: config_marginal_bytes_per_real_server {one_server} bytes");
    println!(
        "bench: config_encode_1000x10 {:.3} ms",
        encode.as_secs_f64() * 1e3
    );
    println!(
        "bench: config_decode_validate_1000x10 {:.3} ms",
        decode_validate.as_secs_f64() * 1e3
    );
    println!(
        "bench: config_decode_1000x10 {:.3} ms",
        decode_only.as_secs_f64() * 1e3
    );
    println!(
        "bench: config_max_blob_bytes {} bytes",
        blob::MAX_BLOB_BYTES
    );
    println!("bench: config_validation_errors_1000x10 {errors} count");
}
