//! keepalived.conf import: `global_defs`, `vrrp_sync_group`, `vrrp_instance`,
//! `virtual_server_group`, `virtual_server`, and the files it `include`s.
//!
//! The file is read into a tree of statements (`words... { children }`), then each known keyword
//! is mapped onto the model. What keepalived accepts imports, or one item is refused with its
//! line and the reason; the cosmetic settings (notifications, `router_id`, SMTP) give warnings
//! at most, never an invalid import. Scripts (`notify*`, `vrrp_script`, `track_script`,
//! `MISC_CHECK`) cannot run on an appliance with no shell: a `MISC_CHECK` or a tracked
//! `vrrp_script` whose script is a TCP connect, an HTTP fetch or a ping becomes the built-in
//! check (a real server's check, or a VRRP instance's `track_checks` with the script's weight),
//! the others are reported with the built-in feature to use instead. Every checker of a real
//! server is run: the first is its `check`, the others its `more_checks`.
//!
//! [`import`] takes text alone: its `include` lines are reported, not read. [`import_file`] is
//! given the file's path as well and reads what it includes as keepalived does (lib/parser.c):
//! relative to the including file, glob patterns (`*`, `?`, `[...]`, `{a,b}`) in sorted order,
//! a pattern matching nothing skipped. Include loops, nesting deeper than
//! [`MAX_INCLUDE_DEPTH`], more than [`MAX_INCLUDED_FILES`] files or more than
//! [`MAX_INPUT_BYTES`] in all are errors. A note about an included file names it: "in
//! conf.d/web.conf: ..." with the line in that file.

use std::format;
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec::Vec;

use core::net::IpAddr;

use super::{
    add_referenced_interfaces, bounded, ImportError, Imported, Note, Notes, MAX_DEPTH,
    MAX_INPUT_BYTES,
};
use crate::bounded::BoundedVec;
use crate::model::{
    limits, Check, CheckKind, CheckTiming, Config, DnsRecordType, Forwarding, HttpBody, HttpUrl,
    IfName, InitialState, Notify, OnFailure, Persistence, Protocol, RealServer, Scheduler,
    SorryServer, StatusCodes, StatusRange, SyncGroup, TrackedCheck, TrackedLink, Vip,
    VirtualService, VrrpAuth, VrrpInstance, VrrpVersion,
};
use crate::net::{netmask_to_prefix, IpCidr};

/// Deepest nesting of included files (keepalived has none: an include loop runs it out of file
/// descriptors).
pub const MAX_INCLUDE_DEPTH: usize = 8;
/// Most files one import reads, the imported file included.
pub const MAX_INCLUDED_FILES: usize = 256;
/// Longest line keepalived reads: it reads lines into a 1024-byte buffer (`MAXBUF`) and skips a
/// longer one ("line too long - ignoring"), so a longer line is an error here.
pub const MAX_LINE_BYTES: usize = 1022;
/// Most patterns the `{a,b}` alternatives of one include pattern expand to.
const MAX_BRACE_EXPANSIONS: usize = 64;

/// One statement: its words and, for a block, its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Node {
    pub line: usize,
    pub words: Vec<String>,
    pub children: Option<Vec<Node>>,
}

impl Node {
    fn keyword(&self) -> &str {
        self.words.first().map_or("", String::as_str)
    }
    fn arg(&self, index: usize) -> Option<&str> {
        self.words.get(index).map(String::as_str)
    }
    fn children(&self) -> &[Node] {
        self.children.as_deref().unwrap_or(&[])
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Token {
    Word(String),
    Open,
    Close,
    Newline,
}

/// The tokens of one line (keepalived reads line by line: a quoted word ends with its line).
fn tokenize_line(text: &str, line: usize, tokens: &mut Vec<(Token, usize)>) {
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '#' | '!' => break,
            '{' => {
                chars.next();
                tokens.push((Token::Open, line));
            }
            '}' => {
                chars.next();
                tokens.push((Token::Close, line));
            }
            '"' => {
                chars.next();
                let mut word = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => {
                            if let Some(next) = chars.next() {
                                word.push(next);
                            }
                        }
                        c => word.push(c),
                    }
                }
                tokens.push((Token::Word(word), line));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '{' || c == '}' {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push((Token::Word(word), line));
            }
        }
    }
}

/// `text` up to its first `#` or `!` outside double quotes (keepalived's `decomment`).
fn strip_comment(text: &str) -> &str {
    let mut quoted = false;
    for (index, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' | '!' if !quoted => return text.get(..index).unwrap_or(text),
            _ => {}
        }
    }
    text
}

fn syntax(line: usize, message: impl Into<String>) -> ImportError {
    ImportError::Syntax {
        line,
        message: message.into(),
    }
}

/// One file read: notes and errors about its lines name it (the imported file has no name).
#[derive(Debug)]
struct Source {
    name: String,
    /// The file's line `n` has the global line number `offset + n`.
    offset: usize,
}

/// Reads a keepalived.conf and the files it includes into one token stream. Every file's lines
/// get global line numbers of their own, mapped back to the file and its line for notes.
#[derive(Debug, Default)]
struct Reader {
    tokens: Vec<(Token, usize)>,
    sources: Vec<Source>,
    next_offset: usize,
    notes: Notes,
    bytes: usize,
    files: usize,
    /// The files being read, outermost first (canonical path, name), to find include loops.
    open: Vec<(PathBuf, String)>,
    /// The imported file's directory: included files are named relative to it.
    root: Option<PathBuf>,
}

/// An `include` line's keyword and the rest of the line (keepalived's `is_include`: `include`
/// and its variants `includer`, `includem`, `includew`, `includeb`, `includea`).
fn include_directive(line: &str) -> Option<(&str, &str)> {
    let end = line.find(char::is_whitespace).unwrap_or(line.len());
    let (word, rest) = line.split_at(end);
    matches!(
        word,
        "include" | "includer" | "includem" | "includew" | "includeb" | "includea"
    )
    .then_some((word, rest))
}

/// The directory relative names in `file` are resolved against.
fn parent_dir(file: &Path) -> PathBuf {
    file.parent().map_or_else(PathBuf::new, Path::to_path_buf)
}

#[cfg(unix)]
fn is_executable(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o111 != 0
}

#[cfg(not(unix))]
fn is_executable(_meta: &std::fs::Metadata) -> bool {
    false
}

impl Reader {
    fn new(path: Option<&Path>) -> Reader {
        let mut reader = Reader {
            root: path.map(parent_dir),
            files: 1,
            ..Reader::default()
        };
        if let Some(path) = path {
            let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
            let name = path.file_name().map_or_else(
                || path.display().to_string(),
                |n| n.to_string_lossy().into(),
            );
            reader.open.push((canonical, name));
        }
        reader
    }

    /// Reads `text` (the file at `path`, when known) into a statement tree.
    fn tree(&mut self, text: &str, path: Option<&Path>) -> Result<Vec<Node>, ImportError> {
        if text.len() > MAX_INPUT_BYTES {
            return Err(ImportError::TooLarge {
                len: text.len(),
                max: MAX_INPUT_BYTES,
            });
        }
        self.bytes = text.len();
        self.read(text, String::new(), path, 0)
            .map_err(|e| self.locate_error(e))?;
        let tokens = core::mem::take(&mut self.tokens);
        let mut position = 0;
        parse_block(&tokens, &mut position, 0, 0).map_err(|e| self.locate_error(e))
    }

    fn read(
        &mut self,
        text: &str,
        name: String,
        path: Option<&Path>,
        depth: usize,
    ) -> Result<(), ImportError> {
        let offset = self.next_offset;
        let lines = text.split('\n').count();
        self.next_offset = offset.saturating_add(lines).saturating_add(1);
        self.sources.push(Source { name, offset });
        for (index, raw) in text.split('\n').enumerate() {
            let line = offset + index + 1;
            if raw.len() > MAX_LINE_BYTES {
                return Err(syntax(line, format!("the line is {} bytes long; keepalived reads lines of at most {MAX_LINE_BYTES} bytes and skips longer ones, so the file does not say what it seems to: shorten the line", raw.len())));
            }
            if let Some(byte) = raw
                .bytes()
                .find(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\r' | 0x0b | 0x0c)) || b == 0x7f)
            {
                return Err(syntax(
                    line,
                    format!("byte 0x{byte:02x} is not text: this is not a keepalived.conf (binary data?)"),
                ));
            }
            let trimmed = raw.trim_start();
            if let Some((keyword, rest)) = include_directive(trimmed) {
                self.include(keyword, rest, line, path, depth)?;
            } else if let Some(marked) = trimmed.strip_prefix('@') {
                if let Some(rest) = self.conditional(marked, line) {
                    tokenize_line(rest, line, &mut self.tokens);
                }
            } else if trimmed.starts_with('$')
                && trimmed
                    .split_whitespace()
                    .next()
                    .is_some_and(|w| w.contains('='))
            {
                let name = trimmed.split('=').next().unwrap_or(trimmed);
                self.notes.not_carried(line, name, format!("keepalived parameter definitions are not expanded by the import; write the value of {name} where it is used"));
            } else {
                tokenize_line(raw, line, &mut self.tokens);
            }
            self.tokens.push((Token::Newline, line));
        }
        Ok(())
    }

    /// A line that starts `@ID` (`@^ID`) is read only when keepalived runs with (without)
    /// `-i ID`. The import reads the file as keepalived without `-i` does.
    fn conditional<'t>(&mut self, marked: &'t str, line: usize) -> Option<&'t str> {
        let end = marked.find(char::is_whitespace).unwrap_or(marked.len());
        let (marker, rest) = marked.split_at(end);
        let keyword = format!("@{marker}");
        let rest = rest.trim_start();
        if rest.is_empty() {
            self.notes.not_carried(
                line,
                &keyword,
                "nothing follows the config id, so keepalived skips the line",
            );
            return None;
        }
        match marker.strip_prefix('^') {
            Some(id) => {
                self.notes.adjusted(line, &keyword, format!("the line applies unless keepalived runs with -i {id}; imported as keepalived reads the file without -i (kept)"));
                Some(rest)
            }
            None => {
                self.notes.not_carried(line, &keyword, format!("the line applies only when keepalived runs with -i {marker}; imported as keepalived reads the file without -i (skipped): to import that box's configuration, remove the \"@{marker} \" prefixes first"));
                None
            }
        }
    }

    fn include(
        &mut self,
        keyword: &str,
        rest: &str,
        line: usize,
        including: Option<&Path>,
        depth: usize,
    ) -> Result<(), ImportError> {
        let pattern = strip_comment(rest).trim().trim_matches('"');
        if pattern.is_empty() {
            self.notes.invalid(
                line,
                keyword,
                "no file named: include <file or glob pattern>",
            );
            return Ok(());
        }
        let Some(including) = including else {
            self.notes.not_carried(line, keyword, format!("\"{pattern}\" is not read: the text was imported without its file name, so what it includes cannot be found; import the file itself (tandem config import FILE)"));
            return Ok(());
        };
        if depth + 1 >= MAX_INCLUDE_DEPTH {
            return Err(syntax(line, format!("{keyword} {pattern}: included files are nested deeper than {MAX_INCLUDE_DEPTH} levels; flatten them")));
        }
        let resolved = parent_dir(including).join(pattern);
        let mut files = glob(&resolved);
        if files.is_empty() && Path::new(pattern).is_absolute() {
            if let Some((relative, found)) = self.next_to_root(pattern) {
                self.notes.adjusted(line, keyword, format!("\"{pattern}\" matches no file on this host; read \"{relative}\" next to the imported file instead"));
                files = found;
            }
        }
        if files.is_empty() {
            self.notes.not_carried(line, keyword, format!("\"{pattern}\" matches no file, so nothing is included (keepalived skips it too); copy the included files along with the imported one"));
            return Ok(());
        }
        for file in files {
            let Ok(meta) = std::fs::metadata(&file) else {
                continue;
            };
            let name = self.display(&file);
            // keepalived reads regular files only (`check_glob_file`).
            if !meta.is_file() {
                self.notes.not_carried(
                    line,
                    keyword,
                    format!("{name} is not a regular file (a directory?); keepalived skips it too"),
                );
                continue;
            }
            if is_executable(&meta) {
                self.notes.not_carried(line, keyword, format!("{name} is executable; keepalived reads no executable file, so it is not imported either"));
                continue;
            }
            let canonical = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
            if let Some(first) = self.open.iter().position(|(open, _)| *open == canonical) {
                let mut chain: Vec<&str> = self
                    .open
                    .iter()
                    .skip(first)
                    .map(|(_, n)| n.as_str())
                    .collect();
                chain.push(&name);
                return Err(syntax(line, format!("include loop: {}; keepalived would read these files over and over: remove the include that closes the loop", chain.join(" includes "))));
            }
            self.files += 1;
            if self.files > MAX_INCLUDED_FILES {
                return Err(syntax(
                    line,
                    format!("more than {MAX_INCLUDED_FILES} files are included; merge some"),
                ));
            }
            let bytes = std::fs::read(&file)
                .map_err(|e| syntax(line, format!("cannot read {name}: {e}")))?;
            self.bytes = self.bytes.saturating_add(bytes.len());
            if self.bytes > MAX_INPUT_BYTES {
                return Err(ImportError::TooLarge {
                    len: self.bytes,
                    max: MAX_INPUT_BYTES,
                });
            }
            let text = String::from_utf8(bytes).map_err(|e| {
                syntax(
                    line,
                    format!(
                        "{name} is not text (not UTF-8 at byte {}): is it a keepalived.conf?",
                        e.utf8_error().valid_up_to()
                    ),
                )
            })?;
            self.open.push((canonical, name.clone()));
            self.read(&text, name, Some(&file), depth + 1)?;
            self.open.pop();
        }
        Ok(())
    }

    /// An absolute include (`/etc/keepalived/conf.d/*.conf`) names files on the director; on
    /// the host running the import they usually sit next to the imported file: the longest
    /// tail of the pattern that matches there (`conf.d/*.conf`). A wildcard alone in the
    /// imported file's directory is not tried (it would match the imported file).
    fn next_to_root(&self, pattern: &str) -> Option<(String, Vec<PathBuf>)> {
        let root = self.root.as_ref()?;
        let parts: Vec<&str> = pattern.split('/').filter(|p| !p.is_empty()).collect();
        let literal = !has_wildcards(pattern);
        for start in 0..parts.len() {
            let tail = parts.get(start..)?;
            if tail.len() < 2 && !literal {
                break;
            }
            let relative = tail.join("/");
            let found = glob(&root.join(&relative));
            if !found.is_empty() {
                return Some((relative, found));
            }
        }
        None
    }

    /// How notes name an included file: relative to the imported file's directory.
    fn display(&self, file: &Path) -> String {
        self.root
            .as_ref()
            .and_then(|root| file.strip_prefix(root).ok())
            .filter(|relative| !relative.as_os_str().is_empty())
            .unwrap_or(file)
            .display()
            .to_string()
    }

    /// The source of global line `line` and the line in it.
    fn locate(&self, line: usize) -> (Option<&Source>, usize) {
        match self.sources.iter().rev().find(|s| s.offset < line) {
            Some(source) => (Some(source), line - source.offset),
            None => (None, line),
        }
    }

    fn locate_note(&self, mut note: Note) -> Note {
        let (source, line) = self.locate(note.line);
        note.line = line;
        if let Some(source) = source.filter(|s| !s.name.is_empty()) {
            note.message = format!("in {}: {}", source.name, note.message);
        }
        note
    }

    fn locate_error(&self, error: ImportError) -> ImportError {
        match error {
            ImportError::Syntax { line, message } => {
                let (source, line) = self.locate(line);
                match source.filter(|s| !s.name.is_empty()) {
                    Some(source) => syntax(line, format!("in {}: {message}", source.name)),
                    None => syntax(line, message),
                }
            }
            other => other,
        }
    }
}

