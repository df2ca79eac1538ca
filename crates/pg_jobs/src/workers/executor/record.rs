//! Recording a run's success inside the command's own transaction (the
//! exactly-once guarantee for single-transaction commands), and keeping the
//! rows of its last statement as its result.

use super::*;
pub(super) use crate::catalog::runs::mark_succeeded;
use crate::catalog::{results, runs};

/// Inside the command's own transaction, just before it commits: mark the
/// run succeeded and keep its rows (as pg_jobs, with a pinned search_path).
pub(super) fn record_success_in_transaction(run_id: i64) {
    let truncated = crate::exec::result_capture::current().truncated;
    let tag = crate::exec::runner::last_command_tag();
    let recorded = crate::pg::bgw::as_superuser(|| mark_succeeded(run_id, truncated, &tag));
    // The row was no longer ours to finish (already recorded as crashed,
    // cancelled or timed out, and perhaps retried): committing the
    // command's effects now would make it run twice. Roll them back.
    let Some((lag_us, duration_us)) = recorded else {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("run {run_id} was already recorded as finished; its effects are rolled back"),
            "The scheduler gave up on this run (its executor looked gone); a retry, if any, does the work."
        );
    };
    crate::hooks::run_ended_at_commit(pg_jobs_core::run::RunStatus::Succeeded, lag_us, duration_us);
    store_result(run_id, false);
}

/// Write the captured rows of run `run_id` (if any) to `jobs.run_result`,
/// and, where the run's record was not written with them
/// (`flag_truncation`), that they were cut at the cap. The flag is written
/// only when set: every extra row version of a run costs throughput.
pub(super) fn store_result(run_id: i64, flag_truncation: bool) {
    let captured = crate::exec::result_capture::take();
    if captured.rows.is_empty() && !captured.truncated {
        return;
    }
    crate::pg::bgw::as_superuser(|| {
        results::store(run_id, captured.rows)?;
        if flag_truncation && captured.truncated {
            runs::flag_result_truncated(run_id)?;
        }
        Ok::<(), pgrx::spi::SpiError>(())
    })
    .unwrap_or_else(|e| error!("pg_jobs: cannot keep the result of run {run_id}: {e}"));
}
