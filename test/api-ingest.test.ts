/** Apps, sessions and events from front ends, over real HTTP (SQLite, and PostgreSQL in the second round). */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { ADMIN_KEY, cli, req, startApp, tmpDir, type TestApp } from "./helpers.js";
import { rmSync } from "node:fs";

let t: TestApp;
let key: string;
let appId: number;
const UA = "Mozilla/5.0 (iPad; CPU OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";

before(async () => {
  process.env.CLICKTRAIL_INGEST_RATE_LIMIT = "60";
  t = await startApp();
  delete process.env.CLICKTRAIL_INGEST_RATE_LIMIT;
  const a = await req(t.base, "POST", "/api/v1/apps", { body: { name: "Touch table", idle_timeout_ms: 1500 } });
  assert.equal(a.status, 201, a.body);
  key = a.json.key;
  appId = a.json.id;
});
after(() => t.close());

const pub = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
  req(t.base, method, path, { key: null, body, headers: { "user-agent": UA, origin: "https://kiosk.example", ...headers } });

test("an app has a public ingest key; a duplicate name is a 409, a bad one a 400", async () => {
  assert.match(key, /^ik_[A-Za-z0-9_-]{24}$/);
  assert.equal((await req(t.base, "POST", "/api/v1/apps", { body: { name: "Touch table" } })).status, 409);
  const bad = await req(t.base, "POST", "/api/v1/apps", { body: { name: "" } });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.field, "name");
  const list = await req(t.base, "GET", "/api/v1/apps");
  assert.equal(list.json.apps[0].name, "Touch table");
});

test("a session, events in it (single and batch), committed before 201, read back with filters and a cursor", async () => {
  const s = await pub("POST", "/api/v1/sessions", { key, ts: "2017-08-25T17:09:19.438Z", visitor: "v1" });
  assert.equal(s.status, 201, s.body);
  assert.equal(s.headers["access-control-allow-origin"], "https://kiosk.example");
  const token = s.json.token as string;
  const one = await pub("POST", "/api/v1/events", {
    key,
    name: "tap",
    data: { target: "button#start", x: 406, y: 300 },
    session: token,
    ts: "2017-08-25T17:09:20Z",
  });
  assert.equal(one.status, 201, one.body);
  assert.deepEqual(one.json, { accepted: 1 });
  const batch = await pub("POST", "/api/v1/events", {
    key,
    session: token,
    events: Array.from({ length: 5 }, (_, i) => ({ name: "tap", data: { i } })),
  });
  assert.deepEqual(batch.json, { accepted: 5 });
  // Microticks' clients send data as a JSON string
  assert.equal((await pub("POST", "/api/v1/events", { key, name: "swipe", data: '{"dir":"left"}', session: token })).status, 201);

  const ev = await req(t.base, "GET", `/api/v1/events?app=${appId}&session=${token}&limit=3`);
  assert.equal(ev.status, 200);
  assert.equal(ev.json.events.length, 3);
  assert.equal(ev.json.events[0].name, "swipe");
  assert.deepEqual(ev.json.events[0].data, { dir: "left" });
  assert.equal(ev.json.events[0].visitor, "v1", "the session's visitor");
  assert.equal(ev.json.events[0].device, "tablet");
  const rest = await req(t.base, "GET", `/api/v1/events?app=${appId}&session=${token}&limit=10&cursor=${ev.json.next_cursor}`);
  assert.equal(rest.json.events.length, 4);
  assert.equal(rest.json.next_cursor, null);
  const first = rest.json.events[3];
  assert.deepEqual(first.data, { target: "button#start", x: 406, y: 300 });
  assert.equal(first.client_ts, "2017-08-25T17:09:20.000Z");
  const taps = await req(t.base, "GET", `/api/v1/events?name=tap&order=oldest&limit=1000`);
  assert.equal(taps.json.events.length, 6);

  const stop = await pub("POST", `/api/v1/sessions/${token}/stop`, { key });
  assert.equal(stop.status, 200, stop.body);
  const again = await pub("POST", `/api/v1/sessions/${token}/stop`, { key });
  assert.equal(again.status, 410);
  const late = await pub("POST", "/api/v1/events", { key, name: "tap", session: token });
  assert.equal(late.status, 410);
  assert.equal(late.json.type, "https://clicktrail.dev/problems/session-stopped");

  const sessions = await req(t.base, "GET", `/api/v1/sessions?app=${appId}`);
  const row = sessions.json.sessions.find((x: { token: string }) => x.token === token);
  assert.equal(row.event_count, 7);
  assert.equal(row.stop_reason, "client");
  assert.equal(row.client_started_at, "2017-08-25T17:09:19.438Z");
});

