//! Hardening (issue 12): what no user input or passing error may do to a
//! worker, and errors that look exactly like PostgreSQL's own. Each test
//! here failed before its fix.

use pg_jobs_itest::{one, wait_for, wait_run, worker_pids, Cluster, DEADLINE};

/// A submit (or any pg_jobs change) in a transaction that is then prepared
/// for two-phase commit is refused at PREPARE, as PostgreSQL refuses NOTIFY:
/// its wake-up could never be delivered by COMMIT PREPARED, so the run
/// would sit queued until something else woke the scheduler. Nothing is
/// stranded and nothing pending leaks into the next transaction.
#[test]
fn prepare_transaction_after_a_submit_is_refused_and_strands_nothing() {
    let (_c, mut s) = Cluster::with_app_db("prepare", "max_prepared_transactions = 4");
    s.batch_execute("CREATE TABLE t (x int)").unwrap();

    s.batch_execute("BEGIN; SELECT jobs.submit('INSERT INTO t VALUES (1)')")
        .unwrap();
    let err = s.batch_execute("PREPARE TRANSACTION 'with_submit'").unwrap_err();
    let db = err.as_db_error().expect("a server error");
    assert_eq!(db.code().code(), "0A000", "{db:?}");
    assert_eq!(
        db.message(),
        "cannot PREPARE a transaction that has submitted, scheduled, changed or cancelled pg_jobs work"
    );
    assert_eq!(db.hint(), None);
    let _ = s.batch_execute("ROLLBACK");
    let runs: i64 = one(&mut s, "SELECT count(*) FROM jobs.run");
    assert_eq!(runs, 0, "the refused transaction left a run behind");
    let prepared: i64 = one(&mut s, "SELECT count(*) FROM pg_prepared_xacts");
    assert_eq!(prepared, 0);

    // A schedule change is refused the same way.
    s.batch_execute("BEGIN; SELECT jobs.schedule('j', '@hourly', 'SELECT 1')")
        .unwrap();
    assert_eq!(
        s.batch_execute("PREPARE TRANSACTION 'with_schedule'")
            .unwrap_err()
            .as_db_error()
            .map(|e| e.code().code().to_owned()),
        Some("0A000".to_owned())
    );
    let _ = s.batch_execute("ROLLBACK");

    // Two-phase commit of work that is not pg_jobs' own is untouched (a
    // plain DROP wakes the scheduler to re-check its extension: harmless).
    // (One statement per call: a multi-statement string is an implicit
    // transaction block, where COMMIT PREPARED may not run.)
    for sql in [
        "CREATE TABLE gone (x int)",
        "BEGIN",
        "INSERT INTO t VALUES (2)",
        "DROP TABLE gone",
        "PREPARE TRANSACTION 'plain'",
        "COMMIT PREPARED 'plain'",
    ] {
        s.batch_execute(sql).unwrap();
    }
    let rows: i64 = one(&mut s, "SELECT count(*) FROM t");
    assert_eq!(rows, 1);

    // Nothing leaked: the next submit runs as usual.
    let id: i64 = one(&mut s, "SELECT jobs.submit('INSERT INTO t VALUES (3)')");
    assert_eq!(wait_run(&mut s, id).0, "succeeded");
}

/// Errors that pass through pg_jobs' utility hook are PostgreSQL's own,
/// whatever the server's environment: with RUST_BACKTRACE=1 a failing
/// utility statement used to carry a Rust backtrace in its DETAIL (pgrx's
/// binding re-raised the ERROR as a Rust panic).
#[test]
fn utility_errors_are_postgresqls_own_even_with_rust_backtrace_set() {
    let (mut c, _) = Cluster::with_app_db("backtrace", "");
    c.restart_with_env(&[("RUST_BACKTRACE", "1"), ("RUST_LIB_BACKTRACE", "1")]);
    let mut s = c.connect("app");
    for (sql, code, message) in [
        (
            "DROP TABLE nonexistent",
            "42P01",
            "table \"nonexistent\" does not exist",
        ),
        (
            "CREATE TABLE t (x int); CREATE TABLE t (x int)",
            "42P07",
            "relation \"t\" already exists",
        ),
        (
            "BEGIN; VACUUM",
            "25001",
            "VACUUM cannot run inside a transaction block",
        ),
    ] {
        let err = s.batch_execute(sql).unwrap_err();
        let db = err.as_db_error().expect("a server error");
        assert_eq!((db.code().code(), db.message()), (code, message), "{sql}");
        assert_eq!(db.detail(), None, "{sql}: DETAIL {:?}", db.detail());
        assert_eq!(db.hint(), None, "{sql}");
        let _ = s.batch_execute("ROLLBACK");
    }
}

