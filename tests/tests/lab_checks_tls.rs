//! keepalived's `SSL_GET` and `digest` checks, imported and run on a qemu director (lab image):
//! box-a directs two NAT services to rs1, whose lab-httpd serves the same page over TLS on 8443
//! (a self-signed certificate made at its start) and in the clear on 80. The keepalived.conf is
//! imported as an operator would (`tandem config import`); the director's log shows the HTTPS
//! check see rs1 up, both digest checks see a changed page down (expected and got MD5), the
//! page restored up again, and the HTTPS check see rs1 down when it stops serving.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::time::Duration;

use tandem_lab::servers::{boot_nat_director_with_rs1, director_with_keepalived, rs1_control};
use tandem_lab::{Lab, QemuBox};
use tandem_lvs::health::digest::{md5, Hex};

const BOOT: Duration = Duration::from_secs(240);
/// Checks every second with a 2 s timeout: TCG on a loaded machine stretches that, so allow
/// generously.
const CHECK_BOUND: Duration = Duration::from_secs(60);

/// keepalived.conf for box-a: an `SSL_GET` with a digest on 8443 and an `HTTP_GET` with a
/// digest on 80, both of rs1's page; `alpha` starts the server down until a check passes, so
/// the log shows the first pass.
fn keepalived_conf(digest: &str) -> String {
    let service = |port: u16, checker: &str| {
        format!(
            r#"
virtual_server 192.0.2.10 {port} {{
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    alpha

    real_server 198.51.100.11 {port} {{
        weight 1
        {checker} {{
            url {{
              path /
              digest {digest}
            }}
            connect_timeout 2
            retry 0
            delay_before_retry 1
        }}
    }}
}}
"#
        )
    };
    service(8443, "SSL_GET") + &service(80, "HTTP_GET")
}

/// The director's config: the lab's NAT director with the imported services.
fn director(page: &[u8]) -> String {
    director_with_keepalived(&keepalived_conf(&Hex(md5(page)).to_string())).unwrap()
}

fn wait(director: &QemuBox, line: &str) {
    director.console.wait_for(line, CHECK_BOUND).unwrap();
}

#[test]
fn imported_ssl_get_and_digest_checks_see_a_tls_server_up_a_changed_page_and_a_stop() {
    let page = b"served-by rs1\n";
    let changed = b"served-by rs1 v2\n";
    let mut lab = Lab::new().expect("lab");
    boot_nat_director_with_rs1(&mut lab, &director(page), BOOT).expect("boxes boot");
    lab.box_named("rs1")
        .unwrap()
        .console
        .wait_for_any_time("lab-httpd: serving on port 8443", BOOT)
        .unwrap();

    // Up: the TLS handshake, the status and the page's MD5 pass; rs1 enters both services.
    let director = lab.box_named("box-a").unwrap();
    for line in [
        "198.51.100.11:8443: check https GET / md5 passed: up",
        "198.51.100.11:80: check http GET / md5 passed: up",
        "lvs: add 198.51.100.11:8443 weight 1 to tcp 192.0.2.10:8443",
    ] {
        director.console.wait_for_any_time(line, BOOT).unwrap();
    }

    // The page changes: both digest checks see it, saying which MD5 they got.
    assert!(rs1_control(&lab, "body/v2")
        .unwrap()
        .contains("rs1 serving"));
    let mismatch = format!(
        "failed: down (body MD5 {} does not match the expected {})",
        Hex(md5(changed)),
        Hex(md5(page))
    );
    // (Each line names the digest it got, so it can only come from the change; the two checks
    // see it in either order.)
    let director = lab.box_named("box-a").unwrap();
    for check in ["8443: check https GET / md5", "80: check http GET / md5"] {
        director
            .console
            .wait_for_any_time(&format!("198.51.100.11:{check} {mismatch}"), CHECK_BOUND)
            .unwrap();
    }

    // The page restored: up again.
    director.console.skip_to_end();
    rs1_control(&lab, "body/").unwrap();
    let director = lab.box_named("box-a").unwrap();
    wait(
        director,
        "198.51.100.11:8443: check https GET / md5 passed: up",
    );

    // rs1 stops serving: the HTTPS check sees it down and the director takes it out.
    director.console.skip_to_end();
    assert!(rs1_control(&lab, "stop").unwrap().contains("rs1 stopped"));
    let director = lab.box_named("box-a").unwrap();
    wait(
        director,
        "198.51.100.11:8443: check https GET / md5 failed: down (connect failed: ",
    );
    let status = director
        .engine_status("lvs", Duration::from_secs(60))
        .unwrap();
    assert!(
        status
            .iter()
            .any(|l| l.contains("-> 198.51.100.11:8443 (out) | https GET / md5 down")),
        "{status:?}"
    );
}
