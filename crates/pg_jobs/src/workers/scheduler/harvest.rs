//! What executors report back: outcomes of finished runs written to the
//! history in one statement, retries queued, runs whose executor started
//! shown `running`, runs whose executor vanished marked `crashed`, and
//! executors past their timeout terminated.

use super::*;
use crate::catalog::runs::{self, Ended, Endings};
use pg_jobs_core::run::outcome::{self, Ending};
use pg_jobs_core::run::retry::{self, Retry};
use pg_jobs_core::run::{RunEvent, RunStatus};

pub(super) const UNCLAIMED_SLOT_TIMEOUT_US: i64 = 10_000_000;

/// An executor slot whose outcome was written in this pass.
pub(super) struct Harvested {
    pub(super) slot: SlotRef,
    pub(super) run_id: i64,
    /// The process is gone (free the slot), or lives on in the pool.
    pub(super) exited: bool,
}

/// Log run `e`, which a harvest or the crash sweep (`ended_by`) made
/// terminal, and queue its next attempt if the run model's retry decision
/// says so; else, if it failed, announce it (`pg_jobs.notify_channel`).
fn settle(client: &mut SpiClient, e: &Ended, ended_by: RunEvent) {
    log_run(e.id, e.job_id, e.status.as_str(), e.message.as_deref());
    crate::hooks::run_ended_at_commit(e.status, e.lag_us, e.duration_us);
    super::waiting::ended(e.id);
    // SAFETY: the process's global PRNG state, used only on this
    // thread; PostgreSQL seeds it at process start.
    let jitter = unsafe { pg_sys::pg_prng_double(&raw mut pg_sys::pg_global_prng_state) };
    let backoff = jiff::SignedDuration::from_millis(e.backoff_ms);
    let retried = match retry::decide(ended_by, e.attempt, e.max_attempts, backoff, jitter) {
        Retry::After { attempt, delay } => {
            runs::queue_retry(client, e.id, attempt as i32, delay.as_millis() as i64);
            true
        }
        _ => false,
    };
    if pg_jobs_core::notify::announces(e.status, retried) {
        announce_failure(&e.database, e.id, e.job_id, e.status, e.sqlstate.as_deref());
    }
}

/// Announce run `run_id`'s final failure on `pg_jobs.notify_channel` (if
/// set), delivered when this pass commits.
pub(super) fn announce_failure(
    database: &str,
    run_id: i64,
    job_id: Option<i64>,
    status: RunStatus,
    sqlstate: Option<&str>,
) {
    if let Some(channel) = gucs::notify_channel() {
        let payload = pg_jobs_core::notify::failure_payload(database, run_id, job_id, status, sqlstate);
        crate::pg::notify::send(&channel, &payload);
    }
}

/// Add how the run of slot `s` ended to `endings`, as the run model has
/// it: what its executor reported, else (it is gone) a timeout kill or a crash.
fn push_ending(endings: &mut Endings, s: &shmem::Slot) {
    let ending = s.outcome.ending(s.killed_for_timeout);
    // A success's message is its command tag (what the executor reported).
    let tag = (ending == Ending::Succeeded && !s.message().is_empty()).then(|| s.message());
    let (code, message, detail) = match ending {
        Ending::Succeeded => (None, None, None),
        Ending::Crashed | Ending::TimedOut if s.outcome == Outcome::Nothing => {
            let (code, message) = outcome::unreported_detail(s.killed_for_timeout);
            (code.map(str::to_owned), Some(message), None)
        }
        _ => (Some(s.sqlstate()), Some(s.message()), s.detail()),
    };
    endings.ids.push(s.run_id);
    endings.statuses.push(ending.status().as_str().to_owned());
    endings.pids.push(s.pid);
    endings.started.push(if s.started_at != 0 {
        s.started_at
    } else {
        s.finished_at
    });
    endings.finished.push(s.finished_at);
    endings.codes.push(code);
    endings.messages.push(message);
    endings.tags.push(tag);
    endings.details.push(detail);
}

