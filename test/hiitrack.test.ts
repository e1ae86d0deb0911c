/** The HiiTrack dialect end to end over HTTP: its dispatcher, users and buckets, the authentication order, tracking,
 * batch and cookie, event and property reports, funnels (the reference's example numbers), JSONP and request_id. */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { req, startApp, type Res, type TestApp } from "./helpers.js";
import { bucketPassword, passwordHash } from "../src/dialects/hiitrack.js";

let t: TestApp;
const H = "/hiitrack";

before(async () => {
  t = await startApp({ CLICKTRAIL_DIALECTS: "hiitrack:/hiitrack" });
});
after(() => t.close());

interface Opts {
  auth?: [string, string];
  form?: Record<string, string | string[]>;
  json?: Record<string, unknown>;
  headers?: Record<string, string>;
}

function call(method: string, path: string, o: Opts = {}): Promise<Res> {
  const headers: Record<string, string> = { ...(o.headers ?? {}) };
  if (o.auth) headers.authorization = `Basic ${Buffer.from(`${o.auth[0]}:${o.auth[1]}`).toString("base64")}`;
  let raw: string | undefined;
  if (o.form) {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(o.form)) for (const x of Array.isArray(v) ? v : [v]) u.append(k, x);
    raw = u.toString();
    headers["content-type"] = "application/x-www-form-urlencoded";
  }
  if (o.json) {
    raw = JSON.stringify(o.json);
    headers["content-type"] = "application/json";
  }
  return req(t.base, method, H + path, { key: null, headers, raw });
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64");
const AUTH_BODY = JSON.stringify(JSON.stringify({ error: "Authorization required." }));
let n = 0;
const uniq = (p: string) => `${p}${++n}${Date.now().toString(36)}`;

async function newUser(): Promise<[string, string]> {
  const u: [string, string] = [uniq("user"), uniq("pw")];
  const r = await call("POST", `/${u[0]}`, { form: { password: u[1] } });
  assert.equal(r.status, 201, r.body);
  return u;
}

async function newBucket(u: [string, string]): Promise<string> {
  const b = uniq("bucket");
  const r = await call("POST", `/${u[0]}/${b}`, { auth: u, form: { description: `about ${b}` } });
  assert.equal(r.status, 201, r.body);
  return b;
}

test("dispatcher: trailing slash 301, JSON 404s, ujson escaping, application/json", async () => {
  const slash = await call("GET", "/someone/bucket/?x=1");
  assert.equal(slash.status, 301);
  assert.equal(slash.headers.location, `${H}/someone/bucket`);
  assert.equal(slash.body, "");
  const root = await req(t.base, "GET", `${H}/`, { key: null });
  assert.equal(root.status, 301);
  assert.equal(root.headers.location, H);
  for (const [m, p] of [
    ["GET", ""],
    ["GET", "/a/b/c/d/e"],
    ["GET", "/a/b/nothing"],
    ["PUT", "/a"],
    ["HEAD", "/a/b"],
    ["POST", "/batch"],
    ["GET", "/a//event"],
  ] as const) {
    const r = await call(m, p);
    assert.equal(r.status, 404, `${m} ${p}`);
    if (m !== "HEAD") assert.equal(r.body, '{"error":"Not found"}', `${m} ${p}`);
    assert.equal(r.headers["content-type"], "application/json");
  }
  const u = await newUser();
  const b = uniq("b");
  assert.equal((await call("POST", `/${u[0]}/${b}`, { auth: u, form: { description: "a/b é" } })).status, 201);
  const g = await call("GET", `/${u[0]}/${b}`, { auth: u });
  assert.ok(g.body.includes('"description":"a\\/b \\u00e9"'), g.body);
  assert.equal(g.json.description, "a/b é");
});

