//! What the buttons do: each one call of the SQL API, made as the signed-in
//! role, so the server decides (`jobs._acts_for`, row-level security) and
//! a refusal is its message and SQLSTATE, shown on the next page.

use super::auth::Flash;
use postgres::Client;
use std::collections::HashMap;

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Pause(String),
    Resume(String),
    RunNow(String),
    Cancel(i64),
    Retry(i64),
    PauseQueue(String),
    ResumeQueue(String),
    StopDaemon(String),
    StartDaemon(String),
}

impl Action {
    /// The action a form posted (`action` and its `name` or `run`).
    pub fn parse(form: &HashMap<String, String>) -> Result<Action, String> {
        let name = || {
            form.get("name")
                .filter(|n| !n.is_empty())
                .cloned()
                .ok_or_else(|| "no name given".to_owned())
        };
        let run = || {
            form.get("run")
                .and_then(|r| r.parse::<i64>().ok())
                .ok_or_else(|| "no run id given".to_owned())
        };
        Ok(match form.get("action").map(String::as_str) {
            Some("pause") => Action::Pause(name()?),
            Some("resume") => Action::Resume(name()?),
            Some("run_now") => Action::RunNow(name()?),
            Some("cancel") => Action::Cancel(run()?),
            Some("retry") => Action::Retry(run()?),
            Some("pause_queue") => Action::PauseQueue(name()?),
            Some("resume_queue") => Action::ResumeQueue(name()?),
            Some("stop_daemon") => Action::StopDaemon(name()?),
            Some("start_daemon") => Action::StartDaemon(name()?),
            other => return Err(format!("unknown action {other:?}")),
        })
    }

    /// The SQL function it calls, as the refusal names it.
    fn function(&self) -> &'static str {
        match self {
            Action::Pause(_) => "jobs.pause",
            Action::Resume(_) => "jobs.resume",
            Action::RunNow(_) => "jobs.run_now",
            Action::Cancel(_) => "jobs.cancel",
            Action::Retry(_) => "jobs.retry",
            Action::PauseQueue(_) => "jobs.pause_queue",
            Action::ResumeQueue(_) => "jobs.resume_queue",
            Action::StopDaemon(_) => "jobs.stop_daemon",
            Action::StartDaemon(_) => "jobs.start_daemon",
        }
    }

    /// Call it; what happened, for the next page.
    pub fn perform(&self, c: &mut Client) -> Result<Flash, postgres::Error> {
        let ok = |text: String, run: Option<i64>| Flash { ok: true, text, run };
        let named = |c: &mut Client, sql: &str, n: &str| c.execute(sql, &[&n]).map(|_| ());
        Ok(match self {
            Action::Pause(n) => {
                named(c, "SELECT jobs.pause($1)", n)?;
                ok(
                    format!("Job {n} paused: it is not scheduled until resumed."),
                    None,
                )
            }
            Action::Resume(n) => {
                named(c, "SELECT jobs.resume($1)", n)?;
                ok(format!("Job {n} resumed."), None)
            }
            Action::RunNow(n) => {
                let id: i64 = c.query_one("SELECT jobs.run_now($1)", &[n])?.get(0);
                ok(format!("Job {n}: run {id} queued."), Some(id))
            }
            Action::Cancel(id) => {
                let done: bool = c.query_one("SELECT jobs.cancel($1)", &[id])?.get(0);
                if done {
                    ok(format!("Run {id} cancelled."), Some(*id))
                } else {
                    Flash {
                        ok: false,
                        text: format!("Run {id}: nothing to cancel (it has finished)."),
                        run: Some(*id),
                    }
                }
            }
            Action::Retry(id) => {
                let new: i64 = c.query_one("SELECT jobs.retry($1)", &[id])?.get(0);
                ok(format!("Run {id} retried: run {new} queued."), Some(new))
            }
            Action::PauseQueue(n) => {
                named(c, "SELECT jobs.pause_queue($1)", n)?;
                ok(format!("Queue {n} paused."), None)
            }
            Action::ResumeQueue(n) => {
                named(c, "SELECT jobs.resume_queue($1)", n)?;
                ok(format!("Queue {n} resumed."), None)
            }
            Action::StopDaemon(n) => {
                named(c, "SELECT jobs.stop_daemon($1)", n)?;
                ok(format!("Daemon {n} stopping."), None)
            }
            Action::StartDaemon(n) => {
                named(c, "SELECT jobs.start_daemon($1)", n)?;
                ok(format!("Daemon {n} started."), None)
            }
        })
    }

    /// A refusal from the server, as the page shows it.
    pub fn refused(&self, message: &str, sqlstate: Option<&str>) -> Flash {
        Flash {
            ok: false,
            text: match sqlstate {
                Some(code) => format!("{} refused: {message} (SQLSTATE {code})", self.function()),
                None => format!("{} failed: {message}", self.function()),
            },
            run: None,
        }
    }
}

/// Where to go after an action: a path of this site only (never another
/// host, which would make the form an open redirect).
pub fn back(target: Option<&String>) -> String {
    match target {
        Some(t) if t.starts_with('/') && !t.starts_with("//") && !t.contains('\\') => t.clone(),
        _ => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn actions_parse_from_forms() {
        assert_eq!(
            Action::parse(&form(&[("action", "retry"), ("run", "42")])),
            Ok(Action::Retry(42))
        );
        assert_eq!(
            Action::parse(&form(&[("action", "pause"), ("name", "nightly")])),
            Ok(Action::Pause("nightly".into()))
        );
        assert!(Action::parse(&form(&[("action", "retry"), ("run", "x")])).is_err());
        assert!(Action::parse(&form(&[("action", "pause"), ("name", "")])).is_err());
        assert!(Action::parse(&form(&[("action", "drop_database")])).is_err());
        assert!(Action::parse(&form(&[])).is_err());
    }

    #[test]
    fn redirects_stay_on_this_site() {
        assert_eq!(back(Some(&"/runs?status=failed".into())), "/runs?status=failed");
        assert_eq!(back(Some(&"//evil.example/".into())), "/");
        assert_eq!(back(Some(&"https://evil.example/".into())), "/");
        assert_eq!(back(Some(&"/\\evil.example".into())), "/");
        assert_eq!(back(None), "/");
    }
}
