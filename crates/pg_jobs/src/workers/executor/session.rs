//! Between runs of a pooled executor: the session is reset as DISCARD ALL
//! would (minus DISCARD PLANS, which would re-plan pg_jobs' own statements),
//! and pg_jobs' own transactions get fixed characteristics whatever the
//! role's defaults say.

use super::*;

/// The next transaction pg_jobs itself starts in this session is READ
/// COMMITTED, read-write and not deferrable.
///
/// # Safety
///
/// Call between transactions on the backend's main thread: these globals
/// are the defaults the next StartTransaction copies, and must not change
/// under a running transaction.
pub(super) unsafe fn own_transaction_characteristics() {
    // SAFETY: plain globals written between transactions (the contract).
    unsafe {
        pg_sys::DefaultXactIsoLevel = pg_sys::XACT_READ_COMMITTED as i32;
        pg_sys::DefaultXactReadOnly = false;
        pg_sys::DefaultXactDeferrable = false;
    }
}

/// The transaction characteristics the session's next transaction gets,
/// back to the session's defaults: the reset values of
/// `default_transaction_isolation`, `_read_only` and `_deferrable` (which
/// hold the role's and database's settings from connection time: a later
/// `ALTER ROLE`/`ALTER DATABASE … SET` retires the executor instead, see
/// `shmem::retire_connected_executors`).
/// [`own_transaction_characteristics`] writes the variables directly, and
/// RESET ALL leaves settings that came from the role alone, so without
/// this a pooled executor's second run lost its role's SERIALIZABLE.
///
/// # Safety
///
/// As [`own_transaction_characteristics`]: between transactions.
pub(super) unsafe fn restore_session_characteristics() {
    let reset = |name: &std::ffi::CStr| -> String {
        // SAFETY: a NUL-terminated literal naming a built-in setting; the
        // returned string is the setting's own, copied at once.
        unsafe {
            let p = pg_sys::GetConfigOptionResetString(name.as_ptr());
            if p.is_null() {
                String::new()
            } else {
                std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned()
            }
        }
    };
    let isolation = match reset(c"default_transaction_isolation").as_str() {
        "serializable" => pg_sys::XACT_SERIALIZABLE,
        "repeatable read" => pg_sys::XACT_REPEATABLE_READ,
        "read uncommitted" => pg_sys::XACT_READ_UNCOMMITTED,
        _ => pg_sys::XACT_READ_COMMITTED,
    };
    let read_only = reset(c"default_transaction_read_only") == "on";
    let deferrable = reset(c"default_transaction_deferrable") == "on";
    // SAFETY: plain globals written between transactions (the contract).
    unsafe {
        pg_sys::DefaultXactIsoLevel = isolation as i32;
        pg_sys::DefaultXactReadOnly = read_only;
        pg_sys::DefaultXactDeferrable = deferrable;
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
///
/// # Safety
///
/// Call in a connected backend, inside a transaction, between commands:
/// no portal or prepared statement of the caller's may be in use (they are
/// all dropped), as when DISCARD ALL runs at top level.
pub(super) unsafe fn reset_session() {
    // SAFETY: DiscardAll()'s own calls, in the state it runs in (the
    // contract above); none takes a pointer but the literal GUC name and a
    // null value, which SetPGVariable takes as RESET.
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
