//! The SQL API for scheduled jobs. The public functions (`jobs.schedule`,
//! `jobs.alter_job`, …) are thin SQL wrappers (views.sql) with typed
//! defaults around the `jobs._*` functions here, which validate everything,
//! check privileges, and write as the bootstrap superuser: users never
//! write `jobs.job` directly.
//!
//! Who may do what: a job belongs to the role it runs as (`run_as`,
//! default `current_user`). Scheduling as a role, and changing a job,
//! needs membership in that role, as SET ROLE does; a superuser role's
//! jobs only by superusers. Bad input fails with SQLSTATE 22023 and a
//! message naming what is wrong; nothing is written.

use crate::catalog::acl::*;
use crate::catalog::jobs;
use crate::catalog::owned::{self, Owned};
use crate::catalog::ownership::{self, Change};
use crate::gucs;
use crate::hooks;
use crate::pg::bgw;
use crate::pg::error::{raise, returned_id};
use crate::pg::time;
use crate::sql_api::args::check_fit;
use crate::sql_api::bounds;
use crate::sql_api::validate::*;
use crate::sql_api::validate::{check_command, required};
use jiff::tz::TimeZone;
use pg_jobs_core::params::Args;
use pg_jobs_core::schedule::Schedule;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode as Code;

/// Write job `id` in `jobs.job` as pg_jobs (its only writer) with `write`;
/// the scheduler reloads it when (and only if) the calling transaction commits.
pub(crate) fn write_job<T>(id: i64, what: &str, write: impl FnOnce() -> pgrx::spi::SpiResult<T>) -> T {
    let written = bgw::as_superuser(write).unwrap_or_else(|e| {
        raise(
            Code::ERRCODE_INTERNAL_ERROR,
            format!("could not {what}: {e}"),
            None,
        )
    });
    hooks::job_changed_at_commit(id);
    written
}

/// `jobs.schedule(...)`: create the job `name` (per owner), or update it;
/// `args` are the values of its command's `$1 … $n`, copied to each run.
#[pg_extern(volatile, parallel_unsafe, name = "_schedule")]
#[allow(clippy::too_many_arguments)]
fn _schedule_with_args(
    name: Option<&str>,
    schedule: Option<&str>,
    command: Option<&str>,
    database: Option<&str>,
    run_as: Option<pg_sys::Oid>,
    timezone: Option<&str>,
    timeout_ms: Option<i64>,
    max_attempts: Option<i32>,
    retry_backoff_ms: Option<i64>,
    overlap: Option<&str>,
    catch_up: Option<bool>,
    args: Option<pgrx::Array<&str>>,
    after_job: Option<&str>,
    run_if: Option<&str>,
    queue: Option<&str>,
) -> i64 {
    let args = crate::sql_api::args::given(args);
    let after = after_job.map(|followed| (followed, required(run_if, "run_if")));
    let queue = crate::sql_api::queues::checked_queue(queue);
    schedule_job(
        name,
        schedule,
        command,
        database,
        run_as,
        timezone,
        timeout_ms,
        max_attempts,
        retry_backoff_ms,
        overlap,
        catch_up,
        args,
        after,
        queue.as_deref(),
    )
}

/// `jobs._schedule` of a database still at 0.3.0 (no `args`), whose
/// catalog calls this C symbol with eleven arguments.
#[pg_extern(sql = false)]
#[allow(clippy::too_many_arguments)]
fn _schedule(
    name: Option<&str>,
    schedule: Option<&str>,
    command: Option<&str>,
    database: Option<&str>,
    run_as: Option<pg_sys::Oid>,
    timezone: Option<&str>,
    timeout_ms: Option<i64>,
    max_attempts: Option<i32>,
    retry_backoff_ms: Option<i64>,
    overlap: Option<&str>,
    catch_up: Option<bool>,
) -> i64 {
    schedule_job(
        name,
        schedule,
        command,
        database,
        run_as,
        timezone,
        timeout_ms,
        max_attempts,
        retry_backoff_ms,
        overlap,
        catch_up,
        None,
        None,
        None,
    )
}

