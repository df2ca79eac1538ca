//! Jobs made through cron.* that really run: what `cron.job_run_details`
//! records, unschedule, and one run at a time.

use crate::support::{cron_cluster, grant_cron_usage, no_live_runs, run_details, stays_for, RunDetail};
use pg_jobs_itest::{one, wait_for, DEADLINE};
use postgres::Client;
use std::time::Duration;

/// The finished runs of job `id` that `c` sees in `cron.job_run_details`
/// with `status`.
fn finished(c: &mut Client, id: i64, status: &str) -> Vec<RunDetail> {
    run_details(c, &format!("jobid = {id} AND status = '{status}'"))
}

/// pg_cron's run history: a plain LOGIN role's `'1 seconds'` jobs run every
/// second as that role; `cron.job_run_details` shows each run with its
/// runid (the pg_jobs run), job_pid (the process that ran it), database,
/// username and command, status 'succeeded' with the command tag as
/// return_message ('INSERT 0 1', 'SELECT 1'), or 'failed' with the error
/// message ('division by zero'), and start_time <= end_time. After
/// `cron.unschedule` no run starts any more.
#[test]
fn jobs_run_and_their_runs_show_in_job_run_details() {
    let (c, mut s) = cron_cluster("cron-runs", "");
    s.batch_execute("CREATE ROLE alice LOGIN; CREATE TABLE ticks (at timestamptz, who text); GRANT INSERT ON ticks TO alice")
        .unwrap();
    grant_cron_usage(&mut s, "alice");
    let mut alice = c.connect_as("app", "alice");
    let insert = "INSERT INTO ticks VALUES (clock_timestamp(), current_user)";
    let tick: i64 = one(
        &mut alice,
        &format!("SELECT cron.schedule('1 seconds', '{insert}')"),
    );
    let failing: i64 = one(&mut alice, "SELECT cron.schedule('1 seconds', 'SELECT 1/0')");
    let select: i64 = one(&mut alice, "SELECT cron.schedule('1 seconds', 'SELECT 1')");
    let ticks = "SELECT count(*) FROM ticks";

    wait_for("3 rows and 3 succeeded runs of the INSERT job", DEADLINE, || {
        let rows: i64 = one(&mut s, ticks);
        (rows >= 3 && finished(&mut alice, tick, "succeeded").len() >= 3).then_some(())
    });
    assert_eq!(
        one::<i64>(&mut s, "SELECT count(*) FROM ticks WHERE who <> 'alice'"),
        0,
        "the job runs as its owner"
    );
    let runs = run_details(&mut alice, &format!("jobid = {tick}"));
    for r in &runs {
        let status = r.status.as_deref().unwrap_or_default();
        assert!(
            ["starting", "running", "succeeded"].contains(&status),
            "{r:?}: pg_cron's statuses"
        );
        if status != "succeeded" {
            continue;
        }
        assert_eq!(r.return_message.as_deref(), Some("INSERT 0 1"), "{r:?}");
        assert!(r.job_pid.is_some_and(|p| p > 0), "{r:?}");
        assert!(r.start_time.is_some() && r.end_time.is_some(), "{r:?}");
        assert!(r.start_time <= r.end_time, "{r:?}");
        assert_eq!(
            (r.database.as_deref(), r.username.as_deref(), r.command.as_deref()),
            (Some("app"), Some("alice"), Some(insert)),
            "{r:?}"
        );
        // runid is the pg_jobs run, job_pid its executor.
        let row = s
            .query_one("SELECT job_id, pid FROM jobs.run WHERE id = $1", &[&r.runid])
            .unwrap();
        assert_eq!(
            (row.get::<_, Option<i64>>(0), row.get::<_, Option<i32>>(1)),
            (Some(tick), r.job_pid)
        );
    }

    let (failed, _) = wait_for("a failed run of SELECT 1/0", DEADLINE, || {
        finished(&mut alice, failing, "failed").into_iter().next()
    });
    assert_eq!(
        failed.return_message.as_deref(),
        Some("division by zero"),
        "{failed:?}"
    );
    assert!(
        failed.start_time.is_some() && failed.start_time <= failed.end_time,
        "{failed:?}"
    );
    assert_eq!(failed.command.as_deref(), Some("SELECT 1/0"));
    let (selected, _) = wait_for("a succeeded run of SELECT 1", DEADLINE, || {
        finished(&mut alice, select, "succeeded").into_iter().next()
    });
    assert_eq!(
        selected.return_message.as_deref(),
        Some("SELECT 1"),
        "{selected:?}"
    );

    // Unscheduled: once the last run has ended, none starts in the next
    // 4 s (4 due times of each job).
    for id in [tick, failing, select] {
        assert!(one::<bool>(&mut alice, &format!("SELECT cron.unschedule({id})")));
    }
    for id in [tick, failing, select] {
        no_live_runs(&mut s, id);
    }
    let rows_before: i64 = one(&mut s, ticks);
    let all_runs = format!("SELECT count(*) FROM jobs.run WHERE job_id IN ({tick}, {failing}, {select})");
    stays_for("runs of the unscheduled jobs", Duration::from_secs(4), || {
        one(&mut s, &all_runs)
    });
    assert_eq!(
        one::<i64>(&mut s, ticks),
        rows_before,
        "no INSERT after unschedule"
    );
}

