//! RFC 5424 syslog messages and their framing, as pure functions of a log line: no socket, no
//! clock. The forwarder ([`super`]) calls them once per line and target.
//!
//! A line becomes `<PRI>1 TIMESTAMP HOSTNAME tandem - MSGID - MSG`:
//! - PRI is the target's facility times 8 plus the line's severity.
//! - TIMESTAMP is RFC 3339 UTC with microseconds when SNTP vouched for the clock as the line
//!   was logged, else the NILVALUE `-`: RFC 5424 section 6.2.3 asks for `-` when the sender
//!   has no time, and an unsynchronised appliance clock (whatever its RTC said at boot, 1970
//!   or 2000 with a dead battery) is worse than none: the receiver stamps such lines with its
//!   own time of receipt, which is close.
//! - HOSTNAME is the box's name (PRINTUSASCII, at most 255 octets; [`hostname_field`]).
//! - APP-NAME `tandem`, PROCID and STRUCTURED-DATA the NILVALUE.
//! - MSGID is the line's subsystem, the text before its first `: ` (`vrrp`, `lvs`, `config`,
//!   `pair-heartbeat`) when that is a short lowercase word or two, else `-`.
//! - MSG is the whole line's text (subsystem included, as the console shows it), control
//!   characters replaced by spaces, UTF-8 after a BOM when it is not plain ASCII (section
//!   6.4), cut at a character boundary so the message fits `max` octets.
//!
//! UDP sends each message as one datagram (RFC 5426) of at most [`UDP_MAX`] octets; TCP frames
//! each with RFC 6587 octet counting (`LEN SP MESSAGE`) at most [`TCP_MAX`] octets.

use std::time::Duration;

use crate::wallclock::Rfc3339;

/// The largest datagram sent: an IPv6 receiver must take 1180 octets (RFC 5426 section 3.2),
/// and a message of that size fits an unfragmented datagram on any IPv4 or IPv6 path with an
/// MTU of 1280 or more.
pub const UDP_MAX: usize = 1180;
/// The largest message sent over TCP: every receiver must take 2048 octets (RFC 5425 section
/// 4.3.1, the framing RFC 6587 shares).
pub const TCP_MAX: usize = 2048;
/// The APP-NAME of every message.
pub const APP_NAME: &str = "tandem";
/// The longest MSGID (RFC 5424).
const MSGID_MAX: usize = 32;
/// The longest HOSTNAME (RFC 5424).
const HOSTNAME_MAX: usize = 255;
/// The UTF-8 byte order mark that says MSG is UTF-8.
const BOM: &[u8] = b"\xEF\xBB\xBF";

/// What one message says.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    /// The facility's code (0..=23).
    pub facility: u8,
    /// The severity's code (0..=7).
    pub severity: u8,
    /// When the line was logged (since the Unix epoch), if the clock was synchronised then.
    pub timestamp: Option<Duration>,
    /// The HOSTNAME field, already made valid by [`hostname_field`].
    pub hostname: &'a str,
    /// The line's text.
    pub text: &'a str,
}

/// `name` as a valid HOSTNAME: printable US-ASCII only (anything else becomes `-`), at most 255
/// octets; the NILVALUE `-` when empty.
pub fn hostname_field(name: &str) -> String {
    let field: String = name
        .chars()
        .take(HOSTNAME_MAX)
        .map(|c| if c.is_ascii_graphic() { c } else { '-' })
        .collect();
    if field.is_empty() {
        "-".to_owned()
    } else {
        field
    }
}

/// The MSGID of `text`: its subsystem prefix (before the first `: `) when that is 1 to 32
/// lowercase letters, digits, `_`, `-` or spaces (written as `-`), else None (NILVALUE).
fn msgid(text: &str) -> Option<&str> {
    let (prefix, _) = text.split_once(": ")?;
    let fits = !prefix.is_empty()
        && prefix.len() <= MSGID_MAX
        && prefix
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_- ".contains(&b));
    fits.then_some(prefix)
}

/// Appends the RFC 5424 message for `fields` to `out`, at most `max` octets of it (the header
/// is never cut; MSG is cut at a character boundary). Returns the message's length.
pub fn message(out: &mut Vec<u8>, fields: &Fields<'_>, max: usize) -> usize {
    use std::io::Write as _;
    let start = out.len();
    let pri = u16::from(fields.facility.min(23)) * 8 + u16::from(fields.severity.min(7));
    let _ = write!(out, "<{pri}>1 ");
    match fields.timestamp {
        Some(since_epoch) => {
            let _ = write!(
                out,
                "{}",
                Rfc3339 {
                    since_epoch,
                    digits: 6
                }
            );
        }
        None => out.push(b'-'),
    }
    let _ = write!(out, " {} {APP_NAME} - ", fields.hostname);
    match msgid(fields.text) {
        Some(id) => out.extend(id.bytes().map(|b| if b == b' ' { b'-' } else { b })),
        None => out.push(b'-'),
    }
    out.extend_from_slice(b" -");
    if !fields.text.is_empty() {
        out.push(b' ');
        if !fields.text.is_ascii() {
            out.extend_from_slice(BOM);
        }
        let room = max.saturating_sub(out.len() - start);
        let mut cut = fields.text.len().min(room);
        while !fields.text.is_char_boundary(cut) {
            cut -= 1;
        }
        let text = fields.text.get(..cut).unwrap_or_default();
        out.extend(
            text.bytes()
                .map(|b| if b < 0x20 || b == 0x7f { b' ' } else { b }),
        );
    }
    out.len() - start
}

