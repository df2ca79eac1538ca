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

use crate::cron::CronExpr;
use crate::schedule::Schedule;

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

/// One field of a cron entry, with pg_cron's bounds and names.
struct Spec {
    name: &'static str,
    low: u32,
    high: u32,
    names: &'static [&'static str],
    /// What an item may start with, for messages.
    expected: &'static str,
    /// What the names are, for messages.
    name_kind: &'static str,
}

const MINUTE: Spec = Spec {
    name: "minute",
    low: 0,
    high: 59,
    names: &[],
    expected: "a number or *",
    name_kind: "",
};
const HOUR: Spec = Spec {
    name: "hour",
    low: 0,
    high: 23,
    names: &[],
    expected: "a number or *",
    name_kind: "",
};
const DOM: Spec = Spec {
    name: "day-of-month",
    low: 1,
    high: 31,
    names: &[],
    expected: "a number, * or $",
    name_kind: "",
};
const MONTH: Spec = Spec {
    name: "month",
    low: 1,
    high: 12,
    names: &[
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ],
    expected: "a number, a month name (Jan-Dec) or *",
    name_kind: "a month name (Jan-Dec)",
};
/// pg_cron's list also has "Sun" as 7, but the first match wins, so Sun is 0.
const DOW: Spec = Spec {
    name: "day-of-week",
    low: 0,
    high: 7,
    names: &["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"],
    expected: "a number, a day name (Sun-Sat) or *",
    name_kind: "a day name (Sun-Sat)",
};

impl Spec {
    /// Every value of the field, as bits indexed by value.
    fn all(&self) -> u64 {
        bits(self.low, self.high)
    }
}

/// Bits `from..=to` (none if `from > to`); `to` at most 63.
fn bits(from: u32, to: u32) -> u64 {
    if from > to {
        0
    } else {
        (u64::MAX >> (63 - to)) & (u64::MAX << from)
    }
}

/// Day-of-week bits with 7 folded into 0: both are Sunday.
fn fold_sunday(dow: u64) -> u64 {
    (dow | dow >> 7) & 0x7f
}

/// pg_cron's bit setter for a run of bits works a byte at a time. For a
/// backwards run (start > stop) that sets start to the end of its byte and
/// the start of stop's byte to stop, or nothing when they share a byte.
fn bit_nset(start: u32, stop: u32) -> u64 {
    let (first, last) = (start / 8, stop / 8);
    if first == last {
        return bits(start, stop);
    }
    let middle = if last > first + 1 {
        bits(first * 8 + 8, last * 8 - 1)
    } else {
        0
    };
    bits(start, first * 8 + 7) | middle | bits(last * 8, stop)
}

/// One item of a field's list, as written (values, not names).
enum Item {
    /// `*` or `*/step`.
    All {
        step: u32,
    },
    /// `lo-hi` or `lo-hi/step`, lo <= hi.
    Range {
        lo: u32,
        hi: u32,
        step: u32,
    },
    One(u32),
}

#[derive(Default)]
struct Field {
    /// Begins with `*`: pg_cron's DOM_STAR/DOW_STAR (and MIN_STAR/HR_STAR).
    star: bool,
    items: Vec<Item>,
    /// The values selected, as bits indexed by value.
    bits: u64,
}

impl Field {
    fn only(value: u32) -> Field {
        Field {
            bits: 1 << value,
            ..Field::default()
        }
    }

    fn every(spec: &Spec, star: bool) -> Field {
        Field {
            star,
            bits: spec.all(),
            ..Field::default()
        }
    }

    /// The field in pg_jobs' grammar.
    fn pg_jobs_text(&self, spec: &Spec) -> String {
        let full = if spec.name == DOW.name {
            fold_sunday(self.bits) == 0x7f
        } else {
            self.bits == spec.all()
        };
        // pg_jobs takes `*` only alone, and a leading `*` decides the day
        // rule, so a full field keeps or avoids the star as pg_cron had it.
        if full {
            return if self.star {
                "*".to_owned()
            } else {
                format!("{}-{}", spec.low, spec.high)
            };
        }
        let items: Vec<String> = self
            .items
            .iter()
            .map(|item| match *item {
                // Only a field pg_cron saw begin with `*` may begin with one.
                Item::All { step } if self.star => format!("*/{step}"),
                Item::All { step } => format!("{}-{}/{step}", spec.low, spec.high),
                Item::Range { lo, hi, step: 1 } => format!("{lo}-{hi}"),
                Item::Range { lo, hi, step } => format!("{lo}-{hi}/{step}"),
                Item::One(v) => v.to_string(),
            })
            .collect();
        items.join(",")
    }
}

/// `bits` as a list of values and ranges (`0-2,22-23`); `None` if empty.
fn runs(bits: u64, spec: &Spec) -> Option<String> {
    let mut out: Vec<String> = Vec::new();
    let mut v = spec.low;
    while v <= spec.high {
        if bits & (1 << v) == 0 {
            v += 1;
            continue;
        }
        let start = v;
        while v < spec.high && bits & (1 << (v + 1)) != 0 {
            v += 1;
        }
        out.push(if start == v {
            start.to_string()
        } else {
            format!("{start}-{v}")
        });
        v += 1;
    }
    (!out.is_empty()).then(|| out.join(","))
}

enum Parsed {
    Reboot,
    Seconds(u32),
    Cron(Box<Entry>),
}

/// A parsed five-field entry or macro: pg_cron's `entry` struct.
struct Entry {
    /// Minute, hour, day-of-month, month, day-of-week.
    fields: [Field; 5],
    /// `$`: pg_cron's DOM_LAST.
    dom_last: bool,
    /// The macro as pg_jobs spells it, for macros.
    word: Option<&'static str>,
}

impl Entry {
    fn meaning(&self) -> Meaning {
        let [minute, hour, dom, month, dow] = &self.fields;
        Meaning {
            minute: minute.bits,
            hour: hour.bits,
            dom: dom.bits,
            month: month.bits,
            dow: fold_sunday(dow.bits),
            dom_last: self.dom_last,
            days_and: dom.star || dow.star,
        }
    }

    fn pg_jobs_text(&self) -> String {
        if let Some(word) = self.word {
            return word.to_owned();
        }
        let [minute, hour, dom, month, dow] = &self.fields;
        [
            minute.pg_jobs_text(&MINUTE),
            hour.pg_jobs_text(&HOUR),
            if self.dom_last {
                "$".to_owned()
            } else {
                dom.pg_jobs_text(&DOM)
            },
            month.pg_jobs_text(&MONTH),
            dow.pg_jobs_text(&DOW),
        ]
        .join(" ")
    }
}

/// When a cron schedule runs, as sets: the same for pg_cron and pg_jobs
/// when these are equal.
#[derive(Debug)]
struct Meaning {
    minute: u64,
    hour: u64,
    /// Days 1-31 as bits 1-31.
    dom: u64,
    /// Months 1-12 as bits 1-12.
    month: u64,
    /// Sunday 0 to Saturday 6.
    dow: u64,
    dom_last: bool,
    /// Both day fields must match (one of them begins with `*`).
    days_and: bool,
}

impl Meaning {
    fn of_pg_jobs(expr: &CronExpr) -> Meaning {
        Meaning {
            minute: expr.sets[1],
            hour: expr.sets[2],
            dom: expr.sets[3],
            month: expr.sets[4],
            dow: fold_sunday(expr.sets[5]),
            dom_last: expr.dom_last,
            days_and: expr.days_and,
        }
    }

    fn day_runs(&self, day: u32, last: bool, weekday: u32) -> bool {
        let dom = self.dom & (1 << day) != 0 || (last && self.dom_last);
        let dow = self.dow & (1 << weekday) != 0;
        if self.days_and {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// Runs at the same minutes. Days are compared on every (day, is it the
    /// month's last, weekday) that exists, since AND of full sets and OR of
    /// full sets select the same days though they differ as sets.
    fn same_as(&self, other: &Meaning) -> bool {
        let mask = |m: &Meaning| {
            (
                m.minute & MINUTE.all(),
                m.hour & HOUR.all(),
                m.month & MONTH.all(),
            )
        };
        mask(self) == mask(other)
            && (1..=31).all(|day| {
                // Days 28-30 are the last of some month and not of others.
                let lasts: &[bool] = match day {
                    1..=27 => &[false],
                    31 => &[true],
                    _ => &[false, true],
                };
                lasts
                    .iter()
                    .all(|&last| (0..7).all(|w| self.day_runs(day, last, w) == other.day_runs(day, last, w)))
            })
    }

    /// No minute ever matches. Every (month, day, weekday) combination
    /// occurs within 28 years, and February is 28 or 29 days long.
    fn never_runs(&self) -> bool {
        let lengths = |month: u32| -> &'static [u32] {
            match month {
                2 => &[28, 29],
                4 | 6 | 9 | 11 => &[30],
                _ => &[31],
            }
        };
        let some_day = (1..=12u32).filter(|m| self.month & (1 << m) != 0).any(|m| {
            lengths(m)
                .iter()
                .any(|&len| (1..=len).any(|day| (0..7).any(|w| self.day_runs(day, day == len, w))))
        });
        self.minute & MINUTE.all() == 0 || self.hour & HOUR.all() == 0 || !some_day
    }
}

/// pg_cron copies the schedule into a 1000-byte buffer and refuses a cron
/// schedule that does not fit with its NUL.
const BUFFER_LEN: usize = 1000;

/// pg_cron's reader: the text's bytes, then one NUL (`Some(0)`), then EOF
/// (`None`). Fields end at blanks, the NUL or a line break.
struct Reader<'a> {
    text: &'a [u8],
    at: usize,
    pushed: Option<u8>,
}

