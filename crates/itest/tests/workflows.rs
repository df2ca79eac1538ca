//! Runs that wait for others (`jobs.submit(…, depends_on, run_if)`,
//! issue 16): fan-out and fan-in, failure propagation and handlers,
//! cancellation, retries, parents that ended before the dependant was
//! submitted, and bad input. Each command records its start and end with
//! `clock_timestamp()`, so the order is observed, not inferred.

use pg_jobs_itest::{one, wait_for, wait_run, Cluster, DEADLINE};
use postgres::Client;

/// A cluster with a `steps` table each command writes its name and times to.
fn cluster(name: &str) -> (Cluster, Client) {
    let (c, mut s) = Cluster::with_app_db(name, "");
    s.batch_execute(
        "CREATE TABLE steps (name text, started timestamptz, ended timestamptz);
         GRANT ALL ON steps TO PUBLIC;
         CREATE FUNCTION step(name text, secs float8 DEFAULT 0) RETURNS void LANGUAGE plpgsql AS $$
           DECLARE t0 timestamptz := clock_timestamp();
           BEGIN PERFORM pg_sleep(secs); INSERT INTO steps VALUES (name, t0, clock_timestamp()); END $$;",
    )
    .unwrap();
    (c, s)
}

/// When step `name` started and ended (as epoch seconds).
fn times(s: &mut Client, name: &str) -> (f64, f64) {
    let r = s
        .query_one(
            "SELECT extract(epoch FROM started)::float8, extract(epoch FROM ended)::float8 FROM steps WHERE name = $1",
            &[&name],
        )
        .unwrap_or_else(|e| panic!("step {name}: {e}"));
    (r.get(0), r.get(1))
}

fn status_and_message(s: &mut Client, id: i64) -> (String, Option<String>) {
    let r = s
        .query_one("SELECT status, message FROM jobs.run WHERE id = $1", &[&id])
        .unwrap();
    (r.get(0), r.get(1))
}

fn sqlstate_of(c: &mut Client, sql: &str) -> String {
    let e = c.batch_execute(sql).expect_err(sql);
    e.code().map(|c| c.code().to_owned()).unwrap_or_default()
}

