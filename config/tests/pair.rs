//! One config for the pair: the halves in the text form, each box's effective config, validation
//! of the halves and of both boxes, and edits, compare and preview of the halves.

// Test code: panics are the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use tandem_config::model::{InitialState, Role};
use tandem_config::{compare, delete, preview, set, text, validate, Config, Severity};

const PAIR: &str = r#"
[system]
hostname = "director"

[management]
interface = "mgmt"
address = "192.168.100.10/24"

[peer_link]
interface = "peer"
pair_id = "00000000000000a1"
uplink_probes = ["10.0.0.254"]

[[interfaces]]
name = "mgmt"
role = "mgmt"

[[interfaces]]
name = "peer"
role = "peer"

[[interfaces]]
name = "public"
role = "public"
addresses = ["10.0.0.2/24"]

[[vrrp]]
name = "web_vip"
vrid = 51
interface = "public"
priority = 100

[[vrrp.vips]]
address = "10.0.0.10"

[pair.a]
hostname = "director1"
management_address = "192.168.100.11/24"

[[pair.a.interfaces]]
name = "public"
addresses = ["10.0.0.2/24"]

[[pair.a.vrrp]]
name = "web_vip"
priority = 150
unicast_source = "10.0.0.2"
unicast_peers = ["10.0.0.3"]
initial_state = "master"

[pair.b]
hostname = "director2"
management_address = "192.168.100.12/24"

[[pair.b.interfaces]]
name = "public"
addresses = ["10.0.0.3/24"]

[[pair.b.vrrp]]
name = "web_vip"
unicast_source = "10.0.0.3"
unicast_peers = ["10.0.0.2"]
"#;

fn pair() -> Config {
    text::from_toml(PAIR).unwrap()
}

fn lines(config: &Config) -> Vec<String> {
    validate(config).iter().map(ToString::to_string).collect()
}

#[test]
fn text_form_round_trips() {
    let config = pair();
    let written = text::to_toml(&config).unwrap();
    assert!(written.contains("[pair.a]"), "{written}");
    assert!(written.contains("[[pair.b.vrrp]]"), "{written}");
    assert_eq!(text::from_toml(&written).unwrap(), config);
    // Unknown keys in a half are refused with the field named.
    let bad = PAIR.replace("hostname = \"director2\"", "hostnme = \"director2\"");
    let error = text::from_toml(&bad).unwrap_err().to_string();
    assert!(error.contains("hostnme"), "{error}");
}

#[test]
fn each_box_runs_the_shared_part_with_its_half() {
    let config = pair();
    let a = config.for_box(Role::A);
    let b = config.for_box(Role::B);
    assert_eq!(a.pair, None);
    assert_eq!(a.system.hostname, "director1");
    assert_eq!(b.system.hostname, "director2");
    assert_eq!(
        b.management.address.unwrap().to_string(),
        "192.168.100.12/24"
    );
    assert_eq!(
        b.interface("public").unwrap().addresses[0].to_string(),
        "10.0.0.3/24"
    );
    let (va, vb) = (
        a.vrrp_instance("web_vip").unwrap(),
        b.vrrp_instance("web_vip").unwrap(),
    );
    assert_eq!((va.priority, vb.priority), (150, 100));
    assert_eq!(va.initial_state, InitialState::Master);
    assert_eq!(vb.initial_state, InitialState::Backup);
    assert_eq!(vb.unicast_source, Some("10.0.0.3".parse().unwrap()));
    assert_eq!(
        vb.unicast_peers.to_vec(),
        ["10.0.0.2".parse::<std::net::IpAddr>().unwrap()]
    );
    // Everything else is the shared part.
    assert_eq!(a.vrrp[0].vips, config.vrrp[0].vips);
    assert_eq!(a.peer_link, config.peer_link);
    // A single-box config is its own effective config.
    assert_eq!(a.for_box(Role::B), a);
    assert_eq!("b".parse::<Role>(), Ok(Role::B));
    assert!("c".parse::<Role>().is_err());
}

#[test]
fn a_valid_pair_has_no_issues() {
    assert_eq!(lines(&pair()), Vec::<String>::new());
}

