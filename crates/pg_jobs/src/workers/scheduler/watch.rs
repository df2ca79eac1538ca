//! Watch mode, on a hot standby: read-only, no jobs; only the daemons
//! declared to run on standbys. Promotion is noticed at the next pass.

use super::*;

impl Scheduler {
    /// Watch mode, on a hot standby: nothing is written and no job runs;
    /// daemons for standbys run. Definitions arrive by replication, which
    /// wakes nobody, so look again each second; the promotion watcher wakes
    /// us when recovery ends.
    pub(super) fn watch(&mut self) -> Next {
        self.was_in_recovery = true;
        shmem::set_state(self.me, State::Busy, None);
        let present = bgw::in_transaction("pg_jobs scheduler: watching daemons", || {
            if !extension_exists() {
                return false;
            }
            Spi::connect_mut(|client| self.daemons.observe(client, true, false));
            true
        });
        if !present {
            return Next::Exit;
        }
        let wake = self.daemons.act(true);
        shmem::set_state(self.me, State::Idle, None);
        let mut ms: i64 = 1_000;
        if let Some(t) = wake {
            // SAFETY: GetCurrentTimestamp only reads the clock.
            ms = ms.min((t - unsafe { pg_sys::GetCurrentTimestamp() }) / 1000 + 1);
        }
        Next::Sleep(Some(Duration::from_millis(ms.max(1) as u64)))
    }
}
