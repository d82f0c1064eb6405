//! The Ports screen's "assign roles by carrier" flow (pfSense's "connect the WAN interface
//! now"): for each role the board has, in turn, the operator plugs a cable into the port meant
//! for it; the first port whose carrier goes down -> up since the step began is proposed, and
//! Enter takes it. At the end the new map is shown and saved with one `ports assign` line; it
//! takes effect at the next boot. Cancel (Esc, Ctrl-C) sends nothing.
//!
//! Pure: the app polls `ports` about every [`POLL_MS`] while the flow watches and hands each
//! answer to [`AssignFlow::ports_answer`]; keys go to [`AssignFlow::key`].

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::keys::Key;

/// How often the flow asks for `ports` while it watches the carriers.
pub const POLL_MS: u64 = 500;

/// One line of the daemon's `ports` answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortLine {
    /// The stable id (PCI path, else MAC).
    pub id: String,
    /// The current kernel name.
    pub name: String,
    /// The role now (`-`: none).
    pub role: String,
    /// Where the role came from: `board`, `operator` or `-`.
    pub from: String,
    /// The role saved for the next boot, when it differs (`none`: no role).
    pub next: Option<String>,
    /// Carrier: None when unknown.
    pub carrier: Option<bool>,
    pub mac: String,
}

/// The daemon's `ports` answer, read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortsView {
    /// The board's roles, in the order they are assigned.
    pub roles: Vec<String>,
    pub ports: Vec<PortLine>,
    /// Anything else the daemon said (the saved map, notes), without the `ports: ` prefix.
    pub notes: Vec<String>,
}

impl PortsView {
    /// Reads a `ports` answer (lines `ports: ID key=value ...`, `ports: board NAME roles ...`).
    pub fn parse(text: &str) -> PortsView {
        let mut view = PortsView::default();
        for line in text.lines() {
            let Some(fact) = line.strip_prefix("ports: ") else {
                continue;
            };
            let mut words = fact.split_whitespace();
            let first = words.next().unwrap_or("");
            if first == "board" {
                view.roles = fact
                    .split(" roles ")
                    .nth(1)
                    .unwrap_or("")
                    .split_whitespace()
                    .map(str::to_string)
                    .collect();
                continue;
            }
            if !fact.contains(" name=") {
                if fact != "end" {
                    view.notes.push(fact.to_string());
                }
                continue;
            }
            let mut port = PortLine {
                id: first.to_string(),
                ..PortLine::default()
            };
            for word in words {
                let Some((key, value)) = word.split_once('=') else {
                    continue;
                };
                let value = value.to_string();
                match key {
                    "name" => port.name = value,
                    "role" => port.role = value,
                    "from" => port.from = value,
                    "next" => port.next = Some(value),
                    "carrier" => {
                        port.carrier = match value.as_str() {
                            "up" => Some(true),
                            "down" => Some(false),
                            _ => None,
                        }
                    }
                    "mac" => port.mac = value,
                    _ => {}
                }
            }
            view.ports.push(port);
        }
        view
    }

    /// The map the next boot applies now: role -> port id, in the board's role order.
    pub fn next_map(&self) -> Vec<(String, String)> {
        let mut map = Vec::new();
        for role in &self.roles {
            let port = self
                .ports
                .iter()
                .find(|port| port.next.as_deref().unwrap_or(port.role.as_str()) == role.as_str());
            if let Some(port) = port {
                map.push((role.clone(), port.id.clone()));
            }
        }
        map
    }
}

/// Where the flow is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// Waiting for the first `ports` answer (the board's roles).
    Loading,
    /// Watching the carriers for the role of the step.
    Watching,
    /// This port's carrier came up: take it for the step's role?
    Proposed(String),
    /// Every role stepped through: the new map, save or cancel.
    Summary,
}

/// What a key did to the flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlowOutcome {
    /// The flow goes on.
    Continue,
    /// Ended without a change (cancelled, or nothing chosen).
    Ended(&'static str),
    /// Save: this command line.
    Save(String),
}

/// The flow's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignFlow {
    pub phase: Phase,
    /// The roles to step through (from the first answer).
    pub roles: Vec<String>,
    /// The step: an index into `roles`.
    pub step: usize,
    /// (role, port id) chosen so far.
    pub chosen: Vec<(String, String)>,
    /// Ports seen without carrier since the step began.
    pub seen_down: Vec<String>,
    /// Grows with every step: answers to polls sent in an earlier step do not count.
    pub serial: u64,
}

impl Default for AssignFlow {
    fn default() -> Self {
        AssignFlow::new()
    }
}

impl AssignFlow {
    pub fn new() -> AssignFlow {
        AssignFlow {
            phase: Phase::Loading,
            roles: Vec::new(),
            step: 0,
            chosen: Vec::new(),
            seen_down: Vec::new(),
            serial: 1,
        }
    }

