//! Scheduled jobs against real clusters: cron with seconds, intervals,
//! one-offs, @reboot, overlap, timeouts, retries, pause/resume, run_now,
//! other databases, history bounds, and bad input.

use pg_jobs_itest::{one, wait_for, wait_run, Cluster, DEADLINE};
use postgres::Client;
use std::time::Duration;

fn cluster(name: &str, conf: &str) -> (Cluster, Client) {
    Cluster::with_app_db(name, conf)
}

/// Finished runs of job `name`: (status, scheduled_for as epoch seconds,
/// start lag in ms, attempt, started_at epoch, finished_at epoch).
#[allow(clippy::type_complexity)]
fn runs(s: &mut Client, name: &str) -> Vec<(String, f64, Option<f64>, i32, Option<f64>, Option<f64>)> {
    s.query(
        "SELECT r.status, extract(epoch FROM r.scheduled_for)::float8,
                (extract(epoch FROM r.started_at - r.scheduled_for) * 1000)::float8, r.attempt,
                extract(epoch FROM r.started_at)::float8, extract(epoch FROM r.finished_at)::float8
           FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id
          WHERE j.name = $1 AND r.status NOT IN ('queued', 'starting', 'running')
          ORDER BY r.id",
        &[&name],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)))
    .collect()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[test]
fn a_one_second_job_runs_every_second_without_drift() {
    let (_c, mut s) = cluster("every-second", "");
    s.batch_execute("CREATE TABLE ticks (at timestamptz)").unwrap();
    one::<i64>(
        &mut s,
        "SELECT jobs.schedule('tick', '1 second', 'INSERT INTO ticks VALUES (clock_timestamp())')",
    );
    let (r, _) = wait_for("10 finished runs", DEADLINE, || {
        let r = runs(&mut s, "tick");
        (r.len() >= 10).then_some(r)
    });
    let r = &r[..10];
    assert!(r.iter().all(|x| x.0 == "succeeded"), "{r:?}");
    let span = r[9].4.unwrap() - r[0].4.unwrap();
    assert!(
        span < 10.0,
        "10 runs started within {span:.3} s: at least 9 in any 10 s"
    );
    // Due times are exactly one second apart: no drift, no missed second.
    for w in r.windows(2) {
        let gap = w[1].1 - w[0].1;
        assert!((gap - 1.0).abs() < 1e-6, "gap {gap} s between due times");
    }
    let mut lags: Vec<f64> = r.iter().map(|x| x.2.unwrap()).collect();
    lags.sort_by(f64::total_cmp);
    println!(
        "1-second job start lag over {} runs: median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lags.len(),
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        lags[lags.len() - 1]
    );
    assert!(lags[0] >= 0.0, "a run never starts before it is due");
    assert!(
        percentile(&lags, 0.5) < 1000.0,
        "median lag below a second even on a loaded machine"
    );
    assert!(one::<i64>(&mut s, "SELECT count(*) FROM ticks") >= 10);
}

#[test]
fn a_six_field_cron_runs_every_other_second() {
    let (_c, mut s) = cluster("six-field", "");
    one::<i64>(
        &mut s,
        "SELECT jobs.schedule('even', '*/2 * * * * *', 'SELECT 1')",
    );
    let (r, _) = wait_for("4 finished runs", DEADLINE, || {
        let r = runs(&mut s, "even");
        (r.len() >= 4).then_some(r)
    });
    for x in &r {
        assert_eq!(x.1 as i64 % 2, 0, "due on even seconds: {x:?}");
        assert_eq!(x.1.fract(), 0.0);
    }
    for w in r.windows(2) {
        assert_eq!(w[1].1 - w[0].1, 2.0);
    }
}

