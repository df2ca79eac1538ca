//! The counters pg_jobs keeps per database since the server started (the
//! numbers of `jobs.metrics` and `pg_jobs metrics`): runs by how they
//! ended, runs started, executor pool hits and cold starts, scheduler
//! passes, and two histograms, start lag (due → start) and duration.
//!
//! Plain `Copy` data (`repr(C)`), so the extension keeps one [`DbCounters`]
//! per database in shared memory and a backend keeps the counts of its
//! current transaction in another, added to the shared one only when the
//! transaction commits (a run whose ending rolled back ended nothing).
//!
//! Histograms follow Prometheus: fixed upper bounds in seconds, each bucket
//! counting what fell at or below its bound ([`Histogram::cumulative`]), a
//! sum and a count. Counts wrap at 2^64, as a Prometheus counter may reset.

use crate::run::RunStatus;

/// How a run can end, in the order of [`DbCounters::ended`].
pub const ENDINGS: [RunStatus; 6] = [
    RunStatus::Succeeded,
    RunStatus::Failed,
    RunStatus::TimedOut,
    RunStatus::Cancelled,
    RunStatus::Skipped,
    RunStatus::Crashed,
];

/// Bucket bounds of the start lag, in microseconds (1 ms … 5 min): a run
/// normally starts within milliseconds of being due; seconds mean no free
/// executor, minutes a queue at its limit or a scheduler that was down.
pub const LAG_BOUNDS_US: [u64; BUCKETS] = [
    1_000,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    1_000_000,
    5_000_000,
    30_000_000,
    60_000_000,
    300_000_000,
];

/// Bucket bounds of a run's duration, in microseconds (1 ms … 1 h).
pub const DURATION_BOUNDS_US: [u64; BUCKETS] = [
    1_000,
    5_000,
    10_000,
    50_000,
    100_000,
    500_000,
    1_000_000,
    5_000_000,
    30_000_000,
    60_000_000,
    300_000_000,
    3_600_000_000,
];

/// Finite buckets of each histogram (one more counts what is above them all).
pub const BUCKETS: usize = 12;

/// A Prometheus-style histogram of microsecond observations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct Histogram {
    /// Observations in each bucket alone (not cumulative); the last one
    /// holds those above every bound.
    pub buckets: [u64; BUCKETS + 1],
    pub sum_us: u64,
    pub count: u64,
}

impl Histogram {
    /// Count `us` (negative values, a clock that stepped back, count as 0).
    pub fn observe(&mut self, bounds: &[u64; BUCKETS], us: i64) {
        let us = u64::try_from(us).unwrap_or(0);
        let i = bounds.iter().position(|&b| us <= b).unwrap_or(BUCKETS);
        self.buckets[i] = self.buckets[i].wrapping_add(1);
        self.sum_us = self.sum_us.wrapping_add(us);
        self.count = self.count.wrapping_add(1);
    }

    pub fn add(&mut self, other: &Histogram) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a = a.wrapping_add(b);
        }
        self.sum_us = self.sum_us.wrapping_add(other.sum_us);
        self.count = self.count.wrapping_add(other.count);
    }

    /// Prometheus' `_bucket` values: observations at or below each bound,
    /// then `+Inf` (which equals `count`).
    pub fn cumulative(&self) -> [u64; BUCKETS + 1] {
        let mut out = [0; BUCKETS + 1];
        let mut total = 0u64;
        for (o, b) in out.iter_mut().zip(self.buckets) {
            total = total.wrapping_add(b);
            *o = total;
        }
        out
    }
}

/// What happened in one database: since the server started (the shared
/// copy), or in the current transaction (a backend's pending copy).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub struct DbCounters {
    /// Runs that ended, by [`ENDINGS`].
    pub ended: [u64; ENDINGS.len()],
    /// Commands an executor began to run.
    pub started: u64,
    /// Runs handed to an idle executor of the pool.
    pub pool_hits: u64,
    /// Executors started for a run (a new process and connection).
    pub cold_starts: u64,
    /// Passes of the database's scheduler.
    pub scheduler_passes: u64,
    /// Due (scheduled time, `start_at`, or submit) → start, of runs that started.
    pub start_lag: Histogram,
    /// Start → end, of runs that started.
    pub duration: Histogram,
}

impl DbCounters {
    /// A run ended with `status`; with its start lag and duration if it
    /// started. A status that is not an ending is not counted.
    pub fn run_ended(&mut self, status: RunStatus, lag_us: Option<i64>, duration_us: Option<i64>) {
        let Some(i) = ENDINGS.iter().position(|&s| s == status) else {
            return;
        };
        self.ended[i] = self.ended[i].wrapping_add(1);
        if let Some(lag) = lag_us {
            self.start_lag.observe(&LAG_BOUNDS_US, lag);
        }
        if let Some(d) = duration_us {
            self.duration.observe(&DURATION_BOUNDS_US, d);
        }
    }

