//! Which firmware this box runs and how it was booted, and blessing a slot on trial.
//!
//! The version is this binary's; the slot (`a` or `b`) is the one whose unified kernel image
//! systemd-boot started: the letter in the file name `LoaderEntrySelected` names, since an
//! installed bundle's image is the same for both slots (its `tandem.slot=` on the command line
//! is only a fallback for a boot without that variable); otherwise a direct
//! kernel boot (the lab's `qemu -kernel`) or a host run (`tandem run`). On a UEFI boot the
//! daemon also reads systemd-boot's variables (efivarfs: `LoaderEntrySelected`,
//! `LoaderBootCountPath`) and the slot files on the EFI system partition (mounted read-only as
//! vfat at [`ESP_MOUNT`]; read-write only while a bless renames a file).
//!
//! Boot counting is systemd-boot's (see `tandem_board::boot_disk`): a slot file named
//! `tandem-<gen>-<slot>+LEFT[-DONE].efi` is on trial; systemd-boot renames it one try down at
//! every boot of it and skips it once no try is left. Blessing is renaming the running slot's
//! file to drop the counter, after the box's health held for `tandem.bless_after=SECONDS`
//! (default [`DEFAULT_BLESS_AFTER`]; `never` for a test build that must fall back). Health is
//! [`BlessHealth`]: the stored config applied, the links it uses with carrier, the engines it
//! starts running, the partner reachable when paired; `firmware status` names what holds the
//! bless back. The decision is the sans-IO [`BlessClock`]; the rename runs on the blocking pool.
//! A boot that hangs (the hardware watchdog resets it), crashes or is never blessed is a used
//! try; the lab's `tandem.test_hang=TRY` makes one try hang on purpose.
//!
//! An install (`firmware install FILE`, checked first by `firmware_upgrade`) writes the other
//! slot as `tandem-<highest generation + 1>-<other>+3.efi` on the blocking pool: under a
//! temporary name first, flushed, renamed, flushed, and only then are the other slot's old
//! files removed (`tandem_southbound::efi::write_slot_file`). The running slot's file is never
//! touched, and an install is refused while the running slot is itself on trial: its file is
//! then the only one known to boot, and the other slot is the blessed fallback.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tandem_board::boot_disk::{
    boot_order, Slot, SlotFile, ESP_PARTITION_NAME, SLOT_CMDLINE_KEY, SLOT_DIR,
};

use crate::firmware_upgrade::{self, BoxFacts, Refusal, Trust};
use crate::logring::Log;
use crate::pair_service::PartnerFirmware;

/// The temporary name an install writes under (not `*.efi`: systemd-boot ignores it).
const INSTALL_TEMP: &str = "tandem-new.tmp";
/// The kernel command-line word that pauses an install after each step, logging it (the lab's
/// power-cut test stops the box there; never on a production command line).
pub const INSTALL_PAUSE_KEY: &str = "tandem.install_pause";
/// Where `firmware fetch` keeps a verified bundle (RAM: the initramfs's root).
pub const FETCHED_BUNDLE: &str = "/run/tandem/fetched.bundle";
/// How long each read of `firmware fetch` may wait.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// Where the EFI system partition is mounted on the box.
pub const ESP_MOUNT: &str = "/boot/efi";
/// The environment variable that makes `tandem run` behave as a slot on trial: `never` or
/// the seconds of health before its (simulated) bless. Host tests only; the appliance reads
/// its slot from systemd-boot.
pub const SIMULATED_TRIAL_ENV: &str = "TANDEM_DEBUG_SLOT_ON_TRIAL";
/// The kernel command-line word that sets how long health must hold before a bless.
pub const BLESS_AFTER_KEY: &str = "tandem.bless_after";
/// How long health must hold before a slot on trial is blessed, unless the command line says.
pub const DEFAULT_BLESS_AFTER: Duration = Duration::from_secs(60);
/// The kernel command-line word (lab only, never on a production command line) that makes PID
/// 1 hang on try TRY of a slot on trial: it stops petting the watchdog and stops answering, so
/// the hardware watchdog resets the box and the try is used up as by a real hang.
pub const TEST_HANG_KEY: &str = "tandem.test_hang";
/// The modules the slot code needs (in the image's feature modules).
const MODULES: [&str; 4] = ["efivarfs", "vfat", "nls_cp437", "nls_ascii"];

/// How the running firmware was started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BootPath {
    /// From slot `slot` of the disk image, by UEFI firmware (`/sys/firmware/efi` exists) or not.
    Slot { slot: Slot, uefi: bool },
    /// `tandem.slot=` names no slot.
    BadSlot { value: String },
    /// Booted by UEFI, but not from a Tandem slot (no `tandem.slot=`).
    UefiWithoutSlot,
    /// A kernel started directly (qemu `-kernel`, the lab), no slot.
    DirectKernel,
    /// Not PID 1 of the appliance (`tandem run` on a host).
    NotAppliance,
}

/// The running firmware: version and boot path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareBoot {
    pub version: &'static str,
    pub path: BootPath,
}

impl FirmwareBoot {
    /// A daemon that is not the appliance's PID 1.
    pub fn not_appliance() -> FirmwareBoot {
        FirmwareBoot {
            version: env!("CARGO_PKG_VERSION"),
            path: BootPath::NotAppliance,
        }
    }

    /// The appliance's boot, from its kernel command line and whether it was booted by UEFI.
    pub fn detect(cmdline: &str, uefi: bool) -> FirmwareBoot {
        let path = match crate::init::cmdline_value(cmdline, SLOT_CMDLINE_KEY) {
            Some(value) => match Slot::from_letter(value) {
                Some(slot) => BootPath::Slot { slot, uefi },
                None => BootPath::BadSlot {
                    value: value.to_owned(),
                },
            },
            None if uefi => BootPath::UefiWithoutSlot,
            None => BootPath::DirectKernel,
        };
        FirmwareBoot {
            version: env!("CARGO_PKG_VERSION"),
            path,
        }
    }

    /// The slot from the running slot file's name (what systemd-boot started) when there is
    /// one: it wins over `tandem.slot=`, which an installed bundle's image has for slot a.
    pub fn with_running_file(mut self, view: &SlotsView) -> FirmwareBoot {
        if let (
            Some(running),
            BootPath::Slot { uefi: true, .. }
            | BootPath::UefiWithoutSlot
            | BootPath::BadSlot { .. },
        ) = (view.running(), &self.path)
        {
            self.path = BootPath::Slot {
                slot: running.slot,
                uefi: true,
            };
        }
        self
    }

    /// The version and how it booted (`0.1.0 slot a (uefi)`).
    pub fn summary(&self) -> String {
        let how = match &self.path {
            BootPath::Slot { slot, uefi: true } => format!("slot {slot} (uefi)"),
            BootPath::Slot { slot, uefi: false } => {
                format!("slot {slot} (not booted by UEFI: no slot can be switched)")
            }
            BootPath::BadSlot { value } => format!(
                "slot ?: {SLOT_CMDLINE_KEY}={value} on the kernel command line names no slot \
                 (a or b); rebuild the disk image with make image"
            ),
            BootPath::UefiWithoutSlot => format!(
                "slot -: booted by UEFI without {SLOT_CMDLINE_KEY}= (not from a Tandem disk \
                 image slot)"
            ),
            BootPath::DirectKernel => "slot -: direct kernel boot".to_owned(),
            BootPath::NotAppliance => "slot -: not the appliance (tandem run)".to_owned(),
        };
        format!("{} {how}", self.version)
    }
}