#[test]
fn a_one_off_runs_once_and_the_job_is_finished() {
    let (_c, mut s) = cluster("one-off", "");
    s.batch_execute("CREATE TABLE once (at timestamptz)").unwrap();
    let at: String = one(&mut s, "SELECT (now() + interval '1 second')::text");
    s.execute(
        "SELECT jobs.schedule('once', $1, 'INSERT INTO once VALUES (now())')",
        &[&at],
    )
    .unwrap();
    wait_for("the one-off ran", DEADLINE, || {
        (runs(&mut s, "once").len() == 1).then_some(())
    });
    let next: Option<String> = one(
        &mut s,
        "SELECT next_due::text FROM jobs.job_status WHERE name = 'once'",
    );
    assert_eq!(next, None, "nothing more is due");
    // A run_now later still works; the schedule itself never fires again.
    let id: i64 = one(&mut s, "SELECT jobs.run_now('once')");
    assert_eq!(wait_run(&mut s, id).0, "succeeded");
    assert_eq!(one::<i64>(&mut s, "SELECT count(*) FROM once"), 2);
}

#[test]
fn overlap_skip_records_skipped_runs_and_never_runs_two_at_once() {
    let (_c, mut s) = cluster("overlap", "");
    one::<i64>(
        &mut s,
        "SELECT jobs.schedule('slow', '1 second', 'SELECT pg_sleep(2.5)')", // a long job: the run under test
    );
    let (r, _) = wait_for("a success and two skips", DEADLINE, || {
        let r = runs(&mut s, "slow");
        (r.iter().filter(|x| x.0 == "skipped").count() >= 2 && r.iter().any(|x| x.0 == "succeeded"))
            .then_some(r)
    });
    let done: Vec<_> = r.iter().filter(|x| x.0 == "succeeded").collect();
    for w in done.windows(2) {
        assert!(w[1].4.unwrap() >= w[0].5.unwrap(), "runs overlapped: {w:?}");
    }
    let active: i64 = one(
        &mut s,
        "SELECT count(*) FROM jobs.run WHERE status IN ('starting','running')",
    );
    assert!(active <= 1);
}

#[test]
fn a_timeout_cancels_the_run_and_its_backend_goes() {
    let (_c, mut s) = cluster("timeout", "");
    one::<i64>(
        &mut s,
        "SELECT jobs.schedule('stuck', '@yearly', 'SELECT pg_sleep(60)', timeout => '1 second')", // a long job: the run under test
    );
    let id: i64 = one(&mut s, "SELECT jobs.run_now('stuck')");
    let (status, code, message) = wait_run(&mut s, id);
    assert_eq!(status, "timed_out", "{message:?}");
    assert_eq!(code.as_deref(), Some("57014"));
    let took: f64 = one(
        &mut s,
        &format!("SELECT extract(epoch FROM finished_at - started_at)::float8 FROM jobs.run WHERE id = {id}"),
    );
    assert!((0.9..10.0).contains(&took), "took {took} s");
    let pid: i32 = one(&mut s, &format!("SELECT pid FROM jobs.run WHERE id = {id}"));
    wait_for("the executor left pg_stat_activity", DEADLINE, || {
        (one::<i64>(
            &mut s,
            &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"),
        ) == 0)
            .then_some(())
    });

    // A command that swallows the cancel is terminated after a short grace.
    one::<i64>(
        &mut s,
        "SELECT jobs.schedule('stubborn', '@yearly', $q$DO $b$ BEGIN LOOP
             BEGIN PERFORM pg_sleep(10); EXCEPTION WHEN query_canceled THEN NULL; END;
           END LOOP; END $b$ $q$, timeout => '1 second')",
    );
    let id: i64 = one(&mut s, "SELECT jobs.run_now('stubborn')");
    let (status, code, message) = wait_run(&mut s, id);
    assert_eq!(
        (status.as_str(), code.as_deref()),
        ("timed_out", Some("57014")),
        "{message:?}"
    );
    assert!(message.unwrap().contains("did not stop when cancelled"));
    let pid: i32 = one(&mut s, &format!("SELECT pid FROM jobs.run WHERE id = {id}"));
    assert_eq!(
        one::<i64>(
            &mut s,
            &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}")
        ),
        0
    );
}

