//! Runs starting and ending: shown `running` once their executor started,
//! their outcomes written by the scheduler's harvest, marked `crashed` by
//! its sweep, and recorded `succeeded` inside the command's own transaction.

use crate::catalog::{plans, row};
use crate::pg::error::OrRaise;
use pg_jobs_core::run::RunStatus;
use pgrx::prelude::*;
use pgrx::spi::{SpiClient, SpiHeapTupleData};

/// What the statements that end runs (harvest, crash sweep) return about
/// each row they made terminal: what the log line and the retry decision
/// need. The backoff is capped at the longest retry delay there is (so the
/// conversion cannot overflow whatever interval the row holds).
macro_rules! ended_columns {
    () => {
        concat!(
            "r.id, r.status, r.attempt, r.max_attempts, r.job_id, r.message,
         (LEAST(EXTRACT(EPOCH FROM r.retry_backoff), 3600) * 1000)::int8, r.database::text, r.sqlstate, ",
            lag_and_duration_us!()
        )
    };
}

/// A run's start lag (due → start) and duration in microseconds, NULL if
/// it never started (`jobs.metrics`). Due is its `start_at`, scheduled
/// time or retry time, else when it was submitted (for a run released by
/// its dependencies: the wait for them counts).
macro_rules! lag_and_duration_us {
    () => {
        "(EXTRACT(EPOCH FROM r.started_at OPERATOR(pg_catalog.-) COALESCE(r.not_before, r.scheduled_for, r.submitted_at))
              OPERATOR(pg_catalog.*) 1000000)::int8,
         (EXTRACT(EPOCH FROM r.finished_at OPERATOR(pg_catalog.-) r.started_at) OPERATOR(pg_catalog.*) 1000000)::int8"
    };
}

/// A run a harvest or the crash sweep made terminal (a row of `ended_columns!()`).
pub(crate) struct Ended {
    pub(crate) id: i64,
    pub(crate) status: RunStatus,
    pub(crate) attempt: i32,
    pub(crate) max_attempts: i32,
    pub(crate) job_id: Option<i64>,
    pub(crate) message: Option<String>,
    pub(crate) backoff_ms: i64,
    /// The database it ran in, and its SQLSTATE (for its notification).
    pub(crate) database: String,
    pub(crate) sqlstate: Option<String>,
    /// Due → start and start → end in microseconds, if it started.
    pub(crate) lag_us: Option<i64>,
    pub(crate) duration_us: Option<i64>,
}

impl Ended {
    fn from_row(r: &SpiHeapTupleData) -> Ended {
        let status: String = row::get_req(r, 2);
        Ended {
            id: row::get_req(r, 1),
            status: status.parse().or_raise("reading an ended run's status"),
            attempt: row::get_req(r, 3),
            max_attempts: row::get_req(r, 4),
            job_id: row::get_opt(r, 5),
            message: row::get_opt(r, 6),
            backoff_ms: row::get_req(r, 7),
            database: row::get_req(r, 8),
            sqlstate: row::get_opt(r, 9),
            lag_us: row::get_opt(r, 10),
            duration_us: row::get_opt(r, 11),
        }
    }
}

/// Say `running` for runs `ids` (still `starting`), with their executors'
/// pids and start times (microseconds since 2000-01-01, PostgreSQL's
/// epoch). Returns the runs it changed.
pub(crate) fn mark_running(
    client: &mut SpiClient,
    ids: Vec<i64>,
    pids: Vec<i32>,
    starts: Vec<i64>,
) -> Vec<i64> {
    plans::run(
        client,
        "/* run event: start */ UPDATE jobs.run r SET status = 'running', pid = u.pid,
                        started_at = TIMESTAMPTZ '2000-01-01 00:00:00+00' + u.started * INTERVAL '1 microsecond'
                   FROM ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($2::int4[]),
                                   pg_catalog.unnest($3::int8[])) AS u(id, pid, started)
                  WHERE r.id OPERATOR(pg_catalog.=) u.id AND r.status OPERATOR(pg_catalog.=) 'starting'
              RETURNING r.id",
        &[ids.into(), pids.into(), starts.into()],
    )
    .or_raise("marking runs running")
    .filter_map(|r| row::get_opt::<i64>(&r, 1))
    .collect()
}

