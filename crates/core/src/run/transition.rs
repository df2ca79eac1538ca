//! The run model: every event that writes `jobs.run.status`, the statuses
//! it may start from, and the one it leads to. [`RunEvent::rule`] is the
//! whole model; everything else (`transition`, `can_become`, the SQL
//! guards) is derived from it.
//!
//! ```text
//! (new row)          ─submit | run_now | fire | retry→ queued
//! (new row)          ─skip→ skipped             (overlap skip: never runs)
//! (new row)          ─await→ waiting            (submitted with depends_on)
//! waiting            ─release→ queued           (its parents ended as run_if asks)
//! waiting            ─unmet→ skipped            (they did not, or one was cancelled)
//! queued             ─dispatch | reserve→ starting
//! queued             ─claim→ running            (a pooled executor takes the head)
//! queued             ─refuse→ failed            (it can never start as it stands)
//! waiting | queued | starting ─cancel→ cancelled (jobs.cancel before it started)
//! starting           ─requeue→ queued
//! starting           ─start→ running            (the scheduler shows it)
//! starting | running ─record→ succeeded         (in the command's own transaction)
//! starting | running ─harvest→ succeeded | failed | timed_out | cancelled | crashed
//! starting | running ─crash_sweep→ crashed      (no executor holds it)
//! ```
//! A retry is a new row (`attempt + 1`): the failed row stays terminal, so
//! a run is terminal exactly once and nothing leaves a terminal status.

use super::outcome::Ending;
use super::status::{RunStatus, StatusSet};
use std::fmt;

/// Something that happens to a run and writes its status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RunEvent {
    /// `jobs.submit`: the row is created `queued`.
    Submit,
    /// `jobs.submit` with `depends_on`: the row is created `waiting`.
    Await,
    /// The scheduler finds every parent of a waiting run finished as its
    /// `run_if` asks: it joins the queue ([`super::depends::decide`]).
    Release,
    /// ... or finds they did not (or one was cancelled or skipped): it ends
    /// `skipped`, never having run, and its own dependants follow.
    Unmet,
    /// `jobs.run_now`: a job's run created `queued`.
    RunNow,
    /// The scheduler fires a due job: its run created `queued`.
    Fire,
    /// The scheduler fires a due job whose overlap policy is `skip` while a
    /// run of it goes on: the row is created `skipped` (and never runs).
    Skip,
    /// A retryable ending with attempts left: the next attempt is a new row,
    /// `queued` with a `not_before` ([`super::retry::decide`]).
    Retry,
    /// The scheduler picks a queued run for an executor (a fresh one, or an
    /// idle pooled one it hands the run to).
    Dispatch,
    /// A pooled executor takes a batch from the head of the queue: its
    /// current run and those reserved to run after it say `starting`.
    Reserve,
    /// A pooled executor takes the head of the queue alone and starts it.
    Claim,
    /// The scheduler finds a queued run cannot start at all (its database
    /// or owner is gone, the owner may not log in or connect): it fails
    /// without an executor ([`super::start::WhyNot`]).
    Refuse,
    /// `jobs.cancel` of a run no executor has started.
    Cancel,
    /// A run that is `starting` goes back to the queue as if never taken:
    /// no worker slot, its executor left, or reserved runs taken back.
    Requeue,
    /// The scheduler shows a run whose executor started it `running`.
    Start,
    /// A single-transaction command's success, recorded inside that
    /// transaction (the exactly-once record).
    Record,
    /// The scheduler writes what an executor reported, or that it vanished.
    Harvest(Ending),
    /// The scheduler finds a run in flight that no executor holds.
    CrashSweep,
}

/// Where an event starts: the row does not exist yet, or it is in one of
/// these statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Creation,
    From(StatusSet),
}

impl RunEvent {
    /// Every event (each harvest ending is one).
    pub const ALL: [RunEvent; 22] = [
        RunEvent::Submit,
        RunEvent::Await,
        RunEvent::Release,
        RunEvent::Unmet,
        RunEvent::RunNow,
        RunEvent::Fire,
        RunEvent::Skip,
        RunEvent::Retry,
        RunEvent::Dispatch,
        RunEvent::Reserve,
        RunEvent::Claim,
        RunEvent::Refuse,
        RunEvent::Cancel,
        RunEvent::Requeue,
        RunEvent::Start,
        RunEvent::Record,
        RunEvent::Harvest(Ending::Succeeded),
        RunEvent::Harvest(Ending::Failed),
        RunEvent::Harvest(Ending::TimedOut),
        RunEvent::Harvest(Ending::Cancelled),
        RunEvent::Harvest(Ending::Crashed),
        RunEvent::CrashSweep,
    ];

