/**
 * PostgreSQL migrations and the monthly partitions of the event log, on a fresh database of the test's own.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { PgStore } from "../../src/store/postgres/index.js";
import { PG_MIGRATIONS } from "../../src/store/postgres/migrations.js";
import type { EventRow } from "../../src/store/port.js";
import pg from "pg";
import { Cleanup, testDatabase, sql } from "./scale.js";
import { clickEvent, newLink } from "../events.js";

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

test("migration 11 moves the link counters into link_counts: counts kept, every new link counted, sorted by its index", async () => {
  const cleanup = new Cleanup();
  try {
    const db = await testDatabase(cleanup);
    // a database as version 10 left it, with counted links
    for (const m of PG_MIGRATIONS.filter((m) => m.id <= 10)) {
      await sql(db.url, m.sql);
      await sql(db.url, `CREATE TABLE IF NOT EXISTS schema_migrations (id integer PRIMARY KEY, name text NOT NULL, applied_at bigint NOT NULL)`);
      await sql(db.url, `INSERT INTO schema_migrations VALUES ($1, $2, 0)`, [m.id, m.name]);
    }
    await sql(db.url, `INSERT INTO projects (id, name, created_at) VALUES (1, 'a', 0), (2, 'b', 0)`);
    await sql(db.url, `INSERT INTO domains (id, project_id, hostname, created_at, updated_at) VALUES (1, 1, 'a.test', 0, 0), (2, 2, 'b.test', 0, 0)`);
    await sql(
      db.url,
      `INSERT INTO links (id, project_id, domain_id, slug, target, created_at, updated_at, clicks, claimed, max_clicks)
       VALUES (1, 1, 1, 'one', 'https://x.test/1', 0, 0, 7, 7, NULL), (2, 1, 1, 'two', 'https://x.test/2', 0, 0, 3, 0, 5),
              (3, 2, 2, 'three', 'https://x.test/3', 0, 0, 11, 0, NULL)`,
    );
    await sql(db.url, `SELECT setval('links_id_seq', 3)`);

    const store = new PgStore({ url: db.url, poolSize: 2, watchChanges: false });
    cleanup.defer(() => store.close());
    assert.equal(await store.migrate(), PG_MIGRATIONS.length - 10);

    const counts = await sql<{ link_id: string; project_id: string; clicks: string }>(
      db.url,
      `SELECT link_id, project_id, clicks FROM link_counts ORDER BY link_id`,
    );
    assert.deepEqual(
      counts.map((r) => [Number(r.link_id), Number(r.project_id), Number(r.clicks)]),
      [
        [1, 1, 7],
        [2, 1, 3],
        [3, 2, 11],
      ],
    );
    const columns = await sql<{ n: string }>(
      db.url,
      `SELECT count(*) AS n FROM information_schema.columns WHERE table_name = 'links' AND column_name = 'clicks'`,
    );
    assert.equal(Number(columns[0]!.n), 0, "links has no clicks column left to drift from link_counts");
    assert.equal((await store.getLink(1, 1))!.clicks, 7);

    // every link inserted from now on has its counter, one row or many per statement
    const made = await store.createLink(newLink(1, 1, "four", { target: "https://x.test/4" }));
    assert.equal(made.clicks, 0);
    await sql(
      db.url,
      `INSERT INTO links (project_id, domain_id, slug, target, created_at, updated_at) VALUES (1, 1, 'five', 'https://x.test/5', 0, 0), (1, 1, 'six', 'https://x.test/6', 0, 0)`,
    );
    const [{ n: missing }] = (await sql<{ n: string }>(
      db.url,
      `SELECT count(*) AS n FROM links l WHERE NOT EXISTS (SELECT 1 FROM link_counts c WHERE c.link_id = l.id AND c.project_id = l.project_id)`,
    )) as [{ n: string }];
    assert.equal(Number(missing), 0);

    // a flush adds to the counters; the listing sorts by them, page by page, within its project
    await store.endRollupFlush(0, new Map([[made.id, 4]]));
    const page1 = await store.listLinks({ project_id: 1, sort: "-clicks", limit: 2 });
    assert.deepEqual(
      page1.map((l) => [l.slug, l.clicks]),
      [
        ["one", 7],
        ["four", 4],
      ],
    );
    const page2 = await store.listLinks({ project_id: 1, sort: "-clicks", limit: 10, after: { value: 4, id: made.id } });
    assert.deepEqual(
      page2.map((l) => l.slug),
      ["two", "six", "five"],
    );
    // (six links: without seq scans, so the plan shows whether the sort index can serve the listing's order)
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    cleanup.defer(() => c.end());
    await c.query(`SET enable_seqscan = off`);
    await c.query(`SET enable_sort = off`);
    const plan = (
      await c.query(
        `EXPLAIN (COSTS OFF) SELECT l.id FROM links l JOIN link_counts c ON c.link_id = l.id AND c.project_id = l.project_id
         WHERE l.project_id = 1 ORDER BY c.clicks DESC, c.link_id DESC LIMIT 50`,
      )
    ).rows.map((r) => r["QUERY PLAN"] as string);
    assert.ok(plan.some((l) => l.includes("Backward using link_counts_project_clicks")) && !plan.some((l) => /\bSort\b/.test(l)), plan.join("\n"));

    // max_clicks claims count the counter: link two has 3 clicks of 5, so two more are granted, then none
    const granted = [];
    for (let i = 0; i < 4; i++) granted.push(await store.claimClick(2));
    assert.deepEqual(granted, [true, true, false, false]);

    // a deleted link takes its counter with it
    assert.equal(await store.deleteLink(1, 1), true);
    assert.equal((await sql(db.url, `SELECT 1 FROM link_counts WHERE link_id = 1`)).length, 0);
  } finally {
    await cleanup.run();
  }
});
