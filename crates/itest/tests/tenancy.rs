//! Safe to share (issue 13): what one role does cannot stop other roles'
//! jobs. Each test failed before its fix.

use pg_jobs_itest::{one, wait_for, wait_run, worker_pids, Cluster, DEADLINE};
use postgres::Client;

/// The scheduler of `app`, once it is up.
fn scheduler(s: &mut Client) -> Vec<i32> {
    wait_for("the scheduler of app", DEADLINE, || {
        let pids = worker_pids(s, "scheduler", Some("app"));
        (pids.len() == 1).then_some(pids)
    })
    .0
}

/// The database's jobs still run, by the same scheduler.
fn still_served(s: &mut Client, scheduler_before: &[i32], what: &str) {
    let id: i64 = one(s, "SELECT jobs.submit('SELECT 1')");
    assert_eq!(wait_run(s, id).0, "succeeded", "{what}: a run after it");
    assert_eq!(
        worker_pids(s, "scheduler", Some("app")),
        scheduler_before,
        "{what}: the scheduler was stopped"
    );
}

/// Statements that fail PostgreSQL's own checks, or are rolled back, change
/// nothing for pg_jobs: the utility hook acts only on what really runs, and
/// what it notes follows subtransaction abort (finding 1).
#[test]
fn failed_or_rolled_back_ddl_does_not_stop_a_databases_jobs() {
    let (c, mut s) = Cluster::with_app_db("tenancy-ddl", "");
    s.batch_execute("CREATE ROLE mallory LOGIN").unwrap();
    let before = scheduler(&mut s);
    let mut mallory = c.connect_as("app", "mallory");

    // A role that owns nothing tries, and catches the error.
    mallory
        .batch_execute("DO $$ BEGIN DROP EXTENSION pg_jobs; EXCEPTION WHEN OTHERS THEN NULL; END $$")
        .unwrap();
    still_served(&mut s, &before, "a caught DROP EXTENSION by a non-owner");

    let err = mallory
        .batch_execute("ALTER DATABASE app RENAME TO gone")
        .unwrap_err();
    assert_eq!(err.as_db_error().map(|e| e.code().code()), Some("42501"));
    still_served(&mut s, &before, "a refused ALTER DATABASE RENAME");

    // The owner drops it in a savepoint it rolls back.
    s.batch_execute("BEGIN; SAVEPOINT a; DROP EXTENSION pg_jobs; ROLLBACK TO a; COMMIT")
        .unwrap();
    still_served(&mut s, &before, "a DROP EXTENSION rolled back to a savepoint");

    // A DROP DATABASE that cannot run (inside a function), caught, in a
    // transaction left open: the database's workers stay.
    let mut other = c.connect("postgres");
    other
        .batch_execute("BEGIN; DO $$ BEGIN DROP DATABASE app; EXCEPTION WHEN OTHERS THEN NULL; END $$")
        .unwrap();
    still_served(&mut s, &before, "a caught DROP DATABASE in an open transaction");
    other.batch_execute("COMMIT").unwrap();
}

/// A run on a pooled executor gets its role's own session defaults, as a
/// fresh connection of that role would: the second run on the same process
/// used to run READ COMMITTED under a role set to SERIALIZABLE (finding 4).
#[test]
fn pooled_runs_keep_their_roles_transaction_defaults() {
    let (c, mut s) = Cluster::with_app_db("tenancy-defaults", "");
    s.batch_execute(
        "CREATE ROLE strict LOGIN;
         ALTER ROLE strict SET default_transaction_isolation = 'serializable';
         CREATE TABLE seen (run int, pid int, isolation text);
         GRANT INSERT ON seen TO strict;",
    )
    .unwrap();
    let mut strict = c.connect_as("app", "strict");
    for run in 0..3 {
        let id: i64 = one(
            &mut strict,
            &format!(
                "SELECT jobs.submit('INSERT INTO seen VALUES ({run}, pg_backend_pid(), current_setting(''transaction_isolation''))')"
            ),
        );
        assert_eq!(wait_run(&mut strict, id).0, "succeeded");
    }
    let rows = s
        .query("SELECT run, pid, isolation FROM seen ORDER BY run", &[])
        .unwrap();
    let pids: std::collections::HashSet<i32> = rows.iter().map(|r| r.get(1)).collect();
    assert!(
        pids.len() < 3,
        "the runs should share a pooled executor: {pids:?}"
    );
    for r in &rows {
        let (run, isolation): (i32, String) = (r.get(0), r.get(2));
        assert_eq!(isolation, "serializable", "run {run}");
    }
}

/// Submit, as `role`, a run that stores its transaction isolation and its
/// executor's pid in `seen` under `step`; wait for it to succeed and return
/// both.
fn isolation_of_a_run(s: &mut Client, role: &str, step: i32) -> (String, i32) {
    let id: i64 = one(
        s,
        &format!(
            "SELECT jobs.submit('INSERT INTO seen VALUES ({step}, pg_backend_pid(), current_setting(''transaction_isolation''))',
                                run_as => '{role}')"
        ),
    );
    let (status, code, message) = wait_run(s, id);
    assert_eq!(status, "succeeded", "step {step}: {code:?} {message:?}");
    let row = s
        .query_one("SELECT isolation, pid FROM seen WHERE run = $1", &[&step])
        .unwrap();
    (row.get(0), row.get(1))
}

/// Wait until executor `pid` is idle in the pool: were it kept, the next
/// run of its role would be handed to it.
fn idle_in_the_pool(s: &mut Client, pid: i32) {
    wait_for(&format!("executor {pid} idle in the pool"), DEADLINE, || {
        let n: i64 = one(
            s,
            &format!("SELECT count(*) FROM jobs.workers WHERE kind = 'executor' AND pid = {pid} AND state = 'idle'"),
        );
        (n == 1).then_some(())
    });
}

