//! Every `pg_jobs.*` setting, with its documentation and a typed getter.
//! All are reloadable (SIGHUP): workers re-read them at the top of their loop.

use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};

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

pub fn init() {
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
        (crate::registry::MAX_WORKERS as i32) - 64,
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
