/**
 * Stats, orphan visits, export, visitor identity and client IPs, over real HTTP on loopback against real SQLite files.
 *
 * Clicks made over HTTP get the server's clock, so tests that need clicks at chosen instants (DST days, week edges)
 * hand events to the app's real EventWriter (the same group commit and rollups the redirect uses) and then read the
 * stats over HTTP.
 */
import { clickEvent } from "./events.js";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { parse } from "csv-parse/sync";
import { hit, req, startApp, type Res, type TestApp } from "./helpers.js";
import type { EventRow } from "../src/store/port.js";

const CHROME_LINUX = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36";
const IPHONE =
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const EDGE_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0";
const GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const HOUR = 3_600_000;
const EXPORT_HEADER =
  "id,time,name,link_id,domain_id,campaign_id,channel,visitor,ip,user_agent,referrer,browser,os,device,platform,is_bot,country,rule,source,data";

function assertProblem(r: Res, status: number, mention?: string) {
  assert.equal(r.status, status, r.body);
  assert.match(String(r.headers["content-type"]), /^application\/problem\+json/);
  if (mention) assert.ok(`${r.json.detail} ${r.json.field ?? ""}`.includes(mention), r.body);
}

async function mkDomain(base: string, hostname: string, extra: Record<string, unknown> = {}) {
  const r = await req(base, "POST", "/api/v1/domains", { body: { hostname, ...extra } });
  assert.equal(r.status, 201, r.body);
  return r.json as { id: number; hostname: string };
}

async function mkLink(base: string, body: Record<string, unknown>) {
  const r = await req(base, "POST", "/api/v1/links", { body });
  assert.equal(r.status, 201, r.body);
  return r.json as { id: number; slug: string };
}

async function getJson(base: string, path: string) {
  const r = await req(base, "GET", path);
  assert.equal(r.status, 200, `${path}: ${r.body.slice(0, 400)}`);
  return r.json;
}

async function exportNdjson(base: string, query = ""): Promise<any[]> {
  const r = await req(base, "GET", `/api/v1/clicks/export?format=ndjson${query ? "&" + query : ""}`);
  assert.equal(r.status, 200, r.body);
  return r.body
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l));
}

const toMap = (rows: { value: string; clicks: number }[]) => Object.fromEntries(rows.map((r) => [r.value, r.clicks]));
const seriesMap = (s: { t: string; clicks: number }[]) => Object.fromEntries(s.filter((b) => b.clicks > 0).map((b) => [b.t, b.clicks]));
const sumSeries = (s: { clicks: number }[]) => s.reduce((n, b) => n + b.clicks, 0);

/** Offset east of UTC in ms of `tz` at `ms`, read from Intl's "GMT+13:00" name (independent of src/util/time.ts). */
function offsetOf(ms: number, tz: string): number {
  const name = new Intl.DateTimeFormat("en-US", { timeZone: tz, timeZoneName: "longOffset" })
    .formatToParts(ms)
    .find((p) => p.type === "timeZoneName")!.value;
  const m = /^GMT(?:([+-])(\d{2}):(\d{2}))?$/.exec(name);
  assert.ok(m, name);
  if (!m[1]) return 0;
  return (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) * 60_000;
}

/** UTC instant of the local midnight that starts the local day containing `ms` in `tz`. */
function localDayStart(ms: number, tz: string): number {
  const ymd = new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" }).format(ms);
  const [y, mo, d] = ymd.split("-").map(Number) as [number, number, number];
  const wall = Date.UTC(y, mo - 1, d);
  let guess = wall - offsetOf(ms, tz);
  guess = wall - offsetOf(guess, tz);
  const check = new Intl.DateTimeFormat("en-CA", {
    timeZone: tz,
    hourCycle: "h23",
    year: "numeric",
    month: "2-digit",
    day: "2-digit",
    hour: "2-digit",
    minute: "2-digit",
  }).format(guess);
  assert.equal(check, `${ymd}, 00:00`, `local midnight of ${ymd} in ${tz}`);
  return guess;
}

