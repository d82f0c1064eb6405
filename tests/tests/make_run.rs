//! `make run </dev/null`: the lab binary boots box-a, box-b, rs1 and rs2, prints one status table
//! with every box ready and the peer cable reachable, each director's public bond with both
//! ports up, shows box-a balancing the VIP over rs1 and rs2, exits 0, and leaves nothing behind.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::process::{Command, Stdio};

#[test]
fn lab_without_a_terminal_prints_four_ready_boxes_and_cleans_up() {
    let output = Command::new(env!("CARGO_BIN_EXE_lab"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "lab failed:\n{stdout}\n{stderr}");
    for name in ["box-a", "box-b", "rs1", "rs2"] {
        let row = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row for {name}:\n{stdout}"));
        let columns: Vec<&str> = row.split_whitespace().collect();
        let ready: f64 = columns[1].parse().unwrap();
        assert!(ready > 0.0, "{row}");
        let (up, total) = columns[2].split_once('/').unwrap();
        assert_eq!(up, total, "all NICs up: {row}");
        if name.starts_with("box") {
            assert_eq!(columns[3], "reachable", "{row}");
        }
    }
    assert!(stdout.contains("all 4 boxes ready"), "{stdout}");
    // The directors' public side is an active-backup bond of two NICs, both up.
    for name in ["box-a", "box-b"] {
        let bond = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{name}: bond bond0: ")))
            .unwrap_or_else(|| panic!("no bond line for {name}:\n{stdout}"));
        assert!(
            bond.contains("up mode active-backup")
                && bond.contains("carrier yes")
                && bond.contains("2 of 2 ports up"),
            "{bond}"
        );
    }
    // box-a balances the lab's VIP over both real servers.
    let balance = stdout
        .lines()
        .find(|l| l.starts_with("client -> http://192.0.2.10/"))
        .unwrap();
    let count = |who: &str| -> usize {
        let after = balance.split(&format!("{who} answered ")).nth(1).unwrap();
        after
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert!(count("rs1") > 0 && count("rs2") > 0, "{balance}");
    // The lab id names the child's pid: nothing of it may remain.
    let id = stderr
        .split("lab ")
        .nth(1)
        .and_then(|s| s.split(':').next())
        .unwrap()
        .to_owned();
    // Named namespaces are the files under /run/netns (what `ip netns list` reads).
    let namespaces: Vec<String> = std::fs::read_dir("/run/netns")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        !namespaces.iter().any(|name| name.contains(&id)),
        "{id} left behind: {namespaces:?}"
    );
    let qemus = Command::new("pgrep")
        .args(["-f", &format!("tandem-lab/{id}/")])
        .output()
        .unwrap();
    assert!(qemus.stdout.is_empty(), "qemu of {id} left behind");
    assert!(!std::path::Path::new("/tmp/tandem-lab").join(&id).exists());
}
