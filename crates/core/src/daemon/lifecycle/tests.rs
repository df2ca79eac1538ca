use super::*;
use proptest::prelude::*;

const D: RestartDelays = RestartDelays {
    restart_delay: 5_000,
    max_restart_delay: 300_000,
};

fn facts(idle: Option<DaemonState>) -> Facts {
    Facts {
        idle,
        refused: false,
        process_started_at: None,
        delays: D,
    }
}

fn exited(exit: Exit, uptime_ms: u64) -> DaemonEvent {
    DaemonEvent::Exited {
        exit,
        uptime_ms,
        enabled: true,
        delays: D,
    }
}

#[test]
fn a_new_daemon_starts_comes_up_and_restarts_after_its_delay() {
    let mut l = Life::new(0, None, 0);
    assert_eq!(l.tick(10, &facts(None)), (Action::Start, None));
    l.on(DaemonEvent::Started, 10);
    assert_eq!(
        (l.state, l.since, l.has_process),
        (DaemonState::Starting, 10, true)
    );
    let up = Facts {
        process_started_at: Some(15),
        ..facts(None)
    };
    assert_eq!(l.tick(20, &up), (Action::Nothing, None));
    assert_eq!((l.state, l.since), (DaemonState::Running, 15));
    let ended = l.on(exited(Exit::Clean, 1_000), 1_000_000).unwrap();
    assert!(ended.restarting && !ended.stopping);
    assert_eq!(l.next_start, Some(1_000_000 + 5_000_000));
    assert_eq!(
        (l.state, l.restarts, l.has_process),
        (DaemonState::WaitingRestart, 1, false)
    );
    assert_eq!(
        l.tick(2_000_000, &facts(None)),
        (Action::Nothing, Some(6_000_000))
    );
    assert_eq!(l.tick(6_000_000, &facts(None)).0, Action::Start);
}

#[test]
fn a_daemon_that_should_not_run_is_cancelled_then_terminated() {
    let mut l = Life::new(0, None, 0);
    l.on(DaemonEvent::Adopted { started_at: 5 }, 10);
    assert_eq!(l.state, DaemonState::Running);
    let stopped = facts(Some(DaemonState::Stopped));
    assert_eq!(l.tick(100, &stopped), (Action::Cancel, Some(100 + 5_000_000)));
    assert_eq!(l.state, DaemonState::Stopping);
    assert_eq!(l.tick(200, &stopped), (Action::Nothing, Some(100 + 5_000_000)));
    assert_eq!(l.tick(100 + 5_000_000, &stopped), (Action::Terminate, None));
    assert_eq!(l.tick(100 + 6_000_000, &stopped), (Action::Nothing, None));
    let ended = l
        .on(
            DaemonEvent::Exited {
                exit: Exit::Crash,
                uptime_ms: 1,
                enabled: false,
                delays: D,
            },
            7_000_000,
        )
        .unwrap();
    assert!(ended.stopping && !ended.restarting && ended.next_start.is_none());
    assert_eq!(l.restarts, 0);
    assert_eq!(l.tick(7_000_001, &stopped), (Action::Nothing, None));
    assert_eq!((l.state, l.since), (DaemonState::Stopped, 7_000_001));
}

#[test]
fn a_redefined_daemon_is_stopped_and_started_again_at_once() {
    let mut l = Life::new(0, None, 0);
    l.on(DaemonEvent::Started, 1);
    l.on(
        DaemonEvent::Redefined {
            changed: true,
            enabled_again: false,
        },
        2_000_000,
    );
    assert!(l.restart_now);
    assert_eq!(l.tick(2_000_001, &facts(None)).0, Action::Cancel);
    let ended = l.on(exited(Exit::Error, 1), 2_000_002).unwrap();
    assert!(ended.restarting && !ended.stopping && ended.next_start.is_none());
    assert!(!l.restart_now);
    assert_eq!(l.tick(2_000_003, &facts(None)).0, Action::Start);
}

