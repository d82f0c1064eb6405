//! LAB ONLY: starts a test program named on the kernel command line
//! (`tandem.lab_exec=/lab/lab-httpd`). Lab images carry such programs (built with
//! `tandem-image build --extra`); production images have neither the file nor the command-line
//! word, so this does nothing there. It is the one place tandem starts another program, and it
//! refuses anything outside `/lab/`.

use std::path::Path;

use crate::logring::Log;

/// The command-line key naming the lab program.
pub const CMDLINE_KEY: &str = "tandem.lab_exec";
/// Lab programs must live here.
pub const LAB_DIR: &str = "/lab/";

/// The program `cmdline` asks for, if it is an acceptable lab path.
pub fn requested(cmdline: &str) -> Option<&str> {
    let path = crate::init::cmdline_value(cmdline, CMDLINE_KEY)?;
    (path.starts_with(LAB_DIR) && !path.contains("..")).then_some(path)
}

/// Spawns the lab program once (PID 1 only; its output goes to the console). The daemon's
/// SIGCHLD handling reaps it.
pub fn spawn_if_requested(log: &Log) {
    static STARTED: std::sync::Once = std::sync::Once::new();
    if std::process::id() != 1 {
        return;
    }
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let Some(path) = requested(&cmdline) else {
        return;
    };
    if !Path::new(path).is_file() {
        log.line(format!("lab: {path} is not in this image"));
        return;
    }
    STARTED.call_once(|| match std::process::Command::new(path).spawn() {
        Ok(child) => log.line(format!("lab: started {path} pid {}", child.id())),
        Err(error) => log.line(format!("lab: cannot start {path}: {error}")),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lab_paths_are_accepted() {
        assert_eq!(
            requested("quiet tandem.lab_exec=/lab/lab-httpd x"),
            Some("/lab/lab-httpd")
        );
        assert_eq!(requested("quiet tandem.lab_exec=/init"), None);
        assert_eq!(requested("tandem.lab_exec=/lab/../init"), None);
        assert_eq!(requested("quiet"), None);
    }
}
