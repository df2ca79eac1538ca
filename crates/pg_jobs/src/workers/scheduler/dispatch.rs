//! Handing queued runs to executors: pick them (earliest due first, while
//! executors are free), then give each to a pooled executor or start a new
//! one.

use super::*;
use crate::catalog::row;
use crate::pg::error::OrRaise;
use pg_jobs_core::run::start::{self, Owner, WhyNot};

/// A queued run picked for an executor.
pub(super) struct Dispatch {
    pub(super) run_id: i64,
    pub(super) command: String,
    pub(super) slot: SlotRef,
    /// An idle executor of the same database and role takes it.
    pub(super) warm: bool,
}

/// A queued run as the dispatch query reads it (locked for this pass).
struct Queued {
    run_id: i64,
    role: pg_sys::Oid,
    /// `None`: its database is gone.
    target: Option<pg_sys::Oid>,
    command: String,
    /// `None`: its owner role is gone.
    can_login: Option<bool>,
    can_connect: Option<bool>,
    timeout_ms: Option<i64>,
    job_id: Option<i64>,
    db_name: String,
}

impl Queued {
    fn from_row(r: &pgrx::spi::SpiHeapTupleData) -> Queued {
        Queued {
            run_id: row::get_req(r, 1),
            role: row::get_req(r, 2),
            target: row::get_opt(r, 3),
            command: row::get_req(r, 4),
            can_login: row::get_opt(r, 5),
            can_connect: row::get_opt(r, 6),
            timeout_ms: row::get_opt(r, 7),
            job_id: row::get_opt(r, 8),
            db_name: row::get_req(r, 9),
        }
    }

    /// Why it can never start as it stands, as the run model says.
    fn refusal(&self) -> Option<WhyNot> {
        let owner = self.can_login.map(|can_login| Owner {
            can_login,
            // NULL only when the database or role is gone (decided above it).
            can_connect: self.can_connect.unwrap_or(true),
        });
        start::refusal(self.target.is_some(), owner)
    }
}

/// Pick queued runs, earliest due first, while executors are free; mark
/// each `starting` and reserve its registry slot. A run of a job whose
/// overlap policy forbids parallel runs waits while another is going. Runs
/// whose owner cannot log in to the target database fail here with a clear
/// message instead of killing an executor at connection time.
pub(super) fn pick_runs(client: &mut SpiClient, db: pg_sys::Oid) -> Vec<Dispatch> {
    let free = gucs::max_executors().saturating_sub(shmem::executor_count());
    if free == 0 {
        return Vec::new(); // an executor's exit wakes us
    }
    let mut out = Vec::new();
    for q in read_queued(client, free) {
        if let Some(why) = q.refusal() {
            refuse(client, &q, why);
            continue;
        }
        let Some(d) = reserve_executor(db, q) else {
            break; // registry full; an exit wakes us
        };
        out.push(d);
    }
    if !out.is_empty() {
        let ids: Vec<i64> = out.iter().map(|d| d.run_id).collect();
        plans::run(
            client,
            "/* run event: dispatch */ UPDATE jobs.run SET status = 'starting', message = NULL
                  WHERE id OPERATOR(pg_catalog.=) ANY ($1) AND status OPERATOR(pg_catalog.=) 'queued'",
            &[ids.into()],
        )
        .or_raise("marking runs starting");
    }
    out
}

