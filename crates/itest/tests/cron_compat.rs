//! pg_jobs_cron (issue 15): the `cron` schema of pg_cron 1.6 on top of
//! pg_jobs, tested as a pg_cron user would use it. The contract is the
//! specification of pg_jobs_cron (its functions, grammar, views, errors);
//! each test names the pg_cron behaviour it pins. Every test starts its own
//! cluster and runs `CREATE EXTENSION pg_jobs_cron` in `app`, where the
//! harness has created pg_jobs.
//!
//! Roles that use cron.* get `GRANT USAGE ON SCHEMA cron`, as pg_cron's
//! documentation tells a DBA to do (pg_cron does not grant it to PUBLIC).

#[path = "cron_compat/support.rs"]
mod support;

#[path = "cron_compat/grammar.rs"]
mod grammar;

#[path = "cron_compat/privileges.rs"]
mod privileges;

#[path = "cron_compat/runs.rs"]
mod runs;

use pg_jobs_itest::{one, wait_for, Cluster, DEADLINE};
use support::{
    assert_mirrors_pg_jobs, columns, create_cron_extension, cron_cluster, cron_jobs, error_of,
    grant_admin_functions, grant_cron_usage, pg_jobs_job, refused, CronJob,
};

/// pg_cron 1.6's API exactly: the six functions with pg_cron's parameter
/// names, defaults and result types, and both views with pg_cron's columns
/// in pg_cron's order. Each overload called with positional and with named
/// arguments, and `cron.job` after each call as pg_cron shows it: all nine
/// columns, nodename 'localhost', nodeport the server's port, jobname NULL
/// for an unnamed job (two identical `cron.schedule(schedule, command)`
/// calls make two jobs), the named forms upsert, alter_job changes only
/// what it is given, unschedule removes; every row is the pg_jobs job of
/// the same id (jobs.job.name NULL for an unnamed job).
#[test]
fn every_function_and_overload_by_position_and_by_name() {
    let (c, mut s) = cron_cluster("cron-api", "");

    for (function, arguments, result) in [
        ("cron.schedule(text,text)", "schedule text, command text", "bigint"),
        (
            "cron.schedule(text,text,text)",
            "job_name text, schedule text, command text",
            "bigint",
        ),
        (
            "cron.schedule_in_database(text,text,text,text,text,boolean)",
            "job_name text, schedule text, command text, database text, username text DEFAULT NULL::text, active boolean DEFAULT true",
            "bigint",
        ),
        ("cron.unschedule(bigint)", "job_id bigint", "boolean"),
        ("cron.unschedule(text)", "job_name text", "boolean"),
        (
            "cron.alter_job(bigint,text,text,text,text,boolean)",
            "job_id bigint, schedule text DEFAULT NULL::text, command text DEFAULT NULL::text, database text DEFAULT NULL::text, username text DEFAULT NULL::text, active boolean DEFAULT NULL::boolean",
            "void",
        ),
    ] {
        let row = s
            .query_one(
                "SELECT pg_get_function_arguments(p), pg_get_function_result(p) FROM to_regprocedure($1) p",
                &[&function],
            )
            .unwrap();
        let got: (Option<String>, Option<String>) = (row.get(0), row.get(1));
        assert_eq!(
            got,
            (Some(arguments.to_owned()), Some(result.to_owned())),
            "{function}"
        );
    }
    let owned = |cols: &[(&str, &str)]| -> Vec<(String, String)> {
        cols.iter().map(|(n, t)| (n.to_string(), t.to_string())).collect()
    };
    let timestamptz = "timestamp with time zone";
    assert_eq!(
        columns(&mut s, "cron.job"),
        owned(&[
            ("jobid", "bigint"),
            ("schedule", "text"),
            ("command", "text"),
            ("nodename", "text"),
            ("nodeport", "integer"),
            ("database", "text"),
            ("username", "text"),
            ("active", "boolean"),
            ("jobname", "text"),
        ])
    );
    assert_eq!(
        columns(&mut s, "cron.job_run_details"),
        owned(&[
            ("jobid", "bigint"),
            ("runid", "bigint"),
            ("job_pid", "integer"),
            ("database", "text"),
            ("username", "text"),
            ("command", "text"),
            ("status", "text"),
            ("return_message", "text"),
            ("start_time", timestamptz),
            ("end_time", timestamptz),
        ])
    );

    s.batch_execute("CREATE ROLE worker LOGIN").unwrap();
    c.connect("postgres")
        .batch_execute("CREATE DATABASE other")
        .unwrap();
    let row =
        |id: i64, schedule: &str, command: &str, db: &str, user: &str, active: bool, name: Option<&str>| {
            CronJob::new(&c, id, schedule, command, db, user, active, name)
        };
    let mut want: Vec<CronJob> = Vec::new();
    let check = |s: &mut postgres::Client, want: &[CronJob], step: &str| {
        assert_eq!(cron_jobs(s), want, "cron.job after {step}");
        assert_mirrors_pg_jobs(s);
    };

    // cron.schedule(schedule, command): a new unnamed job every call.
    let id1: i64 = one(&mut s, "SELECT cron.schedule('*/5 * * * *', 'SELECT 1')");
    want.push(row(id1, "*/5 * * * *", "SELECT 1", "app", "postgres", true, None));
    check(&mut s, &want, "cron.schedule(schedule, command)");
    let id2: i64 = one(
        &mut s,
        "SELECT cron.schedule(schedule => '*/5 * * * *', command => 'SELECT 1')",
    );
    assert_ne!(id1, id2, "the same unnamed schedule twice is two jobs");
    want.push(row(id2, "*/5 * * * *", "SELECT 1", "app", "postgres", true, None));
    check(&mut s, &want, "cron.schedule(schedule =>, command =>)");

    // cron.schedule(job_name, schedule, command).
    let id3: i64 = one(
        &mut s,
        "SELECT cron.schedule('by-position', '0 3 * * *', 'SELECT 3')",
    );
    want.push(row(
        id3,
        "0 3 * * *",
        "SELECT 3",
        "app",
        "postgres",
        true,
        Some("by-position"),
    ));
    check(&mut s, &want, "cron.schedule(job_name, schedule, command)");
    let id4: i64 = one(
        &mut s,
        "SELECT cron.schedule(job_name => 'by-name', schedule => '@daily', command => 'SELECT 4')",
    );
    want.push(row(
        id4,
        "@daily",
        "SELECT 4",
        "app",
        "postgres",
        true,
        Some("by-name"),
    ));
    check(
        &mut s,
        &want,
        "cron.schedule(job_name =>, schedule =>, command =>)",
    );

    // cron.schedule_in_database with 4, 6 and named arguments.
    let id5: i64 = one(
        &mut s,
        "SELECT cron.schedule_in_database('in-other', '0 5 * * *', 'SELECT 5', 'other')",
    );
    want.push(row(
        id5,
        "0 5 * * *",
        "SELECT 5",
        "other",
        "postgres",
        true,
        Some("in-other"),
    ));
    check(&mut s, &want, "cron.schedule_in_database with 4 arguments");
    let id6: i64 = one(
        &mut s,
        "SELECT cron.schedule_in_database('as-worker', '0 6 * * *', 'SELECT 6', 'other', 'worker', false)",
    );
    want.push(row(
        id6,
        "0 6 * * *",
        "SELECT 6",
        "other",
        "worker",
        false,
        Some("as-worker"),
    ));
    check(&mut s, &want, "cron.schedule_in_database with 6 arguments");
    let id7: i64 = one(
        &mut s,
        "SELECT cron.schedule_in_database(job_name => 'named-args', schedule => '0 7 * * *', command => 'SELECT 7',
                                          database => 'app', username => 'worker', active => false)",
    );
    want.push(row(
        id7,
        "0 7 * * *",
        "SELECT 7",
        "app",
        "worker",
        false,
        Some("named-args"),
    ));
    check(&mut s, &want, "cron.schedule_in_database with named arguments");
    let id8: i64 = one(
        &mut s,
        "SELECT cron.schedule_in_database(job_name => 'defaults', schedule => '0 8 * * *', command => 'SELECT 8',
                                          database => 'app')",
    );
    want.push(row(
        id8,
        "0 8 * * *",
        "SELECT 8",
        "app",
        "postgres",
        true,
        Some("defaults"),
    ));
    check(
        &mut s,
        &want,
        "cron.schedule_in_database with named arguments and defaults",
    );

    // cron.alter_job: everything by position, then one thing at a time.
    s.batch_execute(&format!(
        "SELECT cron.alter_job({id1}, '*/10 * * * *', 'SELECT 10', 'other', 'worker', false)"
    ))
    .unwrap();
    want[0] = row(id1, "*/10 * * * *", "SELECT 10", "other", "worker", false, None);
    check(&mut s, &want, "cron.alter_job with every argument by position");
    s.batch_execute(&format!("SELECT cron.alter_job({id3}, '0 4 * * *')"))
        .unwrap();
    want[2].schedule = "0 4 * * *".into();
    check(&mut s, &want, "cron.alter_job(job_id, schedule) by position");
    s.batch_execute(&format!(
        "SELECT cron.alter_job({id3}, NULL, NULL, NULL, NULL, false)"
    ))
    .unwrap();
    want[2].active = false;
    check(&mut s, &want, "cron.alter_job with only active by position");
    type Change = fn(&mut CronJob);
    let changes: [(&str, Change); 6] = [
        ("active => false", |j| j.active = false),
        ("schedule => '@hourly'", |j| j.schedule = "@hourly".into()),
        ("command => 'SELECT 20'", |j| j.command = "SELECT 20".into()),
        ("database => 'other'", |j| j.database = "other".into()),
        ("username => 'worker'", |j| j.username = "worker".into()),
        ("active => true", |j| j.active = true),
    ];
    for (argument, change) in changes {
        s.batch_execute(&format!("SELECT cron.alter_job(job_id => {id2}, {argument})"))
            .unwrap();
        change(&mut want[1]);
        check(
            &mut s,
            &want,
            &format!("cron.alter_job(job_id => {id2}, {argument})"),
        );
    }

    // cron.unschedule by id and by name, each by position and by name.
    for (sql, id) in [
        (format!("SELECT cron.unschedule({id1})"), id1),
        (format!("SELECT cron.unschedule(job_id => {id2})"), id2),
        ("SELECT cron.unschedule('by-position')".to_owned(), id3),
        ("SELECT cron.unschedule(job_name => 'by-name')".to_owned(), id4),
    ] {
        assert!(one::<bool>(&mut s, &sql), "{sql} returns true");
        want.retain(|j| j.jobid != id);
        check(&mut s, &want, &sql);
        assert_eq!(pg_jobs_job(&mut s, id), None, "{sql}: the pg_jobs job is gone");
    }
}

