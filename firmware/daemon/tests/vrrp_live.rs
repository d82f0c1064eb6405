//! Live VRRP commits on the host tier, a `tandem run` pair in network namespaces: what the VRRP
//! engine does with a committed config (`EngineRequest::Apply`).
//!
//! - A VIP added on the master first: the backup, still on the old address list, keeps
//!   following the master (address-list grace, shown in its status) instead of discarding its
//!   adverts and taking over; once the backup is committed too the grace ends. No transition,
//!   no lost ping.
//! - Instances added and removed: an added one starts and elects, a removed master hands over
//!   with priority 0 (the partner takes over after Skew_Time), an instance the commit does not
//!   change makes no transition, and one that cannot run is reported while the rest applies.
//! - Accept_Mode of a master follows the changes: an added VIP is dropped too (the table grows
//!   by it), and Accept_Mode turned on removes the drops, without a transition.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::path::{Path, PathBuf};
use std::time::Duration;

use tandem_lab::host::{
    tandem_query, wait_tandem_query, HostProcess, HostSegment, ScratchDir, TandemRun,
};
use tandem_lab::netns::Netns;
use tandem_lab::pinger::Pinger;
use tandem_lab::vrrp_status::{self, instance_state};

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const LIMIT: Duration = Duration::from_secs(20);
const WEB_VIP: &str = "192.0.2.100";
const OTHER_VIP: &str = "192.0.2.101";
const ADDED_VIP: &str = "192.0.2.102";
const BOXES: [(&str, &str, u8); 2] = [("a", "192.0.2.2", 150), ("b", "192.0.2.3", 100)];

struct Site {
    _segment: HostSegment,
    boxes: Vec<Netns>,
    client: Netns,
    dir: ScratchDir,
}

