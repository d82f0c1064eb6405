//! IPVS requests as plain data, and their encoding to generic netlink bytes.
//!
//! Encoding follows `ip_vs_ctl.c`'s policies (and ipvsadm's libipvs for attribute order):
//! addresses are 16-byte `nf_inet_addr`s, ports are big-endian, the persistence netmask of an
//! IPv4 service is a big-endian mask, everything else is host-endian. Nothing here does I/O.

use core::fmt;

use crate::nla::{finish_message, start_genl_message, NlaWriter, TooLong};
use crate::types::*;
use crate::uapi::*;

/// One IPVS command. Dump variants (`Dump*`) read tables; the rest change or query one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Add a service (`IPVS_CMD_NEW_SERVICE`).
    NewService(Service),
    /// Change a service's scheduler, flags, persistence (`IPVS_CMD_SET_SERVICE`).
    SetService(Service),
    /// Delete a service and its destinations (`IPVS_CMD_DEL_SERVICE`).
    DelService(ServiceKey),
    /// Read one service (`IPVS_CMD_GET_SERVICE`).
    GetService(ServiceKey),
    /// Read all services (`IPVS_CMD_GET_SERVICE`, dump).
    DumpServices,
    /// Add a destination to a service (`IPVS_CMD_NEW_DEST`).
    NewDest(ServiceKey, Dest),
    /// Change a destination's weight, thresholds, forwarding (`IPVS_CMD_SET_DEST`).
    SetDest(ServiceKey, Dest),
    /// Remove a destination (`IPVS_CMD_DEL_DEST`).
    DelDest(ServiceKey, std::net::IpAddr, u16),
    /// Read a service's destinations (`IPVS_CMD_GET_DEST`, dump).
    DumpDests(ServiceKey),
    /// Read version and connection table size (`IPVS_CMD_GET_INFO`).
    GetInfo,
    /// Read connection timeouts (`IPVS_CMD_GET_CONFIG`).
    GetConfig,
    /// Set connection timeouts (`IPVS_CMD_SET_CONFIG`).
    SetConfig(Timeouts),
    /// Start a connection sync daemon (`IPVS_CMD_NEW_DAEMON`).
    NewDaemon(SyncDaemon),
    /// Stop the sync daemon of a role (`IPVS_CMD_DEL_DAEMON`).
    DelDaemon(SyncRole),
    /// Read the running sync daemons (`IPVS_CMD_GET_DAEMON`, dump).
    DumpDaemons,
    /// Delete every service (`IPVS_CMD_FLUSH`). Never used for configuration changes.
    Flush,
}

/// A request could not be encoded; the message names the field to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// Scheduler names are at most 15 bytes (`IP_VS_SCHEDNAME_MAXLEN` - 1).
    #[error("scheduler name {0:?} is longer than 15 bytes")]
    SchedulerName(String),
    /// Persistence engine names are at most 15 bytes.
    #[error("persistence engine name {0:?} is longer than 15 bytes")]
    PeName(String),
    /// Interface names are at most 15 bytes.
    #[error("sync daemon interface name {0:?} is longer than 15 bytes")]
    IfName(String),
    /// The kernel stores weights as a signed int.
    #[error("weight {0} of a destination exceeds {max}", max = i32::MAX)]
    Weight(u32),
    /// Names must not contain NUL bytes.
    #[error("name {0:?} contains a NUL byte")]
    Nul(String),
    /// Length overflow in the netlink framing.
    #[error(transparent)]
    TooLong(#[from] TooLong),
}

impl Request {
    /// Whether the kernel answers with a multi-part dump (one dump may be in flight per socket).
    pub fn is_dump(&self) -> bool {
        matches!(
            self,
            Request::DumpServices | Request::DumpDests(_) | Request::DumpDaemons
        )
    }

