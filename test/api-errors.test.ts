/**
 * Bad input on every route of the native API, over real HTTP: every answer must be a 4xx RFC 9457 problem+json whose
 * `detail` (or `field`) names what is wrong, never a 5xx, and the server keeps answering afterwards.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { req, startApp, type Res, type TestApp } from "./helpers.js";

let t: TestApp;
let base: string;
let domainId = 0;
let linkId = 0;
let keyId = 0;

before(async () => {
  t = await startApp();
  base = t.base;
  let r = await req(base, "POST", "/api/v1/domains", { body: { hostname: "err.example" } });
  assert.equal(r.status, 201, r.body);
  domainId = r.json.id;
  r = await req(base, "POST", "/api/v1/links", { body: { domain: "err.example", slug: "e", target: "https://example.com/e" } });
  assert.equal(r.status, 201, r.body);
  linkId = r.json.id;
  r = await req(base, "POST", "/api/v1/keys", { body: { name: "victim", scopes: ["links:read"] } });
  assert.equal(r.status, 201, r.body);
  keyId = r.json.id;
});
after(async () => {
  await t?.close();
});

/** Every answer in this file goes through here: 4xx, problem+json, a detail naming the problem. */
function assertProblem(r: Res, status: number | "4xx", mention?: string | RegExp, what = "") {
  const ctx = `${what} → ${r.status} ${r.body.slice(0, 400)}`;
  assert.ok(r.status < 500, `never 5xx: ${ctx}`);
  if (status === "4xx") assert.ok(r.status >= 400 && r.status < 500, ctx);
  else assert.equal(r.status, status, ctx);
  assert.match(String(r.headers["content-type"]), /^application\/problem\+json/, ctx);
  assert.equal(r.json?.status, r.status, ctx);
  assert.equal(typeof r.json.title, "string", ctx);
  assert.ok(String(r.json.type).startsWith("https://clicktrail.dev/problems/"), ctx);
  assert.ok(typeof r.json.detail === "string" && r.json.detail.length > 0, ctx);
  if (mention !== undefined) {
    const hay = `${r.json.detail} ${r.json.field ?? ""}`;
    const ok = typeof mention === "string" ? hay.includes(mention) : mention.test(hay);
    assert.ok(ok, `the problem should name ${mention}: ${ctx}`);
  }
}

type BodyRoute = { method: string; path: () => string; valid: () => Record<string, unknown> };
const BODY_ROUTES: BodyRoute[] = [
  { method: "POST", path: () => "/api/v1/domains", valid: () => ({ hostname: "err-new.example" }) },
  { method: "PATCH", path: () => `/api/v1/domains/${domainId}`, valid: () => ({ fallback_url: null }) },
  { method: "POST", path: () => "/api/v1/links", valid: () => ({ domain: "err.example", target: "https://example.com/" }) },
  { method: "PATCH", path: () => `/api/v1/links/${linkId}`, valid: () => ({ title: "x" }) },
  { method: "POST", path: () => "/api/v1/links/bulk", valid: () => ({ links: [{ domain: "err.example", target: "https://example.com/" }] }) },
  { method: "POST", path: () => "/api/v1/keys", valid: () => ({ scopes: ["links:read"] }) },
];
const json = { "content-type": "application/json" };

