//! `jobs.metrics` (issue 17): counters kept in shared memory since the
//! server started (runs by database and status, starts, pool hits and cold
//! starts, scheduler passes, start lag and duration histograms), counted
//! only when the transaction that ended a run commits; gauges of queued
//! and running runs; and who sees what — a role that monitors the cluster
//! (`pg_monitor`) sees every role's numbers and runs but changes nothing,
//! any other role sees only its own.

use pg_jobs_itest::{one, wait_for, wait_run, Cluster};
use postgres::Client;
use std::time::Duration;

/// Generous, on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(60);

/// The sum of `metric`'s samples whose labels contain `labels` (JSON).
fn metric(c: &mut Client, metric: &str, labels: &str) -> f64 {
    c.query_one(
        "SELECT COALESCE(sum(value), 0)::float8 FROM jobs.metrics
          WHERE metric = $1 AND labels @> $2::text::jsonb",
        &[&metric, &labels],
    )
    .unwrap()
    .get(0)
}

/// Wait until `metric{labels}` is `want` (counts are added just after the
/// recording transaction commits, a moment after its waiters may look).
fn wait_metric(c: &mut Client, name: &str, labels: &str, want: f64) {
    let mut last = f64::NAN;
    let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(&format!("{name}{labels} = {want}"), DEADLINE, || {
            last = metric(c, name, labels);
            (last == want).then_some(())
        })
    }));
    assert!(found.is_ok(), "{name}{labels}: wanted {want}, last seen {last}");
}

fn submit(c: &mut Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).unwrap().get(0)
}