    fn cmd(&self) -> u8 {
        match self {
            Request::NewService(_) => IPVS_CMD_NEW_SERVICE,
            Request::SetService(_) => IPVS_CMD_SET_SERVICE,
            Request::DelService(_) => IPVS_CMD_DEL_SERVICE,
            Request::GetService(_) | Request::DumpServices => IPVS_CMD_GET_SERVICE,
            Request::NewDest(..) => IPVS_CMD_NEW_DEST,
            Request::SetDest(..) => IPVS_CMD_SET_DEST,
            Request::DelDest(..) => IPVS_CMD_DEL_DEST,
            Request::DumpDests(_) => IPVS_CMD_GET_DEST,
            Request::GetInfo => IPVS_CMD_GET_INFO,
            Request::GetConfig => IPVS_CMD_GET_CONFIG,
            Request::SetConfig(_) => IPVS_CMD_SET_CONFIG,
            Request::NewDaemon(_) => IPVS_CMD_NEW_DAEMON,
            Request::DelDaemon(_) => IPVS_CMD_DEL_DAEMON,
            Request::DumpDaemons => IPVS_CMD_GET_DAEMON,
            Request::Flush => IPVS_CMD_FLUSH,
        }
    }

    /// Appends this request as one netlink message to `buf`. Non-dump requests carry
    /// `NLM_F_ACK`, so the kernel answers each with an acknowledgement or an errno.
    pub fn encode(&self, family: u16, seq: u32, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.encode_with_ack(family, seq, true, buf)
    }

    /// Like [`Self::encode`]; `ack = false` leaves out `NLM_F_ACK` (the kernel then answers only
    /// on failure). Dumps never carry `NLM_F_ACK`: they end with `NLMSG_DONE`.
    pub fn encode_with_ack(
        &self,
        family: u16,
        seq: u32,
        ack: bool,
        buf: &mut Vec<u8>,
    ) -> Result<(), EncodeError> {
        let flags = if self.is_dump() {
            NLM_F_REQUEST | NLM_F_DUMP
        } else if ack {
            NLM_F_REQUEST | NLM_F_ACK
        } else {
            NLM_F_REQUEST
        };
        let start = start_genl_message(buf, family, flags, seq, self.cmd(), IPVS_GENL_VERSION);
        let result = self.encode_attrs(&mut NlaWriter { buf });
        if let Err(e) = result {
            buf.truncate(start);
            return Err(e);
        }
        finish_message(buf, start)?;
        Ok(())
    }

    fn encode_attrs(&self, w: &mut NlaWriter<'_>) -> Result<(), EncodeError> {
        match self {
            Request::NewService(s) | Request::SetService(s) => put_service(w, &s.key, Some(s)),
            Request::DelService(k) | Request::GetService(k) | Request::DumpDests(k) => {
                put_service(w, k, None)
            }
            Request::NewDest(k, d) | Request::SetDest(k, d) => {
                put_service(w, k, None)?;
                put_dest(w, &d.addr, d.port, Some(d))
            }
            Request::DelDest(k, addr, port) => {
                put_service(w, k, None)?;
                put_dest(w, addr, *port, None)
            }
            Request::SetConfig(t) => {
                if let Some(v) = t.tcp {
                    w.put_u32(IPVS_CMD_ATTR_TIMEOUT_TCP, v)?;
                }
                if let Some(v) = t.tcp_fin {
                    w.put_u32(IPVS_CMD_ATTR_TIMEOUT_TCP_FIN, v)?;
                }
                if let Some(v) = t.udp {
                    w.put_u32(IPVS_CMD_ATTR_TIMEOUT_UDP, v)?;
                }
                Ok(())
            }
            Request::NewDaemon(d) => put_daemon(w, d),
            Request::DelDaemon(role) => {
                let n = w.nest_start(IPVS_CMD_ATTR_DAEMON);
                w.put_u32(IPVS_DAEMON_ATTR_STATE, role.bits())?;
                Ok(w.nest_end(n)?)
            }
            Request::DumpServices
            | Request::GetInfo
            | Request::GetConfig
            | Request::DumpDaemons
            | Request::Flush => Ok(()),
        }
    }
}

