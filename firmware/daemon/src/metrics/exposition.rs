//! Metric families as data, and the one writer that renders them as the Prometheus text format
//! (`text/plain; version=0.0.4`) or OpenMetrics 1.0 (`application/openmetrics-text`).
//!
//! Engines answer `EngineRequest::Metrics` with [`Families`]; the endpoint merges every
//! answer into one set (a family named twice is one family: its samples are appended, so
//! several engines can add to `tandem_engine_errors`) and renders it once per scrape. The
//! writer puts `# HELP` and `# TYPE` once before each family's samples, escapes label values
//! and help text, drops a repeated label set within a family (a scrape with a duplicate series
//! is refused whole by Prometheus) and leaves out families without samples.
//!
//! Label sets are rendered (and escaped) once when they are made ([`Labels`]) and shared by
//! reference: the ten families of one real server carry the same `Arc<str>`, so a 1000 x 10
//! snapshot stays a few megabytes.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

/// The two text formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text exposition 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0.0 text (counter families named without `_total`, `# EOF` at the end).
    OpenMetrics,
}

impl Format {
    /// The `Content-Type` of a body in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// A family's metric type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Gauge,
    /// Monotonic since the daemon (or the counted object) started; the name ends in `_total`.
    Counter,
    /// Constant 1 with the facts as labels; the name ends in `_info` (a gauge in 0.0.4).
    Info,
}

/// A sample value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    Int(u64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(value: u64) -> Value {
        Value::Int(value)
    }
}

impl From<u32> for Value {
    fn from(value: u32) -> Value {
        Value::Int(u64::from(value))
    }
}

impl From<u8> for Value {
    fn from(value: u8) -> Value {
        Value::Int(u64::from(value))
    }
}

impl From<usize> for Value {
    fn from(value: usize) -> Value {
        Value::Int(u64::try_from(value).unwrap_or(u64::MAX))
    }
}

impl From<bool> for Value {
    fn from(value: bool) -> Value {
        Value::Int(u64::from(value))
    }
}

impl From<f64> for Value {
    fn from(value: f64) -> Value {
        Value::Float(value)
    }
}

impl From<std::time::Duration> for Value {
    /// In seconds (the base unit).
    fn from(value: std::time::Duration) -> Value {
        Value::Float(value.as_secs_f64())
    }
}

/// A rendered label set (`a="x",b="y"`, values escaped), shared by reference.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Labels(Option<Arc<str>>);

impl Labels {
    /// No labels.
    pub const NONE: Labels = Labels(None);

    /// The labels `pairs`, in order. Names are the code's own (`[a-z_]+`); values may be
    /// anything and are escaped.
    pub fn of(pairs: &[(&'static str, &str)]) -> Labels {
        let mut text = String::new();
        for (name, value) in pairs {
            push_label(&mut text, name, value);
        }
        Labels((!text.is_empty()).then(|| Arc::from(text)))
    }

    /// These labels and one more.
    pub fn and(&self, name: &'static str, value: &str) -> Labels {
        let mut text = self.as_str().to_owned();
        push_label(&mut text, name, value);
        Labels(Some(Arc::from(text)))
    }

    /// The rendered form, without braces (empty: no labels).
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }
}

fn push_label(text: &mut String, name: &str, value: &str) {
    debug_assert!(valid_label_name(name), "label name {name:?}");
    if !text.is_empty() {
        text.push(',');
    }
    text.push_str(name);
    text.push_str("=\"");
    escape_label_value(text, value);
    text.push('"');
}

/// Label values: backslash, double quote and line feed escaped (both formats).
pub fn escape_label_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Help text: backslash and line feed escaped (and, in OpenMetrics, the double quote too).
fn escape_help(out: &mut Vec<u8>, help: &str, format: Format) {
    for c in help.chars() {
        match c {
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '"' if format == Format::OpenMetrics => out.extend_from_slice(b"\\\""),
            c => {
                let mut buffer = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buffer).as_bytes());
            }
        }
    }
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
pub fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `[a-zA-Z_][a-zA-Z0-9_]*`, not starting with `__` (reserved).
pub fn valid_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    !name.starts_with("__")
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One metric family: its name, help, type and samples.
#[derive(Debug, Clone)]
pub struct Family {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: Kind,
    pub samples: Vec<(Labels, Value)>,
}

impl Family {
    fn new(name: &'static str, help: &'static str, kind: Kind) -> Family {
        debug_assert!(valid_metric_name(name), "metric name {name:?}");
        debug_assert!(
            (kind == Kind::Counter) == name.ends_with("_total"),
            "{name}: counters and only counters end in _total"
        );
        debug_assert!(kind != Kind::Info || name.ends_with("_info"), "{name}");
        Family {
            name,
            help,
            kind,
            samples: Vec::new(),
        }
    }

    pub fn gauge(name: &'static str, help: &'static str) -> Family {
        Family::new(name, help, Kind::Gauge)
    }

