//! Lab boxes as the tests and `make run` need them: real servers (a box on the lab image running
//! the lab HTTP responder, `served-by <name>` on port 80, configured for one forwarding method),
//! the configs of directors, and a VRRP pair.

use std::time::Duration;

use crate::lab::{BoxSpec, Lab, LabError, QemuBox, Segment};

/// A NAT real server on the private segment at `address`/24, routing replies back through the
/// director's NAT gateway address `gateway`.
pub fn nat_real_server(name: &str, address: &str, gateway: &str) -> BoxSpec {
    let config = format!(
        r#"
[system]
hostname = "{name}"

[[interfaces]]
name = "private"
addresses = ["{address}/24"]

[nat_gateway]
address = "{gateway}"
prefix = 24
interface = "private"
"#
    );
    BoxSpec::new(name, &[Segment::Private])
        .with_config(&config)
        .with_lab_program("/lab/lab-httpd")
}

/// The start of a NAT director's config, for a test to append its virtual services to: host
/// name `name`, the public port holding `public` (each /24: its own address, then the VIPs),
/// the private port at 198.51.100.1/24 and the NAT gateway address 198.51.100.254/24 on it,
/// which [`nat_real_server`]s (and real servers made of namespaces) route through.
pub fn nat_director(name: &str, public: &[&str]) -> String {
    let public: Vec<String> = public.iter().map(|a| format!("\"{a}/24\"")).collect();
    format!(
        r#"
[system]
hostname = "{name}"

[[interfaces]]
name = "public"
addresses = [{}]

[[interfaces]]
name = "private"
addresses = ["198.51.100.1/24"]

[nat_gateway]
address = "198.51.100.254"
prefix = 24
interface = "private"
"#,
        public.join(", ")
    )
}

/// The imported-checks director's config: box-a as a [`nat_director`] holding 192.0.2.1 and the
/// VIP 192.0.2.10, with the virtual services of `keepalived_conf` imported as an operator would
/// (`tandem config import`). An import that leaves anything out (a note) is an error naming it.
pub fn director_with_keepalived(keepalived_conf: &str) -> Result<String, LabError> {
    let imported = tandem_config::import::keepalived::import(keepalived_conf)
        .map_err(|e| format!("keepalived.conf import: {e}"))?;
    if !imported.notes.is_empty() {
        let notes: Vec<String> = imported.notes.iter().map(ToString::to_string).collect();
        return Err(format!(
            "the import does not carry everything; its notes: {notes:?}"
        ));
    }
    let mut config =
        tandem_config::text::from_toml(&nat_director("box-a", &["192.0.2.1", "192.0.2.10"]))
            .map_err(|e| format!("nat_director: {e}"))?;
    config.virtual_services = imported.config.virtual_services;
    tandem_config::text::to_toml(&config).map_err(|e| format!("director config: {e}"))
}

/// Boots box-a (public and private NICs) on `director_config` and rs1, a [`nat_real_server`] at
/// 198.51.100.11, then adds the client `cl` at 198.51.100.100/24 on the private segment: the
/// lab's first client, which [`rs1_control`] asks from.
pub fn boot_nat_director_with_rs1(
    lab: &mut Lab,
    director_config: &str,
    timeout: Duration,
) -> Result<(), LabError> {
    let specs = [
        BoxSpec::new("box-a", &[Segment::Public, Segment::Private]).with_config(director_config),
        nat_real_server("rs1", "198.51.100.11", "198.51.100.254"),
    ];
    lab.boot(&specs, timeout)?;
    lab.add_client("cl", Segment::Private)?
        .add_address("198.51.100.100/24")
}

/// Asks rs1's lab-httpd control port (198.51.100.11:8081) from the lab's first client: `what`
/// is `stop`, `start`, `body/<word>`, `icmp/off`, ...; its answer.
pub fn rs1_control(lab: &Lab, what: &str) -> Result<String, LabError> {
    let client = lab
        .clients
        .first()
        .ok_or("the lab has no client to ask rs1 from")?;
    client.exec(
        "curl",
        &[
            "-s",
            "--max-time",
            "10",
            &format!("http://198.51.100.11:8081/{what}"),
        ],
    )
}

/// The lab's VRRP pair on the public segment: box-a (192.0.2.1, priority 200) and box-b
/// (192.0.2.2, priority 100), each with VRRPv3 instance `instance` (VRID `vrid`, 1 s adverts)
/// holding `vip`/24. Accept_Mode is on: the tests ping the VIP itself (not an LVS service).
pub fn vrrp_pair(instance: &str, vrid: u8, vip: &str) -> [BoxSpec; 2] {
    [("box-a", "192.0.2.1", 200), ("box-b", "192.0.2.2", 100)].map(|(name, own, priority)| {
        let config = format!(
            r#"
[system]
hostname = "{name}"

[[interfaces]]
name = "public"
addresses = ["{own}/24"]

[[vrrp]]
name = "{instance}"
version = "v3"
vrid = {vrid}
interface = "public"
priority = {priority}
advert_interval_cs = 100
accept_mode = true

[[vrrp.vips]]
address = "{vip}"
prefix = 24
"#
        );
        BoxSpec::new(name, &[Segment::Public]).with_config(&config)
    })
}

/// A direct-routing real server at `address`/24 on the public segment holding `vip` on
/// loopback (ARP suppressed by the real-server role). `segments` are the NICs the box has.
pub fn dr_real_server(name: &str, address: &str, vip: &str, segments: &[Segment]) -> BoxSpec {
    let config = format!(
        r#"
[system]
hostname = "{name}"

[[interfaces]]
name = "public"
addresses = ["{address}/24"]

[real_server]
vips = ["{vip}"]
"#
    );
    BoxSpec::new(name, segments)
        .with_config(&config)
        .with_lab_program("/lab/lab-httpd")
}