/// A run on a pooled executor sees the role and database settings a fresh
/// connection would, including ones changed after the executor connected:
/// `ALTER ROLE … SET` and `RESET`, `ALTER DATABASE … SET`, and one made in
/// a prepared transaction, once `COMMIT PREPARED`. Each change is made
/// while the executor that ran the previous step is idle in the pool; it
/// used to take the next run with the settings of its connection
/// (finding 4).
#[test]
fn settings_changed_after_an_executor_connected_reach_the_next_run() {
    let (_c, mut s) = Cluster::with_app_db(
        "tenancy-alter-role",
        "pg_jobs.executor_idle_timeout = '60s'\nmax_prepared_transactions = 2",
    );
    s.batch_execute(
        "CREATE ROLE strict LOGIN;
         CREATE TABLE seen (run int, pid int, isolation text);
         GRANT INSERT ON seen TO strict;",
    )
    .unwrap();
    let (level, pid) = isolation_of_a_run(&mut s, "strict", 0);
    assert_eq!(level, "read committed");

    // Each change, one statement per call (COMMIT PREPARED may not share a
    // query string with others), and what the next run sees.
    let steps: [(&[&str], &str); 4] = [
        (
            &["ALTER ROLE strict SET default_transaction_isolation = 'serializable'"],
            "serializable",
        ),
        (
            &["ALTER ROLE strict RESET default_transaction_isolation"],
            "read committed",
        ),
        (
            &["ALTER DATABASE app SET default_transaction_isolation = 'repeatable read'"],
            "repeatable read",
        ),
        (
            // The role's setting in this database wins over the database's.
            &[
                "BEGIN",
                "ALTER ROLE strict IN DATABASE app SET default_transaction_isolation = 'serializable'",
                "PREPARE TRANSACTION 'role_settings'",
                "COMMIT PREPARED 'role_settings'",
            ],
            "serializable",
        ),
    ];
    let mut last_pid = pid;
    for (step, (change, expected)) in (1..).zip(steps) {
        idle_in_the_pool(&mut s, last_pid);
        for statement in change {
            s.batch_execute(statement).unwrap();
        }
        let (level, pid) = isolation_of_a_run(&mut s, "strict", step);
        assert_eq!(level, expected, "after {change:?}");
        last_pid = pid;
    }
}

/// A role's `statement_timeout` cancels a job's statement as it would under
/// `psql -c`, on a fresh executor and on a pooled one: the run fails with
/// PostgreSQL's own 57014 "statement timeout" (finding 5). It used to
/// sleep its 3 s and succeed.
#[test]
fn a_roles_statement_timeout_cancels_a_jobs_statement() {
    let (_c, mut s) = Cluster::with_app_db("tenancy-role-statement-timeout", "");
    s.batch_execute("CREATE ROLE hasty LOGIN; ALTER ROLE hasty SET statement_timeout = '500ms'")
        .unwrap();
    for attempt in ["fresh", "pooled"] {
        let id: i64 = one(
            &mut s,
            "SELECT jobs.submit('SELECT pg_sleep(3)', run_as => 'hasty')",
        );
        let (status, code, message) = wait_run(&mut s, id);
        assert_eq!(
            (status.as_str(), code.as_deref(), message.as_deref()),
            (
                "failed",
                Some("57014"),
                Some("canceling statement due to statement timeout")
            ),
            "{attempt} executor"
        );
    }
    // Shorter statements run, and so does pg_jobs' own work around them.
    let id: i64 = one(
        &mut s,
        "SELECT jobs.submit('SELECT pg_sleep(0.1)', run_as => 'hasty')",
    );
    assert_eq!(wait_run(&mut s, id).0, "succeeded");
}

/// `SET statement_timeout` inside a command applies to the statements after
/// it, each with a timeout of its own (PostgreSQL 13+, as `psql -c`); a
/// statement timeout shorter than the run's `timeout` ends the run
/// `failed`, not `timed_out` (finding 5).
#[test]
fn set_statement_timeout_in_a_command_applies_to_its_later_statements() {
    let (_c, mut s) = Cluster::with_app_db("tenancy-set-statement-timeout", "");
    let id: i64 = one(
        &mut s,
        "SELECT jobs.submit('SET statement_timeout = ''300ms''; SELECT pg_sleep(3)')",
    );
    let (status, code, message) = wait_run(&mut s, id);
    assert_eq!(
        (status.as_str(), code.as_deref(), message.as_deref()),
        (
            "failed",
            Some("57014"),
            Some("canceling statement due to statement timeout")
        )
    );
    let id: i64 = one(
        &mut s,
        "SELECT jobs.submit('SET statement_timeout = ''300ms''; SELECT pg_sleep(3)', timeout => '5 s')",
    );
    let (status, code, message) = wait_run(&mut s, id);
    assert_eq!(
        (status.as_str(), code.as_deref()),
        ("failed", Some("57014")),
        "{message:?}"
    );
    // Two statements of 0.6 s under a 1 s statement timeout: 1.2 s in all.
    let id: i64 = one(
        &mut s,
        "SELECT jobs.submit('SET statement_timeout = ''1s''; SELECT pg_sleep(0.6); SELECT pg_sleep(0.6)')",
    );
    let (status, code, message) = wait_run(&mut s, id);
    assert_eq!(status, "succeeded", "{code:?} {message:?}");
}

