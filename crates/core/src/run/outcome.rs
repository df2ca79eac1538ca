//! How a run that an executor held ended: what the executor reports (a
//! command's result, told apart into failure, timeout and cancel), what the
//! scheduler makes of a report or of its absence, and when an executor that
//! ignores its timeout is terminated.
//!
//! Two processes decide, each from what only it knows: the executor knows
//! the command's error and whether `jobs.cancel` flagged its run; the
//! scheduler knows whether the process is gone and whether it terminated it
//! for overrunning its timeout. [`classify_error`] is the executor's half,
//! [`Reported::ending`] the scheduler's.

use super::status::RunStatus;

/// SQLSTATE `query_canceled`: a statement timeout and a cancel both raise it.
pub const QUERY_CANCELED: &str = "57014";

/// How long an executor may ignore the cancel at its timeout before the
/// scheduler terminates it.
pub const TIMEOUT_GRACE_MS: i64 = 2_000;

/// Message of a run stopped by its own `timeout`: PostgreSQL's own for a
/// statement timeout, which the run's timeout was armed as before 0.4 (it
/// has its own timer now, so a command's `statement_timeout` cannot touch
/// it, and PostgreSQL reports its cancel as "due to user request").
pub const TIMED_OUT: &str = "canceling statement due to statement timeout";
/// Message of a run cancelled by `jobs.cancel` before its command started.
pub const CANCELLED_BEFORE_START: &str = "cancelled by jobs.cancel before it started";
/// Message of a run whose executor exited without reporting (harvest).
pub const VANISHED: &str = "the executor ended without recording an outcome (terminated or crashed)";
/// Message of a run the crash sweep found in flight with no executor.
pub const SWEPT: &str =
    "the executor ended without recording an outcome (terminated, crashed, or the server restarted)";

/// How a run ended, as written to `jobs.run.status`: the terminal statuses
/// an executor's run can reach (never `skipped`: a skipped run had none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ending {
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    /// Its executor vanished without a report.
    Crashed,
}

impl Ending {
    pub const ALL: [Ending; 5] = [
        Ending::Succeeded,
        Ending::Failed,
        Ending::TimedOut,
        Ending::Cancelled,
        Ending::Crashed,
    ];

    pub const fn status(self) -> RunStatus {
        match self {
            Ending::Succeeded => RunStatus::Succeeded,
            Ending::Failed => RunStatus::Failed,
            Ending::TimedOut => RunStatus::TimedOut,
            Ending::Cancelled => RunStatus::Cancelled,
            Ending::Crashed => RunStatus::Crashed,
        }
    }
}

/// What an executor leaves in its registry slot about its run (the shell's
/// `registry::Outcome`, same discriminants, so it can live in shared memory
/// as a `u8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum Reported {
    /// Nothing (yet): if the process is gone, it crashed or was killed.
    #[default]
    Nothing = 0,
    Succeeded = 1,
    Failed = 2,
    TimedOut = 3,
    Cancelled = 4,
}

impl Reported {
    pub const ALL: [Reported; 5] = [
        Reported::Nothing,
        Reported::Succeeded,
        Reported::Failed,
        Reported::TimedOut,
        Reported::Cancelled,
    ];

    /// Unknown values read as `Nothing`: a report the scheduler cannot read
    /// is no report, and the run is then recorded crashed, never succeeded.
    pub const fn from_u8(v: u8) -> Reported {
        match v {
            1 => Reported::Succeeded,
            2 => Reported::Failed,
            3 => Reported::TimedOut,
            4 => Reported::Cancelled,
            _ => Reported::Nothing,
        }
    }

    /// The scheduler's verdict on an executor slot it harvests: a report
    /// wins; no report means the process died, which is a timeout if the
    /// scheduler terminated it for overrunning one, else a crash.
    pub const fn ending(self, killed_for_timeout: bool) -> Ending {
        match self {
            Reported::Succeeded => Ending::Succeeded,
            Reported::Failed => Ending::Failed,
            Reported::TimedOut => Ending::TimedOut,
            Reported::Cancelled => Ending::Cancelled,
            Reported::Nothing if killed_for_timeout => Ending::TimedOut,
            Reported::Nothing => Ending::Crashed,
        }
    }
}

/// What the scheduler writes with an unreported ending: SQLSTATE and message.
pub fn unreported_detail(killed_for_timeout: bool) -> (Option<&'static str>, String) {
    if killed_for_timeout {
        (
            Some(QUERY_CANCELED),
            format!("terminated {TIMEOUT_GRACE_MS} ms after its timeout: it did not stop when cancelled"),
        )
    } else {
        (None, VANISHED.to_owned())
    }
}

/// Whether a command that ran `elapsed_us` was stopped by its own timeout
/// of `timeout_ms` (0: none), by the clock: the witness besides the timer's
/// own flag (see [`classify_error`]). The caller must start `elapsed` no
/// later than it arms the timer, or a timeout that fires on time can look
/// early and read as a plain failure.
pub const fn timed_out(timeout_ms: i64, elapsed_us: i64) -> bool {
    timeout_ms > 0 && elapsed_us >= timeout_ms.saturating_mul(1000)
}

/// The executor's verdict on a command that raised `sqlstate`: a
/// `query_canceled` is `jobs.cancel`'s if it flagged the run (a cancel wins
/// over a timeout that fired at the same moment: the user asked), else the
/// run's timeout if its timer fired (`timeout_fired`) or that much time
/// passed, else an ordinary failure (the command's own `statement_timeout`,
/// or someone's `pg_cancel_backend`).
pub fn classify_error(
    sqlstate: &str,
    cancel_requested: bool,
    timeout_fired: bool,
    timeout_ms: i64,
    elapsed_us: i64,
) -> Reported {
    if sqlstate != QUERY_CANCELED {
        Reported::Failed
    } else if cancel_requested {
        Reported::Cancelled
    } else if timeout_fired || timed_out(timeout_ms, elapsed_us) {
        Reported::TimedOut
    } else {
        Reported::Failed
    }
}

