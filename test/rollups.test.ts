import { test } from "node:test";
import { clickEvent, newLink } from "./events.js";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import path from "node:path";
import { EventWriter } from "../src/events/writer.js";
import { RollupBuffer, rollupOps } from "../src/events/rollup.js";
import { hash32, VisitorSketch } from "../src/events/sketch.js";
import { createMetrics } from "../src/ops/metrics.js";
import { SqliteStore } from "../src/store/sqlite/index.js";
import { LEGACY_CHUNK_SIZE, ROLLUP_FORMAT, type EventRow, type Link, type RollupOp } from "../src/store/port.js";
import { tmpDir } from "./helpers.js";
import { checkBreakdowns } from "./breakdowns.js";

test("visitor sketches: exact while small, about 1.6 % error when large, merging is idempotent", () => {
  const small = new VisitorSketch();
  for (let i = 0; i < 200; i++) small.add(hash32(`v${i % 100}`));
  assert.equal(small.count(), 100);
  const roundTrip = VisitorSketch.from(small.toBuffer());
  assert.equal(roundTrip.count(), 100);

  for (const n of [1000, 50_000, 300_000]) {
    const s = new VisitorSketch();
    for (let i = 0; i < n; i++) s.add(hash32(`visitor-${i}`));
    const err = Math.abs(s.count() - n) / n;
    assert.ok(err < 0.05, `${n} visitors counted as ${s.count()}`);
    const again = VisitorSketch.from(s.toBuffer());
    again.merge(s);
    again.merge(VisitorSketch.from(s.toBuffer()));
    assert.equal(again.count(), s.count(), "merging a sketch into itself changes nothing");
  }
  const a = new VisitorSketch();
  const b = new VisitorSketch();
  for (let i = 0; i < 20_000; i++) a.add(hash32(`x${i}`));
  for (let i = 10_000; i < 30_000; i++) b.add(hash32(`x${i}`));
  a.merge(b);
  assert.ok(Math.abs(a.count() - 30_000) / 30_000 < 0.05, `union counted as ${a.count()}`);
});

test("visitor sketches: exact up to 256 visitors whatever the repeats and merges, dense past them, the same bytes for the same set", () => {
  for (let run = 0; run < 200; run++) {
    const distinct = 1 + Math.floor(Math.random() * 300);
    const pool = Array.from({ length: distinct }, (_, i) => hash32(`run${run}-v${i}`));
    const a = new VisitorSketch();
    const b = new VisitorSketch();
    const seen = new Set<number>();
    for (let i = 0; i < distinct * 3; i++) {
      const h = pool[Math.floor(Math.random() * distinct)]!;
      (i % 2 ? a : b).add(h);
      seen.add(h);
    }
    const both = VisitorSketch.from(a.toBuffer());
    both.merge(VisitorSketch.from(b.toBuffer()));
    both.merge(b);
    if (seen.size <= 256) {
      assert.equal(both.count(), seen.size, `run ${run}: ${seen.size} visitors`);
      const buf = both.toBuffer();
      assert.equal(buf[0], 1);
      // one set, one encoding: the hashes once each, ascending, whatever the order they came in
      const sorted = [...seen].sort((x, y) => x - y);
      assert.deepEqual(
        buf,
        Buffer.concat([
          Buffer.from([1]),
          ...sorted.map((h) => {
            const w = Buffer.alloc(4);
            w.writeUInt32LE(h);
            return w;
          }),
        ]),
      );
    } else {
      assert.equal(both.toBuffer()[0], 2, `run ${run}: ${seen.size} visitors stay sparse`);
      assert.ok(Math.abs(both.count() - seen.size) / seen.size < 0.1, `run ${run}: ${seen.size} counted as ${both.count()}`);
    }
  }
});

function click(i: number, link: number, ts: number): EventRow {
  return clickEvent({
    ts,
    visitor: `v${i % 37}`,
    link_id: link,
    domain_id: 1,
    channel: i % 2 ? "default" : "mail",
    platform: "linux",
    ua: "ua",
    referrer: i % 3 ? null : "https://news.example/x",
    browser: "Chrome",
    os: "Linux",
    device: "desktop",
    is_bot: i % 10 === 0,
  });
}