/// How long health must hold before a bless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlessAfter {
    Held(Duration),
    /// Never bless (a test build that must fall back).
    Never,
}

impl BlessAfter {
    /// From `tandem.bless_after=SECONDS|never`; a bad value is the default, with a note.
    pub fn from_cmdline(cmdline: &str) -> (BlessAfter, Option<String>) {
        match crate::init::cmdline_value(cmdline, BLESS_AFTER_KEY) {
            None => (BlessAfter::Held(DEFAULT_BLESS_AFTER), None),
            Some("never") => (BlessAfter::Never, None),
            Some(value) => match value.parse::<u64>() {
                Ok(seconds) if seconds <= 86_400 => {
                    (BlessAfter::Held(Duration::from_secs(seconds)), None)
                }
                _ => (
                    BlessAfter::Held(DEFAULT_BLESS_AFTER),
                    Some(format!(
                        "firmware: {BLESS_AFTER_KEY}={value} is not 0..86400 seconds or never; \
                         blessing after {} s",
                        DEFAULT_BLESS_AFTER.as_secs()
                    )),
                ),
            },
        }
    }
}

/// What must hold before a slot on trial is blessed, as the daemon saw it at one tick: plain
/// facts (sans-IO), gathered by the daemon from its config, link table, engines and peer probe.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlessHealth {
    /// A stored config exists and is not applied (yet).
    pub config_unapplied: bool,
    /// The links the running config uses (its interfaces) that are down or have no carrier.
    pub links_without_carrier: Vec<String>,
    /// The engines the running config starts that are not running (not started, or stopped).
    pub engines_not_running: Vec<String>,
    /// Paired, and the partner does not answer on the peer cable.
    pub partner_unreachable: bool,
}

impl BlessHealth {
    /// None when everything holds; otherwise every condition that holds the bless back.
    pub fn holding_back(&self) -> Option<String> {
        let mut why = Vec::new();
        if self.config_unapplied {
            why.push("the stored config is not applied".to_owned());
        }
        if !self.links_without_carrier.is_empty() {
            why.push(format!(
                "no carrier on {} (a link the config uses: plug its cable or remove it from \
                 the config)",
                self.links_without_carrier.join(", ")
            ));
        }
        if !self.engines_not_running.is_empty() {
            why.push(format!(
                "engine {} not running (see `log`)",
                self.engines_not_running.join(", ")
            ));
        }
        if self.partner_unreachable {
            why.push("paired, but the partner is not reachable on the peer cable".to_owned());
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

/// When to bless: health must hold for the whole of `after`, without a break.
#[derive(Debug, Clone)]
pub struct BlessClock {
    after: BlessAfter,
    healthy_since: Option<Instant>,
    /// What held the bless back at the last tick (None: health held).
    waiting_for: Option<String>,
}

impl BlessClock {
    pub fn new(after: BlessAfter) -> BlessClock {
        BlessClock {
            after,
            healthy_since: None,
            waiting_for: None,
        }
    }

    /// One look at the box's health at `now`; true when it is time to bless.
    pub fn tick(&mut self, now: Instant, health: &BlessHealth) -> bool {
        self.waiting_for = health.holding_back();
        if self.waiting_for.is_some() {
            self.healthy_since = None;
            return false;
        }
        let since = *self.healthy_since.get_or_insert(now);
        match self.after {
            BlessAfter::Never => false,
            BlessAfter::Held(after) => now.saturating_duration_since(since) >= after,
        }
    }

    /// How long health has held at `now`.
    pub fn held(&self, now: Instant) -> Option<Duration> {
        self.healthy_since
            .map(|since| now.saturating_duration_since(since))
    }

    /// What held the bless back at the last tick; None when health held (or no tick yet).
    pub fn waiting_for(&self) -> Option<&str> {
        self.waiting_for.as_deref()
    }
}

/// The slot files and what systemd-boot said, as read at boot (and after a bless).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotsView {
    /// `LoaderEntrySelected`: the entry systemd-boot started, as it was named then.
    pub selected: Option<String>,
    /// `LoaderBootCountPath`: what it renamed a counted entry to before starting it.
    pub count_path: Option<String>,
    /// The slot files on the EFI system partition (by name, as on the disk).
    pub files: Vec<String>,
    /// Why the view is incomplete (no efivarfs, no ESP, ...).
    pub problem: Option<String>,
}

impl SlotsView {
    /// The file name of the running slot as it is now on the disk.
    pub fn running_file(&self) -> Option<String> {
        let name = match (&self.count_path, &self.selected) {
            (Some(path), _) => path.rsplit(['\\', '/']).next()?.to_owned(),
            (None, Some(selected)) => selected.clone(),
            (None, None) => return None,
        };
        // The ESP's own spelling (FAT keeps the case it was given; the variable is lower case).
        Some(
            self.files
                .iter()
                .find(|f| f.eq_ignore_ascii_case(&name))
                .cloned()
                .unwrap_or(name),
        )
    }

    /// The running slot's file, parsed.
    pub fn running(&self) -> Option<SlotFile> {
        SlotFile::parse(&self.running_file()?)
    }

    /// Every slot file, parsed, in the order systemd-boot would boot them.
    pub fn boot_order(&self) -> Vec<SlotFile> {
        let parsed: Vec<SlotFile> = self
            .files
            .iter()
            .filter_map(|f| SlotFile::parse(f))
            .collect();
        boot_order(&parsed)
    }
}

/// The firmware's state the daemon shares with the bless task.
#[derive(Debug)]
struct State {
    boot: FirmwareBoot,
    view: SlotsView,
    clock: BlessClock,
    /// The ESP's slot directory (None: not mounted, nothing can be blessed).
    slot_dir: Option<PathBuf>,
    /// A bless is running or done (result in `blessed` / `bless_error`).
    blessing: bool,
    blessed: Option<String>,
    bless_error: Option<String>,
    /// The key bundles must be signed with (Err: why there is none).
    trust: Result<Trust, String>,
    /// An install or fetch is running.
    installing: bool,
    /// What the last install wrote (for `firmware status`).
    installed: Option<String>,
    /// Bundles refused, by reason.
    refused: std::collections::BTreeMap<&'static str, u64>,
    /// `tandem.install_pause=SECONDS`: a pause after each install step (lab only).
    install_pause: Option<Duration>,
    /// A `tandem run` whose environment says its slot is on trial (host tests of what a slot
    /// on trial does, e.g. the config format it writes); nothing is renamed.
    simulated_trial: bool,
    /// `tandem.test_hang=TRY`: hang on that try of a slot on trial (lab only).
    test_hang: Option<u32>,
}

/// What the daemon knows that a bundle is checked against (owned, for the worker).
#[derive(Debug, Clone)]
pub struct InstallFacts {
    pub board: Option<&'static str>,
    pub paired: bool,
    pub partner: Option<PartnerFirmware>,
}

impl InstallFacts {
    fn facts(&self) -> BoxFacts<'_> {
        BoxFacts {
            board: self.board,
            config_format: tandem_config::blob::FORMAT_VERSION,
            paired: self.paired,
            partner: self.partner,
        }
    }
}

/// Where an install's answer goes.
pub type Answer = Box<dyn FnOnce(String) + Send>;

/// How an install of a bundle the partner sent ended: `installed` true when the other slot
/// was written; `text` what the operator reads (the refusal reason, or what was installed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Installed {
    pub installed: bool,
    /// True when another firmware job was running (nothing was checked or written).
    pub busy: bool,
    pub text: String,
}

