//! REASSIGN OWNED and DROP OWNED, for pg_jobs (issue 13, finding 9).
//!
//! A role that owns jobs or daemons in a database owns an ownership anchor
//! there (`catalog::ownership`), so PostgreSQL's own processing of these
//! statements already moves (REASSIGN) or drops (DROP OWNED) the anchor.
//! Once it has succeeded, in the same transaction, the utility hook calls
//! this for the rest, in this database (the statements act on the current
//! database only, as PostgreSQL's do):
//!
//! * REASSIGN OWNED BY a TO b: a's jobs and daemons become b's (they run as
//!   b from now on; a running daemon restarts as b), and so do a's queued
//!   runs; runs already taken by an executor finish as a. A job or daemon
//!   name b already uses is an error (a name is unique per owner), as is
//!   giving jobs to a superuser role without being superuser (the rule of
//!   `run_as`).
//! * DROP OWNED BY a: a's jobs and daemons are removed (daemons stop, as
//!   with `jobs.drop_daemon`; runs of a removed job are not retried, as with
//!   `jobs.unschedule`) and a's queued runs are cancelled; runs already
//!   taken by an executor finish, as PostgreSQL leaves a's sessions running.
//!
//! Both then put the roles' anchors right (b may now hold a's anchor as
//! well as its own). All of it commits or rolls back with the statement;
//! the workers hear of it at commit, as of any change.

use super::*;
use crate::catalog::owned::{self, Owned};
use crate::catalog::ownership::{self, Change};
use crate::catalog::{runs, schema_version};
use crate::pg::bgw;
use crate::pg::error::raise;
use pgrx::PgSqlErrorCode as Code;

/// After PostgreSQL ran REASSIGN OWNED or DROP OWNED statement `node`
/// successfully: do pg_jobs' part of it, if this database has pg_jobs at a
/// version that records ownership.
///
/// # Safety
///
/// `node` is the (valid) parse tree of a `ReassignOwnedStmt` or a
/// `DropOwnedStmt` that has just run, in its transaction; its role lists
/// stay valid for the call.
pub(super) unsafe fn after_owned_statement(node: *mut pg_sys::Node) {
    if !schema_version::extension_exists() || !schema_version::records_ownership() {
        return;
    }
    // SAFETY: the caller's contract: a valid node whose tag says which of
    // the two statements it is; their role lists are Lists of RoleSpec.
    unsafe {
        match (*node).type_ {
            pg_sys::NodeTag::T_ReassignOwnedStmt => {
                let s = node as *mut pg_sys::ReassignOwnedStmt;
                let to = pg_sys::get_rolespec_oid((*s).newrole, false);
                reassign(&role_oids((*s).roles), to);
            }
            pg_sys::NodeTag::T_DropOwnedStmt => {
                drop_owned(&role_oids((*(node as *mut pg_sys::DropOwnedStmt)).roles));
            }
            _ => {}
        }
    }
}

/// The OIDs of the roles `list` names, once each. Resolved as PostgreSQL
/// resolved them (`CURRENT_USER` is the caller, not pg_jobs: call this
/// before acting as pg_jobs); the statement has run, so they exist.
///
/// # Safety
///
/// `list` is null or a valid `List` of `RoleSpec` node pointers.
unsafe fn role_oids(list: *mut pg_sys::List) -> Vec<pg_sys::Oid> {
    if list.is_null() {
        return Vec::new();
    }
    let mut out = Vec::new();
    // SAFETY: `list` is a valid List (caller's contract): `elements` holds
    // `length` cells, each a RoleSpec pointer, which get_rolespec_oid reads
    // (an unknown role is an ERROR, which cannot happen after the statement
    // found them all).
    unsafe {
        for i in 0..(*list).length as usize {
            let spec = (*(*list).elements.add(i)).ptr_value as *mut pg_sys::RoleSpec;
            let role = pg_sys::get_rolespec_oid(spec, false);
            if !out.contains(&role) {
                out.push(role);
            }
        }
    }
    out
}

/// REASSIGN OWNED BY `from` TO `to`, for pg_jobs.
fn reassign(from: &[pg_sys::Oid], to: pg_sys::Oid) {
    // Asked of the caller, before acting as pg_jobs.
    // SAFETY: syscache look-ups of role attributes, in the statement's
    // transaction.
    let (caller_is_superuser, to_is_superuser) = unsafe { (pg_sys::superuser(), pg_sys::superuser_arg(to)) };
    for &role in from.iter().filter(|&&r| r != to) {
        let (ids, daemons_moved, runs_moved) = bgw::as_superuser(|| {
            if let Some(name) = owned::name_clash(Owned::Job, role, to) {
                clash("job", &name, role, to);
            }
            if let Some(name) = owned::name_clash(Owned::Daemon, role, to) {
                clash("daemon", &name, role, to);
            }
            (
                owned::reassign(Owned::Job, role, to),
                owned::reassign(Owned::Daemon, role, to).len(),
                runs::reassign_queued(role, to),
            )
        });
        if to_is_superuser && !caller_is_superuser && (!ids.is_empty() || daemons_moved > 0 || runs_moved > 0)
        {
            raise(
                Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
                format!(
                    "permission denied to give the jobs and daemons of role \"{}\" to superuser role \"{}\"",
                    crate::catalog::acl::role_name(role),
                    crate::catalog::acl::role_name(to)
                ),
                Some("Only superusers may make jobs, runs or daemons run as a superuser, as with run_as."),
            );
        }
        for id in ids {
            job_changed_at_commit(id);
        }
        if daemons_moved > 0 {
            daemons_changed_at_commit();
        }
        if runs_moved > 0 {
            wake_scheduler_at_commit();
        }
    }
    // PostgreSQL gave `to` the anchors of `from`: one is enough.
    ownership::sync(to, Change::Any);
    for &role in from.iter().filter(|&&r| r != to) {
        ownership::sync(role, Change::Lost);
    }
}

/// A name that `to` already uses for a `kind` (job or daemon): the
/// statement fails, and changes nothing.
fn clash(kind: &str, name: &str, from: pg_sys::Oid, to: pg_sys::Oid) -> ! {
    let (from, to) = (
        crate::catalog::acl::role_name(from),
        crate::catalog::acl::role_name(to),
    );
    raise(
        Code::ERRCODE_DUPLICATE_OBJECT,
        format!("role \"{to}\" already has a {kind} called \"{name}\", as role \"{from}\" has"),
        Some(&format!(
            "A {kind}'s name is unique per owner: remove one of the two (as its owner), then reassign again."
        )),
    )
}

/// DROP OWNED BY `roles`, for pg_jobs.
fn drop_owned(roles: &[pg_sys::Oid]) {
    for &role in roles {
        let (ids, daemons_dropped, cancelled) = bgw::as_superuser(|| {
            (
                owned::delete_owned_by(Owned::Job, role),
                owned::delete_owned_by(Owned::Daemon, role).len(),
                runs::cancel_queued_of(role),
            )
        });
        for id in ids {
            job_changed_at_commit(id);
        }
        if daemons_dropped > 0 {
            daemons_changed_at_commit();
        }
        if cancelled > 0 {
            runs_finished_at_commit();
            super::runs_ended_at_commit(pg_jobs_core::run::RunStatus::Cancelled, cancelled);
            // Other roles' runs may have waited for these.
            super::waiting_changed_at_commit();
        }
        // PostgreSQL has dropped its anchor; this checks there is none left.
        ownership::sync(role, Change::Lost);
    }
}
