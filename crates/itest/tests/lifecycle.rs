//! The extension's life cycle with live workers: upgrading from the
//! released 0.1.0 with jobs present (the upgrade also anchors their owners,
//! issue 13 finding 9).

use pg_jobs_itest::{one, wait_for, wait_run, Cluster, DEADLINE};
use postgres::Client;

/// Every object of the extension in the connected database, described in
/// full (definitions, columns, constraints, indexes, policies, grants,
/// comments), one line each, sorted: two databases with equal lists have
/// the same pg_jobs schema.
fn describe_schema(c: &mut Client) -> Vec<String> {
    let sql = "
      WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'pg_jobs'),
      members AS (
        SELECT d.classid, d.objid FROM pg_depend d, ext
         WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e')
      SELECT 'member ' || pg_describe_object(classid, objid, 0) FROM members
      UNION ALL
      SELECT 'function ' || p.oid::regprocedure || ' ' || pg_get_functiondef(p.oid)
             || ' acl=' || coalesce(p.proacl::text, 'default')
             || ' comment=' || coalesce(obj_description(p.oid, 'pg_proc'), '')
        FROM pg_proc p JOIN members m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
      UNION ALL
      SELECT 'relation ' || c.oid::regclass || ' kind=' || c.relkind::text || ' rls=' || c.relrowsecurity
             || ' acl=' || coalesce(c.relacl::text, 'default')
             || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '')
             || CASE WHEN c.relkind = 'v' THEN ' view=' || pg_get_viewdef(c.oid) ELSE '' END
             || coalesce(' options=' || c.reloptions::text, '')
        FROM pg_class c WHERE c.relnamespace = 'jobs'::regnamespace
      UNION ALL
      SELECT 'column ' || a.attrelid::regclass || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
             || ' notnull=' || a.attnotnull || ' default=' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
             || ' comment=' || coalesce(col_description(a.attrelid, a.attnum), '')
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       WHERE c.relnamespace = 'jobs'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
      UNION ALL
      SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
        FROM pg_constraint WHERE connamespace = 'jobs'::regnamespace
      UNION ALL
      SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index
       WHERE indrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'jobs'::regnamespace)
      UNION ALL
      SELECT 'policy ' || tablename || ' ' || policyname || ' ' || cmd || ' ' || roles::text || ' '
             || coalesce(qual, '') || ' ' || coalesce(with_check, '')
        FROM pg_policies WHERE schemaname = 'jobs'
      UNION ALL
      SELECT 'schema acl=' || coalesce(nspacl::text, 'default') FROM pg_namespace WHERE nspname = 'jobs'
      ORDER BY 1";
    c.query(sql, &[]).unwrap().iter().map(|r| r.get(0)).collect()
}

