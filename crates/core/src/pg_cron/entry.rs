//! What a parsed entry means: its fields as pg_cron reads them (bounds,
//! names, bits), when it runs (the day rule), and its pg_jobs text.

use crate::cron::CronExpr;

/// One field of a cron entry, with pg_cron's bounds and names.
pub(super) struct Spec {
    pub(super) name: &'static str,
    pub(super) low: u32,
    pub(super) high: u32,
    pub(super) names: &'static [&'static str],
    /// What an item may start with, for messages.
    pub(super) expected: &'static str,
    /// What the names are, for messages.
    pub(super) name_kind: &'static str,
}

pub(super) const MINUTE: Spec = Spec {
    name: "minute",
    low: 0,
    high: 59,
    names: &[],
    expected: "a number or *",
    name_kind: "",
};
pub(super) const HOUR: Spec = Spec {
    name: "hour",
    low: 0,
    high: 23,
    names: &[],
    expected: "a number or *",
    name_kind: "",
};
pub(super) const DOM: Spec = Spec {
    name: "day-of-month",
    low: 1,
    high: 31,
    names: &[],
    expected: "a number, * or $",
    name_kind: "",
};
pub(super) const MONTH: Spec = Spec {
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
pub(super) const DOW: Spec = Spec {
    name: "day-of-week",
    low: 0,
    high: 7,
    names: &["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"],
    expected: "a number, a day name (Sun-Sat) or *",
    name_kind: "a day name (Sun-Sat)",
};

impl Spec {
    /// Every value of the field, as bits indexed by value.
    pub(super) fn all(&self) -> u64 {
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
pub(super) fn bit_nset(start: u32, stop: u32) -> u64 {
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
pub(super) enum Item {
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
pub(super) struct Field {
    /// Begins with `*`: pg_cron's DOM_STAR/DOW_STAR (and MIN_STAR/HR_STAR).
    pub(super) star: bool,
    pub(super) items: Vec<Item>,
    /// The values selected, as bits indexed by value.
    pub(super) bits: u64,
}

impl Field {
    pub(super) fn only(value: u32) -> Field {
        Field {
            bits: 1 << value,
            ..Field::default()
        }
    }

    pub(super) fn every(spec: &Spec, star: bool) -> Field {
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
pub(super) fn runs(bits: u64, spec: &Spec) -> Option<String> {
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

/// A parsed five-field entry or macro: pg_cron's `entry` struct.
pub(super) struct Entry {
    /// Minute, hour, day-of-month, month, day-of-week.
    pub(super) fields: [Field; 5],
    /// `$`: pg_cron's DOM_LAST.
    pub(super) dom_last: bool,
    /// The macro as pg_jobs spells it, for macros.
    pub(super) word: Option<&'static str>,
}

impl Entry {
    pub(super) fn meaning(&self) -> Meaning {
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

    pub(super) fn pg_jobs_text(&self) -> String {
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
pub(super) struct Meaning {
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
    pub(super) fn of_pg_jobs(expr: &CronExpr) -> Meaning {
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
    pub(super) fn same_as(&self, other: &Meaning) -> bool {
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
    pub(super) fn never_runs(&self) -> bool {
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