// ---------------------------------------------------------------------------------------------------------------------
describe("stats of links, domains and the project", () => {
  let t: TestApp;
  let base: string;
  let dom: { id: number };
  let a: { id: number; slug: string };
  let b: { id: number; slug: string };
  let vid = "";

  before(async () => {
    t = await startApp();
    base = t.base;
    dom = await mkDomain(base, "s.example");
    await mkDomain(base, "other.example");
    a = await mkLink(base, { domain: "s.example", slug: "a", target: "https://example.com/a" });
    b = await mkLink(base, { domain: "s.example", slug: "b", target: "https://example.com/b" });
    await mkLink(base, { domain: "other.example", slug: "o", target: "https://example.com/o" });

    // link a: three human clicks by two visitors, two bot clicks
    const first = await hit(base, "s.example", "/a/email", { referer: "https://news.example.com/story?id=1" });
    assert.equal(first.status, 302);
    vid = /ct_vid=([^;]+)/.exec(String(first.headers["set-cookie"]))![1]!;
    assert.equal((await hit(base, "s.example", "/a", { cookie: `ct_vid=${vid}` })).status, 302);
    assert.equal((await hit(base, "s.example", "/a/sms", { "user-agent": IPHONE, referer: "https://t.co/xyz" })).status, 302);
    assert.equal((await hit(base, "s.example", "/a", { "user-agent": GOOGLEBOT })).status, 302);
    assert.equal((await hit(base, "s.example", "/a", {}, "HEAD")).status, 302);
    // link b: one click; other.example: one click
    assert.equal((await hit(base, "s.example", "/b", { "user-agent": EDGE_WINDOWS })).status, 302);
    assert.equal((await hit(base, "other.example", "/o")).status, 302);
  });
  after(async () => {
    await t?.close();
  });

  test("link stats: clicks, unique visitors, bot clicks apart, breakdowns", async () => {
    const s = await getJson(base, `/api/v1/links/${a.id}/stats`);
    assert.equal(s.clicks, 3);
    assert.equal(s.bot_clicks, 2);
    assert.equal(s.visitors, 2, "the cookie visitor counts once");
    assert.equal(s.bots, "exclude");
    assert.equal(s.tz, "UTC");
    assert.equal(s.interval, "day", "30 days by default, by day");
    assert.equal(sumSeries(s.series), 3);
    const br = s.breakdowns;
    assert.deepEqual(toMap(br.referrer), { "news.example.com": 1, "t.co": 1, "(direct)": 1 });
    assert.deepEqual(toMap(br.browser), { Chrome: 2, "Mobile Safari": 1 });
    assert.deepEqual(toMap(br.os), { Linux: 2, iOS: 1 });
    assert.deepEqual(toMap(br.device), { desktop: 2, mobile: 1 });
    assert.deepEqual(toMap(br.platform), { linux: 2, ios: 1 });
    assert.deepEqual(toMap(br.channel), { email: 1, default: 1, sms: 1 });
    // values not stored but read from the total (no GeoIP database, no rules; a link counts clicks only)
    assert.deepEqual(toMap(br.country), { "(unknown)": 3 });
    assert.deepEqual(toMap(br.rule), { "(default)": 3 });
    assert.deepEqual(toMap(br.name), { click: 3 });
    assert.equal(br.browser[0].value, "Chrome", "breakdowns are sorted by clicks");
    const l = await getJson(base, `/api/v1/links/${a.id}`);
    assert.equal(l.clicks, 3, "the link's click counter counts non-bot clicks");
  });

  test("bots=include counts bot clicks and bot visitors", async () => {
    const s = await getJson(base, `/api/v1/links/${a.id}/stats?bots=include`);
    assert.equal(s.clicks, 5);
    assert.equal(s.bot_clicks, null);
    assert.equal(s.bots, "include");
    assert.equal(s.visitors, 4, "Googlebot and the HEAD client are two more (hashed) visitors");
    assert.equal(toMap(s.breakdowns.device).bot, 1);
    assert.equal(toMap(s.breakdowns.browser).Chrome, 3, "the HEAD request had a Chrome user agent");
    assert.deepEqual(toMap(s.breakdowns.name), { click: 5 });
    assert.deepEqual(toMap(s.breakdowns.referrer), { "news.example.com": 1, "t.co": 1, "(direct)": 3 });
    assert.equal(sumSeries(s.series), 5);
  });

  test("top limits each breakdown", async () => {
    const s = await getJson(base, `/api/v1/links/${a.id}/stats?top=1`);
    for (const rows of Object.values(s.breakdowns) as unknown[][]) assert.ok(rows.length <= 1);
    assert.deepEqual(s.breakdowns.browser, [{ value: "Chrome", clicks: 2 }]);
  });

  test("domain stats sum the domain's links; project stats every domain", async () => {
    const d = await getJson(base, `/api/v1/domains/${dom.id}/stats`);
    assert.equal(d.clicks, 4);
    assert.equal(d.visitors, 3);
    assert.equal(d.orphan_visits, 0);
    assert.deepEqual(toMap(d.breakdowns.browser), { Chrome: 2, "Mobile Safari": 1, Edge: 1 });
    assert.deepEqual(toMap(d.breakdowns.platform), { linux: 2, ios: 1, windows: 1 });
    const p = await getJson(base, "/api/v1/stats");
    assert.equal(p.clicks, 5);
    assert.equal(p.bot_clicks, 2);
    const pb = await getJson(base, "/api/v1/stats?bots=include");
    assert.equal(pb.clicks, 7);
    const bs = await getJson(base, `/api/v1/links/${b.id}/stats`);
    assert.equal(bs.clicks, 1);
    assert.deepEqual(toMap(bs.breakdowns.os), { Windows: 1 });
  });

  test("a range before the clicks is empty; a range of two days or less is by hour", async () => {
    const now = Date.now();
    const old = await getJson(base, `/api/v1/links/${a.id}/stats?from=2020-01-01T00:00:00Z&to=2020-01-08T00:00:00Z`);
    assert.equal(old.clicks, 0);
    assert.equal(old.visitors, 0);
    assert.equal(old.series.length, 7);
    assert.ok(old.series.every((x: { clicks: number }) => x.clicks === 0));
    assert.equal(old.from, "2020-01-01T00:00:00.000Z");
    assert.equal(old.to, "2020-01-08T00:00:00.000Z");
    const recent = await getJson(base, `/api/v1/links/${a.id}/stats?from=${now - 3 * HOUR}&to=${now + HOUR}`);
    assert.equal(recent.interval, "hour");
    assert.equal(recent.clicks, 3);
    assert.equal(recent.series.length, now % HOUR === 0 ? 4 : 5);
  });

  test("stats of another project's link or domain are 404", async () => {
    const p = await t.app.services.auth.createProject("stats-b");
    const { token } = await t.app.services.auth.createKey(p.id, "b", ["stats:read", "links:read"]);
    assertProblem(await req(base, "GET", `/api/v1/links/${a.id}/stats`, { key: token }), 404);
    assertProblem(await req(base, "GET", `/api/v1/domains/${dom.id}/stats`, { key: token }), 404);
    const own = await req(base, "GET", "/api/v1/stats", { key: token });
    assert.equal(own.status, 200);
    assert.equal(own.json.clicks, 0, "B's project has no clicks");
    const ex = await req(base, "GET", "/api/v1/clicks/export?format=ndjson", { key: token });
    assert.equal(ex.status, 200);
    assert.equal(ex.body.trim(), "", "B exports none of A's clicks");
    const ex2 = await req(base, "GET", `/api/v1/clicks/export?format=ndjson&link_id=${a.id}`, { key: token });
    assert.equal(ex2.body.trim(), "", "not even by naming A's link id");
  });

  test("the series puts a click in its local hour and day: UTC, Pacific/Auckland, America/Los_Angeles", async () => {
    const events = await exportNdjson(base, `link_id=${b.id}`);
    assert.equal(events.length, 1);
    const ts = Date.parse(events[0].time);
    const hourly = await getJson(base, `/api/v1/links/${b.id}/stats?interval=hour&from=${ts - 5 * HOUR}&to=${ts + 5 * HOUR}`);
    assert.deepEqual(seriesMap(hourly.series), { [new Date(ts - (ts % HOUR)).toISOString()]: 1 });
    const from = ts - 3 * 86_400_000;
    const to = ts + 3 * 86_400_000;
    for (const tz of ["UTC", "Pacific/Auckland", "America/Los_Angeles", "Europe/Paris"]) {
      const s = await getJson(base, `/api/v1/links/${b.id}/stats?interval=day&tz=${encodeURIComponent(tz)}&from=${from}&to=${to}`);
      assert.equal(s.tz, tz);
      const want = new Date(localDayStart(ts, tz)).toISOString();
      assert.deepEqual(seriesMap(s.series), { [want]: 1 }, `${tz}: ${JSON.stringify(s.series)}`);
      // buckets are consecutive local midnights
      for (const x of s.series)
        assert.equal(new Date(localDayStart(Date.parse(x.t), tz)).toISOString(), x.t, `${tz} bucket ${x.t} is a local midnight`);
      assert.ok(s.series.length >= 6 && s.series.length <= 7, `${tz}: ${s.series.length} buckets`);
    }
  });

  test("an expired link's refused clicks are not counted as clicks", async () => {
    const x = await mkLink(base, { domain: "s.example", slug: "expired", target: "https://example.com/x", expires_at: "2021-01-01T00:00:00Z" });
    assert.equal((await hit(base, "s.example", "/expired")).status, 410);
    const s = await getJson(base, `/api/v1/links/${x.id}/stats?bots=include`);
    assert.equal(s.clicks, 0);
    const ev = await exportNdjson(base, `link_id=${x.id}`);
    assert.equal(ev.length, 1);
    assert.equal(ev[0].name, "click_refused");
    assert.deepEqual(ev[0].data, { reason: "expired" });
    assert.equal((await exportNdjson(base, `link_id=${x.id}&name=click`)).length, 0, "the name filter");
    assert.equal((await exportNdjson(base, `link_id=${x.id}&name=click_refused`)).length, 1);
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("orphan visits", () => {
  let t: TestApp;
  before(async () => {
    t = await startApp();
  });
  after(async () => {
    await t?.close();
  });

  test("unknown slugs and the root are recorded as orphan visits of the domain and the project", async () => {
    const base = t.base;
    const plain = await mkDomain(base, "orph.example");
    const fb = await mkDomain(base, "orph-fb.example", { fallback_url: "https://example.com/home" });
    await mkLink(base, { domain: "orph.example", slug: "real", target: "https://example.com/" });
    assert.equal((await hit(base, "orph.example", "/nope")).status, 404);
    assert.equal((await hit(base, "orph.example", "/")).status, 404);
    assert.equal((await hit(base, "orph.example", "/nope", {}, "HEAD")).status, 404);
    assert.equal((await hit(base, "orph.example", "/nope", { "user-agent": GOOGLEBOT })).status, 404);
    const f = await hit(base, "orph-fb.example", "/missing/channel");
    assert.equal(f.status, 302);
    assert.equal(f.headers.location, "https://example.com/home");
    assert.equal((await hit(base, "orph.example", "/real")).status, 302);
    // robots.txt is not a visit
    assert.equal((await hit(base, "orph.example", "/robots.txt")).status, 200);

    let s = await getJson(base, "/api/v1/stats");
    assert.equal(s.orphan_visits, 3, "three browser visits on unknown paths");
    assert.equal(s.clicks, 1, "orphans are not clicks");
    s = await getJson(base, "/api/v1/stats?bots=include");
    assert.equal(s.orphan_visits, 5, "plus the HEAD and the Googlebot visit");
    s = await getJson(base, `/api/v1/domains/${plain.id}/stats`);
    assert.equal(s.orphan_visits, 2);
    assert.equal(s.clicks, 1);
    s = await getJson(base, `/api/v1/domains/${fb.id}/stats`);
    assert.equal(s.orphan_visits, 1);
    assert.equal(s.clicks, 0);

    const ev = await exportNdjson(base, "domain=orph.example");
    const orphans = ev.filter((e) => e.link_id === null);
    assert.equal(orphans.length, 4);
    assert.deepEqual(orphans.map((e) => e.data.orphan).sort(), ["base_url", "unknown_slug", "unknown_slug", "unknown_slug"]);
    assert.ok(orphans.some((e) => e.data.path === "/nope"));
    assert.equal(orphans.filter((e) => e.is_bot).length, 2);
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("series at chosen instants (DST days, week starts)", () => {
  let t: TestApp;
  let base: string;
  let linkId = 0;
  let domainId = 0;
  let projectId = 0;

  async function clicksAt(times: string[], visitor = (i: number) => `v${i}`, link = linkId) {
    const events: EventRow[] = times.map((iso, i) =>
      clickEvent({
        project_id: projectId,
        ts: Date.parse(iso),
        visitor: visitor(i),
        link_id: link,
        domain_id: domainId,
        platform: "linux",
        ip: "127.0.0.0",
        ua: CHROME_LINUX,
        browser: "Chrome",
        os: "Linux",
        device: "desktop",
      }),
    );
    await t.app.services.writer.writeMany(events);
  }

  before(async () => {
    t = await startApp();
    base = t.base;
    domainId = (await mkDomain(base, "dst.example")).id;
    linkId = (await mkLink(base, { domain: "dst.example", slug: "d", target: "https://example.com/" })).id;
    projectId = (await t.app.services.store.getProject("default"))!.id;
    await clicksAt([
      // America/Los_Angeles springs forward on 2024-03-10 at 02:00 PST (10:00Z)
      "2024-03-10T07:30:00Z", // Mar 9, 23:30 PST
      "2024-03-10T09:30:00Z", // Mar 10, 01:30 PST
      "2024-03-10T12:00:00Z", // Mar 10, 05:00 PDT
      "2024-03-11T06:30:00Z", // Mar 10, 23:30 PDT
      "2024-03-11T07:30:00Z", // Mar 11, 00:30 PDT
      // Pacific/Auckland falls back on 2024-04-07 at 03:00 NZDT (14:00Z on the 6th)
      "2024-04-06T10:30:00Z", // Apr 6, 23:30 NZDT (Saturday)
      "2024-04-07T11:30:00Z", // Apr 7, 23:30 NZST (Sunday)
      "2024-04-07T12:30:00Z", // Apr 8, 00:30 NZST (Monday)
    ]);
  });
  after(async () => {
    await t?.close();
  });

  const stats = (q: string) => getJson(base, `/api/v1/links/${linkId}/stats?${q}`);

  test("days in America/Los_Angeles across the spring-forward change", async () => {
    const s = await stats("interval=day&tz=America/Los_Angeles&from=2024-03-09T08:00:00Z&to=2024-03-12T07:00:00Z");
    assert.deepEqual(s.series, [
      { t: "2024-03-09T08:00:00.000Z", clicks: 1 },
      { t: "2024-03-10T08:00:00.000Z", clicks: 3 },
      { t: "2024-03-11T07:00:00.000Z", clicks: 1 },
    ]);
    assert.equal(s.clicks, 5);
    assert.equal(s.visitors, 5);
    const utc = await stats("interval=day&from=2024-03-09T00:00:00Z&to=2024-03-12T00:00:00Z");
    assert.deepEqual(utc.series, [
      { t: "2024-03-09T00:00:00.000Z", clicks: 0 },
      { t: "2024-03-10T00:00:00.000Z", clicks: 3 },
      { t: "2024-03-11T00:00:00.000Z", clicks: 2 },
    ]);
  });

  test("hours in America/Los_Angeles across the missing hour: one bucket per real hour", async () => {
    const s = await stats("interval=hour&tz=America/Los_Angeles&from=2024-03-10T08:00:00Z&to=2024-03-10T13:00:00Z");
    assert.deepEqual(
      s.series.map((x: { t: string }) => x.t),
      ["08", "09", "10", "11", "12"].map((h) => `2024-03-10T${h}:00:00.000Z`),
    );
    assert.deepEqual(seriesMap(s.series), { "2024-03-10T09:00:00.000Z": 1, "2024-03-10T12:00:00.000Z": 1 });
  });

  test("days in Pacific/Auckland across the fall-back change", async () => {
    const s = await stats("interval=day&tz=Pacific/Auckland&from=2024-04-05T11:00:00Z&to=2024-04-09T12:00:00Z");
    assert.deepEqual(s.series, [
      { t: "2024-04-05T11:00:00.000Z", clicks: 1 }, // Apr 6 00:00 NZDT: the Saturday 23:30 click
      { t: "2024-04-06T11:00:00.000Z", clicks: 1 }, // Apr 7 00:00 NZDT (a 25-hour day): Sunday 23:30 NZST
      { t: "2024-04-07T12:00:00.000Z", clicks: 1 }, // Apr 8 00:00 NZST: Monday 00:30
      { t: "2024-04-08T12:00:00.000Z", clicks: 0 },
    ]);
    const utc = await stats("interval=day&from=2024-04-05T00:00:00Z&to=2024-04-09T00:00:00Z");
    assert.deepEqual(seriesMap(utc.series), { "2024-04-06T00:00:00.000Z": 1, "2024-04-07T00:00:00.000Z": 2 });
  });

  test("weeks start on the local Monday", async () => {
    const nz = await stats("interval=week&tz=Pacific/Auckland&from=2024-03-24T11:00:00Z&to=2024-04-21T12:00:00Z");
    assert.deepEqual(nz.series, [
      { t: "2024-03-24T11:00:00.000Z", clicks: 0 }, // Mon Mar 25 NZDT
      { t: "2024-03-31T11:00:00.000Z", clicks: 2 }, // Mon Apr 1 NZDT: the Saturday and Sunday clicks
      { t: "2024-04-07T12:00:00.000Z", clicks: 1 }, // Mon Apr 8 NZST
      { t: "2024-04-14T12:00:00.000Z", clicks: 0 },
    ]);
    const utc = await stats("interval=week&from=2024-03-25T00:00:00Z&to=2024-04-15T00:00:00Z");
    assert.deepEqual(utc.series, [
      { t: "2024-03-25T00:00:00.000Z", clicks: 0 },
      { t: "2024-04-01T00:00:00.000Z", clicks: 3 }, // all three are Apr 6-7 in UTC
      { t: "2024-04-08T00:00:00.000Z", clicks: 0 },
    ]);
  });

  test("visitors count only visits inside the range (no visitors without clicks)", async () => {
    const v = await mkLink(base, { domain: "dst.example", slug: "visitors", target: "https://example.com/" });
    await clicksAt(["2024-05-01T09:30:00Z", "2024-05-01T15:30:00Z"], (i) => `range-${i}`, v.id);
    const q = (from: string, to: string) => getJson(base, `/api/v1/links/${v.id}/stats?from=${from}&to=${to}`);
    let s = await q("2024-05-01T00:00:00Z", "2024-05-02T00:00:00Z");
    assert.equal(s.clicks, 2);
    assert.equal(s.visitors, 2);
    s = await q("2024-05-01T12:00:00Z", "2024-05-01T14:00:00Z");
    assert.equal(s.clicks, 0);
    assert.equal(s.visitors, 0, "no click in the range, so no visitor either");
    s = await q("2024-05-01T12:00:00Z", "2024-05-02T00:00:00Z");
    assert.equal(s.clicks, 1);
    assert.equal(s.visitors, 1, "only the afternoon visitor");
  });

  test("a half-hour time zone (Asia/Kolkata) buckets exactly, or is refused with 400", async () => {
    // 2024-03-10T18:45Z is 2024-03-11 00:15 IST: it belongs to the local day that starts at 2024-03-10T18:30Z
    const k = await mkLink(base, { domain: "dst.example", slug: "kolkata", target: "https://example.com/" });
    await clicksAt(["2024-03-10T12:00:00Z", "2024-03-10T18:45:00Z"], () => "kolkata", k.id);
    const r = await req(base, "GET", `/api/v1/links/${k.id}/stats?interval=day&tz=Asia/Kolkata&from=2024-03-09T18:30:00Z&to=2024-03-11T18:30:00Z`);
    if (r.status === 400) {
      assertProblem(r, 400, "tz");
      return;
    }
    assert.equal(r.status, 200, r.body);
    // 12:00Z is 17:30 IST on Mar 10 (day starting 2024-03-09T18:30Z); 18:45Z is 00:15 IST on Mar 11
    assert.deepEqual(r.json.series, [
      { t: "2024-03-09T18:30:00.000Z", clicks: 1 },
      { t: "2024-03-10T18:30:00.000Z", clicks: 1 },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("export", () => {
  let t: TestApp;
  let base: string;
  let l1 = 0;
  let l2 = 0;

  before(async () => {
    t = await startApp();
    base = t.base;
    await mkDomain(base, "ex.example");
    l1 = (await mkLink(base, { domain: "ex.example", slug: "one", target: "https://example.com/1" })).id;
    l2 = (await mkLink(base, { domain: "ex.example", slug: "two", target: "https://example.com/2" })).id;
  });
  after(async () => {
    await t?.close();
  });

  test("an empty export is a CSV header (and an empty NDJSON body)", async () => {
    const r = await req(base, "GET", "/api/v1/clicks/export");
    assert.equal(r.status, 200);
    assert.match(String(r.headers["content-type"]), /^text\/csv/);
    assert.match(String(r.headers["content-disposition"]), /attachment; filename="clicks\.csv"/);
    assert.equal(r.body.trim(), EXPORT_HEADER);
    const n = await req(base, "GET", "/api/v1/clicks/export?format=ndjson");
    assert.equal(n.status, 200);
    assert.match(String(n.headers["content-type"]), /^application\/x-ndjson/);
    assert.equal(n.body, "");
  });

  test("CSV and NDJSON list every click with its columns; link_id, domain, from and to filter", async () => {
    assert.equal((await hit(base, "ex.example", "/one/email", { referer: "https://news.example.com/" })).status, 302);
    await new Promise((r) => setTimeout(r, 5));
    assert.equal((await hit(base, "ex.example", "/two", { "user-agent": GOOGLEBOT })).status, 302);
    await new Promise((r) => setTimeout(r, 5));
    assert.equal((await hit(base, "ex.example", "/one", { "user-agent": IPHONE })).status, 302);
    assert.equal((await hit(base, "ex.example", "/zzz")).status, 404);

    const csv = await req(base, "GET", "/api/v1/clicks/export?format=csv");
    assert.equal(csv.status, 200);
    assert.equal(csv.body.split("\n")[0], EXPORT_HEADER);
    const rows = parse(csv.body, { columns: true }) as Record<string, string>[];
    assert.equal(rows.length, 4);
    assert.deepEqual(
      rows.map((r) => r.link_id),
      [String(l1), String(l2), String(l1), ""],
    );
    assert.equal(rows[0]!.channel, "email");
    assert.equal(rows[0]!.referrer, "https://news.example.com/");
    assert.equal(rows[0]!.browser, "Chrome");
    assert.equal(rows[0]!.is_bot, "false");
    assert.equal(rows[0]!.name, "click");
    assert.equal(rows[0]!.source, "link");
    assert.equal(rows[1]!.is_bot, "true");
    assert.equal(rows[1]!.user_agent, GOOGLEBOT);
    assert.equal(rows[2]!.os, "iOS");
    assert.equal(JSON.parse(rows[3]!.data!).orphan, "unknown_slug");
    assert.ok(rows.every((r) => !Number.isNaN(Date.parse(r.time!))));

    const all = await exportNdjson(base);
    assert.equal(all.length, 4);
    assert.deepEqual(Object.keys(all[0]), EXPORT_HEADER.split(","));
    assert.equal(all[1].is_bot, true);
    assert.equal(all[0].domain_id, all[3].domain_id);

    assert.deepEqual(
      (await exportNdjson(base, `link_id=${l1}`)).map((e) => e.link_id),
      [l1, l1],
    );
    assert.deepEqual(
      (await exportNdjson(base, `link_id=${l2}`)).map((e) => e.link_id),
      [l2],
    );
    assert.equal((await exportNdjson(base, "link_id=999999")).length, 0);
    assert.equal((await exportNdjson(base, "domain=EX.example")).length, 4);
    const t1 = all[1].time as string;
    const fromSecond = await exportNdjson(base, `from=${encodeURIComponent(t1)}`);
    assert.deepEqual(
      fromSecond.map((e) => e.id),
      all.slice(1).map((e) => e.id),
      "from is inclusive",
    );
    const beforeSecond = await exportNdjson(base, `to=${encodeURIComponent(t1)}`);
    assert.deepEqual(
      beforeSecond.map((e) => e.id),
      [all[0].id],
      "to is exclusive",
    );
    const ms = Date.parse(t1);
    assert.deepEqual(
      (await exportNdjson(base, `from=${ms}&to=${ms + 1}`)).map((e) => e.id),
      [all[1].id],
      "epoch ms works",
    );
    const csvFiltered = await req(base, "GET", `/api/v1/clicks/export?format=csv&link_id=${l2}`);
    const fr = parse(csvFiltered.body, { columns: true }) as Record<string, string>[];
    assert.equal(fr.length, 1);
    assert.equal(csvFiltered.body.split("\n")[0], EXPORT_HEADER);
  });

  test("a large export pages through the log (more rows than one page)", async () => {
    const n = 2500;
    const projectId = (await t.app.services.store.getProject("default"))!.id;
    const base0 = Date.parse("2023-01-01T00:00:00Z");
    const events: EventRow[] = Array.from({ length: n }, (_, i) =>
      clickEvent({ project_id: projectId, ts: base0 + i, visitor: `bulk${i}`, link_id: l2 }),
    );
    await t.app.services.writer.writeMany(events);
    const rows = await exportNdjson(base, `from=2023-01-01T00:00:00Z&to=2023-01-02T00:00:00Z`);
    assert.equal(rows.length, n);
    assert.equal(new Set(rows.map((r) => r.id)).size, n);
    const csv = await req(base, "GET", `/api/v1/clicks/export?from=2023-01-01T00:00:00Z&to=2023-01-02T00:00:00Z`);
    const parsed = parse(csv.body, { columns: true }) as unknown[];
    assert.equal(parsed.length, n, "one header, no repeated header between pages");
    assert.equal(csv.body.split("\n").filter((l) => l === EXPORT_HEADER).length, 1);
  });
});

// ---------------------------------------------------------------------------------------------------------------------
describe("visitors and client addresses", () => {
  async function oneClick(env: Record<string, string>, headers: Record<string, string> = {}, host = "ip.example") {
    const t = await startApp(env);
    try {
      await mkDomain(t.base, "ip.example");
      await mkLink(t.base, { domain: "ip.example", slug: "x", target: "https://example.com/" });
      const r = await hit(t.base, host, "/x", headers);
      const ev = await exportNdjson(t.base);
      return { r, ev };
    } finally {
      await t.close();
    }
  }

  test("the IP is anonymised by default, and X-Forwarded-For is ignored without trusted proxies", async () => {
    const { r, ev } = await oneClick({}, { "x-forwarded-for": "203.0.113.7" });
    assert.equal(r.status, 302);
    assert.equal(ev.length, 1);
    assert.equal(ev[0].ip, "127.0.0.0");
  });

  test("X-Forwarded-For is honoured from a trusted proxy (still anonymised)", async () => {
    const { ev } = await oneClick({ CLICKTRAIL_TRUSTED_PROXIES: "127.0.0.1" }, { "x-forwarded-for": "198.51.100.1, 203.0.113.7" });
    assert.equal(ev[0].ip, "203.0.113.0");
  });

  test("CLICKTRAIL_IP_MODE=full keeps the whole address; none keeps nothing", async () => {
    let { ev } = await oneClick({ CLICKTRAIL_IP_MODE: "full" });
    assert.equal(ev[0].ip, "127.0.0.1");
    ({ ev } = await oneClick({ CLICKTRAIL_IP_MODE: "full", CLICKTRAIL_TRUSTED_PROXIES: "127.0.0.1" }, { "x-forwarded-for": "203.0.113.7" }));
    assert.equal(ev[0].ip, "203.0.113.7");
    ({ ev } = await oneClick({ CLICKTRAIL_IP_MODE: "full" }, { "x-forwarded-for": "203.0.113.7" }));
    assert.equal(ev[0].ip, "127.0.0.1", "untrusted X-Forwarded-For ignored in full mode too");
    ({ ev } = await oneClick({ CLICKTRAIL_IP_MODE: "none" }));
    assert.equal(ev[0].ip, null);
  });

  test("X-Forwarded-Host picks the link domain only from a trusted proxy", async () => {
    let { r } = await oneClick({ CLICKTRAIL_TRUSTED_PROXIES: "127.0.0.1" }, { "x-forwarded-host": "IP.example" }, "internal.lb");
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, "https://example.com/");
    ({ r } = await oneClick({}, { "x-forwarded-host": "ip.example" }, "internal.lb"));
    assertProblem(r, 404);
  });

  test("the visitor cookie identifies a returning visitor in the log and the stats", async () => {
    const t = await startApp();
    try {
      await mkDomain(t.base, "v.example");
      const l = await mkLink(t.base, { domain: "v.example", slug: "x", target: "https://example.com/" });
      const a = await hit(t.base, "v.example", "/x");
      const vid = /^ct_vid=([^;]+)/.exec(String((a.headers["set-cookie"] as string[])[0]))![1]!;
      const b = await hit(t.base, "v.example", "/x", { cookie: `ct_vid=${vid}` });
      assert.equal(b.headers["set-cookie"], undefined);
      const c = await hit(t.base, "v.example", "/x");
      assert.ok(c.headers["set-cookie"], "a new browser gets its own cookie");
      const ev = await exportNdjson(t.base);
      assert.equal(ev[0].visitor, vid);
      assert.equal(ev[1].visitor, vid);
      assert.notEqual(ev[2].visitor, vid);
      const s = await getJson(t.base, `/api/v1/links/${l.id}/stats`);
      assert.equal(s.clicks, 3);
      assert.equal(s.visitors, 2);
    } finally {
      await t.close();
    }
  });

  test("with CLICKTRAIL_VISITOR_COOKIE=false no cookie is set and the visitor is a salted hash", async () => {
    const t = await startApp({ CLICKTRAIL_VISITOR_COOKIE: "false" });
    try {
      await mkDomain(t.base, "v.example");
      const l = await mkLink(t.base, { domain: "v.example", slug: "x", target: "https://example.com/" });
      const a = await hit(t.base, "v.example", "/x");
      assert.equal(a.headers["set-cookie"], undefined);
      await hit(t.base, "v.example", "/x");
      await hit(t.base, "v.example", "/x", { "user-agent": IPHONE });
      const ev = await exportNdjson(t.base);
      assert.equal(ev[0].visitor, ev[1].visitor);
      assert.notEqual(ev[0].visitor, ev[2].visitor);
      assert.ok(!String(ev[0].visitor).includes("127.0.0"), "the hash does not reveal the IP");
      const s = await getJson(t.base, `/api/v1/links/${l.id}/stats`);
      assert.equal(s.visitors, 2);
    } finally {
      await t.close();
    }
  });
});
