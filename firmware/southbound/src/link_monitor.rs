//! Link state from the kernel's rtnetlink notifications: one source for every engine.
//!
//! Polling sysfs (once a second in the event loop, every 100 ms in the VRRP engine) sees a
//! carrier loss late and twice. The kernel tells: a socket bound to `RTMGRP_LINK` gets an
//! `RTM_NEWLINK` for every change of a link's flags or carrier and an `RTM_DELLINK` when it
//! goes. [`spawn`] dumps the links once, then follows those notifications and publishes the
//! whole table on a `watch` channel: a subscriber always sees the latest state, never a
//! backlog, and a slow one cannot hold up the others. Decoding ([`link_state`]) is pure.

use std::collections::BTreeMap;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use netlink_sys::Socket;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::watch;

use crate::nlmsg::{
    self, IFF_LOWER_UP, IFF_UP, NLM_F_DUMP, NLM_F_REQUEST, RTMGRP_LINK, RTM_DELLINK, RTM_GETLINK,
    RTM_NEWLINK,
};
use crate::rtnl::{self, Rtnl, RECEIVE_BUFFER};

/// After a receive error other than an overrun, wait this long before subscribing again.
const RETRY: Duration = Duration::from_secs(1);

/// What the kernel says about one link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub index: u32,
    pub name: String,
    /// IFF_UP: the administrator (or Tandem) brought it up.
    pub admin_up: bool,
    /// IFF_LOWER_UP / carrier: the cable (or the partner port) is there.
    pub carrier: bool,
    /// Bonding failover notifications (`IFLA_EVENT_BONDING_FAILOVER`: the bond's active port
    /// changed) the table saw for this link. In a decoded notification: 1 when it is one.
    pub failovers: u32,
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

/// One link notification, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkChange {
    /// `RTM_NEWLINK`: a link appeared or changed (flags, carrier, name).
    New(LinkState),
    /// `RTM_DELLINK`: the link with this index is gone.
    Deleted { index: u32 },
}

/// The state an `RTM_NEWLINK` payload describes (None without a name, or when too short).
pub fn link_state(payload: &[u8]) -> Option<LinkState> {
    let link = nlmsg::link(payload)?;
    Some(LinkState {
        index: link.index,
        name: String::from_utf8_lossy(link.name?).into_owned(),
        admin_up: link.flags & IFF_UP != 0,
        // Carrier is only meaningful while up; LOWER_UP says the same where the attribute is
        // missing (older kernels, some virtual links).
        carrier: link.carrier.unwrap_or(false) || link.flags & IFF_LOWER_UP != 0,
        failovers: u32::from(
            crate::bond::read_link(payload).is_some_and(|read| read.is_failover()),
        ),
    })
}

/// Decodes one message of type `kind` (None: not a link message, or unreadable).
pub fn decode(kind: u16, payload: &[u8]) -> Option<LinkChange> {
    match kind {
        RTM_NEWLINK => link_state(payload).map(LinkChange::New),
        RTM_DELLINK => nlmsg::link(payload).map(|link| LinkChange::Deleted { index: link.index }),
        _ => None,
    }
}

/// Applies one notification to `table`; true when it changed.
pub fn apply(table: &mut LinkTable, change: &LinkChange) -> bool {
    match change {
        LinkChange::New(state) => {
            // The table counts failovers; a notification says whether it is one.
            let mut state = state.clone();
            let seen = table.get(&state.name).map_or(0, |old| old.failovers);
            state.failovers = seen.wrapping_add(state.failovers);
            let state = &state;
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
            if table.get(&state.name) != Some(state) {
                table.insert(state.name.clone(), state.clone());
                changed = true;
            }
            changed
        }
        LinkChange::Deleted { index } => {
            let before = table.len();
            table.retain(|_, state| state.index != *index);
            table.len() != before
        }
    }
}

/// Starts following link changes on the current tokio runtime.
///
/// Subscribed before the first dump: a change during it is not lost, only seen twice (the
/// notifications queued before the dump end, per link, in the state the dump showed). When the
/// socket overruns (`ENOBUFS`: notifications were dropped), the monitor subscribes a fresh
/// socket, dropping the old one with its stale backlog, and dumps again; any other receive error
/// does the same a second later. Subscribers see the table change only when it did.
pub fn spawn() -> io::Result<LinkWatch> {
    let socket = subscribe()?;
    let rtnl = Rtnl::open()?;
    let (sender, receiver) = watch::channel(Arc::new(LinkTable::new()));
    tokio::spawn(async move {
        tokio::select! {
            () = follow(socket, rtnl, &sender) => {}
            () = sender.closed() => {}
        }
    });
    Ok(receiver)
}