/// pg_cron's upsert by name: `cron.schedule(job_name, …)` and
/// `cron.schedule_in_database` with the name of one of the caller's jobs
/// return its id and change its schedule, command and database, but never
/// its active flag (a paused job stays paused, `active => true` applies to
/// a new job only); the same name for another user is another job.
#[test]
fn schedule_by_name_updates_the_callers_job_and_keeps_it_paused() {
    let (c, mut s) = cron_cluster("cron-upsert", "");
    c.connect("postgres")
        .batch_execute("CREATE DATABASE other")
        .unwrap();
    s.batch_execute("CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN")
        .unwrap();
    grant_cron_usage(&mut s, "alice, bob");
    grant_admin_functions(&mut s, "alice");
    let mut alice = c.connect_as("app", "alice");
    let mut bob = c.connect_as("app", "bob");
    let nightly = |id: i64, schedule: &str, command: &str, db: &str, user: &str, active: bool| {
        CronJob::new(&c, id, schedule, command, db, user, active, Some("nightly"))
    };

    let id: i64 = one(
        &mut alice,
        "SELECT cron.schedule('nightly', '0 1 * * *', 'SELECT 1')",
    );
    assert_eq!(
        cron_jobs(&mut alice),
        [nightly(id, "0 1 * * *", "SELECT 1", "app", "alice", true)]
    );
    let again: i64 = one(
        &mut alice,
        "SELECT cron.schedule('nightly', '0 2 * * *', 'SELECT 2')",
    );
    assert_eq!(again, id, "same name, same user: the same job");
    assert_eq!(
        cron_jobs(&mut alice),
        [nightly(id, "0 2 * * *", "SELECT 2", "app", "alice", true)]
    );

    // Paused, then scheduled again by name: it stays paused.
    s.batch_execute(&format!("SELECT cron.alter_job({id}, active => false)"))
        .unwrap();
    let again: i64 = one(
        &mut alice,
        "SELECT cron.schedule(job_name => 'nightly', schedule => '0 3 * * *', command => 'SELECT 3')",
    );
    assert_eq!(again, id);
    assert_eq!(
        cron_jobs(&mut alice),
        [nightly(id, "0 3 * * *", "SELECT 3", "app", "alice", false)]
    );
    assert_eq!(
        pg_jobs_job(&mut s, id).map(|j| j.4),
        Some(false),
        "still paused in jobs.job"
    );

    // schedule_in_database moves it to another database; its active
    // argument is for new jobs only.
    let again: i64 = one(
        &mut alice,
        "SELECT cron.schedule_in_database('nightly', '0 4 * * *', 'SELECT 4', 'other', active => true)",
    );
    assert_eq!(again, id);
    assert_eq!(
        cron_jobs(&mut alice),
        [nightly(id, "0 4 * * *", "SELECT 4", "other", "alice", false)]
    );
    // And the three-argument form brings it back to current_database().
    let again: i64 = one(
        &mut alice,
        "SELECT cron.schedule('nightly', '0 5 * * *', 'SELECT 5')",
    );
    assert_eq!(again, id);
    let alices = [nightly(id, "0 5 * * *", "SELECT 5", "app", "alice", false)];
    assert_eq!(cron_jobs(&mut alice), alices);

    // The same name for other users: other jobs.
    let bobs: i64 = one(
        &mut bob,
        "SELECT cron.schedule('nightly', '0 6 * * *', 'SELECT 6')",
    );
    assert_ne!(bobs, id);
    assert_eq!(
        cron_jobs(&mut bob),
        [nightly(bobs, "0 6 * * *", "SELECT 6", "app", "bob", true)]
    );
    assert_eq!(cron_jobs(&mut alice), alices, "bob's call left alice's job alone");
    let mine: i64 = one(&mut s, "SELECT cron.schedule('nightly', '@hourly', 'SELECT 7')");
    assert!(
        mine != id && mine != bobs,
        "the superuser's 'nightly' is a third job"
    );
    assert_eq!(
        cron_jobs(&mut s),
        [
            nightly(id, "0 5 * * *", "SELECT 5", "app", "alice", false),
            nightly(bobs, "0 6 * * *", "SELECT 6", "app", "bob", true),
            nightly(mine, "@hourly", "SELECT 7", "app", "postgres", true),
        ]
    );

    // A new job of schedule_in_database takes its active argument.
    let born_paused: i64 = one(
        &mut alice,
        "SELECT cron.schedule_in_database('born-paused', '@daily', 'SELECT 8', 'app', active => false)",
    );
    assert_eq!(
        cron_jobs(&mut alice)[1],
        CronJob::new(
            &c,
            born_paused,
            "@daily",
            "SELECT 8",
            "app",
            "alice",
            false,
            Some("born-paused")
        )
    );
    assert_mirrors_pg_jobs(&mut s);
}

