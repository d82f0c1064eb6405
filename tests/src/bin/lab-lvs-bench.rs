//! LAB ONLY: IPVS load figures measured inside a lab box (the host kernel has no IPVS).
//! Put into the lab image by `make lab-image` and started through `tandem.lab_exec=` by the
//! `lvsbench` host binary, which prints the `bench:` lines this writes to the console.
//!
//! Figures: cold load of 1000 services x 10 real servers (diff against the empty kernel table
//! plus batched genetlink apply), read-back of the whole table, a no-op re-sync (diff against
//! the read-back: must be zero ops), and one weight change (per-service diff + apply).
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
                    port: 8080,
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

fn main() {
    if let Err(error) = tandem_southbound::kmod::ModuleLoader::for_running_kernel()
        .and_then(|loader| loader.load(["crc32c_generic", "ip_vs", "ip_vs_wrr"]))
    {
        println!("lab-lvs-bench: {error}");
    }
    let mut exec = match Executor::open() {
        Ok(exec) => exec,
        Err(OpenError::FamilyAbsent) => {
            println!("lab-lvs-bench: no IPVS in this kernel");
            return;
        }
        Err(error) => {
            println!("lab-lvs-bench: {error}");
            return;
        }
    };
    exec.set_ack_mode(AckMode::ErrorsOnly);
    let desired = table(1000, 10);

    let (refused, wall, cpu_time) = measure(|| {
        let current = Table::from_kernel(&exec.table().unwrap_or_default());
        let ops = diff(&desired, &current);
        apply(&mut exec, &ops)
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
        (ops.len(), apply(&mut exec, &ops))
    });
    println!(
        "lab-lvs-bench: weight change ops {} refused {}",
        refused.0, refused.1
    );
    report("lvs_weight_change", wall, cpu_time);

    // Leave the kernel as found: delete the bench services.
    let cleanup = |table: &Table| -> Vec<Op> {
        table
            .services
            .keys()
            .map(|id| Op::DeleteService(*id))
            .collect()
    };
    let _ = apply(&mut exec, &cleanup(&desired));

    // The large table: 10,000 services x 5 real servers, cold.
    let large = table(10_000, 5);
    let (refused, wall, cpu_time) = measure(|| {
        let current = Table::from_kernel(&exec.table().unwrap_or_default());
        let ops = diff(&large, &current);
        apply(&mut exec, &ops)
    });
    println!("lab-lvs-bench: cold load 10000x5 refused {refused}");
    report("lvs_cold_load_10000x5", wall, cpu_time);
    let _ = apply(&mut exec, &cleanup(&large));
    println!("lab-lvs-bench: done");
}
