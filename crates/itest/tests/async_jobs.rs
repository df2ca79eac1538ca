//! Async jobs: submit with options, wait, cancel, priority, start_at, and
//! a burst of submits with nothing lost.

use pg_jobs_itest::{one, wait_for, wait_run, Cluster, DEADLINE};
use postgres::Client;
use std::time::{Duration, Instant};

fn cluster(name: &str, conf: &str) -> (Cluster, Client) {
    Cluster::with_app_db(name, conf)
}

#[test]
fn wait_returns_when_the_run_ends_and_honours_its_timeout() {
    let (c, mut s) = cluster("wait", "");
    let id: i64 = one(&mut s, "SELECT jobs.submit('SELECT pg_sleep(0.5)')"); // the run under test
    let t0 = Instant::now();
    let row = s
        .query_one(
            "SELECT status, extract(epoch FROM clock_timestamp() - finished_at)::float8 FROM jobs.wait($1)",
            &[&id],
        )
        .unwrap();
    let waited = t0.elapsed();
    assert_eq!(row.get::<_, String>(0), "succeeded");
    let after_finish: f64 = row.get(1);
    println!(
        "jobs.wait returned {:.1} ms after the run finished (waited {waited:?})",
        after_finish * 1000.0
    );
    assert!(
        after_finish < 1.0,
        "wait returned {after_finish} s after the run ended"
    );

    // A timeout returns the current row.
    let id: i64 = one(&mut s, "SELECT jobs.submit('SELECT pg_sleep(60)')"); // a long job: the run under test
    let t0 = Instant::now();
    let status: String = s
        .query_one("SELECT status FROM jobs.wait($1, '300 ms')", &[&id])
        .unwrap()
        .get(0);
    let waited = t0.elapsed();
    assert!(
        ["queued", "starting", "running"].contains(&status.as_str()),
        "{status}"
    );
    assert!(
        waited >= Duration::from_millis(290) && waited < Duration::from_secs(5),
        "waited {waited:?}"
    );

    // pg_cancel_backend interrupts a wait.
    let waiter_pid: i32 = one(&mut s, "SELECT pg_backend_pid()");
    let mut other = c.connect("app");
    let handle = std::thread::spawn(move || {
        s.query_one("SELECT status FROM jobs.wait($1)", &[&id])
            .map(|_| ())
    });
    wait_for("the waiter to sleep", DEADLINE, || {
        let st: Option<String> = other
            .query_opt(
                "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1",
                &[&waiter_pid],
            )
            .unwrap()
            .and_then(|r| r.get(0));
        (st.as_deref() == Some("Extension")).then_some(())
    });
    assert!(one::<bool>(
        &mut other,
        &format!("SELECT pg_cancel_backend({waiter_pid})")
    ));
    let err = handle.join().unwrap().unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err}");
    other.batch_execute(&format!("SELECT jobs.cancel({id})")).unwrap();
}

#[test]
fn wait_refuses_what_could_never_finish() {
    let (_c, mut s) = cluster("wait-errors", "");
    let mut tx = s.transaction().unwrap();
    let err = tx
        .batch_execute("SELECT jobs.wait(jobs.submit('SELECT 1'))")
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("55000"), "{err}");
    drop(tx);
    let id: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1')");
    let mut tx = s
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .start()
        .unwrap();
    let err = tx.batch_execute(&format!("SELECT jobs.wait({id})")).unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("55000"), "{err}");
    drop(tx);
    let err = s.batch_execute("SELECT jobs.wait(999999)").unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42704"), "{err}");
}

