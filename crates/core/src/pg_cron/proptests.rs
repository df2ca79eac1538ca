//! Property tests of [`to_pg_jobs`] against a reference restatement of
//! pg_cron's rules.

use super::entry::{Spec, DOM, DOW, HOUR, MINUTE, MONTH};
use super::parse::field_char;
use super::*;
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use proptest::prelude::*;

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
        let dom =
            has(self.sets[2], i64::from(date.day())) || (self.dom_last && date.day() == date.days_in_month());
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
        (
            field_strategy(&MINUTE),
            field_strategy(&HOUR),
            field_strategy(&DOM),
            field_strategy(&MONTH),
            field_strategy(&DOW),
        ),
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
        (Just("\n"), prop_oneof![Just("0 4 * * *"), Just("more")]).prop_map(|(s, t)| Defect::TextAfter(s, t)),
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
