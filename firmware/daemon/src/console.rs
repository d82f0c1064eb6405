//! The command language of the console, the control socket and `tandem <words>`.
//!
//! Parsing is pure so every keystroke sequence can be tested; the daemon executes the parsed
//! [`Command`]. Keywords are case-insensitive; paths, values, file names and comments keep
//! their case. Words may be quoted with `"` or `'` (a comment with blanks). Anything
//! unrecognised gets an answer that says what is accepted.

use std::time::Duration;

/// A request typed on the console or sent over the control socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Help,
    /// Print the status block.
    Status,
    /// Print the in-memory log ring.
    Log,
    /// Probe the peer cable now.
    Peer,
    /// `ping ADDRESS [COUNT]`: ICMP echo, one a second (Diagnostics).
    Ping {
        address: std::net::IpAddr,
        count: u8,
    },
    /// `neighbours`: the IPv4 neighbour table (Diagnostics).
    Neighbours,
    /// `ports`: the physical ports, their roles now and at the next boot, carrier, MAC.
    Ports,
    /// `ports assign ROLE PORT [ROLE PORT ...]`: the port map for the next boot.
    PortsAssign(Vec<(String, String)>),
    /// `ports reset`: the board profile's ports at the next boot.
    PortsReset,
    /// Clean power-off (appliance) or stop (run mode).
    Poweroff,
    /// Clean reboot (appliance only).
    Reboot,
    /// `firmware status`: the running slot, its boot counter and bless, every slot file.
    FirmwareStatus,
    /// `factory-reset`: says what a reset erases and arms it; `factory-reset confirm` within
    /// [`FACTORY_RESET_WINDOW`] erases the config and the keys and reboots (firmware kept).
    FactoryReset {
        confirm: bool,
    },
    /// `firmware install FILE`: check a signed bundle on the box and write it into the other
    /// slot (the next boot starts it).
    FirmwareInstall(String),
    /// `firmware fetch URL`: GET a bundle over HTTP into RAM and check it.
    FirmwareFetch(String),
    /// An empty line: nothing to do.
    Nothing,
    /// `<engine> status`: an engine's status text.
    EngineStatus(&'static str),
    /// `pair upgrade FILE|URL`: the rolling upgrade of the pair (the partner first).
    PairUpgrade(String),
    /// `pair upgrade status`: its step, elapsed time, last error.
    PairUpgradeStatus,
    /// `vrrp standby on|off`: maintenance mode (hand every instance over, take none).
    VrrpStandby(bool),
    /// `bond status`: every configured bond as the kernel runs it.
    BondStatus,
    /// `pair status`: pairing, replication, the pair heartbeat, the partner's report.
    PairStatus,
    /// `pair start`: show a pairing code for the other box's `pair join CODE`.
    PairStart,
    /// `pair join CODE`: pair with the box that showed CODE.
    PairJoin(String),
    /// `unpair`: forget the pair key and role (the config stays).
    Unpair,
    /// `pair adopt-peer`: take the partner's config (settles a divergence its way).
    PairAdoptPeer,
    /// `pair push`: give the partner this box's config (settles a divergence this way).
    PairPush,
    /// `pair install-partner FILE [reboot]`: send a signed bundle to the partner over the
    /// peer cable; it checks and installs it as `firmware install` (and reboots into it).
    PairInstallPartner {
        path: String,
        reboot: bool,
    },
    /// `compare peer`: this box's running config vs the partner's, as +/- lines.
    ComparePeer,
    /// `show running`: the running config as TOML.
    ShowRunning,
    /// `show candidate`: the candidate as TOML.
    ShowCandidate,
    /// `browse [PATH]`: the candidate's fields at PATH, set and unset, one per line (what the
    /// console UI lists).
    Browse(String),
    /// `load FILE`: TOML or blob into the candidate.
    Load(String),
    /// `set PATH VALUE` on the candidate.
    Set {
        path: String,
        value: String,
    },
    /// `delete PATH` on the candidate.
    Delete(String),
    /// `discard`: drop the candidate's changes.
    Discard,
    /// `compare`: candidate vs running as +/- lines.
    Compare,
    /// `preview`: what a commit would change, per engine, hitless or disruptive.
    Preview,
    /// `commit [--confirm SECONDS] [--comment TEXT]`.
    Commit {
        confirm: Option<Duration>,
        comment: String,
    },
    /// `confirm`: keep a `commit --confirm`.
    Confirm,
    /// `rollback [GENERATION]`.
    Rollback(Option<u64>),
    /// `history`: recent generations.
    History,
    /// `debug panic`: a deliberate panic, accepted only where debug commands are enabled.
    DebugPanic,
    /// `debug log COUNT`: COUNT numbered log lines at once (the remote syslog tests and bench),
    /// accepted only where debug commands are enabled.
    DebugLog(u32),
}