/// The running firmware: what `status` and `firmware status` say, and the bless.
#[derive(Debug, Clone)]
pub struct Firmware {
    state: Arc<Mutex<State>>,
}

impl Default for Firmware {
    fn default() -> Firmware {
        Firmware::not_appliance()
    }
}

impl Firmware {
    fn with(
        boot: FirmwareBoot,
        view: SlotsView,
        after: BlessAfter,
        slot_dir: Option<PathBuf>,
    ) -> Firmware {
        Firmware {
            state: Arc::new(Mutex::new(State {
                boot,
                view,
                clock: BlessClock::new(after),
                slot_dir,
                blessing: false,
                blessed: None,
                bless_error: None,
                trust: Err("not the appliance: no firmware signing key".to_owned()),
                installing: false,
                installed: None,
                refused: std::collections::BTreeMap::new(),
                install_pause: None,
                simulated_trial: false,
                test_hang: None,
            })),
        }
    }

    /// What this box tells its partner of its firmware (FIRMWARE on the peer channel): the
    /// version, and the slot it booted from with whether it is blessed.
    pub fn peer_facts(&self) -> (&'static str, Option<tandem_wire::replication::RunningSlot>) {
        use tandem_wire::replication::{RunningSlot, SlotName};
        let state = self.lock();
        let slot = match (&state.boot.path, state.view.running()) {
            (BootPath::Slot { slot, .. }, running) => Some(RunningSlot {
                slot: match slot {
                    Slot::A => SlotName::A,
                    Slot::B => SlotName::B,
                },
                // No slot file read (not booted by UEFI): nothing counts its boots.
                blessed: state.blessed.is_some() || running.is_none_or(|r| r.tries.is_none()),
            }),
            _ => None,
        };
        (state.boot.version, slot)
    }

    /// A daemon that is not the appliance's PID 1: nothing to read, nothing to bless.
    pub fn not_appliance() -> Firmware {
        Firmware::with(
            FirmwareBoot::not_appliance(),
            SlotsView::default(),
            BlessAfter::Never,
            None,
        )
    }

    /// A `tandem run` that behaves as a slot on trial (its environment has
    /// [`SIMULATED_TRIAL_ENV`]): blessed after `after` of health, with nothing renamed.
    pub fn simulated_trial(after: BlessAfter) -> Firmware {
        let firmware = Firmware::with(
            FirmwareBoot::not_appliance(),
            SlotsView::default(),
            after,
            None,
        );
        firmware.lock().simulated_trial = true;
        firmware
    }

    /// Whether the running slot is on trial (booted from a counted slot file, not blessed).
    pub fn on_trial(&self) -> bool {
        let state = self.lock();
        if state.blessed.is_some() {
            return false;
        }
        state.simulated_trial || state.view.running().is_some_and(|r| r.tries.is_some())
    }

