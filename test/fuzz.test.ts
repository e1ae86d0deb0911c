/**
 * Hostile input, over real HTTP on loopback: property-based requests (fast-check, fixed seed) on every route of the
 * native API (from /openapi.json), the dialects (o7tracker at the root, Microticks at /mt, HiiTrack at /ht), the redirect path, the
 * /t/c and /t/o tracking links, the raw POST /api/v1/events path and the dashboard's sign-in; then raw bytes over a
 * socket (malformed request lines, headers, encodings, smuggling attempts, huge values). Every answer must be below
 * 500, the server must keep answering, memory must stay bounded, and every 4xx of the native API must be problem+json
 * saying what is wrong. Prints the seed and the number of cases. FUZZ_SEED and FUZZ_SCALE (a multiplier of the runs)
 * reproduce or widen a run.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { startApp, type TestApp } from "./helpers.js";
import {
  ADMIN_KEY,
  Tally,
  anyString,
  closeAgent,
  deepJson,
  fromSchema,
  openApiRoutes,
  problemError,
  queryValue,
  rawHttp,
  send,
  type Answer,
  type Route,
} from "./fuzz-helpers.js";

const SEED = Number(process.env.FUZZ_SEED ?? 20250917);
const SCALE = Number(process.env.FUZZ_SCALE ?? 2);
const runs = (n: number) => Math.max(1, Math.round(n * SCALE));
const FC = (numRuns: number) => ({ seed: SEED, numRuns: runs(numRuns), endOnFailure: true });

const DOMAIN = "fuzz.test";
const BASIC = `Basic ${Buffer.from("admin:secret").toString("base64")}`;
const MT_KEY = "mt-read-secret";

let t: TestApp;
let port: number;
let routes: Route[];
let doc: any;
const tally = new Tally();
const ids: Record<string, number[]> = {};
let ingestKey = "";
let trackingTokens: string[] = [];
let keyInUse = 0;
let fuzzKey = "";
const started = Date.now();
let memStart: NodeJS.MemoryUsage;

// the webhook guard reads its allowlist from the environment (see src/webhooks/guard.ts)
process.env.CLICKTRAIL_WEBHOOK_ALLOW = "127.0.0.2";

before(async () => {
  t = await startApp({
    CLICKTRAIL_DIALECTS: "o7tracker,microticks:/mt,hiitrack:/ht",
    AUTH_USER: "admin",
    AUTH_PASSWORD: "secret",
    FALLBACK_URL: "https://fallback.example/",
    MICROTICKS_KEY: MT_KEY,
    CLICKTRAIL_BODY_LIMIT: String(256 * 1024),
  });
  port = t.port;
  ({ routes, doc } = await openApiRoutes(t.base));
  const api = async (method: string, path: string, body?: unknown, key = ADMIN_KEY) => {
    const r = await send(port, method, path, {
      headers: { authorization: `Bearer ${key}`, ...(body !== undefined ? { "content-type": "application/json" } : {}) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${r.body}`);
    return r.json;
  };
  // a key of its own, so that a fuzzed DELETE /api/v1/keys/{id} never revokes the key the run uses
  const k = await api("POST", "/api/v1/keys", { name: "fuzz", scopes: ["admin"] });
  fuzzKey = k.key;
  keyInUse = k.id;
  const spare = await api("POST", "/api/v1/keys", { name: "spare", scopes: ["links:read"] }, fuzzKey);
  ids.keys = [spare.id];
  ids.domains = [(await api("POST", "/api/v1/domains", { hostname: DOMAIN }, fuzzKey)).id];
  ids.campaigns = [(await api("POST", "/api/v1/campaigns", { name: "fuzz", utm: { source: "f" } }, fuzzKey)).id];
  ids.links = [];
  for (const slug of ["abc", "x-y", "deep"])
    ids.links.push((await api("POST", "/api/v1/links", { domain: DOMAIN, target: `https://example.com/${slug}`, slug }, fuzzKey)).id);
  ids.webhooks = [(await api("POST", "/api/v1/webhooks", { url: "http://127.0.0.2:9/hook" }, fuzzKey)).id];
  const app = await api("POST", "/api/v1/apps", { name: "fuzz" }, fuzzKey);
  ids.apps = [app.id];
  ingestKey = app.key;
  ids.tracking = [(await api("POST", "/api/v1/tracking/keys", {}, fuzzKey)).id];
  const tl = await api("POST", "/api/v1/tracking/links", { url: "https://example.com/tracked", open: true, metadata: { c: 1 } }, fuzzKey);
  trackingTokens = [tl.click_url, tl.open_url].filter(Boolean).map((u: string) => new URL(u).pathname.slice(5));
  assert.ok(trackingTokens.length >= 1, JSON.stringify(tl));
  memStart = retainedMemory();
  console.log(`fuzz: seed ${SEED} (FUZZ_SEED=${SEED} reproduces this run), scale ${SCALE}, ${routes.length} documented routes`);
});

after(async () => {
  closeAgent();
  await t?.close();
});

/** This test's failures (each test reports its own, then the list starts over). */
function expectClean() {
  const f = tally.failures.splice(0);
  assert.deepEqual(f, [], f.join("\n"));
}

