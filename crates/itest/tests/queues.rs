//! Named queues (`jobs.create_queue`, `jobs.submit(…, queue,
//! concurrency_key)`, `jobs.schedule(…, queue)`): a queue's limits
//! (`max_concurrency`, `max_per_key`, `rate_limit` per `rate_period`),
//! pausing and resuming it, dropping it, who may use and change it, fair
//! share between roles inside it, unique keys per queue, and bad input.
//!
//! Each command records when it started and ended (`clock_timestamp()`) in
//! the table `log`, so every limit is observed in what ran, not inferred
//! from `jobs.run`. A recorded interval lies inside its run, so an overlap
//! measured in `log` is never larger than the real one; it misses a real
//! one only where runs met for less than an executor takes to start and
//! end a command.

use pg_jobs_itest::{one, wait_for, wait_run, Cluster, DEADLINE};
use postgres::types::{FromSql, ToSql};
use postgres::Client;
use std::time::Duration;

#[path = "queues/refusals.rs"]
mod refusals;

/// 8 executors, so 7 runs per role: neither the executors nor the per-role
/// cap is what holds a queue to the limits of 1 to 3 used here.
const CONF: &str = "pg_jobs.max_executors = 8\nmax_worker_processes = 16";

/// For a few dozen short runs on a loaded 2-core machine.
const RUNS_DEADLINE: Duration = Duration::from_secs(180);

/// A cluster whose `rec(grp, k, secs)` records a run in `log`: its start,
/// then `secs` of sleep, then its end. Any role may call it.
fn cluster(name: &str) -> (Cluster, Client) {
    let (c, mut s) = Cluster::with_app_db(name, CONF);
    s.batch_execute(
        "CREATE TABLE log (grp text, k text, started timestamptz, ended timestamptz);
         GRANT ALL ON log TO PUBLIC;
         CREATE FUNCTION rec(grp text, k text, secs float8) RETURNS void LANGUAGE plpgsql AS $$
           DECLARE t0 timestamptz := clock_timestamp();
           BEGIN PERFORM pg_sleep(secs); INSERT INTO log VALUES (grp, k, t0, clock_timestamp()); END $$;",
    )
    .unwrap();
    (c, s)
}

/// The SQLSTATE of the error `sql` raises (panics if it succeeds).
fn sqlstate_of(c: &mut Client, sql: &str) -> String {
    let e = c.batch_execute(sql).expect_err(sql);
    e.code().map(|c| c.code().to_owned()).unwrap_or_default()
}