#[test]
fn upgrade_from_0_1_0_matches_a_fresh_install_and_keeps_jobs_running() {
    let c = Cluster::start("upgrade", "");
    let mut admin = c.connect("postgres");
    admin.batch_execute("CREATE DATABASE old").unwrap();
    admin.batch_execute("CREATE DATABASE fresh").unwrap();

    // 0.1.0, as released, with a job and history.
    let mut old = c.connect("old");
    old.batch_execute(
        "CREATE EXTENSION pg_jobs VERSION '0.1.0';
         CREATE TABLE tick (at timestamptz DEFAULT clock_timestamp(), what text);
         SELECT jobs.schedule('ticker', '1 second', 'INSERT INTO tick (what) VALUES (''job'')');",
    )
    .unwrap();
    let version: String = one(
        &mut old,
        "SELECT extversion FROM pg_extension WHERE extname = 'pg_jobs'",
    );
    assert_eq!(version, "0.1.0");
    let id: i64 = one(&mut old, "SELECT jobs.submit('SELECT 1')");
    assert_eq!(wait_run(&mut old, id).0, "succeeded");
    wait_for("the 0.1.0 job running", DEADLINE, || {
        (one::<i64>(&mut old, "SELECT count(*) FROM tick") > 0).then_some(())
    });
    let runs_before: i64 = one(&mut old, "SELECT count(*) FROM jobs.run");
    // A role's job, from before ownership was recorded: no anchor yet, so
    // nothing would stop DROP ROLE.
    old.batch_execute(
        "CREATE ROLE olduser LOGIN;
         SELECT jobs.schedule('olds', '@yearly', 'SELECT 1', run_as => 'olduser');",
    )
    .unwrap();
    let anchor = "SELECT coalesce(string_agg(t.typname || ' ' || coalesce((
                       SELECT string_agg(d.deptype::text, '' ORDER BY d.deptype::text) FROM pg_depend d
                        WHERE d.classid = 'pg_type'::regclass AND d.objid = t.oid
                          AND d.refclassid = 'pg_extension'::regclass), '-'), ','), 'none')
                    FROM pg_type t
                   WHERE t.typnamespace = 'jobs'::regnamespace AND t.typowner = 'olduser'::regrole::oid";
    assert_eq!(one::<String>(&mut old, anchor), "none", "an anchor at 0.1.0");

    // Upgrade with the scheduler and executors live.
    old.batch_execute("ALTER EXTENSION pg_jobs UPDATE").unwrap();
    let version: String = one(
        &mut old,
        "SELECT extversion FROM pg_extension WHERE extname = 'pg_jobs'",
    );
    assert_eq!(
        version,
        env!("CARGO_PKG_VERSION"),
        "updated to the current version"
    );
    let kept: i64 = one(&mut old, "SELECT count(*) FROM jobs.run");
    assert!(
        kept >= runs_before,
        "history lost in the upgrade: {kept} < {runs_before}"
    );
    // The upgrade anchored the role's job: one shell type it owns, tied to
    // the extension automatically ('a'), not a member of it ('e'); and
    // DROP ROLE is refused now.
    assert_eq!(one::<String>(&mut old, anchor), "jobs of olduser a");
    let err = old.batch_execute("DROP ROLE olduser").unwrap_err();
    assert_eq!(
        err.as_db_error().map(|e| e.code().code()),
        Some("2BP01"),
        "DROP ROLE of a job's owner after the upgrade: {err}"
    );

    // What the upgrade brought works: a daemon, and the job keeps running.
    old.batch_execute(
        "SELECT jobs.daemon('d', 'INSERT INTO tick (what) VALUES (''daemon'')', restart_delay => '1 s')",
    )
    .unwrap();
    wait_for("the upgraded database running a daemon", DEADLINE, || {
        (one::<i64>(&mut old, "SELECT count(*) FROM tick WHERE what = 'daemon'") > 0).then_some(())
    });
    let n: i64 = one(&mut old, "SELECT count(*) FROM tick WHERE what = 'job'");
    wait_for("the job still running after the upgrade", DEADLINE, || {
        (one::<i64>(&mut old, "SELECT count(*) FROM tick WHERE what = 'job'") > n).then_some(())
    });

    // The upgraded schema is the fresh one.
    let mut fresh = c.connect("fresh");
    fresh.batch_execute("CREATE EXTENSION pg_jobs").unwrap();
    let (a, b) = (describe_schema(&mut old), describe_schema(&mut fresh));
    let only_upgraded: Vec<&String> = a.iter().filter(|l| !b.contains(l)).collect();
    let only_fresh: Vec<&String> = b.iter().filter(|l| !a.contains(l)).collect();
    println!("compared {} catalog lines", a.len());
    assert!(
        only_upgraded.is_empty() && only_fresh.is_empty(),
        "upgraded schema differs from a fresh install\nonly after upgrade:\n{only_upgraded:#?}\nonly in fresh install:\n{only_fresh:#?}"
    );
    assert!(
        a.len() > 100,
        "the description is too thin to compare: {} lines",
        a.len()
    );
}

fn long_runs(s: &mut Client, n: usize) -> Vec<i64> {
    let ids: Vec<i64> = (0..n)
        .map(|_| {
            one(
                s,
                "SELECT jobs.submit('SELECT pg_sleep(3600)', max_attempts => 2)",
            )
        }) // long runs under test
        .collect();
    wait_for("the long runs running", DEADLINE, || {
        let n_running: i64 = s
            .query_one(
                "SELECT count(*) FROM jobs.run WHERE id = ANY($1) AND status = 'running'",
                &[&ids],
            )
            .unwrap()
            .get(0);
        (n_running == n as i64).then_some(())
    });
    ids
}

fn wait_crashed_and_retried(s: &mut Client, ids: &[i64]) {
    wait_for("the interrupted runs recorded", DEADLINE, || {
        let n: i64 = s
            .query_one(
                "SELECT count(*) FROM jobs.run WHERE id = ANY($1) AND status = 'crashed'
                    AND message LIKE 'the executor ended without recording an outcome%'",
                &[&ids],
            )
            .unwrap()
            .get(0);
        (n == ids.len() as i64).then_some(())
    });
    // Each had an attempt left: it was queued again and is running.
    let retried: i64 = s
        .query_one(
            "SELECT count(*) FROM jobs.run WHERE attempt = 2 AND command = 'SELECT pg_sleep(3600)'
                AND id > (SELECT max(i) FROM unnest($1::int8[]) i)",
            &[&ids],
        )
        .unwrap()
        .get(0);
    assert_eq!(retried, ids.len() as i64, "each interrupted run was retried once");
}

