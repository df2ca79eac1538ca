//! Overview: what a job dashboard shows first. Throughput by status over
//! the last hour and day, what is running and queued, the workers, and the
//! latest failures with their SQLSTATE.

use super::{status, Ctx, Page};
use crate::web::chart::{self, ChartCache};
use crate::web::queries::{ts, Db};
use crate::web::WebError;
use maud::html;
use std::time::Instant;

/// Counts per minute of the runs that finished in minutes `$1..$2`, on
/// the index of finished runs.
const CHART: &str = "
    SELECT floor(extract(epoch FROM r.finished_at) / 60)::int8, r.status, count(*)
      FROM jobs.run r
     WHERE r.finished_at >= to_timestamp($1::int8 * 60) AND r.finished_at < to_timestamp($2::int8 * 60)
     GROUP BY 1, 2";

/// Runs in flight, on the index of active runs.
const IN_FLIGHT: &str = "
    SELECT count(*) FILTER (WHERE r.status = 'running'), count(*)
      FROM jobs.run r WHERE r.status = ANY (ARRAY['starting', 'running'])";

/// Queue depths from jobs.metrics (the default lane, then named queues).
const QUEUES: &str = "
    SELECT COALESCE(labels->>'queue', ''),
           COALESCE(max(value) FILTER (WHERE metric = 'pg_jobs_runs_queued'), 0)::float8,
           COALESCE(max(value) FILTER (WHERE metric = 'pg_jobs_oldest_queued_seconds'), 0)::float8
      FROM jobs.metrics
     WHERE metric IN ('pg_jobs_runs_queued', 'pg_jobs_oldest_queued_seconds')
     GROUP BY 1 ORDER BY 1";

const WORKERS: &str = "
    SELECT kind, state, count(*) FROM jobs.workers GROUP BY 1, 2 ORDER BY 1, 2";

/// The latest failures, on the small index of failed runs.
fn failures_sql() -> String {
    format!(
        "SELECT r.id, COALESCE((SELECT j.name FROM jobs.job j WHERE j.id = r.job_id), ''), r.owner::text, r.status, {},
                COALESCE(r.sqlstate, ''), left(COALESCE(r.message, ''), 160)
           FROM jobs.run r
          WHERE r.status = ANY (ARRAY['failed', 'timed_out', 'crashed'])
          ORDER BY r.finished_at DESC LIMIT 10",
        ts("r.finished_at")
    )
}

/// Counts of the minutes `lo..hi` (minute, status, runs).
fn count(db: &mut Db, name: &str, lo: i64, hi: i64) -> Result<Vec<(i64, String, i64)>, WebError> {
    Ok(db
        .query(name, CHART, &[&lo, &hi])?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

pub fn page(db: &mut Db, ctx: &Ctx, charts: &mut ChartCache) -> Result<Page, WebError> {
    let now_minute: i64 = db
        .query_one("clock", "SELECT floor(extract(epoch FROM now()) / 60)::int8", &[])?
        .get(0);
    let from = charts.count_from(now_minute);
    // To the end of the minute after now: a clock that moved on since.
    let rows = count(db, "chart", from, now_minute + 2)?;
    charts.update(now_minute, from, &rows);
    if let Some((lo, hi)) = charts.step_back(now_minute) {
        let t = Instant::now();
        let rows = count(db, "chart, back", lo, hi)?;
        charts.stepped_back(lo, hi, &rows, t.elapsed().as_secs_f64() * 1000.0);
    }
    let hour = charts.bars(now_minute, 60, 1);
    let day = charts.bars(now_minute, 96, 15);
    let uncounted_h = charts.uncounted(now_minute) as f64 / 60.0;
    let day_title = if uncounted_h > 0.0 {
        format!(
            "Runs per minute, last day (15-minute averages; still counting: the oldest {uncounted_h:.1} h not yet)"
        )
    } else {
        "Runs per minute, last day (15-minute averages)".to_owned()
    };

    let f = db.query_one("in flight", IN_FLIGHT, &[])?;
    let (running, in_flight): (i64, i64) = (f.get(0), f.get(1));
    let queues: Vec<(String, f64, f64)> = db
        .query("queues", QUEUES, &[])?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let queued: f64 = queues.iter().map(|q| q.1).sum();
    let workers: Vec<(String, String, i64)> = db
        .query("workers", WORKERS, &[])?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let failures = db.query("failures", &failures_sql(), &[])?;
    let _ = ctx;

    let body = html! {
        div.tiles {
            a.tile href="/runs?status=running" { span.n id="running-count" { (running) } span.l { "running" } }
            div.tile { span.n { (in_flight - running) } span.l { "starting" } }
            a.tile href="/queues" { span.n id="queued-count" { (queued) } span.l { "queued" } }
            a.tile href="/workers" { span.n { (workers.iter().map(|w| w.2).sum::<i64>()) } span.l { "workers" } }
        }
        div.charts {
            (chart::svg("Runs per minute, last hour", &hour, 1, ("−60 min", "now")))
            (chart::svg(&day_title, &day, 15, ("−24 h", "now")))
            p.legend { span.key.succeeded {} "succeeded " span.key.failed {} "failed, timed out, crashed " span.key.other {} "cancelled, skipped" }
        }
        div.cols {
            section {
                h2 { "Queues" }
                table {
                    thead { tr { th { "queue" } th.num { "queued" } th.num { "oldest due waits" } } }
                    tbody {
                        @for (name, n, oldest) in &queues {
                            tr {
                                td { @if name.is_empty() { em { "(no named queue)" } } @else { (name) } }
                                td.num { (n) }
                                td.num { (super::duration_ms(Some(oldest * 1000.0))) }
                            }
                        }
                    }
                }
            }
            section {
                h2 { "Workers" }
                table {
                    thead { tr { th { "kind" } th { "state" } th.num { "processes" } } }
                    tbody {
                        @for (kind, state, n) in &workers {
                            tr { td { (kind) } td { (state) } td.num { (n) } }
                        }
                    }
                }
            }
        }
        section {
            h2 { "Latest failures" }
            @if failures.is_empty() {
                p.none { "None." }
            } @else {
                table id="failures" {
                    thead { tr { th { "run" } th { "job" } th { "role" } th { "status" } th { "finished" } th { "SQLSTATE" } th { "message" } } }
                    tbody {
                        @for r in &failures {
                            @let id: i64 = r.get(0);
                            tr {
                                td { a href=(format!("/runs/{id}")) { (id) } }
                                td { (r.get::<_, String>(1)) }
                                td { (r.get::<_, String>(2)) }
                                td { (status(&r.get::<_, String>(3))) }
                                td.ts { (r.get::<_, Option<String>>(4).unwrap_or_default()) }
                                td.sqlstate { (r.get::<_, String>(5)) }
                                td.msg { (r.get::<_, String>(6)) }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(Page {
        title: "Overview".into(),
        body,
    })
}
