//! The console UI's state: which screen is up, what each shows, and what a key does.
//!
//! The app never waits for the daemon. A key may queue [`Request`]s (command lines in the
//! console's command language: `set PATH VALUE`, `commit`, `vrrp status`); whoever drives the
//! app sends them (an in-process channel on the box, the control socket from `tandem tui`) and
//! hands each answer back with [`App::answer`]. Time is injected ([`App::tick`]): the dashboard
//! and status bar refresh every [`REFRESH_MS`], the commit-confirm countdown runs from it.
//!
//! Keys: everything is reachable with Tab, Enter, letters and digits (arrows, Page keys and Esc
//! are extras). `m` is the menu from anywhere outside a prompt, `b` goes back; Ctrl-C cancels a
//! prompt or question and never exits; Ctrl-L asks for a repaint. Ctrl-A, Ctrl-] and `~.` are
//! never bound (console servers, telnet and IPMI SOL use them).

pub mod assign;
pub mod prompt;
pub mod tree;

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::keys::Key;
use assign::{AssignFlow, FlowOutcome, PortsView};
use prompt::{Prompt, PromptOutcome};
use tree::{EntryKind, Tree};

/// How often the status bar and the screen shown are refreshed.
pub const REFRESH_MS: u64 = 2000;

/// Lines kept of a text screen (a log, a status answer).
const MAX_TEXT_LINES: usize = 2000;

/// A command line for the daemon; its answer comes back through [`App::answer`] with `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub id: u64,
    pub line: String,
}

/// The screens, in menu order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Screen {
    Menu,
    Dashboard,
    Ports,
    Bonds,
    Vrrp,
    Services,
    LoadSharing,
    Pair,
    Commit,
    Logs,
    Diagnostics,
    System,
    Firmware,
    Power,
}

/// A line of the main menu.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MenuItem {
    pub hotkey: char,
    pub title: &'static str,
    /// None: log out (leave the UI).
    pub screen: Option<Screen>,
}

const fn item(hotkey: char, title: &'static str, screen: Option<Screen>) -> MenuItem {
    MenuItem {
        hotkey,
        title,
        screen,
    }
}

/// The main menu: every screen on a digit or letter.
pub const MENU: [MenuItem; 14] = [
    item('1', "Dashboard", Some(Screen::Dashboard)),
    item('2', "Ports and addresses", Some(Screen::Ports)),
    item('3', "Bonds", Some(Screen::Bonds)),
    item('4', "VRRP: floating addresses", Some(Screen::Vrrp)),
    item(
        '5',
        "Virtual servers, real servers, checks",
        Some(Screen::Services),
    ),
    item('6', "Load sharing", Some(Screen::LoadSharing)),
    item('7', "Pair", Some(Screen::Pair)),
    item('8', "Commit, compare, rollback", Some(Screen::Commit)),
    item('9', "Logs", Some(Screen::Logs)),
    item('0', "Diagnostics", Some(Screen::Diagnostics)),
    item(
        's',
        "System: every field of the config",
        Some(Screen::System),
    ),
    item('f', "Firmware", Some(Screen::Firmware)),
    item('p', "Power", Some(Screen::Power)),
    item('q', "Logout", None),
];

impl Screen {
    /// The title shown over the screen.
    pub fn title(self) -> &'static str {
        if self == Screen::Menu {
            return "Main menu";
        }
        MENU.iter()
            .find(|item| item.screen == Some(self))
            .map_or("", |item| item.title)
    }

    /// The config path a config screen browses; None for the other screens.
    pub fn tree_root(self) -> Option<&'static str> {
        Some(match self {
            Screen::Ports => "interfaces",
            Screen::Bonds => "bonds",
            Screen::Vrrp => "vrrp",
            Screen::Services => "virtual_services",
            Screen::LoadSharing => "clusterip",
            Screen::System => "",
            _ => return None,
        })
    }

    /// The command whose answer the screen shows (config screens: on `l`, live state).
    pub fn live_command(self) -> Option<&'static str> {
        Some(match self {
            Screen::Dashboard | Screen::Ports | Screen::Firmware | Screen::System => "status",
            Screen::Vrrp => "vrrp status",
            Screen::Services => "lvs status",
            Screen::Pair => "pair status",
            Screen::Commit => "compare",
            Screen::Logs => "log",
            Screen::Diagnostics => "lvs status",
            Screen::Bonds => "bond status",
            Screen::LoadSharing => "cluster status",
            Screen::Menu | Screen::Power => return None,
        })
    }

    /// What the screen says about features that have not landed.
    pub fn not_there_yet(self) -> Option<&'static str> {
        Some(match self {
            Screen::Firmware => "Upgrade with a signed bundle: f fetches one over HTTP into RAM and checks it, i installs a checked bundle into the other slot, then reboot (Power screen) to start it; s lists both slots and the boot counting. In a pair, g runs the rolling pair upgrade from the master (the backup first, then a planned hand-over, then this box; w follows it).",

            _ => return None,
        })
    }

    /// The action keys of the screen, for the help line.
    pub fn help(self) -> &'static str {
        match self {
            Screen::Menu => "digit/letter or Tab+Enter: open",
            Screen::Pair => "s start  j join CODE  a adopt-peer  u push  c compare peer  x unpair",
            Screen::Firmware => {
                "f fetch URL  i install FILE  s slots  g pair upgrade  w its status"
            }
            Screen::Commit => {
                "c commit t confirmed k confirm r rollback h history v preview x discard"
            }
            Screen::Logs => "f filter  Tab line  n/p page",
            Screen::Diagnostics => "i IPVS table  v VRRP  e probe peer  g ping  h neighbours",
            Screen::Ports => "w assign by carrier  Enter edit  a add  d delete  l live  b back",
            Screen::Power => "r reboot  o power off  f factory reset",
            _ if self.tree_root().is_some() => {
                "Enter open/edit  a add  d delete  l live  b back  r reload"
            }
            _ => "Tab line  n/p page",
        }
    }
}

