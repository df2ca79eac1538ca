//! What the SQL API reads of a run and how it cancels one, what REASSIGN
//! OWNED and DROP OWNED do to a role's queued runs, and the scheduler's
//! housekeeping of the history: purging old runs (with their kept rows)
//! and vacuuming the queue.

use crate::exec::runner::{self, Outcome};
use crate::pg::error::OrRaise;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiResult};

/// The status of run `run_id`, as the caller sees it: `None` for a run of
/// a role the caller does not act for (`jobs._acts_for`). The ownership rule is stated here
/// too, not left to row-level security alone: a BYPASSRLS role that is not
/// superuser would otherwise see every role's runs, and `jobs.cancel`,
/// `jobs.result` and `jobs.wait` act on what this says (issue 13, finding
/// 7). Superusers act for every role.
pub(crate) fn status(run_id: i64) -> Option<String> {
    one_status(
        &format!(
            "SELECT status FROM jobs.run WHERE id OPERATOR(pg_catalog.=) $1 AND {}",
            crate::catalog::schema_version::acts_for_sql("owner")
        ),
        run_id,
    )
}

/// The one status `sql` reads for `run_id`; `None` if there is no such row
/// (or none the caller may see). Any other error raises.
fn one_status(sql: &str, run_id: i64) -> Option<String> {
    match Spi::get_one_with_args::<String>(sql, &[run_id.into()]) {
        Ok(status) => status,
        Err(pgrx::spi::SpiError::InvalidPosition) => None,
        Err(e) => Err::<Option<String>, _>(e).or_raise("reading a run's status"),
    }
}

/// [`status`], with the run's row locked (`FOR UPDATE`) until the end of
/// the (sub)transaction.
pub(crate) fn lock_status(run_id: i64) -> Option<String> {
    one_status(
        "SELECT status FROM jobs.run WHERE id OPERATOR(pg_catalog.=) $1 FOR UPDATE",
        run_id,
    )
}

/// Mark run `run_id` cancelled, if it has not started (`jobs.cancel`).
pub(crate) fn mark_cancelled(run_id: i64) -> SpiResult<()> {
    Spi::run_with_args(
        "/* run event: cancel */ UPDATE jobs.run SET status = 'cancelled', finished_at = pg_catalog.clock_timestamp(),
                    sqlstate = '57014', message = 'cancelled by jobs.cancel before it started'
              WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) ANY ('{queued,starting,waiting}')",
        &[run_id.into()],
    )
}

/// Give role `to` the queued runs of role `from` (REASSIGN OWNED): they
/// will run as `to`, as the jobs they belong to now do. Runs an executor
/// has taken (starting, running) go on as `from`; a queued run being
/// claimed right now is waited for and, taken, left alone. Returns how many.
pub(crate) fn reassign_queued(from: pg_sys::Oid, to: pg_sys::Oid) -> usize {
    Spi::connect_mut(|c| {
        c.update(
            "UPDATE jobs.run SET owner = $2::pg_catalog.regrole
              WHERE owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1
                AND status OPERATOR(pg_catalog.=) ANY ('{queued,waiting}')
          RETURNING id",
            None,
            &[from.into(), to.into()],
        )
        .or_raise("reassigning queued runs")
        .count()
    })
}

/// Cancel the queued (and waiting) runs of role `role` (DROP OWNED BY it): they never
/// start. Runs an executor has taken already (starting, running) are left
/// to finish, as PostgreSQL leaves a dropped role's sessions running.
/// Returns how many.
pub(crate) fn cancel_queued_of(role: pg_sys::Oid) -> usize {
    cancel_unstarted(
        "q.owner::pg_catalog.oid OPERATOR(pg_catalog.=) $1",
        role.into(),
        "cancelled by DROP OWNED before it started",
    )
}

/// Cancel the queued and waiting runs of named queue `name`
/// (`jobs.drop_queue(force => true)`), as [`cancel_queued_of`] does a role's.
pub(crate) fn cancel_unstarted_in_queue(name: &str) -> usize {
    cancel_unstarted(
        "q.queue OPERATOR(pg_catalog.=) $1",
        name.into(),
        "cancelled by jobs.drop_queue before it started",
    )
}