/// An ERROR inside a scheduler pass (here: a superuser broke a column the
/// pass reads) is logged with its SQLSTATE and the pass retried with a
/// short backoff; the scheduler does not exit (it used to panic on
/// `.expect()` and wait out the launcher's restart backoff), and the runs
/// due meanwhile run once the catalog is mended.
#[test]
fn a_failing_scheduler_pass_is_retried_without_losing_its_runs() {
    let (c, mut s) = Cluster::with_app_db("pass-error", "");
    s.batch_execute("CREATE TABLE t (x int)").unwrap();
    let (before, _) = wait_for("the scheduler of app", DEADLINE, || {
        let pids = worker_pids(&mut s, "scheduler", Some("app"));
        (pids.len() == 1).then_some(pids)
    });

    s.batch_execute("ALTER TABLE jobs.run RENAME COLUMN scheduled_for TO scheduled_for_moved")
        .unwrap();
    let id: i64 = one(&mut s, "SELECT jobs.submit('INSERT INTO t VALUES (1)')");
    wait_for("the failed pass in the log", DEADLINE, || {
        c.log().contains("pass failed with SQLSTATE 42703").then_some(())
    });
    s.batch_execute("ALTER TABLE jobs.run RENAME COLUMN scheduled_for_moved TO scheduled_for")
        .unwrap();
    assert_eq!(wait_run(&mut s, id).0, "succeeded");
    assert_eq!(
        worker_pids(&mut s, "scheduler", Some("app")),
        before,
        "the scheduler exited instead of retrying its pass"
    );
    let rows: i64 = one(&mut s, "SELECT count(*) FROM t");
    assert_eq!(rows, 1);
}

/// A pass that fails after it has reserved executors for the runs it
/// picked gives them back (no phantom executors in `jobs.workers`, no
/// capacity lost), waits out its backoff however often it is woken, and
/// once the error is gone every run succeeds exactly once.
#[test]
fn a_pass_failing_after_reserving_executors_gives_them_back() {
    let (c, mut s) = Cluster::with_app_db("pass-undo", "");
    s.batch_execute(
        "CREATE TABLE t (x int);
         CREATE TABLE fail_passes ();
         INSERT INTO fail_passes DEFAULT VALUES;
         CREATE FUNCTION refuse_starting() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF EXISTS (SELECT FROM public.fail_passes) THEN RAISE EXCEPTION 'no starting today'; END IF;
           RETURN NEW;
         END $$;
         CREATE TRIGGER refuse_starting BEFORE UPDATE ON jobs.run FOR EACH ROW
           WHEN (NEW.status = 'starting') EXECUTE FUNCTION refuse_starting();",
    )
    .unwrap();
    let (before, _) = wait_for("the scheduler of app", DEADLINE, || {
        let pids = worker_pids(&mut s, "scheduler", Some("app"));
        (pids.len() == 1).then_some(pids)
    });
    let mut ids: Vec<i64> = (0..3)
        .map(|i| {
            one(
                &mut s,
                &format!("SELECT jobs.submit('INSERT INTO t VALUES ({i})')"),
            )
        })
        .collect();
    wait_for("a failed pass in the log", DEADLINE, || {
        c.log().contains("pass failed with SQLSTATE P0001").then_some(())
    });
    // Woken by every one of these commits, it still waits out its backoff.
    let failed_before = c.log().matches("pass failed with SQLSTATE P0001").count();
    for i in 3..40 {
        ids.push(one(
            &mut s,
            &format!("SELECT jobs.submit('INSERT INTO t VALUES ({i})')"),
        ));
    }
    let failed_during = c.log().matches("pass failed with SQLSTATE P0001").count() - failed_before;
    assert!(
        failed_during < 20,
        "{failed_during} failed passes for 37 wake-ups: no backoff"
    );
    let executors: i64 = one(
        &mut s,
        "SELECT count(*) FROM jobs.workers WHERE kind = 'executor'",
    );
    assert_eq!(executors, 0, "a failed pass left executors reserved");

    s.batch_execute("DELETE FROM fail_passes").unwrap();
    for id in &ids {
        assert_eq!(wait_run(&mut s, *id).0, "succeeded", "run {id}");
    }
    let rows: i64 = one(&mut s, "SELECT count(DISTINCT x) FROM t");
    let all: i64 = one(&mut s, "SELECT count(*) FROM t");
    assert_eq!((rows, all), (40, 40), "every run once");
    assert_eq!(worker_pids(&mut s, "scheduler", Some("app")), before);
}

