//! PID 1 duties: the things the kernel expects of `/init` before any Tandem logic runs.
//!
//! Mount the API filesystems, attach the console, disable ctrl-alt-del's instant reboot (the
//! kernel then sends SIGINT instead), reap orphans, and end the box with `reboot(2)` after a
//! sync. The image has no shell and no other process, so nothing else will do any of this.

use std::fs;
use std::os::fd::AsFd;

use nix::errno::Errno;
use nix::mount::{mount, MsFlags};
use nix::sys::reboot::{reboot, set_cad_enabled, RebootMode};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

/// A failed init step. Boot goes on where it can; each is logged with what to check.
#[derive(Debug)]
pub enum InitError {
    /// A filesystem could not be mounted.
    Mount { target: &'static str, errno: Errno },
    /// `/dev/console` could not be opened (no console= on the kernel command line?).
    Console(std::io::Error),
}

impl core::fmt::Display for InitError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            InitError::Mount { target, errno } => {
                write!(f, "cannot mount {target}: {} ({errno})", errno.desc())
            }
            InitError::Console(source) => write!(
                f,
                "cannot open /dev/console: {source}; check console= on the kernel command line"
            ),
        }
    }
}

impl std::error::Error for InitError {}

struct ApiMount {
    source: &'static str,
    target: &'static str,
    fstype: &'static str,
    flags: MsFlags,
    data: Option<&'static str>,
}

const API_MOUNTS: [ApiMount; 5] = [
    ApiMount {
        source: "devtmpfs",
        target: "/dev",
        fstype: "devtmpfs",
        flags: MsFlags::MS_NOSUID,
        data: Some("mode=0755"),
    },
    ApiMount {
        source: "proc",
        target: "/proc",
        fstype: "proc",
        flags: MsFlags::MS_NOSUID
            .union(MsFlags::MS_NODEV)
            .union(MsFlags::MS_NOEXEC),
        data: None,
    },
    ApiMount {
        source: "sysfs",
        target: "/sys",
        fstype: "sysfs",
        flags: MsFlags::MS_NOSUID
            .union(MsFlags::MS_NODEV)
            .union(MsFlags::MS_NOEXEC),
        data: None,
    },
    ApiMount {
        source: "tmpfs",
        target: "/run",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: Some("mode=0755,size=16m"),
    },
    ApiMount {
        source: "tmpfs",
        target: "/tmp",
        fstype: "tmpfs",
        flags: MsFlags::MS_NOSUID.union(MsFlags::MS_NODEV),
        data: Some("mode=1777,size=16m"),
    },
];

/// Mounts /dev, /proc, /sys, /run and /tmp. Already-mounted targets are fine.
pub fn mount_api_filesystems() -> Vec<InitError> {
    let mut errors = Vec::new();
    for m in &API_MOUNTS {
        // The initramfs carries no directories but those of its files: make the mount points.
        let _ = fs::create_dir_all(m.target);
        match mount(Some(m.source), m.target, Some(m.fstype), m.flags, m.data) {
            Ok(()) | Err(Errno::EBUSY) => {}
            Err(errno) => errors.push(InitError::Mount {
                target: m.target,
                errno,
            }),
        }
    }
    errors
}

/// Makes /dev/console our stdin, stdout and stderr (the kernel could not, before devtmpfs).
pub fn attach_console() -> Result<(), InitError> {
    let console = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/console")
        .map_err(InitError::Console)?;
    let fd = console.as_fd();
    for dup in [
        nix::unistd::dup2_stdin,
        nix::unistd::dup2_stdout,
        nix::unistd::dup2_stderr,
    ] {
        dup(fd).map_err(|errno| InitError::Console(errno.into()))?;
    }
    Ok(())
}

/// Ctrl-alt-del sends SIGINT to init instead of resetting the box at once.
pub fn route_ctrl_alt_del_to_signal() -> Result<(), Errno> {
    set_cad_enabled(false)
}

/// Reaps every exited child. Tandem starts no processes, but orphans of anything the kernel
/// spawns (usermode helpers) are reparented to PID 1 and must not linger as zombies.
pub fn reap_children() -> usize {
    let mut reaped = 0;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return reaped,
            Ok(_) => reaped += 1,
        }
    }
}

/// How the box ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerAction {
    Poweroff,
    Reboot,
}

/// Flushes and ends the box. Only returns if the kernel refused, which PID 1 cannot survive
/// anyway, so the caller then waits for the watchdog.
pub fn power(action: PowerAction) -> Errno {
    nix::unistd::sync();
    let mode = match action {
        PowerAction::Poweroff => RebootMode::RB_POWER_OFF,
        PowerAction::Reboot => RebootMode::RB_AUTOBOOT,
    };
    match reboot(mode) {
        Err(errno) => errno,
        Ok(never) => match never {},
    }
}

/// Value of `key=` on the kernel command line.
pub fn cmdline_value<'a>(cmdline: &'a str, key: &str) -> Option<&'a str> {
    cmdline
        .split_whitespace()
        .filter_map(|word| word.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_command_line_values() {
        let cmdline = "console=ttyS0,115200 quiet tandem.name=box-a panic=1";
        assert_eq!(cmdline_value(cmdline, "tandem.name"), Some("box-a"));
        assert_eq!(cmdline_value(cmdline, "console"), Some("ttyS0,115200"));
        assert_eq!(cmdline_value(cmdline, "quiet"), None);
        assert_eq!(cmdline_value(cmdline, "tandem.board"), None);
    }
}
