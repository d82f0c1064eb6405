//! Tier 3: several speakers on a virtual bus with seeded loss, latency, partitions (split
//! brain), box death, priority-0 hand-over and sync groups.
// Test and bench code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use tandem_vrrp::{
    Action, Cause, InstanceParams, Instant, RxMeta, Speaker, State, TrackKind, TrackSpec,
};

struct Node {
    speaker: Speaker,
    alive: bool,
}

struct Packet {
    interface: String,
    from: usize,
    meta: RxMeta,
    payload: Vec<u8>,
}

/// History entry: (time, node, instance name, new state).
type Event = (Instant, usize, String, State, Cause);

struct Bus {
    nodes: Vec<Node>,
    now: Instant,
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    packets: BTreeMap<u64, (Instant, Packet)>,
    seq: u64,
    rng: u64,
    loss_per_mille: u64,
    latency: Duration,
    cut: HashSet<String>,
    history: Vec<Event>,
    /// Time with two masters for the same interface/VRID while the link was up.
    dual_master: Duration,
}

impl Bus {
    fn new(seed: u64, loss_per_mille: u64, latency: Duration) -> Bus {
        Bus {
            nodes: Vec::new(),
            now: Instant::ZERO,
            queue: BinaryHeap::new(),
            packets: BTreeMap::new(),
            seq: 0,
            rng: seed | 1,
            loss_per_mille,
            latency,
            cut: HashSet::new(),
            history: Vec::new(),
            dual_master: Duration::ZERO,
        }
    }

    fn add_node(&mut self, instances: Vec<InstanceParams>, groups: &[(&str, &[&str])]) -> usize {
        let mut speaker = Speaker::new();
        for params in instances {
            speaker.add_instance(params, self.now).unwrap();
        }
        for (name, members) in groups {
            speaker.add_sync_group(name, members, self.now).unwrap();
        }
        self.nodes.push(Node {
            speaker,
            alive: true,
        });
        let id = self.nodes.len() - 1;
        self.collect(id);
        id
    }

    fn random(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn collect(&mut self, node: usize) {
        while let Some((id, action)) = self.nodes[node].speaker.poll_action() {
            let name = self.nodes[node]
                .speaker
                .instance(id)
                .unwrap()
                .params()
                .name
                .clone();
            let interface = self.nodes[node]
                .speaker
                .instance(id)
                .unwrap()
                .params()
                .interface
                .clone();
            match action {
                Action::SendAdvert(advert) => {
                    self.seq += 1;
                    let at = self.now + self.latency;
                    let meta = RxMeta {
                        src: advert.src,
                        dst: advert.dst,
                        ttl: advert.ttl,
                    };
                    let packet = Packet {
                        interface,
                        from: node,
                        meta,
                        payload: advert.payload,
                    };
                    self.packets.insert(self.seq, (at, packet));
                    self.queue.push(Reverse((at, self.seq)));
                }
                Action::StateChanged(t) => self.history.push((t.at, node, name, t.to, t.cause)),
                _ => {}
            }
        }
    }

    fn masters(&self, instance: &str) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|n| self.nodes[*n].alive && self.state(*n, instance) == State::Master)
            .collect()
    }

    fn state(&self, node: usize, instance: &str) -> State {
        let speaker = &self.nodes[node].speaker;
        speaker
            .instance(speaker.find(instance).unwrap())
            .unwrap()
            .state()
    }

    fn instance_names(&self) -> Vec<(String, String)> {
        self.nodes[0]
            .speaker
            .instances()
            .map(|(_, i)| (i.params().name.clone(), i.params().interface.clone()))
            .collect()
    }

    fn run_until(&mut self, until: Instant) {
        loop {
            let next_packet = self.queue.peek().map(|Reverse((at, _))| *at);
            let next_timer = self
                .nodes
                .iter()
                .filter(|n| n.alive)
                .filter_map(|n| n.speaker.poll_timeout())
                .min();
            let next = match (next_packet, next_timer) {
                (Some(a), Some(b)) => a.min(b),
                // Nothing scheduled at all (every node idle): jump to `until` and stop.
                (a, b) => a.or(b).unwrap_or(until + Duration::from_nanos(1)),
            };
            if next > until {
                self.account(until);
                self.now = until;
                return;
            }
            self.account(next);
            self.now = next;
            while let Some(Reverse((at, seq))) = self.queue.peek().copied() {
                if at > self.now {
                    break;
                }
                self.queue.pop();
                let (_, packet) = self.packets.remove(&seq).unwrap();
                if self.cut.contains(&packet.interface) || !self.nodes[packet.from].alive {
                    continue;
                }
                for node in 0..self.nodes.len() {
                    if node == packet.from || !self.nodes[node].alive {
                        continue;
                    }
                    if self.random() % 1000 < self.loss_per_mille {
                        continue;
                    }
                    let _ = self.nodes[node].speaker.handle_packet(
                        self.now,
                        &packet.interface,
                        packet.meta,
                        &packet.payload,
                    );
                    self.collect(node);
                }
            }
            for node in 0..self.nodes.len() {
                if self.nodes[node].alive {
                    self.nodes[node].speaker.handle_timeout(self.now);
                    self.collect(node);
                }
            }
        }
    }

    /// Adds the time since `self.now` to the dual-master total when two nodes are master of one
    /// instance on a connected link.
    fn account(&mut self, until: Instant) {
        let span = until - self.now;
        for (name, interface) in self.instance_names() {
            if !self.cut.contains(&interface) && self.masters(&name).len() > 1 {
                self.dual_master += span;
                return;
            }
        }
    }

    fn kill(&mut self, node: usize) {
        self.nodes[node].alive = false;
    }

    fn first_time(
        &self,
        node: usize,
        instance: &str,
        state: State,
        after: Instant,
    ) -> Option<Instant> {
        self.history
            .iter()
            .find(|(at, n, name, to, _)| {
                *at >= after && *n == node && name == instance && *to == state
            })
            .map(|e| e.0)
    }
}

