//! `pg_jobs metrics`: the rows of `jobs.metrics` in the Prometheus text
//! exposition format, printed once or served over HTTP (`--listen`).
//!
//! Every scrape reads the view afresh, as the connecting role, through one
//! connection kept by a thread of its own (the `postgres` client blocks, so
//! it lives outside the HTTP server's async runtime; scrapes queue for it).

use postgres::Client;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::mpsc;

/// Where `--listen` serves by default: loopback, one port above
/// postgres_exporter's 9187, so both can run on one host.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9188";

/// One row of `jobs.metrics`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub metric: String,
    pub kind: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub help: String,
}

/// Read `jobs.metrics` as the connecting role.
pub fn read(c: &mut Client) -> Result<Vec<Sample>, String> {
    let rows = c
        .query(
            "SELECT metric, type, labels::text, value, help FROM jobs.metrics",
            &[],
        )
        .map_err(crate::db_error)?;
    rows.iter()
        .map(|r| {
            let labels: String = r.get(2);
            Ok(Sample {
                metric: r.get(0),
                kind: r.get(1),
                labels: serde_json::from_str(&labels).map_err(|e| {
                    format!("jobs.metrics returned labels that are not a JSON object of strings: {e}")
                })?,
                value: r.get(3),
                help: r.get(4),
            })
        })
        .collect()
}

/// The family a sample belongs to: a histogram's `_bucket`, `_sum` and
/// `_count` samples are one family, named without the suffix.
fn family(s: &Sample) -> &str {
    if s.kind == "histogram" {
        for suffix in ["_bucket", "_sum", "_count"] {
            if let Some(f) = s.metric.strip_suffix(suffix) {
                return f;
            }
        }
    }
    &s.metric
}

/// A label value as the exposition format quotes it.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// A sample value: integers without a fraction, infinities as `+Inf`/`-Inf`.
fn number(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v.fract() == 0.0 && v.abs() < 9.0e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// `samples` in the text exposition format (version 0.0.4): each family's
/// `# HELP` and `# TYPE` once, then all its samples together, families in
/// the order they first appear.
pub fn exposition(samples: &[Sample]) -> String {
    let mut order: Vec<&str> = Vec::new();
    let mut by_family: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for s in samples {
        let f = family(s);
        if !by_family.contains_key(f) {
            order.push(f);
        }
        by_family.entry(f).or_default().push(s);
    }
    let mut out = String::new();
    for f in order {
        let members = &by_family[f];
        let first = members[0];
        let _ = writeln!(
            out,
            "# HELP {f} {}",
            first.help.replace('\\', "\\\\").replace('\n', "\\n")
        );
        let _ = writeln!(out, "# TYPE {f} {}", first.kind);
        for s in members {
            let labels: Vec<String> = s
                .labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            if labels.is_empty() {
                let _ = writeln!(out, "{} {}", s.metric, number(s.value));
            } else {
                let _ = writeln!(out, "{}{{{}}} {}", s.metric, labels.join(","), number(s.value));
            }
        }
    }
    out
}

/// A scrape: the reply goes back on the channel.
type Scrape = tokio::sync::oneshot::Sender<Result<String, String>>;

/// Serve `GET /metrics` on `listen` until killed, each scrape answered
/// from `c` (reconnecting with `connect` after a lost connection).
pub fn serve(
    listen: &str,
    mut c: Client,
    connect: impl Fn() -> Result<Client, String> + Send + 'static,
) -> Result<(), String> {
    let (tx, rx) = mpsc::channel::<Scrape>();
    std::thread::spawn(move || {
        for reply in rx {
            let mut answer = read(&mut c).map(|s| exposition(&s));
            if answer.is_err() && c.is_closed() {
                if let Ok(fresh) = connect() {
                    c = fresh;
                    answer = read(&mut c).map(|s| exposition(&s));
                }
            }
            let _ = reply.send(answer);
        }
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| format!("cannot start the HTTP server: {e}"))?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        eprintln!("pg_jobs metrics: serving http://{addr}/metrics");
        let app = axum::Router::new()
            .route(
                "/metrics",
                axum::routing::get(move || {
                    let tx = tx.clone();
                    async move { scrape(tx).await }
                }),
            )
            .route(
                "/",
                axum::routing::get(|| async { "pg_jobs metrics: scrape /metrics\n" }),
            );
        axum::serve(listener, app)
            .await
            .map_err(|e| format!("the HTTP server stopped: {e}"))
    })
}

async fn scrape(tx: mpsc::Sender<Scrape>) -> axum::response::Response {
    use axum::http::{header, StatusCode};
    use axum::response::IntoResponse;
    let (reply, answer) = tokio::sync::oneshot::channel();
    let result = match tx.send(reply) {
        Ok(()) => answer
            .await
            .unwrap_or_else(|_| Err("the database thread is gone".into())),
        Err(_) => Err("the database thread is gone".into()),
    };
    match result {
        Ok(body) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
            body,
        )
            .into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, format!("pg_jobs: {e}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(metric: &str, kind: &str, labels: &[(&str, &str)], value: f64) -> Sample {
        Sample {
            metric: metric.into(),
            kind: kind.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value,
            help: format!("help of {metric}"),
        }
    }

    #[test]
    fn families_are_announced_once_and_kept_together() {
        let text = exposition(&[
            sample(
                "pg_jobs_runs_total",
                "counter",
                &[("database", "app"), ("status", "failed")],
                2.0,
            ),
            sample(
                "pg_jobs_lag_seconds_bucket",
                "histogram",
                &[("database", "app"), ("le", "0.005")],
                1.0,
            ),
            sample(
                "pg_jobs_runs_total",
                "counter",
                &[("database", "b"), ("status", "failed")],
                0.0,
            ),
            sample(
                "pg_jobs_lag_seconds_sum",
                "histogram",
                &[("database", "app")],
                0.0025,
            ),
            sample(
                "pg_jobs_lag_seconds_count",
                "histogram",
                &[("database", "app")],
                1.0,
            ),
        ]);
        assert_eq!(
            text,
            "# HELP pg_jobs_runs_total help of pg_jobs_runs_total\n\
             # TYPE pg_jobs_runs_total counter\n\
             pg_jobs_runs_total{database=\"app\",status=\"failed\"} 2\n\
             pg_jobs_runs_total{database=\"b\",status=\"failed\"} 0\n\
             # HELP pg_jobs_lag_seconds help of pg_jobs_lag_seconds_bucket\n\
             # TYPE pg_jobs_lag_seconds histogram\n\
             pg_jobs_lag_seconds_bucket{database=\"app\",le=\"0.005\"} 1\n\
             pg_jobs_lag_seconds_sum{database=\"app\"} 0.0025\n\
             pg_jobs_lag_seconds_count{database=\"app\"} 1\n"
        );
    }

    #[test]
    fn label_values_are_escaped_and_values_formatted() {
        let text = exposition(&[sample("m", "gauge", &[("queue", "a\"b\\c\nd")], f64::INFINITY)]);
        assert!(text.ends_with("m{queue=\"a\\\"b\\\\c\\nd\"} +Inf\n"), "{text}");
        assert_eq!(number(12.5), "12.5");
        assert_eq!(number(3.0), "3");
        assert_eq!(number(f64::NAN), "NaN");
    }
}