#[test]
fn failed_runs_are_retried_with_growing_gaps() {
    let (_c, mut s) = cluster("retries", "");
    one::<i64>(
        &mut s,
        "SELECT jobs.schedule('flaky', '@yearly', 'SELECT 1/0', max_attempts => 3, retry_backoff => '1 second')",
    );
    one::<i64>(&mut s, "SELECT jobs.run_now('flaky')");
    let (r, _) = wait_for("three attempts", DEADLINE, || {
        let r = runs(&mut s, "flaky");
        (r.len() >= 3).then_some(r)
    });
    assert_eq!(
        r.iter().map(|x| x.3).collect::<Vec<_>>(),
        [1, 2, 3],
        "one row per attempt"
    );
    assert!(r.iter().all(|x| x.0 == "failed"));
    let gap1 = r[1].4.unwrap() - r[0].5.unwrap();
    let gap2 = r[2].4.unwrap() - r[1].5.unwrap();
    println!("retry gaps: {gap1:.3} s then {gap2:.3} s");
    assert!(
        gap1 >= 1.0 && gap2 >= 2.0,
        "backoff 1 s then 2 s (plus jitter): {gap1} {gap2}"
    );
    // No fourth attempt.
    assert_eq!(
        one::<i64>(&mut s, "SELECT count(*) FROM jobs.run WHERE status = 'queued'"),
        0
    );
    let failures: i64 = one(
        &mut s,
        "SELECT consecutive_failures FROM jobs.job_status WHERE name = 'flaky'",
    );
    assert_eq!(failures, 3);
}

#[test]
fn pause_resume_and_run_now() {
    let (_c, mut s) = cluster("pause", "");
    one::<i64>(&mut s, "SELECT jobs.schedule('tick', '1 second', 'SELECT 1')");
    wait_for("a run", DEADLINE, || {
        (!runs(&mut s, "tick").is_empty()).then_some(())
    });
    s.batch_execute("SELECT jobs.pause('tick')").unwrap();
    let paused_at: f64 = one(&mut s, "SELECT extract(epoch FROM clock_timestamp())::float8");
    assert_eq!(
        one::<Option<String>>(
            &mut s,
            "SELECT next_due::text FROM jobs.job_status WHERE name = 'tick'"
        ),
        None
    );
    // Watch a 2.5-second window: nothing is scheduled while paused.
    std::thread::sleep(Duration::from_millis(2500)); // the observation window of this test, not a wait for a condition
    let after_pause: i64 = s
        .query_one(
            "SELECT count(*) FROM jobs.run WHERE scheduled_for > to_timestamp($1::float8 + 0.5)",
            &[&paused_at],
        )
        .unwrap()
        .get(0);
    assert_eq!(after_pause, 0);
    let id: i64 = one(&mut s, "SELECT jobs.run_now('tick')");
    assert_eq!(wait_run(&mut s, id).0, "succeeded", "run_now works while paused");
    s.batch_execute("SELECT jobs.resume('tick')").unwrap();
    let resumed: f64 = one(&mut s, "SELECT extract(epoch FROM clock_timestamp())::float8");
    wait_for("scheduled runs again", DEADLINE, || {
        runs(&mut s, "tick").iter().any(|x| x.1 > resumed).then_some(())
    });
}

#[test]
fn a_job_for_another_database_runs_there_as_its_owner() {
    let (c, mut s) = cluster("otherdb", "");
    c.connect("postgres")
        .batch_execute("CREATE DATABASE other")
        .unwrap();
    let mut other = c.connect("other");
    other
        .batch_execute("CREATE ROLE worker LOGIN; CREATE TABLE seen (db text, who text); GRANT INSERT ON seen TO worker;")
        .unwrap();
    one::<i64>(
        &mut s,
        "SELECT jobs.schedule('remote', '@yearly', 'INSERT INTO seen VALUES (current_database(), current_user)',
                              database => 'other', run_as => 'worker')",
    );
    let id: i64 = one(&mut s, "SELECT jobs.run_now('remote')");
    let (status, _, message) = wait_run(&mut s, id);
    assert_eq!(status, "succeeded", "{message:?}");
    let row = other.query_one("SELECT db, who FROM seen", &[]).unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        ("other".into(), "worker".into())
    );
    // The history stays where the job is defined.
    assert_eq!(
        one::<String>(
            &mut s,
            &format!("SELECT database::text FROM jobs.run WHERE id = {id}")
        ),
        "other"
    );
}

