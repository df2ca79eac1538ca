//! Runs that wait for others (`jobs.submit(…, depends_on, run_if)`): their
//! creation, which of them wait for given runs, and the scheduler's
//! decision for those whose parents have all ended (the run model's
//! `await`, `release` and `unmet`; the decision itself is
//! `pg_jobs_core::run::depends`).

use super::Submitted;
use crate::catalog::{plans, row};
use crate::pg::error::OrRaise;
use pg_jobs_core::run::depends::RunIf;
use pg_jobs_core::run::RunStatus;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiResult};

/// Queue `run` waiting for the runs `depends_on`, with its values
/// (`args`, 0.4.0 like `depends_on`); returns its id.
pub(crate) fn submit_waiting(run: &Submitted, depends_on: &[i64], run_if: RunIf) -> SpiResult<Option<i64>> {
    Spi::get_one_with_args::<i64>(
        "/* run event: await */ INSERT INTO jobs.run (owner, command, database, not_before, timeout, max_attempts, priority, datid,
                                                      status, depends_on, run_if, args, queue, concurrency_key)
             VALUES ($1::pg_catalog.regrole, $2, $3, $4, NULLIF($5, 0) * INTERVAL '1 millisecond', $6, $7, $8,
                     'waiting', $9, $10, $11, $12, $13)
             RETURNING id",
        &run.params_with(vec![
                depends_on.to_vec().into(),
                run_if.as_str().into(),
                run.args.cloned().into(),
                run.queue.into(),
                run.concurrency_key.into(),
            ]),
    )
}

/// Which of `ids` are runs the caller sees and acts for (what a run may
/// depend on: no role learns of, or waits on, another's runs).
pub(crate) fn visible(ids: &[i64]) -> Vec<i64> {
    Spi::connect(|c| {
        c.select(
            "SELECT id FROM jobs.run WHERE id OPERATOR(pg_catalog.=) ANY ($1) AND jobs._acts_for(owner::pg_catalog.oid)",
            None,
            &[ids.to_vec().into()],
        )
        .map(|t| t.into_iter().filter_map(|r| row::get_opt::<i64>(&r, 1)).collect())
    })
    .or_raise("looking up the runs depends_on lists")
}

/// The waiting runs that wait for any of `ended` (the GIN index over
/// waiting runs' `depends_on`).
pub(crate) fn waiting_on(client: &mut SpiClient, ended: &[i64]) -> Vec<i64> {
    plans::run(
        client,
        "SELECT id FROM jobs.run WHERE status OPERATOR(pg_catalog.=) 'waiting'
            AND depends_on OPERATOR(pg_catalog.&&) $1::int8[]",
        &[ended.to_vec().into()],
    )
    .or_raise("finding the runs that wait for runs that ended")
    .filter_map(|r| row::get_opt::<i64>(&r, 1))
    .collect()
}

/// Whether any run is waiting (a probe of the partial index).
pub(crate) fn any_waiting(client: &mut SpiClient) -> bool {
    plans::run(
        client,
        "SELECT EXISTS (SELECT FROM jobs.run WHERE status OPERATOR(pg_catalog.=) 'waiting')",
        &[],
    )
    .or_raise("looking for waiting runs")
    .next()
    .and_then(|r| row::get_opt::<bool>(&r, 1))
    .unwrap_or(true)
}

/// Up to `limit` waiting runs, oldest first.
pub(crate) fn all_waiting(client: &mut SpiClient, limit: i64) -> Vec<i64> {
    plans::run(
        client,
        "SELECT id FROM jobs.run WHERE status OPERATOR(pg_catalog.=) 'waiting' ORDER BY id LIMIT $1",
        &[limit.into()],
    )
    .or_raise("reading the waiting runs")
    .filter_map(|r| row::get_opt::<i64>(&r, 1))
    .collect()
}

/// A waiting run, locked, with how each of its parents stands.
pub(crate) struct Waiting {
    pub(crate) id: i64,
    pub(crate) run_if: RunIf,
    /// In `depends_on` order; `None`: the row is gone.
    pub(crate) parents: Vec<(i64, Option<RunStatus>)>,
}

