//! pg_cron 1.6's schedule text, accepted or refused exactly as pg_cron does,
//! and the pg_jobs schedule text with the same meaning ([`to_pg_jobs`]).
//!
//! pg_cron reads a schedule with Vixie cron's one-character-at-a-time
//! reader (its `src/entry.c`, `src/misc.c`, `include/cron.h`) and, only if
//! that fails, as `N second[s]` (`src/job_metadata.c`). Its quirks are part
//! of what users' existing schedules mean, so they are kept here:
//!
//! * blank lines and `#` comment lines before the entry are skipped; fields
//!   are separated by spaces or tabs (not line breaks);
//! * anything after the fifth field is ignored (`* * * * * 2024` means
//!   `* * * * *`), and so is anything after a complete item up to the next
//!   blank (`*/5;x` means `*/5`, `1-5.3` means `1-5`);
//! * an item is `*`, `N`, `A-B`, `*/S` or `A-B/S`; `N/S` is refused; a step
//!   is 1 up to the field's maximum; names (`Jan`..`Dec`, `Sun`..`Sat`, any
//!   case, three letters) only in month and day-of-week, `Sun` is 0, `7` is
//!   Sunday too;
//! * a backwards range `A-B` (A > B) is accepted: with a step it selects
//!   nothing; without one, pg_cron's byte-wise bit setter selects A to the
//!   end of A's 8-bit block and the start of B's block to B (`50-10` is
//!   8-10,50-55), or nothing when both share a block (`5-1`, `Mon-Sun`);
//! * `$` (last day of the month) only as the whole day-of-month field;
//! * macros are lower case only, and what follows the word is ignored;
//!   `@restart` is `@reboot`; `@yearly`/`@annually` ask for month 0, below
//!   the month range, so pg_cron sets no month and never runs them;
//! * when day-of-month and day-of-week are both restricted a day matching
//!   either runs; a field *beginning* with `*` counts as unrestricted.
//!
//! Where pg_cron's text means the same to [`Schedule::parse`] it is returned
//! trimmed, so that what the user typed is what they see; otherwise the
//! same items are written in pg_jobs' grammar. A schedule pg_cron accepts
//! but that can never run is refused: pg_jobs refuses those.

use crate::cron::CronExpr;
use crate::schedule::Schedule;

/// Why [`to_pg_jobs`] refused a schedule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PgCronScheduleError {
    /// pg_cron refuses the text.
    #[error("invalid schedule {text:?}: {problem}")]
    Refused { text: String, problem: String },
    /// pg_cron accepts the text but never runs it; pg_jobs refuses those.
    #[error("invalid schedule {text:?}: pg_cron accepts it but it can never run{why}; pg_jobs refuses schedules that never run")]
    NeverRuns { text: String, why: String },
    /// pg_cron accepts the text but pg_jobs' grammar has nothing meaning the
    /// same. Not expected: the property tests look for such a text.
    #[error("invalid schedule {text:?}: pg_cron accepts it, but no pg_jobs schedule means the same")]
    Untranslatable { text: String },
}

/// pg_cron's schedule text checked exactly as pg_cron checks it, and the pg_jobs schedule text with the same meaning.
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
        Err(cron_problem) => match seconds_interval(text) {
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
                    why: entry.never_runs_hint(),
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
    /// A backwards range, by the values pg_cron sets for it.
    Backwards {
        bits: u64,
    },
}

#[derive(Default)]
struct Field {
    /// Begins with `*`: pg_cron's DOM_STAR/DOW_STAR (and MIN_STAR/HR_STAR).
    star: bool,
    items: Vec<Item>,
    /// The values selected, as bits indexed by value.
    bits: u64,
    /// Backwards ranges that select nothing, for the never-runs message.
    empty_ranges: Vec<String>,
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