    pub fn counter(name: &'static str, help: &'static str) -> Family {
        Family::new(name, help, Kind::Counter)
    }

    pub fn info(name: &'static str, help: &'static str) -> Family {
        Family::new(name, help, Kind::Info)
    }

    /// Adds a sample.
    pub fn add(&mut self, labels: Labels, value: impl Into<Value>) -> &mut Family {
        self.samples.push((labels, value.into()));
        self
    }

    /// Adds one sample per `(label value, value)`, under label `name` after `labels`: a
    /// one-hot state (`state="master"` 1, the others 0) or counters by reason.
    pub fn add_each<V: Into<Value>>(
        &mut self,
        labels: &Labels,
        name: &'static str,
        values: impl IntoIterator<Item = (&'static str, V)>,
    ) -> &mut Family {
        for (label, value) in values {
            self.samples.push((labels.and(name, label), value.into()));
        }
        self
    }

    /// The family with one sample and no labels.
    pub fn with(mut self, value: impl Into<Value>) -> Family {
        self.samples.push((Labels::NONE, value.into()));
        self
    }
}

/// A set of families, one per name.
#[derive(Debug, Clone, Default)]
pub struct Families(Vec<Family>);

impl Families {
    pub fn new() -> Families {
        Families::default()
    }

    /// Adds `family`; one of the same name already here gets its samples instead.
    pub fn push(&mut self, family: Family) {
        match self.0.iter_mut().find(|f| f.name == family.name) {
            Some(existing) => {
                debug_assert!(existing.kind == family.kind, "{}: two types", family.name);
                existing.samples.extend(family.samples);
            }
            None => self.0.push(family),
        }
    }

    /// Adds every family of `other`.
    pub fn extend(&mut self, other: Families) {
        for family in other.0 {
            self.push(family);
        }
    }