/// pg_cron's time zone: jobs made through cron.* run in GMT (not the
/// server's TimeZone nor pg_jobs.timezone), or in `cron.timezone` when it
/// is set: here per database (`ALTER DATABASE … SET`), read by a new
/// session when it schedules.
#[test]
fn cron_jobs_run_in_gmt_or_cron_timezone() {
    let (c, mut s) = cron_cluster(
        "cron-timezone",
        "timezone = 'America/New_York'\npg_jobs.timezone = 'Europe/Berlin'",
    );
    let timezone = |s: &mut postgres::Client, id: i64| -> String {
        one(s, &format!("SELECT timezone FROM jobs.job WHERE id = {id}"))
    };
    let due_hour_gmt = |s: &mut postgres::Client, id: i64| -> f64 {
        one(
            s,
            &format!("SELECT extract(hour FROM next_due AT TIME ZONE 'GMT')::float8 FROM jobs.job_status WHERE id = {id}"),
        )
    };
    let made = [
        one::<i64>(&mut s, "SELECT cron.schedule('0 12 * * *', 'SELECT 1')"),
        one::<i64>(&mut s, "SELECT cron.schedule('noon', '0 12 * * *', 'SELECT 1')"),
        one::<i64>(
            &mut s,
            "SELECT cron.schedule_in_database('noon-db', '0 12 * * *', 'SELECT 1', 'app')",
        ),
    ];
    for id in made {
        assert_eq!(timezone(&mut s, id), "GMT", "job {id}");
        assert_eq!(due_hour_gmt(&mut s, id), 12.0, "job {id} is due at noon GMT");
    }

    s.batch_execute("ALTER DATABASE app SET cron.timezone = 'Asia/Tokyo'")
        .unwrap();
    let mut fresh = c.connect("app");
    assert_eq!(
        one::<String>(&mut fresh, "SELECT current_setting('cron.timezone')"),
        "Asia/Tokyo"
    );
    for sql in [
        "SELECT cron.schedule('0 12 * * *', 'SELECT 2')",
        "SELECT cron.schedule('tokyo', '0 12 * * *', 'SELECT 2')",
    ] {
        let id: i64 = one(&mut fresh, sql);
        assert_eq!(timezone(&mut s, id), "Asia/Tokyo", "{sql}");
        assert_eq!(due_hour_gmt(&mut s, id), 3.0, "{sql}: noon in Tokyo is 03:00 GMT");
    }
    for id in made {
        assert_eq!(timezone(&mut s, id), "GMT", "job {id} made before keeps its zone");
    }
}

