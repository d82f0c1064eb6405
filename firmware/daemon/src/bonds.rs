//! Bonds from the config, made and kept in the kernel: created, changed in place where the
//! kernel allows it, their ports enslaved and released, and read back for `bond status`.
//!
//! Why a module of its own and not a role engine: a bond is a link the interface addresses,
//! the VRRP VIPs and the LVS services sit on, so it must exist before any of them and nothing
//! about it runs between commits (the kernel's bonding driver does the failing over). Each
//! apply reconciles what the config asks for with what the kernel has
//! ([`tandem_southbound::bond::BondExecutor::bonds`]), before the interface addresses.
//!
//! Rules the kernel sets (see `tandem_southbound::bond`) and how they are met:
//! - only the options of the bond's mode are sent ([`desired_options`]);
//! - mode and fail_over_mac need a bond without ports, lacp_rate and ad_select a bond that is
//!   down: such a change releases the ports, takes the bond down, changes it and takes the
//!   ports again (the preview calls it disruptive); every other change is made in place, and a
//!   port that stays in its bond is never released (an LACP partner would see churn);
//! - a port must be down to be enslaved (the executor takes it down and up);
//! - a released port that is still a configured interface is set up again.
//!
//! Only what differs from the kernel is sent: a bond the kernel runs as configured gets no
//! request, and each apply logs how many changes it made (`config: bonds: unchanged (0
//! operations)`). After the changes the bond is read back and every option compared; a
//! difference is reported. A new bond's carrier is logged with the time from its creation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tandem_config::model::{self, BondMode, LinkMonitor};

use crate::logring::Log;
use tandem_config::Config;
use tandem_southbound::bond::{
    self as kernel, Bond as KernelBond, BondExecutor, BondOptions, MiiStatus, PortState,
};

/// The kernel options for `bond`: only those its mode takes. `primary` is the interface index
/// of [`model::Bond::effective_primary`] (None: not known yet, or no primary).
pub fn desired_options(bond: &model::Bond, primary: Option<u32>) -> BondOptions {
    let mode = kernel_mode(bond.mode);
    let arp_capable = !matches!(
        bond.mode,
        BondMode::Ieee8023ad | BondMode::BalanceTlb | BondMode::BalanceAlb
    );
    let mut options = BondOptions {
        mode: Some(mode),
        min_links: Some(u32::from(bond.min_links)),
        ..BondOptions::default()
    };
    match &bond.monitor {
        LinkMonitor::Mii { interval_ms } => {
            options.miimon = Some(*interval_ms);
            if *interval_ms > 0 {
                // The kernel keeps delays as multiples of miimon and reports them in ms.
                options.updelay = Some(round_down(bond.up_delay_ms, *interval_ms));
                options.downdelay = Some(round_down(bond.down_delay_ms, *interval_ms));
            }
            if arp_capable {
                options.arp_interval = Some(0);
            }
        }
        LinkMonitor::Arp {
            interval_ms,
            targets,
            validate,
        } => {
            options.miimon = Some(0);
            if arp_capable {
                options.arp_interval = Some(*interval_ms);
                options.arp_ip_target = Some(targets.iter().copied().collect());
                options.arp_validate = Some(kernel_arp_validate(*validate));
            }
        }
    }
    if bond.mode.has_primary() {
        options.primary = primary;
        options.primary_reselect = Some(match bond.primary_reselect {
            model::PrimaryReselect::Always => kernel::PrimaryReselect::Always,
            model::PrimaryReselect::Better => kernel::PrimaryReselect::Better,
            model::PrimaryReselect::Failure => kernel::PrimaryReselect::Failure,
        });
    }
    if bond.mode == BondMode::ActiveBackup {
        options.fail_over_mac = Some(match bond.fail_over_mac {
            model::FailOverMac::None => kernel::FailOverMac::None,
            model::FailOverMac::Active => kernel::FailOverMac::Active,
            model::FailOverMac::Follow => kernel::FailOverMac::Follow,
        });
    }
    if matches!(
        bond.mode,
        BondMode::BalanceXor | BondMode::Ieee8023ad | BondMode::BalanceTlb | BondMode::BalanceAlb
    ) {
        options.xmit_hash_policy = Some(kernel_hash_policy(bond.xmit_hash_policy));
    }
    if bond.mode == BondMode::Ieee8023ad {
        options.lacp_rate = Some(match bond.lacp_rate {
            model::LacpRate::Slow => kernel::LacpRate::Slow,
            model::LacpRate::Fast => kernel::LacpRate::Fast,
        });
        options.ad_select = Some(match bond.ad_select {
            model::AdSelect::Stable => kernel::AdSelect::Stable,
            model::AdSelect::Bandwidth => kernel::AdSelect::Bandwidth,
            model::AdSelect::Count => kernel::AdSelect::Count,
        });
    }
    options
}

fn round_down(delay_ms: u32, interval_ms: u32) -> u32 {
    delay_ms - delay_ms % interval_ms.max(1)
}

fn kernel_mode(mode: BondMode) -> kernel::BondMode {
    match mode {
        BondMode::BalanceRr => kernel::BondMode::BalanceRr,
        BondMode::ActiveBackup => kernel::BondMode::ActiveBackup,
        BondMode::BalanceXor => kernel::BondMode::BalanceXor,
        BondMode::Broadcast => kernel::BondMode::Broadcast,
        BondMode::Ieee8023ad => kernel::BondMode::Ieee8023ad,
        BondMode::BalanceTlb => kernel::BondMode::BalanceTlb,
        BondMode::BalanceAlb => kernel::BondMode::BalanceAlb,
    }
}