fn has_wildcards(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '{'])
}

/// The existing paths `pattern` matches, as glob(3) with `GLOB_BRACE` finds them: each brace
/// alternative in turn, its matches sorted; names starting with a dot only when the pattern
/// says so.
fn glob(pattern: &Path) -> Vec<PathBuf> {
    let text = pattern.to_string_lossy();
    let mut found = Vec::new();
    for alternative in expand_braces(&text) {
        found.extend(glob_one(&alternative));
    }
    found
}

fn glob_one(pattern: &str) -> Vec<PathBuf> {
    let mut current = vec![if pattern.starts_with('/') {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    }];
    let mut any = false;
    for part in pattern.split('/').filter(|p| !p.is_empty()) {
        any = true;
        if !part.contains(['*', '?', '[']) {
            let literal = part.replace('\\', "");
            for path in &mut current {
                path.push(&literal);
            }
            continue;
        }
        let pattern: Vec<char> = part.chars().collect();
        let mut next = Vec::new();
        for dir in &current {
            let listed = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir.as_path()
            };
            let Ok(entries) = std::fs::read_dir(listed) else {
                continue;
            };
            let mut names: Vec<String> = entries
                .filter_map(Result::ok)
                .filter_map(|entry| entry.file_name().into_string().ok())
                .filter(|name| !name.starts_with('.') || part.starts_with('.'))
                .filter(|name| {
                    let name: Vec<char> = name.chars().collect();
                    wildcard_match(&pattern, &name)
                })
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|name| dir.join(name)));
        }
        current = next;
    }
    if !any {
        return Vec::new();
    }
    current.retain(|path| path.exists());
    current
}

/// `a{b,c}d` as `abd`, `acd` (nested braces too); at most [`MAX_BRACE_EXPANSIONS`] patterns.
fn expand_braces(pattern: &str) -> Vec<String> {
    let mut done = Vec::new();
    let mut pending = vec![pattern.to_string()];
    while let Some(text) = pending.pop() {
        match brace_span(&text) {
            Some((open, close)) => {
                let (head, tail) = (&text[..open], &text[close + 1..]);
                let inner = &text[open + 1..close];
                let mut alternatives = Vec::new();
                let (mut depth, mut start) = (0usize, 0usize);
                for (index, c) in inner.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => depth = depth.saturating_sub(1),
                        ',' if depth == 0 => {
                            alternatives.push(&inner[start..index]);
                            start = index + 1;
                        }
                        _ => {}
                    }
                }
                alternatives.push(&inner[start..]);
                // Alternatives in their order: pushed reversed onto the stack.
                for alternative in alternatives.into_iter().rev() {
                    if pending.len() + done.len() < MAX_BRACE_EXPANSIONS {
                        pending.push(format!("{head}{alternative}{tail}"));
                    }
                }
            }
            None => done.push(text),
        }
    }
    done
}

/// The first `{` with its matching `}` and a comma between them at its level.
fn brace_span(text: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut index = 0;
    while index < bytes.len() {
        match bytes.get(index) {
            Some(b'\\') => index += 2,
            Some(b'{') => {
                let mut depth = 0usize;
                let mut comma = false;
                for (offset, &byte) in bytes.iter().enumerate().skip(index) {
                    match byte {
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                if comma {
                                    return Some((index, offset));
                                }
                                break;
                            }
                        }
                        b',' if depth == 1 => comma = true,
                        _ => {}
                    }
                }
                index += 1;
            }
            _ => index += 1,
        }
    }
    None
}

/// fnmatch(3) without flags: `*`, `?`, `[abc]`, `[a-z]`, `[!x]`, `\` escapes.
fn wildcard_match(pattern: &[char], name: &[char]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while let Some(&c) = name.get(n) {
        if pattern.get(p) == Some(&'*') {
            star = Some((p, n));
            p += 1;
            continue;
        }
        if let Some(next) = wildcard_step(pattern, p, c) {
            p = next;
            n += 1;
            continue;
        }
        let Some((star_p, star_n)) = star else {
            return false;
        };
        p = star_p + 1;
        n = star_n + 1;
        star = Some((star_p, star_n + 1));
    }
    while pattern.get(p) == Some(&'*') {
        p += 1;
    }
    p == pattern.len()
}

/// Where the pattern continues when its element at `p` matches `c`.
fn wildcard_step(pattern: &[char], p: usize, c: char) -> Option<usize> {
    match *pattern.get(p)? {
        '?' => Some(p + 1),
        '[' => match char_class(pattern, p, c) {
            Some((matched, next)) => matched.then_some(next),
            None => (c == '[').then_some(p + 1),
        },
        '\\' => match pattern.get(p + 1) {
            Some(&escaped) => (escaped == c).then_some(p + 2),
            None => (c == '\\').then_some(p + 1),
        },
        literal => (literal == c).then_some(p + 1),
    }
}

/// Whether the class opening at `open` matches `c`, and where the pattern continues; None when
/// the class is not closed (the `[` is then a plain character).
fn char_class(pattern: &[char], open: usize, c: char) -> Option<(bool, usize)> {
    let mut index = open + 1;
    let negated = matches!(pattern.get(index), Some('!' | '^'));
    if negated {
        index += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let &member = pattern.get(index)?;
        if member == ']' && !first {
            return Some((matched != negated, index + 1));
        }
        first = false;
        match (pattern.get(index + 1), pattern.get(index + 2)) {
            (Some('-'), Some(&high)) if high != ']' => {
                matched |= member <= c && c <= high;
                index += 3;
            }
            _ => {
                matched |= member == c;
                index += 1;
            }
        }
    }
}

/// Reads keepalived.conf text (without its includes) into a statement tree.
#[cfg(test)]
pub(crate) fn parse_tree(text: &str) -> Result<Vec<Node>, ImportError> {
    Reader::new(None).tree(text, None)
}

fn parse_block(
    tokens: &[(Token, usize)],
    position: &mut usize,
    depth: usize,
    open_line: usize,
) -> Result<Vec<Node>, ImportError> {
    let mut nodes = Vec::new();
    let mut words: Vec<String> = Vec::new();
    let mut start_line = 0;
    while let Some((token, line)) = tokens.get(*position) {
        *position += 1;
        match token {
            Token::Word(word) => {
                if words.is_empty() {
                    start_line = *line;
                }
                words.push(word.clone());
            }
            Token::Newline => {
                if !words.is_empty() {
                    nodes.push(Node {
                        line: start_line,
                        words: core::mem::take(&mut words),
                        children: None,
                    });
                }
            }
            Token::Open => {
                if depth + 1 > MAX_DEPTH {
                    return Err(syntax(
                        *line,
                        format!("blocks nested deeper than {MAX_DEPTH} levels"),
                    ));
                }
                if words.is_empty() {
                    return Err(syntax(*line, "'{' without a keyword before it"));
                }
                let children = parse_block(tokens, position, depth + 1, start_line)?;
                nodes.push(Node {
                    line: start_line,
                    words: core::mem::take(&mut words),
                    children: Some(children),
                });
            }
            Token::Close => {
                if !words.is_empty() {
                    nodes.push(Node {
                        line: start_line,
                        words: core::mem::take(&mut words),
                        children: None,
                    });
                }
                if depth == 0 {
                    return Err(syntax(*line, "'}' without a matching '{'; remove it"));
                }
                return Ok(nodes);
            }
        }
    }
    if !words.is_empty() {
        nodes.push(Node {
            line: start_line,
            words,
            children: None,
        });
    }
    if depth > 0 {
        return Err(syntax(
            open_line,
            "the block opened here is not closed; add the missing '}'",
        ));
    }
    Ok(nodes)
}

const NO_SHELL: &str = "scripts cannot run on the appliance (it has no shell)";

fn num<T: core::str::FromStr>(node: &Node, index: usize, notes: &mut Notes) -> Option<T> {
    let Some(text) = node.arg(index) else {
        notes.invalid(node.line, node.keyword(), "value missing");
        return None;
    };
    match text.parse() {
        Ok(value) => Some(value),
        Err(_) => {
            notes.invalid(
                node.line,
                node.keyword(),
                format!("\"{text}\" is not a valid number here"),
            );
            None
        }
    }
}

fn ip(node: &Node, index: usize, notes: &mut Notes) -> Option<IpAddr> {
    let Some(text) = node.arg(index) else {
        notes.invalid(node.line, node.keyword(), "address missing");
        return None;
    };
    match text.parse() {
        Ok(value) => Some(value),
        Err(_) => {
            notes.invalid(
                node.line,
                node.keyword(),
                format!("\"{text}\" is not an IP address (the appliance does no DNS lookups)"),
            );
            None
        }
    }
}

/// Seconds (possibly fractional) to milliseconds.
fn seconds_ms(node: &Node, index: usize, notes: &mut Notes) -> Option<u32> {
    let text = node.arg(index)?;
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let whole: u32 = whole.parse().ok()?;
    let mut frac_ms = 0u32;
    for (position, digit) in fraction.chars().take(3).enumerate() {
        let digit = digit.to_digit(10)?;
        frac_ms += digit * [100, 10, 1][position];
    }
    let value = whole
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(frac_ms));
    if value.is_none() {
        notes.invalid(
            node.line,
            node.keyword(),
            format!("\"{text}\" seconds is out of range"),
        );
    }
    value
}

fn seconds_ms_noted(node: &Node, index: usize, notes: &mut Notes) -> Option<u32> {
    let value = seconds_ms(node, index, notes);
    if value.is_none() && node.arg(index).is_some_and(|t| t.parse::<f64>().is_err()) {
        notes.invalid(node.line, node.keyword(), "not a number of seconds");
    }
    value
}

fn flag_arg(node: &Node) -> bool {
    !matches!(node.arg(1), Some("false" | "off" | "no" | "0"))
}

/// Imports keepalived.conf text. Its `include` lines are reported, not read: use
/// [`import_file`] when the text is a file.
pub fn import(text: &str) -> Result<Imported, ImportError> {
    run(text, None)
}

/// Imports the keepalived.conf at `path`, whose text is `text`, with the files it includes
/// (relative names are relative to the including file; glob patterns).
pub fn import_file(path: &Path, text: &str) -> Result<Imported, ImportError> {
    run(text, Some(path))
}

fn run(text: &str, path: Option<&Path>) -> Result<Imported, ImportError> {
    let mut reader = Reader::new(path);
    let tree = reader.tree(text, path)?;
    let mut notes = core::mem::take(&mut reader.notes);
    let config = import_tree(&tree, &mut notes);
    let notes = notes
        .0
        .into_iter()
        .map(|note| reader.locate_note(note))
        .collect();
    Ok(Imported { config, notes })
}

