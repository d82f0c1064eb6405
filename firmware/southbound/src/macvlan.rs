//! VRRP `use_vmac`: the macvlan links that carry a virtual router MAC, over route netlink, and
//! the interface knobs they need, through procfs.
//!
//! Why this exists: keepalived's `use_vmac` puts each instance's virtual addresses on a
//! macvlan of the instance's interface whose MAC is the RFC's virtual router MAC
//! (00-00-5E-00-01-{VRID}, IPv6 00-00-5E-00-02-{VRID}) and sends the adverts from it, so the
//! switches of an L2 fabric learn that MAC where the master is and nothing has to flush its
//! ARP cache on a failover. A macvlan is a link of kind `macvlan` made with `RTM_NEWLINK`
//! (`IFLA_LINK` the parent, `IFLA_ADDRESS` the MAC, `IFLA_LINKINFO` / `IFLA_INFO_DATA` /
//! `IFLA_MACVLAN_MODE`). The requests are built here by pure functions (tested byte for byte
//! against `<linux/if_link.h>`), [`decide`] says what to do with what the kernel has under the
//! name (keep it, fix its MAC or mode in place, replace one on another parent, refuse a link
//! that is no macvlan), and [`MacvlanExecutor`] sends them over its own [`crate::rtnl`] socket,
//! never the VRRP engine's: deleting a link waits for an RCU grace period (tens of ms).
//!
//! The mode is private (`MACVLAN_MODE_PRIVATE`), as keepalived's: the kernel hands a multicast
//! frame whose source MAC is one of the port's own macvlans (the partner's advert from the same
//! virtual MAC) to that macvlan alone, so the VRRP socket of a vmac instance listens on the
//! macvlan (drivers/net/macvlan.c, `macvlan_handle_frame`).
//!
//! The knobs are keepalived's (`vrrp_if_config.c`): on the macvlan `arp_ignore=1` (answer ARP
//! only for its own addresses), and for IPv4 `accept_local=1`, `rp_filter=0` (adverts arrive on
//! a link without an address of their subnet), `promote_secondaries=1`; on the parent of an IPv4
//! macvlan `arp_ignore=1` and `arp_filter=1` (the parent must not answer ARP for the virtual
//! addresses), put back when its last macvlan goes; and since the effective `rp_filter` is the
//! larger of `all` and the link's, a non-zero `net.ipv4.conf.all.rp_filter` is moved onto
//! `default` and every link before `all` is set to 0 ([`rp_filter_moves`]), and moved back later.
//! An IPv4 macvlan has IPv6 off, as keepalived's. Where Tandem differs: the parent also gets
//! `arp_announce=2` ([`parent_sysctls`] says why), and an IPv6 macvlan gets no address of its
//! own (`addr_gen_mode` none, no router advertisements, no SLAAC): keepalived copies the
//! parent's link-local address onto it, which makes a backup join that address's
//! solicited-node group from the virtual MAC; here the adverts' link-local source is the
//! parent's, sent with `IPV6_FREEBIND` ([`crate::vrrp_socket::VrrpSocket::open_on_vmac`]).

use std::sync::{Arc, Mutex, PoisonError};

use crate::bond::{IFLA_INFO_DATA, IFLA_INFO_KIND, IFLA_LINKINFO};
use crate::nlmsg::{
    self, Request, IFF_UP, IFLA_IFNAME, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST, RTM_DELLINK, RTM_GETLINK, RTM_NEWLINK,
};
use crate::rtnl::{Rtnl, RtnlError};
use crate::sysctl::{self, SysctlError};

