//! Drawing one frame of `pg_jobs top` from its state.

use super::app::App;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Sparkline, Table, TableState};
use ratatui::Frame;

/// Seconds as `1h02m`, `3m05s`, `12.3s`.
pub fn duration(s: f64) -> String {
    let s = s.max(0.0);
    if s >= 3600.0 {
        format!("{}h{:02}m", (s / 3600.0) as u64, ((s % 3600.0) / 60.0) as u64)
    } else if s >= 60.0 {
        format!("{}m{:02}s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{s:.1}s")
    }
}

pub fn draw(f: &mut Frame, app: &App) {
    let s = &app.snapshot;
    let [head, top, spark, mid, bottom, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(10),
        Constraint::Length(5),
        Constraint::Min(6),
        Constraint::Length(12),
        Constraint::Length(1),
    ])
    .areas(f.area());

    let scope = if s.cluster_wide {
        "all databases"
    } else {
        "what this role sees here"
    };
    f.render_widget(
        Paragraph::new(format!(
            " pg_jobs top — database {} as {} — rates: {scope} — refresh {:.1} ms{}",
            s.database,
            s.role,
            s.took_ms,
            if app.filter.0.is_empty() {
                String::new()
            } else {
                format!(" — filter \"{}\"", app.filter.0)
            }
        ))
        .style(Style::new().add_modifier(Modifier::REVERSED)),
        head,
    );

    let [workers, queues] =
        Layout::horizontal([Constraint::Percentage(65), Constraint::Percentage(35)]).areas(top);
    let rows = s.workers.iter().map(|w| {
        Row::new([
            w.kind.clone(),
            w.database.clone(),
            w.role.clone(),
            w.state.clone(),
            w.run.clone(),
            duration(w.since_s),
        ])
    });
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(10),
                Constraint::Length(12),
                Constraint::Length(12),
                Constraint::Length(9),
                Constraint::Length(8),
                Constraint::Length(8),
            ],
        )
        .header(header(&["kind", "database", "role", "state", "run", "for"]))
        .block(Block::new().borders(Borders::ALL).title(" Workers ")),
        workers,
    );
    let rows = s.depths.iter().map(|d| {
        Row::new([
            if d.name.is_empty() {
                "(no queue)".to_owned()
            } else {
                d.name.clone()
            },
            format!("{}", d.queued as u64),
            duration(d.oldest_s),
        ])
    });
    f.render_widget(
        Table::new(
            rows,
            [Constraint::Min(12), Constraint::Length(8), Constraint::Length(9)],
        )
        .header(header(&["queue", "queued", "oldest"]))
        .block(
            Block::new()
                .borders(Borders::ALL)
                .title(format!(" Queues in {} ", s.database)),
        ),
        queues,
    );

    let [a, b, c] = Layout::horizontal([Constraint::Ratio(1, 3); 3]).areas(spark);
    sparkline(f, a, "started/s", &app.started, Color::Cyan);
    sparkline(f, b, "succeeded/s", &app.succeeded, Color::Green);
    sparkline(f, c, "failed/s", &app.failed, Color::Red);

    let rows = s.running.iter().map(|r| {
        Row::new([
            r.id.to_string(),
            r.job.clone(),
            r.role.clone(),
            duration(r.for_s),
            match r.job_enabled {
                Some(true) => "enabled".into(),
                Some(false) => "paused".into(),
                None => String::new(),
            },
            r.command.clone(),
        ])
    });
    let mut state = TableState::default().with_selected((!s.running.is_empty()).then_some(app.selected));
    f.render_stateful_widget(
        Table::new(
            rows,
            [
                Constraint::Length(8),
                Constraint::Length(14),
                Constraint::Length(12),
                Constraint::Length(8),
                Constraint::Length(8),
                Constraint::Min(20),
            ],
        )
        .header(header(&["run", "job", "role", "for", "job is", "command"]))
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .block(
            Block::new()
                .borders(Borders::ALL)
                .title(" Running, longest first "),
        ),
        mid,
        &mut state,
    );

    let rows = s.failures.iter().map(|x| {
        Row::new([
            Cell::from(x.at.clone()),
            Cell::from(x.id.to_string()),
            Cell::from(x.job.clone()),
            Cell::from(x.role.clone()),
            Cell::from(x.status.clone()),
            Cell::from(x.sqlstate.clone()).style(Style::new().fg(Color::Red)),
            Cell::from(x.message.clone()),
        ])
    });
    f.render_widget(
        Table::new(
            rows,
            [
                Constraint::Length(8),
                Constraint::Length(8),
                Constraint::Length(14),
                Constraint::Length(12),
                Constraint::Length(9),
                Constraint::Length(8),
                Constraint::Min(20),
            ],
        )
        .header(header(&[
            "at", "run", "job", "role", "status", "sqlstate", "message",
        ]))
        .block(Block::new().borders(Borders::ALL).title(" Latest failures ")),
        bottom,
    );

    let help = match &app.editing {
        Some(text) => format!(" filter (job or role): {text}▏ Enter apply, Esc cancel"),
        None => format!(
            " ↑↓ select  c cancel run  p pause/resume its job  / filter  d next database  q quit   {}",
            app.status
        ),
    };
    f.render_widget(Paragraph::new(Line::from(help)), foot);
}

fn header(names: &[&str]) -> Row<'static> {
    Row::new(names.iter().map(|n| n.to_string())).style(Style::new().add_modifier(Modifier::BOLD))
}

fn sparkline(f: &mut Frame, area: Rect, name: &str, data: &std::collections::VecDeque<u64>, color: Color) {
    let now = data.back().copied().unwrap_or(0);
    // The newest samples that fit, right-aligned as time goes.
    let width = area.width.saturating_sub(2) as usize;
    let shown: Vec<u64> = data
        .iter()
        .skip(data.len().saturating_sub(width))
        .copied()
        .collect();
    f.render_widget(
        Sparkline::default()
            .block(
                Block::new()
                    .borders(Borders::ALL)
                    .title(format!(" {name} {now} ")),
            )
            .data(&shown)
            .style(Style::new().fg(color)),
        area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(12.34), "12.3s");
        assert_eq!(duration(185.0), "3m05s");
        assert_eq!(duration(3720.0), "1h02m");
        assert_eq!(duration(-1.0), "0.0s");
    }
}
