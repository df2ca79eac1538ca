//! What `pg_jobs top` reads at each refresh: a handful of queries, each on
//! an index or on shared memory, so a refresh stays cheap with a long
//! history (`pg_jobs top --measure` prints what they cost the server).

use postgres::Client;
use std::time::Instant;

/// One live worker (`jobs.workers`).
#[derive(Debug, Clone, Default)]
pub struct Worker {
    pub kind: String,
    pub database: String,
    pub role: String,
    pub state: String,
    pub run: String,
    pub since_s: f64,
}

/// A run that is starting or running.
#[derive(Debug, Clone, Default)]
pub struct Running {
    pub id: i64,
    pub job: String,
    pub role: String,
    pub for_s: f64,
    pub command: String,
    /// Its job is enabled (`None`: a submitted run).
    pub job_enabled: Option<bool>,
}

/// A run that ended failed, timed out or crashed.
#[derive(Debug, Clone, Default)]
pub struct Failure {
    pub id: i64,
    pub job: String,
    pub role: String,
    pub status: String,
    pub at: String,
    pub sqlstate: String,
    pub message: String,
}

/// A queue's depth: the runs outside named queues (`name` empty), or a
/// named queue.
#[derive(Debug, Clone, Default)]
pub struct Depth {
    pub name: String,
    pub queued: f64,
    pub oldest_s: f64,
}

/// Runs started, succeeded and failed so far: the server's counters (for a
/// role that monitors the cluster: every database), else what the role
/// sees in this database's history since `top` started.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub started: f64,
    pub succeeded: f64,
    pub failed: f64,
}

/// Everything one refresh read.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub database: String,
    pub role: String,
    pub workers: Vec<Worker>,
    pub running: Vec<Running>,
    pub failures: Vec<Failure>,
    pub depths: Vec<Depth>,
    pub totals: Totals,
    /// The counters are cluster-wide (the role monitors the cluster).
    pub cluster_wide: bool,
    /// Wall time of the refresh's queries, in milliseconds.
    pub took_ms: f64,
}

/// What the user narrowed the lists to: runs whose job or role contains it.
#[derive(Debug, Clone, Default)]
pub struct Filter(pub String);

/// The queries of one refresh, by name (`--measure` reports each). `$1`
/// is the filter (empty: everything).
pub const QUERIES: [(&str, &str); 6] = [
    (
        "whoami",
        "SELECT current_database()::text, current_user::text, jobs._monitors()",
    ),
    (
        "workers",
        "SELECT kind, COALESCE(database::text, ''), COALESCE(role::text, ''), state, COALESCE(run_id::text, ''),
                COALESCE(extract(epoch FROM now() - since), 0)::float8
           FROM jobs.workers ORDER BY kind, database, pid",
    ),
    (
        "running",
        "SELECT r.id, COALESCE(j.name, ''), r.owner::text,
                COALESCE(extract(epoch FROM now() - r.started_at), 0)::float8,
                left(regexp_replace(r.command, '\\s+', ' ', 'g'), 60), j.enabled
           FROM jobs.run r LEFT JOIN jobs.job j ON j.id = r.job_id
          WHERE r.status = ANY ('{starting,running}')
            AND ($1 = '' OR strpos(COALESCE(j.name, ''), $1) > 0 OR strpos(r.owner::text, $1) > 0)
          ORDER BY r.started_at NULLS LAST, r.id LIMIT 20",
    ),
    (
        "failures",
        "SELECT r.id, COALESCE(j.name, ''), r.owner::text, r.status, to_char(r.finished_at, 'HH24:MI:SS'),
                COALESCE(r.sqlstate, ''), left(regexp_replace(COALESCE(r.message, ''), '\\s+', ' ', 'g'), 100)
           FROM jobs.run r LEFT JOIN jobs.job j ON j.id = r.job_id
          WHERE r.status = ANY (ARRAY['failed', 'timed_out', 'crashed'])
            AND ($1 = '' OR strpos(COALESCE(j.name, ''), $1) > 0 OR strpos(r.owner::text, $1) > 0)
          ORDER BY r.finished_at DESC LIMIT 10",
    ),
    (
        "queues",
        "SELECT COALESCE(labels->>'queue', ''),
                max(value) FILTER (WHERE metric = 'pg_jobs_runs_queued'),
                max(value) FILTER (WHERE metric = 'pg_jobs_oldest_queued_seconds')
           FROM jobs.metrics
          WHERE metric IN ('pg_jobs_runs_queued', 'pg_jobs_oldest_queued_seconds')
          GROUP BY 1 ORDER BY 1",
    ),
    (
        "totals",
        "SELECT COALESCE(sum(value) FILTER (WHERE metric = 'pg_jobs_runs_started_total'), 0)::float8,
                COALESCE(sum(value) FILTER (WHERE metric = 'pg_jobs_runs_total' AND label_value = 'succeeded'), 0)::float8,
                COALESCE(sum(value) FILTER (WHERE metric = 'pg_jobs_runs_total'
                                              AND label_value IN ('failed', 'timed_out', 'crashed')), 0)::float8
           FROM jobs._metrics()",
    ),
];

