//! Daemons on real clusters: restart policy and backoff, stop/start/drop and
//! redefinition, SIGHUP inside a running daemon, fast shutdown, the shipped
//! examples, and hot standby: watch mode and promotion.

use pg_jobs_itest::{one, wait_for, Cluster, DEADLINE};
use postgres::Client;
use std::time::{Duration, Instant};

const SETUP: &str = "
    CREATE SCHEMA t;
    CREATE TABLE t.tick (at timestamptz NOT NULL DEFAULT clock_timestamp(),
                         pid int NOT NULL DEFAULT pg_backend_pid(), name text, setting text);
    CREATE TABLE t.mode (mode text NOT NULL);
    INSERT INTO t.mode VALUES ('fail');
    -- Logs a start, then fails at once ('fail') or after 11 s ('slow'): longer
    -- than the 10 s after which a daemon counts as healthy.
    CREATE PROCEDURE t.flaky() LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO t.tick (name) VALUES ('flaky');
        COMMIT;
        IF (SELECT mode FROM t.mode) = 'slow' THEN PERFORM pg_sleep(11); END IF;
        RAISE EXCEPTION 'flaky fails';
    END $$;
    -- Ticks every 100 ms with the value of work_mem, forever.
    CREATE PROCEDURE t.looper(who text) LANGUAGE plpgsql AS $$
    BEGIN
        LOOP
            INSERT INTO t.tick (name, setting) VALUES (who, current_setting('work_mem'));
            COMMIT;
            PERFORM pg_sleep(0.1);
        END LOOP;
    END $$;
    -- Like looper, but swallows cancels: only a terminate stops it.
    CREATE PROCEDURE t.stubborn() LANGUAGE plpgsql AS $$
    DECLARE
        ignored boolean := false;
    BEGIN
        LOOP
            BEGIN
                PERFORM pg_sleep(0.1);
            EXCEPTION WHEN query_canceled THEN
                ignored := true;
            END;
            IF ignored THEN
                INSERT INTO t.tick (name) VALUES ('stubborn ignored a cancel');
                ignored := false;
            END IF;
            COMMIT;
        END LOOP;
    END $$;
";

fn cluster(name: &str) -> (Cluster, Client) {
    let (c, mut s) = Cluster::with_app_db(name, "");
    s.batch_execute(SETUP).unwrap();
    (c, s)
}

