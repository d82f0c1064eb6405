//! Linux bonding over route netlink: creating bonds, changing their options, enslaving and
//! releasing ports, deleting links, and reading every bond with its ports back.
//!
//! Why this exists: a bond is a link of kind `bond` (drivers/net/bonding) configured through
//! `IFLA_LINKINFO` in `RTM_NEWLINK`; the appliance has no `ip`, writes no sysfs, and cannot
//! afford netlink-packet-route's decoders ([`crate::nlmsg`] says why). So the requests are built
//! here by pure functions returning [`Request`]s (tested byte for byte against the layouts of
//! `<linux/if_link.h>` and `<linux/if_bonding.h>`), the readers borrow received bytes, never
//! panic and read what they can, and [`BondExecutor`] sends them over its own [`crate::rtnl`]
//! socket, blocking inside `async fn`s the way [`crate::net::NetExecutor`] does.
//!
//! What the kernel refuses (bond_options.c, bond_netlink.c, bond_main.c), so the engine can
//! order its changes; tests/bond_kernel.rs checks each on the appliance's kernel (6.1) in a lab
//! box, of the per-mode refusals only `lacp_rate`'s, and not the 16-target limit:
//! - `mode`: only on a bond without ports (`ENOTEMPTY`, checked first) that is down (`EBUSY`). A
//!   mode change resets `arp_validate` to none; into a mode without ARP monitoring (802.3ad,
//!   balance-tlb, balance-alb) it turns `arp_interval` off and `miimon` on (100 ms) if it was 0.
//! - `fail_over_mac`: only without ports (`ENOTEMPTY`).
//! - `lacp_rate`, `ad_select`, `ad_user_port_key`, `tlb_dynamic_lb`: only while the bond is down
//!   (`EBUSY`).
//! - Options of other modes are `EACCES`: `lacp_rate`, `ad_actor_sys_prio`, `ad_user_port_key`
//!   are 802.3ad's; `primary` and `active_slave` active-backup's, balance-tlb's and
//!   balance-alb's; `arp_interval` and `arp_validate` are refused in 802.3ad, balance-tlb and
//!   balance-alb; `tlb_dynamic_lb` is balance-tlb's and balance-alb's.
//! - `updelay` / `downdelay` need `miimon` on (`EPERM`) and are rounded down to a multiple of
//!   it; the kernel reports them in ms.
//! - A non-zero `miimon` in one request with a non-zero `arp_interval` or `arp_validate` is
//!   `EINVAL`; turning one monitor on turns the other off.
//! - `arp_ip_target` replaces the whole list; 0.0.0.0, 255.255.255.255 and repeats are `EINVAL`,
//!   16 at most.
//! - `active_slave` must name a port of this bond that is up with link (`EINVAL`); `primary`
//!   naming no link clears it.
//! - A port must be down to be enslaved (`EPERM` "Device can not be enslaved while up"):
//!   [`BondExecutor::enslave`] takes it down; the kernel opens it again itself. Releasing a
//!   port closes it: it stays down until something sets it up.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::nlmsg::{
    self, Request, IFF_LOWER_UP, IFF_UP, IFLA_IFNAME, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP,
    NLM_F_EXCL, NLM_F_REQUEST, RTM_DELLINK, RTM_GETLINK, RTM_NEWLINK,
};
use crate::rtnl::{Rtnl, RtnlError};

/// The link kind of a bond (`IFLA_INFO_KIND`), and of a bond's port (`IFLA_INFO_SLAVE_KIND`).
pub const KIND: &str = "bond";
/// The link kind of a dummy interface (the kernel tests' ports).
pub const DUMMY_KIND: &str = "dummy";

// Link attributes (`<linux/if_link.h>`).
pub const IFLA_MTU: u16 = 4;
pub const IFLA_MASTER: u16 = 10;
pub const IFLA_LINKINFO: u16 = 18;
pub const IFLA_EVENT: u16 = 44;
pub const IFLA_INFO_KIND: u16 = 1;
pub const IFLA_INFO_DATA: u16 = 2;
pub const IFLA_INFO_SLAVE_KIND: u16 = 4;
pub const IFLA_INFO_SLAVE_DATA: u16 = 5;
/// `IFLA_EVENT` of a notification sent because the bond's active port changed.
pub const IFLA_EVENT_BONDING_FAILOVER: u32 = 3;

// Bond attributes inside `IFLA_INFO_DATA` (the `IFLA_BOND_*` enum).
pub const IFLA_BOND_MODE: u16 = 1;
pub const IFLA_BOND_ACTIVE_SLAVE: u16 = 2;
pub const IFLA_BOND_MIIMON: u16 = 3;
pub const IFLA_BOND_UPDELAY: u16 = 4;
pub const IFLA_BOND_DOWNDELAY: u16 = 5;
pub const IFLA_BOND_USE_CARRIER: u16 = 6;
pub const IFLA_BOND_ARP_INTERVAL: u16 = 7;
pub const IFLA_BOND_ARP_IP_TARGET: u16 = 8;
pub const IFLA_BOND_ARP_VALIDATE: u16 = 9;
pub const IFLA_BOND_ARP_ALL_TARGETS: u16 = 10;
pub const IFLA_BOND_PRIMARY: u16 = 11;
pub const IFLA_BOND_PRIMARY_RESELECT: u16 = 12;
pub const IFLA_BOND_FAIL_OVER_MAC: u16 = 13;
pub const IFLA_BOND_XMIT_HASH_POLICY: u16 = 14;
pub const IFLA_BOND_RESEND_IGMP: u16 = 15;
pub const IFLA_BOND_NUM_PEER_NOTIF: u16 = 16;
pub const IFLA_BOND_ALL_SLAVES_ACTIVE: u16 = 17;
pub const IFLA_BOND_MIN_LINKS: u16 = 18;
pub const IFLA_BOND_AD_LACP_RATE: u16 = 21;
pub const IFLA_BOND_AD_SELECT: u16 = 22;
pub const IFLA_BOND_AD_INFO: u16 = 23;
pub const IFLA_BOND_AD_ACTOR_SYS_PRIO: u16 = 24;
pub const IFLA_BOND_AD_USER_PORT_KEY: u16 = 25;
pub const IFLA_BOND_TLB_DYNAMIC_LB: u16 = 27;
// Inside `IFLA_BOND_AD_INFO`.
pub const IFLA_BOND_AD_INFO_AGGREGATOR: u16 = 1;
pub const IFLA_BOND_AD_INFO_NUM_PORTS: u16 = 2;
pub const IFLA_BOND_AD_INFO_ACTOR_KEY: u16 = 3;
pub const IFLA_BOND_AD_INFO_PARTNER_KEY: u16 = 4;
pub const IFLA_BOND_AD_INFO_PARTNER_MAC: u16 = 5;
// Port attributes inside `IFLA_INFO_SLAVE_DATA`.
pub const IFLA_BOND_SLAVE_STATE: u16 = 1;
pub const IFLA_BOND_SLAVE_MII_STATUS: u16 = 2;
pub const IFLA_BOND_SLAVE_LINK_FAILURE_COUNT: u16 = 3;
pub const IFLA_BOND_SLAVE_PERM_HWADDR: u16 = 4;
pub const IFLA_BOND_SLAVE_QUEUE_ID: u16 = 5;
pub const IFLA_BOND_SLAVE_AD_AGGREGATOR_ID: u16 = 6;
pub const IFLA_BOND_SLAVE_AD_ACTOR_OPER_PORT_STATE: u16 = 7;
pub const IFLA_BOND_SLAVE_AD_PARTNER_OPER_PORT_STATE: u16 = 8;

/// 802.3ad port state bits (`LACP_STATE_*`), as in a port's actor and partner oper state.
pub mod lacp_state {
    pub const ACTIVITY: u8 = 0x1;
    pub const TIMEOUT: u8 = 0x2;
    pub const AGGREGATION: u8 = 0x4;
    pub const SYNCHRONIZATION: u8 = 0x8;
    pub const COLLECTING: u8 = 0x10;
    pub const DISTRIBUTING: u8 = 0x20;
    pub const DEFAULTED: u8 = 0x40;
    pub const EXPIRED: u8 = 0x80;
}

/// An enum of kernel numbers with the words sysfs and `ip -d link` print for them.
macro_rules! kernel_values {
    ($(#[$meta:meta])* $name:ident: $repr:ty {
        $($(#[$variant_meta:meta])* $variant:ident = $value:literal, $word:literal;)+
    }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$variant_meta])* $variant,)+
        }

        impl $name {
            /// Every value, in the kernel's order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The kernel's number for it.
            pub fn kernel_value(self) -> $repr {
                match self {
                    $($name::$variant => $value,)+
                }
            }

            /// The value the kernel numbers `value` (`None`: not one this code knows).
            pub fn from_kernel_value(value: $repr) -> Option<$name> {
                match value {
                    $($value => Some($name::$variant),)+
                    _ => None,
                }
            }

            /// The word sysfs uses for it.
            pub fn kernel_name(self) -> &'static str {
                match self {
                    $($name::$variant => $word,)+
                }
            }

            /// The value sysfs calls `word`.
            pub fn from_kernel_name(word: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|value| value.kernel_name() == word)
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.kernel_name())
            }
        }
    };
}

