//! Every `pg_jobs.*` setting, with its documentation and a typed getter.
//! All are reloadable (SIGHUP): workers re-read them at the top of their
//! loop. The per-role bounds are `SUSET`: set in the server's configuration,
//! or by a superuser for a role or database (`ALTER ROLE … SET`), never by
//! the roles they bound.

use pgrx::pg_sys;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting, PostgresGucEnum};
use std::ffi::{CStr, CString};

/// `pg_jobs.enabled`: off stops every scheduler (running executors finish
/// their run); on starts them again.
pub static ENABLED: GucSetting<bool> = GucSetting::<bool>::new(true);

/// `pg_jobs.launcher_naptime`: seconds between the launcher's periodic
/// looks at `pg_database`. It also looks whenever it is woken (CREATE/DROP
/// EXTENSION, CREATE/DROP DATABASE, a scheduler exiting), so this only
/// bounds how late it notices something no hook reported.
pub static LAUNCHER_NAPTIME: GucSetting<i32> = GucSetting::<i32>::new(60);

/// `pg_jobs.max_executors`: executors running at once, cluster-wide. Each is
/// a background worker, so it also needs a free `max_worker_processes` slot.
pub static MAX_EXECUTORS: GucSetting<i32> = GucSetting::<i32>::new(4);

/// `pg_jobs.max_runs_per_role`: runs of one role going at once,
/// cluster-wide (-1: all of `max_executors` but one, at least one), so
/// one role's flood leaves executors for the others.
pub static MAX_RUNS_PER_ROLE: GucSetting<i32> = GucSetting::<i32>::new(-1);

/// `pg_jobs.max_runs_per_database`: runs of one database's jobs going at
/// once (-1: no cap beyond `max_executors`).
pub static MAX_RUNS_PER_DATABASE: GucSetting<i32> = GucSetting::<i32>::new(-1);

/// `pg_jobs.priority_role`: members of this role (and superusers) have
/// their runs' `priority` count across roles; everyone else's orders only
/// their own runs. Empty (the default): superusers only.
pub static PRIORITY_ROLE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// `pg_jobs.executor_idle_timeout`: how long an executor that finished a run
/// waits for another run of the same database and role before it exits
/// (0: never reuse executors).
pub static EXECUTOR_IDLE_TIMEOUT: GucSetting<i32> = GucSetting::<i32>::new(10_000);

/// `pg_jobs.max_result_bytes`: rows of a run's last statement kept for
/// `jobs.result`, at most this many bytes of JSON.
pub static MAX_RESULT_BYTES: GucSetting<i32> = GucSetting::<i32>::new(1024 * 1024);

/// `pg_jobs.timezone`: time zone of jobs scheduled without one. Empty
/// (the default): the server's `TimeZone`.
/// `pg_jobs.build_id`: the fingerprint of the sources this library was
/// built from (read-only), for the integration tests' stale-install check.
pub static BUILD_ID: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(Some(
    // Hex digits and a NUL added here: never an interior NUL.
    match CStr::from_bytes_with_nul(concat!(env!("PG_JOBS_BUILD_ID"), "\0").as_bytes()) {
        Ok(c) => c,
        Err(_) => c"unknown",
    },
));

pub static TIMEZONE: GucSetting<Option<CString>> = GucSetting::<Option<CString>>::new(None);

/// `pg_jobs.notify_channel`: the channel a run's final failure is
/// announced on (`NOTIFY`, in the database whose history records it);
/// empty: none.
pub static NOTIFY_CHANNEL: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"pg_jobs_events"));

/// `pg_jobs.history_retention`: finished runs older than this are purged.
pub static HISTORY_RETENTION: GucSetting<i32> = GucSetting::<i32>::new(7 * 24 * 3600);

/// `pg_jobs.history_max_runs_per_job`: finished runs kept per job (0: no bound).
pub static HISTORY_MAX_RUNS_PER_JOB: GucSetting<i32> = GucSetting::<i32>::new(1000);