describe("request bodies", () => {
  test("malformed JSON is 400 and says so", async () => {
    for (const r of BODY_ROUTES) {
      for (const raw of ['{"hostname": ', "{'a': 1}", "{a:1}", '{"a":1}}', "\u0000"]) {
        assertProblem(await req(base, r.method, r.path(), { raw, headers: json }), 400, /JSON/, `${r.method} ${r.path()} ${JSON.stringify(raw)}`);
      }
    }
  });

  test("an empty or absent body is 400 naming the body", async () => {
    for (const r of BODY_ROUTES) {
      const what = `${r.method} ${r.path()}`;
      assertProblem(await req(base, r.method, r.path(), { raw: "", headers: json }), 400, /[Bb]ody/, what + " empty");
      assertProblem(await req(base, r.method, r.path(), {}), 400, /[Bb]ody/, what + " absent");
      for (const raw of ["[]", "null", "42", '"text"', "true", "[{}]"]) {
        assertProblem(await req(base, r.method, r.path(), { raw, headers: json }), 400, /[Bb]ody/, `${what} ${raw}`);
      }
    }
  });

  test("an unknown field is 400 naming it", async () => {
    for (const r of BODY_ROUTES) {
      const body = { ...r.valid(), zz_unknown: 1 };
      assertProblem(await req(base, r.method, r.path(), { body }), 400, "zz_unknown", `${r.method} ${r.path()}`);
    }
    // nested objects too
    assertProblem(
      await req(base, "POST", "/api/v1/links", { body: { domain: "err.example", target: "https://example.com/", utm: { zz_nested: "x" } } }),
      400,
      /zz_nested|utm/,
    );
  });

  test("a __proto__ key is refused, not merged", async () => {
    for (const r of BODY_ROUTES) {
      const raw = JSON.stringify(r.valid()).replace(/^\{/, '{"__proto__":{"polluted":true},');
      assertProblem(await req(base, r.method, r.path(), { raw, headers: json }), "4xx", undefined, `${r.method} ${r.path()}`);
    }
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  test("a non-JSON content type is 415 (application/xml, form data, text/plain)", async () => {
    for (const r of BODY_ROUTES) {
      for (const [ct, raw] of [
        ["application/xml", "<a/>"],
        ["application/x-www-form-urlencoded", "hostname=x.example"],
        ["multipart/form-data; boundary=x", "--x--"],
      ]) {
        assertProblem(
          await req(base, r.method, r.path(), { raw, headers: { "content-type": ct! } }),
          415,
          undefined,
          `${r.method} ${r.path()} ${ct}`,
        );
      }
    }
  });

  test("a text/plain body is 415, like any other non-JSON type (even when the text is JSON)", async () => {
    for (const r of BODY_ROUTES) {
      const what = `${r.method} ${r.path()} text/plain`;
      assertProblem(await req(base, r.method, r.path(), { raw: "hello", headers: { "content-type": "text/plain" } }), 415, undefined, what);
      assertProblem(
        await req(base, r.method, r.path(), { raw: JSON.stringify(r.valid()), headers: { "content-type": "text/plain; charset=utf-8" } }),
        415,
        undefined,
        what,
      );
    }
  });
});

describe("wrong types and values in bodies", () => {
  test("domains", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ hostname: 123 }, "hostname"],
      [{ hostname: ["a.example"] }, "hostname"],
      [{ hostname: null }, "hostname"],
      [{ hostname: "x".repeat(254) }, "hostname"],
      [{ hostname: "ok-type.example", fallback_url: 5 }, "fallback_url"],
      [{ hostname: "ok-type.example", fallback_url: {} }, "fallback_url"],
      [{ hostname: "ok-type.example", fallback_url: "x".repeat(4097) }, "fallback_url"],
    ];
    for (const [body, field] of cases) {
      assertProblem(await req(base, "POST", "/api/v1/domains", { body }), 400, field, JSON.stringify(body).slice(0, 80));
    }
    for (const [body, field] of [
      [{ hostname: null }, "hostname"],
      [{ fallback_url: true }, "fallback_url"],
      [{ hostname: "" }, "hostname"],
    ] as const) {
      assertProblem(await req(base, "PATCH", `/api/v1/domains/${domainId}`, { body }), 400, field, JSON.stringify(body));
    }
  });

  test("links (create and patch)", async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ target: 123 }, "target"],
      [{ target: null }, "target"],
      [{ target: "" }, "target"],
      [{ target: "x".repeat(4097) }, "target"],
      [{ tags: "x" }, "tags"],
      [{ tags: { a: 1 } }, "tags"],
      [{ max_clicks: "5" }, "max_clicks"],
      [{ max_clicks: 2.5 }, "max_clicks"],
      [{ max_clicks: 0 }, "max_clicks"],
      [{ redirect_status: 303 }, "redirect_status"],
      [{ redirect_status: "302" }, "redirect_status"],
      [{ redirect_status: null }, "redirect_status"],
      [{ expires_at: true }, "expires_at"],
      [{ expires_at: "soon" }, "expires_at"],
      [{ forward_query: 1 }, "forward_query"],
      [{ forward_query: "true" }, "forward_query"],
      [{ utm: [] }, "utm"],
      [{ utm: { source: 5 } }, "utm"],
      [{ title: 5 }, "title"],
      [{ notes: [] }, "notes"],
      [{ slug: 5 }, "slug"],
      [{ slug: "bad slug" }, "slug"],
      [{ domain: 5 }, "domain"],
    ];
    for (const [extra, field] of cases) {
      const body = { domain: "err.example", target: "https://example.com/", ...extra };
      assertProblem(await req(base, "POST", "/api/v1/links", { body }), 400, field, "POST " + JSON.stringify(extra).slice(0, 60));
      assertProblem(await req(base, "PATCH", `/api/v1/links/${linkId}`, { body: extra }), 400, field, "PATCH " + JSON.stringify(extra).slice(0, 60));
    }
    const r = await req(base, "GET", `/api/v1/links/${linkId}`);
    assert.equal(r.json.target, "https://example.com/e", "no refused patch changed the link");
    assert.equal(r.json.title, null);
  });

  test("bulk", async () => {
    for (const [body, field] of [
      [{ links: {} }, "links"],
      [{ links: "x" }, "links"],
      [{ links: null }, "links"],
      [{ links: [null] }, "links"],
      [{ links: [[]] }, "links"],
    ] as const) {
      assertProblem(await req(base, "POST", "/api/v1/links/bulk", { body }), 400, field, JSON.stringify(body));
    }
  });

  test("keys", async () => {
    for (const [body, field] of [
      [{ scopes: "admin" }, "scopes"],
      [{ scopes: [] }, "scopes"],
      [{ scopes: ["root"] }, "scopes"],
      [{ scopes: ["admin", "admin"] }, "scopes"],
      [{ scopes: [5] }, "scopes"],
      [{ name: 5, scopes: ["admin"] }, "name"],
      [{ name: "x".repeat(129), scopes: ["admin"] }, "name"],
      [{ name: "no scopes" }, "scopes"],
    ] as const) {
      assertProblem(await req(base, "POST", "/api/v1/keys", { body }), 400, field, JSON.stringify(body));
    }
  });

  test("an expires_at outside the representable date range is 400, and does not break listing", async () => {
    // its own app: if the link were stored anyway, it would poison every later listing of this file's project
    const own = await startApp();
    try {
      const b = own.base;
      assert.equal((await req(b, "POST", "/api/v1/domains", { body: { hostname: "far.example" } })).status, 201);
      const l = await req(b, "POST", "/api/v1/links", { body: { domain: "far.example", target: "https://example.com/" } });
      assert.equal(l.status, 201);
      for (const expires_at of [1e16, -1e17, 8.64e15 + 1, 1e300]) {
        const p = await req(b, "PATCH", `/api/v1/links/${l.json.id}`, { body: { expires_at } });
        assertProblem(p, 400, "expires_at", `PATCH expires_at ${expires_at}`);
        const r = await req(b, "POST", "/api/v1/links", { body: { domain: "far.example", target: "https://example.com/far", expires_at } });
        assertProblem(r, 400, "expires_at", `POST expires_at ${expires_at}`);
      }
      const list = await req(b, "GET", "/api/v1/links");
      assert.equal(list.status, 200, `listing still works: ${list.body.slice(0, 300)}`);
      assert.equal(list.json.links.length, 1);
    } finally {
      await own.close();
    }
  });

  test("times are ISO 8601 or epoch ms only: free-form date strings are 400", async () => {
    for (const v of ["March 7", "1", "Tue, 01 Oct 2024"]) {
      const enc = encodeURIComponent(v);
      assertProblem(
        await req(base, "POST", "/api/v1/links", { body: { domain: "err.example", target: "https://example.com/", expires_at: v } }),
        400,
        "expires_at",
        `expires_at ${v}`,
      );
      assertProblem(await req(base, "GET", `/api/v1/links?created_after=${enc}`), 400, "created_after", `created_after ${v}`);
      assertProblem(await req(base, "GET", `/api/v1/stats?from=${enc}`), 400, "from", `stats from ${v}`);
      assertProblem(await req(base, "GET", `/api/v1/clicks/export?to=${enc}`), 400, "to", `export to ${v}`);
    }
  });
});