fn kernel_arp_validate(validate: model::ArpValidate) -> kernel::ArpValidate {
    match validate {
        model::ArpValidate::None => kernel::ArpValidate::None,
        model::ArpValidate::Active => kernel::ArpValidate::Active,
        model::ArpValidate::Backup => kernel::ArpValidate::Backup,
        model::ArpValidate::All => kernel::ArpValidate::All,
        model::ArpValidate::Filter => kernel::ArpValidate::Filter,
        model::ArpValidate::FilterActive => kernel::ArpValidate::FilterActive,
        model::ArpValidate::FilterBackup => kernel::ArpValidate::FilterBackup,
    }
}

fn kernel_hash_policy(policy: model::XmitHashPolicy) -> kernel::XmitHashPolicy {
    match policy {
        model::XmitHashPolicy::Layer2 => kernel::XmitHashPolicy::Layer2,
        model::XmitHashPolicy::Layer34 => kernel::XmitHashPolicy::Layer34,
        model::XmitHashPolicy::Layer23 => kernel::XmitHashPolicy::Layer23,
        model::XmitHashPolicy::Encap23 => kernel::XmitHashPolicy::Encap23,
        model::XmitHashPolicy::Encap34 => kernel::XmitHashPolicy::Encap34,
        model::XmitHashPolicy::VlanSrcmac => kernel::XmitHashPolicy::VlanSrcMac,
    }
}

/// Whether `changes` holds an option the kernel takes only from a bond without ports.
fn needs_no_ports(changes: &BondOptions) -> bool {
    changes.mode.is_some() || changes.fail_over_mac.is_some()
}

/// Whether `changes` holds an option the kernel takes only from a bond that is down.
fn needs_down(changes: &BondOptions) -> bool {
    changes.lacp_rate.is_some() || changes.ad_select.is_some()
}

/// What [`apply`] did: one line per change (and per failure), and how many changes it made.
#[derive(Debug, Default)]
pub struct BondApply {
    pub lines: Vec<String>,
    /// Kernel changes made: each a [`BondExecutor`] call that changes something (an enslave
    /// counts one, though it takes the port down, sets its master and sets it up). A bond the
    /// kernel already runs as configured costs none. `None`: no bond was configured before or
    /// now, so nothing was read.
    pub operations: Option<usize>,
}

impl BondApply {
    /// The log line of the count: "bonds: unchanged (0 operations)", "bonds: 5 operations".
    pub fn summary(&self) -> Option<String> {
        self.operations.map(|operations| match operations {
            0 => "bonds: unchanged (0 operations)".to_owned(),
            1 => "bonds: 1 operation".to_owned(),
            n => format!("bonds: {n} operations"),
        })
    }
}

/// How long [`NewBondWatch`] waits for a new bond's carrier and operational state.
const NEW_BOND_WAIT: Duration = Duration::from_secs(60);

/// Times a bond's creation: from just before its create request, a thread reads its carrier
/// and operstate from sysfs every millisecond (every 50 ms after the first 5 s) and logs
/// `config: bonds: bond0 carrier up 12.3 ms, operational 640.1 ms after its create request`.
/// Carrier is the kernel's carrier bit (a port with link in the bond); operational is when the
/// kernel's linkwatch marks it up and attaches its transmit queue (until then the bond sends
/// nothing; linkwatch runs at most once a second for non-urgent events). Both to within the
/// poll period. The thread ends with the line, after [`NEW_BOND_WAIT`] (logged), or when the
/// creation failed.
#[derive(Debug)]
struct NewBondWatch {
    abandoned: Arc<AtomicBool>,
}

impl NewBondWatch {
    fn start(bond: &str, log: &Log) -> NewBondWatch {
        let abandoned = Arc::new(AtomicBool::new(false));
        let (flag, name, thread_log) = (Arc::clone(&abandoned), bond.to_owned(), log.clone());
        let started = Instant::now();
        let spawned = std::thread::Builder::new()
            .name("bond-watch".into())
            .spawn(move || {
                let sys_class_net = std::path::Path::new("/sys/class/net");
                let (mut carrier, mut operational) = (None, None);
                while !flag.load(Ordering::Relaxed) && started.elapsed() < NEW_BOND_WAIT {
                    let now = started.elapsed();
                    if carrier.is_none()
                        && tandem_southbound::sysfs::carrier(sys_class_net, &name) == Some(true)
                    {
                        carrier = Some(now);
                    }
                    if operational.is_none()
                        && tandem_southbound::sysfs::operstate(sys_class_net, &name).as_deref()
                            == Some("up")
                    {
                        operational = Some(now);
                    }
                    if let (Some(carrier), Some(operational)) = (carrier, operational) {
                        thread_log.line(format!(
                            "config: bonds: {name} carrier up {:.1} ms, operational {:.1} ms \
                             after its create request",
                            carrier.as_secs_f64() * 1e3,
                            operational.as_secs_f64() * 1e3
                        ));
                        return;
                    }
                    std::thread::sleep(if now < Duration::from_secs(5) {
                        Duration::from_millis(1)
                    } else {
                        Duration::from_millis(50)
                    });
                }
                if !flag.load(Ordering::Relaxed) {
                    thread_log.line(format!(
                        "config: bonds: {name} not up {} s after its create request (carrier \
                         {}; `bond status`: are its ports' cables in?)",
                        NEW_BOND_WAIT.as_secs(),
                        if carrier.is_some() { "yes" } else { "no" }
                    ));
                }
            });
        if let Err(error) = spawned {
            log.line(format!(
                "config: bonds: {bond}: its creation is not timed ({error})"
            ));
        }
        NewBondWatch { abandoned }
    }

