//! Cron expressions: 5 fields (minute hour day-of-month month day-of-week)
//! or 6 with a leading seconds field; ranges, lists, steps, month and
//! weekday names, `L`/`$` for the last day of the month, and the macros
//! `@yearly @annually @monthly @weekly @daily @midnight @hourly`.
//!
//! Next-run maths and time zones come from `croner` (on `jiff`); this
//! module adds what croner does not give us:
//! * error messages that name the field, the value and the allowed range
//!   (`minute field: 61 is out of range 0-59`), checked before croner sees
//!   the expression;
//! * Vixie cron's day rule, as pg_cron has it: when day-of-month and
//!   day-of-week are both restricted, a day matching either fires; a field
//!   that *begins with* `*` (also `*/2`) counts as unrestricted, and then a
//!   day must match both. croner's `dom_and_dow` switch gives the AND.
//! * a refusal of expressions that can never fire (`0 0 31 2 *`).
//!
//! DST, as croner does it and we document: a local time that does not exist
//! (spring forward) runs once at the first instant after the gap; a local
//! time that occurs twice (fall back) runs once, at the first; wildcard
//! minutes/hours keep firing through both halves of a repeated hour.

use croner::parser::{CronParser, Seconds, Year};
use jiff::tz::TimeZone;
use jiff::{Timestamp, Zoned};

/// One field of an expression: its name, allowed range, and names.
struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
}

const SECOND: FieldSpec = FieldSpec {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
};
const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
};
const DOM: FieldSpec = FieldSpec {
    name: "day-of-month",
    min: 1,
    max: 31,
    names: &[],
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
    names: &[
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ],
};
const DOW: FieldSpec = FieldSpec {
    name: "day-of-week",
    min: 0,
    max: 7,
    names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"],
};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CronError {
    #[error("{0}")]
    Syntax(String),
    #[error("schedule \"{0}\" never fires")]
    NeverFires(String),
}

/// A parsed, validated cron expression.
#[derive(Debug, Clone)]
pub struct CronExpr {
    /// The expression as given (macros kept), for display.
    pub text: String,
    /// Whether it has a seconds field.
    pub has_seconds: bool,
    /// Which values each field allows, after validation, indexed
    /// second, minute, hour, day-of-month, month, day-of-week (0-6, Sunday 0).
    /// `dom_last` is the `L` flag. Used by tests as an independent matcher.
    pub sets: [u64; 6],
    pub dom_last: bool,
    /// Day-of-month and day-of-week must both match (Vixie's rule).
    pub days_and: bool,
    cron: croner::Cron,
}

fn expand_macro(text: &str) -> Result<&'static str, CronError> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "@yearly" | "@annually" => "0 0 1 1 *",
        "@monthly" => "0 0 1 * *",
        "@weekly" => "0 0 * * 0",
        "@daily" | "@midnight" => "0 0 * * *",
        "@hourly" => "0 * * * *",
        other => {
            return Err(CronError::Syntax(format!(
                "unknown macro \"{other}\" (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @reboot)"
            )))
        }
    })
}

fn value(spec: &FieldSpec, tok: &str) -> Result<u32, String> {
    let up = tok.to_ascii_uppercase();
    if let Some(i) = spec.names.iter().position(|n| *n == up) {
        return Ok(i as u32 + if spec.name == "month" { 1 } else { 0 });
    }
    let v: u32 = tok.parse().map_err(|_| {
        if spec.names.is_empty() {
            format!("{} field: \"{tok}\" is not a number", spec.name)
        } else {
            format!(
                "{} field: \"{tok}\" is not a number or a name ({})",
                spec.name,
                spec.names.join(" ")
            )
        }
    })?;
    if v < spec.min || v > spec.max {
        return Err(format!(
            "{} field: {v} is out of range {}-{}",
            spec.name, spec.min, spec.max
        ));
    }
    Ok(v)
}

