//! Raising an ERROR the way PostgreSQL's own code does: a SQLSTATE, a
//! message, and a hint only when there is one (an empty `HINT:` line is
//! noise in every client and log).

use pgrx::pg_sys::panic::ErrorReport;
use pgrx::{PgLogLevel, PgSqlErrorCode};

/// Raise an ERROR; never returns.
pub fn raise(code: PgSqlErrorCode, message: impl Into<String>, hint: Option<&str>) -> ! {
    let mut report = ErrorReport::new(code, message.into(), "pg_jobs");
    if let Some(hint) = hint {
        report = report.set_hint(hint);
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// `.or_raise("doing what")` on a result a worker cannot go on without: an
/// ERROR saying what failed, instead of a panic. A worker's error recovery
/// (see `bgw::recover_from_error`) then rolls back and retries the unit of
/// work; nothing is half-done.
pub trait OrRaise<T> {
    fn or_raise(self, what: &str) -> T;
}

impl<T, E: std::fmt::Display> OrRaise<T> for Result<T, E> {
    fn or_raise(self, what: &str) -> T {
        self.unwrap_or_else(|e| {
            raise(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                format!("pg_jobs: {what}: {e}"),
                None,
            )
        })
    }
}

/// The id an `INSERT … RETURNING id` of pg_jobs' own gave back; an ERROR
/// saying `could not {what}` (with the cause) if it gave none or failed.
pub fn returned_id<E: std::fmt::Display>(result: Result<Option<i64>, E>, what: &str) -> i64 {
    match result {
        Ok(Some(id)) => id,
        Ok(None) => raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("could not {what}: no id was returned"),
            None,
        ),
        Err(e) => raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("could not {what}: {e}"),
            None,
        ),
    }
}