/// A `virtual_server_group` block, and whether a `virtual_server group` uses it.
struct Group<'a> {
    name: &'a str,
    node: &'a Node,
    used: bool,
}

fn import_tree(tree: &[Node], notes: &mut Notes) -> Config {
    let mut config = Config::default();
    let mut default_version = VrrpVersion::V2;
    let mut strict = false;
    // Global VRRP version must be known before instances.
    for node in tree {
        if node.keyword() == "global_defs" {
            for child in node.children() {
                if child.keyword() == "vrrp_strict" {
                    strict = true;
                }
                if child.keyword() == "vrrp_version" {
                    default_version = if child.arg(1) == Some("3") {
                        VrrpVersion::V3
                    } else {
                        VrrpVersion::V2
                    };
                }
            }
        }
    }
    // keepalived resolves `virtual_server group NAME` after reading the whole file.
    let mut groups: Vec<Group<'_>> = Vec::new();
    for node in tree {
        if node.keyword() == "virtual_server_group" {
            match node.arg(1) {
                Some(name) if groups.iter().any(|g| g.name == name) => notes.invalid(
                    node.line,
                    "virtual_server_group",
                    format!("\"{name}\" is defined twice; the first definition is used"),
                ),
                Some(name) => groups.push(Group {
                    name,
                    node,
                    used: false,
                }),
                None => notes.invalid(node.line, "virtual_server_group", "name missing"),
            }
        }
    }
    // keepalived resolves `track_script` after reading the whole file, too.
    let mut scripts: Vec<Script<'_>> = Vec::new();
    for node in tree.iter().filter(|n| n.keyword() == "vrrp_script") {
        if let Some(mut script) = vrrp_script(node) {
            if scripts.iter().any(|s| s.name == script.name) {
                // Kept for its place in the file; `track_script` finds the first.
                script.notes = Notes::default();
                script.notes.invalid(
                    node.line,
                    "vrrp_script",
                    format!(
                        "\"{}\" is defined twice; the first definition is used",
                        script.name
                    ),
                );
                script.tracked = None;
            }
            scripts.push(script);
        }
    }
    let mut referenced: Vec<IfName> = Vec::new();
    let mut sync_lines: Vec<usize> = Vec::new();
    for node in tree {
        match node.keyword() {
            "global_defs" => global_defs(node, &mut config, notes),
            "vrrp_sync_group" => {
                if sync_group(node, &mut config, notes) {
                    sync_lines.push(node.line);
                }
            }
            "vrrp_instance" => {
                for child in node.children() {
                    if child.keyword() == "lvs_sync_daemon_interface" {
                        notes.adjusted(child.line, "lvs_sync_daemon_interface", "deprecated inside vrrp_instance: keepalived takes it as the global lvs_sync_daemon, and so does the import");
                        lvs_sync_daemon(child, &mut config, notes);
                    }
                }
                if let Some(mut instance) = vrrp_instance(node, default_version, &scripts, notes) {
                    accept_mode(node, &mut instance, strict, notes);
                    referenced.push(instance.interface.clone());
                    referenced.extend(instance.vips.iter().filter_map(|v| v.interface.clone()));
                    referenced.extend(instance.track_interfaces.iter().map(|t| t.name.clone()));
                    if config.vrrp.push(instance).is_err() {
                        notes.invalid(node.line, "vrrp_instance", "too many VRRP instances");
                    }
                }
            }
            "virtual_server" => {
                for service in virtual_servers(node, &mut groups, notes) {
                    if config.virtual_services.push(service).is_err() {
                        notes.invalid(node.line, "virtual_server", "too many virtual services");
                        break;
                    }
                }
            }
            "virtual_server_group" => {}
            "vrrp_script" => {
                match scripts.iter_mut().find(|s| core::ptr::eq(s.node, node)) {
                    Some(script) => notes.0.append(&mut script.notes.0),
                    None => notes.invalid(node.line, "vrrp_script", "name missing; keepalived ignores it"),
                }
            }
            "static_ipaddress" => notes.not_carried(node.line, "static_ipaddress", "addresses keepalived adds at start are interface addresses in Tandem: give them under [[interfaces]] with their prefix (keepalived's default is /32)"),
            "static_routes" | "static_rules" => notes.not_carried(node.line, node.keyword(), "routes and routing rules are not part of Tandem's config model"),
            "SSL" => notes.not_carried(node.line, "SSL", "Tandem's SSL_GET checks take any server certificate, as keepalived does without a CA, and present none of their own: this block's CA, client certificate and key are not imported (model change needed)"),
            other => notes.not_carried(node.line, other, "this keepalived block has no Tandem equivalent"),
        }
    }
    for group in groups.iter().filter(|g| !g.used) {
        notes.adjusted(
            group.node.line,
            "virtual_server_group",
            format!("\"{}\" is used by no virtual_server group, so it has no effect (in keepalived either); nothing to import", group.name),
        );
    }
    tidy_sync_groups(&mut config, &sync_lines, notes);
    add_referenced_interfaces(&mut config, &referenced);
    config
}

/// keepalived ignores a sync group member that is no vrrp_instance and removes a sync group
/// left without members (vrrp.c, vrrp_sync.c); so does the import.
fn tidy_sync_groups(config: &mut Config, lines: &[usize], notes: &mut Notes) {
    let names: Vec<crate::model::Name> = config.vrrp.iter().map(|v| v.name.clone()).collect();
    let mut keep = Vec::new();
    for (group, &line) in config.sync_groups.iter().zip(lines) {
        let mut group = group.clone();
        group.members.retain(|member| {
            let known = names.contains(member);
            if !known {
                notes.adjusted(line, "vrrp_sync_group", format!("member \"{member}\" of \"{}\" is not a vrrp_instance; keepalived ignores it, and so does the import", group.name));
            }
            known
        });
        if group.members.is_empty() {
            notes.adjusted(line, "vrrp_sync_group", format!("\"{}\" has no members (they are listed inside group {{ }}); keepalived removes it, and so does the import", group.name));
        } else {
            keep.push(group);
        }
    }
    // As many groups as before at most: they fit.
    config.sync_groups = BoundedVec::from_vec(keep).unwrap_or_default();
}

/// What a script does, when it is one of the common one-liners a built-in check replaces.
#[derive(Debug, Clone, PartialEq, Eq)]
enum ScriptProbe {
    /// `nc -z HOST PORT`, `</dev/tcp/HOST/PORT`: a TCP connect.
    Tcp { host: String, port: u16 },
    /// `ping -c N HOST`: an ICMP echo.
    Ping { host: String },
    /// `curl --fail URL`, `wget URL`: an HTTP(S) GET that succeeds on a 2xx answer (or a 3xx).
    Http {
        tls: bool,
        host: String,
        port: Option<u16>,
        path: String,
    },
}

impl core::fmt::Display for ScriptProbe {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ScriptProbe::Tcp { host, port } => write!(f, "a TCP connect to {host} port {port}"),
            ScriptProbe::Ping { host } => write!(f, "a ping of {host}"),
            ScriptProbe::Http {
                tls, host, path, ..
            } => write!(
                f,
                "an HTTP{} GET of {path} from {host}",
                if *tls { "S" } else { "" }
            ),
        }
    }
}

/// Recognises the script one-liners that are a TCP connect or an HTTP GET. `timeout N` and
/// `sh -c '...'` wrappers are looked through; the timeout is returned with the probe.
fn script_probe(script: &str) -> Option<(ScriptProbe, Option<u32>)> {
    let words: Vec<String> = script
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '\'' || c == '"').to_string())
        .filter(|w| !w.is_empty())
        .collect();
    let mut timeout_ms = None;
    let mut rest: &[String] = &words;
    loop {
        let first = rest
            .first()?
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        match first.as_str() {
            "timeout" => {
                timeout_ms = rest
                    .get(1)
                    .and_then(|t| t.trim_end_matches('s').parse::<u32>().ok())
                    .map(|s| s.saturating_mul(1000));
                rest = rest.get(2..)?;
            }
            "sh" | "bash" | "dash" | "ash" => match rest.get(1).map(String::as_str) {
                Some("-c") => rest = rest.get(2..)?,
                _ => return None,
            },
            "exec" => rest = rest.get(1..)?,
            _ => break,
        }
    }
    let joined = rest.join(" ");
    if let Some(after) = joined.split("/dev/tcp/").nth(1) {
        let mut parts = after.splitn(2, '/');
        let host = parts.next()?.to_string();
        let port = parts
            .next()?
            .split(|c: char| !c.is_ascii_digit())
            .next()?
            .parse()
            .ok()?;
        return Some((ScriptProbe::Tcp { host, port }, timeout_ms));
    }
    let command = rest.first()?.rsplit('/').next().unwrap_or_default();
    let args = rest.get(1..).unwrap_or_default();
    match command {
        "nc" | "ncat" | "netcat" => {
            let mut zero_io = false;
            let mut positional = Vec::new();
            let mut iter = args.iter();
            while let Some(arg) = iter.next() {
                if let Some(flags) = arg.strip_prefix('-') {
                    zero_io |= flags.contains('z') && !flags.starts_with('-');
                    if let Some(position) = flags.find('w') {
                        let value = match flags.get(position + 1..) {
                            Some(v) if !v.is_empty() => Some(v.to_string()),
                            _ => iter.next().cloned(),
                        };
                        timeout_ms = value
                            .and_then(|v| v.parse::<u32>().ok())
                            .map(|s| s.saturating_mul(1000))
                            .or(timeout_ms);
                    } else if matches!(flags, "i" | "s" | "p" | "q" | "W" | "x" | "X" | "P") {
                        iter.next();
                    }
                } else {
                    positional.push(arg.as_str());
                }
            }
            match (zero_io, positional.as_slice()) {
                (true, [host, port]) => Some((
                    ScriptProbe::Tcp {
                        host: (*host).to_string(),
                        port: port.parse().ok()?,
                    },
                    timeout_ms,
                )),
                _ => None,
            }
        }
        "ping" | "ping6" | "fping" => {
            // `ping -c 1 [-W 1] [-q] HOST`: the options that take a value are skipped with it;
            // without a count ping never exits, so it is no check.
            let mut count = command == "fping";
            let mut positional = Vec::new();
            let mut iter = args.iter();
            while let Some(arg) = iter.next() {
                match arg.strip_prefix('-') {
                    Some(flags) if flags.starts_with('c') => {
                        count = true;
                        if flags.len() == 1 {
                            iter.next();
                        }
                    }
                    Some(flags) if flags.starts_with('W') || flags.starts_with('w') => {
                        let value = match flags.get(1..) {
                            Some(v) if !v.is_empty() => Some(v.to_string()),
                            _ => iter.next().cloned(),
                        };
                        timeout_ms = value
                            .and_then(|v| v.parse::<u32>().ok())
                            .map(|s| s.saturating_mul(1000))
                            .or(timeout_ms);
                    }
                    Some("i" | "I" | "s" | "t" | "p" | "Q" | "l" | "M") => {
                        iter.next();
                    }
                    Some(_) => {}
                    None => positional.push(arg.as_str()),
                }
            }
            match (count, positional.as_slice()) {
                (true, [host]) => Some((
                    ScriptProbe::Ping {
                        host: (*host).to_string(),
                    },
                    timeout_ms,
                )),
                _ => None,
            }
        }
        "curl" | "wget" => {
            let mut fail = command == "wget";
            let mut url = None;
            let mut iter = args.iter();
            while let Some(arg) = iter.next() {
                if arg == "--fail" || arg == "--fail-with-body" {
                    fail = true;
                } else if let Some(flags) = arg.strip_prefix('-').filter(|f| !f.starts_with('-')) {
                    if command == "curl" && flags.chars().all(|c| "fsSLkv".contains(c)) {
                        fail |= flags.contains('f');
                    } else if matches!(flags, "o" | "m" | "H" | "A" | "u" | "O" | "T" | "t" | "e") {
                        iter.next();
                    }
                } else if arg.starts_with("http://") || arg.starts_with("https://") {
                    url = Some(arg.as_str());
                }
            }
            if !fail {
                return None;
            }
            let url = url?;
            let (tls, rest) = match url.strip_prefix("https://") {
                Some(rest) => (true, rest),
                None => (false, url.strip_prefix("http://")?),
            };
            let (authority, path) = match rest.find('/') {
                Some(index) => (&rest[..index], &rest[index..]),
                None => (rest, "/"),
            };
            let (host, port) = match authority.strip_prefix('[') {
                Some(v6) => {
                    let (host, after) = v6.split_once(']')?;
                    (host, after.strip_prefix(':'))
                }
                None => match authority.rsplit_once(':') {
                    Some((host, port)) => (host, Some(port)),
                    None => (authority, None),
                },
            };
            let port = match port {
                Some(port) => Some(port.parse().ok()?),
                None => None,
            };
            Some((
                ScriptProbe::Http {
                    tls,
                    host: host.to_string(),
                    port,
                    path: path.to_string(),
                },
                timeout_ms,
            ))
        }
        _ => None,
    }
}

/// A `vrrp_script`, read before the instances (keepalived resolves `track_script` after reading
/// the whole file).
struct Script<'a> {
    node: &'a Node,
    name: &'a str,
    /// The built-in check doing what the script does, when it is a connect, a fetch or a ping
    /// of an address: what `track_script` tracks (its weight the script's).
    tracked: Option<TrackedCheck>,
    /// The notes about the block, given where it stands in the file.
    notes: Notes,
}

