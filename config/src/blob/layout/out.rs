//! The encoder of the model as an older format lays it out, beside the decoder seeds of
//! [`super`] and keyed on the same constants, so one module knows each format's layout.
//!
//! Why: new firmware keeps writing the format the previous firmware reads until both boxes
//! have blessed it (a fallback to the old slot, or a partner still on it, must read what this
//! box stores and pushes). Per-format `Serialize` wrappers mirror the seeds: format 5 is the
//! model without format 6's `more_checks` (real servers, services) and `track_checks` (VRRP
//! instances); format 4 also lacks format 5's management `syslog` and `time_servers`, the
//! VRRP instances' vmac fields, the trust sets, and lays a health check's kind out as
//! [`super::v4`] does (an HTTP status is one code; no `more_urls`, no `tls_ca`, no ping, UDP
//! or DNS checks). [`ConfigOut`] writes every other field with the model's own encoder and
//! only those structs field by field. Nothing is dropped silently: [`first_misfit`] names the
//! first field the format cannot hold, and the blob encoder refuses before a byte is written.
//! Formats older than [`OLDEST_WRITABLE`] (fewer bond and load-sharing fields, no pair
//! halves, the old history) are not written by this firmware.

use alloc::format;
use alloc::string::String;

use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::{BOND_OPTIONS_FORMAT, MANAGEMENT_FORMAT, MORE_CHECKS_FORMAT};
use crate::model::{
    Check, CheckKind, Config, Management, RealServer, StatusCodes, VirtualService, VrrpInstance,
};

/// The oldest format this firmware writes.
pub(in crate::blob) const OLDEST_WRITABLE: u16 = BOND_OPTIONS_FORMAT;

/// A field the format cannot hold: its edit path and the first format that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::blob) struct Misfit {
    pub(in crate::blob) path: String,
    pub(in crate::blob) needs: u16,
}

/// The first field of `config` that format `format` (>= [`OLDEST_WRITABLE`]) cannot hold, as
/// an edit path (`delete PATH` removes it), in the order the encoder writes the fields.
pub(in crate::blob) fn first_misfit(config: &Config, format: u16) -> Option<Misfit> {
    let misfit = |path: String, needs: u16| Some(Misfit { path, needs });
    let before_5 = format < MANAGEMENT_FORMAT;
    let before_6 = format < MORE_CHECKS_FORMAT;
    if before_5 {
        if !config.management.syslog.is_empty() {
            return misfit(String::from("management.syslog"), MANAGEMENT_FORMAT);
        }
        if !config.management.time_servers.is_empty() {
            return misfit(String::from("management.time_servers"), MANAGEMENT_FORMAT);
        }
    }
    for (index, instance) in config.vrrp.iter().enumerate() {
        let at = format!("vrrp.{}", item_segment(&instance.name, index));
        if before_5 {
            let vmac = [
                ("use_vmac", instance.use_vmac),
                ("vmac_interface", instance.vmac_interface.is_some()),
                ("vmac_xmit_base", instance.vmac_xmit_base),
            ];
            if let Some((field, _)) = vmac.iter().find(|(_, set)| *set) {
                return misfit(format!("{at}.{field}"), MANAGEMENT_FORMAT);
            }
        }
        if before_6 && !instance.track_checks.is_empty() {
            return misfit(format!("{at}.track_checks"), MORE_CHECKS_FORMAT);
        }
    }
    for (index, service) in config.virtual_services.iter().enumerate() {
        let at = format!("virtual_services.{}", item_segment(&service.name, index));
        if before_5 {
            if let Some(field) = check_misfit(service.check.as_deref()) {
                return misfit(format!("{at}.check.{field}"), MANAGEMENT_FORMAT);
            }
        }
        for (index, server) in service.real_servers.iter().enumerate() {
            let at = format!(
                "{at}.real_servers.{}",
                server_segment(service, index, server)
            );
            if before_5 {
                if let Some(field) = check_misfit(server.check.as_deref()) {
                    return misfit(format!("{at}.check.{field}"), MANAGEMENT_FORMAT);
                }
            }
            if before_6 && !server.more_checks.is_empty() {
                return misfit(format!("{at}.more_checks"), MORE_CHECKS_FORMAT);
            }
        }
        if before_6 && !service.more_checks.is_empty() {
            return misfit(format!("{at}.more_checks"), MORE_CHECKS_FORMAT);
        }
    }
    if before_5 && !config.tls_trust.is_empty() {
        return misfit(String::from("tls_trust"), MANAGEMENT_FORMAT);
    }
    None
}