    /// The creation failed: nothing to wait for.
    fn abandon(&self) {
        self.abandoned.store(true, Ordering::Relaxed);
    }
}

/// Reconciles the kernel's bonds with `new`'s; bonds `old` (None at boot) had and `new` has
/// not are deleted. Returns one line per change (and per failure, which is also logged by the
/// caller through the report) and the number of kernel changes.
pub async fn apply(old: Option<&Config>, new: &Config, log: &Log) -> BondApply {
    let mut done = BondApply::default();
    let wanted_somewhere = !new.bonds.is_empty()
        || old.is_some_and(|old| old.bonds.iter().any(|b| new.bond(&b.name).is_none()));
    if !wanted_somewhere {
        return done;
    }
    let mut operations = 0;
    // The image has no modprobe for the kernel to load the driver on its own.
    crate::engine::load_feature_modules(log, "bonds", &["bonding"]);
    let executor = match BondExecutor::connect() {
        Ok(executor) => executor,
        Err(error) => {
            done.lines.push(format!("bonds: failed: {error}"));
            done.operations = Some(operations);
            return done;
        }
    };
    let present = match executor.bonds().await {
        Ok(present) => present,
        Err(error) => {
            done.lines.push(format!("bonds: failed: {error}"));
            done.operations = Some(operations);
            return done;
        }
    };
    for gone in old
        .iter()
        .flat_map(|old| old.bonds.iter())
        .filter(|bond| new.bond(&bond.name).is_none())
    {
        let Some(kernel) = present.iter().find(|k| k.name == gone.name.as_str()) else {
            continue;
        };
        let mut failed = None;
        for port in &kernel.ports {
            if let Err(error) = release_port(&executor, new, &port.name, &mut operations).await {
                failed.get_or_insert(error);
            }
        }
        let deleted = executor.delete_link(&kernel.name).await;
        operations += usize::from(deleted.is_ok());
        match (failed, deleted) {
            (None, Ok(())) => done.lines.push(format!("bonds: {} removed", kernel.name)),
            (Some(error), _) | (None, Err(error)) => {
                done.lines
                    .push(format!("bonds: {}: failed: {error}", kernel.name));
            }
        }
    }
    for bond in new.bonds.iter() {
        let kernel = present.iter().find(|k| k.name == bond.name.as_str());
        let result = match primary_index(&executor, bond).await {
            Ok(primary) => {
                let plan = match kernel {
                    None => plan_create(bond, primary),
                    Some(kernel) => plan_change(new, bond, kernel, primary),
                };
                let watch = kernel
                    .is_none()
                    .then(|| NewBondWatch::start(bond.name.as_str(), log));
                let executed = execute(&executor, bond, &plan.steps, &mut operations).await;
                if let (Some(watch), Err(_)) = (&watch, &executed) {
                    watch.abandon();
                }
                executed.map(|()| plan.lines)
            }
            Err(error) => Err(error),
        };
        match result {
            Ok(lines) => done
                .lines
                .extend(lines.into_iter().map(|l| format!("bonds: {l}"))),
            Err(error) => done
                .lines
                .push(format!("bonds: {}: failed: {error}", bond.name)),
        }
        done.lines.extend(read_back(&executor, bond).await);
    }
    done.operations = Some(operations);
    done
}

/// Releases `port` from its bond and sets it up again when `config` still has it as an
/// interface; counts the requests that changed something in `operations`.
async fn release_port(
    executor: &BondExecutor,
    config: &Config,
    port: &str,
    operations: &mut usize,
) -> Result<(), kernel::BondError> {
    executor.release(port).await?;
    *operations += 1;
    // The kernel leaves a released port down; a configured port runs on.
    if config.interface(port).is_some() {
        executor.set_link_up(port, true).await?;
        *operations += 1;
    }
    Ok(())
}

async fn primary_index(
    executor: &BondExecutor,
    bond: &model::Bond,
) -> Result<Option<u32>, kernel::BondError> {
    match bond.effective_primary() {
        Some(port) => executor.index_of(port).await,
        None => Ok(None),
    }
}

/// One kernel change of a bond's apply: one [`BondExecutor`] call, on the bond unless it names
/// a link.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Create(BondOptions),
    /// Take this port out of its bond.
    Release(String),
    /// Set this link (a port or the bond) up or down.
    SetUp(String, bool),
    Options(BondOptions),
    Enslave(String),
    Mtu(u32),
}

/// What to send for one bond, in order, and the report's lines for it.
#[derive(Debug, Default, PartialEq, Eq)]
struct Plan {
    steps: Vec<Step>,
    lines: Vec<String>,
}

/// A new bond: created with its mode's options, its ports enslaved, then the primary (it
/// names a port, so it goes after the ports), the MTU, and the bond up.
fn plan_create(bond: &model::Bond, primary: Option<u32>) -> Plan {
    let mut options = desired_options(bond, None);
    options.primary = None;
    let mut plan = Plan {
        steps: vec![Step::Create(options)],
        lines: vec![format!(
            "{} created ({}, {})",
            bond.name,
            bond.mode.kernel_name(),
            monitor_words(&bond.monitor)
        )],
    };
    for port in bond.slaves.iter() {
        plan.steps.push(Step::Enslave(port.as_str().to_owned()));
        plan.lines.push(format!("{}: port {port} added", bond.name));
    }
    if let Some(primary) = primary {
        plan.steps.push(Step::Options(BondOptions {
            primary: Some(primary),
            ..BondOptions::default()
        }));
    }
    if let Some(mtu) = bond.mtu {
        plan.steps.push(Step::Mtu(u32::from(mtu)));
    }
    plan.steps
        .push(Step::SetUp(bond.name.as_str().to_owned(), true));
    plan
}

