//! Daemon supervision, by the scheduler of the database that defines them.
//!
//! Each scheduler pass calls [`Supervisor::observe`] inside its transaction
//! — (re)read the definitions when they changed or a start is due, and
//! take in the exits of daemon processes (recorded in `jobs.daemon` on a
//! primary) — and [`Supervisor::act`] after it commits: start the daemons
//! that should run and may (their restart delay is over), stop the ones
//! that should not (cancel, then terminate after [`STOP_GRACE_MS`]), and
//! publish every daemon's status to the registry for `jobs.daemon_status`.
//!
//! Which daemons should run depends on the node: `run_on` primary, standby
//! or any against `RecoveryInProgress()`; the restart delays come from
//! `pg_jobs_core::daemon`. A scheduler that restarts finds its daemons'
//! processes still running and adopts them; their restart counts are kept
//! in the registry (and, on a primary, in `jobs.daemon`).

use crate::catalog::row;
use crate::exec::command_segment::Segment;
use crate::pg::bgw::{self, DynamicWorker, HandleStatus, WorkerHandle};
use crate::pg::error::OrRaise;
use crate::shmem::{self, DaemonEntry, Kind, Outcome, Reservation, SlotRef};
use pg_jobs_core::daemon::{idle_state, DaemonBackoff, DaemonState, Exit, RestartDelays, RunOn};
use pgrx::bgworkers::BgWorkerStartTime;
use pgrx::prelude::*;
use pgrx::spi::SpiClient;
use std::collections::HashMap;

/// How long a daemon being stopped may ignore the cancel before it is terminated.
pub const STOP_GRACE_MS: i64 = 5_000;
/// A reserved daemon slot that no process claimed in this long is reclaimed.
const UNCLAIMED_SLOT_TIMEOUT_US: i64 = 10_000_000;

/// A daemon's definition, as read from `jobs.daemon`.
#[derive(Clone, PartialEq)]
struct Def {
    name: String,
    owner: pg_sys::Oid,
    database: String,
    /// The database's OID; `None` if it does not exist (any more).
    target: Option<pg_sys::Oid>,
    command: String,
    run_on: RunOn,
    delays: RestartDelays,
    enabled: bool,
    /// Why it cannot start now (SQLSTATE, message): a dropped role, NOLOGIN, no CONNECT, no database.
    refusal: Option<(&'static str, String)>,
}

impl Def {
    /// Whether a running process of `self` must be restarted to become `new`.
    fn needs_restart_for(&self, new: &Def) -> bool {
        self.owner != new.owner || self.target != new.target || self.command != new.command
    }
}

struct LastExit {
    exit: Exit,
    at: i64,
    sqlstate: String,
    message: String,
}

/// A daemon process we started (or adopted).
struct Worker {
    slot: SlotRef,
    /// `None` for a process adopted from an earlier life of this scheduler.
    handle: Option<WorkerHandle>,
    /// The command, mapped until the process has read it.
    _segment: Option<Segment>,
    /// When we sent the cancel of a stop (TimestampTz).
    stop_sent: Option<i64>,
    terminated: bool,
}

struct Daemon {
    def: Def,
    state: DaemonState,
    since: i64,
    worker: Option<Worker>,
    backoff: DaemonBackoff,
    /// When it may start again (TimestampTz); `None`: at once.
    next_start: Option<i64>,
    restarts: i64,
    last_exit: Option<LastExit>,
    /// Its definition changed while it ran: start it again as soon as the old process is gone.
    restart_now: bool,
    /// Its definition is gone: forget it once its process is.
    dropped: bool,
}

pub struct Supervisor {
    home_db: pg_sys::Oid,
    daemons: HashMap<i64, Daemon>,
    loaded: bool,
    schema_has_daemons: bool,
}

fn now() -> i64 {
    // SAFETY: GetCurrentTimestamp only reads the clock.
    unsafe { pg_sys::GetCurrentTimestamp() }
}

impl Supervisor {
    pub fn new(home_db: pg_sys::Oid) -> Supervisor {
        Supervisor {
            home_db,
            daemons: HashMap::new(),
            loaded: false,
            schema_has_daemons: false,
        }
    }