/** An id for a path parameter: an existing one, or anything at all. */
function idArb(path: string): fc.Arbitrary<string> {
  const kind = path.split("/")[3] ?? "";
  const pool = (kind === "tracking" ? ids.tracking : ids[kind]) ?? [];
  const bad = fc.oneof(
    fc.integer({ min: -5, max: 50 }).filter((n) => !(kind === "keys" && n === keyInUse)),
    fc.constantFrom("0", "-0", "1.5", "1e3", "0x1", "9007199254740993", "99999999999999999999999", "NaN", "%00", "%2F", "..", "%2e%2e"),
    anyString.map((s) => encodeURIComponent(s.replace(/[\uD800-\uDFFF]/g, "\uFFFD")) || "x"),
    fc.constantFrom("%ZZ", "%C0%AF", "%FF", "%E0%80%80", "a%00b").map((s) => s),
  );
  return pool.length
    ? fc.oneof({ weight: 2, arbitrary: fc.constantFrom(...pool.map(String)) }, { weight: 3, arbitrary: bad.map(String) })
    : bad.map(String);
}

const CONTENT_TYPES = [
  "application/json",
  "application/json; charset=utf-8",
  "application/json; charset=latin1",
  "APPLICATION/JSON",
  "text/plain",
  "application/x-www-form-urlencoded",
  "multipart/form-data; boundary=x",
  "application/xml",
  "application/octet-stream",
  "",
  "application/json, text/plain",
  "application/merge-patch+json",
  ";;;",
];

/** A body: JSON shaped by the route's schema, any JSON, broken JSON, invalid UTF-8, deep nesting, a huge value. */
function bodyArb(schema: unknown): fc.Arbitrary<{ body: Buffer | undefined; type: string }> {
  const payload = fc.oneof(
    { weight: 8, arbitrary: fromSchema(doc, schema).map((v) => Buffer.from(JSON.stringify(v) ?? "null")) },
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => Buffer.from(JSON.stringify(v))) },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom('{"a":', "{", "[1,]", "{'a':1}", "nul", '{"a":1}{"b":2}', "\uFEFF{}", '"\\ud800"', "1e99999")
        .map((s) => Buffer.from(s)),
    },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)) },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xff, 0xfe, 0xc0, 0xaf, 0x22, 0x7d]),
        Buffer.from('{"name":"\xed\xa0\x80"}', "latin1"),
      ),
    },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(2000, 20_000)
        .chain((d) => fc.constantFrom(deepJson(d), deepJson(d, "object")))
        .map((s) => Buffer.from(s)),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(200 * 1024, 300 * 1024).map((n) => Buffer.from(JSON.stringify({ name: "x".repeat(n), hostname: "y".repeat(n) }))),
    },
  );
  return fc.record({
    body: fc.option(payload, { freq: 8, nil: undefined }),
    type: fc.oneof({ weight: 6, arbitrary: fc.constant("application/json") }, { weight: 2, arbitrary: fc.constantFrom(...CONTENT_TYPES) }),
  });
}

/**
 * Headers a hostile client adds: odd accept, forwarded-for, cookies, language, a bogus request id. Together with the
 * path they stay under node:http's 16 KiB limit (past it the HTTP parser answers 431 before any route runs; the raw
 * tests send those).
 */
const extraHeaders: fc.Arbitrary<Record<string, string>> = fc.record(
  {
    accept: fc.constantFrom("*/*", "application/json", "text/html", "image/png", "x/y;q=abc", ""),
    "accept-language": fc.constantFrom("en", "*", "zz-ZZZZ;q=2", ",,,", "x".repeat(1500), "fr-CH, fr;q=0.9, en;q=0.8, *;q=0.5"),
    "x-forwarded-for": fc.constantFrom("1.2.3.4", "::1", "not-an-ip", "1.2.3.4, 5.6.7.8", ",,,", "999.999.999.999"),
    "x-forwarded-host": fc.constantFrom("evil.example", DOMAIN, ""),
    "x-request-id": fc.constantFrom("abc", "x".repeat(1000), "\t"),
    cookie: fc.constantFrom("ct_session=abc", "ct_session=", "ct_session=%ZZ; ct_session=2", "=;=;;", "a=" + "b".repeat(2000)),
    "user-agent": fc.constantFrom("", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)", "curl/8", "x".repeat(1500), "Googlebot/2.1"),
    "x-project-id": fc.constantFrom("1", "-1", "abc", "99999999999999999999"),
    "x-csrf-token": fc.constantFrom("x", ""),
  },
  { requiredKeys: [] },
);

function authHeader(dice: number): Record<string, string> {
  // mostly a valid admin key, so that the handler runs; sometimes no key, a broken header or another scheme
  if (dice < 7) return { authorization: `Bearer ${fuzzKey}` };
  return [{}, { authorization: "Bearer" }, { authorization: "Bearer ct_" + "x".repeat(500) }, { authorization: BASIC }][dice - 7] ?? {};
}

function checkNative(label: string, r: Answer) {
  if (!tally.check("native", label, r)) return;
  if (r.status >= 400) {
    const e = problemError(r);
    if (e) tally.fail(`native: ${r.status} for ${label} is not a proper problem: ${e}: ${r.body.slice(0, 200)}`);
  }
}