/// What of a check format 4 cannot hold (its path below the check), if anything.
fn check_misfit(check: Option<&Check>) -> Option<&'static str> {
    match &check?.kind {
        CheckKind::Tcp | CheckKind::Smtp { .. } | CheckKind::SendExpect { .. } => None,
        CheckKind::Http {
            status,
            more_urls,
            tls_ca,
            ..
        } => {
            if status
                .as_ref()
                .is_some_and(|codes| single_code(codes).is_none())
            {
                Some("kind.http.status")
            } else if !more_urls.is_empty() {
                Some("kind.http.more_urls")
            } else if tls_ca.is_some() {
                Some("kind.http.tls_ca")
            } else {
                None
            }
        }
        CheckKind::Ping | CheckKind::Udp { .. } | CheckKind::Dns { .. } => Some("kind"),
    }
}

/// The one status code `codes` accepts, when it is one code (format 4's HTTP status).
fn single_code(codes: &StatusCodes) -> Option<u16> {
    match &codes.0[..] {
        [range] if range.first == range.last => Some(range.first),
        _ => None,
    }
}

/// A list item's segment: its name, else its position.
fn item_segment(name: &str, index: usize) -> String {
    if name.is_empty() {
        format!("#{index}")
    } else {
        segment(name)
    }
}

/// One path segment, quoted when it holds a dot, a quote or a blank.
fn segment(name: &str) -> String {
    if name.contains(['.', '"', ' ']) {
        format!("\"{}\"", name.replace('"', "\\\""))
    } else {
        String::from(name)
    }
}

/// A real server's segment: its name, else its address when no other server of the service
/// has it, else its position.
fn server_segment(service: &VirtualService, index: usize, server: &RealServer) -> String {
    if !server.name.is_empty() {
        return segment(&server.name);
    }
    // Edit paths find an unnamed item by its address too.
    let same_address = service
        .real_servers
        .iter()
        .filter(|other| other.address == server.address)
        .count();
    if same_address == 1 {
        format!("{}", server.address)
    } else {
        format!("#{index}")
    }
}

/// A [`Config`] as format `format` lays it out (5 or 6; check [`first_misfit`] first: a
/// field the format cannot hold is left out).
pub(in crate::blob) struct ConfigOut<'a> {
    pub(in crate::blob) config: &'a Config,
    pub(in crate::blob) format: u16,
}

impl Serialize for ConfigOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.format >= MORE_CHECKS_FORMAT {
            return self.config.serialize(serializer);
        }
        // Destructured so that a new field does not compile until its format is decided.
        let Config {
            system,
            management,
            peer_link,
            notify,
            interfaces,
            bonds,
            vrrp,
            sync_groups,
            virtual_services,
            fwmark_rules,
            nat_gateway,
            real_server,
            clusterip,
            pair,
            tls_trust,
        } = self.config;
        let format = self.format;
        let before_5 = format < MANAGEMENT_FORMAT;
        let mut out = serializer.serialize_struct("Config", if before_5 { 14 } else { 15 })?;
        out.serialize_field("system", system)?;
        out.serialize_field("management", &ManagementOut(management, format))?;
        out.serialize_field("peer_link", peer_link)?;
        out.serialize_field("notify", notify)?;
        out.serialize_field("interfaces", interfaces)?;
        out.serialize_field("bonds", bonds)?;
        out.serialize_field("vrrp", &ListOut(&vrrp[..], format, VrrpOut))?;
        out.serialize_field("sync_groups", sync_groups)?;
        out.serialize_field(
            "virtual_services",
            &ListOut(&virtual_services[..], format, ServiceOut),
        )?;
        out.serialize_field("fwmark_rules", fwmark_rules)?;
        out.serialize_field("nat_gateway", nat_gateway)?;
        out.serialize_field("real_server", real_server)?;
        out.serialize_field("clusterip", clusterip)?;
        out.serialize_field("pair", pair)?;
        if !before_5 {
            out.serialize_field("tls_trust", tls_trust)?;
        }
        out.end()
    }
}

/// A list whose elements each serialize through the wrapper `W` (a per-format layout) made
/// with the format.
struct ListOut<'a, T, W>(&'a [T], u16, fn(&'a T, u16) -> W);

impl<'a, T, W: Serialize> Serialize for ListOut<'a, T, W> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(|item| (self.2)(item, self.1)))
    }
}

