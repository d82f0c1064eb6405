//! `compare`: what a candidate changes against the running config, as `- line` / `+ line` of the
//! TOML text under context headers, so an operator sees where each change is:
//!
//! ```text
//! [[vrrp]] name = "web_vip"
//! - priority = 100
//! + priority = 150
//! [[virtual_services]] name = "http"
//! [[virtual_services.real_servers]] name = "rs2"
//! - weight = 1
//! + weight = 5
//! + [[virtual_services.real_servers]]
//! + name = "rs3"
//! + address = "10.0.1.13"
//! ```
//!
//! The diff is structural rather than a text diff, so it stays linear in the config size (a line
//! LCS over the ~100k lines of a 1000 x 10 config is quadratic): top-level sections and list items
//! are compared as model values first, and only changed ones are rendered. List items are matched
//! by identity, as edit paths name them: `name`, else `address` (and `port`), else a virtual
//! service's `fwmark` or address/port/protocol, else the whole item (a changed one shows as removed
//! plus added). Inside a changed item, fields are compared key by key in model order.

use core::net::IpAddr;
use std::fmt;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use serde::Serialize;

use crate::impact::pair_by;
use crate::model::{Config, VirtualService};
use crate::tree::{field, quote, Node};

/// The changes from `running` to `candidate`: header lines (starting with `[`) give the context,
/// `- ` lines are removed, `+ ` lines added. Empty when the configs are equal.
pub fn compare(running: &Config, candidate: &Config) -> Vec<String> {
    let mut diff = Diff::default();
    if running == candidate {
        return diff.lines;
    }
    // Destructured so that a new top-level field does not compile until it is compared.
    let Config {
        system,
        management,
        peer_link,
        notify,
        interfaces,
        bonds,
        vrrp,
        sync_groups,
        virtual_services,
        fwmark_rules,
        nat_gateway,
        real_server,
        clusterip,
        pair,
        tls_trust,
    } = candidate;
    let old = running;
    diff.section("system", Some(&old.system), Some(system));
    diff.section("management", Some(&old.management), Some(management));
    diff.section("peer_link", old.peer_link.as_ref(), peer_link.as_ref());
    diff.section("notify", old.notify.as_ref(), notify.as_ref());
    diff.list("interfaces", &old.interfaces, interfaces, |i| {
        Id::Name(&i.name)
    });
    diff.list("bonds", &old.bonds, bonds, |b| Id::Name(&b.name));
    diff.list("vrrp", &old.vrrp, vrrp, |v| Id::Name(&v.name));
    diff.list("sync_groups", &old.sync_groups, sync_groups, |g| {
        Id::Name(&g.name)
    });
    let services = &old.virtual_services;
    diff.list("virtual_services", services, virtual_services, service_id);
    let whole = |rule: &_| Id::Whole(format!("{rule:?}"));
    diff.list("fwmark_rules", &old.fwmark_rules, fwmark_rules, whole);
    diff.section(
        "nat_gateway",
        old.nat_gateway.as_ref(),
        nat_gateway.as_ref(),
    );
    diff.section(
        "real_server",
        old.real_server.as_ref(),
        real_server.as_ref(),
    );
    diff.list("clusterip", &old.clusterip, clusterip, |c| {
        Id::Name(&c.name)
    });
    diff.section("pair", old.pair.as_ref(), pair.as_ref());
    diff.list("tls_trust", &old.tls_trust, tls_trust, |t| {
        Id::Name(&t.name)
    });
    diff.lines
}

/// How a top-level list item is matched (cheaply, before anything is rendered) and named.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Id<'a> {
    Name(&'a str),
    Fwmark(u32),
    Endpoint(Option<IpAddr>, u16, &'static str),
    /// No identity: the item is known by its whole content.
    Whole(String),
}

impl Id<'_> {
    /// What the context header shows after `[[list]]`.
    fn header(&self) -> Option<String> {
        match self {
            Id::Name(name) if !name.is_empty() => Some(format!("name = {}", quote(name))),
            Id::Name(_) | Id::Whole(_) => None,
            Id::Fwmark(mark) => Some(format!("fwmark = {mark}")),
            Id::Endpoint(address, port, protocol) => Some(format!(
                "address = {}, port = {port}, protocol = {}",
                quote(&address.map(|a| a.to_string()).unwrap_or_default()),
                quote(protocol),
            )),
        }
    }
}

