//! `make bench`: throughput and latency of pg_jobs, side by side with
//! pg_cron on the same cluster. Prints a table; asserts nothing.
//!
//! 1. pg_jobs throughput: 20,000 trivial runs (`SELECT 1`, then a one-row
//!    INSERT) submitted in batches of 1,000; runs/s from the first submit to
//!    the last run finished.
//! 2. pg_jobs submit-to-start latency (`started_at - submitted_at`) of 300
//!    runs submitted one at a time: warm pool, then cold (idle timeout 0).
//! 3. Workflows (0.4.0): 300 two-run chains (a parent `SELECT 1`, a
//!    dependant with `depends_on` it), submitted one chain at a time; how
//!    long after its parent finished each dependant started.
//!    `BENCH_ONLY=workflows` runs only this.
//! 4. Named queues (0.4.0): the one-row INSERT burst again, into a queue
//!    with `max_concurrency` 4 and then 2; runs/s, and the most executors
//!    seen running the queue's runs at once (sampled from `jobs.workers`
//!    every millisecond; the limit itself is observed exactly by
//!    `crates/itest/tests/queues.rs`). `BENCH_ONLY=queues` runs only this
//!    and the unlimited INSERT burst it compares with.
//! 5. pg_cron 1.4 (Debian's package; finest schedule one minute, no ad-hoc
//!    runs): 1,000 jobs `* * * * *` running `SELECT 1`; how fast one
//!    minute's 1,000 due runs drain, in background-worker mode and in libpq
//!    mode (`cron.host` = the socket directory); runs/s.

use pg_jobs_itest::{one, wait_for, Cluster};
use postgres::Client;
use std::time::{Duration, Instant};

const N: i64 = 20_000;
const BATCH: i64 = 1_000;

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn drain(s: &mut Client, command: &str) -> f64 {
    drain_into(s, command, None)
}

/// [`drain`], the runs submitted to queue `queue` if given.
fn drain_into(s: &mut Client, command: &str, queue: Option<&str>) -> f64 {
    s.batch_execute("DELETE FROM jobs.run; TRUNCATE sink").unwrap();
    let t0 = Instant::now();
    let mut i = 0;
    while i < N {
        s.execute(
            "SELECT jobs.submit(format($1, g), queue => $4) FROM generate_series($2::int8, $3::int8) g",
            &[&command, &i, &(i + BATCH - 1), &queue],
        )
        .unwrap();
        i += BATCH;
    }
    let submitted = t0.elapsed().as_secs_f64();
    wait_for("all runs finished", Duration::from_secs(1800), || {
        (one::<i64>(
            s,
            "SELECT count(*) FROM jobs.run WHERE status IN ('queued','starting','running')",
        ) == 0)
            .then_some(())
    });
    let took = t0.elapsed().as_secs_f64();
    let ok: i64 = one(s, "SELECT count(*) FROM jobs.run WHERE status = 'succeeded'");
    assert_eq!(ok, N, "every run succeeded");
    println!("    ({N} submits took {submitted:.2} s of the {took:.2} s; runs started while they went on)");
    N as f64 / took
}

/// The INSERT burst into a new queue with `max_concurrency` (`None`: no
/// queue): runs/s, and the most executors seen running its runs at once
/// (a second session samples `jobs.workers` every 2 ms while the burst
/// drains; the unlimited burst is measured with the same sampler, as the
/// baseline).
fn queue_burst(c: &Cluster, s: &mut Client, max_concurrency: Option<i32>) -> (f64, i64) {
    let name = max_concurrency.map(|m| format!("burst{m}"));
    if let Some(name) = &name {
        s.execute(
            "SELECT jobs.create_queue($1, max_concurrency => $2)",
            &[name, &max_concurrency],
        )
        .unwrap();
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut watcher = c.connect("bench");
    let (stop, queue) = (done.clone(), name.clone());
    let sampler = std::thread::spawn(move || {
        let mut most = 0i64;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let n: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM jobs.workers w JOIN jobs.run r ON r.id = w.run_id
                      WHERE w.kind = 'executor' AND w.state = 'running' AND r.queue IS NOT DISTINCT FROM $1",
                    &[&queue],
                )
                .unwrap()
                .get(0);
            most = most.max(n);
            // Paces the sampler (a load of its own), not a wait for a condition.
            std::thread::sleep(Duration::from_millis(2));
        }
        most
    });
    let rate = drain_into(s, "INSERT INTO sink VALUES (%s)", name.as_deref());
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    (rate, sampler.join().unwrap())
}

