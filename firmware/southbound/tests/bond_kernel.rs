//! `southbound::bond` against a real kernel's bonding driver: a bond in each of the 7 modes
//! with options valid for it and two dummy ports, read back, changed live, a port released, the
//! bond deleted; an active-backup failover with its notification; and the refusals the bond
//! engine must order its changes around (mode, options that need the bond down or without
//! ports, options of other modes, up ports).
//!
//! Each test runs in a network namespace of its own (unshared on its thread), so nothing
//! outside it is touched. Skips (with a printed reason) where that namespace, bonds or dummies
//! are missing, as on hosts without the bonding module; the lab runs this very binary inside
//! qemu (`make lab-image` puts it at /lab/bond-kernel-tests, and tests/tests/lab_bond_kernel.rs
//! boots a box that runs it and requires every test to pass): there it loads the modules the
//! way the appliance does and fails instead of skipping.
// Test helpers outside #[test] fns may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use netlink_sys::protocols::NETLINK_ROUTE;
use netlink_sys::{Socket, SocketAddr};
use tandem_southbound::bond::*;
use tandem_southbound::nlmsg::{self, Request, IFF_UP, NLMSG_DONE, NLMSG_ERROR, RTMGRP_LINK};

/// Longest wait for the bond's monitors (TCG emulation on shared cores is slow).
const SETTLE: Duration = Duration::from_secs(20);

fn in_lab_box() -> bool {
    std::fs::read_to_string("/proc/cmdline").is_ok_and(|line| line.contains("tandem.lab_exec="))
}

/// This test's own network namespace, with an executor and a runtime in it.
struct Kernel {
    bonds: BondExecutor,
    runtime: tokio::runtime::Runtime,
}

/// Moves this thread into a new network namespace and checks bonds and dummies can be made
/// there; `None` (skip) when not, except in a lab box.
fn kernel_or_skip() -> Option<Kernel> {
    static MODULES: std::sync::Once = std::sync::Once::new();
    let lab = in_lab_box();
    if lab {
        // Nothing autoloads in the appliance (no modprobe): load them as its engines do.
        MODULES.call_once(|| {
            if let Err(error) = tandem_southbound::kmod::ModuleLoader::for_running_kernel()
                .and_then(|loader| loader.load(["bonding", "dummy"]))
            {
                eprintln!("cannot load bonding and dummy: {error}");
            }
        });
    }
    if let Err(errno) = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET) {
        assert!(
            !lab,
            "a lab box must give a test a network namespace: {errno}"
        );
        eprintln!("SKIP: cannot unshare a network namespace ({errno}): run as root");
        return None;
    }
    let kernel = Kernel {
        bonds: BondExecutor::connect().unwrap(),
        runtime: tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap(),
    };
    let probe = kernel.run(async {
        kernel.bonds.create_dummy("probe0").await?;
        kernel.bonds.delete_link("probe0").await?;
        kernel
            .bonds
            .create_bond("probe1", &BondOptions::default())
            .await?;
        kernel.bonds.delete_link("probe1").await
    });
    match probe {
        Ok(()) => Some(kernel),
        Err(error) if lab => panic!("bonds and dummies must be usable in the lab box: {error}"),
        Err(error) => {
            eprintln!("SKIP: {error}");
            None
        }
    }
}

impl Kernel {
    fn run<T>(&self, future: impl Future<Output = T>) -> T {
        self.runtime.block_on(future)
    }

    fn dummy(&self, name: &str) -> u32 {
        self.run(self.bonds.create_dummy(name)).unwrap()
    }

    fn bond(&self, name: &str) -> Bond {
        let bonds = self.run(self.bonds.bonds()).unwrap();
        bonds
            .into_iter()
            .find(|bond| bond.name == name)
            .unwrap_or_else(|| panic!("no bond {name}"))
    }

