//! Sharing the executors among roles: which queued runs one scheduler pass
//! starts.
//!
//! Each role's queued runs in a database form a *lane*, kept in that role's
//! own order (its `priority`, then due time). Across lanes a pass is fair:
//! it water-fills, always serving next the lane whose role has the fewest
//! runs going cluster-wide, so a role with 20,000 queued runs and one with
//! a single run each get executors, and a flood's age gives it no head
//! start. A role never goes past `per_role` runs at once, a database past
//! `per_database`, so a flood leaves executors for everyone else.
//!
//! A lane's `rank` is the cross-role priority a superuser granted its role
//! (see `pg_jobs.priority_role`); 0 for everyone else, so an ordinary
//! role's `priority` orders only its own runs. A lane of higher rank is
//! served before any of lower rank (still within its role's cap).
//!
//! A role's runs in a named queue (`jobs.create_queue`) form lanes of their
//! own, one per role and queue: the queue's room in this pass (its
//! `max_concurrency` less the executors running its runs, its rate limit's
//! starts left) bounds all its lanes together, and inside it the same
//! water-filling shares the room between roles. A role's lanes share its
//! cap and its count of runs going.

/// One role's queued runs (of one named queue, or of none) that may start
/// now, in one database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lane {
    /// Its role (lanes of one role share its cap and its `running`).
    pub role: u32,
    /// Its named queue, as an index into the pass's queue rooms; `None`:
    /// runs without a queue.
    pub queue: Option<usize>,
    /// Cross-role priority: the head run's priority if its role was granted
    /// cross-role priority, else 0.
    pub rank: i32,
    /// Runs of this role going now, cluster-wide (every database).
    pub running: usize,
    /// Runs of this lane that may start now (read up to the pass's budget).
    pub ready: usize,
    /// When the lane's head became due (microseconds): the older head goes
    /// first between otherwise equal lanes.
    pub head_due_us: i64,
}

/// The bounds a pass works within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Executors free cluster-wide (`max_executors` less those busy).
    pub free: usize,
    /// `pg_jobs.max_runs_per_role`: runs of one role at once.
    pub per_role: usize,
    /// `pg_jobs.max_runs_per_database`: runs of this database at once.
    pub per_database: usize,
    /// Runs of this database going now.
    pub database_running: usize,
}

impl Limits {
    /// How many runs this pass may start at most.
    pub fn budget(&self) -> usize {
        self.free
            .min(self.per_database.saturating_sub(self.database_running))
    }
}

/// The runs to start, as lane indices in start order: lane `i` appearing
/// `n` times means its first `n` ready runs start. Lanes are served by
/// rank (highest first), then fewest runs of their role going, then oldest
/// head. Runs without a queue only: see [`plan_in_queues`].
pub fn plan(lanes: &[Lane], limits: Limits) -> Vec<usize> {
    plan_in_queues(lanes, limits, &[])
}

/// [`plan`], with lanes of named queues: `queue_room[q]` is how many runs
/// of queue `q` this pass may start at most (a lane naming a queue past
/// the end of `queue_room` gets none).
pub fn plan_in_queues(lanes: &[Lane], limits: Limits, queue_room: &[usize]) -> Vec<usize> {
    let mut room = queue_room.to_vec();
    // Runs taken in this pass, per lane and per role.
    let mut taken = vec![0usize; lanes.len()];
    let mut by_role: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    let mut out = Vec::new();
    while out.len() < limits.budget() {
        let next = (0..lanes.len())
            .filter(|&i| {
                let l = &lanes[i];
                let role_taken = by_role.get(&l.role).copied().unwrap_or(0);
                taken[i] < l.ready
                    && l.running + role_taken < limits.per_role
                    && l.queue.is_none_or(|q| room.get(q).is_some_and(|&r| r > 0))
            })
            .min_by_key(|&i| {
                let l = &lanes[i];
                let role_taken = by_role.get(&l.role).copied().unwrap_or(0);
                (
                    std::cmp::Reverse(l.rank),
                    l.running + role_taken,
                    l.head_due_us,
                    i,
                )
            });
        let Some(i) = next else { break };
        taken[i] += 1;
        *by_role.entry(lanes[i].role).or_default() += 1;
        if let Some(q) = lanes[i].queue {
            room[q] -= 1;
        }
        out.push(i);
    }
    out
}

/// The per-role cap a setting of `-1` (the default) stands for: all the
/// executors but one (at least one), so that no role, however much it
/// submits or however long its runs, can hold the last executor, while a
/// cluster used by a single role loses only one executor of parallelism.
pub fn default_role_cap(max_executors: usize) -> usize {
    max_executors.saturating_sub(1).max(1)
}

