/**
 * Faults, injected with a TCP proxy between real server processes and the real PostgreSQL or Redis: the database
 * going away (clicks of cached links are spooled and answered, then replayed exactly once), a kill while clicks are
 * spooled, and Redis going away (instances bypass their caches, so changes are still served within a second).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import path from "node:path";
import { hit, req, startProcess, stopProcess, waitExit, type Res } from "../helpers.js";
import { PG_ADMIN_URL, REDIS_URL } from "../pg.js";
import {
  Cleanup,
  testDatabase,
  proxyTo,
  healthz,
  mkDomain,
  mkLink,
  settled,
  sleep,
  startInstance,
  startInstances,
  storedClicks,
  viaPort,
  waitFor,
} from "./scale.js";

const PG = new URL(PG_ADMIN_URL);
/** each redirecting client's pause between two clicks: 4 clients make some 500 clicks a second */
const PACE_MS = 5;
const REDIS = new URL(REDIS_URL);

function assertProblem(r: Res, status: number, type: string) {
  assert.equal(r.status, status, r.body);
  assert.match(String(r.headers["content-type"]), /^application\/problem\+json/, r.body);
  assert.equal(r.json.type, `https://clicktrail.dev/problems/${type}`, r.body);
}

for (const channel of ["notify", "redis"] as const) {
  test(`PostgreSQL cut off for 3 s (invalidation over ${channel === "notify" ? "LISTEN/NOTIFY" : "Redis"}): cached links keep redirecting, every answered click is stored exactly once`, async () => {
    const cleanup = new Cleanup();
    try {
      const db = await testDatabase(cleanup);
      const proxy = await proxyTo(cleanup, PG, 5432);
      const env: Record<string, string> = { CLICKTRAIL_DATABASE_URL: viaPort(db.url, proxy.port) };
      if (channel === "redis") env.CLICKTRAIL_REDIS_URL = REDIS_URL;
      const srv = await startInstance(cleanup, env);

      const host = "go.cut.test";
      await mkDomain(srv.base, host);
      const hot = await mkLink(srv.base, { domain: host, slug: "hot", target: "https://example.com/hot" });
      const cold = await mkLink(srv.base, { domain: host, slug: "cold", target: "https://example.com/cold" });
      // the change channel is up (its connection drops the caches once), then warm them: the link, and (before the
      // cut) the API host, known not to be a link domain. Every request, /healthz included, first looks its Host up
      // among the link domains; while the database is away, a Host missing from that cache is answered with a
      // generic 503 "unavailable" before reaching the API (src/app.ts dispatch)
      await settled(srv.base);
      const warm = await hit(srv.base, host, "/hot");
      assert.equal(warm.status, 302, warm.body);

      // clients redirecting for the whole test, 4 at a time; every answer is checked
      let redirected = 1;
      const other: string[] = [];
      let cutAt = Infinity;
      let restoredAt = Infinity;
      let duringCut = 0;
      let stop = false;
      const worker = async () => {
        while (!stop) {
          const sent = Date.now();
          const r = await hit(srv.base, host, "/hot");
          if (r.status === 302) {
            redirected++;
            if (sent > cutAt && Date.now() < restoredAt) duringCut++;
          } else other.push(`${r.status} ${r.body.slice(0, 200)}`);
          await sleep(PACE_MS);
        }
      };
      const workers = Array.from({ length: 4 }, worker);

      try {
        await sleep(300);
        assert.equal((await req(srv.base, "GET", "/api/v1/links")).status, 200);
        proxy.cut();
        cutAt = Date.now();
        await sleep(800);

        // while the database is away: the API answers 503 problem+json, /healthz 503, an uncached link 503
        assertProblem(await req(srv.base, "GET", "/api/v1/links"), 503, "database-unavailable");
        const h = await healthz(srv.base);
        assert.equal(h.status, 503, h.body);
        assert.equal(h.json.status, "degraded");
        assert.match(h.json.checks.database, /^down: /);
        assert.ok(h.json.spooled_batches > 0, `nothing spooled during the cut: ${h.body}`);
        const c = await hit(srv.base, host, "/cold");
        assert.equal(c.status, 503, c.body);

        await sleep(Math.max(0, cutAt + 3000 - Date.now()));
        assert.ok(duringCut > 0, "no redirect was answered while the database was away");
        restoredAt = Date.now();
        proxy.restore();

        // back without a restart: healthy at once, the spool drained within a few seconds (while the clicks go on)
        const up = await waitFor(
          "/healthz 200 again",
          () => healthz(srv.base),
          (x) => x.status === 200,
          3000,
        );
        assert.equal(up.value.json.checks.database, "up");
        await waitFor(
          "an empty spool",
          () => healthz(srv.base),
          (x) => x.status === 200 && x.json.spooled_batches === 0 && x.json.status === "ok",
          10_000,
          100,
        );
        assert.equal((await req(srv.base, "GET", "/api/v1/links")).status, 200);
        assert.equal((await hit(srv.base, host, "/cold")).status, 302);
        await sleep(300);
      } finally {
        stop = true;
        await Promise.all(workers);
      }

      assert.deepEqual(other, [], "every click of the cached link was answered 302");
      assert.ok(duringCut > 0);
      // nothing acknowledged was lost, nothing duplicated: the event log has exactly the answered clicks (the last ones are
      // committed after their answers: an API request waits until what the instance answered is committed)
      await req(srv.base, "GET", "/healthz");
      assert.equal(await storedClicks(db.url, hot.id), redirected, `${redirected} redirects answered (${duringCut} during the cut)`);
      assert.equal(await storedClicks(db.url, cold.id), 1, "the cold link's 503 was not a click; its 302 after the cut was");
      // and the rollups converge on the event log (rebuilt after the flushes that failed during the cut)
      const s = await req(srv.base, "GET", `/api/v1/links/${hot.id}/stats`);
      assert.equal(s.status, 200, s.body);
      assert.equal(s.json.clicks, redirected);
    } finally {
      await cleanup.run();
    }
  });
}

