import { test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import path from "node:path";
import { EventWriter } from "../src/events/writer.js";
import { createMetrics } from "../src/ops/metrics.js";
import { SqliteStore } from "../src/store/sqlite/index.js";
import type { EventRow } from "../src/store/port.js";
import { clickEvent, newLink } from "./events.js";
import { tmpDir } from "./helpers.js";

const turn = () => new Promise<void>((r) => setImmediate(r));

test("in-process writer: a link's clicks are counted once at every stage (this turn, queued, under commit, answered, in the buffer, being flushed), so a cache fill cannot miss any", async () => {
  const dir = tmpDir();
  const store = new SqliteStore({ file: path.join(dir, "w.db") });
  const writer = new EventWriter(store, createMetrics(), { rollupIntervalMs: 3_600_000, chunkSize: 7 });
  try {
    await store.migrate();
    const p = await store.createProject("p");
    const d = await store.createDomain({ project_id: p.id, hostname: "x.test", fallback_url: null });
    const a = await store.createLink(newLink(p.id, d.id, "a"));
    const b = await store.createLink(newLink(p.id, d.id, "b"));
    writer.countCommittedIn(store);
    await writer.start();
    const click = (linkId: number, i: number, over: Partial<EventRow> = {}): EventRow =>
      clickEvent({ link_id: linkId, domain_id: d.id, visitor: `v${i % 13}`, channel: `c${i % 5}`, ...over });
    // what a cache fill counts: the link read from the store, plus the writer's pending clicks
    const counted = async (id: number) => (await store.getLink(p.id, id))!.clicks + writer.pendingClicks(id);

    // clicks that wait for their commit, a bot among them (not counted), and one on another link
    const writes = [0, 1, 2].map((i) => writer.write(click(a.id, i)));
    writes.push(writer.write(click(a.id, 3, { is_bot: true })), writer.write(click(b.id, 4)));
    assert.equal(writer.pendingClicks(a.id), 3, "this turn's");
    assert.equal(writer.pendingClicks(b.id), 1);
    await turn();
    assert.equal(await counted(a.id), 3, "queued or under commit");
    await Promise.all(writes);
    assert.equal(await counted(a.id), 3, "answered, not yet in the rollup buffer");
    await turn();
    assert.equal(writer.pendingClicks(a.id), 0, "committed: the store counts them (past its rollup watermark)");
    assert.equal(await counted(a.id), 3);

    // a read just after a flush has committed the links' counters (and moved the rollup watermark), before the writer
    // has let go of the flushed clicks: they are counted in the store, and not again by the writer
    let expected = 3;
    const endFlush = store.endRollupFlush.bind(store);
    const atEnd: number[] = [];
    // the click written during the flush (counted from then on)
    let extra = 0;
    store.endRollupFlush = async (...args) => {
      await endFlush(...args);
      atEnd.push((await counted(a.id)) - extra);
    };

    // a rollup flush (many chunks) while more clicks come: every read, at every step of it, counts each click once
    for (let round = 0; round < 3; round++) {
      const batch = Array.from({ length: 120 }, (_, i) => click(i % 3 ? a.id : b.id, round * 120 + i));
      const more = batch.filter((e) => e.link_id === a.id).length;
      await writer.writeMany(batch);
      expected += more;
      let done = false;
      const flush = writer.flushRollups().then(() => (done = true));
      let reads = 0;
      let late: Promise<void> | null = null;
      extra = 0;
      while (!done) {
        assert.equal(await counted(a.id), expected + extra, `round ${round}, read ${reads} during the flush`);
        reads++;
        if (reads === 3) {
          late = writer.write(click(a.id, 999));
          extra = 1;
        }
        // the next read starts a few microtasks later, or a turn later: a different step of the flush each time
        if (reads % 5 === 0) await turn();
        else for (let k = reads % 5; k > 0; k--) await null;
      }
      await flush;
      if (late) await late;
      else await writer.write(click(a.id, 999));
      expected++;
      assert.ok(reads > 3, `the flush took several steps (${reads} reads)`);
      assert.equal(await counted(a.id), expected, `round ${round}, after the flush`);
      assert.deepEqual(atEnd, [expected - 1], "read as the flush ends: not counted twice");
      atEnd.length = 0;
    }
    await writer.flushRollups();
    assert.equal(writer.pendingClicks(a.id), 0);
    assert.equal(store.db.prepare(`SELECT clicks FROM links WHERE id = ?`).pluck().get(a.id), expected, "all in the stored counter");
  } finally {
    await writer.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