    /// The appliance at boot: on a UEFI boot from a slot, loads efivarfs and vfat, mounts
    /// them, reads systemd-boot's variables and the slot files. Problems are logged and leave
    /// a view that says what is missing.
    pub fn open(cmdline: &str, log: &Log) -> Firmware {
        let uefi = Path::new("/sys/firmware/efi").is_dir();
        let boot = FirmwareBoot::detect(cmdline, uefi);
        let (after, note) = BlessAfter::from_cmdline(cmdline);
        if let Some(note) = note {
            log.line(note);
        }
        let trust = Trust::load();
        if let Err(why) = &trust {
            log.line(format!("firmware: {why}: no bundle can be installed"));
        }
        if !uefi {
            let firmware = Firmware::with(boot, SlotsView::default(), BlessAfter::Never, None);
            firmware.lock().trust = trust;
            return firmware;
        }
        crate::engine::load_feature_modules(log, "firmware", &MODULES);
        let (view, slot_dir) = read_slots(log);
        let boot = boot.with_running_file(&view);
        let firmware = Firmware::with(boot, view, after, slot_dir);
        firmware.lock().trust = trust;
        firmware.lock().install_pause = crate::init::cmdline_value(cmdline, INSTALL_PAUSE_KEY)
            .and_then(|value| value.parse::<u64>().ok())
            .filter(|seconds| (1..=600).contains(seconds))
            .map(Duration::from_secs);
        firmware.lock().test_hang = crate::init::cmdline_value(cmdline, TEST_HANG_KEY)
            .and_then(|value| value.parse::<u32>().ok())
            .filter(|try_number| (1..=tandem_board::boot_disk::BOOT_TRIES).contains(try_number));
        log.line(format!("firmware: {}", firmware.summary_line()));
        firmware
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `0.1.0 slot b (uefi), on trial as tandem-2-b+2-1.efi`.
    fn summary_line(&self) -> String {
        let state = self.lock();
        let mut line = state.boot.summary();
        if state.simulated_trial && state.blessed.is_none() {
            line.push_str(&format!(", on trial ({SIMULATED_TRIAL_ENV})"));
        }
        if let Some(blessed) = &state.blessed {
            line.push_str(&format!(", blessed as {blessed}"));
        } else if let Some(running) = state.view.running().filter(|r| r.tries.is_some()) {
            line.push_str(&format!(", on trial as {running}"));
        }
        let fallen: Vec<String> = state
            .view
            .boot_order()
            .into_iter()
            .filter(SlotFile::is_bad)
            .map(|f| f.file_name())
            .collect();
        if !fallen.is_empty() {
            line.push_str(&format!(
                " ({} used up its tries: fell back)",
                fallen.join(", ")
            ));
        }
        line
    }

    /// The `status` line.
    pub fn status_line(&self) -> String {
        format!("status: firmware {}\n", self.summary_line())
    }

    /// `firmware status`: the running slot, the bless, every slot file, the next boot.
    pub fn status_text(&self, now: Instant) -> String {
        let summary = self.summary_line();
        let state = self.lock();
        let mut text = format!("firmware: running {summary}\n");
        if let Some(problem) = &state.view.problem {
            text.push_str(&format!("firmware: {problem}\n"));
        }
        if let Some(selected) = &state.view.selected {
            text.push_str(&format!(
                "firmware: systemd-boot started {selected}{}\n",
                state
                    .view
                    .count_path
                    .as_deref()
                    .map_or(String::new(), |p| format!(" (boot count: now {p})"))
            ));
        }
        let bless = match (&state.blessed, &state.bless_error, state.view.running()) {
            (Some(name), _, _) => format!("blessed: renamed to {name}"),
            (None, Some(error), _) => format!("bless failed: {error}"),
            (None, None, Some(running)) if running.tries.is_none() => {
                "blessed (no boot counter on the running slot)".to_owned()
            }
            (None, None, Some(_)) => match state.clock.after {
                BlessAfter::Never => format!("on trial, never blessed ({BLESS_AFTER_KEY}=never)"),
                BlessAfter::Held(after) => format!(
                    "on trial, blessed after {} s of health (healthy for {} s){}",
                    after.as_secs(),
                    state.clock.held(now).map_or(0, |d| d.as_secs()),
                    state
                        .clock
                        .waiting_for()
                        .map_or(String::new(), |why| format!("; waiting for health: {why}"))
                ),
            },
            (None, None, None) => "no slot file to bless".to_owned(),
        };
        text.push_str(&format!("firmware: {bless}\n"));
        for slot in [Slot::A, Slot::B] {
            let files: Vec<String> = state
                .view
                .files
                .iter()
                .filter(|f| SlotFile::parse(f).is_some_and(|p| p.slot == slot))
                .cloned()
                .collect();
            text.push_str(&format!(
                "firmware: slot {slot}: {}\n",
                if files.is_empty() {
                    "empty".to_owned()
                } else {
                    files.join(", ")
                }
            ));
        }
        if let Some(next) = state.view.boot_order().first() {
            text.push_str(&format!("firmware: next boot {next}\n"));
        }
        if let Some(installed) = &state.installed {
            text.push_str(&format!("firmware: installed {installed}\n"));
        }
        match &state.trust {
            Ok(trust) => text.push_str(&format!(
                "firmware: bundles must be signed by key {}\n",
                trust.id()
            )),
            Err(why) => text.push_str(&format!("firmware: {why}\n")),
        }
        if !state.refused.is_empty() {
            let counts: Vec<String> = state
                .refused
                .iter()
                .map(|(reason, count)| format!("{reason} {count}"))
                .collect();
            text.push_str(&format!("firmware: refused: {}\n", counts.join(", ")));
        }
        text.push_str("firmware: end\n");
        text
    }

    /// Whether the bless clock needs the box's health now: a slot on trial, not yet blessed,
    /// no install running (so a blessed box gathers none).
    pub fn wants_health(&self) -> bool {
        let state = self.lock();
        if state.simulated_trial {
            return state.blessed.is_none();
        }
        !state.blessing
            && !state.installing
            && state.slot_dir.is_some()
            && state.view.running().is_some_and(|r| r.tries.is_some())
    }

    /// `tandem.test_hang=TRY` when this boot is that try of the running slot on trial: the
    /// line to log before hanging (the caller then hangs); None otherwise (always, outside the
    /// lab).
    pub fn test_hang(&self) -> Option<String> {
        let state = self.lock();
        let hang = state.test_hang?;
        let running = state.view.running()?;
        let tries = running.tries?;
        (tries.done == hang).then(|| {
            format!(
                "firmware: {TEST_HANG_KEY}={hang}: try {hang} of {running} hangs now (no more \
                 watchdog pets, no answers); the watchdog must reset the box"
            )
        })
    }

    /// The 1 s tick: feeds the box's health to the bless clock and, when it says so, renames
    /// the running slot's file on the blocking pool. A change in what holds the bless back is
    /// logged.
    pub fn tick(&self, now: Instant, health: &BlessHealth, log: &Log) {
        let mut state = self.lock();
        if state.simulated_trial && state.blessed.is_none() {
            if state.clock.tick(now, health) {
                let held = state.clock.held(now).unwrap_or_default().as_secs();
                state.blessed = Some(format!("(simulated: {SIMULATED_TRIAL_ENV})"));
                log.line(format!(
                    "firmware: blessed after {held} s of health (simulated, nothing renamed)"
                ));
            }
            return;
        }
        if state.blessing || state.installing || state.slot_dir.is_none() {
            return;
        }
        let Some(running) = state.view.running().filter(|r| r.tries.is_some()) else {
            return;
        };
        let before = state.clock.waiting_for().map(str::to_owned);
        let due = state.clock.tick(now, health);
        let after = state.clock.waiting_for();
        if after != before.as_deref() {
            log.line(match after {
                Some(why) => format!("firmware: slot {} not blessed yet: {why}", running.slot),
                None => format!(
                    "firmware: slot {} healthy; bless clock started",
                    running.slot
                ),
            });
        }
        if !due {
            return;
        }
        state.blessing = true;
        let (Some(dir), Some(from)) = (state.slot_dir.clone(), state.view.running_file()) else {
            return;
        };
        let to = running.bless().file_name();
        let held = state.clock.held(now).unwrap_or_default().as_secs();
        drop(state);
        let firmware = self.clone();
        let log = log.clone();
        tokio::task::spawn_blocking(move || {
            let result =
                tandem_southbound::efi::rename_on_esp(Path::new(ESP_MOUNT), &dir, &from, &to);
            let mut state = firmware.lock();
            match result {
                Ok(()) => {
                    log.line(format!(
                        "firmware: slot {} blessed after {held} s of health: {from} -> {to}",
                        running.slot
                    ));
                    state.view.files.retain(|f| f != &from);
                    state.view.files.push(to.clone());
                    state.view.files.sort();
                    state.view.count_path = None;
                    state.view.selected = Some(to.clone());
                    state.blessed = Some(to);
                }
                Err(error) => {
                    log.line(format!(
                        "firmware: cannot bless slot {}: rename {from} -> {to} in {}: {error}; \
                         it stays on trial",
                        running.slot,
                        dir.display()
                    ));
                    state.bless_error = Some(error.to_string());
                }
            }
        });
    }
}

impl Firmware {
    /// Firmware bundles refused, by reason (`firmware status` lists the same counts).
    pub fn metrics(&self) -> crate::metrics::Families {
        use crate::metrics::{Families, Family, Labels};
        let mut refused = Family::counter(
            "tandem_firmware_bundles_refused_total",
            "Firmware bundles `firmware fetch` / `firmware install` refused before writing, by reason.",
        );
        for (reason, count) in &self.lock().refused {
            refused.add(Labels::of(&[("reason", reason)]), *count);
        }
        let mut families = Families::new();
        families.push(refused);
        families
    }

    /// Counts a refusal and says it.
    fn refuse(&self, what: &str, refusal: &Refusal, log: &Log) -> String {
        *self.lock().refused.entry(refusal.reason()).or_default() += 1;
        let line = format!(
            "firmware: {what} refused ({}): {refusal}; nothing was written",
            refusal.reason()
        );
        log.line(line.clone());
        format!("{line}\n")
    }

    /// Takes the one install/fetch turn, or says why not.
    fn begin(&self) -> Result<(), String> {
        let mut state = self.lock();
        // `blessing` stays set once a bless is done (it happens once per boot): only one
        // still renaming is in the way.
        let renaming = state.blessing && state.blessed.is_none() && state.bless_error.is_none();
        if state.installing || renaming {
            return Err(
                "firmware: an install, fetch or bless is running; try again when it is done\n"
                    .to_owned(),
            );
        }
        state.installing = true;
        Ok(())
    }

    fn end(&self) {
        self.lock().installing = false;
    }

    /// `firmware install FILE`: checks the bundle, then writes its image into the other slot
    /// on the blocking pool; the answer says what was written and what the next boot does.
    pub fn install(&self, path: String, facts: InstallFacts, log: &Log, answer: Answer) {
        self.exclusively(
            log,
            answer,
            |busy| busy,
            move |firmware, log| firmware.install_blocking(&path, &facts, log),
        );
    }

