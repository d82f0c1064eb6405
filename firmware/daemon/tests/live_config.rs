//! Live config on the host tier: commits applied without a restart, commit-confirm, rollback
//! and `--state`, against a `tandem run` VRRP pair and against keepalived, with a client
//! pinging the VIP every millisecond.
//!
//! What must hold: a priority change, an added VIP and an added LVS real server lose no ping
//! and make no transition on the instances they do not change; `commit --confirm 5` without
//! `confirm` is back on the previous config within 6 s; `rollback` is a commit of the stored
//! generation; a restart with the same `--state DIR` runs the last committed generation.
//! (The host kernel has no IPVS: the LVS engine reports it cannot open it, which is beside the
//! point here; the lab tests apply real-server changes to a real IPVS table.)

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tandem_lab::host::{
    keepalived, tandem_query, wait_tandem_query, HostProcess, HostSegment, ScratchDir, TandemRun,
};
use tandem_lab::netns::Netns;
use tandem_lab::pinger::Pinger;
use tandem_lab::vrrp_status::{instance_block, instance_state, transitions};

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const LIMIT: Duration = Duration::from_secs(20);
const WEB_VIP: &str = "192.0.2.100";
const OTHER_VIP: &str = "192.0.2.101";

struct Box_ {
    ns: Netns,
    name: &'static str,
    address: &'static str,
    priority: u8,
}

struct Site {
    _segment: HostSegment,
    boxes: Vec<Box_>,
    client: Netns,
    dir: ScratchDir,
}

impl Site {
    fn new(tag: &str, boxes: &[(&'static str, &'static str, u8)]) -> Site {
        let mut segment = HostSegment::new(&format!("{tag}-sg")).unwrap();
        let client = Netns::new(&format!("{tag}-c")).unwrap();
        segment.attach(&client, "eth0").unwrap();
        client
            .ip(&["addr", "add", "192.0.2.10/24", "dev", "eth0"])
            .unwrap();
        let boxes = boxes
            .iter()
            .map(|(name, address, priority)| {
                let ns = Netns::new(&format!("{tag}-{name}")).unwrap();
                segment.attach(&ns, "eth0").unwrap();
                Box_ {
                    ns,
                    name,
                    address,
                    priority: *priority,
                }
            })
            .collect();
        Site {
            _segment: segment,
            boxes,
            client,
            dir: ScratchDir::new(tag).unwrap(),
        }
    }

    fn control(&self, index: usize) -> PathBuf {
        self.dir
            .path
            .join(format!("{}.sock", self.boxes[index].name))
    }

    fn state(&self, index: usize) -> PathBuf {
        self.dir
            .path
            .join(format!("{}.state", self.boxes[index].name))
    }

    fn config(&self, index: usize) -> String {
        let b = &self.boxes[index];
        let mut config = format!(
            "[system]\nhostname = \"{}\"\n\n[[interfaces]]\nname = \"eth0\"\naddresses = [\"{}/24\"]\n",
            b.name, b.address
        );
        for (name, vrid, vip) in [("web", 51, WEB_VIP), ("other", 52, OTHER_VIP)] {
            config.push_str(&format!(
                "\n[[vrrp]]\nname = \"{name}\"\nvrid = {vrid}\ninterface = \"eth0\"\npriority = {}\n\
                 advert_interval_cs = 10\naccept_mode = true\n\n[[vrrp.vips]]\naddress = \"{vip}\"\nprefix = 24\n",
                b.priority
            ));
        }
        config
    }

    /// Starts box `index` with `-c` seeding its `--state` (a state holding a generation wins).
    fn start(&self, index: usize, seed: bool) -> HostProcess {
        let control = self.control(index);
        let state = self.state(index);
        let config = self.config(index);
        TandemRun {
            tandem: Path::new(TANDEM),
            dir: &self.dir.path,
            name: self.boxes[index].name,
            control: Some(&control),
        }
        .start_with(
            &self.boxes[index].ns,
            seed.then_some(config.as_str()),
            &["--state", state.to_str().unwrap()],
            "vrrp: running",
            LIMIT,
        )
        .unwrap()
    }

    fn ask(&self, index: usize, words: &[&str]) -> String {
        tandem_query(TANDEM.as_ref(), &self.control(index), words)
    }

    fn wait(
        &self,
        index: usize,
        words: &[&str],
        what: &str,
        check: impl Fn(&str) -> bool,
    ) -> String {
        wait_tandem_query(TANDEM.as_ref(), &self.control(index), words, LIMIT, check)
            .unwrap_or_else(|last| {
                panic!(
                    "{} never showed {what}; last answer:\n{last}",
                    self.boxes[index].name
                )
            })
    }