kernel_values! {
    /// How a bond spreads traffic over its ports (`BOND_MODE_*`).
    BondMode: u8 {
        BalanceRr = 0, "balance-rr";
        ActiveBackup = 1, "active-backup";
        BalanceXor = 2, "balance-xor";
        Broadcast = 3, "broadcast";
        /// LACP.
        Ieee8023ad = 4, "802.3ad";
        BalanceTlb = 5, "balance-tlb";
        BalanceAlb = 6, "balance-alb";
    }
}

kernel_values! {
    /// Which header fields pick the port in balance-xor, 802.3ad and balance-tlb
    /// (`BOND_XMIT_POLICY_*`).
    XmitHashPolicy: u8 {
        Layer2 = 0, "layer2";
        Layer34 = 1, "layer3+4";
        Layer23 = 2, "layer2+3";
        Encap23 = 3, "encap2+3";
        Encap34 = 4, "encap3+4";
        VlanSrcMac = 5, "vlan+srcmac";
    }
}

kernel_values! {
    /// Which ARP monitor answers count, on which ports (`BOND_ARP_VALIDATE_*`, `BOND_ARP_FILTER*`).
    ArpValidate: u32 {
        None = 0, "none";
        Active = 1, "active";
        Backup = 2, "backup";
        All = 3, "all";
        Filter = 4, "filter";
        FilterActive = 5, "filter_active";
        FilterBackup = 6, "filter_backup";
    }
}

kernel_values! {
    /// Whether one or every ARP target must answer for a port to count as up.
    ArpAllTargets: u32 {
        Any = 0, "any";
        All = 1, "all";
    }
}

kernel_values! {
    /// When the primary port takes over again after it comes back (`BOND_PRI_RESELECT_*`).
    PrimaryReselect: u8 {
        Always = 0, "always";
        Better = 1, "better";
        Failure = 2, "failure";
    }
}

kernel_values! {
    /// Which MAC address an active-backup bond's ports carry (`BOND_FOM_*`).
    FailOverMac: u8 {
        None = 0, "none";
        Active = 1, "active";
        Follow = 2, "follow";
    }
}

kernel_values! {
    /// How often the 802.3ad partner is asked to send LACPDUs (every 30 s or every 1 s).
    LacpRate: u8 {
        Slow = 0, "slow";
        Fast = 1, "fast";
    }
}

kernel_values! {
    /// How 802.3ad picks the active aggregator (`BOND_AD_*`).
    AdSelect: u8 {
        Stable = 0, "stable";
        Bandwidth = 1, "bandwidth";
        Count = 2, "count";
    }
}

kernel_values! {
    /// Whether a port carries traffic (`BOND_STATE_*`).
    PortState: u8 {
        Active = 0, "active";
        Backup = 1, "backup";
    }
}

kernel_values! {
    /// A port's link as the bond's monitor sees it (`BOND_LINK_*`).
    MiiStatus: u8 {
        Up = 0, "up";
        /// Down, waiting out `downdelay`.
        GoingDown = 1, "going down";
        Down = 2, "down";
        /// Up, waiting out `updelay`.
        GoingBack = 3, "going back";
    }
}

/// A bond's options as kernel values; `None` is not sent (the kernel keeps what it has), and a
/// bond read back has every option its kernel reports.
///
/// Times are milliseconds; `primary` and `active_slave` are port interface indexes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BondOptions {
    pub mode: Option<BondMode>,
    /// Read back: the port carrying traffic (the kernel omits it when there is none). Sent: make
    /// this port (up, with link) the active one; 0 lets the bond choose.
    pub active_slave: Option<u32>,
    /// MII link monitor interval (0: off).
    pub miimon: Option<u32>,
    pub updelay: Option<u32>,
    pub downdelay: Option<u32>,
    pub use_carrier: Option<bool>,
    /// ARP link monitor interval (0: off).
    pub arp_interval: Option<u32>,
    /// The whole list; an empty list clears it. Read back: omitted by the kernel when empty.
    pub arp_ip_target: Option<Vec<Ipv4Addr>>,
    pub arp_validate: Option<ArpValidate>,
    pub arp_all_targets: Option<ArpAllTargets>,
    /// Sent: an index that is no link clears it. Read back: only while that port is enslaved.
    pub primary: Option<u32>,
    pub primary_reselect: Option<PrimaryReselect>,
    pub fail_over_mac: Option<FailOverMac>,
    pub xmit_hash_policy: Option<XmitHashPolicy>,
    pub resend_igmp: Option<u32>,
    pub num_peer_notif: Option<u8>,
    pub all_slaves_active: Option<bool>,
    pub min_links: Option<u32>,
    pub lacp_rate: Option<LacpRate>,
    pub ad_select: Option<AdSelect>,
    pub ad_actor_sys_prio: Option<u16>,
    pub ad_user_port_key: Option<u16>,
    pub tlb_dynamic_lb: Option<bool>,
}

impl BondOptions {
    /// The options set in `self` that `current` (a bond read back) does not already have: what
    /// a change must send. Empty when the bond has them all.
    pub fn changes_from(&self, current: &BondOptions) -> BondOptions {
        fn keep<T: Clone + PartialEq>(wanted: &Option<T>, current: &Option<T>) -> Option<T> {
            wanted
                .clone()
                .filter(|wanted| current.as_ref() != Some(wanted))
        }
        BondOptions {
            mode: keep(&self.mode, &current.mode),
            active_slave: keep(&self.active_slave, &current.active_slave),
            miimon: keep(&self.miimon, &current.miimon),
            updelay: keep(&self.updelay, &current.updelay),
            downdelay: keep(&self.downdelay, &current.downdelay),
            use_carrier: keep(&self.use_carrier, &current.use_carrier),
            arp_interval: keep(&self.arp_interval, &current.arp_interval),
            // The kernel omits an empty list.
            arp_ip_target: keep(
                &self.arp_ip_target,
                &Some(current.arp_ip_target.clone().unwrap_or_default()),
            ),
            arp_validate: keep(&self.arp_validate, &current.arp_validate),
            arp_all_targets: keep(&self.arp_all_targets, &current.arp_all_targets),
            primary: keep(&self.primary, &current.primary),
            primary_reselect: keep(&self.primary_reselect, &current.primary_reselect),
            fail_over_mac: keep(&self.fail_over_mac, &current.fail_over_mac),
            xmit_hash_policy: keep(&self.xmit_hash_policy, &current.xmit_hash_policy),
            resend_igmp: keep(&self.resend_igmp, &current.resend_igmp),
            num_peer_notif: keep(&self.num_peer_notif, &current.num_peer_notif),
            all_slaves_active: keep(&self.all_slaves_active, &current.all_slaves_active),
            min_links: keep(&self.min_links, &current.min_links),
            lacp_rate: keep(&self.lacp_rate, &current.lacp_rate),
            ad_select: keep(&self.ad_select, &current.ad_select),
            ad_actor_sys_prio: keep(&self.ad_actor_sys_prio, &current.ad_actor_sys_prio),
            ad_user_port_key: keep(&self.ad_user_port_key, &current.ad_user_port_key),
            tlb_dynamic_lb: keep(&self.tlb_dynamic_lb, &current.tlb_dynamic_lb),
        }
    }

    /// No option is set.
    pub fn is_empty(&self) -> bool {
        *self == BondOptions::default()
    }
}