/// A bond the kernel has (`kernel`): only what differs from `bond` is sent, so a bond the
/// kernel runs as configured gets no step.
fn plan_change(
    config: &Config,
    bond: &model::Bond,
    kernel: &KernelBond,
    primary: Option<u32>,
) -> Plan {
    let mut plan = Plan::default();
    let name = bond.name.as_str();
    let changes = desired_options(bond, primary).changes_from(&kernel.info.options);
    let configured = |port: &str| bond.slaves.iter().any(|s| s.as_str() == port);
    // Ports of this bond the config no longer lists, and ports it lists that are elsewhere.
    for port in kernel.ports.iter().filter(|p| !configured(&p.name)) {
        plan.steps.push(Step::Release(port.name.clone()));
        // The kernel leaves a released port down; a configured port runs on.
        if config.interface(&port.name).is_some() {
            plan.steps.push(Step::SetUp(port.name.clone(), true));
        }
        plan.lines
            .push(format!("{name}: port {} released", port.name));
    }
    let rebuild = needs_no_ports(&changes) || needs_down(&changes);
    if rebuild {
        if needs_no_ports(&changes) {
            for port in kernel.ports.iter().filter(|p| configured(&p.name)) {
                plan.steps.push(Step::Release(port.name.clone()));
            }
        }
        plan.steps.push(Step::SetUp(name.to_owned(), false));
        let mut options = changes.clone();
        options.primary = None;
        plan.steps.push(Step::Options(options));
        plan.lines.push(format!(
            "{name}: {} (taken down and its ports re-enslaved)",
            describe(&changes)
        ));
    } else if !changes.is_empty() {
        plan.steps.push(Step::Options(changes.clone()));
        plan.lines.push(format!("{name}: {}", describe(&changes)));
    }
    let mut enslaved = false;
    for port in bond.slaves.iter() {
        let member = kernel.ports.iter().any(|p| p.name == port.as_str());
        if !member || needs_no_ports(&changes) {
            plan.steps.push(Step::Enslave(port.as_str().to_owned()));
            enslaved = true;
            if !member {
                plan.lines.push(format!("{name}: port {port} added"));
            }
        }
    }
    // A primary that changed goes (again) after the ports: it names one.
    if let (Some(primary), Some(_)) = (primary, changes.primary) {
        if rebuild || enslaved {
            plan.steps.push(Step::Options(BondOptions {
                primary: Some(primary),
                ..BondOptions::default()
            }));
        }
    }
    if let Some(mtu) = bond.mtu.map(u32::from) {
        if kernel.mtu != Some(mtu) {
            plan.steps.push(Step::Mtu(mtu));
        }
    }
    if rebuild || !kernel.up {
        plan.steps.push(Step::SetUp(name.to_owned(), true));
    }
    plan
}

/// Sends `steps` for `bond`, counting each in `operations`; stops at the first refusal.
async fn execute(
    executor: &BondExecutor,
    bond: &model::Bond,
    steps: &[Step],
    operations: &mut usize,
) -> Result<(), kernel::BondError> {
    let name = bond.name.as_str();
    for step in steps {
        match step {
            Step::Create(options) => executor.create_bond(name, options).await.map(|_| ())?,
            Step::Release(port) => executor.release(port).await?,
            Step::SetUp(link, up) => executor.set_link_up(link, *up).await?,
            Step::Options(options) => executor.set_bond_options(name, options).await?,
            Step::Enslave(port) => executor.enslave(port, name).await?,
            Step::Mtu(mtu) => executor.set_mtu(name, *mtu).await?,
        }
        *operations += 1;
    }
    Ok(())
}

/// "mode 802.3ad, miimon 100" for the options set in `changes`.
fn describe(changes: &BondOptions) -> String {
    let mut words = Vec::new();
    if let Some(mode) = changes.mode {
        words.push(format!("mode {mode}"));
    }
    if let Some(value) = changes.miimon {
        words.push(format!("miimon {value}"));
    }
    if let Some(value) = changes.updelay {
        words.push(format!("updelay {value}"));
    }
    if let Some(value) = changes.downdelay {
        words.push(format!("downdelay {value}"));
    }
    if let Some(value) = changes.arp_interval {
        words.push(format!("arp_interval {value}"));
    }
    if let Some(targets) = &changes.arp_ip_target {
        let list: Vec<String> = targets.iter().map(ToString::to_string).collect();
        words.push(format!("arp_ip_target {}", list.join(",")));
    }
    if let Some(value) = changes.arp_validate {
        words.push(format!("arp_validate {value}"));
    }
    if changes.primary.is_some() {
        words.push("primary".to_owned());
    }
    if let Some(value) = changes.primary_reselect {
        words.push(format!("primary_reselect {value}"));
    }
    if let Some(value) = changes.fail_over_mac {
        words.push(format!("fail_over_mac {value}"));
    }
    if let Some(value) = changes.xmit_hash_policy {
        words.push(format!("xmit_hash_policy {value}"));
    }
    if let Some(value) = changes.min_links {
        words.push(format!("min_links {value}"));
    }
    if let Some(value) = changes.lacp_rate {
        words.push(format!("lacp_rate {value}"));
    }
    if let Some(value) = changes.ad_select {
        words.push(format!("ad_select {value}"));
    }
    words.join(", ")
}

