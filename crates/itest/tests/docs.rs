//! The SQL reference (`docs/sql-reference.md`) against the extension's
//! source: no database, no build of the extension, just files.
//!
//! What the extension defines is read from:
//! * the install-script parts under `crates/pg_jobs/sql/` (not the released
//!   versions in `frozen/`, not upgrade scripts `pg_jobs--A--B.sql` nor
//!   anything under an `upgrade/` folder): `CREATE FUNCTION/TABLE/VIEW
//!   jobs.…` and `COMMENT ON … jobs.…`;
//! * every `.rs` file under `crates/pg_jobs/src`, at any depth: the
//!   `#[pg_extern]` functions that land in the extension's schema (the
//!   control file's `schema`, unless a `schema = "…"` argument or an
//!   enclosing `#[pg_schema] mod` says otherwise), `COMMENT ON`/`CREATE`
//!   statements in `extension_sql!` strings, and every `pg_jobs.<name>`
//!   setting named in the code.
//!
//! The checks: each of those objects and settings is named in a heading or
//! an inline code span of the reference (a column: in a code span of its
//! table's section); every `jobs.<name>` and `pg_jobs.<name>` the reference
//! mentions exists; and every function, table and view in schema `jobs` has
//! a `COMMENT` (see [`AWAITING_COMMENT`]).
//!
//! And the reference says what the `COMMENT`s say: for every `COMMENT ON
//! FUNCTION/TABLE/VIEW/COLUMN jobs.… IS '…'` of the install-script parts
//! (the public objects and the internal `jobs._*` functions alike), the
//! section of that object opens with a quote (`> …`, right under its
//! heading) that contains the comment's text word for word (whitespace
//! normalised, `''` read as `'`); for a column, its table's section opens
//! with a quote containing ``- `column`: text``. An object's section is one
//! whose heading's first `jobs.` name is the object, under `## Tables` for
//! a table or column, `## Views` for a view, under neither for a function
//! (`jobs.daemon` is both a function and a table).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Functions known to have no `COMMENT` yet. A comment added to the install
/// script must also be added by an upgrade script, or the upgrade test
/// (`lifecycle.rs`: an upgraded catalog equals a fresh install's, comments
/// included) fails; the released scripts stay as they are, so these wait
/// for the 0.3.0 → 0.4.0 script. The check fails if any other function has
/// no comment, and also if one listed here has got one or is gone: the list
/// can only shrink, to empty.
const AWAITING_COMMENT: &[&str] = &[];

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Files under `dir` (recursively) whose name ends in `.ext`, sorted.
fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("cannot list {}: {e}", d.display()));
        for entry in entries {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == ext) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn is_ident(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// The identifier that starts at byte `i` of `s` after any whitespace (possibly empty).
fn ident_after_ws(s: &str, i: usize) -> &str {
    let ws = s[i..].len() - s[i..].trim_start().len();
    ident_at(s, i + ws)
}

/// The identifier starting at byte `i` of `s` (possibly empty).
fn ident_at(s: &str, i: usize) -> &str {
    let end = s[i..]
        .bytes()
        .position(|b| !is_ident(b))
        .map_or(s.len(), |n| i + n);
    &s[i..end]
}

/// Every `<prefix><name>` in `text` where `<prefix>` is not glued to a
/// preceding identifier (so `jobs.` does not match inside `pg_jobs.`).
/// Returns the names, with what follows each (for `jobs.run.owner`: `run`
/// and `.owner`).
fn qualified<'a>(text: &'a str, prefix: &str) -> Vec<(&'a str, &'a str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(prefix).map(|n| from + n) {
        from = at + prefix.len();
        if at > 0 && is_ident(text.as_bytes()[at - 1]) {
            continue;
        }
        let name = ident_at(text, from);
        if !name.is_empty() {
            out.push((name, &text[from + name.len()..]));
        }
    }
    out
}

// ---------------------------------------------------------------------------
// Rust sources: mask comments and literals, then find `#[pg_extern]` items.

