import { test } from "node:test";
import assert from "node:assert/strict";
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { ConfigError, loadConfig } from "../src/config.js";
import { bucketStart, tzOffset } from "../src/util/time.js";
import { storedIp } from "../src/util/net.js";
import { parseUa } from "../src/events/enrich.js";
import { ClickSums, countOf } from "../src/events/click-sums.js";
import { forwardQuery, normalizeHostname, withUtm } from "../src/links/validate.js";
import { tmpDir } from "./helpers.js";
import { tooDeep } from "../src/util/json.js";
import { hashKey, hashPassword, verifyPassword } from "../src/auth/service.js";
import { createHash } from "node:crypto";
import { sha256 } from "../src/util/hash.js";
import { hashedVisitor } from "../src/events/enrich.js";
import { pathSegments } from "../src/links/redirect.js";
import { packEvents, unpackEvents } from "../src/events/pack.js";
import type { EventRow } from "../src/store/port.js";

test("link paths: non-empty segments, percent-decoded after the split; bad encoding is one raw segment", () => {
  const cases: [string, string[]][] = [
    ["/", []],
    ["", []],
    ["/summer", ["summer"]],
    ["/summer/", ["summer"]],
    ["//summer//ig/", ["summer", "ig"]],
    ["/a/b/c", ["a", "b", "c"]],
    ["/caf%C3%A9/ig", ["café", "ig"]],
    ["/a%2Fb", ["a/b"]],
    ["/%E0%A4%A/x", ["/%E0%A4%A/x"]],
  ];
  for (const [path, want] of cases) assert.deepEqual(pathSegments(path), want, path);
  // the same as splitting, dropping empty parts and decoding each, for any path of these characters
  const chars = ["/", "a", "b", "%41", "%2F", "%", "é"];
  for (let i = 0; i < 2000; i++) {
    const p = "/" + Array.from({ length: Math.floor(Math.random() * 8) }, () => chars[Math.floor(Math.random() * chars.length)]).join("");
    let want: string[];
    try {
      want = p
        .split("/")
        .filter((s) => s !== "")
        .map(decodeURIComponent);
    } catch {
      want = [p];
    }
    assert.deepEqual(pathSegments(p), want, p);
  }
});

test("sha256: the one-shot hash is createHash's, byte for byte (stored API key hashes and visitor ids stay valid)", () => {
  for (const text of ["", "ct_0123456789abcdef", "é|1|192.0.2.1|Mozilla/5.0 (iPhone) 🚀", "x".repeat(5000)]) {
    for (const enc of ["hex", "base64url"] as const) assert.equal(sha256(text, enc), createHash("sha256").update(text).digest(enc));
    assert.equal(sha256(Buffer.from(text), "hex"), createHash("sha256").update(text).digest("hex"));
  }
  assert.equal(hashKey("ct_key"), createHash("sha256").update("ct_key").digest("hex"));
  assert.equal(
    hashedVisitor("salt", 7, "192.0.2.1", "UA"),
    "h" + createHash("sha256").update("salt|7|192.0.2.1|UA").digest("base64url").slice(0, 22),
  );
});

test("passwords: scrypt hashes verify, wrong passwords do not", async () => {
  const h = await hashPassword("correct horse battery");
  assert.match(h, /^scrypt\$/);
  assert.ok(!h.includes("correct horse"));
  assert.equal(await verifyPassword("correct horse battery", h), true);
  assert.equal(await verifyPassword("correct horse batterY", h), false);
  assert.equal(await verifyPassword("x", "garbage"), false);
});

