//! Housekeeping between passes: purge old history, vacuum the run queue
//! after a burst of claims, and when the next retry is due.

use super::*;
pub(super) use crate::catalog::runs::next_not_before;
use crate::catalog::{results, runs};

/// Purge history at most this often (only in passes that finished runs).
pub(super) const PURGE_EVERY: Duration = Duration::from_secs(10);

/// Runs taken by executors from the queue between two vacuums of it.
pub(super) const VACUUM_EVERY_CLAIMS: u64 = 5_000;

/// Delete finished runs older than `pg_jobs.history_retention`, and beyond
/// `pg_jobs.history_max_runs_per_job` per job, in bounded batches, with
/// their kept rows (no foreign key does that since 0.3.0).
pub(super) fn purge_history(client: &mut SpiClient) {
    let retention_s = gucs::history_retention_s();
    let per_job = gucs::history_max_runs_per_job();
    runs::purge_older_than(client, retention_s as i64);
    results::purge_orphans(client);
    if per_job > 0 {
        runs::purge_beyond_per_job(client, per_job as i64);
    }
}

impl Scheduler {
    /// Pooled executors that take runs from the queue themselves leave a
    /// dead row version and index entry per run at the head of the queue,
    /// which every claim and pass then steps over until autovacuum (a
    /// minute or more away) cleans up. After every VACUUM_EVERY_CLAIMS of
    /// them, vacuum the run table here (as psql would run it: outside a
    /// transaction). Measured on a 20,000-run burst: see the README.
    pub(super) fn vacuum_queue_after_a_burst(&mut self) {
        let claims = shmem::claims(self.db);
        if claims.saturating_sub(self.vacuumed_at_claims) < VACUUM_EVERY_CLAIMS {
            return;
        }
        self.vacuumed_at_claims = claims;
        if let Some(message) = runs::vacuum() {
            log!("pg_jobs scheduler: vacuuming the run queue failed: {message}");
        }
    }
}
