//! Key handling as a state machine: keys in, requests out, answers back; no rendering.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloc::string::String;
use alloc::vec::Vec;

use super::*;

fn lines(app: &mut App) -> Vec<String> {
    app.take_requests().into_iter().map(|r| r.line).collect()
}

/// Answers every queued request with `answer(line)`; returns the lines answered.
fn answer_all(app: &mut App, answer: impl Fn(&str) -> String) -> Vec<String> {
    let requests = app.take_requests();
    let sent: Vec<String> = requests.iter().map(|r| r.line.clone()).collect();
    for request in requests {
        app.answer(request.id, &answer(&request.line));
    }
    sent
}

fn keys(app: &mut App, text: &str) {
    for c in text.chars() {
        let key = match c {
            '\r' => Key::Enter,
            '\t' => Key::Tab,
            c => Key::Char(c),
        };
        app.handle_key(key);
    }
}

const VRRP_LIST: &str = "browse: web_vip\titem\tinterface=\"eth0\" vrid=51\nbrowse: end\n";
const WEB_VIP: &str = "browse: name\tvalue\t\"web_vip\"\nbrowse: priority\tvalue\t100\nbrowse: vips\tlist\t1 items\nbrowse: unicast_src\tunset\t\nbrowse: end\n";

fn daemon(line: &str) -> String {
    match line {
        "status" => String::from("status: name=box-a board=qemu-lab ready=1.0\nstatus: pair heartbeat peer partner-alive rtt=0.3ms uplink=1 ALARM: service LAN split\nstatus: config generation=7 candidate=changed confirm-pending=8 in 90s\nstatus: config format: writing 6\nstatus: end\n"),
        "pair status" => String::from("pair: paired: this box is a, pair id 1, keyed\npair: end\n"),
        "compare" => String::from("- priority = 100\n+ priority = 150\n"),
        "browse vrrp" => String::from(VRRP_LIST),
        "browse vrrp.web_vip" => String::from(WEB_VIP),
        _ => String::new(),
    }
}

#[test]
fn starts_on_the_menu_and_asks_for_the_status_bar() {
    let mut app = App::new(0);
    assert_eq!(app.screen, Screen::Menu);
    let sent = answer_all(&mut app, daemon);
    assert_eq!(sent, ["status", "pair status"]);
    assert_eq!(app.bar.box_name, "box-a");
    assert_eq!(app.bar.role, "a");
    assert_eq!(app.bar.generation, "7");
    assert_eq!(app.bar.alarms, 1);
    assert_eq!(app.confirm_countdown(), Some(("8".into(), 90)));
    // The candidate is changed: the count of changes is asked for and read.
    answer_all(&mut app, daemon);
    // One field changed: its - and + lines count once.
    assert_eq!(app.bar.uncommitted, 1);
    assert_eq!(count_changes("[[vrrp]] name = \"a\"\n- priority = 1\n+ priority = 2\n[[vrrp]] name = \"b\"\n- priority = 1\n+ priority = 2\n+ preempt = false\n"), 3);
    app.tick(30_000);
    assert_eq!(app.confirm_countdown(), Some(("8".into(), 60)));
}

#[test]
fn every_menu_item_opens_on_its_hotkey_and_m_comes_back() {
    for item in MENU {
        let mut app = App::new(0);
        app.take_requests();
        app.handle_key(Key::Char(item.hotkey));
        match item.screen {
            Some(screen) => {
                assert_eq!(app.screen, screen, "hotkey {}", item.hotkey);
                app.handle_key(Key::Char('m'));
                assert_eq!(app.screen, Screen::Menu);
            }
            None => assert!(app.wants_quit()),
        }
    }
}

