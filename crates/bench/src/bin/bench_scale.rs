//! `make bench-scale` (and `make soak`): the scheduler at scale, side by
//! side with pg_cron on one cluster. Prints a table; asserts nothing.
//!
//! 1. Start lag: 50 jobs a minute in each system for 3 minutes (pg_cron
//!    1.4 has no seconds: `* * * * *`; pg_jobs fires at second 30 of each
//!    minute, `30 * * * * *`, so the two never compete), then 50 pg_jobs
//!    jobs on a 1-second interval (phases spread over the second) for 60 s,
//!    then 50 jobs due at the same whole second (`* * * * * *`) for 20 s.
//!    Lag = the job's own `clock_timestamp()` minus its scheduled instant.
//! 2. Idle cost: 10,000 yearly jobs in each system, 60 s with nothing due:
//!    voluntary context switches (wake-ups) and CPU time of each system's
//!    scheduler processes, from /proc.
//! 3. Scale: 100,000 pg_jobs jobs: load time after a restart (the
//!    scheduler logs it), scheduler RSS, a new one-off and a changed job
//!    taking effect, p99 lag of a 1-second job among them. Then 100,000
//!    jobs whose cron texts all differ (minute, hour, day and month
//!    varying, as real job sets do) and a 1-second job: scheduler RSS after
//!    a restart, and from the server's start to the 1-second job's first
//!    run (`DISTINCT_ONLY` runs only this).
//! 4. Memory: a 1-second job and 100 submitted runs a second for 60 s
//!    (`SOAK_SECONDS`, 600 in `make soak`): scheduler and executor RSS at
//!    start and end.
//! 5. Slot pressure: `max_worker_processes = 8`, 50 one-offs due 10 ms
//!    apart: all run, in due order, none fails for lack of a slot.

use pg_jobs_bench::{pct, proc_cost};
use pg_jobs_itest::{one, wait_for, Cluster};
use postgres::Client;
use std::time::{Duration, Instant};

