//! The transaction callback: acts on what the current transaction noted,
//! when it commits (or forgets it when it aborts), and refuses PREPARE
//! TRANSACTION of pg_jobs work.

use super::*;

/// Act at the end of the transaction on what it noted (see [`Pending`]).
///
/// # Safety
///
/// Only PostgreSQL calls this, as a transaction callback registered in
/// [`super::init`], at each transaction event of this backend.
#[pg_guard]
pub(super) unsafe extern "C-unwind" fn xact_callback(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::XactEvent::*;
    let committed = match event {
        XACT_EVENT_COMMIT | XACT_EVENT_PARALLEL_COMMIT => true,
        XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT => false,
        XACT_EVENT_PRE_PREPARE => {
            refuse_prepare_of_pg_jobs_work();
            return;
        }
        // Nothing of pg_jobs' own is pending (see above): forget the rest,
        // as at the end of any transaction. (A change to role settings is
        // not visible before its COMMIT PREPARED, which retires the pooled
        // executors then: see the utility hook.)
        XACT_EVENT_PREPARE => false,
        _ => return,
    };
    let p = noted(true);
    SUBMITTED.with(|s| s.borrow_mut().clear());
    let changed = CHANGED_JOBS.with(|c| std::mem::take(&mut *c.borrow_mut()));
    let mut wake_launcher = p.wake_launcher;
    if let Some(db) = p.evicted_db {
        // DROP DATABASE committed (the launcher's rescan forgets it) or
        // failed (the launcher starts its scheduler again).
        shmem::set_evicting(db, false);
        wake_launcher = true;
    }
    if committed {
        // SAFETY: MyDatabaseId is a plain global set once at connection and
        // only read here, on the backend's only thread.
        let me = unsafe { pg_sys::MyDatabaseId };
        if p.ext_created {
            shmem::set_ext(me, ExtPresence::Present);
            wake_launcher = true;
        }
        if p.ext_dropped {
            shmem::set_ext(me, ExtPresence::Absent);
            shmem::terminate_db_workers(me, &[Kind::Scheduler, Kind::Executor, Kind::Daemon]);
            wake_launcher = true;
        }
        if p.runs_finished {
            shmem::broadcast_runs_finished();
        }
        if !p.counts.is_empty() {
            shmem::add_counts(me.to_u32(), &p.counts);
        }
        if p.role_renamed {
            shmem::request_full_reload_everywhere();
        }
        if p.session_defaults_changed {
            // Committed and visible by now (this callback runs after the
            // commit is in the proc array), and before our client hears of
            // it: a run dispatched after that gets a fresh connection.
            shmem::retire_connected_executors();
        }
        if p.reload_jobs || p.reload_daemons || p.recheck_waiting || !changed.is_empty() {
            shmem::request_reload(me, p.reload_jobs, &changed, p.reload_daemons, p.recheck_waiting);
        } else if p.wake_scheduler || p.recheck_extension {
            shmem::wake_scheduler(me);
        }
    } else if p.recheck_extension && event == XACT_EVENT_PREPARE {
        // The drop may yet commit, elsewhere; the scheduler's re-check is
        // harmless now and again at its next pass.
        // SAFETY: MyDatabaseId is set once at connection and only read here.
        shmem::wake_scheduler(unsafe { pg_sys::MyDatabaseId });
    }
    if wake_launcher {
        shmem::wake_launcher();
    }
}

/// PREPARE TRANSACTION of a transaction that submitted, scheduled, changed
/// or cancelled pg_jobs work is refused, as PostgreSQL refuses it after
/// NOTIFY: the wake-ups it owes happen at commit in this backend, and a
/// COMMIT PREPARED (later, from any session) could not deliver them, so
/// the work would sit unseen until something else woke the scheduler.
fn refuse_prepare_of_pg_jobs_work() {
    let pending = noted(false);
    let changed = CHANGED_JOBS.with(|c| !c.borrow().is_empty());
    if pending.needs_commit_here() || changed {
        crate::pg::error::raise(
            pgrx::PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            "cannot PREPARE a transaction that has submitted, scheduled, changed or cancelled pg_jobs work",
            None,
        );
    }
}

/// Subtransactions (SAVEPOINT, a PL/pgSQL block with EXCEPTION): what one
/// noted follows its fate. An aborted one forgets it, and if it had evicted
/// a database's workers (a DROP DATABASE that then failed, caught), lets
/// them back at once rather than when the whole transaction ends.
///
/// # Safety
///
/// Only PostgreSQL calls this, as a subtransaction callback registered in
/// [`super::init`].
#[pg_guard]
pub(super) unsafe extern "C-unwind" fn subxact_callback(
    event: pg_sys::SubXactEvent::Type,
    _my: pg_sys::SubTransactionId,
    _parent: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::SubXactEvent::*;
    PENDING.with(|p| {
        let mut levels = p.borrow_mut();
        match event {
            SUBXACT_EVENT_START_SUB => {
                if levels.is_empty() {
                    levels.push(Pending::default()); // the top level
                }
                levels.push(Pending::default());
            }
            SUBXACT_EVENT_COMMIT_SUB if levels.len() > 1 => {
                if let Some(child) = levels.pop() {
                    if let Some(parent) = levels.last_mut() {
                        *parent = parent.merge(child);
                    }
                }
            }
            SUBXACT_EVENT_ABORT_SUB if levels.len() > 1 => {
                if let Some(db) = levels.pop().and_then(|child| child.evicted_db) {
                    shmem::set_evicting(db, false);
                    shmem::wake_launcher();
                }
            }
            _ => {}
        }
    });
}
