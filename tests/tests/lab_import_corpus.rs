//! The keepalived.conf import corpus runs (issue 17), lab tier: the virtual services of every
//! corpus file (keepalived's own samples, the TUM report's seeds, appendix B.11's directors)
//! imported as `tandem config import FILE` does and run together on ONE qemu director. A service
//! whose IPVS key (address, port and protocol, or fwmark) an earlier file already took is
//! skipped and named in the output (IPVS holds one service per key). The real servers do not
//! exist: every service must be in the kernel table as `lvs status` reads it, every real server
//! listed (in the table or out of it after a failed check), and every checked real server must
//! report a verdict (up, or down with the failure). The VRRP part of the same files runs on the
//! host tier (`firmware/daemon/tests/import_corpus_vrrp.rs`).
//!
//! What the test adds to the imported services, and only that: the director's interfaces and
//! addresses (the lab's NAT director), and one `[[fwmark_rules]]` entry per firewall mark (the
//! importer leaves marking rules out: in keepalived they are iptables rules outside
//! keepalived.conf, and validation refuses a mark nothing sets).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tandem_config::import::keepalived;
use tandem_config::model::{Config, VirtualService};
use tandem_config::validate::{validate, Severity};
use tandem_lab::servers::nat_director;
use tandem_lab::{BoxSpec, Lab, Segment};

const BOOT: Duration = Duration::from_secs(240);
/// Until every check has reported: the corpus's own timings (delay_loop, retries, connect
/// timeouts of a few seconds each) stretched by TCG.
const VERDICTS: Duration = Duration::from_secs(240);

/// The corpus files, as `config/tests/import_keepalived_samples.rs` lists them.
fn corpus() -> Vec<PathBuf> {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/tests");
    let mut files = Vec::new();
    for dir in ["import/keepalived/samples", "import/keepalived/seeds"] {
        for entry in std::fs::read_dir(tests.join(dir)).unwrap() {
            files.push(entry.unwrap().path());
        }
    }
    for director in ["director1", "director2"] {
        files.push(tests.join(format!("data/{director}.keepalived.conf")));
    }
    files.sort();
    files
}

/// A service's IPVS key as text: `fwmark N` or `tcp ADDR:PORT`.
fn ipvs_key(service: &VirtualService) -> String {
    match (service.fwmark, service.address) {
        (Some(mark), _) => format!("fwmark {mark}"),
        (None, Some(addr)) => format!("{} {addr}:{}", service.protocol.as_str(), service.port),
        (None, None) => format!("{} :{}", service.protocol.as_str(), service.port),
    }
}

/// The services to run, each with the file it came from, and the skipped ones as lines.
fn collect() -> (Vec<(String, VirtualService)>, Vec<String>) {
    let mut taken = BTreeSet::new();
    let mut names = BTreeSet::new();
    let mut services = Vec::new();
    let mut skipped = Vec::new();
    for path in corpus() {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        let imported =
            keepalived::import_file(&path, &text).unwrap_or_else(|e| panic!("{file}: {e}"));
        for service in imported.config.virtual_services.into_vec() {
            let key = ipvs_key(&service);
            if !taken.insert(key.clone()) {
                skipped.push(format!(
                    "{file}: service {} skipped: its IPVS key {key} is an earlier file's",
                    service.label()
                ));
                continue;
            }
            if !service.name.is_empty() && !names.insert(service.name.to_string()) {
                skipped.push(format!(
                    "{file}: service {} skipped: an earlier file has a service of that name",
                    service.label()
                ));
                continue;
            }
            services.push((file.clone(), service));
        }
    }
    (services, skipped)
}

/// The director's config: the lab's NAT director, every collected service, one marking rule
/// per firewall mark (TCP to 192.0.2.(200+N) on the service's real servers' port, or 80).
fn director(services: &[(String, VirtualService)]) -> Config {
    let mut config =
        tandem_config::text::from_toml(&nat_director("box-a", &["192.0.2.1"])).unwrap();
    let mut marks = String::new();
    for (_, service) in services {
        if let Some(mark) = service.fwmark {
            let port = service
                .real_servers
                .iter()
                .find_map(|r| r.port)
                .filter(|&p| p != 0)
                .unwrap_or(80);
            marks.push_str(&format!(
                "[[fwmark_rules]]\nmark = {mark}\nprotocol = \"tcp\"\ndestination = \"192.0.2.{}\"\nport_first = {port}\nport_last = {port}\n\n",
                200 + mark
            ));
        }
        config.virtual_services.push(service.clone()).unwrap();
    }
    let rules =
        tandem_config::text::from_toml(&format!("[system]\nhostname = \"box-a\"\n\n{marks}"))
            .unwrap();
    config.fwmark_rules = rules.fwmark_rules;
    config
}

