//! The executor's interface-index cache against this machine's kernel, in a network namespace:
//! a link deleted and created again under the same name (new index) is found on the retry after
//! `ENODEV`, and a rename through the executor makes the old name mean the new link.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::net::IpAddr;
use std::sync::Arc;

use tandem_lab::netns::Netns;
use tandem_southbound::net::{NetExecutor, NetOp};

fn add(link: &str, address: &str) -> NetOp {
    NetOp::AddAddress {
        link: link.into(),
        address: address.parse::<IpAddr>().unwrap(),
        prefix_len: 24,
    }
}

#[test]
fn cached_indexes_follow_recreated_and_renamed_links() {
    let ns = Arc::new(Netns::new("ixc").unwrap());
    // veth (its peer named `<peer>`): the host kernel may lack the dummy driver.
    let veth = |ns: &Netns, name: &str, peer: &str| {
        ns.ip(&["link", "add", name, "type", "veth", "peer", "name", peer])
            .unwrap();
    };
    veth(&ns, "d0", "p0");
    let first_index = ns.ifindex("d0").unwrap();
    let inner = Arc::clone(&ns);
    ns.run(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let net = NetExecutor::connect().unwrap();
            net.apply(&[add("d0", "192.0.2.10")]).await.unwrap();

            // Same name, new link: the cached index answers ENODEV, the retry finds the new one.
            inner.ip(&["link", "del", "d0"]).unwrap();
            veth(&inner, "d0", "p1");
            assert_ne!(inner.ifindex("d0").unwrap(), first_index);
            net.apply(&[add("d0", "192.0.2.11")]).await.unwrap();
            let shown = inner.ip(&["-o", "addr", "show", "dev", "d0"]).unwrap();
            assert!(shown.contains("192.0.2.11/24"), "{shown}");

            // A clone shares the cache; a rename through it forgets both names.
            let clone = net.clone();
            clone
                .apply(&[
                    NetOp::SetLinkDown { name: "d0".into() },
                    NetOp::RenameLink {
                        from: "d0".into(),
                        to: "d1".into(),
                    },
                ])
                .await
                .unwrap();
            veth(&inner, "d0", "p2");
            net.apply(&[add("d0", "192.0.2.12"), add("d1", "192.0.2.13")])
                .await
                .unwrap();
            let d0 = inner.ip(&["-o", "addr", "show", "dev", "d0"]).unwrap();
            let d1 = inner.ip(&["-o", "addr", "show", "dev", "d1"]).unwrap();
            assert!(
                d0.contains("192.0.2.12/24") && !d0.contains("192.0.2.13"),
                "{d0}"
            );
            assert!(
                d1.contains("192.0.2.11/24") && d1.contains("192.0.2.13/24"),
                "{d1}"
            );

            // A link that is really gone is still an error naming it.
            inner.ip(&["link", "del", "d1"]).unwrap();
            let error = net.apply(&[add("d1", "192.0.2.14")]).await.unwrap_err();
            assert!(error.to_string().contains("no such link"), "{error}");
        });
    })
    .unwrap();
}
