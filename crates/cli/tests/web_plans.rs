//! Every query of every page of `pg_jobs web` uses indexes (issue 21):
//! against a cluster with a long, ANALYZEd history, `pg_jobs web
//! --measure` renders each page and prints the scans of each query's plan
//! (EXPLAIN), as a superuser and as a plain role (row-level security).
//! None may read `jobs.run` or `jobs.job` whole (Seq Scan). The render
//! times at full size (100,000 jobs, a million runs) come from `make
//! bench-web`; this test checks the plans at a size CI loads quickly.

use pg_jobs_itest::Cluster;
use std::process::Command;

#[test]
fn page_queries_use_indexes() {
    let (c, mut s) = Cluster::with_app_db("web_plans", "pg_jobs.log_runs = off");
    s.batch_execute(
        "CREATE ROLE app_user LOGIN;
         SELECT jobs.schedule('j' || g, '0 3 * * *', 'SELECT 1',
                              run_as => CASE WHEN g % 10 = 0 THEN 'app_user' END::regrole)
           FROM generate_series(1, 20000) g;
         INSERT INTO jobs.run (job_id, owner, command, status, scheduled_for, submitted_at, started_at, finished_at,
                               sqlstate, message, datid)
         SELECT 1 + g % 20000,
                CASE WHEN (1 + g % 20000) % 10 = 0 THEN 'app_user' ELSE 'postgres' END::regrole,
                'SELECT 1',
                CASE WHEN g % 200 = 0 THEN 'failed' ELSE 'succeeded' END,
                t, t, t, t + interval '3 ms',
                CASE WHEN g % 200 = 0 THEN '22012' END,
                CASE WHEN g % 200 = 0 THEN 'division by zero' END,
                (SELECT oid FROM pg_database WHERE datname = current_database())
           FROM generate_series(1, 300000) g,
                LATERAL (SELECT now() - (300000 - g) * interval '250 ms') AS x(t);",
    )
    .unwrap();
    // One statement each: VACUUM cannot run in a transaction block.
    s.batch_execute("VACUUM ANALYZE jobs.run").unwrap();
    s.batch_execute("ANALYZE jobs.job").unwrap();
    s.batch_execute(
        "SELECT jobs.create_queue('held', paused => true);
         SELECT jobs.submit('SELECT 1', queue => 'held') FROM generate_series(1, 100);",
    )
    .unwrap();

    for role in ["postgres", "app_user"] {
        let dir = c.dir.display().to_string();
        let o = Command::new(env!("CARGO_BIN_EXE_pg_jobs"))
            .args(["web", "--measure", "2"])
            .env_clear()
            .env("PGHOST", &dir)
            .env("PGPORT", c.port.to_string())
            .env("PGUSER", role)
            .env("PGDATABASE", "app")
            .env("HOME", &dir)
            .output()
            .expect("the pg_jobs binary runs");
        let out = String::from_utf8_lossy(&o.stdout);
        // Shown with --nocapture.
        println!("as {role}:\n{out}");
        assert!(
            o.status.success(),
            "as {role}: {out}\n{}",
            String::from_utf8_lossy(&o.stderr)
        );
        // Every page was measured and explained.
        for page in [
            "overview / chart",
            "overview / failures",
            "jobs / jobs",
            "jobs / strips",
            "runs / runs",
            "runs?status=failed / runs",
            "runs?job=(first job) / runs",
            "run (latest) / run",
            "queues / queues",
            "daemons / daemons",
            "workers / workers",
        ] {
            assert!(
                out.contains(&format!("  {page}: ")),
                "as {role}, no plan of {page}:\n{out}"
            );
        }
        let whole: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("Seq Scan on jobs.run") || l.contains("Seq Scan on jobs.job"))
            .collect();
        assert!(
            whole.is_empty(),
            "as {role}, plans that read a table whole:\n{}",
            whole.join("\n")
        );
        // The scans are there to be checked: the history is read by index.
        assert!(out.contains("on jobs.run using run_pkey"), "{out}");
    }
}
