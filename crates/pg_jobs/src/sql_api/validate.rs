//! Validation shared by every SQL API function: required arguments, the
//! command, names, schedules, time zones, overlap policies and numeric
//! settings. Each failure is an ERROR with its SQLSTATE, a message, and a
//! hint only when there is one.

use crate::pg::error::raise;
use jiff::tz::TimeZone;
use pg_jobs_core::overlap::Overlap;
use pg_jobs_core::schedule::Schedule;
use pgrx::pg_sys::panic::CaughtError;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode as Code;
use pgrx::PgSqlErrorCode;

/// Longest command text: each run keeps a copy in `jobs.run`.
pub(crate) const MAX_COMMAND_BYTES: usize = 1 << 20;

/// A required argument (the SQL functions are not STRICT, so that a NULL
/// gets an error naming the argument instead of a silent NULL result).
pub(crate) fn required<T>(value: Option<T>, what: &str) -> T {
    value.unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{what} must not be NULL"),
            None,
        )
    })
}

/// Parse `command` as the executor will, so a typo fails the submit (with
/// SQLSTATE 42601) instead of a run later. Returns the number of statements.
pub(crate) fn check_command(command: &str) -> usize {
    if command.len() > MAX_COMMAND_BYTES {
        raise(
            PgSqlErrorCode::ERRCODE_PROGRAM_LIMIT_EXCEEDED,
            format!(
                "command is too long ({} bytes; at most {MAX_COMMAND_BYTES})",
                command.len()
            ),
            Some("Put the work in a function or procedure and call that."),
        );
    }
    let Ok(c) = std::ffi::CString::new(command) else {
        raise(
            PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
            "command contains a zero byte",
            None,
        )
    };
    // SAFETY: raw_parser only parses (no catalog access) a NUL-terminated
    // string that outlives the call; the List it returns (null for an
    // empty string) is palloc'd in the current context, its `length` cells
    // are RawStmts of this parse, read while the list lives. A syntax ERROR
    // unwinds into the PgTry's catch.
    let parsed = PgTryBuilder::new(|| unsafe {
        let list = pg_sys::raw_parser(c.as_ptr(), pg_sys::RawParseMode::RAW_PARSE_DEFAULT);
        let len = if list.is_null() {
            0
        } else {
            (*list).length as usize
        };
        // Each cell is a RawStmt of this parse.
        let copies = (0..len).any(|i| {
            let raw = (*(*list).elements.add(i)).ptr_value as *mut pg_sys::RawStmt;
            crate::exec::runner::copies_with_the_client((*raw).stmt)
        });
        Ok((len, copies))
    })
    .catch_others(|e| match e {
        CaughtError::PostgresError(r) | CaughtError::ErrorReport(r) => Err(r.message().to_owned()),
        CaughtError::RustPanic { ereport, .. } => Err(ereport.message().to_owned()),
    })
    .execute();
    match parsed {
        Ok((_, true)) => raise(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            crate::exec::runner::COPY_WITH_THE_CLIENT,
            Some("COPY to or from a file on the server, or return rows from a query and read them with jobs.result."),
        ),
        Ok((0, _)) => raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "command is empty",
            Some("Pass one or more SQL statements, e.g. jobs.submit('VACUUM my_table')."),
        ),
        Ok((n, _)) => n,
        Err(msg) => raise(
            PgSqlErrorCode::ERRCODE_SYNTAX_ERROR,
            format!("command is not valid SQL: {msg}"),
            Some("The command is parsed when submitted; fix it and submit again."),
        ),
    }
}

/// An instant a worker will compute with (a run's `start_at`, a one-off's
/// time) must be finite and within the years -9999 to 9999: `infinity`
/// made every scheduler pass fail ("cannot convert infinity to bigint").
pub(crate) fn check_instant(us: i64, what: &str) {
    if crate::pg::time::from_pg(us).is_none() {
        raise(
            Code::ERRCODE_DATETIME_FIELD_OVERFLOW,
            format!("{what} must be a finite time between the years -9999 and 9999"),
            None,
        );
    }
}

pub(crate) const SCHEDULE_HINT: &str =
    "A schedule is a cron expression with 5 fields or 6 (seconds first), a macro such as \
@hourly or @reboot, an interval such as '30 seconds' or 'every 2 hours', or a timestamptz for a one-off.";

/// A one-off is a timestamp: it starts with a date.
pub(crate) fn looks_like_timestamp(text: &str) -> bool {
    let b = text.trim().as_bytes();
    b.len() >= 8 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-'
}

