//! What executors report back: outcomes of finished runs written to the
//! history in one statement, retries queued, runs whose executor started
//! shown `running`, runs whose executor vanished marked `crashed`, and
//! executors past their timeout terminated.

use super::*;
use crate::catalog::row;
use crate::pg::error::OrRaise;

pub(super) const UNCLAIMED_SLOT_TIMEOUT_US: i64 = 10_000_000;

/// How long an executor may ignore the cancel at its timeout before it is terminated.
pub(super) const TIMEOUT_GRACE_MS: i64 = 2_000;

/// An executor slot whose outcome was written in this pass.
pub(super) struct Harvested {
    pub(super) slot: SlotRef,
    pub(super) run_id: i64,
    /// The process is gone (free the slot), or lives on in the pool.
    pub(super) exited: bool,
}

/// Queue attempt `attempt` of run `failed`, after its backoff (with jitter).
pub(super) fn queue_retry(client: &mut SpiClient, failed: i64, attempt: u32) {
    let backoff_ms: i64 = plans::run(
            client,
            "SELECT (EXTRACT(EPOCH FROM retry_backoff) * 1000)::int8 FROM jobs.run WHERE id OPERATOR(pg_catalog.=) $1",
            &[failed.into()],
        )
        .ok()
        .and_then(|t| t.into_iter().next().and_then(|r| row::get_opt::<i64>(&r, 1)))
        .unwrap_or(10_000);
    // SAFETY: the process's global PRNG state, used only on this thread;
    // PostgreSQL seeds it at process start.
    let jitter = unsafe { pg_sys::pg_prng_double(&raw mut pg_sys::pg_global_prng_state) };
    let delay = retry_delay(jiff::SignedDuration::from_millis(backoff_ms), attempt, jitter);
    plans::run_built(
            client,
            &format!("/* run event: retry */ INSERT INTO jobs.run (job_id, owner, command, database{datid}, attempt, max_attempts, timeout,
                                   retry_backoff, scheduled_for, not_before)
             SELECT job_id, owner, command, database{datid}, $2, max_attempts, timeout, retry_backoff, scheduled_for,
                    pg_catalog.clock_timestamp() + $3 * INTERVAL '1 millisecond'
               FROM jobs.run WHERE id OPERATOR(pg_catalog.=) $1",
                datid = if schema_version::databases_by_oid() { ", datid" } else { "" }),
            &[failed.into(), (attempt as i32).into(), (delay.as_millis() as i64).into()],
        )
        .or_raise("queueing a retry");
}

impl Scheduler {
    /// Forget executors the postmaster reports stopped (their slots are
    /// harvested separately), and free slots of ones that never started.
    /// Slots reserved by an earlier life of this scheduler (no handle) are
    /// reaped after a timeout.
    pub(super) fn forget_stopped_executors(&mut self) {
        self.launched.retain(|_, l| {
            if l.handle.status() != bgw::HandleStatus::Stopped {
                return true;
            }
            // The process is gone. If it never claimed its slot no outcome
            // will come: free it (the run is then marked crashed). Decided
            // under the registry lock: a slot it did claim holds its outcome.
            shmem::release_unclaimed(l.slot);
            false
        });
        if self.launched.is_empty() {
            shmem::reap_unclaimed(Kind::Executor, self.db, UNCLAIMED_SLOT_TIMEOUT_US);
        }
    }

    /// A pooled executor that records its run inside the run's own
    /// transaction and takes the next one from the queue never reports the
    /// first to us: drop what we kept for runs no slot holds any more.
    pub(super) fn forget_runs_no_executor_holds(&mut self) {
        let held: std::collections::HashSet<i64> = shmem::executors_of(self.db)
            .iter()
            .map(|(_, s)| s.run_id)
            .collect();
        self.segments.retain(|id, _| held.contains(id));
        self.shown_running.retain(|id| held.contains(id));
    }

