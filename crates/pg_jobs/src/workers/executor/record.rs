//! Recording a run's success inside the command's own transaction (the
//! exactly-once guarantee for single-transaction commands), and keeping the
//! rows of its last statement as its result.

use super::*;

/// Inside the command's own transaction, just before it commits: mark the
/// run succeeded and keep its rows (as pg_jobs, with a pinned search_path).
pub(super) fn record_success_in_transaction(run_id: i64) {
    let truncated = crate::exec::result_capture::current().truncated;
    let recorded = crate::pg::bgw::as_superuser(|| mark_succeeded(run_id, truncated));
    // The row was no longer ours to finish (already recorded as crashed,
    // cancelled or timed out, and perhaps retried): committing the
    // command's effects now would make it run twice. Roll them back.
    if recorded == 0 {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!("run {run_id} was already recorded as finished; its effects are rolled back"),
            "The scheduler gave up on this run (its executor looked gone); a retry, if any, does the work."
        );
    }
    store_result(run_id, false);
}

/// The in-transaction record itself: `succeeded`, if the run is still
/// ours to finish. Returns how many rows it updated (0 or 1).
///
/// Read with the latest snapshot, not the command's: a command running at
/// REPEATABLE READ or SERIALIZABLE (its role's default) would otherwise
/// fail with a serialization error whenever the scheduler showed the run
/// `running` after the command's snapshot was taken. Raw SPI, because
/// choosing the snapshot takes `SPI_execute_snapshot`; the plan is kept.
pub(super) fn mark_succeeded(run_id: i64, truncated: bool) -> u64 {
    thread_local! {
        static PLAN: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }
    const SQL: &std::ffi::CStr =
        c"/* run event: record */ UPDATE jobs.run SET status = 'succeeded', finished_at = pg_catalog.clock_timestamp(),
                 pid = pg_catalog.pg_backend_pid(), result_truncated = $2,
                 started_at = COALESCE(started_at, pg_catalog.statement_timestamp())
           WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) ANY ('{starting,running}')";
    // SAFETY: called inside the run's transaction (just before its commit,
    // with an active snapshot), where SPI may connect. PLAN is null or the
    // plan SPI_keepplan moved to a long-lived context in this same process
    // (never freed), so it stays valid across transactions; `values` and
    // `nulls` have the 2 entries the plan takes and outlive the call.
    // XactIsoLevel is a plain global, restored right after the statement.
    // An ERROR (error! or inside SPI) unwinds; the abort that follows
    // ends the SPI connection.
    unsafe {
        if pg_sys::SPI_connect() != pg_sys::SPI_OK_CONNECT as i32 {
            error!("pg_jobs: cannot record run {run_id}: SPI_connect failed");
        }
        let mut plan = PLAN.with(|p| p.get()) as pg_sys::SPIPlanPtr;
        if plan.is_null() {
            let mut types = [pg_sys::INT8OID, pg_sys::BOOLOID];
            plan = pg_sys::SPI_prepare(SQL.as_ptr(), 2, types.as_mut_ptr());
            if plan.is_null() || pg_sys::SPI_keepplan(plan) != 0 {
                error!("pg_jobs: cannot record run {run_id}: cannot prepare the record");
            }
            PLAN.with(|p| p.set(plan as usize));
        }
        let mut values = [pg_sys::Datum::from(run_id), pg_sys::Datum::from(truncated)];
        let nulls = [b' ' as std::ffi::c_char; 2];
        // And as READ COMMITTED would, should the scheduler's update of the
        // row be in progress (not in the latest snapshot yet): wait for it
        // and re-check the row, instead of a serialization failure. Only
        // for this statement; the command's own level is restored at once
        // (after an ERROR, the next transaction starts afresh anyway).
        let level = pg_sys::XactIsoLevel;
        pg_sys::XactIsoLevel = pg_sys::XACT_READ_COMMITTED as i32;
        let rc = pg_sys::SPI_execute_snapshot(
            plan,
            values.as_mut_ptr(),
            nulls.as_ptr(),
            pg_sys::GetLatestSnapshot(),
            std::ptr::null_mut(),
            false,
            true,
            0,
        );
        pg_sys::XactIsoLevel = level;
        if rc != pg_sys::SPI_OK_UPDATE as i32 {
            error!("pg_jobs: cannot record run {run_id}: SPI returned {rc}");
        }
        let n = pg_sys::SPI_processed;
        pg_sys::SPI_finish();
        n
    }
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
        Spi::connect_mut(|c| {
            crate::catalog::plans::run(
                c,
                "INSERT INTO jobs.run_result (run_id, rows) VALUES ($1, $2::text[]::jsonb[])
                   ON CONFLICT (run_id) DO UPDATE SET rows = EXCLUDED.rows",
                &[run_id.into(), captured.rows.into()],
            )
            .map(|_| ())
        })?;
        if flag_truncation && captured.truncated {
            Spi::run_with_args(
                "UPDATE jobs.run SET result_truncated = true WHERE id OPERATOR(pg_catalog.=) $1",
                &[run_id.into()],
            )?;
        }
        Ok::<(), pgrx::spi::SpiError>(())
    })
    .unwrap_or_else(|e| error!("pg_jobs: cannot keep the result of run {run_id}: {e}"));
}