test("config: defaults, a config file under the environment, errors name the variable", () => {
  const c = loadConfig({});
  assert.equal(c.port, 8080);
  assert.equal(c.host, "127.0.0.1");
  assert.equal(c.ipMode, "anonymize");
  assert.equal(c.sqliteSynchronous, "NORMAL");
  const dir = tmpDir();
  try {
    const file = path.join(dir, "c.json");
    writeFileSync(file, JSON.stringify({ port: 9000, trusted_proxies: ["10.0.0.0/8", "loopback"], ip_mode: "full" }));
    const f = loadConfig({ CLICKTRAIL_CONFIG_FILE: file, CLICKTRAIL_IP_MODE: "none" });
    assert.equal(f.port, 9000);
    assert.deepEqual(f.trustedProxies, ["10.0.0.0/8", "loopback"]);
    assert.equal(f.ipMode, "none", "the environment wins over the file");
    writeFileSync(file, JSON.stringify({ colour: "blue" }));
    assert.throws(
      () => loadConfig({ CLICKTRAIL_CONFIG_FILE: file }),
      (e: unknown) => e instanceof ConfigError && /unknown key "colour"/.test(e.message),
    );
    writeFileSync(file, "{not json");
    assert.throws(() => loadConfig({ CLICKTRAIL_CONFIG_FILE: file }), /CLICKTRAIL_CONFIG_FILE/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  for (const [k, v] of [
    ["CLICKTRAIL_PORT", "70000"],
    ["CLICKTRAIL_PORT", "12ab"],
    ["CLICKTRAIL_HOST", "my host"],
    ["CLICKTRAIL_VISITOR_COOKIE", "maybe"],
    ["CLICKTRAIL_TRUSTED_PROXIES", "10.0.0.0/40"],
    ["CLICKTRAIL_SQLITE_SYNCHRONOUS", "OFF"],
    ["CLICKTRAIL_WRITER_SCHEDULING", "idle"],
    ["CLICKTRAIL_BODY_LIMIT", "10"],
    ["CLICKTRAIL_ROLLUP_INTERVAL_MS", "100"],
    ["CLICKTRAIL_ROLLUP_INTERVAL_MS", "5s"],
    ["CLICKTRAIL_DIALECTS", "o8tracker"],
    ["CLICKTRAIL_DIALECTS", "o7tracker:o7"],
    ["CLICKTRAIL_DIALECTS", "o7tracker:/api"],
    ["CLICKTRAIL_DIALECTS", "o7tracker,o7tracker:/o7"],
    ["FALLBACK_URL", "outfit7.com"],
  ]) {
    assert.throws(
      () => loadConfig({ [k!]: v }),
      (e: unknown) => e instanceof ConfigError && e.variable === k,
      `${k}=${v}`,
    );
  }
});

test("config: dialects at the root or at a mount path, o7tracker's own variables", () => {
  assert.deepEqual(loadConfig({}).dialects, []);
  assert.deepEqual(loadConfig({ CLICKTRAIL_DIALECTS: "o7tracker" }).dialects, [{ name: "o7tracker", mount: "" }]);
  assert.deepEqual(loadConfig({ CLICKTRAIL_DIALECTS: " o7tracker:/o7 " }).dialects, [{ name: "o7tracker", mount: "/o7" }]);
  const c = loadConfig({ AUTH_USER: "admin", AUTH_PASSWORD: "pw", FALLBACK_URL: "https://example.com/" });
  assert.deepEqual(c.o7tracker, { authUser: "admin", authPassword: "pw", fallbackUrl: "https://example.com/", domain: "o7tracker.invalid" });
  assert.equal(loadConfig({}).o7tracker.fallbackUrl, "http://outfit7.com", "the original's default");
});

test("time zones: offsets and local buckets across DST", () => {
  assert.equal(tzOffset(Date.UTC(2026, 0, 15), "Europe/Paris"), 3600_000);
  assert.equal(tzOffset(Date.UTC(2026, 6, 15), "Europe/Paris"), 7200_000);
  assert.equal(tzOffset(Date.UTC(2026, 0, 15), "America/Los_Angeles"), -8 * 3600_000);
  // 2026-03-29 00:30 UTC is 01:30 in Paris, day starts 2026-03-28T23:00Z
  assert.equal(new Date(bucketStart(Date.UTC(2026, 2, 29, 0, 30), "day", "Europe/Paris")).toISOString(), "2026-03-28T23:00:00.000Z");
  // after the switch to summer time the local midnight is 22:00Z
  assert.equal(new Date(bucketStart(Date.UTC(2026, 2, 30, 12), "day", "Europe/Paris")).toISOString(), "2026-03-29T22:00:00.000Z");
  // ISO weeks start on Monday: Wed 2026-11-25 → Mon 2026-11-23
  assert.equal(new Date(bucketStart(Date.UTC(2026, 10, 25, 15), "week", "UTC")).toISOString(), "2026-11-23T00:00:00.000Z");
  assert.equal(new Date(bucketStart(Date.UTC(2026, 10, 25, 15, 42), "hour", "Asia/Kolkata")).toISOString(), "2026-11-25T15:30:00.000Z");
});

test("IP anonymisation", () => {
  assert.equal(storedIp("203.0.113.77", "anonymize"), "203.0.113.0");
  assert.equal(storedIp("2001:db8:abcd:12:1:2:3:4", "anonymize"), "2001:db8:abcd::");
  assert.equal(storedIp("2001:db8::1", "anonymize"), "2001:db8:0::");
  assert.equal(storedIp("203.0.113.77", "full"), "203.0.113.77");
  assert.equal(storedIp("203.0.113.77", "none"), null);
});

test("user agents: browser, OS, device, platform, bots", () => {
  const iphone = parseUa(
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
  );
  const { ua: iphoneUa, ...iphoneInfo } = iphone;
  assert.deepEqual(iphoneInfo, { browser: "Mobile Safari", os: "iOS", device: "mobile", platform: "ios", bot: false });
  assert.match(iphoneUa, /^Mozilla\/5\.0 \(iPhone; CPU iPhone OS 17_0 like Mac OS X\).*Safari\/604\.1$/, "the agent itself, whole");
  const android = parseUa("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36");
  assert.equal(android.platform, "android");
  assert.equal(android.device, "mobile");
  const win = parseUa("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36");
  assert.deepEqual([win.platform, win.device, win.browser], ["windows", "desktop", "Chrome"]);
  assert.equal(
    parseUa(
      "Mozilla/5.0 (Windows Phone 10.0; Android 6.0.1; Microsoft; Lumia 950) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/52.0 Mobile Safari/537.36 Edge/15.15063",
    ).platform,
    "windows-phone",
  );
  assert.equal(parseUa("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)").bot, true);
  assert.equal(parseUa("Twitterbot/1.0").bot, true);
  assert.equal(parseUa(undefined).bot, true, "no user agent at all is treated as a bot");
  // the agents seen last are compared before the cache is asked: six agents in turn (more than it keeps), each a new
  // string as a header's value is, keep their own answers
  const agents = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:126.0) Gecko/20100101 Firefox/126.0",
  ];
  const platforms = ["ios", "android", "windows", "", "macos", "linux"];
  for (let round = 0; round < 3; round++)
    for (const [i, ua] of agents.entries()) {
      const info = parseUa(Buffer.from(ua).toString("latin1"));
      assert.equal(info.platform, platforms[i], `${ua} (round ${round})`);
      assert.equal(info.ua, ua, "the agent itself");
      assert.equal(info.bot, i === 3, ua);
      assert.equal(parseUa(Buffer.from(ua).toString("latin1")), info, "asked again at once: the same answer");
    }
});