fn monitor_words(monitor: &LinkMonitor) -> String {
    match monitor {
        LinkMonitor::Mii { interval_ms } => format!("miimon {interval_ms} ms"),
        LinkMonitor::Arp {
            interval_ms,
            targets,
            ..
        } => format!(
            "ARP monitor every {interval_ms} ms to {} targets",
            targets.len()
        ),
    }
}

/// Reads `bond` back and names every option or port that is not what the config asks for.
async fn read_back(executor: &BondExecutor, bond: &model::Bond) -> Vec<String> {
    let present = match executor.bonds().await {
        Ok(present) => present,
        Err(error) => return vec![format!("bonds: {}: read back failed: {error}", bond.name)],
    };
    let Some(kernel) = present.iter().find(|k| k.name == bond.name.as_str()) else {
        return vec![format!(
            "bonds: {}: not in the kernel after the apply",
            bond.name
        )];
    };
    let mut lines = Vec::new();
    let primary = match primary_index(executor, bond).await {
        Ok(primary) => primary,
        Err(error) => return vec![format!("bonds: {}: read back failed: {error}", bond.name)],
    };
    let differs = desired_options(bond, primary).changes_from(&kernel.info.options);
    if !differs.is_empty() {
        lines.push(format!(
            "bonds: {}: the kernel runs other options than the config's: {}",
            bond.name,
            describe(&differs)
        ));
    }
    for port in bond.slaves.iter() {
        if !kernel.ports.iter().any(|p| p.name == port.as_str()) {
            lines.push(format!(
                "bonds: {}: port {port} is not in the bond",
                bond.name
            ));
        }
    }
    lines
}

/// The log line of a failover of bond `name`: the active port the kernel chose, and what
/// happened to the one `known` last had as active (updated to the new one).
pub async fn failover_line(
    name: &str,
    known: &std::sync::Mutex<std::collections::BTreeMap<String, String>>,
) -> String {
    let present = match BondExecutor::connect() {
        Ok(executor) => executor.bonds().await,
        Err(error) => Err(error),
    };
    let kernel = match present {
        Ok(present) => present.into_iter().find(|k| k.name == name),
        Err(error) => return format!("bond {name}: failover (cannot read the bond: {error})"),
    };
    let Some(kernel) = kernel else {
        return format!("bond {name}: failover (the bond is gone)");
    };
    let active = kernel
        .info
        .options
        .active_slave
        .and_then(|index| kernel.ports.iter().find(|p| p.index == index))
        .map_or_else(|| "none".to_owned(), |port| port.name.clone());
    let before = known
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .insert(name.to_owned(), active.clone());
    let primary = kernel
        .info
        .options
        .primary
        .and_then(|index| kernel.ports.iter().find(|p| p.index == index))
        .map(|port| port.name.clone());
    let cause = before
        .filter(|old| *old != active)
        .and_then(|old| kernel.ports.iter().find(|p| p.name == old))
        .map(|old| {
            let mii = old.info.mii_status;
            if mii == Some(MiiStatus::Up) && primary.as_deref() == Some(active.as_str()) {
                // Not a failure: the primary came back and primary_reselect took it.
                format!(
                    " (the primary port is back; {} stays up as the backup)",
                    old.name
                )
            } else {
                format!(
                    " ({}: mii {}, link failures {})",
                    old.name,
                    mii.map_or("?", MiiStatus::kernel_name),
                    number(old.info.link_failure_count)
                )
            }
        })
        .unwrap_or_default();
    format!("bond {name}: failover: active port now {active}{cause}")
}

/// `bond status`: every configured bond as the kernel runs it.
pub async fn status(config: &Config) -> String {
    if config.bonds.is_empty() {
        return "bond: no bonds configured on this box\n".to_owned();
    }
    let present = match BondExecutor::connect() {
        Ok(executor) => executor.bonds().await,
        Err(error) => Err(error),
    };
    let present = match present {
        Ok(present) => present,
        Err(error) => return format!("bond: {error}\n"),
    };
    let mut text = String::new();
    for bond in config.bonds.iter() {
        match present.iter().find(|k| k.name == bond.name.as_str()) {
            Some(kernel) => text.push_str(&status_of(bond, kernel)),
            None => text.push_str(&format!(
                "bond {}: not in the kernel (see the log of the last apply)\n",
                bond.name
            )),
        }
    }
    text
}

