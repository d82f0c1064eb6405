//! The gate in front of the console UI on the box: no default password anywhere (EN 303 645
//! 5.1, SB-327), so a factory-fresh box asks for the admin password before anything else;
//! later boots ask for it. Failures back off (1 s, 2 s, 4 s ... 60 s: keys typed meanwhile are
//! dropped), an idle session logs out, and every outcome is reported for the log.
//!
//! Sans-IO like the rest of the crate: hashing and checking the password (Argon2id, slow on
//! purpose) is the driver's job. The gate says what to check ([`GateRequest`]) and takes the
//! result back ([`Gate::checked`], [`Gate::stored`]).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::app::prompt::{Prompt, PromptOutcome};
use crate::keys::Key;

/// The shortest admin password accepted.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest wait after failures.
pub const MAX_BACKOFF_MS: u64 = 60_000;
/// The default idle logout.
pub const DEFAULT_IDLE_LOGOUT_MS: u64 = 10 * 60 * 1000;

/// What the driver must do for the gate.
#[derive(Clone, PartialEq, Eq)]
pub enum GateRequest {
    /// Check this password against the stored hash; answer with [`Gate::checked`].
    Check(String),
    /// Hash and store this as the admin password; answer with [`Gate::stored`].
    Store(String),
}

impl core::fmt::Debug for GateRequest {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never the password.
        match self {
            GateRequest::Check(_) => f.write_str("Check(..)"),
            GateRequest::Store(_) => f.write_str("Store(..)"),
        }
    }
}

/// Where the gate stands.
#[derive(Clone, PartialEq, Eq)]
pub enum GateState {
    /// First boot: the password, then the same again.
    Create { first: Option<String> },
    /// The password is asked for.
    Login,
    /// A check or store is with the driver.
    Waiting,
    /// Logged in: keys go to the app.
    Open,
}

impl core::fmt::Debug for GateState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never the first password of a pair being chosen.
        f.write_str(match self {
            GateState::Create { first: None } => "Create",
            GateState::Create { first: Some(_) } => "Create(again)",
            GateState::Login => "Login",
            GateState::Waiting => "Waiting",
            GateState::Open => "Open",
        })
    }
}

/// The login gate.
#[derive(Clone)]
pub struct Gate {
    pub state: GateState,
    pub prompt: Prompt,
    /// What the screen says above the prompt (a refusal, the back-off).
    pub notice: String,
    failures: u32,
    blocked_until_ms: u64,
    last_key_ms: u64,
    idle_logout_ms: u64,
    requests: Vec<GateRequest>,
    /// Lines for the box's log (logins, failures, logouts); never a password.
    events: Vec<String>,
}

impl core::fmt::Debug for Gate {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never what is typed into the (masked) prompt.
        f.debug_struct("Gate")
            .field("state", &self.state)
            .field("notice", &self.notice)
            .field("failures", &self.failures)
            .field("blocked_until_ms", &self.blocked_until_ms)
            .finish_non_exhaustive()
    }
}

impl Gate {
    /// `password_set`: whether the box has an admin password (else first-boot setup).
    pub fn new(password_set: bool, idle_logout_ms: u64, now_ms: u64) -> Gate {
        let mut gate = Gate {
            state: GateState::Login,
            prompt: Prompt::masked("password:"),
            notice: String::new(),
            failures: 0,
            blocked_until_ms: 0,
            last_key_ms: now_ms,
            idle_logout_ms,
            requests: Vec::new(),
            events: Vec::new(),
        };
        gate.lock(password_set);
        gate
    }

    fn lock(&mut self, password_set: bool) {
        if password_set {
            self.state = GateState::Login;
            self.prompt = Prompt::masked("password:");
            self.notice = String::from("Log in with the admin password.");
        } else {
            self.state = GateState::Create { first: None };
            self.prompt = Prompt::masked("new admin password:");
            self.notice = format!(
                "This box has no admin password yet (factory-fresh). Choose one to start setup here: at least {MIN_PASSWORD_CHARS} characters."
            );
        }
    }

