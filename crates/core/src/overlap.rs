//! What happens when a job comes due while an earlier run of it is still
//! queued or running.

use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Overlap {
    /// Record a `skipped` run; never two at once (the default).
    Skip,
    /// Keep at most one pending run, started when the current one ends.
    Queue,
    /// Start regardless: runs may overlap.
    Allow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDue {
    /// Queue a run.
    Enqueue,
    /// Record a `skipped` run.
    Skip,
    /// Do nothing: a run is already pending.
    AlreadyPending,
}

impl Overlap {
    pub const NAMES: &'static str = "skip, queue or allow";
    pub const ALL: [Overlap; 3] = [Overlap::Skip, Overlap::Queue, Overlap::Allow];

    /// Its name in SQL (`jobs.job.overlap`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Overlap::Skip => "skip",
            Overlap::Queue => "queue",
            Overlap::Allow => "allow",
        }
    }

    /// `active`: runs of the job starting or running; `pending`: queued.
    pub fn on_due(self, active: u32, pending: u32) -> OnDue {
        match self {
            Overlap::Allow => OnDue::Enqueue,
            Overlap::Skip if active + pending > 0 => OnDue::Skip,
            Overlap::Skip => OnDue::Enqueue,
            Overlap::Queue if pending > 0 => OnDue::AlreadyPending,
            Overlap::Queue => OnDue::Enqueue,
        }
    }

    /// Whether a queued run may start while `active` runs of the job go on
    /// (`starting` or `running`). The scheduler and the executors decide it
    /// in SQL, with the queue's rows locked: `overlap_lets_start!` in
    /// `crates/pg_jobs/src/catalog/runs/mod.rs` is this rule.
    pub fn may_start(self, active: u32) -> bool {
        self == Overlap::Allow || active == 0
    }
}

impl FromStr for Overlap {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "skip" => Ok(Overlap::Skip),
            "queue" => Ok(Overlap::Queue),
            "allow" => Ok(Overlap::Allow),
            other => Err(format!("overlap must be {}, not \"{other}\"", Overlap::NAMES)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies() {
        use OnDue::*;
        assert_eq!(Overlap::Skip.on_due(0, 0), Enqueue);
        assert_eq!(Overlap::Skip.on_due(1, 0), Skip);
        assert_eq!(Overlap::Skip.on_due(0, 1), Skip);
        assert_eq!(Overlap::Queue.on_due(1, 0), Enqueue);
        assert_eq!(Overlap::Queue.on_due(1, 1), AlreadyPending);
        assert_eq!(Overlap::Allow.on_due(5, 5), Enqueue);
        assert!(!Overlap::Queue.may_start(1) && Overlap::Queue.may_start(0) && Overlap::Allow.may_start(3));
        assert_eq!("queue".parse::<Overlap>(), Ok(Overlap::Queue));
        assert_eq!(
            "sometimes".parse::<Overlap>().unwrap_err(),
            "overlap must be skip, queue or allow, not \"sometimes\""
        );
    }

    /// The policy table the SQL overlap predicate implements
    /// (`overlap_lets_start!` in `crates/pg_jobs/src/catalog/runs/mod.rs`):
    /// a queued run of a job may start unless another run of the job is
    /// active and the job's policy is not `allow`.
    #[test]
    fn may_start_is_the_rule_the_sql_states() {
        use Overlap::*;
        let table = [
            (Skip, 0, true),
            (Skip, 1, false),
            (Skip, 3, false),
            (Queue, 0, true),
            (Queue, 1, false),
            (Queue, 3, false),
            (Allow, 0, true),
            (Allow, 1, true),
            (Allow, 3, true),
        ];
        for (policy, active, may) in table {
            assert_eq!(policy.may_start(active), may, "{policy:?} with {active} active");
        }
        // Exactly one policy is exempt: the SQL's `j.overlap <> 'allow'`.
        let exempt: Vec<Overlap> = Overlap::ALL.into_iter().filter(|o| o.may_start(1)).collect();
        assert_eq!(exempt, [Allow]);
        for o in Overlap::ALL {
            assert_eq!(o.as_str().parse::<Overlap>(), Ok(o));
        }
    }
}
