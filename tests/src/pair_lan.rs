//! Two `tandem run` boxes on a bridged service LAN with a client (and any other namespaces a
//! test puts there), joined by a veth peer cable: the host-tier harness the pair heartbeat,
//! uplink, metrics and load-sharing tests share, each adding only its config and its own steps.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::host::{
    tandem_query, wait_tandem_query, HostProcess, HostSegment, ScratchDir, TandemRun,
};
use crate::netns::{veth_pair, Netns};
use crate::vrrp_status::instance_state;
use crate::LabError;

/// The client's own address on the service LAN.
pub const CLIENT_OWN: &str = "192.0.2.10";
/// Box A's own address on the service LAN.
pub const A_OWN: &str = "192.0.2.2";
/// Box B's own address on the service LAN.
pub const B_OWN: &str = "192.0.2.3";
/// The VRRP instance [`PairLan::wait_state`] looks at.
pub const INSTANCE: &str = "web";

/// The segment, the client, box `a` and box `b` (namespaces `<tag>-sg`, `<tag>-c`, `<tag>-a`,
/// `<tag>-b`), the namespaces a test adds, and a scratch dir for configs, logs and sockets.
///
/// Bridge ports follow attach order: p1 the client, p2 box A, p3 box B, then `extra` in the
/// order given (p4, ...). Each has `eth0` on the segment with its address (`/24`, no DAD);
/// the boxes also have `peer`, the cable between them.
#[derive(Debug)]
pub struct PairLan {
    pub segment: HostSegment,
    pub a: Netns,
    pub b: Netns,
    pub client: Netns,
    /// The namespaces from `new`'s `extra`, in that order.
    pub extra: Vec<Netns>,
    pub dir: ScratchDir,
    tandem: PathBuf,
    limit: Duration,
}

impl PairLan {
    /// Builds the LAN and the cable; `tandem` is the binary the boxes run, `limit` how long
    /// a start or a wait may take, `extra` more namespaces on the LAN as (name suffix,
    /// address), e.g. `("g", "192.0.2.1")` for `<tag>-g`.
    pub fn new(
        tag: &str,
        tandem: &Path,
        limit: Duration,
        extra: &[(&str, &str)],
    ) -> Result<PairLan, LabError> {
        let mut segment = HostSegment::new(&format!("{tag}-sg"))?;
        let client = Netns::new(&format!("{tag}-c"))?;
        let a = Netns::new(&format!("{tag}-a"))?;
        let b = Netns::new(&format!("{tag}-b"))?;
        let extra_ns = extra
            .iter()
            .map(|(suffix, _)| Netns::new(&format!("{tag}-{suffix}")))
            .collect::<Result<Vec<_>, _>>()?;
        let named = [(&client, CLIENT_OWN), (&a, A_OWN), (&b, B_OWN)];
        let extras = extra_ns.iter().zip(extra.iter().map(|(_, own)| *own));
        for (ns, own) in named.into_iter().chain(extras) {
            segment.attach(ns, "eth0")?;
            ns.ip(&["addr", "add", &format!("{own}/24"), "dev", "eth0", "nodad"])?;
        }
        veth_pair(&a, "peer", &b, "peer")?;
        Ok(PairLan {
            segment,
            a,
            b,
            client,
            extra: extra_ns,
            dir: ScratchDir::new(tag)?,
            tandem: tandem.to_owned(),
            limit,
        })
    }

    /// Box `name`'s namespace ("a", else b).
    pub fn netns(&self, name: &str) -> &Netns {
        if name == "a" {
            &self.a
        } else {
            &self.b
        }
    }

    /// Box `name`'s control socket.
    pub fn control(&self, name: &str) -> PathBuf {
        self.dir.path.join(format!("{name}.sock"))
    }

    /// Starts `tandem run` as box `name` on `config` (TOML) in its namespace and waits until
    /// its log shows `ready`.
    pub fn run(&self, name: &str, config: &str, ready: &str) -> Result<HostProcess, LabError> {
        let control = self.control(name);
        TandemRun {
            tandem: &self.tandem,
            dir: &self.dir.path,
            name,
            control: Some(&control),
        }
        .start(self.netns(name), config, ready, self.limit)
    }

    /// Box `name`'s answer to `words` over its control socket.
    pub fn ask(&self, name: &str, words: &[&str]) -> String {
        tandem_query(&self.tandem, &self.control(name), words)
    }

    /// Asks box `name` until `check` holds on the answer (returned).
    ///
    /// # Panics
    /// When the limit passes first, with `what` and the last answer: a test's failed step.
    pub fn wait(
        &self,
        name: &str,
        words: &[&str],
        what: &str,
        check: impl Fn(&str) -> bool,
    ) -> String {
        wait_tandem_query(&self.tandem, &self.control(name), words, self.limit, check)
            .unwrap_or_else(|last| panic!("{name} never showed {what}; last answer:\n{last}"))
    }

    /// Waits until box `name`'s VRRP instance [`INSTANCE`] is in `state` (`vrrp status`).
    pub fn wait_state(&self, name: &str, state: &str) {
        self.wait(name, &["vrrp", "status"], state, |text| {
            instance_state(text, INSTANCE) == Some(state)
        });
    }

    /// Waits until box `name`'s `pair status` contains `what` (returned).
    pub fn wait_pair(&self, name: &str, what: &str) -> String {
        self.wait(name, &["pair", "status"], what, |text| text.contains(what))
    }
}