fn latency(s: &mut Client, n: usize) -> (f64, f64) {
    s.batch_execute("DELETE FROM jobs.run").unwrap();
    let mut ids = Vec::with_capacity(n);
    for _ in 0..n {
        let id: i64 = one(s, "SELECT jobs.submit('SELECT 1')");
        let row = s.query_one("SELECT status FROM jobs.wait($1)", &[&id]).unwrap();
        assert_eq!(row.get::<_, String>(0), "succeeded");
        ids.push(id);
    }
    let mut lat: Vec<f64> = s
        .query(
            "SELECT (extract(epoch FROM started_at - submitted_at) * 1000)::float8 FROM jobs.run ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    lat.sort_by(f64::total_cmp);
    (percentile(&lat, 0.5), percentile(&lat, 0.99))
}

/// Dependant start lag (ms, p50 and p99): `started_at` of a run with
/// `depends_on` minus `finished_at` of its parent, over `n` chains each
/// submitted in one transaction and waited for before the next.
fn dependant_lag(s: &mut Client, n: usize) -> (f64, f64) {
    s.batch_execute("DELETE FROM jobs.run").unwrap();
    for _ in 0..n {
        let mut tx = s.transaction().unwrap();
        let parent: i64 = tx
            .query_one("SELECT jobs.submit('SELECT 1')", &[])
            .unwrap()
            .get(0);
        let child: i64 = tx
            .query_one(
                "SELECT jobs.submit('SELECT 2', depends_on => ARRAY[$1::int8])",
                &[&parent],
            )
            .unwrap()
            .get(0);
        tx.commit().unwrap();
        let row = s
            .query_one("SELECT status FROM jobs.wait($1)", &[&child])
            .unwrap();
        assert_eq!(row.get::<_, String>(0), "succeeded");
    }
    let mut lag: Vec<f64> = s
        .query(
            "SELECT (extract(epoch FROM c.started_at - p.finished_at) * 1000)::float8
               FROM jobs.run c JOIN jobs.run p ON p.id = c.depends_on[1] ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    lag.sort_by(f64::total_cmp);
    (percentile(&lag, 0.5), percentile(&lag, 0.99))
}

fn cron_drain(c: &Cluster, jobs: i64) -> f64 {
    let mut s = c.connect("bench");
    s.batch_execute("CREATE EXTENSION IF NOT EXISTS pg_cron; DELETE FROM cron.job_run_details; SELECT cron.unschedule(jobid) FROM cron.job")
        .unwrap();
    s.execute(
        "SELECT cron.schedule('j' || g, '* * * * *', 'SELECT 1') FROM generate_series(1, $1::int8) g",
        &[&jobs],
    )
    .unwrap();
    // Wait for the next whole minute's runs to finish.
    let (_, _) = wait_for("a minute of pg_cron runs", Duration::from_secs(300), || {
        let done: i64 = one(
            &mut s,
            "SELECT count(*) FROM cron.job_run_details WHERE status IN ('succeeded', 'failed')",
        );
        (done >= jobs).then_some(())
    });
    let row = s
        .query_one(
            "SELECT count(*) FILTER (WHERE status = 'succeeded'),
                    extract(epoch FROM max(end_time) - min(start_time))::float8
               FROM cron.job_run_details",
            &[],
        )
        .unwrap();
    let ok: i64 = row.get(0);
    let span: f64 = row.get(1);
    s.batch_execute("SELECT cron.unschedule(jobid) FROM cron.job")
        .unwrap();
    ok as f64 / span.max(1e-3)
}

fn main() {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("pg_jobs benchmark — {cpus} CPUs, PostgreSQL 15, pg_jobs and pg_cron preloaded together");
    let conf = "shared_preload_libraries = 'pg_jobs,pg_cron'\ncron.database_name = 'bench'\n\
                max_worker_processes = 64\ncron.max_running_jobs = 32\n\
                pg_jobs.log_runs = off\nmax_connections = 200";
    // 4 executors unless BENCH_EXECUTORS says otherwise (2 and 8 measured
    // within a few per cent of it on two cores; see the README).
    let executors: u32 = std::env::var("BENCH_EXECUTORS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let conf = format!("{conf}\npg_jobs.max_executors = {executors}");
    println!("  (pg_jobs.max_executors = {executors})");
    let mut c = Cluster::start("bench", &conf);
    c.connect("postgres")
        .batch_execute("CREATE DATABASE bench")
        .unwrap();
    let mut s = c.connect("bench");
    s.batch_execute("CREATE EXTENSION pg_jobs; CREATE TABLE sink (n int8)")
        .unwrap();

    if std::env::var("BENCH_ONLY").as_deref() == Ok("workflows") {
        let (d50, d99) = dependant_lag(&mut s, 300);
        println!("  pg_jobs: parent end→dependant start ...... p50 {d50:.2} ms, p99 {d99:.2} ms");
        return;
    }
    let select1 = drain(&mut s, "SELECT %s");
    println!("  pg_jobs: {N} × SELECT 1 ................ {select1:>8.0} runs/s");
    let insert = drain(&mut s, "INSERT INTO sink VALUES (%s)");
    println!("  pg_jobs: {N} × one-row INSERT .......... {insert:>8.0} runs/s");
    if std::env::var("BENCH_ONLY").as_deref() == Ok("throughput") {
        return; // a quick look while working on the executor path
    }
    let (base, base_most) = queue_burst(&c, &mut s, None);
    println!("  pg_jobs: the same, watched every 2 ms ............ {base:>8.0} runs/s (at most {base_most} executors at once seen)");
    let (q4, q4_most) = queue_burst(&c, &mut s, Some(4));
    println!(
        "  pg_jobs: the same into a queue, max_concurrency 4 .. {q4:>8.0} runs/s ({:.0} % of unlimited; at most {q4_most} at once seen)",
        100.0 * q4 / base
    );
    let (q2, q2_most) = queue_burst(&c, &mut s, Some(2));
    println!(
        "  pg_jobs: the same into a queue, max_concurrency 2 .. {q2:>8.0} runs/s ({:.0} % of unlimited; at most {q2_most} at once seen)",
        100.0 * q2 / base
    );
    if std::env::var("BENCH_ONLY").as_deref() == Ok("queues") {
        return;
    }
    let (w50, w99) = latency(&mut s, 300);
    println!("  pg_jobs: submit→start, warm pool ........ p50 {w50:.2} ms, p99 {w99:.2} ms");
    let (d50, d99) = dependant_lag(&mut s, 300);
    println!("  pg_jobs: parent end→dependant start ...... p50 {d50:.2} ms, p99 {d99:.2} ms");
    s.batch_execute("ALTER SYSTEM SET pg_jobs.executor_idle_timeout = 0")
        .unwrap();
    s.batch_execute("SELECT pg_reload_conf()").unwrap();
    // Idle executors exit once their (old) idle timeout passes.
    wait_for("the pool to drain", Duration::from_secs(60), || {
        (one::<i64>(
            &mut s,
            "SELECT count(*) FROM jobs.workers WHERE kind = 'executor'",
        ) == 0)
            .then_some(())
    });
    let (c50, c99) = latency(&mut s, 300);
    println!("  pg_jobs: submit→start, cold (no pool) ... p50 {c50:.2} ms, p99 {c99:.2} ms");
    drop(s);

    // pg_cron, background-worker mode.
    c.stop_server("fast");
    let conf_path = c.dir.join("data/postgresql.conf");
    let mut text = std::fs::read_to_string(&conf_path).unwrap();
    text.push_str("cron.use_background_workers = on\n");
    std::fs::write(&conf_path, &text).unwrap();
    c.start_server();
    let bgw = cron_drain(&c, 1_000);
    println!("  pg_cron: 1000 × SELECT 1 due at once, background workers .. {bgw:>8.1} runs/s");

    // pg_cron, libpq mode over the socket directory.
    c.stop_server("fast");
    text.push_str(&format!(
        "cron.use_background_workers = off\ncron.host = '{}'\n",
        c.dir.display()
    ));
    std::fs::write(&conf_path, &text).unwrap();
    c.start_server();
    let libpq = cron_drain(&c, 1_000);
    println!("  pg_cron: 1000 × SELECT 1 due at once, libpq ............... {libpq:>8.1} runs/s");

    let best_cron = bgw.max(libpq);
    println!();
    println!("| measure | pg_jobs | pg_cron 1.4 (best mode) | ratio |");
    println!("|---|---|---|---|");
    println!(
        "| trivial runs/s (`SELECT 1`) | {select1:.0} | {best_cron:.1} | {:.0}× |",
        select1 / best_cron
    );
    println!("| one-row INSERT runs/s | {insert:.0} | — | — |");
    println!("| the same into a queue, max_concurrency 4 / 2 | {q4:.0} / {q2:.0} runs/s | no queues | — |");
    println!("| submit→start p50 / p99, warm | {w50:.2} / {w99:.2} ms | no ad-hoc runs | — |");
    println!("| submit→start p50 / p99, cold | {c50:.2} / {c99:.2} ms | — | — |");
    println!("| parent end→dependant start p50 / p99 | {d50:.2} / {d99:.2} ms | no dependencies | — |");
    println!("| pg_cron modes | — | bgw {bgw:.1} / libpq {libpq:.1} runs/s | — |");
}
