//! Accept_Mode enforcement for the VRRP engine (RFC 9568 section 6.4.3): while an instance is
//! master, is not the address owner and has `accept_mode = false`, the kernel must not deliver
//! packets addressed to its virtual addresses to local sockets (ARP and neighbour discovery
//! still answered, IPVS services on them still balanced: see `southbound::vip_filter`).
//!
//! The speaker says which addresses need it (`Action::AddVips { accept: false }` on becoming
//! master or gaining an address, `RemoveVips` on leaving or losing one), per [`InstanceId`].
//! The engine records those here while it drains the speaker's actions and calls
//! [`AcceptMode::sync`] once the batch is done, so the nftables transaction never sits between
//! the VIP add and the first gratuitous ARP. After a live apply the instances whose filtering
//! may differ are set from the core's `Instance::accept_drops` ([`AcceptMode::resync`]);
//! removed ones are forgotten. A worker task applies the
//! newest wanted set on the blocking pool; intermediate sets it never caught up with are
//! skipped, which is fine because each transaction replaces the whole table.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;
use tokio::task::JoinHandle;

use tandem_southbound::vip_filter;
use tandem_vrrp::{InstanceId, InstancePlan};

use crate::logring::Log;

/// What the kernel holds, as far as the worker knows.
#[derive(Debug, Default)]
struct Applied {
    /// Addresses the table drops (empty: no table).
    addresses: Vec<IpAddr>,
    /// Packets counted by tables this engine replaced since it started.
    dropped_before: u64,
    /// The last failure, until a transaction succeeds.
    error: Option<String>,
}

/// Per-instance wanted drops and the worker that applies their union.
#[derive(Debug, Default)]
pub struct AcceptMode {
    /// By instance: the addresses dropped for it (it is master without accept mode).
    dropping: BTreeMap<InstanceId, Vec<IpAddr>>,
    /// Some instance can need enforcement (configured without accept mode, not the owner).
    configured: bool,
    wanted: Option<watch::Sender<Vec<IpAddr>>>,
    applied: Arc<Mutex<Applied>>,
    worker: Option<JoinHandle<()>>,
}

/// True when `plan` must drop traffic to its addresses while master.
pub fn needs_enforcement(plan: &InstancePlan) -> bool {
    !plan.params.accept_mode && !plan.params.is_owner()
}

