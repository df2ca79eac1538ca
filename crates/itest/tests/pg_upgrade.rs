//! pg_upgrade with pg_jobs installed: while pg_upgrade has a server (binary
//! upgrade mode, `postgres -b`) no pg_jobs worker starts or runs anything;
//! and a PostgreSQL 15 cluster with jobs, runs, results and daemons in two
//! databases, upgraded with PostgreSQL 18's `pg_upgrade`, keeps all of
//! them, resumes each schedule at its next due time and runs nothing
//! twice.
//!
//! The upgrade test needs pg_jobs built from this tree installed in both
//! PostgreSQLs (`make install` and `make install PG=18`; so `make test
//! PG=18` after `make test` runs it). `PGJOBS_UPGRADE_FROM` and
//! `PGJOBS_UPGRADE_TO` name other `pg_config`s than where scripts/setup
//! installs 15 and 18: `scripts/package-test upgrade` points them at copies
//! of both installations with the release tarballs in them. Without this
//! tree's pg_jobs in both it is skipped, saying why on stderr; so is it
//! when pg_upgrade between the two cannot work for any database (Debian's
//! PostgreSQL 15.20 stores a column option, `pg_attver`, that 18.6 cannot
//! restore); `PGJOBS_REQUIRE_PG_UPGRADE_TEST` makes either a failure. The
//! binary-upgrade-mode test needs only the PostgreSQL the suite runs.
//!
//! PostgreSQL 18's `initdb` turns data checksums on by default and
//! `pg_upgrade` refuses to upgrade a cluster without checksums (initdb's
//! default up to 17) into one with them, so the new cluster is made with
//! `--no-data-checksums` (docs/operations.md says so too).

use pg_jobs_itest::{one, wait_for, Cluster, Installation, DEADLINE};
use postgres::Client;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

#[path = "pg_upgrade/setup.rs"]
mod setup;
use setup::*;

/// Room for the launcher, two schedulers, the executors and two daemons
/// (the default 8 is one short of that).
const CONF: &str = "max_worker_processes = 16\npg_jobs.max_executors = 4";

/// The LOG line of `_PG_init` in a server pg_upgrade started.
const GATE_LOG: &str = "pg_jobs: binary upgrade mode (pg_upgrade): no pg_jobs worker will start";

/// Say something on stderr even while the test harness captures output (a
/// skipped test passes, so its reason would otherwise be hidden).
fn say(msg: &str) {
    let _ = writeln!(std::io::stderr(), "{msg}");
}

fn count(c: &mut Client, sql: &str) -> i64 {
    one(c, sql)
}

/// pg_jobs processes in `pg_stat_activity` (any database, the launcher
/// too).
fn pg_jobs_processes(c: &mut Client) -> i64 {
    count(
        c,
        "SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'pg_jobs%'",
    )
}

// ---------------------------------------------------------------------------
// Binary-upgrade mode