/// A screen's text: an answer of the daemon, scrollable.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TextView {
    pub lines: Vec<String>,
    pub scroll: usize,
    /// Follows new lines at the bottom (logs) until scrolled up.
    pub follow: bool,
}

impl TextView {
    fn replace(&mut self, text: &str) {
        self.lines = text
            .lines()
            .take(MAX_TEXT_LINES)
            .map(str::to_string)
            .collect();
        if self.follow {
            self.scroll = self.lines.len();
        }
        self.scroll = self.scroll.min(self.lines.len().saturating_sub(1));
    }

    fn scroll_by(&mut self, delta: isize) {
        let last = self.lines.len().saturating_sub(1);
        self.scroll = if delta < 0 {
            self.scroll.saturating_sub(delta.unsigned_abs())
        } else {
            self.scroll.saturating_add(delta.unsigned_abs()).min(last)
        };
        self.follow = self.scroll >= last;
    }
}

/// What a prompt's text is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PromptFor {
    /// `set PATH <text>`.
    SetValue(String),
    /// A new item in the list at the path.
    AddItem {
        list: String,
        named: Option<bool>,
    },
    /// A question: `yes` runs the line, anything else cancels.
    Confirm(String),
    PairJoin,
    CommitComment,
    CommitConfirmSeconds,
    Rollback,
    LogFilter,
    Ping,
    FirmwareFetch,
    FirmwareInstall,
    /// The bundle (a path or an http:// URL) for `pair upgrade`, then a typed yes.
    PairUpgrade,
}

/// A modal on top of the screen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Modal {
    /// A line of input; `error` is the daemon's refusal of the last try.
    Prompt {
        prompt: Prompt,
        error: Option<String>,
        purpose: PromptPurpose,
    },
}

/// Why a prompt is open (opaque outside the app).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptPurpose(PromptFor);

/// What an answer is for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Purpose {
    Status,
    PairStatus,
    Count,
    Browse {
        screen: Screen,
        path: String,
    },
    Text(Screen),
    /// An edit typed into a prompt: on refusal the prompt comes back with the error.
    Edit {
        prompt: Prompt,
        purpose: PromptFor,
    },
    /// Add by name failed: try the value form (`set LIST VALUE`).
    AddNamed {
        list: String,
        text: String,
        prompt: Prompt,
    },
    /// A command whose answer is the message and the screen's text.
    Action(Screen),
    /// `ports`, polled in the assign flow's step with this serial (0: no flow).
    Ports(u64),
    /// `ports assign ...`: the answer is the message.
    PortsSaved,
}

/// The status bar's facts, from `status` and `pair status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusBar {
    pub box_name: String,
    pub role: String,
    pub generation: String,
    pub alarms: usize,
    pub diverged: bool,
    pub uncommitted: usize,
    /// The generation awaiting `confirm`, and when it rolls back (app clock, ms).
    pub confirm: Option<(String, u64)>,
}

/// The whole UI state.
#[derive(Debug, Clone)]
pub struct App {
    pub screen: Screen,
    pub menu_selected: usize,
    pub bar: StatusBar,
    pub trees: BTreeMap<Screen, Tree>,
    /// Config screens: show the live state instead of the config.
    pub live: bool,
    pub texts: BTreeMap<Screen, TextView>,
    pub log_filter: Option<String>,
    /// The last answer or refusal, one line.
    pub message: String,
    pub modal: Option<Modal>,
    /// The last `ports` answer (the Ports screen).
    pub ports: PortsView,
    /// The Ports screen's "assign roles by carrier" flow, while it runs.
    pub assign: Option<AssignFlow>,
    pub now_ms: u64,
    next_refresh_ms: u64,
    next_id: u64,
    pending: BTreeMap<u64, Purpose>,
    outbox: Vec<Request>,
    refreshes_in_flight: usize,
    /// A `ports` request is out (at most one).
    ports_in_flight: bool,
    /// When the assign flow polls `ports` next.
    next_ports_poll_ms: u64,
    quit: bool,
    repaint: bool,
}

