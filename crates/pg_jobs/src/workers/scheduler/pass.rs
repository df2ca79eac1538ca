//! One pass of the scheduler on a primary: one transaction that harvests
//! executors' outcomes, marks started and crashed runs, fires due jobs and
//! picks queued runs; then, outside it, launches executors and supervises
//! daemons.

use super::*;
use pg_jobs_core::run::start::WhyNot;

/// What one pass decided, acted on after its transaction commits.
pub(super) struct PassResult {
    pub(super) harvested: Vec<Harvested>,
    pub(super) dispatch: Vec<Dispatch>,
    pub(super) wake_at: Option<Timestamp>,
    /// Start executors ahead of this due instant (after the dispatch: runs
    /// due now get background worker slots first).
    pub(super) prewarm_for: Option<Timestamp>,
}

impl Scheduler {
    pub(super) fn pass(&mut self) -> Next {
        // SAFETY: RecoveryInProgress only reads shared state, in any process
        // attached to shared memory.
        if unsafe { pg_sys::RecoveryInProgress() } {
            return self.watch();
        }
        // Just promoted: everything is read afresh (schedules resume from now).
        let promoted = std::mem::take(&mut self.was_in_recovery);
        shmem::set_state(self.me, State::Busy, None);
        self.forget_stopped_executors();
        self.forget_runs_no_executor_holds();
        let changes = shmem::take_reload(self.me);
        let reload_all = changes.all_jobs || promoted || !self.loaded;
        let reload_daemons = changes.daemons
            || changes.all_jobs
            || promoted
            || std::mem::take(&mut self.reload_daemons_pending);
        self.fired_in_pass.clear();

        let result = bgw::in_transaction("pg_jobs scheduler: pass", || {
            if !extension_exists() {
                return None;
            }
            // Runs reserved behind a slow run go back to the queue (and
            // out to others, below).
            let taken_back = shmem::take_back_reserved(self.db, shmem::RUNNING_VISIBLE_WITHIN_MS * 1000);
            if !taken_back.is_empty() {
                requeue_reserved(&taken_back, false);
            }
            Some(Spi::connect_mut(|client| {
                self.daemons.observe(client, reload_daemons, true);
                let harvested = self.harvest(client);
                self.mark_started_and_crashed(client);
                let now = Timestamp::now();
                let mut wake_at = self.kill_overdue(now);
                if reload_all {
                    refresh_database_names(client);
                    self.load_jobs(client, now, None);
                } else if !changes.jobs.is_empty() {
                    self.load_jobs(client, now, Some(&changes.jobs));
                }
                self.fire_due_jobs(client, now);
                let dispatch = pick_runs(client, self.db);
                if !harvested.is_empty() && self.last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
                    purge_history(client);
                    self.last_purge = Some(Instant::now());
                }
                let next_retry = next_not_before(client);
                let next_job = self.heap.peek().map(|Reverse((t, _))| *t);
                // Executors started ahead of the next instant jobs fall due
                // at, when the pool would be cold by then.
                let mut prewarm_for = None;
                if let Some(t) = next_job {
                    match self.prewarm_at(t, now) {
                        Some(at) if at <= now => prewarm_for = Some(t),
                        Some(at) => wake_at = Some(wake_at.map_or(at, |w: Timestamp| w.min(at))),
                        None => {}
                    }
                }
                for t in [next_retry, next_job].into_iter().flatten() {
                    wake_at = Some(wake_at.map_or(t, |w: Timestamp| w.min(t)));
                }
                PassResult {
                    harvested,
                    dispatch,
                    wake_at,
                    prewarm_for,
                }
            }))
        });
        let Some(result) = result else {
            return Next::Exit;
        };
        // Committed: what it fired stays fired whatever happens next.
        self.fired_in_pass.clear();

        // The outcomes are committed: the slots can go, and waiters look again.
        let harvested_any = !result.harvested.is_empty();
        if harvested_any {
            shmem::broadcast_runs_finished();
        }
        for h in result.harvested {
            self.segments.remove(&h.run_id);
            self.shown_running.remove(&h.run_id);
            if h.exited {
                shmem::release(h.slot);
            }
        }
        let mut retry_soon = false;
        for d in result.dispatch {
            if retry_soon {
                // Keep due-time order: once one waits for a worker slot, the later ones wait too.
                if d.warm {
                    // A live pooled executor: back to the pool, not freed.
                    shmem::abandon_handover(d.slot);
                } else {
                    shmem::release(d.slot);
                }
                bgw::in_transaction("pg_jobs scheduler: requeueing a run", || {
                    requeue(d.run_id, WhyNot::BehindEarlierRun.message("").as_deref())
                });
            } else {
                retry_soon = !self.launch(d);
            }
        }
        if let Some(t) = result.prewarm_for {
            bgw::in_transaction("pg_jobs scheduler: starting executors ahead of due jobs", || {
                self.prewarm(t)
            });
        }
        self.vacuum_queue_after_a_burst();
        let daemon_wake = self.daemons.act(false);
        shmem::set_state(self.me, State::Idle, None);

        // Runs handed out or still starting: look again shortly to show
        // them `running` (executors do not wake us when they start).
        let executors = shmem::executors_of(self.db);
        let busy = executors.iter().any(|(_, s)| {
            let p = s.phase();
            !p.exited() && !p.reusable() && !p.outcome_ready() && !self.shown_running.contains(&s.run_id)
        });
        let mut wake_at = result.wake_at;
        // Runs reserved behind a run in progress: look when that run turns
        // slow, to take them back (the executor's timer wakes us then too;
        // this does not depend on that one wake-up arriving).
        for (_, s) in executors
            .iter()
            .filter(|(_, s)| s.phase() == ExecutorPhase::Running && !s.reserved().is_empty())
        {
            let t = time::from_pg_clamped(s.since + shmem::RUNNING_VISIBLE_WITHIN_MS * 1000 + 1000);
            wake_at = Some(wake_at.map_or(t, |w: Timestamp| w.min(t)));
        }
        if let Some(t) = daemon_wake {
            let t = time::from_pg_clamped(t);
            wake_at = Some(wake_at.map_or(t, |w| w.min(t)));
        }
        if busy {
            let soon = Timestamp::now() + jiff::SignedDuration::from_millis(shmem::RUNNING_VISIBLE_WITHIN_MS);
            wake_at = Some(wake_at.map_or(soon, |w| w.min(soon)));
        }
        let mut timeout = wake_at.map(|t| {
            let us = t.as_microsecond() - Timestamp::now().as_microsecond();
            // Round up to the latch's whole milliseconds: waking early would
            // just cost a pass (and a whole extra millisecond, the lag).
            // At least 1 ms: a wake time that is already past never makes
            // this a busy loop.
            Duration::from_millis((us.max(0) as u64).div_ceil(1000).max(1))
        });
        if retry_soon {
            // No free background worker slot: nothing would wake us when one frees up.
            timeout = Some(timeout.map_or(Duration::from_secs(1), |t| t.min(Duration::from_secs(1))));
        }
        Next::Sleep(timeout)
    }
}