    /// Inside the pass's transaction: read the definitions if `reload` (or a
    /// start is due: the role or database may have changed since), and take
    /// in the exits of daemon processes, recording them if `persist`.
    pub fn observe(&mut self, client: &mut SpiClient, reload: bool, persist: bool) {
        let due = self.daemons.values().any(|d| {
            d.worker.is_none() && !d.dropped && d.def.enabled && d.next_start.is_none_or(|t| t <= now())
        });
        if reload || due || !self.loaded {
            // Daemons came with 0.2.0: a database still on 0.1.0 (until
            // ALTER EXTENSION pg_jobs UPDATE, which makes us reload) has none.
            self.schema_has_daemons = client
                .select(
                    "SELECT pg_catalog.to_regclass('jobs.daemon') IS NOT NULL",
                    None,
                    &[],
                )
                .ok()
                .and_then(|t| t.first().get_one::<bool>().ok().flatten())
                .unwrap_or(false);
            if !self.schema_has_daemons {
                self.loaded = true;
                return;
            }
            self.load(client);
        }
        if self.schema_has_daemons {
            self.harvest(client, persist);
        }
    }

    fn load(&mut self, client: &mut SpiClient) {
        let rows = client
            .select(
                "SELECT d.id, d.name, d.owner::pg_catalog.oid, COALESCE(db.datname, d.database)::text, db.oid,
                        d.command, d.run_on,
                        (EXTRACT(EPOCH FROM d.restart_delay) * 1000)::int8,
                        (EXTRACT(EPOCH FROM d.max_restart_delay) * 1000)::int8,
                        d.enabled, ro.oid IS NOT NULL, ro.rolcanlogin,
                        CASE WHEN db.oid IS NOT NULL AND ro.oid IS NOT NULL
                             THEN pg_catalog.has_database_privilege(ro.oid, db.oid, 'CONNECT') END,
                        db.datallowconn, d.restarts
                   FROM jobs.daemon d
                   LEFT JOIN pg_catalog.pg_roles ro ON ro.oid OPERATOR(pg_catalog.=) d.owner::pg_catalog.oid
                   LEFT JOIN pg_catalog.pg_database db ON db.oid OPERATOR(pg_catalog.=) d.datid",
                None,
                &[],
            )
            .or_raise("reading daemon definitions");
        let mut seen = Vec::new();
        let published: HashMap<i64, DaemonEntry> = shmem::daemon_entries(self.home_db)
            .into_iter()
            .map(|e| (e.daemon_id, e))
            .collect();
        for r in rows {
            let id: i64 = row::get_opt(&r, 1).unwrap_or_default();
            let database: String = row::get_opt(&r, 4).unwrap_or_default();
            let target: Option<pg_sys::Oid> = row::get_opt(&r, 5);
            let role_exists: bool = row::get_opt(&r, 11).unwrap_or(false);
            let refusal = if target.is_none() {
                Some(("3D000", format!("database \"{database}\" no longer exists")))
            } else if !role_exists {
                Some(("42704", "the daemon's owner role no longer exists".to_owned()))
            } else if row::get_opt::<bool>(&r, 12) == Some(false) {
                Some((
                    "28000",
                    "the daemon's owner role is not permitted to log in (NOLOGIN)".to_owned(),
                ))
            } else if row::get_opt::<bool>(&r, 13) == Some(false) {
                Some((
                    "42501",
                    format!("the daemon's owner role lacks CONNECT privilege on database \"{database}\""),
                ))
            } else if row::get_opt::<bool>(&r, 14) == Some(false) {
                Some((
                    "55000",
                    format!("database \"{database}\" does not allow connections"),
                ))
            } else {
                None
            };
            let def = Def {
                name: row::get_opt(&r, 2).unwrap_or_default(),
                owner: row::get_opt(&r, 3).unwrap_or(pg_sys::InvalidOid),
                database,
                target,
                command: row::get_opt(&r, 6).unwrap_or_default(),
                run_on: r
                    .get::<String>(7)
                    .ok()
                    .flatten()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(RunOn::Primary),
                delays: RestartDelays {
                    restart_delay: row::get_opt::<i64>(&r, 8).unwrap_or(5_000).max(0) as u64,
                    max_restart_delay: row::get_opt::<i64>(&r, 9).unwrap_or(300_000).max(0) as u64,
                },
                enabled: row::get_opt(&r, 10).unwrap_or(false),
                refusal,
            };
            let stored_restarts: i64 = row::get_opt(&r, 15).unwrap_or(0);
            seen.push(id);
            match self.daemons.get_mut(&id) {
                Some(d) => {
                    if d.def.needs_restart_for(&def) || d.def.run_on != def.run_on {
                        if d.worker.is_some() {
                            d.restart_now = true;
                        } else {
                            d.next_start = None; // a new definition gets a fresh start
                        }
                        d.backoff = DaemonBackoff::default();
                    }
                    if !d.def.enabled && def.enabled {
                        d.next_start = None; // start_daemon: at once
                        d.backoff = DaemonBackoff::default();
                    }
                    d.def = def;
                    d.dropped = false;
                }
                None => {
                    // New to this scheduler: a new daemon, or one an earlier
                    // life of this scheduler supervised (its published status).
                    let e = published.get(&id);
                    self.daemons.insert(
                        id,
                        Daemon {
                            def,
                            state: DaemonState::Pending,
                            since: e.map_or_else(now, |e| e.since),
                            worker: None,
                            backoff: DaemonBackoff::default(),
                            next_start: e.and_then(|e| (e.next_start != 0).then_some(e.next_start)),
                            restarts: e.map_or(stored_restarts, |e| e.restarts.max(stored_restarts)),
                            last_exit: e.and_then(|e| {
                                let exit = match e.last_exit {
                                    1 => Exit::Clean,
                                    2 => Exit::Error,
                                    3 => Exit::Crash,
                                    _ => return None,
                                };
                                Some(LastExit {
                                    exit,
                                    at: e.last_exit_at,
                                    sqlstate: e.sqlstate(),
                                    message: e.message(),
                                })
                            }),
                            restart_now: false,
                            dropped: false,
                        },
                    );
                }
            }
        }
        for (id, d) in self.daemons.iter_mut() {
            if !seen.contains(id) {
                d.dropped = true;
            }
        }
        self.daemons.retain(|_, d| !(d.dropped && d.worker.is_none()));
        if !self.loaded {
            self.adopt();
        }
        self.loaded = true;
    }