/// Appends the set options as `IFLA_BOND_*` attributes, in attribute-number order, each in the
/// size of the kernel's policy (`bond_policy` in bond_netlink.c).
fn put_options(request: Request, options: &BondOptions) -> Request {
    fn u8_attribute(request: Request, kind: u16, value: Option<u8>) -> Request {
        match value {
            Some(value) => request.attribute(kind, &[value]),
            None => request,
        }
    }
    fn u16_attribute(request: Request, kind: u16, value: Option<u16>) -> Request {
        match value {
            Some(value) => request.attribute(kind, &value.to_ne_bytes()),
            None => request,
        }
    }
    fn u32_attribute(request: Request, kind: u16, value: Option<u32>) -> Request {
        match value {
            Some(value) => request.attribute(kind, &value.to_ne_bytes()),
            None => request,
        }
    }
    let o = options;
    let mut r = u8_attribute(request, IFLA_BOND_MODE, o.mode.map(BondMode::kernel_value));
    r = u32_attribute(r, IFLA_BOND_ACTIVE_SLAVE, o.active_slave);
    r = u32_attribute(r, IFLA_BOND_MIIMON, o.miimon);
    r = u32_attribute(r, IFLA_BOND_UPDELAY, o.updelay);
    r = u32_attribute(r, IFLA_BOND_DOWNDELAY, o.downdelay);
    r = u8_attribute(r, IFLA_BOND_USE_CARRIER, o.use_carrier.map(u8::from));
    r = u32_attribute(r, IFLA_BOND_ARP_INTERVAL, o.arp_interval);
    if let Some(targets) = &o.arp_ip_target {
        // A list of be32 addresses typed by their position, as the kernel reports them.
        r = r.nested(IFLA_BOND_ARP_IP_TARGET, |mut r| {
            for (position, target) in (0u16..).zip(targets) {
                r = r.attribute(position, &target.octets());
            }
            r
        });
    }
    let arp_validate = o.arp_validate.map(ArpValidate::kernel_value);
    r = u32_attribute(r, IFLA_BOND_ARP_VALIDATE, arp_validate);
    let arp_all_targets = o.arp_all_targets.map(ArpAllTargets::kernel_value);
    r = u32_attribute(r, IFLA_BOND_ARP_ALL_TARGETS, arp_all_targets);
    r = u32_attribute(r, IFLA_BOND_PRIMARY, o.primary);
    let primary_reselect = o.primary_reselect.map(PrimaryReselect::kernel_value);
    r = u8_attribute(r, IFLA_BOND_PRIMARY_RESELECT, primary_reselect);
    let fail_over_mac = o.fail_over_mac.map(FailOverMac::kernel_value);
    r = u8_attribute(r, IFLA_BOND_FAIL_OVER_MAC, fail_over_mac);
    let xmit_hash_policy = o.xmit_hash_policy.map(XmitHashPolicy::kernel_value);
    r = u8_attribute(r, IFLA_BOND_XMIT_HASH_POLICY, xmit_hash_policy);
    r = u32_attribute(r, IFLA_BOND_RESEND_IGMP, o.resend_igmp);
    r = u8_attribute(r, IFLA_BOND_NUM_PEER_NOTIF, o.num_peer_notif);
    let all_slaves_active = o.all_slaves_active.map(u8::from);
    r = u8_attribute(r, IFLA_BOND_ALL_SLAVES_ACTIVE, all_slaves_active);
    r = u32_attribute(r, IFLA_BOND_MIN_LINKS, o.min_links);
    let lacp_rate = o.lacp_rate.map(LacpRate::kernel_value);
    r = u8_attribute(r, IFLA_BOND_AD_LACP_RATE, lacp_rate);
    r = u8_attribute(
        r,
        IFLA_BOND_AD_SELECT,
        o.ad_select.map(AdSelect::kernel_value),
    );
    r = u16_attribute(r, IFLA_BOND_AD_ACTOR_SYS_PRIO, o.ad_actor_sys_prio);
    r = u16_attribute(r, IFLA_BOND_AD_USER_PORT_KEY, o.ad_user_port_key);
    u8_attribute(r, IFLA_BOND_TLB_DYNAMIC_LB, o.tlb_dynamic_lb.map(u8::from))
}

/// `RTM_NEWLINK` creating a link `name` of kind `kind`, with `data` inside `IFLA_INFO_DATA`
/// when given; an existing link of that name is `EEXIST`.
fn create_request(name: &str, kind: &str, data: Option<&BondOptions>) -> Request {
    Request::new(
        RTM_NEWLINK,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        &nlmsg::ifinfomsg(0, 0, 0),
    )
    .string(IFLA_IFNAME, name)
    .nested(IFLA_LINKINFO, |r| {
        let r = r.string(IFLA_INFO_KIND, kind);
        match data {
            Some(options) => r.nested(IFLA_INFO_DATA, |r| put_options(r, options)),
            None => r,
        }
    })
}

/// Creates bond `name` with `options` (`RTM_NEWLINK`, `NLM_F_CREATE | NLM_F_EXCL`). The kernel
/// sets the mode before any other option, so one request can hold options of the new mode.
pub fn create_bond_request(name: &str, options: &BondOptions) -> Request {
    create_request(name, KIND, Some(options))
}

/// Creates dummy interface `name` (always up to the kernel: carrier on once set up).
pub fn create_dummy_request(name: &str) -> Request {
    create_request(name, DUMMY_KIND, None)
}

/// Changes the options of the bond with interface index `bond` (`RTM_NEWLINK` naming it, with
/// `IFLA_INFO_KIND` "bond": a link of another kind answers `EOPNOTSUPP`).
pub fn set_bond_options_request(bond: u32, options: &BondOptions) -> Request {
    Request::new(
        RTM_NEWLINK,
        NLM_F_REQUEST | NLM_F_ACK,
        &nlmsg::ifinfomsg(bond, 0, 0),
    )
    .nested(IFLA_LINKINFO, |r| {
        r.string(IFLA_INFO_KIND, KIND)
            .nested(IFLA_INFO_DATA, |r| put_options(r, options))
    })
}

/// Makes link `port` a port of `master` (`IFLA_MASTER` in `RTM_SETLINK`); `master` 0 releases
/// it from the master it has. The port must be down to be enslaved.
pub fn set_master_request(port: u32, master: u32) -> Request {
    crate::net::link_request(port, 0, 0).attribute(IFLA_MASTER, &master.to_ne_bytes())
}

/// Sets link `index` administratively up or down (the request [`crate::net::NetExecutor`] uses).
pub fn set_link_up_request(index: u32, up: bool) -> Request {
    crate::net::link_request(index, if up { IFF_UP } else { 0 }, IFF_UP)
}

/// Deletes link `index` (`RTM_DELLINK`); a bond's ports are released first by the kernel.
pub fn delete_link_request(index: u32) -> Request {
    Request::new(
        RTM_DELLINK,
        NLM_F_REQUEST | NLM_F_ACK,
        &nlmsg::ifinfomsg(index, 0, 0),
    )
}

/// Asks for every link (`RTM_GETLINK` dump): bonds and their ports read with [`read_link`].
pub fn dump_links_request() -> Request {
    Request::new(
        RTM_GETLINK,
        NLM_F_REQUEST | NLM_F_DUMP,
        &nlmsg::ifinfomsg(0, 0, 0),
    )
}

/// Asks for the one link called `name` (an `RTM_NEWLINK` answer, or `ENODEV`).
pub fn get_link_request(name: &str) -> Request {
    Request::new(RTM_GETLINK, NLM_F_REQUEST, &nlmsg::ifinfomsg(0, 0, 0)).string(IFLA_IFNAME, name)
}

/// What bonding reads of an `RTM_NEWLINK` payload (a dump answer or a notification), borrowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkRead<'a> {
    /// Index, flags, name, carrier.
    pub link: nlmsg::Link<'a>,
    /// `IFLA_MASTER`: the index of the bond (or other master) this link is a port of.
    pub master: Option<u32>,
    /// `IFLA_EVENT`: why a notification was sent ([`IFLA_EVENT_BONDING_FAILOVER`], ...).
    pub event: Option<u32>,
    /// `IFLA_MTU`.
    pub mtu: Option<u32>,
    /// `IFLA_INFO_KIND` without its NUL ("bond" for a bond).
    pub kind: Option<&'a [u8]>,
    /// `IFLA_INFO_SLAVE_KIND` without its NUL ("bond" for a bond's port).
    pub port_kind: Option<&'a [u8]>,
    /// `IFLA_INFO_DATA`: a bond's attributes, for [`read_bond_data`].
    pub data: Option<&'a [u8]>,
    /// `IFLA_INFO_SLAVE_DATA`: a bond port's attributes, for [`read_port_data`].
    pub port_data: Option<&'a [u8]>,
}

impl LinkRead<'_> {
    /// The link is a bond.
    pub fn is_bond(&self) -> bool {
        self.kind == Some(KIND.as_bytes())
    }

    /// The link is a port of a bond.
    pub fn is_bond_port(&self) -> bool {
        self.port_kind == Some(KIND.as_bytes()) && self.master.is_some_and(|master| master != 0)
    }

    /// The notification says the bond's active port changed.
    pub fn is_failover(&self) -> bool {
        self.event == Some(IFLA_EVENT_BONDING_FAILOVER)
    }

    /// The bond's state, when the link is a bond.
    pub fn bond(&self) -> Option<BondInfo> {
        self.is_bond()
            .then(|| read_bond_data(self.data.unwrap_or_default()))
    }

    /// The port's state, when the link is a bond's port.
    pub fn port(&self) -> Option<PortInfo> {
        self.is_bond_port()
            .then(|| read_port_data(self.port_data.unwrap_or_default()))
    }
}

