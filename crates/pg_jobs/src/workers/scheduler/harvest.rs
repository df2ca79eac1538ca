//! What executors report back: outcomes of finished runs written to the
//! history in one statement, retries queued, runs whose executor started
//! shown `running`, runs whose executor vanished marked `crashed`, and
//! executors past their timeout terminated.

use super::*;
use crate::catalog::row;
use crate::pg::error::OrRaise;
use pg_jobs_core::run::outcome::{self, Ending};
use pg_jobs_core::run::retry::{self, Retry};
use pg_jobs_core::run::{RunEvent, RunStatus};

pub(super) const UNCLAIMED_SLOT_TIMEOUT_US: i64 = 10_000_000;

/// An executor slot whose outcome was written in this pass.
pub(super) struct Harvested {
    pub(super) slot: SlotRef,
    pub(super) run_id: i64,
    /// The process is gone (free the slot), or lives on in the pool.
    pub(super) exited: bool,
}

/// What the statements that end runs (harvest, crash sweep) return about
/// each row they made terminal: what the log line and the retry decision
/// need. The backoff is capped at the longest retry delay there is (so the
/// conversion cannot overflow whatever interval the row holds).
macro_rules! ended_columns {
    () => {
        "r.id, r.status, r.attempt, r.max_attempts, r.job_id, r.message,
         (LEAST(EXTRACT(EPOCH FROM r.retry_backoff), 3600) * 1000)::int8"
    };
}

/// A run a harvest or the crash sweep made terminal (a row of `ended_columns!()`).
pub(super) struct Ended {
    id: i64,
    status: RunStatus,
    attempt: i32,
    max_attempts: i32,
    job_id: Option<i64>,
    message: Option<String>,
    backoff_ms: i64,
}

impl Ended {
    fn from_row(r: &pgrx::spi::SpiHeapTupleData) -> Ended {
        let status: String = row::get_req(r, 2);
        Ended {
            id: row::get_req(r, 1),
            status: status.parse().or_raise("reading an ended run's status"),
            attempt: row::get_req(r, 3),
            max_attempts: row::get_req(r, 4),
            job_id: row::get_opt(r, 5),
            message: row::get_opt(r, 6),
            backoff_ms: row::get_req(r, 7),
        }
    }

    /// Log it, and queue its next attempt if the run model's retry
    /// decision says so.
    fn settle(&self, client: &mut SpiClient, ended_by: RunEvent) {
        log_run(
            self.id,
            self.job_id,
            self.status.as_str(),
            self.message.as_deref(),
        );
        // SAFETY: the process's global PRNG state, used only on this
        // thread; PostgreSQL seeds it at process start.
        let jitter = unsafe { pg_sys::pg_prng_double(&raw mut pg_sys::pg_global_prng_state) };
        let backoff = jiff::SignedDuration::from_millis(self.backoff_ms);
        if let Retry::After { attempt, delay } =
            retry::decide(ended_by, self.attempt, self.max_attempts, backoff, jitter)
        {
            queue_retry(client, self.id, attempt, delay);
        }
    }
}

/// Queue attempt `attempt` of run `failed`, `delay` from now.
fn queue_retry(client: &mut SpiClient, failed: i64, attempt: u32, delay: jiff::SignedDuration) {
    plans::run_built(
            client,
            &format!("/* run event: retry */ INSERT INTO jobs.run (job_id, owner, command, database{datid}, attempt, max_attempts, timeout,
                                   retry_backoff, scheduled_for, not_before)
             SELECT job_id, owner, command, database{datid}, $2, max_attempts, timeout, retry_backoff, scheduled_for,
                    pg_catalog.clock_timestamp() + $3 * INTERVAL '1 millisecond'
               FROM jobs.run WHERE id OPERATOR(pg_catalog.=) $1",
                datid = if schema_version::databases_by_oid() { ", datid" } else { "" }),
            &[failed.into(), (attempt as i32).into(), (delay.as_millis() as i64).into()],
        )
        .or_raise("queueing a retry");
}

