/** The Microticks dialect end to end: a client's form-encoded life cycle, its messages, key checks, reads, and that
 * what it writes is the native sessions and events. */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { req, startApp, type TestApp } from "./helpers.js";

let t: TestApp;
let consumerKey: string;
const M = "/microticks/api";

before(async () => {
  t = await startApp({ CLICKTRAIL_DIALECTS: "microticks:/microticks/api", MICROTICKS_KEY: "read-secret" });
  consumerKey = (await req(t.base, "POST", "/api/v1/apps", { body: { name: "Table" } })).json.key;
});
after(() => t.close());

const form = (path: string, fields: Record<string, string>) =>
  req(t.base, "POST", M + path, {
    key: null,
    raw: new URLSearchParams(fields).toString(),
    headers: { "content-type": "application/x-www-form-urlencoded" },
  });

test("a Microticks client's whole life cycle, form-encoded, with the original's bodies and headers", async () => {
  const s = await form("/sessions", { consumer_key: consumerKey, ts: "2017-08-25T17:09:19.438Z" });
  assert.equal(s.status, 200, s.body);
  assert.match(s.body, /^\{"status":200,"token":"[0-9a-f]{32}"\}$/);
  assert.equal(s.headers["cache-control"], "public, max-age=0");
  assert.equal(s.headers.pragma, "no-cache");
  assert.equal(s.headers.expires, "0");
  assert.equal(s.headers["access-control-allow-origin"], "*");
  const token = s.json.token;
  for (const [x, y] of [
    [406, 300],
    [12, 40],
  ]) {
    const e = await form("/events", {
      token,
      action: "click",
      data: JSON.stringify({ target: "btn", clickX: x, clickY: y }),
      ts: "2017-08-25T17:09:20.000Z",
    });
    assert.equal(e.status, 200, e.body);
    assert.deepEqual(Object.keys(e.json), ["event_id", "status"]);
    assert.equal(typeof e.json.event_id, "number");
  }
  assert.equal((await form("/events", { token, action: "stopSession", data: '{"reason":"idle"}', ts: "2017-08-25T17:10:00Z" })).status, 200);
  assert.deepEqual((await form("/sessions/stop", { token, ts: "2017-08-25T17:10:00Z" })).json, { status: 200 });
  assert.deepEqual((await form("/sessions/stop", { token, ts: "x" })).json, { description: "Session was already stopped.", status: 400 });
  assert.deepEqual((await form("/events", { token, action: "click", data: "{}", ts: "x" })).json, {
    description: "Session was already stopped.",
    status: 400,
  });

  const sessions = await req(t.base, "GET", `${M}/sessions?key=read-secret`, { key: null });
  assert.equal(sessions.status, 200, sessions.body);
  assert.equal(sessions.json.count, 1);
  assert.equal(sessions.json.sessions[0].clicks, 2);
  assert.equal(sessions.json.sessions[0].started_at, "2017-08-25T17:09:19.438Z");
  const events = await req(t.base, "GET", `${M}/events?key=read-secret&sort.desc=time&limit=2`, { key: null });
  assert.equal(events.json.count, 2);
  assert.equal(events.json.events[0].action, "stopSession");
  assert.deepEqual(events.json.events[0].data, { reason: "idle" });
  assert.deepEqual(Object.keys(events.json.events[0]), ["action", "data", "id", "session_id", "time"]);

  // the same session and events natively
  const native = await req(t.base, "GET", `/api/v1/events?session=${token}&limit=10`);
  assert.equal(native.json.events.length, 3);
  const nativeSessions = await req(t.base, "GET", "/api/v1/sessions");
  assert.equal(nativeSessions.json.sessions.find((x: { token: string }) => x.token === token).stop_reason, "client");
});

test("the original's error bodies, in its check order; authentication failures are 401, not 400", async () => {
  assert.deepEqual((await form("/sessions", { ts: "x" })).json, { error: "Invalid consumer_key", status: 400 });
  assert.deepEqual((await form("/sessions", { consumer_key: consumerKey })).json, { error: 'No "ts" parameter provided', status: 400 });
  assert.deepEqual((await form("/sessions/stop", { token: "nope" })).json, { error: 'No "ts" parameter provided', status: 400 });
  assert.deepEqual((await form("/sessions/stop", { ts: "x", token: "nope" })).json, { description: "Could not find session", status: 400 });
  assert.deepEqual((await form("/events", { action: "a" })).json, { error: 'No "token" parameter provided', status: 400 });
  assert.deepEqual((await form("/events", { token: "t", action: "a", ts: "x" })).json, { error: 'No "data" parameter provided', status: 400 });
  const noKey = await req(t.base, "GET", `${M}/events`, { key: null });
  assert.equal(noKey.status, 401);
  assert.deepEqual(noKey.json, { description: 'Please specify an API key using the "key" query string parameter.', status: 401 });
  const wrong = await req(t.base, "GET", `${M}/sessions?key=nope`, { key: null });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.json.description, "The key does not seem to be the right one.");
  // sort is a column name from a fixed list, never SQL
  const inject = await req(t.base, "GET", `${M}/events?key=read-secret&sort=id;DROP TABLE events`, { key: null });
  assert.equal(inject.status, 400);
  const disabled = (await req(t.base, "POST", "/api/v1/apps", { body: { name: "Gone" } })).json;
  await req(t.base, "POST", `/api/v1/apps/${disabled.id}/disable`);
  assert.deepEqual((await form("/sessions", { consumer_key: disabled.key, ts: "x" })).json, { error: "Consumer is not active.", status: 400 });
});