test("users: create, exists, required password, GET and DELETE with Basic auth", async () => {
  const name = uniq("u");
  const missing = await call("POST", `/${name}`, { form: { password: "" } });
  assert.equal(missing.status, 400);
  assert.equal(missing.json.error, "Parameter 'password' is required.");
  assert.equal(typeof missing.json.exc, "string");
  const created = await call("POST", `/${name}`, { form: { password: "pw" } });
  assert.equal(created.status, 201);
  assert.equal(created.body, "{}");
  const again = await call("POST", `/${name}`, { json: { password: "other" } });
  assert.equal(again.status, 403);
  assert.equal(again.json.error, "Username exists.");

  const anon = await call("GET", `/${name}`);
  assert.equal(anon.status, 401);
  assert.equal(anon.headers["www-authenticate"], "Basic");
  assert.equal(anon.body, AUTH_BODY);
  const wrong = await call("GET", `/${name}`, { auth: [name, "nope"] });
  assert.equal(wrong.status, 401);
  assert.equal(wrong.headers["www-authenticate"], "Basic");
  const xhr = await call("GET", `/${name}`, { auth: [name, "nope"], headers: { "x-requested-with": "XMLHttpRequest" } });
  assert.equal(xhr.status, 401);
  assert.equal(xhr.headers["www-authenticate"], undefined);
  const badScheme = await call("GET", `/${name}`, { headers: { authorization: "Bearer x" } });
  assert.equal(badScheme.status, 401);
  const ok = await call("GET", `/${name}`, { auth: [name, "pw"] });
  assert.equal(ok.status, 200);
  assert.equal(ok.body, "{}");

  const other = await newUser();
  const invalidUser = await call("GET", `/${name}`, { auth: other });
  assert.equal(invalidUser.status, 401);
  assert.equal(invalidUser.body, AUTH_BODY);

  // the stored hash is HiiTrack's: sha1("user:password")
  const row = (t.app.services.store as unknown as { db?: { prepare(s: string): { get(x: string): { hash: string } } } }).db;
  if (row) assert.equal(row.prepare("SELECT hash FROM hiitrack_users WHERE name = ?").get(name).hash, passwordHash(name, "pw"));

  const b = await newBucket([name, "pw"]);
  const del = await call("DELETE", `/${name}`, { auth: [name, "pw"] });
  assert.equal(del.status, 200);
  assert.equal(del.body, "null");
  assert.equal((await call("GET", `/${name}`, { auth: [name, "pw"] })).status, 401);
  // its buckets went with it: tracking into them finds no user
  const track = await call("POST", `/${name}/${b}/event/x`, { form: { visitor_id: "v" } });
  assert.equal(track.status, 404);
  assert.equal(track.json.error, `User ${name} does not exist.`);
});

test("buckets and the authentication order: 401 before any 404, bucket passwords", async () => {
  const u = await newUser();
  const missing = uniq("nobucket");
  // anonymous: 401 even though the bucket does not exist (clients send credentials only after a 401)
  for (const p of [`/${u[0]}/${missing}`, `/${u[0]}/${missing}/event/x`, `/${u[0]}/${missing}/funnel`, `/${u[0]}/${missing}/funnel/f`]) {
    const anon = await call("GET", p);
    assert.equal(anon.status, 401, p);
    const authed = await call("GET", p, { auth: u });
    assert.equal(authed.status, 404, p);
    assert.equal(authed.json.error, `Bucket ${missing} does not exist.`);
  }
  const noDesc = await call("POST", `/${u[0]}/${missing}`, { auth: u });
  assert.equal(noDesc.status, 400);
  assert.equal(noDesc.json.error, "Parameter 'description' is required.");
  const b = await newBucket(u);
  const dup = await call("POST", `/${u[0]}/${b}`, { auth: u, form: { description: "x" } });
  assert.equal(dup.status, 403);
  assert.equal(dup.json.error, "Bucket already exists.");
  const got = await call("GET", `/${u[0]}/${b}`, { auth: u });
  assert.equal(got.status, 200);
  assert.deepEqual(got.json, { bucket_name: b, description: `about ${b}`, properties: {}, events: {} });

  // the bucket's own password opens that bucket only
  const hash = passwordHash(u[0], u[1]);
  const bp = bucketPassword(b, hash);
  assert.equal((await call("GET", `/${u[0]}/${b}`, { auth: [u[0], bp] })).status, 200);
  const b2 = await newBucket(u);
  assert.equal((await call("GET", `/${u[0]}/${b2}`, { auth: [u[0], bp] })).status, 401);
  assert.equal((await call("GET", `/${u[0]}`, { auth: [u[0], bp] })).status, 401);

  // delete, then the name is free again and the new bucket starts empty
  await call("POST", `/${u[0]}/${b}/event/seen`, { form: { visitor_id: "v1" } });
  assert.equal((await call("DELETE", `/${u[0]}/${b}`, { auth: u })).body, "null");
  assert.equal((await call("GET", `/${u[0]}/${b}`, { auth: u })).status, 404);
  assert.equal((await call("POST", `/${u[0]}/${b}`, { auth: u, form: { description: "again" } })).status, 201);
  assert.deepEqual((await call("GET", `/${u[0]}/${b}`, { auth: u })).json.events, {});
});

