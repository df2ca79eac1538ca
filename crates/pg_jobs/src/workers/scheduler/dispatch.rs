//! Handing queued runs to executors: pick them (earliest due first, while
//! executors are free), then give each to a pooled executor or start a new
//! one.

use super::*;
use crate::catalog::row;
use crate::pg::error::OrRaise;

/// A queued run picked for an executor.
pub(super) struct Dispatch {
    pub(super) run_id: i64,
    pub(super) command: String,
    pub(super) slot: SlotRef,
    /// An idle executor of the same database and role takes it.
    pub(super) warm: bool,
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
    // By OID (0.2.0 on; rows queued by a session that still saw 0.1.0 have
    // none), else by name (a database not yet updated from 0.1.0).
    let database_match = if schema_version::databases_by_oid() {
        "d.oid OPERATOR(pg_catalog.=) r.datid
                         OR (r.datid IS NULL AND d.datname OPERATOR(pg_catalog.=) r.database)"
    } else {
        "d.datname OPERATOR(pg_catalog.=) r.database"
    };
    // FOR UPDATE SKIP LOCKED: a pooled executor claiming runs from the
    // queue itself (see executor::claim_next) never gets the same one.
    let queued = plans::run_built(
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
            &[(free as i64).into()],
        )
        .or_raise("reading queued runs");
    #[allow(clippy::type_complexity)]
    let rows: Vec<(
        i64,
        pg_sys::Oid,
        Option<pg_sys::Oid>,
        String,
        Option<bool>,
        Option<bool>,
        Option<i64>,
        Option<i64>,
        String,
    )> = queued
        .map(|r| {
            (
                row::get_req(&r, 1),
                row::get_req(&r, 2),
                row::get_opt(&r, 3),
                row::get_req(&r, 4),
                row::get_opt(&r, 5),
                row::get_opt(&r, 6),
                row::get_opt(&r, 7),
                row::get_opt(&r, 8),
                row::get_req(&r, 9),
            )
        })
        .collect();
    let mut out = Vec::new();
    for (run_id, role, target, command, can_login, can_connect, timeout_ms, job_id, db_name) in rows {
        let refusal = match (target, can_login, can_connect) {
            (None, _, _) => Some(("3D000", format!("database \"{db_name}\" no longer exists"))),
            (_, None, _) => Some(("42704", "the run's owner role no longer exists".to_owned())),
            (_, Some(false), _) => Some((
                "28000",
                "the run's owner role is not permitted to log in (NOLOGIN)".to_owned(),
            )),
            (_, _, Some(false)) => Some((
                "42501",
                format!("the run's owner role lacks CONNECT privilege on database \"{db_name}\""),
            )),
            _ => None,
        };
        if let Some((code, message)) = refusal {
            client
                .update(
                    "/* run event: refuse */ UPDATE jobs.run SET status = 'failed', finished_at = pg_catalog.clock_timestamp(),
                            sqlstate = $2, message = $3
                      WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'queued'",
                    None,
                    &[run_id.into(), code.into(), message.clone().into()],
                )
                .or_raise("failing a run");
            log_run(run_id, job_id, "failed", Some(&message));
            continue;
        }
        let reservation = Reservation {
            db: target.unwrap_or(db).to_u32(),
            home_db: db.to_u32(),
            role: role.to_u32(),
            job_id: job_id.unwrap_or(0),
            run_id,
            timeout_ms: timeout_ms.unwrap_or(0),
        };
        let idle = shmem::take_idle(
            db,
            reservation.db,
            reservation.role,
            run_id,
            reservation.job_id,
            reservation.timeout_ms,
        );
        let warm = idle.is_some();
        let Some(slot) = idle.or_else(|| shmem::reserve(Kind::Executor, reservation)) else {
            break; // registry full; an exit wakes us
        };
        out.push(Dispatch {
            run_id,
            command,
            slot,
            warm,
        });
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
            // It exited in between: start a fresh one next pass.
            bgw::in_transaction("pg_jobs scheduler: requeueing a run", || requeue(d.run_id, None));
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
                    "waiting: an idle executor is giving up its background worker slot"
                } else {
                    "waiting: no free background worker slot (max_worker_processes); retrying"
                };
                bgw::in_transaction("pg_jobs scheduler: requeueing a run", || {
                    requeue(d.run_id, Some(why))
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
