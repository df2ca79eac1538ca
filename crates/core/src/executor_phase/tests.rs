use super::*;
use proptest::prelude::*;
use std::collections::{HashSet, VecDeque};
use ExecutorEvent as E;
use ExecutorPhase as P;

/// Apply `events` from `from`, panicking on the first illegal one.
fn walk(from: ExecutorPhase, events: &[ExecutorEvent]) -> ExecutorPhase {
    events.iter().fold(from, |p, e| {
        p.on(*e).unwrap_or_else(|err| panic!("{err} (after {events:?})"))
    })
}

#[test]
fn the_shells_flows_are_legal() {
    // A fresh executor for a run dispatched by the scheduler, which fails;
    // the process exits after reporting.
    assert_eq!(
        walk(
            P::Free,
            &[
                E::Reserve,
                E::Claim,
                E::StartCommand,
                E::RecordOutcome,
                E::Exit,
                E::Free
            ]
        ),
        P::Free
    );
    // It ran, recorded its success in the command's transaction, took the
    // next run itself, and that one is harvested; then it is handed a run.
    assert_eq!(
        walk(
            P::Free,
            &[
                E::Reserve,
                E::Claim,
                E::StartCommand,
                E::RecordOutcome,
                E::ClaimNext,
                E::StartCommand,
                E::RecordOutcome,
                E::FinishRun,
                E::Harvested { retire: false },
                E::TakeIdle,
                E::HandOver,
                E::TakeAssignment,
                E::StartCommand,
            ]
        ),
        P::Running
    );
    // Started ahead of a due instant, pooled, idles out.
    assert_eq!(
        walk(
            P::Free,
            &[
                E::ReserveAhead,
                E::Claim,
                E::Pool { retire: false },
                E::Retire,
                E::Exit,
                E::Free
            ]
        ),
        P::Free
    );
    // Its command segment was gone: it reports before starting the command.
    assert_eq!(
        walk(P::Free, &[E::Reserve, E::Claim, E::RecordOutcome]),
        P::Finished
    );
    // The postmaster had no worker slot: the reservation is released.
    assert_eq!(walk(P::Free, &[E::Reserve, E::Release]), P::Free);
    // Killed at its timeout: the exit holds the run, for the harvest.
    assert_eq!(
        walk(
            P::Free,
            &[E::Reserve, E::Claim, E::StartCommand, E::KillForTimeout, E::Exit]
        ),
        P::ExitedWithRun
    );
    // A scheduler died between take_idle and hand_over: its successor
    // retires the executor, whose exit says nothing about the run.
    assert_eq!(walk(P::Pooled, &[E::TakeIdle, E::Retire, E::Exit]), P::ExitedIdle);
    // The extension is dropped while it runs: flagged, and then harvested
    // into retirement rather than the pool.
    assert_eq!(
        walk(
            P::Running,
            &[
                E::Retire,
                E::RecordOutcome,
                E::FinishRun,
                E::Harvested { retire: true }
            ]
        ),
        P::Retiring
    );
    assert_eq!(
        walk(P::Reserved, &[E::CancelRequested, E::Claim, E::CancelRequested]),
        P::Starting
    );
}

#[test]
fn what_the_0_3_shell_does_that_the_model_forbids() {
    // scheduler pass, `retry_soon`: registry::release(d.slot) of a warm
    // dispatch frees a live pooled executor's slot.
    assert!(P::HandoverPending.on(E::Release).is_err());
    assert_eq!(
        P::HandoverPending.on(E::AbandonHandover),
        Ok(P::Pooled),
        "what it should do"
    );
    // hand_over to an executor that retired at its idle timeout in between:
    // the run is handed to a process on its way out and is later crashed.
    assert!(P::Retiring.on(E::HandOver).is_err());
    // Nothing comes back from an exit but a free.
    for e in ExecutorEvent::ALL.into_iter().filter(|e| *e != E::Free) {
        assert!(
            P::ExitedWithRun.on(e).is_err() && P::ExitedIdle.on(e).is_err(),
            "{e:?}"
        );
    }
    assert!(
        P::Running.on(E::Free).is_err(),
        "a live process's slot is never freed"
    );
    assert!(P::Pooled.on(E::ClaimNext).is_err(), "only after a run of its own");
}

#[test]
fn every_phase_is_reachable_and_every_slot_can_be_freed() {
    let mut seen = HashSet::from([P::Free]);
    let mut todo = VecDeque::from([P::Free]);
    while let Some(p) = todo.pop_front() {
        for e in ExecutorEvent::ALL {
            if let Ok(q) = p.on(e) {
                if seen.insert(q) {
                    todo.push_back(q);
                }
            }
        }
    }
    assert_eq!(seen.len(), ExecutorPhase::ALL.len(), "reached {seen:?}");
    // From each phase, Free is reachable (no slot is stuck for good).
    for start in ExecutorPhase::ALL {
        let mut seen = HashSet::from([start]);
        let mut todo = VecDeque::from([start]);
        while let Some(p) = todo.pop_front() {
            for e in ExecutorEvent::ALL {
                if let Ok(q) = p.on(e) {
                    if seen.insert(q) {
                        todo.push_back(q);
                    }
                }
            }
        }
        assert!(seen.contains(&P::Free), "{start} can never be freed");
    }
}