test("tracking: open routes, bucket auto-created, required parameters, params from query, form and JSON", async () => {
  const u = await newUser();
  const b = uniq("auto");
  const noVisitor = await call("POST", `/nobody${n}/${b}/event/x`);
  assert.equal(noVisitor.status, 400);
  assert.equal(noVisitor.json.error, "Parameter 'visitor_id' is required.");
  const noUser = await call("POST", `/nobody${n}/${b}/event/x?visitor_id=v`);
  assert.equal(noUser.status, 404);
  assert.equal(noUser.json.error, `User nobody${n} does not exist.`);
  const ev = await call("POST", `/${u[0]}/${b}/event/Signed%20up%2Fin`, { json: { visitor_id: "v1" } });
  assert.equal(ev.status, 200);
  assert.equal(ev.body, "null");
  const bucket = await call("GET", `/${u[0]}/${b}`, { auth: u });
  assert.equal(bucket.json.description, b);
  assert.ok(bucket.json.events["Signed up/in"].id.match(/^[A-Za-z0-9_-]{22}$/));
  const noValue = await call("POST", `/${u[0]}/${b}/property/plan`, { form: { visitor_id: "v1" } });
  assert.equal(noValue.status, 400);
  assert.equal(noValue.json.error, "Parameter 'value' is required.");
  const badValue = await call("POST", `/${u[0]}/${b}/property/plan`, { form: { visitor_id: "v1", value: "%%%" } });
  assert.equal(badValue.status, 400);
  const prop = await call("POST", `/${u[0]}/${b}/property/plan?value=${encodeURIComponent(b64("pro"))}`, { form: { visitor_id: "v1" } });
  assert.equal(prop.status, 200, prop.body);
  assert.equal(prop.body, "null");
  const after = await call("GET", `/${u[0]}/${b}`, { auth: u });
  assert.deepEqual(Object.values(after.json.properties), ["plan"]);
  // the bucket is a Clicktrail project and the event a Clicktrail event
  const project = await t.app.services.store.getProject(`hiitrack:${u[0]}/${b}`);
  assert.ok(project);
  const events = await t.app.services.store.listEvents({ project_id: project.id, limit: 10 });
  assert.equal(events.length, 1);
  assert.equal(events[0]!.name, "Signed up/in");
  assert.equal(events[0]!.visitor, "v1");
});

/** The reference's funnel example (§5.5): returns the bucket, its event ids and property value ids. */
async function exampleBucket() {
  const u = await newUser();
  const b = await newBucket(u);
  const [E1, E2, E3] = ["Event 1 x", "Event 2 x", "Event 3 x"];
  const seq: [string, string][] = [
    ["V1", E3],
    ["V1", E3],
    ["V1", E1],
    ["V1", E1],
    ["V2", E1],
    ["V3", E1],
    ["V1", E2],
    ["V2", E2],
    ["V1", E2],
    ["V1", E3],
    ["V1", E3],
  ];
  for (const [v, e] of seq)
    assert.equal((await call("POST", `/${u[0]}/${b}/event/${encodeURIComponent(e)}`, { form: { visitor_id: v } })).status, 200);
  for (const [v, p, val] of [
    ["V1", "P1", "A"],
    ["V1", "P2", "B"],
    ["V2", "P2", "B"],
  ])
    assert.equal(
      (await call("POST", `/${u[0]}/${b}/property/${p}?${new URLSearchParams({ value: b64(val) })}`, { form: { visitor_id: v! } })).status,
      200,
    );
  const events = (await call("GET", `/${u[0]}/${b}`, { auth: u })).json.events;
  const ids = [events[E1].id, events[E2].id, events[E3].id] as string[];
  const valueIdOf = async (p: string, v: string) => {
    const prop = (await call("GET", `/${u[0]}/${b}/property/${p}`, { auth: u })).json;
    return Object.entries(prop.values as Record<string, { value: unknown }>).find(([, x]) => x.value === v)![0];
  };
  return { u, b, names: [E1, E2, E3], ids, A: await valueIdOf("P1", "A"), B: await valueIdOf("P2", "B") };
}