/// The first column of every row of `sql`.
fn column<T: for<'a> FromSql<'a>>(c: &mut Client, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Vec<T> {
    c.query(sql, params)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// The two columns of the one row of `sql`.
fn pair<A: for<'a> FromSql<'a>, B: for<'a> FromSql<'a>>(c: &mut Client, sql: &str) -> (A, B) {
    let r = c.query_one(sql, &[]).unwrap_or_else(|e| panic!("{sql}: {e}"));
    (r.get(0), r.get(1))
}

/// How many runs of `ids` match the condition `cond` on `jobs.run`.
fn runs_where(c: &mut Client, ids: &[i64], cond: &str) -> i64 {
    let sql = format!("SELECT count(*) FROM jobs.run WHERE id = ANY($1) AND {cond}");
    column(c, &sql, &[&ids])[0]
}

/// Submit `n` runs of `rec(grp, key, secs)` in one transaction; `key` is an
/// SQL expression of `g`, the run's number from 1, and `extra` further
/// arguments of `jobs.submit` (`, queue => 'q'`). Their ids, in submit order.
fn submit_recs(c: &mut Client, n: i32, grp: &str, key: &str, secs: f64, extra: &str) -> Vec<i64> {
    let sql = format!(
        "SELECT jobs.submit('SELECT rec($1, $2, {secs}::float8)', args => ARRAY['{grp}', {key}]{extra})
           FROM generate_series(1, {n}) g"
    );
    column(c, &sql, &[])
}

/// One run of `rec(grp, key, 0.05)`, submitted as [`submit_recs`] does.
fn submit_rec(c: &mut Client, grp: &str, key: &str, extra: &str) -> i64 {
    submit_recs(c, 1, grp, &format!("'{key}'"), 0.05, extra)[0]
}

/// The statuses of runs `ids`, in id order.
fn statuses(c: &mut Client, ids: &[i64]) -> Vec<String> {
    column(
        c,
        "SELECT status FROM jobs.run WHERE id = ANY($1) ORDER BY id",
        &[&ids],
    )
}

/// How many runs of the groups matching `grp` recorded themselves.
fn logged(c: &mut Client, grp: &str) -> i64 {
    column(c, "SELECT count(*) FROM log WHERE grp LIKE $1", &[&grp])[0]
}

/// Wait until every run of `ids` has ended; panics naming those that did
/// not succeed.
fn wait_all_succeed(s: &mut Client, ids: &[i64], what: &str) {
    let open = "status NOT IN ('succeeded', 'failed', 'timed_out', 'cancelled', 'skipped', 'crashed')";
    let what_ended = format!("{what}: all {} runs to end", ids.len());
    wait_for(&what_ended, RUNS_DEADLINE, || {
        (runs_where(s, ids, open) == 0).then_some(())
    });
    let bad: Vec<String> = column(
        s,
        "SELECT concat_ws(' ', id, status, sqlstate, message) FROM jobs.run
          WHERE id = ANY($1) AND status <> 'succeeded' ORDER BY id",
        &[&ids],
    );
    assert!(bad.is_empty(), "{what}: runs that did not succeed: {bad:?}");
}

/// The most recorded runs of the groups matching `grp` (a LIKE pattern)
/// inside their command at one instant, with one concurrency key if
/// `per_key`: the most intervals containing one run's start.
fn max_overlap(s: &mut Client, grp: &str, per_key: bool) -> i64 {
    let same_key = if per_key { "AND b.k = a.k" } else { "" };
    let sql = format!(
        "SELECT COALESCE(max((SELECT count(*) FROM log b WHERE b.grp LIKE $1 {same_key}
                                 AND b.started <= a.started AND b.ended > a.started)), 0)
           FROM log a WHERE a.grp LIKE $1"
    );
    column(s, &sql, &[&grp])[0]
}

/// [`max_overlap`], asserted to be at most `limit`: shows the runs if not.
fn assert_overlap_at_most(s: &mut Client, grp: &str, per_key: bool, limit: i64, what: &str) -> i64 {
    let most = max_overlap(s, grp, per_key);
    assert!(
        most <= limit,
        "{most} runs ran at once under {what}:\n{}",
        timeline(s, grp)
    );
    most
}

/// The most recorded starts of group `grp` in a window of `secs` seconds
/// (each window beginning at a start).
fn densest(s: &mut Client, grp: &str, secs: f64) -> i64 {
    column(
        s,
        "SELECT COALESCE(max((SELECT count(*) FROM log b WHERE b.grp = $1
                                 AND b.started >= a.started AND b.started < a.started + make_interval(secs => $2))), 0)
           FROM log a WHERE a.grp = $1",
        &[&grp, &secs],
    )[0]
}

/// The recorded runs of the groups matching `grp`, one a line: group, key,
/// start and end in ms after the first start. For assertion messages.
fn timeline(s: &mut Client, grp: &str) -> String {
    let lines: Vec<String> = column(
        s,
        "SELECT concat_ws(' ', grp, k, round(extract(epoch FROM started - f) * 1000),
                          round(extract(epoch FROM ended - f) * 1000))
           FROM log, (SELECT min(started) AS f FROM log WHERE grp LIKE $1) m
          WHERE grp LIKE $1 ORDER BY started",
        &[&grp],
    );
    lines.join("\n")
}

/// A queue's settings as `jobs.queue_status` shows them to `c`: paused,
/// max_concurrency, max_per_key, rate_limit (0: no limit), rate_period.
fn settings(c: &mut Client, name: &str) -> String {
    let shown: Vec<String> = column(
        c,
        "SELECT concat_ws(' ', paused, COALESCE(max_concurrency, 0), COALESCE(max_per_key, 0),
                          COALESCE(rate_limit, 0), rate_period)
           FROM jobs.queue_status WHERE name = $1",
        &[&name],
    );
    shown
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("queue {name} is not in jobs.queue_status"))
}

/// The names of the queues `c` sees in `jobs.queue_status`, comma-separated.
fn visible_queues(c: &mut Client) -> String {
    one(
        c,
        "SELECT COALESCE(string_agg(name::text, ',' ORDER BY name), '') FROM jobs.queue_status",
    )
}

