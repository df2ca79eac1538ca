//! How a daemon's process ended: harvesting exited processes, ones that
//! never started, and what the daemon's lifecycle (core's `daemon::Life`)
//! makes of the ending.

use super::*;

impl Supervisor {
    /// Take in daemon processes that ended: how, and when to start them again.
    pub(super) fn harvest(&mut self, client: &mut SpiClient, persist: bool) {
        for id in self.never_started() {
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

    /// Our own workers that the postmaster reports gone without ever
    /// claiming their slot (they failed before connecting): their slots are
    /// freed; their daemons' ids are returned.
    pub(super) fn never_started(&self) -> Vec<i64> {
        let mut ids = Vec::new();
        for (id, d) in &self.daemons {
            if let Some(w) = &d.worker {
                if w.handle
                    .as_ref()
                    .is_some_and(|h| h.status() == HandleStatus::Stopped)
                    && shmem::slot(w.slot).is_some_and(|s| s.phase().unclaimed())
                {
                    shmem::release_unclaimed(w.slot);
                    ids.push(*id);
                }
            }
        }
        ids
    }

    /// Daemon `id`'s process is gone: the lifecycle decides what comes next;
    /// log it, and record it in `jobs.daemon` if `persist`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn ended(
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
        d.worker = None;
        let t = now();
        let event = DaemonEvent::Exited {
            exit,
            uptime_ms,
            enabled: d.def.enabled,
            delays: d.def.delays,
        };
        let Some(e) = d.life.on(event, t) else {
            return;
        };
        d.last_exit = Some(LastExit {
            exit,
            at: t,
            sqlstate: sqlstate.to_owned(),
            message: message.to_owned(),
        });
        let what = match exit {
            _ if e.stopping => "stopped".to_owned(),
            Exit::Clean => "returned".to_owned(),
            Exit::Error => format!("failed: {message} (SQLSTATE {sqlstate})"),
            Exit::Crash => format!("crashed: {message}"),
        };
        let next = match e.next_start {
            _ if !e.restarting => "it stays stopped".to_owned(),
            None => "restarting it now".to_owned(),
            Some(at) => format!("restarting it in {} ms", (at - t) / 1000),
        };
        log!("pg_jobs: daemon \"{}\" {what}; {next}", d.def.name);
        // A failure that puts it in backoff is announced (on a primary:
        // `persist`; a standby can send no notification).
        let failed = matches!(exit, Exit::Error | Exit::Crash) && !e.stopping;
        if persist && failed && e.restarting && e.next_start.is_some() {
            if let Some(channel) = crate::gucs::notify_channel() {
                let payload =
                    pg_jobs_core::notify::daemon_backoff_payload(&d.def.database, id, Some(sqlstate));
                crate::pg::notify::send(&channel, &payload);
            }
        }
        if persist && !d.life.dropped {
            catalog::daemons::record_exit(
                client,
                id,
                &catalog::daemons::ExitRecord {
                    restarting: e.restarting,
                    exit: exit.as_str(),
                    sqlstate,
                    message,
                },
            );
        }
        if d.life.dropped {
            self.daemons.remove(&id);
        }
    }
}
