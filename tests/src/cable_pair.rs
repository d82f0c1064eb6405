//! Two `tandem run` boxes joined only by a veth peer cable, each with its own `--state DIR` (its
//! config disk): the harness of the pairing and replication tests and bench.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::host::{tandem_query, wait_tandem_query, HostProcess, ScratchDir, TandemRun};
use crate::netns::{veth_pair, Netns};
use crate::LabError;

/// The log line a box prints once its pair service listens on the peer cable.
pub const PAIR_READY: &str = "pair: pairing and replication on peer";

/// Box `a` and box `b` (namespaces `<tag>-a`, `<tag>-b`) and the veth "peer" between them.
#[derive(Debug)]
pub struct CablePair {
    pub a: Netns,
    pub b: Netns,
    pub dir: ScratchDir,
    tandem: PathBuf,
}

impl CablePair {
    /// The namespaces and the cable; `tandem` is the binary the boxes run.
    pub fn new(tag: &str, tandem: &Path) -> Result<CablePair, LabError> {
        let a = Netns::new(&format!("{tag}-a"))?;
        let b = Netns::new(&format!("{tag}-b"))?;
        veth_pair(&a, "peer", &b, "peer")?;
        Ok(CablePair {
            a,
            b,
            dir: ScratchDir::new(tag)?,
            tandem: tandem.to_owned(),
        })
    }

    fn netns(&self, name: &str) -> &Netns {
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

    /// Box `name`'s `--state DIR`.
    pub fn state(&self, name: &str) -> PathBuf {
        self.dir.path.join(format!("{name}-state"))
    }

    /// Starts box `name` on its state dir (`config` seeds an empty one) and waits until its
    /// pair service listens.
    pub fn start(
        &self,
        name: &str,
        config: Option<&str>,
        timeout: Duration,
    ) -> Result<HostProcess, LabError> {
        let control = self.control(name);
        let state = self.state(name);
        let state = state.to_str().ok_or("state dir is not UTF-8")?;
        TandemRun {
            tandem: &self.tandem,
            dir: &self.dir.path,
            name,
            control: Some(&control),
        }
        .start_with(
            self.netns(name),
            config,
            &["--state", state],
            PAIR_READY,
            timeout,
        )
    }

    /// Box `name`'s answer to `words` over its control socket.
    pub fn ask(&self, name: &str, words: &[&str]) -> String {
        tandem_query(&self.tandem, &self.control(name), words)
    }

    /// Asks box `name` until the answer contains `what` (returned) or `timeout` passes (the
    /// last answer, as the error).
    pub fn wait(
        &self,
        name: &str,
        words: &[&str],
        what: &str,
        timeout: Duration,
    ) -> Result<String, String> {
        wait_tandem_query(&self.tandem, &self.control(name), words, timeout, |t| {
            t.contains(what)
        })
    }

    /// Waits until both ends of the cable have a usable link-local address (a fresh veth's
    /// stays tentative for about a second of duplicate address detection).
    pub fn wait_link_local(&self, timeout: Duration) -> Result<(), LabError> {
        for ns in [&self.a, &self.b] {
            let deadline = Instant::now() + timeout;
            loop {
                let out = ns.ip(&["-6", "addr", "show", "dev", "peer"])?;
                if out.contains("fe80") && !out.contains("tentative") {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(format!("{}: link-local address never left DAD", ns.name));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
    }

    /// `pair start` on a, `pair join CODE` on b; b's answer.
    pub fn pair_up(&self) -> Result<String, LabError> {
        let started = self.ask("a", &["pair", "start"]);
        let code = code_in(&started).ok_or_else(|| format!("no code in {started:?}"))?;
        Ok(self.ask("b", &["pair", "join", &code]))
    }
}

/// The code in `pair start`'s answer ("pair: code 1234-5678 (valid ...").
pub fn code_in(answer: &str) -> Option<String> {
    answer
        .split_whitespace()
        .skip_while(|w| *w != "code")
        .nth(1)
        .map(str::to_owned)
}

/// `netns`'s link-local address on its `peer` link.
pub fn peer_link_local(netns: &Netns) -> Result<std::net::Ipv6Addr, LabError> {
    let out = netns.ip(&["-6", "-o", "addr", "show", "dev", "peer", "scope", "link"])?;
    out.split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|a| a.split('/').next())
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| format!("no link-local address on peer in {out:?}"))
}
