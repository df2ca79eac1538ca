//! What the registry shows of each daemon (published by its scheduler for
//! `jobs.daemon_status`), and where a daemon's process is.

use super::*;

/// What a scheduler shows about one of its daemons (`jobs.daemon_status`).
/// Written only by the daemon's scheduler; it outlives the daemon's process
/// (a daemon waiting to restart has none) and its scheduler's (a restarted
/// scheduler picks up the restart count).
#[derive(Debug, Clone, Copy)]
#[repr(C)]
pub struct DaemonEntry {
    pub in_use: bool,
    /// The database of the scheduler that supervises it (where it is defined).
    pub home_db: u32,
    pub daemon_id: i64,
    /// The daemon's owner: only its members (and superusers) see the entry.
    pub owner: u32,
    /// A `pg_jobs_core::daemon::DaemonState`.
    pub state: u8,
    pub pid: i32,
    pub since: i64,
    pub restarts: i64,
    /// 0: none yet; 1 clean, 2 error, 3 crash.
    pub last_exit: u8,
    pub last_exit_at: i64,
    pub sqlstate: [u8; 5],
    message_len: u16,
    message: [u8; DAEMON_MESSAGE_BYTES],
    /// When it restarts (TimestampTz; 0: not waiting).
    pub next_start: i64,
}

impl Default for DaemonEntry {
    fn default() -> Self {
        DaemonEntry {
            in_use: false,
            home_db: 0,
            daemon_id: 0,
            owner: 0,
            state: 0,
            pid: 0,
            since: 0,
            restarts: 0,
            last_exit: 0,
            last_exit_at: 0,
            sqlstate: [b'0'; 5],
            message_len: 0,
            message: [0; DAEMON_MESSAGE_BYTES],
            next_start: 0,
        }
    }
}

impl DaemonEntry {
    pub fn message(&self) -> String {
        String::from_utf8_lossy(&self.message[..self.message_len as usize]).into_owned()
    }
    pub fn set_message(&mut self, message: &str) {
        let mut end = message.len().min(DAEMON_MESSAGE_BYTES);
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        self.message[..end].copy_from_slice(&message.as_bytes()[..end]);
        self.message_len = end as u16;
    }
    pub fn sqlstate(&self) -> String {
        String::from_utf8_lossy(&self.sqlstate).into_owned()
    }
    pub fn set_sqlstate(&mut self, code: &str) {
        if code.len() == 5 {
            self.sqlstate.copy_from_slice(code.as_bytes());
        }
    }
}

/// Scheduler side: the daemon status entries of `home_db`.
pub fn daemon_entries(home_db: pg_sys::Oid) -> Vec<DaemonEntry> {
    let reg = REGISTRY.share();
    reg.daemons
        .iter()
        .filter(|e| e.in_use && e.home_db == home_db.to_u32())
        .copied()
        .collect()
}

/// Every daemon status entry (`jobs.daemon_status`).
pub fn all_daemon_entries() -> Vec<DaemonEntry> {
    let reg = REGISTRY.share();
    reg.daemons.iter().filter(|e| e.in_use).copied().collect()
}

/// Scheduler side: publish the status of `home_db`'s daemons, replacing
/// what it published before. Returns false if the table is full (daemons
/// beyond it still run; they are just not shown).
pub fn publish_daemons(home_db: pg_sys::Oid, entries: &[DaemonEntry]) -> bool {
    let mut reg = REGISTRY.exclusive();
    let home = home_db.to_u32();
    for e in reg.daemons.iter_mut().filter(|e| e.in_use && e.home_db == home) {
        e.in_use = false;
    }
    let mut free = reg.daemons.iter_mut().filter(|e| !e.in_use);
    for entry in entries {
        let Some(e) = free.next() else { return false };
        *e = DaemonEntry {
            in_use: true,
            home_db: home,
            ..*entry
        };
    }
    true
}

/// The live process of daemon `daemon_id` of `home_db`: (pid, started_at).
pub fn daemon_process(home_db: u32, daemon_id: i64) -> Option<(i32, i64)> {
    let reg = REGISTRY.share();
    reg.slots
        .iter()
        .find(|s| {
            s.in_use
                && s.kind == Kind::Daemon
                && s.home_db == home_db
                && s.job_id == daemon_id
                && s.phase().has_process()
        })
        .map(|s| (s.pid, s.started_at))
}
