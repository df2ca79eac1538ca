//! Refusals of named queues: who may use a queue (its owner, the roles
//! that act for it, superusers) and bad input for every new argument.

use super::*;

/// A queue belongs to its owner: another role cannot change, pause,
/// resume, drop or submit to it (42501), nor see it in jobs.queue_status;
/// a member of the owner can do all of that; names are per database.
#[test]
fn only_its_owner_and_those_acting_for_it_use_a_queue() {
    let (c, mut s) = cluster("queues-privileges");
    s.batch_execute("CREATE ROLE a LOGIN; CREATE ROLE b LOGIN; CREATE ROLE m LOGIN IN ROLE a")
        .unwrap();
    let mut a = c.connect_as("app", "a");
    let mut b = c.connect_as("app", "b");
    let mut m = c.connect_as("app", "m");
    a.batch_execute("SELECT jobs.create_queue('aq', max_concurrency => 2)")
        .unwrap();
    b.batch_execute("SELECT jobs.create_queue('bq')").unwrap();
    let before = settings(&mut s, "aq");
    let runs = "SELECT count(*) FROM jobs.run";
    let runs_before: i64 = one(&mut s, runs);
    for (call, code) in [
        ("alter_queue('aq', max_concurrency => 1)", "42501"),
        ("pause_queue('aq')", "42501"),
        ("resume_queue('aq')", "42501"),
        ("drop_queue('aq')", "42501"),
        ("drop_queue('aq', force => true)", "42501"),
        ("submit('SELECT 1', queue => 'aq')", "42501"),
        ("create_queue('aq')", "42710"),
    ] {
        assert_eq!(
            sqlstate_of(&mut b, &format!("SELECT jobs.{call}")),
            code,
            "b: jobs.{call}"
        );
    }
    assert_eq!(settings(&mut s, "aq"), before, "after b's refused calls");
    assert_eq!(one::<i64>(&mut s, runs), runs_before, "after b's submit");
    assert_eq!(visible_queues(&mut b), "bq", "the queues b sees");
    assert_eq!(visible_queues(&mut a), "aq", "the queues a sees");
    assert_eq!(visible_queues(&mut m), "aq", "the queues m, a member of a, sees");
    assert_eq!(visible_queues(&mut s), "aq,bq", "the queues a superuser sees");
    let owner: String = one(
        &mut s,
        "SELECT owner::text FROM jobs.queue_status WHERE name = 'aq'",
    );
    assert_eq!(owner, "a");

    // m acts for a.
    m.batch_execute("SELECT jobs.alter_queue('aq', max_concurrency => 4); SELECT jobs.pause_queue('aq')")
        .unwrap();
    let changed = settings(&mut s, "aq");
    assert!(
        changed.starts_with("t 4 "),
        "after m's alter and pause: {changed}"
    );
    m.batch_execute("SELECT jobs.resume_queue('aq')").unwrap();
    let run = submit_rec(&mut m, "m", "1", ", queue => 'aq'");
    let (status, _, msg) = wait_run(&mut m, run);
    assert_eq!(status, "succeeded", "m's run in a's queue: {msg:?}");
    let (run_owner, run_queue): (String, Option<String>) = pair(
        &mut s,
        &format!("SELECT owner::text, queue FROM jobs.run WHERE id = {run}"),
    );
    assert_eq!((run_owner.as_str(), run_queue.as_deref()), ("m", Some("aq")));
    // A superuser may change anyone's queue.
    s.batch_execute("SELECT jobs.alter_queue('bq', rate_limit => 10)")
        .unwrap();
    m.batch_execute("SELECT jobs.drop_queue('aq')").unwrap();
    assert_eq!(visible_queues(&mut a), "", "m's drop_queue left a's queue");
}

