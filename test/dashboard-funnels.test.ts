/**
 * The dashboard's funnels and visitors in real Chromium: events and visitor properties sent through the API, a 3-step
 * funnel built in the builder and run, its numbers checked, saved, opened again after a reload, broken down by a visitor
 * property; a dropped-off visitor followed to its page (properties, timeline, "load more"); all without a console
 * error, and without sideways scrolling on a phone. Screenshots in test-results/dashboard/.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { chromiumAvailable, launch, screenshot, watchedPage } from "./browser.js";
import { req, startApp, type TestApp } from "./helpers.js";

const EMAIL = "funnels@example.com";
const PASSWORD = "a long enough password";
const DESKTOP_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";

let t: TestApp;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let errors: string[];

const skip = !chromiumAvailable() && process.env.CI !== "true" ? "Chromium is not installed (apt-get install chromium)" : false;

/** What the page shows, in order, of every element with this test id. */
const texts = (id: string) => page.getByTestId(id).evaluateAll((els) => els.map((e) => (e.textContent ?? "").trim()));

before(async () => {
  if (skip) return;
  t = await startApp();
  await t.app.services.auth.createUser(EMAIL, PASSWORD);

  // an app, and the events of five visitors: the funnel pageview → signup → purchase reads [3, 2, 1]
  const a = await req(t.base, "POST", "/api/v1/apps", { body: { name: "shop" } });
  assert.equal(a.status, 201, a.body);
  const key = a.json.key as string;
  const send = async (visitor: string, events: { name: string; data?: Record<string, unknown> }[]) => {
    for (const e of events) {
      const r = await req(t.base, "POST", "/api/v1/events", { key: null, body: { key, visitor, ...e }, headers: { "user-agent": DESKTOP_UA } });
      assert.equal(r.status, 201, r.body);
    }
  };
  // v2 browsed a lot first: its timeline takes two pages (one request each: the timeline pages by time)
  for (let i = 0; i < 55; i++) {
    await send("v2", [{ name: "scroll", data: { i } }]);
    await new Promise((r) => setTimeout(r, 2));
  }
  await send("v1", [{ name: "pageview" }, { name: "signup", data: { plan: "pro" } }, { name: "purchase", data: { amount: 42 } }]);
  await send("v2", [{ name: "pageview" }, { name: "signup", data: { plan: "free" } }]);
  await send("v3", [{ name: "pageview" }]);
  await send("v4", [{ name: "signup", data: { plan: "free" } }]);
  for (const [v, set] of [
    ["v1", { plan: "pro" }],
    ["v2", { plan: "free", company: "Acme" }],
  ] as const) {
    const p = await req(t.base, "POST", `/api/v1/visitors/${v}/properties`, { body: { set } });
    assert.equal(p.status, 200, p.body);
  }

  browser = await launch();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: "en-US", userAgent: DESKTOP_UA });
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

/** A full load of a page: waits for it, screenshots it, and checks the console and the layout shift. */
async function visit(hash: string, shot: string, ready: string) {
  await page.goto(`${t.base}/dashboard/#${hash}`);
  await page.reload();
  await byTest(ready).first().waitFor();
  await page.waitForLoadState("networkidle");
  await page.waitForFunction(() => document.querySelectorAll('[aria-busy="true"]').length === 0, null, { timeout: 15_000 });
  await screenshot(page, shot);
  assert.deepEqual(errors, [], `console errors on ${hash}`);
  const cls = await page.evaluate(() => (window as unknown as { __cls: number }).__cls);
  assert.ok(cls < 0.1, `layout shift ${cls.toFixed(3)} on ${hash}`);
}

async function stepNumbers() {
  await page.waitForFunction(() => document.querySelector('[data-testid="funnel-result"]')?.getAttribute("aria-busy") !== "true");
  return {
    visitors: await texts("funnel-step-visitors"),
    conversion: await texts("funnel-step-conversion"),
    overall: await texts("funnel-step-overall"),
  };
}