fn params(
    name: &str,
    interface: &str,
    vrid: u8,
    priority: u8,
    own: u8,
    interval_cs: u16,
) -> InstanceParams {
    let mut p = InstanceParams::v3(
        name,
        interface,
        vrid,
        priority,
        IpAddr::V4(Ipv4Addr::new(10, 0, vrid, own)),
        vec![IpAddr::V4(Ipv4Addr::new(10, 0, vrid, 100))],
    );
    p.advert_interval_cs = interval_cs;
    p
}

fn secs(s: u64) -> Instant {
    Instant::from_secs(s)
}

#[test]
fn three_routers_elect_the_highest_under_loss_and_fail_over_on_death() {
    let mut bus = Bus::new(0x5eed_0001, 100, Duration::from_micros(100));
    let low = bus.add_node(vec![params("vr", "eth0", 7, 100, 1, 10)], &[]);
    let mid = bus.add_node(vec![params("vr", "eth0", 7, 150, 2, 10)], &[]);
    let high = bus.add_node(vec![params("vr", "eth0", 7, 200, 3, 10)], &[]);
    bus.run_until(secs(10));
    assert_eq!(bus.masters("vr"), vec![high]);
    assert_eq!(bus.state(low, "vr"), State::Backup);
    assert_eq!(bus.state(mid, "vr"), State::Backup);

    let kill = secs(10);
    bus.kill(high);
    bus.run_until(secs(15));
    assert_eq!(bus.masters("vr"), vec![mid]);
    let took_over = bus.first_time(mid, "vr", State::Master, kill).unwrap();
    // Master_Down_Interval of priority 150 at 100 ms: 300 ms + 106/256 * 100 ms.
    let mdi = Duration::from_nanos(300_000_000 + 41_406_250);
    assert!(
        took_over - kill <= mdi + Duration::from_micros(100),
        "took {:?}",
        took_over - kill
    );
    // 10 % loss can make a backup miss three adverts in a row, briefly; it must stay rare.
    assert!(
        bus.dual_master < Duration::from_millis(500),
        "dual master for {:?}",
        bus.dual_master
    );
}