function fillPath(p: string): fc.Arbitrary<string> {
  const names = [...p.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
  if (!names.length) return fc.constant(p);
  return fc
    .tuple(
      ...names.map((n) =>
        n === "token"
          ? fc.oneof(
              fc.constantFrom("abc", "x".repeat(100), "%ZZ", "%00"),
              anyString.map((s) => encodeURIComponent(s.replace(/[\uD800-\uDFFF]/g, "")) || "t"),
            )
          : idArb(p),
      ),
    )
    .map((vals) => {
      let out = p;
      names.forEach((n, i) => (out = out.replace(`{${n}}`, vals[i]!)));
      return out;
    });
}

function queryArb(op: any): fc.Arbitrary<string> {
  const names: string[] = (op.parameters ?? []).filter((x: any) => x.in === "query").map((x: any) => x.name);
  const pairs = fc.array(
    fc.tuple(
      fc.oneof(
        { weight: 5, arbitrary: names.length ? fc.constantFrom(...names) : fc.constant("x") },
        { weight: 1, arbitrary: fc.constantFrom("__proto__", "x", "a[b]", "%ZZ", "") },
      ),
      queryValue,
    ),
    {
      maxLength: 5,
    },
  );
  // under node:http's 16 KiB header limit: past it the HTTP parser answers 431 before any route (the raw test covers that)
  return pairs.map((ps) => (ps.length ? "?" + ps.map(([k, v]) => `${k}=${v}`).join("&") : "").slice(0, 5000));
}

test("the native API: every documented route, random paths, queries, bodies, content types and headers", async () => {
  for (const route of routes) {
    // the raw ingest path has a test of its own; the event stream never ends (it is fuzzed on its headers only)
    const hasBody = ["POST", "PUT", "PATCH"].includes(route.method);
    const schema = route.op.requestBody?.content?.["application/json"]?.schema ?? {};
    await fc.assert(
      fc.asyncProperty(
        fillPath(route.path),
        queryArb(route.op),
        hasBody ? bodyArb(schema) : fc.constant({ body: undefined, type: "" }),
        fc.integer({ min: 0, max: 10 }),
        extraHeaders,
        async (longPath, query, { body, type }, dice, extra) => {
          const path = longPath.slice(0, 3000);
          const headers: Record<string, string> = { ...extra, ...authHeader(dice) };
          if (body !== undefined && type) headers["content-type"] = type;
          const r = await send(port, route.method, path + query, { headers, body });
          const label = `${route.method} ${(path + query).slice(0, 300)} [${type}] ${body ? body.subarray(0, 200).toString("latin1") : ""}`;
          // a body past the limit may be answered 413 and the connection closed while it is still being sent
          if (r.status === 0 && body && body.length > 200 * 1024) return tally.count("native");
          checkNative(label, r);
        },
      ),
      FC(route.method === "GET" ? 90 : 70),
    );
  }
  expectClean();
});

test("deeply nested JSON in every field of every body: 400, never a stack overflow", async () => {
  const deep = (d: number) => JSON.parse(deepJson(d, "object"));
  for (const route of routes) {
    const schema = route.op.requestBody?.content?.["application/json"]?.schema;
    if (!schema) continue;
    const props = Object.keys(schema.properties ?? {});
    for (const field of [...props, "__root"]) {
      for (const d of [100, 3000]) {
        const body = field === "__root" ? deep(d) : { [field]: deep(d) };
        // the other fields filled with something plausible, so validation does not stop at a missing one
        for (const other of props) if (other !== field) body[other] ??= other === "links" || other === "events" ? [{}] : "https://example.com/x";
        const path = route.path.replace(/\{\w+\}/g, () => String(ids.links[0]));
        const r = await send(port, route.method, path, {
          headers: { authorization: `Bearer ${fuzzKey}`, "content-type": "application/json" },
          body: JSON.stringify(body),
        });
        checkNative(`${route.method} ${path} with ${field} nested ${d} deep`, r);
      }
    }
  }
  for (const d of [50, 100, 3000]) {
    const r = await send(port, "POST", "/api/v1/events", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ key: ingestKey, name: "deep", data: { a: deep(d) } }),
    });
    checkNative(`POST /api/v1/events with data nested ${d} deep`, r);
    if (d >= 100) assert.equal(r.status, 400, r.body);
    const m = await send(port, "POST", "/mt/sessions", {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: `consumer_key=${ingestKey}&ts=2024-01-01T00:00:00Z`,
    });
    const e = await send(port, "POST", "/mt/events", {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ token: m.json.token, action: "x", ts: "2024-01-01T00:00:01Z", data: deepJson(d) }).toString(),
    });
    tally.check("microticks", `events with data nested ${d} deep`, e);
  }
  expectClean();
});

test("unknown routes and methods of the native API: problem+json 404/405", async () => {
  const methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "PROPFIND", "TRACE"];
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...methods),
      fc.oneof(
        fc.constantFrom(...routes.map((r) => r.path.replace(/\{\w+\}/g, "1"))),
        fc
          .array(fc.constantFrom("api", "v1", "v2", "links", "..", "%2e%2e", "%2F", "", "1", "stats", "%ZZ", "%C0%AF", ";a", "%00"), {
            minLength: 1,
            maxLength: 6,
          })
          .map((s) => "/api/" + s.join("/")),
      ),
      async (method, path) => {
        const r = await send(port, method, path, { headers: { authorization: `Bearer ${fuzzKey}` } });
        if (method === "HEAD" || method === "OPTIONS") return void tally.check("native", `${method} ${path}`, r);
        checkNative(`${method} ${path}`, r);
      },
    ),
    FC(400),
  );
  expectClean();
});