test("hostnames, UTM and forwarded queries", () => {
  assert.equal(normalizeHostname("Go.Example.COM:8443"), "go.example.com");
  assert.equal(normalizeHostname("bücher.example."), "xn--bcher-kva.example");
  assert.throws(() => normalizeHostname("https://x.com"), /not a URL/);
  assert.throws(() => normalizeHostname("a b.com"), /not a valid host name/);
  assert.equal(
    withUtm("https://a.test/p?x=1#frag", { source: "news", medium: "email" }),
    "https://a.test/p?x=1&utm_source=news&utm_medium=email#frag",
  );
  assert.equal(withUtm("https://a.test/?utm_source=keep", { source: "news" }), "https://a.test/?utm_source=keep");
  assert.equal(forwardQuery("https://a.test/p?x=1#f", "y=2"), "https://a.test/p?x=1&y=2#f");
  assert.equal(forwardQuery("https://a.test/p", "y=2"), "https://a.test/p?y=2");
});

test("tooDeep: finds a value nested past the limit and names its path; a hostile depth does not overflow the stack", () => {
  assert.equal(tooDeep({ a: 1, b: [1, "x", null], c: { d: {} } }, 3), null);
  // the root is depth 0: with max 2, an object two levels down is too deep
  assert.equal(tooDeep({ a: { b: {} } }, 2), "a.b");
  assert.equal(tooDeep({ a: [0, { b: [] }] }, 3), "a.1.b");
  assert.equal(tooDeep({ ok: { x: 1 }, deep: { x: [[]] } }, 3), "deep.x.0");
  // inherited enumerable properties are not the value's own
  const proto = { inherited: { a: { b: {} } } };
  assert.equal(tooDeep(Object.assign(Object.create(proto) as object, { own: 1 }), 2), null);
  assert.equal(tooDeep({}, 0), "");
  assert.equal(tooDeep("text", 0), null);
  assert.equal(tooDeep(null), null);
  // exactly at the limit passes, one more fails
  let v: unknown = {};
  for (let i = 0; i < 64; i++) v = { n: v };
  assert.equal(tooDeep(v), "n".repeat(64).split("").join("."));
  assert.equal(tooDeep((v as { n: unknown }).n), null);
  // 100,000 levels (far more than the stack allows a recursive walk): the first 64 decide
  let hostile: unknown[] = [];
  const root = hostile;
  for (let i = 0; i < 100_000; i++) hostile = (hostile[0] = []) as unknown[];
  assert.equal(tooDeep(root)?.split(".").length, 64);
});