/// How long `factory-reset confirm` is accepted after `factory-reset`.
pub const FACTORY_RESET_WINDOW: Duration = Duration::from_secs(60);

/// The engines that answer `<engine> status`.
pub const ENGINES: [&str; 4] = ["vrrp", "lvs", "realserver", "cluster"];

/// Help text listing every command.
pub const HELP: &str =
    "commands: status | log | peer | ping ADDRESS [COUNT] | neighbours
          ports | ports assign ROLE PORT [ROLE PORT ...] | ports reset
          vrrp status | lvs status | realserver status | bond status | cluster status
          vrrp standby on|off
  pair:   pair status | pair start | pair join CODE | unpair | pair adopt-peer | pair push
          compare peer | pair install-partner FILE [reboot] | pair upgrade FILE|URL | pair upgrade status
  config: show running | show candidate | browse [PATH] | load FILE | set PATH VALUE | delete PATH | discard
          compare | preview | commit [--confirm SECONDS] [--comment TEXT] | confirm
          rollback [GENERATION] | history
  box:    firmware status | firmware fetch URL | firmware install FILE | factory-reset
          poweroff | reboot | help";

const STANDBY_USAGE: &str = "usage: vrrp standby on|off (on: every master hands over with \
     priority 0 and no instance becomes master; off: resume)";

/// Why a line was not understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownCommand(pub String);

impl core::fmt::Display for UnknownCommand {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}\n{HELP}", self.0)
    }
}

fn unknown(what: &str) -> UnknownCommand {
    let shown: String = what.chars().take(40).collect();
    UnknownCommand(format!("unknown command `{shown}`"))
}

fn usage(message: &str) -> UnknownCommand {
    UnknownCommand(message.to_owned())
}

/// Splits a line into words; `"..."` and `'...'` keep blanks inside one word.
pub fn split_words(line: &str) -> Result<Vec<String>, UnknownCommand> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => current.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(usage("unclosed quote: close it or leave it out"));
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