/// A queue with max_concurrency 3 never has more than 3 runs going, and it
/// is the limit that holds them back (they do run side by side). Runs
/// without a queue, submitted by the same role behind the queue's 60, are
/// not held up behind them.
#[test]
fn max_concurrency_bounds_a_queue_and_leaves_other_runs_alone() {
    let (_c, mut s) = cluster("queues-concurrency");
    s.batch_execute("SELECT jobs.create_queue('three', max_concurrency => 3)")
        .unwrap();
    // 60 runs of 0.15 s, 3 at a time: at least 3 s.
    let queued = submit_recs(&mut s, 60, "three", "g::text", 0.15, ", queue => 'three'");
    let free = submit_recs(&mut s, 20, "free", "g::text", 0.02, "");
    wait_all_succeed(&mut s, &free, "the runs without a queue");
    wait_all_succeed(&mut s, &queued, "the queue's runs");
    let labelled = runs_where(&mut s, &queued, "queue = 'three' AND concurrency_key IS NULL");
    assert_eq!(labelled, 60, "runs whose jobs.run.queue is 'three'");
    let most = assert_overlap_at_most(&mut s, "three", false, 3, "max_concurrency 3");
    assert!(
        most >= 2,
        "the queue's runs never ran side by side (at most {most} at once): nothing shows it was the limit that held them"
    );
    // The runs without a queue were done long before the queue's last started.
    let (free_end, queue_last_start): (f64, f64) = pair(
        &mut s,
        "SELECT extract(epoch FROM (SELECT max(ended) FROM log WHERE grp = 'free'))::float8,
                extract(epoch FROM (SELECT max(started) FROM log WHERE grp = 'three'))::float8",
    );
    assert!(
        free_end < queue_last_start,
        "runs without a queue waited behind the queue's: the last ended {:.0} ms after the queue's last started",
        (free_end - queue_last_start) * 1000.0
    );
    println!(
        "max_concurrency 3: at most {most} at once; the runs without a queue were done {:.0} ms before the queue's last started",
        (queue_last_start - free_end) * 1000.0
    );
}

/// max_per_key 1: the runs with one concurrency_key go one at a time, and
/// runs with different keys side by side (the queue itself has no limit).
#[test]
fn max_per_key_serialises_a_key_but_not_the_queue() {
    let (_c, mut s) = cluster("queues-per-key");
    s.batch_execute("SELECT jobs.create_queue('per-key', max_per_key => 1)")
        .unwrap();
    // Three keys interleaved, 10 runs of 0.1 s each.
    let key = "'k' || (g % 3)";
    let extra = format!(", queue => 'per-key', concurrency_key => {key}");
    let ids = submit_recs(&mut s, 30, "per-key", key, 0.1, &extra);
    wait_all_succeed(&mut s, &ids, "the queue's runs");
    let keys: Vec<String> = column(
        &mut s,
        "SELECT DISTINCT concurrency_key FROM jobs.run WHERE id = ANY($1) AND queue = 'per-key' ORDER BY 1",
        &[&ids],
    );
    assert_eq!(keys, ["k0", "k1", "k2"], "jobs.run.concurrency_key");
    assert_overlap_at_most(&mut s, "per-key", true, 1, "max_per_key 1, with one key");
    let across = max_overlap(&mut s, "per-key", false);
    assert!(
        across >= 2,
        "runs with different keys never ran side by side (at most {across} at once):\n{}",
        timeline(&mut s, "per-key")
    );
}

/// How much later than pg_jobs' start of a run its command may read the
/// clock: pg_jobs logs a run's start in its queue's window right before it
/// hands the command over (see `pg_jobs_core::queue::rate`), and the
/// command's first statement reads `clock_timestamp()` after its own
/// start-up, which in a new executor's first run (catalog caches,
/// plpgsql compiling the function) took a few milliseconds (seen: 2 ms on
/// PostgreSQL 18). Windows of the commands' start times are measured this
/// much shorter than rate_period. A limit enforced when runs are
/// dispatched instead breaks this by tens of milliseconds (a cold executor
/// starts its run later than a warm one), and a sixth start in a window by
/// a whole period.
const START_JITTER: f64 = 0.05;

