//! An lvs.cf FTP service (NAT, tcp port 21: what `ip_vs_ftp` serves) imported as an operator
//! would and run on a qemu director (lab image): box-a directs 192.0.2.13:21 round robin to
//! rs1 and rs2, whose lab-httpd runs a minimal FTP server (its greeting names the box, its one
//! file `served-by` holds `served-by <box>`). A client on the public segment, with no route to
//! the real servers' network, downloads the file through the VIP:
//!
//! - passive mode (PASV): the real server's reply carries its private address, the director's
//!   `ip_vs_ftp` (loaded by the LVS engine for this service) must write the VIP into it, and
//!   curl is told to use the address of the reply; EPSV (no address, a port only) as well;
//! - active mode (PORT): curl, and a client of our own that checks the data connection came
//!   from the VIP's port 20 (the helper's connection entry translating rs:20; without it the
//!   connection would arrive from the real server's private address, which the client cannot
//!   answer).
//!
//! Each transfer's bytes come from the server whose greeting the control connection got. The
//! director has no NAT gateway (see [`director`]): what the test sees is IPVS and its FTP helper
//! alone, with `net.ipv4.vs.conntrack` at 0.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failed step is a failed test

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use tandem_lab::servers::{nat_director, nat_real_server};
use tandem_lab::{BoxSpec, Lab, Segment};

const BOOT: Duration = Duration::from_secs(240);
/// nanny's check runs every 6 s (lvs.cf has no keepalive) and a server is in after a passed
/// check and, after a failed one, the re-entry time (2 s): TCG on a loaded machine stretches
/// that, so allow generously.
const CHECK_BOUND: Duration = Duration::from_secs(120);
const VIP: &str = "192.0.2.13";
const CLIENT: &str = "192.0.2.100";

/// The lvs.cf of the director: the guide's NAT topology with an FTP virtual server on port 21
/// and nanny's FTP check (send quit, expect the 220 greeting).
const LVS_CF: &str = r#"serial_no = 1
network = nat
nat_router = 198.51.100.254 private
nat_nmask = 255.255.255.0
virtual ftp {
     active = 1
     address = 192.0.2.13 public
     vip_nmask = 255.255.255.0
     port = 21
     send = "quit\r\n"
     expect = "220"
     use_regex = 0
     load_monitor = none
     scheduler = rr
     protocol = tcp
     timeout = 6
     reentry = 2
     quiesce_server = 0
     server rs1 {
         address = 198.51.100.11
         active = 1
         weight = 1
     }
     server rs2 {
         address = 198.51.100.12
         active = 1
         weight = 1
     }
}
"#;

/// The director's config: the lab's NAT director with the imported virtual server, and the
/// real servers' gateway address 198.51.100.254 as a plain address of its private port instead
/// of `[nat_gateway]`: then no source-NAT table (a nat chain) registers conntrack, and only
/// IPVS itself can give `ip_vs_ftp` the conntrack entry it rewrites the PASV reply through
/// (the kernel does so for a NAT service on port 21); `net.ipv4.vs.conntrack` stays at its
/// default 0 (Tandem never sets it). FTP needs no masquerading: the helper's connection entries
/// carry the active-mode data connections too.
fn director() -> String {
    let imported = tandem_config::import::lvs::import(LVS_CF).unwrap();
    assert!(imported.is_lossless(), "{:#?}", imported.notes);
    assert!(
        imported.notes.iter().any(|n| n.keyword == "port"
            && n.message.starts_with(
                "virtual ftp is FTP (tcp port 21) by NAT: the director loads ip_vs_ftp"
            )),
        "{:#?}",
        imported.notes
    );
    let mut config =
        tandem_config::text::from_toml(&nat_director("box-a", &["192.0.2.1", VIP])).unwrap();
    config.virtual_services = imported.config.virtual_services;
    // The lab's one change: servers enter after a passed check (keepalived's `alpha`), so a
    // table with both servers in cannot be one a first, failing check is about to change (a
    // real server's FTP server may start before its address is up).
    for service in config.virtual_services.as_mut_slice() {
        service.start_down = true;
    }
    config.nat_gateway = None;
    let private = config
        .interfaces
        .as_mut_slice()
        .iter_mut()
        .find(|i| i.name.as_str() == "private")
        .unwrap();
    private
        .addresses
        .push("198.51.100.254/24".parse().unwrap())
        .unwrap();
    tandem_config::text::to_toml(&config).unwrap()
}

