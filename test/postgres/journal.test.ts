/**
 * The PostgreSQL instance's event journal (EventWriter's `journal` option): events answered once journaled, before the
 * database's commit; a crash that leaves them in the journal loses none and stores none twice; a batch the database
 * refuses is kept for an operator, without taking the other batches of its commit with it. And the array literals the
 * group commit sends, read back exactly. In process, with real stores and writers on a database of the test's own.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, rmSync } from "node:fs";
import path from "node:path";
import { EventWriter } from "../../src/events/writer.js";
import { Journal, readJournal } from "../../src/events/journal.js";
import { packEvents, unpackEvents, type PackedEvents } from "../../src/events/pack.js";
import { Spool } from "../../src/events/spool.js";
import { createMetrics } from "../../src/ops/metrics.js";
import { PgStore } from "../../src/store/postgres/index.js";
import type { EventRow, RollupOp } from "../../src/store/port.js";
import { assertPoisonPutAside, Cleanup, testDatabase, sql } from "./scale.js";
import { clickEvent } from "../events.js";
import { tmpDir } from "../helpers.js";

/** Events no counter depends on (tracking opens): the kind a journal answers. */
function opens(n: number, tag: string): EventRow[] {
  return Array.from({ length: n }, (_, i) => clickEvent({ name: "open", source: "tracking", visitor: `${tag}-${i}` }));
}

async function storeOn(cleanup: Cleanup, url: string): Promise<PgStore> {
  const store = new PgStore({ url, watchChanges: false });
  cleanup.defer(() => store.close());
  await store.migrate();
  return store;
}

function journaled(store: PgStore, dir: string, opts: { maxInFlight?: number } = {}) {
  return new EventWriter(store, createMetrics(), {
    rollupIntervalMs: 3_600_000,
    maxInFlight: opts.maxInFlight ?? 2,
    spool: new Spool(path.join(dir, "spool")),
    journal: new Journal(path.join(dir, "event-journal"), false),
  });
}

const segmentsIn = (dir: string) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(".log")) : []);

/** A data directory and a migrated database of the test's own, both removed by cleanup. */
async function setup(cleanup: Cleanup) {
  const dir = tmpDir("clicktrail-pg-journal-");
  cleanup.defer(() => rmSync(dir, { recursive: true, force: true }));
  const db = await testDatabase(cleanup);
  return { dir, db, store: await storeOn(cleanup, db.url) };
}

test("PostgreSQL journal: answered before the commit; after a crash the next start stores every journaled event exactly once", async () => {
  const cleanup = new Cleanup();
  try {
    const { dir, db, store } = await setup(cleanup);
    const a = journaled(store, dir);
    await a.start();

    // committed by the first run (and still in the journal's open segment)
    for (let turn = 0; turn < 3; turn++) await Promise.all(opens(100, `committed${turn}`).map((e) => a.write(e)));
    await a.settled();
    assert.equal(Number((await sql<{ n: string }>(db.url, `SELECT count(*) AS n FROM events`))[0]!.n), 300);

    // the database stops answering this writer's commits (a hung connection): answers do not wait for them
    let hung = 0;
    const appendBatches = store.appendBatches.bind(store);
    store.appendBatches = () => {
      hung++;
      return new Promise(() => {});
    };
    const started = Date.now();
    for (let turn = 0; turn < 4; turn++) await Promise.all(opens(50, `journaled${turn}`).map((e) => a.write(e)));
    assert.ok(hung > 0, "the journaled batches went to the database");
    assert.ok(Date.now() - started < 2000, `answered from the journal in ${Date.now() - started} ms, not waiting for the commits`);
    assert.equal(Number((await sql<{ n: string }>(db.url, `SELECT count(*) AS n FROM events`))[0]!.n), 300);
    // a link click that counts waits for its commit: it is not answered while the database hangs
    let clickAnswered = false;
    void a.write(clickEvent({ link_id: 5, visitor: "click" })).then(() => (clickAnswered = true));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(clickAnswered, false, "a counted link click is answered only once committed");

    // the process dies here (a is never closed); the next start, on the same data directory
    store.appendBatches = appendBatches;
    const next = await storeOn(cleanup, db.url);
    const b = journaled(next, dir);
    await b.start();
    await b.settled();
    const rows = await sql<{ visitor: string; n: string }>(db.url, `SELECT visitor, count(*) AS n FROM events GROUP BY visitor`);
    const twice = rows.filter((r) => Number(r.n) !== 1).map((r) => r.visitor);
    assert.deepEqual(twice, [], "no event stored twice");
    const visitors = new Set(rows.map((r) => r.visitor));
    for (let turn = 0; turn < 3; turn++) for (let i = 0; i < 100; i++) assert.ok(visitors.has(`committed${turn}-${i}`));
    for (let turn = 0; turn < 4; turn++) for (let i = 0; i < 50; i++) assert.ok(visitors.has(`journaled${turn}-${i}`), `journaled${turn}-${i}`);
    // the click was never answered: whether it is stored does not matter, but it is not stored twice either
    assert.equal(rows.length, 500 + (visitors.has("click") ? 1 : 0));

    // a clean shutdown leaves an empty journal
    await Promise.all(opens(10, "last").map((e) => b.write(e)));
    await b.close();
    assert.deepEqual(segmentsIn(path.join(dir, "event-journal")), []);
    assert.equal(Number((await sql<{ n: string }>(db.url, `SELECT count(*) AS n FROM events WHERE visitor LIKE 'last-%'`))[0]!.n), 10);
  } finally {
    await cleanup.run();
  }
});