/// Reads a link message's payload (`None`: shorter than `struct ifinfomsg`).
pub fn read_link(payload: &[u8]) -> Option<LinkRead<'_>> {
    let mut read = LinkRead {
        link: nlmsg::link(payload)?,
        master: None,
        event: None,
        mtu: None,
        kind: None,
        port_kind: None,
        data: None,
        port_data: None,
    };
    for (kind, value) in nlmsg::attributes(payload.get(nlmsg::IFINFOMSG_LEN..)?) {
        match kind {
            IFLA_MASTER => read.master = u32_value(value),
            IFLA_EVENT => read.event = u32_value(value),
            IFLA_MTU => read.mtu = u32_value(value),
            IFLA_LINKINFO => {
                for (kind, value) in nlmsg::attributes(value) {
                    match kind {
                        IFLA_INFO_KIND => read.kind = Some(without_nul(value)),
                        IFLA_INFO_SLAVE_KIND => read.port_kind = Some(without_nul(value)),
                        IFLA_INFO_DATA => read.data = Some(value),
                        IFLA_INFO_SLAVE_DATA => read.port_data = Some(value),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Some(read)
}

/// A bond as its `IFLA_INFO_DATA` describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BondInfo {
    /// Every option the kernel reported (`active_slave` among them).
    pub options: BondOptions,
    /// 802.3ad only, and only while an aggregator is active.
    pub ad: Option<AdInfo>,
}

/// The active 802.3ad aggregator (`IFLA_BOND_AD_INFO`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdInfo {
    pub aggregator_id: Option<u16>,
    pub num_ports: Option<u16>,
    pub actor_key: Option<u16>,
    pub partner_key: Option<u16>,
    /// The partner's system MAC (all zero without an LACP partner).
    pub partner_mac: Option<[u8; 6]>,
}

/// A bond's port as its `IFLA_INFO_SLAVE_DATA` describes it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PortInfo {
    pub state: Option<PortState>,
    pub mii_status: Option<MiiStatus>,
    pub link_failure_count: Option<u32>,
    /// The port's own MAC (the bond may have given it another); Ethernet (6 bytes) only.
    pub perm_hwaddr: Option<[u8; 6]>,
    pub queue_id: Option<u16>,
    /// 802.3ad only.
    pub ad_aggregator_id: Option<u16>,
    /// 802.3ad only: [`lacp_state`] bits.
    pub ad_actor_oper_port_state: Option<u8>,
    /// 802.3ad only: [`lacp_state`] bits.
    pub ad_partner_oper_port_state: Option<u8>,
}

/// Reads a bond's `IFLA_INFO_DATA`; what is missing or malformed stays `None`.
pub fn read_bond_data(data: &[u8]) -> BondInfo {
    let mut info = BondInfo::default();
    let o = &mut info.options;
    for (kind, value) in nlmsg::attributes(data) {
        match kind {
            IFLA_BOND_MODE => o.mode = u8_value(value).and_then(BondMode::from_kernel_value),
            IFLA_BOND_ACTIVE_SLAVE => o.active_slave = u32_value(value),
            IFLA_BOND_MIIMON => o.miimon = u32_value(value),
            IFLA_BOND_UPDELAY => o.updelay = u32_value(value),
            IFLA_BOND_DOWNDELAY => o.downdelay = u32_value(value),
            IFLA_BOND_USE_CARRIER => o.use_carrier = bool_value(value),
            IFLA_BOND_ARP_INTERVAL => o.arp_interval = u32_value(value),
            IFLA_BOND_ARP_IP_TARGET => {
                let targets = nlmsg::attributes(value)
                    .filter_map(|(_, target)| <[u8; 4]>::try_from(target).ok())
                    .map(Ipv4Addr::from)
                    .collect();
                o.arp_ip_target = Some(targets);
            }
            IFLA_BOND_ARP_VALIDATE => {
                o.arp_validate = u32_value(value).and_then(ArpValidate::from_kernel_value);
            }
            IFLA_BOND_ARP_ALL_TARGETS => {
                o.arp_all_targets = u32_value(value).and_then(ArpAllTargets::from_kernel_value);
            }
            IFLA_BOND_PRIMARY => o.primary = u32_value(value),
            IFLA_BOND_PRIMARY_RESELECT => {
                o.primary_reselect = u8_value(value).and_then(PrimaryReselect::from_kernel_value);
            }
            IFLA_BOND_FAIL_OVER_MAC => {
                o.fail_over_mac = u8_value(value).and_then(FailOverMac::from_kernel_value);
            }
            IFLA_BOND_XMIT_HASH_POLICY => {
                o.xmit_hash_policy = u8_value(value).and_then(XmitHashPolicy::from_kernel_value);
            }
            IFLA_BOND_RESEND_IGMP => o.resend_igmp = u32_value(value),
            IFLA_BOND_NUM_PEER_NOTIF => o.num_peer_notif = u8_value(value),
            IFLA_BOND_ALL_SLAVES_ACTIVE => o.all_slaves_active = bool_value(value),
            IFLA_BOND_MIN_LINKS => o.min_links = u32_value(value),
            IFLA_BOND_AD_LACP_RATE => {
                o.lacp_rate = u8_value(value).and_then(LacpRate::from_kernel_value);
            }
            IFLA_BOND_AD_SELECT => {
                o.ad_select = u8_value(value).and_then(AdSelect::from_kernel_value)
            }
            IFLA_BOND_AD_ACTOR_SYS_PRIO => o.ad_actor_sys_prio = u16_value(value),
            IFLA_BOND_AD_USER_PORT_KEY => o.ad_user_port_key = u16_value(value),
            IFLA_BOND_TLB_DYNAMIC_LB => o.tlb_dynamic_lb = bool_value(value),
            IFLA_BOND_AD_INFO => info.ad = Some(read_ad_info(value)),
            _ => {}
        }
    }
    info
}

fn read_ad_info(value: &[u8]) -> AdInfo {
    let mut ad = AdInfo::default();
    for (kind, value) in nlmsg::attributes(value) {
        match kind {
            IFLA_BOND_AD_INFO_AGGREGATOR => ad.aggregator_id = u16_value(value),
            IFLA_BOND_AD_INFO_NUM_PORTS => ad.num_ports = u16_value(value),
            IFLA_BOND_AD_INFO_ACTOR_KEY => ad.actor_key = u16_value(value),
            IFLA_BOND_AD_INFO_PARTNER_KEY => ad.partner_key = u16_value(value),
            IFLA_BOND_AD_INFO_PARTNER_MAC => ad.partner_mac = value.try_into().ok(),
            _ => {}
        }
    }
    ad
}

/// Reads a bond port's `IFLA_INFO_SLAVE_DATA`; what is missing or malformed stays `None`.
pub fn read_port_data(data: &[u8]) -> PortInfo {
    let mut port = PortInfo::default();
    for (kind, value) in nlmsg::attributes(data) {
        match kind {
            IFLA_BOND_SLAVE_STATE => {
                port.state = u8_value(value).and_then(PortState::from_kernel_value);
            }
            IFLA_BOND_SLAVE_MII_STATUS => {
                port.mii_status = u8_value(value).and_then(MiiStatus::from_kernel_value);
            }
            IFLA_BOND_SLAVE_LINK_FAILURE_COUNT => port.link_failure_count = u32_value(value),
            IFLA_BOND_SLAVE_PERM_HWADDR => port.perm_hwaddr = value.try_into().ok(),
            IFLA_BOND_SLAVE_QUEUE_ID => port.queue_id = u16_value(value),
            IFLA_BOND_SLAVE_AD_AGGREGATOR_ID => port.ad_aggregator_id = u16_value(value),
            IFLA_BOND_SLAVE_AD_ACTOR_OPER_PORT_STATE => {
                port.ad_actor_oper_port_state = u8_value(value);
            }
            // The kernel writes this one as a u16.
            IFLA_BOND_SLAVE_AD_PARTNER_OPER_PORT_STATE => {
                port.ad_partner_oper_port_state = u8_value(value);
            }
            _ => {}
        }
    }
    port
}

/// An unsigned integer of 1, 2 or 4 bytes in host order (the kernel's `nla_put_u8/16/32`).
fn uint_value(value: &[u8]) -> Option<u32> {
    match *value {
        [byte] => Some(u32::from(byte)),
        [a, b] => Some(u32::from(u16::from_ne_bytes([a, b]))),
        [a, b, c, d] => Some(u32::from_ne_bytes([a, b, c, d])),
        _ => None,
    }
}

fn u8_value(value: &[u8]) -> Option<u8> {
    uint_value(value).and_then(|v| u8::try_from(v).ok())
}

fn u16_value(value: &[u8]) -> Option<u16> {
    uint_value(value).and_then(|v| u16::try_from(v).ok())
}

fn u32_value(value: &[u8]) -> Option<u32> {
    uint_value(value)
}

fn bool_value(value: &[u8]) -> Option<bool> {
    u8_value(value).map(|byte| byte != 0)
}

fn without_nul(value: &[u8]) -> &[u8] {
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    value.get(..end).unwrap_or_default()
}

/// A bond read back with [`BondExecutor::bonds`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bond {
    pub index: u32,
    pub name: String,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Carrier (`IFF_LOWER_UP`): at least `min_links` ports have link.
    pub lower_up: bool,
    /// `IFLA_MTU` (None: not reported).
    pub mtu: Option<u32>,
    pub info: BondInfo,
    /// In interface-index order.
    pub ports: Vec<BondPort>,
}

/// A port of a [`Bond`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BondPort {
    pub index: u32,
    pub name: String,
    pub up: bool,
    pub lower_up: bool,
    pub info: PortInfo,
}

/// What a failed [`BondExecutor`] call was doing, naming the links.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BondAction {
    CreateBond { bond: String },
    CreateDummy { name: String },
    SetOptions { bond: String },
    Enslave { port: String, bond: String },
    Release { port: String },
    SetUp { link: String, up: bool },
    Delete { link: String },
    SetMtu { link: String, mtu: u32 },
    ReadBonds,
}