/// Each error the API promises for the new arguments, and nothing written
/// by a refused call; the bounds themselves are accepted; alter_queue keeps
/// what it is not given and removes a limit given 0.
#[test]
fn bad_queue_arguments_are_refused_and_write_nothing() {
    let (_c, mut s) = cluster("queues-bad-input");
    s.batch_execute(
        "SELECT jobs.create_queue('dup', max_concurrency => 3, rate_limit => 5);
         SELECT jobs.create_queue('edge', max_concurrency => 0, max_per_key => 0, rate_limit => 1000,
                                  rate_period => '1 day');",
    )
    .unwrap();
    assert_eq!(settings(&mut s, "dup"), "f 3 0 5 00:00:01");
    assert_eq!(settings(&mut s, "edge"), "f 0 0 1000 1 day");
    s.batch_execute("SELECT jobs.schedule('held', '@hourly', 'SELECT 1')")
        .unwrap();
    let counts = "SELECT (SELECT count(*) FROM jobs.queue), (SELECT count(*) FROM jobs.run)
                        + (SELECT count(*) FROM jobs.job WHERE queue IS NOT NULL OR name <> 'held')";
    let before: (i64, i64) = pair(&mut s, counts);
    for (call, code) in [
        ("create_queue('dup')", "42710"),
        ("create_queue('x', max_concurrency => -1)", "22023"),
        ("create_queue('x', max_per_key => -1)", "22023"),
        ("create_queue('x', rate_limit => -1)", "22023"),
        ("create_queue('x', rate_limit => 1001)", "22023"),
        ("create_queue('x', rate_limit => 5, rate_period => '0')", "22023"),
        (
            "create_queue('x', rate_limit => 5, rate_period => '-1 second')",
            "22023",
        ),
        (
            "create_queue('x', rate_limit => 5, rate_period => '1 day 1 second')",
            "22023",
        ),
        ("create_queue('')", "22023"),
        ("create_queue(NULL)", "22004"),
        ("alter_queue('nope', max_concurrency => 1)", "42704"),
        ("alter_queue('dup', max_concurrency => -1)", "22023"),
        ("alter_queue('dup', max_per_key => -1)", "22023"),
        ("alter_queue('dup', rate_limit => 1001)", "22023"),
        ("alter_queue('dup', rate_period => '0')", "22023"),
        ("alter_queue('dup', rate_period => '2 days')", "22023"),
        ("pause_queue('nope')", "42704"),
        ("resume_queue('nope')", "42704"),
        ("drop_queue('nope')", "42704"),
        ("submit('SELECT 1', queue => 'nope')", "42704"),
        ("submit('SELECT 1', concurrency_key => 'k')", "22023"),
        (
            "submit('SELECT 1', queue => 'dup', concurrency_key => repeat('k', 201))",
            "22023",
        ),
        ("schedule('j', '@hourly', 'SELECT 1', queue => 'nope')", "42704"),
        ("alter_job('held', queue => 'nope')", "42704"),
    ] {
        assert_eq!(
            sqlstate_of(&mut s, &format!("SELECT jobs.{call}")),
            code,
            "jobs.{call}"
        );
    }
    let after: (i64, i64) = pair(&mut s, counts);
    assert_eq!(after, before, "queues and runs after refused calls");
    assert_eq!(settings(&mut s, "dup"), "f 3 0 5 00:00:01", "after refused calls");

    // NULL keeps a setting, 0 removes a limit.
    s.batch_execute("SELECT jobs.alter_queue('dup', max_per_key => 2)")
        .unwrap();
    assert_eq!(settings(&mut s, "dup"), "f 3 2 5 00:00:01", "keeps the rest");
    s.batch_execute("SELECT jobs.alter_queue('dup', max_concurrency => 0, rate_period => '2 seconds')")
        .unwrap();
    assert_eq!(settings(&mut s, "dup"), "f 0 2 5 00:00:02");
    s.batch_execute("SELECT jobs.alter_queue('dup', paused => true)")
        .unwrap();
    assert_eq!(settings(&mut s, "dup"), "t 0 2 5 00:00:02");
}
