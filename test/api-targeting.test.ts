/**
 * Targeting rules, allowed platforms and native campaigns, end to end over real HTTP on loopback (SQLite, or
 * PostgreSQL in the PostgreSQL round): the API that saves them, the redirect that follows them, and the stats that
 * count them. Clicks carry real browser user agents.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import path from "node:path";
import { hit, req, startApp, tmpDir, type Res, type TestApp } from "./helpers.js";
import { writeCountryDb } from "./mmdb.js";

const UA = {
  iphone: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
  ipad: "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
  android: "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
  windowsPhone:
    "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0.2743.116 Mobile Safari/537.36 Edge/15.15063",
  windows: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
  mac: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
  linux: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
  googlebot: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
} as const;
type Device = keyof typeof UA;

const HOST = "tg.example";
const FB_HOST = "tg-fallback.example";
const FALLBACK = "https://example.com/fallback";
const HOUR = 3_600_000;

let t: TestApp;
let base: string;

before(async () => {
  t = await startApp();
  base = t.base;
  await mkDomain(base, HOST);
  await mkDomain(base, FB_HOST, { fallback_url: FALLBACK });
});
after(async () => {
  await t?.close();
});

function assertProblem(r: Res, status: number, ...mentions: string[]) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  assert.match(String(r.headers["content-type"]), /^application\/problem\+json/, r.body);
  assert.equal(r.json?.status, status, r.body);
  assert.equal(typeof r.json.detail, "string", r.body);
  const hay = `${r.json.detail} ${r.json.field ?? ""}`;
  for (const m of mentions) assert.ok(hay.includes(m), `problem should mention ${JSON.stringify(m)}: ${r.body}`);
}

async function mkDomain(b: string, hostname: string, extra: Record<string, unknown> = {}) {
  const r = await req(b, "POST", "/api/v1/domains", { body: { hostname, ...extra } });
  assert.equal(r.status, 201, r.body);
  return r.json as { id: number; hostname: string };
}

async function mkLink(body: Record<string, unknown>, key?: string, b = base) {
  const r = await req(b, "POST", "/api/v1/links", { body: { domain: HOST, ...body }, key });
  assert.equal(r.status, 201, r.body);
  return r.json as { id: number; slug: string; [k: string]: any };
}

async function patchLink(id: number, body: Record<string, unknown>) {
  const r = await req(base, "PATCH", `/api/v1/links/${id}`, { body });
  assert.equal(r.status, 200, r.body);
  return r.json;
}

async function mkCampaign(body: Record<string, unknown>, key?: string) {
  const r = await req(base, "POST", "/api/v1/campaigns", { body, key });
  assert.equal(r.status, 201, r.body);
  return r.json as { id: number; name: string; utm: Record<string, string>; notes: string | null; created_at: string; updated_at: string };
}

async function getJson(path: string, b = base) {
  const r = await req(b, "GET", path);
  assert.equal(r.status, 200, `${path}: ${r.body.slice(0, 400)}`);
  return r.json;
}

/** A click from `device` on HOST (or `host`), with extra headers (cookie, accept-language). */
function click(device: Device, pathname: string, headers: Record<string, string> = {}, host = HOST, b = base) {
  return hit(b, host, pathname, { "user-agent": UA[device], ...headers });
}

/** The Location of a click that must be a 302. */
async function locationOf(device: Device, pathname: string, headers: Record<string, string> = {}, host = HOST): Promise<string> {
  const r = await click(device, pathname, headers, host);
  assert.equal(r.status, 302, `${device} ${pathname}: ${r.status} ${r.body}`);
  return String(r.headers.location);
}