/// One transfer as curl saw it: the box the greeting named and the body it got.
#[derive(Debug)]
struct Transfer {
    greeted_by: String,
    body: String,
    /// curl's protocol lines (`> ` sent, `< ` received).
    dialogue: Vec<String>,
}

/// `curl -v` downloading the file through the VIP with `args`; verbose output and body
/// together (`--stderr -`).
fn curl(netns: &str, args: &[&str]) -> Transfer {
    let url = format!("ftp://{VIP}/served-by");
    let mut all = vec!["-sS", "-v", "--stderr", "-", "--max-time", "60"];
    all.extend_from_slice(args);
    all.push(&url);
    let output = tandem_lab::shell::exec_in(netns, "curl", &all).unwrap();
    let lines: Vec<String> = output.lines().map(str::to_owned).collect();
    let greeted_by = lines
        .iter()
        .find_map(|l| l.strip_prefix("< 220 lab-ftpd "))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no greeting: {output}"))
        .to_owned();
    let body = lines
        .iter()
        .find(|l| l.starts_with("served-by "))
        .unwrap_or_else(|| panic!("no body: {output}"))
        .clone();
    let dialogue = lines
        .into_iter()
        .filter(|l| l.starts_with("> ") || l.starts_with("< "))
        .collect();
    Transfer {
        greeted_by,
        body,
        dialogue,
    }
}

fn said(transfer: &Transfer, prefix: &str) -> Option<String> {
    transfer
        .dialogue
        .iter()
        .find(|l| l.starts_with(prefix))
        .cloned()
}