/// `src` with every comment and every string, byte-string, C-string, raw
/// string and char literal replaced by spaces, byte for byte (so offsets
/// into the result are offsets into `src`).
fn mask_rust(src: &str) -> Vec<u8> {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for x in &mut out[from..to.min(b.len())] {
            if *x != b'\n' {
                *x = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let glued = i > 0 && is_ident(b[i - 1]);
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = b[i..].iter().position(|&c| c == b'\n').map_or(b.len(), |n| i + n);
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let (mut depth, mut j) = (1, i + 2);
                while j < b.len() && depth > 0 {
                    if b[j] == b'/' && b.get(j + 1) == Some(&b'*') {
                        depth += 1;
                        j += 2;
                    } else if b[j] == b'*' && b.get(j + 1) == Some(&b'/') {
                        depth -= 1;
                        j += 2;
                    } else {
                        j += 1;
                    }
                }
                blank(&mut out, i, j);
                i = j;
            }
            // r"…", r#"…"#, and with a b or c prefix.
            b'r' if (!glued || (matches!(b[i - 1], b'b' | b'c') && (i < 2 || !is_ident(b[i - 2]))))
                && matches!(b.get(i + 1), Some(b'"') | Some(b'#')) =>
            {
                let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
                if b.get(i + 1 + hashes) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let close: Vec<u8> = std::iter::once(b'"')
                    .chain(std::iter::repeat_n(b'#', hashes))
                    .collect();
                let body = i + 2 + hashes;
                let end = b[body..]
                    .windows(close.len())
                    .position(|w| w == close.as_slice())
                    .map_or(b.len(), |n| body + n + close.len());
                blank(&mut out, i, end);
                i = end;
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                blank(&mut out, i, j + 1);
                i = j + 1;
            }
            // A char literal ('x', '\n', '\u{..}', 'é'), or a lifetime or label.
            b'\'' => {
                let end = if b.get(i + 1) == Some(&b'\\') {
                    b[i + 3..].iter().position(|&c| c == b'\'').map(|n| i + 3 + n + 1)
                } else {
                    let ch_len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                    (b.get(i + 1 + ch_len) == Some(&b'\'')).then_some(i + 2 + ch_len)
                };
                match end {
                    Some(end) => {
                        blank(&mut out, i, end);
                        i = end;
                    }
                    None => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    out
}

/// The index just past the bracket that closes the one at `open`
/// (`(`/`[`/`{`), in masked source.
fn close_of(m: &[u8], open: usize) -> usize {
    let (o, c) = match m[open] {
        b'(' => (b'(', b')'),
        b'[' => (b'[', b']'),
        _ => (b'{', b'}'),
    };
    let mut depth = 0usize;
    for (j, &x) in m.iter().enumerate().skip(open) {
        if x == o {
            depth += 1;
        } else if x == c {
            depth -= 1;
            if depth == 0 {
                return j + 1;
            }
        }
    }
    m.len()
}

/// The first `keyword` in `m` at or after `from` that stands alone (not
/// part of a longer identifier).
fn keyword(m: &[u8], from: usize, keyword: &str) -> Option<usize> {
    let k = keyword.as_bytes();
    (from..m.len().saturating_sub(k.len() - 1)).find(|&j| {
        &m[j..j + k.len()] == k
            && (j == 0 || !is_ident(m[j - 1]))
            && m.get(j + k.len()).is_none_or(|&c| !is_ident(c))
    })
}

/// `key = "value"` inside an attribute's original text.
fn attr_string(attr: &str, key: &str) -> Option<String> {
    let mut from = 0;
    while let Some(at) = attr[from..].find(key).map(|n| from + n) {
        from = at + key.len();
        let glued_before = at > 0 && is_ident(attr.as_bytes()[at - 1]);
        let glued_after = attr[from..].bytes().next().is_some_and(is_ident);
        if glued_before || glued_after {
            continue;
        }
        if let Some(rest) = attr[from..].trim_start().strip_prefix('=') {
            let rest = rest.trim_start().strip_prefix('"')?;
            return rest.find('"').map(|end| rest[..end].to_owned());
        }
    }
    None
}

/// The SQL schema of each `#[pg_extern]` function in one Rust file, by SQL name.
fn pg_externs(src: &str, default_schema: &str) -> Vec<(String, String)> {
    let m = mask_rust(src);
    let text = String::from_utf8_lossy(&m).into_owned();
    // `#[pg_schema] mod x { … }`: the byte range of its body, and its name.
    let mut modules: Vec<(usize, usize, String)> = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("#[pg_schema]").map(|n| from + n) {
        from = at + 1;
        let Some(kw) = keyword(&m, at, "mod") else { break };
        let name = ident_after_ws(&text, kw + 3);
        if let Some(open) = text[kw..].find(['{', ';']).map(|n| kw + n) {
            if m[open] == b'{' {
                modules.push((open, close_of(&m, open), name.to_owned()));
            }
        }
    }
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find("#[pg_extern").map(|n| from + n) {
        from = at + 1;
        if text[at + "#[pg_extern".len()..]
            .bytes()
            .next()
            .is_some_and(is_ident)
        {
            continue;
        }
        let attr_end = close_of(&m, at + 1);
        let attr = &src[at..attr_end];
        let Some(f) = keyword(&m, attr_end, "fn") else {
            continue;
        };
        let rust_name = ident_after_ws(&text, f + 2);
        let name = attr_string(attr, "name").unwrap_or_else(|| rust_name.to_owned());
        let schema = attr_string(attr, "schema").unwrap_or_else(|| {
            modules
                .iter()
                .filter(|(s, e, _)| *s < at && at < *e)
                .max_by_key(|(s, _, _)| *s)
                .map_or_else(|| default_schema.to_owned(), |(_, _, n)| n.clone())
        });
        out.push((schema, name));
    }
    out
}

// ---------------------------------------------------------------------------
// SQL: statements that create and comment objects of schema `jobs`.

/// `sql` without `--` line comments and `/* */` block comments. A
/// `'…'` literal is kept as it is (a `--` in a COMMENT's text is text).
fn strip_sql_comments(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while !rest.is_empty() {
        if rest.starts_with('\'') {
            // Up to the closing quote; a doubled '' is part of the literal.
            let len = rest[1..].find('\'').map_or(rest.len(), |n| n + 2);
            out.push_str(&rest[..len]);
            rest = &rest[len..];
        } else if let Some(r) = rest.strip_prefix("--") {
            rest = r.find('\n').map_or("", |n| &r[n..]);
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.find("*/").map_or("", |n| &r[n + 2..]);
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// For each statement form such as `COMMENT ON FUNCTION` or `CREATE VIEW`
/// (words separated by single spaces, any case), the `jobs.` object it
/// names, with what follows the name. `text` is SQL with its comments
/// stripped, or Rust with its line comments stripped.
fn statements<'a>(text: &'a str, forms: &[&str]) -> Vec<(String, &'a str, &'a str)> {
    let upper = text.to_ascii_uppercase();
    let mut out = Vec::new();
    for form in forms {
        let words: Vec<&str> = form.split(' ').collect();
        let mut from = 0;
        while let Some(at) = upper[from..].find(words[0]).map(|n| from + n) {
            from = at + words[0].len();
            if at > 0 && is_ident(upper.as_bytes()[at - 1]) {
                continue;
            }
            // The remaining words, each after some whitespace.
            let mut pos = from;
            let matched = words[1..].iter().all(|w| {
                let ws = upper[pos..].len() - upper[pos..].trim_start().len();
                if ws > 0 && upper[pos + ws..].starts_with(w) {
                    pos += ws + w.len();
                    true
                } else {
                    false
                }
            });
            if !matched {
                continue;
            }
            let mut rest = text[pos..].trim_start();
            if rest.to_ascii_uppercase().starts_with("IF NOT EXISTS") {
                rest = rest["IF NOT EXISTS".len()..].trim_start();
            }
            if let Some(after) = rest.strip_prefix("jobs.") {
                let name = ident_at(after, 0);
                out.push((form.to_string(), &after[..name.len()], &after[name.len()..]));
            }
        }
    }
    out
}

/// The text of a COMMENT, from what follows the object's name in `COMMENT
/// ON … jobs.<name>…` (a function's argument list, a column's `.column`)
/// through `IS '…'`: `''` read as `'`, adjacent literals on separate lines
/// joined (as SQL does), whitespace normalised.
fn comment_text(rest: &str) -> Result<String, String> {
    let mut s = rest;
    if s.starts_with('(') {
        let mut depth = 0usize;
        let close = s
            .char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' => depth += 1,
                    ')' => depth -= 1,
                    _ => {}
                }
                depth == 0
            })
            .ok_or("unclosed argument list")?
            .0;
        s = &s[close + 1..];
    } else if let Some(r) = s.strip_prefix('.') {
        s = &r[ident_at(r, 0).len()..];
    }
    s = s.trim_start();
    let glued = s.as_bytes().get(2).is_some_and(|&b| is_ident(b));
    if !s.get(..2).is_some_and(|k| k.eq_ignore_ascii_case("IS")) || glued {
        return Err(format!("no IS after the name: {:?}", first_line(s)));
    }
    s = s[2..].trim_start();
    if !s.starts_with('\'') {
        return Err(format!(
            "the comment is not a plain '…' literal (IS NULL, E'…' and $$…$$ are not read): {:?}",
            first_line(s)
        ));
    }
    let mut text = String::new();
    while let Some(body) = s.strip_prefix('\'') {
        let mut chars = body.char_indices();
        let end = loop {
            match chars.next() {
                Some((i, '\'')) if body[i + 1..].starts_with('\'') => {
                    text.push('\'');
                    chars.next();
                }
                Some((i, '\'')) => break i + 1,
                Some((_, c)) => text.push(c),
                None => return Err("unterminated literal".into()),
            }
        };
        let after = &body[end..];
        let gap = &after[..after.len() - after.trim_start().len()];
        if !gap.contains('\n') || !after.trim_start().starts_with('\'') {
            break;
        }
        s = after.trim_start();
    }
    Ok(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

// ---------------------------------------------------------------------------
// What the extension defines.

/// The text of one COMMENT of an install-script part.
#[derive(Debug)]
struct CommentText {
    text: String,
    origin: String,
}

#[derive(Debug, Default)]
struct Extension {
    /// Every SQL function of schema `jobs`: `#[pg_extern]` ones and those
    /// created by SQL, with where each was found.
    functions: BTreeMap<String, String>,
    tables: BTreeSet<String>,
    views: BTreeSet<String>,
    /// Objects named by a COMMENT: `function:x`, `table:x`, `view:x`, `column:t.c`.
    comments: BTreeSet<String>,
    /// The text of each COMMENT in the install-script parts, by the same
    /// keys as `comments` (a later COMMENT on the same object replaces an
    /// earlier one, as in the database).
    comment_texts: BTreeMap<String, CommentText>,
    settings: BTreeSet<String>,
}

impl Extension {
    fn relation(&self, name: &str) -> bool {
        self.tables.contains(name) || self.views.contains(name)
    }
    fn exists(&self, name: &str) -> bool {
        self.functions.contains_key(name) || self.relation(name)
    }
}

fn install_sql_parts(sql_dir: &Path) -> Vec<PathBuf> {
    files(sql_dir, "sql")
        .into_iter()
        .filter(|p| {
            let rel = p.strip_prefix(sql_dir).unwrap();
            let name = p.file_name().unwrap().to_string_lossy();
            !name.contains("--")
                && !rel
                    .components()
                    .any(|c| matches!(c.as_os_str().to_str(), Some("frozen" | "upgrade")))
        })
        .collect()
}

/// Notes what `text` creates and comments; with `texts`, also the text of
/// each COMMENT (`text` is then SQL, not Rust with its own escapes).
fn note_sql(ext: &mut Extension, text: &str, origin: &str, texts: bool) {
    for (form, name, rest) in statements(
        text,
        &[
            "CREATE FUNCTION",
            "CREATE OR REPLACE FUNCTION",
            "CREATE TABLE",
            "CREATE UNLOGGED TABLE",
            "CREATE VIEW",
            "CREATE OR REPLACE VIEW",
            "CREATE MATERIALIZED VIEW",
            "COMMENT ON FUNCTION",
            "COMMENT ON TABLE",
            "COMMENT ON VIEW",
            "COMMENT ON MATERIALIZED VIEW",
            "COMMENT ON COLUMN",
        ],
    ) {
        let name = name.to_owned();
        let key = match form.as_str() {
            f if f.starts_with("CREATE") && f.ends_with("FUNCTION") => {
                ext.functions.entry(name).or_insert_with(|| origin.to_owned());
                continue;
            }
            f if f.starts_with("CREATE") && f.ends_with("TABLE") => {
                ext.tables.insert(name);
                continue;
            }
            f if f.starts_with("CREATE") => {
                ext.views.insert(name);
                continue;
            }
            "COMMENT ON FUNCTION" => format!("function:{name}"),
            "COMMENT ON TABLE" => format!("table:{name}"),
            "COMMENT ON COLUMN" => {
                let column = rest.strip_prefix('.').map(|r| ident_at(r, 0)).unwrap_or_default();
                assert!(
                    !column.is_empty(),
                    "{origin}: cannot read the column of COMMENT ON COLUMN jobs.{name}"
                );
                format!("column:{name}.{column}")
            }
            _ => format!("view:{name}"),
        };
        if texts {
            let text = comment_text(rest)
                .unwrap_or_else(|e| panic!("{origin}: cannot read the text of {form} jobs.{name}: {e}"));
            let origin = origin.to_owned();
            ext.comment_texts
                .insert(key.clone(), CommentText { text, origin });
        }
        ext.comments.insert(key);
    }
}

fn extension() -> &'static Extension {
    static EXT: OnceLock<Extension> = OnceLock::new();
    EXT.get_or_init(|| {
        let root = repo().join("crates/pg_jobs");
        let control = read(&root.join("pg_jobs.control"));
        let schema = control
            .lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("schema")
                    .map(|r| r.trim().trim_start_matches('=').trim())
            })
            .map(|s| s.trim_matches('\'').to_owned())
            .expect("pg_jobs.control names the extension's schema");
        let mut ext = Extension::default();
        for part in install_sql_parts(&root.join("sql")) {
            let origin = part.strip_prefix(repo()).unwrap_or(&part).display().to_string();
            note_sql(&mut ext, &strip_sql_comments(&read(&part)), &origin, true);
        }
        for file in files(&root.join("src"), "rs") {
            let src = read(&file);
            let origin = file.strip_prefix(repo()).unwrap_or(&file).display().to_string();
            for (in_schema, name) in pg_externs(&src, &schema) {
                if in_schema == "jobs" {
                    ext.functions.entry(name).or_insert_with(|| origin.clone());
                }
            }
            // SQL in extension_sql! strings (comment lines aside).
            let code: String = src
                .lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            note_sql(&mut ext, &code, &origin, false);
            for (name, rest) in qualified(&src, "pg_jobs.") {
                // pg_jobs.so, pg_jobs.control and the like are files, not settings.
                if !rest.starts_with('.') && !matches!(name, "so" | "control" | "sql" | "rs") {
                    ext.settings.insert(format!("pg_jobs.{name}"));
                }
            }
        }
        ext
    })
}

// ---------------------------------------------------------------------------
// The reference.

struct Reference {
    /// Headings (without the leading #s), with their level.
    headings: Vec<(usize, String)>,
    /// For each heading: the quote right under it (`>` lines after only
    /// blank lines), without the `>`s, whitespace normalised; empty if none.
    summaries: Vec<String>,
    /// For each heading: the level-2 heading it is in (itself if level 2;
    /// empty before the first one).
    parts: Vec<String>,
    /// Inline code spans outside fenced blocks, with the index of the
    /// heading they are under (None: before the first heading).
    spans: Vec<(Option<usize>, String)>,
    /// The whole text.
    text: String,
}

fn reference() -> &'static Reference {
    static REF: OnceLock<Reference> = OnceLock::new();
    REF.get_or_init(|| {
        let text = read(&repo().join("docs/sql-reference.md"));
        let mut headings = Vec::new();
        let mut summaries: Vec<String> = Vec::new();
        let mut parts: Vec<String> = Vec::new();
        let mut spans = Vec::new();
        let mut fenced = false;
        // Whether the lines read since the last heading may still be its summary.
        let mut in_summary = false;
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                fenced = !fenced;
                in_summary = false;
                continue;
            }
            if fenced {
                continue;
            }
            let level = line.bytes().take_while(|&b| b == b'#').count();
            if level > 0 && line[level..].starts_with(' ') {
                let heading = line[level..].trim().to_owned();
                let part = match level {
                    1 => String::new(),
                    2 => heading.clone(),
                    _ => parts.last().cloned().unwrap_or_default(),
                };
                headings.push((level, heading));
                summaries.push(String::new());
                parts.push(part);
                in_summary = true;
            } else if in_summary {
                if let Some(quoted) = line.trim_start().strip_prefix('>') {
                    let summary = summaries.last_mut().unwrap();
                    summary.push(' ');
                    summary.push_str(quoted);
                } else if !line.trim().is_empty() || !summaries.last().unwrap().is_empty() {
                    in_summary = false;
                }
            }
            let under = headings.len().checked_sub(1);
            // `code` and ``code``: a run of n backticks closes at the next run of n.
            let mut rest = line;
            while let Some(open) = rest.find('`') {
                let ticks = rest[open..].bytes().take_while(|&b| b == b'`').count();
                let body = &rest[open + ticks..];
                let fence = "`".repeat(ticks);
                let Some(close) = body.find(&fence) else { break };
                spans.push((under, body[..close].trim().to_owned()));
                rest = &body[close + ticks..];
            }
        }
        let summaries = summaries
            .into_iter()
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        Reference {
            headings,
            summaries,
            parts,
            spans,
            text,
        }
    })
}