#[test]
fn cancel_stops_queued_and_running_runs() {
    let (_c, mut s) = cluster("cancel", "");
    s.batch_execute("CREATE TABLE hits (x int)").unwrap();
    // Queued (not due for an hour): it never runs.
    let queued: i64 = one(
        &mut s,
        "SELECT jobs.submit('INSERT INTO hits VALUES (1)', start_at => now() + interval '1 hour')",
    );
    assert!(one::<bool>(&mut s, &format!("SELECT jobs.cancel({queued})")));
    assert_eq!(
        one::<String>(&mut s, &format!("SELECT status FROM jobs.wait({queued})")),
        "cancelled"
    );
    // Running: its statement is interrupted.
    let running: i64 = one(
        &mut s,
        "SELECT jobs.submit('SELECT pg_sleep(60); INSERT INTO hits VALUES (2)')", // a long job: the run under test
    );
    wait_for("running", DEADLINE, || {
        (one::<String>(
            &mut s,
            &format!("SELECT status FROM jobs.run WHERE id = {running}"),
        ) == "running")
            .then_some(())
    });
    let t0 = Instant::now();
    assert!(one::<bool>(&mut s, &format!("SELECT jobs.cancel({running})")));
    let (status, code, _) = wait_run(&mut s, running);
    println!("a running run was cancelled in {:?}", t0.elapsed());
    assert_eq!((status.as_str(), code.as_deref()), ("cancelled", Some("57014")));
    // Finished: nothing to cancel.
    assert!(!one::<bool>(&mut s, &format!("SELECT jobs.cancel({running})")));
    assert_eq!(one::<i64>(&mut s, "SELECT count(*) FROM hits"), 0);
    // Nobody else's run.
    s.batch_execute("CREATE ROLE eve LOGIN").unwrap();
    let err = _c
        .connect_as("app", "eve")
        .batch_execute(&format!("SELECT jobs.cancel({running})"))
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42704"), "{err}");
}

#[test]
fn higher_priority_starts_first_and_start_at_is_honoured() {
    let (_c, mut s) = cluster("priority", "pg_jobs.max_executors = 1");
    let blocker: i64 = one(&mut s, "SELECT jobs.submit('SELECT pg_sleep(0.5)')"); // a long job: the run under test
    wait_for("blocker running", DEADLINE, || {
        (one::<String>(
            &mut s,
            &format!("SELECT status FROM jobs.run WHERE id = {blocker}"),
        ) == "running")
            .then_some(())
    });
    let mut tx = s.transaction().unwrap();
    let low1: i64 = tx
        .query_one("SELECT jobs.submit('SELECT 1')", &[])
        .unwrap()
        .get(0);
    let low2: i64 = tx
        .query_one("SELECT jobs.submit('SELECT 2')", &[])
        .unwrap()
        .get(0);
    let high: i64 = tx
        .query_one("SELECT jobs.submit('SELECT 3', priority => 10)", &[])
        .unwrap()
        .get(0);
    tx.commit().unwrap();
    for id in [low1, low2, high] {
        assert_eq!(wait_run(&mut s, id).0, "succeeded");
    }
    let order: Vec<i64> = s
        .query(
            "SELECT id FROM jobs.run WHERE id > $1 ORDER BY started_at",
            &[&blocker],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(order, [high, low1, low2]);

    let later: i64 = one(
        &mut s,
        "SELECT jobs.submit('SELECT 1', start_at => clock_timestamp() + interval '1 second')",
    );
    assert_eq!(wait_run(&mut s, later).0, "succeeded");
    assert!(one::<bool>(
        &mut s,
        &format!("SELECT started_at >= not_before FROM jobs.run WHERE id = {later}")
    ));
}

#[test]
fn submit_runs_as_another_role_in_another_database() {
    let (c, mut s) = cluster("submit-options", "");
    c.connect("postgres")
        .batch_execute("CREATE DATABASE other")
        .unwrap();
    c.connect("other")
        .batch_execute("CREATE ROLE app_worker LOGIN; CREATE TABLE seen (db text, who text); GRANT INSERT ON seen TO app_worker")
        .unwrap();
    let id: i64 = one(
        &mut s,
        "SELECT jobs.submit('INSERT INTO seen VALUES (current_database(), current_user)', database => 'other', run_as => 'app_worker')",
    );
    assert_eq!(wait_run(&mut s, id).0, "succeeded");
    let row = c
        .connect("other")
        .query_one("SELECT db, who FROM seen", &[])
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, String>(1)),
        ("other".into(), "app_worker".into())
    );
    s.batch_execute("CREATE ROLE outsider LOGIN").unwrap();
    let err = c
        .connect_as("app", "outsider")
        .batch_execute("SELECT jobs.submit('SELECT 1', run_as => 'app_worker')")
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err}");
}