/// Runs `f` on a thread inside the client's network namespace `netns`.
fn in_client<T: Send + 'static>(netns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{netns}");
    let file = std::fs::File::open(&path).unwrap();
    std::thread::spawn(move || {
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// An active-mode download by hand: PORT to a listener of the client's, RETR; returns the box
/// the greeting named, where the data connection came from, and the bytes.
fn active_by_hand() -> (String, SocketAddr, String) {
    let timeout = Duration::from_secs(60);
    let control =
        TcpStream::connect_timeout(&format!("{VIP}:21").parse().unwrap(), timeout).unwrap();
    control.set_read_timeout(Some(timeout)).unwrap();
    let mut out = control.try_clone().unwrap();
    let mut replies = BufReader::new(control);
    let mut reply = || {
        let mut line = String::new();
        replies.read_line(&mut line).unwrap();
        line.trim_end().to_owned()
    };
    let greeting = reply();
    let greeted_by = greeting
        .strip_prefix("220 lab-ftpd ")
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("greeting {greeting:?}"))
        .to_owned();
    let listener = TcpListener::bind((CLIENT, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let [high, low] = port.to_be_bytes();
    let octets = CLIENT.replace('.', ",");
    for (command, expect) in [
        ("USER anonymous".to_owned(), "331"),
        ("PASS lab".to_owned(), "230"),
        ("TYPE I".to_owned(), "200"),
        (format!("PORT {octets},{high},{low}"), "200"),
        ("RETR served-by".to_owned(), "150"),
    ] {
        out.write_all(format!("{command}\r\n").as_bytes()).unwrap();
        let answer = reply();
        assert!(answer.starts_with(expect), "{command}: {answer}");
    }
    let (mut data, from) = listener.accept().unwrap();
    data.set_read_timeout(Some(timeout)).unwrap();
    let mut body = String::new();
    data.read_to_string(&mut body).unwrap();
    let done = reply();
    assert!(done.starts_with("226"), "{done}");
    out.write_all(b"QUIT\r\n").unwrap();
    (greeted_by, from, body.trim_end().to_owned())
}

#[test]
fn an_imported_nat_ftp_service_serves_passive_and_active_transfers_through_the_vip() {
    let mut lab = Lab::new().expect("lab");
    let specs = [
        BoxSpec::new("box-a", &[Segment::Public, Segment::Private]).with_config(&director()),
        nat_real_server("rs1", "198.51.100.11", "198.51.100.254"),
        nat_real_server("rs2", "198.51.100.12", "198.51.100.254"),
    ];
    lab.boot(&specs, BOOT).expect("boxes boot");
    // The client has no route to 198.51.100.0/24: a PASV reply with a real server's address
    // would lead it nowhere.
    lab.add_client("cl", Segment::Public)
        .unwrap()
        .add_address(&format!("{CLIENT}/24"))
        .unwrap();
    for name in ["rs1", "rs2"] {
        lab.box_named(name)
            .unwrap()
            .console
            .wait_for_any_time("lab-httpd: serving on port 21", BOOT)
            .unwrap();
    }
    let director = lab.box_named("box-a").unwrap();
    // The LVS engine loaded the FTP helper (with nf_nat) for the NAT service on port 21.
    let loaded = director
        .console
        .wait_for_any_time("lvs: loaded ", BOOT)
        .unwrap();
    assert!(loaded.contains(" ip_vs_ftp"), "{loaded}");
    // Both servers in the kernel table, each after a passed check.
    let deadline = std::time::Instant::now() + CHECK_BOUND;
    let status = loop {
        let status = director.engine_status("lvs", BOOT).unwrap();
        let both_in = ["-> 198.51.100.11:21 Masq 1 ", "-> 198.51.100.12:21 Masq 1 "]
            .iter()
            .all(|server| status.iter().any(|l| l.contains(server)));
        if both_in || std::time::Instant::now() > deadline {
            break status;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    let has = |needle: &str| status.iter().any(|l| l.contains(needle));
    assert!(has("lvs: TCP  192.0.2.13:21 rr |"), "{status:?}");
    assert!(has("-> 198.51.100.11:21 Masq 1 "), "{status:?}");
    assert!(has("-> 198.51.100.12:21 Masq 1 "), "{status:?}");

    let netns = lab.clients[0].netns.clone();
    let mut served = Vec::new();

    // Passive mode, PASV: the reply names the VIP (rewritten by ip_vs_ftp; the server wrote
    // its own 198.51.100.x), curl connects to the address of the reply, and the data
    // connection reaches the server of the control connection. Four control connections, rr:
    // two each.
    for _ in 0..4 {
        let transfer = curl(&netns, &["--disable-epsv", "--no-ftp-skip-pasv-ip"]);
        let pasv = said(&transfer, "< 227 ").unwrap_or_else(|| panic!("{transfer:#?}"));
        assert!(
            pasv.starts_with("< 227 Entering Passive Mode (192,0,2,13,"),
            "{transfer:#?}"
        );
        assert_eq!(transfer.body, format!("served-by {}", transfer.greeted_by));
        served.push(transfer.greeted_by);
    }
    if served.iter().filter(|s| *s == "rs1").count() != 2 {
        let director = lab.box_named("box-a").unwrap();
        let transcript = director.console.transcript();
        let lvs: Vec<&str> = transcript.lines().filter(|l| l.contains("lvs")).collect();
        eprintln!("director's lvs lines: {lvs:#?}");
        eprintln!(
            "lvs status now: {:#?}",
            director.engine_status("lvs", BOOT).unwrap()
        );
    }
    served.sort();
    assert_eq!(
        served,
        ["rs1", "rs1", "rs2", "rs2"],
        "rr over the control connections"
    );

    // Passive mode, EPSV: a port only; the helper opens the data connection all the same
    // (curl does not fall back to PASV).
    let transfer = curl(&netns, &[]);
    assert!(said(&transfer, "< 229 ").is_some(), "{transfer:#?}");
    assert!(said(&transfer, "> PASV").is_none(), "{transfer:#?}");
    assert_eq!(transfer.body, format!("served-by {}", transfer.greeted_by));

    // Active mode, PORT, with curl.
    let transfer = curl(&netns, &["--ftp-port", CLIENT, "--disable-eprt"]);
    assert!(
        said(&transfer, "> PORT 192,0,2,100,").is_some(),
        "{transfer:#?}"
    );
    assert_eq!(transfer.body, format!("served-by {}", transfer.greeted_by));

    // Active mode by hand: the real server connects from its port 20; the director's helper
    // entry makes that the VIP's port 20.
    let (greeted_by, from, body) = in_client(&netns, active_by_hand);
    assert_eq!(from, format!("{VIP}:20").parse().unwrap());
    assert_eq!(body, format!("served-by {greeted_by}"));
}
