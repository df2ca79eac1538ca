//! `pg_jobs top`: a full-screen live view of pg_jobs, refreshed every
//! second, as the connecting role sees it (ratatui over crossterm).
//!
//! Each refresh runs the few queries of [`data`]; the keys of [`app`]
//! select a running run, cancel it, pause or resume its job, filter by job
//! or role, and move to the next database. Actions go through the SQL API
//! as the connecting role, so `top` can do exactly what that role may.

mod app;
mod data;
mod view;

use app::{Action, App, Key};
use postgres::Client;
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const REFRESH: Duration = Duration::from_secs(1);

pub(crate) fn epoch_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Run the live view until `q`. `connect_to(None)` reconnects to the
/// same database, `connect_to(Some(db))` to another.
pub fn run(mut c: Client, connect_to: impl Fn(Option<&str>) -> Result<Client, String>) -> Result<(), String> {
    let mut app = App::default();
    let mut since = epoch_now();
    let mut terminal = ratatui::try_init().map_err(|e| format!("cannot use the terminal: {e}"))?;
    let result = (|| -> Result<(), String> {
        loop {
            match data::read(&mut c, &app.filter, since) {
                Ok(s) => app.update(s, epoch_now()),
                Err(e) => {
                    app.status = e;
                    if c.is_closed() {
                        if let Ok(fresh) = connect_to(None) {
                            c = fresh;
                        }
                    }
                }
            }
            terminal
                .draw(|f| view::draw(f, &app))
                .map_err(|e| format!("cannot draw: {e}"))?;
            let next = Instant::now() + REFRESH;
            // Keys until the next refresh; an action refreshes at once.
            while let Some(left) = next.checked_duration_since(Instant::now()) {
                if !event::poll(left).map_err(|e| e.to_string())? {
                    break;
                }
                let Event::Key(k) = event::read().map_err(|e| e.to_string())? else {
                    continue;
                };
                if k.kind != KeyEventKind::Press {
                    continue;
                }
                let key = match k.code {
                    KeyCode::Char(ch) => Key::Char(ch),
                    KeyCode::Up => Key::Up,
                    KeyCode::Down => Key::Down,
                    KeyCode::Enter => Key::Enter,
                    KeyCode::Esc => Key::Esc,
                    KeyCode::Backspace => Key::Backspace,
                    _ => continue,
                };
                match app.key(key) {
                    Action::Quit => return Ok(()),
                    Action::Nothing => {
                        terminal
                            .draw(|f| view::draw(f, &app))
                            .map_err(|e| format!("cannot draw: {e}"))?;
                        continue;
                    }
                    Action::Refresh => {}
                    Action::Cancel(id) => {
                        app.status = match c.query_one("SELECT jobs.cancel($1)", &[&id]) {
                            Ok(r) if r.get::<_, bool>(0) => format!("run {id}: cancel sent"),
                            Ok(_) => format!("run {id}: nothing to cancel"),
                            Err(e) => crate::db_error(e),
                        }
                    }
                    Action::SetJobEnabled { job, enabled } => {
                        app.status =
                            match c.execute("SELECT jobs.alter_job($1, enabled => $2)", &[&job, &enabled]) {
                                Ok(_) => format!("job {job}: {}", if enabled { "resumed" } else { "paused" }),
                                Err(e) => crate::db_error(e),
                            }
                    }
                    Action::NextDatabase => match next_database(&mut c) {
                        Ok(Some(db)) => match connect_to(Some(&db)) {
                            Ok(fresh) => {
                                c = fresh;
                                app.reset();
                                since = epoch_now();
                            }
                            Err(e) => app.status = e,
                        },
                        Ok(None) => app.status = "no other database runs pg_jobs".into(),
                        Err(e) => app.status = e,
                    },
                }
                break;
            }
        }
    })();
    ratatui::restore();
    result
}

/// The database after this one (by name, wrapping) among those with a
/// pg_jobs scheduler.
fn next_database(c: &mut Client) -> Result<Option<String>, String> {
    let row = c
        .query_one(
            "WITH d AS (SELECT DISTINCT database::text AS name FROM jobs.workers
                         WHERE kind = 'scheduler' AND database IS NOT NULL)
             SELECT COALESCE((SELECT min(name) FROM d WHERE name > current_database()),
                             (SELECT min(name) FROM d WHERE name <> current_database()))",
            &[],
        )
        .map_err(crate::db_error)?;
    Ok(row.get(0))
}

/// `pg_jobs top --measure N`: the server time of `n` refreshes' queries
/// (as `EXPLAIN ANALYZE` reports it), per query and per refresh.
pub fn measure(c: &mut Client, n: usize) -> Result<(), String> {
    let mut per_refresh = Vec::new();
    let mut per_query: Vec<(&str, Vec<f64>)> = Vec::new();
    for _ in 0..n.max(1) {
        let times = data::measure(c)?;
        per_refresh.push(times.iter().map(|(_, ms)| ms).sum::<f64>());
        for (name, ms) in times {
            match per_query.iter_mut().find(|(n, _)| *n == name) {
                Some((_, v)) => v.push(ms),
                None => per_query.push((name, vec![ms])),
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("query       median server ms");
    for (name, v) in per_query.iter_mut() {
        println!("{name:<11} {:>8.3}", median(v));
    }
    let worst = per_refresh.iter().copied().fold(0.0, f64::max);
    println!(
        "refresh     {:>8.3}  (median of {}; worst {:.3})",
        median(&mut per_refresh),
        n.max(1),
        worst
    );
    Ok(())
}
