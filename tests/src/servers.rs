//! Lab real servers as the LVS tests and `make run` need them: a box on the lab image running
//! the lab HTTP responder (`served-by <name>` on port 80), configured for one forwarding method.

use std::time::Duration;

use crate::lab::{BoxSpec, LabError, QemuBox, Segment};

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