/// The run's own `timeout` is not the statement timeout: a command that
/// turns `statement_timeout` off is still stopped by it, and the run ends
/// `timed_out` with the same SQLSTATE and message as before.
#[test]
fn a_runs_timeout_holds_whatever_its_command_sets() {
    let (_c, mut s) = Cluster::with_app_db("tenancy-run-timeout", "");
    let id: i64 = one(
        &mut s,
        "SELECT jobs.submit('SET statement_timeout = 0; SELECT pg_sleep(30)', timeout => '1 s')",
    );
    let (status, code, message) = wait_run(&mut s, id);
    assert_eq!(
        (status.as_str(), code.as_deref(), message.as_deref()),
        (
            "timed_out",
            Some("57014"),
            Some("canceling statement due to statement timeout")
        )
    );
    let took: f64 = one(
        &mut s,
        &format!("SELECT extract(epoch FROM finished_at - started_at)::float8 FROM jobs.run WHERE id = {id}"),
    );
    assert!((0.9..10.0).contains(&took), "took {took} s");
}

/// The SQLSTATE and message of a statement that must fail.
fn refused(c: &mut Client, sql: &str) -> (String, String) {
    match c.batch_execute(sql) {
        Ok(()) => panic!("accepted: {sql}"),
        Err(e) => {
            let db = e.as_db_error().unwrap_or_else(|| panic!("{sql}: {e}"));
            (db.code().code().to_owned(), db.message().to_owned())
        }
    }
}

/// How many runs of `role` are queued.
fn queued(s: &mut Client, role: &str) -> i64 {
    one(
        s,
        &format!("SELECT count(*) FROM jobs.run WHERE owner = '{role}'::regrole AND status = 'queued'"),
    )
}

/// A role's queued runs are bounded by `pg_jobs.max_queued_runs_per_role`
/// (53400, the hint names the setting): at the bound `jobs.submit` and
/// `jobs.run_now` refuse, and admit again when runs leave the queue.
/// Superusers are not bounded, the role cannot lift its own bound, and a
/// superuser can set one per role.
#[test]
fn queued_runs_are_bounded_per_role() {
    let (c, mut s) = Cluster::with_app_db("tenancy-queued", "pg_jobs.max_queued_runs_per_role = 5");
    s.batch_execute(
        "CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN;
         ALTER ROLE bob SET pg_jobs.max_queued_runs_per_role = 2;",
    )
    .unwrap();
    let mut alice = c.connect_as("app", "alice");
    alice
        .batch_execute("SELECT jobs.schedule('yearly', '@yearly', 'SELECT 1')")
        .unwrap();
    // Queued an hour ahead: they stay queued.
    let later = "SELECT jobs.submit('SELECT 1', start_at => now() + interval '1 hour')";
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(one::<i64>(&mut alice, later));
    }
    assert_eq!(queued(&mut s, "alice"), 5);
    let (code, message) = refused(&mut alice, later);
    assert_eq!(
        (code.as_str(), message.as_str()),
        (
            "53400",
            "too many queued runs for role \"alice\" (5; pg_jobs.max_queued_runs_per_role is 5)"
        )
    );
    let hint = alice
        .batch_execute(later)
        .unwrap_err()
        .as_db_error()
        .and_then(|d| d.hint().map(str::to_owned));
    assert!(
        hint.as_deref()
            .is_some_and(|h| h.contains("pg_jobs.max_queued_runs_per_role")),
        "{hint:?}"
    );
    assert_eq!(refused(&mut alice, "SELECT jobs.run_now('yearly')").0, "53400");
    assert_eq!(queued(&mut s, "alice"), 5, "a refused call queued nothing");

    // The role cannot lift its own bound.
    assert_eq!(
        refused(&mut alice, "SET pg_jobs.max_queued_runs_per_role = 0").0,
        "42501"
    );

    // A run leaves the queue: the next submit is admitted again.
    alice
        .batch_execute(&format!("SELECT jobs.cancel({})", ids[0]))
        .unwrap();
    let id: i64 = one(&mut alice, "SELECT jobs.submit('SELECT 1')");
    assert_eq!(wait_run(&mut alice, id).0, "succeeded");

    // Superusers are not bounded, also when they submit as the role.
    for _ in 0..3 {
        one::<i64>(
            &mut s,
            "SELECT jobs.submit('SELECT 1', run_as => 'alice', start_at => now() + interval '1 hour')",
        );
    }
    assert_eq!(queued(&mut s, "alice"), 7);

    // A bound a superuser set for one role (ALTER ROLE ... SET).
    let mut bob = c.connect_as("app", "bob");
    one::<i64>(&mut bob, later);
    one::<i64>(&mut bob, later);
    assert_eq!(
        refused(&mut bob, later),
        (
            "53400".to_owned(),
            "too many queued runs for role \"bob\" (2; pg_jobs.max_queued_runs_per_role is 2)".to_owned()
        )
    );
}