#[test]
fn tab_and_enter_alone_reach_every_screen() {
    let mut app = App::new(0);
    for (at, item) in MENU.iter().enumerate() {
        app.handle_key(Key::Char('m'));
        // The menu keeps the last screen's line selected; Tab walks on from there (wrapping).
        while app.menu_selected != at {
            app.handle_key(Key::Tab);
        }
        app.handle_key(Key::Enter);
        match item.screen {
            Some(screen) => assert_eq!(app.screen, screen),
            None => assert!(app.wants_quit()),
        }
    }
}

#[test]
fn a_field_is_edited_in_a_prompt_and_a_refusal_keeps_the_prompt_with_the_reason() {
    let mut app = App::new(0);
    answer_all(&mut app, daemon);
    app.handle_key(Key::Char('4'));
    assert!(answer_all(&mut app, daemon).contains(&String::from("browse vrrp")));
    assert_eq!(app.trees[&Screen::Vrrp].entries.len(), 1);
    app.handle_key(Key::Enter);
    assert_eq!(answer_all(&mut app, daemon), ["browse vrrp.web_vip"]);
    app.handle_key(Key::Tab); // priority
    app.handle_key(Key::Enter);
    let Some(Modal::Prompt { prompt, .. }) = &app.modal else {
        panic!("no prompt: {:?}", app.modal);
    };
    assert_eq!(prompt.text, "100");
    app.handle_key(Key::Ctrl('u'));
    keys(&mut app, "300\r");
    assert_eq!(lines_peek(&app), ["set vrrp.web_vip.priority 300"]);
    let refusal = "set: vrrp.web_vip.priority: expected a number from 1 to 254, got 300\n";
    let request = app.take_requests().remove(0);
    app.answer(request.id, refusal);
    let Some(Modal::Prompt { prompt, error, .. }) = &app.modal else {
        panic!("the prompt did not come back");
    };
    assert_eq!(prompt.text, "300");
    assert_eq!(error.as_deref(), Some(refusal.trim()));
    // Fixed in the field, accepted: the listing and the change count are asked for again.
    app.handle_key(Key::Backspace);
    app.handle_key(Key::Backspace);
    app.handle_key(Key::Backspace);
    keys(&mut app, "150\r");
    let request = app.take_requests().remove(0);
    assert_eq!(request.line, "set vrrp.web_vip.priority 150");
    app.answer(
        request.id,
        "set: vrrp.web_vip.priority (candidate; `compare`, `preview`, `commit`)\n",
    );
    assert!(app.modal.is_none());
    let after = lines(&mut app);
    assert!(after.contains(&String::from("compare")), "{after:?}");
    assert!(
        after.contains(&String::from("browse vrrp.web_vip")),
        "{after:?}"
    );
}

fn lines_peek(app: &App) -> Vec<String> {
    app.outbox.iter().map(|r| r.line.clone()).collect()
}

#[test]
fn an_unset_field_starts_empty_and_an_empty_value_is_refused_in_the_field() {
    let mut app = App::new(0);
    answer_all(&mut app, daemon);
    app.handle_key(Key::Char('4'));
    answer_all(&mut app, daemon);
    app.handle_key(Key::Enter);
    answer_all(&mut app, daemon);
    for _ in 0..3 {
        app.handle_key(Key::Tab);
    }
    app.handle_key(Key::Enter);
    let Some(Modal::Prompt { prompt, .. }) = &app.modal else {
        panic!("no prompt");
    };
    assert_eq!(prompt.label, "vrrp.web_vip.unicast_src =");
    assert_eq!(prompt.text, "");
    app.handle_key(Key::Enter);
    assert!(app.take_requests().is_empty());
    let Some(Modal::Prompt { error, .. }) = &app.modal else {
        panic!("the prompt closed");
    };
    assert!(error.as_deref().unwrap_or("").contains("none"));
}