/// The bonds' metric families, from `kernel` (every bond as just read): per configured bond
/// its carrier and ports with MII up; per port its MII status (one-hot), whether it is active
/// and its link failures; configured bonds and ports the kernel does not have count as
/// `tandem_engine_errors{engine="bonds"}`.
pub fn metrics(config: &Config, kernel: &[KernelBond]) -> crate::metrics::Families {
    use crate::metrics::{Families, Family, Labels};
    let mut up = Family::gauge(
        "tandem_bond_up",
        "1 when the bond is up with carrier (at least min_links ports with link).",
    );
    let mut ports_up = Family::gauge("tandem_bond_ports_up", "Ports of the bond with MII up.");
    let mut mii = Family::gauge(
        "tandem_bond_port_mii_status",
        "A bond port's link as the bond's monitor sees it, one-hot: up, going_down, down, going_back.",
    );
    let mut active = Family::gauge(
        "tandem_bond_port_active",
        "1 when the port carries the bond's traffic (active), 0 when it is a backup.",
    );
    let mut failures = Family::counter(
        "tandem_bond_port_link_failures_total",
        "Link failures the bond counted on the port since it was enslaved.",
    );
    let mut missing = 0usize;
    for bond in config.bonds.iter() {
        let name = bond.name.as_str();
        let labels = Labels::of(&[("bond", name)]);
        let Some(present) = kernel.iter().find(|k| k.name == name) else {
            missing += 1;
            up.add(labels, false);
            continue;
        };
        up.add(labels.clone(), present.up && present.lower_up);
        ports_up.add(
            labels.clone(),
            present
                .ports
                .iter()
                .filter(|p| p.info.mii_status == Some(MiiStatus::Up))
                .count(),
        );
        for port in &present.ports {
            let labels = labels.and("port", &port.name);
            if let Some(status) = port.info.mii_status {
                mii.add_each(
                    &labels,
                    "status",
                    [
                        ("up", MiiStatus::Up),
                        ("going_down", MiiStatus::GoingDown),
                        ("down", MiiStatus::Down),
                        ("going_back", MiiStatus::GoingBack),
                    ]
                    .map(|(word, s)| (word, s == status)),
                );
            }
            if let Some(state) = port.info.state {
                active.add(labels.clone(), state == PortState::Active);
            }
            if let Some(count) = port.info.link_failure_count {
                failures.add(labels, count);
            }
        }
        missing += bond
            .slaves
            .iter()
            .filter(|configured| !present.ports.iter().any(|p| p.name == configured.as_str()))
            .count();
    }
    let mut families = Families::new();
    for family in [up, ports_up, mii, active, failures] {
        families.push(family);
    }
    families.push(crate::metrics::engine_errors("bonds", missing));
    families
}

/// One bond's lines of `bond status`.
pub fn status_of(bond: &model::Bond, kernel: &KernelBond) -> String {
    let options = &kernel.info.options;
    let mode = options
        .mode
        .map_or_else(|| "?".to_owned(), |mode| mode.to_string());
    let active = options
        .active_slave
        .and_then(|index| kernel.ports.iter().find(|p| p.index == index))
        .map_or("none", |port| port.name.as_str());
    let ports_up = kernel
        .ports
        .iter()
        .filter(|p| p.info.mii_status == Some(MiiStatus::Up))
        .count();
    let monitor = match (options.miimon, options.arp_interval) {
        (Some(miimon), _) if miimon > 0 => format!("miimon {miimon} ms"),
        (_, Some(arp)) if arp > 0 => format!(
            "arp_interval {arp} ms, arp_validate {}",
            options
                .arp_validate
                .map_or_else(|| "none".to_owned(), |v| v.to_string())
        ),
        _ => "no link monitor".to_owned(),
    };
    let mut text = format!(
        "bond {}: {} mode {mode}, {monitor}, carrier {}, active {active}, {ports_up} of {} ports up (min_links {})\n",
        kernel.name,
        if kernel.up { "up" } else { "DOWN" },
        if kernel.lower_up { "yes" } else { "NO" },
        kernel.ports.len(),
        bond.min_links,
    );
    if let Some(ad) = &kernel.info.ad {
        text.push_str(&format!(
            "bond {}: 802.3ad aggregator {}, {} ports, actor key {}, partner key {}, partner {}\n",
            kernel.name,
            number(ad.aggregator_id),
            number(ad.num_ports),
            number(ad.actor_key),
            number(ad.partner_key),
            ad.partner_mac.map_or_else(|| "-".to_owned(), mac),
        ));
    }
    for port in &kernel.ports {
        let info = &port.info;
        let mut line = format!(
            "bond {}: port {} {}, mii {}, link failures {}",
            kernel.name,
            port.name,
            info.state.map_or("?", PortState::kernel_name),
            info.mii_status.map_or("?", MiiStatus::kernel_name),
            number(info.link_failure_count),
        );
        if let Some(aggregator) = info.ad_aggregator_id {
            line.push_str(&format!(
                ", aggregator {aggregator}, actor {}, partner {}",
                lacp_words(info.ad_actor_oper_port_state),
                lacp_words(info.ad_partner_oper_port_state)
            ));
        }
        line.push('\n');
        text.push_str(&line);
    }
    for configured in bond.slaves.iter() {
        if !kernel.ports.iter().any(|p| p.name == configured.as_str()) {
            text.push_str(&format!(
                "bond {}: port {configured} configured but not in the bond\n",
                kernel.name
            ));
        }
    }
    text
}

fn number<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| v.to_string())
}