test("PostgreSQL journal: records hold their events packed; a journal of an earlier version (events as objects) is replayed too", async () => {
  const cleanup = new Cleanup();
  try {
    const { dir, db, store } = await setup(cleanup);
    // a crash left two records: one as earlier versions wrote them, one as this version does
    const journal = new Journal(path.join(dir, "event-journal"), false);
    journal.reset();
    const old = opens(3, "old");
    old[1]!.ua = 'quoted " ua, é';
    const fresh = opens(3, "new");
    fresh[2]!.data = JSON.stringify({ k: [1, "two"] });
    // a shared string (in the packed table once) with quotes, a backslash and characters past the BMP
    for (const e of fresh) e.ua = 'packed "ua" \\ ünï 🎉';
    journal.append(1, JSON.stringify({ id: crypto.randomUUID(), events: old }));
    journal.append(2, JSON.stringify({ id: crypto.randomUUID(), packed: packEvents(fresh) }));
    journal.close();
    const w = journaled(store, dir);
    await w.start();
    await w.settled();
    const rows = await sql<{ visitor: string; ua: string; data: string | null }>(db.url, `SELECT visitor, ua, data FROM events ORDER BY id`);
    assert.deepEqual(
      rows.map((r) => r.visitor),
      ["old-0", "old-1", "old-2", "new-0", "new-1", "new-2"],
    );
    assert.equal(rows[1]!.ua, 'quoted " ua, é');
    assert.equal(rows[5]!.data, JSON.stringify({ k: [1, "two"] }));
    assert.deepEqual(
      rows.slice(3).map((r) => r.ua),
      Array(3).fill('packed "ua" \\ ünï 🎉'),
    );

    // what this version journals is packed: a hung commit leaves the record in the journal to read
    store.appendBatches = () => new Promise(() => {});
    await Promise.all(opens(4, "packed").map((e) => w.write(e)));
    const records = readJournal(path.join(dir, "event-journal"));
    const last = records.at(-1)!.payload as { id: string; packed: PackedEvents };
    assert.deepEqual(
      unpackEvents(last.packed).map((e) => e.visitor),
      ["packed-0", "packed-1", "packed-2", "packed-3"],
    );
  } finally {
    await cleanup.run();
  }
});

test("PostgreSQL journal: a batch the database refuses is kept in rejected.ndjson; the other batches of its commit are stored", async () => {
  const cleanup = new Cleanup();
  try {
    const { dir, db, store } = await setup(cleanup);
    // one commit at a time, so the batches of later turns wait and go to the database together
    const w = journaled(store, dir, { maxInFlight: 1 });
    await w.start();
    const first = w.write(opens(1, "before")[0]!);
    await first;
    // a timestamp no bigint holds: PostgreSQL refuses the whole statement it is in
    await w.write(clickEvent({ name: "open", source: "tracking", visitor: "poison", ts: 1e300 }));
    await w.write(opens(1, "after")[0]!);
    await w.settled();
    await assertPoisonPutAside(db.url, path.join(dir, "event-journal"));
    await w.close();
    assert.deepEqual(segmentsIn(path.join(dir, "event-journal")), []);
  } finally {
    await cleanup.run();
  }
});

