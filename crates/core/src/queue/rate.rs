//! A rate limit's window: the starts of a queue's runs, so that no window
//! of `rate_period` holds more than `rate_limit` of them.
//!
//! An exact sliding window, not a token bucket: a bucket of `rate_limit`
//! tokens refilled over `rate_period` lets nearly twice the limit start in
//! one window (a full bucket spent at its end, refills spent at once). The
//! log keeps the last [`super::MAX_RATE_LIMIT`] start times; a start is
//! allowed when the `rate_limit`-th latest one is at least a period (and
//! [`GUARD_US`]) old.
//!
//! The time logged is taken when pg_jobs hands the command to PostgreSQL
//! (not when it dispatches the run: a new executor starts it tens of
//! milliseconds after a warm one would). The command's first statement
//! reads the clock after its own start-up, microseconds later in a warm
//! executor, a few milliseconds in a new one's first run; [`GUARD_US`]
//! widens the window by one millisecond, which covers the former.

use super::MAX_RATE_LIMIT;

/// How much longer than `rate_period` the window the log keeps is.
pub const GUARD_US: i64 = 1_000;

const CAPACITY: usize = MAX_RATE_LIMIT as usize;

/// The latest starts of one queue, oldest overwritten first.
#[derive(Clone, Copy)]
#[repr(C)]
pub struct StartLog {
    /// Start times (microseconds), a ring: the next one goes at `next`.
    times: [i64; CAPACITY],
    next: usize,
    /// How many of `times` hold a start (at most `CAPACITY`).
    len: usize,
}

impl Default for StartLog {
    fn default() -> Self {
        StartLog {
            times: [0; CAPACITY],
            next: 0,
            len: 0,
        }
    }
}

impl std::fmt::Debug for StartLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StartLog").field("len", &self.len).finish()
    }
}

impl StartLog {
    /// The `k`-th latest start (1: the latest), if there were that many.
    fn latest(&self, k: usize) -> Option<i64> {
        if k == 0 || k > self.len {
            return None;
        }
        Some(self.times[(self.next + CAPACITY - k) % CAPACITY])
    }

    /// When a start is next allowed with `limit` starts per `period_us`:
    /// `now_us` if now, else the instant the oldest start that counts
    /// leaves the window.
    pub fn allowed_at(&self, limit: u32, period_us: i64, now_us: i64) -> i64 {
        let limit = (limit as usize).clamp(1, CAPACITY);
        match self.latest(limit) {
            Some(t) if t + period_us + GUARD_US > now_us => t + period_us + GUARD_US,
            _ => now_us,
        }
    }

    /// How many runs may start now, at most `limit` per `period_us`.
    pub fn room(&self, limit: u32, period_us: i64, now_us: i64) -> usize {
        let limit = (limit as usize).clamp(1, CAPACITY);
        let in_window = (1..=limit.min(self.len))
            .take_while(|&k| self.latest(k).is_some_and(|t| t + period_us + GUARD_US > now_us))
            .count();
        limit - in_window
    }

    /// Log a start at `now_us` if one is allowed (`Ok`); else `Err` with
    /// the instant it will be. A clock that went back is taken as standing
    /// still: starts are logged in order.
    pub fn take(&mut self, limit: u32, period_us: i64, now_us: i64) -> Result<(), i64> {
        let now_us = now_us.max(self.latest(1).unwrap_or(i64::MIN));
        let at = self.allowed_at(limit, period_us, now_us);
        if at > now_us {
            return Err(at);
        }
        self.times[self.next] = now_us;
        self.next = (self.next + 1) % CAPACITY;
        self.len = (self.len + 1).min(CAPACITY);
        Ok(())
    }

    /// The latest start, if any (an idle log can be given to another queue
    /// once it is a period old).
    pub fn last(&self) -> Option<i64> {
        self.latest(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SECOND: i64 = 1_000_000;

    #[test]
    fn a_burst_up_to_the_limit_then_the_window_decides() {
        let mut log = StartLog::default();
        for i in 0..5 {
            assert_eq!(log.take(5, SECOND, 10 + i), Ok(()));
        }
        assert_eq!(log.room(5, SECOND, 20), 0);
        // The sixth waits until the first is a period (and the guard) old.
        assert_eq!(log.take(5, SECOND, 20), Err(10 + SECOND + GUARD_US));
        assert_eq!(log.take(5, SECOND, 10 + SECOND + GUARD_US), Ok(()));
        assert_eq!(log.room(5, SECOND, 10 + SECOND + GUARD_US), 0);
        assert_eq!(log.room(5, SECOND, 14 + SECOND + GUARD_US), 4);
    }

    #[test]
    fn a_lower_limit_counts_only_the_latest_starts() {
        let mut log = StartLog::default();
        for i in 0..10 {
            log.take(10, SECOND, i).unwrap();
        }
        assert_eq!(log.room(2, SECOND, 100), 0);
        assert_eq!(log.room(20, SECOND, 100), 10);
    }

    #[test]
    fn a_clock_going_back_does_not_reorder_the_log() {
        let mut log = StartLog::default();
        log.take(2, SECOND, 100).unwrap();
        log.take(2, SECOND, 50).unwrap();
        assert_eq!(log.last(), Some(100));
        assert_eq!(log.take(2, SECOND, 60), Err(100 + SECOND + GUARD_US));
    }

    proptest! {
        /// Whatever the attempts, no window of `period` (widened by the
        /// guard) holds more than `limit` logged starts, and an attempt is
        /// refused only while the window is full.
        #[test]
        fn no_window_holds_more_than_the_limit(
            limit in 1u32..20,
            period in 1_000i64..100_000,
            steps in prop::collection::vec(0i64..20_000, 1..300),
        ) {
            let mut log = StartLog::default();
            let mut now = 0i64;
            let mut started = Vec::new();
            for step in steps {
                now += step;
                match log.take(limit, period, now) {
                    Ok(()) => started.push(now),
                    Err(at) => {
                        prop_assert!(at > now);
                        let recent = started.iter().filter(|&&t| t + period + GUARD_US > now).count();
                        prop_assert!(recent >= limit as usize);
                    }
                }
            }
            for (i, &s) in started.iter().enumerate() {
                let in_window = started[i..].iter().take_while(|&&t| t < s + period + GUARD_US).count();
                prop_assert!(in_window <= limit as usize, "{} starts from {}", in_window, s);
            }
        }
    }
}