#[test]
fn reboot_jobs_run_once_per_server_start() {
    let (mut c, mut s) = cluster("reboot", "");
    one::<i64>(&mut s, "SELECT jobs.schedule('boot', '@reboot', 'SELECT 1')");
    // Scheduled after this server started: waits for the next start.
    let id: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1')");
    wait_run(&mut s, id);
    assert!(runs(&mut s, "boot").is_empty());
    drop(s);
    c.stop_server("fast");
    c.start_server();
    let mut s = c.connect("app");
    wait_for("the @reboot run", DEADLINE, || {
        (runs(&mut s, "boot").len() == 1).then_some(())
    });
    // A scheduler restart is not a server start.
    let pid: i32 = one(&mut s, "SELECT pid FROM jobs.workers WHERE kind = 'scheduler'");
    s.batch_execute(&format!("SELECT pg_terminate_backend({pid})"))
        .unwrap();
    wait_for("a new scheduler", DEADLINE, || {
        let p: Option<i32> = s
            .query_opt(
                "SELECT pid FROM jobs.workers WHERE kind = 'scheduler' AND pid IS NOT NULL",
                &[],
            )
            .unwrap()
            .map(|r| r.get(0));
        p.filter(|p| *p != pid)
    });
    let id: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1')");
    wait_run(&mut s, id);
    assert_eq!(runs(&mut s, "boot").len(), 1);
}

#[test]
fn history_is_purged_to_the_per_job_bound() {
    let (_c, mut s) = cluster("purge", "pg_jobs.history_max_runs_per_job = 3");
    one::<i64>(&mut s, "SELECT jobs.schedule('tick', '1 second', 'SELECT 1')");
    // More than 3 finish, then a purge (at most every 10 s) brings it back to 3.
    let (seen_ids, _) = wait_for("more than 3 runs at some point", DEADLINE, || {
        let n: i64 = one(&mut s, "SELECT coalesce(max(id), 0) FROM jobs.run");
        (n > 5).then_some(n)
    });
    wait_for("the history cut to 3 finished runs", DEADLINE, || {
        let kept: i64 = one(&mut s, "SELECT count(*) FROM jobs.run WHERE status = 'succeeded'");
        let max: i64 = one(&mut s, "SELECT max(id) FROM jobs.run");
        (kept <= 3 && max > seen_ids + 3).then_some(())
    });
    // Their kept rows (each run's `SELECT 1` row) go with them.
    let orphans = "SELECT count(*) FROM jobs.run_result r WHERE NOT EXISTS (SELECT 1 FROM jobs.run WHERE id = r.run_id)";
    assert_eq!(one::<i64>(&mut s, orphans), 0);
    assert!(one::<i64>(&mut s, "SELECT count(*) FROM jobs.run_result") > 0);
    // History cleared by hand: a later purge takes the rows left behind.
    s.batch_execute("DELETE FROM jobs.run WHERE status = 'succeeded'")
        .unwrap();
    assert!(one::<i64>(&mut s, orphans) > 0);
    wait_for("the result rows of hand-deleted runs purged", DEADLINE, || {
        (one::<i64>(&mut s, orphans) == 0).then_some(())
    });
}

