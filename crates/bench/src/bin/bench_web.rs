//! What the pages of `pg_jobs web` cost to render (issue 21: under 200 ms
//! with 100,000 jobs and a million runs of history).
//!
//! The data set of bench_top (`pg_jobs_bench::load_history`): a throwaway cluster gets 100,000 scheduled
//! jobs, a million finished runs spread over the last day (one in 200
//! failed), a paused queue holding 1,000 runs and four runs in flight; a
//! tenth of the jobs, and their runs, belong to another role. Then `pg_jobs web --measure 20` (the binary in
//! `PG_JOBS_BIN`) renders every page 20 times and prints the median and
//! slowest wall time of each (its queries and its HTML, as the server
//! spends them), as a superuser (every role's runs) and as a plain role
//! (row-level security on every row it reads), and the scans of each
//! query's plan; it fails if a plan reads jobs.run or jobs.job whole.

use pg_jobs_itest::{one, Cluster};
use std::process::Command;
use std::time::Instant;

fn main() {
    let bin = std::env::var("PG_JOBS_BIN").expect("PG_JOBS_BIN: the pg_jobs command to measure");
    let conf = "pg_jobs.max_executors = 8\npg_jobs.log_runs = off";
    let c = Cluster::start("bench-web", conf);
    c.connect("postgres")
        .batch_execute("CREATE DATABASE bench")
        .unwrap();
    let mut s = c.connect("bench");
    let t0 = Instant::now();
    pg_jobs_bench::load_history(&mut s);
    let jobs: i64 = one(&mut s, "SELECT count(*) FROM jobs.job");
    let runs: i64 = one(&mut s, "SELECT count(*) FROM jobs.run");
    println!(
        "pg_jobs web page render times — {jobs} jobs, {runs} runs of history (loaded in {:.0} s), PostgreSQL {}",
        t0.elapsed().as_secs_f64(),
        pg_jobs_itest::pg_major()
    );
    let mut failed = false;
    for role in ["postgres", "app_user"] {
        println!("\nas {role}:");
        let o = Command::new(&bin)
            .args(["web", "--measure", "20"])
            .env("PGHOST", c.dir.display().to_string())
            .env("PGPORT", c.port.to_string())
            .env("PGUSER", role)
            .env("PGDATABASE", "bench")
            .output()
            .expect("the pg_jobs command runs");
        print!("{}", String::from_utf8_lossy(&o.stdout));
        if !o.status.success() {
            eprintln!("{}", String::from_utf8_lossy(&o.stderr));
            failed = true;
        }
    }
    if failed {
        std::process::exit(1);
    }
}