#[test]
fn halves_refer_to_shared_names_only() {
    let mut config = set(&pair(), "pair.b.vrrp.mail_vip.priority", "90").unwrap();
    config = set(&config, "pair.a.interfaces.eth9.addresses", "10.9.0.1/24").unwrap();
    let issues = lines(&config);
    assert!(
        issues.contains(
            &"error: pair.b.vrrp.mail_vip: no [[vrrp]] instance mail_vip; add it or remove this override"
                .to_string()
        ),
        "{issues:#?}"
    );
    assert!(
        issues
            .iter()
            .any(|l| l.starts_with("error: pair.a.interfaces.eth9: no [[interfaces]] entry eth9")),
        "{issues:#?}"
    );
}

#[test]
fn each_box_is_validated_and_issues_name_the_half() {
    // Priority 0 in box a's half is an error of box a alone.
    let config = set(&pair(), "pair.a.vrrp.web_vip.priority", "0").unwrap();
    let issues = lines(&config);
    assert!(
        issues
            .iter()
            .any(|l| l.starts_with("error: pair.a.vrrp \"web_vip\": priority 0")),
        "{issues:#?}"
    );
    assert!(!issues.iter().any(|l| l.contains("pair.b.")), "{issues:#?}");
    // A shared problem both boxes have is reported once, unprefixed.
    let config = set(&pair(), "vrrp.web_vip.vrid", "0").unwrap();
    let issues = lines(&config);
    let vrid: Vec<_> = issues
        .iter()
        .filter(|l| l.contains("virtual_router_id 0"))
        .collect();
    assert_eq!(vrid.len(), 1, "{issues:#?}");
    assert!(
        vrid[0].starts_with("error: vrrp \"web_vip\""),
        "{issues:#?}"
    );
    // A shared warning both halves fix is not reported.
    let config = set(&pair(), "system.hostname", "").unwrap();
    assert_eq!(lines(&config), Vec::<String>::new());
}

#[test]
fn both_boxes_must_not_get_one_address() {
    let config = set(
        &pair(),
        "pair.b.interfaces.public.addresses",
        "[\"10.0.0.2/24\"]",
    )
    .unwrap();
    let issues = lines(&config);
    assert!(
        issues.iter().any(|l| l.starts_with(
            "error: pair.b.interfaces.public: both boxes would have address 10.0.0.2"
        )),
        "{issues:#?}"
    );
    // Without a half for the interface, both boxes get the shared address.
    let config = delete(&pair(), "pair.b.interfaces.public").unwrap();
    let config = delete(&config, "pair.a.interfaces.public").unwrap();
    let issues = lines(&config);
    assert!(
        issues.iter().any(|l| l
            .starts_with("error: interface \"public\": both boxes would have address 10.0.0.2")),
        "{issues:#?}"
    );
    let config = delete(&pair(), "pair.b.management_address").unwrap();
    let config = set(&config, "management.address", "192.168.100.11/24").unwrap();
    let issues = lines(&config);
    assert!(
        issues.iter().any(|l| l.starts_with(
            "error: pair.a.management_address: both boxes would have management address"
        )),
        "{issues:#?}"
    );
}

#[test]
fn equal_priorities_warn() {
    let config = set(&pair(), "pair.b.vrrp.web_vip.priority", "150").unwrap();
    let issues = validate(&config);
    let warning = issues
        .iter()
        .find(|i| i.path == "pair.b.vrrp.web_vip.priority")
        .unwrap_or_else(|| panic!("{issues:#?}"));
    assert_eq!(warning.severity, Severity::Warning);
    assert!(warning.message.contains("by address"), "{warning}");
}

#[test]
fn uplink_probes_lie_on_a_configured_subnet() {
    let config = set(&pair(), "peer_link.uplink_probes", "10.9.9.1").unwrap();
    let issues = lines(&config);
    assert!(
        issues.contains(&"error: peer_link.uplink_probes: 10.9.9.1 is not inside the subnet of any configured interface address; add the address of its service LAN under [[interfaces]] or remove it".to_string()),
        "{issues:#?}"
    );
    // Five probes are one too many.
    let five = "[\"10.0.0.250\", \"10.0.0.251\", \"10.0.0.252\", \"10.0.0.253\", \"10.0.0.254\"]";
    assert!(set(&pair(), "peer_link.uplink_probes", five).is_err());
}