#[test]
fn split_brain_heals_to_the_higher_priority() {
    let mut bus = Bus::new(7, 0, Duration::from_micros(50));
    let a = bus.add_node(vec![params("vr", "eth0", 9, 100, 1, 10)], &[]);
    let b = bus.add_node(vec![params("vr", "eth0", 9, 200, 2, 10)], &[]);
    bus.run_until(secs(2));
    assert_eq!(bus.masters("vr"), vec![b]);
    bus.cut.insert("eth0".into());
    bus.run_until(secs(5));
    assert_eq!(
        bus.masters("vr"),
        vec![a, b],
        "a partition makes both master"
    );
    let heal = secs(5);
    bus.cut.clear();
    bus.run_until(secs(6));
    assert_eq!(bus.masters("vr"), vec![b]);
    let back = bus.first_time(a, "vr", State::Backup, heal).unwrap();
    // Within one advert interval (plus latency) of the heal.
    assert!(back - heal <= Duration::from_millis(100) + Duration::from_micros(50));
    let cause = &bus.history.iter().rev().find(|e| e.1 == a).unwrap().4;
    assert_eq!(
        *cause,
        Cause::HigherPriority {
            from: IpAddr::V4(Ipv4Addr::new(10, 0, 9, 2)),
            priority: 200
        }
    );
}

#[test]
fn priority_zero_hands_over_after_exactly_skew_time() {
    let latency = Duration::from_micros(20);
    let mut bus = Bus::new(3, 0, latency);
    let backup = bus.add_node(vec![params("vr", "eth0", 5, 100, 1, 100)], &[]);
    let master = bus.add_node(vec![params("vr", "eth0", 5, 200, 2, 100)], &[]);
    bus.run_until(secs(10));
    assert_eq!(bus.masters("vr"), vec![master]);
    let stop = secs(10);
    bus.nodes[master].speaker.handle_shutdown(stop);
    bus.collect(master);
    bus.run_until(secs(12));
    assert_eq!(bus.masters("vr"), vec![backup]);
    let took_over = bus.first_time(backup, "vr", State::Master, stop).unwrap();
    // Skew_Time of priority 100 at 1 s: 156/256 s = 609.375 ms.
    assert_eq!(
        took_over - stop,
        latency + Duration::from_nanos(609_375_000)
    );
}

#[test]
fn master_death_at_10ms_adverts_takes_over_within_40ms() {
    let mut bus = Bus::new(11, 0, Duration::from_micros(30));
    let backup = bus.add_node(vec![params("vr", "eth0", 3, 254, 1, 1)], &[]);
    let master = bus.add_node(vec![params("vr", "eth0", 3, 255, 2, 1)], &[]);
    bus.run_until(secs(1));
    assert_eq!(bus.masters("vr"), vec![master]);
    let kill = secs(1);
    bus.kill(master);
    bus.run_until(Instant::from_millis(1_500));
    let took_over = bus.first_time(backup, "vr", State::Master, kill).unwrap();
    // 3 x 10 ms + 2/256 x 10 ms, counted from the last advert heard (at most 10 ms before).
    assert!(took_over - kill <= Duration::from_nanos(30_078_125));
    assert!(took_over - kill >= Duration::from_millis(20));
}

fn director(priority: u8, own: u8) -> Vec<InstanceParams> {
    let mut vip = params("mail_vip", "eth0", 10, priority, own, 10);
    let mut gw = params("mail_gw", "eth1", 11, priority, own, 10);
    vip.tracks = vec![TrackSpec {
        name: "eth0".into(),
        kind: TrackKind::Interface,
        weight: -60,
    }];
    gw.tracks = vec![TrackSpec {
        name: "eth1".into(),
        kind: TrackKind::Interface,
        weight: -60,
    }];
    vec![vip, gw]
}

const GROUP: &[(&str, &[&str])] = &[("mailserver", &["mail_vip", "mail_gw"])];