/// keepalived's `vrrp_script` (vrrp_parser.c): `script`, `interval` (1 s), `timeout` (the
/// interval), `weight` (0: FAULT while failing), `rise`, `fall` (1 each). The script cannot run;
/// one that is a connect, a fetch or a ping of an address becomes a tracked built-in check with
/// the same interval and timeout, `fall` as its retries (one interval apart).
fn vrrp_script(node: &Node) -> Option<Script<'_>> {
    let mut notes = Notes::default();
    // Notes on settings that matter only when the script becomes a tracked check.
    let mut details = Notes::default();
    let name = node.arg(1)?;
    let line = node.line;
    let mut script = None;
    let (mut interval_ms, mut timeout_ms) = (1000u32, None);
    let mut weight: i16 = 0;
    let mut fall: u32 = 1;
    for child in node.children() {
        match child.keyword() {
            "script" => script = Some(child.words.get(1..).unwrap_or_default().join(" ")),
            "interval" => {
                interval_ms = seconds_ms_noted(child, 1, &mut notes).unwrap_or(interval_ms)
            }
            "timeout" => timeout_ms = seconds_ms_noted(child, 1, &mut notes).or(timeout_ms),
            "weight" => {
                weight = num(child, 1, &mut notes).unwrap_or(0);
                if child.arg(2) == Some("reverse") {
                    details.not_carried(child.line, "weight", "reverse is not carried: the weight applies as without it (> 0 added while the check passes, < 0 while it fails)");
                }
            }
            "fall" => fall = num(child, 1, &mut notes).unwrap_or(1).max(1),
            "rise" => {
                if num::<u32>(child, 1, &mut notes).is_some_and(|rise| rise > 1) {
                    details.not_carried(
                        child.line,
                        "rise",
                        "a tracked check counts as passing again at its first pass",
                    );
                }
            }
            "user" => {}
            "init_fail" => details.not_carried(
                child.line,
                "init_fail",
                "a tracked check starts as passing until its first run",
            ),
            other => notes.not_carried(
                child.line,
                other,
                "vrrp_script setting with no Tandem equivalent",
            ),
        }
    }
    let Some(script) = script else {
        notes.not_carried(
            line,
            "vrrp_script",
            format!("\"{name}\" has no script; keepalived ignores it, and so does the import"),
        );
        return Some(Script {
            node,
            name,
            tracked: None,
            notes,
        });
    };
    let instead = "the instances tracking it do not react to it: track a built-in check instead ([[vrrp.track_checks]]: tcp, http, ping, udp, dns ...)";
    let Some((probe, probe_timeout)) = script_probe(&script) else {
        notes.not_carried(
            line,
            "vrrp_script",
            format!("{NO_SHELL}: \"{script}\" is not run; {instead}"),
        );
        return Some(Script {
            node,
            name,
            tracked: None,
            notes,
        });
    };
    let (address, port, kind) = match probe_target(&probe) {
        Ok(target) => target,
        Err(ProbeUnfit::LongPath) => {
            notes.not_carried(
                line,
                "vrrp_script",
                format!(
                    "\"{script}\" is {probe}, but the path is longer than 128 bytes; {instead}"
                ),
            );
            return Some(Script {
                node,
                name,
                tracked: None,
                notes,
            });
        }
        Err(ProbeUnfit::HostName(host)) => {
            notes.not_carried(line, "vrrp_script", format!("\"{script}\" is {probe}, but {host} is a host name and the appliance does no DNS lookups; {instead}"));
            return Some(Script {
                node,
                name,
                tracked: None,
                notes,
            });
        }
    };
    let Some(check_name) = bounded(name, line, "vrrp_script", &mut notes) else {
        return Some(Script {
            node,
            name,
            tracked: None,
            notes,
        });
    };
    let check = Check {
        kind,
        timing: CheckTiming {
            interval_ms,
            timeout_ms: timeout_ms.or(probe_timeout).unwrap_or(interval_ms),
            retries: u8::try_from(fall - 1).unwrap_or(u8::MAX),
            retry_delay_ms: interval_ms,
        },
        ..Check::default()
    };
    let http = if matches!(probe, ScriptProbe::Http { .. }) {
        " (a 3xx answer counts as failing, where the script may have taken it)"
    } else {
        ""
    };
    notes.0.append(&mut details.0);
    notes.adjusted(line, "vrrp_script", format!("\"{script}\" is {probe}: the instances tracking it track the built-in check that does the same (track_checks){http}"));
    Some(Script {
        node,
        name,
        tracked: Some(TrackedCheck {
            name: check_name,
            address,
            port,
            check,
            weight,
        }),
        notes,
    })
}

/// One instance's `track_script` block: `NAME [weight N [reverse]]` per line, each a tracked
/// check when its script became one.
fn track_script(
    child: &Node,
    scripts: &[Script<'_>],
    instance: &mut VrrpInstance,
    notes: &mut Notes,
) {
    for entry in child.children() {
        let Some(name) = entry.arg(0) else { continue };
        let Some(script) = scripts.iter().find(|s| s.name == name) else {
            notes.invalid(entry.line, "track_script", format!("no vrrp_script is called \"{name}\"; keepalived ignores it, and so does the import"));
            continue;
        };
        let Some(mut tracked) = script.tracked.clone() else {
            notes.not_carried(entry.line, "track_script", format!("\"{name}\": {NO_SHELL}; the instance does not react to it (see the vrrp_script's note)"));
            continue;
        };
        if entry.arg(1) == Some("weight") {
            tracked.weight = num(entry, 2, notes).unwrap_or(tracked.weight);
            if entry.arg(3) == Some("reverse") {
                notes.not_carried(
                    entry.line,
                    "track_script",
                    "reverse is not carried: the weight applies as without it",
                );
            }
        }
        if instance.track_checks.iter().any(|t| t.name == tracked.name) {
            notes.adjusted(
                entry.line,
                "track_script",
                format!("\"{name}\" is tracked twice; once is enough"),
            );
            continue;
        }
        if instance.track_checks.push(tracked).is_err() {
            notes.invalid(
                entry.line,
                "track_script",
                format!(
                    "\"{name}\" is not tracked: at most {} tracked checks per instance",
                    limits::TRACKED_CHECKS
                ),
            );
        }
    }
}

/// Keeps the import going past a bad cosmetic value: a note that would mark the import invalid
/// is a warning (not carried over) instead.
fn cosmetic(local: Notes, notes: &mut Notes) {
    for mut note in local.0 {
        if note.kind == super::NoteKind::Invalid {
            note.kind = super::NoteKind::NotCarried;
        }
        notes.0.push(note);
    }
}

fn global_defs(node: &Node, config: &mut Config, notes: &mut Notes) {
    let mut notify = Notify::default();
    let mut any_notify = false;
    let mut recipients_line = None;
    let mut local = Notes::default();
    for child in node.children() {
        let line = child.line;
        match child.keyword() {
            "router_id" => match child.arg(1) {
                Some(name) => {
                    if let Some(name) = bounded(name, line, "router_id", &mut local) {
                        config.system.hostname = name;
                    }
                }
                None => local.not_carried(line, "router_id", "no name given"),
            },
            "notification_email" => {
                any_notify = true;
                recipients_line = Some(line);
                for entry in child.children() {
                    for word in &entry.words {
                        recipient(word, entry.line, &mut notify, &mut local);
                    }
                }
            }
            "notification_email_from" => {
                any_notify = true;
                match child.arg(1) {
                    Some(from) => {
                        notify.email_from = bounded(from, line, "notification_email_from", &mut local);
                    }
                    None => local.not_carried(line, "notification_email_from", "no address given"),
                }
            }
            "smtp_server" => {
                any_notify = true;
                match child.arg(1).map(str::parse::<IpAddr>) {
                    Some(Ok(address)) => notify.smtp_server = Some(address),
                    Some(Err(_)) => local.not_carried(line, "smtp_server", format!("\"{}\" is a host name; the appliance does no DNS lookups, so notifications need the relay's address: smtp_server <address>", child.arg(1).unwrap_or_default())),
                    None => local.not_carried(line, "smtp_server", "no server given"),
                }
                if child.arg(2).is_some() {
                    notify.smtp_port = num(child, 2, &mut local).unwrap_or(25);
                }
            }
            "smtp_connect_timeout" => {
                any_notify = true;
                if let Some(timeout) = num::<u16>(child, 1, &mut local) {
                    notify.smtp_connect_timeout_s = timeout.max(1);
                    if timeout == 0 {
                        local.adjusted(line, "smtp_connect_timeout", "0 is taken as 1 second, as keepalived does");
                    }
                }
            }
            "vrrp_version" => {}
            "lvs_sync_daemon" | "lvs_sync_daemon_interface" => lvs_sync_daemon(child, config, notes),
            "vrrp_strict" => notes.not_carried(
                line,
                "vrrp_strict",
                "strict mode's checks and resets are not applied; its no_accept default is (instances without accept get accept_mode = false)",
            ),
            other => notes.not_carried(line, other, "global setting with no Tandem equivalent"),
        }
    }
    // keepalived sends mail only with recipients and a server (core/smtp.c); Tandem refuses
    // recipients without a server.
    if !notify.email_to.is_empty() && notify.smtp_server.is_none() {
        local.not_carried(recipients_line.unwrap_or(node.line), "notification_email", "keepalived sends no mail without smtp_server, so the recipients are not imported (Tandem needs a relay for them): add smtp_server <relay address> to keep them");
        notify.email_to = BoundedVec::new();
    }
    cosmetic(local, notes);
    if any_notify {
        config.notify = Some(notify);
    }
}

/// One `notification_email` entry: user@domain, or a local mailbox (`acassen`, which
/// keepalived and every MTA take: the relay adds its domain).
fn recipient(word: &str, line: usize, notify: &mut Notify, notes: &mut Notes) {
    if let Some(value) = bounded(word, line, "notification_email", notes) {
        if notify.email_to.push(value).is_err() {
            notes.not_carried(
                line,
                "notification_email",
                format!(
                    "\"{word}\" is not imported: Tandem mails at most {} recipients",
                    limits::EMAIL_RECIPIENTS
                ),
            );
        }
    }
}

/// `lvs_sync_daemon <IFACE> <VRRP_INSTANCE> [id N] [maxlen N] [port N] [ttl N] [group IP]`
/// (and the older `lvs_sync_daemon_interface <IFACE>`): IPVS connection sync on `IFACE`, as
/// `peer_link.ipvs_sync` with `peer_link.ipvs_sync_interface` (the peer link is created when
/// the file has none). keepalived runs the master daemon on the instance's MASTER and the
/// backup on its BACKUP; Tandem runs both on both directors, so the instance is not needed.
fn lvs_sync_daemon(node: &Node, config: &mut Config, notes: &mut Notes) {
    let keyword = node.keyword();
    if let Some(interface) = config
        .peer_link
        .as_ref()
        .and_then(|p| p.ipvs_sync_interface.as_ref())
    {
        notes.not_carried(node.line, keyword, format!("the sync daemon is already set on {interface}; keepalived ignores this one, and so does the import"));
        return;
    }
    let Some(interface) = node.arg(1) else {
        notes.invalid(
            node.line,
            keyword,
            "the interface is missing: lvs_sync_daemon <interface> <vrrp_instance>",
        );
        return;
    };
    let Some(interface) = bounded::<{ limits::IFNAME_BYTES }>(interface, node.line, keyword, notes)
    else {
        return;
    };
    let peer = config
        .peer_link
        .get_or_insert_with(crate::model::PeerLink::default);
    peer.ipvs_sync = true;
    peer.ipvs_sync_interface = Some(interface.clone());
    let peer_port = peer.interface.clone();
    if config.interface(&peer_port).is_none() {
        let _ = config.interfaces.push(crate::model::Interface {
            name: peer_port,
            role: Some(crate::model::PortRole::Peer),
            ..crate::model::Interface::default()
        });
    }
    add_referenced_interfaces(config, &[interface]);
    if keyword == "lvs_sync_daemon" {
        match node.arg(2) {
            Some(instance) => notes.adjusted(node.line, keyword, format!("Tandem runs the master and the backup sync daemon on both directors at once, so connections are synced whichever holds the VIP; instance \"{instance}\" is not needed")),
            None => notes.invalid(node.line, keyword, "the VRRP instance is missing: lvs_sync_daemon <interface> <vrrp_instance>"),
        }
    }
    let mut options = node.words.iter().skip(3);
    while let Some(option) = options.next() {
        let value = options.next();
        match (option.as_str(), value) {
            ("id", Some(id)) => notes.not_carried(node.line, "lvs_sync_daemon id", format!("sync id {id} is not kept: Tandem derives the sync id from the pair id (its low 8 bits)")),
            ("maxlen" | "port" | "ttl" | "group", Some(value)) => notes.not_carried(node.line, &format!("lvs_sync_daemon {option}"), format!("{value} is not kept: Tandem uses the kernel defaults (group 224.0.0.81, port 8848, TTL 1, message size from the MTU)")),
            (option, _) => notes.invalid(node.line, keyword, format!("\"{option}\" needs a value, or is not an lvs_sync_daemon option (id, maxlen, port, ttl, group)")),
        }
    }
}

/// Adds the sync group; false when it does not fit.
fn sync_group(node: &Node, config: &mut Config, notes: &mut Notes) -> bool {
    let mut group = SyncGroup::default();
    if let Some(name) = node
        .arg(1)
        .and_then(|n| bounded(n, node.line, "vrrp_sync_group", notes))
    {
        group.name = name;
    }
    for child in node.children() {
        match child.keyword() {
            "group" => {
                for member in child.children() {
                    for word in &member.words {
                        if let Some(name) = bounded::<32>(word, member.line, "group", notes) {
                            if group.members.push(name).is_err() {
                                notes.invalid(member.line, "group", "too many members");
                            }
                        }
                    }
                }
            }
            other if other.starts_with("notify") => notes.not_carried(child.line, other, format!("{NO_SHELL}; state changes are sent by e-mail ([notify]) and on the metrics endpoint")),
            "smtp_alert" => notes.adjusted(child.line, "smtp_alert", "Tandem mails every state change when [notify] is set"),
            other if child.children.is_none() && child.words.len() == 1 => notes.not_carried(child.line, other, "not a sync group setting: keepalived ignores it too (members are listed inside group { })"),
            other => notes.not_carried(child.line, other, "sync group setting with no Tandem equivalent"),
        }
    }
    if config.sync_groups.push(group).is_err() {
        notes.invalid(node.line, "vrrp_sync_group", "too many sync groups");
        return false;
    }
    true
}

fn vrrp_instance(
    node: &Node,
    default_version: VrrpVersion,
    scripts: &[Script<'_>],
    notes: &mut Notes,
) -> Option<VrrpInstance> {
    let mut instance = VrrpInstance {
        version: default_version,
        ..VrrpInstance::default()
    };
    instance.name = node
        .arg(1)
        .and_then(|n| bounded(n, node.line, "vrrp_instance", notes))?;
    for child in node.children() {
        let line = child.line;
        match child.keyword() {
            "state" => {
                instance.initial_state = match child.arg(1) {
                    Some("MASTER") => InitialState::Master,
                    Some("BACKUP") => InitialState::Backup,
                    other => {
                        notes.invalid(line, "state", format!("{other:?} is neither MASTER nor BACKUP"));
                        InitialState::Backup
                    }
                }
            }
            "interface" => {
                if let Some(name) = child.arg(1).and_then(|n| bounded(n, line, "interface", notes)) {
                    instance.interface = name;
                }
            }
            "virtual_router_id" => instance.vrid = num(child, 1, notes).unwrap_or(0),
            "priority" => instance.priority = num(child, 1, notes).unwrap_or(100),
            "advert_int" => {
                if let Some(ms) = seconds_ms_noted(child, 1, notes) {
                    instance.advert_interval_cs = u16::try_from(ms / 10).unwrap_or(u16::MAX);
                    if ms % 10 != 0 {
                        notes.adjusted(line, "advert_int", "rounded down to whole centiseconds");
                    }
                }
            }
            "version" => {
                instance.version = match child.arg(1) {
                    Some("3") => VrrpVersion::V3,
                    Some("2") => VrrpVersion::V2,
                    other => {
                        notes.invalid(line, "version", format!("{other:?} is not 2 or 3"));
                        instance.version
                    }
                }
            }
            "authentication" => authentication(child, &mut instance, notes),
            "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                if child.keyword() == "virtual_ipaddress_excluded" {
                    notes.adjusted(line, "virtual_ipaddress_excluded", "excluded addresses float with the instance like the others (Tandem always lists every address in adverts)");
                }
                for entry in child.children() {
                    if let Some(vip) = vip(entry, notes) {
                        if instance.vips.push(vip).is_err() {
                            notes.invalid(entry.line, "virtual_ipaddress", "too many virtual addresses (maximum 64)");
                        }
                    }
                }
            }
            "nopreempt" => instance.preempt = false,
            "preempt" => instance.preempt = true,
            "preempt_delay" => instance.preempt_delay_s = num(child, 1, notes).unwrap_or(0),
            // Decided together with vrrp_strict by `accept_mode` after the block.
            "accept" | "no_accept" => {}
            "strict_mode" => notes.not_carried(line, "strict_mode", "strict mode's checks and resets are not applied; its no_accept default is"),
            "unicast_src_ip" => instance.unicast_source = ip(child, 1, notes),
            "unicast_peer" => {
                for entry in child.children() {
                    if entry.words.len() > 1 {
                        notes.not_carried(entry.line, "unicast_peer", "per-peer options are not carried over");
                    }
                    if let Some(addr) = ip(entry, 0, notes) {
                        if instance.unicast_peers.push(addr).is_err() {
                            notes.invalid(entry.line, "unicast_peer", "too many unicast peers (maximum 16)");
                        }
                    }
                }
            }
            "track_interface" => {
                for entry in child.children() {
                    let Some(name) = entry.arg(0).and_then(|n| bounded::<15>(n, entry.line, "track_interface", notes)) else { continue };
                    let weight = if entry.arg(1) == Some("weight") { num(entry, 2, notes).unwrap_or(0) } else { 0 };
                    if instance.track_interfaces.push(TrackedLink { name, weight }).is_err() {
                        notes.invalid(entry.line, "track_interface", "too many tracked interfaces (maximum 16)");
                    }
                }
            }
            "garp_master_delay" => instance.garp.master_delay_s = num(child, 1, notes).unwrap_or(5),
            "garp_master_repeat" => instance.garp.master_repeat = num(child, 1, notes).unwrap_or(5),
            "garp_master_refresh" => instance.garp.master_refresh_s = num(child, 1, notes).unwrap_or(0),
            "garp_master_refresh_repeat" => instance.garp.master_refresh_repeat = num(child, 1, notes).unwrap_or(1),
            "track_script" => track_script(child, scripts, &mut instance, notes),
            "lvs_sync_daemon_interface" => {}
            "use_vmac" => {
                instance.use_vmac = true;
                if let Some(name) = child.arg(1) {
                    match IfName::try_from(name) {
                        Ok(name) => instance.vmac_interface = Some(name),
                        Err(_) => notes.invalid(line, "use_vmac", format!("\"{name}\" is longer than an interface name (15 bytes); the macvlan is named vrrp.{{VRID}}")),
                    }
                }
            }
            "vmac_xmit_base" => instance.vmac_xmit_base = true,
            "use_vmac_addr" => notes.not_carried(line, "use_vmac_addr", "the macvlan holds the virtual MAC; the base interface keeps its own"),
            "virtual_routes" | "virtual_rules" => notes.not_carried(line, child.keyword(), "routes and routing rules are not part of Tandem's config model"),
            other if other.starts_with("notify") => notes.not_carried(line, other, format!("{NO_SHELL}; state changes are sent by e-mail ([notify]) and on the metrics endpoint")),
            "smtp_alert" => notes.adjusted(line, "smtp_alert", "Tandem mails every state change when [notify] is set"),
            other => notes.not_carried(line, other, "VRRP setting with no Tandem equivalent"),
        }
    }
    Some(instance)
}

