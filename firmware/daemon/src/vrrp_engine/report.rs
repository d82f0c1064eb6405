//! The answer to a live apply: one line per change made, in words an operator reads in the
//! commit's answer and the log (`vrrp: web: priority 100 -> 150`, `vrrp: web: added VIP
//! 192.0.2.101`, `vrrp: instance x added`). An instance left as it was gets no line. Pure, so
//! the wording is tested without a speaker.

use tandem_vrrp::{GroupsReconciled, ParamChange};

/// A new instance.
pub fn added(name: &str) -> String {
    format!("vrrp: instance {name} added")
}

/// An instance no longer configured; `was_master`: it handed over with priority 0.
pub fn removed(name: &str, was_master: bool) -> String {
    if was_master {
        format!("vrrp: instance {name} removed (priority 0 sent)")
    } else {
        format!("vrrp: instance {name} removed")
    }
}

/// An instance that could not be applied; `kept`: the running one keeps its old settings.
pub fn refused(name: &str, reason: &str, kept: bool) -> String {
    if kept {
        format!("vrrp: {name}: error: {reason}; the running instance keeps its old settings")
    } else {
        format!("vrrp: {name}: error: {reason}; not started")
    }
}

/// The core's changes of one instance (now called `name`), one line each; a changed virtual
/// address set is one line per address.
pub fn changes(name: &str, changes: &[ParamChange]) -> Vec<String> {
    let mut out = Vec::new();
    for change in changes {
        match change {
            ParamChange::VirtualAddresses { added, removed }
                if !added.is_empty() || !removed.is_empty() =>
            {
                out.extend(added.iter().map(|a| format!("vrrp: {name}: added VIP {a}")));
                out.extend(
                    removed
                        .iter()
                        .map(|a| format!("vrrp: {name}: removed VIP {a}")),
                );
            }
            other => out.push(format!("vrrp: {name}: {other}")),
        }
    }
    out
}

/// Changes only the engine sees (see `tandem_vrrp::plan::plan_changes`), one line each.
pub fn engine_changes(name: &str, phrases: &[String]) -> Vec<String> {
    phrases
        .iter()
        .map(|phrase| format!("vrrp: {name}: {phrase}"))
        .collect()
}

/// What happened to the sync groups.
pub fn groups(groups: &GroupsReconciled) -> Vec<String> {
    let mut out = Vec::new();
    out.extend(
        groups
            .added
            .iter()
            .map(|g| format!("vrrp: sync group {g} formed")),
    );
    out.extend(
        groups
            .changed
            .iter()
            .map(|g| format!("vrrp: sync group {g}: members changed")),
    );
    out.extend(
        groups
            .removed
            .iter()
            .map(|g| format!("vrrp: sync group {g} dissolved")),
    );
    out.extend(
        groups
            .errors
            .iter()
            .map(|e| format!("vrrp: sync group error: {e}")),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;
    use tandem_vrrp::ParamError;

    #[test]
    fn one_line_per_change_in_the_operators_words() {
        let vip: IpAddr = "192.0.2.101".parse().unwrap();
        let old: IpAddr = "192.0.2.99".parse().unwrap();
        let lines = changes(
            "web_vip",
            &[
                ParamChange::Priority { from: 100, to: 150 },
                ParamChange::VirtualAddresses {
                    added: vec![vip],
                    removed: vec![old],
                },
                ParamChange::VirtualAddresses {
                    added: vec![],
                    removed: vec![],
                },
            ],
        );
        assert_eq!(
            lines,
            vec![
                "vrrp: web_vip: priority 100 -> 150",
                "vrrp: web_vip: added VIP 192.0.2.101",
                "vrrp: web_vip: removed VIP 192.0.2.99",
                "vrrp: web_vip: virtual addresses reordered",
            ]
        );
        assert_eq!(added("x"), "vrrp: instance x added");
        assert_eq!(
            removed("y", true),
            "vrrp: instance y removed (priority 0 sent)"
        );
        assert_eq!(removed("y", false), "vrrp: instance y removed");
        assert!(refused("z", "bad", true).ends_with("keeps its old settings"));
        assert!(refused("z", "bad", false).ends_with("not started"));
        assert_eq!(
            engine_changes("web", &["adverts multicast -> unicast to 192.0.2.3".into()]),
            vec!["vrrp: web: adverts multicast -> unicast to 192.0.2.3"]
        );
    }

    #[test]
    fn unchanged_groups_say_nothing() {
        let mut reconciled = GroupsReconciled {
            unchanged: vec!["ab".into()],
            ..GroupsReconciled::default()
        };
        assert!(groups(&reconciled).is_empty());
        reconciled.added.push("cd".into());
        reconciled
            .errors
            .push(ParamError::DuplicateSyncGroup { group: "ef".into() });
        assert_eq!(
            groups(&reconciled),
            vec![
                "vrrp: sync group cd formed".to_owned(),
                "vrrp: sync group error: sync group ef is configured twice; give each group its own name"
                    .to_owned(),
            ]
        );
    }
}
