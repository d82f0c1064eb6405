//! Desired table vs. kernel table → the smallest ordered list of operations.
//!
//! Rules: a service whose settings differ is edited (`SET_SERVICE`), a real server whose weight,
//! thresholds or forwarding differ is edited (`SET_DEST`); only identity changes delete and add.
//! Deleting a service removes its real servers in the kernel, so no per-dest deletes are emitted
//! for it. Order: add services, edit services, add dests, edit dests, delete dests, delete
//! services — a service exists before its dests, new dests join before old ones leave (a
//! service never goes empty in between), and dests go before their service. Never FLUSH.

use std::collections::BTreeMap;
use std::fmt;

use tandem_ipvs::uapi::{IP_VS_SVC_F_ONEPACKET, IP_VS_SVC_F_PERSISTENT};
use tandem_ipvs::{Dest, DestEntry, ForwardMethod, Request, Service, ServiceEntry, Tunnel};

use crate::model::*;

/// One change to the kernel table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Create a service (no real servers yet).
    AddService(ServiceId, ServiceSettings),
    /// Change a service's settings in place.
    EditService(ServiceId, ServiceSettings),
    /// Delete a service and, in the kernel, its real servers.
    DeleteService(ServiceId),
    /// Add a real server to a service.
    AddRealServer(ServiceId, RealServerId, RealServer),
    /// Change a real server in place (weight, thresholds, forwarding).
    EditRealServer(ServiceId, RealServerId, RealServer),
    /// Remove a real server from a service.
    DeleteRealServer(ServiceId, RealServerId),
}

impl Op {
    /// The service this operation touches.
    pub fn service(&self) -> &ServiceId {
        match self {
            Op::AddService(s, _)
            | Op::EditService(s, _)
            | Op::DeleteService(s)
            | Op::AddRealServer(s, ..)
            | Op::EditRealServer(s, ..)
            | Op::DeleteRealServer(s, _) => s,
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Op::AddService(..) => 0,
            Op::EditService(..) => 1,
            Op::AddRealServer(..) => 2,
            Op::EditRealServer(..) => 3,
            Op::DeleteRealServer(..) => 4,
            Op::DeleteService(..) => 5,
        }
    }

    /// The IPVS request that performs this operation.
    pub fn to_request(&self) -> Request {
        match self {
            Op::AddService(id, s) => Request::NewService(service_of(id, s)),
            Op::EditService(id, s) => Request::SetService(service_of(id, s)),
            Op::DeleteService(id) => Request::DelService(*id),
            Op::AddRealServer(id, rs, r) => Request::NewDest(*id, dest_of(rs, r)),
            Op::EditRealServer(id, rs, r) => Request::SetDest(*id, dest_of(rs, r)),
            Op::DeleteRealServer(id, rs) => Request::DelDest(*id, rs.addr, rs.port),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::AddService(id, s) => write!(f, "add service {id} ({})", s.scheduler.name()),
            Op::EditService(id, s) => write!(f, "edit service {id} ({})", s.scheduler.name()),
            Op::DeleteService(id) => write!(f, "delete service {id}"),
            Op::AddRealServer(id, rs, r) => write!(f, "add {rs} weight {} to {id}", r.weight),
            Op::EditRealServer(id, rs, r) => write!(f, "set {rs} weight {} in {id}", r.weight),
            Op::DeleteRealServer(id, rs) => write!(f, "remove {rs} from {id}"),
        }
    }
}

/// Operations turning `current` into `desired`, in a safe order. Equal tables give no operations.
pub fn diff(desired: &Table, current: &Table) -> Vec<Op> {
    let mut ops = Vec::new();
    merge(&desired.services, &current.services, |id, d, c| {
        diff_service_into(id, d, c, &mut ops)
    });
    sort_ops(&mut ops);
    ops
}

/// Operations for one service only: the daemon calls this when a health change touches one
/// service, instead of walking the whole table.
pub fn diff_service(
    id: &ServiceId,
    desired: Option<&VirtualService>,
    current: Option<&VirtualService>,
) -> Vec<Op> {
    let mut ops = Vec::new();
    diff_service_into(id, desired, current, &mut ops);
    sort_ops(&mut ops);
    ops
}

