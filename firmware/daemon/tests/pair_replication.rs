//! The pair on the host tier: two `tandem run` boxes joined by a veth peer cable, each with its
//! own `--state DIR` (its config disk).
//!
//! - Pairing with the code: `pair start` on A shows it, `pair join CODE` on a factory-fresh B
//!   pairs; B gets the role A left free and, running nothing, receives A's whole config.
//! - A commit on A is running on B; a commit on B is running on A (both ways, fast-forward).
//! - `commit --confirm` applies on both boxes, and without `confirm` it rolls back on both.
//! - Three wrong codes lock pairing, on both consoles; the right code is refused after that.
//! - Forged STATEs (wrong key, unkeyed) and a replayed one are refused by reason; a partner
//!   whose firmware reads an older blob format is named, and nothing is pushed to it.
//! - Cable pulled, a commit on each box, cable back: both say DIVERGED, nothing is overwritten,
//!   `compare peer` shows the difference, `pair adopt-peer` settles it (the loser stays in
//!   the store's other slot).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::net::SocketAddrV6;
use std::path::Path;
use std::time::Duration;

use tandem_lab::cable_pair::{code_in, peer_link_local, CablePair};
use tandem_lab::host::HostProcess;

const TANDEM: &str = env!("CARGO_BIN_EXE_tandem");
const LIMIT: Duration = Duration::from_secs(20);
const PAIR_PORT: u16 = 5540;

struct Pair(CablePair);

impl Pair {
    fn new(tag: &str) -> Pair {
        Pair(CablePair::new(tag, Path::new(TANDEM)).unwrap())
    }

    fn start(&self, name: &str, config: Option<&str>) -> HostProcess {
        self.0.start(name, config, LIMIT).unwrap()
    }

    fn ask(&self, name: &str, words: &[&str]) -> String {
        self.0.ask(name, words)
    }

    fn wait(&self, name: &str, words: &[&str], what: &str) -> String {
        self.0
            .wait(name, words, what, LIMIT)
            .unwrap_or_else(|last| panic!("{name} never showed {what:?}; last answer:\n{last}"))
    }

    fn hostname(&self, name: &str) -> String {
        let running = self.ask(name, &["show", "running"]);
        running
            .lines()
            .find_map(|l| l.strip_prefix("hostname = "))
            .unwrap_or("")
            .trim_matches('"')
            .to_owned()
    }

