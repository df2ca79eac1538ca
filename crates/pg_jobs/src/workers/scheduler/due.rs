//! Job definitions and due times: loading jobs (all, or the ones that
//! changed), the min-heap of next due times, and firing the jobs that are
//! due (a run queued or skipped per the overlap policy).

use super::*;
use crate::catalog::{self, jobs::JobRow};
use pg_jobs_core::schedule::{first_due, next_due_after_firing, FirstDue};
use std::rc::Rc;

/// A job as the scheduler holds it between passes.
pub(super) struct Job {
    pub(super) schedule: Schedule,
    /// The schedule's text and time zone, to tell on reload whether it
    /// changed (shared with the parse caches: a job holds two pointers).
    pub(super) key: (Rc<str>, Rc<str>),
    pub(super) tz: TimeZone,
    pub(super) anchor: Timestamp,
    pub(super) next_due: Option<Timestamp>,
    /// Who runs it where (role and database OIDs; database 0 if unknown):
    /// what executors to start ahead of its due instant.
    pub(super) owner: u32,
    pub(super) datid: u32,
}

/// The value `make` gives for `key`, and the key, made once and shared by
/// every job that names it (a clone is a reference count).
pub(super) fn shared<T: Clone, E>(
    cache: &mut HashMap<Rc<str>, T>,
    key: &str,
    make: impl FnOnce(&str) -> Result<T, E>,
) -> Result<(Rc<str>, T), E> {
    if let Some((k, v)) = cache.get_key_value(key) {
        return Ok((k.clone(), v.clone()));
    }
    let v = make(key)?;
    let k: Rc<str> = Rc::from(key);
    cache.insert(k.clone(), v.clone());
    Ok((k, v))
}

/// Show the current names of renamed databases in job and daemon
/// definitions (they are kept and dispatched by OID; the name is for people).
/// Only on a full reload: a rename restarts the scheduler of the renamed
/// database, and the others catch up at their next full reload.
pub(super) fn refresh_database_names(client: &mut SpiClient) {
    if !schema_version::databases_by_oid() {
        return;
    }
    catalog::jobs::refresh_database_names(client);
    catalog::daemons::refresh_database_names(client);
}

/// A job came due at `due`: apply its overlap policy.
/// Queue a run of each job in `due` (job id, due instant), in that order,
/// or record it skipped (overlap `skip`), or nothing if one is already
/// queued (overlap `queue`): two statements for all of them, however many
/// fall due at once.
pub(super) fn fire(client: &mut SpiClient, due: &[(i64, Timestamp)]) {
    if due.is_empty() {
        return;
    }
    let ids: Vec<i64> = due.iter().map(|(id, _)| *id).collect();
    let state = catalog::runs::overlap_state(client, ids);
    let (mut ids, mut dues, mut statuses, mut messages) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, at) in due {
        let Some((overlap, active, pending)) = state.get(id) else {
            continue; // dropped meanwhile
        };
        let (status, message) = match overlap.on_due(*active, *pending) {
            OnDue::AlreadyPending => continue,
            OnDue::Enqueue => ("queued", None),
            OnDue::Skip => (
                "skipped",
                Some("skipped: the previous run was still going (overlap skip)".to_owned()),
            ),
        };
        ids.push(*id);
        dues.push(at.as_microsecond());
        statuses.push(status.to_owned());
        messages.push(message);
    }
    if ids.is_empty() {
        return;
    }
    let skipped = statuses.iter().filter(|s| *s == "skipped").count();
    crate::hooks::runs_ended_at_commit(pg_jobs_core::run::RunStatus::Skipped, skipped);
    catalog::runs::fire(
        client,
        catalog::runs::Fired {
            ids,
            dues,
            statuses,
            messages,
        },
    );
}

impl Scheduler {
    /// (Re)load enabled jobs and their next due times: all of them, or just
    /// `only` (jobs added, changed or removed since the last load). A job
    /// whose schedule and time zone did not change keeps its due time, so a
    /// reload never skips a run that was about to happen.
    pub(super) fn load_jobs(&mut self, client: &mut SpiClient, now: Timestamp, only: Option<&[i64]>) {
        let started = Instant::now();
        if only.is_none() {
            // Parses shared by this load's jobs only: no growth across reloads.
            self.parsed.clear();
            self.zones.clear();
            // A full load follows a role's rename, among others: the names
            // a dump gives the owners follow too (not on a standby, which
            // has its primary's).
            // SAFETY: RecoveryInProgress only reads shared state.
            if !unsafe { pg_sys::RecoveryInProgress() } {
                catalog::definitions::refresh_owner_names(client);
            }
        }
        let default_tz = gucs::default_timezone();
        let fresh: HashMap<i64, Job> = catalog::jobs::load(client, only)
            .into_iter()
            .filter_map(|r| Some((r.id, self.make_job(r, now, &default_tz)?)))
            .collect();
        match only {
            Some(ids) => self.merge_jobs(fresh, ids),
            None => {
                self.jobs = fresh;
                self.reboot = false;
                self.rebuild_heap();
                self.loaded = true;
                self.trim_after_pass = true;
                // The parses were shared by this load's jobs; a reload of
                // a few jobs parses its own.
                self.parsed = HashMap::new();
                let took = started.elapsed();
                if took > Duration::from_millis(100) || self.jobs.len() >= 10_000 {
                    log!(
                        "pg_jobs: loaded {} jobs in {} ms",
                        self.jobs.len(),
                        took.as_millis()
                    );
                }
            }
        }
    }

