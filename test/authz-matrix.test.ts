/**
 * The authorization matrix: every native route of /openapi.json × {no key, an admin key of another project, a key
 * holding one single scope (each of SCOPES)} → the expected answer: 401 without a key, 403 naming the scope a key
 * lacks, 404 for another project's object (and nothing of ours in its lists), 2xx (or past authorization) with the
 * scope. A route missing from EXPECT fails the test: whoever adds a route classifies it here. Runs on SQLite and, in
 * the PostgreSQL round, on PostgreSQL.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { startApp, type TestApp } from "./helpers.js";
import { closeAgent, openApiRoutes, problemError, send, type Answer, type Route } from "./fuzz-helpers.js";
import { SCOPES, type Scope } from "../src/store/port.js";

/**
 * What each route needs: a scope (admin holds every scope), "public" (anyone), "session" (a dashboard cookie; an API
 * key is not a session), "signin" (the sign-in itself), "ingest" (an app's public ingest key, no API key), or
 * "ingest|<scope>" (an ingest key, or an API key with the scope).
 */
type Need = Scope | "public" | "session" | "signin" | "ingest" | `ingest|${Scope}`;
const EXPECT: Record<string, Need> = {
  "GET /healthz": "public",
  "GET /metrics": "public",
  "POST /api/v1/auth/session": "signin",
  "GET /api/v1/auth/session": "session",
  "DELETE /api/v1/auth/session": "session",
  "GET /api/v1/keys": "admin",
  "POST /api/v1/keys": "admin",
  "DELETE /api/v1/keys/{id}": "admin",
  "POST /api/v1/domains": "links:write",
  "GET /api/v1/domains": "links:read",
  "GET /api/v1/domains/{id}": "links:read",
  "PATCH /api/v1/domains/{id}": "links:write",
  "DELETE /api/v1/domains/{id}": "links:write",
  "GET /api/v1/domains/{id}/stats": "stats:read",
  "POST /api/v1/links": "links:write",
  "GET /api/v1/links": "links:read",
  "POST /api/v1/links/bulk": "links:write",
  "GET /api/v1/links/{id}": "links:read",
  "PATCH /api/v1/links/{id}": "links:write",
  "DELETE /api/v1/links/{id}": "links:write",
  "GET /api/v1/links/{id}/qr": "links:read",
  "GET /api/v1/links/{id}/stats": "stats:read",
  "POST /api/v1/campaigns": "links:write",
  "GET /api/v1/campaigns": "links:read",
  "GET /api/v1/campaigns/{id}": "links:read",
  "PATCH /api/v1/campaigns/{id}": "links:write",
  "DELETE /api/v1/campaigns/{id}": "links:write",
  "GET /api/v1/campaigns/{id}/stats": "stats:read",
  "POST /api/v1/webhooks": "admin",
  "GET /api/v1/webhooks": "admin",
  "GET /api/v1/webhooks/{id}": "admin",
  "PATCH /api/v1/webhooks/{id}": "admin",
  "DELETE /api/v1/webhooks/{id}": "admin",
  "POST /api/v1/webhooks/{id}/rotate-secret": "admin",
  "GET /api/v1/webhooks/{id}/deliveries": "admin",
  "POST /api/v1/webhooks/{id}/test": "admin",
  "POST /api/v1/sessions": "ingest",
  "GET /api/v1/sessions": "stats:read",
  "POST /api/v1/sessions/{token}/stop": "ingest",
  "POST /api/v1/events": "ingest",
  "GET /api/v1/events": "stats:read",
  "POST /api/v1/apps": "admin",
  "GET /api/v1/apps": "admin",
  "POST /api/v1/apps/{id}/disable": "admin",
  "POST /api/v1/apps/{id}/enable": "admin",
  "GET /api/v1/apps/{id}/stats": "stats:read",
  "GET /api/v1/events/stream": "stats:read",
  "GET /api/v1/stats": "stats:read",
  "GET /api/v1/clicks/export": "stats:read",
  "POST /api/v1/identify": "ingest|events:write",
  "POST /api/v1/visitors/{id}/properties": "ingest|events:write",
  "GET /api/v1/visitors": "stats:read",
  "GET /api/v1/visitors/{id}": "stats:read",
  "GET /api/v1/visitors/{id}/events": "stats:read",
  "POST /api/v1/funnels/query": "stats:read",
  "GET /api/v1/funnels": "stats:read",
  "POST /api/v1/funnels": "funnels:write",
  "GET /api/v1/funnels/{id}": "stats:read",
  "PATCH /api/v1/funnels/{id}": "funnels:write",
  "DELETE /api/v1/funnels/{id}": "funnels:write",
  "GET /api/v1/funnels/{id}/results": "stats:read",
  "GET /api/v1/reports/events": "stats:read",
  "GET /api/v1/reports/events/{name}": "stats:read",
  "POST /api/v1/tracking/links": "links:write",
  "GET /api/v1/tracking/keys": "admin",
  "POST /api/v1/tracking/keys": "admin",
  "DELETE /api/v1/tracking/keys/{id}": "admin",
  "GET /api/v1/tracking/stats": "stats:read",
};

