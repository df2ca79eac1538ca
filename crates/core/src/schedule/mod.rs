//! What a job's `schedule` text can say, and when it is next due.
//!
//! * a cron expression or macro ([`crate::cron`]);
//! * an interval: `'30 seconds'`, `'5 minutes'`, `'every 2 hours'`
//!   (at least one second). Drift-free: due times are anchor + k·period,
//!   computed from the schedule, never from when the last run ended;
//! * `@reboot`: once each time the scheduler starts after a server start;
//! * a one-off instant (the SQL layer parses timestamptz text and hands us
//!   the instant).

use crate::cron::{CronError, CronExpr};
use jiff::tz::TimeZone;
use jiff::Timestamp;

mod due;
pub mod wake;
pub use due::{first_due, next_due_after_firing, prewarm_at, FirstDue, PREWARM_LEAD_MS};

/// Cheap to clone: a parsed cron expression is shared, so a scheduler
/// holding 100,000 jobs keeps one parse per distinct text, not per job.
#[derive(Debug, Clone)]
pub enum Schedule {
    Cron(std::sync::Arc<CronExpr>),
    /// Every `period_secs`, anchored at the job's creation.
    Interval {
        period_secs: i64,
    },
    Reboot,
    Once(Timestamp),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error(transparent)]
    Cron(#[from] CronError),
    #[error("{0}")]
    Interval(String),
}

/// Longest interval we accept: a year. Longer ones belong in cron.
const MAX_INTERVAL_SECS: i64 = 366 * 24 * 3600;

fn unit_millis(unit: &str) -> Option<f64> {
    Some(match unit {
        "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => 1.0,
        "s" | "sec" | "secs" | "second" | "seconds" => 1e3,
        "m" | "min" | "mins" | "minute" | "minutes" => 6e4,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3.6e6,
        "d" | "day" | "days" => 8.64e7,
        _ => return None,
    })
}

/// `Some` if `text` is shaped like an interval (`[every] N unit`), with
/// the period in whole seconds or why it is not one.
fn parse_interval(text: &str) -> Option<Result<i64, ScheduleError>> {
    let lower = text.trim().to_ascii_lowercase();
    let body = lower
        .strip_prefix("every ")
        .map(str::trim_start)
        .unwrap_or(&lower);
    let number_end = body
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || c == '.' || (i == 0 && c == '-')))
        .map_or(body.len(), |(i, _)| i);
    let number = &body[..number_end];
    if !number.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    let per = unit_millis(body[number_end..].trim())?;
    let err = |why: &str| {
        Some(Err(ScheduleError::Interval(format!(
            "interval \"{}\" {why}",
            text.trim()
        ))))
    };
    let Ok(n) = number.parse::<f64>() else {
        return err("is not a number of units");
    };
    // Rounded to a microsecond: 0.1 minutes is 6000 ms, not 6000.000000000001.
    let ms = (n * per * 1000.0).round() / 1000.0;
    if ms < 1000.0 {
        err("is shorter than 1 second")
    } else if ms > MAX_INTERVAL_SECS as f64 * 1000.0 {
        err("is longer than 366 days; use a cron expression")
    } else if ms % 1000.0 != 0.0 {
        err("is not a whole number of seconds")
    } else {
        Some(Ok((ms / 1000.0) as i64))
    }
}

