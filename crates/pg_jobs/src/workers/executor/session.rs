//! Between runs of a pooled executor: the session is reset as DISCARD ALL
//! would (minus DISCARD PLANS, which would re-plan pg_jobs' own statements),
//! and pg_jobs' own transactions get fixed characteristics whatever the
//! role's defaults say.

use super::*;

/// The next transaction pg_jobs itself starts in this session is READ
/// COMMITTED, read-write and not deferrable.
pub(super) unsafe fn own_transaction_characteristics() {
    unsafe {
        pg_sys::DefaultXactIsoLevel = pg_sys::XACT_READ_COMMITTED as i32;
        pg_sys::DefaultXactReadOnly = false;
        pg_sys::DefaultXactDeferrable = false;
    }
}

/// Everything `DISCARD ALL` resets, by the same calls (`DiscardAll()` in
/// `commands/discard.c`), less `ResetPlanCache()`: cached plans are not
/// session state a run can see (they are re-planned whenever what they
/// depend on changes), and dropping them made every run re-plan pg_jobs'
/// own statements too (measured with perf: a fifth of all CPU in a burst).
/// Nothing of one run's session — settings, SET ROLE/SESSION
/// AUTHORIZATION, cursors, prepared statements, LISTEN, advisory locks,
/// temp tables, sequence caches — reaches the next. In a transaction.
pub(super) unsafe fn reset_session() {
    unsafe {
        pg_sys::PortalHashTableDeleteAll();
        pg_sys::SetPGVariable(c"session_authorization".as_ptr(), std::ptr::null_mut(), false);
        pg_sys::ResetAllOptions();
        pg_sys::DropAllPreparedStatements();
        ffi::Async_UnlistenAll();
        pg_sys::LockReleaseAll(pg_sys::USER_LOCKMETHOD as _, true);
        pg_sys::ResetTempTableNamespace();
        ffi::ResetSequenceCaches();
    }
}
