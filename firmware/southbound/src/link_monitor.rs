//! Link state from the kernel's rtnetlink notifications: one source for every engine.
//!
//! Polling sysfs (once a second in the event loop, every 100 ms in the VRRP engine) sees a
//! carrier loss late and twice. The kernel tells: a socket bound to `RTMGRP_LINK` gets an
//! `RTM_NEWLINK` for every change of a link's flags or carrier and an `RTM_DELLINK` when it
//! goes. [`spawn`] dumps the links once, then follows those notifications and publishes the
//! whole table on a `watch` channel: a subscriber always sees the latest state, never a
//! backlog, and a slow one cannot hold up the others. Decoding ([`link_state`]) is pure.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use netlink_packet_core::NetlinkPayload;
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{AsyncSocket, SocketAddr};
use tokio::sync::watch;

/// What the kernel says about one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub index: u32,
    pub name: String,
    /// IFF_UP: the administrator (or Tandem) brought it up.
    pub admin_up: bool,
    /// IFF_LOWER_UP / carrier: the cable (or the partner port) is there.
    pub carrier: bool,
}

impl LinkState {
    /// Up for tracking purposes: administratively up with carrier.
    pub fn is_up(&self) -> bool {
        self.admin_up && self.carrier
    }
}

/// Every link by name.
pub type LinkTable = BTreeMap<String, LinkState>;

/// The subscriber's end: the latest table, and a way to wait for the next change.
pub type LinkWatch = watch::Receiver<Arc<LinkTable>>;

/// The state a `RTM_NEWLINK` message describes (None without a name).
pub fn link_state(message: &LinkMessage) -> Option<LinkState> {
    let mut name = None;
    let mut carrier = None;
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Carrier(c) => carrier = Some(*c != 0),
            _ => {}
        }
    }
    let flags = message.header.flags;
    Some(LinkState {
        index: message.header.index,
        name: name?,
        admin_up: flags.contains(LinkFlags::Up),
        // Carrier is only meaningful while up; LOWER_UP says the same where the attribute is
        // missing (older kernels, some virtual links).
        carrier: carrier.unwrap_or(false) || flags.contains(LinkFlags::LowerUp),
    })
}

/// Applies one notification to `table`; true when it changed.
pub fn apply(table: &mut LinkTable, message: &RouteNetlinkMessage) -> bool {
    match message {
        RouteNetlinkMessage::NewLink(link) => {
            let Some(state) = link_state(link) else {
                return false;
            };
            // A rename arrives as a NEWLINK with the same index and a new name.
            let renamed: Vec<String> = table
                .iter()
                .filter(|(name, old)| old.index == state.index && **name != state.name)
                .map(|(name, _)| name.clone())
                .collect();
            let mut changed = !renamed.is_empty();
            for name in renamed {
                table.remove(&name);
            }
            if table.get(&state.name) != Some(&state) {
                table.insert(state.name.clone(), state);
                changed = true;
            }
            changed
        }
        RouteNetlinkMessage::DelLink(link) => {
            let index = link.header.index;
            let before = table.len();
            table.retain(|_, state| state.index != index);
            table.len() != before
        }
        _ => false,
    }
}

/// Starts following link changes on the current tokio runtime.
pub fn spawn() -> std::io::Result<LinkWatch> {
    let (mut connection, handle, mut messages) = rtnetlink::new_connection()?;
    connection
        .socket_mut()
        .socket_mut()
        .bind(&SocketAddr::new(0, rtnetlink::constants::RTMGRP_LINK))?;
    tokio::spawn(connection);
    let (sender, receiver) = watch::channel(Arc::new(LinkTable::new()));
    tokio::spawn(async move {
        // Subscribed before the dump: a change during it is not lost, only seen twice.
        let mut table = LinkTable::new();
        let mut links = handle.link().get().execute();
        while let Some(Ok(link)) = links.next().await {
            if let Some(state) = link_state(&link) {
                table.insert(state.name.clone(), state);
            }
        }
        sender.send_replace(Arc::new(table.clone()));
        while let Some((message, _)) = messages.next().await {
            if let NetlinkPayload::InnerMessage(inner) = message.payload {
                if apply(&mut table, &inner) {
                    sender.send_replace(Arc::new(table.clone()));
                }
            }
            if sender.is_closed() {
                return;
            }
        }
    });
    Ok(receiver)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(index: u32, name: &str, flags: LinkFlags, carrier: Option<u8>) -> LinkMessage {
        let mut message = LinkMessage::default();
        message.header.index = index;
        message.header.flags = flags;
        message
            .attributes
            .push(LinkAttribute::IfName(name.to_owned()));
        if let Some(carrier) = carrier {
            message.attributes.push(LinkAttribute::Carrier(carrier));
        }
        message
    }

    #[test]
    fn states_follow_flags_carrier_renames_and_removals() {
        let mut table = LinkTable::new();
        let up = LinkFlags::Up | LinkFlags::LowerUp;
        assert!(apply(
            &mut table,
            &RouteNetlinkMessage::NewLink(message(3, "eth0", up, Some(1)))
        ));
        assert!(table["eth0"].is_up());
        // The same state again is no change.
        assert!(!apply(
            &mut table,
            &RouteNetlinkMessage::NewLink(message(3, "eth0", up, Some(1)))
        ));
        // Cable pulled: still admin up, no carrier.
        assert!(apply(
            &mut table,
            &RouteNetlinkMessage::NewLink(message(3, "eth0", LinkFlags::Up, Some(0)))
        ));
        assert!(!table["eth0"].is_up());
        assert!(table["eth0"].admin_up);
        // Renamed to its role.
        assert!(apply(
            &mut table,
            &RouteNetlinkMessage::NewLink(message(3, "public", up, Some(1)))
        ));
        assert!(!table.contains_key("eth0"));
        assert!(table["public"].is_up());
        // Gone.
        assert!(apply(
            &mut table,
            &RouteNetlinkMessage::DelLink(message(3, "public", up, None))
        ));
        assert!(table.is_empty());
        // No name: ignored.
        let mut nameless = LinkMessage::default();
        nameless.header.index = 9;
        assert!(!apply(&mut table, &RouteNetlinkMessage::NewLink(nameless)));
    }

    #[test]
    fn lower_up_stands_in_for_a_missing_carrier_attribute() {
        let state =
            link_state(&message(1, "lo", LinkFlags::Up | LinkFlags::LowerUp, None)).unwrap();
        assert!(state.carrier);
        let state = link_state(&message(1, "x", LinkFlags::Up, None)).unwrap();
        assert!(!state.carrier);
    }
}
