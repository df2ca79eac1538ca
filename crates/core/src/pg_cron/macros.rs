//! `@word` schedules (`@daily`, `@reboot`, …) as pg_cron reads them.

use super::entry::{Entry, Field, DOM, DOW, HOUR, MONTH};
use super::parse::{after_entry, trim_c_space, CronRefusal, Parsed};

const MACROS: &str = "@yearly @annually @monthly @weekly @daily @midnight @hourly @reboot @restart";

/// `@word` (`text` is what follows the `@`), in any case, then only white
/// space. pg_cron takes lower case only and ignores what follows the word.
pub(super) fn parse_macro(text: &str) -> Result<Parsed, CronRefusal> {
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
