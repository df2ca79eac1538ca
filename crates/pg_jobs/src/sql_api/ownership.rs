//! `jobs._sync_ownership()`: every role's ownership anchor in this
//! database made to match what it owns (see `catalog::ownership`). The
//! 0.3.0 → 0.4.0 upgrade runs it to anchor the owners it finds; a
//! superuser may run it again, e.g. after restoring a dump (it adopts the
//! anchors the dump recreated) or after dropping an anchor by hand.

use crate::catalog::ownership;
use crate::pg::error::raise;
use pgrx::prelude::*;
use pgrx::PgSqlErrorCode as Code;

/// Make every role's ownership anchor here match what it owns.
#[pg_extern(volatile, parallel_unsafe)]
fn _sync_ownership() {
    // SAFETY: reads the current user's superuser attribute (a syscache
    // look-up, in the calling transaction).
    if !unsafe { pg_sys::superuser() } {
        raise(
            Code::ERRCODE_INSUFFICIENT_PRIVILEGE,
            "permission denied for function _sync_ownership",
            Some("Only superusers may re-synchronise pg_jobs' ownership anchors."),
        );
    }
    ownership::sync_all();
}
