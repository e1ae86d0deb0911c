/**
 * The o7tracker dialect end to end over real HTTP: an o7tracker client's whole life cycle (create, get, update, list,
 * track, update_stats, delete), its auth, its error messages and its fallbacks, byte for byte where the original was
 * exact (seed-apis.md §2); how its campaigns show in the native API and native links show through it; and the dialect
 * mounted at a path or without credentials. Runs on SQLite and, with CLICKTRAIL_TEST_DB=postgres, on PostgreSQL.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ADMIN_KEY, hit, req, startApp, type Res, type TestApp } from "./helpers.js";

const ENV = { CLICKTRAIL_DIALECTS: "o7tracker", AUTH_USER: "admin", AUTH_PASSWORD: "secret", FALLBACK_URL: "https://fallback.example/" };
const FALLBACK = "https://fallback.example/";
const basic = (user: string, pass: string) => `Basic ${Buffer.from(`${user}:${pass}`).toString("base64")}`;
const BASIC = basic("admin", "secret");
const BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
const CURL = "curl/8.5.0";

/** The Campaign struct's field order, which Go's encoding/json keeps. */
const FIELDS = [
  "id",
  "redirect_url",
  "created_at",
  "updated_at",
  "platforms",
  "click_count",
  "android_click_count",
  "iphone_click_count",
  "windowsphone_click_count",
];
/** RFC 3339 as Go's RFC3339Nano writes it (no trailing zeros), here to the millisecond. */
const RFC3339 = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,3})?Z$/;
const CREDENTIALS_BODY = `{"status":"error", "msg": "Missing or wrong credentials."}\n`;

interface Campaign {
  id: number;
  redirect_url: string;
  created_at: string;
  updated_at: string;
  platforms: string[];
  click_count: number;
  android_click_count: number;
  iphone_click_count: number;
  windowsphone_click_count: number;
}