/// Refreshes in flight at most: a slow daemon gets no pile of `status` requests.
const MAX_REFRESHES_IN_FLIGHT: usize = 4;

impl App {
    pub fn new(now_ms: u64) -> App {
        let mut trees = BTreeMap::new();
        for item in MENU {
            if let Some(root) = item.screen.and_then(Screen::tree_root) {
                if let Some(screen) = item.screen {
                    trees.insert(screen, Tree::new(root));
                }
            }
        }
        let mut app = App {
            screen: Screen::Menu,
            menu_selected: 0,
            bar: StatusBar::default(),
            trees,
            live: false,
            texts: BTreeMap::new(),
            log_filter: None,
            message: String::from(
                "Welcome. Pick a screen by its digit or letter; m is this menu from anywhere.",
            ),
            modal: None,
            ports: PortsView::default(),
            assign: None,
            now_ms,
            next_refresh_ms: now_ms,
            next_id: 1,
            pending: BTreeMap::new(),
            outbox: Vec::new(),
            refreshes_in_flight: 0,
            ports_in_flight: false,
            next_ports_poll_ms: now_ms,
            quit: false,
            repaint: false,
        };
        app.tick(now_ms);
        app
    }

    /// The requests queued since the last call, oldest first.
    pub fn take_requests(&mut self) -> Vec<Request> {
        core::mem::take(&mut self.outbox)
    }

    /// The operator chose Logout.
    pub fn wants_quit(&self) -> bool {
        self.quit
    }

    /// Ctrl-L was pressed since the last call: the driver clears and redraws everything.
    pub fn take_repaint(&mut self) -> bool {
        core::mem::take(&mut self.repaint)
    }

    /// When [`App::tick`] must run next (app clock, ms).
    pub fn poll_timeout(&self) -> u64 {
        match &self.assign {
            Some(flow) if flow.watching() => self.next_refresh_ms.min(self.next_ports_poll_ms),
            _ => self.next_refresh_ms,
        }
    }

    /// Advances the clock; refreshes what is due.
    pub fn tick(&mut self, now_ms: u64) {
        self.now_ms = now_ms;
        if self.assign.as_ref().is_some_and(AssignFlow::watching)
            && now_ms >= self.next_ports_poll_ms
        {
            self.next_ports_poll_ms = now_ms + assign::POLL_MS;
            self.send_ports();
        }
        if now_ms < self.next_refresh_ms {
            return;
        }
        self.next_refresh_ms = now_ms + REFRESH_MS;
        if self.refreshes_in_flight >= MAX_REFRESHES_IN_FLIGHT {
            return;
        }
        self.refresh();
    }

    fn refresh(&mut self) {
        self.send_refresh("status", Purpose::Status);
        self.send_refresh("pair status", Purpose::PairStatus);
        if self.screen == Screen::Dashboard {
            self.send_refresh("vrrp status", Purpose::Text(Screen::Vrrp));
            self.send_refresh("lvs status", Purpose::Text(Screen::Services));
        }
        if self.screen == Screen::Ports && self.assign.is_none() {
            self.send_ports();
        }
        let live_text = self.screen.tree_root().is_none() || self.live;
        if live_text {
            match self.screen.live_command() {
                Some("status" | "pair status") | None => {}
                Some(line) if self.screen != Screen::Commit => {
                    self.send_refresh(line, Purpose::Text(self.screen));
                }
                Some(_) => {}
            }
        }
    }

    /// Asks for `ports` unless an answer is still out.
    fn send_ports(&mut self) {
        if !self.ports_in_flight {
            self.ports_in_flight = true;
            let serial = self.assign.as_ref().map_or(0, |flow| flow.serial);
            self.send("ports", Purpose::Ports(serial));
        }
    }

    fn send_refresh(&mut self, line: &str, purpose: Purpose) {
        self.refreshes_in_flight += 1;
        self.send(line, purpose);
    }

    fn send(&mut self, line: &str, purpose: Purpose) {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(id, purpose);
        self.outbox.push(Request {
            id,
            line: line.to_string(),
        });
    }

    /// The text a screen shows (empty until its answer came).
    pub fn text(&self, screen: Screen) -> Option<&TextView> {
        self.texts.get(&screen)
    }

