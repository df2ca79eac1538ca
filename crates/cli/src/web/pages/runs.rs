//! Runs: the history, newest first, filtered by status, job, database,
//! role and time; and one run's page (command, timings, attempt, error,
//! result rows) with cancel and retry.
//!
//! The list pages by run id (`before`), walking the primary key
//! backwards: every filter is a condition checked along that walk, so a
//! page costs its fifty rows plus those the filters pass over, never a
//! sort of the history.

use super::{action, duration_ms, encode, status, Ctx, Page};
use crate::web::queries::{status_group, ts, Db};
use crate::web::WebError;
use maud::html;
use std::collections::HashMap;

pub const PAGE: i64 = 50;
/// Result rows shown on a run's page.
pub const RESULT_ROWS: i64 = 100;

/// The list's filters, as the form and links give them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filter {
    /// A status group (`failed` is failed, timed out or crashed).
    pub status: Option<String>,
    pub job: Option<String>,
    pub database: Option<String>,
    pub role: Option<String>,
    /// Finished within this many seconds.
    pub within_s: Option<i64>,
    /// The text `within` was given as, to show it again.
    pub within: Option<String>,
    /// Runs older than this id (the next page).
    pub before: Option<i64>,
}

/// "15 minutes", "2h", "1 day", "30m": a span in seconds.
pub fn parse_within(v: &str) -> Result<i64, String> {
    let v = v.trim();
    let split = v.find(|c: char| !c.is_ascii_digit()).unwrap_or(v.len());
    let (n, unit) = v.split_at(split);
    let n: i64 = n
        .parse()
        .map_err(|_| format!("{v:?}: expected a number and a unit, such as 15 minutes, 2 hours or 1 day"))?;
    let unit_s = match unit.trim() {
        "s" | "sec" | "second" | "seconds" => 1,
        "m" | "min" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        u => return Err(format!("{v:?}: unknown unit {u:?} (minutes, hours or days)")),
    };
    n.checked_mul(unit_s)
        .filter(|s| *s > 0)
        .ok_or_else(|| format!("{v:?}: out of range"))
}

impl Filter {
    pub fn parse(q: &HashMap<String, String>) -> Result<Filter, String> {
        let get = |k: &str| q.get(k).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let status = get("status");
        if let Some(s) = &status {
            if status_group(s).is_none() {
                return Err(format!("status {s:?}: expected queued, waiting, running, succeeded, failed, cancelled or skipped"));
            }
        }
        let within = get("within");
        let within_s = within.as_deref().map(parse_within).transpose()?;
        let before = get("before")
            .map(|b| {
                b.parse::<i64>()
                    .map_err(|_| format!("before={b:?} is not a run id"))
            })
            .transpose()?;
        Ok(Filter {
            status,
            job: get("job"),
            database: get("database"),
            role: get("role"),
            within_s,
            within,
            before,
        })
    }

    /// This filter as a query string, with `before` replaced.
    pub fn query(&self, before: Option<i64>) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("status", &self.status),
            ("job", &self.job),
            ("database", &self.database),
            ("role", &self.role),
            ("within", &self.within),
        ] {
            if let Some(v) = v {
                parts.push(format!("{k}={}", encode(v)));
            }
        }
        if let Some(b) = before {
            parts.push(format!("before={b}"));
        }
        parts.join("&")
    }
}