fn mac(bytes: [u8; 6]) -> String {
    bytes
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The LACP port state bits as words: "activity,aggregation,sync,collecting,distributing".
fn lacp_words(state: Option<u8>) -> String {
    use kernel::lacp_state as bit;
    let Some(state) = state else {
        return "-".to_owned();
    };
    let words: Vec<&str> = [
        (bit::ACTIVITY, "active"),
        (bit::TIMEOUT, "fast"),
        (bit::AGGREGATION, "aggregatable"),
        (bit::SYNCHRONIZATION, "in-sync"),
        (bit::COLLECTING, "collecting"),
        (bit::DISTRIBUTING, "distributing"),
        (bit::DEFAULTED, "defaulted"),
        (bit::EXPIRED, "expired"),
    ]
    .iter()
    .filter(|(mask, _)| state & mask != 0)
    .map(|(_, word)| *word)
    .collect();
    if words.is_empty() {
        "none".to_owned()
    } else {
        words.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_config::BoundedVec;

    fn bond(mode: BondMode) -> model::Bond {
        model::Bond {
            name: "bond0".try_into().unwrap(),
            mode,
            slaves: BoundedVec::from_vec(vec![
                "public".try_into().unwrap(),
                "public2".try_into().unwrap(),
            ])
            .unwrap(),
            up_delay_ms: 250,
            ..model::Bond::default()
        }
    }

    #[test]
    fn only_the_options_of_the_mode_are_sent() {
        let ab = desired_options(&bond(BondMode::ActiveBackup), Some(7));
        assert_eq!(ab.mode, Some(kernel::BondMode::ActiveBackup));
        assert_eq!((ab.miimon, ab.updelay), (Some(100), Some(200)));
        assert_eq!(ab.primary, Some(7));
        assert!(ab.fail_over_mac.is_some() && ab.primary_reselect.is_some());
        assert!(ab.lacp_rate.is_none() && ab.ad_select.is_none() && ab.xmit_hash_policy.is_none());
        let lacp = desired_options(&bond(BondMode::Ieee8023ad), Some(7));
        assert!(lacp.lacp_rate.is_some() && lacp.ad_select.is_some());
        assert!(lacp.xmit_hash_policy.is_some());
        assert!(lacp.primary.is_none() && lacp.fail_over_mac.is_none());
        // 802.3ad refuses the ARP monitor's options outright.
        assert!(lacp.arp_interval.is_none() && lacp.arp_validate.is_none());
        let rr = desired_options(&bond(BondMode::BalanceRr), Some(7));
        assert!(rr.primary.is_none() && rr.xmit_hash_policy.is_none());
        assert_eq!(rr.arp_interval, Some(0));
    }

    #[test]
    fn the_arp_monitor_turns_mii_off_and_carries_targets_and_validation() {
        let mut arp = bond(BondMode::ActiveBackup);
        arp.monitor = LinkMonitor::Arp {
            interval_ms: 200,
            targets: BoundedVec::from_vec(vec!["192.0.2.1".parse().unwrap()]).unwrap(),
            validate: model::ArpValidate::All,
        };
        let options = desired_options(&arp, None);
        assert_eq!(options.miimon, Some(0));
        assert_eq!(options.arp_interval, Some(200));
        assert_eq!(
            options.arp_ip_target,
            Some(vec!["192.0.2.1".parse().unwrap()])
        );
        assert_eq!(options.arp_validate, Some(kernel::ArpValidate::All));
        // Delays need miimon: not sent.
        assert!(options.updelay.is_none());
    }

    #[test]
    fn mode_and_mac_changes_need_a_bond_without_ports_and_lacp_ones_a_bond_that_is_down() {
        let running = desired_options(&bond(BondMode::ActiveBackup), Some(2));
        let to_lacp = desired_options(&bond(BondMode::Ieee8023ad), None).changes_from(&running);
        assert!(needs_no_ports(&to_lacp));
        let mut fast = bond(BondMode::Ieee8023ad);
        let lacp = desired_options(&fast, None);
        fast.lacp_rate = model::LacpRate::Fast;
        let change = desired_options(&fast, None).changes_from(&lacp);
        assert!(!needs_no_ports(&change) && needs_down(&change));
        let mut slower = bond(BondMode::ActiveBackup);
        slower.monitor = LinkMonitor::Mii { interval_ms: 10 };
        let change = desired_options(&slower, Some(2)).changes_from(&running);
        assert!(!needs_no_ports(&change) && !needs_down(&change));
        assert_eq!(describe(&change), "miimon 10, updelay 250");
    }

    /// The config of the plans below: bond0 over public and public2 (active-backup, the
    /// first port primary), and each port an interface.
    fn bonded_config() -> Config {
        tandem_config::text::from_toml(
            r#"
[[interfaces]]
name = "public"

[[interfaces]]
name = "public2"

[[interfaces]]
name = "bond0"
addresses = ["192.0.2.1/24"]

[[bonds]]
name = "bond0"
slaves = ["public", "public2"]
"#,
        )
        .unwrap()
    }

    #[test]
    fn metrics_name_each_port_state_and_count_what_the_kernel_lacks() {
        let config = bonded_config();
        let Some(configured) = config.bonds.iter().next() else {
            panic!("no bond in the test config");
        };
        let mut kernel = running(configured);
        kernel.ports[0].info = kernel::PortInfo {
            state: Some(PortState::Active),
            mii_status: Some(MiiStatus::Up),
            link_failure_count: Some(2),
            ..kernel::PortInfo::default()
        };
        kernel.ports[1].info = kernel::PortInfo {
            state: Some(PortState::Backup),
            mii_status: Some(MiiStatus::Down),
            link_failure_count: Some(5),
            ..kernel::PortInfo::default()
        };
        let mut text = Vec::new();
        metrics(&config, &[kernel]).render(crate::metrics::Format::Prometheus, &mut text);
        let text = String::from_utf8(text).unwrap();
        for line in [
            "tandem_bond_up{bond=\"bond0\"} 1\n",
            "tandem_bond_ports_up{bond=\"bond0\"} 1\n",
            "tandem_bond_port_mii_status{bond=\"bond0\",port=\"public\",status=\"up\"} 1\n",
            "tandem_bond_port_mii_status{bond=\"bond0\",port=\"public2\",status=\"down\"} 1\n",
            "tandem_bond_port_mii_status{bond=\"bond0\",port=\"public2\",status=\"up\"} 0\n",
            "tandem_bond_port_active{bond=\"bond0\",port=\"public2\"} 0\n",
            "tandem_bond_port_link_failures_total{bond=\"bond0\",port=\"public2\"} 5\n",
            "tandem_engine_errors{engine=\"bonds\"} 0\n",
        ] {
            assert!(text.contains(line), "{line} missing from\n{text}");
        }
        let mut text = Vec::new();
        metrics(&config, &[]).render(crate::metrics::Format::Prometheus, &mut text);
        let text = String::from_utf8(text).unwrap();
        assert!(
            text.contains("tandem_bond_up{bond=\"bond0\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("tandem_engine_errors{engine=\"bonds\"} 1\n"),
            "{text}"
        );
    }

    /// bond0 as the kernel reports it after an apply of `bond` (public is index 2, public2 3).
    fn running(bond: &model::Bond) -> KernelBond {
        let port = |index: u32, name: &str| kernel::BondPort {
            index,
            name: name.to_owned(),
            up: true,
            lower_up: true,
            info: kernel::PortInfo::default(),
        };
        KernelBond {
            index: 5,
            name: "bond0".to_owned(),
            up: true,
            lower_up: true,
            mtu: Some(1500),
            info: kernel::BondInfo {
                options: desired_options(bond, Some(2)),
                ad: None,
            },
            ports: vec![port(2, "public"), port(3, "public2")],
        }
    }

    #[test]
    fn a_bond_the_kernel_runs_as_configured_costs_no_operation() {
        let config = bonded_config();
        let bond = &config.bonds[0];
        let kernel = running(bond);
        assert_eq!(
            plan_change(&config, bond, &kernel, Some(2)),
            Plan::default()
        );
        // Its MTU as configured: still nothing.
        let mut jumbo = bond.clone();
        jumbo.mtu = Some(1500);
        assert!(plan_change(&config, &jumbo, &kernel, Some(2))
            .steps
            .is_empty());
        // A bond that is down is only set up.
        let down = KernelBond {
            up: false,
            ..kernel.clone()
        };
        assert_eq!(
            plan_change(&config, bond, &down, Some(2)).steps,
            [Step::SetUp("bond0".into(), true)]
        );
    }

    #[test]
    fn each_change_is_one_operation_and_only_what_differs_is_sent() {
        let config = bonded_config();
        let bond = &config.bonds[0];
        let kernel = running(bond);
        // miimon 10: one options request, in place.
        let mut fast = bond.clone();
        fast.monitor = LinkMonitor::Mii { interval_ms: 10 };
        let plan = plan_change(&config, &fast, &kernel, Some(2));
        assert_eq!(plan.steps.len(), 1, "{plan:?}");
        assert_eq!(plan.lines, ["bond0: miimon 10"]);
        // An MTU the kernel does not run: one request.
        let mut jumbo = bond.clone();
        jumbo.mtu = Some(9000);
        assert_eq!(
            plan_change(&config, &jumbo, &kernel, Some(2)).steps,
            [Step::Mtu(9000)]
        );
        // public2 dropped: released and set up again (it is still an interface).
        let mut single = bond.clone();
        single.slaves = BoundedVec::from_vec(vec!["public".try_into().unwrap()]).unwrap();
        let plan = plan_change(&config, &single, &kernel, Some(2));
        assert_eq!(
            plan.steps,
            [
                Step::Release("public2".into()),
                Step::SetUp("public2".into(), true)
            ]
        );
        assert_eq!(plan.lines, ["bond0: port public2 released"]);
        // A mode change: both ports out, the bond down, the mode, both ports in, the bond up.
        let mut xor = bond.clone();
        xor.mode = BondMode::BalanceXor;
        let plan = plan_change(&config, &xor, &kernel, Some(2));
        let kinds: Vec<&str> = plan
            .steps
            .iter()
            .map(|step| match step {
                Step::Create(_) => "create",
                Step::Release(_) => "release",
                Step::SetUp(_, true) => "up",
                Step::SetUp(_, false) => "down",
                Step::Options(_) => "options",
                Step::Enslave(_) => "enslave",
                Step::Mtu(_) => "mtu",
            })
            .collect();
        assert_eq!(
            kinds,
            ["release", "release", "down", "options", "enslave", "enslave", "up"]
        );
    }

    #[test]
    fn a_new_bond_is_created_enslaved_given_its_primary_and_set_up() {
        let config = bonded_config();
        let plan = plan_create(&config.bonds[0], Some(2));
        assert_eq!(plan.steps.len(), 5, "{plan:?}");
        assert!(matches!(&plan.steps[0], Step::Create(options) if options.primary.is_none()));
        assert_eq!(plan.steps[1], Step::Enslave("public".into()));
        assert!(matches!(&plan.steps[3], Step::Options(o) if o.primary == Some(2)));
        assert_eq!(plan.steps[4], Step::SetUp("bond0".into(), true));
        assert_eq!(
            plan.lines,
            [
                "bond0 created (active-backup, miimon 100 ms)",
                "bond0: port public added",
                "bond0: port public2 added"
            ]
        );
        let counted = BondApply {
            operations: Some(0),
            ..BondApply::default()
        };
        assert_eq!(
            counted.summary().as_deref(),
            Some("bonds: unchanged (0 operations)")
        );
        assert_eq!(BondApply::default().summary(), None);
    }

    #[test]
    fn the_first_port_is_the_primary_when_none_is_named() {
        let ab = bond(BondMode::ActiveBackup);
        assert_eq!(ab.effective_primary().map(|p| p.as_str()), Some("public"));
        assert_eq!(bond(BondMode::BalanceXor).effective_primary(), None);
    }
}