/// Whether `token` occurs in `text` as a whole name (not inside a longer one).
fn names(text: &str, token: &str) -> bool {
    let mut from = 0;
    while let Some(at) = text[from..].find(token).map(|n| from + n) {
        from = at + 1;
        let before_ok = at == 0 || !is_ident(text.as_bytes()[at - 1]);
        let after_ok = text[at + token.len()..]
            .bytes()
            .next()
            .is_none_or(|b| !is_ident(b));
        if before_ok && after_ok {
            return true;
        }
    }
    false
}

impl Reference {
    /// Named in a heading or an inline code span.
    fn documents(&self, token: &str) -> bool {
        self.headings.iter().any(|(_, h)| names(h, token)) || self.spans.iter().any(|(_, s)| names(s, token))
    }

    /// Column `column` of `jobs.<table>`: `jobs.<table>.<column>` anywhere,
    /// or `<column>` in a code span of a section whose heading names the
    /// table (up to the next heading of the same or a higher level).
    fn documents_column(&self, table: &str, column: &str) -> bool {
        if self.documents(&format!("jobs.{table}.{column}")) {
            return true;
        }
        let table = format!("jobs.{table}");
        self.headings.iter().enumerate().any(|(h, (level, text))| {
            if !names(text, &table) {
                return false;
            }
            let end = self.headings[h + 1..]
                .iter()
                .position(|(l, _)| l <= level)
                .map_or(self.headings.len(), |n| h + 1 + n);
            self.spans
                .iter()
                .any(|(under, s)| under.is_some_and(|u| u >= h && u < end) && names(s, column))
        })
    }
}