impl core::fmt::Display for BondAction {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BondAction::CreateBond { bond } => write!(f, "create bond {bond}"),
            BondAction::CreateDummy { name } => write!(f, "create dummy link {name}"),
            BondAction::SetOptions { bond } => write!(f, "change the options of bond {bond}"),
            BondAction::Enslave { port, bond } => write!(f, "add port {port} to bond {bond}"),
            BondAction::Release { port } => write!(f, "release port {port} from its bond"),
            BondAction::SetUp { link, up } => {
                write!(f, "set link {link} {}", if *up { "up" } else { "down" })
            }
            BondAction::Delete { link } => write!(f, "delete link {link}"),
            BondAction::SetMtu { link, mtu } => write!(f, "set the MTU of link {link} to {mtu}"),
            BondAction::ReadBonds => write!(f, "read the bonds"),
        }
    }
}

/// Why a [`BondExecutor`] call failed.
#[derive(Debug)]
pub enum BondError {
    /// The netlink socket could not be opened.
    Connect(std::io::Error),
    /// A link the action names does not exist.
    NoSuchLink { action: BondAction, link: String },
    /// The kernel refused the action.
    Kernel {
        action: BondAction,
        source: RtnlError,
    },
}

impl BondError {
    /// The kernel's errno, when it refused the action.
    pub fn errno(&self) -> Option<i32> {
        match self {
            BondError::Kernel { source, .. } => source.errno(),
            _ => None,
        }
    }
}