/// The columns of the harvest's one UPDATE, a row per run whose executor
/// reported (or is gone). Times in microseconds since 2000-01-01.
#[derive(Default)]
pub(crate) struct Endings {
    pub(crate) ids: Vec<i64>,
    pub(crate) statuses: Vec<String>,
    pub(crate) pids: Vec<i32>,
    pub(crate) started: Vec<i64>,
    pub(crate) finished: Vec<i64>,
    pub(crate) codes: Vec<Option<String>>,
    pub(crate) messages: Vec<Option<String>>,
    /// The command tag of a success (`INSERT 0 1`), else none.
    pub(crate) tags: Vec<Option<String>>,
    /// A failure's error DETAIL, if it had one.
    pub(crate) details: Vec<Option<String>>,
}

/// Write the harvest's `endings`, in one statement (only runs still in
/// flight); returns the rows it made terminal.
pub(crate) fn record_endings(client: &mut SpiClient, endings: Endings) -> Vec<Ended> {
    // A database not yet updated to 0.4.0 has no command_tag or detail column.
    let sql = if crate::catalog::schema_version::records_error_details() {
        concat!(
            "/* run event: harvest(*) */ UPDATE jobs.run r
                    SET status = u.status, pid = u.pid,
                        started_at = TIMESTAMPTZ '2000-01-01 00:00:00+00' + u.started * INTERVAL '1 microsecond',
                        finished_at = TIMESTAMPTZ '2000-01-01 00:00:00+00' + u.finished * INTERVAL '1 microsecond',
                        sqlstate = u.code, message = u.message, command_tag = u.tag, detail = u.detail
                   FROM ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($2::text[]),
                                   pg_catalog.unnest($3::int4[]), pg_catalog.unnest($4::int8[]),
                                   pg_catalog.unnest($5::int8[]), pg_catalog.unnest($6::text[]),
                                   pg_catalog.unnest($7::text[]), pg_catalog.unnest($8::text[]),
                                   pg_catalog.unnest($9::text[]))
                        AS u(id, status, pid, started, finished, code, message, tag, detail)
                  WHERE r.id OPERATOR(pg_catalog.=) u.id AND r.status OPERATOR(pg_catalog.=) ANY ('{starting,running}')
              RETURNING ",
            ended_columns!()
        )
    } else if crate::catalog::schema_version::records_command_tags() {
        concat!(
            "/* run event: harvest(*) */ UPDATE jobs.run r
                    SET status = u.status, pid = u.pid,
                        started_at = TIMESTAMPTZ '2000-01-01 00:00:00+00' + u.started * INTERVAL '1 microsecond',
                        finished_at = TIMESTAMPTZ '2000-01-01 00:00:00+00' + u.finished * INTERVAL '1 microsecond',
                        sqlstate = u.code, message = u.message, command_tag = u.tag
                   FROM ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($2::text[]),
                                   pg_catalog.unnest($3::int4[]), pg_catalog.unnest($4::int8[]),
                                   pg_catalog.unnest($5::int8[]), pg_catalog.unnest($6::text[]),
                                   pg_catalog.unnest($7::text[]), pg_catalog.unnest($8::text[]))
                        AS u(id, status, pid, started, finished, code, message, tag)
                  WHERE r.id OPERATOR(pg_catalog.=) u.id AND r.status OPERATOR(pg_catalog.=) ANY ('{starting,running}')
              RETURNING ",
            ended_columns!()
        )
    } else {
        concat!(
            "/* run event: harvest(*) */ UPDATE jobs.run r
                    SET status = u.status, pid = u.pid,
                        started_at = TIMESTAMPTZ '2000-01-01 00:00:00+00' + u.started * INTERVAL '1 microsecond',
                        finished_at = TIMESTAMPTZ '2000-01-01 00:00:00+00' + u.finished * INTERVAL '1 microsecond',
                        sqlstate = u.code, message = u.message
                   FROM ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($2::text[]),
                                   pg_catalog.unnest($3::int4[]), pg_catalog.unnest($4::int8[]),
                                   pg_catalog.unnest($5::int8[]), pg_catalog.unnest($6::text[]),
                                   pg_catalog.unnest($7::text[]))
                        AS u(id, status, pid, started, finished, code, message)
                  WHERE r.id OPERATOR(pg_catalog.=) u.id AND r.status OPERATOR(pg_catalog.=) ANY ('{starting,running}')
              RETURNING ",
            ended_columns!()
        )
    };
    plans::run(
        client,
        sql,
        &[
            endings.ids.into(),
            endings.statuses.into(),
            endings.pids.into(),
            endings.started.into(),
            endings.finished.into(),
            endings.codes.into(),
            endings.messages.into(),
            endings.tags.into(),
            endings.details.into(),
        ],
    )
    .or_raise("recording run outcomes")
    .map(|r| Ended::from_row(&r))
    .collect()
}

