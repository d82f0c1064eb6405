//! Network changes as data, and the one executor that applies them over route netlink.
//!
//! Engines produce [`NetOp`]s; [`NetExecutor`] sends them to the kernel. Keeping the two apart
//! lets tests assert the exact operations an engine asks for without a kernel, and keeps every
//! netlink detail in one place.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex, PoisonError};

use crate::nlmsg::{
    self, Request, AF_INET, AF_INET6, IFA_ADDRESS, IFA_BROADCAST, IFA_FLAGS, IFA_F_NODAD,
    IFA_LOCAL, IFA_MULTICAST, IFF_UP, IFLA_IFNAME, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL,
    NLM_F_REQUEST, RTM_DELADDR, RTM_GETADDR, RTM_GETLINK, RTM_NEWADDR, RTM_NEWLINK, RTM_SETLINK,
};
use crate::rtnl::{Each, Rtnl, RtnlError};

/// One change to the kernel's network configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetOp {
    /// Give a link a new name (the link must be down).
    RenameLink { from: String, to: String },
    /// Administratively enable a link.
    SetLinkUp { name: String },
    /// Administratively disable a link.
    SetLinkDown { name: String },
    /// Add an address (IPv6 without duplicate address detection, usable at once). Adding an
    /// address that is already there succeeds.
    AddAddress {
        link: String,
        address: IpAddr,
        prefix_len: u8,
    },
    /// Remove an address. Removing one that is not there succeeds.
    DelAddress {
        link: String,
        address: IpAddr,
        prefix_len: u8,
    },
}

impl core::fmt::Display for NetOp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NetOp::RenameLink { from, to } => write!(f, "rename link {from} to {to}"),
            NetOp::SetLinkUp { name } => write!(f, "set link {name} up"),
            NetOp::SetLinkDown { name } => write!(f, "set link {name} down"),
            NetOp::AddAddress {
                link,
                address,
                prefix_len,
            } => {
                write!(f, "add address {address}/{prefix_len} to {link}")
            }
            NetOp::DelAddress {
                link,
                address,
                prefix_len,
            } => {
                write!(f, "remove address {address}/{prefix_len} from {link}")
            }
        }
    }
}

/// Why an operation failed.
#[derive(Debug)]
pub enum NetError {
    /// The netlink socket could not be opened (is this a Linux kernel with rtnetlink?).
    Connect(std::io::Error),
    /// The link named in the operation does not exist.
    NoSuchLink { op: NetOp },
    /// The kernel refused the operation.
    Kernel { op: NetOp, source: RtnlError },
}

impl core::fmt::Display for NetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NetError::Connect(source) => write!(f, "cannot open rtnetlink socket: {source}"),
            NetError::NoSuchLink { op } => write!(f, "cannot {op}: no such link"),
            NetError::Kernel { op, source } => write!(f, "kernel refused to {op}: {source}"),
        }
    }
}

impl std::error::Error for NetError {}

/// Wraps a netlink failure of `op`.
fn kernel_error(op: &NetOp) -> impl Fn(RtnlError) -> NetError + '_ {
    move |source| NetError::Kernel {
        op: op.clone(),
        source,
    }
}

/// Applies [`NetOp`]s over one route-netlink socket ([`crate::rtnl`]).
///
/// Interface indexes are cached by name (shared by every clone), so adding a VIP on a takeover
/// is one netlink round trip instead of two. A cached index is dropped when this executor
/// renames a link, and when the kernel answers `ENODEV` (the link is gone): the operation is then
/// retried once with a fresh lookup. Tandem is the only one renaming links on the appliance.
///
/// Clones share the socket; one request at a time holds it, for the microseconds the kernel
/// takes to answer (it answers inside `sendmsg`).
#[derive(Debug, Clone)]
pub struct NetExecutor {
    rtnl: Arc<Mutex<Rtnl>>,
    indexes: Arc<Mutex<HashMap<String, u32>>>,
}

impl NetExecutor {
    /// Opens the route-netlink socket (no runtime or driver task needed).
    pub fn connect() -> Result<NetExecutor, NetError> {
        Ok(NetExecutor {
            rtnl: Arc::new(Mutex::new(Rtnl::open().map_err(NetError::Connect)?)),
            indexes: Arc::default(),
        })
    }

    /// Applies `ops` in order, stopping at the first failure.
    pub async fn apply(&self, ops: &[NetOp]) -> Result<(), NetError> {
        for op in ops {
            self.apply_one(op)?;
        }
        Ok(())
    }