/// pg_jobs_cron takes the place of pg_cron, never its side: CREATE
/// EXTENSION is for superusers, needs pg_jobs in the database, and fails
/// with 42710 and a hint about pg_cron when a schema `cron` exists. The
/// jobs are pg_jobs jobs: `DROP EXTENSION pg_jobs_cron` leaves them in
/// place and running, and a new CREATE EXTENSION shows them again in
/// `cron.job` (with those made by `jobs.schedule`).
#[test]
fn create_extension_refuses_an_existing_cron_schema_and_drop_keeps_the_jobs() {
    let (c, mut s) = Cluster::with_app_db("cron-extension", "");
    c.connect("postgres")
        .batch_execute("CREATE DATABASE bare")
        .unwrap();
    let mut bare = c.connect("bare");
    let e = error_of(&mut bare, "CREATE EXTENSION pg_jobs_cron");
    let schemas: i64 = one(
        &mut bare,
        "SELECT count(*) FROM pg_namespace WHERE nspname = 'cron'",
    );
    assert_eq!(schemas, 0, "a database without pg_jobs gets nothing ({e:?})");

    s.batch_execute("CREATE ROLE alice LOGIN; GRANT CREATE ON DATABASE app TO alice")
        .unwrap();
    let mut alice = c.connect_as("app", "alice");
    assert_eq!(refused(&mut alice, "CREATE EXTENSION pg_jobs_cron").0, "42501");

    s.batch_execute("CREATE SCHEMA cron").unwrap();
    let e = error_of(&mut s, "CREATE EXTENSION pg_jobs_cron");
    assert_eq!(e.code().code(), "42710", "{e:?}");
    assert!(
        e.hint()
            .is_some_and(|h| h.contains("jobs.import_pg_cron()") && h.contains("DROP EXTENSION pg_cron")),
        "{e:?}"
    );
    let installed = "SELECT count(*) FROM pg_extension WHERE extname = 'pg_jobs_cron'";
    assert_eq!(one::<i64>(&mut s, installed), 0);
    s.batch_execute("DROP SCHEMA cron").unwrap();
    create_cron_extension(&mut s);
    assert_eq!(one::<i64>(&mut s, installed), 1);

    s.batch_execute("CREATE TABLE ticks (at timestamptz)").unwrap();
    let tick: i64 = one(
        &mut s,
        "SELECT cron.schedule('1 seconds', 'INSERT INTO ticks VALUES (clock_timestamp())')",
    );
    one::<i64>(&mut s, "SELECT cron.schedule('kept', '@daily', 'SELECT 1')");
    let paused: i64 = one(&mut s, "SELECT cron.schedule('paused', '@daily', 'SELECT 2')");
    s.batch_execute(&format!("SELECT cron.alter_job({paused}, active => false)"))
        .unwrap();
    let plain: i64 = one(&mut s, "SELECT jobs.schedule('plain', '@hourly', 'SELECT 3')");
    let in_cron = cron_jobs(&mut s);
    assert_eq!(
        in_cron.iter().find(|j| j.jobid == plain),
        Some(&CronJob::new(
            &c,
            plain,
            "@hourly",
            "SELECT 3",
            "app",
            "postgres",
            true,
            Some("plain")
        )),
        "a job made with jobs.schedule is in cron.job too"
    );
    assert_eq!(in_cron.len(), 4);
    let ticks = "SELECT count(*) FROM ticks";
    wait_for("the 1-second job ran", DEADLINE, || {
        (one::<i64>(&mut s, ticks) >= 1).then_some(())
    });

    let snapshot = "SELECT string_agg(concat_ws(',', id, name, owner, schedule, command, database, timezone, enabled, overlap),
                                      ';' ORDER BY id) FROM jobs.job";
    let before: String = one(&mut s, snapshot);
    s.batch_execute("DROP EXTENSION pg_jobs_cron").unwrap();
    assert_eq!(
        one::<i64>(&mut s, "SELECT count(*) FROM pg_namespace WHERE nspname = 'cron'"),
        0,
        "schema cron goes with the extension"
    );
    assert_eq!(
        one::<String>(&mut s, snapshot),
        before,
        "the jobs stay as they were"
    );
    let at_drop: i64 = one(&mut s, ticks);
    wait_for(
        "the 1-second job still runs after DROP EXTENSION",
        DEADLINE,
        || (one::<i64>(&mut s, ticks) >= at_drop + 2).then_some(()),
    );
    assert!(pg_jobs_job(&mut s, tick).is_some());

    create_cron_extension(&mut s);
    assert_eq!(cron_jobs(&mut s), in_cron, "cron.job shows the same jobs again");
}

/// pg_jobs_cron's views read what pg_jobs 0.4.0 records: in a database
/// whose pg_jobs is still at 0.3.0 it is refused with a clear error, and
/// created once pg_jobs is updated.
#[test]
fn create_extension_needs_pg_jobs_0_4_0() {
    let (c, _s) = Cluster::with_app_db("cron-needs-0-4-0", "");
    c.connect("postgres")
        .batch_execute("CREATE DATABASE old")
        .unwrap();
    let mut old = c.connect("old");
    old.batch_execute("CREATE EXTENSION pg_jobs VERSION '0.3.0'")
        .unwrap();
    let e = error_of(&mut old, "CREATE EXTENSION pg_jobs_cron");
    assert_eq!(e.code().code(), "55000", "{e:?}");
    assert_eq!(e.hint(), Some("ALTER EXTENSION pg_jobs UPDATE;"));
    old.batch_execute("ALTER EXTENSION pg_jobs UPDATE; CREATE EXTENSION pg_jobs_cron")
        .unwrap();
    let id: i64 = one(&mut old, "SELECT cron.schedule('@daily', 'SELECT 1')");
    assert!(id > 0);
}