#[test]
fn bad_input_gets_a_clear_error_and_writes_nothing() {
    let (_c, mut s) = cluster("badinput", "");
    let cases = [
        ("SELECT jobs.schedule('x', '61 * * * *', 'SELECT 1')", "22023", "invalid schedule \"61 * * * *\": minute field: 61 is out of range 0-59"),
        ("SELECT jobs.schedule('x', '0 0 31 2 *', 'SELECT 1')", "22023", "invalid schedule \"0 0 31 2 *\": schedule \"0 0 31 2 *\" never fires"),
        ("SELECT jobs.schedule('x', '0 seconds', 'SELECT 1')", "22023", "invalid schedule \"0 seconds\": interval \"0 seconds\" is shorter than 1 second"),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', timezone => 'Mars/Olympus')", "22023", "unknown time zone \"Mars/Olympus\""),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', overlap => 'maybe')", "22023", "overlap must be skip, queue or allow, not \"maybe\""),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', max_attempts => 0)", "22023", "max_attempts must be at least 1, not 0"),
        ("SELECT jobs.schedule('x', '@hourly', 'SELEC 1')", "42601", "command is not valid SQL: syntax error at or near \"SELEC\""),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', database => 'nope')", "3D000", "database \"nope\" does not exist"),
        ("SELECT jobs.schedule('x', '2026-13-45 10:00', 'SELECT 1')", "22008", "date/time field value out of range: \"2026-13-45 10:00\""),
        ("SELECT jobs.unschedule('ghost')", "42704", "job \"ghost\" does not exist"),
        ("SELECT * FROM jobs.next_runs('* * *')", "22023", "invalid schedule \"* * *\": expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), found 3"),
    ];
    for (sql, code, message) in cases {
        let err = s.batch_execute(sql).unwrap_err();
        let db = err.as_db_error().unwrap_or_else(|| panic!("{sql}: {err}"));
        assert_eq!((db.code().code(), db.message()), (code, message), "{sql}");
    }
    s.batch_execute("CREATE ROLE mallory LOGIN; CREATE ROLE victim LOGIN")
        .unwrap();
    let mut m = _c.connect_as("app", "mallory");
    let err = m
        .batch_execute("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', run_as => 'victim')")
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err}");
    let err = m
        .batch_execute("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', run_as => 'postgres')")
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err}");
    assert_eq!(
        one::<i64>(&mut s, "SELECT count(*) FROM jobs.job"),
        0,
        "nothing was written"
    );
}

#[test]
fn a_role_sees_and_changes_only_its_own_jobs() {
    let (c, mut s) = cluster("rls", "");
    s.batch_execute("CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN")
        .unwrap();
    let mut alice = c.connect_as("app", "alice");
    let mut bob = c.connect_as("app", "bob");
    one::<i64>(&mut alice, "SELECT jobs.schedule('mine', '@daily', 'SELECT 1')");
    // Same name for another owner is another job.
    one::<i64>(&mut bob, "SELECT jobs.schedule('mine', '@hourly', 'SELECT 2')");
    assert_eq!(one::<i64>(&mut bob, "SELECT count(*) FROM jobs.job_status"), 1);
    assert_eq!(
        one::<String>(&mut bob, "SELECT schedule FROM jobs.job_status"),
        "@hourly"
    );
    // Same name again by the same owner updates it.
    one::<i64>(
        &mut alice,
        "SELECT jobs.schedule('mine', '*/5 * * * *', 'SELECT 3')",
    );
    assert_eq!(
        one::<String>(&mut alice, "SELECT schedule FROM jobs.job"),
        "*/5 * * * *"
    );
    bob.batch_execute("SELECT jobs.unschedule('mine')").unwrap();
    assert_eq!(
        one::<i64>(&mut alice, "SELECT count(*) FROM jobs.job"),
        1,
        "bob removed only his own"
    );
    assert!(bob
        .batch_execute("UPDATE jobs.job SET command = 'DROP TABLE x'")
        .is_err());
    assert_eq!(
        one::<i64>(&mut s, "SELECT count(*) FROM jobs.job"),
        1,
        "superuser sees all"
    );
    // alter_job changes a subset of settings.
    alice
        .batch_execute("SELECT jobs.alter_job('mine', timezone => 'Europe/Berlin', max_attempts => 2)")
        .unwrap();
    let row = alice
        .query_one("SELECT timezone, max_attempts, schedule FROM jobs.job", &[])
        .unwrap();
    assert_eq!(
        (
            row.get::<_, String>(0),
            row.get::<_, i32>(1),
            row.get::<_, String>(2)
        ),
        ("Europe/Berlin".into(), 2, "*/5 * * * *".into())
    );
}

