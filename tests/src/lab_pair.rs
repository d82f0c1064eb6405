//! The config the lab's pair drills (`lab_pair_heartbeat`, `lab_pair_split`) give box-a and
//! box-b: one VRRP instance sharing [`VIP`] on the public segment at 1 s adverts, the pair
//! joined by the peer cable; and pairing two lab boxes from their consoles.
//!
//! TCG guests on a shared 2-core machine stall for tens of milliseconds, so the heartbeat runs
//! at 50 ms / dead after 500 ms (the probe window follows the dead time); the default
//! 10 ms / 30 ms is for real boxes.

use std::time::Duration;

use crate::cable_pair::code_in;
use crate::lab::{Lab, LabError};

/// `pair start` on box-a's console, `pair join CODE` on box-b's (sent once: a second join would
/// burn a try); box-b's answer line, `pair: paired: this box is b ...`. Log lines the box
/// writes meanwhile (`tandem: ...`) are skipped.
pub fn pair_from_consoles(lab: &mut Lab, timeout: Duration) -> Result<String, LabError> {
    let a = lab.box_named("box-a")?;
    let line = a.wait_reply("pair start", "pair: code ", timeout)?;
    let code = code_in(&line).ok_or_else(|| format!("no code in {line:?}"))?;
    let b = lab.box_named("box-b")?;
    b.console.skip_to_end();
    b.console.send_line(&format!("pair join {code}"))?;
    loop {
        let line = b.console.wait_for("pair: paired: this box is b", timeout)?;
        if !line.contains("tandem: ") {
            return Ok(line);
        }
    }
}

/// The VIP the pair shares on the public segment.
pub const VIP: &str = "192.0.2.50";
/// The VRRP instance's name (its console lines read `vrrp: public_vip: ...`).
pub const INSTANCE: &str = "public_vip";

/// Box `name`'s config: `own` on `public`, priority `priority`, probing `uplink_probes`
/// (`peer_link.uplink_probes`; none: the line left out).
pub fn vip_config(name: &str, own: &str, priority: u8, uplink_probes: &[&str]) -> String {
    let probes = if uplink_probes.is_empty() {
        String::new()
    } else {
        let quoted: Vec<String> = uplink_probes.iter().map(|p| format!("\"{p}\"")).collect();
        format!("uplink_probes = [{}]\n", quoted.join(", "))
    };
    format!(
        r#"
[system]
hostname = "{name}"

[peer_link]
interface = "peer"
heartbeat_interval_ms = 50
dead_after_ms = 500
{probes}
[[interfaces]]
name = "public"
addresses = ["{own}/24"]

[[interfaces]]
name = "peer"

[[vrrp]]
name = "{INSTANCE}"
version = "v3"
vrid = 52
interface = "public"
priority = {priority}
advert_interval_cs = 100
accept_mode = true

[[vrrp.vips]]
address = "{VIP}"
prefix = 24
"#
    )
}
