//! Housekeeping between passes: purge old history, vacuum the run queue
//! after a burst of claims, and when the next retry is due.

use super::*;
use crate::catalog::row;
use crate::pg::error::OrRaise;

/// Purge history at most this often (only in passes that finished runs).
pub(super) const PURGE_EVERY: Duration = Duration::from_secs(10);

/// Runs taken by executors from the queue between two vacuums of it.
pub(super) const VACUUM_EVERY_CLAIMS: u64 = 5_000;

/// The earliest moment a queued run's backoff ends.
pub(super) fn next_not_before(client: &mut SpiClient) -> Option<Timestamp> {
    plans::run(
        client,
        // Future ones only: a run already due waits for an executor (whose
        // exit or return to the pool wakes us), not for the clock; a past
        // time here would make the scheduler spin.
        "SELECT (EXTRACT(EPOCH FROM min(not_before)) * 1000000)::int8 FROM jobs.run
              WHERE status OPERATOR(pg_catalog.=) 'queued' AND not_before IS NOT NULL
                AND not_before OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp()",
        &[],
    )
    .ok()
    .and_then(|t| t.into_iter().next().and_then(|r| row::get_opt::<i64>(&r, 1)))
    .and_then(|us| Timestamp::from_microsecond(us).ok())
}

/// Delete finished runs older than `pg_jobs.history_retention`, and beyond
/// `pg_jobs.history_max_runs_per_job` per job, in bounded batches, with
/// their kept rows (no foreign key does that since 0.3.0).
pub(super) fn purge_history(client: &mut SpiClient) {
    let retention_s = gucs::history_retention_s();
    let per_job = gucs::history_max_runs_per_job();
    client
        .update(
            "WITH gone AS (
               DELETE FROM jobs.run WHERE id OPERATOR(pg_catalog.=) ANY (ARRAY(
                 SELECT id FROM jobs.run
                  WHERE finished_at < pg_catalog.now() - $1 * INTERVAL '1 second'
                    AND status OPERATOR(pg_catalog.<>) ALL ('{queued,starting,running}')
                  LIMIT 10000))
               RETURNING id)
             DELETE FROM jobs.run_result WHERE run_id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT id FROM gone))",
            None,
            &[(retention_s as i64).into()],
        )
        .or_raise("purging old runs");
    // Rows of runs deleted by hand (a superuser clearing old history with
    // DELETE FROM jobs.run): those below the oldest run left.
    plans::run(
        client,
        "DELETE FROM jobs.run_result
          WHERE run_id OPERATOR(pg_catalog.<) COALESCE((SELECT pg_catalog.min(id) FROM jobs.run), 9223372036854775807)",
        &[],
    )
    .or_raise("purging rows of deleted runs");
    if per_job > 0 {
        client
            .update(
                "WITH gone AS (
                   DELETE FROM jobs.run WHERE id OPERATOR(pg_catalog.=) ANY (ARRAY(
                     SELECT id FROM (
                       SELECT id, pg_catalog.row_number() OVER (PARTITION BY job_id ORDER BY id DESC) AS n
                         FROM jobs.run
                        WHERE job_id IS NOT NULL AND status OPERATOR(pg_catalog.<>) ALL ('{queued,starting,running}')) k
                      WHERE k.n OPERATOR(pg_catalog.>) $1
                      LIMIT 10000))
                   RETURNING id)
                 DELETE FROM jobs.run_result WHERE run_id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT id FROM gone))",
                None,
                &[(per_job as i64).into()],
            )
            .or_raise("purging runs beyond the per-job bound");
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
        if let crate::exec::runner::Outcome::Failed { message, .. } =
            crate::exec::runner::run("VACUUM (SKIP_LOCKED) jobs.run")
        {
            log!("pg_jobs scheduler: vacuuming the run queue failed: {message}");
        }
    }
}
