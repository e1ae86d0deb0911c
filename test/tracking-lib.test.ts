/** src/tracking, the library: Fernet spec vectors, pytracking 0.2.3's recorded vectors, the clicktrail format, HTML, webhook. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash, createHmac, hkdfSync, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { parse, type DefaultTreeAdapterTypes } from "parse5";
import {
  adaptHtml,
  DEFAULT_TIMEOUT_SECONDS,
  fernetDecrypt,
  fernetEncrypt,
  fernetTimestamp,
  generateFernetKey,
  generateSigningKey,
  getClickTrackingResult,
  getClickTrackingUrl,
  getClickTrackingUrlPath,
  getOpenTrackingPixel,
  getOpenTrackingResult,
  getOpenTrackingUrl,
  getOpenTrackingUrlPath,
  peekKeyId,
  PNG_MIME_TYPE,
  pyJsonDumps,
  pyUrljoin,
  sendWebhook,
  signingKeyId,
  TRACKING_PIXEL,
  TrackingError,
  TrackingResult,
  type TrackingConfig,
  type TrackingErrorCode,
} from "../src/tracking/index.js";
import { hmacSha256, macKey } from "../src/tracking/hmac.js";
import { ROOT } from "./helpers.js";

const SHARED = path.join(ROOT, "../shared/testdata");
const readJson = (p: string) => JSON.parse(readFileSync(path.join(SHARED, p), "utf8"));
const VECTORS = readJson("pytracking/vectors.json");

const seconds = (rfc3339: string) => Date.parse(rfc3339) / 1000;

/** asserts `fn` throws a TrackingError (never another error), with `code` when given */
function rejects(fn: () => unknown, code?: TrackingErrorCode | TrackingErrorCode[], msg?: string): TrackingError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof TrackingError, `${msg ?? ""}: expected a TrackingError, got ${String(e)}`);
    if (code) assert.ok((Array.isArray(code) ? code : [code]).includes(e.code), `${msg ?? ""}: code ${e.code}, expected ${code} (${e.message})`);
    assert.ok(e.message.length > 0);
    return e;
  }
  assert.fail(`${msg ?? ""}: did not throw`);
}

// ---------------------------------------------------------------------------------------------------------------------
// Fernet

test("fernet: generate.json byte for byte with the given IV and time", () => {
  const vectors = readJson("fernet/generate.json");
  assert.ok(vectors.length > 0);
  for (const v of vectors) {
    const token = fernetEncrypt(v.secret, Buffer.from(v.src, "utf8"), { iv: Uint8Array.from(v.iv), time: seconds(v.now) });
    assert.equal(token, v.token);
    assert.equal(fernetEncrypt(v.secret, v.src, { iv: Uint8Array.from(v.iv), time: new Date(v.now) }), v.token, "a Date works too");
    assert.equal(fernetTimestamp(token), seconds(v.now));
    assert.equal(fernetDecrypt(v.secret, token).toString("utf8"), v.src);
  }
});

test("fernet: verify.json decrypts with its ttl and clock", () => {
  const vectors = readJson("fernet/verify.json");
  assert.ok(vectors.length > 0);
  for (const v of vectors) {
    assert.equal(fernetDecrypt(v.secret, v.token, { ttlSeconds: v.ttl_sec, now: seconds(v.now) }).toString("utf8"), v.src);
    assert.equal(fernetDecrypt(v.secret, Buffer.from(v.token), { ttlSeconds: v.ttl_sec, now: new Date(v.now) }).toString("utf8"), v.src);
  }
});

test("fernet: every invalid.json token is rejected with the right reason", () => {
  const expected: Record<string, TrackingErrorCode[]> = {
    "incorrect mac": ["bad_signature"],
    "too short": ["bad_signature", "bad_token"],
    "invalid base64": ["bad_base64"],
    "payload size not multiple of block size": ["bad_padding"],
    "payload padding error": ["bad_padding"],
    "far-future TS (unacceptable clock skew)": ["future"],
    "expired TTL": ["expired"],
    "incorrect IV (causes padding error)": ["bad_padding"],
  };
  const vectors = readJson("fernet/invalid.json");
  assert.equal(vectors.length, 8);
  for (const v of vectors) {
    assert.ok(expected[v.desc], `unexpected vector ${v.desc}`);
    rejects(() => fernetDecrypt(v.secret, v.token, { ttlSeconds: v.ttl_sec, now: seconds(v.now) }), expected[v.desc], v.desc);
  }
});