impl AcceptMode {
    /// Starts the worker. Its first transaction removes a table a crashed predecessor may have
    /// left (every instance starts as backup, so nothing is dropped yet).
    pub fn start<'a>(&mut self, plans: impl IntoIterator<Item = &'a InstancePlan>, log: &Log) {
        self.configure(plans);
        let (sender, receiver) = watch::channel(Vec::new());
        self.wanted = Some(sender);
        self.worker = Some(tokio::spawn(worker(
            receiver,
            Arc::clone(&self.applied),
            log.clone(),
            self.configured,
        )));
    }

    /// Notes whether some instance of `plans` can need enforcement (the worker loads what
    /// nftables needs before the first transaction that needs it, off the VRRP thread).
    pub fn configure<'a>(&mut self, plans: impl IntoIterator<Item = &'a InstancePlan>) {
        self.configured = plans.into_iter().any(needs_enforcement);
    }

    /// `instance` added `addresses` (became master, or gained them while master); `accept` as
    /// the speaker decided.
    pub fn vips_added(&mut self, instance: InstanceId, addresses: &[IpAddr], accept: bool) {
        let slot = self.dropping.entry(instance).or_default();
        slot.retain(|a| !addresses.contains(a));
        if !accept {
            slot.extend_from_slice(addresses);
        }
        if slot.is_empty() {
            self.dropping.remove(&instance);
        }
    }

    /// `instance` removed `addresses` (left master, or lost them while master).
    pub fn vips_removed(&mut self, instance: InstanceId, addresses: &[IpAddr]) {
        if let Some(slot) = self.dropping.get_mut(&instance) {
            slot.retain(|a| !addresses.contains(a));
            if slot.is_empty() {
                self.dropping.remove(&instance);
            }
        }
    }

    /// `instance`'s drops are exactly `drops` (the core's `accept_drops` after a live apply).
    pub fn resync(&mut self, instance: InstanceId, drops: Vec<IpAddr>) {
        if drops.is_empty() {
            self.dropping.remove(&instance);
        } else {
            self.dropping.insert(instance, drops);
        }
    }

    /// `instance` was removed.
    pub fn forget(&mut self, instance: InstanceId) {
        self.dropping.remove(&instance);
    }

    /// The union of every instance's drops, sorted, each once.
    fn union(&self) -> Vec<IpAddr> {
        let mut all: Vec<IpAddr> = self.dropping.values().flatten().copied().collect();
        all.sort_unstable();
        all.dedup();
        all
    }

    /// Hands the current union to the worker if it changed. Call after the actions of a
    /// takeover are done, never between the VIP add and the announcement.
    pub fn sync(&self) {
        let union = self.union();
        if let Some(wanted) = &self.wanted {
            wanted.send_if_modified(|current| {
                if *current == union {
                    false
                } else {
                    *current = union;
                    true
                }
            });
        }
    }

    /// Removes the table (shutdown: the addresses are gone too) and waits for the worker.
    pub async fn stop(&mut self) {
        self.dropping.clear();
        self.sync();
        // Closing the channel makes the worker apply the last set and return.
        self.wanted = None;
        if let Some(worker) = self.worker.take() {
            let _ = worker.await;
        }
    }

    /// The `vrrp status` line (None when no instance is configured without accept mode and
    /// nothing is enforced).
    pub fn status_line(&self) -> Option<String> {
        let applied = self.applied.lock().ok()?;
        if !self.configured && applied.addresses.is_empty() && applied.error.is_none() {
            return None;
        }
        let mut line = if applied.addresses.is_empty() {
            let dropped = applied.dropped_before;
            format!(
                "accept_mode=false: not enforced now (no master instance without accept mode); {dropped} packets to VIPs dropped earlier"
            )
        } else {
            // One rule dump; the kernel answers in microseconds.
            let now = vip_filter::dropped_packets().unwrap_or(0);
            let addresses: Vec<String> = applied.addresses.iter().map(IpAddr::to_string).collect();
            format!(
                "accept_mode=false: {} packets to VIPs dropped ({} in table inet {}: {})",
                applied.dropped_before.saturating_add(now),
                if addresses.len() == 1 {
                    "1 address"
                } else {
                    "addresses"
                },
                vip_filter::TABLE,
                addresses.join(", ")
            )
        };
        if let Some(error) = &applied.error {
            line.push_str(&format!("; last change failed: {error}"));
        }
        Some(line)
    }
}

/// Applies each new wanted set; on close applies the last one and returns.
async fn worker(
    mut wanted: watch::Receiver<Vec<IpAddr>>,
    applied: Arc<Mutex<Applied>>,
    log: Log,
    configured: bool,
) {
    // Start clean. Errors matter only when this config can need the table.
    apply(Vec::new(), &applied, &log, configured).await;
    loop {
        let closed = wanted.changed().await.is_err();
        let set = wanted.borrow_and_update().clone();
        let current = applied
            .lock()
            .map(|a| a.addresses.clone())
            .unwrap_or_default();
        if set != current {
            apply(set, &applied, &log, true).await;
        }
        if closed {
            return;
        }
    }
}