/// The link kind (`IFLA_INFO_KIND`).
pub const KIND: &str = "macvlan";
/// `IFLA_ADDRESS`: the link's MAC.
pub const IFLA_ADDRESS: u16 = 1;
/// `IFLA_LINK`: the parent's interface index.
pub const IFLA_LINK: u16 = 5;
/// `IFLA_MACVLAN_MODE` inside `IFLA_INFO_DATA` (u32).
pub const IFLA_MACVLAN_MODE: u16 = 1;
/// `MACVLAN_MODE_PRIVATE`: no traffic between the port's macvlans, none filtered by source MAC.
pub const MODE_PRIVATE: u32 = 1;
/// The first four bytes of every VRRP virtual router MAC (RFC 9568 section 7.3).
const VRRP_MAC_PREFIX: [u8; 4] = [0x00, 0x00, 0x5e, 0x00];

/// The macvlan one instance needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MacvlanSpec {
    /// The macvlan's name (`vrrp.51`).
    pub name: String,
    /// The instance's interface.
    pub parent: String,
    /// The virtual router MAC.
    pub mac: [u8; 6],
    /// The instance's family: which knobs the macvlan gets.
    pub ipv6: bool,
}

/// True for 00-00-5E-00-01-xx and 00-00-5E-00-02-xx.
pub fn is_virtual_router_mac(mac: &[u8; 6]) -> bool {
    mac[..4] == VRRP_MAC_PREFIX && matches!(mac[4], 1 | 2)
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn mac_text(mac: &[u8; 6]) -> String {
    let parts: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
    parts.join(":")
}

/// `RTM_NEWLINK` making macvlan `name` on the link with index `parent`, with `mac`, in private
/// mode, down. An existing link of that name is `EEXIST`.
pub fn create_request(name: &str, parent: u32, mac: &[u8; 6]) -> Request {
    Request::new(
        RTM_NEWLINK,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        &nlmsg::ifinfomsg(0, 0, 0),
    )
    .string(IFLA_IFNAME, name)
    .attribute(IFLA_LINK, &parent.to_ne_bytes())
    .attribute(IFLA_ADDRESS, mac)
    .nested(IFLA_LINKINFO, private_mode)
}

/// `RTM_NEWLINK` giving the existing macvlan with index `index` the MAC `mac` and private mode
/// (the kernel's `macvlan_changelink`; a MAC change of an up macvlan is checked against the
/// port's other macvlans, `EADDRINUSE`).
pub fn fix_request(index: u32, mac: &[u8; 6]) -> Request {
    Request::new(
        RTM_NEWLINK,
        NLM_F_REQUEST | NLM_F_ACK,
        &nlmsg::ifinfomsg(index, 0, 0),
    )
    .attribute(IFLA_ADDRESS, mac)
    .nested(IFLA_LINKINFO, private_mode)
}

fn private_mode(request: Request) -> Request {
    request
        .string(IFLA_INFO_KIND, KIND)
        .nested(IFLA_INFO_DATA, |r| {
            r.attribute(IFLA_MACVLAN_MODE, &MODE_PRIVATE.to_ne_bytes())
        })
}

/// What the kernel says of one link, as far as a macvlan decision needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkFacts {
    pub index: u32,
    pub name: String,
    pub up: bool,
    /// `IFLA_INFO_KIND` (None: a link without one, such as a physical port).
    pub kind: Option<String>,
    /// `IFLA_LINK`: the parent of a stacked link.
    pub parent: Option<u32>,
    /// `IFLA_ADDRESS` when it is an Ethernet MAC.
    pub mac: Option<[u8; 6]>,
    /// `IFLA_MACVLAN_MODE` of a macvlan.
    pub mode: Option<u32>,
}

impl LinkFacts {
    pub fn is_macvlan(&self) -> bool {
        self.kind.as_deref() == Some(KIND)
    }
}