impl core::fmt::Display for BondError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            BondError::Connect(source) => write!(
                f,
                "cannot open rtnetlink socket for bonds: {source} (out of memory or file \
                 descriptors? restart tandem)"
            ),
            BondError::NoSuchLink { action, link } => write!(
                f,
                "cannot {action}: there is no link called {link} (`ports` lists the NICs; fix \
                 the name in the config)"
            ),
            BondError::Kernel { action, source } => {
                write!(f, "kernel refused to {action}: {source}")?;
                match source.errno().and_then(|errno| hint(action, errno)) {
                    Some(hint) => write!(f, " ({hint})"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl std::error::Error for BondError {}

/// What to do about `errno` answered to `action`, from the kernel's reasons for it.
fn hint(action: &BondAction, errno: i32) -> Option<&'static str> {
    use BondAction as A;
    Some(match (action, errno) {
        (A::CreateBond { .. } | A::CreateDummy { .. }, libc::EEXIST) => {
            "a link of that name exists: delete it or choose another name"
        }
        (A::CreateBond { .. }, libc::EOPNOTSUPP) => {
            "this kernel has no bond links: load the bonding module first"
        }
        (A::CreateDummy { .. }, libc::EOPNOTSUPP) => {
            "this kernel has no dummy links: load the dummy module first"
        }
        (A::SetOptions { .. }, libc::EOPNOTSUPP) => "that link is not a bond",
        (A::CreateBond { .. } | A::SetOptions { .. }, errno) => match errno {
            libc::ENOTEMPTY => {
                "mode and fail_over_mac change only on a bond without ports: release its ports \
                 first"
            }
            libc::EBUSY => {
                "mode, lacp_rate, ad_select, ad_user_port_key and tlb_dynamic_lb change only \
                 while the bond is down: set it down first"
            }
            libc::EACCES => "an option does not apply to the bond's mode: leave it unset",
            libc::EPERM => "updelay and downdelay need miimon on",
            libc::EINVAL => {
                "a value is out of range or conflicts: miimon with arp_interval or arp_validate \
                 in one change, a 0.0.0.0, broadcast or repeated ARP target, or an \
                 active_slave that is not an up port of this bond"
            }
            libc::ENODEV => "active_slave names no link",
            _ => return None,
        },
        (A::Enslave { .. }, libc::EPERM) => {
            "the port is up, is the bond itself, or cannot be a bond port: check the port"
        }
        (A::Enslave { .. }, libc::EBUSY) => {
            "the port is in use by another master or upper device: release it there first"
        }
        (A::Enslave { .. }, libc::EOPNOTSUPP) => "the master named is not a bond",
        (_, libc::ENODEV) => "the link went away meanwhile: read the links again",
        (A::Delete { .. }, libc::EOPNOTSUPP) => {
            "only virtual links such as bonds and dummies can be deleted"
        }
        _ => return None,
    })
}

/// A link as the executor looks it up: index, flags, master.
#[derive(Debug, Clone, Copy)]
struct Found {
    index: u32,
    flags: u32,
    master: Option<u32>,
}

/// Creates, changes, enslaves to, releases from and deletes bonds, and reads them back, over one
/// route-netlink socket of its own ([`crate::rtnl`]).
///
/// Links are named; each call looks their indexes up (no cache: bonds are not on a takeover
/// path). Clones share the socket; one request at a time holds it, for the microseconds the
/// kernel takes to answer inside `sendmsg`.
#[derive(Debug, Clone)]
pub struct BondExecutor {
    rtnl: Arc<Mutex<Rtnl>>,
}

impl BondExecutor {
    /// Opens the route-netlink socket.
    pub fn connect() -> Result<BondExecutor, BondError> {
        Ok(BondExecutor {
            rtnl: Arc::new(Mutex::new(Rtnl::open().map_err(BondError::Connect)?)),
        })
    }

    /// Creates bond `name` with `options` (down, without ports) and returns its index.
    pub async fn create_bond(&self, name: &str, options: &BondOptions) -> Result<u32, BondError> {
        let action = BondAction::CreateBond { bond: name.into() };
        self.execute(create_bond_request(name, options), &action)?;
        Ok(self.find(name, &action)?.index)
    }

    /// Creates dummy interface `name` (down) and returns its index.
    pub async fn create_dummy(&self, name: &str) -> Result<u32, BondError> {
        let action = BondAction::CreateDummy { name: name.into() };
        self.execute(create_dummy_request(name), &action)?;
        Ok(self.find(name, &action)?.index)
    }

    /// Sends the set `options` to bond `bond` (see the module's list of what needs the bond down
    /// or without ports).
    pub async fn set_bond_options(
        &self,
        bond: &str,
        options: &BondOptions,
    ) -> Result<(), BondError> {
        let action = BondAction::SetOptions { bond: bond.into() };
        let index = self.find(bond, &action)?.index;
        self.execute(set_bond_options_request(index, options), &action)
    }

    /// Makes `port` a port of `bond`: takes the port down if it is up (the kernel refuses an up
    /// port), sets its master, and sets it up. Nothing is sent when it is a port of `bond`
    /// already; a port of another master moves. On a refusal the port is set up again if it
    /// was.
    pub async fn enslave(&self, port: &str, bond: &str) -> Result<(), BondError> {
        let action = BondAction::Enslave {
            port: port.into(),
            bond: bond.into(),
        };
        let bond_index = self.find(bond, &action)?.index;
        let found = self.find(port, &action)?;
        if found.master == Some(bond_index) {
            return Ok(());
        }
        let was_up = found.flags & IFF_UP != 0;
        if was_up {
            self.execute(set_link_up_request(found.index, false), &action)?;
        }
        if let Err(error) = self.execute(set_master_request(found.index, bond_index), &action) {
            if was_up {
                // Best effort: the refusal is what the caller needs to hear about.
                let _ = self.execute(set_link_up_request(found.index, true), &action);
            }
            return Err(error);
        }
        self.execute(set_link_up_request(found.index, true), &action)
    }

    /// Takes `port` out of its bond (or other master); nothing is sent when it has none. The
    /// kernel leaves the released port down.
    pub async fn release(&self, port: &str) -> Result<(), BondError> {
        let action = BondAction::Release { port: port.into() };
        let found = self.find(port, &action)?;
        if found.master.is_none() {
            return Ok(());
        }
        self.execute(set_master_request(found.index, 0), &action)
    }

    /// Sets `link` administratively up or down.
    pub async fn set_link_up(&self, link: &str, up: bool) -> Result<(), BondError> {
        let action = BondAction::SetUp {
            link: link.into(),
            up,
        };
        let index = self.find(link, &action)?.index;
        self.execute(set_link_up_request(index, up), &action)
    }

    /// Deletes `link` (a bond: its ports are released first); a link that is not there is done.
    pub async fn delete_link(&self, link: &str) -> Result<(), BondError> {
        let action = BondAction::Delete { link: link.into() };
        let index = match self.find(link, &action) {
            Ok(found) => found.index,
            Err(BondError::NoSuchLink { .. }) => return Ok(()),
            Err(error) => return Err(error),
        };
        match self.execute(delete_link_request(index), &action) {
            Err(error) if error.errno() == Some(libc::ENODEV) => Ok(()),
            other => other,
        }
    }

    /// Sets the MTU of `link` (a bond passes it on to its ports; the kernel does nothing for
    /// the MTU a link has already).
    pub async fn set_mtu(&self, link: &str, mtu: u32) -> Result<(), BondError> {
        let action = BondAction::SetMtu {
            link: link.into(),
            mtu,
        };
        let found = self.find(link, &action)?;
        let request = Request::new(
            RTM_NEWLINK,
            NLM_F_REQUEST | NLM_F_ACK,
            &nlmsg::ifinfomsg(found.index, 0, 0),
        )
        .attribute(IFLA_MTU, &mtu.to_ne_bytes());
        self.execute(request, &action)
    }

    /// The interface index of `link` (`None`: no such link), for `primary` and `active_slave`.
    pub async fn index_of(&self, link: &str) -> Result<Option<u32>, BondError> {
        let action = BondAction::SetUp {
            link: link.into(),
            up: true,
        };
        match self.find(link, &action) {
            Ok(found) => Ok(Some(found.index)),
            Err(BondError::NoSuchLink { .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Every bond with its ports and their state, from one `RTM_GETLINK` dump, in
    /// interface-index order.
    pub async fn bonds(&self) -> Result<Vec<Bond>, BondError> {
        let mut bonds = Vec::new();
        let mut ports = Vec::new();
        self.exchange(dump_links_request(), &mut |kind, payload| {
            if kind != RTM_NEWLINK {
                return;
            }
            let Some(read) = read_link(payload) else {
                return;
            };
            let name = String::from_utf8_lossy(read.link.name.unwrap_or_default()).into_owned();
            let (index, flags) = (read.link.index, read.link.flags);
            if let Some(info) = read.bond() {
                bonds.push(Bond {
                    index,
                    name: name.clone(),
                    up: flags & IFF_UP != 0,
                    lower_up: flags & IFF_LOWER_UP != 0,
                    mtu: read.mtu,
                    info,
                    ports: Vec::new(),
                });
            }
            if let (Some(info), Some(master)) = (read.port(), read.master) {
                let port = BondPort {
                    index,
                    name,
                    up: flags & IFF_UP != 0,
                    lower_up: flags & IFF_LOWER_UP != 0,
                    info,
                };
                ports.push((master, port));
            }
        })
        .map_err(|source| BondError::Kernel {
            action: BondAction::ReadBonds,
            source,
        })?;
        for (master, port) in ports {
            if let Some(bond) = bonds.iter_mut().find(|bond| bond.index == master) {
                bond.ports.push(port);
            }
        }
        Ok(bonds)
    }

    /// Looks `name` up: its index, flags and master.
    fn find(&self, name: &str, action: &BondAction) -> Result<Found, BondError> {
        let mut found = None;
        let answer = self.exchange(get_link_request(name), &mut |kind, payload| {
            if kind == RTM_NEWLINK && found.is_none() {
                found = read_link(payload).map(|read| Found {
                    index: read.link.index,
                    flags: read.link.flags,
                    master: read.master.filter(|&master| master != 0),
                });
            }
        });
        let no_such_link = || BondError::NoSuchLink {
            action: action.clone(),
            link: name.into(),
        };
        match (answer, found) {
            (Ok(()), Some(found)) => Ok(found),
            (Ok(()), None) => Err(no_such_link()),
            (Err(error), _) if error.errno() == Some(libc::ENODEV) => Err(no_such_link()),
            (Err(source), _) => Err(BondError::Kernel {
                action: action.clone(),
                source,
            }),
        }
    }

    /// Sends `request` and waits for its ack.
    fn execute(&self, request: Request, action: &BondAction) -> Result<(), BondError> {
        self.exchange(request, &mut |_, _| {})
            .map_err(|source| BondError::Kernel {
                action: action.clone(),
                source,
            })
    }

    fn exchange(
        &self,
        request: Request,
        each: &mut dyn FnMut(u16, &[u8]),
    ) -> Result<(), RtnlError> {
        // A poisoned lock only means another thread panicked between two requests.
        let mut rtnl = self.rtnl.lock().unwrap_or_else(PoisonError::into_inner);
        rtnl.exchange(request, each)
    }
}

#[cfg(test)]
#[cfg(target_endian = "little")] // the expected bytes are written little-endian
mod tests {
    use super::*;
    use crate::nlmsg::HEADER_LEN;

    #[test]
    fn constants_match_the_uapi_headers() {
        // `<linux/if_link.h>` as libc carries it; the bond enums from the header's order.
        assert_eq!(IFLA_MASTER, libc::IFLA_MASTER);
        assert_eq!(IFLA_LINKINFO, libc::IFLA_LINKINFO);
        assert_eq!(IFLA_EVENT, libc::IFLA_EVENT);
        assert_eq!(IFLA_INFO_KIND, libc::IFLA_INFO_KIND);
        assert_eq!(IFLA_INFO_DATA, libc::IFLA_INFO_DATA);
        assert_eq!(IFLA_INFO_SLAVE_KIND, libc::IFLA_INFO_SLAVE_KIND);
        assert_eq!(IFLA_INFO_SLAVE_DATA, libc::IFLA_INFO_SLAVE_DATA);
        let bond = [
            IFLA_BOND_MODE,
            IFLA_BOND_ACTIVE_SLAVE,
            IFLA_BOND_MIIMON,
            IFLA_BOND_UPDELAY,
            IFLA_BOND_DOWNDELAY,
            IFLA_BOND_USE_CARRIER,
            IFLA_BOND_ARP_INTERVAL,
            IFLA_BOND_ARP_IP_TARGET,
            IFLA_BOND_ARP_VALIDATE,
            IFLA_BOND_ARP_ALL_TARGETS,
            IFLA_BOND_PRIMARY,
            IFLA_BOND_PRIMARY_RESELECT,
            IFLA_BOND_FAIL_OVER_MAC,
            IFLA_BOND_XMIT_HASH_POLICY,
            IFLA_BOND_RESEND_IGMP,
            IFLA_BOND_NUM_PEER_NOTIF,
            IFLA_BOND_ALL_SLAVES_ACTIVE,
            IFLA_BOND_MIN_LINKS,
        ];
        assert_eq!(
            bond,
            core::array::from_fn(|i| u16::try_from(i + 1).unwrap())
        );
        // 19 LP_INTERVAL, 20 PACKETS_PER_SLAVE (not used), then the 802.3ad block; 26 is
        // AD_ACTOR_SYSTEM (not used).
        let ad = [
            IFLA_BOND_AD_LACP_RATE,
            IFLA_BOND_AD_SELECT,
            IFLA_BOND_AD_INFO,
            IFLA_BOND_AD_ACTOR_SYS_PRIO,
            IFLA_BOND_AD_USER_PORT_KEY,
        ];
        assert_eq!(ad, [21, 22, 23, 24, 25]);
        assert_eq!(IFLA_BOND_TLB_DYNAMIC_LB, 27);
        let ad_info = [
            IFLA_BOND_AD_INFO_AGGREGATOR,
            IFLA_BOND_AD_INFO_NUM_PORTS,
            IFLA_BOND_AD_INFO_ACTOR_KEY,
            IFLA_BOND_AD_INFO_PARTNER_KEY,
            IFLA_BOND_AD_INFO_PARTNER_MAC,
        ];
        assert_eq!(ad_info, [1, 2, 3, 4, 5]);
        let port = [
            IFLA_BOND_SLAVE_STATE,
            IFLA_BOND_SLAVE_MII_STATUS,
            IFLA_BOND_SLAVE_LINK_FAILURE_COUNT,
            IFLA_BOND_SLAVE_PERM_HWADDR,
            IFLA_BOND_SLAVE_QUEUE_ID,
            IFLA_BOND_SLAVE_AD_AGGREGATOR_ID,
            IFLA_BOND_SLAVE_AD_ACTOR_OPER_PORT_STATE,
            IFLA_BOND_SLAVE_AD_PARTNER_OPER_PORT_STATE,
        ];
        assert_eq!(port, [1, 2, 3, 4, 5, 6, 7, 8]);
        // IFLA_EVENT_NONE, REBOOT, FEATURES, BONDING_FAILOVER.
        assert_eq!(IFLA_EVENT_BONDING_FAILOVER, 3);
    }

    #[test]
    fn kernel_numbers_and_words_match_if_bonding_h_and_sysfs() {
        let modes: Vec<_> = BondMode::ALL
            .iter()
            .map(|m| (m.kernel_value(), m.kernel_name()))
            .collect();
        assert_eq!(
            modes,
            [
                (0, "balance-rr"),
                (1, "active-backup"),
                (2, "balance-xor"),
                (3, "broadcast"),
                (4, "802.3ad"),
                (5, "balance-tlb"),
                (6, "balance-alb"),
            ]
        );
        assert_eq!(XmitHashPolicy::Layer34.kernel_value(), 1);
        assert_eq!(XmitHashPolicy::Layer34.to_string(), "layer3+4");
        assert_eq!(XmitHashPolicy::Layer23.kernel_value(), 2);
        assert_eq!(XmitHashPolicy::VlanSrcMac.kernel_value(), 5);
        assert_eq!(ArpValidate::FilterBackup.kernel_value(), 6);
        assert_eq!(MiiStatus::from_kernel_value(2), Some(MiiStatus::Down));
        assert_eq!(PortState::from_kernel_value(1), Some(PortState::Backup));
        assert_eq!(BondMode::from_kernel_value(7), None);
        assert_eq!(
            BondMode::from_kernel_name("802.3ad"),
            Some(BondMode::Ieee8023ad)
        );
        assert_eq!(LacpRate::from_kernel_name("fast"), Some(LacpRate::Fast));
        assert_eq!(AdSelect::from_kernel_name("lacp"), None);
        for all in [
            PrimaryReselect::ALL.len(),
            FailOverMac::ALL.len(),
            ArpAllTargets::ALL.len(),
        ] {
            assert!(all >= 2);
        }
    }

    fn body(request: Request) -> Vec<u8> {
        request.finish(1).unwrap()[HEADER_LEN..].to_vec()
    }

    fn header(request: Request) -> [u8; HEADER_LEN] {
        request.finish(9).unwrap()[..HEADER_LEN].try_into().unwrap()
    }

    #[test]
    fn a_bond_is_created_with_its_kind_and_options_nested_in_linkinfo() {
        let options = BondOptions {
            mode: Some(BondMode::Ieee8023ad),
            miimon: Some(100),
            xmit_hash_policy: Some(XmitHashPolicy::Layer34),
            lacp_rate: Some(LacpRate::Fast),
            ad_actor_sys_prio: Some(65535),
            ..BondOptions::default()
        };
        let request = create_bond_request("bond0", &options);
        // Length 104, RTM_NEWLINK, REQUEST | ACK | EXCL | CREATE, sequence 9, port 0.
        assert_eq!(
            header(request.clone()),
            [104, 0, 0, 0, 16, 0, 0x05, 0x06, 9, 0, 0, 0, 0, 0, 0, 0]
        );
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ifinfomsg: new link
            10, 0, 3, 0, b'b', b'o', b'n', b'd', b'0', 0, 0, 0, // IFLA_IFNAME
            60, 0, 18, 0x80, // IFLA_LINKINFO | NLA_F_NESTED
                9, 0, 1, 0, b'b', b'o', b'n', b'd', 0, 0, 0, 0, // IFLA_INFO_KIND
                44, 0, 2, 0x80, // IFLA_INFO_DATA | NLA_F_NESTED
                    5, 0, 1, 0, 4, 0, 0, 0, // MODE u8 802.3ad
                    8, 0, 3, 0, 100, 0, 0, 0, // MIIMON u32
                    5, 0, 14, 0, 1, 0, 0, 0, // XMIT_HASH_POLICY u8 layer3+4
                    5, 0, 21, 0, 1, 0, 0, 0, // AD_LACP_RATE u8 fast
                    6, 0, 24, 0, 0xff, 0xff, 0, 0, // AD_ACTOR_SYS_PRIO u16
        ];
        assert_eq!(body(request), expected);
    }

    #[test]
    fn options_change_names_the_bond_and_sends_arp_targets_as_a_nested_list() {
        let options = BondOptions {
            arp_interval: Some(200),
            arp_ip_target: Some(vec![
                Ipv4Addr::new(192, 0, 2, 1),
                Ipv4Addr::new(198, 51, 100, 7),
            ]),
            arp_validate: Some(ArpValidate::All),
            primary: Some(3),
            ..BondOptions::default()
        };
        let request = set_bond_options_request(7, &options);
        // RTM_NEWLINK, REQUEST | ACK only: never creates.
        assert_eq!(&header(request.clone())[4..8], &[16, 0, 0x05, 0]);
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ifinfomsg: index 7
            64, 0, 18, 0x80,
                9, 0, 1, 0, b'b', b'o', b'n', b'd', 0, 0, 0, 0,
                48, 0, 2, 0x80,
                    8, 0, 7, 0, 200, 0, 0, 0, // ARP_INTERVAL
                    20, 0, 8, 0x80, // ARP_IP_TARGET | NLA_F_NESTED
                        8, 0, 0, 0, 192, 0, 2, 1, // position 0, network order
                        8, 0, 1, 0, 198, 51, 100, 7,
                    8, 0, 9, 0, 3, 0, 0, 0, // ARP_VALIDATE u32 all
                    8, 0, 11, 0, 3, 0, 0, 0, // PRIMARY ifindex
        ];
        assert_eq!(body(request), expected);
        // An empty list is an empty nest: it clears the targets.
        let clear = BondOptions {
            arp_ip_target: Some(Vec::new()),
            ..BondOptions::default()
        };
        let bytes = body(set_bond_options_request(7, &clear));
        assert_eq!(&bytes[bytes.len() - 8..], &[8, 0, 2, 0x80, 4, 0, 8, 0x80]);
    }

    #[test]
    fn ports_links_and_dummies_have_their_own_small_requests() {
        // IFLA_MASTER on the port; RTM_SETLINK with the flags net.rs sends.
        let enslave = set_master_request(4, 7);
        assert_eq!(&header(enslave.clone())[4..8], &[19, 0, 0x05, 0x06]);
        #[rustfmt::skip]
        assert_eq!(body(enslave), [
            0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            8, 0, 10, 0, 7, 0, 0, 0,
        ]);
        assert_eq!(
            &body(set_master_request(4, 0))[16..],
            [8, 0, 10, 0, 0, 0, 0, 0]
        );
        // Up: flags IFF_UP, change IFF_UP; down: flags 0, change IFF_UP.
        assert_eq!(
            body(set_link_up_request(4, true)),
            [0, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]
        );
        assert_eq!(
            body(set_link_up_request(4, false)),
            [0, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]
        );
        let delete = delete_link_request(7);
        assert_eq!(&header(delete.clone())[..8], &[32, 0, 0, 0, 17, 0, 0x05, 0]);
        assert_eq!(
            body(delete),
            [0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        #[rustfmt::skip]
        assert_eq!(body(create_dummy_request("d0")), [
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            7, 0, 3, 0, b'd', b'0', 0, 0,
            16, 0, 18, 0x80,
                10, 0, 1, 0, b'd', b'u', b'm', b'm', b'y', 0, 0, 0,
        ]);
        assert_eq!(&header(dump_links_request())[4..8], &[18, 0, 0x01, 0x03]);
        assert_eq!(&header(get_link_request("p0"))[4..8], &[18, 0, 0x01, 0]);
    }

    fn every_option() -> BondOptions {
        BondOptions {
            mode: Some(BondMode::ActiveBackup),
            active_slave: Some(5),
            miimon: Some(100),
            updelay: Some(200),
            downdelay: Some(300),
            use_carrier: Some(true),
            arp_interval: Some(0),
            arp_ip_target: Some(vec![
                Ipv4Addr::new(192, 0, 2, 1),
                Ipv4Addr::new(192, 0, 2, 9),
            ]),
            arp_validate: Some(ArpValidate::FilterActive),
            arp_all_targets: Some(ArpAllTargets::All),
            primary: Some(4),
            primary_reselect: Some(PrimaryReselect::Better),
            fail_over_mac: Some(FailOverMac::Follow),
            xmit_hash_policy: Some(XmitHashPolicy::Encap34),
            resend_igmp: Some(3),
            num_peer_notif: Some(2),
            all_slaves_active: Some(false),
            min_links: Some(1),
            lacp_rate: Some(LacpRate::Slow),
            ad_select: Some(AdSelect::Count),
            ad_actor_sys_prio: Some(1000),
            ad_user_port_key: Some(1023),
            tlb_dynamic_lb: Some(true),
        }
    }

    /// The payload of a request, read back as the kernel's link message would be.
    fn reread(request: Request) -> BondInfo {
        let bytes = request.finish(1).unwrap();
        let read = read_link(&bytes[HEADER_LEN..]).unwrap();
        assert!(read.is_bond() && !read.is_bond_port());
        read.bond().unwrap()
    }

    #[test]
    fn every_option_round_trips_through_the_builder_and_the_reader() {
        let options = every_option();
        let info = reread(set_bond_options_request(7, &options));
        assert_eq!(info.options, options);
        assert_eq!(info.ad, None);
        assert!(options.changes_from(&info.options).is_empty());
        let none = reread(create_bond_request("b", &BondOptions::default()));
        assert!(none.options.is_empty());
    }

    #[test]
    fn changes_are_what_the_kernel_does_not_have_yet() {
        let mut kernel = every_option();
        kernel.arp_ip_target = None; // the kernel omits an empty list
        let wanted = BondOptions {
            miimon: Some(100),
            updelay: Some(400),
            arp_ip_target: Some(Vec::new()),
            lacp_rate: Some(LacpRate::Fast),
            ..BondOptions::default()
        };
        let changes = wanted.changes_from(&kernel);
        assert_eq!(
            changes,
            BondOptions {
                updelay: Some(400),
                lacp_rate: Some(LacpRate::Fast),
                ..BondOptions::default()
            }
        );
        assert!(!changes.is_empty());
    }

    /// A link message as the kernel writes one for a bond's port in 802.3ad, and for the bond
    /// (nests without `NLA_F_NESTED`, as `nla_nest_start_noflag` writes them).
    fn kernel_like_port() -> Vec<u8> {
        let request = Request::new(
            RTM_NEWLINK,
            0,
            &nlmsg::ifinfomsg(4, IFF_UP | IFF_LOWER_UP, 0),
        )
        .string(IFLA_IFNAME, "p0")
        .attribute(IFLA_MASTER, &7u32.to_ne_bytes())
        .nested(IFLA_LINKINFO, |r| {
            r.string(IFLA_INFO_SLAVE_KIND, "bond")
                .nested(IFLA_INFO_SLAVE_DATA, |r| {
                    r.attribute(IFLA_BOND_SLAVE_STATE, &[1])
                        .attribute(IFLA_BOND_SLAVE_MII_STATUS, &[2])
                        .attribute(IFLA_BOND_SLAVE_LINK_FAILURE_COUNT, &3u32.to_ne_bytes())
                        .attribute(IFLA_BOND_SLAVE_PERM_HWADDR, &[2, 0, 0, 0, 0, 4])
                        .attribute(IFLA_BOND_SLAVE_QUEUE_ID, &0u16.to_ne_bytes())
                        .attribute(IFLA_BOND_SLAVE_AD_AGGREGATOR_ID, &1u16.to_ne_bytes())
                        .attribute(IFLA_BOND_SLAVE_AD_ACTOR_OPER_PORT_STATE, &[0x4f])
                        .attribute(
                            IFLA_BOND_SLAVE_AD_PARTNER_OPER_PORT_STATE,
                            &0x02u16.to_ne_bytes(),
                        )
                })
        });
        without_nested_flags(request.finish(0).unwrap())
    }

    fn kernel_like_bond_failover() -> Vec<u8> {
        let request = Request::new(RTM_NEWLINK, 0, &nlmsg::ifinfomsg(7, IFF_UP, 0))
            .string(IFLA_IFNAME, "bond0")
            .attribute(IFLA_MTU, &1500u32.to_ne_bytes())
            .attribute(IFLA_EVENT, &IFLA_EVENT_BONDING_FAILOVER.to_ne_bytes())
            .nested(IFLA_LINKINFO, |r| {
                r.string(IFLA_INFO_KIND, "bond")
                    .nested(IFLA_INFO_DATA, |r| {
                        put_options(r, &every_option()).nested(IFLA_BOND_AD_INFO, |r| {
                            r.attribute(IFLA_BOND_AD_INFO_AGGREGATOR, &1u16.to_ne_bytes())
                                .attribute(IFLA_BOND_AD_INFO_NUM_PORTS, &2u16.to_ne_bytes())
                                .attribute(IFLA_BOND_AD_INFO_ACTOR_KEY, &9u16.to_ne_bytes())
                                .attribute(IFLA_BOND_AD_INFO_PARTNER_KEY, &1u16.to_ne_bytes())
                                .attribute(IFLA_BOND_AD_INFO_PARTNER_MAC, &[0; 6])
                        })
                    })
            });
        without_nested_flags(request.finish(0).unwrap())
    }

    /// Clears `NLA_F_NESTED` in every attribute header (walking the nests built above).
    fn without_nested_flags(mut message: Vec<u8>) -> Vec<u8> {
        fn clear(bytes: &mut [u8]) {
            let mut at = 0;
            while at + 4 <= bytes.len() {
                let length = usize::from(u16::from_ne_bytes([bytes[at], bytes[at + 1]]));
                if length < 4 || at + length > bytes.len() {
                    return;
                }
                if bytes[at + 3] & 0x80 != 0 {
                    bytes[at + 3] &= 0x7f;
                    clear(&mut bytes[at + 4..at + length]);
                }
                at += (length + 3) & !3;
            }
        }
        clear(&mut message[HEADER_LEN + nlmsg::IFINFOMSG_LEN..]);
        message
    }

    #[test]
    fn a_port_reads_its_bond_state_mii_status_and_lacp_states() {
        let message = kernel_like_port();
        let read = read_link(&message[HEADER_LEN..]).unwrap();
        assert!(read.is_bond_port() && !read.is_bond() && !read.is_failover());
        assert_eq!((read.link.index, read.master), (4, Some(7)));
        assert_eq!(read.bond(), None);
        assert_eq!(
            read.port().unwrap(),
            PortInfo {
                state: Some(PortState::Backup),
                mii_status: Some(MiiStatus::Down),
                link_failure_count: Some(3),
                perm_hwaddr: Some([2, 0, 0, 0, 0, 4]),
                queue_id: Some(0),
                ad_aggregator_id: Some(1),
                ad_actor_oper_port_state: Some(0x4f),
                ad_partner_oper_port_state: Some(lacp_state::TIMEOUT),
            }
        );
    }

    #[test]
    fn a_failover_notification_is_told_apart_and_carries_the_ad_info() {
        let message = kernel_like_bond_failover();
        let read = read_link(&message[HEADER_LEN..]).unwrap();
        assert!(read.is_failover() && read.is_bond());
        assert_eq!(read.mtu, Some(1500));
        let info = read.bond().unwrap();
        assert_eq!(info.options, every_option());
        assert_eq!(
            info.ad,
            Some(AdInfo {
                aggregator_id: Some(1),
                num_ports: Some(2),
                actor_key: Some(9),
                partner_key: Some(1),
                partner_mac: Some([0; 6]),
            })
        );
        // A link without link info is neither; a master of 0 is no master.
        let plain = Request::new(RTM_NEWLINK, 0, &nlmsg::ifinfomsg(2, 0, 0))
            .attribute(IFLA_MASTER, &0u32.to_ne_bytes())
            .attribute(IFLA_EVENT, &1u32.to_ne_bytes())
            .finish(0)
            .unwrap();
        let read = read_link(&plain[HEADER_LEN..]).unwrap();
        assert!(!read.is_bond() && !read.is_bond_port() && !read.is_failover());
        assert_eq!((read.bond(), read.port()), (None, None));
    }

    #[test]
    fn wrong_sizes_and_unknown_numbers_read_as_none() {
        let data = Request::new(0, 0, &[])
            .attribute(IFLA_BOND_MODE, &[9]) // no such mode
            .attribute(IFLA_BOND_MIIMON, &[1, 2, 3]) // 3 bytes
            .attribute(IFLA_BOND_AD_SELECT, &300u16.to_ne_bytes()) // over u8
            .attribute(IFLA_BOND_USE_CARRIER, &[]) // empty
            .nested(IFLA_BOND_ARP_IP_TARGET, |r| {
                r.attribute(0, &[10, 0, 0]).attribute(1, &[10, 0, 0, 1])
            })
            .finish(0)
            .unwrap();
        let info = read_bond_data(&data[HEADER_LEN..]);
        assert_eq!(
            info.options,
            BondOptions {
                arp_ip_target: Some(vec![Ipv4Addr::new(10, 0, 0, 1)]),
                ..BondOptions::default()
            }
        );
        let port = read_port_data(&[5, 0, 4, 0, 1, 0, 0, 0]); // a 1-byte hardware address
        assert_eq!(port, PortInfo::default());
        assert_eq!(read_link(&[0; 15]), None);
    }

    /// Reads everything a caller would from `bytes`.
    fn read_everything(bytes: &[u8]) {
        for message in nlmsg::messages(bytes) {
            let Ok(message) = message else { break };
            if let Some(read) = read_link(message.payload) {
                let _ = (read.bond(), read.port(), read.is_failover());
            }
        }
        let _ = read_bond_data(bytes);
        let _ = read_port_data(bytes);
        let _ = read_link(bytes).map(|read| (read.bond(), read.port()));
    }

    #[test]
    fn truncated_and_corrupted_link_messages_never_panic() {
        let samples = [kernel_like_port(), kernel_like_bond_failover()];
        for sample in &samples {
            for cut in 0..sample.len() {
                read_everything(&sample[..cut]);
                read_everything(&sample[cut..]);
            }
        }
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for sample in &samples {
            for _ in 0..3000 {
                let mut bytes = sample.clone();
                for _ in 0..1 + next() % 8 {
                    let at = usize::try_from(next() % u64::try_from(bytes.len()).unwrap()).unwrap();
                    bytes[at] = u8::try_from(next() & 0xff).unwrap();
                }
                read_everything(&bytes);
            }
        }
        // Pure garbage of every small length.
        for length in 0..64 {
            let bytes: Vec<u8> = (0..length)
                .map(|_| u8::try_from(next() & 0xff).unwrap())
                .collect();
            read_everything(&bytes);
        }
    }

    #[test]
    fn errors_name_the_links_the_errno_and_what_to_do() {
        let busy = BondError::Kernel {
            action: BondAction::SetOptions {
                bond: "bond0".into(),
            },
            source: RtnlError::Kernel(libc::EBUSY),
        };
        let text = busy.to_string();
        assert!(
            text.contains("bond0") && text.contains("set it down first"),
            "{text}"
        );
        assert_eq!(busy.errno(), Some(libc::EBUSY));
        let up = BondError::Kernel {
            action: BondAction::Enslave {
                port: "eth2".into(),
                bond: "bond0".into(),
            },
            source: RtnlError::Kernel(libc::EPERM),
        };
        assert!(
            up.to_string().contains("add port eth2 to bond bond0"),
            "{up}"
        );
        let missing = BondError::NoSuchLink {
            action: BondAction::Release {
                port: "eth9".into(),
            },
            link: "eth9".into(),
        };
        assert!(
            missing.to_string().contains("no link called eth9"),
            "{missing}"
        );
        assert_eq!(missing.errno(), None);
        // An errno without advice still names the action and the kernel's words.
        let other = BondError::Kernel {
            action: BondAction::ReadBonds,
            source: RtnlError::Kernel(libc::ENOBUFS),
        };
        assert!(other
            .to_string()
            .starts_with("kernel refused to read the bonds: "));
    }
}