    /// A daemon's answer to request `id`.
    pub fn answer(&mut self, id: u64, text: &str) {
        let Some(purpose) = self.pending.remove(&id) else {
            return;
        };
        match purpose {
            Purpose::Status => {
                self.refreshes_in_flight = self.refreshes_in_flight.saturating_sub(1);
                self.read_status(text);
                self.texts
                    .entry(Screen::Dashboard)
                    .or_default()
                    .replace(text);
                for screen in [Screen::Ports, Screen::Firmware, Screen::System] {
                    self.texts.entry(screen).or_default().replace(text);
                }
            }
            Purpose::PairStatus => {
                self.refreshes_in_flight = self.refreshes_in_flight.saturating_sub(1);
                self.read_pair_status(text);
                self.texts.entry(Screen::Pair).or_default().replace(text);
            }
            Purpose::Count => {
                self.bar.uncommitted = count_changes(text);
                if self.screen == Screen::Commit {
                    self.texts.entry(Screen::Commit).or_default().replace(text);
                }
            }
            Purpose::Browse { screen, path } => {
                if let Some(tree) = self.trees.get_mut(&screen) {
                    if tree.path() == path {
                        tree.listed(text);
                    }
                }
            }
            Purpose::Text(screen) => {
                self.refreshes_in_flight = self.refreshes_in_flight.saturating_sub(1);
                let shown = self.filtered(screen, text);
                self.texts.entry(screen).or_default().replace(&shown);
            }
            Purpose::Edit { prompt, purpose } => self.edited(text, prompt, purpose),
            Purpose::AddNamed {
                list,
                text: typed,
                prompt,
            } => {
                if is_refusal(text) {
                    // Not a named list after all: the value form (`set vrrp.x.vips 10.0.0.9`).
                    let purpose = PromptFor::AddItem {
                        list: list.clone(),
                        named: Some(false),
                    };
                    self.send(
                        &format!("set {list} {typed}"),
                        Purpose::Edit { prompt, purpose },
                    );
                } else {
                    self.edited(
                        text,
                        prompt,
                        PromptFor::AddItem {
                            list,
                            named: Some(true),
                        },
                    );
                }
            }
            Purpose::Ports(serial) => {
                self.ports_in_flight = false;
                self.ports = PortsView::parse(text);
                if let Some(flow) = self.assign.as_mut() {
                    if let FlowOutcome::Ended(why) = flow.ports_answer(&self.ports, serial) {
                        self.assign = None;
                        self.message = String::from(why);
                    }
                }
            }
            Purpose::PortsSaved => {
                self.message = first_line(text);
                self.send_ports();
            }
            Purpose::Action(screen) => {
                self.message = first_line(text);
                let mut view = TextView::default();
                view.replace(text);
                self.texts.insert(screen, view);
                self.after_change();
            }
        }
    }

    /// Narrows the log to lines holding the filter.
    fn filtered(&self, screen: Screen, text: &str) -> String {
        match (&self.log_filter, screen) {
            (Some(filter), Screen::Logs) => text
                .lines()
                .filter(|line| line.contains(filter.as_str()))
                .map(|line| format!("{line}\n"))
                .collect(),
            _ => text.to_string(),
        }
    }

    fn edited(&mut self, answer: &str, prompt: Prompt, purpose: PromptFor) {
        if is_refusal(answer) {
            // Refused in the field: the prompt comes back with the text and the reason.
            self.modal = Some(Modal::Prompt {
                prompt,
                error: Some(first_line(answer)),
                purpose: PromptPurpose(purpose),
            });
        } else {
            self.message = first_line(answer);
            self.after_change();
        }
    }

    /// After anything that may change the candidate or the running config.
    fn after_change(&mut self) {
        self.send("compare", Purpose::Count);
        self.browse_current();
        self.send_refresh("status", Purpose::Status);
    }

    fn browse_current(&mut self) {
        let screen = self.screen;
        if let Some(tree) = self.trees.get(&screen) {
            let path = tree.path();
            let line = if path.is_empty() {
                String::from("browse")
            } else {
                format!("browse {}", quote_word(&path))
            };
            self.send(&line, Purpose::Browse { screen, path });
        }
    }

    fn read_status(&mut self, text: &str) {
        let mut alarms = 0;
        for line in text.lines() {
            let Some(fact) = line.strip_prefix("status: ") else {
                continue;
            };
            if line.contains("ALARM") {
                alarms += 1;
            }
            if let Some(name) = value_of(fact, "name") {
                if fact.starts_with("name=") {
                    self.bar.box_name = name;
                }
            }
            // `config generation=...` (not `config format: ...`, another fact on its own line).
            if let Some(rest) = fact
                .strip_prefix("config ")
                .filter(|rest| rest.starts_with("generation="))
            {
                self.bar.generation = value_of(rest, "generation").unwrap_or_default();
                let changed = value_of(rest, "candidate").as_deref() == Some("changed");
                if changed && self.bar.uncommitted == 0 {
                    self.send("compare", Purpose::Count);
                } else if !changed {
                    self.bar.uncommitted = 0;
                }
                self.bar.confirm = value_of(rest, "confirm-pending").map(|generation| {
                    let seconds = rest
                        .split(" in ")
                        .nth(1)
                        .and_then(|s| s.trim_end_matches('s').trim().parse::<u64>().ok())
                        .unwrap_or(0);
                    (generation, self.now_ms + seconds * 1000)
                });
            }
        }
        self.bar.alarms = alarms;
    }