/// The columns of the harvest's one UPDATE, a row per slot that holds a run.
#[derive(Default)]
struct Endings {
    ids: Vec<i64>,
    statuses: Vec<String>,
    pids: Vec<i32>,
    started: Vec<i64>,
    finished: Vec<i64>,
    codes: Vec<Option<String>>,
    messages: Vec<Option<String>>,
}

impl Endings {
    /// How the run of slot `s` ended, as the run model has it: what its
    /// executor reported, else (it is gone) a timeout kill or a crash.
    fn push(&mut self, s: &shmem::Slot) {
        let ending = s.outcome.ending(s.killed_for_timeout);
        let (code, message) = match ending {
            Ending::Succeeded => (None, None),
            Ending::Crashed | Ending::TimedOut if s.outcome == Outcome::Nothing => {
                let (code, message) = outcome::unreported_detail(s.killed_for_timeout);
                (code.map(str::to_owned), Some(message))
            }
            _ => (Some(s.sqlstate()), Some(s.message())),
        };
        self.ids.push(s.run_id);
        self.statuses.push(ending.status().as_str().to_owned());
        self.pids.push(s.pid);
        self.started.push(if s.started_at != 0 {
            s.started_at
        } else {
            s.finished_at
        });
        self.finished.push(s.finished_at);
        self.codes.push(code);
        self.messages.push(message);
    }

    /// Write them all, in one statement (only runs still in flight);
    /// returns the rows it made terminal.
    fn write(self, client: &mut SpiClient) -> Vec<Ended> {
        plans::run(
                client,
                concat!("/* run event: harvest(failed) */ UPDATE jobs.run r
                    SET status = u.status, pid = u.pid,
                        started_at = TIMESTAMPTZ '2000-01-01 00:00:00+00' + u.started * INTERVAL '1 microsecond',
                        finished_at = TIMESTAMPTZ '2000-01-01 00:00:00+00' + u.finished * INTERVAL '1 microsecond',
                        sqlstate = u.code, message = u.message
                   FROM ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($2::text[]),
                                   pg_catalog.unnest($3::int4[]), pg_catalog.unnest($4::int8[]),
                                   pg_catalog.unnest($5::int8[]), pg_catalog.unnest($6::text[]),
                                   pg_catalog.unnest($7::text[]))
                        AS u(id, status, pid, started, finished, code, message)
                  WHERE r.id OPERATOR(pg_catalog.=) u.id AND r.status OPERATOR(pg_catalog.=) ANY ('{starting,running}')
              RETURNING ", ended_columns!()),
                &[
                    self.ids.into(),
                    self.statuses.into(),
                    self.pids.into(),
                    self.started.into(),
                    self.finished.into(),
                    self.codes.into(),
                    self.messages.into(),
                ],
            )
            .or_raise("recording run outcomes")
            .map(|r| Ended::from_row(&r))
            .collect()
    }
}

/// The harvest event that wrote `status`.
fn harvest_event(status: RunStatus) -> RunEvent {
    Ending::ALL
        .into_iter()
        .find(|e| e.status() == status)
        .map_or(RunEvent::Harvest(Ending::Crashed), RunEvent::Harvest)
}

impl Scheduler {
    /// Forget executors the postmaster reports stopped (their slots are
    /// harvested separately), and free slots of ones that never started.
    /// Slots reserved by an earlier life of this scheduler (no handle) are
    /// reaped after a timeout.
    pub(super) fn forget_stopped_executors(&mut self) {
        self.launched.retain(|_, l| {
            if l.handle.status() != bgw::HandleStatus::Stopped {
                return true;
            }
            // The process is gone. If it never claimed its slot no outcome
            // will come: free it (the run is then marked crashed). Decided
            // under the registry lock: a slot it did claim holds its outcome.
            shmem::release_unclaimed(l.slot);
            false
        });
        if self.launched.is_empty() {
            shmem::reap_unclaimed(Kind::Executor, self.db, UNCLAIMED_SLOT_TIMEOUT_US);
        }
    }