impl Reference {
    /// The headings (by index) of the sections of `jobs.<name>`, a
    /// `kind` (`function`, `table` or `view`): their first `jobs.` name is
    /// `name`, and they are under `## Tables` (a table), `## Views` (a view)
    /// or neither (a function).
    fn sections_of(&self, kind: &str, name: &str) -> Vec<usize> {
        (0..self.headings.len())
            .filter(|&h| {
                let part = self.parts[h].as_str();
                let in_part = match kind {
                    "table" => part == "Tables",
                    "view" => part == "Views",
                    _ => part != "Tables" && part != "Views",
                };
                in_part
                    && qualified(&self.headings[h].1, "jobs.")
                        .first()
                        .is_some_and(|(n, rest)| *n == name && !rest.starts_with('.'))
            })
            .collect()
    }
}

fn fail_if_any(what: &str, missing: &[String]) {
    assert!(missing.is_empty(), "{what}:\n  {}", missing.join("\n  "));
}

// ---------------------------------------------------------------------------

#[test]
fn the_scan_finds_the_extension() {
    let ext = extension();
    // A scan that found nothing would pass every check below vacuously.
    for f in ["submit", "schedule", "cancel", "result", "_submit", "next_runs"] {
        assert!(
            ext.functions.contains_key(f),
            "function jobs.{f} not found; found {:?}",
            ext.functions
        );
    }
    for t in ["job", "run", "daemon", "run_result"] {
        assert!(
            ext.tables.contains(t),
            "table jobs.{t} not found; found {:?}",
            ext.tables
        );
    }
    for v in ["workers", "job_status", "daemon_status"] {
        assert!(
            ext.views.contains(v),
            "view jobs.{v} not found; found {:?}",
            ext.views
        );
    }
    assert!(ext.settings.len() >= 9, "settings found: {:?}", ext.settings);
    assert!(ext.comments.len() >= 20, "comments found: {:?}", ext.comments);
    assert!(
        ext.comment_texts.len() >= 30 && ext.comment_texts.values().all(|c| !c.text.is_empty()),
        "comment texts found: {:?}",
        ext.comment_texts
    );
    for key in [
        "function:_submit",
        "table:run",
        "column:run.status",
        "view:workers",
    ] {
        assert!(ext.comment_texts.contains_key(key), "no COMMENT text for {key}");
    }
    assert!(!reference().headings.is_empty() && !reference().spans.is_empty());
}

