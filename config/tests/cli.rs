//! The `tandem config` command line, driven through `cli::run` with files in a temp directory.

// Test code: panics are the failure report, and the figures are small known values.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_lossless
)]

use std::path::PathBuf;

use tandem_config::cli;

fn data(name: &str) -> String {
    format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tandem-config-cli-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(args: &[&str]) -> (i32, String, String) {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = cli::run(&args, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn import_show_encode_decode_diff() {
    let dir = temp_dir("flow");
    let toml = dir.join("director1.toml");
    let (code, _, err) = run(&[
        "import",
        &data("director1.keepalived.conf"),
        "-o",
        toml.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("auth_pass") && err.contains("0 error(s)"),
        "{err}"
    );

    let (code, shown, err) = run(&["show", toml.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        shown,
        std::fs::read_to_string(&toml).unwrap(),
        "show prints the canonical text"
    );

    let blob = dir.join("director1.blob");
    let (code, _, err) = run(&[
        "encode",
        toml.to_str().unwrap(),
        "-o",
        blob.to_str().unwrap(),
        "--generation",
        "5",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, decoded, err) = run(&["decode", blob.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(decoded.contains("# generation = 5"));
    assert!(
        decoded.ends_with(&shown),
        "decode prints the same canonical text"
    );

    // show and check accept a blob too (detected by magic).
    let (code, shown_blob, _) = run(&["show", blob.to_str().unwrap()]);
    assert_eq!((code, shown_blob.as_str()), (0, shown.as_str()));
    let (code, _, err) = run(&["check", blob.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");

    let (code, out, _) = run(&["diff", toml.to_str().unwrap(), blob.to_str().unwrap()]);
    assert_eq!((code, out.as_str()), (0, ""));
    let other = dir.join("director2.toml");
    let (code, _, _) = run(&[
        "import",
        &data("director2.keepalived.conf"),
        "-o",
        other.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    let (code, out, _) = run(&["diff", toml.to_str().unwrap(), other.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        out.contains("[system]\n- hostname = \"director1\"\n+ hostname = \"director2\""),
        "{out}"
    );

    let (code, exported, err) = run(&["export", "--format", "keepalived", blob.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(exported.contains("virtual_router_id 20"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn keyed_blob_needs_the_right_key() {
    let dir = temp_dir("keyed");
    let toml = dir.join("lvs.toml");
    let (code, _, err) = run(&[
        "import",
        &data("piranha.lvs.cf"),
        "--format",
        "lvs",
        "-o",
        toml.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let key = dir.join("key");
    std::fs::write(&key, "11".repeat(32)).unwrap();
    let blob = dir.join("lvs.blob");
    let (code, _, err) = run(&[
        "encode",
        toml.to_str().unwrap(),
        "-o",
        blob.to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(&[
        "decode",
        blob.to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, 0);
    assert!(out.contains("# mac = verified"));
    std::fs::write(&key, "22".repeat(32)).unwrap();
    let (code, _, err) = run(&[
        "decode",
        blob.to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("MAC does not verify"), "{err}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn check_reports_every_error_and_fails() {
    let dir = temp_dir("check");
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        r#"
[[interfaces]]
name = "eth0"
addresses = ["10.0.0.2/24"]

[[vrrp]]
name = "mail_vip"
interface = "eth0"
vrid = 20
vips = [{ address = "10.0.0.10", prefix = 32 }]

[[vrrp]]
name = "web_vip"
interface = "eth0"
vrid = 20
vips = [{ address = "10.9.0.10", prefix = 32 }]
"#,
    )
    .unwrap();
    let (code, _, err) = run(&["check", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains(
            r#"vrrp "web_vip": virtual_router_id 20 is already used by vrrp "mail_vip" on eth0"#
        ),
        "{err}"
    );
    assert!(err.contains("10.9.0.10 is not inside any subnet"), "{err}");
    assert!(err.contains("2 error(s)"), "{err}");

    std::fs::write(&bad, "[system]\nhostnme = \"x\"\n").unwrap();
    let (code, _, err) = run(&["check", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("hostnme"), "{err}");
    let (code, _, _) = run(&["frobnicate"]);
    assert_eq!(code, 2);
    std::fs::remove_dir_all(dir).unwrap();
}