/// Waits until a real server built here serves on port 80 and its real-server role is in place,
/// then returns its `realserver status` lines, which must include a passed self-check.
pub fn wait_real_server_ready(rs: &QemuBox, timeout: Duration) -> Result<Vec<String>, LabError> {
    rs.console
        .wait_for_any_time("lab-httpd: serving on port 80", timeout)?;
    rs.console
        .wait_for_any_time("realserver: role in place", timeout)?;
    let status = rs.engine_status("realserver", timeout)?;
    if !status
        .iter()
        .any(|line| line == "realserver: self-check ok")
    {
        return Err(format!(
            "{}: real-server self-check failed: {status:?}",
            rs.name
        ));
    }
    Ok(status)
}

/// The lab pair's director config: one of box-a/box-b holding VIP `vip` (VRRPv3, vrid 10, 1 s
/// adverts) on the public port at `priority`, with an LVS DR service `vip:port` (wlc, TCP check
/// every second, servers start down until checked) over rs1 (192.0.2.21) and rs2 (192.0.2.22),
/// and IPVS connection sync with the partner over the peer cable (pair id 0xa5: sync id 165).
/// `accept_mode` stays false (the RFC default): the service's packets are IPVS's at LOCAL_IN
/// priority 99, before the Accept_Mode filter at 110 drops the rest.
pub fn dr_director(name: &str, own: &str, priority: u8, vip: &str, port: u16) -> String {
    let public = format!(
        r#"
[[interfaces]]
name = "public"
addresses = ["{own}/24"]
"#
    );
    director(name, &public, "public", priority, vip, port)
}

/// [`dr_director`] with its public side bonded, as `make run`'s pair has it: an active-backup
/// bond `bond0` (the kernel's defaults: MII every 100 ms, `public` the primary) of the NICs
/// `public` and `public2` (boxes with [`Segment::Public2`] too), holding `own` and, through the
/// VRRP instance on `bond0`, the VIP.
pub fn dr_director_bonded(name: &str, own: &str, priority: u8, vip: &str, port: u16) -> String {
    let public = format!(
        r#"
[[interfaces]]
name = "public"

[[interfaces]]
name = "public2"

[[interfaces]]
name = "bond0"
addresses = ["{own}/24"]

[[bonds]]
name = "bond0"
slaves = ["public", "public2"]
"#
    );
    director(name, &public, "bond0", priority, vip, port)
}

/// A director's config: `public` (the public side's interfaces and bonds) and the VRRP
/// instance on `service_interface`.
fn director(
    name: &str,
    public: &str,
    service_interface: &str,
    priority: u8,
    vip: &str,
    port: u16,
) -> String {
    format!(
        r#"
[system]
hostname = "{name}"
{public}
[[interfaces]]
name = "peer"

[peer_link]
interface = "peer"
pair_id = "00000000000000a5"
ipvs_sync = true
# The pair heartbeat at a pace TCG guests keep (the 10 ms / 30 ms default is for real boxes).
heartbeat_interval_ms = 50
dead_after_ms = 500

[[vrrp]]
name = "web_vip"
version = "v3"
vrid = 10
interface = "{service_interface}"
priority = {priority}
advert_interval_cs = 100

[[vrrp.vips]]
address = "{vip}"
prefix = 24

[[virtual_services]]
name = "web"
address = "{vip}"
port = {port}
scheduler = "wlc"
forwarding = "dr"
start_down = true
check = {{ kind = "tcp", timing = {{ interval_ms = 1000, timeout_ms = 1000, retries = 0, retry_delay_ms = 200 }} }}

[[virtual_services.real_servers]]
address = "192.0.2.21"

[[virtual_services.real_servers]]
address = "192.0.2.22"
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The directors' configs load and validate without errors (warnings printed), bonded or not.
    #[test]
    fn director_configs_validate() {
        for text in [
            dr_director("box-a", "192.0.2.1", 200, "192.0.2.10", 80),
            dr_director_bonded("box-b", "192.0.2.2", 100, "192.0.2.10", 80),
        ] {
            let config = tandem_config::text::from_toml(&text).unwrap();
            let issues = tandem_config::validate::validate(&config);
            for issue in &issues {
                println!("{issue}");
            }
            assert!(!tandem_config::validate::has_errors(&issues), "{issues:?}");
        }
    }

    /// An imported keepalived service lands in box-a's NAT director config, which validates;
    /// an import with notes (a keyword it does not carry) is refused, naming the note.
    #[test]
    fn a_keepalived_director_carries_the_import_or_says_what_it_left_out() {
        let service = "virtual_server 192.0.2.10 80 {\n    lb_algo rr\n    lb_kind NAT\n    \
                       protocol TCP\n\n    real_server 198.51.100.11 80 {\n        weight 1\n        \
                       TCP_CHECK {\n            connect_timeout 1\n        }\n    }\n}\n";
        let text = director_with_keepalived(service).unwrap();
        let config = tandem_config::text::from_toml(&text).unwrap();
        assert_eq!(config.virtual_services.len(), 1);
        assert_eq!(config.virtual_services[0].port, 80);
        let issues = tandem_config::validate::validate(&config);
        assert!(!tandem_config::validate::has_errors(&issues), "{issues:?}");
        let error = director_with_keepalived(&format!(
            "global_defs {{\n    smtp_server relay.example\n}}\n{service}"
        ))
        .unwrap_err();
        assert!(error.contains("does not carry everything"), "{error}");
    }
}
