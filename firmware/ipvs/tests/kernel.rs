//! Talks to the real kernel's IPVS family. Skips (with a printed reason) when the family is
//! absent and no ip_vs module can be loaded, as on hosts without IPVS; the lab runs this very
//! binary inside qemu (`make lab-image` puts it at /lab/ipvs-kernel-tests, and
//! tests/tests/lab_ipvs_kernel.rs boots a box that runs it and requires every test to pass).
// Test/bench helpers outside #[test] fns may unwrap: a failure is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv4Addr};

use tandem_ipvs::*;

fn open_or_skip() -> Option<Executor> {
    if matches!(Executor::open(), Err(OpenError::FamilyAbsent)) {
        // Root on a kernel that has the module but has not loaded it (the lab box): load it
        // the way the appliance does. crc32c_generic first: ip_vs's libcrc32c needs it, and
        // modules.dep does not say so.
        if let Err(error) = tandem_southbound::kmod::ModuleLoader::for_running_kernel()
            .and_then(|loader| loader.load(["crc32c_generic", "ip_vs", "ip_vs_wrr", "ip_vs_wlc"]))
        {
            eprintln!("cannot load ip_vs: {error}");
        }
    }
    // In a lab box (started by tandem's lab hook) IPVS must be there: no skipping.
    let in_lab_box = std::fs::read_to_string("/proc/cmdline")
        .is_ok_and(|cmdline| cmdline.contains("tandem.lab_exec="));
    match Executor::open() {
        Ok(e) => Some(e),
        Err(e) if in_lab_box => panic!("IPVS must be usable in the lab box: {e}"),
        Err(OpenError::FamilyAbsent) => {
            eprintln!("SKIP: kernel has no IPVS generic netlink family (ip_vs not loaded)");
            None
        }
        Err(e) => {
            eprintln!("SKIP: cannot open generic netlink: {e}");
            None
        }
    }
}

#[test]
fn service_and_dest_lifecycle_against_kernel() {
    let Some(mut exec) = open_or_skip() else {
        return;
    };
    let key = ServiceKey::Inet {
        protocol: Protocol::Tcp,
        addr: IpAddr::V4(Ipv4Addr::new(198, 51, 100, 77)),
        port: 8077,
    };
    let _ = exec.apply(&[Request::DelService(key)]); // leftover from an aborted run
    let dest = |i: u8, weight| Dest {
        addr: IpAddr::V4(Ipv4Addr::new(198, 51, 100, i)),
        port: 80,
        forward: ForwardMethod::DirectRoute,
        weight,
        upper_threshold: 0,
        lower_threshold: 0,
        tunnel: None,
    };
    let mut reqs = vec![Request::NewService(Service::new(key, "wrr"))];
    reqs.extend((1..=50).map(|i| Request::NewDest(key, dest(i, 1))));
    let errors = exec.apply(&reqs).unwrap();
    assert!(errors.is_empty(), "{errors:?}");

    let dests = exec.dests(&key).unwrap();
    assert_eq!(dests.len(), 50);
    assert!(exec
        .services()
        .unwrap()
        .iter()
        .any(|s| s.service.key == key));

    // Per-request error naming the object: adding an existing dest is EEXIST.
    let errs = exec
        .apply(&[
            Request::NewDest(key, dest(1, 1)),
            Request::SetDest(key, dest(2, 9)),
        ])
        .unwrap();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].index, 0);
    assert_eq!(errs[0].errno, 17);
    assert!(
        errs[0].to_string().contains("198.51.100.1:80"),
        "{}",
        errs[0]
    );
    let d2 = exec
        .dests(&key)
        .unwrap()
        .into_iter()
        .find(|d| d.dest.addr == dest(2, 0).addr)
        .unwrap();
    assert_eq!(d2.dest.weight, 9);

    let mut edited = Service::new(key, "wlc");
    edited.flags = uapi::IP_VS_SVC_F_PERSISTENT;
    edited.timeout = 120;
    assert!(exec
        .apply(&[Request::SetService(edited.clone())])
        .unwrap()
        .is_empty());
    let back = exec
        .services()
        .unwrap()
        .into_iter()
        .find(|s| s.service.key == key)
        .unwrap();
    assert_eq!(back.service, edited);

    assert!(exec.info().unwrap().is_some());
    assert!(exec.timeouts().unwrap().is_some());
    assert!(exec.apply(&[Request::DelService(key)]).unwrap().is_empty());
    // A dump of a missing service's dests is empty (the kernel ends the dump silently).
    assert!(exec.dests(&key).unwrap().is_empty());
    assert!(!exec
        .services()
        .unwrap()
        .iter()
        .any(|s| s.service.key == key));
}
