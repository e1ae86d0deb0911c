/** The tracking routes over real HTTP: minting URLs, clicks and opens recorded, tampering, key rotation, machines, stats. */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { req, ROOT, startApp, tmpDir, type TestApp } from "./helpers.js";
import { SqliteStore } from "../src/store/sqlite/index.js";
import { TrackingKeyring } from "../src/tracking/server/keyring.js";
import { getOpenTrackingPixel } from "../src/tracking/pixel.js";

const VECTORS = JSON.parse(readFileSync(path.join(ROOT, "../shared/testdata/pytracking/vectors.json"), "utf8"));
const BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

let t: TestApp;
before(async () => {
  t = await startApp();
});
after(() => t.close());

const pathOf = (url: string) => new URL(url).pathname;
const get = (url: string, ua = BROWSER) => req(t.base, "GET", pathOf(url), { key: null, headers: { "user-agent": ua } });

async function events(name: string) {
  const r = await req(t.base, "GET", `/api/v1/clicks/export?format=ndjson&name=${name}`);
  return r.body
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((e) => e.source === "tracking");
}

test("the first tracking links of a project, minted at once by many requests, share one new key", async () => {
  // (first in this file: the project has no tracking key yet) a key per concurrent request made every decode derive
  // keys again once there were hundreds of them
  const items = Array.from({ length: 200 }, (_, i) => ({ url: `https://example.com/first/${i}` }));
  const answers = await Promise.all([
    req(t.base, "POST", "/api/v1/tracking/links", { body: { items } }),
    ...Array.from({ length: 10 }, (_, i) => req(t.base, "POST", "/api/v1/tracking/links", { body: { url: `https://example.com/one/${i}` } })),
  ]);
  for (const a of answers) assert.equal(a.status, 200, a.body);
  const keys = (await req(t.base, "GET", "/api/v1/tracking/keys")).json.keys as { kind: string; revoked_at: string | null }[];
  assert.equal(keys.filter((k) => k.kind === "clicktrail").length, 1, JSON.stringify(keys));
  // (the links are followed by the tests below, which count the events they record)
  const kid = (url: string) => new URL(url).pathname.slice(5, 11);
  assert.equal(new Set(answers.flatMap((a) => (a.json.items ?? [a.json]).map((x: { click_url: string }) => kid(x.click_url)))).size, 1);
});

test("a minted click link redirects (302) and records a click with its metadata; the open pixel records an open", async () => {
  const r = await req(t.base, "POST", "/api/v1/tracking/links", {
    body: { url: "https://example.com/offer?x=1&y=é", open: true, metadata: { campaign_id: "spring", customer_id: 42 } },
  });
  assert.equal(r.status, 200, r.body);
  assert.match(r.json.click_url, new RegExp(`^${t.base}/t/c/[A-Za-z0-9_-]+$`));
  assert.match(r.json.open_url, new RegExp(`^${t.base}/t/o/[A-Za-z0-9_-]+$`));
  const c = await get(r.json.click_url);
  assert.equal(c.status, 302);
  // non-ASCII is percent-encoded in the Location header (as pytracking's Django view did)
  assert.equal(c.headers.location, "https://example.com/offer?x=1&y=%C3%A9");
  assert.match(String(c.headers["cache-control"]), /no-store/);
  const o = await fetch(`${t.base}${pathOf(r.json.open_url)}`, { headers: { "user-agent": BROWSER } });
  assert.equal(o.status, 200);
  assert.equal(o.headers.get("content-type"), "image/png");
  assert.match(String(o.headers.get("cache-control")), /no-store, no-cache/);
  // the pixel's exact bytes (sent as a latin1 string, with the headers in one write)
  assert.deepEqual(Buffer.from(await o.arrayBuffer()), getOpenTrackingPixel().bytes);
  assert.equal(Number(o.headers.get("content-length")), getOpenTrackingPixel().bytes.length);
  const clicks = await events("click");
  assert.equal(clicks.length, 1);
  assert.deepEqual(clicks[0].data.metadata, { campaign_id: "spring", customer_id: 42 });
  assert.equal(clicks[0].data.url, "https://example.com/offer?x=1&y=é");
  assert.equal(clicks[0].is_bot, false);
  const opens = await events("open");
  assert.equal(opens.length, 1);
  assert.deepEqual(opens[0].data.metadata, { campaign_id: "spring", customer_id: 42 });
});

