//! What the extension defines ([`Extension`]) and what the reference
//! says ([`Reference`]), each read once per test process.

use super::*;

/// The text of one COMMENT of an install-script part.
#[derive(Debug)]
pub(crate) struct CommentText {
    pub(crate) text: String,
    pub(crate) origin: String,
}

#[derive(Debug, Default)]
pub(crate) struct Extension {
    /// Every SQL function of schema `jobs`: `#[pg_extern]` ones and those
    /// created by SQL, with where each was found.
    pub(crate) functions: BTreeMap<String, String>,
    pub(crate) tables: BTreeSet<String>,
    pub(crate) views: BTreeSet<String>,
    /// Objects named by a COMMENT: `function:x`, `table:x`, `view:x`, `column:t.c`.
    pub(crate) comments: BTreeSet<String>,
    /// The text of each COMMENT in the install-script parts, by the same
    /// keys as `comments` (a later COMMENT on the same object replaces an
    /// earlier one, as in the database).
    pub(crate) comment_texts: BTreeMap<String, CommentText>,
    pub(crate) settings: BTreeSet<String>,
}

impl Extension {
    pub(crate) fn relation(&self, name: &str) -> bool {
        self.tables.contains(name) || self.views.contains(name)
    }
    pub(crate) fn exists(&self, name: &str) -> bool {
        self.functions.contains_key(name) || self.relation(name)
    }
}

pub(crate) fn install_sql_parts(sql_dir: &Path) -> Vec<PathBuf> {
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
pub(crate) fn note_sql(ext: &mut Extension, text: &str, origin: &str, texts: bool) {
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

pub(crate) fn extension() -> &'static Extension {
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

pub(crate) struct Reference {
    /// Headings (without the leading #s), with their level.
    pub(crate) headings: Vec<(usize, String)>,
    /// For each heading: the quote right under it (`>` lines after only
    /// blank lines), without the `>`s, whitespace normalised; empty if none.
    pub(crate) summaries: Vec<String>,
    /// For each heading: the level-2 heading it is in (itself if level 2;
    /// empty before the first one).
    pub(crate) parts: Vec<String>,
    /// Inline code spans outside fenced blocks, with the index of the
    /// heading they are under (None: before the first heading).
    pub(crate) spans: Vec<(Option<usize>, String)>,
    /// The whole text.
    pub(crate) text: String,
}

pub(crate) fn reference() -> &'static Reference {
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
pub(crate) fn names(text: &str, token: &str) -> bool {
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
    pub(crate) fn documents(&self, token: &str) -> bool {
        self.headings.iter().any(|(_, h)| names(h, token)) || self.spans.iter().any(|(_, s)| names(s, token))
    }

    /// Column `column` of `jobs.<table>`: `jobs.<table>.<column>` anywhere,
    /// or `<column>` in a code span of a section whose heading names the
    /// table (up to the next heading of the same or a higher level).
    pub(crate) fn documents_column(&self, table: &str, column: &str) -> bool {
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
    pub(crate) fn sections_of(&self, kind: &str, name: &str) -> Vec<usize> {
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

pub(crate) fn fail_if_any(what: &str, missing: &[String]) {
    assert!(missing.is_empty(), "{what}:\n  {}", missing.join("\n  "));
}