impl Schedule {
    /// Parse everything but one-off instants (those are timestamptz text,
    /// which PostgreSQL parses).
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        Schedule::parse_with(text, CronExpr::parse)
    }

    /// [`Schedule::parse`] for a text that passed it when it was stored
    /// (the scheduler's load): skips the check that costs the most
    /// ([`CronExpr::parse_stored`]).
    pub fn parse_stored(text: &str) -> Result<Schedule, ScheduleError> {
        Schedule::parse_with(text, CronExpr::parse_stored)
    }

    fn parse_with(
        text: &str,
        cron: fn(&str) -> Result<CronExpr, CronError>,
    ) -> Result<Schedule, ScheduleError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(ScheduleError::Interval("the schedule is empty".into()));
        }
        if t.eq_ignore_ascii_case("@reboot") {
            return Ok(Schedule::Reboot);
        }
        if let Some(r) = parse_interval(t) {
            return r.map(|period_secs| Schedule::Interval { period_secs });
        }
        Ok(Schedule::Cron(std::sync::Arc::new(cron(t)?)))
    }

    /// When the job is next due strictly after `after`. `anchor` is the
    /// start of an interval's grid (the job's creation). `None`: never
    /// again (a one-off that has passed, `@reboot` outside start-up).
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone, anchor: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Cron(c) => c.next_after(after, tz),
            Schedule::Interval { period_secs } => {
                let p = *period_secs as i128 * 1_000_000_000;
                let since = after.as_nanosecond() - anchor.as_nanosecond();
                let k = if since < 0 { 0 } else { since / p + 1 };
                Timestamp::from_nanosecond(anchor.as_nanosecond() + k * p).ok()
            }
            Schedule::Once(t) => (*t > after).then_some(*t),
            Schedule::Reboot => None,
        }
    }
}

impl Schedule {
    /// The latest instant the schedule was due in the `window` before
    /// `now` (after `now - window`, at or before `now`), if any: the
    /// instant a scheduler taking over the job may have to run because the
    /// one it replaces has not started it yet (`jobs.import_pg_cron`).
    pub fn latest_due_within(
        &self,
        now: Timestamp,
        window: jiff::SignedDuration,
        tz: &TimeZone,
        anchor: Timestamp,
    ) -> Option<Timestamp> {
        let mut t = now.checked_sub(window).ok()?;
        let mut latest = None;
        // Bounded: a schedule due more often than every second is not one
        // this is asked about (pg_cron's are at most every second).
        for _ in 0..=window.as_secs().max(0) {
            match self.next_after(t, tz, anchor) {
                Some(due) if due <= now => {
                    latest = Some(due);
                    t = due;
                }
                _ => break,
            }
        }
        latest
    }
}

