//! The image builder on a synthetic kernel tree: same inputs give the same bytes, the
//! initramfs holds only `init`, board data and the module closure, and a dynamic binary is refused.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::io::Read;
use std::path::{Path, PathBuf};

use tandem_image::kernel::Kernel;
use tandem_image::{build_image, BuildError, ImageRequest};

fn fake_kernel(root: &Path) -> Kernel {
    let release = "6.1.0-99-amd64";
    let modules = root.join("lib/modules").join(release);
    std::fs::create_dir_all(&modules).unwrap();
    let mut dep = String::new();
    for module in tandem_board::profiles::QEMU_LAB.all_modules() {
        let path = format!("kernel/fake/{module}.ko");
        std::fs::create_dir_all(modules.join("kernel/fake")).unwrap();
        std::fs::write(modules.join(&path), format!("module {module}")).unwrap();
        // Every feature module depends on a shared helper, to exercise the closure.
        dep.push_str(&format!("{path}: kernel/fake/helper.ko\n"));
    }
    std::fs::write(modules.join("kernel/fake/helper.ko"), b"helper").unwrap();
    std::fs::write(modules.join("kernel/fake/unused.ko"), b"unused").unwrap();
    dep.push_str("kernel/fake/helper.ko:\nkernel/fake/unused.ko:\n");
    std::fs::write(modules.join("modules.dep"), dep).unwrap();
    std::fs::write(
        modules.join("modules.builtin"),
        "kernel/net/packet/af_packet.ko\n",
    )
    .unwrap();
    // af_packet is built in here, so drop its loadable line.
    let dep = std::fs::read_to_string(modules.join("modules.dep")).unwrap();
    let dep: String = dep
        .lines()
        .filter(|l| !l.contains("af_packet"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(modules.join("modules.dep"), dep).unwrap();
    std::fs::create_dir_all(root.join("boot")).unwrap();
    let vmlinuz = root.join("boot").join(format!("vmlinuz-{release}"));
    std::fs::write(&vmlinuz, b"kernel image").unwrap();
    Kernel {
        release: release.into(),
        vmlinuz,
        modules,
    }
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tandem-image-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn members(initramfs: &Path) -> Vec<tandem_image::cpio::Entry> {
    let bytes = std::fs::read(initramfs).unwrap();
    let mut archive = Vec::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_end(&mut archive)
        .unwrap();
    tandem_image::cpio::read_archive(&archive).unwrap()
}

#[test]
fn same_inputs_same_bytes_and_only_init_board_data_and_modules() {
    let root = temp("repro");
    let kernel = fake_kernel(&root);
    let tandem = root.join("tandem");
    std::fs::write(
        &tandem,
        b"\x7fELF static stand-in without a program interpreter",
    )
    .unwrap();
    let board = tandem_board::by_name("qemu-lab").unwrap();
    let first = build_image(&ImageRequest {
        board,
        kernel: kernel.clone(),
        tandem: tandem.clone(),
        out: root.join("a"),
    })
    .unwrap();
    let second = build_image(&ImageRequest {
        board,
        kernel,
        tandem,
        out: root.join("b"),
    })
    .unwrap();
    assert_eq!(first, second);
    let a = std::fs::read(root.join("a/initramfs.cpio.gz")).unwrap();
    let b = std::fs::read(root.join("b/initramfs.cpio.gz")).unwrap();
    assert_eq!(a, b, "initramfs bytes differ between identical builds");

    let entries = members(&root.join("a/initramfs.cpio.gz"));
    for entry in &entries {
        let allowed = entry.path == "init"
            || entry.path == "etc"
            || entry.path.starts_with("etc/tandem")
            || entry.path == "lib"
            || entry.path.starts_with("lib/modules");
        assert!(allowed, "unexpected initramfs member {}", entry.path);
    }
    let init = entries.iter().find(|e| e.path == "init").unwrap();
    assert_eq!(init.mode, 0o100_755);
    let board_file = entries
        .iter()
        .find(|e| e.path == "etc/tandem/board")
        .unwrap();
    assert_eq!(board_file.data, b"qemu-lab\n");
    assert!(
        entries
            .iter()
            .any(|e| e.path.ends_with("kernel/fake/helper.ko")),
        "dependency closure"
    );
    assert!(
        !entries.iter().any(|e| e.path.ends_with("unused.ko")),
        "only the closure is shipped"
    );
    assert!(
        !entries.iter().any(|e| e.path.contains("af_packet.ko")),
        "built-ins are not shipped"
    );
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn a_dynamically_linked_binary_is_refused_with_the_fix() {
    let root = temp("dynamic");
    let kernel = fake_kernel(&root);
    let board = tandem_board::by_name("qemu-lab").unwrap();
    let this_test = std::env::current_exe().unwrap();
    let error = build_image(&ImageRequest {
        board,
        kernel,
        tandem: this_test,
        out: root.join("out"),
    })
    .unwrap_err();
    assert!(matches!(error, BuildError::NotStatic { .. }));
    assert!(error.to_string().contains("crt-static"), "{error}");
    std::fs::remove_dir_all(root).unwrap();
}
