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

#[path = "docs/model.rs"]
mod model;
#[path = "docs/scan.rs"]
mod scan;

use model::*;
use scan::*;

/// Functions known to have no `COMMENT` yet. A comment added to the install
/// script must also be added by an upgrade script, or the upgrade test
/// (`lifecycle.rs`: an upgraded catalog equals a fresh install's, comments
/// included) fails; the released scripts stay as they are, so these wait
/// for the 0.3.0 → 0.4.0 script. The check fails if any other function has
/// no comment, and also if one listed here has got one or is gone: the list
/// can only shrink, to empty.
const AWAITING_COMMENT: &[&str] = &[];

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

/// The second extension, pg_jobs_cron (schema `cron`, `sql/cron/`): each
/// function and view it creates has a COMMENT, and docs/pg_cron.md quotes
/// every COMMENT word for word (whitespace normalised, as above).
#[test]
fn every_pg_jobs_cron_object_has_a_comment_quoted_in_its_reference() {
    let dir = repo().join("crates/pg_jobs/sql/cron");
    let doc = read(&repo().join("docs/pg_cron.md"));
    // The quotes' text, joined, whitespace normalised.
    let quoted: String = doc
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix('>'))
        .collect::<Vec<_>>()
        .join(" ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in files(&dir, "sql") {
        let sql = strip_sql_comments(&read(&file));
        let origin = file.strip_prefix(repo()).unwrap().display().to_string();
        let created: BTreeSet<String> = statements_in(&sql, &["CREATE FUNCTION", "CREATE VIEW"], "cron")
            .into_iter()
            .map(|(form, name, _)| {
                format!(
                    "{}:{name}",
                    if form.ends_with("VIEW") {
                        "view"
                    } else {
                        "function"
                    }
                )
            })
            .collect();
        let mut commented = BTreeSet::new();
        for (form, name, rest) in statements_in(&sql, &["COMMENT ON FUNCTION", "COMMENT ON VIEW"], "cron") {
            let kind = if form.ends_with("VIEW") {
                "view"
            } else {
                "function"
            };
            commented.insert(format!("{kind}:{name}"));
            let text = comment_text(rest).unwrap_or_else(|e| panic!("{origin}: COMMENT ON cron.{name}: {e}"));
            checked += 1;
            if !quoted.contains(&text) {
                problems.push(format!(
                    "{kind} cron.{name} ({origin}): docs/pg_cron.md quotes nowhere\n    > {text}"
                ));
            }
        }
        for missing in created.difference(&commented) {
            problems.push(format!("{missing} ({origin}) has no COMMENT"));
        }
    }
    assert!(
        checked >= 10,
        "only {checked} COMMENTs found under {}",
        dir.display()
    );
    fail_if_any("pg_jobs_cron objects and their COMMENTs", &problems);
}