fn sort_ops(ops: &mut [Op]) {
    // Stable: keeps the key order produced by the merge within each rank.
    ops.sort_by_key(Op::rank);
}

fn diff_service_into(
    id: &ServiceId,
    desired: Option<&VirtualService>,
    current: Option<&VirtualService>,
    ops: &mut Vec<Op>,
) {
    match (desired, current) {
        (None, None) => {}
        (None, Some(_)) => ops.push(Op::DeleteService(*id)),
        (Some(d), None) => {
            ops.push(Op::AddService(*id, d.settings.clone()));
            for (rs, r) in &d.real_servers {
                ops.push(Op::AddRealServer(*id, *rs, *r));
            }
        }
        (Some(d), Some(c)) => {
            if d.settings != c.settings {
                ops.push(Op::EditService(*id, d.settings.clone()));
            }
            merge(&d.real_servers, &c.real_servers, |rs, dr, cr| {
                match (dr, cr) {
                    (Some(dr), None) => ops.push(Op::AddRealServer(*id, *rs, *dr)),
                    (None, Some(_)) => ops.push(Op::DeleteRealServer(*id, *rs)),
                    (Some(dr), Some(cr)) if !dr.satisfied_by(cr) => {
                        ops.push(Op::EditRealServer(*id, *rs, *dr))
                    }
                    _ => {}
                }
            });
        }
    }
}

/// Walks two maps sorted by the same key in step, calling `f` once per key with the value on
/// each side (the table diff here, and [`crate::live`]'s comparison of two plans).
pub(crate) fn merge<K: Ord, A, B>(
    a: &BTreeMap<K, A>,
    b: &BTreeMap<K, B>,
    mut f: impl FnMut(&K, Option<&A>, Option<&B>),
) {
    let mut ia = a.iter().peekable();
    let mut ib = b.iter().peekable();
    loop {
        match (ia.peek(), ib.peek()) {
            (None, None) => return,
            (Some((ka, va)), None) => {
                f(ka, Some(va), None);
                ia.next();
            }
            (None, Some((kb, vb))) => {
                f(kb, None, Some(vb));
                ib.next();
            }
            (Some((ka, va)), Some((kb, vb))) => match ka.cmp(kb) {
                std::cmp::Ordering::Less => {
                    f(ka, Some(va), None);
                    ia.next();
                }
                std::cmp::Ordering::Greater => {
                    f(kb, None, Some(vb));
                    ib.next();
                }
                std::cmp::Ordering::Equal => {
                    f(ka, Some(va), Some(vb));
                    ia.next();
                    ib.next();
                }
            },
        }
    }
}

/// The kernel refused an operation on the table model; mirrors the kernel's errno.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// EEXIST: the service or real server already exists.
    #[error("{0}: already exists")]
    Exists(String),
    /// ESRCH/ENOENT: the service or real server does not exist.
    #[error("{0}: does not exist")]
    Missing(String),
}

impl Table {
    /// Applies one operation with the kernel's semantics (adds fail on existing objects, edits
    /// and deletes on missing ones; deleting a service deletes its real servers). Used as the
    /// kernel model in tests and by the daemon to track what it has applied.
    pub fn apply(&mut self, op: &Op) -> Result<(), ApplyError> {
        let name = || op.to_string();
        match op {
            Op::AddService(id, s) => {
                if self.services.contains_key(id) {
                    return Err(ApplyError::Exists(name()));
                }
                self.services.insert(*id, VirtualService::new(s.clone()));
            }
            Op::EditService(id, s) => {
                self.services
                    .get_mut(id)
                    .ok_or_else(|| ApplyError::Missing(name()))?
                    .settings = s.clone();
            }
            Op::DeleteService(id) => {
                self.services
                    .remove(id)
                    .ok_or_else(|| ApplyError::Missing(name()))?;
            }
            Op::AddRealServer(id, rs, r) => {
                let svc = self
                    .services
                    .get_mut(id)
                    .ok_or_else(|| ApplyError::Missing(name()))?;
                if svc.real_servers.contains_key(rs) {
                    return Err(ApplyError::Exists(name()));
                }
                svc.real_servers.insert(*rs, *r);
            }
            Op::EditRealServer(id, rs, r) => {
                let svc = self
                    .services
                    .get_mut(id)
                    .ok_or_else(|| ApplyError::Missing(name()))?;
                *svc.real_servers
                    .get_mut(rs)
                    .ok_or_else(|| ApplyError::Missing(name()))? = *r;
            }
            Op::DeleteRealServer(id, rs) => {
                let svc = self
                    .services
                    .get_mut(id)
                    .ok_or_else(|| ApplyError::Missing(name()))?;
                svc.real_servers
                    .remove(rs)
                    .ok_or_else(|| ApplyError::Missing(name()))?;
            }
        }
        Ok(())
    }

