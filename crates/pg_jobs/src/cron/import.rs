//! `jobs.import_pg_cron()`: pg_cron's jobs become pg_jobs jobs, and
//! pg_cron's copies inactive, in the caller's one transaction, so that no
//! due instant is run by both or by neither. Run in the database where
//! pg_cron keeps its metadata (`cron.database_name`), with pg_cron
//! installed and preloaded beside pg_jobs; docs/pg_cron.md has the runbook.

use super::roles::i_am_superuser;
use crate::catalog::jobs::{self, JobDef};
use crate::catalog::ownership::{self, Change};
use crate::catalog::row;
use crate::hooks;
use crate::pg::bgw;
use crate::pg::error::{raise, returned_id, OrRaise};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode as Code;

/// A row of pg_cron's `cron.job`.
struct CronJob {
    jobid: i64,
    schedule: String,
    command: String,
    nodename: String,
    nodeport: i32,
    database: String,
    username: String,
    active: bool,
    jobname: Option<String>,
}

/// What became of one pg_cron job: its id, its pg_jobs id, what was done
/// and why (for a skipped one).
type Reported = (i64, Option<i64>, String, Option<String>);

/// Import every job of pg_cron's `cron.job` (see the module comment).
#[pg_extern(volatile, parallel_unsafe)]
fn import_pg_cron() -> TableIterator<
    'static,
    (
        name!(cron_jobid, i64),
        name!(job_id, Option<i64>),
        name!(action, String),
        name!(reason, Option<String>),
    ),
> {
    if !i_am_superuser() {
        raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "permission denied for function import_pg_cron",
            Some("Only superusers may import pg_cron's jobs (they belong to many roles)."),
        );
    }
    let pg_cron_here = Spi::get_one::<bool>(
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname OPERATOR(pg_catalog.=) 'pg_cron')",
    )
    .or_raise("looking for pg_cron")
    .unwrap_or(false);
    if !pg_cron_here {
        raise(
            Code::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "pg_cron is not installed in this database",
            Some("Run jobs.import_pg_cron() in the database pg_cron keeps its jobs in (its cron.database_name setting)."),
        );
    }
    let tz = Spi::get_one::<String>("SELECT pg_catalog.current_setting('cron.timezone', true)")
        .ok()
        .flatten()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| "GMT".to_owned());
    crate::sql_api::validate::validate_timezone(&tz);
    let port = Spi::get_one::<i32>("SELECT pg_catalog.current_setting('port')::int4")
        .or_raise("reading the server's port")
        .unwrap_or(5432);
    wait_past_the_top_of_the_minute();
    let last_starts = pg_cron_last_starts();
    let rows: Vec<Reported> = pg_cron_jobs()
        .into_iter()
        .map(|j| {
            let (id, action, reason) = import_one(&j, &tz, port);
            if let (Some(id), "imported", true) = (id, action, j.active) {
                run_an_instant_pg_cron_has_not_started(id, &j, &tz, last_starts.as_ref());
            }
            (j.jobid, id, action.to_owned(), reason)
        })
        .collect();
    TableIterator::new(rows)
}

/// pg_cron starts the runs due at a minute within its first second or so.
/// Reading its jobs in the first seconds of a minute could find a run it
/// is about to start: wait until 5 s past the minute, so what pg_cron's
/// log says it started is what it will ever start for that minute.
fn wait_past_the_top_of_the_minute() {
    Spi::run(
        "SELECT pg_catalog.pg_sleep(5 - s) FROM (SELECT EXTRACT(SECOND FROM pg_catalog.clock_timestamp()) AS s) t
          WHERE s OPERATOR(pg_catalog.<) 5",
    )
    .or_raise("waiting past the top of the minute");
}