    fn read_pair_status(&mut self, text: &str) {
        self.bar.diverged = text.contains("DIVERGED");
        self.bar.role = text
            .lines()
            .find_map(|line| {
                let rest = line.split("this box is ").nth(1)?;
                Some(rest.split(',').next().unwrap_or("").trim().to_string())
            })
            .unwrap_or_else(|| String::from("unpaired"));
    }

    /// One key from the operator.
    pub fn handle_key(&mut self, key: Key) {
        if key == Key::Ctrl('l') {
            self.repaint = true;
            return;
        }
        if let Some(modal) = self.modal.take() {
            self.modal_key(modal, &key);
            return;
        }
        if let Some(flow) = self.assign.as_mut() {
            // Every key belongs to the flow while it runs (Esc and Ctrl-C cancel it).
            match flow.key(&key) {
                FlowOutcome::Continue => {}
                FlowOutcome::Ended(why) => {
                    self.assign = None;
                    self.message = String::from(why);
                }
                FlowOutcome::Save(line) => {
                    self.assign = None;
                    self.message = String::from("saving the port map ...");
                    self.send(&line, Purpose::PortsSaved);
                }
            }
            return;
        }
        if self.screen == Screen::Ports && key == Key::Char('w') {
            self.assign = Some(AssignFlow::new());
            self.message = String::from("assign roles by carrier: nothing changes until you save");
            self.next_ports_poll_ms = self.now_ms;
            self.tick(self.now_ms);
            return;
        }
        match key {
            // Ctrl-C cancels; outside a prompt there is nothing to cancel. It never exits.
            Key::Ctrl(_) => return,
            Key::Char('m') if self.screen != Screen::Menu => {
                self.open(Screen::Menu);
                return;
            }
            _ => {}
        }
        if self.screen == Screen::Menu {
            self.menu_key(&key);
        } else if self.screen.tree_root().is_some() && !self.live {
            self.tree_key(&key);
        } else {
            self.text_key(&key);
        }
    }

    fn modal_key(&mut self, modal: Modal, key: &Key) {
        let Modal::Prompt {
            mut prompt,
            error,
            purpose,
        } = modal;
        match prompt.handle_key(key) {
            PromptOutcome::Editing => {
                self.modal = Some(Modal::Prompt {
                    prompt,
                    error,
                    purpose,
                });
            }
            PromptOutcome::Cancelled => self.message = String::from("cancelled"),
            PromptOutcome::Submitted(text) => self.submitted(prompt, purpose.0, text),
        }
    }