    /// The field in pg_jobs' grammar; `None` if it selects nothing.
    fn pg_jobs_text(&self, spec: &Spec) -> Option<String> {
        if self.bits == 0 {
            return None;
        }
        let full = if spec.name == DOW.name {
            fold_sunday(self.bits) == 0x7f
        } else {
            self.bits == spec.all()
        };
        // pg_jobs takes `*` only alone, and a leading `*` decides the day
        // rule, so a full field keeps or avoids the star as pg_cron had it.
        if full {
            return Some(if self.star {
                "*".to_owned()
            } else {
                format!("{}-{}", spec.low, spec.high)
            });
        }
        let items: Vec<String> = self
            .items
            .iter()
            .filter_map(|item| match *item {
                // Only a field pg_cron saw begin with `*` may begin with one.
                Item::All { step } if self.star => Some(format!("*/{step}")),
                Item::All { step } => Some(format!("{}-{}/{step}", spec.low, spec.high)),
                Item::Range { lo, hi, step: 1 } => Some(format!("{lo}-{hi}")),
                Item::Range { lo, hi, step } => Some(format!("{lo}-{hi}/{step}")),
                Item::One(v) => Some(v.to_string()),
                Item::Backwards { bits } => runs(bits, spec),
            })
            .collect();
        Some(items.join(","))
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
        let dom_text = if self.dom_last {
            Some("$".to_owned())
        } else {
            dom.pg_jobs_text(&DOM)
        };
        // A day field that selects nothing (only backwards ranges) leaves
        // the other deciding alone, under the OR rule (an AND would never
        // run, refused before this); `*` there makes pg_jobs AND the other
        // with every day, which is the same.
        let (dom_text, dow_text) = match (dom_text, dow.pg_jobs_text(&DOW)) {
            (Some(d), Some(w)) => (d, w),
            (d, w) => (d.unwrap_or_else(|| "*".into()), w.unwrap_or_else(|| "*".into())),
        };
        // An empty minute, hour or month never runs and is refused earlier;
        // "" makes pg_jobs refuse the text rather than change its meaning.
        [
            minute.pg_jobs_text(&MINUTE).unwrap_or_default(),
            hour.pg_jobs_text(&HOUR).unwrap_or_default(),
            dom_text,
            month.pg_jobs_text(&MONTH).unwrap_or_default(),
            dow_text,
        ]
        .join(" ")
    }