fn check_name(name: &str, max: usize, err: fn(String) -> EncodeError) -> Result<(), EncodeError> {
    if name.len() >= max {
        return Err(err(name.to_owned()));
    }
    if name.contains('\0') {
        return Err(EncodeError::Nul(name.to_owned()));
    }
    Ok(())
}

fn put_service(
    w: &mut NlaWriter<'_>,
    key: &ServiceKey,
    full: Option<&Service>,
) -> Result<(), EncodeError> {
    let n = w.nest_start(IPVS_CMD_ATTR_SERVICE);
    w.put_u16(IPVS_SVC_ATTR_AF, key.family().af())?;
    match key {
        ServiceKey::Fwmark { mark, .. } => w.put_u32(IPVS_SVC_ATTR_FWMARK, *mark)?,
        ServiceKey::Inet {
            protocol,
            addr,
            port,
        } => {
            w.put_u16(IPVS_SVC_ATTR_PROTOCOL, protocol.number())?;
            w.put(IPVS_SVC_ATTR_ADDR, &addr_bytes16(addr))?;
            w.put_be16(IPVS_SVC_ATTR_PORT, *port)?;
        }
    }
    if let Some(s) = full {
        check_name(
            &s.scheduler,
            IP_VS_SCHEDNAME_MAXLEN,
            EncodeError::SchedulerName,
        )?;
        w.put_cstr(IPVS_SVC_ATTR_SCHED_NAME, &s.scheduler)?;
        if let Some(pe) = &s.pe_name {
            check_name(pe, IP_VS_PENAME_MAXLEN, EncodeError::PeName)?;
            w.put_cstr(IPVS_SVC_ATTR_PE_NAME, pe)?;
        }
        // struct ip_vs_flags { flags, mask }: the mask says which bits to set; we own them all.
        let mut flags = [0u8; 8];
        flags[..4].copy_from_slice(&(s.flags & !IP_VS_SVC_F_HASHED).to_ne_bytes());
        flags[4..].copy_from_slice(&u32::MAX.to_ne_bytes());
        w.put(IPVS_SVC_ATTR_FLAGS, &flags)?;
        w.put_u32(IPVS_SVC_ATTR_TIMEOUT, s.timeout)?;
        match key.family() {
            Family::Inet => w.put(IPVS_SVC_ATTR_NETMASK, &s.netmask.to_be_bytes())?,
            Family::Inet6 => w.put_u32(IPVS_SVC_ATTR_NETMASK, s.netmask)?,
        }
    }
    Ok(w.nest_end(n)?)
}

fn put_dest(
    w: &mut NlaWriter<'_>,
    addr: &std::net::IpAddr,
    port: u16,
    full: Option<&Dest>,
) -> Result<(), EncodeError> {
    let n = w.nest_start(IPVS_CMD_ATTR_DEST);
    w.put(IPVS_DEST_ATTR_ADDR, &addr_bytes16(addr))?;
    w.put_u16(IPVS_DEST_ATTR_ADDR_FAMILY, Family::of(addr).af())?;
    w.put_be16(IPVS_DEST_ATTR_PORT, port)?;
    if let Some(d) = full {
        if i32::try_from(d.weight).is_err() {
            return Err(EncodeError::Weight(d.weight));
        }
        w.put_u32(IPVS_DEST_ATTR_FWD_METHOD, d.forward.bits())?;
        w.put_u32(IPVS_DEST_ATTR_WEIGHT, d.weight)?;
        if let (ForwardMethod::Tunnel, Some(t)) = (d.forward, d.tunnel) {
            w.put_u8(IPVS_DEST_ATTR_TUN_TYPE, t.kind as u8)?;
            w.put_be16(IPVS_DEST_ATTR_TUN_PORT, t.port)?;
            w.put_u16(IPVS_DEST_ATTR_TUN_FLAGS, t.flags)?;
        }
        w.put_u32(IPVS_DEST_ATTR_U_THRESH, d.upper_threshold)?;
        w.put_u32(IPVS_DEST_ATTR_L_THRESH, d.lower_threshold)?;
    }
    Ok(w.nest_end(n)?)
}