#[test]
fn derived_flags() {
    for p in ExecutorPhase::ALL {
        let flags = [
            p.exited(),
            p.reusable(),
            p.outcome_ready(),
            p.assigned(),
            p.pending_handover(),
        ];
        assert!(flags.iter().filter(|f| **f).count() <= 1, "{p}");
        assert_eq!(ExecutorPhase::from_u8(p as u8), p);
        assert!(!(p.unclaimed() && p.has_process()));
        assert!(!(p.exited() && p.counts_against_capacity()));
        assert_eq!(
            p.reusable(),
            p.has_process() && !p.counts_against_capacity(),
            "{p}"
        );
    }
    assert_eq!(ExecutorPhase::from_u8(250), P::Free);
    assert_eq!(P::Reserved.state_name(), "starting");
    assert_eq!(P::Running.state_name(), "running");
    assert_eq!(P::Pooled.state_name(), "idle");
    assert_eq!(
        P::Free.on(E::Exit).unwrap_err().to_string(),
        "executor slot event Exit cannot happen in phase Free"
    );
}

proptest! {
    /// Random events from a free slot (illegal ones refused, no effect).
    #[test]
    fn random_slot_lives(events in proptest::collection::vec(proptest::sample::select(ExecutorEvent::ALL.to_vec()), 0..80)) {
        let mut p = P::Free;
        for e in events {
            let Ok(q) = p.on(e) else {
                continue;
            };
            // An exit lands where the run it held (or not) is handled.
            if e == E::Exit {
                prop_assert!(p.has_process());
                prop_assert_eq!(q == P::ExitedWithRun, p.holds_run());
            }
            // A slot holding a run is freed only once its exit is harvested,
            // or as a reservation that never started (the scheduler requeues
            // or crash-sweeps that run).
            if q == P::Free && p != P::Free {
                prop_assert!(matches!(p, P::ExitedWithRun | P::ExitedIdle | P::Reserved | P::ReservedAhead), "{} freed", p);
            }
            // Only the scheduler's reservation starts a slot's life.
            if p == P::Free {
                prop_assert!(matches!(e, E::Reserve | E::ReserveAhead));
            }
            // Flag events never change the phase.
            if matches!(e, E::CancelRequested | E::KillForTimeout) {
                prop_assert_eq!(p, q);
            }
            p = q;
        }
    }
}

/// A failed scheduler pass puts a slot it harvested back to awaiting its
/// harvest (its outcome's write was rolled back); nothing else can.
#[test]
fn only_a_harvested_slot_can_be_unharvested() {
    for p in ExecutorPhase::ALL {
        let undone = p.on(ExecutorEvent::UndoHarvest);
        match p {
            ExecutorPhase::Pooled | ExecutorPhase::Retiring => {
                assert_eq!(undone, Ok(ExecutorPhase::AwaitingHarvest), "{p:?}")
            }
            _ => assert!(undone.is_err(), "{p:?}"),
        }
    }
}

/// A committed `ALTER ROLE … SET` (or `ALTER DATABASE … SET`, `ALTER ROLE`)
/// retires every executor that has a process, whatever it is doing
/// (`shmem::retire_connected_executors`): each such phase admits `Retire`,
/// an idle one leaves the pool at once, a busy one keeps its phase and
/// retires after its run. Slots with no process yet (reserved) are left
/// alone: their process connects later and reads the new settings.
#[test]
fn a_settings_change_can_retire_every_connected_executor() {
    for p in ExecutorPhase::ALL {
        let retired = p.on(E::Retire);
        if !p.has_process() {
            assert!(retired.is_err(), "{p}");
            continue;
        }
        match p {
            P::Pooled | P::HandoverPending | P::Retiring => assert_eq!(retired, Ok(P::Retiring), "{p}"),
            _ => assert_eq!(retired, Ok(p), "{p}: busy, flagged"),
        }
    }
    // A busy one ends up retiring, never back in the pool: after its run
    // (harvested with the flag), or when it was connecting ahead of a due
    // instant (pooled with the flag).
    assert_eq!(
        walk(
            P::Running,
            &[
                E::Retire,
                E::RecordOutcome,
                E::FinishRun,
                E::Harvested { retire: true }
            ]
        ),
        P::Retiring
    );
    assert_eq!(
        walk(P::Warming, &[E::Retire, E::Pool { retire: true }]),
        P::Retiring
    );
    // One handed a run just before keeps it: the hand-over came first.
    assert_eq!(walk(P::Assigned, &[E::Retire, E::TakeAssignment]), P::Starting);
    // One claimed for a run not yet handed over is not handed it.
    assert!(walk(P::HandoverPending, &[E::Retire]).on(E::HandOver).is_err());
}