const counts = (l: [string, number][]) => l.map((x) => x[1]);

test("funnels: the reference's example gives exactly its numbers, unsaved, saved, by id and by name", async () => {
  const { u, b, names, ids, A, B } = await exampleBucket();
  const qs = (k: string, vals: string[], extra = "") => vals.map((v) => `${k}=${encodeURIComponent(v)}`).join("&") + extra;
  const byIds = await call("GET", `/${u[0]}/${b}/funnel?${qs("event_id", ids)}`, { auth: u });
  assert.equal(byIds.status, 200, byIds.body);
  assert.deepEqual(byIds.json.event_ids, ids);
  assert.deepEqual(byIds.json.funnel, [
    [ids[0], 4],
    [ids[1], 3],
    [ids[2], 2],
  ]);
  assert.deepEqual(counts(byIds.json.unique_funnel), [3, 2, 1]);
  assert.equal(byIds.json.total[ids[0]!], 4);
  assert.equal(byIds.json.unique_total[ids[0]!], 3);
  assert.equal(byIds.json.path[ids[1]!][ids[0]!], 3);
  assert.equal(byIds.json.unique_path[ids[2]!][ids[1]!], 1);
  const byNames = await call("GET", `/${u[0]}/${b}/funnel?${qs("event", names)}`, { auth: u });
  assert.deepEqual(byNames.json.funnel, byIds.json.funnel);

  const p1 = await call("GET", `/${u[0]}/${b}/funnel?${qs("event_id", ids, "&property=P1")}`, { auth: u });
  assert.deepEqual(p1.json.property.name, "P1");
  assert.deepEqual(p1.json.property.values, { [A]: "A" });
  assert.deepEqual(counts(p1.json.funnels[A]), [2, 2, 2]);
  assert.deepEqual(counts(p1.json.unique_funnels[A]), [1, 1, 1]);
  assert.deepEqual(counts(p1.json.funnel), [4, 3, 2]);
  const p2 = await call("GET", `/${u[0]}/${b}/funnel?${qs("event_id", ids, "&property=P2")}`, { auth: u });
  assert.deepEqual(counts(p2.json.funnels[B]), [3, 3, 2]);
  assert.deepEqual(counts(p2.json.unique_funnels[B]), [2, 2, 1]);
  assert.equal(p2.json.totals[B][ids[0]!], 3);
  assert.equal(p2.json.unique_totals[B][ids[0]!], 2);

  // saved: POST overwrites silently; GET adds the description; DELETE is idempotent
  const one = await call("POST", `/${u[0]}/${b}/funnel/f1`, { auth: u, form: { event_id: [ids[0]!], description: "d" } });
  assert.equal(one.status, 403);
  assert.equal(one.json.error, "Parameter 'event_id' requires at least two values.");
  const noDesc = await call("POST", `/${u[0]}/${b}/funnel/f1`, { auth: u, form: { event_id: ids } });
  assert.equal(noDesc.status, 400);
  assert.equal(noDesc.json.error, "Parameter 'description' is required.");
  const unknown = await call("POST", `/${u[0]}/${b}/funnel/f1`, {
    auth: u,
    form: { event_id: [ids[0]!, "AAAAAAAAAAAAAAAAAAAAAA"], description: "d" },
  });
  assert.equal(unknown.status, 404);
  assert.equal((await call("POST", `/${u[0]}/${b}/funnel/f1`, { auth: u, form: { event_id: ids.slice(0, 2), description: "first" } })).status, 201);
  const saved = await call("POST", `/${u[0]}/${b}/funnel/f1`, { auth: u, form: { event_id: ids, description: "second", property: "P2" } });
  assert.equal(saved.status, 201);
  assert.equal(saved.body, "null");
  const g = await call("GET", `/${u[0]}/${b}/funnel/f1`, { auth: u });
  assert.equal(g.status, 200);
  assert.equal(g.json.description, "second");
  assert.deepEqual(counts(g.json.funnel), [4, 3, 2]);
  assert.deepEqual(counts(g.json.unique_funnels[B]), [2, 2, 1]);
  // the saved funnel is the native one
  const project = await t.app.services.store.getProject(`hiitrack:${u[0]}/${b}`);
  const native = await t.app.services.analytics.store.getFunnelByName(project!.id, "f1");
  assert.deepEqual(native?.query, {
    steps: [{ name: names[0] }, { name: names[1] }, { name: names[2] }],
    order: "ordered",
    window: null,
    hiitrack: { property: "P2" },
  });
  assert.equal((await call("DELETE", `/${u[0]}/${b}/funnel/f1`, { auth: u })).body, "null");
  assert.equal((await call("DELETE", `/${u[0]}/${b}/funnel/f1`, { auth: u })).status, 200);
  const gone = await call("GET", `/${u[0]}/${b}/funnel/f1`, { auth: u });
  assert.equal(gone.status, 404);
  assert.equal(gone.json.error, "Funnel f1 does not exist.");

  const neither = await call("GET", `/${u[0]}/${b}/funnel`, { auth: u });
  assert.equal(neither.status, 403);
  assert.equal(neither.json.error, "Parameters 'event' or 'event_id' required.");
  assert.equal(
    (await call("GET", `/${u[0]}/${b}/funnel?event_id=${ids[0]}`, { auth: u })).json.error,
    "Parameter 'event_id' requires at least two values.",
  );
});