/// The per-database cap a setting of `-1` (the default) stands for: none
/// beyond `max_executors`. A per-database default at or below the
/// per-role one would let one role at its cap shut out the other roles of
/// its own database; a DBA of a cluster of many databases sets one below
/// `max_executors` (docs/operations.md).
pub fn default_database_cap(max_executors: usize) -> usize {
    max_executors.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A lane of a role of its own, without a queue.
    fn lane(rank: i32, running: usize, ready: usize, head_due_us: i64) -> Lane {
        static NEXT_ROLE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
        Lane {
            role: NEXT_ROLE.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            queue: None,
            rank,
            running,
            ready,
            head_due_us,
        }
    }

    fn limits(free: usize, per_role: usize) -> Limits {
        Limits {
            free,
            per_role,
            per_database: usize::MAX,
            database_running: 0,
        }
    }

    #[test]
    fn a_flood_does_not_starve_a_single_run() {
        // Role 0 floods (20,000 queued, older), role 1 has one run.
        let lanes = [lane(0, 0, 20_000, 1), lane(0, 0, 1, 2)];
        let picked = plan(&lanes, limits(4, 3));
        assert_eq!(picked.iter().filter(|&&i| i == 1).count(), 1);
        // Three for the flood (its cap), one for the single run.
        assert_eq!(picked.len(), 4);
    }

    #[test]
    fn a_role_at_its_cap_gets_nothing_more() {
        let lanes = [lane(0, 3, 100, 1), lane(0, 0, 1, 2)];
        assert_eq!(plan(&lanes, limits(4, 3)), vec![1]);
    }

    #[test]
    fn the_least_served_role_goes_first() {
        let lanes = [lane(0, 2, 10, 1), lane(0, 0, 10, 5)];
        assert_eq!(plan(&lanes, limits(3, 8)), vec![1, 1, 0]);
    }

    #[test]
    fn equal_lanes_alternate_oldest_head_first() {
        let lanes = [lane(0, 0, 10, 9), lane(0, 0, 10, 3)];
        assert_eq!(plan(&lanes, limits(4, 8)), vec![1, 0, 1, 0]);
    }

    #[test]
    fn a_granted_rank_goes_before_fair_share() {
        let lanes = [lane(0, 0, 10, 1), lane(5, 2, 10, 9)];
        assert_eq!(plan(&lanes, limits(3, 4)), vec![1, 1, 0]);
    }

    #[test]
    fn the_database_cap_bounds_the_pass() {
        let lanes = [lane(0, 0, 10, 1), lane(0, 0, 10, 2)];
        let l = Limits {
            free: 8,
            per_role: 8,
            per_database: 5,
            database_running: 2,
        };
        assert_eq!(plan(&lanes, l).len(), 3);
    }

    #[test]
    fn default_caps_leave_room_for_others() {
        for (max, role, database) in [(1, 1, 1), (2, 1, 2), (4, 3, 4), (8, 7, 8)] {
            assert_eq!(default_role_cap(max), role);
            assert_eq!(default_database_cap(max), database);
        }
        // A role at its cap leaves room for another role, of its own
        // database too (from 2 executors on).
        for max in 2..200 {
            assert!(default_role_cap(max) < default_database_cap(max));
        }
    }

    fn lanes_strategy() -> impl Strategy<Value = Vec<Lane>> {
        prop::collection::vec(
            (0i32..3, 0usize..6, 0usize..12, 0i64..100).prop_map(|(r, g, n, d)| lane(r, g, n, d)),
            0..6,
        )
    }

    proptest! {
        /// Never past a cap; never more than the budget; work-conserving:
        /// it stops short of the budget only when no lane can take more.
        #[test]
        fn caps_hold_and_no_executor_idles_needlessly(
            lanes in lanes_strategy(),
            free in 0usize..12,
            per_role in 1usize..8,
            per_database in 1usize..12,
            database_running in 0usize..12,
        ) {
            let l = Limits { free, per_role, per_database, database_running };
            let picked = plan(&lanes, l);
            prop_assert!(picked.len() <= l.budget());
            let mut taken = vec![0usize; lanes.len()];
            for &i in &picked { taken[i] += 1; }
            for (i, lane) in lanes.iter().enumerate() {
                prop_assert!(taken[i] <= lane.ready);
                prop_assert!(lane.running + taken[i] <= per_role.max(lane.running));
            }
            if picked.len() < l.budget() {
                for (i, lane) in lanes.iter().enumerate() {
                    prop_assert!(taken[i] == lane.ready.min(per_role.saturating_sub(lane.running)));
                }
            }
        }

        /// Among lanes of equal rank the outcome is max-min fair: a lane got
        /// a run only if every lane of its rank that could still take one
        /// had at least as many going.
        #[test]
        fn equal_ranks_share_max_min_fairly(
            lanes in lanes_strategy(),
            free in 0usize..12,
            per_role in 1usize..8,
        ) {
            let picked = plan(&lanes, limits(free, per_role));
            let mut taken = vec![0usize; lanes.len()];
            for &i in &picked { taken[i] += 1; }
            for a in 0..lanes.len() {
                for b in 0..lanes.len() {
                    let (la, lb) = (&lanes[a], &lanes[b]);
                    let b_could_take = taken[b] < lb.ready.min(per_role.saturating_sub(lb.running));
                    if la.rank == lb.rank && taken[a] > 0 && b_could_take {
                        prop_assert!(la.running + taken[a] <= lb.running + taken[b] + 1);
                    }
                }
            }
        }

        /// A higher rank that could take more leaves nothing to lower ranks.
        #[test]
        fn higher_ranks_are_served_first(
            lanes in lanes_strategy(),
            free in 0usize..12,
            per_role in 1usize..8,
        ) {
            let picked = plan(&lanes, limits(free, per_role));
            let mut taken = vec![0usize; lanes.len()];
            for &i in &picked { taken[i] += 1; }
            for (a, la) in lanes.iter().enumerate() {
                let a_could_take = taken[a] < la.ready.min(per_role.saturating_sub(la.running));
                if a_could_take {
                    for (b, lb) in lanes.iter().enumerate() {
                        if lb.rank < la.rank { prop_assert_eq!(taken[b], 0); }
                    }
                }
            }
        }
    }

    fn in_queue(role: u32, queue: usize, running: usize, ready: usize, head_due_us: i64) -> Lane {
        Lane {
            role,
            queue: Some(queue),
            rank: 0,
            running,
            ready,
            head_due_us,
        }
    }

    #[test]
    fn a_queue_room_bounds_all_its_lanes_and_shares_among_roles() {
        // Two roles flood queue 0 (room 3); a third role's run has no queue.
        let lanes = [
            in_queue(1, 0, 0, 100, 1),
            in_queue(2, 0, 0, 100, 2),
            Lane {
                queue: None,
                ..in_queue(3, 0, 0, 1, 3)
            },
        ];
        let picked = plan_in_queues(&lanes, limits(8, 8), &[3]);
        let of = |i| picked.iter().filter(|&&p| p == i).count();
        assert_eq!(of(0) + of(1), 3, "{picked:?}");
        assert!(
            of(0) >= 1 && of(1) >= 1,
            "one role took the whole queue: {picked:?}"
        );
        assert_eq!(of(2), 1);
    }

    #[test]
    fn a_roles_lanes_share_its_cap() {
        let lanes = [
            in_queue(1, 0, 0, 10, 1),
            Lane {
                queue: None,
                ..in_queue(1, 0, 0, 10, 2)
            },
        ];
        assert_eq!(plan_in_queues(&lanes, limits(8, 3), &[8]).len(), 3);
    }

    #[test]
    fn a_full_or_unknown_queue_starts_nothing() {
        let lanes = [in_queue(1, 0, 0, 10, 1), in_queue(2, 1, 0, 10, 1)];
        assert_eq!(plan_in_queues(&lanes, limits(8, 8), &[0]), Vec::<usize>::new());
    }

    proptest! {
        /// However lanes, roles and queues mix: no queue past its room, no
        /// role past its cap, never past the budget.
        #[test]
        fn queue_rooms_and_role_caps_hold_together(
            spec in prop::collection::vec((1u32..4, prop::option::of(0usize..3), 0usize..4, 0usize..10), 0..8),
            rooms in prop::collection::vec(0usize..5, 3),
            free in 0usize..12,
            per_role in 1usize..6,
        ) {
            let lanes: Vec<Lane> = spec
                .iter()
                .enumerate()
                .map(|(i, &(role, queue, running, ready))| Lane {
                    role,
                    queue,
                    rank: 0,
                    running,
                    ready,
                    head_due_us: i as i64,
                })
                .collect();
            // Lanes of one role agree on its runs going.
            let lanes: Vec<Lane> = lanes
                .iter()
                .map(|l| Lane { running: lanes.iter().find(|o| o.role == l.role).map_or(0, |o| o.running), ..l.clone() })
                .collect();
            let l = limits(free, per_role);
            let picked = plan_in_queues(&lanes, l, &rooms);
            prop_assert!(picked.len() <= l.budget());
            let mut per_queue = [0usize; 3];
            let mut per_role_taken = std::collections::HashMap::new();
            let mut per_lane = vec![0usize; lanes.len()];
            for &i in &picked {
                per_lane[i] += 1;
                if let Some(q) = lanes[i].queue { per_queue[q] += 1; }
                *per_role_taken.entry(lanes[i].role).or_insert(0usize) += 1;
            }
            for q in 0..3 { prop_assert!(per_queue[q] <= rooms[q]); }
            for (i, lane) in lanes.iter().enumerate() { prop_assert!(per_lane[i] <= lane.ready); }
            for (role, n) in per_role_taken {
                let running = lanes.iter().find(|o| o.role == role).map_or(0, |o| o.running);
                prop_assert!(n + running <= per_role.max(running));
            }
        }
    }
}
