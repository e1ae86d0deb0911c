/**
 * The browser tracker (/tracker.js) in real Chromium (Debian's, via playwright-core) against a real server. On the
 * touch-table example (examples/touch-table/): taps become stored events with their element and coordinates, batched;
 * the session stops after the idle time and the next tap starts another; a reload with the network cut keeps the queue
 * in localStorage and sends it, once, when the network is back, and so does a page opened later. Embedded by a script
 * tag on another origin: data-key, page views (SPA navigation too), outbound links, the opt-out function, optOut(),
 * Do Not Track. And the script's size. Screenshots in test-results/dashboard/tracker-*.png.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { gzipSync } from "node:zlib";
import type { Browser, BrowserContext, Page, Request } from "playwright-core";
import { chromiumAvailable, launch, screenshot, watchedPage } from "./browser.js";
import { req, ROOT, startApp, type TestApp } from "./helpers.js";

const TRACKER = path.join(ROOT, "src/web/tracker.js");
const VIEWPORT = { width: 1280, height: 800 };
const DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

interface App {
  id: number;
  name: string;
  key: string;
}
interface StoredEvent {
  name: string;
  data: any;
  session: string | null;
  visitor: string | null;
  ts: string;
  client_ts: string | null;
}
interface StoredSession {
  id: number;
  token?: string;
  started_at: string;
  stopped_at: string | null;
  stop_reason?: string | null;
  event_count: number;
}

let t: TestApp;
let browser: Browser;

const skip = !chromiumAvailable() && process.env.CI !== "true" ? "Chromium is not installed (apt-get install chromium)" : false;

before(async () => {
  if (skip) return;
  t = await startApp();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await t?.close();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function createApp(name: string): Promise<App> {
  const r = await req(t.base, "POST", "/api/v1/apps", { body: { name } });
  assert.equal(r.status, 201, r.body);
  assert.equal(typeof r.json.key, "string");
  return r.json;
}

/** The app's stored events (of one name), oldest first. */
async function events(app: App, name?: string): Promise<StoredEvent[]> {
  const r = await req(t.base, "GET", `/api/v1/events?app=${app.id}&limit=1000`);
  assert.equal(r.status, 200, r.body);
  const all = (r.json.events as StoredEvent[]).filter((e) => name === undefined || e.name === name);
  return all.sort((a, b) => (a.client_ts ?? a.ts).localeCompare(b.client_ts ?? b.ts));
}

async function sessions(app: App): Promise<StoredSession[]> {
  const r = await req(t.base, "GET", `/api/v1/sessions?app=${app.id}`);
  assert.equal(r.status, 200, r.body);
  return (r.json.sessions as StoredSession[]).sort((a, b) => a.started_at.localeCompare(b.started_at));
}

/** An event's session among the app's sessions (events name a session by its token). */
const sessionOf = (all: StoredSession[], e: StoredEvent) => all.find((s) => s.token === e.session || String(s.id) === String(e.session));