test("packEvents: events come back as they went, when string fields repeat, alternate, change and go empty", () => {
  const base: EventRow = {
    project_id: 1,
    ts: 1_700_000_000_000,
    client_ts: null,
    name: "click",
    visitor: "v1",
    session: null,
    link_id: 7,
    domain_id: 2,
    campaign_id: null,
    source: "link",
    channel: "default",
    platform: "windows",
    ip: "203.0.113.0",
    ua: "UA one",
    referrer: "https://a.example/",
    browser: "Chrome",
    os: "Windows",
    device: "desktop",
    is_bot: false,
    country: null,
    rule: null,
    app_id: null,
    data: null,
  };
  // equal strings that are not the same string (a header's value is a new one every request)
  const copy = (v: string) => JSON.parse(JSON.stringify(v)) as string;
  const events: EventRow[] = [
    base,
    { ...base, ua: copy("UA one"), referrer: copy("https://a.example/") },
    { ...base, ua: "UA two", platform: "ios", os: "iOS", referrer: null },
    { ...base, ua: copy("UA one"), referrer: "https://a.example/", country: "DE" },
    { ...base, ua: "UA two", platform: null, os: null, device: null, browser: null, channel: null, rule: "ios" },
    // a value that is another field's value (the table is shared; the last-value shortcut is per field)
    { ...base, ua: "Chrome", browser: "UA one", referrer: "UA two", name: "open", source: "tracking" },
    { ...base, ua: "UA one", name: "click", device: "tap" },
    { ...base, name: "tap", device: "desktop", rule: "click" },
    { ...base, name: "click", rule: "click" },
    // server times before and after the first event's (rows hold their difference from it)
    { ...base, ts: base.ts + 1234 },
    { ...base, ts: base.ts - 5 },
  ];
  const packed = packEvents(events);
  assert.deepEqual(unpackEvents(JSON.parse(JSON.stringify(packed))), events);
  assert.deepEqual(
    packed.rows.slice(-2).map((r) => r[1]),
    [1234, -5],
  );
  // each distinct string once
  assert.equal(new Set(packed.strings).size, packed.strings.length);
  // a record of an earlier version (no t0: the rows hold the times themselves) reads as it did
  const { t0, ...earlier } = packed;
  assert.equal(t0, base.ts);
  const absolute = { ...earlier, rows: earlier.rows.map((r) => r.map((v, i) => (i === 1 ? (v as number) + t0! : v))) };
  assert.deepEqual(unpackEvents(JSON.parse(JSON.stringify(absolute))), events);
});

test("click sums: per link id in pages, a page gone once its counts are back to zero", () => {
  const sums = new ClickSums();
  const ids = [1, 1, 2, 4095, 4096, 9_000_001, 2 ** 33 + 5, 1];
  sums.addAll(ids, 1);
  assert.deepEqual(
    [1, 2, 3, 4095, 4096, 9_000_001, 2 ** 33 + 5].map((id) => sums.get(id)),
    [3, 1, 0, 1, 1, 1, 1],
  );
  assert.equal(sums.get(2 ** 33 + 5 + 4096), 0, "an id on another page");
  assert.equal(sums.pageCount, 4);
  sums.addAll([1, 2, 4095, 2 ** 33 + 5], -1);
  assert.deepEqual(
    [1, 2, 4095, 2 ** 33 + 5].map((id) => sums.get(id)),
    [2, 0, 0, 0],
  );
  assert.equal(sums.pageCount, 3, "the page of 2^33 + 5 held nothing more");
  sums.addAll([1, 1, 4096, 9_000_001], -1);
  assert.equal(sums.pageCount, 0);
  assert.equal(countOf([5, 6, 5, 5], 5), 3);
  assert.equal(countOf(null, 5), 0);
});
