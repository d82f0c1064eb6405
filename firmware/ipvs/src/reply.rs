//! Decoding of kernel replies: services, destinations, sync daemons, timeouts, info, and the
//! controller's family id. Every function takes untrusted bytes and returns a `DecodeError`
//! naming the field on anything malformed; none panics (fuzz target `ipvs_reply`).

use crate::nla::*;
use crate::types::*;
use crate::uapi::*;

/// One decoded data message of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A service (reply to GET_SERVICE).
    Service(ServiceEntry),
    /// A destination (reply to GET_DEST).
    Dest(DestEntry),
    /// A sync daemon (reply to GET_DAEMON).
    Daemon(SyncDaemon),
    /// Timeouts (reply to GET_CONFIG).
    Config(Timeouts),
    /// Version and table size (reply to GET_INFO).
    Info(Info),
}

/// Decodes one IPVS generic netlink payload (genl header + attributes) by its command.
/// `service_family` is the family of the service whose destinations are being dumped, used when
/// the kernel omits `IPVS_DEST_ATTR_ADDR_FAMILY` (before 3.18).
pub fn decode_reply(payload: &[u8], service_family: Option<Family>) -> Result<Reply, DecodeError> {
    let (cmd, attrs) = split_genl(payload)?;
    match cmd {
        IPVS_CMD_NEW_SERVICE | IPVS_CMD_SET_SERVICE | IPVS_CMD_GET_SERVICE => {
            let nested =
                find(attrs, IPVS_CMD_ATTR_SERVICE)?.ok_or(DecodeError::Missing("SERVICE"))?;
            decode_service(nested).map(Reply::Service)
        }
        IPVS_CMD_NEW_DEST | IPVS_CMD_SET_DEST | IPVS_CMD_GET_DEST => {
            let nested = find(attrs, IPVS_CMD_ATTR_DEST)?.ok_or(DecodeError::Missing("DEST"))?;
            decode_dest(nested, service_family).map(Reply::Dest)
        }
        IPVS_CMD_NEW_DAEMON | IPVS_CMD_GET_DAEMON => {
            let nested =
                find(attrs, IPVS_CMD_ATTR_DAEMON)?.ok_or(DecodeError::Missing("DAEMON"))?;
            decode_daemon(nested).map(Reply::Daemon)
        }
        IPVS_CMD_SET_CONFIG | IPVS_CMD_GET_CONFIG => decode_timeouts(attrs).map(Reply::Config),
        IPVS_CMD_SET_INFO | IPVS_CMD_GET_INFO => decode_info(attrs).map(Reply::Info),
        other => Err(DecodeError::Unsupported {
            field: "genl cmd",
            value: u64::from(other),
        }),
    }
}