test("a session stops by itself after the app's idle time-out", async () => {
  const s = await pub("POST", "/api/v1/sessions", { key });
  assert.equal((await pub("POST", "/api/v1/events", { key, name: "tap", session: s.json.token })).status, 201);
  await new Promise((r) => setTimeout(r, 1700));
  const late = await pub("POST", "/api/v1/events", { key, name: "tap", session: s.json.token });
  assert.equal(late.status, 410);
  assert.match(late.json.detail, /timed out/);
  const row = (await req(t.base, "GET", `/api/v1/sessions?app=${appId}`)).json.sessions.find((x: { token: string }) => x.token === s.json.token);
  assert.equal(row.stop_reason, "idle");
});

test("bad input: a clear 4xx naming the field, and nothing stored", async () => {
  const before = (await req(t.base, "GET", "/api/v1/events?limit=1000")).json.events.length;
  const cases: [unknown, number, string][] = [
    [{ name: "tap" }, 401, "key"],
    [{ key: "ik_nope", name: "tap" }, 401, "key"],
    [{ key, name: "" }, 400, "name"],
    [{ key, name: "tap", data: [1, 2] }, 400, "data"],
    [{ key, name: "tap", data: { big: "x".repeat(9000) } }, 400, "data"],
    [{ key, name: "tap", ts: "yesterday" }, 400, "ts"],
    [{ key, events: [{ name: "ok" }, { name: 5 }] }, 400, "events[1].name"],
    [{ key, events: [] }, 400, "events"],
    [{ key, name: "tap", session: "no-such-session" }, 404, "session"],
  ];
  for (const [body, status, field] of cases) {
    const r = await pub("POST", "/api/v1/events", body);
    assert.equal(r.status, status, JSON.stringify(body).slice(0, 80) + " " + r.body);
    assert.equal(r.json.field, field, r.body);
  }
  const tooMany = await pub("POST", "/api/v1/events", { key, events: Array.from({ length: 1001 }, () => ({ name: "x" })) });
  assert.equal(tooMany.status, 400);
  assert.equal((await req(t.base, "GET", "/api/v1/events?limit=1000")).json.events.length, before);
});

test("CORS preflight, sendBeacon's text/plain JSON, a disabled key, the rate limit", async () => {
  const pre = await req(t.base, "OPTIONS", "/api/v1/events", {
    key: null,
    headers: { origin: "https://kiosk.example", "access-control-request-method": "POST", "access-control-request-headers": "content-type" },
  });
  assert.equal(pre.status, 204);
  assert.match(String(pre.headers["access-control-allow-methods"]), /POST/);
  const beacon = await req(t.base, "POST", "/api/v1/events", {
    key: null,
    raw: JSON.stringify({ key, name: "beacon" }),
    headers: { "content-type": "text/plain;charset=UTF-8", origin: "https://kiosk.example" },
  });
  assert.equal(beacon.status, 201, beacon.body);

  const other = (await req(t.base, "POST", "/api/v1/apps", { body: { name: "Old kiosk" } })).json;
  assert.equal((await req(t.base, "POST", `/api/v1/apps/${other.id}/disable`)).status, 200);
  const off = await pub("POST", "/api/v1/events", { key: other.key, name: "tap" });
  assert.equal(off.status, 403);

  // 60 requests a second per key in this app: the burst beyond is refused with Retry-After
  const limiter = (await req(t.base, "POST", "/api/v1/apps", { body: { name: "Chatty" } })).json;
  const t0 = Date.now();
  const statuses = await Promise.all(Array.from({ length: 200 }, () => pub("POST", "/api/v1/events", { key: limiter.key, name: "x" })));
  const windows = Math.floor(Date.now() / 1000) - Math.floor(t0 / 1000) + 1;
  const limited = statuses.filter((r) => r.status === 429);
  assert.ok(limited.length > 0, "some requests were limited");
  assert.equal(limited[0]!.headers["retry-after"], "1");
  assert.ok(statuses.filter((r) => r.status === 201).length <= 60 * windows, "at most 60 a second got through");
});

