//! Job definitions and due times: loading jobs (all, or the ones that
//! changed), the min-heap of next due times, and firing the jobs that are
//! due (a run queued or skipped per the overlap policy).

use super::*;
use crate::catalog::row;
use crate::pg::error::OrRaise;

/// A job as the scheduler holds it between passes.
pub(super) struct Job {
    pub(super) schedule: Schedule,
    /// The schedule's text and time zone, to tell on reload whether it changed.
    pub(super) key: (String, String),
    pub(super) tz: TimeZone,
    pub(super) anchor: Timestamp,
    pub(super) next_due: Option<Timestamp>,
    /// Who runs it where (role and database OIDs; database 0 if unknown):
    /// what executors to start ahead of its due instant.
    pub(super) owner: u32,
    pub(super) datid: u32,
}

/// The value `make` gives for `key`, made once and shared by every job
/// that names it (a clone is a reference count).
pub(super) fn shared<T: Clone, E>(
    cache: &mut HashMap<String, T>,
    key: &str,
    make: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, E> {
    if let Some(v) = cache.get(key) {
        return Ok(v.clone());
    }
    let v = make(key)?;
    cache.insert(key.to_owned(), v.clone());
    Ok(v)
}

/// Show the current names of renamed databases in job and daemon
/// definitions (they are kept and dispatched by OID; the name is for people).
/// Only on a full reload: a rename restarts the scheduler of the renamed
/// database, and the others catch up at their next full reload.
pub(super) fn refresh_database_names(client: &mut SpiClient) {
    if !schema_version::databases_by_oid() {
        return;
    }
    for table in ["jobs.job", "jobs.daemon"] {
        client
            .update(
                &format!(
                    "UPDATE {table} t SET database = d.datname FROM pg_catalog.pg_database d
                      WHERE d.oid OPERATOR(pg_catalog.=) t.datid AND t.database OPERATOR(pg_catalog.<>) d.datname"
                ),
                None,
                &[],
            )
            .or_raise("refreshing database names");
    }
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
    let state: std::collections::HashMap<i64, (Overlap, u32, u32)> = plans::run(
        client,
        "SELECT j.id, j.overlap,
                (SELECT count(*) FROM jobs.run r WHERE r.job_id OPERATOR(pg_catalog.=) j.id
                    AND r.status OPERATOR(pg_catalog.=) ANY ('{starting,running}'))::int4,
                (SELECT count(*) FROM jobs.run r WHERE r.job_id OPERATOR(pg_catalog.=) j.id
                    AND r.status OPERATOR(pg_catalog.=) 'queued')::int4
           FROM jobs.job j WHERE j.id OPERATOR(pg_catalog.=) ANY ($1)",
        &[ids.into()],
    )
    .or_raise("reading due jobs")
    .filter_map(|row| {
        let id = row::get_opt::<i64>(&row, 1)?;
        let overlap = row
            .get::<String>(2)
            .ok()
            .flatten()
            .and_then(|s| s.parse().ok())
            .unwrap_or(Overlap::Skip);
        let active = row::get_opt::<i32>(&row, 3).unwrap_or(0) as u32;
        let pending = row::get_opt::<i32>(&row, 4).unwrap_or(0) as u32;
        Some((id, (overlap, active, pending)))
    })
    .collect();
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
    // The run records the database's current name (it may have been renamed).
    let (datid_col, database) = if schema_version::databases_by_oid() {
        (
            ", datid",
            "COALESCE((SELECT d.datname FROM pg_catalog.pg_database d
                        WHERE d.oid OPERATOR(pg_catalog.=) j.datid), j.database), j.datid",
        )
    } else {
        ("", "j.database")
    };
    plans::run_built(
        client,
        &format!(
            "/* run event: fire */ INSERT INTO jobs.run (job_id, owner, command, database{datid_col}, max_attempts, timeout,
                                   retry_backoff, scheduled_for, status, message, finished_at)
             SELECT j.id, j.owner, j.command, {database}, j.max_attempts, j.timeout, j.retry_backoff,
                    TIMESTAMPTZ 'epoch' + u.due * INTERVAL '1 microsecond',
                    u.status, u.message, CASE WHEN u.status OPERATOR(pg_catalog.=) 'skipped' THEN pg_catalog.now() END
               FROM ROWS FROM (pg_catalog.unnest($1::int8[]), pg_catalog.unnest($2::int8[]),
                               pg_catalog.unnest($3::text[]), pg_catalog.unnest($4::text[]))
                      WITH ORDINALITY AS u(id, due, status, message, n)
               JOIN jobs.job j ON j.id OPERATOR(pg_catalog.=) u.id
              ORDER BY u.n"
        ),
        &[ids.into(), dues.into(), statuses.into(), messages.into()],
    )
    .or_raise("queueing due runs");
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
        }
        let default_tz = gucs::default_timezone();
        // The last due time matters only for one-offs and catch_up jobs:
        // don't look up the history of the others.
        let sql = format!(
            "SELECT j.id, j.schedule, j.timezone, j.catch_up,
                    (EXTRACT(EPOCH FROM j.once_at) * 1000000)::int8,
                    (EXTRACT(EPOCH FROM j.created_at) * 1000000)::int8,
                    CASE WHEN j.catch_up OR j.once_at IS NOT NULL THEN
                      (SELECT (EXTRACT(EPOCH FROM max(r.scheduled_for)) * 1000000)::int8
                         FROM jobs.run r WHERE r.job_id OPERATOR(pg_catalog.=) j.id) END,
                    j.owner::pg_catalog.oid, {}
               FROM jobs.job j WHERE j.enabled {}",
            if schema_version::databases_by_oid() {
                "j.datid"
            } else {
                "NULL::pg_catalog.oid"
            },
            if only.is_some() {
                "AND j.id OPERATOR(pg_catalog.=) ANY ($1)"
            } else {
                ""
            }
        );
        let args = match only {
            Some(ids) => vec![ids.to_vec().into()],
            None => vec![],
        };
        let rows = client.select(&sql, None, &args).or_raise("loading jobs");
        let mut fresh = HashMap::new();
        for row in rows {
            let id: i64 = row::get_opt(&row, 1).unwrap_or_default();
            let text: String = row::get_opt(&row, 2).unwrap_or_default();
            let tz_name: String = row::get_opt(&row, 3).unwrap_or_else(|| default_tz.clone());
            let catch_up: bool = row::get_opt(&row, 4).unwrap_or(false);
            let once_at: Option<i64> = row::get_opt(&row, 5);
            let created: i64 = row::get_opt(&row, 6).unwrap_or_default();
            let last_due: Option<i64> = row::get_opt(&row, 7);
            let owner = row::get_opt::<pg_sys::Oid>(&row, 8).map_or(0, |o| o.to_u32());
            let datid = row::get_opt::<pg_sys::Oid>(&row, 9).map_or(0, |o| o.to_u32());
            let schedule = match once_at {
                Some(us) => Schedule::Once(Timestamp::from_microsecond(us).unwrap_or(now)),
                None => match shared(&mut self.parsed, &text, Schedule::parse) {
                    Ok(s) => s,
                    Err(e) => {
                        warning!("pg_jobs: job {id} has an invalid schedule \"{text}\": {e}");
                        continue;
                    }
                },
            };
            let Ok(tz) = shared(&mut self.zones, &tz_name, TimeZone::get) else {
                warning!("pg_jobs: job {id} has an unknown time zone \"{tz_name}\"");
                continue;
            };
            let anchor = Timestamp::from_microsecond(created).unwrap_or(now);
            let key = (text, tz_name);
            let last_due = last_due.and_then(|us| Timestamp::from_microsecond(us).ok());
            let next_due = match self.jobs.get(&id) {
                Some(old) if old.key == key => old.next_due,
                _ => match &schedule {
                    Schedule::Once(at) => last_due.is_none().then_some(*at),
                    // Once per server start, for jobs that existed when it started.
                    Schedule::Reboot => (self.reboot
                        // SAFETY: PgStartTime is a plain global, set once
                        // in the postmaster and inherited.
                        && created < unsafe { pg_sys::PgStartTime } + time::PG_EPOCH_OFFSET_US)
                        .then_some(now),
                    s => {
                        // Missed runs are not replayed; catch_up runs one now.
                        let missed = catch_up
                            && last_due
                                .and_then(|l| s.next_after(l, &tz, anchor))
                                .is_some_and(|t| t < now);
                        if missed {
                            Some(now)
                        } else {
                            s.next_after(now, &tz, anchor)
                        }
                    }
                },
            };
            fresh.insert(
                id,
                Job {
                    schedule,
                    key,
                    tz,
                    anchor,
                    next_due,
                    owner,
                    datid,
                },
            );
        }
        match only {
            Some(ids) => {
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
            None => {
                self.jobs = fresh;
                self.reboot = false;
                self.rebuild_heap();
                self.loaded = true;
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
            let mut next = job.schedule.next_after(due, &job.tz, job.anchor);
            if next.is_some_and(|t| t <= now) {
                next = job.schedule.next_after(now, &job.tz, job.anchor);
            }
            job.next_due = next;
            if let Some(t) = next {
                self.heap.push(Reverse((t, id)));
            }
        }
        fire(client, &due_now);
    }
}
