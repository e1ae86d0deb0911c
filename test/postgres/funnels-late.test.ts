/**
 * Several instances on one PostgreSQL database: each keeps its funnel data in memory and brings it up to date by id.
 * A row another instance commits late, behind a higher id that was already read (its transaction began first), must
 * still be read, and only once: events, visitor merges and property changes. Real database, real transactions.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { ProjectData } from "../../src/funnels/source.js";
import { analyticsStoreFor } from "../../src/funnels/store.js";
import { PgStore } from "../../src/store/postgres/index.js";
import { clickEvent } from "../events.js";
import { Cleanup, testDatabase } from "./scale.js";

test("rows committed late behind a higher id are read, each once (events, merges, properties)", async () => {
  const cleanup = new Cleanup();
  try {
    const db = await testDatabase(cleanup);
    const store = new PgStore({ url: db.url, poolSize: 4, watchChanges: false });
    cleanup.defer(() => store.close());
    await store.migrate();
    const project = (await store.createProject("late")).id;
    const data = new ProjectData(project, analyticsStoreFor(store), true);
    const late = new pg.Client({ connectionString: db.url });
    await late.connect();
    cleanup.defer(() => late.end());
    const ev = (name: string, visitor: string) => clickEvent({ project_id: project, name, visitor, is_bot: false, source: "api", ts: Date.now() });

    await store.appendEvents([ev("open", "v")]);
    await data.refresh();
    assert.equal(data.table.length, 1);

    // another instance's transaction takes ids first and commits last
    await late.query("BEGIN");
    const E = ev("click", "v");
    await late.query(`INSERT INTO events (project_id, ts, name, visitor, source, is_bot) VALUES ($1, $2, $3, $4, $5, false)`, [
      project,
      E.ts,
      "click",
      "v",
      "api",
    ]);
    await late.query(`INSERT INTO visitor_aliases (project_id, alias, visitor, created_at) VALUES ($1, 'anon', 'v', 0)`, [project]);
    await late.query(`INSERT INTO visitor_properties (project_id, visitor, name, op, value, ts) VALUES ($1, 'v', 'plan', 'add', '"pro"', 1)`, [
      project,
    ]);
    // meanwhile this instance writes (higher ids) and reads them
    await store.appendEvents([ev("signup", "v"), ev("pageview", "anon")]);
    const analytics = analyticsStoreFor(store);
    await analytics.addPropertyOps([{ project_id: project, visitor: "v", name: "plan", op: "add", value: '"team"', ts: 2 }]);
    await data.refresh();
    assert.equal(data.table.length, 3, "open, signup, pageview (the click is not committed yet)");
    await late.query("COMMIT");

    await data.refresh();
    assert.equal(data.table.length, 4, "the late click is read");
    const v = data.table.visitorIndex.get("v")!;
    const names = Array.from(
      { length: data.table.offsets[v + 1] - data.table.offsets[v] },
      (_, i) => data.table.names[data.table.name[data.table.offsets[v] + i]],
    );
    assert.deepEqual(names.sort(), ["click", "open", "pageview", "signup"], "the late merge moved anon's pageview to v");
    assert.deepEqual(data.valuesOf(v, "plan", "ever", 0).sort(), ["pro", "team"], "the late property change is read");
    await data.refresh();
    assert.equal(data.table.length, 4, "nothing is read twice");
    assert.equal(data.changesOf(v).length, 2);
  } finally {
    await cleanup.run();
  }
});