describe("ids and query parameters", () => {
  const BAD_IDS = ["abc", "-1", "1.5", "1e3", "0x1F", "99999999999999999999", "1234567890123456", "1%20", "%20", "1,2"];

  test("bad ids are 400 naming id, on every route with an id", async () => {
    const routes: [string, string, unknown?][] = [
      ["GET", "/api/v1/domains/:id"],
      ["PATCH", "/api/v1/domains/:id", { fallback_url: null }],
      ["DELETE", "/api/v1/domains/:id"],
      ["GET", "/api/v1/domains/:id/stats"],
      ["GET", "/api/v1/links/:id"],
      ["PATCH", "/api/v1/links/:id", { title: "x" }],
      ["DELETE", "/api/v1/links/:id"],
      ["GET", "/api/v1/links/:id/stats"],
      ["DELETE", "/api/v1/keys/:id"],
    ];
    for (const [m, p, body] of routes) {
      for (const id of BAD_IDS) {
        const path = p.replace(":id", id);
        assertProblem(await req(base, m, path, { body }), 400, "id", `${m} ${path}`);
      }
      // well-formed but unknown ids are 404
      for (const id of ["0", "999999999999999", "000000000000042"]) {
        const path = p.replace(":id", id);
        assertProblem(await req(base, m, path, { body }), 404, undefined, `${m} ${path}`);
      }
    }
    assert.equal((await req(base, "GET", `/api/v1/links/${linkId}`)).status, 200, "the link is still there");
    assert.equal((await req(base, "GET", `/api/v1/domains/${domainId}`)).status, 200, "the domain is still there");
  });

  test("an undecodable path is a 4xx problem", async () => {
    for (const path of ["/api/v1/links/%zz", "/api/v1/links/%E0%A4%A", "/api/v1/%ff"]) {
      assertProblem(await req(base, "GET", path), "4xx", undefined, path);
    }
  });

  test("stats queries: bad from/to/tz/interval/bots/top and unknown parameters are 400 naming them", async () => {
    const cases: [string, string][] = [
      ["from=garbage", "from"],
      ["to=garbage", "to"],
      ["from=2024-01-02&to=2024-01-01", "from"],
      ["from=2024-01-01&to=2024-01-01", "from"],
      ["tz=Mars/Olympus", "tz"],
      ["tz=", "tz"],
      ["tz=UTC&tz=Europe/Paris", "tz"],
      ["interval=month", "interval"],
      ["interval=", "interval"],
      ["from=2020-01-01&to=2024-01-01&interval=hour", "interval"],
      ["bots=maybe", "bots"],
      ["top=0", "top"],
      ["top=101", "top"],
      ["top=abc", "top"],
      ["top=-1", "top"],
      ["colour=red", "colour"],
    ];
    for (const path of ["/api/v1/stats", `/api/v1/links/${linkId}/stats`, `/api/v1/domains/${domainId}/stats`]) {
      for (const [q, field] of cases) {
        assertProblem(await req(base, "GET", `${path}?${q}`), 400, field, `${path}?${q}`);
      }
    }
  });

  test("export queries: bad format/link_id/from/to/domain/name and unknown parameters are 400 naming them", async () => {
    const cases: [string, string][] = [
      ["format=xml", "format"],
      ["format=CSV", "format"],
      ["link_id=abc", "link_id"],
      ["link_id=0", "link_id"],
      ["link_id=-5", "link_id"],
      ["link_id=99999999999999999999", "link_id"],
      ["from=garbage", "from"],
      ["to=garbage", "to"],
      ["domain=unknown.example", "domain"],
      [`name=${"n".repeat(65)}`, "name"],
      ["colour=red", "colour"],
    ];
    for (const [q, field] of cases) {
      assertProblem(await req(base, "GET", `/api/v1/clicks/export?${q}`), 400, field, q);
    }
  });

  test("list queries: bad parameters are 400 naming them", async () => {
    for (const [q, field] of [
      ["limit=0", "limit"],
      ["limit=99999", "limit"],
      ["limit=1.5", "limit"],
      ["cursor=%%%", "cursor"],
      [`cursor=${"a".repeat(65)}`, "cursor"],
      [`cursor=${Buffer.from("l:abc").toString("base64url")}`, "cursor"],
      ["created_before=nope", "created_before"],
      [`tag=${"t".repeat(65)}`, "tag"],
      ["domain=unknown.example", "domain"],
      ["page=2", "page"],
    ] as const) {
      assertProblem(await req(base, "GET", `/api/v1/links?${q}`), 400, field, q);
    }
  });

  test("unknown routes and methods are 404 problems", async () => {
    for (const [m, p] of [
      ["GET", "/api/v1/nope"],
      ["PUT", "/api/v1/links"],
      ["POST", `/api/v1/links/${linkId}`],
      ["GET", "/api/v2/links"],
      ["DELETE", "/api/v1/domains"],
    ] as const) {
      assertProblem(await req(base, m, p), 404, undefined, `${m} ${p}`);
    }
  });
});