async function totals(store: SqliteStore) {
  const r = store.db
    .prepare(`SELECT scope, scope_id, sum(clicks) AS n FROM rollups WHERE dim = 'total' GROUP BY scope, scope_id ORDER BY scope, scope_id`)
    .all();
  const byChannel = store.db
    .prepare(`SELECT value, sum(clicks) AS n FROM rollups WHERE scope = 'project' AND dim = 'channel' GROUP BY value ORDER BY value`)
    .all();
  // as the stats read them: the empty referrer (direct) and the name derived from the total (see ROLLUP_FORMAT)
  const range = { scope: "project" as const, scope_id: 1, from: 0, to: Date.UTC(2030, 0, 1), includeBots: true };
  const breakdowns = await Promise.all((["referrer_host", "name", "country"] as const).map((d) => store.statsBreakdown(range, d, 10)));
  return { r, byChannel, breakdowns };
}

/** A migrated store with five links, and 3,000 clicks on them a minute apart (not written yet). */
async function clicksOnFiveLinks(file: string) {
  const store = new SqliteStore({ file });
  await store.migrate();
  const p = await store.createProject("p");
  const d = await store.createDomain({ project_id: p.id, hostname: "x.test", fallback_url: null });
  const links: Link[] = [];
  for (let i = 0; i < 5; i++) links.push(await store.createLink(newLink(p.id, d.id, `s${i}`)));
  const t0 = Date.UTC(2026, 10, 20, 10);
  return { store, events: Array.from({ length: 3000 }, (_, i) => click(i, links[i % 5]!.id, t0 + i * 60_000)) };
}

/** Totals of `events` written through a writer that finishes normally (the reference for the crash tests). */
async function referenceTotals(events: EventRow[]) {
  const refDir = tmpDir();
  const ref = new SqliteStore({ file: path.join(refDir, "ref.db") });
  try {
    await ref.migrate();
    const w = new EventWriter(ref, createMetrics(), { chunkSize: 50 });
    await w.start();
    await w.writeMany(events);
    await w.close();
    return await totals(ref);
  } finally {
    await ref.close();
    rmSync(refDir, { recursive: true, force: true });
  }
}