#[test]
fn fast_and_smart_shutdown_with_long_jobs_are_prompt_and_the_runs_are_recorded() {
    let (mut c, mut s) = Cluster::with_app_db("shutdown", "");
    let ids = long_runs(&mut s, 3);
    drop(s);
    let t0 = std::time::Instant::now();
    c.stop_server("fast");
    let fast = t0.elapsed();
    c.start_server();
    let mut s = c.connect("app");
    wait_crashed_and_retried(&mut s, &ids);

    // Smart shutdown waits for client sessions only; pg_jobs' workers do not hold it up.
    s.batch_execute("SELECT jobs.cancel(id) FROM jobs.run WHERE status IN ('queued', 'starting', 'running')")
        .unwrap();
    let ids = long_runs(&mut s, 2);
    drop(s);
    let t0 = std::time::Instant::now();
    c.stop_server("smart");
    let smart = t0.elapsed();
    c.start_server();
    let mut s = c.connect("app");
    wait_crashed_and_retried(&mut s, &ids);
    println!("RELIABILITY| shutdown with long jobs running: fast / smart | {fast:.2?} / {smart:.2?} (runs recorded crashed, retried after start)");
    assert!(fast < std::time::Duration::from_secs(10) && smart < std::time::Duration::from_secs(10));
}

#[test]
fn with_restart_after_crash_off_a_killed_worker_stops_the_server_and_a_start_recovers() {
    let (mut c, mut s) = Cluster::with_app_db("no-restart", "restart_after_crash = off");
    let ids = long_runs(&mut s, 1);
    let pid: i32 = one(&mut s, "SELECT pid FROM jobs.workers WHERE kind = 'executor'");
    drop(s);
    // SAFETY: kill(2) of a server process of our own test cluster.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    wait_for("the server down", DEADLINE, || {
        c.pg_try(&["pg_ctl", "-D", "data", "status"])
            .is_err()
            .then_some(())
    });
    c.start_server();
    let mut s = c.connect("app");
    wait_crashed_and_retried(&mut s, &ids);
    let id: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1')");
    assert_eq!(wait_run(&mut s, id).0, "succeeded");
}

#[test]
fn drop_extension_with_a_running_job_and_daemon_is_prompt_and_stops_them() {
    let (c, mut s) = Cluster::with_app_db("drop-ext", "");
    s.batch_execute("SELECT jobs.daemon('sleeper', 'SELECT pg_sleep(3600)')")
        .unwrap();
    // A long run: the run under test.
    let id: i64 = one(&mut s, "SELECT jobs.submit('SELECT pg_sleep(600)')");
    wait_for("the run and the daemon running", DEADLINE, || {
        let n: i64 = one(
            &mut s,
            &format!(
                "SELECT (SELECT count(*) FROM jobs.run WHERE id = {id} AND status = 'running')
                      + (SELECT count(*) FROM jobs.daemon_status WHERE name = 'sleeper' AND state = 'running')"
            ),
        );
        (n == 2).then_some(())
    });
    let pg_jobs_backends = "SELECT count(*) FROM pg_stat_activity
                             WHERE backend_type IN ('pg_jobs executor', 'pg_jobs daemon', 'pg_jobs scheduler')";
    let t0 = std::time::Instant::now();
    s.batch_execute("DROP EXTENSION pg_jobs").unwrap();
    let took = t0.elapsed();
    let (_, gone) = wait_for("the database's pg_jobs workers gone", DEADLINE, || {
        (one::<i64>(&mut s, pg_jobs_backends) == 0).then_some(())
    });
    println!("DROP EXTENSION with a running job and daemon: {took:?}; their workers gone {gone:?} later");
    assert!(
        took < std::time::Duration::from_secs(5),
        "DROP EXTENSION took {took:?}"
    );
    // And it comes back clean.
    s.batch_execute("CREATE EXTENSION pg_jobs").unwrap();
    let id: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1')");
    assert_eq!(wait_run(&mut s, id).0, "succeeded");
    drop(c);
}
