//! Loading kernel modules with `finit_module(2)`, in dependency order, without modprobe.

use std::ffi::CStr;
use std::fs::File;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::kmod::{finit_module, ModuleInitFlags};
use tandem_board::modules::{ModuleError, ModuleIndex};

/// Why a module did not load.
#[derive(Debug)]
pub enum KmodError {
    /// The image's module index is missing or damaged: rebuild the image.
    Index {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The module list does not resolve against the image's index.
    Resolve(ModuleError),
    /// The module file is not in the image.
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The kernel refused the module (wrong kernel version, missing symbol, bad parameters).
    Load { path: PathBuf, errno: Errno },
}

impl core::fmt::Display for KmodError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            KmodError::Index { path, source } => write!(
                f,
                "cannot read module index {}: {source}; rebuild the image (make image)",
                path.display()
            ),
            KmodError::Resolve(error) => write!(f, "{error}"),
            KmodError::Open { path, source } => write!(
                f,
                "module file {} is missing from the image: {source}; rebuild the image",
                path.display()
            ),
            KmodError::Load { path, errno } => write!(
                f,
                "kernel refused module {}: {} ({}); the image's modules must match its kernel",
                path.display(),
                errno.desc(),
                errno
            ),
        }
    }
}

impl std::error::Error for KmodError {}

/// Parameters a module is loaded with (what modprobe.d would hold on a distribution).
/// `bonding`: no bond of its own (`bond0`) at load; bonds are the config's alone.
const MODULE_PARAMETERS: &[(&str, &CStr)] = &[("bonding", c"max_bonds=0")];

fn parameters(name: &str) -> &'static CStr {
    MODULE_PARAMETERS
        .iter()
        .find(|(module, _)| *module == name)
        .map_or(c"", |(_, parameters)| parameters)
}

/// The modules of the running kernel, as the image ships them under `/lib/modules/<release>`.
#[derive(Debug)]
pub struct ModuleLoader {
    base: PathBuf,
    index: ModuleIndex,
}

/// What one load call did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Modules newly inserted, in order.
    pub loaded: Vec<String>,
    /// Modules that were already present.
    pub already: Vec<String>,
}

impl ModuleLoader {
    /// Opens the index under `base` (`/lib/modules/<release>`).
    pub fn open(base: &Path) -> Result<ModuleLoader, KmodError> {
        let dep_path = base.join("modules.dep");
        let dep = std::fs::read_to_string(&dep_path).map_err(|source| KmodError::Index {
            path: dep_path,
            source,
        })?;
        let builtin = std::fs::read_to_string(base.join("modules.builtin")).unwrap_or_default();
        let index = ModuleIndex::parse(&dep, &builtin).map_err(KmodError::Resolve)?;
        Ok(ModuleLoader {
            base: base.to_owned(),
            index,
        })
    }

    /// The loader for the running kernel (`/lib/modules/$(uname -r)`).
    pub fn for_running_kernel() -> Result<ModuleLoader, KmodError> {
        let release = nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default();
        ModuleLoader::open(&Path::new("/lib/modules").join(release))
    }

    /// Loads `names` and their dependencies, dependencies first. A module already in the kernel
    /// counts as loaded.
    pub fn load<'a>(
        &self,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Result<LoadReport, KmodError> {
        let order = self.index.load_order(names).map_err(KmodError::Resolve)?;
        let mut report = LoadReport::default();
        for relative in order {
            let path = self.base.join(&relative);
            let name = tandem_board::modules::module_name(&relative);
            if Path::new("/sys/module").join(&name).exists() {
                report.already.push(name);
                continue;
            }
            let file = File::open(&path).map_err(|source| KmodError::Open {
                path: path.clone(),
                source,
            })?;
            match finit_module(&file, parameters(&name), ModuleInitFlags::empty()) {
                Ok(()) => report.loaded.push(name),
                Err(Errno::EEXIST) => report.already.push(name),
                Err(errno) => return Err(KmodError::Load { path, errno }),
            }
        }
        Ok(report)
    }
}
