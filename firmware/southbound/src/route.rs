//! IPv4 default routes: set one over route netlink ([`crate::rtnl`]) and read the current one
//! from procfs.
//!
//! The real-server role of LVS/NAT routes its replies back through the director's NAT gateway
//! address; this is the small piece of routing it needs (the address work stays in [`crate::net`]).

use std::net::Ipv4Addr;

use crate::nlmsg::{
    self, Request, AF_INET, NLM_F_ACK, NLM_F_CREATE, NLM_F_REPLACE, NLM_F_REQUEST, RTA_GATEWAY,
    RTM_NEWROUTE,
};
use crate::rtnl::{Rtnl, RtnlError};

/// Setting a route failed.
#[derive(Debug)]
pub enum RouteError {
    /// The rtnetlink socket could not be opened.
    Connect(std::io::Error),
    /// The kernel refused the route (e.g. the gateway is not on a connected network: add the
    /// interface address first).
    Kernel {
        gateway: Ipv4Addr,
        source: RtnlError,
    },
}

impl core::fmt::Display for RouteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RouteError::Connect(e) => write!(f, "cannot open rtnetlink: {e}"),
            RouteError::Kernel { gateway, source } => write!(
                f,
                "cannot set the default route via {gateway}: {source} (is the gateway on a \
                 connected network of an interface that is up?)"
            ),
        }
    }
}

impl std::error::Error for RouteError {}

/// Sets (or replaces) the IPv4 default route to go via `gateway`: main table, protocol static,
/// scope universe, as `ip route replace default via GATEWAY` does.
pub async fn replace_default_v4(gateway: Ipv4Addr) -> Result<(), RouteError> {
    let mut rtnl = Rtnl::open().map_err(RouteError::Connect)?;
    let request = Request::new(
        RTM_NEWROUTE,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_REPLACE | NLM_F_CREATE,
        &nlmsg::rtmsg_default(AF_INET),
    )
    .attribute(RTA_GATEWAY, &gateway.octets());
    rtnl.execute(request)
        .map_err(|source| RouteError::Kernel { gateway, source })
}

/// The IPv4 default gateway from `/proc/net/route` text, if there is one.
pub fn parse_default_gateway_v4(proc_net_route: &str) -> Option<Ipv4Addr> {
    proc_net_route.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (destination, gateway, mask) = (fields.get(1)?, fields.get(2)?, fields.get(7)?);
        if *destination != "00000000" || *mask != "00000000" {
            return None;
        }
        // The kernel prints the address as a host-order hex number of network-order bytes.
        let raw = u32::from_str_radix(gateway, 16).ok()?;
        Some(Ipv4Addr::from(raw.to_le_bytes()))
    })
}

/// The current IPv4 default gateway (`None`: no default route, or procfs unreadable).
pub fn default_gateway_v4() -> Option<Ipv4Addr> {
    parse_default_gateway_v4(&std::fs::read_to_string("/proc/net/route").ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_gateway_is_read_from_proc_net_route() {
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    private\t00000000\t016433C6\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                    private\t006433C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(
            parse_default_gateway_v4(text),
            Some(Ipv4Addr::new(198, 51, 100, 1))
        );
        let no_default = "Iface\tDestination\tGateway\n\
                          private\t006433C6\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n";
        assert_eq!(parse_default_gateway_v4(no_default), None);
        assert_eq!(parse_default_gateway_v4("garbage\n\u{0}\n"), None);
    }
}
