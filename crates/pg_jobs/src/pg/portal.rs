//! Running a portal, whose C signature differs between PostgreSQL majors.

use pgrx::pg_sys;

/// `PortalRun(portal, FETCH_ALL, isTopLevel = true, dest, dest, qc)`: run
/// the portal to completion at top level, its rows to `dest`, as
/// `exec_simple_query` does (which, like us, has no use for its result:
/// a portal run with FETCH_ALL always completes or raises an ERROR).
///
/// PostgreSQL 18 dropped `PortalRun`'s `run_once` argument (a portal can
/// no longer be run more than once, so there is nothing to say); up to 17
/// it is `true` here, as `exec_simple_query` passes it.
///
/// # Safety
///
/// As `PortalRun`: `portal` is a started portal (`PortalStart`), `dest` a
/// valid receiver and `qc` a valid completion, in the portal's transaction.
/// An ERROR unwinds through pgrx's guard.
pub unsafe fn run_to_completion(
    portal: pg_sys::Portal,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    // FETCH_ALL is LONG_MAX.
    let count = libc::c_long::MAX;
    #[cfg(not(feature = "pg18"))]
    // SAFETY: the caller's contract; `run_once` is true as exec_simple_query
    // passes it.
    unsafe {
        pg_sys::PortalRun(portal, count, true, true, dest, dest, qc);
    }
    #[cfg(feature = "pg18")]
    // SAFETY: the caller's contract.
    unsafe {
        pg_sys::PortalRun(portal, count, true, dest, dest, qc);
    }
}