    /// `pair upgrade`'s first step, on the blocking pool: the bundle at `path` (a file, or an
    /// `http://` URL fetched as `firmware fetch` does) read and checked as `firmware install`
    /// checks it (this box can install, the signature, board, formats, the partner), nothing
    /// written; its bytes and version.
    pub fn check_bundle(
        &self,
        path: &str,
        facts: &InstallFacts,
        log: &Log,
    ) -> Result<(Vec<u8>, tandem_board::bundle::Version), String> {
        self.installable(path, log)?;
        let bytes = if path.starts_with("http://") {
            let url = firmware_upgrade::HttpUrl::parse(path)
                .map_err(|why| format!("firmware: fetch: {why}\n"))?;
            firmware_upgrade::http_get(&url, tandem_board::bundle::MAX_BUNDLE, FETCH_TIMEOUT)
                .map_err(|why| {
                    log.line(format!("firmware: fetch {path} failed: {why}"));
                    format!("firmware: fetch {path} failed: {why}\n")
                })?
        } else {
            firmware_upgrade::read_bundle(path)
                .map_err(|refusal| self.refuse(&format!("pair upgrade of {path}"), &refusal, log))?
        };
        let trust = self.lock().trust.clone();
        let version = firmware_upgrade::verify(
            &bytes,
            trust.as_ref().map_err(String::as_str),
            &facts.facts(),
        )
        .map_err(|refusal| self.refuse(&format!("pair upgrade of {path}"), &refusal, log))?
        .manifest
        .version;
        Ok((bytes, version))
    }

    /// A bundle held in memory (`source` names it in the log and the answer: the one the
    /// partner sent over the peer cable, or the one `pair upgrade` checked): exactly `firmware
    /// install`'s checks and write.
    pub fn install_in_memory(
        &self,
        bytes: Vec<u8>,
        source: &'static str,
        facts: InstallFacts,
        log: &Log,
        answer: Box<dyn FnOnce(Installed) + Send>,
    ) {
        let busy = |text| Installed {
            installed: false,
            busy: true,
            text,
        };
        self.exclusively(log, answer, busy, move |firmware, log| {
            let (installed, text) = match firmware.install_bytes(&bytes, source, &facts, log) {
                Ok(text) => (true, text),
                Err(text) => (false, text),
            };
            Installed {
                installed,
                busy: false,
                text,
            }
        });
    }

    /// Runs `work` on the blocking pool as the one firmware job at a time (`begin` .. `end`)
    /// and answers with its result; a job already running is the answer instead (`busy`).
    fn exclusively<T: Send + 'static>(
        &self,
        log: &Log,
        answer: Box<dyn FnOnce(T) + Send>,
        busy: impl FnOnce(String) -> T,
        work: impl FnOnce(&Firmware, &Log) -> T + Send + 'static,
    ) {
        if let Err(why) = self.begin() {
            return answer(busy(why));
        }
        let firmware = self.clone();
        let log = log.clone();
        tokio::task::spawn_blocking(move || {
            let text = work(&firmware, &log);
            firmware.end();
            answer(text);
        });
    }

    fn install_blocking(&self, path: &str, facts: &InstallFacts, log: &Log) -> String {
        // Where it would go, first: a box that cannot install reads no file.
        if let Err(text) = self.installable(path, log) {
            return text;
        }
        match firmware_upgrade::read_bundle(path) {
            Ok(bytes) => self
                .install_bytes(&bytes, path, facts, log)
                .unwrap_or_else(|text| text),
            Err(refusal) => self.refuse(&format!("install of {path}"), &refusal, log),
        }
    }

    /// Refused (the operator's text) when this box has no slot to install into.
    fn installable(&self, what: &str, log: &Log) -> Result<(), String> {
        self.install_target().map(|_| ()).map_err(|why| {
            let refusal = Refusal::Unreadable(why);
            *self.lock().refused.entry("not_installable").or_default() += 1;
            log.line(format!("firmware: install of {what} refused: {refusal}"));
            format!("firmware: install refused: {refusal}; nothing was written\n")
        })
    }

    /// Checks `bytes` (named `what` in the log) and writes its image into the other slot.
    fn install_bytes(
        &self,
        bytes: &[u8],
        what: &str,
        facts: &InstallFacts,
        log: &Log,
    ) -> Result<String, String> {
        let (dir, running, target) = match self.install_target() {
            Ok(target) => target,
            Err(_) => return Err(self.installable(what, log).err().unwrap_or_default()),
        };
        let trust = self.lock().trust.clone();
        let verified = match firmware_upgrade::verify(
            bytes,
            trust.as_ref().map_err(String::as_str),
            &facts.facts(),
        ) {
            Ok(verified) => verified,
            Err(refusal) => return Err(self.refuse(&format!("install of {what}"), &refusal, log)),
        };
        let name = target.new_file.file_name();
        let need = verified.image.len() as u64 + (1 << 20);
        let esp = Path::new(ESP_MOUNT);
        let free = tandem_southbound::efi::free_bytes(esp).unwrap_or(u64::MAX);
        let reclaimed: u64 = target
            .remove
            .iter()
            .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
            .map(|m| m.len())
            .sum();
        if free < need {
            let refusal = Refusal::Unreadable(format!(
                "the EFI system partition has {free} bytes free, the image needs {need} (the \
                 other slot's {reclaimed} bytes are freed only after the new file is in place)"
            ));
            *self.lock().refused.entry("no_space").or_default() += 1;
            return Err(format!(
                "firmware: install refused: {refusal}; nothing was written\n"
            ));
        }
        let pause = self.lock().install_pause;
        let began = Instant::now();
        let mut paused = Duration::ZERO;
        let written = tandem_southbound::efi::install_on_esp(
            esp,
            &dir,
            INSTALL_TEMP,
            verified.image,
            &name,
            &target.remove,
            &mut |step| {
                if let Some(pause) = pause {
                    log.line(format!(
                        "firmware: install step {} ({name}); pausing {} s ({INSTALL_PAUSE_KEY})",
                        step.word(),
                        pause.as_secs()
                    ));
                    std::thread::sleep(pause);
                    paused += pause;
                }
            },
        );
        let took = began.elapsed().saturating_sub(paused);
        let version = verified.manifest.version;
        let other = target.new_file.slot;
        match written {
            Ok(()) => {
                let mut state = self.lock();
                state.view.files.retain(|f| !target.remove.contains(f));
                state.view.files.push(name.clone());
                state.view.files.sort();
                let summary = format!(
                    "{version} into slot {other} as {name} ({} bytes in {} ms)",
                    verified.image.len(),
                    took.as_millis()
                );
                state.installed = Some(summary.clone());
                drop(state);
                log.line(format!("firmware: installed {summary}"));
                let mut text = format!(
                    "firmware: installed {summary}; slot {} ({running}) is untouched\n",
                    other.other()
                );
                for note in &verified.notes {
                    text.push_str(&format!("firmware: note: {note}\n"));
                }
                text.push_str(&format!(
                    "firmware: `reboot` starts {version} from slot {other}: it gets 3 boots to stay \
                     healthy until blessed, else slot {} boots again\n",
                    other.other()
                ));
                Ok(text)
            }
            Err(error) => {
                log.line(format!(
                    "firmware: install into slot {other} failed: {error}; slot {} ({running}) \
                     is untouched and boots next",
                    other.other()
                ));
                Err(format!(
                    "firmware: install failed writing {name}: {error}; slot {} ({running}) is \
                     untouched and boots next\n",
                    other.other()
                ))
            }
        }
    }

