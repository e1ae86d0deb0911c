/**
 * The PostgreSQL writer thread (ThreadedWriter with a PostgreSQL target, the server's default): the HTTP thread answers
 * from the instance's journal, the thread gathers the records into larger commits, a read that waits for them cuts the
 * gathering short, a thread that dies leaves nothing behind (its successor stores every journaled event exactly once,
 * through the spool), a batch the database refuses is kept for an operator without taking the batches gathered with
 * it, and a link's committed clicks are counted until a rollup flush has them. Real threads, a database of the test's
 * own.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { ThreadedWriter } from "../../src/events/writer-thread.js";
import { createMetrics } from "../../src/ops/metrics.js";
import { PgStore } from "../../src/store/postgres/index.js";
import type { EventRow } from "../../src/store/port.js";
import { assertPoisonPutAside, Cleanup, testDatabase, sql } from "./scale.js";
import { clickEvent } from "../events.js";
import { tmpDir } from "../helpers.js";

/** Events no counter depends on (tracking opens): answered from the journal. */
const opens = (n: number, tag: string): EventRow[] =>
  Array.from({ length: n }, (_, i) => clickEvent({ name: "open", source: "tracking", visitor: `${tag}-${i}` }));

const count = async (url: string, where = "true") => Number((await sql<{ n: string }>(url, `SELECT count(*) AS n FROM events WHERE ${where}`))[0]!.n);

async function setup(cleanup: Cleanup, gatherMs: number) {
  const dir = tmpDir("clicktrail-pg-thread-");
  cleanup.defer(() => rmSync(dir, { recursive: true, force: true }));
  const db = await testDatabase(cleanup);
  const store = new PgStore({ url: db.url, watchChanges: false, poolSize: 4 });
  cleanup.defer(() => store.close());
  await store.migrate();
  const metrics = createMetrics();
  const start = async () => {
    const w = new ThreadedWriter(
      { kind: "postgres", store, journalDir: path.join(dir, "event-journal"), journalSync: false, spoolDir: path.join(dir, "spool") },
      metrics,
      { rollupIntervalMs: 3_600_000, gatherMs },
    );
    await w.start();
    return w;
  };
  return { dir, db, store, metrics, start };
}