/// Validate a schedule; returns the one-off instant (PostgreSQL µs) if it is one.
pub(crate) fn validate_schedule(text: &str) -> Option<i64> {
    if looks_like_timestamp(text) {
        // PostgreSQL parses it (and explains a bad one, SQLSTATE 22007).
        let ts = Spi::get_one_with_args::<TimestampWithTimeZone>(
            "SELECT $1::pg_catalog.timestamptz",
            &[text.into()],
        )
        .ok()
        .flatten()
        .unwrap_or_else(|| {
            raise(
                Code::ERRCODE_INVALID_PARAMETER_VALUE,
                "invalid one-off time",
                Some(SCHEDULE_HINT),
            )
        });
        let us = pg_sys::TimestampTz::from(ts);
        check_instant(us, "a one-off's time");
        return Some(us);
    }
    if let Err(e) = Schedule::parse(text) {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("invalid schedule \"{}\": {e}", text.trim()),
            Some(SCHEDULE_HINT),
        );
    }
    None
}

pub(crate) fn validate_timezone(tz: &str) -> TimeZone {
    TimeZone::get(tz).unwrap_or_else(|_| {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("unknown time zone \"{tz}\""),
            Some("Use an IANA time zone name such as Europe/Berlin or UTC (see pg_timezone_names)."),
        )
    })
}

pub(crate) fn validate_overlap(overlap: &str) {
    if let Err(e) = overlap.parse::<Overlap>() {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            e,
            Some("skip records a skipped run while one is going; queue keeps one pending; allow runs in parallel."),
        );
    }
}

/// A one-off more than this far in the past is a mistake, not "now".
pub(crate) const ONE_OFF_PAST_TOLERANCE_US: i64 = 1_000_000;

/// A one-off's time must not be in the past (beyond a second of slack for
/// `now()`-style "run once, right away").
pub(crate) fn check_not_past(once_at: Option<i64>, text: &str) {
    if let Some(at) = once_at {
        // SAFETY: GetCurrentTimestamp only reads the clock.
        if at < unsafe { pg_sys::GetCurrentTimestamp() } - ONE_OFF_PAST_TOLERANCE_US {
            raise(
                Code::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("one-off time \"{}\" is in the past", text.trim()),
                Some("Give a time in the future, or use jobs.submit to run a command now."),
            );
        }
    }
}

/// A name of a job or daemon: not blank, not absurdly long.
pub(crate) fn check_name(name: &str, what: &str) {
    if name.trim().is_empty() {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("{what} name must not be empty"),
            None,
        );
    }
    let n = name.chars().count();
    if n > MAX_NAME_CHARS {
        raise(
            Code::ERRCODE_NAME_TOO_LONG,
            format!("{what} name is too long ({n} characters; at most {MAX_NAME_CHARS})"),
            None,
        );
    }
}

/// Longest job or daemon name.
pub(crate) const MAX_NAME_CHARS: usize = 200;

/// `timeout_ms`: `None` is no timeout; 0 means "none" only where
/// `zero_removes` (alter_job), and is refused elsewhere as a likely mistake.
/// Longest run timeout: PostgreSQL's statement_timeout is an int of
/// milliseconds, and the executor arms the timeout the same way.
pub(crate) const MAX_TIMEOUT_MS: i64 = i32::MAX as i64;
/// Longest retry backoff (retries back off exponentially from it, up to an
/// hour, so a larger base only ever means "an hour").
pub(crate) const MAX_RETRY_BACKOFF_MS: i64 = 86_400_000;
/// Shortest retry backoff: a failing job with many attempts and no backoff
/// retried ~90 times a second (issue 13, finding 3).
pub(crate) const MIN_RETRY_BACKOFF_MS: i64 = 1_000;
/// Most attempts of one run: with the backoff doubling up to an hour, 100
/// attempts already span about four days.
pub(crate) const MAX_ATTEMPTS: i32 = 100;

pub(crate) fn validate_numbers(
    timeout_ms: Option<i64>,
    max_attempts: i32,
    retry_backoff_ms: i64,
    zero_removes: bool,
) {
    if let Some(t) = timeout_ms.filter(|&t| t > MAX_TIMEOUT_MS) {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("timeout must be at most {MAX_TIMEOUT_MS} ms (about 24.8 days), not {t} ms"),
            Some("This is PostgreSQL's own limit for statement_timeout."),
        );
    }
    if retry_backoff_ms > MAX_RETRY_BACKOFF_MS {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("retry_backoff must be at most 1 day, not {retry_backoff_ms} ms"),
            None,
        );
    }
    if timeout_ms.is_some_and(|t| t < 0 || (t == 0 && !zero_removes)) {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            if zero_removes {
                "timeout must not be negative"
            } else {
                "timeout must be positive"
            },
            Some(if zero_removes {
                "timeout => '0' removes the timeout."
            } else {
                "Pass NULL for no timeout."
            }),
        );
    }
    if max_attempts < 1 {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("max_attempts must be at least 1, not {max_attempts}"),
            Some("1 means no retries."),
        );
    }
    if max_attempts > MAX_ATTEMPTS {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("max_attempts must be at most {MAX_ATTEMPTS}, not {max_attempts}"),
            None,
        );
    }
    if retry_backoff_ms < MIN_RETRY_BACKOFF_MS {
        raise(
            Code::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("retry_backoff must be at least 1 second, not {retry_backoff_ms} ms"),
            None,
        );
    }
}
