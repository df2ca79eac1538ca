//! What the benchmark binaries measure with: percentiles, a process's CPU
//! time and wake-ups (read from /proc), and the large history the
//! dashboards are measured against.

use pg_jobs_itest::{one, wait_for};
use postgres::Client;
use std::time::Duration;

/// The `p` quantile (0–1) of `sorted`, nearest rank; NaN when empty.
pub fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// (voluntary context switches, CPU ms) of a process.
pub fn proc_cost(pid: i32) -> (u64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let ctx = status
        .lines()
        .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is 14th, stime 15th overall.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf takes a constant name and no pointers.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ctx, ticks as f64 * 1000.0 / hz)
}

/// CPU seconds the server has used since it started: the postmaster's own,
/// every living server process's, and those of the ones that ended (the
/// postmaster waits for its children, so the kernel adds their times to its
/// children's). A difference of two readings is the server's CPU between them.
pub fn server_cpu(postmaster_pid: i32) -> f64 {
    let fields = |pid: &str| -> Option<Vec<u64>> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // After the command name (in parentheses): state, ppid, …; utime is
        // the 14th field overall, stime 15th, cutime 16th, cstime 17th.
        let rest = stat.rsplit_once(')')?.1;
        Some(
            rest.split_whitespace()
                .map(|v| v.parse::<i64>().map_or(0, |n| n.max(0) as u64))
                .collect(),
        )
    };
    let Some(pm) = fields(&postmaster_pid.to_string()) else {
        return f64::NAN;
    };
    let mut ticks = pm[11] + pm[12] + pm[13] + pm[14];
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else {
            continue;
        };
        if let Some(f) = fields(pid).filter(|f| f.get(1) == Some(&(postmaster_pid as u64))) {
            ticks += f[11] + f[12];
        }
    }
    // SAFETY: sysconf takes a constant name and no pointers.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks as f64 / hz
}

/// The data set `pg_jobs top` and `pg_jobs web` are measured against, in
/// `s`'s database: 100,000 scheduled jobs, a million finished runs spread
/// over the last day (one in 200 failed, in runs of ten, so that each
/// role has its share), a paused queue holding 1,000 runs and four runs in
/// flight; a tenth of the jobs, and their runs, belong to the role
/// `app_user` (made here).
pub fn load_history(s: &mut Client) {
    s.batch_execute(
        "CREATE EXTENSION pg_jobs;
         CREATE ROLE app_user LOGIN;
         SELECT jobs.schedule('j' || g, '0 3 * * *', 'SELECT 1',
                              run_as => CASE WHEN g % 10 = 0 THEN 'app_user' END::regrole)
           FROM generate_series(1, 100000) g;",
    )
    .unwrap();
    s.batch_execute(
        "INSERT INTO jobs.run (job_id, owner, command, status, scheduled_for, submitted_at, started_at, finished_at,
                               sqlstate, message, datid)
         SELECT 1 + g % 100000,
                CASE WHEN (1 + g % 100000) % 10 = 0 THEN 'app_user' ELSE 'postgres' END::regrole,
                'SELECT 1',
                CASE WHEN (g / 10) % 200 = 0 THEN 'failed' ELSE 'succeeded' END,
                t, t, t, t + interval '3 ms',
                CASE WHEN (g / 10) % 200 = 0 THEN '22012' END,
                CASE WHEN (g / 10) % 200 = 0 THEN 'division by zero' END,
                (SELECT oid FROM pg_database WHERE datname = current_database())
           FROM generate_series(1, 1000000) g,
                LATERAL (SELECT now() - (1000000 - g) * interval '80 ms') AS x(t)",
    )
    .unwrap();
    // One statement each: VACUUM cannot run in the implicit transaction
    // of a multi-statement string.
    s.batch_execute("VACUUM ANALYZE jobs.run").unwrap();
    s.batch_execute("ANALYZE jobs.job").unwrap();
    s.batch_execute(
        "SELECT jobs.create_queue('held', paused => true);
         SELECT jobs.submit('SELECT 1', queue => 'held') FROM generate_series(1, 1000);
         SELECT jobs.submit('SELECT pg_sleep(3600)') FROM generate_series(1, 4);",
    )
    .unwrap();
    wait_for("four runs in flight", Duration::from_secs(120), || {
        let n: i64 = one(s, "SELECT count(*) FROM jobs.run WHERE status = 'running'");
        (n == 4).then_some(())
    });
}