    /// The slot an install would write: the slot directory, the running file, and the new
    /// file with the other slot's files to remove after it is in place.
    fn install_target(&self) -> Result<(PathBuf, String, InstallTarget), String> {
        let state = self.lock();
        let Some(dir) = state.slot_dir.clone() else {
            return Err(match &state.boot.path {
                BootPath::Slot { uefi: true, .. } => format!(
                    "the EFI system partition is not mounted{}",
                    state
                        .view
                        .problem
                        .as_deref()
                        .map_or(String::new(), |p| format!(" ({p})"))
                ),
                _ => format!(
                    "this box did not boot from a Tandem disk image slot ({}): nothing to \
                     install into",
                    state.boot.summary()
                ),
            });
        };
        let (Some(running_file), Some(running)) = (state.view.running_file(), state.view.running())
        else {
            return Err(
                "systemd-boot did not say which slot it started: the running slot is unknown"
                    .to_owned(),
            );
        };
        if running.tries.is_some() {
            return Err(format!(
                "the running slot is on trial ({running_file}): the other slot is the only one \
                 known to boot; wait for this one's bless (`firmware status`)"
            ));
        }
        let target = plan_install(&state.view.files, running);
        Ok((dir, running_file, target))
    }

    /// `firmware fetch URL`: GETs the bundle into RAM on the blocking pool, checks it as an
    /// install would and keeps it at [`FETCHED_BUNDLE`] for `firmware install`.
    pub fn fetch(&self, url: String, facts: InstallFacts, log: &Log, answer: Answer) {
        self.exclusively(
            log,
            answer,
            |busy| busy,
            move |firmware, log| firmware.fetch_blocking(&url, &facts, log),
        );
    }

    fn fetch_blocking(&self, url: &str, facts: &InstallFacts, log: &Log) -> String {
        let parsed = match firmware_upgrade::HttpUrl::parse(url) {
            Ok(parsed) => parsed,
            Err(why) => return format!("firmware: fetch: {why}\n"),
        };
        let began = Instant::now();
        let bytes = match firmware_upgrade::http_get(
            &parsed,
            tandem_board::bundle::MAX_BUNDLE,
            FETCH_TIMEOUT,
        ) {
            Ok(bytes) => bytes,
            Err(why) => {
                log.line(format!("firmware: fetch {url} failed: {why}"));
                return format!("firmware: fetch {url} failed: {why}\n");
            }
        };
        let took = began.elapsed();
        let trust = self.lock().trust.clone();
        let verified = match firmware_upgrade::verify(
            &bytes,
            trust.as_ref().map_err(String::as_str),
            &facts.facts(),
        ) {
            Ok(verified) => verified,
            Err(refusal) => return self.refuse(&format!("bundle from {url}"), &refusal, log),
        };
        let kept = std::fs::create_dir_all("/run/tandem")
            .and_then(|()| std::fs::write(FETCHED_BUNDLE, &bytes));
        if let Err(error) = kept {
            return format!(
                "firmware: fetched {url} but cannot keep it at {FETCHED_BUNDLE}: {error}\n"
            );
        }
        log.line(format!(
            "firmware: fetched {url}: {} bytes in {} ms, {} for board {}, signature good",
            bytes.len(),
            took.as_millis(),
            verified.manifest.version,
            verified.manifest.board
        ));
        let mut text = format!(
            "firmware: fetched {url}: {} bytes in {} ms; signature good: firmware {} for board \
             {}\n",
            bytes.len(),
            took.as_millis(),
            verified.manifest.version,
            verified.manifest.board
        );
        for note in &verified.notes {
            text.push_str(&format!("firmware: note: {note}\n"));
        }
        text.push_str(&format!(
            "firmware: kept in RAM as {FETCHED_BUNDLE}; install it with `firmware install \
             {FETCHED_BUNDLE}`\n"
        ));
        text
    }
}

/// What an install writes and removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallTarget {
    /// `tandem-<highest generation + 1>-<other slot>+3.efi`.
    pub new_file: SlotFile,
    /// The other slot's files now (removed once the new file is in place).
    pub remove: Vec<String>,
}

/// The install plan for slot files `files` (names on the ESP) while `running` runs.
pub fn plan_install(files: &[String], running: SlotFile) -> InstallTarget {
    let other = running.slot.other();
    let generation = files
        .iter()
        .filter_map(|f| SlotFile::parse(f))
        .map(|f| f.generation)
        .max()
        .unwrap_or(running.generation)
        .max(running.generation)
        + 1;
    InstallTarget {
        new_file: SlotFile::on_trial(generation, other),
        remove: files
            .iter()
            .filter(|f| SlotFile::parse(f).is_some_and(|p| p.slot == other))
            .cloned()
            .collect(),
    }
}

