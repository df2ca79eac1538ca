//! When a job is first due after the scheduler loads it, when it is due
//! after it fired, and when to start executors ahead of a due instant.
//!
//! A scheduler loads a job at start-up, after a promotion, or when the job
//! changed. What it then does depends on the kind of schedule: a one-off
//! fires once, ever; `@reboot` once per server start; a recurring schedule
//! resumes from now (missed runs are not replayed), except that a
//! `catch_up` job that missed a due time runs once at once.

use super::Schedule;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// What the scheduler knows about a job when it loads it.
#[derive(Debug, Clone, Copy)]
pub struct FirstDue<'a> {
    pub now: Timestamp,
    pub tz: &'a TimeZone,
    /// The start of an interval's grid: the job's creation.
    pub anchor: Timestamp,
    /// The latest `scheduled_for` among the job's runs (fired, retried or
    /// `run_now`), if any.
    pub last_due: Option<Timestamp>,
    pub catch_up: bool,
    /// `@reboot` jobs are still to run in this server life (the first
    /// scheduler of the database since the server started).
    pub reboot_pending: bool,
    /// When the server started: `@reboot` jobs created after it wait for
    /// the next start.
    pub server_started: Timestamp,
}

/// The job's first due time after a load (`None`: never again).
///
/// A one-off is done once a run was due at or after its instant. (pg_jobs
/// 0.3 took any run as done, so a `jobs.run_now` of a one-off before its
/// instant cancelled the instant at the next full reload.)
pub fn first_due(schedule: &Schedule, f: &FirstDue) -> Option<Timestamp> {
    match schedule {
        Schedule::Once(at) => f.last_due.is_none_or(|l| l < *at).then_some(*at),
        Schedule::Reboot => (f.reboot_pending && f.anchor < f.server_started).then_some(f.now),
        s => {
            let missed = f.catch_up
                && f.last_due
                    .and_then(|l| s.next_after(l, f.tz, f.anchor))
                    .is_some_and(|t| t < f.now);
            if missed {
                Some(f.now)
            } else {
                s.next_after(f.now, f.tz, f.anchor)
            }
        }
    }
}

/// The job fired for `due`; when is it due next? The next due time after
/// `due`, unless that has passed too (the scheduler fell behind): then the
/// first one after `now`, so missed runs are not replayed one per pass.
pub fn next_due_after_firing(
    schedule: &Schedule,
    due: Timestamp,
    now: Timestamp,
    tz: &TimeZone,
    anchor: Timestamp,
) -> Option<Timestamp> {
    match schedule.next_after(due, tz, anchor) {
        Some(t) if t <= now => schedule.next_after(now, tz, anchor),
        next => next,
    }
}

/// How long before a due instant executors are started ahead of it (a cold
/// executor is ready in well under this on a loaded 2-core machine).
pub const PREWARM_LEAD_MS: i64 = 300;

