//! `pg_jobs web --measure N`: what each page costs to render, and the
//! scans of each of its queries' plans, without a browser or a server.

use super::chart::ChartCache;
use super::pages::{self, Ctx, Page};
use super::queries::Db;
use super::{connect, whoami, WebError};
use postgres::{Client, Config};
use std::collections::HashMap;
use std::time::Instant;

/// `pg_jobs web --measure N`: render every page `n` times as the given
/// connection's role and print the median and slowest wall time of each
/// (queries and HTML, as the server spends it), then the scans of each
/// query's plan. Fails if a plan reads `jobs.run` or `jobs.job` whole.
pub fn measure(config: Config, n: usize) -> Result<bool, String> {
    let e = |e: postgres::Error| crate::db_error(e);
    let mut c = connect(&config).map_err(e)?;
    let (role, database) = whoami(&mut c).map_err(e)?;
    let ctx = Ctx {
        role,
        database,
        csrf: "measure".into(),
        read_only: false,
        as_connection: true,
        flash: None,
        here: "/".into(),
    };
    let latest: Option<i64> = c
        .query_one("SELECT max(id) FROM jobs.run", &[])
        .map_err(e)?
        .get(0);
    let job: Option<String> = c
        .query_opt(
            "SELECT name FROM jobs.job WHERE name IS NOT NULL ORDER BY id LIMIT 1",
            &[],
        )
        .map_err(e)?
        .map(|r| r.get(0));
    let runs = |pairs: &[(&str, &str)]| {
        let q: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        pages::runs::Filter::parse(&q)
    };
    type Render = Box<dyn Fn(&mut Db, &Ctx, &mut ChartCache) -> Result<Page, WebError>>;
    let mut list: Vec<(String, Render)> = vec![
        ("overview".into(), Box::new(pages::overview::page)),
        (
            "jobs".into(),
            Box::new(|db, ctx, _| pages::jobs::page(db, ctx, &HashMap::new())),
        ),
    ];
    for (label, pairs) in [
        ("runs", vec![]),
        ("runs?status=failed", vec![("status", "failed")]),
        ("runs?status=running", vec![("status", "running")]),
        ("runs?role=(self)", vec![("role", ctx.role.as_str())]),
        ("runs?within=1 hour", vec![("within", "1 hour")]),
        (
            "runs?job=(first job)",
            vec![("job", job.as_deref().unwrap_or("none"))],
        ),
    ] {
        let f = runs(&pairs)?;
        list.push((
            label.into(),
            Box::new(move |db, ctx, _| pages::runs::list(db, ctx, &f)),
        ));
    }
    if let Some(id) = latest {
        list.push((
            "run (latest)".into(),
            Box::new(move |db, ctx, _| pages::runs::one(db, ctx, id)),
        ));
    }
    list.push((
        "queues".into(),
        Box::new(|db, ctx, _| pages::registry::queues(db, ctx)),
    ));
    list.push((
        "daemons".into(),
        Box::new(|db, ctx, _| pages::registry::daemons(db, ctx)),
    ));
    list.push((
        "workers".into(),
        Box::new(|db, ctx, _| pages::registry::workers(db, ctx)),
    ));

    let mut charts = ChartCache::default();
    let render = |c: &mut Client, charts: &mut ChartCache, f: &Render| -> Result<f64, String> {
        let t = Instant::now();
        let page = f(&mut Db::new(c), &ctx, charts).map_err(|e| e.message)?;
        let html = pages::layout(&ctx, &page);
        std::hint::black_box(html);
        Ok(t.elapsed().as_secs_f64() * 1000.0)
    };
    println!(
        "pg_jobs web: server-side render time per page, {n} renders each, as {}",
        ctx.role
    );
    println!("  {:<28} {:>10} {:>10}", "page", "median ms", "max ms");
    let first = render(&mut c, &mut charts, &list[0].1)?;
    println!(
        "  {:<28} {:>10.1} {:>10.1}",
        "overview (a session's first)", first, first
    );
    // The views until the day chart is counted whole.
    let (mut views, mut slowest) = (1, first);
    while charts.pending() > 0 && views < 1000 {
        slowest = slowest.max(render(&mut c, &mut charts, &list[0].1)?);
        views += 1;
    }
    println!(
        "  {:<28} {:>10} {:>10.1}",
        format!("overview ({views} views: day counted)"),
        "",
        slowest
    );
    for (name, f) in &list {
        let mut times = Vec::with_capacity(n);
        for _ in 0..n.max(1) {
            times.push(render(&mut c, &mut charts, f)?);
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let max = times[times.len() - 1];
        println!("  {name:<28} {median:>10.1} {max:>10.1}");
    }
    println!("\nplans (the scans of each query):");
    let mut whole_table = false;
    for (name, f) in &list {
        let mut db = Db::new(&mut c);
        db.plans = Some(Vec::new());
        f(&mut db, &ctx, &mut charts).map_err(|e| e.message)?;
        for (query, scans) in db.plans.unwrap_or_default() {
            for s in &scans {
                if s.starts_with("Seq Scan on jobs.run") || s.starts_with("Seq Scan on jobs.job") {
                    whole_table = true;
                }
            }
            println!("  {name} / {query}: {}", scans.join("; "));
        }
    }
    if whole_table {
        println!("\nA plan reads jobs.run or jobs.job whole (Seq Scan).");
    }
    Ok(!whole_table)
}
