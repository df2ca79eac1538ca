//! `make bench-sharing`: how the scheduler's pass scales and how one role's
//! flood affects another role. Prints figures; asserts nothing.
//!
//! 1. Pass cost with what exists: 100 one-second jobs due each second
//!    among 1,000, 10,000 and 100,000 jobs in all (the rest yearly). It
//!    must stay flat.
//! 2. Pass cost with what is due: 100, 500 and 2,000 one-second jobs among
//!    2,000 in all. It must grow no faster than the due count.
//!
//!    Then 500 due among 2,000 with 20,000 submitted runs waiting in the
//!    queue (`start_at` an hour ahead): the queue's length must not matter.
//!
//!    In all, every due job has `HISTORY` finished runs in its history
//!    already (`pg_jobs.history_max_runs_per_job`'s default bound, as after
//!    17 minutes of running), written directly so the
//!    figures do not depend on how long the benchmark ran. Cost = the
//!    scheduler process's CPU time (from /proc) over a 10-second window,
//!    per second and per due run; and how many runs were queued in the
//!    window against how many fell due.
//! 3. Flood: role `flood` submits 20,000 runs, holds its executors with
//!    long runs at the highest priority, has 500 every-second jobs and a
//!    retry chain; role `calm` has a one-second job and submits single runs
//!    one at a time. Prints how often calm's job ran and its submits' start
//!    lag (started_at − submit commit) p50/p99.

use pg_jobs_bench::{pct, proc_cost};
use pg_jobs_itest::{one, wait_for, Cluster};
use postgres::Client;
use std::time::{Duration, Instant};

/// Finished runs already in each due job's history.
const HISTORY: i64 = 1000;

fn scheduler_pid(s: &mut Client) -> i32 {
    one(
        s,
        "SELECT pid FROM pg_stat_activity WHERE backend_type = 'pg_jobs scheduler' AND datname = current_database()",
    )
}

/// No jobs, no runs: unschedule everything, then empty the run table once
/// no executor writes to it any more (TRUNCATE would deadlock with one).
fn clear(s: &mut Client) {
    s.batch_execute("SELECT jobs.unschedule(name) FROM jobs.job; SELECT jobs.cancel(id) FROM jobs.run WHERE status IN ('queued', 'starting', 'running')")
        .unwrap();
    wait_for("executors to finish", Duration::from_secs(120), || {
        let busy: i64 = one(
            s,
            "SELECT count(*) FROM jobs.run WHERE status IN ('starting', 'running')",
        );
        (busy == 0 && s.batch_execute("TRUNCATE jobs.run_result, jobs.run").is_ok()).then_some(())
    });
}

/// Define `total` jobs, `due` of them every second (each with `HISTORY`
/// finished runs), and measure the scheduler for 10 s.
/// `waiting` submitted runs sit in the queue, due in an hour.
fn pass_cost(c: &Cluster, total: i64, due: i64, waiting: i64) -> (f64, f64, i64) {
    let mut s = c.connect("bench");
    clear(&mut s);
    s.batch_execute(&format!(
        "SELECT jobs.schedule('y' || g, '0 0 1 1 *', 'SELECT 1') FROM generate_series(1, {}) g;
         SELECT jobs.schedule('d' || g, '1 second', 'SELECT 1') FROM generate_series(1, {due}) g;
         INSERT INTO jobs.run (job_id, owner, command, database, datid, status, scheduled_for, started_at, finished_at)
         SELECT j.id, j.owner, j.command, j.database, j.datid, 'succeeded',
                now() - h * interval '1 second', now() - h * interval '1 second', now() - h * interval '1 second'
           FROM jobs.job j, generate_series(1, {HISTORY}) h WHERE j.name LIKE 'd%';
         SELECT jobs.submit('SELECT 1', start_at => now() + interval '1 hour') FROM generate_series(1, {waiting});
         ANALYZE jobs.run; ANALYZE jobs.job;",
        total - due
    ))
    .unwrap();
    // Settle: the load and the first due second.
    std::thread::sleep(Duration::from_secs(5)); // a warm-up phase of the benchmark, not a wait for a condition
    let pid = scheduler_pid(&mut s);
    let t0: f64 = one(&mut s, "SELECT extract(epoch FROM clock_timestamp())::float8");
    let (cpu0, w0) = (proc_cost(pid).1, Instant::now());
    std::thread::sleep(Duration::from_secs(10)); // the measured window
    let (cpu1, wall) = (proc_cost(pid).1, w0.elapsed().as_secs_f64());
    let queued: i64 = one(
        &mut s,
        &format!(
            "SELECT count(*) FROM jobs.run WHERE job_id IS NOT NULL
                AND scheduled_for >= to_timestamp({t0}) AND scheduled_for < to_timestamp({t0}) + interval '10 seconds'"
        ),
    );
    let per_s = (cpu1 - cpu0) / wall;
    (per_s, per_s / due as f64, queued)
}