test("PostgreSQL group commit: text and numbers of every kind are stored exactly as written (U+0000 dropped)", async () => {
  const cleanup = new Cleanup();
  try {
    const db = await testDatabase(cleanup);
    const store = await storeOn(cleanup, db.url);
    const texts = [
      "",
      "NULL",
      "null",
      'quote " inside',
      'back\\slash \\\\ and \\"',
      "{braces},commas,(parens)",
      "  spaces around  ",
      "new\nline\ttab\r",
      "é ü ß 中文 🎉",
      "nul\u0000byte",
      "\\",
      '"',
      "{}",
    ];
    const events = texts.map((t, i) =>
      clickEvent({
        visitor: `v${i}`,
        ua: t,
        referrer: t === "" ? null : `https://example.com/?q=${t}`,
        data: JSON.stringify({ t }),
        link_id: i % 2 ? Number.MAX_SAFE_INTEGER : null,
        client_ts: i % 3 ? null : -i - 1,
        is_bot: i % 2 === 0,
      }),
    );
    // several batches in one statement, and one alone
    await store.appendBatches([
      { id: crypto.randomUUID(), events: events.slice(0, 5) },
      { id: crypto.randomUUID(), events: [] },
      { id: crypto.randomUUID(), events: events.slice(5, 9) },
    ]);
    await store.appendBatches([{ id: crypto.randomUUID(), events: events.slice(9) }]);
    // and a commit with no events at all
    assert.deepEqual(await store.appendBatches([{ id: crypto.randomUUID(), events: [] }]), { lastId: null, duplicates: 0 });

    type Row = {
      visitor: string;
      ua: string;
      referrer: string | null;
      data: string;
      link_id: string | null;
      client_ts: string | null;
      is_bot: boolean;
    };
    const read = (prefix: string) =>
      sql<Row>(db.url, `SELECT visitor, ua, referrer, data, link_id, client_ts, is_bot FROM events WHERE visitor LIKE '${prefix}%'`);
    /** the row of texts[i], as the i-th event wrote it */
    const check = (r: Row, i: number) => {
      const t = texts[i]!;
      const want = t.replaceAll("\u0000", "");
      assert.equal(r.ua, want, `ua of ${JSON.stringify(t)} (${r.visitor})`);
      assert.equal(r.referrer, t === "" ? null : `https://example.com/?q=${want}`);
      assert.equal(r.data, JSON.stringify({ t }));
      assert.equal(r.link_id === null ? null : Number(r.link_id), i % 2 ? Number.MAX_SAFE_INTEGER : null);
      assert.equal(r.client_ts === null ? null : Number(r.client_ts), i % 3 ? null : -i - 1);
      assert.equal(r.is_bot, i % 2 === 0);
    };
    const rows = await read("v");
    assert.equal(rows.length, texts.length);
    for (const r of rows) check(r, Number(r.visitor.slice(1)));

    // a value every event of a commit shares goes once, beside the arrays: each text, number and boolean as the
    // shared value of a column (three equal events in a commit; one event alone shares every column)
    for (const [i, e] of events.entries()) {
      const copies = i % 2 ? 3 : 1;
      await store.appendBatches([{ id: crypto.randomUUID(), events: Array.from({ length: copies }, () => ({ ...e, visitor: `s${i}` })) }]);
    }
    const shared = await read("s");
    assert.equal(
      shared.length,
      texts.reduce((k, _, i) => k + (i % 2 ? 3 : 1), 0),
    );
    for (const r of shared) check(r, Number(r.visitor.slice(1)));
  } finally {
    await cleanup.run();
  }
});

test("PostgreSQL writer: its statements are prepared once per connection; a connection that lost them is replaced after one failure", async () => {
  const cleanup = new Cleanup();
  try {
    const db = await testDatabase(cleanup);
    // one connection, so the statements' names can be read where they were prepared
    const store = new PgStore({ url: db.url, watchChanges: false, poolSize: 1 });
    cleanup.defer(() => store.close());
    await store.migrate();
    const prepared = async () =>
      (await store.pool.query<{ name: string }>(`SELECT name FROM pg_prepared_statements ORDER BY name`)).rows.map((r) => r.name);
    const count: RollupOp = { kind: "count", scope: "link", scope_id: 1, dim: "browser", slot: 0, bot: false, value: "Firefox", clicks: 1 };
    for (let i = 0; i < 3; i++) {
      await store.appendBatches([{ id: crypto.randomUUID(), events: opens(2, `p${i}`) }]);
      await store.applyRollupChunk([count], i);
    }
    assert.deepEqual(await prepared(), ["clicktrail_append", "clicktrail_rollup"]);

    // the statements are gone from the session (a pooler's DISCARD ALL, a DEALLOCATE): node-postgres does not know.
    // A query on the pool fails once; its connection is closed, and the next one prepares afresh
    await store.pool.query("DEALLOCATE ALL");
    const lost = (e: { code?: string }) => e.code === "26000";
    await assert.rejects(store.appendBatches([{ id: crypto.randomUUID(), events: opens(1, "lost") }]), lost);
    await store.appendBatches([{ id: crypto.randomUUID(), events: opens(1, "again") }]);
    await store.applyRollupChunk([count], 3);
    assert.deepEqual(await prepared(), ["clicktrail_append", "clicktrail_rollup"]);
    // so does a transaction's connection (which node-pg's pool would keep)
    await store.pool.query("DEALLOCATE ALL");
    await assert.rejects(store.applyRollupChunk([count], 4), lost);
    await store.applyRollupChunk([count], 5);
    assert.deepEqual(await prepared(), ["clicktrail_rollup"]);
    const clicks = await sql<{ clicks: string }>(db.url, `SELECT clicks FROM rollups WHERE scope = 'link' AND value = 'Firefox'`);
    assert.equal(Number(clicks[0]!.clicks), 5);
    assert.equal(Number((await sql<{ n: string }>(db.url, `SELECT count(*) AS n FROM events`))[0]!.n), 7);
  } finally {
    await cleanup.run();
  }
});