    /// Waits until `instance`'s configured priority is `priority`.
    fn wait_priority(&self, index: usize, instance: &str, priority: u8) {
        let wanted = format!("(configured {priority})");
        self.wait(
            index,
            &["vrrp", "status"],
            &format!("{instance} {wanted}"),
            |text| instance_block(text, instance).contains(&wanted),
        );
    }

    fn wait_state(&self, index: usize, instance: &str, state: &str) {
        self.wait(
            index,
            &["vrrp", "status"],
            &format!("{instance} {state}"),
            |text| {
                instance_state(text, instance).map(str::to_ascii_lowercase)
                    == Some(state.to_owned())
            },
        );
    }

    /// Commits with `words` after `commit`; panics unless the answer says it was applied.
    fn commit(&self, index: usize, extra: &[&str]) -> String {
        let mut words = vec!["commit"];
        words.extend_from_slice(extra);
        let answer = self.ask(index, &words);
        assert!(
            answer.contains("applied"),
            "commit on {}: {answer}",
            self.boxes[index].name
        );
        // Many adverts (100 ms) under the new config before the next step.
        std::thread::sleep(Duration::from_secs(1));
        answer
    }

    fn set(&self, index: usize, path: &str, value: &str) {
        let answer = self.ask(index, &["set", path, value]);
        assert!(answer.starts_with("set: "), "{answer}");
        assert!(!answer.contains("error"), "{answer}");
    }
}

#[test]
fn live_commits_lose_no_ping_and_leave_unchanged_instances_alone() {
    let site = Site::new(
        "lcpair",
        &[("a", "192.0.2.2", 150), ("b", "192.0.2.3", 100)],
    );
    let a = site.start(0, true);
    let b = site.start(1, true);
    for instance in ["web", "other"] {
        site.wait_state(0, instance, "master");
        site.wait_state(1, instance, "backup");
    }
    let before = (
        transitions(&a.console.transcript(), "other"),
        transitions(&b.console.transcript(), "other"),
        transitions(&a.console.transcript(), "web"),
        transitions(&b.console.transcript(), "web"),
    );
    let ping = Pinger::start(&site.client, WEB_VIP.parse().unwrap()).unwrap();
    assert!(
        ping.wait_reply_after(tandem_lab::pinger::now_unix(), LIMIT),
        "no ping reply"
    );

    // 1. A priority change on the master (still above the backup): hitless.
    site.set(0, "vrrp.web.priority", "160");
    let answer = site.ask(0, &["preview"]);
    assert!(answer.contains("150 -> 160"), "{answer}");
    assert!(answer.contains("hitless"), "{answer}");
    let answer = site.commit(0, &["--comment", "web priority 160"]);
    assert!(answer.contains("priority 150 -> 160"), "{answer}");
    site.wait_priority(0, "web", 160);

    // 2. An added VIP on both boxes, the backup first, then the master.
    for index in [1, 0] {
        site.set(index, "vrrp.web.vips", "[{ address = \"192.0.2.102\", prefix = 24 }, { address = \"192.0.2.100\", prefix = 24 }]");
        let answer = site.commit(index, &[]);
        assert!(answer.contains("192.0.2.102"), "{answer}");
    }
    let pinged = site
        .client
        .exec("ping", &["-c", "1", "-W", "2", "192.0.2.102"]);
    assert!(pinged.is_ok(), "the added VIP does not answer: {pinged:?}");

    // 3. An added virtual service with a real server: only the LVS engine is touched.
    for index in [1, 0] {
        site.set(index, "virtual_services.http.address", "192.0.2.100");
        site.set(index, "virtual_services.http.port", "80");
        site.set(
            index,
            "virtual_services.http.real_servers.rs1.address",
            "192.0.2.50",
        );
        let answer = site.commit(index, &[]);
        assert!(answer.contains("lvs"), "{answer}");
    }

    let report = ping.stop().unwrap();
    assert!(report.sent > 4000, "{report:?}");
    assert_eq!(report.lost, 0, "pings lost during live commits: {report:?}");
    let after = (
        transitions(&a.console.transcript(), "other"),
        transitions(&b.console.transcript(), "other"),
        transitions(&a.console.transcript(), "web"),
        transitions(&b.console.transcript(), "web"),
    );
    assert_eq!(before, after, "a live commit caused a VRRP transition");
    let history = site.ask(0, &["history"]);
    assert!(history.contains("web priority 160"), "{history}");
    assert!(history.contains("control-socket"), "{history}");
}

