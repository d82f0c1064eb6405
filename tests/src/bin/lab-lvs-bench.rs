//! LAB ONLY: IPVS load figures measured inside a lab box (the host kernel has no IPVS).
//! Put into the lab image by `make lab-image` and started through `tandem.lab_exec=` by the
//! `lvsbench` host binary, which prints the `bench:` lines this writes to the console.
//!
//! Figures: cold load of 1000 services x 10 real servers (diff against the empty kernel table
//! plus batched genetlink apply), read-back of the whole table, a no-op re-sync (diff against
//! the read-back: must be zero ops), one weight change (per-service diff + apply), the cold
//! load of 10,000 x 5, and Debian's `ipvsadm -R` of the same tables (bench image only).
//!
//! Each phase wants a fresh kernel: IPVS keeps deleted real servers in a "trash" list for
//! about two minutes and walks that whole list on every real-server add, so a load right after
//! a large delete is several times slower (seen here: 10,000 x 5 after deleting 1000 x 10 took
//! 3 s per 6000 ops instead of 0.1 s), which would bias whichever tool goes second. The host
//! side boots one box per phase and passes `lvsbench.phase=<name>` on the kernel command line;
//! without it every phase runs in this one boot, in order.
//! Wall time and CPU time (user + system, getrusage) of this process; the kernel's work inside
//! `sendmsg` is system time of this process.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use nix::sys::resource::{getrusage, UsageWho};
use tandem_ipvs::{AckMode, Executor, OpenError};
use tandem_lvs::{
    diff, diff_service, Forwarding, Op, Protocol, RealServer, RealServerId, Scheduler, ServiceId,
    ServiceSettings, Table, VirtualService,
};

fn cpu() -> Duration {
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(usage) => {
            let micros = |t: nix::sys::time::TimeVal| {
                Duration::from_secs(u64::try_from(t.tv_sec()).unwrap_or(0))
                    + Duration::from_micros(u64::try_from(t.tv_usec()).unwrap_or(0))
            };
            micros(usage.user_time()) + micros(usage.system_time())
        }
        Err(_) => Duration::ZERO,
    }
}

fn table(services: u32, servers: u8) -> Table {
    let mut table = Table::default();
    for i in 0..services {
        let [_, _, hi, lo] = i.to_be_bytes();
        let id = ServiceId::Inet {
            protocol: Protocol::Tcp,
            addr: IpAddr::V4(Ipv4Addr::new(10, 200, hi, lo)),
            port: 80,
        };
        let mut service = VirtualService::new(ServiceSettings::new(Scheduler::WeightedRoundRobin));
        for s in 1..=servers {
            service.real_servers.insert(
                RealServerId {
                    addr: IpAddr::V4(Ipv4Addr::new(10, 201, hi, lo.wrapping_add(s))),
                    port: 80,
                },
                RealServer::new(Forwarding::DirectRouting, 1),
            );
        }
        table.services.insert(id, service);
    }
    table
}

fn apply(exec: &mut Executor, ops: &[Op]) -> usize {
    let requests: Vec<_> = ops.iter().map(Op::to_request).collect();
    match exec.apply(&requests) {
        Ok(refused) => refused.len(),
        Err(error) => {
            println!("lab-lvs-bench: transport error: {error}");
            usize::MAX
        }
    }
}

fn measure<T>(f: impl FnOnce() -> T) -> (T, Duration, Duration) {
    let (wall, cpu0) = (Instant::now(), cpu());
    let out = f();
    (out, wall.elapsed(), cpu().saturating_sub(cpu0))
}

fn report(name: &str, wall: Duration, cpu: Duration) {
    println!("bench: {name}_wall {:.3} ms", wall.as_secs_f64() * 1e3);
    println!("bench: {name}_cpu {:.3} ms", cpu.as_secs_f64() * 1e3);
}