test("dashboard: build, run, save and reopen a funnel; follow a dropped-off visitor to its page", { skip }, async () => {
  await page.goto(`${t.base}/dashboard/`);
  await byTest("signin-email").fill(EMAIL);
  await byTest("signin-password").fill(PASSWORD);
  await byTest("signin-submit").click();
  await byTest("user-email").waitFor();

  // the Funnels section: no saved funnel yet, the project's event names
  await byTest("nav-funnels").click();
  await byTest("funnels-list").waitFor();
  await visit("/funnels", "20-funnels", "event-name-row");
  assert.deepEqual((await byTest("event-name-row").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-name")))).sort(), [
    "pageview",
    "purchase",
    "scroll",
    "signup",
  ]);

  // the builder: two steps to start with, a third added
  await byTest("new-funnel").click();
  await byTest("funnel-form").waitFor();
  assert.equal(await byTest("funnel-step").count(), 2);
  await byTest("funnel-step-0").fill("pageview");
  await byTest("funnel-step-1").fill("signup");
  // a mistake the form catches, shown next to its control
  await byTest("funnel-window").fill("soon");
  await byTest("funnel-run").click();
  await byTest("error-window").waitFor();
  assert.equal(await byTest("funnel-window").getAttribute("aria-invalid"), "true");
  // one the API catches (a window must be longer than nothing): its problem's `field` puts it there too
  await byTest("funnel-window").fill("0d");
  await byTest("funnel-run").click();
  await page.waitForFunction(() => /positive duration/.test(document.querySelector('[data-testid="error-window"]')?.textContent ?? ""));
  assert.deepEqual(errors.splice(0), ["console.error: Failed to load resource: the server responded with a status of 400 (Bad Request)"]);
  await byTest("funnel-window").fill("1d");
  await byTest("funnel-add-step").click();
  await byTest("funnel-step-2").fill("purchase");
  await byTest("funnel-run").click();
  await byTest("funnel-step-row").nth(2).waitFor();
  assert.equal(await byTest("error-window").count(), 0);
  let n = await stepNumbers();
  assert.deepEqual(n.visitors, ["3", "2", "1"]);
  assert.deepEqual(n.conversion, ["–", "66.7%", "50%"]);
  assert.deepEqual(n.overall, ["100%", "66.7%", "33.3%"]);
  assert.equal((await byTest("funnel-conversion").textContent())?.trim(), "33.3%");
  assert.equal(await byTest("funnel-bars").locator("li").count(), 3);
  // time to convert, human-formatted (the events came within seconds)
  const median = await texts("funnel-step-median");
  assert.equal(median[0], "–");
  assert.match(median[1]!, /^\d+(ms|s)/);
  assert.deepEqual(await texts("dropoff-visitor"), ["v3", "v2"]);
  await screenshot(page, "21-funnel-run");

  // a filter on the signup step's data: only "pro" sign-ups
  await byTest("funnel-step-1-filter").click();
  await byTest("funnel-step-1-where-field").fill("plan");
  await byTest("funnel-step-1-where-value").fill("pro");
  await byTest("funnel-run").click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="funnel-step-visitors"]')[1]?.textContent === "1");
  n = await stepNumbers();
  assert.deepEqual(n.visitors, ["3", "1", "1"]);
  // …and without it again
  await page.getByRole("button", { name: "Remove this filter" }).click();

  // saved: the page becomes the saved funnel's
  await byTest("funnel-name").fill("Signup funnel");
  await byTest("funnel-description").fill("from the first page view");
  await byTest("funnel-save").click();
  await page.waitForURL(/#\/funnels\/\d+$/);
  const id = Number(/#\/funnels\/(\d+)$/.exec(page.url())![1]);
  await page.waitForFunction(() => document.querySelector('[data-testid="funnel-heading"]')?.textContent === "Signup funnel");
  const saved = await req(t.base, "GET", `/api/v1/funnels/${id}`);
  assert.deepEqual(saved.json.query, { steps: ["pageview", "signup", "purchase"], window: "1d" });

  // a second funnel of the same name is refused, the API's message next to the name
  await byTest("funnel-save-new").click();
  await byTest("error-name").waitFor();
  assert.match((await byTest("error-name").textContent()) ?? "", /exists already/);
  // the browser logs the refused request itself: that one, and nothing else
  assert.deepEqual(errors.splice(0), ["console.error: Failed to load resource: the server responded with a status of 409 (Conflict)"]);

  // after a reload, listed; opened again, its results show without running it
  await visit("/funnels", "22-funnels-saved", "funnel-row");
  assert.deepEqual(await byTest("funnel-row").evaluateAll((rows) => rows.map((r) => r.getAttribute("data-name"))), ["Signup funnel"]);
  await byTest("funnel-open").click();
  await page.waitForURL(new RegExp(`#/funnels/${id}$`));
  await byTest("funnel-step-row").nth(2).waitFor();
  n = await stepNumbers();
  assert.deepEqual(n.visitors, ["3", "2", "1"]);
  assert.equal(await byTest("funnel-step-2").inputValue(), "purchase");
  assert.equal(await byTest("funnel-window").inputValue(), "1d");
  await visit(`/funnels/${id}`, "23-funnel-saved", "funnel-step-row");

  // broken down by the visitors' plan now
  await byTest("funnel-breakdown-kind").selectOption("property");
  await byTest("funnel-breakdown-name").fill("plan");
  await byTest("funnel-breakdown-at").selectOption("now");
  await byTest("funnel-run").click();
  await byTest("funnel-group-row").first().waitFor();
  const groups = await byTest("funnel-group-row").evaluateAll((rows) =>
    rows.map((r) => [r.getAttribute("data-value"), [...r.querySelectorAll("td")].map((c) => c.firstChild?.textContent?.trim())]),
  );
  assert.deepEqual(Object.fromEntries(groups), {
    pro: ["1", "1", "1", "100%"],
    free: ["1", "1", "0", "0%"],
    "(none)": ["1", "0", "0", "0%"],
  });
  await screenshot(page, "24-funnel-breakdown");

  // renamed, saved with the breakdown
  await byTest("funnel-name").fill("Signup funnel by plan");
  await byTest("funnel-save").click();
  await page.waitForFunction(() => document.querySelector('[data-testid="funnel-heading"]')?.textContent === "Signup funnel by plan");
  assert.deepEqual((await req(t.base, "GET", `/api/v1/funnels/${id}`)).json.query.breakdown, { property: "plan", at: "now" });

  // a dropped-off visitor's page: who it is, its properties, its timeline
  await page.locator('[data-testid="dropoff-visitor"]', { hasText: "v2" }).click();
  await page.waitForURL(/#\/visitors\/v2$/);
  await byTest("visitor-property").first().waitFor();
  assert.equal((await byTest("visitor-heading").textContent())?.trim(), "v2");
  const props = await byTest("visitor-property").evaluateAll((rows) =>
    rows.map((r) => [r.getAttribute("data-name"), r.querySelector('[data-testid="visitor-property-value"]')?.textContent]),
  );
  assert.deepEqual(props, [
    ["company", "Acme"],
    ["plan", "free"],
  ]);
  assert.equal((await byTest("visitor-events").textContent())?.trim(), "57");
  await byTest("timeline-event").first().waitFor();
  assert.equal(await byTest("timeline-event").count(), 50);
  assert.deepEqual(await byTest("timeline-event").evaluateAll((rows) => rows.slice(0, 2).map((r) => r.getAttribute("data-name"))), [
    "signup",
    "pageview",
  ]);
  await byTest("timeline-more").click();
  await byTest("timeline-end").waitFor();
  assert.equal(await byTest("timeline-event").count(), 57);
  await screenshot(page, "25-visitor");
  await visit("/visitors/v2", "25-visitor", "timeline-event");

  // the visitor list, searchable
  await visit("/visitors", "26-visitors", "visitor-row");
  assert.equal(await byTest("visitor-row").count(), 4);
  await byTest("visitors-q").fill("v3");
  await byTest("visitors-submit").click();
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="visitor-row"]').length === 1);
  assert.equal(await byTest("visitor-row").getAttribute("data-visitor"), "v3");

  // the event report of signup
  await visit("/reports/signup", "27-event-report", "report-preceded");
  assert.equal((await byTest("report-total").textContent())?.trim(), "3");
  assert.equal((await byTest("report-visitors").textContent())?.trim(), "3");
  // the chart has every day of the last 30, the empty ones at 0
  assert.equal(await page.locator(".chart-table tbody tr").count(), 30);

  // deleted from the list
  await visit("/funnels", "22-funnels-saved", "funnel-row");
  await byTest("funnel-delete").click();
  await byTest("funnel-delete-confirm").click();
  await page.locator('[data-testid="funnels-list"] .empty-row').waitFor();
  assert.equal((await req(t.base, "GET", `/api/v1/funnels/${id}`)).status, 404);
  assert.deepEqual(errors, [], "console errors");
});

test("dashboard: funnels and visitors readable on a phone (no sideways scrolling)", { skip }, async () => {
  const f = await req(t.base, "POST", "/api/v1/funnels", {
    body: { name: "phone", query: { steps: ["pageview", "signup", "purchase"], breakdown: { property: "plan", at: "now" } } },
  });
  assert.equal(f.status, 201, f.body);
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  try {
    const w = await watchedPage(phone);
    await w.page.goto(`${t.base}/dashboard/`);
    await w.page.getByTestId("signin-email").fill(EMAIL);
    await w.page.getByTestId("signin-password").fill(PASSWORD);
    await w.page.getByTestId("signin-submit").click();
    await w.page.getByTestId("user-email").waitFor();
    for (const [hash, ready, shot] of [
      [`/funnels/${f.json.id}`, "funnel-group-row", "28-phone-funnel"],
      ["/funnels", "funnel-row", "28-phone-funnels"],
      ["/visitors", "visitor-row", "29-phone-visitors"],
      ["/visitors/v2", "timeline-event", "29-phone-visitor"],
    ]) {
      await w.page.goto(`${t.base}/dashboard/#${hash}`);
      await w.page.getByTestId(ready!).first().waitFor();
      await screenshot(w.page, shot!);
      const overflow = await w.page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
      assert.ok(overflow <= 1, `${hash} scrolls sideways by ${overflow}px`);
    }
    assert.deepEqual(w.errors, []);
  } finally {
    await phone.close();
  }
});