/** A string in our project's objects: another project's answers must never contain it. */
const MARKER = "ourmarker7q";
const DOMAIN = `${MARKER}.example`;

process.env.CLICKTRAIL_WEBHOOK_ALLOW = "127.0.0.2";

let t: TestApp;
let routes: Route[];
let admin = "";
let other = "";
const scoped = new Map<Scope, string>();
let n = 0;

async function api(method: string, path: string, body?: unknown, key = admin): Promise<any> {
  const r = await call(method, path, key, body);
  assert.ok(r.status >= 200 && r.status < 300, `${method} ${path}: ${r.status} ${r.body}`);
  return r.json;
}

function call(method: string, path: string, key: string | null, body?: unknown): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  return send(t.port, method, path, { headers, body: body === undefined ? undefined : JSON.stringify(body) });
}

/** A fresh object of our project for a route's {id} (a DELETE consumes it), and a valid body for writes. */
const make: Record<string, () => Promise<string>> = {
  keys: async () => String((await api("POST", "/api/v1/keys", { name: MARKER, scopes: ["links:read"] })).id),
  domains: async () => String((await api("POST", "/api/v1/domains", { hostname: `d${++n}.${DOMAIN}` })).id),
  links: async () => String((await api("POST", "/api/v1/links", { domain: DOMAIN, target: `https://example.com/${MARKER}`, slug: `s${++n}` })).id),
  campaigns: async () => String((await api("POST", "/api/v1/campaigns", { name: `${MARKER}${++n}` })).id),
  webhooks: async () => String((await api("POST", "/api/v1/webhooks", { url: `http://127.0.0.2:9/${MARKER}` })).id),
  apps: async () => String((await api("POST", "/api/v1/apps", { name: `${MARKER}${++n}` })).id),
  tracking: async () => String((await api("POST", "/api/v1/tracking/keys", {})).id),
};

const BODIES: Record<string, () => unknown> = {
  "POST /api/v1/keys": () => ({ name: MARKER, scopes: ["links:read"] }),
  "POST /api/v1/domains": () => ({ hostname: `n${++n}.${DOMAIN}` }),
  "PATCH /api/v1/domains/{id}": () => ({ fallback_url: "https://example.com/fb" }),
  "POST /api/v1/links": () => ({ domain: DOMAIN, target: "https://example.com/new" }),
  "POST /api/v1/links/bulk": () => ({ links: [{ domain: DOMAIN, target: "https://example.com/bulk" }] }),
  "PATCH /api/v1/links/{id}": () => ({ target: "https://example.com/changed" }),
  "POST /api/v1/campaigns": () => ({ name: `c${++n}` }),
  "PATCH /api/v1/campaigns/{id}": () => ({ name: `c${++n}` }),
  "POST /api/v1/webhooks": () => ({ url: "http://127.0.0.2:9/new" }),
  "PATCH /api/v1/webhooks/{id}": () => ({ active: false }),
  "POST /api/v1/apps": () => ({ name: `a${++n}` }),
  "POST /api/v1/tracking/links": () => ({ url: "https://example.com/t" }),
  "POST /api/v1/tracking/keys": () => ({}),
  "PATCH /api/v1/funnels/{id}": () => ({ name: `f${++n}` }),
  "POST /api/v1/identify": () => ({ anonymous: `anon${++n}`, visitor: `user${n}` }),
  "POST /api/v1/visitors/{id}/properties": () => ({ set: { plan: "pro" } }),
};

/** The same body for the other project, with nothing that names our objects (so a marker in its answers is a leak). */
const theirBody = (b: unknown) => (b === undefined ? undefined : JSON.parse(JSON.stringify(b).replaceAll(MARKER, "theirs")));

before(async () => {
  t = await startApp();
  ({ routes } = await openApiRoutes(t.base));
  const auth = t.app.services.auth;
  const ours = await auth.ensureDefaultProject();
  admin = (await auth.createKey(ours.id, "matrix-admin", ["admin"])).token;
  for (const s of SCOPES) scoped.set(s, (await auth.createKey(ours.id, `only ${s}`, [s])).token);
  const theirs = await auth.createProject("theirs");
  other = (await auth.createKey(theirs.id, "their admin", ["admin"])).token;
  await api("POST", "/api/v1/domains", { hostname: DOMAIN });
});
after(async () => {
  closeAgent();
  await t?.close();
});

test("every route of /openapi.json is classified in EXPECT (add a new route there)", () => {
  const missing = routes.map((r) => `${r.method} ${r.path}`).filter((k) => !(k in EXPECT));
  assert.deepEqual(missing, [], `classify these routes in EXPECT (test/authz-matrix.test.ts): ${missing.join(", ")}`);
  const documented = new Set(routes.map((r) => `${r.method} ${r.path}`));
  const stale = Object.keys(EXPECT).filter((k) => !documented.has(k));
  assert.deepEqual(stale, [], `EXPECT lists routes that no longer exist: ${stale.join(", ")}`);
});

