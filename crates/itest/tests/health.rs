//! `jobs.health` (issue 17): one row per job and daemon with its last
//! success, consecutive failures, and whether a run that should have
//! started more than `pg_jobs.missed_after` seconds ago has not — so that
//! monitoring can alert on silence (the scheduler stopped, no worker slot,
//! a daemon that does not come back), not only on failures.

use pg_jobs_itest::{one, wait_for, Cluster};
use postgres::Client;
use std::time::Duration;

/// Generous, on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(60);

/// `name`'s row of `jobs.health` as text: kind, a last success is known
/// (t/f), consecutive failures (- for a daemon), missed (t/f).
fn health(c: &mut Client, name: &str) -> Option<String> {
    c.query_opt(
        "SELECT concat_ws(' ', kind, last_success IS NOT NULL, COALESCE(consecutive_failures::text, '-'), missed)
           FROM jobs.health WHERE name = $1",
        &[&name],
    )
    .unwrap()
    .map(|r| r.get(0))
}

/// Wait until `name`'s health row is `want`.
fn wait_health(c: &mut Client, name: &str, want: &str) {
    let mut last = None;
    let found = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        wait_for(&format!("{name}: {want}"), DEADLINE, || {
            last = health(c, name);
            (last.as_deref() == Some(want)).then_some(())
        })
    }));
    assert!(found.is_ok(), "{name}: wanted {want:?}, last seen {last:?}");
}

#[test]
fn health_shows_successes_failures_and_silence() {
    let (c, mut s) = Cluster::with_app_db("health", "");
    s.batch_execute(
        "CREATE PROCEDURE looper() LANGUAGE plpgsql AS $$ BEGIN LOOP PERFORM pg_sleep(0.2); COMMIT; END LOOP; END $$;
         SELECT jobs.schedule('fine', '1 second', 'SELECT 1');
         SELECT jobs.schedule('broken', '1 second', 'SELECT 1/0');
         SELECT jobs.daemon('steady', 'CALL looper()');
         SELECT jobs.daemon('flapping', 'SELECT 1/0', restart_delay => '1 min', max_restart_delay => '1 min');",
    )
    .unwrap();
    s.batch_execute("SET pg_jobs.missed_after = 2").unwrap();
    wait_health(&mut s, "fine", "job t 0 f");
    // Failures counted; running on time is not missing.
    wait_for("broken to fail twice", DEADLINE, || {
        let n: Option<i64> = one(
            &mut s,
            "SELECT consecutive_failures FROM jobs.health WHERE name = 'broken'",
        );
        (n >= Some(2)).then_some(())
    });
    wait_health(&mut s, "steady", "daemon t - f");
    // A daemon waiting a minute to restart is down: missed once it has
    // been down for pg_jobs.missed_after.
    wait_health(&mut s, "flapping", "daemon f - t");

    // Another role sees none of it.
    s.batch_execute("CREATE ROLE other LOGIN").unwrap();
    let mut o = c.connect_as("app", "other");
    let seen: i64 = one(&mut o, "SELECT count(*) FROM jobs.health");
    assert_eq!(seen, 0, "rows another role sees");

    // Silence: with the schedulers stopped, the every-second job misses
    // its runs, and says since when.
    s.batch_execute("ALTER SYSTEM SET pg_jobs.enabled = off").unwrap();
    s.batch_execute("SELECT pg_reload_conf()").unwrap();
    wait_health(&mut s, "fine", "job t 0 t");
    let since_ok: bool = one(
        &mut s,
        "SELECT missed_since < now() - interval '2 seconds' FROM jobs.health WHERE name = 'fine'",
    );
    assert!(since_ok, "missed_since is the first due instant not started");
    // Back on: it runs again and is no longer missed.
    s.batch_execute("ALTER SYSTEM SET pg_jobs.enabled = on").unwrap();
    s.batch_execute("SELECT pg_reload_conf()").unwrap();
    wait_health(&mut s, "fine", "job t 0 f");
}
