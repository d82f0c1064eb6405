//! keepalived.conf export.
//!
//! keepalived.conf describes one box. A pair config is exported as one file per box
//! ([`export_pair`]): each is box `role`'s own config ([`Config::for_box`]) exported as a single
//! box, named [`pair_file_name`] in the output directory. Importing the two files as a pair
//! (`import::import_pair`) gives the pair config back.

use std::fmt::Write as _;
use std::format;
use std::string::String;
use std::vec::Vec;

use core::net::IpAddr;

use super::{seconds, Exported, Notes};
use crate::model::{
    Check, CheckKind, Config, HttpBody, HttpUrl, InitialState, OnFailure, RealServer, Role,
    TrackedCheck, VirtualService, VrrpAuth, VrrpInstance, VrrpVersion,
};
use crate::net::{prefix_to_netmask, Family};

/// The name of box `role`'s file when a pair config is exported to a directory:
/// `a.keepalived.conf`, `b.keepalived.conf`.
pub fn pair_file_name(role: Role) -> String {
    format!("{role}.keepalived.conf")
}

/// Box `role`'s keepalived.conf: `config.for_box(role)` exported as a single box (for a config
/// without halves, the config itself).
pub fn export_box(config: &Config, role: Role) -> Exported {
    export(&config.for_box(role))
}

/// Both boxes' keepalived.conf of a pair config, box a first.
pub fn export_pair(config: &Config) -> [(Role, Exported); 2] {
    Role::BOTH.map(|role| (role, export_box(config, role)))
}

/// Writes `config` as keepalived.conf. Of a pair config this is the shared part only (noted):
/// use [`export_pair`] or [`export_box`] for the boxes' files.
pub fn export(config: &Config) -> Exported {
    let mut out = String::new();
    let mut notes = Notes::default();
    global_defs(config, &mut out);
    for group in &config.sync_groups {
        let _ = writeln!(out, "vrrp_sync_group {} {{\n    group {{", group.name);
        for member in &group.members {
            let _ = writeln!(out, "        {member}");
        }
        let _ = writeln!(out, "    }}\n}}\n");
    }
    let scripts = vrrp_scripts(config, &mut out, &mut notes);
    for instance in &config.vrrp {
        vrrp_instance(instance, &scripts, &mut out);
    }
    for service in &config.virtual_services {
        virtual_server(service, &mut out, &mut notes);
    }
    not_carried(config, &mut notes);
    Exported {
        text: out,
        notes: notes.0,
    }
}

fn not_carried(config: &Config, notes: &mut Notes) {
    if !config
        .interfaces
        .iter()
        .all(|i| i.addresses.is_empty() && i.role.is_none() && i.mtu.is_none())
    {
        notes.add(
            "interfaces",
            "interface addresses, roles and MTUs are not part of keepalived.conf",
        );
    }
    if !config.bonds.is_empty() {
        notes.add("bonds", "bonds are not part of keepalived.conf");
    }
    if !config.fwmark_rules.is_empty() {
        notes.add(
            "fwmark_rules",
            "marking rules are not part of keepalived.conf (they were iptables rules)",
        );
    }
    if config.peer_link.is_some() {
        notes.add("peer_link", "the peer link is not part of keepalived.conf");
    }
    if config.nat_gateway.is_some() {
        notes.add(
            "nat_gateway",
            "keepalived.conf carries the NAT gateway as a VRRP instance; add one",
        );
    }
    if config.real_server.is_some() {
        notes.add(
            "real_server",
            "the real-server role is not part of keepalived.conf",
        );
    }
    if !config.clusterip.is_empty() {
        notes.add(
            "clusterip",
            "CLUSTERIP groups are not part of keepalived.conf",
        );
    }
    if config.management != crate::model::Management::default() {
        notes.add(
            "management",
            "management settings are not part of keepalived.conf",
        );
    }
    if config.pair.is_some() {
        notes.add(
            "pair",
            "keepalived.conf describes one box: this is the shared part without the halves; export each box's file (export_box, or `tandem config export -o DIR`)",
        );
    }
    if config.system.console_password_hash.is_some() {
        notes.add(
            "system.console_password_hash",
            "the console password is not part of keepalived.conf",
        );
    }
}