    /// Sends `request` and hands each answer to `each` (see [`Rtnl::exchange`]).
    fn exchange(&self, request: Request, each: Each<'_>) -> Result<(), RtnlError> {
        // A poisoned lock only means another thread panicked between two requests: the socket
        // and its sequence counter are still fine.
        let mut rtnl = self.rtnl.lock().unwrap_or_else(PoisonError::into_inner);
        rtnl.exchange(request, each)
    }

    fn apply_one(&self, op: &NetOp) -> Result<(), NetError> {
        let link = match op {
            NetOp::AddAddress { link, .. } | NetOp::DelAddress { link, .. } => link,
            NetOp::RenameLink { from, .. } => from,
            NetOp::SetLinkUp { name } | NetOp::SetLinkDown { name } => name,
        };
        let (index, cached) = self.index_of(link, op)?;
        let result = match self.apply_at(op, index) {
            Err(error) if cached && error.errno() == Some(libc::ENODEV) => {
                self.forget(link);
                let (index, _) = self.index_of(link, op)?;
                self.apply_at(op, index)
            }
            other => other,
        };
        if let NetOp::RenameLink { from, to } = op {
            // Whatever happened, the names may now mean other links.
            self.forget(from);
            self.forget(to);
        }
        result.map_err(kernel_error(op))
    }

    /// Sends `op` for the link with interface index `index`.
    fn apply_at(&self, op: &NetOp, index: u32) -> Result<(), RtnlError> {
        let (request, done_already) = match op {
            NetOp::AddAddress {
                address,
                prefix_len,
                ..
            } => {
                let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE;
                let mut request = address_request(RTM_NEWADDR, flags, index, *address, *prefix_len);
                if address.is_ipv6() {
                    request = request.attribute(IFA_FLAGS, &IFA_F_NODAD.to_ne_bytes());
                }
                // Already there: done.
                (request, libc::EEXIST)
            }
            NetOp::DelAddress {
                address,
                prefix_len,
                ..
            } => {
                let flags = NLM_F_REQUEST | NLM_F_ACK;
                let request = address_request(RTM_DELADDR, flags, index, *address, *prefix_len);
                // Not there: done.
                (request, libc::EADDRNOTAVAIL)
            }
            NetOp::RenameLink { to, .. } => (link_request(index, 0, 0).string(IFLA_IFNAME, to), 0),
            NetOp::SetLinkUp { .. } => (link_request(index, IFF_UP, IFF_UP), 0),
            NetOp::SetLinkDown { .. } => (link_request(index, 0, IFF_UP), 0),
        };
        match self.exchange(request, &mut |_, _| {}) {
            Err(error) if done_already != 0 && error.errno() == Some(done_already) => Ok(()),
            other => other,
        }
    }

    /// Drops the cached index of `name`.
    fn forget(&self, name: &str) {
        if let Ok(mut indexes) = self.indexes.lock() {
            indexes.remove(name);
        }
    }

    /// Interface index of the link called `name`, and whether it came from the cache.
    fn index_of(&self, name: &str, op: &NetOp) -> Result<(u32, bool), NetError> {
        let cached = self
            .indexes
            .lock()
            .ok()
            .and_then(|indexes| indexes.get(name).copied());
        if let Some(index) = cached {
            return Ok((index, true));
        }
        // One link by name: the kernel answers with that link alone, or ENODEV.
        let request = Request::new(RTM_GETLINK, NLM_F_REQUEST, &nlmsg::ifinfomsg(0, 0, 0))
            .string(IFLA_IFNAME, name);
        let mut found = None;
        let answer = self.exchange(request, &mut |kind, payload| {
            if kind == RTM_NEWLINK && found.is_none() {
                found = nlmsg::link(payload).map(|link| link.index);
            }
        });
        let index = match (answer, found) {
            (Ok(()), Some(index)) => index,
            (Ok(()), None) => return Err(NetError::NoSuchLink { op: op.clone() }),
            (Err(error), _) if error.errno() == Some(libc::ENODEV) => {
                return Err(NetError::NoSuchLink { op: op.clone() })
            }
            (Err(source), _) => return Err(kernel_error(op)(source)),
        };
        if let Ok(mut indexes) = self.indexes.lock() {
            indexes.insert(name.to_owned(), index);
        }
        Ok((index, false))
    }