/// A non-blocking socket in `RTMGRP_LINK`, registered with the runtime.
fn subscribe() -> io::Result<AsyncFd<Socket>> {
    let socket = rtnl::kernel_socket(RTMGRP_LINK)?;
    socket.set_non_blocking(true)?;
    // SAFETY: `Socket` owns its descriptor: it stays open and unchanged until the `AsyncFd`
    // (which owns the `Socket`) is dropped, and `as_raw_fd` always returns that descriptor.
    #[allow(unsafe_code)]
    let registered = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) };
    registered.map_err(|error| io::Error::other(error.to_string()))
}

/// Every link, by a dump (a link that fails to decode is left out, as a notification would be).
fn dump(rtnl: &mut Rtnl) -> Result<LinkTable, rtnl::RtnlError> {
    let mut table = LinkTable::new();
    let request = nlmsg::Request::new(
        RTM_GETLINK,
        NLM_F_REQUEST | NLM_F_DUMP,
        &nlmsg::ifinfomsg(0, 0, 0),
    );
    rtnl.exchange(request, &mut |kind, payload| {
        if let Some(LinkChange::New(state)) = decode(kind, payload) {
            table.insert(state.name.clone(), state);
        }
    })?;
    Ok(table)
}

/// Dumps until a dump succeeds (it fails only without memory), then publishes if it differs.
async fn resync(rtnl: &mut Rtnl, table: &mut LinkTable, sender: &watch::Sender<Arc<LinkTable>>) {
    let fresh = loop {
        match dump(rtnl) {
            Ok(fresh) => break fresh,
            Err(_) => tokio::time::sleep(RETRY).await,
        }
    };
    if fresh != *table {
        *table = fresh;
        sender.send_replace(Arc::new(table.clone()));
    }
}

/// The monitor: one dump, then every notification, resubscribing and dumping again when
/// notifications may have been lost.
async fn follow(
    mut socket: AsyncFd<Socket>,
    mut rtnl: Rtnl,
    sender: &watch::Sender<Arc<LinkTable>>,
) {
    let mut table = LinkTable::new();
    resync(&mut rtnl, &mut table, sender).await;
    let mut buffer = vec![0u8; RECEIVE_BUFFER];
    loop {
        match receive(&socket, &mut buffer).await {
            Ok(length) => {
                let mut changed = false;
                for message in nlmsg::messages(buffer.get(..length).unwrap_or_default()) {
                    let Ok(message) = message else { break };
                    if let Some(change) = decode(message.kind, message.payload) {
                        changed |= apply(&mut table, &change);
                    }
                }
                if changed {
                    sender.send_replace(Arc::new(table.clone()));
                }
            }
            Err(error) => {
                if error.raw_os_error() != Some(libc::ENOBUFS) {
                    tokio::time::sleep(RETRY).await;
                }
                // Subscribed before the dump, as at the start; the old backlog is dropped (it
                // would replay states older than the dump).
                socket = loop {
                    match subscribe() {
                        Ok(fresh) => break fresh,
                        Err(_) => tokio::time::sleep(RETRY).await,
                    }
                };
                resync(&mut rtnl, &mut table, sender).await;
            }
        }
    }
}