    fn submitted(&mut self, prompt: Prompt, purpose: PromptFor, text: String) {
        let text = text.trim().to_string();
        match &purpose {
            PromptFor::Confirm(line) => {
                if text.eq_ignore_ascii_case("yes") {
                    self.message = format!("{line}: sent");
                    self.send(line, Purpose::Action(self.screen));
                } else {
                    self.message = String::from("cancelled: only yes goes ahead");
                }
            }
            PromptFor::SetValue(path) => {
                if text.is_empty() {
                    // `set` needs a value; clearing is `none` (or `d`), said where it is typed.
                    self.modal = Some(Modal::Prompt {
                        prompt,
                        error: Some(String::from("type a value, or none to clear the field")),
                        purpose: PromptPurpose(purpose),
                    });
                    return;
                }
                // `set` takes the path as one word and the rest of the line as the value.
                let line = format!("set {path} {text}");
                self.send(&line, Purpose::Edit { prompt, purpose });
            }
            PromptFor::AddItem { list, named } => {
                if text.is_empty() {
                    self.message = String::from("cancelled: nothing typed");
                    return;
                }
                let list = list.clone();
                if *named == Some(false) {
                    self.send(
                        &format!("set {list} {text}"),
                        Purpose::Edit { prompt, purpose },
                    );
                } else {
                    let line = format!("set {list}.{}.name {text}", quote_segment(&text));
                    self.send(&line, Purpose::AddNamed { list, text, prompt });
                }
            }
            PromptFor::FirmwareFetch => {
                self.message =
                    String::from("fetching and checking the bundle: this takes a moment");
                self.send(
                    &format!("firmware fetch {}", quote_word(&text)),
                    Purpose::Action(Screen::Firmware),
                );
            }
            PromptFor::FirmwareInstall => {
                self.message = String::from("checking and writing the bundle: this takes a moment");
                self.send(
                    &format!("firmware install {}", quote_word(&text)),
                    Purpose::Action(Screen::Firmware),
                );
            }
            PromptFor::PairUpgrade => {
                if text.is_empty() {
                    self.message = String::from("cancelled: no bundle given");
                } else {
                    self.confirm(
                        String::from("Both boxes reboot in turn, the partner first."),
                        &format!("pair upgrade {}", quote_word(&text)),
                    );
                }
            }
            PromptFor::PairJoin => {
                self.message = String::from("joining: this takes a moment");
                self.send(
                    &format!("pair join {}", quote_word(&text)),
                    Purpose::Action(Screen::Pair),
                );
            }
            PromptFor::CommitComment => {
                let line = if text.is_empty() {
                    String::from("commit")
                } else {
                    format!("commit --comment {}", quote_word(&text))
                };
                self.send(&line, Purpose::Action(Screen::Commit));
            }
            PromptFor::CommitConfirmSeconds => {
                let seconds = if text.is_empty() {
                    "600"
                } else {
                    text.as_str()
                };
                let line = format!("commit --confirm {}", quote_word(seconds));
                self.send(&line, Purpose::Action(Screen::Commit));
            }
            PromptFor::Rollback => {
                let line = if text.is_empty() {
                    String::from("rollback")
                } else {
                    format!("rollback {}", quote_word(&text))
                };
                self.send(&line, Purpose::Action(Screen::Commit));
            }
            PromptFor::Ping => {
                if text.is_empty() {
                    self.message = String::from("cancelled: nothing typed");
                    return;
                }
                self.message = format!("pinging {text} ...");
                self.send(
                    &format!("ping {} 3", quote_word(&text)),
                    Purpose::Action(Screen::Diagnostics),
                );
            }
            PromptFor::LogFilter => {
                self.log_filter = (!text.is_empty()).then_some(text);
                self.send_refresh("log", Purpose::Text(Screen::Logs));
            }
        }
    }

    fn ask(&mut self, label: &str, initial: &str, purpose: PromptFor) {
        self.modal = Some(Modal::Prompt {
            prompt: Prompt::new(label, initial),
            error: None,
            purpose: PromptPurpose(purpose),
        });
    }

    /// Asks before `line` runs: the operator types `yes` (a stray key never reboots a box).
    fn confirm(&mut self, question: String, line: &str) {
        self.ask(
            &format!("{question} Type yes:"),
            "",
            PromptFor::Confirm(line.to_string()),
        );
    }

    /// Shows `screen` and asks for what it shows.
    pub fn open(&mut self, screen: Screen) {
        self.screen = screen;
        self.live = false;
        if let Some(at) = MENU.iter().position(|item| item.screen == Some(screen)) {
            self.menu_selected = at;
        }
        match screen {
            Screen::Commit => self.send("compare", Purpose::Count),
            _ if screen.tree_root().is_some() => self.browse_current(),
            _ => {}
        }
        if let Some(view) = self.texts.get_mut(&screen) {
            view.follow = screen == Screen::Logs;
        } else if screen == Screen::Logs {
            self.texts.insert(
                screen,
                TextView {
                    follow: true,
                    ..TextView::default()
                },
            );
        }
        // The screen's own text now, not at the next refresh.
        self.next_refresh_ms = self.now_ms;
        self.tick(self.now_ms);
    }

    fn menu_key(&mut self, key: &Key) {
        match key {
            Key::Char(c) => {
                let wanted = c.to_ascii_lowercase();
                if let Some(at) = MENU.iter().position(|item| item.hotkey == wanted) {
                    self.menu_selected = at;
                    self.choose_menu();
                } else if wanted == 'j' {
                    self.menu_move(1);
                } else if wanted == 'k' {
                    self.menu_move(-1);
                }
            }
            Key::Tab | Key::Down => self.menu_move(1),
            Key::BackTab | Key::Up => self.menu_move(-1),
            Key::Enter => self.choose_menu(),
            _ => {}
        }
    }

    fn menu_move(&mut self, delta: isize) {
        let count = MENU.len();
        let step = if delta < 0 { count - 1 } else { 1 };
        self.menu_selected = (self.menu_selected + step) % count;
    }

    fn choose_menu(&mut self) {
        let Some(item) = MENU.get(self.menu_selected) else {
            return;
        };
        match item.screen {
            Some(screen) => self.open(screen),
            None => self.quit = true,
        }
    }

    fn back(&mut self) {
        let screen = self.screen;
        let closed = self
            .trees
            .get_mut(&screen)
            .is_some_and(|tree| !self.live && tree.close());
        if closed {
            self.browse_current();
        } else {
            self.open(Screen::Menu);
        }
    }