/// keepalived's accept mode (`vrrp_complete_instance` in keepalived/vrrp/vrrp.c): `accept` /
/// `no_accept` when given, else accept unless the instance runs in strict mode (`strict_mode`,
/// else global `vrrp_strict`); strict mode also turns accept off for a VRRPv2 instance that is
/// not the address owner. RFC 9568's default is the opposite (no accept), so an implied value
/// is reported.
fn accept_mode(node: &Node, instance: &mut VrrpInstance, global_strict: bool, notes: &mut Notes) {
    let mut explicit = None;
    let mut strict = None;
    for child in node.children() {
        match child.keyword() {
            "accept" => explicit = Some((true, child.line)),
            "no_accept" => explicit = Some((false, child.line)),
            "strict_mode" => strict = Some(flag_arg(child)),
            _ => {}
        }
    }
    let strict = strict.unwrap_or(global_strict);
    let mut accept = explicit.map_or(!strict, |(accept, _)| accept);
    if accept && strict && instance.priority != 255 && instance.version == VrrpVersion::V2 {
        accept = false;
        let line = explicit.map_or(node.line, |(_, line)| line);
        notes.adjusted(line, "accept", "strict mode refuses accept mode for VRRPv2 (RFC 3768 has none), as keepalived does: accept_mode = false");
    } else if explicit.is_none() {
        let message = if accept {
            "not given: keepalived without vrrp_strict accepts traffic to the virtual addresses, so accept_mode = true (the RFC 9568 default is false; add no_accept for it)"
        } else {
            "not given: strict mode implies no_accept, so accept_mode = false"
        };
        notes.adjusted(node.line, "accept", message);
    }
    instance.accept_mode = accept;
}

fn authentication(node: &Node, instance: &mut VrrpInstance, notes: &mut Notes) {
    let mut kind = None;
    let mut pass = None;
    for child in node.children() {
        match child.keyword() {
            "auth_type" => kind = child.arg(1).map(|k| (k.to_string(), child.line)),
            "auth_pass" => pass = child.arg(1).map(|p| (p.to_string(), child.line)),
            other => notes.not_carried(
                child.line,
                other,
                "authentication setting with no Tandem equivalent",
            ),
        }
    }
    match kind {
        Some((kind, _)) if kind == "PASS" => {
            let (text, line) = pass.unwrap_or_default();
            let mut short = String::new();
            for c in text.chars() {
                if short.len() + c.len_utf8() > 8 {
                    break;
                }
                short.push(c);
            }
            if short.len() < text.len() {
                notes.adjusted(line, "auth_pass", format!("longer than 8 characters; VRRPv2 (and keepalived) send only the first 8, \"{short}\""));
            }
            if let Ok(value) = heapless::String::<8>::try_from(short.as_str()) {
                instance.auth = Some(VrrpAuth::Pass(value));
            }
        }
        Some((kind, line)) => notes.not_carried(
            line,
            "auth_type",
            format!(
                "{kind} authentication is not supported (RFC 3768 removed AH); use PASS or none"
            ),
        ),
        None => {}
    }
}

fn vip(entry: &Node, notes: &mut Notes) -> Option<Vip> {
    let text = entry.arg(0)?;
    let cidr: IpCidr = match text.parse() {
        Ok(cidr) => cidr,
        Err(_) => {
            notes.invalid(
                entry.line,
                "virtual_ipaddress",
                format!("\"{text}\" is not an address"),
            );
            return None;
        }
    };
    let mut vip = Vip {
        address: cidr.addr,
        prefix: cidr.prefix,
        interface: None,
        label: None,
    };
    let mut words = entry.words.iter().skip(1);
    while let Some(word) = words.next() {
        match word.as_str() {
            "dev" => {
                vip.interface = words
                    .next()
                    .and_then(|n| bounded(n, entry.line, "dev", notes))
            }
            "label" => {
                vip.label = words
                    .next()
                    .and_then(|n| bounded(n, entry.line, "label", notes))
            }
            other => {
                notes.not_carried(
                    entry.line,
                    other,
                    "virtual address option with no Tandem equivalent",
                );
                if matches!(other, "brd" | "scope" | "broadcast") {
                    words.next();
                }
            }
        }
    }
    Some(vip)
}

fn scheduler(node: &Node, notes: &mut Notes) -> Option<Scheduler> {
    let name = node.arg(1)?;
    let found = Scheduler::from_kernel_name(name);
    if found.is_none() {
        notes.invalid(
            node.line,
            node.keyword(),
            format!("\"{name}\" is not a kernel IPVS scheduler"),
        );
    }
    found
}

fn forwarding(node: &Node, notes: &mut Notes) -> Option<Forwarding> {
    match node.arg(1).map(str::to_ascii_uppercase).as_deref() {
        Some("NAT") => Some(Forwarding::Nat),
        Some("DR") => Some(Forwarding::Dr),
        Some("TUN") => Some(Forwarding::Tun),
        other => {
            notes.invalid(
                node.line,
                node.keyword(),
                format!("{other:?} is not NAT, DR or TUN"),
            );
            None
        }
    }
}

fn protocol(node: &Node, notes: &mut Notes) -> Option<Protocol> {
    match node.arg(1).map(str::to_ascii_uppercase).as_deref() {
        Some("TCP") => Some(Protocol::Tcp),
        Some("UDP") => Some(Protocol::Udp),
        Some("SCTP") => Some(Protocol::Sctp),
        other => {
            notes.invalid(
                node.line,
                node.keyword(),
                format!("{other:?} is not TCP, UDP or SCTP"),
            );
            None
        }
    }
}

/// Check timing given at one level (virtual server, real server, checker); unset values come
/// from the level above (keepalived's check_data.c), then keepalived's defaults.
#[derive(Debug, Clone, Copy, Default)]
struct Timing {
    interval_ms: Option<u32>,
    timeout_ms: Option<u32>,
    retries: Option<u8>,
    retry_delay_ms: Option<u32>,
}

impl Timing {
    /// Reads a timing keyword; false when `node` is none.
    fn read(&mut self, node: &Node, notes: &mut Notes) -> bool {
        match node.keyword() {
            "delay_loop" => {
                self.interval_ms = seconds_ms_noted(node, 1, notes).or(self.interval_ms)
            }
            "connect_timeout" => {
                self.timeout_ms = seconds_ms_noted(node, 1, notes).or(self.timeout_ms)
            }
            "retry" | "nb_get_retry" => self.retries = num(node, 1, notes).or(self.retries),
            "delay_before_retry" => {
                self.retry_delay_ms = seconds_ms_noted(node, 1, notes).or(self.retry_delay_ms)
            }
            _ => return false,
        }
        true
    }

