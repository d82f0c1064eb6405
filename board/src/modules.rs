//! Kernel module dependency closure from `modules.dep`.
//!
//! The image carries no modprobe, so both the image builder (which modules to copy) and the
//! appliance (in which order to `finit_module` them) resolve dependencies here, from the same
//! `modules.dep` text depmod wrote for the kernel. One implementation, two users, same order.

use std::collections::{BTreeMap, BTreeSet};

/// A parsed `modules.dep`: module name -> (relative path, direct and indirect dependencies' paths).
#[derive(Debug, Clone, Default)]
pub struct ModuleIndex {
    /// Module name (normalised: `-` becomes `_`) to its path relative to `/lib/modules/<release>`.
    paths: BTreeMap<String, String>,
    /// Relative path to the paths it depends on, as depmod listed them.
    deps: BTreeMap<String, Vec<String>>,
    /// Modules compiled into the kernel (`modules.builtin`), which need no loading.
    builtin: BTreeSet<String>,
}

/// Why a module list could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModuleError {
    /// A requested module is neither a loadable module nor built in.
    Unknown { module: String },
    /// `modules.dep` names a dependency it has no line for: the file is damaged; rerun depmod.
    DanglingDependency { path: String, dependency: String },
    /// `modules.dep` line without a colon.
    Malformed { line: usize },
}

impl core::fmt::Display for ModuleError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ModuleError::Unknown { module } => write!(
                f,
                "kernel module `{module}` is not in modules.dep and not built in: remove it from the \
                 board profile or install a kernel that has it"
            ),
            ModuleError::DanglingDependency { path, dependency } => write!(
                f,
                "modules.dep says {path} needs {dependency}, which it does not list: run depmod for \
                 this kernel"
            ),
            ModuleError::Malformed { line } => {
                write!(f, "modules.dep line {line} has no `:`: run depmod for this kernel")
            }
        }
    }
}

impl std::error::Error for ModuleError {}

/// The name a module is known by, from its path (`kernel/net/ipv4/ipip.ko` -> `ipip`).
pub fn module_name(path: &str) -> String {
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split(".ko").next().unwrap_or(file);
    normalise(stem)
}

fn normalise(name: &str) -> String {
    name.replace('-', "_")
}

/// Soft dependencies (`modules.softdep` `pre:` entries) of the modules Tandem loads, as
/// (module, module that must load before it). depmod does not put them in `modules.dep`, and
/// the image has no modprobe to read `modules.softdep`, so both users of [`ModuleIndex`] (the
/// image builder copying modules and the appliance loading them) honour this table instead.
///
/// - `libcrc32c` (needed by `nf_conntrack`, `nf_tables`, `ip_vs`): its init asks the crypto
///   API for `crc32c` and fails with ENOENT when no provider is loaded (Debian: `softdep
///   libcrc32c pre: crc32c`). Without it `nf_tables` does not load on a box whose first
///   netfilter user is not the LVS engine. `crc32c_generic` is the provider that works on every
///   CPU (`crc32c_intel` needs SSE4.2).
/// - `crc_t10dif` (under `sd_mod`, the config disk of SATA boards): `softdep crc_t10dif pre:
///   crct10dif`. It falls back to a table of its own without a provider, so this is parity
///   with modprobe rather than a fix.
///
/// `board::profiles` tests check against the installed kernel's `modules.softdep` that every
/// `pre:` soft dependency of a board's modules is covered here.
pub const SOFT_PRE_DEPENDENCIES: &[(&str, &str)] = &[
    ("libcrc32c", "crc32c_generic"),
    ("crc_t10dif", "crct10dif_generic"),
];

