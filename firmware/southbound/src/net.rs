//! Network changes as data, and the one executor that applies them over rtnetlink.
//!
//! Engines produce [`NetOp`]s; [`NetExecutor`] sends them to the kernel. Keeping the two apart
//! lets tests assert the exact operations an engine asks for without a kernel, and keeps every
//! netlink detail in one place.

use futures::TryStreamExt;
use netlink_packet_route::link::LinkAttribute;
use rtnetlink::{Handle, LinkUnspec};

/// One change to the kernel's network configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetOp {
    /// Give a link a new name (the link must be down).
    RenameLink { from: String, to: String },
    /// Administratively enable a link.
    SetLinkUp { name: String },
    /// Administratively disable a link.
    SetLinkDown { name: String },
}

impl core::fmt::Display for NetOp {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NetOp::RenameLink { from, to } => write!(f, "rename link {from} to {to}"),
            NetOp::SetLinkUp { name } => write!(f, "set link {name} up"),
            NetOp::SetLinkDown { name } => write!(f, "set link {name} down"),
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
    Kernel { op: NetOp, source: rtnetlink::Error },
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

/// Applies [`NetOp`]s over one rtnetlink connection.
#[derive(Debug, Clone)]
pub struct NetExecutor {
    handle: Handle,
}

impl NetExecutor {
    /// Opens the rtnetlink connection; its driver task runs on the current tokio runtime.
    pub fn connect() -> Result<NetExecutor, NetError> {
        let (connection, handle, _) = rtnetlink::new_connection().map_err(NetError::Connect)?;
        tokio::spawn(connection);
        Ok(NetExecutor { handle })
    }

    /// Applies `ops` in order, stopping at the first failure.
    pub async fn apply(&self, ops: &[NetOp]) -> Result<(), NetError> {
        for op in ops {
            self.apply_one(op).await?;
        }
        Ok(())
    }

    async fn apply_one(&self, op: &NetOp) -> Result<(), NetError> {
        let message = match op {
            NetOp::RenameLink { from, to } => {
                let index = self.index_of(from, op).await?;
                LinkUnspec::new_with_index(index).name(to.clone()).build()
            }
            NetOp::SetLinkUp { name } => {
                let index = self.index_of(name, op).await?;
                LinkUnspec::new_with_index(index).up().build()
            }
            NetOp::SetLinkDown { name } => {
                let index = self.index_of(name, op).await?;
                LinkUnspec::new_with_index(index).down().build()
            }
        };
        self.handle
            .link()
            .set(message)
            .execute()
            .await
            .map_err(|source| NetError::Kernel {
                op: op.clone(),
                source,
            })
    }

    /// Interface index of the link called `name`.
    async fn index_of(&self, name: &str, op: &NetOp) -> Result<u32, NetError> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_owned())
            .execute();
        match links.try_next().await {
            Ok(Some(link)) => Ok(link.header.index),
            Ok(None) => Err(NetError::NoSuchLink { op: op.clone() }),
            Err(rtnetlink::Error::NetlinkError(message))
                if message.raw_code() == -nix::libc::ENODEV =>
            {
                Err(NetError::NoSuchLink { op: op.clone() })
            }
            Err(source) => Err(NetError::Kernel {
                op: op.clone(),
                source,
            }),
        }
    }

    /// Names of every link, with whether it is administratively up.
    pub async fn links(&self) -> Result<Vec<(String, bool)>, NetError> {
        let op = NetOp::SetLinkUp {
            name: String::new(),
        };
        let mut links = self.handle.link().get().execute();
        let mut out = Vec::new();
        while let Some(link) = links.try_next().await.map_err(|source| NetError::Kernel {
            op: op.clone(),
            source,
        })? {
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
