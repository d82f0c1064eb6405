//! A NAT director started with `tandem run` masquerades what its real servers send to the
//! outside (the real servers route through its NAT gateway address), on this machine's kernel:
//! the outside host sees the director's public address. IPVS is not needed for this (the host
//! kernel has none; the engine reports that and keeps the rest of its networking).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::time::Duration;

use tandem_lab::host::{ScratchDir, TandemRun};
use tandem_lab::netns::{veth_pair, Netns};
use tandem_lab::servers::nat_director;

const LIMIT: Duration = Duration::from_secs(20);

/// The director: a NAT director with one service.
fn config() -> String {
    nat_director("director", &["192.0.2.1"]) + SERVICES
}

const SERVICES: &str = r#"
[[virtual_services]]
address = "192.0.2.10"
port = 80
protocol = "tcp"
scheduler = "rr"
forwarding = "nat"

[[virtual_services.real_servers]]
address = "198.51.100.10"
weight = 1
"#;

#[test]
fn the_nat_directors_real_servers_reach_the_outside_from_its_public_address() {
    let director = Netns::new("snatd").unwrap();
    let server = Netns::new("snatrs").unwrap();
    let outside = Netns::new("snatout").unwrap();
    veth_pair(&director, "private", &server, "eth0").unwrap();
    veth_pair(&director, "public", &outside, "eth0").unwrap();
    for (ns, link, address) in [
        (&server, "eth0", "198.51.100.10/24"),
        (&outside, "eth0", "192.0.2.100/24"),
    ] {
        ns.ip(&["addr", "add", address, "dev", link]).unwrap();
        ns.ip(&["link", "set", link, "up"]).unwrap();
    }
    // The real server routes through the NAT gateway address, as LVS-NAT real servers do.
    server
        .ip(&["route", "add", "default", "via", "198.51.100.254"])
        .unwrap();

    let dir = ScratchDir::new("snat").unwrap();
    let _process = TandemRun {
        tandem: Path::new(env!("CARGO_BIN_EXE_tandem")),
        dir: &dir.path,
        name: "director",
        control: None,
    }
    .start(
        &director,
        &config(),
        "lvs: source NAT: 198.51.100.0/24 out of any port but private",
        LIMIT,
    )
    .unwrap();
    let table = director
        .exec("nft", &["list", "table", "inet", "tandem_nat"])
        .unwrap();
    assert!(
        table.contains("ip saddr 198.51.100.0/24 oifname != \"private\" masquerade"),
        "{table}"
    );

    // The outside host has no route to the private network: only a masqueraded connection
    // can complete, and it arrives from the director's public address.
    let listener = outside
        .run(|| TcpListener::bind("192.0.2.100:9000").unwrap())
        .unwrap();
    let client = server
        .spawn(|| {
            let to: SocketAddr = "192.0.2.100:9000".parse().unwrap();
            let mut stream = TcpStream::connect_timeout(&to, LIMIT).unwrap();
            let mut byte = [0u8; 1];
            let _ = stream.read(&mut byte);
        })
        .unwrap();
    let (stream, peer) = listener.accept().unwrap();
    drop(stream);
    client.join().unwrap().unwrap();
    assert_eq!(peer.ip(), "192.0.2.1".parse::<IpAddr>().unwrap());
}
