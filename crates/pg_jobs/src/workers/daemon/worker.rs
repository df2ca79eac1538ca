//! The daemon process: a dynamic worker that runs one daemon's command once.
//!
//! Its scheduler reserves a registry slot (kind `daemon`), puts the command
//! in a shared memory segment and starts it — at consistent state for
//! daemons that may run on a standby, at recovery end otherwise. It connects
//! as the daemon's owner, by role OID, runs the command like psql would and
//! records how it ended (returned, or failed with a SQLSTATE) in its slot.
//! Unlike a job's command, it is not subject to `statement_timeout` (a
//! role's or server's default would cancel it every so often).
//! Restarting is the scheduler's business (`daemons.rs`), never the
//! postmaster's, so the restart policy and the stop/start switch are one
//! thing in one place.
//!
//! Signals: SIGTERM (stop_daemon after its grace period, server shutdown)
//! ends it at the next CHECK_FOR_INTERRUPTS; SIGINT (stop_daemon) cancels
//! the running statement, which ends the command with 57014. A daemon's
//! command is usually a procedure that loops and COMMITs; it never returns
//! to a main loop where a backend would reload its configuration, so this
//! process reloads it after each commit when SIGHUP asked for it.

use crate::exec::command_segment::read_command;
use crate::exec::runner;
use crate::shmem::{self, Outcome, SlotRef};
use pgrx::prelude::*;

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_jobs_daemon_main(arg: pg_sys::Datum) {
    crate::pg::bgw::install_signal_handlers();
    let me = SlotRef::from_datum(arg);
    let Some(slot) = shmem::claim(me) else {
        return;
    };
    let command = match read_command(slot.dsm) {
        Ok(command) => command,
        Err(why) => {
            let (code, message) = why.outcome();
            shmem::record_outcome(me, Outcome::Failed, code, &message);
            return;
        }
    };
    let (db, role) = (pg_sys::Oid::from(slot.db), pg_sys::Oid::from(slot.role));
    // SAFETY: a database-connected background worker connects once, here,
    // before any transaction; the callback has the XactCallback signature
    // and needs no argument.
    unsafe {
        pg_sys::BackgroundWorkerInitializeConnectionByOid(db, role, 0);
        pg_sys::RegisterXactCallback(Some(reload_after_commit), std::ptr::null_mut());
    }
    shmem::set_running(me);
    // Not subject to statement_timeout: a daemon runs until it is stopped
    // (see runner::StatementTimeout::NotArmed).
    match runner::run(&command.sql, None, runner::StatementTimeout::NotArmed) {
        runner::Outcome::Succeeded => shmem::record_outcome(me, Outcome::Succeeded, "00000", ""),
        runner::Outcome::Failed {
            sqlstate, message, ..
        } => shmem::record_outcome(me, Outcome::Failed, &sqlstate, &message),
    }
}

/// After each of the daemon's commits: apply a pending SIGHUP, as a client
/// backend does between queries. At this point the transaction is durable
/// and GUC changes made now are kept by its end-of-transaction GUC step.
///
/// # Safety
///
/// Only PostgreSQL calls this, as the transaction callback registered in
/// [`pg_jobs_daemon_main`].
#[pg_guard]
unsafe extern "C-unwind" fn reload_after_commit(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    if event == pg_sys::XactEvent::XACT_EVENT_COMMIT {
        crate::pg::bgw::reload_config_if_asked();
    }
}