/// Reads a link message's payload (`None`: shorter than `struct ifinfomsg`); what is missing
/// or malformed stays `None`.
pub fn read_link(payload: &[u8]) -> Option<LinkFacts> {
    let link = nlmsg::link(payload)?;
    let mut facts = LinkFacts {
        index: link.index,
        name: String::from_utf8_lossy(link.name.unwrap_or_default()).into_owned(),
        up: link.flags & IFF_UP != 0,
        kind: None,
        parent: None,
        mac: None,
        mode: None,
    };
    for (kind, value) in nlmsg::attributes(payload.get(nlmsg::IFINFOMSG_LEN..)?) {
        match kind {
            IFLA_ADDRESS => facts.mac = <[u8; 6]>::try_from(value).ok(),
            IFLA_LINK => facts.parent = u32_value(value),
            IFLA_LINKINFO => {
                for (kind, value) in nlmsg::attributes(value) {
                    match kind {
                        IFLA_INFO_KIND => {
                            let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
                            facts.kind = value
                                .get(..end)
                                .map(|k| String::from_utf8_lossy(k).into_owned());
                        }
                        IFLA_INFO_DATA => {
                            for (kind, value) in nlmsg::attributes(value) {
                                if kind == IFLA_MACVLAN_MODE {
                                    facts.mode = u32_value(value);
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Some(facts)
}

fn u32_value(value: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(value).ok().map(u32::from_ne_bytes)
}

/// What to do so that the link called `spec.name` is the macvlan `spec` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Nothing there: make it.
    Create,
    /// It is right as it is.
    Keep,
    /// A macvlan on the right parent with another MAC or mode: changed in place.
    Fix,
    /// A macvlan on another parent: deleted and made again.
    Replace,
    /// A link that is no macvlan: never touched.
    Refuse { kind: String },
}

/// Decides from what the kernel has under the name (`existing`) and the parent's index.
pub fn decide(existing: Option<&LinkFacts>, parent: u32, spec: &MacvlanSpec) -> Decision {
    let Some(link) = existing else {
        return Decision::Create;
    };
    if !link.is_macvlan() {
        return Decision::Refuse {
            kind: link.kind.clone().unwrap_or_else(|| "physical".to_owned()),
        };
    }
    if link.parent != Some(parent) {
        Decision::Replace
    } else if link.mac != Some(spec.mac) || link.mode != Some(MODE_PRIVATE) {
        Decision::Fix
    } else {
        Decision::Keep
    }
}

/// What [`MacvlanExecutor::ensure_link`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    Created,
    Kept,
    Fixed,
    Replaced,
}

impl Ensured {
    /// True when the link is new (a new interface index): sockets bound to the old one are
    /// stale.
    pub fn is_new(self) -> bool {
        matches!(self, Ensured::Created | Ensured::Replaced)
    }
}

impl core::fmt::Display for Ensured {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Ensured::Created => "created",
            Ensured::Kept => "kept",
            Ensured::Fixed => "fixed (MAC or mode)",
            Ensured::Replaced => "replaced (it was on another interface)",
        })
    }
}

/// The knobs of macvlan `name` (dotted sysctl keys and values), in the order they are written:
/// before the link comes up, so IPv6 never starts on an IPv4 macvlan and an IPv6 one never
/// makes a link-local address from the virtual MAC.
pub fn vmac_sysctls(name: &str, ipv6: bool) -> Vec<(String, &'static str)> {
    // Slashes: the name may hold dots (`crate::sysctl::path_of`).
    let v4 = |knob: &str| format!("net/ipv4/conf/{name}/{knob}");
    let v6 = |knob: &str| format!("net/ipv6/conf/{name}/{knob}");
    let mut out = vec![(v4("arp_ignore"), "1")];
    if ipv6 {
        out.push((v6("disable_ipv6"), "0"));
        // IN6_ADDR_GEN_MODE_NONE: no link-local address (and no SLAAC with it off).
        out.push((v6("addr_gen_mode"), "1"));
        out.push((v6("accept_ra"), "0"));
        out.push((v6("autoconf"), "0"));
        // One group per report, so the VRRP group's can be kept off the wire alone
        // (`crate::vmac_filter`).
        out.push((v6("force_mld_version"), "1"));
    } else {
        out.push((v4("accept_local"), "1"));
        out.push((v4("rp_filter"), "0"));
        out.push((v4("promote_secondaries"), "1"));
        out.push((v6("disable_ipv6"), "1"));
    }
    out
}

/// The knobs an IPv4 macvlan needs on its parent (saved before, put back after the last one):
/// keepalived's two, and `arp_announce=2`, which keepalived leaves alone. Without it, a master
/// answering a client from a virtual address over the parent asks for the client's MAC with the
/// virtual address as sender, from the parent's MAC, and the client's entry for the virtual
/// address moves off the virtual MAC; with it the parent's own address asks.
pub fn parent_sysctls(parent: &str) -> [(String, &'static str); 3] {
    [
        (format!("net/ipv4/conf/{parent}/arp_ignore"), "1"),
        (format!("net/ipv4/conf/{parent}/arp_filter"), "1"),
        (format!("net/ipv4/conf/{parent}/arp_announce"), "2"),
    ]
}

/// `rp_filter` knobs (dotted keys) and values.
pub type RpFilterWrites = Vec<(String, u8)>;

/// Writes to move a non-zero `net.ipv4.conf.all.rp_filter` off `all` without loosening any
/// link (keepalived's `clear_rp_filter`): `default` and every link below `all` are raised to
/// it, then `all` goes to 0. `links` are the per-link values (`conf/<link>/rp_filter`, without
/// `all` and `default`). Empty when `all` is 0. The second list is what puts it back (applied
/// only where the value is still the one written).
pub fn rp_filter_moves(
    all: u8,
    default: u8,
    links: &[(String, u8)],
) -> (RpFilterWrites, RpFilterWrites) {
    let mut moves = Vec::new();
    let mut back = Vec::new();
    if all == 0 {
        return (moves, back);
    }
    let key = |name: &str| format!("net/ipv4/conf/{name}/rp_filter");
    if default < all {
        moves.push((key("default"), all));
        back.push((key("default"), default));
    }
    for (name, value) in links {
        if *value < all {
            moves.push((key(name), all));
            back.push((key(name), *value));
        }
    }
    moves.push((key("all"), 0));
    back.push((key("all"), all));
    (moves, back)
}

/// One `rp_filter` write of [`move_all_rp_filter`]: the key, the value written, the value
/// before.
pub type RpFilterMove = (String, u8, u8);

/// Moves a non-zero `net.ipv4.conf.all.rp_filter` onto `default` and every link
/// ([`rp_filter_moves`] over what procfs holds now); returns each write, for
/// [`put_back_rp_filter`]. Nothing when `all` is 0.
pub fn move_all_rp_filter() -> Result<Vec<RpFilterMove>, SysctlError> {
    let read = |key: &str| sysctl::get(key).ok().and_then(|v| v.parse::<u8>().ok());
    let all = read("net/ipv4/conf/all/rp_filter").unwrap_or(0);
    if all == 0 {
        return Ok(Vec::new());
    }
    let default = read("net/ipv4/conf/default/rp_filter").unwrap_or(0);
    let mut links = Vec::new();
    if let Ok(entries) = std::fs::read_dir(sysctl::path_of("net/ipv4/conf")) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "all" || name == "default" {
                continue;
            }
            if let Some(value) = read(&format!("net/ipv4/conf/{name}/rp_filter")) {
                links.push((name, value));
            }
        }
    }
    let (moves, back) = rp_filter_moves(all, default, &links);
    let mut done = Vec::new();
    for ((key, written), (_, before)) in moves.into_iter().zip(back) {
        sysctl::set(&key, &written.to_string())?;
        done.push((key, written, before));
    }
    Ok(done)
}

/// Puts back what [`move_all_rp_filter`] wrote, last write first, where the knob still holds
/// the value written (a link made or changed since keeps its own).
pub fn put_back_rp_filter(moved: &[RpFilterMove]) {
    for (key, written, before) in moved.iter().rev() {
        if sysctl::get(key).ok() == Some(written.to_string()) {
            let _ = sysctl::set(key, &before.to_string());
        }
    }
}

/// Why a macvlan could not be made, kept or removed.
#[derive(Debug, thiserror::Error)]
pub enum MacvlanError {
    /// The route-netlink socket could not be opened.
    #[error("cannot open a route-netlink socket for the vmac links: {0} (restart tandem)")]
    Connect(std::io::Error),
    /// The instance's interface is not there.
    #[error("interface {parent} does not exist, so vmac {name} cannot be made on it; fix the instance's interface")]
    NoParent { name: String, parent: String },
    /// The name belongs to a link that is no macvlan (Tandem never deletes it).
    #[error("{name} is already a {kind} link, not a macvlan; Tandem leaves it alone: set vmac_interface to another name")]
    NotMacvlan { name: String, kind: String },
    /// The kernel refused a request.
    #[error("cannot {action} {name}: {source}{}", hint(.source))]
    Kernel {
        action: &'static str,
        name: String,
        source: RtnlError,
    },
    /// A knob could not be written.
    #[error(transparent)]
    Sysctl(#[from] SysctlError),
}

fn hint(source: &RtnlError) -> &'static str {
    match source.errno() {
        Some(libc::EOPNOTSUPP) => " (the macvlan module is not loaded: is it in the image?)",
        Some(libc::EADDRINUSE) => {
            " (another macvlan of that interface has the MAC: two instances with one VRID and family on it?)"
        }
        Some(libc::EEXIST) => " (a link of that name appeared meanwhile; apply again)",
        _ => "",
    }
}

/// Makes, fixes, reads and deletes macvlans over a route-netlink socket of its own.
///
/// Blocking, like every [`Rtnl`] exchange: call it from a thread that may wait (the VRRP
/// engine's vmac worker runs it on the blocking pool). Clones share the socket.
#[derive(Debug, Clone)]
pub struct MacvlanExecutor {
    rtnl: Arc<Mutex<Rtnl>>,
}

impl MacvlanExecutor {
    pub fn connect() -> Result<MacvlanExecutor, MacvlanError> {
        Ok(MacvlanExecutor {
            rtnl: Arc::new(Mutex::new(Rtnl::open().map_err(MacvlanError::Connect)?)),
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

    fn execute(
        &self,
        request: Request,
        action: &'static str,
        name: &str,
    ) -> Result<(), MacvlanError> {
        self.exchange(request, &mut |_, _| {})
            .map_err(|source| MacvlanError::Kernel {
                action,
                name: name.to_owned(),
                source,
            })
    }

    /// The link called `name` (None: there is none).
    pub fn find(&self, name: &str) -> Result<Option<LinkFacts>, MacvlanError> {
        let request = Request::new(RTM_GETLINK, NLM_F_REQUEST, &nlmsg::ifinfomsg(0, 0, 0))
            .string(IFLA_IFNAME, name);
        let mut found = None;
        match self.exchange(request, &mut |kind, payload| {
            if kind == RTM_NEWLINK && found.is_none() {
                found = read_link(payload);
            }
        }) {
            Ok(()) => Ok(found),
            Err(error) if error.errno() == Some(libc::ENODEV) => Ok(None),
            Err(source) => Err(MacvlanError::Kernel {
                action: "look up",
                name: name.to_owned(),
                source,
            }),
        }
    }

    /// Every link, from one dump.
    pub fn links(&self) -> Result<Vec<LinkFacts>, MacvlanError> {
        let request = Request::new(
            RTM_GETLINK,
            NLM_F_REQUEST | NLM_F_DUMP,
            &nlmsg::ifinfomsg(0, 0, 0),
        );
        let mut out = Vec::new();
        self.exchange(request, &mut |kind, payload| {
            if kind == RTM_NEWLINK {
                out.extend(read_link(payload));
            }
        })
        .map_err(|source| MacvlanError::Kernel {
            action: "list",
            name: "the links".to_owned(),
            source,
        })?;
        Ok(out)
    }

    /// Makes the link called `spec.name` the macvlan `spec` asks for, leaving it as it was if
    /// it is already (up or down); a new one is down. Another macvlan of the same parent with
    /// the same MAC under another name (the instance's vmac before a rename) is deleted first:
    /// the kernel lets only one of them up.
    pub fn ensure_link(&self, spec: &MacvlanSpec) -> Result<Ensured, MacvlanError> {
        let parent = self
            .find(&spec.parent)?
            .ok_or_else(|| MacvlanError::NoParent {
                name: spec.name.clone(),
                parent: spec.parent.clone(),
            })?;
        let existing = self.find(&spec.name)?;
        match decide(existing.as_ref(), parent.index, spec) {
            Decision::Keep => Ok(Ensured::Kept),
            Decision::Refuse { kind } => Err(MacvlanError::NotMacvlan {
                name: spec.name.clone(),
                kind,
            }),
            Decision::Fix => {
                let index = existing.map_or(0, |link| link.index);
                self.execute(
                    fix_request(index, &spec.mac),
                    "change the MAC or mode of",
                    &spec.name,
                )?;
                Ok(Ensured::Fixed)
            }
            decision @ (Decision::Create | Decision::Replace) => {
                if let Some(link) = existing {
                    self.execute(delete_request(link.index), "delete", &spec.name)?;
                }
                for twin in self.links()?.iter().filter(|link| {
                    link.is_macvlan()
                        && link.parent == Some(parent.index)
                        && link.mac == Some(spec.mac)
                        && link.name != spec.name
                }) {
                    self.execute(delete_request(twin.index), "delete", &twin.name)?;
                }
                self.execute(
                    create_request(&spec.name, parent.index, &spec.mac),
                    "create macvlan",
                    &spec.name,
                )?;
                Ok(if decision == Decision::Create {
                    Ensured::Created
                } else {
                    Ensured::Replaced
                })
            }
        }
    }

    /// Sets `name` administratively up.
    pub fn set_up(&self, name: &str) -> Result<(), MacvlanError> {
        let index =
            self.find(name)?
                .map(|link| link.index)
                .ok_or_else(|| MacvlanError::Kernel {
                    action: "set up",
                    name: name.to_owned(),
                    source: RtnlError::Kernel(libc::ENODEV),
                })?;
        self.execute(
            crate::net::link_request(index, IFF_UP, IFF_UP),
            "set up",
            name,
        )
    }

    /// Deletes `name` if it is a macvlan; true when one was deleted (a missing link is done, a
    /// link of another kind is refused).
    pub fn delete(&self, name: &str) -> Result<bool, MacvlanError> {
        let Some(link) = self.find(name)? else {
            return Ok(false);
        };
        if !link.is_macvlan() {
            return Err(MacvlanError::NotMacvlan {
                name: name.to_owned(),
                kind: link.kind.unwrap_or_else(|| "physical".to_owned()),
            });
        }
        match self.execute(delete_request(link.index), "delete", name) {
            Err(MacvlanError::Kernel { source, .. }) if source.errno() == Some(libc::ENODEV) => {
                Ok(false)
            }
            other => other.map(|()| true),
        }
    }

    /// The private-mode macvlans with a VRRP virtual router MAC (what a crashed predecessor may
    /// have left).
    pub fn virtual_router_macvlans(&self) -> Result<Vec<LinkFacts>, MacvlanError> {
        Ok(self
            .links()?
            .into_iter()
            .filter(|link| {
                link.is_macvlan()
                    && link.mode == Some(MODE_PRIVATE)
                    && link.mac.as_ref().is_some_and(is_virtual_router_mac)
            })
            .collect())
    }
}

/// `RTM_DELLINK` of link `index`.
pub fn delete_request(index: u32) -> Request {
    Request::new(
        RTM_DELLINK,
        NLM_F_REQUEST | NLM_F_ACK,
        &nlmsg::ifinfomsg(index, 0, 0),
    )
}

/// Writes `value` to `key` unless it holds it already; returns the value it held (None: the
/// knob could not be read, and was written anyway).
pub fn set_sysctl(key: &str, value: &str) -> Result<Option<String>, SysctlError> {
    let before = sysctl::get(key).ok();
    if before.as_deref() != Some(value) {
        sysctl::set(key, value)?;
    }
    Ok(before)
}

#[cfg(test)]
#[cfg(target_endian = "little")] // the expected bytes are written little-endian
mod tests {
    use super::*;
    use crate::nlmsg::HEADER_LEN;

    #[test]
    fn constants_match_the_uapi_headers() {
        assert_eq!(IFLA_ADDRESS, libc::IFLA_ADDRESS);
        assert_eq!(IFLA_LINK, libc::IFLA_LINK);
        // `enum macvlan_mode`: PRIVATE 1, VEPA 2, BRIDGE 4, PASSTHRU 8, SOURCE 16;
        // IFLA_MACVLAN_MODE is the first of `IFLA_MACVLAN_*`.
        assert_eq!((MODE_PRIVATE, IFLA_MACVLAN_MODE), (1, 1));
    }

    #[test]
    fn a_macvlan_is_created_on_its_parent_with_the_virtual_mac_in_private_mode() {
        let request = create_request("vrrp.51", 7, &[0, 0, 0x5e, 0, 1, 51]);
        let bytes = request.finish(9).unwrap();
        // Length 92, RTM_NEWLINK, REQUEST | ACK | EXCL | CREATE, sequence 9.
        assert_eq!(
            bytes[..HEADER_LEN],
            [92, 0, 0, 0, 16, 0, 0x05, 0x06, 9, 0, 0, 0, 0, 0, 0, 0]
        );
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // ifinfomsg: new link
            12, 0, 3, 0, b'v', b'r', b'r', b'p', b'.', b'5', b'1', 0, // IFLA_IFNAME
            8, 0, 5, 0, 7, 0, 0, 0, // IFLA_LINK
            10, 0, 1, 0, 0, 0, 0x5e, 0, 1, 51, 0, 0, // IFLA_ADDRESS
            28, 0, 18, 0x80, // IFLA_LINKINFO | NLA_F_NESTED
                12, 0, 1, 0, b'm', b'a', b'c', b'v', b'l', b'a', b'n', 0, // IFLA_INFO_KIND
                12, 0, 2, 0x80, // IFLA_INFO_DATA | NLA_F_NESTED
                    8, 0, 1, 0, 1, 0, 0, 0, // IFLA_MACVLAN_MODE private
        ];
        assert_eq!(&bytes[HEADER_LEN..], expected);
        // A fix names the link by index and carries no name or parent.
        let fix = fix_request(12, &[0, 0, 0x5e, 0, 2, 9]).finish(1).unwrap();
        assert_eq!(fix[4..8], [16, 0, 0x05, 0]);
        assert_eq!(fix[HEADER_LEN + 4..HEADER_LEN + 8], 12u32.to_ne_bytes());
        assert!(!fix.windows(7).any(|w| w == b"vrrp.51"));
    }

    /// A kernel-like `RTM_NEWLINK` payload: what `create_request` sends, with an index.
    fn kernel_like(name: &str, parent: u32, mac: [u8; 6], mode: u32, kind: &str) -> Vec<u8> {
        Request::new(RTM_NEWLINK, 0, &nlmsg::ifinfomsg(33, IFF_UP, 0))
            .string(IFLA_IFNAME, name)
            .attribute(IFLA_LINK, &parent.to_ne_bytes())
            .attribute(IFLA_ADDRESS, &mac)
            .nested(IFLA_LINKINFO, |r| {
                r.string(IFLA_INFO_KIND, kind).nested(IFLA_INFO_DATA, |r| {
                    r.attribute(IFLA_MACVLAN_MODE, &mode.to_ne_bytes())
                })
            })
            .finish(1)
            .unwrap()[HEADER_LEN..]
            .to_vec()
    }

    #[test]
    fn links_read_back_and_the_decision_follows_parent_mac_and_mode() {
        let mac = [0, 0, 0x5e, 0, 1, 51];
        let spec = MacvlanSpec {
            name: "vrrp.51".into(),
            parent: "eth0".into(),
            mac,
            ipv6: false,
        };
        let read = read_link(&kernel_like("vrrp.51", 7, mac, MODE_PRIVATE, KIND)).unwrap();
        assert_eq!(
            read,
            LinkFacts {
                index: 33,
                name: "vrrp.51".into(),
                up: true,
                kind: Some("macvlan".into()),
                parent: Some(7),
                mac: Some(mac),
                mode: Some(MODE_PRIVATE),
            }
        );
        assert_eq!(decide(Some(&read), 7, &spec), Decision::Keep);
        assert_eq!(decide(None, 7, &spec), Decision::Create);
        assert_eq!(decide(Some(&read), 8, &spec), Decision::Replace);
        let bridge_mode = read_link(&kernel_like("vrrp.51", 7, mac, 4, KIND)).unwrap();
        assert_eq!(decide(Some(&bridge_mode), 7, &spec), Decision::Fix);
        let other_mac = read_link(&kernel_like("vrrp.51", 7, [2; 6], MODE_PRIVATE, KIND)).unwrap();
        assert_eq!(decide(Some(&other_mac), 7, &spec), Decision::Fix);
        let vlan = read_link(&kernel_like("vrrp.51", 7, mac, 0, "vlan")).unwrap();
        assert_eq!(
            decide(Some(&vlan), 7, &spec),
            Decision::Refuse {
                kind: "vlan".into()
            }
        );
        // Truncations never panic and a short payload is none.
        let bytes = kernel_like("vrrp.51", 7, mac, MODE_PRIVATE, KIND);
        for cut in 0..bytes.len() {
            let _ = read_link(&bytes[..cut]);
        }
        assert_eq!(read_link(&bytes[..8]), None);
    }

    #[test]
    fn knobs_follow_keepalived_per_family() {
        let v4 = vmac_sysctls("vrrp.51", false);
        for wanted in [
            ("net/ipv4/conf/vrrp.51/arp_ignore", "1"),
            ("net/ipv4/conf/vrrp.51/accept_local", "1"),
            ("net/ipv4/conf/vrrp.51/rp_filter", "0"),
            ("net/ipv4/conf/vrrp.51/promote_secondaries", "1"),
            ("net/ipv6/conf/vrrp.51/disable_ipv6", "1"),
        ] {
            assert!(v4.contains(&(wanted.0.to_owned(), wanted.1)), "{wanted:?}");
        }
        let v6 = vmac_sysctls("vrrp6.51", true);
        assert!(v6.contains(&("net/ipv6/conf/vrrp6.51/addr_gen_mode".to_owned(), "1")));
        assert!(v6.contains(&("net/ipv6/conf/vrrp6.51/accept_ra".to_owned(), "0")));
        assert!(!v6.iter().any(|(k, _)| k.ends_with("rp_filter")));
        assert_eq!(
            parent_sysctls("eth0")[1],
            ("net/ipv4/conf/eth0/arp_filter".to_owned(), "1")
        );
        assert!(is_virtual_router_mac(&[0, 0, 0x5e, 0, 2, 7]));
        assert!(!is_virtual_router_mac(&[0, 0, 0x5e, 0, 3, 7]));
        assert_eq!(mac_text(&[0, 0, 0x5e, 0, 1, 0x33]), "00:00:5e:00:01:33");
    }

    #[test]
    fn a_strict_all_rp_filter_moves_onto_every_link_before_it_is_cleared() {
        assert_eq!(rp_filter_moves(0, 1, &[]), (vec![], vec![]));
        let links = vec![("eth0".to_owned(), 0), ("eth1".to_owned(), 2)];
        let (moves, back) = rp_filter_moves(1, 0, &links);
        let key = |n: &str| format!("net/ipv4/conf/{n}/rp_filter");
        assert_eq!(
            moves,
            vec![(key("default"), 1), (key("eth0"), 1), (key("all"), 0)]
        );
        assert_eq!(
            back,
            vec![(key("default"), 0), (key("eth0"), 0), (key("all"), 1)]
        );
    }
}