    /// Attach the live daemon processes an earlier life of this scheduler
    /// started; terminate those whose daemon is gone.
    fn adopt(&mut self) {
        for (r, s) in shmem::daemons_of(self.home_db) {
            if !s.phase().has_process() {
                continue; // harvested below, or reaped once unclaimed for long
            }
            match self.daemons.get_mut(&s.job_id) {
                Some(d) if d.worker.is_none() => {
                    d.state = DaemonState::Running;
                    d.since = s.started_at;
                    d.worker = Some(Worker {
                        slot: r,
                        handle: None,
                        _segment: None,
                        stop_sent: None,
                        terminated: false,
                    });
                }
                _ => {
                    shmem::signal(r, libc::SIGTERM);
                }
            }
        }
    }

    /// Take in daemon processes that ended: how, and when to start them again.
    fn harvest(&mut self, client: &mut SpiClient, persist: bool) {
        // Our own workers that the postmaster reports gone without ever
        // claiming their slot (they failed before connecting).
        let mut never_started = Vec::new();
        for (id, d) in &self.daemons {
            if let Some(w) = &d.worker {
                if w.handle
                    .as_ref()
                    .is_some_and(|h| h.status() == HandleStatus::Stopped)
                    && shmem::slot(w.slot).is_some_and(|s| s.phase().unclaimed())
                {
                    shmem::release_unclaimed(w.slot);
                    never_started.push(*id);
                }
            }
        }
        for id in never_started {
            self.ended(
                client,
                persist,
                id,
                Exit::Crash,
                0,
                "",
                "the daemon's worker process did not start",
            );
        }
        if !self
            .daemons
            .values()
            .any(|d| d.worker.as_ref().is_some_and(|w| w.handle.is_some()))
        {
            shmem::reap_unclaimed(Kind::Daemon, self.home_db, UNCLAIMED_SLOT_TIMEOUT_US);
        }
        for (r, s) in shmem::daemons_of(self.home_db) {
            if !s.exited() {
                continue;
            }
            shmem::release(r);
            let ours = self
                .daemons
                .get(&s.job_id)
                .is_some_and(|d| d.worker.as_ref().is_some_and(|w| w.slot == r));
            if !ours {
                continue; // a process whose daemon we had already let go of
            }
            let (exit, code, message) = match s.outcome {
                Outcome::Succeeded => (Exit::Clean, String::new(), String::new()),
                Outcome::Nothing => (
                    Exit::Crash,
                    String::new(),
                    "the daemon's process ended without reporting (terminated, crashed, or could not connect)"
                        .to_owned(),
                ),
                _ => (Exit::Error, s.sqlstate(), s.message()),
            };
            let uptime_ms = if s.started_at != 0 {
                ((s.finished_at - s.started_at) / 1000).max(0) as u64
            } else {
                0
            };
            self.ended(client, persist, s.job_id, exit, uptime_ms, &code, &message);
        }
    }

