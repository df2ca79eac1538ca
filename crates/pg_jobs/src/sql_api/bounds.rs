//! What one role may keep in pg_jobs' tables of a database: queued runs
//! (`pg_jobs.max_queued_runs_per_role`), scheduled jobs
//! (`pg_jobs.max_jobs_per_role`) and daemons (`pg_jobs.max_daemons_per_role`).
//! A call that would go past a bound fails with SQLSTATE 53400
//! (configuration_limit_exceeded, as PostgreSQL's own "all replication
//! slots are in use": a limit a setting imposes) and a hint naming the
//! setting. Superusers are not bounded: they set the bounds.
//!
//! Jobs and daemons are counted exactly, under a lock on the owner's
//! definitions of that kind (below). Queued runs are checked on the
//! session's estimate, counted exactly now and then
//! (`pg_jobs_core::quota`): a submit must stay a single cheap INSERT.

use crate::catalog;
use crate::gucs;
use crate::pg::bgw;
use crate::pg::error::raise;
use pg_jobs_core::quota::{OverBound, QueuedEstimate};
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode as Code;
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    /// This session's estimate of each role's queued runs (in its database:
    /// a backend is connected to one database for its life).
    static QUEUED: RefCell<HashMap<u32, QueuedEstimate>> = RefCell::new(HashMap::new());
}

fn caller_is_superuser() -> bool {
    // SAFETY: called from SQL functions, so in a transaction, as the
    // superuser look-up (a cached syscache read of the current user) needs.
    unsafe { pg_sys::superuser() }
}

/// One more queued run of `owner` (`jobs.submit`, `jobs.run_now`), unless
/// the role's queued runs have reached `pg_jobs.max_queued_runs_per_role`.
pub(crate) fn admit_queued_run(owner: pg_sys::Oid) {
    if caller_is_superuser() {
        return;
    }
    let bound = gucs::max_queued_runs_per_role();
    let admitted = QUEUED.with(|q| {
        let mut q = q.borrow_mut();
        let estimate = q.entry(owner.to_u32()).or_default();
        estimate.admit(bound, || {
            bgw::as_superuser(|| catalog::runs::queued_of(owner)).max(0) as u64
        })
    });
    if let Err(OverBound { queued }) = admitted {
        raise(
            Code::ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
            format!(
                "too many queued runs for role \"{}\" ({queued}; pg_jobs.max_queued_runs_per_role is {bound})",
                catalog::acl::role_name(owner)
            ),
            Some(
                "Wait for some to start, or cancel some with jobs.cancel; a superuser can raise pg_jobs.max_queued_runs_per_role.",
            ),
        );
    }
}

/// `owner` may have one more scheduled job called `name` (a new one: an
/// update of its job of that name is always allowed).
pub(crate) fn check_new_job(owner: pg_sys::Oid, name: &str) {
    check_new(
        "job",
        owner,
        name,
        gucs::max_jobs_per_role(),
        "pg_jobs.max_jobs_per_role",
        "Unschedule a job it no longer needs; a superuser can raise pg_jobs.max_jobs_per_role.",
    );
}

/// `owner` may have one more daemon called `name` (a new one: redefining
/// its daemon of that name is always allowed).
pub(crate) fn check_new_daemon(owner: pg_sys::Oid, name: &str) {
    check_new(
        "daemon",
        owner,
        name,
        gucs::max_daemons_per_role(),
        "pg_jobs.max_daemons_per_role",
        "Drop a daemon it no longer needs; a superuser can raise pg_jobs.max_daemons_per_role.",
    );
}

/// The exact check for `jobs.<kind>` (`job` or `daemon`). Two sessions
/// adding definitions for the same owner at once are serialized by a lock
/// on (the table, the owner) held to the end of the transaction, so each
/// counts the other's committed rows; a lock no SQL function can take, so
/// no role can hold it to block another's calls. (A REPEATABLE READ
/// transaction still counts what its snapshot shows.)
fn check_new(kind: &str, owner: pg_sys::Oid, name: &str, bound: u64, setting: &str, hint: &str) {
    if bound == 0 || caller_is_superuser() {
        return;
    }
    lock_definitions_of(kind, owner);
    let (count, has_name) = bgw::as_superuser(|| match kind {
        "job" => catalog::owned::count(catalog::owned::Owned::Job, owner, name),
        _ => catalog::owned::count(catalog::owned::Owned::Daemon, owner, name),
    });
    if has_name || (count.max(0) as u64) < bound {
        return;
    }
    raise(
        Code::ERRCODE_CONFIGURATION_LIMIT_EXCEEDED,
        format!(
            "too many {kind}s for role \"{}\" ({count}; {setting} is {bound})",
            catalog::acl::role_name(owner)
        ),
        Some(hint),
    );
}

/// Lock the definitions of kind `kind` that `owner` has in this database,
/// until the end of the transaction: a heavyweight lock on the object
/// (`jobs.<kind>`'s OID as the class, the owner's OID as the object), which
/// only pg_jobs takes (advisory locks are another lock space).
fn lock_definitions_of(kind: &str, owner: pg_sys::Oid) {
    let table = std::ffi::CString::new(kind).unwrap_or_default();
    // SAFETY: in a transaction (a SQL function), as the catalog look-ups
    // and the lock manager need; the names are NUL-terminated and outlive
    // the calls. A missing schema raises an ERROR (the extension is
    // installed: we are one of its functions). The lock is a plain
    // transaction-scoped lock, released at commit or abort.
    unsafe {
        let ns = pg_sys::get_namespace_oid(c"jobs".as_ptr(), false);
        let relid = pg_sys::get_relname_relid(table.as_ptr(), ns);
        pg_sys::LockDatabaseObject(relid, owner, 0, pg_sys::ExclusiveLock as pg_sys::LOCKMODE);
    }
}
