//! Moving from pg_cron to pg_jobs on a live cluster (issue 15): Debian's
//! pg_cron (1.4.2 here) preloaded beside pg_jobs, five pg_cron jobs
//! running (two databases, two users, one inactive, one `@reboot`, one
//! without a name), `jobs.import_pg_cron()`, and then, for the next two
//! minutes, every job runs exactly once per due minute under pg_jobs and
//! never again under pg_cron. Then the rest of the runbook: `DROP
//! EXTENSION pg_cron`, `CREATE EXTENSION pg_jobs_cron`, and the imported
//! jobs are in `cron.job`.
//!
//! Only where pg_cron is installed (PostgreSQL 15 here, from Debian's
//! `postgresql-15-cron`, which `make setup` installs); elsewhere the test
//! says why and passes.

use pg_jobs_itest::*;
use postgres::Client;
use std::io::Write;
use std::time::Duration;

/// Say something on stderr even while the harness captures output (a
/// skipped test passes, so its reason would otherwise be hidden).
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

/// The minutes (as `YYYY-MM-DD HH:MI`, UTC) in which job `job` wrote a
/// tick in `c`'s database after `since` (a timestamptz literal): from a
/// pg_jobs executor if `by_pg_jobs`, else from any other process (pg_cron's).
fn minutes(c: &mut Client, job: &str, by_pg_jobs: bool, since: &str) -> Vec<String> {
    c.query(
        "SELECT to_char(minute AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM ticks
          WHERE job = $1 AND (by = 'pg_jobs executor') = $2 AND at > $3::text::timestamptz ORDER BY at",
        &[&job, &by_pg_jobs, &since],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// A pg_jobs job as the test compares it: name, owner, database,
/// schedule, enabled, time zone, overlap.
type JobDef = (Option<String>, String, String, String, bool, String, String);

/// Each tick says which kind of process wrote it (a pg_jobs executor, or
/// pg_cron's background worker).
const TICKS: &str = "CREATE FUNCTION my_backend_type() RETURNS text LANGUAGE sql STABLE
        AS $$ SELECT backend_type FROM pg_stat_activity WHERE pid = pg_backend_pid() $$;
    CREATE TABLE ticks (
        job text NOT NULL,
        by text DEFAULT my_backend_type(),
        at timestamptz NOT NULL DEFAULT clock_timestamp(),
        minute timestamptz NOT NULL DEFAULT date_trunc('minute', clock_timestamp()));
    GRANT INSERT, SELECT ON ticks TO PUBLIC";

#[test]
fn import_moves_running_pg_cron_jobs_without_a_gap_or_a_double_run() {
    let pg = installation();
    if !pg.pkglibdir.join("pg_cron.so").exists() {
        assert_ne!(
            pg.major, 15,
            "pg_cron is not installed for PostgreSQL 15 (make setup installs postgresql-15-cron)"
        );
        say(&format!(
            "pg_cron migration test skipped: no pg_cron for PostgreSQL {} on this machine (Debian packages it for 15)",
            pg.major
        ));
        return;
    }
    let c = Cluster::start(
        "pg-cron-migration",
        "shared_preload_libraries = 'pg_jobs,pg_cron'\ncron.database_name = 'postgres'\n\
         cron.use_background_workers = on\nmax_worker_processes = 40\ncron.timezone = 'GMT'",
    );
    c.check_build_id();
    let mut s = c.connect("postgres");
    s.batch_execute("CREATE ROLE alice LOGIN").unwrap();
    s.batch_execute("CREATE DATABASE other OWNER alice").unwrap();
    s.batch_execute(&format!(
        "CREATE EXTENSION pg_jobs; CREATE EXTENSION pg_cron; {TICKS}"
    ))
    .unwrap();
    c.connect("other").batch_execute(TICKS).unwrap();

    // Five pg_cron jobs, running.
    let job_ids: Vec<i64> = [
        "SELECT cron.schedule('tick-a', '* * * * *', $$INSERT INTO ticks(job) VALUES ('a')$$)",
        "SELECT cron.schedule_in_database('tick-b', '* * * * *', $$INSERT INTO ticks(job) VALUES ('b')$$, 'other', 'alice')",
        "SELECT cron.schedule_in_database('paused', '* * * * *', $$INSERT INTO ticks(job) VALUES ('p')$$, 'postgres', 'alice', false)",
        "SELECT cron.schedule('at-boot', '@reboot', $$INSERT INTO ticks(job) VALUES ('r')$$)",
        "SELECT cron.schedule('* * * * *', $$INSERT INTO ticks(job) VALUES ('u')$$)",
    ]
    .iter()
    .map(|q| one::<i64>(&mut s, q))
    .collect();
    // And one pg_jobs cannot take: on another server (inactive, so pg_cron
    // does not try it meanwhile).
    s.batch_execute(
        "INSERT INTO cron.job (schedule, command, nodename, nodeport, database, username, active, jobname)
         VALUES ('* * * * *', 'SELECT 1', 'db.example.com', 5432, 'postgres', 'postgres', false, 'remote')",
    )
    .unwrap();
    let mut other = c.connect("other");
    wait_for(
        "pg_cron to run its minute jobs once",
        Duration::from_secs(150),
        || {
            let a = !minutes(&mut s, "a", false, "-infinity").is_empty();
            let u = !minutes(&mut s, "u", false, "-infinity").is_empty();
            let b = !minutes(&mut other, "b", false, "-infinity").is_empty();
            (a && u && b).then_some(())
        },
    );

    // Import away from the top of the minute, where pg_cron starts its
    // runs (docs/pg_cron.md: the importer waits out the first seconds of a
    // minute itself; here the test keeps clear of them to be exact).
    wait_for("a quiet second of the minute", Duration::from_secs(70), || {
        let second: f64 = one(&mut s, "SELECT extract(second FROM clock_timestamp())::float8");
        (15.0..40.0).contains(&second).then_some(())
    });
    // A job of a role that no longer exists is skipped. pg_cron 1.4.2's
    // launcher exits (and restarts, in a loop) on such a row, so it exists
    // here only inside the import's transaction.
    let mut tx = s.transaction().unwrap();
    tx.batch_execute(
        "INSERT INTO cron.job (schedule, command, nodename, nodeport, database, username, active, jobname)
         VALUES ('* * * * *', 'SELECT 1', 'localhost', current_setting('port')::int, 'postgres', 'ghost', false, 'orphan')",
    )
    .unwrap();
    let report: Vec<(i64, Option<i64>, String, Option<String>)> = tx
        .query(
            "SELECT cron_jobid, job_id, action, reason FROM jobs.import_pg_cron() ORDER BY cron_jobid",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    tx.batch_execute("DELETE FROM cron.job WHERE username = 'ghost'")
        .unwrap();
    let imported_at: String = tx.query_one("SELECT now()::text", &[]).unwrap().get(0);
    tx.commit().unwrap();
    assert_eq!(report.len(), 7, "{report:?}");
    for (i, id) in job_ids.iter().enumerate() {
        assert_eq!(report[i].0, *id);
        assert_eq!(report[i].2, "imported", "{:?}", report[i]);
        assert!(report[i].1.is_some());
    }
    assert_eq!(report[5].2, "skipped");
    assert!(
        report[5]
            .3
            .as_deref()
            .is_some_and(|r| r.contains("db.example.com:5432")),
        "{:?}",
        report[5]
    );
    assert_eq!(report[6].2, "skipped");
    assert_eq!(report[6].3.as_deref(), Some("role \"ghost\" does not exist"));
    // pg_cron's copies are inactive; the remote one is left as it was.
    let still_active: i64 = one(&mut s, "SELECT count(*) FROM cron.job WHERE active");
    assert_eq!(still_active, 0);
    // What pg_jobs made of them.
    let defs: Vec<JobDef> = s
        .query(
            "SELECT name, owner::text, database, schedule, enabled, timezone, overlap FROM jobs.job ORDER BY id",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6)))
        .collect();
    let want = |name: Option<&str>, owner: &str, db: &str, sched: &str, enabled: bool| {
        (
            name.map(str::to_owned),
            owner.to_owned(),
            db.to_owned(),
            sched.to_owned(),
            enabled,
            "GMT".to_owned(),
            "queue".to_owned(),
        )
    };
    assert_eq!(
        defs,
        vec![
            want(Some("tick-a"), "postgres", "postgres", "* * * * *", true),
            want(Some("tick-b"), "alice", "other", "* * * * *", true),
            want(Some("paused"), "alice", "postgres", "* * * * *", false),
            want(Some("at-boot"), "postgres", "postgres", "@reboot", true),
            want(None, "postgres", "postgres", "* * * * *", true),
        ]
    );

    // The next two due minutes: each exactly once, by pg_jobs.
    let first: String = one(
        &mut s,
        "SELECT to_char(date_trunc('minute', now()) + interval '1 minute', 'YYYY-MM-DD HH24:MI')",
    );
    let second: String = one(
        &mut s,
        "SELECT to_char(date_trunc('minute', now()) + interval '2 minutes', 'YYYY-MM-DD HH24:MI')",
    );
    let expected = vec![first.clone(), second.clone()];
    wait_for(
        "two due minutes after the import to have run under pg_jobs",
        Duration::from_secs(200),
        || {
            let a = minutes(&mut s, "a", true, &imported_at);
            let u = minutes(&mut s, "u", true, &imported_at);
            let b = minutes(&mut other, "b", true, &imported_at);
            (a.len() >= 2 && u.len() >= 2 && b.len() >= 2).then_some(())
        },
    );
    // Past the second due minute's runs: nothing late may still arrive.
    wait_for(
        "the minute after the second due minute",
        Duration::from_secs(70),
        || {
            let now: String = one(
                &mut s,
                "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI')",
            );
            (now > second).then_some(())
        },
    );
    for job in ["a", "u"] {
        let got: Vec<String> = minutes(&mut s, job, true, &imported_at)
            .into_iter()
            .filter(|m| *m <= second)
            .collect();
        assert_eq!(got, expected, "job {job} under pg_jobs");
        assert!(
            minutes(&mut s, job, false, &imported_at).is_empty(),
            "job {job} ran under pg_cron after the import"
        );
    }
    let got: Vec<String> = minutes(&mut other, "b", true, &imported_at)
        .into_iter()
        .filter(|m| *m <= second)
        .collect();
    assert_eq!(got, expected, "job b under pg_jobs");
    assert!(
        minutes(&mut other, "b", false, &imported_at).is_empty(),
        "job b ran under pg_cron after the import"
    );
    // The paused job and @reboot never ran; pg_cron started nothing since.
    for job in ["p", "r"] {
        assert!(
            minutes(&mut s, job, true, &imported_at).is_empty(),
            "job {job} ran"
        );
    }
    let cron_runs_since: i64 = one(
        &mut s,
        &format!("SELECT count(*) FROM cron.job_run_details WHERE start_time > '{imported_at}'"),
    );
    assert_eq!(cron_runs_since, 0, "pg_cron started runs after the import");
    // tick-b runs as alice.
    let b_owner: String = one(
        &mut s,
        "SELECT DISTINCT r.owner::text FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id WHERE j.name = 'tick-b'",
    );
    assert_eq!(b_owner, "alice");

    // Idempotent: again, nothing new.
    let again: Vec<String> = s
        .query(
            "SELECT action FROM jobs.import_pg_cron() ORDER BY cron_jobid",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        again,
        [
            "already imported",
            "already imported",
            "already imported",
            "already imported",
            "already imported",
            "skipped"
        ]
    );
    assert_eq!(one::<i64>(&mut s, "SELECT count(*) FROM jobs.job"), 5);

    // The rest of the runbook: pg_cron out, its interface back over pg_jobs.
    let refused = s.batch_execute("CREATE EXTENSION pg_jobs_cron").unwrap_err();
    assert_eq!(refused.code().map(|c| c.code()), Some("42710"), "{refused}");
    s.batch_execute("DROP EXTENSION pg_cron; CREATE EXTENSION pg_jobs_cron")
        .unwrap();
    let listed: Vec<(i64, Option<String>, bool, String)> = s
        .query(
            "SELECT jobid, jobname, active, username FROM cron.job ORDER BY jobid",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    assert_eq!(listed.len(), 5);
    assert_eq!(
        listed.iter().map(|l| l.1.clone()).collect::<Vec<_>>(),
        vec![
            Some("tick-a".into()),
            Some("tick-b".into()),
            Some("paused".into()),
            Some("at-boot".into()),
            None
        ]
    );
    assert!(!listed[2].2, "the inactive job came back active");
    assert_eq!(listed[1].3, "alice");
    // Code that calls cron.* keeps working: unschedule by name.
    assert!(one::<bool>(&mut s, "SELECT cron.unschedule('tick-a')"));
}
