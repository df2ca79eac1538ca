//! The schedule grammar of pg_cron 1.6, and pg_cron's errors for NULL
//! arguments and for jobs, roles and databases that do not exist.

use crate::support::{assert_mirrors_pg_jobs, assert_refused, cron_cluster, cron_jobs, refused, CronJob};
use pg_jobs_itest::one;

/// pg_cron 1.6's schedule grammar: five fields (not pg_jobs' six), steps of
/// at least 1, fields in range, 'N seconds' for 1 to 59, nothing after the
/// fifth field, `$` only alone in day-of-month. Each refusal, from every
/// function that takes a schedule, is 22023 `invalid schedule "<text>":
/// <what is wrong>` and writes nothing. Accepted: macros, @reboot,
/// seconds in any case with surrounding spaces, `$` (last day of the
/// month), month and weekday names; and they mean what they mean to
/// pg_cron (read from `jobs.job_status.next_due`, in GMT): `$` the last day
/// of the month, `0 0 1 jan mon` a day matching either day field.
#[test]
fn the_schedule_grammar_is_pg_crons() {
    let (c, mut s) = cron_cluster("cron-grammar", "");
    let existing: i64 = one(&mut s, "SELECT cron.schedule('existing', '@hourly', 'SELECT 1')");
    let before = cron_jobs(&mut s);
    assert_eq!(
        before,
        [CronJob::new(
            &c,
            existing,
            "@hourly",
            "SELECT 1",
            "app",
            "postgres",
            true,
            Some("existing")
        )]
    );

    // Each refusal and words one of which its explanation must contain.
    let refusals: [(&str, &[&str]); 7] = [
        ("* * * * * *", &["field", "6", "six"]),
        ("*/0 * * * *", &["step", "0", "zero"]),
        ("61 * * * *", &["61", "range", "minute"]),
        ("0 seconds", &["second", "59"]),
        ("60 seconds", &["second", "59", "60"]),
        ("* * * * * x", &["trailing", "field", "x", "6"]),
        ("$foo * * * *", &["$", "foo", "minute"]),
    ];
    let mut explanations = Vec::new();
    for (schedule, words) in refusals {
        for sql in [
            format!("SELECT cron.schedule('{schedule}', 'SELECT 1')"),
            format!("SELECT cron.schedule('refused', '{schedule}', 'SELECT 1')"),
            format!("SELECT cron.schedule_in_database('refused', '{schedule}', 'SELECT 1', 'app')"),
            format!("SELECT cron.alter_job({existing}, schedule => '{schedule}')"),
        ] {
            let (code, message) = refused(&mut s, &sql);
            assert_eq!(code, "22023", "{sql}: {message}");
            let prefix = format!("invalid schedule \"{schedule}\": ");
            let what = message
                .strip_prefix(&prefix)
                .unwrap_or_else(|| panic!("{sql}: {message:?} does not start with {prefix:?}"));
            let lower = what.to_lowercase();
            assert!(
                !what.trim().is_empty() && words.iter().any(|w| lower.contains(w)),
                "{sql}: {message:?} does not say what is wrong (expected one of {words:?})"
            );
            explanations.push((schedule, what.to_owned()));
        }
    }
    // Different problems, different explanations (the two 'N seconds' out
    // of range may share one, as may six fields and a trailing 'x').
    let distinct = [
        "* * * * * *",
        "*/0 * * * *",
        "61 * * * *",
        "0 seconds",
        "$foo * * * *",
    ];
    let mut seen: Vec<&str> = Vec::new();
    for schedule in distinct {
        let (_, what) = explanations
            .iter()
            .find(|(refused, _)| *refused == schedule)
            .unwrap();
        assert!(
            !seen.contains(&what.as_str()),
            "{schedule:?} explained like another problem: {what:?}"
        );
        seen.push(what);
    }
    assert_eq!(cron_jobs(&mut s), before, "refused schedules wrote nothing");
    assert_mirrors_pg_jobs(&mut s);

    // Accepted, and what they mean (the job's next due time, in GMT).
    let accepted = [
        (
            "@daily",
            "d::time = '00:00' AND next_due <= now() + interval '1 day'",
        ),
        ("@reboot", "true"),
        (" 30 Seconds ", "next_due <= now() + interval '31 seconds'"),
        (
            "0 12 $ * *",
            "d::time = '12:00' AND extract(day FROM d + interval '1 day') = 1",
        ),
        (
            "0 0 1 jan mon",
            "d::time = '00:00' AND extract(month FROM d) = 1
             AND (extract(day FROM d) = 1 OR extract(isodow FROM d) = 1)
             AND next_due <= now() + interval '366 days'",
        ),
        (
            "*/15 9-17 * * 1-5",
            "extract(isodow FROM d) <= 5 AND extract(hour FROM d) BETWEEN 9 AND 17
             AND extract(minute FROM d)::int % 15 = 0 AND extract(second FROM d) = 0",
        ),
    ];
    for (schedule, meaning) in accepted {
        let id: i64 = one(&mut s, &format!("SELECT cron.schedule('{schedule}', 'SELECT 1')"));
        assert!(
            cron_jobs(&mut s).iter().any(|j| j.jobid == id),
            "{schedule:?} is in cron.job"
        );
        let row = s
            .query_one(
                &format!(
                    "SELECT next_due::text, coalesce(({meaning}), false)
                       FROM (SELECT next_due, next_due AT TIME ZONE 'GMT' AS d FROM jobs.job_status WHERE id = $1) x"
                ),
                &[&id],
            )
            .unwrap_or_else(|e| panic!("{schedule:?}: {e:?}"));
        let (next_due, means): (Option<String>, bool) = (row.get(0), row.get(1));
        assert!(
            means,
            "{schedule:?}: next due {next_due:?} is not when pg_cron would run it"
        );
    }
}

