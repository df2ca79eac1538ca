//! What a refresh of `pg_jobs top` costs the server (issue 17: under 2 ms
//! with 100,000 jobs and a million rows of history).
//!
//! A throwaway cluster gets the data set of `pg_jobs_bench::load_history`:
//! 100,000 scheduled jobs, a million finished runs spread over the last day
//! (one in 200 failed), a paused queue holding 1,000 runs and four runs in
//! flight; a tenth of the jobs, and their runs, another role's.
//! Then `pg_jobs top --measure 30` (the binary in `PG_JOBS_BIN`) runs each
//! refresh's queries under `EXPLAIN ANALYZE` and prints the median server
//! time (planning + execution) per query and per refresh, as a superuser
//! (every role's runs, the counters) and as a plain role (row-level
//! security on every row it reads).

use pg_jobs_itest::{one, Cluster};
use std::process::Command;
use std::time::Instant;

fn main() {
    let bin = std::env::var("PG_JOBS_BIN").expect("PG_JOBS_BIN: the pg_jobs command to measure");
    let conf = "pg_jobs.max_executors = 8\npg_jobs.log_runs = off";
    let c = Cluster::start("bench-top", conf);
    c.connect("postgres")
        .batch_execute("CREATE DATABASE bench")
        .unwrap();
    let mut s = c.connect("bench");
    let t0 = Instant::now();
    pg_jobs_bench::load_history(&mut s);
    let jobs: i64 = one(&mut s, "SELECT count(*) FROM jobs.job");
    let runs: i64 = one(&mut s, "SELECT count(*) FROM jobs.run");
    println!(
        "pg_jobs top refresh cost — {jobs} jobs, {runs} runs of history (loaded in {:.0} s), PostgreSQL {}",
        t0.elapsed().as_secs_f64(),
        pg_jobs_itest::pg_major()
    );
    for role in ["postgres", "app_user"] {
        println!("\nas {role}:");
        let o = Command::new(&bin)
            .args(["top", "--measure", "30"])
            .env("PGHOST", c.dir.display().to_string())
            .env("PGPORT", c.port.to_string())
            .env("PGUSER", role)
            .env("PGDATABASE", "bench")
            .output()
            .expect("the pg_jobs command runs");
        print!("{}", String::from_utf8_lossy(&o.stdout));
        if !o.status.success() {
            eprintln!("{}", String::from_utf8_lossy(&o.stderr));
            std::process::exit(1);
        }
    }
}