test("POST /api/v1/events (the raw ingest path): random events, batches, keys, content types and sizes", async () => {
  const event = fc.dictionary(
    fc.constantFrom("name", "data", "props", "ts", "url", "referrer", "visitor", "session", "title", "value", "screen", "__proto__"),
    fc.oneof(
      anyString,
      fc.jsonValue({ maxDepth: 3 }),
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      fc.integer(),
    ),
    { maxKeys: 6 },
  );
  const body = fc.oneof(
    { weight: 4, arbitrary: fc.tuple(event, fc.constantFrom(ingestKey, "", "nope", 1, null)).map(([e, key]) => JSON.stringify({ ...e, key })) },
    {
      weight: 3,
      arbitrary: fc
        .tuple(fc.array(event, { maxLength: 20 }), fc.constantFrom(ingestKey, "nope"), anyString)
        .map(([events, key, visitor]) => JSON.stringify({ key, events, visitor })),
    },
    {
      weight: 1,
      arbitrary: fc.constantFrom(
        JSON.stringify({ key: ingestKey, events: {} }),
        JSON.stringify({ key: ingestKey, events: Array.from({ length: 1001 }, () => ({ name: "x" })) }),
      ),
    },
    { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.constantFrom("{", "", "nul", deepJson(20_000), '{"key":"' + "x".repeat(300 * 1024) + '"}', '{"key":"\ud800"}') },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a).toString("latin1")) },
  );
  await fc.assert(
    fc.asyncProperty(
      body,
      fc.oneof({ weight: 5, arbitrary: fc.constant("application/json") }, { weight: 2, arbitrary: fc.constantFrom(...CONTENT_TYPES) }),
      fc.option(fc.constantFrom(ingestKey, "wrong", "", "x".repeat(5000)), { nil: undefined }),
      fc.option(fc.constantFrom("https://site.example", "null", "x"), { nil: undefined }),
      fc.constantFrom("", "?x=1", "?%ZZ", "?key=" + ingestKey),
      async (b, type, headerKey, origin, query) => {
        const headers: Record<string, string> = {};
        if (type) headers["content-type"] = type;
        if (headerKey !== undefined) headers["x-clicktrail-key"] = headerKey;
        if (origin) headers.origin = origin;
        const buf = Buffer.from(b, "latin1");
        const r = await send(port, "POST", "/api/v1/events" + query, { headers, body: buf });
        if (r.status === 0 && buf.length > 200 * 1024) return tally.count("ingest");
        if (!tally.check("ingest", `POST /api/v1/events${query} [${type}] ${b.slice(0, 200)}`, r)) return;
        if (r.status >= 400) {
          const e = problemError(r);
          if (e) tally.fail(`ingest: ${r.status} is not a proper problem: ${e}: ${r.body.slice(0, 200)}`);
        }
      },
    ),
    FC(1200),
  );
  // a body past the limit is answered (413), not dropped
  const big = await send(port, "POST", "/api/v1/events", {
    headers: { "content-type": "application/json" },
    body: "[" + " ".repeat(300 * 1024) + "]",
  });
  assert.ok(big.status === 413 || big.status === 0, `${big.status} ${big.body}`);
  expectClean();
});

test("the redirect path: random paths, methods and headers on a link domain", async () => {
  const segment = fc.oneof(
    fc.constantFrom(
      "abc",
      "x-y",
      "deep",
      "ABC",
      "abc.",
      "abc%20",
      "%61bc",
      "%ZZ",
      "%C0%AF",
      "%FF",
      "..",
      "%2e%2e",
      "",
      "favicon.ico",
      "robots.txt",
      "a%00",
    ),
    anyString.map((s) => encodeURIComponent(s.replace(/[\uD800-\uDFFF]/g, ""))),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(segment, { minLength: 0, maxLength: 4 }),
      fc.oneof(
        fc.constant(""),
        queryValue.map((q) => "?" + q),
        fc.constant("?utm_source=" + "x".repeat(5000)),
      ),
      fc.constantFrom("GET", "GET", "GET", "HEAD", "POST", "DELETE", "OPTIONS"),
      fc.constantFrom(DOMAIN, DOMAIN.toUpperCase(), `${DOMAIN}:80`, `${DOMAIN}.`),
      extraHeaders,
      async (segs, query, method, host, extra) => {
        const path = ("/" + segs.join("/")).slice(0, 8000) + query;
        const r = await send(port, method, path, { headers: { ...extra, host } });
        tally.check("redirect", `${method} ${host}${path.slice(0, 300)}`, r);
      },
    ),
    FC(1500),
  );
  expectClean();
});

test("/t/c and /t/o: random and tampered tokens, methods and encodings", async () => {
  const tampered = fc
    .tuple(fc.constantFrom(...trackingTokens), fc.nat(), fc.constantFrom("flip", "cut", "append", "case", "dup"))
    .map(([tok, n, how]) => {
      const i = n % Math.max(1, tok.length);
      if (how === "flip") return tok.slice(0, i) + (tok[i] === "A" ? "B" : "A") + tok.slice(i + 1);
      if (how === "cut") return tok.slice(0, i);
      if (how === "append") return tok + "A";
      if (how === "case") return tok.toUpperCase();
      return tok + tok;
    });
  const token = fc.oneof(
    tampered,
    fc.constantFrom(...trackingTokens),
    anyString.map((s) => encodeURIComponent(s.replace(/[\uD800-\uDFFF]/g, ""))),
    fc.constantFrom("%ZZ", "%C0%AF", "%FF", "", "a".repeat(8300), "gAAAAA" + "A".repeat(100), "//evil.example", "%2F%2Fevil.example"),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom("/t/c/", "/t/o/"),
      token,
      fc.constantFrom("", "?x=1", "?%ZZ"),
      fc.constantFrom("GET", "GET", "HEAD", "POST", "PUT"),
      extraHeaders,
      async (prefix, tok, q, method, extra) => {
        const r = await send(port, method, prefix + tok.slice(0, 8400) + q, { headers: extra });
        if (!tally.check("tracking", `${method} ${prefix}${tok.slice(0, 200)}${q}`, r)) return;
        if (r.status === 302 && !String(r.headers.location).startsWith("https://example.com/tracked"))
          tally.fail(`tracking: ${prefix}${tok} redirected to ${r.headers.location}`);
      },
    ),
    FC(1200),
  );
  expectClean();
});