impl ModuleIndex {
    /// Parses `modules.dep` and, optionally, `modules.builtin` (pass "" when absent).
    pub fn parse(modules_dep: &str, modules_builtin: &str) -> Result<ModuleIndex, ModuleError> {
        let mut index = ModuleIndex::default();
        for (number, line) in modules_dep.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (path, deps) = line
                .split_once(':')
                .ok_or(ModuleError::Malformed { line: number + 1 })?;
            let path = path.trim().to_owned();
            let deps = deps.split_whitespace().map(str::to_owned).collect();
            index.paths.insert(module_name(&path), path.clone());
            index.deps.insert(path, deps);
        }
        for line in modules_builtin.lines() {
            let line = line.trim();
            if !line.is_empty() {
                index.builtin.insert(module_name(line));
            }
        }
        Ok(index)
    }

    /// Whether `name` is compiled into the kernel.
    pub fn is_builtin(&self, name: &str) -> bool {
        self.builtin.contains(&normalise(name))
    }

    /// The relative path of a loadable module.
    pub fn path_of(&self, name: &str) -> Option<&str> {
        self.paths.get(&normalise(name)).map(String::as_str)
    }

    /// Relative paths of `wanted` and everything they need, dependencies before dependants, each
    /// once. Built-in modules are skipped; unknown ones are an error.
    pub fn load_order<'a>(
        &self,
        wanted: impl IntoIterator<Item = &'a str>,
    ) -> Result<Vec<String>, ModuleError> {
        let mut order = Vec::new();
        let mut placed = BTreeSet::new();
        for name in wanted {
            if self.is_builtin(name) {
                continue;
            }
            let path = self.path_of(name).ok_or_else(|| ModuleError::Unknown {
                module: name.to_owned(),
            })?;
            self.place(path, &mut placed, &mut order, 0)?;
        }
        Ok(order)
    }

    /// Depth-first post-order placement. depmod lists the full transitive set on each line, so
    /// the depth stays small; the bound only guards against a hand-made cyclic file.
    fn place(
        &self,
        path: &str,
        placed: &mut BTreeSet<String>,
        order: &mut Vec<String>,
        depth: usize,
    ) -> Result<(), ModuleError> {
        if placed.contains(path) || depth > 64 {
            return Ok(());
        }
        let deps = self.deps.get(path).ok_or_else(|| ModuleError::Unknown {
            module: module_name(path),
        })?;
        placed.insert(path.to_owned());
        for dependency in deps {
            if !self.deps.contains_key(dependency) {
                return Err(ModuleError::DanglingDependency {
                    path: path.to_owned(),
                    dependency: dependency.clone(),
                });
            }
            self.place(dependency, placed, order, depth + 1)?;
        }
        // Soft dependencies the kernel has as modules come first too; built-in or absent ones
        // are skipped, as modprobe skips them.
        let name = module_name(path);
        for (module, soft) in SOFT_PRE_DEPENDENCIES {
            if *module != name || self.is_builtin(soft) {
                continue;
            }
            if let Some(soft_path) = self.path_of(soft).map(str::to_owned) {
                self.place(&soft_path, placed, order, depth + 1)?;
            }
        }
        order.push(path.to_owned());
        Ok(())
    }

    /// The `modules.dep` lines for just these paths (the image ships this subset).
    pub fn subset_text(&self, paths: &[String]) -> String {
        let mut text = String::new();
        for path in paths {
            if let Some(deps) = self.deps.get(path) {
                text.push_str(path);
                text.push(':');
                for dependency in deps {
                    text.push(' ');
                    text.push_str(dependency);
                }
                text.push('\n');
            }
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEP: &str = "\
kernel/net/netfilter/ipvs/ip_vs.ko: kernel/net/netfilter/nf_conntrack.ko kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/ipvs/ip_vs_wrr.ko: kernel/net/netfilter/ipvs/ip_vs.ko kernel/net/netfilter/nf_conntrack.ko kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/nf_conntrack.ko: kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko kernel/lib/libcrc32c.ko
kernel/net/ipv6/netfilter/nf_defrag_ipv6.ko:
kernel/net/ipv4/netfilter/nf_defrag_ipv4.ko:
kernel/lib/libcrc32c.ko:
kernel/drivers/net/dummy.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio.ko:
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/i2c/algos/i2c-algo-bit.ko:
";

    fn position(order: &[String], name: &str) -> usize {
        order.iter().position(|p| module_name(p) == name).unwrap()
    }

    #[test]
    fn dependencies_come_before_dependants_and_each_once() {
        let index = ModuleIndex::parse(DEP, "kernel/net/packet/af_packet.ko\n").unwrap();
        let order = index.load_order(["ip_vs_wrr", "ip_vs", "dummy"]).unwrap();
        assert_eq!(order.len(), 7);
        assert!(position(&order, "libcrc32c") < position(&order, "nf_conntrack"));
        assert!(position(&order, "nf_defrag_ipv4") < position(&order, "nf_conntrack"));
        assert!(position(&order, "nf_conntrack") < position(&order, "ip_vs"));
        assert!(position(&order, "ip_vs") < position(&order, "ip_vs_wrr"));
        let unique: BTreeSet<_> = order.iter().collect();
        assert_eq!(unique.len(), order.len());
    }

    #[test]
    fn soft_dependencies_load_first_when_the_kernel_has_them_as_modules() {
        let dep = format!("{DEP}kernel/crypto/crc32c_generic.ko:\n");
        let index = ModuleIndex::parse(&dep, "").unwrap();
        let order = index.load_order(["ip_vs"]).unwrap();
        assert!(position(&order, "crc32c_generic") < position(&order, "libcrc32c"));
        assert_eq!(order.len(), 6);
        // The subset the image ships keeps the soft dependency (it is a module of the order).
        let subset = ModuleIndex::parse(&index.subset_text(&order), "").unwrap();
        assert_eq!(subset.load_order(["ip_vs"]).unwrap(), order);
        // Built in, or not in this kernel at all: nothing to load, no error.
        let builtin = ModuleIndex::parse(&dep, "kernel/crypto/crc32c_generic.ko\n").unwrap();
        assert_eq!(builtin.load_order(["libcrc32c"]).unwrap().len(), 1);
        let absent = ModuleIndex::parse(DEP, "").unwrap();
        assert_eq!(
            absent.load_order(["libcrc32c"]).unwrap(),
            ["kernel/lib/libcrc32c.ko"]
        );
    }

    #[test]
    fn builtin_modules_are_skipped_and_unknown_ones_named() {
        let index = ModuleIndex::parse(DEP, "kernel/net/packet/af_packet.ko\n").unwrap();
        assert!(index.load_order(["af_packet"]).unwrap().is_empty());
        let error = index.load_order(["ip_vs_twos"]).unwrap_err();
        assert_eq!(
            error,
            ModuleError::Unknown {
                module: "ip_vs_twos".into()
            }
        );
        assert!(error.to_string().contains("ip_vs_twos"));
    }

    #[test]
    fn dashes_and_underscores_name_the_same_module() {
        let index = ModuleIndex::parse(DEP, "").unwrap();
        assert_eq!(
            index.path_of("i2c_algo_bit"),
            Some("kernel/drivers/i2c/algos/i2c-algo-bit.ko")
        );
    }

    #[test]
    fn dangling_dependency_and_malformed_lines_are_errors() {
        let index = ModuleIndex::parse("a.ko: b.ko\n", "").unwrap();
        assert!(matches!(
            index.load_order(["a"]),
            Err(ModuleError::DanglingDependency { .. })
        ));
        assert_eq!(
            ModuleIndex::parse("a.ko b.ko\n", "").unwrap_err(),
            ModuleError::Malformed { line: 1 }
        );
    }

    #[test]
    fn subset_text_round_trips() {
        let index = ModuleIndex::parse(DEP, "").unwrap();
        let order = index.load_order(["virtio_pci"]).unwrap();
        let subset = ModuleIndex::parse(&index.subset_text(&order), "").unwrap();
        assert_eq!(subset.load_order(["virtio_pci"]).unwrap(), order);
    }
}