#[allow(clippy::too_many_arguments)]
fn schedule_job(
    name: Option<&str>,
    schedule: Option<&str>,
    command: Option<&str>,
    database: Option<&str>,
    run_as: Option<pg_sys::Oid>,
    timezone: Option<&str>,
    timeout_ms: Option<i64>,
    max_attempts: Option<i32>,
    retry_backoff_ms: Option<i64>,
    overlap: Option<&str>,
    catch_up: Option<bool>,
    args: Option<Args>,
    after: Option<(&str, &str)>,
    queue: Option<&str>,
) -> i64 {
    let name = required(name, "name");
    // A job runs on its schedule, or after another job: one of the two.
    let schedule = match (schedule, after) {
        (Some(_), Some(_)) => raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            "a job runs on a schedule or after another job, not both",
            Some("Pass schedule => NULL with after_job."),
        ),
        (None, None) => required(schedule, "schedule"),
        (s, _) => s.unwrap_or_default(),
    };
    let command = required(command, "command");
    let database = required(database, "database");
    let max_attempts = required(max_attempts, "max_attempts");
    let retry_backoff_ms = required(retry_backoff_ms, "retry_backoff");
    let overlap = required(overlap, "overlap");
    let catch_up = required(catch_up, "catch_up");
    check_name(name, "job");
    let statements = check_command(command);
    let once_at = if after.is_none() {
        let once_at = validate_schedule(schedule);
        check_not_past(once_at, schedule);
        once_at
    } else {
        None
    };
    let tz = timezone.map(str::to_owned).unwrap_or_else(gucs::default_timezone);
    validate_timezone(&tz);
    validate_overlap(overlap);
    validate_numbers(timeout_ms, max_attempts, retry_backoff_ms, false);
    // SAFETY: GetUserId only reads the backend's current user, set in any
    // connected session (SQL functions run in one).
    let owner = run_as.unwrap_or_else(|| unsafe { pg_sys::GetUserId() });
    let datid = database_oid(database);
    check_run_as(owner, datid);
    if let Some(values) = &args {
        crate::sql_api::args::check_fit(command, statements, values, datid);
    }
    bounds::check_new_job(owner, name);
    let after = after.map(|(followed, run_if)| followed_job(name, owner, followed, run_if));
    let def = jobs::JobDef {
        name: Some(name),
        owner,
        schedule: after.is_none().then(|| schedule.trim()),
        once_at,
        command,
        database,
        datid,
        timezone: &tz,
        timeout_ms,
        max_attempts,
        retry_backoff_ms,
        overlap,
        catch_up,
        args: args.as_ref(),
        after,
        queue,
    };
    let id = returned_id(bgw::as_superuser(|| jobs::save(&def)), "save the job");
    hooks::job_changed_at_commit(id);
    ownership::sync(owner, Change::Gained);
    id
}

/// The job `followed` that job `name` of `owner` is to follow, and its
/// `run_if`, checked: a job the caller may change (42704 otherwise), not
/// one whose own chain leads back to this job (22023: a cycle would run
/// forever), and a known condition (22023).
fn followed_job(name: &str, owner: pg_sys::Oid, followed: &str, run_if: &str) -> (i64, &'static str) {
    let run_if = run_if
        .parse::<pg_jobs_core::run::depends::RunIf>()
        .unwrap_or_else(|e| raise(Code::ERRCODE_INVALID_PARAMETER_VALUE, e.to_string(), None))
        .as_str();
    let followed_id = find_job(followed);
    let me = bgw::as_superuser(|| jobs::id_by_owner_and_name(owner, name));
    if me.is_some_and(|id| id == followed_id || bgw::as_superuser(|| jobs::follows_back(id, followed_id))) {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("job \"{name}\" cannot run after \"{followed}\": \"{followed}\" already runs after it"),
            Some("A chain of jobs that run after each other must not lead back to where it started."),
        );
    }
    (followed_id, run_if)
}