#[test]
fn adding_to_a_list_tries_a_named_item_then_the_value_form() {
    let mut app = App::new(0);
    answer_all(&mut app, daemon);
    app.handle_key(Key::Char('4'));
    answer_all(&mut app, daemon);
    app.handle_key(Key::Char('a'));
    keys(&mut app, "db_vip\r");
    let request = app.take_requests().remove(0);
    assert_eq!(request.line, "set vrrp.db_vip.name db_vip");
    // A list of addresses refuses a name: the value form is tried.
    app.handle_key(Key::Enter); // open web_vip
    answer_all(&mut app, daemon);
    app.handle_key(Key::Tab);
    app.handle_key(Key::Tab); // vips (a list)
    app.handle_key(Key::Enter);
    let vips = app.take_requests().remove(0);
    assert_eq!(vips.line, "browse vrrp.web_vip.vips");
    app.answer(vips.id, "browse: end\n");
    app.handle_key(Key::Char('a'));
    keys(&mut app, "10.0.0.12\r");
    let named = app.take_requests().remove(0);
    assert_eq!(
        named.line,
        "set vrrp.web_vip.vips.\"10.0.0.12\".name 10.0.0.12"
    );
    app.answer(
        named.id,
        "set: vrrp.web_vip.vips.10.0.0.12: unknown field `name`\n",
    );
    let value = app.take_requests().remove(0);
    assert_eq!(value.line, "set vrrp.web_vip.vips 10.0.0.12");
}

#[test]
fn disruptive_actions_need_a_typed_yes() {
    let mut app = App::new(0);
    app.take_requests();
    app.handle_key(Key::Char('p'));
    app.take_requests();
    app.handle_key(Key::Char('r'));
    keys(&mut app, "y\r");
    assert!(app.take_requests().is_empty(), "y alone rebooted");
    app.handle_key(Key::Char('r'));
    keys(&mut app, "yes\r");
    assert_eq!(lines(&mut app), ["reboot"]);
    app.handle_key(Key::Char('o'));
    app.handle_key(Key::Ctrl('c'));
    assert!(app.modal.is_none());
    assert!(app.take_requests().is_empty());
    // Factory reset: the daemon's warning is asked for at once (it arms the reset), the
    // confirming line only after a typed yes; anything else sends nothing more.
    app.handle_key(Key::Char('f'));
    assert_eq!(lines(&mut app), ["factory-reset"]);
    keys(&mut app, "no\r");
    assert!(app.take_requests().is_empty(), "no went ahead");
    app.handle_key(Key::Char('f'));
    let warning = app.take_requests().remove(0);
    assert_eq!(warning.line, "factory-reset");
    app.answer(warning.id, "factory-reset ERASES this box's config ...\n");
    keys(&mut app, "yes\r");
    // (The answer also refreshes the title bar: `compare`, `status`.)
    let sent = lines(&mut app);
    assert_eq!(
        sent.last().map(String::as_str),
        Some("factory-reset confirm")
    );
    assert_eq!(sent.iter().filter(|l| l.starts_with("factory")).count(), 1);
}

#[test]
fn the_commit_screen_sends_commit_confirm_rollback_and_history() {
    let mut app = App::new(0);
    app.handle_key(Key::Char('8'));
    app.take_requests();
    app.handle_key(Key::Char('t'));
    app.handle_key(Key::Enter);
    assert_eq!(lines(&mut app), ["commit --confirm 600"]);
    app.handle_key(Key::Char('k'));
    assert_eq!(lines(&mut app), ["confirm"]);
    app.handle_key(Key::Char('c'));
    keys(&mut app, "new vip\r");
    assert_eq!(lines(&mut app), ["commit --comment \"new vip\""]);
    app.handle_key(Key::Char('r'));
    keys(&mut app, "5\r");
    assert_eq!(lines(&mut app), ["rollback 5"]);
    app.handle_key(Key::Char('h'));
    let history = app.take_requests().remove(0);
    app.answer(history.id, "history: 7 running\nhistory: 6\n");
    assert_eq!(app.text(Screen::Commit).unwrap().lines.len(), 2);
}

