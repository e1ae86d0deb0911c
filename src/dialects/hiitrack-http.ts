import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { AppError, problem } from "../errors.js";
import { StoreUnavailable } from "../store/port.js";

/**
 * The HiiTrack dialect's HTTP side (seed-apis.md §5): how requests are read (bodies, parameters merged from query, form
 * and JSON, cookies), how answers are written (ujson, JSONP `callback`, `request_id`) and the error shapes, and the
 * dispatcher in front of the routes (hiitrack.ts): Clicktrail's reserved root paths, the trailing-slash 301, the JSON
 * 404 and the mapping of failures to HiiTrack errors.
 */

/** At the root, the first path segments that stay Clicktrail's (never a HiiTrack user). */
const RESERVED = new Set(["api", "docs", "openapi.json", "healthz", "metrics", "dashboard", "tracker.js", "t"]);

const AUTH_BODY = JSON.stringify(JSON.stringify({ error: "Authorization required." }));

/** A HiiTrack error: `{"error": message, "exc": …}` with its status (the original set it before raising). */
export class HtError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly cls = "Exception",
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** A 401: HiiTrack answered the double-encoded string `"{\"error\":\"Authorization required.\"}"`. */
export class AuthRequired extends HtError {}

const required = (name: string) => new HtError(400, `Parameter '${name}' is required.`, "MissingParameterException");

/** ujson.dumps: compact, `/` escaped as `\/`, everything outside ASCII as \uXXXX (ensure_ascii). */
export function ujson(v: unknown): string {
  return (JSON.stringify(v) ?? "null").replace(/[/\u007f-\uffff]/g, (c) =>
    c === "/" ? "\\/" : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

export type Params = Map<string, string[]>;

/** `%a, %d-%b-%Y %H:%M:%S PST` of a time, as HiiTrack wrote its cookie's expiry (here from UTC). */
export function cookieDate(ms: number): string {
  const d = new Date(ms);
  const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const p = (n: number) => String(n).padStart(2, "0");
  return `${DAYS[d.getUTCDay()]}, ${p(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} PST`;
}

export function cookieOf(req: FastifyRequest, name: string): string | null {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const i = part.indexOf("=");
    if (i < 0 || part.slice(0, i).trim() !== name) continue;
    const raw = part.slice(i + 1).trim();
    try {
      return decodeURIComponent(raw);
    } catch {
      return raw;
    }
  }
  return null;
}

const JSONP_NAME = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/;

/** Lets the handler read the bodies: every content type arrives as a Buffer. */
export function rawBodies(app: FastifyInstance): void {
  // bodies are read as HiiTrack read them (form, exact application/json, anything else ignored) by the handler
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));
}

// ---- request parameters ----------------------------------------------------------------------------------------

export function paramsOf(req: FastifyRequest, query: string): Params {
  const out: Params = new Map();
  const add = (into: Params, k: string, v: string) => {
    const l = into.get(k);
    if (l) l.push(v);
    else into.set(k, [v]);
  };
  for (const [k, v] of new URLSearchParams(query)) add(out, k, v);
  if (req.method !== "POST" || !Buffer.isBuffer(req.body) || req.body.length === 0) return out;
  const ctype = req.headers["content-type"] ?? "";
  const text = req.body.toString("utf8");
  if (ctype.split(";")[0]!.trim().toLowerCase() === "application/x-www-form-urlencoded") {
    // Twisted: the body's keys replace the query's
    const body: Params = new Map();
    for (const [k, v] of new URLSearchParams(text)) add(body, k, v);
    for (const [k, v] of body) out.set(k, v);
  }
  if (ctype === "application/json") {
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new HtError(400, "The body is not valid JSON.", "ValueError");
    }
    if (!data || typeof data !== "object" || Array.isArray(data)) throw new HtError(400, "The JSON body must be an object.", "ValueError");
    // merged as single values: a JSON list cannot supply repeated parameters
    for (const [k, v] of Object.entries(data)) out.set(k, [typeof v === "string" ? v : JSON.stringify(v)]);
  }
  return out;
}

