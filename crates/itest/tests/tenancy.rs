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