#[test]
fn a_server_in_binary_upgrade_mode_starts_no_pg_jobs_worker() {
    let (mut c, mut s) = Cluster::with_app_db("binary-upgrade", "");
    s.batch_execute(
        "CREATE TABLE ticks (job text, at timestamptz DEFAULT clock_timestamp());
         SELECT jobs.schedule('tick', '1 second', $$INSERT INTO ticks (job) VALUES ('tick')$$);
         SELECT jobs.schedule('boot', '@reboot', $$INSERT INTO ticks (job) VALUES ('boot')$$);
         SELECT jobs.daemon('sleeper', 'SELECT pg_sleep(3600)');",
    )
    .unwrap();
    // The control: with a normal start they all run.
    wait_for("tick to run and the daemon to start", DEADLINE, || {
        let ticked = count(&mut s, "SELECT count(*) FROM ticks WHERE job = 'tick'") > 0;
        let daemon = count(
            &mut s,
            "SELECT count(*) FROM jobs.daemon_status WHERE name = 'sleeper' AND state = 'running'",
        ) > 0;
        (ticked && daemon).then_some(())
    });
    drop(s);
    c.stop_server("fast");

    // As pg_upgrade starts it.
    c.start_server_with(&["-b"]);
    let mut s = c.connect("app");
    let runs: i64 = count(&mut s, "SELECT count(*) FROM jobs.run");
    // Three of tick's due times: no pg_jobs process at any look, no run.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert_eq!(
            pg_jobs_processes(&mut s),
            0,
            "a pg_jobs worker runs in binary-upgrade mode"
        );
        assert_eq!(
            count(&mut s, "SELECT count(*) FROM jobs.workers WHERE pid IS NOT NULL"),
            0
        );
        std::thread::sleep(Duration::from_millis(100)); // a look every 100 ms over the window
    }
    assert_eq!(
        count(&mut s, "SELECT count(*) FROM jobs.run"),
        runs,
        "a run was made"
    );
    assert_eq!(count(&mut s, "SELECT count(*) FROM ticks WHERE job = 'boot'"), 0);
    assert!(c.log().contains(GATE_LOG), "no '{GATE_LOG}' in the server log");
    drop(s);
    c.stop_server("fast");

    // A normal start after it: everything runs again, and @reboot once,
    // for this start only.
    c.start_server();
    let mut s = c.connect("app");
    wait_for(
        "the launcher, tick, @reboot and the daemon after a normal start",
        DEADLINE,
        || {
            let boot = count(&mut s, "SELECT count(*) FROM ticks WHERE job = 'boot'");
            let daemon = count(
                &mut s,
                "SELECT count(*) FROM jobs.daemon_status WHERE name = 'sleeper' AND state = 'running'",
            );
            let ticked = count(
                &mut s,
                "SELECT count(*) FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id
              WHERE j.name = 'tick' AND r.started_at > pg_postmaster_start_time()",
            );
            (boot == 1 && daemon == 1 && ticked > 0).then_some(())
        },
    );
    assert_eq!(count(&mut s, "SELECT count(*) FROM ticks WHERE job = 'boot'"), 1);
}

// ---------------------------------------------------------------------------
// 15 → 18