/// What a role could store before 0.4.0 refused it at submit must not hurt
/// the worker that meets it: a run whose `not_before` is `infinity` made
/// every scheduler pass fail (issue 13, finding 2), and a stored command
/// that COPYs to the client wrote raw bytes into the server log (finding 6).
#[test]
fn values_stored_before_they_were_refused_do_not_hurt_workers() {
    let (_c, mut s) = Cluster::with_app_db("stored-values", "");
    s.batch_execute("CREATE TABLE t (x int)").unwrap();
    // As an old version could have stored them (the API refuses both now).
    let stuck: i64 = one(
        &mut s,
        "SELECT jobs.submit('SELECT 1', start_at => now() + interval '1 hour')",
    );
    let copy: i64 = one(
        &mut s,
        "SELECT jobs.submit('SELECT 2', start_at => now() + interval '1 hour')",
    );
    s.execute(
        "UPDATE jobs.run SET not_before = 'infinity' WHERE id = $1",
        &[&stuck],
    )
    .unwrap();
    s.execute(
        "UPDATE jobs.run SET command = 'COPY (SELECT 1) TO STDOUT', not_before = now() WHERE id = $1",
        &[&copy],
    )
    .unwrap();
    let id: i64 = one(&mut s, "SELECT jobs.submit('INSERT INTO t VALUES (1)')");
    assert_eq!(
        wait_run(&mut s, id).0,
        "succeeded",
        "the scheduler still dispatches"
    );
    let (status, sqlstate, message) = wait_run(&mut s, copy);
    assert_eq!(
        (status.as_str(), sqlstate.as_deref(), message.as_deref()),
        (
            "failed",
            Some("0A000"),
            Some("COPY to or from the client is not possible in a job (it has no client)")
        )
    );
    let stuck_status: String = one(&mut s, &format!("SELECT status FROM jobs.run WHERE id = {stuck}"));
    assert_eq!(stuck_status, "queued");
}

/// Unscheduling a failing job ends its retry chain: the run in flight may
/// finish, but no further attempt is queued (issue 13, finding 3: with
/// many attempts and no backoff, retries went on ~90 times a second after
/// `unschedule`).
#[test]
fn unscheduling_a_job_ends_its_retries() {
    let (_c, mut s) = Cluster::with_app_db("retry-chain", "");
    let job: i64 = one(
        &mut s,
        "SELECT jobs.schedule('flaky', '1 second', 'SELECT 1/0', max_attempts => 100, retry_backoff => '1 second')",
    );
    wait_for("a retry of the failing job", DEADLINE, || {
        let retries: i64 = one(
            &mut s,
            &format!("SELECT count(*) FROM jobs.run WHERE job_id = {job} AND attempt > 1"),
        );
        (retries > 0).then_some(())
    });
    s.batch_execute("SELECT jobs.unschedule('flaky')").unwrap();
    // With the chain cut, every run of the job ends and none is queued again.
    wait_for("the job's runs all ended, none queued", DEADLINE, || {
        let live: i64 = one(
            &mut s,
            &format!("SELECT count(*) FROM jobs.run WHERE job_id = {job} AND status IN ('queued', 'starting', 'running')"),
        );
        (live == 0).then_some(())
    });
}
