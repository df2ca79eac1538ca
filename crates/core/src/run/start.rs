//! Why a queued run may not start now, and what becomes of it.
//!
//! Some reasons make it wait in the queue (it is not due, its job's overlap
//! policy holds it back, no executor or worker slot is free): it starts
//! later by itself. Others mean it can never start as it stands (its
//! database or owner is gone, the owner may not log in or connect): it fails
//! at once with a clear SQLSTATE instead of killing an executor at
//! connection time ([`RunEvent::Refuse`]).
//!
//! [`check`] asks the questions in the order the scheduler does: first
//! whether the run may be picked at all (the queue query's filters, then
//! capacity), then whether its owner can run it. The reasons that arise
//! only while the scheduler acts (no worker slot, an executor that left)
//! are named here too, for their message and event.

use super::transition::RunEvent;
use crate::overlap::Overlap;
use jiff::Timestamp;
use std::fmt;

/// Why a run does not start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WhyNot {
    /// Its `not_before` (a retry's backoff, a `start_at`) is still ahead.
    NotYetDue,
    /// Another run of its job is going and the job does not allow overlap.
    Overlap,
    /// `pg_jobs.max_executors` are busy.
    NoExecutorCapacity,
    /// The shared-memory registry has no free slot.
    RegistryFull,
    /// The postmaster had no background worker slot (`max_worker_processes`).
    NoWorkerSlot,
    /// As [`WhyNot::NoWorkerSlot`], and an idle pooled executor was asked to
    /// give its slot up.
    IdleExecutorRetiring,
    /// An earlier run is waiting for a worker slot: later ones wait too, so
    /// due order is kept.
    BehindEarlierRun,
    /// The idle executor it was handed to exited in between.
    ExecutorGone,
    /// Its database no longer exists.
    DatabaseGone,
    /// Its owner role no longer exists.
    RoleGone,
    /// Its owner role has NOLOGIN.
    RoleCannotLogin,
    /// Its owner lacks CONNECT on its database.
    NoConnectPrivilege,
}

impl WhyNot {
    /// The run fails instead of waiting.
    pub const fn fails_run(self) -> bool {
        matches!(
            self,
            WhyNot::DatabaseGone | WhyNot::RoleGone | WhyNot::RoleCannotLogin | WhyNot::NoConnectPrivilege
        )
    }

    /// What it does to the run's status: fail it ([`RunEvent::Refuse`]),
    /// put it back from `starting` ([`RunEvent::Requeue`], for reasons met
    /// after it was dispatched), or nothing (it stays queued).
    pub const fn event(self) -> Option<RunEvent> {
        match self {
            _ if self.fails_run() => Some(RunEvent::Refuse),
            WhyNot::NoWorkerSlot
            | WhyNot::IdleExecutorRetiring
            | WhyNot::BehindEarlierRun
            | WhyNot::ExecutorGone => Some(RunEvent::Requeue),
            _ => None,
        }
    }

    /// The SQLSTATE a refused run is recorded with.
    pub const fn sqlstate(self) -> Option<&'static str> {
        match self {
            WhyNot::DatabaseGone => Some("3D000"),
            WhyNot::RoleGone => Some("42704"),
            WhyNot::RoleCannotLogin => Some("28000"),
            WhyNot::NoConnectPrivilege => Some("42501"),
            _ => None,
        }
    }

    /// The message the run's row shows (`database`: its database's name).
    /// `None` where the row is left as it is.
    pub fn message(self, database: &str) -> Option<String> {
        Some(match self {
            WhyNot::DatabaseGone => format!("database \"{database}\" no longer exists"),
            WhyNot::RoleGone => "the run's owner role no longer exists".to_owned(),
            WhyNot::RoleCannotLogin => "the run's owner role is not permitted to log in (NOLOGIN)".to_owned(),
            WhyNot::NoConnectPrivilege => {
                format!("the run's owner role lacks CONNECT privilege on database \"{database}\"")
            }
            WhyNot::NoWorkerSlot => {
                "waiting: no free background worker slot (max_worker_processes); retrying".to_owned()
            }
            WhyNot::IdleExecutorRetiring => {
                "waiting: an idle executor is giving up its background worker slot".to_owned()
            }
            WhyNot::BehindEarlierRun => {
                "waiting for an earlier run to get a background worker slot".to_owned()
            }
            WhyNot::NotYetDue
            | WhyNot::Overlap
            | WhyNot::NoExecutorCapacity
            | WhyNot::RegistryFull
            | WhyNot::ExecutorGone => return None,
        })
    }

    /// Words for a log line or a status, for every reason (the waiting
    /// reasons never reach a run's message; see [`WhyNot::message`]).
    fn describe(self) -> &'static str {
        match self {
            WhyNot::NotYetDue => "not due yet",
            WhyNot::Overlap => "another run of its job is going and its overlap policy waits",
            WhyNot::NoExecutorCapacity => "pg_jobs.max_executors executors are busy",
            WhyNot::RegistryFull => "pg_jobs' worker registry is full",
            WhyNot::ExecutorGone => "the executor it was handed to is gone",
            WhyNot::DatabaseGone => "its database no longer exists",
            WhyNot::RoleGone => "the run's owner role no longer exists",
            WhyNot::RoleCannotLogin => "the run's owner role is not permitted to log in (NOLOGIN)",
            WhyNot::NoConnectPrivilege => "the run's owner role lacks CONNECT privilege on its database",
            WhyNot::NoWorkerSlot => "no free background worker slot",
            WhyNot::IdleExecutorRetiring => "an idle executor is giving up its background worker slot",
            WhyNot::BehindEarlierRun => "waiting for an earlier run to get a background worker slot",
        }
    }
}