test("an interrupted rollup flush is finished exactly once after a crash, and the rest replayed", async () => {
  const dir = tmpDir();
  try {
    const { store, events } = await clicksOnFiveLinks(path.join(dir, "r.db"));
    const want = await referenceTotals(events);

    // a crash in the middle of a flush: events committed, some chunks applied, the watermark not advanced
    const half = events.slice(0, 2000);
    const last = await store.appendEvents(half);
    const buf = new RollupBuffer(0);
    buf.add(half, last);
    const taken = buf.take();
    await store.beginRollupFlush(taken.from, taken.to, 50);
    await store.applyRollupChunk(taken.ops.slice(0, 50), 0);
    await store.applyRollupChunk(taken.ops.slice(100, 150), 2);
    // …and more events committed whose rollups were only in memory
    await store.appendEvents(events.slice(2000));

    const w = new EventWriter(store, createMetrics(), { chunkSize: 50 });
    await w.start();
    await w.close();
    assert.deepEqual(await totals(store), want);
    const state = await store.rollupState();
    assert.equal(state.pending, null);
    assert.equal(state.watermark, 3000);
    await store.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("an interrupted rollup flush is finished in the chunks it was cut into, whatever the chunk size of the writer that finishes it", async () => {
  const dir = tmpDir();
  try {
    // a flush cut into chunks of 40 (sized); one begun by a version that made a row for every dimension value (format 1,
    // see ROLLUP_FORMAT), whose marker did not say so; one written before the size was recorded either: chunks of 1,000
    for (const recorded of ["sized", "format 1", "legacy"] as const) {
      const { store, events } = await clicksOnFiveLinks(path.join(dir, `${recorded}.db`));
      const want = await referenceTotals(events);

      const last = await store.appendEvents(events);
      const buf = new RollupBuffer(0);
      buf.add(events, last);
      const format = recorded === "sized" ? ROLLUP_FORMAT : 1;
      const taken = buf.take(format);
      const size = recorded === "legacy" ? LEGACY_CHUNK_SIZE : 40;
      assert.ok(taken.ops.length > 2 * size, `enough row changes for three chunks (${taken.ops.length})`);
      await store.beginRollupFlush(taken.from, taken.to, size);
      const marker = { sized: null, "format 1": `${taken.from}:${taken.to}:${size}`, legacy: `${taken.from}:${taken.to}` }[recorded];
      if (marker) store.db.prepare(`UPDATE meta SET value = ? WHERE key = 'rollup_pending'`).run(marker);
      assert.equal((await store.rollupState()).pending?.chunkSize, size);
      assert.equal((await store.rollupState()).pending?.format, format);
      await store.applyRollupChunk(taken.ops.slice(0, size), 0);
      await store.applyRollupChunk(taken.ops.slice(2 * size, 3 * size), 2);

      // the writer that finishes it cuts its own flushes otherwise (a size that does not divide either)
      const w = new EventWriter(store, createMetrics(), { chunkSize: 77 });
      await w.start();
      await w.close();
      assert.deepEqual(await totals(store), want, `${recorded}: every click counted once`);
      assert.equal((await store.rollupState()).pending, null);
      await store.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("rollup row changes come in the order of one sort of their keys (an interrupted flush is resumed by position)", async () => {
  // link ids that are prefixes of each other (1, 12, 123), several scopes, bots, dimensions with and without values
  const t0 = Date.UTC(2026, 10, 20, 10);
  const events = Array.from({ length: 5000 }, (_, i) =>
    clickEvent({
      ...click(i, [1, 12, 123, 2, 21, 1234][i % 6]!, t0 + i * 97_000),
      domain_id: [1, 11][i % 2]!,
      campaign_id: i % 5 ? null : [3, 31][i % 2]!,
      source: i % 4 ? "link" : "campaign",
      platform: ["desktop", "ios", null][i % 3]!,
    }),
  );
  const a = new RollupBuffer(0);
  a.add(events, events.length);
  const ops = a.take().ops;
  const key = (o: RollupOp) =>
    o.kind === "count"
      ? `0\u0000${o.scope}\u0000${o.scope_id}\u0000${o.dim}\u0000${o.slot}\u0000${o.bot ? 1 : 0}\u0000${o.value}`
      : `1\u0000${o.scope}\u0000${o.scope_id}\u0000${o.hour}\u0000${o.bot ? 1 : 0}`;
  const keys = ops.map(key);
  assert.ok(keys.length > 1000);
  assert.deepEqual(keys, [...keys].sort(), "counts, then sketches, each in key order");
  // built between commits (rollupOps, pausing) or at once (take): the same changes in the same order
  const b = new RollupBuffer(0);
  b.add(events, events.length);
  let pauses = 0;
  const sliced = await rollupOps(b.detach(), async () => void pauses++);
  assert.deepEqual(sliced.map(key), keys);
  assert.ok(pauses > 0, "a large flush pauses while it builds its changes");
});

test("rollups: events added in one batch (consecutive events share their dimension key) count as added one by one", () => {
  const t0 = Date.UTC(2026, 10, 20, 10, 14, 50);
  // runs of equal dimensions, broken by each field in turn, across a slot boundary (15 min) and bots
  const fields: Partial<EventRow>[] = [
    { browser: "Firefox" },
    { os: "iOS" },
    { device: "mobile" },
    { platform: "ios" },
    { channel: "qr" },
    { country: "DE" },
    { rule: "r1" },
    { referrer: "https://news.example/a" },
    { referrer: "https://news.example/b" },
    { name: "click_refused" },
    { is_bot: true },
  ];
  const events = Array.from({ length: 3000 }, (_, i) =>
    clickEvent({
      ...click(i, [1, 2, 3][i % 3]!, t0 + i * 700),
      channel: "default",
      referrer: null,
      is_bot: false,
      // every other run the base, so each change of run changes exactly one field
      ...(Math.floor(i / 7) % 2 ? fields[Math.floor(i / 14) % fields.length] : {}),
    }),
  );
  const together = new RollupBuffer(0);
  together.add(events, events.length);
  const oneByOne = new RollupBuffer(0);
  events.forEach((e, i) => oneByOne.add([e], i + 1));
  // (a sketch change merges into what is stored: compared by what it writes over nothing)
  const plain = (ops: RollupOp[]) => ops.map((o) => (o.kind === "count" ? o : { ...o, merge: o.merge(null) }));
  const a = plain(together.take().ops);
  assert.ok(a.filter((o) => o.kind === "count").length > 100);
  assert.deepEqual(a, plain(oneByOne.take().ops));
});

test("breakdowns read the empty value as the total less the others and a click scope's name as its total, over each hour a range touches", async () => {
  const dir = tmpDir();
  const store = new SqliteStore({ file: path.join(dir, "b.db") });
  try {
    await store.migrate();
    await checkBreakdowns(store);
    const stored = store.db.prepare(`SELECT count(*) FROM rollups WHERE value = '' AND dim <> 'total' OR dim = 'name'`).pluck().get();
    assert.equal(stored, 0, "no row for an empty value, nor for a click scope's name");
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("rollups: kinds of click that alternate (more of them than add() remembers) count as the same clicks grouped by kind", () => {
  const t0 = Date.UTC(2026, 10, 20, 10, 14, 30);
  const kinds: Partial<EventRow>[] = [
    { browser: "Chrome", os: "Windows", device: "desktop", platform: "windows" },
    { browser: "Mobile Safari", os: "iOS", device: "mobile", platform: "ios", rule: "ios" },
    { browser: "Chrome", os: "Android", device: "mobile", platform: "android", rule: "android" },
    { browser: "Safari", os: "Mac OS", device: "desktop", platform: "macos" },
    { browser: "Chrome", os: "Windows", device: "desktop", platform: "windows", rule: "german" },
    { browser: "Firefox", os: "Linux", device: "desktop", platform: "linux", referrer: "https://news.example/a" },
    { browser: "Firefox", os: "Linux", device: "desktop", platform: "linux", referrer: "https://news.example/b" },
    { browser: "Chrome", os: "Windows", device: "desktop", platform: "windows", channel: "qr" },
    { browser: "Chrome", os: "Windows", device: "desktop", platform: "windows", country: "DE" },
    { browser: "Chrome", os: "Windows", device: "desktop", platform: "windows", is_bot: true },
    { browser: "Chrome", os: "Windows", device: "desktop", platform: "windows", name: "click_refused" },
    { browser: "Edge", os: "Windows", device: "desktop", platform: "windows" },
  ];
  // kinds in turn, in cycles of 3 to 12 of them, across a slot boundary (15 min), each event a copy (as the writer
  // thread's are, read from the journal)
  const events = Array.from({ length: 4000 }, (_, i) => {
    const cycle = 3 + (Math.floor(i / 500) % 10);
    return clickEvent({
      ...click(i, [1, 2, 3][(i % 5) % 3]!, t0 + i * 300),
      channel: "default",
      referrer: null,
      is_bot: false,
      ...structuredClone(kinds[i % cycle]!),
    });
  });
  const alternating = new RollupBuffer(0);
  for (let from = 0; from < events.length; from += 120) alternating.add(events.slice(from, from + 120), from + 120);
  // the same events grouped by slot and kind: each kind once per slot, so add() never finds one it has seen
  const slotOf = (e: EventRow) => e.ts - (e.ts % (15 * 60_000));
  const kindOf = (e: EventRow) =>
    JSON.stringify([slotOf(e), e.browser, e.os, e.device, e.platform, e.rule, e.referrer, e.channel, e.country, e.is_bot, e.name]);
  const grouped = [...events].sort((a, b) => (kindOf(a) < kindOf(b) ? -1 : kindOf(a) > kindOf(b) ? 1 : 0));
  const reference = new RollupBuffer(0);
  reference.add(grouped, events.length);
  const plain = (ops: RollupOp[]) => ops.map((o) => (o.kind === "count" ? o : { ...o, merge: o.merge(null) }));
  const a = plain(alternating.take().ops);
  assert.ok(a.filter((o) => o.kind === "count").length > 100, `${a.length} row changes`);
  assert.deepEqual(a, plain(reference.take().ops));
});