/// Moved to [`crate::run::retry`] (the retry decision); kept here for
/// the shell's `pg_jobs_core::schedule::retry_delay`.
pub use crate::run::retry::retry_delay;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn latest_due_within_finds_the_last_instant_of_the_window() {
        let utc = TimeZone::UTC;
        let anchor = ts("2026-01-01T00:00:00Z");
        let every_minute = Schedule::parse("* * * * *").unwrap();
        let minute = jiff::SignedDuration::from_secs(60);
        assert_eq!(
            every_minute.latest_due_within(ts("2026-03-01T10:20:03Z"), minute, &utc, anchor),
            Some(ts("2026-03-01T10:20:00Z"))
        );
        // At the instant itself: it counts.
        assert_eq!(
            every_minute.latest_due_within(ts("2026-03-01T10:20:00Z"), minute, &utc, anchor),
            Some(ts("2026-03-01T10:20:00Z"))
        );
        let hourly = Schedule::parse("0 * * * *").unwrap();
        assert_eq!(
            hourly.latest_due_within(ts("2026-03-01T10:20:03Z"), minute, &utc, anchor),
            None
        );
        let every_ten_s = Schedule::parse("10 seconds").unwrap();
        assert_eq!(
            every_ten_s.latest_due_within(ts("2026-01-01T00:01:05Z"), minute, &utc, anchor),
            Some(ts("2026-01-01T00:01:00Z"))
        );
        assert_eq!(
            Schedule::Reboot.latest_due_within(ts("2026-01-01T00:01:05Z"), minute, &utc, anchor),
            None
        );
    }

    #[test]
    fn bad_intervals_say_what_is_wrong() {
        let msg = |t: &str| Schedule::parse(t).unwrap_err().to_string();
        assert_eq!(msg(""), "the schedule is empty");
        assert_eq!(msg("  "), "the schedule is empty");
        assert_eq!(
            msg("-5 seconds"),
            "interval \"-5 seconds\" is shorter than 1 second"
        );
        assert_eq!(
            msg("500 milliseconds"),
            "interval \"500 milliseconds\" is shorter than 1 second"
        );
        assert_eq!(
            msg("1.5 seconds"),
            "interval \"1.5 seconds\" is not a whole number of seconds"
        );
        assert_eq!(
            msg("1.2.3 minutes"),
            "interval \"1.2.3 minutes\" is not a number of units"
        );
        assert_eq!(
            msg("400 days"),
            "interval \"400 days\" is longer than 366 days; use a cron expression"
        );
        assert!(matches!(
            Schedule::parse("2000 ms"),
            Ok(Schedule::Interval { period_secs: 2 })
        ));
        assert!(matches!(
            Schedule::parse("every 1.5 minutes"),
            Ok(Schedule::Interval { period_secs: 90 })
        ));
        assert!(matches!(
            Schedule::parse("0.1 minutes"),
            Ok(Schedule::Interval { period_secs: 6 })
        ));
    }

    #[test]
    fn intervals_parse_in_many_spellings() {
        for (text, secs) in [
            ("30 seconds", 30),
            ("1 second", 1),
            ("5 minutes", 300),
            ("every 2 hours", 7200),
            ("Every 10s", 10),
            ("1 day", 86_400),
            ("15min", 900),
        ] {
            match Schedule::parse(text).unwrap() {
                Schedule::Interval { period_secs } => assert_eq!(period_secs, secs, "{text}"),
                other => panic!("{text} parsed as {other:?}"),
            }
        }
        assert_eq!(
            Schedule::parse("0 seconds").unwrap_err().to_string(),
            "interval \"0 seconds\" is shorter than 1 second"
        );
        assert!(Schedule::parse("400 days")
            .unwrap_err()
            .to_string()
            .contains("longer than 366 days"));
        assert!(matches!(Schedule::parse("@reboot").unwrap(), Schedule::Reboot));
        assert!(matches!(
            Schedule::parse("*/5 * * * *").unwrap(),
            Schedule::Cron(_)
        ));
        // Not an interval, not cron: the cron error explains.
        assert!(Schedule::parse("5 fortnights").is_err());
    }

    #[test]
    fn intervals_are_drift_free() {
        let s = Schedule::Interval { period_secs: 10 };
        let anchor = ts("2026-01-01T00:00:03Z");
        let utc = TimeZone::UTC;
        // However late we look, the next due time stays on the grid.
        assert_eq!(
            s.next_after(ts("2026-01-01T00:00:03Z"), &utc, anchor),
            Some(ts("2026-01-01T00:00:13Z"))
        );
        assert_eq!(
            s.next_after(ts("2026-01-01T00:00:13.9Z"), &utc, anchor),
            Some(ts("2026-01-01T00:00:23Z"))
        );
        assert_eq!(
            s.next_after(ts("2026-01-01T01:00:00Z"), &utc, anchor),
            Some(ts("2026-01-01T01:00:03Z"))
        );
        assert_eq!(
            s.next_after(ts("2025-12-31T00:00:00Z"), &utc, anchor),
            Some(anchor)
        );
    }

    #[test]
    fn one_offs_fire_once() {
        let at = ts("2026-06-01T12:00:00Z");
        let s = Schedule::Once(at);
        assert_eq!(
            s.next_after(ts("2026-01-01T00:00:00Z"), &TimeZone::UTC, at),
            Some(at)
        );
        assert_eq!(s.next_after(at, &TimeZone::UTC, at), None);
    }

    proptest! {
        #[test]
        fn interval_next_is_on_the_grid_and_strictly_later(
            period in 1i64..100_000, anchor_s in 0i64..2_000_000_000, after_off in -1_000_000i64..10_000_000, nanos in 0i32..1_000_000_000
        ) {
            let s = Schedule::Interval { period_secs: period };
            let anchor = Timestamp::from_second(anchor_s).unwrap();
            let after = Timestamp::new(anchor_s + after_off, nanos).unwrap();
            let next = s.next_after(after, &TimeZone::UTC, anchor).unwrap();
            prop_assert!(next > after);
            let since = next.as_second() - anchor_s;
            prop_assert!(since >= 0 && since % period == 0 && next.subsec_nanosecond() == 0);
            // No grid point was skipped.
            prop_assert!(next.as_second() - period <= after.as_second() || since == 0);
        }
    }
}