/** Polls until `ok` holds for what `get` returns, or fails saying what it waited for. */
async function until<T>(what: string, get: () => Promise<T>, ok: (v: T) => boolean, timeout = 15_000): Promise<T> {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await get();
    if (ok(v)) return v;
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}; last: ${JSON.stringify(v)}`);
    await sleep(100);
  }
}

const touchTable = (app: App, idleSeconds: number) =>
  `${t.base}/examples/touch-table/index.html?key=${encodeURIComponent(app.key)}&idle=${idleSeconds}`;

async function openTable(context: BrowserContext, app: App, idleSeconds: number) {
  const w = await watchedPage(context);
  await w.page.goto(touchTable(app, idleSeconds));
  await w.page.waitForFunction(() => (window as any).clicktrail && document.body.dataset.state === "idle");
  return w;
}

/** Whole-pixel coordinates inside an element (its centre, or an offset from its top left corner). */
async function pointIn(page: Page, selector: string, offset?: { x: number; y: number }) {
  const box = (await page.locator(selector).boundingBox())!;
  assert.ok(box, `${selector} is on the page`);
  return offset
    ? { x: Math.round(box.x + offset.x), y: Math.round(box.y + offset.y) }
    : { x: Math.round(box.x + box.width / 2), y: Math.round(box.y + box.height / 2) };
}

/** The tap events the tracker holds in this origin's localStorage (its per-tab queues, `clicktrail:<key>:q:<tab>`). */
function queuedTaps(page: Page, app: App): Promise<{ x: number; y: number }[]> {
  return page.evaluate((key) => {
    const out: { x: number; y: number }[] = [];
    for (const k of Object.keys(localStorage))
      if (k.startsWith(`clicktrail:${key}:q:`))
        for (const e of JSON.parse(localStorage.getItem(k)!) as { n?: string; d?: { x: number; y: number } }[])
          if (e.n === "tap") out.push({ x: e.d!.x, y: e.d!.y });
    return out;
  }, app.key);
}

/** POST /api/v1/events requests a page makes, with the number of events in each. */
function eventPosts(page: Page): number[] {
  const sizes: number[] = [];
  page.on("request", (r: Request) => {
    if (r.method() === "POST" && new URL(r.url()).pathname === "/api/v1/events") sizes.push(JSON.parse(r.postData() ?? "{}").events?.length ?? 1);
  });
  return sizes;
}

test("touch table: every tap becomes a stored event with its element and coordinates, sent in batches", { skip }, async () => {
  const app = await createApp("Touch table");
  const context = await browser.newContext({ viewport: VIEWPORT, hasTouch: true });
  try {
    const { page, errors } = await openTable(context, app, 60);
    const posts = eventPosts(page);
    await sleep(300);
    assert.deepEqual(await sessions(app), [], "no session before the first tap");

    // a click on a tile, a tap on another, a click on the table between the tiles, a tap on the heading
    const ships = await pointIn(page, "#tile-ships");
    const storms = await pointIn(page, "#tile-storms");
    const table = await pointIn(page, "#table", { x: 8, y: 8 });
    const heading = await pointIn(page, "h1");
    await page.mouse.click(ships.x, ships.y);
    await page.touchscreen.tap(storms.x, storms.y);
    await page.mouse.click(table.x, table.y);
    await page.touchscreen.tap(heading.x, heading.y);

    const taps = await until(
      "4 taps stored",
      () => events(app, "tap"),
      (es) => es.length >= 4,
    );
    assert.deepEqual(
      taps.map((e) => e.data),
      [
        { element: "button#tile-ships.tile", ...ships, pointer: "mouse" },
        { element: "button#tile-storms.tile", ...storms, pointer: "touch" },
        { element: "main#table.table", ...table, pointer: "mouse" },
        { element: "h1", ...heading, pointer: "touch" },
      ],
    );
    // one session, started by the first tap, and one visitor
    const all = await sessions(app);
    assert.equal(all.length, 1);
    assert.equal(all[0]!.stopped_at, null);
    assert.equal(all[0]!.event_count, 4);
    for (const e of taps) {
      assert.equal(sessionOf(all, e)?.id, all[0]!.id, "every tap in the session");
      assert.equal(e.visitor, taps[0]!.visitor);
      assert.ok(e.client_ts && Math.abs(Date.parse(e.client_ts) - Date.parse(e.ts)) < 10_000, "the client's time is kept");
    }
    assert.ok(taps[0]!.visitor, "an anonymous visitor id");
    assert.equal(await page.locator("#status").textContent(), "4 taps");
    await screenshot(page, "tracker-01-touch-table");

    // batching: three quick taps go in one request, after the flush interval (2 s)
    await sleep(2500); // any flush timer of the first taps has fired
    const before = posts.length;
    for (const id of ["#tile-lighthouse", "#tile-trade", "#tile-maps"]) {
      const p = await pointIn(page, id);
      await page.mouse.click(p.x, p.y);
    }
    await sleep(1000);
    assert.equal((await events(app, "tap")).length, 4, "not sent before the flush interval");
    await until(
      "7 taps stored",
      () => events(app, "tap"),
      (es) => es.length === 7,
    );
    assert.deepEqual(posts.slice(before), [3], "the three taps in one request");
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test("touch table: the session stops after the idle time; the next tap starts another", { skip }, async () => {
  const app = await createApp("Touch table idle");
  const context = await browser.newContext({ viewport: VIEWPORT, hasTouch: true });
  try {
    const { page, errors } = await openTable(context, app, 4);
    const fishing = await pointIn(page, "#tile-fishing");
    const maps = await pointIn(page, "#tile-maps");
    await page.touchscreen.tap(fishing.x, fishing.y);
    await page.touchscreen.tap(maps.x, maps.y);
    const tapped = Date.now();
    const first = await until(
      "2 taps stored",
      () => events(app, "tap"),
      (es) => es.length === 2,
    );
    let all = await sessions(app);
    assert.equal(all.length, 1);
    assert.equal(all[0]!.stopped_at, null, "open while the table is being touched");

    // nobody touches the table for 4 s: the page stops the session
    all = await until(
      "the session stopped",
      () => sessions(app),
      (ss) => ss[0]?.stopped_at != null,
    );
    const waited = Date.now() - tapped;
    assert.ok(waited >= 3900, `stopped ${waited} ms after the last tap`);
    // the same clock: the browser's time of the last tap, the server's of the stop
    const idle = Date.parse(all[0]!.stopped_at!) - Date.parse(first[1]!.client_ts!);
    assert.ok(idle >= 3900 && idle < 10_000, `stopped ${idle} ms after the last tap`);
    assert.equal(all[0]!.stop_reason, "client", "stopped by the page, not by the server's own time-out");
    assert.equal(all[0]!.event_count, 2);
    assert.equal(await page.evaluate(() => document.body.dataset.state), "ended");
    await screenshot(page, "tracker-02-session-ended");

    // the next visitor's tap: a new session
    const p = await pointIn(page, "#tile-ships");
    await page.touchscreen.tap(p.x, p.y);
    const taps = await until(
      "the third tap stored",
      () => events(app, "tap"),
      (es) => es.length === 3,
    );
    all = await sessions(app);
    assert.equal(all.length, 2);
    assert.equal(sessionOf(all, taps[0]!)?.id, all[0]!.id);
    assert.equal(sessionOf(all, taps[1]!)?.id, all[0]!.id);
    assert.equal(sessionOf(all, taps[2]!)?.id, all[1]!.id);
    assert.equal(all[1]!.stopped_at, null);
    assert.equal(taps[2]!.visitor, taps[0]!.visitor, "the same browser, the same visitor id");
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

test("touch table: a reload with the network cut keeps the queue; it is sent once when the network is back", { skip }, async () => {
  const app = await createApp("Touch table offline");
  const context = await browser.newContext({ viewport: VIEWPORT, hasTouch: true });
  try {
    // a kiosk's page comes from its cache when the network is down: the page and its files from a snapshot
    const files = new Map<string, { type: string; body: string }>();
    for (const p of [
      "/examples/touch-table/index.html",
      "/examples/touch-table/touch-table.js",
      "/examples/touch-table/touch-table.css",
      "/tracker.js",
    ]) {
      const r = await req(t.base, "GET", p, { key: null });
      assert.equal(r.status, 200, p);
      files.set(p, { type: String(r.headers["content-type"]), body: r.body });
    }
    await context.route(
      (u) => files.has(u.pathname),
      (route) =>
        route.fulfill({
          status: 200,
          contentType: files.get(new URL(route.request().url()).pathname)!.type,
          body: files.get(new URL(route.request().url()).pathname)!.body,
        }),
    );
    const apiCalls: string[] = [];
    context.on("request", (r) => {
      if (new URL(r.url()).pathname.startsWith("/api/")) apiCalls.push(r.url());
    });

    let { page, errors } = await openTable(context, app, 60);
    const tap = async (selector: string, offset?: { x: number; y: number }) => {
      const p = await pointIn(page, selector, offset);
      await page.mouse.click(p.x, p.y);
      return p;
    };
    const sent: { x: number; y: number }[] = [];
    sent.push(await tap("#tile-ships"));
    await until(
      "the first tap stored",
      () => events(app, "tap"),
      (es) => es.length === 1,
    );

    // the network goes: taps stay in the queue (nothing is even tried)
    await context.setOffline(true);
    const callsBefore = apiCalls.length;
    sent.push(await tap("#tile-storms"));
    sent.push(await tap("#tile-trade", { x: 10, y: 10 }));
    await sleep(2500);
    assert.equal((await events(app, "tap")).length, 1);
    assert.deepEqual(await queuedTaps(page, app), sent.slice(1));

    // a reload while offline: the queue is still there, and grows
    await page.reload();
    await page.waitForFunction(() => (window as any).clicktrail && document.body.dataset.state === "idle");
    assert.deepEqual(await queuedTaps(page, app), sent.slice(1), "the queue survived the reload");
    sent.push(await tap("#tile-maps", { x: 20, y: 30 }));
    await sleep(2500);
    assert.deepEqual(await queuedTaps(page, app), sent.slice(1));
    assert.equal(apiCalls.length, callsBefore, "no request while offline");
    assert.equal((await events(app, "tap")).length, 1);
    await screenshot(page, "tracker-03-offline");

    // back online: sent at once, each tap once
    await context.setOffline(false);
    await until(
      "4 taps stored",
      () => events(app, "tap"),
      (es) => es.length >= 4,
    );
    await sleep(3000);
    let taps = await events(app, "tap");
    assert.deepEqual(
      taps.map((e) => ({ x: e.data.x, y: e.data.y })),
      sent,
      "every tap, once, in order",
    );
    assert.deepEqual(await queuedTaps(page, app), []);
    const all = await sessions(app);
    assert.equal(all.length, 1, "the session outlived the reload");
    assert.ok(taps.every((e) => sessionOf(all, e)?.id === all[0]!.id));
    assert.deepEqual(errors, []);

    // offline again, a tap, and the page is closed: the next page of this site sends it on load
    await context.setOffline(true);
    sent.push(await tap("#tile-lighthouse", { x: 5, y: 40 }));
    await sleep(200);
    await page.close();
    await context.setOffline(false);
    ({ page, errors } = await openTable(context, app, 60));
    await until(
      "the fifth tap stored",
      () => events(app, "tap"),
      (es) => es.length >= 5,
    );
    await sleep(2500);
    taps = await events(app, "tap");
    assert.deepEqual(
      taps.map((e) => ({ x: e.data.x, y: e.data.y })),
      sent,
    );
    assert.deepEqual(await queuedTaps(page, app), []);
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

/** A shop on another origin that embeds the tracker with a script tag, served while `run` runs. */
async function withShop(app: App, run: (shop: string, context: BrowserContext) => Promise<void>) {
  const page = `<!doctype html><html><head><meta charset="utf-8"><title>Shop</title><link rel="icon" href="data:,">
