/**
 * Visitors, properties, event reports and funnels over real HTTP (SQLite, and PostgreSQL in the second round): one
 * funnel reads an email open and a tracking-link click (the tracking routes) and a sign-up (the ingest API).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { hit, req, startApp, type TestApp } from "./helpers.js";

let t: TestApp;
let ingestKey: string;
const BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";

before(async () => {
  t = await startApp();
  const a = await req(t.base, "POST", "/api/v1/apps", { body: { name: "web" } });
  assert.equal(a.status, 201, a.body);
  ingestKey = a.json.key;
});
after(() => t.close());

const pathOf = (u: string) => new URL(u).pathname;
const pub = (method: string, path: string, body?: unknown) => req(t.base, method, path, { key: null, body, headers: { "user-agent": BROWSER } });
const track = (visitor: string, name: string, data?: Record<string, unknown>) =>
  pub("POST", "/api/v1/events", { key: ingestKey, name, visitor, data });
const funnel = (query: Record<string, unknown>) => req(t.base, "POST", "/api/v1/funnels/query", { body: query });

/** Mints an email's tracking links for one recipient and opens / clicks them as a mail client would. */
async function email(visitor: string, opens: boolean, clicks: boolean) {
  const r = await req(t.base, "POST", "/api/v1/tracking/links", { body: { url: "https://shop.example/offer", open: true, metadata: { visitor } } });
  assert.equal(r.status, 200, r.body);
  if (opens) assert.equal((await pub("GET", pathOf(r.json.open_url))).status, 200);
  if (clicks) assert.equal((await pub("GET", pathOf(r.json.click_url))).status, 302);
}

test("one funnel across sources: email opened (pixel) → link clicked (tracking link) → signed up (ingest)", async () => {
  await email("u1", true, true);
  await email("u2", true, true);
  await email("u3", true, false);
  await email("u4", false, false);
  assert.equal((await track("u1", "signup", { plan: "pro" })).status, 201);
  assert.equal((await track("u2", "pageview")).status, 201);
  const r = await funnel({ steps: ["open", "click", "signup"], window: "1d" });
  assert.equal(r.status, 200, r.body);
  assert.deepEqual(
    r.json.steps.map((s: { name: string; visitors: number }) => [s.name, s.visitors]),
    [
      ["open", 3],
      ["click", 2],
      ["signup", 1],
    ],
  );
  assert.equal(r.json.steps[1].conversion_from_previous, 2 / 3);
  assert.equal(r.json.steps[2].conversion_from_first, 1 / 3);
  assert.deepEqual(r.json.steps[1].dropped_off_sample, ["u3"]);
  assert.deepEqual(r.json.steps[2].dropped_off_sample, ["u2"]);
  assert.equal(typeof r.json.steps[1].median_ms_to_convert, "number");
  assert.equal(r.json.meta.window_ms, 86_400_000);
  // a filter on event data, and strict order (nothing between the steps)
  const pro = await funnel({ steps: ["click", { name: "signup", where: { plan: "pro" } }] });
  assert.deepEqual(
    pro.json.steps.map((s: { visitors: number }) => s.visitors),
    [2, 1],
  );
  const none = await funnel({ steps: ["click", { name: "signup", where: { plan: "free" } }] });
  assert.equal(none.json.steps[1].visitors, 0);
  const strict = await funnel({ steps: ["open", "signup"], order: "strict" });
  assert.equal(strict.json.steps[1].visitors, 0, "u1 clicked between the open and the sign-up");
  // exclusions: u2 viewed a page after clicking
  const excl = await funnel({ steps: ["open", "click"], exclusions: [{ name: "pageview" }] });
  assert.equal(excl.json.steps[1].visitors, 2, "the pageview came after the last step: it does not matter");
});

