//! The config format a box writes during an upgrade, on `tandem run` with a `--state DIR`
//! that the previous firmware wrote (a format 5 blob): while the slot is on trial
//! (`TANDEM_DEBUG_SLOT_ON_TRIAL`, the host's stand-in for a counted slot file) commits are
//! stored as format 5 and a candidate format 5 cannot hold is refused naming the field; booted
//! again on a blessed slot, the next commit is stored as the newest format.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use tandem_config::blob::{self, BlobMeta, MacPolicy};
use tandem_config::storage::{FileDevice, SlotStore, APPLIANCE_SLOT_BYTES};

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

/// Starts `tandem run ARGS` (with `env`) and waits for its ready line.
fn start(args: &[&str], env: &[(&str, &str)]) -> Daemon {
    let mut child = tandem()
        .arg("run")
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .map(Daemon)
        .unwrap();
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "stdout closed before ready:\n{seen}"
        );
        seen.push_str(&line);
        if line.contains("ready") {
            break;
        }
    }
    // Keep reading (and dropping) the console so the daemon never blocks on it.
    std::thread::spawn(move || {
        let mut line = String::new();
        while stdout.read_line(&mut line).is_ok_and(|n| n > 0) {
            line.clear();
        }
    });
    child
}

fn ask(control: &str, words: &[&str]) -> String {
    let output = tandem()
        .arg("--control")
        .arg(control)
        .args(words)
        .output()
        .unwrap();
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The newest generation in the state's config slots and its blob format.
fn newest_stored(state: &Path) -> (u64, u16) {
    let device = FileDevice::open(&state.join("config.slots")).unwrap();
    let mut store = SlotStore::new(device, APPLIANCE_SLOT_BYTES);
    let stored = store.stored(MacPolicy::Unkeyed).unwrap();
    let newest = &stored[0];
    (newest.header.generation, newest.header.format_version)
}

/// A config with a VRRP instance that tracks a check: format 6 content. Never applied here
/// (the commit is refused, and the later run only previews it).
const TRACKING: &str = r#"
[system]
hostname = "tracking"
[[interfaces]]
name = "eth0"
addresses = ["10.0.0.1/24"]
[[vrrp]]
name = "web"
vrid = 51
interface = "eth0"
[[vrrp.vips]]
address = "10.0.0.10"
prefix = 24
[[vrrp.track_checks]]
name = "gw"
address = "10.0.0.254"
port = 80
weight = -20
[vrrp.track_checks.check]
kind = "tcp"
"#;

#[test]
fn a_slot_on_trial_writes_the_format_it_found_and_a_blessed_one_the_newest() {
    let dir = std::env::temp_dir().join(format!("tandem-oldfmt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let state = dir.join("state");
    std::fs::create_dir_all(&state).unwrap();
    // What the previous firmware left: generation 1 as format 5.
    let old = tandem_config::text::from_toml("[system]\nhostname = \"old\"\n").unwrap();
    let meta = BlobMeta {
        generation: 1,
        ..BlobMeta::default()
    };
    let bytes = blob::encode_as(&old, meta, None, 5).unwrap();
    let device = FileDevice::create(&state.join("config.slots"), APPLIANCE_SLOT_BYTES * 2).unwrap();
    let mut store = SlotStore::new(device, APPLIANCE_SLOT_BYTES);
    store.save(&bytes, MacPolicy::Unkeyed).unwrap();
    drop(store);
    let tracking = dir.join("tracking.toml");
    std::fs::write(&tracking, TRACKING).unwrap();
    let tracking = tracking.to_str().unwrap();
    let control = format!("/tmp/tandem-test-{}-oldfmt.sock", std::process::id());
    let args = [
        "--control",
        control.as_str(),
        "--state",
        state.to_str().unwrap(),
    ];
    let newest = blob::FORMAT_VERSION;

    // On trial: format 5, said in status.
    let mut daemon = start(&args, &[("TANDEM_DEBUG_SLOT_ON_TRIAL", "never")]);
    let status = ask(&control, &["status"]);
    assert!(
        status.contains(&format!(
            "status: config format: writing 5 (slot on trial, the firmware before it wrote 5; \
             {newest} after bless)"
        )),
        "{status}"
    );
    assert!(
        status.contains("on trial (TANDEM_DEBUG_SLOT_ON_TRIAL)"),
        "{status}"
    );
    assert!(ask(&control, &["show", "running"]).contains("hostname = \"old\""));
    let set = ask(&control, &["set", "system.hostname", "on-trial"]);
    assert!(set.starts_with("set: system.hostname"), "{set}");
    let committed = ask(&control, &["commit"]);
    assert!(committed.contains("generation 2"), "{committed}");
    assert_eq!(newest_stored(&state), (2, 5));
    // Format 6 content: previewed as refused, refused by commit, nothing written or applied.
    let loaded = ask(&control, &["load", tracking]);
    assert!(loaded.contains("is the candidate now"), "{loaded}");
    let preview = ask(&control, &["preview"]);
    assert!(
        preview.contains("a commit is refused") && preview.contains("vrrp.web.track_checks"),
        "{preview}"
    );
    let refused = ask(&control, &["commit"]);
    for words in [
        "does not fit config format 5",
        "delete vrrp.web.track_checks",
        "both boxes must bless firmware that reads format 6",
    ] {
        assert!(refused.contains(words), "{words}: {refused}");
    }
    assert!(ask(&control, &["status"]).contains("config generation=2 candidate=changed"));
    assert_eq!(newest_stored(&state), (2, 5));
    assert!(ask(&control, &["show", "running"]).contains("hostname = \"on-trial\""));
    let _ = ask(&control, &["poweroff"]);
    assert!(daemon.0.wait().unwrap().success());

    // Booted again on a blessed slot (no trial): the store still holds format 5, and the next
    // commit writes the newest format; the candidate that did not fit now would.
    let mut daemon = start(&args, &[]);
    let status = ask(&control, &["status"]);
    assert!(
        status.contains(&format!("status: config format: writing {newest}\n")),
        "{status}"
    );
    assert_eq!(newest_stored(&state), (2, 5));
    let set = ask(&control, &["set", "system.hostname", "blessed"]);
    assert!(set.starts_with("set: system.hostname"), "{set}");
    let committed = ask(&control, &["commit"]);
    assert!(committed.contains("generation 3"), "{committed}");
    assert_eq!(newest_stored(&state), (3, newest));
    let loaded = ask(&control, &["load", tracking]);
    assert!(loaded.contains("is the candidate now"), "{loaded}");
    let preview = ask(&control, &["preview"]);
    assert!(!preview.contains("a commit is refused"), "{preview}");
    let _ = ask(&control, &["poweroff"]);
    assert!(daemon.0.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}