/// Lock those of `ids` still waiting (skipping any another transaction
/// holds: `jobs.cancel`, which decides them itself) and read their
/// parents' statuses.
pub(crate) fn lock_with_parents(client: &mut SpiClient, ids: &[i64]) -> Vec<Waiting> {
    plans::run(
        client,
        "/* locks for run events: release, unmet */
         WITH w AS (SELECT id, run_if, depends_on FROM jobs.run
                     WHERE id OPERATOR(pg_catalog.=) ANY ($1) AND status OPERATOR(pg_catalog.=) 'waiting'
                     FOR UPDATE SKIP LOCKED)
         SELECT w.id, w.run_if, d.ids, d.statuses
           FROM w CROSS JOIN LATERAL (
                  SELECT pg_catalog.array_agg(p.id ORDER BY p.n) AS ids,
                         pg_catalog.array_agg(r.status ORDER BY p.n) AS statuses
                    FROM pg_catalog.unnest(w.depends_on) WITH ORDINALITY AS p(id, n)
                    LEFT JOIN jobs.run r ON r.id OPERATOR(pg_catalog.=) p.id) d",
        &[ids.to_vec().into()],
    )
    .or_raise("reading waiting runs and their parents")
    .map(|r| {
        let run_if: String = row::get_req(&r, 2);
        let parent_ids: Vec<Option<i64>> = row::get_opt(&r, 3).unwrap_or_default();
        let statuses: Vec<Option<String>> = row::get_opt(&r, 4).unwrap_or_default();
        Waiting {
            id: row::get_req(&r, 1),
            // Written only by jobs.submit, checked there.
            run_if: run_if.parse().unwrap_or(RunIf::Succeeded),
            parents: parent_ids
                .into_iter()
                .zip(statuses)
                .filter_map(|(id, s)| Some((id?, s.and_then(|s| s.parse().ok()))))
                .collect(),
        }
    })
    .collect()
}

/// Queue the waiting runs `ids` (locked by [`lock_with_parents`]).
pub(crate) fn release(client: &mut SpiClient, ids: Vec<i64>) {
    plans::run(
        client,
        "/* run event: release */ UPDATE jobs.run SET status = 'queued'
          WHERE id OPERATOR(pg_catalog.=) ANY ($1) AND status OPERATOR(pg_catalog.=) 'waiting'",
        &[ids.into()],
    )
    .or_raise("queueing runs whose dependencies ended");
}

/// End the waiting runs `ids` `skipped`, each with its message (locked by
/// [`lock_with_parents`]); returns those it ended.
pub(crate) fn unmet(client: &mut SpiClient, ids: Vec<i64>, messages: Vec<String>) -> Vec<i64> {
    plans::run(
        client,
        "/* run event: unmet */ UPDATE jobs.run r SET status = 'skipped', finished_at = pg_catalog.clock_timestamp(),
                message = u.message
           FROM ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($2::text[])) AS u(id, message)
          WHERE r.id OPERATOR(pg_catalog.=) u.id AND r.status OPERATOR(pg_catalog.=) 'waiting'
      RETURNING r.id",
        &[ids.into(), messages.into()],
    )
    .or_raise("skipping runs whose dependencies decided against them")
    .filter_map(|r| row::get_opt::<i64>(&r, 1))
    .collect()
}

/// Run `retried` failed and run `retry` is its next attempt: the runs
/// waiting for the one wait for the other (a dependant follows the last
/// attempt).
pub(crate) fn follow_retry(client: &mut SpiClient, retried: i64, retry: i64) {
    plans::run(
        client,
        "UPDATE jobs.run SET depends_on = pg_catalog.array_replace(depends_on, $1, $2)
          WHERE status OPERATOR(pg_catalog.=) 'waiting' AND depends_on OPERATOR(pg_catalog.@>) ARRAY[$1]",
        &[retried.into(), retry.into()],
    )
    .or_raise("pointing waiting runs at a retry");
}
