//! Board profiles: what a Tandem box is made of, as typed data.
//!
//! A board profile names the NICs Tandem expects and the role each one plays (found by PCI path or
//! MAC, never by the kernel's enumeration order), the serial console, the kernel modules the image
//! must carry, and the hardware watchdog. The image builder uses a profile to pick modules; the
//! appliance uses it at boot to name its NICs after their roles and to say clearly when the
//! hardware does not look like the board it was built for.

pub mod boot_disk;
pub mod bundle;
pub mod hardware;
pub mod modules;
pub mod profiles;

pub use hardware::{
    assign_port, assign_roles, assign_roles_with_map, find_port, port_id, port_map_of, FoundNic,
    RoleAssignment,
};
pub use profiles::{by_name, PROFILES};

use serde::{Deserialize, Serialize};

/// The job a network port does on a Tandem box. The appliance renames each port to its role's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NicRole {
    /// Out-of-band management network.
    Mgmt,
    /// The network clients reach the virtual services on.
    Public,
    /// The network the real servers live on.
    Private,
    /// The dedicated cable to the partner box (pairing, replication, heartbeat, IPVS sync).
    Peer,
    /// The second public port, for a bonded public side (two cables to the service LAN's
    /// switch, or to two stacked switches). Optional: most boxes have none.
    Public2,
}

impl NicRole {
    /// Every role, in the order the status table lists them.
    pub const ALL: [NicRole; 5] = [
        NicRole::Mgmt,
        NicRole::Public,
        NicRole::Public2,
        NicRole::Private,
        NicRole::Peer,
    ];

    /// The order in which the operator assigns ports (`ports`, the console UI's steps). The
    /// optional second public port comes last, so a box without one skips a final step and
    /// the usual steps stay as they were.
    pub const ASSIGN_ORDER: [NicRole; 5] = [
        NicRole::Public,
        NicRole::Private,
        NicRole::Peer,
        NicRole::Mgmt,
        NicRole::Public2,
    ];

    /// The interface name the appliance gives a port with this role.
    pub const fn interface_name(self) -> &'static str {
        match self {
            NicRole::Mgmt => "mgmt",
            NicRole::Public => "public",
            NicRole::Private => "private",
            NicRole::Peer => "peer",
            NicRole::Public2 => "public2",
        }
    }

    /// The role whose interface name is `name`, if any.
    pub fn from_interface_name(name: &str) -> Option<NicRole> {
        NicRole::ALL
            .into_iter()
            .find(|role| role.interface_name() == name)
    }
}

impl core::fmt::Display for NicRole {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.interface_name())
    }
}

/// How a port is recognised on the hardware.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NicMatch {
    /// The PCI device path in sysfs, e.g. `0000:00:03.0` (stable across boots and kernels).
    PciPath(&'static str),
    /// The factory MAC address (for boards whose PCI topology varies between revisions).
    Mac([u8; 6]),
}

/// One port the board has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NicSpec {
    pub role: NicRole,
    pub matcher: NicMatch,
    /// The kernel driver expected to bind the port (for the boot message only).
    pub driver: &'static str,
    /// A box is still useful without an optional port (the lab's real servers have no peer cable).
    pub required: bool,
}

/// The serial console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleSpec {
    /// Device name under `/dev`, e.g. `ttyS0`.
    pub tty: &'static str,
    pub baud: u32,
}

/// The hardware watchdog that reboots a hung box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchdogSpec {
    /// Kernel module of the watchdog driver.
    pub module: &'static str,
    /// Device node the daemon opens and pets.
    pub device: &'static str,
    /// Seconds without a pet before the hardware resets the box.
    pub timeout_secs: u32,
}

/// Everything Tandem needs to know about one kind of box.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BoardProfile {
    /// Short name used on the command line and in the image path (`target/image/<name>/`).
    pub name: &'static str,
    pub description: &'static str,
    pub nics: &'static [NicSpec],
    /// Roles without a port of their own that the operator may give one of the board's ports
    /// (`ports assign ROLE PORT`; the port's profile role then has none): the 4-port box's
    /// bonded public side takes its mgmt port as `public2`.
    pub extra_roles: &'static [NicRole],
    pub console: ConsoleSpec,
    /// Modules loaded at boot, before `ready` (drivers for the NICs, disk and watchdog).
    pub boot_modules: &'static [&'static str],
    /// Modules the image carries for the role engines, loaded when a feature first needs them.
    pub feature_modules: &'static [&'static str],
    pub watchdog: Option<WatchdogSpec>,
    /// Block device holding the two config slots (a small raw disk, no filesystem).
    pub config_device: Option<&'static str>,
}

impl BoardProfile {
    /// Every module the image must carry (before dependency closure).
    pub fn all_modules(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.boot_modules
            .iter()
            .chain(self.feature_modules.iter())
            .copied()
            .chain(self.watchdog.iter().map(|w| w.module))
    }

    /// The port spec for a role, if the board has one.
    pub fn nic(&self, role: NicRole) -> Option<&NicSpec> {
        self.nics.iter().find(|nic| nic.role == role)
    }

    /// Whether a port of this board can play `role`: the profile has a port for it, or the
    /// operator may give it one ([`BoardProfile::extra_roles`]).
    pub fn has_role(&self, role: NicRole) -> bool {
        self.nic(role).is_some() || self.extra_roles.contains(&role)
    }
}