test("identify merges an anonymous visitor into a known one, backwards too; properties with history segment funnels", async () => {
  // a visitor browses anonymously, then signs up and is identified as u3 (who opened the email)
  await track("anon-7", "click");
  await track("anon-7", "signup", { plan: "free" });
  const before = await funnel({ steps: ["open", "click", "signup"] });
  assert.equal(before.json.steps[2].visitors, 1);
  const id = await pub("POST", "/api/v1/identify", { key: ingestKey, anonymous: "anon-7", visitor: "u3" });
  assert.equal(id.status, 200, id.body);
  assert.deepEqual(id.json, { visitor: "u3", merged: true });
  assert.deepEqual((await pub("POST", "/api/v1/identify", { key: ingestKey, anonymous: "anon-7", visitor: "u3" })).json, {
    visitor: "u3",
    merged: false,
  });
  const taken = await pub("POST", "/api/v1/identify", { key: ingestKey, anonymous: "anon-7", visitor: "u4" });
  assert.equal(taken.status, 409);
  assert.equal(taken.json.field, "anonymous");
  const merged = await funnel({ steps: ["open", "click", "signup"] });
  assert.deepEqual(
    merged.json.steps.map((s: { visitors: number }) => s.visitors),
    [3, 3, 2],
  );

  // properties: u1 was on "free" when it opened, and is "pro" now; u3 holds two values of "team"
  const early = Date.now() - 3_600_000;
  let p = await req(t.base, "POST", "/api/v1/visitors/u1/properties", { body: { set: { plan: "free", seats: 1 }, ts: early } });
  assert.equal(p.status, 200, p.body);
  p = await req(t.base, "POST", "/api/v1/visitors/u1/properties", { body: { set: { plan: "pro" } } });
  assert.deepEqual(p.json, { visitor: "u1", changes: 1 });
  p = await pub("POST", "/api/v1/visitors/anon-7/properties", { key: ingestKey, add: { team: ["red", "blue"] }, set: { plan: "free" }, ts: early });
  assert.deepEqual(p.json, { visitor: "u3", changes: 3 }, "written to the visitor anon-7 was merged into");

  const seg = (at: string) =>
    funnel({ steps: ["open", "click"], breakdown: { property: "plan", at } }).then((r) => {
      assert.equal(r.status, 200, r.body);
      return Object.fromEntries(
        r.json.breakdown.map((b: { value: unknown; steps: { visitors: number }[] }) => [JSON.stringify(b.value), b.steps.map((s) => s.visitors)]),
      );
    });
  assert.deepEqual(await seg("event"), { '"free"': [2, 2], null: [1, 1] }, "u1 and u3 were on free when they opened; u2 has no plan");
  assert.deepEqual(await seg("now"), { '"pro"': [1, 1], '"free"': [1, 1], null: [1, 1] });
  assert.deepEqual(await seg("ever"), { '"free"': [2, 2], '"pro"': [1, 1], null: [1, 1] });
  const teams = await funnel({ steps: ["open"], breakdown: { property: "team", at: "now" } });
  assert.deepEqual(teams.json.breakdown.map((b: { value: unknown }) => b.value).sort(), ["blue", "red", null].sort());
  // breakdown by a field of the event's data, first and last touch
  const byPlan = await funnel({ steps: ["click", "signup"], breakdown: { event_field: "plan" }, attribution: "last" });
  assert.deepEqual(byPlan.json.breakdown.map((b: { value: unknown }) => b.value).sort(), ["free", "pro", null].sort());

  // the unset history: u1 loses seats
  await req(t.base, "POST", "/api/v1/visitors/u1/properties", { body: { unset: ["seats"] } });
  const prof = await req(t.base, "GET", "/api/v1/visitors/u1");
  assert.equal(prof.status, 200, prof.body);
  assert.deepEqual(prof.json.properties, { plan: ["pro"] });
  assert.deepEqual(
    prof.json.property_history.map((h: { name: string; op: string; value: unknown }) => [h.name, h.op, h.value]),
    [
      ["plan", "set", "free"],
      ["seats", "set", 1],
      ["plan", "set", "pro"],
      ["seats", "unset", null],
    ],
  );
  assert.deepEqual(prof.json.event_counts, { open: 1, click: 1, signup: 1 });
  const u3 = await req(t.base, "GET", "/api/v1/visitors/anon-7");
  assert.equal(u3.json.id, "u3");
  assert.deepEqual(u3.json.aliases, ["anon-7"]);
  assert.deepEqual(u3.json.properties, { plan: ["free"], team: ["red", "blue"] });
});

