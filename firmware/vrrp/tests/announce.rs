//! The gratuitous ARP / unsolicited NA schedule on a virtual clock, driven by a speaker the way
//! the daemon's engine drives it: every first burst of an `Announce` action, every transition
//! and the end of every batch of actions go to the [`AnnounceSchedule`], and the loop wakes at
//! the earlier of the speaker's deadline and the schedule's next burst. Times are exact: a
//! lone backup at priority 128 (192) with 1 s adverts takes over after 3 s plus a skew of
//! 0.5 s (0.25 s).
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use tandem_config::model::Garp;
use tandem_vrrp::announce::burst_size;
use tandem_vrrp::{
    Action, AnnounceSchedule, InstanceId, InstanceParams, Instant, Speaker, State, TrackKind,
    TrackSpec,
};

fn ms(millis: u64) -> Instant {
    Instant::from_millis(millis)
}

fn address(last: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
}

fn garp(delay_s: u16, repeat: u8, refresh_s: u16, refresh_repeat: u8) -> Garp {
    Garp {
        master_delay_s: delay_s,
        master_repeat: repeat,
        master_refresh_s: refresh_s,
        master_refresh_repeat: refresh_repeat,
    }
}

/// The link whose loss faults instance `name` (weight 0).
fn link_of(name: &str) -> String {
    format!("{name}-uplink")
}

/// An instance alone on its link, faulted by the loss of [`link_of`] its name.
fn params(name: &str, vrid: u8, priority: u8) -> InstanceParams {
    let mut params = InstanceParams::v3(
        name,
        "eth0",
        vrid,
        priority,
        address(2),
        vec![address(vrid)],
    );
    params.tracks = vec![TrackSpec {
        name: link_of(name),
        kind: TrackKind::Interface,
        weight: 0,
    }];
    params
}

