//! When a cron expression next fires.
//!
//! Most searches are a walk over the calendar in the zone's civil time:
//! month, day, hour, minute and second each jump to the next value of its
//! field's set (a bit mask, so a jump is a shift and a count of trailing
//! zeros). That is exact whenever the walk's start and its answer are both
//! civil times that occur exactly once in the zone: then the instant of the
//! answer is unique, and any civil times skipped or repeated by a DST
//! change in between matched nothing (else the walk would have stopped on
//! one, which is not a unique civil time).
//!
//! The other searches (starting in, or ending on, a civil time a DST change
//! skips or repeats: a few hours a year in zones that have DST) go to
//! croner, whose DST rules (see the module above) are the ones documented.
//! croner's parsed expression is large (a 5,000-entry year table, ~5.7 KB)
//! and slow to make (~14 µs), so it is made only then, and the last few are
//! kept per thread.

use super::{CronError, CronExpr};
use jiff::civil::{Date, DateTime};
use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::Timestamp;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// How far ahead a walk looks. A leap day on a given weekday can be 40
/// years away across a century that is not a leap year; 400 years is the
/// Gregorian calendar's whole cycle.
const HORIZON_YEARS: i16 = 400;

/// How many croner parses a thread keeps (the expressions that fired
/// recently near a DST change).
const CRONER_KEPT: usize = 64;

/// The smallest value of `set` in `from..=max`.
fn next_in(set: u64, from: u32, max: u32) -> Option<u32> {
    if from > max {
        return None;
    }
    let v = from + (set >> from).trailing_zeros();
    (v <= max).then_some(v)
}

impl CronExpr {
    fn day_matches(&self, d: Date) -> bool {
        let has = |set: u64, v: i8| set & (1u64 << v) != 0;
        let dom = has(self.sets[3], d.day()) || (self.dom_last && d.day() == d.days_in_month());
        let dow = has(self.sets[5], d.weekday().to_sunday_zero_offset());
        if self.days_and {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The first civil date-time at or after `from` that matches, within
    /// [`HORIZON_YEARS`].
    pub(super) fn first_match_from(&self, from: DateTime) -> Option<DateTime> {
        let limit = from.year().saturating_add(HORIZON_YEARS);
        let mut date = from.date();
        let (mut h, mut m, mut s) = (from.hour() as u32, from.minute() as u32, from.second() as u32);
        loop {
            if date.year() > limit {
                return None;
            }
            let month = date.month() as u32;
            if self.sets[4] & (1 << month) == 0 {
                date = match next_in(self.sets[4], month + 1, 12) {
                    Some(mo) => Date::new(date.year(), mo as i8, 1).ok()?,
                    None => {
                        let first = next_in(self.sets[4], 1, 12)?;
                        Date::new(date.year().checked_add(1)?, first as i8, 1).ok()?
                    }
                };
                (h, m, s) = (0, 0, 0);
                continue;
            }
            if !self.day_matches(date) {
                date = date.tomorrow().ok()?;
                (h, m, s) = (0, 0, 0);
                continue;
            }
            let Some(hh) = next_in(self.sets[2], h, 23) else {
                date = date.tomorrow().ok()?;
                (h, m, s) = (0, 0, 0);
                continue;
            };
            if hh != h {
                (h, m, s) = (hh, 0, 0);
            }
            let Some(mm) = next_in(self.sets[1], m, 59) else {
                (h, m, s) = (h + 1, 0, 0);
                continue;
            };
            if mm != m {
                (m, s) = (mm, 0);
            }
            let Some(ss) = next_in(self.sets[0], s, 59) else {
                (m, s) = (m + 1, 0);
                continue;
            };
            return Some(date.at(h as i8, m as i8, ss as i8, 0));
        }
    }

    /// The first firing strictly after `after`, in time zone `tz`.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        // The next whole second after `after` (which may have a fraction).
        let mut second = after.as_second();
        if after.subsec_nanosecond() < 0 {
            second -= 1;
        }
        let from = tz.to_datetime(Timestamp::from_second(second.checked_add(1)?).ok()?);
        let once = |dt: DateTime| match tz.to_ambiguous_timestamp(dt).offset() {
            AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(dt).ok(),
            _ => None,
        };
        if once(from).is_some() {
            match self.first_match_from(from) {
                None => return None,
                Some(found) => {
                    if let Some(t) = once(found) {
                        return Some(t);
                    }
                }
            }
        }
        self.croner_next_after(after, tz)
    }

    /// croner's answer, for a search that touches a DST change.
    fn croner_next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let cron = croner_for(self).ok()?;
        cron.find_next_occurrence(&after.to_zoned(tz.clone()), false)
            .ok()
            .map(|z| z.timestamp())
    }
}

/// croner's parses by (croner's text, day rule).
type Kept = HashMap<(Box<str>, bool), Rc<croner::Cron>>;

thread_local! {
    static CRONER: RefCell<Kept> = RefCell::new(HashMap::new());
}

/// croner's parse of `expr`, from the thread's few kept ones or made now.
fn croner_for(expr: &CronExpr) -> Result<Rc<croner::Cron>, CronError> {
    let text = expr.croner_text()?;
    let key = (text.into_boxed_str(), expr.days_and);
    if let Some(c) = CRONER.with_borrow(|kept| kept.get(&key).cloned()) {
        return Ok(c);
    }
    let cron = Rc::new(
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Required)
            .year(croner::parser::Year::Disallowed)
            .dom_and_dow(expr.days_and)
            .build()
            .parse(&key.0)
            .map_err(|e| CronError::Syntax(format!("invalid cron expression: {e}")))?,
    );
    CRONER.with_borrow_mut(|kept| {
        // Forgetting them all is enough: what fires near a DST change comes
        // back within the hour and costs one parse.
        if kept.len() >= CRONER_KEPT {
            kept.clear();
        }
        kept.insert(key, cron.clone());
    });
    Ok(cron)
}

/// That croner reads `expr` (a text is stored only if so).
pub(super) fn croner_checked(expr: &CronExpr) -> Result<(), CronError> {
    croner_for(expr).map(|_| ())
}

/// croner's own answer, for the tests that hold the walk to it.
#[cfg(test)]
pub(super) fn croner_reference(expr: &CronExpr, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
    expr.croner_next_after(after, tz)
}