test("CLI: clicktrail app create prints the consumer and its key like Microticks' createconsumer", async () => {
  const dir = tmpDir();
  try {
    const r = await cli(["app", "create", "MyApp"], { CLICKTRAIL_DATA_DIR: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Created new consumer "MyApp"\nConsumer key: ik_[A-Za-z0-9_-]{24}\n$/);
    const list = await cli(["app", "list"], { CLICKTRAIL_DATA_DIR: dir });
    assert.match(list.stdout, /\tMyApp\tik_/);
    const dis = await cli(["app", "disable", "MyApp"], { CLICKTRAIL_DATA_DIR: dir });
    assert.equal(dis.code, 0, dis.stderr);
    assert.match((await cli(["app", "list"], { CLICKTRAIL_DATA_DIR: dir })).stdout, /disabled/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("live tail: new events arrive as Server-Sent Events", async () => {
  const { request } = await import("node:http");
  const u = new URL(`${t.base}/api/v1/events/stream?app=${appId}`);
  const got: string[] = [];
  const done = new Promise<void>((resolve, reject) => {
    const r = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, headers: { authorization: `Bearer ${ADMIN_KEY}` } }, (res) => {
      assert.equal(res.headers["content-type"], "text/event-stream; charset=utf-8");
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        got.push(chunk);
        if (got.join("").includes('"name":"live"')) {
          r.destroy();
          resolve();
        }
      });
    });
    r.on("error", (e) => (got.join("").includes('"name":"live"') ? resolve() : reject(e)));
    r.end();
  });
  await new Promise((r) => setTimeout(r, 200));
  assert.equal((await pub("POST", "/api/v1/events", { key, name: "live", data: { n: 1 } })).status, 201);
  await Promise.race([done, new Promise((_, rej) => setTimeout(() => rej(new Error(`no event within 5 s: ${got.join("")}`)), 5000))]);
  assert.match(got.join(""), /event: event\ndata: \{"id":\d+,.*"name":"live"/);
});

test("an app's events from the rollups: count, series and events by name", async () => {
  const a = (await req(t.base, "POST", "/api/v1/apps", { body: { name: "Stats app" } })).json;
  const s = await pub("POST", "/api/v1/sessions", { key: a.key, visitor: "u1" });
  await pub("POST", "/api/v1/events", { key: a.key, session: s.json.token, events: [{ name: "tap" }, { name: "tap" }, { name: "swipe" }] });
  const st = await req(t.base, "GET", `/api/v1/apps/${a.id}/stats`);
  assert.equal(st.status, 200, st.body);
  assert.equal(st.json.clicks, 3);
  assert.equal(st.json.visitors, 1);
  assert.deepEqual(st.json.breakdowns.name, [
    { value: "tap", clicks: 2 },
    { value: "swipe", clicks: 1 },
  ]);
  assert.equal(
    st.json.series.reduce((n: number, p: { clicks: number }) => n + p.clicks, 0),
    3,
  );
  assert.equal((await req(t.base, "GET", "/api/v1/apps/999999/stats")).status, 404);
});