/// The harvest event that wrote `status`.
fn harvest_event(status: RunStatus) -> RunEvent {
    Ending::ALL
        .into_iter()
        .find(|e| e.status() == status)
        .map_or(RunEvent::Harvest(Ending::Crashed), RunEvent::Harvest)
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
        // Exited executors, and pooled ones that finished a run.
        let slots: Vec<(SlotRef, shmem::Slot)> = shmem::executors_of(self.db)
            .into_iter()
            .filter(|(_, s)| s.phase().awaits_harvest())
            .collect();
        if slots.is_empty() {
            return Vec::new();
        }
        self.journal.requeued.extend(requeue_reserved_of_exited(&slots));
        // An executor that exited holding no run (idle in the pool, or
        // claimed for a run that was never handed to it: an earlier life
        // of this scheduler died in between) says nothing about a run:
        // free its slot, write nothing. (A pooled one's last run is
        // already terminal.)
        let mut endings = Endings::default();
        for (_, s) in slots.iter().filter(|(_, s)| s.phase().holds_run()) {
            push_ending(&mut endings, s);
        }
        for ended in runs::record_endings(client, endings) {
            settle(client, &ended, harvest_event(ended.status));
        }
        // A pooled executor whose outcome is now written may take the next
        // run in this same pass: it is handed over only after this commits
        // (if this transaction fails, the journal puts the slot back to
        // awaiting its harvest, with its outcome).
        for (slot, s) in slots.iter().filter(|(_, s)| !s.exited()) {
            shmem::mark_harvested(*slot);
            self.journal.harvested.push((*slot, *s));
        }
        slots
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
        self.mark_started(client);
        sweep_crashed(client, self.db);
    }

    /// Say `running` for runs whose executor has started their command.
    fn mark_started(&mut self, client: &mut SpiClient) {
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
        if ids.is_empty() {
            return;
        }
        let marked = runs::mark_running(client, ids, pids, starts);
        self.shown_running.extend(marked);
    }

    /// Terminate executors that overran their timeout by the grace period
    /// (they ignored the cancel). Returns when the next one would be due.
    pub(super) fn kill_overdue(&self, now: Timestamp) -> Option<Timestamp> {
        let now_pg = time::to_pg(now);
        let mut next: Option<Timestamp> = None;
        for (r, s) in shmem::executors_of(self.db) {
            if s.phase() != ExecutorPhase::Running || s.killed_for_timeout {
                continue;
            }
            let Some(deadline) = outcome::kill_deadline_us(s.started_at, s.timeout_ms) else {
                continue;
            };
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

/// An executor that exited may still hold reserved runs; its slot is freed
/// after this pass, so they go back to the queue now. Returns them (taken
/// out of shared memory: a failed pass requeues them at its next try).
fn requeue_reserved_of_exited(slots: &[(SlotRef, shmem::Slot)]) -> Vec<i64> {
    let mut all = Vec::new();
    for (slot, _) in slots
        .iter()
        .filter(|(_, s)| s.exited() && !s.reserved().is_empty())
    {
        let ids = shmem::take_reserved(*slot);
        if !ids.is_empty() {
            requeue_reserved(&ids, false);
            all.extend(ids);
        }
    }
    all
}

/// Mark `crashed` the runs in flight that no executor of `db` holds, and
/// queue their retries.
fn sweep_crashed(client: &mut SpiClient, db: pg_sys::Oid) {
    // Runs in flight first, then who holds them: a pooled executor that
    // takes runs from the queue itself registers them before its claim
    // commits, and puts reserved runs back in the queue (locking their
    // rows) before it unregisters them, so any run this snapshot sees
    // in flight is either in the registry below or locked by its
    // executor. Each row's version (xmin) is kept: the run is marked
    // crashed only if it is still that version — not if, say, it went
    // back to the queue and another executor claimed it since.
    let in_flight = runs::in_flight(client);
    // A slot still waiting for a handover from a dead scheduler holds no
    // run (nor does one idle in the pool); an executor's reserved runs
    // are held until it starts them.
    let live: std::collections::HashSet<i64> = shmem::executors_of(db)
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
    let crashed = runs::mark_crashed(client, gone, versions);
    for mut ended in crashed {
        ended.message = Some("its executor is gone".to_owned());
        settle(client, &ended, RunEvent::CrashSweep);
    }
}
