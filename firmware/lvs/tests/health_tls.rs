//! HTTPS and MD5 digest checks against real TLS servers on 127.0.0.1, started in the test with a
//! self-signed certificate (rcgen) on rustls: up, down when the server stops, a wrong status and
//! a changed body seen down with their reasons, a digest match up, certificate trust (none by
//! default, as keepalived; anchors when given), SNI, TLS 1.2 servers, and a keepalived `SSL_GET`
//! imported, planned and run.
// Test helpers outside #[test] fns may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tandem_lvs::health::digest::{md5, Hex};
use tandem_lvs::health::runner::{run, Command};
use tandem_lvs::health::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

/// A certificate and its key.
struct Identity {
    cert: CertificateDer<'static>,
    key: Vec<u8>,
}

fn identity(names: &[&str]) -> Identity {
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let made = rcgen::generate_simple_self_signed(names).unwrap();
    Identity {
        cert: made.cert.der().clone(),
        key: made.signing_key.serialize_der(),
    }
}

/// What the server answers, changeable while it runs, and what it saw.
#[derive(Clone)]
struct Page {
    status: Arc<Mutex<&'static str>>,
    body: Arc<Mutex<Vec<u8>>>,
    /// The SNI of each handshake.
    sni: Arc<Mutex<Vec<Option<String>>>>,
    /// The request heads.
    requests: Arc<Mutex<Vec<String>>>,
}

impl Page {
    fn new(body: &[u8]) -> Self {
        Page {
            status: Arc::new(Mutex::new("200 OK")),
            body: Arc::new(Mutex::new(body.to_vec())),
            sni: Arc::default(),
            requests: Arc::default(),
        }
    }
}

/// An HTTPS server: every connection gets one reply with `page`'s status and body
/// (Content-Length, then close_notify). Aborting the handle closes the port.
async fn https_server(
    identity: &Identity,
    versions: &[&'static rustls::SupportedProtocolVersion],
    page: Page,
) -> (SocketAddr, JoinHandle<()>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![identity.cert.clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(identity.key.clone())),
        )
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, page) = (acceptor.clone(), page.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let sni = tls.get_ref().1.server_name().map(str::to_owned);
                page.sni.lock().unwrap().push(sni);
                let mut head = Vec::new();
                let mut chunk = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
                    match tls.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&chunk[..n]),
                    }
                }
                page.requests
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&head).into_owned());
                let body = page.body.lock().unwrap().clone();
                let status = *page.status.lock().unwrap();
                let mut reply = format!(
                    "HTTP/1.0 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                reply.extend_from_slice(&body);
                let _ = tls.write_all(&reply).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (addr, task)
}

fn https(host: Option<&str>, body: Option<BodyCheck>, trust: TlsTrust) -> Probe {
    Probe::Http(Box::new(HttpProbe {
        path: "/healthz".into(),
        host: host.map(str::to_owned),
        status: vec![(200, 299)],
        body,
        tls: Some(trust),
        more_urls: Vec::new(),
    }))
}

fn digest_of(body: &[u8]) -> Option<BodyCheck> {
    Some(BodyCheck::Md5 {
        digest: md5(body),
        max_body: 1 << 20,
    })
}

fn key(probe: Probe, target: SocketAddr) -> CheckKey {
    CheckKey {
        probe,
        target,
        timeout: Duration::from_secs(5),
    }
}

const TLS13: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];
const TLS12: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS12];