    /// Everything `other` counted, added to this.
    pub fn add(&mut self, other: &DbCounters) {
        for (a, b) in self.ended.iter_mut().zip(other.ended) {
            *a = a.wrapping_add(b);
        }
        self.started = self.started.wrapping_add(other.started);
        self.pool_hits = self.pool_hits.wrapping_add(other.pool_hits);
        self.cold_starts = self.cold_starts.wrapping_add(other.cold_starts);
        self.scheduler_passes = self.scheduler_passes.wrapping_add(other.scheduler_passes);
        self.start_lag.add(&other.start_lag);
        self.duration.add(&other.duration);
    }

    pub fn is_empty(&self) -> bool {
        *self == DbCounters::default()
    }

    /// Runs that ended with `status` (0 for a status that is not an ending).
    pub fn ended_with(&self, status: RunStatus) -> u64 {
        ENDINGS
            .iter()
            .position(|&s| s == status)
            .map_or(0, |i| self.ended[i])
    }
}

/// A bound in seconds, as Prometheus' `le` label and `jobs.metrics` show it.
pub fn bound_seconds(us: u64) -> f64 {
    us as f64 / 1e6
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_observation_lands_in_the_first_bucket_at_or_above_it() {
        let mut h = Histogram::default();
        h.observe(&LAG_BOUNDS_US, 1_000); // exactly the first bound
        h.observe(&LAG_BOUNDS_US, 1_001);
        h.observe(&LAG_BOUNDS_US, 400_000_000); // above all: +Inf
        h.observe(&LAG_BOUNDS_US, -5); // clock stepped back: 0
        assert_eq!(h.buckets[0], 2);
        assert_eq!(h.buckets[1], 1);
        assert_eq!(h.buckets[BUCKETS], 1);
        assert_eq!(h.count, 4);
        assert_eq!(h.sum_us, 1_000 + 1_001 + 400_000_000);
        assert_eq!(h.cumulative(), [2, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4]);
    }

    #[test]
    fn endings_count_by_status_and_other_statuses_do_not_count() {
        let mut c = DbCounters::default();
        c.run_ended(RunStatus::Failed, Some(2_000), Some(10));
        c.run_ended(RunStatus::Cancelled, None, None);
        c.run_ended(RunStatus::Running, Some(1), Some(1));
        assert_eq!(c.ended_with(RunStatus::Failed), 1);
        assert_eq!(c.ended_with(RunStatus::Cancelled), 1);
        assert_eq!(c.ended_with(RunStatus::Running), 0);
        assert_eq!(c.start_lag.count, 1);
        assert_eq!(c.duration.count, 1);
        assert!(!c.is_empty());
        assert!(DbCounters::default().is_empty());
    }

    #[test]
    fn bounds_rise_strictly() {
        for b in [LAG_BOUNDS_US, DURATION_BOUNDS_US] {
            assert!(b.windows(2).all(|w| w[0] < w[1]));
        }
        assert_eq!(bound_seconds(5_000), 0.005);
    }

    proptest! {
        /// Adding what two transactions counted is counting both in one:
        /// the shared counters end the same whichever way they commit.
        #[test]
        fn adding_is_counting_together(
            a in prop::collection::vec((0usize..6, proptest::option::of(-10i64..400_000_000), proptest::option::of(0i64..4_000_000_000)), 0..40),
            b in prop::collection::vec((0usize..6, proptest::option::of(-10i64..400_000_000), proptest::option::of(0i64..4_000_000_000)), 0..40),
        ) {
            let count = |evs: &[(usize, Option<i64>, Option<i64>)], c: &mut DbCounters| {
                for &(s, lag, d) in evs {
                    c.run_ended(ENDINGS[s], lag, d);
                }
            };
            let (mut x, mut y, mut both) = (DbCounters::default(), DbCounters::default(), DbCounters::default());
            count(&a, &mut x);
            count(&b, &mut y);
            count(&a, &mut both);
            count(&b, &mut both);
            x.add(&y);
            prop_assert_eq!(x, both);
            // Cumulative buckets never fall and end at the count.
            let cum = both.start_lag.cumulative();
            prop_assert!(cum.windows(2).all(|w| w[0] <= w[1]));
            prop_assert_eq!(cum[BUCKETS], both.start_lag.count);
            prop_assert_eq!(both.ended.iter().sum::<u64>(), (a.len() + b.len()) as u64);
        }
    }
}
