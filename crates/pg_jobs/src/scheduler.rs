//! The scheduler: one dynamic worker per database that has the extension.
//!
//! Started by the launcher. Its first act is the *probe*: if the extension
//! is not installed in its database it says so in the registry and exits,
//! so a database without pg_jobs costs one short connection.
//!
//! Then it sleeps on its latch and, each time it is woken (a submitted run
//! committed, an executor exited, a DROP touched the database, SIGHUP), does
//! one pass in one transaction:
//! 1. exit if the extension was dropped;
//! 2. mark runs whose executor is gone `crashed` (nothing stays `running`
//!    after a kill, crash or restart);
//! 3. hand queued runs to new executors, up to `pg_jobs.max_executors`.
//!
//! It never wakes on a timer when nothing is due; the one exception is a
//! one-second retry while the postmaster has no free worker slot, because
//! nothing else would wake it when one frees up.

use crate::bgw::{self, DynamicWorker, WorkerHandle};
use crate::gucs;
use crate::registry::{self, Kind, SlotRef, State};
use pg_jobs_core::launcher::ExtPresence;
use pgrx::bgworkers::BgWorkerStartTime;
use pgrx::prelude::*;
use std::collections::HashMap;
use std::time::Duration;

const UNCLAIMED_SLOT_TIMEOUT_US: i64 = 10_000_000;

#[pg_guard]
#[unsafe(no_mangle)]
pub extern "C-unwind" fn pg_jobs_scheduler_main(arg: pg_sys::Datum) {
    bgw::install_signal_handlers();
    let me = SlotRef::from_datum(arg);
    let Some(slot) = registry::claim(me) else {
        return; // reclaimed before we started: someone else has this database
    };
    let db = pg_sys::Oid::from(slot.db);
    // Bookkeeping runs as the bootstrap superuser; jobs never run here.
    unsafe { pg_sys::BackgroundWorkerInitializeConnectionByOid(db, pg_sys::InvalidOid, 0) };

    let probe = bgw::in_transaction("pg_jobs scheduler: probing for the extension", || {
        extension_exists().then(|| bgw::database_name(db))
    });
    let Some(db_name) = probe else {
        registry::set_ext(db, ExtPresence::Absent);
        return;
    };
    registry::set_ext(db, ExtPresence::Present);
    log!("pg_jobs scheduler started for database \"{db_name}\"");

    let cx = bgw::IterationContext::new(c"pg_jobs scheduler iteration");
    let mut s = Scheduler {
        me,
        db,
        executors: HashMap::new(),
    };
    loop {
        pg_sys::check_for_interrupts!();
        bgw::reload_config_if_asked();
        if !gucs::enabled() {
            log!("pg_jobs scheduler for database \"{db_name}\" stopping: pg_jobs.enabled is off");
            return;
        }
        let next = cx.run(|| s.pass());
        match next {
            Next::Exit => {
                log!("pg_jobs scheduler for database \"{db_name}\" stopping: the extension was dropped");
                registry::set_ext(db, ExtPresence::Absent);
                return;
            }
            Next::Sleep => bgw::wait(None),
            Next::RetryIn(d) => bgw::wait(Some(d)),
        }
    }
}

enum Next {
    Exit,
    /// Nothing due: sleep until woken.
    Sleep,
    RetryIn(Duration),
}

struct Scheduler {
    me: SlotRef,
    db: pg_sys::Oid,
    /// Executors we started and have not seen stop, by run id.
    executors: HashMap<i64, (SlotRef, WorkerHandle)>,
}

/// A queued run picked for an executor.
struct Dispatch {
    run_id: i64,
    slot: SlotRef,
}

impl Scheduler {
    fn pass(&mut self) -> Next {
        // A hot standby is read-only: nothing runs there (watch mode). A
        // worker started at consistent state survives promotion, so look
        // again each second.
        if unsafe { pg_sys::RecoveryInProgress() } {
            return Next::RetryIn(Duration::from_secs(1));
        }
        registry::set_state(self.me, State::Busy, None);
        self.forget_stopped_executors();

        let dispatched = bgw::in_transaction("pg_jobs scheduler: dispatching runs", || {
            if !extension_exists() {
                return None;
            }
            mark_crashed_runs(self.db);
            Some(pick_runs(self.db))
        });
        let Some(dispatched) = dispatched else {
            return Next::Exit;
        };

        let mut next = Next::Sleep;
        for d in dispatched {
            let name = format!("pg_jobs executor for run {}", d.run_id);
            let w = DynamicWorker {
                bgw_type: "pg_jobs executor",
                bgw_name: &name,
                function: "pg_jobs_executor_main",
                start_time: BgWorkerStartTime::RecoveryFinished,
                slot: d.slot,
            };
            match bgw::start_dynamic(&w) {
                Some(h) => {
                    self.executors.insert(d.run_id, (d.slot, h));
                }
                None => {
                    // No free max_worker_processes slot: put the run back
                    // and try again shortly; nothing else would wake us.
                    registry::release(d.slot);
                    bgw::in_transaction("pg_jobs scheduler: requeueing a run", || requeue(d.run_id));
                    next = Next::RetryIn(Duration::from_secs(1));
                }
            }
        }
        registry::set_state(self.me, State::Idle, None);
        next
    }

