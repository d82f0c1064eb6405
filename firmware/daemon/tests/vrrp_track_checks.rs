//! Tracked checks (keepalived `track_script` as a built-in check) on the host tier: `tandem
//! run` and keepalived (Debian's) share a segment with a web server in a namespace of its own.
//! Tandem (priority 150) tracks the server with an HTTP check of weight -100; keepalived has
//! priority 100. While the server answers, tandem is master. When the server stops, tandem's
//! priority falls to 50, keepalived takes over and tandem's status names the check and why it
//! failed; when the server comes back, tandem's priority is 150 again and it preempts. A live
//! change of the check (its weight) applies without a transition.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_lab::host::{
    keepalived, tandem_query, wait_tandem_query, HostProcess, HostSegment, ScratchDir, TandemRun,
};
use tandem_lab::netns::Netns;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const VIP: &str = "192.0.2.100";
/// Upper bound for a check's verdict plus a takeover (checks every 200 ms, adverts 100 ms).
const LIMIT: Duration = Duration::from_secs(20);

const SERVE: u8 = 0;
const FAILING: u8 = 1;
const STOPPED: u8 = 2;
const EXIT: u8 = 3;

/// A web server on 192.0.2.9:8080 in its own namespace: `200 ok` for every request while
/// serving, `503` while failing; stopped, its socket is closed (connections refused).
struct WebServer {
    mode: Arc<AtomicU8>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl WebServer {
    fn start(ns: &Netns) -> WebServer {
        let mode = Arc::new(AtomicU8::new(SERVE));
        let shared = Arc::clone(&mode);
        let thread = ns
            .spawn(move || {
                let mut listener: Option<TcpListener> = None;
                loop {
                    match shared.load(Ordering::SeqCst) {
                        EXIT => return,
                        STOPPED => listener = None,
                        _ if listener.is_none() => {
                            let bound = TcpListener::bind("192.0.2.9:8080").unwrap();
                            bound.set_nonblocking(true).unwrap();
                            listener = Some(bound);
                        }
                        _ => {}
                    }
                    let accepted = listener.as_ref().map(TcpListener::accept);
                    match accepted {
                        Some(Ok((mut stream, _))) => {
                            stream.set_nonblocking(false).unwrap();
                            stream
                                .set_read_timeout(Some(Duration::from_secs(1)))
                                .unwrap();
                            let mut request = [0u8; 1024];
                            let _ = stream.read(&mut request);
                            let reply: &[u8] = if shared.load(Ordering::SeqCst) == FAILING {
                                b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy"
                            } else {
                                b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
                            };
                            let _ = stream.write_all(reply);
                        }
                        // Nothing waiting (or stopped): look again shortly.
                        _ => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
            .unwrap();
        WebServer {
            mode,
            thread: Some(thread),
        }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.set(EXIT);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn tandem_config(weight: i16) -> String {
    format!(
        "[system]\nhostname = \"tandem\"\n\n[[interfaces]]\nname = \"eth0\"\naddresses = [\"192.0.2.2/24\"]\n\n\
         [[vrrp]]\nname = \"vi\"\nvrid = 51\ninterface = \"eth0\"\npriority = 150\nadvert_interval_cs = 10\naccept_mode = true\n\n\
         [[vrrp.vips]]\naddress = \"{VIP}\"\nprefix = 24\n\n\
         [[vrrp.track_checks]]\nname = \"web\"\naddress = \"192.0.2.9\"\nport = 8080\nweight = {weight}\n\
         check = {{ kind = {{ http = {{ path = \"/health\", status = 200 }} }}, timing = {{ interval_ms = 200, timeout_ms = 500, retries = 0, retry_delay_ms = 100 }} }}\n"
    )
}

const KEEPALIVED: &str = "global_defs {\n  router_id keepalived\n  vrrp_version 3\n}\n\
    vrrp_instance VI {\n  state BACKUP\n  interface eth0\n  virtual_router_id 51\n  priority 100\n  advert_int 0.1\n\
      virtual_ipaddress {\n    192.0.2.100/24 dev eth0\n  }\n}\n";

fn holds_vip(ns: &Netns) -> bool {
    ns.ip(&["-o", "addr", "show", "dev", "eth0"])
        .is_ok_and(|out| out.contains(&format!(" {VIP}/")))
}

fn wait_vip(ns: &Netns, held: bool) {
    let started = Instant::now();
    while started.elapsed() < LIMIT {
        if holds_vip(ns) == held {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!(
        "{} {} the VIP",
        ns.name,
        if held { "never took" } else { "never released" }
    );
}

#[test]
fn a_tracked_http_check_hands_the_vip_to_keepalived_and_takes_it_back() {
    let mut segment = HostSegment::new("tcsg").unwrap();
    let tandem_ns = Netns::new("tc-t").unwrap();
    let keepalived_ns = Netns::new("tc-k").unwrap();
    let server_ns = Netns::new("tc-s").unwrap();
    for (ns, address) in [
        (&tandem_ns, "192.0.2.2"),
        (&keepalived_ns, "192.0.2.3"),
        (&server_ns, "192.0.2.9"),
    ] {
        segment.attach(ns, "eth0").unwrap();
        ns.ip(&["addr", "add", &format!("{address}/24"), "dev", "eth0"])
            .unwrap();
    }
    let server = WebServer::start(&server_ns);
    let dir = ScratchDir::new("track-checks").unwrap();
    let control: PathBuf = dir.path.join("t.sock");
    let tandem: HostProcess = TandemRun {
        tandem: Path::new(TANDEM),
        dir: &dir.path,
        name: "tandem",
        control: Some(&control),
    }
    .start(&tandem_ns, &tandem_config(-100), "vrrp: running", LIMIT)
    .unwrap();
    let _keepalived = keepalived(&keepalived_ns, "keepalived", KEEPALIVED, &dir.path).unwrap();
    let wait = |what: &str, check: &dyn Fn(&str) -> bool| {
        wait_tandem_query(TANDEM.as_ref(), &control, &["vrrp", "status"], LIMIT, check)
            .unwrap_or_else(|last| panic!("never {what}:\n{last}"))
    };
    const CHECK: &str = "check web: http GET /health 192.0.2.9:8080 every 200 ms";

    wait("master with the check up", &|t| {
        t.contains("state MASTER")
            && t.contains("priority 150 (configured 150)")
            && t.contains("tracking: eth0 up, check web up")
            && t.contains(&format!("{CHECK}: up"))
    });
    wait_vip(&tandem_ns, true);
    wait_vip(&keepalived_ns, false);

    // The server fails (503): the check fails, tandem's priority falls below keepalived's and
    // keepalived (preempting, its default) takes over; tandem hears it and backs off.
    server.set(FAILING);
    let status = wait("backup at priority 50", &|t| {
        t.contains("state BACKUP")
            && t.contains("priority 50 (configured 150)")
            && t.contains("check web down")
            && t.contains("192.0.2.3 priority 100")
    });
    assert!(
        status.contains(&format!("{CHECK}: down (HTTP status 503 not accepted)")),
        "the reason is shown:\n{status}"
    );
    wait_vip(&keepalived_ns, true);
    wait_vip(&tandem_ns, false);
    tandem
        .console
        .wait_for_any_time(
            "vrrp: vi: check web down: HTTP status 503 not accepted",
            LIMIT,
        )
        .unwrap();

    // Back: priority 150 again, tandem preempts keepalived.
    server.set(SERVE);
    let status = wait("master again", &|t| {
        t.contains("state MASTER") && t.contains("priority 150 (configured 150)")
    });
    assert!(
        status.contains(&format!(
            "{CHECK}: up (last failure: HTTP status 503 not accepted; down 1 times)"
        )),
        "{status}"
    );
    wait_vip(&tandem_ns, true);
    wait_vip(&keepalived_ns, false);
    tandem
        .console
        .wait_for_any_time("vrrp: vi: check web up", LIMIT)
        .unwrap();
    // A check is no link: the link tracking never polls it.
    assert!(
        tandem
            .console
            .wait_for_any_time("vrrp: tracked check web", Duration::from_millis(1))
            .is_err(),
        "a check went through the link tracking"
    );

    // A live change of the check's weight: no transition while the state stays.
    let transitions = |t: &str| {
        t.lines()
            .find(|l| l.contains("transitions by cause:"))
            .unwrap_or_default()
            .to_owned()
    };
    let before = tandem_query(TANDEM.as_ref(), &control, &["vrrp", "status"]);
    let answer = tandem_query(
        TANDEM.as_ref(),
        &control,
        // A leading space: `-30` alone would read as an option.
        &["set", "vrrp.vi.track_checks.web.weight", " -30"],
    );
    assert!(answer.starts_with("set: "), "{answer}");
    let answer = tandem_query(TANDEM.as_ref(), &control, &["commit"]);
    assert!(answer.contains("applied"), "{answer}");
    assert!(
        answer.contains("tracks"),
        "the weight change is reported: {answer}"
    );
    let after = wait("the new weight", &|t| t.contains("state MASTER"));
    assert_eq!(
        transitions(&before),
        transitions(&after),
        "no transition:\n{before}\n---\n{after}"
    );
    // The new weight counts: the server stops, 150 - 30 = 120 stays above keepalived's 100.
    server.set(STOPPED);
    let status = wait("priority 120, still master", &|t| {
        t.contains("priority 120 (configured 150)") && t.contains("state MASTER")
    });
    assert!(status.contains(&format!("{CHECK}: down (")), "{status}");
    assert_eq!(transitions(&before), transitions(&status), "{status}");
    assert!(holds_vip(&tandem_ns));
}

/// keepalived's own way to say it: a `curl -f` script and an `nc -z` script, tracked.
const KEEPALIVED_SCRIPTS: &str = r#"
vrrp_script chk_web {
    script "/usr/bin/curl -fsS -o /dev/null http://192.0.2.9:8080/health"
    interval 1
    weight -100
}
vrrp_script chk_port {
    script "nc -z 192.0.2.9 8080"
    interval 1
}
vrrp_instance VI {
    state BACKUP
    interface eth0
    virtual_router_id 52
    priority 150
    advert_int 1
    virtual_ipaddress {
        192.0.2.100/24
    }
    track_script {
        chk_web
        chk_port
    }
}
"#;

#[test]
fn imported_track_scripts_run_as_checks_that_weigh_and_fault() {
    let imported = tandem_config::import::import(
        KEEPALIVED_SCRIPTS,
        Some(tandem_config::import::Format::Keepalived),
    )
    .unwrap();
    let notes: Vec<String> = imported.notes.iter().map(ToString::to_string).collect();
    let scripts: Vec<&String> = notes.iter().filter(|n| n.contains("vrrp_script")).collect();
    assert_eq!(scripts.len(), 2, "{notes:?}");
    assert!(
        scripts
            .iter()
            .all(|n| n.contains("adjusted") && n.contains("built-in check that does the same")),
        "both scripts are carried as built-in checks: {notes:?}"
    );
    let mut config = tandem_config::text::from_toml(
        "[system]\nhostname = \"tandem\"\n\n[[interfaces]]\nname = \"eth0\"\naddresses = [\"192.0.2.2/24\"]\n",
    )
    .unwrap();
    config.vrrp = imported.config.vrrp;
    let text = tandem_config::text::to_toml(&config).unwrap();

    let mut segment = HostSegment::new("tcisg").unwrap();
    let tandem_ns = Netns::new("tci-t").unwrap();
    let server_ns = Netns::new("tci-s").unwrap();
    for (ns, address) in [(&tandem_ns, "192.0.2.2"), (&server_ns, "192.0.2.9")] {
        segment.attach(ns, "eth0").unwrap();
        ns.ip(&["addr", "add", &format!("{address}/24"), "dev", "eth0"])
            .unwrap();
    }
    let server = WebServer::start(&server_ns);
    let dir = ScratchDir::new("track-import").unwrap();
    let control: PathBuf = dir.path.join("t.sock");
    let _tandem: HostProcess = TandemRun {
        tandem: Path::new(TANDEM),
        dir: &dir.path,
        name: "tandem",
        control: Some(&control),
    }
    .start(&tandem_ns, &text, "vrrp: running", LIMIT)
    .unwrap();
    let wait = |what: &str, check: &dyn Fn(&str) -> bool| {
        wait_tandem_query(TANDEM.as_ref(), &control, &["vrrp", "status"], LIMIT, check)
            .unwrap_or_else(|last| panic!("never {what}:\n{last}"))
    };
    const WEB: &str = "check chk_web: http GET /health 192.0.2.9:8080 every 1000 ms";
    const PORT: &str = "check chk_port: tcp 192.0.2.9:8080 every 1000 ms";

    wait("master with both checks up", &|t| {
        t.contains("state MASTER")
            && t.contains("priority 150 (configured 150)")
            && t.contains(&format!("{WEB}: up"))
            && t.contains(&format!("{PORT}: up"))
    });
    // curl -f fails on a 503; the port still connects: weight -100, no fault.
    server.set(FAILING);
    wait("priority 50", &|t| {
        t.contains("state MASTER")
            && t.contains("priority 50 (configured 150)")
            && t.contains(&format!("{WEB}: down (HTTP status 503 not accepted)"))
            && t.contains(&format!("{PORT}: up"))
    });
    // Nothing listens: `nc -z` fails too, and a script without a weight faults (keepalived's
    // weight 0).
    server.set(STOPPED);
    let status = wait("fault", &|t| {
        t.contains("state FAULT") && t.contains(&format!("{PORT}: down (connect failed: "))
    });
    assert!(
        status.contains("fault: tracked check chk_port down"),
        "{status}"
    );
    assert!(!holds_vip(&tandem_ns));
    server.set(SERVE);
    wait("master again", &|t| {
        t.contains("state MASTER") && t.contains("priority 150 (configured 150)")
    });
    wait_vip(&tandem_ns, true);
}