#[test]
fn a_process_starts_at_most_once_a_second_whatever_asks() {
    let mut l = Life::new(0, None, 0);
    l.on(DaemonEvent::Started, 10);
    // Redefined at once: the new process waits for the old one's second.
    l.on(
        DaemonEvent::Redefined {
            changed: true,
            enabled_again: false,
        },
        20,
    );
    assert_eq!(l.tick(30, &facts(None)).0, Action::Cancel);
    l.on(exited(Exit::Error, 0), 40);
    assert_eq!(l.tick(50, &facts(None)), (Action::Nothing, Some(1_000_010)));
    assert_eq!(l.state, DaemonState::WaitingRestart);
    assert!(!l.start_due(true, 60));
    assert_eq!(l.tick(1_000_010, &facts(None)).0, Action::Start);
    // stop_daemon then start_daemon within the second: the same.
    l.on(DaemonEvent::Started, 1_000_010);
    let stopped = facts(Some(DaemonState::Stopped));
    assert_eq!(l.tick(1_000_020, &stopped).0, Action::Cancel);
    l.on(
        DaemonEvent::Exited {
            exit: Exit::Error,
            uptime_ms: 0,
            enabled: false,
            delays: D,
        },
        1_000_030,
    );
    l.on(
        DaemonEvent::Redefined {
            changed: false,
            enabled_again: true,
        },
        1_000_040,
    );
    assert_eq!(
        l.tick(1_000_050, &facts(None)),
        (Action::Nothing, Some(2_000_010))
    );
    // An adopted process counts from when it started.
    let mut a = Life::new(0, None, 0);
    a.on(DaemonEvent::Adopted { started_at: 500 }, 600);
    assert_eq!(a.last_start, Some(500));
}

#[test]
fn no_daemon_slot_waits_for_a_freed_slot_or_the_recheck() {
    let mut l = Life::new(0, None, 0);
    assert_eq!(l.tick(0, &facts(None)).0, Action::Start);
    l.on(DaemonEvent::NoDaemonSlot { retry_ms: 10_000 }, 0);
    assert_eq!(
        (l.state, l.next_start),
        (DaemonState::NoDaemonSlot, Some(10_000_000))
    );
    assert_eq!(l.tick(10, &facts(None)), (Action::Nothing, Some(10_000_000)));
    assert_eq!(l.state, DaemonState::NoDaemonSlot, "not shown as waiting_restart");
    assert!(!l.start_due(true, 20));
    l.on(DaemonEvent::DaemonSlotFreed, 30);
    assert!(l.start_due(true, 30));
    assert_eq!(l.tick(30, &facts(None)).0, Action::Start);
    // A freed slot means nothing to a daemon that is not waiting for one.
    let mut w = Life::new(0, Some(5_000_000), 0);
    w.on(DaemonEvent::DaemonSlotFreed, 40);
    assert_eq!(w.next_start, Some(5_000_000));
}

#[test]
fn a_deferred_start_waits_until_the_budget_has_room() {
    let mut l = Life::new(0, None, 0);
    assert_eq!(l.tick(0, &facts(None)).0, Action::Start);
    l.on(DaemonEvent::Deferred { until: 700_000 }, 5);
    assert_eq!(
        (l.state, l.next_start),
        (DaemonState::WaitingRestart, Some(700_000))
    );
    assert_eq!(l.tick(10, &facts(None)), (Action::Nothing, Some(700_000)));
    assert_eq!(l.tick(700_000, &facts(None)).0, Action::Start);
}

#[test]
fn a_refused_daemon_backs_off_as_if_it_failed() {
    let mut l = Life::new(0, None, 0);
    let refused = Facts {
        refused: true,
        ..facts(None)
    };
    assert_eq!(l.tick(0, &refused), (Action::Refuse, Some(5_000_000)));
    assert_eq!(l.state, DaemonState::WaitingRestart);
    assert_eq!(l.tick(5_000_000, &refused), (Action::Refuse, Some(15_000_000)));
    // start_daemon (enabled again) starts afresh.
    l.on(
        DaemonEvent::Redefined {
            changed: false,
            enabled_again: true,
        },
        6_000_000,
    );
    assert_eq!((l.next_start, l.backoff), (None, DaemonBackoff::default()));
}

