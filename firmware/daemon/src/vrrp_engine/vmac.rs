//! `use_vmac`: the macvlans of the VRRP instances (see `tandem_southbound::macvlan`), made,
//! kept and removed off the VRRP loop.
//!
//! Making a link, writing a dozen knobs and replacing an nftables table take milliseconds, and
//! deleting a link waits for an RCU grace period (tens of ms): none of it may sit in front of
//! an advert. So one worker task owns this side of the kernel and runs each job on the blocking
//! pool, with a route-netlink socket of its own (the engine's, which adds VIPs on a takeover,
//! is never held by it); jobs run in the order they were asked for.
//!
//! - [`Vmacs::ensure`] (from planning, which runs beside the loop): each wanted macvlan is
//!   made, fixed or kept ([`MacvlanExecutor::ensure_link`]), gets its knobs and, for IPv4, its
//!   parent's (saved first: put back when the parent's last IPv4 macvlan goes) and the
//!   `all.rp_filter` move; the report filter (`tandem_southbound::vmac_filter`) names it; only
//!   then is it set up, so no IGMP / MLD report of the VRRP group leaves from the virtual MAC.
//!   The first job also deletes the virtual-router macvlans a crashed predecessor left that no
//!   instance wants. A macvlan that cannot be made refuses its instance with the reason.
//! - [`Vmacs::keep`] (after an apply has moved the addresses off them and sent the removed
//!   instances' last adverts): every macvlan this worker made that is not named is deleted.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use tandem_southbound::macvlan::{
    self, parent_sysctls, set_sysctl, vmac_sysctls, Ensured, MacvlanExecutor, MacvlanSpec,
};
use tandem_southbound::{sysctl, vmac_filter};

use crate::logring::Log;

/// Per macvlan name: what was done, or why it could not be.
pub type Answers = Vec<(String, Result<Ensured, String>)>;

/// One job for the worker.
#[derive(Debug)]
enum Job {
    Ensure {
        wanted: Vec<MacvlanSpec>,
        reply: oneshot::Sender<Answers>,
    },
    Keep {
        names: Vec<String>,
        done: Option<oneshot::Sender<()>>,
    },
}

/// What `vrrp status` shows of the worker.
#[derive(Debug, Default, Clone)]
struct Shown {
    /// The macvlans it made (or kept) and holds.
    held: Vec<String>,
    /// Whether the report filter table is in place for them.
    filtered: bool,
    /// The last failure of a removal or of the report filter.
    error: Option<String>,
}

/// The handle the engine and its planning tasks use.
#[derive(Debug, Clone)]
pub struct Vmacs {
    jobs: mpsc::UnboundedSender<Job>,
    shown: Arc<Mutex<Shown>>,
}

impl Vmacs {
    /// Starts the worker on the current runtime.
    pub fn start(log: &Log) -> Vmacs {
        let (jobs, inbox) = mpsc::unbounded_channel();
        let shown = Arc::new(Mutex::new(Shown::default()));
        tokio::spawn(worker(inbox, log.clone(), Arc::clone(&shown)));
        Vmacs { jobs, shown }
    }

    /// Makes each of `wanted` (see the module); one result per name. A dead worker answers
    /// every one with an error.
    pub async fn ensure(&self, wanted: Vec<MacvlanSpec>) -> Answers {
        let names: Vec<String> = wanted.iter().map(|s| s.name.clone()).collect();
        let (reply, answer) = oneshot::channel();
        let gone = || {
            names
                .iter()
                .map(|n| {
                    (
                        n.clone(),
                        Err("the vmac worker stopped (restart tandem)".to_owned()),
                    )
                })
                .collect()
        };
        if self.jobs.send(Job::Ensure { wanted, reply }).is_err() {
            return gone();
        }
        answer.await.unwrap_or_else(|_| gone())
    }

    /// Deletes every macvlan the worker made that `names` does not list (not waiting).
    pub fn keep(&self, names: Vec<String>) {
        let _ = self.jobs.send(Job::Keep { names, done: None });
    }

    /// [`Vmacs::keep`], waiting until it is done (shutdown).
    pub async fn keep_and_wait(&self, names: Vec<String>) {
        let (done, finished) = oneshot::channel();
        if self
            .jobs
            .send(Job::Keep {
                names,
                done: Some(done),
            })
            .is_ok()
        {
            let _ = finished.await;
        }
    }

