//! How the scheduler sleeps until a due instant, so that it wakes on time.
//!
//! PostgreSQL's latch waits take whole milliseconds, and Linux lets a poll's
//! timeout end late by about a thousandth of its length (its
//! `select_estimate_accuracy`: a one-second sleep up to 1 ms late), on top
//! of the rounding up to a whole millisecond. Measured: jobs due at a whole
//! second started their pass 1.5 ms late (p50). So a latch wait stops
//! short of the instant by more than that slack, and the last stretch,
//! under two milliseconds, is slept precisely (not woken by the latch: at
//! most 2 ms of deafness, once per due instant).

use std::time::Duration;

/// The next step towards an instant `rest` away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Wait on the latch this many whole milliseconds (woken early by it).
    Latch(u64),
    /// Sleep this long, precisely (always under [`PRECISE_MAX`]).
    Precise(Duration),
    /// The instant has come.
    Done,
}

/// The longest precise sleep.
pub const PRECISE_MAX: Duration = Duration::from_millis(2);

/// How far short of the instant a latch wait of `rest` stops: more than the
/// kernel's slack on it (a thousandth, up to 100 ms) and at least 2 ms.
fn short_by(rest: Duration) -> Duration {
    (rest / 500).max(Duration::from_millis(2))
}

/// The next step to take with the instant `rest` away.
pub fn next_step(rest: Duration) -> Step {
    if rest.is_zero() {
        Step::Done
    } else if rest < PRECISE_MAX {
        Step::Precise(rest)
    } else if rest <= short_by(rest) * 2 {
        // Whole milliseconds, rounded down, less one: never past the
        // instant, whatever the kernel adds to so short a wait.
        Step::Latch(rest.as_millis() as u64 - 1)
    } else {
        Step::Latch((rest - short_by(rest)).as_millis() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_second_stops_short_then_sleeps_the_rest_precisely() {
        assert_eq!(next_step(Duration::from_millis(1000)), Step::Latch(998));
        assert_eq!(next_step(Duration::from_micros(3_700)), Step::Latch(2));
        assert_eq!(
            next_step(Duration::from_micros(1_999)),
            Step::Precise(Duration::from_micros(1_999))
        );
        assert_eq!(
            next_step(Duration::from_micros(700)),
            Step::Precise(Duration::from_micros(700))
        );
        assert_eq!(next_step(Duration::ZERO), Step::Done);
        // A minute stops 120 ms short: the kernel's slack on it can be 60 ms.
        assert_eq!(next_step(Duration::from_secs(60)), Step::Latch(59_880));
    }

    proptest! {
        /// Each step ends before the instant even when the kernel wakes a
        /// latch wait late by a thousandth (rounded up to a microsecond),
        /// and a handful of steps reach it.
        #[test]
        fn steps_never_overshoot_and_arrive(rest_us in prop_oneof![0u64..10_000, 0u64..100_000_000]) {
            let mut rest = Duration::from_micros(rest_us);
            for _ in 0..8 {
                match next_step(rest) {
                    Step::Done => return Ok(()),
                    Step::Precise(d) => {
                        prop_assert!(d < PRECISE_MAX && d == rest);
                        return Ok(());
                    }
                    Step::Latch(ms) => {
                        let waited = Duration::from_millis(ms);
                        let slack = (waited / 1000).min(Duration::from_millis(100)) + Duration::from_micros(1);
                        prop_assert!(ms >= 1, "a latch wait of 0 ms would spin");
                        prop_assert!(waited + slack <= rest, "{:?} then {:?} slack overshoots {:?}", waited, slack, rest);
                        rest -= waited + slack;
                    }
                }
            }
            prop_assert!(false, "{} µs took more than 8 steps", rest_us);
        }
    }
}