#[test]
fn no_worker_slot_is_shown_and_retried() {
    let mut l = Life::new(0, None, 0);
    assert_eq!(l.tick(0, &facts(None)).0, Action::Start);
    l.on(DaemonEvent::NoWorkerSlot { retry_ms: 1_000 }, 0);
    assert_eq!(
        (l.state, l.next_start),
        (DaemonState::NoWorkerSlot, Some(1_000_000))
    );
    assert_eq!(l.tick(10, &facts(None)), (Action::Nothing, Some(1_000_000)));
    assert_eq!(l.state, DaemonState::NoWorkerSlot, "not shown as waiting_restart");
    l.on(DaemonEvent::NoWorkerSlot { retry_ms: 1_000 }, 1_000_000);
    assert_eq!(l.since, 0, "still the same wait");
}

#[test]
fn delays_near_the_maximum_saturate() {
    let huge = RestartDelays {
        restart_delay: u64::MAX,
        max_restart_delay: u64::MAX,
    };
    let mut l = Life::new(0, None, 0);
    l.on(DaemonEvent::Started, 0);
    l.on(
        DaemonEvent::Exited {
            exit: Exit::Clean,
            uptime_ms: 0,
            enabled: true,
            delays: huge,
        },
        i64::MAX - 1,
    );
    assert_eq!(l.next_start, Some(i64::MAX));
}

#[test]
fn a_dropped_daemon_is_forgotten_once_its_process_is_gone() {
    let mut l = Life::new(0, None, 0);
    l.on(DaemonEvent::Started, 0);
    l.on(DaemonEvent::Dropped, 1);
    assert!(!l.forgotten() && !l.start_due(true, 2));
    let ended = l.on(exited(Exit::Clean, 1), 3).unwrap();
    assert!(!ended.restarting);
    assert!(l.forgotten());
}

/// One step of a random run: a tick with these facts, or an event the
/// supervisor could report at that point.
#[derive(Debug, Clone)]
enum Step {
    Tick { idle: u8, refused: bool, up: bool },
    Redefined { changed: bool, enabled_again: bool },
    Dropped,
    Exit { kind: u8, uptime_ms: u64, enabled: bool },
    StartFails { retry_ms: u64 },
    NoDaemonSlot { retry_ms: u64 },
    DaemonSlotFreed,
    Deferred { ms: u64 },
    Wait { ms: u64 },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (0u8..4, any::<bool>(), any::<bool>()).prop_map(|(idle, refused, up)| Step::Tick {
            idle,
            refused,
            up
        }),
        (any::<bool>(), any::<bool>()).prop_map(|(changed, enabled_again)| Step::Redefined {
            changed,
            enabled_again
        }),
        Just(Step::Dropped),
        (0u8..3, 0u64..20_000, any::<bool>()).prop_map(|(kind, uptime_ms, enabled)| Step::Exit {
            kind,
            uptime_ms,
            enabled
        }),
        (1u64..2_000).prop_map(|retry_ms| Step::StartFails { retry_ms }),
        (1u64..20_000).prop_map(|retry_ms| Step::NoDaemonSlot { retry_ms }),
        Just(Step::DaemonSlotFreed),
        (0u64..2_000).prop_map(|ms| Step::Deferred { ms }),
        (0u64..400_000).prop_map(|ms| Step::Wait { ms }),
    ]
}

