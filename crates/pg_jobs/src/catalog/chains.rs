//! Jobs that run after another job instead of on a schedule
//! (`jobs.schedule(…, after_job => …, run_if => …)`): which jobs others
//! follow, and which follower runs fire for runs that ended. A follower
//! is an ordinary job row whose `after_job` names the job it follows.

use crate::catalog::{plans, row, schema_version};
use crate::pg::error::OrRaise;
use pg_jobs_core::run::depends::RunIf;
use pg_jobs_core::run::RunStatus;
use pgrx::spi::SpiClient;

/// Whether any enabled job here follows another (the scheduler looks for
/// followers of ended runs only then).
pub(crate) fn any_followers(client: &mut SpiClient) -> bool {
    if !schema_version::has_job_chains() {
        return false;
    }
    plans::run(
        client,
        "SELECT EXISTS (SELECT FROM jobs.job WHERE enabled AND after_job IS NOT NULL)",
        &[],
    )
    .or_raise("looking for jobs that follow others")
    .next()
    .and_then(|r| row::get_opt::<bool>(&r, 1))
    .unwrap_or(false)
}

/// A run that ended for good (no retry follows it) and a job following its
/// job: the run's status and the follower's `run_if`.
pub(crate) struct Followed {
    pub(crate) run_id: i64,
    pub(crate) status: Option<RunStatus>,
    pub(crate) follower: i64,
    pub(crate) run_if: RunIf,
}

/// For the runs `ended`, the enabled jobs that follow their jobs, where the
/// run's end is final: finished, and no later attempt of it was queued.
pub(crate) fn followers_of(client: &mut SpiClient, ended: &[i64]) -> Vec<Followed> {
    plans::run(
        client,
        "SELECT r.id, r.status, f.id, f.run_if
           FROM jobs.run r
           JOIN jobs.job f ON f.after_job OPERATOR(pg_catalog.=) r.job_id AND f.enabled
          WHERE r.id OPERATOR(pg_catalog.=) ANY ($1)
            AND r.status OPERATOR(pg_catalog.<>) ALL ('{queued,starting,running,waiting}')
            AND NOT EXISTS (SELECT FROM jobs.run x
                             WHERE x.job_id OPERATOR(pg_catalog.=) r.job_id
                               AND x.id OPERATOR(pg_catalog.>) r.id
                               AND x.attempt OPERATOR(pg_catalog.=) (r.attempt OPERATOR(pg_catalog.+) 1)
                               AND x.scheduled_for IS NOT DISTINCT FROM r.scheduled_for)
          ORDER BY r.id, f.id",
        &[ended.to_vec().into()],
    )
    .or_raise("finding the jobs that follow runs that ended")
    .map(|r| {
        let status: String = row::get_req(&r, 2);
        let run_if: Option<String> = row::get_opt(&r, 4);
        Followed {
            run_id: row::get_req(&r, 1),
            status: status.parse().ok(),
            follower: row::get_req(&r, 3),
            run_if: run_if.and_then(|s| s.parse().ok()).unwrap_or(RunIf::Succeeded),
        }
    })
    .collect()
}