test("tampered, truncated and unknown tokens answer 404 (never 5xx) and record nothing", async () => {
  const r = await req(t.base, "POST", "/api/v1/tracking/links", { body: { url: "https://example.com/t" } });
  const token = pathOf(r.json.click_url).slice("/t/c/".length);
  const flip = token.slice(0, 10) + (token[10] === "A" ? "B" : "A") + token.slice(11);
  const before = (await events("click")).length;
  for (const bad of [flip, token.slice(0, token.length - 3), "e30=", "not-a-token", "A".repeat(300)]) {
    const x = await req(t.base, "GET", `/t/c/${bad}`, { key: null });
    assert.equal(x.status, 404, bad);
    assert.equal((await req(t.base, "GET", `/t/o/${bad}`, { key: null })).status, 404, bad);
  }
  assert.equal((await events("click")).length, before);
});

test("key rotation: a new key writes, the old one still reads until it is revoked", async () => {
  const old = await req(t.base, "POST", "/api/v1/tracking/links", { body: { url: "https://example.com/old" } });
  const k = await req(t.base, "POST", "/api/v1/tracking/keys", { body: {} });
  assert.equal(k.status, 201);
  const keys = (await req(t.base, "GET", "/api/v1/tracking/keys")).json.keys;
  assert.ok(keys.length >= 2);
  assert.equal(
    keys.some((x: Record<string, unknown>) => "secret" in x),
    false,
    "secrets are never listed",
  );
  const fresh = await req(t.base, "POST", "/api/v1/tracking/links", { body: { url: "https://example.com/new" } });
  // used several times (so verified from the keyring's cache of verified tokens, too) before the revocation
  for (let i = 0; i < 3; i++) assert.equal((await get(old.json.click_url)).status, 302);
  assert.equal((await get(fresh.json.click_url)).status, 302);
  const first = keys.find((x: { id: number }) => x.id !== k.json.id);
  assert.equal((await req(t.base, "DELETE", `/api/v1/tracking/keys/${first.id}`)).status, 204);
  assert.equal((await get(old.json.click_url)).status, 404, "signed by the revoked key");
  assert.equal((await get(fresh.json.click_url)).status, 302);
});

test("pytracking links made with an imported Fernet key keep working (the vectors' encrypted links)", async () => {
  const imp = await req(t.base, "POST", "/api/v1/tracking/keys", { body: { kind: "fernet", secret: VECTORS.fernet_key } });
  assert.equal(imp.status, 201, imp.body);
  const encrypted = VECTORS.vectors.filter((v: { encrypted: boolean }) => v.encrypted);
  assert.ok(encrypted.length > 0);
  for (const v of encrypted) {
    const r = await req(t.base, "GET", `/t/${v.kind === "click" ? "c" : "o"}/${v.encoded_path}`, { key: null, headers: { "user-agent": BROWSER } });
    if (v.kind === "click") {
      assert.equal(r.status, 302, v.id);
      assert.equal(r.headers.location, new URL(v.url_to_track).href, v.id);
    } else assert.equal(r.status, 200, v.id);
  }
  // and the API mints pytracking-format links too
  const m = await req(t.base, "POST", "/api/v1/tracking/links", {
    body: { url: "https://example.com/py", format: "pytracking", metadata: { a: 1 } },
  });
  assert.equal(m.status, 200, m.body);
  assert.match(m.json.click_url, /\/t\/c\/gAAAAA/);
  assert.equal((await get(m.json.click_url)).headers.location, "https://example.com/py");
});

test("unsigned pytracking links are refused unless their target host is allowed", async () => {
  const plain = VECTORS.vectors.find(
    (v: { encrypted: boolean; kind: string; url_to_track: string | null }) => !v.encrypted && v.kind === "click" && v.url_to_track,
  );
  assert.equal((await req(t.base, "GET", `/t/c/${plain.encoded_path}`, { key: null })).status, 404);
  const host = new URL(plain.url_to_track).hostname;
  const t2 = await startApp({ CLICKTRAIL_TRACKING_UNSIGNED_HOSTS: host });
  try {
    const r = await req(t2.base, "GET", `/t/c/${plain.encoded_path}`, { key: null, headers: { "user-agent": BROWSER } });
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, new URL(plain.url_to_track).href);
  } finally {
    await t2.close();
  }
});