/// Start times (seconds since the first) of the daemon processes that logged `name`.
fn starts(s: &mut Client, name: &str) -> Vec<f64> {
    s.query(
        "SELECT extract(epoch FROM at - min(at) OVER ())::float8 FROM t.tick WHERE name = $1 ORDER BY at",
        &[&name],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

fn status(s: &mut Client, name: &str) -> (String, Option<i32>, i64) {
    let r = s
        .query_one(
            "SELECT state, pid, restarts FROM jobs.daemon_status WHERE name = $1",
            &[&name],
        )
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

fn wait_state(s: &mut Client, name: &str, state: &str) -> (Option<i32>, Duration) {
    wait_for(&format!("daemon {name} {state}"), DEADLINE, || {
        let (st, pid, _) = status(s, name);
        (st == state).then_some(pid)
    })
}

fn alive(s: &mut Client, pid: i32) -> bool {
    one::<i64>(
        s,
        &format!("SELECT count(*) FROM pg_stat_activity WHERE pid = {pid}"),
    ) > 0
}

fn ticks(s: &mut Client, name: &str) -> i64 {
    s.query_one("SELECT count(*) FROM t.tick WHERE name = $1", &[&name])
        .unwrap()
        .get(0)
}

#[test]
fn failing_daemon_backs_off_and_the_backoff_resets_after_a_healthy_run() {
    let (_c, mut s) = cluster("daemon-backoff");
    s.batch_execute(
        "SELECT jobs.daemon('flaky', 'CALL t.flaky()', restart_delay => '1 s', max_restart_delay => '4 s')",
    )
    .unwrap();
    wait_for(
        "six starts of the failing daemon",
        Duration::from_secs(60),
        || (starts(&mut s, "flaky").len() >= 6).then_some(()),
    );
    let t = starts(&mut s, "flaky");
    let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    println!("gaps between starts of a daemon that fails at once (s): {gaps:.2?}");
    // Expected 1, 2, 4, 4, 4: each wait at least the policy's, and growing to the cap.
    for (gap, want) in gaps.iter().zip([1.0, 2.0, 4.0, 4.0, 4.0]) {
        assert!(
            *gap >= want * 0.95,
            "waited {gap:.3} s, policy says {want} s: {gaps:?}"
        );
        assert!(
            *gap < want + 1.5,
            "waited {gap:.3} s, policy says {want} s: {gaps:?}"
        );
    }
    let r = s
        .query_one(
            "SELECT restarts, last_exit, last_sqlstate, last_message FROM jobs.daemon_status WHERE name = 'flaky'",
            &[],
        )
        .unwrap();
    assert!(r.get::<_, i64>(0) >= 5);
    assert_eq!(r.get::<_, Option<String>>(1).as_deref(), Some("error"));
    assert_eq!(r.get::<_, Option<String>>(2).as_deref(), Some("P0001"));
    assert_eq!(r.get::<_, Option<String>>(3).as_deref(), Some("flaky fails"));
    // Recorded on the primary, too.
    let (restarts, last_exit): (i64, Option<String>) = {
        let r = s
            .query_one(
                "SELECT restarts, last_exit FROM jobs.daemon WHERE name = 'flaky'",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert!(restarts >= 5, "jobs.daemon.restarts = {restarts}");
    assert_eq!(last_exit.as_deref(), Some("error"));

    // A run longer than 10 s that then fails is restarted after the base delay again.
    s.batch_execute("UPDATE t.mode SET mode = 'slow'").unwrap();
    let before = starts(&mut s, "flaky").len();
    wait_for("a start after a healthy run", Duration::from_secs(60), || {
        (starts(&mut s, "flaky").len() >= before + 2).then_some(())
    });
    let t = starts(&mut s, "flaky");
    let healthy_gap = t[before + 1] - t[before] - 11.0;
    println!("wait after a failure that followed 11 s of uptime: {healthy_gap:.3} s (policy: 1 s)");
    assert!(
        healthy_gap < 2.0,
        "the backoff did not reset after a healthy run: waited {healthy_gap:.3} s"
    );
}

#[test]
fn clean_exits_restart_after_the_delay_and_instant_failures_do_not_spin() {
    let (_c, mut s) = cluster("daemon-clean");
    s.batch_execute(
        "SELECT jobs.daemon('oneshot', 'INSERT INTO t.tick (name) VALUES (''oneshot'')', restart_delay => '1 s');
         SELECT jobs.daemon('broken', 'SELECT 1/0', restart_delay => '1 s', max_restart_delay => '4 s');",
    )
    .unwrap();
    let t0 = Instant::now();
    wait_for("five runs of a daemon that returns", DEADLINE, || {
        (starts(&mut s, "oneshot").len() >= 5).then_some(())
    });
    let t = starts(&mut s, "oneshot");
    let gaps: Vec<f64> = t.windows(2).map(|w| w[1] - w[0]).collect();
    println!("gaps between runs of a daemon that returns (restart_delay 1 s): {gaps:.3?}");
    assert!(gaps.iter().all(|g| *g >= 0.95 && *g < 2.2), "{gaps:?}");
    let (_, _, restarts) = status(&mut s, "oneshot");
    assert!(restarts >= 4);
    let last_exit: Option<String> = one(
        &mut s,
        "SELECT last_exit FROM jobs.daemon_status WHERE name = 'oneshot'",
    );
    assert_eq!(last_exit.as_deref(), Some("clean"));

    // The broken one, over at least 8 s: starts at 0, 1, 3, 7 s at most (doubling from 1 s).
    std::thread::sleep(Duration::from_secs(8).saturating_sub(t0.elapsed())); // observe a fixed window
    let elapsed = t0.elapsed().as_secs_f64();
    let (_, _, broken) = status(&mut s, "broken");
    let (code, message): (Option<String>, Option<String>) = {
        let r = s
            .query_one(
                "SELECT last_sqlstate, last_message FROM jobs.daemon_status WHERE name = 'broken'",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    println!("a daemon failing at once restarted {broken} times in {elapsed:.1} s");
    assert_eq!(code.as_deref(), Some("22012"));
    assert_eq!(message.as_deref(), Some("division by zero"));
    assert!(
        (2..=5).contains(&broken),
        "restarts of a daemon failing at once in {elapsed:.1} s: {broken}"
    );
}

#[test]
fn stop_start_redefine_and_drop() {
    let (c, mut s) = cluster("daemon-stop");
    s.batch_execute("SELECT jobs.daemon('loop', 'CALL t.looper(''a'')')")
        .unwrap();
    let (pid, took) = wait_state(&mut s, "loop", "running");
    let pid = pid.expect("a running daemon has a pid");
    println!("daemon running {took:?} after jobs.daemon committed");
    let backend_type: String = one(
        &mut s,
        &format!("SELECT backend_type FROM pg_stat_activity WHERE pid = {pid}"),
    );
    assert_eq!(backend_type, "pg_jobs daemon");
    let kind: String = one(
        &mut s,
        &format!("SELECT kind || ' ' || daemon_id FROM jobs.workers WHERE pid = {pid}"),
    );
    let id: i64 = one(&mut s, "SELECT id FROM jobs.daemon WHERE name = 'loop'");
    assert_eq!(kind, format!("daemon {id}"));

    // Stop: cancelled at once, stays stopped.
    let t0 = Instant::now();
    s.batch_execute("SELECT jobs.stop_daemon('loop')").unwrap();
    wait_state(&mut s, "loop", "stopped");
    wait_for("the stopped daemon's process gone", DEADLINE, || {
        (!alive(&mut s, pid)).then_some(())
    });
    println!("stop_daemon: process gone in {:?}", t0.elapsed());
    let n = ticks(&mut s, "a");
    std::thread::sleep(Duration::from_millis(1500)); // a stopped daemon must not come back: watch a while
    assert_eq!(ticks(&mut s, "a"), n, "a stopped daemon kept running");
    assert_eq!(status(&mut s, "loop").0, "stopped");
    let restarts = status(&mut s, "loop").2;
    assert_eq!(restarts, 0, "a stop is not a restart");

    // Start again: a new process.
    s.batch_execute("SELECT jobs.start_daemon('loop')").unwrap();
    let (pid2, _) = wait_state(&mut s, "loop", "running");
    let pid2 = pid2.unwrap();
    assert_ne!(pid2, pid);

    // Redefine: the running process is replaced by one running the new command.
    s.batch_execute("SELECT jobs.daemon('loop', 'CALL t.looper(''b'')')")
        .unwrap();
    wait_for("ticks of the redefined daemon", DEADLINE, || {
        (ticks(&mut s, "b") > 0).then_some(())
    });
    assert!(!alive(&mut s, pid2), "the old process still runs");

    // A daemon that ignores cancels is terminated after the 5 s grace period.
    s.batch_execute("SELECT jobs.daemon('stubborn', 'CALL t.stubborn()')")
        .unwrap();
    let (spid, _) = wait_state(&mut s, "stubborn", "running");
    let spid = spid.unwrap();
    let t0 = Instant::now();
    s.batch_execute("SELECT jobs.stop_daemon('stubborn')").unwrap();
    wait_for("the stubborn daemon terminated", DEADLINE, || {
        (!alive(&mut s, spid)).then_some(())
    });
    let took = t0.elapsed();
    println!("a daemon ignoring the cancel was terminated after {took:?} (grace 5 s)");
    assert!(
        took >= Duration::from_millis(4500),
        "terminated before the grace period: {took:?}"
    );
    assert!(ticks(&mut s, "stubborn ignored a cancel") >= 1);
    assert!(c.log().contains("ignored the cancel for 5000 ms; terminating it"));

    // Drop: the process goes, the definition and its status too.
    let (pid3, _) = wait_state(&mut s, "loop", "running");
    s.batch_execute("SELECT jobs.drop_daemon('loop')").unwrap();
    wait_for("the dropped daemon's process gone", DEADLINE, || {
        (!alive(&mut s, pid3.unwrap())).then_some(())
    });
    let left: i64 = one(
        &mut s,
        "SELECT count(*) FROM jobs.daemon_status WHERE name = 'loop'",
    );
    assert_eq!(left, 0);
    let err = s.batch_execute("SELECT jobs.stop_daemon('loop')").unwrap_err();
    assert_eq!(
        err.as_db_error().unwrap().message(),
        "daemon \"loop\" does not exist"
    );
}

#[test]
fn sighup_reaches_a_running_daemon() {
    let (_c, mut s) = cluster("daemon-sighup");
    s.batch_execute("SELECT jobs.daemon('loop', 'CALL t.looper(''h'')')")
        .unwrap();
    wait_for("the daemon ticking", DEADLINE, || {
        (ticks(&mut s, "h") > 0).then_some(())
    });
    let before: String = one(
        &mut s,
        "SELECT setting FROM t.tick WHERE name = 'h' ORDER BY at DESC LIMIT 1",
    );
    assert_eq!(before, "4MB");
    s.batch_execute("ALTER SYSTEM SET work_mem = '7MB'").unwrap();
    s.batch_execute("SELECT pg_reload_conf()").unwrap();
    let (_, took) = wait_for("the daemon seeing work_mem = 7MB", DEADLINE, || {
        let n: i64 = one(
            &mut s,
            "SELECT count(*) FROM t.tick WHERE name = 'h' AND setting = '7MB'",
        );
        (n > 0).then_some(())
    });
    println!("a running daemon saw the reloaded setting {took:?} after pg_reload_conf()");
}

#[test]
fn fast_shutdown_stops_daemons_promptly_and_they_come_back() {
    let (mut c, mut s) = cluster("daemon-shutdown");
    s.batch_execute(
        "SELECT jobs.daemon('loop1', 'CALL t.looper(''x'')');
         SELECT jobs.daemon('loop2', 'CALL t.looper(''y'')');
         SELECT jobs.daemon('sleeper', 'SELECT pg_sleep(3600)');",
    )
    .unwrap();
    for d in ["loop1", "loop2", "sleeper"] {
        wait_state(&mut s, d, "running");
    }
    drop(s);
    let t0 = Instant::now();
    c.stop_server("fast");
    let took = t0.elapsed();
    println!("fast shutdown with three running daemons took {took:?}");
    assert!(took < Duration::from_secs(10), "fast shutdown took {took:?}");
    c.start_server();
    let mut s = c.connect("app");
    for d in ["loop1", "loop2", "sleeper"] {
        wait_state(&mut s, d, "running");
    }
}

#[test]
fn the_shipped_examples_work() {
    let (c, mut s) = cluster("daemon-examples");
    s.batch_execute(include_str!("../../../examples/auth_counter.sql"))
        .unwrap();
    s.batch_execute(include_str!("../../../examples/queue_consumer.sql"))
        .unwrap();
    // auth_counter: three sessions of a role show up in its samples.
    s.batch_execute("CREATE ROLE visitor LOGIN").unwrap();
    let _sessions: Vec<Client> = (0..3).map(|_| c.connect_as("app", "visitor")).collect();
    let (n, took) = wait_for("auth_counter counting the visitor's sessions", DEADLINE, || {
        let n: Option<i32> = one(
            &mut s,
            "SELECT max(sessions) FROM auth_counter.sessions WHERE role = 'visitor' AND database = 'app'",
        );
        n.filter(|n| *n >= 3)
    });
    println!("auth_counter saw {n} sessions of the role within {took:?}");
    // One sample a second.
    let (gap, _) = wait_for("two samples", DEADLINE, || {
        one::<Option<f64>>(
            &mut s,
            "SELECT extract(epoch FROM min(g))::float8 FROM (
               SELECT sampled_at - lag(sampled_at) OVER (ORDER BY sampled_at) AS g
                 FROM (SELECT DISTINCT sampled_at FROM auth_counter.sessions) d) x",
        )
    });
    assert!(
        (0.95..2.0).contains(&gap),
        "auth_counter samples {gap:.3} s apart"
    );

    // queue_consumer: 2,000 tasks, two consumers, each task done exactly once.
    s.batch_execute(
        "INSERT INTO queue_demo.task (payload) SELECT 'task ' || g FROM generate_series(1, 2000) g",
    )
    .unwrap();
    let (_, took) = wait_for("the queue drained", DEADLINE, || {
        let left: i64 = one(
            &mut s,
            "SELECT count(*) FROM queue_demo.task WHERE done_at IS NULL",
        );
        (left == 0).then_some(())
    });
    let r = s
        .query_one(
            "SELECT count(*), count(DISTINCT task_id), count(DISTINCT done_by) FROM queue_demo.done_log",
            &[],
        )
        .unwrap();
    let (done, distinct, consumers): (i64, i64, i64) = (r.get(0), r.get(1), r.get(2));
    // Both usually take work; which one does is up to timing.
    println!("2000 tasks drained in {took:?} by {consumers} consumer(s)");
    assert_eq!(
        (done, distinct),
        (2000, 2000),
        "a task was done twice or not at all"
    );
}

#[test]
fn standby_runs_standby_daemons_only_and_promotion_hands_over() {
    let (mut primary, mut p) = Cluster::with_app_db("ha-primary", "");
    p.batch_execute(
        "CREATE SCHEMA t;
         CREATE TABLE t.tick (at timestamptz NOT NULL DEFAULT clock_timestamp(), name text);
         -- Read-only work: fine on a standby.
         CREATE PROCEDURE t.watch() LANGUAGE plpgsql AS $$
         BEGIN LOOP PERFORM pg_sleep(0.2); COMMIT; END LOOP; END $$;
         CREATE PROCEDURE t.looper(who text) LANGUAGE plpgsql AS $$
         BEGIN LOOP INSERT INTO t.tick (name) VALUES (who); COMMIT; PERFORM pg_sleep(0.2); END LOOP; END $$;
         SELECT jobs.daemon('on_primary', 'CALL t.looper(''primary daemon'')');
         SELECT jobs.daemon('on_standby', 'CALL t.watch()', run_on => 'standby');
         SELECT jobs.daemon('anywhere', 'CALL t.watch()', run_on => 'any');
         SELECT jobs.schedule('every second', '1 second', 'INSERT INTO t.tick (name) VALUES (''job'')');",
    )
    .unwrap();
    wait_state(&mut p, "on_primary", "running");
    wait_state(&mut p, "anywhere", "running");
    // A run in flight on the primary when it goes away.
    let inflight: i64 = one(&mut p, "SELECT jobs.submit('SELECT pg_sleep(3600)')"); // the run under test
    wait_for("the long run running", DEADLINE, || {
        let st: String = one(
            &mut p,
            &format!("SELECT status FROM jobs.run WHERE id = {inflight}"),
        );
        (st == "running").then_some(())
    });
    assert_eq!(status(&mut p, "on_standby").0, "not_on_this_node");

    let standby = Cluster::standby_of(&primary, "ha-standby");
    let mut r = standby.connect("app");
    let in_recovery: bool = one(&mut r, "SELECT pg_is_in_recovery()");
    assert!(in_recovery);
    wait_state(&mut r, "on_standby", "running");
    wait_state(&mut r, "anywhere", "running");
    wait_state(&mut r, "on_primary", "not_on_this_node");
    let kinds: Vec<String> = r
        .query(
            "SELECT backend_type FROM pg_stat_activity WHERE backend_type LIKE 'pg_jobs%' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    println!("pg_jobs processes on the standby: {kinds:?}");
    assert_eq!(
        kinds.iter().filter(|k| *k == "pg_jobs daemon").count(),
        2,
        "exactly the standby and any daemons run on the standby"
    );
    assert!(
        !kinds.iter().any(|k| k == "pg_jobs executor"),
        "no job runs on a standby"
    );
    // The standby's primary daemon and jobs keep running on the primary only.
    let primary_daemons: i64 = one(
        &mut p,
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_jobs daemon'",
    );
    assert_eq!(primary_daemons, 2, "on_primary and anywhere run on the primary");

    // Fail over: the primary goes, the standby is promoted.
    drop(p);
    primary.stop_server("immediate");
    let promoted_at: f64 = one(&mut r, "SELECT extract(epoch FROM clock_timestamp())::float8");
    let t0 = Instant::now();
    standby.pg(&["pg_ctl", "-D", "data", "-w", "-t", "60", "promote"]);
    let promote_took = t0.elapsed();
    let mut r = standby.connect("app");
    let (first_run, _) = wait_for("the first scheduled run after promotion", DEADLINE, || {
        one::<Option<f64>>(
            &mut r,
            &format!(
                "SELECT extract(epoch FROM min(at))::float8 FROM t.tick WHERE name = 'job' AND extract(epoch FROM at) > {promoted_at}"
            ),
        )
    });
    let lag = first_run - promoted_at;
    let (primary_daemon_at, _) = wait_for("the primary daemon on the promoted node", DEADLINE, || {
        one::<Option<f64>>(
            &mut r,
            &format!(
                "SELECT extract(epoch FROM min(at))::float8 FROM t.tick WHERE name = 'primary daemon' AND extract(epoch FROM at) > {promoted_at}"
            ),
        )
    });
    println!(
        "promotion (pg_ctl promote took {promote_took:?}): first scheduled run {:.0} ms after it began, primary daemon ticking after {:.0} ms",
        lag * 1000.0,
        (primary_daemon_at - promoted_at) * 1000.0
    );
    assert!(lag <= 2.0, "first scheduled run {lag:.3} s after promotion began");
    wait_state(&mut r, "on_standby", "not_on_this_node");
    wait_state(&mut r, "anywhere", "running");
    // The old primary's run in flight: crashed, not stuck.
    let (st, _) = wait_for("the replicated in-flight run marked", DEADLINE, || {
        let st: String = one(
            &mut r,
            &format!("SELECT status FROM jobs.run WHERE id = {inflight}"),
        );
        (st != "running" && st != "starting").then_some(st)
    });
    assert_eq!(st, "crashed");
    let stuck: i64 = one(
        &mut r,
        &format!("SELECT count(*) FROM jobs.run WHERE status IN ('starting', 'running') AND submitted_at < to_timestamp({promoted_at})"),
    );
    assert_eq!(stuck, 0, "runs of the old primary still look in flight");
}

#[test]
fn a_restarted_scheduler_adopts_its_daemons_and_a_terminated_daemon_comes_back() {
    let (_c, mut s) = cluster("daemon-adopt");
    s.batch_execute("SELECT jobs.daemon('loop', 'CALL t.looper(''z'')', restart_delay => '1 s')")
        .unwrap();
    let (pid, _) = wait_state(&mut s, "loop", "running");
    let pid = pid.unwrap();
    let sched: i32 = one(
        &mut s,
        "SELECT pid FROM jobs.workers WHERE kind = 'scheduler' AND database = 'app'",
    );
    s.batch_execute(&format!("SELECT pg_terminate_backend({sched})"))
        .unwrap();
    wait_for("a new scheduler", DEADLINE, || {
        let p: Option<i32> = one(
            &mut s,
            "SELECT max(pid) FROM jobs.workers WHERE kind = 'scheduler' AND database = 'app'",
        );
        p.filter(|p| *p != sched)
    });
    // The daemon kept running through it, and the new scheduler knows it.
    assert!(alive(&mut s, pid), "the daemon died with its scheduler");
    let (state, shown, restarts) = status(&mut s, "loop");
    assert_eq!((state.as_str(), shown, restarts), ("running", Some(pid), 0));
    // ... enough to stop it.
    s.batch_execute("SELECT jobs.stop_daemon('loop')").unwrap();
    wait_for("the adopted daemon stopped", DEADLINE, || {
        (!alive(&mut s, pid)).then_some(())
    });
    s.batch_execute("SELECT jobs.start_daemon('loop')").unwrap();
    let (pid2, _) = wait_state(&mut s, "loop", "running");
    let pid2 = pid2.unwrap();

    // A terminated daemon is a crash: restarted after its delay.
    let t0 = Instant::now();
    s.batch_execute(&format!("SELECT pg_terminate_backend({pid2})"))
        .unwrap();
    let (pid3, _) = wait_for("the terminated daemon back", DEADLINE, || {
        let (st, p, _) = status(&mut s, "loop");
        (st == "running" && p.is_some_and(|p| p != pid2)).then_some(p)
    });
    println!(
        "a terminated daemon was running again after {:?} (restart_delay 1 s)",
        t0.elapsed()
    );
    assert!(t0.elapsed() >= Duration::from_millis(950));
    assert!(pid3.is_some());
    let r = s
        .query_one(
            "SELECT restarts, last_exit FROM jobs.daemon_status WHERE name = 'loop'",
            &[],
        )
        .unwrap();
    assert_eq!(r.get::<_, i64>(0), 1);
    // Terminated: it ended without reporting anything.
    assert_eq!(r.get::<_, Option<String>>(1).as_deref(), Some("crash"));
}

#[test]
fn a_daemon_without_a_worker_slot_waits_and_starts_when_one_frees_up() {
    // pg_jobs launcher + logical replication launcher + scheduler + one
    // more: room for one daemon (or a passing probe scheduler) only.
    let (_c, mut s) = Cluster::with_app_db("daemon-slots", "max_worker_processes = 4");
    s.batch_execute(SETUP).unwrap();
    s.batch_execute("SELECT jobs.daemon('first', 'CALL t.looper(''1'')')")
        .unwrap();
    wait_state(&mut s, "first", "running");
    s.batch_execute("SELECT jobs.daemon('second', 'CALL t.looper(''2'')')")
        .unwrap();
    wait_state(&mut s, "second", "no_worker_slot");
    assert_eq!(ticks(&mut s, "2"), 0);
    s.batch_execute("SELECT jobs.stop_daemon('first')").unwrap();
    let (_, took) = wait_state(&mut s, "second", "running");
    println!("the waiting daemon started {took:?} after the other was stopped");
    wait_for("the second daemon ticking", DEADLINE, || {
        (ticks(&mut s, "2") > 0).then_some(())
    });
    assert_eq!(status(&mut s, "first").0, "stopped");
}