impl fmt::Display for WhyNot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// What the run's owner may do, as the catalogs say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    pub can_login: bool,
    /// CONNECT on the run's database.
    pub can_connect: bool,
}

/// What is known about a queued run when deciding whether it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StartFacts {
    pub now: Timestamp,
    pub not_before: Option<Timestamp>,
    /// Its job's policy; `None` for a submitted run.
    pub overlap: Option<Overlap>,
    /// Runs of its job `starting` or `running`.
    pub active_runs_of_job: u32,
    /// Executors free under `pg_jobs.max_executors`.
    pub free_executors: usize,
    pub database_exists: bool,
    /// `None`: the owner role is gone.
    pub owner: Option<Owner>,
}

/// Whether the run may start now; if not, why (the first reason in the
/// scheduler's order: waits before refusals, so a run that is not due yet
/// is not failed early).
pub fn check(f: &StartFacts) -> Result<(), WhyNot> {
    if f.not_before.is_some_and(|t| t > f.now) {
        return Err(WhyNot::NotYetDue);
    }
    if f.overlap.is_some_and(|o| !o.may_start(f.active_runs_of_job)) {
        return Err(WhyNot::Overlap);
    }
    if f.free_executors == 0 {
        return Err(WhyNot::NoExecutorCapacity);
    }
    refusal(f.database_exists, f.owner).map_or(Ok(()), Err)
}

/// Why a run can never start as it stands (`None`: it can): the part of
/// [`check`] an executor repeats before claiming runs of its own.
pub fn refusal(database_exists: bool, owner: Option<Owner>) -> Option<WhyNot> {
    match owner {
        _ if !database_exists => Some(WhyNot::DatabaseGone),
        None => Some(WhyNot::RoleGone),
        Some(o) if !o.can_login => Some(WhyNot::RoleCannotLogin),
        Some(o) if !o.can_connect => Some(WhyNot::NoConnectPrivilege),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::status::RunStatus;

    fn ok_facts() -> StartFacts {
        StartFacts {
            now: "2026-01-01T00:00:00Z".parse().unwrap(),
            not_before: None,
            overlap: Some(Overlap::Skip),
            active_runs_of_job: 0,
            free_executors: 1,
            database_exists: true,
            owner: Some(Owner {
                can_login: true,
                can_connect: true,
            }),
        }
    }

    #[test]
    fn reasons_in_the_schedulers_order() {
        let f = ok_facts();
        assert_eq!(check(&f), Ok(()));
        let later = StartFacts {
            not_before: Some("2026-01-01T00:00:01Z".parse().unwrap()),
            database_exists: false,
            ..f
        };
        assert_eq!(check(&later), Err(WhyNot::NotYetDue), "waits before it fails");
        let busy = StartFacts {
            active_runs_of_job: 1,
            ..f
        };
        assert_eq!(check(&busy), Err(WhyNot::Overlap));
        let allow = StartFacts {
            overlap: Some(Overlap::Allow),
            ..busy
        };
        assert_eq!(check(&allow), Ok(()));
        let submitted = StartFacts {
            overlap: None,
            ..busy
        };
        assert_eq!(check(&submitted), Ok(()), "a submitted run has no overlap policy");
        let full = StartFacts {
            free_executors: 0,
            ..f
        };
        assert_eq!(check(&full), Err(WhyNot::NoExecutorCapacity));
        let nologin = StartFacts {
            owner: Some(Owner {
                can_login: false,
                can_connect: false,
            }),
            ..f
        };
        assert_eq!(check(&nologin), Err(WhyNot::RoleCannotLogin));
        assert_eq!(refusal(true, None), Some(WhyNot::RoleGone));
        assert_eq!(refusal(false, None), Some(WhyNot::DatabaseGone));
        let no_connect = Owner {
            can_login: true,
            can_connect: false,
        };
        assert_eq!(refusal(true, Some(no_connect)), Some(WhyNot::NoConnectPrivilege));
    }

    #[test]
    fn refusals_fail_the_run_with_the_shells_messages() {
        assert_eq!(WhyNot::DatabaseGone.sqlstate(), Some("3D000"));
        assert_eq!(
            WhyNot::DatabaseGone.message("db1").unwrap(),
            "database \"db1\" no longer exists"
        );
        assert_eq!(
            WhyNot::NoConnectPrivilege.message("db1").unwrap(),
            "the run's owner role lacks CONNECT privilege on database \"db1\""
        );
        assert_eq!(WhyNot::Overlap.message("db1"), None);
        assert_eq!(
            WhyNot::RoleCannotLogin.to_string(),
            "the run's owner role is not permitted to log in (NOLOGIN)"
        );
        // Every reason has words of its own, never Rust's debug text.
        assert_eq!(
            WhyNot::Overlap.to_string(),
            "another run of its job is going and its overlap policy waits"
        );
    }

    #[test]
    fn each_reason_is_an_event_of_the_model() {
        use WhyNot::*;
        for w in [
            NotYetDue,
            Overlap,
            NoExecutorCapacity,
            RegistryFull,
            NoWorkerSlot,
            IdleExecutorRetiring,
            BehindEarlierRun,
            ExecutorGone,
            DatabaseGone,
            RoleGone,
            RoleCannotLogin,
            NoConnectPrivilege,
        ] {
            assert_eq!(w.fails_run(), w.sqlstate().is_some(), "{w:?}");
            match w.event() {
                Some(RunEvent::Refuse) => {
                    assert!(w.fails_run() && RunStatus::Queued.on(RunEvent::Refuse).is_ok())
                }
                Some(RunEvent::Requeue) => {
                    assert_eq!(RunStatus::Starting.on(RunEvent::Requeue), Ok(RunStatus::Queued))
                }
                None => assert!(!w.fails_run()),
                Some(other) => panic!("{w:?} -> {other}"),
            }
        }
    }
}
