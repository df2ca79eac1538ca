//! Chaos: under a steady load of submitted single-transaction jobs, a
//! 1-second schedule and a daemon, fault after fault — terminate random
//! executors, the scheduler, the daemon, the launcher; kill -9 a pg_jobs
//! worker (the whole cluster restarts); stop the server `immediate` and start
//! it again. Then check that no run was lost, none is stuck, and every
//! single-transaction run is either succeeded-with-its-row or
//! not-succeeded-without-it, and that a named queue's `max_concurrency`
//! held throughout (its runs record when they ran).
//!
//! `CHAOS_FAULTS` sets the number of faults (20 in `make test`, 200 in
//! `make chaos`).

use pg_jobs_itest::{one, wait_for, Cluster};
use postgres::{Client, NoTls};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A small deterministic generator: the fault sequence is reproducible from its seed.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

fn pg_jobs_pids(c: &mut Client, backend_type: &str) -> Vec<i32> {
    c.query(
        "SELECT pid FROM pg_stat_activity WHERE backend_type = $1",
        &[&backend_type],
    )
    .map(|rows| rows.iter().map(|r| r.get(0)).collect())
    .unwrap_or_default()
}

/// Submit and wait for a probe run until one succeeds: the time the system
/// took to work again after a fault.
fn recover(c: &Cluster) -> Duration {
    let t0 = Instant::now();
    wait_for("pg_jobs working again", Duration::from_secs(120), || {
        let mut s = Client::connect(&c.connstr("app"), NoTls).ok()?;
        let id: i64 = s.query_one("SELECT jobs.submit('SELECT 1')", &[]).ok()?.get(0);
        let st: String = s
            .query_one("SELECT status FROM jobs.wait($1, '5 seconds')", &[&id])
            .ok()?
            .get(0);
        (st == "succeeded").then_some(())
    });
    t0.elapsed()
}

