//! What one role may hold and use (issue 13, fair sharing): bounds on
//! queued runs, jobs and daemons a superuser controls, the cluster-wide
//! cap on daemon processes, and restricting pg_jobs to a group role.

use pg_jobs_itest::{one, wait_for, wait_run, Cluster, DEADLINE};
use postgres::Client;

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