test("fernet: without a ttl there is no expiry and no clock-skew check (pytracking); keys are checked", () => {
  const v = readJson("fernet/invalid.json");
  const future = v.find((x: { desc: string }) => x.desc.startsWith("far-future"));
  const expired = v.find((x: { desc: string }) => x.desc === "expired TTL");
  assert.equal(fernetDecrypt(future.secret, future.token).toString(), "", "the far-future vector's plaintext is empty");
  assert.equal(fernetDecrypt(expired.secret, expired.token, { now: seconds(expired.now) }).toString(), "", "its plaintext is empty");
  // another key: the HMAC does not verify; a key list (MultiFernet) finds the right one
  const other = generateFernetKey();
  rejects(() => fernetDecrypt(other, expired.token), "bad_signature");
  assert.equal(fernetDecrypt([other, expired.secret], expired.token).toString(), "");
  // raw 32-byte keys work; malformed keys are refused
  const raw = Buffer.from(expired.secret, "base64url");
  assert.equal(fernetDecrypt(raw, expired.token).toString(), "");
  for (const bad of ["", "short", Buffer.alloc(16).toString("base64url"), "%".repeat(44)]) rejects(() => fernetEncrypt(bad, "x"), "bad_key", bad);
  // a round trip with a random IV and the current time
  const k = generateFernetKey();
  assert.equal(k.length, 44);
  const t = fernetEncrypt(k, "payload é");
  assert.equal(fernetDecrypt(k, t, { ttlSeconds: 60 }).toString(), "payload é");
  assert.notEqual(fernetEncrypt(k, "payload é"), t, "random IV");
  // every single-byte change and every truncation is rejected, never a crash
  const bytes = Buffer.from(t, "base64url");
  for (let i = 0; i < bytes.length; i++) {
    const b = Buffer.from(bytes);
    b[i] ^= 0x01;
    rejects(() => fernetDecrypt(k, b.toString("base64").replace(/\+/g, "-").replace(/\//g, "_")), undefined, `flip ${i}`);
  }
  for (let n = 0; n < t.length; n++) rejects(() => fernetDecrypt(k, t.slice(0, n)), undefined, `truncate ${n}`);
});

// ---------------------------------------------------------------------------------------------------------------------
// pytracking 0.2.3 compatibility

/** pytracking's snake_case configuration as a TrackingConfig in the pytracking format */
function fromPy(c: Record<string, unknown>): TrackingConfig {
  const names: Record<string, keyof TrackingConfig> = {
    base_open_tracking_url: "baseOpenTrackingUrl",
    base_click_tracking_url: "baseClickTrackingUrl",
    webhook_url: "webhookUrl",
    include_webhook_url: "includeWebhookUrl",
    default_metadata: "defaultMetadata",
    include_default_metadata: "includeDefaultMetadata",
    encryption_bytestring_key: "encryptionKey",
    append_slash: "appendSlash",
    webhook_timeout_seconds: "webhookTimeoutSeconds",
  };
  const out: Record<string, unknown> = { format: "pytracking" };
  for (const [k, v] of Object.entries(c)) {
    assert.ok(names[k], `unknown pytracking setting ${k}`);
    out[names[k]] = v;
  }
  return out as TrackingConfig;
}

function resultFields(r: TrackingResult) {
  return {
    is_open_tracking: r.isOpenTracking,
    is_click_tracking: r.isClickTracking,
    tracked_url: r.trackedUrl,
    webhook_url: r.webhookUrl,
    metadata: r.metadata,
    request_data: r.requestData,
  };
}

test("pytracking vectors: plain links re-encode byte for byte, and every vector decodes to the recorded result", () => {
  assert.equal(VECTORS.vectors.length, 8);
  let plain = 0;
  let encrypted = 0;
  for (const v of VECTORS.vectors) {
    const enc = fromPy(v.encode_config);
    const isClick = v.kind === "click";
    const baseKey = isClick ? "baseClickTrackingUrl" : "baseOpenTrackingUrl";
    if (!v.encrypted) {
      plain++;
      const url = isClick ? getClickTrackingUrl(v.url_to_track, v.metadata, enc) : getOpenTrackingUrl(v.metadata, enc);
      assert.equal(url, v.url, v.id);
      assert.equal(isClick ? getClickTrackingUrlPath(url, enc) : getOpenTrackingUrlPath(url, enc), v.encoded_path, v.id);
      const token = v.encoded_path.replace(/\/$/, "");
      assert.equal(Buffer.from(token, "base64url").toString("utf8"), v.embedded_json, v.id);
    } else {
      encrypted++;
      // the recorded token, re-made with its pinned IV and clock
      const token = fernetEncrypt(v.key, Buffer.from(v.embedded_json, "utf8"), { iv: Buffer.from(v.fernet.iv_hex, "hex"), time: v.fernet.timestamp });
      assert.equal(token, v.encoded_path, v.id);
      assert.equal(v.url, v.base_url + token);
      // the codec's own Fernet links (random IV) carry the same JSON and the configured clock
      const now = () => v.fernet.timestamp * 1000 + 999;
      const url = isClick ? getClickTrackingUrl(v.url_to_track, v.metadata, { ...enc, now }) : getOpenTrackingUrl(v.metadata, { ...enc, now });
      const mine = url.slice(v.base_url.length);
      assert.match(mine, /^gAAAAA[A-Za-z0-9_-]+=*$/);
      assert.equal(fernetDecrypt(v.key, mine).toString("utf8"), v.embedded_json, v.id);
      assert.equal(fernetTimestamp(mine), v.fernet.timestamp);
    }
    // decoding: the path alone (as pytracking's tests do) and the full URL with the base configured
    const dec: TrackingConfig = { ...fromPy(v.decode_config), allowUnsigned: !v.encrypted };
    const get = isClick ? getClickTrackingResult : getOpenTrackingResult;
    for (const input of [v.encoded_path, "/" + v.encoded_path, v.url]) {
      const r = get(input, { ...dec, [baseKey]: v.base_url }, v.request_data);
      assert.deepEqual(resultFields(r), v.expected, `${v.id} ${input}`);
      assert.ok(r instanceof TrackingResult);
      assert.equal(r.format, "pytracking");
      assert.equal(r.encrypted, v.encrypted);
      assert.equal(r.signed, v.encrypted);
      assert.ok(Math.abs(r.timestamp - Date.now() / 1000) < 5);
    }
    const r = get(v.encoded_path, dec, v.request_data);
    assert.deepEqual(resultFields(r), v.expected, v.id);
    if (!v.encrypted) {
      // a plain link is forgeable: reading it needs allowUnsigned
      rejects(() => get(v.encoded_path, fromPy(v.decode_config)), "unsigned_not_allowed", v.id);
    } else {
      rejects(() => get(v.encoded_path, { format: "pytracking" }), "no_encryption_key", v.id);
      rejects(() => get(v.encoded_path, { format: "pytracking", encryptionKey: generateFernetKey() }), "bad_signature", v.id);
    }
  }
  assert.equal(plain, 6);
  assert.equal(encrypted, 2);
});

test("pytracking: base URL joining follows Python's urljoin; decoding strips the base and one leading slash", () => {
  const cfg = (base: string): TrackingConfig => ({ format: "pytracking", baseOpenTrackingUrl: base });
  assert.equal(getOpenTrackingUrl(null, cfg("https://a.b.com/tracking/open/")), "https://a.b.com/tracking/open/e30=");
  assert.equal(getOpenTrackingUrl(null, cfg("https://a.b.com/click")), "https://a.b.com/e30=", "no trailing slash: last segment replaced");
  assert.equal(getOpenTrackingUrl(null, cfg("https://a.b.com")), "https://a.b.com/e30=");
  assert.equal(getOpenTrackingUrl(null, cfg("https://a.b.com/t/?x=1#f")), "https://a.b.com/t/e30=");
  assert.equal(getOpenTrackingUrl(null, cfg("")), "e30=", "Python: urljoin('', token) is the token");
  assert.equal(getOpenTrackingUrl(null, { ...cfg("https://a.b.com/o/"), appendSlash: true }), "https://a.b.com/o/e30=/");
  rejects(() => getOpenTrackingUrl(null, { format: "pytracking" }), "config");
  rejects(() => getClickTrackingUrl("https://x.com", null, { format: "pytracking" }), "config");
  // the same results as CPython 3.11's urllib.parse.urljoin
  const py: [string, string][] = [
    ["https://a.b.com//a//b/", "https://a.b.com/a/b/T"],
    ["https://a.b.com/a/./b/../c/", "https://a.b.com/a/c/T"],
    ["HTTPS://A.b.com/x/y", "https://A.b.com/x/T"],
    ["/rel/path/", "/rel/path/T"],
    ["rel", "T"],
    ["https://a.b.com/a/b;p/c", "https://a.b.com/a/b;p/T"],
    ["mailto:x@y", "T"],
    ["//host/p/", "//host/p/T"],
    ["https://a.b.com/..", "https://a.b.com/T"],
  ];
  for (const [base, want] of py) assert.equal(pyUrljoin(base, "T"), want, base);
  // decoding: full URL, path, leading slash, trailing slash (append_slash), query string and fragment
  const open = { format: "pytracking", baseOpenTrackingUrl: "https://a.b.com/o/", allowUnsigned: true } as const;
  for (const input of ["https://a.b.com/o/e30=", "e30=", "/e30=", "e30=/", "https://a.b.com/o/e30=/?utm=x#y"]) {
    assert.deepEqual(getOpenTrackingResult(input, open).metadata, {}, input);
  }
  // strict base64 and JSON checks, each a TrackingError with its own code
  rejects(() => getOpenTrackingResult("e30", open), "bad_base64", "missing padding");
  rejects(() => getOpenTrackingResult("e3%0=", open), "bad_base64");
  rejects(() => getOpenTrackingResult("W10=", open), "bad_payload", "[] is not an object");
  const b64 = (b: Buffer) => b.toString("base64").replace(/\+/g, "-").replace(/\//g, "_");
  rejects(() => getOpenTrackingResult(b64(Buffer.from("{no json")), open), "bad_json");
  rejects(() => getOpenTrackingResult(b64(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), open), "bad_json", "not UTF-8");
  rejects(() => getClickTrackingResult(b64(Buffer.from('{"url": 1}')), open), "bad_payload", "url must be a string");
  rejects(() => getClickTrackingResult(b64(Buffer.from('{"metadata": "x"}')), open), "bad_payload", "metadata must be an object");
  assert.deepEqual(getOpenTrackingResult(b64(Buffer.from('{"other": 1, "url": null}')), open).trackedUrl, null, "unknown keys ignored");
  rejects(() => getOpenTrackingResult("", open), "bad_token");
  // beyond pytracking (where these fail): another host name, a bare path, a query string
  for (const input of ["https://other.example/o/e30=", "/o/e30=", "https://a.b.com/o/e30=?fbclid=1", "https://a.b.com/o/e30=/#x"]) {
    assert.deepEqual(getOpenTrackingResult(input, open).metadata, {}, input);
  }
  rejects(() => getOpenTrackingResult("https://a.b.com/o/e30=/extra", open), ["bad_token", "bad_base64"], "the last segment is the token");
});

test("pytracking: merge rules for default metadata and the webhook URL, on both sides", () => {
  const base = { format: "pytracking", baseClickTrackingUrl: "https://t.example/c/", allowUnsigned: true } as const;
  const writer: TrackingConfig = {
    ...base,
    defaultMetadata: { a: 1, b: 1 },
    includeDefaultMetadata: true,
    webhookUrl: "https://hook/",
    includeWebhookUrl: true,
  };
  const url = getClickTrackingUrl("https://x.example/", { b: 2, c: 3 }, writer);
  const json = Buffer.from(getClickTrackingUrlPath(url, writer), "base64url").toString();
  assert.equal(json, '{"url": "https://x.example/", "metadata": {"a": 1, "b": 2, "c": 3}, "webhook": "https://hook/"}');
  // reader with include*: the link's metadata and webhook as they are
  let r = getClickTrackingResult(url, { ...base, includeWebhookUrl: true, includeDefaultMetadata: true, defaultMetadata: { z: 0 } });
  assert.deepEqual(r.metadata, { a: 1, b: 2, c: 3 });
  assert.equal(r.webhookUrl, "https://hook/");
  // reader without: its own default metadata first (the link's wins), its own webhook URL
  r = getClickTrackingResult(url, { ...base, defaultMetadata: { c: 0, z: 0 }, webhookUrl: "https://mine/" });
  assert.deepEqual(r.metadata, { c: 3, z: 0, a: 1, b: 2 });
  assert.deepEqual(Object.keys(r.metadata), ["c", "z", "a", "b"], "Python dict.update order");
  assert.equal(r.webhookUrl, "https://mine/");
  // includeWebhookUrl on the reader and none in the link: null even though the reader has one
  const bare = getClickTrackingUrl("https://x.example/", null, base);
  assert.equal(getClickTrackingResult(bare, { ...base, includeWebhookUrl: true, webhookUrl: "https://mine/" }).webhookUrl, null);
  // an empty URL is not embedded; a "__proto__" metadata key stays data
  assert.equal(getClickTrackingUrl("", null, base), "https://t.example/c/e30=");
  const proto = getClickTrackingResult(getClickTrackingUrl("https://x/", JSON.parse('{"__proto__": {"polluted": 1}}'), base), base);
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
  assert.deepEqual(Object.keys(proto.metadata), ["__proto__"]);
  // the result's pytracking JSON dict, in the webhook's order
  const full = getClickTrackingResult(url, { ...base, includeWebhookUrl: true }, { user_ip: "127.0.0.1" });
  assert.deepEqual(Object.keys(full.toJsonDict()), ["is_open_tracking", "is_click_tracking", "metadata", "request_data", "timestamp", "tracked_url"]);
  assert.deepEqual(Object.keys(getOpenTrackingResult("e30=", base).toJsonDict()), [
    "is_open_tracking",
    "is_click_tracking",
    "metadata",
    "request_data",
    "timestamp",
  ]);
});

test("pyJsonDumps: Python's json.dumps defaults byte for byte", () => {
  // expected strings produced by CPython 3.11 json.dumps
  const cases: [unknown, string][] = [
    [{}, "{}"],
    [{ a: [1, 2, { b: null }], c: true, d: false }, '{"a": [1, 2, {"b": null}], "c": true, "d": false}'],
    ["é\u00e0\u00f9", '"\\u00e9\\u00e0\\u00f9"'],
    ["\u0000\u001f\u007f\u0080", '"\\u0000\\u001f\\u007f\\u0080"'],
    ["emoji 😀", '"emoji \\ud83d\\ude00"'],
    ['"quote" \\back\\ \n\r\t\b\f', '"\\"quote\\" \\\\back\\\\ \\n\\r\\t\\b\\f"'],
    ["\u2028\u2029/<>&'", '"\\u2028\\u2029/<>&\'"'],
    [
      [0.1, 1.5, 1e-5, 1.5e-7, 0.0001, 123456789012345.6, -2.5e-10, 1 / 3, 5e-324],
      "[0.1, 1.5, 1e-05, 1.5e-07, 0.0001, 123456789012345.6, -2.5e-10, 0.3333333333333333, 5e-324]",
    ],
    [
      [1, -0, 12.0, 1e21, 2n ** 70n, NaN, Infinity, -Infinity],
      "[1, 0, 12, 1000000000000000000000, 1180591620717411303424, NaN, Infinity, -Infinity]",
    ],
    [
      new Map<unknown, unknown>([
        ["2", 1],
        ["1", 2],
        [3, true],
      ]),
      '{"2": 1, "1": 2, "3": true}',
    ],
    [{ skip: undefined, arr: [undefined], d: new Date(0) }, '{"arr": [null], "d": "1970-01-01T00:00:00.000Z"}'],
  ];
  for (const [v, want] of cases) assert.equal(pyJsonDumps(v), want);
  const cyc: Record<string, unknown> = {};
  cyc.self = cyc;
  rejects(() => pyJsonDumps(cyc), "not_serialisable");
  rejects(() => pyJsonDumps({ f: () => 1 }), "not_serialisable");
  rejects(() => pyJsonDumps(undefined), "not_serialisable");
});

test("pixel: pytracking's 68-byte transparent PNG", () => {
  const px = getOpenTrackingPixel();
  assert.equal(px.mimeType, "image/png");
  assert.equal(PNG_MIME_TYPE, VECTORS.pixel.mime_type);
  assert.equal(px.bytes.length, VECTORS.pixel.length);
  assert.equal(px.bytes.toString("hex"), VECTORS.pixel.hex);
  assert.equal(px.bytes.toString("base64"), VECTORS.pixel.base64);
  assert.equal(createHash("sha256").update(px.bytes).digest("hex"), VECTORS.pixel.sha256);
  assert.ok(TRACKING_PIXEL.equals(px.bytes));
  px.bytes[0] = 0;
  assert.equal(TRACKING_PIXEL[0], 0x89, "callers get a copy");
  assert.equal(DEFAULT_TIMEOUT_SECONDS, 5);
});

// ---------------------------------------------------------------------------------------------------------------------
// HTML

type P5Node = DefaultTreeAdapterTypes.Node;

/** a document as parse5 sees it, white space in text collapsed and white-space-only text dropped */
function canonical(html: string): unknown[] {
  const walk = (n: P5Node): unknown => {
    if ("tagName" in n) {
      const kids = ("content" in n ? n.content.childNodes : n.childNodes).map(walk).filter((x) => x !== null);
      return [n.tagName, Object.fromEntries(n.attrs.map((a) => [a.name, a.value])), ...kids];
    }
    if (n.nodeName === "#text") return n.value.replace(/\s+/g, " ").trim() || null;
    if (n.nodeName === "#comment") return ["#comment", n.data];
    if (n.nodeName === "#documentType") return ["!doctype", n.name];
    return null;
  };
  return parse(html)
    .childNodes.map(walk)
    .filter((x) => x !== null);
}

function hrefs(html: string): string[] {
  return [...html.matchAll(/ (?:href|src)="([^"]*)"/g)].map((m) => m[1]);
}

test("adaptHtml: pytracking's recorded outputs, as documents (lxml's white space may differ)", () => {
  assert.equal(VECTORS.adapt_html_examples.length, 2);
  for (const ex of VECTORS.adapt_html_examples) {
    const out = adaptHtml(ex.input, ex.extra_metadata, { ...ex.flags, config: fromPy(ex.config) });
    assert.ok(out.startsWith("<!DOCTYPE html>\n"), ex.id);
    assert.match(out, /^\p{ASCII}*$/u, "ASCII output: non-ASCII as numeric character references");
    assert.deepEqual(canonical(out), canonical(ex.output), ex.id);
    assert.deepEqual(hrefs(out), hrefs(ex.output), ex.id);
    assert.equal(out.replace(/\s+/g, ""), ex.output.replace(/\s+/g, ""), `${ex.id}: the same bytes up to white space`);
  }
  // the second example (no <head>, no stray tags) is byte for byte the same
  const simple = VECTORS.adapt_html_examples[1];
  assert.equal(adaptHtml(simple.input, simple.extra_metadata, { config: fromPy(simple.config) }), simple.output);
});

test("adaptHtml: link kinds, flags, already-tracked links, fragments, the clicktrail format", () => {
  const key = generateSigningKey();
  const config: TrackingConfig = { signingKeys: [key], baseClickTrackingUrl: "https://t.example/c/", baseOpenTrackingUrl: "https://t.example/o/" };
  const input =
    '<p><a href="https://x.example/a?b=1&amp;c=2">1</a><a href="HTTP://UPPER.example">2</a><a href="mailto:a@b">3</a>' +
    '<a href="#top">4</a><a href="rel/x">5</a><a href="ftp://f/">6</a><a href="https://t.example/c/already">7</a>' +
    '<a href="//cdn.example/x">8</a><img src="http://img.example/i.png"><area href="http://area.example/"></p>' +
    "<script>var s = '<a href=\"http://in-script\">é</a>';</script>";
  const out = adaptHtml(input, { campaign: "c1" }, { config });
  assert.ok(out.startsWith('<!DOCTYPE html>\n<p><a href="https://t.example/c/'), out);
  const links = hrefs(out);
  const clicks = links.filter((h) => /^https:\/\/t\.example\/c\/F/.test(h));
  assert.equal(clicks.length, 2);
  const decoded = clicks.map((h) => getClickTrackingResult(h.replace(/&amp;/g, "&"), config));
  assert.deepEqual(
    decoded.map((r) => r.trackedUrl),
    ["https://x.example/a?b=1&c=2", "//cdn.example/x"],
  );
  assert.deepEqual(decoded[0].metadata, { campaign: "c1" });
  for (const kept of [
    "HTTP://UPPER.example",
    "mailto:a@b",
    "#top",
    "rel/x",
    "ftp://f/",
    "https://t.example/c/already",
    "http://img.example/i.png",
    "http://area.example/",
  ]) {
    assert.ok(links.includes(kept), kept);
  }
  assert.ok(out.includes("var s = '<a href=\"http://in-script\">é</a>';"), "script content verbatim");
  const pixel = links.find((h) => h.startsWith("https://t.example/o/"));
  assert.ok(pixel && out.endsWith(`<img src="${pixel}">`), "pixel last, after the fragment");
  assert.deepEqual(getOpenTrackingResult(pixel, config).metadata, { campaign: "c1" });
  // flags
  const none = adaptHtml(input, null, { config, clickTracking: false, openTracking: false });
  assert.deepEqual(canonical(none), canonical("<!DOCTYPE html>" + input), "nothing changed");
  assert.ok(!none.includes("t.example/o/") && !none.includes('href="https://t.example/c/F'));
  const openOnly = adaptHtml("<html><body><p>x</p></body></html>", null, { config, clickTracking: false });
  assert.match(openOnly, /^<!DOCTYPE html>\n<html><body><p>x<\/p><img src="https:\/\/t\.example\/o\/E[^"]+"><\/body><\/html>$/);
  // entities and non-ASCII come out as numeric references; attributes are escaped
  const ent = adaptHtml('<p title="a&quot;b é">&eacute;&amp;&lt;&nbsp;😀</p>', null, { config, openTracking: false });
  assert.equal(ent, '<!DOCTYPE html>\n<p title="a&quot;b &#233;">&#233;&amp;&lt;&#160;&#128512;</p>');
  // deep nesting does not overflow the stack
  const deep = adaptHtml("<div>".repeat(20000) + '<a href="https://deep.example/">d</a>', null, { config, openTracking: false });
  assert.ok(deep.includes('href="https://t.example/c/F'));
});

// ---------------------------------------------------------------------------------------------------------------------
// the clicktrail format

const BASES = { baseClickTrackingUrl: "https://t.example/c/", baseOpenTrackingUrl: "https://t.example/o/" } as const;
const T0 = Date.parse("2030-01-01T00:00:00Z");

function tokenBytes(url: string, base: string): Buffer {
  const t = url.slice(base.length);
  return /^c/.test(t) ? base32Decode(t) : Buffer.from(t, "base64url");
}

function base32Decode(s: string): Buffer {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  let bits = "";
  for (const c of s.toLowerCase()) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const out: number[] = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) out.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(out);
}

function base32Encode(b: Buffer): string {
  const alphabet = "abcdefghijklmnopqrstuvwxyz234567";
  let bits = [...b].map((x) => x.toString(2).padStart(8, "0")).join("");
  bits += "0".repeat((5 - (bits.length % 5)) % 5);
  let out = "";
  for (let i = 0; i < bits.length; i += 5) out += alphabet[parseInt(bits.slice(i, i + 5), 2)];
  return out;
}

test("clicktrail: signed links round-trip, are compact, deterministic and carry their key id", () => {
  const key = generateSigningKey();
  assert.equal(key.length, 43);
  const config: TrackingConfig = { ...BASES, signingKeys: [key] };
  const url = getClickTrackingUrl("https://www.bob.com/hello-world/?token=valueééé", { customer_id: 1, tags: ["a", "é"] }, config);
  assert.match(url, /^https:\/\/t\.example\/c\/[EF][A-Za-z0-9_-]+$/);
  assert.equal(
    getClickTrackingUrl("https://www.bob.com/hello-world/?token=valueééé", { customer_id: 1, tags: ["a", "é"] }, config),
    url,
    "deterministic",
  );
  const r = getClickTrackingResult(url, config, { user_ip: "192.0.2.1" });
  assert.equal(r.trackedUrl, "https://www.bob.com/hello-world/?token=valueééé");
  assert.deepEqual(r.metadata, { customer_id: 1, tags: ["a", "é"] });
  assert.deepEqual(r.requestData, { user_ip: "192.0.2.1" });
  assert.equal(r.isClickTracking, true);
  assert.equal(r.isOpenTracking, false);
  assert.equal(r.format, "clicktrail");
  assert.equal(r.signed, true);
  assert.equal(r.encrypted, false);
  assert.equal(r.expiresAt, null);
  assert.equal(r.keyId, signingKeyId(key));
  assert.match(r.keyId ?? "", /^[0-9a-f]{8}$/);
  assert.equal(peekKeyId(url, BASES.baseClickTrackingUrl), r.keyId);
  assert.equal(peekKeyId("e30="), null);
  // layout: version/flags byte, key id, JSON with short keys, 16-byte MAC
  const bytes = tokenBytes(url, BASES.baseClickTrackingUrl);
  assert.equal(bytes[0], 0x14, "version 1, click");
  assert.equal(bytes.subarray(1, 5).toString("hex"), r.keyId);
  assert.equal(
    bytes.subarray(5, bytes.length - 16).toString(),
    '{"u":"https://www.bob.com/hello-world/?token=valueééé","m":{"customer_id":1,"tags":["a","é"]}}',
  );
  // the MAC, computed here as the format says: HMAC-SHA256 under the HKDF "mac" key, over version byte ‖ key id ‖ JSON
  const macKey = Buffer.from(hkdfSync("sha256", Buffer.from(key, "utf8"), "clicktrail/tracking/v1", "mac", 32));
  assert.deepEqual(
    bytes.subarray(bytes.length - 16),
    createHmac("sha256", macKey)
      .update(bytes.subarray(0, bytes.length - 16))
      .digest()
      .subarray(0, 16),
  );
  // an empty open link is 21 bytes: 28 characters
  const open = getOpenTrackingUrl(null, config);
  assert.equal(open.length - BASES.baseOpenTrackingUrl.length, 28);
  const o = getOpenTrackingResult(open, config);
  assert.deepEqual([o.isOpenTracking, o.trackedUrl, o.metadata], [true, null, {}]);
  // the webhook rules are pytracking's
  const w = getOpenTrackingUrl({ m: 1 }, { ...config, webhookUrl: "https://hook.example/", includeWebhookUrl: true });
  assert.equal(getOpenTrackingResult(w, { ...config, includeWebhookUrl: true }).webhookUrl, "https://hook.example/");
  assert.equal(getOpenTrackingResult(w, { ...config, webhookUrl: "https://reader/" }).webhookUrl, "https://reader/");
  // appendSlash and explicit key ids
  const slash = getOpenTrackingUrl(null, { ...config, appendSlash: true });
  assert.ok(slash.endsWith("/"));
  assert.equal(getOpenTrackingResult(slash, config).isOpenTracking, true);
  const named = { id: "0a1b2c3d", secret: key };
  const n = getOpenTrackingUrl(null, { ...config, signingKeys: [named] });
  assert.equal(peekKeyId(n, BASES.baseOpenTrackingUrl), "0a1b2c3d");
  assert.equal(getOpenTrackingResult(n, { ...config, signingKeys: [named] }).keyId, "0a1b2c3d");
});

test("hmacSha256 (precomputed key blocks, one-shot hashes) equals node:crypto's createHmac", () => {
  for (const keyLength of [0, 1, 32, 63, 64]) {
    const key = randomBytes(keyLength);
    const k = macKey(key);
    for (const lengths of [[], [0], [5], [5, 0], [5, 55], [9, 200, 1], [64], [1000, 3]]) {
      const parts = lengths.map((n) => randomBytes(n));
      const h = createHmac("sha256", key);
      for (const p of parts) h.update(p);
      assert.deepEqual(hmacSha256(k, ...parts), h.digest(), `key ${keyLength} bytes, parts ${lengths.join("+")}`);
    }
  }
  assert.throws(() => macKey(randomBytes(65)), RangeError);
});

test("clicktrail: encrypted links hide their payload and round-trip", () => {
  const key = generateSigningKey();
  const config: TrackingConfig = { ...BASES, signingKeys: [key], encrypt: true };
  const url = getClickTrackingUrl("https://secret.example/path", { email: "a@b.example" }, config);
  const bytes = tokenBytes(url, BASES.baseClickTrackingUrl);
  assert.equal(bytes[0], 0x15, "version 1, click, encrypted");
  assert.ok(!bytes.includes(Buffer.from("secret.example")) && !bytes.includes(Buffer.from("a@b.example")));
  const r = getClickTrackingResult(url, config);
  assert.equal(r.trackedUrl, "https://secret.example/path");
  assert.deepEqual(r.metadata, { email: "a@b.example" });
  assert.equal(r.encrypted, true);
  // a reader needs no `encrypt` setting: the token says it
  assert.equal(getClickTrackingResult(url, { ...BASES, signingKeys: [key] }).trackedUrl, "https://secret.example/path");
  assert.equal(getClickTrackingUrl("https://secret.example/path", { email: "a@b.example" }, config), url, "synthetic nonce: deterministic");
  assert.notEqual(getClickTrackingUrl("https://secret.example/patH", { email: "a@b.example" }, config), url);
  const open = getOpenTrackingUrl(null, config);
  assert.deepEqual(getOpenTrackingResult(open, config).metadata, {});
});

test("clicktrail: expiry is stored in the token and enforced", () => {
  const key = generateSigningKey();
  for (const encrypt of [false, true]) {
    const config: TrackingConfig = { ...BASES, signingKeys: [key], encrypt, expiresInSeconds: 3600, now: () => T0 };
    const url = getClickTrackingUrl("https://x.example/", null, config);
    const at = (ms: number): TrackingConfig => ({ ...BASES, signingKeys: [key], now: () => ms });
    const r = getClickTrackingResult(url, at(T0 + 3599_999));
    assert.equal(r.expiresAt, T0 / 1000 + 3600);
    assert.equal(r.timestamp, T0 / 1000 + 3599);
    const e = rejects(() => getClickTrackingResult(url, at(T0 + 3600_000)), "expired");
    assert.match(e.message, /2030-01-01T01:00:00/);
    rejects(() => getClickTrackingResult(url, at(T0 + 86400_000 * 365)), "expired");
  }
  rejects(() => getOpenTrackingUrl(null, { ...BASES, signingKeys: [key], expiresInSeconds: -1 }), "config");
  rejects(() => getOpenTrackingUrl(null, { ...BASES, signingKeys: [key], expiresInSeconds: 1.5 }), "config");
});

test("clicktrail: caseInsensitive tokens survive lower- and upper-casing of the whole URL", () => {
  const key = generateSigningKey();
  for (const encrypt of [false, true]) {
    const config: TrackingConfig = { ...BASES, signingKeys: [key], caseInsensitive: true, encrypt, expiresInSeconds: 600 };
    const url = getClickTrackingUrl("https://x.example/Path?Q=Value", { Who: "Ann" }, config);
    const token = url.slice(BASES.baseClickTrackingUrl.length);
    assert.match(token, /^c[a-z2-7]+$/);
    for (const variant of [url, url.toLowerCase(), token.toUpperCase()]) {
      const r = getClickTrackingResult(variant, config);
      assert.equal(r.trackedUrl, "https://x.example/Path?Q=Value", variant);
      assert.deepEqual(r.metadata, { Who: "Ann" });
    }
  }
});

test("clicktrail: key rotation — written with the old key, read by [new, old]; the old key alone cannot read the new", () => {
  const oldKey = generateSigningKey();
  const newKey = generateSigningKey();
  const url = getClickTrackingUrl("https://x.example/", { v: 1 }, { ...BASES, signingKeys: [oldKey] });
  const rotated: TrackingConfig = { ...BASES, signingKeys: [newKey, oldKey] };
  const r = getClickTrackingResult(url, rotated);
  assert.equal(r.trackedUrl, "https://x.example/");
  assert.equal(r.keyId, signingKeyId(oldKey));
  const fresh = getClickTrackingUrl("https://x.example/", { v: 2 }, rotated);
  assert.equal(peekKeyId(fresh, BASES.baseClickTrackingUrl), signingKeyId(newKey), "the first key writes");
  rejects(() => getClickTrackingResult(fresh, { ...BASES, signingKeys: [oldKey] }), "unknown_key");
  // two keys under one explicit id: both are tried
  const shared = [
    { id: "00000001", secret: newKey },
    { id: "00000001", secret: oldKey },
  ];
  const u2 = getClickTrackingUrl("https://y.example/", null, { ...BASES, signingKeys: [shared[1]] });
  assert.equal(getClickTrackingResult(u2, { ...BASES, signingKeys: shared }).trackedUrl, "https://y.example/");
});

test("clicktrail: tampering, truncation, unknown keys, other keys, wrong kind and unsigned links are rejected", () => {
  const key = generateSigningKey();
  const other = generateSigningKey();
  for (const encrypt of [false, true]) {
    for (const caseInsensitive of [false, true]) {
      const config: TrackingConfig = { ...BASES, signingKeys: [key], encrypt, caseInsensitive, expiresInSeconds: 3600 };
      const url = getClickTrackingUrl("https://x.example/", { n: 1 }, config);
      const base = BASES.baseClickTrackingUrl;
      const bytes = tokenBytes(url, base);
      const spell = (b: Buffer) => base + (caseInsensitive ? base32Encode(b) : b.toString("base64url"));
      assert.equal(spell(bytes), url);
      // every bit flip of every byte
      for (let i = 0; i < bytes.length; i++) {
        for (let bit = 0; bit < 8; bit++) {
          const b = Buffer.from(bytes);
          b[i] ^= 1 << bit;
          rejects(() => getClickTrackingResult(spell(b), config), undefined, `byte ${i} bit ${bit}`);
        }
      }
      // every truncation, of the bytes and of the text
      for (let n = 0; n < bytes.length; n++)
        rejects(() => getClickTrackingResult(spell(bytes.subarray(0, n)), config), undefined, `truncated to ${n}`);
      for (let n = base.length; n < url.length; n++) rejects(() => getClickTrackingResult(url.slice(0, n), config), undefined, `text ${n}`);
      // an extra byte, or a character changed in the text
      rejects(() => getClickTrackingResult(spell(Buffer.concat([bytes, Buffer.of(0)])), config), "bad_signature");
      // no such key, the same key id with another secret, no keys at all
      rejects(() => getClickTrackingResult(url, { ...config, signingKeys: [other] }), "unknown_key");
      rejects(() => getClickTrackingResult(url, { ...config, signingKeys: [{ id: signingKeyId(key), secret: other }] }), "bad_signature");
      rejects(() => getClickTrackingResult(url, { ...BASES }), "no_signing_key");
      // a click token is not an open token
      rejects(() => getOpenTrackingResult(url.slice(base.length), config), "wrong_kind");
    }
  }
  // forged header versions and reserved flags
  const url = getOpenTrackingUrl(null, { ...BASES, signingKeys: [key] });
  const bytes = tokenBytes(url, BASES.baseOpenTrackingUrl);
  for (const header of [0x18, 0x20, 0x00]) {
    const b = Buffer.from(bytes);
    b[0] = header;
    rejects(() => getOpenTrackingResult(b.toString("base64url"), { signingKeys: [key] }), ["bad_token", "bad_signature"], `header ${header}`);
  }
  // expired (stored expiry), and non-canonical spellings
  const exp = getOpenTrackingUrl(null, { ...BASES, signingKeys: [key], expiresInSeconds: 1, now: () => T0 });
  rejects(() => getOpenTrackingResult(exp, { ...BASES, signingKeys: [key], now: () => T0 + 1000 }), "expired");
  // an unsigned pytracking link needs allowUnsigned, even on a reader with keys
  const plain = getClickTrackingUrl("https://evil.example/", null, { ...BASES, format: "pytracking" });
  rejects(() => getClickTrackingResult(plain, { ...BASES, signingKeys: [key] }), "unsigned_not_allowed");
  assert.equal(getClickTrackingResult(plain, { ...BASES, signingKeys: [key], allowUnsigned: true }).signed, false);
  // bad signing keys
  for (const bad of ["short", " ".repeat(40), ` ${"k".repeat(40)}`])
    rejects(() => getOpenTrackingUrl(null, { ...BASES, signingKeys: [bad] }), "bad_key", bad);
  rejects(() => getOpenTrackingUrl(null, { ...BASES, signingKeys: [{ id: "XYZ", secret: key }] }), "bad_key");
  rejects(() => getOpenTrackingUrl(null, { ...BASES }), "no_signing_key");
});

test("decoding detects the format: one reader reads clicktrail, Fernet and (if allowed) plain pytracking links", () => {
  const signingKey = generateSigningKey();
  const fernetKey = VECTORS.fernet_key;
  const reader: TrackingConfig = { ...BASES, signingKeys: [signingKey], encryptionKey: fernetKey, allowUnsigned: true };
  const links = {
    clicktrail: getClickTrackingUrl("https://x.example/1", { f: "ct" }, { ...BASES, signingKeys: [signingKey] }),
    clicktrailEncrypted: getClickTrackingUrl(
      "https://x.example/2",
      { f: "cte" },
      { ...BASES, signingKeys: [signingKey], encrypt: true, caseInsensitive: true },
    ),
    fernet: getClickTrackingUrl("https://x.example/3", { f: "fernet" }, { ...BASES, format: "pytracking", encryptionKey: fernetKey }),
    plain: getClickTrackingUrl("https://x.example/4", { f: "plain" }, { ...BASES, format: "pytracking" }),
  };
  const got = Object.fromEntries(Object.entries(links).map(([k, u]) => [k, getClickTrackingResult(u, reader)]));
  assert.deepEqual(
    Object.values(got).map((r) => [r.trackedUrl, r.format, r.encrypted, r.signed]),
    [
      ["https://x.example/1", "clicktrail", false, true],
      ["https://x.example/2", "clicktrail", true, true],
      ["https://x.example/3", "pytracking", true, true],
      ["https://x.example/4", "pytracking", false, false],
    ],
  );
  // the recorded pytracking links too
  for (const v of VECTORS.vectors) {
    const get = v.kind === "click" ? getClickTrackingResult : getOpenTrackingResult;
    assert.equal(get(v.encoded_path, reader).trackedUrl, v.expected.tracked_url, v.id);
  }
  // incompatible writer settings are errors, not silently ignored
  rejects(() => getOpenTrackingUrl(null, { ...BASES, format: "pytracking", caseInsensitive: true }), "config");
  rejects(() => getOpenTrackingUrl(null, { ...BASES, format: "pytracking", expiresInSeconds: 60 }), "config");
  rejects(() => getOpenTrackingUrl(null, { ...BASES, format: "pytracking", encrypt: true }), "config");
  rejects(() => getOpenTrackingUrl(null, { ...BASES, format: "nope" as "pytracking" }), "config");
  rejects(() => getClickTrackingUrl("https://x/", [] as unknown as Record<string, unknown>, { ...BASES, signingKeys: [signingKey] }), "config");
  rejects(() => getClickTrackingUrl("https://x/", { n: 1n }, { ...BASES, signingKeys: [signingKey] }), "not_serialisable");
});

test("garbage never crashes the decoder: every failure is a TrackingError", () => {
  const reader: TrackingConfig = { ...BASES, signingKeys: [generateSigningKey()], encryptionKey: VECTORS.fernet_key, allowUnsigned: true };
  const inputs = [
    "",
    "/",
    "//",
    "?",
    "e30",
    "e30==",
    "gAAAAA",
    "gAAAAAAA",
    "E",
    "EA",
    "EAAAAAAA",
    "c",
    "caaaaaaa",
    "C2",
    "F___",
    "%%%%",
    "é",
    "\u0000",
    "A".repeat(300),
  ];
  let seed = 42;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=/";
  for (let i = 0; i < 3000; i++) {
    const first = "gEFce"[i % 5];
    let s = first;
    const len = Math.floor(rnd() * 80);
    for (let j = 0; j < len; j++) s += alphabet[Math.floor(rnd() * alphabet.length)];
    inputs.push(s);
  }
  for (const input of inputs) {
    for (const get of [getClickTrackingResult, getOpenTrackingResult]) {
      try {
        get(input, reader);
      } catch (e) {
        assert.ok(e instanceof TrackingError, `${JSON.stringify(input)}: ${String(e)}`);
      }
    }
  }
});

// ---------------------------------------------------------------------------------------------------------------------
// webhook

interface Captured {
  method?: string;
  url?: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

async function receiver(handler: (c: Captured, res: import("node:http").ServerResponse) => void) {
  const captured: Captured[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const c = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks) };
      captured.push(c);
      handler(c, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    captured,
    url: `http://127.0.0.1:${port}`,
    close: () => {
      server.closeAllConnections();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

test("sendWebhook: POSTs pytracking's body bytes as JSON to a real local receiver", async () => {
  const rec = await receiver((_c, res) => res.writeHead(204).end());
  try {
    const ex = VECTORS.webhook_examples[0];
    const t = ex.tracking_result;
    const result = new TrackingResult({
      isOpenTracking: t.is_open_tracking,
      isClickTracking: t.is_click_tracking,
      trackedUrl: t.tracked_url,
      webhookUrl: `${rec.url}/hook`,
      metadata: t.metadata,
      requestData: t.request_data,
      timestamp: t.timestamp,
      format: "pytracking",
      encrypted: false,
      signed: false,
      keyId: null,
      expiresAt: null,
    });
    const r = await sendWebhook(result);
    assert.deepEqual(r, { status: 204, ok: true });
    const c = rec.captured[0];
    assert.equal(c.method, "POST");
    assert.equal(c.url, "/hook");
    assert.equal(c.body.toString("utf8"), ex.captured_request.body, "body bytes");
    assert.equal(c.body.length, 308);
    assert.equal(c.headers["content-type"], "application/json");
    assert.equal(c.headers["content-length"], "308");
    assert.equal(c.headers["accept"], "*/*");
    assert.equal(c.headers["user-agent"], "clicktrail-tracking");
    // an open result from a decoded link: no tracked_url in the body; a 500 is returned, not thrown
    const rec2 = await receiver((_c, res) => res.writeHead(500).end("no"));
    try {
      const open = getOpenTrackingResult("e30=", { allowUnsigned: true, webhookUrl: `${rec2.url}/h2`, now: () => 1389177318_000 });
      assert.deepEqual(await sendWebhook(open, { webhookTimeoutSeconds: 2 }), { status: 500, ok: false });
      assert.equal(
        rec2.captured[0].body.toString(),
        '{"is_open_tracking": true, "is_click_tracking": false, "metadata": {}, "request_data": null, "timestamp": 1389177318}',
      );
    } finally {
      await rec2.close();
    }
  } finally {
    await rec.close();
  }
});

test("sendWebhook: timeouts, refused connections and missing URLs are TrackingErrors", async () => {
  const slow = await receiver(() => {
    /* never answers */
  });
  const base = { isOpenTracking: true, isClickTracking: false, trackedUrl: null, metadata: {}, requestData: null, timestamp: 0 };
  try {
    const started = Date.now();
    await assert.rejects(sendWebhook({ ...base, webhookUrl: `${slow.url}/slow` }, { webhookTimeoutSeconds: 0.3 }), (e: unknown) => {
      return e instanceof TrackingError && e.code === "webhook_timeout";
    });
    assert.ok(Date.now() - started < 3000);
  } finally {
    await slow.close();
  }
  // a port nothing listens on (the closed receiver's)
  await assert.rejects(sendWebhook({ ...base, webhookUrl: slow.url }), (e: unknown) => e instanceof TrackingError && e.code === "webhook_failed");
  await assert.rejects(sendWebhook({ ...base, webhookUrl: null }), (e: unknown) => e instanceof TrackingError && e.code === "webhook_failed");
  await assert.rejects(sendWebhook({ ...base, webhookUrl: "ftp://x/" }), (e: unknown) => e instanceof TrackingError);
  await assert.rejects(sendWebhook({ ...base, webhookUrl: "not a url" }), (e: unknown) => e instanceof TrackingError);
});
