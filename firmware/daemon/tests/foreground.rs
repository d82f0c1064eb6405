//! `tandem run` on a normal host: the daemon in the foreground, without init duties. It answers
//! console commands on stdin and stops cleanly on SIGTERM and on `poweroff`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

fn tandem() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
}

/// Kills the daemon if the test fails half-way, so no `tandem run` outlives it.
struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Daemon {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Daemon {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

/// A control socket path of this test's own.
fn socket(tag: &str) -> String {
    format!("/tmp/tandem-test-{}-{tag}.sock", std::process::id())
}

/// Starts `tandem run ARGS` with a piped console and waits for its ready line.
fn start(args: &[&str], stdin: Stdio) -> (Daemon, BufReader<std::process::ChildStdout>) {
    let mut child = tandem()
        .arg("run")
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .spawn()
        .map(Daemon)
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    read_until(&mut stdout, "ready");
    (child, stdout)
}

fn read_until(reader: &mut impl BufRead, pattern: &str) -> String {
    let mut seen = String::new();
    for _ in 0..200 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap() == 0 {
            panic!("stdout closed before `{pattern}`; got:\n{seen}");
        }
        seen.push_str(&line);
        if line.contains(pattern) {
            return line;
        }
    }
    panic!("no `{pattern}` in:\n{seen}");
}

#[test]
fn version_works_anywhere() {
    let output = tandem().arg("--version").output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        concat!("tandem ", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_arguments_exit_2_with_usage() {
    let output = tandem().arg("frobnicate").output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown command `frobnicate`") && stderr.contains("usage:"),
        "{stderr}"
    );
    let output = tandem()
        .args(["run", "-c", "/nonexistent/tandem.toml"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/tandem.toml"));
}

#[test]
fn foreground_daemon_answers_the_console_and_stops_on_sigterm() {
    let (mut child, mut stdout) = start(
        &["--name", "fg-test", "--control", &socket("fg")],
        Stdio::piped(),
    );
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"status\n").unwrap();
    let line = read_until(&mut stdout, "status: name=");
    assert!(line.contains("name=fg-test board=-"), "{line}");
    read_until(&mut stdout, "status: peer none");
    stdin.write_all(b"bogus\n").unwrap();
    read_until(&mut stdout, "unknown command `bogus`");

    // The same commands over the control socket, from a second tandem process.
    let asked = tandem()
        .args(["--control", &socket("fg"), "status"])
        .output()
        .unwrap();
    assert!(asked.status.success());
    let answer = String::from_utf8_lossy(&asked.stdout);
    assert!(
        answer.contains("status: name=fg-test") && answer.ends_with("status: end\n"),
        "{answer}"
    );
    let asked = tandem()
        .args(["--control", &socket("fg"), "vrrp", "status"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&asked.stdout).contains("vrrp: not configured"));
    // A second daemon on the same socket is refused instead of stealing it.
    let second = tandem()
        .args(["run", "--control", &socket("fg")])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&second.stderr).contains("another daemon answers"));

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    read_until(&mut stdout, "SIGTERM");
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn foreground_poweroff_stops_and_closed_stdin_keeps_running() {
    let (mut child, mut stdout) = start(
        &["--name", "fg2", "--control", &socket("fg2")],
        Stdio::piped(),
    );
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"poweroff\n").unwrap();
    read_until(&mut stdout, "stopped");
    assert!(child.wait().unwrap().success());

    // Headless (stdin at EOF): the daemon keeps running, idles, and stops when told to over
    // the control socket.
    let (mut child, _stdout) = start(&["--control", &socket("fg3")], Stdio::null());
    std::thread::sleep(Duration::from_millis(1500));
    assert!(
        child.try_wait().unwrap().is_none(),
        "daemon exited when stdin closed"
    );
    // A closed console must not turn the event loop into a busy loop.
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", child.id())).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let cpu_ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    assert!(
        cpu_ticks < 50,
        "headless daemon used {cpu_ticks} CPU ticks in 1.5 s"
    );
    let asked = tandem()
        .args(["--control", &socket("fg3"), "poweroff"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&asked.stdout).contains("powering off"));
    assert!(
        child.wait().unwrap().success(),
        "poweroff over the control socket stops it"
    );
    let missing = tandem()
        .args(["--control", &socket("fg3"), "status"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot reach the tandem daemon"));
}

/// Asks the daemon on `control` over the control socket, as a second tandem process does.
fn ask(control: &str, words: &[&str]) -> String {
    let output = tandem()
        .arg("--control")
        .arg(control)
        .args(words)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// `factory-reset` says what it erases and erases nothing; `factory-reset confirm` without it
/// is refused; with it the state's config slots and identity region are erased and the daemon
/// stops (the appliance reboots); started again on the same `--state` with its seed, the box
/// runs the seed as generation 1, its history gone.
#[test]
fn factory_reset_asks_first_then_erases_config_and_keys() {
    let dir = std::env::temp_dir().join(format!("tandem-reset-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let seed = dir.join("seed.toml");
    std::fs::write(&seed, "[system]\nhostname = \"factory\"\n").unwrap();
    let state = dir.join("state");
    let control = socket("reset");
    let args = [
        "--control",
        control.as_str(),
        "-c",
        seed.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ];
    let (mut child, _stdout) = start(&args, Stdio::null());
    let set = ask(&control, &["set", "system.hostname", "changed"]);
    assert!(set.starts_with("set: system.hostname"), "{set}");
    let committed = ask(&control, &["commit", "--comment", "before reset"]);
    assert!(committed.contains("generation 2"), "{committed}");

    // Not asked for: refused, nothing happens.
    let early = ask(&control, &["factory-reset", "confirm"]);
    assert!(early.contains("type `factory-reset` first"), "{early}");
    assert!(ask(&control, &["show", "running"]).contains("hostname = \"changed\""));
    // Asked for: the warning names what goes and what stays.
    let warning = ask(&control, &["factory-reset"]);
    for word in [
        "ERASES",
        "pair key",
        "admin password",
        "firmware is kept",
        "factory-reset confirm",
    ] {
        assert!(warning.contains(word), "{word}: {warning}");
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the warning alone stopped the daemon"
    );
    let done = ask(&control, &["factory-reset", "confirm"]);
    assert!(
        done.contains("erased") && done.contains("Rebooting"),
        "{done}"
    );
    assert!(child.wait().unwrap().success());

    // Every byte of the state's config slots and identity region reads as a fresh device.
    let mut erased = 0usize;
    for entry in std::fs::read_dir(&state).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(bytes.iter().all(|b| *b == 0xFF), "a state file keeps data");
        erased += bytes.len();
    }
    assert!(erased > 0, "no state file found");

    // Started again: the seed runs as generation 1, the old history is gone.
    let (mut child, _stdout) = start(&args, Stdio::null());
    assert!(ask(&control, &["show", "running"]).contains("hostname = \"factory\""));
    let history = ask(&control, &["history"]);
    assert!(!history.contains("before reset"), "{history}");
    let generations: Vec<&str> = history.lines().collect();
    assert_eq!(generations.len(), 1, "{history}");
    assert!(
        generations[0].starts_with("history:     1 (running)"),
        "{history}"
    );
    let _ = ask(&control, &["poweroff"]);
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}
