//! The SQL API (schema `jobs`). Functions here are the only write path to
//! pg_jobs' tables: owners may read their rows (row-level security) but
//! never write them directly, so run history cannot be forged.

use crate::bgw;
use crate::hooks;
use crate::registry;
use pgrx::pg_sys::panic::{CaughtError, ErrorReport};
use pgrx::prelude::*;
use pgrx::{PgLogLevel, PgSqlErrorCode};

pub(crate) fn raise(code: PgSqlErrorCode, message: impl Into<String>, hint: &str) -> ! {
    ErrorReport::new(code, message.into(), "pg_jobs")
        .set_hint(hint)
        .report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// Parse `command` as the executor will, so a typo fails the submit (with
/// SQLSTATE 42601) instead of a run later. Returns the number of statements.
pub(crate) fn check_command(command: &str) -> usize {
    let Ok(c) = std::ffi::CString::new(command) else {
        raise(
            PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
            "command contains a zero byte",
            "",
        )
    };
    let parsed = PgTryBuilder::new(|| unsafe {
        let list = pg_sys::raw_parser(c.as_ptr(), pg_sys::RawParseMode::RAW_PARSE_DEFAULT);
        Ok(if list.is_null() {
            0
        } else {
            (*list).length as usize
        })
    })
    .catch_others(|e| match e {
        CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => Err(r.message().to_owned()),
        CaughtError::RustPanic { ereport, .. } => Err(ereport.message().to_owned()),
    })
    .execute();
    match parsed {
        Ok(0) => raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "command is empty",
            "Pass one or more SQL statements, e.g. jobs.submit('VACUUM my_table').",
        ),
        Ok(n) => n,
        Err(msg) => raise(
            PgSqlErrorCode::ERRCODE_SYNTAX_ERROR,
            format!("command is not valid SQL: {msg}"),
            "The command is parsed when submitted; fix it and submit again.",
        ),
    }
}

/// Queue `command` to run in the background, in this database, as the
/// calling role. It runs only after the calling transaction commits; if
/// that transaction (or the savepoint around this call) rolls back, it
/// never runs. Returns the run id; watch it in `jobs.run`.
#[pg_extern(volatile, parallel_unsafe)]
fn submit(command: &str) -> i64 {
    check_command(command);
    let owner = unsafe { pg_sys::GetUserId() };
    let id = bgw::as_superuser(|| {
        Spi::get_one_with_args::<i64>(
            "INSERT INTO jobs.run (owner, command) VALUES ($1::pg_catalog.regrole, $2) RETURNING id",
            &[owner.into(), command.into()],
        )
    });
    let id = match id {
        Ok(Some(id)) => id,
        other => raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("could not queue the run: {other:?}"),
            "",
        ),
    };
    hooks::wake_scheduler_at_commit();
    id
}

/// The live worker registry; read it through the view `jobs.workers`.
#[pg_extern(volatile, parallel_safe)]
#[allow(clippy::type_complexity)]
fn _workers() -> TableIterator<
    'static,
    (
        name!(kind, String),
        name!(pid, Option<i32>),
        name!(datid, Option<pg_sys::Oid>),
        name!(roleid, Option<pg_sys::Oid>),
        name!(job_id, Option<i64>),
        name!(run_id, Option<i64>),
        name!(state, String),
        name!(since, Option<TimestampWithTimeZone>),
    ),
> {
    let rows: Vec<_> = registry::snapshot()
        .into_iter()
        .map(|s| {
            (
                s.kind.as_str().to_owned(),
                (s.pid != 0).then_some(s.pid),
                (s.db != 0).then_some(pg_sys::Oid::from(s.db)),
                (s.role != 0).then_some(pg_sys::Oid::from(s.role)),
                (s.job_id != 0).then_some(s.job_id),
                (s.run_id != 0).then_some(s.run_id),
                s.state.as_str().to_owned(),
                TimestampWithTimeZone::try_from(s.since).ok(),
            )
        })
        .collect();
    TableIterator::new(rows)
}
