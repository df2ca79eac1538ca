//! `pg_jobs`: see and drive pg_jobs from a terminal. It connects as `psql`
//! does (`connect`), as the connecting role, so it shows exactly what that
//! role may see.
//!
//! Exit codes: 0 all is well (for `submit --wait`: the run succeeded); 1
//! the answer is bad news (`status`: a job is failing or missed; `submit
//! --wait`: the run did not succeed); 2 the command could not do its work
//! (bad arguments, no connection, an error from the server).

mod connect;
mod metrics;
mod top;
mod web;

use clap::{Parser, Subcommand};
use postgres::{Client, NoTls};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "pg_jobs",
    version,
    about = "See and drive pg_jobs, the job system inside PostgreSQL."
)]
struct Cli {
    /// A connection string or URI, or a database name (as psql takes it);
    /// PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, PGSERVICE and
    /// ~/.pgpass fill in the rest.
    #[arg(short = 'd', long = "dbname", global = true)]
    conninfo: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// One screen of text: workers, jobs due soon, failing or missed jobs
    /// and daemons. Exits 1 if any job or daemon is failing or missed.
    Status,
    /// Recent runs, newest first.
    Runs {
        /// Only runs that failed, timed out or crashed.
        #[arg(long)]
        failed: bool,
        /// Only runs of this job.
        #[arg(long)]
        job: Option<String>,
        /// Only runs submitted within this interval (e.g. '1 hour').
        #[arg(long)]
        since: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Queue a command (jobs.submit) and print its run id; with --wait,
    /// wait for it and print its result rows (one JSON object a line).
    Submit {
        command: String,
        /// Wait for the run and print its rows; exit 1 unless it succeeded.
        #[arg(long)]
        wait: bool,
    },
    /// A full-screen live view, refreshed every second: workers, runs per
    /// second, queues, the longest-running runs, the latest failures.
    /// Keys: arrows select a running run, c cancels it, p pauses or
    /// resumes its job, / filters by job or role, d moves to the next
    /// database, q quits.
    Top {
        /// Print the server time of N refreshes' queries instead (a benchmark).
        #[arg(long, value_name = "N")]
        measure: Option<usize>,
    },
    /// The numbers of jobs.metrics in the Prometheus text format: printed
    /// once, or served at http://ADDR/metrics with --listen.
    Metrics {
        /// Serve them over HTTP at this address (default 127.0.0.1:9188,
        /// next to postgres_exporter's 9187).
        #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = metrics::DEFAULT_LISTEN)]
        listen: Option<String>,
    },
    /// A dashboard in the browser at http://ADDR/: throughput, jobs, runs,
    /// queues, daemons and workers, with pause, resume, run now, cancel
    /// and retry. Each browser signs in with a PostgreSQL role and its
    /// password, and sees and acts as that role.
    ///
    /// Example: pg_jobs web 'host=db1 dbname=app' --listen 127.0.0.1:8080
    Web {
        /// The connection (as -d takes it): where signed-in roles connect
        /// (its host, port and database; each browser gives role and
        /// password), or, with --as-connection, the connection itself.
        #[arg(value_name = "CONNINFO")]
        conninfo: Option<String>,
        /// Listen at this address (loopback unless you say otherwise).
        #[arg(long, value_name = "ADDR", default_value = web::DEFAULT_LISTEN)]
        listen: String,
        /// No sign-in: everyone acts as the connection's role (for a
        /// personal machine; every page says so).
        #[arg(long)]
        as_connection: bool,
        /// Show no action buttons and refuse every action.
        #[arg(long)]
        read_only: bool,
        /// Render each page N times as the connection's role, print the
        /// render times and each query's scans, then exit (a benchmark).
        #[arg(long, value_name = "N")]
        measure: Option<usize>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pg_jobs: {e}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    if let Command::Web {
        conninfo,
        listen,
        as_connection,
        read_only,
        measure,
    } = &cli.command
    {
        // Not connected here: without --as-connection each browser signs
        // in with its own role.
        let arg = conninfo.as_deref().or(cli.conninfo.as_deref());
        let config = connect::config(arg, &connect::Env::current())?;
        return match measure {
            Some(n) => {
                web::measure(config, *n).map(|ok| if ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
            }
            None => web::serve(
                &web::Options {
                    listen: listen.clone(),
                    as_connection: *as_connection,
                    read_only: *read_only,
                },
                config,
            )
            .map(|()| ExitCode::SUCCESS),
        };
    }
    let config = connect::config(cli.conninfo.as_deref(), &connect::Env::current())?;
    let connect_to = move |db: Option<&str>| {
        let mut cfg = config.clone();
        if let Some(db) = db {
            cfg.dbname(db);
        }
        cfg.connect(NoTls)
            .map_err(|e| format!("cannot connect: {}", db_error(e)))
    };
    let mut c = connect_to(None)?;
    match cli.command {
        Command::Status => status(&mut c),
        Command::Runs {
            failed,
            job,
            since,
            limit,
        } => runs(&mut c, failed, job.as_deref(), since.as_deref(), limit),
        Command::Submit { command, wait } => submit(&mut c, &command, wait),
        Command::Top { measure: Some(n) } => top::measure(&mut c, n).map(|()| ExitCode::SUCCESS),
        Command::Top { measure: None } => top::run(c, connect_to).map(|()| ExitCode::SUCCESS),
        Command::Metrics { listen: None } => {
            print!("{}", metrics::exposition(&metrics::read(&mut c)?));
            Ok(ExitCode::SUCCESS)
        }
        Command::Metrics { listen: Some(addr) } => {
            metrics::serve(&addr, c, move || connect_to(None)).map(|()| ExitCode::SUCCESS)
        }
        Command::Web { .. } => Err("unreachable: web is served above".into()),
    }
}

/// A server error's message and SQLSTATE; any other error with its causes.
fn db_error(e: postgres::Error) -> String {
    if let Some(d) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", d.message(), d.code().code());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

/// Print `rows` (all text columns) as an aligned table under `title`.
fn table(title: &str, header: &[&str], rows: &[Vec<String>]) {
    println!("{title}");
    if rows.is_empty() {
        println!("  (none)\n");
        return;
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, v) in r.iter().enumerate() {
            widths[i] = widths[i].max(v.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        println!("  {}", padded.join("  ").trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
    println!();
}

/// The rows of `sql` (every column cast to text by the query).
fn text_rows(
    c: &mut Client,
    sql: &str,
    params: &[&(dyn postgres::types::ToSql + Sync)],
) -> Result<Vec<Vec<String>>, String> {
    let rows = c.query(sql, params).map_err(db_error)?;
    Ok(rows
        .iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.get::<_, Option<String>>(i).unwrap_or_default())
                .collect()
        })
        .collect())
}

fn status(c: &mut Client) -> Result<ExitCode, String> {
    let workers = text_rows(
        c,
        "SELECT kind, COALESCE(database::text, ''), COALESCE(role::text, ''), state, COALESCE(run_id::text, ''),
                date_trunc('second', now() - since)::text
           FROM jobs.workers ORDER BY kind, database, pid",
        &[],
    )?;
    table(
        "Workers",
        &["kind", "database", "role", "state", "run", "for"],
        &workers,
    );
    let due = text_rows(
        c,
        "SELECT name, schedule, to_char(next_due, 'YYYY-MM-DD HH24:MI:SS TZ'), COALESCE(last_status, '')
           FROM jobs.job_status WHERE next_due IS NOT NULL ORDER BY next_due, name LIMIT 10",
        &[],
    )?;
    table("Due soon", &["job", "schedule", "next due", "last"], &due);
    let bad = text_rows(
        c,
        "SELECT kind, name, COALESCE(consecutive_failures::text, ''),
                CASE WHEN missed THEN 'since ' || to_char(missed_since, 'YYYY-MM-DD HH24:MI:SS TZ') ELSE '' END,
                COALESCE(to_char(last_success, 'YYYY-MM-DD HH24:MI:SS TZ'), 'never')
           FROM jobs.health WHERE missed OR consecutive_failures > 0 ORDER BY kind, name",
        &[],
    )?;
    table(
        "Failing or missed",
        &["kind", "name", "failures", "missed", "last success"],
        &bad,
    );
    Ok(if bad.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn runs(
    c: &mut Client,
    failed: bool,
    job: Option<&str>,
    since: Option<&str>,
    limit: i64,
) -> Result<ExitCode, String> {
    let rows = text_rows(
        c,
        "SELECT r.id::text, COALESCE(j.name, ''), r.status, COALESCE(to_char(r.started_at, 'YYYY-MM-DD HH24:MI:SS'), ''),
                COALESCE(round(extract(epoch FROM r.finished_at - r.started_at) * 1000)::text || ' ms', ''),
                COALESCE(r.sqlstate, ''), left(COALESCE(r.message, ''), 60)
           FROM jobs.run r LEFT JOIN jobs.job j ON j.id = r.job_id
          WHERE (NOT $1 OR r.status IN ('failed', 'timed_out', 'crashed'))
            AND ($2::text IS NULL OR j.name = $2)
            AND ($3::text IS NULL OR r.submitted_at > now() - $3::interval)
          ORDER BY r.id DESC LIMIT $4",
        &[&failed, &job, &since, &limit],
    )?;
    table(
        "Runs",
        &["id", "job", "status", "started", "took", "sqlstate", "message"],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}

fn submit(c: &mut Client, command: &str, wait: bool) -> Result<ExitCode, String> {
    let id: i64 = c
        .query_one("SELECT jobs.submit($1)", &[&command])
        .map_err(db_error)?
        .get(0);
    if !wait {
        println!("{id}");
        return Ok(ExitCode::SUCCESS);
    }
    let r = c
        .query_one("SELECT status, sqlstate, message FROM jobs.wait($1)", &[&id])
        .map_err(db_error)?;
    let (status, sqlstate, message): (String, Option<String>, Option<String>) =
        (r.get(0), r.get(1), r.get(2));
    if status != "succeeded" {
        eprintln!(
            "run {id} {status}: {} (SQLSTATE {})",
            message.unwrap_or_default(),
            sqlstate.unwrap_or_default()
        );
        return Ok(ExitCode::from(1));
    }
    for row in c
        .query("SELECT r::text FROM jobs.result($1) r", &[&id])
        .map_err(db_error)?
    {
        println!("{}", row.get::<_, String>(0));
    }
    Ok(ExitCode::SUCCESS)
}
