/**
 * PostgreSQL migrations and the monthly partitions of the event log, on a fresh database of the test's own.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { PgStore } from "../../src/store/postgres/index.js";
import { PG_MIGRATIONS } from "../../src/store/postgres/migrations.js";
import type { EventRow } from "../../src/store/port.js";
import { Cleanup, testDatabase, sql } from "./scale.js";
import { clickEvent } from "../events.js";

function click(projectId: number, ts: number): EventRow {
  return clickEvent({ project_id: projectId, ts, visitor: "v1" });
}

test("two instances migrating one fresh database at once both succeed, each migration applied once", async () => {
  const cleanup = new Cleanup();
  try {
    const db = await testDatabase(cleanup);
    const stores = [1, 2, 3].map(() => new PgStore({ url: db.url, poolSize: 2, watchChanges: false }));
    for (const s of stores) cleanup.defer(() => s.close());

    const applied = await Promise.all(stores.map((s) => s.migrate()));
    // exactly one of them applied everything, the others waited for it and found nothing left to do
    assert.deepEqual(
      [...applied].sort((x, y) => x - y),
      [0, 0, PG_MIGRATIONS.length],
    );
    const rows = await sql<{ id: number; n: string }>(db.url, `SELECT id, count(*) AS n FROM schema_migrations GROUP BY id ORDER BY id`);
    assert.deepEqual(
      rows.map((r) => [r.id, Number(r.n)]),
      PG_MIGRATIONS.map((m) => [m.id, 1]),
    );
    // migrating again is a no-op
    assert.equal(await stores[0]!.migrate(), 0);
    const [again] = await sql<{ n: string }>(db.url, `SELECT count(*) AS n FROM schema_migrations`);
    assert.equal(Number(again!.n), PG_MIGRATIONS.length);
  } finally {
    await cleanup.run();
  }
});

test("the event log has this month's partition and a click of now lands in it", async () => {
  const cleanup = new Cleanup();
  try {
    const db = await testDatabase(cleanup);
    const store = new PgStore({ url: db.url, poolSize: 2, watchChanges: false });
    cleanup.defer(() => store.close());
    await store.migrate();

    const now = new Date();
    const month = (offset: number) => {
      const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
      return `events_${d.getUTCFullYear()}_${String(d.getUTCMonth() + 1).padStart(2, "0")}`;
    };
    const partitions = (
      await sql<{ name: string }>(
        db.url,
        `SELECT c.relname AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'events'::regclass ORDER BY 1`,
      )
    ).map((r) => r.name);
    // last month to three months ahead, and the default partition
    assert.deepEqual(partitions, [month(-1), month(0), month(1), month(2), month(3), "events_default"].sort());

    const project = await store.createProject("partitions");
    const ts = Date.now();
    const lastId = await store.appendEvents([click(project.id, ts)]);
    const rows = await sql<{ part: string; ts: string }>(db.url, `SELECT tableoid::regclass::text AS part, ts FROM events WHERE id = $1`, [lastId]);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.part, month(0));
    assert.equal(Number(rows[0]!.ts), ts);

    // an event far outside the months created ahead still has a home: the default partition
    const far = await store.appendEvents([click(project.id, Date.UTC(2001, 0, 1))]);
    const [old] = await sql<{ part: string }>(db.url, `SELECT tableoid::regclass::text AS part FROM events WHERE id = $1`, [far]);
    assert.equal(old!.part, "events_default");
  } finally {
    await cleanup.run();
  }
});