/// `text` with each name (a run of letters) replaced by its number, as
/// [`value`] reads it; anything else unchanged.
fn names_to_numbers(spec: &FieldSpec, text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(|c: char| c.is_ascii_alphabetic()) {
        let len = rest[start..]
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len() - start);
        let word = &rest[start..start + len];
        out.push_str(&rest[..start]);
        match value(spec, word) {
            Ok(v) => out.push_str(&v.to_string()),
            Err(_) => out.push_str(word),
        }
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    out
}

/// Validate one field; returns the set of values it allows and the `L` flag.
fn field(spec: &FieldSpec, text: &str) -> Result<(u64, bool), String> {
    let mut set = 0u64;
    let mut last = false;
    for item in text.split(',') {
        if item.is_empty() {
            return Err(format!("{} field: empty list item in \"{text}\"", spec.name));
        }
        if spec.name == "day-of-month" && (item == "L" || item == "l" || item == "$") {
            last = true;
            continue;
        }
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s
                    .parse()
                    .map_err(|_| format!("{} field: step \"{s}\" is not a number", spec.name))?;
                if step == 0 || step > spec.max {
                    return Err(format!(
                        "{} field: step {step} is out of range 1-{}",
                        spec.name, spec.max
                    ));
                }
                (r, step)
            }
            None => (item, 1),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (spec.min, spec.max)
        } else if let Some((a, b)) = range.split_once('-') {
            let (a, b) = (value(spec, a)?, value(spec, b)?);
            if a > b {
                return Err(format!("{} field: range {a}-{b} runs backwards", spec.name));
            }
            (a, b)
        } else {
            let v = value(spec, range)?;
            // "5/15" means from 5 to the end, every 15.
            (v, if step > 1 { spec.max } else { v })
        };
        let mut v = lo;
        while v <= hi {
            set |= 1 << v;
            v += step;
        }
    }
    if spec.name == "day-of-week" && set & (1 << 7) != 0 {
        set = (set | 1) & !(1 << 7); // 7 is Sunday too
    }
    Ok((set, last))
}