/// For a role that does not monitor the cluster (no counters): what it
/// sees of this database's runs since `$1` (epoch seconds). On the
/// indexes of finished runs and of runs in flight.
const TOTALS_FROM_HISTORY: &str = "
    SELECT (SELECT count(*) FROM jobs.run r WHERE r.finished_at > to_timestamp($1) AND r.started_at > to_timestamp($1))
         + (SELECT count(*) FROM jobs.run r WHERE r.status = ANY ('{starting,running}') AND r.started_at > to_timestamp($1)),
           (SELECT count(*) FROM jobs.run r WHERE r.finished_at > to_timestamp($1) AND r.status = 'succeeded'),
           (SELECT count(*) FROM jobs.run r WHERE r.finished_at > to_timestamp($1)
                                              AND r.status = ANY (ARRAY['failed', 'timed_out', 'crashed']))";

fn sql(name: &str) -> &'static str {
    QUERIES.iter().find(|(n, _)| *n == name).map_or("", |(_, s)| s)
}

/// Read one snapshot as the connecting role. `since` (epoch seconds) is
/// when `top` started, for a role without the counters.
pub fn read(c: &mut Client, filter: &Filter, since: f64) -> Result<Snapshot, String> {
    let t0 = Instant::now();
    let e = crate::db_error;
    let who = c.query_one(sql("whoami"), &[]).map_err(e)?;
    let mut s = Snapshot {
        database: who.get(0),
        role: who.get(1),
        cluster_wide: who.get(2),
        ..Snapshot::default()
    };
    s.workers = c
        .query(sql("workers"), &[])
        .map_err(e)?
        .iter()
        .map(|r| Worker {
            kind: r.get(0),
            database: r.get(1),
            role: r.get(2),
            state: r.get(3),
            run: r.get(4),
            since_s: r.get(5),
        })
        .collect();
    let f = filter.0.as_str();
    s.running = c
        .query(sql("running"), &[&f])
        .map_err(e)?
        .iter()
        .map(|r| Running {
            id: r.get(0),
            job: r.get(1),
            role: r.get(2),
            for_s: r.get(3),
            command: r.get(4),
            job_enabled: r.get(5),
        })
        .collect();
    s.failures = c
        .query(sql("failures"), &[&f])
        .map_err(e)?
        .iter()
        .map(|r| Failure {
            id: r.get(0),
            job: r.get(1),
            role: r.get(2),
            status: r.get(3),
            at: r.get(4),
            sqlstate: r.get(5),
            message: r.get(6),
        })
        .collect();
    s.depths = c
        .query(sql("queues"), &[])
        .map_err(e)?
        .iter()
        .map(|r| Depth {
            name: r.get(0),
            queued: r.get::<_, Option<f64>>(1).unwrap_or(0.0),
            oldest_s: r.get::<_, Option<f64>>(2).unwrap_or(0.0),
        })
        .collect();
    let t = if s.cluster_wide {
        c.query_one(sql("totals"), &[]).map_err(e)?
    } else {
        c.query_one(TOTALS_FROM_HISTORY, &[&since]).map_err(e)?
    };
    let num = |i: usize| -> f64 {
        t.try_get::<_, f64>(i)
            .or_else(|_| t.try_get::<_, i64>(i).map(|v| v as f64))
            .unwrap_or(0.0)
    };
    s.totals = Totals {
        started: num(0),
        succeeded: num(1),
        failed: num(2),
    };
    s.took_ms = t0.elapsed().as_secs_f64() * 1000.0;
    Ok(s)
}

/// Server time (planning + execution, from `EXPLAIN ANALYZE`) of each
/// query of a refresh, in milliseconds, as the connecting role runs them
/// (the totals from the history for a role without the counters).
pub fn measure(c: &mut Client) -> Result<Vec<(&'static str, f64)>, String> {
    let monitors: bool = c
        .query_one("SELECT jobs._monitors()", &[])
        .map_err(crate::db_error)?
        .get(0);
    let since = super::epoch_now() - 60.0;
    let mut out = Vec::new();
    for (name, q) in QUERIES {
        let q = if name == "totals" && !monitors {
            TOTALS_FROM_HISTORY
        } else {
            q
        };
        let explain = format!("EXPLAIN (ANALYZE, FORMAT JSON) {q}");
        let rows = if q == TOTALS_FROM_HISTORY {
            c.query(&explain, &[&since])
        } else if q.contains("$1") {
            c.query(&explain, &[&""])
        } else {
            c.query(&explain, &[])
        }
        .map_err(crate::db_error)?;
        // EXPLAIN (FORMAT JSON) returns one row of type json.
        let v: serde_json::Value = rows
            .first()
            .ok_or("EXPLAIN returned nothing")?
            .try_get(0)
            .map_err(|e| format!("reading EXPLAIN's plan: {e}"))?;
        let ms =
            v[0]["Planning Time"].as_f64().unwrap_or(0.0) + v[0]["Execution Time"].as_f64().unwrap_or(0.0);
        out.push((name, ms));
    }
    Ok(out)
}