    fn wait_hostname(&self, name: &str, wanted: &str) {
        let deadline = std::time::Instant::now() + LIMIT;
        while self.hostname(name) != wanted {
            assert!(
                std::time::Instant::now() < deadline,
                "{name} never ran hostname {wanted}; it runs {:?}\n{}",
                self.hostname(name),
                self.ask(name, &["pair", "status"])
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn commit_hostname(&self, name: &str, hostname: &str) -> String {
        let set = self.ask(name, &["set", "system.hostname", hostname]);
        assert!(set.contains("set: system.hostname"), "{set}");
        self.ask(name, &["commit"])
    }

    fn pair_up(&self) -> String {
        self.0.pair_up().unwrap()
    }
}

const A_CONFIG: &str = "[system]\nhostname = \"one\"\n\n[peer_link]\ninterface = \"peer\"\n\n[[interfaces]]\nname = \"peer\"\n";

#[test]
fn pairing_with_the_code_then_commits_replicate_both_ways() {
    let pair = Pair::new("prp");
    let a = pair.start("a", Some(A_CONFIG));
    // B is factory-fresh: no config at all.
    let b = pair.start("b", None);
    let joined = pair.pair_up();
    assert!(joined.contains("paired: this box is b"), "{joined}");
    assert!(
        joined.contains("stored on this box's config disk"),
        "{joined}"
    );
    pair.wait("a", &["pair", "status"], "pair: paired: this box is a");
    // B ran nothing: it receives A's whole config and then runs it.
    pair.wait_hostname("b", "one");
    pair.wait("b", &["pair", "status"], "in sync");
    pair.wait("a", &["pair", "status"], "in sync");
    // A commit on A is running on B.
    let committed = pair.commit_hostname("a", "two");
    assert!(committed.contains("generation 2 persisted"), "{committed}");
    assert!(
        committed.contains("pushing generation 2 to the partner"),
        "{committed}"
    );
    pair.wait_hostname("b", "two");
    // B ran generation 1, the base of A's new generation: only the delta crossed the cable.
    let pushed = a
        .console
        .wait_for("generation 2 applied on the partner in", LIMIT)
        .unwrap();
    assert!(pushed.contains("(a delta of "), "{pushed}");
    // A commit on B is running on A.
    pair.commit_hostname("b", "three");
    pair.wait_hostname("a", "three");
    let pushed = b
        .console
        .wait_for("generation 3 applied on the partner in", LIMIT)
        .unwrap();
    assert!(pushed.contains("(a delta of "), "{pushed}");
    let history = pair.ask("a", &["history"]);
    assert!(
        history
            .lines()
            .any(|l| l.split_whitespace().nth(1) == Some("3")),
        "no generation 3 in A's history:\n{history}"
    );
    let status = pair.wait("b", &["pair", "status"], "in sync");
    assert!(status.contains("pushes applied=1"), "{status}");
    // The pairing survives a restart of B (it is on B's config disk).
    drop(b);
    let _b = pair.start("b", None);
    pair.wait("b", &["pair", "status"], "pair: paired: this box is b");
    pair.wait("b", &["pair", "status"], "in sync");
}

/// The console admin password hash stored in a `--state DIR`'s identity file.
fn stored_credential(state: &Path) -> Option<String> {
    use tandem_config::identity::IdentityStore;
    use tandem_config::storage::FileDevice;
    let device = FileDevice::open(&state.join("pair.identity")).unwrap();
    IdentityStore::new(device, 0).load_credential().unwrap()
}

#[test]
fn the_admin_password_travels_with_the_config() {
    use tandem_config::identity::{IdentityStore, IDENTITY_BYTES};
    use tandem_config::storage::FileDevice;
    let pair = Pair::new("pcr");
    // A's console password (any PHC-shaped text: it travels and is stored verbatim).
    let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaC1vZi1h";
    let a_state = pair.0.state("a");
    std::fs::create_dir_all(&a_state).unwrap();
    let device = FileDevice::create(&a_state.join("pair.identity"), IDENTITY_BYTES).unwrap();
    IdentityStore::new(device, 0)
        .save_credential(Some(hash))
        .unwrap();
    let _a = pair.start("a", Some(A_CONFIG));
    let b = pair.start("b", None);
    assert!(pair.pair_up().contains("paired"));
    pair.wait("b", &["pair", "status"], "in sync");
    b.console
        .wait_for("the admin password is now the partner's", LIMIT)
        .unwrap();
    assert_eq!(stored_credential(&pair.0.state("b")).as_deref(), Some(hash));
    // Pairing kept B's own identity record beside it.
    assert_eq!(
        stored_identity(&pair.0.state("b")).1,
        stored_identity(&a_state).1
    );
    // A commit on B sends the same password back: A keeps it, nothing is logged twice.
    let answer = pair.commit_hostname("b", "from-b");
    assert!(answer.contains("commit:"), "{answer}");
    pair.wait_hostname("a", "from-b");
    assert_eq!(stored_credential(&a_state).as_deref(), Some(hash));
}

#[test]
fn three_wrong_codes_lock_pairing_on_both_consoles() {
    let pair = Pair::new("prw");
    let a = pair.start("a", Some(A_CONFIG));
    let _b = pair.start("b", None);
    let started = pair.ask("a", &["pair", "start"]);
    let code = code_in(&started).unwrap();
    // A code that differs from the right one in its last digit.
    let wrong = {
        let mut digits: Vec<char> = code.chars().filter(char::is_ascii_digit).collect();
        let last = digits.pop().unwrap();
        digits.push(if last == '9' {
            '0'
        } else {
            char::from(last as u8 + 1)
        });
        digits.into_iter().collect::<String>()
    };
    let first = pair.ask("b", &["pair", "join", &wrong]);
    assert!(
        first.contains("wrong pairing code (2 tries left)"),
        "{first}"
    );
    a.console
        .wait_for(
            "the other console entered a wrong pairing code (2 tries left)",
            LIMIT,
        )
        .unwrap();
    let second = pair.ask("b", &["pair", "join", &wrong]);
    assert!(
        second.contains("wrong pairing code (1 try left)"),
        "{second}"
    );
    let third = pair.ask("b", &["pair", "join", &wrong]);
    assert!(third.contains("locked"), "{third}");
    a.console.wait_for("pairing locked", LIMIT).unwrap();
    // The right code is burned now, and A refuses a new `pair start` for a while.
    let late = pair.ask("b", &["pair", "join", &code]);
    assert!(!late.contains("paired:"), "{late}");
    let again = pair.ask("a", &["pair", "start"]);
    assert!(again.contains("pairing is locked"), "{again}");
    let status = pair.ask("b", &["pair", "status"]);
    assert!(status.contains("pair: not paired"), "{status}");
}

/// The pair key and id stored in a box's `--state DIR` (the identity record's layout).
fn stored_identity(state: &Path) -> ([u8; 32], u64) {
    let bytes = std::fs::read(state.join("pair.identity")).unwrap();
    // Two copies of 4096 bytes; the one with the larger sequence wins.
    let sequence = |at: usize| u64::from_le_bytes(bytes[at + 6..at + 14].try_into().unwrap());
    let at = if &bytes[4096..4100] == b"TDID" && sequence(4096) > sequence(0) {
        4096
    } else {
        0
    };
    let pair_id = u64::from_le_bytes(bytes[at + 16..at + 24].try_into().unwrap());
    (bytes[at + 24..at + 56].try_into().unwrap(), pair_id)
}

/// The `received=N` count of STATEs in a `pair status` answer.
fn states_received(status: &str) -> u64 {
    status
        .split_whitespace()
        .find_map(|word| word.strip_prefix("received="))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no received= in:\n{status}"))
}

#[test]
fn forged_and_replayed_states_are_refused_by_reason() {
    use tandem_wire::replication::{
        PairRole, Relation, StateRepr, CHANNEL_VERSION, MAX_DATAGRAM_LEN,
    };
    let pair = Pair::new("prf");
    let _a = pair.start("a", Some(A_CONFIG));
    let b = pair.start("b", None);
    assert!(pair.pair_up().contains("paired"));
    pair.wait("b", &["pair", "status"], "in sync");
    let (key, pair_id) = stored_identity(&pair.0.state("a"));
    let state = |session: u64, sequence: u64| StateRepr {
        pair_id,
        session,
        sequence,
        role: Some(PairRole::A),
        generation: 999,
        digest: 0xdead_beef,
        relation: Relation::ReceiverNotInHistory,
        blob_format: 3,
        channel_version: CHANNEL_VERSION,
        push_port: PAIR_PORT,
    };
    let emit = |repr: StateRepr, key: Option<&[u8; 32]>| {
        let mut buffer = [0u8; MAX_DATAGRAM_LEN];
        let len = repr.emit(&mut buffer, key).unwrap();
        buffer[..len].to_vec()
    };
    let valid = emit(state(77, 1), Some(&key));
    let datagrams = vec![
        emit(state(77, 1), Some(&[9u8; 32])), // wrong key
        emit(state(77, 1), None),             // unkeyed
        valid.clone(),
    ];
    let to = SocketAddrV6::new(
        peer_link_local(&pair.0.b).unwrap(),
        PAIR_PORT,
        0,
        pair.0.a.ifindex("peer").unwrap(),
    );
    let send = |datagrams: Vec<Vec<u8>>| {
        pair.0
            .a
            .run(move || {
                let socket = std::net::UdpSocket::bind("[::]:0").unwrap();
                nix::sys::socket::setsockopt(&socket, nix::sys::socket::sockopt::Ipv6Ttl, &255)
                    .unwrap();
                for datagram in datagrams {
                    socket.send_to(&datagram, to).unwrap();
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
            .unwrap();
    };
    send(datagrams);
    let forged = pair.wait("b", &["pair", "status"], "missing MAC=1");
    // The replay comes after A's own next STATE (a session switch in between), so the
    // window must remember session 77, not only the session heard last.
    let heard = states_received(&forged);
    let deadline = std::time::Instant::now() + LIMIT;
    while states_received(&pair.ask("b", &["pair", "status"])) < heard + 2 {
        assert!(std::time::Instant::now() < deadline, "A's STATEs stopped");
        std::thread::sleep(Duration::from_millis(50));
    }
    send(vec![valid]); // exact replay
    let status = pair.wait("b", &["pair", "status"], "replayed STATE=1");
    // One datagram each: the wrong key, the unkeyed one.
    assert!(status.contains("bad MAC=1"), "{status}");
    assert!(status.contains("missing MAC=1"), "{status}");
    // The forged state (generation 999) never made B push or change anything.
    assert_eq!(pair.hostname("b"), "one");
    // A partner whose firmware reads an older blob format: B says so and pushes nothing.
    let older = StateRepr {
        blob_format: 2,
        ..state(78, 1)
    };
    send(vec![emit(older, Some(&key))]);
    b.console
        .wait_for(
            "the partner's firmware reads config blob formats up to 2",
            LIMIT,
        )
        .unwrap();
}

#[test]
fn edits_on_both_sides_of_a_pulled_cable_diverge_and_adopt_peer_settles_it() {
    let pair = Pair::new("prd");
    let _a = pair.start("a", Some(A_CONFIG));
    let _b = pair.start("b", None);
    assert!(pair.pair_up().contains("paired"));
    pair.wait_hostname("b", "one");
    pair.wait("a", &["pair", "status"], "in sync");
    pair.0.a.ip(&["link", "set", "peer", "down"]).unwrap();
    pair.wait("a", &["pair", "status"], "partner not heard");
    pair.wait("b", &["pair", "status"], "partner not heard");
    // A commit while the partner is away succeeds here.
    let on_a = pair.commit_hostname("a", "edited-on-a");
    assert!(on_a.contains("persisted"), "{on_a}");
    assert!(on_a.contains("partner behind"), "{on_a}");
    pair.commit_hostname("b", "edited-on-b");
    pair.0.a.ip(&["link", "set", "peer", "up"]).unwrap();
    let a_status = pair.wait("a", &["pair", "status"], "DIVERGED");
    let b_status = pair.wait("b", &["pair", "status"], "DIVERGED");
    assert!(a_status.contains("pair adopt-peer"), "{a_status}");
    assert!(b_status.contains("pair push"), "{b_status}");
    // Nothing was overwritten.
    assert_eq!(pair.hostname("a"), "edited-on-a");
    assert_eq!(pair.hostname("b"), "edited-on-b");
    let compare = pair.ask("b", &["compare", "peer"]);
    assert!(
        compare.contains("edited-on-a") && compare.contains("edited-on-b"),
        "{compare}"
    );
    // B takes A's config; both then run it and are in sync.
    let adopted = pair.ask("b", &["pair", "adopt-peer"]);
    assert!(adopted.contains("applied"), "{adopted}");
    assert_eq!(pair.hostname("b"), "edited-on-a");
    pair.wait("b", &["pair", "status"], "in sync");
    pair.wait("a", &["pair", "status"], "in sync");
    assert_eq!(pair.hostname("a"), "edited-on-a");
    // B's own edit is still in its history.
    let history = pair.ask("b", &["history"]);
    assert!(
        history.contains("adopted the partner's generation"),
        "{history}"
    );
}

#[test]
fn an_unconfirmed_commit_applies_on_both_and_rolls_back_on_both() {
    let pair = Pair::new("prc");
    let _a = pair.start("a", Some(A_CONFIG));
    let _b = pair.start("b", None);
    assert!(pair.pair_up().contains("paired"));
    pair.wait_hostname("b", "one");
    let set = pair.ask("a", &["set", "system.hostname", "trial"]);
    assert!(set.contains("set:"), "{set}");
    let committed = pair.ask("a", &["commit", "--confirm", "3"]);
    assert!(
        committed.contains("unless `confirm` arrives"),
        "{committed}"
    );
    // Applied on both while it waits for its confirmation ...
    pair.wait_hostname("b", "trial");
    // ... and rolled back on both when none comes.
    pair.wait_hostname("a", "one");
    pair.wait_hostname("b", "one");
    let history = pair.ask("b", &["history"]);
    assert!(history.contains("not confirmed in time"), "{history}");
    pair.wait("b", &["pair", "status"], "in sync");
}