/// Up to `limit` queued runs that may start now, in dispatch order,
/// locked (FOR UPDATE SKIP LOCKED: a pooled executor claiming runs from the
/// queue itself, see executor::claim_next, never gets the same one).
fn read_queued(client: &mut SpiClient, limit: usize) -> Vec<Queued> {
    // By OID (0.2.0 on; rows queued by a session that still saw 0.1.0 have
    // none), else by name (a database not yet updated from 0.1.0).
    let database_match = if schema_version::databases_by_oid() {
        "d.oid OPERATOR(pg_catalog.=) r.datid
                         OR (r.datid IS NULL AND d.datname OPERATOR(pg_catalog.=) r.database)"
    } else {
        "d.datname OPERATOR(pg_catalog.=) r.database"
    };
    plans::run_built(
            client,
            &format!("SELECT r.id, r.owner::pg_catalog.oid, d.oid, r.command, ro.rolcanlogin,
                    CASE WHEN d.oid IS NOT NULL AND ro.oid IS NOT NULL
                         THEN pg_catalog.has_database_privilege(ro.oid, d.oid, 'CONNECT') END,
                    (EXTRACT(EPOCH FROM r.timeout) * 1000)::int8, r.job_id, r.database::text
               FROM jobs.run r
               LEFT JOIN pg_catalog.pg_roles ro ON ro.oid OPERATOR(pg_catalog.=) r.owner::pg_catalog.oid
               LEFT JOIN pg_catalog.pg_database d ON {database_match}
               LEFT JOIN jobs.job j ON j.id OPERATOR(pg_catalog.=) r.job_id
              WHERE r.status OPERATOR(pg_catalog.=) 'queued'
                AND (r.not_before IS NULL OR r.not_before OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp())
                AND (j.overlap IS NULL OR j.overlap OPERATOR(pg_catalog.=) 'allow' OR NOT EXISTS (
                       SELECT 1 FROM jobs.run o WHERE o.job_id OPERATOR(pg_catalog.=) r.job_id
                          AND o.status OPERATOR(pg_catalog.=) ANY ('{{starting,running}}')))
              ORDER BY r.priority DESC, COALESCE(r.not_before, r.scheduled_for, r.submitted_at), r.id
              LIMIT $1
                FOR UPDATE OF r SKIP LOCKED"),
            &[(limit as i64).into()],
        )
        .or_raise("reading queued runs")
        .map(|r| Queued::from_row(&r))
        .collect()
}

/// Fail run `q`, which can never start as it stands (no retry: the model's
/// `RunEvent::Refuse`).
fn refuse(client: &mut SpiClient, q: &Queued, why: WhyNot) {
    let code = why.sqlstate().unwrap_or("XX000");
    let message = why.message(&q.db_name).unwrap_or_else(|| why.to_string());
    client
        .update(
            "/* run event: refuse */ UPDATE jobs.run SET status = 'failed', finished_at = pg_catalog.clock_timestamp(),
                    sqlstate = $2, message = $3
              WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'queued'",
            None,
            &[q.run_id.into(), code.into(), message.clone().into()],
        )
        .or_raise("failing a run");
    log_run(q.run_id, q.job_id, "failed", Some(&message));
}

/// An executor for run `q`: an idle pooled one of its database and role,
/// or a registry slot for a new one. `None`: the registry is full.
fn reserve_executor(db: pg_sys::Oid, q: Queued) -> Option<Dispatch> {
    let reservation = Reservation {
        db: q.target.unwrap_or(db).to_u32(),
        home_db: db.to_u32(),
        role: q.role.to_u32(),
        job_id: q.job_id.unwrap_or(0),
        run_id: q.run_id,
        timeout_ms: q.timeout_ms.unwrap_or(0),
    };
    let idle = shmem::take_idle(
        db,
        reservation.db,
        reservation.role,
        q.run_id,
        reservation.job_id,
        reservation.timeout_ms,
    );
    let warm = idle.is_some();
    let slot = idle.or_else(|| shmem::reserve(Kind::Executor, reservation))?;
    Some(Dispatch {
        run_id: q.run_id,
        command: q.command,
        slot,
        warm,
    })
}

impl Scheduler {
    /// Hand `d` to its idle executor, or start one; false (run put back in
    /// the queue) when that is not possible right now.
    pub(super) fn launch(&mut self, d: Dispatch) -> bool {
        let segment = Segment::new(&d.command);
        if d.warm {
            if shmem::hand_over(d.slot, segment.handle()) {
                self.segments.insert(d.run_id, segment);
                return true;
            }
            // It exited or began retiring in between: start a fresh one next pass.
            let why = WhyNot::ExecutorGone;
            bgw::in_transaction("pg_jobs scheduler: requeueing a run", || {
                requeue(d.run_id, why.message("").as_deref())
            });
            return false;
        }
        shmem::set_dsm(d.slot, segment.handle());
        let name = format!("pg_jobs executor for run {}", d.run_id);
        let w = DynamicWorker {
            bgw_type: "pg_jobs executor",
            bgw_name: &name,
            function: "pg_jobs_executor_main",
            start_time: BgWorkerStartTime::RecoveryFinished,
            slot: d.slot,
        };
        match bgw::start_dynamic(&w) {
            Some(handle) => {
                self.launched
                    .insert(d.slot.index, Launched { slot: d.slot, handle });
                self.segments.insert(d.run_id, segment);
                true
            }
            None => {
                shmem::release(d.slot);
                // Idle pooled executors hold worker slots: ask one to go.
                let why = if shmem::retire_one_idle() {
                    WhyNot::IdleExecutorRetiring
                } else {
                    WhyNot::NoWorkerSlot
                };
                bgw::in_transaction("pg_jobs scheduler: requeueing a run", || {
                    requeue(d.run_id, why.message("").as_deref())
                });
                log!(
                    "pg_jobs: no free background worker slot for run {}; it waits",
                    d.run_id
                );
                false
            }
        }
    }
}
