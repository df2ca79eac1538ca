//! The live registry: named queues (depth, limits, pause and resume),
//! daemons, and worker processes. Each list is short (one row per queue,
//! daemon or process), read from the status views.

use super::{action, status, Ctx, Page};
use crate::web::queries::{ts, Db};
use crate::web::WebError;
use maud::html;

/// At most this many rows of each list.
const LIMIT: i64 = 500;

pub fn queues(db: &mut Db, ctx: &Ctx) -> Result<Page, WebError> {
    let rows = db.query(
        "queues",
        "SELECT name, owner::text, paused, max_concurrency, max_per_key, rate_limit, rate_period::text,
                queued::int8, running::int8, extract(epoch FROM oldest_queued_age)::float8 * 1000, finished_last_minute::int8
           FROM jobs.queue_status ORDER BY name, owner LIMIT $1",
        &[&LIMIT],
    )?;
    let limit = |v: Option<i32>| v.map_or("—".to_owned(), |n| n.to_string());
    let body = html! {
        p.hint { "Named queues you can see. Runs outside named queues are counted on the overview." }
        table #queues {
            thead { tr {
                th { "queue" } th { "owner" } th { "state" } th.num { "max at once" } th.num { "max per key" }
                th { "rate limit" } th.num { "queued" } th.num { "running" } th.num { "oldest due waits" } th.num { "finished last minute" } th {}
            } }
            tbody {
                @for r in &rows {
                    @let name: String = r.get(0);
                    @let paused: bool = r.get(2);
                    tr data-queue=(name) {
                        td { (name) }
                        td { (r.get::<_, String>(1)) }
                        td { @if paused { span.tag { "paused" } } @else { "running" } }
                        td.num { (limit(r.get(3))) }
                        td.num { (limit(r.get(4))) }
                        td { @if let Some(n) = r.get::<_, Option<i32>>(5) { (n) " per " (r.get::<_, Option<String>>(6).unwrap_or_default()) } @else { "—" } }
                        td.num { (r.get::<_, i64>(7)) }
                        td.num { (r.get::<_, i64>(8)) }
                        td.num { (super::duration_ms(r.get(9))) }
                        td.num { (r.get::<_, i64>(10)) }
                        td.actions {
                            @if paused { (action(ctx, "resume_queue", ("name", &name), "Resume")) }
                            @else { (action(ctx, "pause_queue", ("name", &name), "Pause")) }
                        }
                    }
                }
            }
        }
        @if rows.is_empty() { p.none { "No named queues." } }
    };
    Ok(Page {
        title: "Queues".into(),
        body,
    })
}

pub fn daemons(db: &mut Db, ctx: &Ctx) -> Result<Page, WebError> {
    let rows = db.query(
        "daemons",
        &format!(
            "SELECT name, owner::text, database::text, run_on, enabled, state, pid::int8, {}, restarts::int8,
                    last_exit, {}, last_sqlstate, left(COALESCE(last_message, ''), 160), {},
                    left(regexp_replace(command, '\\s+', ' ', 'g'), 80)
               FROM jobs.daemon_status ORDER BY name, owner LIMIT $1",
            ts("since"),
            ts("last_exit_at"),
            ts("next_restart")
        ),
        &[&LIMIT],
    )?;
    let body = html! {
        table #daemons {
            thead { tr {
                th { "daemon" } th { "owner" } th { "database" } th { "runs on" } th { "state" } th { "pid" } th { "since" }
                th.num { "restarts" } th { "last exit" } th { "SQLSTATE" } th { "message" } th { "next restart" } th {}
            } }
            tbody {
                @for r in &rows {
                    @let name: String = r.get(0);
                    @let enabled: bool = r.get(4);
                    tr data-daemon=(name) {
                        td { (name) br; code { (r.get::<_, String>(14)) } }
                        td { (r.get::<_, String>(1)) }
                        td { (r.get::<_, String>(2)) }
                        td { (r.get::<_, String>(3)) }
                        td { (status(&r.get::<_, String>(5))) }
                        td { (r.get::<_, Option<i64>>(6).map(|p| p.to_string()).unwrap_or_default()) }
                        td.ts { (r.get::<_, Option<String>>(7).unwrap_or_default()) }
                        td.num { (r.get::<_, Option<i64>>(8).map(|p| p.to_string()).unwrap_or_default()) }
                        td { (r.get::<_, Option<String>>(9).unwrap_or_default()) " " small { (r.get::<_, Option<String>>(10).unwrap_or_default()) } }
                        td.sqlstate { (r.get::<_, Option<String>>(11).unwrap_or_default()) }
                        td.msg { (r.get::<_, String>(12)) }
                        td.ts { (r.get::<_, Option<String>>(13).unwrap_or_default()) }
                        td.actions {
                            @if enabled { (action(ctx, "stop_daemon", ("name", &name), "Stop")) }
                            @else { (action(ctx, "start_daemon", ("name", &name), "Start")) }
                        }
                    }
                }
            }
        }
        @if rows.is_empty() { p.none { "No daemons." } }
    };
    Ok(Page {
        title: "Daemons".into(),
        body,
    })
}

pub fn workers(db: &mut Db, _ctx: &Ctx) -> Result<Page, WebError> {
    let rows = db.query(
        "workers",
        &format!(
            "SELECT kind, pid::int8, COALESCE(database::text, ''), COALESCE(role::text, ''), job_id::int8, run_id::int8, state, {},
                    extract(epoch FROM now() - since)::float8 * 1000
               FROM jobs.workers ORDER BY kind, database, pid LIMIT $1",
            ts("since")
        ),
        &[&LIMIT],
    )?;
    let body = html! {
        p.hint { "Every live pg_jobs process of the server, from its shared-memory registry (no command text)." }
        table #workers {
            thead { tr { th { "kind" } th { "pid" } th { "database" } th { "role" } th { "job" } th { "run" } th { "state" } th { "since" } th.num { "for" } } }
            tbody {
                @for r in &rows {
                    tr {
                        td { (r.get::<_, String>(0)) }
                        td { (r.get::<_, Option<i64>>(1).map(|p| p.to_string()).unwrap_or_default()) }
                        td { (r.get::<_, String>(2)) }
                        td { (r.get::<_, String>(3)) }
                        td { (r.get::<_, Option<i64>>(4).map(|p| p.to_string()).unwrap_or_default()) }
                        td { @if let Some(run) = r.get::<_, Option<i64>>(5) { a href=(format!("/runs/{run}")) { (run) } } }
                        td { (status(&r.get::<_, String>(6))) }
                        td.ts { (r.get::<_, Option<String>>(7).unwrap_or_default()) }
                        td.num { (super::duration_ms(r.get(8))) }
                    }
                }
            }
        }
    };
    Ok(Page {
        title: "Workers".into(),
        body,
    })
}