#[test]
fn a_burst_of_submits_all_finish_and_none_is_lost() {
    let n: i64 = std::env::var("PGJOBS_BURST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let (_c, mut s) = cluster("burst", "pg_jobs.max_executors = 6\nmax_worker_processes = 16");
    s.batch_execute("CREATE TABLE sink (run int)").unwrap();
    let t0 = Instant::now();
    s.execute(
        "SELECT jobs.submit(format('INSERT INTO sink VALUES (%s)', g)) FROM generate_series(1, $1::int8) g",
        &[&n],
    )
    .unwrap();
    wait_for("every run finished", Duration::from_secs(600), || {
        (one::<i64>(
            &mut s,
            "SELECT count(*) FROM jobs.run WHERE status IN ('queued','starting','running')",
        ) == 0)
            .then_some(())
    });
    let took = t0.elapsed();
    println!(
        "{n} submitted runs finished in {took:?}: {:.0} runs/s (max_executors 6, warm pool)",
        n as f64 / took.as_secs_f64()
    );
    assert_eq!(
        one::<i64>(&mut s, "SELECT count(*) FROM jobs.run WHERE status = 'succeeded'"),
        n
    );
    assert_eq!(one::<i64>(&mut s, "SELECT count(DISTINCT run) FROM sink"), n);
}

/// A burst with a slow run in the middle: a pooled executor takes runs from
/// the queue in batches, and those it reserved behind the slow one must
/// not wait for it: the scheduler takes them back and another executor
/// runs them. The slow run shows `running` meanwhile.
#[test]
fn runs_reserved_behind_a_slow_run_do_not_wait_for_it() {
    // One role alone, allowed both executors (by default a role gets all
    // but one).
    let (_c, mut s) = cluster(
        "reserved",
        "pg_jobs.max_executors = 2\npg_jobs.max_runs_per_role = 2",
    );
    s.batch_execute("CREATE TABLE hits (n int)").unwrap();
    // 400 quick runs (executors warm up and claim in batches), the slow
    // one, then 40 quick ones queued right behind it.
    let slow: i64 = one(
        &mut s,
        "WITH ids AS (
           SELECT g, jobs.submit(CASE WHEN g = 400 THEN 'SELECT pg_sleep(600)' -- the slow run under test
                                      ELSE format('INSERT INTO hits VALUES (%s)', g) END) AS id
             FROM generate_series(0, 440) g ORDER BY g)
         SELECT id FROM ids WHERE g = 400",
    );
    let (_, waited) = wait_for(
        "the 440 quick runs done while the slow one runs",
        DEADLINE,
        || (one::<i64>(&mut s, "SELECT count(*) FROM hits") == 440).then_some(()),
    );
    println!("440 quick runs around a slow one finished in {waited:?}");
    let status: String = one(&mut s, &format!("SELECT status FROM jobs.run WHERE id = {slow}"));
    assert_eq!(status, "running", "the slow run is shown running while it runs");
    assert_eq!(
        one::<i64>(&mut s, "SELECT count(*) FROM jobs.run WHERE status = 'succeeded'"),
        440
    );
    assert!(one::<bool>(&mut s, &format!("SELECT jobs.cancel({slow})")));
    assert_eq!(wait_run(&mut s, slow).0, "cancelled");
}