describe("body size limit", () => {
  let small: TestApp;
  before(async () => {
    small = await startApp({ CLICKTRAIL_BODY_LIMIT: "2048" });
    const r = await req(small.base, "POST", "/api/v1/domains", { body: { hostname: "small.example" } });
    assert.equal(r.status, 201);
  });
  after(async () => {
    await small?.close();
  });

  test("a body over CLICKTRAIL_BODY_LIMIT is 413 naming the limit, on every body route", async () => {
    for (const r of BODY_ROUTES) {
      const path = r.path().replace(/\/\d+$/, "/1");
      const body = { ...r.valid(), notes: "x".repeat(3000) };
      const res = await req(small.base, r.method, path, { body });
      assertProblem(res, 413, "2048", `${r.method} ${path}`);
    }
    // just under the limit is fine
    const ok = await req(small.base, "POST", "/api/v1/links", {
      body: { domain: "small.example", target: "https://example.com/", notes: "x".repeat(1800) },
    });
    assert.equal(ok.status, 201, ok.body);
    const bulk = Array.from({ length: 200 }, (_, i) => ({ domain: "small.example", slug: `s${i}`, target: "https://example.com/" }));
    assertProblem(await req(small.base, "POST", "/api/v1/links/bulk", { body: { links: bulk } }), 413, "2048");
    assert.equal((await req(small.base, "GET", "/healthz", { key: null })).status, 200);
  });
});

test("after all of that the server still answers /healthz and serves links", async () => {
  const r = await req(base, "GET", "/healthz", { key: null });
  assert.equal(r.status, 200);
  assert.equal(r.json.status, "ok");
  const l = await req(base, "GET", `/api/v1/links/${linkId}`);
  assert.equal(l.status, 200);
  assert.equal(l.json.target, "https://example.com/e");
  // the victim key from before() was never revoked by any of the bad DELETEs
  const keys = await req(base, "GET", "/api/v1/keys");
  assert.equal(keys.json.keys.find((k: { id: number }) => k.id === keyId).revoked_at, null);
});
