//! Backups keep every job (issue 18): `pg_dump`/`pg_restore` and plain
//! dumps carry queues, jobs and daemons (`jobs.definition`, owners by
//! name), into a new database of the same cluster and into another cluster
//! whose roles have other OIDs; a job whose owner is missing there comes
//! back paused with the reason; restored jobs run as their owners at their
//! next due time; nothing runs twice (a one-off whose instant passed, an
//! `@reboot` job).

use pg_jobs_itest::{one, wait_for, Cluster};
use postgres::Client;
use std::time::Duration;

/// Generous, on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(60);

/// Every kind of definition, owned by alice, bob and carol.
const SETUP: &str = "
    CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE ROLE carol LOGIN;
    CREATE TABLE log (job text, who text, at timestamptz DEFAULT clock_timestamp());
    GRANT INSERT, SELECT ON log TO PUBLIC;
    CREATE PROCEDURE beat() LANGUAGE plpgsql AS $$
      BEGIN LOOP INSERT INTO log (job, who) VALUES ('beat', current_user); COMMIT; PERFORM pg_sleep(0.2); END LOOP; END $$;
    GRANT EXECUTE ON PROCEDURE beat() TO PUBLIC;
    SET ROLE alice;
    SELECT jobs.create_queue('mail', max_concurrency => 2);
    SELECT jobs.schedule('every_second', '1 second', 'INSERT INTO log (job, who) VALUES ($1, current_user)',
                         args => ARRAY['every_second'], queue => 'mail');
    SELECT jobs.schedule('paused', '1 second', 'SELECT 1');
    SELECT jobs.pause('paused');
    SELECT jobs.schedule('at_boot', '@reboot', 'INSERT INTO log (job, who) VALUES (''at_boot'', current_user)');
    SELECT jobs.daemon('beat', 'CALL beat()');
    SELECT jobs.daemon('idle', 'SELECT pg_sleep(3600)');
    SELECT jobs.stop_daemon('idle');
    RESET ROLE;
    SET ROLE bob;
    SELECT jobs.schedule('nightly', '0 3 * * *', 'SELECT 1', timezone => 'Europe/Paris', timeout => '5 minutes',
                         max_attempts => 3, retry_backoff => '1 minute', overlap => 'queue', catch_up => true);
    SELECT jobs.schedule('after_nightly', NULL, 'SELECT 2', after_job => 'nightly', run_if => 'failed');
    RESET ROLE;
    SET ROLE carol;
    SELECT jobs.schedule('carols', '1 second', 'INSERT INTO log (job, who) VALUES (''carols'', current_user)');
    RESET ROLE;";

