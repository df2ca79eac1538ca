//! `jobs._definitions_restored()`: called by the restore trigger of
//! `jobs.definition` once it has made the restored queues, jobs and
//! daemons, so that the database's scheduler loads them all when the
//! restore commits (the rows came by COPY, not through the `jobs.*`
//! functions, which tell it themselves). Created by hand in `schema.sql`.

use pgrx::prelude::*;

#[pg_extern(sql = false)]
fn _definitions_restored() {
    crate::hooks::everything_changed_at_commit();
}