test("the o7tracker dialect (at the root): admin API, /track, /tasks and its fallback", async () => {
  const path = fc.oneof(
    fc
      .tuple(fc.constantFrom("/admin/campaigns", "/admin/campains"), fc.option(idArb("/x/x/links"), { nil: undefined }))
      .map(([p, id]) => (id === undefined ? p : `${p}/${id}`)),
    fc
      .tuple(
        fc.constantFrom("/track/", "/track"),
        idArb("/x/x/links"),
        fc.constantFrom("", "?platform=Android", "?platform=IPhone", "?platform=%ZZ", "?platform=Android&platform=IPhone", "?platform="),
      )
      .map(([p, id, q]) => p + id + q),
    fc.constantFrom(
      "/tasks/update_stats",
      "/",
      "/%ZZ",
      "/admin",
      "/admin/campaigns?platforms=Android,IPhone,%ZZ",
      "/admin/campaigns/1/2",
      "/x/../admin/campaigns",
    ),
  );
  const body = fc.oneof(
    fromSchema(doc, {
      type: "object",
      properties: {
        redirect_url: { type: "string" },
        platforms: { type: "array", items: { type: "string", enum: ["Android", "IPhone", "WindowsPhone", "Foo"] } },
      },
    }).map((v) => JSON.stringify(v)),
    fc.constantFrom(
      "",
      "{",
      "null",
      "[]",
      '{"redirect_url":"javascript:alert(1)"}',
      '{"REDIRECT_URL":"https://e.example/","platforms":null}',
      deepJson(10_000, "object"),
      "redirect_url=https://e.example",
    ),
    fc.uint8Array({ maxLength: 32 }).map((a) => Buffer.from(a).toString("latin1")),
  );
  await fc.assert(
    fc.asyncProperty(
      path,
      fc.constantFrom("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"),
      fc.option(body, { nil: undefined }),
      fc.constantFrom(
        BASIC,
        BASIC,
        BASIC,
        "",
        "Basic !!!",
        "Basic " + Buffer.from("admin:" + "x".repeat(3000)).toString("base64"),
        `Bearer ${fuzzKey}`,
      ),
      fc.constantFrom("application/json", "text/plain", "application/x-www-form-urlencoded", ""),
      async (p, method, b, auth, type) => {
        const headers: Record<string, string> = {};
        if (auth) headers.authorization = auth;
        if (type && b !== undefined) headers["content-type"] = type;
        const r = await send(port, method, p, {
          headers,
          body: b === undefined || method === "GET" || method === "HEAD" ? undefined : Buffer.from(b, "latin1"),
        });
        // the original answers its errors as 500 {"msg":…,"status":"error"}: that is o7tracker's contract, not a crash
        // (a HEAD gets the same status and headers, without the body)
        const o7Error = r.json?.status === "error" && typeof r.json.msg === "string";
        if (r.status === 500 && (o7Error || (method === "HEAD" && r.headers["content-type"] === "application/json; charset=utf-8")))
          return tally.count("o7tracker");
        tally.check("o7tracker", `${method} ${p} ${auth.slice(0, 20)} ${String(b).slice(0, 200)}`, r);
      },
    ),
    FC(1200),
  );
  expectClean();
});

test("the Microticks dialect (at /mt): form bodies, tokens, keys, sorts and paging", async () => {
  const field = fc.oneof(anyString, fc.constantFrom(ingestKey, "2017-08-25T17:09:19.438Z", "x", "{}", '{"a":1}', deepJson(5000)));
  const form = fc
    .dictionary(fc.constantFrom("consumer_key", "ts", "token", "action", "data", "key", "x", "__proto__"), field, { maxKeys: 5 })
    .map((o) => new URLSearchParams(o).toString());
  const query = fc
    .dictionary(
      fc.constantFrom("key", "sort", "sort.desc", "limit", "offset", "ip", "date", "consumer", "page"),
      fc.oneof(fc.constantFrom(MT_KEY, "time", "id", "-1", "1e9", "clicks", "x"), queryValue),
      { maxKeys: 4 },
    )
    .map(
      (o) =>
        "?" +
        Object.entries(o)
          .map(([k, v]) => `${k}=${k === "key" || k.startsWith("sort") ? encodeURIComponent(v) : v}`)
          .join("&"),
    );
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom("/mt/sessions", "/mt/sessions/stop", "/mt/events", "/mt/", "/mt", "/mt/x"),
      fc.constantFrom("GET", "POST", "POST", "PUT", "DELETE"),
      form,
      query,
      fc.constantFrom("application/x-www-form-urlencoded", "application/json", "text/plain", "multipart/form-data; boundary=z", ""),
      async (p, method, body, q, type) => {
        const headers: Record<string, string> = type ? { "content-type": type } : {};
        const r = await send(port, method, p + (method === "GET" ? q : ""), { headers, body: method === "GET" ? undefined : body });
        tally.check("microticks", `${method} ${p}${q} [${type}] ${body.slice(0, 200)}`, r);
      },
    ),
    FC(1000),
  );
  // a session, then events on its token, so the handlers past the token check run too
  const s = await send(port, "POST", "/mt/sessions", {
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: `consumer_key=${ingestKey}&ts=2024-01-01T00:00:00Z`,
  });
  assert.equal(s.status, 200, s.body);
  await fc.assert(
    fc.asyncProperty(fc.dictionary(fc.constantFrom("action", "data", "ts", "x"), field, { maxKeys: 4 }), async (o) => {
      const r = await send(port, "POST", "/mt/events", {
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ ...o, token: s.json.token }).toString(),
      });
      tally.check("microticks", `events ${JSON.stringify(o).slice(0, 200)}`, r);
    }),
    FC(300),
  );
  expectClean();
});