proptest! {
    /// Whatever happens, in an order a supervisor can see it: a daemon with
    /// a process shows a state that has one; a start is asked for only when
    /// it should run, has no process, its delay is over and its last start
    /// is at least MIN_START_INTERVAL ago; a terminate comes only after a
    /// cancel and the grace period; restarts never go down; a restart is
    /// never scheduled in the past.
    #[test]
    fn random_lives_keep_the_invariants(steps in proptest::collection::vec(step(), 1..80)) {
        let mut l = Life::new(0, None, 0);
        let mut now: i64 = 1_000_000;
        let mut last_start_asked = false;
        for s in steps {
            let restarts = l.restarts;
            match s {
                Step::Tick { idle, refused, up } => {
                    let idle = [None, Some(DaemonState::Stopped), Some(DaemonState::NotOnThisNode), None][idle as usize];
                    let f = Facts { idle, refused, process_started_at: up.then_some(now), delays: D };
                    let before = l;
                    let (action, wake) = l.tick(now, &f);
                    prop_assert!(wake.is_none_or(|w| w >= now));
                    match action {
                        Action::Start => {
                            prop_assert!(!before.has_process && idle.is_none() && !refused);
                            prop_assert!(before.next_start.is_none_or(|t| t <= now));
                            prop_assert!(before
                                .last_start
                                .is_none_or(|t| now >= t + MIN_START_INTERVAL as i64 * 1000));
                        }
                        Action::Terminate => {
                            let stop = before.stop.unwrap();
                            prop_assert!(!stop.terminated && now >= stop.sent_at + STOP_GRACE_MS * 1000);
                        }
                        Action::Cancel => prop_assert!(before.has_process && before.stop.is_none()),
                        Action::Refuse => prop_assert!(l.next_start.is_some_and(|t| t >= now)),
                        Action::Nothing => {}
                    }
                    if !l.has_process {
                        if let Some(state) = idle {
                            prop_assert_eq!(l.state, state);
                        }
                    }
                    last_start_asked = action == Action::Start;
                    if last_start_asked {
                        l.on(DaemonEvent::Started, now);
                        last_start_asked = false;
                    }
                }
                Step::StartFails { retry_ms } => {
                    // Only right after a tick asked for a start (reported instead of Started).
                    if !l.has_process && l.tick(now, &facts(None)).0 == Action::Start {
                        l.on(DaemonEvent::NoWorkerSlot { retry_ms }, now);
                        prop_assert_eq!(l.state, DaemonState::NoWorkerSlot);
                    }
                }
                Step::NoDaemonSlot { retry_ms } => {
                    if !l.has_process && l.tick(now, &facts(None)).0 == Action::Start {
                        l.on(DaemonEvent::NoDaemonSlot { retry_ms }, now);
                        prop_assert_eq!(l.state, DaemonState::NoDaemonSlot);
                        prop_assert!(!l.start_due(true, now));
                    }
                }
                Step::DaemonSlotFreed => {
                    l.on(DaemonEvent::DaemonSlotFreed, now);
                }
                Step::Deferred { ms } => {
                    if !l.has_process && l.tick(now, &facts(None)).0 == Action::Start {
                        l.on(DaemonEvent::Deferred { until: now + ms as i64 * 1000 }, now);
                        prop_assert!(l.next_start.is_some_and(|t| t >= now));
                    }
                }
                Step::Redefined { changed, enabled_again } => {
                    l.on(DaemonEvent::Redefined { changed, enabled_again }, now);
                }
                Step::Dropped => {
                    l.on(DaemonEvent::Dropped, now);
                }
                Step::Exit { kind, uptime_ms, enabled } => {
                    if l.has_process {
                        let exit = [Exit::Clean, Exit::Error, Exit::Crash][kind as usize];
                        let e = l.on(DaemonEvent::Exited { exit, uptime_ms, enabled, delays: D }, now).unwrap();
                        prop_assert!(!l.has_process && l.stop.is_none());
                        prop_assert!(e.next_start.is_none_or(|t| t >= now));
                        prop_assert_eq!(l.restarts, restarts + e.restarting as i64);
                    }
                }
                Step::Wait { ms } => now += ms as i64 * 1000,
            }
            prop_assert!(l.restarts >= restarts);
            if l.has_process {
                prop_assert!(l.state.has_worker(), "{:?} with a process", l.state);
            }
            prop_assert!(!last_start_asked);
        }
    }
}