/// The list. A job is found by name among the jobs of each role (the
/// job table's (owner, name) index) rather than by a scan of every job;
/// the job's name of each run shown is a probe of the job table's key (a
/// join could hash the whole job table for fifty rows).
fn list_sql() -> String {
    format!(
        "SELECT r.id, COALESCE((SELECT j.name FROM jobs.job j WHERE j.id = r.job_id), ''), r.owner::text, r.database::text, r.status, {}, {},
                extract(epoch FROM r.finished_at - r.started_at)::float8 * 1000,
                COALESCE(r.sqlstate, ''), left(COALESCE(r.message, ''), 120),
                left(regexp_replace(r.command, '\\s+', ' ', 'g'), 80)
           FROM jobs.run r
          WHERE ($1::int8 IS NULL OR r.id < $1)
            AND ($2::text[] IS NULL OR r.status = ANY ($2))
            AND ($3::text IS NULL OR r.job_id = ANY (ARRAY(
                  SELECT k.id FROM pg_catalog.pg_roles o JOIN jobs.job k ON k.owner = o.oid::regrole AND k.name = $3)))
            AND ($4::text IS NULL OR r.database = $4::text::name)
            AND ($5::text IS NULL OR r.owner = to_regrole($5))
            AND ($6::int8 IS NULL OR r.finished_at >= now() - make_interval(secs => $6))
          ORDER BY r.id DESC LIMIT $7",
        ts("r.submitted_at"),
        ts("r.started_at"),
    )
}

pub fn list(db: &mut Db, ctx: &Ctx, f: &Filter) -> Result<Page, WebError> {
    let statuses: Option<Vec<String>> = f
        .status
        .as_deref()
        .and_then(status_group)
        .map(|g| g.iter().map(|s| s.to_string()).collect());
    let rows = db.query(
        "runs",
        &list_sql(),
        &[
            &f.before,
            &statuses,
            &f.job,
            &f.database,
            &f.role,
            &f.within_s,
            &(PAGE + 1),
        ],
    )?;
    let more = rows.len() as i64 > PAGE;
    let rows = &rows[..rows.len().min(PAGE as usize)];
    let last: Option<i64> = rows.last().map(|r| r.get(0));
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let body = html! {
        form.filters method="get" action="/runs" {
            label { "status "
                select name="status" {
                    @for s in ["", "queued", "waiting", "running", "succeeded", "failed", "cancelled", "skipped"] {
                        option value=(s) selected[f.status.as_deref().unwrap_or("") == s] { @if s.is_empty() { "any" } @else { (s) } }
                    }
                }
            }
            label { "job " input type="text" name="job" value=(opt(&f.job)) size="14"; }
            label { "database " input type="text" name="database" value=(opt(&f.database)) size="10"; }
            label { "role " input type="text" name="role" value=(opt(&f.role)) size="10"; }
            label { "finished within " input type="text" name="within" value=(opt(&f.within)) placeholder="1 hour" size="8"; }
            button type="submit" { "Filter" }
            " " a href="/runs" { "clear" }
        }
        table #runs {
            thead { tr {
                th { "run" } th { "job" } th { "role" } th { "database" } th { "status" } th { "submitted" }
                th { "started" } th.num { "took" } th { "SQLSTATE" } th { "message / command" } th {}
            } }
            tbody {
                @for r in rows {
                    @let id: i64 = r.get(0);
                    @let st: String = r.get(4);
                    @let message: String = r.get(9);
                    tr data-run=(id) {
                        td { a href=(format!("/runs/{id}")) { (id) } }
                        td { (r.get::<_, String>(1)) }
                        td { (r.get::<_, String>(2)) }
                        td { (r.get::<_, String>(3)) }
                        td { (status(&st)) }
                        td.ts { (r.get::<_, Option<String>>(5).unwrap_or_default()) }
                        td.ts { (r.get::<_, Option<String>>(6).unwrap_or_default()) }
                        td.num { (duration_ms(r.get(7))) }
                        td.sqlstate { (r.get::<_, String>(8)) }
                        td.msg { @if message.is_empty() { code { (r.get::<_, String>(10)) } } @else { (message) } }
                        td.actions { (run_actions(ctx, id, &st)) }
                    }
                }
            }
        }
        @if rows.is_empty() { p.none { "No runs." } }
        p.pager {
            @if f.before.is_some() { a href=(format!("/runs?{}", f.query(None))) { "« newest" } " " }
            @if let (true, Some(l)) = (more, last) { a href=(format!("/runs?{}", f.query(Some(l)))) id="next" { "older »" } }
        }
    };
    Ok(Page {
        title: "Runs".into(),
        body,
    })
}