    /// These values, the unset ones from `outer`.
    fn over(self, outer: Timing) -> Timing {
        Timing {
            interval_ms: self.interval_ms.or(outer.interval_ms),
            timeout_ms: self.timeout_ms.or(outer.timeout_ms),
            retries: self.retries.or(outer.retries),
            retry_delay_ms: self.retry_delay_ms.or(outer.retry_delay_ms),
        }
    }

    /// With keepalived's defaults: `delay_loop` 60 s, `connect_timeout` 5 s, `retry` 1,
    /// `delay_before_retry` 1 s.
    fn resolve(self) -> CheckTiming {
        CheckTiming {
            interval_ms: self.interval_ms.unwrap_or(60_000),
            timeout_ms: self.timeout_ms.unwrap_or(5000),
            retries: self.retries.unwrap_or(1),
            retry_delay_ms: self.retry_delay_ms.unwrap_or(1000),
        }
    }
}

/// What IPVS keys a service by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ServiceKey {
    Address(IpAddr, u16),
    Fwmark(u32),
}

/// Largest address range of one `virtual_server_group` entry: every address becomes a service.
const MAX_GROUP_RANGE: u128 = limits::VIRTUAL_SERVICES as u128;

/// The services of a `virtual_server_group` (keepalived's `alloc_vsg_entry`): `IP PORT`,
/// `IP-LAST PORT` (the last IPv4 byte in decimal, the last IPv6 group in hex), `IP-IP PORT`,
/// `IP/PREFIX PORT`, `fwmark N [inet|inet6]`. A missing port, or 0, is port 0 (all ports).
fn group_keys(group: &Node, notes: &mut Notes) -> Vec<ServiceKey> {
    let mut keys = Vec::new();
    for entry in group.children() {
        let line = entry.line;
        let Some(first) = entry.arg(0) else { continue };
        if first == "fwmark" {
            if let Some(mark) = num(entry, 1, notes) {
                keys.push(ServiceKey::Fwmark(mark));
            }
            match entry.arg(2) {
                None | Some("inet" | "inet6") => {}
                Some(other) => notes.invalid(
                    line,
                    "fwmark",
                    format!("family \"{other}\" is not inet or inet6; ignored"),
                ),
            }
            continue;
        }
        let port = match entry.arg(1) {
            None => 0,
            Some(text) => {
                match text.parse::<u16>() {
                    Ok(port) => port,
                    Err(_) => {
                        notes.invalid(line, "virtual_server_group", format!("\"{text}\" is not a port; the entry is skipped, as keepalived does"));
                        continue;
                    }
                }
            }
        };
        if entry.words.len() > 2 {
            notes.not_carried(line, "virtual_server_group", "words after the port are ignored (keepalived takes an address or range and a port)");
        }
        match address_range(first) {
            Ok(addresses) => {
                keys.extend(addresses.into_iter().map(|a| ServiceKey::Address(a, port)))
            }
            Err(reason) => notes.invalid(
                line,
                "virtual_server_group",
                format!("\"{first}\": {reason}; the entry is skipped"),
            ),
        }
    }
    keys
}

/// The addresses of a group entry's address or range.
fn address_range(text: &str) -> Result<Vec<IpAddr>, String> {
    let (start, end) = if let Some((address, prefix)) = text.split_once('/') {
        let start: IpAddr = address
            .parse()
            .map_err(|_| "not an IP address".to_string())?;
        let bits: u32 = if start.is_ipv4() { 32 } else { 128 };
        let prefix: u32 = prefix
            .parse()
            .ok()
            .filter(|p| (1..=bits).contains(p))
            .ok_or_else(|| format!("/{prefix} is not a prefix length from 1 to {bits}"))?;
        let host_bits = bits - prefix;
        let mask = if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        };
        let first = address_bits(start);
        if first & mask != 0 {
            return Err("the address has bits set after the prefix".into());
        }
        (start, address_from_bits(start, first | mask))
    } else if let Some((address, last)) = text.split_once('-') {
        let start: IpAddr = address
            .parse()
            .map_err(|_| "not an IP address".to_string())?;
        let end = if last.contains(['.', ':']) {
            last.parse::<IpAddr>()
                .map_err(|_| format!("range end \"{last}\" is not an IP address"))?
        } else {
            let bits = address_bits(start);
            let (width, value) = if start.is_ipv4() {
                (8, last.parse::<u8>().map(u128::from).ok())
            } else {
                (16, u16::from_str_radix(last, 16).map(u128::from).ok())
            };
            let value = value.ok_or_else(|| format!("range end \"{last}\" is not a number"))?;
            address_from_bits(start, (bits & !((1u128 << width) - 1)) | value)
        };
        if start.is_ipv4() != end.is_ipv4() || address_bits(end) < address_bits(start) {
            return Err("the range ends before it starts, or mixes address families".into());
        }
        (start, end)
    } else {
        let address: IpAddr = text.parse().map_err(|_| "not an IP address".to_string())?;
        (address, address)
    };
    let (low, high) = (address_bits(start), address_bits(end));
    let count = (high - low).saturating_add(1);
    if count > MAX_GROUP_RANGE {
        return Err(format!("{count} addresses; Tandem makes a service of each address and holds at most {MAX_GROUP_RANGE} services"));
    }
    Ok((low..=high)
        .map(|bits| address_from_bits(start, bits))
        .collect())
}

