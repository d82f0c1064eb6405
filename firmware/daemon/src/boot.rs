//! The appliance boot sequence from `/init` to `ready`.
//!
//! Everything here happens once, in order: API filesystems, console, board profile, modules,
//! NIC roles (the operator's port map over the board profile: `ports`), loopback. Each step logs what it did; a failed step is logged with its fix and boot
//! continues, because a box that reaches the console can be diagnosed and one that stops cannot.

use std::path::Path;
use std::time::{Duration, Instant};

use tandem_board::{BoardProfile, NicRole, RoleAssignment};
use tandem_southbound::kmod::ModuleLoader;
use tandem_southbound::net::{role_link_ops, NetExecutor, NetOp};
use tandem_southbound::{sysctl, sysfs};

use crate::init;
use crate::logring::Log;

/// Where the image builder puts the board name.
pub const BOARD_FILE: &str = "/etc/tandem/board";

/// How long to wait for the board's required NICs to appear after their drivers load.
const NIC_SETTLE: Duration = Duration::from_secs(3);

/// What boot found out, for the daemon and its status output.
#[derive(Debug, Clone)]
pub struct BootOutcome {
    pub name: String,
    pub board: Option<&'static BoardProfile>,
    pub roles: RoleAssignment,
}

/// Runs the boot sequence.
pub async fn boot_appliance(log: &Log) -> BootOutcome {
    let mount_errors = init::mount_api_filesystems();
    let console = init::attach_console();
    log.line(format!("{} starting as /init", crate::VERSION_LINE));
    for error in mount_errors {
        log.line(format!("error: {error}"));
    }
    if let Err(error) = console {
        log.line(format!("error: {error}"));
    } else if let Err(errno) = crate::console_reader::make_console_a_plain_line_device() {
        log.line(format!(
            "warning: cannot turn off flow control and signal keys on the console: {errno}"
        ));
    }
    if let Err(errno) = init::route_ctrl_alt_del_to_signal() {
        log.line(format!(
            "warning: cannot route ctrl-alt-del to a clean reboot: {errno}"
        ));
    }

    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let board_name = std::fs::read_to_string(BOARD_FILE).unwrap_or_default();
    let board_name = board_name.trim();
    let board = tandem_board::by_name(board_name);
    if board.is_none() {
        let known: Vec<&str> = tandem_board::PROFILES.iter().map(|b| b.name).collect();
        log.line(format!(
            "error: unknown board `{board_name}` in {BOARD_FILE}: this firmware knows {}; \
             rebuild the image with one of them (make image BOARD=...)",
            known.join(", ")
        ));
    }
    let name = init::cmdline_value(&cmdline, "tandem.name")
        .map(str::to_owned)
        .or_else(|| board.map(|b| b.name.to_owned()))
        .unwrap_or_else(|| "tandem".to_owned());
    if let Err(errno) = nix::unistd::sethostname(&name) {
        log.line(format!("warning: cannot set hostname {name}: {errno}"));
    }

    if let Some(board) = board {
        load_boot_modules(log, board);
    }

    let executor = match NetExecutor::connect() {
        Ok(executor) => Some(executor),
        Err(error) => {
            log.line(format!("error: {error}"));
            None
        }
    };
    if let Some(executor) = &executor {
        if let Err(error) = executor
            .apply(&[NetOp::SetLinkUp { name: "lo".into() }])
            .await
        {
            log.line(format!("error: {error}"));
        }
    }

    let roles = match board {
        Some(board) => {
            let map = crate::ports::boot_map(board, &cmdline, log);
            assign_nic_roles(log, board, &map, executor.as_ref()).await
        }
        None => RoleAssignment::default(),
    };
    BootOutcome { name, board, roles }
}

fn load_boot_modules(log: &Log, board: &BoardProfile) {
    let began = Instant::now();
    let loader = match ModuleLoader::for_running_kernel() {
        Ok(loader) => loader,
        Err(error) => {
            log.line(format!("error: {error}"));
            return;
        }
    };
    let wanted = board
        .boot_modules
        .iter()
        .copied()
        .chain(board.watchdog.iter().map(|w| w.module));
    match loader.load(wanted) {
        Ok(report) => log.line(format!(
            "modules: loaded {} ({}) in {} ms",
            report.loaded.len(),
            report.loaded.join(" "),
            began.elapsed().as_millis()
        )),
        Err(error) => log.line(format!("error: {error}")),
    }
}

/// Finds the board's NICs, renames them after their roles (the operator's port `map` over the
/// board profile) and brings them up.
async fn assign_nic_roles(
    log: &Log,
    board: &BoardProfile,
    map: &[(NicRole, String)],
    executor: Option<&NetExecutor>,
) -> RoleAssignment {
    let sys_class_net = Path::new("/sys/class/net");
    let settle_until = Instant::now() + NIC_SETTLE;
    let (found, roles) = loop {
        let found = sysfs::physical_nics(sys_class_net).unwrap_or_default();
        let roles = tandem_board::assign_roles_with_map(board, &found, map);
        // Drivers probe their devices while their module loads, so NICs are normally present
        // at once; only a required port that is late (slow bus) is waited for, within bounds.
        if roles.missing_required.is_empty() || Instant::now() >= settle_until {
            break (found, roles);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for message in roles.messages(board, &found) {
        log.line(message);
    }
    if let Some(line) = crate::ports::boot_line(&roles, &found) {
        log.line(line);
    }
    let Some(executor) = executor else {
        return roles;
    };
    let ops = role_link_ops(&roles.assigned);
    for op in &ops {
        if let NetOp::SetLinkUp { name } = op {
            if NicRole::from_interface_name(name) == Some(NicRole::Peer) {
                // The peer cable is ours alone: its link-local address needs no duplicate check,
                // and skipping DAD makes it usable the moment the link is up.
                let _ = sysctl::set(&format!("net.ipv6.conf.{name}.accept_dad"), "0");
            }
        }
        if let Err(error) = executor.apply(std::slice::from_ref(op)).await {
            log.line(format!("error: {error}"));
        }
    }
    let mut assigned = roles.clone();
    for (role, name) in &mut assigned.assigned {
        *name = role.interface_name().to_owned();
    }
    let names: Vec<String> = assigned
        .assigned
        .iter()
        .map(|(role, _)| role.to_string())
        .collect();
    log.line(format!(
        "nics: {}",
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(" ")
        }
    ));
    assigned
}
