//! A command's own `statement_timeout`, as under `psql -c`.
//!
//! A client backend arms PostgreSQL's statement timeout at the start of
//! each statement of a simple query (`start_xact_command` →
//! `enable_statement_timeout` in `postgres.c`) with the session's value at
//! that moment, so a `SET statement_timeout` earlier in the same string
//! applies to the statements after it, and disarms it after each statement
//! (PostgreSQL 13 and later). The executor follows the same steps; this is
//! their one decision. The run's own `timeout` is a separate timer that no
//! setting can change.

/// The statement timeout to arm for the next statement, in milliseconds,
/// given the session's `statement_timeout` and (PostgreSQL 17 and later)
/// `transaction_timeout` (0: unset, as before 17): `None` to have none
/// armed. As `enable_statement_timeout`: a `transaction_timeout` that is
/// set and not longer fires first anyway, so the statement timeout is not
/// armed.
pub const fn to_arm(statement_timeout_ms: i32, transaction_timeout_ms: i32) -> Option<i32> {
    if statement_timeout_ms > 0
        && (transaction_timeout_ms <= 0 || statement_timeout_ms < transaction_timeout_ms)
    {
        Some(statement_timeout_ms)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn armed_as_postgres_does() {
        assert_eq!(to_arm(0, 0), None, "unset");
        assert_eq!(to_arm(500, 0), Some(500));
        assert_eq!(to_arm(500, 1_000), Some(500));
        assert_eq!(to_arm(1_000, 1_000), None, "the transaction timeout fires first");
        assert_eq!(to_arm(2_000, 1_000), None);
        assert_eq!(to_arm(0, 1_000), None);
        assert_eq!(to_arm(-1, 0), None, "never a negative delay");
    }
}
