//! Handing queued runs to executors: pick them (earliest due first, while
//! executors are free), then give each to a pooled executor or start a new
//! one.

use super::*;
use crate::catalog::runs::{self, Queued};
use pg_jobs_core::fair;
use pg_jobs_core::run::start::{self, Owner, WhyNot};
use std::collections::HashMap;

/// A queued run picked for an executor.
pub(super) struct Dispatch {
    pub(super) run_id: i64,
    /// With the values of its parameters: both travel in its segment.
    pub(super) command: pg_jobs_core::params::Command,
    pub(super) slot: SlotRef,
    /// An idle executor of the same database and role takes it.
    pub(super) warm: bool,
}

/// Why queued run `q` can never start as it stands, as the run model says.
fn refusal(q: &Queued) -> Option<WhyNot> {
    let owner = q.can_login.map(|can_login| Owner {
        can_login,
        // NULL only when the database or role is gone (decided above it).
        can_connect: q.can_connect.unwrap_or(true),
    });
    start::refusal(q.target.is_some(), owner)
}

/// Pick queued runs while executors are free, shared fairly among roles
/// (`pg_jobs_core::fair`: each role's lane in its own priority and due
/// order; across lanes the role with the fewest runs going first; no role
/// past `pg_jobs.max_runs_per_role`, no database past
/// `pg_jobs.max_runs_per_database`); mark each `starting` and reserve its
/// registry slot. A run of a job whose overlap policy forbids parallel
/// runs waits while another is going. Runs whose owner cannot log in to
/// the target database fail here with a clear message instead of killing
/// an executor at connection time.
/// Runs of named queues form lanes of their own, one per role and queue,
/// bounded by the queue's room ([`Rooms`]): its rows are locked for the
/// pass, so no executor's claim and no `jobs.alter_queue` or
/// `pause_queue` runs alongside.
/// Each executor reserved or taken from the pool is noted in `journal`
/// (slot, pooled, run) as it is, for a failed pass to give back. Also
/// returns when a rate-limited queue with runs due may next start one.
pub(super) fn pick_runs(
    client: &mut SpiClient,
    db: pg_sys::Oid,
    journal: &mut Vec<(SlotRef, bool, i64)>,
) -> (Vec<Dispatch>, Option<Timestamp>) {
    let (busy_by_role, busy_here) = shmem::executors_busy_by_role(db);
    let limits = fair::Limits {
        free: gucs::max_executors().saturating_sub(busy_by_role.values().sum()),
        per_role: gucs::max_runs_per_role(),
        per_database: gucs::max_runs_per_database(),
        database_running: busy_here,
    };
    if limits.budget() == 0 {
        return (Vec::new(), None); // an executor's exit wakes us
    }
    let rooms = Rooms::of(client, db, limits.budget());
    // Lanes in role order (runs without a queue, then each open queue's),
    // each in its own dispatch order; runs that can never start are failed
    // here and leave their lane.
    let mut lanes: Vec<(fair::Lane, std::collections::VecDeque<Queued>)> = Vec::new();
    let mut add = |client: &mut SpiClient, q: Queued, queue: Option<usize>| {
        if let Some(why) = refusal(&q) {
            refuse(client, &q, why);
            return;
        }
        match lanes.last_mut() {
            Some((lane, runs)) if lane.queue == queue && runs.front().is_some_and(|f| f.role == q.role) => {
                lane.ready += 1;
                runs.push_back(q);
            }
            _ => {
                let lane = fair::Lane {
                    role: q.role.to_u32(),
                    queue,
                    rank: q.rank,
                    running: busy_by_role.get(&q.role.to_u32()).copied().unwrap_or(0),
                    ready: 1,
                    head_due_us: q.due_us,
                };
                lanes.push((lane, std::collections::VecDeque::from([q])));
            }
        }
    };
    for q in runs::queued(client, limits.budget(), gucs::priority_role()) {
        add(client, q, None);
    }
    for (i, open) in rooms.open.iter().enumerate() {
        if rooms.room[i] == 0 {
            continue;
        }
        let mut keys = open.keys.clone();
        let per_lane = limits.budget().min(rooms.room[i]);
        for q in runs::queued_in(client, &open.queue.name, per_lane, gucs::priority_role()) {
            // A run whose key is at the queue's max_per_key waits; so do
            // the others of that key in this pass once one is kept.
            if let (Some(max), Some(k), Some(held)) =
                (open.queue.max_per_key, &q.concurrency_key, keys.as_mut())
            {
                let n = held.entry(k.clone()).or_default();
                if *n >= max.max(0) as usize {
                    continue;
                }
                *n += 1;
            }
            add(client, q, Some(i));
        }
    }
    let plan = fair::plan_in_queues(
        &lanes.iter().map(|(l, _)| l.clone()).collect::<Vec<_>>(),
        limits,
        &rooms.room,
    );
    let mut out = Vec::new();
    for i in plan {
        let queue = lanes[i].0.queue.map(|q| rooms.open[q].queue.tag());
        let Some(q) = lanes[i].1.pop_front() else {
            continue;
        };
        let Some(d) = reserve_executor(db, q, queue) else {
            break; // registry full; an exit wakes us
        };
        journal.push((d.slot, d.warm, d.run_id));
        out.push(d);
    }
    if !out.is_empty() {
        runs::mark_dispatched(client, out.iter().map(|d| d.run_id).collect());
    }
    (out, rooms.next_start_at.map(crate::pg::time::from_pg_clamped))
}