impl CronExpr {
    pub fn parse(text: &str) -> Result<CronExpr, CronError> {
        let trimmed = text.trim();
        let body = if trimmed.starts_with('@') {
            expand_macro(trimmed)?
        } else {
            trimmed
        };
        let fields: Vec<&str> = body.split_whitespace().collect();
        let (has_seconds, f) = match fields.len() {
            5 => (false, [&["0"][..], &fields[..]].concat()),
            6 => (true, fields.clone()),
            n => {
                return Err(CronError::Syntax(format!(
                    "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), found {n}"
                )))
            }
        };
        let specs = [&SECOND, &MINUTE, &HOUR, &DOM, &MONTH, &DOW];
        let mut sets = [0u64; 6];
        let mut dom_last = false;
        for (i, spec) in specs.iter().enumerate() {
            let (set, last) = field(spec, f[i]).map_err(CronError::Syntax)?;
            sets[i] = set;
            dom_last |= last;
        }
        let days_and = f[3].starts_with('*') || f[5].starts_with('*');
        // croner knows `L` but not `$`. It swaps names for numbers as text
        // over the whole expression, `-SUN` to `-7` first, so "SUN-SUN"
        // would be every day: it gets the numbers we validated instead.
        let normalized: Vec<String> = f
            .iter()
            .enumerate()
            .map(|(i, s)| match i {
                3 => s.replace('$', "L"),
                4 => names_to_numbers(&MONTH, s),
                5 => names_to_numbers(&DOW, s),
                _ => s.to_string(),
            })
            .collect();
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Disallowed)
            .dom_and_dow(days_and)
            .build()
            .parse(&normalized.join(" "))
            .map_err(|e| CronError::Syntax(format!("invalid cron expression: {e}")))?;
        let expr = CronExpr {
            text: trimmed.to_owned(),
            has_seconds,
            sets,
            dom_last,
            days_and,
            cron,
        };
        // Refuse what can never fire (e.g. 31 February): look ahead 28
        // years, a full cycle of weekdays and leap years.
        if expr.next_after(Timestamp::UNIX_EPOCH, &TimeZone::UTC).is_none() {
            return Err(CronError::NeverFires(expr.text));
        }
        Ok(expr)
    }

    /// The first firing strictly after `after`, in time zone `tz`.
    pub fn next_after(&self, after: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let start = after.to_zoned(tz.clone());
        self.cron
            .find_next_occurrence(&start, false)
            .ok()
            .map(|z: Zoned| z.timestamp())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn next_n(expr: &str, from: &str, tz: &str, n: usize) -> Vec<String> {
        let e = CronExpr::parse(expr).unwrap();
        let tz = TimeZone::get(tz).unwrap();
        let mut t = ts(from);
        (0..n)
            .map(|_| {
                t = e.next_after(t, &tz).unwrap();
                t.to_string()
            })
            .collect()
    }

    #[test]
    fn errors_name_the_field_the_value_and_the_range() {
        let err = |s: &str| CronExpr::parse(s).unwrap_err().to_string();
        assert_eq!(err("61 * * * *"), "minute field: 61 is out of range 0-59");
        assert_eq!(err("0 24 * * *"), "hour field: 24 is out of range 0-23");
        assert_eq!(err("0 0 0 * *"), "day-of-month field: 0 is out of range 1-31");
        assert_eq!(err("0 0 * 13 *"), "month field: 13 is out of range 1-12");
        assert_eq!(err("0 0 * * 8"), "day-of-week field: 8 is out of range 0-7");
        assert_eq!(err("60 0 0 * * *"), "second field: 60 is out of range 0-59");
        assert_eq!(err("* * *"), "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), found 3");
        assert_eq!(err("*/0 * * * *"), "minute field: step 0 is out of range 1-59");
        assert_eq!(err("5-1 * * * *"), "minute field: range 5-1 runs backwards");
        assert_eq!(err("x * * * *"), "minute field: \"x\" is not a number");
        assert_eq!(err("0 0 * FOO *"), "month field: \"FOO\" is not a number or a name (JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC)");
        assert_eq!(err("@fortnightly"), "unknown macro \"@fortnightly\" (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @reboot)");
        assert_eq!(err("0 0 31 2 *"), "schedule \"0 0 31 2 *\" never fires");
        assert_eq!(err("1,,2 * * * *"), "minute field: empty list item in \"1,,2\"");
    }

    #[test]
    fn macros_names_and_last_day() {
        assert_eq!(
            next_n("@daily", "2026-03-01T12:00:00Z", "UTC", 2),
            ["2026-03-02T00:00:00Z", "2026-03-03T00:00:00Z"]
        );
        assert_eq!(
            next_n("@hourly", "2026-03-01T12:00:00Z", "UTC", 1),
            ["2026-03-01T13:00:00Z"]
        );
        assert_eq!(
            next_n("@weekly", "2026-03-01T12:00:00Z", "UTC", 1),
            ["2026-03-08T00:00:00Z"]
        ); // a Sunday
        assert_eq!(
            next_n("@yearly", "2026-03-01T12:00:00Z", "UTC", 1),
            ["2027-01-01T00:00:00Z"]
        );
        assert_eq!(
            next_n("0 9 * JAN-MAR MON", "2026-03-01T12:00:00Z", "UTC", 2),
            ["2026-03-02T09:00:00Z", "2026-03-09T09:00:00Z"]
        );
        assert_eq!(
            next_n("0 0 L * *", "2026-02-01T00:00:00Z", "UTC", 2),
            ["2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z"]
        );
        assert_eq!(
            next_n("0 0 $ * *", "2028-02-01T00:00:00Z", "UTC", 1),
            ["2028-02-29T00:00:00Z"]
        );
        assert_eq!(
            next_n("0 0 * * 7", "2026-03-02T00:00:00Z", "UTC", 1),
            ["2026-03-08T00:00:00Z"]
        );
    }

    #[test]
    fn a_range_of_one_day_name_is_that_day() {
        // croner alone reads "SUN-SUN" as 0-7, every day (2026-03-08 is a Sunday).
        assert_eq!(
            next_n("0 0 * * SUN-SUN", "2026-03-02T00:00:00Z", "UTC", 2),
            ["2026-03-08T00:00:00Z", "2026-03-15T00:00:00Z"]
        );
        assert_eq!(
            next_n("0 0 * * sun-Sun/2,wed", "2026-03-02T00:00:00Z", "UTC", 2),
            ["2026-03-04T00:00:00Z", "2026-03-08T00:00:00Z"]
        );
        assert_eq!(
            next_n("0 0 1 jan-jan,Dec *", "2026-03-02T00:00:00Z", "UTC", 2),
            ["2026-12-01T00:00:00Z", "2027-01-01T00:00:00Z"]
        );
        assert_eq!(names_to_numbers(&DOW, "*/2,MON-fri,7"), "*/2,1-5,7");
        assert_eq!(names_to_numbers(&MONTH, "jan-MAR/2"), "1-3/2");
    }

    #[test]
    fn seconds_field() {
        assert_eq!(
            next_n("*/2 * * * * *", "2026-03-01T12:00:00Z", "UTC", 3),
            [
                "2026-03-01T12:00:02Z",
                "2026-03-01T12:00:04Z",
                "2026-03-01T12:00:06Z"
            ]
        );
        assert_eq!(
            next_n("30 0 * * * *", "2026-03-01T12:00:00Z", "UTC", 1),
            ["2026-03-01T12:00:30Z"]
        );
    }

    #[test]
    fn vixie_day_rule() {
        // Both restricted: either matches (the 13th, or any Friday).
        assert_eq!(
            next_n("0 0 13 * 5", "2026-03-01T12:34:56Z", "UTC", 3),
            [
                "2026-03-06T00:00:00Z",
                "2026-03-13T00:00:00Z",
                "2026-03-20T00:00:00Z"
            ]
        );
        // A field beginning with * counts as unrestricted: both must match
        // (the 13th that is also Sun/Tue/Thu/Sat) — cron.md's example.
        assert_eq!(
            next_n("0 0 13 * */2", "2026-03-01T12:34:56Z", "UTC", 3),
            [
                "2026-06-13T00:00:00Z",
                "2026-08-13T00:00:00Z",
                "2026-09-13T00:00:00Z"
            ]
        );
    }

    #[test]
    fn dst_europe_berlin() {
        // 02:30 does not exist on 2026-03-29: runs at 03:00 CEST (01:00Z), once.
        assert_eq!(
            next_n("30 2 * * *", "2026-03-28T00:00:00Z", "Europe/Berlin", 3),
            [
                "2026-03-28T01:30:00Z",
                "2026-03-29T01:00:00Z",
                "2026-03-30T00:30:00Z"
            ]
        );
        // 02:30 happens twice on 2026-10-25: runs once, at the first.
        assert_eq!(
            next_n("30 2 * * *", "2026-10-24T00:00:00Z", "Europe/Berlin", 3),
            [
                "2026-10-24T00:30:00Z",
                "2026-10-25T00:30:00Z",
                "2026-10-26T01:30:00Z"
            ]
        );
        // Wildcard schedules keep their real-time rhythm through the repeated hour.
        assert_eq!(
            next_n("*/30 * * * *", "2026-10-25T00:00:00Z", "Europe/Berlin", 4),
            [
                "2026-10-25T00:30:00Z",
                "2026-10-25T01:00:00Z",
                "2026-10-25T01:30:00Z",
                "2026-10-25T02:00:00Z"
            ]
        );
    }

    #[test]
    fn dst_america_new_york() {
        // 2026-03-08 02:30 EST does not exist: first instant after the gap is 03:00 EDT (07:00Z).
        assert_eq!(
            next_n("30 2 * * *", "2026-03-07T12:00:00Z", "America/New_York", 3),
            [
                "2026-03-08T07:00:00Z",
                "2026-03-09T06:30:00Z",
                "2026-03-10T06:30:00Z"
            ]
        );
        // 2026-11-01 01:30 happens twice: once, at the first (EDT, 05:30Z).
        assert_eq!(
            next_n("30 1 * * *", "2026-10-31T12:00:00Z", "America/New_York", 2),
            ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]
        );
    }

    #[test]
    fn dst_lord_howe_half_hour_shift() {
        assert_eq!(
            next_n("15 2 * * *", "2026-10-03T14:00:00Z", "Australia/Lord_Howe", 2),
            ["2026-10-03T15:30:00Z", "2026-10-04T15:15:00Z"]
        );
    }

    /// The reference: walk the calendar day by day, then every second of a
    /// matching day, checking each field against its set. Independent of
    /// croner's search.
    fn brute_force_next(e: &CronExpr, after: Timestamp) -> Option<Timestamp> {
        let has = |set: u64, v: i64| set & (1u64 << v) != 0;
        let mut day = after.to_zoned(TimeZone::UTC).date();
        for _ in 0..(366 * 6) {
            let dom_ok = has(e.sets[3], day.day() as i64) || (e.dom_last && day.day() == day.days_in_month());
            let dow_ok = has(e.sets[5], day.weekday().to_sunday_zero_offset() as i64);
            let day_ok = if e.days_and {
                dom_ok && dow_ok
            } else {
                dom_ok || dow_ok
            };
            if day_ok && has(e.sets[4], day.month() as i64) {
                for h in (0..24).filter(|h| has(e.sets[2], *h)) {
                    for m in (0..60).filter(|m| has(e.sets[1], *m)) {
                        for sec in (0..60).filter(|s| has(e.sets[0], *s)) {
                            let t = day
                                .at(h as i8, m as i8, sec as i8, 0)
                                .to_zoned(TimeZone::UTC)
                                .unwrap()
                                .timestamp();
                            if t > after {
                                return Some(t);
                            }
                        }
                    }
                }
            }
            day = day.tomorrow().unwrap();
        }
        None
    }

    fn field_strategy(min: u32, max: u32) -> impl Strategy<Value = String> {
        prop_oneof![
            Just("*".to_string()),
            (1..=max.min(15)).prop_map(|k| format!("*/{k}")),
            (min..=max).prop_map(|a| a.to_string()),
            (min..=max, min..=max).prop_map(|(a, b)| format!("{}-{}", a.min(b), a.max(b))),
            (min..=max, min..=max, 1..=5u32).prop_map(|(a, b, k)| format!("{}-{}/{k}", a.min(b), a.max(b))),
            (min..=max, min..=max).prop_map(|(a, b)| format!("{a},{b}")),
        ]
    }

    fn expr_strategy() -> impl Strategy<Value = String> {
        (
            proptest::option::of(field_strategy(0, 59)),
            field_strategy(0, 59),
            field_strategy(0, 23),
            prop_oneof![4 => field_strategy(1, 31), 1 => Just("L".to_string())],
            field_strategy(1, 12),
            field_strategy(0, 7),
        )
            .prop_map(|(s, m, h, dom, mon, dow)| match s {
                Some(s) => format!("{s} {m} {h} {dom} {mon} {dow}"),
                None => format!("{m} {h} {dom} {mon} {dow}"),
            })
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn croner_matches_the_brute_force_reference(expr in expr_strategy(), start in 1_767_225_600i64..1_893_456_000) {
            let e = match CronExpr::parse(&expr) {
                Ok(e) => e,
                Err(CronError::NeverFires(_)) => return Ok(()),
                Err(err) => return Err(TestCaseError::fail(format!("{expr}: {err}"))),
            };
            let after = Timestamp::from_second(start).unwrap();
            let expected = brute_force_next(&e, after);
            prop_assume!(expected.is_some());
            prop_assert_eq!(e.next_after(after, &TimeZone::UTC), expected, "expression {}", expr);
        }

        #[test]
        fn next_runs_strictly_increase(expr in expr_strategy(), start in 1_767_225_600i64..1_893_456_000, tz in prop_oneof![
            Just("UTC"), Just("Europe/Berlin"), Just("America/New_York"), Just("Australia/Lord_Howe")]) {
            let Ok(e) = CronExpr::parse(&expr) else { return Ok(()) };
            let tz = TimeZone::get(tz).unwrap();
            let mut t = Timestamp::from_second(start).unwrap();
            for _ in 0..20 {
                let Some(n) = e.next_after(t, &tz) else { break };
                prop_assert!(n > t, "{} after {} gave {}", expr, t, n);
                t = n;
            }
        }
    }
}