/// rate_limit 5 per second: in no second do more than 5 of the queue's
/// runs start, so 20 runs take at least 3 s from the first start to the
/// last (starts i and i + 5 are a period apart).
#[test]
fn rate_limit_spaces_the_starts_of_a_queue() {
    let (_c, mut s) = cluster("queues-rate");
    s.batch_execute("SELECT jobs.create_queue('paced', rate_limit => 5, rate_period => '1 second')")
        .unwrap();
    let ids = submit_recs(&mut s, 20, "paced", "g::text", 0.0, ", queue => 'paced'");
    wait_all_succeed(&mut s, &ids, "the queue's runs");
    let dense = densest(&mut s, "paced", 1.0 - START_JITTER);
    assert!(
        dense <= 5,
        "{dense} runs of a queue limited to 5 per second started within {} s:\n{}",
        1.0 - START_JITTER,
        timeline(&mut s, "paced")
    );
    let span: f64 = one(
        &mut s,
        "SELECT extract(epoch FROM max(started) - min(started))::float8 FROM log WHERE grp = 'paced'",
    );
    assert!(
        span >= 3.0 - START_JITTER,
        "20 runs at 5 per second started within {span:.2} s (at least 3 s apart first to last):\n{}",
        timeline(&mut s, "paced")
    );
    let per_second = densest(&mut s, "paced", 1.0);
    println!("rate_limit 5/s: 20 starts over {span:.2} s, at most {per_second} in any second");
}

/// A queue created paused starts nothing while runs without a queue go on;
/// resume_queue starts its runs at once, one at a time (max_concurrency
/// 1), higher priority first, then in submit order; jobs.queue_status
/// counts them.
#[test]
fn a_paused_queue_starts_nothing_and_resuming_starts_its_runs_in_order() {
    let (_c, mut s) = cluster("queues-pause");
    s.batch_execute("SELECT jobs.create_queue('held', max_concurrency => 1, paused => true)")
        .unwrap();
    // One by one, each in its own transaction, so each is due later.
    let ids: Vec<i64> = [0, 5, 0, 5, -1]
        .iter()
        .enumerate()
        .map(|(i, p)| {
            submit_rec(
                &mut s,
                "held",
                &(i + 1).to_string(),
                &format!(", queue => 'held', priority => {p}"),
            )
        })
        .collect();
    // Two runs without a queue, one after the other, submitted after the
    // queue's: each ended after a scheduler pass that saw the queue's runs.
    for _ in 0..2 {
        let marker: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1')");
        assert_eq!(wait_run(&mut s, marker).0, "succeeded");
    }
    let now = statuses(&mut s, &ids);
    assert_eq!(now, ["queued"; 5], "runs of a paused queue left it");
    assert_eq!(logged(&mut s, "%"), 0, "a run of a paused queue ran");
    // paused, queued, running, whether the oldest queued run has an age, finished_last_minute
    let shown = "SELECT concat_ws(' ', paused, queued, running, COALESCE(oldest_queued_age > '0', false),
                                  finished_last_minute)
                   FROM jobs.queue_status WHERE name = 'held'";
    assert_eq!(one::<String>(&mut s, shown), "t 5 0 t 0", "while paused");

    s.batch_execute("SELECT jobs.resume_queue('held')").unwrap();
    let resumed: f64 = one(&mut s, "SELECT extract(epoch FROM clock_timestamp())::float8");
    wait_all_succeed(&mut s, &ids, "the resumed queue's runs");
    let order: Vec<String> = column(
        &mut s,
        "SELECT k FROM log WHERE grp = 'held' ORDER BY started",
        &[],
    );
    // Priority 5 (runs 2 and 4), then 0 (1 and 3), then -1 (5).
    assert_eq!(order, ["2", "4", "1", "3", "5"], "order of the starts");
    // At once: woken by the resume, not by some pass a long while later.
    let first_start: f64 = one(
        &mut s,
        "SELECT extract(epoch FROM min(started))::float8 FROM log WHERE grp = 'held'",
    );
    assert!(
        first_start - resumed < 10.0,
        "the first run started {:.1} s after the resume",
        first_start - resumed
    );
    assert_eq!(one::<String>(&mut s, shown), "f 0 0 f 5", "once they ended");
}

