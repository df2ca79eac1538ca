//! Who may do what through cron.*, and the habits of pg_cron users that
//! write to its tables (`UPDATE cron.job`, `DELETE FROM
//! cron.job_run_details`).

use crate::support::{
    assert_refused, cron_cluster, cron_jobids, cron_jobs, grant_admin_functions, grant_cron_usage,
    no_live_runs, pg_jobs_job, refused, run_details, runids, stays_for, CronJob,
};
use pg_jobs_itest::{one, wait_for, wait_run, DEADLINE};
use std::time::Duration;

/// pg_cron's privileges: `schedule_in_database` and `alter_job` are
/// revoked from PUBLIC (42501 until GRANTed); then a non-superuser may not
/// create a job for another role or alter a username (42501), may not
/// target a database it cannot CONNECT to (42501, pg_cron's "User x does
/// not have CONNECT privilege on db"), and finds other users' jobs missing
/// (42704, pg_cron's texts). `cron.job` and `cron.job_run_details` show a
/// user exactly its own rows (`username = current_user`: not those of
/// roles it is a member of), a superuser all. Role names compare exactly
/// ("CaseOwner" is not caseowner), and a role that cannot log in cannot
/// own a job (42501 `role "x" can not log in`).
#[test]
fn privileges_are_pg_crons() {
    let (c, mut s) = cron_cluster("cron-privileges", "");
    s.batch_execute(
        r#"CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE ROLE team LOGIN; GRANT alice TO team;
           CREATE ROLE nologin NOLOGIN; CREATE ROLE "CaseOwner" LOGIN; CREATE ROLE caseowner LOGIN;"#,
    )
    .unwrap();
    grant_cron_usage(&mut s, r#"alice, bob, team, "CaseOwner", caseowner"#);
    let mut postgres = c.connect("postgres");
    postgres.batch_execute("CREATE DATABASE locked").unwrap();
    postgres
        .batch_execute("REVOKE CONNECT ON DATABASE locked FROM PUBLIC")
        .unwrap();
    let mut alice = c.connect_as("app", "alice");
    let mut bob = c.connect_as("app", "bob");

    // Not executable by PUBLIC.
    let a: i64 = one(&mut alice, "SELECT cron.schedule('a', '@daily', 'SELECT 1')");
    assert_refused(
        &mut alice,
        "SELECT cron.schedule_in_database('a2', '@daily', 'SELECT 1', 'app')",
        "42501",
        "permission denied for function schedule_in_database",
    );
    assert_refused(
        &mut alice,
        &format!("SELECT cron.alter_job({a}, active => false)"),
        "42501",
        "permission denied for function alter_job",
    );
    let b: i64 = one(&mut bob, "SELECT cron.schedule('b', '@daily', 'SELECT 2')");
    let bobs = [CronJob::new(
        &c,
        b,
        "@daily",
        "SELECT 2",
        "app",
        "bob",
        true,
        Some("b"),
    )];

    grant_admin_functions(&mut s, "alice, bob");
    let a2: i64 = one(
        &mut alice,
        "SELECT cron.schedule_in_database('a2', '@daily', 'SELECT 3', 'app')",
    );
    s.batch_execute(&format!("SELECT cron.alter_job({a}, active => false)"))
        .unwrap();
    alice
        .batch_execute(&format!("SELECT cron.alter_job({a}, active => true)"))
        .unwrap();
    let alices = [
        CronJob::new(&c, a, "@daily", "SELECT 1", "app", "alice", true, Some("a")),
        CronJob::new(&c, a2, "@daily", "SELECT 3", "app", "alice", true, Some("a2")),
    ];
    assert_eq!(cron_jobs(&mut alice), alices);

    // What only a superuser may do, and other users' jobs.
    for (sql, code, message) in [
        (
            "SELECT cron.schedule_in_database('x', '@daily', 'SELECT 1', 'app', username => 'bob')"
                .to_owned(),
            "42501",
            "must be superuser to create a job for another role".to_owned(),
        ),
        (
            format!("SELECT cron.alter_job({a}, username => 'bob')"),
            "42501",
            "must be superuser to alter username".into(),
        ),
        (
            "SELECT cron.schedule_in_database('x', '@daily', 'SELECT 1', 'locked')".into(),
            "42501",
            "User alice does not have CONNECT privilege on locked".into(),
        ),
        (
            format!("SELECT cron.alter_job({a}, database => 'locked')"),
            "42501",
            "User alice does not have CONNECT privilege on locked".into(),
        ),
        (
            format!("SELECT cron.alter_job({b}, command => 'SELECT 666')"),
            "42704",
            format!("Job {b} does not exist or you don't own it"),
        ),
        (
            format!("SELECT cron.alter_job(job_id => {b}, active => false)"),
            "42704",
            format!("Job {b} does not exist or you don't own it"),
        ),
        (
            format!("SELECT cron.unschedule({b})"),
            "42704",
            format!("could not find valid entry for job {b}"),
        ),
        (
            "SELECT cron.unschedule('b')".into(),
            "42704",
            "could not find valid entry for job 'b'".into(),
        ),
    ] {
        assert_refused(&mut alice, &sql, code, &message);
    }
    assert_eq!(cron_jobs(&mut alice), alices, "alice's jobs unchanged");
    assert_eq!(cron_jobs(&mut bob), bobs, "bob's job unchanged");

    // Who sees which rows: cron.job.
    let mut team = c.connect_as("app", "team");
    assert_eq!(
        cron_jobids(&mut team),
        Vec::<i64>::new(),
        "a member of alice is not alice"
    );
    assert_eq!(cron_jobids(&mut s), [a, b, a2], "a superuser sees all");

    // cron.job_run_details.
    let ra: i64 = one(&mut alice, "SELECT jobs.run_now('a')");
    let rb: i64 = one(&mut bob, "SELECT jobs.run_now('b')");
    assert_eq!(wait_run(&mut alice, ra).0, "succeeded");
    assert_eq!(wait_run(&mut bob, rb).0, "succeeded");
    // (Only these two runs are asserted on by id: the jobs are '@daily'.)
    for (session, user) in [(&mut alice, "alice"), (&mut bob, "bob")] {
        let rows = run_details(session, "true");
        assert!(
            rows.iter().all(|r| r.username.as_deref() == Some(user)),
            "{user} sees only its own runs: {rows:?}"
        );
    }
    let ours = format!("runid IN ({ra}, {rb})");
    assert_eq!(runids(&mut alice, &ours), [ra]);
    assert_eq!(runids(&mut bob, &ours), [rb]);
    assert_eq!(
        runids(&mut team, "true"),
        Vec::<i64>::new(),
        "a member of alice is not alice"
    );
    assert_eq!(runids(&mut s, &ours), [ra, rb], "a superuser sees all");

    // Role names compare exactly.
    let case: i64 = one(
        &mut s,
        "SELECT cron.schedule_in_database('case', '@daily', 'SELECT 1', 'app', username => 'CaseOwner')",
    );
    let case_row = CronJob::new(
        &c,
        case,
        "@daily",
        "SELECT 1",
        "app",
        "CaseOwner",
        true,
        Some("case"),
    );
    let only_case = vec![case_row];
    assert_eq!(
        cron_jobs(&mut s)
            .into_iter()
            .filter(|j| j.jobid == case)
            .collect::<Vec<_>>(),
        only_case
    );
    assert_eq!(
        pg_jobs_job(&mut s, case).map(|j| j.1),
        Some("CaseOwner".to_owned())
    );
    let mut upper = c.connect_as("app", "CaseOwner");
    let mut lower = c.connect_as("app", "caseowner");
    assert_eq!(cron_jobs(&mut upper), only_case);
    assert_eq!(cron_jobids(&mut lower), Vec::<i64>::new());
    let lowers: i64 = one(&mut lower, "SELECT cron.schedule('case', '@hourly', 'SELECT 2')");
    assert_ne!(lowers, case, "caseowner's 'case' is not \"CaseOwner\"'s");
    assert_eq!(cron_jobs(&mut upper), only_case);
    assert!(one::<bool>(&mut lower, "SELECT cron.unschedule('case')"));
    assert_eq!(cron_jobs(&mut upper), only_case, "caseowner removed only its own");

    // Owners must be able to log in.
    for sql in [
        "SELECT cron.schedule_in_database('x', '@daily', 'SELECT 1', 'app', username => 'nologin')"
            .to_owned(),
        format!("SELECT cron.alter_job({a}, username => 'nologin')"),
    ] {
        assert_refused(&mut s, &sql, "42501", "role \"nologin\" can not log in");
    }
    // A superuser may give a job to another role.
    s.batch_execute(&format!("SELECT cron.alter_job({a}, username => 'bob')"))
        .unwrap();
    assert_eq!(cron_jobids(&mut alice), [a2]);
    assert_eq!(cron_jobids(&mut bob), [a, b]);
    assert_eq!(pg_jobs_job(&mut s, a).map(|j| j.1), Some("bob".to_owned()));
}

/// Two habits of pg_cron users. A superuser writes `cron.job`: `UPDATE
/// cron.job SET active = false WHERE jobid = N` pauses the job (it stops
/// running, jobs.job.enabled false) and `active = true` resumes it; an
/// UPDATE of the other columns changes the job; `DELETE FROM cron.job`
/// unschedules. A plain role may not write `cron.job` (42501). And any user
/// cleans up `cron.job_run_details` with `DELETE … WHERE end_time < now() -
/// interval '7 days'` or a DELETE of all of it: only its own finished runs
/// go (counted as such), not its unfinished run nor other users' runs.
#[test]
fn updating_cron_job_and_deleting_run_details_work_as_in_pg_cron() {
    let (c, mut s) = cron_cluster("cron-habits", "pg_jobs.history_retention = '30d'");
    s.batch_execute("CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN; CREATE TABLE ticks (at timestamptz)")
        .unwrap();
    grant_cron_usage(&mut s, "alice, bob");
    let mut alice = c.connect_as("app", "alice");
    let mut bob = c.connect_as("app", "bob");

    // Pause and resume by UPDATE.
    let tick: i64 = one(
        &mut s,
        "SELECT cron.schedule('1 seconds', 'INSERT INTO ticks VALUES (clock_timestamp())')",
    );
    let ticks = "SELECT count(*) FROM ticks";
    wait_for("a first tick", DEADLINE, || {
        (one::<i64>(&mut s, ticks) >= 1).then_some(())
    });
    let updated = s
        .execute(
            &format!("UPDATE cron.job SET active = false WHERE jobid = {tick}"),
            &[],
        )
        .unwrap();
    assert_eq!(updated, 1, "UPDATE 1");
    let active = |s: &mut postgres::Client| -> bool {
        one(s, &format!("SELECT active FROM cron.job WHERE jobid = {tick}"))
    };
    assert!(!active(&mut s));
    assert_eq!(
        pg_jobs_job(&mut s, tick).map(|j| j.4),
        Some(false),
        "jobs.job.enabled"
    );
    no_live_runs(&mut s, tick);
    let paused = stays_for("ticks while paused", Duration::from_secs(3), || {
        one(&mut s, ticks)
    });
    s.batch_execute(&format!("UPDATE cron.job SET active = true WHERE jobid = {tick}"))
        .unwrap();
    assert!(active(&mut s));
    wait_for("ticks again after active = true", DEADLINE, || {
        (one::<i64>(&mut s, ticks) > paused).then_some(())
    });

    // The other columns, and DELETE.
    let m: i64 = one(&mut s, "SELECT cron.schedule('m', '@daily', 'SELECT 1')");
    let updated = s
        .execute(
            &format!(
                "UPDATE cron.job SET schedule = '0 9 * * *', command = 'SELECT 9', database = 'postgres',
                                     username = 'alice' WHERE jobid = {m}"
            ),
            &[],
        )
        .unwrap();
    assert_eq!(updated, 1);
    assert_eq!(
        cron_jobs(&mut alice),
        [CronJob::new(
            &c,
            m,
            "0 9 * * *",
            "SELECT 9",
            "postgres",
            "alice",
            true,
            Some("m")
        )]
    );
    assert_eq!(pg_jobs_job(&mut s, m).map(|j| j.1), Some("alice".to_owned()));
    for id in [tick, m] {
        let deleted = s
            .execute(&format!("DELETE FROM cron.job WHERE jobid = {id}"), &[])
            .unwrap();
        assert_eq!(deleted, 1);
        assert_eq!(
            pg_jobs_job(&mut s, id),
            None,
            "DELETE FROM cron.job unscheduled {id}"
        );
    }
    assert_eq!(cron_jobids(&mut s), Vec::<i64>::new());

    // A plain role may only read cron.job.
    let a: i64 = one(&mut alice, "SELECT cron.schedule('a', '@yearly', 'SELECT 1')");
    let alices = cron_jobs(&mut alice);
    for sql in [
        format!("UPDATE cron.job SET active = false WHERE jobid = {a}"),
        format!("UPDATE cron.job SET command = 'SELECT 2' WHERE jobid = {a}"),
        format!("DELETE FROM cron.job WHERE jobid = {a}"),
    ] {
        assert_eq!(refused(&mut alice, &sql).0, "42501", "{sql}");
    }
    assert_eq!(cron_jobs(&mut alice), alices, "unchanged");
    assert_eq!(pg_jobs_job(&mut s, a).map(|j| j.4), Some(true));

    // Runs of alice (two finished, one going, one submitted) and of bob.
    one::<i64>(
        &mut alice,
        "SELECT cron.schedule('slow', '@yearly', 'SELECT pg_sleep(120)')",
    ); // runs through the test: alice's unfinished run
    one::<i64>(&mut bob, "SELECT cron.schedule('b', '@yearly', 'SELECT 1')");
    let finished = |c: &mut postgres::Client, sql: &str| -> i64 {
        let id: i64 = one(c, sql);
        assert_eq!(wait_run(c, id).0, "succeeded", "{sql}");
        id
    };
    let a_old = finished(&mut alice, "SELECT jobs.run_now('a')");
    let a_new = finished(&mut alice, "SELECT jobs.run_now('a')");
    let b_old = finished(&mut bob, "SELECT jobs.run_now('b')");
    let submitted = finished(&mut alice, "SELECT jobs.submit('SELECT 1')");
    s.batch_execute(&format!(
        "UPDATE jobs.run SET submitted_at = submitted_at - interval '8 days', started_at = started_at - interval '8 days',
                             finished_at = finished_at - interval '8 days'
          WHERE id IN ({a_old}, {b_old})"
    ))
    .unwrap();
    // The superuser also sees the runs of its jobs above.
    let not_ticks = format!("jobid NOT IN ({tick}, {m})");
    let slow: i64 = one(&mut alice, "SELECT jobs.run_now('slow')");
    wait_for(
        "alice's slow run running in cron.job_run_details",
        DEADLINE,
        || {
            let r = run_details(&mut alice, &format!("runid = {slow}"));
            (r.len() == 1 && r[0].status.as_deref() == Some("running")).then_some(())
        },
    );
    assert_eq!(
        runids(&mut alice, "true"),
        [a_old, a_new, slow],
        "submitted runs are not shown"
    );
    assert_eq!(runids(&mut s, &not_ticks), [a_old, a_new, b_old, slow]);

    let deleted = alice
        .execute(
            "DELETE FROM cron.job_run_details WHERE end_time < now() - interval '7 days'",
            &[],
        )
        .unwrap();
    assert_eq!(deleted, 1, "alice's old run, not bob's");
    assert_eq!(runids(&mut s, &not_ticks), [a_new, b_old, slow]);
    let deleted = alice.execute("DELETE FROM cron.job_run_details", &[]).unwrap();
    assert_eq!(
        deleted, 1,
        "alice's finished run; her running one is kept and not counted"
    );
    assert_eq!(runids(&mut s, &not_ticks), [b_old, slow]);
    assert_eq!(runids(&mut alice, "true"), [slow]);
    let deleted = bob
        .execute(
            &format!("DELETE FROM cron.job_run_details WHERE runid = {slow}"),
            &[],
        )
        .unwrap();
    assert_eq!(deleted, 0, "bob cannot delete alice's run");
    assert_eq!(runids(&mut s, &not_ticks), [b_old, slow]);
    assert_eq!(
        one::<i64>(
            &mut s,
            &format!("SELECT count(*) FROM jobs.run WHERE id = {submitted}")
        ),
        1,
        "a submitted run is not cron's to delete"
    );
}