    fn never_runs_hint(&self) -> String {
        if let Some(word @ ("@yearly" | "@annually")) = self.word {
            return format!(
                " (pg_cron's {word} asks for month 0, which is out of range, so it sets no month; \"0 0 1 1 *\" runs once a year)"
            );
        }
        self.fields
            .iter()
            .flat_map(|f| f.empty_ranges.first())
            .next()
            .map(|note| format!(" ({note})"))
            .unwrap_or_default()
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
    let step = match step {
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
    let (start, stop) = (lo - spec.low, hi - spec.low);
    let set = if step == 1 {
        bit_nset(start, stop)
    } else {
        (start..=stop)
            .step_by(step as usize)
            .fold(0u64, |set, i| set | 1 << i)
    };
    let set = (set << spec.low) & spec.all();
    field.bits |= set;
    field.items.push(match &bounds {
        None => Item::All { step },
        Some(_) if lo <= hi => Item::Range { lo, hi, step },
        Some((a, b)) => {
            if set == 0 {
                field.empty_ranges.push(format!(
                    "{name} field: \"{}-{}\" runs backwards ({lo}-{hi}), and pg_cron selects nothing for it",
                    a.text, b.text
                ));
            }
            Item::Backwards { bits: set }
        }
    });
    Ok(c)
}

/// A comma-separated list of items, then whatever follows up to the next
/// blank (ignored), then the blanks. Returns the first character of the
/// next field.
fn get_list(
    r: &mut Reader,
    spec: &Spec,
    mut c: Option<u8>,
    index: usize,
) -> Result<(Option<u8>, Field), String> {
    if matches!(c, None | Some(0)) {
        return Err(field_count(index));
    }
    let mut field = Field {
        star: c == Some(b'*'),
        ..Field::default()
    };
    loop {
        c = get_range(r, spec, c, &mut field)?;
        if c != Some(b',') {
            break;
        }
        c = r.next();
    }
    while !matches!(c, None | Some(b' ' | b'\t' | b'\n' | 0)) {
        c = r.next();
    }
    while is_blank(c) {
        c = r.next();
    }
    Ok((c, field))
}

/// pg_cron's cron reader; `Err` says why it refuses the text.
fn parse_cron(text: &str) -> Result<Parsed, String> {
    if text.len() >= BUFFER_LEN {
        return Err(format!(
            "it is {} bytes long, and pg_cron reads cron schedules of at most {} bytes",
            text.len(),
            BUFFER_LEN - 1
        ));
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
        return Err("it has only blank and comment lines".to_owned());
    }
    if c == Some(b'@') {
        return parse_macro(&mut r);
    }
    let (c, minute) = get_list(&mut r, &MINUTE, c, 0)?;
    let (c, hour) = get_list(&mut r, &HOUR, c, 1)?;
    let (c, dom, dom_last) = if c == Some(b'$') {
        let mut c = r.next();
        if c == Some(0) {
            return Err(field_count(3));
        }
        if !is_blank(c) {
            return Err(DOLLAR_ALONE.to_owned());
        }
        while is_blank(c) {
            c = r.next();
        }
        (c, Field::default(), true)
    } else {
        let (c, dom) = get_list(&mut r, &DOM, c, 2)?;
        (c, dom, false)
    };
    let (c, month) = get_list(&mut r, &MONTH, c, 3)?;
    // Whatever follows the fifth field is ignored, as Vixie cron's command.
    let (_, dow) = get_list(&mut r, &DOW, c, 4)?;
    Ok(Parsed::Cron(Box::new(Entry {
        fields: [minute, hour, dom, month, dow],
        dom_last,
        word: None,
    })))
}

/// `@word`, up to a blank, line break or the end; the rest is ignored.
fn parse_macro(r: &mut Reader) -> Result<Parsed, String> {
    let mut word = Vec::new();
    while let Some(b) = r.next().filter(|b| !matches!(b, b' ' | b'\t' | b'\n' | 0)) {
        word.push(b);
    }
    let word = String::from_utf8_lossy(&word);
    let zero = || Field::only(0);
    let (fields, pg_jobs) = match word.as_ref() {
        "reboot" | "restart" => return Ok(Parsed::Reboot),
        // pg_cron sets month 0 here, below the month range: no month at all.
        "yearly" | "annually" => (
            [zero(), zero(), Field::only(1), Field::default(), Field::every(&DOW, true)],
            if word == "yearly" { "@yearly" } else { "@annually" },
        ),
        "monthly" => (
            [zero(), zero(), Field::only(1), Field::every(&MONTH, false), Field::every(&DOW, true)],
            "@monthly",
        ),
        "weekly" => (
            [
                zero(),
                zero(),
                Field::every(&DOM, false),
                Field::every(&MONTH, false),
                Field { star: true, ..Field::only(0) },
            ],
            "@weekly",
        ),
        "daily" | "midnight" => (
            [
                zero(),
                zero(),
                Field::every(&DOM, false),
                Field::every(&MONTH, false),
                Field::every(&DOW, false),
            ],
            if word == "daily" { "@daily" } else { "@midnight" },
        ),
        "hourly" => (
            [
                zero(),
                Field::every(&HOUR, true),
                Field::every(&DOM, false),
                Field::every(&MONTH, false),
                Field::every(&DOW, false),
            ],
            "@hourly",
        ),
        _ => {
            return Err(format!(
                "unknown macro \"@{word}\"; pg_cron knows @yearly @annually @monthly @weekly @daily @midnight @hourly @reboot @restart, in lower case"
            ))
        }
    };
    Ok(Parsed::Cron(Box::new(Entry {
        fields,
        dom_last: false,
        word: Some(pg_jobs),
    })))
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
    fn macros_stay_macros() {
        for word in ["@monthly", "@weekly", "@daily", "@midnight", "@hourly", "@reboot"] {
            assert_eq!(ok(word), word);
            assert_eq!(ok(&format!("  {word} ")), word);
        }
        // pg_cron ignores what follows the word, and knows @restart.
        assert_eq!(ok("@daily at midnight"), "@daily");
        assert_eq!(ok("@restart"), "@reboot");
        assert_eq!(ok("@reboot\tnow"), "@reboot");
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
    fn what_pg_cron_ignores_is_dropped() {
        // Fields after the fifth: pg_cron reads five and ignores the rest.
        assert_eq!(ok("* * * * * 2024"), "* * * * *");
        assert_eq!(ok("*/10 * * * * *"), "*/10 * * * *");
        assert_eq!(ok("0 3 * * 1 # nightly"), "0 3 * * 1");
        assert_eq!(ok("0 3 * * 1\nanything"), "0 3 * * 1");
        // After a complete item, up to the next blank.
        assert_eq!(ok("*/5;x * * * *"), "*/5 * * * *");
        assert_eq!(ok("1-5.3 * * * *"), "1-5 * * * *");
        assert_eq!(ok("*x 0 * * *"), "* 0 * * *");
        assert_eq!(ok("1-5.x,7 * * * *"), "1-5 * * * *");
        assert_eq!(ok("0 0 5$ * *"), "0 0 5 * *");
        // Quartz's "second Monday" is every Monday to pg_cron: "#2" is skipped.
        assert_eq!(ok("0 0 * * MON#2"), "0 0 * * 1");
        // Blank and comment lines before the entry.
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
        assert_eq!(ok("* * 1 * 3-0,*/2"), "* * 1 * 0-7/2");
    }

    #[test]
    fn backwards_ranges_mean_what_pg_cron_sets() {
        // Bits 50-55 (the rest of 50's byte) and 8-10 (10's byte up to 10).
        assert_eq!(ok("50-10 * * * *"), "8-10,50-55 * * * *");
        assert_eq!(ok("0 22-2 * * *"), "0 0-2,22-23 * * *");
        assert_eq!(ok("0 0 1 11-2 *"), "0 0 1 1-2,11-12 *");
        // Same byte: nothing, so only the other day field decides (OR).
        assert_eq!(ok("0 0 1 * Sat-Sun"), "0 0 1 * *");
        assert_eq!(ok("0 0 5-1 * 1"), "0 0 * * 1");
        assert_eq!(ok("0 0 1,5-1 * *"), "0 0 1 * *");
    }

    #[test]
    fn refusals_name_the_problem() {
        let five = "pg_cron schedules have five (minute hour day-of-month month day-of-week)";
        for (text, why) in [
            ("*/0 * * * *", "minute field: a step must be at least 1".to_owned()),
            ("*/0 10 * * *", "minute field: a step must be at least 1".to_owned()),
            ("* * * *", format!("four fields; {five}")),
            ("* * * * ", format!("four fields; {five}")),
            ("*", format!("one field; {five}")),
            ("0 11 $", format!("three fields; {five}")),
            ("", "the schedule is empty".to_owned()),
            ("  \t ", "the schedule is empty".to_owned()),
            ("# just a comment", "it has only blank and comment lines".to_owned()),
            ("60 * * * *", "minute field: 60 is out of range 0-59".to_owned()),
            ("* 24 * * *", "hour field: 24 is out of range 0-23".to_owned()),
            ("* * 0 * *", "day-of-month field: 0 is out of range 1-31".to_owned()),
            ("* * 32 * *", "day-of-month field: 32 is out of range 1-31".to_owned()),
            ("* * * 13 *", "month field: 13 is out of range 1-12".to_owned()),
            ("* * * 0 *", "month field: 0 is out of range 1-12".to_owned()),
            ("* * * * 8", "day-of-week field: 8 is out of range 0-7".to_owned()),
            ("1-60 * * * *", "minute field: 60 is out of range 0-59".to_owned()),
            ("4294967296 * * * *", "minute field: 4294967296 is out of range 0-59".to_owned()),
            ("-1 * * * *", "minute field: expected a number or *, found \"-\"".to_owned()),
            ("*/-1 10 * * *", "minute field: expected a step after \"/\", found \"-\"".to_owned()),
            ("*/60 10 * * *", "minute field: step 60 is larger than 59".to_owned()),
            ("*/5000000000 10 * * *", "minute field: step 5000000000 is larger than 59".to_owned()),
            ("0 0 * * */8", "day-of-week field: step 8 is larger than 7".to_owned()),
            ("*/x * * * *", "minute field: step \"x\" is not a number".to_owned()),
            ("1- * * * *", "minute field: expected a number after \"-\", found \" \"".to_owned()),
            ("1,,2 * * * *", "minute field: expected a number or *, found \",\"".to_owned()),
            ("1, 2 * * * *", "minute field: expected a number or *, found \" \"".to_owned()),
            ("5x * * * *", "minute field: \"5x\" is not a number".to_owned()),
            ("* *\n* * *", "day-of-month field: expected a number, * or $, found \"\\n\"".to_owned()),
            ("0 0 L * *", "day-of-month field: \"L\" is not a number".to_owned()),
            ("0 0 ? * *", "day-of-month field: expected a number, * or $, found \"?\"".to_owned()),
            ("0 0 * * Monday", "day-of-week field: \"Monday\" is not a number or a day name (Sun-Sat)".to_owned()),
            ("0 0 * FOO *", "month field: \"FOO\" is not a number or a month name (Jan-Dec)".to_owned()),
            ("@Daily", "unknown macro \"@Daily\"; pg_cron knows @yearly @annually @monthly @weekly @daily @midnight @hourly @reboot @restart, in lower case".to_owned()),
            ("@restar", "unknown macro \"@restar\"; pg_cron knows @yearly @annually @monthly @weekly @daily @midnight @hourly @reboot @restart, in lower case".to_owned()),
            ("@", "unknown macro \"@\"; pg_cron knows @yearly @annually @monthly @weekly @daily @midnight @hourly @reboot @restart, in lower case".to_owned()),
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
        let never = |text: &str, why: &str| {
            assert_eq!(
                problem(text),
                format!(
                    "pg_cron accepts it but it can never run{why}; pg_jobs refuses schedules that never run"
                ),
                "{text}"
            );
        };
        never("0 0 31 2 *", "");
        never("0 0 30 2 *", "");
        never(
            "@yearly",
            " (pg_cron's @yearly asks for month 0, which is out of range, so it sets no month; \"0 0 1 1 *\" runs once a year)",
        );
        never(
            "@annually",
            " (pg_cron's @annually asks for month 0, which is out of range, so it sets no month; \"0 0 1 1 *\" runs once a year)",
        );
        never(
            "0 0 * * Mon-Sun",
            " (day-of-week field: \"Mon-Sun\" runs backwards (1-0), and pg_cron selects nothing for it)",
        );
        never(
            "5-1 * * * *",
            " (minute field: \"5-1\" runs backwards (5-1), and pg_cron selects nothing for it)",
        );
        never(
            "50-10/2 * * * *",
            " (minute field: \"50-10\" runs backwards (50-10), and pg_cron selects nothing for it)",
        );
        never(
            "0 0 * * MON-SUN#1",
            " (day-of-week field: \"MON-SUN\" runs backwards (1-0), and pg_cron selects nothing for it)",
        );
        assert!(matches!(
            to_pg_jobs("0 0 31 2 *"),
            Err(PgCronScheduleError::NeverRuns { .. })
        ));
    }

    // The reference: pg_cron's meaning restated from its rules, per
    // generated item, and searched minute by minute.

    #[derive(Debug, Clone)]
    enum GenItem {
        /// `*`, or `*/step` when step > 1 or `slash`.
        Star {
            step: u32,
            slash: bool,
        },
        Range(u32, u32, u32),
        One(u32),
    }

    #[derive(Debug, Clone)]
    struct GenField {
        items: Vec<GenItem>,
        /// Characters pg_cron skips after the last item.
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
        Macro(&'static str, &'static str),
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
                    let (dom, month, dow, days_and) = match *word {
                        "@yearly" | "@annually" => (1 << 1, 0, 0x7f, true),
                        "@monthly" => (1 << 1, 0x1ffe, 0x7f, true),
                        "@weekly" => (0xffff_fffe, 0x1ffe, 1, true),
                        _ => (0xffff_fffe, 0x1ffe, 0x7f, false),
                    };
                    let hour = if *word == "@hourly" { (1 << 24) - 1 } else { 1 };
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

    /// The values an item list selects, from pg_cron's rules: a backwards
    /// range with a step is empty; without one its bit setter fills bytes
    /// of (value - low): from A's offset to the end of its 8-bit block, and
    /// from the start of B's block to B's offset, unless they share a block.
    fn reference_set(spec: &Spec, items: &[GenItem]) -> u64 {
        let mut set = 0u64;
        for item in items {
            let values: Vec<u32> = match *item {
                GenItem::Star { step, .. } => (spec.low..=spec.high).step_by(step as usize).collect(),
                GenItem::One(v) => vec![v],
                GenItem::Range(a, b, s) if a <= b => (a..=b).step_by(s as usize).collect(),
                GenItem::Range(_, _, s) if s > 1 => vec![],
                GenItem::Range(a, b, _) => {
                    let (x, y) = (a - spec.low, b - spec.low);
                    if x / 8 == y / 8 {
                        vec![]
                    } else {
                        (x..=(x | 7)).chain((y & !7)..=y).map(|o| o + spec.low).collect()
                    }
                }
            };
            for v in values.into_iter().filter(|v| *v <= spec.high) {
                set |= 1 << v;
            }
        }
        set
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
            1 => (low..=high, low..=high, 1..=high).prop_map(|(a, b, s)| GenItem::Range(a, b, s)),
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
            prop_oneof![40 => Just(""), 1 => Just(";x"), 1 => Just(".5,7"), 1 => Just("#-/"), 1 => Just("?")],
            any::<u8>(),
        )
            .prop_map(|(first, rest, junk, spelling)| GenField {
                items: std::iter::once(first).chain(rest).collect(),
                junk: junk.to_owned(),
                spelling,
            })
    }

    fn schedule_strategy() -> impl Strategy<Value = GenSchedule> {
        let cron = (
            (field_strategy(&MINUTE), field_strategy(&HOUR), field_strategy(&DOM), field_strategy(&MONTH), field_strategy(&DOW)),
            proptest::bool::weighted(0.15),
            prop_oneof![12 => Just(""), 1 => Just("  "), 1 => Just("# note\n"), 1 => Just("\n \t\n\t")],
            prop_oneof![4 => Just(" "), 1 => Just("\t"), 1 => Just(" \t  ")],
            prop_oneof![16 => Just(""), 1 => Just(" "), 1 => Just(" 2024"), 1 => Just(" * *"), 1 => Just("\nmore"), 1 => Just("\tx y")],
        )
            .prop_map(|((m, h, d, mo, w), dollar, lead, sep, tail)| GenSchedule::Cron {
                fields: vec![m, h, d, mo, w],
                dollar,
                lead,
                sep,
                tail,
            });
        let word = prop_oneof![
            Just("@yearly"),
            Just("@annually"),
            Just("@monthly"),
            Just("@weekly"),
            Just("@daily"),
            Just("@midnight"),
            Just("@hourly")
        ];
        let tail = prop_oneof![Just(""), Just(" "), Just(" x"), Just("\n* * * * *")];
        prop_oneof![9 => cron, 1 => (word, tail).prop_map(|(w, t)| GenSchedule::Macro(w, t))]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

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
