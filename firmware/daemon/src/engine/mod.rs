//! Role engines: the handle the daemon's event loop talks to them through, and (in [`kinds`])
//! which engines exist and how a config starts, changes or stops them.
//!
//! Each engine (VRRP, LVS director, real server, ...) runs as its own task, VRRP and LVS on
//! threads and runtimes of their own, so a slow apply in one never delays another's timers.
//! The event loop only ever sends it [`EngineRequest`]s: status text for the console and the
//! control socket, tracking events, a new config to reconcile to, and the shutdown that must
//! finish (VRRP priority 0, VIPs removed) before the box powers off; the metrics endpoint asks
//! for metric families the same way.

mod kinds;

pub use kinds::{bring_up, load_feature_modules, plan_apply, wanted_names, EngineContext};

use std::sync::Arc;
use std::time::Duration;

use tandem_config::Config;
use tokio::sync::{mpsc, oneshot};

use crate::metrics::Families;

/// What the event loop asks of an engine.
#[derive(Debug)]
pub enum EngineRequest {
    /// Status text for `<engine> status`.
    Status(oneshot::Sender<String>),
    /// The engine's metric families for the metrics endpoint (`crate::metrics`): plain data
    /// copied from what the engine keeps anyway, answered in its request loop like `Status`.
    Metrics(oneshot::Sender<Families>),
    /// A tracked object (interface, bond, pool) went up or down.
    Track { object: String, up: bool },
    /// Leave cleanly (hand over, remove what was added); answer when done.
    Shutdown(oneshot::Sender<()>),
    /// `vrrp standby on|off`: maintenance mode (hand every instance over with priority 0 and
    /// take none until off). Runtime state, not config. Other engines answer that it is not
    /// theirs.
    Standby {
        on: bool,
        reply: oneshot::Sender<String>,
    },
    /// Reconcile to a newly committed config: touch only what changed (stable identities), and
    /// answer with one line per change made (or an empty string when nothing changed for this
    /// engine). The config still asks for this engine; one that no longer does is shut down.
    Apply {
        config: Arc<Config>,
        reply: oneshot::Sender<String>,
    },
}

/// The event loop's end of an engine.
#[derive(Debug, Clone)]
pub struct EngineHandle {
    /// The console word that addresses it (`vrrp`, `lvs`, `realserver`).
    pub name: &'static str,
    pub requests: mpsc::Sender<EngineRequest>,
}

/// How long an engine gets to leave cleanly before the box goes down anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);
/// How long a commit waits for an engine's apply report (the apply itself goes on).
pub const APPLY_GRACE: Duration = Duration::from_secs(30);

impl EngineHandle {
    /// Asks for status text; a gone or stuck engine is reported as such.
    pub async fn status(&self) -> String {
        let (reply, answer) = oneshot::channel();
        if self
            .requests
            .send(EngineRequest::Status(reply))
            .await
            .is_err()
        {
            return format!("{}: engine stopped\n", self.name);
        }
        match tokio::time::timeout(Duration::from_secs(5), answer).await {
            Ok(Ok(text)) => text,
            _ => format!("{}: engine did not answer\n", self.name),
        }
    }

    /// Asks for the engine's metric families within `limit`; None when it is gone, does not
    /// answer in time, or has half its queue taken already (a stuck engine's queue never
    /// fills with scrapes: the daemon's own requests keep their room).
    pub async fn metrics(&self, limit: Duration) -> Option<Families> {
        if self.requests.capacity() <= self.requests.max_capacity() / 2 {
            return None;
        }
        let (reply, answer) = oneshot::channel();
        self.requests.try_send(EngineRequest::Metrics(reply)).ok()?;
        tokio::time::timeout(limit, answer).await.ok()?.ok()
    }

    /// Asks the engine to leave cleanly and waits up to [`SHUTDOWN_GRACE`].
    pub async fn shutdown(&self) -> bool {
        let (reply, done) = oneshot::channel();
        if self
            .requests
            .send(EngineRequest::Shutdown(reply))
            .await
            .is_err()
        {
            return false;
        }
        matches!(tokio::time::timeout(SHUTDOWN_GRACE, done).await, Ok(Ok(())))
    }

    /// Hands a new config to the engine and waits (up to [`APPLY_GRACE`]) for its report.
    pub async fn apply(&self, config: Arc<Config>) -> String {
        let (reply, answer) = oneshot::channel();
        if self
            .requests
            .send(EngineRequest::Apply { config, reply })
            .await
            .is_err()
        {
            return format!("{}: engine stopped; restart the box to apply\n", self.name);
        }
        match tokio::time::timeout(APPLY_GRACE, answer).await {
            Ok(Ok(text)) => text,
            _ => format!(
                "{}: still applying after {} s; see `log`\n",
                self.name,
                APPLY_GRACE.as_secs()
            ),
        }
    }

    /// Asks for maintenance mode on or off (see [`EngineRequest::Standby`]) and waits for the
    /// answer (the engine's loop is never blocked by it).
    pub async fn standby(&self, on: bool) -> String {
        let (reply, answer) = oneshot::channel();
        if self
            .requests
            .send(EngineRequest::Standby { on, reply })
            .await
            .is_err()
        {
            return format!("{}: engine stopped\n", self.name);
        }
        match tokio::time::timeout(Duration::from_secs(5), answer).await {
            Ok(Ok(text)) => text,
            _ => format!("{}: engine did not answer; see `log`\n", self.name),
        }
    }

    /// Forwards a tracking event without waiting.
    pub fn track(&self, object: &str, up: bool) {
        let _ = self.requests.try_send(EngineRequest::Track {
            object: object.to_owned(),
            up,
        });
    }
}