fn global_defs(config: &Config, out: &mut String) {
    let sync = sync_daemon_line(config);
    if config.system.hostname.is_empty() && config.notify.is_none() && sync.is_none() {
        return;
    }
    let _ = writeln!(out, "global_defs {{");
    if let Some(notify) = &config.notify {
        if !notify.email_to.is_empty() {
            let _ = writeln!(out, "    notification_email {{");
            for address in &notify.email_to {
                let _ = writeln!(out, "        {address}");
            }
            let _ = writeln!(out, "    }}");
        }
        if let Some(from) = &notify.email_from {
            let _ = writeln!(out, "    notification_email_from {from}");
        }
        if let Some(server) = &notify.smtp_server {
            if notify.smtp_port == 25 {
                let _ = writeln!(out, "    smtp_server {server}");
            } else {
                let _ = writeln!(out, "    smtp_server {server} {}", notify.smtp_port);
            }
        }
        let _ = writeln!(
            out,
            "    smtp_connect_timeout {}",
            notify.smtp_connect_timeout_s
        );
    }
    if !config.system.hostname.is_empty() {
        let _ = writeln!(out, "    router_id {}", config.system.hostname);
    }
    if let Some(line) = sync {
        let _ = writeln!(out, "    {line}");
    }
    let _ = writeln!(out, "}}\n");
}

/// `lvs_sync_daemon <interface> <instance>` for `peer_link.ipvs_sync`. keepalived ties the sync
/// daemon to one VRRP instance (Tandem runs both roles on both boxes): the first instance.
fn sync_daemon_line(config: &Config) -> Option<String> {
    let peer = config.peer_link.as_ref().filter(|p| p.ipvs_sync)?;
    let interface = peer.ipvs_sync_interface.as_ref().unwrap_or(&peer.interface);
    let instance = config.vrrp.iter().next()?;
    Some(format!("lvs_sync_daemon {interface} {}", instance.name))
}

/// A tracked check as keepalived can run it: a `vrrp_script` whose script does what the check
/// does (the importer's connect / fetch / ping one-liners, so the file imports back to the same
/// check), named by the check, or by instance and check when instances track different checks
/// under one name.
struct ExportedScript<'a> {
    instance: &'a str,
    check: &'a str,
    script: String,
}

/// What keepalived's script runs for `tracked`, or why there is none.
fn script_of(tracked: &TrackedCheck) -> Result<String, &'static str> {
    let address = tracked.check.connect_address.unwrap_or(tracked.address);
    let port = tracked.check.connect_port.or(tracked.port);
    let host = match address {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => format!("{v4}"),
    };
    match (&tracked.check.kind, port) {
        (CheckKind::Tcp, Some(port)) => Ok(format!("/usr/bin/nc -z {address} {port}")),
        (CheckKind::Ping, _) => Ok(format!("/bin/ping -c 1 {address}")),
        (CheckKind::Http { path, tls, .. }, Some(port)) => Ok(format!(
            "/usr/bin/curl -fsS{} -o /dev/null {}://{host}:{port}{path}",
            if *tls { "k" } else { "" },
            if *tls { "https" } else { "http" }
        )),
        (CheckKind::Tcp | CheckKind::Http { .. }, None) => Err("has no port"),
        _ => Err("keepalived tracks scripts, and this check has no one-line script equivalent (a TCP connect, an HTTP(S) GET or a ping)"),
    }
}

