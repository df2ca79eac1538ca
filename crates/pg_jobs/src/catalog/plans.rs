//! Statements pg_jobs runs over and over (per run in an executor, per pass
//! in a scheduler, per submit), parsed and planned once per process and
//! kept across transactions (`SPI_keepplan`). Measured with `perf` during a
//! burst of trivial runs: parsing, rewriting and planning pg_jobs' own SQL
//! took ~45% of all CPU before this.
//!
//! A kept plan is PostgreSQL's plan cache entry: it is re-analyzed when a
//! table it reads changes (an `ALTER EXTENSION ... UPDATE`, a dropped and
//! recreated extension), so keeping it is safe for the life of the process.

use pgrx::datum::DatumWithOid;
use pgrx::spi::{OwnedPreparedStatement, SpiClient, SpiResult, SpiTupleTable};
use pgrx::PgOid;
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    /// By the address of the SQL text, a string literal or a statement
    /// composed once per process (a `static LazyLock<String>`, which never
    /// moves), so a look-up hashes a number, not the statement: a handful
    /// per process.
    static PLANS: RefCell<HashMap<usize, OwnedPreparedStatement>> = RefCell::new(HashMap::new());
    /// Statements put together at run time (they depend on the schema
    /// version), by their text.
    static BUILT_PLANS: RefCell<HashMap<String, OwnedPreparedStatement>> = RefCell::new(HashMap::new());
}

/// Run `sql` (it may write) with `args`, planning it only the first time
/// this process runs it. The argument types are taken from `args`, so a
/// statement must always be called with the same types.
pub fn run<'conn>(
    client: &mut SpiClient<'conn>,
    sql: &'static str,
    args: &[DatumWithOid],
) -> SpiResult<SpiTupleTable<'conn>> {
    let key = sql.as_ptr() as usize;
    // Taken out while it runs: a statement that (through a trigger, say)
    // ends up here again plans its own copy instead of finding it borrowed.
    let kept = PLANS.with(|p| p.borrow_mut().remove(&key));
    let (plan, result) = execute(client, kept, sql, args)?;
    PLANS.with(|p| p.borrow_mut().insert(key, plan));
    result
}

/// [`run`] for a statement built at run time.
pub fn run_built<'conn>(
    client: &mut SpiClient<'conn>,
    sql: &str,
    args: &[DatumWithOid],
) -> SpiResult<SpiTupleTable<'conn>> {
    let kept = BUILT_PLANS.with(|p| p.borrow_mut().remove(sql));
    let (plan, result) = execute(client, kept, sql, args)?;
    BUILT_PLANS.with(|p| p.borrow_mut().insert(sql.to_owned(), plan));
    result
}

type Executed<'conn> = (OwnedPreparedStatement, SpiResult<SpiTupleTable<'conn>>);

fn execute<'conn>(
    client: &mut SpiClient<'conn>,
    kept: Option<OwnedPreparedStatement>,
    sql: &str,
    args: &[DatumWithOid],
) -> SpiResult<Executed<'conn>> {
    let plan = match kept {
        Some(p) => p,
        None => {
            let types: Vec<PgOid> = args.iter().map(|a| PgOid::from(a.oid())).collect();
            client.prepare_mut(sql, &types)?.keep()
        }
    };
    let result = client.update(&plan, None, args);
    Ok((plan, result))
}