test("visitor list and timeline (every field of the log, newest first, paged)", async () => {
  const list = await req(t.base, "GET", "/api/v1/visitors?limit=10");
  assert.equal(list.status, 200, list.body);
  const ids = list.json.visitors.map((v: { id: string }) => v.id);
  assert.ok(ids.includes("u1") && ids.includes("u3") && !ids.includes("anon-7"), ids.join());
  assert.deepEqual(
    (await req(t.base, "GET", "/api/v1/visitors?q=u2")).json.visitors.map((v: { id: string }) => v.id),
    ["u2"],
  );
  const tl = await req(t.base, "GET", "/api/v1/visitors/u3/events?limit=2");
  assert.equal(tl.status, 200, tl.body);
  assert.deepEqual(
    tl.json.events.map((e: { name: string }) => e.name),
    ["signup", "click"],
  );
  assert.equal(tl.json.events[0].source, "api");
  const rest = await req(t.base, "GET", `/api/v1/visitors/u3/events?limit=10&before=${encodeURIComponent(tl.json.next_before)}`);
  assert.deepEqual(
    rest.json.events.map((e: { name: string; source: string }) => `${e.source}:${e.name}`),
    ["tracking:open"],
  );
  assert.equal((await req(t.base, "GET", "/api/v1/visitors/nobody")).status, 404);
  // a batch shares one millisecond: paging by (time, id) skips none of it
  const batch = await pub("POST", "/api/v1/events", {
    key: ingestKey,
    visitor: "u7",
    events: Array.from({ length: 5 }, (_, i) => ({ name: `b${i}` })),
  });
  assert.equal(batch.status, 201, batch.body);
  const seen: string[] = [];
  let before: string | null = null;
  for (let page = 0; page < 5; page++) {
    const r = await req(t.base, "GET", `/api/v1/visitors/u7/events?limit=2${before ? `&before=${before}` : ""}`);
    assert.equal(r.status, 200, r.body);
    seen.push(...r.json.events.map((e: { name: string }) => e.name));
    before = r.json.next_before;
    if (!before) break;
  }
  assert.deepEqual(seen, ["b4", "b3", "b2", "b1", "b0"]);
});

test("event reports: names, totals, unique visitors, series, preceded-by, per property value", async () => {
  const names = await req(t.base, "GET", "/api/v1/reports/events");
  assert.equal(names.status, 200, names.body);
  const byName = Object.fromEntries(names.json.events.map((e: { name: string; total: number; visitors: number }) => [e.name, [e.total, e.visitors]]));
  assert.deepEqual(byName.signup, [2, 2]);
  assert.deepEqual(byName.open, [3, 3]);
  assert.ok(names.json.properties.includes("plan"));
  const r = await req(t.base, "GET", "/api/v1/reports/events/click?interval=hour&property=plan&at=now");
  assert.equal(r.status, 200, r.body);
  assert.equal(r.json.total, 3);
  assert.equal(r.json.visitors, 3);
  assert.equal(r.json.series.length, 1);
  assert.equal(r.json.series[0].total, 3);
  const prec = Object.fromEntries(r.json.preceded_by.map((p: { name: string; total: number; visitors: number }) => [p.name, [p.total, p.visitors]]));
  assert.deepEqual(prec.open, [3, 3], "every click came after an open (u3's through its merged id)");
  const vals = Object.fromEntries(r.json.property.values.map((v: { value: unknown; total: number }) => [JSON.stringify(v.value), v.total]));
  assert.deepEqual(vals, { '"pro"': 1, '"free"': 1, null: 1 });
  const filtered = await req(t.base, "GET", `/api/v1/reports/events/signup?where=${encodeURIComponent('{"plan":"pro"}')}`);
  assert.equal(filtered.json.total, 1);
  const bad = await req(t.base, "GET", "/api/v1/reports/events/signup?where=nope");
  assert.equal(bad.status, 400);
  assert.equal(bad.json.field, "where");
  assert.equal((await req(t.base, "GET", "/api/v1/reports/events/signup?tz=Mars/Base")).json.field, "tz");
  assert.equal((await req(t.base, "GET", "/api/v1/reports/events/signup?from=yesterday")).json.field, "from");
  const never = await req(t.base, "GET", "/api/v1/reports/events/never-happened");
  assert.deepEqual([never.status, never.json.total, never.json.series], [200, 0, []]);
});

