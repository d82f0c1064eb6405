//! Host network namespaces for tier-4 tests (what this machine's kernel has: veth, bridges,
//! raw sockets, nftables): create, wire with veth, run code inside, delete on drop.

use std::fs::File;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::shell::{exec_in, ip, ip_in};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace that is deleted when dropped.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// Creates `tlab-<pid>-n<k>-<tag>` with loopback up and IPv6 DAD off (addresses usable at
    /// once). The `tlab-<pid>` prefix lets a later lab sweep it if this process dies.
    pub fn new(tag: &str) -> Result<Netns, String> {
        let name = format!(
            "tlab-{}-n{}-{tag}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        ip(&["netns", "add", &name])?;
        let netns = Netns { name };
        netns.ip(&["link", "set", "lo", "up"])?;
        for key in [
            "net.ipv6.conf.all.accept_dad",
            "net.ipv6.conf.default.accept_dad",
        ] {
            netns.exec("sysctl", &["-qw", &format!("{key}=0")])?;
        }
        Ok(netns)
    }

    /// `ip -n <name> ARGS`.
    pub fn ip(&self, args: &[&str]) -> Result<String, String> {
        ip_in(&self.name, args)
    }

    /// Runs a host program inside the namespace.
    pub fn exec(&self, program: &str, args: &[&str]) -> Result<String, String> {
        exec_in(&self.name, program, args)
    }

    /// A command that runs `program` inside the namespace (spawn it as you like).
    pub fn command(&self, program: &str) -> std::process::Command {
        let mut command = std::process::Command::new("ip");
        command.args(["netns", "exec", &self.name, program]);
        command
    }

    /// Runs `f` on a thread that has entered this namespace (sockets it opens live there).
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        let path = format!("/run/netns/{}", self.name);
        let file = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
        std::thread::spawn(move || {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| format!("setns: {e}"))?;
            Ok(f())
        })
        .join()
        .map_err(|_| "thread inside the namespace panicked".to_owned())?
    }

    /// Spawns `f` on a thread inside the namespace and returns its handle.
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<std::thread::JoinHandle<Result<T, String>>, String> {
        spawn_in(&self.name, f)
    }

    /// Interface index of `link` inside the namespace.
    pub fn ifindex(&self, link: &str) -> Result<u32, String> {
        let out = self.ip(&["-o", "link", "show", "dev", link])?;
        out.split(':')
            .next()
            .and_then(|n| n.trim().parse().ok())
            .ok_or_else(|| format!("no ifindex in {out:?}"))
    }
}

/// Spawns `f` on a thread inside the named namespace (one this process did not create, such
/// as a lab client's) and returns its handle.
pub fn spawn_in<T: Send + 'static>(
    name: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<std::thread::JoinHandle<Result<T, String>>, String> {
    let path = format!("/run/netns/{name}");
    let file = File::open(&path).map_err(|e| format!("{path}: {e}"))?;
    Ok(std::thread::spawn(move || {
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| format!("setns: {e}"))?;
        Ok(f())
    }))
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["netns", "del", &self.name]);
    }
}

/// Connects `a` and `b` with a veth pair named `a_link` / `b_link`, both up.
pub fn veth_pair(a: &Netns, a_link: &str, b: &Netns, b_link: &str) -> Result<(), String> {
    a.ip(&[
        "link", "add", a_link, "type", "veth", "peer", "name", b_link, "netns", &b.name,
    ])?;
    a.ip(&["link", "set", a_link, "up"])?;
    b.ip(&["link", "set", b_link, "up"])?;
    Ok(())
}
