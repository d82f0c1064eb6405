//! Network changes as data, and the one executor that applies them over rtnetlink.
//!
//! Engines produce [`NetOp`]s; [`NetExecutor`] sends them to the kernel. Keeping the two apart
//! lets tests assert the exact operations an engine asks for without a kernel, and keeps every
//! netlink detail in one place.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use futures::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::link::LinkAttribute;
use rtnetlink::{AddressMessageBuilder, Handle, LinkUnspec};

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
    Kernel {
        op: NetOp,
        source: Box<rtnetlink::Error>,
    },
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
fn kernel_error(op: &NetOp) -> impl Fn(rtnetlink::Error) -> NetError + '_ {
    move |source| NetError::Kernel {
        op: op.clone(),
        source: Box::new(source),
    }
}

/// Applies [`NetOp`]s over one rtnetlink connection.
///
/// Interface indexes are cached by name (shared by every clone), so adding a VIP on a takeover
/// is one netlink round trip instead of two. A cached index is dropped when this executor
/// renames a link, and when the kernel answers `ENODEV` (the link is gone): the operation is then
/// retried once with a fresh lookup. Tandem is the only one renaming links on the appliance.
#[derive(Debug, Clone)]
pub struct NetExecutor {
    handle: Handle,
    indexes: Arc<Mutex<HashMap<String, u32>>>,
}

impl NetExecutor {
    /// Opens the rtnetlink connection; its driver task runs on the current tokio runtime.
    pub fn connect() -> Result<NetExecutor, NetError> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(NetError::Connect)?;
        tokio::spawn(connection);
        Ok(NetExecutor {
            handle,
            indexes: Arc::default(),
        })
    }

    /// Applies `ops` in order, stopping at the first failure.
    pub async fn apply(&self, ops: &[NetOp]) -> Result<(), NetError> {
        for op in ops {
            self.apply_one(op).await?;
        }
        Ok(())
    }

    async fn apply_one(&self, op: &NetOp) -> Result<(), NetError> {
        let link = match op {
            NetOp::AddAddress { link, .. } | NetOp::DelAddress { link, .. } => link,
            NetOp::RenameLink { from, .. } => from,
            NetOp::SetLinkUp { name } | NetOp::SetLinkDown { name } => name,
        };
        let (index, cached) = self.index_of(link, op).await?;
        let result = match self.apply_at(op, index).await {
            Err(error) if cached && is_no_device(&error) => {
                self.forget(link);
                let (index, _) = self.index_of(link, op).await?;
                self.apply_at(op, index).await
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
    async fn apply_at(&self, op: &NetOp, index: u32) -> Result<(), rtnetlink::Error> {
        let message = match op {
            NetOp::AddAddress {
                address,
                prefix_len,
                ..
            } => {
                let mut request = self.handle.address().add(index, *address, *prefix_len);
                if address.is_ipv6() {
                    request
                        .message_mut()
                        .attributes
                        .push(AddressAttribute::Flags(AddressFlags::Nodad));
                }
                return match request.execute().await {
                    Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc::EEXIST => {
                        Ok(())
                    }
                    other => other,
                };
            }
            NetOp::DelAddress {
                address,
                prefix_len,
                ..
            } => {
                let message = address_message(index, *address, *prefix_len);
                return match self.handle.address().del(message).execute().await {
                    Err(rtnetlink::Error::NetlinkError(e))
                        if e.raw_code() == -libc::EADDRNOTAVAIL =>
                    {
                        Ok(())
                    }
                    other => other,
                };
            }
            NetOp::RenameLink { to, .. } => {
                LinkUnspec::new_with_index(index).name(to.clone()).build()
            }
            NetOp::SetLinkUp { .. } => LinkUnspec::new_with_index(index).up().build(),
            NetOp::SetLinkDown { .. } => LinkUnspec::new_with_index(index).down().build(),
        };
        self.handle.link().set(message).execute().await
    }

    /// Drops the cached index of `name`.
    fn forget(&self, name: &str) {
        if let Ok(mut indexes) = self.indexes.lock() {
            indexes.remove(name);
        }
    }

    /// Interface index of the link called `name`, and whether it came from the cache.
    async fn index_of(&self, name: &str, op: &NetOp) -> Result<(u32, bool), NetError> {
        let cached = self
            .indexes
            .lock()
            .ok()
            .and_then(|indexes| indexes.get(name).copied());
        if let Some(index) = cached {
            return Ok((index, true));
        }
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        let index = match links.try_next().await {
            Ok(Some(link)) => link.header.index,
            Ok(None) => return Err(NetError::NoSuchLink { op: op.clone() }),
            Err(error) if is_no_device(&error) => {
                return Err(NetError::NoSuchLink { op: op.clone() })
            }
            Err(source) => return Err(kernel_error(op)(source)),
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
        let (index, _) = self.index_of(name, &op).await?;
        let mut dump = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        let mut out = Vec::new();
        while let Some(message) = dump.try_next().await.map_err(kernel_error(&op))? {
            let prefix_len = message.header.prefix_len;
            for attribute in &message.attributes {
                if let AddressAttribute::Address(address) = attribute {
                    out.push((*address, prefix_len));
                }
            }
        }
        Ok(out)
    }

    /// Names of every link, with whether it is administratively up.
    pub async fn links(&self) -> Result<Vec<(String, bool)>, NetError> {
        let op = NetOp::SetLinkUp {
            name: String::new(),
        };
        let mut links = self.handle.link().get().execute();
        let mut out = Vec::new();
        while let Some(link) = links.try_next().await.map_err(kernel_error(&op))? {
            let up = link
                .header
                .flags
                .contains(netlink_packet_route::link::LinkFlags::Up);
            for attribute in link.attributes {
                if let LinkAttribute::IfName(name) = attribute {
                    out.push((name, up));
                }
            }
        }
        Ok(out)
    }
}

/// True when the kernel said the link does not exist.
fn is_no_device(error: &rtnetlink::Error) -> bool {
    matches!(error, rtnetlink::Error::NetlinkError(message) if message.raw_code() == -libc::ENODEV)
}

/// A netlink address message naming one address on one link.
fn address_message(index: u32, address: IpAddr, prefix_len: u8) -> AddressMessage {
    match address {
        IpAddr::V4(v4) => AddressMessageBuilder::<std::net::Ipv4Addr>::new()
            .index(index)
            .address(v4, prefix_len)
            .build(),
        IpAddr::V6(v6) => AddressMessageBuilder::<std::net::Ipv6Addr>::new()
            .index(index)
            .address(v6, prefix_len)
            .build(),
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
