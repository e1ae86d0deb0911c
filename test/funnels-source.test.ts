/**
 * The in-memory project data behind funnels: brought up to date by id, and, with several writers (PostgreSQL), picking
 * up rows another writer committed late behind a higher id, each once. A store in memory plays the database here; the
 * API suites (api-funnels, hiitrack) run the same code on real SQLite and PostgreSQL.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { ProjectData } from "../src/funnels/source.js";
import type { AliasRow, AnalyticsStore, PropertyRow, TimelineRow } from "../src/funnels/store.js";

class MemoryStore {
  events: TimelineRow[] = [];
  aliases: AliasRow[] = [];
  props: PropertyRow[] = [];

  async scanTimeline(_p: number, afterId: number, limit: number, each: (r: TimelineRow) => void): Promise<number> {
    const rows = this.events
      .filter((e) => e[0] > afterId)
      .sort((a, b) => a[0] - b[0])
      .slice(0, limit);
    rows.forEach(each);
    return rows.length;
  }
  async recentTimeline(_p: number, sinceTs: number, uptoId: number): Promise<TimelineRow[]> {
    return this.events.filter((e) => e[1] >= sinceTs && e[0] <= uptoId).sort((a, b) => a[0] - b[0]);
  }
  async scanAliases(_p: number, afterId: number, limit: number): Promise<AliasRow[]> {
    return this.aliases
      .filter((a) => a.id > afterId)
      .sort((a, b) => a.id - b.id)
      .slice(0, limit);
  }
  async scanProperties(_p: number, afterId: number, limit: number): Promise<PropertyRow[]> {
    return this.props
      .filter((p) => p.id > afterId)
      .sort((a, b) => a.id - b.id)
      .slice(0, limit);
  }
}

const ev = (id: number, visitor: string, name: string, ts = Date.now()): TimelineRow => [id, ts, name, visitor, null, "api", null];
const prop = (id: number, visitor: string, value: string): PropertyRow => ({
  id,
  project_id: 1,
  visitor,
  name: "plan",
  op: "add",
  value: JSON.stringify(value),
  ts: id,
});

const names = (p: ProjectData, visitor: string) => {
  const t = p.table;
  const v = t.visitorIndex.get(visitor)!;
  return Array.from({ length: t.offsets[v + 1] - t.offsets[v] }, (_, i) => t.names[t.name[t.offsets[v] + i]]);
};

for (const multiWriter of [false, true]) {
  test(`rows read by id, merges applied backwards (${multiWriter ? "several writers" : "one writer"})`, async () => {
    const store = new MemoryStore();
    const p = new ProjectData(1, store as unknown as AnalyticsStore, multiWriter);
    store.events.push(ev(1, "anon", "open"), ev(2, "u1", "signup"));
    await p.refresh();
    assert.deepEqual(names(p, "u1"), ["signup"]);
    store.aliases.push({ id: 1, alias: "anon", visitor: "u1", created_at: 0 });
    store.events.push(ev(3, "anon", "click"));
    await p.refresh();
    assert.deepEqual(names(p, "u1").sort(), ["click", "open", "signup"]);
    assert.equal(p.table.length, 3);
    await p.refresh();
    assert.equal(p.table.length, 3, "a refresh with nothing new adds nothing");
  });
}

test("several writers: rows committed late behind a higher id are read, each once", async () => {
  const store = new MemoryStore();
  const p = new ProjectData(1, store as unknown as AnalyticsStore, true);
  store.events.push(ev(1, "v", "a"), ev(3, "v", "c"));
  store.props.push(prop(1, "v", "free"), prop(3, "v", "team"));
  store.aliases.push({ id: 2, alias: "x", visitor: "v", created_at: 0 });
  await p.refresh();
  assert.equal(p.table.length, 2);
  // another writer's event 2, property change 2 and alias 1 commit now
  store.events.push(ev(2, "v", "b"));
  store.props.push(prop(2, "v", "pro"));
  store.aliases.push({ id: 1, alias: "y", visitor: "v", created_at: 0 });
  store.events.push(ev(4, "y", "d"));
  await p.refresh();
  assert.equal(p.table.length, 4);
  assert.deepEqual(names(p, "v").sort(), ["a", "b", "c", "d"]);
  const v = p.table.visitorIndex.get("v")!;
  assert.deepEqual(p.valuesOf(v, "plan", "ever", 0).sort(), ["free", "pro", "team"]);
  assert.equal(p.changesOf(v).length, 3, "no change twice");
  await p.refresh();
  assert.equal(p.table.length, 4);
  assert.equal(p.changesOf(v).length, 3);
});