/// When pg_cron last started each job, from its run log; `None` if there
/// is no log to go by (before pg_cron 1.3, or `cron.log_run = off`).
fn pg_cron_last_starts() -> Option<std::collections::HashMap<i64, i64>> {
    let logged = Spi::get_one::<bool>(
        "SELECT pg_catalog.to_regclass('cron.job_run_details') IS NOT NULL
            AND COALESCE(pg_catalog.current_setting('cron.log_run', true), 'on') OPERATOR(pg_catalog.=) 'on'",
    )
    .or_raise("looking for pg_cron's run log")
    .unwrap_or(false);
    if !logged {
        return None;
    }
    let rows = Spi::connect(|c| {
        c.select(
            "SELECT jobid, (EXTRACT(EPOCH FROM pg_catalog.max(start_time)) * 1000000)::int8
               FROM cron.job_run_details WHERE start_time IS NOT NULL GROUP BY jobid",
            None,
            &[],
        )
        .map(|t| {
            t.into_iter()
                .map(|r| (row::get_req::<i64>(&r, 1), row::get_req::<i64>(&r, 2)))
                .collect()
        })
    })
    .or_raise("reading pg_cron's run log");
    Some(rows)
}

/// The gap at the switch: if job `j` fell due in the last minute and
/// pg_cron has not started that run (it was busy: runs it could not start
/// yet it starts later, which being set inactive now prevents), pg_jobs
/// runs it now. Only for cron expressions, and only with pg_cron's run log
/// to tell.
fn run_an_instant_pg_cron_has_not_started(
    id: i64,
    j: &CronJob,
    tz: &str,
    last_starts: Option<&std::collections::HashMap<i64, i64>>,
) {
    let Some(last_starts) = last_starts else { return };
    // Only cron expressions have instants ('N seconds' runs again within
    // seconds anyway; @reboot at the next start).
    let schedule = match pg_jobs_core::pg_cron::to_pg_jobs(&j.schedule)
        .ok()
        .and_then(|text| pg_jobs_core::schedule::Schedule::parse(&text).ok())
    {
        Some(s @ pg_jobs_core::schedule::Schedule::Cron(_)) => s,
        _ => return,
    };
    let Ok(zone) = jiff::tz::TimeZone::get(tz) else {
        return;
    };
    let now = jiff::Timestamp::now();
    let Some(due) = schedule.latest_due_within(now, jiff::SignedDuration::from_secs(60), &zone, now) else {
        return;
    };
    let started = last_starts.get(&j.jobid).copied().unwrap_or(i64::MIN);
    if started >= due.as_microsecond() {
        return;
    }
    returned_id(
        bgw::as_superuser(|| crate::catalog::runs::run_now(id)),
        "queue the run pg_cron missed",
    );
    hooks::wake_scheduler_at_commit();
}

/// pg_cron's jobs, locked against changes until the caller commits.
fn pg_cron_jobs() -> Vec<CronJob> {
    Spi::connect_mut(|c| {
        c.update(
            "SELECT jobid, schedule, command, nodename, nodeport, database, username, active, jobname::text
               FROM cron.job ORDER BY jobid FOR UPDATE",
            None,
            &[],
        )
        .map(|t| {
            t.into_iter()
                .map(|r| CronJob {
                    jobid: row::get_req(&r, 1),
                    schedule: row::get_req(&r, 2),
                    command: row::get_req(&r, 3),
                    nodename: row::get_req(&r, 4),
                    nodeport: row::get_req(&r, 5),
                    database: row::get_req(&r, 6),
                    username: row::get_req(&r, 7),
                    active: row::get_req(&r, 8),
                    jobname: row::get_opt(&r, 9),
                })
                .collect()
        })
    })
    .or_raise("reading pg_cron's cron.job")
}

/// Whether pg_cron would run job `j` on this server: pg_cron connects to
/// `nodename:nodeport`, which for a job of this server is a loopback name
/// or a socket directory, and this server's port.
fn runs_here(j: &CronJob, port: i32) -> bool {
    let local =
        matches!(j.nodename.as_str(), "" | "localhost" | "127.0.0.1" | "::1") || j.nodename.starts_with('/');
    local && j.nodeport == port
}