<script src="${t.base}/tracker.js" data-key="${app.key}" data-auto-pageviews="true" data-outbound-links="true" data-opt-out="shopOptedOut" defer></script>
<script src="/app.js" defer></script></head>
<body><a id="out" href="https://elsewhere.example/landing">Elsewhere</a> <a id="in" href="/about">About</a> <button id="cart">Cart</button></body></html>`;
  const appJs = `window.shopOptedOut = () => localStorage.getItem("shop-opt-out") === "1";
document.getElementById("cart").addEventListener("click", () => { document.title = "Cart"; history.pushState({}, "", "/cart?step=2"); });`;
  // a real server on loopback: a page Playwright fulfils counts as public, and Chromium's local network access rules
  // would keep it from the tracker on 127.0.0.1; another origin all the same (localhost, another port)
  const shop = createServer((rq, rs) => {
    const p = new URL(rq.url!, "http://localhost").pathname;
    rs.writeHead(200, { "content-type": p === "/app.js" ? "text/javascript" : "text/html; charset=utf-8" });
    rs.end(p === "/app.js" ? appJs : p === "/about" ? "<title>About</title><p>About</p>" : page);
  });
  await new Promise<void>((r) => shop.listen(0, "127.0.0.1", r));
  // a desktop browser's user agent: headless Chromium's own is a bot's, and funnels and visitor pages leave bots out
  const context = await browser.newContext({ viewport: VIEWPORT, userAgent: DESKTOP_UA });
  try {
    await context.route("https://elsewhere.example/**", (route) =>
      route.fulfill({ contentType: "text/html", body: "<title>Elsewhere</title><p>Elsewhere</p>" }),
    );
    await run(`http://localhost:${(shop.address() as AddressInfo).port}`, context);
  } finally {
    await context.close();
    await new Promise((r) => shop.close(r));
  }
}