#[test]
fn commit_confirm_rollback_and_state_survive_as_promised() {
    let site = Site::new("lcconf", &[("a", "192.0.2.2", 150)]);
    let mut a = site.start(0, true);
    site.wait_state(0, "web", "master");
    let generation = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("status: config generation="))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|g| g.parse::<u64>().ok())
            .unwrap()
    };
    assert_eq!(generation(&site.ask(0, &["status"])), 1);

    // Unconfirmed: back on the previous config within 6 s, as a new generation.
    site.set(0, "vrrp.web.priority", "120");
    let answer = site.commit(0, &["--confirm", "5"]);
    assert!(
        answer.contains("unless `confirm` arrives within 5 s"),
        "{answer}"
    );
    let committed = Instant::now();
    site.wait_priority(0, "web", 120);
    site.wait_priority(0, "web", 150);
    assert!(
        committed.elapsed() < Duration::from_secs(7),
        "rolled back after {:?}",
        committed.elapsed()
    );
    assert!(
        committed.elapsed() >= Duration::from_secs(4),
        "rolled back early: {:?}",
        committed.elapsed()
    );
    assert_eq!(generation(&site.ask(0, &["status"])), 3);
    a.console
        .wait_for_any_time("was not confirmed in time", LIMIT)
        .unwrap();
    let history = site.ask(0, &["history"]);
    assert!(history.contains("confirm-timeout"), "{history}");

    // Confirmed in time: it stays.
    site.set(0, "vrrp.web.priority", "130");
    site.commit(0, &["--confirm", "30"]);
    let answer = site.ask(0, &["confirm"]);
    assert!(answer.contains("generation 4 stays"), "{answer}");

    // Rollback is a commit of the stored generation before.
    let answer = site.ask(0, &["rollback"]);
    assert!(answer.contains("generation 5 applied"), "{answer}");
    site.wait_priority(0, "web", 150);
    let shown = site.ask(0, &["show", "running"]);
    assert!(shown.contains("priority = 150"), "{shown}");

    // An invalid candidate is refused whole and changes nothing.
    let answer = site.ask(0, &["set", "vrrp.web.priority", "abc"]);
    assert!(answer.contains("priority"), "{answer}");
    let answer = site.ask(0, &["set", "vrrp.web.vrid", "0"]);
    assert!(answer.starts_with("set: "), "{answer}");
    let answer = site.ask(0, &["commit"]);
    assert!(answer.contains("nothing was committed"), "{answer}");
    assert_eq!(generation(&site.ask(0, &["status"])), 5);
    site.ask(0, &["discard"]);

    // Restart on the same --state, without -c: the last committed generation runs.
    a.signal(nix::sys::signal::Signal::SIGTERM).unwrap();
    a.wait(LIMIT).unwrap();
    drop(a);
    let _a = site.start(0, false);
    assert_eq!(generation(&site.ask(0, &["status"])), 5);
    site.wait_priority(0, "web", 150);
}

#[test]
fn live_commits_against_keepalived_lose_no_ping() {
    let site = Site::new("lcka", &[("a", "192.0.2.2", 150), ("k", "192.0.2.3", 100)]);
    let _a = site.start(0, true);
    let keepalived_config = format!(
        "global_defs {{\n  router_id k\n}}\n\
         vrrp_instance web {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 100\n  \
         advert_int 0.1\n  version 3\n  virtual_ipaddress {{\n    {WEB_VIP}/24 dev eth0\n  }}\n}}\n\
         vrrp_instance other {{\n  state BACKUP\n  interface eth0\n  virtual_router_id 52\n  priority 100\n  \
         advert_int 0.1\n  version 3\n  virtual_ipaddress {{\n    {OTHER_VIP}/24 dev eth0\n  }}\n}}\n"
    );
    site.boxes[1]
        .ns
        .ip(&["addr", "add", "192.0.2.3/24", "dev", "eth0"])
        .unwrap();
    let k = keepalived(
        &site.boxes[1].ns,
        "k",
        &keepalived_config,
        &site.dir.path.join("k"),
    )
    .unwrap();
    site.wait_state(0, "web", "master");
    site.wait_state(0, "other", "master");
    k.console
        .wait_for_any_time("(web) Entering BACKUP STATE", LIMIT)
        .unwrap();
    let ping = Pinger::start(&site.client, WEB_VIP.parse().unwrap()).unwrap();
    assert!(
        ping.wait_reply_after(tandem_lab::pinger::now_unix(), LIMIT),
        "no ping reply"
    );
    let masters_before = k
        .console
        .transcript()
        .matches("Entering MASTER STATE")
        .count();
    for priority in ["140", "160", "150"] {
        site.set(0, "vrrp.web.priority", priority);
        site.commit(0, &[]);
        site.wait_priority(0, "web", priority.parse().unwrap());
    }
    let report = ping.stop().unwrap();
    assert!(report.sent > 2000, "{report:?}");
    assert_eq!(report.lost, 0, "pings lost: {report:?}");
    let transcript = k.console.transcript();
    assert_eq!(
        transcript.matches("Entering MASTER STATE").count(),
        masters_before,
        "keepalived took over during a live commit:\n{transcript}"
    );
}