/// The runner sees a TLS server up, then down (with the reason) when it stops.
#[tokio::test(flavor = "current_thread")]
async fn an_https_check_sees_a_server_up_then_down_when_it_stops() {
    let id = identity(&["api.example"]);
    let page = Page::new(b"ok\n");
    let (addr, server) = https_server(&id, TLS13, page.clone()).await;
    let mut sched = HealthScheduler::new(3);
    let spec = CheckSpec {
        key: key(
            https(Some("api.example"), None, TlsTrust::AnyCertificate),
            addr,
        ),
        timing: CheckTiming {
            interval: Duration::from_millis(50),
            retries: 0,
            rise: 1,
            fall: 1,
            start_up: false,
            ..Default::default()
        },
    };
    sched.subscribe(SubscriberId(1), spec, Instant::now());
    let (cmd_tx, cmd_rx) = mpsc::channel::<Command>(4);
    let (ev_tx, mut ev_rx) = mpsc::channel(16);
    let runner = tokio::spawn(run(sched, cmd_rx, ev_tx, 4, None));
    let next = async |rx: &mut mpsc::Receiver<HealthEvent>| {
        tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("a health event within 10 s")
            .expect("runner alive")
    };
    let up = next(&mut ev_rx).await;
    assert!(up.up && up.reason.is_none(), "{up:?}");
    // The check spoke HTTP over TLS, for the virtual host, with SNI.
    assert_eq!(page.sni.lock().unwrap()[0].as_deref(), Some("api.example"));
    let request = page.requests.lock().unwrap()[0].clone();
    assert!(
        request.starts_with("GET /healthz HTTP/1.0\r\nHost: api.example\r\n"),
        "{request:?}"
    );

    server.abort();
    let _ = server.await;
    let down = next(&mut ev_rx).await;
    assert!(!down.up, "{down:?}");
    assert!(
        matches!(down.reason, Some(FailReason::Connect(_))),
        "{down:?}"
    );
    drop(cmd_tx);
    runner.await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn a_wrong_status_and_a_changed_body_are_seen_down_with_their_reasons() {
    let id = identity(&["www.example"]);
    let page = Page::new(b"<html>version 1</html>\n");
    let (addr, _server) = https_server(&id, TLS13, page.clone()).await;
    let v1 = digest_of(b"<html>version 1</html>\n");

    // The digest of the page: up.
    let check = key(https(None, v1.clone(), TlsTrust::AnyCertificate), addr);
    assert_eq!(probe::run_probe(&check).await, Ok(()));
    // No virtual host: the address as Host, and no SNI (an address is never sent as SNI).
    assert_eq!(page.sni.lock().unwrap()[0], None);
    assert!(page.requests.lock().unwrap()[0].contains(&format!("\r\nHost: {addr}\r\n")));

    // The page changes: down, saying which digest it got and which it wanted.
    *page.body.lock().unwrap() = b"<html>version 2</html>\n".to_vec();
    let reason = probe::run_probe(&check).await.unwrap_err();
    assert_eq!(
        reason,
        FailReason::DigestMismatch {
            expected: Hex(md5(b"<html>version 1</html>\n")),
            got: Hex(md5(b"<html>version 2</html>\n")),
        }
    );
    assert_eq!(
        reason.to_string(),
        format!(
            "body MD5 {} does not match the expected {}",
            Hex(md5(b"<html>version 2</html>\n")),
            Hex(md5(b"<html>version 1</html>\n"))
        )
    );

    // A status the check does not accept: down before the body is looked at.
    *page.status.lock().unwrap() = "503 Service Unavailable";
    *page.body.lock().unwrap() = b"<html>version 1</html>\n".to_vec();
    assert_eq!(probe::run_probe(&check).await, Err(FailReason::Status(503)));
    *page.status.lock().unwrap() = "200 OK";
    assert_eq!(probe::run_probe(&check).await, Ok(()));

    // A body over the check's bound fails, saying so (hashed as it comes, not buffered).
    *page.body.lock().unwrap() = vec![b'x'; 300_000];
    let bounded = key(
        https(
            None,
            Some(BodyCheck::Md5 {
                digest: md5(&[b'x'; 300_000]),
                max_body: 200_000,
            }),
            TlsTrust::AnyCertificate,
        ),
        addr,
    );
    let reason = probe::run_probe(&bounded).await.unwrap_err();
    assert_eq!(reason, FailReason::BodyTooLong(200_000));
    assert!(reason.to_string().contains("200000 bytes"), "{reason}");
    // Within the bound, a body many reads long: up.
    let big = key(
        https(None, digest_of(&[b'x'; 300_000]), TlsTrust::AnyCertificate),
        addr,
    );
    assert_eq!(probe::run_probe(&big).await, Ok(()));
}

#[tokio::test(flavor = "current_thread")]
async fn tls_12_servers_are_checked_too() {
    let id = identity(&["legacy.example"]);
    let page = Page::new(b"old but fine\n");
    let (addr, _server) = https_server(&id, TLS12, page).await;
    let check = key(
        https(
            Some("legacy.example"),
            digest_of(b"old but fine\n"),
            TlsTrust::AnyCertificate,
        ),
        addr,
    );
    assert_eq!(probe::run_probe(&check).await, Ok(()));
}

/// A port that speaks plain HTTP, or nothing, fails the handshake with a reason saying so.
#[tokio::test(flavor = "current_thread")]
async fn a_server_that_does_not_speak_tls_fails_the_handshake() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    });
    let reason = probe::run_probe(&key(https(None, None, TlsTrust::AnyCertificate), addr))
        .await
        .unwrap_err();
    assert!(matches!(&reason, FailReason::TlsHandshake(_)), "{reason:?}");
    assert!(
        reason.to_string().starts_with("TLS handshake failed: "),
        "{reason}"
    );
}

