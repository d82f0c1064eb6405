//! `tandem config ...`: offline work on configs (check, show, import, export, encode, decode, diff).
//!
//! Exit codes: 0 success (for `diff`: identical), 1 the config is invalid or differs, 2 usage or
//! I/O error.

use std::io::Write;
use std::path::Path;
use std::string::{String, ToString};
use std::vec::Vec;

use crate::blob::{self, BlobMeta, MacKey, MacPolicy};
use crate::compare::compare;
#[cfg(feature = "migrate")]
use crate::export;
#[cfg(feature = "migrate")]
use crate::import::{self, Format, MergeKind, NoteKind, PairImportError};
use crate::load::parse_bytes;
use crate::model::Config;
#[cfg(feature = "migrate")]
use crate::model::Role;
use crate::text;
use crate::validate::{self, Severity};

const USAGE: &str = "usage: tandem config <command>
  check FILE                       validate a config (TOML text or blob)
  show FILE                        print the canonical text
  import FILE [FILE_B] [--format keepalived|lvs|iptables] [-o OUT]
                                   convert keepalived.conf, lvs.cf or iptables rules (their
                                   CLUSTERIP rules); lists what is not carried over.
                                   Two keepalived.conf files (the pair's two directors, box a's
                                   first) give one pair config: the shared part plus [pair.a] and
                                   [pair.b]; an lvs.cf with an active backup gives one too
  export --format keepalived|lvs FILE [-o OUT] [--box a|b]
                                   a pair config as keepalived.conf is one file per box:
                                   -o DIR writes DIR/a.keepalived.conf and DIR/b.keepalived.conf,
                                   --box a|b writes that box's file alone (to -o FILE or stdout);
                                   lvs.cf describes both routers in one file
  encode TEXT -o BLOB [--generation N] [--parent N] [--pair-id N] [--key-file KEY]
  decode BLOB [--key-file KEY]     print the header and the canonical text
  diff A B                         compare two configs (text or blob)
";

/// Runs `tandem config ARGS...`; `args` excludes `tandem config`.
pub fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match dispatch(args, out, err) {
        Ok(code) => code,
        Err(message) => {
            let _ = writeln!(err, "tandem config: {message}");
            2
        }
    }
}

/// Parsed options: positional arguments and `--name value` pairs.
struct Options {
    positional: Vec<String>,
    named: Vec<(String, String)>,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut positional = Vec::new();
        let mut named = Vec::new();
        let mut iter = args.iter();
        while let Some(arg) = iter.next() {
            if arg == "-o" || (arg.starts_with("--") && arg.len() > 2) {
                let (name, value) = match arg.split_once('=') {
                    Some((name, value)) => (name.to_string(), value.to_string()),
                    None => {
                        let value = iter.next().ok_or_else(|| format!("{arg} needs a value"))?;
                        (arg.clone(), value.clone())
                    }
                };
                named.push((name, value));
            } else {
                positional.push(arg.clone());
            }
        }
        Ok(Options { positional, named })
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.named
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn check_known(&self, known: &[&str]) -> Result<(), String> {
        for (name, _) in &self.named {
            if !known.contains(&name.as_str()) {
                return Err(format!("unknown option {name}\n{USAGE}"));
            }
        }
        Ok(())
    }

    fn one_file(&self) -> Result<&str, String> {
        match self.positional.as_slice() {
            [file] => Ok(file),
            _ => Err(format!("expected one FILE\n{USAGE}")),
        }
    }

    fn number(&self, name: &str) -> Result<u64, String> {
        match self.get(name) {
            Some(text) => text
                .parse()
                .map_err(|_| format!("{name} takes a number, not \"{text}\"")),
            None => Ok(0),
        }
    }
}