#[test]
fn sync_group_fails_over_together_on_a_tracked_link() {
    let mut bus = Bus::new(21, 0, Duration::from_micros(50));
    let a = bus.add_node(director(150, 1), GROUP);
    let b = bus.add_node(director(100, 2), GROUP);
    bus.run_until(secs(2));
    assert_eq!(bus.masters("mail_vip"), vec![a]);
    assert_eq!(bus.masters("mail_gw"), vec![a]);

    // eth1 loses carrier on A: inside a sync group the weight acts as FAULT, for both members.
    let t = secs(2);
    assert_eq!(bus.nodes[a].speaker.handle_track_event(t, "eth1", false), 1);
    bus.collect(a);
    assert_eq!(bus.state(a, "mail_vip"), State::Fault);
    assert_eq!(bus.state(a, "mail_gw"), State::Fault);
    bus.run_until(secs(3));
    assert_eq!(bus.masters("mail_vip"), vec![b]);
    assert_eq!(bus.masters("mail_gw"), vec![b]);
    // Priority 0 from A made it a Skew_Time hand-over, not a Master_Down_Interval one.
    let vip_up = bus.first_time(b, "mail_vip", State::Master, t).unwrap();
    // Skew_Time of priority 100 at 100 ms = 60.9375 ms, plus the bus latency.
    assert_eq!(
        vip_up - t,
        Duration::from_nanos(60_937_500) + Duration::from_micros(50)
    );
    let status = bus.nodes[a]
        .speaker
        .instance(bus.nodes[a].speaker.find("mail_vip").unwrap())
        .unwrap()
        .status();
    assert_eq!(
        status.fault,
        Some(Cause::SyncGroup {
            group: "mailserver".into(),
            member: "mail_gw".into()
        })
    );

    // Link back: A preempts both again.
    bus.nodes[a]
        .speaker
        .handle_track_event(secs(3), "eth1", true);
    bus.collect(a);
    bus.run_until(secs(5));
    assert_eq!(bus.masters("mail_vip"), vec![a]);
    assert_eq!(bus.masters("mail_gw"), vec![a]);
}

#[test]
fn sync_group_never_straddles_boxes_when_one_link_is_cut() {
    let mut bus = Bus::new(22, 0, Duration::from_micros(50));
    let a = bus.add_node(director(150, 1), GROUP);
    let b = bus.add_node(director(100, 2), GROUP);
    bus.run_until(secs(2));
    // Only eth0 between the boxes breaks (no carrier change seen by either box).
    bus.cut.insert("eth0".into());
    bus.run_until(secs(5));
    // B's mail_vip timer fired, but mail_gw still hears A: B waits instead of splitting the pair.
    assert_eq!(bus.state(b, "mail_vip"), State::Backup);
    assert_eq!(bus.state(b, "mail_gw"), State::Backup);
    assert_eq!(bus.masters("mail_gw"), vec![a]);
    assert_eq!(bus.masters("mail_vip"), vec![a]);
    let speaker = &bus.nodes[b].speaker;
    assert!(
        speaker
            .instance(speaker.find("mail_vip").unwrap())
            .unwrap()
            .status()
            .waiting_for_group
    );
    // Now A dies: the whole group moves to B.
    let kill = secs(5);
    bus.kill(a);
    bus.run_until(secs(6));
    assert_eq!(bus.masters("mail_vip"), vec![b]);
    assert_eq!(bus.masters("mail_gw"), vec![b]);
    let gw_up = bus.first_time(b, "mail_gw", State::Master, kill).unwrap();
    let vip_up = bus.first_time(b, "mail_vip", State::Master, kill).unwrap();
    assert_eq!(gw_up, vip_up, "group members move in the same instant");
}

#[test]
fn sync_group_follows_a_member_that_loses_an_election() {
    let mut bus = Bus::new(23, 0, Duration::from_micros(50));
    let b = bus.add_node(director(100, 2), GROUP);
    bus.run_until(secs(1));
    assert_eq!(bus.masters("mail_vip"), vec![b]);
    // A higher-priority box appears: whichever member hears it first pulls the other along.
    let a = bus.add_node(director(150, 1), GROUP);
    bus.run_until(secs(3));
    assert_eq!(bus.masters("mail_vip"), vec![a]);
    assert_eq!(bus.masters("mail_gw"), vec![a]);
    assert_eq!(bus.state(b, "mail_vip"), State::Backup);
    assert_eq!(bus.state(b, "mail_gw"), State::Backup);
    assert!(
        bus.dual_master < Duration::from_millis(50),
        "{:?}",
        bus.dual_master
    );
}