/// The definitions, one text line each, as a restore must give them back
/// (ids, names, owners by name, every setting; the database as given; a
/// job's enabled flag apart, in [`paused_jobs`]; an `@reboot` job's
/// creation time apart: restored, it is the restore's).
fn definitions(c: &mut Client) -> Vec<String> {
    c.query(
        "SELECT concat_ws(' | ', 'job', id, name, owner::text, schedule, once_at, command, database, timezone, timeout,
                          max_attempts, retry_backoff, overlap, catch_up,
                          CASE WHEN schedule <> '@reboot' THEN created_at::text END, args, after_job, run_if, queue)
           FROM jobs.job
         UNION ALL
         SELECT concat_ws(' | ', 'daemon', id, name, owner::text, command, database, run_on, restart_delay,
                          max_restart_delay, enabled, created_at)
           FROM jobs.daemon
         UNION ALL
         SELECT concat_ws(' | ', 'queue', id, name, owner::text, max_concurrency, max_per_key, rate_limit,
                          rate_period, paused, created_at)
           FROM jobs.queue
         ORDER BY 1",
        &[],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// The jobs that are paused.
fn paused_jobs(c: &mut Client) -> Vec<String> {
    c.query("SELECT name FROM jobs.job WHERE NOT enabled ORDER BY 1", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// `definitions` with the database name `from` read as `to` (a job of its
/// own database follows it into the database it is restored into).
fn renamed(defs: &[String], from: &str, to: &str) -> Vec<String> {
    defs.iter()
        .map(|d| d.replace(&format!(" | {from} | "), &format!(" | {to} | ")))
        .collect()
}

/// Wait until `job` has logged a row at or after `since` in `c`'s database.
fn wait_log(c: &mut Client, job: &str, since: &str) -> String {
    wait_for(&format!("{job} to run"), DEADLINE, || {
        c.query_opt(
            "SELECT who FROM log WHERE job = $1 AND at >= $2::text::timestamptz LIMIT 1",
            &[&job, &since],
        )
        .unwrap()
        .map(|r| r.get::<_, String>(0))
    })
    .0
}

/// What a restored database must do: run its jobs as their owners, keep
/// the paused and stopped ones so, start its daemons, run no `@reboot`
/// job and no one-off whose instant had passed.
fn check_restored(c: &mut Client) {
    let since: String = one(c, "SELECT now()::text");
    assert_eq!(wait_log(c, "every_second", &since), "alice");
    assert_eq!(wait_log(c, "beat", &since), "alice");
    // Two more runs of the every-second job: the scheduler has been
    // through the restored jobs; the others must still not have run.
    wait_for("two runs of every_second", DEADLINE, || {
        let n: i64 = one(
            c,
            &format!("SELECT count(*) FROM log WHERE job = 'every_second' AND at >= '{since}'"),
        );
        (n >= 2).then_some(())
    });
    let others: i64 = one(
        c,
        &format!("SELECT count(*) FROM log WHERE job IN ('at_boot', 'once') AND at >= '{since}'"),
    );
    let reborn: bool = one(
        c,
        "SELECT created_at > pg_postmaster_start_time() FROM jobs.job WHERE name = 'at_boot'",
    );
    assert!(reborn, "a restored @reboot job waits for the next server start");
    assert_eq!(
        others, 0,
        "an @reboot job or a passed one-off ran after the restore"
    );
    let paused: i64 = one(
        c,
        "SELECT count(*) FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id WHERE j.name = 'paused'",
    );
    assert_eq!(paused, 0, "the paused job ran");
    let idle: String = one(c, "SELECT state FROM jobs.daemon_status WHERE name = 'idle'");
    assert_eq!(idle, "stopped");
}

#[test]
fn dumps_carry_every_definition_within_a_cluster() {
    // Four databases with daemons and every-second jobs: room for their workers.
    let (c, mut s) = Cluster::with_app_db("backups", "max_worker_processes = 48");
    s.batch_execute(SETUP).unwrap();
    // A one-off that fires before the dump: restored, it is not replayed.
    s.batch_execute(
        "SELECT jobs.schedule('once', (now() + interval '2 seconds')::text,
                              'INSERT INTO log (job, who) VALUES (''once'', current_user)')",
    )
    .unwrap();
    wait_log(&mut s, "once", "-infinity");
    let before = definitions(&mut s);
    assert_eq!(before.len(), 10, "{before:#?}");

    // pg_dump -Fc, pg_restore into a new database.
    let dir = c.dir.display().to_string();
    let port = c.port.to_string();
    let conn = ["-h", &dir, "-p", &port, "-U", "postgres"];
    c.pg(&[&["pg_dump"][..], &conn, &["-Fc", "-f", "app.dump", "app"]].concat());
    c.pg(&[&["createdb"][..], &conn, &["restored"]].concat());
    c.pg(&[&["pg_restore"][..], &conn, &["-d", "restored", "app.dump"]].concat());
    let mut r = c.connect("restored");
    assert_eq!(definitions(&mut r), renamed(&before, "app", "restored"));
    // The passed one-off comes back paused, saying why.
    assert_eq!(paused_jobs(&mut s), ["paused"]);
    assert_eq!(paused_jobs(&mut r), ["once", "paused"]);
    let reason: String = one(
        &mut r,
        "SELECT disabled_reason FROM jobs.job_status WHERE name = 'once'",
    );
    assert!(reason.contains("not replayed"), "{reason}");
    check_restored(&mut r);
    let owners: i64 = one(
        &mut r,
        "SELECT count(*) FROM pg_type WHERE typnamespace = 'jobs'::regnamespace AND typname LIKE 'jobs of %'",
    );
    assert_eq!(owners, 3, "ownership anchors of alice, bob and carol");
    let next: i64 = one(&mut r, "SELECT nextval('jobs.job_id_seq')");
    let max: i64 = one(&mut r, "SELECT max(id) FROM jobs.job");
    assert!(next > max, "the id sequence follows the restored ids");

    // A plain dump through psql, into a database that has the extension
    // already; and pg_restore --no-owner (owners of jobs are data: kept).
    c.pg(&[&["createdb"][..], &conn, &["plain"]].concat());
    c.connect("plain")
        .batch_execute("CREATE EXTENSION pg_jobs")
        .unwrap();
    c.pg(&[&["pg_dump"][..], &conn, &["-f", "app.sql", "app"]].concat());
    c.pg(&[&["psql"][..], &conn, &["-q", "-d", "plain", "-f", "app.sql"]].concat());
    let mut p = c.connect("plain");
    assert_eq!(definitions(&mut p).len(), before.len());
    check_restored(&mut p);
    c.pg(&[&["createdb"][..], &conn, &["no_owner"]].concat());
    c.pg(&[
        &["pg_restore"][..],
        &conn,
        &["--no-owner", "-d", "no_owner", "app.dump"],
    ]
    .concat());
    let mut n = c.connect("no_owner");
    let owners: Vec<String> = n
        .query("SELECT DISTINCT owner::text FROM jobs.job ORDER BY 1", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(owners, ["alice", "bob", "carol", "postgres"]);

    // --schema-only carries no jobs.
    c.pg(&[&["createdb"][..], &conn, &["schema_only"]].concat());
    c.pg(&[
        &["pg_restore"][..],
        &conn,
        &["--schema-only", "-d", "schema_only", "app.dump"],
    ]
    .concat());
    let none: i64 = one(&mut c.connect("schema_only"), "SELECT count(*) FROM jobs.job");
    assert_eq!(none, 0);
}

#[test]
fn another_cluster_gets_owners_by_name_and_a_missing_owner_pauses_its_job() {
    let (c, mut s) = Cluster::with_app_db("backups_from", "");
    s.batch_execute(SETUP).unwrap();
    let before = definitions(&mut s);
    let dir = c.dir.display().to_string();
    let port = c.port.to_string();
    c.pg(&[
        "pg_dump", "-h", &dir, "-p", &port, "-U", "postgres", "-Fc", "-f", "app.dump", "app",
    ]);

    // The target's roles were made in another order (other OIDs), and
    // carol is missing.
    let t = Cluster::start("backups_to", "");
    let mut admin = t.connect("postgres");
    admin
        .batch_execute("CREATE ROLE filler; CREATE ROLE bob LOGIN; CREATE ROLE alice LOGIN")
        .unwrap();
    admin.batch_execute("CREATE DATABASE copy").unwrap();
    let moved: bool = one(&mut admin, "SELECT 'alice'::regrole::oid > 'bob'::regrole::oid");
    assert!(moved, "alice's OID differs from the source's order");
    let dump = c.dir.join("app.dump").display().to_string();
    let tdir = t.dir.display().to_string();
    let tport = t.port.to_string();
    // Errors are expected (roles missing for ALTER … OWNER TO carol, none
    // here): pg_restore reports them and goes on.
    let _ = t.pg_try(&[
        "pg_restore",
        "-h",
        &tdir,
        "-p",
        &tport,
        "-U",
        "postgres",
        "-d",
        "copy",
        &dump,
    ]);
    let mut r = t.connect("copy");
    let after = definitions(&mut r);
    let carols = |d: &&String| d.contains(" | carols | ");
    assert_eq!(
        after.iter().filter(|d| !carols(d)).cloned().collect::<Vec<_>>(),
        renamed(&before, "app", "copy")
            .iter()
            .filter(|d| !carols(d))
            .cloned()
            .collect::<Vec<_>>(),
        "owners by name, every setting"
    );
    assert_eq!(paused_jobs(&mut r), ["carols", "paused"]);
    let (owner, enabled, reason): (String, bool, String) = {
        let row = r
            .query_one(
                "SELECT owner::text, enabled, disabled_reason FROM jobs.job_status WHERE name = 'carols'",
                &[],
            )
            .unwrap();
        (row.get(0), row.get(1), row.get(2))
    };
    assert_eq!(
        (owner.as_str(), enabled),
        ("-", false),
        "carol's job: no owner, paused"
    );
    assert!(reason.contains("carol"), "{reason}");
    check_restored(&mut r);
    let carol_ran: i64 = one(
        &mut r,
        "SELECT count(*) FROM log WHERE job = 'carols' AND at > now() - interval '1 minute'",
    );
    assert_eq!(carol_ran, 0);

    // pg_dumpall: roles and databases together, into a fresh cluster;
    // carol comes with it, and so does her job.
    c.pg(&[
        "pg_dumpall",
        "-h",
        &dir,
        "-p",
        &port,
        "-U",
        "postgres",
        "-f",
        "all.sql",
    ]);
    let a = Cluster::start("backups_all", "");
    let all = c.dir.join("all.sql").display().to_string();
    let adir = a.dir.display().to_string();
    let aport = a.port.to_string();
    // (CREATE ROLE postgres fails there, as it exists: psql goes on.)
    a.pg(&[
        "psql", "-q", "-h", &adir, "-p", &aport, "-U", "postgres", "-d", "postgres", "-f", &all,
    ]);
    let mut d = a.connect("app");
    assert_eq!(definitions(&mut d), before, "everything, carol's job included");
    assert_eq!(paused_jobs(&mut d), ["paused"]);
    let since: String = one(&mut d, "SELECT now()::text");
    assert_eq!(wait_log(&mut d, "carols", &since), "carol");
}

#[test]
fn what_each_pg_dump_selection_carries() {
    let (c, mut s) = Cluster::with_app_db("backups_selections", "");
    s.batch_execute(SETUP).unwrap();
    let dir = c.dir.display().to_string();
    let port = c.port.to_string();
    let dump = |args: &[&str]| -> String {
        let mut all = vec!["pg_dump", "-h", &dir, "-p", &port, "-U", "postgres"];
        all.extend_from_slice(args);
        all.push("app");
        c.pg(&all)
    };
    let carries = |text: &str| text.contains("COPY jobs.definition");
    assert!(carries(&dump(&[])), "a whole dump carries the definitions");
    assert!(carries(&dump(&["--data-only"])), "--data-only carries them");
    assert!(!carries(&dump(&["--schema-only"])), "--schema-only does not");
    assert!(
        !carries(&dump(&["-n", "public"])),
        "-n of another schema does not"
    );
    assert!(!carries(&dump(&["-t", "log"])), "-t of another table does not");
    assert!(carries(&dump(&["-n", "jobs"])), "-n jobs does");
}

#[test]
fn point_in_time_recovery_has_the_jobs_of_that_moment_and_starts_paused_when_told() {
    let archive = std::env::temp_dir().join(format!("pg_jobs_itest/pitr-archive-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&archive);
    std::fs::create_dir_all(&archive).unwrap();
    // The cluster's OS user writes it.
    std::process::Command::new("chmod")
        .arg("777")
        .arg(&archive)
        .status()
        .unwrap();
    let conf = format!(
        "wal_level = replica\narchive_mode = on\narchive_command = 'cp %p {}/%f'",
        archive.display()
    );
    let (c, mut s) = Cluster::with_app_db("pitr", &conf);
    s.batch_execute(
        "CREATE TABLE log (job text, who text DEFAULT current_user, at timestamptz DEFAULT clock_timestamp());
         SELECT jobs.schedule('ticker', '1 second', 'INSERT INTO log (job) VALUES (''ticker'')');",
    )
    .unwrap();
    let sleeper: i64 = one(
        &mut s,
        "SELECT jobs.submit('SELECT pg_sleep(600)', max_attempts => 2)",
    );
    wait_for("the sleeper to run", DEADLINE, || {
        let st: String = one(
            &mut s,
            &format!("SELECT status FROM jobs.run WHERE id = {sleeper}"),
        );
        (st == "running").then_some(())
    });
    wait_log(&mut s, "ticker", "-infinity");
    let base = Cluster::backup_of(&c, "pitr_base");

    // Two changes, and the moment between them.
    s.batch_execute("SELECT jobs.schedule('earlier', '0 4 * * *', 'SELECT 1')")
        .unwrap();
    let moment: String = one(&mut s, "SELECT clock_timestamp()::text");
    wait_for("the clock to move past the moment", DEADLINE, || {
        let past: bool = one(
            &mut s,
            &format!("SELECT clock_timestamp() > '{moment}'::timestamptz + interval '50 ms'"),
        );
        past.then_some(())
    });
    s.batch_execute("SELECT jobs.schedule('later', '0 5 * * *', 'SELECT 1')")
        .unwrap();
    let segment: String = one(&mut s, "SELECT pg_walfile_name(pg_switch_wal())");
    wait_for("the WAL to be archived", DEADLINE, || {
        let done: bool = one(
            &mut s,
            &format!("SELECT COALESCE(last_archived_wal >= '{segment}', false) FROM pg_stat_archiver"),
        );
        done.then_some(())
    });

    // Recover the base backup to the moment, with jobs paused (the switch
    // for a restored or cloned cluster).
    let mut r = base;
    r.data_file("recovery.signal", "");
    r.add_conf(&format!(
        "restore_command = 'cp {}/%f %p'\nrecovery_target_time = '{moment}'\nrecovery_target_action = 'promote'\n\
         archive_mode = off\npg_jobs.enabled = off",
        archive.display()
    ));
    r.start_server();
    let mut p = r.connect("app");
    wait_for("recovery to end", DEADLINE, || {
        let rec: bool = one(&mut p, "SELECT pg_is_in_recovery()");
        (!rec).then_some(())
    });
    let names: Vec<String> = p
        .query("SELECT name FROM jobs.job ORDER BY 1", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["earlier", "ticker"], "the jobs of that moment, exactly");
    let schedulers: i64 = one(
        &mut p,
        "SELECT count(*) FROM jobs.workers WHERE kind = 'scheduler'",
    );
    assert_eq!(schedulers, 0, "pg_jobs.enabled = off: no scheduler");

    // Switched on: the jobs run, and only from then; the run that was in
    // flight at the moment ends crashed and is retried.
    let on: String = one(&mut p, "SELECT clock_timestamp()::text");
    p.batch_execute("ALTER SYSTEM SET pg_jobs.enabled = on").unwrap();
    p.batch_execute("SELECT pg_reload_conf()").unwrap();
    wait_log(&mut p, "ticker", &on);
    let early: i64 = one(
        &mut p,
        &format!("SELECT count(*) FROM log WHERE at > '{moment}'::timestamptz AND at < '{on}'::timestamptz"),
    );
    assert_eq!(early, 0, "nothing ran while pg_jobs.enabled was off");
    wait_for("the sleeper to end crashed and be retried", DEADLINE, || {
        let row = p
            .query_one(
                &format!(
                    "SELECT (SELECT status FROM jobs.run WHERE id = {sleeper}),
                            (SELECT count(*) FROM jobs.run WHERE command = 'SELECT pg_sleep(600)' AND attempt = 2)"
                ),
                &[],
            )
            .unwrap();
        (row.get::<_, String>(0) == "crashed" && row.get::<_, i64>(1) == 1).then_some(())
    });
}

#[test]
fn a_database_updated_from_0_3_0_dumps_the_jobs_it_had() {
    let c = Cluster::start("backups_update", "");
    c.connect("postgres")
        .batch_execute("CREATE DATABASE app")
        .unwrap();
    let mut s = c.connect("app");
    s.batch_execute(
        "CREATE EXTENSION pg_jobs VERSION '0.3.0';
         SELECT jobs.schedule('old', '0 3 * * *', 'SELECT 1');
         SELECT jobs.daemon('sleepy', 'SELECT pg_sleep(3600)');",
    )
    .unwrap();
    s.batch_execute("ALTER EXTENSION pg_jobs UPDATE").unwrap();
    let kept: Vec<String> = s
        .query(
            "SELECT kind || ' ' || (definition ->> 'name') FROM jobs.definition ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        kept,
        ["daemon sleepy", "job old"],
        "the update wrote what the database had"
    );
    let dir = c.dir.display().to_string();
    let port = c.port.to_string();
    c.pg(&[
        "pg_dump", "-h", &dir, "-p", &port, "-U", "postgres", "-Fc", "-f", "app.dump", "app",
    ]);
    c.pg(&["createdb", "-h", &dir, "-p", &port, "-U", "postgres", "copy"]);
    c.pg(&[
        "pg_restore",
        "-h",
        &dir,
        "-p",
        &port,
        "-U",
        "postgres",
        "-d",
        "copy",
        "app.dump",
    ]);
    let mut r = c.connect("copy");
    let names: Vec<String> = r
        .query(
            "SELECT name FROM jobs.job UNION ALL SELECT name FROM jobs.daemon ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["old", "sleepy"]);
}