test("script tag on another origin: data-key, page views (SPA too), outbound links, opt-out", { skip }, async () => {
  const app = await createApp("Shop");
  await withShop(app, async (SHOP, context) => {
    const { page, errors } = await watchedPage(context);
    await page.goto(`${SHOP}/`);
    let views = await until(
      "the page view",
      () => events(app, "pageview"),
      (es) => es.length === 1,
    );
    assert.deepEqual(views[0]!.data, { url: `${SHOP}/`, path: "/", title: "Shop" });

    // SPA navigation: pushState and back
    await page.click("#cart");
    await page.goBack();
    // (30 s: a send that fails on a loaded CI machine is retried with back-off, 1 s, 2 s, 4 s, 8 s, …)
    views = await until(
      "2 more page views",
      () => events(app, "pageview"),
      (es) => es.length === 3,
      30_000,
    ).catch(async (e) => {
      // what the tracker still holds, to tell a send that never started from one that kept failing
      console.log("tracker storage:", JSON.stringify(await page.evaluate(() => ({ ...localStorage }))).slice(0, 2000));
      throw e;
    });
    assert.deepEqual(
      views.map((e) => e.data),
      [
        { url: `${SHOP}/`, path: "/", title: "Shop" },
        { url: `${SHOP}/cart?step=2`, path: "/cart?step=2", title: "Cart", referrer: `${SHOP}/` },
        { url: `${SHOP}/`, path: "/", title: "Cart", referrer: `${SHOP}/cart?step=2` },
      ],
    );

    // an outbound link: recorded as the page goes (sendBeacon); a link within the site is not
    await page.click("#in");
    await page.waitForURL(`${SHOP}/about`);
    await page.goto(`${SHOP}/`);
    await page.click("#out");
    await page.waitForURL("https://elsewhere.example/landing");
    const out = await until(
      "the outbound click",
      () => events(app, "outbound"),
      (es) => es.length === 1,
    );
    assert.deepEqual(out[0]!.data, { url: "https://elsewhere.example/landing" });
    const all = await sessions(app);
    assert.equal(all.length, 1, "one session for the whole visit");
    const tracked = await events(app);
    assert.deepEqual(
      tracked.map((e) => e.name),
      ["pageview", "pageview", "pageview", "pageview", "outbound"],
    );
    assert.ok(tracked.every((e) => sessionOf(all, e)?.id === all[0]!.id && e.visitor === tracked[0]!.visitor));

    // the site's opt-out function, then clicktrail.optOut(): nothing is tracked, nothing is kept
    await page.goto(`${SHOP}/`);
    await until(
      "the page view after coming back",
      () => events(app),
      (es) => es.length === 6,
    );
    await page.evaluate(() => localStorage.setItem("shop-opt-out", "1"));
    await page.click("#cart");
    await page.evaluate(() => {
      localStorage.removeItem("shop-opt-out");
      (window as any).clicktrail.optOut(true);
      (window as any).clicktrail.track("signup", { plan: "pro" });
    });
    await sleep(2500);
    assert.equal((await events(app)).length, 6, "nothing tracked while opted out");
    assert.deepEqual(
      await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("clicktrail:") && !k.endsWith(":o"))),
      [],
      "nothing kept but the opt-out itself",
    );
    await page.evaluate(() => {
      (window as any).clicktrail.optOut(false);
      (window as any).clicktrail.track("signup", { plan: "pro" });
    });
    const signup = await until(
      "the signup after opting in again",
      () => events(app, "signup"),
      (es) => es.length === 1,
    );
    assert.deepEqual(signup[0]!.data, { plan: "pro" });
    assert.notEqual(signup[0]!.visitor, tracked[0]!.visitor, "opting out forgot the visitor id");

    // the visitor signs in: the first identify merges the anonymous id into the user's, so the signup counts as theirs;
    // a second identify (another user signing in on this browser) merges nothing
    await page.evaluate(() => {
      (window as any).clicktrail.identify("user-42");
      (window as any).clicktrail.track("upgrade");
      (window as any).clicktrail.identify("user-43");
    });
    const profile = await until(
      "the merged visitor",
      () => req(t.base, "GET", "/api/v1/visitors/user-42").then((r) => r.json),
      (p) => p?.event_counts?.upgrade === 1,
    );
    assert.deepEqual(profile.aliases, [signup[0]!.visitor]);
    assert.equal(profile.event_counts.signup, 1);
    assert.equal((await req(t.base, "GET", "/api/v1/visitors/user-43")).status, 404, "user-43 has no events and merged nothing");
    assert.deepEqual(errors, []);
  });
});

