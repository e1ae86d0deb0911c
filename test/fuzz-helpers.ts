/**
 * Helpers of the hostile-input suites (fuzz, security, authorization matrix): requests whose path is sent exactly as
 * given (no URL normalization), raw bytes over a socket, the route list from /openapi.json, random values shaped by
 * a route's JSON schema, and the checks every answer must pass.
 */
import { connect } from "node:net";
import { Agent, request as httpRequest } from "node:http";
import assert from "node:assert/strict";
import fc from "fast-check";
import { ADMIN_KEY, req } from "./helpers.js";

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json: any;
}

const agent = new Agent({ keepAlive: true, maxSockets: 4 });

/** Closes the keep-alive sockets (call at the end of a file so nothing keeps the process up). */
export function closeAgent(): void {
  agent.destroy();
}

/**
 * One request with the path sent verbatim (it must be valid for node:http: no spaces or raw non-ASCII). An event stream
 * resolves on its headers. A request the server drops unanswered resolves with status 0.
 */
export async function send(
  port: number,
  method: string,
  path: string,
  opts: { headers?: Record<string, string | string[]>; body?: string | Buffer; timeoutMs?: number } = {},
): Promise<Answer> {
  for (let attempt = 0; ; attempt++) {
    const r = await sendOnce(port, method, path, opts);
    // a kept-alive socket the server had closed meanwhile (after a 4xx with Connection: close): once more, on a new one
    if (r === "stale" && attempt < 3) continue;
    if (r === "stale") return { status: 0, headers: {}, body: "", json: undefined };
    return r;
  }
}

function sendOnce(
  port: number,
  method: string,
  path: string,
  opts: { headers?: Record<string, string | string[]>; body?: string | Buffer; timeoutMs?: number },
): Promise<Answer | "stale"> {
  return new Promise((resolve) => {
    const r = httpRequest({ host: "127.0.0.1", port, method, path, headers: opts.headers ?? {}, agent }, (res) => {
      if (String(res.headers["content-type"] ?? "").startsWith("text/event-stream")) {
        res.destroy();
        return resolve({ status: res.statusCode!, headers: res.headers, body: "", json: undefined });
      }
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("error", () =>
        resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString("utf8"), json: undefined }),
      );
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        let json: unknown;
        try {
          json = body ? JSON.parse(body) : undefined;
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode!, headers: res.headers, body, json });
      });
    });
    r.setTimeout(opts.timeoutMs ?? 15_000, () => r.destroy(new Error(`no answer within ${opts.timeoutMs ?? 15_000} ms`)));
    r.on("error", (e: NodeJS.ErrnoException) => {
      // the server closed the connection instead of answering (e.g. after a 413 with the body still coming)
      if (r.reusedSocket && (e.code === "ECONNRESET" || e.code === "EPIPE")) resolve("stale");
      // dropped unanswered, or a client-side error: status 0, the reason in the body
      else resolve({ status: 0, headers: {}, body: `(${e.code ?? ""} ${e.message})`, json: undefined });
    });
    r.end(opts.body);
  });
}

export interface RawAnswer {
  /** the status of the first answer, or null when the server closed (or kept quiet) without one */
  status: number | null;
  text: string;
  closed: boolean;
}

/**
 * Writes raw bytes on a fresh socket and reads the first answer: until the connection closes, the answer's
 * Content-Length is complete, or `timeoutMs` passes (a server waiting for a body it was promised is not a failure).
 */
export function rawHttp(port: number, data: string | Buffer, timeoutMs = 2000): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    let buf = Buffer.alloc(0);
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      const text = buf.toString("latin1");
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({ status: m ? Number(m[1]) : null, text, closed });
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    s.on("data", (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const text = buf.toString("latin1");
      const end = text.indexOf("\r\n\r\n");
      if (end < 0) return;
      const len = /\r\ncontent-length: *(\d+)/i.exec(text.slice(0, end));
      if (len && buf.length >= end + 4 + Number(len[1])) finish(false);
      if (/\r\ntransfer-encoding: *chunked/i.test(text.slice(0, end)) && text.endsWith("0\r\n\r\n")) finish(false);
    });
    s.on("error", () => finish(true));
    s.on("close", () => finish(true));
    s.write(data);
  });
}

export interface Route {
  method: string;
  /** OpenAPI form: /api/v1/links/{id} */
  path: string;
  op: any;
}