/// The management settings as a format lays them out: format 4 without `syslog` and
/// `time_servers`.
struct ManagementOut<'a>(&'a Management, u16);

impl Serialize for ManagementOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.1 >= MANAGEMENT_FORMAT {
            return self.0.serialize(serializer);
        }
        let Management {
            interface,
            address,
            gateway,
            metrics,
            syslog: _,
            time_servers: _,
        } = self.0;
        let mut out = serializer.serialize_struct("Management", 4)?;
        out.serialize_field("interface", interface)?;
        out.serialize_field("address", address)?;
        out.serialize_field("gateway", gateway)?;
        out.serialize_field("metrics", metrics)?;
        out.end()
    }
}

/// A VRRP instance as format 5 lays it out (without `track_checks`), or format 4 (without
/// the vmac fields too).
struct VrrpOut<'a>(&'a VrrpInstance, u16);

impl Serialize for VrrpOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let VrrpInstance {
            name,
            version,
            vrid,
            interface,
            priority,
            advert_interval_cs,
            initial_state,
            auth,
            preempt,
            preempt_delay_s,
            accept_mode,
            vips,
            unicast_source,
            unicast_peers,
            track_interfaces,
            track_bonds,
            garp,
            use_vmac,
            vmac_interface,
            vmac_xmit_base,
            track_checks: _,
        } = self.0;
        let before_5 = self.1 < MANAGEMENT_FORMAT;
        let mut out =
            serializer.serialize_struct("VrrpInstance", if before_5 { 17 } else { 20 })?;
        out.serialize_field("name", name)?;
        out.serialize_field("version", version)?;
        out.serialize_field("vrid", vrid)?;
        out.serialize_field("interface", interface)?;
        out.serialize_field("priority", priority)?;
        out.serialize_field("advert_interval_cs", advert_interval_cs)?;
        out.serialize_field("initial_state", initial_state)?;
        out.serialize_field("auth", auth)?;
        out.serialize_field("preempt", preempt)?;
        out.serialize_field("preempt_delay_s", preempt_delay_s)?;
        out.serialize_field("accept_mode", accept_mode)?;
        out.serialize_field("vips", vips)?;
        out.serialize_field("unicast_source", unicast_source)?;
        out.serialize_field("unicast_peers", unicast_peers)?;
        out.serialize_field("track_interfaces", track_interfaces)?;
        out.serialize_field("track_bonds", track_bonds)?;
        out.serialize_field("garp", garp)?;
        if !before_5 {
            out.serialize_field("use_vmac", use_vmac)?;
            out.serialize_field("vmac_interface", vmac_interface)?;
            out.serialize_field("vmac_xmit_base", vmac_xmit_base)?;
        }
        out.end()
    }
}

/// A virtual service as format 5 lays it out: without `more_checks`, its real servers too;
/// format 4 also with its checks in the old layout.
struct ServiceOut<'a>(&'a VirtualService, u16);

impl Serialize for ServiceOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let VirtualService {
            name,
            active,
            address,
            address_prefix,
            interface,
            port,
            protocol,
            fwmark,
            scheduler,
            scheduler_flags,
            persistence,
            forwarding,
            quorum,
            hysteresis,
            sorry_server,
            on_failure,
            reentry_s,
            start_down,
            check,
            real_servers,
            more_checks: _,
        } = self.0;
        let mut out = serializer.serialize_struct("VirtualService", 20)?;
        out.serialize_field("name", name)?;
        out.serialize_field("active", active)?;
        out.serialize_field("address", address)?;
        out.serialize_field("address_prefix", address_prefix)?;
        out.serialize_field("interface", interface)?;
        out.serialize_field("port", port)?;
        out.serialize_field("protocol", protocol)?;
        out.serialize_field("fwmark", fwmark)?;
        out.serialize_field("scheduler", scheduler)?;
        out.serialize_field("scheduler_flags", scheduler_flags)?;
        out.serialize_field("persistence", persistence)?;
        out.serialize_field("forwarding", forwarding)?;
        out.serialize_field("quorum", quorum)?;
        out.serialize_field("hysteresis", hysteresis)?;
        out.serialize_field("sorry_server", sorry_server)?;
        out.serialize_field("on_failure", on_failure)?;
        out.serialize_field("reentry_s", reentry_s)?;
        out.serialize_field("start_down", start_down)?;
        out.serialize_field("check", &CheckOut(check.as_deref(), self.1))?;
        out.serialize_field(
            "real_servers",
            &ListOut(&real_servers[..], self.1, RealServerOut),
        )?;
        out.end()
    }
}