#[test]
fn chaos_loses_nothing_leaves_nothing_stuck_and_never_runs_twice() {
    let faults: usize = std::env::var("CHAOS_FAULTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261125);
    let (mut c, mut s) = Cluster::with_app_db(
        "chaos",
        "pg_jobs.max_executors = 4\nmax_worker_processes = 32\npg_jobs.log_runs = off",
    );
    s.batch_execute(
        "CREATE TABLE ledger (tag int8 NOT NULL, at timestamptz DEFAULT clock_timestamp());
         CREATE TABLE beat (at timestamptz DEFAULT clock_timestamp(), who text);
         CREATE TABLE dledger (diamond int8 NOT NULL, node text NOT NULL, at timestamptz DEFAULT clock_timestamp());
         CREATE PROCEDURE looper() LANGUAGE plpgsql AS $$
         BEGIN LOOP INSERT INTO beat (who) VALUES ('daemon'); COMMIT; PERFORM pg_sleep(0.1); END LOOP; END $$;
         SELECT jobs.schedule('beat', '1 second', $$INSERT INTO beat (who) VALUES ('job')$$);
         SELECT jobs.daemon('looper', 'CALL looper()', restart_delay => '1 s', max_restart_delay => '2 s');
         CREATE TABLE qledger (tag int8, started timestamptz, ended timestamptz);
         CREATE FUNCTION qrec(t int8) RETURNS void LANGUAGE plpgsql AS $$
           DECLARE t0 timestamptz := clock_timestamp();
           BEGIN PERFORM pg_sleep(0.02); INSERT INTO qledger VALUES (t, t0, clock_timestamp()); END $$;
         SELECT jobs.create_queue('limited', max_concurrency => 2);",
    )
    .unwrap();
    record_status_changes(&mut s);
    drop(s);

    // The load: batches of single-transaction jobs, each inserting its tag;
    // and now and then a diamond (a; b and c after a; d after b and c),
    // submitted in one transaction, each node inserting its name once.
    let stop = Arc::new(AtomicBool::new(false));
    let committed: Arc<Mutex<HashSet<i64>>> = Arc::new(Mutex::new(HashSet::new()));
    let diamonds: Arc<Mutex<Vec<i64>>> = Arc::new(Mutex::new(Vec::new()));
    let load = {
        let (stop, committed, diamonds, cs) = (
            stop.clone(),
            committed.clone(),
            diamonds.clone(),
            c.connstr("app"),
        );
        std::thread::spawn(move || {
            let mut next_tag: i64 = 1;
            let mut next_diamond: i64 = 1;
            let mut conn: Option<Client> = None;
            while !stop.load(Ordering::Relaxed) {
                if conn.as_ref().is_none_or(|c| c.is_closed()) {
                    conn = Client::connect(&cs, NoTls).ok();
                    if conn.is_none() {
                        std::thread::sleep(Duration::from_millis(50)); // the server is restarting
                        continue;
                    }
                }
                let tags: Vec<i64> = (next_tag..next_tag + 5).collect();
                next_tag += 5;
                let ok = conn
                    .as_mut()
                    .unwrap()
                    .execute(
                        "SELECT jobs.submit(format('INSERT INTO ledger (tag) VALUES (%s)', t), max_attempts => 3)
                           FROM unnest($1::int8[]) t",
                        &[&tags],
                    )
                    .is_ok();
                if ok {
                    committed.lock().unwrap().extend(tags); // the commit was acknowledged
                } else {
                    conn = None; // outcome unknown: these tags are not counted as submitted
                    continue;
                }
                // Now and then runs of a queue limited to 2 at once.
                if next_tag % 10 == 1 {
                    let q = "SELECT jobs.submit('SELECT qrec($1::int8)', args => ARRAY[t::text],
                                                queue => 'limited', max_attempts => 3)
                               FROM generate_series($1::int8, $1::int8 + 3) t";
                    if conn.as_mut().unwrap().execute(q, &[&next_tag]).is_err() {
                        conn = None;
                        continue;
                    }
                }
                if next_tag % 20 == 1 {
                    let n = next_diamond;
                    next_diamond += 1;
                    if submit_diamond(conn.as_mut().unwrap(), n).is_ok() {
                        diamonds.lock().unwrap().push(n);
                    } else {
                        conn = None;
                    }
                }
                std::thread::sleep(Duration::from_millis(20)); // pacing of the load
            }
        })
    };

    let mut rng = Lcg(seed);
    let mut recoveries: Vec<(String, Duration)> = Vec::new();
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for _ in 0..faults {
        std::thread::sleep(Duration::from_millis(200 + rng.next(600))); // load between faults
        let mut a = c.connect("app");
        let kind = match rng.next(10) {
            0..=2 => "terminate executor",
            3 => "terminate scheduler",
            4 => "terminate daemon",
            5 => "terminate launcher",
            6..=7 => "kill -9 worker",
            _ => "immediate stop",
        };
        let victim = |a: &mut Client, rng: &mut Lcg, t: &str| {
            let p = pg_jobs_pids(a, t);
            (!p.is_empty()).then(|| p[rng.next(p.len() as u64) as usize])
        };
        match kind {
            "immediate stop" => {
                drop(a);
                c.stop_server("immediate");
                c.start_server();
            }
            "kill -9 worker" => {
                let types = [
                    "pg_jobs executor",
                    "pg_jobs scheduler",
                    "pg_jobs daemon",
                    "pg_jobs launcher",
                ];
                let t = types[rng.next(types.len() as u64) as usize];
                if let Some(pid) =
                    victim(&mut a, &mut rng, t).or_else(|| victim(&mut a, &mut rng, "pg_jobs launcher"))
                {
                    // SAFETY: kill(2) of a server process of our own test cluster.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
            _ => {
                let t = match kind {
                    "terminate executor" => "pg_jobs executor",
                    "terminate scheduler" => "pg_jobs scheduler",
                    "terminate daemon" => "pg_jobs daemon",
                    _ => "pg_jobs launcher",
                };
                if let Some(pid) = victim(&mut a, &mut rng, t) {
                    let _ = a.execute("SELECT pg_terminate_backend($1)", &[&pid]);
                }
            }
        }
        *counts.entry(kind).or_default() += 1;
        recoveries.push((kind.to_owned(), recover(&c)));
    }
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();

    // Let everything in flight finish (retries wait out their backoff).
    let mut s = c.connect("app");
    let (_, drained) = wait_for("every run terminal", Duration::from_secs(300), || {
        let n: i64 = one(
            &mut s,
            "SELECT count(*) FROM jobs.run WHERE status IN ('queued', 'starting', 'running', 'waiting')",
        );
        (n == 0).then_some(())
    });
    let committed = committed.lock().unwrap().clone();
    // Per tag: was any attempt recorded succeeded, how many attempts, how many ledger rows.
    let rows = s
        .query(
            "WITH r AS (
               SELECT substring(command FROM 'VALUES \\((\\d+)\\)')::int8 AS tag, bool_or(status = 'succeeded') AS ok,
                      count(*) AS attempts
                 FROM jobs.run WHERE command LIKE 'INSERT INTO ledger%' GROUP BY 1),
             l AS (SELECT tag, count(*) AS n FROM ledger GROUP BY tag)
             SELECT coalesce(r.tag, l.tag), coalesce(r.ok, false), coalesce(r.attempts, 0), coalesce(l.n, 0)
               FROM r FULL JOIN l ON l.tag = r.tag",
            &[],
        )
        .unwrap();
    let mut seen = HashSet::new();
    let mut violations = Vec::new();
    for r in &rows {
        let (tag, ok, attempts, n): (i64, bool, i64, i64) = (r.get(0), r.get(1), r.get(2), r.get(3));
        seen.insert(tag);
        if (ok && n != 1) || (!ok && n != 0) {
            violations.push(format!(
                "tag {tag}: succeeded={ok}, {attempts} attempts, {n} ledger rows"
            ));
        }
    }
    let lost: Vec<&i64> = committed.iter().filter(|t| !seen.contains(t)).collect();
    let diamonds = diamonds.lock().unwrap().clone();
    let diamond_violations = check_diamonds(&mut s, &diamonds);
    // The queue's runs that committed, each against those that ran then.
    let (queue_runs, queue_overlap): (i64, i64) = {
        let r = s
            .query_one(
                "SELECT (SELECT count(*) FROM qledger),
                        COALESCE((SELECT max((SELECT count(*) FROM qledger o
                                               WHERE o.started <= q.started AND o.ended > q.started))
                                    FROM qledger q), 0)",
                &[],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    let states: Vec<(String, i64)> = s
        .query("SELECT status, count(*) FROM jobs.run GROUP BY 1 ORDER BY 1", &[])
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let stuck: i64 = one(
        &mut s,
        "SELECT count(*) FROM jobs.run WHERE status IN ('queued', 'starting', 'running', 'waiting')",
    );
    let max_recovery = recoveries.iter().map(|r| r.1).max().unwrap_or_default();
    let worst = recoveries
        .iter()
        .max_by_key(|r| r.1)
        .map(|r| r.0.clone())
        .unwrap_or_default();
    let daemon_state: String = one(
        &mut s,
        "SELECT state FROM jobs.daemon_status WHERE name = 'looper'",
    );

    println!("RELIABILITY| chaos faults (seed {seed}) | {faults}: {counts:?}");
    println!(
        "RELIABILITY| submitted runs (commit acknowledged) | {}",
        committed.len()
    );
    println!("RELIABILITY| runs by final state (all attempts, probes included) | {states:?}");
    println!("RELIABILITY| a queue with max_concurrency 2: runs that committed, most at once | {queue_runs}, {queue_overlap}");
    let failures: Vec<(String, i64)> = s
        .query(
            "SELECT coalesce(sqlstate, '-') || ' ' || left(coalesce(message, ''), 80), count(*)
               FROM jobs.run WHERE status IN ('failed', 'timed_out', 'cancelled') GROUP BY 1 ORDER BY 2 DESC",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    println!("RELIABILITY| why runs failed (SQLSTATE message: count) | {failures:?}");
    println!("RELIABILITY| runs stuck non-terminal (drained in {drained:.1?}) | {stuck}");
    println!("RELIABILITY| runs lost (submitted, no row) | {}", lost.len());
    println!(
        "RELIABILITY| exactly-once violations (single-transaction jobs) | {}",
        violations.len()
    );
    println!(
        "RELIABILITY| diamonds (a; b, c after a; d after b, c) submitted | {}",
        diamonds.len()
    );
    println!(
        "RELIABILITY| diamond violations (a node lost, run twice, or before its parents) | {}",
        diamond_violations.len()
    );
    println!("RELIABILITY| max time to recover after a fault | {max_recovery:.2?} (after {worst})");
    let (changes, illegal) = illegal_status_changes(&mut s);
    println!(
        "RELIABILITY| status changes outside the run model (pg_jobs_core::run) | {} of {changes}",
        illegal.len()
    );
    assert!(illegal.is_empty(), "illegal run status changes: {illegal:?}");
    // The executor slot's phase model refuses (and logs) events it does
    // not allow; under chaos there must be none.
    let phase_refusals: Vec<String> = c
        .log()
        .lines()
        .filter(|l| l.contains("; left as it was"))
        .map(str::to_owned)
        .collect();
    println!(
        "RELIABILITY| executor slot events outside the phase model (pg_jobs_core::executor_phase) | {}",
        phase_refusals.len()
    );
    assert!(phase_refusals.is_empty(), "{}", phase_refusals.join("\n"));
    assert_eq!(stuck, 0);
    assert!(lost.is_empty(), "lost runs: {lost:?}");
    assert!(violations.is_empty(), "{}", violations.join("\n"));
    assert!(diamond_violations.is_empty(), "{}", diamond_violations.join("\n"));
    assert!(!diamonds.is_empty(), "no diamond was submitted");
    assert!(
        committed.len() > 50,
        "the load did not run: {} submits",
        committed.len()
    );
    assert_eq!(daemon_state, "running", "the daemon came back");
    assert!(queue_runs > 0, "no run of the limited queue committed");
    assert!(
        queue_overlap <= 2,
        "{queue_overlap} runs of a queue with max_concurrency 2 ran at once"
    );
}

/// Submit diamond `n` in one transaction: a; b and c after a; d after b
/// and c; each node a single-transaction insert of its name, with retries.
fn submit_diamond(c: &mut Client, n: i64) -> Result<(), postgres::Error> {
    let mut tx = c.transaction()?;
    let mut submit = |node: &str, after: &[i64]| -> Result<i64, postgres::Error> {
        let cmd = format!("INSERT INTO dledger (diamond, node) VALUES ({n}, '{node}')");
        let deps: Option<Vec<i64>> = (!after.is_empty()).then(|| after.to_vec());
        tx.query_one(
            "SELECT jobs.submit($1, max_attempts => 3, depends_on => $2)",
            &[&cmd, &deps],
        )
        .map(|r| r.get(0))
    };
    let a = submit("a", &[])?;
    let b = submit("b", &[a])?;
    let c2 = submit("c", &[a])?;
    submit("d", &[b, c2])?;
    tx.commit()
}

/// What went wrong with the committed diamonds: a node whose last attempt
/// succeeded has exactly one row, one that did not has none; a node with a
/// row came after its parents' rows; every node's runs finished (none left
/// waiting).
fn check_diamonds(s: &mut Client, diamonds: &[i64]) -> Vec<String> {
    let mut out = Vec::new();
    for &n in diamonds {
        let rows = s
            .query(
                "SELECT node, count(*), max(at) FROM dledger WHERE diamond = $1 GROUP BY node",
                &[&n],
            )
            .unwrap();
        let mut at = HashMap::new();
        for r in &rows {
            let (node, count): (String, i64) = (r.get(0), r.get(1));
            if count != 1 {
                out.push(format!("diamond {n}: node {node} ran {count} times"));
            }
            at.insert(node, r.get::<_, std::time::SystemTime>(2));
        }
        // The node is the letter before the command's closing "')".
        let runs = s
            .query(
                "SELECT substr(command, length(command) - 2, 1), bool_or(status = 'succeeded'),
                        bool_and(status IN ('succeeded', 'failed', 'timed_out', 'crashed', 'cancelled', 'skipped'))
                   FROM jobs.run WHERE command LIKE $1 GROUP BY 1",
                &[&format!("INSERT INTO dledger (diamond, node) VALUES ({n}, %")],
            )
            .unwrap();
        if runs.len() != 4 {
            out.push(format!("diamond {n}: {} of 4 nodes have runs", runs.len()));
        }
        for r in &runs {
            let (node, ok, ended): (String, bool, bool) = (r.get(0), r.get(1), r.get(2));
            if !ended {
                out.push(format!("diamond {n}: node {node} has a run not finished"));
            }
            if ok != at.contains_key(&node) {
                out.push(format!(
                    "diamond {n}: node {node} succeeded={ok}, rows={}",
                    at.contains_key(&node)
                ));
            }
        }
        for (child, parents) in [("b", &["a"][..]), ("c", &["a"][..]), ("d", &["b", "c"][..])] {
            if let Some(t) = at.get(child) {
                for p in parents {
                    match at.get(*p) {
                        Some(pt) if pt <= t => {}
                        Some(_) => out.push(format!("diamond {n}: {child} ran before its parent {p}")),
                        None => out.push(format!("diamond {n}: {child} ran though its parent {p} did not")),
                    }
                }
            }
        }
    }
    out
}

/// Test-only: a trigger that records every status a run is created with
/// and every change of it, as the writing transaction commits them (a
/// rolled-back write leaves no record, as it leaves no status).
fn record_status_changes(s: &mut Client) {
    s.batch_execute(
        "CREATE TABLE status_change (run_id int8, old_status text, new_status text);
         CREATE FUNCTION record_status_change() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF TG_OP = 'INSERT' THEN
             INSERT INTO public.status_change VALUES (NEW.id, NULL, NEW.status);
           ELSIF NEW.status IS DISTINCT FROM OLD.status THEN
             INSERT INTO public.status_change VALUES (NEW.id, OLD.status, NEW.status);
           END IF;
           RETURN NULL;
         END $$;
         CREATE TRIGGER record_status_change AFTER INSERT OR UPDATE OF status ON jobs.run
           FOR EACH ROW EXECUTE FUNCTION record_status_change();",
    )
    .unwrap();
}

/// Every recorded status change checked against the run model in core:
/// how many there were, and the ones the model forbids (with counts).
fn illegal_status_changes(s: &mut Client) -> (i64, Vec<(String, i64)>) {
    use pg_jobs_core::run::RunStatus;
    let rows = s
        .query(
            "SELECT coalesce(old_status, ''), new_status, count(*) FROM status_change GROUP BY 1, 2",
            &[],
        )
        .unwrap();
    let mut total = 0;
    let mut illegal = Vec::new();
    for r in &rows {
        let (old, new, n): (String, String, i64) = (r.get(0), r.get(1), r.get(2));
        total += n;
        let to: Option<RunStatus> = new.parse().ok();
        let legal = match (old.as_str(), to) {
            (_, None) => false,
            ("", Some(to)) => to.can_be_created(),
            (old, Some(to)) => old.parse::<RunStatus>().is_ok_and(|from| from.can_become(to)),
        };
        if !legal {
            illegal.push((
                format!("{} -> {new}", if old.is_empty() { "(created)" } else { &old }),
                n,
            ));
        }
    }
    (total, illegal)
}