#[test]
fn every_commented_object_is_in_the_reference() {
    let (ext, doc) = (extension(), reference());
    let missing: Vec<String> = ext
        .comments
        .iter()
        .filter(|c| match c.split_once(':') {
            Some(("column", tc)) => {
                let (t, col) = tc.split_once('.').unwrap();
                !doc.documents_column(t, col)
            }
            Some((_, name)) => !doc.documents(&format!("jobs.{name}")),
            None => unreachable!(),
        })
        .cloned()
        .collect();
    fail_if_any(
        "objects with a COMMENT that docs/sql-reference.md does not name in a heading or code span",
        &missing,
    );
}

#[test]
fn every_comment_opens_its_objects_section() {
    let (ext, doc) = (extension(), reference());
    let mut missing = Vec::new();
    for (key, CommentText { text, origin }) in &ext.comment_texts {
        let (kind, object) = key.split_once(':').unwrap();
        let (kind, name, expected) = match kind {
            "column" => {
                let (table, column) = object.split_once('.').unwrap();
                ("table", table, format!("- `{column}`: {text}"))
            }
            _ => (kind, object, text.clone()),
        };
        let what = match key.split_once(':') {
            Some(("column", tc)) => format!("column jobs.{tc}"),
            _ => format!("{kind} jobs.{name}"),
        };
        let sections = doc.sections_of(kind, name);
        let part = match kind {
            "table" => "under ## Tables",
            "view" => "under ## Views",
            _ => "outside ## Tables and ## Views",
        };
        if sections.is_empty() {
            missing.push(format!(
                "{what} ({origin}): no heading {part} names jobs.{name} first; its section should open with\n    > {expected}"
            ));
        } else if !sections.iter().any(|&h| doc.summaries[h].contains(&expected)) {
            let heading = &doc.headings[sections[0]].1;
            missing.push(format!(
                "{what} ({origin}): the quote under \"{heading}\" does not contain\n    > {expected}"
            ));
        }
    }
    eprintln!(
        "{} COMMENT texts checked against docs/sql-reference.md",
        ext.comment_texts.len()
    );
    fail_if_any(
        "COMMENT texts that docs/sql-reference.md does not quote at the top of the object's section",
        &missing,
    );
}

