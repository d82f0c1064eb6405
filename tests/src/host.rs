//! Processes on the host tier: `tandem run` and keepalived inside network namespaces, with
//! their output captured as a [`Console`] and their death guaranteed on drop.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::console::Console;
use crate::netns::Netns;
use crate::shell::{exec_in, ip_in};

/// A process running inside a namespace; killed (SIGKILL) when dropped unless stopped first.
#[derive(Debug)]
pub struct HostProcess {
    pub name: String,
    pub console: Console,
    child: Child,
}

impl HostProcess {
    /// Starts `program args` inside `netns`; stdout and stderr both feed the console.
    pub fn start(
        netns: &Netns,
        name: &str,
        program: &Path,
        args: &[&str],
        log_dir: &Path,
    ) -> Result<HostProcess, String> {
        let (reader, writer) = std::io::pipe().map_err(|e| e.to_string())?;
        let mut command = netns_command(netns, program, args);
        command
            .stdin(Stdio::piped())
            .stdout(writer.try_clone().map_err(|e| e.to_string())?)
            .stderr(writer);
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
        drop(command);
        let stdin = child.stdin.take().ok_or("no stdin")?;
        std::fs::create_dir_all(log_dir).map_err(|e| e.to_string())?;
        let console = Console::from_parts(
            name,
            Box::new(reader),
            Box::new(stdin),
            log_dir.join(format!("{name}.log")),
        )?;
        Ok(HostProcess {
            name: name.to_owned(),
            console,
            child,
        })
    }

    /// Sends a signal (SIGTERM for a clean stop, SIGKILL for a crash).
    pub fn signal(&self, signal: nix::sys::signal::Signal) -> Result<(), String> {
        let pid = i32::try_from(self.child.id()).map_err(|e| e.to_string())?;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).map_err(|e| e.to_string())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for the process to exit; returns whether it exited successfully.
    pub fn wait(&mut self, timeout: Duration) -> Result<bool, String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| e.to_string())? {
                return Ok(status.success());
            }
            if std::time::Instant::now() >= deadline {
                return Err(format!("{} still running after {timeout:?}", self.name));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// `ip netns exec NETNS PROGRAM ARGS...`, killed (SIGKILL) when this process dies.
fn netns_command(netns: &Netns, program: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("ip");
    command
        .args(["netns", "exec", &netns.name])
        .arg(program)
        .args(args);
    // SAFETY: runs in the forked child before exec and only calls prctl(2), which is
    // async-signal-safe.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
    command
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How to start `tandem run` on the host tier: the binary (a daemon test passes
/// `env!("CARGO_BIN_EXE_tandem")`), the scratch directory for its config and log, its name, and
/// its control socket (`None`: the default path).
#[derive(Debug, Clone, Copy)]
pub struct TandemRun<'a> {
    pub tandem: &'a Path,
    pub dir: &'a Path,
    pub name: &'a str,
    pub control: Option<&'a Path>,
}

impl TandemRun<'_> {
    /// Writes `config` (TOML) to `<dir>/<name>.toml`, starts `tandem run -c ... --name <name>
    /// [--control SOCK]` inside `netns` (a stale socket file is removed first) and waits until
    /// its log shows `ready`.
    pub fn start(
        &self,
        netns: &Netns,
        config: &str,
        ready: &str,
        timeout: Duration,
    ) -> Result<HostProcess, String> {
        self.start_with(netns, Some(config), &[], ready, timeout)
    }

    /// Like [`TandemRun::start`], with `config` optional (None: no `-c`) and `extra` arguments
    /// after `run` (e.g. `--state DIR`).
    pub fn start_with(
        &self,
        netns: &Netns,
        config: Option<&str>,
        extra: &[&str],
        ready: &str,
        timeout: Duration,
    ) -> Result<HostProcess, String> {
        let args = self.args(config, extra)?;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let process = HostProcess::start(netns, self.name, self.tandem, &args, self.dir)?;
        process.console.wait_for(ready, timeout)?;
        Ok(process)
    }

    /// Like [`TandemRun::start`], with `env` (`NAME=VALUE` words, e.g.
    /// `TANDEM_DEBUG_COMMANDS=1`) in the daemon's environment.
    pub fn start_with_env(
        &self,
        netns: &Netns,
        config: &str,
        env: &[&str],
        ready: &str,
        timeout: Duration,
    ) -> Result<HostProcess, String> {
        let mut args: Vec<String> = env.iter().map(|word| (*word).to_owned()).collect();
        args.push(
            self.tandem
                .to_str()
                .ok_or("tandem path is not UTF-8")?
                .to_owned(),
        );
        args.extend(self.args(Some(config), &[])?);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let process =
            HostProcess::start(netns, self.name, Path::new("/usr/bin/env"), &args, self.dir)?;
        process.console.wait_for(ready, timeout)?;
        Ok(process)
    }

    /// Like [`TandemRun::start`], but with stdin, stdout and stderr on a new pty instead of a
    /// captured console, and without waiting for anything: returns the process (killed when
    /// this process dies, not when dropped) and the pty's master end, which the caller may
    /// write to (typing on the console) or leave unread (a console nobody reads).
    pub fn start_on_pty(
        &self,
        netns: &Netns,
        config: &str,
    ) -> Result<(Child, std::fs::File), String> {
        let args = self.args(Some(config), &[])?;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let pty = nix::pty::openpty(None, None).map_err(|e| format!("openpty: {e}"))?;
        // Neither end may leak into processes other tests start meanwhile (a daemon holding the
        // slave open keeps this console alive after its own process ends); the child gets the
        // slave as fds 0-2 through dup2, which clears the flag there.
        for fd in [&pty.master, &pty.slave] {
            nix::fcntl::fcntl(
                fd,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
            )
            .map_err(|e| format!("pty: {e}"))?;
        }
        let slave = std::fs::File::from(pty.slave);
        let mut command = netns_command(netns, self.tandem, &args);
        command
            .stdin(slave.try_clone().map_err(|e| e.to_string())?)
            .stdout(slave.try_clone().map_err(|e| e.to_string())?)
            .stderr(slave);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.tandem.display()))?;
        Ok((child, std::fs::File::from(pty.master)))
    }

    /// The arguments after the program: `run --name <name> [-c <dir>/<name>.toml] [extra...]
    /// [--control SOCK]`, writing `config` to that file and removing a stale socket file.
    fn args(&self, config: Option<&str>, extra: &[&str]) -> Result<Vec<String>, String> {
        let mut args: Vec<String> = ["run", "--name", self.name].map(String::from).into();
        if let Some(config) = config {
            let path = self.dir.join(format!("{}.toml", self.name));
            let path = path.to_str().ok_or("config path is not UTF-8")?.to_owned();
            std::fs::write(&path, config).map_err(|e| format!("{path}: {e}"))?;
            args.push("-c".to_owned());
            args.push(path);
        }
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        if let Some(control) = self.control {
            let _ = std::fs::remove_file(control);
            args.push("--control".to_owned());
            args.push(
                control
                    .to_str()
                    .ok_or("control path is not UTF-8")?
                    .to_owned(),
            );
        }
        Ok(args)
    }
}