#[test]
fn pair_join_sends_the_code() {
    let mut app = App::new(0);
    app.handle_key(Key::Char('7'));
    app.take_requests();
    app.handle_key(Key::Char('j'));
    keys(&mut app, "1234 5678\r");
    assert_eq!(lines(&mut app), ["pair join \"1234 5678\""]);
}

#[test]
fn the_firmware_screen_fetches_installs_and_lists_slots() {
    let mut app = App::new(0);
    app.handle_key(Key::Char('f'));
    assert_eq!(app.screen, Screen::Firmware);
    app.take_requests();
    app.handle_key(Key::Char('f'));
    keys(&mut app, "10.0.9.1:8000/new.bundle\r");
    assert_eq!(
        lines(&mut app),
        ["firmware fetch http://10.0.9.1:8000/new.bundle"]
    );
    app.handle_key(Key::Char('i'));
    keys(&mut app, "\r");
    assert_eq!(
        lines(&mut app),
        ["firmware install /run/tandem/fetched.bundle"]
    );
    app.handle_key(Key::Char('s'));
    let status = app.take_requests().remove(0);
    assert_eq!(status.line, "firmware status");
    app.answer(
        status.id,
        "firmware: running 0.1.0 slot a (uefi)\nfirmware: end\n",
    );
    assert_eq!(app.text(Screen::Firmware).unwrap().lines.len(), 2);
}

/// `g` asks for the bundle, then a typed yes before `pair upgrade` runs (both boxes reboot);
/// anything but yes sends nothing. `w` asks for its status.
#[test]
fn the_firmware_screen_runs_the_pair_upgrade_only_after_a_typed_yes() {
    let mut app = App::new(0);
    app.handle_key(Key::Char('f'));
    assert_eq!(app.screen, Screen::Firmware);
    app.take_requests();
    app.handle_key(Key::Char('g'));
    keys(&mut app, "\r");
    assert!(lines(&mut app).is_empty(), "nothing before the yes");
    keys(&mut app, "no\r");
    assert!(lines(&mut app).is_empty(), "no is not yes");
    assert_eq!(app.message, "cancelled: only yes goes ahead");
    app.handle_key(Key::Char('g'));
    keys(&mut app, "\r");
    keys(&mut app, "yes\r");
    assert_eq!(lines(&mut app), ["pair upgrade /run/tandem/fetched.bundle"]);
    app.handle_key(Key::Char('w'));
    assert_eq!(lines(&mut app), ["pair upgrade status"]);
}

#[test]
fn control_keys_never_exit_and_ctrl_l_asks_for_a_repaint() {
    let mut app = App::new(0);
    for c in ['c', 'd', 'z', '\\', 'a', ']'] {
        app.handle_key(Key::Ctrl(c));
    }
    assert!(!app.wants_quit());
    assert_eq!(app.screen, Screen::Menu);
    app.handle_key(Key::Ctrl('l'));
    assert!(app.take_repaint());
    assert!(!app.take_repaint());
}

#[test]
fn refreshes_wait_for_answers_and_follow_the_clock() {
    let mut app = App::new(0);
    app.take_requests();
    for second in 1..20u64 {
        app.tick(second * 1000);
    }
    // Nothing answered: at most MAX_REFRESHES_IN_FLIGHT refreshes were sent.
    let sent = app.take_requests().len() + 2;
    assert!(sent <= MAX_REFRESHES_IN_FLIGHT + 2, "{sent}");
    assert!(app.poll_timeout() > 19_000);
}

#[test]
fn a_stream_of_arbitrary_keys_never_panics() {
    let mut app = App::new(0);
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let all = [
        Key::Enter,
        Key::Tab,
        Key::BackTab,
        Key::Backspace,
        Key::Delete,
        Key::Esc,
        Key::Up,
        Key::Down,
        Key::Left,
        Key::Right,
        Key::Home,
        Key::End,
        Key::PageUp,
        Key::PageDown,
    ];
    for step in 0..200_000u64 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let pick = usize::try_from(state % 64).unwrap();
        let key = match all.get(pick) {
            Some(key) => *key,
            None => Key::Char(char::from(b' ' + u8::try_from(state % 95).unwrap())),
        };
        app.handle_key(key);
        if step % 7 == 0 {
            answer_all(&mut app, daemon);
        }
        app.tick(step * 10);
    }
}