/** An admin request with HTTP Basic credentials (admin:secret unless given); a body that is not a string is sent as JSON. */
function admin(base: string, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Res> {
  const raw = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
  return req(base, method, path, {
    headers: { authorization: BASIC, ...(raw !== undefined ? { "content-type": "application/json" } : {}), ...headers },
    raw,
  });
}

/** A click as a phone's browser (or curl) sends it: no credentials. */
function track(base: string, path: string, ua = BROWSER, method = "GET"): Promise<Res> {
  return req(base, method, path, { headers: { "user-agent": ua }, key: null });
}

function assertCampaign(r: Res): Campaign {
  assert.equal(r.status, 200, r.body);
  assert.equal(r.headers["content-type"], "application/json; charset=utf-8");
  const c = JSON.parse(r.body) as Campaign;
  assert.deepEqual(Object.keys(c), FIELDS, r.body);
  assert.ok(Number.isSafeInteger(c.id) && c.id > 0, r.body);
  assert.match(c.created_at, RFC3339);
  assert.match(c.updated_at, RFC3339);
  return c;
}

function assertList(r: Res): Campaign[] {
  assert.equal(r.status, 200, r.body);
  assert.equal(r.headers["content-type"], "application/json; charset=utf-8");
  const list = JSON.parse(r.body) as Campaign[];
  assert.ok(Array.isArray(list), r.body);
  for (const c of list) assert.deepEqual(Object.keys(c), FIELDS, r.body);
  return list;
}

/** o7tracker's ErrorToJSON: 500 {"msg": …, "status": "error"}, exactly. */
function assertO7Error(r: Res, msg: string) {
  assert.equal(r.status, 500, r.body);
  assert.equal(r.headers["content-type"], "application/json; charset=utf-8");
  assert.equal(r.body, JSON.stringify({ msg, status: "error" }));
}

function assertForbidden(r: Res) {
  assert.equal(r.status, 403, r.body);
  assert.equal(r.headers["content-type"], "text/plain; charset=utf-8");
  assert.equal(r.body, CREDENTIALS_BODY);
  assert.equal(r.headers["www-authenticate"], undefined);
}

/** Go's http.Redirect to the fallback: 307, and on GET an HTML content type and the one-line note. */
function assertFallback(r: Res, location = FALLBACK, method = "GET") {
  assert.equal(r.status, 307, r.body);
  assert.equal(r.headers.location, location);
  if (method === "GET" || method === "HEAD") assert.equal(r.headers["content-type"], "text/html; charset=utf-8");
  assert.equal(r.body, method === "GET" ? `<a href="${location}">Temporary Redirect</a>.\n\n` : "");
}

function assertTracked(r: Res, location: string) {
  assert.equal(r.status, 307, r.body);
  assert.equal(r.headers.location, location);
}

/** Every stored link event of the project (clicks, refused clicks, orphan visits). */
async function storedEvents(base: string): Promise<any[]> {
  const r = await req(base, "GET", "/api/v1/clicks/export?format=ndjson");
  assert.equal(r.status, 200, r.body);
  return r.body
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ids = (list: Campaign[] | null) => (list ?? []).map((c) => c.id);

// ---------------------------------------------------------------------------------------------------------------------
describe("o7tracker: a campaign's life cycle", () => {
  let t: TestApp;
  let base: string;
  const URL1 = "https://example.com/landing?a=1&b=2";
  const URL2 = "https://example.org/new";
  let created: Campaign;
  let id: number;

  before(async () => {
    t = await startApp(ENV);
    base = t.base;
  });
  after(async () => {
    await t?.close();
  });

  test("no campaigns yet: the list is null, not []", async () => {
    const r = await admin(base, "GET", "/admin/campaigns");
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "application/json; charset=utf-8");
    assert.equal(r.body, "null");
  });

  test("create: 200 with the campaign, fields in the original's order, & escaped as \\u0026", async () => {
    const r = await admin(base, "POST", "/admin/campaigns", { redirect_url: URL1, platforms: ["WindowsPhone", "Android", "IPhone"] });
    created = assertCampaign(r);
    id = created.id;
    assert.ok(r.body.includes(`"redirect_url":"https://example.com/landing?a=1\\u0026b=2"`), r.body);
    assert.ok(!r.body.includes("&"), r.body);
    assert.equal(created.redirect_url, URL1);
    assert.deepEqual(created.platforms, ["WindowsPhone", "Android", "IPhone"]);
    assert.equal(created.created_at, created.updated_at);
    assert.ok(Math.abs(Date.parse(created.created_at) - Date.now()) < 60_000);
    for (const k of FIELDS.slice(5)) assert.equal(created[k as keyof Campaign], 0, k);
  });

  test("get: the same campaign, under both spellings of the path", async () => {
    assert.deepEqual(assertCampaign(await admin(base, "GET", `/admin/campaigns/${id}`)), created);
    assert.deepEqual(assertCampaign(await admin(base, "GET", `/admin/campains/${id}`)), created);
    // any method that is not POST, PUT or DELETE reads
    assert.deepEqual(assertCampaign(await admin(base, "PATCH", `/admin/campaigns/${id}`)), created);
  });

  test("track on each platform: 307 to redirect_url, browsers and curl alike", async () => {
    assertTracked(await track(base, `/track/${id}?platform=Android`), URL1);
    assertTracked(await track(base, `/track/${id}?platform=Android`, CURL), URL1);
    assertTracked(await track(base, `/track/${id}?platform=IPhone`), URL1);
    assertTracked(await track(base, `/track/${id}?platform=WindowsPhone`, CURL), URL1);
  });

  test("update: absent fields keep their values, platforms are replaced, updated_at moves", async () => {
    await sleep(5);
    const c = assertCampaign(await admin(base, "PUT", `/admin/campaigns/${id}`, { platforms: ["Android", "WindowsPhone"] }));
    assert.equal(c.id, id);
    assert.equal(c.redirect_url, URL1);
    assert.deepEqual(c.platforms, ["Android", "WindowsPhone"]);
    assert.equal(c.created_at, created.created_at);
    assert.ok(Date.parse(c.updated_at) > Date.parse(created.updated_at), `${c.updated_at} after ${created.updated_at}`);
    assert.deepEqual(assertCampaign(await admin(base, "GET", `/admin/campaigns/${id}`)).platforms, ["Android", "WindowsPhone"]);
  });

  test("IPhone, removed by the PUT, still redirects and counts (as in the original's integration test)", async () => {
    assertTracked(await track(base, `/track/${id}?platform=IPhone`), URL1);
  });

  test("a PUT of redirect_url alone keeps the platforms, and the next click goes to the new URL (no stale cache)", async () => {
    const c = assertCampaign(await admin(base, "PUT", `/admin/campains/${id}`, { redirect_url: URL2 }));
    assert.equal(c.redirect_url, URL2);
    assert.deepEqual(c.platforms, ["Android", "WindowsPhone"]);
    // IPhone was cached with the old URL in the original; here every platform follows at once
    assertTracked(await track(base, `/track/${id}?platform=IPhone`, CURL), URL2);
    assertTracked(await track(base, `/track/${id}?platform=Android`), URL2);
  });

  test("/tasks/update_stats answers Updated. without credentials; the counts include bots", async () => {
    const u = await req(base, "GET", "/tasks/update_stats", { key: null });
    assert.equal(u.status, 200);
    assert.equal(u.body, "Updated.");
    assert.equal((await req(base, "POST", "/tasks/update_stats", { key: null })).body, "Updated.");
    const c = assertCampaign(await admin(base, "GET", `/admin/campaigns/${id}`));
    assert.deepEqual(
      { click_count: c.click_count, a: c.android_click_count, i: c.iphone_click_count, w: c.windowsphone_click_count },
      { click_count: 7, a: 3, i: 3, w: 1 },
    );
    // the clicks are not an update: updated_at is the PUT's
    assert.equal(c.redirect_url, URL2);
  });

  test("the campaign in the native API: a link on the dialect's domain, one rule per platform, tagged o7tracker", async () => {
    const r = await req(base, "GET", `/api/v1/links/${id}`);
    assert.equal(r.status, 200, r.body);
    const l = r.json;
    assert.equal(l.id, id);
    assert.equal(l.domain, "o7tracker.invalid");
    assert.equal(l.target, URL2);
    assert.deepEqual(l.tags, ["o7tracker"]);
    assert.deepEqual(
      l.rules.map((x: any) => ({ name: x.name, platform: x.platform, target: x.target })),
      [
        { name: "Android", platform: ["android"], target: URL2 },
        { name: "WindowsPhone", platform: ["windows-phone"], target: URL2 },
      ],
    );
    // links.clicks counts people only: 4 of the 7 clicks came from a browser, 3 from curl
    assert.equal(l.clicks, 4);
  });

  test("the campaign's native stats: per platform (as asked by ?platform=) and per rule that chose the target", async () => {
    const r = await req(base, "GET", `/api/v1/links/${id}/stats?bots=include`);
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.clicks, 7);
    const asMap = (b: { value: string; clicks: number }[]) => Object.fromEntries(b.map((x) => [x.value, x.clicks]));
    assert.deepEqual(asMap(r.json.breakdowns.platform), { android: 3, ios: 3, "windows-phone": 1 });
    // first three clicks under the original rules, then IPhone twice without a rule of its own, then Android again
    assert.deepEqual(asMap(r.json.breakdowns.rule), { Android: 3, IPhone: 1, WindowsPhone: 1, "(default)": 2 });
    const people = await req(base, "GET", `/api/v1/links/${id}/stats`);
    assert.equal(people.json.clicks, 4);
  });

  test("list: ?platforms= filters with AND, ignores unsupported names, newest first; nothing matching is null", async () => {
    const mk = async (platforms: string[]) =>
      assertCampaign(await admin(base, "POST", "/admin/campaigns", { redirect_url: "https://example.net/" + platforms.join("-"), platforms })).id;
    const b = await mk(["Android"]);
    const c = await mk(["IPhone", "Android"]);
    const d = await mk([]);
    const e = await mk(["WindowsPhone"]);
    const list = async (q: string, path = "/admin/campaigns") => assertList(await admin(base, "GET", path + q));

    const all = await list("");
    assert.deepEqual(ids(all), [e, d, c, b, id]);
    assert.deepEqual(all[4]!.platforms, ["Android", "WindowsPhone"]);
    assert.equal(all[4]!.click_count, 7, "a listed campaign carries its counts");
    assert.deepEqual(all[2]!.platforms, ["IPhone", "Android"]);
    assert.deepEqual(all[1]!.platforms, []);
    assert.deepEqual(ids(await list("?platforms=Android")), [c, b, id]);
    assert.deepEqual(ids(await list("?platforms=Android,IPhone")), [c]);
    assert.deepEqual(ids(await list("?platforms=WindowsPhone")), [e, id]);
    assert.deepEqual(ids(await list("?platforms=IPhone,Foo")), [c]);
    assert.deepEqual(ids(await list("?platforms=Foo")), [e, d, c, b, id]);
    assert.deepEqual(ids(await list("?platforms=android")), [e, d, c, b, id], "names are case-sensitive: android is not supported");
    assert.deepEqual(ids(await list("?platforms=")), [e, d, c, b, id]);
    // no trimming: " IPhone" is no platform name, so only Android filters
    assert.deepEqual(ids(await list("?platforms=Android,%20IPhone")), [c, b, id]);
    // the first value only
    assert.deepEqual(ids(await list("?platforms=Android&platforms=IPhone")), [c, b, id]);
    assert.deepEqual(ids(await list("?platforms=Android", "/admin/campains")), [c, b, id]);
    const none = await admin(base, "GET", "/admin/campaigns?platforms=Android,IPhone,WindowsPhone");
    assert.equal(none.status, 200);
    assert.equal(none.body, "null");
  });

  test("a campaign without platforms counts its clicks by the platform asked", async () => {
    const d = assertCampaign(await admin(base, "POST", "/admin/campaigns", { redirect_url: "https://example.net/none", platforms: [] }));
    assertTracked(await track(base, `/track/${d.id}?platform=Android`), "https://example.net/none");
    assertTracked(await track(base, `/track/${d.id}?platform=WindowsPhone`, CURL), "https://example.net/none");
    await req(base, "GET", "/tasks/update_stats", { key: null });
    const c = assertCampaign(await admin(base, "GET", `/admin/campaigns/${d.id}`));
    assert.deepEqual([c.click_count, c.android_click_count, c.iphone_click_count, c.windowsphone_click_count], [2, 1, 0, 1]);
  });

  test("delete: 204 with no body; then the campaign is no such entity everywhere and /track falls back", async () => {
    const r = await admin(base, "DELETE", `/admin/campaigns/${id}`);
    assert.equal(r.status, 204);
    assert.equal(r.body, "");
    assertO7Error(await admin(base, "GET", `/admin/campaigns/${id}`), "datastore: no such entity");
    assert.equal((await admin(base, "GET", `/admin/campaigns/${id}`)).body, `{"msg":"datastore: no such entity","status":"error"}`);
    assertO7Error(await admin(base, "DELETE", `/admin/campaigns/${id}`), "datastore: no such entity");
    assertO7Error(await admin(base, "PUT", `/admin/campaigns/${id}`, { redirect_url: URL1 }), "datastore: no such entity");
    const before = (await storedEvents(base)).length;
    assertFallback(await track(base, `/track/${id}?platform=Android`));
    assert.equal((await storedEvents(base)).length, before, "no click stored on a fallback");
    assert.ok(!ids(assertList(await admin(base, "GET", "/admin/campaigns"))).includes(id));
    assert.equal((await req(base, "GET", `/api/v1/links/${id}`)).status, 404);
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("o7tracker: credentials, validation and error messages", () => {
  let t: TestApp;
  let base: string;
  let id: number;

  before(async () => {
    t = await startApp(ENV);
    base = t.base;
    id = assertCampaign(await admin(base, "POST", "/admin/campaigns", { redirect_url: "https://example.com/v", platforms: ["Android"] })).id;
  });
  after(async () => {
    await t?.close();
  });

  test("wrong or missing credentials: 403, text/plain, the original's body, before anything else is looked at", async () => {
    for (const authorization of [
      basic("admin", "wrong"),
      basic("root", "secret"),
      basic("admin", ""),
      `Bearer ${ADMIN_KEY}`,
      "Basic !!!",
      "Basic YWRtaW4=",
    ]) {
      assertForbidden(await req(base, "GET", "/admin/campaigns", { headers: { authorization } }));
    }
    assertForbidden(await req(base, "GET", "/admin/campaigns", { key: null }));
    for (const [method, path] of [
      ["POST", "/admin/campaigns"],
      ["GET", `/admin/campaigns/${id}`],
      ["PUT", `/admin/campaigns/${id}`],
      ["DELETE", `/admin/campaigns/${id}`],
      ["GET", "/admin/campaigns/abc"],
      ["GET", "/admin/campains"],
    ] as const) {
      assertForbidden(
        await req(base, method, path, {
          key: null,
          raw: method === "POST" || method === "PUT" ? `{"redirect_url":"https://x.example/"}` : undefined,
        }),
      );
    }
    // nothing was changed or deleted
    assert.equal(assertCampaign(await admin(base, "GET", `/admin/campaigns/${id}`)).redirect_url, "https://example.com/v");
  });

  test("user and password are compared case-insensitively, as strings.EqualFold did", async () => {
    for (const [u, p] of [
      ["ADMIN", "SECRET"],
      ["Admin", "sEcReT"],
    ]) {
      assertList(await admin(base, "GET", "/admin/campaigns", undefined, { authorization: basic(u!, p!) }));
    }
  });

  test("validation errors are 500 with the original's messages", async () => {
    const post = (body: unknown) => admin(base, "POST", "/admin/campaigns", body);
    assertO7Error(
      await post({ redirect_url: "https://example.com/", platforms: ["Foo", "Android"] }),
      "Submited platforms are invalid [Foo Android]",
    );
    assert.equal((await post({ platforms: ["Android"] })).body, `{"msg":"\\"redirect_url\\" is required parameter","status":"error"}`);
    assertO7Error(await post({ platforms: ["Android"] }), `"redirect_url" is required parameter`);
    assertO7Error(await post({ redirect_url: "", platforms: [] }), `"redirect_url" is required parameter`);
    assertO7Error(await post({ redirect_url: "not a url", platforms: ["Android"] }), `Invalid "redirect_url"`);
    // stricter than the original, which took any request URI: a redirect needs an absolute http(s) URL
    assertO7Error(await post({ redirect_url: "/path", platforms: ["Android"] }), `Invalid "redirect_url"`);
    assertO7Error(await post({ redirect_url: "ftp://example.com/f", platforms: ["Android"] }), `Invalid "redirect_url"`);
    assertO7Error(await post(""), "EOF");
    assertO7Error(
      await admin(base, "PUT", `/admin/campaigns/${id}`, { platforms: ["Android", "Windows"] }),
      "Submited platforms are invalid [Android Windows]",
    );
    // a refused PUT changes nothing
    assert.deepEqual(assertCampaign(await admin(base, "GET", `/admin/campaigns/${id}`)).platforms, ["Android"]);
  });

  test("bad ids are strconv.ParseInt errors, unknown ids no such entity", async () => {
    assertO7Error(await admin(base, "GET", "/admin/campaigns/abc"), `strconv.ParseInt: parsing "abc": invalid syntax`);
    assertO7Error(await admin(base, "GET", "/admin/campaigns/"), `strconv.ParseInt: parsing "": invalid syntax`);
    assertO7Error(await admin(base, "PUT", "/admin/campaigns/abc", { platforms: [] }), `strconv.ParseInt: parsing "abc": invalid syntax`);
    assertO7Error(await admin(base, "DELETE", "/admin/campaigns/abc"), `strconv.ParseInt: parsing "abc": invalid syntax`);
    assertO7Error(await admin(base, "GET", "/admin/campaigns/987654"), "datastore: no such entity");
  });

  test("PUT and DELETE without an id: a 500 JSON error (the original panicked)", async () => {
    const put = await admin(base, "PUT", "/admin/campaigns", { platforms: [] });
    assert.equal(put.status, 500);
    assert.equal(put.json.status, "error");
    assert.match(put.json.msg, /id/);
    const del = await admin(base, "DELETE", "/admin/campaigns");
    assert.equal(del.status, 500);
    assert.equal(del.json.status, "error");
    assert.ok(assertList(await admin(base, "GET", "/admin/campaigns")).length >= 1, "nothing was deleted");
  });

  test("the body is read as Go decoded it: any content type, field names case-insensitive, server fields ignored", async () => {
    const r = await admin(
      base,
      "POST",
      "/admin/campaigns/12345",
      `{"Redirect_URL":"https://example.com/ci","PLATFORMS":["IPhone"],"id":12345,"click_count":9,"iphone_click_count":9,"created_at":"2001-01-01T00:00:00Z","updated_at":"2001-01-01T00:00:00Z","unknown":1}`,
      { "content-type": "application/x-www-form-urlencoded" },
    );
    const c = assertCampaign(r);
    assert.equal(c.redirect_url, "https://example.com/ci");
    assert.deepEqual(c.platforms, ["IPhone"]);
    assert.notEqual(c.id, 12345, "the path id and the body id are ignored");
    assert.equal(c.click_count, 0);
    assert.equal(c.iphone_click_count, 0);
    assert.ok(!c.created_at.startsWith("2001"), c.created_at);
    // an empty platform list is valid
    assert.deepEqual(
      assertCampaign(await admin(base, "POST", "/admin/campaigns", { redirect_url: "https://example.com/e", platforms: [] })).platforms,
      [],
    );
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("o7tracker: fallbacks", () => {
  let t: TestApp;
  let base: string;
  let id: number;

  before(async () => {
    t = await startApp(ENV);
    base = t.base;
    id = assertCampaign(await admin(base, "POST", "/admin/campaigns", { redirect_url: "https://example.com/f", platforms: ["Android"] })).id;
  });
  after(async () => {
    await t?.close();
  });

  test("clicks that cannot be tracked go to FALLBACK_URL, and none is stored", async () => {
    const before = (await storedEvents(base)).length;
    for (const path of [
      "/track/987654?platform=Android",
      `/track/${id}?platform=android`,
      `/track/${id}?platform=Foo`,
      `/track/${id}`,
      `/track/${id}?platform=`,
      "/track/abc?platform=Android",
      `/track/${id}/?platform=Android`,
      "/track/?platform=Android",
      "/track/",
      "/track/0?platform=Android",
      "/track/-1?platform=Android",
    ]) {
      assertFallback(await track(base, path), FALLBACK);
    }
    assert.equal((await storedEvents(base)).length, before, "no click stored on a fallback");
    assertTracked(await track(base, `/track/${id}?platform=Android`), "https://example.com/f");
    assert.equal((await storedEvents(base)).length, before + 1);
  });

  test("/track is 301 to /track/, as Go's ServeMux answered", async () => {
    const r = await track(base, "/track");
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, "/track/");
    assert.equal(r.body, `<a href="/track/">Moved Permanently</a>.\n\n`);
  });

  test("/ and every unmatched path are 307 to FALLBACK_URL; a body only on GET; /api/ keeps its 404", async () => {
    for (const path of ["/", "/nothing/here", "/admin", "/admin/campaignsx", "/tasks", "/favicon.ico"]) assertFallback(await track(base, path));
    assertFallback(await track(base, "/nothing", BROWSER, "POST"), FALLBACK, "POST");
    assertFallback(await track(base, "/", BROWSER, "HEAD"), FALLBACK, "HEAD");
    const api = await req(base, "GET", "/api/v1/nothing");
    assert.equal(api.status, 404);
    assert.match(String(api.headers["content-type"]), /^application\/problem\+json/);
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("o7tracker: native links through the dialect", () => {
  let t: TestApp;
  let base: string;

  before(async () => {
    t = await startApp(ENV);
    base = t.base;
    const d = await req(base, "POST", "/api/v1/domains", { body: { hostname: "go.native.test" } });
    assert.equal(d.status, 201, d.body);
  });
  after(async () => {
    await t?.close();
  });

  const mkLink = async (body: Record<string, unknown>) => {
    const r = await req(base, "POST", "/api/v1/links", { body: { domain: "go.native.test", ...body } });
    assert.equal(r.status, 201, r.body);
    return r.json as { id: number; slug: string };
  };

  test("a link with platform rules is listed as a campaign and tracked by its rules", async () => {
    const l = await mkLink({
      slug: "app",
      target: "https://example.com/app",
      rules: [{ name: "ios store", platform: ["ios"], target: "https://apps.apple.com/x" }],
    });
    const campaign = assertList(await admin(base, "GET", "/admin/campaigns")).find((c) => c.id === l.id);
    assert.ok(campaign, "the native link is listed");
    assert.equal(campaign.redirect_url, "https://example.com/app");
    assert.deepEqual(campaign.platforms, ["IPhone"]);
    assert.deepEqual(ids(assertList(await admin(base, "GET", "/admin/campaigns?platforms=IPhone"))), [l.id]);
    assert.equal((await admin(base, "GET", "/admin/campaigns?platforms=Android")).body, "null");

    assertTracked(await track(base, `/track/${l.id}?platform=IPhone`), "https://apps.apple.com/x");
    assertTracked(await track(base, `/track/${l.id}?platform=Android`, CURL), "https://example.com/app");
    // the link still answers on its own domain, with its own status
    const own = await hit(base, "go.native.test", "/app", {
      "user-agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    });
    assert.equal(own.status, 302);
    assert.equal(own.headers.location, "https://apps.apple.com/x");

    await req(base, "GET", "/tasks/update_stats", { key: null });
    const c = assertCampaign(await admin(base, "GET", `/admin/campaigns/${l.id}`));
    assert.deepEqual([c.click_count, c.android_click_count, c.iphone_click_count, c.windowsphone_click_count], [3, 1, 2, 0]);
  });

  test("a link's max_clicks applies to /track (a refused click falls back); its allowed platforms do not", async () => {
    const capped = await mkLink({
      target: "https://example.com/capped",
      max_clicks: 1,
      rules: [{ name: "Android", platform: ["android"], target: "https://example.com/capped" }],
    });
    assertTracked(await track(base, `/track/${capped.id}?platform=Android`), "https://example.com/capped");
    assertFallback(await track(base, `/track/${capped.id}?platform=Android`));

    const only = await mkLink({ target: "https://example.com/only-ios", allowed_platforms: ["ios"] });
    assertTracked(await track(base, `/track/${only.id}?platform=Android`), "https://example.com/only-ios");
    assert.deepEqual(assertCampaign(await admin(base, "GET", `/admin/campaigns/${only.id}`)).platforms, ["IPhone"]);
  });

  test("a link without targeting is not listed, but can be read by id", async () => {
    const plain = await mkLink({ target: "https://example.com/plain" });
    assert.ok(!ids(assertList(await admin(base, "GET", "/admin/campaigns"))).includes(plain.id));
    const c = assertCampaign(await admin(base, "GET", `/admin/campaigns/${plain.id}`));
    assert.equal(c.redirect_url, "https://example.com/plain");
    assert.deepEqual(c.platforms, []);
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("o7tracker: mounted at a path", () => {
  let t: TestApp;
  let base: string;

  before(async () => {
    t = await startApp({ ...ENV, CLICKTRAIL_DIALECTS: "o7tracker:/o7" });
    base = t.base;
  });
  after(async () => {
    await t?.close();
  });

  test("/o7/admin/campaigns, /o7/track and /o7/tasks/update_stats answer; /admin/campaigns does not", async () => {
    assert.equal((await admin(base, "GET", "/o7/admin/campaigns")).body, "null");
    const c = assertCampaign(await admin(base, "POST", "/o7/admin/campaigns", { redirect_url: "https://example.com/m", platforms: ["Android"] }));
    assert.deepEqual(assertCampaign(await admin(base, "GET", `/o7/admin/campaigns/${c.id}`)), c);
    assert.deepEqual(ids(assertList(await admin(base, "GET", "/o7/admin/campains?platforms=Android"))), [c.id]);
    assertForbidden(await req(base, "GET", "/o7/admin/campaigns", { key: null }));
    assertTracked(await track(base, `/o7/track/${c.id}?platform=Android`), "https://example.com/m");
    assert.equal((await req(base, "GET", "/o7/tasks/update_stats", { key: null })).body, "Updated.");
    assert.equal(assertCampaign(await admin(base, "GET", `/o7/admin/campaigns/${c.id}`)).android_click_count, 1);

    const root = await admin(base, "GET", "/admin/campaigns");
    assert.equal(root.status, 404);
    assert.match(String(root.headers["content-type"]), /^application\/problem\+json/);
  });

  test("unmatched /o7/ paths fall back; /o7/track is 301 to /o7/track/; the native API still works", async () => {
    for (const path of ["/o7/", "/o7/nothing", "/o7/track/abc?platform=Android", "/o7/track/987654?platform=Android", "/o7/admin"]) {
      assertFallback(await track(base, path));
    }
    const r = await track(base, "/o7/track");
    assert.equal(r.status, 301);
    assert.equal(r.headers.location, "/o7/track/");
    const health = await req(base, "GET", "/api/v1/links");
    assert.equal(health.status, 200, health.body);
    const nothing = await track(base, "/nothing");
    assert.equal(nothing.status, 404, "outside its mount path the dialect has no fallback");
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("o7tracker: without AUTH_USER and AUTH_PASSWORD", () => {
  test("every admin request is refused, with or without credentials; tracking and the native API work", async () => {
    const t = await startApp({ CLICKTRAIL_DIALECTS: "o7tracker" });
    try {
      const base = t.base;
      for (const headers of [{}, { authorization: basic("", "") }, { authorization: basic("admin", "admin") }] as Record<string, string>[]) {
        assertForbidden(await req(base, "GET", "/admin/campaigns", { headers, key: null }));
        assertForbidden(await req(base, "POST", "/admin/campaigns", { headers, key: null, raw: `{"redirect_url":"https://example.com/"}` }));
        assertForbidden(await req(base, "DELETE", "/admin/campaigns/1", { headers, key: null }));
      }
      assert.equal((await req(base, "POST", "/api/v1/domains", { body: { hostname: "go.noauth.test" } })).status, 201);
      const l = await req(base, "POST", "/api/v1/links", {
        body: {
          domain: "go.noauth.test",
          target: "https://example.com/na",
          rules: [{ name: "ios store", platform: ["ios"], target: "https://apps.apple.com/na" }],
        },
      });
      assert.equal(l.status, 201, l.body);
      assertTracked(await track(base, `/track/${l.json.id}?platform=IPhone`), "https://apps.apple.com/na");
      // FALLBACK_URL unset: the original's default
      assertFallback(await track(base, `/track/${l.json.id}?platform=Foo`), "http://outfit7.com");
    } finally {
      await t.close();
    }
  });

  test("AUTH_USER alone is not enough either", async () => {
    const t = await startApp({ CLICKTRAIL_DIALECTS: "o7tracker", AUTH_USER: "admin" });
    try {
      assertForbidden(await req(t.base, "GET", "/admin/campaigns", { headers: { authorization: basic("admin", "") }, key: null }));
      assertForbidden(await req(t.base, "GET", "/admin/campaigns", { key: null }));
    } finally {
      await t.close();
    }
  });
});
