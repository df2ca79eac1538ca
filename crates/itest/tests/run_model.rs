//! Every write of a run's status in the extension's source is a transition
//! of the run model in `pg_jobs_core::run`: each statement that creates a
//! `jobs.run` row or sets its status names its event in a
//! `/* run event: NAME */` comment, and carries exactly the guard the model
//! derives for that event (`WHERE status …`) and sets the model's target.
//! A new status write without an event, or with a guard the model does not
//! allow, fails here. (The chaos test checks the same model at run time.)

use pg_jobs_core::run::{check_update_sql, RunEvent};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The string literals of `code` (outside `mod tests`) that write a run's
/// status: INSERTs into `jobs.run`, and UPDATEs of it that set `status`.
fn status_writes(code: &str) -> Vec<String> {
    let code = code.split("mod tests {").next().unwrap_or_default();
    let mut out = Vec::new();
    // SQL here is in "…" literals with no double quote inside.
    for (i, lit) in code.split('"').enumerate() {
        if i % 2 == 0 {
            continue;
        }
        let flat = lit.split_whitespace().collect::<Vec<_>>().join(" ");
        let inserts = flat.contains("INSERT INTO jobs.run (");
        let updates = flat.contains("UPDATE jobs.run ") && flat.contains("SET status =");
        if inserts || updates {
            out.push(flat);
        }
    }
    out
}

/// A write marked `(row locked)` updates rows its transaction has just read
/// `FOR UPDATE` with the event's guard: that read, marked
/// `/* locks for run events: …, NAME, … */` in the same file, must carry
/// the model's guard and lock the rows; the write itself must set the
/// model's target. (Used where a status condition in the UPDATE would make
/// the planner scan the partial queue index instead of the primary key.)
fn check_row_locked(event: RunEvent, sql: &str, code: &str) -> Result<(), String> {
    let target = format!("SET status = '{}'", event.to().as_str());
    if !sql.contains(&target) {
        return Err(format!("the statement for {event} does not `{target}`"));
    }
    let guard = event.guard_sql("status");
    let locked = code.split('"').skip(1).step_by(2).any(|lit| {
        let flat = lit.split_whitespace().collect::<Vec<_>>().join(" ");
        let events = flat
            .split("/* locks for run events: ")
            .nth(1)
            .and_then(|r| r.split(" */").next())
            .unwrap_or_default();
        events.split(", ").any(|e| e == event.name()) && flat.contains(&guard) && flat.contains("FOR UPDATE")
    });
    if locked {
        Ok(())
    } else {
        Err(format!(
            "the statement for {event} is marked row locked, but no read in its file locks rows \
             for it with `{guard}` and FOR UPDATE"
        ))
    }
}