#[test]
fn diagnostics_ping_and_neighbours() {
    let mut app = App::new(0);
    app.handle_key(Key::Char('0'));
    app.take_requests();
    app.handle_key(Key::Char('g'));
    keys(&mut app, "192.0.2.21\r");
    assert_eq!(lines(&mut app), ["ping 192.0.2.21 3"]);
    app.handle_key(Key::Char('h'));
    let request = app.take_requests().remove(0);
    assert_eq!(request.line, "neighbours");
    app.answer(
        request.id,
        "neighbours: 192.0.2.21 52:54:00:00:00:01 on public complete\n",
    );
    assert!(app.text(Screen::Diagnostics).unwrap().lines[0].contains("52:54:00"));
}

/// The daemon's `ports` with the carrier of each of three lab ports (public, private, peer).
fn ports(carriers: [&str; 3]) -> String {
    let mut text = String::from("ports: board qemu-lab roles public private peer mgmt\n");
    for (at, (role, carrier)) in ["public", "private", "peer"]
        .iter()
        .zip(carriers)
        .enumerate()
    {
        text.push_str(&format!(
            "ports: 0000:00:0{}.0 name={role} role={role} from=board carrier={carrier} mac=52:54:00:1a:01:0{} driver=virtio_net\n",
            at + 3,
            at + 1
        ));
    }
    text.push_str("ports: saved none (the board profile's ports)\nports: end\n");
    text
}

/// Answers the queued requests, `ports` with `carriers`; returns the other lines sent.
fn poll(app: &mut App, carriers: [&str; 3]) -> Vec<String> {
    let mut others = Vec::new();
    for request in app.take_requests() {
        let text = if request.line == "ports" {
            ports(carriers)
        } else {
            others.push(request.line.clone());
            daemon(&request.line)
        };
        app.answer(request.id, &text);
    }
    others
}

/// The Ports screen with the flow started and its first answer in (every port up).
fn assign_started() -> App {
    let mut app = App::new(0);
    answer_all(&mut app, daemon);
    app.handle_key(Key::Char('2'));
    poll(&mut app, ["up", "up", "up"]);
    app.handle_key(Key::Char('w'));
    assert!(app.assign.is_some());
    poll(&mut app, ["up", "up", "up"]);
    assert_eq!(app.assign.as_ref().unwrap().phase, assign::Phase::Watching);
    app
}

/// Half a second later, the next poll with `carriers`.
fn next_poll(app: &mut App, carriers: [&str; 3]) -> Vec<String> {
    app.tick(app.now_ms + assign::POLL_MS);
    poll(app, carriers)
}

fn proposed(app: &App) -> Option<String> {
    match &app.assign.as_ref()?.phase {
        assign::Phase::Proposed(id) => Some(id.clone()),
        _ => None,
    }
}