    /// The model: each event, where it may happen, and what it makes of
    /// the run. The only place a transition is allowed.
    pub const fn rule(self) -> (Source, RunStatus) {
        use RunStatus::*;
        const QUEUED: StatusSet = StatusSet::of(&[Queued]);
        const STARTING: StatusSet = StatusSet::of(&[Starting]);
        const NOT_STARTED: StatusSet = StatusSet::of(&[Waiting, Queued, Starting]);
        const WAITING: StatusSet = StatusSet::of(&[Waiting]);
        match self {
            RunEvent::Submit | RunEvent::RunNow | RunEvent::Fire | RunEvent::Retry => {
                (Source::Creation, Queued)
            }
            RunEvent::Skip => (Source::Creation, Skipped),
            RunEvent::Await => (Source::Creation, Waiting),
            RunEvent::Release => (Source::From(WAITING), Queued),
            RunEvent::Unmet => (Source::From(WAITING), Skipped),
            RunEvent::Dispatch | RunEvent::Reserve => (Source::From(QUEUED), Starting),
            RunEvent::Claim => (Source::From(QUEUED), Running),
            RunEvent::Refuse => (Source::From(QUEUED), Failed),
            RunEvent::Cancel => (Source::From(NOT_STARTED), Cancelled),
            RunEvent::Requeue => (Source::From(STARTING), Queued),
            RunEvent::Start => (Source::From(STARTING), Running),
            RunEvent::Record => (Source::From(StatusSet::IN_FLIGHT), Succeeded),
            RunEvent::Harvest(e) => (Source::From(StatusSet::IN_FLIGHT), e.status()),
            RunEvent::CrashSweep => (Source::From(StatusSet::IN_FLIGHT), Crashed),
        }
    }

    /// The status the event leads to.
    pub const fn to(self) -> RunStatus {
        self.rule().1
    }

    /// Whether the event creates the row.
    pub const fn creates(self) -> bool {
        matches!(self.rule().0, Source::Creation)
    }

    /// The statuses the event may start from (empty for a creation): what
    /// its statement's `WHERE status …` guard must say.
    pub const fn from_statuses(self) -> StatusSet {
        match self.rule().0 {
            Source::Creation => StatusSet::EMPTY,
            Source::From(s) => s,
        }
    }

    /// The event's guard on `column`, e.g. for [`RunEvent::Requeue`]
    /// `status OPERATOR(pg_catalog.=) 'starting'`.
    pub fn guard_sql(self, column: &str) -> String {
        self.from_statuses().sql_guard(column)
    }

    /// Its name in logs and errors: `dispatch`, `harvest(timed_out)`.
    pub fn name(self) -> String {
        match self {
            RunEvent::Harvest(e) => format!("harvest({})", e.status()),
            other => format!("{other:?}")
                .chars()
                .flat_map(|c| {
                    let lower = c.to_ascii_lowercase();
                    (c.is_ascii_uppercase().then_some('_').into_iter()).chain([lower])
                })
                .skip(1)
                .collect(),
        }
    }
}

impl fmt::Display for RunEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// An event that the model does not allow where it happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub struct IllegalTransition {
    /// `None`: the row was being created.
    pub from: Option<RunStatus>,
    pub event: RunEvent,
}

impl fmt::Display for IllegalTransition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.from, self.event.creates()) {
            (None, _) => write!(f, "a run cannot be created by {}", self.event),
            (Some(s), true) => write!(f, "{} creates a run, and run is already {s}", self.event),
            (Some(s), false) => write!(
                f,
                "{} cannot happen to a run that is {s} (only to one that is {})",
                self.event,
                self.event.from_statuses()
            ),
        }
    }
}

/// What `event` makes of a run that is `from` (`None`: the row is being
/// created).
pub const fn transition(from: Option<RunStatus>, event: RunEvent) -> Result<RunStatus, IllegalTransition> {
    let ok = match (event.rule().0, from) {
        (Source::Creation, None) => true,
        (Source::From(set), Some(s)) => set.contains(s),
        _ => false,
    };
    if ok {
        Ok(event.to())
    } else {
        Err(IllegalTransition { from, event })
    }
}

impl RunStatus {
    /// What `event` makes of a run that is `self`.
    pub const fn on(self, event: RunEvent) -> Result<RunStatus, IllegalTransition> {
        transition(Some(self), event)
    }

    /// The statuses a run can be created in (`queued`, `skipped`).
    pub fn can_be_created(self) -> bool {
        RunEvent::ALL.into_iter().any(|e| e.creates() && e.to() == self)
    }
}

/// How a status-writing statement differs from the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlMismatch {
    #[error("the statement for {event} lacks the guard `{expected}`")]
    MissingGuard { event: RunEvent, expected: String },
    #[error("the statement for {event} sets status '{found}', the model says '{expected}'")]
    WrongTarget {
        event: RunEvent,
        found: String,
        expected: RunStatus,
    },
}

/// Check an `UPDATE` of `jobs.run.status` against the model: it carries
/// the event's guard (on `status`, with or without a table alias) and, when
/// it sets a literal status, sets the event's target. Whitespace is
/// ignored. For a test that lists every statement, or a debug assertion
/// where a statement is built.
pub fn check_update_sql(event: RunEvent, sql: &str) -> Result<(), SqlMismatch> {
    let sql = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    let expected = event.guard_sql("status");
    if !event.creates() && !sql.contains(&expected) {
        return Err(SqlMismatch::MissingGuard { event, expected });
    }
    if let Some(rest) = sql.split("SET status = '").nth(1) {
        let found = rest.split('\'').next().unwrap_or_default();
        if found != event.to().as_str() {
            return Err(SqlMismatch::WrongTarget {
                event,
                found: found.to_owned(),
                expected: event.to(),
            });
        }
    }
    Ok(())
}
