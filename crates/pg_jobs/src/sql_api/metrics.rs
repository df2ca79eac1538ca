//! `jobs._metrics()`: the counters pg_jobs keeps in shared memory since the
//! server started ([`crate::shmem::all_counts`]), one row per Prometheus
//! sample; read them through the view `jobs.metrics`, which adds the
//! gauges read from this database's tables and the workers.
//!
//! The counters are cluster-wide and count every role's runs, so only a
//! role that monitors the cluster (superuser, `pg_read_all_stats`,
//! `pg_monitor`) gets them, as only such a role sees every session in
//! `pg_stat_activity`; any other role gets no rows.

use crate::shmem;
use pg_jobs_core::metrics::{bound_seconds, Histogram, DURATION_BOUNDS_US, ENDINGS, LAG_BOUNDS_US};
use pgrx::prelude::*;

/// One sample: metric, type, help, database, one optional label and its
/// value, and the value.
type Sample = (
    String,
    &'static str,
    &'static str,
    pg_sys::Oid,
    Option<&'static str>,
    Option<String>,
    f64,
);

/// The server-lifetime counters, one row per sample.
#[pg_extern(sql = false)]
#[allow(clippy::type_complexity)]
fn _metrics() -> TableIterator<
    'static,
    (
        name!(metric, String),
        name!(type, String),
        name!(help, String),
        name!(datid, pg_sys::Oid),
        name!(label, Option<String>),
        name!(label_value, Option<String>),
        name!(value, f64),
    ),
> {
    // SAFETY: GetUserId only reads the backend's current user, set in any
    // connected session (SQL functions run in one).
    let me = unsafe { pg_sys::GetUserId() };
    let mut rows: Vec<Sample> = Vec::new();
    if crate::pg::acl::monitors(me) {
        for (db, c) in shmem::all_counts() {
            let db = pg_sys::Oid::from(db);
            for (status, n) in ENDINGS.iter().zip(c.ended) {
                rows.push((
                    "pg_jobs_runs_total".into(),
                    "counter",
                    "Runs that ended since the server started, by database and status.",
                    db,
                    Some("status"),
                    Some(status.as_str().to_owned()),
                    n as f64,
                ));
            }
            let plain: [(&str, &'static str, u64); 4] = [
                (
                    "pg_jobs_runs_started_total",
                    "Commands an executor began to run since the server started.",
                    c.started,
                ),
                (
                    "pg_jobs_executor_pool_hits_total",
                    "Runs started by an executor that was already connected (pooled).",
                    c.pool_hits,
                ),
                (
                    "pg_jobs_executor_cold_starts_total",
                    "Runs that started a new executor process.",
                    c.cold_starts,
                ),
                (
                    "pg_jobs_scheduler_passes_total",
                    "Passes of the database's scheduler since the server started.",
                    c.scheduler_passes,
                ),
            ];
            for (metric, help, n) in plain {
                rows.push((metric.into(), "counter", help, db, None, None, n as f64));
            }
            histogram(
                &mut rows,
                "pg_jobs_run_start_lag_seconds",
                "Time from when runs were due to when they started.",
                db,
                &c.start_lag,
                &LAG_BOUNDS_US,
            );
            histogram(
                &mut rows,
                "pg_jobs_run_duration_seconds",
                "Time runs took, from start to end.",
                db,
                &c.duration,
                &DURATION_BOUNDS_US,
            );
        }
    }
    TableIterator::new(
        rows.into_iter()
            .map(|(m, t, h, db, l, lv, v)| (m, t.to_owned(), h.to_owned(), db, l.map(str::to_owned), lv, v)),
    )
}

/// The samples of histogram `name`: `_bucket` per bound (and `+Inf`),
/// `_sum` in seconds, `_count`.
fn histogram(
    rows: &mut Vec<Sample>,
    name: &str,
    help: &'static str,
    db: pg_sys::Oid,
    h: &Histogram,
    bounds: &[u64; pg_jobs_core::metrics::BUCKETS],
) {
    let les = bounds
        .iter()
        .map(|&b| format!("{}", bound_seconds(b)))
        .chain(std::iter::once("+Inf".to_owned()));
    for (le, n) in les.zip(h.cumulative()) {
        rows.push((
            format!("{name}_bucket"),
            "histogram",
            help,
            db,
            Some("le"),
            Some(le),
            n as f64,
        ));
    }
    rows.push((
        format!("{name}_sum"),
        "histogram",
        help,
        db,
        None,
        None,
        h.sum_us as f64 / 1e6,
    ));
    rows.push((
        format!("{name}_count"),
        "histogram",
        help,
        db,
        None,
        None,
        h.count as f64,
    ));
}
