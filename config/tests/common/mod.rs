//! Shared by the tests and benches: a generated large config (services x real servers).

// Test code: panics are the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::net::{IpAddr, Ipv4Addr};

use tandem_config::model::{
    Check, CheckKind, Interface, RealServer, Vip, VirtualService, VrrpInstance,
};
use tandem_config::net::IpCidr;
use tandem_config::{BoundedVec, Config};

/// `services` unnamed TCP services on 10.0.x.y:80, each with `servers` unnamed real servers on
/// port 8080, one VRRP instance carrying the first 64 service addresses.
pub fn generated(services: u32, servers: u32) -> Config {
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
            check: Some(Box::new(Check {
                kind: CheckKind::Tcp,
                ..Check::default()
            })),
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