/// `pg_jobs.missed_after`: seconds after which a run that should have
/// started and has not counts as missed in `jobs.health`.
pub static MISSED_AFTER: GucSetting<i32> = GucSetting::<i32>::new(60);

/// `pg_jobs.max_queued_runs_per_role`: queued runs a role may have in one
/// database before `jobs.submit` and `jobs.run_now` refuse more (0: no
/// bound). Checked on an estimate, counted exactly now and then
/// (`pg_jobs_core::quota`).
pub static MAX_QUEUED_RUNS_PER_ROLE: GucSetting<i32> = GucSetting::<i32>::new(100_000);

/// `pg_jobs.max_jobs_per_role`: scheduled jobs a role may own in one
/// database (0: no bound).
pub static MAX_JOBS_PER_ROLE: GucSetting<i32> = GucSetting::<i32>::new(1_000);

/// `pg_jobs.max_daemons_per_role`: daemons a role may own in one database
/// (0: no bound); also how many of its daemons' processes may start per
/// second there.
pub static MAX_DAEMONS_PER_ROLE: GucSetting<i32> = GucSetting::<i32>::new(10);

/// `pg_jobs.max_daemons`: daemon processes running at once, cluster-wide.
/// A daemon over it waits (`no_daemon_slot`) until one ends, so daemons
/// never take the worker slots executors, schedulers and parallel query
/// need beyond this many.
pub static MAX_DAEMONS: GucSetting<i32> = GucSetting::<i32>::new(8);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PostgresGucEnum)]
pub enum LogRuns {
    Off,
    Errors,
    All,
}

/// `pg_jobs.log_runs`: which finished runs get a server-log line.
pub static LOG_RUNS: GucSetting<LogRuns> = GucSetting::<LogRuns>::new(LogRuns::Errors);

