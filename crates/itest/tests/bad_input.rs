//! The bad-input catalogue: every public function, fed wrong values, must
//! fail with a clear message and the right SQLSTATE, and change nothing.

use pg_jobs_itest::{one, wait_run, Cluster};
use postgres::Client;

/// Everything a rejected call could have changed, as one comparable value.
fn state(s: &mut Client) -> String {
    one(
        s,
        "SELECT concat_ws(' | ',
            (SELECT string_agg(concat_ws(',', id, name, owner, schedule, command, database, timezone, timeout,
                                         max_attempts, retry_backoff, overlap, catch_up, enabled, args), ';' ORDER BY id) FROM jobs.job),
            (SELECT string_agg(concat_ws(',', id, status, command, args), ';' ORDER BY id) FROM jobs.run),
            (SELECT string_agg(concat_ws(',', id, name, command, run_on, restart_delay, max_restart_delay, enabled), ';' ORDER BY id)
               FROM jobs.daemon))",
    )
}

#[test]
fn every_bad_input_gets_its_sqlstate_and_message_and_changes_nothing() {
    let (_c, mut s) = Cluster::with_app_db("bad-input", "");
    s.batch_execute(
        "SELECT jobs.schedule('j', '@yearly', 'SELECT 1');
         SELECT jobs.daemon('d', 'SELECT pg_sleep(3600)');",
    )
    .unwrap();
    let finished: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1')");
    assert_eq!(wait_run(&mut s, finished).0, "succeeded");

    let long_name = "n".repeat(300);
    let big = format!("SELECT '{}'", "x".repeat(10 << 20));
    let cases: Vec<(String, &str, String)> = vec![
        // jobs.schedule: NULLs
        ("SELECT jobs.schedule(NULL, '@hourly', 'SELECT 1')".into(), "22004", "name must not be NULL".into()),
        ("SELECT jobs.schedule('x', NULL, 'SELECT 1')".into(), "22004", "schedule must not be NULL".into()),
        ("SELECT jobs.schedule('x', '@hourly', NULL)".into(), "22004", "command must not be NULL".into()),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', database => NULL)".into(), "22004", "database must not be NULL".into()),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', max_attempts => NULL)".into(), "22004", "max_attempts must not be NULL".into()),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', retry_backoff => NULL)".into(), "22004", "retry_backoff must not be NULL".into()),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', overlap => NULL)".into(), "22004", "overlap must not be NULL".into()),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', catch_up => NULL)".into(), "22004", "catch_up must not be NULL".into()),
        // jobs.schedule: names
        ("SELECT jobs.schedule('', '@hourly', 'SELECT 1')".into(), "22023", "job name must not be empty".into()),
        ("SELECT jobs.schedule('   ', '@hourly', 'SELECT 1')".into(), "22023", "job name must not be empty".into()),
        (format!("SELECT jobs.schedule('{long_name}', '@hourly', 'SELECT 1')"), "42622", "job name is too long (300 characters; at most 200)".into()),
        // jobs.schedule: schedules
        ("SELECT jobs.schedule('x', '', 'SELECT 1')".into(), "22023", "invalid schedule \"\": the schedule is empty".into()),
        ("SELECT jobs.schedule('x', '   ', 'SELECT 1')".into(), "22023", "invalid schedule \"\": the schedule is empty".into()),
        ("SELECT jobs.schedule('x', '1.5 seconds', 'SELECT 1')".into(), "22023", "invalid schedule \"1.5 seconds\": interval \"1.5 seconds\" is not a whole number of seconds".into()),
        ("SELECT jobs.schedule('x', '400 days', 'SELECT 1')".into(), "22023", "invalid schedule \"400 days\": interval \"400 days\" is longer than 366 days; use a cron expression".into()),
        ("SELECT jobs.schedule('x', '61 * * * *', 'SELECT 1')".into(), "22023", "invalid schedule \"61 * * * *\": minute field: 61 is out of range 0-59".into()),
        ("SELECT jobs.schedule('x', '* 24 * * *', 'SELECT 1')".into(), "22023", "invalid schedule \"* 24 * * *\": hour field: 24 is out of range 0-23".into()),
        ("SELECT jobs.schedule('x', '* * 32 * *', 'SELECT 1')".into(), "22023", "invalid schedule \"* * 32 * *\": day-of-month field: 32 is out of range 1-31".into()),
        ("SELECT jobs.schedule('x', '* * * 13 *', 'SELECT 1')".into(), "22023", "invalid schedule \"* * * 13 *\": month field: 13 is out of range 1-12".into()),
        ("SELECT jobs.schedule('x', '* * * * 8', 'SELECT 1')".into(), "22023", "invalid schedule \"* * * * 8\": day-of-week field: 8 is out of range 0-7".into()),
        ("SELECT jobs.schedule('x', '60 * * * * *', 'SELECT 1')".into(), "22023", "invalid schedule \"60 * * * * *\": second field: 60 is out of range 0-59".into()),
        ("SELECT jobs.schedule('x', '*/0 * * * *', 'SELECT 1')".into(), "22023", "invalid schedule \"*/0 * * * *\": minute field: step 0 is out of range 1-59".into()),
        ("SELECT jobs.schedule('x', '* * *', 'SELECT 1')".into(), "22023", "invalid schedule \"* * *\": expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), found 3".into()),
        ("SELECT jobs.schedule('x', '0 0 31 2 *', 'SELECT 1')".into(), "22023", "invalid schedule \"0 0 31 2 *\": schedule \"0 0 31 2 *\" never fires".into()),
        ("SELECT jobs.schedule('x', '0 seconds', 'SELECT 1')".into(), "22023", "invalid schedule \"0 seconds\": interval \"0 seconds\" is shorter than 1 second".into()),
        ("SELECT jobs.schedule('x', '-5 seconds', 'SELECT 1')".into(), "22023", "invalid schedule \"-5 seconds\": interval \"-5 seconds\" is shorter than 1 second".into()),
        ("SELECT jobs.schedule('x', '500 milliseconds', 'SELECT 1')".into(), "22023", "invalid schedule \"500 milliseconds\": interval \"500 milliseconds\" is shorter than 1 second".into()),
        ("SELECT jobs.schedule('x', 'every banana', 'SELECT 1')".into(), "22023", "invalid schedule \"every banana\": expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), found 2".into()),
        ("SELECT jobs.schedule('x', '@fortnightly', 'SELECT 1')".into(), "22023", "invalid schedule \"@fortnightly\": unknown macro \"@fortnightly\" (expected @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly or @reboot)".into()),
        ("SELECT jobs.schedule('x', '2020-01-01 00:00+00', 'SELECT 1')".into(), "22023", "one-off time \"2020-01-01 00:00+00\" is in the past".into()),
        ("SELECT jobs.schedule('x', '2026-13-45 10:00', 'SELECT 1')".into(), "22008", "date/time field value out of range: \"2026-13-45 10:00\"".into()),
        // jobs.schedule: other settings
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', timezone => 'Mars/Olympus')".into(), "22023", "unknown time zone \"Mars/Olympus\"".into()),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', timezone => '')".into(), "22023", "unknown time zone \"\"".into()),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', overlap => 'maybe')".into(), "22023", "overlap must be skip, queue or allow, not \"maybe\"".into()),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', max_attempts => 0)".into(), "22023", "max_attempts must be at least 1, not 0".into()),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', max_attempts => -1)".into(), "22023", "max_attempts must be at least 1, not -1".into()),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', timeout => '-1 second')".into(), "22023", "timeout must be positive".into()),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', timeout => '0')".into(), "22023", "timeout must be positive".into()),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', retry_backoff => '-1 second')".into(), "22023", "retry_backoff must be at least 1 second, not -1000 ms".into()),
        // A retry chain its owner could not stop (issue 13, finding 3).
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', retry_backoff => '0')".into(), "22023", "retry_backoff must be at least 1 second, not 0 ms".into()),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', max_attempts => 2147483647)".into(), "22023", "max_attempts must be at most 100, not 2147483647".into()),
        ("SELECT jobs.submit('SELECT 1', max_attempts => 101)".into(), "22023", "max_attempts must be at most 100, not 101".into()),
        ("SELECT jobs.schedule('x', '@hourly', 'SELEC 1')".into(), "42601", "command is not valid SQL: syntax error at or near \"SELEC\"".into()),
        ("SELECT jobs.schedule('x', '@hourly', '')".into(), "22023", "command is empty".into()),
        ("SELECT jobs.schedule('x', '@hourly', '  ;  ;')".into(), "22023", "command is empty".into()),
        (format!("SELECT jobs.schedule('x', '@hourly', $${big}$$)"), "54000", format!("command is too long ({} bytes; at most 1048576)", big.len())),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', database => 'nope')".into(), "3D000", "database \"nope\" does not exist".into()),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', run_as => 'ghost')".into(), "42704", "role \"ghost\" does not exist".into()),
        // jobs.alter_job
        ("SELECT jobs.alter_job(NULL)".into(), "22004", "name must not be NULL".into()),
        ("SELECT jobs.alter_job('ghost', max_attempts => 2)".into(), "42704", "job \"ghost\" does not exist".into()),
        ("SELECT jobs.alter_job('j', schedule => 'nonsense')".into(), "22023", "invalid schedule \"nonsense\": expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), found 1".into()),
        ("SELECT jobs.alter_job('j', schedule => '2020-01-01 00:00+00')".into(), "22023", "one-off time \"2020-01-01 00:00+00\" is in the past".into()),
        ("SELECT jobs.alter_job('j', max_attempts => 0)".into(), "22023", "max_attempts must be at least 1, not 0".into()),
        ("SELECT jobs.alter_job('j', timeout => '-1 second')".into(), "22023", "timeout must not be negative".into()),
        ("SELECT jobs.alter_job('j', database => 'nope')".into(), "3D000", "database \"nope\" does not exist".into()),
        ("SELECT jobs.alter_job('j', timezone => 'Atlantis/Capital')".into(), "22023", "unknown time zone \"Atlantis/Capital\"".into()),
        ("SELECT jobs.alter_job('j', command => 'DELET FROM t')".into(), "42601", "command is not valid SQL: syntax error at or near \"DELET\"".into()),
        // unschedule, pause, resume, run_now
        ("SELECT jobs.unschedule(NULL)".into(), "22004", "name must not be NULL".into()),
        ("SELECT jobs.unschedule('ghost')".into(), "42704", "job \"ghost\" does not exist".into()),
        ("SELECT jobs.pause('ghost')".into(), "42704", "job \"ghost\" does not exist".into()),
        ("SELECT jobs.resume(NULL)".into(), "22004", "name must not be NULL".into()),
        ("SELECT jobs.run_now('ghost')".into(), "42704", "job \"ghost\" does not exist".into()),
        // next_runs
        ("SELECT * FROM jobs.next_runs('* * *')".into(), "22023", "invalid schedule \"* * *\": expected 5 fields (minute hour day-of-month month day-of-week) or 6 (with seconds first), found 3".into()),
        ("SELECT * FROM jobs.next_runs('@hourly', 0)".into(), "22023", "count must be between 1 and 10000, not 0".into()),
        ("SELECT * FROM jobs.next_runs('@hourly', 10001)".into(), "22023", "count must be between 1 and 10000, not 10001".into()),
        ("SELECT * FROM jobs.next_runs('@hourly', 5, NULL)".into(), "22004", "after must not be NULL".into()),
        ("SELECT * FROM jobs.next_runs(NULL)".into(), "22004", "schedule must not be NULL".into()),
        ("SELECT * FROM jobs.next_runs('@hourly', timezone => 'Nowhere/City')".into(), "22023", "unknown time zone \"Nowhere/City\"".into()),
        // jobs.submit
        ("SELECT jobs.submit(NULL)".into(), "22004", "command must not be NULL".into()),
        ("SELECT jobs.submit('')".into(), "22023", "command is empty".into()),
        ("SELECT jobs.submit('SELEC 1')".into(), "42601", "command is not valid SQL: syntax error at or near \"SELEC\"".into()),
        (format!("SELECT jobs.submit($${big}$$)"), "54000", format!("command is too long ({} bytes; at most 1048576)", big.len())),
        ("SELECT jobs.submit('SELECT 1', database => 'nope')".into(), "3D000", "database \"nope\" does not exist".into()),
        ("SELECT jobs.submit('SELECT 1', database => NULL)".into(), "22004", "database must not be NULL".into()),
        ("SELECT jobs.submit('SELECT 1', run_as => 'ghost')".into(), "42704", "role \"ghost\" does not exist".into()),
        ("SELECT jobs.submit('SELECT 1', max_attempts => 0)".into(), "22023", "max_attempts must be at least 1, not 0".into()),
        ("SELECT jobs.submit('SELECT 1', timeout => '0')".into(), "22023", "timeout must be positive".into()),
        ("SELECT jobs.submit('SELECT 1', timeout => '-5 minutes')".into(), "22023", "timeout must be positive".into()),
        ("SELECT jobs.submit('SELECT 1', priority => NULL)".into(), "22004", "priority must not be NULL".into()),
        // jobs.wait, jobs.result, jobs.cancel
        ("SELECT * FROM jobs.wait(NULL)".into(), "22004", "run_id must not be NULL".into()),
        ("SELECT * FROM jobs.wait(999999)".into(), "42704", "run 999999 does not exist".into()),
        (format!("SELECT * FROM jobs.wait({finished}, '-1 second')"), "22023", "timeout must not be negative".into()),
        ("SELECT * FROM jobs.result(NULL)".into(), "22004", "run_id must not be NULL".into()),
        ("SELECT * FROM jobs.result(999999)".into(), "42704", "run 999999 does not exist".into()),
        ("SELECT jobs.cancel(NULL)".into(), "22004", "run_id must not be NULL".into()),
        ("SELECT jobs.cancel(999999)".into(), "42704", "run 999999 does not exist".into()),
        // daemons
        ("SELECT jobs.daemon(NULL, 'SELECT 1')".into(), "22004", "name must not be NULL".into()),
        ("SELECT jobs.daemon('x', NULL)".into(), "22004", "command must not be NULL".into()),
        ("SELECT jobs.daemon('', 'SELECT 1')".into(), "22023", "daemon name must not be empty".into()),
        (format!("SELECT jobs.daemon('{long_name}', 'SELECT 1')"), "42622", "daemon name is too long (300 characters; at most 200)".into()),
        ("SELECT jobs.daemon('x', 'SELEC 1')".into(), "42601", "command is not valid SQL: syntax error at or near \"SELEC\"".into()),
        ("SELECT jobs.daemon('x', 'SELECT 1', run_on => 'replica')".into(), "22023", "invalid run_on \"replica\": expected primary, standby or any".into()),
        ("SELECT jobs.daemon('x', 'SELECT 1', run_on => NULL)".into(), "22004", "run_on must not be NULL".into()),
        ("SELECT jobs.daemon('x', 'SELECT 1', restart_delay => '10 ms')".into(), "22023", "restart_delay must be between 1 second and 1 day, not 10 ms".into()),
        // No daemon restarts more often than once a second (issue 13: 20 daemons at 100 ms made 175 starts a second).
        ("SELECT jobs.daemon('x', 'SELECT 1', restart_delay => '999 ms')".into(), "22023", "restart_delay must be between 1 second and 1 day, not 999 ms".into()),
        ("SELECT jobs.daemon('x', 'SELECT 1', restart_delay => '100 ms', max_restart_delay => '100 ms')".into(), "22023", "restart_delay must be between 1 second and 1 day, not 100 ms".into()),
        ("SELECT jobs.daemon('d', 'SELECT pg_sleep(3600)', restart_delay => '0')".into(), "22023", "restart_delay must be between 1 second and 1 day, not 0 ms".into()),
        ("SELECT jobs.daemon('x', 'SELECT 1', restart_delay => '-1 second')".into(), "22023", "restart_delay must be between 1 second and 1 day, not -1000 ms".into()),
        ("SELECT jobs.daemon('x', 'SELECT 1', restart_delay => '10 s', max_restart_delay => '1 s')".into(), "22023", "max_restart_delay must be between restart_delay (10000 ms) and 1 day, not 1000 ms".into()),
        ("SELECT jobs.daemon('x', 'SELECT 1', max_restart_delay => '2 days')".into(), "22023", "max_restart_delay must be between restart_delay (5000 ms) and 1 day, not 172800000 ms".into()),
        ("SELECT jobs.daemon('x', 'SELECT 1', database => 'nope')".into(), "3D000", "database \"nope\" does not exist".into()),
        ("SELECT jobs.daemon('x', 'SELECT 1', run_as => 'ghost')".into(), "42704", "role \"ghost\" does not exist".into()),
        ("SELECT jobs.stop_daemon('ghost')".into(), "42704", "daemon \"ghost\" does not exist".into()),
        ("SELECT jobs.start_daemon(NULL)".into(), "22004", "name must not be NULL".into()),
        ("SELECT jobs.drop_daemon('ghost')".into(), "42704", "daemon \"ghost\" does not exist".into()),
        // Time arithmetic at the edges of PostgreSQL's ranges (issue 12, defect 2).
        ("SELECT * FROM jobs.next_runs('@hourly', after => 'infinity')".into(), "22008", "after must be a finite time between the years -9999 and 9999".into()),
        ("SELECT * FROM jobs.next_runs('@hourly', after => '-infinity')".into(), "22008", "after must be a finite time between the years -9999 and 9999".into()),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', timeout => '25 days')".into(), "22023", "timeout must be at most 2147483647 ms (about 24.8 days), not 2160000000 ms".into()),
        ("SELECT jobs.submit('SELECT 1', timeout => '25 days')".into(), "22023", "timeout must be at most 2147483647 ms (about 24.8 days), not 2160000000 ms".into()),
        ("SELECT jobs.alter_job('j', timeout => '25 days')".into(), "22023", "timeout must be at most 2147483647 ms (about 24.8 days), not 2160000000 ms".into()),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', retry_backoff => '2 days')".into(), "22023", "retry_backoff must be at most 1 day, not 172800000 ms".into()),
        ("SELECT jobs.alter_job('j', retry_backoff => '2 days')".into(), "22023", "retry_backoff must be at most 1 day, not 172800000 ms".into()),
        ("SELECT jobs.daemon('d2', 'SELECT 1', restart_delay => '2 days')".into(), "22023", "restart_delay must be between 1 second and 1 day, not 172800000 ms".into()),
        // Values a worker could not compute with (issue 13, finding 2).
        ("SELECT jobs.submit('SELECT 1', start_at => 'infinity')".into(), "22008", "start_at must be a finite time between the years -9999 and 9999".into()),
        ("SELECT jobs.schedule('x', '9999-12-31 12:00+00', 'SELECT 1')".into(), "22008", "a one-off's time must be a finite time between the years -9999 and 9999".into()),
        // COPY with a client that does not exist (issue 13, finding 6).
        ("SELECT jobs.submit('COPY (SELECT 1) TO STDOUT')".into(), "0A000", "COPY to or from the client is not possible in a job (it has no client)".into()),
        ("SELECT jobs.schedule('x', '@hourly', 'CREATE TEMP TABLE c (a int); COPY c FROM STDIN')".into(), "0A000", "COPY to or from the client is not possible in a job (it has no client)".into()),
        // A database no job can connect to (issue 13, finding 8).
        ("SELECT jobs.submit('SELECT 1', database => 'template0')".into(), "55000", "database \"template0\" is not accepting connections".into()),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', database => 'template0')".into(), "55000", "database \"template0\" is not accepting connections".into()),
        ("SELECT jobs.daemon('d2', 'SELECT 1', database => 'template0')".into(), "55000", "database \"template0\" is not accepting connections".into()),
        // args: the values of the command's $1 ... $n (issue 16).
        ("SELECT jobs.submit('SELECT $1; SELECT 2', args => '{x}')".into(), "22023", "args need a command of one statement; this command has 2 statements".into()),
        ("SELECT jobs.submit('SELECT 1', args => '{x}')".into(), "22023", "args has 1 value but the command has no parameters ($1, $2, ...)".into()),
        ("SELECT jobs.submit('SELECT $1::int, $2', args => '{1}')".into(), "22023", "the command has 2 parameters ($1, $2) but args has 1 value".into()),
        ("SELECT jobs.submit('SELECT $1::int', args => '{ten}')".into(), "22P02", "args[1]: invalid input syntax for type integer: \"ten\"".into()),
        ("SELECT jobs.submit('SELECT $1 IS NULL', args => '{1}')".into(), "42P18", "could not determine data type of parameter $1".into()),
        ("SELECT jobs.submit('SELECT $1', args => '{{a},{b}}')".into(), "22023", "args must be a one-dimensional array, not 2-dimensional".into()),
        ("SELECT jobs.submit('SELECT $1', args => array_fill('x'::text, ARRAY[65536]))".into(), "54000", "args has too many values (65536; at most 65535)".into()),
        ("SELECT jobs.submit('SELECT $1', args => ARRAY[repeat('x', 1048577)])".into(), "54000", "args is too large (1048577 bytes; at most 1048576)".into()),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT $1::int', args => '{ten}')".into(), "22P02", "args[1]: invalid input syntax for type integer: \"ten\"".into()),
        ("SELECT jobs.schedule('x', '@hourly', 'SELECT 1', args => '{x}')".into(), "22023", "args has 1 value but the command has no parameters ($1, $2, ...)".into()),
        ("SELECT jobs.alter_job('j', args => '{x}')".into(), "22023", "args has 1 value but the command has no parameters ($1, $2, ...)".into()),
        ("SELECT jobs.alter_job('j', command => 'SELECT $1::int', args => '{x}')".into(), "22P02", "args[1]: invalid input syntax for type integer: \"x\"".into()),
    ];
    let before = state(&mut s);
    let mut mismatches = Vec::new();
    for (sql, code, message) in &cases {
        match s.batch_execute(sql) {
            Ok(()) => mismatches.push(format!("accepted: {}", &sql[..sql.len().min(120)])),
            Err(e) => match e.as_db_error() {
                // Hints are optional: an empty HINT line is never right (issue 12, defect 4).
                Some(db) if db.hint() == Some("") => mismatches.push(format!(
                    "{}\n    carries an empty HINT",
                    &sql[..sql.len().min(120)]
                )),
                Some(db) if db.code().code() == *code && db.message() == message => {}
                Some(db) => mismatches.push(format!(
                    "{}\n    got      {} {}\n    expected {code} {message}",
                    &sql[..sql.len().min(120)],
                    db.code().code(),
                    &db.message()[..db.message().len().min(200)]
                )),
                None => mismatches.push(format!("{}: {e}", &sql[..sql.len().min(120)])),
            },
        }
        assert_eq!(
            state(&mut s),
            before,
            "a rejected call changed something: {}",
            &sql[..sql.len().min(120)]
        );
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} cases wrong:\n{}",
        mismatches.len(),
        cases.len(),
        mismatches.join("\n")
    );

    // Not errors, and still nothing changed: cancel of a finished run says
    // false; names with quotes and semicolons are just names.
    let cancelled: bool = one(&mut s, &format!("SELECT jobs.cancel({finished})"));
    // A wait whose deadline lies past what the clock can hold waits without one.
    let waited: String = one(
        &mut s,
        &format!("SELECT status FROM jobs.wait({finished}, '178000000 years')"),
    );
    assert_eq!(waited, "succeeded");
    assert!(!cancelled, "cancel of a finished run");
    assert_eq!(state(&mut s), before);
    s.batch_execute("SELECT jobs.schedule($$it's; DROP TABLE x; --$$, '@yearly', 'SELECT 1')")
        .unwrap();
    let name: String = one(&mut s, "SELECT name FROM jobs.job WHERE name LIKE 'it''s%'");
    assert_eq!(name, "it's; DROP TABLE x; --");
    println!(
        "RELIABILITY| bad inputs rejected with the expected SQLSTATE and message, nothing changed | {} of {}",
        cases.len() - mismatches.len(),
        cases.len()
    );
}