test("the HiiTrack dialect (at /ht): users, buckets, events, properties, batches, funnels, auth, JSONP", async () => {
  const basic = (u: string, p: string) => "Basic " + Buffer.from(`${u}:${p}`).toString("base64");
  // a user with a bucket and some counts, so the handlers past authentication and lookups run too
  await send(port, "POST", "/ht/fuzzer", { headers: { "content-type": "application/x-www-form-urlencoded" }, body: "password=pw" });
  for (const e of ["landed", "signup"])
    await send(port, "POST", `/ht/fuzzer/site/event/${e}`, {
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: "visitor_id=v1",
    });
  const seg = fc.oneof(
    fc.constantFrom(
      "fuzzer",
      "site",
      "event",
      "property",
      "batch",
      "funnel",
      "event_id",
      "property_id",
      "landed",
      "signup",
      "x",
      "%00",
      "%ZZ",
      "..",
      "",
    ),
    anyString.map((x) => encodeURIComponent(x.replace(/[\uD800-\uDFFF]/g, "")).slice(0, 40)),
  );
  const value = fc.oneof(
    fc.constantFrom(
      "v1",
      "pw",
      "1",
      "day",
      "hour",
      "minute",
      "-1",
      "1e99",
      "",
      "cb",
      "a.b",
      "alert(1)//",
      Buffer.from('[["a"],[["k","v"]]]').toString("base64"),
    ),
    fc.base64String({ maxLength: 64 }),
    anyString,
  );
  const params = fc.dictionary(
    fc.constantFrom(
      "password",
      "visitor_id",
      "value",
      "description",
      "event_id",
      "event",
      "property",
      "start",
      "finish",
      "interval",
      "message",
      "callback",
      "request_id",
    ),
    value,
    { maxKeys: 5 },
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(seg, { minLength: 0, maxLength: 5 }),
      fc.constantFrom("GET", "POST", "DELETE", "HEAD", "PUT"),
      params,
      fc.constantFrom("", basic("fuzzer", "pw"), basic("fuzzer", "nope"), "Basic %%%", "Bearer x", basic("", "")),
      fc.constantFrom("application/x-www-form-urlencoded", "application/json", "text/plain", ""),
      async (segs, method, ps, auth, type) => {
        const headers: Record<string, string> = {};
        if (auth) headers.authorization = auth;
        const qs = new URLSearchParams(ps).toString();
        let body: string | undefined;
        if (method === "POST" && type) {
          headers["content-type"] = type;
          body = type === "application/json" ? JSON.stringify(ps) : qs;
        }
        const path = "/ht/" + segs.join("/") + (method === "POST" ? "" : `?${qs}`);
        const r = await send(port, method, path, { headers, body });
        tally.check("hiitrack", `${method} ${path} [${type}] ${auth.slice(0, 20)} ${String(body).slice(0, 200)}`, r);
      },
    ),
    FC(1500),
  );
  expectClean();
});

test("the dashboard's sign-in and session routes, and its static files", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom("POST", "GET", "DELETE"),
      bodyArb({ type: "object", properties: { email: { type: "string" }, password: { type: "string" } }, required: ["email", "password"] }),
      fc.constantFrom(
        "",
        "ct_session=abc",
        "ct_session=" + "A".repeat(43),
        "ct_session=%ZZ",
        "ct_session=\u00ff".normalize(),
        "a=b; ct_session=; ct_session=x",
      ),
      fc.constantFrom("", "x", "A".repeat(32)),
      async (method, { body, type }, cookie, csrf) => {
        const headers: Record<string, string> = {};
        if (cookie) headers.cookie = cookie.replace(/[^\x20-\x7e]/g, "");
        if (csrf) headers["x-csrf-token"] = csrf;
        if (type && method === "POST") headers["content-type"] = type;
        const r = await send(port, method, "/api/v1/auth/session", { headers, body: method === "POST" ? body : undefined });
        if (r.status === 0 && body && body.length > 200 * 1024) return tally.count("session");
        if (!tally.check("session", `${method} session [${type}] ${cookie} ${body?.subarray(0, 100).toString("latin1")}`, r)) return;
        if (r.status >= 400) {
          const e = problemError(r);
          if (e) tally.fail(`session: ${r.status} is not a proper problem: ${e}`);
        }
      },
    ),
    FC(500),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom("/dashboard/", "/examples/", "/docs/", "/docs/static/"),
      fc.array(
        fc.constantFrom(
          "..",
          "%2e%2e",
          "%2F",
          "..%2F",
          "%5C",
          "etc",
          "passwd",
          "index.html",
          "assets",
          "%00",
          "%ZZ",
          "%C0%AE%C0%AE",
          "a".repeat(300),
        ),
        { maxLength: 6 },
      ),
      async (prefix, segs) => {
        const path = prefix + segs.join("/");
        const r = await send(port, "GET", path);
        if (!tally.check("static", `GET ${path}`, r)) return;
        if (/root:.*:0:0:/.test(r.body)) tally.fail(`static: ${path} served /etc/passwd`);
      },
    ),
    FC(300),
  );
  expectClean();
});

