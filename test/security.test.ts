/**
 * Security over real HTTP: brute-force throttling (dashboard passwords, o7tracker Basic auth), security headers, open
 * redirects (no way to make a Clicktrail host redirect anywhere without a link or a valid signature), webhook SSRF
 * (the guard and the sender), injection in every filter and sort parameter (SQLite here; PostgreSQL in the PostgreSQL
 * round), and secrets kept out of the logs (a real server process at log level trace).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { rmSync } from "node:fs";
import { ADMIN_KEY, cli, startApp, startProcess, stopProcess, tmpDir, type TestApp } from "./helpers.js";
import { closeAgent, NASTY_STRINGS, openApiRoutes, problemError, send, type Answer } from "./fuzz-helpers.js";
import { blockedReason, parseAllowlist, UrlRefused, vetUrl } from "../src/webhooks/guard.js";
import { O7_MAX_FAILURES } from "../src/dialects/o7tracker.js";

process.env.CLICKTRAIL_WEBHOOK_ALLOW = "127.0.0.2";
const FALLBACK = "https://fallback.example/";
const basic = (u: string, p: string) => `Basic ${Buffer.from(`${u}:${p}`).toString("base64")}`;
const bearer = (k = ADMIN_KEY) => ({ authorization: `Bearer ${k}` });
const json = { "content-type": "application/json" };

after(() => closeAgent());

// ---------------------------------------------------------------------------------------------------------------------
describe("brute-force throttling", () => {
  test("dashboard sign-in: 5 wrong passwords for one e-mail, then 429 with Retry-After even for the right one", async () => {
    const t = await startApp();
    try {
      await t.app.services.auth.createUser("victim@example.com", "the right password");
      const signIn = (email: string, password: string) =>
        send(t.port, "POST", "/api/v1/auth/session", { headers: json, body: JSON.stringify({ email, password }) });
      for (let i = 0; i < 5; i++) assert.equal((await signIn("victim@example.com", `guess ${i}`)).status, 401);
      const r = await signIn("VICTIM@example.com", "the right password");
      assert.equal(r.status, 429, r.body);
      assert.ok(Number(r.headers["retry-after"]) > 0, JSON.stringify(r.headers));
      assert.equal(problemError(r), null);
    } finally {
      await t.close();
    }
  });

  test("dashboard sign-in: 20 failures from one address over many e-mails, then that address waits", async () => {
    const t = await startApp();
    try {
      await t.app.services.auth.createUser("other@example.com", "the right password");
      const signIn = (email: string, password: string) =>
        send(t.port, "POST", "/api/v1/auth/session", { headers: json, body: JSON.stringify({ email, password }) });
      for (let i = 0; i < 20; i++) assert.equal((await signIn(`nobody${i}@example.com`, "x")).status, 401);
      assert.equal((await signIn("other@example.com", "the right password")).status, 429);
    } finally {
      await t.close();
    }
  });

  test("o7tracker Basic auth: wrong credentials throttled per address (429), missing ones not counted, others unaffected", async () => {
    const t = await startApp({
      CLICKTRAIL_DIALECTS: "o7tracker",
      AUTH_USER: "admin",
      AUTH_PASSWORD: "secret",
      FALLBACK_URL: FALLBACK,
      CLICKTRAIL_TRUSTED_PROXIES: "127.0.0.1",
    });
    try {
      const as = (ip: string, authorization?: string) =>
        send(t.port, "GET", "/admin/campaigns", { headers: { "x-forwarded-for": ip, ...(authorization ? { authorization } : {}) } });
      // requests without credentials guess nothing
      for (let i = 0; i < O7_MAX_FAILURES + 5; i++) assert.equal((await as("203.0.113.9")).status, 403);
      assert.equal((await as("203.0.113.9", basic("admin", "secret"))).status, 200);
      for (let i = 0; i < O7_MAX_FAILURES; i++) assert.equal((await as("203.0.113.7", basic("admin", `guess${i}`))).status, 403);
      const r = await as("203.0.113.7", basic("admin", "secret"));
      assert.equal(r.status, 429, r.body);
      assert.ok(Number(r.headers["retry-after"]) > 0);
      assert.match(r.body, /"status":"error"/);
      // another address still gets in
      assert.equal((await as("203.0.113.8", basic("admin", "secret"))).status, 200);
    } finally {
      await t.close();
    }
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("headers, redirects, SSRF and injection on one app", () => {
  let t: TestApp;
  const DOMAIN = "sec.test";
  let linkId = 0;
  let clickUrl = "";
  const TARGETS = new Set<string>();

  before(async () => {
    t = await startApp({ CLICKTRAIL_DIALECTS: "o7tracker,microticks:/mt", AUTH_USER: "admin", AUTH_PASSWORD: "secret", FALLBACK_URL: FALLBACK });
    const post = async (path: string, body: unknown) => {
      const r = await send(t.port, "POST", path, { headers: { ...bearer(), ...json }, body: JSON.stringify(body) });
      assert.ok(r.status < 300, `${path}: ${r.status} ${r.body}`);
      return r.json;
    };
    await post("/api/v1/domains", { hostname: DOMAIN });
    await post("/api/v1/domains", { hostname: "fb.sec.test", fallback_url: "https://domain-fallback.example/" });
    for (const [slug, tag] of [
      ["abc", "alpha"],
      ["evil", "beta"],
      ["q", "gamma"],
    ]) {
      const l = await post("/api/v1/links", { domain: DOMAIN, target: `https://example.com/${slug}`, slug, tags: [tag] });
      linkId ||= l.id;
      TARGETS.add(`https://example.com/${slug}`);
    }
    await post("/api/v1/links", { domain: DOMAIN, target: "https://example.com/fq", slug: "fq", forward_query: true });
    clickUrl = (await post("/api/v1/tracking/links", { url: "https://example.com/tracked" })).click_url;
  });
  after(() => t?.close());

  test("security headers: nosniff everywhere, the dashboard framed by nobody, no server banner", async () => {
    const check = (what: string, r: Answer) => {
      assert.equal(r.headers["x-content-type-options"], "nosniff", `${what}: ${JSON.stringify(r.headers)}`);
      assert.equal(r.headers["x-powered-by"], undefined, what);
      assert.equal(r.headers.server, undefined, what);
    };
    check("API answer", await send(t.port, "GET", "/api/v1/links", { headers: bearer() }));
    check("API problem", await send(t.port, "GET", "/api/v1/links"));
    check("API 404", await send(t.port, "GET", "/api/v1/nothing"));
    check("raw ingest", await send(t.port, "POST", "/api/v1/events", { headers: json, body: "{}" }));
    check("tracking 404", await send(t.port, "GET", "/t/c/nope"));
    check("link 404 page", await send(t.port, "GET", "/nope", { headers: { host: DOMAIN } }));
    const d = await send(t.port, "GET", "/dashboard/");
    if (d.status === 200) {
      check("dashboard", d);
      const csp = String(d.headers["content-security-policy"]);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.match(csp, /script-src 'self'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      assert.equal(d.headers["x-frame-options"], "DENY");
      assert.ok(d.headers["referrer-policy"], "referrer-policy");
    }
    // the session cookie is not readable by scripts nor sent cross-site
    await t.app.services.auth.createUser("hdr@example.com", "password-123");
    const s = await send(t.port, "POST", "/api/v1/auth/session", {
      headers: json,
      body: JSON.stringify({ email: "hdr@example.com", password: "password-123" }),
    });
    assert.equal(s.status, 200, s.body);
    assert.match(String(s.headers["set-cookie"]), /HttpOnly/);
    assert.match(String(s.headers["set-cookie"]), /SameSite=Strict/);
  });

  test("open redirects: no Location outside the links' targets and the configured fallbacks, whatever the path or Host", async () => {
    const allowed = (loc: string) =>
      TARGETS.has(loc) ||
      loc.startsWith("https://example.com/fq") ||
      loc === "https://example.com/tracked" ||
      loc === FALLBACK ||
      loc === "https://domain-fallback.example/" ||
      // same-origin relative redirects (the dashboard's trailing slash, o7tracker's /track → /track/)
      (/^\/[^/\\]/.test(loc) && !/^\/[/\\]/.test(loc) && !/^\/%(2f|5c)/i.test(loc));
    const paths = [
      "//evil.example",
      "//evil.example/",
      "/\\evil.example",
      "/\\\\evil.example",
      "/%2F%2Fevil.example",
      "/%2f%2fevil.example/",
      "/%5Cevil.example",
      "/%5C%5Cevil.example",
      "/https:%2F%2Fevil.example",
      "/https://evil.example",
      "/abc/..%2F..%2F%2Fevil.example",
      "/abc//evil.example",
      "/abc?url=https://evil.example&next=//evil.example&redirect=https://evil.example",
      "/abc%0d%0aLocation:%20https://evil.example",
      "/abc%00https://evil.example",
      "/@evil.example",
      "/.evil.example",
      "/dashboard//evil.example/",
      "/dashboard/%2F%2Fevil.example",
      "/dashboard/..%2F..%2F%2Fevil.example",
      "/examples//evil.example/..",
      "/examples/%2e%2e//evil.example",
      "/docs//evil.example",
      "/docs/static//evil.example/",
      "/track/1?platform=Android&url=https://evil.example",
      "/track//evil.example?platform=Android",
      "/track/%2F%2Fevil.example?platform=Android",
      "/track",
      "/t/c//evil.example",
      "/t/c/%2F%2Fevil.example",
      "/t/o//evil.example",
      "/mt//evil.example",
      "/fq?x=1",
    ];
    const hosts = [DOMAIN, "fb.sec.test", "evil.example", `${DOMAIN}.evil.example`, `evil.example#${DOMAIN}`, "127.0.0.1", `${DOMAIN}:1`];
    const bad: string[] = [];
    let tried = 0;
    for (const host of hosts)
      for (const path of paths)
        for (const extra of [{}, { "x-forwarded-host": "evil.example" }, { "x-forwarded-proto": "javascript" }] as Record<string, string>[]) {
          const r = await send(t.port, "GET", path, { headers: { host, ...extra } });
          tried++;
          assert.ok(r.status < 500, `${host}${path}: ${r.status} ${r.body}`);
          const loc = r.headers.location;
          if (loc !== undefined && !allowed(String(loc))) bad.push(`${host} ${path} → ${r.status} ${loc}`);
        }
    assert.deepEqual(bad, [], bad.join("\n"));
    assert.ok(tried > 500);
  });

  test("open redirects: a /t/c token whose URL was changed, or that was never signed, redirects nowhere", async () => {
    const token = new URL(clickUrl).pathname.slice(5);
    assert.equal((await send(t.port, "GET", `/t/c/${token}`)).headers.location, "https://example.com/tracked");
    // the URL inside the token changed, the signature kept ("/example.com" → "/evil.exampl" at the same alignment)
    const swapped = token.replace("L2V4YW1wbGUuY29t", "L2V2aWwuZXhhbXBs");
    assert.notEqual(swapped, token, token);
    const forged = [
      swapped,
      Buffer.from(JSON.stringify({ u: "https://evil.example/" })).toString("base64url"),
      Buffer.from(JSON.stringify({ url: "https://evil.example/", tracked_url: "https://evil.example/" })).toString("base64url"),
      // pytracking's unsigned form: base64 JSON, accepted only on hosts listed in CLICKTRAIL_TRACKING_UNSIGNED_HOSTS
      Buffer.from(JSON.stringify({ url: "https://evil.example/", metadata: {} })).toString("base64"),
      "gAAAAA" + Buffer.from("https://evil.example/").toString("base64url"),
      token.slice(0, -4) + "AAAA",
      token + "A",
    ];
    for (const f of forged) {
      const r = await send(t.port, "GET", `/t/c/${encodeURIComponent(f)}`);
      assert.equal(r.status, 404, `${f}: ${r.status} ${r.headers.location}`);
      assert.equal(r.headers.location, undefined);
    }
  });

  test("webhook SSRF: IPv6 loopback, IPv4 inside IPv6, decimal / octal / hex / short IPv4, names of loopback: 400 naming url", async () => {
    const urls = [
      "http://[::1]:8080/",
      "http://[0:0:0:0:0:0:0:1]/",
      "http://[::ffff:127.0.0.1]/",
      "http://[::ffff:7f00:1]/",
      "http://[64:ff9b::7f00:1]/",
      "http://[::127.0.0.1]/",
      "http://[::ffff:169.254.169.254]/",
      "http://[fd00:ec2::254]/",
      "http://[::]/",
      "http://2130706433/",
      "http://0x7f000001/",
      "http://0x7f.0.0.1/",
      "http://017700000001/",
      "http://0177.0.0.1/",
      "http://127.1/",
      "http://127.0.1/",
      "http://0/",
      "http://0.0.0.0:80/",
      "http://3232235777/",
      "http://2852039166/",
      "http://localhost/",
      "http://LOCALHOST./",
      "http://localhost:6379/",
      "http://127.0.0.1.:5432/",
      "http://[fe80::1%25lo]/",
    ];
    const bad: string[] = [];
    for (const url of urls) {
      const r = await send(t.port, "POST", "/api/v1/webhooks", { headers: { ...bearer(), ...json }, body: JSON.stringify({ url }) });
      if (r.status !== 400 || r.json?.field !== "url") bad.push(`${url}: ${r.status} ${r.body.slice(0, 200)}`);
    }
    assert.deepEqual(bad, [], bad.join("\n"));
  });

  test("webhook SSRF (the guard): names resolving to private addresses, mixed answers, and mapped forms", async () => {
    const none = parseAllowlist("");
    const fake = (addrs: string[]) => async () => addrs.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
    for (const addrs of [
      ["127.0.0.1"],
      ["::1"],
      ["::ffff:127.0.0.1"],
      ["::ffff:a9fe:a9fe"],
      ["93.184.216.34", "::1"],
      ["64:ff9b::a00:1"],
      ["0.0.0.0"],
    ])
      await assert.rejects(vetUrl("http://rebind.example/", none, fake(addrs)), UrlRefused, addrs.join(","));
    // a name that does not resolve is refused too (never sent to whatever it might resolve to later)
    await assert.rejects(
      vetUrl("http://x.example/", none, async () => {
        throw Object.assign(new Error("nx"), { code: "ENOTFOUND" });
      }),
      UrlRefused,
    );
    // the system resolver: localhost is loopback
    await assert.rejects(vetUrl("http://localhost:9/", none), UrlRefused);
    for (const a of [
      "::ffff:7f00:1",
      "::ffff:127.0.0.1",
      "64:ff9b::7f00:1",
      "::127.0.0.1",
      "::7f00:1",
      "::ffff:0:7f00:1",
      "64:ff9b:1::a00:1",
      "fd12::1",
      "ff02::1",
    ])
      assert.ok(blockedReason(a), a);
    assert.equal(blockedReason("2001:4860:4860::8888"), null);
  });

  test("webhook SSRF: redirects are not followed, and a tracking link's webhook_url to loopback is never called", async () => {
    let canaryHits = 0;
    const canary: Server = createServer((_q, s) => {
      canaryHits++;
      s.end("secret");
    });
    await new Promise<void>((r) => canary.listen(0, "127.0.0.1", r));
    const canaryPort = (canary.address() as { port: number }).port;
    const redirector: Server = createServer((_q, s) => {
      s.writeHead(302, { location: `http://127.0.0.1:${canaryPort}/latest/meta-data` });
      s.end();
    });
    await new Promise<void>((r) => redirector.listen(0, "127.0.0.2", r));
    const rport = (redirector.address() as { port: number }).port;
    try {
      const w = await send(t.port, "POST", "/api/v1/webhooks", {
        headers: { ...bearer(), ...json },
        body: JSON.stringify({ url: `http://127.0.0.2:${rport}/hook` }),
      });
      assert.equal(w.status, 201, w.body);
      assert.ok((await send(t.port, "POST", `/api/v1/webhooks/${w.json.id}/test`, { headers: bearer() })).status < 300);
      const tl = await send(t.port, "POST", "/api/v1/tracking/links", {
        headers: { ...bearer(), ...json },
        body: JSON.stringify({ url: "https://example.com/w", webhook_url: `http://127.0.0.1:${canaryPort}/pwn` }),
      });
      if (tl.status < 300) await send(t.port, "GET", new URL(tl.json.click_url).pathname);
      // wait for the first attempt of the test delivery
      let attempts: { status_code: number | null }[] = [];
      for (let i = 0; i < 100 && attempts.length === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const d = await send(t.port, "GET", `/api/v1/webhooks/${w.json.id}/deliveries`, { headers: bearer() });
        attempts = d.json?.deliveries?.[0]?.attempt_log ?? [];
      }
      assert.ok(attempts.length > 0, "the test delivery was attempted");
      assert.equal(attempts[0]!.status_code, 302, "the redirect is the answer, not followed");
      await new Promise((r) => setTimeout(r, 500));
      assert.equal(canaryHits, 0, "nothing reached the loopback canary");
    } finally {
      canary.close();
      redirector.close();
    }
  });

  test("injection: SQL meta characters in every query parameter of every GET route, and in dialect filters", async () => {
    const { routes } = await openApiRoutes(t.base);
    const payloads = [
      ...NASTY_STRINGS.filter((s) => s.length < 200),
      "abc' --",
      "abc'; DELETE FROM links; --",
      "-created; DROP TABLE links",
      "created,(SELECT 1)",
      "id DESC",
      "1) OR (1=1",
      "%' OR '%'='",
      "\\'",
      "' || (SELECT key_hash FROM api_keys LIMIT 1) || '",
      "1::text",
      "$$; DROP TABLE links; $$",
      "E'\\\\x00'",
    ];
    const before = await send(t.port, "GET", "/api/v1/links?limit=100", { headers: bearer() });
    const count = before.json.links.length;
    let tried = 0;
    const bad: string[] = [];
    for (const route of routes.filter((r) => r.method === "GET")) {
      const names: string[] = (route.op.parameters ?? []).filter((p: any) => p.in === "query").map((p: any) => p.name);
      for (const name of names)
        for (const p of payloads) {
          const path = route.path.replace(/\{\w+\}/g, String(linkId)) + `?${name}=${encodeURIComponent(p.replace(/[\uD800-\uDFFF]/g, ""))}`;
          const r = await send(t.port, "GET", path, { headers: bearer() });
          tried++;
          if (r.status >= 500) bad.push(`${path}: ${r.status} ${r.body.slice(0, 200)}`);
          else if (r.status >= 400 && problemError(r)) bad.push(`${path}: ${problemError(r)}`);
        }
    }
    // filters that match nothing must match nothing (a tautology smuggled in would list every link)
    for (const p of ["' OR '1'='1", "alpha' OR '1'='1", "%", "_", "%' OR '%'='", "*"]) {
      for (const f of ["tag", "domain"]) {
        const r = await send(t.port, "GET", `/api/v1/links?${f}=${encodeURIComponent(p)}`, { headers: bearer() });
        assert.ok(r.status === 200 || r.status === 400, r.body);
        if (r.status === 200) assert.equal(r.json.links.length, 0, `${f}=${p} matched ${r.json.links.length} links`);
      }
    }
    const q = await send(t.port, "GET", `/api/v1/links?q=${encodeURIComponent("' OR 1=1 --")}`, { headers: bearer() });
    assert.ok(q.status === 200 || q.status === 400, q.body);
    if (q.status === 200) assert.equal(q.json.links.length, 0, q.body);
    // sort accepts only its enum
    assert.equal(
      (await send(t.port, "GET", `/api/v1/links?sort=${encodeURIComponent("created; DROP TABLE links")}`, { headers: bearer() })).status,
      400,
    );
    // dialects: Microticks sorts and filters, o7tracker's platform filter
    for (const p of payloads.slice(0, 40).map((x) => x.replace(/[\uD800-\uDFFF]/g, ""))) {
      for (const path of [
        `/mt/events?sort=${encodeURIComponent(p)}`,
        `/mt/events?sort.desc=${encodeURIComponent(p)}`,
        `/mt/sessions?ip=${encodeURIComponent(p)}`,
        `/mt/events?consumer=${encodeURIComponent(p)}&date=${encodeURIComponent(p)}`,
        `/admin/campaigns?platforms=${encodeURIComponent(p)}`,
        `/track/${encodeURIComponent(p)}?platform=Android`,
      ]) {
        const r = await send(t.port, "GET", path, { headers: { authorization: basic("admin", "secret") } });
        tried++;
        // o7tracker answers its errors 500 {"msg","status":"error"} by contract
        if (r.status >= 500 && !(r.json?.status === "error" && typeof r.json.msg === "string"))
          bad.push(`${path}: ${r.status} ${r.body.slice(0, 200)}`);
      }
    }
    assert.deepEqual(bad, [], bad.join("\n"));
    // and everything is still there
    const afterwards = await send(t.port, "GET", "/api/v1/links?limit=100", { headers: bearer() });
    assert.equal(afterwards.json.links.length, count);
    console.log(`injection: ${tried} requests`);
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("secrets never logged", () => {
  test("API keys, passwords, session cookies, CSRF and ingest keys, webhook and tracking secrets stay out of a trace-level log", async () => {
    const dir = tmpDir();
    const PASSWORD = "hunter2-very-secret-password";
    const env = { CLICKTRAIL_DATA_DIR: dir, CLICKTRAIL_ADMIN_KEY: ADMIN_KEY };
    const u = await cli(["user", "create", "--email", "log@example.com", "--password", PASSWORD], env);
    assert.equal(u.code, 0, u.stderr);
    const p = await startProcess(dir, {
      CLICKTRAIL_LOG_LEVEL: "trace",
      CLICKTRAIL_DIALECTS: "o7tracker:/o7",
      AUTH_USER: "admin",
      AUTH_PASSWORD: "o7-basic-secret",
    });
    const port = p.port;
    const secrets: string[] = [ADMIN_KEY, PASSWORD, "o7-basic-secret", "wrong-guess-password"];
    try {
      const k = await send(port, "POST", "/api/v1/keys", { headers: { ...bearer(), ...json }, body: JSON.stringify({ scopes: ["admin"] }) });
      assert.equal(k.status, 201, k.body);
      secrets.push(k.json.key);
      await send(port, "GET", "/api/v1/links", { headers: bearer(k.json.key) });
      await send(port, "GET", "/api/v1/links", { headers: bearer("ct_not_a_real_key_but_still_secret") });
      secrets.push("ct_not_a_real_key_but_still_secret");
      const s = await send(port, "POST", "/api/v1/auth/session", {
        headers: json,
        body: JSON.stringify({ email: "log@example.com", password: PASSWORD }),
      });
      assert.equal(s.status, 200, s.body);
      const cookie = String(s.headers["set-cookie"]).split(";")[0]!;
      secrets.push(cookie.split("=")[1]!, s.json.csrf_token);
      await send(port, "POST", "/api/v1/auth/session", {
        headers: json,
        body: JSON.stringify({ email: "log@example.com", password: "wrong-guess-password" }),
      });
      await send(port, "GET", "/api/v1/links", { headers: { cookie } });
      await send(port, "POST", "/api/v1/domains", {
        headers: { cookie, "x-csrf-token": s.json.csrf_token, ...json },
        body: JSON.stringify({ hostname: "log.test" }),
      });
      const a = await send(port, "POST", "/api/v1/apps", { headers: { ...bearer(), ...json }, body: JSON.stringify({ name: "log" }) });
      secrets.push(a.json.key);
      await send(port, "POST", "/api/v1/events", { headers: json, body: JSON.stringify({ key: a.json.key, name: "x" }) });
      await send(port, "POST", "/api/v1/events", { headers: { ...json, "x-clicktrail-key": a.json.key }, body: JSON.stringify({ name: "x" }) });
      await send(port, "POST", "/api/v1/sessions", { headers: json, body: JSON.stringify({ key: a.json.key }) });
      const w = await send(port, "POST", "/api/v1/webhooks", {
        headers: { ...bearer(), ...json },
        body: JSON.stringify({ url: "http://127.0.0.2:9/h" }),
      });
      if (w.status === 201) secrets.push(w.json.secret);
      const tk = await send(port, "POST", "/api/v1/tracking/keys", {
        headers: { ...bearer(), ...json },
        body: JSON.stringify({ kind: "clicktrail", secret: "tracking-secret-0123456789abcdef0123456789" }),
      });
      if (tk.status === 201) secrets.push("tracking-secret-0123456789abcdef0123456789");
      await send(port, "GET", "/o7/admin/campaigns", { headers: { authorization: basic("admin", "o7-basic-secret") } });
      await send(port, "GET", "/o7/admin/campaigns", { headers: { authorization: basic("admin", "wrong-guess-password") } });
      // and a few errors, which log more
      await send(port, "POST", "/api/v1/links", { headers: { ...bearer(), ...json }, body: "{bad json" });
      await send(port, "GET", "/api/v1/links/999999", { headers: bearer() });
      await new Promise((r) => setTimeout(r, 300));
    } finally {
      await stopProcess(p.proc);
      rmSync(dir, { recursive: true, force: true });
    }
    const log = p.output();
    assert.ok(log.split("\n").length > 10, `the log has lines at trace level:\n${log.slice(0, 500)}`);
    const basicOf = (u: string, pw: string) => Buffer.from(`${u}:${pw}`).toString("base64");
    for (const sec of [...secrets, basicOf("admin", "o7-basic-secret"), basicOf("admin", "wrong-guess-password")])
      assert.ok(
        !log.includes(sec),
        `a secret (${sec.slice(0, 6)}…) is in the log:\n${log
          .split("\n")
          .find((l) => l.includes(sec))
          ?.slice(0, 400)}`,
      );
  });
});

describe("secrets in query strings", () => {
  // KNOWN: the one request line per answer (src/app.ts, onResponse) logs req.url whole, so Microticks' ?key= read key
  // lands in the log; the fix is in src/app.ts (log the path with secret-bearing parameters masked)
  test("Microticks' ?key= is not logged", async () => {
    const dir = tmpDir();
    const p = await startProcess(dir, { CLICKTRAIL_LOG_LEVEL: "info", CLICKTRAIL_DIALECTS: "microticks:/mt", MICROTICKS_KEY: "mt-query-secret" });
    try {
      await send(p.port, "GET", "/mt/sessions?key=mt-query-secret");
    } finally {
      await stopProcess(p.proc);
      rmSync(dir, { recursive: true, force: true });
    }
    assert.ok(!p.output().includes("mt-query-secret"), "the read key is in the log");
  });
});
