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

/// What the pass must read again, from the reload requests and the server's state.
struct Reloads {
    all_jobs: bool,
    jobs: Vec<i64>,
    daemons: bool,
    /// Look at every waiting run (see `waiting`).
    waiting: bool,
}

/// The earlier of `w` and `t`.
fn earliest(w: Option<Timestamp>, t: Timestamp) -> Option<Timestamp> {
    Some(w.map_or(t, |w| w.min(t)))
}

impl Scheduler {
    pub(super) fn pass(&mut self) -> Next {
        // SAFETY: RecoveryInProgress only reads shared state, in any process
        // attached to shared memory.
        if unsafe { pg_sys::RecoveryInProgress() } {
            return self.watch();
        }
        shmem::set_state(self.me, State::Busy, None);
        shmem::count(self.db.to_u32(), |c| c.scheduler_passes += 1);
        self.forget_stopped_executors();
        self.forget_runs_no_executor_holds();
        let reloads = self.reloads();
        self.fired_in_pass.clear();
        self.journal = Journal::default();
        let result = bgw::in_transaction("pg_jobs scheduler: pass", || {
            if !extension_exists() {
                return None;
            }
            // Runs reserved behind a slow run go back to the queue (and
            // out to others, below).
            let mut taken_back = std::mem::take(&mut self.requeue_pending);
            taken_back.extend(shmem::take_back_reserved(
                self.db,
                shmem::RUNNING_VISIBLE_WITHIN_MS * 1000,
            ));
            if !taken_back.is_empty() {
                self.journal.requeued.extend(&taken_back);
                requeue_reserved(&taken_back, false);
            }
            Some(Spi::connect_mut(|client| {
                self.pass_in_transaction(client, &reloads)
            }))
        });
        let Some(result) = result else {
            return Next::Exit;
        };
        // Committed: what it fired stays fired, what it harvested and
        // requeued stays so, whatever happens next.
        self.fired_in_pass.clear();
        self.journal.requeued.clear();
        self.journal.harvested.clear();
        self.journal.committed = true;
        self.after_commit(result)
    }

    /// What changed since the last pass: reload requests, and a promotion
    /// (just promoted: everything is read afresh, schedules resume from now).
    fn reloads(&mut self) -> Reloads {
        let promoted = std::mem::take(&mut self.was_in_recovery);
        let changes = shmem::take_reload(self.me);
        let all_jobs = changes.all_jobs || promoted || !self.loaded;
        Reloads {
            all_jobs,
            daemons: changes.daemons
                || changes.all_jobs
                || promoted
                || std::mem::take(&mut self.reload_daemons_pending),
            jobs: changes.jobs,
            waiting: changes.waiting || all_jobs || std::mem::take(&mut self.recheck_waiting_pending),
        }
    }

