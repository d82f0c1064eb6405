//! The partner's firmware on the peer channel (issue 15), on the host tier: two `tandem run`
//! boxes joined by a veth peer cable.
//!
//! - Each box tells its partner its firmware (FIRMWARE, channel 4): `pair status` on each shows
//!   the other's version and slot.
//! - `pair install-partner FILE` sends the bundle over the cable; the partner runs `firmware
//!   install`'s checks and its refusal reason comes back to the sender's operator (a host box
//!   has no slot to write, so the install itself is the lab's `lab_pair_firmware`).
//! - A partner whose STATE says channel 3 is never sent FIRMWARE (firmware of channel 3 would
//!   count the unknown kind as bad); one that says channel 4 is.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::net::SocketAddrV6;
use std::path::Path;
use std::time::{Duration, Instant};

use tandem_lab::cable_pair::{peer_link_local, CablePair};

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const LIMIT: Duration = Duration::from_secs(20);
const PAIR_PORT: u16 = 5540;
const VERSION: &str = env!("CARGO_PKG_VERSION");
const A_CONFIG: &str = "[system]\nhostname = \"one\"\n\n[peer_link]\ninterface = \"peer\"\n\n[[interfaces]]\nname = \"peer\"\n";

fn wait(pair: &CablePair, name: &str, words: &[&str], what: &str) -> String {
    pair.wait(name, words, what, LIMIT)
        .unwrap_or_else(|last| panic!("{name} never showed {what:?}; last answer:\n{last}"))
}

#[test]
fn each_box_sees_the_others_firmware_and_a_partners_refusal_comes_back_with_its_reason() {
    let pair = CablePair::new("pfw", Path::new(TANDEM)).unwrap();
    let _a = pair.start("a", Some(A_CONFIG), LIMIT).unwrap();
    let b = pair.start("b", None, LIMIT).unwrap();
    // Unpaired: nothing to send to.
    let file = pair.dir.path.join("junk.bundle");
    std::fs::write(&file, b"TANDEMFW but not really a bundle").unwrap();
    let file = file.to_str().unwrap();
    let unpaired = pair.ask("a", &["pair", "install-partner", file]);
    assert!(unpaired.contains("this box is not paired"), "{unpaired}");

    assert!(pair.pair_up().unwrap().contains("paired"));
    let line =
        format!("pair: partner firmware {VERSION} not booted from a slot (replication channel 4)");
    for name in ["a", "b"] {
        let status = wait(&pair, name, &["pair", "status"], &line);
        assert!(
            status.contains(&format!(
                "pair: firmware here {VERSION} not booted from a slot (replication channel 4)"
            )),
            "{status}"
        );
    }

    // The bundle crosses the cable; B checks it as `firmware install` would and says why not.
    let answer = pair.ask("a", &["pair", "install-partner", file]);
    assert!(
        answer.contains("pair: install-partner: the partner refused the bundle: firmware: install refused: this box did not boot from a Tandem disk image slot"),
        "{answer}"
    );
    assert!(answer.contains("nothing was written"), "{answer}");
    b.console
        .wait_for("firmware: the partner sent a bundle of 32 bytes", LIMIT)
        .unwrap();
    let firmware = pair.ask("b", &["firmware", "status"]);
    assert!(
        firmware.contains("firmware: refused: not_installable 1"),
        "{firmware}"
    );
    // A file that is not there is refused here, before anything is sent.
    let missing = pair.ask("a", &["pair", "install-partner", "/nonexistent.bundle"]);
    assert!(
        missing.contains("cannot read /nonexistent.bundle"),
        "{missing}"
    );
}

/// The pair key and id stored in a box's `--state DIR` (the identity record's layout).
fn stored_identity(state: &Path) -> ([u8; 32], u64) {
    let bytes = std::fs::read(state.join("pair.identity")).unwrap();
    let sequence = |at: usize| u64::from_le_bytes(bytes[at + 6..at + 14].try_into().unwrap());
    let at = if &bytes[4096..4100] == b"TDID" && sequence(4096) > sequence(0) {
        4096
    } else {
        0
    };
    let pair_id = u64::from_le_bytes(bytes[at + 16..at + 24].try_into().unwrap());
    (bytes[at + 24..at + 56].try_into().unwrap(), pair_id)
}

