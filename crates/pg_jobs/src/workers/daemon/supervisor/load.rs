//! Reading daemon definitions and adopting the daemon processes a previous
//! scheduler of this database left running.

use super::*;

impl Supervisor {
    pub(super) fn load(&mut self, client: &mut SpiClient) {
        let rows = catalog::daemons::load(client);
        let mut seen = Vec::new();
        let published: HashMap<i64, DaemonEntry> = shmem::daemon_entries(self.home_db)
            .into_iter()
            .map(|e| (e.daemon_id, e))
            .collect();
        let t = now();
        for r in rows {
            let (id, def, stored_restarts) = Def::from_row(r);
            seen.push(id);
            match self.daemons.get_mut(&id) {
                Some(d) => {
                    let event = DaemonEvent::Redefined {
                        changed: d.def.needs_restart_for(&def),
                        enabled_again: !d.def.enabled && def.enabled,
                    };
                    d.life.on(event, t);
                    d.def = def;
                }
                None => {
                    let d = Daemon::new(def, published.get(&id), stored_restarts);
                    self.daemons.insert(id, d);
                }
            }
        }
        for (id, d) in self.daemons.iter_mut() {
            if !seen.contains(id) {
                d.life.on(DaemonEvent::Dropped, t);
            }
        }
        self.daemons.retain(|_, d| !d.life.forgotten());
        if !self.loaded {
            self.adopt();
        }
        self.loaded = true;
    }

    /// Attach the live daemon processes an earlier life of this scheduler
    /// started; terminate those whose daemon is gone.
    pub(super) fn adopt(&mut self) {
        for (r, s) in shmem::daemons_of(self.home_db) {
            if !s.phase().has_process() {
                continue; // harvested below, or reaped once unclaimed for long
            }
            match self.daemons.get_mut(&s.job_id) {
                Some(d) if d.worker.is_none() => {
                    d.life.on(
                        DaemonEvent::Adopted {
                            started_at: s.started_at,
                        },
                        now(),
                    );
                    d.worker = Some(Worker {
                        slot: r,
                        handle: None,
                        _segment: None,
                    });
                }
                _ => {
                    shmem::signal(r, libc::SIGTERM);
                }
            }
        }
    }
}
