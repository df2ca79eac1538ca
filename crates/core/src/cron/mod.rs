//! Cron expressions: 5 fields (minute hour day-of-month month day-of-week)
//! or 6 with a leading seconds field; ranges, lists, steps, month and
//! weekday names, `L`/`$` for the last day of the month, and the macros
//! `@yearly @annually @monthly @weekly @daily @midnight @hourly`.
//!
//! Next-run maths: [`search`] walks the calendar over the fields' value
//! sets, and hands the few searches that touch a daylight-saving change to
//! `croner` (on `jiff`), whose DST rules we keep. This module adds what
//! croner does not give us:
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

use jiff::tz::TimeZone;
use jiff::Timestamp;

mod search;

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
    // croner's own parse is not kept: it carries a 5,000-entry year table
    // (~5.7 KB) and takes ~14 µs, which for 100,000 distinct expressions
    // was 575 MB and 1.4 s; [`search`] needs it only near a DST change and
    // keeps a few recent ones.
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
    /// Parse and validate `text`: what a text must pass to be stored.
    pub fn parse(text: &str) -> Result<CronExpr, CronError> {
        let expr = CronExpr::parse_stored(text)?;
        // croner accepts it too (it reads it near DST changes).
        search::croner_checked(&expr)?;
        Ok(expr)
    }

    /// [`CronExpr::parse`] without asking croner, which is most of a
    /// parse's cost: for texts that passed [`CronExpr::parse`] when stored,
    /// as the scheduler loads them.
    pub fn parse_stored(text: &str) -> Result<CronExpr, CronError> {
        let trimmed = text.trim();
        let f = six_fields(trimmed)?;
        let specs = [&SECOND, &MINUTE, &HOUR, &DOM, &MONTH, &DOW];
        let mut sets = [0u64; 6];
        let mut dom_last = false;
        for (i, spec) in specs.iter().enumerate() {
            let (set, last) = field(spec, f[i]).map_err(CronError::Syntax)?;
            sets[i] = set;
            dom_last |= last;
        }
        let expr = CronExpr {
            text: trimmed.to_owned(),
            has_seconds: six_fields_given(trimmed),
            sets,
            dom_last,
            days_and: f[3].starts_with('*') || f[5].starts_with('*'),
        };
        // Refuse what can never fire (e.g. 31 February).
        if expr.next_after(Timestamp::UNIX_EPOCH, &TimeZone::UTC).is_none() {
            return Err(CronError::NeverFires(expr.text));
        }
        Ok(expr)
    }

    /// The expression as croner reads it (seconds always given). Made when
    /// croner is asked (near a DST change), not kept: the text is enough.
    fn croner_text(&self) -> Result<String, CronError> {
        let f = six_fields(&self.text)?;
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
        Ok(normalized.join(" "))
    }
}

/// Whether the (trimmed) text gives a seconds field.
fn six_fields_given(trimmed: &str) -> bool {
    !trimmed.starts_with('@') && trimmed.split_whitespace().count() == 6
}

/// The six fields of an expression (a macro expanded; seconds `0` if not
/// given).
fn six_fields(trimmed: &str) -> Result<Vec<&str>, CronError> {
    let body = if trimmed.starts_with('@') {
        expand_macro(trimmed)?
    } else {
        trimmed
    };
    let fields: Vec<&str> = body.split_whitespace().collect();
    match fields.len() {
        5 => Ok([&["0"][..], &fields[..]].concat()),
        6 => Ok(fields),
        n => Err(CronError::Syntax(format!(
            "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), found {n}"
        ))),
    }
}

#[cfg(test)]
mod tests;