#[test]
fn a_channel_3_partner_is_never_sent_firmware_and_a_channel_4_one_is() {
    use tandem_wire::replication::{
        decode, KeyPolicy, Message, PairRole, Relation, StateRepr, MAX_DATAGRAM_LEN,
    };
    let pair = CablePair::new("pfc", Path::new(TANDEM)).unwrap();
    let _a = pair.start("a", Some(A_CONFIG), LIMIT).unwrap();
    let b = pair.start("b", None, LIMIT).unwrap();
    assert!(pair.pair_up().unwrap().contains("paired"));
    wait(&pair, "a", &["pair", "status"], "pair: partner firmware");
    // B stops; the test plays B on the cable, as firmware of channel `channel`.
    drop(b);
    // Until A stops hearing the real B, it still takes it for channel 4.
    wait(&pair, "a", &["pair", "status"], "pair: partner not heard");
    let (key, pair_id) = stored_identity(&pair.state("b"));
    let to = SocketAddrV6::new(
        peer_link_local(&pair.a).unwrap(),
        PAIR_PORT,
        0,
        pair.b.ifindex("peer").unwrap(),
    );
    // Sends B's STATE every 100 ms for `for_how_long` and returns the kinds A sent back.
    let play_b = |channel: u8, session: u64, for_how_long: Duration| -> Vec<&'static str> {
        pair.b
            .run(move || {
                let socket = std::net::UdpSocket::bind(format!("[::]:{PAIR_PORT}")).unwrap();
                nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::Ipv6Ttl, &255)
                    .unwrap();
                socket
                    .set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                let mut kinds = Vec::new();
                let mut sequence = 0;
                let mut buffer = [0u8; 2048];
                let end = Instant::now() + for_how_long;
                while Instant::now() < end {
                    sequence += 1;
                    let state = StateRepr {
                        pair_id,
                        session,
                        sequence,
                        role: Some(PairRole::B),
                        generation: 0,
                        digest: 0,
                        relation: Relation::Unknown,
                        blob_format: tandem_config::blob::FORMAT_VERSION,
                        channel_version: channel,
                        push_port: PAIR_PORT,
                    };
                    let mut out = [0u8; MAX_DATAGRAM_LEN];
                    let len = state.emit(&mut out, Some(&key)).unwrap();
                    socket.send_to(&out[..len], to).unwrap();
                    while let Ok((len, _)) = socket.recv_from(&mut buffer) {
                        match decode(&buffer[..len], pair_id, KeyPolicy::Require(&key)) {
                            Ok(Message::State(_)) => kinds.push("state"),
                            Ok(Message::Firmware(firmware)) => {
                                assert_eq!(firmware.version, VERSION);
                                assert_eq!(firmware.role, Some(PairRole::A));
                                kinds.push("firmware");
                            }
                            Ok(other) => panic!("A sent {:?} on udp", other.kind()),
                            Err(error) => panic!("A sent a datagram B refuses: {error}"),
                        }
                    }
                }
                kinds
            })
            .unwrap()
    };
    let old = play_b(3, 0x0303, Duration::from_secs(3));
    assert!(
        old.iter().filter(|k| **k == "state").count() >= 4,
        "A's STATEs: {old:?}"
    );
    assert!(
        !old.contains(&"firmware"),
        "a channel-3 partner got FIRMWARE: {old:?}"
    );
    let status = pair.ask("a", &["pair", "status"]);
    assert!(
        status.contains("pair: partner firmware not told: it speaks replication channel 3"),
        "{status}"
    );
    // Channel 3 replicates with channel 4: no version skew.
    assert!(!status.contains("VERSION SKEW"), "{status}");
    let new = play_b(4, 0x0404, Duration::from_secs(2));
    assert!(
        new.contains(&"firmware"),
        "a channel-4 partner got no FIRMWARE: {new:?}"
    );
}