fn flood(c: &Cluster) {
    let mut su = c.connect("bench");
    clear(&mut su);
    su.batch_execute(
        "CREATE ROLE flood LOGIN; CREATE ROLE calm LOGIN;
         CREATE TABLE calm_ticks (at timestamptz DEFAULT clock_timestamp());
         CREATE TABLE flood_rows (at timestamptz DEFAULT clock_timestamp());
         GRANT INSERT ON calm_ticks TO calm; GRANT INSERT ON flood_rows TO flood;",
    )
    .unwrap();
    let mut f = c.connect_as("bench", "flood");
    f.batch_execute(
        "SELECT jobs.submit('SELECT pg_sleep(30)', priority => 2147483647) FROM generate_series(1, 6);
         SELECT jobs.submit('INSERT INTO flood_rows DEFAULT VALUES') FROM generate_series(1, 20000);
         SELECT jobs.schedule('f' || g, '1 second', 'INSERT INTO flood_rows DEFAULT VALUES') FROM generate_series(1, 500) g;
         SELECT jobs.schedule('retry', '1 second', 'SELECT 1/0', max_attempts => 100, retry_backoff => '1 second');",
    )
    .unwrap();
    let mut k = c.connect_as("bench", "calm");
    k.batch_execute("SELECT jobs.schedule('tick', '1 second', 'INSERT INTO calm_ticks DEFAULT VALUES')")
        .unwrap();
    std::thread::sleep(Duration::from_secs(2)); // let the flood take hold
    let t0 = Instant::now();
    let mut ids = Vec::new();
    for _ in 0..100 {
        let id: i64 = one(&mut k, "SELECT jobs.submit('SELECT 1')");
        ids.push(id);
        std::thread::sleep(Duration::from_millis(100)); // submits spread over 10 s, one at a time
    }
    let window = t0.elapsed().as_secs_f64();
    let ticks: i64 = one(
        &mut su,
        &format!(
            "SELECT count(*) FROM calm_ticks WHERE at > clock_timestamp() - interval '{window} seconds'"
        ),
    );
    wait_for("calm's submits to finish", Duration::from_secs(120), || {
        one::<i64>(
            &mut su,
            &format!(
                "SELECT count(*) FROM jobs.run WHERE id = ANY('{{{}}}') AND finished_at IS NOT NULL",
                ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")
            ),
        )
        .eq(&(ids.len() as i64))
        .then_some(())
    });
    let mut lags: Vec<f64> = su
        .query(
            "SELECT (extract(epoch FROM started_at - submitted_at) * 1000)::float8 FROM jobs.run WHERE id = ANY($1)",
            &[&ids],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    lags.sort_by(f64::total_cmp);
    let flood_done: i64 = one(&mut su, "SELECT count(*) FROM flood_rows");
    println!(
        "3. flood: calm's one-second job ran {ticks} times in {window:.1} s; calm's submits start lag p50 {:.1} ms, p99 {:.1} ms (n = {}); the flood meanwhile wrote {flood_done} rows",
        pct(&lags, 0.5),
        pct(&lags, 0.99),
        lags.len()
    );
}

fn main() {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("pg_jobs sharing benchmark — {cpus} CPUs, PostgreSQL 15");
    let conf = "shared_preload_libraries = 'pg_jobs'\nmax_worker_processes = 64\n\
                pg_jobs.max_executors = 4\npg_jobs.log_runs = off\nmax_connections = 100\n\
                pg_jobs.history_max_runs_per_job = 0";
    let c = Cluster::start("bench-sharing", conf);
    c.connect("postgres")
        .batch_execute("CREATE DATABASE bench")
        .unwrap();
    c.connect("bench")
        .batch_execute("CREATE EXTENSION pg_jobs")
        .unwrap();
    let only = std::env::var("SHARING_ONLY").unwrap_or_default();
    let part = |name: &str| only.is_empty() || only.split(',').any(|p| p == name);
    if part("exists") {
        println!("1. pass cost with what exists (100 due each second, {HISTORY} finished runs each):");
        for total in [1_000, 10_000, 100_000] {
            let (ms, per_run, queued) = pass_cost(&c, total, 100, 0);
            println!(
                "   {total:>7} jobs: scheduler CPU {ms:6.1} ms/s, {per_run:.3} ms per due run, {queued} of 1000 due runs queued in 10 s"
            );
        }
    }
    if part("due") {
        println!("2. pass cost with what is due (2,000 jobs in all):");
        for due in [100, 500, 2_000] {
            let (ms, per_run, queued) = pass_cost(&c, 2_000, due, 0);
            println!(
                "   {due:>5} due/s: scheduler CPU {ms:6.1} ms/s, {per_run:.3} ms per due run, {queued} of {} due runs queued in 10 s",
                due * 10
            );
        }
    }
    if part("waiting") {
        let (ms, per_run, queued) = pass_cost(&c, 2_000, 500, 20_000);
        println!(
            "     500 due/s, 20,000 runs waiting: scheduler CPU {ms:6.1} ms/s, {per_run:.3} ms per due run, {queued} of 5000 due runs queued in 10 s"
        );
    }
    if part("flood") {
        flood(&c);
    }
}