#[test]
fn every_status_write_is_a_transition_of_the_run_model() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../pg_jobs/src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files.sort();
    let mut seen = Vec::new();
    let mut wrong = Vec::new();
    for f in &files {
        let code = std::fs::read_to_string(f).unwrap();
        for sql in status_writes(&code) {
            let at = f.strip_prefix(&src).unwrap_or(f).display().to_string();
            let Some(name) = sql
                .split("/* run event: ")
                .nth(1)
                .and_then(|r| r.split(" */").next())
            else {
                wrong.push(format!(
                    "{at}: no `/* run event: … */` in: {}",
                    &sql[..sql.len().min(100)]
                ));
                continue;
            };
            let (names, row_locked) = match name.strip_suffix(" (row locked)") {
                Some(n) => (n, true),
                None => (name, false),
            };
            // One statement may perform several events (`fire, skip`: a due
            // job's run is queued or recorded skipped), or every ending of
            // one (`harvest(*)`): each is checked.
            let mut events = Vec::new();
            for name in names.split(", ") {
                let matching: Vec<RunEvent> = match name.strip_suffix("(*)") {
                    Some(stem) => RunEvent::ALL
                        .into_iter()
                        .filter(|e| e.name().starts_with(&format!("{stem}(")))
                        .collect(),
                    None => RunEvent::ALL.into_iter().filter(|e| e.name() == name).collect(),
                };
                if matching.is_empty() {
                    wrong.push(format!("{at}: unknown run event `{name}`"));
                }
                events.extend(matching);
            }
            for event in events {
                let checked = if row_locked {
                    check_row_locked(event, &sql, &code)
                } else {
                    check_update_sql(event, &sql).map_err(|e| e.to_string())
                };
                if let Err(e) = checked {
                    wrong.push(format!("{at}: {e}"));
                }
                seen.push(event);
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "status writes outside the run model:\n{}",
        wrong.join("\n")
    );
    // The source really was read: the core writes are there.
    for must in [
        "dispatch",
        "claim",
        "requeue",
        "start",
        "record",
        "crash_sweep",
        "cancel",
        "fire",
        "submit",
    ] {
        assert!(
            seen.iter().any(|e| e.name().starts_with(must)),
            "no status write for `{must}` found: was the source read?"
        );
    }
    println!("{} status writes, each a transition of the run model", seen.len());
}

/// Whitespace-normalised text of a file of the extension crate.
fn flat_source(path: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../pg_jobs")
        .join(path);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The one overlap predicate in SQL (`overlap_lets_start!` in
/// `catalog/runs/mod.rs`) is `Overlap::may_start`: it exempts exactly the
/// policies that may start while another run of the job is active, counts
/// as active the statuses the run model calls in flight, and, for a batch
/// claim, every other live run.
#[test]
fn the_overlap_predicate_is_overlap_may_start() {
    use pg_jobs_core::overlap::Overlap;
    use pg_jobs_core::run::StatusSet;
    let src = flat_source("src/catalog/runs/mod.rs");
    let exempt: Vec<Overlap> = Overlap::ALL.into_iter().filter(|o| o.may_start(1)).collect();
    assert_eq!(exempt.len(), 1, "the SQL exempts one policy: {exempt:?}");
    let exempt_sql = format!("AND j.overlap OPERATOR(pg_catalog.<>) '{}'", exempt[0].as_str());
    assert!(
        src.contains(&exempt_sql),
        "no `{exempt_sql}` in the overlap predicate"
    );
    assert!(Overlap::ALL.into_iter().all(|o| o.may_start(0)));
    let active = format!("\"{}\"", StatusSet::IN_FLIGHT.sql_guard("o.status"));
    assert!(
        src.contains(&active),
        "MAY_START does not count {active} as active"
    );
    let others = format!(
        "\"o.id OPERATOR(pg_catalog.<>) r.id AND {}\"",
        StatusSet::LIVE.sql_guard("o.status")
    );
    assert!(
        src.contains(&others),
        "MAY_START_IN_BATCH does not count {others}"
    );
}

/// The dispatch order (`DISPATCH_ORDER` in `catalog/runs/mod.rs`) is the
/// key of the index `run_queue` in `sql/schema.sql` after the owner, so
/// taking the head of a role's lane is an index scan, not a sort.
#[test]
fn the_dispatch_order_is_the_run_queue_index() {
    let src = flat_source("src/catalog/runs/mod.rs");
    let order = src
        .split("const DISPATCH_ORDER: &str = \"ORDER BY ")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("DISPATCH_ORDER in catalog/runs/mod.rs");
    let schema = flat_source("sql/schema.sql");
    let index = |name: &str| {
        schema
            .split(&format!("CREATE INDEX {name} ON jobs.run ("))
            .nth(1)
            .and_then(|r| r.split(") WHERE status OPERATOR(pg_catalog.=) 'queued'").next())
            .unwrap_or_else(|| panic!("the partial index {name} on queued runs in schema.sql"))
            .to_owned()
    };
    // Compared without the table alias and the expression's parentheses.
    let key = |s: &str| s.replace("r.", "").replace(['(', ')'], "");
    // The index leads with the owner: one lane per role.
    assert_eq!(
        format!("owner, {}", key(order)),
        key(&index("run_queue")),
        "DISPATCH_ORDER is not the key of run_queue after the owner"
    );
    // Runs of named queues: one lane per queue and role.
    assert_eq!(
        format!("queue, owner, {}", key(order)),
        key(&index("run_queue_named")),
        "DISPATCH_ORDER is not the key of run_queue_named after the queue and owner"
    );
}