/// The phases, in the order a single boot runs them.
const PHASES: [&str; 4] = [
    "tandem-1000x10",
    "ipvsadm-1000x10",
    "tandem-10000x5",
    "ipvsadm-10000x5",
];

/// `lvsbench.phase=<name>` from the kernel command line, if any.
fn phase_from_cmdline() -> Option<String> {
    std::fs::read_to_string("/proc/cmdline")
        .ok()?
        .split_whitespace()
        .find_map(|word| word.strip_prefix("lvsbench.phase=").map(str::to_owned))
}

fn main() {
    let Some(mut exec) = open_ipvs() else { return };
    let exec = &mut exec;
    match phase_from_cmdline() {
        Some(phase) => run_phase(exec, &phase),
        None => {
            for phase in PHASES {
                run_phase(exec, phase);
            }
        }
    }
    println!("lab-lvs-bench: done");
}

fn run_phase(exec: &mut Executor, phase: &str) {
    match phase {
        "tandem-1000x10" => tandem_small(exec),
        "ipvsadm-1000x10" => {
            let small = table(1000, 10);
            ipvsadm_baseline(exec, &small, "1000x10");
            let _ = apply(exec, &cleanup(&small));
        }
        "tandem-10000x5" => tandem_large(exec),
        "ipvsadm-10000x5" => {
            let large = table(10_000, 5);
            ipvsadm_baseline(exec, &large, "10000x5");
            let _ = apply(exec, &cleanup(&large));
        }
        other => println!("lab-lvs-bench: unknown phase {other}; phases: {PHASES:?}"),
    }
}

/// Deletes every service of `table` (leaves the kernel as found).
fn cleanup(table: &Table) -> Vec<Op> {
    table
        .services
        .keys()
        .map(|id| Op::DeleteService(*id))
        .collect()
}

fn open_ipvs() -> Option<Executor> {
    if let Err(error) = tandem_southbound::kmod::ModuleLoader::for_running_kernel()
        .and_then(|loader| loader.load(["crc32c_generic", "ip_vs", "ip_vs_wrr"]))
    {
        println!("lab-lvs-bench: {error}");
    }
    let mut exec = match Executor::open() {
        Ok(exec) => exec,
        Err(OpenError::FamilyAbsent) => {
            println!("lab-lvs-bench: no IPVS in this kernel");
            return None;
        }
        Err(error) => {
            println!("lab-lvs-bench: {error}");
            return None;
        }
    };
    exec.set_ack_mode(AckMode::ErrorsOnly);
    Some(exec)
}

/// 1000 x 10: cold load, read-back, adopt, one weight change.
fn tandem_small(exec: &mut Executor) {
    let desired = table(1000, 10);

    let (refused, wall, cpu_time) = measure(|| {
        let current = Table::from_kernel(&exec.table().unwrap_or_default());
        let ops = diff(&desired, &current);
        apply(exec, &ops)
    });
    println!("lab-lvs-bench: cold load refused {refused}");
    report("lvs_cold_load_1000x10", wall, cpu_time);

    let (kernel, wall, cpu_time) =
        measure(|| Table::from_kernel(&exec.table().unwrap_or_default()));
    report("lvs_read_back_1000x10", wall, cpu_time);
    println!(
        "lab-lvs-bench: read back {} services {} real servers",
        kernel.services.len(),
        kernel.real_server_count()
    );
    let (ops, wall, cpu_time) = measure(|| diff(&desired, &kernel).len());
    println!("lab-lvs-bench: adopt ops {ops}");
    report("lvs_adopt_diff_1000x10", wall, cpu_time);

    let mut changed = desired.clone();
    let (id, server) = match changed.services.iter_mut().next() {
        Some((id, service)) => {
            let server = service.real_servers.values_mut().next();
            if let Some(server) = server {
                server.weight = 5;
            }
            (*id, service.clone())
        }
        None => return,
    };
    let (refused, wall, cpu_time) = measure(|| {
        let ops = diff_service(&id, Some(&server), kernel.services.get(&id));
        (ops.len(), apply(exec, &ops))
    });
    println!(
        "lab-lvs-bench: weight change ops {} refused {}",
        refused.0, refused.1
    );
    report("lvs_weight_change", wall, cpu_time);

    let _ = apply(exec, &cleanup(&desired));
}