    /// The pass's transaction: harvest, mark started and crashed runs, kill
    /// overdue executors, reload jobs, fire due ones, pick queued runs.
    fn pass_in_transaction(&mut self, client: &mut SpiClient, reloads: &Reloads) -> PassResult {
        self.daemons.observe(client, reloads.daemons, true);
        let harvested = self.harvest(client);
        // Every run harvested ended (those a command recorded itself
        // included, which the harvest's own update does not return).
        for h in &harvested {
            super::waiting::ended(h.run_id);
        }
        self.mark_started_and_crashed(client);
        let now = Timestamp::now();
        let mut wake_at = self.kill_overdue(now);
        if reloads.all_jobs {
            refresh_database_names(client);
            self.load_jobs(client, now, None);
        } else if !reloads.jobs.is_empty() {
            self.load_jobs(client, now, Some(&reloads.jobs));
        }
        if reloads.all_jobs || !reloads.jobs.is_empty() {
            self.has_followers = crate::catalog::chains::any_followers(client);
        }
        // Before the queue is read: a run released (or a follower fired)
        // now is dispatched now.
        self.recheck_waiting_pending = self.resolve_waiting(client, reloads.waiting);
        self.fire_due_jobs(client, now);
        let (dispatch, next_start) = pick_runs(client, self.db, &mut self.journal.dispatched);
        if let Some(t) = next_start {
            wake_at = earliest(wake_at, t);
        }
        if !harvested.is_empty() && self.last_purge.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
            purge_history(client);
            self.last_purge = Some(Instant::now());
        }
        let next_retry = next_not_before(client);
        let next_job = self.heap.peek().map(|Reverse((t, _))| *t);
        // Executors started ahead of the next instant jobs fall due at,
        // when the pool would be cold by then.
        let mut prewarm_for = None;
        if let Some(t) = next_job {
            match self.prewarm_at(t, now) {
                Some(at) if at <= now => prewarm_for = Some(t),
                Some(at) => wake_at = earliest(wake_at, at),
                None => {}
            }
        }
        for t in [next_retry, next_job].into_iter().flatten() {
            wake_at = earliest(wake_at, t);
        }
        if self.recheck_waiting_pending {
            // More waiting runs to decide than one pass takes.
            wake_at = earliest(wake_at, now);
        } else if self.waiting_may_exist {
            // The safety net's next full look (see `waiting`).
            wake_at = earliest(
                wake_at,
                now + jiff::SignedDuration::try_from(super::waiting::FULL_LOOK_EVERY).unwrap_or_default(),
            );
        }
        PassResult {
            harvested,
            dispatch,
            wake_at,
            prewarm_for,
        }
    }

    /// After the pass commits: free harvested slots, launch the picked
    /// runs, prewarm, supervise daemons; then how long to sleep.
    fn after_commit(&mut self, result: PassResult) -> Next {
        // The outcomes are committed: the slots can go, and waiters look again.
        if !result.harvested.is_empty() {
            shmem::broadcast_runs_finished();
        }
        for h in result.harvested {
            self.segments.remove(&h.run_id);
            self.shown_running.remove(&h.run_id);
            if h.exited {
                shmem::release(h.slot);
            }
        }
        let retry_soon = self.launch_all(result.dispatch);
        if let Some(t) = result.prewarm_for {
            bgw::in_transaction("pg_jobs scheduler: starting executors ahead of due jobs", || {
                self.prewarm(t)
            });
        }
        self.vacuum_queue_after_a_burst();
        let daemon_wake = self.daemons.act(false);
        shmem::set_state(self.me, State::Idle, None);
        let mut wake_at = self.executors_wake_at(result.wake_at);
        if let Some(t) = daemon_wake {
            wake_at = earliest(wake_at, time::from_pg_clamped(t));
        }
        let mut timeout = wake_at.map(|t| {
            let us = t.as_microsecond() - Timestamp::now().as_microsecond();
            // To the microsecond (the main loop's sleep wakes on time). A
            // wake time that is already past waits 1 ms, so that it never
            // makes this a busy loop.
            if us <= 0 {
                Duration::from_millis(1)
            } else {
                Duration::from_micros(us as u64)
            }
        });
        if retry_soon {
            // No free background worker slot: nothing would wake us when one frees up.
            timeout = Some(timeout.map_or(Duration::from_secs(1), |t| t.min(Duration::from_secs(1))));
        }
        Next::Sleep(timeout)
    }

    /// Launch the picked runs in due order; once one waits for a worker
    /// slot, the later ones go back to the queue too. Returns whether one
    /// waits (look again soon).
    fn launch_all(&mut self, dispatch: Vec<Dispatch>) -> bool {
        let mut retry_soon = false;
        for d in dispatch {
            let slot = d.slot;
            if !retry_soon {
                retry_soon = !self.launch(d);
            } else {
                if d.warm {
                    // A live pooled executor: back to the pool, not freed.
                    shmem::abandon_handover(d.slot);
                } else {
                    shmem::release(d.slot);
                }
                bgw::in_transaction("pg_jobs scheduler: requeueing a run", || {
                    requeue(d.run_id, WhyNot::BehindEarlierRun.message("").as_deref())
                });
            }
            // Handed over, or requeued with its executor given back: nothing
            // to undo for it. (An ERROR above leaves it in the journal: the
            // failed pass gives its executor back and requeues it.)
            self.journal.dispatched.retain(|(s, _, _)| *s != slot);
        }
        retry_soon
    }

    /// `wake_at`, or earlier if executors need looking at: runs handed out
    /// or still starting, to show them `running` shortly (executors do not
    /// wake us when they start); runs reserved behind a run in progress,
    /// when that run turns slow, to take them back (the executor's timer
    /// wakes us then too; this does not depend on that one wake-up arriving).
    fn executors_wake_at(&self, mut wake_at: Option<Timestamp>) -> Option<Timestamp> {
        let executors = shmem::executors_of(self.db);
        let busy = executors.iter().any(|(_, s)| {
            let p = s.phase();
            !p.exited() && !p.reusable() && !p.outcome_ready() && !self.shown_running.contains(&s.run_id)
        });
        for (_, s) in executors
            .iter()
            .filter(|(_, s)| s.phase() == ExecutorPhase::Running && !s.reserved().is_empty())
        {
            let t = time::from_pg_clamped(s.since + shmem::RUNNING_VISIBLE_WITHIN_MS * 1000 + 1000);
            wake_at = earliest(wake_at, t);
        }
        if busy {
            let soon = Timestamp::now() + jiff::SignedDuration::from_millis(shmem::RUNNING_VISIBLE_WITHIN_MS);
            wake_at = earliest(wake_at, soon);
        }
        wake_at
    }
}