    pub fn is_open(&self) -> bool {
        self.state == GateState::Open
    }

    /// The driver's work, oldest first.
    pub fn take_requests(&mut self) -> Vec<GateRequest> {
        core::mem::take(&mut self.requests)
    }

    /// Log lines since the last call.
    pub fn take_events(&mut self) -> Vec<String> {
        core::mem::take(&mut self.events)
    }

    /// Milliseconds left of the back-off, if any.
    pub fn backoff_left(&self, now_ms: u64) -> Option<u64> {
        (now_ms < self.blocked_until_ms).then(|| self.blocked_until_ms - now_ms)
    }

    /// A key while the gate is shut (or to note activity while it is open).
    pub fn handle_key(&mut self, key: &Key, now_ms: u64) {
        self.last_key_ms = now_ms;
        if self.is_open() || self.state == GateState::Waiting {
            return;
        }
        if let Some(left) = self.backoff_left(now_ms) {
            // Keys during the back-off are dropped, so a script cannot queue guesses.
            self.notice = format!("Too many failures: wait {} s.", left.div_ceil(1000));
            return;
        }
        let PromptOutcome::Submitted(text) = self.prompt.handle_key(key) else {
            return;
        };
        self.prompt.text.clear();
        self.prompt.cursor = 0;
        match self.state.clone() {
            GateState::Create { first: None } => {
                if text.chars().count() < MIN_PASSWORD_CHARS {
                    self.notice = format!("Too short: at least {MIN_PASSWORD_CHARS} characters.");
                    return;
                }
                self.state = GateState::Create { first: Some(text) };
                self.prompt.label = String::from("the same again:");
                self.notice = String::from("Type it again to make sure.");
            }
            GateState::Create { first: Some(first) } => {
                if first != text {
                    self.lock(false);
                    self.notice = String::from("The two did not match: choose the password again.");
                    return;
                }
                self.state = GateState::Waiting;
                self.notice = String::from("Storing the password ...");
                self.requests.push(GateRequest::Store(text));
            }
            GateState::Login => {
                self.state = GateState::Waiting;
                self.notice = String::from("Checking ...");
                self.requests.push(GateRequest::Check(text));
            }
            GateState::Waiting | GateState::Open => {}
        }
    }

    /// The driver checked a password.
    pub fn checked(&mut self, good: bool, now_ms: u64) {
        if good {
            self.failures = 0;
            self.state = GateState::Open;
            self.notice.clear();
            self.last_key_ms = now_ms;
            self.events.push(String::from("console: admin logged in"));
            return;
        }
        self.failures = self.failures.saturating_add(1);
        let wait = (1000u64 << self.failures.saturating_sub(1).min(6)).min(MAX_BACKOFF_MS);
        self.blocked_until_ms = now_ms + wait;
        self.lock(true);
        self.notice = format!(
            "Wrong password ({} in a row): wait {} s before the next try.",
            self.failures,
            wait / 1000
        );
        self.events.push(format!(
            "console: login failed ({} in a row; next try in {} s)",
            self.failures,
            wait / 1000
        ));
    }

    /// The driver stored the password (or could not: `error` says why).
    pub fn stored(&mut self, error: Option<String>, now_ms: u64) {
        match error {
            None => {
                self.events
                    .push(String::from("console: admin password set (first boot)"));
                self.checked(true, now_ms);
            }
            Some(error) => {
                self.lock(false);
                self.notice = format!("The password could not be stored: {error}. Try again.");
                self.events
                    .push(format!("console: admin password not stored: {error}"));
            }
        }
    }

    /// Logs out (the menu's Logout, or idle): the login prompt comes back.
    pub fn logout(&mut self, why: &str) {
        if self.is_open() {
            self.events
                .push(format!("console: admin logged out ({why})"));
        }
        self.lock(true);
        self.notice = format!("Logged out ({why}). Log in with the admin password.");
    }