    /// Reads bond `name` until `done` holds for it.
    fn wait_for(&self, name: &str, what: &str, done: impl Fn(&Bond) -> bool) -> Bond {
        let deadline = Instant::now() + SETTLE;
        loop {
            let bond = self.bond(name);
            if done(&bond) {
                return bond;
            }
            assert!(Instant::now() < deadline, "{name}: never {what}: {bond:#?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn set(&self, bond: &str, options: BondOptions) -> Result<(), BondError> {
        self.run(self.bonds.set_bond_options(bond, &options))
    }

    fn up(&self, link: &str, up: bool) {
        self.run(self.bonds.set_link_up(link, up)).unwrap();
    }
}

/// A route-netlink socket of the test's own, for what the executor does not do: raw requests
/// the executor would never send, links that are not bonds, and notifications.
struct Raw {
    socket: Socket,
    buffer: Vec<u8>,
}

impl Raw {
    fn open(groups: u32) -> Raw {
        let mut socket = Socket::new(NETLINK_ROUTE).unwrap();
        socket.bind(&SocketAddr::new(0, groups)).unwrap();
        socket.connect(&SocketAddr::new(0, 0)).unwrap();
        Raw {
            socket,
            buffer: vec![0; 64 * 1024],
        }
    }

    /// Sends `request`; the answer's messages (type, payload), then its status (0 or -errno).
    fn ask(&mut self, request: Request) -> (Vec<(u16, Vec<u8>)>, i32) {
        self.socket.send(&request.finish(77).unwrap(), 0).unwrap();
        let mut answer = Vec::new();
        loop {
            let length = self.socket.recv(&mut &mut self.buffer[..], 0).unwrap();
            for message in nlmsg::messages(&self.buffer[..length]) {
                let message = message.unwrap();
                match message.kind {
                    NLMSG_ERROR => return (answer, nlmsg::error_code(message.payload).unwrap()),
                    NLMSG_DONE => return (answer, nlmsg::done_code(message.payload)),
                    kind => {
                        answer.push((kind, message.payload.to_vec()));
                        if message.flags & nlmsg::NLM_F_MULTI == 0 {
                            return (answer, 0);
                        }
                    }
                }
            }
        }
    }

    /// Link `name`'s flags and master, as [`read_link`] reads the kernel's answer.
    fn link(&mut self, name: &str) -> (u32, Option<u32>) {
        let (answer, status) = self.ask(get_link_request(name));
        assert_eq!(status, 0, "{name}");
        let read = read_link(&answer[0].1).unwrap();
        (read.link.flags, read.master.filter(|&master| master != 0))
    }

    /// Waits for a notification `wanted` accepts.
    fn notification(&mut self, what: &str, wanted: impl Fn(&LinkRead<'_>) -> bool) {
        self.socket.set_non_blocking(true).unwrap();
        let deadline = Instant::now() + SETTLE;
        while Instant::now() < deadline {
            let length = match self.socket.recv(&mut &mut self.buffer[..], 0) {
                Ok(length) => length,
                Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
                Err(error) => panic!("notifications: {error}"),
            };
            for message in nlmsg::messages(&self.buffer[..length]).flatten() {
                if message.kind == nlmsg::RTM_NEWLINK
                    && read_link(message.payload).is_some_and(|read| wanted(&read))
                {
                    return;
                }
            }
        }
        panic!("no notification: {what}");
    }
}

/// The indexes of a bond's ports.
fn ports(bond: &Bond) -> Vec<u32> {
    bond.ports.iter().map(|port| port.index).collect()
}

fn port(bond: &Bond, index: u32) -> &BondPort {
    bond.ports
        .iter()
        .find(|port| port.index == index)
        .unwrap_or_else(|| panic!("{index} is no port of {bond:#?}"))
}

/// A bond's life in `mode`: created with `options(p0, p1)` (valid for the mode) before its
/// ports exist in it, two dummy ports enslaved, the bond up; what was sent reads back, the ports
/// have link; `check` looks at what is the mode's own; then miimon, updelay and downdelay change
/// live, one port is released (and left down by the kernel), the bond is deleted (its last port
/// released), and the dummies too.
fn lifecycle(
    mode: BondMode,
    options: impl FnOnce(u32, u32) -> BondOptions,
    check: impl FnOnce(&Kernel, &Bond, u32, u32),
) {
    let Some(k) = kernel_or_skip() else { return };
    let mut raw = Raw::open(0);
    let (p0, p1) = (k.dummy("p0"), k.dummy("p1"));
    let options = BondOptions {
        mode: Some(mode),
        ..options(p0, p1)
    };
    k.run(k.bonds.create_bond("bond0", &options)).unwrap();
    let created = k.bond("bond0");
    let before_ports = BondOptions {
        // The kernel reports primary only while that port is in the bond.
        primary: None,
        ..options.clone()
    };
    assert!(
        before_ports.changes_from(&created.info.options).is_empty(),
        "{mode}: sent {before_ports:#?}, read {created:#?}"
    );
    assert!(created.ports.is_empty() && !created.up, "{created:#?}");

    k.up("p0", true); // enslave takes an up port down first
    k.run(k.bonds.enslave("p0", "bond0")).unwrap();
    k.run(k.bonds.enslave("p1", "bond0")).unwrap();
    k.run(k.bonds.enslave("p1", "bond0")).unwrap(); // already: nothing to do
    k.up("bond0", true);
    let bond = k.wait_for("bond0", "both ports up with link", |bond| {
        bond.ports.len() == 2
            && bond
                .ports
                .iter()
                .all(|port| port.up && port.info.mii_status == Some(MiiStatus::Up))
    });
    assert_eq!(ports(&bond), [p0, p1]);
    assert!(bond.up);
    assert!(
        options.changes_from(&bond.info.options).is_empty(),
        "{mode}: sent {options:#?}, read {bond:#?}"
    );
    for port in &bond.ports {
        assert!(port.info.state.is_some(), "{port:#?}");
        assert_eq!(port.info.link_failure_count, Some(0), "{port:#?}");
        assert!(port.info.perm_hwaddr.is_some(), "{port:#?}");
        assert_eq!(raw.link(&port.name).1, Some(bond.index));
    }
    check(&k, &bond, p0, p1);

    let live = BondOptions {
        miimon: Some(200),
        updelay: Some(400),
        downdelay: Some(200),
        ..BondOptions::default()
    };
    k.set("bond0", live.clone()).unwrap();
    let changed = k.bond("bond0");
    assert!(
        live.changes_from(&changed.info.options).is_empty(),
        "{changed:#?}"
    );
    assert_eq!(changed.info.options.mode, Some(mode));

    k.run(k.bonds.release("p1")).unwrap();
    k.run(k.bonds.release("p1")).unwrap(); // released already: nothing to do
    assert_eq!(ports(&k.bond("bond0")), [p0]);
    let (flags, master) = raw.link("p1");
    assert_eq!((flags & IFF_UP, master), (0, None), "released p1 is down");

    k.run(k.bonds.delete_link("bond0")).unwrap();
    k.run(k.bonds.delete_link("bond0")).unwrap(); // gone already: done
    assert!(k.run(k.bonds.bonds()).unwrap().is_empty());
    assert_eq!(raw.link("p0").1, None);
    k.run(k.bonds.delete_link("p0")).unwrap();
    k.run(k.bonds.delete_link("p1")).unwrap();
    assert_eq!(k.run(k.bonds.index_of("p0")).unwrap(), None);
}

fn all_active(bond: &Bond) {
    for port in &bond.ports {
        assert_eq!(port.info.state, Some(PortState::Active), "{bond:#?}");
    }
}

#[test]
fn balance_rr() {
    lifecycle(
        BondMode::BalanceRr,
        |_, _| BondOptions {
            miimon: Some(100),
            min_links: Some(1),
            resend_igmp: Some(2),
            ..BondOptions::default()
        },
        |_, bond, _, _| {
            all_active(bond);
            assert!(bond.lower_up && bond.info.options.active_slave.is_none());
        },
    );
}

#[test]
fn active_backup() {
    lifecycle(
        BondMode::ActiveBackup,
        |p0, _| BondOptions {
            miimon: Some(100),
            primary: Some(p0),
            primary_reselect: Some(PrimaryReselect::Better),
            fail_over_mac: Some(FailOverMac::Active),
            num_peer_notif: Some(2),
            use_carrier: Some(true),
            all_slaves_active: Some(false),
            ..BondOptions::default()
        },
        |_, bond, p0, p1| {
            assert_eq!(bond.info.options.active_slave, Some(p0));
            assert_eq!(port(bond, p0).info.state, Some(PortState::Active));
            assert_eq!(port(bond, p1).info.state, Some(PortState::Backup));
        },
    );
}

#[test]
fn balance_xor() {
    lifecycle(
        BondMode::BalanceXor,
        |_, _| BondOptions {
            miimon: Some(100),
            xmit_hash_policy: Some(XmitHashPolicy::Layer34),
            min_links: Some(2),
            ..BondOptions::default()
        },
        |_, bond, _, _| {
            all_active(bond);
            assert!(bond.lower_up, "two ports meet min_links 2: {bond:#?}");
        },
    );
}

#[test]
fn broadcast() {
    lifecycle(
        BondMode::Broadcast,
        |_, _| BondOptions {
            miimon: Some(100),
            ..BondOptions::default()
        },
        |_, bond, _, _| all_active(bond),
    );
}

#[test]
fn ieee_802_3ad() {
    lifecycle(
        BondMode::Ieee8023ad,
        |_, _| BondOptions {
            miimon: Some(100),
            lacp_rate: Some(LacpRate::Fast),
            ad_select: Some(AdSelect::Bandwidth),
            xmit_hash_policy: Some(XmitHashPolicy::Layer23),
            ad_actor_sys_prio: Some(100),
            ad_user_port_key: Some(5),
            ..BondOptions::default()
        },
        |k, _, _, _| {
            // The LACP state machines run every 100 ms once the bond is up.
            let bond = k.wait_for("bond0", "ports in an aggregator", |bond| {
                bond.info.ad.is_some()
                    && bond.ports.iter().all(|port| {
                        port.info.ad_aggregator_id.is_some()
                            && port.info.ad_actor_oper_port_state.is_some()
                            && port.info.ad_partner_oper_port_state.is_some()
                    })
            });
            for port in &bond.ports {
                let actor = port.info.ad_actor_oper_port_state.unwrap();
                // LACP active, and the fast rate's short timeout.
                assert_eq!(
                    actor & (lacp_state::ACTIVITY | lacp_state::TIMEOUT),
                    lacp_state::ACTIVITY | lacp_state::TIMEOUT,
                    "{port:#?}"
                );
            }
            let ad = bond.info.ad.unwrap();
            assert!(
                ad.aggregator_id.is_some() && ad.partner_mac.is_some(),
                "{ad:#?}"
            );
            // No LACP partner on a dummy: the partner is all zeros.
            assert_eq!(ad.partner_mac, Some([0; 6]));
        },
    );
}

#[test]
fn balance_tlb() {
    lifecycle(
        BondMode::BalanceTlb,
        |p0, _| BondOptions {
            miimon: Some(100),
            primary: Some(p0),
            tlb_dynamic_lb: Some(false),
            xmit_hash_policy: Some(XmitHashPolicy::Layer34),
            ..BondOptions::default()
        },
        |_, bond, p0, _| assert_eq!(bond.info.options.active_slave, Some(p0)),
    );
}

#[test]
fn balance_alb() {
    lifecycle(
        BondMode::BalanceAlb,
        |p0, _| BondOptions {
            miimon: Some(100),
            primary: Some(p0),
            ..BondOptions::default()
        },
        |_, bond, p0, _| assert_eq!(bond.info.options.active_slave, Some(p0)),
    );
}

/// Active-backup with miimon: the active port going down moves the active port to the other
/// one, with an `IFLA_EVENT_BONDING_FAILOVER` notification; it comes back to the primary when
/// that has link again; `active_slave` moves it by hand.
#[test]
fn active_backup_fails_over_when_the_active_port_goes_down() {
    let Some(k) = kernel_or_skip() else { return };
    let (p0, p1, p2) = (k.dummy("p0"), k.dummy("p1"), k.dummy("p2"));
    let options = BondOptions {
        mode: Some(BondMode::ActiveBackup),
        miimon: Some(50),
        primary: Some(p0),
        ..BondOptions::default()
    };
    k.run(k.bonds.create_bond("ab", &options)).unwrap();
    k.run(k.bonds.enslave("p0", "ab")).unwrap();
    k.run(k.bonds.enslave("p1", "ab")).unwrap();
    k.up("ab", true);
    let bond = k.wait_for("ab", "p0 active", |bond| {
        bond.info.options.active_slave == Some(p0) && bond.ports.len() == 2
    });

    let mut events = Raw::open(RTMGRP_LINK);
    k.up("p0", false);
    let moved = k.wait_for("ab", "p1 active after p0 went down", |bond| {
        bond.info.options.active_slave == Some(p1)
            && port(bond, p0).info.mii_status == Some(MiiStatus::Down)
    });
    events.notification("IFLA_EVENT_BONDING_FAILOVER of the bond", |read| {
        read.link.index == bond.index && read.is_bond() && read.is_failover()
    });
    assert_eq!(port(&moved, p1).info.state, Some(PortState::Active));
    assert_eq!(port(&moved, p0).info.state, Some(PortState::Backup));
    let failures = port(&moved, p0).info.link_failure_count;
    assert!(failures.is_some_and(|count| count >= 1), "{moved:#?}");
    assert!(moved.lower_up, "p1 carries the bond: {moved:#?}");

    // primary_reselect always (the default): the primary takes over again.
    k.up("p0", true);
    k.wait_for("ab", "p0 active again", |bond| {
        bond.info.options.active_slave == Some(p0)
            && port(bond, p0).info.mii_status == Some(MiiStatus::Up)
    });

    // By hand: a port with link moves at once; a link that is no port is refused.
    k.set(
        "ab",
        BondOptions {
            active_slave: Some(p1),
            ..BondOptions::default()
        },
    )
    .unwrap();
    assert_eq!(k.bond("ab").info.options.active_slave, Some(p1));
    let refused = k
        .set(
            "ab",
            BondOptions {
                active_slave: Some(p2),
                ..BondOptions::default()
            },
        )
        .unwrap_err();
    assert_eq!(refused.errno(), Some(libc::EINVAL), "{refused}");
    // A primary that names no link clears it, without an error.
    let nowhere = BondOptions {
        primary: Some(9999),
        ..BondOptions::default()
    };
    k.set("ab", nowhere).unwrap();
    assert_eq!(k.bond("ab").info.options.primary, None);
    k.run(k.bonds.delete_link("ab")).unwrap();
}

/// What the bond engine must order its changes around, each refusal with its errno and a
/// message naming the bond and what to do.
#[test]
fn the_kernel_refuses_what_needs_the_bond_down_or_without_ports() {
    let Some(k) = kernel_or_skip() else { return };
    let mut raw = Raw::open(0);
    k.dummy("p0");
    let p1 = k.dummy("p1");
    let ab = BondOptions {
        mode: Some(BondMode::ActiveBackup),
        miimon: Some(100),
        ..BondOptions::default()
    };
    k.run(k.bonds.create_bond("r", &ab)).unwrap();
    k.run(k.bonds.enslave("p0", "r")).unwrap();
    k.up("r", true);
    let errno = |options: BondOptions| k.set("r", options).unwrap_err().errno();

    // Mode: a bond with ports refuses first (ENOTEMPTY), then an up one (EBUSY).
    let round_robin = BondOptions {
        mode: Some(BondMode::BalanceRr),
        ..BondOptions::default()
    };
    let error = k.set("r", round_robin.clone()).unwrap_err();
    assert_eq!(error.errno(), Some(libc::ENOTEMPTY));
    let text = error.to_string();
    assert!(
        text.contains("bond r") && text.contains("release its ports"),
        "{text}"
    );
    let fail_over_mac = BondOptions {
        fail_over_mac: Some(FailOverMac::Active),
        ..BondOptions::default()
    };
    assert_eq!(errno(fail_over_mac.clone()), Some(libc::ENOTEMPTY));
    // Options of another mode.
    let lacp = BondOptions {
        lacp_rate: Some(LacpRate::Fast),
        ..BondOptions::default()
    };
    assert_eq!(errno(lacp.clone()), Some(libc::EACCES));
    // Both monitors in one request.
    let both = BondOptions {
        miimon: Some(100),
        arp_interval: Some(100),
        ..BondOptions::default()
    };
    assert_eq!(errno(both), Some(libc::EINVAL));
    // An up port, enslaved without the executor taking it down first.
    k.up("p1", true);
    let (_, status) = raw.ask(set_master_request(p1, k.bond("r").index));
    assert_eq!(
        status,
        -libc::EPERM,
        "the kernel enslaves only ports that are down"
    );

    k.run(k.bonds.release("p0")).unwrap();
    let error = k.set("r", round_robin.clone()).unwrap_err();
    assert_eq!(error.errno(), Some(libc::EBUSY));
    assert!(error.to_string().contains("set it down first"), "{error}");
    k.up("r", false);
    k.set("r", round_robin).unwrap();
    k.set("r", fail_over_mac).unwrap(); // no ports: fine
    let mode_changed = k.bond("r");
    assert_eq!(mode_changed.info.options.mode, Some(BondMode::BalanceRr));
    assert_eq!(
        mode_changed.info.options.fail_over_mac,
        Some(FailOverMac::Active)
    );

    // arp_validate beside a non-zero miimon in one request (miimon is 100 already).
    let validate = BondOptions {
        miimon: Some(100),
        arp_validate: Some(ArpValidate::All),
        ..BondOptions::default()
    };
    assert_eq!(errno(validate), Some(libc::EINVAL));
    // ARP monitoring turns miimon off; delays then need miimon.
    let targets = vec![Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(192, 0, 2, 2)];
    let arp = BondOptions {
        arp_interval: Some(100),
        arp_ip_target: Some(targets.clone()),
        arp_validate: Some(ArpValidate::Active),
        arp_all_targets: Some(ArpAllTargets::All),
        ..BondOptions::default()
    };
    k.set("r", arp.clone()).unwrap();
    let arp_read = k.bond("r").info.options;
    assert!(arp.changes_from(&arp_read).is_empty(), "{arp_read:#?}");
    assert_eq!(arp_read.miimon, Some(0));
    let updelay = BondOptions {
        updelay: Some(200),
        ..BondOptions::default()
    };
    assert_eq!(errno(updelay), Some(libc::EPERM));
    for bad in [Ipv4Addr::BROADCAST, Ipv4Addr::UNSPECIFIED, targets[0]] {
        let list = BondOptions {
            arp_ip_target: Some(vec![targets[0], bad]),
            ..BondOptions::default()
        };
        assert_eq!(errno(list), Some(libc::EINVAL), "{bad}");
    }
    let clear = BondOptions {
        arp_ip_target: Some(Vec::new()),
        ..BondOptions::default()
    };
    k.set("r", clear).unwrap();
    assert_eq!(k.bond("r").info.options.arp_ip_target, None);
    // A mode without ARP monitoring turns it off and miimon on (100 ms); any mode change
    // resets arp_validate.
    let no_arp = BondOptions {
        mode: Some(BondMode::Ieee8023ad),
        ..BondOptions::default()
    };
    k.set("r", no_arp).unwrap();
    let switched = k.bond("r").info.options;
    assert_eq!(
        (
            switched.arp_interval,
            switched.miimon,
            switched.arp_validate
        ),
        (Some(0), Some(100), Some(ArpValidate::None))
    );

    // 802.3ad: its own options only while down; created with them in one request.
    let lacp_bond = BondOptions {
        mode: Some(BondMode::Ieee8023ad),
        lacp_rate: Some(LacpRate::Slow),
        ..BondOptions::default()
    };
    k.run(k.bonds.create_bond("l", &lacp_bond)).unwrap();
    assert_eq!(
        k.bond("l").info.options.miimon,
        Some(100),
        "set by the mode"
    );
    k.up("l", true);
    let error = k.set("l", lacp.clone()).unwrap_err();
    assert_eq!(error.errno(), Some(libc::EBUSY), "{error}");
    let ad_select = BondOptions {
        ad_select: Some(AdSelect::Count),
        ..BondOptions::default()
    };
    let port_key = BondOptions {
        ad_user_port_key: Some(3),
        ..BondOptions::default()
    };
    for down_only in [ad_select.clone(), port_key.clone()] {
        let error = k.set("l", down_only).unwrap_err();
        assert_eq!(error.errno(), Some(libc::EBUSY), "{error}");
    }
    // Delays are rounded down to a multiple of miimon, live.
    let rounded = BondOptions {
        updelay: Some(250),
        ..BondOptions::default()
    };
    k.set("l", rounded).unwrap();
    assert_eq!(k.bond("l").info.options.updelay, Some(200));
    k.up("l", false);
    for down_only in [lacp, ad_select, port_key] {
        k.set("l", down_only).unwrap();
    }
    let lacp_read = k.bond("l").info.options;
    assert_eq!(lacp_read.lacp_rate, Some(LacpRate::Fast));
    assert_eq!(lacp_read.ad_select, Some(AdSelect::Count));
    assert_eq!(lacp_read.ad_user_port_key, Some(3));

    // tlb_dynamic_lb is balance-alb's as well as balance-tlb's.
    let alb = BondOptions {
        mode: Some(BondMode::BalanceAlb),
        tlb_dynamic_lb: Some(false),
        ..BondOptions::default()
    };
    k.run(k.bonds.create_bond("t", &alb)).unwrap();
    assert_eq!(k.bond("t").info.options.tlb_dynamic_lb, Some(false));
    k.up("t", true);
    let dynamic = BondOptions {
        tlb_dynamic_lb: Some(true),
        ..BondOptions::default()
    };
    let error = k.set("t", dynamic).unwrap_err();
    assert_eq!(error.errno(), Some(libc::EBUSY), "{error}");

    // Creating a name that exists, changing a link that is not a bond, enslaving to a missing one.
    let exists = k.run(k.bonds.create_bond("p0", &ab)).unwrap_err();
    assert_eq!(exists.errno(), Some(libc::EEXIST), "{exists}");
    let not_bond = k.set("p0", BondOptions::default()).unwrap_err();
    assert_eq!(not_bond.errno(), Some(libc::EOPNOTSUPP), "{not_bond}");
    let missing = k.run(k.bonds.enslave("p0", "nothere")).unwrap_err();
    assert!(
        matches!(&missing, BondError::NoSuchLink { link, .. } if link == "nothere"),
        "{missing}"
    );
    assert_eq!(raw.link("p0").1, None);
}