impl Reader<'_> {
    fn next(&mut self) -> Option<u8> {
        if let Some(c) = self.pushed.take() {
            return Some(c);
        }
        let c = match self.text.get(self.at) {
            Some(&c) => c,
            None if self.at == self.text.len() => 0,
            None => return None,
        };
        self.at += 1;
        Some(c)
    }

    /// Where the character last read is (the text's length for the NUL).
    fn pos(&self) -> usize {
        self.at - 1
    }
}

fn is_blank(c: Option<u8>) -> bool {
    matches!(c, Some(b' ' | b'\t'))
}

fn found(c: Option<u8>) -> String {
    match c {
        None | Some(0) => "the end of the text".to_owned(),
        Some(b) if b.is_ascii() => format!("\"{}\"", char::from(b).escape_debug()),
        Some(_) => "a non-ASCII character".to_owned(),
    }
}

/// The message for an entry that ends after `n` fields (n < 5).
fn field_count(n: usize) -> String {
    const WORDS: [&str; 5] = ["no", "one", "two", "three", "four"];
    if n == 0 {
        return "the schedule is empty".to_owned();
    }
    format!(
        "{} field{}; pg_cron schedules have five (minute hour day-of-month month day-of-week)",
        WORDS.get(n).copied().unwrap_or("too few"),
        if n == 1 { "" } else { "s" }
    )
}

/// A number or name as pg_cron read it.
struct Number {
    text: String,
    /// Beyond a C int, pg_cron's atoi is undefined behaviour (glibc wraps
    /// it); such numbers are kept as i64::MAX, out of every range.
    value: i64,
}

enum NumberError {
    /// No letters or digits where a number should start.
    Missing(Option<u8>),
    /// Letters that are not one of the names.
    NotANumber(String),
}

const DOLLAR_ALONE: &str = "day-of-month field: \"$\" (the last day of the month) must be the whole field";

/// Where a number is read, for messages.
#[derive(Clone, Copy)]
enum At {
    Item,
    RangeEnd,
    Step,
}

impl NumberError {
    fn describe(self, spec: &Spec, at: At) -> String {
        let field = spec.name;
        match (self, at) {
            (NumberError::Missing(Some(b'$')), At::Item) if spec.name == DOM.name => DOLLAR_ALONE.to_owned(),
            (NumberError::Missing(c), At::Item) => {
                format!("{field} field: expected {}, found {}", spec.expected, found(c))
            }
            (NumberError::Missing(c), At::RangeEnd) => {
                format!("{field} field: expected a number after \"-\", found {}", found(c))
            }
            (NumberError::Missing(c), At::Step) => {
                format!("{field} field: expected a step after \"/\", found {}", found(c))
            }
            (NumberError::NotANumber(t), At::Step) => {
                format!("{field} field: step \"{t}\" is not a number")
            }
            (NumberError::NotANumber(t), _) if spec.names.is_empty() => {
                format!("{field} field: \"{t}\" is not a number")
            }
            (NumberError::NotANumber(t), _) => {
                format!("{field} field: \"{t}\" is not a number or {}", spec.name_kind)
            }
        }
    }
}

/// A run of ASCII letters and digits: one of `names` in any case (its
/// index + `low`), or all digits. (pg_cron also stops at 1000 characters,
/// which a schedule that fits its buffer cannot reach.)
fn get_number(
    r: &mut Reader,
    names: &[&str],
    low: u32,
    mut c: Option<u8>,
) -> Result<(Option<u8>, Number), NumberError> {
    let mut text = String::new();
    while let Some(b) = c.filter(u8::is_ascii_alphanumeric) {
        text.push(char::from(b));
        c = r.next();
    }
    if text.is_empty() {
        return Err(NumberError::Missing(c));
    }
    if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(&text)) {
        let value = i as i64 + i64::from(low);
        return Ok((c, Number { text, value }));
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let value = text.parse::<i32>().map_or(i64::MAX, i64::from);
        return Ok((c, Number { text, value }));
    }
    Err(NumberError::NotANumber(text))
}

fn in_range(spec: &Spec, n: &Number) -> Result<u32, String> {
    match u32::try_from(n.value) {
        Ok(v) if (spec.low..=spec.high).contains(&v) => Ok(v),
        _ => Err(format!(
            "{} field: {} is out of range {}-{}",
            spec.name, n.text, spec.low, spec.high
        )),
    }
}

/// One item: `*`, `N`, `A-B`, each but `N` with an optional `/S`. Returns
/// the character after it.
fn get_range(
    r: &mut Reader,
    spec: &Spec,
    mut c: Option<u8>,
    field: &mut Field,
) -> Result<Option<u8>, String> {
    let name = spec.name;
    let bounds = if c == Some(b'*') {
        c = r.next();
        None
    } else {
        let (next, a) = get_number(r, spec.names, spec.low, c).map_err(|e| e.describe(spec, At::Item))?;
        c = next;
        if c != Some(b'-') {
            if c == Some(b'/') {
                return Err(format!(
                    "{name} field: a step needs * or a range before it (\"{0}/…\" is refused; \"{0}-{1}/…\" is the same from {0} on)",
                    a.text, spec.high
                ));
            }
            let v = in_range(spec, &a)?;
            field.items.push(Item::One(v));
            field.bits |= 1 << v;
            return Ok(c);
        }
        c = r.next();
        let (next, b) = get_number(r, spec.names, spec.low, c).map_err(|e| e.describe(spec, At::RangeEnd))?;
        c = next;
        Some((a, b))
    };
    let step = if c == Some(b'/') {
        c = r.next();
        let (next, s) = get_number(r, &[], 0, c).map_err(|e| e.describe(spec, At::Step))?;
        c = next;
        if s.value <= 0 {
            return Err(format!("{name} field: a step must be at least 1"));
        }
        Some(s)
    } else {
        None
    };
    let (lo, hi) = match &bounds {
        Some((a, b)) => (in_range(spec, a)?, in_range(spec, b)?),
        None => (spec.low, spec.high),
    };
    let step_value = match &step {
        Some(s) => match u32::try_from(s.value) {
            Ok(v) if v <= spec.high => v,
            _ => {
                return Err(format!(
                    "{name} field: step {} is larger than {}",
                    s.text, spec.high
                ))
            }
        },
        None => 1,
    };
    if let Some((a, b)) = &bounds {
        if lo > hi {
            return Err(backwards(spec, a, b, step.as_ref(), lo, hi));
        }
    }
    let set = (lo..=hi)
        .step_by(step_value as usize)
        .fold(0u64, |set, v| set | 1 << v);
    field.bits |= set;
    field.items.push(match bounds {
        None => Item::All { step: step_value },
        Some(_) => Item::Range {
            lo,
            hi,
            step: step_value,
        },
    });
    Ok(c)
}

/// The refusal of a backwards range `a-b` (`lo` > `hi`), with what pg_cron
/// would select for it: nothing with a step; without one, what its
/// byte-wise bit setter sets (see [`bit_nset`]).
fn backwards(spec: &Spec, a: &Number, b: &Number, step: Option<&Number>, lo: u32, hi: u32) -> String {
    let written = match step {
        Some(s) => format!("{}-{}/{}", a.text, b.text, s.text),
        None => format!("{}-{}", a.text, b.text),
    };
    let selected = match step {
        Some(_) => None,
        None => runs(
            (bit_nset(lo - spec.low, hi - spec.low) << spec.low) & spec.all(),
            spec,
        ),
    };
    let pg_cron = match selected {
        Some(values) => format!("pg_cron would read it as {values}"),
        None => "pg_cron would select nothing for it".to_owned(),
    };
    // `Mon-Sun` is the usual one: Sunday is 0, but 7 too.
    let sunday = if spec.name == DOW.name && hi == 0 {
        "; Sunday is also 7, which can end a range"
    } else {
        ""
    };
    format!(
        "{} field: range {written} runs backwards ({pg_cron}{sunday})",
        spec.name
    )
}

