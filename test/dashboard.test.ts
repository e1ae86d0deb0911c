/**
 * The dashboard in real Chromium (Debian's, via playwright-core): sign in, create a domain and a link, follow the short
 * URL, see the click on the link's page, import 1,000 links from CSV, create an API key, an app whose events arrive live,
 * its sessions and its event charts; every page without a console
 * error, and a screenshot of each in test-results/dashboard/.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { chromiumAvailable, launch, screenshot, watchedPage } from "./browser.js";
import { req, startApp, type TestApp } from "./helpers.js";

const EMAIL = "owner@example.com";
const PASSWORD = "a long enough password";
const HOST = "go.dash.test";
const DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";

let t: TestApp;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let errors: string[];

const skip = !chromiumAvailable() && process.env.CI !== "true" ? "Chromium is not installed (apt-get install chromium)" : false;

before(async () => {
  if (skip) return;
  t = await startApp();
  await t.app.services.auth.createUser(EMAIL, PASSWORD);
  // the link domain resolves to this server, so the browser can follow a short URL
  browser = await launch([`--host-resolver-rules=MAP ${HOST} 127.0.0.1`]);
  // a person's browser: "HeadlessChrome" is on the bot list, and bot clicks are counted apart
  context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US", userAgent: DESKTOP_UA });
  // cumulative layout shift of each page load, read by visit()
  await context.addInitScript(() => {
    const w = window as unknown as { __cls: number };
    w.__cls = 0;
    new PerformanceObserver((list) => {
      for (const e of list.getEntries() as unknown as { value: number; hadRecentInput: boolean }[]) if (!e.hadRecentInput) w.__cls += e.value;
    }).observe({ type: "layout-shift", buffered: true });
  });
  ({ page, errors } = await watchedPage(context));
});

after(async () => {
  await browser?.close();
  await t?.close();
});

const byTest = (id: string) => page.getByTestId(id);

/**
 * Loads a page (a full load, so its layout shift is measured from the start), waits for it, screenshots it. A page with
 * a stream open (the live events) never goes network-idle: `idle: false` waits for its fetches to settle instead.
 */
async function visit(hash: string, shot: string, ready: string, idle = true) {
  await page.goto(`${t.base}/dashboard/#${hash}`);
  await page.reload();
  await byTest(ready).first().waitFor();
  if (idle) await page.waitForLoadState("networkidle");
  else await page.waitForFunction(() => document.querySelectorAll('[aria-busy="true"]').length === 0, null, { timeout: 15_000 });
  await screenshot(page, shot);
  assert.deepEqual(errors, [], `console errors on ${hash}`);
  // "no layout shift while data loads": below 0.1, web.dev's threshold of a good cumulative layout shift
  const cls = await page.evaluate(() => (window as unknown as { __cls: number }).__cls);
  assert.ok(cls < 0.1, `layout shift ${cls.toFixed(3)} on ${hash}`);
}

