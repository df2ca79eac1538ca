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