    /// Daemon `id`'s process is gone: decide what comes next.
    #[allow(clippy::too_many_arguments)]
    fn ended(
        &mut self,
        client: &mut SpiClient,
        persist: bool,
        id: i64,
        exit: Exit,
        uptime_ms: u64,
        sqlstate: &str,
        message: &str,
    ) {
        let Some(d) = self.daemons.get_mut(&id) else {
            return;
        };
        let stopping = d.worker.as_ref().is_some_and(|w| w.stop_sent.is_some()) && !d.restart_now;
        d.worker = None;
        let t = now();
        d.last_exit = Some(LastExit {
            exit,
            at: t,
            sqlstate: sqlstate.to_owned(),
            message: message.to_owned(),
        });
        d.since = t;
        let restarting = !stopping && !d.dropped && d.def.enabled;
        if d.restart_now {
            d.restart_now = false;
            d.next_start = None;
            d.state = DaemonState::WaitingRestart;
        } else if restarting {
            let delay = d.backoff.on_exit(&d.def.delays, exit, uptime_ms);
            d.next_start = Some(t + delay as i64 * 1000);
            d.state = DaemonState::WaitingRestart;
        } else {
            d.next_start = None;
        }
        if restarting {
            d.restarts += 1;
        }
        let what = match exit {
            _ if stopping => "stopped".to_owned(),
            Exit::Clean => "returned".to_owned(),
            Exit::Error => format!("failed: {message} (SQLSTATE {sqlstate})"),
            Exit::Crash => format!("crashed: {message}"),
        };
        let next = match d.next_start {
            _ if !restarting => "it stays stopped".to_owned(),
            None => "restarting it now".to_owned(),
            Some(at) => format!("restarting it in {} ms", (at - t) / 1000),
        };
        log!("pg_jobs: daemon \"{}\" {what}; {next}", d.def.name);
        if persist && !d.dropped {
            client
                .update(
                    "UPDATE jobs.daemon SET restarts = restarts + $2::int8, last_exit = $3,
                            last_exit_at = pg_catalog.clock_timestamp(),
                            last_sqlstate = NULLIF($4, ''), last_message = NULLIF($5, '')
                      WHERE id OPERATOR(pg_catalog.=) $1",
                    None,
                    &[
                        id.into(),
                        (restarting as i64).into(),
                        exit.as_str().into(),
                        sqlstate.into(),
                        message.into(),
                    ],
                )
                .or_raise("recording a daemon's exit");
        }
        if d.dropped {
            self.daemons.remove(&id);
        }
    }

    /// After the pass commits: start and stop daemons as their definitions
    /// and this node say; publish their status. Returns when to look again
    /// (a restart delay or a stop's grace period ending), as a TimestampTz.
    pub fn act(&mut self, in_recovery: bool) -> Option<i64> {
        let t = now();
        let mut wake: Option<i64> = None;
        let mut wake_at = |at: i64| wake = Some(wake.map_or(at, |w: i64| w.min(at)));
        let home_db = self.home_db;
        for (id, d) in self.daemons.iter_mut() {
            let idle = if d.dropped {
                Some(DaemonState::Stopped)
            } else {
                idle_state(d.def.enabled, d.def.run_on, in_recovery)
            };
            if let Some(w) = &mut d.worker {
                if idle.is_some() || d.restart_now {
                    // Stop it: cancel first, terminate after the grace period.
                    match w.stop_sent {
                        None => {
                            shmem::signal(w.slot, libc::SIGINT);
                            w.stop_sent = Some(t);
                            d.state = DaemonState::Stopping;
                            d.since = t;
                            wake_at(t + STOP_GRACE_MS * 1000);
                        }
                        Some(sent) if !w.terminated => {
                            if t >= sent + STOP_GRACE_MS * 1000 {
                                log!(
                                    "pg_jobs: daemon \"{}\" ignored the cancel for {STOP_GRACE_MS} ms; terminating it",
                                    d.def.name
                                );
                                shmem::signal(w.slot, libc::SIGTERM);
                                w.terminated = true;
                            } else {
                                wake_at(sent + STOP_GRACE_MS * 1000);
                            }
                        }
                        Some(_) => {}
                    }
                } else if d.state != DaemonState::Running
                    && shmem::slot(w.slot).is_some_and(|s| s.pid != 0 && s.started_at != 0)
                {
                    d.state = DaemonState::Running;
                    d.since = shmem::slot(w.slot).map_or(t, |s| s.started_at);
                }
                continue;
            }
            if let Some(state) = idle {
                if d.state != state {
                    d.state = state;
                    d.since = t;
                }
                d.next_start = None;
                continue;
            }
            if let Some(at) = d.next_start.filter(|at| *at > t) {
                if d.state != DaemonState::NoWorkerSlot {
                    d.state = DaemonState::WaitingRestart;
                }
                wake_at(at);
                continue;
            }
            if let Some((code, message)) = d.def.refusal.clone() {
                // It cannot start: count it as a failure, so the retries back off.
                let delay = d.backoff.on_exit(&d.def.delays, Exit::Error, 0);
                d.last_exit = Some(LastExit {
                    exit: Exit::Error,
                    at: t,
                    sqlstate: code.to_owned(),
                    message: message.clone(),
                });
                d.state = DaemonState::WaitingRestart;
                d.since = t;
                d.next_start = Some(t + delay as i64 * 1000);
                wake_at(t + delay as i64 * 1000);
                warning!("pg_jobs: daemon \"{}\" cannot start: {message}", d.def.name);
                continue;
            }
            match start(home_db, *id, &d.def) {
                Some(w) => {
                    d.worker = Some(w);
                    d.state = DaemonState::Starting;
                    d.since = t;
                    d.next_start = None;
                }
                None => {
                    // No background worker slot. Idle pooled executors hold
                    // some: ask one to go (its exit wakes us), else look
                    // again in a second.
                    let retry_us = if shmem::retire_one_idle() {
                        50_000
                    } else {
                        1_000_000
                    };
                    if d.state != DaemonState::NoWorkerSlot {
                        warning!(
                            "pg_jobs: no free background worker slot for daemon \"{}\" (max_worker_processes); it waits",
                            d.def.name
                        );
                        d.state = DaemonState::NoWorkerSlot;
                        d.since = t;
                    }
                    d.next_start = Some(t + retry_us);
                    wake_at(t + retry_us);
                }
            }
        }
        self.publish();
        wake
    }