/** HiiTrack's `require`: present and not empty, else 400. */
export function need(params: Params, name: string): string {
  const v = params.get(name)?.[0];
  if (!v) throw required(name);
  return v;
}

// ---- responses -------------------------------------------------------------------------------------------------

export function send(reply: FastifyReply, params: Params, status: number, result: unknown, raw?: string) {
  let body = result;
  const rid = params.get("request_id")?.[0];
  if (rid !== undefined && raw === undefined && body && typeof body === "object" && !Array.isArray(body)) body = { ...body, request_id: rid };
  let text = raw ?? ujson(body);
  let type = "application/json";
  const cb = params.get("callback")?.[0];
  if (cb !== undefined) {
    text = `${cb}(${text});`;
    // Clicktrail sends X-Content-Type-Options: nosniff, under which browsers run no script served as JSON
    type = "text/javascript";
  }
  // a Buffer, so that the content type goes out as HiiTrack's, without a charset parameter
  return reply.code(status).header("content-type", type).send(Buffer.from(text, "utf8"));
}

export function sendError(reply: FastifyReply, params: Params, e: HtError) {
  reply.headers(e.headers);
  if (e instanceof AuthRequired) return send(reply, params, 401, null, AUTH_BODY);
  return send(reply, params, e.status, { error: e.message, exc: `${e.cls}: ${e.message}` });
}

// ---- the dispatcher -------------------------------------------------------------------------------------------

export type Result = { status: number; body: unknown };

/** The handler of every HiiTrack path below `mount`, answering with `route`'s result (null: 404). */
export function dispatcher(
  mount: string,
  route: (req: FastifyRequest, reply: FastifyReply, seg: string[], params: Params) => Promise<Result | null>,
) {
  return async function handle(req: FastifyRequest, reply: FastifyReply) {
    const url = req.raw.url ?? "/";
    const q = url.indexOf("?");
    const fullPath = q >= 0 ? url.slice(0, q) : url;
    const path = fullPath.slice(mount.length);
    if (mount === "" && RESERVED.has(path.split("/")[1] ?? "")) {
      // at the root, Clicktrail's own paths keep Clicktrail's 404
      return reply
        .code(404)
        .type("application/problem+json")
        .send(problem(404, "not-found", `no route ${req.method} ${fullPath}`));
    }
    const noParams: Params = new Map();
    if (fullPath.endsWith("/")) {
      // HiiTrack: a trailing slash is a 301 to the path without it (the query is dropped)
      return reply.code(301).header("location", fullPath.slice(0, -1)).header("content-type", "application/json").send(Buffer.alloc(0));
    }
    let params = noParams;
    try {
      params = paramsOf(req, q >= 0 ? url.slice(q + 1) : "");
      const cb = params.get("callback")?.[0];
      if (cb !== undefined && (cb.length > 128 || !JSONP_NAME.test(cb))) {
        params.delete("callback");
        throw new HtError(400, "Parameter 'callback' must be a JavaScript function name.", "ValueError");
      }
      let seg: string[];
      try {
        seg = path === "" ? [] : path.slice(1).split("/").map(decodeURIComponent);
      } catch {
        seg = [""];
      }
      const r = seg.length ? await route(req, reply, seg, params) : null;
      if (!r) return send(reply.code(404), params, 404, { error: "Not found" });
      return send(reply, params, r.status, r.body);
    } catch (e) {
      if (e instanceof HtError) return sendError(reply, params, e);
      if (e instanceof AppError && e.status < 500)
        return sendError(reply, params, new HtError(e.status, e.message, e.status === 429 ? "RateLimited" : "ValueError"));
      if (e instanceof StoreUnavailable) {
        req.log.warn({ err: e.message }, "database unavailable");
        return sendError(
          reply,
          params,
          new HtError(503, "The database cannot be reached right now; retry in a few seconds.", "StoreUnavailable", { "retry-after": "2" }),
        );
      }
      req.log.error({ err: e }, "hiitrack request failed");
      return sendError(reply, params, new HtError(500, `Internal error (request id ${req.id}).`, "InternalError"));
    }
  };
}