/// `jobs.alter_job(name, ...)`: change any subset of a job's settings
/// (NULL: unchanged; `args => '{}'` removes the values).
#[pg_extern(volatile, parallel_unsafe, name = "_alter_job")]
#[allow(clippy::too_many_arguments)]
fn _alter_job_with_args(
    name: Option<&str>,
    schedule: Option<&str>,
    command: Option<&str>,
    database: Option<&str>,
    run_as: Option<pg_sys::Oid>,
    timezone: Option<&str>,
    timeout_ms: Option<i64>,
    max_attempts: Option<i32>,
    retry_backoff_ms: Option<i64>,
    overlap: Option<&str>,
    catch_up: Option<bool>,
    enabled: Option<bool>,
    args: Option<pgrx::Array<&str>>,
    queue: Option<&str>,
) -> i64 {
    // NULL leaves them; an empty array removes them.
    let args = args.is_some().then(|| crate::sql_api::args::given(args));
    // NULL leaves it; '' takes the job out of its queue.
    let queue = queue.map(|q| (!q.is_empty()).then(|| q.to_owned()));
    alter_job(
        name,
        schedule,
        command,
        database,
        run_as,
        timezone,
        timeout_ms,
        max_attempts,
        retry_backoff_ms,
        overlap,
        catch_up,
        enabled,
        args,
        queue,
    )
}

/// `jobs._alter_job` of a database still at 0.3.0 (no `args`), whose
/// catalog calls this C symbol with twelve arguments.
#[pg_extern(sql = false)]
#[allow(clippy::too_many_arguments)]
fn _alter_job(
    name: Option<&str>,
    schedule: Option<&str>,
    command: Option<&str>,
    database: Option<&str>,
    run_as: Option<pg_sys::Oid>,
    timezone: Option<&str>,
    timeout_ms: Option<i64>,
    max_attempts: Option<i32>,
    retry_backoff_ms: Option<i64>,
    overlap: Option<&str>,
    catch_up: Option<bool>,
    enabled: Option<bool>,
) -> i64 {
    alter_job(
        name,
        schedule,
        command,
        database,
        run_as,
        timezone,
        timeout_ms,
        max_attempts,
        retry_backoff_ms,
        overlap,
        catch_up,
        enabled,
        None,
        None,
    )
}

