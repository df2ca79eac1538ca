//! Tests of the run model as a whole: the transitions the shell performs,
//! the ones it must not, and random event sequences.

use super::*;
use proptest::prelude::*;
use std::collections::{HashSet, VecDeque};
use RunStatus::*;

fn creation_events() -> impl Iterator<Item = RunEvent> {
    RunEvent::ALL.into_iter().filter(|e| e.creates())
}

#[test]
fn the_writes_the_shell_performs_are_legal() {
    use outcome::Ending as E;
    // (from, event, to) of every write in pg_jobs 0.3 (see status_writes.md).
    let writes = [
        (None, RunEvent::Submit, Queued),
        (None, RunEvent::RunNow, Queued),
        (None, RunEvent::Fire, Queued),
        (None, RunEvent::Skip, Skipped),
        (None, RunEvent::Retry, Queued),
        (Some(Queued), RunEvent::Dispatch, Starting),
        (Some(Queued), RunEvent::Reserve, Starting),
        (Some(Queued), RunEvent::Claim, Running),
        (Some(Queued), RunEvent::Refuse, Failed),
        (Some(Queued), RunEvent::Cancel, Cancelled),
        (Some(Starting), RunEvent::Cancel, Cancelled),
        (Some(Starting), RunEvent::Requeue, Queued),
        (Some(Starting), RunEvent::Start, Running),
        (Some(Starting), RunEvent::Record, Succeeded),
        (Some(Running), RunEvent::Record, Succeeded),
        (Some(Starting), RunEvent::Harvest(E::Failed), Failed),
        (Some(Running), RunEvent::Harvest(E::TimedOut), TimedOut),
        (Some(Running), RunEvent::Harvest(E::Cancelled), Cancelled),
        (Some(Starting), RunEvent::Harvest(E::Crashed), Crashed),
        (Some(Starting), RunEvent::CrashSweep, Crashed),
        (Some(Running), RunEvent::CrashSweep, Crashed),
    ];
    for (from, event, to) in writes {
        assert_eq!(transition(from, event), Ok(to), "{from:?} --{event}--> {to}");
    }
}

#[test]
fn what_the_model_forbids() {
    let illegal = [
        (Queued, RunEvent::Start),
        (Queued, RunEvent::Record),
        (Queued, RunEvent::Harvest(Ending::Succeeded)),
        (Queued, RunEvent::CrashSweep),
        (Running, RunEvent::Requeue),
        (Running, RunEvent::Cancel),
        (Running, RunEvent::Claim),
        (Starting, RunEvent::Dispatch),
        (Queued, RunEvent::Submit),
    ];
    for (from, event) in illegal {
        assert!(from.on(event).is_err(), "{from} --{event}--> must be illegal");
    }
    assert!(!Queued.can_become(Succeeded), "nothing skips running");
    assert!(!Running.can_become(Queued), "a started run never goes back");
    assert!(!Running.can_become(Starting));
    assert!(transition(None, RunEvent::Dispatch).is_err());
    assert_eq!(
        Succeeded
            .on(RunEvent::Harvest(Ending::Crashed))
            .unwrap_err()
            .to_string(),
        "harvest(crashed) cannot happen to a run that is succeeded (only to one that is {starting, running})"
    );
    assert_eq!(
        transition(None, RunEvent::Start).unwrap_err().to_string(),
        "a run cannot be created by start"
    );
    assert_eq!(
        Queued.on(RunEvent::Retry).unwrap_err().to_string(),
        "retry creates a run, and run is already queued"
    );
}

#[test]
fn terminal_states_are_final() {
    for from in RunStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
        for e in RunEvent::ALL {
            assert!(from.on(e).is_err(), "{from} --{e}--> must be illegal");
        }
        for to in RunStatus::ALL {
            assert!(!from.can_become(to));
        }
    }
    for e in RunEvent::ALL {
        assert!(e.from_statuses().iter().all(|s| !s.is_terminal()), "{e}");
        assert_eq!(e.creates(), e.from_statuses().is_empty(), "{e}");
    }
}

