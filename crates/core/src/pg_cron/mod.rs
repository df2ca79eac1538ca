//! pg_cron 1.6's schedule text, checked as pg_cron checks it, and the
//! pg_jobs schedule text with the same meaning ([`to_pg_jobs`]).
//!
//! pg_cron reads a schedule with Vixie cron's one-character-at-a-time
//! reader (its `src/entry.c`, `src/misc.c`, `include/cron.h`) and, only if
//! that fails, as `N second[s]` (`src/job_metadata.c`). What pg_cron
//! refuses is refused here, and what it accepts means here what it means
//! to pg_cron, with one policy on top: pg_jobs never gives a silently wrong
//! result. Where pg_cron silently drops part of the text, or gives it a
//! meaning no one writing it can have intended, the schedule is refused
//! with a message naming the problem, so that the user sees it and fixes
//! the text, instead of a job quietly running at other times than they
//! think. pg_cron's rules, and what we do where we differ:
//!
//! * blank lines and `#` comment lines before the entry are skipped; fields
//!   are separated by spaces or tabs (not line breaks). Kept.
//! * pg_cron ignores everything after the fifth field, so `*/10 * * * * *`
//!   (six fields, as pg_jobs and Quartz write seconds first) silently means
//!   every 10 minutes. **Refused**: a token after the fifth field shaped
//!   like a field (digits, `*`, `/`, `,`, `-`, `?`, `#`, `L`, month and
//!   day names: `2024`, `*`, `?`) as "six fields"; any other non-blank
//!   text (`* * * * * x`, `* * * * *;`, `0 3 * * 1 # nightly`, a second
//!   line) as trailing characters after the five fields.
//! * pg_cron ignores what follows a complete item up to the next blank:
//!   `*/5;x` is `*/5`, `1-5.3` is `1-5`, and Quartz's "second Monday"
//!   `MON#2` is every Monday. **Refused**, naming the field and the
//!   characters. (White space such as a `\r` before a line break is not
//!   text and passes, as it does in pg_cron.)
//! * an item is `*`, `N`, `A-B`, `*/S` or `A-B/S`; `N/S` is refused; a step
//!   is 1 up to the field's maximum; names (`Jan`..`Dec`, `Sun`..`Sat`, any
//!   case, three letters) only in month and day-of-week, `Sun` is 0, `7` is
//!   Sunday too. Kept.
//! * pg_cron accepts a backwards range `A-B` (A > B): with a step it
//!   selects nothing; without one, its byte-wise bit setter selects A to
//!   the end of A's 8-bit block and the start of B's block to B (`50-10`
//!   is 8-10,50-55), or nothing when both share a block (`5-1`,
//!   `Mon-Sun`). **Refused**; the message says what pg_cron would select.
//! * `$` (last day of the month) only as the whole day-of-month field. Kept.
//! * pg_cron reads macros in lower case only and ignores what follows the
//!   word. Here macros are read in **any case** (`@Daily`: the meaning is
//!   plain), and text after the word is **refused** as trailing
//!   characters. `@restart` stays an alias of `@reboot`.
//! * `@yearly`/`@annually`: pg_cron 1.6 sets month 0 for them, below the
//!   month range (a bug), so it sets no month and never runs them. Here
//!   they mean `0 0 1 1 *`, as in every other cron and in pg_jobs.
//! * when day-of-month and day-of-week are both restricted a day matching
//!   either runs; a field *beginning* with `*` counts as unrestricted. Kept.
//! * a cron schedule of 1000 bytes or more is refused (pg_cron's buffer);
//!   the `N seconds` form has no limit. Kept.
//!
//! Where the text means the same to [`Schedule::parse`] it is returned
//! trimmed, so that what the user typed is what they see; otherwise the
//! same items are written in pg_jobs' grammar. A schedule pg_cron accepts
//! but that can never run (`0 0 31 2 *`) is refused: pg_jobs refuses those.

mod entry;
mod macros;
mod parse;
mod seconds;

use crate::schedule::Schedule;
use entry::Meaning;
use parse::{parse_cron, CronRefusal, Parsed};
use seconds::seconds_interval;

/// Why [`to_pg_jobs`] refused a schedule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgCronScheduleError {
    /// pg_cron refuses the text, or pg_jobs does where pg_cron would
    /// silently drop part of it or change its meaning.
    #[error("invalid schedule {text:?}: {problem}")]
    Refused { text: String, problem: String },
    /// pg_cron accepts the text but never runs it; pg_jobs refuses those.
    #[error("invalid schedule {text:?}: pg_cron accepts it but it can never run; pg_jobs refuses schedules that never run")]
    NeverRuns { text: String },
    /// pg_cron accepts the text but pg_jobs' grammar has nothing meaning the
    /// same. Not expected: the property tests look for such a text.
    #[error("invalid schedule {text:?}: pg_cron accepts it, but no pg_jobs schedule means the same")]
    Untranslatable { text: String },
}

/// pg_cron's schedule text checked as pg_cron checks it (and refused where
/// pg_cron would silently change its meaning), and the pg_jobs schedule
/// text with the same meaning.
pub fn to_pg_jobs(text: &str) -> Result<String, PgCronScheduleError> {
    let refused = |problem: String| PgCronScheduleError::Refused {
        text: text.to_owned(),
        problem,
    };
    // PostgreSQL text cannot hold NUL, so pg_cron never sees one.
    if text.contains('\0') {
        return Err(refused("it contains a NUL character".into()));
    }
    let parsed = match parse_cron(text) {
        Ok(parsed) => parsed,
        // A whole entry, then text: not meant as an interval.
        Err(CronRefusal {
            problem,
            after_entry: true,
        }) => return Err(refused(problem)),
        Err(CronRefusal {
            problem: cron_problem,
            ..
        }) => match seconds_interval(text) {
            Ok(n) => Parsed::Seconds(n),
            Err(Some(problem)) => return Err(refused(problem)),
            Err(None) => return Err(refused(cron_problem)),
        },
    };
    let trimmed = text.trim();
    match parsed {
        Parsed::Reboot => Ok(match Schedule::parse(trimmed) {
            Ok(Schedule::Reboot) => trimmed.to_owned(),
            _ => "@reboot".to_owned(),
        }),
        Parsed::Seconds(n) => Ok(match Schedule::parse(trimmed) {
            Ok(Schedule::Interval { period_secs }) if period_secs == i64::from(n) => trimmed.to_owned(),
            _ => format!("{n} seconds"),
        }),
        Parsed::Cron(entry) => {
            let want = entry.meaning();
            if want.never_runs() {
                return Err(PgCronScheduleError::NeverRuns {
                    text: text.to_owned(),
                });
            }
            if means(trimmed, &want) {
                return Ok(trimmed.to_owned());
            }
            let rewritten = entry.pg_jobs_text();
            if means(&rewritten, &want) {
                return Ok(rewritten);
            }
            Err(PgCronScheduleError::Untranslatable {
                text: text.to_owned(),
            })
        }
    }
}

/// Whether pg_jobs reads `text` as a five-field cron schedule meaning `want`.
fn means(text: &str, want: &Meaning) -> bool {
    match Schedule::parse(text) {
        Ok(Schedule::Cron(expr)) => !expr.has_seconds && Meaning::of_pg_jobs(&expr).same_as(want),
        _ => false,
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod proptests;
