/**
 * The redirect path's link cache (LinkResolver) on a real SQLite store: concurrent requests for a link not cached
 * share one read, and a read under way when the link changes is not cached; the cache itself.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import path from "node:path";
import { LinkResolver, SlugCache } from "../src/links/resolver.js";
import { SqliteStore } from "../src/store/sqlite/index.js";
import { newLink } from "./events.js";
import { tmpDir } from "./helpers.js";

async function setup() {
  const dir = tmpDir();
  const store = new SqliteStore({ file: path.join(dir, "r.db") });
  await store.migrate();
  const p = await store.createProject("p");
  const d = await store.createDomain({ project_id: p.id, hostname: "x.test", fallback_url: null });
  const link = await store.createLink(newLink(p.id, d.id, "hot"));
  // the store's reads by slug, counted; `gate` (when set) holds each answer, read at once, until it resolves
  const reads: string[] = [];
  let gate: Promise<void> | null = null;
  const read = store.getLinkBySlug.bind(store);
  store.getLinkBySlug = async (domainId: number, slug: string) => {
    reads.push(slug);
    const held = gate;
    const r = await read(domainId, slug);
    if (held) await held;
    return r;
  };
  const close = () => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  };
  return { store, p, d, link, reads, setGate: (g: Promise<void> | null) => (gate = g), close };
}

test("resolver: concurrent requests for a link not cached share one read of the store, and then hit the cache", async () => {
  const s = await setup();
  try {
    const resolver = new LinkResolver(s.store);
    const got = await Promise.all(Array.from({ length: 50 }, () => resolver.link(s.d.id, "hot")));
    assert.deepEqual(s.reads, ["hot"], "one read for 50 requests");
    assert.ok(
      got.every((r) => r === got[0] && r!.link.id === s.link.id),
      "all of them get the same resolved link",
    );
    assert.equal(resolver.cachedLink(s.d.id, "hot"), got[0]);
    // unknown slugs too (cached as not found)
    const none = await Promise.all(Array.from({ length: 10 }, () => resolver.link(s.d.id, "nope")));
    assert.ok(none.every((r) => r === null));
    assert.deepEqual(s.reads, ["hot", "nope"]);
    assert.equal(resolver.cachedLink(s.d.id, "nope"), null);
    // a failed read is shared by the requests waiting for it, and not cached: the next request reads again
    s.store.close();
    const failed = await Promise.allSettled([resolver.link(s.d.id, "other"), resolver.link(s.d.id, "other")]);
    assert.ok(failed.every((r) => r.status === "rejected"));
    assert.deepEqual(s.reads, ["hot", "nope", "other"]);
    assert.equal(resolver.cachedLink(s.d.id, "other"), undefined);
  } finally {
    s.close();
  }
});

test("resolver: a read under way when its link changes is not cached; requests after the change read the new link", async () => {
  const s = await setup();
  try {
    const resolver = new LinkResolver(s.store);
    let open!: () => void;
    s.setGate(new Promise<void>((r) => (open = r)));
    const before = resolver.link(s.d.id, "hot");
    await new Promise((r) => setImmediate(r));
    // the link changes (as LinkService does: store, then invalidate) while the first read waits
    s.setGate(null);
    await s.store.updateLink(s.p.id, s.link.id, { target: "https://changed.test/" });
    resolver.invalidateLink(s.d.id, "hot");
    const after = await resolver.link(s.d.id, "hot");
    assert.equal(after!.link.target, "https://changed.test/");
    open();
    await before;
    assert.equal(s.reads.length, 2, "the request after the change did not wait for the read from before it");
    assert.equal(resolver.cachedLink(s.d.id, "hot")!.link.target, "https://changed.test/", "the older read did not overwrite the cache");

    // the same when everything is dropped (a change made by another process)
    s.setGate(new Promise<void>((r) => (open = r)));
    resolver.invalidateAll();
    const stale = resolver.link(s.d.id, "hot");
    await new Promise((r) => setImmediate(r));
    s.setGate(null);
    await s.store.updateLink(s.p.id, s.link.id, { target: "https://again.test/" });
    resolver.invalidateAll();
    assert.equal((await resolver.link(s.d.id, "hot"))!.link.target, "https://again.test/");
    open();
    await stale;
    assert.equal(resolver.cachedLink(s.d.id, "hot")!.link.target, "https://again.test/");
  } finally {
    s.close();
  }
});

test("resolver: a domain is served from the cache until a change drops it, then read again", async () => {
  const s = await setup();
  try {
    const resolver = new LinkResolver(s.store);
    assert.equal(resolver.cachedDomain("x.test"), undefined);
    assert.equal((await resolver.domain("x.test"))!.fallback_url, null);
    for (let i = 0; i < 3; i++) assert.equal(resolver.cachedDomain(Buffer.from("x.test").toString("latin1"))!.fallback_url, null);
    assert.equal(resolver.cachedDomain("other.test"), undefined);
    assert.equal(await resolver.domain("other.test"), null);
    assert.equal(resolver.cachedDomain("other.test"), null, "an unknown host is cached as such");
    await s.store.updateDomain(s.p.id, s.d.id, { fallback_url: "https://example.com/" });
    assert.equal(resolver.cachedDomain("x.test")!.fallback_url, null, "the cache answers until it is told of the change");
    resolver.invalidateAll();
    assert.equal(resolver.cachedDomain("x.test"), undefined, "dropped: neither the cache nor the hosts looked up last keep it");
    assert.equal((await resolver.domain("x.test"))!.fallback_url, "https://example.com/");
    assert.equal(resolver.cachedDomain("x.test")!.fallback_url, "https://example.com/");
  } finally {
    s.close();
  }
});

test("resolver's slug cache: bounded, what is used stays, a deletion reaches both generations", () => {
  const c = new SlugCache<number>(100);
  for (let i = 0; i < 1000; i++) {
    c.set(1 + (i % 3), `s${i}`, i);
    // one entry used all along stays however many others come and go
    if (i === 0) c.set(9, "hot", -1);
    assert.equal(c.get(9, "hot"), -1, `the entry used all along, after ${i + 1} others`);
  }
  let held = 0;
  for (let i = 0; i < 1000; i++) if (c.get(1 + (i % 3), `s${i}`) !== undefined) held++;
  assert.ok(held <= 100, `${held} entries held for a cache of 100`);
  assert.equal(c.get(1 + (999 % 3), "s999"), 999, "the last set is held");
  assert.equal(c.get(2, "s999"), undefined, "a slug is looked up in its own domain");
  // an entry found in the old generation moves to the young one; a deletion removes it from both
  c.set(5, "x", 1);
  for (let i = 0; i < 50; i++) c.set(6, `y${i}`, i);
  assert.equal(c.get(5, "x"), 1);
  c.delete(5, "x");
  assert.equal(c.get(5, "x"), undefined);
  c.set(5, "x", 2);
  c.clear();
  assert.equal(c.get(5, "x"), undefined);
  assert.equal(c.get(9, "hot"), undefined);
});