#[test]
fn set_and_delete_reach_into_the_halves() {
    // From a config without halves: the pair is created with the named override.
    let mut single = pair();
    single.pair = None;
    let edited = set(&single, "pair.a.vrrp.web_vip.priority", "150").unwrap();
    let half = &edited.pair.as_ref().unwrap().a;
    assert_eq!(half.vrrp[0].name, "web_vip");
    assert_eq!(half.vrrp[0].priority, Some(150));
    assert_eq!(half.vrrp[0].initial_state, None);
    // An existing override is changed in place, by name.
    let edited = set(&pair(), "pair.a.vrrp.web_vip.priority", "200").unwrap();
    let a = &edited.pair.as_ref().unwrap().a;
    assert_eq!(a.vrrp.len(), 1);
    assert_eq!(a.vrrp[0].priority, Some(200));
    assert_eq!(a.vrrp[0].initial_state, Some(InitialState::Master));
    let edited = set(&pair(), "pair.b.hostname", "box-b").unwrap();
    assert_eq!(edited.for_box(Role::B).system.hostname, "box-b");
    let edited = set(&pair(), "pair.b.vrrp.web_vip.initial_state", "master").unwrap();
    assert_eq!(
        edited.for_box(Role::B).vrrp[0].initial_state,
        InitialState::Master
    );
    // Clearing an override brings back the shared value.
    let edited = delete(&pair(), "pair.a.vrrp.web_vip.priority").unwrap();
    assert_eq!(edited.for_box(Role::A).vrrp[0].priority, 100);
    let edited = delete(&pair(), "pair").unwrap();
    assert_eq!(edited.pair, None);
    // Typos name the field.
    let error = set(&pair(), "pair.a.vrrp.web_vip.prio", "1")
        .unwrap_err()
        .to_string();
    assert!(error.contains("prio"), "{error}");
    let error = set(&pair(), "pair.c.hostname", "x")
        .unwrap_err()
        .to_string();
    assert!(error.contains("pair"), "{error}");
}

#[test]
fn compare_shows_the_halves() {
    let running = pair();
    let candidate = set(&running, "pair.a.vrrp.web_vip.priority", "200").unwrap();
    let diff = compare(&running, &candidate);
    assert_eq!(
        diff,
        [
            "[pair]",
            "[pair.a]",
            "[[pair.a.vrrp]] name = \"web_vip\"",
            "- priority = 150",
            "+ priority = 200",
        ],
        "{diff:#?}"
    );
    let mut single = running.clone();
    single.pair = None;
    let diff = compare(&single, &running);
    assert!(diff.contains(&"+ [pair.b]".to_string()), "{diff:#?}");
    assert!(
        diff.contains(&"+ hostname = \"director2\"".to_string()),
        "{diff:#?}"
    );
}

#[test]
fn preview_describes_a_half_per_box() {
    let running = pair();
    let candidate = set(&running, "pair.a.vrrp.web_vip.priority", "200").unwrap();
    let shown: Vec<String> = preview(&running, &candidate)
        .changes
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        shown,
        ["vrrp: box a: instance web_vip: priority 150 -> 200: hitless"],
        "{shown:#?}"
    );
    // A shared change both boxes see is listed once, without a box.
    let candidate = set(&running, "vrrp.web_vip.vips", "10.0.0.12").unwrap();
    let changes = preview(&running, &candidate).changes;
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert!(!changes[0].what.starts_with("box"), "{changes:#?}");
    // A box's address removed is disruptive on that box only.
    let candidate = set(
        &running,
        "pair.b.interfaces.public.addresses",
        "[\"10.0.0.4/24\"]",
    )
    .unwrap();
    let preview = preview(&running, &candidate);
    assert!(!preview.is_hitless());
    assert!(
        preview
            .changes
            .iter()
            .all(|c| c.what.starts_with("box b: ")),
        "{preview}"
    );
}