/// Characters that may continue a field (pg_cron's items, and forms of
/// other crons it does not know, such as `#2`, `L`, `?`): after the fifth
/// field's last item, anything else is text after the five fields.
fn field_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"*/,-?#$.".contains(&b)
}

/// A comma-separated list of items, then the blanks after it. Returns the
/// first character of the next field. pg_cron ignores what follows the
/// last item up to the next blank; it is refused here (`index` 0-4 is the
/// field's place, and `text` the whole schedule, for messages).
fn get_list(
    r: &mut Reader,
    spec: &Spec,
    mut c: Option<u8>,
    index: usize,
    text: &str,
) -> Result<(Option<u8>, Field), String> {
    if matches!(c, None | Some(0)) {
        return Err(field_count(index));
    }
    let mut field = Field {
        star: c == Some(b'*'),
        ..Field::default()
    };
    let mut item_at;
    loop {
        item_at = r.pos();
        c = get_range(r, spec, c, &mut field)?;
        if c != Some(b',') {
            break;
        }
        c = r.next();
    }
    let junk_at = r.pos();
    while !matches!(c, None | Some(b' ' | b'\t' | b'\n' | 0)) {
        c = r.next();
    }
    let junk = &text[junk_at..r.pos().min(text.len())];
    // White space (a `\r` before a line break) is not text.
    if !junk.bytes().all(c_isspace) {
        let first = junk.as_bytes()[0];
        if index == 4 && !field_char(first) {
            return Err(trailing(&text[junk_at..]));
        }
        if first == b'$' && spec.name == DOM.name {
            return Err(DOLLAR_ALONE.to_owned());
        }
        return Err(format!(
            "{} field: unexpected {junk:?} after {:?}",
            spec.name,
            &text[item_at..junk_at]
        ));
    }
    while is_blank(c) {
        c = r.next();
    }
    Ok((c, field))
}

/// The message for text after the five fields (`rest`, not blank).
fn trailing(rest: &str) -> String {
    format!(
        "trailing characters {:?} after the five fields",
        trim_c_space(rest)
    )
}

fn trim_c_space(text: &str) -> &str {
    text.trim_matches(|c: char| c.is_ascii() && c_isspace(c as u8))
}

/// Whether a token after the fifth field looks like one more field: made
/// of digits, `*`, `/`, `,`, `-`, `?`, `#`, `L` and month or day names, with
/// at least one digit, `*`, `?`, `L` or name.
fn looks_like_field(token: &str) -> bool {
    let mut something = false;
    for part in token.split(|c: char| !c.is_ascii_alphabetic()) {
        if part.is_empty() {
            continue;
        }
        let name = |n: &&str| n.eq_ignore_ascii_case(part);
        if !(part.eq_ignore_ascii_case("L") || MONTH.names.iter().any(name) || DOW.names.iter().any(name)) {
            return false;
        }
        something = true;
    }
    token
        .bytes()
        .all(|b| b.is_ascii_alphabetic() || b"0123456789*/,-?#".contains(&b))
        && (something
            || token
                .bytes()
                .any(|b| b.is_ascii_digit() || b == b'*' || b == b'?'))
}

/// The text after the fifth field (from its first non-blank character):
/// pg_cron ignores it, and it is refused here unless it is white space.
/// Only tokens on the entry's line can be more fields.
fn after_five(rest: &str) -> Result<(), String> {
    let line = rest.split('\n').next().unwrap_or_default();
    let rest = trim_c_space(rest);
    if rest.is_empty() {
        return Ok(());
    }
    let more = line
        .split(|c: char| c.is_ascii() && c_isspace(c as u8))
        .filter(|t| !t.is_empty())
        .take_while(|t| looks_like_field(t))
        .count();
    if more == 0 {
        return Err(trailing(rest));
    }
    const WORDS: [&str; 5] = ["six", "seven", "eight", "nine", "ten"];
    let count = WORDS
        .get(more - 1)
        .map_or_else(|| format!("{} fields", 5 + more), |w| format!("{w} fields"));
    Err(format!(
        "{count}; pg_cron's schedules have five (minute hour day-of-month month day-of-week), and a sixth is refused rather than ignored"
    ))
}

/// Why [`parse_cron`] refuses a text.
struct CronRefusal {
    problem: String,
    /// The five fields or the macro were read; text follows them.
    after_entry: bool,
}

impl From<String> for CronRefusal {
    fn from(problem: String) -> CronRefusal {
        CronRefusal {
            problem,
            after_entry: false,
        }
    }
}

fn after_entry(problem: String) -> CronRefusal {
    CronRefusal {
        problem,
        after_entry: true,
    }
}

/// pg_cron's cron reader; `Err` says why it (or pg_jobs) refuses the text.
fn parse_cron(text: &str) -> Result<Parsed, CronRefusal> {
    if text.len() >= BUFFER_LEN {
        return Err(CronRefusal::from(format!(
            "it is {} bytes long, and pg_cron reads cron schedules of at most {} bytes",
            text.len(),
            BUFFER_LEN - 1
        )));
    }
    let mut r = Reader {
        text: text.as_bytes(),
        at: 0,
        pushed: None,
    };
    // Skip blank lines and `#` comment lines, and blanks before the entry.
    let mut c;
    loop {
        c = r.next();
        while is_blank(c) {
            c = r.next();
        }
        if c.is_none() || !matches!(c, Some(b'\n' | b'#')) {
            break;
        }
        while !matches!(c, None | Some(b'\n')) {
            c = r.next();
        }
    }
    r.pushed = c;
    let c = r.next();
    if c.is_none() {
        return Err(CronRefusal::from(
            "it has only blank and comment lines".to_owned(),
        ));
    }
    if c == Some(b'@') {
        return parse_macro(&text[r.pos() + 1..]);
    }
    let (c, minute) = get_list(&mut r, &MINUTE, c, 0, text)?;
    let (c, hour) = get_list(&mut r, &HOUR, c, 1, text)?;
    let (c, dom, dom_last) = if c == Some(b'$') {
        let mut c = r.next();
        if c == Some(0) {
            return Err(field_count(3).into());
        }
        if !is_blank(c) {
            return Err(DOLLAR_ALONE.to_owned().into());
        }
        while is_blank(c) {
            c = r.next();
        }
        (c, Field::default(), true)
    } else {
        let (c, dom) = get_list(&mut r, &DOM, c, 2, text)?;
        (c, dom, false)
    };
    let (c, month) = get_list(&mut r, &MONTH, c, 3, text)?;
    let (c, dow) = get_list(&mut r, &DOW, c, 4, text).map_err(|problem| CronRefusal {
        after_entry: problem.starts_with("trailing characters"),
        problem,
    })?;
    // pg_cron ignores what follows, as Vixie cron's command; refused here.
    if !matches!(c, None | Some(0)) {
        after_five(&text[r.pos()..]).map_err(after_entry)?;
    }
    Ok(Parsed::Cron(Box::new(Entry {
        fields: [minute, hour, dom, month, dow],
        dom_last,
        word: None,
    })))
}

const MACROS: &str = "@yearly @annually @monthly @weekly @daily @midnight @hourly @reboot @restart";

/// `@word` (`text` is what follows the `@`), in any case, then only white
/// space. pg_cron takes lower case only and ignores what follows the word.
fn parse_macro(text: &str) -> Result<Parsed, CronRefusal> {
    let len = text
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (word, rest) = text.split_at(len);
    let zero = || Field::only(0);
    let (fields, pg_jobs) = match word.to_ascii_lowercase().as_str() {
        "reboot" | "restart" => (None, "@reboot"),
        // pg_cron 1.6 sets month 0 here, below the month range, so it sets
        // no month and never runs these (a bug); every cron, and pg_jobs,
        // means once a year.
        w @ ("yearly" | "annually") => (
            Some([
                zero(),
                zero(),
                Field::only(1),
                Field::only(1),
                Field::every(&DOW, true),
            ]),
            if w == "yearly" { "@yearly" } else { "@annually" },
        ),
        "monthly" => (
            Some([
                zero(),
                zero(),
                Field::only(1),
                Field::every(&MONTH, false),
                Field::every(&DOW, true),
            ]),
            "@monthly",
        ),
        "weekly" => (
            Some([
                zero(),
                zero(),
                Field::every(&DOM, false),
                Field::every(&MONTH, false),
                Field {
                    star: true,
                    ..Field::only(0)
                },
            ]),
            "@weekly",
        ),
        w @ ("daily" | "midnight") => (
            Some([
                zero(),
                zero(),
                Field::every(&DOM, false),
                Field::every(&MONTH, false),
                Field::every(&DOW, false),
            ]),
            if w == "daily" { "@daily" } else { "@midnight" },
        ),
        "hourly" => (
            Some([
                zero(),
                Field::every(&HOUR, true),
                Field::every(&DOM, false),
                Field::every(&MONTH, false),
                Field::every(&DOW, false),
            ]),
            "@hourly",
        ),
        _ => {
            // As pg_cron reads it: up to a blank, line break or the end.
            let token = text.split([' ', '\t', '\n']).next().unwrap_or_default();
            return Err(format!("unknown macro \"@{token}\"; pg_cron knows {MACROS}").into());
        }
    };
    let rest = trim_c_space(rest);
    if !rest.is_empty() {
        return Err(after_entry(format!(
            "trailing characters {rest:?} after \"@{word}\""
        )));
    }
    Ok(match fields {
        None => Parsed::Reboot,
        Some(fields) => Parsed::Cron(Box::new(Entry {
            fields,
            dom_last: false,
            word: Some(pg_jobs),
        })),
    })
}