#[test]
fn comment_texts_are_read_as_sql_reads_them() {
    assert_eq!(
        comment_text("(text, numeric(10, 2)) IS\n  'Runs a job''s\n   command -- now';").as_deref(),
        Ok("Runs a job's command -- now")
    );
    assert_eq!(comment_text(".owner is 'a' \n 'b';").as_deref(), Ok("ab"));
    assert_eq!(comment_text(" IS 'a' 'b';").as_deref(), Ok("a"));
    assert!(comment_text("(bigint) IS NULL;").is_err());
    assert!(comment_text(" ISNT 'x';").is_err());
    assert_eq!(
        strip_sql_comments("COMMENT ON TABLE jobs.t IS 'a -- b'; -- gone\nx /* gone */ y"),
        "COMMENT ON TABLE jobs.t IS 'a -- b'; \nx  y"
    );
}

#[test]
fn every_function_table_and_view_is_in_the_reference() {
    let (ext, doc) = (extension(), reference());
    let missing: Vec<String> = ext
        .functions
        .iter()
        .map(|(f, origin)| (format!("jobs.{f}"), format!("function jobs.{f} ({origin})")))
        .chain(
            ext.tables
                .iter()
                .map(|t| (format!("jobs.{t}"), format!("table jobs.{t}"))),
        )
        .chain(
            ext.views
                .iter()
                .map(|v| (format!("jobs.{v}"), format!("view jobs.{v}"))),
        )
        .filter(|(token, _)| !doc.documents(token))
        .map(|(_, what)| what)
        .collect();
    fail_if_any(
        "objects of schema jobs that docs/sql-reference.md does not name in a heading or code span",
        &missing,
    );
}