/// pg_cron runs a job at most once at a time, and a run that falls due
/// while the job runs starts when it ends (pg_jobs' overlap 'queue'): a
/// `'1 seconds'` job of `pg_sleep(3)` never has two runs at once, is never
/// skipped, and each next run was due before the previous one ended and
/// started after it, the second within 10 s of the first.
#[test]
fn a_job_never_overlaps_itself_and_runs_due_meanwhile_follow() {
    let (_c, mut s) = cron_cluster("cron-overlap", "");
    let id: i64 = one(&mut s, "SELECT cron.schedule('1 seconds', 'SELECT pg_sleep(3)')"); // a long job: the runs under test
    assert_eq!(
        one::<String>(&mut s, &format!("SELECT overlap FROM jobs.job WHERE id = {id}")),
        "queue"
    );
    let mut most_at_once = 0;
    wait_for("three finished runs", Duration::from_secs(60), || {
        let going = run_details(
            &mut s,
            &format!("jobid = {id} AND status IN ('starting', 'running')"),
        );
        most_at_once = most_at_once.max(going.len());
        (finished(&mut s, id, "succeeded").len() >= 3).then_some(())
    });
    assert!(most_at_once <= 1, "{most_at_once} runs of the job at once");

    let mut done = finished(&mut s, id, "succeeded");
    done.sort_by(|x, y| x.start_time.partial_cmp(&y.start_time).unwrap());
    for w in done.windows(2) {
        assert!(
            w[1].start_time >= w[0].end_time,
            "two runs at once: {:?} and {:?}",
            w[0],
            w[1]
        );
    }
    let skipped: i64 = one(
        &mut s,
        &format!("SELECT count(*) FROM jobs.run WHERE job_id = {id} AND status = 'skipped'"),
    );
    assert_eq!(skipped, 0, "no due time is skipped");

    // (due, started, finished) of the finished runs, as epoch seconds.
    let runs: Vec<(f64, f64, f64)> = s
        .query(
            "SELECT extract(epoch FROM scheduled_for)::float8, extract(epoch FROM started_at)::float8,
                    extract(epoch FROM finished_at)::float8
               FROM jobs.run WHERE job_id = $1 AND status = 'succeeded' ORDER BY started_at",
            &[&id],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(runs.len() >= 3, "{runs:?}");
    for w in runs.windows(2) {
        let ((_, _, ended), (due, started, _)) = (w[0], w[1]);
        assert!(
            due < ended,
            "the next run fell due while the previous one ran: {w:?}"
        );
        assert!(started >= ended, "and started after it ended: {w:?}");
    }
    let gap = runs[1].1 - runs[0].1;
    assert!(gap < 10.0, "the second run started {gap:.1} s after the first");
}