/// `pg_jobs.max_jobs_per_role` and `pg_jobs.max_daemons_per_role` bound
/// new definitions exactly (53400); updating one by name is always
/// allowed, and removing one makes room. A daemon's `restart_delay` is at
/// least a second (22023).
#[test]
fn jobs_and_daemons_are_bounded_per_role() {
    let (c, mut s) = Cluster::with_app_db(
        "tenancy-definitions",
        "pg_jobs.max_jobs_per_role = 2\npg_jobs.max_daemons_per_role = 1",
    );
    s.batch_execute(
        "CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE ROLE ops LOGIN;
         GRANT alice, bob TO ops;",
    )
    .unwrap();
    let mut alice = c.connect_as("app", "alice");
    alice
        .batch_execute(
            "SELECT jobs.schedule('j1', '@yearly', 'SELECT 1');
             SELECT jobs.schedule('j2', '@yearly', 'SELECT 1');",
        )
        .unwrap();
    assert_eq!(
        refused(&mut alice, "SELECT jobs.schedule('j3', '@yearly', 'SELECT 1')"),
        (
            "53400".to_owned(),
            "too many jobs for role \"alice\" (2; pg_jobs.max_jobs_per_role is 2)".to_owned()
        )
    );
    // An update by name is not a new job.
    alice
        .batch_execute("SELECT jobs.schedule('j1', '@monthly', 'SELECT 2')")
        .unwrap();
    // Given to a role at its bound: refused too.
    let mut ops = c.connect_as("app", "ops");
    ops.batch_execute("SELECT jobs.schedule('theirs', '@yearly', 'SELECT 1', run_as => 'bob')")
        .unwrap();
    assert_eq!(
        refused(&mut ops, "SELECT jobs.alter_job('theirs', run_as => 'alice')").0,
        "53400"
    );
    // Room again after an unschedule.
    alice
        .batch_execute("SELECT jobs.unschedule('j2'); SELECT jobs.schedule('j3', '@yearly', 'SELECT 1')")
        .unwrap();
    // Superusers are not bounded.
    s.batch_execute(
        "SELECT jobs.schedule('s' || g, '@yearly', 'SELECT 1', run_as => 'alice') FROM generate_series(1, 3) g",
    )
    .unwrap();
    assert_eq!(
        one::<i64>(
            &mut s,
            "SELECT count(*) FROM jobs.job WHERE owner = 'alice'::regrole"
        ),
        5
    );

    // Daemons.
    alice
        .batch_execute("SELECT jobs.daemon('d1', 'SELECT pg_sleep(3600)')")
        .unwrap();
    assert_eq!(
        refused(&mut alice, "SELECT jobs.daemon('d2', 'SELECT pg_sleep(3600)')"),
        (
            "53400".to_owned(),
            "too many daemons for role \"alice\" (1; pg_jobs.max_daemons_per_role is 1)".to_owned()
        )
    );
    alice
        .batch_execute("SELECT jobs.daemon('d1', 'SELECT pg_sleep(1800)', restart_delay => '1 s')")
        .unwrap();
    let (code, message) = refused(
        &mut alice,
        "SELECT jobs.daemon('d1', 'SELECT pg_sleep(3600)', restart_delay => '500 ms')",
    );
    assert_eq!(
        (code.as_str(), message.as_str()),
        (
            "22023",
            "restart_delay must be between 1 second and 1 day, not 500 ms"
        )
    );
    alice
        .batch_execute("SELECT jobs.drop_daemon('d1'); SELECT jobs.daemon('d2', 'SELECT pg_sleep(3600)')")
        .unwrap();
    assert_eq!(
        one::<i64>(
            &mut s,
            "SELECT count(*) FROM jobs.daemon WHERE owner = 'alice'::regrole"
        ),
        1
    );
}

const LOOPER: &str = "
    CREATE TABLE tick (who text, at timestamptz DEFAULT clock_timestamp());
    CREATE PROCEDURE looper(tag text) LANGUAGE plpgsql AS $$
    BEGIN
        LOOP
            INSERT INTO tick (who) VALUES (tag);
            COMMIT;
            PERFORM pg_sleep(0.1);
        END LOOP;
    END $$;";

fn daemon_state(c: &mut Client, name: &str) -> String {
    c.query_one("SELECT state FROM jobs.daemon_status WHERE name = $1", &[&name])
        .unwrap()
        .get(0)
}

fn wait_daemon_state(c: &mut Client, name: &str, state: &str) -> std::time::Duration {
    wait_for(&format!("daemon {name} {state}"), DEADLINE, || {
        (daemon_state(c, name) == state).then_some(())
    })
    .1
}

/// `pg_jobs.max_daemons` caps daemon processes cluster-wide: with it at 1,
/// a daemon of another database waits as `no_daemon_slot` (and runs
/// nothing) while one runs, and starts as soon as that one is stopped —
/// woken by its exit, not by its own periodic recheck.
#[test]
fn max_daemons_caps_daemon_processes_cluster_wide() {
    let (c, mut s) = Cluster::with_app_db("tenancy-max-daemons", "pg_jobs.max_daemons = 1");
    c.connect("postgres")
        .batch_execute("CREATE DATABASE app2")
        .unwrap();
    let mut s2 = c.connect("app2");
    s2.batch_execute("CREATE EXTENSION pg_jobs").unwrap();
    s.batch_execute(LOOPER).unwrap();
    s2.batch_execute(LOOPER).unwrap();

    s.batch_execute("SELECT jobs.daemon('first', 'CALL looper(''first'')')")
        .unwrap();
    wait_daemon_state(&mut s, "first", "running");
    s2.batch_execute("SELECT jobs.daemon('second', 'CALL looper(''second'')')")
        .unwrap();
    wait_daemon_state(&mut s2, "second", "no_daemon_slot");
    assert_eq!(
        one::<i64>(&mut s, "SELECT count(*) FROM jobs.workers WHERE kind = 'daemon'"),
        1
    );
    assert_eq!(
        one::<i64>(&mut s2, "SELECT count(*) FROM tick WHERE who = 'second'"),
        0
    );

    let t0 = std::time::Instant::now();
    s.batch_execute("SELECT jobs.stop_daemon('first')").unwrap();
    wait_daemon_state(&mut s2, "second", "running");
    let took = t0.elapsed();
    println!("a daemon waiting for a daemon slot started {took:?} after the other was stopped");
    assert!(
        took < std::time::Duration::from_secs(5),
        "started only after {took:?}: not woken by the other's exit (the recheck is every 10 s)"
    );
    wait_for("the second daemon ticking", DEADLINE, || {
        (one::<i64>(&mut s2, "SELECT count(*) FROM tick WHERE who = 'second'") > 0).then_some(())
    });
    assert_eq!(daemon_state(&mut s, "first"), "stopped");
    // The first, started again, waits its turn in its own database.
    s.batch_execute("SELECT jobs.start_daemon('first')").unwrap();
    wait_daemon_state(&mut s, "first", "no_daemon_slot");
    let waits = c
        .log()
        .matches("pg_jobs: daemon \"second\" waits for a daemon slot")
        .count();
    assert_eq!(waits, 1, "logged once per wait, not per retry");
}

