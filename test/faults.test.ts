/**
 * Faults on the embedded engine (SQLite), against real server processes under real HTTP load on loopback:
 * SIGKILL mid-load (twice), a full disk (a small tmpfs mounted for the test), and a webhook receiver that accepts
 * connections and never answers. Each acknowledged click (302), open (pixel 200) and event (201) carries a unique id
 * in its Referer; afterwards every one of them must be in the event log exactly once.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync, rmdirSync, writeSync } from "node:fs";
import { createServer as createNetServer, type Socket } from "node:net";
import { createServer as createHttpServer } from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import { req, startProcess, stopProcess, tmpDir, waitExit, type ServerProcess } from "./helpers.js";
import { SqliteStore, sqlitePath } from "../src/store/sqlite/index.js";
import { Spool, type SpooledBatch } from "../src/events/spool.js";
import { AppError } from "../src/errors.js";
import { assertClearRefusals, checkStored, fmt, merge, p99, setupTarget, sleep, startLoad, summary, REF, type LoadReport } from "./fault-load.js";

const ENV = { CLICKTRAIL_INGEST_RATE_LIMIT: "1000000" };

/** What the event log holds: the referrers of the load's events, and the link clicks. */
function stored(dir: string): { referrers: string[]; linkClicks: number } {
  const s = new SqliteStore({ file: sqlitePath(dir) });
  try {
    const referrers = s.db.prepare(`SELECT referrer FROM events WHERE referrer LIKE ?`).pluck().all(`${REF}%`) as string[];
    const linkClicks = (s.db.prepare(`SELECT count(*) FROM events WHERE name = 'click' AND link_id IS NOT NULL`).pluck().get() as number) ?? 0;
    return { referrers, linkClicks };
  } finally {
    s.db.close();
  }
}

/** Rollups agree with the event log (they are rebuilt after a crash or a failed flush). */
async function assertRollups(srv: ServerProcess, linkClicks: number) {
  const r = await req(srv.base, "GET", "/api/v1/stats?bots=include");
  assert.equal(r.status, 200, r.body);
  assert.equal(r.json.clicks, linkClicks, "the rollups count every click of the event log");
}

test("SIGKILL under load, twice: every acknowledged click, open and event is stored, exactly once", async (t) => {
  const dir = tmpDir();
  let srv: ServerProcess | null = null;
  try {
    srv = await startProcess(dir, ENV);
    const target = await setupTarget(srv.base, "go.kill.test");
    const reports: LoadReport[] = [];
    for (const round of [1, 2]) {
      const cur = srv;
      // 24 clients (8 per kind) as fast as they go; the kill lands mid-flight, with requests in the writer's queue
      const load = startLoad(() => cur.base, target, { perKind: 8, maxRequests: 40_000, tag: `k${round}` });
      await sleep(1800);
      cur.proc.kill("SIGKILL");
      const rep = await load.stop();
      await waitExit(cur.proc);
      reports.push(rep);
      assert.ok(load.total() > 300, `round ${round}: only ${load.total()} acknowledged before the kill`);
      assertClearRefusals(rep, [], []);
      t.diagnostic(`round ${round}: killed at ${fmt(load.total())} acknowledged writes; ${rep.noAnswer} requests cut off by the kill`);
      srv = null;
      // the restart recovers the WAL and rebuilds the rollups from the event log before serving
      srv = await startProcess(dir, ENV);
    }
    const all = merge(reports);
    const { referrers, linkClicks } = stored(dir);
    const figures = checkStored(all, referrers);
    t.diagnostic(`after 2 kills: ${summary(figures)}`);
    await assertRollups(srv!, linkClicks);
    // and the server takes writes again
    const after = startLoad(() => srv!.base, target, { perKind: 1, maxRequests: 30, tag: "after" });
    await after.stop();
    assert.equal(after.report.refused.length, 0);
  } finally {
    if (srv) await stopProcess(srv.proc);
    rmSync(dir, { recursive: true, force: true });
  }
});

// ---------------------------------------------------------------------------------------------------------------------