pub fn init() {
    GucRegistry::define_string_guc(
        c"pg_jobs.build_id",
        c"Fingerprint of the sources this pg_jobs library was built from.",
        c"Read-only. The integration tests compare it with the tree they were built from.",
        &BUILD_ID,
        GucContext::Internal,
        GucFlags::default(),
    );
    GucRegistry::define_bool_guc(
        c"pg_jobs.enabled",
        c"Whether pg_jobs schedulers run.",
        c"Off stops every pg_jobs scheduler; running executors finish their run. On starts them again.",
        &ENABLED,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_jobs.launcher_naptime",
        c"Seconds between the pg_jobs launcher's periodic checks of pg_database.",
        c"The launcher is also woken at once by CREATE/DROP EXTENSION and CREATE/DROP DATABASE.",
        &LAUNCHER_NAPTIME,
        1,
        3600,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"pg_jobs.max_executors",
        c"Maximum number of pg_jobs executors running at once, cluster-wide.",
        c"Each executor is a background worker and also needs a free max_worker_processes slot.",
        &MAX_EXECUTORS,
        1,
        (crate::shmem::MAX_WORKERS as i32) - 64,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_jobs.max_runs_per_role",
        c"Maximum number of runs of one role going at once, cluster-wide.",
        c"-1: all of pg_jobs.max_executors but one (at least one), so no role can hold the last executor.",
        &MAX_RUNS_PER_ROLE,
        -1,
        (crate::shmem::MAX_WORKERS as i32) - 64,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_jobs.max_runs_per_database",
        c"Maximum number of runs of one database's jobs going at once.",
        c"-1: no cap beyond pg_jobs.max_executors. Set it below that when many databases share the cluster.",
        &MAX_RUNS_PER_DATABASE,
        -1,
        (crate::shmem::MAX_WORKERS as i32) - 64,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pg_jobs.priority_role",
        c"Role whose members' run priority counts across roles (empty: superusers only).",
        c"Everyone else's priority orders only their own runs; across roles, executors are shared fairly.",
        &PRIORITY_ROLE,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_jobs.executor_idle_timeout",
        c"How long an idle executor waits for another run of the same database and role.",
        c"A warm executor takes the next run with no fork and no new connection; 0 disables reuse.",
        &EXECUTOR_IDLE_TIMEOUT,
        0,
        3_600_000,
        GucContext::Sighup,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"pg_jobs.max_result_bytes",
        c"Bytes of result rows kept per run for jobs.result.",
        c"Rows past the cap are dropped and the run is marked result_truncated; 0 keeps none.",
        &MAX_RESULT_BYTES,
        0,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_BYTE,
    );
    GucRegistry::define_string_guc(
        c"pg_jobs.notify_channel",
        c"Channel on which pg_jobs announces runs that failed for good (empty: none).",
        c"A NOTIFY with a JSON payload (database, run_id, job_id, status, sqlstate), sent when the failure's record commits.",
        &NOTIFY_CHANNEL,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_string_guc(
        c"pg_jobs.timezone",
        c"Time zone of jobs scheduled without one (empty: the server's TimeZone).",
        c"An IANA name such as Europe/Berlin. Read when a job is scheduled.",
        &TIMEZONE,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_jobs.history_retention",
        c"Finished runs older than this are purged from jobs.run.",
        c"The scheduler purges in batches while it records finished runs.",
        &HISTORY_RETENTION,
        60,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::UNIT_S,
    );
    GucRegistry::define_int_guc(
        c"pg_jobs.missed_after",
        c"Seconds after which a run that should have started and has not is missed (jobs.health).",
        c"Read by the view jobs.health only: a session may set its own.",
        &MISSED_AFTER,
        1,
        7 * 86_400,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_jobs.history_max_runs_per_job",
        c"Finished runs kept per scheduled job (0: no bound).",
        c"Older runs beyond the bound are purged in batches.",
        &HISTORY_MAX_RUNS_PER_JOB,
        0,
        i32::MAX,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_jobs.max_queued_runs_per_role",
        c"Queued runs a role may have in a database before jobs.submit and jobs.run_now refuse more (0: no bound).",
        c"Superusers are not bounded. Enforced on a per-session estimate recounted exactly now and then: see the operations guide for the tolerance.",
        &MAX_QUEUED_RUNS_PER_ROLE,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_jobs.max_jobs_per_role",
        c"Scheduled jobs a role may own in a database (0: no bound).",
        c"jobs.schedule refuses a new job beyond it; superusers are not bounded.",
        &MAX_JOBS_PER_ROLE,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_jobs.max_daemons_per_role",
        c"Daemons a role may own in a database (0: no bound).",
        c"jobs.daemon refuses a new daemon beyond it; it is also how many of a role's daemon processes may start per second in a database. Superusers are not bounded.",
        &MAX_DAEMONS_PER_ROLE,
        0,
        i32::MAX,
        GucContext::Suset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"pg_jobs.max_daemons",
        c"Maximum number of pg_jobs daemon processes running at once, cluster-wide.",
        c"A daemon beyond it waits as no_daemon_slot until another ends. Each daemon is a background worker and also needs a free max_worker_processes slot.",
        &MAX_DAEMONS,
        0,
        crate::shmem::MAX_DAEMONS as i32,
        GucContext::Sighup,
        GucFlags::default(),
    );
    GucRegistry::define_enum_guc(
        c"pg_jobs.log_runs",
        c"Which finished runs get a line in the server log: off, errors, all.",
        c"errors logs failed, timed-out, crashed and skipped runs.",
        &LOG_RUNS,
        GucContext::Sighup,
        GucFlags::default(),
    );
}

pub fn enabled() -> bool {
    ENABLED.get()
}
pub fn launcher_naptime_ms() -> u64 {
    LAUNCHER_NAPTIME.get() as u64 * 1000
}
pub fn max_executors() -> usize {
    MAX_EXECUTORS.get() as usize
}

/// The time zone for jobs scheduled without one: `pg_jobs.timezone`, else
/// the server's (or session's) `TimeZone`.
/// A cap setting, with -1 standing for `default(max_executors)`.
fn cap(setting: i32, default: fn(usize) -> usize) -> usize {
    if setting < 0 {
        default(max_executors())
    } else {
        setting as usize
    }
}
pub fn max_runs_per_role() -> usize {
    cap(MAX_RUNS_PER_ROLE.get(), pg_jobs_core::fair::default_role_cap)
}
pub fn max_runs_per_database() -> usize {
    cap(
        MAX_RUNS_PER_DATABASE.get(),
        pg_jobs_core::fair::default_database_cap,
    )
}
/// The OID of the role `pg_jobs.priority_role` names; `InvalidOid` when it
/// is empty or names no role. In a transaction (reads `pg_authid`).
pub fn priority_role() -> pg_sys::Oid {
    let Some(name) = PRIORITY_ROLE.get() else {
        return pg_sys::InvalidOid;
    };
    if name.as_bytes().is_empty() {
        return pg_sys::InvalidOid;
    }
    // SAFETY: a NUL-terminated string owned by this frame; missing_ok, so
    // an unknown name gives InvalidOid instead of an ERROR.
    unsafe { pg_sys::get_role_oid(name.as_ptr(), true) }
}
/// `pg_jobs.notify_channel`, if set to a channel name PostgreSQL takes
/// (shorter than NAMEDATALEN, 64 bytes; a longer one would make NOTIFY
/// raise an ERROR in the scheduler's pass, so none is sent).
pub fn notify_channel() -> Option<String> {
    NOTIFY_CHANNEL
        .get()
        .map(|c| c.to_string_lossy().into_owned())
        .filter(|c| !c.is_empty() && c.len() < 64)
}

pub fn default_timezone() -> String {
    if let Some(tz) = TIMEZONE
        .get()
        .and_then(|c| c.into_string().ok())
        .filter(|s| !s.is_empty())
    {
        return tz;
    }
    // SAFETY: GetConfigOption with a NUL-terminated literal name of a
    // built-in setting (missing_ok = false cannot fail for it); the value it
    // returns (null-checked) is GUC-owned and stays valid until the setting
    // changes, and is copied out at once on this backend's only thread.
    unsafe {
        let p = pg_sys::GetConfigOption(c"TimeZone".as_ptr(), false, false);
        if p.is_null() {
            "UTC".to_owned()
        } else {
            std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
        }
    }
}
pub fn history_retention_s() -> i32 {
    HISTORY_RETENTION.get()
}
pub fn history_max_runs_per_job() -> i32 {
    HISTORY_MAX_RUNS_PER_JOB.get()
}
pub fn log_runs() -> LogRuns {
    LOG_RUNS.get()
}
pub fn executor_idle_timeout_ms() -> u64 {
    EXECUTOR_IDLE_TIMEOUT.get() as u64
}
pub fn max_result_bytes() -> usize {
    MAX_RESULT_BYTES.get() as usize
}
/// `pg_jobs.max_queued_runs_per_role` (0: no bound).
pub fn max_queued_runs_per_role() -> u64 {
    MAX_QUEUED_RUNS_PER_ROLE.get().max(0) as u64
}
/// `pg_jobs.max_jobs_per_role` (0: no bound).
pub fn max_jobs_per_role() -> u64 {
    MAX_JOBS_PER_ROLE.get().max(0) as u64
}
/// `pg_jobs.max_daemons_per_role` (0: no bound).
pub fn max_daemons_per_role() -> u64 {
    MAX_DAEMONS_PER_ROLE.get().max(0) as u64
}
/// `pg_jobs.max_daemons`.
pub fn max_daemons() -> usize {
    MAX_DAEMONS.get().max(0) as usize
}
