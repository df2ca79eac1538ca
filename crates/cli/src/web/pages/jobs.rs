//! Jobs: each job's schedule, next due time, last status, consecutive
//! failures and a strip of its recent runs; pause, resume, run now.
//!
//! Fifty at a time in id order, the order of the job table's primary key,
//! so a page costs fifty rows of `jobs.job_status` however many jobs
//! there are (an order by name would compute the view for every job to
//! sort them).

use super::{action, runs_link, status, Ctx, Page};
use crate::web::queries::{ts, Db};
use crate::web::WebError;
use maud::html;
use std::collections::HashMap;

pub const PAGE: i64 = 50;
/// Runs in a job's strip.
pub const STRIP: i64 = 20;

fn list_sql() -> String {
    format!(
        "SELECT s.id, s.name, s.owner::text, s.schedule, s.timezone, s.database::text, s.enabled,
                s.last_status, {}, s.consecutive_failures, s.disabled_reason
           FROM jobs.job_status s
          WHERE s.id > $1
          ORDER BY s.id LIMIT $2",
        ts("s.next_due")
    )
}

/// The latest runs of each job of the page, newest first (runs not
/// started yet first of all), on the index of runs by job and start.
const STRIP_SQL: &str = "
    SELECT j.id, r.id, r.status
      FROM unnest($1::int8[]) AS j(id)
      CROSS JOIN LATERAL (
            SELECT r.id, r.status FROM jobs.run r
             WHERE r.job_id = j.id
             ORDER BY r.started_at DESC LIMIT $2) r";

/// After which job id the page starts (`after`; 0: the first page).
pub fn after(q: &HashMap<String, String>) -> Result<i64, WebError> {
    match q.get("after").map(String::as_str) {
        None | Some("") => Ok(0),
        Some(v) => v
            .parse()
            .map_err(|_| WebError::bad_request(&format!("after={v:?} is not a job id"))),
    }
}

pub fn page(db: &mut Db, ctx: &Ctx, q: &HashMap<String, String>) -> Result<Page, WebError> {
    let after = after(q)?;
    let rows = db.query("jobs", &list_sql(), &[&after, &(PAGE + 1)])?;
    let more = rows.len() as i64 > PAGE;
    let rows = &rows[..rows.len().min(PAGE as usize)];
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let mut strips: HashMap<i64, Vec<(i64, String)>> = HashMap::new();
    if !ids.is_empty() {
        for r in db.query("strips", STRIP_SQL, &[&ids, &STRIP])? {
            strips.entry(r.get(0)).or_default().push((r.get(1), r.get(2)));
        }
    }
    let last = ids.last().copied();
    let body = html! {
        p.hint { "Each job you can see, " (PAGE) " at a time, oldest first. The strip shows its latest runs, newest on the right." }
        table #jobs {
            thead { tr {
                th { "job" } th { "owner" } th { "schedule" } th { "next due" } th { "last" }
                th.num { "failures in a row" } th { "recent runs" } th {}
            } }
            tbody {
                @for r in rows {
                    @let id: i64 = r.get(0);
                    @let name: Option<String> = r.get(1);
                    @let enabled: bool = r.get(6);
                    @let failures: i64 = r.get(9);
                    @let reason: Option<String> = r.get(10);
                    tr data-job=(name.clone().unwrap_or_default()) class=[(!enabled).then_some("paused")] {
                        td {
                            @if let Some(n) = &name {
                                a href=(runs_link(&[("job", n)])) { (n) }
                            } @else { em { "job " (id) } }
                            @if !enabled { " " span.tag id=(format!("paused-{id}")) { "paused" } }
                            @if let Some(why) = &reason { br; small { (why) } }
                        }
                        td { (r.get::<_, String>(2)) }
                        td { code { (r.get::<_, Option<String>>(3).unwrap_or_else(|| "after another job".into())) } " " small { (r.get::<_, String>(4)) } }
                        td.ts.due { (r.get::<_, Option<String>>(8).unwrap_or_default()) }
                        td { @if let Some(s) = r.get::<_, Option<String>>(7) { (status(&s)) } }
                        td.num class=[(failures > 0).then_some("bad")] { (failures) }
                        td.strip {
                            @if let Some(runs) = strips.get(&id) {
                                @for (run, st) in runs.iter().rev() {
                                    a class=(format!("cell {st}")) href=(format!("/runs/{run}")) title=(format!("run {run}: {st}")) {}
                                }
                            }
                        }
                        td.actions {
                            @if let Some(n) = &name {
                                @if enabled { (action(ctx, "pause", ("name", n), "Pause")) }
                                @else { (action(ctx, "resume", ("name", n), "Resume")) }
                                (action(ctx, "run_now", ("name", n), "Run now"))
                            }
                        }
                    }
                }
            }
        }
        @if rows.is_empty() { p.none { "No jobs." } }
        p.pager {
            @if after > 0 { a href="/jobs" { "« first" } " " }
            @if let (true, Some(l)) = (more, last) { a href=(format!("/jobs?after={l}")) id="next" { "next »" } }
        }
    };
    Ok(Page {
        title: "Jobs".into(),
        body,
    })
}