/// One datagram from the kernel (0 bytes: something else sent it, ignored).
async fn receive(socket: &AsyncFd<Socket>, buffer: &mut [u8]) -> io::Result<usize> {
    loop {
        let mut ready = socket.readable().await?;
        match ready.try_io(|socket| socket.get_ref().recv_from(&mut &mut buffer[..], 0)) {
            Ok(Ok((length, from))) => return Ok(if from.port_number() == 0 { length } else { 0 }),
            Ok(Err(error)) => return Err(error),
            Err(_would_block) => continue,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(index: u32, name: &str, admin_up: bool, carrier: bool) -> LinkChange {
        LinkChange::New(LinkState {
            index,
            name: name.to_owned(),
            admin_up,
            carrier,
            failovers: 0,
        })
    }

    #[test]
    fn the_table_counts_a_bonds_failover_notifications() {
        let mut table = LinkTable::new();
        assert!(apply(&mut table, &state(7, "bond0", true, true)));
        let failover = |index| {
            let mut info = nlmsg::Request::new(
                RTM_NEWLINK,
                0,
                &nlmsg::ifinfomsg(index, IFF_UP | IFF_LOWER_UP, 0),
            )
            .string(nlmsg::IFLA_IFNAME, "bond0")
            .attribute(
                crate::bond::IFLA_EVENT,
                &crate::bond::IFLA_EVENT_BONDING_FAILOVER.to_ne_bytes(),
            );
            info = info.nested(crate::bond::IFLA_LINKINFO, |r| {
                r.string(crate::bond::IFLA_INFO_KIND, "bond")
            });
            let bytes = info.finish(0).unwrap();
            decode(RTM_NEWLINK, &bytes[nlmsg::HEADER_LEN..]).unwrap()
        };
        let LinkChange::New(decoded) = failover(7) else {
            panic!("not a link state");
        };
        assert_eq!(decoded.failovers, 1);
        assert!(apply(&mut table, &failover(7)));
        assert!(apply(&mut table, &failover(7)));
        assert_eq!(table["bond0"].failovers, 2);
        // A plain notification keeps the count.
        assert!(!apply(&mut table, &state(7, "bond0", true, true)));
        assert_eq!(table["bond0"].failovers, 2);
    }

    #[test]
    fn states_follow_flags_carrier_renames_and_removals() {
        let mut table = LinkTable::new();
        assert!(apply(&mut table, &state(3, "eth0", true, true)));
        assert!(table["eth0"].is_up());
        // The same state again is no change.
        assert!(!apply(&mut table, &state(3, "eth0", true, true)));
        // Cable pulled: still admin up, no carrier.
        assert!(apply(&mut table, &state(3, "eth0", true, false)));
        assert!(!table["eth0"].is_up());
        assert!(table["eth0"].admin_up);
        // Renamed to its role.
        assert!(apply(&mut table, &state(3, "public", true, true)));
        assert!(!table.contains_key("eth0"));
        assert!(table["public"].is_up());
        // Gone.
        assert!(apply(&mut table, &LinkChange::Deleted { index: 3 }));
        assert!(table.is_empty());
        assert!(!apply(&mut table, &LinkChange::Deleted { index: 3 }));
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn kernel_notifications_decode_to_changes() {
        let payload = |datagram: &'static [u8]| {
            let message = nlmsg::messages(datagram).next().unwrap().unwrap();
            (message.kind, message.payload)
        };
        let (kind, bytes) = payload(include_bytes!(
            "../testdata/rtnetlink/notify_newlink_up_no_carrier.bin"
        ));
        assert_eq!(decode(kind, bytes), Some(state(2, "vb", true, false)));
        let (kind, bytes) = payload(include_bytes!(
            "../testdata/rtnetlink/notify_newlink_up_carrier.bin"
        ));
        assert_eq!(decode(kind, bytes), Some(state(3, "va", true, true)));
        let (kind, bytes) = payload(include_bytes!("../testdata/rtnetlink/notify_dellink.bin"));
        assert_eq!(decode(kind, bytes), Some(LinkChange::Deleted { index: 3 }));
        // lo, down in a fresh namespace, has the carrier attribute set: admin down, carrier.
        let (kind, bytes) = payload(include_bytes!("../testdata/rtnetlink/getlink_lo.bin"));
        assert_eq!(decode(kind, bytes), Some(state(1, "lo", false, true)));
        // Acks and address messages are not link changes.
        let (kind, bytes) = payload(include_bytes!("../testdata/rtnetlink/ack.bin"));
        assert_eq!(decode(kind, bytes), None);
    }

    #[test]
    fn lower_up_stands_in_for_a_missing_carrier_attribute_and_no_name_is_ignored() {
        let payload = |flags: u32, name: Option<&str>| {
            let mut request = nlmsg::Request::new(RTM_NEWLINK, 0, &nlmsg::ifinfomsg(1, flags, 0));
            if let Some(name) = name {
                request = request.string(nlmsg::IFLA_IFNAME, name);
            }
            request.finish(0).unwrap()[nlmsg::HEADER_LEN..].to_vec()
        };
        let lo = link_state(&payload(IFF_UP | IFF_LOWER_UP, Some("lo"))).unwrap();
        assert!(lo.carrier && lo.admin_up);
        let x = link_state(&payload(IFF_UP, Some("x"))).unwrap();
        assert!(!x.carrier);
        assert_eq!(link_state(&payload(IFF_UP, None)), None);
        assert_eq!(decode(RTM_NEWLINK, &payload(IFF_UP, None)), None);
        assert_eq!(decode(RTM_NEWLINK, &[0; 8]), None);
        assert_eq!(decode(RTM_DELLINK, &[0; 8]), None);
    }
}
