//! The state of `pg_jobs top` between refreshes, and what each key does:
//! plain data and decisions, no terminal, so it is unit-tested.

use super::data::{Filter, Snapshot, Totals};
use std::collections::VecDeque;

/// Samples kept for the sparklines: one a refresh, about four minutes.
pub const HISTORY: usize = 240;

/// What a key asks `top` to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Nothing,
    Quit,
    /// `jobs.cancel` the run.
    Cancel(i64),
    /// Pause (`enabled => false`) or resume the job.
    SetJobEnabled {
        job: String,
        enabled: bool,
    },
    /// Connect to the next database that has pg_jobs.
    NextDatabase,
    /// Refresh now (the filter changed).
    Refresh,
}

/// A key, as `top` reads it (the terminal's key events mapped to these).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Key {
    Char(char),
    Up,
    Down,
    Enter,
    Esc,
    Backspace,
}

#[derive(Debug, Default)]
pub struct App {
    pub snapshot: Snapshot,
    /// Runs started, succeeded and failed per second, at each refresh.
    pub started: VecDeque<u64>,
    pub succeeded: VecDeque<u64>,
    pub failed: VecDeque<u64>,
    last: Option<(Totals, f64)>,
    /// The selected row of the running runs.
    pub selected: usize,
    pub filter: Filter,
    /// Typing a filter (after `/`): the text so far.
    pub editing: Option<String>,
    /// What the last action did, or its error.
    pub status: String,
}

impl App {
    /// Take a new snapshot read at `at` (seconds): rates from the change in
    /// the totals since the last one.
    pub fn update(&mut self, s: Snapshot, at: f64) {
        if let Some((prev, then)) = self.last {
            let dt = (at - then).max(0.001);
            // A counter that fell (a server restart) starts over.
            let rate = |now: f64, before: f64| (((now - before).max(0.0)) / dt).round() as u64;
            push(&mut self.started, rate(s.totals.started, prev.started));
            push(&mut self.succeeded, rate(s.totals.succeeded, prev.succeeded));
            push(&mut self.failed, rate(s.totals.failed, prev.failed));
        }
        self.last = Some((s.totals, at));
        self.snapshot = s;
        if self.selected >= self.snapshot.running.len() {
            self.selected = self.snapshot.running.len().saturating_sub(1);
        }
    }

    /// The history starts over (another database, another connection).
    pub fn reset(&mut self) {
        *self = App {
            filter: std::mem::take(&mut self.filter),
            ..App::default()
        };
    }

    pub fn key(&mut self, k: Key) -> Action {
        if let Some(text) = self.editing.as_mut() {
            match k {
                Key::Char(c) => text.push(c),
                Key::Backspace => {
                    text.pop();
                }
                Key::Enter => {
                    self.filter = Filter(self.editing.take().unwrap_or_default());
                    return Action::Refresh;
                }
                Key::Esc => self.editing = None,
                _ => {}
            }
            return Action::Nothing;
        }
        let selected = self.snapshot.running.get(self.selected);
        match k {
            Key::Char('q') | Key::Esc => Action::Quit,
            Key::Up => {
                self.selected = self.selected.saturating_sub(1);
                Action::Nothing
            }
            Key::Down => {
                if self.selected + 1 < self.snapshot.running.len() {
                    self.selected += 1;
                }
                Action::Nothing
            }
            Key::Char('c') => selected.map_or(Action::Nothing, |r| Action::Cancel(r.id)),
            Key::Char('p') => match selected {
                Some(r) if !r.job.is_empty() => Action::SetJobEnabled {
                    job: r.job.clone(),
                    enabled: !r.job_enabled.unwrap_or(true),
                },
                Some(_) => {
                    self.status = "the selected run was submitted, not scheduled: no job to pause".into();
                    Action::Nothing
                }
                None => Action::Nothing,
            },
            Key::Char('d') => Action::NextDatabase,
            Key::Char('/') => {
                self.editing = Some(self.filter.0.clone());
                Action::Nothing
            }
            _ => Action::Nothing,
        }
    }
}

fn push(h: &mut VecDeque<u64>, v: u64) {
    if h.len() == HISTORY {
        h.pop_front();
    }
    h.push_back(v);
}

#[cfg(test)]
mod tests {
    use super::super::data::Running;
    use super::*;

    fn snapshot(started: f64, running: &[(i64, &str, Option<bool>)]) -> Snapshot {
        Snapshot {
            totals: Totals {
                started,
                succeeded: started / 2.0,
                failed: 0.0,
            },
            running: running
                .iter()
                .map(|&(id, job, job_enabled)| Running {
                    id,
                    job: job.into(),
                    job_enabled,
                    ..Running::default()
                })
                .collect(),
            ..Snapshot::default()
        }
    }

    #[test]
    fn rates_come_from_the_change_in_totals() {
        let mut a = App::default();
        a.update(snapshot(100.0, &[]), 10.0);
        assert!(a.started.is_empty(), "one snapshot has no rate yet");
        a.update(snapshot(120.0, &[]), 12.0);
        assert_eq!(a.started, [10]);
        assert_eq!(a.succeeded, [5]);
        // A restart resets the counters: no negative rate.
        a.update(snapshot(3.0, &[]), 13.0);
        assert_eq!(a.started, [10, 0]);
        for i in 0..HISTORY {
            a.update(snapshot(3.0 + i as f64, &[]), 14.0 + i as f64);
        }
        assert_eq!(a.started.len(), HISTORY);
    }

    #[test]
    fn keys_select_cancel_pause_and_filter() {
        let mut a = App::default();
        a.update(snapshot(0.0, &[(7, "nightly", Some(true)), (9, "", None)]), 0.0);
        assert_eq!(a.key(Key::Char('c')), Action::Cancel(7));
        assert_eq!(
            a.key(Key::Char('p')),
            Action::SetJobEnabled {
                job: "nightly".into(),
                enabled: false
            }
        );
        assert_eq!(a.key(Key::Down), Action::Nothing);
        assert_eq!(a.key(Key::Down), Action::Nothing, "stays on the last row");
        assert_eq!(a.key(Key::Char('c')), Action::Cancel(9));
        assert_eq!(
            a.key(Key::Char('p')),
            Action::Nothing,
            "a submitted run has no job"
        );
        assert!(a.status.contains("no job"));
        // Typing a filter: letters go to it, not to the commands.
        assert_eq!(a.key(Key::Char('/')), Action::Nothing);
        for c in "nqc".chars() {
            assert_eq!(a.key(Key::Char(c)), Action::Nothing);
        }
        a.key(Key::Backspace);
        assert_eq!(a.key(Key::Enter), Action::Refresh);
        assert_eq!(a.filter.0, "nq");
        assert_eq!(a.key(Key::Char('d')), Action::NextDatabase);
        assert_eq!(a.key(Key::Char('q')), Action::Quit);
        // Fewer runs after a refresh: the selection follows.
        a.update(snapshot(0.0, &[(7, "nightly", Some(false))]), 1.0);
        assert_eq!(a.selected, 0);
        assert_eq!(
            a.key(Key::Char('p')),
            Action::SetJobEnabled {
                job: "nightly".into(),
                enabled: true
            }
        );
    }
}