/// The `lvs status` head line of a service (`lvs: TCP  192.0.2.10:80 `, `lvs: FWM  1 `).
fn status_head(service: &VirtualService) -> String {
    match (service.fwmark, service.address) {
        (Some(mark), _) => format!("lvs: FWM  {mark}"),
        (None, Some(IpAddr::V6(a))) => format!(
            "lvs: {:<4} [{a}]:{} ",
            service.protocol.as_str().to_ascii_uppercase(),
            service.port
        ),
        (None, Some(a)) => format!(
            "lvs: {:<4} {a}:{} ",
            service.protocol.as_str().to_ascii_uppercase(),
            service.port
        ),
        (None, None) => unreachable!("an imported service has an address or a mark"),
    }
}

/// The status lines of the service whose head is `head`: its head line and its real servers'.
fn block<'a>(status: &'a [String], head: &str) -> &'a [String] {
    let Some(start) = status.iter().position(|l| l.starts_with(head)) else {
        return &[];
    };
    let len = status[start + 1..]
        .iter()
        .take_while(|l| l.starts_with("lvs:   -> "))
        .count();
    &status[start..=start + len]
}

/// The real server's line start in `lvs status` (`lvs:   -> 10.0.0.1:80 `, `[2001:db8::1]:80`).
fn server_prefix(address: IpAddr, port: u16) -> String {
    match address {
        IpAddr::V6(a) => format!("lvs:   -> [{a}]:{port} "),
        IpAddr::V4(a) => format!("lvs:   -> {a}:{port} "),
    }
}

/// What is still missing from `status`, one line per problem (empty: all there).
fn missing(status: &[String], services: &[(String, VirtualService)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (file, service) in services {
        let head = status_head(service);
        let lines = block(status, &head);
        if lines.is_empty() {
            problems.push(format!(
                "{file}: service {} ({head:?}) not in the table",
                service.label()
            ));
            continue;
        }
        for server in service.real_servers.iter() {
            let port = server.port.unwrap_or(service.port);
            let prefix = server_prefix(server.address, port);
            let Some(line) = lines.iter().find(|l| l.starts_with(&prefix)) else {
                problems.push(format!(
                    "{file}: {}: real server {prefix:?} not listed",
                    service.label()
                ));
                continue;
            };
            let checked = server.effective_checks(service).next().is_some();
            let verdict = line.contains(" up since ")
                || (line.contains(" down since ") && line.contains("last failure: "));
            if checked && !verdict {
                problems.push(format!(
                    "{file}: {}: no verdict yet: {line}",
                    service.label()
                ));
            }
            if !checked && !line.contains("unchecked, in") {
                problems.push(format!(
                    "{file}: {}: unchecked server not in: {line}",
                    service.label()
                ));
            }
        }
    }
    problems
}

#[test]
fn the_collected_services_validate_on_the_director() {
    let (services, skipped) = collect();
    for line in &skipped {
        println!("{line}");
    }
    assert!(!services.is_empty());
    let errors: Vec<String> = validate(&director(&services))
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| i.to_string())
        .collect();
    assert_eq!(errors, Vec::<String>::new());
}

#[test]
fn every_corpus_service_runs_on_one_director_and_every_check_reports() {
    let (services, skipped) = collect();
    for line in &skipped {
        eprintln!("{line}");
    }
    let config = director(&services);
    let toml = tandem_config::text::to_toml(&config).unwrap();
    let mut lab = Lab::new().expect("lab");
    let specs = [BoxSpec::new("box-a", &[Segment::Public, Segment::Private]).with_config(&toml)];
    lab.boot(&specs, BOOT).expect("director boots");
    let director = lab.box_named("box-a").unwrap();
    let started = Instant::now();
    let mut status = Vec::new();
    let mut problems = vec!["never read".to_owned()];
    while started.elapsed() < VERDICTS {
        status = director
            .engine_status("lvs", Duration::from_secs(60))
            .unwrap();
        problems = missing(&status, &services);
        if problems.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
    }
    assert_eq!(problems, Vec::<String>::new(), "{status:#?}");
    let servers: usize = services.iter().map(|(_, s)| s.real_servers.len()).sum();
    eprintln!(
        "{} services ({} skipped) with {servers} real servers from the corpus in the table, every check reported within {:.0} s",
        services.len(),
        skipped.len(),
        started.elapsed().as_secs_f64()
    );
    for line in &status {
        eprintln!("box-a: {line}");
    }
}
