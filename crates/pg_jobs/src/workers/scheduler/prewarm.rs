//! Starting executors ahead of an instant that jobs fall due at, when the
//! pool would be cold by then.

use super::*;

impl Scheduler {
    /// When to start executors ahead of due instant `t` (the run model's
    /// `schedule::prewarm_at`, given whether an idle executor is in
    /// the pool now). `None`: not needed, or done.
    pub(super) fn prewarm_at(&self, t: Timestamp, now: Timestamp) -> Option<Timestamp> {
        let pool_warm = shmem::executors_of(self.db)
            .iter()
            .any(|(_, s)| s.phase() == ExecutorPhase::Pooled);
        pg_jobs_core::schedule::prewarm_at(
            t,
            now,
            self.prewarmed_for,
            gucs::executor_idle_timeout_ms() as i64,
            pool_warm,
        )
    }

    /// Start idle executors for the jobs due at `t` (as many as run as each
    /// role in each database, up to the free executor capacity and what
    /// the role's cap, `pg_jobs.max_runs_per_role`, still lets it run: a
    /// role at its cap would only hold worker slots), so they are
    /// connected and pooled when `t` comes. In a transaction of its own,
    /// after the pass's dispatch (the owner's LOGIN and CONNECT, and that
    /// the database still exists, are checked as for a run).
    pub(super) fn prewarm(&mut self, t: Timestamp) {
        self.prewarmed_for = Some(t);
        let (busy_by_role, _) = shmem::executors_busy_by_role(self.db);
        let mut free = gucs::max_executors().saturating_sub(busy_by_role.values().sum());
        if free == 0 {
            return;
        }
        let mut want: HashMap<(u32, u32), usize> = HashMap::new();
        for Reverse((due, id)) in self.heap.iter() {
            if *due != t {
                continue;
            }
            if let Some(job) = self
                .jobs
                .get(id)
                .filter(|j| j.next_due == Some(t) && j.datid != 0)
            {
                *want.entry((job.datid, job.owner)).or_default() += 1;
            }
        }
        for ((db, role), n) in want {
            let (db_oid, role_oid) = (pg_sys::Oid::from(db), pg_sys::Oid::from(role));
            if free == 0 || crate::catalog::acl::start_refusal(role_oid, db_oid).is_some() {
                continue;
            }
            let have = shmem::pooled_or_warming(self.db, db, role);
            let going = busy_by_role.get(&role).copied().unwrap_or(0);
            let room = gucs::max_runs_per_role().saturating_sub(going);
            for _ in 0..n.min(room).saturating_sub(have).min(free) {
                let reservation = Reservation {
                    db,
                    home_db: self.db.to_u32(),
                    role,
                    job_id: 0,
                    run_id: 0,
                    timeout_ms: 0,
                    queue_id: 0,
                };
                let Some(slot) = shmem::reserve(Kind::Executor, reservation) else {
                    return;
                };
                let w = DynamicWorker {
                    bgw_type: "pg_jobs executor",
                    bgw_name: "pg_jobs executor (started ahead of due jobs)",
                    function: "pg_jobs_executor_main",
                    start_time: BgWorkerStartTime::RecoveryFinished,
                    slot,
                };
                let Some(handle) = bgw::start_dynamic(&w) else {
                    shmem::release(slot);
                    return; // no free background worker slot: runs start cold
                };
                self.launched.insert(slot.index, Launched { slot, handle });
                free -= 1;
            }
        }
    }
}