    fn tree_key(&mut self, key: &Key) {
        let screen = self.screen;
        let Some(tree) = self.trees.get_mut(&screen) else {
            return;
        };
        match key {
            Key::Tab | Key::Down | Key::Char('j') => tree.move_by(1),
            Key::BackTab | Key::Up | Key::Char('k') => tree.move_by(-1),
            Key::PageDown | Key::Char('n') => tree.move_by(10),
            Key::PageUp | Key::Char('u') => tree.move_by(-10),
            Key::Esc | Key::Backspace | Key::Left | Key::Char('b') => self.back(),
            Key::Char('l') => {
                self.live = true;
                self.next_refresh_ms = self.now_ms;
                self.tick(self.now_ms);
            }
            Key::Char('r') => self.browse_current(),
            Key::Enter | Key::Right | Key::Char('e') => {
                let Some(entry) = tree.selected_entry().cloned() else {
                    return;
                };
                if entry.kind.opens() {
                    tree.open_selected();
                    self.browse_current();
                } else {
                    let path = tree.path_of(&entry);
                    let initial = if entry.kind == EntryKind::Unset {
                        String::new()
                    } else {
                        unquote(&entry.shown)
                    };
                    self.ask(
                        &format!("{path} ="),
                        &initial,
                        PromptFor::SetValue(path.clone()),
                    );
                }
            }
            Key::Char('a') => {
                let (list, named) = if tree.is_list() {
                    (tree.path(), tree.items_named())
                } else if let Some(entry) = tree.selected_entry().filter(|e| {
                    e.kind == EntryKind::List
                        || (e.kind == EntryKind::Value && e.shown.starts_with('['))
                }) {
                    (tree.path_of(entry), None)
                } else {
                    self.message =
                        String::from("a adds to a list: open a list (Enter) or select one first");
                    return;
                };
                let label = if named == Some(false) {
                    format!("add to {list} (value):")
                } else {
                    format!("add to {list} (name, or value for a list of values):")
                };
                self.ask(&label, "", PromptFor::AddItem { list, named });
            }
            Key::Char('d') | Key::Delete => {
                let Some(entry) = tree.selected_entry().cloned() else {
                    return;
                };
                if entry.kind == EntryKind::Unset {
                    self.message = format!("{} holds no value", entry.segment);
                    return;
                }
                let path = tree.path_of(&entry);
                let line = format!("delete {}", quote_word(&path));
                self.confirm(format!("Delete {path} from the candidate?"), &line);
            }
            _ => {}
        }
    }