/** Mounts a tmpfs of `size` at a new directory; null (with the reason) when mounting is not permitted here. */
function mountTmpfs(size: string): { dir: string; unmount(): void } | { skip: string } {
  const dir = mkdtempSync(path.join(tmpdir(), "clicktrail-full-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir], { stdio: "pipe" });
  } catch (e) {
    rmdirSync(dir);
    return { skip: `cannot mount a small filesystem for the disk-full test (needs root or CAP_SYS_ADMIN): ${(e as Error).message.split("\n")[0]}` };
  }
  return {
    dir,
    unmount() {
      try {
        execFileSync("umount", [dir], { stdio: "pipe" });
      } catch {
        // something still holds a file open (a server that did not exit): detach it anyway
        execFileSync("umount", ["-l", dir], { stdio: "pipe" });
      }
      rmdirSync(dir);
    },
  };
}

/** Writes a file until the filesystem is full; returns its size. */
function fill(file: string): number {
  const fd = openSync(file, "w");
  let size = 0;
  try {
    for (const chunk of [1 << 16, 4096, 512, 64, 1]) {
      const buf = Buffer.alloc(chunk, 0x78);
      for (;;) {
        try {
          size += writeSync(fd, buf);
        } catch {
          break;
        }
      }
    }
  } finally {
    closeSync(fd);
  }
  return size;
}

test("disk full: clear 507 answers (never 500), recovery without a restart once space is freed, nothing acknowledged lost", async (t) => {
  // large enough that the load after the space is freed does not fill it again within the test (SQLite's WAL grows to
  // some 40 MB before its first checkpoint)
  const mount = mountTmpfs("64m");
  if ("skip" in mount) {
    // the test says why it did not run (CI runs as root, where it must run)
    t.diagnostic(`SKIPPED: ${mount.skip}`);
    if (process.env.CI === "true") assert.fail(mount.skip);
    t.skip(mount.skip);
    return;
  }
  const dir = mount.dir;
  let srv: ServerProcess | null = null;
  try {
    srv = await startProcess(dir, ENV);
    const cur = srv;
    const target = await setupTarget(srv.base, "go.full.test");
    const reports: LoadReport[] = [];

    // 1. healthy: everything is acknowledged
    let load = startLoad(() => cur.base, target, { perKind: 2, maxRequests: 600, tag: "before" });
    await sleep(300);
    reports.push(await load.stop());
    assert.equal(reports[0]!.refused.length, 0, JSON.stringify(reports[0]!.refused.slice(0, 3)));

    // 2. the disk fills up under load
    const filler = path.join(dir, "filler");
    load = startLoad(() => cur.base, target, { perKind: 3, paceMs: 2, maxRequests: 30_000, tag: "full" });
    const filled = fill(filler);
    const fullAt = Date.now();
    // writes are refused once SQLite's WAL cannot grow any more (until then, some still fit in its free pages)
    for (let i = 0; i < 100 && load.report.refused.length < 30; i++) await sleep(100);
    // the disk stays full for a while under load: rollup flushes fail too
    await sleep(1500);
    // the API's own writes: SQLite may still have room in its write-ahead log file (its size stays after the log starts
    // over), which the refused load no longer fills; links with long notes use it up: each one is created or refused
    // with a clear 507, never anything else
    let api = await req(cur.base, "POST", "/api/v1/links", {
      body: { domain: target.host, slug: "new-on-full-disk", target: "https://example.com/x" },
    });
    for (let i = 0; i < 3000 && api.status === 201; i++) {
      api = await req(cur.base, "POST", "/api/v1/links", {
        body: { domain: target.host, slug: `fill-${i}`, target: "https://example.com/x", notes: "n".repeat(4000) },
      });
    }
    const health = await req(cur.base, "GET", "/healthz", { key: null });
    const stats = await req(cur.base, "GET", "/api/v1/stats?bots=include");
    const during = await load.stop();
    reports.push(during);
    t.diagnostic(
      `disk full (filler ${fmt(filled)} bytes): ${fmt(load.total())} acknowledged, ${fmt(during.refused.length)} refused ` +
        `(${[...new Set(during.refused.map((a) => `${a.status} ${a.what}`))].join(", ")}); POST /links: ${api.status} ${api.json?.type ?? api.body.slice(0, 100)}`,
    );
    assert.ok(during.refused.length > 0, "the full disk refused no write: the test did not fill it");
    assertClearRefusals(during, [507], ["storage-full"]);
    assert.equal(api.status, 507, api.body);
    assert.match(String(api.headers["content-type"]), /^application\/problem\+json/);
    assert.equal(api.json.type, "https://clicktrail.dev/problems/storage-full", api.body);
    assert.match(api.json.detail, /disk|space/i, api.body);
    assert.equal(health.status, 200, `the server is up and can read: ${health.body}`);
    assert.equal(health.json.status, "degraded", health.body);
    assert.match(health.json.checks.disk ?? "", /^full/, health.body);
    // a stats read first writes the pending rollups, which the full disk refuses: it says so rather than answer stale counts
    assert.equal(stats.status, 507, stats.body);
    assert.equal(stats.json.type, "https://clicktrail.dev/problems/storage-full", stats.body);
    const links = await req(cur.base, "GET", "/api/v1/links?limit=5");
    assert.equal(links.status, 200, `other reads go on: ${links.body}`);
    assert.equal(cur.proc.exitCode, null, "the server is still running");

    // 3. space is freed: the same process takes writes again, by itself
    rmSync(filler);
    const freedAt = Date.now();
    load = startLoad(() => cur.base, target, { perKind: 3, paceMs: 2, maxRequests: 30_000, tag: "freed" });
    let recoveredAt = 0;
    for (let i = 0; i < 100 && !recoveredAt; i++) {
      await sleep(100);
      const last = load.report.refused.at(-1);
      if (load.total() > 100 && (!last || last.at < Date.now() - 500)) recoveredAt = Date.now();
    }
    await sleep(500);
    const refusedBefore = load.report.refused.length;
    await sleep(700);
    const freed = await load.stop();
    reports.push(freed);
    assert.ok(recoveredAt, `still refusing writes 10 s after space was freed: ${JSON.stringify(freed.refused.slice(-3))}`);
    assert.equal(freed.refused.length, refusedBefore, "no refusal once recovered");
    assertClearRefusals(freed, [507], ["storage-full"]);
    t.diagnostic(`space freed: writes acknowledged again within ${recoveredAt - freedAt} ms (full for ${freedAt - fullAt} ms), without a restart`);
    const created = await req(cur.base, "POST", "/api/v1/links", {
      body: { domain: target.host, slug: "after-full-disk", target: "https://example.com/y" },
    });
    assert.equal(created.status, 201, created.body);
    const healthy = await req(cur.base, "GET", "/healthz", { key: null });
    assert.equal(healthy.json.status, "ok", healthy.body);

    // 4. a clean stop, then every acknowledged write is in the log and the rollups agree with it
    assert.equal((await stopProcess(cur.proc)).code, 0, cur.output().slice(-2000));
    srv = null;
    const all = merge(reports);
    const { referrers, linkClicks } = stored(dir);
    const figures = checkStored(all, referrers);
    t.diagnostic(`disk full: ${summary(figures)}`);
    srv = await startProcess(dir, ENV);
    await assertRollups(srv, linkClicks);
  } finally {
    if (srv) await stopProcess(srv.proc);
    mount.unmount();
  }
});

test("disk full under the spool (PostgreSQL away): a failed append leaves no partial line, so no later batch is lost", async (t) => {
  const mount = mountTmpfs("64k");
  if ("skip" in mount) {
    if (process.env.CI === "true") assert.fail(mount.skip);
    t.skip(mount.skip);
    return;
  }
  try {
    const spoolDir = path.join(mount.dir, "spool");
    const spool = new Spool(spoolDir);
    // something else holds 16 KB, freed later
    const reserve = path.join(mount.dir, "reserve");
    const fd = openSync(reserve, "w");
    writeSync(fd, Buffer.alloc(16384));
    closeSync(fd);
    const batch = (i: number): SpooledBatch => ({ id: `b${i}`, events: [{ name: "click", data: "x".repeat(700), i } as never] });
    const appended: string[] = [];
    let refusal: unknown = null;
    for (let i = 0; i < 1000 && !refusal; i++) {
      try {
        spool.append(batch(i));
        appended.push(`b${i}`);
      } catch (e) {
        refusal = e;
      }
    }
    assert.ok(refusal instanceof AppError, `the full disk is a 507, not ${String(refusal)}`);
    assert.equal(refusal.status, 507);
    assert.equal(refusal.type, "storage-full");
    // space comes back (something else is deleted): the next batches are appended and acknowledged
    rmSync(reserve);
    spool.close();
    const again = new Spool(spoolDir); // a restart reads what is there, then appends after it
    for (let i = 0; i < 3; i++) {
      again.append({ id: `after${i}`, events: [] });
      appended.push(`after${i}`);
    }
    const replayed: string[] = [];
    await again.drain(async (group) => void replayed.push(...group.map((b) => b.id)));
    assert.deepEqual(replayed, appended, "every appended batch is replayed, in order");
    t.diagnostic(
      `spool: ${appended.length - 3} batches fitted, the next refused with 507, 3 appended after space came back: all ${replayed.length} replayed`,
    );
    again.close();
  } finally {
    mount.unmount();
  }
});

// ---------------------------------------------------------------------------------------------------------------------

const RECEIVER_HOST = "127.0.0.2";

/**
 * A webhook receiver that can hang: "accept" takes the connection and never reads or answers, "headers" answers the
 * status line and headers and never ends the body, "ok" answers 200 and remembers the webhook-id.
 */
async function hangingReceiver() {
  let mode: "accept" | "headers" | "ok" = "accept";
  const sockets = new Set<Socket>();
  const got = new Set<string>();
  const http = createHttpServer((rq, rs) => {
    rq.resume();
    rq.on("end", () => {
      if (mode === "headers") {
        rs.writeHead(200, { "content-type": "text/plain" });
        rs.write("still thinking");
        return;
      }
      got.add(String(rq.headers["webhook-id"]));
      rs.end("ok");
    });
  });
  http.on("connection", (s) => (sockets.add(s), s.once("close", () => sockets.delete(s))));
  const tcp = createNetServer((s) => {
    sockets.add(s);
    s.once("close", () => sockets.delete(s));
    s.on("error", () => {});
    if (mode === "accept") return; // never a byte back
    http.emit("connection", s);
  });
  await new Promise<void>((r) => tcp.listen(0, RECEIVER_HOST, r));
  return {
    url: `http://${RECEIVER_HOST}:${(tcp.address() as { port: number }).port}/hook`,
    got,
    get open() {
      return sockets.size;
    },
    set(m: typeof mode) {
      mode = m;
      for (const s of sockets) s.destroy();
    },
    close: () => new Promise<void>((r) => ((mode = "accept"), sockets.forEach((s) => s.destroy()), tcp.close(() => r()))),
  };
}

test("a webhook receiver that hangs: clicks and events are not slowed, deliveries time out and retry, then arrive once it answers", async (t) => {
  const dir = tmpDir();
  const receiver = await hangingReceiver();
  let srv: ServerProcess | null = null;
  try {
    srv = await startProcess(dir, {
      ...ENV,
      CLICKTRAIL_WEBHOOK_ALLOW: RECEIVER_HOST,
      CLICKTRAIL_WEBHOOK_TIMEOUT_MS: "800",
      CLICKTRAIL_WEBHOOK_RETRY_BASE_MS: "300",
      CLICKTRAIL_WEBHOOK_POLL_MS: "100",
    });
    const cur = srv;
    const target = await setupTarget(srv.base, "go.hook.test");
    const hook = await req(srv.base, "POST", "/api/v1/webhooks", { body: { url: receiver.url, events: ["signup"] } });
    assert.equal(hook.status, 201, hook.body);
    const deliveries = async () => {
      const r = await req(cur.base, "GET", `/api/v1/webhooks/${hook.json.id}/deliveries?limit=100`);
      assert.equal(r.status, 200, r.body);
      return r.json.deliveries as { msg_id: string; status: string; attempts: number; last_error: string | null }[];
    };

    // 1. the receiver accepts and never answers; 30 subscribed events go out while clicks, opens and events run
    const load = startLoad(() => cur.base, target, { perKind: 3, paceMs: 2, maxRequests: 30_000, tag: "hang" });
    const signups: number[] = [];
    for (let i = 0; i < 30; i++) {
      const r = await req(cur.base, "POST", "/api/v1/events", { key: null, body: { key: target.ingestKey, name: "signup", data: { i } } });
      signups.push(r.status);
      await sleep(20);
    }
    assert.deepEqual(new Set(signups), new Set([201]));
    await sleep(2000);
    const hung = await deliveries();
    assert.equal(hung.length, 30, JSON.stringify(hung.slice(0, 2)));
    assert.ok(
      hung.some((d) => d.attempts >= 1 && /no response within 800 ms/.test(d.last_error ?? "")),
      `no attempt timed out: ${JSON.stringify(hung.slice(0, 3))}`,
    );
    assert.ok(receiver.open > 0, "the receiver holds connections open");
    const health = await req(cur.base, "GET", "/healthz", { key: null });
    assert.equal(health.status, 200, health.body);

    // 2. it answers headers, then never ends the body: still a time-out, not a stuck sender
    receiver.set("headers");
    await sleep(2000);
    const slow = await load.stop();
    assert.equal(slow.refused.length, 0, JSON.stringify(slow.refused.slice(0, 3)));
    const worst = p99(slow.latencies);
    t.diagnostic(`receiver hanging for 4 s: ${fmt(load.total())} writes acknowledged, p99 ${worst.toFixed(1)} ms; ${receiver.open} connections held`);
    assert.ok(worst < 500, `a hanging receiver slowed the writes: p99 ${worst} ms`);
    const stillSlow = await deliveries();
    assert.equal(stillSlow.filter((d) => d.status === "delivered").length, 0);

    // 3. it answers: every delivery arrives, without a restart
    receiver.set("ok");
    const start = Date.now();
    for (;;) {
      const ds = await deliveries();
      if (ds.every((d) => d.status === "delivered")) break;
      if (Date.now() - start > 15_000)
        assert.fail(`not delivered 15 s after the receiver came back: ${JSON.stringify(ds.filter((d) => d.status !== "delivered").slice(0, 3))}`);
      await sleep(200);
    }
    const done = await deliveries();
    for (const d of done) assert.ok(receiver.got.has(d.msg_id), `delivery ${d.msg_id} marked delivered but never received`);
    t.diagnostic(
      `receiver back: all 30 deliveries arrived within ${Date.now() - start} ms, after up to ${Math.max(...done.map((d) => d.attempts))} attempts`,
    );

    // 4. a stop while a delivery hangs ends within the attempt time-out, exit code 0
    receiver.set("accept");
    const r = await req(cur.base, "POST", "/api/v1/events", { key: null, body: { key: target.ingestKey, name: "signup", data: { last: true } } });
    assert.equal(r.status, 201);
    for (let i = 0; i < 40 && receiver.open === 0; i++) await sleep(50);
    const stopStart = Date.now();
    const { code } = await stopProcess(cur.proc);
    srv = null;
    t.diagnostic(`SIGTERM with a delivery hanging: exit ${code} after ${Date.now() - stopStart} ms`);
    assert.equal(code, 0, cur.output().slice(-2000));
    assert.ok(Date.now() - stopStart < 5000, "the stop waited on the hanging receiver for too long");
    const all = checkStored(slow, stored(dir).referrers);
    t.diagnostic(`webhook hang: ${summary(all)}`);
  } finally {
    if (srv) await stopProcess(srv.proc);
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
