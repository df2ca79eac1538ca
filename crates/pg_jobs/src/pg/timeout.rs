//! PostgreSQL's timeout module (`utils/timeout.h`), which pgrx does not
//! bind, and the statement timeout as a client backend arms it.
//!
//! Every timeout shares one SIGALRM timer; its handler runs in signal
//! context (`handle_sig_alarm` in `timeout.c`), so a handler registered
//! here may only do async-signal-safe work: set flags, set a latch.

/// `TimeoutId.STATEMENT_TIMEOUT` (the same in PostgreSQL 15 to 18).
pub const STATEMENT_TIMEOUT: i32 = 3;

/// `TimeoutId.USER_TIMEOUT`: passed to [`RegisterTimeout`], it asks for
/// the next free id an extension may use. PostgreSQL 17 added
/// `TRANSACTION_TIMEOUT` before it.
#[cfg(not(any(feature = "pg17", feature = "pg18")))]
pub const USER_TIMEOUT: i32 = 12;
#[cfg(any(feature = "pg17", feature = "pg18"))]
pub const USER_TIMEOUT: i32 = 13;

// Raw bindings, not guarded like pgrx's: an ERROR raised inside one would
// longjmp over the Rust frames above it instead of unwinding. These only
// raise FATAL (too many timeouts registered, which exits without a longjmp).
unsafe extern "C-unwind" {
    pub fn RegisterTimeout(id: i32, handler: extern "C" fn()) -> i32;
    pub fn enable_timeout_after(id: i32, delay_ms: i32);
    pub fn disable_timeout(id: i32, keep_indicator: bool);
    pub fn get_timeout_active(id: i32) -> bool;
    pub fn get_timeout_indicator(id: i32, reset_indicator: bool) -> bool;
}

unsafe extern "C" {
    /// Called from a signal handler, so not through pgrx's guarded
    /// binding (SetLatch is async-signal-safe).
    #[link_name = "SetLatch"]
    pub fn set_latch_from_signal_handler(latch: *mut std::ffi::c_void);
}

/// The session's `transaction_timeout` (PostgreSQL 17 and later; none
/// before).
fn transaction_timeout_ms() -> i32 {
    #[cfg(any(feature = "pg17", feature = "pg18"))]
    {
        // SAFETY: a plain int GUC variable, read on the backend's only
        // thread.
        unsafe { pg_sys::TransactionTimeout }
    }
    #[cfg(not(any(feature = "pg17", feature = "pg18")))]
    {
        0
    }
}

#[cfg(any(feature = "pg17", feature = "pg18"))]
use pgrx::pg_sys;

/// `enable_statement_timeout()` of `postgres.c`: at the start of a
/// statement, arm the statement timeout with the session's current
/// `statement_timeout` unless it is already running (the first statement's
/// clock starts before the string is parsed, as PostgreSQL's does), or
/// disarm it if the setting is now off.
///
/// # Safety
///
/// Call in a connected backend, inside the statement's transaction, on its
/// only thread (the timeout module is initialised by then).
pub unsafe fn enable_statement_timeout() {
    // SAFETY: a plain int GUC variable, read on the backend's only thread.
    let statement_timeout = unsafe { pgrx::pg_sys::StatementTimeout };
    let arm = pg_jobs_core::run::statement_timeout::to_arm(statement_timeout, transaction_timeout_ms());
    // SAFETY: STATEMENT_TIMEOUT is registered by PostgreSQL for every
    // backend (InitPostgres); the contract says the module is set up.
    unsafe {
        match arm {
            Some(ms) if !get_timeout_active(STATEMENT_TIMEOUT) => enable_timeout_after(STATEMENT_TIMEOUT, ms),
            Some(_) => {}
            None if get_timeout_active(STATEMENT_TIMEOUT) => disable_timeout(STATEMENT_TIMEOUT, false),
            None => {}
        }
    }
}

/// `disable_statement_timeout()` of `postgres.c`: after a statement, stop
/// its timeout if it is still running. (One that already fired keeps its
/// indicator, as in PostgreSQL: its cancel, if not yet serviced, is
/// reported at the next check for interrupts.)
///
/// # Safety
///
/// As [`enable_statement_timeout`]; in or out of a transaction.
pub unsafe fn disable_statement_timeout() {
    // SAFETY: STATEMENT_TIMEOUT is registered by PostgreSQL (see above);
    // checking first spares the timer's re-scheduling, as postgres.c does.
    unsafe {
        if get_timeout_active(STATEMENT_TIMEOUT) {
            disable_timeout(STATEMENT_TIMEOUT, false);
        }
    }
}

/// After the whole command, before pg_jobs' own statements: no statement
/// timeout running, and none remembered as fired (PostgreSQL's error
/// recovery does the same with `disable_all_timeouts`), so a later cancel
/// is never reported as a statement timeout.
///
/// # Safety
///
/// As [`disable_statement_timeout`].
pub unsafe fn end_statement_timeout() {
    // SAFETY: as disable_statement_timeout; get_timeout_indicator only
    // reads and clears a flag of the registered timeout.
    unsafe {
        disable_statement_timeout();
        get_timeout_indicator(STATEMENT_TIMEOUT, true);
    }
}

/// The version gates of this module, checked against the server the tests
/// run on: a gate that picks the wrong value for a version fails here.
#[cfg(any(test, feature = "pg_test"))]
#[pgrx::pg_schema]
mod tests {
    use super::*;
    use pgrx::prelude::*;

    extern "C" fn never_fires() {}

    /// Registering two timeouts at `USER_TIMEOUT` must give two ids of their
    /// own. If the constant named a predefined timeout instead (12 on
    /// PostgreSQL 17 and later, where `TRANSACTION_TIMEOUT` shifted the
    /// list), `RegisterTimeout` would take it as that id: both calls would
    /// return it, and the executor's second handler would replace its
    /// first.
    #[pg_test]
    fn user_timeout_allocates_fresh_ids() {
        // SAFETY: a connected backend, on its only thread; a handler that
        // does nothing, registered and never armed.
        let (a, b) = unsafe {
            (
                RegisterTimeout(USER_TIMEOUT, never_fires),
                RegisterTimeout(USER_TIMEOUT, never_fires),
            )
        };
        assert!(a >= USER_TIMEOUT && b >= USER_TIMEOUT, "ids {a} and {b}");
        assert_ne!(a, b);
    }

    /// `STATEMENT_TIMEOUT` is the timer PostgreSQL arms for
    /// `statement_timeout`.
    #[pg_test]
    fn statement_timeout_is_the_statement_timer() {
        Spi::run("SET LOCAL statement_timeout = '1h'").unwrap();
        // SAFETY: a connected backend, in a transaction, on its only thread.
        unsafe {
            enable_statement_timeout();
            assert!(get_timeout_active(STATEMENT_TIMEOUT));
            end_statement_timeout();
            assert!(!get_timeout_active(STATEMENT_TIMEOUT));
        }
    }

    /// `transaction_timeout` (PostgreSQL 17 and later) is read from the
    /// server's own variable.
    #[cfg(any(feature = "pg17", feature = "pg18"))]
    #[pg_test]
    fn transaction_timeout_is_read() {
        Spi::run("SET LOCAL transaction_timeout = '42s'").unwrap();
        assert_eq!(transaction_timeout_ms(), 42_000);
    }
}
