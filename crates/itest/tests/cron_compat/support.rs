//! Helpers of `cron_compat.rs`: a cluster with pg_jobs_cron, the rows of
//! `cron.job` and `cron.job_run_details`, refused statements, and a check
//! that a count stays put.

use pg_jobs_itest::{one, wait_for, Cluster, DEADLINE};
use postgres::error::DbError;
use postgres::Client;
use std::time::{Duration, Instant};

/// A cluster whose database `app` has pg_jobs (made by the harness, checked
/// here: pg_jobs_cron requires it) and pg_jobs_cron, and a superuser
/// session in it.
pub fn cron_cluster(name: &str, extra_conf: &str) -> (Cluster, Client) {
    let (c, mut s) = Cluster::with_app_db(name, extra_conf);
    let pg_jobs: i64 = one(
        &mut s,
        "SELECT count(*) FROM pg_extension WHERE extname = 'pg_jobs'",
    );
    assert_eq!(pg_jobs, 1, "the harness creates pg_jobs in app");
    create_cron_extension(&mut s);
    (c, s)
}

/// `CREATE EXTENSION pg_jobs_cron`, with the server's message on failure.
pub fn create_cron_extension(s: &mut Client) {
    if let Err(e) = s.batch_execute("CREATE EXTENSION pg_jobs_cron") {
        panic!(
            "CREATE EXTENSION pg_jobs_cron: {:?}",
            e.as_db_error().unwrap_or_else(|| panic!("{e}"))
        );
    }
}

/// Roles that use cron.* as pg_cron's documentation has them: `GRANT USAGE
/// ON SCHEMA cron` (harmless if the schema is already usable by PUBLIC).
pub fn grant_cron_usage(s: &mut Client, roles: &str) {
    s.batch_execute(&format!("GRANT USAGE ON SCHEMA cron TO {roles}"))
        .unwrap();
}

/// `GRANT EXECUTE` on the two functions pg_cron revokes from PUBLIC.
pub fn grant_admin_functions(s: &mut Client, roles: &str) {
    s.batch_execute(&format!(
        "GRANT EXECUTE ON FUNCTION cron.schedule_in_database(text, text, text, text, text, boolean),
                                   cron.alter_job(bigint, text, text, text, text, boolean) TO {roles}"
    ))
    .unwrap();
}

/// The error of a statement that must fail (panics if it succeeds).
pub fn error_of(c: &mut Client, sql: &str) -> DbError {
    match c.batch_execute(sql) {
        Ok(()) => panic!("accepted: {sql}"),
        Err(e) => e
            .as_db_error()
            .unwrap_or_else(|| panic!("{sql}: not a server error: {e}"))
            .clone(),
    }
}

/// The SQLSTATE and message of a statement that must fail.
pub fn refused(c: &mut Client, sql: &str) -> (String, String) {
    let e = error_of(c, sql);
    (e.code().code().to_owned(), e.message().to_owned())
}

/// Assert that `sql` fails with `code` and exactly `message`.
pub fn assert_refused(c: &mut Client, sql: &str, code: &str, message: &str) {
    let (got_code, got_message) = refused(c, sql);
    assert_eq!(
        (got_code.as_str(), got_message.as_str()),
        (code, message),
        "{sql}"
    );
}

/// One row of `cron.job`, all nine columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronJob {
    pub jobid: i64,
    pub schedule: String,
    pub command: String,
    pub nodename: String,
    pub nodeport: i32,
    pub database: String,
    pub username: String,
    pub active: bool,
    pub jobname: Option<String>,
}

impl CronJob {
    /// The row pg_cron would show for a job on this server (nodename
    /// 'localhost', nodeport the server's port).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        c: &Cluster,
        jobid: i64,
        schedule: &str,
        command: &str,
        database: &str,
        username: &str,
        active: bool,
        jobname: Option<&str>,
    ) -> CronJob {
        CronJob {
            jobid,
            schedule: schedule.into(),
            command: command.into(),
            nodename: "localhost".into(),
            nodeport: i32::from(c.port),
            database: database.into(),
            username: username.into(),
            active,
            jobname: jobname.map(str::to_owned),
        }
    }
}

/// The rows of `cron.job` the session sees, by jobid.
pub fn cron_jobs(c: &mut Client) -> Vec<CronJob> {
    c.query(
        "SELECT jobid, schedule, command, nodename, nodeport, database, username, active, jobname
           FROM cron.job ORDER BY jobid",
        &[],
    )
    .unwrap_or_else(|e| panic!("SELECT FROM cron.job: {e:?}"))
    .iter()
    .map(|r| CronJob {
        jobid: r.get(0),
        schedule: r.get(1),
        command: r.get(2),
        nodename: r.get(3),
        nodeport: r.get(4),
        database: r.get(5),
        username: r.get(6),
        active: r.get(7),
        jobname: r.get(8),
    })
    .collect()
}