/// A box as the engine runs it, without sockets: bursts are recorded instead of sent.
struct Shell {
    speaker: Speaker,
    schedule: AnnounceSchedule,
    instances: BTreeMap<InstanceId, (&'static str, Garp)>,
    now: Instant,
    /// Every burst: (ms, instance, messages per address).
    bursts: Vec<(u64, &'static str, u8)>,
    /// The addresses of each `Announce` action (the scheduled bursts announce them all).
    announced: Vec<Vec<IpAddr>>,
    /// Takeovers the schedule started from: (ms, instance).
    takeovers: Vec<(u64, &'static str)>,
}

impl Shell {
    fn new(instances: Vec<(&'static str, InstanceParams, Garp)>) -> Shell {
        let mut shell = Shell {
            speaker: Speaker::new(),
            schedule: AnnounceSchedule::default(),
            instances: BTreeMap::new(),
            now: Instant::ZERO,
            bursts: Vec::new(),
            announced: Vec::new(),
            takeovers: Vec::new(),
        };
        for (name, params, garp) in instances {
            let id = shell.speaker.add_instance(params, Instant::ZERO).unwrap();
            shell.instances.insert(id, (name, garp));
        }
        shell.drain();
        shell
    }

    fn id(&self, name: &str) -> InstanceId {
        let found = self.instances.iter().find(|(_, (n, _))| *n == name);
        *found.unwrap().0
    }

    fn send(&mut self, id: InstanceId, repeat: u8) {
        let name = self.instances[&id].0;
        let millis = self.now.as_nanos() / 1_000_000;
        self.bursts.push((millis, name, repeat));
    }

    /// Executes the speaker's actions as the engine does (announcements only).
    fn drain(&mut self) {
        while let Some((id, action)) = self.speaker.poll_action() {
            match action {
                Action::Announce { addresses } => {
                    self.send(id, burst_size(&self.instances[&id].1));
                    self.announced.push(addresses);
                    self.schedule.announced(id, self.now);
                }
                Action::StateChanged(transition) => {
                    let (name, garp) = &self.instances[&id];
                    if self.schedule.state_changed(id, transition.to, Some(garp)) {
                        let millis = self.now.as_nanos() / 1_000_000;
                        self.takeovers.push((millis, name));
                    }
                }
                _ => {}
            }
        }
        self.schedule.end_of_batch();
    }

    /// Runs the loop up to and including `end`.
    fn run_until(&mut self, end: Instant) {
        loop {
            let wake = [self.speaker.poll_timeout(), self.schedule.next_due()]
                .into_iter()
                .flatten()
                .min()
                .filter(|at| *at <= end);
            let Some(at) = wake else {
                self.now = end;
                return;
            };
            self.now = at.max(self.now);
            if self.speaker.poll_timeout().is_some_and(|t| t <= self.now) {
                self.speaker.handle_timeout(self.now);
                self.drain();
            }
            for (id, repeat) in self.schedule.take_due(self.now) {
                self.send(id, repeat);
            }
        }
    }

    /// The tracked link of instance `name` goes down or up at `at`.
    fn link(&mut self, at: Instant, name: &str, up: bool) {
        self.run_until(at);
        self.speaker.handle_track_event(at, &link_of(name), up);
        self.drain();
    }

    fn state(&self, name: &str) -> State {
        self.speaker.instance(self.id(name)).unwrap().state()
    }
}

#[test]
fn the_first_burst_goes_out_at_the_takeover_and_the_repeat_after_the_delay() {
    // keepalived's defaults: 5 at once, 5 more after 5 s, no refresh.
    let mut shell = Shell::new(vec![("web", params("web", 10, 128), Garp::default())]);
    shell.run_until(ms(3_499));
    assert!(shell.bursts.is_empty());
    assert_eq!(shell.state("web"), State::Backup);
    shell.run_until(ms(3_500));
    assert_eq!(shell.state("web"), State::Master);
    assert_eq!(shell.takeovers, [(3_500, "web")]);
    assert_eq!(shell.bursts, [(3_500, "web", 5)]);
    assert_eq!(shell.schedule.next_due(), Some(ms(8_500)));
    shell.run_until(ms(60_000));
    assert_eq!(shell.bursts, [(3_500, "web", 5), (8_500, "web", 5)]);
    assert_eq!(shell.schedule.next_due(), None);
    assert_eq!(shell.announced, [vec![address(10)]]);
}

#[test]
fn refreshes_follow_every_period_while_master() {
    let mut shell = Shell::new(vec![("web", params("web", 10, 128), garp(2, 3, 10, 2))]);
    shell.run_until(ms(40_000));
    assert_eq!(
        shell.bursts,
        [
            (3_500, "web", 3),
            (5_500, "web", 3),
            (13_500, "web", 2),
            (23_500, "web", 2),
            (33_500, "web", 2),
        ]
    );
    assert_eq!(shell.schedule.next_due(), Some(ms(43_500)));
}

#[test]
fn no_delay_and_no_refresh_means_the_first_burst_only() {
    // A zero repeat still announces once: the LAN must learn the new master.
    let mut shell = Shell::new(vec![("web", params("web", 10, 128), garp(5, 0, 10, 0))]);
    shell.run_until(ms(60_000));
    assert_eq!(shell.bursts, [(3_500, "web", 1)]);
    assert_eq!(shell.schedule.next_due(), None);
}

#[test]
fn leaving_master_cancels_the_delayed_repeat_and_the_refreshes() {
    let mut shell = Shell::new(vec![("web", params("web", 10, 128), garp(5, 5, 10, 1))]);
    shell.link(ms(5_000), "web", false);
    assert_eq!(shell.state("web"), State::Fault);
    assert_eq!(shell.schedule.next_due(), None);
    shell.run_until(ms(60_000));
    assert_eq!(shell.bursts, [(3_500, "web", 5)]);
}

#[test]
fn a_retake_of_master_restarts_the_schedule_from_the_new_takeover() {
    let mut shell = Shell::new(vec![("web", params("web", 10, 128), garp(5, 5, 10, 1))]);
    shell.link(ms(5_000), "web", false);
    // Back up at 6 s: a backup again, master 3.5 s later.
    shell.link(ms(6_000), "web", true);
    assert_eq!(shell.state("web"), State::Backup);
    shell.run_until(ms(30_000));
    assert_eq!(shell.takeovers, [(3_500, "web"), (9_500, "web")]);
    // Nothing of the first term (8.5 s, 13.5 s) survives.
    assert_eq!(
        shell.bursts,
        [
            (3_500, "web", 5),
            (9_500, "web", 5),
            (14_500, "web", 5),
            (19_500, "web", 1),
            (29_500, "web", 1),
        ]
    );
}

#[test]
fn two_instances_interleave_each_on_its_own_schedule() {
    let mut shell = Shell::new(vec![
        ("web", params("web", 10, 128), garp(5, 5, 10, 1)),
        ("mail", params("mail", 11, 192), garp(2, 3, 7, 2)),
    ]);
    shell.run_until(ms(11_000));
    assert_eq!(shell.takeovers, [(3_250, "mail"), (3_500, "web")]);
    assert_eq!(
        shell.bursts,
        [
            (3_250, "mail", 3),
            (3_500, "web", 5),
            (5_250, "mail", 3),
            (8_500, "web", 5),
            (10_250, "mail", 2),
        ]
    );
    // One leaves master: the other's schedule is untouched.
    shell.link(ms(12_000), "mail", false);
    assert_eq!(shell.state("mail"), State::Fault);
    assert_eq!(shell.state("web"), State::Master);
    shell.run_until(ms(25_000));
    assert_eq!(shell.bursts[5..], [(13_500, "web", 1), (23_500, "web", 1)]);
}

#[test]
fn addresses_gained_on_a_live_apply_get_one_burst_and_leave_the_schedule_alone() {
    let mut shell = Shell::new(vec![("web", params("web", 10, 128), garp(5, 4, 10, 1))]);
    shell.run_until(ms(4_000));
    let pending = shell.schedule.next_due();
    assert_eq!(pending, Some(ms(8_500)));
    let mut wider = params("web", 10, 128);
    wider.virtual_addresses.push(address(99));
    let out = shell.speaker.reconcile(vec![wider], &[], shell.now);
    assert_eq!(out.changed.len(), 1);
    shell.drain();
    assert_eq!(shell.bursts, [(3_500, "web", 4), (4_000, "web", 4)]);
    assert_eq!(shell.announced[1], [address(99)]);
    assert_eq!(shell.takeovers, [(3_500, "web")]);
    assert_eq!(shell.schedule.next_due(), pending);
    shell.run_until(ms(14_000));
    assert_eq!(shell.bursts[2..], [(8_500, "web", 4), (13_500, "web", 1)]);
}
