//! `cron.schedule`, `cron.schedule_in_database`, `cron.unschedule` and
//! `cron.alter_job`: pg_cron 1.6's functions, with its argument rules and
//! messages, writing pg_jobs jobs. Created by `pg_jobs_cron`'s SQL (schema
//! `cron`), so pgrx generates no SQL for them here.

use super::roles::{check_connect, i_am_superuser, login_role, me};
use crate::catalog::acl::{check_run_as, database_oid};
use crate::catalog::jobs::{self, JobChange, JobDef};
use crate::catalog::owned::{self, Owned};
use crate::catalog::ownership::{self, Change};
use crate::hooks;
use crate::pg::bgw;
use crate::pg::error::{raise, returned_id};
use crate::sql_api::bounds;
use crate::sql_api::jobs::write_job;
use crate::sql_api::validate::{check_command, validate_timezone};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode as Code;

/// pg_cron's own words for a missing argument ("schedule can not be NULL").
fn given<T>(value: Option<T>, what: &str) -> T {
    value.unwrap_or_else(|| {
        raise(
            Code::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{what} can not be NULL"),
            None,
        )
    })
}

/// `text` checked against pg_cron's schedule grammar: the pg_jobs schedule
/// with the same meaning, or 22023 naming what is wrong.
fn schedule_text(text: &str) -> String {
    pg_jobs_core::pg_cron::to_pg_jobs(text).unwrap_or_else(|e| {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            e.to_string(),
            Some("Use cron format (e.g. 5 4 * * *), or interval format '[1-59] seconds'."),
        )
    })
}

/// The time zone of jobs made through `cron.*`: pg_cron's `cron.timezone`
/// where it is set (pg_cron's own setting while it is loaded, else a
/// placeholder in postgresql.conf or ALTER DATABASE), else pg_cron's
/// default, GMT.
fn cron_timezone() -> String {
    let set = Spi::get_one::<String>("SELECT pg_catalog.current_setting('cron.timezone', true)")
        .ok()
        .flatten()
        .filter(|tz| !tz.trim().is_empty());
    let tz = set.unwrap_or_else(|| "GMT".to_owned());
    validate_timezone(&tz);
    tz
}

/// The database a job without one runs in: this one (where pg_cron uses
/// `cron.database_name`, which is where its functions can be called).
fn current_database() -> String {
    // SAFETY: a plain global, set once when the backend connects.
    bgw::database_name(unsafe { pg_sys::MyDatabaseId })
}

/// Create or update (by owner and name) a job the way pg_cron's
/// `ScheduleCronJob` does; returns its id.
fn schedule_job(
    name: Option<&str>,
    schedule: &str,
    command: &str,
    database: Option<&str>,
    username: Option<&str>,
    active: bool,
) -> i64 {
    let pg_schedule = schedule_text(schedule);
    check_command(command);
    let owner = match username {
        Some(u) => {
            if !i_am_superuser() {
                raise(
                    Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
                    "must be superuser to create a job for another role",
                    None,
                );
            }
            login_role(u)
        }
        None => me(),
    };
    let database = database.map(str::to_owned).unwrap_or_else(current_database);
    let datid = database_oid(&database);
    check_connect(owner, datid, &database);
    check_run_as(owner, datid);
    let existing = name.and_then(|n| jobs::id_by_owner_and_name(owner, n));
    if existing.is_none() {
        // A name that no job has: the check counts a new job.
        bounds::check_new_job(owner, name.unwrap_or(""));
    }
    let tz = cron_timezone();
    let def = JobDef {
        name,
        owner,
        schedule: Some(&pg_schedule),
        once_at: None,
        command,
        database: &database,
        datid,
        timezone: &tz,
        timeout_ms: None,
        max_attempts: 1,
        retry_backoff_ms: 10_000,
        // pg_cron runs a job at most once at a time; a run due meanwhile
        // starts when the current one ends.
        overlap: "queue",
        catch_up: false,
        // pg_cron's commands have no parameters.
        args: None,
        after: None,
        queue: None,
    };
    let id = returned_id(
        bgw::as_superuser(|| jobs::save_cron(&def, active)),
        "save the job",
    );
    hooks::job_changed_at_commit(id);
    ownership::sync(owner, Change::Gained);
    id
}

/// `cron.schedule(schedule, command)`: a new job without a name.
#[pg_extern(sql = false)]
fn cron_schedule(schedule: Option<&str>, command: Option<&str>) -> i64 {
    let schedule = given(schedule, "schedule");
    let command = given(command, "command");
    schedule_job(None, schedule, command, None, None, true)
}

/// `cron.schedule(job_name, schedule, command)`: create the caller's job
/// of that name, or give it this schedule and command.
#[pg_extern(sql = false)]
fn cron_schedule_named(job_name: Option<&str>, schedule: Option<&str>, command: Option<&str>) -> i64 {
    let name = given(job_name, "job_name");
    let schedule = given(schedule, "schedule");
    let command = given(command, "command");
    crate::sql_api::validate::check_name(name, "job");
    schedule_job(Some(name), schedule, command, None, None, true)
}

