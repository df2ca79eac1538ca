//! Parameters (issue 16): a command's `$1 … $n` take the values of
//! `args => text[]` of `jobs.submit`, `jobs.schedule` and `jobs.alter_job`,
//! bound as the extended query protocol binds untyped text. Values of
//! every kind of type reach the statement as that type; what can be known
//! at submit is refused there (its SQLSTATE, nothing written); what only
//! the run can know ends the run `failed` with its SQLSTATE; scheduled
//! jobs give their values to every run; injection attempts stay data; a
//! database still at 0.3.0 keeps working with this library.

use pg_jobs_itest::{one, wait_for, wait_run, Cluster, DEADLINE};
use postgres::Client;

fn cluster(name: &str) -> (Cluster, Client) {
    Cluster::with_app_db(name, "")
}

/// Submit `command` with `args` (bound by the client, so the test's own
/// values never pass through SQL text either); the run id.
fn submit(s: &mut Client, command: &str, args: &[Option<&str>]) -> i64 {
    s.query_one("SELECT jobs.submit($1, args => $2)", &[&command, &args])
        .unwrap_or_else(|e| panic!("submit {command}: {e}"))
        .get(0)
}

/// Wait for run `id` and insist it succeeded.
fn succeeds(s: &mut Client, id: i64) {
    let (status, code, message) = wait_run(s, id);
    assert_eq!(status, "succeeded", "run {id}: {code:?} {message:?}");
}

/// The SQLSTATE and message of the error `sql` raises.
fn error_of(s: &mut Client, sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)]) -> (String, String) {
    let e = s
        .query(sql, params)
        .err()
        .unwrap_or_else(|| panic!("accepted: {sql}"));
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("{sql}: not a server error: {e}"));
    (db.code().code().to_owned(), db.message().to_owned())
}

#[path = "params/refusals.rs"]
mod refusals;