    /// A loaded job, with its next due time: kept if its schedule and time
    /// zone did not change, else the run model's first due time. `None`
    /// (logged) for a schedule or time zone that cannot be read.
    fn make_job(&mut self, r: JobRow, now: Timestamp, default_tz: &str) -> Option<Job> {
        let id = r.id;
        let (text, schedule) = match r.once_at {
            Some(us) => (
                Rc::from(r.text.as_str()),
                Schedule::Once(Timestamp::from_microsecond(us).unwrap_or(now)),
            ),
            None => match shared(&mut self.parsed, &r.text, Schedule::parse_stored) {
                Ok(s) => s,
                Err(e) => {
                    warning!("pg_jobs: job {id} has an invalid schedule \"{}\": {e}", r.text);
                    return None;
                }
            },
        };
        let tz_name = r.tz_name.unwrap_or_else(|| default_tz.to_owned());
        let Ok((tz_name, tz)) = shared(&mut self.zones, &tz_name, TimeZone::get) else {
            warning!("pg_jobs: job {id} has an unknown time zone \"{tz_name}\"");
            return None;
        };
        let anchor = Timestamp::from_microsecond(r.created).unwrap_or(now);
        let key = (text, tz_name);
        let next_due = match self.jobs.get(&id) {
            Some(old) if old.key == key => old.next_due,
            _ => first_due(
                &schedule,
                &FirstDue {
                    now,
                    tz: &tz,
                    anchor,
                    last_due: r.last_due.and_then(|us| Timestamp::from_microsecond(us).ok()),
                    catch_up: r.catch_up,
                    reboot_pending: self.reboot,
                    // SAFETY: PgStartTime is a plain global, set once in
                    // the postmaster and inherited.
                    server_started: time::from_pg_clamped(unsafe { pg_sys::PgStartTime }),
                },
            ),
        };
        Some(Job {
            schedule,
            key,
            tz,
            anchor,
            next_due,
            owner: r.owner,
            datid: r.datid,
        })
    }

    /// Take in the reloaded jobs `ids` (`fresh` holds those still enabled).
    fn merge_jobs(&mut self, mut fresh: HashMap<i64, Job>, ids: &[i64]) {
        for id in ids {
            let old_due = self.jobs.remove(id).and_then(|j| j.next_due);
            if let Some(job) = fresh.remove(id) {
                // An unchanged due time is in the heap already.
                if let Some(t) = job.next_due.filter(|t| Some(*t) != old_due) {
                    self.heap.push(Reverse((t, *id)));
                }
                self.jobs.insert(*id, job);
            }
        }
        // Replaced due times stay in the heap as stale entries
        // (skipped when popped); rebuild before they pile up.
        if self.heap.len() > 2 * self.jobs.len() + 1024 {
            self.rebuild_heap();
        }
    }

    pub(super) fn rebuild_heap(&mut self) {
        self.heap = self
            .jobs
            .iter()
            .filter_map(|(id, j)| j.next_due.map(|t| Reverse((t, *id))))
            .collect();
    }

    /// Queue (or skip) a run for every job due by `now`, then schedule its
    /// next due time. A job that fell behind moves to its next due time after
    /// now: missed runs are not replayed.
    pub(super) fn fire_due_jobs(&mut self, client: &mut SpiClient, now: Timestamp) {
        let mut due_now = Vec::new();
        while let Some(Reverse((due, id))) = self.heap.peek().copied() {
            if due > now {
                break;
            }
            self.heap.pop();
            let Some(job) = self.jobs.get_mut(&id) else {
                continue;
            };
            if job.next_due != Some(due) {
                continue; // stale entry
            }
            due_now.push((id, due));
            self.fired_in_pass.push((id, due));
            let next = next_due_after_firing(&job.schedule, due, now, &job.tz, job.anchor);
            job.next_due = next;
            if let Some(t) = next {
                self.heap.push(Reverse((t, id)));
            }
        }
        fire(client, &due_now);
    }
}
