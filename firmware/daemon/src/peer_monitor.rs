//! Is the partner box reachable over the peer cable? Pure bookkeeping over probe results.
//!
//! One lost probe is not a dead peer: the state only turns to unreachable after
//! [`MISSES_BEFORE_UNREACHABLE`] consecutive misses, and back to reachable on the first answer.

use std::net::Ipv6Addr;
use std::time::Duration;

/// Consecutive unanswered probes before the peer is declared unreachable.
pub const MISSES_BEFORE_UNREACHABLE: u32 = 3;

/// What the monitor currently believes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerState {
    /// No probe has finished yet.
    Unknown,
    Reachable {
        from: Ipv6Addr,
        rtt: Duration,
    },
    Unreachable {
        misses: u32,
    },
}

/// A change worth logging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerEvent {
    Reachable { from: Ipv6Addr, rtt: Duration },
    Unreachable { misses: u32 },
}

/// Tracks probe results.
#[derive(Debug, Clone)]
pub struct PeerMonitor {
    state: PeerState,
    misses: u32,
}

impl Default for PeerMonitor {
    fn default() -> Self {
        PeerMonitor {
            state: PeerState::Unknown,
            misses: 0,
        }
    }
}

impl PeerMonitor {
    pub fn state(&self) -> PeerState {
        self.state
    }

    /// Feeds one probe result (`None`: no answer); returns an event when the verdict changes.
    pub fn on_probe(&mut self, answer: Option<(Ipv6Addr, Duration)>) -> Option<PeerEvent> {
        match answer {
            Some((from, rtt)) => {
                self.misses = 0;
                let changed =
                    !matches!(self.state, PeerState::Reachable { from: f, .. } if f == from);
                self.state = PeerState::Reachable { from, rtt };
                changed.then_some(PeerEvent::Reachable { from, rtt })
            }
            None => {
                self.misses = self.misses.saturating_add(1);
                match self.state {
                    PeerState::Reachable { from, .. }
                        if self.misses < MISSES_BEFORE_UNREACHABLE =>
                    {
                        // Keep believing the last answer until enough probes are missed.
                        let _ = from;
                        None
                    }
                    PeerState::Unreachable { .. } => {
                        self.state = PeerState::Unreachable {
                            misses: self.misses,
                        };
                        None
                    }
                    _ if self.misses >= MISSES_BEFORE_UNREACHABLE => {
                        self.state = PeerState::Unreachable {
                            misses: self.misses,
                        };
                        Some(PeerEvent::Unreachable {
                            misses: self.misses,
                        })
                    }
                    _ => None,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x5054, 0xff, 0xfe00, 0x101);
    const RTT: Duration = Duration::from_millis(2);

    #[test]
    fn first_answer_makes_the_peer_reachable_once() {
        let mut monitor = PeerMonitor::default();
        assert_eq!(
            monitor.on_probe(Some((A, RTT))),
            Some(PeerEvent::Reachable { from: A, rtt: RTT })
        );
        assert_eq!(monitor.on_probe(Some((A, RTT))), None);
        assert!(matches!(monitor.state(), PeerState::Reachable { .. }));
    }

    #[test]
    fn three_misses_in_a_row_make_it_unreachable_and_one_answer_heals() {
        let mut monitor = PeerMonitor::default();
        monitor.on_probe(Some((A, RTT)));
        assert_eq!(monitor.on_probe(None), None);
        assert_eq!(monitor.on_probe(None), None);
        assert_eq!(
            monitor.on_probe(None),
            Some(PeerEvent::Unreachable { misses: 3 })
        );
        assert_eq!(
            monitor.on_probe(None),
            None,
            "no repeated event while it stays down"
        );
        assert_eq!(monitor.state(), PeerState::Unreachable { misses: 4 });
        assert_eq!(
            monitor.on_probe(Some((A, RTT))),
            Some(PeerEvent::Reachable { from: A, rtt: RTT })
        );
    }

    #[test]
    fn a_lone_miss_between_answers_changes_nothing() {
        let mut monitor = PeerMonitor::default();
        monitor.on_probe(Some((A, RTT)));
        assert_eq!(monitor.on_probe(None), None);
        assert_eq!(monitor.on_probe(Some((A, RTT))), None);
    }

    #[test]
    fn a_peer_never_heard_is_unreachable_after_three_misses() {
        let mut monitor = PeerMonitor::default();
        monitor.on_probe(None);
        monitor.on_probe(None);
        assert_eq!(monitor.state(), PeerState::Unknown);
        assert_eq!(
            monitor.on_probe(None),
            Some(PeerEvent::Unreachable { misses: 3 })
        );
    }
}