#[test]
fn can_become_agrees_with_on() {
    for from in RunStatus::ALL {
        for to in RunStatus::ALL {
            let by_event = RunEvent::ALL.into_iter().any(|e| from.on(e) == Ok(to));
            assert_eq!(from.can_become(to), by_event, "{from} -> {to}");
        }
    }
    let created: StatusSet = RunStatus::ALL
        .into_iter()
        .filter(|s| s.can_be_created())
        .collect();
    assert_eq!(created, StatusSet::of(&[Queued, Skipped, Waiting]));
}

#[test]
fn every_status_is_reachable_from_creation_and_every_live_one_can_end() {
    let mut seen: HashSet<RunStatus> = creation_events().map(RunEvent::to).collect();
    let mut todo: VecDeque<RunStatus> = seen.iter().copied().collect();
    while let Some(s) = todo.pop_front() {
        for e in RunEvent::ALL {
            if let Ok(t) = s.on(e) {
                if seen.insert(t) {
                    todo.push_back(t);
                }
            }
        }
    }
    assert_eq!(seen.len(), RunStatus::ALL.len(), "reached {seen:?}");
    for s in StatusSet::UNFINISHED.iter() {
        assert!(
            s.can_become(Crashed) || s == Queued || s == Waiting,
            "{s} must be able to crash"
        );
        assert!(RunStatus::ALL
            .into_iter()
            .any(|t| t.is_terminal() && s.can_become(t)));
    }
}

#[test]
fn guards_as_the_shell_writes_them() {
    let g = |e: RunEvent| e.guard_sql("r.status");
    assert_eq!(g(RunEvent::Dispatch), "r.status OPERATOR(pg_catalog.=) 'queued'");
    assert_eq!(g(RunEvent::Requeue), "r.status OPERATOR(pg_catalog.=) 'starting'");
    assert_eq!(
        g(RunEvent::Harvest(Ending::Failed)),
        "r.status OPERATOR(pg_catalog.=) ANY ('{starting,running}')"
    );
    assert_eq!(
        g(RunEvent::Cancel),
        "r.status OPERATOR(pg_catalog.=) ANY ('{queued,starting,waiting}')"
    );
    assert_eq!(g(RunEvent::Release), "r.status OPERATOR(pg_catalog.=) 'waiting'");
    assert_eq!(
        RunStatus::Waiting.on(RunEvent::Unmet),
        Ok(Skipped),
        "an unmet condition skips a waiting run"
    );
    assert_eq!(g(RunEvent::Submit), "false", "a creation has no guard");
    assert_eq!(RunEvent::CrashSweep.name(), "crash_sweep");
    assert_eq!(RunEvent::RunNow.to_string(), "run_now");
}

