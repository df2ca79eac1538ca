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
    assert_eq!(
        err("* * *"),
        "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), found 3"
    );
    assert_eq!(err("*/0 * * * *"), "minute field: step 0 is out of range 1-59");
    assert_eq!(err("5-1 * * * *"), "minute field: range 5-1 runs backwards");
    assert_eq!(err("x * * * *"), "minute field: \"x\" is not a number");
    assert_eq!(
        err("0 0 * FOO *"),
        "month field: \"FOO\" is not a number or a name (JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC)"
    );
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
/// the search in `search.rs` and of croner's.
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
    fn next_after_matches_the_brute_force_reference(expr in expr_strategy(), start in 1_767_225_600i64..1_893_456_000) {
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

    /// The calendar walk gives croner's answer in zones with DST, from
    /// instants within a day of a DST change (where the walk must hand
    /// over to croner) and anywhere in the year.
    #[test]
    fn the_walk_agrees_with_croner_across_dst(
        expr in expr_strategy(),
        tz in prop_oneof![Just("Europe/Berlin"), Just("America/New_York"),
            Just("Australia/Lord_Howe"), Just("Pacific/Chatham"), Just("America/Santiago"), Just("UTC")],
        near in any::<bool>(),
        start in 1_767_225_600i64..1_893_456_000,
        shift in -86_400i64..86_400,
        steps in 1usize..30,
    ) {
        let Ok(e) = CronExpr::parse(&expr) else { return Ok(()) };
        let zone = TimeZone::get(tz).unwrap();
        let mut t = Timestamp::from_second(start).unwrap();
        if near {
            // Move to a DST change of the zone, then a little before or after it.
            if let Some(tr) = zone.following(t).next() {
                t = Timestamp::from_second(tr.timestamp().as_second() + shift).unwrap();
            }
        }
        for _ in 0..steps {
            let walk = e.next_after(t, &zone);
            let reference = super::search::croner_reference(&e, t, &zone);
            prop_assert_eq!(walk, reference, "{} in {} after {}", expr, tz, t);
            match walk { Some(n) => t = n, None => break }
        }
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
