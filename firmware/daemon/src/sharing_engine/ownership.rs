//! Who accepts new flows in which hash bucket of a shared address: the rule each box applies
//! to what it knows of its partner, sans-IO.
//!
//! The invariant is "never both, never neither for longer than the detection time":
//! - a box takes a bucket only when its partner does not hold it (the partner's heartbeat says
//!   what it holds), so a move between two live boxes is release-then-take, one heartbeat
//!   apart (a new flow arriving in between is dropped and its client retransmits);
//! - a partner known to be gone (heartbeat dead and silent on the service LAN), one that does
//!   not run the group, or one never heard within the boot grace, leaves every bucket to this
//!   box; the buckets taken this way also accept packets of flows already under way (they
//!   were the partner's, and its clients must hear a reset now rather than time out);
//! - a partner alive on the LAN but not on the heartbeat (the peer cable failed) keeps its
//!   buckets and this box keeps its own: nobody takes anything on a guess;
//! - a box that starts takes nothing until it hears its partner (which may hold every bucket
//!   since it took this box's over) or the boot grace runs out;
//! - two boxes that both claim a bucket (both unpaired with no `local_nodes`, or right after a
//!   boot without a heartbeat) settle it by `yields`: the yielding box lets go.
//!
//! Flows a box already accepted stay with it through every move (conntrack marks them; see
//! `tandem_southbound::cluster_filter`), so a planned move never resets a connection.

use tandem_southbound::cluster_filter::BucketSets;

/// A group's buckets: all of them, and those this box serves while its partner serves the
/// rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shares {
    pub all: u64,
    pub assigned: u64,
}

impl Shares {
    /// From the config: `total` buckets (1..=64) and this box's 1-based `local` ones (empty:
    /// every bucket).
    pub fn new(total: u8, local: &[u8]) -> Shares {
        let total = u32::from(total.clamp(1, 64));
        let all = if total == 64 {
            u64::MAX
        } else {
            (1u64 << total) - 1
        };
        let assigned = if local.is_empty() {
            all
        } else {
            local
                .iter()
                .filter(|n| (1..=total).contains(&u32::from(**n)))
                .fold(0, |mask, n| mask | 1u64 << (n - 1))
        };
        Shares { all, assigned }
    }
}

/// What this box knows of its partner, for one group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partner {
    /// Gone, not running the group, or never heard within the boot grace.
    Absent,
    /// Alive on the service LAN while the heartbeat is down: its buckets are its own.
    Unreachable,
    /// Not heard yet, within the boot grace: it may hold everything (it took this box's
    /// buckets over while this box was away), so this box takes nothing until it hears.
    Starting,
    /// On the heartbeat, running the group, holding `held`.
    Holding { held: u64, yields: bool },
    /// On the heartbeat but not running the group (not configured there, starting, or
    /// shutting down), still holding `held` until its rules are gone: every other bucket is
    /// this box's for new flows. Not for flows under way: a partner whose daemon restarts
    /// keeps serving the connections its kernel has, and this box must not reset them.
    Leaving { held: u64 },
}

/// The buckets this box should hold, given what it holds now.
pub fn decide(shares: Shares, partner: Partner, current: BucketSets) -> BucketSets {
    let Shares { all, assigned } = shares;
    match partner {
        Partner::Absent => BucketSets {
            mine: all,
            taken_over: all & !assigned,
        },
        Partner::Unreachable => BucketSets {
            mine: assigned,
            taken_over: 0,
        },
        Partner::Starting => BucketSets::default(),
        Partner::Leaving { held } => BucketSets {
            mine: all & !held,
            taken_over: 0,
        },
        Partner::Holding { held, yields } => {
            let keep = if yields { !held } else { !held | current.mine };
            BucketSets {
                mine: assigned & keep,
                taken_over: 0,
            }
        }
    }
}