/** Handwritten malformed requests: each answered below 500 (mostly 400 from node:http) or closed. */
function malformed(): (string | Buffer)[] {
  const H = `Host: 127.0.0.1\r\n`;
  const L = `Host: ${DOMAIN}\r\n`;
  const auth = `Authorization: Bearer ${fuzzKey}\r\n`;
  const bytes = (s: string) => Buffer.from(s, "latin1");
  return [
    "GET / HTTP/1.1\r\n\r\n",
    "GET /\r\n\r\n",
    "GET / HTTP/9.9\r\n" + H + "\r\n",
    "GET / HTTP/1.1 extra\r\n" + H + "\r\n",
    "FOO / HTTP/1.1\r\n" + H + "\r\n",
    "get /api/v1/links HTTP/1.1\r\n" + H + "\r\n",
    " GET / HTTP/1.1\r\n" + H + "\r\n",
    "GET  /healthz  HTTP/1.1\r\n" + H + "\r\n",
    "GET http://evil.example/api/v1/links HTTP/1.1\r\n" + H + auth + "\r\n",
    "GET http://evil.example/abc HTTP/1.1\r\n" + L + "\r\n",
    "CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\n\r\n",
    "OPTIONS * HTTP/1.1\r\n" + H + "\r\n",
    "GET /api/v1/links HTTP/1.1\r\n" + H + "Bad Header: x\r\n\r\n",
    "GET /api/v1/links HTTP/1.1\r\n" + H + "NoColon\r\n\r\n",
    "GET /api/v1/links HTTP/1.1\r\n" + H + "X: a\r\n  folded\r\n\r\n",
    "GET /api/v1/links HTTP/1.1\r\n" + H + "X: a\x00b\r\n\r\n",
    "GET /api/v1/links HTTP/1.1\r\n" + H + H + "\r\n",
    "GET /abc HTTP/1.1\r\n" + L + "Host: evil.example\r\n\r\n",
    "GET /abc HTTP/1.1\r\nHost: \r\n\r\n",
    "GET /abc HTTP/1.1\r\nHost: fuzz.test:99999\r\n\r\n",
    "GET /abc HTTP/1.1\r\nHost: [::1\r\n\r\n",
    "GET /abc HTTP/1.1\r\nHost: fuzz.test@evil.example\r\n\r\n",
    "GET /abc HTTP/1.1\r\nHost: evil.example/fuzz.test\r\n\r\n",
    "GET /abc HTTP/1.1\r\n" + L + "X-Forwarded-Host: evil.example\r\n\r\n",
    "POST /api/v1/links HTTP/1.1\r\n" + H + auth + "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "POST /api/v1/links HTTP/1.1\r\n" + H + auth + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "POST /api/v1/links HTTP/1.1\r\n" + H + auth + "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "POST /api/v1/links HTTP/1.1\r\n" +
      H +
      auth +
      "Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\nffffffffffffffff\r\n{}\r\n0\r\n\r\n",
    "POST /api/v1/links HTTP/1.1\r\n" + H + auth + "Transfer-Encoding: chunked;x\r\n\r\n0\r\n\r\n",
    "POST /api/v1/links HTTP/1.1\r\n" + H + auth + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "POST /api/v1/links HTTP/1.1\r\n" + H + auth + 'Transfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n2;ext="x\r\n{}\r\n0\r\n\r\n',
    "POST /api/v1/links HTTP/1.1\r\n" + H + auth + "Content-Length: -1\r\n\r\n",
    "POST /api/v1/links HTTP/1.1\r\n" + H + auth + "Content-Length: abc\r\n\r\n",
    "POST /api/v1/links HTTP/1.1\r\n" + H + auth + "Content-Length: 99999999999999999999\r\n\r\n",
    "POST /api/v1/links HTTP/1.1\r\n" + H + auth + "Content-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: 4\r\n\r\nabcd",
    "POST /api/v1/links HTTP/1.1\r\n" + H + auth + "Content-Type: application/json\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\n{}",
    "POST /api/v1/events HTTP/1.1\r\n" + H + "Content-Type: application/json\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}",
    "POST /api/v1/events HTTP/1.1\r\n" + H + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    "POST /api/v1/events HTTP/1.1\r\n" + H + "Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
    "POST /api/v1/links HTTP/1.1\r\n" + H + auth + "Content-Type: application/json\r\nExpect: 999-nope\r\nContent-Length: 2\r\n\r\n{}",
    bytes("GET /api/v1/links/\xff\xfe HTTP/1.1\r\n" + H + auth + "\r\n"),
    bytes("GET /api/v1/links?q=\xc0\xaf&tag=\xed\xa0\x80 HTTP/1.1\r\n" + H + auth + "\r\n"),
    bytes("GET /t/c/\xff\xfe\xfd HTTP/1.1\r\n" + H + "\r\n"),
    bytes("GET /t/o/%ff%fe HTTP/1.1\r\n" + H + "\r\n"),
    bytes("GET /\xff\xfe HTTP/1.1\r\n" + L + "\r\n"),
    bytes("GET /abc?\xff=\xff HTTP/1.1\r\n" + L + "\r\n"),
    bytes("GET /abc HTTP/1.1\r\nHost: fuzz.t\xffst\r\n\r\n"),
    bytes("GET /admin/campaigns/\xff HTTP/1.1\r\n" + H + `Authorization: ${BASIC}\r\n\r\n`),
    bytes("GET /track/\xff?platform=Android HTTP/1.1\r\n" + H + "\r\n"),
    bytes("GET /mt/events?key=\xff&sort=\xff HTTP/1.1\r\n" + H + "\r\n"),
    bytes("POST /mt/sessions HTTP/1.1\r\n" + H + "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 12\r\n\r\nconsumer_k\xff\xfe"),
    bytes(
      "POST /api/v1/auth/session HTTP/1.1\r\n" +
        H +
        'Content-Type: application/json\r\nContent-Length: 33\r\n\r\n{"email":"\xff\xfe","password":"\xc0"}',
    ),
    bytes("GET /api/v1/auth/session HTTP/1.1\r\n" + H + "Cookie: ct_session=\xff\xfe\r\n\r\n"),
    bytes("GET /api/v1/links HTTP/1.1\r\n" + H + "Authorization: Bearer \xff\xfe\xfd\r\n\r\n"),
    bytes("GET /admin/campaigns HTTP/1.1\r\n" + H + "Authorization: Basic \xff\xfe\r\n\r\n"),
    "GET /api/v1/links HTTP/1.1\r\n" + H + "X-Big: " + "a".repeat(70_000) + "\r\n\r\n",
    "GET /" + "a".repeat(100_000) + " HTTP/1.1\r\n" + L + "\r\n",
    "GET /t/c/" + "A".repeat(60_000) + " HTTP/1.1\r\n" + H + "\r\n",
    "GET /api/v1/links HTTP/1.1\r\n" + H + Array.from({ length: 3000 }, (_, i) => `X-${i}: ${i}\r\n`).join("") + "\r\n",
    "GET /healthz HTTP/1.1\r\n" + H + "\r\nGET /healthz HTTP/1.1\r\n" + H + "\r\nGARBAGE\r\n\r\n",
    "GET /healthz HTTP/1.0\r\n\r\n",
    "\r\n\r\n\r\n",
    "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
  ];
}