impl Site {
    fn new(tag: &str) -> Site {
        let mut segment = HostSegment::new(&format!("{tag}-sg")).unwrap();
        let client = Netns::new(&format!("{tag}-c")).unwrap();
        segment.attach(&client, "eth0").unwrap();
        client
            .ip(&["addr", "add", "192.0.2.10/24", "dev", "eth0"])
            .unwrap();
        let boxes = BOXES
            .iter()
            .map(|(name, _, _)| {
                let ns = Netns::new(&format!("{tag}-{name}")).unwrap();
                segment.attach(&ns, "eth0").unwrap();
                ns
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
        self.dir.path.join(format!("{}.sock", BOXES[index].0))
    }

    /// Box `index` with instance `web` (VRID 51, 100 ms adverts, Accept_Mode on).
    fn start(&self, index: usize) -> HostProcess {
        self.start_with(index, true)
    }

    fn start_with(&self, index: usize, accept_mode: bool) -> HostProcess {
        let (name, address, priority) = BOXES[index];
        let config = format!(
            "[system]\nhostname = \"{name}\"\n\n[[interfaces]]\nname = \"eth0\"\naddresses = [\"{address}/24\"]\n\n\
             [[vrrp]]\nname = \"web\"\nvrid = 51\ninterface = \"eth0\"\npriority = {priority}\n\
             advert_interval_cs = 10\naccept_mode = {accept_mode}\n\n[[vrrp.vips]]\naddress = \"{WEB_VIP}\"\nprefix = 24\n"
        );
        let control = self.control(index);
        let state = self.dir.path.join(format!("{name}.state"));
        TandemRun {
            tandem: Path::new(TANDEM),
            dir: &self.dir.path,
            name,
            control: Some(&control),
        }
        .start_with(
            &self.boxes[index],
            Some(config.as_str()),
            &["--state", state.to_str().unwrap()],
            "vrrp: running",
            LIMIT,
        )
        .unwrap()
    }

    fn ask(&self, index: usize, words: &[&str]) -> String {
        tandem_query(TANDEM.as_ref(), &self.control(index), words)
    }

    fn wait(&self, index: usize, what: &str, check: impl Fn(&str) -> bool) -> String {
        wait_tandem_query(
            TANDEM.as_ref(),
            &self.control(index),
            &["vrrp", "status"],
            LIMIT,
            check,
        )
        .unwrap_or_else(|last| {
            panic!(
                "{} never showed {what}; last status:\n{last}",
                BOXES[index].0
            )
        })
    }

    fn wait_state(&self, index: usize, instance: &str, state: &str) -> String {
        self.wait(index, &format!("{instance} {state}"), |text| {
            instance_state(text, instance) == Some(state)
        })
    }

    fn set(&self, index: usize, path: &str, value: &str) {
        let answer = self.ask(index, &["set", path, value]);
        assert!(answer.starts_with("set: "), "{answer}");
        assert!(!answer.contains("error"), "{answer}");
    }

    /// Commits the candidate; panics unless the answer says it was applied.
    fn commit(&self, index: usize) -> String {
        let answer = self.ask(index, &["commit"]);
        assert!(
            answer.contains("applied"),
            "commit on {}: {answer}",
            BOXES[index].0
        );
        answer
    }

    /// Adds instance `other` (VRID 52) with this box's priority.
    fn add_other(&self, index: usize) -> String {
        let priority = BOXES[index].2.to_string();
        for (path, value) in [
            ("vrrp.other.vrid", "52"),
            ("vrrp.other.interface", "eth0"),
            ("vrrp.other.priority", priority.as_str()),
            ("vrrp.other.advert_interval_cs", "10"),
            ("vrrp.other.accept_mode", "true"),
            (
                "vrrp.other.vips",
                &format!("{{ address = \"{OTHER_VIP}\", prefix = 24 }}"),
            ),
        ] {
            self.set(index, path, value);
        }
        self.commit(index)
    }
}

/// Transition lines of `instance` in a box's console transcript.
fn transitions(process: &HostProcess, instance: &str) -> usize {
    vrrp_status::transitions(&process.console.transcript(), instance)
}

#[test]
fn a_vip_added_on_the_master_first_makes_no_transition_and_loses_no_ping() {
    let site = Site::new("vlgrace");
    let a = site.start(0);
    let b = site.start(1);
    site.wait_state(0, "web", "MASTER");
    site.wait_state(1, "web", "BACKUP");
    let before = (transitions(&a, "web"), transitions(&b, "web"));
    let ping = Pinger::start(&site.client, WEB_VIP.parse().unwrap()).unwrap();
    assert!(
        ping.wait_reply_after(tandem_lab::pinger::now_unix(), LIMIT),
        "no ping reply"
    );

    // The master first: its adverts now list two addresses, the backup's config one.
    site.set(0, "vrrp.web.vips", ADDED_VIP);
    let answer = site.commit(0);
    assert!(
        answer.contains(&format!("vrrp: web: added VIP {ADDED_VIP}")),
        "{answer}"
    );
    let status = site.wait(1, "the address list grace", |s| {
        s.contains("address list grace (master 192.0.2.2 changed its virtual addresses)")
    });
    assert!(status.contains("other address list accepted"), "{status}");
    // Without the grace the backup would discard every advert and take over within 0.4 s.
    std::thread::sleep(Duration::from_secs(2));
    let status = site.wait_state(1, "web", "BACKUP");
    assert!(
        !status.contains("virtual address list differs from ours"),
        "{status}"
    );
    b.console
        .wait_for_any_time("now lists other virtual addresses", LIMIT)
        .unwrap();

    // The backup follows: the lists match and the grace ends.
    site.set(1, "vrrp.web.vips", ADDED_VIP);
    let answer = site.commit(1);
    assert!(
        answer.contains(&format!("vrrp: web: added VIP {ADDED_VIP}")),
        "{answer}"
    );
    site.wait(1, "the grace ended", |s| !s.contains("address list grace"));
    let pinged = site.client.exec("ping", &["-c", "1", "-W", "2", ADDED_VIP]);
    assert!(pinged.is_ok(), "the added VIP does not answer: {pinged:?}");

    let report = ping.stop().unwrap();
    assert!(report.sent > 500, "{report:?}");
    assert_eq!(report.lost, 0, "pings lost: {report:?}");
    assert_eq!(
        (transitions(&a, "web"), transitions(&b, "web")),
        before,
        "a live VIP change made a transition"
    );
}

#[test]
fn instances_come_and_go_and_the_others_are_untouched() {
    let site = Site::new("vlinst");
    let a = site.start(0);
    let b = site.start(1);
    site.wait_state(0, "web", "MASTER");
    site.wait_state(1, "web", "BACKUP");
    let web_before = (transitions(&a, "web"), transitions(&b, "web"));

    // Added on both boxes: it starts and elects; web is not touched.
    for index in [1, 0] {
        let answer = site.add_other(index);
        assert!(answer.contains("vrrp: instance other added"), "{answer}");
        assert!(!answer.contains("vrrp: web"), "{answer}");
    }
    site.wait_state(0, "other", "MASTER");
    site.wait_state(1, "other", "BACKUP");
    assert_eq!((transitions(&a, "web"), transitions(&b, "web")), web_before);
    let other_before = (transitions(&a, "other"), transitions(&b, "other"));

    // Removed from the master: priority 0, and the partner takes web over at once.
    let ask = site.ask(0, &["delete", "vrrp.web"]);
    assert!(!ask.contains("error"), "{ask}");
    let answer = site.commit(0);
    assert!(
        answer.contains("vrrp: instance web removed (priority 0 sent)"),
        "{answer}"
    );
    let status = site.wait_state(1, "web", "MASTER");
    assert!(
        status.contains("why: master left (priority 0), Skew_Time passed"),
        "{status}"
    );
    let status = site.ask(0, &["vrrp", "status"]);
    assert!(!status.contains("instance web "), "{status}");

    // One that cannot run (eth0 has no IPv6 link-local address to send from once IPv6 is off)
    // is reported after its wait; the rest applies.
    site.boxes[0]
        .exec("sysctl", &["-qw", "net.ipv6.conf.eth0.disable_ipv6=1"])
        .unwrap();
    for (path, value) in [
        ("interfaces.eth0.addresses", "2001:db8::2/64"),
        ("vrrp.ghost.vrid", "53"),
        ("vrrp.ghost.interface", "eth0"),
        ("vrrp.ghost.vips", "2001:db8::103"),
        ("vrrp.other.priority", "160"),
    ] {
        site.set(0, path, value);
    }
    let answer = site.commit(0);
    assert!(
        answer.contains("vrrp: ghost: error: interface eth0 has no IPv6 link-local address"),
        "{answer}"
    );
    assert!(
        answer.contains("vrrp: other: priority 150 -> 160"),
        "{answer}"
    );
    site.wait(0, "the new priority", |s| {
        s.contains("priority 160 (configured 160)")
    });
    assert_eq!(
        (transitions(&a, "other"), transitions(&b, "other")),
        other_before,
        "other moved"
    );
}

#[test]
fn accept_mode_of_a_master_follows_live_changes() {
    let site = Site::new("vlaccept");
    let a = site.start_with(0, false);
    site.wait_state(0, "web", "MASTER");
    let before = transitions(&a, "web");
    site.wait(0, "the VIP dropped", |s| {
        s.contains("(1 address in table inet tandem_vrrp: 192.0.2.100)")
    });

    site.set(0, "vrrp.web.vips", ADDED_VIP);
    let answer = site.commit(0);
    assert!(
        answer.contains(&format!("vrrp: web: added VIP {ADDED_VIP}")),
        "{answer}"
    );
    site.wait(0, "both VIPs dropped", |s| {
        s.contains("(addresses in table inet tandem_vrrp: 192.0.2.100, 192.0.2.102)")
    });

    site.set(0, "vrrp.web.accept_mode", "true");
    let answer = site.commit(0);
    assert!(
        answer.contains("vrrp: web: accept mode false -> true"),
        "{answer}"
    );
    // No instance needs the table any more: it is gone, and so is the status line.
    site.wait(0, "no drops", |s| !s.contains("accept_mode=false"));
    assert_eq!(
        transitions(&a, "web"),
        before,
        "a live change made a transition"
    );
}
