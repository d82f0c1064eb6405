//! Console commands: the line protocol on the serial console until the TUI owns it.
//!
//! Parsing is pure so every keystroke sequence can be tested; the daemon executes the parsed
//! [`Command`]. Anything unrecognised gets an answer that says what is accepted.

/// A request typed on the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Help,
    /// Print the status block.
    Status,
    /// Print the in-memory log ring.
    Log,
    /// Probe the peer cable now.
    Peer,
    /// Clean power-off (appliance) or stop (run mode).
    Poweroff,
    /// Clean reboot (appliance only).
    Reboot,
    /// An empty line: nothing to do.
    Nothing,
    /// `<engine> status`: an engine's status text.
    EngineStatus(&'static str),
}

/// The engines that answer `<engine> status`.
pub const ENGINES: [&str; 3] = ["vrrp", "lvs", "realserver"];

/// Help text listing every command.
pub const HELP: &str =
    "commands: status | log | peer | vrrp status | lvs status | realserver status | poweroff | reboot | help";

/// Why a console line was not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCommand(pub String);

impl core::fmt::Display for UnknownCommand {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "unknown command `{}`; {HELP}", self.0)
    }
}

/// Parses one console line. Control characters and surrounding blanks are ignored, so a
/// terminal's `\r\n` or a stray escape byte does not change the meaning.
pub fn parse(line: &str) -> Result<Command, UnknownCommand> {
    let cleaned: String = line.chars().filter(|c| !c.is_control()).collect();
    let word = cleaned.trim();
    let lower = word.to_ascii_lowercase();
    let words: Vec<&str> = lower.split_whitespace().collect();
    if let [engine, "status"] = words.as_slice() {
        if let Some(name) = ENGINES.iter().find(|known| *known == engine) {
            return Ok(Command::EngineStatus(name));
        }
    }
    match lower.as_str() {
        "" => Ok(Command::Nothing),
        "help" | "?" => Ok(Command::Help),
        "status" => Ok(Command::Status),
        "log" => Ok(Command::Log),
        "peer" => Ok(Command::Peer),
        "poweroff" | "halt" => Ok(Command::Poweroff),
        "reboot" => Ok(Command::Reboot),
        _ => Err(UnknownCommand(word.chars().take(40).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_terminal_noise() {
        assert_eq!(parse("status\r\n"), Ok(Command::Status));
        assert_eq!(parse("  POWEROFF "), Ok(Command::Poweroff));
        assert_eq!(parse("\x1bstatus"), Ok(Command::Status));
        assert_eq!(parse(""), Ok(Command::Nothing));
        assert_eq!(parse("?"), Ok(Command::Help));
        assert_eq!(parse("vrrp  STATUS\r"), Ok(Command::EngineStatus("vrrp")));
        assert_eq!(parse("lvs status"), Ok(Command::EngineStatus("lvs")));
        assert!(parse("ospf status").is_err());
        assert!(parse("vrrp").is_err());
    }

    #[test]
    fn unknown_input_is_named_and_bounded() {
        let error = parse("rm -rf /").unwrap_err();
        assert!(error.to_string().contains("`rm -rf /`"));
        assert!(error.to_string().contains("status"));
        let long = "x".repeat(10_000);
        assert_eq!(parse(&long).unwrap_err().0.len(), 40);
        assert!(parse("\u{fffd}\u{0}\u{7f}ü").is_err());
    }
}