#[test]
fn every_setting_is_in_the_reference() {
    let (ext, doc) = (extension(), reference());
    let missing: Vec<String> = ext
        .settings
        .iter()
        .filter(|s| !doc.documents(s))
        .cloned()
        .collect();
    fail_if_any(
        "pg_jobs.* settings named in crates/pg_jobs/src that docs/sql-reference.md does not name in a heading or code span",
        &missing,
    );
}

#[test]
fn the_reference_names_only_real_objects_and_settings() {
    let (ext, doc) = (extension(), reference());
    let mut unknown = BTreeSet::new();
    // Headings that document a function must name a real one.
    for (_, h) in &doc.headings {
        for (name, rest) in qualified(h, "jobs.") {
            if rest.starts_with('(') && !ext.functions.contains_key(name) {
                unknown.insert(format!("heading \"{h}\": no function jobs.{name}"));
            }
        }
    }
    // Anywhere in the text: jobs.<object>[.<column>] and pg_jobs.<setting>.
    for (name, rest) in qualified(&doc.text, "jobs.") {
        // `jobs._*` is a psql pattern, not a name.
        if !ext.exists(name) && !rest.starts_with('*') {
            unknown.insert(format!("jobs.{name}: no such function, table or view"));
        }
    }
    for (name, _) in qualified(&doc.text, "pg_jobs.") {
        let setting = format!("pg_jobs.{name}");
        if !ext.settings.contains(&setting) {
            unknown.insert(format!("{setting}: no such setting"));
        }
    }
    fail_if_any(
        "docs/sql-reference.md names things the extension does not have",
        &unknown.into_iter().collect::<Vec<_>>(),
    );
}