    fn publish(&self) {
        let entries: Vec<DaemonEntry> = self
            .daemons
            .iter()
            .map(|(id, d)| {
                let mut e = DaemonEntry::default();
                e.daemon_id = *id;
                e.owner = d.def.owner.to_u32();
                e.state = d.state as u8;
                e.pid = d
                    .worker
                    .as_ref()
                    .and_then(|w| shmem::slot(w.slot))
                    .map_or(0, |s| s.pid);
                e.since = d.since;
                e.restarts = d.restarts;
                if d.state == DaemonState::WaitingRestart {
                    e.next_start = d.next_start.unwrap_or(0);
                }
                if let Some(l) = &d.last_exit {
                    e.last_exit = match l.exit {
                        Exit::Clean => 1,
                        Exit::Error => 2,
                        Exit::Crash => 3,
                    };
                    e.last_exit_at = l.at;
                    e.set_sqlstate(&l.sqlstate);
                    e.set_message(&l.message);
                }
                e
            })
            .collect();
        if !shmem::publish_daemons(self.home_db, &entries) {
            warning!(
                "pg_jobs: more than {} daemons: jobs.daemon_status does not show them all",
                shmem::MAX_DAEMONS
            );
        }
    }

    /// The scheduler is going away for good (extension dropped, pg_jobs
    /// disabled): its daemons go too.
    pub fn terminate_all(&mut self) {
        for d in self.daemons.values() {
            if let Some(w) = &d.worker {
                shmem::signal(w.slot, libc::SIGTERM);
            }
        }
        self.daemons.clear();
        shmem::publish_daemons(self.home_db, &[]);
    }
}

/// Start a process for daemon `id`.
fn start(home_db: pg_sys::Oid, id: i64, def: &Def) -> Option<Worker> {
    let reservation = Reservation {
        db: def.target?.to_u32(),
        home_db: home_db.to_u32(),
        role: def.owner.to_u32(),
        job_id: id,
        run_id: 0,
        timeout_ms: 0,
    };
    let slot = shmem::reserve(Kind::Daemon, reservation)?;
    let segment = Segment::new(&def.command);
    shmem::set_dsm(slot, segment.handle());
    let name = format!("pg_jobs daemon \"{}\"", def.name);
    let w = DynamicWorker {
        bgw_type: "pg_jobs daemon",
        bgw_name: &name,
        function: "pg_jobs_daemon_main",
        // A daemon for standbys must be able to start before recovery ends.
        start_time: if def.run_on == RunOn::Primary {
            BgWorkerStartTime::RecoveryFinished
        } else {
            BgWorkerStartTime::ConsistentState
        },
        slot,
    };
    match bgw::start_dynamic(&w) {
        Some(handle) => {
            log!("pg_jobs: starting daemon \"{}\"", def.name);
            Some(Worker {
                slot,
                handle: Some(handle),
                _segment: Some(segment),
                stop_sent: None,
                terminated: false,
            })
        }
        None => {
            shmem::release(slot);
            None
        }
    }
}