test("event and property reports: totals, paths, per value, series, by id", async () => {
  const { u, b, names, ids, A, B } = await exampleBucket();
  const e3 = await call("GET", `/${u[0]}/${b}/event/${encodeURIComponent(names[2]!)}`, { auth: u });
  assert.equal(e3.status, 200, e3.body);
  assert.equal(e3.json.id, ids[2]);
  assert.equal(e3.json.name, names[2]);
  assert.equal(e3.json.total, 4);
  assert.equal(e3.json.unique_total, 1);
  // V1: E3,E3 (the 2nd after E3), E1,E1, E2,E2, E3,E3 (after E3, E1, E2)
  assert.deepEqual(e3.json.path, { [ids[2]!]: 3, [ids[0]!]: 2, [ids[1]!]: 2 });
  assert.deepEqual(e3.json.unique_path, { [ids[2]!]: 1, [ids[0]!]: 1, [ids[1]!]: 1 });
  assert.deepEqual(Object.values(e3.json.properties).sort(), ["P1", "P2"]);
  const byId = await call("GET", `/${u[0]}/${b}/event_id/${ids[2]}`, { auth: u });
  assert.deepEqual(byId.json, e3.json);
  assert.equal((await call("GET", `/${u[0]}/${b}/event_id/AAAAAAAAAAAAAAAAAAAAAA`, { auth: u })).status, 404);

  const never = await call("GET", `/${u[0]}/${b}/event/never`, { auth: u });
  assert.equal(never.status, 200);
  assert.deepEqual(
    { ...never.json, id: undefined },
    { id: undefined, name: "never", total: {}, unique_total: {}, path: {}, unique_path: {}, properties: {} },
  );

  const e1p2 = await call("GET", `/${u[0]}/${b}/event/${encodeURIComponent(names[0]!)}?property=P2`, { auth: u });
  assert.deepEqual(e1p2.json.values, { [B]: "B" });
  assert.deepEqual(e1p2.json.totals, { [B]: 3 });
  assert.deepEqual(e1p2.json.unique_totals, { [B]: 2 });
  assert.deepEqual(e1p2.json.paths, { [B]: { [ids[2]!]: 2, [ids[0]!]: 1 } });
  assert.equal(e1p2.json.total, undefined);

  const today = Math.floor(Date.now() / 86_400_000) * 86_400;
  const hour = Math.floor(Date.now() / 3_600_000) * 3600;
  const daily = await call("GET", `/${u[0]}/${b}/event/${encodeURIComponent(names[0]!)}?start=${today - 86_400}`, { auth: u });
  assert.deepEqual(daily.json.total, [[today, 4]]);
  assert.deepEqual(daily.json.unique_total, [[today, 3]]);
  assert.deepEqual(daily.json.path, { [ids[2]!]: [[today, 2]], [ids[0]!]: [[today, 1]] });
  const hourly = await call("GET", `/${u[0]}/${b}/event/${encodeURIComponent(names[0]!)}?start=${hour}&interval=hour&property=P1`, { auth: u });
  // (an event in the last second of an hour may fall in the previous one: accept either bucket)
  assert.equal(hourly.json.totals[A][0][1], 2);
  assert.ok([hour, hour - 3600].includes(hourly.json.totals[A][0][0]));
  const later = await call("GET", `/${u[0]}/${b}/event/${encodeURIComponent(names[0]!)}?start=${today + 1}`, { auth: u });
  assert.deepEqual(later.json.total, []);
  const bad = await call("GET", `/${u[0]}/${b}/event/x?start=1&interval=week`, { auth: u });
  assert.equal(bad.status, 400);
  assert.equal(bad.json.error, "Interval must be 'hour' or 'day'");

  const p2 = await call("GET", `/${u[0]}/${b}/property/P2`, { auth: u });
  assert.equal(p2.json.name, "P2");
  assert.match(p2.json.id, /^[A-Za-z0-9_-]{22}$/);
  assert.match(B, /^[A-Za-z0-9_-]{43}$/);
  assert.ok(B.startsWith(p2.json.id.slice(0, 21)));
  // unique visitors holding B who did each event
  assert.deepEqual(p2.json.values[B], { value: "B", total: { [ids[0]!]: 2, [ids[1]!]: 2, [ids[2]!]: 1 } });
  assert.deepEqual(p2.json.events, { [ids[0]!]: names[0], [ids[1]!]: names[1], [ids[2]!]: names[2] });
  const byPid = await call("GET", `/${u[0]}/${b}/property_id/${p2.json.id}`, { auth: u });
  assert.deepEqual(byPid.json, p2.json);
  // value types matter: 1 and "1" are two values; setting a held value again changes nothing
  for (const v of [1, "1", 1]) await call("POST", `/${u[0]}/${b}/property/n?value=${encodeURIComponent(b64(v))}&visitor_id=V3`, {});
  const vals = (await call("GET", `/${u[0]}/${b}/property/n`, { auth: u })).json.values;
  assert.deepEqual(
    Object.values(vals)
      .map((x) => (x as { value: unknown }).value)
      .sort(),
    [1, "1"],
  );
});