fn address_bits(address: IpAddr) -> u128 {
    match address {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// An address of `family`'s family from its bits.
fn address_from_bits(family: IpAddr, bits: u128) -> IpAddr {
    match family {
        IpAddr::V4(_) => IpAddr::V4(u32::try_from(bits).unwrap_or(u32::MAX).into()),
        IpAddr::V6(_) => IpAddr::V6(bits.into()),
    }
}

/// The services of one `virtual_server` block: one, or one per address of its group.
fn virtual_servers(
    node: &Node,
    groups: &mut [Group<'_>],
    notes: &mut Notes,
) -> Vec<VirtualService> {
    let keys = match node.arg(1) {
        Some("fwmark") => match num(node, 2, notes) {
            Some(mark) => vec![ServiceKey::Fwmark(mark)],
            None => return Vec::new(),
        },
        Some("group") => {
            let Some(name) = node.arg(2) else {
                notes.invalid(
                    node.line,
                    "virtual_server group",
                    "the group name is missing; the service is not imported",
                );
                return Vec::new();
            };
            let Some(group) = groups.iter_mut().find(|g| g.name == name) else {
                notes.invalid(node.line, "virtual_server group", format!("virtual_server_group \"{name}\" is not defined; the service is not imported (keepalived skips it too)"));
                return Vec::new();
            };
            group.used = true;
            let keys = group_keys(group.node, notes);
            let entries: Vec<String> = group
                .node
                .children()
                .iter()
                .map(|e| e.words.join(" "))
                .collect();
            notes.adjusted(node.line, "virtual_server group", format!("virtual_server_group {name} ({}) is expanded into {} services with these settings and real servers: Tandem has no service groups, so each service checks its real servers on its own", entries.join(", "), keys.len()));
            keys
        }
        Some(_) => {
            let Some(address) = ip(node, 1, notes) else {
                return Vec::new();
            };
            let port = match node.arg(2) {
                Some(_) => match num(node, 2, notes) {
                    Some(port) => port,
                    None => return Vec::new(),
                },
                None => 0,
            };
            vec![ServiceKey::Address(address, port)]
        }
        None => {
            notes.invalid(node.line, "virtual_server", "address missing");
            return Vec::new();
        }
    };
    let mut services = Vec::new();
    for (index, key) in keys.into_iter().enumerate() {
        // The notes of a group's block are made once, with its first service.
        let mut again = Notes::default();
        let notes = if index == 0 { &mut *notes } else { &mut again };
        services.push(virtual_server(node, key, notes));
    }
    services
}

fn virtual_server(node: &Node, key: ServiceKey, notes: &mut Notes) -> VirtualService {
    let mut service = VirtualService::default();
    match key {
        ServiceKey::Address(address, port) => {
            service.address = Some(address);
            service.port = port;
        }
        ServiceKey::Fwmark(mark) => service.fwmark = Some(mark),
    }
    service.quorum = 1;
    let mut timing = Timing::default();
    let mut virtualhost: Option<heapless::String<128>> = None;
    let mut weight: Option<u32> = None;
    let mut persistence_granularity: Option<u8> = None;
    let mut sorry_line = None;
    // First pass: service-level settings that real servers inherit.
    for child in node.children() {
        if timing.read(child, notes) {
            continue;
        }
        match child.keyword() {
            "virtualhost" => {
                virtualhost = child
                    .arg(1)
                    .and_then(|v| bounded(v, child.line, "virtualhost", notes))
            }
            "lb_kind" | "lvs_method" => {
                service.forwarding = forwarding(child, notes).unwrap_or_default()
            }
            "weight" => weight = num(child, 1, notes),
            _ => {}
        }
    }
    let mut servers: Vec<(RealServer, Vec<Check>, usize)> = Vec::new();
    for child in node.children() {
        let line = child.line;
        match child.keyword() {
            "delay_loop" | "connect_timeout" | "retry" | "nb_get_retry" | "delay_before_retry" | "virtualhost" | "lb_kind" | "lvs_method" | "weight" => {}
            "lb_algo" | "lvs_sched" => service.scheduler = scheduler(child, notes).unwrap_or_default(),
            "protocol" => service.protocol = protocol(child, notes).unwrap_or_default(),
            "persistence_timeout" => {
                let timeout_s = if child.arg(1).is_some() { num(child, 1, notes).unwrap_or(360) } else { 360 };
                service.persistence = Some(Persistence { timeout_s, netmask_prefix: service.persistence.and_then(|p| p.netmask_prefix) });
            }
            "persistence_granularity" => {
                let text = child.arg(1).unwrap_or("");
                persistence_granularity = match text.parse::<core::net::Ipv4Addr>().ok().and_then(netmask_to_prefix) {
                    Some(prefix) => Some(prefix),
                    None => match text.trim_start_matches('/').parse::<u8>() {
                        Ok(prefix) => Some(prefix),
                        Err(_) => {
                            notes.invalid(line, "persistence_granularity", format!("\"{text}\" is not a contiguous netmask"));
                            None
                        }
                    },
                };
            }
            "quorum" => service.quorum = num(child, 1, notes).unwrap_or(1),
            "hysteresis" => service.hysteresis = num(child, 1, notes).unwrap_or(0),
            "alpha" => service.start_down = true,
            "ops" => service.scheduler_flags.one_packet = true,
            "sh-port" | "mh-port" => service.scheduler_flags.port = true,
            "sh-fallback" | "mh-fallback" => service.scheduler_flags.fallback = true,
            "inhibit_on_failure" => service.on_failure = if flag_arg(child) { OnFailure::Quiesce } else { OnFailure::Remove },
            "sorry_server" => {
                if let Some(address) = ip(child, 1, notes) {
                    let port = if child.arg(2).is_some() { num(child, 2, notes) } else { None };
                    let previous = service.sorry_server.take().unwrap_or_default();
                    service.sorry_server = Some(SorryServer { address, port, ..previous });
                }
            }
            "sorry_server_inhibit" => {
                sorry_line = sorry_line.or(Some((line, child.keyword())));
                let mut sorry = service.sorry_server.take().unwrap_or_default();
                sorry.inhibit = flag_arg(child);
                service.sorry_server = Some(sorry);
            }
            "sorry_server_lvs_method" => {
                sorry_line = sorry_line.or(Some((line, child.keyword())));
                let mut sorry = service.sorry_server.take().unwrap_or_default();
                sorry.forwarding = forwarding(child, notes);
                service.sorry_server = Some(sorry);
            }
            "real_server" => {
                if let Some((server, check)) = real_server(child, &service, timing, virtualhost.as_ref(), weight, notes) {
                    servers.push((server, check, line));
                }
            }
            "smtp_alert" => notes.adjusted(line, "smtp_alert", "Tandem mails every real-server change when [notify] is set"),
            "quorum_up" | "quorum_down" => notes.not_carried(line, child.keyword(), format!("{NO_SHELL}; quorum changes are sent by e-mail ([notify]) and on the metrics endpoint")),
            "omega" => notes.not_carried(line, "omega", format!("omega runs quorum_down when keepalived stops; {NO_SHELL}")),
            other => notes.not_carried(line, other, "virtual_server setting with no Tandem equivalent"),
        }
    }
    if service
        .sorry_server
        .as_ref()
        .is_some_and(|s| s.address.is_unspecified())
    {
        service.sorry_server = None;
        if let Some((line, keyword)) = sorry_line {
            notes.not_carried(
                line,
                keyword,
                "has no effect without sorry_server (keepalived ignores it too)",
            );
        }
    }
    if let Some(prefix) = persistence_granularity {
        match &mut service.persistence {
            Some(persistence) => persistence.netmask_prefix = Some(prefix),
            None => notes.not_carried(
                node.line,
                "persistence_granularity",
                "has no effect without persistence_timeout",
            ),
        }
    }
    // Hoist the checks every real server shares onto the service (compact, and how people
    // think).
    let shared = match servers.first() {
        Some((_, first, _)) if !first.is_empty() && servers.iter().all(|(_, c, _)| c == first) => {
            Some(first.clone())
        }
        _ => None,
    };
    for (mut server, checks, line) in servers {
        if shared.is_none() {
            (server.check, server.more_checks) = split_checks(checks);
        }
        if service.real_servers.push(server).is_err() {
            notes.invalid(
                line,
                "real_server",
                "too many real servers in this service (maximum 1024)",
            );
        }
    }
    if let Some(shared) = shared {
        (service.check, service.more_checks) = split_checks(shared);
    }
    if service.real_servers.is_empty() {
        service.check = None;
        service.more_checks = BoundedVec::new();
    }
    service
}

/// A real server's checks as the model holds them: the first in `check`, the others (at most
/// [`limits::MORE_CHECKS`], as `real_server` collects them) in `more_checks`.
fn split_checks(
    checks: Vec<Check>,
) -> (
    Option<Box<Check>>,
    BoundedVec<Check, { limits::MORE_CHECKS }>,
) {
    let mut checks = checks.into_iter();
    let first = checks.next().map(Box::new);
    let mut more = BoundedVec::new();
    for check in checks {
        // `real_server` keeps no more than fit.
        let _ = more.push(check);
    }
    (first, more)
}

fn real_server(
    node: &Node,
    service: &VirtualService,
    outer: Timing,
    virtualhost: Option<&heapless::String<128>>,
    weight: Option<u32>,
    notes: &mut Notes,
) -> Option<(RealServer, Vec<Check>)> {
    let address = ip(node, 1, notes)?;
    let port = match node.arg(2) {
        Some(_) => Some(num::<u16>(node, 2, notes)?),
        None => None,
    };
    let mut server = RealServer {
        address,
        port,
        weight: weight.unwrap_or(1),
        ..RealServer::default()
    };
    if service.fwmark.is_some() {
        // IPVS takes port 0 as "the packet's destination port": how one fwmark service balances
        // many ports. keepalived gives a real server without a port port 0.
        server.port = Some(server.port.unwrap_or(0));
    } else if server.port == Some(service.port) {
        server.port = None;
    }
    let mut timing = Timing::default();
    let mut vhost = virtualhost.cloned();
    for child in node.children() {
        if timing.read(child, notes) {
            continue;
        }
        if child.keyword() == "virtualhost" {
            vhost = child
                .arg(1)
                .and_then(|v| bounded(v, child.line, "virtualhost", notes));
        }
    }
    let timing = timing.over(outer);
    let target = Target {
        address,
        port: port.unwrap_or(service.port),
    };
    // keepalived runs every checker of a real server and keeps it up while all pass: the first
    // is `check`, the others `more_checks`.
    let mut checks: Vec<Check> = Vec::new();
    for child in node.children() {
        let line = child.line;
        match child.keyword() {
            "delay_loop" | "connect_timeout" | "retry" | "nb_get_retry" | "delay_before_retry" | "virtualhost" => {}
            "weight" => server.weight = num(child, 1, notes).unwrap_or(1),
            "inhibit_on_failure" => {
                server.on_failure = Some(if flag_arg(child) { OnFailure::Quiesce } else { OnFailure::Remove })
            }
            "uthreshold" => server.upper_threshold = num(child, 1, notes).unwrap_or(0),
            "lthreshold" => server.lower_threshold = num(child, 1, notes).unwrap_or(0),
            "lvs_method" => server.forwarding = forwarding(child, notes),
            "smtp_alert" => notes.adjusted(line, "smtp_alert", "Tandem mails every real-server change when [notify] is set"),
            "TCP_CHECK" | "HTTP_GET" | "SSL_GET" | "SMTP_CHECK" | "MISC_CHECK" | "PING_CHECK"
            | "UDP_CHECK" | "DNS_CHECK" => {
                let found = if child.keyword() == "MISC_CHECK" {
                    misc_check(child, timing, target, notes).into_iter().collect()
                } else {
                    health_check(child, timing, vhost.as_ref(), target, notes)
                };
                for check in found {
                    if checks.len() > limits::MORE_CHECKS {
                        notes.not_carried(line, child.keyword(), format!("Tandem runs at most {} checks per real server (check and {} more_checks); this one is not run", limits::MORE_CHECKS + 1, limits::MORE_CHECKS));
                        break;
                    }
                    checks.push(check);
                }
            }
            other if other.ends_with("_CHECK") => notes.not_carried(line, other, "this check type is not built in; use TCP_CHECK, HTTP_GET, SMTP_CHECK or a send/expect check"),
            other if other.starts_with("notify") => notes.not_carried(line, other, format!("{NO_SHELL}; real-server changes are sent by e-mail ([notify]) and on the metrics endpoint")),
            other => notes.not_carried(line, other, "real_server setting with no Tandem equivalent"),
        }
    }
    if server.forwarding == Some(service.forwarding) {
        server.forwarding = None;
    }
    if server.on_failure == Some(service.on_failure) {
        server.on_failure = None;
    }
    Some((server, checks))
}

/// Where a real server's checks go unless they say otherwise.
#[derive(Debug, Clone, Copy)]
struct Target {
    address: IpAddr,
    port: u16,
}

/// keepalived's HTTP status codes (check_http.h): 100 to 599.
const STATUS_CODES: core::ops::RangeInclusive<u16> = 100..=599;

/// keepalived's `status_code` (codes and ranges: `200-299 400-499 503`), every valid one kept;
/// None for none or exactly keepalived's default, `200-299` (any 2xx).
fn status_code(entry: &Node, notes: &mut Notes) -> Option<StatusCodes> {
    let mut ranges = BoundedVec::new();
    for word in entry.words.iter().skip(1) {
        let (low, high) = word.split_once('-').unwrap_or((word, word));
        match (low.parse::<u16>(), high.parse::<u16>()) {
            (Ok(first), Ok(last)) if STATUS_CODES.contains(&first) && STATUS_CODES.contains(&last) && first <= last => {
                if ranges.push(StatusRange { first, last }).is_err() {
                    notes.not_carried(entry.line, "status_code", format!("\"{word}\": a URL takes at most {} codes or ranges; merge neighbouring codes into ranges (this one and the rest are not checked)", limits::STATUS_RANGES));
                    break;
                }
            }
            _ => notes.invalid(entry.line, "status_code", format!("\"{word}\" is not a status code from 100 to 599 or a range of them; skipped, as keepalived does")),
        }
    }
    match &ranges[..] {
        [] => None,
        [StatusRange {
            first: 200,
            last: 299,
        }] => None,
        _ => Some(StatusCodes(ranges)),
    }
}

/// One `url { }` of an HTTP check: path, status, digest, its own virtual host.
struct Url {
    path: heapless::String<128>,
    status: Option<StatusCodes>,
    body: Option<HttpBody>,
    virtual_host: Option<heapless::String<128>>,
}

fn url(node: &Node, notes: &mut Notes) -> Option<Url> {
    let mut path = None;
    let mut status = None;
    let mut body = None;
    let mut virtual_host = None;
    for entry in node.children() {
        match entry.keyword() {
            "path" => {
                path = entry
                    .arg(1)
                    .and_then(|v| bounded(v, entry.line, "path", notes))
            }
            "status_code" => status = status_code(entry, notes),
            "digest" => match entry.arg(1).and_then(parse_md5) {
                Some(digest) => body = Some(HttpBody::Md5(digest)),
                None => notes.invalid(entry.line, "digest", "not a 32-digit hex MD5"),
            },
            "virtualhost" => {
                virtual_host = entry
                    .arg(1)
                    .and_then(|v| bounded(v, entry.line, "virtualhost", notes))
            }
            other => notes.not_carried(entry.line, other, "url setting with no Tandem equivalent"),
        }
    }
    let Some(path) = path else {
        notes.not_carried(
            node.line,
            "url",
            "has no path, so keepalived ignores it (\"url has no path - ignoring\")",
        );
        return None;
    };
    Some(Url {
        path,
        status,
        body,
        virtual_host,
    })
}

/// A checker's own connection settings (`connect_ip`, `connect_port`, `bindto`, and
/// `connect_timeout`), as a checker or an SMTP `host { }` block gives them.
fn connection(node: &Node, check: &mut Check, timing: &mut Timing, notes: &mut Notes) -> bool {
    match node.keyword() {
        "connect_port" => check.connect_port = num(node, 1, notes),
        "connect_ip" => check.connect_address = ip(node, 1, notes),
        "bindto" => check.bind_address = ip(node, 1, notes),
        "connect_timeout" => {
            timing.timeout_ms = seconds_ms_noted(node, 1, notes).or(timing.timeout_ms)
        }
        _ => return false,
    }
    true
}

fn health_check(
    node: &Node,
    outer: Timing,
    virtualhost: Option<&heapless::String<128>>,
    target: Target,
    notes: &mut Notes,
) -> Vec<Check> {
    let mut check = Check::default();
    let mut timing = Timing::default();
    let mut vhost = virtualhost.cloned();
    let mut helo = None;
    let mut first_url: Option<Url> = None;
    let mut more_urls = BoundedVec::new();
    let (mut udp_payload, mut udp_require_reply, mut udp_expect) =
        (heapless::Vec::new(), false, heapless::Vec::new());
    let (mut dns_type, mut dns_name) = (DnsRecordType::default(), None);
    let mut hosts = Vec::new();
    let mut enable_sni = false;
    for child in node.children() {
        let line = child.line;
        if connection(child, &mut check, &mut timing, notes) || timing.read(child, notes) {
            continue;
        }
        match child.keyword() {
            "virtualhost" => {
                vhost = child
                    .arg(1)
                    .and_then(|v| bounded(v, line, "virtualhost", notes))
            }
            "helo_name" => {
                helo = child
                    .arg(1)
                    .and_then(|v| bounded(v, line, "helo_name", notes))
            }
            "url" => {
                let Some(url) = url(child, notes) else {
                    continue;
                };
                if first_url.is_none() {
                    first_url = Some(url);
                    continue;
                }
                let path = url.path.clone();
                let more = HttpUrl {
                    path: url.path,
                    status: url.status,
                    body: url.body,
                    virtual_host: url.virtual_host,
                };
                if more_urls.push(more).is_err() {
                    notes.not_carried(line, "url", format!("{path} is not checked: an HTTP check fetches at most {} URLs; split the checker", limits::MORE_URLS + 1));
                }
            }
            "host" if node.keyword() == "SMTP_CHECK" => hosts.push(child),
            "payload" if node.keyword() == "UDP_CHECK" => {
                match child.arg(1).map(hex_bytes) {
                    Some(Some(bytes)) => udp_payload = bytes,
                    _ => notes.invalid(line, "payload", format!("not hex digits of at most {} bytes; the check sends keepalived's default payload", limits::SEND_EXPECT_BYTES)),
                }
            }
            "require_reply" if node.keyword() == "UDP_CHECK" => {
                udp_require_reply = true;
                if let Some(text) = child.arg(1) {
                    match hex_bytes(text) {
                        Some(bytes) => udp_expect = bytes,
                        None => notes.invalid(line, "require_reply", "the expected reply is not hex digits of at most 255 bytes; any reply is taken"),
                    }
                }
            }
            "min_reply_length" | "max_reply_length" if node.keyword() == "UDP_CHECK" => notes.not_carried(line, child.keyword(), "Tandem's UDP check compares the reply's start with require_reply's bytes, not its length"),
            "type" if node.keyword() == "DNS_CHECK" => match child.arg(1).map(str::to_ascii_uppercase).as_deref() {
                Some("A") => dns_type = DnsRecordType::A,
                Some("NS") => dns_type = DnsRecordType::Ns,
                Some("CNAME") => dns_type = DnsRecordType::Cname,
                Some("SOA") => dns_type = DnsRecordType::Soa,
                Some("MX") => dns_type = DnsRecordType::Mx,
                Some("TXT") => dns_type = DnsRecordType::Txt,
                Some("AAAA") => dns_type = DnsRecordType::Aaaa,
                _ => notes.invalid(line, "type", "not one of A, NS, CNAME, SOA, MX, TXT, AAAA (keepalived's); SOA is asked"),
            },
            "name" if node.keyword() == "DNS_CHECK" => {
                if let Some(name) = child.arg(1).and_then(|v| bounded(v, line, "name", notes)) {
                    dns_name = Some(name);
                }
            }
            "enable_sni" if node.keyword() == "SSL_GET" => enable_sni = flag_arg(child),
            "http_protocol" if matches!(child.arg(1), Some("1.0" | "1.0C" | "1.0c")) => {}
            "http_protocol" => notes.not_carried(
                line,
                "http_protocol",
                "Tandem sends HTTP/1.0 requests with a Host header and Connection: close",
            ),
            other => notes.not_carried(line, other, "check setting with no Tandem equivalent"),
        }
    }
    let connect_timeout_set = timing.timeout_ms.is_some();
    check.kind = match node.keyword() {
        "HTTP_GET" | "SSL_GET" => {
            let Some(url) = first_url else {
                notes.not_carried(node.line, node.keyword(), "has no url with a path, so keepalived ignores this checker (\"no urls specified\"); not imported, the real server is not checked");
                return Vec::new();
            };
            let tls = node.keyword() == "SSL_GET";
            let virtual_host = url.virtual_host.or(vhost);
            // keepalived sends SNI only with `enable_sni`; Tandem's HTTPS check always sends the
            // virtual host (when it is a name).
            if tls && virtual_host.is_some() && !enable_sni {
                notes.adjusted(node.line, "SSL_GET", "the virtual host is also sent as the TLS server name (SNI), which keepalived does only with enable_sni: a server that picks its certificate by name picks this one's");
            }
            CheckKind::Http {
                path: url.path,
                status: url.status,
                body: url.body,
                virtual_host,
                tls,
                more_urls,
                tls_ca: None,
            }
        }
        "SMTP_CHECK" => CheckKind::Smtp { helo_name: helo },
        "PING_CHECK" => CheckKind::Ping,
        "UDP_CHECK" => CheckKind::Udp {
            payload: udp_payload,
            require_reply: udp_require_reply,
            expect: udp_expect,
        },
        "DNS_CHECK" => CheckKind::Dns {
            name: dns_name.unwrap_or_else(|| ".".try_into().unwrap_or_default()),
            record_type: dns_type,
        },
        _ => CheckKind::Tcp,
    };
    let mut others = Vec::new();
    if !hosts.is_empty() {
        others = smtp_hosts(
            &hosts,
            &mut check,
            &mut timing,
            connect_timeout_set,
            target,
            notes,
        );
    }
    check.timing = timing.over(outer).resolve();
    let mut checks = vec![check];
    for (mut other, host_timing) in others {
        other.timing = host_timing.over(timing).over(outer).resolve();
        checks.push(other);
    }
    checks
}

/// SMTP_CHECK's deprecated `host { }` blocks (check_smtp.c): each host is a checker of its own.
/// When the checker sets no connection option itself, the first host's options are its own.
/// Every other host is a further check of the real server (with the host's timing, the rest of
/// the checker's), returned for `more_checks`.
fn smtp_hosts(
    hosts: &[&Node],
    check: &mut Check,
    timing: &mut Timing,
    connect_timeout_set: bool,
    target: Target,
    notes: &mut Notes,
) -> Vec<(Check, Timing)> {
    let mut others = Vec::new();
    let own = check.connect_address.is_some()
        || check.connect_port.is_some()
        || check.bind_address.is_some()
        || connect_timeout_set;
    let main = (
        check.connect_address.unwrap_or(target.address),
        check.connect_port.unwrap_or(target.port),
        check.bind_address,
    );
    for (index, host) in hosts.iter().enumerate() {
        let mut probe = Check::default();
        let mut host_timing = Timing::default();
        for child in host.children() {
            if !connection(child, &mut probe, &mut host_timing, notes) {
                notes.not_carried(
                    child.line,
                    child.keyword(),
                    "host setting with no Tandem equivalent",
                );
            }
        }
        let address = probe.connect_address.unwrap_or(target.address);
        let port = probe.connect_port.unwrap_or(target.port);
        if index == 0 && !own {
            check.connect_address = probe.connect_address.filter(|a| *a != target.address);
            check.connect_port = probe.connect_port.filter(|p| *p != target.port);
            check.bind_address = probe.bind_address;
            timing.timeout_ms = host_timing.timeout_ms.or(timing.timeout_ms);
            continue;
        }
        if (address, port, probe.bind_address) == main {
            notes.adjusted(
                host.line,
                "host",
                "checks the address and port the check itself checks",
            );
        } else {
            others.push((
                Check {
                    kind: check.kind.clone(),
                    connect_address: (address != target.address).then_some(address),
                    connect_port: (port != target.port).then_some(port),
                    ..probe
                },
                host_timing,
            ));
        }
    }
    others
}

/// Why a recognised script probe cannot become a built-in check.
#[derive(Debug)]
enum ProbeUnfit {
    /// The HTTP path is longer than a check's path (128 bytes).
    LongPath,
    /// The script names a host (the appliance does no DNS lookups).
    HostName(String),
}

/// The address, port (None for none or the default HTTP(S) port already filled in) and check
/// kind doing what `probe` does.
fn probe_target(probe: &ScriptProbe) -> Result<(IpAddr, Option<u16>, CheckKind), ProbeUnfit> {
    let (host, port, kind) = match probe {
        ScriptProbe::Tcp { host, port } => (host, Some(*port), CheckKind::Tcp),
        ScriptProbe::Ping { host } => (host, None, CheckKind::Ping),
        ScriptProbe::Http {
            tls,
            host,
            port,
            path,
        } => {
            let path =
                heapless::String::try_from(path.as_str()).map_err(|_| ProbeUnfit::LongPath)?;
            let port = port.or(Some(if *tls { 443 } else { 80 }));
            (
                host,
                port,
                CheckKind::Http {
                    path,
                    status: None,
                    body: None,
                    virtual_host: None,
                    tls: *tls,
                    more_urls: BoundedVec::new(),
                    tls_ca: None,
                },
            )
        }
    };
    let address = host
        .trim_matches(|c| c == '[' || c == ']')
        .parse::<IpAddr>()
        .map_err(|_| ProbeUnfit::HostName(host.clone()))?;
    Ok((address, port, kind))
}

/// MISC_CHECK: the script cannot run; one that is a TCP connect or an HTTP fetch becomes the
/// built-in check that does the same.
fn misc_check(node: &Node, outer: Timing, target: Target, notes: &mut Notes) -> Option<Check> {
    let mut script = None;
    let mut timing = Timing::default();
    let mut script_timeout = None;
    for child in node.children() {
        let line = child.line;
        if timing.read(child, notes) {
            continue;
        }
        match child.keyword() {
            "misc_path" => script = Some(child.words.get(1..).unwrap_or_default().join(" ")),
            "misc_timeout" => script_timeout = seconds_ms_noted(child, 1, notes),
            "misc_dynamic" => notes.not_carried(line, "misc_dynamic", "the script's exit code sets the weight in keepalived; Tandem keeps the configured weight"),
            "user" => {}
            other => notes.not_carried(line, other, "check setting with no Tandem equivalent"),
        }
    }
    let Some(script) = script else {
        notes.invalid(
            node.line,
            "MISC_CHECK",
            "no misc_path; keepalived ignores this checker too",
        );
        return None;
    };
    let Some((probe, timeout)) = script_probe(&script) else {
        notes.not_carried(node.line, "MISC_CHECK", format!("{NO_SHELL}: \"{script}\" is not run, so the real server is not checked; use the built-in TCP_CHECK, HTTP_GET or SMTP_CHECK, or a send/expect check"));
        return None;
    };
    let (address, port, kind) = match probe_target(&probe) {
        Ok(target) => target,
        Err(ProbeUnfit::LongPath) => {
            notes.not_carried(node.line, "MISC_CHECK", format!("\"{script}\" is {probe}, but the path is longer than 128 bytes; not imported, the real server is not checked"));
            return None;
        }
        Err(ProbeUnfit::HostName(host)) => {
            notes.not_carried(node.line, "MISC_CHECK", format!("\"{script}\" is {probe}, but {host} is a host name and the appliance does no DNS lookups; not imported, the real server is not checked: use a built-in check with connect_ip"));
            return None;
        }
    };
    let mut check = Check {
        kind,
        connect_address: (address != target.address).then_some(address),
        connect_port: port.filter(|p| *p != target.port),
        ..Check::default()
    };
    // keepalived bounds the script by misc_timeout, else by the delay_loop.
    let mut resolved = timing.over(outer);
    resolved.timeout_ms = script_timeout.or(timeout).or(resolved.interval_ms);
    check.timing = resolved.resolve();
    let http = if matches!(probe, ScriptProbe::Http { .. }) {
        " (a 3xx answer counts as down, where the script may have taken it)"
    } else {
        ""
    };
    notes.adjusted(
        node.line,
        "MISC_CHECK",
        format!("\"{script}\" is {probe}: imported as the built-in check that does the same{http}"),
    );
    Some(check)
}

/// keepalived's hex bytes (`payload`, `require_reply`): pairs of hex digits, at most 255 bytes.
fn hex_bytes(text: &str) -> Option<heapless::Vec<u8, { limits::SEND_EXPECT_BYTES }>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let mut bytes = heapless::Vec::new();
    for pair in text.as_bytes().chunks(2) {
        let digits = core::str::from_utf8(pair).ok()?;
        bytes.push(u8::from_str_radix(digits, 16).ok()?).ok()?;
    }
    Some(bytes)
}

fn parse_md5(text: &str) -> Option<[u8; 16]> {
    if text.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (index, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(index * 2..index * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_handles_inline_blocks_and_comments() {
        let tree = parse_tree("a 1 { b 2 } # c\n! x\nd {\n e\n}\n").unwrap();
        assert_eq!(tree.len(), 2);
        assert_eq!(tree[0].words, ["a", "1"]);
        assert_eq!(tree[0].children().len(), 1);
        assert_eq!(tree[1].children()[0].words, ["e"]);
        assert_eq!(tree[1].line, 3);
    }

    #[test]
    fn tree_refuses_unbalanced() {
        assert!(matches!(
            parse_tree("a {\n b\n"),
            Err(ImportError::Syntax { .. })
        ));
        assert!(matches!(
            parse_tree("}\n"),
            Err(ImportError::Syntax { line: 1, .. })
        ));
        let deep = "a {".repeat(40);
        assert!(matches!(parse_tree(&deep), Err(ImportError::Syntax { .. })));
    }

    fn matches(pattern: &str, name: &str) -> bool {
        let pattern: Vec<char> = pattern.chars().collect();
        let name: Vec<char> = name.chars().collect();
        wildcard_match(&pattern, &name)
    }

    #[test]
    fn wildcards_match_as_fnmatch_does() {
        assert!(matches("*.conf", "web.conf"));
        assert!(matches("*.conf", ".conf"));
        assert!(!matches("*.conf", "web.conf.bak"));
        assert!(matches("a*b*c", "axxbyyc"));
        assert!(!matches("a*b*c", "axxbyy"));
        assert!(matches("web?.conf", "web1.conf"));
        assert!(matches("[0-9][!a]*", "1b"));
        assert!(!matches("[0-9][!a]*", "1a"));
        assert!(matches("[]x]", "]"));
        assert!(matches("[ab", "[ab"));
        assert!(matches("\\*", "*"));
        assert!(!matches("\\*", "x"));
        assert!(matches("**", ""));
    }

    #[test]
    fn braces_expand_in_order_and_are_bounded() {
        assert_eq!(expand_braces("a{b,c}d"), ["abd", "acd"]);
        assert_eq!(expand_braces("{x,y{1,2}}"), ["x", "y1", "y2"]);
        assert_eq!(expand_braces("{solo}"), ["{solo}"]);
        assert_eq!(expand_braces("open{a,b"), ["open{a,b"]);
        assert_eq!(
            expand_braces(&"{a,b}".repeat(10)).len(),
            MAX_BRACE_EXPANSIONS
        );
    }

    #[test]
    fn group_ranges_are_bounded_without_overflow() {
        assert_eq!(address_range("10.0.0.254-255").map(|a| a.len()), Ok(2));
        assert!(address_range("10.0.0.9-1").is_err());
        assert!(address_range("::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").is_err());
        assert!(address_range("::/1").is_err());
        assert!(address_range("10.0.0.1/24").is_err());
        assert_eq!(address_range("10.0.0.0/31").map(|a| a.len()), Ok(2));
        assert!(address_range("10.0.0.1-ae00::1").is_err());
    }

    #[test]
    fn scripts_that_are_a_connect_or_a_fetch_are_recognised() {
        let tcp = |host: &str, port| ScriptProbe::Tcp {
            host: host.into(),
            port,
        };
        assert_eq!(
            script_probe("timeout 3 bash -c '</dev/tcp/10.0.0.1/8080'"),
            Some((tcp("10.0.0.1", 8080), Some(3000)))
        );
        assert_eq!(
            script_probe("/usr/bin/nc -zw5 10.0.0.1 25"),
            Some((tcp("10.0.0.1", 25), Some(5000)))
        );
        assert_eq!(script_probe("nc 10.0.0.1 25"), None);
        assert_eq!(
            script_probe("wget -q -O /dev/null https://[2001:db8::1]/ok"),
            Some((
                ScriptProbe::Http {
                    tls: true,
                    host: "2001:db8::1".into(),
                    port: None,
                    path: "/ok".into()
                },
                None
            ))
        );
        assert_eq!(script_probe("killall -0 haproxy"), None);
        assert_eq!(script_probe(""), None);
        let ping = |host: &str| ScriptProbe::Ping { host: host.into() };
        assert_eq!(
            script_probe("/bin/ping -c 1 -W 2 10.0.0.1"),
            Some((ping("10.0.0.1"), Some(2000)))
        );
        assert_eq!(
            script_probe("ping -q -c1 -i 0.2 gw.example"),
            Some((ping("gw.example"), None))
        );
        assert_eq!(
            script_probe("fping 2001:db8::1"),
            Some((ping("2001:db8::1"), None))
        );
        // Without a count ping never exits: no check.
        assert_eq!(script_probe("ping 10.0.0.1"), None);
    }
}
