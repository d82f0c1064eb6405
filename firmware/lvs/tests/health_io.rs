//! The tokio prober and runner against real TCP servers started on 127.0.0.1 in the test.
// Test/bench helpers outside #[test] fns may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::Duration;

use tandem_lvs::health::runner::{run, Command};
use tandem_lvs::health::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A server that answers every connection with `reply` after reading one chunk (if `read_first`).
async fn serve(reply: &'static [u8], read_first: bool) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                if read_first {
                    let n = s.read(&mut buf).await.unwrap_or(0);
                    let req = String::from_utf8_lossy(&buf[..n]).to_string();
                    // The HTTP check must send a Host header.
                    if req.starts_with("GET ") && !req.contains("\r\nHost: ") {
                        return;
                    }
                }
                let _ = s.write_all(reply).await;
            });
        }
    });
    addr
}

fn key(probe: Probe, target: SocketAddr) -> CheckKey {
    CheckKey {
        probe,
        target,
        timeout: Duration::from_millis(500),
    }
}

fn http(status: Vec<(u16, u16)>, body: Option<&[u8]>) -> Probe {
    Probe::Http(Box::new(HttpProbe {
        path: "/health".into(),
        host: Some("www.example".into()),
        status,
        body: body.map(|b| BodyCheck::Contains(b.to_vec())),
        tls: None,
        more_urls: Vec::new(),
    }))
}

#[tokio::test(flavor = "current_thread")]
async fn probes_against_real_servers() {
    let ok = serve(
        b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nall good\n",
        true,
    )
    .await;
    let err = serve(b"HTTP/1.1 503 Busy\r\n\r\n", true).await;
    let smtp = serve(b"220 mx ESMTP ready\r\n", false).await;
    let bad_smtp = serve(b"421 too busy\r\n", false).await;
    let redis = serve(b"+PONG\r\n", true).await;

    assert_eq!(probe::run_probe(&key(Probe::Tcp, ok)).await, Ok(()));
    assert_eq!(
        probe::run_probe(&key(http(vec![(200, 299)], Some(b"good")), ok)).await,
        Ok(())
    );
    assert_eq!(
        probe::run_probe(&key(http(vec![(200, 299)], Some(b"bad")), ok)).await,
        Err(FailReason::NoMatch)
    );
    assert_eq!(
        probe::run_probe(&key(http(vec![], None), err)).await,
        Err(FailReason::Status(503))
    );
    assert_eq!(probe::run_probe(&key(Probe::Smtp, smtp)).await, Ok(()));
    assert!(matches!(
        probe::run_probe(&key(Probe::Smtp, bad_smtp)).await,
        Err(FailReason::SmtpGreeting(_))
    ));
    let ping = SendExpect {
        send: b"PING\r\n".to_vec(),
        expect: b"+PONG".to_vec(),
    };
    assert_eq!(
        probe::run_probe(&key(Probe::SendExpect(ping), redis)).await,
        Ok(())
    );

    // A closed port: connect refused.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        l.local_addr().unwrap()
    };
    assert!(matches!(
        probe::run_probe(&key(Probe::Tcp, closed)).await,
        Err(FailReason::Connect(_))
    ));

    // A server that accepts but never greets: timeout.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let mut k = key(Probe::Smtp, silent_addr);
    k.timeout = Duration::from_millis(100);
    assert_eq!(probe::run_probe(&k).await, Err(FailReason::Timeout));
    drop(silent);
}

#[tokio::test(flavor = "current_thread")]
async fn runner_reports_a_server_that_dies() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        loop {
            let _ = listener.accept().await;
        }
    });
    let (cmd_tx, cmd_rx) = mpsc::channel(8);
    let (ev_tx, mut ev_rx) = mpsc::channel(8);
    let timing = CheckTiming {
        interval: Duration::from_millis(100),
        retries: 0,
        retry_delay: Duration::from_millis(10),
        rise: 1,
        fall: 1,
        start_up: true,
    };
    cmd_tx
        .send(Command::Subscribe(
            SubscriberId(9),
            CheckSpec {
                key: key(Probe::Tcp, addr),
                timing,
            },
        ))
        .await
        .unwrap();
    let runner = tokio::spawn(run(HealthScheduler::new(5), cmd_rx, ev_tx, 64, None));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(ev_rx.try_recv().is_err(), "a live server produces no event");
    server.abort(); // the listener closes: connects are refused from now on
    let ev = tokio::time::timeout(Duration::from_secs(5), ev_rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.subscriber, SubscriberId(9));
    assert!(!ev.up);
    assert!(matches!(ev.reason, Some(FailReason::Connect(_))));
    drop(cmd_tx);
    let stats = tokio::time::timeout(Duration::from_secs(5), runner)
        .await
        .unwrap()
        .unwrap();
    assert!(stats.attempts >= 3, "{stats:?}");
}
