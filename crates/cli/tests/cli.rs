//! The `pg_jobs` command against a real cluster (issue 17): it connects
//! the way psql does (here through `PGHOST`, `PGPORT`, `PGUSER` and
//! `PGDATABASE`, and a connection string), `submit --wait` prints the
//! run's rows and its exit code says whether the run succeeded, `runs`
//! lists runs, `status` exits 1 while a job is failing, and a bad
//! connection exits 2.

use pg_jobs_itest::{one, wait_for, Cluster};
use std::process::{Command, Output};
use std::time::Duration;

/// Run `pg_jobs args` with the cluster's connection in the environment.
fn pg_jobs(c: &Cluster, user: &str, args: &[&str]) -> Output {
    let dir = c.dir.display().to_string();
    Command::new(env!("CARGO_BIN_EXE_pg_jobs"))
        .args(args)
        .env_clear()
        .env("PGHOST", &dir)
        .env("PGPORT", c.port.to_string())
        .env("PGUSER", user)
        .env("PGDATABASE", "app")
        .env("HOME", &dir)
        .output()
        .expect("the pg_jobs binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn submit_runs_status_and_exit_codes() {
    let (c, mut s) = Cluster::with_app_db("cli", "");
    s.batch_execute("CREATE ROLE alice LOGIN; GRANT CREATE ON SCHEMA public TO alice")
        .unwrap();

    // submit --wait prints the run's rows, as the connecting role.
    let o = pg_jobs(
        &c,
        "alice",
        &["submit", "--wait", "SELECT 41 + 1 AS answer, current_user AS who"],
    );
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    assert_eq!(stdout(&o).trim(), r#"{"who": "alice", "answer": 42}"#);

    // A failing run: exit 1 and its SQLSTATE on stderr.
    let o = pg_jobs(&c, "alice", &["submit", "--wait", "SELECT 1/0"]);
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("22012"), "{o:?}");

    // Without --wait: the run id.
    let o = pg_jobs(&c, "alice", &["submit", "SELECT 1"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let id: i64 = stdout(&o).trim().parse().expect("a run id");
    let owner: String = one(
        &mut s,
        &format!("SELECT owner::text FROM jobs.run WHERE id = {id}"),
    );
    assert_eq!(owner, "alice");

    // runs --failed lists the failure and not the successes.
    let o = pg_jobs(&c, "alice", &["runs", "--failed"]);
    assert_eq!(o.status.code(), Some(0), "{o:?}");
    let out = stdout(&o);
    assert!(out.contains("failed") && out.contains("22012"), "{out}");
    assert!(!out.contains("succeeded"), "{out}");

    // status: healthy, then a failing job makes it exit 1 and shows it.
    let o = pg_jobs(&c, "alice", &["status"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    pg_jobs(
        &c,
        "alice",
        &[
            "submit",
            "SELECT jobs.schedule('broken', '1 second', 'SELECT 1/0')",
        ],
    );
    let mut last = String::new();
    wait_for(
        "status to report the failing job",
        Duration::from_secs(60),
        || {
            let o = pg_jobs(&c, "alice", &["status"]);
            last = stdout(&o);
            (o.status.code() == Some(1) && last.contains("broken")).then_some(())
        },
    );
    assert!(last.contains("Failing or missed"), "{last}");

    // Another role sees none of alice's runs.
    s.batch_execute("CREATE ROLE bob LOGIN").unwrap();
    let o = pg_jobs(&c, "bob", &["runs"]);
    assert!(stdout(&o).contains("(none)"), "{}", stdout(&o));

    // A connection string on the command line wins over the environment.
    let o = pg_jobs(&c, "alice", &["-d", "dbname=nosuchdb", "runs"]);
    assert_eq!(o.status.code(), Some(2), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stderr).contains("nosuchdb"), "{o:?}");
}