async function exportNdjson(query: string): Promise<any[]> {
  const r = await req(base, "GET", `/api/v1/clicks/export?format=ndjson&${query}`);
  assert.equal(r.status, 200, r.body);
  return r.body
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

async function otherProject(name: string) {
  const p = await t.app.services.auth.createProject(name);
  const { token } = await t.app.services.auth.createKey(p.id, `${name}-admin`, ["admin"]);
  return token;
}

const toMap = (rows: { value: string; clicks: number }[]) => Object.fromEntries(rows.map((r) => [r.value, r.clicks]));
const sumSeries = (s: { clicks: number }[]) => s.reduce((n, b) => n + b.clicks, 0);
const utmOf = (location: string) => Object.fromEntries([...new URL(location).searchParams].filter(([k]) => k.startsWith("utm_")));

// ---------------------------------------------------------------------------------------------------------------------
describe("targeting rules on the redirect", () => {
  test("each platform gets its rule's target; an unmatched platform gets the link's own", async () => {
    await mkLink({
      slug: "plat",
      target: "https://example.com/default",
      rules: [
        { name: "ios", platform: ["IPhone"], target: "https://example.com/ios" },
        { name: "android", platform: ["android"], target: "https://example.com/android" },
        { name: "wp", platform: ["WindowsPhone"], target: "https://example.com/wp" },
        { name: "windows", platform: ["windows"], target: "https://example.com/windows" },
        { name: "mac", platform: ["mac"], target: "https://example.com/mac" },
      ],
    });
    const expected: Record<Device, string> = {
      iphone: "https://example.com/ios",
      ipad: "https://example.com/ios",
      android: "https://example.com/android",
      // its user agent also names Android and Windows: it is neither
      windowsPhone: "https://example.com/wp",
      windows: "https://example.com/windows",
      mac: "https://example.com/mac",
      linux: "https://example.com/default",
      googlebot: "https://example.com/default",
    };
    for (const [device, location] of Object.entries(expected)) assert.equal(await locationOf(device as Device, "/plat"), location, device);
  });

  test("platform classes: phones and tablets are mobile, computers are desktop", async () => {
    await mkLink({
      slug: "classes",
      target: "https://example.com/other",
      rules: [
        { name: "phones", platform: ["mobile"], target: "https://example.com/m" },
        { name: "computers", platform: ["desktop"], target: "https://example.com/d" },
      ],
    });
    for (const d of ["iphone", "ipad", "android", "windowsPhone"] as const) assert.equal(await locationOf(d, "/classes"), "https://example.com/m", d);
    for (const d of ["windows", "mac", "linux"] as const) assert.equal(await locationOf(d, "/classes"), "https://example.com/d", d);
    assert.equal(await locationOf("googlebot", "/classes"), "https://example.com/other", "a bot is neither");
  });

  test("the first matching rule wins, in the order given (and after reordering)", async () => {
    const l = await mkLink({
      slug: "order",
      target: "https://example.com/own",
      rules: [
        { name: "any mobile", platform: ["mobile"], target: "https://example.com/mobile" },
        { name: "iphone", platform: ["ios"], target: "https://example.com/iphone" },
        { name: "everyone", target: "https://example.com/everyone" },
      ],
    });
    assert.equal(await locationOf("iphone", "/order"), "https://example.com/mobile");
    assert.equal(await locationOf("android", "/order"), "https://example.com/mobile");
    assert.equal(await locationOf("linux", "/order"), "https://example.com/everyone", "a rule without conditions catches the rest");
    await patchLink(l.id, {
      rules: [
        { name: "iphone", platform: ["ios"], target: "https://example.com/iphone" },
        { name: "any mobile", platform: ["mobile"], target: "https://example.com/mobile" },
      ],
    });
    assert.equal(await locationOf("iphone", "/order"), "https://example.com/iphone");
    assert.equal(await locationOf("android", "/order"), "https://example.com/mobile");
    assert.equal(await locationOf("linux", "/order"), "https://example.com/own");
  });

  test("?platform= overrides the user agent's platform on a targeted link only", async () => {
    const targeted = await mkLink({
      slug: "override",
      target: "https://example.com/default",
      rules: [
        { name: "android", platform: ["android"], target: "https://example.com/android" },
        { name: "ios", platform: ["ios"], target: "https://example.com/ios" },
        { name: "wp", platform: ["windows-phone"], target: "https://example.com/wp" },
      ],
    });
    assert.equal(await locationOf("linux", "/override?platform=Android"), "https://example.com/android");
    assert.equal(await locationOf("linux", "/override?platform=IPhone"), "https://example.com/ios");
    assert.equal(await locationOf("iphone", "/override?platform=WindowsPhone"), "https://example.com/wp");
    assert.equal(await locationOf("android", "/override?utm_x=1&platform=ios"), "https://example.com/ios");
    assert.equal(await locationOf("linux", "/override?platform=nokia"), "https://example.com/default", "an unknown platform: the user agent's");
    assert.equal(await locationOf("linux", "/override?platform=mobile"), "https://example.com/default", "a class is not a platform");
    assert.equal(await locationOf("iphone", "/override?platform="), "https://example.com/ios");

    const plain = await mkLink({ slug: "no-override", target: "https://example.com/plain" });
    assert.equal(await locationOf("linux", "/no-override?platform=Android"), "https://example.com/plain");

    const [e] = await exportNdjson(`link_id=${targeted.id}`);
    assert.equal(e.platform, "android", "the click is counted on the platform it asked for");
    assert.equal(e.os, "Linux", "the user agent is still recorded as it was");
    assert.equal(e.rule, "android");
    const [p] = await exportNdjson(`link_id=${plain.id}`);
    assert.equal(p.platform, "linux");
    assert.equal(p.rule, null);
  });

  test("Accept-Language: the preferred language, 'de' matching de-AT", async () => {
    await mkLink({
      slug: "lang",
      target: "https://example.com/en",
      rules: [
        { name: "german", language: ["de"], target: "https://example.com/de" },
        { name: "brazil", language: ["pt-BR"], target: "https://example.com/br" },
      ],
    });
    const lang = (v: string | null) => locationOf("linux", "/lang", v === null ? {} : { "accept-language": v });
    assert.equal(await lang("de-AT,de;q=0.9,en;q=0.8"), "https://example.com/de");
    assert.equal(await lang("DE"), "https://example.com/de");
    assert.equal(await lang("en-US,en;q=0.9,de;q=0.8"), "https://example.com/en", "German is not preferred");
    assert.equal(await lang("fr;q=0.5, pt-BR"), "https://example.com/br");
    assert.equal(await lang("pt-PT"), "https://example.com/en");
    assert.equal(await lang("de;q=0, en;q=0.3"), "https://example.com/en", "q=0 is not acceptable");
    assert.equal(await lang("*"), "https://example.com/en");
    assert.equal(await lang(null), "https://example.com/en");
  });

  test("query rules: present and equal; with forward_query the query still follows", async () => {
    await mkLink({
      slug: "query",
      target: "https://example.com/own",
      rules: [
        { name: "ref", query: { ref: true }, target: "https://example.com/ref" },
        { name: "ads", query: { src: "ads", v: "2" }, target: "https://example.com/ads" },
      ],
    });
    assert.equal(await locationOf("linux", "/query?ref"), "https://example.com/ref");
    assert.equal(await locationOf("linux", "/query?x=1&ref=abc"), "https://example.com/ref");
    assert.equal(await locationOf("linux", "/query?src=ads&v=2"), "https://example.com/ads");
    assert.equal(await locationOf("linux", "/query?src=ads"), "https://example.com/own", "every parameter of the rule must be there");
    assert.equal(await locationOf("linux", "/query?src=mail&v=2"), "https://example.com/own");
    assert.equal(await locationOf("linux", "/query"), "https://example.com/own");

    await mkLink({
      slug: "query-fwd",
      target: "https://example.com/own",
      forward_query: true,
      rules: [{ name: "ads", query: { src: "ads" }, target: "https://example.com/ads?k=1" }],
    });
    assert.equal(await locationOf("linux", "/query-fwd?src=ads&x=2"), "https://example.com/ads?k=1&src=ads&x=2");
    assert.equal(await locationOf("linux", "/query-fwd?src=no"), "https://example.com/own?src=no");
  });

  test("after and before: only rules whose time window holds now", async () => {
    const now = Date.now();
    await mkLink({
      slug: "timed",
      target: "https://example.com/own",
      rules: [
        { name: "past", before: new Date(now - HOUR).toISOString(), target: "https://example.com/past" },
        { name: "future", after: now + HOUR, target: "https://example.com/future" },
        { name: "current", after: new Date(now - HOUR).toISOString(), before: new Date(now + HOUR).toISOString(), target: "https://example.com/now" },
      ],
    });
    assert.equal(await locationOf("linux", "/timed"), "https://example.com/now");
    await mkLink({
      slug: "timed-out",
      target: "https://example.com/own",
      rules: [
        { name: "past", after: now - 2 * HOUR, before: now - HOUR, target: "https://example.com/past" },
        { name: "future", after: now + HOUR, target: "https://example.com/future" },
      ],
    });
    assert.equal(await locationOf("linux", "/timed-out"), "https://example.com/own");
  });

  test("rules with several conditions need all of them", async () => {
    await mkLink({
      slug: "and",
      target: "https://example.com/own",
      rules: [{ name: "german iphones", platform: ["ios"], language: ["de"], query: { c: "1" }, target: "https://example.com/both" }],
    });
    const de = { "accept-language": "de-DE" };
    assert.equal(await locationOf("iphone", "/and?c=1", de), "https://example.com/both");
    assert.equal(await locationOf("android", "/and?c=1", de), "https://example.com/own");
    assert.equal(await locationOf("iphone", "/and?c=1", { "accept-language": "en" }), "https://example.com/own");
    assert.equal(await locationOf("iphone", "/and?c=2", de), "https://example.com/own");
  });

  test("the rule targets get the link's UTM parameters too", async () => {
    await mkLink({
      slug: "rule-utm",
      target: "https://example.com/own",
      utm: { source: "qr", medium: "print" },
      rules: [{ platform: ["ios"], target: "https://apps.apple.com/app/id1?l=en" }],
    });
    const u = new URL(await locationOf("iphone", "/rule-utm"));
    assert.equal(u.origin + u.pathname, "https://apps.apple.com/app/id1");
    assert.equal(u.searchParams.get("l"), "en");
    assert.deepEqual(utmOf(u.href), { utm_source: "qr", utm_medium: "print" });
    assert.deepEqual(utmOf(await locationOf("linux", "/rule-utm")), { utm_source: "qr", utm_medium: "print" });
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("allowed_platforms", () => {
  test("other platforms get the 404 page; the refused click is logged as click_refused, not counted", async () => {
    const l = await mkLink({ slug: "mobile-only", target: "https://example.com/app", allowed_platforms: ["mobile"] });
    assert.deepEqual(l.allowed_platforms, ["mobile"]);
    for (const d of ["iphone", "ipad", "android", "windowsPhone"] as const)
      assert.equal(await locationOf(d, "/mobile-only"), "https://example.com/app", d);
    for (const d of ["linux", "windows"] as const) {
      const r = await click(d, "/mobile-only");
      assert.equal(r.status, 404, `${d}: ${r.body}`);
      assert.match(String(r.headers["content-type"]), /^text\/html/);
      assert.match(r.body, /Not Found/);
      assert.equal(r.headers.location, undefined);
    }
    assert.equal(await locationOf("linux", "/mobile-only?platform=Android"), "https://example.com/app", "an explicit platform is honoured");

    const refused = await exportNdjson(`name=click_refused&link_id=${l.id}`);
    assert.equal(refused.length, 2, JSON.stringify(refused));
    for (const e of refused) {
      assert.equal(e.name, "click_refused");
      assert.equal(e.link_id, l.id);
      assert.deepEqual(e.data, { reason: "platform" });
    }
    assert.deepEqual(refused.map((e) => e.platform).sort(), ["linux", "windows"]);
    assert.equal((await exportNdjson(`name=click&link_id=${l.id}`)).length, 5);

    const s = await getJson(`/api/v1/links/${l.id}/stats`);
    assert.equal(s.clicks, 5, "refused clicks are not clicks");
    assert.deepEqual(toMap(s.breakdowns.platform), { ios: 2, android: 2, "windows-phone": 1 });
    assert.equal((await getJson(`/api/v1/links/${l.id}`)).clicks, 5);
  });

  test("on a domain with a fallback_url, refused clicks go there", async () => {
    const l = await mkLink({ domain: FB_HOST, slug: "apps", target: "https://example.com/app", allowed_platforms: ["IPhone", "Android"] });
    assert.deepEqual(l.allowed_platforms, ["ios", "android"]);
    assert.equal(await locationOf("iphone", "/apps", {}, FB_HOST), "https://example.com/app");
    assert.equal(await locationOf("android", "/apps", {}, FB_HOST), "https://example.com/app");
    for (const d of ["windowsPhone", "linux", "mac"] as const) assert.equal(await locationOf(d, "/apps", {}, FB_HOST), FALLBACK, d);
    const refused = await exportNdjson(`name=click_refused&link_id=${l.id}`);
    assert.equal(refused.length, 3);
    assert.ok(refused.every((e) => e.data?.reason === "platform"));
  });

  test("with rules: refused first, then the rules choose among the allowed", async () => {
    await mkLink({
      slug: "allowed-rules",
      target: "https://example.com/own",
      allowed_platforms: ["ios", "android"],
      rules: [{ name: "ios", platform: ["ios"], target: "https://example.com/ios" }],
    });
    assert.equal(await locationOf("iphone", "/allowed-rules"), "https://example.com/ios");
    assert.equal(await locationOf("android", "/allowed-rules"), "https://example.com/own");
    assert.equal((await click("mac", "/allowed-rules")).status, 404);
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("rules over the API", () => {
  test("GET shows rules normalised, named, with ISO 8601 times", async () => {
    const l = await mkLink({
      slug: "shown",
      target: "https://example.com/own",
      allowed_platforms: ["iPad", "mac", "Linux"],
      rules: [
        {
          name: "Spring: DACH",
          platform: ["IPhone", "Android"],
          language: ["DE", "de-at"],
          country: ["de", "At"],
          target: " https://example.com/de ",
        },
        { query: { ref: true, src: "ads" }, after: "2026-01-01T01:00:00+01:00", before: 1798761600000, target: "https://example.com/q" },
      ],
    });
    const expectedRules = [
      {
        name: "Spring: DACH",
        target: "https://example.com/de",
        platform: ["ios", "android"],
        language: ["de", "de-at"],
        country: ["DE", "AT"],
      },
      {
        name: "rule 2",
        target: "https://example.com/q",
        query: { ref: true, src: "ads" },
        after: "2026-01-01T00:00:00.000Z",
        before: "2027-01-01T00:00:00.000Z",
      },
    ];
    assert.deepEqual(l.rules, expectedRules, "the create answer");
    const g = await getJson(`/api/v1/links/${l.id}`);
    assert.deepEqual(g.rules, expectedRules);
    assert.deepEqual(g.allowed_platforms, ["ios", "macos", "linux"]);
    assert.equal(g.campaign_id, null);
    const plain = await mkLink({ slug: "shown-plain", target: "https://example.com/" });
    assert.deepEqual(plain.rules, []);
    assert.equal(plain.allowed_platforms, null);
  });

  test("PATCH rules takes effect on the next click; rules: null and allowed_platforms: null clear them", async () => {
    const l = await mkLink({
      slug: "patched",
      target: "https://example.com/own",
      rules: [{ name: "linux", platform: ["linux"], target: "https://example.com/a" }],
    });
    assert.equal(await locationOf("linux", "/patched"), "https://example.com/a", "the link is now cached");

    let j = await patchLink(l.id, { rules: [{ name: "linux", platform: ["linux"], target: "https://example.com/b" }] });
    assert.equal(j.rules[0].target, "https://example.com/b");
    assert.equal(await locationOf("linux", "/patched"), "https://example.com/b");

    j = await patchLink(l.id, { title: "renamed" });
    assert.equal(j.rules.length, 1, "a PATCH without rules keeps them");
    assert.equal(await locationOf("linux", "/patched"), "https://example.com/b");

    j = await patchLink(l.id, { rules: null });
    assert.deepEqual(j.rules, []);
    assert.deepEqual((await getJson(`/api/v1/links/${l.id}`)).rules, []);
    assert.equal(await locationOf("linux", "/patched"), "https://example.com/own");

    j = await patchLink(l.id, { allowed_platforms: ["ios"] });
    assert.deepEqual(j.allowed_platforms, ["ios"]);
    assert.equal((await click("linux", "/patched")).status, 404);
    assert.equal(await locationOf("iphone", "/patched"), "https://example.com/own");

    j = await patchLink(l.id, { allowed_platforms: null, rules: [] });
    assert.equal(j.allowed_platforms, null);
    assert.equal(await locationOf("linux", "/patched"), "https://example.com/own");
  });

  test("bad rules are 400 problem+json naming the rule and the field, on create and on PATCH", async () => {
    const ok = { target: "https://example.com/x" };
    const cases: [unknown, ...string[]][] = [
      [[ok, { ...ok, device: ["mobile"] }], "rules[1]", '"device"'],
      [[{ ...ok, platform: ["ios", "blackberry"] }], "rules[0].platform[1]", "blackberry"],
      [[{ ...ok, platform: [] }], "rules[0].platform"],
      [[{ ...ok, language: ["english"] }], "rules[0].language"],
      [[ok, ok, { ...ok, country: ["DEU"] }], "rules[2].country"],
      [[{ ...ok, query: "ref" }], "rules[0].query"],
      [[{ ...ok, query: { ref: false } }], "rules[0].query"],
      [[{ ...ok, after: "2026-02-01T00:00:00Z", before: "2026-01-01T00:00:00Z" }], "rules[0]", "after", "before"],
      [[{ ...ok, after: "soon" }], "rules[0].after"],
      [
        [
          { ...ok, name: "a" },
          { ...ok, name: "a" },
        ],
        "rules[1].name",
        '"a"',
      ],
      [[{ platform: ["ios"] }], "rules[0].target"],
      [[{ target: "javascript:alert(1)" }], "rules[0].target"],
      [[ok, { target: "ftp://example.com/file" }], "rules[1].target"],
      [[{ ...ok, name: "-bad" }], "rules[0].name"],
      [Array.from({ length: 33 }, () => ok), "rules"],
      [["not a rule"], "rules"],
      ["everything", "rules"],
    ];
    const l = await mkLink({ slug: "bad-rules", target: "https://example.com/own", rules: [{ name: "keep", target: "https://example.com/keep" }] });
    for (const [rules, ...mentions] of cases) {
      const c = await req(base, "POST", "/api/v1/links", { body: { domain: HOST, target: "https://example.com/", rules } });
      assertProblem(c, 400, ...mentions);
      assert.match(String(c.json.field), /^rules/, c.body);
      const p = await req(base, "PATCH", `/api/v1/links/${l.id}`, { body: { rules } });
      assertProblem(p, 400, ...mentions);
      assert.match(String(p.json.field), /^rules/, p.body);
    }
    for (const allowed_platforms of [["ios", "palm"], [], "ios", [1]]) {
      const c = await req(base, "POST", "/api/v1/links", { body: { domain: HOST, target: "https://example.com/", allowed_platforms } });
      assertProblem(c, 400, "allowed_platforms");
      assertProblem(await req(base, "PATCH", `/api/v1/links/${l.id}`, { body: { allowed_platforms } }), 400, "allowed_platforms");
    }
    const g = await getJson(`/api/v1/links/${l.id}`);
    assert.deepEqual(g.rules, [{ name: "keep", target: "https://example.com/keep" }], "refused PATCHes changed nothing");
    assert.equal(g.allowed_platforms, null);
    assert.equal(await locationOf("linux", "/bad-rules"), "https://example.com/keep");
  });

  test("link stats: breakdowns by rule (unmatched as (default)) and by platform", async () => {
    const l = await mkLink({
      slug: "rule-stats",
      target: "https://example.com/own",
      rules: [
        { name: "apple", platform: ["ios"], target: "https://example.com/apple" },
        { name: "droid", platform: ["android"], target: "https://example.com/droid" },
      ],
    });
    for (const [d, q] of [
      ["iphone", ""],
      ["iphone", ""],
      ["ipad", ""],
      ["android", ""],
      ["linux", "?platform=Android"],
      ["linux", ""],
      ["windows", ""],
    ] as const)
      await locationOf(d, `/rule-stats${q}`);
    await click("googlebot", "/rule-stats");
    const s = await getJson(`/api/v1/links/${l.id}/stats`);
    assert.equal(s.clicks, 7);
    assert.equal(s.bot_clicks, 1);
    assert.deepEqual(toMap(s.breakdowns.rule), { apple: 3, droid: 2, "(default)": 2 });
    assert.deepEqual(toMap(s.breakdowns.platform), { ios: 3, android: 2, linux: 1, windows: 1 });
    assert.equal(s.breakdowns.rule[0].value, "apple", "most clicks first");
    const withBots = await getJson(`/api/v1/links/${l.id}/stats?bots=include`);
    assert.equal(withBots.clicks, 8);
    assert.deepEqual(toMap(withBots.breakdowns.rule), { apple: 3, droid: 2, "(default)": 3 });
    assert.equal(toMap(withBots.breakdowns.platform)["(unknown)"], 1, "a bot without an OS has no platform");
    // the same names in the raw log
    const rules = (await exportNdjson(`link_id=${l.id}`)).map((e) => e.rule);
    assert.deepEqual(rules.sort(), ["apple", "apple", "apple", "droid", "droid", null, null, null].sort());
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("country rules (GeoIP)", () => {
  test("a country rule matches the GeoIP country of the client", async () => {
    const dir = tmpDir();
    const db = path.join(dir, "country.mmdb");
    writeCountryDb(db, [
      ["127.0.0.0/8", "FR"],
      ["203.0.113.0/24", "NZ"],
      ["198.51.100.0/24", "DE"],
    ]);
    const app = await startApp({ CLICKTRAIL_GEOIP_DB: db, CLICKTRAIL_TRUSTED_PROXIES: "127.0.0.1" });
    try {
      await mkDomain(app.base, "geo.tg.example");
      const l = await mkLink(
        {
          domain: "geo.tg.example",
          slug: "c",
          target: "https://example.com/world",
          rules: [
            { name: "anz", country: ["nz", "AU"], target: "https://example.com/anz" },
            { name: "dach", country: ["DE", "AT", "CH"], target: "https://example.com/dach" },
          ],
        },
        undefined,
        app.base,
      );
      const from = async (ip: string | null) => {
        const r = await click("linux", "/c", ip ? { "x-forwarded-for": ip } : {}, "geo.tg.example", app.base);
        assert.equal(r.status, 302, r.body);
        return r.headers.location;
      };
      assert.equal(await from("203.0.113.9"), "https://example.com/anz");
      assert.equal(await from("198.51.100.7"), "https://example.com/dach");
      assert.equal(await from(null), "https://example.com/world", "loopback is FR");
      assert.equal(await from("192.0.2.1"), "https://example.com/world", "no country");
      const s = await getJson(`/api/v1/links/${l.id}/stats`, app.base);
      assert.deepEqual(toMap(s.breakdowns.rule), { anz: 1, dach: 1, "(default)": 2 });
      assert.deepEqual(toMap(s.breakdowns.country), { NZ: 1, DE: 1, FR: 1, "(unknown)": 1 });
    } finally {
      await app.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("campaigns", () => {
  test("create, get, list newest first, patch, delete; 409 on a duplicate name, 404 on unknown ids, 400 on bad names", async () => {
    const a = await mkCampaign({ name: "  Spring 2026 ", utm: { source: "newsletter", medium: "email" }, notes: "Q2" });
    assert.equal(a.name, "Spring 2026", "trimmed");
    assert.deepEqual(a.utm, { source: "newsletter", medium: "email" });
    assert.equal(a.notes, "Q2");
    assert.ok(Number.isInteger(a.id));
    assert.ok(!Number.isNaN(Date.parse(a.created_at)) && a.created_at.endsWith("Z"));
    assert.ok(!Number.isNaN(Date.parse(a.updated_at)));
    const b = await mkCampaign({ name: "Summer (EU) & more: 50/50 + 1.5_x" });
    assert.deepEqual(b.utm, {});
    assert.equal(b.notes, null);

    let r = await req(base, "GET", `/api/v1/campaigns/${a.id}`);
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(r.json, a);

    const list = (await getJson("/api/v1/campaigns")).campaigns as { id: number }[];
    const ia = list.findIndex((c) => c.id === a.id);
    const ib = list.findIndex((c) => c.id === b.id);
    assert.ok(ia >= 0 && ib >= 0);
    assert.ok(ib < ia, "newest first");
    for (let i = 1; i < list.length; i++) assert.ok(list[i - 1]!.id > list[i]!.id);

    assertProblem(await req(base, "POST", "/api/v1/campaigns", { body: { name: "Spring 2026" } }), 409, "name");
    assertProblem(await req(base, "POST", "/api/v1/campaigns", { body: { name: " Spring 2026" } }), 409, "name");
    for (const name of ["", "!promo", " ", "-lead", "a\nb", "x".repeat(129), "<script>", 42]) {
      assertProblem(await req(base, "POST", "/api/v1/campaigns", { body: { name } }), 400, "name");
    }
    assertProblem(await req(base, "POST", "/api/v1/campaigns", { body: {} }), 400, "name");
    assertProblem(await req(base, "POST", "/api/v1/campaigns", { body: { name: "ok", utm: { source: "x", medium_: "y" } } }), 400);
    assertProblem(await req(base, "POST", "/api/v1/campaigns", { body: { name: "ok", color: "red" } }), 400, "color");

    r = await req(base, "PATCH", `/api/v1/campaigns/${a.id}`, { body: { name: "Spring 2026 (DE)", notes: null, utm: { campaign: "spring" } } });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.name, "Spring 2026 (DE)");
    assert.equal(r.json.notes, null);
    assert.deepEqual(r.json.utm, { campaign: "spring" });
    assert.equal(r.json.created_at, a.created_at);
    r = await req(base, "PATCH", `/api/v1/campaigns/${a.id}`, { body: { notes: "again" } });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.name, "Spring 2026 (DE)", "a PATCH keeps what it does not name");
    assert.deepEqual(r.json.utm, { campaign: "spring" });
    assertProblem(await req(base, "PATCH", `/api/v1/campaigns/${a.id}`, { body: { name: b.name } }), 409, "name");
    assertProblem(await req(base, "PATCH", `/api/v1/campaigns/${a.id}`, { body: { name: "?" } }), 400, "name");
    assertProblem(await req(base, "PATCH", `/api/v1/campaigns/${a.id}`, { body: {} }), 400);

    for (const [m, body] of [
      ["GET", undefined],
      ["PATCH", { notes: "x" }],
      ["DELETE", undefined],
    ] as const) {
      assertProblem(await req(base, m, "/api/v1/campaigns/999999", { body }), 404);
    }
    assertProblem(await req(base, "GET", "/api/v1/campaigns/999999/stats"), 404);
    assertProblem(await req(base, "GET", "/api/v1/campaigns/abc"), 400);

    assert.equal((await req(base, "DELETE", `/api/v1/campaigns/${b.id}`)).status, 204);
    assertProblem(await req(base, "GET", `/api/v1/campaigns/${b.id}`), 404);
    assertProblem(await req(base, "DELETE", `/api/v1/campaigns/${b.id}`), 404);
    assert.ok(!((await getJson("/api/v1/campaigns")).campaigns as { id: number }[]).some((c) => c.id === b.id));
    // the name is free again
    await mkCampaign({ name: b.name });
  });

  test("another project's campaigns are invisible, and its links cannot join them", async () => {
    const mine = await mkCampaign({ name: "Mine only" });
    const keyB = await otherProject("campaigns-b");
    const theirs = await mkCampaign({ name: "Mine only" }, keyB);
    assert.notEqual(theirs.id, mine.id, "names are unique per project");
    assert.deepEqual(
      ((await req(base, "GET", "/api/v1/campaigns", { key: keyB })).json.campaigns as { id: number }[]).map((c) => c.id),
      [theirs.id],
    );
    assertProblem(await req(base, "GET", `/api/v1/campaigns/${mine.id}`, { key: keyB }), 404);
    assertProblem(await req(base, "PATCH", `/api/v1/campaigns/${mine.id}`, { key: keyB, body: { notes: "x" } }), 404);
    assertProblem(await req(base, "DELETE", `/api/v1/campaigns/${mine.id}`, { key: keyB }), 404);
    assertProblem(await req(base, "GET", `/api/v1/campaigns/${mine.id}/stats`, { key: keyB }), 404);
    assert.equal((await getJson(`/api/v1/campaigns/${mine.id}`)).notes, null, "B's PATCH changed nothing");

    // campaign_id of another project, or of no campaign at all: 400 naming campaign_id
    for (const campaign_id of [theirs.id, 999999]) {
      const r = await req(base, "POST", "/api/v1/links", { body: { domain: HOST, target: "https://example.com/", campaign_id } });
      assertProblem(r, 400, "campaign_id");
    }
    for (const campaign_id of [0, -1, "1", 1.5]) {
      assertProblem(
        await req(base, "POST", "/api/v1/links", { body: { domain: HOST, target: "https://example.com/", campaign_id } }),
        400,
        "campaign_id",
      );
    }
    const l = await mkLink({ slug: "camp-foreign", target: "https://example.com/", campaign_id: mine.id });
    assert.equal(l.campaign_id, mine.id);
    for (const campaign_id of [theirs.id, 999999]) {
      assertProblem(await req(base, "PATCH", `/api/v1/links/${l.id}`, { body: { campaign_id } }), 400, "campaign_id");
    }
    assert.equal((await getJson(`/api/v1/links/${l.id}`)).campaign_id, mine.id);
  });

  test("a link of a campaign gets the campaign's UTM parameters under its own, on its target and its rules'", async () => {
    const c = await mkCampaign({ name: "UTM merge", utm: { source: "newsletter", medium: "email", campaign: "spring" } });
    const l = await mkLink({
      slug: "camp-utm",
      target: "https://example.com/landing?x=1&utm_term=own",
      campaign_id: c.id,
      utm: { medium: "social", content: "banner", term: "ignored" },
      rules: [{ name: "ios", platform: ["ios"], target: "https://apps.apple.com/app/id1" }],
    });
    assert.equal(l.campaign_id, c.id);
    assert.deepEqual(l.utm, { medium: "social", content: "banner", term: "ignored" }, "the link shows its own parameters");
    const loc = new URL(await locationOf("linux", "/camp-utm"));
    assert.equal(loc.origin + loc.pathname, "https://example.com/landing");
    assert.equal(loc.searchParams.get("x"), "1");
    assert.deepEqual(utmOf(loc.href), {
      utm_term: "own", // the target's own parameter is kept
      utm_source: "newsletter", // the campaign's
      utm_medium: "social", // the link's wins over the campaign's
      utm_campaign: "spring",
      utm_content: "banner",
    });
    assert.deepEqual(utmOf(await locationOf("iphone", "/camp-utm")), {
      utm_source: "newsletter",
      utm_medium: "social",
      utm_campaign: "spring",
      utm_term: "ignored",
      utm_content: "banner",
    });

    // a campaign's new UTM parameters: the very next redirect (the link is cached by now)
    const r = await req(base, "PATCH", `/api/v1/campaigns/${c.id}`, { body: { utm: { source: "feed", campaign: "summer" } } });
    assert.equal(r.status, 200, r.body);
    assert.deepEqual(utmOf(await locationOf("linux", "/camp-utm")), {
      utm_term: "own",
      utm_source: "feed",
      utm_medium: "social",
      utm_campaign: "summer",
      utm_content: "banner",
    });
    assert.deepEqual(utmOf(await locationOf("iphone", "/camp-utm")), {
      utm_source: "feed",
      utm_medium: "social",
      utm_campaign: "summer",
      utm_term: "ignored",
      utm_content: "banner",
    });

    // leaving and joining a campaign by PATCH
    await patchLink(l.id, { campaign_id: null, utm: {} });
    assert.deepEqual(utmOf(await locationOf("iphone", "/camp-utm")), {});
    const other = await mkCampaign({ name: "UTM merge 2", utm: { source: "other" } });
    const j = await patchLink(l.id, { campaign_id: other.id });
    assert.equal(j.campaign_id, other.id);
    assert.deepEqual(utmOf(await locationOf("iphone", "/camp-utm")), { utm_source: "other" });
  });

  test("GET /api/v1/links?campaign_id= lists a campaign's links", async () => {
    const c1 = await mkCampaign({ name: "List A" });
    const c2 = await mkCampaign({ name: "List B" });
    const a1 = await mkLink({ slug: "list-a1", target: "https://example.com/a1", campaign_id: c1.id });
    const a2 = await mkLink({ slug: "list-a2", target: "https://example.com/a2", campaign_id: c1.id });
    const b1 = await mkLink({ slug: "list-b1", target: "https://example.com/b1", campaign_id: c2.id });
    await mkLink({ slug: "list-none", target: "https://example.com/none" });
    const ids = async (q: string) => ((await getJson(`/api/v1/links?${q}`)).links as { id: number }[]).map((l) => l.id);
    assert.deepEqual((await ids(`campaign_id=${c1.id}`)).sort(), [a1.id, a2.id].sort());
    assert.deepEqual(await ids(`campaign_id=${c2.id}`), [b1.id]);
    assert.deepEqual(await ids("campaign_id=999999"), []);
    // pages through a campaign's links
    const p1 = await getJson(`/api/v1/links?campaign_id=${c1.id}&limit=1`);
    assert.equal(p1.links.length, 1);
    assert.ok(p1.next_cursor);
    const p2 = await getJson(`/api/v1/links?campaign_id=${c1.id}&limit=1&cursor=${p1.next_cursor}`);
    assert.deepEqual([p1.links[0].id, p2.links[0].id].sort(), [a1.id, a2.id].sort());
    assertProblem(await req(base, "GET", "/api/v1/links?campaign_id=abc"), 400, "campaign_id");
  });

  test("deleting a campaign keeps its links (campaign_id null) and drops its UTM parameters from their redirects", async () => {
    const c = await mkCampaign({ name: "Doomed", utm: { source: "doomed" } });
    const l = await mkLink({ slug: "camp-doomed", target: "https://example.com/d", campaign_id: c.id, utm: { medium: "own" } });
    assert.deepEqual(utmOf(await locationOf("linux", "/camp-doomed")), { utm_source: "doomed", utm_medium: "own" });
    assert.equal((await req(base, "DELETE", `/api/v1/campaigns/${c.id}`)).status, 204);
    const g = await getJson(`/api/v1/links/${l.id}`);
    assert.equal(g.campaign_id, null);
    assert.deepEqual(g.utm, { medium: "own" });
    assert.deepEqual(await getJson(`/api/v1/links?campaign_id=${c.id}`).then((x) => x.links), []);
    assert.deepEqual(utmOf(await locationOf("linux", "/camp-doomed")), { utm_medium: "own" });
    assertProblem(await req(base, "GET", `/api/v1/campaigns/${c.id}/stats`), 404);
    // the clicks stay in the log, with the campaign they had
    const events = await exportNdjson(`link_id=${l.id}`);
    assert.deepEqual(
      events.map((e) => e.campaign_id),
      [c.id, null],
    );
  });

  test("a new campaign never takes the id of a deleted one (else it inherits its clicks and stats)", async () => {
    const c = await mkCampaign({ name: "Reused id" });
    await mkLink({ slug: "camp-reused", target: "https://example.com/r", campaign_id: c.id });
    await locationOf("linux", "/camp-reused");
    assert.equal((await req(base, "DELETE", `/api/v1/campaigns/${c.id}`)).status, 204);
    const fresh = await mkCampaign({ name: "Fresh after delete" });
    const s = await getJson(`/api/v1/campaigns/${fresh.id}/stats`);
    assert.equal(s.clicks, 0, "the deleted campaign's clicks");
    assert.notEqual(fresh.id, c.id);
  });

  test("campaign stats: clicks, visitors, per-platform clicks and visitors, series and breakdowns", async () => {
    const c = await mkCampaign({ name: "Stats", utm: { source: "stats" } });
    const a = await mkLink({
      slug: "camp-stats-a",
      target: "https://example.com/a",
      campaign_id: c.id,
      rules: [{ name: "ios", platform: ["ios"], target: "https://example.com/a-ios" }],
    });
    await mkLink({ slug: "camp-stats-b", target: "https://example.com/b", campaign_id: c.id });
    await mkLink({ slug: "camp-stats-mobile", target: "https://example.com/m", campaign_id: c.id, allowed_platforms: ["mobile"] });
    await mkLink({ slug: "camp-stats-outside", target: "https://example.com/o" });
    const as = (v: string) => ({ cookie: `ct_vid=${v}` });

    // ios: 3 clicks by 2 visitors; android: 2 clicks by 2 visitors (one via ?platform=); linux: 1
    await locationOf("iphone", "/camp-stats-a", as("iphoneVisitor1"));
    await locationOf("iphone", "/camp-stats-b", as("iphoneVisitor1"));
    await locationOf("iphone", "/camp-stats-a", as("iphoneVisitor2"));
    await locationOf("android", "/camp-stats-a", as("androidVisitor1"));
    await locationOf("linux", "/camp-stats-a?platform=Android", as("androidVisitor2"));
    await locationOf("linux", "/camp-stats-b", as("linuxVisitor01"));
    // not counted: a refused click, a link outside the campaign; a bot only with bots=include
    assert.equal((await click("windows", "/camp-stats-mobile", as("refusedVisitor1"))).status, 404);
    await locationOf("linux", "/camp-stats-outside", as("outsideVisitor1"));
    await click("googlebot", "/camp-stats-b");

    const s = await getJson(`/api/v1/campaigns/${c.id}/stats`);
    assert.equal(s.clicks, 6);
    assert.equal(s.visitors, 5);
    assert.equal(s.bot_clicks, 1);
    assert.deepEqual(s.platforms, [
      { platform: "ios", clicks: 3, visitors: 2 },
      { platform: "android", clicks: 2, visitors: 2 },
      { platform: "linux", clicks: 1, visitors: 1 },
    ]);
    assert.equal(sumSeries(s.series), 6);
    assert.ok(s.series.every((b: { t: string }) => !Number.isNaN(Date.parse(b.t))));
    assert.deepEqual(toMap(s.breakdowns.platform), { ios: 3, android: 2, linux: 1 });
    assert.deepEqual(toMap(s.breakdowns.rule), { ios: 2, "(default)": 4 });
    assert.deepEqual(toMap(s.breakdowns.channel), { default: 6 });

    const withBots = await getJson(`/api/v1/campaigns/${c.id}/stats?bots=include&interval=day`);
    assert.equal(withBots.clicks, 7);
    assert.equal(withBots.interval, "day");
    assert.equal(sumSeries(withBots.series), 7);
    const platforms = Object.fromEntries((withBots.platforms as { platform: string; clicks: number }[]).map((p) => [p.platform, p.clicks]));
    assert.deepEqual(platforms, { ios: 3, android: 2, linux: 1, "(unknown)": 1 });

    // the clicks are the links' clicks too
    const la = await getJson(`/api/v1/links/${a.id}/stats`);
    assert.equal(la.clicks, 4);
    // a campaign without clicks
    const empty = await mkCampaign({ name: "Stats empty" });
    const e = await getJson(`/api/v1/campaigns/${empty.id}/stats`);
    assert.equal(e.clicks, 0);
    assert.equal(e.visitors, 0);
    assert.deepEqual(e.platforms, []);
    assertProblem(await req(base, "GET", `/api/v1/campaigns/${c.id}/stats?from=2026-02-01&to=2026-01-01`), 400, "from");
  });
});
