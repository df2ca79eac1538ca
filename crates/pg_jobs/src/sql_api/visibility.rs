//! `jobs._acts_for(owner)`: pg_jobs' one rule for whose jobs, runs and
//! daemons a role sees and acts on, as a function, so that row-level
//! security, `jobs.daemon_status` and the functions that look a job, run
//! or daemon up all state it the same way. The rule differs between
//! PostgreSQL majors ([`crate::pg::acl::acts_for`]); being a C function
//! rather than a `pg_has_role` call in SQL text, it is decided by the
//! library that runs, so it stays right after `pg_upgrade` to a newer major.
//!
//! `jobs._sees(owner)` adds the monitoring roles to what a role sees,
//! never to what it acts on.
//!
//! Created by hand in `schema.sql` (before the policies that call it), so
//! pgrx generates no SQL for it here.

use pgrx::prelude::*;

/// Whether the current user may see and act on what `owner` owns.
#[pg_extern(sql = false)]
fn _acts_for(owner: pg_sys::Oid) -> bool {
    // SAFETY: GetUserId only reads the backend's current user, set in any
    // connected session (SQL functions run in one).
    let me = unsafe { pg_sys::GetUserId() };
    crate::pg::acl::acts_for(me, owner)
}

/// Whether the current user sees what `owner` owns: it acts for `owner`,
/// or it monitors the cluster ([`crate::pg::acl::monitors`]). The
/// row-level security of the tables and the listing views ask this;
/// everything that changes a job, run, daemon or queue asks
/// [`_acts_for`] alone, so seeing never lets a monitoring role act.
#[pg_extern(sql = false)]
fn _sees(owner: pg_sys::Oid) -> bool {
    // SAFETY: as in `_acts_for`.
    let me = unsafe { pg_sys::GetUserId() };
    crate::pg::acl::sees(me, owner)
}

/// Whether the current user monitors the cluster (sees `jobs.metrics`'
/// cluster-wide counters).
#[pg_extern(sql = false)]
fn _monitors() -> bool {
    // SAFETY: as in `_acts_for`.
    let me = unsafe { pg_sys::GetUserId() };
    crate::pg::acl::monitors(me)
}
