/** Dashboard sessions (cookie + CSRF token, throttled sign-in) and the QR code route, over real HTTP. */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { req, startApp, type Res, type TestApp } from "./helpers.js";

let t: TestApp;
const EMAIL = "ada@example.com";
const PASSWORD = "correct horse battery";

before(async () => {
  t = await startApp();
  await t.app.services.auth.createUser(EMAIL, PASSWORD);
});
after(() => t.close());

const cookieOf = (r: Res) => String(r.headers["set-cookie"] ?? "").split(";")[0]!;

async function signIn(email = EMAIL, password = PASSWORD, ip?: string) {
  return req(t.base, "POST", "/api/v1/auth/session", { key: null, body: { email, password }, headers: ip ? { "x-forwarded-for": ip } : {} });
}

test("sign-in sets an HttpOnly SameSite=Strict cookie and answers the user, projects and a CSRF token", async () => {
  const r = await signIn();
  assert.equal(r.status, 200, r.body);
  const setCookie = String(r.headers["set-cookie"]);
  assert.match(setCookie, /^ct_session=[A-Za-z0-9_-]{43}; Max-Age=1209600; Path=\/; HttpOnly; SameSite=Strict$/);
  assert.equal(r.json.user.email, EMAIL);
  assert.deepEqual(
    r.json.projects.map((p: { name: string; role: string }) => [p.name, p.role]),
    [["default", "owner"]],
  );
  assert.equal(typeof r.json.csrf_token, "string");
  const cookie = cookieOf(r);
  const me = await req(t.base, "GET", "/api/v1/auth/session", { key: null, headers: { cookie } });
  assert.equal(me.status, 200);
  assert.equal(me.json.csrf_token, r.json.csrf_token);
});

test("a session reads with the cookie alone; writes need the CSRF token; a project it is not in is refused", async () => {
  const s = await signIn();
  const cookie = cookieOf(s);
  assert.equal((await req(t.base, "GET", "/api/v1/links", { key: null, headers: { cookie } })).status, 200);
  const noCsrf = await req(t.base, "POST", "/api/v1/domains", { key: null, headers: { cookie }, body: { hostname: "go.session.test" } });
  assert.equal(noCsrf.status, 403);
  assert.equal(noCsrf.json.type, "https://clicktrail.dev/problems/csrf");
  const wrong = await req(t.base, "POST", "/api/v1/domains", {
    key: null,
    headers: { cookie, "x-csrf-token": "x".repeat(32) },
    body: { hostname: "go.session.test" },
  });
  assert.equal(wrong.status, 403);
  const ok = await req(t.base, "POST", "/api/v1/domains", {
    key: null,
    headers: { cookie, "x-csrf-token": s.json.csrf_token },
    body: { hostname: "go.session.test" },
  });
  assert.equal(ok.status, 201, ok.body);
  const other = await req(t.base, "GET", "/api/v1/links", { key: null, headers: { cookie, "x-project-id": "999" } });
  assert.equal(other.status, 403);
  assert.match(other.json.detail, /not a member of project "999"/);
  const bogus = await req(t.base, "GET", "/api/v1/links", { key: null, headers: { cookie: "ct_session=" + "a".repeat(43) } });
  assert.equal(bogus.status, 401);
});

test("wrong passwords and unknown users get the same 401; repeated failures are throttled with Retry-After", async () => {
  const a = await signIn(EMAIL, "wrong password");
  const b = await signIn("nobody@example.com", "wrong password");
  assert.equal(a.status, 401);
  assert.equal(b.status, 401);
  assert.equal(a.json.detail, b.json.detail);
  // five failures per e-mail within 15 minutes, then a wait
  for (let i = 0; i < 4; i++) assert.equal((await signIn(EMAIL, "wrong password")).status, 401);
  const limited = await signIn(EMAIL, "wrong password");
  assert.equal(limited.status, 429);
  assert.ok(Number(limited.headers["retry-after"]) > 0);
  // even the right password waits out the window: the throttle is per e-mail
  assert.equal((await signIn()).status, 429);
  const bad = await req(t.base, "POST", "/api/v1/auth/session", { key: null, body: { email: EMAIL } });
  assert.equal(bad.status, 400);
});

test("sign-out needs the CSRF token, ends the session and clears the cookie", async () => {
  const t2 = await startApp();
  try {
    await t2.app.services.auth.createUser("bo@example.com", PASSWORD);
    const s = await req(t2.base, "POST", "/api/v1/auth/session", { key: null, body: { email: "bo@example.com", password: PASSWORD } });
    const cookie = cookieOf(s);
    assert.equal((await req(t2.base, "DELETE", "/api/v1/auth/session", { key: null, headers: { cookie } })).status, 403);
    const out = await req(t2.base, "DELETE", "/api/v1/auth/session", { key: null, headers: { cookie, "x-csrf-token": s.json.csrf_token } });
    assert.equal(out.status, 204);
    assert.match(String(out.headers["set-cookie"]), /ct_session=; Max-Age=0/);
    assert.equal((await req(t2.base, "GET", "/api/v1/auth/session", { key: null, headers: { cookie } })).status, 401);
    assert.equal((await req(t2.base, "GET", "/api/v1/links", { key: null, headers: { cookie } })).status, 401);
  } finally {
    await t2.close();
  }
});

test("QR code of a link as SVG and PNG", async () => {
  await req(t.base, "POST", "/api/v1/domains", { body: { hostname: "go.qr.test" } });
  const l = (await req(t.base, "POST", "/api/v1/links", { body: { domain: "go.qr.test", slug: "qr", target: "https://example.com/" } })).json;
  const svg = await req(t.base, "GET", `/api/v1/links/${l.id}/qr`);
  assert.equal(svg.status, 200);
  assert.equal(svg.headers["content-type"], "image/svg+xml");
  assert.match(svg.body, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  const png = await req(t.base, "GET", `/api/v1/links/${l.id}/qr?format=png&size=256&download=1`);
  assert.equal(png.status, 200);
  assert.equal(png.headers["content-type"], "image/png");
  assert.equal(png.headers["content-disposition"], 'attachment; filename="qr.png"');
  assert.equal((await req(t.base, "GET", `/api/v1/links/${l.id}/qr?size=10`)).status, 400);
  assert.equal((await req(t.base, "GET", `/api/v1/links/999999/qr`)).status, 404);
});
