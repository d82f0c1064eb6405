//! `tandem run` on a normal host: the daemon in the foreground, without init duties. It answers
//! console commands on stdin and stops cleanly on SIGTERM and on `poweroff`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

fn tandem() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tandem"))
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
    let mut child = tandem()
        .args(["run", "--name", "fg-test"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    read_until(&mut stdout, "ready");
    stdin.write_all(b"status\n").unwrap();
    let line = read_until(&mut stdout, "status: name=");
    assert!(line.contains("name=fg-test board=-"), "{line}");
    read_until(&mut stdout, "status: peer none");
    stdin.write_all(b"bogus\n").unwrap();
    read_until(&mut stdout, "unknown command `bogus`");
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
    let mut child = tandem()
        .args(["run", "--name", "fg2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    read_until(&mut stdout, "ready");
    stdin.write_all(b"poweroff\n").unwrap();
    read_until(&mut stdout, "stopped");
    assert!(child.wait().unwrap().success());

    // Headless (stdin at EOF): the daemon keeps running until told to stop.
    let mut child = tandem()
        .args(["run"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    read_until(&mut stdout, "ready");
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        child.try_wait().unwrap().is_none(),
        "daemon exited when stdin closed"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}
