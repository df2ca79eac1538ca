//! The home of every statement that writes a run's status (`jobs.run.status`)
//! outside the SQL API's own functions. Each statement is one transition of
//! the run model in `pg_jobs_core::run`.

use crate::catalog::plans;
use crate::pg::error::OrRaise;
use pgrx::prelude::*;

/// Runs an executor reserved and did not start go back to the queue, as if
/// never taken (same attempt, no message). `only_mine`: only rows the
/// calling executor claimed (its pid).
pub(crate) fn requeue_reserved(ids: &[i64], only_mine: bool) {
    Spi::connect_mut(|client| {
        plans::run(
            client,
            "/* run event: requeue */ UPDATE jobs.run SET status = 'queued', pid = NULL
              WHERE id OPERATOR(pg_catalog.=) ANY ($1) AND status OPERATOR(pg_catalog.=) 'starting'
                AND (NOT $2 OR pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid())",
            &[ids.to_vec().into(), only_mine.into()],
        )
        .map(|_| ())
    })
    .unwrap_or_else(|e| error!("pg_jobs: cannot requeue reserved runs: {e}"));
}

pub(crate) fn requeue(run_id: i64, why: Option<&str>) {
    Spi::connect_mut(|client| {
        client
            .update(
                "/* run event: requeue */ UPDATE jobs.run SET status = 'queued', message = $2
                  WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'starting'",
                None,
                &[run_id.into(), why.into()],
            )
            .or_raise("requeueing a run");
    });
}