/// The jobids of `cron.job` the session sees.
pub fn cron_jobids(c: &mut Client) -> Vec<i64> {
    cron_jobs(c).iter().map(|j| j.jobid).collect()
}

/// The pg_jobs job behind a cron.job row, as a superuser reads `jobs.job`:
/// (name, owner's role name, command, target database, enabled).
pub fn pg_jobs_job(s: &mut Client, id: i64) -> Option<(Option<String>, String, String, String, bool)> {
    s.query_opt(
        "SELECT j.name, r.rolname::text, j.command, j.database::text, j.enabled
           FROM jobs.job j JOIN pg_roles r ON r.oid = j.owner WHERE j.id = $1",
        &[&id],
    )
    .unwrap()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4)))
}

/// Every row of `cron.job` (as a superuser sees it) is the pg_jobs job of
/// the same id: jobname = name, username = owner, command, database,
/// active = enabled; and there are no others.
pub fn assert_mirrors_pg_jobs(s: &mut Client) {
    let cron = cron_jobs(s);
    for j in &cron {
        assert_eq!(
            pg_jobs_job(s, j.jobid),
            Some((
                j.jobname.clone(),
                j.username.clone(),
                j.command.clone(),
                j.database.clone(),
                j.active
            )),
            "jobs.job behind {j:?}"
        );
    }
    let ids: Vec<i64> = s
        .query("SELECT id FROM jobs.job ORDER BY id", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        ids,
        cron.iter().map(|j| j.jobid).collect::<Vec<_>>(),
        "cron.job shows a superuser every pg_jobs job of the database"
    );
}

/// One row of `cron.job_run_details`; times as epoch seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct RunDetail {
    pub jobid: i64,
    pub runid: i64,
    pub job_pid: Option<i32>,
    pub database: Option<String>,
    pub username: Option<String>,
    pub command: Option<String>,
    pub status: Option<String>,
    pub return_message: Option<String>,
    pub start_time: Option<f64>,
    pub end_time: Option<f64>,
}

/// The rows of `cron.job_run_details` the session sees that match `filter`
/// (an SQL condition), by runid.
pub fn run_details(c: &mut Client, filter: &str) -> Vec<RunDetail> {
    let sql = format!(
        "SELECT jobid, runid, job_pid, database, username, command, status, return_message,
                extract(epoch FROM start_time)::float8, extract(epoch FROM end_time)::float8
           FROM cron.job_run_details WHERE {filter} ORDER BY runid"
    );
    c.query(&sql, &[])
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .iter()
        .map(|r| RunDetail {
            jobid: r.get(0),
            runid: r.get(1),
            job_pid: r.get(2),
            database: r.get(3),
            username: r.get(4),
            command: r.get(5),
            status: r.get(6),
            return_message: r.get(7),
            start_time: r.get(8),
            end_time: r.get(9),
        })
        .collect()
}

/// The runids of the rows of `cron.job_run_details` the session sees that
/// match `filter`.
pub fn runids(c: &mut Client, filter: &str) -> Vec<i64> {
    run_details(c, filter).iter().map(|r| r.runid).collect()
}

/// The columns of relation `rel`, in order, with their types.
pub fn columns(c: &mut Client, rel: &str) -> Vec<(String, String)> {
    c.query(
        "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
          WHERE attrelid = $1::text::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        &[&rel],
    )
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1)))
    .collect()
}

/// Wait until job `id` has no run queued, starting or running (read as a
/// superuser from `jobs.run`).
pub fn no_live_runs(s: &mut Client, id: i64) {
    wait_for(&format!("no live run of job {id}"), DEADLINE, || {
        let live: i64 = s
            .query_one(
                "SELECT count(*) FROM jobs.run WHERE job_id = $1 AND status IN ('queued', 'starting', 'running')",
                &[&id],
            )
            .unwrap()
            .get(0);
        (live == 0).then_some(())
    });
}

/// `value` stays what it is now for all of `window`: polled every 100 ms,
/// failing at the first change. Returns the value.
pub fn stays_for(what: &str, window: Duration, mut value: impl FnMut() -> i64) -> i64 {
    let first = value();
    let start = Instant::now();
    while start.elapsed() < window {
        std::thread::sleep(Duration::from_millis(100)); // poll interval of a deadline-bounded check
        let now = value();
        assert_eq!(
            now,
            first,
            "{what} changed {:.1} s into the {window:?} window",
            start.elapsed().as_secs_f64()
        );
    }
    first
}