/// Every status-writing `UPDATE` of pg_jobs 0.3.0 (commit 82cd212), its
/// SET and WHERE parts, checked against the model. The four without a
/// status guard rely on a row lock taken by an earlier statement of the same
/// transaction; they are listed as such until the shell derives its guards
/// from the model.
#[test]
fn the_shells_statements_checked_against_the_model() {
    use outcome::Ending as E;
    let guarded = [
        (RunEvent::Requeue, "scheduler.rs:1377 requeue_reserved",
         "UPDATE jobs.run SET status = 'queued', pid = NULL WHERE id OPERATOR(pg_catalog.=) ANY ($1) AND status OPERATOR(pg_catalog.=) 'starting'"),
        (RunEvent::Requeue, "scheduler.rs:1391 requeue",
         "UPDATE jobs.run SET status = 'queued', message = $2 WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) 'starting'"),
        (RunEvent::Start, "scheduler.rs:726 mark_started_and_crashed",
         "UPDATE jobs.run r SET status = 'running', pid = u.pid WHERE r.id OPERATOR(pg_catalog.=) u.id AND r.status OPERATOR(pg_catalog.=) 'starting'"),
        (RunEvent::CrashSweep, "scheduler.rs:773 mark_started_and_crashed",
         "UPDATE jobs.run r SET status = 'crashed', finished_at = pg_catalog.clock_timestamp() WHERE r.id OPERATOR(pg_catalog.=) g.id AND r.status OPERATOR(pg_catalog.=) ANY ('{starting,running}')"),
        (RunEvent::Harvest(E::Failed), "scheduler.rs:650 harvest",
         "UPDATE jobs.run r SET status = u.status, pid = u.pid WHERE r.id OPERATOR(pg_catalog.=) u.id AND r.status OPERATOR(pg_catalog.=) ANY ('{starting,running}')"),
        (RunEvent::Record, "executor.rs:617 mark_succeeded",
         "UPDATE jobs.run SET status = 'succeeded', finished_at = pg_catalog.clock_timestamp()
           WHERE id OPERATOR(pg_catalog.=) $1 AND status OPERATOR(pg_catalog.=) ANY ('{starting,running}')"),
        (RunEvent::Claim, "executor.rs:402 claim_head",
         "WITH head AS (SELECT r.id FROM jobs.run r WHERE r.status OPERATOR(pg_catalog.=) 'queued' FOR UPDATE SKIP LOCKED)
          UPDATE jobs.run u SET status = 'running', pid = pg_catalog.pg_backend_pid() FROM head WHERE u.id OPERATOR(pg_catalog.=) head.id"),
    ];
    for (event, site, sql) in guarded {
        assert_eq!(check_update_sql(event, sql), Ok(()), "{site}");
    }
    let unguarded = [
        (RunEvent::Dispatch, "scheduler.rs:1296 pick_runs",
         "UPDATE jobs.run SET status = 'starting', message = NULL WHERE id OPERATOR(pg_catalog.=) ANY ($1)"),
        (RunEvent::Refuse, "scheduler.rs:1255 pick_runs",
         "UPDATE jobs.run SET status = 'failed', finished_at = pg_catalog.clock_timestamp(), sqlstate = $2, message = $3 WHERE id OPERATOR(pg_catalog.=) $1"),
        (RunEvent::Reserve, "executor.rs:380 claim_batch",
         "UPDATE jobs.run SET status = 'starting', pid = pg_catalog.pg_backend_pid(), message = NULL WHERE id OPERATOR(pg_catalog.=) ANY ($1)"),
        (RunEvent::Cancel, "api.rs:300 cancel_locked",
         "UPDATE jobs.run SET status = 'cancelled', finished_at = pg_catalog.clock_timestamp() WHERE id OPERATOR(pg_catalog.=) $1"),
    ];
    for (event, site, sql) in unguarded {
        assert!(
            matches!(
                check_update_sql(event, sql),
                Err(SqlMismatch::MissingGuard { .. })
            ),
            "{site}"
        );
    }
    assert!(matches!(
        check_update_sql(
            RunEvent::Requeue,
            "UPDATE jobs.run SET status = 'running' WHERE status OPERATOR(pg_catalog.=) 'starting'"
        ),
        Err(SqlMismatch::WrongTarget { .. })
    ));
}

fn any_event() -> impl Strategy<Value = RunEvent> {
    proptest::sample::select(RunEvent::ALL.to_vec())
}

proptest! {
    /// A run's life under random events (illegal ones refused and without
    /// effect): it is terminal exactly once if it ends at all, never leaves
    /// a terminal status, and each step agrees with can_become.
    #[test]
    fn random_lives_obey_the_model(
        create in proptest::sample::select(creation_events().collect::<Vec<_>>()),
        events in proptest::collection::vec(any_event(), 0..60)
    ) {
        let mut status = transition(None, create).unwrap();
        let mut became_terminal = usize::from(status.is_terminal());
        for e in events {
            match status.on(e) {
                Ok(next) => {
                    prop_assert!(!status.is_terminal(), "{} left terminal {}", e, status);
                    prop_assert!(status.can_become(next) || status == next);
                    prop_assert!(e.from_statuses().contains(status));
                    if next.is_terminal() {
                        became_terminal += 1;
                    }
                    status = next;
                }
                Err(err) => {
                    prop_assert_eq!(err.from, Some(status));
                    prop_assert!(!e.from_statuses().contains(status));
                }
            }
        }
        prop_assert!(became_terminal <= 1);
        prop_assert_eq!(became_terminal == 1, status.is_terminal());
    }

    /// Any two statuses: some event links them iff can_become says so.
    #[test]
    fn can_become_is_derived_from_on(
        a in proptest::sample::select(RunStatus::ALL.to_vec()),
        b in proptest::sample::select(RunStatus::ALL.to_vec())
    ) {
        prop_assert_eq!(a.can_become(b), RunEvent::ALL.into_iter().any(|e| a.on(e) == Ok(b)));
    }
}
