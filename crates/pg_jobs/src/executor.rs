//! The executor: a dynamic worker that runs one run.
//!
//! It connects to the run's database **as the run's owner, by role OID**,
//! so the command has exactly the owner's privileges (and the owner's
//! per-role settings). Its own bookkeeping — taking the run and recording
//! the outcome — switches to the bootstrap superuser for those two fixed
//! statements only, because owners may read but never write `jobs.run`.
//!
//! Never restarted by the postmaster: if it dies, the scheduler marks the
//! run `crashed`.

use crate::bgw;
use crate::registry::{self, SlotRef, State};
use crate::sql_runner::{self, Outcome};
use pgrx::prelude::*;

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_jobs_executor_main(arg: pg_sys::Datum) {
    bgw::install_signal_handlers();
    let me = SlotRef::from_datum(arg);
    let Some(slot) = registry::claim(me) else {
        return;
    };
    let (db, role, run_id) = (
        pg_sys::Oid::from(slot.db),
        pg_sys::Oid::from(slot.role),
        slot.run_id,
    );
    unsafe { pg_sys::BackgroundWorkerInitializeConnectionByOid(db, role, 0) };

    // Take the run: only a run the scheduler marked `starting` for us, so a
    // run can never be executed twice.
    let command = bgw::in_transaction("pg_jobs executor: taking the run", || {
        bgw::as_superuser(|| {
            Spi::get_one_with_args::<String>(
                "UPDATE jobs.run SET status = 'running', started_at = pg_catalog.now(),
                        pid = pg_catalog.pg_backend_pid()
                  WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'starting'
              RETURNING command",
                &[run_id.into()],
            )
        })
    });
    let command = match command {
        Ok(Some(c)) => c,
        Ok(None) | Err(pgrx::spi::SpiError::InvalidPosition) => return,
        Err(e) => error!("pg_jobs executor: cannot take run {run_id}: {e}"),
    };

    registry::set_state(me, State::Running, None);
    let outcome = sql_runner::run(&command);
    registry::set_state(me, State::Busy, None);

    let (status, code, message) = match &outcome {
        Outcome::Succeeded => ("succeeded", None, None),
        Outcome::Failed { sqlstate, message } => {
            log!("pg_jobs: run {run_id} failed: {message} (SQLSTATE {sqlstate})");
            ("failed", Some(sqlstate.as_str()), Some(message.as_str()))
        }
    };
    bgw::in_transaction("pg_jobs executor: recording the outcome", || {
        bgw::as_superuser(|| {
            Spi::run_with_args(
                "UPDATE jobs.run SET status = $2, finished_at = pg_catalog.clock_timestamp(),
                        sqlstate = $3, message = $4
                  WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'running'",
                &[run_id.into(), status.into(), code.into(), message.into()],
            )
        })
    })
    .unwrap_or_else(|e| error!("pg_jobs executor: cannot record the outcome of run {run_id}: {e}"));
}