/// 10,000 x 5, cold.
fn tandem_large(exec: &mut Executor) {
    // The large table: 10,000 services x 5 real servers, cold. Applied in tenths so the
    // per-tenth times show whether the cost per operation grows with the table.
    let large = table(10_000, 5);
    let (refused, wall, cpu_time) = measure(|| {
        let current = Table::from_kernel(&exec.table().unwrap_or_default());
        let ops = diff(&large, &current);
        let tenth = ops.len().div_ceil(10).max(1);
        let mut refused = 0;
        for (index, chunk) in ops.chunks(tenth).enumerate() {
            let started = Instant::now();
            refused += apply(exec, chunk);
            println!(
                "lab-lvs-bench: 10000x5 tenth {} ({} ops) {:.1} ms",
                index + 1,
                chunk.len(),
                started.elapsed().as_secs_f64() * 1e3
            );
        }
        refused
    });
    println!("lab-lvs-bench: cold load 10000x5 refused {refused}");
    report("lvs_cold_load_10000x5", wall, cpu_time);
    let _ = apply(exec, &cleanup(&large));
}

/// `ipvsadm -R` of the same table in the same boot (bench image only: `/lab/ipvsadm`), from an
/// empty kernel table; then checks the kernel holds exactly `table` (a diff of zero ops).
fn ipvsadm_baseline(exec: &mut Executor, table: &Table, label: &str) {
    const IPVSADM: &str = "/lab/ipvsadm";
    if !std::path::Path::new(IPVSADM).exists() {
        println!("lab-lvs-bench: no {IPVSADM} (not the bench image): no ipvsadm baseline");
        return;
    }
    let rules = ipvsadm_rules(table);
    let path = format!("/tmp/ipvsadm-{label}.rules");
    if let Err(error) = std::fs::write(&path, rules) {
        println!("lab-lvs-bench: cannot write {path}: {error}");
        return;
    }
    let (status, wall, _) = measure(|| {
        std::fs::File::open(&path).and_then(|rules| {
            std::process::Command::new(IPVSADM)
                .arg("-R")
                .stdin(rules)
                .status()
        })
    });
    match status {
        Ok(status) if status.success() => {}
        other => {
            println!("lab-lvs-bench: ipvsadm -R {label} failed: {other:?}");
            return;
        }
    }
    let kernel = Table::from_kernel(&exec.table().unwrap_or_default());
    let differences = diff(table, &kernel);
    println!(
        "lab-lvs-bench: ipvsadm -R {label} left {} differences{}",
        differences.len(),
        differences
            .first()
            .map(|op| format!(", e.g. {op:?}"))
            .unwrap_or_default()
    );
    // ipvsadm is another process: its CPU time is not ours to count; wall time only.
    println!(
        "bench: ipvsadm_restore_{label}_wall {:.3} ms",
        wall.as_secs_f64() * 1e3
    );
}

/// The table in `ipvsadm -S -n` form (what `ipvsadm -R` reads).
fn ipvsadm_rules(table: &Table) -> String {
    let mut rules = String::new();
    for (id, service) in &table.services {
        let ServiceId::Inet {
            protocol: Protocol::Tcp,
            addr,
            port,
        } = id
        else {
            continue;
        };
        rules.push_str(&format!("-A -t {addr}:{port} -s wrr\n"));
        for (server, settings) in &service.real_servers {
            rules.push_str(&format!(
                "-a -t {addr}:{port} -r {}:{} -g -w {}\n",
                server.addr, server.port, settings.weight
            ));
        }
    }
    rules
}
