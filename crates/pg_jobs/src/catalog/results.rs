//! `jobs.run_result`: the rows a run's last statement returned, kept for
//! `jobs.result` (one row per run, the rows as an array of JSON objects).

use crate::catalog::{plans, row};
use crate::pg::error::OrRaise;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiResult};

/// Keep `rows` (JSON texts) as run `run_id`'s result, replacing any kept before.
pub(crate) fn store(run_id: i64, rows: Vec<String>) -> SpiResult<()> {
    Spi::connect_mut(|c| {
        plans::run(
            c,
            "INSERT INTO jobs.run_result (run_id, rows) VALUES ($1, $2::text[]::jsonb[])
                   ON CONFLICT (run_id) DO UPDATE SET rows = EXCLUDED.rows",
            &[run_id.into(), rows.into()],
        )
        .map(|_| ())
    })
}

/// The kept rows of run `run_id`, in order (none if nothing was kept).
pub(crate) fn rows(run_id: i64) -> Vec<pgrx::JsonB> {
    Spi::connect(|c| {
        c.select(
            "SELECT u.r FROM jobs.run_result, pg_catalog.unnest(rows) WITH ORDINALITY AS u(r, n)
                  WHERE run_id OPERATOR(pg_catalog.=) $1 ORDER BY u.n",
            None,
            &[run_id.into()],
        )
        .map(|t| t.filter_map(|row| row::get_opt::<pgrx::JsonB>(&row, 1)).collect())
        .or_raise("reading a run's result")
    })
}

/// Delete the rows of runs deleted by hand (a superuser clearing old
/// history with `DELETE FROM jobs.run`): those below the oldest run left.
pub(crate) fn purge_orphans(client: &mut SpiClient) {
    plans::run(
        client,
        "DELETE FROM jobs.run_result
          WHERE run_id OPERATOR(pg_catalog.<) COALESCE((SELECT pg_catalog.min(id) FROM jobs.run), 9223372036854775807)",
        &[],
    )
    .or_raise("purging rows of deleted runs");
}