    /// Builds a table from the kernel's read-back (`Executor::table()`).
    pub fn from_kernel(entries: &[(ServiceEntry, Vec<DestEntry>)]) -> Table {
        let mut table = Table::default();
        for (svc, dests) in entries {
            let mut vs = VirtualService::new(settings_of(&svc.service));
            for d in dests {
                vs.real_servers.insert(
                    RealServerId {
                        addr: d.dest.addr,
                        port: d.dest.port,
                    },
                    real_server_of(&d.dest),
                );
            }
            table.services.insert(svc.service.key, vs);
        }
        table
    }
}

/// The kernel service for an id and settings.
pub fn service_of(id: &ServiceId, s: &ServiceSettings) -> Service {
    let mut svc = Service::new(*id, s.scheduler.name());
    svc.flags = s.scheduler_flags.bits();
    if s.one_packet {
        svc.flags |= IP_VS_SVC_F_ONEPACKET;
    }
    if let Some(p) = &s.persistence {
        svc.flags |= IP_VS_SVC_F_PERSISTENT;
        svc.timeout = p.timeout_s;
        svc.netmask = p.netmask;
        svc.pe_name.clone_from(&p.engine);
    }
    svc
}

/// Settings as read back from a kernel service.
pub fn settings_of(svc: &Service) -> ServiceSettings {
    let persistence = (svc.flags & IP_VS_SVC_F_PERSISTENT != 0).then(|| Persistence {
        timeout_s: svc.timeout,
        netmask: svc.netmask,
        engine: svc.pe_name.clone(),
    });
    ServiceSettings {
        scheduler: Scheduler::from_name(&svc.scheduler),
        scheduler_flags: SchedulerFlags::from_service_flags(svc.flags),
        persistence,
        one_packet: svc.flags & IP_VS_SVC_F_ONEPACKET != 0,
    }
}

/// The kernel destination for a real server.
pub fn dest_of(id: &RealServerId, r: &RealServer) -> Dest {
    let (forward, tunnel) = match r.forwarding {
        Forwarding::Nat => (ForwardMethod::Masq, None),
        Forwarding::DirectRouting => (ForwardMethod::DirectRoute, None),
        Forwarding::LocalNode => (ForwardMethod::LocalNode, None),
        // The classic IPIP tunnel is sent without tunnel attributes so pre-5.2 kernels accept it.
        Forwarding::Tunnel {
            encap: TunnelType::Ipip,
            port: 0,
            flags: 0,
        } => (ForwardMethod::Tunnel, None),
        Forwarding::Tunnel { encap, port, flags } => (
            ForwardMethod::Tunnel,
            Some(Tunnel {
                kind: encap,
                port,
                flags,
            }),
        ),
    };
    Dest {
        addr: id.addr,
        port: id.port,
        forward,
        weight: r.weight,
        upper_threshold: r.upper_threshold,
        lower_threshold: r.lower_threshold,
        tunnel,
    }
}

/// A real server as read back from a kernel destination.
pub fn real_server_of(d: &Dest) -> RealServer {
    let forwarding = match d.forward {
        ForwardMethod::Masq => Forwarding::Nat,
        ForwardMethod::DirectRoute => Forwarding::DirectRouting,
        ForwardMethod::Tunnel => match d.tunnel {
            Some(t) => Forwarding::Tunnel {
                encap: t.kind,
                port: t.port,
                flags: t.flags,
            },
            None => Forwarding::IPIP,
        },
        ForwardMethod::LocalNode | ForwardMethod::Bypass => Forwarding::LocalNode,
    };
    RealServer {
        forwarding,
        weight: d.weight,
        upper_threshold: d.upper_threshold,
        lower_threshold: d.lower_threshold,
    }
}