/// Import job `j`: its pg_jobs id, what was done, and why not if skipped.
fn import_one(j: &CronJob, tz: &str, port: i32) -> (Option<i64>, &'static str, Option<String>) {
    let skip = |why: String| (None, "skipped", Some(why));
    if !runs_here(j, port) {
        return skip(format!(
            "it runs on {}:{}, another server (pg_jobs runs jobs on its own server only); left active under pg_cron",
            j.nodename, j.nodeport
        ));
    }
    let Some(owner) = role_named(&j.username) else {
        return skip(format!("role \"{}\" does not exist", j.username));
    };
    let Some(datid) = database_named(&j.database) else {
        return skip(format!("database \"{}\" does not exist", j.database));
    };
    let schedule = match pg_jobs_core::pg_cron::to_pg_jobs(&j.schedule) {
        Ok(s) => s,
        Err(e) => return skip(e.to_string()),
    };
    if let Some(id) = already_imported(j, owner, &schedule) {
        deactivate(j.jobid);
        return (Some(id), "already imported", None);
    }
    if let Some(name) = &j.jobname {
        if bgw::as_superuser(|| jobs::id_by_owner_and_name(owner, name)).is_some() {
            return skip(format!(
                "role \"{}\" already has a pg_jobs job called \"{name}\" with other settings",
                j.username
            ));
        }
    }
    let def = JobDef {
        name: j.jobname.as_deref(),
        owner,
        schedule: Some(&schedule),
        once_at: None,
        command: &j.command,
        database: &j.database,
        datid,
        timezone: tz,
        timeout_ms: None,
        max_attempts: 1,
        retry_backoff_ms: 10_000,
        overlap: "queue",
        catch_up: false,
        args: None,
        after: None,
        queue: None,
    };
    let id = returned_id(
        bgw::as_superuser(|| jobs::save_cron(&def, j.active)),
        "save the job",
    );
    hooks::job_changed_at_commit(id);
    ownership::sync(owner, Change::Gained);
    deactivate(j.jobid);
    (Some(id), "imported", None)
}

/// The role called exactly `name`.
fn role_named(name: &str) -> Option<pg_sys::Oid> {
    Spi::get_one_with_args::<pg_sys::Oid>(
        "SELECT oid FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) $1",
        &[name.into()],
    )
    .ok()
    .flatten()
}

/// The database called exactly `name`.
fn database_named(name: &str) -> Option<pg_sys::Oid> {
    Spi::get_one_with_args::<pg_sys::Oid>(
        "SELECT oid FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) $1",
        &[name.into()],
    )
    .ok()
    .flatten()
}

/// The pg_jobs job an earlier import made of `j`, if any: same owner,
/// name (or none), schedule, command and database.
fn already_imported(j: &CronJob, owner: pg_sys::Oid, schedule: &str) -> Option<i64> {
    bgw::as_superuser(|| {
        Spi::get_one_with_args::<i64>(
            "SELECT id FROM jobs.job
              WHERE owner OPERATOR(pg_catalog.=) $1::pg_catalog.regrole
                AND name IS NOT DISTINCT FROM $2 AND schedule OPERATOR(pg_catalog.=) $3
                AND command OPERATOR(pg_catalog.=) $4 AND database OPERATOR(pg_catalog.=) $5
              ORDER BY id LIMIT 1",
            &[
                owner.into(),
                j.jobname.as_deref().into(),
                schedule.into(),
                j.command.as_str().into(),
                j.database.as_str().into(),
            ],
        )
        .ok()
        .flatten()
    })
}

/// pg_cron stops running job `jobid` when the caller commits (pg_cron's
/// own trigger on cron.job tells its launcher).
fn deactivate(jobid: i64) {
    Spi::run_with_args(
        "UPDATE cron.job SET active = false WHERE jobid OPERATOR(pg_catalog.=) $1 AND active",
        &[jobid.into()],
    )
    .or_raise("setting pg_cron's copy of a job inactive");
}