#[test]
fn counters_follow_committed_endings_and_monitors_see_without_acting() {
    let (c, mut s) = Cluster::with_app_db("metrics", "");
    let app = r#"{"database":"app"}"#;

    // Three successes (recorded in their own transaction by the executor),
    // two failures (recorded by the scheduler's harvest).
    let mut ids = Vec::new();
    for sql in ["SELECT 1", "SELECT 2", "SELECT 3", "SELECT 1/0", "SELECT 1/0"] {
        ids.push(submit(&mut s, &format!("SELECT jobs.submit('{sql}')")));
    }
    for id in &ids {
        wait_run(&mut s, *id);
    }
    wait_metric(
        &mut s,
        "pg_jobs_runs_total",
        r#"{"database":"app","status":"succeeded"}"#,
        3.0,
    );
    wait_metric(
        &mut s,
        "pg_jobs_runs_total",
        r#"{"database":"app","status":"failed"}"#,
        2.0,
    );
    assert_eq!(metric(&mut s, "pg_jobs_runs_started_total", app), 5.0);
    let hits = metric(&mut s, "pg_jobs_executor_pool_hits_total", app);
    let cold = metric(&mut s, "pg_jobs_executor_cold_starts_total", app);
    assert_eq!(hits + cold, 5.0, "every start is a pool hit or a cold start");
    assert!(cold >= 1.0, "the first run started an executor");
    assert!(metric(&mut s, "pg_jobs_scheduler_passes_total", app) >= 1.0);
    for h in ["pg_jobs_run_start_lag_seconds", "pg_jobs_run_duration_seconds"] {
        assert_eq!(metric(&mut s, &format!("{h}_count"), app), 5.0, "{h}");
        assert_eq!(
            metric(
                &mut s,
                &format!("{h}_bucket"),
                r#"{"database":"app","le":"+Inf"}"#
            ),
            5.0,
            "{h}: +Inf holds every observation"
        );
        let sum = metric(&mut s, &format!("{h}_sum"), app);
        assert!((0.0..60.0).contains(&sum), "{h}_sum {sum}");
    }
    // Buckets are cumulative.
    let buckets: Vec<f64> = s
        .query(
            "SELECT value FROM jobs.metrics WHERE metric = 'pg_jobs_run_duration_seconds_bucket'
                AND labels->>'database' = 'app' ORDER BY value",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(buckets.len(), 13, "12 bounds and +Inf");

    // A cancel counts when it commits, not when it is rolled back.
    let later = submit(
        &mut s,
        "SELECT jobs.submit('SELECT 1', start_at => now() + interval '1 hour')",
    );
    s.batch_execute(&format!("BEGIN; SELECT jobs.cancel({later}); ROLLBACK;"))
        .unwrap();
    assert_eq!(
        metric(&mut s, "pg_jobs_runs_total", r#"{"status":"cancelled"}"#),
        0.0,
        "a rolled-back cancel ended nothing"
    );
    // Gauges: the run due in an hour is queued (not due: its wait is 0);
    // a paused named queue holds two more.
    s.batch_execute(
        "SELECT jobs.create_queue('mail', paused => true);
         SELECT jobs.submit('SELECT 1', queue => 'mail');
         SELECT jobs.submit('SELECT 1', queue => 'mail');",
    )
    .unwrap();
    assert_eq!(
        metric(&mut s, "pg_jobs_runs_queued", r#"{"database":"app"}"#),
        3.0
    );
    assert_eq!(metric(&mut s, "pg_jobs_runs_queued", r#"{"queue":"mail"}"#), 2.0);
    wait_for("the paused queue's oldest run to have waited", DEADLINE, || {
        (metric(&mut s, "pg_jobs_oldest_queued_seconds", r#"{"queue":"mail"}"#) > 0.0).then_some(())
    });
    assert!(metric(&mut s, "pg_jobs_workers", r#"{"kind":"launcher"}"#) >= 1.0);
    s.batch_execute(&format!("SELECT jobs.cancel({later})")).unwrap();
    wait_metric(
        &mut s,
        "pg_jobs_runs_total",
        r#"{"database":"app","status":"cancelled"}"#,
        1.0,
    );

    // A role that monitors the cluster sees the counters and every role's
    // runs, jobs and queues, and can change none of them.
    s.batch_execute(
        "CREATE ROLE watcher LOGIN IN ROLE pg_monitor;
         CREATE ROLE plain LOGIN;
         SELECT jobs.schedule('nightly', '0 3 * * *', 'SELECT 1');",
    )
    .unwrap();
    let mut w = c.connect_as("app", "watcher");
    assert_eq!(
        metric(
            &mut w,
            "pg_jobs_runs_total",
            r#"{"database":"app","status":"succeeded"}"#
        ),
        3.0
    );
    assert_eq!(metric(&mut w, "pg_jobs_runs_queued", r#"{"queue":"mail"}"#), 2.0);
    let seen: i64 = one(&mut w, "SELECT count(*) FROM jobs.run");
    let all: i64 = one(&mut s, "SELECT count(*) FROM jobs.run");
    assert_eq!(seen, all, "runs a monitoring role sees");
    let health: i64 = one(&mut w, "SELECT count(*) FROM jobs.health WHERE name = 'nightly'");
    assert_eq!(health, 1, "a monitoring role sees every job's health");
    let queues: i64 = one(&mut w, "SELECT count(*) FROM jobs.queue_status");
    assert_eq!(queues, 1);
    let queued = s
        .query_one("SELECT id FROM jobs.run WHERE queue = 'mail' LIMIT 1", &[])
        .unwrap()
        .get::<_, i64>(0);
    let failed = ids[3];
    for (what, sql, code) in [
        ("cancel", format!("SELECT jobs.cancel({queued})"), "42704"),
        ("retry", format!("SELECT jobs.retry({failed})"), "42704"),
        ("result", format!("SELECT jobs.result({})", ids[0]), "42704"),
        (
            "pause a job",
            "SELECT jobs.alter_job('nightly', enabled => false)".to_owned(),
            "42704",
        ),
        (
            "run a job now",
            "SELECT jobs.run_now('nightly')".to_owned(),
            "42704",
        ),
        (
            "unschedule",
            "SELECT jobs.unschedule('nightly')".to_owned(),
            "42704",
        ),
        (
            "resume a queue",
            "SELECT jobs.resume_queue('mail')".to_owned(),
            "42501",
        ),
    ] {
        let err = w.batch_execute(&sql).expect_err(what);
        let got = err.code().map(|c| c.code().to_owned());
        assert_eq!(got.as_deref(), Some(code), "{what}: {err}");
    }
    let still: String = one(
        &mut s,
        &format!("SELECT status FROM jobs.run WHERE id = {queued}"),
    );
    assert_eq!(still, "queued");

    // Any other role sees neither the counters nor others' runs.
    let mut p = c.connect_as("app", "plain");
    let counters: i64 = one(&mut p, "SELECT count(*) FROM jobs.metrics WHERE type <> 'gauge'");
    assert_eq!(counters, 0, "counter samples a plain role sees");
    assert_eq!(
        metric(&mut p, "pg_jobs_runs_queued", r#"{"database":"app"}"#),
        0.0
    );
    let theirs: i64 = one(&mut p, "SELECT count(*) FROM jobs.run");
    assert_eq!(theirs, 0);
}