/// A DBA restricts pg_jobs to a group role with PostgreSQL's own grants:
/// `REVOKE USAGE ON SCHEMA jobs FROM PUBLIC` and `GRANT USAGE … TO` the
/// group. A non-member is refused (42501), a member's submit runs, and a
/// job a non-member scheduled before the revoke keeps running as its
/// owner: pg_jobs' own workers never need the owner's USAGE (the record of
/// a run in its own transaction is written as pg_jobs). Daemons can be
/// kept to a narrower group by revoking EXECUTE on `jobs._daemon`.
#[test]
fn a_dba_restricts_pg_jobs_to_a_group_role() {
    let (c, mut s) = Cluster::with_app_db("tenancy-grants", "");
    s.batch_execute(
        "CREATE ROLE jobs_users NOLOGIN; CREATE ROLE daemon_users NOLOGIN;
         CREATE ROLE member LOGIN; CREATE ROLE outsider LOGIN;
         GRANT jobs_users TO member;
         CREATE TABLE tick (who text DEFAULT current_user, at timestamptz DEFAULT clock_timestamp());
         GRANT INSERT ON tick TO member, outsider;",
    )
    .unwrap();
    let mut outsider = c.connect_as("app", "outsider");
    outsider
        .batch_execute("SELECT jobs.schedule('beat', '1 second', 'INSERT INTO tick DEFAULT VALUES')")
        .unwrap();
    let beats = |s: &mut Client| -> i64 { one(s, "SELECT count(*) FROM tick WHERE who = 'outsider'") };
    wait_for("the outsider's job running", DEADLINE, || {
        (beats(&mut s) > 0).then_some(())
    });

    s.batch_execute(
        "REVOKE USAGE ON SCHEMA jobs FROM PUBLIC;
         GRANT USAGE ON SCHEMA jobs TO jobs_users;
         REVOKE EXECUTE ON FUNCTION jobs._daemon(text, text, text, oid, text, bigint, bigint) FROM PUBLIC;
         GRANT EXECUTE ON FUNCTION jobs._daemon(text, text, text, oid, text, bigint, bigint) TO daemon_users;",
    )
    .unwrap();

    // A non-member: nothing of pg_jobs, with PostgreSQL's own error.
    let mut outsider = c.connect_as("app", "outsider");
    for sql in [
        "SELECT jobs.submit('INSERT INTO tick DEFAULT VALUES')",
        "SELECT jobs.schedule('more', '1 second', 'INSERT INTO tick DEFAULT VALUES')",
        "SELECT jobs.daemon('d', 'SELECT pg_sleep(3600)')",
        "SELECT * FROM jobs.job_status",
    ] {
        assert_eq!(refused(&mut outsider, sql).0, "42501", "{sql}");
    }

    // A member: submits run.
    let mut member = c.connect_as("app", "member");
    let id: i64 = one(
        &mut member,
        "SELECT jobs.submit('INSERT INTO tick DEFAULT VALUES')",
    );
    assert_eq!(wait_run(&mut member, id).0, "succeeded");
    // ... but only members of daemon_users declare daemons.
    assert_eq!(
        refused(&mut member, "SELECT jobs.daemon('d', 'SELECT pg_sleep(3600)')").0,
        "42501"
    );

    // The outsider's job, scheduled before, keeps running and succeeding.
    let n = beats(&mut s);
    wait_for("two more runs of the outsider's job", DEADLINE, || {
        (beats(&mut s) >= n + 2).then_some(())
    });
    let failed: i64 = one(
        &mut s,
        "SELECT count(*) FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id
          WHERE j.name = 'beat' AND r.status IN ('failed', 'timed_out', 'crashed', 'cancelled')",
    );
    assert_eq!(failed, 0, "runs of the outsider's job failed after the revoke");
}

/// A DBA's `REVOKE … ON SCHEMA jobs` must survive `ALTER EXTENSION pg_jobs
/// UPDATE`: no upgrade script grants anything on the schema again.
#[test]
fn no_upgrade_script_grants_on_the_schema() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../pg_jobs/sql");
    let mut scripts = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if !(name.starts_with("pg_jobs--") && name.ends_with(".sql") && name.matches("--").count() == 2) {
            continue;
        }
        scripts += 1;
        let text = std::fs::read_to_string(&path).unwrap().to_uppercase();
        let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            !text.contains("ON SCHEMA JOBS"),
            "{name} grants or revokes on schema jobs: a DBA's restriction would be undone by ALTER EXTENSION UPDATE"
        );
    }
    assert!(
        scripts >= 3,
        "upgrade scripts found in {}: {scripts}",
        dir.display()
    );
}

