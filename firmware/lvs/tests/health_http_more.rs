//! HTTP checks of format 5 on 127.0.0.1, planned from configs as an operator writes them:
//! several URLs (each on a connection of its own, down at the first that fails, naming it),
//! status code ranges (503 accepted when listed), and HTTPS verified against a `[[tls_trust]]`
//! set (`tls_ca`): a server whose certificate a test CA signed is up, one signed by another CA,
//! or for another name, is down with a certificate reason; without `tls_ca` both are up.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tandem_lvs::health::probe::run_probe;
use tandem_lvs::health::FailReason;
use tandem_lvs::plan::PlannedCheck;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// What the server saw: one entry per connection, the request line (`-` when none came).
type Seen = Arc<Mutex<Vec<String>>>;

/// Answers `GET /<code>...` with that status (`/200-ok` -> 200), anything else with 404; the
/// body names the path.
async fn answer<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, seen: Seen) {
    let mut head = Vec::new();
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 8192 {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let line = text.lines().next().unwrap_or("-").to_owned();
    seen.lock().unwrap().push(line.clone());
    let path = line.split(' ').nth(1).unwrap_or("/");
    let status = path
        .get(1..4)
        .and_then(|code| code.parse::<u16>().ok())
        .unwrap_or(404);
    let body = format!("page {path}\n");
    let reply = format!(
        "HTTP/1.0 {status} Something\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(reply.as_bytes()).await;
    let _ = stream.shutdown().await;
}

async fn http_server() -> (SocketAddr, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(answer(tcp, log.clone()));
        }
    });
    (addr, seen)
}

async fn https_server(chain: Vec<CertificateDer<'static>>, key: Vec<u8>) -> (SocketAddr, Seen) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)))
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Seen::default();
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, log) = (acceptor.clone(), log.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    answer(tls, log).await;
                }
            });
        }
    });
    (addr, seen)
}

/// The single check of a config with one service at `target` whose check is `check` (TOML).
fn planned(target: SocketAddr, check: &str, extra: &str) -> PlannedCheck {
    let text = format!(
        r#"{extra}
[[virtual_services]]
address = "192.0.2.10"
port = 80
check = {check}

[[virtual_services.real_servers]]
address = "{ip}"
port = {port}
"#,
        ip = target.ip(),
        port = target.port()
    );
    let config = tandem_config::text::from_toml(&text).unwrap();
    let issues = tandem_config::validate::validate(&config);
    assert!(!tandem_config::validate::has_errors(&issues), "{issues:?}");
    let plan = tandem_lvs::plan::from_config(&config);
    assert!(plan.notes.is_empty(), "{:?}", plan.notes);
    plan.services
        .values()
        .next()
        .unwrap()
        .plan
        .checks
        .values()
        .next()
        .unwrap()
        .clone()
}

fn seen(log: &Seen) -> Vec<String> {
    std::mem::take(&mut *log.lock().unwrap())
}

#[tokio::test(flavor = "current_thread")]
async fn every_url_is_fetched_and_the_first_failing_one_is_named() {
    let (addr, log) = http_server().await;
    // Both URLs answer as asked: up, each on a connection of its own.
    let both = planned(
        addr,
        r#"{ kind = { http = { path = "/200-a", more_urls = [{ path = "/204-b" }] } } }"#,
        "",
    );
    assert_eq!(&*both.what, "http GET /200-a, GET /204-b");
    assert_eq!(run_probe(&both.spec.key).await, Ok(()));
    assert_eq!(
        seen(&log),
        ["GET /200-a HTTP/1.0", "GET /204-b HTTP/1.0"],
        "one connection per URL"
    );

    // The second URL fails: down, the reason names it; a third is not fetched.
    let second_fails = planned(
        addr,
        r#"{ kind = { http = { path = "/200-a", more_urls = [{ path = "/404-b" }, { path = "/200-c" }] } } }"#,
        "",
    );
    let reason = run_probe(&second_fails.spec.key).await.unwrap_err();
    assert_eq!(
        reason,
        FailReason::Url {
            path: "/404-b".into(),
            reason: Box::new(FailReason::Status(404)),
        }
    );
    assert_eq!(
        reason.to_string(),
        "GET /404-b: HTTP status 404 not accepted"
    );
    assert_eq!(seen(&log), ["GET /200-a HTTP/1.0", "GET /404-b HTTP/1.0"]);

    // The first URL fails: named too, and the others are not fetched.
    let first_fails = planned(
        addr,
        r#"{ kind = { http = { path = "/500-a", more_urls = [{ path = "/200-b" }] } } }"#,
        "",
    );
    let reason = run_probe(&first_fails.spec.key).await.unwrap_err();
    assert_eq!(
        reason.to_string(),
        "GET /500-a: HTTP status 500 not accepted"
    );
    assert_eq!(seen(&log), ["GET /500-a HTTP/1.0"]);
}

