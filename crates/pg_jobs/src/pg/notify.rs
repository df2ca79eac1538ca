//! `NOTIFY` from a worker: PostgreSQL queues it in the transaction and
//! delivers it when that transaction commits (never if it rolls back).

/// Queue a notification on `channel` with `payload` in the current
/// transaction, through `pg_notify` (pgrx binds no `Async_Notify`, and
/// through SPI an error — a channel name too long — is an ordinary ERROR
/// that rolls the unit of work back). A payload PostgreSQL would refuse
/// (8000 bytes or more) is not sent.
pub fn send(channel: &str, payload: &str) {
    if payload.len() >= 8000 {
        return;
    }
    if let Err(e) = pgrx::Spi::run_with_args(
        "SELECT pg_catalog.pg_notify($1, $2)",
        &[channel.into(), payload.into()],
    ) {
        pgrx::warning!("pg_jobs: cannot notify channel \"{channel}\": {e}");
    }
}