    /// Write the outcomes of exited executors, in one statement, and queue
    /// retries. Returns the slots to free once this transaction commits.
    pub(super) fn harvest(&mut self, client: &mut SpiClient) -> Vec<Harvested> {
        // Exited executors, and pooled ones that finished a run (a pooled
        // one that exited after being harvested carries no outcome; its
        // last run is already terminal and the UPDATE below skips it).
        let exited: Vec<(SlotRef, shmem::Slot)> = shmem::executors_of(self.db)
            .into_iter()
            .filter(|(_, s)| s.phase().awaits_harvest())
            .collect();
        if exited.is_empty() {
            return Vec::new();
        }
        // An executor that exited may still hold reserved runs; its slot
        // is freed below, so they go back now.
        for (slot, _) in exited
            .iter()
            .filter(|(_, s)| s.exited() && !s.reserved().is_empty())
        {
            let ids = shmem::take_reserved(*slot);
            if !ids.is_empty() {
                requeue_reserved(&ids, false);
            }
        }
        let mut ids = Vec::new();
        let mut statuses = Vec::new();
        let mut pids = Vec::new();
        let mut started = Vec::new();
        let mut finished = Vec::new();
        let mut codes: Vec<Option<String>> = Vec::new();
        let mut messages: Vec<Option<String>> = Vec::new();
        // An executor that exited holding no run (idle in the pool, or
        // claimed for a run that was never handed to it: an earlier life
        // of this scheduler died in between) says nothing about a run:
        // free its slot, write nothing.
        for (_, s) in exited.iter().filter(|(_, s)| s.phase().holds_run()) {
            let (status, code, message) = match s.outcome {
                Outcome::Succeeded => (RunStatus::Succeeded, None, None),
                Outcome::Failed => (RunStatus::Failed, Some(s.sqlstate()), Some(s.message())),
                Outcome::TimedOut => (RunStatus::TimedOut, Some(s.sqlstate()), Some(s.message())),
                Outcome::Cancelled => (RunStatus::Cancelled, Some(s.sqlstate()), Some(s.message())),
                Outcome::None if s.killed_for_timeout => (
                    RunStatus::TimedOut,
                    Some("57014".to_owned()),
                    Some(format!(
                        "terminated {} ms after its timeout: it did not stop when cancelled",
                        TIMEOUT_GRACE_MS
                    )),
                ),
                Outcome::None => (
                    RunStatus::Crashed,
                    None,
                    Some(
                        "the executor ended without recording an outcome (terminated or crashed)".to_owned(),
                    ),
                ),
            };
            ids.push(s.run_id);
            statuses.push(status.as_str().to_owned());
            pids.push(s.pid);
            started.push(if s.started_at != 0 {
                s.started_at
            } else {
                s.finished_at
            });
            finished.push(s.finished_at);
            codes.push(code);
            messages.push(message);
        }
        let rows = plans::run(
                client,
                "/* run event: harvest(failed) */ UPDATE jobs.run r
                    SET status = u.status, pid = u.pid,
                        started_at = TIMESTAMPTZ '2000-01-01 00:00:00+00' + u.started * INTERVAL '1 microsecond',
                        finished_at = TIMESTAMPTZ '2000-01-01 00:00:00+00' + u.finished * INTERVAL '1 microsecond',
                        sqlstate = u.code, message = u.message
                   FROM ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($2::text[]),
                                   pg_catalog.unnest($3::int4[]), pg_catalog.unnest($4::int8[]),
                                   pg_catalog.unnest($5::int8[]), pg_catalog.unnest($6::text[]),
                                   pg_catalog.unnest($7::text[]))
                        AS u(id, status, pid, started, finished, code, message)
                  WHERE r.id OPERATOR(pg_catalog.=) u.id AND r.status OPERATOR(pg_catalog.=) ANY ('{starting,running}')
              RETURNING r.id, r.status, r.attempt, r.max_attempts, r.job_id, r.message",
                &[
                    ids.into(),
                    statuses.into(),
                    pids.into(),
                    started.into(),
                    finished.into(),
                    codes.into(),
                    messages.into(),
                ],
            )
            .or_raise("recording run outcomes");
        /// id, status, attempt, max_attempts, job_id, message.
        type Finished = (i64, String, i32, i32, Option<i64>, Option<String>);
        let finished: Vec<Finished> = rows
            .map(|r| {
                (
                    row::get_opt(&r, 1).unwrap_or_default(),
                    row::get_opt(&r, 2).unwrap_or_default(),
                    row::get_opt(&r, 3).unwrap_or(1),
                    row::get_opt(&r, 4).unwrap_or(1),
                    row::get_opt(&r, 5),
                    row::get_opt(&r, 6),
                )
            })
            .collect();
        for (id, status, attempt, max_attempts, job_id, message) in finished {
            log_run(id, job_id, &status, message.as_deref());
            let retryable = status.parse::<RunStatus>().is_ok_and(|s| s.is_retryable());
            if retryable && attempt < max_attempts {
                queue_retry(client, id, attempt as u32 + 1);
            }
        }
        // A pooled executor whose outcome is now written may take the next
        // run in this same pass: it is handed over only after this commits
        // (if this transaction fails, the scheduler exits, and the run is
        // later marked crashed and retried).
        for (slot, _) in exited.iter().filter(|(_, s)| !s.exited()) {
            shmem::mark_harvested(*slot);
        }
        exited
            .into_iter()
            .map(|(slot, s)| Harvested {
                slot,
                run_id: s.run_id,
                exited: s.exited(),
            })
            .collect()
    }

    /// Say `running` (with the real start time and pid) for runs whose
    /// executor has started, and `crashed` for runs that are `starting` or
    /// `running` with no executor at all (killed, crashed, server restart).
    pub(super) fn mark_started_and_crashed(&mut self, client: &mut SpiClient) {
        let slots = shmem::executors_of(self.db);
        let (mut ids, mut pids, mut starts) = (Vec::new(), Vec::new(), Vec::new());
        for (_, s) in slots
            .iter()
            .filter(|(_, s)| s.phase() == ExecutorPhase::Running && !self.shown_running.contains(&s.run_id))
        {
            ids.push(s.run_id);
            pids.push(s.pid);
            starts.push(s.started_at);
        }
        // Runs we looked at are shown (or were already): no more passes for them.
        self.shown_running.extend(ids.iter().copied());
        if !ids.is_empty() {
            plans::run(
                    client,
                    "/* run event: start */ UPDATE jobs.run r SET status = 'running', pid = u.pid,
                            started_at = TIMESTAMPTZ '2000-01-01 00:00:00+00' + u.started * INTERVAL '1 microsecond'
                       FROM ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($2::int4[]),
                                       pg_catalog.unnest($3::int8[])) AS u(id, pid, started)
                      WHERE r.id OPERATOR(pg_catalog.=) u.id AND r.status OPERATOR(pg_catalog.=) 'starting'
                  RETURNING r.id",
                    &[ids.into(), pids.into(), starts.into()],
                )
                .or_raise("marking runs running")
                .for_each(|r| {
                    if let Ok(Some(id)) = r.get::<i64>(1) {
                        self.shown_running.insert(id);
                    }
                });
        }
        // Runs in flight first, then who holds them: a pooled executor that
        // takes runs from the queue itself registers them before its claim
        // commits, and puts reserved runs back in the queue (locking their
        // rows) before it unregisters them, so any run this snapshot sees
        // in flight is either in the registry below or locked by its
        // executor. Each row's version (xmin) is kept: the run is marked
        // crashed only if it is still that version — not if, say, it went
        // back to the queue and another executor claimed it since.
        let in_flight: Vec<(i64, String)> = plans::run(
            client,
            "SELECT id, xmin::pg_catalog.text FROM jobs.run WHERE status OPERATOR(pg_catalog.=) ANY ('{starting,running}')",
            &[],
        )
        .or_raise("reading runs in flight")
        .filter_map(|r| Some((row::get_opt::<i64>(&r, 1)?, row::get_opt::<String>(&r, 2)?)))
        .collect();
        // A slot still waiting for a handover from a dead scheduler holds no
        // run (nor does one idle in the pool); an executor's reserved runs
        // are held until it starts them.
        let live: std::collections::HashSet<i64> = shmem::executors_of(self.db)
            .iter()
            .flat_map(|(_, s)| {
                let current = s.phase().holds_run().then_some(s.run_id);
                current.into_iter().chain(s.reserved().iter().copied())
            })
            .collect();
        let (gone, versions): (Vec<i64>, Vec<String>) =
            in_flight.into_iter().filter(|(id, _)| !live.contains(id)).unzip();
        if gone.is_empty() {
            return;
        }
        let crashed = plans::run(
                client,
                "/* run event: crash_sweep */ UPDATE jobs.run r SET status = 'crashed', finished_at = pg_catalog.clock_timestamp(),
                        message = 'the executor ended without recording an outcome (terminated, crashed, or the server restarted)'
                   FROM ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($2::text[])) AS g(id, version)
                  WHERE r.id OPERATOR(pg_catalog.=) g.id
                    AND r.xmin OPERATOR(pg_catalog.=) g.version::pg_catalog.xid
                    AND r.status OPERATOR(pg_catalog.=) ANY ('{starting,running}')
              RETURNING r.id, r.attempt, r.max_attempts, r.job_id",
                &[gone.into(), versions.into()],
            )
            .or_raise("marking crashed runs");
        let crashed: Vec<(i64, i32, i32, Option<i64>)> = crashed
            .map(|r| {
                (
                    row::get_opt(&r, 1).unwrap_or_default(),
                    row::get_opt(&r, 2).unwrap_or(1),
                    row::get_opt(&r, 3).unwrap_or(1),
                    row::get_opt(&r, 4),
                )
            })
            .collect();
        for (id, attempt, max_attempts, job_id) in crashed {
            log_run(id, job_id, "crashed", Some("its executor is gone"));
            if attempt < max_attempts {
                queue_retry(client, id, attempt as u32 + 1);
            }
        }
    }

    /// Terminate executors that overran their timeout by the grace period
    /// (they ignored the cancel). Returns when the next one would be due.
    pub(super) fn kill_overdue(&self, now: Timestamp) -> Option<Timestamp> {
        let now_pg = time::to_pg(now);
        let mut next: Option<Timestamp> = None;
        for (r, s) in shmem::executors_of(self.db) {
            if s.phase() != ExecutorPhase::Running
                || s.timeout_ms <= 0
                || s.started_at == 0
                || s.killed_for_timeout
            {
                continue;
            }
            // Saturating: timeouts are capped at i32::MAX ms, but the slot is shared memory.
            let deadline = s
                .started_at
                .saturating_add(s.timeout_ms.saturating_add(TIMEOUT_GRACE_MS).saturating_mul(1000));
            if now_pg >= deadline {
                log!(
                    "pg_jobs: run {} overran its timeout and ignored the cancel; terminating pid {}",
                    s.run_id,
                    s.pid
                );
                shmem::kill_for_timeout(r);
            } else {
                let t = time::from_pg_clamped(deadline);
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        next
    }
}