test("batch: base64 message, properties before events, the v cookie, error messages", async () => {
  const u = await newUser();
  const b = uniq("batch");
  const msg = (v: unknown) => encodeURIComponent(Buffer.from(JSON.stringify(v)).toString("base64"));
  const missing = await call("GET", `/${u[0]}/${b}/batch`);
  assert.equal(missing.status, 400);
  assert.equal(missing.json.error, "Parameter 'message' is required.");
  const fresh = await call("GET", `/${u[0]}/${b}/batch?message=${msg([["Landed", "Signed up"], [["plan", "pro"]]])}`);
  assert.equal(fresh.status, 200, fresh.body);
  const vid = fresh.json.visitor_id as string;
  assert.match(vid, /^[0-9a-f]{32}$/);
  const cookie = fresh.headers["set-cookie"]![0]!;
  assert.match(cookie, new RegExp(`^v=${vid}; Expires=\\w{3}, \\d{2}-\\w{3}-\\d{4} \\d{2}:\\d{2}:\\d{2} PST; Path=/$`));
  // the cookie names the visitor next time, and no new cookie is set
  const again = await call("GET", `/${u[0]}/${b}/batch?message=${msg([["Signed up"], []])}`, { headers: { cookie: `v=${vid}` } });
  assert.equal(again.json.visitor_id, vid);
  assert.equal(again.headers["set-cookie"], undefined);
  // a visitor_id different from the cookie wins and is cookied
  const other = await call("GET", `/${u[0]}/${b}/batch?visitor_id=me&message=${msg([[], []])}`, { headers: { cookie: `v=${vid}` } });
  assert.equal(other.json.visitor_id, "me");
  assert.match(String(other.headers["set-cookie"]), /^v=me;/);
  // the batch's events are segmented by the batch's properties
  const report = await call("GET", `/${u[0]}/${b}/event/Signed%20up?property=plan`, { auth: u });
  assert.deepEqual(Object.values(report.json.totals), [2]);
  assert.deepEqual(Object.values(report.json.unique_totals), [1]);
  for (const [m, err] of [
    [[1, 2, 3], "Batch request must contain base64 encoded list of two values: event_names, properties"],
    [["x", []], "event_names must be a list."],
    [[[], {}], "properties must be a list of tuples."],
    [[[], [["a"]]], "properties must be in [key, value] format."],
  ] as const) {
    const r = await call("GET", `/${u[0]}/${b}/batch?visitor_id=v9&message=${msg(m)}`);
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { visitor_id: "v9", error: err });
  }
  const garbage = await call("GET", `/${u[0]}/${b}/batch?visitor_id=v9&message=notbase64json`);
  assert.deepEqual(garbage.json, {
    visitor_id: "v9",
    error: "Batch request must contain base64 encoded list of two values: event_names, properties",
  });
  const noUser = await call("GET", `/nobody-${b}/${b}/batch?message=${msg([[], []])}`);
  assert.equal(noUser.status, 404);
});