#[test]
fn every_function_table_and_view_has_a_comment() {
    let ext = extension();
    let commented = |kind: &str, name: &str| ext.comments.contains(&format!("{kind}:{name}"));
    let mut missing: Vec<String> = ext
        .functions
        .iter()
        .filter(|(f, _)| !commented("function", f) && !AWAITING_COMMENT.contains(&f.as_str()))
        .map(|(f, origin)| format!("function jobs.{f} ({origin})"))
        .collect();
    missing.extend(
        ext.tables
            .iter()
            .filter(|t| !commented("table", t))
            .map(|t| format!("table jobs.{t}")),
    );
    missing.extend(
        ext.views
            .iter()
            .filter(|v| !commented("view", v))
            .map(|v| format!("view jobs.{v}")),
    );
    fail_if_any("objects of schema jobs without a COMMENT", &missing);

    let stale: Vec<String> = AWAITING_COMMENT
        .iter()
        .filter(|f| commented("function", f) || !ext.functions.contains_key(**f))
        .map(|f| format!("jobs.{f}: has a COMMENT now, or is gone; take it off AWAITING_COMMENT"))
        .collect();
    fail_if_any("AWAITING_COMMENT lists functions it should not", &stale);
    if !AWAITING_COMMENT.is_empty() {
        eprintln!(
            "functions still without a COMMENT (AWAITING_COMMENT): {}",
            AWAITING_COMMENT.join(", ")
        );
    }
}

/// The masking the scan relies on.
#[test]
fn masking_hides_comments_and_literals_but_keeps_offsets() {
    let src = "fn a() { let s = \"#[pg_extern] fn x\"; // #[pg_extern]\n let r = r#\"{\"#; let c = '{'; let l: &'static str = c\"}\"; }\n";
    let m = mask_rust(src);
    assert_eq!(m.len(), src.len());
    let text = String::from_utf8(m.clone()).unwrap();
    assert!(!text.contains("pg_extern"), "{text}");
    assert_eq!(close_of(&m, src.find('{').unwrap()), src.rfind('}').unwrap() + 1);
    let found = pg_externs(
        "#[pg_extern(name = \"shown\")]\nfn hidden() {}\n#[pg_schema]\nmod tests {\n  #[pg_extern]\n  fn t() {}\n}\n#[pg_extern(schema = \"other\", volatile)]\nfn o() {}\n#[pg_extern]\npub fn plain() {}\n",
        "jobs",
    );
    assert_eq!(
        found,
        vec![
            ("jobs".into(), "shown".into()),
            ("tests".into(), "t".into()),
            ("other".into(), "o".into()),
            ("jobs".into(), "plain".into()),
        ]
    );
}
