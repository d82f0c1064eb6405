//! The encoder of the model as an older format lays it out, beside the decoder seeds of
//! [`super`] and keyed on the same constants, so one module knows each format's layout.
//!
//! Why: new firmware keeps writing the format the previous firmware reads until both boxes
//! have blessed it (a fallback to the old slot, or a partner still on it, must read what this
//! box stores and pushes). Per-format `Serialize` wrappers mirror the seeds: format 5 is the
//! model without format 6's `more_checks` (real servers, services) and `track_checks` (VRRP
//! instances), so [`ConfigOut`] writes every other field with the model's own encoder and
//! only those three structs field by field. Nothing is dropped silently: [`first_misfit`]
//! names the first field the format cannot hold, and the blob encoder refuses before a byte
//! is written. Formats older than [`OLDEST_WRITABLE`] (other check kinds, fewer bond and VRRP
//! fields) are not written by this firmware: no supported upgrade starts from them.

use alloc::format;
use alloc::string::String;

use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::{MANAGEMENT_FORMAT, MORE_CHECKS_FORMAT};
use crate::model::{Config, RealServer, VirtualService, VrrpInstance};

/// The oldest format this firmware writes.
pub(in crate::blob) const OLDEST_WRITABLE: u16 = MANAGEMENT_FORMAT;

/// A field the format cannot hold: its edit path and the first format that holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::blob) struct Misfit {
    pub(in crate::blob) path: String,
    pub(in crate::blob) needs: u16,
}

/// The first field of `config` that format `format` (>= [`OLDEST_WRITABLE`]) cannot hold, as
/// an edit path (`delete PATH` removes it), in the order the encoder writes the fields.
pub(in crate::blob) fn first_misfit(config: &Config, format: u16) -> Option<Misfit> {
    if format >= MORE_CHECKS_FORMAT {
        return None;
    }
    let misfit = |path: String| {
        Some(Misfit {
            path,
            needs: MORE_CHECKS_FORMAT,
        })
    };
    for (index, instance) in config.vrrp.iter().enumerate() {
        if !instance.track_checks.is_empty() {
            return misfit(format!(
                "vrrp.{}.track_checks",
                item_segment(&instance.name, index)
            ));
        }
    }
    for (index, service) in config.virtual_services.iter().enumerate() {
        let at = format!("virtual_services.{}", item_segment(&service.name, index));
        for (index, server) in service.real_servers.iter().enumerate() {
            if !server.more_checks.is_empty() {
                return misfit(format!(
                    "{at}.real_servers.{}.more_checks",
                    server_segment(service, index, server)
                ));
            }
        }
        if !service.more_checks.is_empty() {
            return misfit(format!("{at}.more_checks"));
        }
    }
    None
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
        let mut out = serializer.serialize_struct("Config", 15)?;
        out.serialize_field("system", system)?;
        out.serialize_field("management", management)?;
        out.serialize_field("peer_link", peer_link)?;
        out.serialize_field("notify", notify)?;
        out.serialize_field("interfaces", interfaces)?;
        out.serialize_field("bonds", bonds)?;
        out.serialize_field("vrrp", &ListOut(&vrrp[..], VrrpOut))?;
        out.serialize_field("sync_groups", sync_groups)?;
        out.serialize_field(
            "virtual_services",
            &ListOut(&virtual_services[..], ServiceOut),
        )?;
        out.serialize_field("fwmark_rules", fwmark_rules)?;
        out.serialize_field("nat_gateway", nat_gateway)?;
        out.serialize_field("real_server", real_server)?;
        out.serialize_field("clusterip", clusterip)?;
        out.serialize_field("pair", pair)?;
        out.serialize_field("tls_trust", tls_trust)?;
        out.end()
    }
}

/// A list whose elements each serialize through the wrapper `W` (a per-format layout).
struct ListOut<'a, T, W>(&'a [T], fn(&'a T) -> W);

impl<'a, T, W: Serialize> Serialize for ListOut<'a, T, W> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.iter().map(self.1))
    }
}

/// A VRRP instance as format 5 lays it out: without `track_checks`.
struct VrrpOut<'a>(&'a VrrpInstance);

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
        let mut out = serializer.serialize_struct("VrrpInstance", 20)?;
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
        out.serialize_field("use_vmac", use_vmac)?;
        out.serialize_field("vmac_interface", vmac_interface)?;
        out.serialize_field("vmac_xmit_base", vmac_xmit_base)?;
        out.end()
    }
}

/// A virtual service as format 5 lays it out: without `more_checks`, its real servers too.
struct ServiceOut<'a>(&'a VirtualService);

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
        out.serialize_field("check", check)?;
        out.serialize_field("real_servers", &ListOut(&real_servers[..], RealServerOut))?;
        out.end()
    }
}

/// A real server as format 5 lays it out: without `more_checks`.
struct RealServerOut<'a>(&'a RealServer);

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
        out.serialize_field("check", check)?;
        out.end()
    }
}
