//! Failure notifications (issue 17): a run that failed, timed out or
//! crashed with no attempt left, and a daemon that failed into its
//! backoff, are announced with `NOTIFY` on `pg_jobs.notify_channel` in the
//! database whose history records them, when that record commits; the
//! payload holds ids, the database, the status and the SQLSTATE, nothing a
//! listener could not see otherwise; an empty channel turns it off.

use pg_jobs_itest::{one, wait_run, Cluster};
use postgres::fallible_iterator::FallibleIterator;
use postgres::Client;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// How long to wait for a notification: generous, on a loaded machine.
const NOTIFY_DEADLINE: Duration = Duration::from_secs(60);

/// The payload of the next notification `c` receives on any channel it
/// listens on, as JSON, with its channel; panics after the deadline.
fn next_notification(c: &mut Client, what: &str) -> (String, serde_json::Value) {
    let deadline = Instant::now() + NOTIFY_DEADLINE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "no notification: {what}");
        let mut n = c.notifications();
        let mut it = n.timeout_iter(left);
        if let Some(note) = it.next().unwrap() {
            let v = serde_json::from_str(note.payload())
                .unwrap_or_else(|_| serde_json::Value::String(note.payload().to_owned()));
            return (note.channel().to_owned(), v);
        }
    }
}

/// The keys of a JSON object.
fn keys(v: &serde_json::Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn final_failures_are_announced_with_ids_only() {
    let (c, mut s) = Cluster::with_app_db("notify-failures", "");
    let mut pg = c.connect("postgres");
    pg.batch_execute("CREATE DATABASE other").unwrap();
    pg.batch_execute("CREATE ROLE nobody LOGIN").unwrap();
    // A role that sees none of these runs listens too: LISTEN needs no
    // privilege, so the payload must tell it nothing it could not see.
    let mut listener = c.connect_as("app", "nobody");
    listener.batch_execute("LISTEN pg_jobs_events").unwrap();

    // A failure with no retry: one notification, once it is recorded.
    let failed: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1/0')");
    let (channel, v) = next_notification(&mut listener, "the failed run");
    assert_eq!(channel, "pg_jobs_events");
    assert_eq!(
        keys(&v),
        ["database", "job_id", "run_id", "sqlstate", "status"]
            .map(String::from)
            .into(),
        "{v}"
    );
    assert_eq!(v["run_id"], failed, "{v}");
    assert_eq!(v["database"], "app");
    assert_eq!(v["status"], "failed");
    assert_eq!(v["sqlstate"], "22012");
    assert!(v["job_id"].is_null(), "{v}");
    assert_eq!(wait_run(&mut s, failed).0, "failed");

    // A job's run in another database, recorded in this one's history: a
    // timeout, after its retry (the first attempt is not announced).
    let job: i64 = one(
        &mut s,
        "SELECT jobs.schedule('slow', '1 second', 'SELECT pg_sleep(10)', database => 'other',
                              timeout => '200 ms', max_attempts => 2, retry_backoff => '1 second')",
    );
    let (_, v) = next_notification(&mut listener, "the job's run that timed out twice");
    assert_eq!(v["job_id"], job, "{v}");
    assert_eq!(v["database"], "other");
    assert_eq!(v["status"], "timed_out");
    let attempt: i32 = one(
        &mut s,
        &format!("SELECT attempt FROM jobs.run WHERE id = {}", v["run_id"]),
    );
    assert_eq!(attempt, 2, "only the last attempt is announced: {v}");
    s.batch_execute("SELECT jobs.unschedule('slow')").unwrap();
}

#[test]
fn a_daemon_failing_into_backoff_is_announced_and_an_empty_channel_is_silent() {
    let (c, mut s) = Cluster::with_app_db("notify-daemon", "");
    let mut listener = c.connect("app");
    listener.batch_execute("LISTEN pg_jobs_events").unwrap();
    let id: i64 = one(
        &mut s,
        "SELECT jobs.daemon('broken', 'SELECT 1/0', restart_delay => '1 s', max_restart_delay => '2 s')",
    );
    let (_, v) = next_notification(&mut listener, "the daemon's backoff");
    assert_eq!(v["daemon_id"], id, "{v}");
    assert_eq!(v["status"], "backoff");
    assert_eq!(v["sqlstate"], "22012");
    s.batch_execute("SELECT jobs.drop_daemon('broken')").unwrap();

    // Turned off: a failure recorded after the reload sends nothing. The
    // first notification the listener gets is a marker sent after the
    // failure's record had committed (a notification of it would come
    // first: notifications arrive in commit order).
    s.batch_execute("ALTER SYSTEM SET pg_jobs.notify_channel = ''")
        .unwrap();
    s.batch_execute("SELECT pg_reload_conf()").unwrap();
    // The scheduler has reloaded once its new setting shows in a run: wait
    // for a failure, then another, so the second is recorded after the reload.
    let mut last = 0;
    for _ in 0..2 {
        last = one(&mut s, "SELECT jobs.submit('SELECT 1/0')");
        assert_eq!(wait_run(&mut s, last).0, "failed");
    }
    // Drain what came before (the first failure may have been announced).
    let mut before = Vec::new();
    s.batch_execute("NOTIFY pg_jobs_events, 'marker'").unwrap();
    loop {
        let (_, v) = next_notification(&mut listener, "the marker");
        if v == "marker" {
            break;
        }
        before.push(v);
    }
    assert!(
        before.iter().all(|v| v["run_id"] != last),
        "the failure recorded with an empty channel was announced: {before:?}"
    );
}
