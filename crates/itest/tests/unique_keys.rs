//! Unique keys (`jobs.submit(unique_key, on_conflict)`) and `jobs.retry`
//! (issue 16): at most one queued run per owner and key, kept by the
//! database under concurrency and rollbacks; `skip` returns the queued
//! run, `replace` gives it the new command and start time (debounce); a
//! finished run runs again with its settings.

use pg_jobs_itest::{one, wait_for, wait_run, Cluster};
use postgres::{Client, NoTls};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The SQLSTATE of the error `sql` raises (panics if it succeeds).
fn sqlstate_of(c: &mut Client, sql: &str) -> String {
    let e = c.batch_execute(sql).expect_err(sql);
    e.code().map(|c| c.code().to_owned()).unwrap_or_default()
}

fn queued_with_key(c: &mut Client, key: &str) -> i64 {
    c.query_one(
        "SELECT count(*) FROM jobs.run WHERE unique_key = $1 AND status = 'queued'",
        &[&key],
    )
    .unwrap()
    .get(0)
}

#[test]
fn skip_returns_the_queued_run_and_replace_debounces_it() {
    let (_c, mut s) = Cluster::with_app_db("unique-skip-replace", "");
    s.batch_execute("CREATE TABLE mail (body text)").unwrap();
    // Queued for an hour: the key stays taken.
    let later = "now() + interval '1 hour'";
    let first: i64 = one(
        &mut s,
        &format!("SELECT jobs.submit($$INSERT INTO mail VALUES ('a')$$, start_at => {later}, unique_key => 'digest:42')"),
    );
    let again: i64 = one(
        &mut s,
        &format!("SELECT jobs.submit($$INSERT INTO mail VALUES ('b')$$, start_at => {later}, unique_key => 'digest:42', on_conflict => 'skip')"),
    );
    assert_eq!(again, first, "skip queued a second run");
    let command: String = one(
        &mut s,
        &format!("SELECT command FROM jobs.run WHERE id = {first}"),
    );
    assert_eq!(
        command, "INSERT INTO mail VALUES ('a')",
        "skip changed the queued run"
    );
    // Another key is another run.
    let other: i64 = one(
        &mut s,
        &format!("SELECT jobs.submit('SELECT 1', start_at => {later}, unique_key => 'digest:43')"),
    );
    assert_ne!(other, first);

    // replace: the same run takes the new command and start time (now).
    let replaced: i64 = one(
        &mut s,
        "SELECT jobs.submit($$INSERT INTO mail VALUES ('c')$$, unique_key => 'digest:42', on_conflict => 'replace')",
    );
    assert_eq!(replaced, first);
    let (status, _, msg) = wait_run(&mut s, first);
    assert_eq!(status, "succeeded", "{msg:?}");
    let bodies: Vec<String> = s
        .query("SELECT body FROM mail", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(bodies, ["c"]);

    // Once it left the queue, the key is free: a new run.
    let next: i64 = one(
        &mut s,
        &format!("SELECT jobs.submit('SELECT 2', start_at => {later}, unique_key => 'digest:42')"),
    );
    assert_ne!(next, first);
    assert_eq!(queued_with_key(&mut s, "digest:42"), 1);
}

#[test]
fn keys_are_per_owner_and_a_rolled_back_submit_frees_the_key() {
    let (c, mut s) = Cluster::with_app_db("unique-owner", "");
    s.batch_execute("CREATE ROLE alice LOGIN; CREATE ROLE bob LOGIN")
        .unwrap();
    let mut alice = c.connect_as("app", "alice");
    let mut bob = c.connect_as("app", "bob");
    let later = "now() + interval '1 hour'";
    let a: i64 = one(
        &mut alice,
        &format!("SELECT jobs.submit('SELECT 1', start_at => {later}, unique_key => 'k')"),
    );
    // bob's key 'k' is his own: a run of his, not alice's id.
    let b: i64 = one(
        &mut bob,
        &format!("SELECT jobs.submit('SELECT 1', start_at => {later}, unique_key => 'k')"),
    );
    assert_ne!(a, b);
    let bobs: i64 = one(&mut bob, &format!("SELECT count(*) FROM jobs.run WHERE id = {b}"));
    assert_eq!(bobs, 1);

    // A submit rolled back leaves no run and no taken key.
    let mut tx = alice.transaction().unwrap();
    let gone: i64 = tx
        .query_one(
            &format!("SELECT jobs.submit('SELECT 1', start_at => {later}, unique_key => 'fresh')"),
            &[],
        )
        .unwrap()
        .get(0);
    tx.rollback().unwrap();
    let kept: i64 = one(
        &mut alice,
        &format!("SELECT jobs.submit('SELECT 1', start_at => {later}, unique_key => 'fresh')"),
    );
    assert_ne!(kept, gone);
    assert_eq!(queued_with_key(&mut s, "fresh"), 1);
}

/// 8 sessions submit the same key 1,000 times each, concurrently, every
/// tenth in a transaction that rolls back, while the runs execute: no
/// submit fails, a watcher never sees two queued runs with the key, and
/// every run the committed submits were told of exists.
#[test]
fn concurrent_submitters_never_queue_two_runs_with_one_key() {
    let (c, mut s) = Cluster::with_app_db("unique-concurrent", "");
    s.batch_execute("CREATE TABLE done (run bigint)").unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let most_seen = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (stop, most_seen) = (stop.clone(), most_seen.clone());
        let mut w = Client::connect(&c.connstr("app"), NoTls).unwrap();
        std::thread::spawn(move || {
            let mut looks = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let n = queued_with_key(&mut w, "storm") as usize;
                most_seen.fetch_max(n, Ordering::Relaxed);
                looks += 1;
            }
            looks
        })
    };
    let submitters: Vec<_> = (0..8)
        .map(|t| {
            let mut cl = Client::connect(&c.connstr("app"), NoTls).unwrap();
            std::thread::spawn(move || {
                let mut told = Vec::new();
                for i in 0..1000 {
                    let mut tx = cl.transaction().unwrap();
                    let id: i64 = tx
                        .query_one(
                            "SELECT jobs.submit('INSERT INTO done VALUES (1)', unique_key => 'storm')",
                            &[],
                        )
                        .unwrap_or_else(|e| panic!("submitter {t}, submit {i}: {e}"))
                        .get(0);
                    if i % 10 == 9 {
                        tx.rollback().unwrap();
                    } else {
                        tx.commit().unwrap();
                        told.push(id);
                    }
                }
                told
            })
        })
        .collect();
    let mut told: Vec<i64> = submitters.into_iter().flat_map(|h| h.join().unwrap()).collect();
    stop.store(true, Ordering::Relaxed);
    let looks = watcher.join().unwrap();
    told.sort_unstable();
    told.dedup();
    let most = most_seen.load(Ordering::Relaxed);
    println!(
        "8 × 1,000 submits of one key: {} distinct runs, the watcher looked {looks} times, at most {most} queued at once",
        told.len()
    );
    assert!(most <= 1, "{most} queued runs with one key at once");
    assert!(looks > 10, "the watcher looked only {looks} times");
    let existing: i64 = s
        .query_one("SELECT count(*) FROM jobs.run WHERE id = ANY($1)", &[&told])
        .unwrap()
        .get(0);
    assert_eq!(
        existing as usize,
        told.len(),
        "a submit was told of a run that does not exist"
    );
    // Every run ends; at most one was queued at a time, so all of them ran.
    wait_for(
        "every run of the storm to finish",
        Duration::from_secs(120),
        || {
            let open: i64 = one(
            &mut s,
            "SELECT count(*) FROM jobs.run WHERE unique_key = 'storm' AND status IN ('queued', 'starting', 'running')",
        );
            (open == 0).then_some(())
        },
    );
    let rows: i64 = one(&mut s, "SELECT count(*) FROM done");
    let runs: i64 = one(
        &mut s,
        "SELECT count(*) FROM jobs.run WHERE unique_key = 'storm' AND status = 'succeeded'",
    );
    assert_eq!(rows, runs);
    assert_eq!(runs as usize, told.len());
}

