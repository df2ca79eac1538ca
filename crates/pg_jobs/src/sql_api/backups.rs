//! `jobs._definitions_restored()`: called by the restore trigger of
//! `jobs.definition` once it has made the restored queues, jobs and
//! daemons, so that the database's scheduler loads them all when the
//! restore commits (the rows came by COPY, not through the `jobs.*`
//! functions, which tell it themselves); and `jobs._cluster()`, the
//! cluster's system identifier each definition records. Created by hand
//! in `schema.sql`.

use pgrx::prelude::*;

#[pg_extern(sql = false)]
fn _definitions_restored() {
    crate::hooks::everything_changed_at_commit();
}

/// This cluster's system identifier (from the control data in shared
/// memory: no file read, as `pg_control_system()` does, for each row the
/// definitions' trigger writes).
#[pg_extern(sql = false, stable, parallel_safe)]
fn _cluster() -> String {
    // SAFETY: reads the system identifier of the control data in shared
    // memory, set before any backend runs.
    unsafe { pg_sys::GetSystemIdentifier() }.to_string()
}

/// What a restored definition becomes here (`pg_jobs_core::restore`):
/// enabled (a queue: not paused), why it was left paused, and whether its
/// creation is the restore's. Asked by the restore trigger, row by row.
#[pg_extern(sql = false, stable)]
#[allow(clippy::too_many_arguments, clippy::type_complexity)]
fn _restore_decision(
    kind: &str,
    owner: &str,
    owner_found: bool,
    enabled: bool,
    schedule: Option<&str>,
    once_at: Option<TimestampWithTimeZone>,
    catch_up: bool,
    now: TimestampWithTimeZone,
) -> TableIterator<
    'static,
    (
        name!(enabled, bool),
        name!(reason, Option<String>),
        name!(created_now, bool),
    ),
> {
    use pg_jobs_core::restore::{restore, Dumped};
    let kind = kind.parse().unwrap_or_else(|e: String| {
        crate::pg::error::raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, e, None)
    });
    let at = |t: TimestampWithTimeZone| crate::pg::time::from_pg_clamped(t.into_inner());
    let r = restore(
        &Dumped {
            kind,
            owner,
            owner_found,
            enabled,
            schedule,
            once_at: once_at.map(at),
            catch_up,
        },
        at(now),
    );
    TableIterator::once((r.enabled, r.reason, r.created_now))
}

/// The database a restored job or daemon runs in (`pg_jobs_core::restore::database`).
#[pg_extern(sql = false, stable)]
fn _restored_database(home: bool, named: &str) -> String {
    // SAFETY: MyDatabaseId is a plain global set once at connection.
    let current = crate::pg::bgw::database_name(unsafe { pg_sys::MyDatabaseId });
    pg_jobs_core::restore::database(home, named, &current).to_owned()
}
