/**
 * Several writers on one PostgreSQL database: an instance that died with clicks not yet in the rollups is adopted by
 * another (exactly once), and an instance adopted while still alive (cut off too long) is fenced off and starts over,
 * so no click is counted twice or lost. In process, with real stores and writers on a database of the test's own.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { EventWriter } from "../../src/events/writer.js";
import { RollupBuffer } from "../../src/events/rollup.js";
import { createMetrics } from "../../src/ops/metrics.js";
import { PgStore } from "../../src/store/postgres/index.js";
import { SLOT_MS, type EventRow } from "../../src/store/port.js";
import { Cleanup, testDatabase, sql } from "./scale.js";
import { clickEvent } from "../events.js";
import { checkBreakdowns } from "../breakdowns.js";

const LINK = 7;

function clicks(n: number, visitor: string): EventRow[] {
  return Array.from({ length: n }, (_, i) =>
    clickEvent({
      visitor: `${visitor}-${i}`,
      link_id: LINK,
      domain_id: 3,
      platform: "desktop",
      referrer: "https://news.example/",
      browser: "Firefox",
      os: "Linux",
      device: "desktop",
    }),
  );
}

/** Non-bot clicks of the link in the rollups (the last and the next hour). */
async function rolledUp(store: PgStore): Promise<number> {
  const now = Date.now();
  const rows = await store.statsSeries({
    scope: "link",
    scope_id: LINK,
    from: now - (now % SLOT_MS) - 3_600_000,
    to: now - (now % SLOT_MS) + 3_600_000,
    includeBots: false,
  });
  return rows.reduce((n, r) => n + r.clicks, 0);
}

/** A writer that never flushes by itself (the test decides when). */
function writer(store: PgStore) {
  return new EventWriter(store, createMetrics(), { rollupIntervalMs: 3_600_000 });
}

async function setup(cleanup: Cleanup) {
  const db = await testDatabase(cleanup);
  const a = new PgStore({ url: db.url, watchChanges: false });
  const b = new PgStore({ url: db.url, watchChanges: false });
  cleanup.defer(() => b.close());
  cleanup.defer(() => a.close());
  await a.migrate();
  await b.migrate();
  return { db, a, b };
}

test("an instance that died with clicks not in the rollups is adopted by another, exactly once", async () => {
  const cleanup = new Cleanup();
  try {
    const { db, a, b } = await setup(cleanup);
    const wa = writer(a);
    await wa.start();
    await wa.writeMany(clicks(30, "a"));
    // A dies: no flush, no retirement; its heartbeat stops (a minute ago)
    await a.close();
    await sql(db.url, `UPDATE writers SET heartbeat_at = 0`);

    const wb = writer(b);
    await wb.start();
    assert.equal(await rolledUp(b), 0, "nothing of A's is in the rollups yet");
    assert.equal(await wb.adoptOrphans(), 1);
    assert.equal(await rolledUp(b), 30, "A's clicks are in the rollups");
    assert.equal(await wb.adoptOrphans(), 0, "nothing left to adopt");
    const writers = await sql<{ n: string }>(db.url, `SELECT count(*) AS n FROM writers`);
    assert.equal(Number(writers[0]!.n), 1, "A's writer is retired; B's remains");

    await wb.writeMany(clicks(4, "b"));
    await wb.close();
    assert.equal(await rolledUp(b), 34);
    const left = await sql<{ n: string }>(db.url, `SELECT count(*) AS n FROM writers`);
    assert.equal(Number(left[0]!.n), 0, "a clean shutdown retires its writer");
  } finally {
    await cleanup.run();
  }
});

test("an instance adopted while alive is fenced off and starts over: nothing counted twice, nothing lost", async () => {
  const cleanup = new Cleanup();
  try {
    const { db, a, b } = await setup(cleanup);
    const wa = writer(a);
    await wa.start();
    await wa.writeMany(clicks(10, "a1"));
    // A is cut off long enough to be taken for dead (its heartbeat is a minute old) and B adopts it
    await sql(db.url, `UPDATE writers SET heartbeat_at = 0`);
    const wb = writer(b);
    await wb.start();
    assert.equal(await wb.adoptOrphans(), 1);
    assert.equal(await rolledUp(b), 10);

    // A comes back: its old writer is gone, so its next commit goes out as a new writer, and its buffer (which
    // still held the 10 clicks B counted) is rebuilt from the event log instead of being flushed
    await wa.writeMany(clicks(5, "a2"));
    await wa.flushRollups();
    assert.equal(await rolledUp(a), 15, "10 adopted + 5 new, none twice");
    const events = await sql<{ n: string }>(db.url, `SELECT count(*) AS n FROM events`);
    assert.equal(Number(events[0]!.n), 15);

    await wa.close();
    await wb.close();
    assert.equal(await rolledUp(a), 15);
  } finally {
    await cleanup.run();
  }
});

test("a flush interrupted by an instance's death is finished by the adopter in the chunks the dead one cut it into", async () => {
  const cleanup = new Cleanup();
  try {
    const { db, a, b } = await setup(cleanup);
    // A commits 30 clicks and starts a flush in chunks of 4 row changes; it applies chunks 0 and 2, then dies
    const events = clicks(30, "a");
    const last = await a.appendEvents(events);
    const buf = new RollupBuffer(0);
    buf.add(events, last);
    const taken = buf.take();
    assert.ok(taken.ops.length > 12, `enough row changes for three chunks (${taken.ops.length})`);
    await a.beginRollupFlush(taken.from, taken.to, 4);
    await a.applyRollupChunk(taken.ops.slice(0, 4), 0);
    await a.applyRollupChunk(taken.ops.slice(8, 12), 2);
    assert.equal((await a.rollupState()).pending?.chunkSize, 4);
    await a.close();
    await sql(db.url, `UPDATE writers SET heartbeat_at = 0`);

    // B cuts its own flushes into chunks of 1,000: A's are finished as A cut them, each exactly once
    const wb = writer(b);
    await wb.start();
    assert.equal(await wb.adoptOrphans(), 1);
    assert.equal(await rolledUp(b), 30);
    await wb.close();
  } finally {
    await cleanup.run();
  }
});

test("breakdowns read the empty value as the total less the others and a click scope's name as its total (PostgreSQL)", async () => {
  const cleanup = new Cleanup();
  try {
    const db = await testDatabase(cleanup);
    const store = new PgStore({ url: db.url, watchChanges: false });
    cleanup.defer(() => store.close());
    await store.migrate();
    await checkBreakdowns(store);
    const [stored] = await sql<{ n: number }>(db.url, `SELECT count(*)::int AS n FROM rollups WHERE value = '' AND dim <> 'total' OR dim = 'name'`);
    assert.equal(stored!.n, 0, "no row for an empty value, nor for a click scope's name");
  } finally {
    await cleanup.run();
  }
});