#[test]
fn a_diamond_submitted_in_one_transaction_runs_in_order() {
    let (_c, mut s) = cluster("workflow-diamond");
    let mut tx = s.transaction().unwrap();
    let id = |tx: &mut postgres::Transaction, sql: &str| -> i64 { tx.query_one(sql, &[]).unwrap().get(0) };
    let a = id(&mut tx, "SELECT jobs.submit($$SELECT step('a', 0.3)$$)");
    let b = id(
        &mut tx,
        &format!("SELECT jobs.submit($$SELECT step('b', 0.2)$$, depends_on => ARRAY[{a}])"),
    );
    let c = id(
        &mut tx,
        &format!("SELECT jobs.submit($$SELECT step('c', 0.4)$$, depends_on => ARRAY[{a}])"),
    );
    let d = id(
        &mut tx,
        &format!("SELECT jobs.submit($$SELECT step('d')$$, depends_on => ARRAY[{b}, {c}])"),
    );
    // Visible as waiting, with what it waits for, before anything runs.
    let (status, waits): (String, Vec<i64>) = {
        let r = tx
            .query_one("SELECT status, depends_on FROM jobs.run WHERE id = $1", &[&d])
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((status.as_str(), waits), ("waiting", vec![b, c]));
    tx.commit().unwrap();
    let (status, _, msg) = wait_run(&mut s, d);
    assert_eq!(status, "succeeded", "{msg:?}");
    let (a0, a1) = times(&mut s, "a");
    let (b0, b1) = times(&mut s, "b");
    let (c0, c1) = times(&mut s, "c");
    let (d0, _) = times(&mut s, "d");
    assert!(
        b0 >= a1 && c0 >= a1,
        "b or c started before a ended: a {a0}-{a1}, b {b0}, c {c0}"
    );
    assert!(
        d0 >= b1 && d0 >= c1,
        "d started before b and c ended: b {b1}, c {c1}, d {d0}"
    );
    // Fan-out: b and c ran side by side.
    assert!(
        b0 < c1 && c0 < b1,
        "b and c did not overlap: b {b0}-{b1}, c {c0}-{c1}"
    );
    println!(
        "diamond: d started {:.1} ms after its last parent ended",
        (d0 - b1.max(c1)) * 1000.0
    );
}

#[test]
fn failure_skips_dependants_down_the_chain_and_runs_handlers() {
    let (_c, mut s) = cluster("workflow-failure");
    let a: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1/0')");
    let b: i64 = one(
        &mut s,
        &format!("SELECT jobs.submit($$SELECT step('b')$$, depends_on => ARRAY[{a}])"),
    );
    let c: i64 = one(
        &mut s,
        &format!("SELECT jobs.submit($$SELECT step('c')$$, depends_on => ARRAY[{b}], run_if => 'finished')"),
    );
    let h: i64 = one(
        &mut s,
        &format!(
            "SELECT jobs.submit($$SELECT step('handler')$$, depends_on => ARRAY[{a}], run_if => 'failed')"
        ),
    );
    let f: i64 = one(
        &mut s,
        &format!(
            "SELECT jobs.submit($$SELECT step('always')$$, depends_on => ARRAY[{a}], run_if => 'finished')"
        ),
    );
    let ok: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1')");
    let g: i64 = one(&mut s, &format!("SELECT jobs.submit($$SELECT step('not-a-handler')$$, depends_on => ARRAY[{ok}], run_if => 'failed')"));
    for id in [b, c, h, f, g] {
        wait_run(&mut s, id);
    }
    assert_eq!(
        status_and_message(&mut s, b),
        (
            "skipped".into(),
            Some(format!(
                "skipped: run {a}, which it depends on, ended failed (run_if is 'succeeded')"
            ))
        )
    );
    // A skip propagates, whatever the dependant's condition.
    assert_eq!(
        status_and_message(&mut s, c),
        (
            "skipped".into(),
            Some(format!("skipped: run {b}, which it depends on, was skipped"))
        )
    );
    assert_eq!(status_and_message(&mut s, h).0, "succeeded");
    assert_eq!(status_and_message(&mut s, f).0, "succeeded");
    assert_eq!(
        status_and_message(&mut s, g),
        (
            "skipped".into(),
            Some(format!(
                "skipped: run {ok}, which it depends on, ended succeeded (run_if is 'failed')"
            ))
        )
    );
    let ran: Vec<String> = s
        .query("SELECT name FROM steps ORDER BY name", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(ran, ["always", "handler"]);
}

#[test]
fn cancelling_skips_what_waits_and_a_waiting_run_can_be_cancelled() {
    let (_c, mut s) = cluster("workflow-cancel");
    let long: i64 = one(&mut s, "SELECT jobs.submit('SELECT pg_sleep(60)')");
    let w: i64 = one(
        &mut s,
        &format!(
            "SELECT jobs.submit($$SELECT step('w')$$, depends_on => ARRAY[{long}], run_if => 'finished')"
        ),
    );
    let w2: i64 = one(
        &mut s,
        &format!("SELECT jobs.submit($$SELECT step('w2')$$, depends_on => ARRAY[{long}])"),
    );
    let w3: i64 = one(
        &mut s,
        &format!("SELECT jobs.submit($$SELECT step('w3')$$, depends_on => ARRAY[{w2}])"),
    );
    // Cancel a waiting run: it ends cancelled, and what waits on it is skipped.
    assert!(one::<bool>(&mut s, &format!("SELECT jobs.cancel({w2})")));
    assert_eq!(wait_run(&mut s, w2).0, "cancelled");
    assert_eq!(
        (wait_run(&mut s, w3).0, status_and_message(&mut s, w3).1),
        (
            "skipped".into(),
            Some(format!("skipped: run {w2}, which it depends on, was cancelled"))
        )
    );
    // Cancel the long run: even run_if 'finished' is skipped.
    wait_for("the long run to start", DEADLINE, || {
        (status_and_message(&mut s, long).0 == "running").then_some(())
    });
    assert!(one::<bool>(&mut s, &format!("SELECT jobs.cancel({long})")));
    assert_eq!(wait_run(&mut s, long).0, "cancelled");
    assert_eq!(
        (wait_run(&mut s, w).0, status_and_message(&mut s, w).1),
        (
            "skipped".into(),
            Some(format!("skipped: run {long}, which it depends on, was cancelled"))
        )
    );
    let ran: i64 = one(&mut s, "SELECT count(*) FROM steps");
    assert_eq!(ran, 0);
}

#[test]
fn a_dependant_follows_its_parents_retries() {
    let (_c, mut s) = cluster("workflow-retry");
    s.batch_execute(
        "CREATE TABLE fixed (ok boolean); INSERT INTO fixed VALUES (false); GRANT ALL ON fixed TO PUBLIC;
         CREATE FUNCTION flaky() RETURNS void LANGUAGE plpgsql AS $$
           BEGIN IF NOT (SELECT ok FROM fixed) THEN RAISE EXCEPTION 'not fixed yet'; END IF; END $$;",
    )
    .unwrap();
    // The first attempt fails; the cause is fixed during the retry's
    // 10-second backoff, so the retry succeeds.
    let p: i64 = one(&mut s, "SELECT jobs.submit('SELECT flaky()', max_attempts => 2)");
    let d: i64 = one(
        &mut s,
        &format!("SELECT jobs.submit($$SELECT step('d')$$, depends_on => ARRAY[{p}])"),
    );
    wait_for("the first attempt to fail", DEADLINE, || {
        (status_and_message(&mut s, p).0 == "failed").then_some(())
    });
    // Meanwhile the dependant waits, for the retry now.
    let retry: i64 = one(
        &mut s,
        &format!("SELECT id FROM jobs.run WHERE id > {p} AND command = 'SELECT flaky()'"),
    );
    let (status, waits): (String, Vec<i64>) = {
        let r = s
            .query_one("SELECT status, depends_on FROM jobs.run WHERE id = $1", &[&d])
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!((status.as_str(), waits), ("waiting", vec![retry]));
    s.batch_execute("UPDATE fixed SET ok = true").unwrap();
    let (status, _, msg) = wait_run(&mut s, d);
    assert_eq!(status, "succeeded", "{msg:?}");
    assert_eq!(status_and_message(&mut s, retry).0, "succeeded");
}

#[test]
fn parents_that_ended_before_the_submit_commits_are_seen() {
    let (_c, mut s) = cluster("workflow-late");
    let p: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1')");
    assert_eq!(wait_run(&mut s, p).0, "succeeded");
    let d: i64 = one(
        &mut s,
        &format!("SELECT jobs.submit($$SELECT step('late')$$, depends_on => ARRAY[{p}])"),
    );
    assert_eq!(wait_run(&mut s, d).0, "succeeded");
    // And one whose parent ends while the submitting transaction is open.
    let slow: i64 = one(&mut s, "SELECT jobs.submit('SELECT pg_sleep(0.5)')");
    let mut tx = s.transaction().unwrap();
    let d2: i64 = tx
        .query_one(
            &format!("SELECT jobs.submit($$SELECT step('late2')$$, depends_on => ARRAY[{slow}])"),
            &[],
        )
        .unwrap()
        .get(0);
    tx.batch_execute("SELECT pg_sleep(1.5)").unwrap();
    tx.commit().unwrap();
    assert_eq!(wait_run(&mut s, d2).0, "succeeded");
}

#[test]
fn bad_dependency_arguments_are_refused_and_write_nothing() {
    let (c, mut s) = cluster("workflow-bad-input");
    s.batch_execute("CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN")
        .unwrap();
    let mut alice = c.connect_as("app", "alice");
    let mut bob = c.connect_as("app", "bob");
    let alices: i64 = one(
        &mut alice,
        "SELECT jobs.submit('SELECT 1', start_at => now() + interval '1 hour')",
    );
    let before: i64 = one(&mut s, "SELECT count(*) FROM jobs.run");
    for (sql, code) in [
        (
            "SELECT jobs.submit('SELECT 1', depends_on => ARRAY[NULL]::bigint[])".to_owned(),
            "22004",
        ),
        (
            "SELECT jobs.submit('SELECT 1', depends_on => ARRAY[]::bigint[])".to_owned(),
            "22023",
        ),
        (
            "SELECT jobs.submit('SELECT 1', depends_on => ARRAY[999999])".to_owned(),
            "42704",
        ),
        (
            format!("SELECT jobs.submit('SELECT 1', depends_on => ARRAY[{alices}], run_if => 'sometimes')"),
            "42704",
        ),
        (
            format!("SELECT jobs.submit('SELECT 1', depends_on => ARRAY[{alices}])"),
            "42704",
        ),
    ] {
        assert_eq!(sqlstate_of(&mut bob, &sql), code, "{sql}");
    }
    for (sql, code) in [
        (
            format!("SELECT jobs.submit('SELECT 1', depends_on => ARRAY[{alices}], run_if => 'sometimes')"),
            "22023",
        ),
        (
            format!("SELECT jobs.submit('SELECT 1', depends_on => ARRAY[{alices}], run_if => NULL)"),
            "22004",
        ),
        (
            format!("SELECT jobs.submit('SELECT 1', depends_on => ARRAY[{alices}], unique_key => 'k')"),
            "0A000",
        ),
    ] {
        assert_eq!(sqlstate_of(&mut alice, &sql), code, "{sql}");
    }
    let after: i64 = one(&mut s, "SELECT count(*) FROM jobs.run");
    assert_eq!(after, before, "a refused submit wrote a run");
    // run_if without depends_on is ignored, as what it qualifies is absent.
    let id: i64 = one(&mut alice, "SELECT jobs.submit('SELECT 1', run_if => 'failed')");
    assert_eq!(wait_run(&mut alice, id).0, "succeeded");
}

#[test]
fn a_job_runs_after_another_as_run_if_says() {
    let (_c, mut s) = cluster("workflow-after-job");
    s.batch_execute(
        "CREATE TABLE log (who text, at timestamptz DEFAULT clock_timestamp());
         SELECT jobs.schedule('a', '1 second', $$INSERT INTO log (who) VALUES ('a')$$);
         SELECT jobs.schedule('b', NULL, $$INSERT INTO log (who) VALUES ('b')$$, after_job => 'a');
         SELECT jobs.schedule('b-on-failure', NULL, $$INSERT INTO log (who) VALUES ('never')$$,
                              after_job => 'a', run_if => 'failed');
         SELECT jobs.schedule('f', '1 second', 'SELECT 1/0');
         SELECT jobs.schedule('alert', NULL, $$INSERT INTO log (who) VALUES ('alert')$$,
                              after_job => 'f', run_if => 'failed');",
    )
    .unwrap();
    let count = |s: &mut Client, who: &str| -> i64 {
        s.query_one("SELECT count(*) FROM log WHERE who = $1", &[&who])
            .unwrap()
            .get(0)
    };
    wait_for(
        "b to follow a three times and alert to follow f twice",
        DEADLINE,
        || (count(&mut s, "b") >= 3 && count(&mut s, "alert") >= 2).then_some(()),
    );
    // Each run of b follows a run of a: b's k-th row comes after a's k-th.
    let ordered: bool = one(
        &mut s,
        "WITH a AS (SELECT at, row_number() OVER (ORDER BY at) n FROM log WHERE who = 'a'),
              b AS (SELECT at, row_number() OVER (ORDER BY at) n FROM log WHERE who = 'b')
         SELECT bool_and(b.at > a.at) FROM b JOIN a USING (n)",
    );
    assert!(ordered, "a run of b started before its run of a ended");
    assert_eq!(count(&mut s, "never"), 0, "run_if 'failed' ran after a success");
    // The followers have no schedule of their own, and no next due time.
    let shown: (Option<String>, Option<String>) = {
        let r = s
            .query_one(
                "SELECT schedule, next_due::text FROM jobs.job_status WHERE name = 'b'",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(shown, (None, None));

    // A run that will be retried has not ended for good: a follower runs
    // once per last attempt, not per attempt.
    s.batch_execute(
        "SELECT jobs.pause('f');
         SELECT jobs.schedule('g', '1 second', 'SELECT 1/0', max_attempts => 2, retry_backoff => '1 second');
         SELECT jobs.schedule('g-alert', NULL, $$INSERT INTO log (who) VALUES ('g-alert')$$,
                              after_job => 'g', run_if => 'failed');",
    )
    .unwrap();
    wait_for("g to fail for good twice", DEADLINE, || {
        (count(&mut s, "g-alert") >= 2).then_some(())
    });
    s.batch_execute("SELECT jobs.pause('g')").unwrap();
    let g_runs_live = "SELECT count(*) FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id
                        WHERE j.name IN ('g', 'g-alert') AND r.status IN ('queued', 'starting', 'running')";
    wait_for("g and its alerts to settle", DEADLINE, || {
        (one::<i64>(&mut s, g_runs_live) == 0).then_some(())
    });
    let last_attempts: i64 = one(
        &mut s,
        "SELECT count(*) FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id
          WHERE j.name = 'g' AND r.attempt = 2 AND r.status = 'failed'",
    );
    assert_eq!(
        count(&mut s, "g-alert"),
        last_attempts,
        "one alert per last attempt"
    );

    // A chain may not lead back to where it starts; a followed job is not
    // unscheduled first; one of schedule and after_job.
    for (sql, code) in [
        (
            "SELECT jobs.schedule('a', NULL, 'SELECT 1', after_job => 'b')",
            "22023",
        ),
        (
            "SELECT jobs.schedule('b', NULL, 'SELECT 1', after_job => 'b')",
            "22023",
        ),
        (
            "SELECT jobs.schedule('c', '1 second', 'SELECT 1', after_job => 'a')",
            "22023",
        ),
        ("SELECT jobs.schedule('c', NULL, 'SELECT 1')", "22004"),
        (
            "SELECT jobs.schedule('c', NULL, 'SELECT 1', after_job => 'nope')",
            "42704",
        ),
        (
            "SELECT jobs.schedule('c', NULL, 'SELECT 1', after_job => 'a', run_if => 'maybe')",
            "22023",
        ),
        ("SELECT jobs.unschedule('a')", "2BP01"),
    ] {
        assert_eq!(sqlstate_of(&mut s, sql), code, "{sql}");
    }
    // Given a schedule, a follower follows no more.
    s.batch_execute("SELECT jobs.alter_job('b', schedule => '@yearly')")
        .unwrap();
    let after: Option<i64> = one(&mut s, "SELECT after_job FROM jobs.job WHERE name = 'b'");
    assert_eq!(after, None);
    s.batch_execute("SELECT jobs.unschedule('b-on-failure'); SELECT jobs.unschedule('a')")
        .unwrap();
}
