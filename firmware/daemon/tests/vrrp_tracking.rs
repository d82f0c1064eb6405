//! Tracked links follow the kernel's link notifications (one source for the daemon and the
//! VRRP engine), on the host tier: `tandem run` masters an instance on eth0 that tracks eth1, a
//! veth whose far end sits in another namespace. Taking the far end down drops eth1's carrier:
//! the instance's priority falls by the track's weight (and a weight-0 track faults it); bringing
//! it back restores both. A track added by a live commit starts following at once.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::path::Path;
use std::time::Duration;

use tandem_lab::host::{wait_tandem_query, HostSegment, ScratchDir, TandemRun};
use tandem_lab::netns::{veth_pair, Netns};

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const LIMIT: Duration = Duration::from_secs(20);

#[test]
fn tracked_links_follow_carrier_changes_and_live_commits() {
    let mut segment = HostSegment::new("trsg").unwrap();
    let box_ns = Netns::new("tr-box").unwrap();
    let far = Netns::new("tr-far").unwrap();
    segment.attach(&box_ns, "eth0").unwrap();
    veth_pair(&box_ns, "eth1", &far, "eth1").unwrap();
    veth_pair(&box_ns, "eth2", &far, "eth2").unwrap();
    let dir = ScratchDir::new("tracking").unwrap();
    let control = dir.path.join("t.sock");
    let config = "[system]\nhostname = \"t\"\n\n[[interfaces]]\nname = \"eth0\"\naddresses = [\"192.0.2.2/24\"]\n\n[[interfaces]]\nname = \"eth1\"\n\n[[interfaces]]\nname = \"eth2\"\n\n\
         [[vrrp]]\nname = \"web\"\nvrid = 70\ninterface = \"eth0\"\npriority = 150\nadvert_interval_cs = 10\n\
         accept_mode = true\n\n[[vrrp.vips]]\naddress = \"192.0.2.100\"\nprefix = 24\n\n\
         [[vrrp.track_interfaces]]\nname = \"eth1\"\nweight = -50\n";
    let tandem = TandemRun {
        tandem: Path::new(TANDEM),
        dir: &dir.path,
        name: "t",
        control: Some(&control),
    }
    .start(&box_ns, config, "vrrp: running", LIMIT)
    .unwrap();
    let wait = |what: &str, check: &dyn Fn(&str) -> bool| {
        wait_tandem_query(TANDEM.as_ref(), &control, &["vrrp", "status"], LIMIT, check)
            .unwrap_or_else(|last| panic!("never {what}:\n{last}"))
    };
    wait("master with eth1 up", &|t| {
        t.contains("state MASTER")
            && t.contains("tracking: eth1 up")
            && t.contains("priority 150 (configured 150)")
    });

    far.ip(&["link", "set", "eth1", "down"]).unwrap();
    wait("eth1 down lowering the priority", &|t| {
        t.contains("tracking: eth1 down") && t.contains("priority 100 (configured 150)")
    });
    tandem
        .console
        .wait_for_any_time("vrrp: tracked eth1 lost carrier", LIMIT)
        .unwrap();
    far.ip(&["link", "set", "eth1", "up"]).unwrap();
    wait("eth1 back", &|t| {
        t.contains("tracking: eth1 up") && t.contains("priority 150 (configured 150)")
    });

    // A track added live (weight 0: fault while down) follows at once: eth2 is down now.
    far.ip(&["link", "set", "eth2", "down"]).unwrap();
    let answer = tandem_lab::host::tandem_query(
        TANDEM.as_ref(),
        &control,
        &[
            "set",
            "vrrp.web.track_interfaces",
            "[{ name = \"eth1\", weight = -50 }, { name = \"eth2\", weight = 0 }]",
        ],
    );
    assert!(answer.starts_with("set: "), "{answer}");
    let answer = tandem_lab::host::tandem_query(TANDEM.as_ref(), &control, &["commit"]);
    assert!(answer.contains("applied"), "{answer}");
    wait("fault on eth2", &|t| {
        t.contains("state FAULT") && t.contains("eth2 down")
    });
    far.ip(&["link", "set", "eth2", "up"]).unwrap();
    wait("master again", &|t| {
        t.contains("state MASTER") && t.contains("eth2 up")
    });
}