/// When to start executors ahead of due instant `t`: [`PREWARM_LEAD_MS`]
/// before it, if the pool would be cold by then — no idle executor now
/// (`pool_warm` false), or `t` further away than idle executors live
/// (`idle_timeout_ms`). A cold executor's fork and connection cost each job
/// due at `t` several ms (measured: 50 jobs at one instant, p99 start lag
/// 40 ms cold vs 13 ms warm). `None`: not needed, or already done for `t`
/// (`prewarmed_for`), or idle executors do not live long enough to wait.
pub fn prewarm_at(
    t: Timestamp,
    now: Timestamp,
    prewarmed_for: Option<Timestamp>,
    idle_timeout_ms: i64,
    pool_warm: bool,
) -> Option<Timestamp> {
    if prewarmed_for == Some(t) || idle_timeout_ms < 2 * PREWARM_LEAD_MS {
        return None;
    }
    let ahead_ms = (t.as_millisecond()).saturating_sub(now.as_millisecond());
    if pool_warm && ahead_ms < idle_timeout_ms - PREWARM_LEAD_MS {
        return None;
    }
    t.checked_sub(SignedDuration::from_millis(PREWARM_LEAD_MS)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    static UTC: TimeZone = TimeZone::UTC;

    fn facts(now: &str) -> FirstDue<'static> {
        FirstDue {
            now: ts(now),
            tz: &UTC,
            anchor: ts("2026-01-01T00:00:00Z"),
            last_due: None,
            catch_up: false,
            reboot_pending: false,
            server_started: ts("2026-01-01T00:00:00Z"),
        }
    }

    #[test]
    fn one_offs_fire_once_even_late() {
        let at = ts("2026-01-02T00:00:00Z");
        let once = Schedule::Once(at);
        assert_eq!(first_due(&once, &facts("2026-01-01T12:00:00Z")), Some(at));
        // Late (the server was down at `at`): it fires now-ish, at `at`.
        assert_eq!(first_due(&once, &facts("2026-01-03T00:00:00Z")), Some(at));
        let fired = FirstDue {
            last_due: Some(at),
            ..facts("2026-01-03T00:00:00Z")
        };
        assert_eq!(first_due(&once, &fired), None);
        let run_now_before = FirstDue {
            last_due: Some(ts("2026-01-01T06:00:00Z")),
            ..facts("2026-01-01T12:00:00Z")
        };
        assert_eq!(
            first_due(&once, &run_now_before),
            Some(at),
            "run_now does not use up the instant"
        );
    }

    #[test]
    fn reboot_runs_once_per_server_start_for_jobs_that_existed() {
        let f = FirstDue {
            reboot_pending: true,
            anchor: ts("2025-12-31T00:00:00Z"),
            ..facts("2026-01-01T00:00:05Z")
        };
        assert_eq!(first_due(&Schedule::Reboot, &f), Some(f.now));
        let restarted_scheduler = FirstDue {
            reboot_pending: false,
            ..f
        };
        assert_eq!(first_due(&Schedule::Reboot, &restarted_scheduler), None);
        let created_since = FirstDue {
            anchor: ts("2026-01-01T00:00:01Z"),
            ..f
        };
        assert_eq!(first_due(&Schedule::Reboot, &created_since), None);
    }

    #[test]
    fn recurring_jobs_resume_from_now_unless_they_catch_up() {
        let every_hour = Schedule::Interval { period_secs: 3600 };
        let f = FirstDue {
            last_due: Some(ts("2026-01-01T05:00:00Z")),
            ..facts("2026-01-01T09:30:00Z")
        };
        assert_eq!(first_due(&every_hour, &f), Some(ts("2026-01-01T10:00:00Z")));
        let catch_up = FirstDue { catch_up: true, ..f };
        assert_eq!(first_due(&every_hour, &catch_up), Some(f.now));
        let nothing_missed = FirstDue {
            last_due: Some(ts("2026-01-01T09:00:00Z")),
            ..catch_up
        };
        assert_eq!(
            first_due(&every_hour, &nothing_missed),
            Some(ts("2026-01-01T10:00:00Z"))
        );
        let never_ran = FirstDue {
            last_due: None,
            ..catch_up
        };
        assert_eq!(
            first_due(&every_hour, &never_ran),
            Some(ts("2026-01-01T10:00:00Z"))
        );
    }

    #[test]
    fn after_firing_missed_instants_are_skipped() {
        let s = Schedule::Interval { period_secs: 10 };
        let (utc, anchor) = (TimeZone::UTC, ts("2026-01-01T00:00:00Z"));
        let due = ts("2026-01-01T00:00:10Z");
        assert_eq!(
            next_due_after_firing(&s, due, ts("2026-01-01T00:00:10.5Z"), &utc, anchor),
            Some(ts("2026-01-01T00:00:20Z"))
        );
        assert_eq!(
            next_due_after_firing(&s, due, ts("2026-01-01T00:01:05Z"), &utc, anchor),
            Some(ts("2026-01-01T00:01:10Z"))
        );
        assert_eq!(
            next_due_after_firing(&Schedule::Once(due), due, due, &utc, anchor),
            None
        );
    }

    #[test]
    fn prewarm_only_when_the_pool_would_be_cold() {
        let now = ts("2026-01-01T00:00:00Z");
        let t = ts("2026-01-01T00:00:05Z");
        let lead = ts("2026-01-01T00:00:04.7Z");
        assert_eq!(prewarm_at(t, now, None, 60_000, false), Some(lead));
        assert_eq!(
            prewarm_at(t, now, None, 60_000, true),
            None,
            "warm, and stays warm"
        );
        assert_eq!(
            prewarm_at(t, now, None, 4_000, true),
            Some(lead),
            "idle ones retire first"
        );
        assert_eq!(prewarm_at(t, now, Some(t), 60_000, false), None, "done");
        assert_eq!(prewarm_at(t, now, None, 500, false), None, "pool too short-lived");
        assert_eq!(
            prewarm_at(Timestamp::MIN, now, None, 60_000, false),
            None,
            "checked"
        );
    }
}