/// The SQLSTATE and DETAIL of a statement that must fail.
fn refused_with_detail(c: &mut Client, sql: &str) -> (String, String) {
    match c.batch_execute(sql) {
        Ok(()) => panic!("allowed: {sql}"),
        Err(e) => {
            let db = e
                .as_db_error()
                .unwrap_or_else(|| panic!("{sql}: not a server error: {e}"));
            (
                db.code().code().to_owned(),
                db.detail().unwrap_or_default().to_owned(),
            )
        }
    }
}

/// The names of the ownership anchors role `role` has in the connected
/// database (shell types it owns in schema jobs).
fn anchors(c: &mut Client, role: &str) -> Vec<String> {
    c.query(
        "SELECT t.typname::text FROM pg_type t JOIN pg_roles r ON r.oid = t.typowner
          WHERE t.typnamespace = 'jobs'::regnamespace AND t.typtype = 'p' AND NOT t.typisdefined
            AND r.rolname = $1 ORDER BY 1",
        &[&role],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Wait until the superuser's one-second `probe` job has succeeded twice
/// more: by then the scheduler has made two passes, and anything that was
/// to run every second would have.
fn probe_ticks_twice(s: &mut Client) {
    let sql = "SELECT count(*) FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id
                WHERE j.name = 'probe' AND r.status = 'succeeded'";
    let base: i64 = one(s, sql);
    wait_for("two more ticks of the probe job", DEADLINE, || {
        (one::<i64>(s, sql) >= base + 2).then_some(())
    });
}

/// A role that owns jobs or daemons cannot be dropped out from under them
/// (finding 9; the class of pg_cron #399): each owner has an ownership
/// anchor, a shell type it owns, so PostgreSQL's own DROP ROLE refuses
/// (2BP01), also when run from another database, and succeeds once the
/// role owns nothing. Before the fix DROP ROLE succeeded and left the jobs
/// orphaned.
#[test]
fn drop_role_is_refused_while_the_role_owns_jobs_or_daemons() {
    let (c, mut s) = Cluster::with_app_db("tenancy-drop-role", "");
    s.batch_execute(
        "CREATE ROLE alice LOGIN; CREATE ROLE dora LOGIN; CREATE ROLE bob LOGIN;
         CREATE ROLE \"A role whose name is long enough to be cut in its anchor name\" LOGIN;",
    )
    .unwrap();
    let mut alice = c.connect_as("app", "alice");
    alice
        .batch_execute(
            "SELECT jobs.schedule('a1', '@yearly', 'SELECT 1');
             SELECT jobs.schedule('a2', '@yearly', 'SELECT 1');",
        )
        .unwrap();
    c.connect_as("app", "dora")
        .batch_execute("SELECT jobs.daemon('d', 'SELECT pg_sleep(3600)')")
        .unwrap();
    assert_eq!(
        anchors(&mut s, "alice"),
        ["jobs of alice"],
        "one anchor for two jobs"
    );
    assert_eq!(anchors(&mut s, "dora"), ["jobs of dora"]);
    assert!(anchors(&mut s, "bob").is_empty(), "bob owns nothing");
    let members: i64 = one(
        &mut s,
        "SELECT count(*) FROM pg_depend d JOIN pg_type t ON t.oid = d.objid
          WHERE d.classid = 'pg_type'::regclass AND t.typnamespace = 'jobs'::regnamespace
            AND t.typtype = 'p' AND d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'",
    );
    assert_eq!(members, 0, "anchors are not members of the extension");

    // In the database of the jobs: PostgreSQL names the anchor.
    let (code, detail) = refused_with_detail(&mut s, "DROP ROLE alice");
    assert_eq!(code, "2BP01", "{detail}");
    assert!(
        detail.contains("owner of type jobs.\"jobs of alice\""),
        "{detail}"
    );
    // From another database: it counts the objects in the jobs' database.
    let mut other = c.connect("postgres");
    for role in ["alice", "dora"] {
        let (code, detail) = refused_with_detail(&mut other, &format!("DROP ROLE {role}"));
        assert_eq!(code, "2BP01", "DROP ROLE {role}: {detail}");
        assert!(detail.contains("1 object in database app"), "{detail}");
    }

    // Unscheduling one of its jobs leaves the anchor (a2 is left), and so
    // does a rolled-back unschedule of the last one.
    alice.batch_execute("SELECT jobs.unschedule('a1')").unwrap();
    assert_eq!(
        refused_with_detail(&mut other, "DROP ROLE alice").0,
        "2BP01",
        "a2 is left"
    );
    alice
        .batch_execute("BEGIN; SELECT jobs.unschedule('a2'); ROLLBACK")
        .unwrap();
    assert_eq!(anchors(&mut s, "alice"), ["jobs of alice"]);
    assert_eq!(refused_with_detail(&mut other, "DROP ROLE alice").0, "2BP01");

    // Moving a job to another role moves the need for an anchor.
    s.batch_execute("SELECT jobs.alter_job('a2', run_as => 'bob')")
        .unwrap();
    assert!(anchors(&mut s, "alice").is_empty());
    assert_eq!(anchors(&mut s, "bob"), ["jobs of bob"]);
    assert_eq!(refused_with_detail(&mut other, "DROP ROLE bob").0, "2BP01");
    // alice owns nothing now: she can go (from another database, too).
    drop(alice);
    other.batch_execute("DROP ROLE alice").unwrap();

    // The daemon's owner, once its daemon is dropped.
    s.batch_execute("SET ROLE dora; SELECT jobs.drop_daemon('d'); RESET ROLE")
        .unwrap();
    assert!(anchors(&mut s, "dora").is_empty());
    other.batch_execute("DROP ROLE dora").unwrap();
    s.batch_execute("SET ROLE bob; SELECT jobs.unschedule('a2'); RESET ROLE")
        .unwrap();
    other.batch_execute("DROP ROLE bob").unwrap();

    // A role name too long for "jobs of <name>" is cut, not refused.
    let long = "A role whose name is long enough to be cut in its anchor name";
    s.batch_execute(&format!(
        "SELECT jobs.schedule('l', '@yearly', 'SELECT 1', run_as => '\"{long}\"')"
    ))
    .unwrap();
    let names = anchors(&mut s, long);
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(
        names[0].starts_with("jobs of A role whose name") && names[0].len() <= 63,
        "{names:?}"
    );
    assert_eq!(
        refused_with_detail(&mut other, &format!("DROP ROLE \"{long}\"")).0,
        "2BP01"
    );

    // Superuser jobs need no anchor (the bootstrap superuser cannot be dropped).
    s.batch_execute("SELECT jobs.schedule('su', '@yearly', 'SELECT 1')")
        .unwrap();
    assert!(anchors(&mut s, "postgres").is_empty());
}

/// REASSIGN OWNED BY a TO b gives b a's jobs, daemons and queued runs in
/// the database, and they run as b; PostgreSQL moves a's anchor itself, and
/// b keeps one. A rolled-back REASSIGN changes nothing; one that would give
/// b two jobs of one name fails and changes nothing (finding 9).
#[test]
fn reassign_owned_moves_jobs_daemons_and_queued_runs() {
    let (c, mut s) = Cluster::with_app_db("tenancy-reassign", "");
    s.batch_execute(
        "CREATE ROLE a LOGIN; CREATE ROLE b LOGIN; CREATE ROLE c LOGIN;
         CREATE TABLE public.seen (id bigserial, who text DEFAULT current_user, what text);
         GRANT INSERT, SELECT ON public.seen TO PUBLIC;
         GRANT USAGE ON SEQUENCE public.seen_id_seq TO PUBLIC;",
    )
    .unwrap();
    let mut a = c.connect_as("app", "a");
    a.batch_execute(
        "SELECT jobs.schedule('tick', '1 second', 'INSERT INTO public.seen (what) VALUES (''tick'')');
         SELECT jobs.daemon('dd', 'INSERT INTO public.seen (what) VALUES (''daemon'')', restart_delay => '1 s');",
    )
    .unwrap();
    let queued: i64 = one(
        &mut a,
        "SELECT jobs.submit('INSERT INTO public.seen (what) VALUES (''later'')', start_at => now() + interval '1 hour')",
    );
    c.connect_as("app", "b")
        .batch_execute("SELECT jobs.schedule('own', '@yearly', 'SELECT 1')")
        .unwrap();
    let seen = |s: &mut Client, who: &str, what: &str| -> i64 {
        s.query_one(
            "SELECT count(*) FROM public.seen WHERE who = $1 AND what = $2",
            &[&who, &what],
        )
        .unwrap()
        .get(0)
    };
    wait_for("a's job and daemon running as a", DEADLINE, || {
        (seen(&mut s, "a", "tick") > 0 && seen(&mut s, "a", "daemon") > 0).then_some(())
    });
    let owners = |s: &mut Client| -> String {
        one(
            s,
            &format!(
                "SELECT concat_ws(' ',
                   (SELECT owner::text FROM jobs.job WHERE name = 'tick'),
                   (SELECT owner::text FROM jobs.daemon WHERE name = 'dd'),
                   (SELECT owner::text FROM jobs.run WHERE id = {queued}))"
            ),
        )
    };
    assert_eq!(owners(&mut s), "a a a");

    // Rolled back, whole or to a savepoint: nothing moves.
    s.batch_execute("BEGIN; REASSIGN OWNED BY a TO b; ROLLBACK")
        .unwrap();
    s.batch_execute("BEGIN; SAVEPOINT x; REASSIGN OWNED BY a TO b; ROLLBACK TO x; COMMIT")
        .unwrap();
    assert_eq!(
        owners(&mut s),
        "a a a",
        "a rolled-back REASSIGN OWNED moved something"
    );
    assert_eq!(anchors(&mut s, "a"), ["jobs of a"]);
    assert_eq!(anchors(&mut s, "b"), ["jobs of b"]);
    assert_eq!(refused_with_detail(&mut s, "DROP ROLE a").0, "2BP01");
    let ticks = seen(&mut s, "a", "tick");
    wait_for("a's job still running as a", DEADLINE, || {
        (seen(&mut s, "a", "tick") > ticks).then_some(())
    });

    // A name b already has: refused, nothing moves.
    c.connect_as("app", "c")
        .batch_execute("SELECT jobs.schedule('own', '@yearly', 'SELECT 2')")
        .unwrap();
    let (code, _) = refused_with_detail(&mut s, "REASSIGN OWNED BY c TO b");
    assert_eq!(code, "42710");
    let c_owns: i64 = one(&mut s, "SELECT count(*) FROM jobs.job WHERE owner::text = 'c'");
    assert_eq!(c_owns, 1, "a refused REASSIGN OWNED moved c's job");
    assert_eq!(anchors(&mut s, "c"), ["jobs of c"]);

    // Committed: everything of a's here is b's, and runs as b.
    s.batch_execute("REASSIGN OWNED BY a TO b").unwrap();
    assert_eq!(owners(&mut s), "b b b");
    assert!(anchors(&mut s, "a").is_empty(), "a keeps an anchor");
    assert_eq!(anchors(&mut s, "b"), ["jobs of b"], "b has one anchor");
    wait_for("the job and the daemon running as b", DEADLINE, || {
        (seen(&mut s, "b", "tick") > 0 && seen(&mut s, "b", "daemon") > 0).then_some(())
    });
    // a owns nothing here any more: DROP OWNED finds nothing of pg_jobs',
    // and the role can go.
    s.batch_execute("DROP OWNED BY a").unwrap();
    assert_eq!(owners(&mut s), "b b b", "DROP OWNED BY a touched b's");
    drop(a);
    s.batch_execute("DROP ROLE a").unwrap();
    assert_eq!(refused_with_detail(&mut s, "DROP ROLE b").0, "2BP01");
    let a_runs: i64 = one(
        &mut s,
        "SELECT count(*) FROM jobs.run WHERE owner::oid NOT IN (SELECT oid FROM pg_roles)
            AND status = 'queued'",
    );
    assert_eq!(a_runs, 0, "queued runs left to a dropped role");
}

/// DROP OWNED BY a removes a's jobs and daemons in the database (the
/// daemon stops), cancels its queued runs, and PostgreSQL drops its anchor:
/// a can then be dropped. A rolled-back DROP OWNED changes nothing: the
/// daemon's process is the same one (finding 9).
#[test]
fn drop_owned_removes_jobs_stops_daemons_and_cancels_queued_runs() {
    let (c, mut s) = Cluster::with_app_db("tenancy-drop-owned", "");
    s.batch_execute(
        "CREATE ROLE a LOGIN;
         CREATE TABLE public.seen (who text DEFAULT current_user, what text);
         GRANT INSERT, SELECT ON public.seen TO PUBLIC;
         SELECT jobs.schedule('probe', '1 second', 'SELECT 1');",
    )
    .unwrap();
    let mut a = c.connect_as("app", "a");
    a.batch_execute(
        "SELECT jobs.schedule('tick', '1 second', 'INSERT INTO public.seen (what) VALUES (''tick'')');
         SELECT jobs.daemon('sleeper', 'SELECT pg_sleep(3600)');",
    )
    .unwrap();
    let queued: i64 = one(
        &mut a,
        "SELECT jobs.submit('INSERT INTO public.seen (what) VALUES (''later'')', start_at => now() + interval '1 hour')",
    );
    let ticks = |s: &mut Client| -> i64 { one(s, "SELECT count(*) FROM public.seen WHERE what = 'tick'") };
    let (pid, _) = wait_for("a's daemon running and its job ticking", DEADLINE, || {
        let pid: Option<i32> = one(
            &mut s,
            "SELECT (SELECT pid FROM jobs.daemon_status WHERE name = 'sleeper' AND state = 'running')",
        );
        pid.filter(|_| ticks(&mut s) > 0)
    });
    let what_a_has = |s: &mut Client| -> String {
        one(
            s,
            &format!(
                "SELECT concat_ws(' ',
                   (SELECT count(*) FROM jobs.job WHERE owner::text = 'a'),
                   (SELECT count(*) FROM jobs.daemon WHERE owner::text = 'a'),
                   (SELECT status FROM jobs.run WHERE id = {queued}))"
            ),
        )
    };
    assert_eq!(what_a_has(&mut s), "1 1 queued");

    // Rolled back, whole or to a savepoint: nothing changes, the daemon
    // goes on in the same process.
    s.batch_execute("BEGIN; DROP OWNED BY a; ROLLBACK").unwrap();
    s.batch_execute("BEGIN; SAVEPOINT x; DROP OWNED BY a; ROLLBACK TO x; COMMIT")
        .unwrap();
    probe_ticks_twice(&mut s);
    assert_eq!(
        what_a_has(&mut s),
        "1 1 queued",
        "a rolled-back DROP OWNED changed something"
    );
    assert_eq!(anchors(&mut s, "a"), ["jobs of a"]);
    let still: Option<i32> = one(
        &mut s,
        "SELECT (SELECT pid FROM jobs.daemon_status WHERE name = 'sleeper' AND state = 'running')",
    );
    assert_eq!(
        still,
        Some(pid),
        "a rolled-back DROP OWNED restarted or stopped the daemon"
    );
    assert_eq!(refused_with_detail(&mut s, "DROP ROLE a").0, "2BP01");

    // Committed.
    s.batch_execute("DROP OWNED BY a").unwrap();
    assert_eq!(what_a_has(&mut s), "0 0 cancelled");
    let (code, message): (Option<String>, Option<String>) = {
        let r = s
            .query_one("SELECT sqlstate, message FROM jobs.run WHERE id = $1", &[&queued])
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(code.as_deref(), Some("57014"));
    assert_eq!(
        message.as_deref(),
        Some("cancelled by DROP OWNED before it started")
    );
    assert!(anchors(&mut s, "a").is_empty(), "PostgreSQL dropped the anchor");
    wait_for("the daemon's process gone", DEADLINE, || {
        let alive: i64 = one(
            &mut s,
            &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"),
        );
        (alive == 0).then_some(())
    });
    // The job does not fire again: once a's runs in flight have ended (and
    // any the scheduler was queueing at that very moment, as with
    // jobs.unschedule), two scheduler passes add no tick.
    wait_for("a's runs in flight finished", DEADLINE, || {
        let n: i64 = one(
            &mut s,
            "SELECT count(*) FROM jobs.run WHERE owner::text = 'a' AND status IN ('queued', 'starting', 'running')",
        );
        (n == 0).then_some(())
    });
    let before = ticks(&mut s);
    probe_ticks_twice(&mut s);
    assert_eq!(ticks(&mut s), before, "the dropped job fired again");
    let left: i64 = one(
        &mut s,
        "SELECT count(*) FROM jobs.daemon_status WHERE name = 'sleeper'",
    );
    assert_eq!(left, 0);
    drop(a);
    s.batch_execute("DROP ROLE a").unwrap();
}