/// The message an executor records with its verdict `kind` on a command
/// that failed with `message`: a timed-out run always says [`TIMED_OUT`]
/// (what PostgreSQL said when the run's timeout was its statement timeout),
/// whatever the cancel was reported as; any other keeps the command's own.
pub fn reported_message(kind: Reported, message: &str) -> &str {
    if kind == Reported::TimedOut {
        TIMED_OUT
    } else {
        message
    }
}

/// When the scheduler terminates the executor of a run started at
/// `started_us` (TimestampTz microseconds) with a timeout of `timeout_ms`:
/// the timeout plus [`TIMEOUT_GRACE_MS`]. `None`: no timeout (0 or less),
/// or not started. Saturating: a timeout near interval's maximum means
/// "never", not an overflow.
pub const fn kill_deadline_us(started_us: i64, timeout_ms: i64) -> Option<i64> {
    if timeout_ms <= 0 || started_us == 0 {
        return None;
    }
    let grace_us = timeout_ms.saturating_add(TIMEOUT_GRACE_MS).saturating_mul(1000);
    Some(started_us.saturating_add(grace_us))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_report_wins_and_silence_is_a_crash_or_a_timeout() {
        assert_eq!(Reported::Failed.ending(true), Ending::Failed);
        assert_eq!(Reported::Succeeded.ending(true), Ending::Succeeded);
        assert_eq!(Reported::Nothing.ending(true), Ending::TimedOut);
        assert_eq!(Reported::Nothing.ending(false), Ending::Crashed);
        for r in Reported::ALL {
            assert_eq!(Reported::from_u8(r as u8), r);
        }
        assert_eq!(Reported::from_u8(200), Reported::Nothing);
        assert_eq!(unreported_detail(true).0, Some("57014"));
        assert_eq!(
            unreported_detail(true).1,
            "terminated 2000 ms after its timeout: it did not stop when cancelled"
        );
        assert_eq!(unreported_detail(false), (None, VANISHED.to_owned()));
    }

    #[test]
    fn cancel_timeout_and_failure_are_told_apart() {
        // jobs.cancel flagged it: cancelled, even past the timeout.
        assert_eq!(
            classify_error("57014", true, true, 1_000, 5_000_000),
            Reported::Cancelled
        );
        // Our timeout: its timer fired, or at or after timeout_ms.
        assert_eq!(
            classify_error("57014", false, true, 1_000, 1_000_000),
            Reported::TimedOut
        );
        assert_eq!(
            classify_error("57014", false, false, 1_000, 1_000_000),
            Reported::TimedOut
        );
        // A cancel before the timeout (the command's own statement_timeout,
        // pg_cancel_backend): a failure.
        assert_eq!(
            classify_error("57014", false, false, 1_000, 999_999),
            Reported::Failed
        );
        assert_eq!(
            classify_error("57014", false, false, 0, 10_000_000),
            Reported::Failed
        );
        // Not a cancel at all, even after the timer fired (the command
        // caught the cancel and failed otherwise).
        assert_eq!(
            classify_error("22012", true, true, 1_000, 5_000_000),
            Reported::Failed
        );
    }

    /// A run stopped by its own timer says what it said when that timer
    /// was PostgreSQL's statement timeout, though PostgreSQL now reports
    /// the cancel as a user's; every other verdict keeps the message.
    #[test]
    fn a_timed_out_run_says_statement_timeout() {
        let user = "canceling statement due to user request";
        let kind = classify_error("57014", false, true, 1_000, 1_000_000);
        assert_eq!(reported_message(kind, user), TIMED_OUT);
        assert_eq!(TIMED_OUT, "canceling statement due to statement timeout");
        for kind in [Reported::Failed, Reported::Cancelled, Reported::Succeeded] {
            assert_eq!(reported_message(kind, user), user, "{kind:?}");
        }
    }

    #[test]
    fn kill_deadlines_saturate() {
        assert_eq!(kill_deadline_us(1_000_000, 500), Some(1_000_000 + 2_500_000));
        assert_eq!(kill_deadline_us(1_000_000, 0), None);
        assert_eq!(kill_deadline_us(0, 500), None, "not started");
        assert_eq!(kill_deadline_us(1, i64::MAX / 10), Some(i64::MAX));
        assert!(!timed_out(i64::MAX, i64::MAX - 1));
    }

    proptest! {
        #[test]
        fn every_report_ends_in_a_terminal_status(v in any::<u8>(), killed in any::<bool>()) {
            let s = Reported::from_u8(v).ending(killed).status();
            prop_assert!(s.is_terminal() && s != RunStatus::Skipped);
        }

        #[test]
        fn an_error_is_never_a_success(code in "[0-9A-Z]{5}", cancel in any::<bool>(), fired in any::<bool>(),
                                       timeout in -5i64..100_000, elapsed in 0i64..200_000_000) {
            let r = classify_error(&code, cancel, fired, timeout, elapsed);
            prop_assert!(matches!(r, Reported::Failed | Reported::TimedOut | Reported::Cancelled));
            prop_assert_eq!(r != Reported::Failed, code == "57014" && (cancel || fired || timed_out(timeout, elapsed)));
        }
    }
}