/// Runs in flight (`starting` or `running`), each with its row version
/// (`xmin`), for [`mark_crashed`].
pub(crate) fn in_flight(client: &mut SpiClient) -> Vec<(i64, String)> {
    plans::run(
        client,
        "SELECT id, xmin::pg_catalog.text FROM jobs.run WHERE status OPERATOR(pg_catalog.=) ANY ('{starting,running}')",
        &[],
    )
    .or_raise("reading runs in flight")
    .map(|r| (row::get_req::<i64>(&r, 1), row::get_req::<String>(&r, 2)))
    .collect()
}

/// Mark `crashed` the runs `gone` still in flight and still at the row
/// version `versions` [`in_flight`] read (not, say, requeued and claimed
/// again since); returns the rows it made terminal.
pub(crate) fn mark_crashed(client: &mut SpiClient, gone: Vec<i64>, versions: Vec<String>) -> Vec<Ended> {
    plans::run(
        client,
        concat!(
            "/* run event: crash_sweep */ UPDATE jobs.run r SET status = 'crashed', finished_at = pg_catalog.clock_timestamp(),
                    message = 'the executor ended without recording an outcome (terminated, crashed, or the server restarted)'
               FROM ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($2::text[])) AS g(id, version)
              WHERE r.id OPERATOR(pg_catalog.=) g.id
                AND r.xmin OPERATOR(pg_catalog.=) g.version::pg_catalog.xid
                AND r.status OPERATOR(pg_catalog.=) ANY ('{starting,running}')
          RETURNING ",
            ended_columns!()
        ),
        &[gone.into(), versions.into()],
    )
    .or_raise("marking crashed runs")
    .map(|r| Ended::from_row(&r))
    .collect()
}