    /// Addresses on the link called `name`, with prefix lengths, in kernel order (the first
    /// IPv4 address is the primary one).
    pub async fn addresses(&self, name: &str) -> Result<Vec<(IpAddr, u8)>, NetError> {
        let op = NetOp::SetLinkUp {
            name: name.to_owned(),
        };
        let (index, _) = self.index_of(name, &op)?;
        // Every family's addresses; the kernel ignores the index unless strict checking is on.
        let request = Request::new(
            RTM_GETADDR,
            NLM_F_REQUEST | NLM_F_DUMP,
            &nlmsg::ifaddrmsg(0, 0, 0),
        );
        let mut out = Vec::new();
        self.exchange(request, &mut |kind, payload| {
            if kind != RTM_NEWADDR {
                return;
            }
            if let Some(address) = nlmsg::address(payload) {
                if let (true, Some(ip)) = (address.index == index, address.address) {
                    out.push((ip, address.prefix_len));
                }
            }
        })
        .map_err(kernel_error(&op))?;
        Ok(out)
    }

    /// Names of every link, with whether it is administratively up.
    pub async fn links(&self) -> Result<Vec<(String, bool)>, NetError> {
        let op = NetOp::SetLinkUp {
            name: String::new(),
        };
        let request = Request::new(
            RTM_GETLINK,
            NLM_F_REQUEST | NLM_F_DUMP,
            &nlmsg::ifinfomsg(0, 0, 0),
        );
        let mut out = Vec::new();
        self.exchange(request, &mut |kind, payload| {
            if kind != RTM_NEWLINK {
                return;
            }
            if let Some(link) = nlmsg::link(payload) {
                if let Some(name) = link.name {
                    out.push((
                        String::from_utf8_lossy(name).into_owned(),
                        link.flags & IFF_UP != 0,
                    ));
                }
            }
        })
        .map_err(kernel_error(&op))?;
        Ok(out)
    }
}

/// An `RTM_SETLINK` for link `index` setting the `IFF_*` `flags` selected by `change`.
pub(crate) fn link_request(index: u32, flags: u32, change: u32) -> Request {
    // NLM_F_EXCL | NLM_F_CREATE as rtnetlink sent them (RTM_SETLINK ignores both).
    Request::new(
        RTM_SETLINK,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE,
        &nlmsg::ifinfomsg(index, flags, change),
    )
}

/// An address request naming one address on one link, with the attributes `ip address` sends:
/// IPv4 address, local and broadcast (below /31), IPv6 address and local (or multicast).
fn address_request(kind: u16, flags: u16, index: u32, address: IpAddr, prefix_len: u8) -> Request {
    match address {
        IpAddr::V4(v4) => {
            let request = Request::new(kind, flags, &nlmsg::ifaddrmsg(AF_INET, prefix_len, index));
            if v4.is_multicast() {
                return request;
            }
            let request = request
                .attribute(IFA_ADDRESS, &v4.octets())
                .attribute(IFA_LOCAL, &v4.octets());
            if prefix_len >= 31 {
                return request;
            }
            let host_bits = u32::MAX.checked_shr(u32::from(prefix_len)).unwrap_or(0);
            let broadcast = Ipv4Addr::from(u32::from(v4) | host_bits);
            request.attribute(IFA_BROADCAST, &broadcast.octets())
        }
        IpAddr::V6(v6) => {
            let request = Request::new(kind, flags, &nlmsg::ifaddrmsg(AF_INET6, prefix_len, index));
            if v6.is_multicast() {
                request.attribute(IFA_MULTICAST, &v6.octets())
            } else {
                request
                    .attribute(IFA_ADDRESS, &v6.octets())
                    .attribute(IFA_LOCAL, &v6.octets())
            }
        }
    }
}

/// The operations that give each assigned NIC its role name and bring it up. Links already named
/// after their role are only brought up, so a restarted daemon changes nothing it need not.
pub fn role_link_ops(assigned: &[(tandem_board::NicRole, String)]) -> Vec<NetOp> {
    let mut ops = Vec::new();
    for (role, current) in assigned {
        let wanted = role.interface_name();
        if current != wanted {
            ops.push(NetOp::SetLinkDown {
                name: current.clone(),
            });
            ops.push(NetOp::RenameLink {
                from: current.clone(),
                to: wanted.to_owned(),
            });
        }
        ops.push(NetOp::SetLinkUp {
            name: wanted.to_owned(),
        });
    }
    ops
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_board::NicRole;

    #[test]
    fn nics_are_renamed_while_down_then_brought_up() {
        let ops = role_link_ops(&[
            (NicRole::Public, "eth0".into()),
            (NicRole::Peer, "peer".into()),
        ]);
        assert_eq!(
            ops,
            vec![
                NetOp::SetLinkDown {
                    name: "eth0".into()
                },
                NetOp::RenameLink {
                    from: "eth0".into(),
                    to: "public".into()
                },
                NetOp::SetLinkUp {
                    name: "public".into()
                },
                NetOp::SetLinkUp {
                    name: "peer".into()
                },
            ]
        );
    }
}