#[test]
fn standby_hands_over_after_skew_time_holds_and_preempts_back_when_off() {
    let latency = Duration::from_micros(20);
    let mut bus = Bus::new(31, 0, latency);
    let backup = bus.add_node(vec![params("vr", "eth0", 5, 100, 1, 100)], &[]);
    let master = bus.add_node(vec![params("vr", "eth0", 5, 200, 2, 100)], &[]);
    bus.run_until(secs(10));
    assert_eq!(bus.masters("vr"), vec![master]);

    let on = secs(10);
    assert_eq!(bus.nodes[master].speaker.set_standby(on, true), 1);
    bus.collect(master);
    assert_eq!(bus.state(master, "vr"), State::Backup);
    let left = bus.history.iter().rev().find(|e| e.1 == master).unwrap();
    assert_eq!(left.4, Cause::Standby);
    // Held for far longer than a Master_Down_Interval: the higher priority never preempts,
    // though it hears (and ignores) the lower-priority master's adverts.
    bus.run_until(secs(30));
    assert_eq!(bus.masters("vr"), vec![backup]);
    let took_over = bus.first_time(backup, "vr", State::Master, on).unwrap();
    // Skew_Time of priority 100 at 1 s, not a Master_Down_Interval (3.6 s).
    assert_eq!(took_over - on, latency + Duration::from_nanos(609_375_000));
    assert!(bus.first_time(master, "vr", State::Master, on).is_none());

    // Off: the preempting timer expired long ago, so it preempts at once.
    let off = secs(30);
    assert_eq!(bus.nodes[master].speaker.set_standby(off, false), 1);
    bus.collect(master);
    assert_eq!(bus.state(master, "vr"), State::Master);
    bus.run_until(secs(31));
    assert_eq!(bus.masters("vr"), vec![master]);
    let back = bus.first_time(backup, "vr", State::Backup, off).unwrap();
    assert_eq!(back - off, latency);
}

#[test]
fn standby_on_both_boxes_leaves_no_master_until_one_resumes() {
    let mut bus = Bus::new(32, 0, Duration::from_micros(20));
    let a = bus.add_node(vec![params("vr", "eth0", 5, 100, 1, 10)], &[]);
    let b = bus.add_node(vec![params("vr", "eth0", 5, 200, 2, 10)], &[]);
    bus.run_until(secs(2));
    bus.nodes[a].speaker.set_standby(secs(2), true);
    bus.collect(a);
    bus.nodes[b].speaker.set_standby(secs(2), true);
    bus.collect(b);
    bus.run_until(secs(5));
    assert!(
        bus.masters("vr").is_empty(),
        "maintenance on both: nobody serves"
    );
    // The lower priority resumes: nobody was heard, so it takes over at once.
    bus.nodes[a].speaker.set_standby(secs(5), false);
    bus.collect(a);
    assert_eq!(bus.masters("vr"), vec![a]);
    bus.run_until(secs(8));
    assert_eq!(bus.masters("vr"), vec![a], "b stays in standby");
}

#[test]
fn standby_moves_a_whole_sync_group_and_keeps_it_down() {
    let mut bus = Bus::new(33, 0, Duration::from_micros(50));
    let a = bus.add_node(director(150, 1), GROUP);
    let b = bus.add_node(director(100, 2), GROUP);
    bus.run_until(secs(2));
    assert_eq!(bus.masters("mail_vip"), vec![a]);
    let on = secs(2);
    assert_eq!(bus.nodes[a].speaker.set_standby(on, true), 2);
    bus.collect(a);
    bus.run_until(secs(6));
    assert_eq!(bus.masters("mail_vip"), vec![b]);
    assert_eq!(bus.masters("mail_gw"), vec![b]);
    let vip_up = bus.first_time(b, "mail_vip", State::Master, on).unwrap();
    // Skew_Time of priority 100 at 100 ms, plus the bus latency.
    assert_eq!(
        vip_up - on,
        Duration::from_nanos(60_937_500) + Duration::from_micros(50)
    );
    bus.nodes[a].speaker.set_standby(secs(6), false);
    bus.collect(a);
    bus.run_until(secs(7));
    assert_eq!(bus.masters("mail_vip"), vec![a]);
    assert_eq!(bus.masters("mail_gw"), vec![a]);
}