/// `args`: `None` unchanged, `Some(None)` removed, `Some(Some(v))` set.
#[allow(clippy::too_many_arguments)]
fn alter_job(
    name: Option<&str>,
    schedule: Option<&str>,
    command: Option<&str>,
    database: Option<&str>,
    run_as: Option<pg_sys::Oid>,
    timezone: Option<&str>,
    timeout_ms: Option<i64>,
    max_attempts: Option<i32>,
    retry_backoff_ms: Option<i64>,
    overlap: Option<&str>,
    catch_up: Option<bool>,
    enabled: Option<bool>,
    args: Option<Option<Args>>,
    queue: Option<Option<String>>,
) -> i64 {
    let name = required(name, "name");
    let id = find_job(name);
    let queue = queue.map(|q| crate::sql_api::queues::checked_queue(q.as_deref()));
    let cur = jobs::settings(id).unwrap_or_else(|| {
        raise(
            Code::ERRCODE_UNDEFINED_OBJECT,
            format!("job \"{name}\" does not exist"),
            None,
        )
    });
    let statements = command.map(check_command);
    let once_at = schedule.map(validate_schedule);
    if let Some(text) = schedule {
        check_not_past(once_at.flatten(), text);
    }
    if let Some(tz) = timezone {
        validate_timezone(tz);
    }
    if let Some(o) = overlap {
        validate_overlap(o);
    }
    validate_numbers(
        timeout_ms,
        max_attempts.unwrap_or(cur.max_attempts),
        retry_backoff_ms.unwrap_or(cur.retry_backoff_ms),
        true,
    );
    let datid = database.map(database_oid);
    if run_as.is_some() || database.is_some() {
        check_run_as(run_as.unwrap_or(cur.owner), datid.unwrap_or(cur.datid));
    }
    // The values the job will have must fit the command it will have,
    // wherever it will run, whichever of the three changes.
    let kept_args = match &args {
        Some(new) => new.as_ref(),
        None => cur.args.as_ref(),
    };
    if let Some(values) = kept_args.filter(|_| args.is_some() || command.is_some() || database.is_some()) {
        let (text, statements) = match (command, statements) {
            (Some(c), Some(n)) => (c, n),
            _ => (cur.command.as_str(), check_command(&cur.command)),
        };
        check_fit(text, statements, values, datid.unwrap_or(cur.datid));
    }
    // Given to another role: one more job of that role's.
    if let Some(new_owner) = run_as.filter(|o| *o != cur.owner) {
        bounds::check_new_job(new_owner, name);
    }
    let change = jobs::JobChange {
        schedule: schedule.map(str::trim),
        once_at: once_at.flatten(),
        command,
        database,
        datid,
        owner: run_as,
        timezone,
        timeout_ms,
        max_attempts,
        retry_backoff_ms,
        overlap,
        catch_up,
        enabled,
        args: args.as_ref().map(Option::as_ref),
        queue: queue.as_ref().map(Option::as_deref),
    };
    write_job(id, "change the job", || jobs::alter(id, &change));
    if let Some(new_owner) = run_as.filter(|&o| o != cur.owner) {
        ownership::sync(new_owner, Change::Gained);
        ownership::sync(cur.owner, Change::Lost);
    }
    id
}

/// Remove a job. Its run history stays. Refused while other jobs run after
/// it (`after_job`): they would never run again.
#[pg_extern(volatile, parallel_unsafe)]
fn unschedule(name: Option<&str>) -> bool {
    let name = required(name, "name");
    let id = find_job(name);
    let followers = bgw::as_superuser(|| jobs::followers(id));
    if !followers.is_empty() {
        raise(
            Code::ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST,
            format!("cannot unschedule job \"{name}\": other jobs run after it"),
            Some(&format!(
                "Unschedule them first, or schedule them on a time schedule: {}.",
                followers.join(", ")
            )),
        );
    }
    if let Some(owner) = write_job(id, "remove the job", || owned::delete(Owned::Job, id)) {
        ownership::sync(owner, Change::Lost);
    }
    true
}

fn set_enabled(name: Option<&str>, enabled: bool) {
    let id = find_job(required(name, "name"));
    write_job(id, "change the job", || jobs::set_enabled(id, enabled));
}

/// Stop scheduling a job (runs already going finish).
#[pg_extern(volatile, parallel_unsafe)]
fn pause(name: Option<&str>) {
    set_enabled(name, false);
}

/// Schedule a paused job again, from now (missed runs are not replayed).
#[pg_extern(volatile, parallel_unsafe)]
fn resume(name: Option<&str>) {
    set_enabled(name, true);
}

/// Queue a run of the job now, whatever its schedule says. Returns the run id.
#[pg_extern(volatile, parallel_unsafe)]
fn run_now(name: Option<&str>) -> i64 {
    let name = required(name, "name");
    let id = find_job(name);
    let owner = jobs::settings(id).map(|s| s.owner).unwrap_or_else(|| {
        raise(
            Code::ERRCODE_UNDEFINED_OBJECT,
            format!("job \"{name}\" does not exist"),
            None,
        )
    });
    bounds::admit_queued_run(owner);
    let run = bgw::as_superuser(|| crate::catalog::runs::run_now(id));
    hooks::wake_scheduler_at_commit();
    returned_id(run, "queue the run")
}

