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
            let Some(event) = RunEvent::ALL.into_iter().find(|e| e.name() == name) else {
                wrong.push(format!("{at}: unknown run event `{name}`"));
                continue;
            };
            if let Err(e) = check_update_sql(event, &sql) {
                wrong.push(format!("{at}: {e}"));
            }
            seen.push(event);
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