/// Appends `message` to `out` with RFC 6587 octet-counting framing: its length in decimal, a
/// space, the message.
pub fn octet_counted(out: &mut Vec<u8>, message: &[u8]) {
    use std::io::Write as _;
    let _ = write!(out, "{} ", message.len());
    out.extend_from_slice(message);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(text: &str) -> Fields<'_> {
        Fields {
            facility: 3,
            severity: 4,
            timestamp: Some(Duration::new(1_796_295_662, 123_456_789)),
            hostname: "box-a",
            text,
        }
    }

    fn text(fields: &Fields<'_>, max: usize) -> String {
        let mut out = Vec::new();
        let len = message(&mut out, fields, max);
        assert_eq!(len, out.len());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_line_becomes_an_rfc5424_message() {
        assert_eq!(
            text(
                &fields("vrrp: web: BACKUP -> MASTER: master silent"),
                UDP_MAX
            ),
            "<28>1 2026-12-03T11:01:02.123456Z box-a tandem - vrrp - \
             vrrp: web: BACKUP -> MASTER: master silent"
        );
        let unsynced = Fields {
            timestamp: None,
            facility: 23,
            severity: 7,
            ..fields("pair heartbeat: partner up on peer")
        };
        assert_eq!(
            text(&unsynced, UDP_MAX),
            "<191>1 - box-a tandem - pair-heartbeat - pair heartbeat: partner up on peer"
        );
    }

    #[test]
    fn msgid_is_the_subsystem_or_nil() {
        assert_eq!(msgid("config: generation 3 applied"), Some("config"));
        assert_eq!(msgid("tandem 0.1.0 starting as /init"), None);
        assert_eq!(msgid("PANIC in thread x: y"), None);
        assert_eq!(msgid("ready 3.2 s after /init: x"), None, "a dot");
        assert_eq!(msgid(&format!("{}: x", "a".repeat(33))), None);
        assert_eq!(msgid(": nothing before"), None);
        assert!(text(&fields("no subsystem here"), 200).contains(" tandem - - - no subsystem"));
    }

    #[test]
    fn control_characters_become_spaces_and_utf8_gets_a_bom() {
        assert!(text(&fields("lvs: a\nb\r\tc\x7f"), 200).ends_with("lvs - lvs: a b  c "));
        let mut out = Vec::new();
        message(&mut out, &fields("config: comment «new vip»"), 200);
        let bom = out.windows(3).position(|w| w == BOM).unwrap();
        assert_eq!(&out[bom - 3..bom], b" - ");
        assert!(std::str::from_utf8(&out).unwrap().ends_with("«new vip»"));
        let empty = text(&fields(""), 200);
        assert!(empty.ends_with("box-a tandem - - -"), "{empty}");
    }

    #[test]
    fn a_long_line_is_cut_to_fit_at_a_character_boundary() {
        let long = format!("lvs: {}", "é".repeat(2000));
        let mut out = Vec::new();
        let len = message(&mut out, &fields(&long), UDP_MAX);
        assert!((UDP_MAX - 1..=UDP_MAX).contains(&len), "{len}");
        assert!(std::str::from_utf8(&out).is_ok(), "cut inside a character");
        out.clear();
        let len = message(&mut out, &fields(&long), TCP_MAX);
        assert!((TCP_MAX - 1..=TCP_MAX).contains(&len), "{len}");
        // A room smaller than the header keeps the header whole and sends no text.
        out.clear();
        let len = message(&mut out, &fields("lvs: text"), 10);
        assert!(len > 10);
        assert!(std::str::from_utf8(&out).unwrap().ends_with(" lvs - "));
    }

    #[test]
    fn hostnames_are_printable_ascii_or_nil() {
        assert_eq!(hostname_field("box-a"), "box-a");
        assert_eq!(hostname_field("box a\u{e9}"), "box-a-");
        assert_eq!(hostname_field(""), "-");
        assert_eq!(hostname_field(&"x".repeat(300)).len(), 255);
    }

    #[test]
    fn octet_counting_prefixes_the_length() {
        let mut out = b"12 earlier one".to_vec();
        octet_counted(&mut out, b"<30>1 - b tandem - - - hi");
        assert_eq!(out, b"12 earlier one25 <30>1 - b tandem - - - hi");
    }
}