test("SIGKILL while clicks are spooled: the next start replays them, all counted once", async () => {
  const cleanup = new Cleanup();
  try {
    const db = await testDatabase(cleanup);
    const proxy = await proxyTo(cleanup, PG, 5432);
    const env = { CLICKTRAIL_DATABASE_URL: viaPort(db.url, proxy.port) };
    const first = await startInstance(cleanup, env);

    const host = "go.kill.test";
    await mkDomain(first.base, host);
    const link = await mkLink(first.base, { domain: host, slug: "k", target: "https://example.com/k" });
    await settled(first.base);
    assert.equal((await hit(first.base, host, "/k")).status, 302);

    // the API host must be in the domain cache for /healthz to answer while the database is away (see the cut test)
    assert.equal((await healthz(first.base)).status, 200);
    proxy.cut();
    const k = 25;
    for (let i = 0; i < k; i++) {
      const r = await hit(first.base, host, "/k");
      assert.equal(r.status, 302, `click ${i} during the cut: ${r.body}`);
    }
    const h = await healthz(first.base);
    assert.equal(h.status, 503);
    assert.equal(h.json.spooled_batches, k, h.body);
    first.proc.kill("SIGKILL");
    await waitExit(first.proc);
    assert.ok(
      readdirSync(path.join(first.dir, "spool")).some((f) => f.endsWith(".ndjson")),
      "the spool is on disk",
    );
    assert.equal(await storedClicks(db.url, link.id), 1, "only the click before the cut reached the database");

    proxy.restore();
    const again = await startProcess(first.dir, env);
    cleanup.defer(() => stopProcess(again.proc));
    const back = await waitFor(
      "the restarted instance has replayed its spool",
      () => healthz(again.base),
      (x) => x.status === 200 && x.json.spooled_batches === 0,
      5000,
      100,
    );
    assert.equal(back.value.json.status, "ok", back.value.body);
    assert.equal(await storedClicks(db.url, link.id), 1 + k);
    assert.deepEqual(
      readdirSync(path.join(first.dir, "spool")).filter((f) => f.startsWith("replay-")),
      [],
      "replayed spool files are removed",
    );
    // a second restart replays nothing again
    assert.equal((await stopProcess(again.proc)).code, 0, again.output());
    const third = await startProcess(first.dir, env);
    cleanup.defer(() => stopProcess(third.proc));
    assert.equal((await healthz(third.base)).json.spooled_batches, 0);
    assert.equal(await storedClicks(db.url, link.id), 1 + k);
  } finally {
    await cleanup.run();
  }
});

test("Redis cut off: instances report it, bypass their caches so changes are still served within a second, and recover", async () => {
  const cleanup = new Cleanup();
  try {
    const db = await testDatabase(cleanup);
    const proxy = await proxyTo(cleanup, REDIS, 6379);
    const env = { CLICKTRAIL_DATABASE_URL: db.url, CLICKTRAIL_REDIS_URL: `redis://127.0.0.1:${proxy.port}` };
    const [a, b] = await startInstances(cleanup, env, 2);

    await Promise.all([settled(a.base), settled(b.base)]);
    const host = "go.redis.test";
    await mkDomain(a.base, host);
    const link = await mkLink(a.base, { domain: host, slug: "r", target: "https://example.com/one" });
    let r = await hit(b.base, host, "/r");
    assert.equal(r.headers.location, "https://example.com/one");
    for (const s of [a, b]) {
      const h = await healthz(s.base);
      assert.equal(h.json.checks.redis, "up", h.body);
      assert.equal(h.json.status, "ok", h.body);
    }

    proxy.cut();
    for (const s of [a, b]) {
      const h = await waitFor(
        "checks.redis down",
        () => healthz(s.base),
        (x) => x.json?.checks?.redis === "down",
        3000,
      );
      // degraded, but the database is up: still 200 for the load balancer
      assert.equal(h.value.status, 200, h.value.body);
      assert.equal(h.value.json.status, "degraded");
      assert.equal(h.value.json.checks.database, "up");
    }

    // a change on A, while no one can publish it, is served by B within a second
    r = await req(a.base, "PATCH", `/api/v1/links/${link.id}`, { body: { target: "https://example.com/two" } });
    assert.equal(r.status, 200, r.body);
    const seen = await waitFor(
      "B serves the change made during the Redis cut",
      () => hit(b.base, host, "/r"),
      (x) => x.headers.location === "https://example.com/two",
      1500,
    );
    assert.ok(seen.ms < 1000, `after ${seen.ms} ms`);

    proxy.restore();
    for (const s of [a, b]) {
      const h = await waitFor(
        "checks.redis up again",
        () => healthz(s.base),
        (x) => x.json?.checks?.redis === "up" && x.json.status === "ok",
        6000,
        100,
      );
      assert.equal(h.value.status, 200);
    }

    // and changes travel over Redis again (B caches the link once more, then A changes it)
    await settled(b.base);
    assert.equal((await hit(b.base, host, "/r")).headers.location, "https://example.com/two");
    r = await req(a.base, "PATCH", `/api/v1/links/${link.id}`, { body: { target: "https://example.com/three" } });
    assert.equal(r.status, 200, r.body);
    const after = await waitFor(
      "B serves the change after Redis is back",
      () => hit(b.base, host, "/r"),
      (x) => x.headers.location === "https://example.com/three",
      1500,
    );
    assert.ok(after.ms < 1000, `after ${after.ms} ms`);
  } finally {
    await cleanup.run();
  }
});
