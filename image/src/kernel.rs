//! Finding the Debian kernel to ship: `/boot/vmlinuz-<release>` with its `/lib/modules/<release>`.

use std::path::{Path, PathBuf};

/// An installed kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kernel {
    pub release: String,
    pub vmlinuz: PathBuf,
    pub modules: PathBuf,
}

/// Compares Debian kernel releases like `6.1.0-56-amd64` numerically, part by part.
fn release_key(release: &str) -> Vec<u64> {
    release
        .split(|c: char| !c.is_ascii_digit())
        .filter(|part| !part.is_empty())
        .map(|part| part.parse().unwrap_or(0))
        .collect()
}

/// Installed kernels under `root` (normally `/`) that have both a vmlinuz and a modules.dep,
/// newest first.
pub fn installed_kernels(root: &Path) -> Vec<Kernel> {
    let mut kernels = Vec::new();
    let Ok(entries) = std::fs::read_dir(root.join("boot")) else {
        return kernels;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(release) = name.strip_prefix("vmlinuz-") else {
            continue;
        };
        let modules = root.join("lib/modules").join(release);
        if modules.join("modules.dep").is_file() {
            kernels.push(Kernel {
                release: release.to_owned(),
                vmlinuz: entry.path(),
                modules,
            });
        }
    }
    kernels.sort_by_key(|k| std::cmp::Reverse(release_key(&k.release)));
    kernels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_sort_numerically() {
        assert!(release_key("6.1.0-56-amd64") > release_key("6.1.0-9-amd64"));
        assert!(release_key("6.12.1-1-amd64") > release_key("6.1.0-56-amd64"));
    }

    #[test]
    fn kernels_need_both_image_and_modules() {
        let root = std::env::temp_dir().join(format!("tandem-kernels-{}", std::process::id()));
        std::fs::create_dir_all(root.join("boot")).unwrap();
        std::fs::create_dir_all(root.join("lib/modules/6.1.0-9-amd64")).unwrap();
        std::fs::create_dir_all(root.join("lib/modules/6.1.0-56-amd64")).unwrap();
        for release in ["6.1.0-9-amd64", "6.1.0-56-amd64", "6.2.0-1-amd64"] {
            std::fs::write(root.join(format!("boot/vmlinuz-{release}")), b"k").unwrap();
        }
        std::fs::write(root.join("lib/modules/6.1.0-9-amd64/modules.dep"), b"").unwrap();
        std::fs::write(root.join("lib/modules/6.1.0-56-amd64/modules.dep"), b"").unwrap();
        let found: Vec<String> = installed_kernels(&root)
            .into_iter()
            .map(|k| k.release)
            .collect();
        assert_eq!(
            found,
            vec!["6.1.0-56-amd64".to_owned(), "6.1.0-9-amd64".to_owned()]
        );
        std::fs::remove_dir_all(root).unwrap();
    }
}