async function pathFor(route: Route): Promise<string> {
  const kind = route.path.split("/")[3] === "tracking" ? "tracking" : route.path.split("/")[3]!;
  let path = route.path;
  if (path.includes("{id}")) path = path.replace("{id}", make[kind] ? await make[kind]() : "1");
  return path.replace("{token}", "0123456789abcdef0123456789abcdef").replace("{name}", "signup");
}

function scopeOf(need: Need): Scope | null {
  if (need.startsWith("ingest|")) return need.slice(7) as Scope;
  return (SCOPES as readonly string[]).includes(need) ? (need as Scope) : null;
}

test("the matrix: no key → 401, a scope missing → 403, the scope → past authorization, another project → 404 / nothing of ours", async () => {
  const problems: string[] = [];
  const expect = (ok: boolean, what: string, r: Answer) => {
    if (!ok) problems.push(`${what}: got ${r.status} ${r.body.slice(0, 160)}`);
  };
  let cells = 0;
  for (const route of routes) {
    const key = `${route.method} ${route.path}`;
    const need = EXPECT[key];
    if (!need) continue;
    const scope = scopeOf(need);
    const body = BODIES[key]?.() ?? (["POST", "PATCH", "PUT"].includes(route.method) ? {} : undefined);

    // no key
    const anon = await call(route.method, await pathFor(route), null, body);
    cells++;
    if (need === "public") expect(anon.status >= 200 && anon.status < 300, `${key} without a key`, anon);
    else if (scope && !need.startsWith("ingest")) {
      expect(anon.status === 401, `${key} without a key should be 401`, anon);
      expect(anon.status !== 401 || /^Bearer /.test(String(anon.headers["www-authenticate"] ?? "")), `${key} 401 without WWW-Authenticate`, anon);
    } else expect(anon.status >= 400 && anon.status < 500, `${key} without a key (or session, or ingest key) should be refused`, anon);
    if (anon.status >= 400 && route.path.startsWith("/api/")) {
      const e = problemError(anon);
      if (e) problems.push(`${key} without a key: ${e}`);
    }
    if (!scope) continue;

    // each single scope
    for (const s of SCOPES) {
      const r = await call(route.method, await pathFor(route), scoped.get(s)!, BODIES[key]?.() ?? body);
      cells++;
      const allowed = s === scope || s === "admin";
      if (allowed) {
        expect(r.status !== 401 && r.status !== 403 && r.status < 500, `${key} with ${s} should pass authorization`, r);
        // where the request is complete (an object of ours, a valid body), the answer is a success
        const complete = route.method === "GET" || route.method === "DELETE" || key in BODIES;
        const hasObject =
          !/\{(token|name)\}/.test(route.path) &&
          (!route.path.includes("{id}") || make[route.path.split("/")[3] === "tracking" ? "tracking" : route.path.split("/")[3]!]);
        if (complete && hasObject) expect(r.status >= 200 && r.status < 300, `${key} with ${s} should succeed`, r);
      } else {
        expect(r.status === 403, `${key} with only ${s} should be 403`, r);
        expect(r.status !== 403 || r.json?.required_scope === scope, `${key} 403 should name ${scope}`, r);
      }
    }

    // another project's admin key
    const theirs = await call(route.method, await pathFor(route), other, theirBody(BODIES[key]?.() ?? body));
    cells++;
    // (a visitor id is the application's own string: another project may well have a visitor of that name)
    if (/\{(id|token)\}/.test(route.path) && !route.path.startsWith("/api/v1/visitors/") && !need.startsWith("ingest|"))
      expect(theirs.status === 404, `${key} with another project's key should be 404`, theirs);
    else expect(theirs.status < 500 && theirs.status !== 401 && theirs.status !== 403, `${key} with another project's admin key`, theirs);
    if (theirs.body.includes(MARKER)) problems.push(`${key}: another project's key sees our objects: ${theirs.body.slice(0, 200)}`);
  }
  console.log(`authz matrix: ${routes.length} routes, ${cells} cells`);
  assert.deepEqual(problems, [], problems.join("\n"));
});

test("a revoked key is refused everywhere (401), and a key of a deleted scope set cannot be created", async () => {
  const k = await api("POST", "/api/v1/keys", { name: "short-lived", scopes: ["admin"] });
  assert.equal((await call("GET", "/api/v1/links", k.key)).status, 200);
  assert.equal((await call("DELETE", `/api/v1/keys/${k.id}`, admin)).status, 204);
  // the cache of verified keys must not outlive a revocation
  const r = await call("GET", "/api/v1/links", k.key);
  assert.equal(r.status, 401, r.body);
  const bad = await call("POST", "/api/v1/keys", admin, { scopes: ["root"] });
  assert.equal(bad.status, 400, bad.body);
  // a key of another project cannot revoke ours
  const mine = await api("POST", "/api/v1/keys", { name: "mine", scopes: ["links:read"] });
  assert.equal((await call("DELETE", `/api/v1/keys/${mine.id}`, other)).status, 404);
  assert.equal((await call("GET", "/api/v1/links", mine.key)).status, 200);
});