/** Every documented operation of a running app (the native API's surface). */
export async function openApiRoutes(base: string): Promise<{ routes: Route[]; doc: any }> {
  const r = await req(base, "GET", "/openapi.json", { key: null });
  assert.equal(r.status, 200, r.body);
  const routes: Route[] = [];
  for (const [p, ops] of Object.entries(r.json.paths as Record<string, Record<string, unknown>>))
    for (const [m, op] of Object.entries(ops))
      if (["get", "post", "put", "patch", "delete"].includes(m)) routes.push({ method: m.toUpperCase(), path: p, op });
  return { routes, doc: r.json };
}

/** The problem+json every native 4xx must be: its type, title, status and a detail saying what is wrong. */
export function problemError(r: Answer): string | null {
  const type = String(r.headers["content-type"] ?? "");
  if (!type.startsWith("application/problem+json")) return `content type ${type || "(none)"} instead of application/problem+json`;
  const p = r.json;
  if (!p || typeof p !== "object") return "a body that is not a JSON object";
  if (typeof p.type !== "string" || !p.type.startsWith("https://clicktrail.dev/problems/")) return `no problem type (${JSON.stringify(p.type)})`;
  if (p.status !== r.status) return `status ${p.status} in the body, ${r.status} on the wire`;
  if (typeof p.title !== "string" || !p.title) return "no title";
  if (typeof p.detail !== "string" || p.detail.trim().length < 3) return "no detail";
  if (p.type.endsWith("/validation") && !("field" in p)) return "a validation problem without its field";
  return null;
}

/** Strings that break parsers and queries: SQL meta characters, encodings, control characters, long and odd unicode. */
export const NASTY_STRINGS = [
  "",
  " ",
  "'",
  '"',
  "`",
  "\\",
  "%",
  "_",
  "*",
  ";",
  "' OR '1'='1",
  "1' OR 1=1 --",
  '" OR ""="',
  "1; DROP TABLE links; --",
  "'); DROP TABLE events; --",
  "1 UNION SELECT key_hash FROM api_keys --",
  "$1",
  "?",
  ":name",
  "\\x00",
  "\u0000",
  "a\u0000b",
  "\r\nX-Injected: 1",
  "%00",
  "%",
  "%ZZ",
  "%C0%AF",
  "%FF%FE",
  "..%2F..%2Fetc%2Fpasswd",
  "../../../../etc/passwd",
  "\uD800",
  "\uDFFF\uD800",
  "\u202Eevil",
  "\uFEFF",
  "😀".repeat(50),
  "ǅ̶̢̛̛",
  "NaN",
  "Infinity",
  "-0",
  "1e309",
  "9007199254740993",
  "99999999999999999999999999",
  "-1",
  "0x10",
  "0",
  "true",
  "null",
  "undefined",
  "[]",
  "{}",
  "__proto__",
  "constructor",
  "<script>alert(1)</script>",
  "${jndi:ldap://x}",
  "{{7*7}}",
  "2024-02-30T25:61:61Z",
  "9999-12-31T23:59:59Z",
  "-271821-04-20T00:00:00Z",
  "x".repeat(5000),
  "é".repeat(3000),
];

/** A random string: mostly small and printable, sometimes anything (lone surrogates included), sometimes nasty. */
export const anyString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ maxLength: 24 }) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 24 }) },
  { weight: 1, arbitrary: fc.string({ unit: "grapheme", maxLength: 12 }) },
  { weight: 3, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
  { weight: 1, arbitrary: fc.integer().map(String) },
  { weight: 1, arbitrary: fc.webUrl() },
);

/** A query-string value: anyString percent-encoded, or raw bytes of a broken encoding. */
export const queryValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: anyString.map((s) => encodeURIComponent(s.replace(/[\uD800-\uDFFF]/g, "\uFFFD"))) },
  { weight: 1, arbitrary: fc.constantFrom("%", "%ZZ", "%C0%AF", "%FF", "%ED%A0%80", "a%00b", "%2525", "+", "%2B", "a&b", "a=b", "[]") },
);

/** JSON nested `depth` deep: arrays or objects. */
export function deepJson(depth: number, kind: "array" | "object" = "array"): string {
  return kind === "array" ? "[".repeat(depth) + "]".repeat(depth) : '{"a":'.repeat(depth) + "1" + "}".repeat(depth);
}