/// C's isspace in the C locale, which sscanf's blanks and `%u` skip.
fn c_isspace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

fn skip_space(b: &[u8], mut i: usize) -> usize {
    while b.get(i).copied().is_some_and(c_isspace) {
        i += 1;
    }
    i
}

const SECONDS_FORM: &str =
    "pg_cron's only interval is \"N seconds\" (or \"N second\") with a whole N from 1 to 59";

/// pg_cron's `sscanf(lower(text), " %u secon%c%c %c")`: `Ok(N)` when it
/// reads `N second` ending the text or `N seconds` followed only by
/// spaces, with N 1-59. `Err(Some(why))` when the text is meant as an
/// interval but refused; `Err(None)` when it is not one at all.
fn seconds_interval(text: &str) -> Result<u32, Option<String>> {
    let lower = text.to_ascii_lowercase();
    let b = lower.as_bytes();
    let start = skip_space(b, 0);
    let digits = start + usize::from(matches!(b.get(start), Some(b'+' | b'-')));
    let mut end = digits;
    while b.get(end).is_some_and(u8::is_ascii_digit) {
        end += 1;
    }
    let about_seconds = || lower.contains("second").then(|| SECONDS_FORM.to_owned());
    if end == digits {
        return Err(about_seconds());
    }
    let unit_at = skip_space(b, end);
    let unit = &lower[unit_at..];
    let Some(after) = unit.strip_prefix("second") else {
        // `5 minutes`, `5 sec`: an interval in a unit pg_cron lacks.
        let one_word = !unit.is_empty()
            && unit
                .trim_end_matches(|c: char| c.is_ascii() && c_isspace(c as u8))
                .bytes()
                .all(|b| b.is_ascii_alphabetic());
        return Err(if one_word {
            Some(SECONDS_FORM.to_owned())
        } else {
            about_seconds()
        });
    };
    let after_s = after.strip_prefix('s');
    let rest = after_s.map_or(after, |s| {
        s.trim_start_matches(|c: char| c.is_ascii() && c_isspace(c as u8))
    });
    if !rest.is_empty() {
        // The rest of the original text, in its own case.
        let at = text.len() - rest.len();
        let trailing = text.get(at..).unwrap_or(rest);
        let note = if after_s.is_none() && rest.bytes().all(c_isspace) {
            " (pg_cron allows them after \"seconds\" but not after \"second\")"
        } else {
            ""
        };
        return Err(Some(format!("trailing characters {trailing:?}{note}")));
    }
    // A minus sign makes sscanf's %u wrap to a huge number, and numbers
    // beyond 32 bits are undefined behaviour in C (glibc wraps them): both
    // are out of range here.
    let negative = b.get(start) == Some(&b'-');
    match lower[digits..end].parse::<u32>() {
        Ok(n) if !negative && (1..=59).contains(&n) => Ok(n),
        _ => Err(Some("seconds must be 1-59".to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::Date;
    use jiff::tz::TimeZone;
    use jiff::Timestamp;
    use proptest::prelude::*;

    fn ok(text: &str) -> String {
        match to_pg_jobs(text) {
            Ok(s) => s,
            Err(e) => panic!("{text:?} refused: {e}"),
        }
    }

    fn err(text: &str) -> String {
        match to_pg_jobs(text) {
            Ok(s) => panic!("{text:?} accepted as {s:?}"),
            Err(e) => e.to_string(),
        }
    }

    /// The message after `invalid schedule "<text>": `.
    fn problem(text: &str) -> String {
        let msg = err(text);
        let prefix = format!("invalid schedule {text:?}: ");
        assert!(msg.starts_with(&prefix), "{msg}");
        msg[prefix.len()..].to_owned()
    }

    #[test]
    fn plain_five_field_schedules_are_returned_trimmed() {
        for text in [
            "*/5 * * * *",
            "0 10 * * *",
            "5 4 * * *",
            "0-30/10,45 1-5 */2 1,6 1-5/2",
            "0 9 * jan-MAR Mon-Fri",
            "0 9 * * sun,SAT",
            "0 0 * * 7",
            "0 0 * * 0-7/7",
            "05 04 * * *",
            "*/59 */23 */31 */12 */7",
            "0 11 $ * *",
            "0 11 $ * 1",
            "0 0 13 * */2",
            "0 0 29 2 *",
            "*\t*\t*\t*\t*",
            "59 23 31 12 6",
        ] {
            assert_eq!(ok(text), text);
        }
        assert_eq!(ok("  0 10 * * *  "), "0 10 * * *");
        assert_eq!(ok("\t0 10 * * *\n"), "0 10 * * *");
    }

    #[test]
    fn pg_jobs_reads_them_as_pg_cron_does() {
        let runs = |text: &str, from: &str| -> Vec<String> {
            let schedule = Schedule::parse(&ok(text)).unwrap();
            let mut t: Timestamp = from.parse().unwrap();
            (0..3)
                .map(|_| {
                    t = schedule.next_after(t, &TimeZone::UTC, t).unwrap();
                    t.to_string()
                })
                .collect()
        };
        // The last day of April or May that is a Sunday, Wednesday or
        // Saturday ("sun-sun" is Sunday alone; pg_jobs once read it as
        // every day).
        assert_eq!(
            runs("0 0 $ 4-4,5-5 */3,sun-sun", "2026-05-31T23:59:00Z"),
            [
                "2028-04-30T00:00:00Z",
                "2028-05-31T00:00:00Z",
                "2031-04-30T00:00:00Z"
            ]
        );
        // Both day fields restricted: either (the 13th, or any Friday).
        assert_eq!(
            runs("0 0 13 * 5", "2026-03-01T12:34:56Z"),
            [
                "2026-03-06T00:00:00Z",
                "2026-03-13T00:00:00Z",
                "2026-03-20T00:00:00Z"
            ]
        );
        // `$` with a restricted day-of-week: the last day, or any Monday.
        assert_eq!(
            runs("0 11 $ 2 1", "2026-02-20T00:00:00Z"),
            [
                "2026-02-23T11:00:00Z",
                "2026-02-28T11:00:00Z",
                "2027-02-01T11:00:00Z"
            ]
        );
    }

    #[test]
    fn macros_in_any_case() {
        for word in [
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
            "@reboot",
            "@yearly",
            "@annually",
        ] {
            assert_eq!(ok(word), word);
            assert_eq!(ok(&format!("  {word} \n")), word);
        }
        // pg_cron takes lower case only; the meaning is plain in any case,
        // and pg_jobs reads macros in any case.
        assert_eq!(ok("@Daily"), "@Daily");
        assert_eq!(ok("@HOURLY"), "@HOURLY");
        assert_eq!(ok("@ReBoot"), "@ReBoot");
        assert_eq!(ok("@restart"), "@reboot");
        assert_eq!(ok("@RESTART"), "@reboot");
        assert_eq!(ok("# nightly\n@daily"), "@daily");
        // pg_cron ignores what follows the word; refused here.
        assert_eq!(
            problem("@daily at midnight"),
            "trailing characters \"at midnight\" after \"@daily\""
        );
        assert_eq!(
            problem("@reboot\tnow"),
            "trailing characters \"now\" after \"@reboot\""
        );
        assert_eq!(problem("@Weekly;"), "trailing characters \";\" after \"@Weekly\"");
        assert_eq!(
            problem("@daily\n* * * * *"),
            "trailing characters \"* * * * *\" after \"@daily\""
        );
    }

    #[test]
    fn yearly_is_once_a_year() {
        // pg_cron 1.6 never runs @yearly/@annually (month 0); pg_jobs and
        // every other cron run them at 0 0 1 1 *.
        for text in ["@yearly", "@annually", "@YEARLY"] {
            assert_eq!(ok(text), text);
            let schedule = Schedule::parse(&ok(text)).unwrap();
            let t: Timestamp = "2026-03-01T12:00:00Z".parse().unwrap();
            assert_eq!(
                schedule.next_after(t, &TimeZone::UTC, t).unwrap().to_string(),
                "2027-01-01T00:00:00Z"
            );
        }
    }

    #[test]
    fn seconds_intervals() {
        for text in [
            "1 second",
            "30 seconds",
            "59 seconds",
            "5seconds",
            "1 seconds",
            "05 seconds",
        ] {
            assert_eq!(ok(text), text);
        }
        // pg_cron's own tests: case and surrounding spaces.
        assert_eq!(ok(" 30 sEcOnDs "), "30 sEcOnDs");
        assert_eq!(ok("17  seconds "), "17  seconds");
        assert_eq!(ok("\n5 \t seconds\r\n"), "5 \t seconds");
        // sscanf's %u takes a plus sign; pg_jobs does not.
        assert_eq!(ok("+5 seconds"), "5 seconds");
        // No length limit on the interval form.
        assert_eq!(ok(&format!("{}7 seconds", " ".repeat(1500))), "7 seconds");
    }

    #[test]
    fn text_pg_cron_ignores_is_refused() {
        let six = "pg_cron's schedules have five (minute hour day-of-month month day-of-week), and a sixth is refused rather than ignored";
        // A sixth field: pg_cron reads five and ignores the rest.
        for (text, count) in [
            ("* * * * * *", "six"),
            ("*/10 * * * * *", "six"),
            ("* * * * * 2024", "six"),
            ("0 0 12 * * ?", "six"),
            ("0 0 12 * * MON-FRI", "six"),
            ("0 0 12 * * 6L", "six"),
            ("0 0 12 * * MON#2", "six"),
            ("0 0 12 * * jan,FEB", "six"),
            ("0 0 12 * * ? 2024", "seven"),
            ("0 0 12 * * ? 2024 x", "seven"),
            ("* * * * * * echo hi", "six"),
            ("* * * * * 1 2 3 4 5 6", "eleven"),
        ] {
            let want = if count == "eleven" {
                format!("11 fields; {six}")
            } else {
                format!("{count} fields; {six}")
            };
            assert_eq!(problem(text), want, "{text:?}");
        }
        // Anything else after the fifth field.
        for (text, rest) in [
            ("* * * * * x", "x"),
            ("* * * * *;", ";"),
            ("* * * * *; x", "; x"),
            ("0 3 * * 1 # nightly", "# nightly"),
            ("0 3 * * 1 #", "#"),
            ("0 3 * * 1 /usr/bin/true", "/usr/bin/true"),
            ("0 3 * * 1 Monday", "Monday"),
            ("0 3 * * 1\nanything", "anything"),
            ("0 3 * * 1\n0 4 * * *", "0 4 * * *"),
            ("0 3 * * 1 \n\t# later\n", "# later"),
        ] {
            assert_eq!(
                problem(text),
                format!("trailing characters {rest:?} after the five fields"),
                "{text:?}"
            );
        }
        // Characters after an item, up to the next blank.
        for (text, why) in [
            ("*/5;x * * * *", "minute field: unexpected \";x\" after \"*/5\""),
            ("1-5.3 * * * *", "minute field: unexpected \".3\" after \"1-5\""),
            ("*x 0 * * *", "minute field: unexpected \"x\" after \"*\""),
            (
                "1-5.x,7 * * * *",
                "minute field: unexpected \".x,7\" after \"1-5\"",
            ),
            ("0 1,2% * * *", "hour field: unexpected \"%\" after \"2\""),
            (
                "0 0 * * MON#2",
                "day-of-week field: unexpected \"#2\" after \"MON\"",
            ),
            (
                "0 0 * * 1-5#",
                "day-of-week field: unexpected \"#\" after \"1-5\"",
            ),
            ("0 0 * * 5.", "day-of-week field: unexpected \".\" after \"5\""),
            (
                "0 0 * jan-mar? *",
                "month field: unexpected \"?\" after \"jan-mar\"",
            ),
            ("0 0 5$ * *", DOLLAR_ALONE),
        ] {
            assert_eq!(problem(text), why, "{text:?}");
        }
        // A whole entry and then text is not meant as an interval.
        assert_eq!(
            problem("30 * * * * seconds"),
            "trailing characters \"seconds\" after the five fields"
        );
        assert_eq!(
            problem("30 * * * *;seconds"),
            "trailing characters \";seconds\" after the five fields"
        );
        assert_eq!(
            problem("@daily 5 seconds"),
            "trailing characters \"5 seconds\" after \"@daily\""
        );
        // White space is not text: pg_cron skips a `\r` too.
        assert_eq!(ok("0 3 * * 1\r\n"), "0 3 * * 1");
        assert_eq!(ok("0\r 3 * * 1"), "0\r 3 * * 1");
        assert_eq!(ok("0 3 * * 1 \n\n"), "0 3 * * 1");
        // Blank and comment lines before the entry are still skipped.
        assert_eq!(ok("# nightly\n\n \t\n0 3 * * *"), "0 3 * * *");
    }

    #[test]
    fn stars_in_lists_keep_pg_cron_meaning() {
        assert_eq!(ok("*,5 * * * *"), "* * * * *");
        // Full but not starting with `*`: the OR rule with day 5 holds, so
        // every day runs, and pg_jobs must not see a leading `*`.
        assert_eq!(ok("0 0 5 * 1,*"), "0 0 5 * 0-7");
        assert_eq!(ok("0 0 */2,4 * 1"), "0 0 */2,4 * 1");
        // Without its empty first item, "*/2" must not start the field.
        assert_eq!(ok("* * 1 * 3-3,*/2"), "* * 1 * 3-3,*/2");
        assert_eq!(ok("* * 1 * 3,*/2"), "* * 1 * 3,*/2");
        assert_eq!(ok("* * 1 * 3-3,*/2,*"), "* * 1 * 0-7");
    }

    #[test]
    fn backwards_ranges_are_refused() {
        for (text, why) in [
            ("50-10 * * * *", "minute field: range 50-10 runs backwards (pg_cron would read it as 8-10,50-55)"),
            ("0 22-2 * * *", "hour field: range 22-2 runs backwards (pg_cron would read it as 0-2,22-23)"),
            ("0 0 1 11-2 *", "month field: range 11-2 runs backwards (pg_cron would read it as 1-2,11-12)"),
            ("0 0 1 Nov-Feb *", "month field: range Nov-Feb runs backwards (pg_cron would read it as 1-2,11-12)"),
            ("5-1 * * * *", "minute field: range 5-1 runs backwards (pg_cron would select nothing for it)"),
            ("0 0 5-1 * 1", "day-of-month field: range 5-1 runs backwards (pg_cron would select nothing for it)"),
            ("0 0 1,5-1 * *", "day-of-month field: range 5-1 runs backwards (pg_cron would select nothing for it)"),
            ("50-10/2 * * * *", "minute field: range 50-10/2 runs backwards (pg_cron would select nothing for it)"),
            ("0 0 * * Sat-Mon", "day-of-week field: range Sat-Mon runs backwards (pg_cron would select nothing for it)"),
            ("0 0 * * Mon-Sun", "day-of-week field: range Mon-Sun runs backwards (pg_cron would select nothing for it; Sunday is also 7, which can end a range)"),
            ("0 0 * * 3-0/2", "day-of-week field: range 3-0/2 runs backwards (pg_cron would select nothing for it; Sunday is also 7, which can end a range)"),
            ("0 0 * * MON-SUN#1", "day-of-week field: range MON-SUN runs backwards (pg_cron would select nothing for it; Sunday is also 7, which can end a range)"),
        ] {
            assert_eq!(problem(text), why, "{text:?}");
        }
        // A one-value range is not backwards.
        assert_eq!(ok("0 0 * * sun-sun"), "0 0 * * sun-sun");
        assert_eq!(ok("0 0 * * Mon-7"), "0 0 * * Mon-7");
    }

    #[test]
    fn refusals_name_the_problem() {
        const MACROS_KNOWN: &str =
            "pg_cron knows @yearly @annually @monthly @weekly @daily @midnight @hourly @reboot @restart";
        let five = "pg_cron schedules have five (minute hour day-of-month month day-of-week)";
        for (text, why) in [
            (
                "*/0 * * * *",
                "minute field: a step must be at least 1".to_owned(),
            ),
            (
                "*/0 10 * * *",
                "minute field: a step must be at least 1".to_owned(),
            ),
            ("* * * *", format!("four fields; {five}")),
            ("* * * * ", format!("four fields; {five}")),
            ("*", format!("one field; {five}")),
            ("0 11 $", format!("three fields; {five}")),
            ("", "the schedule is empty".to_owned()),
            ("  \t ", "the schedule is empty".to_owned()),
            (
                "# just a comment",
                "it has only blank and comment lines".to_owned(),
            ),
            ("60 * * * *", "minute field: 60 is out of range 0-59".to_owned()),
            ("* 24 * * *", "hour field: 24 is out of range 0-23".to_owned()),
            (
                "* * 0 * *",
                "day-of-month field: 0 is out of range 1-31".to_owned(),
            ),
            (
                "* * 32 * *",
                "day-of-month field: 32 is out of range 1-31".to_owned(),
            ),
            ("* * * 13 *", "month field: 13 is out of range 1-12".to_owned()),
            ("* * * 0 *", "month field: 0 is out of range 1-12".to_owned()),
            ("* * * * 8", "day-of-week field: 8 is out of range 0-7".to_owned()),
            ("1-60 * * * *", "minute field: 60 is out of range 0-59".to_owned()),
            (
                "4294967296 * * * *",
                "minute field: 4294967296 is out of range 0-59".to_owned(),
            ),
            (
                "-1 * * * *",
                "minute field: expected a number or *, found \"-\"".to_owned(),
            ),
            (
                "*/-1 10 * * *",
                "minute field: expected a step after \"/\", found \"-\"".to_owned(),
            ),
            (
                "*/60 10 * * *",
                "minute field: step 60 is larger than 59".to_owned(),
            ),
            (
                "*/5000000000 10 * * *",
                "minute field: step 5000000000 is larger than 59".to_owned(),
            ),
            (
                "0 0 * * */8",
                "day-of-week field: step 8 is larger than 7".to_owned(),
            ),
            (
                "*/x * * * *",
                "minute field: step \"x\" is not a number".to_owned(),
            ),
            (
                "1- * * * *",
                "minute field: expected a number after \"-\", found \" \"".to_owned(),
            ),
            (
                "1,,2 * * * *",
                "minute field: expected a number or *, found \",\"".to_owned(),
            ),
            (
                "1, 2 * * * *",
                "minute field: expected a number or *, found \" \"".to_owned(),
            ),
            ("5x * * * *", "minute field: \"5x\" is not a number".to_owned()),
            (
                "* *\n* * *",
                "day-of-month field: expected a number, * or $, found \"\\n\"".to_owned(),
            ),
            (
                "0 0 L * *",
                "day-of-month field: \"L\" is not a number".to_owned(),
            ),
            (
                "0 0 ? * *",
                "day-of-month field: expected a number, * or $, found \"?\"".to_owned(),
            ),
            (
                "0 0 * * Monday",
                "day-of-week field: \"Monday\" is not a number or a day name (Sun-Sat)".to_owned(),
            ),
            (
                "0 0 * FOO *",
                "month field: \"FOO\" is not a number or a month name (Jan-Dec)".to_owned(),
            ),
            ("@restar", format!("unknown macro \"@restar\"; {MACROS_KNOWN}")),
            ("@", format!("unknown macro \"@\"; {MACROS_KNOWN}")),
            ("@5", format!("unknown macro \"@5\"; {MACROS_KNOWN}")),
            (
                "@dailyx at 5",
                format!("unknown macro \"@dailyx\"; {MACROS_KNOWN}"),
            ),
        ] {
            assert_eq!(problem(text), why, "{text:?}");
        }
    }

    #[test]
    fn refusals_pg_cron_has_and_pg_jobs_lacks() {
        // pg_jobs reads "5/15" as 5-59/15; pg_cron refuses a step after a number.
        assert_eq!(
            problem("5/15 * * * *"),
            "minute field: a step needs * or a range before it (\"5/…\" is refused; \"5-59/…\" is the same from 5 on)"
        );
        assert_eq!(
            problem("0 11 $foo * *"),
            "day-of-month field: \"$\" (the last day of the month) must be the whole field"
        );
        assert_eq!(problem("0 11 1,$ * *"), DOLLAR_ALONE);
        assert_eq!(problem("0 11 $,1 * *"), DOLLAR_ALONE);
        assert_eq!(
            problem("0 11 5-$ * *"),
            "day-of-month field: expected a number after \"-\", found \"$\""
        );
        assert_eq!(
            problem("$ * * * *"),
            "minute field: expected a number or *, found \"$\""
        );
        // One byte under the buffer is fine; a byte more is not, even when
        // the rest is blanks.
        let fits = format!("* * * * *{}", " ".repeat(BUFFER_LEN - 10));
        assert_eq!(ok(&fits), "* * * * *");
        let long = format!("{fits} ");
        assert_eq!(
            problem(&long),
            "it is 1000 bytes long, and pg_cron reads cron schedules of at most 999 bytes"
        );
        assert_eq!(problem("* * * * *\0"), "it contains a NUL character");
    }

    #[test]
    fn seconds_refusals() {
        let range = "seconds must be 1-59";
        for text in [
            "0 seconds",
            "60 seconds",
            "-1 seconds",
            "-5 seconds",
            "10000000000 seconds",
            "4294967301 seconds",
        ] {
            assert_eq!(problem(text), range, "{text}");
        }
        assert_eq!(problem("5 secondc"), "trailing characters \"c\"");
        assert_eq!(problem("50 seconds c"), "trailing characters \"c\"");
        assert_eq!(problem("5 SECONDSS"), "trailing characters \"S\"");
        assert_eq!(problem("60 seconds x"), "trailing characters \"x\"");
        assert_eq!(
            problem("5 second "),
            "trailing characters \" \" (pg_cron allows them after \"seconds\" but not after \"second\")"
        );
        for text in [
            "5 minutes",
            "5 sec",
            "1.5 seconds",
            "every 5 seconds",
            "seconds",
            "5 seconx",
        ] {
            assert_eq!(problem(text), SECONDS_FORM, "{text}");
        }
    }

    #[test]
    fn schedules_that_never_run() {
        for text in ["0 0 31 2 *", "0 0 30 2 *", "0 0 30,31 2 *", "0 0 31 4,6,9,11 *"] {
            assert_eq!(
                problem(text),
                "pg_cron accepts it but it can never run; pg_jobs refuses schedules that never run",
                "{text}"
            );
            assert!(matches!(
                to_pg_jobs(text),
                Err(PgCronScheduleError::NeverRuns { .. })
            ));
        }
        // Either day field may match: the 31st of February or any Monday.
        assert_eq!(ok("0 0 31 2 1"), "0 0 31 2 1");
    }

    // The reference: pg_cron's meaning restated from its rules, per
    // generated item, and searched minute by minute. The generated
    // schedules are those pg_jobs accepts; `Defect` spoils one in each of
    // the ways refused where pg_cron would silently change the meaning.

    #[derive(Debug, Clone)]
    enum GenItem {
        /// `*`, or `*/step` when step > 1 or `slash`.
        Star {
            step: u32,
            slash: bool,
        },
        /// `a-b` or `a-b/s`; a <= b except in defects.
        Range(u32, u32, u32),
        One(u32),
    }

    #[derive(Debug, Clone)]
    struct GenField {
        items: Vec<GenItem>,
        /// Characters pg_cron skips after the last item: white space here,
        /// other text in defects.
        junk: String,
        /// How to spell values: bit 0 names where allowed, bit 1 a leading zero.
        spelling: u8,
    }

    #[derive(Debug, Clone)]
    enum GenSchedule {
        Cron {
            fields: Vec<GenField>,
            /// Day-of-month is `$` instead of fields[2].
            dollar: bool,
            lead: &'static str,
            sep: &'static str,
            tail: &'static str,
        },
        /// The word as written (any case), and what follows it.
        Macro(String, &'static str),
    }

    fn spell(spec: &Spec, v: u32, spelling: u8) -> String {
        if spelling & 1 != 0 {
            if let Some(name) = spec.names.get((v - spec.low) as usize) {
                return if spelling & 4 != 0 {
                    name.to_uppercase()
                } else {
                    name.to_lowercase()
                };
            }
        }
        if spelling & 2 != 0 {
            format!("0{v}")
        } else {
            v.to_string()
        }
    }

    fn render_field(spec: &Spec, f: &GenField) -> String {
        let items: Vec<String> = f
            .items
            .iter()
            .map(|item| match *item {
                GenItem::Star { step, slash } if step > 1 || slash => format!("*/{step}"),
                GenItem::Star { .. } => "*".to_owned(),
                GenItem::Range(a, b, 1) => {
                    format!("{}-{}", spell(spec, a, f.spelling), spell(spec, b, f.spelling))
                }
                GenItem::Range(a, b, s) => {
                    format!(
                        "{}-{}/{s}",
                        spell(spec, a, f.spelling),
                        spell(spec, b, f.spelling)
                    )
                }
                GenItem::One(v) => spell(spec, v, f.spelling),
            })
            .collect();
        format!("{}{}", items.join(","), f.junk)
    }

    const SPECS: [&Spec; 5] = [&MINUTE, &HOUR, &DOM, &MONTH, &DOW];

    impl GenSchedule {
        fn text(&self) -> String {
            match self {
                GenSchedule::Macro(word, tail) => format!("{word}{tail}"),
                GenSchedule::Cron {
                    fields,
                    dollar,
                    lead,
                    sep,
                    tail,
                } => {
                    let parts: Vec<String> = fields
                        .iter()
                        .zip(SPECS)
                        .enumerate()
                        .map(|(i, (f, spec))| {
                            if i == 2 && *dollar {
                                "$".to_owned()
                            } else {
                                render_field(spec, f)
                            }
                        })
                        .collect();
                    format!("{lead}{}{tail}", parts.join(sep))
                }
            }
        }

        fn reference(&self) -> Reference {
            match self {
                GenSchedule::Macro(word, _) => {
                    let word = word.to_ascii_lowercase();
                    let (dom, month, dow, days_and) = match word.as_str() {
                        // Not pg_cron 1.6's (never), but every other cron's.
                        "@yearly" | "@annually" => (1 << 1, 1 << 1, 0x7f, true),
                        "@monthly" => (1 << 1, 0x1ffe, 0x7f, true),
                        "@weekly" => (0xffff_fffe, 0x1ffe, 1, true),
                        _ => (0xffff_fffe, 0x1ffe, 0x7f, false),
                    };
                    let hour = if word == "@hourly" { (1 << 24) - 1 } else { 1 };
                    Reference {
                        sets: [1, hour, dom, month, dow],
                        dom_last: false,
                        days_and,
                    }
                }
                GenSchedule::Cron { fields, dollar, .. } => {
                    let mut sets = [0u64; 5];
                    for (i, (f, spec)) in fields.iter().zip(SPECS).enumerate() {
                        sets[i] = reference_set(spec, &f.items);
                    }
                    if *dollar {
                        sets[2] = 0;
                    }
                    sets[4] = (sets[4] | sets[4] >> 7) & 0x7f;
                    let star = |f: &GenField| matches!(f.items.first(), Some(GenItem::Star { .. }));
                    Reference {
                        sets,
                        dom_last: *dollar,
                        days_and: (!*dollar && star(&fields[2])) || star(&fields[4]),
                    }
                }
            }
        }
    }

    /// The values an item list selects, from pg_cron's rules (ranges run
    /// forwards here).
    fn reference_set(spec: &Spec, items: &[GenItem]) -> u64 {
        let mut set = 0u64;
        for item in items {
            let values: Vec<u32> = match *item {
                GenItem::Star { step, .. } => (spec.low..=spec.high).step_by(step as usize).collect(),
                GenItem::One(v) => vec![v],
                GenItem::Range(a, b, s) => (a..=b).step_by(s as usize).collect(),
            };
            for v in values {
                set |= 1 << v;
            }
        }
        set
    }

    /// What pg_cron selects for a backwards range `a-b` (a > b) without a
    /// step: its bit setter fills bytes of (value - low), from A's offset to
    /// the end of its 8-bit block and from the start of B's block to B's
    /// offset, unless they share a block. As a list, for the message.
    fn pg_cron_backwards(spec: &Spec, a: u32, b: u32) -> Option<String> {
        let (x, y) = (a - spec.low, b - spec.low);
        if x / 8 == y / 8 {
            return None;
        }
        let values: Vec<u32> = ((y & !7)..=y)
            .chain(x..=(x | 7))
            .map(|o| o + spec.low)
            .filter(|v| *v <= spec.high)
            .collect();
        // Consecutive runs, as "8-10,50-55".
        let mut out: Vec<String> = Vec::new();
        let mut i = 0;
        while i < values.len() {
            let mut j = i;
            while j + 1 < values.len() && values[j + 1] == values[j] + 1 {
                j += 1;
            }
            out.push(if i == j {
                values[i].to_string()
            } else {
                format!("{}-{}", values[i], values[j])
            });
            i = j + 1;
        }
        Some(out.join(","))
    }

    #[derive(Debug)]
    struct Reference {
        /// Minute, hour, day-of-month, month, day-of-week (0-6).
        sets: [u64; 5],
        dom_last: bool,
        days_and: bool,
    }

    impl Reference {
        fn day_runs(&self, date: Date) -> bool {
            let has = |set: u64, v: i64| set & (1u64 << v) != 0;
            let dom = has(self.sets[2], i64::from(date.day()))
                || (self.dom_last && date.day() == date.days_in_month());
            let dow = has(self.sets[4], i64::from(date.weekday().to_sunday_zero_offset()));
            let days = if self.days_and { dom && dow } else { dom || dow };
            days && has(self.sets[3], i64::from(date.month()))
        }

        /// The first minute strictly after `after` that runs, within 30
        /// years (a full cycle of weekdays and leap years, and then some).
        fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
            let t = after.to_zoned(TimeZone::UTC);
            let mut day = t.date();
            // Runs are at second 0, so the first candidate is the next minute.
            let mut from = i64::from(t.hour()) * 60 + i64::from(t.minute()) + 1;
            for _ in 0..(366 * 30) {
                if self.day_runs(day) {
                    for m in from..1440 {
                        let (h, mi) = (m / 60, m % 60);
                        if self.sets[1] & (1 << h) != 0 && self.sets[0] & (1 << mi) != 0 {
                            return day
                                .at(h as i8, mi as i8, 0, 0)
                                .to_zoned(TimeZone::UTC)
                                .ok()
                                .map(|z| z.timestamp());
                        }
                    }
                }
                day = day.tomorrow().ok()?;
                from = 0;
            }
            None
        }
    }

    fn item_strategy(low: u32, high: u32) -> impl Strategy<Value = GenItem> {
        prop_oneof![
            3 => (1..=high, any::<bool>()).prop_map(|(step, slash)| GenItem::Star { step: if step > 6 { 1 } else { step }, slash }),
            1 => (1..=high, any::<bool>()).prop_map(|(step, slash)| GenItem::Star { step, slash }),
            2 => (low..=high).prop_map(GenItem::One),
            2 => (low..=high, low..=high, 1..=3u32).prop_map(|(a, b, s)| GenItem::Range(a.min(b), a.max(b), s)),
            1 => (low..=high, low..=high, 1..=high).prop_map(|(a, b, s)| GenItem::Range(a.min(b), a.max(b), s)),
        ]
    }

    /// Later items are rarely a bare `*`: it makes the field full, and
    /// pg_jobs cannot read such a list as written.
    fn field_strategy(spec: &'static Spec) -> impl Strategy<Value = GenField> {
        let later = item_strategy(spec.low, spec.high).prop_filter("few bare stars", |i| {
            !matches!(
                i,
                GenItem::Star {
                    step: 1,
                    slash: false
                }
            )
        });
        (
            item_strategy(spec.low, spec.high),
            proptest::collection::vec(later, 0..=2),
            // pg_cron skips a `\r` after an item; it is white space.
            prop_oneof![40 => Just(""), 1 => Just("\r")],
            any::<u8>(),
        )
            .prop_map(|(first, rest, junk, spelling)| GenField {
                items: std::iter::once(first).chain(rest).collect(),
                junk: junk.to_owned(),
                spelling,
            })
    }

    fn cron_strategy() -> impl Strategy<Value = GenSchedule> {
        (
            (field_strategy(&MINUTE), field_strategy(&HOUR), field_strategy(&DOM), field_strategy(&MONTH), field_strategy(&DOW)),
            proptest::bool::weighted(0.15),
            prop_oneof![12 => Just(""), 1 => Just("  "), 1 => Just("# note\n"), 1 => Just("\n \t\n\t")],
            prop_oneof![4 => Just(" "), 1 => Just("\t"), 1 => Just(" \t  ")],
            prop_oneof![16 => Just(""), 1 => Just(" "), 1 => Just("\n"), 1 => Just(" \r\n"), 1 => Just("\n\n\t")],
        )
            .prop_map(|((m, h, d, mo, w), dollar, lead, sep, tail)| GenSchedule::Cron {
                fields: vec![m, h, d, mo, w],
                dollar,
                lead,
                sep,
                tail,
            })
    }

    fn macro_word() -> impl Strategy<Value = String> {
        let word = prop_oneof![
            Just("@yearly"),
            Just("@annually"),
            Just("@monthly"),
            Just("@weekly"),
            Just("@daily"),
            Just("@midnight"),
            Just("@hourly")
        ];
        // Bit i of `case` upper-cases letter i; mostly all lower case.
        let case = prop_oneof![3 => Just(0u16), 1 => any::<u16>()];
        (word, case).prop_map(|(w, case)| {
            w.chars()
                .enumerate()
                .map(|(i, c)| {
                    if case & (1 << i) != 0 {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect()
        })
    }

    fn schedule_strategy() -> impl Strategy<Value = GenSchedule> {
        let tail = prop_oneof![Just(""), Just(" "), Just("\n"), Just(" \r\n")];
        prop_oneof![9 => cron_strategy(), 1 => (macro_word(), tail).prop_map(|(w, t)| GenSchedule::Macro(w, t))]
    }

    /// One way to spoil a schedule that pg_cron would silently read
    /// otherwise than it is written.
    #[derive(Debug, Clone)]
    enum Defect {
        /// Separator and token after the fifth field, shaped like a field.
        SixthField(&'static str, &'static str),
        /// Separator and other text after the fifth field.
        TextAfter(&'static str, &'static str),
        /// Characters after the last item of field `index % 5`.
        AfterItem(usize, &'static str),
        /// A backwards range `a-b`, `a-b/s` when s > 1, as the first item
        /// of field `index % 5` (values from `low + a % span`).
        Backwards(usize, u32, u32, u32),
    }

    fn defect_strategy() -> impl Strategy<Value = Defect> {
        let sep = prop_oneof![Just(" "), Just("\t"), Just("  ")];
        prop_oneof![
            (
                sep.clone(),
                prop_oneof![
                    Just("*"),
                    Just("2024"),
                    Just("?"),
                    Just("0-59/5"),
                    Just("MON#2"),
                    Just("6L"),
                    Just("jan"),
                    Just("* *"),
                    Just("0 echo")
                ]
            )
                .prop_map(|(s, t)| Defect::SixthField(s, t)),
            (
                prop_oneof![Just(""), Just(" "), Just("\n"), Just("\t")],
                prop_oneof![Just(";"), Just("& x"), Just("%"), Just("|")]
            )
                .prop_map(|(s, t)| Defect::TextAfter(s, t)),
            (
                sep,
                prop_oneof![
                    Just("x"),
                    Just("# nightly"),
                    Just("/bin/true"),
                    Just("Monday"),
                    Just("\"x\"")
                ]
            )
                .prop_map(|(s, t)| Defect::TextAfter(s, t)),
            (Just("\n"), prop_oneof![Just("0 4 * * *"), Just("more")])
                .prop_map(|(s, t)| Defect::TextAfter(s, t)),
            (
                0..5usize,
                prop_oneof![
                    Just(";x"),
                    Just(".3"),
                    Just("#2"),
                    Just("?"),
                    Just("%"),
                    Just("&"),
                    Just(".x,7")
                ]
            )
                .prop_map(|(i, j)| Defect::AfterItem(i, j)),
            (
                0..5usize,
                0..60u32,
                0..60u32,
                prop_oneof![3 => Just(1u32), 1 => 2..5u32]
            )
                .prop_map(|(i, a, b, s)| Defect::Backwards(i, a, b, s)),
        ]
    }

    /// `gen` (a cron schedule) spoiled by `defect`, and a part of the
    /// message that must refuse it.
    fn spoil(gen: &GenSchedule, defect: &Defect) -> (String, String) {
        let GenSchedule::Cron {
            fields,
            dollar,
            lead,
            sep,
            ..
        } = gen
        else {
            unreachable!("cron schedules only")
        };
        let mut fields = fields.clone();
        let mut tail = String::new();
        // A field that is not `$`.
        let pick = |i: usize| if *dollar && i % 5 == 2 { 3 } else { i % 5 };
        let want = match *defect {
            Defect::SixthField(s, t) => {
                tail = format!("{s}{t}");
                let count = if t.starts_with("* ") { "seven" } else { "six" };
                format!("{count} fields; pg_cron's schedules have five (minute hour day-of-month month day-of-week), and a sixth is refused rather than ignored")
            }
            Defect::TextAfter(s, t) => {
                tail = format!("{s}{t}");
                format!("trailing characters {t:?} after the five fields")
            }
            Defect::AfterItem(i, junk) => {
                let i = pick(i);
                let spec = SPECS[i];
                fields[i].junk = junk.to_owned();
                let last = fields[i].clone();
                let last = GenField {
                    items: last.items[last.items.len() - 1..].to_vec(),
                    junk: String::new(),
                    ..last
                };
                if i == 4 && !field_char(junk.as_bytes()[0]) {
                    format!("trailing characters {junk:?} after the five fields")
                } else {
                    format!(
                        "{} field: unexpected {junk:?} after {:?}",
                        spec.name,
                        render_field(spec, &last)
                    )
                }
            }
            Defect::Backwards(i, a, b, s) => {
                let i = pick(i);
                let spec = SPECS[i];
                let span = spec.high - spec.low + 1;
                let (a, b) = (spec.low + a % span, spec.low + b % span);
                let (a, b) = if a == b {
                    if a == spec.low {
                        (a + 1, a)
                    } else {
                        (a, a - 1)
                    }
                } else {
                    (a.max(b), a.min(b))
                };
                fields[i].items[0] = GenItem::Range(a, b, s);
                let pg_cron = match (s, pg_cron_backwards(spec, a, b)) {
                    (1, Some(values)) => format!("(pg_cron would read it as {values}"),
                    _ => "(pg_cron would select nothing for it".to_owned(),
                };
                format!(
                    "{} field: range {} runs backwards {pg_cron}",
                    spec.name,
                    render_field(
                        spec,
                        &GenField {
                            items: vec![GenItem::Range(a, b, s)],
                            junk: String::new(),
                            spelling: fields[i].spelling,
                        }
                    )
                )
            }
        };
        let spoiled = GenSchedule::Cron {
            fields,
            dollar: *dollar,
            lead,
            sep,
            tail: "",
        };
        (format!("{}{tail}", spoiled.text()), want)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn what_pg_cron_would_misread_is_refused(gen in cron_strategy(), defect in defect_strategy()) {
            let (text, want) = spoil(&gen, &defect);
            match to_pg_jobs(&text) {
                Err(PgCronScheduleError::Refused { problem, .. }) => {
                    prop_assert!(problem.starts_with(&want), "{:?}: {:?}, not {:?}", text, problem, want);
                }
                other => return Err(TestCaseError::fail(format!("{text:?} ({defect:?}): {other:?}"))),
            }
        }

        #[test]
        fn macros_after_the_word_are_refused(word in macro_word(), tail in prop_oneof![Just(" x"), Just(";"), Just("\t* * * * *"), Just("\n0 0 * * *"), Just(" @daily")]) {
            let text = format!("{word}{tail}");
            let rest = tail.trim_start();
            prop_assert_eq!(
                to_pg_jobs(&text),
                Err(PgCronScheduleError::Refused { text: text.clone(), problem: format!("trailing characters {rest:?} after {word:?}") })
            );
        }


        #[test]
        fn pg_jobs_runs_when_pg_cron_would(gen in schedule_strategy(), start in 1_767_225_600i64..1_893_456_000) {
            let text = gen.text();
            let reference = gen.reference();
            let after = Timestamp::from_second(start).unwrap();
            match to_pg_jobs(&text) {
                Ok(pg_jobs) => {
                    let schedule = Schedule::parse(&pg_jobs).unwrap();
                    let mut t = after;
                    for _ in 0..5 {
                        let expected = reference.next_after(t);
                        prop_assert!(expected.is_some(), "{:?} -> {:?}: the reference never runs", text, pg_jobs);
                        let got = schedule.next_after(t, &TimeZone::UTC, after);
                        prop_assert_eq!(got, expected, "{:?} -> {:?} after {}", text, pg_jobs, t);
                        t = got.unwrap();
                    }
                }
                Err(PgCronScheduleError::NeverRuns { .. }) => {
                    prop_assert_eq!(reference.next_after(after), None, "{:?} refused as never running", text);
                }
                Err(e) => return Err(TestCaseError::fail(format!("{text:?}: {e}"))),
            }
        }

        #[test]
        fn any_text_is_refused_or_a_valid_pg_jobs_schedule(text in prop_oneof![
            any::<String>(),
            "[0-9a-zA-Z*/,$@#+ \t\n.?-]{0,30}",
            "[0-9*/,$ -]{0,20}",
            "[ +-]?[0-9]{0,12} ?[sSeEcCoOnNdD ]{0,10}",
        ]) {
            if let Ok(pg_jobs) = to_pg_jobs(&text) {
                prop_assert!(Schedule::parse(&pg_jobs).is_ok(), "{:?} -> {:?}", text, pg_jobs);
            }
        }
    }
}