/// A role whose transactions default to REPEATABLE READ or SERIALIZABLE:
/// its single-transaction run is recorded inside its transaction even
/// though the scheduler showed it `running` after the run's snapshot was
/// taken (that update of the run's row must not turn into a serialization
/// failure of the user's command).
#[test]
fn runs_of_repeatable_read_and_serializable_roles_are_recorded() {
    let (_c, mut s) = cluster("isolation", "");
    s.batch_execute(
        "CREATE TABLE public.iso_hits (level text);
         CREATE ROLE rr LOGIN; ALTER ROLE rr SET default_transaction_isolation = 'repeatable read';
         CREATE ROLE ser LOGIN; ALTER ROLE ser SET default_transaction_isolation = 'serializable';
         GRANT INSERT ON public.iso_hits TO rr, ser;",
    )
    .unwrap();
    for role in ["rr", "ser"] {
        // Long enough for the scheduler to show it running (50 ms in).
        let id: i64 = one(
            &mut s,
            &format!(
                "SELECT jobs.submit('SELECT pg_sleep(1); INSERT INTO public.iso_hits SELECT current_setting(''transaction_isolation'')', run_as => '{role}')"
            ),
        );
        let (status, code, message) = wait_run(&mut s, id);
        assert_eq!(status, "succeeded", "{role}: {code:?} {message:?}");
    }
    // A burst of such runs: executors claim runs from the queue side by
    // side, in transactions of their own (never at the role's level).
    s.batch_execute("SELECT jobs.submit('SELECT 1', run_as => 'ser') FROM generate_series(1, 300)")
        .unwrap();
    wait_for("the serializable burst done", DEADLINE, || {
        (one::<i64>(
            &mut s,
            "SELECT count(*) FROM jobs.run WHERE status IN ('queued', 'starting', 'running')",
        ) == 0)
            .then_some(())
    });
    assert_eq!(
        one::<i64>(
            &mut s,
            "SELECT count(*) FROM jobs.run WHERE status <> 'succeeded'"
        ),
        0,
        "every run of the serializable role succeeded"
    );
    let levels: Vec<String> = s
        .query("SELECT level FROM public.iso_hits ORDER BY 1", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(levels, ["repeatable read", "serializable"]);
}

/// A cancel inside a transaction that goes on: the run's row is not kept
/// locked, so the scheduler records the cancelled run at once (a `wait` in
/// the same transaction sees it) and goes on dispatching others.
#[test]
fn cancel_in_an_open_transaction_does_not_hold_up_the_scheduler() {
    let (c, mut s) = cluster("cancel-open", "");
    let long: i64 = one(&mut s, "SELECT jobs.submit('SELECT pg_sleep(600)')"); // the run under test
    wait_for("running", DEADLINE, || {
        (one::<String>(&mut s, &format!("SELECT status FROM jobs.run WHERE id = {long}")) == "running")
            .then_some(())
    });
    s.batch_execute("BEGIN").unwrap();
    assert!(one::<bool>(&mut s, &format!("SELECT jobs.cancel({long})")));
    let mut other = c.connect("app");
    let quick: i64 = one(&mut other, "SELECT jobs.submit('SELECT 1')");
    assert_eq!(wait_run(&mut other, quick).0, "succeeded");
    let status: String = one(&mut s, &format!("SELECT status FROM jobs.wait({long}, '20 s')"));
    assert_eq!(status, "cancelled");
    s.batch_execute("COMMIT").unwrap();
}

/// A command may change its session's transaction defaults (read-only,
/// an isolation level) and fail or commit on its own: pg_jobs' own
/// transactions around it are not affected — its result is kept, the runs
/// reserved behind it still run, nothing ends `crashed`.
#[test]
fn a_command_that_changes_session_transaction_defaults_does_not_break_the_executor() {
    let (_c, mut s) = cluster("characteristics", "pg_jobs.max_executors = 1");
    let ids: Vec<i64> = s
        .query(
            "SELECT jobs.submit(CASE
                 WHEN g = 20 THEN 'SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY; COMMIT; SELECT 1/0'
                 WHEN g = 21 THEN 'SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ ONLY; COMMIT; SELECT 42 AS answer'
                 ELSE format('SELECT %s', g) END)
               FROM generate_series(0, 30) g ORDER BY g",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for (i, id) in ids.iter().enumerate() {
        let (status, code, message) = wait_run(&mut s, *id);
        let expected = if i == 20 { "failed" } else { "succeeded" };
        assert_eq!(status, expected, "run {i}: {code:?} {message:?}");
    }
    let answer: String = one(&mut s, &format!("SELECT r::text FROM jobs.result({}) r", ids[21]));
    assert_eq!(answer, r#"{"answer": 42}"#);
    // Those defaults did not leak into the runs after them.
    let after: i64 = one(
        &mut s,
        "SELECT jobs.submit('CREATE TABLE public.written (level text); INSERT INTO public.written SELECT current_setting(''transaction_isolation'')')",
    );
    assert_eq!(wait_run(&mut s, after).0, "succeeded");
    assert_eq!(
        one::<String>(&mut s, "SELECT level FROM public.written"),
        "read committed"
    );
}

/// Runs queued behind a slow run on the only executor (reserved by it, or
/// already taken back into the queue) can be cancelled, and never run.
#[test]
fn runs_behind_a_slow_run_can_be_cancelled_and_never_run() {
    let (_c, mut s) = cluster("reserved-cancel", "pg_jobs.max_executors = 1");
    s.batch_execute("CREATE TABLE hits (n int)").unwrap();
    let ids: Vec<i64> = s
        .query(
            "SELECT jobs.submit(CASE WHEN g = 100 THEN 'SELECT pg_sleep(600)' -- the slow run under test
                                     WHEN g < 100 THEN 'SELECT 1'
                                     ELSE format('INSERT INTO hits VALUES (%s)', g) END)
               FROM generate_series(0, 110) g ORDER BY g",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let (slow, behind) = (ids[100], &ids[101..]);
    wait_for("the slow run started", DEADLINE, || {
        (one::<String>(&mut s, &format!("SELECT status FROM jobs.run WHERE id = {slow}")) == "running")
            .then_some(())
    });
    for id in behind {
        assert!(
            one::<bool>(&mut s, &format!("SELECT jobs.cancel({id})")),
            "run {id} cancelled"
        );
    }
    assert!(one::<bool>(&mut s, &format!("SELECT jobs.cancel({slow})")));
    for id in behind {
        assert_eq!(wait_run(&mut s, *id).0, "cancelled", "run {id}");
    }
    assert_eq!(wait_run(&mut s, slow).0, "cancelled");
    // The executor is free again: a new run goes through, and nothing
    // cancelled ran.
    let after: i64 = one(&mut s, "SELECT jobs.submit('INSERT INTO hits VALUES (-1)')");
    assert_eq!(wait_run(&mut s, after).0, "succeeded");
    assert_eq!(one::<i64>(&mut s, "SELECT count(*) FROM hits WHERE n >= 0"), 0);
    assert_eq!(
        one::<i64>(&mut s, "SELECT count(*) FROM jobs.run WHERE status = 'succeeded'"),
        101
    );
}

/// Kill -9 the executor (or its scheduler) at a random moment of a
/// one-transaction INSERT job,
/// let the cluster crash-restart, and check that the run is either
/// succeeded with its row, or not succeeded without it. Never both, never
/// neither.
#[test]
fn kill_9_mid_run_is_exactly_once_for_single_transaction_jobs() {
    let rounds: u32 = std::env::var("PGJOBS_EXACTLY_ONCE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let (c, mut s) = cluster("exactly-once", "");
    s.batch_execute("CREATE TABLE marks (n int PRIMARY KEY)").unwrap();
    let mut seed = std::process::id() as u64;
    let mut outcomes = std::collections::BTreeMap::<&str, u32>::new();
    for n in 1..=rounds {
        let id: i64 = s
            .query_one(
                "SELECT jobs.submit(format('SELECT pg_sleep(random() * 0.05); INSERT INTO marks VALUES (%s); SELECT pg_sleep(random() * 0.05)', $1::int))", // a long job: the run under test
                &[&(n as i32)],
            )
            .unwrap()
            .get(0);
        // Its executor, unless it already finished.
        let (pid, _) = wait_for("the executor or the end of the run", DEADLINE, || {
            let row = s
                .query_one(
                    "SELECT (SELECT pid FROM jobs.workers WHERE kind = 'executor' AND run_id = $1 AND pid IS NOT NULL),
                            (SELECT status IN ('succeeded','failed','crashed') FROM jobs.run WHERE id = $1)",
                    &[&id],
                )
                .unwrap();
            match (row.get::<_, Option<i32>>(0), row.get::<_, Option<bool>>(1)) {
                (Some(pid), _) => Some(Some(pid)),
                (None, Some(true)) => Some(None),
                _ => None,
            }
        });
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(seed % 80_000)); // a random moment in the run: the fault under test
                                                                  // Odd rounds kill the executor; even rounds kill the scheduler, which
                                                                  // catches an outcome that finished but is not yet in the history.
        let target = if n % 2 == 1 {
            pid
        } else {
            s.query_opt(
                "SELECT pid FROM jobs.workers WHERE kind = 'scheduler' AND pid IS NOT NULL",
                &[],
            )
            .unwrap()
            .map(|r| r.get::<_, i32>(0))
        };
        // SAFETY: kill(2) of a pg_jobs worker; the postmaster then restarts the cluster.
        let killed = target.is_some_and(|pid| unsafe { libc::kill(pid, libc::SIGKILL) } == 0);
        if killed {
            // The crash restart ends every session, ours included: wait for
            // that before reconnecting, or the new session could be ended too.
            // (A process that had just exited on its own is a zombie that
            // kill(2) still reaches: then no restart comes.)
            let t0 = Instant::now();
            while s.simple_query("SELECT 1").is_ok() && t0.elapsed() < Duration::from_secs(3) {
                std::thread::sleep(Duration::from_millis(20)); // poll interval of a deadline-bounded wait
            }
            s = c.connect("app");
        }
        let (status, _, _) = wait_run(&mut s, id);
        let row = one::<i64>(&mut s, &format!("SELECT count(*) FROM marks WHERE n = {n}")) == 1;
        assert_eq!(
            status == "succeeded",
            row,
            "round {n}: status {status}, row present: {row}"
        );
        *outcomes.entry(if row { "done" } else { "not done" }).or_default() += 1;
    }
    println!("exactly-once over {rounds} kill -9 rounds: {outcomes:?}");
}

/// A warm executor takes the next run of the same database and role, and
/// nothing of one run's session (settings, role, temp tables, prepared
/// statements, advisory locks) reaches the next, even after a failed run.
#[test]
fn pooled_executors_are_reused_and_reset_between_runs() {
    let (_c, mut s) = cluster("pool", "pg_jobs.max_executors = 1");
    s.batch_execute("CREATE ROLE pooler LOGIN; CREATE ROLE other_role; GRANT other_role TO pooler; CREATE TABLE obs (k text, v text); GRANT INSERT ON obs TO pooler")
        .unwrap();
    let dirty = "SET work_mem = '77MB'; SET search_path = nowhere;
                 CREATE TEMP TABLE leftover (x int); PREPARE leak AS SELECT 1; SELECT pg_advisory_lock(4242);
                 SET SESSION application_name = 'leaky';
                 DECLARE held CURSOR WITH HOLD FOR SELECT 1; SET ROLE other_role";
    let check = "INSERT INTO public.obs
                 SELECT 'work_mem', current_setting('work_mem') UNION ALL
                 SELECT 'user', current_user::text UNION ALL
                 SELECT 'search_path', current_setting('search_path') UNION ALL
                 SELECT 'temp', (SELECT count(*)::text FROM pg_class WHERE relname = 'leftover' AND relpersistence = 't') UNION ALL
                 SELECT 'prepared', (SELECT count(*)::text FROM pg_prepared_statements) UNION ALL
                 SELECT 'advisory', (SELECT count(*)::text FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()) UNION ALL
                 SELECT 'app', current_setting('application_name') UNION ALL
                 SELECT 'cursors', (SELECT count(*)::text FROM pg_cursors)";
    let a: i64 = s
        .query_one("SELECT jobs.submit($1, run_as => 'pooler')", &[&dirty])
        .unwrap()
        .get(0);
    assert_eq!(wait_run(&mut s, a).0, "succeeded");
    // A failing run in between, that also dirties the session first.
    let b: i64 = s
        .query_one(
            "SELECT jobs.submit('SET statement_timeout = 12345; SELECT 1/0', run_as => 'pooler')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(wait_run(&mut s, b).0, "failed");
    let c: i64 = s
        .query_one("SELECT jobs.submit($1, run_as => 'pooler')", &[&check])
        .unwrap()
        .get(0);
    let (status, _, message) = wait_run(&mut s, c);
    assert_eq!(status, "succeeded", "{message:?}");
    let pids: Vec<i32> = s
        .query(
            "SELECT DISTINCT pid FROM jobs.run WHERE id IN ($1, $2, $3)",
            &[&a, &b, &c],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(pids.len(), 1, "one warm executor ran all three: {pids:?}");
    let seen: std::collections::BTreeMap<String, String> = s
        .query("SELECT k, v FROM obs", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_ne!(seen["work_mem"], "77MB");
    assert_eq!(seen["user"], "pooler");
    assert_eq!(seen["search_path"], "\"$user\", public");
    assert_eq!(seen["temp"], "0");
    assert_eq!(seen["prepared"], "0");
    assert_eq!(seen["advisory"], "0");
    assert_ne!(seen["app"], "leaky");
    assert_eq!(seen["cursors"], "0");
}

#[test]
fn result_returns_the_last_statements_rows_to_their_owner_within_the_cap() {
    let (c, mut s) = cluster("result", "pg_jobs.max_result_bytes = 2000");
    s.batch_execute("CREATE ROLE reader LOGIN; CREATE ROLE snoop LOGIN")
        .unwrap();
    let mut r = c.connect_as("app", "reader");
    let id: i64 = one(
        &mut r,
        "SELECT jobs.submit($$CREATE TEMP TABLE t AS SELECT 1; SELECT g AS n, g % 2 = 0 AS even, 'row ' || g AS label, NULL::int AS nothing, '{\"k\": 1}'::jsonb AS doc FROM generate_series(1, 3) g$$)",
    );
    assert_eq!(wait_run(&mut r, id).0, "succeeded");
    let rows: Vec<String> = r
        .query("SELECT jobs.result($1)::text", &[&id])
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert_eq!(
        rows,
        [
            r#"{"n": 1, "doc": {"k": 1}, "even": false, "label": "row 1", "nothing": null}"#,
            r#"{"n": 2, "doc": {"k": 1}, "even": true, "label": "row 2", "nothing": null}"#,
            r#"{"n": 3, "doc": {"k": 1}, "even": false, "label": "row 3", "nothing": null}"#,
        ]
    );
    assert!(!one::<bool>(
        &mut r,
        &format!("SELECT result_truncated FROM jobs.run WHERE id = {id}")
    ));
    // Over the cap: the first rows, flagged.
    let big: i64 = one(
        &mut r,
        "SELECT jobs.submit('SELECT g, repeat(''x'', 100) FROM generate_series(1, 1000) g')",
    );
    assert_eq!(wait_run(&mut r, big).0, "succeeded");
    let kept: i64 = one(&mut r, &format!("SELECT count(*) FROM jobs.result({big})"));
    assert!(kept > 0 && kept < 1000, "kept {kept}");
    assert!(one::<bool>(
        &mut r,
        &format!("SELECT result_truncated FROM jobs.run WHERE id = {big}")
    ));
    // Only the owner (and superusers) may read it.
    let err = c
        .connect_as("app", "snoop")
        .query(&format!("SELECT jobs.result({id})"), &[])
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42704"), "{err}");
    assert_eq!(
        one::<i64>(&mut s, &format!("SELECT count(*) FROM jobs.result({id})")),
        3
    );
    let err = c
        .connect_as("app", "snoop")
        .query("SELECT * FROM jobs.run_result", &[])
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42501"), "{err}");
}

/// The last line of exactly-once: a single-transaction run whose record was
/// already finished by someone else (here, by hand, as the scheduler does
/// when it believes the executor is gone) must roll its effects back rather
/// than commit them beside a record that says they never happened.
#[test]
fn a_run_already_recorded_finished_rolls_its_effects_back() {
    let (_c, mut s) = cluster("exactly-once-guard", "");
    s.batch_execute("CREATE TABLE effects (n int)").unwrap();
    // The INSERT waits 1 s before writing: the run under test.
    let id: i64 = one(
        &mut s,
        "SELECT jobs.submit('INSERT INTO effects SELECT 1 FROM pg_sleep(1)')",
    );
    wait_for("the run running", DEADLINE, || {
        (one::<String>(&mut s, &format!("SELECT status FROM jobs.run WHERE id = {id}")) == "running")
            .then_some(())
    });
    s.batch_execute(&format!(
        "UPDATE jobs.run SET status = 'crashed', finished_at = clock_timestamp() WHERE id = {id}"
    ))
    .unwrap();
    // The executor finishes the command, fails to record it, and rolls back;
    // its pooled slot is harvested (nothing to write: the row is terminal).
    wait_for("the executor done with it", DEADLINE, || {
        (one::<i64>(
            &mut s,
            &format!("SELECT count(*) FROM jobs.workers WHERE run_id = {id} AND state = 'running'"),
        ) == 0)
            .then_some(())
    });
    // A later run of the same executor shows it is past the guarded one.
    let next: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1')");
    assert_eq!(wait_run(&mut s, next).0, "succeeded");
    assert_eq!(
        one::<i64>(&mut s, "SELECT count(*) FROM effects"),
        0,
        "effects of a run recorded crashed committed"
    );
    assert_eq!(
        one::<String>(&mut s, &format!("SELECT status FROM jobs.run WHERE id = {id}")),
        "crashed"
    );
}
