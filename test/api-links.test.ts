/**
 * API tests of domains, links, bulk creation and the redirect hot path, over real HTTP on loopback against a real
 * SQLite file. Redirects always go through hit() (the redirect is dispatched before Fastify).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ADMIN_KEY, hit, req, startApp, type Res, type TestApp } from "./helpers.js";

const GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const UNAMBIGUOUS_SLUG = /^[23456789abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ]{7}$/;

let t: TestApp;
let base: string;

before(async () => {
  t = await startApp();
  base = t.base;
});
after(async () => {
  await t?.close();
});

function assertProblem(r: Res, status: number, mention?: string | RegExp) {
  assert.equal(r.status, status, `expected ${status}, got ${r.status}: ${r.body}`);
  assert.match(String(r.headers["content-type"]), /^application\/problem\+json/, r.body);
  assert.equal(r.json?.status, status, r.body);
  assert.equal(typeof r.json.detail, "string", r.body);
  assert.ok(String(r.json.type).startsWith("https://clicktrail.dev/problems/"), r.body);
  if (mention !== undefined) {
    const hay = `${r.json.detail} ${r.json.field ?? ""}`;
    const ok = typeof mention === "string" ? hay.includes(mention) : mention.test(hay);
    assert.ok(ok, `problem should mention ${mention}: ${r.body}`);
  }
}

async function mkDomain(hostname: string, extra: Record<string, unknown> = {}, key?: string) {
  const r = await req(base, "POST", "/api/v1/domains", { body: { hostname, ...extra }, key });
  assert.equal(r.status, 201, r.body);
  return r.json as { id: number; hostname: string; fallback_url: string | null };
}

async function mkLink(body: Record<string, unknown>, key?: string) {
  const r = await req(base, "POST", "/api/v1/links", { body, key });
  assert.equal(r.status, 201, r.body);
  return r.json as { id: number; slug: string; domain: string; target: string; [k: string]: any };
}

async function otherProject(name: string) {
  const p = await t.app.services.auth.createProject(name);
  const { token } = await t.app.services.auth.createKey(p.id, "b-admin", ["admin"]);
  return token;
}

// ---------------------------------------------------------------------------------------------------------------------
describe("domains", () => {
  test("hostname is lower-cased, port and trailing dot dropped; duplicates (in any spelling) are 409", async () => {
    const d = await mkDomain("Go.Case-Test.EXAMPLE:8443");
    assert.equal(d.hostname, "go.case-test.example");
    assert.equal(d.fallback_url, null);
    for (const again of ["go.case-test.example", "GO.CASE-TEST.EXAMPLE", "go.case-test.example:80", "go.case-test.example."]) {
      const r = await req(base, "POST", "/api/v1/domains", { body: { hostname: again } });
      assertProblem(r, 409, "hostname");
    }
  });

  test("an IDN is stored as punycode, and the links API and the redirect accept either spelling", async () => {
    const d = await mkDomain("Bücher.Example");
    assert.equal(d.hostname, "xn--bcher-kva.example");
    assertProblem(await req(base, "POST", "/api/v1/domains", { body: { hostname: "xn--bcher-kva.example" } }), 409);
    const l = await mkLink({ domain: "bücher.example", slug: "idn", target: "https://example.com/idn" });
    assert.equal(l.domain, "xn--bcher-kva.example");
    assert.equal(l.short_url, "https://xn--bcher-kva.example/idn");
    const r = await hit(base, "xn--bcher-kva.example", "/idn");
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, "https://example.com/idn");
  });

  test("invalid hostnames and fallback URLs are 400 naming the field", async () => {
    for (const hostname of ["https://go.example.com", "bad host.example", "a..b", "-lead.example", "x".repeat(64) + ".example"]) {
      assertProblem(await req(base, "POST", "/api/v1/domains", { body: { hostname } }), 400, "hostname");
    }
    assertProblem(await req(base, "POST", "/api/v1/domains", { body: { hostname: "" } }), 400, "hostname");
    assertProblem(await req(base, "POST", "/api/v1/domains", { body: {} }), 400, "hostname");
    for (const fallback_url of ["javascript:alert(1)", "data:text/html,hi", "/home", "ftp://example.com/x", "example.com", 42]) {
      const r = await req(base, "POST", "/api/v1/domains", { body: { hostname: "fb-bad.example", fallback_url } });
      assertProblem(r, 400, "fallback_url");
    }
    const ok = await mkDomain("fb-ok.example", { fallback_url: "https://example.com/home" });
    assert.equal(ok.fallback_url, "https://example.com/home");
  });

  test("get, list, patch, delete; 404 for unknown ids; delete refused (409) while links exist", async () => {
    const d = await mkDomain("crud.example");
    let r = await req(base, "GET", `/api/v1/domains/${d.id}`);
    assert.equal(r.status, 200);
    assert.equal(r.json.hostname, "crud.example");
    assert.ok(!Number.isNaN(Date.parse(r.json.created_at)));
    r = await req(base, "GET", "/api/v1/domains");
    assert.equal(r.status, 200);
    assert.ok(r.json.domains.some((x: { id: number }) => x.id === d.id));

    r = await req(base, "PATCH", `/api/v1/domains/${d.id}`, { body: { fallback_url: "https://example.com/fb" } });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.fallback_url, "https://example.com/fb");
    r = await req(base, "PATCH", `/api/v1/domains/${d.id}`, { body: { fallback_url: "javascript:void(0)" } });
    assertProblem(r, 400, "fallback_url");
    r = await req(base, "PATCH", `/api/v1/domains/${d.id}`, { body: { hostname: "bücher.example" } });
    assertProblem(r, 409, "hostname");
    r = await req(base, "PATCH", `/api/v1/domains/${d.id}`, { body: {} });
    assertProblem(r, 400);
    r = await req(base, "PATCH", `/api/v1/domains/${d.id}`, { body: { fallback_url: null } });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.fallback_url, null);

    const l = await mkLink({ domain: "crud.example", slug: "x", target: "https://example.com/" });
    r = await req(base, "DELETE", `/api/v1/domains/${d.id}`);
    assertProblem(r, 409);
    assert.equal((await req(base, "GET", `/api/v1/domains/${d.id}`)).status, 200, "still there after the refused delete");
    assert.equal((await req(base, "DELETE", `/api/v1/links/${l.id}`)).status, 204);
    r = await req(base, "DELETE", `/api/v1/domains/${d.id}`);
    assert.equal(r.status, 204, r.body);
    assertProblem(await req(base, "GET", `/api/v1/domains/${d.id}`), 404);
    assertProblem(await req(base, "DELETE", `/api/v1/domains/${d.id}`), 404);
    assertProblem(await req(base, "PATCH", `/api/v1/domains/${d.id}`, { body: { fallback_url: null } }), 404);
    assertProblem(await req(base, "GET", "/api/v1/domains/999999"), 404);
    // its hostname is free again, and no longer a link domain: the API answers there
    r = await hit(base, "crud.example", "/x");
    assertProblem(r, 404);
  });

  test("renaming a domain moves its links at once (old host goes to the API)", async () => {
    const d = await mkDomain("old-name.example");
    await mkLink({ domain: "old-name.example", slug: "mv", target: "https://example.com/mv" });
    assert.equal((await hit(base, "old-name.example", "/mv")).status, 302);
    const r = await req(base, "PATCH", `/api/v1/domains/${d.id}`, { body: { hostname: "New-Name.example" } });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.hostname, "new-name.example");
    const moved = await hit(base, "new-name.example", "/mv");
    assert.equal(moved.status, 302);
    assert.equal(moved.headers.location, "https://example.com/mv");
    assertProblem(await hit(base, "old-name.example", "/mv"), 404);
  });

  test("another project's domains are invisible, and its hostnames cannot be taken", async () => {
    const a = await mkDomain("owned-by-a.example");
    const keyB = await otherProject("domains-b");
    let r = await req(base, "GET", "/api/v1/domains", { key: keyB });
    assert.equal(r.status, 200);
    assert.ok(!r.json.domains.some((x: { id: number }) => x.id === a.id));
    assertProblem(await req(base, "GET", `/api/v1/domains/${a.id}`, { key: keyB }), 404);
    assertProblem(await req(base, "PATCH", `/api/v1/domains/${a.id}`, { key: keyB, body: { fallback_url: "https://evil.example/" } }), 404);
    assertProblem(await req(base, "DELETE", `/api/v1/domains/${a.id}`, { key: keyB }), 404);
    assertProblem(await req(base, "GET", `/api/v1/domains/${a.id}/stats`, { key: keyB }), 404);
    // a hostname belongs to one project
    assertProblem(await req(base, "POST", "/api/v1/domains", { key: keyB, body: { hostname: "owned-by-a.example" } }), 409);
    // B cannot put links on A's domain
    r = await req(base, "POST", "/api/v1/links", { key: keyB, body: { domain: "owned-by-a.example", target: "https://evil.example/" } });
    assertProblem(r, 400, "domain");
    r = await req(base, "GET", `/api/v1/domains/${a.id}`);
    assert.equal(r.status, 200);
    assert.equal(r.json.fallback_url, null, "B's PATCH changed nothing");
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("links", () => {
  before(async () => {
    await mkDomain("go.links.example");
    await mkDomain("second.links.example");
  });

  test("custom slugs: valid ones work, bad characters / too long / reserved are 400 naming slug", async () => {
    const long = "a".repeat(64);
    const l = await mkLink({ domain: "go.links.example", slug: long, target: "https://example.com/long" });
    assert.equal(l.slug, long);
    await mkLink({ domain: "go.links.example", slug: "Promo_2024.v-1", target: "https://example.com/p" });
    for (const slug of ["a b", "héllo", "a/b", "-lead", ".dot", "_under", "a?b", "a#b", "a%20b", "a".repeat(65), ""]) {
      const r = await req(base, "POST", "/api/v1/links", { body: { domain: "go.links.example", slug, target: "https://example.com/" } });
      assertProblem(r, 400, "slug");
    }
    for (const slug of ["api", "docs", "API", "Docs", "healthz", "metrics", "openapi.json", "robots.txt", "favicon.ico"]) {
      const r = await req(base, "POST", "/api/v1/links", { body: { domain: "go.links.example", slug, target: "https://example.com/" } });
      assertProblem(r, 400, "slug");
      assert.match(r.json.detail, /reserved/, r.body);
    }
  });

  test("generated slugs are 7 characters of the unambiguous alphabet and all distinct", async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 25; i++) {
      const l = await mkLink({ domain: "go.links.example", target: `https://example.com/gen/${i}` });
      assert.match(l.slug, UNAMBIGUOUS_SLUG);
      seen.add(l.slug);
      assert.equal(l.redirect_status, 302, "302 by default");
      assert.deepEqual(l.tags, []);
      assert.deepEqual(l.utm, {});
      assert.equal(l.forward_query, false);
      assert.equal(l.clicks, 0);
    }
    assert.equal(seen.size, 25);
  });

  test("duplicate (domain, slug) is 409; the same slug on another domain is fine", async () => {
    await mkLink({ domain: "go.links.example", slug: "dup", target: "https://example.com/1" });
    const r = await req(base, "POST", "/api/v1/links", { body: { domain: "go.links.example", slug: "dup", target: "https://example.com/2" } });
    assertProblem(r, 409, "slug");
    const other = await mkLink({ domain: "SECOND.links.example", slug: "dup", target: "https://example.com/3" });
    assert.equal(other.domain, "second.links.example");
    assert.equal((await hit(base, "go.links.example", "/dup")).headers.location, "https://example.com/1");
    assert.equal((await hit(base, "second.links.example", "/dup")).headers.location, "https://example.com/3");
  });

  test("the target must be an absolute http(s) URL", async () => {
    for (const target of [
      "javascript:alert(1)",
      "JavaScript:alert(1)",
      "data:text/html;base64,PHNjcmlwdD4=",
      "/relative/path",
      "relative",
      "ftp://example.com/file",
      "file:///etc/passwd",
      "http://",
      "//example.com/x",
      "mailto:a@example.com",
    ]) {
      const r = await req(base, "POST", "/api/v1/links", { body: { domain: "go.links.example", target } });
      assertProblem(r, 400, "target");
    }
    assertProblem(await req(base, "POST", "/api/v1/links", { body: { domain: "go.links.example" } }), 400, "target");
    assertProblem(await req(base, "POST", "/api/v1/links", { body: { target: "https://example.com/" } }), 400, "domain");
    assertProblem(await req(base, "POST", "/api/v1/links", { body: { domain: "nope.example", target: "https://example.com/" } }), 400, "domain");
    const ok = await mkLink({ domain: "go.links.example", target: "http://example.com:8080/a?b=c#d" });
    assert.equal(ok.target, "http://example.com:8080/a?b=c#d");
  });

  test("redirect_status 301/302/307/308 is what the redirect answers; Cache-Control private for 302/307", async () => {
    // (one target for all four, one after the other and again: the headers kept per target differ by status)
    for (const round of [1, 2])
      for (const status of [301, 302, 307, 308]) {
        if (round === 1) {
          const l = await mkLink({ domain: "go.links.example", slug: `rs${status}`, target: "https://example.com/same", redirect_status: status });
          assert.equal(l.redirect_status, status);
        }
        for (const method of ["GET", "HEAD"]) {
          const r = await hit(base, "go.links.example", `/rs${status}`, {}, method);
          assert.equal(r.status, status, `${method} rs${status}`);
          assert.equal(r.headers.location, "https://example.com/same");
          assert.equal(r.headers["cache-control"], status === 302 || status === 307 ? "private, max-age=0" : undefined, `${method} rs${status}`);
        }
      }
    for (const redirect_status of [303, 200, 300, "302"]) {
      const r = await req(base, "POST", "/api/v1/links", { body: { domain: "go.links.example", target: "https://example.com/", redirect_status } });
      assertProblem(r, 400, "redirect_status");
    }
  });

  test("expires_at: future redirects, past answers 410, or the domain fallback with 302", async () => {
    await mkLink({
      domain: "go.links.example",
      slug: "future",
      target: "https://example.com/f",
      expires_at: new Date(Date.now() + 3_600_000).toISOString(),
    });
    const past = await mkLink({ domain: "go.links.example", slug: "past", target: "https://example.com/p", expires_at: Date.now() - 60_000 });
    assert.ok(Date.parse(past.expires_at) < Date.now());
    assert.equal((await hit(base, "go.links.example", "/future")).status, 302);
    const gone = await hit(base, "go.links.example", "/past");
    assert.equal(gone.status, 410);
    assert.equal(gone.headers.location, undefined);
    assert.match(String(gone.headers["content-type"]), /text\/html/);
    assert.equal((await hit(base, "go.links.example", "/past", {}, "HEAD")).status, 410);

    await mkDomain("fallback.links.example", { fallback_url: "https://example.com/fallback" });
    await mkLink({ domain: "fallback.links.example", slug: "past", target: "https://example.com/p", expires_at: "2020-01-01T00:00:00Z" });
    const fb = await hit(base, "fallback.links.example", "/past");
    assert.equal(fb.status, 302);
    assert.equal(fb.headers.location, "https://example.com/fallback");

    for (const expires_at of ["tomorrow", "2024-13-45", true, {}]) {
      const r = await req(base, "POST", "/api/v1/links", { body: { domain: "go.links.example", target: "https://example.com/", expires_at } });
      assertProblem(r, 400, "expires_at");
    }
  });

  test("max_clicks: after N non-bot clicks the link answers 410; bot and HEAD clicks do not count", async () => {
    const l = await mkLink({ domain: "go.links.example", slug: "twice", target: "https://example.com/twice", max_clicks: 2 });
    assert.equal(l.max_clicks, 2);
    assert.equal((await hit(base, "go.links.example", "/twice", { "user-agent": GOOGLEBOT })).status, 302);
    assert.equal((await hit(base, "go.links.example", "/twice", {}, "HEAD")).status, 302);
    assert.equal((await hit(base, "go.links.example", "/twice")).status, 302);
    assert.equal((await hit(base, "go.links.example", "/twice")).status, 302);
    assert.equal((await hit(base, "go.links.example", "/twice")).status, 410);
    assert.equal((await hit(base, "go.links.example", "/twice")).status, 410);
    const r = await req(base, "GET", `/api/v1/links/${l.id}`);
    assert.equal(r.json.clicks, 2, "clicks counts the two non-bot redirects only");
    // raising the limit serves the link again, immediately
    const p = await req(base, "PATCH", `/api/v1/links/${l.id}`, { body: { max_clicks: 3 } });
    assert.equal(p.status, 200, p.body);
    assert.equal((await hit(base, "go.links.example", "/twice")).status, 302);
    assert.equal((await hit(base, "go.links.example", "/twice")).status, 410);
    for (const max_clicks of [0, -1, 1.5, "5"]) {
      const bad = await req(base, "POST", "/api/v1/links", { body: { domain: "go.links.example", target: "https://example.com/", max_clicks } });
      assertProblem(bad, 400, "max_clicks");
    }
  });

  test("max_clicks holds under concurrent clicks", async () => {
    await mkLink({ domain: "go.links.example", slug: "five", target: "https://example.com/five", max_clicks: 5 });
    const results = await Promise.all(Array.from({ length: 20 }, () => hit(base, "go.links.example", "/five")));
    const statuses = results.map((r) => r.status);
    assert.equal(statuses.filter((s) => s === 302).length, 5, JSON.stringify(statuses));
    assert.equal(statuses.filter((s) => s === 410).length, 15);
  });

  test("tags are trimmed and de-duplicated; title and notes round-trip", async () => {
    const l = await mkLink({
      domain: "go.links.example",
      target: "https://example.com/t",
      tags: ["spring", " spring ", "mail"],
      title: "Spring sale",
      notes: "for the newsletter",
    });
    assert.deepEqual([...l.tags].sort(), ["mail", "spring"]);
    assert.equal(l.title, "Spring sale");
    assert.equal(l.notes, "for the newsletter");
    const r = await req(base, "GET", `/api/v1/links/${l.id}`);
    assert.equal(r.status, 200);
    assert.deepEqual([...r.json.tags].sort(), ["mail", "spring"]);
    assert.equal(r.json.title, "Spring sale");
    for (const tags of ["x", [1], [""], ["a".repeat(65)], Array.from({ length: 33 }, (_, i) => `t${i}`)]) {
      const bad = await req(base, "POST", "/api/v1/links", { body: { domain: "go.links.example", target: "https://example.com/", tags } });
      assertProblem(bad, 400, "tags");
    }
    assertProblem(
      await req(base, "POST", "/api/v1/links", { body: { domain: "go.links.example", target: "https://example.com/", title: "x".repeat(513) } }),
      400,
      "title",
    );
    assertProblem(
      await req(base, "POST", "/api/v1/links", { body: { domain: "go.links.example", target: "https://example.com/", notes: 5 } }),
      400,
      "notes",
    );
  });

  test("utm parameters are appended to the Location; the target's own parameters win", async () => {
    const l = await mkLink({
      domain: "go.links.example",
      slug: "utm",
      target: "https://example.com/landing?x=1&utm_source=keep#top",
      utm: { source: "news", medium: "email", campaign: "spring sale" },
    });
    assert.deepEqual(l.utm, { source: "news", medium: "email", campaign: "spring sale" });
    const r = await hit(base, "go.links.example", "/utm");
    assert.equal(r.status, 302);
    const u = new URL(String(r.headers.location));
    assert.equal(u.origin + u.pathname, "https://example.com/landing");
    assert.equal(u.searchParams.get("x"), "1");
    assert.equal(u.searchParams.get("utm_source"), "keep");
    assert.equal(u.searchParams.getAll("utm_source").length, 1);
    assert.equal(u.searchParams.get("utm_medium"), "email");
    assert.equal(u.searchParams.get("utm_campaign"), "spring sale");
    assert.equal(u.hash, "#top");
    const bad = await req(base, "POST", "/api/v1/links", {
      body: { domain: "go.links.example", target: "https://example.com/", utm: { sauce: "x" } },
    });
    assertProblem(bad, 400, /sauce|utm/);
    assertProblem(
      await req(base, "POST", "/api/v1/links", { body: { domain: "go.links.example", target: "https://example.com/", utm: "source=x" } }),
      400,
      "utm",
    );
  });

  test("forward_query appends the request's query string (before the fragment); off by default", async () => {
    await mkLink({ domain: "go.links.example", slug: "fq", target: "https://example.com/a?x=1#frag", forward_query: true });
    await mkLink({ domain: "go.links.example", slug: "nofq", target: "https://example.com/b" });
    let r = await hit(base, "go.links.example", "/fq?ref=abc&y=2");
    assert.equal(r.headers.location, "https://example.com/a?x=1&ref=abc&y=2#frag");
    r = await hit(base, "go.links.example", "/fq");
    assert.equal(r.headers.location, "https://example.com/a?x=1#frag");
    r = await hit(base, "go.links.example", "/nofq?ref=abc");
    assert.equal(r.headers.location, "https://example.com/b");
    assertProblem(
      await req(base, "POST", "/api/v1/links", { body: { domain: "go.links.example", target: "https://example.com/", forward_query: "yes" } }),
      400,
      "forward_query",
    );
  });

  test("PATCH changes a link and the redirect serves the change immediately", async () => {
    const l = await mkLink({ domain: "go.links.example", slug: "patchme", target: "https://example.com/v1" });
    // warm the cache
    assert.equal((await hit(base, "go.links.example", "/patchme")).headers.location, "https://example.com/v1");
    let r = await req(base, "PATCH", `/api/v1/links/${l.id}`, {
      body: { target: "https://example.com/v2", redirect_status: 301, title: "v2", tags: ["x"] },
    });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.target, "https://example.com/v2");
    assert.equal(r.json.title, "v2");
    assert.ok(Date.parse(r.json.updated_at) >= Date.parse(r.json.created_at));
    let h = await hit(base, "go.links.example", "/patchme");
    assert.equal(h.status, 301);
    assert.equal(h.headers.location, "https://example.com/v2");

    r = await req(base, "PATCH", `/api/v1/links/${l.id}`, { body: { utm: { source: "patched" } } });
    assert.equal(r.status, 200, r.body);
    h = await hit(base, "go.links.example", "/patchme");
    assert.equal(h.headers.location, "https://example.com/v2?utm_source=patched");

    r = await req(base, "PATCH", `/api/v1/links/${l.id}`, { body: { slug: "patched" } });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.slug, "patched");
    assert.equal((await hit(base, "go.links.example", "/patchme")).status, 404);
    assert.equal((await hit(base, "go.links.example", "/patched")).status, 301);

    r = await req(base, "PATCH", `/api/v1/links/${l.id}`, { body: { domain: "second.links.example" } });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.domain, "second.links.example");
    assert.equal((await hit(base, "go.links.example", "/patched")).status, 404);
    assert.equal((await hit(base, "second.links.example", "/patched")).status, 301);

    r = await req(base, "PATCH", `/api/v1/links/${l.id}`, { body: { expires_at: Date.now() - 1000 } });
    assert.equal(r.status, 200, r.body);
    assert.equal((await hit(base, "second.links.example", "/patched")).status, 410);
    r = await req(base, "PATCH", `/api/v1/links/${l.id}`, { body: { expires_at: null, title: null } });
    assert.equal(r.status, 200, r.body);
    assert.equal(r.json.expires_at, null);
    assert.equal(r.json.title, null);
    assert.equal((await hit(base, "second.links.example", "/patched")).status, 301);

    // errors
    await mkLink({ domain: "second.links.example", slug: "taken", target: "https://example.com/" });
    assertProblem(await req(base, "PATCH", `/api/v1/links/${l.id}`, { body: { slug: "taken" } }), 409, "slug");
    assertProblem(await req(base, "PATCH", `/api/v1/links/${l.id}`, { body: { slug: "api" } }), 400, "slug");
    assertProblem(await req(base, "PATCH", `/api/v1/links/${l.id}`, { body: { target: "javascript:alert(1)" } }), 400, "target");
    assertProblem(await req(base, "PATCH", `/api/v1/links/${l.id}`, { body: { redirect_status: 303 } }), 400, "redirect_status");
    assertProblem(await req(base, "PATCH", `/api/v1/links/${l.id}`, { body: { domain: "unknown.example" } }), 400, "domain");
    assertProblem(await req(base, "PATCH", `/api/v1/links/${l.id}`, { body: {} }), 400);
    assertProblem(await req(base, "PATCH", `/api/v1/links/999999`, { body: { title: "x" } }), 404);
    // unchanged by the refused patches
    assert.equal((await hit(base, "second.links.example", "/patched")).headers.location, "https://example.com/v2?utm_source=patched");
  });

  test("DELETE removes a link: 204, then 404 from the API and the redirect", async () => {
    const l = await mkLink({ domain: "go.links.example", slug: "bye", target: "https://example.com/bye" });
    assert.equal((await hit(base, "go.links.example", "/bye")).status, 302);
    const r = await req(base, "DELETE", `/api/v1/links/${l.id}`);
    assert.equal(r.status, 204);
    assert.equal(r.body, "");
    assertProblem(await req(base, "GET", `/api/v1/links/${l.id}`), 404);
    assertProblem(await req(base, "DELETE", `/api/v1/links/${l.id}`), 404);
    assertProblem(await req(base, "GET", `/api/v1/links/${l.id}/stats`), 404);
    const gone = await hit(base, "go.links.example", "/bye");
    assert.equal(gone.status, 404);
    // the slug is free again
    await mkLink({ domain: "go.links.example", slug: "bye", target: "https://example.com/again" });
    assert.equal((await hit(base, "go.links.example", "/bye")).headers.location, "https://example.com/again");
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("listing links", () => {
  const ids: number[] = [];
  let boundary = "";

  before(async () => {
    await mkDomain("list-a.example");
    await mkDomain("list-b.example");
    for (let i = 0; i < 12; i++) {
      const l = await mkLink({
        domain: i % 2 ? "list-b.example" : "list-a.example",
        slug: `list-${i}`,
        target: `https://shop.example.com/item/${i}`,
        tags: i % 3 === 0 ? ["three", "listed"] : ["listed"],
        title: i === 5 ? "The Needle Title" : null,
      });
      ids.push(l.id);
      if (i === 5) {
        // a clear gap in created_at between the first 6 and the last 6
        await new Promise((r) => setTimeout(r, 25));
      }
      if (i === 6) boundary = l.created_at;
    }
    await mkLink({ domain: "list-a.example", slug: "under_score", target: "https://other.example/" });
    await mkLink({ domain: "list-a.example", slug: "underXscore", target: "https://other.example/" });
  });

  const list = async (query: string, key?: string) => {
    const r = await req(base, "GET", `/api/v1/links?${query}`, { key });
    assert.equal(r.status, 200, r.body);
    return r.json as { links: { id: number; slug: string; domain: string; tags: string[] }[]; next_cursor: string | null };
  };

  test("filters: domain, tag, q (slug, target, title; LIKE wildcards are literal), created_after/before", async () => {
    let r = await list("domain=list-b.example&limit=1000");
    assert.deepEqual(r.links.map((l) => l.slug).sort(), ["list-1", "list-11", "list-3", "list-5", "list-7", "list-9"]);
    r = await list("domain=LIST-B.example:443&limit=1000");
    assert.equal(r.links.length, 6, "the domain filter normalises like the domain API");
    r = await list("tag=three&limit=1000");
    assert.deepEqual(r.links.map((l) => l.slug).sort(), ["list-0", "list-3", "list-6", "list-9"]);
    r = await list("tag=three&domain=list-a.example");
    assert.deepEqual(r.links.map((l) => l.slug).sort(), ["list-0", "list-6"]);
    r = await list("q=needle");
    assert.deepEqual(
      r.links.map((l) => l.slug),
      ["list-5"],
      "q searches titles, case-insensitively",
    );
    r = await list("q=item%2F1");
    assert.deepEqual(r.links.map((l) => l.slug).sort(), ["list-1", "list-10", "list-11"], "q searches targets");
    r = await list("q=list-1");
    assert.deepEqual(r.links.map((l) => l.slug).sort(), ["list-1", "list-10", "list-11"], "q searches slugs");
    r = await list("q=_&domain=list-a.example");
    assert.deepEqual(
      r.links.map((l) => l.slug),
      ["under_score"],
      "_ is not a wildcard",
    );
    r = await list("q=%25&domain=list-a.example");
    assert.deepEqual(r.links, [], "% is not a wildcard");
    r = await list("q=zzzz-nothing");
    assert.deepEqual(r.links, []);
    assert.equal(r.next_cursor, null);

    r = await list(`tag=listed&created_after=${encodeURIComponent(boundary)}`);
    assert.deepEqual(r.links.map((l) => l.slug).sort(), ["list-10", "list-11", "list-6", "list-7", "list-8", "list-9"]);
    r = await list(`tag=listed&created_before=${encodeURIComponent(boundary)}`);
    assert.deepEqual(r.links.map((l) => l.slug).sort(), ["list-0", "list-1", "list-2", "list-3", "list-4", "list-5"]);
    r = await list(`tag=listed&created_after=${Date.parse(boundary)}&created_before=${Date.parse(boundary) + 1}`);
    assert.ok(
      r.links.some((l) => l.slug === "list-6"),
      "epoch ms works too",
    );
  });

  test("cursor pagination walks every link once, newest first", async () => {
    const all = await list("tag=listed&limit=1000");
    assert.equal(all.links.length, 12);
    assert.deepEqual(
      all.links.map((l) => l.id),
      [...ids].sort((a, b) => b - a),
      "newest first",
    );
    const seen: number[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page = await list(`tag=listed&limit=5${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      assert.ok(page.links.length <= 5);
      seen.push(...page.links.map((l) => l.id));
      cursor = page.next_cursor;
      pages++;
      assert.ok(pages < 10, "pagination does not terminate");
    } while (cursor);
    assert.equal(pages, 3);
    assert.deepEqual(
      seen,
      all.links.map((l) => l.id),
    );
    assert.equal(new Set(seen).size, seen.length);
    // exact multiple of the page size: the last page has no cursor
    const exact = await list("tag=listed&limit=12");
    assert.equal(exact.links.length, 12);
    assert.equal(exact.next_cursor, null);
    const firstDefault = await list("");
    assert.ok(firstDefault.links.length <= 50);
  });

  test("bad list parameters are 400 naming the parameter", async () => {
    for (const [q, field] of [
      ["limit=0", "limit"],
      ["limit=1001", "limit"],
      ["limit=abc", "limit"],
      ["limit=-1", "limit"],
      ["cursor=not-a-cursor", "cursor"],
      ["created_after=yesterday", "created_after"],
      ["created_before=2024-99-99", "created_before"],
      ["domain=unknown.example", "domain"],
      ["sort=asc", "sort"],
      [`q=${"x".repeat(300)}`, "q"],
    ] as const) {
      assertProblem(await req(base, "GET", `/api/v1/links?${q}`), 400, field);
    }
  });

  test("an invalid domain name given to the links API is reported as the field 'domain' (not 'hostname')", async () => {
    assertProblem(await req(base, "GET", "/api/v1/links?domain=not%20a%20host"), 400, "domain");
    assertProblem(await req(base, "POST", "/api/v1/links", { body: { domain: "not a host", target: "https://example.com/" } }), 400, "domain");
    assertProblem(
      await req(base, "POST", "/api/v1/links", { body: { domain: "https://list-a.example", target: "https://example.com/" } }),
      400,
      "domain",
    );
    assertProblem(await req(base, "PATCH", `/api/v1/links/${ids[0]}`, { body: { domain: "not a host" } }), 400, "domain");
  });

  test("another project's key sees none of these links", async () => {
    const keyB = await otherProject("list-b-project");
    const r = await list("limit=1000", keyB);
    assert.deepEqual(r.links, []);
    assertProblem(await req(base, "GET", `/api/v1/links?domain=list-a.example`, { key: keyB }), 400, "domain");
    assertProblem(await req(base, "GET", `/api/v1/links/${ids[0]}`, { key: keyB }), 404);
    assertProblem(await req(base, "PATCH", `/api/v1/links/${ids[0]}`, { key: keyB, body: { target: "https://evil.example/" } }), 404);
    assertProblem(await req(base, "DELETE", `/api/v1/links/${ids[0]}`, { key: keyB }), 404);
    assertProblem(await req(base, "GET", `/api/v1/links/${ids[0]}/stats`, { key: keyB }), 404);
    const mine = await req(base, "GET", `/api/v1/links/${ids[0]}`);
    assert.equal(mine.json.target, "https://shop.example.com/item/0");
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("bulk create", () => {
  before(async () => {
    await mkDomain("bulk.example");
  });

  test("mixed valid and invalid items: one result per item, in order, with its status", async () => {
    await mkLink({ domain: "bulk.example", slug: "exists", target: "https://example.com/" });
    const items = [
      { domain: "bulk.example", slug: "b-ok-1", target: "https://example.com/1" },
      { domain: "bulk.example", target: "javascript:alert(1)" },
      { domain: "bulk.example", slug: "exists", target: "https://example.com/dup" },
      { target: "https://example.com/no-domain" },
      { domain: "bulk.example", target: 123 },
      { domain: "bulk.example", slug: "api", target: "https://example.com/" },
      { domain: "bulk.example", target: "https://example.com/x", tags: "red" },
      { domain: "unknown.example", target: "https://example.com/" },
      { domain: "bulk.example", slug: "b-ok-2", target: "https://example.com/2", redirect_status: 301, tags: ["bulk"] },
      { domain: "bulk.example", slug: "b-ok-1", target: "https://example.com/again" },
      { domain: "bulk.example", target: "https://example.com/gen" },
    ];
    const r = await req(base, "POST", "/api/v1/links/bulk", { body: { links: items } });
    assert.equal(r.status, 200, r.body);
    const expected = [201, 400, 409, 400, 400, 400, 400, 400, 201, 409, 201];
    assert.deepEqual(
      r.json.results.map((x: { status: number }) => x.status),
      expected,
      r.body,
    );
    assert.deepEqual(
      r.json.results.map((x: { index: number }) => x.index),
      expected.map((_, i) => i),
    );
    assert.equal(r.json.created, 3);
    assert.equal(r.json.failed, 8);
    const byIndex = r.json.results;
    assert.equal(byIndex[0].link.slug, "b-ok-1");
    assert.match(byIndex[10].link.slug, UNAMBIGUOUS_SLUG);
    const mentions: [number, string][] = [
      [1, "target"],
      [2, "slug"],
      [3, "domain"],
      [4, "target"],
      [5, "slug"],
      [6, "tags"],
      [7, "domain"],
      [9, "slug"],
    ];
    for (const [i, word] of mentions) {
      const e = byIndex[i].error;
      assert.ok(e, `item ${i} has an error`);
      assert.equal(e.status, expected[i]);
      assert.ok(`${e.detail} ${e.field ?? ""}`.includes(word), `item ${i} error names ${word}: ${JSON.stringify(e)}`);
      assert.ok(String(e.detail).includes(`links[${i}]`), `item ${i} error names its index: ${e.detail}`);
    }
    assert.equal((await hit(base, "bulk.example", "/b-ok-2")).status, 301);
    assert.equal((await hit(base, "bulk.example", "/b-ok-1")).headers.location, "https://example.com/1");
  });

  test("items naming one slug: the first in the request gets it, however many are created at once", async () => {
    // (items are created a few at a time: two items with one slug side by side would race for it without the order kept)
    for (let round = 0; round < 10; round++) {
      const slug = `same-${round}`;
      const items = [
        { domain: "bulk.example", slug, target: `https://example.com/${round}/first` },
        { domain: "bulk.example", slug, target: `https://example.com/${round}/second` },
        { domain: "bulk.example", target: `https://example.com/${round}/generated` },
        { domain: "bulk.example", slug: `${slug}-other`, target: `https://example.com/${round}/other` },
        { domain: "bulk.example", slug, target: `https://example.com/${round}/third` },
      ];
      const r = await req(base, "POST", "/api/v1/links/bulk", { body: { links: items } });
      assert.equal(r.status, 200, r.body);
      assert.deepEqual(
        r.json.results.map((x: { index: number; status: number }) => [x.index, x.status]),
        [
          [0, 201],
          [1, 409],
          [2, 201],
          [3, 201],
          [4, 409],
        ],
        r.body,
      );
      assert.equal(r.json.results[0].link.target, `https://example.com/${round}/first`);
      assert.equal((await hit(base, "bulk.example", `/${slug}`)).headers.location, `https://example.com/${round}/first`);
    }
  });

  test("a bulk item with an unknown field is 400 and its error names that field", async () => {
    const r = await req(base, "POST", "/api/v1/links/bulk", {
      body: { links: [{ domain: "bulk.example", target: "https://example.com/x", colour: "red" }] },
    });
    assert.equal(r.status, 200, r.body);
    const e = r.json.results[0].error;
    assert.equal(r.json.results[0].status, 400);
    assert.ok(`${e.detail} ${e.field ?? ""}`.includes("colour"), `the error names the unknown field: ${JSON.stringify(e)}`);
  });

  test("1000 items are accepted; 1001 and an empty list are 400", async () => {
    const links = Array.from({ length: 1000 }, (_, i) => ({
      domain: "bulk.example",
      slug: `k${i}`,
      target: `https://example.com/k/${i}`,
      tags: ["thousand"],
    }));
    const r = await req(base, "POST", "/api/v1/links/bulk", { body: { links } });
    assert.equal(r.status, 200, r.body.slice(0, 500));
    assert.equal(r.json.created, 1000);
    assert.equal(r.json.failed, 0);
    assert.equal(r.json.results.length, 1000);
    assert.equal((await hit(base, "bulk.example", "/k999")).headers.location, "https://example.com/k/999");
    const listed = await req(base, "GET", "/api/v1/links?tag=thousand&limit=1000");
    assert.equal(listed.json.links.length, 1000);

    const tooMany = Array.from({ length: 1001 }, (_, i) => ({ domain: "bulk.example", slug: `m${i}`, target: "https://example.com/" }));
    assertProblem(await req(base, "POST", "/api/v1/links/bulk", { body: { links: tooMany } }), 400, "links");
    assert.equal((await hit(base, "bulk.example", "/m0")).status, 404, "nothing of a refused bulk is created");
    assertProblem(await req(base, "POST", "/api/v1/links/bulk", { body: { links: [] } }), 400, "links");
    assertProblem(await req(base, "POST", "/api/v1/links/bulk", { body: {} }), 400, "links");
    assertProblem(await req(base, "POST", "/api/v1/links/bulk", { body: { links: "x" } }), 400, "links");
    assertProblem(await req(base, "POST", "/api/v1/links/bulk", { body: { links: [1, 2] } }), 400, "links");
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("redirect hot path", () => {
  before(async () => {
    await mkDomain("r.example");
    await mkDomain("rfb.example", { fallback_url: "https://example.com/home" });
    await mkLink({ domain: "r.example", slug: "go", target: "https://example.com/target" });
    await mkLink({ domain: "rfb.example", slug: "go", target: "https://example.com/target2" });
  });

  test("GET and HEAD on /{slug} and /{slug}/{channel} redirect with Location and Cache-Control", async () => {
    for (const path of ["/go", "/go/", "/go/email", "/go/email/", "/go?x=1"]) {
      for (const method of ["GET", "HEAD"]) {
        const r = await hit(base, "r.example", path, {}, method);
        assert.equal(r.status, 302, `${method} ${path}`);
        assert.equal(r.headers.location, "https://example.com/target", `${method} ${path}`);
        assert.equal(r.headers["cache-control"], "private, max-age=0");
        assert.equal(r.body, "");
      }
    }
  });

  test("Host matching ignores case and port (and a trailing dot)", async () => {
    for (const host of ["R.EXAMPLE", "r.example:8080", "R.Example:443", "r.example."]) {
      const r = await hit(base, host, "/go");
      assert.equal(r.status, 302, host);
      assert.equal(r.headers.location, "https://example.com/target");
    }
  });

  test("unknown slug: 404 page, or the domain fallback with 302; root likewise; deeper paths are 404", async () => {
    let r = await hit(base, "r.example", "/no-such-slug");
    assert.equal(r.status, 404);
    assert.match(String(r.headers["content-type"]), /text\/html/);
    assert.equal(r.headers.location, undefined);
    r = await hit(base, "r.example", "/no-such-slug", {}, "HEAD");
    assert.equal(r.status, 404);
    r = await hit(base, "r.example", "/");
    assert.equal(r.status, 404);
    r = await hit(base, "r.example", "/go/a/b");
    assert.equal(r.status, 404, "three segments are not a link");
    r = await hit(base, "r.example", "/%E0%A4%A");
    assert.equal(r.status, 404, "a malformed escape is a plain 404");
    r = await hit(base, "rfb.example", "/no-such-slug");
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, "https://example.com/home");
    assert.equal(r.headers["cache-control"], "private, max-age=0");
    r = await hit(base, "rfb.example", "/");
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, "https://example.com/home");
    // slugs are looked up exactly
    r = await hit(base, "r.example", "/GO");
    assert.equal(r.status, 404);
  });

  test("robots.txt answers on link domains; other methods are 405 problem+json", async () => {
    let r = await hit(base, "r.example", "/robots.txt");
    assert.equal(r.status, 200);
    assert.match(r.body, /User-agent/);
    r = await req(base, "POST", "/go", { headers: { host: "r.example" }, key: null, body: { a: 1 } });
    assertProblem(r, 405);
    assert.match(String(r.headers.allow), /GET/);
    r = await req(base, "DELETE", "/go", { headers: { host: "r.example" }, key: null });
    assertProblem(r, 405);
    assert.equal((await hit(base, "r.example", "/go")).status, 302, "the link is untouched");
  });

  test("an unknown Host goes to the API: a slug there is a 404 problem", async () => {
    for (const host of ["unknown.example", "127.0.0.1", "localhost:1234"]) {
      const r = await hit(base, host, "/go");
      assertProblem(r, 404, "/go");
    }
    const r = await hit(base, "r.example", "/healthz");
    assert.equal(r.status, 404, "on a link domain, /healthz is an (unknown) slug, not the API");
  });

  test("the visitor cookie ct_vid is set once (HttpOnly, SameSite=Lax) and reused; bots get none", async () => {
    const first = await hit(base, "r.example", "/go");
    const setCookie = first.headers["set-cookie"];
    assert.ok(Array.isArray(setCookie) && setCookie.length === 1, `one Set-Cookie: ${JSON.stringify(setCookie)}`);
    const m = /^ct_vid=([A-Za-z0-9_-]{8,64});/.exec(setCookie[0]!);
    assert.ok(m, setCookie[0]);
    assert.match(setCookie[0]!, /HttpOnly/i);
    assert.match(setCookie[0]!, /SameSite=Lax/i);
    assert.match(setCookie[0]!, /Path=\//);
    assert.match(setCookie[0]!, /Max-Age=\d+/);
    const second = await hit(base, "r.example", "/go", { cookie: `other=1; ct_vid=${m[1]}` });
    assert.equal(second.status, 302);
    assert.equal(second.headers["set-cookie"], undefined, "a known visitor gets no new cookie");
    const bot = await hit(base, "r.example", "/go", { "user-agent": GOOGLEBOT });
    assert.equal(bot.status, 302);
    assert.equal(bot.headers["set-cookie"], undefined);
    const head = await hit(base, "r.example", "/go", {}, "HEAD");
    assert.equal(head.headers["set-cookie"], undefined);
    const junk = await hit(base, "r.example", "/go", { cookie: "ct_vid=<script>" });
    assert.ok(junk.headers["set-cookie"], "an invalid cookie value is replaced");
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("auth and keys", () => {
  let linkId = 0;
  before(async () => {
    await mkDomain("auth.example");
    linkId = (await mkLink({ domain: "auth.example", slug: "a", target: "https://example.com/a" })).id;
  });

  test("no key is 401 problem+json with WWW-Authenticate; malformed and unknown keys too", async () => {
    let r = await req(base, "GET", "/api/v1/links", { key: null });
    assertProblem(r, 401);
    assert.match(String(r.headers["www-authenticate"]), /^Bearer/);
    for (const authorization of ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Bearer a b", ADMIN_KEY, "Token " + ADMIN_KEY]) {
      r = await req(base, "GET", "/api/v1/links", { headers: { authorization } });
      assertProblem(r, 401);
      assert.match(String(r.headers["www-authenticate"]), /^Bearer/, authorization);
    }
    r = await req(base, "GET", "/api/v1/links", { key: "ct_this-key-does-not-exist-anywhere" });
    assertProblem(r, 401);
    assert.match(String(r.headers["www-authenticate"]), /invalid_token/);
    r = await req(base, "GET", "/api/v1/links", { headers: { authorization: `bearer ${ADMIN_KEY}` } });
    assert.equal(r.status, 200, "the scheme is case-insensitive");
    for (const [m, p] of [
      ["GET", "/api/v1/domains"],
      ["GET", "/api/v1/stats"],
      ["GET", "/api/v1/clicks/export"],
      ["GET", "/api/v1/keys"],
      ["DELETE", `/api/v1/links/${linkId}`],
    ] as const) {
      assertProblem(await req(base, m, p, { key: null }), 401);
    }
    assertProblem(await req(base, "POST", "/api/v1/links", { key: null, body: { domain: "auth.example", target: "https://example.com/" } }), 401);
    assert.equal((await req(base, "GET", `/api/v1/links/${linkId}`)).status, 200);
  });

  test("authentication comes before validation: without a valid key, a bad body or query is still 401", async () => {
    // An anonymous client must not get validation answers (they describe the API's schema and cost work).
    const cases: [string, string, { body?: unknown; raw?: string; headers?: Record<string, string> }][] = [
      ["POST", "/api/v1/links", {}],
      ["POST", "/api/v1/links", { body: { target: 123 } }],
      ["POST", "/api/v1/links", { raw: "{not json", headers: { "content-type": "application/json" } }],
      ["POST", "/api/v1/domains", { body: { hostname: 5 } }],
      ["POST", "/api/v1/links/bulk", { body: { links: [] } }],
      ["PATCH", `/api/v1/links/${linkId}`, { body: {} }],
      ["GET", "/api/v1/links?limit=abc", {}],
      ["GET", "/api/v1/links/abc", {}],
      ["GET", "/api/v1/stats?interval=month", {}],
      ["POST", "/api/v1/keys", { body: { scopes: [] } }],
    ];
    for (const [m, p, opts] of cases) {
      const r = await req(base, m, p, { ...opts, key: null });
      assertProblem(r, 401);
      const r2 = await req(base, m, p, { ...opts, key: "ct_unknown-key-0123456789" });
      assertProblem(r2, 401);
    }
  });

  test("scopes: links:read cannot write or read stats; stats:read reads stats only; admin manages keys", async () => {
    let r = await req(base, "POST", "/api/v1/keys", { body: { name: "reader", scopes: ["links:read"] } });
    assert.equal(r.status, 201, r.body);
    assert.match(r.json.key, /^ct_/);
    assert.deepEqual(r.json.scopes, ["links:read"]);
    assert.equal(r.json.revoked_at, null);
    const reader = r.json.key as string;
    r = await req(base, "POST", "/api/v1/keys", { body: { scopes: ["stats:read"] } });
    assert.equal(r.status, 201, r.body);
    const statsKey = r.json.key as string;
    r = await req(base, "POST", "/api/v1/keys", { body: { scopes: ["links:read", "links:write"] } });
    const writer = r.json.key as string;

    assert.equal((await req(base, "GET", "/api/v1/links", { key: reader })).status, 200);
    assert.equal((await req(base, "GET", `/api/v1/links/${linkId}`, { key: reader })).status, 200);
    assert.equal((await req(base, "GET", "/api/v1/domains", { key: reader })).status, 200);
    r = await req(base, "POST", "/api/v1/links", { key: reader, body: { domain: "auth.example", target: "https://example.com/" } });
    assertProblem(r, 403, "links:write");
    assertProblem(await req(base, "PATCH", `/api/v1/links/${linkId}`, { key: reader, body: { title: "x" } }), 403);
    assertProblem(await req(base, "DELETE", `/api/v1/links/${linkId}`, { key: reader }), 403);
    assertProblem(await req(base, "POST", "/api/v1/domains", { key: reader, body: { hostname: "r2.example" } }), 403);
    assertProblem(await req(base, "GET", "/api/v1/stats", { key: reader }), 403, "stats:read");
    assertProblem(await req(base, "GET", `/api/v1/links/${linkId}/stats`, { key: reader }), 403, "stats:read");
    assertProblem(await req(base, "GET", "/api/v1/clicks/export", { key: reader }), 403, "stats:read");
    assertProblem(await req(base, "GET", "/api/v1/keys", { key: reader }), 403, "admin");
    assertProblem(await req(base, "POST", "/api/v1/keys", { key: reader, body: { scopes: ["admin"] } }), 403, "admin");

    assert.equal((await req(base, "GET", "/api/v1/stats", { key: statsKey })).status, 200);
    assert.equal((await req(base, "GET", `/api/v1/links/${linkId}/stats`, { key: statsKey })).status, 200);
    assert.equal((await req(base, "GET", "/api/v1/clicks/export", { key: statsKey })).status, 200);
    assertProblem(await req(base, "GET", "/api/v1/links", { key: statsKey }), 403, "links:read");

    r = await req(base, "POST", "/api/v1/links", { key: writer, body: { domain: "auth.example", target: "https://example.com/w" } });
    assert.equal(r.status, 201, r.body);
    assertProblem(await req(base, "POST", "/api/v1/keys", { key: writer, body: { scopes: ["admin"] } }), 403, "admin");
    r = await req(base, "GET", "/api/v1/keys");
    assert.equal(r.status, 200);
    assert.ok(r.json.keys.length >= 4);
    for (const k of r.json.keys) assert.equal(k.key, undefined, "secrets are never listed");
  });

  test("a revoked key is 401 at once; revoking twice or an unknown key is 404", async () => {
    let r = await req(base, "POST", "/api/v1/keys", { body: { name: "temp", scopes: ["links:read"] } });
    const { id, key } = r.json as { id: number; key: string };
    assert.equal((await req(base, "GET", "/api/v1/links", { key })).status, 200, "works (and is cached)");
    r = await req(base, "DELETE", `/api/v1/keys/${id}`);
    assert.equal(r.status, 204);
    r = await req(base, "GET", "/api/v1/links", { key });
    assertProblem(r, 401);
    assert.match(String(r.headers["www-authenticate"]), /invalid_token/);
    assertProblem(await req(base, "DELETE", `/api/v1/keys/${id}`), 404);
    assertProblem(await req(base, "DELETE", `/api/v1/keys/999999`), 404);
    r = await req(base, "GET", "/api/v1/keys");
    const listed = r.json.keys.find((k: { id: number }) => k.id === id);
    assert.ok(listed && listed.revoked_at !== null, "listed as revoked");
  });

  test("project B's key cannot see or revoke project A's keys", async () => {
    const keyB = await otherProject("keys-b");
    const r = await req(base, "GET", "/api/v1/keys", { key: keyB });
    assert.equal(r.status, 200);
    assert.equal(r.json.keys.length, 1, "only its own key");
    const aKeys = (await req(base, "GET", "/api/v1/keys")).json.keys as { id: number; revoked_at: string | null }[];
    const aActive = aKeys.find((k) => k.revoked_at === null)!;
    assertProblem(await req(base, "DELETE", `/api/v1/keys/${aActive.id}`, { key: keyB }), 404);
    assert.equal((await req(base, "GET", "/api/v1/links")).status, 200);
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("operations and documentation", () => {
  test("GET /openapi.json is OpenAPI 3.1 and documents the API", async () => {
    const r = await req(base, "GET", "/openapi.json", { key: null });
    assert.equal(r.status, 200);
    assert.match(String(r.headers["content-type"]), /json/);
    assert.match(r.json.openapi, /^3\.1/);
    for (const p of ["/api/v1/links", "/api/v1/links/{id}", "/api/v1/links/bulk", "/api/v1/domains", "/api/v1/stats", "/api/v1/clicks/export"]) {
      assert.ok(r.json.paths[p], `documents ${p}`);
    }
    assert.ok(r.json.paths["/api/v1/links"].post, "POST /api/v1/links");
    assert.ok(r.json.paths["/api/v1/links"].get, "GET /api/v1/links");
  });

  test("GET /docs answers HTML (following a redirect if any)", async () => {
    let r = await req(base, "GET", "/docs", { key: null });
    for (let i = 0; i < 3 && r.status >= 300 && r.status < 400; i++) {
      r = await req(base, "GET", new URL(String(r.headers.location), base + "/docs").pathname, { key: null });
    }
    assert.equal(r.status, 200);
    assert.match(String(r.headers["content-type"]), /text\/html/);
    assert.match(r.body, /<html/i);
  });

  test("/healthz and /metrics answer without a key", async () => {
    await mkDomain("ops.example");
    await mkLink({ domain: "ops.example", slug: "m", target: "https://example.com/" });
    assert.equal((await hit(base, "ops.example", "/m")).status, 302);
    assert.equal((await hit(base, "ops.example", "/nope")).status, 404);
    let r = await req(base, "GET", "/healthz", { key: null });
    assert.equal(r.status, 200);
    assert.equal(r.json.status, "ok");
    r = await req(base, "GET", "/metrics", { key: null });
    assert.equal(r.status, 200);
    assert.match(String(r.headers["content-type"]), /text\/plain/);
    assert.match(r.body, /clicktrail_redirects_total\{outcome="redirect"\} [1-9]/);
    assert.match(r.body, /clicktrail_redirects_total\{outcome="not_found"\} [1-9]/);
    assert.match(r.body, /clicktrail_writer_batch_size_bucket/);
    assert.match(r.body, /clicktrail_writer_batch_size_count [1-9]/);
    // counted on the hot path and added when read: each scrape shows the running total, never a delta
    const redirects = (body: string) => Number(/clicktrail_redirects_total\{outcome="redirect"\} (\d+)/.exec(body)?.[1]);
    const before = redirects(r.body);
    for (let i = 0; i < 3; i++) assert.equal((await hit(base, "ops.example", "/m")).status, 302);
    r = await req(base, "GET", "/metrics", { key: null });
    assert.equal(redirects(r.body), before + 3);
    r = await req(base, "GET", "/metrics", { key: null });
    assert.equal(redirects(r.body), before + 3);
  });
});

test("a new link or domain never takes the id of a deleted one (else it would inherit its clicks and stats)", async () => {
  const { base, close } = await startApp();
  try {
    const d = (await req(base, "POST", "/api/v1/domains", { body: { hostname: "go.ids.test" } })).json;
    const l = (await req(base, "POST", "/api/v1/links", { body: { domain: "go.ids.test", slug: "gone", target: "https://example.com/" } })).json;
    assert.equal((await hit(base, "go.ids.test", "/gone")).status, 302);
    assert.equal((await req(base, "DELETE", `/api/v1/links/${l.id}`)).status, 204);
    const fresh = (await req(base, "POST", "/api/v1/links", { body: { domain: "go.ids.test", slug: "fresh", target: "https://example.com/" } })).json;
    assert.notEqual(fresh.id, l.id);
    assert.equal((await req(base, "GET", `/api/v1/links/${fresh.id}/stats`)).json.clicks, 0);
    assert.equal((await req(base, "DELETE", `/api/v1/links/${fresh.id}`)).status, 204);
    assert.equal((await req(base, "DELETE", `/api/v1/domains/${d.id}`)).status, 204);
    const d2 = (await req(base, "POST", "/api/v1/domains", { body: { hostname: "go.ids2.test" } })).json;
    assert.notEqual(d2.id, d.id);
  } finally {
    await close();
  }
});

test("links sorted by slug or clicks page through every link exactly once, in order", async () => {
  const { base, close } = await startApp();
  try {
    await req(base, "POST", "/api/v1/domains", { body: { hostname: "go.sort.test" } });
    const slugs = ["delta", "alpha", "echo", "charlie", "bravo"];
    for (const slug of slugs) await req(base, "POST", "/api/v1/links", { body: { domain: "go.sort.test", slug, target: "https://example.com/" } });
    for (const [slug, n] of [
      ["echo", 3],
      ["alpha", 1],
      ["charlie", 2],
    ] as const)
      for (let i = 0; i < n; i++) assert.equal((await hit(base, "go.sort.test", `/${slug}`)).status, 302);
    await req(base, "GET", "/api/v1/stats"); // a stats read commits the pending counters
    const all = async (sort: string) => {
      const out: string[] = [];
      let cursor = "";
      for (let page = 0; page < 10; page++) {
        const r = await req(base, "GET", `/api/v1/links?sort=${sort}&limit=2${cursor ? `&cursor=${cursor}` : ""}`);
        assert.equal(r.status, 200, r.body);
        out.push(...r.json.links.map((l: { slug: string }) => l.slug));
        if (!r.json.next_cursor) return out;
        cursor = r.json.next_cursor;
      }
      throw new Error("did not end");
    };
    assert.deepEqual(await all("slug"), ["alpha", "bravo", "charlie", "delta", "echo"]);
    assert.deepEqual(await all("-slug"), ["echo", "delta", "charlie", "bravo", "alpha"]);
    assert.deepEqual(await all("-clicks"), ["echo", "charlie", "alpha", "bravo", "delta"]);
    assert.deepEqual(await all("created"), slugs);
    assert.deepEqual(await all("-created"), [...slugs].reverse());
    const bad = await req(base, "GET", "/api/v1/links?sort=target");
    assert.equal(bad.status, 400);
    const first = await req(base, "GET", "/api/v1/links?sort=slug&limit=2");
    const mixed = await req(base, "GET", `/api/v1/links?sort=-clicks&cursor=${first.json.next_cursor}`);
    assert.equal(mixed.status, 400);
    assert.equal(mixed.json.field, "cursor");
  } finally {
    await close();
  }
});