test("JSONP callback and request_id, on results and errors", async () => {
  const u = await newUser();
  const b = uniq("jsonp");
  const msg = encodeURIComponent(Buffer.from(JSON.stringify([["e"], []])).toString("base64"));
  const r = await call("GET", `/${u[0]}/${b}/batch?visitor_id=abc&message=${msg}&callback=cb&request_id=r1`);
  assert.equal(r.body, 'cb({"visitor_id":"abc","request_id":"r1"});');
  assert.equal(r.headers["content-type"], "text/javascript");
  const rid = await call("GET", `/${u[0]}/${b}?request_id=42`, { auth: u });
  assert.equal(rid.json.request_id, "42");
  const err = await call("GET", `/${u[0]}/${b}/funnel?request_id=7`, { auth: u });
  assert.equal(err.status, 403);
  assert.equal(err.json.request_id, "7");
  const nul = await call("POST", `/${u[0]}/${b}/event/e?visitor_id=x&request_id=1`);
  assert.equal(nul.body, "null");
  const unauth = await call("GET", `/${u[0]}?callback=f`);
  assert.equal(unauth.status, 401);
  assert.equal(unauth.body, `f(${AUTH_BODY});`);
  const evil = await call("GET", `/${u[0]}/${b}/batch?visitor_id=a&message=${msg}&callback=${encodeURIComponent("alert(1)//")}`);
  assert.equal(evil.status, 400);
  assert.equal(evil.headers["content-type"], "application/json");
});

test("wrong Basic credentials are throttled per client address (429), even the right ones then", async () => {
  const u = await newUser();
  for (let i = 0; i < 20; i++) assert.equal((await call("GET", `/${u[0]}`, { auth: [u[0], "wrong"] })).status, 401);
  const blocked = await call("GET", `/${u[0]}`, { auth: u });
  assert.equal(blocked.status, 429);
  assert.ok(Number(blocked.headers["retry-after"]) > 0);
  assert.match(blocked.json.error, /^Too many wrong credentials/);
  // tracking needs no credentials and is not throttled
  assert.equal((await call("POST", `/${u[0]}/b/event/e?visitor_id=x`)).status, 200);
});

test("at the root: HiiTrack paths, with Clicktrail's own paths kept", async () => {
  const root = await startApp({ CLICKTRAIL_DIALECTS: "hiitrack" });
  try {
    const c = await req(root.base, "POST", "/rootuser", {
      key: null,
      raw: "password=pw",
      headers: { "content-type": "application/x-www-form-urlencoded" },
    });
    assert.equal(c.status, 201);
    assert.equal((await req(root.base, "GET", "/", { key: null })).status, 301);
    assert.equal((await req(root.base, "GET", "/healthz", { key: null })).status, 200);
    const api = await req(root.base, "GET", "/api/v1/nothing-here");
    assert.equal(api.status, 404);
    assert.match(String(api.headers["content-type"]), /^application\/problem\+json/);
    assert.equal(
      (await req(root.base, "POST", "/api", { key: null, raw: "password=x", headers: { "content-type": "application/x-www-form-urlencoded" } }))
        .status,
      404,
    );
    const nf = await req(root.base, "GET", "/a/b/c/d/e/f", { key: null });
    assert.equal(nf.body, '{"error":"Not found"}');
  } finally {
    await root.close();
  }
});
