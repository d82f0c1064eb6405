//! One line of input at the bottom of a screen (a value, a name, a code, a comment), and the
//! yes/no question that guards anything disruptive. Both are modal: while one is open, keys go
//! to it alone.

use alloc::string::String;

use crate::keys::Key;

/// The longest line a prompt takes: the console's command lines are bounded at 4 KiB, and no
/// field of the model is near that.
pub const MAX_INPUT: usize = 1024;

/// What a key did to a prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PromptOutcome {
    /// Still typing.
    Editing,
    /// Enter: the text.
    Submitted(String),
    /// Esc or Ctrl-C: nothing happens.
    Cancelled,
}

/// A line editor: printable characters insert at the cursor; Backspace, Delete, Left, Right,
/// Home, End (and Ctrl-A-free Emacs keys: Ctrl-E end, Ctrl-U clear) edit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    pub label: String,
    pub text: String,
    /// Cursor position in characters.
    pub cursor: usize,
    /// Shown as `*` (passwords).
    pub masked: bool,
}

impl Prompt {
    pub fn new(label: impl Into<String>, initial: impl Into<String>) -> Prompt {
        let text: String = initial.into();
        let cursor = text.chars().count();
        Prompt {
            label: label.into(),
            text,
            cursor,
            masked: false,
        }
    }

    pub fn masked(label: impl Into<String>) -> Prompt {
        Prompt {
            masked: true,
            ..Prompt::new(label, "")
        }
    }

    fn byte_at(&self, chars: usize) -> usize {
        self.text
            .char_indices()
            .nth(chars)
            .map_or(self.text.len(), |(at, _)| at)
    }

    pub fn handle_key(&mut self, key: &Key) -> PromptOutcome {
        let length = self.text.chars().count();
        match key {
            Key::Enter => return PromptOutcome::Submitted(self.text.clone()),
            Key::Esc | Key::Ctrl('c') => return PromptOutcome::Cancelled,
            Key::Char(c) if !c.is_control() && self.text.len() + c.len_utf8() <= MAX_INPUT => {
                let at = self.byte_at(self.cursor);
                self.text.insert(at, *c);
                self.cursor += 1;
            }
            Key::Backspace if self.cursor > 0 => {
                self.cursor -= 1;
                let at = self.byte_at(self.cursor);
                self.text.remove(at);
            }
            Key::Delete if self.cursor < length => {
                let at = self.byte_at(self.cursor);
                self.text.remove(at);
            }
            Key::Left => self.cursor = self.cursor.saturating_sub(1),
            Key::Right => self.cursor = (self.cursor + 1).min(length),
            Key::Home => self.cursor = 0,
            Key::End | Key::Ctrl('e') => self.cursor = length,
            Key::Ctrl('u') => {
                self.text.clear();
                self.cursor = 0;
            }
            _ => {}
        }
        PromptOutcome::Editing
    }

    /// The text as shown: masked or not.
    pub fn shown(&self) -> String {
        if self.masked {
            self.text.chars().map(|_| '*').collect()
        } else {
            self.text.clone()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(prompt: &mut Prompt, keys: &[Key]) -> PromptOutcome {
        let mut last = PromptOutcome::Editing;
        for key in keys {
            last = prompt.handle_key(key);
        }
        last
    }

    #[test]
    fn edits_in_the_middle_and_submits() {
        let mut prompt = Prompt::new("value", "10.0.0.1");
        let outcome = typed(
            &mut prompt,
            &[
                Key::Home,
                Key::Delete,
                Key::Char('2'),
                Key::End,
                Key::Backspace,
                Key::Char('9'),
                Key::Enter,
            ],
        );
        assert_eq!(outcome, PromptOutcome::Submitted("20.0.0.9".into()));
    }

    #[test]
    fn ctrl_c_and_esc_cancel_and_control_keys_do_nothing() {
        let mut prompt = Prompt::new("value", "x");
        assert_eq!(
            typed(&mut prompt, &[Key::Ctrl('d'), Key::Ctrl('z')]),
            PromptOutcome::Editing
        );
        assert_eq!(prompt.text, "x");
        assert_eq!(prompt.handle_key(&Key::Ctrl('c')), PromptOutcome::Cancelled);
        assert_eq!(prompt.handle_key(&Key::Esc), PromptOutcome::Cancelled);
    }

    #[test]
    fn input_is_bounded_and_utf8_safe() {
        let mut prompt = Prompt::new("x", "");
        for _ in 0..2 * MAX_INPUT {
            prompt.handle_key(&Key::Char('é'));
        }
        assert!(prompt.text.len() <= MAX_INPUT);
        prompt.handle_key(&Key::Left);
        prompt.handle_key(&Key::Backspace);
        assert!(prompt.text.chars().all(|c| c == 'é'));
        let mut password = Prompt::masked("password");
        typed(&mut password, &[Key::Char('a'), Key::Char('b')]);
        assert_eq!(password.shown(), "**");
    }
}
