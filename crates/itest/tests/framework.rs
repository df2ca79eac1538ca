//! The worker framework against real clusters: launcher, schedulers,
//! executors, the registry, and `jobs.submit`, across terminations,
//! crashes, DROP DATABASE and reloads.

use pg_jobs_itest::{one, pg_major, wait_for, wait_run, worker_pids, Cluster, DEADLINE};
use std::time::{Duration, Instant};

fn cluster_with_dbs(name: &str, dbs: &[&str]) -> Cluster {
    let c = Cluster::start(name, "");
    let mut admin = c.connect("postgres");
    for db in dbs {
        admin.batch_execute(&format!("CREATE DATABASE {db}")).unwrap();
        c.connect(db).batch_execute("CREATE EXTENSION pg_jobs").unwrap();
    }
    c
}

/// The clusters run the PostgreSQL the run selected (`PG_CONFIG`, as
/// `make test PG=…` exports it), not whatever is installed first.
#[test]
fn clusters_run_the_selected_postgres() {
    let c = Cluster::start("version", "");
    let num: String = one(&mut c.connect("postgres"), "SHOW server_version_num");
    assert_eq!(
        num.parse::<u32>().unwrap() / 10_000,
        pg_major(),
        "server_version_num {num}"
    );
}

#[test]
fn one_scheduler_per_database_with_the_extension() {
    let c = cluster_with_dbs("sched", &["a", "b"]);
    let mut a = c.connect("a");
    wait_for("schedulers in a and b", DEADLINE, || {
        let dbs: Vec<String> = a
            .query(
                "SELECT database FROM jobs.workers WHERE kind = 'scheduler' ORDER BY 1",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        (dbs == ["a", "b"]).then_some(())
    });
    assert_eq!(
        worker_pids(&mut a, "launcher", None).len(),
        1,
        "exactly one launcher"
    );

    // A third database: its scheduler appears as soon as CREATE EXTENSION commits.
    c.connect("postgres").batch_execute("CREATE DATABASE c").unwrap();
    let t0 = Instant::now();
    c.connect("c").batch_execute("CREATE EXTENSION pg_jobs").unwrap();
    wait_for("scheduler of c", DEADLINE, || {
        (!worker_pids(&mut a, "scheduler", Some("c")).is_empty()).then_some(())
    });
    let took = t0.elapsed();
    println!("scheduler for a new CREATE EXTENSION appeared after {took:?}");
    assert!(
        took < Duration::from_secs(2),
        "scheduler took {took:?} (limit 2 s)"
    );

    // The database without the extension has no scheduler.
    assert!(worker_pids(&mut a, "scheduler", Some("postgres")).is_empty());

    // DROP EXTENSION stops that database's scheduler.
    c.connect("b").batch_execute("DROP EXTENSION pg_jobs").unwrap();
    wait_for("scheduler of b to exit", DEADLINE, || {
        worker_pids(&mut a, "scheduler", Some("b"))
            .is_empty()
            .then_some(())
    });
    assert_eq!(
        worker_pids(&mut a, "scheduler", None).len(),
        2,
        "a and c keep theirs"
    );
}

#[test]
fn submitted_commands_run_as_the_submitter_and_record_outcomes() {
    let c = cluster_with_dbs("submit", &["app"]);
    let mut admin = c.connect("app");
    admin
        .batch_execute(
            "CREATE ROLE alice LOGIN;
             CREATE TABLE seen (who text, note text);
             GRANT INSERT, SELECT ON seen TO alice;",
        )
        .unwrap();
    let mut alice = c.connect_as("app", "alice");

    // Runs as the submitting role.
    let id: i64 = one(
        &mut alice,
        "SELECT jobs.submit('INSERT INTO seen VALUES (current_user, ''hello'')')",
    );
    let (status, _, message) = wait_run(&mut alice, id);
    assert_eq!(status, "succeeded", "message: {message:?}");
    let who: String = one(&mut admin, "SELECT who FROM seen WHERE note = 'hello'");
    assert_eq!(who, "alice");
    let row = alice
        .query_one(
            "SELECT owner::text, pid, started_at <= finished_at FROM jobs.run WHERE id = $1",
            &[&id],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "alice");
    assert!(row.get::<_, Option<i32>>(1).is_some(), "pid recorded");
    assert!(row.get::<_, bool>(2));

    // ...and only with alice's privileges.
    admin.batch_execute("CREATE TABLE secret (x int)").unwrap();
    let id: i64 = one(&mut alice, "SELECT jobs.submit('SELECT * FROM secret')");
    let (status, code, message) = wait_run(&mut alice, id);
    assert_eq!(
        (status.as_str(), code.as_deref()),
        ("failed", Some("42501")),
        "{message:?}"
    );
    assert!(message.unwrap().contains("permission denied"));

    // A failing command records SQLSTATE and message.
    let id: i64 = one(&mut alice, "SELECT jobs.submit('SELECT 1/0')");
    let (status, code, message) = wait_run(&mut alice, id);
    assert_eq!(status, "failed");
    assert_eq!(code.as_deref(), Some("22012"));
    assert_eq!(message.as_deref(), Some("division by zero"));

    // Several statements are one transaction, as with psql -c: a failure
    // in the second undoes the first.
    let id: i64 = one(
        &mut alice,
        "SELECT jobs.submit('INSERT INTO seen VALUES (''x'', ''multi''); SELECT 1/0')",
    );
    assert_eq!(wait_run(&mut alice, id).0, "failed");
    assert_eq!(
        one::<i64>(&mut admin, "SELECT count(*) FROM seen WHERE note = 'multi'"),
        0
    );

    // Alice sees only her runs; another role sees none of them.
    admin.batch_execute("CREATE ROLE bob LOGIN").unwrap();
    let mut bob = c.connect_as("app", "bob");
    assert_eq!(one::<i64>(&mut bob, "SELECT count(*) FROM jobs.run"), 0);
    assert!(
        bob.batch_execute("UPDATE jobs.run SET status = 'queued'")
            .is_err(),
        "bob cannot write history"
    );
}

#[test]
fn a_rolled_back_submit_never_runs() {
    let c = cluster_with_dbs("rollback", &["app"]);
    let mut s = c.connect("app");
    s.batch_execute("CREATE TABLE marks (m text)").unwrap();

    let mut tx = s.transaction().unwrap();
    let lost: i64 = tx
        .query_one(
            "SELECT jobs.submit('INSERT INTO marks VALUES (''rolled back'')')",
            &[],
        )
        .unwrap()
        .get(0);
    tx.rollback().unwrap();

    let mut tx = s.transaction().unwrap();
    tx.batch_execute("SAVEPOINT sp").unwrap();
    let lost_sp: i64 = tx
        .query_one(
            "SELECT jobs.submit('INSERT INTO marks VALUES (''savepoint'')')",
            &[],
        )
        .unwrap()
        .get(0);
    tx.batch_execute("ROLLBACK TO SAVEPOINT sp").unwrap();
    let kept: i64 = tx
        .query_one("SELECT jobs.submit('INSERT INTO marks VALUES (''kept'')')", &[])
        .unwrap()
        .get(0);
    tx.commit().unwrap();

    // Runs execute in submission order, so once `kept` is done the others
    // would have run too, had they existed.
    assert_eq!(wait_run(&mut s, kept).0, "succeeded");
    let marks: Vec<String> = s
        .query("SELECT m FROM marks ORDER BY m", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(marks, ["kept"]);
    let rows: i64 = s
        .query_one(
            "SELECT count(*) FROM jobs.run WHERE id IN ($1, $2)",
            &[&lost, &lost_sp],
        )
        .unwrap()
        .get(0);
    assert_eq!(rows, 0, "rolled-back runs leave no row");
}

#[test]
fn commands_run_like_psql_would() {
    let c = cluster_with_dbs("psqlish", &["app"]);
    let mut s = c.connect("app");
    s.batch_execute(
        "CREATE TABLE v (x int); INSERT INTO v SELECT generate_series(1, 1000); DELETE FROM v;
         CREATE PROCEDURE twice() LANGUAGE plpgsql AS $$
           BEGIN INSERT INTO v VALUES (1); COMMIT; INSERT INTO v VALUES (2); ROLLBACK; END $$;",
    )
    .unwrap();

    // VACUUM refuses a transaction block: as a single statement it runs top-level.
    let id: i64 = one(&mut s, "SELECT jobs.submit('VACUUM (ANALYZE) v')");
    let (status, _, message) = wait_run(&mut s, id);
    assert_eq!(status, "succeeded", "{message:?}");
    let vacuumed: i64 = one(
        &mut s,
        "SELECT vacuum_count + analyze_count FROM pg_stat_user_tables WHERE relname = 'v'",
    );
    assert!(vacuumed >= 2);

    // ...and, as with psql -c, not inside a multi-statement string.
    let id: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1; VACUUM v')");
    let (status, code, _) = wait_run(&mut s, id);
    assert_eq!((status.as_str(), code.as_deref()), ("failed", Some("25001")));

    // A procedure that commits needs a top-level, non-atomic CALL.
    let id: i64 = one(&mut s, "SELECT jobs.submit('CALL twice()')");
    let (status, _, message) = wait_run(&mut s, id);
    assert_eq!(status, "succeeded", "{message:?}");
    assert_eq!(one::<i64>(&mut s, "SELECT count(*) FROM v"), 1);

    // Explicit transaction blocks in the string work; one left open fails clearly.
    let id: i64 = one(
        &mut s,
        "SELECT jobs.submit('BEGIN; INSERT INTO v VALUES (3); COMMIT; INSERT INTO v VALUES (4)')",
    );
    assert_eq!(wait_run(&mut s, id).0, "succeeded");
    let id: i64 = one(&mut s, "SELECT jobs.submit('BEGIN; INSERT INTO v VALUES (5)')");
    let (status, code, _) = wait_run(&mut s, id);
    assert_eq!((status.as_str(), code.as_deref()), ("failed", Some("25001")));
    let xs: Vec<i32> = s
        .query("SELECT x FROM v ORDER BY x", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(xs, [1, 3, 4]);

    // Bad input is refused at submit time with its SQLSTATE, and nothing is queued.
    let err = s.query_one("SELECT jobs.submit('SELEC 1')", &[]).unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("42601"), "{err}");
    let err = s.query_one("SELECT jobs.submit('')", &[]).unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("22023"), "{err}");
}

#[test]
fn an_owner_who_cannot_log_in_fails_the_run_clearly() {
    let c = cluster_with_dbs("nologin", &["app"]);
    let mut s = c.connect("app");
    s.batch_execute("CREATE ROLE carol NOLOGIN; GRANT carol TO postgres")
        .unwrap();
    s.batch_execute("SET ROLE carol").unwrap();
    let id: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1')");
    s.batch_execute("RESET ROLE").unwrap();
    let (status, code, message) = wait_run(&mut s, id);
    assert_eq!((status.as_str(), code.as_deref()), ("failed", Some("28000")));
    assert!(message.unwrap().contains("not permitted to log in"));
    // The scheduler is still there and still works.
    let id: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1')");
    assert_eq!(wait_run(&mut s, id).0, "succeeded");
}

#[test]
fn a_terminated_scheduler_comes_back() {
    let c = cluster_with_dbs("term", &["app"]);
    let mut s = c.connect("app");
    let (old, _) = wait_for("scheduler", DEADLINE, || {
        worker_pids(&mut s, "scheduler", Some("app")).first().copied()
    });
    let t0 = Instant::now();
    assert!(one::<bool>(
        &mut s,
        &format!("SELECT pg_terminate_backend({old})")
    ));
    let (new, _) = wait_for("a new scheduler", DEADLINE, || {
        worker_pids(&mut s, "scheduler", Some("app"))
            .into_iter()
            .find(|p| *p != old)
    });
    let took = t0.elapsed();
    println!("scheduler {old} terminated, {new} back after {took:?}");
    assert!(took < Duration::from_secs(2), "took {took:?} (limit 2 s)");
    let id: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1')");
    assert_eq!(wait_run(&mut s, id).0, "succeeded");

    // The launcher itself is restarted by the postmaster and adopts the
    // running scheduler instead of starting a second one.
    let launcher = worker_pids(&mut s, "launcher", None)[0];
    assert!(one::<bool>(
        &mut s,
        &format!("SELECT pg_terminate_backend({launcher})")
    ));
    wait_for("a new launcher", DEADLINE, || {
        worker_pids(&mut s, "launcher", None)
            .into_iter()
            .find(|p| *p != launcher)
    });
    let id: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1')");
    assert_eq!(wait_run(&mut s, id).0, "succeeded");
    assert_eq!(
        worker_pids(&mut s, "scheduler", Some("app")),
        vec![new],
        "no duplicate scheduler"
    );
}

#[test]
fn kill_9_of_an_executor_leaves_the_run_crashed_and_workers_return() {
    let c = cluster_with_dbs("kill9", &["app"]);
    let mut s = c.connect("app");
    let id: i64 = one(&mut s, "SELECT jobs.submit('SELECT pg_sleep(600)')"); // a long job: the run under test
    let (pid, _) = wait_for("executor running", DEADLINE, || {
        s.query_opt(
            "SELECT pid FROM jobs.run WHERE id = $1 AND status = 'running'",
            &[&id],
        )
        .unwrap()
        .map(|r| r.get::<_, i32>(0))
    });
    // SAFETY: kill(2) of the executor's pid; the postmaster then restarts the whole cluster.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    // The crash restart ends our session too: wait for that, then reconnect.
    wait_for("the crash restart", DEADLINE, || {
        s.simple_query("SELECT 1").err().map(|_| ())
    });
    let mut s = c.connect("app");
    let (status, _, message) = wait_run(&mut s, id);
    assert_eq!(status, "crashed", "{message:?}");
    wait_for("launcher and scheduler back", DEADLINE, || {
        (worker_pids(&mut s, "launcher", None).len() == 1
            && worker_pids(&mut s, "scheduler", Some("app")).len() == 1)
            .then_some(())
    });
    let id: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1')");
    assert_eq!(wait_run(&mut s, id).0, "succeeded");
    assert_eq!(
        one::<i64>(
            &mut s,
            "SELECT count(*) FROM jobs.run WHERE status IN ('queued','starting','running')"
        ),
        0
    );
}

#[test]
fn a_terminated_executor_and_an_immediate_restart_leave_nothing_running() {
    let mut c = cluster_with_dbs("restart", &["app"]);
    let mut s = c.connect("app");
    let a: i64 = one(&mut s, "SELECT jobs.submit('SELECT pg_sleep(600)')"); // a long job: the run under test
    let (pid, _) = wait_for("executor running", DEADLINE, || {
        s.query_opt(
            "SELECT pid FROM jobs.run WHERE id = $1 AND status = 'running'",
            &[&a],
        )
        .unwrap()
        .map(|r| r.get::<_, i32>(0))
    });
    assert!(one::<bool>(
        &mut s,
        &format!("SELECT pg_terminate_backend({pid})")
    ));
    assert_eq!(wait_run(&mut s, a).0, "crashed");

    let b: i64 = one(&mut s, "SELECT jobs.submit('SELECT pg_sleep(600)')"); // a long job: the run under test
    wait_for("executor running", DEADLINE, || {
        s.query_opt(
            "SELECT 1 FROM jobs.run WHERE id = $1 AND status = 'running'",
            &[&b],
        )
        .unwrap()
        .map(|_| ())
    });
    drop(s);
    c.stop_server("immediate");
    c.start_server();
    let mut s = c.connect("app");
    assert_eq!(wait_run(&mut s, b).0, "crashed");
}

#[test]
fn drop_database_with_a_live_scheduler_succeeds_quickly() {
    let c = cluster_with_dbs("dropdb", &["doomed", "other"]);
    let mut admin = c.connect("postgres");
    let mut other = c.connect("other");
    wait_for("scheduler of doomed", DEADLINE, || {
        (!worker_pids(&mut other, "scheduler", Some("doomed")).is_empty()).then_some(())
    });
    // A long run in it too: its executor must go as well.
    let mut d = c.connect("doomed");
    let id: i64 = one(&mut d, "SELECT jobs.submit('SELECT pg_sleep(600)')"); // a long job: the run under test
    wait_for("run started", DEADLINE, || {
        d.query_opt(
            "SELECT 1 FROM jobs.run WHERE id = $1 AND status = 'running'",
            &[&id],
        )
        .unwrap()
        .map(|_| ())
    });
    drop(d);
    let t0 = Instant::now();
    admin.batch_execute("DROP DATABASE doomed").unwrap();
    let took = t0.elapsed();
    println!("DROP DATABASE with a live scheduler and executor took {took:?}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert!(worker_pids(&mut other, "scheduler", Some("doomed")).is_empty());
    // The launcher carries on with the remaining database.
    let id: i64 = one(&mut other, "SELECT jobs.submit('SELECT 1')");
    assert_eq!(wait_run(&mut other, id).0, "succeeded");

    // ALTER DATABASE RENAME needs no other sessions either.
    admin.batch_execute("CREATE DATABASE moving").unwrap();
    c.connect("moving")
        .batch_execute(
            "CREATE EXTENSION pg_jobs; CREATE TABLE ticks (at timestamptz DEFAULT clock_timestamp());
             SELECT jobs.schedule('tick', '1 second', 'INSERT INTO ticks DEFAULT VALUES')",
        )
        .unwrap();
    // A job in another database that targets this one.
    other
        .batch_execute(
            "SELECT jobs.schedule('remote', '1 second', 'INSERT INTO ticks DEFAULT VALUES', database => 'moving')",
        )
        .unwrap();
    wait_for("scheduler of moving", DEADLINE, || {
        (!worker_pids(&mut other, "scheduler", Some("moving")).is_empty()).then_some(())
    });
    admin
        .batch_execute("ALTER DATABASE moving RENAME TO moved")
        .unwrap();
    wait_for("scheduler of the renamed database", DEADLINE, || {
        (!worker_pids(&mut other, "scheduler", Some("moved")).is_empty()).then_some(())
    });
    // Jobs follow the database (kept by OID), not its old name: both the
    // database's own job and the other database's job keep running there.
    let mut m = c.connect("moved");
    let base: i64 = one(&mut m, "SELECT count(*) FROM ticks");
    wait_for("ticks after the rename", DEADLINE, || {
        (one::<i64>(&mut m, "SELECT count(*) FROM ticks") >= base + 4).then_some(())
    });
    let failed: i64 = one(
        &mut m,
        "SELECT count(*) FROM jobs.run WHERE status <> 'succeeded' AND started_at IS NOT NULL",
    );
    assert_eq!(failed, 0, "the renamed database's own runs all succeed");
    wait_for("the remote job's runs after the rename succeed", DEADLINE, || {
        one::<Option<String>>(
            &mut other,
            "SELECT database::text FROM jobs.run WHERE job_id IS NOT NULL AND status = 'succeeded'
              ORDER BY id DESC LIMIT 1",
        )
        .filter(|d| d == "moved")
    });
    let bad: i64 = one(
        &mut other,
        "SELECT count(*) FROM jobs.run WHERE status = 'failed'",
    );
    assert_eq!(bad, 0, "no run of the remote job failed for the rename");
    // The definition shows the new name once its scheduler reloads it.
    assert_eq!(
        one::<String>(&mut m, "SELECT database::text FROM jobs.job WHERE name = 'tick'"),
        "moved"
    );
    let id: i64 = one(&mut m, "SELECT jobs.submit('SELECT 1')");
    assert_eq!(wait_run(&mut m, id).0, "succeeded");
    // A new database that takes the old name does not inherit the jobs.
    admin.batch_execute("CREATE DATABASE moving").unwrap();
    let mark: i64 = one(&mut other, "SELECT max(id) FROM jobs.run");
    wait_for("two more runs of the remote job", DEADLINE, || {
        (one::<i64>(
            &mut other,
            &format!("SELECT count(*) FROM jobs.run WHERE id > {mark} AND status = 'succeeded'"),
        ) >= 2)
            .then_some(())
    });
    let stray: i64 = one(
        &mut other,
        &format!("SELECT count(*) FROM jobs.run WHERE id > {mark} AND database <> 'moved'"),
    );
    assert_eq!(stray, 0, "runs went to the new database with the old name");
}

#[test]
fn enabled_off_stops_schedulers_and_on_starts_them() {
    let c = cluster_with_dbs("enabled", &["app"]);
    let mut s = c.connect("app");
    wait_for("scheduler", DEADLINE, || {
        (!worker_pids(&mut s, "scheduler", Some("app")).is_empty()).then_some(())
    });
    s.batch_execute("ALTER SYSTEM SET pg_jobs.enabled = off").unwrap();
    s.batch_execute("SELECT pg_reload_conf()").unwrap();
    wait_for("no scheduler", DEADLINE, || {
        worker_pids(&mut s, "scheduler", None).is_empty().then_some(())
    });
    // While off, submitted runs wait.
    let id: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1')");
    assert_eq!(
        one::<String>(&mut s, &format!("SELECT status FROM jobs.run WHERE id = {id}")),
        "queued"
    );
    assert_eq!(
        worker_pids(&mut s, "launcher", None).len(),
        1,
        "the launcher stays"
    );
    s.batch_execute("ALTER SYSTEM SET pg_jobs.enabled = on").unwrap();
    s.batch_execute("SELECT pg_reload_conf()").unwrap();
    wait_for("scheduler back", DEADLINE, || {
        (!worker_pids(&mut s, "scheduler", Some("app")).is_empty()).then_some(())
    });
    assert_eq!(wait_run(&mut s, id).0, "succeeded", "the waiting run ran");
}

#[test]
fn without_preloading_create_extension_fails_clearly() {
    let c = Cluster::start("nopreload", "shared_preload_libraries = ''");
    let err = c
        .connect("postgres")
        .batch_execute("CREATE EXTENSION pg_jobs")
        .unwrap_err();
    let db = err.as_db_error().expect("a server error");
    assert_eq!(
        db.message(),
        "pg_jobs must be loaded via shared_preload_libraries"
    );
    assert!(db.hint().unwrap_or_default().contains("shared_preload_libraries"));
}

#[test]
fn a_failure_keeps_its_sqlstate_message_and_detail() {
    let (_c, mut s) = Cluster::with_app_db("detail", "");
    s.batch_execute("CREATE TABLE once (id int PRIMARY KEY); INSERT INTO once VALUES (1)")
        .unwrap();
    // Without a transaction of its own (recorded by the scheduler's harvest)
    // and as a second statement after a first that succeeded.
    for command in [
        "INSERT INTO once VALUES (1)",
        "SELECT 1; INSERT INTO once VALUES (1)",
    ] {
        let id: i64 = one(&mut s, &format!("SELECT jobs.submit('{command}')"));
        let row = s
            .query_one(
                "SELECT status, sqlstate, message, detail FROM jobs.wait($1)",
                &[&id],
            )
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "failed", "{command}");
        assert_eq!(row.get::<_, Option<String>>(1).as_deref(), Some("23505"));
        assert_eq!(
            row.get::<_, Option<String>>(2).as_deref(),
            Some("duplicate key value violates unique constraint \"once_pkey\"")
        );
        assert_eq!(
            row.get::<_, Option<String>>(3).as_deref(),
            Some("Key (id)=(1) already exists.")
        );
    }
    // An error without a DETAIL keeps none.
    let id: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1/0')");
    let row = s
        .query_one("SELECT sqlstate, detail FROM jobs.wait($1)", &[&id])
        .unwrap();
    assert_eq!(row.get::<_, Option<String>>(0).as_deref(), Some("22012"));
    assert_eq!(row.get::<_, Option<String>>(1), None);
}