const kill = (w: ThreadedWriter) => (w as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();

test("PostgreSQL writer thread: answered from the journal, gathered into one commit, committed at once for a read; a dead thread's journal stored exactly once", async () => {
  const cleanup = new Cleanup();
  try {
    // a gathering window far longer than the test's waits: only a read (or flush) makes the thread commit early
    const { dir, db, metrics, start } = await setup(cleanup, 60_000);
    const w = await start();
    cleanup.defer(() => w.close());

    const t0 = Date.now();
    for (let turn = 0; turn < 5; turn++) await Promise.all(opens(100, `a${turn}`).map((e) => w.write(e)));
    assert.ok(Date.now() - t0 < 2000, "answered from the journal, without waiting for a commit");
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(await count(db.url), 0, "the thread gathers: nothing committed yet");

    // a read waits for them: committed at once, in one commit
    const t1 = Date.now();
    await w.settled();
    assert.ok(Date.now() - t1 < 5000, `settled in ${Date.now() - t1} ms, not after the gathering window`);
    assert.equal(await count(db.url), 500);
    const batches = (await metrics.registry.getSingleMetricAsString("clicktrail_writer_batch_size")).match(/_count (\d+)$/m)?.[1];
    assert.equal(batches, "1", "the five turns went to the database in one commit");

    // more events, answered, then the thread dies before it commits them
    for (let turn = 0; turn < 3; turn++) await Promise.all(opens(50, `b${turn}`).map((e) => w.write(e)));
    await new Promise((r) => setTimeout(r, 50));
    await kill(w);
    // its successor moves the journal (the committed records too) to the spool; the replay skips what the database has
    const deadline = Date.now() + 20_000;
    while ((await count(db.url)) < 650 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    await w.settled();
    const rows = await sql<{ visitor: string; n: string }>(db.url, `SELECT visitor, count(*) AS n FROM events GROUP BY visitor`);
    assert.deepEqual(
      rows.filter((r) => Number(r.n) !== 1).map((r) => r.visitor),
      [],
      "no event stored twice",
    );
    assert.equal(rows.length, 650, "every answered event stored");
    assert.equal(w.spooled, 0, "the spool was replayed");

    // a clean shutdown commits what is gathered and leaves an empty journal
    await Promise.all(opens(10, "last").map((e) => w.write(e)));
    await w.close();
    assert.equal(await count(db.url, `visitor LIKE 'last-%'`), 10);
    const journal = path.join(dir, "event-journal");
    assert.deepEqual(existsSync(journal) ? readdirSync(journal).filter((f) => f.endsWith(".log")) : [], []);
  } finally {
    await cleanup.run();
  }
});

test("PostgreSQL writer thread: a batch the database refuses is kept in rejected.ndjson; the batches gathered with it are stored", async () => {
  const cleanup = new Cleanup();
  try {
    const { dir, db, start } = await setup(cleanup, 60_000);
    const w = await start();
    cleanup.defer(() => w.close());
    await w.write(opens(1, "before")[0]!);
    // a timestamp no bigint holds: PostgreSQL refuses the whole statement it is in (the three records share one)
    await w.write(clickEvent({ name: "open", source: "tracking", visitor: "poison", ts: 1e300 }));
    await w.write(opens(1, "after")[0]!);
    await w.settled();
    await assertPoisonPutAside(db.url, path.join(dir, "event-journal"));
  } finally {
    await cleanup.run();
  }
});

test("PostgreSQL writer thread: a link's clicks answered from the journal count as pending until a rollup flush has them, never twice", async () => {
  const cleanup = new Cleanup();
  try {
    const { db, start } = await setup(cleanup, 25);
    const w = await start();
    cleanup.defer(() => w.close());
    const [p] = await sql<{ id: number }>(db.url, `INSERT INTO projects (name, created_at) VALUES ('p', 0) RETURNING id`);
    const [d] = await sql<{ id: number }>(
      db.url,
      `INSERT INTO domains (project_id, hostname, created_at, updated_at) VALUES (${p!.id}, 'x.test', 0, 0) RETURNING id`,
    );
    const [l] = await sql<{ id: number }>(
      db.url,
      `INSERT INTO links (project_id, domain_id, slug, target, created_at, updated_at) VALUES (${p!.id}, ${d!.id}, 's', 'https://example.com/', 0, 0) RETURNING id`,
    );
    const click = (i: number) => clickEvent({ project_id: p!.id, domain_id: d!.id, link_id: l!.id, visitor: `v${i}` });
    // a link without max_clicks: answered from the journal
    for (let i = 0; i < 30; i++) await w.write(click(i), { committed: false });
    // one that counts against a max_clicks: answered once committed
    await w.write(click(30));
    await w.settled();
    const clicksColumn = async () =>
      Number((await sql<{ clicks: string }>(db.url, `SELECT clicks FROM link_counts WHERE link_id = ${l!.id}`))[0]!.clicks);
    assert.equal(w.pendingClicks(l!.id), 31);
    assert.equal(await clicksColumn(), 0);
    await w.flushRollups();
    assert.equal(await clicksColumn(), 31, "the flush put them in links.clicks");
    assert.equal(w.pendingClicks(l!.id), 0, "and they no longer count as pending");
    // clicks that no read counted before the flush that has them: no longer pending either
    for (let i = 31; i < 40; i++) await w.write(click(i), { committed: false });
    await w.settled();
    await w.flushRollups();
    assert.equal(await clicksColumn(), 40);
    assert.equal(w.pendingClicks(l!.id), 0, "the flushed clicks no read had counted are not pending");
    for (let i = 40; i < 45; i++) await w.write(click(i), { committed: false });
    await w.settled();
    assert.equal(w.pendingClicks(l!.id), 5, "the clicks after the flush are");
  } finally {
    await cleanup.run();
  }
});