/// The next `count` times `schedule` fires after `after`, in `timezone`
/// (default: `pg_jobs.timezone`, else the server's TimeZone).
#[pg_extern(stable, parallel_safe)]
fn next_runs(
    schedule: Option<&str>,
    count: default!(Option<i32>, 5),
    after: default!(Option<TimestampWithTimeZone>, "now()"),
    timezone: default!(Option<&str>, "NULL"),
) -> SetOfIterator<'static, TimestampWithTimeZone> {
    let schedule = required(schedule, "schedule");
    let count = required(count, "count");
    let after = required(after, "after");
    if !(1..=10_000).contains(&count) {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("count must be between 1 and 10000, not {count}"),
            None,
        );
    }
    let once_at = validate_schedule(schedule);
    let tz = validate_timezone(&timezone.map(str::to_owned).unwrap_or_else(gucs::default_timezone));
    let after = time::from_pg(after.into()).unwrap_or_else(|| {
        raise(
            Code::ERRCODE_DATETIME_FIELD_OVERFLOW,
            "after must be a finite time between the years -9999 and 9999",
            None,
        )
    });
    let parsed = match once_at {
        Some(us) => Schedule::Once(time::from_pg(us).unwrap_or_else(|| {
            raise(
                Code::ERRCODE_DATETIME_FIELD_OVERFLOW,
                "the one-off time is out of range",
                None,
            )
        })),
        None => Schedule::parse(schedule).unwrap_or(Schedule::Reboot),
    };
    // An interval's grid starts at `after` here (a job's starts at its creation).
    let mut out = Vec::new();
    let mut t = after;
    while out.len() < count as usize {
        let Some(n) = parsed.next_after(t, &tz, after) else {
            break;
        };
        out.push(
            TimestampWithTimeZone::try_from(time::to_pg(n)).unwrap_or_else(|_| {
                raise(
                    Code::ERRCODE_DATETIME_FIELD_OVERFLOW,
                    "next run is out of range",
                    None,
                )
            }),
        );
        t = n;
    }
    SetOfIterator::new(out)
}

/// For `jobs.job_status`: when the job is next due after `now` (NULL:
/// never again). `now` is an argument, not read from the clock here, so the
/// function is honestly STABLE and one query sees one instant.
#[pg_extern(name = "_next_due", stable, parallel_safe)]
fn _next_due_at(
    schedule: &str,
    once_at: Option<TimestampWithTimeZone>,
    timezone: &str,
    created_at: TimestampWithTimeZone,
    fired: bool,
    now: TimestampWithTimeZone,
) -> Option<TimestampWithTimeZone> {
    // Out-of-range instants mean "not due" here: this feeds a view, which
    // must not fail for one odd row.
    let now = time::from_pg(now.into())?;
    let next = match once_at {
        Some(at) => (!fired).then(|| time::from_pg(at.into())).flatten(),
        None => {
            let tz = TimeZone::get(timezone).ok()?;
            Schedule::parse(schedule)
                .ok()?
                .next_after(now, &tz, time::from_pg(created_at.into())?)
        }
    }?;
    TimestampWithTimeZone::try_from(time::to_pg(next)).ok()
}

/// `jobs._next_due` as a database not yet updated to 0.4.0 calls it (from
/// its `jobs.job_status`, with five arguments): the same, at the current
/// transaction's instant. No SQL of its own (0.3.0 created it; the 0.4.0
/// upgrade replaces it).
#[pg_extern(sql = false)]
fn _next_due(
    schedule: &str,
    once_at: Option<TimestampWithTimeZone>,
    timezone: &str,
    created_at: TimestampWithTimeZone,
    fired: bool,
) -> Option<TimestampWithTimeZone> {
    // SAFETY: reads the current transaction's start time, in a transaction
    // (a SQL function runs in one).
    let now = unsafe { pg_sys::GetCurrentTransactionStartTimestamp() };
    _next_due_at(
        schedule,
        once_at,
        timezone,
        created_at,
        fired,
        TimestampWithTimeZone::try_from(now).ok()?,
    )
}
