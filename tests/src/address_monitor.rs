//! Address events of one network namespace with the time each arrived: who held a VIP when,
//! read from rtnetlink notifications (RTM_NEWADDR / RTM_DELADDR, the groups `ip monitor
//! address` listens to) on a thread inside the namespace. The host-tier drills compare two
//! boxes' events on one clock: "A deleted the VIP before B added it".

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};

use crate::netns::Netns;
use crate::pinger::now_unix;

/// RTNLGRP_IPV4_IFADDR and RTNLGRP_IPV6_IFADDR.
const ADDRESS_GROUPS: [u32; 2] = [5, 9];
/// How often the reader looks at the stop flag while nothing arrives.
const POLL: Duration = Duration::from_millis(20);

/// One address added or deleted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AddressEvent {
    /// Unix seconds when the notification was read.
    pub at: f64,
    pub address: IpAddr,
    pub deleted: bool,
}

/// A running monitor; [`AddressMonitor::stop`] returns what it saw.
#[derive(Debug)]
pub struct AddressMonitor {
    events: Arc<Mutex<Vec<AddressEvent>>>,
    running: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<Result<Result<(), String>, String>>>,
}

impl AddressMonitor {
    /// Starts listening inside `ns`; returns once the subscription is in place, so every event
    /// after this call is seen.
    pub fn start(ns: &Netns) -> Result<AddressMonitor, String> {
        let events = Arc::new(Mutex::new(Vec::new()));
        let running = Arc::new(AtomicBool::new(true));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (sink, flag) = (Arc::clone(&events), Arc::clone(&running));
        let reader = ns.spawn(move || match subscribe() {
            Ok(socket) => {
                let _ = ready_tx.send(None);
                read_events(&socket, &sink, &flag)
            }
            Err(error) => {
                let _ = ready_tx.send(Some(error.clone()));
                Err(error)
            }
        })?;
        match ready_rx.recv_timeout(Duration::from_secs(10)) {
            Ok(None) => Ok(AddressMonitor {
                events,
                running,
                reader: Some(reader),
            }),
            Ok(Some(error)) => Err(format!("address monitor in {}: {error}", ns.name)),
            Err(_) => Err(format!("address monitor in {} did not start", ns.name)),
        }
    }

    /// The events so far.
    pub fn events(&self) -> Vec<AddressEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Stops listening and returns every event seen.
    pub fn stop(mut self) -> Vec<AddressEvent> {
        self.running.store(false, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.events()
    }
}

impl Drop for AddressMonitor {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
    }
}

fn subscribe() -> Result<Socket, String> {
    let mut socket = Socket::new(NETLINK_ROUTE).map_err(|e| format!("netlink socket: {e}"))?;
    socket
        .bind(&SocketAddr::new(0, 0))
        .map_err(|e| format!("netlink bind: {e}"))?;
    for group in ADDRESS_GROUPS {
        socket
            .add_membership(group)
            .map_err(|e| format!("netlink group {group}: {e}"))?;
    }
    socket2::SockRef::from(&socket)
        .set_read_timeout(Some(POLL))
        .map_err(|e| format!("netlink timeout: {e}"))?;
    Ok(socket)
}

fn read_events(
    socket: &Socket,
    sink: &Mutex<Vec<AddressEvent>>,
    running: &AtomicBool,
) -> Result<(), String> {
    while running.load(Ordering::Relaxed) {
        let mut buffer: Vec<u8> = Vec::with_capacity(64 * 1024);
        match socket.recv(&mut buffer, 0) {
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) => return Err(format!("netlink recv: {e}")),
        }
        let at = now_unix();
        let mut rest = buffer.as_slice();
        while rest.len() >= 16 {
            let length = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            if length < 16 || length > rest.len() {
                break;
            }
            let (one, tail) = rest.split_at(length);
            rest = tail
                .get(length.next_multiple_of(4) - length..)
                .unwrap_or_default();
            let Ok(message) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(one) else {
                continue;
            };
            let (message, deleted) = match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(m)) => (m, false),
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(m)) => (m, true),
                _ => continue,
            };
            // IFA_LOCAL is the address itself on point-to-point links; IFA_ADDRESS otherwise.
            let address = message.attributes.iter().find_map(|a| match a {
                AddressAttribute::Local(ip) | AddressAttribute::Address(ip) => Some(*ip),
                _ => None,
            });
            if let Some(address) = address {
                sink.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(AddressEvent {
                        at,
                        address,
                        deleted,
                    });
            }
        }
    }
    Ok(())
}