fn find(attrs: &[u8], ty: u16) -> Result<Option<&[u8]>, DecodeError> {
    for item in NlaIter::new(attrs) {
        let (t, p) = item?;
        if t == ty {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// Decodes the attributes nested in `IPVS_CMD_ATTR_SERVICE`.
pub fn decode_service(attrs: &[u8]) -> Result<ServiceEntry, DecodeError> {
    let mut af = None;
    let mut protocol = None;
    let mut addr: Option<&[u8]> = None;
    let mut port = None;
    let mut fwmark = None;
    let mut sched = None;
    let mut pe_name = None;
    let mut flags = None;
    let mut timeout = 0;
    let mut netmask: Option<&[u8]> = None;
    let mut stats = None;
    let mut stats64 = None;
    for item in NlaIter::new(attrs) {
        let (ty, p) = item?;
        match ty {
            IPVS_SVC_ATTR_AF => af = Some(get_u16("SVC_ATTR_AF", p)?),
            IPVS_SVC_ATTR_PROTOCOL => protocol = Some(get_u16("SVC_ATTR_PROTOCOL", p)?),
            IPVS_SVC_ATTR_ADDR => addr = Some(p),
            IPVS_SVC_ATTR_PORT => port = Some(get_be16("SVC_ATTR_PORT", p)?),
            IPVS_SVC_ATTR_FWMARK => fwmark = Some(get_u32("SVC_ATTR_FWMARK", p)?),
            IPVS_SVC_ATTR_SCHED_NAME => {
                sched = Some(get_str("SVC_ATTR_SCHED_NAME", p, IP_VS_SCHEDNAME_MAXLEN)?)
            }
            IPVS_SVC_ATTR_PE_NAME => {
                let pe = get_str("SVC_ATTR_PE_NAME", p, IP_VS_PENAME_MAXLEN)?;
                pe_name = (!pe.is_empty()).then_some(pe);
            }
            IPVS_SVC_ATTR_FLAGS => {
                let f = p.get(..4).ok_or(DecodeError::BadAttributeSize {
                    field: "SVC_ATTR_FLAGS",
                    got: p.len(),
                    expected: 8,
                })?;
                flags = Some(get_u32("SVC_ATTR_FLAGS", f)?);
            }
            IPVS_SVC_ATTR_TIMEOUT => timeout = get_u32("SVC_ATTR_TIMEOUT", p)?,
            IPVS_SVC_ATTR_NETMASK => netmask = Some(p),
            IPVS_SVC_ATTR_STATS => stats = Some(decode_stats(p, false)?),
            IPVS_SVC_ATTR_STATS64 => stats64 = Some(decode_stats(p, true)?),
            _ => {} // newer kernels may add attributes
        }
    }
    let af = af.ok_or(DecodeError::Missing("SVC_ATTR_AF"))?;
    let family = Family::from_af(af).ok_or(DecodeError::Unsupported {
        field: "SVC_ATTR_AF",
        value: u64::from(af),
    })?;
    let key = match (fwmark, protocol, addr, port) {
        (Some(mark), _, _, _) if mark != 0 => ServiceKey::Fwmark { family, mark },
        (_, Some(proto), Some(addr), Some(port)) => {
            let protocol = Protocol::from_number(proto).ok_or(DecodeError::Unsupported {
                field: "SVC_ATTR_PROTOCOL",
                value: u64::from(proto),
            })?;
            let addr = addr_from_bytes(family, addr).ok_or(DecodeError::BadAttributeSize {
                field: "SVC_ATTR_ADDR",
                got: addr.len(),
                expected: 16,
            })?;
            ServiceKey::Inet {
                protocol,
                addr,
                port,
            }
        }
        _ => {
            return Err(DecodeError::Missing(
                "SVC_ATTR_FWMARK or PROTOCOL/ADDR/PORT",
            ))
        }
    };
    let netmask = match (family, netmask) {
        (Family::Inet, Some(p)) => {
            let a: [u8; 4] = p.try_into().map_err(|_| DecodeError::BadAttributeSize {
                field: "SVC_ATTR_NETMASK",
                got: p.len(),
                expected: 4,
            })?;
            u32::from_be_bytes(a)
        }
        (Family::Inet6, Some(p)) => get_u32("SVC_ATTR_NETMASK", p)?,
        (Family::Inet, None) => u32::MAX,
        (Family::Inet6, None) => 128,
    };
    let service = Service {
        key,
        scheduler: sched.ok_or(DecodeError::Missing("SVC_ATTR_SCHED_NAME"))?,
        flags: flags.ok_or(DecodeError::Missing("SVC_ATTR_FLAGS"))? & !IP_VS_SVC_F_HASHED,
        timeout,
        netmask,
        pe_name,
    };
    Ok(ServiceEntry {
        service,
        stats: stats64.or(stats).unwrap_or_default(),
    })
}

/// Decodes the attributes nested in `IPVS_CMD_ATTR_DEST`.
pub fn decode_dest(attrs: &[u8], service_family: Option<Family>) -> Result<DestEntry, DecodeError> {
    let mut addr: Option<&[u8]> = None;
    let mut af = None;
    let mut port = None;
    let mut fwd = None;
    let mut weight = None;
    let (mut uth, mut lth) = (0, 0);
    let (mut active, mut inactive, mut persist) = (0, 0, 0);
    let (mut tun_type, mut tun_port, mut tun_flags) = (None, 0, 0);
    let mut stats = None;
    let mut stats64 = None;
    for item in NlaIter::new(attrs) {
        let (ty, p) = item?;
        match ty {
            IPVS_DEST_ATTR_ADDR => addr = Some(p),
            IPVS_DEST_ATTR_ADDR_FAMILY => af = Some(get_u16("DEST_ATTR_ADDR_FAMILY", p)?),
            IPVS_DEST_ATTR_PORT => port = Some(get_be16("DEST_ATTR_PORT", p)?),
            IPVS_DEST_ATTR_FWD_METHOD => fwd = Some(get_u32("DEST_ATTR_FWD_METHOD", p)?),
            IPVS_DEST_ATTR_WEIGHT => weight = Some(get_u32("DEST_ATTR_WEIGHT", p)?),
            IPVS_DEST_ATTR_U_THRESH => uth = get_u32("DEST_ATTR_U_THRESH", p)?,
            IPVS_DEST_ATTR_L_THRESH => lth = get_u32("DEST_ATTR_L_THRESH", p)?,
            IPVS_DEST_ATTR_ACTIVE_CONNS => active = get_u32("DEST_ATTR_ACTIVE_CONNS", p)?,
            IPVS_DEST_ATTR_INACT_CONNS => inactive = get_u32("DEST_ATTR_INACT_CONNS", p)?,
            IPVS_DEST_ATTR_PERSIST_CONNS => persist = get_u32("DEST_ATTR_PERSIST_CONNS", p)?,
            IPVS_DEST_ATTR_STATS => stats = Some(decode_stats(p, false)?),
            IPVS_DEST_ATTR_STATS64 => stats64 = Some(decode_stats(p, true)?),
            IPVS_DEST_ATTR_TUN_TYPE => tun_type = Some(get_u8("DEST_ATTR_TUN_TYPE", p)?),
            IPVS_DEST_ATTR_TUN_PORT => tun_port = get_be16("DEST_ATTR_TUN_PORT", p)?,
            IPVS_DEST_ATTR_TUN_FLAGS => tun_flags = get_u16("DEST_ATTR_TUN_FLAGS", p)?,
            _ => {}
        }
    }
    let family = match af {
        Some(af) => Family::from_af(af).ok_or(DecodeError::Unsupported {
            field: "DEST_ATTR_ADDR_FAMILY",
            value: u64::from(af),
        })?,
        None => service_family.ok_or(DecodeError::Missing("DEST_ATTR_ADDR_FAMILY"))?,
    };
    let raw_addr = addr.ok_or(DecodeError::Missing("DEST_ATTR_ADDR"))?;
    let addr = addr_from_bytes(family, raw_addr).ok_or(DecodeError::BadAttributeSize {
        field: "DEST_ATTR_ADDR",
        got: raw_addr.len(),
        expected: 16,
    })?;
    let fwd = fwd.ok_or(DecodeError::Missing("DEST_ATTR_FWD_METHOD"))?;
    let forward = ForwardMethod::from_bits(fwd).ok_or(DecodeError::Unsupported {
        field: "DEST_ATTR_FWD_METHOD",
        value: u64::from(fwd),
    })?;
    let tunnel = match (forward, tun_type) {
        (ForwardMethod::Tunnel, Some(t)) => Some(Tunnel {
            kind: match t {
                0 => TunnelType::Ipip,
                1 => TunnelType::Gue,
                2 => TunnelType::Gre,
                v => {
                    return Err(DecodeError::Unsupported {
                        field: "DEST_ATTR_TUN_TYPE",
                        value: u64::from(v),
                    })
                }
            },
            port: tun_port,
            flags: tun_flags,
        }),
        _ => None,
    };
    let dest = Dest {
        addr,
        port: port.ok_or(DecodeError::Missing("DEST_ATTR_PORT"))?,
        forward,
        weight: weight.ok_or(DecodeError::Missing("DEST_ATTR_WEIGHT"))?,
        upper_threshold: uth,
        lower_threshold: lth,
        tunnel,
    };
    Ok(DestEntry {
        dest,
        active_conns: active,
        inactive_conns: inactive,
        persist_conns: persist,
        stats: stats64.or(stats).unwrap_or_default(),
    })
}

/// Decodes `IPVS_*_ATTR_STATS` (32-bit counters, 64-bit byte counts) or `STATS64` (all 64-bit).
pub fn decode_stats(attrs: &[u8], all64: bool) -> Result<Stats, DecodeError> {
    let mut s = Stats::default();
    for item in NlaIter::new(attrs) {
        let (ty, p) = item?;
        let wide = all64 || matches!(ty, IPVS_STATS_ATTR_INBYTES | IPVS_STATS_ATTR_OUTBYTES);
        let v = if wide {
            get_u64("STATS_ATTR", p)?
        } else {
            u64::from(get_u32("STATS_ATTR", p)?)
        };
        match ty {
            IPVS_STATS_ATTR_CONNS => s.conns = v,
            IPVS_STATS_ATTR_INPKTS => s.inpkts = v,
            IPVS_STATS_ATTR_OUTPKTS => s.outpkts = v,
            IPVS_STATS_ATTR_INBYTES => s.inbytes = v,
            IPVS_STATS_ATTR_OUTBYTES => s.outbytes = v,
            IPVS_STATS_ATTR_CPS => s.cps = v,
            IPVS_STATS_ATTR_INPPS => s.inpps = v,
            IPVS_STATS_ATTR_OUTPPS => s.outpps = v,
            IPVS_STATS_ATTR_INBPS => s.inbps = v,
            IPVS_STATS_ATTR_OUTBPS => s.outbps = v,
            _ => {}
        }
    }
    Ok(s)
}

fn decode_daemon(attrs: &[u8]) -> Result<SyncDaemon, DecodeError> {
    let mut state = None;
    let mut ifname = None;
    let mut sync_id = 0;
    let mut d = SyncDaemon {
        role: SyncRole::Master,
        ifname: String::new(),
        sync_id: 0,
        max_len: None,
        group: None,
        port: None,
        ttl: None,
    };
    for item in NlaIter::new(attrs) {
        let (ty, p) = item?;
        match ty {
            IPVS_DAEMON_ATTR_STATE => state = Some(get_u32("DAEMON_ATTR_STATE", p)?),
            IPVS_DAEMON_ATTR_MCAST_IFN => {
                ifname = Some(get_str("DAEMON_ATTR_MCAST_IFN", p, IP_VS_IFNAME_MAXLEN)?)
            }
            IPVS_DAEMON_ATTR_SYNC_ID => sync_id = get_u32("DAEMON_ATTR_SYNC_ID", p)?,
            IPVS_DAEMON_ATTR_SYNC_MAXLEN => {
                d.max_len = Some(get_u16("DAEMON_ATTR_SYNC_MAXLEN", p)?)
            }
            IPVS_DAEMON_ATTR_MCAST_GROUP => {
                d.group = addr_from_bytes(Family::Inet, p)
                    .filter(|_| p.len() == 4)
                    .filter(|a| !a.is_unspecified())
                    .or(d.group);
            }
            IPVS_DAEMON_ATTR_MCAST_GROUP6 => {
                if p.len() != 16 {
                    return Err(DecodeError::BadAttributeSize {
                        field: "DAEMON_ATTR_MCAST_GROUP6",
                        got: p.len(),
                        expected: 16,
                    });
                }
                d.group = addr_from_bytes(Family::Inet6, p)
                    .filter(|a| !a.is_unspecified())
                    .or(d.group);
            }
            // Host order (nla_put_u16 in ip_vs_genl_fill_daemon), unlike the service/dest ports.
            IPVS_DAEMON_ATTR_MCAST_PORT => d.port = Some(get_u16("DAEMON_ATTR_MCAST_PORT", p)?),
            IPVS_DAEMON_ATTR_MCAST_TTL => d.ttl = Some(get_u8("DAEMON_ATTR_MCAST_TTL", p)?),
            _ => {}
        }
    }
    d.role = match state.ok_or(DecodeError::Missing("DAEMON_ATTR_STATE"))? {
        IP_VS_STATE_MASTER => SyncRole::Master,
        IP_VS_STATE_BACKUP => SyncRole::Backup,
        v => {
            return Err(DecodeError::Unsupported {
                field: "DAEMON_ATTR_STATE",
                value: u64::from(v),
            })
        }
    };
    d.ifname = ifname.ok_or(DecodeError::Missing("DAEMON_ATTR_MCAST_IFN"))?;
    d.sync_id = sync_id;
    Ok(d)
}

fn decode_timeouts(attrs: &[u8]) -> Result<Timeouts, DecodeError> {
    let mut t = Timeouts::default();
    for item in NlaIter::new(attrs) {
        let (ty, p) = item?;
        match ty {
            IPVS_CMD_ATTR_TIMEOUT_TCP => t.tcp = Some(get_u32("TIMEOUT_TCP", p)?),
            IPVS_CMD_ATTR_TIMEOUT_TCP_FIN => t.tcp_fin = Some(get_u32("TIMEOUT_TCP_FIN", p)?),
            IPVS_CMD_ATTR_TIMEOUT_UDP => t.udp = Some(get_u32("TIMEOUT_UDP", p)?),
            _ => {}
        }
    }
    Ok(t)
}

fn decode_info(attrs: &[u8]) -> Result<Info, DecodeError> {
    let (mut version, mut size) = (None, None);
    for item in NlaIter::new(attrs) {
        let (ty, p) = item?;
        match ty {
            IPVS_INFO_ATTR_VERSION => version = Some(get_u32("INFO_ATTR_VERSION", p)?),
            IPVS_INFO_ATTR_CONN_TAB_SIZE => size = Some(get_u32("INFO_ATTR_CONN_TAB_SIZE", p)?),
            _ => {}
        }
    }
    Ok(Info {
        version: version.ok_or(DecodeError::Missing("INFO_ATTR_VERSION"))?,
        conn_tab_size: size.ok_or(DecodeError::Missing("INFO_ATTR_CONN_TAB_SIZE"))?,
    })
}

/// Extracts `CTRL_ATTR_FAMILY_ID` from a controller NEWFAMILY reply payload.
pub fn decode_family_id(payload: &[u8]) -> Result<u16, DecodeError> {
    let (cmd, attrs) = split_genl(payload)?;
    if cmd != CTRL_CMD_NEWFAMILY {
        return Err(DecodeError::Unsupported {
            field: "ctrl cmd",
            value: u64::from(cmd),
        });
    }
    let p = find(attrs, CTRL_ATTR_FAMILY_ID)?.ok_or(DecodeError::Missing("CTRL_ATTR_FAMILY_ID"))?;
    get_u16("CTRL_ATTR_FAMILY_ID", p)
}

/// Decodes every message in a received datagram as the fuzz target and tests do: data messages
/// through [`decode_reply`], errors through [`error_code`]. Returns the number of messages seen.
pub fn decode_datagram(buf: &[u8]) -> Result<usize, DecodeError> {
    let mut n = 0;
    for msg in NlMsgIter::new(buf) {
        let msg = msg?;
        n += 1;
        match msg.ty {
            NLMSG_ERROR => {
                error_code(msg.payload)?;
            }
            NLMSG_DONE | NLMSG_NOOP | NLMSG_OVERRUN => {}
            GENL_ID_CTRL => {
                decode_family_id(msg.payload)?;
            }
            _ => {
                decode_reply(msg.payload, None)?;
            }
        }
    }
    Ok(n)
}