test("saved funnels: create, list, run, change, delete; errors name the field", async () => {
  const c = await req(t.base, "POST", "/api/v1/funnels", {
    body: { name: "email to signup", description: "spring mailing", query: { steps: ["open", "click", "signup"], window: "7d" } },
  });
  assert.equal(c.status, 201, c.body);
  assert.equal(c.json.query.window, "7d");
  assert.equal((await req(t.base, "POST", "/api/v1/funnels", { body: { name: "email to signup", query: { steps: ["open"] } } })).status, 409);
  const list = await req(t.base, "GET", "/api/v1/funnels");
  assert.deepEqual(
    list.json.funnels.map((f: { name: string }) => f.name),
    ["email to signup"],
  );
  const run = await req(t.base, "GET", `/api/v1/funnels/${c.json.id}/results`);
  assert.equal(run.status, 200, run.body);
  assert.equal(run.json.funnel.name, "email to signup");
  assert.deepEqual(
    run.json.steps.map((s: { visitors: number }) => s.visitors),
    [3, 3, 2],
  );
  const future = await req(t.base, "GET", `/api/v1/funnels/${c.json.id}/results?from=${Date.now() + 3_600_000}`);
  assert.equal(future.json.steps[0].visitors, 0);
  const p = await req(t.base, "PATCH", `/api/v1/funnels/${c.json.id}`, { body: { query: { steps: ["open", "click"] } } });
  assert.equal(p.status, 200, p.body);
  assert.equal((await req(t.base, "GET", `/api/v1/funnels/${c.json.id}/results`)).json.steps.length, 2);
  assert.equal((await req(t.base, "DELETE", `/api/v1/funnels/${c.json.id}`)).status, 204);
  assert.equal((await req(t.base, "GET", `/api/v1/funnels/${c.json.id}`)).status, 404);

  const bad = async (query: unknown, field: string) => {
    const r = await funnel(query as Record<string, unknown>);
    assert.equal(r.status, 400, `${JSON.stringify(query)}: ${r.body}`);
    assert.equal(r.json.field, field, r.body);
    assert.match(r.headers["content-type"] as string, /problem\+json/);
  };
  await bad({ steps: [] }, "steps");
  await bad({ steps: ["a", ""] }, "steps[1].name");
  await bad({ steps: ["a", "b"], window: "soon" }, "window");
  await bad({ steps: ["a", "b"], window: -5 }, "window");
  await bad({ steps: ["a", "b"], exclusions: [{ name: "x", between: [1, 1] }] }, "exclusions[0].between");
  await bad({ steps: ["a", "b"], from: "2026-02-01", to: "2026-01-01" }, "from");
  await bad({ steps: ["a", "b"], breakdown: {} }, "breakdown");
  await bad({ steps: ["a", "b"], order: "sideways" }, "order");
  await bad({ steps: Array.from({ length: 32 }, (_, i) => `s${i}`) }, "steps");
});