/// One transaction replacing the table with `set`, with the old table's drops carried over.
async fn apply(set: Vec<IpAddr>, applied: &Arc<Mutex<Applied>>, log: &Log, report: bool) {
    let wanted = set.clone();
    let loader = log.clone();
    let result = tokio::task::spawn_blocking(move || {
        // Module loading blocks in the kernel: here on the blocking pool, once, never on the
        // VRRP thread.
        if report || !wanted.is_empty() {
            static NF_TABLES: std::sync::Once = std::sync::Once::new();
            NF_TABLES.call_once(|| {
                crate::engine::load_feature_modules(&loader, "vrrp: accept_mode", &["nf_tables"]);
            });
        }
        let before = vip_filter::dropped_packets().unwrap_or(0);
        vip_filter::replace(&wanted).map(|()| before)
    })
    .await;
    let Ok(mut state) = applied.lock() else {
        return;
    };
    match result {
        Ok(Ok(before)) => {
            let changed = state.addresses != set;
            state.dropped_before = state.dropped_before.saturating_add(before);
            state.addresses = set;
            state.error = None;
            if changed {
                if state.addresses.is_empty() {
                    log.line("vrrp: accept_mode=false: no longer dropping traffic to VIPs");
                } else {
                    let list: Vec<String> = state.addresses.iter().map(IpAddr::to_string).collect();
                    log.line(format!(
                        "vrrp: accept_mode=false: dropping local delivery to {} (table inet {})",
                        list.join(", "),
                        vip_filter::TABLE
                    ));
                }
            }
        }
        Ok(Err(error)) => {
            if report {
                log.line(format!("vrrp: accept_mode=false: {error}"));
                state.error = Some(error.to_string());
            }
        }
        Err(error) => {
            if report {
                log.line(format!("vrrp: accept_mode=false: {error}"));
                state.error = Some(error.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp_engine::test_plan;
    use tandem_vrrp::InstanceParams;

    fn plan(accept_mode: bool, priority: u8) -> InstancePlan {
        let mut params = InstanceParams::v3(
            "web",
            "eth0",
            20,
            priority,
            "192.0.2.2".parse().unwrap(),
            vec!["192.0.2.100".parse().unwrap()],
        );
        params.accept_mode = accept_mode;
        test_plan(params)
    }

    #[test]
    fn only_non_owners_without_accept_mode_need_the_table() {
        assert!(needs_enforcement(&plan(false, 100)));
        assert!(!needs_enforcement(&plan(true, 100)));
        assert!(!needs_enforcement(&plan(false, 255)));
    }

    #[test]
    fn the_union_follows_masters_that_do_not_accept() {
        let a: IpAddr = "192.0.2.100".parse().unwrap();
        let b: IpAddr = "2001:db8::100".parse().unwrap();
        let mut accept = AcceptMode::default();
        accept.vips_added(InstanceId(0), &[b, a], false);
        accept.vips_added(InstanceId(1), &[a], false);
        accept.vips_added(InstanceId(2), &["192.0.2.7".parse().unwrap()], true);
        assert_eq!(accept.union(), vec![a, b]);
        accept.vips_removed(InstanceId(0), &[b, a]);
        assert_eq!(accept.union(), vec![a]);
        accept.vips_removed(InstanceId(1), &[a]);
        assert!(accept.union().is_empty());
        assert!(accept.dropping.is_empty());
    }

    #[test]
    fn live_changes_are_incremental_and_resync_is_exact() {
        let a: IpAddr = "192.0.2.100".parse().unwrap();
        let b: IpAddr = "192.0.2.101".parse().unwrap();
        let c: IpAddr = "192.0.2.102".parse().unwrap();
        let mut accept = AcceptMode::default();
        accept.vips_added(InstanceId(4), &[a], false);
        // A master gains b: a stays dropped.
        accept.vips_added(InstanceId(4), &[b], false);
        assert_eq!(accept.union(), vec![a, b]);
        // It loses a: b stays.
        accept.vips_removed(InstanceId(4), &[a]);
        assert_eq!(accept.union(), vec![b]);
        // Accept mode turned on: the core's drops are empty now.
        accept.resync(InstanceId(4), Vec::new());
        assert!(accept.union().is_empty());
        accept.resync(InstanceId(7), vec![c]);
        assert_eq!(accept.union(), vec![c]);
        accept.forget(InstanceId(7));
        assert!(accept.union().is_empty());
    }
}