test("machine opens and clicks are flagged apart: Apple Mail Privacy Protection, security scanners", async () => {
  const r = await req(t.base, "POST", "/api/v1/tracking/links", {
    body: { url: "https://example.com/m", open: true, metadata: { campaign_id: "machines" } },
  });
  await get(r.json.open_url, "Mozilla/5.0");
  await get(r.json.click_url, "Mozilla/5.0 (compatible; Proofpoint URL Defense)");
  await get(r.json.open_url, BROWSER);
  // and again, after a person's (whose data is kept per token): each request's own machine, or none
  await get(r.json.click_url, BROWSER);
  await get(r.json.open_url, "Mozilla/5.0");
  await get(r.json.click_url, "Mozilla/5.0 (compatible; Proofpoint URL Defense)");
  const opens = (await events("open")).filter((e) => e.data.metadata.campaign_id === "machines");
  assert.deepEqual(
    opens.map((e) => [e.is_bot, e.data.machine ?? null]),
    [
      [true, "apple_mpp"],
      [false, null],
      [true, "apple_mpp"],
    ],
  );
  const clicks = (await events("click")).filter((e) => e.data.metadata.campaign_id === "machines");
  assert.deepEqual(
    clicks.map((e) => [e.is_bot, e.data.machine ?? null, e.data.url]),
    [
      [true, "scanner", "https://example.com/m"],
      [false, null, "https://example.com/m"],
      [true, "scanner", "https://example.com/m"],
    ],
  );
  const s = await req(t.base, "GET", "/api/v1/tracking/stats?field=campaign_id");
  assert.equal(s.status, 200);
  const row = s.json.values.find((v: { value: string }) => v.value === "machines");
  assert.deepEqual(row, { value: "machines", opens: 1, unique_opens: 1, clicks: 1, unique_clicks: 1, machine_opens: 2, machine_clicks: 2 });
});

test("a token percent-encoded by the client still verifies; a broken escape is a 404", async () => {
  const r = await req(t.base, "POST", "/api/v1/tracking/links", { body: { url: "https://example.com/pct", metadata: { campaign_id: "percent" } } });
  const path = pathOf(r.json.click_url);
  const escaped =
    path.slice(0, 5) + [...path.slice(5)].map((ch, i) => (i % 3 === 0 ? `%${ch.charCodeAt(0).toString(16).toUpperCase()}` : ch)).join("");
  assert.notEqual(escaped, path);
  const c = await req(t.base, "GET", escaped, { key: null, headers: { "user-agent": BROWSER } });
  assert.equal(c.status, 302);
  assert.equal(c.headers.location, "https://example.com/pct");
  const broken = await req(t.base, "GET", `${path}%E0%A4%A`, { key: null, headers: { "user-agent": BROWSER } });
  assert.equal(broken.status, 404);
  const clicks = (await events("click")).filter((e) => e.data.metadata.campaign_id === "percent");
  assert.equal(clicks.length, 1);
});

test("bad requests to the tracking API are 400s naming the field", async () => {
  const bad = await req(t.base, "POST", "/api/v1/tracking/links", { body: { url: "javascript:alert(1)" } });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.field, "url");
  const items = await req(t.base, "POST", "/api/v1/tracking/links", { body: { items: [{ url: "https://ok.example/" }, { url: "ftp://x" }] } });
  assert.equal(items.status, 400);
  assert.equal(items.json.field, "items[1].url");
  const batch = await req(t.base, "POST", "/api/v1/tracking/links", { body: { items: [{ url: "https://a.example/" }, { open: true }] } });
  assert.equal(batch.status, 200);
  assert.equal(batch.json.items.length, 2);
  assert.ok(batch.json.items[1].open_url);
});

test("keyring: a verified token is answered from its cache until it expires, and not after", async () => {
  const dir = tmpDir();
  const store = new SqliteStore({ file: path.join(dir, "k.db") });
  try {
    await store.migrate();
    const p = await store.createProject("p");
    const keyring = new TrackingKeyring(store, [], async () => p.id);
    const url = await keyring.encode(p.id, "open", "https://t.example", undefined, { n: 1 }, { expiresInSeconds: 2 });
    const token = decodeURIComponent(new URL(url).pathname.slice(5));
    const first = await keyring.decode("open", token);
    assert.equal(first?.projectId, p.id);
    // the same token again: the same answer (from the cache), however often
    for (let i = 0; i < 3; i++) assert.deepEqual(await keyring.decode("open", token), first);
    // an open token is not a click token, cached or not
    assert.equal(await keyring.decode("click", token), null);
    const expiresAt = first!.result.expiresAt!;
    await new Promise((r) => setTimeout(r, expiresAt * 1000 - Date.now() + 50));
    assert.equal(await keyring.decode("open", token), null, "expired, though cached");
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