/// With trust anchors (the CA a config will give), the chain and the name are verified; without,
/// any certificate is taken, as keepalived does.
#[tokio::test(flavor = "current_thread")]
async fn certificates_are_verified_only_against_configured_anchors() {
    let id = identity(&["api.example"]);
    let (addr, _server) = https_server(&id, TLS13, Page::new(b"ok\n")).await;
    let own = TlsTrust::Anchors(TrustAnchors::from_der(vec![id.cert.to_vec()]).unwrap());
    let other_ca = identity(&["ca.other"]);
    let other = TlsTrust::Anchors(TrustAnchors::from_der(vec![other_ca.cert.to_vec()]).unwrap());

    assert_eq!(
        probe::run_probe(&key(https(Some("api.example"), None, own.clone()), addr)).await,
        Ok(())
    );
    // Signed by a CA that is not configured.
    let reason = probe::run_probe(&key(https(Some("api.example"), None, other), addr))
        .await
        .unwrap_err();
    assert!(matches!(&reason, FailReason::Certificate(_)), "{reason:?}");
    assert!(
        reason
            .to_string()
            .starts_with("TLS certificate not trusted: "),
        "{reason}"
    );
    // Trusted CA, wrong name.
    let reason = probe::run_probe(&key(https(Some("www.example"), None, own), addr))
        .await
        .unwrap_err();
    assert!(matches!(&reason, FailReason::Certificate(_)), "{reason:?}");
    // No anchors: the same self-signed server is up whatever the name.
    assert_eq!(
        probe::run_probe(&key(
            https(Some("www.example"), None, TlsTrust::AnyCertificate),
            addr
        ))
        .await,
        Ok(())
    );
}

/// keepalived's `SSL_GET` with a `digest`, imported, planned and run against a TLS server.
#[tokio::test(flavor = "current_thread")]
async fn an_imported_ssl_get_with_a_digest_runs() {
    let id = identity(&["api.example"]);
    let body = b"kube-apiserver ok\n";
    let page = Page::new(body);
    let (addr, _server) = https_server(&id, TLS13, page.clone()).await;
    let text = format!(
        r#"
virtual_server 192.0.2.10 6443 {{
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 {port} {{
        SSL_GET {{
            url {{
                path /healthz
                digest {digest}
            }}
            connect_timeout 3
        }}
    }}
}}
"#,
        port = addr.port(),
        digest = Hex(md5(body)),
    );
    let imported = tandem_config::import::keepalived::import(&text).unwrap();
    let plan = tandem_lvs::plan::from_config(&imported.config);
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    let service = plan.services.values().next().unwrap();
    let check = service.plan.checks.values().next().unwrap();
    assert_eq!(&*check.what, "https GET /healthz md5");
    assert_eq!(check.spec.key.target, addr);
    assert_eq!(probe::run_probe(&check.spec.key).await, Ok(()));
    *page.body.lock().unwrap() = b"kube-apiserver degraded\n".to_vec();
    assert!(matches!(
        probe::run_probe(&check.spec.key).await,
        Err(FailReason::DigestMismatch { .. })
    ));
}