/// pg_cron's errors for missing things: NULL where an argument is required
/// is 22004 "<argument> can not be NULL"; an unknown job id or name is
/// 42704 with pg_cron's texts ("could not find valid entry for job N",
/// "… job 'name'", "Job N does not exist or you don't own it"); alter_job
/// with nothing to change is 22023 "no updates specified"; an unknown role
/// (names compare exactly) is 42704 and an unknown database 3D000. None of
/// them changes anything.
#[test]
fn null_arguments_and_unknown_jobs_get_pg_crons_errors() {
    let (c, mut s) = cron_cluster("cron-nulls", "");
    let id: i64 = one(&mut s, "SELECT cron.schedule('mine', '@daily', 'SELECT 1')");
    let before = cron_jobs(&mut s);
    assert_eq!(
        before,
        [CronJob::new(
            &c,
            id,
            "@daily",
            "SELECT 1",
            "app",
            "postgres",
            true,
            Some("mine")
        )]
    );

    let cannot_be_null = |argument: &str| format!("{argument} can not be NULL");
    for (sql, argument) in [
        ("SELECT cron.schedule(NULL::text, 'SELECT 1')", "schedule"),
        (
            "SELECT cron.schedule(schedule => NULL, command => 'SELECT 1')",
            "schedule",
        ),
        ("SELECT cron.schedule('@daily', NULL::text)", "command"),
        (
            "SELECT cron.schedule(NULL::text, '@daily', 'SELECT 1')",
            "job_name",
        ),
        ("SELECT cron.schedule('j', NULL::text, 'SELECT 1')", "schedule"),
        (
            "SELECT cron.schedule(job_name => 'j', schedule => '@daily', command => NULL)",
            "command",
        ),
        (
            "SELECT cron.schedule_in_database(NULL, '@daily', 'SELECT 1', 'app')",
            "job_name",
        ),
        (
            "SELECT cron.schedule_in_database('j', NULL, 'SELECT 1', 'app')",
            "schedule",
        ),
        (
            "SELECT cron.schedule_in_database('j', '@daily', NULL, 'app')",
            "command",
        ),
        ("SELECT cron.unschedule(NULL::bigint)", "job_id"),
        ("SELECT cron.unschedule(job_id => NULL)", "job_id"),
        ("SELECT cron.unschedule(NULL::text)", "job_name"),
        ("SELECT cron.unschedule(job_name => NULL)", "job_name"),
        ("SELECT cron.alter_job(NULL, schedule => '@hourly')", "job_id"),
        ("SELECT cron.alter_job(job_id => NULL, active => false)", "job_id"),
    ] {
        assert_refused(&mut s, sql, "22004", &cannot_be_null(argument));
    }

    let unknown: Vec<(String, &str, String)> = vec![
        (
            "SELECT cron.unschedule(424242)".into(),
            "42704",
            "could not find valid entry for job 424242".into(),
        ),
        (
            "SELECT cron.unschedule(job_id => 424242)".into(),
            "42704",
            "could not find valid entry for job 424242".into(),
        ),
        (
            "SELECT cron.unschedule('nope')".into(),
            "42704",
            "could not find valid entry for job 'nope'".into(),
        ),
        (
            "SELECT cron.unschedule(job_name => 'nope')".into(),
            "42704",
            "could not find valid entry for job 'nope'".into(),
        ),
        (
            "SELECT cron.alter_job(424242, schedule => '@hourly')".into(),
            "42704",
            "Job 424242 does not exist or you don't own it".into(),
        ),
        (
            format!("SELECT cron.alter_job({id})"),
            "22023",
            "no updates specified".into(),
        ),
        (
            "SELECT cron.schedule_in_database('j', '@daily', 'SELECT 1', 'app', username => 'nobody')".into(),
            "42704",
            "role \"nobody\" does not exist".into(),
        ),
        // Role names compare exactly: the superuser is postgres, not POSTGRES.
        (
            "SELECT cron.schedule_in_database('j', '@daily', 'SELECT 1', 'app', username => 'POSTGRES')"
                .into(),
            "42704",
            "role \"POSTGRES\" does not exist".into(),
        ),
        (
            format!("SELECT cron.alter_job({id}, username => 'nobody')"),
            "42704",
            "role \"nobody\" does not exist".into(),
        ),
    ];
    for (sql, code, message) in &unknown {
        assert_refused(&mut s, sql, code, message);
    }
    for sql in [
        "SELECT cron.schedule_in_database('j', '@daily', 'SELECT 1', 'nodb')".to_owned(),
        format!("SELECT cron.alter_job({id}, database => 'nodb')"),
    ] {
        let (code, message) = refused(&mut s, &sql);
        assert_eq!(code, "3D000", "{sql}: {message}");
        assert!(message.contains("nodb"), "{sql}: {message:?} names the database");
    }
    assert_eq!(cron_jobs(&mut s), before, "nothing changed");
    assert_mirrors_pg_jobs(&mut s);
}
