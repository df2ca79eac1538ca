//! Acting on one daemon: what core's lifecycle decides now (start, signal,
//! refuse), and starting its process.

use super::*;

/// Why a daemon's process was not started.
enum NotStarted {
    /// `pg_jobs.max_daemons` daemon processes run already.
    DaemonCap,
    /// No background worker slot (`max_worker_processes`), or the registry
    /// is full.
    NoWorkerSlot,
}

/// Start a process for daemon `id`.
fn start(home_db: pg_sys::Oid, id: i64, def: &Def) -> Result<Worker, NotStarted> {
    let reservation = Reservation {
        db: def.target.ok_or(NotStarted::NoWorkerSlot)?.to_u32(),
        home_db: home_db.to_u32(),
        role: def.owner.to_u32(),
        job_id: id,
        run_id: 0,
        timeout_ms: 0,
        queue_id: 0,
    };
    let slot = match shmem::reserve_daemon(reservation, gucs::max_daemons()) {
        Ok(slot) => slot,
        Err(shmem::NoDaemonSlot::AtCap) => return Err(NotStarted::DaemonCap),
        Err(shmem::NoDaemonSlot::RegistryFull) => return Err(NotStarted::NoWorkerSlot),
    };
    // A daemon's command has no parameters.
    let segment = Segment::new(&pg_jobs_core::params::Command::plain(def.command.as_str()));
    shmem::set_dsm(slot, segment.handle());
    let name = format!("pg_jobs daemon \"{}\"", def.name);
    let w = DynamicWorker {
        bgw_type: "pg_jobs daemon",
        bgw_name: &name,
        function: "pg_jobs_daemon_main",
        // A daemon for standbys must be able to start before recovery ends.
        start_time: if def.run_on.starts_during_recovery() {
            BgWorkerStartTime::ConsistentState
        } else {
            BgWorkerStartTime::RecoveryFinished
        },
        slot,
    };
    match bgw::start_dynamic(&w) {
        Some(handle) => {
            log!("pg_jobs: starting daemon \"{}\"", def.name);
            Ok(Worker {
                slot,
                handle: Some(handle),
                _segment: Some(segment),
            })
        }
        None => {
            shmem::release(slot);
            Err(NotStarted::NoWorkerSlot)
        }
    }
}

impl Daemon {
    /// After the pass commits: what its lifecycle says to do now, done.
    /// Returns when to look at it again.
    pub(super) fn act(
        &mut self,
        home_db: pg_sys::Oid,
        id: i64,
        in_recovery: bool,
        t: i64,
        budget: &mut StartBudget,
    ) -> Option<i64> {
        let idle = if self.life.dropped {
            Some(DaemonState::Stopped)
        } else {
            idle_state(self.def.enabled, self.def.run_on, in_recovery)
        };
        let process_started_at = self
            .worker
            .as_ref()
            .and_then(|w| shmem::slot(w.slot))
            .filter(|s| s.pid != 0 && s.started_at != 0)
            .map(|s| s.started_at);
        let facts = Facts {
            idle,
            refused: self.def.refusal.is_some(),
            process_started_at,
            delays: self.def.delays,
        };
        let (action, wake) = self.life.tick(t, &facts);
        match action {
            Action::Nothing => wake,
            Action::Cancel => {
                self.signal(libc::SIGINT);
                wake
            }
            Action::Terminate => {
                log!(
                    "pg_jobs: daemon \"{}\" ignored the cancel for {STOP_GRACE_MS} ms; terminating it",
                    self.def.name
                );
                self.signal(libc::SIGTERM);
                wake
            }
            Action::Refuse => {
                self.refused(t);
                wake
            }
            Action::Start => self.start(home_db, id, t, budget),
        }
    }

    pub(super) fn signal(&self, signal: i32) {
        if let Some(w) = &self.worker {
            shmem::signal(w.slot, signal);
        }
    }

    /// It cannot start as defined: recorded as its last exit, and logged.
    pub(super) fn refused(&mut self, t: i64) {
        let Some(why) = self.def.refusal else {
            return;
        };
        let message = why.message(&self.def.database);
        warning!("pg_jobs: daemon \"{}\" cannot start: {message}", self.def.name);
        self.last_exit = Some(LastExit {
            exit: Exit::Error,
            at: t,
            sqlstate: why.sqlstate().to_owned(),
            message,
        });
    }

    /// Start its process, within its role's start budget; when it cannot
    /// start now (the budget is spent, `pg_jobs.max_daemons` daemons run,
    /// no background worker slot), say so and return when to try again.
    pub(super) fn start(
        &mut self,
        home_db: pg_sys::Oid,
        id: i64,
        t: i64,
        budget: &mut StartBudget,
    ) -> Option<i64> {
        let owner = self.def.owner.to_u32();
        let per_second = if self.def.owner_is_superuser {
            0
        } else {
            gucs::max_daemons_per_role() as usize
        };
        if let Err(until) = budget.check(owner, t, per_second) {
            self.life.on(DaemonEvent::Deferred { until }, t);
            return self.life.next_start;
        }
        let not_started = match start(home_db, id, &self.def) {
            Ok(w) => {
                budget.record(owner, t);
                self.worker = Some(w);
                self.life.on(DaemonEvent::Started, t);
                return None;
            }
            Err(why) => why,
        };
        if let NotStarted::DaemonCap = not_started {
            // Woken when any daemon process ends (or the cap is raised);
            // this recheck is only a backstop.
            if self.life.state != DaemonState::NoDaemonSlot {
                log!(
                    "pg_jobs: daemon \"{}\" waits for a daemon slot: pg_jobs.max_daemons ({}) daemon processes are running",
                    self.def.name,
                    gucs::max_daemons()
                );
            }
            self.life.on(
                DaemonEvent::NoDaemonSlot {
                    retry_ms: DAEMON_SLOT_RECHECK,
                },
                t,
            );
            return self.life.next_start;
        }
        // No background worker slot. Idle pooled executors hold some: ask
        // one to go (its exit wakes us), else look again in a second.
        let retry_ms = if shmem::retire_one_idle() { 50 } else { 1_000 };
        if self.life.state != DaemonState::NoWorkerSlot {
            warning!(
                "pg_jobs: no free background worker slot for daemon \"{}\" (max_worker_processes); it waits",
                self.def.name
            );
        }
        self.life.on(DaemonEvent::NoWorkerSlot { retry_ms }, t);
        self.life.next_start
    }
}