/// The in-transaction record of a run's success: `succeeded`, if run
/// `run_id` is still ours to finish. Returns its start lag and duration
/// in microseconds ([`lag_and_duration_us`]) if it updated the row, `None`
/// if the row was no longer ours.
///
/// Read with the latest snapshot, not the command's: a command running at
/// REPEATABLE READ or SERIALIZABLE (its role's default) would otherwise
/// fail with a serialization error whenever the scheduler showed the run
/// `running` after the command's snapshot was taken. Raw SPI, because
/// choosing the snapshot takes `SPI_execute_snapshot`; the plan is kept.
pub(crate) fn mark_succeeded(
    run_id: i64,
    truncated: bool,
    command_tag: &str,
) -> Option<(Option<i64>, Option<i64>)> {
    thread_local! {
        static PLANS: std::cell::Cell<[usize; 2]> = const { std::cell::Cell::new([0, 0]) };
    }
    // A database not yet updated to 0.4.0 has no command_tag column.
    const SQL: [&str; 2] = [
        concat!(
            "/* run event: record */ UPDATE jobs.run r SET status = 'succeeded', finished_at = pg_catalog.clock_timestamp(),
                 pid = pg_catalog.pg_backend_pid(), result_truncated = $2,
                 started_at = COALESCE(started_at, pg_catalog.statement_timestamp())
           WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) ANY ('{starting,running}')
       RETURNING ",
            lag_and_duration_us!()
        ),
        concat!(
            "/* run event: record */ UPDATE jobs.run r SET status = 'succeeded', finished_at = pg_catalog.clock_timestamp(),
                 pid = pg_catalog.pg_backend_pid(), result_truncated = $2, command_tag = $3,
                 started_at = COALESCE(started_at, pg_catalog.statement_timestamp())
           WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) ANY ('{starting,running}')
       RETURNING ",
            lag_and_duration_us!()
        ),
    ];
    let which = usize::from(crate::catalog::schema_version::records_command_tags());
    let Ok(tag) = std::ffi::CString::new(command_tag) else {
        error!("pg_jobs: cannot record run {run_id}: its command tag holds a zero byte");
    };
    // SAFETY: called inside the run's transaction (just before its commit,
    // with an active snapshot), where SPI may connect. A kept plan is null
    // or the plan SPI_keepplan moved to a long-lived context in this same
    // process (never freed), so it stays valid across transactions;
    // `values` and `nulls` have the 3 entries each plan takes and, with
    // `tag` (whose text datum is copied by the statement), outlive the call.
    // XactIsoLevel is a plain global, restored right after the statement.
    // The returned row (at most one: `id` is the key) is read from
    // SPI_tuptable, valid until SPI_finish; its two columns are int8,
    // passed by value. An ERROR (error! or inside SPI) unwinds; the abort
    // that follows ends the SPI connection.
    unsafe {
        if pg_sys::SPI_connect() != pg_sys::SPI_OK_CONNECT as i32 {
            error!("pg_jobs: cannot record run {run_id}: SPI_connect failed");
        }
        let mut plans = PLANS.with(|p| p.get());
        let mut plan = plans[which] as pg_sys::SPIPlanPtr;
        if plan.is_null() {
            let mut types = [pg_sys::INT8OID, pg_sys::BOOLOID, pg_sys::TEXTOID];
            let Ok(sql) = std::ffi::CString::new(SQL[which]) else {
                error!("pg_jobs: cannot record run {run_id}: its statement holds a zero byte");
            };
            plan = pg_sys::SPI_prepare(sql.as_ptr(), 3, types.as_mut_ptr());
            if plan.is_null() || pg_sys::SPI_keepplan(plan) != 0 {
                error!("pg_jobs: cannot record run {run_id}: cannot prepare the record");
            }
            plans[which] = plan as usize;
            PLANS.with(|p| p.set(plans));
        }
        let tag_datum = pg_sys::Datum::from(pg_sys::cstring_to_text(tag.as_ptr()));
        let mut values = [
            pg_sys::Datum::from(run_id),
            pg_sys::Datum::from(truncated),
            tag_datum,
        ];
        let nulls = [b' ' as std::ffi::c_char; 3];
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
        if rc != pg_sys::SPI_OK_UPDATE_RETURNING as i32 {
            error!("pg_jobs: cannot record run {run_id}: SPI returned {rc}");
        }
        let recorded = if pg_sys::SPI_processed == 0 || pg_sys::SPI_tuptable.is_null() {
            None
        } else {
            let t = &*pg_sys::SPI_tuptable;
            let row = *t.vals;
            let int8 = |col: i32| {
                let mut null = false;
                let d = pg_sys::SPI_getbinval(row, t.tupdesc, col, &mut null);
                (!null).then(|| d.value() as i64)
            };
            Some((int8(1), int8(2)))
        };
        pg_sys::SPI_finish();
        recorded
    }
}

/// Note that the kept rows of run `run_id` were cut at the cap (where its
/// record was not written with them).
pub(crate) fn flag_result_truncated(run_id: i64) -> Result<(), pgrx::spi::SpiError> {
    Spi::run_with_args(
        "UPDATE jobs.run SET result_truncated = true WHERE id OPERATOR(pg_catalog.=) $1",
        &[run_id.into()],
    )
}