#[test]
fn values_of_every_kind_of_type_reach_the_statement_as_that_type() {
    let (_c, mut s) = cluster("params-types");
    s.batch_execute(
        "CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy');
         CREATE DOMAIN positive AS int CHECK (VALUE > 0);
         CREATE TABLE got (n int, amount numeric, yes bool, note text, doc jsonb, tags text[], ids int[],
                           at timestamptz, maybe int, p positive, m mood, big bigint);
         CREATE TABLE calls (who text, n int);
         CREATE FUNCTION record_call(who text, n int) RETURNS int LANGUAGE sql
           AS $$ INSERT INTO calls VALUES (who, n) RETURNING n $$;
         CREATE PROCEDURE note_it(who text, n int) LANGUAGE plpgsql
           AS $$ BEGIN INSERT INTO calls VALUES (who, n); COMMIT; INSERT INTO calls VALUES (who || '+', n + 1); END $$;",
    )
    .unwrap();
    let note = "it's \"quoted\" \\ back\\slash\nsecond line\ttab – ünïcödé 🐘 $1 $$x$$ ';";
    // The column types decide (no casts in the command): the INSERT's
    // context types each parameter.
    let id = submit(
        &mut s,
        "INSERT INTO got VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        &[
            Some("-42"),
            Some("12345678901234567890.000000000001"),
            Some("yes"),
            Some(note),
            Some(r#"{"a": [1, {"b": null}], "ü": "\"x\""}"#),
            Some(r#"{plain,"with space","with \"quote\"",NULL}"#),
            Some("{1,2,3}"),
            Some("2026-11-30 09:15:00.123456+01"),
            None,
            Some("7"),
            Some("happy"),
            Some("9223372036854775807"),
        ],
    );
    succeeds(&mut s, id);
    let r = s
        .query_one(
            "SELECT n, amount::text, yes, note, doc::text, tags, ids,
                    extract(epoch FROM at)::float8, maybe, p::int, m::text, big
               FROM got",
            &[],
        )
        .unwrap();
    assert_eq!(r.get::<_, i32>(0), -42);
    assert_eq!(r.get::<_, String>(1), "12345678901234567890.000000000001");
    assert!(r.get::<_, bool>(2));
    assert_eq!(r.get::<_, String>(3), note);
    assert_eq!(r.get::<_, String>(4), r#"{"a": [1, {"b": null}], "ü": "\"x\""}"#);
    assert_eq!(
        r.get::<_, Vec<Option<String>>>(5),
        vec![
            Some("plain".to_owned()),
            Some("with space".to_owned()),
            Some("with \"quote\"".to_owned()),
            None
        ]
    );
    assert_eq!(r.get::<_, Vec<i32>>(6), vec![1, 2, 3]);
    assert!((r.get::<_, f64>(7) - 1_796_026_500.123456).abs() < 1e-6);
    assert_eq!(r.get::<_, Option<i32>>(8), None, "a NULL element is SQL NULL");
    assert_eq!(r.get::<_, i32>(9), 7);
    assert_eq!(r.get::<_, String>(10), "happy");
    assert_eq!(r.get::<_, i64>(11), i64::MAX);

    // The statement's casts decide: a function's arguments, a result kept
    // for jobs.result.
    let id = submit(
        &mut s,
        "SELECT record_call($1, $2::int) AS n, $3::numeric * 2 AS twice, $4::date + 1 AS next_day",
        &[Some("fn"), Some("5"), Some("1.25"), Some("2026-02-28")],
    );
    succeeds(&mut s, id);
    let result: String = one(&mut s, &format!("SELECT jobs.result({id})::text"));
    assert!(
        one::<bool>(
            &mut s,
            &format!(
                r#"SELECT jobs.result({id}) = '{{"n": 5, "twice": 2.50, "next_day": "2026-03-01"}}'::jsonb"#
            )
        ),
        "{result}"
    );
    // A procedure that commits, called with parameters.
    let id = submit(&mut s, "CALL note_it($1, $2)", &[Some("proc"), Some("10")]);
    succeeds(&mut s, id);
    let calls: Vec<(String, i32)> = s
        .query("SELECT who, n FROM calls ORDER BY n", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        calls,
        [("fn".into(), 5), ("proc".into(), 10), ("proc+".into(), 11)]
    );
    // The run keeps its values, as given.
    let kept: Vec<Option<String>> = one(&mut s, &format!("SELECT args FROM jobs.run WHERE id = {id}"));
    assert_eq!(kept, [Some("proc".to_owned()), Some("10".to_owned())]);
}

#[test]
fn what_only_the_run_can_know_ends_it_failed_with_its_sqlstate() {
    let (c, mut s) = cluster("params-run-errors");
    c.connect("postgres")
        .batch_execute("CREATE DATABASE other")
        .unwrap();
    c.connect("other")
        .batch_execute("CREATE TABLE got (n int)")
        .unwrap();
    // The table and the function do not exist when the runs are submitted
    // (so the submit cannot analyse them and accepts), and do when they
    // run: the types are decided at run time.
    let mut tx = s.transaction().unwrap();
    let submit_in = |tx: &mut postgres::Transaction, command: &str, args: &[Option<&str>]| -> i64 {
        tx.query_one("SELECT jobs.submit($1, args => $2)", &[&command, &args])
            .unwrap()
            .get(0)
    };
    let bad_table = submit_in(&mut tx, "INSERT INTO later (n) VALUES ($1)", &[Some("abc")]);
    let good_table = submit_in(&mut tx, "INSERT INTO later (n) VALUES ($1)", &[Some("12")]);
    let bad_function = submit_in(&mut tx, "SELECT later_fn($1)", &[Some("1.5")]);
    tx.batch_execute(
        "CREATE TABLE later (n int);
         CREATE FUNCTION later_fn(d date) RETURNS date LANGUAGE sql AS 'SELECT d';",
    )
    .unwrap();
    tx.commit().unwrap();
    // In another database nothing is analysed at submit: the run tells.
    let other_value: i64 = s
        .query_one(
            "SELECT jobs.submit('INSERT INTO got (n) VALUES ($1)', database => 'other', args => '{x}')",
            &[],
        )
        .unwrap()
        .get(0);
    let other_untyped: i64 = s
        .query_one(
            "SELECT jobs.submit('SELECT $1 IS NULL', database => 'other', args => '{x}')",
            &[],
        )
        .unwrap()
        .get(0);
    let other_good: i64 = s
        .query_one(
            "SELECT jobs.submit('INSERT INTO got (n) VALUES ($1)', database => 'other', args => '{34}')",
            &[],
        )
        .unwrap()
        .get(0);
    for (id, want_code, want_message) in [
        (
            bad_table,
            "22P02",
            "args[1]: invalid input syntax for type integer: \"abc\"",
        ),
        (
            bad_function,
            "22007",
            "args[1]: invalid input syntax for type date: \"1.5\"",
        ),
        (
            other_value,
            "22P02",
            "args[1]: invalid input syntax for type integer: \"x\"",
        ),
        (
            other_untyped,
            "42P18",
            "could not determine data type of parameter $1",
        ),
    ] {
        let (status, code, message) = wait_run(&mut s, id);
        assert_eq!(
            (status.as_str(), code.as_deref(), message.as_deref()),
            ("failed", Some(want_code), Some(want_message)),
            "run {id}"
        );
    }
    succeeds(&mut s, good_table);
    succeeds(&mut s, other_good);
    assert_eq!(one::<i32>(&mut s, "SELECT n FROM later"), 12);
    assert_eq!(one::<i32>(&mut c.connect("other"), "SELECT n FROM got"), 34);
    // The failed run keeps the values it was given.
    let kept: Vec<Option<String>> = one(
        &mut s,
        &format!("SELECT args FROM jobs.run WHERE id = {bad_table}"),
    );
    assert_eq!(kept, [Some("abc".to_owned())]);

    // A lock another session holds on what the command reads does not
    // hold up the submit for long (its analysis gives up and accepts); the
    // run waits for the lock and succeeds.
    s.batch_execute("CREATE TABLE busy (n int); SET statement_timeout = '10s'")
        .unwrap();
    let mut locker = c.connect("app");
    let mut lock = locker.transaction().unwrap();
    lock.batch_execute("LOCK TABLE busy IN ACCESS EXCLUSIVE MODE")
        .unwrap();
    let t0 = std::time::Instant::now();
    let id = submit(&mut s, "INSERT INTO busy (n) VALUES ($1)", &[Some("56")]);
    let took = t0.elapsed();
    assert!(
        took < std::time::Duration::from_secs(3),
        "the submit waited {took:?} for the lock"
    );
    lock.commit().unwrap();
    succeeds(&mut s, id);
    assert_eq!(one::<i32>(&mut s, "SELECT n FROM busy"), 56);
    println!("a submit with args beside a locked table took {took:?}");
}

#[test]
fn scheduled_jobs_give_their_values_to_every_run_and_alter_job_changes_them() {
    let (_c, mut s) = cluster("params-schedules");
    s.batch_execute(
        "CREATE TABLE beats (tag text, n int);
         SELECT jobs.schedule('beat', '1 second', 'INSERT INTO beats (tag, n) VALUES ($1, $2)', args => '{first,1}');",
    )
    .unwrap();
    let count = |s: &mut Client, tag: &str| -> i64 {
        s.query_one("SELECT count(*) FROM beats WHERE tag = $1", &[&tag])
            .unwrap()
            .get(0)
    };
    wait_for("two runs with the first values", DEADLINE, || {
        (count(&mut s, "first") >= 2).then_some(())
    });
    assert_eq!(
        one::<i32>(&mut s, "SELECT max(n) FROM beats WHERE tag = 'first'"),
        1
    );

    // New values: the runs due after the change carry them.
    let tag = "second'); DROP TABLE beats; --";
    s.execute("SELECT jobs.alter_job('beat', args => ARRAY[$1, '2'])", &[&tag])
        .unwrap();
    let changed_at: f64 = one(&mut s, "SELECT extract(epoch FROM clock_timestamp())::float8");
    wait_for("two runs with the new values", DEADLINE, || {
        (count(&mut s, tag) >= 2).then_some(())
    });
    let later_args: Vec<Vec<Option<String>>> = s
        .query(
            "SELECT args FROM jobs.run
              WHERE job_id = (SELECT id FROM jobs.job WHERE name = 'beat')
                AND scheduled_for > to_timestamp($1) + interval '1 second'",
            &[&changed_at],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!later_args.is_empty());
    assert!(
        later_args
            .iter()
            .all(|a| *a == [Some(tag.to_owned()), Some("2".to_owned())]),
        "{later_args:?}"
    );
    assert!(one::<bool>(&mut s, "SELECT to_regclass('beats') IS NOT NULL"));

    // Command and values changed together; run_now gives the job's values.
    s.batch_execute("SELECT jobs.alter_job('beat', command => 'INSERT INTO beats (n, tag) VALUES ($1::int * 10, $2)', args => '{3,third}')")
        .unwrap();
    let now_run: i64 = one(&mut s, "SELECT jobs.run_now('beat')");
    succeeds(&mut s, now_run);
    let kept: Vec<Option<String>> = one(&mut s, &format!("SELECT args FROM jobs.run WHERE id = {now_run}"));
    assert_eq!(kept, [Some("3".to_owned()), Some("third".to_owned())]);
    assert_eq!(
        one::<i32>(&mut s, "SELECT max(n) FROM beats WHERE tag = 'third'"),
        30
    );

    // No values any more: the plain command runs with none.
    s.batch_execute("SELECT jobs.alter_job('beat', command => 'INSERT INTO beats (tag) VALUES (''plain'')', args => '{}')")
        .unwrap();
    assert!(one::<bool>(
        &mut s,
        "SELECT args IS NULL FROM jobs.job WHERE name = 'beat'"
    ));
    wait_for("a run without values", DEADLINE, || {
        (count(&mut s, "plain") >= 1).then_some(())
    });

    // A retry runs with the values of the attempt it retries.
    s.batch_execute(
        "SELECT jobs.schedule('flaky', '1 second', 'SELECT 1 / $1::int', args => '{0}',
                              max_attempts => 2, retry_backoff => '1 second')",
    )
    .unwrap();
    let retry: i64 = wait_for("a second attempt", DEADLINE, || {
        s.query_opt(
            "SELECT id FROM jobs.run WHERE job_id = (SELECT id FROM jobs.job WHERE name = 'flaky')
                AND attempt = 2 ORDER BY id LIMIT 1",
            &[],
        )
        .unwrap()
        .map(|r| r.get(0))
    })
    .0;
    let (status, code, _) = wait_run(&mut s, retry);
    assert_eq!((status.as_str(), code.as_deref()), ("failed", Some("22012")));
    let kept: Vec<Option<String>> = one(&mut s, &format!("SELECT args FROM jobs.run WHERE id = {retry}"));
    assert_eq!(kept, [Some("0".to_owned())]);
    s.batch_execute("SELECT jobs.unschedule('flaky'); SELECT jobs.unschedule('beat')")
        .unwrap();
}

#[test]
fn sql_injection_attempts_stay_data() {
    let (_c, mut s) = cluster("params-injection");
    s.batch_execute(
        "CREATE TABLE victims (id int); INSERT INTO victims VALUES (1);
         CREATE TABLE notes (body text);",
    )
    .unwrap();
    let payloads = [
        "'); DROP TABLE victims; --",
        "x' OR '1'='1",
        "$1",
        "$2; DROP TABLE victims",
        "$$; DROP TABLE victims; $$",
        "\\'; DROP TABLE victims; --",
        "1; DELETE FROM victims",
        "\"; DROP TABLE victims; --",
        "NULL",
        "' || (SELECT string_agg(rolname, ',') FROM pg_roles) || '",
        "--\nDROP TABLE victims;",
        "/* */ DROP TABLE victims; /*",
        "E'\\x27'; DROP TABLE victims; --",
        "',(SELECT pg_sleep(10)))--",
    ];
    let mut ids = Vec::new();
    for p in payloads {
        ids.push(submit(&mut s, "INSERT INTO notes (body) VALUES ($1)", &[Some(p)]));
    }
    // As a job's values too, and through run_now.
    s.query_one(
        "SELECT jobs.schedule('inj', '@yearly', 'INSERT INTO notes (body) VALUES ($1)', args => ARRAY[$1])",
        &[&payloads[0]],
    )
    .unwrap();
    ids.push(one(&mut s, "SELECT jobs.run_now('inj')"));
    for id in ids {
        succeeds(&mut s, id);
    }
    let mut got: Vec<String> = s
        .query("SELECT body FROM notes", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    got.sort();
    let mut want: Vec<String> = payloads.iter().map(|p| p.to_string()).collect();
    want.push(payloads[0].to_owned());
    want.sort();
    assert_eq!(got, want);
    assert_eq!(one::<i64>(&mut s, "SELECT count(*) FROM victims"), 1);
    // A value that is not of its parameter's type is refused, never run.
    let (code, _) = error_of(
        &mut s,
        "SELECT jobs.submit('SELECT $1::int', args => $1)",
        &[&vec!["1; DROP TABLE victims"]],
    );
    assert_eq!(code, "22P02");
    assert_eq!(one::<i64>(&mut s, "SELECT count(*) FROM victims"), 1);
}

#[test]
fn a_burst_of_runs_keeps_each_runs_values_through_pooled_executors() {
    let (_c, mut s) = cluster("params-burst");
    s.batch_execute("CREATE TABLE seen (i int PRIMARY KEY, v text)")
        .unwrap();
    // 600 runs in one transaction: dispatched by the scheduler, handed to
    // pooled executors, and claimed by executors from the queue in batches.
    let ids: Vec<i64> = s
        .query(
            "SELECT jobs.submit('INSERT INTO seen (i, v) VALUES ($1, $2)', args => ARRAY[g::text, md5(g::text)])
               FROM generate_series(1, 600) g",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let last = *ids.iter().max().unwrap();
    wait_for("every run of the burst to finish", DEADLINE, || {
        (one::<i64>(
            &mut s,
            &format!("SELECT count(*) FROM jobs.run WHERE id <= {last} AND status IN ('queued', 'starting', 'running')"),
        ) == 0)
            .then_some(())
    });
    let failed: Vec<(i64, Option<String>)> = s
        .query(
            "SELECT id, message FROM jobs.run WHERE status <> 'succeeded' ORDER BY id LIMIT 5",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(failed.is_empty(), "runs not succeeded: {failed:?}");
    assert_eq!(one::<i64>(&mut s, "SELECT count(*) FROM seen"), 600);
    assert_eq!(
        one::<i64>(&mut s, "SELECT count(*) FROM seen WHERE v = md5(i::text)"),
        600,
        "a run got another run's values"
    );
    // The executors served many runs each (pooled, not one process a run).
    let pids: i64 = one(&mut s, "SELECT count(DISTINCT pid) FROM jobs.run");
    assert!(pids < 100, "{pids} executors for 600 runs");
}

#[test]
fn a_database_still_at_0_3_0_keeps_working_and_gains_args_when_updated() {
    let (c, mut admin) = cluster("params-old");
    admin.batch_execute("CREATE DATABASE old").unwrap();
    let mut old = c.connect("old");
    old.batch_execute(
        "CREATE EXTENSION pg_jobs VERSION '0.3.0';
         CREATE TABLE hits (what text);
         SELECT jobs.schedule('tick', '1 second', 'INSERT INTO hits VALUES (''tick'')');
         SELECT jobs.schedule('bad', '1 second', 'SELECT 1 / 0', max_attempts => 2, retry_backoff => '1 second');",
    )
    .unwrap();
    // Submits of the 0.3.0 functions, dispatched and claimed by the new
    // library (which reads no args column there); the jobs' runs fired, and
    // retried; and the 0.3.0 functions that look runs and jobs up (wait,
    // cancel, pause, resume) and the job_status view, which the library
    // serves with 0.3.0's visibility rule and entry points.
    let ids: Vec<i64> = old
        .query(
            "SELECT jobs.submit('INSERT INTO hits VALUES (''submit'')') FROM generate_series(1, 100)",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for id in &ids {
        succeeds(&mut old, *id);
    }
    wait_for("the 0.3.0 job running", DEADLINE, || {
        (one::<i64>(&mut old, "SELECT count(*) FROM hits WHERE what = 'tick'") >= 2).then_some(())
    });
    assert_eq!(
        one::<i64>(&mut old, "SELECT count(*) FROM hits WHERE what = 'submit'"),
        100
    );
    wait_for("a retry of the 0.3.0 job", DEADLINE, || {
        (one::<i64>(
            &mut old,
            "SELECT count(*) FROM jobs.run WHERE attempt = 2 AND sqlstate = '22012'",
        ) >= 1)
            .then_some(())
    });

    let last: String = one(&mut old, &format!("SELECT status FROM jobs.wait({})", ids[0]));
    assert_eq!(last, "succeeded");
    let queued: i64 = one(
        &mut old,
        "SELECT jobs.submit('SELECT 1', start_at => now() + interval '1 hour')",
    );
    assert!(one::<bool>(&mut old, &format!("SELECT jobs.cancel({queued})")));
    old.batch_execute("SELECT jobs.pause('tick'); SELECT jobs.resume('tick')")
        .unwrap();
    let next_due: i64 = one(
        &mut old,
        "SELECT count(*) FROM jobs.job_status WHERE name = 'tick' AND next_due IS NOT NULL",
    );
    assert_eq!(next_due, 1, "jobs.job_status of a 0.3.0 database");

    old.batch_execute("ALTER EXTENSION pg_jobs UPDATE; SELECT jobs.unschedule('bad');")
        .unwrap();
    let id = submit(&mut old, "INSERT INTO hits VALUES ($1)", &[Some("with args")]);
    succeeds(&mut old, id);
    old.batch_execute(
        "SELECT jobs.alter_job('tick', command => 'INSERT INTO hits VALUES ($1)', args => '{updated}')",
    )
    .unwrap();
    wait_for("the job running with values after the update", DEADLINE, || {
        (one::<i64>(&mut old, "SELECT count(*) FROM hits WHERE what = 'updated'") >= 1).then_some(())
    });
    assert_eq!(
        one::<i64>(&mut old, "SELECT count(*) FROM hits WHERE what = 'with args'"),
        1
    );
}

#[test]
fn values_go_with_unique_keys_dependencies_and_retries() {
    let (_c, mut s) = cluster("params-queues");
    s.batch_execute("CREATE TABLE got (n int)").unwrap();
    let args_of = |s: &mut Client, id: i64| -> Option<Vec<Option<String>>> {
        one(s, &format!("SELECT args FROM jobs.run WHERE id = {id}"))
    };
    // A unique key's 'replace' gives the queued run the new values (debounce).
    let first: i64 = one(
        &mut s,
        "SELECT jobs.submit('INSERT INTO got VALUES ($1)', start_at => now() + interval '2 seconds',
                            unique_key => 'k', on_conflict => 'replace', args => '{1}')",
    );
    let second: i64 = one(
        &mut s,
        "SELECT jobs.submit('INSERT INTO got VALUES ($1::int * 10)', start_at => now() + interval '1 second',
                            unique_key => 'k', on_conflict => 'replace', args => '{2}')",
    );
    assert_eq!(first, second, "the queued run was replaced");
    assert_eq!(args_of(&mut s, first), Some(vec![Some("2".to_owned())]));
    // 'skip' keeps the queued run's values.
    let skipped: i64 = one(
        &mut s,
        "SELECT jobs.submit('INSERT INTO got VALUES ($1)', unique_key => 'k', args => '{3}')",
    );
    assert_eq!(skipped, first);
    assert_eq!(args_of(&mut s, first), Some(vec![Some("2".to_owned())]));
    succeeds(&mut s, first);
    assert_eq!(one::<i32>(&mut s, "SELECT sum(n)::int FROM got"), 20);

    // A run that waits for another runs with its own values.
    let parent: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1')");
    let child: i64 = one(
        &mut s,
        &format!("SELECT jobs.submit('INSERT INTO got VALUES ($1)', depends_on => ARRAY[{parent}::int8], args => '{{300}}')"),
    );
    succeeds(&mut s, child);
    assert_eq!(one::<i32>(&mut s, "SELECT sum(n)::int FROM got"), 320);

    // jobs.retry runs the command again with the values it ran with.
    let failed = submit(&mut s, "SELECT 1 / $1::int", &[Some("0")]);
    let (status, code, _) = wait_run(&mut s, failed);
    assert_eq!((status.as_str(), code.as_deref()), ("failed", Some("22012")));
    let again: i64 = one(&mut s, &format!("SELECT jobs.retry({failed})"));
    let (status, code, _) = wait_run(&mut s, again);
    assert_eq!((status.as_str(), code.as_deref()), ("failed", Some("22012")));
    assert_eq!(args_of(&mut s, again), Some(vec![Some("0".to_owned())]));
}
