/**
 * Faults on PostgreSQL and Redis under mixed load (clicks, tracking pixel opens, events), against real server
 * processes: SIGKILL mid-load (twice), then the database's connections terminated from the server side
 * (pg_terminate_backend on the test's own database), Redis cut off, and PostgreSQL cut off (TCP proxy), one after the
 * other on one running instance. Every acknowledged write carries a unique id in its Referer; every one must be in the
 * event log exactly once. (test/postgres/faults.test.ts covers redirects alone during a cut, a kill while spooled,
 * and Redis going away with two instances.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { hit, startProcess, stopProcess, waitExit, type ServerProcess } from "../helpers.js";
import { PG_ADMIN_URL, REDIS_URL } from "../pg.js";
import { assertClearRefusals, checkStored, fmt, merge, setupTarget, sleep, startLoad, summary, REF, type LoadReport } from "../fault-load.js";
import { Cleanup, healthz, proxyTo, settled, sql, startInstance, testDatabase, viaPort, waitFor } from "./scale.js";

const PG = new URL(PG_ADMIN_URL);
const REDIS = new URL(REDIS_URL);
const ENV = { CLICKTRAIL_INGEST_RATE_LIMIT: "1000000" };

async function storedReferrers(url: string): Promise<string[]> {
  return (await sql<{ referrer: string }>(url, `SELECT referrer FROM events WHERE referrer LIKE $1`, [`${REF}%`])).map((r) => r.referrer);
}

test("PostgreSQL: SIGKILL under load, twice: every acknowledged click, open and event is stored, exactly once", async (t) => {
  const cleanup = new Cleanup();
  try {
    const db = await testDatabase(cleanup);
    const env = { ...ENV, CLICKTRAIL_DATABASE_URL: db.url, CLICKTRAIL_REDIS_URL: REDIS_URL };
    const first = await startInstance(cleanup, env);
    const target = await setupTarget(first.base, "go.pgkill.test");
    await settled(first.base);
    const reports: LoadReport[] = [];
    let srv: ServerProcess = first;
    for (const round of [1, 2]) {
      const cur = srv;
      const load = startLoad(() => cur.base, target, { perKind: 6, maxRequests: 30_000, tag: `k${round}` });
      await sleep(2500);
      cur.proc.kill("SIGKILL");
      const rep = await load.stop();
      await waitExit(cur.proc);
      reports.push(rep);
      assert.ok(load.total() > 200, `round ${round}: only ${load.total()} acknowledged before the kill`);
      assertClearRefusals(rep, [], []);
      t.diagnostic(`round ${round}: killed at ${fmt(load.total())} acknowledged writes; ${rep.noAnswer} requests cut off by the kill`);
      // the same data dir (its spool, if any, is replayed); a new writer (the killed one's rollups are adopted later)
      srv = await startProcess(first.dir, env);
      const next = srv;
      cleanup.defer(() => stopProcess(next.proc));
    }
    const figures = checkStored(merge(reports), await storedReferrers(db.url));
    t.diagnostic(`after 2 kills: ${summary(figures)}`);
    const after = startLoad(() => srv.base, target, { perKind: 1, maxRequests: 30, tag: "after" });
    assert.equal((await after.stop()).refused.length, 0);
    assert.equal((await stopProcess(srv.proc)).code, 0, srv.output().slice(-2000));
  } finally {
    await cleanup.run();
  }
});

test("PostgreSQL connections terminated, Redis cut, PostgreSQL cut, under load: clear 503s only, recovery without a restart, nothing acknowledged lost", async (t) => {
  const cleanup = new Cleanup();
  try {
    const db = await testDatabase(cleanup);
    const pgProxy = await proxyTo(cleanup, PG, 5432);
    const redisProxy = await proxyTo(cleanup, REDIS, 6379);
    const env = { ...ENV, CLICKTRAIL_DATABASE_URL: viaPort(db.url, pgProxy.port), CLICKTRAIL_REDIS_URL: `redis://127.0.0.1:${redisProxy.port}` };
    const srv = await startInstance(cleanup, env);
    const target = await setupTarget(srv.base, "go.pgfault.test");
    await settled(srv.base);
    // /healthz caches the API host as "not a link domain" (see faults.test.ts): it then answers during the cut too
    assert.equal((await healthz(srv.base)).status, 200);

    const load = startLoad(() => srv.base, target, { perKind: 3, paceMs: 3, maxRequests: 60_000, tag: "pg" });
    const phases: string[] = [];
    const mark = (name: string) => {
      const n = load.report.refused.length;
      const total = load.total();
      return () => phases.push(`${name}: ${fmt(load.total() - total)} acknowledged, ${fmt(load.report.refused.length - n)} refused`);
    };
    /** every write acknowledged for a while: the instance has recovered by itself */
    const recovered = async (what: string) => {
      const start = Date.now();
      for (;;) {
        const last = load.report.refused.at(-1);
        if (!last || last.at < Date.now() - 700) break;
        if (Date.now() - start > 10_000) assert.fail(`${what}: still refusing 10 s later: ${JSON.stringify(last)}`);
        await sleep(100);
      }
      return Date.now() - start;
    };
    try {
      await sleep(700);
      assert.equal(load.report.refused.length, 0, JSON.stringify(load.report.refused.slice(0, 3)));

      // 1. the database terminates every connection of ours, three times
      let done = mark("connections terminated 3 times");
      let terminated = 0;
      for (let i = 0; i < 3; i++) {
        const killed = await sql<{ n: string }>(
          PG_ADMIN_URL,
          `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) AS n FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
          [db.name],
        );
        terminated += Number(killed[0]!.n);
        await sleep(600);
      }
      assert.ok(terminated > 0, "no connection of the instance to terminate");
      const r1 = await recovered("after the terminated connections");
      done();
      phases.push(`  ${terminated} connections terminated; recovered within ${r1} ms`);

      // 2. Redis goes away for 2 s: writes do not depend on it
      done = mark("Redis cut for 2 s");
      redisProxy.cut();
      await sleep(2000);
      const h = await healthz(srv.base);
      assert.equal(h.status, 200, h.body);
      assert.equal(h.json.checks.redis, "down", h.body);
      redisProxy.restore();
      done();
      await waitFor(
        "Redis up again",
        () => healthz(srv.base),
        (x) => x.json?.checks?.redis === "up",
        6000,
        100,
      );
      // the reconnection drops the caches once (messages may have been missed), within a poll; the load fills them
      // again. (A cut within that moment leaves hosts uncached: they answer 503, see the test below.)
      await sleep(1000);

      // 3. PostgreSQL cut off for 3 s: cached links, pixels and events are spooled and acknowledged, the rest is a 503
      done = mark("PostgreSQL cut for 3 s");
      pgProxy.cut();
      await sleep(1500);
      const down = await healthz(srv.base);
      assert.equal(down.status, 503, down.body);
      assert.match(down.json.checks.database, /^down: /, down.body);
      await sleep(1500);
      pgProxy.restore();
      const r3 = await recovered("after the cut");
      done();
      phases.push(`  recovered within ${r3} ms`);
      await waitFor(
        "the spool drained",
        () => healthz(srv.base),
        (x) => x.status === 200 && x.json.spooled_batches === 0,
        10_000,
        100,
      );
      await sleep(500);
    } finally {
      await load.stop();
    }
    for (const p of phases) t.diagnostic(p);
    const rep = load.report;
    t.diagnostic(`refusals: ${[...new Set(rep.refused.map((a) => `${a.kind} ${a.status} ${a.what}`))].join(", ") || "none"}`);
    assertClearRefusals(rep, [503], ["storage-unavailable", "database-unavailable", "unavailable"]);
    assert.equal((await stopProcess(srv.proc)).code, 0, srv.output().slice(-2000));
    const figures = checkStored(rep, await storedReferrers(db.url));
    t.diagnostic(`PostgreSQL faults: ${summary(figures)}`);
  } finally {
    await cleanup.run();
  }
});

test("PostgreSQL away: a link domain not in the cache answers 503, not the API's 404", async () => {
  const cleanup = new Cleanup();
  try {
    const db = await testDatabase(cleanup);
    const pgProxy = await proxyTo(cleanup, PG, 5432);
    const srv = await startInstance(cleanup, { CLICKTRAIL_DATABASE_URL: viaPort(db.url, pgProxy.port) });
    const target = await setupTarget(srv.base, "go.cold.test");
    await settled(srv.base);
    assert.equal((await healthz(srv.base)).status, 200);
    pgProxy.cut();
    // a valid short link whose domain this instance has not looked up yet, and a valid pixel (keys not loaded yet)
    const click = await hit(srv.base, target.host, `/${target.slugs[0]}`);
    pgProxy.restore();
    assert.equal(click.status, 503, `${click.status} ${click.body}`);
  } finally {
    await cleanup.run();
  }
});