    /// A pooled executor that records its run inside the run's own
    /// transaction and takes the next one from the queue never reports the
    /// first to us: drop what we kept for runs no slot holds any more.
    pub(super) fn forget_runs_no_executor_holds(&mut self) {
        let held: std::collections::HashSet<i64> = shmem::executors_of(self.db)
            .iter()
            .map(|(_, s)| s.run_id)
            .collect();
        self.segments.retain(|id, _| held.contains(id));
        self.shown_running.retain(|id| held.contains(id));
    }

    /// Write the outcomes of exited executors, in one statement, and queue
    /// retries. Returns the slots to free once this transaction commits.
    pub(super) fn harvest(&mut self, client: &mut SpiClient) -> Vec<Harvested> {
        // Exited executors, and pooled ones that finished a run.
        let slots: Vec<(SlotRef, shmem::Slot)> = shmem::executors_of(self.db)
            .into_iter()
            .filter(|(_, s)| s.phase().awaits_harvest())
            .collect();
        if slots.is_empty() {
            return Vec::new();
        }
        requeue_reserved_of_exited(&slots);
        // An executor that exited holding no run (idle in the pool, or
        // claimed for a run that was never handed to it: an earlier life
        // of this scheduler died in between) says nothing about a run:
        // free its slot, write nothing. (A pooled one's last run is
        // already terminal.)
        let mut endings = Endings::default();
        for (_, s) in slots.iter().filter(|(_, s)| s.phase().holds_run()) {
            endings.push(s);
        }
        for ended in endings.write(client) {
            ended.settle(client, harvest_event(ended.status));
        }
        // A pooled executor whose outcome is now written may take the next
        // run in this same pass: it is handed over only after this commits
        // (if this transaction fails, the scheduler exits, and the run is
        // later marked crashed and retried).
        for (slot, _) in slots.iter().filter(|(_, s)| !s.exited()) {
            shmem::mark_harvested(*slot);
        }
        slots
            .into_iter()
            .map(|(slot, s)| Harvested {
                slot,
                run_id: s.run_id,
                exited: s.exited(),
            })
            .collect()
    }

    /// Say `running` (with the real start time and pid) for runs whose
    /// executor has started, and `crashed` for runs that are `starting` or
    /// `running` with no executor at all (killed, crashed, server restart).
    pub(super) fn mark_started_and_crashed(&mut self, client: &mut SpiClient) {
        self.mark_started(client);
        sweep_crashed(client, self.db);
    }

    /// Say `running` for runs whose executor has started their command.
    fn mark_started(&mut self, client: &mut SpiClient) {
        let slots = shmem::executors_of(self.db);
        let (mut ids, mut pids, mut starts) = (Vec::new(), Vec::new(), Vec::new());
        for (_, s) in slots
            .iter()
            .filter(|(_, s)| s.phase() == ExecutorPhase::Running && !self.shown_running.contains(&s.run_id))
        {
            ids.push(s.run_id);
            pids.push(s.pid);
            starts.push(s.started_at);
        }
        // Runs we looked at are shown (or were already): no more passes for them.
        self.shown_running.extend(ids.iter().copied());
        if ids.is_empty() {
            return;
        }
        plans::run(
                client,
                "/* run event: start */ UPDATE jobs.run r SET status = 'running', pid = u.pid,
                        started_at = TIMESTAMPTZ '2000-01-01 00:00:00+00' + u.started * INTERVAL '1 microsecond'
                   FROM ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($2::int4[]),
                                   pg_catalog.unnest($3::int8[])) AS u(id, pid, started)
                  WHERE r.id OPERATOR(pg_catalog.=) u.id AND r.status OPERATOR(pg_catalog.=) 'starting'
              RETURNING r.id",
                &[ids.into(), pids.into(), starts.into()],
            )
            .or_raise("marking runs running")
            .for_each(|r| {
                if let Some(id) = row::get_opt::<i64>(&r, 1) {
                    self.shown_running.insert(id);
                }
            });
    }

    /// Terminate executors that overran their timeout by the grace period
    /// (they ignored the cancel). Returns when the next one would be due.
    pub(super) fn kill_overdue(&self, now: Timestamp) -> Option<Timestamp> {
        let now_pg = time::to_pg(now);
        let mut next: Option<Timestamp> = None;
        for (r, s) in shmem::executors_of(self.db) {
            if s.phase() != ExecutorPhase::Running || s.killed_for_timeout {
                continue;
            }
            let Some(deadline) = outcome::kill_deadline_us(s.started_at, s.timeout_ms) else {
                continue;
            };
            if now_pg >= deadline {
                log!(
                    "pg_jobs: run {} overran its timeout and ignored the cancel; terminating pid {}",
                    s.run_id,
                    s.pid
                );
                shmem::kill_for_timeout(r);
            } else {
                let t = time::from_pg_clamped(deadline);
                next = Some(next.map_or(t, |n| n.min(t)));
            }
        }
        next
    }
}

