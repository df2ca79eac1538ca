//! `cron.job_run_details` is a view of pg_jobs' run history; a `DELETE`
//! from it (pg_cron grants DELETE to PUBLIC, for trimming one's own
//! history) goes through its INSTEAD OF trigger to [`cron_delete_run`].

use super::roles::{i_am_superuser, me};
use crate::catalog::runs;
use crate::pg::bgw;
use crate::pg::error::OrRaise;
use pgrx::prelude::*;

/// Delete run `runid` if it is the caller's (exactly; superusers: any)
/// and finished; whether it was deleted (the trigger then counts the row).
#[pg_extern(sql = false)]
fn cron_delete_run(runid: Option<i64>) -> bool {
    let Some(runid) = runid else { return false };
    let owner = (!i_am_superuser()).then(me);
    bgw::as_superuser(|| runs::delete_finished(runid, owner)).or_raise("deleting a run")
}
