//! A real server with several checks (blob format 6 `more_checks`, keepalived's several
//! checkers) on 127.0.0.1, planned from a config as an operator writes it and run by the real
//! probes and scheduler: up while the HTTP check and the TCP check both pass; the TCP port
//! closed takes it down with a reason naming the TCP check, and the service's policy removes it
//! from the table (or quiesces it); the port open again brings it back.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tandem_lvs::health::probe::run_probe;
use tandem_lvs::health::runner::{self, Command};
use tandem_lvs::health::{FailReason, HealthEvent, HealthScheduler, Probe, SubscriberId};
use tandem_lvs::plan::{from_config, Plan, PlannedCheck};
use tandem_lvs::RealServerId;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// An HTTP server answering `GET /<code>...` with that status; counts the requests.
async fn http_server() -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let count = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let count = count.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut chunk = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tcp.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&chunk[..n]),
                    }
                }
                count.fetch_add(1, Ordering::SeqCst);
                let line = String::from_utf8_lossy(&head)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_owned();
                let status = line
                    .split(' ')
                    .nth(1)
                    .and_then(|p| p.get(1..4))
                    .unwrap_or("404");
                let reply = format!("HTTP/1.0 {status} X\r\nContent-Length: 2\r\n\r\nok");
                let _ = tcp.write_all(reply.as_bytes()).await;
            });
        }
    });
    (addr, requests)
}

/// Who connected to a [`tcp_port`], in accept order.
type Peers = Arc<Mutex<Vec<SocketAddr>>>;

/// A TCP port that accepts connections (recording their peers) until the returned handle is
/// aborted.
async fn tcp_port(port: u16) -> (u16, Peers, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Peers::default();
    let peers = accepted.clone();
    let task = tokio::spawn(async move {
        while let Ok((tcp, peer)) = listener.accept().await {
            peers.lock().unwrap().push(peer);
            drop(tcp);
        }
    });
    (port, accepted, task)
}

/// The plan of one service whose real server at `http` runs an HTTP GET of `path` and a TCP
/// connect to `tcp_port`, checked every 200 ms; `extra` adds service lines.
fn plan(http: SocketAddr, path: &str, tcp_port: u16, extra: &str) -> Plan {
    let text = format!(
        r#"
[[virtual_services]]
address = "192.0.2.10"
port = 80
{extra}

[[virtual_services.real_servers]]
address = "{ip}"
port = {port}
check = {{ kind = {{ http = {{ path = "{path}" }} }}, timing = {{ interval_ms = 200, timeout_ms = 1000, retries = 0 }} }}
more_checks = [{{ kind = "tcp", connect_port = {tcp_port}, timing = {{ interval_ms = 200, timeout_ms = 1000, retries = 0 }} }}]
"#,
        ip = http.ip(),
        port = http.port()
    );
    let config = tandem_config::text::from_toml(&text).unwrap();
    let issues = tandem_config::validate::validate(&config);
    assert!(!tandem_config::validate::has_errors(&issues), "{issues:?}");
    let plan = from_config(&config);
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    plan
}

fn only_check(plan: &Plan) -> (RealServerId, PlannedCheck) {
    let service = plan.services.values().next().unwrap();
    let (server, check) = service.plan.checks.iter().next().unwrap();
    (*server, check.clone())
}