/// drop_queue is refused (55006) while runs of the queue are queued or
/// waiting; with force they end cancelled, never having run. It is refused
/// (2BP01) while a job uses the queue, force or not, until the job leaves
/// it. Finished runs do not hold a queue.
#[test]
fn drop_queue_waits_for_its_runs_unless_forced_and_for_its_jobs() {
    let (_c, mut s) = cluster("queues-drop");
    s.batch_execute("SELECT jobs.create_queue('doomed', paused => true)")
        .unwrap();
    let queued = submit_rec(&mut s, "doomed", "queued", ", queue => 'doomed'");
    // Waiting for a run (without a queue) due in an hour.
    let parent: i64 = one(
        &mut s,
        "SELECT jobs.submit('SELECT 1', start_at => now() + interval '1 hour')",
    );
    let extra = format!(", queue => 'doomed', depends_on => ARRAY[{parent}]::bigint[]");
    let waiting = submit_rec(&mut s, "doomed", "waiting", &extra);
    let ids = [parent, queued, waiting];
    assert_eq!(statuses(&mut s, &ids), ["queued", "queued", "waiting"]);
    assert_eq!(sqlstate_of(&mut s, "SELECT jobs.drop_queue('doomed')"), "55006");
    assert_eq!(visible_queues(&mut s), "doomed", "after a refused drop");
    let after = statuses(&mut s, &ids);
    assert_eq!(after, ["queued", "queued", "waiting"], "after a refused drop");

    s.batch_execute("SELECT jobs.drop_queue('doomed', force => true)")
        .unwrap();
    assert_eq!(wait_run(&mut s, queued).0, "cancelled", "the queued run");
    assert_eq!(wait_run(&mut s, waiting).0, "cancelled", "the waiting run");
    assert_eq!(statuses(&mut s, &[parent]), ["queued"], "a run outside the queue");
    assert_eq!(visible_queues(&mut s), "", "after drop_queue with force");
    assert_eq!(logged(&mut s, "%"), 0, "a run of the dropped queue ran");

    // Only finished runs: nothing holds the queue.
    s.batch_execute("SELECT jobs.create_queue('brief')").unwrap();
    let done = submit_rec(&mut s, "brief", "1", ", queue => 'brief'");
    assert_eq!(wait_run(&mut s, done).0, "succeeded");
    s.batch_execute("SELECT jobs.drop_queue('brief')").unwrap();

    // A job that uses the queue holds it, force or not.
    s.batch_execute(
        "SELECT jobs.create_queue('for-job');
         SELECT jobs.schedule('uses', '@yearly', 'SELECT 1', queue => 'for-job');",
    )
    .unwrap();
    let job_queue = "SELECT queue FROM jobs.job WHERE name = 'uses'";
    let in_queue: Option<String> = one(&mut s, job_queue);
    assert_eq!(in_queue.as_deref(), Some("for-job"));
    assert_eq!(sqlstate_of(&mut s, "SELECT jobs.drop_queue('for-job')"), "2BP01");
    let forced = sqlstate_of(&mut s, "SELECT jobs.drop_queue('for-job', force => true)");
    assert_eq!(forced, "2BP01", "drop_queue with force, a job using the queue");
    s.batch_execute("SELECT jobs.alter_job('uses', queue => '')")
        .unwrap();
    let in_queue: Option<String> = one(&mut s, job_queue);
    assert_eq!(in_queue, None, "after alter_job(queue => '')");
    s.batch_execute("SELECT jobs.drop_queue('for-job')").unwrap();
    assert_eq!(visible_queues(&mut s), "");
}

/// Roles `a` and `b`, both members of `team`, and a queue of team's.
fn team_queue(s: &mut Client, queue: &str) {
    s.batch_execute(&format!(
        "CREATE ROLE team NOLOGIN; CREATE ROLE a LOGIN IN ROLE team; CREATE ROLE b LOGIN IN ROLE team;
         SET ROLE team; SELECT jobs.create_queue({queue}); RESET ROLE;"
    ))
    .unwrap();
}