/// Joins words into one line that [`split_words`] splits back the same way (the CLI sends its
/// arguments to the daemon as one line).
pub fn join_words(words: &[String]) -> String {
    words
        .iter()
        .map(|word| {
            if word.is_empty() || word.contains(char::is_whitespace) {
                if word.contains('"') {
                    format!("'{word}'")
                } else {
                    format!("\"{word}\"")
                }
            } else {
                word.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Parses one line (already free of control characters: see `console_reader`).
pub fn parse(line: &str) -> Result<Command, UnknownCommand> {
    if let Some(set) = parse_set(line.trim()) {
        return set;
    }
    let words = split_words(line.trim())?;
    let Some(first) = words.first() else {
        return Ok(Command::Nothing);
    };
    let keyword = first.to_ascii_lowercase();
    let second = words.get(1).map(|w| w.to_ascii_lowercase());
    let rest = words.get(1..).unwrap_or_default();
    match (keyword.as_str(), second.as_deref(), rest.len()) {
        ("help" | "?", _, 0) => Ok(Command::Help),
        ("status", _, 0) => Ok(Command::Status),
        ("log", _, 0) => Ok(Command::Log),
        ("peer", _, 0) => Ok(Command::Peer),
        ("neighbours" | "neighbors" | "arp", _, 0) => Ok(Command::Neighbours),
        ("ping", _, 1 | 2) => {
            let address = rest[0].parse().map_err(|_| {
                usage(&format!(
                    "ping: `{}` is not an IP address; usage: ping ADDRESS [COUNT]",
                    rest[0]
                ))
            })?;
            let count = match rest.get(1) {
                None => 3,
                Some(count) => count
                    .parse::<u8>()
                    .ok()
                    .filter(|n| (1..=10).contains(n))
                    .ok_or_else(|| usage("ping: COUNT is 1 to 10"))?,
            };
            Ok(Command::Ping { address, count })
        }
        ("ping", _, _) => Err(usage("usage: ping ADDRESS [COUNT], e.g. ping 192.0.2.21 3")),
        ("bond" | "bonds", Some("status"), 1) => Ok(Command::BondStatus),
        ("bond" | "bonds", _, _) => Err(usage("usage: bond status")),
        ("ports", None, 0) => Ok(Command::Ports),
        ("ports", Some("reset"), 1) => Ok(Command::PortsReset),
        ("ports", Some("assign"), n) if n >= 3 && n % 2 == 1 => Ok(Command::PortsAssign(
            words[2..]
                .chunks_exact(2)
                .map(|pair| (pair[0].clone(), pair[1].clone()))
                .collect(),
        )),
        ("ports", _, _) => Err(usage(
            "usage: ports | ports assign ROLE PORT [ROLE PORT ...] | ports reset, e.g. ports \
             assign public 0000:00:04.0 (PORT: its id, name or MAC from `ports`)",
        )),
        ("poweroff" | "halt", _, 0) => Ok(Command::Poweroff),
        ("reboot", _, 0) => Ok(Command::Reboot),
        ("factory-reset", None, 0) => Ok(Command::FactoryReset { confirm: false }),
        ("factory-reset", Some("confirm"), 1) => Ok(Command::FactoryReset { confirm: true }),
        ("factory-reset", _, _) => Err(usage(
            "usage: factory-reset (says what it erases), then factory-reset confirm",
        )),
        ("firmware", Some("status"), 1) => Ok(Command::FirmwareStatus),
        ("firmware", Some("install"), 2) => Ok(Command::FirmwareInstall(words[2].clone())),
        ("firmware", Some("fetch"), 2) => Ok(Command::FirmwareFetch(words[2].clone())),
        ("firmware", _, _) => Err(usage(
            "usage: firmware status | firmware fetch URL (http://ADDRESS[:PORT]/PATH) | \
             firmware install FILE (a signed .bundle on this box, e.g. /run/tandem/fetched.bundle)",
        )),
        ("show", Some("running"), 1) => Ok(Command::ShowRunning),
        ("show", Some("candidate"), 1) => Ok(Command::ShowCandidate),
        ("show", _, _) => Err(usage("usage: show running | show candidate")),
        ("browse", None, 0) => Ok(Command::Browse(String::new())),
        ("browse", _, 1) => Ok(Command::Browse(rest[0].clone())),
        ("browse", _, _) => Err(usage("usage: browse [PATH], e.g. browse vrrp.web_vip")),
        ("load", _, 1) => Ok(Command::Load(rest[0].clone())),
        ("load", _, _) => Err(usage("usage: load FILE (TOML text or a config blob)")),
        ("delete", _, 1) => Ok(Command::Delete(rest[0].clone())),
        ("delete", _, _) => Err(usage("usage: delete PATH, e.g. delete vrrp.web_vip")),
        ("discard", _, 0) => Ok(Command::Discard),
        ("compare", _, 0) => Ok(Command::Compare),
        ("preview", _, 0) => Ok(Command::Preview),
        ("commit", _, _) => parse_commit(rest),
        ("confirm", _, 0) => Ok(Command::Confirm),
        ("rollback", _, 0) => Ok(Command::Rollback(None)),
        ("rollback", Some(n), 1) => n
            .parse()
            .map(|g| Command::Rollback(Some(g)))
            .map_err(|_| usage("usage: rollback [GENERATION] (a number from `history`)")),
        ("history", _, 0) => Ok(Command::History),
        ("debug", Some("panic"), 1) => Ok(Command::DebugPanic),
        ("debug", Some("log"), 2) => words[2]
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=100_000).contains(n))
            .map(Command::DebugLog)
            .ok_or_else(|| usage("usage: debug log COUNT (1 to 100000 lines)")),
        ("pair", Some("status"), 1) => Ok(Command::PairStatus),
        ("pair", Some("start"), 1) => Ok(Command::PairStart),
        ("pair", Some("join"), 2) => Ok(Command::PairJoin(words[2].clone())),
        // "pair join 1234 5678": the code as shown, with its blank.
        ("pair", Some("join"), 3) => Ok(Command::PairJoin(format!("{}{}", words[2], words[3]))),
        ("pair", Some("join"), _) => Err(usage(
            "usage: pair join CODE (the 8 digits `pair start` shows on the other box)",
        )),
        ("pair", Some("adopt-peer"), 1) => Ok(Command::PairAdoptPeer),
        ("pair", Some("push"), 1) => Ok(Command::PairPush),
        ("pair", Some("install-partner"), 2) => Ok(Command::PairInstallPartner {
            path: words[2].clone(),
            reboot: false,
        }),
        ("pair", Some("install-partner"), 3) if words[3] == "reboot" => {
            Ok(Command::PairInstallPartner {
                path: words[2].clone(),
                reboot: true,
            })
        }
        ("pair", Some("install-partner"), _) => Err(usage(
            "usage: pair install-partner FILE [reboot] (a signed .bundle on this box; the \
             partner checks and installs it, and with `reboot` starts it)",
        )),
        ("pair", Some("upgrade"), 2) if words[2].eq_ignore_ascii_case("status") => {
            Ok(Command::PairUpgradeStatus)
        }
        ("pair", Some("upgrade"), 2) => Ok(Command::PairUpgrade(words[2].clone())),
        ("pair", Some("upgrade"), _) => Err(usage(
            "usage: pair upgrade FILE|URL (a signed .bundle on this box, or http://ADDRESS[:PORT]/PATH: \
             the partner gets it and reboots first, then this box hands over and follows) | \
             pair upgrade status",
        )),
        ("pair", _, _) => Err(usage(
            "usage: pair status | pair start | pair join CODE | pair adopt-peer | pair push",
        )),
        ("unpair", _, 0) => Ok(Command::Unpair),
        ("vrrp", Some("standby"), 2) => match words[2].to_ascii_lowercase().as_str() {
            "on" => Ok(Command::VrrpStandby(true)),
            "off" => Ok(Command::VrrpStandby(false)),
            _ => Err(usage(STANDBY_USAGE)),
        },
        ("vrrp", Some("standby"), _) => Err(usage(STANDBY_USAGE)),
        ("compare", Some("peer"), 1) => Ok(Command::ComparePeer),
        (engine, Some("status"), 1) => ENGINES
            .iter()
            .find(|known| **known == engine)
            .map(|name| Command::EngineStatus(name))
            .ok_or_else(|| unknown(&words.join(" "))),
        _ => Err(unknown(&words.join(" "))),
    }
}

/// `set PATH VALUE`: the value is the raw rest of the line (a TOML value such as
/// `["10.0.0.1/24"]` keeps its quotes), so it is not split into words.
fn parse_set(line: &str) -> Option<Result<Command, UnknownCommand>> {
    let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    if !keyword.eq_ignore_ascii_case("set") {
        return None;
    }
    let rest = rest.trim_start();
    let (path, value) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let value = value.trim();
    if path.is_empty() || value.is_empty() {
        return Some(Err(usage(
            "usage: set PATH VALUE, e.g. set vrrp.web_vip.priority 150",
        )));
    }
    Some(Ok(Command::Set {
        path: path.to_owned(),
        value: value.to_owned(),
    }))
}

fn parse_commit(args: &[String]) -> Result<Command, UnknownCommand> {
    const USAGE: &str = "usage: commit [--confirm SECONDS] [--comment TEXT]";
    let mut confirm = None;
    let mut comment = String::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.to_ascii_lowercase().as_str() {
            "--confirm" | "confirm" | "confirmed" => {
                let seconds: u64 = args.next().and_then(|s| s.parse().ok()).ok_or_else(|| {
                    usage(&format!("--confirm needs a number of seconds; {USAGE}"))
                })?;
                confirm = Some(Duration::from_secs(seconds));
            }
            "--comment" | "comment" => {
                comment = args
                    .next()
                    .cloned()
                    .ok_or_else(|| usage(&format!("--comment needs a text; {USAGE}")))?;
            }
            other => {
                let shown: String = other.chars().take(40).collect();
                return Err(usage(&format!("unknown commit option `{shown}`; {USAGE}")));
            }
        }
    }
    Ok(Command::Commit { confirm, comment })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_terminal_noise() {
        assert_eq!(parse("status\r"), Ok(Command::Status));
        assert_eq!(parse("  POWEROFF "), Ok(Command::Poweroff));
        assert_eq!(
            parse("firmware install /run/tandem/Fetched.bundle"),
            Ok(Command::FirmwareInstall(
                "/run/tandem/Fetched.bundle".into()
            ))
        );
        assert_eq!(
            parse("FIRMWARE fetch http://10.0.9.1:8000/X.bundle"),
            Ok(Command::FirmwareFetch(
                "http://10.0.9.1:8000/X.bundle".into()
            ))
        );
        assert!(parse("firmware install").is_err());
        assert_eq!(parse(""), Ok(Command::Nothing));
        assert_eq!(parse("?"), Ok(Command::Help));
        assert_eq!(parse("vrrp  STATUS"), Ok(Command::EngineStatus("vrrp")));
        assert_eq!(parse("vrrp standby ON"), Ok(Command::VrrpStandby(true)));
        assert_eq!(
            parse("pair upgrade /tmp/New.bundle"),
            Ok(Command::PairUpgrade("/tmp/New.bundle".into()))
        );
        assert_eq!(parse("pair upgrade STATUS"), Ok(Command::PairUpgradeStatus));
        assert!(parse("pair upgrade")
            .unwrap_err()
            .0
            .contains("pair upgrade FILE"));
        assert_eq!(parse("vrrp standby off"), Ok(Command::VrrpStandby(false)));
        assert!(parse("vrrp standby")
            .unwrap_err()
            .0
            .contains("vrrp standby on|off"));
        assert!(parse("vrrp standby maybe").is_err());
        assert_eq!(parse("lvs status"), Ok(Command::EngineStatus("lvs")));
        assert!(parse("ospf status").is_err());
        assert!(parse("vrrp").is_err());
        assert!(parse("status now").is_err());
    }

    #[test]
    fn factory_reset_takes_a_second_confirming_line() {
        assert_eq!(
            parse("factory-reset"),
            Ok(Command::FactoryReset { confirm: false })
        );
        assert_eq!(
            parse("FACTORY-RESET Confirm"),
            Ok(Command::FactoryReset { confirm: true })
        );
        let wrong = parse("factory-reset now").unwrap_err();
        assert!(wrong.0.contains("factory-reset confirm"), "{}", wrong.0);
        assert!(HELP.contains("factory-reset"));
    }

    #[test]
    fn pair_commands_parse_as_the_issue_pins_them() {
        assert_eq!(parse("pair status"), Ok(Command::PairStatus));
        assert_eq!(parse("pair start"), Ok(Command::PairStart));
        assert_eq!(
            parse("pair join 1234-5678"),
            Ok(Command::PairJoin("1234-5678".into()))
        );
        assert_eq!(
            parse("pair join 1234 5678"),
            Ok(Command::PairJoin("12345678".into()))
        );
        assert_eq!(parse("unpair"), Ok(Command::Unpair));
        assert_eq!(parse("pair adopt-peer"), Ok(Command::PairAdoptPeer));
        assert_eq!(parse("pair push"), Ok(Command::PairPush));
        assert_eq!(
            parse("pair install-partner /run/x.bundle"),
            Ok(Command::PairInstallPartner {
                path: "/run/x.bundle".into(),
                reboot: false
            })
        );
        assert_eq!(
            parse("pair install-partner /run/x.bundle reboot"),
            Ok(Command::PairInstallPartner {
                path: "/run/x.bundle".into(),
                reboot: true
            })
        );
        assert!(parse("pair install-partner")
            .unwrap_err()
            .0
            .contains("FILE [reboot]"));
        assert!(parse("pair install-partner a now").is_err());
        assert_eq!(parse("compare peer"), Ok(Command::ComparePeer));
        assert_eq!(parse("compare"), Ok(Command::Compare));
        assert!(parse("pair join").unwrap_err().0.contains("8 digits"));
        assert!(parse("pair frobnicate").is_err());
    }

    #[test]
    fn config_commands_keep_the_case_of_their_arguments() {
        assert_eq!(parse("SHOW running"), Ok(Command::ShowRunning));
        assert_eq!(parse("show candidate"), Ok(Command::ShowCandidate));
        assert_eq!(
            parse("ping 192.0.2.21"),
            Ok(Command::Ping {
                address: "192.0.2.21".parse().unwrap(),
                count: 3
            })
        );
        assert!(parse("ping 192.0.2.21 11").is_err());
        assert!(parse("ping nowhere").is_err());
        assert_eq!(parse("neighbours"), Ok(Command::Neighbours));
        assert_eq!(parse("ports"), Ok(Command::Ports));
        assert_eq!(parse("bond status"), Ok(Command::BondStatus));
        assert!(parse("bond").is_err());
        assert_eq!(parse("PORTS reset"), Ok(Command::PortsReset));
        assert_eq!(
            parse("ports assign public 0000:00:04.0 private eth0"),
            Ok(Command::PortsAssign(vec![
                ("public".into(), "0000:00:04.0".into()),
                ("private".into(), "eth0".into())
            ]))
        );
        assert!(parse("ports assign public")
            .unwrap_err()
            .0
            .contains("ROLE PORT"));
        assert!(parse("ports assign public a private").is_err());
        assert!(parse("ports frobnicate").is_err());
        assert_eq!(parse("browse"), Ok(Command::Browse(String::new())));
        assert_eq!(
            parse("browse vrrp.web_vip"),
            Ok(Command::Browse("vrrp.web_vip".into()))
        );
        assert_eq!(
            parse("set vrrp.Web_VIP.priority 150"),
            Ok(Command::Set {
                path: "vrrp.Web_VIP.priority".into(),
                value: "150".into()
            })
        );
        assert_eq!(
            parse("set system.hostname \"box a\""),
            Ok(Command::Set {
                path: "system.hostname".into(),
                value: "\"box a\"".into()
            })
        );
        assert_eq!(
            parse("set interfaces.public.addresses [\"10.0.0.1/24\"]"),
            Ok(Command::Set {
                path: "interfaces.public.addresses".into(),
                value: "[\"10.0.0.1/24\"]".into()
            })
        );
        assert_eq!(
            parse("delete vrrp.web_vip"),
            Ok(Command::Delete("vrrp.web_vip".into()))
        );
        assert_eq!(
            parse("load /tmp/A.toml"),
            Ok(Command::Load("/tmp/A.toml".into()))
        );
        assert_eq!(
            parse("commit --confirm 5 --comment 'raise priority'"),
            Ok(Command::Commit {
                confirm: Some(Duration::from_secs(5)),
                comment: "raise priority".into()
            })
        );
        assert_eq!(
            parse("commit"),
            Ok(Command::Commit {
                confirm: None,
                comment: String::new()
            })
        );
        assert!(parse("commit --confirm").is_err());
        assert!(parse("commit --confirm soon").is_err());
        assert!(parse("commit --force").is_err());
        assert_eq!(parse("rollback"), Ok(Command::Rollback(None)));
        assert_eq!(parse("rollback 7"), Ok(Command::Rollback(Some(7))));
        assert!(parse("rollback seven").is_err());
        assert_eq!(parse("history"), Ok(Command::History));
        assert_eq!(parse("confirm"), Ok(Command::Confirm));
        assert!(parse("set onlypath").is_err());
        assert!(parse("set").is_err());
    }

    #[test]
    fn words_round_trip_through_one_line() {
        let words: Vec<String> = ["commit", "--comment", "a \"quoted\" word", "", "x"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(split_words(&join_words(&words)).unwrap(), words);
    }

    #[test]
    fn unknown_input_is_named_and_bounded() {
        let error = parse("rm -rf /").unwrap_err();
        assert!(error.to_string().contains("`rm -rf /`"));
        assert!(error.to_string().contains("status"));
        let long = "x".repeat(10_000);
        assert!(parse(&long).unwrap_err().0.len() < 80);
        assert!(parse("\u{fffd}ü").is_err());
    }
}