#[test]
fn next_runs_previews_dst_in_the_jobs_time_zone() {
    let (_c, mut s) = cluster("nextruns", "");
    let rows: Vec<String> = s
        .query(
            "SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI') FROM jobs.next_runs('30 2 * * *', 3, '2026-03-28 00:00Z', 'Europe/Berlin') t",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(rows, ["2026-03-28 01:30", "2026-03-29 01:00", "2026-03-30 00:30"]);
}

#[test]
fn a_hostile_search_path_cannot_hijack_pg_jobs_privileged_sql() {
    let (c, mut s) = cluster("searchpath", "");
    s.batch_execute("CREATE ROLE mallory LOGIN; CREATE SCHEMA mal AUTHORIZATION mallory;")
        .unwrap();
    let mut m = c.connect_as("app", "mallory");
    // An exact-type operator that would beat the built-in float8 * interval,
    // with a side effect only a superuser could have.
    m.batch_execute(
        "SET search_path = mal, public;
         CREATE FUNCTION mal.evil(bigint, interval) RETURNS interval LANGUAGE plpgsql AS
           $f$ BEGIN EXECUTE 'ALTER ROLE mallory SUPERUSER'; RETURN $2; END $f$;
         CREATE OPERATOR mal.* (LEFTARG = bigint, RIGHTARG = interval, FUNCTION = mal.evil);",
    )
    .unwrap();
    m.batch_execute(
        "SELECT jobs._schedule('x', '@hourly', 'SELECT 1', 'app', NULL, NULL, 5000, 1, 10000, 'skip', false, NULL, NULL, 'succeeded', NULL)",
    )
    .unwrap();
    m.batch_execute("SELECT jobs.run_now('x')").unwrap();
    let id: i64 = one(&mut m, "SELECT max(id) FROM jobs.run");
    assert_eq!(wait_run(&mut m, id).0, "succeeded");
    assert!(
        !one::<bool>(&mut s, "SELECT rolsuper FROM pg_roles WHERE rolname = 'mallory'"),
        "privilege escalation"
    );
}

#[test]
fn without_free_worker_slots_runs_wait_in_order_and_all_run() {
    // launcher + scheduler + logical replication launcher leave one slot.
    let (_c, mut s) = cluster("slots", "max_worker_processes = 4\npg_jobs.max_executors = 8");
    let ids: Vec<i64> = (0..6)
        .map(|_| one(&mut s, "SELECT jobs.submit('SELECT pg_sleep(0.2)')"))
        .collect();
    for id in &ids {
        let (status, _, message) = wait_run(&mut s, *id);
        assert_eq!(status, "succeeded", "run {id}: {message:?}");
    }
    let order: Vec<i64> = s
        .query("SELECT id FROM jobs.run ORDER BY started_at", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(order, ids, "they ran in submission order");
}

#[test]
fn missed_runs_are_not_replayed_unless_catch_up() {
    let (mut c, mut s) = cluster("catchup", "");
    one::<i64>(
        &mut s,
        "SELECT jobs.schedule('plain', '*/2 * * * * *', 'SELECT 1')",
    );
    one::<i64>(
        &mut s,
        "SELECT jobs.schedule('eager', '*/2 * * * * *', 'SELECT 1', catch_up => true)",
    );
    wait_for("both ran", DEADLINE, || {
        (!runs(&mut s, "plain").is_empty() && !runs(&mut s, "eager").is_empty()).then_some(())
    });
    drop(s);
    c.stop_server("fast");
    // The server stays down across at least two due times.
    std::thread::sleep(Duration::from_millis(4500)); // the downtime under test, not a wait for a condition
    c.start_server();
    let mut s = c.connect("app");
    let up: f64 = one(
        &mut s,
        "SELECT extract(epoch FROM pg_postmaster_start_time())::float8",
    );
    // The catch-up run is due at start-up, off the even-second grid; the
    // plain job only resumes on the grid.
    wait_for("eager's catch-up run", DEADLINE, || {
        runs(&mut s, "eager")
            .iter()
            .any(|x| x.1 >= up - 1.0 && x.1.fract() != 0.0)
            .then_some(())
    });
    wait_for("plain runs again", DEADLINE, || {
        runs(&mut s, "plain").iter().any(|x| x.1 > up).then_some(())
    });
    let plain = runs(&mut s, "plain");
    assert!(
        plain.iter().all(|x| x.1.fract() == 0.0 && x.1 as i64 % 2 == 0),
        "no replay for plain: {plain:?}"
    );
    let eager_extra = runs(&mut s, "eager")
        .iter()
        .filter(|x| x.1.fract() != 0.0)
        .count();
    assert_eq!(eager_extra, 1, "one catch-up run, not one per missed due time");
}

#[test]
fn overlap_queue_keeps_one_pending_and_allow_runs_in_parallel() {
    let (_c, mut s) = cluster("overlap-modes", "pg_jobs.max_executors = 8");
    one::<i64>(
        &mut s,
        "SELECT jobs.schedule('q', '1 second', 'SELECT pg_sleep(2.2)', overlap => 'queue')", // a long job: the run under test
    );
    one::<i64>(
        &mut s,
        "SELECT jobs.schedule('a', '1 second', 'SELECT pg_sleep(2.2)', overlap => 'allow')", // a long job: the run under test
    );
    let mut max_pending = 0i64;
    let mut max_parallel_a = 0i64;
    wait_for("three finished runs of each", DEADLINE, || {
        let pending: i64 = one(&mut s, "SELECT count(*) FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id WHERE j.name = 'q' AND r.status = 'queued'");
        let parallel: i64 = one(&mut s, "SELECT count(*) FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id WHERE j.name = 'a' AND r.status = 'running'");
        max_pending = max_pending.max(pending);
        max_parallel_a = max_parallel_a.max(parallel);
        (runs(&mut s, "q").len() >= 3 && runs(&mut s, "a").len() >= 3).then_some(())
    });
    let q = runs(&mut s, "q");
    assert!(q.iter().all(|x| x.0 == "succeeded"), "queue never skips: {q:?}");
    for w in q.windows(2) {
        assert!(w[1].4.unwrap() >= w[0].5.unwrap(), "queue never overlaps: {w:?}");
    }
    assert!(max_pending <= 1, "at most one pending run, saw {max_pending}");
    let a = runs(&mut s, "a");
    let overlapping = a.windows(2).any(|w| w[1].4.unwrap() < w[0].5.unwrap());
    assert!(overlapping || max_parallel_a > 1, "allow runs in parallel: {a:?}");
}

/// Jobs due at an instant the executor pool would be cold by (longer away
/// than idle executors live): the scheduler starts executors ahead of it,
/// so the runs do not wait for a fork and a connection at their due time.
#[test]
fn executors_are_started_ahead_of_a_due_instant_the_pool_would_miss() {
    let (_c, mut s) = cluster("prewarm", "pg_jobs.executor_idle_timeout = '3s'");
    s.batch_execute(
        "CREATE TABLE public.starts (backend_start timestamptz, ran timestamptz);
         SELECT jobs.schedule('every10', '*/10 * * * * *',
           'INSERT INTO public.starts SELECT backend_start, now() FROM pg_stat_activity WHERE pid = pg_backend_pid()')",
    )
    .unwrap();
    // Every 10 s, executors idle out after 3 s: each run's instant finds the
    // pool empty unless it was filled ahead of time.
    wait_for("three runs", Duration::from_secs(60), || {
        (one::<i64>(&mut s, "SELECT count(*) FROM public.starts") >= 3).then_some(())
    });
    let rows = s
        .query(
            "SELECT extract(epoch FROM date_bin('10 seconds', ran, '2000-01-01') - backend_start)::float8
               FROM public.starts ORDER BY ran",
            &[],
        )
        .unwrap();
    let ahead: Vec<f64> = rows.iter().map(|r| r.get(0)).collect();
    println!("executor started this many seconds before each due instant: {ahead:?}");
    // The first run may have been scheduled too close to its instant; the
    // later ones had a whole period. (One of them is enough: on a loaded
    // machine the scheduler's early wake-up may come late once.)
    assert!(
        ahead.iter().skip(1).any(|a| *a > 0.0 && *a < 3.0),
        "no executor was started ahead of its due instant (seconds ahead: {ahead:?})"
    );
}

/// A job whose target database was dropped: its runs fail with 3D000, the
/// scheduler neither dies nor stops running the other jobs due at the same
/// instants (including when it starts executors ahead of them).
#[test]
fn a_job_for_a_dropped_database_fails_clearly_and_the_others_run() {
    let (c, mut s) = cluster("dropped-target", "pg_jobs.executor_idle_timeout = '3s'");
    c.connect("postgres")
        .batch_execute("CREATE DATABASE gone")
        .unwrap();
    s.batch_execute(
        "CREATE ROLE worker LOGIN;
         CREATE TABLE public.ticks (at timestamptz DEFAULT clock_timestamp());
         GRANT INSERT ON public.ticks TO worker;
         SELECT jobs.schedule('elsewhere', '*/5 * * * * *', 'SELECT 1', database => 'gone', run_as => 'worker');
         SELECT jobs.schedule('here', '*/5 * * * * *', 'INSERT INTO public.ticks DEFAULT VALUES', run_as => 'worker');",
    )
    .unwrap();
    let scheduler = pg_jobs_itest::worker_pids(&mut s, "scheduler", Some("app"));
    c.connect("postgres").batch_execute("DROP DATABASE gone").unwrap();
    let dropped_at: f64 = one(&mut s, "SELECT extract(epoch FROM clock_timestamp())::float8");
    wait_for(
        "two runs of the job failing for its dropped database",
        Duration::from_secs(60),
        || {
            let failed: i64 = one(
                &mut s,
                &format!(
                    "SELECT count(*) FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id
                  WHERE j.name = 'elsewhere' AND r.status = 'failed' AND r.sqlstate = '3D000'
                    AND extract(epoch FROM r.scheduled_for) > {dropped_at}"
                ),
            );
            (failed >= 2).then_some(())
        },
    );
    // The other job's runs at those instants: its run due with the second
    // failure may still be going when that failure is recorded (they are
    // dispatched in the same pass), so wait for it, but only for runs
    // written before the next instant.
    let last_failed: f64 = one(
        &mut s,
        "SELECT max(extract(epoch FROM r.scheduled_for))::float8 FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id
          WHERE j.name = 'elsewhere' AND r.status = 'failed'",
    );
    let (ticks, _) = wait_for("the other job's runs at those instants", DEADLINE, || {
        let ticks: i64 = one(
            &mut s,
            &format!(
                "SELECT count(*) FROM public.ticks
                  WHERE extract(epoch FROM at) > {dropped_at} AND extract(epoch FROM at) < {last_failed} + 4.5"
            ),
        );
        (ticks >= 2).then_some(ticks)
    });
    assert!(ticks >= 2, "the other job ran at those instants too: {ticks}");
    assert_eq!(
        pg_jobs_itest::worker_pids(&mut s, "scheduler", Some("app")),
        scheduler,
        "the scheduler never restarted"
    );
}