#[test]
fn pg_upgrade_keeps_jobs_runs_results_and_daemons_and_runs_nothing_twice() {
    let Some((from, to)) = installations() else {
        return;
    };
    let t0 = Instant::now();
    let mut old = Cluster::start_on(&from, "pg-upgrade-old", CONF);
    let mut admin = old.connect("postgres");
    for sql in [
        "CREATE DATABASE app",
        "CREATE DATABASE shop",
        "CREATE ROLE shop_app LOGIN",
    ] {
        admin.batch_execute(sql).unwrap();
    }
    drop(admin);
    let mut app = old.connect("app");
    let mut shop = old.connect("shop");
    app.batch_execute(&format!(
        "CREATE EXTENSION pg_jobs;
         {COMMON}
         SELECT jobs.schedule('cron', '*/2 * * * * *', $${cron}$$);
         SELECT jobs.schedule('interval', '3 seconds', $${interval}$$);
         SELECT jobs.schedule('berlin', '30 2 * * *', 'SELECT 1', timezone => 'Europe/Berlin');
         SELECT jobs.schedule('later', (now() + interval '1 day')::text, $${later}$$);
         SELECT jobs.schedule('paused', '1 second', $${paused}$$);
         SELECT jobs.pause('paused');
         SELECT jobs.schedule('boot', '@reboot', $${boot}$$);
         SELECT jobs.daemon('beat', 'CALL beat()');
         SELECT jobs.daemon('idle', 'SELECT pg_sleep(3600)');
         SELECT jobs.stop_daemon('idle');",
        cron = tick("cron"),
        interval = tick("interval"),
        later = tick("later"),
        paused = tick("paused"),
        boot = tick("boot"),
    ))
    .unwrap();
    let result_run: i64 = one(
        &mut app,
        "SELECT jobs.submit('SELECT g AS n, md5(g::text) AS h, now() - now() AS zero FROM generate_series(1, 3) g')",
    );
    let failed_run: i64 = one(&mut app, "SELECT jobs.submit('SELECT 1/0')");
    shop.batch_execute(&format!(
        "CREATE EXTENSION pg_jobs;
         {COMMON}
         GRANT INSERT ON ticks, beats TO shop_app;
         SET ROLE shop_app;
         SELECT jobs.schedule('shop-tick', '2 seconds', $${shop}$$, timezone => 'Asia/Kathmandu');
         SELECT jobs.daemon('shop-beat', 'CALL beat()');
         RESET ROLE;",
        shop = tick("shop"),
    ))
    .unwrap();

    // History: ticks in both databases, the daemons beating, the submitted
    // runs finished.
    wait_for("history in both databases", DEADLINE, || {
        let done = count(
            &mut app,
            &format!("SELECT count(*) FROM jobs.run WHERE id IN ({result_run}, {failed_run}) AND finished_at IS NOT NULL"),
        ) == 2;
        let cron = count(&mut app, "SELECT count(*) FROM ticks WHERE job = 'cron'") >= 2;
        let interval = count(&mut app, "SELECT count(*) FROM ticks WHERE job = 'interval'") >= 1;
        let shop_ticks = count(&mut shop, "SELECT count(*) FROM ticks WHERE job = 'shop'") >= 1;
        let beats = count(&mut app, "SELECT count(*) FROM beats") >= 2
            && count(&mut shop, "SELECT count(*) FROM beats") >= 2;
        (done && cron && interval && shop_ticks && beats).then_some(())
    });
    let status: (String, Option<String>) = {
        let r = app
            .query_one(
                "SELECT status, sqlstate FROM jobs.run WHERE id = $1",
                &[&failed_run],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(status, ("failed".into(), Some("22012".into())));

    // pg_upgrade --check against the live old cluster, as a DBA runs it
    // first. The new cluster: initdb'd, configured like the old one, not
    // started (pg_upgrade starts it).
    let checksums: &[&str] = if to.major >= 18 {
        &["--no-data-checksums"]
    } else {
        &[]
    };
    let mut new = Cluster::init_on(&to, "pg-upgrade-new", checksums, CONF);
    let args = pg_upgrade_args(&from, &to, &old, &new);
    let mut check_args: Vec<&str> = args.iter().map(String::as_str).collect();
    check_args.push("--check");
    let t_check = Instant::now();
    let check = new.pg(&check_args);
    let check_took = t_check.elapsed();
    assert!(
        check.contains("*Clusters are compatible*"),
        "pg_upgrade --check said:\n{check}"
    );
    let record = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("pg_upgrade-check.txt");
    std::fs::write(&record, format!("$ {}\n{check}", check_args.join(" "))).unwrap();

    // Drained, as the operations guide suggests before the stop: with
    // pg_jobs.enabled off the schedulers stop and runs going finish, so
    // nothing new starts (daemons go on until the shutdown; idle pooled
    // executors until their idle timeout, with nothing to run). Then a
    // one-off and a delayed submit come due while nothing runs them: they
    // must run once, after the upgrade.
    for sql in [
        "ALTER SYSTEM SET pg_jobs.enabled = off",
        "SELECT pg_reload_conf()",
    ] {
        app.batch_execute(sql).unwrap();
    }
    let (_, drained_in) = wait_for("pg_jobs to drain (pg_jobs.enabled = off)", DEADLINE, || {
        let schedulers = count(
            &mut app,
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'pg_jobs scheduler'",
        );
        let running = count(
            &mut app,
            "SELECT count(*) FROM jobs.run WHERE status IN ('starting', 'running')",
        ) + count(
            &mut shop,
            "SELECT count(*) FROM jobs.run WHERE status IN ('starting', 'running')",
        );
        (schedulers == 0 && running == 0).then_some(())
    });
    app.batch_execute(&format!(
        "SELECT jobs.schedule('soon', (now() + interval '1 second')::text, $${soon}$$);",
        soon = tick("soon"),
    ))
    .unwrap();
    let delayed_run: i64 = one(
        &mut app,
        &format!(
            "SELECT jobs.submit($${}$$, start_at => now() + interval '1 second')",
            tick("delayed")
        ),
    );
    wait_for(
        "the one-off's and the delayed run's time to pass",
        DEADLINE,
        || {
            (count(
                &mut app,
                &format!(
                "SELECT count(*) FROM jobs.job j, jobs.run r WHERE j.name = 'soon' AND r.id = {delayed_run}
                  AND clock_timestamp() > j.once_at AND clock_timestamp() > r.not_before"
            ),
            ) == 1)
                .then_some(())
        },
    );
    assert_eq!(
        count(
            &mut app,
            "SELECT count(*) FROM ticks WHERE job IN ('soon', 'delayed')"
        ),
        0,
        "a run started with pg_jobs.enabled off"
    );
    let berlin_next: f64 = one(
        &mut app,
        "SELECT extract(epoch FROM next_due)::float8 FROM jobs.job_status WHERE name = 'berlin'",
    );
    let later_next: f64 = one(
        &mut app,
        "SELECT extract(epoch FROM next_due)::float8 FROM jobs.job_status WHERE name = 'later'",
    );
    // What must come through unchanged, taken last: finished runs and
    // their results (final), job and daemon definitions, the ticks so far.
    let app_finished = finished_runs(&mut app);
    let shop_finished = finished_runs(&mut shop);
    assert!(app_finished.contains(&result_run) && app_finished.contains(&failed_run));
    let app_snapshot = snapshot(&mut app, &app_finished);
    let shop_snapshot = snapshot(&mut shop, &shop_finished);
    drop(app);
    drop(shop);
    old.stop_server("fast");
    let stopped_at = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();

    // The upgrade itself (copy mode: the old cluster stays as it was).
    let mut upgrade_args: Vec<&str> = args.iter().map(String::as_str).collect();
    upgrade_args.push("--retain");
    let t_upgrade = Instant::now();
    let upgrade = new.pg_try(&upgrade_args);
    let upgrade_took = t_upgrade.elapsed();
    let upgrade = match upgrade {
        Ok(out) => out,
        Err(out) => {
            let logs = pg_upgrade_logs(&new, "");
            if logs.contains("unrecognized parameter \"pg_attver\"") {
                skip_or_fail(&format!(
                    "pg_upgrade test skipped: pg_upgrade from {} to {} fails for any database with a table, with \
                     pg_jobs or without: this 15 stores the column option pg_attver, which this 18's pg_dump \
                     copies and its server refuses (unrecognized parameter \"pg_attver\"). It needs an 18 that knows \
                     that option, or an older 15 (scripts/package-test upgrade takes Debian's 15.18)",
                    version_of(&from),
                    version_of(&to)
                ));
                return;
            }
            panic!("pg_upgrade failed:\n{out}\n---- its logs ----\n{logs}");
        }
    };
    assert!(
        upgrade.contains("Upgrade Complete"),
        "pg_upgrade said:\n{upgrade}"
    );

    // pg_upgrade's servers (old and new, in binary-upgrade mode): each
    // loaded pg_jobs and started no worker.
    let server_log = pg_upgrade_logs(&new, "pg_upgrade_server.log");
    assert!(
        server_log.matches(GATE_LOG).count() >= 2,
        "pg_upgrade's servers did not log '{GATE_LOG}' (old and new):\n{server_log}"
    );
    for worker in ["launcher started", "scheduler started", "executor", "daemon"] {
        assert!(
            !server_log.contains(&format!("pg_jobs {worker}")),
            "a pg_jobs {worker} under pg_upgrade:\n{server_log}"
        );
    }

    new.start_server();
    new.check_build_id();
    let mut app = new.connect("app");
    let mut shop = new.connect("shop");
    let version: i32 = one(&mut app, "SELECT current_setting('server_version_num')::int");
    assert_eq!(version / 10000, to.major as i32);

    // Ownership anchors come across as shell types owned by the role but
    // no longer tied to the extension; jobs._sync_ownership() ties them
    // again (docs/operations.md).
    let tied = "SELECT count(*) FROM pg_type t JOIN pg_depend d ON d.classid = 'pg_type'::regclass AND d.objid = t.oid
                 AND d.refclassid = 'pg_extension'::regclass
                WHERE t.typnamespace = 'jobs'::regnamespace AND t.typname = 'jobs of shop_app'";
    let anchors = count(
        &mut shop,
        "SELECT count(*) FROM pg_type WHERE typnamespace = 'jobs'::regnamespace AND typname = 'jobs of shop_app'
            AND typowner = 'shop_app'::regrole",
    );
    assert_eq!(anchors, 1, "shop_app's ownership anchor did not come across");
    assert_eq!(
        count(&mut shop, tied),
        0,
        "the anchor came across tied to the extension: the docs say to run jobs._sync_ownership() for nothing"
    );
    // The owner dependency comes across with it: DROP ROLE is refused before
    // and after.
    let mut admin = new.connect("postgres");
    let drop_role = |admin: &mut Client| {
        let e = admin.batch_execute("DROP ROLE shop_app").unwrap_err();
        assert_eq!(e.as_db_error().map(|d| d.code().code()), Some("2BP01"), "{e}");
    };
    drop_role(&mut admin);
    shop.batch_execute("SELECT jobs._sync_ownership()").unwrap();
    app.batch_execute("SELECT jobs._sync_ownership()").unwrap();
    assert_eq!(
        count(&mut shop, tied),
        1,
        "jobs._sync_ownership() did not tie the anchor to the extension"
    );
    drop_role(&mut admin);

    setup::check_the_new_majors_visibility_rule(&mut shop, to.major);

    // Everything resumes: every schedule, the one-off and the delayed run
    // that came due, @reboot once, both daemons.
    let (_, resumed_in) = wait_for(
        "every job and daemon to run after the upgrade",
        Duration::from_secs(60),
        || {
            let cron = runs_since_start(&mut app, "cron").len() >= 3;
            let interval = !runs_since_start(&mut app, "interval").is_empty();
            let shop_tick = !runs_since_start(&mut shop, "shop-tick").is_empty();
            let soon = count(&mut app, "SELECT count(*) FROM ticks WHERE job = 'soon'") >= 1;
            let delayed = count(&mut app, "SELECT count(*) FROM ticks WHERE job = 'delayed'") >= 1;
            let boot = count(&mut app, "SELECT count(*) FROM ticks WHERE job = 'boot'") >= 1;
            let beats = |c: &mut Client| {
                count(
                    c,
                    "SELECT count(*) FROM beats WHERE at > pg_postmaster_start_time()",
                ) >= 2
                    && count(
                        c,
                        "SELECT count(*) FROM jobs.daemon_status WHERE state = 'running'",
                    ) == 1
            };
            (cron && interval && shop_tick && soon && delayed && boot && beats(&mut app) && beats(&mut shop))
                .then_some(())
        },
    );

    // Schedules resume at their next due time: no run for a due time
    // missed while the cluster was down (no catch_up), the first one after
    // the start at most a period (plus the scheduler's start) later, and
    // on the old grid.
    let started: f64 = one(
        &mut app,
        "SELECT extract(epoch FROM pg_postmaster_start_time())::float8",
    );
    let slack = 5.0;
    let cron = runs_since_start(&mut app, "cron");
    assert!(
        cron[0] >= started && cron[0] < started + 2.0 + slack,
        "cron resumed at {} (start {started})",
        cron[0]
    );
    for w in cron.windows(2) {
        assert!(
            (w[1] - w[0] - 2.0).abs() < 1e-6,
            "cron runs {cron:?} are not 2 s apart"
        );
    }
    assert!(
        cron.iter().all(|t| t.fract() == 0.0 && (*t as i64) % 2 == 0),
        "cron off its grid: {cron:?}"
    );
    for (c, job, period) in [(&mut app, "interval", 3.0), (&mut shop, "shop-tick", 2.0)] {
        let runs = runs_since_start(c, job);
        assert!(
            runs[0] >= started && runs[0] < started + period + slack,
            "{job} resumed at {} (start {started})",
            runs[0]
        );
        let off_grid = count(
            c,
            &format!(
                "SELECT count(*) FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id WHERE j.name = '{job}'
                  AND (extract(epoch FROM r.scheduled_for - j.created_at) * 1000)::bigint % {} <> 0",
                (period * 1000.0) as i64
            ),
        );
        assert_eq!(
            off_grid, 0,
            "{job}: runs off the drift-free grid of its creation time"
        );
    }

    // Nothing ran while the cluster was down or under pg_upgrade.
    for c in [&mut app, &mut shop] {
        let r = c
            .query_one(
                "SELECT count(*) FROM jobs.run WHERE started_at > to_timestamp($1) AND started_at < pg_postmaster_start_time()",
                &[&stopped_at],
            )
            .unwrap();
        assert_eq!(
            r.get::<_, i64>(0),
            0,
            "runs started between the old cluster's stop and the new one's start"
        );
    }

    // Nothing ran twice: one run per job, due time and attempt; every
    // succeeded tick run wrote its tick once, and every tick is a
    // succeeded run's (a replayed run would have hit the primary key).
    for c in [&mut app, &mut shop] {
        assert_eq!(
            count(
                c,
                "SELECT count(*) FROM (SELECT 1 FROM jobs.run WHERE job_id IS NOT NULL
                   GROUP BY job_id, scheduled_for, attempt HAVING count(*) > 1) d",
            ),
            0,
            "a job ran twice for one due time"
        );
        assert_eq!(
            count(
                c,
                "SELECT count(*) FROM jobs.run r WHERE r.status = 'succeeded' AND r.command LIKE 'INSERT INTO ticks%'
                   AND NOT EXISTS (SELECT FROM ticks t WHERE t.run_id = r.id)",
            ),
            0
        );
        assert_eq!(
            count(
                c,
                "SELECT count(*) FROM ticks t WHERE NOT EXISTS
                   (SELECT FROM jobs.run r WHERE r.id = t.run_id AND r.status = 'succeeded')",
            ),
            0
        );
    }
    // The one-offs: `soon` once (due while down or just after: it runs
    // when the cluster is back), `later` not yet and still due when it
    // was; the delayed submit once, after the start; @reboot once, for the
    // new cluster's first start (not for pg_upgrade's servers).
    let after_start = |c: &mut Client, job: &str| {
        count(
            c,
            &format!(
                "SELECT count(*) FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id
                  WHERE j.name = '{job}' AND r.started_at >= pg_postmaster_start_time()"
            ),
        )
    };
    assert_eq!(after_start(&mut app, "soon"), 1);
    assert_eq!(
        count(
            &mut app,
            "SELECT count(*) FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id WHERE j.name = 'soon'"
        ),
        1
    );
    assert_eq!(
        count(
            &mut app,
            "SELECT count(*) FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id WHERE j.name = 'later'"
        ),
        0
    );
    let later_now: f64 = one(
        &mut app,
        "SELECT extract(epoch FROM next_due)::float8 FROM jobs.job_status WHERE name = 'later'",
    );
    assert_eq!(later_now, later_next);
    let delayed_ok = count(
        &mut app,
        &format!("SELECT count(*) FROM jobs.run WHERE id = {delayed_run} AND status = 'succeeded' AND started_at >= pg_postmaster_start_time()"),
    );
    assert_eq!(
        delayed_ok, 1,
        "the delayed submit did not run once after the start"
    );
    assert_eq!(after_start(&mut app, "boot"), 1);
    assert_eq!(
        count(
            &mut app,
            "SELECT count(*) FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id WHERE j.name = 'boot'"
        ),
        1,
        "the @reboot job ran more than once: a run under pg_upgrade's servers is one too many"
    );
    // Paused stays paused; the stopped daemon stays stopped; berlin's next
    // due time is the same (unless it came due meanwhile).
    assert_eq!(
        count(
            &mut app,
            "SELECT count(*) FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id WHERE j.name = 'paused'"
        ),
        0
    );
    assert_eq!(
        count(
            &mut app,
            "SELECT count(*) FROM jobs.job WHERE name = 'paused' AND NOT enabled"
        ),
        1
    );
    assert_eq!(
        count(
            &mut app,
            "SELECT count(*) FROM jobs.daemon_status WHERE name = 'idle' AND state = 'stopped'"
        ),
        1
    );
    let berlin_now: f64 = one(
        &mut app,
        "SELECT extract(epoch FROM next_due)::float8 FROM jobs.job_status WHERE name = 'berlin'",
    );
    let berlin_ran = count(
        &mut app,
        "SELECT count(*) FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id WHERE j.name = 'berlin'",
    );
    assert!(
        berlin_now == berlin_next || berlin_ran > 0,
        "berlin was due {berlin_next}, now {berlin_now}"
    );
    // The daemons run in new processes.
    for c in [&mut app, &mut shop] {
        assert_eq!(
            count(
                c,
                "SELECT count(*) FROM beats b WHERE b.at < pg_postmaster_start_time()
                   AND b.pid IN (SELECT pid FROM jobs.daemon_status WHERE pid IS NOT NULL)",
            ),
            0
        );
    }

    // Everything that was there is there, as it was: definitions, finished
    // runs and results equal, every tick still there (beside new ones).
    for (c, before, finished) in [
        (&mut app, &app_snapshot, &app_finished),
        (&mut shop, &shop_snapshot, &shop_finished),
    ] {
        let after = snapshot(c, finished);
        let (ticks_before, rest_before): (Vec<&String>, Vec<&String>) =
            before.iter().partition(|l| l.starts_with("tick "));
        let (ticks_after, rest_after): (Vec<&String>, Vec<&String>) =
            after.iter().partition(|l| l.starts_with("tick "));
        assert_eq!(
            rest_after, rest_before,
            "jobs, finished runs, results or daemons changed"
        );
        let lost: Vec<&&String> = ticks_before.iter().filter(|t| !ticks_after.contains(t)).collect();
        assert!(lost.is_empty(), "ticks lost or changed: {lost:?}");
    }

    // How soon after the start things ran, for the operations guide.
    let since_start = |c: &mut Client, sql: &str| -> f64 {
        one::<f64>(
            c,
            &format!("SELECT extract(epoch FROM ({sql}) - pg_postmaster_start_time())::float8"),
        )
    };
    let first = |c: &mut Client, job: &str| {
        since_start(
            c,
            &format!(
                "SELECT min(r.started_at) FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id
                  WHERE j.name = '{job}' AND r.started_at >= pg_postmaster_start_time()"
            ),
        )
    };
    let soon_at = first(&mut app, "soon");
    let cron_at = first(&mut app, "cron");
    let delayed_at = since_start(
        &mut app,
        &format!("SELECT started_at FROM jobs.run WHERE id = {delayed_run}"),
    );
    let beat_at = since_start(
        &mut app,
        "SELECT min(at) FROM beats WHERE at > pg_postmaster_start_time()",
    );
    say(&format!(
        "pg_upgrade {} → {}: drained in {:.1} s, --check {:.1} s, upgrade {:.1} s; after the start: the overdue \
         one-off ran at +{soon_at:.2} s, the overdue submit at +{delayed_at:.2} s, the first cron run at \
         +{cron_at:.2} s, the daemon's first beat at +{beat_at:.2} s (the wait for all of it: {:.1} s); \
         whole test {:.0} s; --check output in {}",
        from.major,
        to.major,
        drained_in.as_secs_f64(),
        check_took.as_secs_f64(),
        upgrade_took.as_secs_f64(),
        resumed_in.as_secs_f64(),
        t0.elapsed().as_secs_f64(),
        record.display()
    ));
}