/// Fair share holds inside a queue: with max_concurrency 2, role a's 40
/// runs do not keep role b's 4, submitted after them, waiting until a's
/// are done; b's end before a's last 20 start.
#[test]
fn roles_share_a_queue_fairly() {
    let (c, mut s) = cluster("queues-fair");
    team_queue(&mut s, "'shared', max_concurrency => 2");
    let mut a = c.connect_as("app", "a");
    let mut b = c.connect_as("app", "b");
    // a's 40 runs of 0.1 s, 2 at a time: its first 20 alone take 1 s.
    let a_ids = submit_recs(&mut a, 40, "fair-a", "g::text", 0.1, ", queue => 'shared'");
    let b_ids = submit_recs(&mut b, 4, "fair-b", "g::text", 0.1, ", queue => 'shared'");
    wait_all_succeed(&mut s, &b_ids, "b's runs");
    wait_all_succeed(&mut s, &a_ids, "a's runs");
    assert_overlap_at_most(&mut s, "fair-%", false, 2, "max_concurrency 2");
    let (b_end, a_21st_start): (f64, f64) = pair(
        &mut s,
        "SELECT extract(epoch FROM (SELECT max(ended) FROM log WHERE grp = 'fair-b'))::float8,
                extract(epoch FROM (SELECT started FROM log WHERE grp = 'fair-a'
                                     ORDER BY started OFFSET 20 LIMIT 1))::float8",
    );
    assert!(
        b_end < a_21st_start,
        "b's runs waited behind a's flood: b's last ended after a's 21st started:\n{}",
        timeline(&mut s, "fair-%")
    );
}

/// A unique key is unique per owner, queue and key: the same key queues a
/// run in each queue and one without a queue; within one queue skip
/// returns the queued run and replace updates it; another owner's run in
/// the same queue has a key of its own.
#[test]
fn unique_keys_are_per_queue() {
    let (c, mut s) = cluster("queues-unique");
    team_queue(&mut s, "'tq'");
    s.batch_execute("SELECT jobs.create_queue('q1'); SELECT jobs.create_queue('q2')")
        .unwrap();
    // `extra`: the queue, if any, and on_conflict.
    let submit = |c: &mut Client, command: &str, extra: &str| -> i64 {
        one(
            c,
            &format!(
                "SELECT jobs.submit('{command}', start_at => now() + interval '1 hour', unique_key => 'k'{extra})"
            ),
        )
    };
    let in_q1 = submit(&mut s, "SELECT 1", ", queue => 'q1'");
    let in_q2 = submit(&mut s, "SELECT 1", ", queue => 'q2'");
    let in_none = submit(&mut s, "SELECT 1", "");
    assert!(
        in_q1 != in_q2 && in_q2 != in_none && in_q1 != in_none,
        "one key in two queues and none: runs {in_q1}, {in_q2}, {in_none}"
    );
    assert_eq!(
        submit(&mut s, "SELECT 2", ", queue => 'q1', on_conflict => 'skip'"),
        in_q1
    );
    assert_eq!(submit(&mut s, "SELECT 2", ", on_conflict => 'skip'"), in_none);
    assert_eq!(
        submit(&mut s, "SELECT 3", ", queue => 'q2', on_conflict => 'replace'"),
        in_q2
    );
    let commands: Vec<String> = column(
        &mut s,
        "SELECT command FROM jobs.run WHERE id = ANY($1) ORDER BY id",
        &[&vec![in_q1, in_q2, in_none]],
    );
    assert_eq!(
        commands,
        ["SELECT 1", "SELECT 3", "SELECT 1"],
        "what skip and replace left"
    );
    let queued = "SELECT count(*) FROM jobs.run WHERE unique_key = 'k' AND status = 'queued'";
    assert_eq!(one::<i64>(&mut s, queued), 3);

    let mut a = c.connect_as("app", "a");
    let mut b = c.connect_as("app", "b");
    let as_a = submit(&mut a, "SELECT 1", ", queue => 'tq'");
    let as_b = submit(&mut b, "SELECT 1", ", queue => 'tq'");
    assert_ne!(as_a, as_b, "b's key in the shared queue matched a's run");
    assert_eq!(
        submit(&mut a, "SELECT 2", ", queue => 'tq'"),
        as_a,
        "skip in the shared queue"
    );
}