    /// The `vrrp status` line (None when no macvlan is held and nothing failed).
    pub fn status_line(&self) -> Option<String> {
        let shown = self.shown.lock().ok()?.clone();
        if shown.held.is_empty() && shown.error.is_none() {
            return None;
        }
        let mut line = format!(
            "vmac: {} macvlan(s): {}",
            shown.held.len(),
            shown.held.join(", ")
        );
        if shown.filtered {
            // One rule dump; the kernel answers in microseconds.
            let dropped = vmac_filter::dropped_packets().unwrap_or(0);
            line.push_str(&format!(
                "; VRRP group reports kept off the virtual MAC {dropped} (table inet {})",
                vmac_filter::TABLE
            ));
        }
        if let Some(error) = &shown.error {
            line.push_str(&format!("; last failure: {error}"));
        }
        Some(line)
    }
}

/// A knob written: its key, the value written, the value before (None: unreadable).
type Written = (String, &'static str, Option<String>);

/// What the worker owns of the kernel, handed to the blocking pool for each job.
#[derive(Debug, Default)]
struct Kernel {
    executor: Option<MacvlanExecutor>,
    /// The macvlans made (or kept) for the running instances.
    made: BTreeMap<String, MacvlanSpec>,
    /// Per parent with an IPv4 macvlan: its knobs (key, written, before; None: unreadable).
    parents: BTreeMap<String, Vec<Written>>,
    /// How `all.rp_filter` was moved (key, written, before), while an IPv4 macvlan is held.
    rp_filter_moved: Option<Vec<macvlan::RpFilterMove>>,
    /// The names the report filter holds.
    filtered: Vec<String>,
    /// The first job swept the leftovers.
    swept: bool,
    modules: bool,
}

async fn worker(mut inbox: mpsc::UnboundedReceiver<Job>, log: Log, shown: Arc<Mutex<Shown>>) {
    let mut kernel = Some(Kernel::default());
    while let Some(job) = inbox.recv().await {
        // After a failed job its state is gone: start afresh, but never sweep then (what the
        // running instances use would look like leftovers).
        let mut state = kernel.take().unwrap_or(Kernel {
            swept: true,
            ..Kernel::default()
        });
        let job_log = log.clone();
        let done = tokio::task::spawn_blocking(move || {
            let outcome = state.run(job, &job_log);
            (state, outcome)
        })
        .await;
        match done {
            Ok((state, (answer, error))) => {
                if let Ok(mut shown) = shown.lock() {
                    shown.held = state.made.keys().cloned().collect();
                    shown.filtered = !state.filtered.is_empty();
                    if error.is_some() {
                        shown.error = error;
                    }
                }
                kernel = Some(state);
                answer();
            }
            Err(error) => {
                // The state went with the panicked job: start again from what the kernel has.
                log.line(format!("vrrp: use_vmac: a vmac job failed: {error}"));
            }
        }
    }
}

/// What a job sends back once the worker's state is stored again, and the failure to show.
type Answer = (Box<dyn FnOnce() + Send>, Option<String>);

impl Kernel {
    fn run(&mut self, job: Job, log: &Log) -> Answer {
        if matches!(&job, Job::Ensure { wanted, .. } if !wanted.is_empty()) && !self.modules {
            // Blocking in the kernel: here, on the blocking pool, never on the VRRP thread.
            self.modules = true;
            crate::engine::load_feature_modules(log, "vrrp: use_vmac", &["macvlan", "nf_tables"]);
        }
        if self.executor.is_none() {
            match MacvlanExecutor::connect() {
                Ok(executor) => self.executor = Some(executor),
                Err(error) => {
                    let text = error.to_string();
                    return match job {
                        Job::Ensure { wanted, reply } => {
                            let answers = wanted
                                .into_iter()
                                .map(|s| (s.name, Err(text.clone())))
                                .collect();
                            (
                                Box::new(move || {
                                    let _ = reply.send(answers);
                                }),
                                Some(text),
                            )
                        }
                        Job::Keep { done, .. } => (
                            Box::new(move || {
                                if let Some(done) = done {
                                    let _ = done.send(());
                                }
                            }),
                            Some(text),
                        ),
                    };
                }
            }
        }
        match job {
            Job::Ensure { wanted, reply } => {
                let (answers, error) = self.ensure(&wanted, log);
                (
                    Box::new(move || {
                        let _ = reply.send(answers);
                    }),
                    error,
                )
            }
            Job::Keep { names, done } => {
                let error = self.keep(&names, log);
                (
                    Box::new(move || {
                        if let Some(done) = done {
                            let _ = done.send(());
                        }
                    }),
                    error,
                )
            }
        }
    }

    fn ensure(&mut self, wanted: &[MacvlanSpec], log: &Log) -> (Answers, Option<String>) {
        let Some(executor) = self.executor.clone() else {
            return (Vec::new(), None);
        };
        if !self.swept {
            self.swept = true;
            self.sweep(&executor, wanted, log);
        }
        let mut answers = Vec::new();
        let mut ready = Vec::new();
        for spec in wanted {
            let made = executor
                .ensure_link(spec)
                .map_err(|e| e.to_string())
                .and_then(|ensured| {
                    self.made.insert(spec.name.clone(), spec.clone());
                    self.knobs(spec).map(|()| ensured)
                });
            match made {
                Ok(ensured) => {
                    if ensured != Ensured::Kept {
                        log.line(format!(
                            "vrrp: use_vmac: {} {ensured} on {} with MAC {}",
                            spec.name,
                            spec.parent,
                            macvlan::mac_text(&spec.mac)
                        ));
                    }
                    ready.push((spec.name.clone(), ensured));
                }
                Err(error) => answers.push((spec.name.clone(), Err(error))),
            }
        }
        let error = self.filter(log);
        for (name, ensured) in ready {
            let up = executor.set_up(&name).map_err(|e| e.to_string());
            answers.push((name, up.map(|()| ensured)));
        }
        (answers, error)
    }

    /// The knobs of `spec`'s macvlan, and for IPv4 its parent's and `all.rp_filter`.
    fn knobs(&mut self, spec: &MacvlanSpec) -> Result<(), String> {
        for (key, value) in vmac_sysctls(&spec.name, spec.ipv6) {
            set_sysctl(&key, value).map_err(|e| e.to_string())?;
        }
        if spec.ipv6 {
            return Ok(());
        }
        if !self.parents.contains_key(&spec.parent) {
            let mut saved = Vec::new();
            for (key, value) in parent_sysctls(&spec.parent) {
                let before = set_sysctl(&key, value).map_err(|e| e.to_string())?;
                saved.push((key, value, before));
            }
            self.parents.insert(spec.parent.clone(), saved);
        }
        if self.rp_filter_moved.is_none() {
            self.rp_filter_moved = Some(macvlan::move_all_rp_filter().map_err(|e| e.to_string())?);
        }
        Ok(())
    }

    /// Replaces the report filter when the set of macvlans changed; the failure, if any.
    fn filter(&mut self, log: &Log) -> Option<String> {
        let names: Vec<String> = self.made.keys().cloned().collect();
        if names == self.filtered {
            return None;
        }
        match vmac_filter::replace(&names) {
            Ok(()) => {
                self.filtered = names;
                None
            }
            Err(error) => {
                let text = format!(
                    "cannot replace table inet {} (IGMP/MLD reports of the VRRP group may leave from the virtual MAC): {error}",
                    vmac_filter::TABLE
                );
                log.line(format!("vrrp: use_vmac: {text}"));
                Some(text)
            }
        }
    }

    /// Deletes the virtual-router macvlans nobody wants (a crashed predecessor's).
    fn sweep(&mut self, executor: &MacvlanExecutor, wanted: &[MacvlanSpec], log: &Log) {
        let Ok(found) = executor.virtual_router_macvlans() else {
            return;
        };
        for link in found {
            if wanted.iter().any(|s| s.name == link.name) || self.made.contains_key(&link.name) {
                continue;
            }
            match executor.delete(&link.name) {
                Ok(_) => log.line(format!(
                    "vrrp: use_vmac: deleted {}, a virtual-router macvlan no instance uses (left by an earlier run)",
                    link.name
                )),
                Err(error) => log.line(format!("vrrp: use_vmac: {error}")),
            }
        }
    }

    fn keep(&mut self, names: &[String], log: &Log) -> Option<String> {
        let executor = self.executor.clone()?;
        let gone: Vec<String> = self
            .made
            .keys()
            .filter(|name| !names.contains(name))
            .cloned()
            .collect();
        let mut error = None;
        for name in gone {
            match executor.delete(&name) {
                Ok(_) => log.line(format!("vrrp: use_vmac: {name} deleted")),
                Err(e) => {
                    log.line(format!("vrrp: use_vmac: {e}"));
                    error = Some(e.to_string());
                }
            }
            self.made.remove(&name);
        }
        // Parents without an IPv4 macvlan get their knobs back (where still as written).
        let in_use: Vec<String> = self
            .made
            .values()
            .filter(|s| !s.ipv6)
            .map(|s| s.parent.clone())
            .collect();
        let released: Vec<String> = self
            .parents
            .keys()
            .filter(|p| !in_use.contains(p))
            .cloned()
            .collect();
        for parent in released {
            for (key, written, before) in self.parents.remove(&parent).unwrap_or_default() {
                if let Some(before) = before.filter(|b| b != written) {
                    if sysctl::get(&key).ok().as_deref() == Some(written) {
                        let _ = sysctl::set(&key, &before);
                    }
                }
            }
        }
        if in_use.is_empty() {
            if let Some(moved) = self.rp_filter_moved.take().filter(|m| !m.is_empty()) {
                macvlan::put_back_rp_filter(&moved);
                log.line("vrrp: use_vmac: net.ipv4.conf.all.rp_filter put back");
            }
        }
        self.filter(log).or(error)
    }
}