#[tokio::test(flavor = "current_thread")]
async fn status_ranges_accept_what_they_list() {
    let (addr, _log) = http_server().await;
    let check = |status: &str, path: &str| {
        planned(
            addr,
            &format!(r#"{{ kind = {{ http = {{ path = "{path}", status = "{status}" }} }} }}"#),
            "",
        )
    };
    // 503 is accepted when listed, on its own or in a range.
    assert_eq!(
        run_probe(&check("200-299 503", "/503-x").spec.key).await,
        Ok(())
    );
    assert_eq!(
        run_probe(&check("500-599", "/503-x").spec.key).await,
        Ok(())
    );
    assert_eq!(
        run_probe(&check("200-299 503", "/204-x").spec.key).await,
        Ok(())
    );
    assert_eq!(
        run_probe(&check("200-299", "/503-x").spec.key).await,
        Err(FailReason::Status(503))
    );
    assert_eq!(
        run_probe(&check("200-299 400-499", "/302-x").spec.key).await,
        Err(FailReason::Status(302))
    );
    // The default (no status): any 2xx.
    let default = planned(addr, r#"{ kind = { http = { path = "/299-x" } } }"#, "");
    assert_eq!(run_probe(&default.spec.key).await, Ok(()));
    let default = planned(addr, r#"{ kind = { http = { path = "/301-x" } } }"#, "");
    assert_eq!(
        run_probe(&default.spec.key).await,
        Err(FailReason::Status(301))
    );
    // A further URL with its own ranges.
    let mixed = planned(
        addr,
        r#"{ kind = { http = { path = "/200-a", more_urls = [{ path = "/503-b", status = "503" }] } } }"#,
        "",
    );
    assert_eq!(run_probe(&mixed.spec.key).await, Ok(()));
}

/// A test CA: its certificate in PEM and an issuer for leaves.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> Ca {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).unwrap();
    Ca {
        pem: cert.pem(),
        issuer: Issuer::new(params, key),
    }
}

/// A server certificate for `names` (DNS names or addresses) signed by `ca`, and its key.
fn leaf(ca: &Ca, names: &[&str]) -> (Vec<CertificateDer<'static>>, Vec<u8>) {
    let key = KeyPair::generate().unwrap();
    let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
    let cert = CertificateParams::new(names)
        .unwrap()
        .signed_by(&key, &ca.issuer)
        .unwrap();
    (vec![cert.der().clone()], key.serialize_der())
}

fn trust(name: &str, ca: &Ca) -> String {
    format!(
        "[[tls_trust]]\nname = \"{name}\"\npem = '''\n{}'''\n",
        ca.pem
    )
}

#[tokio::test(flavor = "current_thread")]
async fn tls_ca_verifies_the_chain_and_the_name() {
    let corp = ca("Tandem test CA");
    let other = ca("Some other CA");
    let (chain, key) = leaf(&corp, &["api.example"]);
    let (signed_by_corp, log) = https_server(chain, key).await;
    let (chain, key) = leaf(&other, &["api.example"]);
    let (signed_by_other, _) = https_server(chain, key).await;
    let (chain, key) = leaf(&corp, &["127.0.0.1"]);
    let (by_address, _) = https_server(chain, key).await;

    let verified = r#"{ kind = { http = { path = "/200-a", tls = true, virtual_host = "api.example", tls_ca = "corp" } } }"#;
    let sets = trust("corp", &corp);

    // Signed by the configured CA for the virtual host: up.
    let check = planned(signed_by_corp, verified, &sets);
    assert_eq!(&*check.what, "https GET /200-a (CA corp)");
    assert_eq!(run_probe(&check.spec.key).await, Ok(()));
    assert_eq!(seen(&log), ["GET /200-a HTTP/1.0"]);

    // Signed by another CA: down, the certificate is not trusted.
    let check = planned(signed_by_other, verified, &sets);
    let reason = run_probe(&check.spec.key).await.unwrap_err();
    assert!(matches!(&reason, FailReason::Certificate(_)), "{reason:?}");
    assert!(
        reason
            .to_string()
            .starts_with("TLS certificate not trusted: "),
        "{reason}"
    );

    // The right CA, another name: down.
    let other_name = r#"{ kind = { http = { path = "/200-a", tls = true, virtual_host = "www.example", tls_ca = "corp" } } }"#;
    let reason = run_probe(&planned(signed_by_corp, other_name, &sets).spec.key)
        .await
        .unwrap_err();
    assert!(matches!(&reason, FailReason::Certificate(_)), "{reason:?}");

    // No virtual host: the name checked is the address (an IP SAN).
    let by_ip = r#"{ kind = { http = { path = "/200-a", tls = true, tls_ca = "corp" } } }"#;
    assert_eq!(
        run_probe(&planned(by_address, by_ip, &sets).spec.key).await,
        Ok(())
    );
    let reason = run_probe(&planned(signed_by_corp, by_ip, &sets).spec.key)
        .await
        .unwrap_err();
    assert!(matches!(&reason, FailReason::Certificate(_)), "{reason:?}");

    // Without tls_ca (keepalived's way), neither chain nor name is verified.
    let unverified =
        r#"{ kind = { http = { path = "/200-a", tls = true, virtual_host = "www.example" } } }"#;
    for server in [signed_by_corp, signed_by_other] {
        assert_eq!(
            run_probe(&planned(server, unverified, "").spec.key).await,
            Ok(())
        );
    }
    assert_eq!(
        seen(&log),
        ["GET /200-a HTTP/1.0"],
        "requests only after a handshake passed"
    );

    // Several URLs over verified TLS: a handshake per URL, a failing URL named.
    let urls = r#"{ kind = { http = { path = "/200-a", tls = true, virtual_host = "api.example", tls_ca = "corp", more_urls = [{ path = "/200-b" }, { path = "/503-c" }] } } }"#;
    let reason = run_probe(&planned(signed_by_corp, urls, &sets).spec.key)
        .await
        .unwrap_err();
    assert_eq!(
        reason.to_string(),
        "GET /503-c: HTTP status 503 not accepted"
    );
    assert_eq!(
        seen(&log),
        [
            "GET /200-a HTTP/1.0",
            "GET /200-b HTTP/1.0",
            "GET /503-c HTTP/1.0"
        ]
    );
    // ... and a certificate failure on the first URL names it.
    let reason = run_probe(&planned(signed_by_other, urls, &sets).spec.key)
        .await
        .unwrap_err();
    assert!(
        reason
            .to_string()
            .starts_with("GET /200-a: TLS certificate not trusted: "),
        "{reason}"
    );
}