#[tokio::test(flavor = "current_thread")]
async fn every_check_runs_and_the_failing_one_is_named() {
    let (http, requests) = http_server().await;
    let (port, accepted, task) = tcp_port(0).await;
    let (_, check) = only_check(&plan(http, "/200-ok", port, ""));
    assert!(matches!(&check.spec.key.probe, Probe::Every(every) if every.len() == 2));
    assert_eq!(&*check.what, "http GET /200-ok + tcp");

    // Both pass: up, and both were asked (the accept loop counts once it runs).
    run_probe(&check.spec.key).await.unwrap();
    assert_eq!(requests.load(Ordering::SeqCst), 1);
    wait_for(|| accepted.lock().unwrap().len() == 1).await;

    // The TCP port closed: down, naming the TCP check and where it connects.
    task.abort();
    let _ = task.await;
    let reason = run_probe(&check.spec.key).await.unwrap_err();
    let FailReason::Check { what, reason: why } = &reason else {
        panic!("{reason:?}");
    };
    assert_eq!(what, &format!("tcp 127.0.0.1:{port}"));
    assert!(matches!(**why, FailReason::Connect(_)), "{why:?}");
    assert!(
        reason
            .to_string()
            .starts_with(&format!("tcp 127.0.0.1:{port}: connect failed")),
        "{reason}"
    );

    // The HTTP check failing is named first, and the TCP check is not run after it.
    let (port, accepted, _task) = tcp_port(0).await;
    let (_, check) = only_check(&plan(http, "/503-busy", port, ""));
    let reason = run_probe(&check.spec.key).await.unwrap_err();
    assert_eq!(
        reason.to_string(),
        format!("http GET /503-busy {http}: HTTP status 503 not accepted")
    );
    // Connections are accepted in order: when a connection of our own made now is counted
    // first, the check made none.
    let ours = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let ours = ours.local_addr().unwrap();
    wait_for(|| accepted.lock().unwrap().contains(&ours)).await;
    assert_eq!(*accepted.lock().unwrap(), [ours]);
}

/// Waits (bounded, 10 s) until `done` holds.
async fn wait_for(done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "condition not met within 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits (bounded) for the next transition of `events`.
async fn next_event(events: &mut mpsc::Receiver<HealthEvent>) -> HealthEvent {
    tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("a health transition within 10 s")
        .expect("the runner is running")
}

#[tokio::test(flavor = "current_thread")]
async fn the_server_leaves_the_table_while_one_check_fails_and_returns_when_all_pass() {
    for (extra, quiesce) in [("", false), ("on_failure = \"quiesce\"", true)] {
        let (http, _) = http_server().await;
        let (port, _, task) = tcp_port(0).await;
        let plan = plan(http, "/200-ok", port, extra);
        let (server, check) = only_check(&plan);
        let planned = plan.services.values().next().unwrap().plan.clone();

        let (commands, command_rx) = mpsc::channel(8);
        let (event_tx, mut events) = mpsc::channel(8);
        let runner = tokio::spawn(runner::run(
            HealthScheduler::new(7),
            command_rx,
            event_tx,
            16,
            None,
        ));
        // Started down (as a replaced check of a failed server would): the first good round
        // brings it up.
        let mut spec = (*check.spec).clone();
        spec.timing.start_up = false;
        commands
            .send(Command::Subscribe(SubscriberId(1), spec))
            .await
            .unwrap();
        let mut memory = tandem_lvs::health::ServiceHealth::new();
        memory.set_initial(server, false);
        let table = |memory: &mut tandem_lvs::health::ServiceHealth| {
            memory.evaluate(&planned.service, &planned.policy, Instant::now())
        };
        assert_eq!(
            table(&mut memory)
                .real_servers
                .get(&server)
                .map(|r| r.weight),
            quiesce.then_some(0)
        );
        let up = next_event(&mut events).await;
        assert!(up.up, "{up:?}");
        memory.set_health(server, true, up.at);
        assert_eq!(
            table(&mut memory)
                .real_servers
                .get(&server)
                .map(|r| r.weight),
            Some(1)
        );

        // The TCP check fails: down, the reason names it; removed (or weight 0).
        task.abort();
        let _ = task.await;
        let down = next_event(&mut events).await;
        assert!(!down.up);
        let reason = down.reason.unwrap().to_string();
        assert!(
            reason.starts_with(&format!("tcp 127.0.0.1:{port}: connect failed")),
            "{reason}"
        );
        memory.set_health(server, false, down.at);
        assert_eq!(
            table(&mut memory)
                .real_servers
                .get(&server)
                .map(|r| r.weight),
            quiesce.then_some(0)
        );

        // The port open again: every check passes, the server is back.
        let (_, _, _task) = tcp_port(port).await;
        let again = next_event(&mut events).await;
        assert!(again.up, "{again:?}");
        memory.set_health(server, true, again.at);
        assert_eq!(
            table(&mut memory)
                .real_servers
                .get(&server)
                .map(|r| r.weight),
            Some(1)
        );
        drop(commands);
        runner.abort();
    }
}
