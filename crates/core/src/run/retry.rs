//! Whether a finished run is tried again, and when.
//!
//! A retry is a new `jobs.run` row ([`RunEvent::Retry`]) with the next
//! attempt number and a `not_before`: the failed row keeps its ending, so
//! every row is terminal exactly once and the history shows each attempt.

use super::transition::RunEvent;
use jiff::{SignedDuration, Timestamp};

/// Longest delay between two attempts, whatever the backoff and attempt.
pub const MAX_RETRY_DELAY: SignedDuration = SignedDuration::from_secs(3600);

/// Delay before retry number `attempt` (2 for the first retry) of a run
/// that failed: `base · 2^(attempt-2)`, capped at [`MAX_RETRY_DELAY`], plus
/// up to 10 % jitter drawn from `jitter_unit` in [0, 1) so retries of many
/// jobs spread.
pub fn retry_delay(base: SignedDuration, attempt: u32, jitter_unit: f64) -> SignedDuration {
    let base_ms = base.as_millis().max(0) as f64;
    let exp = attempt.saturating_sub(2).min(30) as i32;
    let delay_ms = (base_ms * 2f64.powi(exp)).min(MAX_RETRY_DELAY.as_millis() as f64);
    let jitter = delay_ms * 0.1 * jitter_unit.clamp(0.0, 1.0);
    SignedDuration::from_millis((delay_ms + jitter).round() as i64)
}

/// Why a finished run is not retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoRetry {
    /// It succeeded, was cancelled or skipped: nothing to try again.
    NotRetryable,
    /// It could not start at all (its database or owner is gone, the owner
    /// may not log in or connect): another attempt would meet the same
    /// refusal, so none is queued (pg_jobs 0.3 behaviour, kept).
    Refused,
    /// It was the last attempt.
    AttemptsExhausted,
}

/// The retry decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    No(NoRetry),
    /// Queue attempt `attempt` after `delay`.
    After {
        attempt: u32,
        delay: SignedDuration,
    },
}

impl Retry {
    /// When the retry may start, `delay` after `now`; `None` if there is
    /// no retry or the instant is out of range (checked: never a wrap).
    pub fn not_before(self, now: Timestamp) -> Option<Timestamp> {
        match self {
            Retry::After { delay, .. } => now.checked_add(delay).ok(),
            Retry::No(_) => None,
        }
    }
}

/// Decide about a run that `ended_by` made terminal, as attempt `attempt`
/// of `max_attempts`, with backoff `base`. Attempt numbers come from the
/// row: an attempt below 1 counts as 1, so a bad row retries at most
/// `max_attempts - 1` times rather than looping.
pub fn decide(
    ended_by: RunEvent,
    attempt: i32,
    max_attempts: i32,
    base: SignedDuration,
    jitter_unit: f64,
) -> Retry {
    if ended_by == RunEvent::Refuse {
        return Retry::No(NoRetry::Refused);
    }
    if ended_by.creates() || !ended_by.to().is_terminal() || !ended_by.to().is_retryable() {
        return Retry::No(NoRetry::NotRetryable);
    }
    let attempt = attempt.max(1) as u32;
    if attempt >= max_attempts.max(1) as u32 {
        return Retry::No(NoRetry::AttemptsExhausted);
    }
    let next = attempt + 1;
    Retry::After {
        attempt: next,
        delay: retry_delay(base, next, jitter_unit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::outcome::Ending;
    use proptest::prelude::*;

    const TEN_S: SignedDuration = SignedDuration::from_secs(10);

    #[test]
    fn retry_delays_grow_and_jitter_stays_within_ten_percent() {
        assert_eq!(retry_delay(TEN_S, 2, 0.0), SignedDuration::from_secs(10));
        assert_eq!(retry_delay(TEN_S, 3, 0.0), SignedDuration::from_secs(20));
        assert_eq!(retry_delay(TEN_S, 4, 0.0), SignedDuration::from_secs(40));
        assert_eq!(retry_delay(TEN_S, 60, 0.0), SignedDuration::from_secs(3600));
        assert_eq!(retry_delay(TEN_S, 2, 0.999_999), SignedDuration::from_secs(11));
        assert_eq!(retry_delay(SignedDuration::MAX, 2, 0.0), MAX_RETRY_DELAY);
    }

    #[test]
    fn what_is_retried() {
        let d = |e, a, m| decide(e, a, m, TEN_S, 0.0);
        let after2 = Retry::After {
            attempt: 2,
            delay: TEN_S,
        };
        assert_eq!(d(RunEvent::Harvest(Ending::Failed), 1, 3), after2);
        assert_eq!(d(RunEvent::Harvest(Ending::TimedOut), 1, 2), after2);
        assert_eq!(d(RunEvent::Harvest(Ending::Crashed), 1, 2), after2);
        assert_eq!(d(RunEvent::CrashSweep, 1, 2), after2);
        assert_eq!(
            d(RunEvent::CrashSweep, 2, 2),
            Retry::No(NoRetry::AttemptsExhausted)
        );
        assert_eq!(d(RunEvent::Refuse, 1, 5), Retry::No(NoRetry::Refused));
        for e in [
            RunEvent::Record,
            RunEvent::Harvest(Ending::Succeeded),
            RunEvent::Harvest(Ending::Cancelled),
            RunEvent::Cancel,
            RunEvent::Skip,
            RunEvent::Dispatch,
        ] {
            assert_eq!(d(e, 1, 5), Retry::No(NoRetry::NotRetryable), "{e}");
        }
        assert_eq!(
            d(RunEvent::CrashSweep, -7, 2),
            after2,
            "a bad attempt counts as 1"
        );
        assert_eq!(
            d(RunEvent::CrashSweep, 1, 0),
            Retry::No(NoRetry::AttemptsExhausted)
        );
    }

    #[test]
    fn not_before_is_checked() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let r = decide(RunEvent::CrashSweep, 1, 2, TEN_S, 0.0);
        assert_eq!(r.not_before(now), Some("2026-01-01T00:00:10Z".parse().unwrap()));
        assert_eq!(r.not_before(Timestamp::MAX), None);
        assert_eq!(Retry::No(NoRetry::Refused).not_before(now), None);
    }

    proptest! {
        #[test]
        fn retry_delay_never_shrinks(base_ms in 1i64..600_000, jitter in 0.0f64..1.0) {
            let base = SignedDuration::from_millis(base_ms);
            let mut last = SignedDuration::ZERO;
            for attempt in 2..40 {
                let d = retry_delay(base, attempt, 0.0);
                prop_assert!(d >= last);
                let j = retry_delay(base, attempt, jitter);
                prop_assert!(j >= d && j.as_millis() as f64 <= d.as_millis() as f64 * 1.1 + 1.0);
                last = d;
            }
        }

        #[test]
        fn retries_end(max in 1i32..50, base_ms in 0i64..100_000) {
            // Following the decisions from attempt 1 queues exactly max - 1 retries.
            let (mut attempt, mut retries) = (1, 0);
            while let Retry::After { attempt: next, delay } =
                decide(RunEvent::Harvest(Ending::Failed), attempt, max, SignedDuration::from_millis(base_ms), 0.5)
            {
                prop_assert_eq!(next as i32, attempt + 1);
                prop_assert!(delay <= MAX_RETRY_DELAY + MAX_RETRY_DELAY / 10);
                attempt += 1;
                retries += 1;
            }
            prop_assert_eq!(retries, max - 1);
        }
    }
}