/// The `vrrp_script` blocks of every instance's tracked checks, written before the instances.
fn vrrp_scripts<'a>(
    config: &'a Config,
    out: &mut String,
    notes: &mut Notes,
) -> Vec<ExportedScript<'a>> {
    let mut scripts: Vec<ExportedScript<'a>> = Vec::new();
    let mut written: Vec<(String, &'a TrackedCheck)> = Vec::new();
    for instance in &config.vrrp {
        for tracked in &instance.track_checks {
            let path = format!(
                "vrrp \"{}\" track_checks \"{}\"",
                instance.name, tracked.name
            );
            let script = match script_of(tracked) {
                Ok(script) => script,
                Err(why) => {
                    notes.add(&path, format!("not exported: {why}"));
                    continue;
                }
            };
            if let CheckKind::Http {
                status,
                body,
                virtual_host,
                more_urls,
                tls_ca,
                ..
            } = &tracked.check.kind
            {
                if status.is_some()
                    || body.is_some()
                    || virtual_host.is_some()
                    || !more_urls.is_empty()
                    || tls_ca.is_some()
                {
                    notes.add(&path, "exported as curl --fail of the first URL: its status codes, body, virtual host, further URLs and tls_ca are not carried over");
                }
            }
            let same = |other: &TrackedCheck| {
                (other.address, other.port, &other.check)
                    == (tracked.address, tracked.port, &tracked.check)
            };
            let shared = config.vrrp.iter().all(|i| {
                i.track_checks
                    .iter()
                    .all(|other| other.name != tracked.name || same(other))
            });
            let name = if shared {
                tracked.name.to_string()
            } else {
                format!("{}_{}", instance.name, tracked.name)
            };
            if !written.iter().any(|(n, _)| *n == name) {
                let timing = &tracked.check.timing;
                let _ = writeln!(out, "vrrp_script {name} {{");
                let _ = writeln!(out, "    script \"{script}\"");
                let _ = writeln!(out, "    interval {}", seconds(timing.interval_ms));
                let _ = writeln!(out, "    timeout {}", seconds(timing.timeout_ms));
                if timing.retries > 0 {
                    let _ = writeln!(out, "    fall {}", u32::from(timing.retries) + 1);
                }
                let _ = writeln!(out, "}}\n");
                if timing.retries > 0 && timing.retry_delay_ms != timing.interval_ms {
                    notes.add(&path, "keepalived retries a script at its interval: the retry delay is not carried over");
                }
                written.push((name.clone(), tracked));
            }
            scripts.push(ExportedScript {
                instance: &instance.name,
                check: &tracked.name,
                script: name,
            });
        }
    }
    scripts
}

