//! Part 4 of `make bench`: 50 jobs due at the same instant, every second
//! for 20 s, under durable settings, and where a run's milliseconds go from
//! its due instant to its command's first statement:
//!
//! * wake: due instant → the scheduler's pass begins (`submitted_at` is
//!   the pass transaction's start);
//! * pass: the pass begins → the instant's first run starts (queueing the
//!   50 runs, the pass's commit, an executor's wake-up and claim);
//! * drain: the instant's first start → this run's start (the runs ahead
//!   of it going through the executors);
//! * executor: the run's start (the executor's clock as it takes the run)
//!   → the command's `clock_timestamp()` (role, settings, the statement).
//!
//! And the floor two cores put under the drain: the server's CPU time per
//! job in the durable burst of part 1 × 50 / cores.

use pg_jobs_bench::{pct, server_cpu};
use pg_jobs_itest::one;
use postgres::Client;
use std::time::Duration;

const JOBS: i64 = 50;
const SECONDS: f64 = 20.0;

pub struct Breakdown {
    runs: usize,
    lag: Vec<f64>,
    wake: Vec<f64>,
    pass: Vec<f64>,
    drain: Vec<f64>,
    executor: Vec<f64>,
    /// Server CPU over the window per run (idle processes included).
    cpu_ms_per_run: f64,
    cpus: usize,
}

fn column(s: &mut Client, sql: &str) -> Vec<f64> {
    let mut v: Vec<f64> = s
        .query(sql, &[])
        .unwrap()
        .iter()
        .map(|r| r.get::<_, f64>(0))
        .collect();
    v.sort_by(f64::total_cmp);
    v
}

pub fn measure(s: &mut Client, pm: i32, cpus: usize) -> Breakdown {
    println!("== {JOBS} jobs due at the same second, {SECONDS} s, durable ==");
    s.batch_execute("TRUNCATE sink, lat; DELETE FROM jobs.run")
        .unwrap();
    s.execute(
        "SELECT jobs.schedule('same' || g, '* * * * * *',
                              format('INSERT INTO lat (sys, at) VALUES (%L, clock_timestamp())', 'same' || g))
           FROM generate_series(1, $1::int8) g",
        &[&JOBS],
    )
    .unwrap();
    // From the second whole second on (the first may be partial).
    let start: f64 = one(
        s,
        "SELECT ceil(extract(epoch FROM clock_timestamp()))::float8 + 1",
    );
    let cpu0 = server_cpu(pm);
    let wait = start + SECONDS - one::<f64>(s, "SELECT extract(epoch FROM clock_timestamp())::float8");
    // The measured window is wall-clock time, not a wait for a condition.
    std::thread::sleep(Duration::from_secs_f64(wait.max(0.0)));
    let cpu1 = server_cpu(pm);
    // Paused, not dropped: the queries below name the runs' jobs.
    s.batch_execute("SELECT jobs.pause(name) FROM jobs.job WHERE name LIKE 'same%'")
        .unwrap();
    let window = format!(
        "r.scheduled_for >= to_timestamp({start}) AND r.scheduled_for < to_timestamp({})",
        start + SECONDS
    );
    let runs_sql = format!(
        "FROM jobs.run r JOIN jobs.job j ON j.id = r.job_id
           JOIN lat l ON l.sys = j.name AND l.at >= r.scheduled_for AND l.at < r.scheduled_for + interval '1 second'
          WHERE {window} AND r.status = 'succeeded'"
    );
    let ms = |e: &str| format!("(extract(epoch FROM {e}) * 1000)::float8");
    let lag = column(s, &format!("SELECT {} {runs_sql}", ms("l.at - r.scheduled_for")));
    let wake = column(
        s,
        &format!("SELECT {} {runs_sql}", ms("r.submitted_at - r.scheduled_for")),
    );
    let executor = column(s, &format!("SELECT {} {runs_sql}", ms("l.at - r.started_at")));
    let pass = column(
        s,
        &format!(
            "SELECT {} FROM jobs.run r WHERE {window} GROUP BY r.scheduled_for",
            ms("min(r.started_at) - min(r.submitted_at)")
        ),
    );
    let drain = column(
        s,
        &format!(
            "SELECT {} FROM jobs.run r JOIN (SELECT scheduled_for, min(started_at) AS first FROM jobs.run r
                                               WHERE {window} GROUP BY scheduled_for) f USING (scheduled_for)
              WHERE {window}",
            ms("r.started_at - f.first")
        ),
    );
    let runs = lag.len();
    if std::env::var("BENCH_DEBUG").is_ok() {
        for r in s
            .query(&format!("SELECT r.scheduled_for::text, r.submitted_at::text, r.started_at::text, l.at::text, r.finished_at::text {runs_sql} LIMIT 3"), &[])
            .unwrap()
        {
            println!("{:?}", (0..5).map(|i| r.get::<_, String>(i)).collect::<Vec<_>>());
        }
    }
    s.batch_execute("SELECT jobs.unschedule(name) FROM jobs.job WHERE name LIKE 'same%'")
        .unwrap();
    Breakdown {
        runs,
        cpu_ms_per_run: (cpu1 - cpu0) * 1000.0 / runs.max(1) as f64,
        lag,
        wake,
        pass,
        drain,
        executor,
        cpus,
    }
}

/// `burst_cpu_ms`: the server's CPU per job in the durable burst, if run.
pub fn print(b: &Breakdown, burst_cpu_ms: Option<f64>) {
    let row = |name: &str, v: &[f64]| {
        println!(
            "| {name} | {:.2} | {:.2} | {:.2} |",
            pct(v, 0.5),
            pct(v, 0.99),
            pct(v, 1.0)
        )
    };
    println!(
        "### {JOBS} jobs due at the same second, every second for {SECONDS} s ({} runs), durable\n",
        b.runs
    );
    println!("| phase (ms) | p50 | p99 | max |");
    println!("|---|---|---|---|");
    row("**due → the command starts**", &b.lag);
    row("wake: due → the scheduler's pass begins", &b.wake);
    row(
        "pass: begins → the instant's first run starts (one value per instant)",
        &b.pass,
    );
    row("drain: the instant's first start → this run's start", &b.drain);
    row(
        "executor: the run's start → its command's first statement",
        &b.executor,
    );
    println!(
        "\nServer CPU over the window per run (every process, idle ones too): {:.3} ms.",
        b.cpu_ms_per_run
    );
    if let Some(ms) = burst_cpu_ms {
        println!(
            "The durable burst's server CPU per job is {ms:.3} ms: {JOBS} runs on {} cores need at least {:.1} ms of wall time (the drain's floor).\n",
            b.cpus,
            ms * JOBS as f64 / b.cpus.max(1) as f64
        );
    }
}