/// Cancel the runs that have not started (queued, waiting) of those
/// `which` (a condition on `q`, with `$1` = `value`) selects, as
/// `jobs.cancel` cancels a run that has not started, with `message`. They
/// are picked and locked first (a run being claimed right now is waited
/// for and, taken, left alone). Returns how many.
fn cancel_unstarted(which: &str, value: pgrx::datum::DatumWithOid, message: &str) -> usize {
    Spi::connect_mut(|c| {
        // Spliced by replace, not format!: the statement's text keeps its
        // guard verbatim for `crates/itest/tests/run_model.rs`.
        c.update(
            &"/* run event: cancel */ UPDATE jobs.run SET status = 'cancelled', finished_at = pg_catalog.clock_timestamp(),
                    sqlstate = '57014', message = $2
              WHERE id OPERATOR(pg_catalog.=) ANY (ARRAY(
                      SELECT q.id FROM jobs.run q
                       WHERE {which}
                         AND q.status OPERATOR(pg_catalog.=) ANY ('{queued,waiting}')
                         FOR UPDATE))
                AND status OPERATOR(pg_catalog.=) ANY ('{queued,starting,waiting}')
          RETURNING id"
                .replace("{which}", which),
            None,
            &[value, message.into()],
        )
        .or_raise("cancelling runs that have not started")
        .count()
    })
}

/// Delete finished runs that ended more than `retention_s` seconds ago, in
/// a bounded batch, with their kept rows (no foreign key does that since 0.3.0).
pub(crate) fn purge_older_than(client: &mut SpiClient, retention_s: i64) {
    client
        .update(
            "WITH gone AS (
               DELETE FROM jobs.run WHERE id OPERATOR(pg_catalog.=) ANY (ARRAY(
                 SELECT id FROM jobs.run
                  WHERE finished_at < pg_catalog.now() - $1 * INTERVAL '1 second'
                    AND status OPERATOR(pg_catalog.<>) ALL ('{queued,starting,running,waiting}')
                  LIMIT 10000))
               RETURNING id)
             DELETE FROM jobs.run_result WHERE run_id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT id FROM gone))",
            None,
            &[retention_s.into()],
        )
        .or_raise("purging old runs");
}

/// Delete each job's finished runs beyond its latest `per_job`, in a
/// bounded batch, with their kept rows.
pub(crate) fn purge_beyond_per_job(client: &mut SpiClient, per_job: i64) {
    client
        .update(
            "WITH gone AS (
                   DELETE FROM jobs.run WHERE id OPERATOR(pg_catalog.=) ANY (ARRAY(
                     SELECT id FROM (
                       SELECT id, pg_catalog.row_number() OVER (PARTITION BY job_id ORDER BY id DESC) AS n
                         FROM jobs.run
                        WHERE job_id IS NOT NULL AND status OPERATOR(pg_catalog.<>) ALL ('{queued,starting,running,waiting}')) k
                      WHERE k.n OPERATOR(pg_catalog.>) $1
                      LIMIT 10000))
                   RETURNING id)
                 DELETE FROM jobs.run_result WHERE run_id OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT id FROM gone))",
            None,
            &[per_job.into()],
        )
        .or_raise("purging runs beyond the per-job bound");
}

/// Vacuum the run table, as psql would run it: outside a transaction, and
/// whatever `statement_timeout` the server or database sets (pg_jobs' own
/// statement). Returns why it failed, if it did.
pub(crate) fn vacuum() -> Option<String> {
    match runner::run(
        "VACUUM (SKIP_LOCKED) jobs.run",
        None,
        runner::StatementTimeout::NotArmed,
    ) {
        Outcome::Failed { message, .. } => Some(message),
        _ => None,
    }
}

/// Delete run `run_id` of a job, with its kept rows, if it is finished and
/// owned by `owner` (`None`: any owner); whether it was deleted. What a
/// `DELETE FROM cron.job_run_details` does to a row: a run not finished
/// yet stays (its executor still has to record it).
pub(crate) fn delete_finished(run_id: i64, owner: Option<pg_sys::Oid>) -> SpiResult<bool> {
    let deleted = Spi::connect_mut(|c| {
        c.update(
            "DELETE FROM jobs.run WHERE id OPERATOR(pg_catalog.=) $1 AND job_id IS NOT NULL
                AND ($2::pg_catalog.oid IS NULL OR owner OPERATOR(pg_catalog.=) $2::pg_catalog.regrole)
                AND status OPERATOR(pg_catalog.<>) ALL ('{queued,starting,running,waiting}')
             RETURNING id",
            None,
            &[run_id.into(), owner.into()],
        )
        .map(|t| !t.is_empty())
    })?;
    if deleted {
        Spi::run_with_args(
            "DELETE FROM jobs.run_result WHERE run_id OPERATOR(pg_catalog.=) $1",
            &[run_id.into()],
        )?;
    }
    Ok(deleted)
}
