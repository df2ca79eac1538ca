//! Runs that wait for others (`jobs.submit(…, depends_on, run_if)`): when a
//! waiting run may leave `waiting`, and whether it then runs
//! ([`RunEvent::Release`](super::RunEvent::Release)) or ends `skipped`
//! ([`RunEvent::Unmet`](super::RunEvent::Unmet)), from how its parents
//! ended.
//!
//! * It waits while any parent is not finished (a parent that failed with
//!   attempts left is not finished: its retry takes its place among the
//!   parents, so a dependant follows the last attempt).
//! * A parent that was cancelled, or skipped (its own condition unmet), skips
//!   it, whatever its `run_if`: cancelling a run skips what waits on it, and
//!   a skip propagates down a workflow.
//! * Otherwise `run_if` decides: `succeeded` — every parent succeeded;
//!   `failed` — some parent failed, timed out or crashed (a handler);
//!   `finished` — always.
//! * A parent that no longer exists (its history was purged) skips it: what
//!   it waited for cannot be known.
//!
//! The skip says which parent decided it, for the run's message.

use super::RunStatus;
use std::fmt;
use std::str::FromStr;

/// `run_if`: what a waiting run's parents must have done for it to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunIf {
    Succeeded,
    Failed,
    Finished,
}

impl RunIf {
    pub const ALL: [RunIf; 3] = [RunIf::Succeeded, RunIf::Failed, RunIf::Finished];

    pub const fn as_str(self) -> &'static str {
        match self {
            RunIf::Succeeded => "succeeded",
            RunIf::Failed => "failed",
            RunIf::Finished => "finished",
        }
    }
}

impl fmt::Display for RunIf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid run_if \"{0}\": it is 'succeeded', 'failed' or 'finished'")]
pub struct UnknownRunIf(pub String);

impl FromStr for RunIf {
    type Err = UnknownRunIf;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunIf::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRunIf(s.to_owned()))
    }
}

/// What becomes of a waiting run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// A parent is not finished yet.
    Wait,
    /// It joins the queue.
    Run,
    /// It ends `skipped`; `because` is the parent that decided it.
    Skip { because: i64, why: Why },
}

/// Why a waiting run was skipped, for its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// That parent ended this way, which `run_if` does not accept (or which
    /// skips whatever the condition: cancelled, skipped).
    Ended(RunStatus),
    /// That parent no longer exists.
    Gone,
}

impl Verdict {
    /// The skipped run's message: which parent decided it and how.
    pub fn message(&self, run_if: RunIf) -> Option<String> {
        match self {
            Verdict::Skip {
                because,
                why: Why::Gone,
            } => Some(format!(
                "skipped: run {because}, which it depends on, no longer exists"
            )),
            Verdict::Skip {
                because,
                why: Why::Ended(s),
            } => Some(match s {
                RunStatus::Cancelled | RunStatus::Skipped => {
                    format!("skipped: run {because}, which it depends on, was {s}")
                }
                _ => format!("skipped: run {because}, which it depends on, ended {s} (run_if is '{run_if}')"),
            }),
            _ => None,
        }
    }
}