test("raw bytes over a socket: malformed request lines, headers, encodings and smuggling attempts", async () => {
  for (const data of malformed()) {
    const r = await rawHttp(port, data);
    const label = JSON.stringify(Buffer.from(data).toString("latin1").slice(0, 160));
    tally.check("raw", label, r, { allowDrop: true });
    // a request smuggled behind a conflicting Content-Length / Transfer-Encoding must not be answered as a second request
    if (r.status !== null && (r.text.match(/HTTP\/1\.1 [2-5]/g) ?? []).length > 1 && !label.includes("healthz"))
      tally.fail(`raw: two answers to ${label}`);
  }
  // random request lines and headers, of printable and arbitrary bytes
  const token = fc.string({
    unit: fc.constantFrom(..."ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~%/?#[]@!$&'()*+,;=:\\ \t\"<>{}|^`"),
    maxLength: 40,
  });
  const target = fc.oneof(
    fc
      .tuple(
        fc.constantFrom(
          "/api/v1/links",
          "/api/v1/events",
          "/t/c/",
          "/t/o/",
          "/admin/campaigns",
          "/track/",
          "/mt/events",
          "/abc",
          "/",
          "/dashboard/",
          "/api/v1/auth/session",
        ),
        token,
      )
      .map(([a, b]) => a + b),
    fc.uint8Array({ minLength: 1, maxLength: 40 }).map((a) => Buffer.from(a).toString("latin1")),
  );
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom("GET", "POST", "HEAD", "PUT", "DELETE", "G\x00T", "", "GET\t"),
      target,
      fc.constantFrom("HTTP/1.1", "HTTP/1.0", "HTTP/1.1", "HTTP/2", "HTTP/1.1\x00", ""),
      fc.array(
        fc.tuple(
          fc.constantFrom(
            "Host",
            "Authorization",
            "Content-Type",
            "Content-Length",
            "Transfer-Encoding",
            "Cookie",
            "X-Forwarded-For",
            "Accept-Language",
            "X",
            "Ho st",
            "",
          ),
          fc.oneof(
            token,
            fc.uint8Array({ maxLength: 20 }).map((a) => Buffer.from(a).toString("latin1")),
          ),
        ),
        { maxLength: 5 },
      ),
      fc.constantFrom(DOMAIN, "127.0.0.1", ""),
      fc.option(
        fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a).toString("latin1")),
        { nil: undefined },
      ),
      async (method, path, version, headers, host, body) => {
        const head =
          `${method} ${path} ${version}\r\n` + (host ? `Host: ${host}\r\n` : "") + headers.map(([k, v]) => `${k}: ${v}\r\n`).join("") + "\r\n";
        const r = await rawHttp(port, Buffer.from(head + (body ?? ""), "latin1"), 400);
        tally.check("raw", JSON.stringify(head.slice(0, 200)), r, { allowDrop: true });
      },
    ),
    FC(1200),
  );
  expectClean();
});

test("still up, memory bounded, and the count", async () => {
  const h = await send(port, "GET", "/healthz");
  assert.equal(h.status, 200, h.body);
  const l = await send(port, "GET", `/api/v1/links/${ids.links[0]}`, { headers: { authorization: `Bearer ${fuzzKey}` } });
  assert.ok(l.status === 200 || l.status === 404, l.body);
  const mem = retainedMemory();
  const mb = (n: number) => Math.round(n / 1048576);
  console.log(
    `fuzz: memory heapUsed ${mb(memStart.heapUsed)} → ${mb(mem.heapUsed)} MB, rss ${mb(memStart.rss)} → ${mb(mem.rss)} MB; ` +
      [...tally.byArea].map(([a, n]) => `${a} ${n}`).join(", "),
  );
  // the server runs in this process: its heap (and the client's) must not grow with the number of requests
  assert.ok(mem.heapUsed - memStart.heapUsed < 64 * 1048576, `heapUsed grew by ${mb(mem.heapUsed - memStart.heapUsed)} MB`);
  assert.ok(mem.rss < 1024 * 1048576, `rss ${mb(mem.rss)} MB`);
  console.log(
    `fuzz: ${tally.cases.toLocaleString("en-US")} cases, ${tally.fivexx} 5xx, seed ${SEED}, ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );
  assert.ok(tally.cases > 1000, `only ${tally.cases} cases`);
  assert.equal(tally.fivexx, 0);
  expectClean();
});

/**
 * Memory after a full garbage collection: what the process holds, not the garbage a collection would free (which is
 * as large as the heap lets it grow, and made the heap check pass or fail by when V8 last collected).
 */
function retainedMemory(): NodeJS.MemoryUsage {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
  return process.memoryUsage();
}
