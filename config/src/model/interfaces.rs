//! Interfaces with their addresses, and bonds (every kernel bonding mode and monitor).

use core::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::{limits, IfName, PortRole};
use crate::bounded::BoundedVec;
use crate::net::IpCidr;

/// One network interface: a board port, a bond or a VLAN.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Interface {
    pub name: IfName,
    /// The board port role this interface is, when it is a board port.
    pub role: Option<PortRole>,
    pub addresses: BoundedVec<IpCidr, { limits::ADDRESSES_PER_INTERFACE }>,
    /// MTU; None keeps the kernel's default.
    pub mtu: Option<u16>,
}

/// The kernel bonding modes (`mode=` of the bonding driver).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BondMode {
    BalanceRr,
    #[default]
    ActiveBackup,
    BalanceXor,
    Broadcast,
    #[serde(rename = "802.3ad")]
    Ieee8023ad,
    BalanceTlb,
    BalanceAlb,
}

impl BondMode {
    /// The kernel's name for the mode (sysfs `bonding/mode`).
    pub fn kernel_name(self) -> &'static str {
        match self {
            BondMode::BalanceRr => "balance-rr",
            BondMode::ActiveBackup => "active-backup",
            BondMode::BalanceXor => "balance-xor",
            BondMode::Broadcast => "broadcast",
            BondMode::Ieee8023ad => "802.3ad",
            BondMode::BalanceTlb => "balance-tlb",
            BondMode::BalanceAlb => "balance-alb",
        }
    }

    /// Whether the mode has a primary slave (active-backup, balance-tlb, balance-alb).
    pub fn has_primary(self) -> bool {
        matches!(
            self,
            BondMode::ActiveBackup | BondMode::BalanceTlb | BondMode::BalanceAlb
        )
    }
}

/// ARP monitor validation (`arp_validate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArpValidate {
    #[default]
    None,
    Active,
    Backup,
    All,
    Filter,
    FilterActive,
    FilterBackup,
}

/// How the bond detects a dead slave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkMonitor {
    /// MII link state polled every `interval_ms` (`miimon`).
    Mii { interval_ms: u32 },
    /// ARP probes to `targets` every `interval_ms` (`arp_interval`, `arp_ip_target`).
    Arp {
        interval_ms: u32,
        targets: BoundedVec<Ipv4Addr, { limits::ARP_TARGETS }>,
        validate: ArpValidate,
    },
}

impl Default for LinkMonitor {
    fn default() -> Self {
        LinkMonitor::Mii { interval_ms: 100 }
    }
}

/// LACPDU rate (`lacp_rate`) of an 802.3ad bond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LacpRate {
    #[default]
    Slow,
    Fast,
}

/// Slave selection hash (`xmit_hash_policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum XmitHashPolicy {
    #[default]
    Layer2,
    #[serde(rename = "layer3+4")]
    Layer34,
    #[serde(rename = "layer2+3")]
    Layer23,
    #[serde(rename = "encap2+3")]
    Encap23,
    #[serde(rename = "encap3+4")]
    Encap34,
    VlanSrcmac,
}

/// When the primary port becomes the active one again after it recovers
/// (`primary_reselect`; active-backup, balance-tlb and balance-alb).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrimaryReselect {
    /// As soon as it is up again (the kernel's default).
    #[default]
    Always,
    /// Only if it is better (speed, duplex) than the active port.
    Better,
    /// Only when the active port fails.
    Failure,
}

impl PrimaryReselect {
    pub fn kernel_name(self) -> &'static str {
        match self {
            PrimaryReselect::Always => "always",
            PrimaryReselect::Better => "better",
            PrimaryReselect::Failure => "failure",
        }
    }
}

/// Which MAC address the bond and its ports use on a failover (`fail_over_mac`;
/// active-backup only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailOverMac {
    /// Every port takes the bond's MAC (the kernel's default).
    #[default]
    None,
    /// The bond takes the active port's MAC.
    Active,
    /// The new active port takes the bond's MAC, the old one the new one's.
    Follow,
}

impl FailOverMac {
    pub fn kernel_name(self) -> &'static str {
        match self {
            FailOverMac::None => "none",
            FailOverMac::Active => "active",
            FailOverMac::Follow => "follow",
        }
    }
}

/// How an 802.3ad bond picks its active aggregator (`ad_select`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdSelect {
    /// The one with the most bandwidth, kept until all its ports are down (kernel default).
    #[default]
    Stable,
    /// The one with the most bandwidth, re-chosen on every change.
    Bandwidth,
    /// The one with the most ports, re-chosen on every change.
    Count,
}

impl AdSelect {
    pub fn kernel_name(self) -> &'static str {
        match self {
            AdSelect::Stable => "stable",
            AdSelect::Bandwidth => "bandwidth",
            AdSelect::Count => "count",
        }
    }
}

/// A bond of board ports.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Bond {
    pub name: IfName,
    pub mode: BondMode,
    pub slaves: BoundedVec<IfName, { limits::BOND_SLAVES }>,
    pub monitor: LinkMonitor,
    /// Wait before enabling a slave whose link came up (`updelay`), milliseconds.
    pub up_delay_ms: u32,
    /// Wait before disabling a slave whose link went down (`downdelay`), milliseconds.
    pub down_delay_ms: u32,
    pub lacp_rate: LacpRate,
    pub xmit_hash_policy: XmitHashPolicy,
    /// Preferred slave in active-backup, balance-tlb and balance-alb modes.
    pub primary: Option<IfName>,
    /// Minimum number of active slaves before the bond reports carrier (`min_links`).
    pub min_links: u16,
    // Blob format 4 appended the fields below (`blob::layout`).
    /// When a recovered primary becomes active again.
    pub primary_reselect: PrimaryReselect,
    /// MAC address handling on failover (active-backup).
    pub fail_over_mac: FailOverMac,
    /// Aggregator selection (802.3ad).
    pub ad_select: AdSelect,
    /// MTU of the bond, which the kernel gives its ports too; None keeps the kernel's default.
    pub mtu: Option<u16>,
}

impl Bond {
    /// The primary port the bond runs with: the configured one, else, in a mode that has a
    /// primary, the first port listed (so a recovered first port becomes active again instead
    /// of whichever came up first staying active).
    pub fn effective_primary(&self) -> Option<&IfName> {
        if !self.mode.has_primary() {
            return None;
        }
        self.primary.as_ref().or_else(|| self.slaves.first())
    }
}