    /// Drop handles of executors that have exited, and free slots of ones
    /// that never started. Slots reserved by an earlier life of this
    /// scheduler (no handle) are reaped after a timeout.
    fn forget_stopped_executors(&mut self) {
        self.executors.retain(|_, (slot, h)| {
            if h.status() == bgw::HandleStatus::Stopped {
                registry::release(*slot); // no-op if the executor freed it
                false
            } else {
                true
            }
        });
        let held: Vec<SlotRef> = self.executors.values().map(|(s, _)| *s).collect();
        if held.is_empty() {
            registry::reap_unclaimed(Kind::Executor, self.db, UNCLAIMED_SLOT_TIMEOUT_US);
        }
    }
}

fn extension_exists() -> bool {
    unsafe { pg_sys::get_extension_oid(c"pg_jobs".as_ptr(), true) != pg_sys::InvalidOid }
}

/// Runs that are `starting`/`running` but whose executor no longer holds a
/// registry slot: the executor was terminated, crashed, or the server
/// restarted. They end `crashed`. The registry is read before the runs, so
/// an executor that recorded its outcome and exited in between is seen
/// as finished, never as crashed.
fn mark_crashed_runs(db: pg_sys::Oid) {
    let live: Vec<i64> = registry::snapshot()
        .iter()
        .filter(|s| s.kind == Kind::Executor && s.db == db.to_u32())
        .map(|s| s.run_id)
        .collect();
    Spi::connect_mut(|client| {
        let crashed = client
            .update(
                "UPDATE jobs.run SET status = 'crashed', finished_at = pg_catalog.clock_timestamp(),
                        message = 'the executor ended without recording an outcome (terminated, crashed, or the server restarted)'
                  WHERE status OPERATOR(pg_catalog.=) ANY ('{starting,running}'::text[])
                    AND NOT (id OPERATOR(pg_catalog.=) ANY ($1))
              RETURNING id",
                None,
                &[live.into()],
            )
            .expect("marking crashed runs");
        for row in crashed {
            let id: i64 = row.get(1).ok().flatten().unwrap_or_default();
            log!("pg_jobs: run {id} marked crashed: its executor is gone");
        }
    });
}

/// Pick queued runs in submission order while executors are free; mark
/// each `starting` and reserve its registry slot. Runs whose owner cannot
/// log in to this database fail here with a clear message instead of
/// killing an executor at connection time.
fn pick_runs(db: pg_sys::Oid) -> Vec<Dispatch> {
    let running = registry::snapshot()
        .iter()
        .filter(|s| s.kind == Kind::Executor)
        .count();
    let free = gucs::max_executors().saturating_sub(running);
    if free == 0 {
        return Vec::new(); // an executor's exit wakes us
    }
    let mut out = Vec::new();
    Spi::connect_mut(|client| {
        let queued = client
            .select(
                "SELECT r.id, r.owner::pg_catalog.oid, ro.rolcanlogin,
                        pg_catalog.has_database_privilege(r.owner::pg_catalog.oid, pg_catalog.current_database(), 'CONNECT')
                   FROM jobs.run r
                   LEFT JOIN pg_catalog.pg_roles ro ON ro.oid OPERATOR(pg_catalog.=) r.owner::pg_catalog.oid
                  WHERE r.status OPERATOR(pg_catalog.=) 'queued'
                  ORDER BY r.id
                  LIMIT $1",
                None,
                &[(free as i64).into()],
            )
            .expect("reading queued runs");
        let rows: Vec<(i64, pg_sys::Oid, Option<bool>, Option<bool>)> = queued
            .map(|r| {
                (
                    r.get(1).ok().flatten().unwrap_or_default(),
                    r.get(2).ok().flatten().unwrap_or(pg_sys::InvalidOid),
                    r.get(3).ok().flatten(),
                    r.get(4).ok().flatten(),
                )
            })
            .collect();
        for (run_id, role, can_login, can_connect) in rows {
            let refusal = match (can_login, can_connect) {
                (None, _) => Some(("42704", "the run's owner role no longer exists".to_owned())),
                (Some(false), _) => Some((
                    "28000",
                    "the run's owner role is not permitted to log in (NOLOGIN)".to_owned(),
                )),
                (_, Some(false)) => Some((
                    "42501",
                    format!(
                        "the run's owner role lacks CONNECT privilege on database \"{}\"",
                        bgw::database_name(db)
                    ),
                )),
                _ => None,
            };
            if let Some((code, message)) = refusal {
                client
                    .update(
                        "UPDATE jobs.run SET status = 'failed', finished_at = pg_catalog.clock_timestamp(),
                                sqlstate = $2, message = $3
                          WHERE id OPERATOR(pg_catalog.=) $1",
                        None,
                        &[run_id.into(), code.into(), message.into()],
                    )
                    .expect("failing a run");
                continue;
            }
            let Some(slot) = registry::reserve(Kind::Executor, db, role, run_id) else {
                break; // registry full; an exit wakes us
            };
            client
                .update(
                    "UPDATE jobs.run SET status = 'starting' WHERE id OPERATOR(pg_catalog.=) $1",
                    None,
                    &[run_id.into()],
                )
                .expect("marking a run starting");
            out.push(Dispatch { run_id, slot });
        }
    });
    out
}

fn requeue(run_id: i64) {
    Spi::connect_mut(|client| {
        client
            .update(
                "UPDATE jobs.run SET status = 'queued'
                  WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'starting'",
                None,
                &[run_id.into()],
            )
            .expect("requeueing a run");
    });
}