/// A scheduled job's runs go to its queue: while the queue is paused the
/// job comes due but none of its runs starts (one waits queued, the
/// firings meanwhile are skipped by its overlap policy); once resumed,
/// they run.
#[test]
fn a_jobs_runs_wait_in_its_paused_queue() {
    let (_c, mut s) = cluster("queues-job");
    s.batch_execute(
        "SELECT jobs.create_queue('slow');
         SELECT jobs.pause_queue('slow');
         SELECT jobs.schedule('q-job', '1 second', 'SELECT rec($1, $2, 0::float8)',
                              args => ARRAY['q-job', 'tick'], queue => 'slow');",
    )
    .unwrap();
    let job_queue: Option<String> = one(&mut s, "SELECT queue FROM jobs.job WHERE name = 'q-job'");
    assert_eq!(job_queue.as_deref(), Some("slow"));
    let of_job = "FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id WHERE j.name = 'q-job'";
    wait_for("the job to come due three times", DEADLINE, || {
        (one::<i64>(&mut s, &format!("SELECT count(*) {of_job}")) >= 3).then_some(())
    });
    let seen: String = one(
        &mut s,
        &format!(
            "SELECT string_agg(concat_ws(':', r.status, r.queue, r.started_at), ' ' ORDER BY r.id) {of_job}"
        ),
    );
    // The job's runs that started (or ended otherwise than skipped), and
    // those waiting queued in the queue.
    let (started, queued): (i64, i64) = pair(
        &mut s,
        &format!(
            "SELECT count(*) FILTER (WHERE r.started_at IS NOT NULL OR r.status NOT IN ('queued', 'skipped')),
                    count(*) FILTER (WHERE r.status = 'queued' AND r.queue = 'slow') {of_job}"
        ),
    );
    assert_eq!(started, 0, "a run of the job started in its paused queue: {seen}");
    assert!(queued >= 1, "no run of the job waits in its queue: {seen}");
    assert_eq!(logged(&mut s, "%"), 0, "the job ran in its paused queue");
    let shown: (bool, i64) = pair(
        &mut s,
        "SELECT paused, queued FROM jobs.queue_status WHERE name = 'slow'",
    );
    assert_eq!(
        shown,
        (true, queued),
        "jobs.queue_status of the paused queue: {seen}"
    );

    s.batch_execute("SELECT jobs.resume_queue('slow')").unwrap();
    wait_for("two runs of the job to run after the resume", DEADLINE, || {
        (logged(&mut s, "q-job") >= 2).then_some(())
    });
    let outside: i64 = one(
        &mut s,
        &format!("SELECT count(*) {of_job} AND r.status = 'succeeded' AND r.queue IS DISTINCT FROM 'slow'"),
    );
    assert_eq!(outside, 0, "a run of the job ran outside its queue");
}

/// A queue dropped while one of its runs goes on: the run's retry (and
/// `jobs.retry` of it) runs without a queue instead of waiting in one that
/// is gone.
#[test]
fn a_retry_after_its_queue_was_dropped_runs_without_one() {
    let (_c, mut s) = cluster("queues-dropped-retry");
    s.batch_execute(
        "CREATE SEQUENCE tries;
         GRANT ALL ON SEQUENCE tries TO PUBLIC;
         CREATE FUNCTION fail_once() RETURNS int LANGUAGE plpgsql AS $$
           BEGIN PERFORM pg_sleep(1);
                 IF nextval('tries') = 1 THEN RAISE EXCEPTION 'first try'; END IF;
                 RETURN 1; END $$;
         SELECT jobs.create_queue('brief', max_concurrency => 1);",
    )
    .unwrap();
    let first: i64 = one(
        &mut s,
        "SELECT jobs.submit('SELECT fail_once()', queue => 'brief', max_attempts => 2)",
    );
    wait_for("the run to be going", Duration::from_secs(30), || {
        (runs_where(&mut s, &[first], "status = 'running'") == 1).then_some(())
    });
    // Nothing of it waits to start: the drop goes through.
    s.batch_execute("SELECT jobs.drop_queue('brief')").unwrap();
    let (retry, _) = wait_for("its retry", DEADLINE, || {
        let id: Option<i64> = one(
            &mut s,
            &format!("SELECT max(id) FROM jobs.run WHERE id > {first} AND command = 'SELECT fail_once()'"),
        );
        id
    });
    assert_eq!(wait_run(&mut s, retry).0, "succeeded", "the retry ran");
    let queue: Option<String> = one(&mut s, &format!("SELECT queue FROM jobs.run WHERE id = {retry}"));
    assert_eq!(queue, None, "the retry's queue");
    let again: i64 = one(&mut s, &format!("SELECT jobs.retry({first})"));
    assert_eq!(wait_run(&mut s, again).0, "succeeded", "jobs.retry of it ran");
}