    /// Advances the clock: an idle session logs out.
    pub fn tick(&mut self, now_ms: u64) {
        if self.is_open() && now_ms.saturating_sub(self.last_key_ms) >= self.idle_logout_ms {
            let minutes = self.idle_logout_ms / 60_000;
            self.logout(&format!("idle for {minutes} min"));
        }
    }

    /// When [`Gate::tick`] must run next.
    pub fn poll_timeout(&self, now_ms: u64) -> Option<u64> {
        if self.is_open() {
            return Some(self.last_key_ms + self.idle_logout_ms);
        }
        self.backoff_left(now_ms).map(|left| now_ms + left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(gate: &mut Gate, text: &str, now: u64) {
        for c in text.chars() {
            gate.handle_key(&Key::Char(c), now);
        }
        gate.handle_key(&Key::Enter, now);
    }

    #[test]
    fn first_boot_asks_twice_and_stores() {
        let mut gate = Gate::new(false, DEFAULT_IDLE_LOGOUT_MS, 0);
        assert!(gate.notice.contains("factory-fresh"));
        typed(&mut gate, "short", 0);
        assert!(gate.notice.contains("Too short"));
        typed(&mut gate, "correct horse", 0);
        typed(&mut gate, "correct horsf", 0);
        assert!(gate.notice.contains("did not match"));
        assert!(gate.take_requests().is_empty());
        typed(&mut gate, "correct horse", 0);
        typed(&mut gate, "correct horse", 0);
        assert_eq!(
            gate.take_requests(),
            [GateRequest::Store("correct horse".into())]
        );
        assert!(!gate.is_open());
        gate.stored(None, 10);
        assert!(gate.is_open());
        let events = gate.take_events();
        assert!(events.iter().all(|e| !e.contains("horse")), "{events:?}");
    }

    #[test]
    fn failures_back_off_and_keys_meanwhile_are_dropped() {
        let mut gate = Gate::new(true, DEFAULT_IDLE_LOGOUT_MS, 0);
        let mut now = 0;
        let mut waits = Vec::new();
        for _ in 0..9 {
            typed(&mut gate, "guess", now);
            assert_eq!(gate.take_requests(), [GateRequest::Check("guess".into())]);
            gate.checked(false, now);
            let wait = gate.backoff_left(now).unwrap();
            waits.push(wait / 1000);
            // A try during the back-off sends nothing.
            typed(&mut gate, "guess", now + wait - 1);
            assert!(gate.take_requests().is_empty());
            now += wait;
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(gate.take_events().len(), 9);
        typed(&mut gate, "right", now);
        gate.take_requests();
        gate.checked(true, now);
        assert!(gate.is_open());
        // Success resets the count.
        gate.logout("menu");
        typed(&mut gate, "x", now);
        gate.take_requests();
        gate.checked(false, now);
        assert_eq!(gate.backoff_left(now), Some(1000));
    }

    #[test]
    fn an_idle_session_logs_out() {
        let mut gate = Gate::new(true, 60_000, 0);
        typed(&mut gate, "pw", 0);
        gate.take_requests();
        gate.checked(true, 0);
        gate.handle_key(&Key::Tab, 30_000);
        gate.tick(89_999);
        assert!(gate.is_open());
        assert_eq!(gate.poll_timeout(89_999), Some(90_000));
        gate.tick(90_000);
        assert!(!gate.is_open());
        assert!(gate.take_events().iter().any(|e| e.contains("idle")));
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let request = GateRequest::Check("hunter22".into());
        assert!(!format!("{request:?}").contains("hunter"));
        let mut gate = Gate::new(false, DEFAULT_IDLE_LOGOUT_MS, 0);
        typed(&mut gate, "hunter22", 0);
        for c in "hunt".chars() {
            gate.handle_key(&Key::Char(c), 0);
        }
        assert!(!format!("{gate:?}").contains("hunt"), "{gate:?}");
    }
}