test("who may do what: read with stats:read, save with funnels:write, write visitors with events:write or an ingest key", async () => {
  const key = async (scopes: string[]) => (await req(t.base, "POST", "/api/v1/keys", { body: { name: scopes.join(), scopes } })).json.key as string;
  const reader = await key(["stats:read"]);
  const saver = await key(["funnels:write"]);
  const writer = await key(["events:write"]);
  const body = { name: "by key", query: { steps: ["open"] } };
  assert.equal((await req(t.base, "POST", "/api/v1/funnels/query", { key: reader, body: { steps: ["open"] } })).status, 200);
  assert.equal((await req(t.base, "POST", "/api/v1/funnels", { key: reader, body })).status, 403);
  assert.equal((await req(t.base, "POST", "/api/v1/funnels", { key: saver, body })).status, 201);
  assert.equal((await req(t.base, "GET", "/api/v1/visitors", { key: writer })).status, 403);
  assert.equal((await req(t.base, "POST", "/api/v1/visitors/u9/properties", { key: reader, body: { set: { a: 1 } } })).status, 403);
  assert.equal((await req(t.base, "POST", "/api/v1/visitors/u9/properties", { key: writer, body: { set: { a: 1 } } })).status, 200);
  const anon = await pub("POST", "/api/v1/visitors/u9/properties", { set: { a: 1 } });
  assert.equal(anon.status, 401);
  assert.equal((await pub("POST", "/api/v1/identify", { key: "ik_unknown", anonymous: "x", visitor: "y" })).status, 401);
  const nul = await req(t.base, "POST", "/api/v1/visitors/u9/properties", { key: writer, body: { set: { a: null } } });
  assert.equal(nul.status, 400);
  assert.equal(nul.json.field, "set.a");
  const cors = await pub("OPTIONS", "/api/v1/identify");
  assert.equal(cors.status, 204);
});

test("a step can name a link or a source: 'clicked go.test/spring, then signed up'", async () => {
  const d = await req(t.base, "POST", "/api/v1/domains", { body: { hostname: "go.test" } });
  assert.equal(d.status, 201, d.body);
  const link = await req(t.base, "POST", "/api/v1/links", { body: { domain: "go.test", slug: "spring", target: "https://shop.example/spring" } });
  assert.equal(link.status, 201, link.body);
  // the link domain's first-party visitor cookie, merged into the product's ids once they sign in
  for (const v of ["u1", "u2"]) {
    assert.equal((await hit(t.base, "go.test", "/spring", { cookie: `ct_vid=cookie-${v}-abcdef`, "user-agent": BROWSER })).status, 302);
    assert.equal((await pub("POST", "/api/v1/identify", { key: ingestKey, anonymous: `cookie-${v}-abcdef`, visitor: v })).status, 200);
  }
  const r = await funnel({ steps: [{ name: "click", link_id: link.json.id }, "signup"] });
  assert.equal(r.status, 200, r.body);
  assert.deepEqual(
    r.json.steps.map((s: { visitors: number }) => s.visitors),
    [2, 0],
    "both clicked the link after signing up (u1) or without (u2)",
  );
  const before = await funnel({
    steps: [
      { name: "click", source: "tracking" },
      { name: "click", link_id: link.json.id },
    ],
  });
  assert.deepEqual(
    before.json.steps.map((s: { visitors: number }) => s.visitors),
    [2, 2],
    "the e-mail's tracking-link clickers (u1, u2), then the short link (the same two, through their cookies' ids)",
  );
  const none = await funnel({ steps: [{ name: "click", source: "nowhere" }] });
  assert.equal(none.json.steps[0].visitors, 0);
  const bad = await funnel({ steps: [{ name: "click", link_id: 0 }] });
  assert.equal(bad.status, 400);
  // what the in-memory tables hold is on /metrics
  const m = await req(t.base, "GET", "/metrics", { key: null });
  const events = Number(/^clicktrail_analytics_events (\d+)/m.exec(m.body)?.[1]);
  assert.ok(events >= 10, `clicktrail_analytics_events ${events}`);
  assert.ok(Number(/^clicktrail_analytics_bytes (\d+)/m.exec(m.body)?.[1]) >= events * 30);
});