#[test]
fn the_assign_flow_proposes_the_port_whose_carrier_comes_up_and_saves_one_line() {
    let mut app = assign_started();
    assert_eq!(
        app.poll_timeout(),
        app.now_ms + assign::POLL_MS,
        "polls every 500 ms"
    );
    // A port that was up all along is never proposed.
    next_poll(&mut app, ["up", "up", "up"]);
    assert_eq!(proposed(&app), None);
    // The private cable is pulled, then plugged back: proposed for public.
    next_poll(&mut app, ["up", "down", "up"]);
    assert_eq!(proposed(&app), None);
    next_poll(&mut app, ["up", "up", "up"]);
    assert_eq!(proposed(&app).as_deref(), Some("0000:00:04.0"));
    // No polls while the operator decides.
    app.tick(app.now_ms + 5 * assign::POLL_MS);
    assert!(!lines(&mut app).contains(&String::from("ports")));
    app.handle_key(Key::Enter);
    // Private: the chosen port is not offered again, the public one is.
    let flow = app.assign.as_ref().unwrap();
    assert_eq!(flow.role(), Some("private"));
    next_poll(&mut app, ["down", "down", "up"]);
    next_poll(&mut app, ["up", "up", "up"]);
    assert_eq!(proposed(&app).as_deref(), Some("0000:00:03.0"));
    // n: not that one; it must go down and up again.
    app.handle_key(Key::Char('n'));
    next_poll(&mut app, ["up", "up", "up"]);
    assert_eq!(proposed(&app), None);
    next_poll(&mut app, ["down", "up", "up"]);
    next_poll(&mut app, ["up", "up", "up"]);
    app.handle_key(Key::Enter);
    // Peer and mgmt skipped.
    app.handle_key(Key::Char('s'));
    app.handle_key(Key::Char('s'));
    let flow = app.assign.as_ref().unwrap();
    assert_eq!(flow.phase, assign::Phase::Summary);
    assert_eq!(
        flow.new_map(&app.ports),
        [
            ("public".into(), "0000:00:04.0".into(), "chosen"),
            ("private".into(), "0000:00:03.0".into(), "chosen"),
            ("peer".into(), "0000:00:05.0".into(), ""),
        ]
    );
    // Nothing has been sent but polls; Enter saves with one line.
    app.take_requests();
    app.handle_key(Key::Enter);
    assert!(app.assign.is_none());
    assert_eq!(
        lines_peek(&app),
        ["ports assign public 0000:00:04.0 private 0000:00:03.0"]
    );
    let requests = app.take_requests();
    app.answer(
        requests[0].id,
        "ports: saved; takes effect at the next boot (reboot from Power, or `reboot`)\nports: next boot: public=0000:00:04.0 private=0000:00:03.0 peer=0000:00:05.0\n",
    );
    assert!(
        app.message.contains("takes effect at the next boot"),
        "{}",
        app.message
    );
    assert_eq!(lines(&mut app), ["ports"], "the screen's list follows");
}

#[test]
fn cancelling_the_assign_flow_at_any_step_sends_nothing() {
    for cancel in [Key::Esc, Key::Ctrl('c')] {
        // 0: at the proposal; 1..=3: watching a later role; 4: at the summary.
        for presses_before in 0..5 {
            let mut app = assign_started();
            next_poll(&mut app, ["up", "down", "up"]);
            next_poll(&mut app, ["up", "up", "up"]);
            if presses_before > 0 {
                app.handle_key(Key::Enter);
            }
            for _ in 1..presses_before {
                app.handle_key(Key::Char('s'));
            }
            app.take_requests();
            app.handle_key(cancel);
            assert!(app.assign.is_none(), "{cancel:?} after {presses_before}");
            assert!(app.message.starts_with("cancelled"), "{}", app.message);
            let sent = lines(&mut app);
            assert!(
                sent.iter().all(|line| !line.starts_with("ports assign")),
                "{sent:?}"
            );
            // The Ports screen is back, and its keys are the screen's again.
            assert_eq!(app.screen, Screen::Ports);
        }
    }
    // Skipping every role saves nothing either.
    let mut app = assign_started();
    for _ in 0..4 {
        app.handle_key(Key::Char('s'));
    }
    app.handle_key(Key::Enter);
    assert!(app.assign.is_none());
    assert!(app.message.starts_with("nothing chosen"), "{}", app.message);
    assert!(lines(&mut app)
        .iter()
        .all(|l| !l.starts_with("ports assign")));
}