fn dispatch(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> Result<i32, String> {
    let Some((command, rest)) = args.split_first() else {
        let _ = write!(err, "{USAGE}");
        return Ok(2);
    };
    let options = Options::parse(rest)?;
    match command.as_str() {
        "check" => {
            options.check_known(&[])?;
            let config = read_config(options.one_file()?, err)?;
            Ok(report_issues(&config, err))
        }
        "show" => {
            options.check_known(&[])?;
            let config = read_config(options.one_file()?, err)?;
            let text = text::to_toml(&config).map_err(|e| e.to_string())?;
            write_out(out, text.as_bytes())?;
            Ok(0)
        }
        #[cfg(feature = "migrate")]
        "import" => import_command(&options, out, err),
        #[cfg(feature = "migrate")]
        "export" => export_command(&options, out, err),
        #[cfg(not(feature = "migrate"))]
        "import" | "export" => Err(format!(
            "`tandem config {command}` is not in the appliance build (it stays within its 4 MiB \
             budget without the keepalived/Piranha converters): run it on a host with the host \
             build of tandem, then `load` the TOML it writes on the box"
        )),
        "encode" => {
            options.check_known(&["-o", "--generation", "--parent", "--pair-id", "--key-file"])?;
            let output = options
                .get("-o")
                .ok_or_else(|| String::from("encode needs -o BLOB"))?;
            let config = read_config(options.one_file()?, err)?;
            if report_issues(&config, err) != 0 {
                let _ = writeln!(err, "not encoded: fix the errors above first");
                return Ok(1);
            }
            let key = read_key(options.get("--key-file"))?;
            let meta = BlobMeta {
                generation: options.number("--generation")?,
                parent_generation: options.number("--parent")?,
                pair_id: options.number("--pair-id")?,
            };
            let bytes = blob::encode(&config, meta, key.as_ref()).map_err(|e| e.to_string())?;
            std::fs::write(output, &bytes).map_err(|e| format!("cannot write {output}: {e}"))?;
            let _ = writeln!(
                err,
                "wrote {output}: {} bytes, generation {}",
                bytes.len(),
                meta.generation
            );
            Ok(0)
        }
        "decode" => {
            options.check_known(&["--key-file"])?;
            let path = options.one_file()?;
            let bytes = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
            let key = read_key(options.get("--key-file"))?;
            let policy = match &key {
                Some(key) => MacPolicy::Require(key),
                None => MacPolicy::Inspect,
            };
            let decoded = blob::decode(&bytes, policy, None).map_err(|e| format!("{path}: {e}"))?;
            let header = decoded.header;
            let mac = match (header.is_keyed(), decoded.authenticated) {
                (false, _) => "none",
                (true, true) => "verified",
                (true, false) => "present, not verified (pass --key-file)",
            };
            let text = text::to_toml(&decoded.config).map_err(|e| e.to_string())?;
            let mut summary = format!(
                "# format_version = {}\n# generation = {}\n# parent_generation = {}\n# pair_id = {}\n# payload_bytes = {}\n# mac = {mac}\n",
                header.format_version, header.generation, header.parent_generation, header.pair_id, header.payload_len
            );
            for record in &decoded.history.entries {
                let pending = if record.confirm_pending {
                    " (confirm pending)"
                } else {
                    ""
                };
                summary.push_str(&format!(
                    "# commit {} at {} by {}{pending}: {:?}\n",
                    record.generation,
                    record.unix_time_s,
                    record.origin.as_str(),
                    record.comment.as_str()
                ));
            }
            write_out(out, summary.as_bytes())?;
            write_out(out, text.as_bytes())?;
            Ok(0)
        }
        "diff" => {
            options.check_known(&[])?;
            let [a, b] = options.positional.as_slice() else {
                return Err(format!("diff needs two files\n{USAGE}"));
            };
            let lines = compare(&read_config(a, err)?, &read_config(b, err)?);
            if lines.is_empty() {
                return Ok(0);
            }
            let _ = writeln!(out, "--- {a}\n+++ {b}");
            for line in lines {
                let _ = writeln!(out, "{line}");
            }
            Ok(1)
        }
        "help" | "--help" | "-h" => {
            let _ = write!(out, "{USAGE}");
            Ok(0)
        }
        other => Err(format!("unknown command \"{other}\"\n{USAGE}")),
    }
}

#[cfg(feature = "migrate")]
fn import_command(
    options: &Options,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, String> {
    options.check_known(&["--format", "-o"])?;
    let format = match options.get("--format") {
        Some(name) => Some(Format::from_name(name).ok_or_else(|| {
            format!("unknown format \"{name}\"; use keepalived, lvs or iptables")
        })?),
        None => None,
    };
    let read =
        |path: &str| std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"));
    let (config, invalid) = match options.positional.as_slice() {
        [path] => {
            let text = read(path)?;
            // A keepalived.conf is read with the files it includes (relative to it).
            let imported = match format.or_else(|| import::detect(&text)) {
                Some(Format::Keepalived) => import::keepalived::import_file(Path::new(path), &text),
                other => import::import(&text, other),
            }
            .map_err(|e| format!("{path}: {e}"))?;
            for note in &imported.notes {
                let _ = writeln!(err, "{path}: {note}");
            }
            let invalid = imported.notes.iter().any(|n| n.kind == NoteKind::Invalid);
            (imported.config, invalid)
        }
        [first, second] => {
            let pair =
                import::import_pair(&read(first)?, &read(second)?, format).map_err(
                    |e| match e {
                        PairImportError::First(e) => format!("{first}: {e}"),
                        PairImportError::Second(e) => format!("{second}: {e}"),
                        mixed @ PairImportError::MixedFormats { .. } => {
                            format!("{first} and {second}: {mixed}")
                        }
                    },
                )?;
            for (path, notes) in [(first, &pair.first), (second, &pair.second)] {
                for note in notes {
                    let _ = writeln!(err, "{path}: {note}");
                }
            }
            for note in &pair.merge {
                let _ = writeln!(err, "{first} + {second}: {note}");
            }
            let _ = writeln!(
                err,
                "one pair config: [pair.a] is {first}, [pair.b] is {second}; {} difference(s) a half cannot hold, {} warning(s)",
                pair.merge.iter().filter(|n| n.kind == MergeKind::Differs).count(),
                pair.merge.iter().filter(|n| n.kind == MergeKind::Warning).count(),
            );
            let invalid = pair
                .first
                .iter()
                .chain(&pair.second)
                .any(|n| n.kind == NoteKind::Invalid);
            (pair.config, invalid)
        }
        _ => {
            return Err(format!(
            "import takes one FILE, or the two directors' files of a pair (box a's first)\n{USAGE}"
        ))
        }
    };
    let code = report_issues(&config, err);
    let toml = text::to_toml(&config).map_err(|e| e.to_string())?;
    emit(options, out, toml.as_bytes())?;
    Ok(if invalid { 1 } else { code })
}

#[cfg(feature = "migrate")]
fn export_command(
    options: &Options,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, String> {
    options.check_known(&["--format", "-o", "--box"])?;
    let format = options
        .get("--format")
        .and_then(Format::from_name)
        .ok_or_else(|| String::from("export needs --format keepalived or --format lvs"))?;
    let role = match options.get("--box") {
        Some(text) => Some(
            text.parse::<Role>()
                .map_err(|_| format!("--box takes a or b, not \"{text}\""))?,
        ),
        None => None,
    };
    let path = options.one_file()?;
    let config = read_config(path, err)?;
    let report = |exported: &export::Exported, err: &mut dyn Write, prefix: &str| {
        for note in &exported.notes {
            let _ = writeln!(err, "{prefix}not exported: {note}");
        }
    };
    match (format, role) {
        (Format::Iptables, _) => Err(String::from(
            "export writes keepalived.conf or lvs.cf; iptables is an import format only",
        )),
        (Format::Lvs, Some(_)) => Err(String::from(
            "--box applies to --format keepalived: lvs.cf describes both routers in one file",
        )),
        (Format::Lvs, None) => {
            let exported = export::lvs::export(&config);
            report(&exported, err, "");
            emit(options, out, exported.text.as_bytes())?;
            Ok(0)
        }
        (Format::Keepalived, Some(role)) => {
            let exported = export::keepalived::export_box(&config, role);
            report(&exported, err, "");
            emit(options, out, exported.text.as_bytes())?;
            Ok(0)
        }
        (Format::Keepalived, None) if config.pair.is_some() => {
            let dir = options.get("-o").ok_or_else(|| {
                format!(
                    "{path} is a pair config and keepalived.conf describes one box: pass -o DIR to write DIR/{} and DIR/{}, or --box a|b for one box's file",
                    export::keepalived::pair_file_name(Role::A),
                    export::keepalived::pair_file_name(Role::B)
                )
            })?;
            std::fs::create_dir_all(dir).map_err(|e| {
                format!("cannot create directory {dir}: {e}; for a pair config -o names a directory (it gets one keepalived.conf per box)")
            })?;
            for (role, exported) in export::keepalived::export_pair(&config) {
                report(&exported, err, &format!("box {role}: "));
                let file = Path::new(dir).join(export::keepalived::pair_file_name(role));
                std::fs::write(&file, exported.text.as_bytes())
                    .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
                let hostname = config.for_box(role).system.hostname;
                let _ = writeln!(
                    err,
                    "wrote {}: box {role}{}",
                    file.display(),
                    if hostname.is_empty() {
                        String::new()
                    } else {
                        format!(" ({hostname})")
                    }
                );
            }
            Ok(0)
        }
        (Format::Keepalived, None) => {
            let exported = export::keepalived::export(&config);
            report(&exported, err, "");
            emit(options, out, exported.text.as_bytes())?;
            Ok(0)
        }
    }
}

fn read_config(path: &str, err: &mut dyn Write) -> Result<Config, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let (config, warnings) = parse_bytes(Path::new(path), &bytes).map_err(|e| e.to_string())?;
    for warning in warnings {
        let _ = writeln!(err, "{path}: {warning}");
    }
    Ok(config)
}

fn read_key(path: Option<&str>) -> Result<Option<MacKey>, String> {
    let Some(path) = path else { return Ok(None) };
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read key file {path}: {e}"))?;
    if let Ok(raw) = <[u8; 32]>::try_from(bytes.as_slice()) {
        return Ok(Some(MacKey(raw)));
    }
    let text = String::from_utf8_lossy(&bytes);
    let hex = text.trim();
    let mut key = [0u8; 32];
    if hex.len() != 64 {
        return Err(format!(
            "key file {path} must hold 32 bytes or 64 hex digits"
        ));
    }
    for (index, byte) in key.iter_mut().enumerate() {
        *byte = hex
            .get(index * 2..index * 2 + 2)
            .and_then(|pair| u8::from_str_radix(pair, 16).ok())
            .ok_or_else(|| format!("key file {path} must hold 32 bytes or 64 hex digits"))?;
    }
    Ok(Some(MacKey(key)))
}

fn report_issues(config: &Config, err: &mut dyn Write) -> i32 {
    let issues = validate::validate(config);
    for issue in &issues {
        let _ = writeln!(err, "{issue}");
    }
    let errors = issues
        .iter()
        .filter(|i| i.severity == Severity::Error)
        .count();
    let warnings = issues.len() - errors;
    let _ = writeln!(err, "{errors} error(s), {warnings} warning(s)");
    i32::from(errors > 0)
}

fn write_out(out: &mut dyn Write, bytes: &[u8]) -> Result<(), String> {
    out.write_all(bytes)
        .map_err(|e| format!("cannot write output: {e}"))
}

#[cfg(feature = "migrate")]
fn emit(options: &Options, out: &mut dyn Write, bytes: &[u8]) -> Result<(), String> {
    match options.get("-o") {
        Some(path) => std::fs::write(path, bytes).map_err(|e| format!("cannot write {path}: {e}")),
        None => write_out(out, bytes),
    }
}