test("dashboard: sign in, domain, link, click, stats, CSV import, API key, events — without a console error", { skip }, async () => {
  // the page is served with a strict CSP
  const html = await req(t.base, "GET", "/dashboard/", { key: null });
  assert.equal(html.status, 200);
  assert.match(String(html.headers["content-security-policy"]), /script-src 'self'; style-src 'self'/);
  assert.doesNotMatch(html.body, /<script>|<style>|style="/);

  await page.goto(`${t.base}/dashboard/`);
  await byTest("signin-email").fill(EMAIL);
  await byTest("signin-password").fill(PASSWORD);
  await screenshot(page, "01-sign-in");
  await byTest("signin-submit").click();
  await byTest("user-email").waitFor();
  assert.equal(await byTest("user-email").textContent(), EMAIL);

  // a domain
  await visit("/domains", "02-domains", "domain-form");
  await byTest("domain-hostname").fill(HOST);
  await byTest("domain-submit").click();
  await page.locator(`[data-testid="domain-row"][data-hostname="${HOST}"]`).waitFor();

  // a link whose target is this server, so following it ends on a page that loads
  await visit("/links/new", "03-new-link", "link-form");
  await byTest("link-domain")
    .selectOption(HOST)
    .catch(async () => byTest("link-domain").fill(HOST));
  await byTest("link-slug").fill("hello");
  await byTest("link-target").fill(`${t.base}/dashboard/#/settings`);
  await byTest("link-submit").click();
  await page.waitForURL(/#\/links(\/\d+)?$/);
  const links = (await req(t.base, "GET", "/api/v1/links")).json.links as { id: number; slug: string }[];
  const link = links.find((l) => l.slug === "hello")!;
  assert.ok(link, "the link was created through the dashboard");

  // follow the short URL in the browser: the redirect records the click
  const r = await page.goto(`http://${HOST}:${t.port}/hello`);
  assert.equal(r?.status(), 200);
  assert.match(page.url(), /\/dashboard\/#\/settings$/);
  await byTest("settings-email").waitFor();

  // the link's page shows the click
  await visit(`/links/${link.id}`, "04-link-page", "total-clicks");
  await page.waitForFunction(() => document.querySelector('[data-testid="total-clicks"]')?.textContent?.trim() === "1", null, { timeout: 15_000 });
  await byTest("clicks-chart").waitFor();
  await screenshot(page, "04-link-page");

  // import 1,000 links from CSV
  const csv = path.join(t.dir, "links.csv");
  writeFileSync(csv, "domain,slug,target\n" + Array.from({ length: 1000 }, (_, i) => `${HOST},imp${i},https://example.com/${i}`).join("\n") + "\n");
  await visit("/links/import", "05-import", "import-file");
  await byTest("import-file").setInputFiles(csv);
  await byTest("import-submit").click();
  await page.waitForFunction(
    () => /1,000 links created, 0 failed/.test(document.querySelector('[data-testid="import-summary"]')?.textContent ?? ""),
    null,
    {
      timeout: 60_000,
    },
  );
  await screenshot(page, "05-import");
  const listed = await req(t.base, "GET", "/api/v1/links?limit=1000");
  assert.equal(listed.json.links.length, 1000);

  // the links table pages through them
  await visit("/links", "06-links", "link-row");
  assert.ok((await byTest("link-row").count()) > 0);

  // an API key, shown once, that works
  await visit("/keys", "07-keys", "key-form");
  await byTest("key-name").fill("ci");
  await byTest("key-scope-links-read").check();
  await byTest("key-submit").click();
  const token = (await byTest("new-key-token").textContent())?.trim() ?? "";
  assert.match(token, /^ct_[A-Za-z0-9_-]{32}$/);
  await screenshot(page, "07-keys");
  assert.equal((await req(t.base, "GET", "/api/v1/links?limit=1", { key: token })).status, 200);

  // an app (a front end's public ingest key), created through the form, with its embed snippet
  await visit("/apps", "11-apps", "app-form");
  await byTest("app-name").fill("Web shop");
  await byTest("app-submit").click();
  await byTest("app-row").first().waitFor();
  const appKey = (await byTest("app-key").first().textContent())?.trim() ?? "";
  assert.match(appKey, /^ik_[A-Za-z0-9_-]{24}$/);
  const appId = Number(await byTest("app-row").first().getAttribute("data-app-id"));
  assert.ok(appId > 0);
  assert.match((await byTest("new-app-snippet").textContent()) ?? "", new RegExp(`/tracker\\.js" data-key="${appKey}" defer></script>$`));
  await screenshot(page, "11-apps");

  // live events: two events sent while the page is open arrive over Server-Sent Events, newest on top
  await visit("/events", "12-events", "live-events", false);
  await page.waitForFunction(() => document.querySelector('[data-testid="live-state"]')?.textContent === "Live", null, { timeout: 15_000 });
  const sent = await req(t.base, "POST", "/api/v1/events", { key: null, body: { key: appKey, events: [{ name: "tap" }, { name: "tap" }] } });
  assert.equal(sent.status, 201);
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="live-event-row"]').length === 2, null, { timeout: 15_000 });
  assert.deepEqual(await byTest("live-event-row").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-name"))), ["tap", "tap"]);
  // paused, a new event waits; resumed, it shows
  await byTest("events-pause").click();
  assert.equal((await req(t.base, "POST", "/api/v1/events", { key: null, body: { key: appKey, name: "scroll" } })).status, 201);
  await page.waitForFunction(() => /1 new/.test(document.querySelector('[data-testid="live-state"]')?.textContent ?? ""), null, { timeout: 15_000 });
  assert.equal(await byTest("live-event-row").count(), 2);
  await byTest("events-pause").click();
  await page.waitForFunction(() => document.querySelector('[data-testid="live-event-row"]')?.getAttribute("data-name") === "scroll", null, {
    timeout: 15_000,
  });
  await screenshot(page, "12-events");
  assert.deepEqual(errors, [], "console errors on the live events");

  // a session with one event: listed with its count, its events shown on a click
  const started = await req(t.base, "POST", "/api/v1/sessions", { key: null, body: { key: appKey } });
  assert.equal(started.status, 201);
  const sessionToken = started.json.token as string;
  assert.equal((await req(t.base, "POST", "/api/v1/events", { key: null, body: { key: appKey, name: "open", session: sessionToken } })).status, 201);
  await visit("/sessions", "13-sessions", "session-row");
  const row = page.locator(`[data-testid="session-row"][data-token="${sessionToken}"]`);
  assert.equal((await row.getByTestId("session-count").textContent())?.trim(), "1");
  assert.equal((await row.getByTestId("session-stop").textContent())?.trim(), "Open");
  await row.getByTestId("session-open").click();
  await page.locator('[data-testid="session-event-row"][data-name="open"]').waitFor();
  await screenshot(page, "13-sessions");

  // the app's page charts its events: 2 taps, a scroll and an open
  await visit(`/apps/${appId}`, "14-app-page", "app-stats");
  await page.waitForFunction(() => document.querySelector('[data-testid="total-clicks"]')?.textContent?.trim() === "4", null, { timeout: 15_000 });
  await page.locator('[data-testid="breakdown-name"] td', { hasText: "tap" }).first().waitFor();
  await screenshot(page, "14-app-page");
  assert.deepEqual(errors, [], "console errors on the app's page");

  // the remaining pages load cleanly
  await visit("/campaigns", "08-campaigns", "campaign-form");
  await byTest("campaign-name").fill("Spring sale");
  await byTest("campaign-submit").click();
  await byTest("campaign-row").first().waitFor();
  const campaign = (await req(t.base, "GET", "/api/v1/campaigns")).json.campaigns[0];
  assert.equal(campaign.name, "Spring sale");
  await visit(`/campaigns/${campaign.id}`, "08b-campaign-page", "campaign-heading");
  await visit(`/links/${link.id}/edit`, "03b-edit-link", "link-form");
  await visit("/settings", "09-settings", "settings-email");

  // sign out
  await byTest("sign-out").click();
  await byTest("signin-form").waitFor();
  assert.deepEqual(errors, [], "console errors");
});

test("dashboard: readable on a phone (no sideways scrolling)", { skip }, async () => {
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  try {
    const w = await watchedPage(phone);
    await w.page.goto(`${t.base}/dashboard/`);
    await w.page.getByTestId("signin-email").fill(EMAIL);
    await w.page.getByTestId("signin-password").fill(PASSWORD);
    await w.page.getByTestId("signin-submit").click();
    await w.page.getByTestId("link-row").first().waitFor();
    await screenshot(w.page, "10-phone-links");
    const overflow = await w.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.ok(overflow <= 1, `scrolls sideways by ${overflow}px`);
    assert.deepEqual(w.errors, []);
  } finally {
    await phone.close();
  }
});

test("dashboard: signing in works from the keyboard alone", { skip }, async () => {
  const kb = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  try {
    const w = await watchedPage(kb);
    await w.page.goto(`${t.base}/dashboard/`);
    await w.page.getByTestId("signin-email").focus();
    await w.page.keyboard.type(EMAIL);
    await w.page.keyboard.press("Tab");
    await w.page.keyboard.type(PASSWORD);
    await w.page.keyboard.press("Enter");
    await w.page.getByTestId("user-email").waitFor();
    // the navigation is reachable with Tab and follows with Enter
    await w.page.getByTestId("nav-settings").focus();
    await w.page.keyboard.press("Enter");
    await w.page.getByTestId("settings-email").waitFor();
    assert.deepEqual(w.errors, []);
  } finally {
    await kb.close();
  }
});