fn put_daemon(w: &mut NlaWriter<'_>, d: &SyncDaemon) -> Result<(), EncodeError> {
    check_name(&d.ifname, IP_VS_IFNAME_MAXLEN, EncodeError::IfName)?;
    let n = w.nest_start(IPVS_CMD_ATTR_DAEMON);
    w.put_u32(IPVS_DAEMON_ATTR_STATE, d.role.bits())?;
    w.put_cstr(IPVS_DAEMON_ATTR_MCAST_IFN, &d.ifname)?;
    w.put_u32(IPVS_DAEMON_ATTR_SYNC_ID, d.sync_id)?;
    if let Some(v) = d.max_len {
        w.put_u16(IPVS_DAEMON_ATTR_SYNC_MAXLEN, v)?;
    }
    match d.group {
        Some(std::net::IpAddr::V4(a)) => w.put(IPVS_DAEMON_ATTR_MCAST_GROUP, &a.octets())?,
        Some(std::net::IpAddr::V6(a)) => w.put(IPVS_DAEMON_ATTR_MCAST_GROUP6, &a.octets())?,
        None => {}
    }
    if let Some(v) = d.port {
        // Host order: ip_vs_ctl.c reads it with nla_get_u16 (unlike the service/dest ports).
        w.put_u16(IPVS_DAEMON_ATTR_MCAST_PORT, v)?;
    }
    if let Some(v) = d.ttl {
        w.put_u8(IPVS_DAEMON_ATTR_MCAST_TTL, v)?;
    }
    Ok(w.nest_end(n)?)
}

/// Names the object a request is about, for error messages (`NEW_DEST 10.0.0.1:80 in tcp
/// 192.0.2.1:80`).
impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::NewService(s) => write!(f, "NEW_SERVICE {} ({})", s.key, s.scheduler),
            Request::SetService(s) => write!(f, "SET_SERVICE {} ({})", s.key, s.scheduler),
            Request::DelService(k) => write!(f, "DEL_SERVICE {k}"),
            Request::GetService(k) => write!(f, "GET_SERVICE {k}"),
            Request::DumpServices => f.write_str("GET_SERVICE (dump)"),
            Request::NewDest(k, d) => write!(f, "NEW_DEST {d} in {k}"),
            Request::SetDest(k, d) => write!(f, "SET_DEST {d} (weight {}) in {k}", d.weight),
            Request::DelDest(k, a, p) => {
                f.write_str("DEL_DEST ")?;
                fmt_addr_port(f, a, *p)?;
                write!(f, " in {k}")
            }
            Request::DumpDests(k) => write!(f, "GET_DEST (dump) of {k}"),
            Request::GetInfo => f.write_str("GET_INFO"),
            Request::GetConfig => f.write_str("GET_CONFIG"),
            Request::SetConfig(t) => write!(f, "SET_CONFIG {t:?}"),
            Request::NewDaemon(d) => {
                write!(
                    f,
                    "NEW_DAEMON {:?} on {} syncid {}",
                    d.role, d.ifname, d.sync_id
                )
            }
            Request::DelDaemon(r) => write!(f, "DEL_DAEMON {r:?}"),
            Request::DumpDaemons => f.write_str("GET_DAEMON (dump)"),
            Request::Flush => f.write_str("FLUSH"),
        }
    }
}

/// Encodes the generic netlink controller request that resolves the `IPVS` family id.
pub fn encode_get_family(seq: u32, buf: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = start_genl_message(
        buf,
        GENL_ID_CTRL,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        CTRL_CMD_GETFAMILY,
        CTRL_VERSION,
    );
    NlaWriter { buf }.put_cstr(CTRL_ATTR_FAMILY_NAME, IPVS_GENL_NAME)?;
    finish_message(buf, start)?;
    Ok(())
}