fn vrrp_instance(instance: &VrrpInstance, scripts: &[ExportedScript<'_>], out: &mut String) {
    let _ = writeln!(out, "vrrp_instance {} {{", instance.name);
    let state = match instance.initial_state {
        InitialState::Master => "MASTER",
        InitialState::Backup => "BACKUP",
    };
    let _ = writeln!(out, "    state {state}");
    let _ = writeln!(out, "    interface {}", instance.interface);
    if instance.use_vmac {
        match &instance.vmac_interface {
            Some(name) => {
                let _ = writeln!(out, "    use_vmac {name}");
            }
            None => {
                let _ = writeln!(out, "    use_vmac");
            }
        }
        if instance.vmac_xmit_base {
            let _ = writeln!(out, "    vmac_xmit_base");
        }
    }
    let _ = writeln!(out, "    virtual_router_id {}", instance.vrid);
    let _ = writeln!(out, "    priority {}", instance.priority);
    let _ = writeln!(
        out,
        "    advert_int {}",
        seconds(u32::from(instance.advert_interval_cs) * 10)
    );
    if instance.version == VrrpVersion::V3 {
        let _ = writeln!(out, "    version 3");
    }
    if !instance.preempt {
        let _ = writeln!(out, "    nopreempt");
    }
    if instance.preempt_delay_s > 0 {
        let _ = writeln!(out, "    preempt_delay {}", instance.preempt_delay_s);
    }
    // Always explicit: keepalived's default depends on vrrp_strict and differs from the RFC's.
    let _ = writeln!(
        out,
        "    {}",
        if instance.accept_mode {
            "accept"
        } else {
            "no_accept"
        }
    );
    if let Some(VrrpAuth::Pass(pass)) = &instance.auth {
        let _ = writeln!(
            out,
            "    authentication {{\n        auth_type PASS\n        auth_pass {pass}\n    }}"
        );
    }
    let _ = writeln!(out, "    virtual_ipaddress {{");
    for vip in &instance.vips {
        let mut line = format!("        {}", vip.address);
        if vip.prefix != Family::of(&vip.address).max_prefix() {
            let _ = write!(line, "/{}", vip.prefix);
        }
        if let Some(dev) = &vip.interface {
            let _ = write!(line, " dev {dev}");
        }
        if let Some(label) = &vip.label {
            let _ = write!(line, " label {label}");
        }
        let _ = writeln!(out, "{line}");
    }
    let _ = writeln!(out, "    }}");
    if let Some(source) = &instance.unicast_source {
        let _ = writeln!(out, "    unicast_src_ip {source}");
    }
    if !instance.unicast_peers.is_empty() {
        let _ = writeln!(out, "    unicast_peer {{");
        for peer in &instance.unicast_peers {
            let _ = writeln!(out, "        {peer}");
        }
        let _ = writeln!(out, "    }}");
    }
    let tracked: Vec<_> = instance
        .track_interfaces
        .iter()
        .chain(instance.track_bonds.iter())
        .collect();
    if !tracked.is_empty() {
        let _ = writeln!(out, "    track_interface {{");
        for link in tracked {
            if link.weight == 0 {
                let _ = writeln!(out, "        {}", link.name);
            } else {
                let _ = writeln!(out, "        {} weight {}", link.name, link.weight);
            }
        }
        let _ = writeln!(out, "    }}");
    }
    let tracked: Vec<(&ExportedScript<'_>, i16)> = instance
        .track_checks
        .iter()
        .filter_map(|t| {
            scripts
                .iter()
                .find(|s| s.instance == instance.name.as_str() && s.check == t.name.as_str())
                .map(|s| (s, t.weight))
        })
        .collect();
    if !tracked.is_empty() {
        let _ = writeln!(out, "    track_script {{");
        for (script, weight) in tracked {
            if weight == 0 {
                let _ = writeln!(out, "        {}", script.script);
            } else {
                let _ = writeln!(out, "        {} weight {weight}", script.script);
            }
        }
        let _ = writeln!(out, "    }}");
    }
    let garp = &instance.garp;
    let default = crate::model::Garp::default();
    if garp.master_delay_s != default.master_delay_s {
        let _ = writeln!(out, "    garp_master_delay {}", garp.master_delay_s);
    }
    if garp.master_repeat != default.master_repeat {
        let _ = writeln!(out, "    garp_master_repeat {}", garp.master_repeat);
    }
    if garp.master_refresh_s != default.master_refresh_s {
        let _ = writeln!(out, "    garp_master_refresh {}", garp.master_refresh_s);
    }
    if garp.master_refresh_repeat != default.master_refresh_repeat {
        let _ = writeln!(
            out,
            "    garp_master_refresh_repeat {}",
            garp.master_refresh_repeat
        );
    }
    let _ = writeln!(out, "}}\n");
}

fn virtual_server(service: &VirtualService, out: &mut String, notes: &mut Notes) {
    let path = format!("virtual_server \"{}\"", service.label());
    if !service.active {
        notes.add(
            &path,
            "inactive service skipped (keepalived has no inactive services)",
        );
        return;
    }
    if !service.name.is_empty() {
        notes.add(&path, "the service name is not part of keepalived.conf");
    }
    match (service.fwmark, service.address) {
        (Some(mark), address) => {
            let _ = writeln!(out, "virtual_server fwmark {mark} {{");
            if address.is_some() {
                notes.add(
                    &path,
                    "the address of a fwmark service is not part of keepalived.conf",
                );
            }
        }
        (None, Some(address)) => {
            let _ = writeln!(out, "virtual_server {address} {} {{", service.port);
        }
        (None, None) => {
            notes.add(&path, "has neither address nor fwmark; skipped");
            return;
        }
    }
    if service.address_prefix.is_some() || service.interface.is_some() {
        notes.add(
            &path,
            "the address's prefix and interface are not part of a keepalived virtual_server",
        );
    }
    if service.reentry_s != 0 {
        notes.add(&path, "reentry has no keepalived equivalent");
    }
    let interval = service
        .check
        .as_ref()
        .or_else(|| service.real_servers.iter().find_map(|r| r.check.as_ref()))
        .map(|c| c.timing.interval_ms);
    if let Some(interval) = interval {
        let _ = writeln!(out, "    delay_loop {}", seconds(interval));
    }
    let _ = writeln!(out, "    lb_algo {}", service.scheduler.kernel_name());
    let _ = writeln!(out, "    lb_kind {}", service.forwarding.keepalived_name());
    if let Some(persistence) = &service.persistence {
        let _ = writeln!(out, "    persistence_timeout {}", persistence.timeout_s);
        if let Some(prefix) = persistence.netmask_prefix {
            match service.address.map(|a| Family::of(&a)).unwrap_or_default() {
                Family::Ipv4 => {
                    let _ = writeln!(
                        out,
                        "    persistence_granularity {}",
                        prefix_to_netmask(prefix)
                    );
                }
                Family::Ipv6 => {
                    let _ = writeln!(out, "    persistence_granularity {prefix}");
                }
            }
        }
    }
    let _ = writeln!(
        out,
        "    protocol {}",
        service.protocol.as_str().to_ascii_uppercase()
    );
    if service.quorum != 1 {
        let _ = writeln!(out, "    quorum {}", service.quorum);
    }
    if service.hysteresis != 0 {
        let _ = writeln!(out, "    hysteresis {}", service.hysteresis);
    }
    if service.start_down {
        let _ = writeln!(out, "    alpha");
    }
    let flags = service.scheduler_flags;
    if flags.one_packet {
        let _ = writeln!(out, "    ops");
    }
    let prefix = if service.scheduler == crate::model::Scheduler::Mh {
        "mh"
    } else {
        "sh"
    };
    if flags.port {
        let _ = writeln!(out, "    {prefix}-port");
    }
    if flags.fallback {
        let _ = writeln!(out, "    {prefix}-fallback");
    }
    if service.on_failure == OnFailure::Quiesce {
        let _ = writeln!(out, "    inhibit_on_failure");
    }
    if let Some(sorry) = &service.sorry_server {
        match sorry.port {
            Some(port) => {
                let _ = writeln!(out, "    sorry_server {} {port}", sorry.address);
            }
            None => {
                let _ = writeln!(out, "    sorry_server {} {}", sorry.address, service.port);
            }
        }
        if sorry.inhibit {
            let _ = writeln!(out, "    sorry_server_inhibit");
        }
        if let Some(forwarding) = sorry.forwarding {
            let _ = writeln!(
                out,
                "    sorry_server_lvs_method {}",
                forwarding.keepalived_name()
            );
        }
    }
    for server in &service.real_servers {
        real_server(service, server, interval, &path, out, notes);
    }
    let _ = writeln!(out, "}}\n");
}

fn real_server(
    service: &VirtualService,
    server: &RealServer,
    service_interval: Option<u32>,
    path: &str,
    out: &mut String,
    notes: &mut Notes,
) {
    let port = server.effective_port(service);
    let path = format!("{path} real_server {}", server.address);
    if !server.active {
        notes.add(
            &path,
            "inactive real server skipped (keepalived has no inactive real servers)",
        );
        return;
    }
    if !server.name.is_empty() {
        notes.add(&path, "the real server name is not part of keepalived.conf");
    }
    let _ = writeln!(out, "\n    real_server {} {port} {{", server.address);
    let _ = writeln!(out, "        weight {}", server.weight);
    if let Some(forwarding) = server.forwarding {
        let _ = writeln!(out, "        lvs_method {}", forwarding.keepalived_name());
    }
    match server.on_failure {
        Some(OnFailure::Quiesce) => {
            let _ = writeln!(out, "        inhibit_on_failure");
        }
        Some(OnFailure::Remove) => {
            let _ = writeln!(out, "        inhibit_on_failure false");
        }
        None => {}
    }
    if server.upper_threshold != 0 {
        let _ = writeln!(out, "        uthreshold {}", server.upper_threshold);
    }
    if server.lower_threshold != 0 {
        let _ = writeln!(out, "        lthreshold {}", server.lower_threshold);
    }
    // keepalived runs every checker of a real server: each check is one. The real server's
    // delay_loop is the first check's; a further check with another interval says its own.
    let mut server_interval = service_interval;
    for (index, check) in server.effective_checks(service).enumerate() {
        let interval = Some(check.timing.interval_ms);
        if index == 0 {
            if interval != service_interval {
                let _ = writeln!(
                    out,
                    "        delay_loop {}",
                    seconds(check.timing.interval_ms)
                );
            }
            server_interval = interval;
            health_check(check, None, &path, out, notes);
        } else {
            let own = (interval != server_interval).then_some(check.timing.interval_ms);
            health_check(check, own, &path, out, notes);
        }
    }
    let _ = writeln!(out, "    }}");
}

/// Hex digits of `bytes`, as keepalived's UDP_CHECK writes payloads.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One `url { }` block of an HTTP_GET / SSL_GET.
fn url_block(url: &HttpUrl, path: &str, out: &mut String, notes: &mut Notes) {
    let _ = writeln!(out, "            url {{\n                path {}", url.path);
    if let Some(codes) = &url.status {
        let _ = writeln!(out, "                status_code {codes}");
    }
    match &url.body {
        Some(HttpBody::Md5(digest)) => {
            let _ = writeln!(out, "                digest {}", hex(&digest[..]));
        }
        Some(HttpBody::Contains(_)) => notes.add(
            path,
            "keepalived cannot match body text (only an MD5 digest); dropped",
        ),
        None => {}
    }
    if let Some(host) = &url.virtual_host {
        let _ = writeln!(out, "                virtualhost {host}");
    }
    let _ = writeln!(out, "            }}");
}

/// One checker block; `delay_loop` inside it when `interval_ms` is given (keepalived takes a
/// checker's own `delay_loop` over the real server's).
fn health_check(
    check: &Check,
    interval_ms: Option<u32>,
    path: &str,
    out: &mut String,
    notes: &mut Notes,
) {
    let keyword = match &check.kind {
        CheckKind::Tcp => "TCP_CHECK",
        CheckKind::Http { tls: true, .. } => "SSL_GET",
        CheckKind::Http { .. } => "HTTP_GET",
        CheckKind::Smtp { .. } => "SMTP_CHECK",
        CheckKind::SendExpect { .. } => {
            notes.add(
                path,
                "keepalived has no send/expect check; exported as TCP_CHECK",
            );
            "TCP_CHECK"
        }
        CheckKind::Ping => "PING_CHECK",
        CheckKind::Udp { .. } => "UDP_CHECK",
        CheckKind::Dns { .. } => "DNS_CHECK",
    };
    let _ = writeln!(out, "        {keyword} {{");
    match &check.kind {
        CheckKind::Http {
            path: url,
            status,
            body,
            virtual_host,
            more_urls,
            tls_ca,
            ..
        } => {
            let first = HttpUrl {
                path: url.clone(),
                status: status.clone(),
                body: body.clone(),
                virtual_host: None,
            };
            for one in core::iter::once(&first).chain(more_urls.iter()) {
                url_block(one, path, out, notes);
            }
            if let Some(host) = virtual_host {
                let _ = writeln!(out, "            virtualhost {host}");
            }
            if let Some(name) = tls_ca {
                notes.add(
                    path,
                    format!("keepalived does not verify certificates: tls_ca \"{name}\" is not carried over"),
                );
            }
        }
        CheckKind::Udp {
            payload,
            require_reply,
            expect,
        } => {
            if !payload.is_empty() {
                let _ = writeln!(out, "            payload {}", hex(payload));
            }
            if *require_reply {
                let _ = writeln!(out, "            require_reply {}", hex(expect));
            }
        }
        CheckKind::Dns { name, record_type } => {
            let _ = writeln!(out, "            type {record_type:?}");
            let _ = writeln!(out, "            name {name}");
        }
        _ => {}
    }
    if let CheckKind::Smtp {
        helo_name: Some(helo),
    } = &check.kind
    {
        let _ = writeln!(out, "            helo_name {helo}");
    }
    if let Some(interval_ms) = interval_ms {
        let _ = writeln!(out, "            delay_loop {}", seconds(interval_ms));
    }
    let _ = writeln!(
        out,
        "            connect_timeout {}",
        seconds(check.timing.timeout_ms)
    );
    let _ = writeln!(out, "            retry {}", check.timing.retries);
    let _ = writeln!(
        out,
        "            delay_before_retry {}",
        seconds(check.timing.retry_delay_ms)
    );
    if let Some(port) = check.connect_port {
        let _ = writeln!(out, "            connect_port {port}");
    }
    if let Some(address) = check.connect_address {
        let _ = writeln!(out, "            connect_ip {address}");
    }
    if let Some(address) = check.bind_address {
        let _ = writeln!(out, "            bindto {address}");
    }
    let _ = writeln!(out, "        }}");
}