/// Mounts efivarfs and the ESP and reads the view (logging what is missing).
fn read_slots(log: &Log) -> (SlotsView, Option<PathBuf>) {
    use tandem_southbound::{block, efi};
    let mut view = SlotsView::default();
    let mut problems = Vec::new();
    match efi::mount_efivarfs(Path::new(efi::EFIVARS)) {
        Ok(()) => {
            let efivars = Path::new(efi::EFIVARS);
            match efi::loader_variable(efivars, "LoaderEntrySelected") {
                Ok(value) => view.selected = value,
                Err(error) => problems.push(format!("cannot read LoaderEntrySelected: {error}")),
            }
            view.count_path = efi::loader_variable(efivars, "LoaderBootCountPath")
                .ok()
                .flatten();
            if view.selected.is_none() {
                problems.push(
                    "systemd-boot left no LoaderEntrySelected (not started by systemd-boot?)"
                        .to_owned(),
                );
            }
        }
        Err(errno) => problems.push(format!("cannot mount efivarfs: {}", errno.desc())),
    }
    let mut slot_dir = None;
    match block::partition_named(Path::new("/sys/class/block"), ESP_PARTITION_NAME) {
        None => problems.push(format!(
            "no {ESP_PARTITION_NAME} partition: the slots cannot be read or blessed"
        )),
        Some(name) => {
            let device = Path::new("/dev").join(&name);
            match efi::mount_esp(&device, Path::new(ESP_MOUNT)) {
                Ok(()) => {
                    let dir = Path::new(ESP_MOUNT).join(SLOT_DIR);
                    match std::fs::read_dir(&dir) {
                        Ok(entries) => {
                            view.files = entries
                                .flatten()
                                .map(|e| e.file_name().to_string_lossy().into_owned())
                                .filter(|n| SlotFile::parse(n).is_some())
                                .collect();
                            view.files.sort();
                            slot_dir = Some(dir);
                        }
                        Err(error) => problems.push(format!("{}: {error}", dir.display())),
                    }
                }
                Err(error) => problems.push(error),
            }
        }
    }
    if !problems.is_empty() {
        let problem = problems.join("; ");
        log.line(format!("firmware: {problem}"));
        view.problem = Some(problem);
    }
    (view, slot_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_comes_from_the_command_line_and_uefi_from_the_firmware() {
        let uefi = FirmwareBoot::detect("console=ttyS0,115200 quiet panic=-1 tandem.slot=a", true);
        assert_eq!(
            uefi.path,
            BootPath::Slot {
                slot: Slot::A,
                uefi: true
            }
        );
        assert_eq!(
            uefi.summary(),
            format!("{} slot a (uefi)", env!("CARGO_PKG_VERSION"))
        );
        let direct = FirmwareBoot::detect("console=ttyS0 tandem.name=box-a", false);
        assert_eq!(direct.path, BootPath::DirectKernel);
        assert!(direct.summary().ends_with("slot -: direct kernel boot"));
        let b = FirmwareBoot::detect("tandem.slot=b", false);
        assert_eq!(
            b.path,
            BootPath::Slot {
                slot: Slot::B,
                uefi: false
            }
        );
        let bad = FirmwareBoot::detect("tandem.slot=c", true);
        assert!(bad.summary().contains("names no slot"));
        assert_eq!(
            FirmwareBoot::detect("quiet", true).path,
            BootPath::UefiWithoutSlot
        );
        assert!(Firmware::not_appliance()
            .status_line()
            .contains("slot -: not the appliance (tandem run)"));
    }

    #[test]
    fn the_running_file_names_the_slot_over_the_command_line() {
        let view = SlotsView {
            selected: Some("tandem-2-b+3.efi".into()),
            count_path: Some("\\EFI\\Linux\\tandem-2-b+2-1.efi".into()),
            files: vec!["tandem-1-a.efi".into(), "tandem-2-b+2-1.efi".into()],
            problem: None,
        };
        let boot = FirmwareBoot::detect("tandem.slot=a", true).with_running_file(&view);
        assert_eq!(
            boot.path,
            BootPath::Slot {
                slot: Slot::B,
                uefi: true
            }
        );
        let direct = FirmwareBoot::detect("quiet", false).with_running_file(&view);
        assert_eq!(direct.path, BootPath::DirectKernel, "no UEFI: no slot");
        let none =
            FirmwareBoot::detect("tandem.slot=a", true).with_running_file(&SlotsView::default());
        assert_eq!(
            none.path,
            BootPath::Slot {
                slot: Slot::A,
                uefi: true
            }
        );
    }

    #[test]
    fn an_install_writes_the_other_slot_one_generation_up() {
        let files: Vec<String> = ["tandem-1-a.efi", "tandem-2-b+0-3.efi"]
            .map(String::from)
            .to_vec();
        let plan = plan_install(&files, SlotFile::blessed(1, Slot::A));
        assert_eq!(plan.new_file.file_name(), "tandem-3-b+3.efi");
        assert_eq!(plan.remove, vec!["tandem-2-b+0-3.efi".to_owned()]);
        let files: Vec<String> = ["tandem-1-a.efi", "tandem-2-b.efi"]
            .map(String::from)
            .to_vec();
        let plan = plan_install(&files, SlotFile::blessed(2, Slot::B));
        assert_eq!(plan.new_file.file_name(), "tandem-3-a+3.efi");
        assert_eq!(plan.remove, vec!["tandem-1-a.efi".to_owned()]);
        let mut after: Vec<SlotFile> = vec![SlotFile::blessed(2, Slot::B), plan.new_file];
        assert_eq!(
            boot_order(&after)[0],
            plan.new_file,
            "the new slot boots first"
        );
        after[1].tries = Some(tandem_board::boot_disk::Tries { left: 0, done: 3 });
        assert_eq!(
            boot_order(&after)[0],
            SlotFile::blessed(2, Slot::B),
            "then falls back"
        );
    }

    #[test]
    fn an_install_is_refused_on_a_box_without_slots_or_on_trial() {
        let firmware = Firmware::not_appliance();
        let why = firmware.install_target().unwrap_err();
        assert!(
            why.contains("did not boot from a Tandem disk image slot"),
            "{why}"
        );
        let blessed_now = Firmware::with(
            FirmwareBoot::detect("tandem.slot=a", true),
            SlotsView::default(),
            BlessAfter::Never,
            None,
        );
        {
            let mut state = blessed_now.lock();
            state.blessing = true;
            state.blessed = Some("tandem-2-b.efi".into());
        }
        assert!(
            blessed_now.begin().is_ok(),
            "a bless that is done is not in the way"
        );
        assert!(blessed_now.begin().is_err(), "one install at a time");
        blessed_now.end();
        blessed_now.lock().blessed = None;
        assert!(
            blessed_now.begin().is_err(),
            "a bless still renaming is in the way"
        );
        let on_trial = Firmware::with(
            FirmwareBoot::detect("tandem.slot=a", true),
            SlotsView {
                selected: Some("tandem-2-b+3.efi".into()),
                count_path: Some("\\EFI\\Linux\\tandem-2-b+2-1.efi".into()),
                files: vec!["tandem-1-a.efi".into(), "tandem-2-b+2-1.efi".into()],
                problem: None,
            },
            BlessAfter::Never,
            Some(PathBuf::from("/nonexistent")),
        );
        let why = on_trial.install_target().unwrap_err();
        assert!(why.contains("on trial (tandem-2-b+2-1.efi)"), "{why}");
    }

    #[test]
    fn refusals_are_counted_by_reason_in_status_and_metrics() {
        let firmware = Firmware::not_appliance();
        let log = Log::default();
        let refusal = Refusal::Container(tandem_board::bundle::BundleError::BadMagic);
        let text = firmware.refuse("install of /x", &refusal, &log);
        assert!(text.contains("refused (not_a_bundle)"), "{text}");
        assert!(text.ends_with("nothing was written\n"), "{text}");
        firmware.refuse("install of /x", &refusal, &log);
        let status = firmware.status_text(Instant::now());
        assert!(
            status.contains("firmware: refused: not_a_bundle 2\n"),
            "{status}"
        );
        let mut out = Vec::new();
        firmware
            .metrics()
            .render(crate::metrics::Format::Prometheus, &mut out);
        let out = String::from_utf8(out).unwrap();
        assert!(
            out.contains("tandem_firmware_bundles_refused_total{reason=\"not_a_bundle\"} 2"),
            "{out}"
        );
    }

    #[test]
    fn bless_after_comes_from_the_command_line() {
        assert_eq!(
            BlessAfter::from_cmdline("quiet").0,
            BlessAfter::Held(DEFAULT_BLESS_AFTER)
        );
        assert_eq!(
            BlessAfter::from_cmdline("tandem.bless_after=5").0,
            BlessAfter::Held(Duration::from_secs(5))
        );
        assert_eq!(
            BlessAfter::from_cmdline("tandem.bless_after=never").0,
            BlessAfter::Never
        );
        let (after, note) = BlessAfter::from_cmdline("tandem.bless_after=soon");
        assert_eq!(after, BlessAfter::Held(DEFAULT_BLESS_AFTER));
        assert!(note.unwrap().contains("tandem.bless_after=soon"));
    }

    #[test]
    fn health_must_hold_without_a_break_for_the_whole_time() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let healthy = BlessHealth::default();
        let unapplied = BlessHealth {
            config_unapplied: true,
            ..BlessHealth::default()
        };
        let mut clock = BlessClock::new(BlessAfter::Held(Duration::from_secs(10)));
        assert!(!clock.tick(at(0), &healthy));
        assert!(!clock.tick(at(9), &healthy));
        assert!(!clock.tick(at(10), &unapplied), "a break resets the clock");
        assert_eq!(clock.held(at(10)), None);
        assert!(!clock.tick(at(11), &healthy));
        assert!(!clock.tick(at(20), &healthy));
        assert!(clock.tick(at(21), &healthy));
        let mut never = BlessClock::new(BlessAfter::Never);
        assert!(!never.tick(at(0), &healthy));
        assert!(!never.tick(at(100_000), &healthy));
        assert_eq!(never.held(at(5)), Some(Duration::from_secs(5)));
    }

    #[test]
    fn each_condition_holds_the_bless_back_and_is_named() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let cases = [
            (
                BlessHealth {
                    config_unapplied: true,
                    ..BlessHealth::default()
                },
                "the stored config is not applied",
            ),
            (
                BlessHealth {
                    links_without_carrier: vec!["eth0".into(), "bond0".into()],
                    ..BlessHealth::default()
                },
                "no carrier on eth0, bond0",
            ),
            (
                BlessHealth {
                    engines_not_running: vec!["lvs".into()],
                    ..BlessHealth::default()
                },
                "engine lvs not running",
            ),
            (
                BlessHealth {
                    partner_unreachable: true,
                    ..BlessHealth::default()
                },
                "partner is not reachable",
            ),
        ];
        for (health, named) in &cases {
            let mut clock = BlessClock::new(BlessAfter::Held(Duration::from_secs(2)));
            assert!(!clock.tick(at(0), &BlessHealth::default()));
            // Unhealthy from second 1 to 10: no bless however long it lasts, and it is named.
            for second in 1..=10 {
                assert!(!clock.tick(at(second), health), "{named} at {second} s");
            }
            assert_eq!(clock.held(at(10)), None, "{named}");
            let why = clock.waiting_for().unwrap();
            assert!(why.contains(named), "{why}");
            // Health back: the whole time again, from then.
            assert!(!clock.tick(at(11), &BlessHealth::default()));
            assert_eq!(clock.waiting_for(), None);
            assert!(!clock.tick(at(12), &BlessHealth::default()));
            assert!(clock.tick(at(13), &BlessHealth::default()), "{named}");
        }
        let all = BlessHealth {
            config_unapplied: true,
            links_without_carrier: vec!["eth1".into()],
            engines_not_running: vec!["vrrp".into()],
            partner_unreachable: true,
        };
        let why = all.holding_back().unwrap();
        for (_, named) in &cases {
            assert!(why.contains(named) || why.contains("eth1"), "{why}");
        }
        assert!(
            why.contains("no carrier on eth1") && why.contains("engine vrrp"),
            "{why}"
        );
        assert_eq!(BlessHealth::default().holding_back(), None);
    }

    #[test]
    fn firmware_status_says_what_holds_the_bless_back() {
        let view = SlotsView {
            selected: Some("tandem-2-b+3.efi".into()),
            count_path: Some("\\EFI\\Linux\\tandem-2-b+2-1.efi".into()),
            files: vec!["tandem-1-a.efi".into(), "tandem-2-b+2-1.efi".into()],
            problem: None,
        };
        let firmware = Firmware::with(
            FirmwareBoot::detect("tandem.slot=b", true),
            view,
            BlessAfter::Held(Duration::from_secs(60)),
            None,
        );
        let now = Instant::now();
        firmware.lock().clock.tick(
            now,
            &BlessHealth {
                links_without_carrier: vec!["eth0".into()],
                ..BlessHealth::default()
            },
        );
        let text = firmware.status_text(now);
        assert!(
            text.contains(
                "firmware: on trial, blessed after 60 s of health (healthy for 0 s); waiting for \
                 health: no carrier on eth0"
            ),
            "{text}"
        );
        firmware.lock().clock.tick(now, &BlessHealth::default());
        let text = firmware.status_text(now + Duration::from_secs(5));
        assert!(
            text.contains("firmware: on trial, blessed after 60 s of health (healthy for 5 s)\n"),
            "{text}"
        );
    }

    #[test]
    fn the_test_hang_names_one_try_of_a_slot_on_trial() {
        let on_try = |file: &str, hang: Option<u32>| {
            let firmware = Firmware::with(
                FirmwareBoot::detect("tandem.slot=b", true),
                SlotsView {
                    selected: Some(file.into()),
                    count_path: None,
                    files: vec!["tandem-1-a.efi".into(), file.into()],
                    problem: None,
                },
                BlessAfter::Never,
                None,
            );
            firmware.lock().test_hang = hang;
            firmware.test_hang()
        };
        assert!(on_try("tandem-2-b+1-2.efi", Some(2))
            .unwrap()
            .contains("tandem.test_hang=2: try 2 of tandem-2-b+1-2.efi hangs now"));
        assert_eq!(on_try("tandem-2-b+2-1.efi", Some(2)), None, "another try");
        assert_eq!(on_try("tandem-2-b.efi", Some(2)), None, "a blessed slot");
        assert_eq!(on_try("tandem-2-b+1-2.efi", None), None, "no knob");
    }

    #[test]
    fn the_running_slot_is_the_boot_counted_name_when_there_is_one() {
        let view = SlotsView {
            selected: Some("tandem-2-b+3.efi".into()),
            count_path: Some("\\EFI\\Linux\\tandem-2-b+2-1.efi".into()),
            files: vec!["tandem-1-a.efi".into(), "tandem-2-b+2-1.efi".into()],
            problem: None,
        };
        assert_eq!(view.running_file().as_deref(), Some("tandem-2-b+2-1.efi"));
        let running = view.running().unwrap();
        assert_eq!(running.slot, Slot::B);
        assert_eq!(running.bless().file_name(), "tandem-2-b.efi");
        assert_eq!(view.boot_order()[0], running);
        let blessed = SlotsView {
            selected: Some("tandem-1-a.efi".into()),
            count_path: None,
            files: vec!["tandem-1-a.efi".into(), "tandem-2-b+0-3.efi".into()],
            problem: None,
        };
        assert_eq!(blessed.running().unwrap().tries, None);
        assert_eq!(blessed.boot_order()[0].file_name(), "tandem-1-a.efi");
        let firmware = Firmware::with(
            FirmwareBoot::detect("tandem.slot=a", true),
            blessed,
            BlessAfter::Held(DEFAULT_BLESS_AFTER),
            None,
        );
        assert!(firmware
            .status_line()
            .contains("slot a (uefi) (tandem-2-b+0-3.efi used up its tries: fell back)"));
        let text = firmware.status_text(Instant::now());
        assert!(
            text.contains("firmware: slot b: tandem-2-b+0-3.efi\n"),
            "{text}"
        );
        assert!(
            text.contains("firmware: next boot tandem-1-a.efi\n"),
            "{text}"
        );
        assert!(text.ends_with("firmware: end\n"));
    }
}