#[test]
fn bad_unique_key_arguments_are_refused_and_write_nothing() {
    let (_c, mut s) = Cluster::with_app_db("unique-bad-input", "");
    for (sql, code) in [
        (
            "SELECT jobs.submit('SELECT 1', unique_key => 'k', on_conflict => 'merge')",
            "22023",
        ),
        (
            "SELECT jobs.submit('SELECT 1', unique_key => 'k', on_conflict => NULL)",
            "22004",
        ),
        ("SELECT jobs.submit('SELECT 1', unique_key => '')", "22023"),
        (
            "SELECT jobs.submit('SELECT 1', unique_key => repeat('x', 513))",
            "22023",
        ),
    ] {
        assert_eq!(sqlstate_of(&mut s, sql), code, "{sql}");
    }
    let runs: i64 = one(&mut s, "SELECT count(*) FROM jobs.run");
    assert_eq!(runs, 0);
    // on_conflict without a key is ignored, as the key is what it is about.
    let id: i64 = one(&mut s, "SELECT jobs.submit('SELECT 1', on_conflict => 'replace')");
    assert!(id > 0);
}

#[test]
fn retry_runs_a_finished_run_again_with_its_settings() {
    let (c, mut s) = Cluster::with_app_db("retry", "");
    s.batch_execute(
        "CREATE TABLE flag (ok boolean); INSERT INTO flag VALUES (false);
         CREATE FUNCTION check_flag() RETURNS void LANGUAGE plpgsql AS
           $$ BEGIN IF NOT (SELECT ok FROM flag) THEN RAISE EXCEPTION 'not yet'; END IF; END $$;
         CREATE ROLE alice LOGIN; CREATE ROLE mallory LOGIN;
         GRANT SELECT ON flag TO alice",
    )
    .unwrap();
    let mut alice = c.connect_as("app", "alice");
    let failed: i64 = one(
        &mut alice,
        "SELECT jobs.submit('SELECT check_flag()', timeout => '1 minute', priority => 3)",
    );
    let (status, _, msg) = wait_run(&mut alice, failed);
    assert_eq!((status.as_str(), msg.as_deref()), ("failed", Some("not yet")));

    // Not finished: refused (55000); someone else's: does not exist (42704).
    let queued: i64 = one(
        &mut alice,
        "SELECT jobs.submit('SELECT 1', start_at => now() + interval '1 hour')",
    );
    assert_eq!(
        sqlstate_of(&mut alice, &format!("SELECT jobs.retry({queued})")),
        "55000"
    );
    let mut mallory = c.connect_as("app", "mallory");
    assert_eq!(
        sqlstate_of(&mut mallory, &format!("SELECT jobs.retry({failed})")),
        "42704"
    );
    assert_eq!(sqlstate_of(&mut alice, "SELECT jobs.retry(NULL)"), "22004");

    s.batch_execute("UPDATE flag SET ok = true").unwrap();
    let again: i64 = one(&mut alice, &format!("SELECT jobs.retry({failed})"));
    assert_ne!(again, failed);
    let (status, _, msg) = wait_run(&mut alice, again);
    assert_eq!(status, "succeeded", "{msg:?}");
    let same: bool = one(
        &mut s,
        &format!(
            "SELECT (a.owner, a.command, a.database, a.timeout, a.priority, a.max_attempts)
                  = (b.owner, b.command, b.database, b.timeout, b.priority, b.max_attempts)
                AND b.attempt = 1
               FROM jobs.run a, jobs.run b WHERE a.id = {failed} AND b.id = {again}"
        ),
    );
    assert!(same, "the retry did not keep the run's settings");
}