/// A real server as format 5 lays it out (without `more_checks`), or format 4 (its check in
/// the old layout too).
struct RealServerOut<'a>(&'a RealServer, u16);

impl Serialize for RealServerOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let RealServer {
            name,
            address,
            port,
            weight,
            forwarding,
            active,
            upper_threshold,
            lower_threshold,
            on_failure,
            check,
            more_checks: _,
        } = self.0;
        let mut out = serializer.serialize_struct("RealServer", 10)?;
        out.serialize_field("name", name)?;
        out.serialize_field("address", address)?;
        out.serialize_field("port", port)?;
        out.serialize_field("weight", weight)?;
        out.serialize_field("forwarding", forwarding)?;
        out.serialize_field("active", active)?;
        out.serialize_field("upper_threshold", upper_threshold)?;
        out.serialize_field("lower_threshold", lower_threshold)?;
        out.serialize_field("on_failure", on_failure)?;
        out.serialize_field("check", &CheckOut(check.as_deref(), self.1))?;
        out.end()
    }
}

/// An optional check as a format lays it out: format 4 with the old kind ([`super::v4`]).
struct CheckOut<'a>(Option<&'a Check>, u16);

impl Serialize for CheckOut<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            None => serializer.serialize_none(),
            Some(check) if self.1 >= MANAGEMENT_FORMAT => serializer.serialize_some(check),
            Some(check) => serializer.serialize_some(&CheckV4(check)),
        }
    }
}

/// A present check as format 4 laid it out.
struct CheckV4<'a>(&'a Check);

impl Serialize for CheckV4<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Check {
            kind,
            timing,
            connect_port,
            connect_address,
            bind_address,
        } = self.0;
        let mut out = serializer.serialize_struct("Check", 5)?;
        out.serialize_field("kind", &KindV4(kind))?;
        out.serialize_field("timing", timing)?;
        out.serialize_field("connect_port", connect_port)?;
        out.serialize_field("connect_address", connect_address)?;
        out.serialize_field("bind_address", bind_address)?;
        out.end()
    }
}

/// A check kind as format 4 laid it out: `v4::CheckKind`'s variants, in its order. What
/// format 4 cannot hold is refused here too (`first_misfit` names it first).
struct KindV4<'a>(&'a CheckKind);

impl Serialize for KindV4<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error as _, SerializeStructVariant};
        const NAME: &str = "CheckKind";
        match self.0 {
            CheckKind::Tcp => serializer.serialize_unit_variant(NAME, 0, "Tcp"),
            CheckKind::Http {
                path,
                status,
                body,
                virtual_host,
                tls,
                more_urls,
                tls_ca,
            } => {
                let status =
                    match status {
                        None => None,
                        Some(codes) => Some(single_code(codes).ok_or_else(|| {
                            S::Error::custom("format 4 holds one HTTP status code")
                        })?),
                    };
                if !more_urls.is_empty() || tls_ca.is_some() {
                    return Err(S::Error::custom(
                        "format 4 holds no more_urls and no tls_ca",
                    ));
                }
                let mut out = serializer.serialize_struct_variant(NAME, 1, "Http", 5)?;
                out.serialize_field("path", path)?;
                out.serialize_field("status", &status)?;
                out.serialize_field("body", body)?;
                out.serialize_field("virtual_host", virtual_host)?;
                out.serialize_field("tls", tls)?;
                out.end()
            }
            CheckKind::Smtp { helo_name } => {
                let mut out = serializer.serialize_struct_variant(NAME, 2, "Smtp", 1)?;
                out.serialize_field("helo_name", helo_name)?;
                out.end()
            }
            CheckKind::SendExpect { send, expect } => {
                let mut out = serializer.serialize_struct_variant(NAME, 3, "SendExpect", 2)?;
                out.serialize_field("send", send)?;
                out.serialize_field("expect", expect)?;
                out.end()
            }
            CheckKind::Ping | CheckKind::Udp { .. } | CheckKind::Dns { .. } => Err(
                S::Error::custom("format 4 holds no ping, UDP or DNS checks"),
            ),
        }
    }
}