    /// Whether the flow wants `ports` polled.
    pub fn watching(&self) -> bool {
        matches!(self.phase, Phase::Loading | Phase::Watching)
    }

    /// The role of the step, if the flow is at one.
    pub fn role(&self) -> Option<&str> {
        self.roles.get(self.step).map(String::as_str)
    }

    /// The port id chosen for a role in this run.
    pub fn chosen_for_port(&self, id: &str) -> Option<&str> {
        self.chosen
            .iter()
            .find(|(_, port)| port == id)
            .map(|(role, _)| role.as_str())
    }

    /// A `ports` answer polled in step `serial`. Returns an end when the flow cannot go on.
    pub fn ports_answer(&mut self, view: &PortsView, serial: u64) -> FlowOutcome {
        if self.phase == Phase::Loading {
            if view.roles.is_empty() {
                return FlowOutcome::Ended(
                    "the daemon names no roles for this board: nothing to assign",
                );
            }
            self.roles = view.roles.clone();
            self.start_step(0);
            // This answer is the first step's first look at the carriers.
            self.observe(view);
            return FlowOutcome::Continue;
        }
        if serial == self.serial {
            self.observe(view);
        }
        FlowOutcome::Continue
    }

    /// Carriers seen while watching: a port down since the step began that is up now is
    /// proposed (ports chosen in this run are not offered again).
    fn observe(&mut self, view: &PortsView) {
        if self.phase != Phase::Watching {
            return;
        }
        for port in &view.ports {
            if self.chosen_for_port(&port.id).is_some() {
                continue;
            }
            match port.carrier {
                Some(false) if !self.seen_down.contains(&port.id) => {
                    self.seen_down.push(port.id.clone());
                }
                Some(true) if self.seen_down.contains(&port.id) => {
                    self.phase = Phase::Proposed(port.id.clone());
                    return;
                }
                _ => {}
            }
        }
    }

    fn start_step(&mut self, step: usize) {
        self.step = step;
        self.seen_down.clear();
        self.serial += 1;
        self.phase = if step < self.roles.len() {
            Phase::Watching
        } else {
            Phase::Summary
        };
    }

    /// One key.
    pub fn key(&mut self, key: &Key) -> FlowOutcome {
        if matches!(key, Key::Esc | Key::Ctrl('c')) {
            return FlowOutcome::Ended("cancelled: the port map is unchanged");
        }
        match (&self.phase, key) {
            (Phase::Watching | Phase::Proposed(_), Key::Char('s')) => {
                self.start_step(self.step + 1);
            }
            (Phase::Proposed(id), Key::Enter | Key::Char('y')) => {
                if let Some(role) = self.role() {
                    self.chosen.push((role.to_string(), id.clone()));
                }
                self.start_step(self.step + 1);
            }
            (Phase::Proposed(id), Key::Char('n')) => {
                // Not that one: it must go down and up again to be proposed.
                let id = id.clone();
                self.seen_down.retain(|seen| *seen != id);
                self.phase = Phase::Watching;
            }
            (Phase::Summary, Key::Enter | Key::Char('y')) => {
                if self.chosen.is_empty() {
                    return FlowOutcome::Ended("nothing chosen: the port map is unchanged");
                }
                return FlowOutcome::Save(self.save_line());
            }
            (Phase::Summary, Key::Char('n')) => {
                return FlowOutcome::Ended("cancelled: the port map is unchanged");
            }
            _ => {}
        }
        FlowOutcome::Continue
    }

    /// The one command that saves the choices: `ports assign ROLE PORT ...`.
    pub fn save_line(&self) -> String {
        let mut line = String::from("ports assign");
        for (role, port) in &self.chosen {
            line.push_str(&format!(" {role} {port}"));
        }
        line
    }

    /// The map the next boot will apply once saved: each role with its port and why
    /// (`chosen`, `swapped`, or empty when it stays), from the map the daemon has now.
    pub fn new_map(&self, view: &PortsView) -> Vec<(String, String, &'static str)> {
        let mut map: Vec<(String, String, &'static str)> = view
            .next_map()
            .into_iter()
            .map(|(role, port)| (role, port, ""))
            .collect();
        // `ports assign`'s rule: the role that had the port takes the chosen role's old port.
        for (role, port) in &self.chosen {
            let old = map
                .iter()
                .position(|(r, _, _)| r == role)
                .map(|at| map.remove(at).1);
            if let Some(other) = map.iter_mut().find(|(_, p, _)| p == port) {
                match &old {
                    Some(old) => {
                        other.1 = old.clone();
                        other.2 = "swapped";
                    }
                    None => other.1 = String::new(),
                }
            }
            map.push((role.clone(), port.clone(), "chosen"));
        }
        // In the board's role order.
        view.roles
            .iter()
            .filter_map(|role| map.iter().find(|(r, p, _)| r == role && !p.is_empty()))
            .cloned()
            .collect()
    }
}
