//! Unit tests of [`to_pg_jobs`]: what it accepts, how it rewrites it,
//! and the message of each refusal.

use super::parse::{BUFFER_LEN, DOLLAR_ALONE};
use super::seconds::SECONDS_FORM;
use super::*;
use jiff::tz::TimeZone;
use jiff::Timestamp;

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
