//! Running host tools (`ip`) for the harness. The appliance never does this; the lab host may.

use std::process::Command;
use std::time::{Duration, Instant};

/// Runs a command, returning stdout, or an error carrying the command line and its stderr.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// `ip ARGS...`.
pub fn ip(args: &[&str]) -> Result<String, String> {
    run("ip", args)
}

/// `ip -n NETNS ARGS...`.
pub fn ip_in(netns: &str, args: &[&str]) -> Result<String, String> {
    let mut all = vec!["-n", netns];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// `ip netns exec NETNS PROGRAM ARGS...`.
pub fn exec_in(netns: &str, program: &str, args: &[&str]) -> Result<String, String> {
    let mut all = vec!["netns", "exec", netns, program];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// Pings `address` from namespace `netns` (one echo, 1 s wait, again and again) until one
/// answer comes back: true, or `timeout` passes: false.
pub fn reach(netns: &str, address: &str, timeout: Duration) -> bool {
    let started = Instant::now();
    while started.elapsed() < timeout {
        if exec_in(netns, "ping", &["-c", "1", "-W", "1", address]).is_ok() {
            return true;
        }
    }
    false
}