/// Cancel while it may still be stopped, retry once it has ended badly.
fn run_actions(ctx: &Ctx, id: i64, st: &str) -> maud::Markup {
    let id = id.to_string();
    html! {
        @if matches!(st, "queued" | "waiting" | "starting" | "running") {
            (action(ctx, "cancel", ("run", &id), "Cancel"))
        }
        @if matches!(st, "failed" | "timed_out" | "crashed" | "cancelled") {
            (action(ctx, "retry", ("run", &id), "Retry"))
        }
    }
}

fn run_sql() -> String {
    format!(
        "SELECT r.id, r.job_id, (SELECT j.name FROM jobs.job j WHERE j.id = r.job_id), r.owner::text, r.database::text, r.status, r.command,
                r.attempt, r.max_attempts, {}, {}, {}, {}, {},
                extract(epoch FROM r.finished_at - r.started_at)::float8 * 1000,
                extract(epoch FROM r.started_at - COALESCE(r.not_before, r.scheduled_for, r.submitted_at))::float8 * 1000,
                r.sqlstate, r.message, r.pid, r.queue, r.priority, r.command_tag, r.result_truncated,
                r.args::text, r.timeout::text,
                -- DETAIL (0.4.0), read so that a database at 0.3.0 shows none.
                to_jsonb(r) ->> 'detail'
           FROM jobs.run r
          WHERE r.id = $1",
        ts("r.submitted_at"),
        ts("r.scheduled_for"),
        ts("r.not_before"),
        ts("r.started_at"),
        ts("r.finished_at"),
    )
}

pub fn one(db: &mut Db, ctx: &Ctx, id: i64) -> Result<Page, WebError> {
    let rows = db.query("run", &run_sql(), &[&id])?;
    let Some(r) = rows.first() else {
        return Err(WebError::not_found(&format!(
            "No run {id} that role {} can see.",
            ctx.role
        )));
    };
    let st: String = r.get(5);
    // The result: only the run's owner (its roles) and superusers may read
    // it; what anyone else gets is the server's refusal, shown as such.
    let result = if st == "succeeded" {
        Some(
            db.query(
                "result",
                "SELECT x::text FROM jobs.result($1) x LIMIT $2",
                &[&id, &(RESULT_ROWS + 1)],
            )
            .map(|rows| {
                rows.iter()
                    .map(|x| x.get::<_, String>(0))
                    .collect::<Vec<String>>()
            }),
        )
    } else {
        None
    };
    let job: Option<String> = r.get(2);
    let sqlstate: Option<String> = r.get(16);
    let row = |label: &str, v: Option<String>| {
        html! { @if let Some(v) = v { tr { th { (label) } td { (v) } } } }
    };
    let body = html! {
        div.runhead {
            (status(&st))
            " " (run_actions(ctx, id, &st))
        }
        div.cols {
            table.kv #run {
                tbody {
                    tr { th { "job" } td { @if let Some(j) = &job { a href=(super::runs_link(&[("job", j)])) { (j) } } @else { "(submitted)" } } }
                    tr { th { "role" } td { (r.get::<_, String>(3)) } }
                    tr { th { "database" } td { (r.get::<_, String>(4)) } }
                    tr { th { "attempt" } td { (r.get::<_, i32>(7)) " of " (r.get::<_, i32>(8)) } }
                    (row("queue", r.get(19)))
                    tr { th { "priority" } td { (r.get::<_, i32>(20)) } }
                    (row("timeout", r.get(24)))
                    (row("arguments", r.get(23)))
                    (row("pid", r.get::<_, Option<i32>>(18).map(|p| p.to_string())))
                    (row("command tag", r.get(21)))
                }
            }
            table.kv #timings {
                tbody {
                    (row("submitted", r.get(9)))
                    (row("scheduled for", r.get(10)))
                    (row("not before", r.get(11)))
                    (row("started", r.get(12)))
                    (row("finished", r.get(13)))
                    (row("waited", r.get::<_, Option<f64>>(15).map(|ms| duration_ms(Some(ms)))))
                    (row("took", r.get::<_, Option<f64>>(14).map(|ms| duration_ms(Some(ms)))))
                }
            }
        }
        h2 { "Command" }
        pre.command { (r.get::<_, String>(6)) }
        @if let Some(code) = &sqlstate {
            h2 { "Error" }
            p.error #run-error { "SQLSTATE " span.sqlstate { (code) } ": " (r.get::<_, Option<String>>(17).unwrap_or_default()) }
            @if let Some(detail) = r.get::<_, Option<String>>(25) {
                p.error #run-detail { "DETAIL: " (detail) }
            }
        } @else if let Some(m) = r.get::<_, Option<String>>(17) {
            h2 { "Message" }
            p { (m) }
        }
        @if let Some(result) = &result {
            h2 { "Result" }
            @match result {
                Ok(rows) => {
                    @if r.get::<_, bool>(22) { p.hint { "Truncated: the run returned more than pg_jobs.max_result_bytes." } }
                    (result_table(rows))
                }
                Err(e) => {
                    p.error { "Not readable: " (e.message) @if let Some(c) = &e.sqlstate { " (SQLSTATE " (c) ")" } }
                }
            }
        }
    };
    Ok(Page {
        title: format!("Run {id}"),
        body,
    })
}