    /// Renders every family with samples into `out`; returns how many samples were dropped
    /// for repeating a label set already rendered in their family.
    pub fn render(&self, format: Format, out: &mut Vec<u8>) -> usize {
        let mut duplicates = 0;
        let mut number = String::new();
        for family in self.0.iter().filter(|f| !f.samples.is_empty()) {
            let (family_name, sample_suffix, type_word) = match (format, family.kind) {
                (_, Kind::Gauge) => (family.name, "", "gauge"),
                (Format::Prometheus, Kind::Counter) => (family.name, "", "counter"),
                (Format::Prometheus, Kind::Info) => (family.name, "", "gauge"),
                (Format::OpenMetrics, Kind::Counter) => (
                    family.name.strip_suffix("_total").unwrap_or(family.name),
                    "_total",
                    "counter",
                ),
                (Format::OpenMetrics, Kind::Info) => (
                    family.name.strip_suffix("_info").unwrap_or(family.name),
                    "_info",
                    "info",
                ),
            };
            let help = |out: &mut Vec<u8>| {
                out.extend_from_slice(b"# HELP ");
                out.extend_from_slice(family_name.as_bytes());
                out.push(b' ');
                escape_help(out, family.help, format);
                out.push(b'\n');
            };
            let kind = |out: &mut Vec<u8>| {
                out.extend_from_slice(b"# TYPE ");
                out.extend_from_slice(family_name.as_bytes());
                out.push(b' ');
                out.extend_from_slice(type_word.as_bytes());
                out.push(b'\n');
            };
            // OpenMetrics puts TYPE first; the 0.0.4 convention is HELP first.
            match format {
                Format::Prometheus => {
                    help(out);
                    kind(out);
                }
                Format::OpenMetrics => {
                    kind(out);
                    help(out);
                }
            }
            let mut seen: HashSet<&str> = HashSet::with_capacity(family.samples.len());
            for (labels, value) in &family.samples {
                if !seen.insert(labels.as_str()) {
                    duplicates += 1;
                    continue;
                }
                out.extend_from_slice(family_name.as_bytes());
                out.extend_from_slice(sample_suffix.as_bytes());
                if !labels.as_str().is_empty() {
                    out.push(b'{');
                    out.extend_from_slice(labels.as_str().as_bytes());
                    out.push(b'}');
                }
                out.push(b' ');
                number.clear();
                write_value(&mut number, *value);
                out.extend_from_slice(number.as_bytes());
                out.push(b'\n');
            }
        }
        if format == Format::OpenMetrics {
            out.extend_from_slice(b"# EOF\n");
        }
        duplicates
    }
}

fn write_value(out: &mut String, value: Value) {
    let _ = match value {
        Value::Int(n) => write!(out, "{n}"),
        Value::Float(x) if x.is_nan() => write!(out, "NaN"),
        Value::Float(x) if x.is_infinite() && x > 0.0 => write!(out, "+Inf"),
        Value::Float(x) if x.is_infinite() => write!(out, "-Inf"),
        // Display never uses an exponent and round-trips: 0.00012 stays "0.00012".
        Value::Float(x) => write!(out, "{x}"),
    };
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn text(families: &Families, format: Format) -> String {
        let mut out = Vec::new();
        families.render(format, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn label_values_are_escaped() {
        let labels = Labels::of(&[("vrrp_instance", "a\"b\\c\nd"), ("state", "master")]);
        assert_eq!(
            labels.as_str(),
            "vrrp_instance=\"a\\\"b\\\\c\\nd\",state=\"master\""
        );
        assert_eq!(Labels::of(&[]).as_str(), "");
        assert_eq!(Labels::NONE.and("x", "1").as_str(), "x=\"1\"");
    }

    #[test]
    fn help_and_type_come_once_per_family_and_same_names_merge() {
        let mut families = Families::new();
        let mut first = Family::gauge("tandem_engine_errors", "Problems.\\ said \"now\"");
        first.add(Labels::of(&[("engine", "vrrp")]), 0u64);
        families.push(first);
        families.push(Family::gauge("tandem_uptime_seconds", "Up.").with(1.5));
        let mut second = Family::gauge("tandem_engine_errors", "ignored");
        second.add(Labels::of(&[("engine", "lvs")]), 2u64);
        families.push(second);
        let out = text(&families, Format::Prometheus);
        assert_eq!(
            out,
            "# HELP tandem_engine_errors Problems.\\\\ said \"now\"\n\
             # TYPE tandem_engine_errors gauge\n\
             tandem_engine_errors{engine=\"vrrp\"} 0\n\
             tandem_engine_errors{engine=\"lvs\"} 2\n\
             # HELP tandem_uptime_seconds Up.\n\
             # TYPE tandem_uptime_seconds gauge\n\
             tandem_uptime_seconds 1.5\n"
        );
        assert_eq!(out.matches("# TYPE tandem_engine_errors").count(), 1);
    }

    #[test]
    fn openmetrics_names_counter_families_without_total_and_ends_with_eof() {
        let mut families = Families::new();
        let mut adverts = Family::counter("tandem_vrrp_adverts_sent_total", "Adverts sent.");
        adverts.add(Labels::of(&[("vrrp_instance", "web")]), 7u64);
        families.push(adverts);
        let mut build = Family::info("tandem_build_info", "The build.");
        build.add(Labels::of(&[("version", "0.1.0")]), 1u64);
        families.push(build);
        let out = text(&families, Format::OpenMetrics);
        assert_eq!(
            out,
            "# TYPE tandem_vrrp_adverts_sent counter\n\
             # HELP tandem_vrrp_adverts_sent Adverts sent.\n\
             tandem_vrrp_adverts_sent_total{vrrp_instance=\"web\"} 7\n\
             # TYPE tandem_build info\n\
             # HELP tandem_build The build.\n\
             tandem_build_info{version=\"0.1.0\"} 1\n\
             # EOF\n"
        );
        let plain = text(&families, Format::Prometheus);
        assert!(plain.contains("# TYPE tandem_vrrp_adverts_sent_total counter\n"));
        assert!(plain.contains("# TYPE tandem_build_info gauge\n"));
        assert!(!plain.contains("# EOF"));
    }

    #[test]
    fn empty_families_are_left_out_and_duplicate_series_dropped() {
        let mut families = Families::new();
        families.push(Family::gauge("tandem_nothing", "No samples."));
        let mut twice = Family::gauge("tandem_twice", "Twice.");
        let labels = Labels::of(&[("a", "1")]);
        twice.add(labels.clone(), 1u64).add(labels, 2u64);
        families.push(twice);
        let mut out = Vec::new();
        assert_eq!(families.render(Format::Prometheus, &mut out), 1);
        let out = String::from_utf8(out).unwrap();
        assert!(!out.contains("tandem_nothing"), "{out}");
        assert_eq!(out.matches("tandem_twice{").count(), 1, "{out}");
        assert!(out.contains("tandem_twice{a=\"1\"} 1\n"), "{out}");
    }

    #[test]
    fn values_render_exactly() {
        let mut s = String::new();
        for (value, expected) in [
            (Value::Int(u64::MAX), "18446744073709551615"),
            (Value::Float(0.00012), "0.00012"),
            (Value::Float(2.0), "2"),
            (Value::Float(f64::NAN), "NaN"),
            (Value::Float(f64::INFINITY), "+Inf"),
            (Value::Float(f64::NEG_INFINITY), "-Inf"),
            (Value::from(std::time::Duration::from_millis(250)), "0.25"),
            (Value::from(true), "1"),
        ] {
            s.clear();
            write_value(&mut s, value);
            assert_eq!(s, expected);
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_metric_name("tandem_vrrp_state"));
        assert!(!valid_metric_name("9lives"));
        assert!(!valid_metric_name("a-b"));
        assert!(!valid_metric_name(""));
        assert!(valid_label_name("real_server"));
        assert!(!valid_label_name("__name__"));
        assert!(!valid_label_name("a b"));
    }
}