/// Lags (ms) of the rows `who` wrote since `since`, against `scheduled`, an
/// SQL expression of `at` (and `j`) giving each run's scheduled instant.
fn lags(s: &mut Client, who: &str, scheduled: &str, since: f64) -> Vec<f64> {
    let mut v: Vec<f64> = s
        .query(
            &format!(
                "SELECT (extract(epoch FROM at - ({scheduled})) * 1000)::float8 FROM lag l
                  WHERE sys = $1 AND extract(epoch FROM at) >= $2::float8"
            ),
            &[&who, &since],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

fn now_epoch(s: &mut Client) -> f64 {
    one(s, "SELECT extract(epoch FROM clock_timestamp())::float8")
}

fn sleep_until_epoch(s: &mut Client, t: f64) {
    let d = t - now_epoch(s);
    if d > 0.0 {
        std::thread::sleep(Duration::from_secs_f64(d)); // wall-clock phase of the benchmark, not a wait for a condition
    }
}

fn pids(s: &mut Client, backend_type: &str) -> Vec<i32> {
    s.query(
        "SELECT pid FROM pg_stat_activity WHERE backend_type = $1",
        &[&backend_type],
    )
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// The process's own memory (RssAnon): VmRSS would also count the pages of
/// PostgreSQL's shared buffers it has touched, which grow with any work.
fn rss_mb(pid: i32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("RssAnon:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

struct Row {
    measure: String,
    pg_jobs: String,
    pg_cron: String,
    target: String,
}

fn main() {
    let soak_s: u64 = std::env::var("SOAK_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    if std::env::var("SOAK_ONLY").is_ok() {
        let mut rows = Vec::new();
        soak(&mut rows, soak_s);
        print_table(&rows);
        return;
    }
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "pg_jobs scale benchmark — {cpus} CPUs, PostgreSQL 15, pg_jobs and pg_cron 1.4 preloaded together"
    );
    let conf = "shared_preload_libraries = 'pg_jobs,pg_cron'\ncron.database_name = 'bench'\n\
                cron.use_background_workers = on\nmax_worker_processes = 128\n\
                pg_jobs.max_executors = 8\ncron.max_running_jobs = 64\npg_jobs.log_runs = off\n\
                max_connections = 200\ncron.log_run = on\ncron.log_statement = off";
    let mut c = Cluster::start("bench-scale", conf);
    c.connect("postgres")
        .batch_execute("CREATE DATABASE bench")
        .unwrap();
    let mut s = c.connect("bench");
    s.batch_execute(
        "CREATE EXTENSION pg_jobs; CREATE EXTENSION pg_cron;
         CREATE TABLE lag (sys text, j int, at timestamptz DEFAULT clock_timestamp());
         CREATE INDEX ON lag (sys, at);",
    )
    .unwrap();
    let mut rows = Vec::new();

    // DISTINCT_ONLY: just part 3's distinct texts, before and after a change of the cron search.
    if std::env::var("DISTINCT_ONLY").is_ok() {
        distinct_texts(&mut c, &mut rows);
        print_table(&rows);
        return;
    }
    // SCALE_ONLY: just part 3 (with part 2's 10,000 jobs defined), for a
    // quick look while working on the scheduler's memory and load time.
    let scale_only = std::env::var("SCALE_ONLY").is_ok();
    if scale_only {
        s.batch_execute(
            "SELECT jobs.schedule('y' || g, '0 0 1 1 *', 'SELECT 1') FROM generate_series(1, 10000) g",
        )
        .unwrap();
    } else {
        // 1a. A minute's schedule, both systems, 3 minutes.
        println!("1. start lag: 50 jobs a minute in each system for 3 minutes …");
        s.batch_execute(
        "SELECT cron.schedule('m' || g, '* * * * *', format('INSERT INTO lag (sys, j) VALUES (''cron'', %s)', g))
           FROM generate_series(1, 50) g;
         SELECT jobs.schedule('m' || g, '30 * * * * *', format('INSERT INTO lag (sys, j) VALUES (''jobs-min'', %s)', g))
           FROM generate_series(1, 50) g;",
    )
    .unwrap();
        let t = now_epoch(&mut s);
        let start = (t / 60.0).ceil() * 60.0 + 0.001; // from the next whole minute
        sleep_until_epoch(&mut s, start + 180.0 + 5.0);
        let cron = lags(&mut s, "cron", "date_trunc('minute', at)", start);
        let jmin = lags(
            &mut s,
            "jobs-min",
            "date_trunc('minute', at) + interval '30 seconds'",
            start,
        );
        s.batch_execute(
            "SELECT cron.unschedule(jobid) FROM cron.job; SELECT jobs.unschedule(name) FROM jobs.job",
        )
        .unwrap();
        let jmin_missed = 150 - jmin.len() as i64;
        let cron_missed = 150 - cron.len() as i64;
        rows.push(Row {
            measure: "lag, 50 jobs/minute × 3 min: median / p99 / max (missed)".into(),
            pg_jobs: format!(
                "{:.1} / {:.1} / {:.1} ms ({jmin_missed})",
                pct(&jmin, 0.5),
                pct(&jmin, 0.99),
                pct(&jmin, 1.0)
            ),
            pg_cron: format!(
                "{:.1} / {:.1} / {:.1} ms ({cron_missed})",
                pct(&cron, 0.5),
                pct(&cron, 0.99),
                pct(&cron, 1.0)
            ),
            target: format!(
                "p99 ≤ 5 ms and ≥ 15× better: {:.1}×",
                pct(&cron, 0.99) / pct(&jmin, 0.99)
            ),
        });
        println!("   pg_jobs {} | pg_cron {}", rows[0].pg_jobs, rows[0].pg_cron);

        // 1b. 50 one-second interval jobs, phases spread over the second, 60 s.
        println!("   50 one-second interval jobs for 60 s …");
        for g in 1..=50 {
            s.execute(
            "SELECT jobs.schedule('s' || $1::int, '1 second', format('INSERT INTO lag (sys, j) VALUES (''jobs-1s'', %s)', $1::int))",
            &[&g],
        )
        .unwrap();
            std::thread::sleep(Duration::from_millis(20)); // spread the interval jobs' phases over the second
        }
        let start = now_epoch(&mut s) + 2.0;
        sleep_until_epoch(&mut s, start + 60.0);
        // An interval's instants are its creation time plus whole periods.
        let sched = "(SELECT created_at + floor(extract(epoch FROM l.at - created_at)) * interval '1 second'
                    FROM jobs.job WHERE name = 's' || l.j)";
        let spread = lags(&mut s, "jobs-1s", sched, start);
        let expected = 50 * 60;
        let gaps: f64 = one(
        &mut s,
        &format!(
            "SELECT avg(g)::float8 FROM (SELECT extract(epoch FROM at - lag(at) OVER (PARTITION BY j ORDER BY at)) * 1000 AS g
               FROM lag WHERE sys = 'jobs-1s' AND extract(epoch FROM at) >= {start}) x WHERE g IS NOT NULL"
        ),
    );
        let got = spread.len() as i64;
        s.batch_execute("SELECT jobs.unschedule(name) FROM jobs.job")
            .unwrap();
        rows.push(Row {
            measure: "lag, 50 one-second jobs × 60 s (phases spread): median / p99 / max (missed); mean gap"
                .into(),
            pg_jobs: format!(
                "{:.1} / {:.1} / {:.1} ms ({}); {gaps:.1} ms",
                pct(&spread, 0.5),
                pct(&spread, 0.99),
                pct(&spread, 1.0),
                (expected - got).max(0)
            ),
            pg_cron: "no seconds schedules".into(),
            target: "p99 ≤ 5 ms; mean gap 1000.0 ms".into(),
        });
        println!("   pg_jobs {}", rows[1].pg_jobs);

        // 1c. 50 jobs due at the same whole second, 20 s.
        s.batch_execute(
        "SELECT jobs.schedule('x' || g, '* * * * * *', format('INSERT INTO lag (sys, j) VALUES (''jobs-same'', %s)', g))
           FROM generate_series(1, 50) g",
    )
    .unwrap();
        let start = now_epoch(&mut s).ceil() + 1.0;
        sleep_until_epoch(&mut s, start + 20.0);
        let same = lags(&mut s, "jobs-same", "date_trunc('second', at)", start);
        s.batch_execute("SELECT jobs.unschedule(name) FROM jobs.job")
            .unwrap();
        rows.push(Row {
            measure: "lag, 50 jobs due at the same second × 20 s: median / p99 / max".into(),
            pg_jobs: format!(
                "{:.1} / {:.1} / {:.1} ms ({} runs)",
                pct(&same, 0.5),
                pct(&same, 0.99),
                pct(&same, 1.0),
                same.len()
            ),
            pg_cron: "no seconds schedules".into(),
            target: "(the batch drains through 8 executors)".into(),
        });
        println!("   pg_jobs {}", rows[2].pg_jobs);

        // 2. Idle cost.
        println!("2. idle cost: 10,000 yearly jobs in each system, 60 s …");
        s.batch_execute(
            "SELECT cron.schedule('y' || g, '0 0 1 1 *', 'SELECT 1') FROM generate_series(1, 10000) g;
         SELECT jobs.schedule('y' || g, '0 0 1 1 *', 'SELECT 1') FROM generate_series(1, 10000) g;",
        )
        .unwrap();
        std::thread::sleep(Duration::from_secs(12)); // let idle executors time out and everyone settle
        let jobs_pids: Vec<i32> = [
            pids(&mut s, "pg_jobs launcher"),
            pids(&mut s, "pg_jobs scheduler"),
        ]
        .concat();
        let cron_pids = pids(&mut s, "pg_cron launcher");
        drop(s); // our own session must not wake anyone
        let before: Vec<(u64, f64)> = jobs_pids
            .iter()
            .chain(&cron_pids)
            .map(|p| proc_cost(*p))
            .collect();
        std::thread::sleep(Duration::from_secs(60)); // the idle window being measured
        let after: Vec<(u64, f64)> = jobs_pids
            .iter()
            .chain(&cron_pids)
            .map(|p| proc_cost(*p))
            .collect();
        let sum = |range: std::ops::Range<usize>| {
            range.fold((0u64, 0f64), |(c, t), i| {
                (c + after[i].0 - before[i].0, t + after[i].1 - before[i].1)
            })
        };
        let (jw, jcpu) = sum(0..jobs_pids.len());
        let (cw, ccpu) = sum(jobs_pids.len()..jobs_pids.len() + cron_pids.len());
        rows.push(Row {
            measure: format!(
                "idle 60 s with 10,000 yearly jobs: wake-ups, CPU ({} pg_jobs processes)",
                jobs_pids.len()
            ),
            pg_jobs: format!("{jw} wake-ups, {jcpu:.0} ms CPU"),
            pg_cron: format!("{cw} wake-ups, {ccpu:.0} ms CPU"),
            target: "≤ 1 wake-up per minute".into(),
        });
        println!("   pg_jobs {} | pg_cron {}", rows[3].pg_jobs, rows[3].pg_cron);
    }

    // 3. Scale: 100,000 jobs.
    println!("3. scale: 100,000 jobs …");
    let mut s = c.connect("bench");
    s.batch_execute(
        "SELECT cron.unschedule(jobid) FROM cron.job;
         SELECT jobs.schedule('z' || g, '0 0 1 1 *', 'SELECT 1') FROM generate_series(10001, 100000) g;",
    )
    .unwrap();
    drop(s);
    let log_len = c.log().len();
    c.stop_server("fast");
    c.start_server();
    let (load_ms, _) = wait_for("the scheduler's load line", Duration::from_secs(300), || {
        let log = c.log();
        log[log_len.min(log.len())..].lines().find_map(|l| {
            let rest = l.split("pg_jobs: loaded 100000 jobs in ").nth(1)?;
            rest.trim_end_matches(" ms").trim().parse::<f64>().ok()
        })
    });
    let mut s = c.connect("bench");
    let sched_pid = pids(&mut s, "pg_jobs scheduler")
        .into_iter()
        .find(|_| true)
        .unwrap_or(0);
    let rss = rss_mb(sched_pid);
    // A new one-off, due now: from its commit to its run.
    s.batch_execute("TRUNCATE lag").unwrap();
    let mut effect = Vec::new();
    for i in 0..10 {
        // The one-off's instant is taken just before the statement commits.
        let at: f64 = one(
            &mut s,
            &format!(
                "WITH t AS (SELECT clock_timestamp() AS at)
                 SELECT extract(epoch FROM t.at)::float8 FROM t
                  WHERE jobs.schedule('probe{i}', t.at::text, 'INSERT INTO lag (sys, j) VALUES (''probe'', {i})') > 0"
            ),
        );
        let (ran, _) = wait_for("the probe run", Duration::from_secs(30), || {
            one::<Option<f64>>(
                &mut s,
                &format!(
                    "SELECT extract(epoch FROM max(at))::float8 FROM lag WHERE sys = 'probe' AND j = {i}"
                ),
            )
        });
        effect.push((ran - at) * 1000.0);
    }
    effect.sort_by(f64::total_cmp);
    // A changed job: an existing yearly job altered to fire now.
    let mut alter = Vec::new();
    for i in 0..10 {
        let at: f64 = one(
            &mut s,
            &format!(
                "WITH t AS (SELECT clock_timestamp() AS at)
                 SELECT extract(epoch FROM t.at)::float8 FROM t
                  WHERE jobs.alter_job('z{}', schedule => t.at::text,
                                       command => 'INSERT INTO lag (sys, j) VALUES (''alter'', {i})') > 0",
                20000 + i
            ),
        );
        let (ran, _) = wait_for("the altered job's run", Duration::from_secs(30), || {
            one::<Option<f64>>(
                &mut s,
                &format!(
                    "SELECT extract(epoch FROM max(at))::float8 FROM lag WHERE sys = 'alter' AND j = {i}"
                ),
            )
        });
        alter.push((ran - at) * 1000.0);
    }
    alter.sort_by(f64::total_cmp);
    // A 1-second job among them, 30 s.
    s.batch_execute(
        "SELECT jobs.schedule('among', '* * * * * *', 'INSERT INTO lag (sys, j) VALUES (''among'', 1)')",
    )
    .unwrap();
    let start = now_epoch(&mut s).ceil() + 1.0;
    sleep_until_epoch(&mut s, start + 30.0);
    let among = lags(&mut s, "among", "date_trunc('second', at)", start);
    let rss_after = rss_mb(sched_pid);
    rows.push(Row {
        measure: "100,000 jobs: load after restart; scheduler private RSS (after load / after the probes)"
            .into(),
        pg_jobs: format!("{load_ms:.0} ms; {rss:.1} / {rss_after:.1} MB"),
        pg_cron: "—".into(),
        target: "load ≤ 1 s; RSS ≤ 64 MB".into(),
    });
    rows.push(Row {
        measure:
            "100,000 jobs: add a one-off due now → it runs; alter a job to now → it runs (median / max of 10)"
                .into(),
        pg_jobs: format!(
            "{:.1} / {:.1} ms; {:.1} / {:.1} ms",
            pct(&effect, 0.5),
            pct(&effect, 1.0),
            pct(&alter, 0.5),
            pct(&alter, 1.0)
        ),
        pg_cron: "—".into(),
        target: "≤ 50 ms".into(),
    });
    rows.push(Row {
        measure: "100,000 jobs: a 1-second job among them, 30 s: median / p99 lag".into(),
        pg_jobs: format!(
            "{:.1} / {:.1} ms ({} runs)",
            pct(&among, 0.5),
            pct(&among, 0.99),
            among.len()
        ),
        pg_cron: "—".into(),
        target: "p99 ≤ 5 ms".into(),
    });
    for r in &rows[rows.len() - 3..] {
        println!("   {} | {}", r.measure, r.pg_jobs);
    }
    drop(s);
    distinct_texts(&mut c, &mut rows);
    drop(c);

    // 4. Memory over a steady load.
    soak(&mut rows, soak_s);

    // 5. Slot pressure.
    println!("5. slot pressure: max_worker_processes = 8, 50 one-offs due 10 ms apart …");
    let (_c2, mut s) = Cluster::with_app_db(
        "bench-slots",
        "max_worker_processes = 8\npg_jobs.max_executors = 8\npg_jobs.log_runs = off",
    );
    s.batch_execute(
        "CREATE TABLE lag (sys text, j int, at timestamptz DEFAULT clock_timestamp());
         SELECT jobs.schedule('p' || g, (clock_timestamp() + interval '2 seconds' + g * interval '10 ms')::text,
                              format('INSERT INTO lag (sys, j) VALUES (''slots'', %s); SELECT pg_sleep(0.05)', g))
           FROM generate_series(1, 50) g;",
    )
    .unwrap();
    wait_for("50 runs finished", Duration::from_secs(120), || {
        let done: i64 = one(
            &mut s,
            "SELECT count(*) FROM jobs.run WHERE status NOT IN ('queued', 'starting', 'running')",
        );
        (done >= 50).then_some(())
    });
    let r = s
        .query_one(
            "SELECT count(*) FILTER (WHERE status = 'succeeded'),
                    count(*) FILTER (WHERE status <> 'succeeded'),
                    (SELECT count(*) FROM (SELECT j, lag(j) OVER (ORDER BY at) AS prev FROM lag) x WHERE j < prev),
                    (SELECT count(*) FROM jobs.run WHERE message LIKE '%worker slot%' OR started_at - scheduled_for > interval '100 ms')
               FROM jobs.run",
            &[],
        )
        .unwrap();
    let (ok, bad, inversions, waited): (i64, i64, i64, i64) = (r.get(0), r.get(1), r.get(2), r.get(3));
    rows.push(Row {
        measure: "max_worker_processes = 8, 50 one-offs 10 ms apart: succeeded / failed / out of due order"
            .into(),
        pg_jobs: format!("{ok} / {bad} / {inversions} ({waited} waited > 100 ms for a slot)"),
        pg_cron: "—".into(),
        target: "50 / 0 / 0".into(),
    });
    println!("   {}", rows.last().unwrap().pg_jobs);
    print_table(&rows);
}

/// Part 3's second half: 100,000 distinct cron texts and a 1-second job, restarted.
fn distinct_texts(c: &mut Cluster, rows: &mut Vec<Row>) {
    println!("3. (distinct) 100,000 jobs with distinct cron texts …");
    let mut s = c.connect("bench");
    // x runs over 483,840 = 60·24·28·12 combinations in a scattered order
    // (7919 is prime to it), so every text differs and every field varies.
    s.batch_execute(
        "SELECT jobs.unschedule(name) FROM jobs.job;
         SELECT jobs.schedule('d' || g, format('%s %s %s %s *', x % 60, (x / 60) % 24, (x / 1440) % 28 + 1, (x / 40320) % 12 + 1), 'SELECT 1')
           FROM generate_series(1, 100000) g, LATERAL (SELECT (g::int8 * 7919) % 483840 AS x) x;
         SELECT jobs.schedule('first', '* * * * * *', 'INSERT INTO lag (sys, j) VALUES (''first'', 1)');",
    )
    .unwrap();
    let distinct: i64 = one(&mut s, "SELECT count(DISTINCT schedule) FROM jobs.job");
    drop(s);
    c.stop_server("fast");
    c.start_server();
    let mut s = c.connect("bench");
    let (first_ms, _) = wait_for(
        "the 1-second job's first run after the restart",
        Duration::from_secs(120),
        || {
            one::<Option<f64>>(
                &mut s,
                "SELECT (extract(epoch FROM min(at) - pg_postmaster_start_time()) * 1000)::float8
               FROM lag WHERE sys = 'first' AND at > pg_postmaster_start_time()",
            )
        },
    );
    let sched_pid = pids(&mut s, "pg_jobs scheduler").into_iter().next().unwrap_or(0);
    let rss = rss_mb(sched_pid);
    rows.push(Row {
        measure: format!("100,001 jobs, {distinct} distinct cron texts: scheduler private RSS after a restart; server start → the 1-second job's first run"),
        pg_jobs: format!("{rss:.1} MB; {first_ms:.0} ms"),
        pg_cron: "—".into(),
        target: "RSS < 64 MB; first run < 1 s".into(),
    });
    println!("   {}", rows.last().unwrap().pg_jobs);
    s.batch_execute("SELECT jobs.unschedule(name) FROM jobs.job")
        .unwrap();
}

fn soak(rows: &mut Vec<Row>, seconds: u64) {
    println!("4. memory: a 1-second job and 100 submitted runs a second for {seconds} s …");
    let (_c, mut s) = Cluster::with_app_db("bench-soak", "pg_jobs.max_executors = 4\npg_jobs.log_runs = off");
    s.batch_execute(
        "CREATE TABLE sink (n int8, at timestamptz DEFAULT clock_timestamp());
         SELECT jobs.schedule('tick', '1 second', 'INSERT INTO sink (n) VALUES (0)');",
    )
    .unwrap();
    let run_for = |s: &mut Client, secs: u64| {
        let t0 = Instant::now();
        let mut i: i64 = 0;
        while t0.elapsed() < Duration::from_secs(secs) {
            s.execute(
                "SELECT jobs.submit(format('INSERT INTO sink (n) VALUES (%s)', g)) FROM generate_series($1::int8, $1 + 9) g",
                &[&i],
            )
            .unwrap();
            i += 10;
            let next = Duration::from_millis(100 * (i as u64 / 10));
            if let Some(d) = next.checked_sub(t0.elapsed()) {
                std::thread::sleep(d); // pacing: 10 submits every 100 ms
            }
        }
        i
    };
    run_for(&mut s, 10); // warm up
    let sched = pids(&mut s, "pg_jobs scheduler");
    let execs = |s: &mut Client| -> f64 {
        pids(s, "pg_jobs executor")
            .into_iter()
            .map(rss_mb)
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max)
    };
    let (s0, e0) = (rss_mb(sched[0]), execs(&mut s));
    let submitted = run_for(&mut s, seconds);
    let (s1, e1) = (rss_mb(sched[0]), execs(&mut s));
    let growth = (s1 - s0) / s0 * 100.0;
    rows.push(Row {
        measure: format!("{seconds} s of a 1-second job + 100 submits/s ({submitted} runs): scheduler private RSS start → end; largest executor"),
        pg_jobs: format!("{s0:.1} → {s1:.1} MB ({growth:+.1}%); {e0:.1} → {e1:.1} MB"),
        pg_cron: "—".into(),
        target: "growth ≤ 5%".into(),
    });
    println!("   {}", rows.last().unwrap().pg_jobs);
}

fn print_table(rows: &[Row]) {
    println!();
    println!("| measure | pg_jobs | pg_cron 1.4 | target |");
    println!("|---|---|---|---|");
    for r in rows {
        println!("| {} | {} | {} | {} |", r.measure, r.pg_jobs, r.pg_cron, r.target);
    }
}