/// `cron.schedule_in_database(job_name, schedule, command, database,
/// username, active)`.
#[pg_extern(sql = false)]
fn cron_schedule_in_database(
    job_name: Option<&str>,
    schedule: Option<&str>,
    command: Option<&str>,
    database: Option<&str>,
    username: Option<&str>,
    active: Option<bool>,
) -> i64 {
    let name = given(job_name, "job_name");
    let schedule = given(schedule, "schedule");
    let command = given(command, "command");
    let database = given(database, "database");
    crate::sql_api::validate::check_name(name, "job");
    schedule_job(
        Some(name),
        schedule,
        command,
        Some(database),
        username,
        active.unwrap_or(true),
    )
}

/// Remove job `id` and release its owner's anchor if it was the last.
fn remove(id: i64) {
    if let Some(owner) = write_job(id, "remove the job", || owned::delete(Owned::Job, id)) {
        ownership::sync(owner, Change::Lost);
    }
}

/// Whether the caller may change job `id` under pg_cron's rule: its own
/// (owner is the caller exactly), or any if superuser. `None`: no such job.
fn may_change(id: i64) -> Option<bool> {
    let owner = bgw::as_superuser(|| jobs::owner_of(id))?;
    Some(owner == me() || i_am_superuser())
}

/// `cron.unschedule(job_id)`.
#[pg_extern(sql = false)]
fn cron_unschedule(job_id: Option<i64>) -> bool {
    let id = given(job_id, "job_id");
    if may_change(id) != Some(true) {
        // Another user's job "does not exist" for the caller, as for
        // every pg_jobs function (pg_cron says permission denied,
        // which tells that it exists).
        raise(
            Code::ERRCODE_UNDEFINED_OBJECT,
            format!("could not find valid entry for job {id}"),
            None,
        );
    }
    remove(id);
    true
}

/// `cron.unschedule(job_name)`: the caller's job of that name.
#[pg_extern(sql = false)]
fn cron_unschedule_named(job_name: Option<&str>) -> bool {
    let name = given(job_name, "job_name");
    let me = me();
    let Some(id) = bgw::as_superuser(|| jobs::id_by_owner_and_name(me, name)) else {
        raise(
            Code::ERRCODE_UNDEFINED_OBJECT,
            format!("could not find valid entry for job '{name}'"),
            None,
        );
    };
    remove(id);
    true
}

/// `cron.alter_job(job_id, schedule, command, database, username, active)`:
/// change what is given (NULL: unchanged).
#[pg_extern(sql = false)]
fn cron_alter_job(
    job_id: Option<i64>,
    schedule: Option<&str>,
    command: Option<&str>,
    database: Option<&str>,
    username: Option<&str>,
    active: Option<bool>,
) {
    let id = given(job_id, "job_id");
    let new_owner = username.map(|u| {
        if !i_am_superuser() {
            raise(
                Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
                "must be superuser to alter username",
                None,
            );
        }
        login_role(u)
    });
    if schedule.is_none() && command.is_none() && database.is_none() && username.is_none() && active.is_none()
    {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            "no updates specified",
            Some("You must specify at least one job attribute to change when calling alter_job."),
        );
    }
    if may_change(id) != Some(true) {
        raise(
            Code::ERRCODE_UNDEFINED_OBJECT,
            format!("Job {id} does not exist or you don't own it"),
            None,
        );
    }
    let pg_schedule = schedule.map(schedule_text);
    if let Some(c) = command {
        check_command(c);
    }
    let Some(cur) = bgw::as_superuser(|| jobs::settings(id)) else {
        raise(
            Code::ERRCODE_UNDEFINED_OBJECT,
            format!("Job {id} does not exist or you don't own it"),
            None,
        );
    };
    let owner = new_owner.unwrap_or(cur.owner);
    let datid = database.map(database_oid);
    if let (Some(db), Some(name)) = (datid, database) {
        check_connect(owner, db, name);
    }
    if new_owner.is_some() || datid.is_some() {
        check_run_as(owner, datid.unwrap_or(cur.datid));
    }
    let change = JobChange {
        schedule: pg_schedule.as_deref(),
        once_at: None,
        command,
        database,
        datid,
        owner: new_owner,
        timezone: None,
        timeout_ms: None,
        max_attempts: None,
        retry_backoff_ms: None,
        overlap: None,
        catch_up: None,
        enabled: active,
        // pg_cron knows nothing of parameters: a job's values stay as they are.
        args: None,
        queue: None,
    };
    write_job(id, "change the job", || jobs::alter(id, &change));
    if let Some(new_owner) = new_owner.filter(|&o| o != cur.owner) {
        ownership::sync(new_owner, Change::Gained);
        ownership::sync(cur.owner, Change::Lost);
    }
}
