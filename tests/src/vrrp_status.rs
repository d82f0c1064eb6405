//! Reading `vrrp status` answers and console transcripts of a `tandem` VRRP speaker, for the
//! host-tier and lab tests: an instance's state and status block, and its state transitions.

/// The state word of `instance` in a `vrrp status` answer, as printed (`MASTER`): the first
/// word of the `state ...` line after its `instance <name> ...` line.
pub fn instance_state<'a>(status: &'a str, instance: &str) -> Option<&'a str> {
    let header = format!("instance {instance} ");
    let mut lines = status.lines();
    while let Some(line) = lines.next() {
        if line.starts_with(&header) {
            return lines
                .next()
                .and_then(|l| l.trim().strip_prefix("state "))
                .and_then(|rest| rest.split_whitespace().next());
        }
    }
    None
}

/// The block of `instance` in a `vrrp status` answer: from its `instance <name> ` line up to
/// the end of the line before the next `instance ` line (or the end of the answer); empty when
/// the instance is not there.
pub fn instance_block<'a>(status: &'a str, instance: &str) -> &'a str {
    let start = status
        .find(&format!("instance {instance} "))
        .unwrap_or(status.len());
    let rest = status.get(start..).unwrap_or_default();
    let end = rest
        .get(1..)
        .and_then(|tail| tail.find("\ninstance "))
        .map_or(rest.len(), |at| at + 1);
    rest.get(..end).unwrap_or_default()
}

/// How many state transitions of `instance` a console transcript logs (`tandem: vrrp: web:
/// BACKUP -> MASTER: ...`); not an apply's report such as `config: vrrp: web: priority 150 ->
/// 160`.
pub fn transitions(transcript: &str, instance: &str) -> usize {
    let prefix = format!("tandem: vrrp: {instance}: ");
    transcript
        .lines()
        .filter_map(|line| line.split_once(&prefix).map(|(_, rest)| rest))
        .filter(|rest| {
            ["INIT -> ", "BACKUP -> ", "MASTER -> ", "FAULT -> "]
                .iter()
                .any(|from| rest.starts_with(from))
        })
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "vrrp: 2 instances, 1 master\n\
        instance web (v3 IPv4, eth0 VRID 51)\n  state MASTER since 1.2s\n  priority 150 (configured 150)\n\
        instance other (v3 IPv4, eth0 VRID 52)\n  state BACKUP since 0.4s\n  priority 100 (configured 100)\n";

    #[test]
    fn state_and_block_of_an_instance() {
        assert_eq!(instance_state(STATUS, "web"), Some("MASTER"));
        assert_eq!(instance_state(STATUS, "other"), Some("BACKUP"));
        assert_eq!(instance_state(STATUS, "we"), None);
        let web = instance_block(STATUS, "web");
        assert!(web.starts_with("instance web ") && web.ends_with("(configured 150)"));
        assert!(!web.contains("other"));
        assert!(instance_block(STATUS, "other").ends_with("(configured 100)\n"));
        assert_eq!(instance_block(STATUS, "missing"), "");
    }

    #[test]
    fn transitions_count_state_changes_only() {
        let transcript = "[ 1.0] tandem: vrrp: web: INIT -> BACKUP: started\n\
            [ 4.6] tandem: vrrp: web: BACKUP -> MASTER: master silent\n\
            [ 5.0] tandem: config: vrrp: web: priority 150 -> 160\n\
            [ 5.1] tandem: vrrp: other: INIT -> BACKUP: started\n";
        assert_eq!(transitions(transcript, "web"), 2);
        assert_eq!(transitions(transcript, "other"), 1);
    }
}