    fn text_key(&mut self, key: &Key) {
        let screen = self.screen;
        let view = self.texts.entry(screen).or_default();
        match key {
            // Letters are the screens' actions; scrolling is Tab, n(ext) and p(revious) page.
            Key::Tab | Key::Down => return view.scroll_by(1),
            Key::BackTab | Key::Up => return view.scroll_by(-1),
            Key::PageDown | Key::Char('n' | ' ') => return view.scroll_by(18),
            Key::PageUp | Key::Char('p') => return view.scroll_by(-18),
            Key::Esc | Key::Backspace | Key::Char('b') => return self.back(),
            _ => {}
        }
        let Key::Char(c) = key else {
            return;
        };
        match (screen, c) {
            (Screen::Firmware, 's') => self.send("firmware status", Purpose::Action(screen)),
            (Screen::Firmware, 'f') => self.ask(
                "bundle URL (http://ADDRESS[:PORT]/PATH):",
                "http://",
                PromptFor::FirmwareFetch,
            ),
            (Screen::Firmware, 'i') => self.ask(
                "install the bundle at (a path on this box):",
                "/run/tandem/fetched.bundle",
                PromptFor::FirmwareInstall,
            ),
            (Screen::Firmware, 'g') => self.ask(
                "pair upgrade from (a path on this box or http://...):",
                "/run/tandem/fetched.bundle",
                PromptFor::PairUpgrade,
            ),
            (Screen::Firmware, 'w') => self.send("pair upgrade status", Purpose::Action(screen)),
            (Screen::Pair, 's') => self.send("pair start", Purpose::Action(screen)),
            (Screen::Pair, 'j') => self.ask(
                "pairing code shown on the other box:",
                "",
                PromptFor::PairJoin,
            ),
            (Screen::Pair, 'a') => self.confirm(
                String::from("Take the partner's config (the one here stays in history)?"),
                "pair adopt-peer",
            ),
            (Screen::Pair, 'u') => self.confirm(
                String::from("Give the partner this box's config (its own stays in its history)?"),
                "pair push",
            ),
            (Screen::Pair, 'c') => self.send("compare peer", Purpose::Action(screen)),
            (Screen::Pair, 'x') => self.confirm(
                String::from("Forget the pair key and role (the config stays)?"),
                "unpair",
            ),
            (Screen::Commit, 'c') => self.ask(
                "commit comment (Enter for none):",
                "",
                PromptFor::CommitComment,
            ),
            (Screen::Commit, 't') => self.ask(
                "commit, rolled back unless confirmed within seconds:",
                "600",
                PromptFor::CommitConfirmSeconds,
            ),
            (Screen::Commit, 'k') => self.send("confirm", Purpose::Action(screen)),
            (Screen::Commit, 'r') => self.ask(
                "roll back to generation (Enter: the previous one):",
                "",
                PromptFor::Rollback,
            ),
            (Screen::Commit, 'h') => self.send("history", Purpose::Action(screen)),
            (Screen::Commit, 'v') => self.send("preview", Purpose::Action(screen)),
            (Screen::Commit, 'x') => {
                self.confirm(String::from("Drop every uncommitted change?"), "discard")
            }
            (Screen::Logs, '/' | 'f') => {
                let current = self.log_filter.clone().unwrap_or_default();
                self.ask(
                    "show log lines containing (Enter for all):",
                    &current,
                    PromptFor::LogFilter,
                );
            }
            (Screen::Diagnostics, 'i') => self.send("lvs status", Purpose::Action(screen)),
            (Screen::Diagnostics, 'v') => self.send("vrrp status", Purpose::Action(screen)),
            (Screen::Diagnostics, 'e') => self.send("peer", Purpose::Action(screen)),
            (Screen::Diagnostics, 'g') => {
                self.ask(
                    "ping address (3 echoes, one a second):",
                    "",
                    PromptFor::Ping,
                );
            }
            (Screen::Diagnostics, 'h') => self.send("neighbours", Purpose::Action(screen)),
            (Screen::Power, 'r') => self.confirm(String::from("Reboot this box now?"), "reboot"),
            (Screen::Power, 'o') => {
                self.confirm(String::from("Power this box off now?"), "poweroff")
            }
            // The daemon's two steps: `factory-reset` says what goes and arms it for 60 s (its
            // answer is the message), the typed yes sends `factory-reset confirm`.
            (Screen::Power, 'f') => {
                self.send("factory-reset", Purpose::Action(screen));
                self.confirm(
                    // One prompt row of 80 columns: the warning itself is the message line.
                    String::from("Erase config, pair key, password, port map and reboot?"),
                    "factory-reset confirm",
                );
            }
            (_, 'c') if self.live => {
                self.live = false;
                self.browse_current();
            }
            _ => {}
        }
    }

    /// Seconds until a pending commit-confirm rolls back, if one is pending.
    pub fn confirm_countdown(&self) -> Option<(String, u64)> {
        self.bar.confirm.as_ref().map(|(generation, deadline)| {
            (
                generation.clone(),
                deadline.saturating_sub(self.now_ms) / 1000,
            )
        })
    }
}

/// Whether an answer refuses what was asked (the daemon's refusals name the field and say why;
/// its successes of `set`/`delete` say "(candidate; ...").
fn is_refusal(answer: &str) -> bool {
    !answer.contains("(candidate;")
}

/// The changes in a `compare` answer: fields changed, added or removed, each once (a field
/// that changed value shows as a `-` and a `+` line under the same heading).
fn count_changes(compare: &str) -> usize {
    let mut heading = "";
    let mut changed: Vec<(&str, &str)> = Vec::new();
    for line in compare.lines() {
        let Some(change) = line.strip_prefix(['+', '-']) else {
            heading = line;
            continue;
        };
        let key = change.split(" = ").next().unwrap_or(change).trim();
        if !changed.contains(&(heading, key)) {
            changed.push((heading, key));
        }
    }
    changed.len()
}

fn first_line(text: &str) -> String {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string()
}

/// `key=value` in a line of `key=value` words.
fn value_of(line: &str, key: &str) -> Option<String> {
    line.split_whitespace().find_map(|word| {
        let (k, v) = word.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

/// One word of a command line: quoted when it holds a blank or a quote.
fn quote_word(text: &str) -> String {
    if text.is_empty() {
        return String::from("\"\"");
    }
    if text.contains([' ', '\t', '"', '\'']) {
        if text.contains('"') {
            format!("'{text}'")
        } else {
            format!("\"{text}\"")
        }
    } else {
        text.to_string()
    }
}

/// A path segment: in double quotes when it holds a dot.
fn quote_segment(text: &str) -> String {
    if text.contains('.') {
        format!("\"{text}\"")
    } else {
        text.to_string()
    }
}

/// A TOML string shown as `"x"` is edited as `x`.
fn unquote(shown: &str) -> String {
    shown
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .map_or_else(|| shown.to_string(), str::to_string)
}

#[cfg(test)]
mod tests;
