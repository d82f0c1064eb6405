//! The built appliance image (`make image`): a static `tandem` as `/init`, and nothing in the
//! initramfs but `init`, the board data and kernel modules; sizes within the footprint targets.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::io::Read;

#[test]
fn the_built_image_holds_only_init_board_data_and_modules() {
    let dir = tandem_lab::image_dir("qemu-lab");
    let bytes = std::fs::read(dir.join("initramfs.cpio.gz"))
        .unwrap_or_else(|e| panic!("{}: {e}; run make image first", dir.display()));
    let mut archive = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_end(&mut archive)
        .unwrap();
    let entries = tandem_image::cpio::read_archive(&archive).unwrap();
    let mut modules = 0;
    for entry in &entries {
        let ok = matches!(
            entry.path.as_str(),
            "init" | "etc" | "etc/tandem" | "etc/tandem/board" | "lib" | "lib/modules"
        ) || entry.path.starts_with("lib/modules/");
        assert!(ok, "unexpected member {}", entry.path);
        if entry.path.ends_with(".ko") {
            modules += 1;
        }
    }
    assert!(modules > 10, "only {modules} modules");
    let init = entries.iter().find(|e| e.path == "init").expect("init");
    assert!(
        !tandem_image::build::has_interpreter(&init.data),
        "init must be static"
    );
    assert!(
        init.data.len() <= 4 * 1024 * 1024,
        "tandem is {} bytes, over 4 MiB",
        init.data.len()
    );
    let kernel = std::fs::metadata(dir.join("vmlinuz")).unwrap().len();
    let total = kernel + u64::try_from(bytes.len()).unwrap();
    assert!(
        total <= 16 * 1024 * 1024,
        "kernel + initramfs is {total} bytes, over 16 MiB"
    );
}

#[test]
fn file_calls_tandem_statically_linked() {
    let binary =
        tandem_lab::workspace_root().join("target/x86_64-unknown-linux-gnu/release/tandem");
    let output = std::process::Command::new("file")
        .arg(&binary)
        .output()
        .expect("file(1) is installed by make deps");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("statically linked"), "{text}");
    let version = std::process::Command::new(&binary)
        .arg("--version")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("tandem "));
}