/// Result rows (JSON objects) as a table, columns in first-seen order.
fn result_table(rows: &[String]) -> maud::Markup {
    let shown = &rows[..rows.len().min(RESULT_ROWS as usize)];
    let parsed: Vec<serde_json::Map<String, serde_json::Value>> = shown
        .iter()
        .map(|t| match serde_json::from_str::<serde_json::Value>(t) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => {
                let mut m = serde_json::Map::new();
                m.insert("value".into(), serde_json::Value::String(t.clone()));
                m
            }
        })
        .collect();
    let mut cols: Vec<String> = Vec::new();
    for m in &parsed {
        for k in m.keys() {
            if !cols.contains(k) {
                cols.push(k.clone());
            }
        }
    }
    let cell = |v: Option<&serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    html! {
        @if parsed.is_empty() { p.none { "No rows." } } @else {
            table #result {
                thead { tr { @for c in &cols { th { (c) } } } }
                tbody { @for m in &parsed { tr { @for c in &cols { td { (cell(m.get(c))) } } } } }
            }
            @if rows.len() > shown.len() { p.hint { "First " (RESULT_ROWS) " rows shown." } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn filters_parse_and_round_trip() {
        let f = Filter::parse(&q(&[
            ("status", "failed"),
            ("job", "nightly report"),
            ("role", ""),
            ("within", "2 hours"),
            ("before", "77"),
        ]))
        .unwrap();
        assert_eq!(f.status.as_deref(), Some("failed"));
        assert_eq!(f.job.as_deref(), Some("nightly report"));
        assert_eq!(f.role, None, "empty fields are no filter");
        assert_eq!(f.within_s, Some(7200));
        assert_eq!(f.before, Some(77));
        assert_eq!(
            f.query(Some(12)),
            "status=failed&job=nightly%20report&within=2%20hours&before=12"
        );
        assert_eq!(Filter::parse(&q(&[])).unwrap(), Filter::default());
    }

    #[test]
    fn bad_filters_are_refused_with_a_reason() {
        assert!(Filter::parse(&q(&[("status", "exploded")]))
            .unwrap_err()
            .contains("exploded"));
        assert!(Filter::parse(&q(&[("before", "x")])).is_err());
        assert!(Filter::parse(&q(&[("within", "3 fortnights")]))
            .unwrap_err()
            .contains("unknown unit"));
        assert_eq!(parse_within("15m"), Ok(900));
        assert_eq!(parse_within("1 day"), Ok(86_400));
        assert!(parse_within("0 minutes").is_err());
        assert!(parse_within("99999999999999999 days").is_err());
        assert!(parse_within("hours").is_err());
    }
}