/// Decide for a run waiting with `run_if` on `parents` (id and status;
/// `None`: the row is gone), in the order they were listed.
pub fn decide(run_if: RunIf, parents: &[(i64, Option<RunStatus>)]) -> Verdict {
    if parents.iter().any(|(_, s)| s.is_some_and(|s| !s.is_terminal())) {
        return Verdict::Wait;
    }
    if let Some((id, _)) = parents.iter().find(|(_, s)| s.is_none()) {
        return Verdict::Skip {
            because: *id,
            why: Why::Gone,
        };
    }
    let ended = parents.iter().filter_map(|(id, s)| s.map(|s| (*id, s)));
    let mut ended = ended.collect::<Vec<_>>();
    if let Some((id, s)) = ended
        .iter()
        .find(|(_, s)| matches!(s, RunStatus::Cancelled | RunStatus::Skipped))
    {
        return Verdict::Skip {
            because: *id,
            why: Why::Ended(*s),
        };
    }
    let failed = |s: &RunStatus| matches!(s, RunStatus::Failed | RunStatus::TimedOut | RunStatus::Crashed);
    let skip = |(id, s): (i64, RunStatus)| Verdict::Skip {
        because: id,
        why: Why::Ended(s),
    };
    match run_if {
        RunIf::Finished => Verdict::Run,
        RunIf::Succeeded => match ended.iter().find(|(_, s)| *s != RunStatus::Succeeded) {
            Some(&p) => skip(p),
            None => Verdict::Run,
        },
        RunIf::Failed => {
            if ended.iter().any(|(_, s)| failed(s)) {
                Verdict::Run
            } else {
                // Every parent succeeded (an empty list cannot wait).
                ended.truncate(1);
                ended.pop().map_or(Verdict::Run, skip)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use RunStatus::*;

    #[test]
    fn waits_while_a_parent_is_unfinished() {
        for s in [Queued, Starting, Running, Waiting] {
            for r in RunIf::ALL {
                assert_eq!(decide(r, &[(1, Some(Succeeded)), (2, Some(s))]), Verdict::Wait);
            }
        }
    }

    #[test]
    fn run_if_decides_between_finished_parents() {
        let ok = [(1, Some(Succeeded)), (2, Some(Succeeded))];
        let one_failed = [(1, Some(Succeeded)), (2, Some(TimedOut))];
        assert_eq!(decide(RunIf::Succeeded, &ok), Verdict::Run);
        assert_eq!(
            decide(RunIf::Succeeded, &one_failed),
            Verdict::Skip {
                because: 2,
                why: Why::Ended(TimedOut)
            }
        );
        assert_eq!(decide(RunIf::Failed, &one_failed), Verdict::Run);
        assert_eq!(
            decide(RunIf::Failed, &ok),
            Verdict::Skip {
                because: 1,
                why: Why::Ended(Succeeded)
            }
        );
        assert_eq!(decide(RunIf::Finished, &one_failed), Verdict::Run);
        assert_eq!(decide(RunIf::Finished, &ok), Verdict::Run);
    }

    #[test]
    fn a_cancelled_or_skipped_parent_skips_whatever_the_condition() {
        for r in RunIf::ALL {
            for s in [Cancelled, Skipped] {
                let v = decide(r, &[(1, Some(Failed)), (7, Some(s))]);
                assert_eq!(
                    v,
                    Verdict::Skip {
                        because: 7,
                        why: Why::Ended(s)
                    }
                );
                assert_eq!(
                    v.message(r).as_deref(),
                    Some(format!("skipped: run 7, which it depends on, was {s}").as_str())
                );
            }
        }
        let gone = decide(RunIf::Finished, &[(3, None)]);
        assert_eq!(
            gone,
            Verdict::Skip {
                because: 3,
                why: Why::Gone
            }
        );
        assert_eq!(
            gone.message(RunIf::Finished).as_deref(),
            Some("skipped: run 3, which it depends on, no longer exists")
        );
        assert_eq!(
            decide(RunIf::Succeeded, &[(4, Some(Failed))])
                .message(RunIf::Succeeded)
                .as_deref(),
            Some("skipped: run 4, which it depends on, ended failed (run_if is 'succeeded')")
        );
    }

    #[test]
    fn run_if_names_round_trip() {
        for r in RunIf::ALL {
            assert_eq!(r.as_str().parse::<RunIf>(), Ok(r));
        }
        assert_eq!(
            "success".parse::<RunIf>().unwrap_err().to_string(),
            "invalid run_if \"success\": it is 'succeeded', 'failed' or 'finished'"
        );
    }

    fn any_status() -> impl Strategy<Value = Option<RunStatus>> {
        prop_oneof![
            Just(None),
            proptest::sample::select(RunStatus::ALL.to_vec()).prop_map(Some)
        ]
    }

    proptest! {
        /// The verdict follows from the parents alone, as the module says:
        /// wait exactly while one is unfinished; a skip names a parent that
        /// is in the list and whose ending justifies it; a run never follows
        /// a cancelled, skipped or vanished parent.
        #[test]
        fn verdicts_follow_the_rules(
            run_if in proptest::sample::select(RunIf::ALL.to_vec()),
            statuses in proptest::collection::vec(any_status(), 1..6),
        ) {
            let parents: Vec<(i64, Option<RunStatus>)> =
                statuses.iter().enumerate().map(|(i, s)| (i as i64 + 1, *s)).collect();
            let unfinished = parents.iter().any(|(_, s)| s.is_some_and(|s| !s.is_terminal()));
            let v = decide(run_if, &parents);
            prop_assert_eq!(v == Verdict::Wait, unfinished);
            let blocked = parents.iter().any(|(_, s)| matches!(s, None | Some(Cancelled) | Some(Skipped)));
            match &v {
                Verdict::Wait => {}
                Verdict::Run => {
                    prop_assert!(!blocked);
                    match run_if {
                        RunIf::Succeeded => prop_assert!(parents.iter().all(|(_, s)| *s == Some(Succeeded))),
                        RunIf::Failed => prop_assert!(parents.iter().any(|(_, s)| s.is_some_and(|s| s.is_retryable()))),
                        RunIf::Finished => {}
                    }
                }
                Verdict::Skip { because, why } => {
                    let parent = parents.iter().find(|(id, _)| id == because);
                    prop_assert!(parent.is_some());
                    let status = parent.and_then(|(_, s)| *s);
                    match why {
                        Why::Gone => prop_assert_eq!(status, None),
                        Why::Ended(s) => prop_assert_eq!(status, Some(*s)),
                    }
                    prop_assert!(v.message(run_if).is_some());
                }
            }
        }
    }
}