function resolveRef(doc: any, s: any): any {
  if (s && typeof s.$ref === "string") {
    const name = s.$ref.split("/").pop();
    return doc.components?.schemas?.[name] ?? {};
  }
  return s ?? {};
}

/**
 * A value for a JSON schema: most of the time of the right shape (so the handler behind validation runs), with wrong
 * types, nasty strings, out-of-range numbers and unknown fields mixed in.
 */
export function fromSchema(doc: any, schema: any, depth = 0): fc.Arbitrary<unknown> {
  const s = resolveRef(doc, schema);
  const wild = fc.oneof(fc.jsonValue({ maxDepth: 2 }), anyString, fc.constant(null));
  if (depth > 4) return wild;
  let right: fc.Arbitrary<unknown>;
  const type = Array.isArray(s.type) ? s.type.find((t: string) => t !== "null") : s.type;
  if (s.enum) right = fc.constantFrom(...(s.enum as unknown[]));
  else if (s.oneOf || s.anyOf) right = fc.oneof(...(s.oneOf ?? s.anyOf).map((x: unknown) => fromSchema(doc, x, depth + 1)));
  else if (type === "string")
    right = fc.oneof(
      anyString,
      fc.webUrl({ withQueryParameters: true }),
      fc.domain(),
      fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      fc.string({ minLength: s.maxLength ?? 100, maxLength: (s.maxLength ?? 100) + 2 }),
    );
  else if (type === "integer" || type === "number")
    right = fc.oneof(fc.integer(), fc.constantFrom(0, -1, 1e308, -1e308, 2 ** 53 + 1, 0.5, 60, 3600), fc.double());
  else if (type === "boolean") right = fc.boolean();
  else if (type === "array") right = fc.array(fromSchema(doc, s.items ?? {}, depth + 1), { maxLength: depth === 0 ? 5 : 3 });
  else if (type === "object" || s.properties) {
    const props: Record<string, fc.Arbitrary<unknown>> = {};
    for (const [k, v] of Object.entries((s.properties ?? {}) as Record<string, unknown>)) props[k] = fromSchema(doc, v, depth + 1);
    right = fc
      .tuple(
        fc.record(props, { requiredKeys: [] }),
        fc.dictionary(fc.constantFrom("__proto__", "constructor", "extra", "ID", "", "a.b"), fc.jsonValue({ maxDepth: 1 }), { maxKeys: 1 }),
        fc.integer({ min: 0, max: 9 }),
      )
      .map(([o, extra, dice]) => {
        // fill the required fields most of the time, so the request gets past the first check
        const out: Record<string, unknown> = { ...o };
        if (dice > 0)
          for (const k of (s.required ?? []) as string[])
            if (!(k in out)) out[k] = fc.sample(props[k] ?? fc.constant("x"), { numRuns: 1, seed: dice })[0];
        return dice === 9 ? { ...out, ...extra } : out;
      });
  } else right = wild;
  return fc.oneof({ weight: 6, arbitrary: right }, { weight: 1, arbitrary: wild });
}

/** Counts cases and collects the failures of a fuzz run, so one run reports all of them. */
export class Tally {
  cases = 0;
  fivexx = 0;
  failures: string[] = [];
  byArea = new Map<string, number>();

  count(area: string): void {
    this.cases++;
    this.byArea.set(area, (this.byArea.get(area) ?? 0) + 1);
  }

  fail(what: string): void {
    if (this.failures.length < 50) this.failures.push(what);
  }

  /** A 5xx (or an unanswered request, when `unanswered` is not allowed) is a failure; returns whether the answer passed. */
  check(area: string, label: string, r: { status: number | null }, opts: { allowDrop?: boolean } = {}): boolean {
    this.count(area);
    if (r.status === null || r.status === 0) {
      if (opts.allowDrop) return true;
      this.fail(`${area}: no answer to ${label} ${"body" in r ? String((r as Answer).body) : ""}`);
      return false;
    }
    if (r.status >= 500) {
      this.fivexx++;
      this.fail(`${area}: ${r.status} for ${label}: ${"body" in r ? String((r as Answer).body).slice(0, 300) : ""}`);
      return false;
    }
    return true;
  }
}

export { ADMIN_KEY };
