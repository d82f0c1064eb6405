//! The keepalived.conf import corpus runs (issue 17), host tier: every corpus file with VRRP
//! instances (keepalived's own samples, the TUM report's seeds, appendix B.11's directors) is
//! imported as `tandem config import FILE` does and run by `tandem run` in a namespace of its
//! own that has every interface the config names (veths whose far ends sit in a silent
//! namespace). Every imported instance must come up MASTER (nobody else speaks on its links);
//! FAULT only where the config says so (a weight-0 tracked check nothing answers, or a sync
//! group with such a member). Whatever the import did not carry over must not stop the rest.
//! Virtual services are left out here (the host has no IPVS): `lab_import_corpus` runs them.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tandem_config::import::keepalived;
use tandem_config::model::Config;
use tandem_config::validate::{validate, Severity};
use tandem_lab::host::{tandem_query, ScratchDir, TandemRun};
use tandem_lab::netns::{veth_pair, Netns};
use tandem_lab::vrrp_status::instance_state;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const LIMIT: Duration = Duration::from_secs(30);
/// The longest master-down interval (3 adverts and the skew: 4 adverts at most) waited for.
const WAIT_MASTER: Duration = Duration::from_secs(10);

/// The corpus files, as `config/tests/import_keepalived_samples.rs` lists them.
fn corpus() -> Vec<PathBuf> {
    let tests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/tests");
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

fn short(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// Every interface name the VRRP part of `config` uses: instance links, VIP links, tracked
/// links, in first-use order.
fn interface_names(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut add = |name: &str| {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    };
    for instance in config.vrrp.iter() {
        add(&instance.interface);
        for vip in instance.vips.iter() {
            if let Some(link) = &vip.interface {
                add(link);
            }
        }
        for track in instance.track_interfaces.iter() {
            add(&track.name);
        }
    }
    names
}

/// The instances the config says must be in FAULT with every link up: a weight-0 tracked check
/// (nothing in the namespace answers any check) and every member of a sync group with one.
fn expected_faults(config: &Config) -> BTreeSet<String> {
    let mut faults: BTreeSet<String> = config
        .vrrp
        .iter()
        .filter(|i| i.track_checks.iter().any(|c| c.weight == 0))
        .map(|i| i.name.to_string())
        .collect();
    for group in config.sync_groups.iter() {
        if group.members.iter().any(|m| faults.contains(m.as_str())) {
            faults.extend(group.members.iter().map(ToString::to_string));
        }
    }
    faults
}

/// The subnet (as its network address and prefix) a VIP needs on its link: its own prefix, or
/// a /24 (/64) around a host-length VIP.
fn vip_subnet(address: IpAddr, prefix: u8) -> (u128, u8, bool) {
    let (bits, max, v4) = match address {
        IpAddr::V4(a) => (u128::from(u32::from(a)), 32, true),
        IpAddr::V6(a) => (u128::from(a), 128, false),
    };
    let prefix = if prefix < max {
        prefix
    } else if v4 {
        24
    } else {
        64
    };
    let host_bits = u32::from(max - prefix);
    let network = bits >> host_bits << host_bits;
    (network, prefix, v4)
}

/// The config `tandem run` gets: the imported one without its virtual services (no IPVS on
/// the host tier), with an interface for every name it uses, holding an address in the subnet
/// of every VIP on it (validation wants each VIP inside a subnet of its link; keepalived.conf
/// does not carry interface addresses) or a 10.99.K.2/24 of its own when no VIP goes there.
fn run_config(imported: &Config, names: &[String]) -> Config {
    let mut config = imported.clone();
    if config.system.hostname.is_empty() {
        config.system.hostname = "corpus".try_into().unwrap();
    }
    config.virtual_services.retain(|_| false);
    config.fwmark_rules.retain(|_| false);
    let vips: BTreeSet<IpAddr> = config
        .vrrp
        .iter()
        .flat_map(|i| i.vips.iter().map(|v| v.address))
        .collect();
    let mut text = String::from("[system]\nhostname = \"corpus\"\n");
    for (k, name) in names.iter().enumerate() {
        if config
            .interface(name)
            .is_some_and(|i| !i.addresses.is_empty())
        {
            continue;
        }
        let mut subnets: Vec<(u128, u8, bool)> = Vec::new();
        for instance in config.vrrp.iter() {
            for vip in instance.vips.iter() {
                let link = vip.interface.as_deref().unwrap_or(&instance.interface);
                let subnet = vip_subnet(vip.address, vip.prefix);
                if link == name && !subnets.contains(&subnet) {
                    subnets.push(subnet);
                }
            }
        }
        let mut addresses: Vec<String> = subnets
            .iter()
            .map(|&(network, prefix, v4)| {
                // The highest host address below the broadcast that no VIP holds.
                let top = if v4 { 32 } else { 128 };
                let last = network | ((1u128 << (top - u32::from(prefix))) - 1);
                let pick = (1..).map(|d| last - d).find(|&a| {
                    let ip = if v4 {
                        IpAddr::from(std::net::Ipv4Addr::from(u32::try_from(a).unwrap()))
                    } else {
                        IpAddr::from(std::net::Ipv6Addr::from(a))
                    };
                    !vips.contains(&ip)
                });
                let a = pick.unwrap();
                if v4 {
                    format!(
                        "\"{}/{prefix}\"",
                        std::net::Ipv4Addr::from(u32::try_from(a).unwrap())
                    )
                } else {
                    format!("\"{}/{prefix}\"", std::net::Ipv6Addr::from(a))
                }
            })
            .collect();
        if !addresses.iter().any(|a| !a.contains(':')) {
            addresses.push(format!("\"10.99.{k}.2/24\""));
        }
        text.push_str(&format!(
            "\n[[interfaces]]\nname = \"{name}\"\naddresses = [{}]\n",
            addresses.join(", ")
        ));
    }
    let extra = tandem_config::text::from_toml(&text).unwrap();
    for interface in extra.interfaces.into_vec() {
        config.interfaces.retain(|i| i.name != interface.name);
        config.interfaces.push(interface).unwrap();
    }
    config
}

/// Runs one corpus file; returns a line for the summary.
fn run_file(path: &Path, index: usize) -> Option<String> {
    let file = short(path);
    let text = std::fs::read_to_string(path).unwrap();
    let imported = keepalived::import_file(path, &text).unwrap_or_else(|e| panic!("{file}: {e}"));
    if imported.config.vrrp.is_empty() {
        return None;
    }
    let names = interface_names(&imported.config);
    let config = run_config(&imported.config, &names);
    let errors: Vec<String> = validate(&config)
        .into_iter()
        .filter(|i| i.severity == Severity::Error)
        .map(|i| i.to_string())
        .collect();
    assert!(errors.is_empty(), "{file}: {errors:#?}");
    let instances: Vec<String> = config.vrrp.iter().map(|i| i.name.to_string()).collect();
    let faults = expected_faults(&config);

    let box_ns = Netns::new(&format!("kc{index}")).unwrap();
    let far = Netns::new(&format!("kf{index}")).unwrap();
    for name in &names {
        veth_pair(&box_ns, name, &far, name).unwrap();
    }
    let dir = ScratchDir::new(&format!("corpus-vrrp-{index}")).unwrap();
    let control = dir.path.join("t.sock");
    let toml = tandem_config::text::to_toml(&config).unwrap();
    let started = Instant::now();
    let tandem = TandemRun {
        tandem: Path::new(TANDEM),
        dir: &dir.path,
        name: "corpus",
        control: Some(&control),
    }
    .start(&box_ns, &toml, "vrrp: running", LIMIT)
    .unwrap_or_else(|e| panic!("{file}: tandem run did not start: {e}\n{toml}"));
    // MASTER where nobody else speaks, once the master-down interval (3 adverts and a skew) has
    // passed; an instance whose interval is longer than WAIT_MASTER is asserted BACKUP (running,
    // waiting out that interval), not INIT.
    let running = |instance: &str| -> &'static [&'static str] {
        let advert_cs = config.vrrp_instance(instance).unwrap().advert_interval_cs;
        if Duration::from_millis(u64::from(advert_cs) * 40) <= WAIT_MASTER {
            &["MASTER"]
        } else {
            &["BACKUP"]
        }
    };
    let wait_states = |what: &str, faults: &BTreeSet<String>| -> String {
        let wanted = |instance: &str| -> &[&str] {
            if faults.contains(instance) {
                &["FAULT"]
            } else {
                running(instance)
            }
        };
        let since = Instant::now();
        let mut last = String::new();
        while since.elapsed() < LIMIT {
            last = tandem_query(TANDEM.as_ref(), &control, &["vrrp", "status"]);
            if instances
                .iter()
                .all(|i| instance_state(&last, i).is_some_and(|state| wanted(i).contains(&state)))
            {
                return last;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        for instance in &instances {
            let state = instance_state(&last, instance);
            assert!(
                state.is_some_and(|s| wanted(instance).contains(&s)),
                "{file} ({what}): instance {instance} is {state:?}, not {:?}\n{last}\nconsole:\n{}",
                wanted(instance),
                tandem.console.transcript()
            );
        }
        last
    };
    let last = wait_states("every link up", &faults);
    let up_after = started.elapsed();

    // A link tracked with weight 0 (keepalived's track_interface default) that carries no
    // instance and no VIP goes down: the instances tracking it, and their sync groups, fault;
    // back up, they run again.
    let carrying: BTreeSet<&str> = config
        .vrrp
        .iter()
        .flat_map(|i| {
            std::iter::once(i.interface.as_str())
                .chain(i.vips.iter().filter_map(|v| v.interface.as_deref()))
        })
        .collect();
    let tracked = config.vrrp.iter().find_map(|i| {
        i.track_interfaces
            .iter()
            .find(|t| t.weight == 0 && !carrying.contains(t.name.as_str()))
            .map(|t| t.name.to_string())
    });
    let mut fault_line = String::new();
    if let Some(link) = tracked {
        let mut down = faults.clone();
        down.extend(
            config
                .vrrp
                .iter()
                .filter(|i| {
                    i.track_interfaces
                        .iter()
                        .any(|t| t.weight == 0 && t.name.as_str() == link)
                })
                .map(|i| i.name.to_string()),
        );
        for group in config.sync_groups.iter() {
            if group.members.iter().any(|m| down.contains(m.as_str())) {
                down.extend(group.members.iter().map(ToString::to_string));
            }
        }
        far.ip(&["link", "set", &link, "down"]).unwrap();
        wait_states(&format!("{link} down"), &down);
        far.ip(&["link", "set", &link, "up"]).unwrap();
        wait_states(&format!("{link} up again"), &faults);
        fault_line = format!(
            "; {link} down faulted {} instance(s), up again ran them",
            down.len() - faults.len()
        );
    }
    let masters = instances
        .iter()
        .filter(|i| instance_state(&last, i) == Some("MASTER"))
        .count();
    let not_carried = imported
        .notes
        .iter()
        .filter(|n| n.kind != tandem_config::import::NoteKind::Adjusted)
        .count();
    Some(format!(
        "{file}: {} instance(s) on {} link(s) running in {:.1} s ({masters} MASTER, {} BACKUP, {} FAULT as configured; {not_carried} note(s) not carried/invalid){fault_line}",
        instances.len(),
        names.len(),
        up_after.as_secs_f64(),
        instances.len() - faults.len() - masters,
        faults.len(),
    ))
}

#[test]
fn every_corpus_file_with_vrrp_runs_its_instances() {
    let files = corpus();
    // A few at a time: each file mostly waits out its instances' master-down timers (about
    // 3 s). Workers take the next file as soon as theirs is done (no batch waits for its
    // slowest file); the lines stay in corpus order.
    const WORKERS: usize = 6;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..WORKERS)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(path) = files.get(index) else {
                            return done;
                        };
                        if let Some(line) = run_file(path, index) {
                            done.push((index, line));
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    results.sort();
    let lines: Vec<String> = results.into_iter().map(|(_, line)| line).collect();
    for line in &lines {
        println!("{line}");
    }
    // 12 samples, 1 seed and the 2 directors have vrrp_instance blocks.
    assert_eq!(lines.len(), 15, "{lines:#?}");
}
