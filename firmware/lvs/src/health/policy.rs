//! From health to the effective service the reconciler should install. Pure, time injected.
//!
//! - A failed real server is quiesced (weight 0: existing connections finish) or removed.
//! - A recovered server stays out until it has been healthy for the re-entry time.
//! - Quorum: the weight sum of live servers; it is lost when the sum drops below
//!   `quorum - hysteresis` (or to 0) and regained at `quorum + hysteresis` (keepalived's rule).
//!   While it is lost and a sorry server is set, the service holds only the sorry server.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::model::{RealServer, RealServerId, VirtualService};

/// What happens to a failed real server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnFailure {
    /// Keep it with weight 0 (no new connections; established ones continue).
    #[default]
    Quiesce,
    /// Remove it from the service.
    Remove,
}

/// Per-service health policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePolicy {
    /// Quiesce or remove failed servers.
    pub on_failure: OnFailure,
    /// How long a recovered server must stay healthy before it takes traffic again.
    pub reentry: Duration,
    /// Served when quorum is lost (all real servers down with the default quorum of 1).
    pub sorry_server: Option<(RealServerId, RealServer)>,
    /// Minimum live weight sum.
    pub quorum: u32,
    /// Hysteresis around `quorum`.
    pub hysteresis: u32,
}

impl Default for ServicePolicy {
    fn default() -> Self {
        ServicePolicy {
            on_failure: OnFailure::Quiesce,
            reentry: Duration::ZERO,
            sorry_server: None,
            quorum: 1,
            hysteresis: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ServerHealth {
    healthy: bool,
    /// `None`: healthy since before we started watching (no re-entry wait).
    healthy_since: Option<Instant>,
}

/// Health memory of one service: each checked real server's state and the quorum state.
/// Real servers without a check are always live.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceHealth {
    servers: BTreeMap<RealServerId, ServerHealth>,
    quorum_up: Option<bool>,
    /// The instant of the last `evaluate`: re-entry deadlines up to it are in its answer.
    evaluated_at: Option<Instant>,
}

impl ServiceHealth {
    /// No server known (all live), quorum decided at the first evaluation.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a checked server's initial state (before any transition): no re-entry wait.
    pub fn set_initial(&mut self, rs: RealServerId, healthy: bool) {
        self.servers.insert(
            rs,
            ServerHealth {
                healthy,
                healthy_since: None,
            },
        );
    }

    /// Records a health transition at `at`.
    pub fn set_health(&mut self, rs: RealServerId, healthy: bool, at: Instant) {
        let entry = self.servers.entry(rs).or_insert(ServerHealth {
            healthy,
            healthy_since: None,
        });
        if healthy && !entry.healthy {
            entry.healthy_since = Some(at);
        }
        entry.healthy = healthy;
    }

    /// A checked server's current verdict (`None`: not checked, so always live).
    pub fn healthy(&self, rs: &RealServerId) -> Option<bool> {
        self.servers.get(rs).map(|h| h.healthy)
    }

    /// Forgets a server (removed from the config).
    pub fn forget(&mut self, rs: &RealServerId) {
        self.servers.remove(rs);
    }

    /// Whether a server with this health memory takes traffic at `now` (`None`: unchecked).
    fn is_live(health: Option<&ServerHealth>, reentry: Duration, now: Instant) -> bool {
        match health {
            None => true,
            Some(h) if !h.healthy => false,
            Some(ServerHealth {
                healthy_since: None,
                ..
            }) => true,
            Some(ServerHealth {
                healthy_since: Some(t),
                ..
            }) => now.saturating_duration_since(*t) >= reentry,
        }
    }

    /// Whether the quorum is currently held (after the last evaluation).
    pub fn quorum_up(&self) -> Option<bool> {
        self.quorum_up
    }

    /// The service to install now: `config` with failed servers quiesced or removed, and the
    /// sorry server in their place when quorum is lost. Updates the quorum state.
    pub fn evaluate(
        &mut self,
        config: &VirtualService,
        policy: &ServicePolicy,
        now: Instant,
    ) -> VirtualService {
        let mut live_weight: u64 = 0;
        // Both maps are sorted by server: one walk in step, and a sorted bulk build of the
        // result (a director re-evaluates every service on each config apply).
        let mut memory = self.servers.iter().peekable();
        let real_servers = config
            .real_servers
            .iter()
            .filter_map(|(rs, r)| {
                while memory.next_if(|(known, _)| *known < rs).is_some() {}
                let health = memory
                    .peek()
                    .filter(|(known, _)| *known == rs)
                    .map(|(_, h)| *h);
                if Self::is_live(health, policy.reentry, now) {
                    live_weight += u64::from(r.weight);
                    Some((*rs, *r))
                } else if policy.on_failure == OnFailure::Quiesce {
                    Some((*rs, RealServer { weight: 0, ..*r }))
                } else {
                    None
                }
            })
            .collect();
        let mut out = VirtualService {
            settings: config.settings.clone(),
            real_servers,
        };
        let high = u64::from(policy.quorum) + u64::from(policy.hysteresis);
        let low = u64::from(policy.quorum.saturating_sub(policy.hysteresis));
        let up = match self.quorum_up {
            None => live_weight > 0 && live_weight >= u64::from(policy.quorum),
            Some(true) => !(live_weight == 0 || live_weight < low),
            Some(false) => live_weight >= high && live_weight > 0,
        };
        self.quorum_up = Some(up);
        self.evaluated_at = Some(now);
        if !up {
            if let Some((id, sorry)) = &policy.sorry_server {
                out.real_servers.clear();
                out.real_servers.insert(*id, *sorry);
            }
        }
        out
    }

    /// The next instant at which `evaluate` may give a different answer without a new health
    /// event (a recovered server's re-entry time ending), if any. Counted from the last
    /// evaluation, not from the clock: a deadline that passed after the last `evaluate` is still
    /// returned (already due), so a caller that evaluates, then reads the clock a little later,
    /// cannot miss a second server whose re-entry ended in between.
    pub fn next_deadline(&self, policy: &ServicePolicy) -> Option<Instant> {
        self.servers
            .values()
            .filter(|h| h.healthy)
            .filter_map(|h| h.healthy_since.map(|t| t + policy.reentry))
            .filter(|t| self.evaluated_at.is_none_or(|evaluated| *t > evaluated))
            .min()
    }
}
