//! Fair sharing (issue 13): one role's flood, priorities or long runs cannot
//! starve another role. Each test failed before its fix (priority and due
//! order were global, with no per-role cap).

use pg_jobs_itest::{one, wait_for, Cluster, DEADLINE};
use postgres::Client;
use std::time::{Duration, Instant};

/// A role `name` that can log in, use the table `t` and nothing else.
fn role(s: &mut Client, name: &str) {
    s.batch_execute(&format!(
        "CREATE ROLE {name} LOGIN; GRANT INSERT, SELECT ON t TO {name}"
    ))
    .unwrap();
}

/// Runs of `owner` now `running`.
fn running_of(s: &mut Client, owner: &str) -> i64 {
    one(
        s,
        &format!("SELECT count(*) FROM jobs.run WHERE owner = '{owner}'::regrole AND status = 'running'"),
    )
}

/// The flood of the issue: 20,000 submits, long runs at the highest
/// priority (more than there are executors), 500 every-second jobs, a retry
/// chain and daemons, all of role `flood`; meanwhile role `calm`'s
/// one-second job keeps running and its single submits start at once.
#[test]
fn a_flood_does_not_starve_another_role() {
    // Sized as docs/operations.md says: the flood's daemons must not take
    // the worker slots executors need (PostgreSQL's default of 8 holds the
    // launcher, the scheduler, 4 executors, the logical replication
    // launcher and one daemon).
    let (c, mut s) = Cluster::with_app_db(
        "sharing-flood",
        "pg_jobs.log_runs = off\nmax_worker_processes = 16",
    );
    s.batch_execute("CREATE TABLE t (who text, at timestamptz DEFAULT clock_timestamp())")
        .unwrap();
    role(&mut s, "flood");
    role(&mut s, "calm");
    let mut flood = c.connect_as("app", "flood");
    flood
        .batch_execute(
            "SELECT jobs.submit('SELECT pg_sleep(600)', priority => 2147483647) FROM generate_series(1, 6);
             SELECT jobs.submit('INSERT INTO t VALUES (''flood'')') FROM generate_series(1, 20000);
             SELECT jobs.schedule('f' || g, '1 second', 'INSERT INTO t VALUES (''flood-job'')')
               FROM generate_series(1, 500) g;
             SELECT jobs.schedule('retry', '1 second', 'SELECT 1/0', max_attempts => 100, retry_backoff => '1 second');
             SELECT jobs.daemon('d' || g, 'SELECT pg_sleep(600)') FROM generate_series(1, 2) g;",
        )
        .unwrap();
    // The flood holds what it may: its long runs are going.
    wait_for("the flood's long runs to start", DEADLINE, || {
        (running_of(&mut s, "flood") >= 1).then_some(())
    });

    let mut calm = c.connect_as("app", "calm");
    calm.batch_execute("SELECT jobs.schedule('tick', '1 second', 'INSERT INTO t VALUES (''tick'')')")
        .unwrap();
    wait_for("calm's job to run once", DEADLINE, || {
        (one::<i64>(&mut s, "SELECT count(*) FROM t WHERE who = 'tick'") >= 1).then_some(())
    });
    // Ten seconds of the flood, measured by the server's clock.
    let from: f64 = one(&mut s, "SELECT extract(epoch FROM clock_timestamp())::float8");
    let mut submits = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(10) {
        submits.push(one::<i64>(&mut calm, "SELECT jobs.submit('SELECT 1')"));
        std::thread::sleep(Duration::from_millis(500)); // single submits spread over the window, not a wait for a condition
    }
    let ticks: i64 = one(
        &mut s,
        &format!("SELECT count(*) FROM t WHERE who = 'tick' AND at >= to_timestamp({from}) AND at < to_timestamp({from}) + interval '10 seconds'"),
    );
    assert!(
        ticks >= 8,
        "calm's one-second job ran {ticks} times in 10 s of the flood"
    );
    wait_for("calm's submits to start", DEADLINE, || {
        let started: i64 = one(
            &mut s,
            &format!(
                "SELECT count(*) FROM jobs.run WHERE id = ANY('{{{}}}') AND started_at IS NOT NULL",
                submits
                    .iter()
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        );
        (started == submits.len() as i64).then_some(())
    });
    let worst_ms: f64 = one(
        &mut s,
        &format!(
            "SELECT max(extract(epoch FROM started_at - submitted_at) * 1000)::float8 FROM jobs.run WHERE id = ANY('{{{}}}')",
            submits.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")
        ),
    );
    assert!(
        worst_ms < 1000.0,
        "a single submit of calm's waited {worst_ms:.0} ms to start"
    );
    // The flood holds exactly its share: its long runs in all the
    // executors but one (pg_jobs.max_runs_per_role's default with 4).
    assert_eq!(
        running_of(&mut s, "flood"),
        3,
        "the flood's runs going: its cap is all the executors but one"
    );
}

/// The order the one executor takes a round in: b submits one run, then a
/// three at priority 100, with dispatch held until all are queued.
fn order_of_a_round(s: &mut Client, a: &mut Client, b: &mut Client, round: &str) -> Vec<String> {
    s.batch_execute("ALTER SYSTEM SET pg_jobs.enabled = off").unwrap();
    s.batch_execute("SELECT pg_reload_conf()").unwrap();
    wait_for("the scheduler to stop", DEADLINE, || {
        (pg_jobs_itest::worker_pids(s, "scheduler", Some("app")).is_empty()).then_some(())
    });
    b.batch_execute(&format!(
        "SELECT jobs.submit('INSERT INTO t VALUES (''{round} b'')')"
    ))
    .unwrap();
    a.batch_execute(&format!(
        "SELECT jobs.submit('INSERT INTO t VALUES (''{round} a'')', priority => 100) FROM generate_series(1, 3)"
    ))
    .unwrap();
    s.batch_execute("ALTER SYSTEM SET pg_jobs.enabled = on").unwrap();
    s.batch_execute("SELECT pg_reload_conf()").unwrap();
    wait_for("the round's runs", DEADLINE, || {
        let rows: Vec<String> = s
            .query(
                &format!("SELECT who FROM t WHERE who LIKE '{round} %' ORDER BY at"),
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        (rows.len() == 4).then_some(rows)
    })
    .0
}

/// `priority` orders only its owner's runs; across roles the older head
/// goes first, unless a superuser granted cross-role priority through
/// `pg_jobs.priority_role`.
#[test]
fn priority_orders_only_the_owners_runs_unless_granted() {
    let (c, mut s) = Cluster::with_app_db(
        "sharing-priority",
        "pg_jobs.max_executors = 1\npg_jobs.executor_idle_timeout = 0",
    );
    s.batch_execute(
        "CREATE TABLE t (who text, at timestamptz DEFAULT clock_timestamp()); CREATE ROLE urgent NOLOGIN",
    )
    .unwrap();
    role(&mut s, "a");
    role(&mut s, "b");
    let mut a = c.connect_as("app", "a");
    let mut b = c.connect_as("app", "b");
    let fair = order_of_a_round(&mut s, &mut a, &mut b, "fair");
    assert_eq!(
        fair[0], "fair b",
        "a's priority jumped ahead of b's older run: {fair:?}"
    );

    s.batch_execute("GRANT urgent TO a").unwrap();
    s.batch_execute("ALTER SYSTEM SET pg_jobs.priority_role = 'urgent'")
        .unwrap();
    let granted = order_of_a_round(&mut s, &mut a, &mut b, "granted");
    assert_eq!(
        granted,
        ["granted a", "granted a", "granted a", "granted b"],
        "a member of pg_jobs.priority_role goes first"
    );
}

/// No role has more than `pg_jobs.max_runs_per_role` runs going at once,
/// and the rest of the executors stay free for others.
#[test]
fn a_role_never_exceeds_its_cap() {
    let (c, mut s) = Cluster::with_app_db("sharing-cap", "pg_jobs.max_runs_per_role = 2");
    s.batch_execute("CREATE TABLE t (who text, at timestamptz DEFAULT clock_timestamp())")
        .unwrap();
    role(&mut s, "a");
    role(&mut s, "b");
    let mut a = c.connect_as("app", "a");
    a.batch_execute("SELECT jobs.submit('SELECT pg_sleep(1)') FROM generate_series(1, 6)")
        .unwrap();
    let mut most = 0;
    let mut b_started = false;
    let deadline = Instant::now() + DEADLINE * 2;
    loop {
        most = most.max(running_of(&mut s, "a"));
        if !b_started && most >= 2 {
            // With a at its cap, b's run starts in one of the free executors.
            let mut b = c.connect_as("app", "b");
            let id: i64 = one(&mut b, "SELECT jobs.submit('SELECT 1')");
            let run = pg_jobs_itest::wait_run(&mut s, id);
            assert_eq!(run.0, "succeeded");
            b_started = true;
        }
        let left: i64 = one(
            &mut s,
            "SELECT count(*) FROM jobs.run WHERE owner = 'a'::regrole AND finished_at IS NULL",
        );
        if left == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "a's runs did not finish in time");
        std::thread::sleep(Duration::from_millis(50)); // sampling interval of the observation, bounded by the deadline above
    }
    assert_eq!(most, 2, "a had {most} runs going at once; its cap is 2");
    assert!(b_started);
}