/// Bucket numbers (1-based, as `local_nodes` writes them) of `mask` in ranges: `1-4,7,9-10`.
pub fn bucket_list(mask: u64) -> String {
    if mask == 0 {
        return "none".to_owned();
    }
    let mut out = Vec::new();
    let mut bit = 0u32;
    while bit < 64 {
        if mask & (1u64 << bit) == 0 {
            bit += 1;
            continue;
        }
        let start = bit;
        while bit + 1 < 64 && mask & (1u64 << (bit + 1)) != 0 {
            bit += 1;
        }
        out.push(if start == bit {
            format!("{}", start + 1)
        } else {
            format!("{}-{}", start + 1, bit + 1)
        });
        bit += 1;
    }
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ODD: u64 = 0x5555_5555_5555_5555;
    const EVEN: u64 = !ODD;

    fn sets(mine: u64, taken_over: u64) -> BucketSets {
        BucketSets { mine, taken_over }
    }

    #[test]
    fn shares_follow_local_nodes_or_take_every_bucket() {
        assert_eq!(
            Shares::new(4, &[1, 3]),
            Shares {
                all: 0b1111,
                assigned: 0b0101
            }
        );
        assert_eq!(Shares::new(4, &[]).assigned, 0b1111);
        assert_eq!(Shares::new(64, &[64]).assigned, 1 << 63);
        assert_eq!(Shares::new(64, &[]).all, u64::MAX);
        // Out of range entries (validation refuses them) take nothing.
        assert_eq!(Shares::new(2, &[0, 3]).assigned, 0);
    }

    #[test]
    fn two_live_boxes_move_a_bucket_by_release_then_take() {
        let a = Shares {
            all: u64::MAX,
            assigned: ODD,
        };
        let b = Shares {
            all: u64::MAX,
            assigned: EVEN,
        };
        // A survived B: it holds everything, the even buckets taken over.
        let mut on_a = decide(a, Partner::Absent, sets(ODD, 0));
        assert_eq!(on_a, sets(u64::MAX, EVEN));
        // B is back and holds nothing: A keeps only its own.
        let mut on_b = BucketSets::default();
        on_a = decide(
            a,
            Partner::Holding {
                held: on_b.mine,
                yields: false,
            },
            on_a,
        );
        assert_eq!(on_a, sets(ODD, 0));
        // B, hearing A still hold everything, takes nothing yet (never both) ...
        on_b = decide(
            b,
            Partner::Holding {
                held: u64::MAX,
                yields: true,
            },
            on_b,
        );
        assert_eq!(on_b.mine, 0);
        // ... and its own once A's heartbeat says A let go.
        on_b = decide(
            b,
            Partner::Holding {
                held: on_a.mine,
                yields: true,
            },
            on_b,
        );
        assert_eq!(on_b, sets(EVEN, 0));
        assert_eq!(on_a.mine & on_b.mine, 0);
        assert_eq!(on_a.mine | on_b.mine, u64::MAX);
    }

    #[test]
    fn a_cable_failure_moves_nothing() {
        let a = Shares {
            all: u64::MAX,
            assigned: ODD,
        };
        assert_eq!(decide(a, Partner::Unreachable, sets(ODD, 0)), sets(ODD, 0));
        // A box that had taken over gives the partner's buckets back when it learns the
        // partner is alive after all.
        assert_eq!(
            decide(a, Partner::Unreachable, sets(u64::MAX, EVEN)),
            sets(ODD, 0)
        );
    }

    #[test]
    fn a_leaving_partner_keeps_what_it_still_holds() {
        let a = Shares {
            all: u64::MAX,
            assigned: ODD,
        };
        assert_eq!(
            decide(a, Partner::Leaving { held: EVEN }, sets(ODD, 0)),
            sets(ODD, 0)
        );
        assert_eq!(
            decide(a, Partner::Leaving { held: 0 }, sets(ODD, 0)),
            sets(u64::MAX, 0)
        );
    }

    #[test]
    fn a_starting_box_takes_nothing_before_it_hears_its_partner() {
        let b = Shares {
            all: u64::MAX,
            assigned: EVEN,
        };
        assert_eq!(
            decide(b, Partner::Starting, BucketSets::default()),
            sets(0, 0)
        );
    }

    #[test]
    fn a_contested_bucket_goes_to_the_box_that_does_not_yield() {
        // Both unpaired with every bucket assigned, both holding everything after a boot.
        let both = Shares {
            all: 0b1111,
            assigned: 0b1111,
        };
        let on_a = decide(
            both,
            Partner::Holding {
                held: 0b1111,
                yields: false,
            },
            sets(0b1111, 0),
        );
        let on_b = decide(
            both,
            Partner::Holding {
                held: 0b1111,
                yields: true,
            },
            sets(0b1111, 0),
        );
        assert_eq!((on_a.mine, on_b.mine), (0b1111, 0));
        // The yielding box takes what the other does not hold.
        let on_b = decide(
            both,
            Partner::Holding {
                held: 0b0011,
                yields: true,
            },
            on_b,
        );
        assert_eq!(on_b.mine, 0b1100);
    }

    #[test]
    fn bucket_lists_are_ranges() {
        assert_eq!(bucket_list(0), "none");
        assert_eq!(bucket_list(0b1011), "1-2,4");
        assert_eq!(bucket_list(u64::MAX), "1-64");
        assert_eq!(bucket_list(1 << 63), "64");
        assert_eq!(bucket_list(0b101), "1,3");
    }
}