/// A named queue with runs due, and what holds its runs now.
struct OpenQueue {
    queue: crate::catalog::queues::Queue,
    /// With a `max_per_key`: executors holding its runs, per key.
    keys: Option<HashMap<String, usize>>,
}

/// The named queues that may start runs in this pass (their rows locked)
/// and how many each may start: its `max_concurrency` less the executors
/// holding its runs, and its rate limit's starts left in the window.
struct Rooms {
    open: Vec<OpenQueue>,
    room: Vec<usize>,
    /// The earliest moment a queue held back by its rate may start a run.
    next_start_at: Option<i64>,
}

impl Rooms {
    fn of(client: &mut SpiClient, db: pg_sys::Oid, budget: usize) -> Rooms {
        let mut rooms = Rooms {
            open: Vec::new(),
            room: Vec::new(),
            next_start_at: None,
        };
        if !crate::catalog::schema_version::has_queues() {
            return rooms;
        }
        for queue in crate::catalog::queues::open_with_due_runs(client) {
            // Read after the lock: every claim committed before it is in
            // the registry (an executor notes its queue before its claim
            // commits).
            let holding = shmem::executors_holding_queue(db, queue.id, None);
            let mut room = pg_jobs_core::queue::room(queue.max_concurrency, holding).unwrap_or(budget);
            if let Some(rate) = queue.rate() {
                let (left, at) = shmem::start_room(db.to_u32(), queue.id, rate);
                room = room.min(left);
                if let Some(at) = at {
                    rooms.next_start_at = Some(rooms.next_start_at.map_or(at, |t: i64| t.min(at)));
                }
            }
            let keys = queue
                .max_per_key
                .map(|_| crate::catalog::queues::holding_by_key(client, &queue.name));
            rooms.open.push(OpenQueue { queue, keys });
            rooms.room.push(room);
        }
        rooms
    }
}

/// Fail run `q`, which can never start as it stands (no retry: the model's
/// `RunEvent::Refuse`).
fn refuse(client: &mut SpiClient, q: &Queued, why: WhyNot) {
    let code = why.sqlstate().unwrap_or("XX000");
    let message = why.message(&q.db_name).unwrap_or_else(|| why.to_string());
    runs::refuse(client, q.run_id, code, &message);
    crate::hooks::run_ended_at_commit(pg_jobs_core::run::RunStatus::Failed, None, None);
    super::waiting::ended(q.run_id);
    super::harvest::announce_failure(
        &q.db_name,
        q.run_id,
        q.job_id,
        pg_jobs_core::run::RunStatus::Failed,
        Some(code),
    );
    log_run(q.run_id, q.job_id, "failed", Some(&message));
}

/// An executor for run `q`: an idle pooled one of its database and role,
/// or a registry slot for a new one. `None`: the registry is full.
fn reserve_executor(
    db: pg_sys::Oid,
    q: Queued,
    queue: Option<pg_jobs_core::queue::QueueTag>,
) -> Option<Dispatch> {
    let reservation = Reservation {
        db: q.target.unwrap_or(db).to_u32(),
        home_db: db.to_u32(),
        role: q.role.to_u32(),
        job_id: q.job_id.unwrap_or(0),
        run_id: q.run_id,
        timeout_ms: q.timeout_ms.unwrap_or(0),
        queue_id: queue.as_ref().map_or(0, |t| t.id),
    };
    let idle = shmem::take_idle(
        db,
        reservation.db,
        reservation.role,
        q.run_id,
        reservation.job_id,
        reservation.timeout_ms,
        reservation.queue_id,
    );
    let warm = idle.is_some();
    let slot = idle.or_else(|| shmem::reserve(Kind::Executor, reservation))?;
    Some(Dispatch {
        run_id: q.run_id,
        command: pg_jobs_core::params::Command {
            sql: q.command,
            args: q.args,
            queue,
        },
        slot,
        warm,
    })
}

impl Scheduler {
    /// Hand `d` to its idle executor, or start one; false (run put back in
    /// the queue) when that is not possible right now.
    pub(super) fn launch(&mut self, d: Dispatch) -> bool {
        let segment = Segment::new(&d.command);
        if d.warm {
            if shmem::hand_over(d.slot, segment.handle()) {
                self.segments.insert(d.run_id, segment);
                return true;
            }
            // It exited or began retiring in between: start a fresh one next pass.
            let why = WhyNot::ExecutorGone;
            bgw::in_transaction("pg_jobs scheduler: requeueing a run", || {
                requeue(d.run_id, why.message("").as_deref())
            });
            return false;
        }
        shmem::set_dsm(d.slot, segment.handle());
        let name = format!("pg_jobs executor for run {}", d.run_id);
        let w = DynamicWorker {
            bgw_type: "pg_jobs executor",
            bgw_name: &name,
            function: "pg_jobs_executor_main",
            start_time: BgWorkerStartTime::RecoveryFinished,
            slot: d.slot,
        };
        match bgw::start_dynamic(&w) {
            Some(handle) => {
                self.launched
                    .insert(d.slot.index, Launched { slot: d.slot, handle });
                self.segments.insert(d.run_id, segment);
                true
            }
            None => {
                shmem::release(d.slot);
                // Idle pooled executors hold worker slots: ask one to go.
                let why = if shmem::retire_one_idle() {
                    WhyNot::IdleExecutorRetiring
                } else {
                    WhyNot::NoWorkerSlot
                };
                bgw::in_transaction("pg_jobs scheduler: requeueing a run", || {
                    requeue(d.run_id, why.message("").as_deref())
                });
                log!(
                    "pg_jobs: no free background worker slot for run {}; it waits",
                    d.run_id
                );
                false
            }
        }
    }
}