#[test]
fn a_poll_sent_in_an_earlier_step_does_not_propose_in_the_next() {
    let mut app = assign_started();
    next_poll(&mut app, ["up", "down", "up"]);
    // A poll goes out, then the operator skips before its answer: it shows, it proposes nothing.
    app.tick(app.now_ms + assign::POLL_MS);
    let requests = app.take_requests();
    app.handle_key(Key::Char('s'));
    for request in requests {
        app.answer(request.id, &ports(["up", "up", "up"]));
    }
    assert_eq!(proposed(&app), None);
    assert_eq!(app.assign.as_ref().unwrap().role(), Some("private"));
    assert_eq!(app.ports.ports[1].carrier, Some(true));
    // Without roles (no board profile) the flow ends at once, saying why.
    let mut app = App::new(0);
    answer_all(&mut app, daemon);
    app.handle_key(Key::Char('2'));
    answer_all(&mut app, daemon);
    app.handle_key(Key::Char('w'));
    for request in app.take_requests() {
        app.answer(request.id, "ports: saved none\nports: end\n");
    }
    assert!(app.assign.is_none());
    assert!(app.message.contains("no roles"), "{}", app.message);
}

/// The 4-port box offers public2 last: the usual roles skipped, the mgmt port plugged in for
/// public2; the new map gives public2 that port and mgmt none (`ports assign`'s swap with a
/// role that had no port), saved with one line.
#[test]
fn the_optional_public2_step_comes_last_and_takes_the_mgmt_port() {
    let answer = |mgmt: &str| {
        let mut text =
            String::from("ports: board x86-1u-4port-igb roles public private peer mgmt public2\n");
        for (at, role) in ["mgmt", "public", "private", "peer"].iter().enumerate() {
            let carrier = if at == 0 { mgmt } else { "up" };
            text.push_str(&format!(
                "ports: 0000:0{}:00.0 name={role} role={role} from=board carrier={carrier} mac=00:1b:21:00:00:0{} driver=igb\n",
                at + 1,
                at + 1
            ));
        }
        text.push_str("ports: end\n");
        PortsView::parse(&text)
    };
    let mut flow = AssignFlow::new();
    assert_eq!(flow.ports_answer(&answer("up"), 0), FlowOutcome::Continue);
    assert_eq!(flow.roles, ["public", "private", "peer", "mgmt", "public2"]);
    for role in ["public", "private", "peer", "mgmt"] {
        assert_eq!(flow.role(), Some(role));
        assert_eq!(flow.key(&Key::Char('s')), FlowOutcome::Continue);
    }
    assert_eq!(flow.role(), Some("public2"));
    flow.ports_answer(&answer("down"), flow.serial);
    flow.ports_answer(&answer("up"), flow.serial);
    assert_eq!(flow.phase, assign::Phase::Proposed("0000:01:00.0".into()));
    flow.key(&Key::Enter);
    assert_eq!(flow.phase, assign::Phase::Summary);
    assert_eq!(
        flow.new_map(&answer("up")),
        [
            ("public".into(), "0000:02:00.0".into(), ""),
            ("private".into(), "0000:03:00.0".into(), ""),
            ("peer".into(), "0000:04:00.0".into(), ""),
            ("public2".into(), "0000:01:00.0".into(), "chosen"),
        ]
    );
    assert_eq!(
        flow.key(&Key::Enter),
        FlowOutcome::Save("ports assign public2 0000:01:00.0".into())
    );
}

#[test]
fn the_bonds_and_load_sharing_screens_show_their_engines_live() {
    for (hotkey, command) in [('3', "bond status"), ('6', "cluster status")] {
        let mut app = App::new(0);
        app.take_requests();
        app.handle_key(Key::Char(hotkey));
        answer_all(&mut app, daemon);
        app.handle_key(Key::Char('l'));
        assert!(app.live, "{command}");
        app.tick(5_000);
        let sent = lines(&mut app);
        assert!(
            sent.iter().any(|line| line == command),
            "{command} not asked for: {sent:?}"
        );
    }
}