test("script tag with Do Not Track on: nothing is sent, nothing is kept", { skip }, async () => {
  const app = await createApp("Shop DNT");
  await withShop(app, async (SHOP, context) => {
    await context.addInitScript(() => Object.defineProperty(Navigator.prototype, "doNotTrack", { get: () => "1" }));
    const { page, errors } = await watchedPage(context);
    await page.goto(`${SHOP}/`);
    await page.click("#cart");
    await page.evaluate(() => (window as any).clicktrail.track("signup"));
    await page.click("#out");
    await page.waitForURL("https://elsewhere.example/landing");
    await page.goBack();
    await sleep(2500);
    assert.deepEqual(await events(app), []);
    assert.deepEqual(await sessions(app), []);
    assert.deepEqual(await page.evaluate(() => Object.keys(localStorage)), []);
    assert.deepEqual(errors, []);
  });
});

test("tracker.js: under 3 KB gzipped, served as it is written", { skip }, async () => {
  const source = readFileSync(TRACKER);
  const gz = gzipSync(source, { level: 9 }).length;
  assert.ok(gz < 3 * 1024, `tracker.js is ${gz} bytes gzipped`);
  const r = await req(t.base, "GET", "/tracker.js", { key: null });
  assert.equal(r.status, 200);
  assert.match(String(r.headers["content-type"]), /javascript/);
  assert.equal(r.body, source.toString("utf8"));
});
