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
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use tandem_config::blob::{self, BlobMeta, MacKey, MacPolicy};
use tandem_config::model::{
    Check, CheckKind, Interface, RealServer, Vip, VirtualService, VrrpInstance,
};
use tandem_config::net::IpCidr;
use tandem_config::{validate, BoundedVec, Config};

fn generated(services: u32, servers: u32) -> Config {
    let mut config = Config::default();
    config.system.hostname = "bench".try_into().unwrap();
    for (name, addr) in [("public", "10.0.0.2/16"), ("private", "172.16.0.2/12")] {
        let addresses = BoundedVec::from_vec(vec![addr.parse::<IpCidr>().unwrap()]).unwrap();
        config
            .interfaces
            .push(Interface {
                name: name.try_into().unwrap(),
                addresses,
                ..Interface::default()
            })
            .unwrap();
    }
    let mut vrrp = VrrpInstance {
        name: "vip".try_into().unwrap(),
        vrid: 1,
        interface: "public".try_into().unwrap(),
        ..VrrpInstance::default()
    };
    for index in 0..services {
        let [_, _, hi, lo] = (index + 256).to_be_bytes();
        let vip = IpAddr::V4(Ipv4Addr::new(10, 0, hi, lo));
        if vrrp.vips.len() < 64 {
            vrrp.vips
                .push(Vip {
                    address: vip,
                    prefix: 32,
                    interface: None,
                    label: None,
                })
                .unwrap();
        }
        let mut service = VirtualService {
            address: Some(vip),
            port: 80,
            check: Some(Check {
                kind: CheckKind::Tcp,
                ..Check::default()
            }),
            ..VirtualService::default()
        };
        for server in 0..servers {
            let n = index * servers + server;
            let [_, b, c, d] = n.to_be_bytes();
            let address = IpAddr::V4(Ipv4Addr::new(172, 16 + (b & 0x0f), c, d));
            service
                .real_servers
                .push(RealServer {
                    address,
                    port: Some(8080),
                    weight: 100,
                    ..RealServer::default()
                })
                .unwrap();
        }
        config.virtual_services.push(service).unwrap();
    }
    config.vrrp.push(vrrp).unwrap();
    config
}

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