/// Asks a running `tandem` over its control socket (`tandem --control SOCK <command...>`) and
/// returns what it printed (empty when it is not answering).
pub fn tandem_query(tandem: &Path, control: &Path, command: &[&str]) -> String {
    Command::new(tandem)
        .arg("--control")
        .arg(control)
        .args(command)
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
        .unwrap_or_default()
}

/// Repeats [`tandem_query`] every 50 ms until `check` holds on the answer (returned), or
/// `timeout` passes (the last answer, as the error).
pub fn wait_tandem_query(
    tandem: &Path,
    control: &Path,
    command: &[&str],
    timeout: Duration,
    check: impl Fn(&str) -> bool,
) -> Result<String, String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let answer = tandem_query(tandem, control, command);
        if check(&answer) {
            return Ok(answer);
        }
        if std::time::Instant::now() >= deadline {
            return Err(answer);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// keepalived (Debian's package) as a VRRP peer inside `netns`, with its own pid files.
pub fn keepalived(
    netns: &Netns,
    name: &str,
    config: &str,
    dir: &Path,
) -> Result<HostProcess, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let config_path = dir.join(format!("{name}.conf"));
    std::fs::write(&config_path, config).map_err(|e| e.to_string())?;
    let pid = dir.join(format!("{name}.pid"));
    let vrrp_pid = dir.join(format!("{name}.vrrp.pid"));
    let config_arg = format!("--use-file={}", config_path.display());
    let pid_arg = format!("--pid={}", pid.display());
    let vrrp_pid_arg = format!("--vrrp_pid={}", vrrp_pid.display());
    HostProcess::start(
        netns,
        name,
        Path::new("/usr/sbin/keepalived"),
        &[
            "--dont-fork",
            "--log-console",
            "--log-detail",
            "--vrrp",
            "--no-syslog",
            &config_arg,
            &pid_arg,
            &vrrp_pid_arg,
        ],
        dir,
    )
}

/// A segment on the host tier: a namespace holding bridge `br0`, to which other namespaces
/// attach with veth pairs.
#[derive(Debug)]
pub struct HostSegment {
    pub netns: Netns,
    attached: u32,
}

impl HostSegment {
    pub fn new(tag: &str) -> Result<HostSegment, String> {
        let netns = Netns::new(tag)?;
        for key in [
            "net.ipv6.conf.all.disable_ipv6",
            "net.ipv6.conf.default.disable_ipv6",
        ] {
            exec_in(&netns.name, "sysctl", &["-qw", &format!("{key}=1")])?;
        }
        netns.ip(&[
            "link",
            "add",
            "br0",
            "type",
            "bridge",
            "mcast_snooping",
            "0",
        ])?;
        netns.ip(&["link", "set", "br0", "up"])?;
        Ok(HostSegment { netns, attached: 0 })
    }

    /// Gives `host` an interface `link` on this segment (up, no addresses yet).
    pub fn attach(&mut self, host: &Netns, link: &str) -> Result<(), String> {
        self.attached += 1;
        let port = format!("p{}", self.attached);
        ip_in(
            &self.netns.name,
            &[
                "link", "add", &port, "type", "veth", "peer", "name", link, "netns", &host.name,
            ],
        )?;
        ip_in(
            &self.netns.name,
            &["link", "set", &port, "master", "br0", "up"],
        )?;
        host.ip(&["link", "set", link, "up"])?;
        Ok(())
    }
}

/// A scratch directory for one test's files, removed on drop unless TANDEM_LAB_KEEP_LOGS is set.
#[derive(Debug)]
pub struct ScratchDir {
    pub path: PathBuf,
}

impl ScratchDir {
    pub fn new(tag: &str) -> Result<ScratchDir, String> {
        let path =
            Path::new(crate::lab::LAB_RUN_DIR).join(format!("host-{}-{tag}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| e.to_string())?;
        Ok(ScratchDir { path })
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if std::env::var_os("TANDEM_LAB_KEEP_LOGS").is_none() {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}
