// The other side of `make bench` (crates/bench/src/bin/bench_compare.rs):
// graphile-worker or pg-boss, as its worker and its enqueuing client in
// this one Node.js process, running the workload pg_jobs runs.
//
//   node queue.mjs SYSTEM throughput N BATCH SETTINGS_JSON
//   node queue.mjs SYSTEM latency N SETTINGS_JSON
//
// SYSTEM is graphile-worker or pg-boss; DATABASE_URL names the database,
// PM_PID the postmaster (to read the server's CPU time from /proc),
// MAX_SECONDS (default 60) how long a throughput run may take: a slower
// one stops there and reports the jobs done by then (pg-boss's defaults
// fetch one job per 2 s poll). Prints one JSON line: the figures, measured
// from the first enqueue.
//
// A job inserts one row into `sink` (throughput) or its start time into
// `lat` (latency), with its own statement, as a handler would.

import fs from "node:fs";
import pg from "pg";
import { run, makeWorkerUtils, Logger } from "graphile-worker";
import { PgBoss } from "pg-boss";

const [system, mode, ...rest] = process.argv.slice(2);
const url = process.env.DATABASE_URL;
const pmPid = Number(process.env.PM_PID);
const maxSeconds = Number(process.env.MAX_SECONDS ?? 60);
const CLK_TCK = 100; // Linux's USER_HZ on x86-64

/** CPU seconds of the postmaster and every server process (living, and the
 * ones that ended since: their time is in the postmaster's children's). */
function serverCpu() {
  const fields = (pid) => {
    try {
      const s = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
      return s.slice(s.lastIndexOf(")") + 2).split(" ");
    } catch {
      return null; // ended meanwhile
    }
  };
  const pm = fields(pmPid);
  // After ")": state is field 3 overall; utime 14, stime 15, cutime 16, cstime 17.
  let ticks = Number(pm[11]) + Number(pm[12]) + Number(pm[13]) + Number(pm[14]);
  for (const d of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const f = fields(d);
    if (f && Number(f[1]) === pmPid) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / CLK_TCK;
}

const ownCpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const nowMs = () => performance.timeOrigin + performance.now();

async function walLsn(pool) {
  const r = await pool.query("SELECT pg_current_wal_lsn() - '0/0' AS b");
  return Number(r.rows[0].b);
}

/** WAL flushes to disk so far (pg_stat_wal; none are counted with fsync off). */
async function walSyncs(pool) {
  const r = await pool.query("SELECT wal_sync FROM pg_stat_wal");
  return Number(r.rows[0].wal_sync);
}

/** A promise and its resolver. */
function signal() {
  let resolve;
  const p = new Promise((r) => (resolve = r));
  return { p, resolve };
}

async function main() {
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  let done = 0;
  let target = 0;
  let finished = signal();
  let started = null; // latency: the current job's start
  const work = async (n) => {
    if (mode === "throughput") {
      await pool.query("INSERT INTO sink (n) VALUES ($1)", [n]);
      done += 1;
      if (done === target) finished.resolve();
    } else {
      await pool.query("INSERT INTO lat (sys, at) VALUES ($1, clock_timestamp())", [system]);
      started?.resolve();
    }
  };

  let stop;
  let enqueueMany;
  let enqueueOne;
  const settings = JSON.parse(mode === "throughput" ? rest[2] : rest[1]);
  if (system === "graphile-worker") {
    const utils = await makeWorkerUtils({ connectionString: url });
    await utils.migrate();
    // A run of its own: what an earlier, stopped run left is not this one's.
    await utils.withPgClient((c) => c.query("DELETE FROM graphile_worker._private_jobs"));
    const runner = await run({
      connectionString: url,
      noHandleSignals: true,
      logger: quietLogger(),
      taskList: { bench: async (payload) => work(payload.n) },
      preset: { worker: settings },
    });
    enqueueMany = (from, count) =>
      utils.addJobs(Array.from({ length: count }, (_, i) => ({ identifier: "bench", payload: { n: from + i } })));
    enqueueOne = () => utils.addJob("bench", { n: 0 });
    stop = async () => {
      await runner.stop();
      await utils.release();
    };
  } else if (system === "pg-boss") {
    const boss = new PgBoss({ connectionString: url, max: settings.max ?? 10, useListenNotify: settings.notify ?? false });
    boss.on("error", (e) => console.error(e));
    await boss.start();
    // A queue of this run's own: its settings (notify) are the queue's.
    await boss.deleteQueue("bench").catch(() => {});
    await boss.createQueue("bench", { notify: settings.notify ?? false });
    const { notify, max, ...workOptions } = settings;
    await boss.work("bench", workOptions, async (jobs) => {
      for (const job of jobs) await work(job.data.n);
    });
    enqueueMany = (from, count) =>
      boss.insert("bench", Array.from({ length: count }, (_, i) => ({ data: { n: from + i } })));
    enqueueOne = () => boss.send("bench", { n: 0 });
    stop = () => boss.stop({ graceful: true, timeout: 10000 });
  } else {
    throw new Error(`unknown system ${system}`);
  }

  let out;
  if (mode === "throughput") {
    const n = Number(rest[0]);
    const batch = Number(rest[1]);
    target = n;
    const [cpu0, own0, wal0, syncs0] = [serverCpu(), ownCpu(), await walLsn(pool), await walSyncs(pool)];
    const t0 = nowMs();
    for (let i = 0; i < n; i += batch) await enqueueMany(i, Math.min(batch, n - i));
    const enqueued = nowMs() - t0;
    let timer;
    await Promise.race([finished.p, new Promise((r) => (timer = setTimeout(r, maxSeconds * 1000)))]);
    clearTimeout(timer);
    const took = (nowMs() - t0) / 1000;
    const jobs = done;
    const [cpu1, own1, wal1, syncs1] = [serverCpu(), ownCpu(), await walLsn(pool), await walSyncs(pool)];
    out = {
      jobs,
      stopped: jobs < n,
      seconds: took,
      enqueue_seconds: enqueued / 1000,
      server_cpu: cpu1 - cpu0,
      client_cpu: own1 - own0,
      wal_bytes: wal1 - wal0,
      wal_syncs: syncs1 - syncs0,
    };
  } else {
    const n = Number(rest[0]);
    const lags = [];
    // One at a time on an idle system: enqueue, wait for the job's start.
    for (let i = 0; i < n + 10; i++) {
      started = signal();
      const t0 = nowMs();
      await enqueueOne();
      await started.p;
      const r = await pool.query(
        "SELECT extract(epoch FROM at)::float8 * 1000 AS at FROM lat WHERE sys = $1 ORDER BY at DESC LIMIT 1",
        [system],
      );
      if (i >= 10) lags.push(r.rows[0].at - t0); // the first ten warm up
    }
    out = { lags_ms: lags };
  }
  await stop();
  await pool.end();
  console.log(JSON.stringify(out));
}

function quietLogger() {
  // graphile-worker logs every job at info; the benchmark prints its own.
  return new Logger(() => (level, message) => {
    if (level === "error" || level === "warning") console.error(message);
  });
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(2);
  },
);