/// An executor that exited may still hold reserved runs; its slot is freed
/// after this pass, so they go back to the queue now.
fn requeue_reserved_of_exited(slots: &[(SlotRef, shmem::Slot)]) {
    for (slot, _) in slots
        .iter()
        .filter(|(_, s)| s.exited() && !s.reserved().is_empty())
    {
        let ids = shmem::take_reserved(*slot);
        if !ids.is_empty() {
            requeue_reserved(&ids, false);
        }
    }
}

/// Mark `crashed` the runs in flight that no executor of `db` holds, and
/// queue their retries.
fn sweep_crashed(client: &mut SpiClient, db: pg_sys::Oid) {
    // Runs in flight first, then who holds them: a pooled executor that
    // takes runs from the queue itself registers them before its claim
    // commits, and puts reserved runs back in the queue (locking their
    // rows) before it unregisters them, so any run this snapshot sees
    // in flight is either in the registry below or locked by its
    // executor. Each row's version (xmin) is kept: the run is marked
    // crashed only if it is still that version — not if, say, it went
    // back to the queue and another executor claimed it since.
    let in_flight: Vec<(i64, String)> = plans::run(
        client,
        "SELECT id, xmin::pg_catalog.text FROM jobs.run WHERE status OPERATOR(pg_catalog.=) ANY ('{starting,running}')",
        &[],
    )
    .or_raise("reading runs in flight")
    .map(|r| (row::get_req::<i64>(&r, 1), row::get_req::<String>(&r, 2)))
    .collect();
    // A slot still waiting for a handover from a dead scheduler holds no
    // run (nor does one idle in the pool); an executor's reserved runs
    // are held until it starts them.
    let live: std::collections::HashSet<i64> = shmem::executors_of(db)
        .iter()
        .flat_map(|(_, s)| {
            let current = s.phase().holds_run().then_some(s.run_id);
            current.into_iter().chain(s.reserved().iter().copied())
        })
        .collect();
    let (gone, versions): (Vec<i64>, Vec<String>) =
        in_flight.into_iter().filter(|(id, _)| !live.contains(id)).unzip();
    if gone.is_empty() {
        return;
    }
    let crashed: Vec<Ended> = plans::run(
            client,
            concat!("/* run event: crash_sweep */ UPDATE jobs.run r SET status = 'crashed', finished_at = pg_catalog.clock_timestamp(),
                    message = 'the executor ended without recording an outcome (terminated, crashed, or the server restarted)'
               FROM ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($2::text[])) AS g(id, version)
              WHERE r.id OPERATOR(pg_catalog.=) g.id
                AND r.xmin OPERATOR(pg_catalog.=) g.version::pg_catalog.xid
                AND r.status OPERATOR(pg_catalog.=) ANY ('{starting,running}')
          RETURNING ", ended_columns!()),
            &[gone.into(), versions.into()],
        )
        .or_raise("marking crashed runs")
        .map(|r| Ended::from_row(&r))
        .collect();
    for mut ended in crashed {
        ended.message = Some("its executor is gone".to_owned());
        ended.settle(client, RunEvent::CrashSweep);
    }
}