fn service_id(service: &VirtualService) -> Id<'_> {
    match (service.name.as_str(), service.fwmark) {
        ("", Some(mark)) => Id::Fwmark(mark),
        ("", None) => Id::Endpoint(service.address, service.port, service.protocol.as_str()),
        (name, _) => Id::Name(name),
    }
}

/// Identity of an item of a nested list (see the module doc), from its rendered fields.
fn identity(item: &Node) -> Option<String> {
    let text = |key: &str| match field(item.fields(), key, 0) {
        Some(Node::Plain(text)) if text != "\"\"" => Some(text),
        _ => None,
    };
    if let Some(name) = text("name") {
        return Some(format!("name = {name}"));
    }
    let address = text("address")?;
    Some(match text("port") {
        Some(port) => format!("address = {address}, port = {port}"),
        None => format!("address = {address}"),
    })
}

type Fields = [(&'static str, Node)];

/// Items with their identity, or their whole content when they have none.
fn keyed(items: &[Node]) -> Vec<(Result<String, String>, &Node)> {
    let key = |item: &Node| identity(item).ok_or_else(|| item.to_string());
    items.iter().map(|item| (key(item), item)).collect()
}

fn both_tables(old: &Node, new: &Node) -> bool {
    matches!((old, new), (Node::Table(_), Node::Table(_)))
}

fn list_items(node: Option<&Node>) -> &[Node] {
    node.map_or(&[], Node::items)
}

/// The output and the context headers not yet printed.
#[derive(Debug, Default)]
struct Diff {
    lines: Vec<String>,
    context: Vec<String>,
    printed: usize,
}

impl Diff {
    fn emit(&mut self, sign: char, text: fmt::Arguments<'_>) {
        for header in self.context.iter().skip(self.printed) {
            self.lines.push(header.clone());
        }
        self.printed = self.context.len();
        self.lines.push(format!("{sign} {text}"));
    }

    fn within(&mut self, header: String, body: impl FnOnce(&mut Diff)) {
        self.context.push(header);
        body(self);
        self.context.pop();
        self.printed = self.printed.min(self.context.len());
    }

    /// A top-level table (`[system]`) or optional table (`[peer_link]`).
    fn section<T: Serialize + PartialEq>(&mut self, key: &str, old: Option<&T>, new: Option<&T>) {
        if old == new {
            return;
        }
        let header = format!("[{key}]");
        match (old.map(Node::of), new.map(Node::of)) {
            (Some(old), Some(new)) => {
                self.within(header, |diff| diff.tables(key, old.fields(), new.fields()));
            }
            (Some(old), None) => self.render('-', &header, key, old.fields()),
            (None, Some(new)) => self.render('+', &header, key, new.fields()),
            (None, None) => {}
        }
    }

    /// A top-level list, compared as model values before anything is rendered.
    fn list<'a, T: Serialize + PartialEq>(
        &mut self,
        key: &str,
        old: &'a [T],
        new: &'a [T],
        id: impl Fn(&'a T) -> Id<'a>,
    ) {
        if old == new {
            return;
        }
        let header = format!("[[{key}]]");
        for pair in pair_by(old, new, &id) {
            match pair {
                (Some(old), Some(new)) if old == new => {}
                (Some(old), Some(new)) => {
                    let context = id(new)
                        .header()
                        .map_or_else(|| header.clone(), |id| format!("{header} {id}"));
                    let (old, new) = (Node::of(old), Node::of(new));
                    self.within(context, |diff| diff.tables(key, old.fields(), new.fields()));
                }
                (Some(old), None) => self.render('-', &header, key, Node::of(old).fields()),
                (None, Some(new)) => self.render('+', &header, key, Node::of(new).fields()),
                (None, None) => {}
            }
        }
    }

    /// Two versions of one table at `path`: plain values first, then nested tables and lists of
    /// tables, each in model order (removed keys after the kept ones).
    fn tables(&mut self, path: &str, old: &Fields, new: &Fields) {
        let mut entries: Vec<(&str, Option<&Node>, Option<&Node>)> = new
            .iter()
            .enumerate()
            .map(|(at, (key, node))| (*key, field(old, key, at), Some(node)))
            .collect();
        let removed = old
            .iter()
            .enumerate()
            .filter(|(at, (key, _))| field(new, key, *at).is_none());
        entries.extend(removed.map(|(_, (key, node))| (*key, Some(node), None)));
        let nested = |old: Option<&Node>, new: Option<&Node>| {
            old.is_some_and(Node::is_nested) || new.is_some_and(Node::is_nested)
        };
        for &(key, old, new) in entries.iter().filter(|(_, o, n)| !nested(*o, *n)) {
            if old != new {
                if let Some(old) = old {
                    self.emit('-', format_args!("{key} = {old}"));
                }
                if let Some(new) = new {
                    self.emit('+', format_args!("{key} = {new}"));
                }
            }
        }
        for &(key, old, new) in entries.iter().filter(|(_, o, n)| nested(*o, *n)) {
            if old == new {
                continue;
            }
            let child = format!("{path}.{key}");
            match (old, new) {
                (Some(old @ Node::Table(_)), Some(new @ Node::Table(_))) => {
                    let (old, new) = (old.fields(), new.fields());
                    self.within(format!("[{child}]"), |diff| diff.tables(&child, old, new));
                }
                (old, new) => {
                    if let Some(old) = old.filter(|node| !matches!(node, Node::List(_))) {
                        self.whole('-', &child, key, old);
                    }
                    if let Some(new) = new.filter(|node| !matches!(node, Node::List(_))) {
                        self.whole('+', &child, key, new);
                    }
                    self.items(&child, list_items(old), list_items(new));
                }
            }
        }
    }

    /// A nested list of tables, items matched by identity.
    fn items(&mut self, path: &str, old: &[Node], new: &[Node]) {
        let header = format!("[[{path}]]");
        let (old, new) = (keyed(old), keyed(new));
        for pair in pair_by(&old, &new, |(key, _)| key) {
            match pair {
                (Some((_, old)), Some((_, new))) if old == new => {}
                (Some((_, old)), Some((key, new))) if both_tables(old, new) => {
                    let context = match key {
                        Ok(id) => format!("{header} {id}"),
                        Err(_) => header.clone(),
                    };
                    self.within(context, |diff| {
                        diff.tables(path, old.fields(), new.fields())
                    });
                }
                (old, new) => {
                    if let Some((_, old)) = old {
                        self.render('-', &header, path, old.fields());
                    }
                    if let Some((_, new)) = new {
                        self.render('+', &header, path, new.fields());
                    }
                }
            }
        }
    }

    /// One side of a key whose other side is a table: a table (`[path.key]`) or a plain value.
    fn whole(&mut self, sign: char, child: &str, key: &str, node: &Node) {
        match node {
            Node::Table(fields) => self.render(sign, &format!("[{child}]"), child, fields),
            plain => self.emit(sign, format_args!("{key} = {plain}")),
        }
    }

    /// A whole table added or removed, as TOML lines under its header.
    fn render(&mut self, sign: char, header: &str, path: &str, fields: &Fields) {
        self.emit(sign, format_args!("{header}"));
        for (key, node) in fields.iter().filter(|(_, node)| !node.is_nested()) {
            self.emit(sign, format_args!("{key} = {node}"));
        }
        for (key, node) in fields.iter().filter(|(_, node)| node.is_nested()) {
            let child = format!("{path}.{key}");
            match node {
                Node::Table(inner) => self.render(sign, &format!("[{child}]"), &child, inner),
                list => {
                    for item in list.items() {
                        self.render(sign, &format!("[[{child}]]"), &child, item.fields());
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::edit::{delete, set};
    use crate::text;

    fn sample() -> Config {
        text::from_toml(include_str!("../tests/data/live.toml")).unwrap()
    }

    #[test]
    fn equal_configs_have_no_lines() {
        assert!(compare(&sample(), &sample()).is_empty());
    }

    #[test]
    fn changes_are_grouped_under_their_item() {
        let running = sample();
        let candidate = set(&running, "vrrp.web_vip.priority", "150").unwrap();
        let candidate = set(&candidate, "vrrp.web_vip.garp.master_delay_s", "2").unwrap();
        let candidate = set(&candidate, "system.hostname", "box-b").unwrap();
        let candidate = set(
            &candidate,
            "virtual_services.http.real_servers.rs2.weight",
            "5",
        )
        .unwrap();
        let candidate = set(
            &candidate,
            "virtual_services.http.real_servers.rs3.address",
            "10.0.1.13",
        )
        .unwrap();
        let candidate = delete(&candidate, "virtual_services.http.real_servers.rs1").unwrap();
        assert_eq!(
            compare(&running, &candidate),
            [
                "[system]",
                "- hostname = \"box-a\"",
                "+ hostname = \"box-b\"",
                "[[vrrp]] name = \"web_vip\"",
                "- priority = 100",
                "+ priority = 150",
                "[vrrp.garp]",
                "- master_delay_s = 5",
                "+ master_delay_s = 2",
                "[[virtual_services]] name = \"http\"",
                "- [[virtual_services.real_servers]]",
                "- name = \"rs1\"",
                "- address = \"10.0.1.11\"",
                "- weight = 1",
                "- active = true",
                "- upper_threshold = 0",
                "- lower_threshold = 0",
                "- more_checks = []",
                "[[virtual_services.real_servers]] name = \"rs2\"",
                "- weight = 1",
                "+ weight = 5",
                "+ [[virtual_services.real_servers]]",
                "+ name = \"rs3\"",
                "+ address = \"10.0.1.13\"",
                "+ weight = 1",
                "+ active = true",
                "+ upper_threshold = 0",
                "+ lower_threshold = 0",
                "+ more_checks = []",
            ]
        );
    }

    #[test]
    fn added_and_removed_sections_and_items() {
        let running = sample();
        let candidate = set(&running, "peer_link.ipvs_sync", "true").unwrap();
        let lines = compare(&running, &candidate);
        assert_eq!(lines.first().map(String::as_str), Some("+ [peer_link]"));
        assert!(
            lines.contains(&String::from("+ ipvs_sync = true")),
            "{lines:?}"
        );
        let back = compare(&candidate, &running);
        assert!(back.iter().all(|l| l.starts_with("- ")), "{back:?}");

        let candidate = delete(&running, "vrrp.web_vip").unwrap();
        let lines = compare(&running, &candidate);
        assert_eq!(&lines[..2], ["- [[vrrp]]", "- name = \"web_vip\""]);
        assert!(
            lines.contains(&String::from("- [[vrrp.vips]]")),
            "{lines:?}"
        );
        assert!(lines.contains(&String::from("- [vrrp.garp]")), "{lines:?}");
    }

    #[test]
    fn plain_lists_and_items_by_address() {
        let running = sample();
        let candidate = set(&running, "vrrp.web_vip.vips.10.0.0.11.prefix", "24").unwrap();
        let candidate = set(&candidate, "vrrp.web_vip.unicast_peers", "10.0.0.4").unwrap();
        assert_eq!(
            compare(&running, &candidate),
            [
                "[[vrrp]] name = \"web_vip\"",
                "- unicast_peers = [\"10.0.0.3\"]",
                "+ unicast_peers = [\"10.0.0.3\", \"10.0.0.4\"]",
                "[[vrrp.vips]] address = \"10.0.0.11\"",
                "- prefix = 32",
                "+ prefix = 24",
            ]
        );
    }

    #[test]
    fn unnamed_services_match_by_address_port_protocol() {
        let mut running = sample();
        running.virtual_services.as_mut_slice()[0].name = crate::model::Name::new();
        let candidate = set(&running, "virtual_services.#0.scheduler", "rr").unwrap();
        assert_eq!(
            compare(&running, &candidate),
            [
                "[[virtual_services]] address = \"10.0.0.10\", port = 80, protocol = \"tcp\"",
                "- scheduler = \"wlc\"",
                "+ scheduler = \"rr\"",
            ]
        );
    }
}
