import { createHash, randomUUID, timingSafeEqual } from "node:crypto";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { FailureThrottle } from "../auth/throttle.js";
import { AppError, problem } from "../errors.js";
import type { EventWriter } from "../events/writer.js";
import { hiitrackFunnel } from "../funnels/engine.js";
import type { Analytics, ProjectData } from "../funnels/source.js";
import { analyticsStoreFor } from "../funnels/store.js";
import { StoreUnavailable, UniqueViolation, type EventRow, type Store } from "../store/port.js";
import { MAX_VISITOR_ID, type VisitorService } from "../visitors/service.js";
import { eventReport, jsonKey, nameId, propertyReport, series, sum, valueId, type Buckets, type Counts } from "./hiitrack-counts.js";
import { hiitrackStoreFor, type HiiTrackBucket } from "./hiitrack-store.js";

/**
 * The HiiTrack dialect (seed-apis.md §5): users, buckets, event and property tracking, the batch endpoint with its `v`
 * cookie, event and property reports and funnels, with HiiTrack's paths, authentication order (401 before any 404),
 * ujson bodies, JSONP `callback`, `request_id` and base64 ids. A bucket is a Clicktrail project, a tracked event a
 * Clicktrail event, a property a visitor property; counts and funnels are computed from the project's in-memory event
 * table with HiiTrack's semantics (hiitrack-counts.ts, hiitrackFunnel). Deliberate differences: docs/dialects.md.
 */

export interface HiiTrackDeps {
  store: Store;
  writer: EventWriter;
  analytics: Analytics;
  visitors: VisitorService;
}

/** Basic-auth guessing: 20 wrong credentials from one address within 15 minutes, and that address waits (429). */
export const HT_MAX_FAILURES = 20;
const HT_WINDOW_MS = 15 * 60_000;

/** Longest event, property, bucket, user and funnel name taken (HiiTrack had no limit). */
export const HT_MAX_NAME = 200;
/** Most events and most properties in one batch message. */
export const HT_MAX_BATCH = 100;
/** Most steps in a funnel. */
export const HT_MAX_STEPS = 20;

/** At the root, the first path segments that stay Clicktrail's (never a HiiTrack user). */
const RESERVED = new Set(["api", "docs", "openapi.json", "healthz", "metrics", "dashboard", "tracker.js", "t"]);

const BATCH_SHAPE = "Batch request must contain base64 encoded list of two values: event_names, properties";
const AUTH_BODY = JSON.stringify(JSON.stringify({ error: "Authorization required." }));

/** A HiiTrack error: `{"error": message, "exc": …}` with its status (the original set it before raising). */
class HtError extends Error {
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
class AuthRequired extends HtError {}

const required = (name: string) => new HtError(400, `Parameter '${name}' is required.`, "MissingParameterException");

/** ujson.dumps: compact, `/` escaped as `\/`, everything outside ASCII as \uXXXX (ensure_ascii). */
export function ujson(v: unknown): string {
  return (JSON.stringify(v) ?? "null").replace(/[/\u007f-\uffff]/g, (c) =>
    c === "/" ? "\\/" : `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

const sha1 = (data: string | Buffer) => createHash("sha1").update(data).digest();
/** What HiiTrack stored for a user: sha1("user:password"), here as hex. */
export const passwordHash = (user: string, password: string) => sha1(`${user}:${password}`).toString("hex");
/** A bucket's own password: base64(sha1(bucket + ":" + sha1("user:password"))), computed from the stored hash. */
export const bucketPassword = (bucket: string, hashHex: string) =>
  sha1(Buffer.concat([Buffer.from(`${bucket}:`, "utf8"), Buffer.from(hashHex, "hex")])).toString("base64");

function constantEq(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

type Params = Map<string, string[]>;

/** `%a, %d-%b-%Y %H:%M:%S PST` of a time, as HiiTrack wrote its cookie's expiry (here from UTC). */
function cookieDate(ms: number): string {
  const d = new Date(ms);
  const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const p = (n: number) => String(n).padStart(2, "0");
  return `${DAYS[d.getUTCDay()]}, ${p(d.getUTCDate())}-${MONTHS[d.getUTCMonth()]}-${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} PST`;
}

function cookieOf(req: FastifyRequest, name: string): string | null {
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

export async function hiitrackRoutes(app: FastifyInstance, deps: HiiTrackDeps): Promise<void> {
  const { store, writer, analytics, visitors } = deps;
  const mount = app.prefix === "/" ? "" : app.prefix;
  const accounts = hiitrackStoreFor(store);
  const funnels = analyticsStoreFor(store);
  const throttle = new FailureThrottle(HT_MAX_FAILURES, HT_WINDOW_MS);
  /** auto-creations in flight, so concurrent first hits on a bucket create one project */
  const creating = new Map<string, Promise<HiiTrackBucket>>();

  // bodies are read as HiiTrack read them (form, exact application/json, anything else ignored) by the handler
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_req, body, done) => done(null, body));

  // ---- request parameters ----------------------------------------------------------------------------------------

  function paramsOf(req: FastifyRequest, query: string): Params {
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
  function need(params: Params, name: string): string {
    const v = params.get(name)?.[0];
    if (!v) throw required(name);
    return v;
  }

  function checkName(what: string, value: string): void {
    if (value.length > HT_MAX_NAME) throw new HtError(400, `${what} is longer than ${HT_MAX_NAME} characters.`, "ValueError");
  }

  // ---- responses -------------------------------------------------------------------------------------------------

  function send(reply: FastifyReply, params: Params, status: number, result: unknown, raw?: string) {
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

  function sendError(reply: FastifyReply, params: Params, e: HtError) {
    reply.headers(e.headers);
    if (e instanceof AuthRequired) return send(reply, params, 401, null, AUTH_BODY);
    return send(reply, params, e.status, { error: e.message, exc: `${e.cls}: ${e.message}` });
  }

  // ---- accounts and authentication -------------------------------------------------------------------------------

  /** authenticate → user_authorize → bucket_check, in HiiTrack's order: a 401 comes before any 404. */
  async function authorize(req: FastifyRequest, user: string, bucket: string | null, check = true): Promise<HiiTrackBucket | null> {
    const client = `ip:${req.ip}`;
    const wait = throttle.wait(client);
    if (wait > 0)
      throw new HtError(429, `Too many wrong credentials; try again in ${Math.ceil(wait / 60_000)} minute(s).`, "HTTPAuthenticationRequired", {
        "retry-after": String(Math.ceil(wait / 1000)),
      });
    const header = req.headers.authorization;
    if (!header) throw new AuthRequired(401, "Authentication required.", "HTTPAuthenticationRequired", { "www-authenticate": "Basic" });
    const challenge: Record<string, string> = req.headers["x-requested-with"] === "XMLHttpRequest" ? {} : { "www-authenticate": "Basic" };
    const invalid = () => {
      throttle.fail(client);
      return new AuthRequired(401, "Authentication required.", "HTTPAuthenticationRequired", challenge);
    };
    const parts = header.trim().split(/\s+/);
    if (parts.length !== 2 || parts[0] !== "Basic") throw invalid();
    const decoded = Buffer.from(parts[1]!, "base64").toString("utf8");
    const i = decoded.indexOf(":");
    const name = i < 0 ? "" : decoded.slice(0, i);
    const password = i < 0 ? "" : decoded.slice(i + 1);
    if (!name || !password) throw invalid();
    const account = await accounts.getUser(name);
    // a missing user costs a hash too, so timing tells nothing about which names exist
    const hash = account?.hash ?? "0".repeat(40);
    const ok =
      (constantEq(passwordHash(name, password), hash) || (bucket !== null && constantEq(bucketPassword(bucket, hash), password))) && account !== null;
    if (!ok) throw invalid();
    throttle.reset(client);
    if (name !== user) throw new AuthRequired(401, "Invalid user", "HTTPAuthenticationRequired");
    if (bucket === null || !check) return null;
    const b = await accounts.getBucket(user, bucket);
    if (!b) throw new HtError(404, `Bucket ${bucket} does not exist.`, "BucketException");
    return b;
  }

  /** A new project for a bucket: `hiitrack:user/bucket`, with a suffix when a deleted bucket's project has the name. */
  async function newProject(user: string, bucket: string): Promise<number> {
    const base = `hiitrack:${user}/${bucket}`;
    for (let n = 1; n < 10_000; n++) {
      try {
        return (await store.createProject(n === 1 ? base : `${base}~${n}`)).id;
      } catch (e) {
        if (!(e instanceof UniqueViolation)) throw e;
      }
    }
    throw new HtError(500, `no free project name for bucket ${bucket}`);
  }

  /** Creates a bucket; false when the user has one of that name already. */
  async function createBucket(user: string, bucket: string, description: string): Promise<boolean> {
    const projectId = await newProject(user, bucket);
    return accounts.createBucket({ user_name: user, name: bucket, project_id: projectId, description });
  }

  /** HiiTrack's bucket_create: the tracking routes create a missing bucket (described by its name) of a known user. */
  async function bucketCreate(user: string, bucket: string): Promise<HiiTrackBucket> {
    const b = await accounts.getBucket(user, bucket);
    if (b) return b;
    const key = `${user}\u0000${bucket}`;
    let p = creating.get(key);
    if (!p) {
      p = (async () => {
        if (!(await accounts.getUser(user))) throw new HtError(404, `User ${user} does not exist.`, "UserException");
        checkName("The bucket name", bucket);
        await createBucket(user, bucket, bucket);
        // created here, or meanwhile by another instance
        const made = await accounts.getBucket(user, bucket);
        if (!made) throw new HtError(404, `User ${user} does not exist.`, "UserException");
        return made;
      })().finally(() => creating.delete(key));
      creating.set(key, p);
    }
    return p;
  }

  // ---- tracking --------------------------------------------------------------------------------------------------

  const eventRow = (projectId: number, name: string, visitor: string, ts: number): EventRow => ({
    project_id: projectId,
    ts,
    client_ts: null,
    name,
    visitor,
    session: null,
    link_id: null,
    domain_id: null,
    campaign_id: null,
    source: "api",
    channel: "hiitrack",
    platform: null,
    ip: null,
    ua: null,
    referrer: null,
    browser: null,
    os: null,
    device: null,
    is_bot: false,
    country: null,
    rule: null,
    data: null,
  });

  function visitorParam(v: string): string {
    if (v.length > MAX_VISITOR_ID) throw new HtError(400, `Parameter 'visitor_id' is longer than ${MAX_VISITOR_ID} characters.`, "ValueError");
    return v;
  }

  async function setProperty(projectId: number, visitor: string, name: string, value: unknown): Promise<void> {
    if (value === null || value === undefined) throw new HtError(400, `Property '${name}' may not be null.`, "ValueError");
    // `add`: a visitor may hold several values; adding one it holds already changes nothing
    await visitors.setProperties(projectId, visitor, { add: { [name]: Array.isArray(value) ? [value] : value } });
  }

  function decodeB64Json(text: string): unknown {
    // a `+` that came through a query string unencoded arrives as a space
    const buf = Buffer.from(text.replace(/ /g, "+"), "base64");
    return JSON.parse(buf.toString("utf8"));
  }

  async function batch(req: FastifyRequest, reply: FastifyReply, params: Params, user: string, bucket: string) {
    need(params, "message");
    const b = await bucketCreate(user, bucket);
    const cookie = cookieOf(req, "v");
    const given = params.get("visitor_id")?.[0];
    let visitor: string;
    const setCookie = (id: string) =>
      reply.header("set-cookie", `v=${encodeURIComponent(id)}; Expires=${cookieDate(Date.now() + 100 * 365 * 86_400_000)}; Path=/`);
    if (given) {
      visitor = visitorParam(given);
      if (visitor !== cookie) setCookie(visitor);
    } else if (cookie) visitor = visitorParam(cookie);
    else {
      visitor = randomUUID().replace(/-/g, "");
      setCookie(visitor);
    }
    const fail = (error: string) => ({ visitor_id: visitor, error });
    let data: unknown;
    try {
      data = decodeB64Json(need(params, "message"));
    } catch {
      return fail(BATCH_SHAPE);
    }
    if (!Array.isArray(data) || data.length !== 2) return fail(BATCH_SHAPE);
    const [events, properties] = data as [unknown, unknown];
    if (!Array.isArray(events)) return fail("event_names must be a list.");
    if (!Array.isArray(properties)) return fail("properties must be a list of tuples.");
    if (!properties.every((x) => Array.isArray(x) && x.length === 2)) return fail("properties must be in [key, value] format.");
    const pairs = properties as [unknown, unknown][];
    if (!events.every((x) => typeof x === "string" && x !== "" && x.length <= HT_MAX_NAME)) return fail(BATCH_SHAPE);
    if (!pairs.every(([k]) => typeof k === "string" && k !== "" && k.length <= HT_MAX_NAME)) return fail(BATCH_SHAPE);
    if (events.length > HT_MAX_BATCH || pairs.length > HT_MAX_BATCH)
      return fail(`Batch request may hold at most ${HT_MAX_BATCH} event names and ${HT_MAX_BATCH} properties.`);
    // properties first, so the batch's events are counted in the batch's property values
    for (const [k, v] of pairs) {
      if (v === null) continue;
      await setProperty(b.project_id, visitor, k as string, v);
    }
    const now = Date.now();
    if (events.length) await writer.writeMany((events as string[]).map((n) => eventRow(b.project_id, n, visitor, now)));
    return { visitor_id: visitor };
  }

  // ---- reports ---------------------------------------------------------------------------------------------------

  /** name → its id, for the event names and property names of a project (ids are resolved against known names). */
  function eventByIdOf(p: ProjectData, id: string): string | null {
    for (const n of p.table.names) if (nameId(n) === id) return n;
    return null;
  }

  function propertyByIdOf(p: ProjectData, id: string): string | null {
    for (const n of p.propertyNames.keys()) if (nameId(n) === id) return n;
    return null;
  }

  function intParam(params: Params, name: string): number | undefined {
    const v = params.get(name)?.[0];
    if (v === undefined) return undefined;
    if (!/^\s*-?\d{1,15}\s*$/.test(v)) throw new HtError(400, `Parameter '${name}' must be an integer.`, "ValueError");
    return Number(v);
  }

  /** Property names a visitor holds (ever), for the `properties` of an event report. */
  const namesOf = (p: ProjectData) => (v: number) => {
    const out = new Set<string>();
    for (const c of p.changesOf(v)) if (c.op !== "unset") out.add(c.name);
    return out;
  };

  function eventBody(p: ProjectData, name: string, params: Params) {
    const t = p.table;
    const start = intParam(params, "start");
    let step: number | undefined;
    let finish = 0;
    if (start !== undefined) {
      const interval = params.get("interval")?.[0];
      if (interval !== undefined && interval !== "hour" && interval !== "day")
        throw new HtError(400, "Interval must be 'hour' or 'day'", "ValueError");
      step = interval === "hour" ? 3600 : 86_400;
      finish = intParam(params, "finish") ?? Math.floor(Date.now() / 1000);
    }
    const property = params.get("property")?.[0] || null;
    const r = eventReport(t, name, {
      step,
      valuesOf: property ? (v) => p.valuesOf(v, property, "ever", 0) : undefined,
      propertyNamesOf: namesOf(p),
    });
    const idOf = (ni: number) => nameId(t.names[ni]!);
    const isSeries = step !== undefined;
    const val = (b: Buckets | undefined) => (isSeries ? series(b, start!, finish) : sum(b));
    const nonEmpty = (x: unknown) => !(Array.isArray(x) && x.length === 0);
    const byPrev = (m: Map<number, Buckets>) =>
      Object.fromEntries([...m].map(([prev, b]) => [idOf(prev), val(b)] as const).filter(([, x]) => nonEmpty(x)));
    const out: Record<string, unknown> = { id: nameId(name), name };
    if (!property) {
      const seen = r.visitors > 0;
      // a never-seen event: HiiTrack's empty counters ({}), not 0
      out.total = seen || isSeries ? val(r.all.total) : {};
      out.unique_total = seen || isSeries ? val(r.all.unique) : {};
      out.path = byPrev(r.all.path);
      out.unique_path = byPrev(r.all.uniquePath);
    } else {
      const segs = [...r.segments.values()];
      // with a series, values and paths without a count in the range are left out
      const empty = (x: unknown) => isSeries && (Array.isArray(x) ? x.length === 0 : !!x && typeof x === "object" && Object.keys(x).length === 0);
      const per = (f: (c: Counts) => unknown) =>
        Object.fromEntries(segs.map((g) => [valueId(property, g.value), f(g.counts)] as const).filter(([, x]) => !empty(x)));
      out.values = Object.fromEntries(segs.map((g) => [valueId(property, g.value), g.value]));
      out.totals = per((c) => val(c.total));
      out.unique_totals = per((c) => val(c.unique));
      out.paths = per((c) => byPrev(c.path));
      out.unique_paths = per((c) => byPrev(c.uniquePath));
    }
    out.properties = Object.fromEntries([...r.properties].map((n) => [nameId(n), n]));
    return out;
  }

  function propertyBody(p: ProjectData, name: string) {
    const t = p.table;
    const r = propertyReport(t, p.props.keys(), (v) => p.valuesOf(v, name, "ever", 0));
    const events: Record<string, string> = {};
    const values: Record<string, unknown> = {};
    for (const g of r.values()) {
      const total: Record<string, number> = {};
      for (const [e, n] of g.totals) {
        const id = nameId(t.names[e]!);
        total[id] = n;
        events[id] = t.names[e]!;
      }
      values[valueId(name, g.value)] = { value: g.value, total };
    }
    return { id: nameId(name), name, values, events };
  }

  /** The steps a funnel request names: `event_id` (≥2) or `event` (≥2), in order. */
  function stepsOf(p: ProjectData, params: Params): string[] {
    const ids = params.get("event_id");
    const names = params.get("event");
    let steps: string[];
    if (ids && ids.length >= 2) steps = ids.map((id) => stepName(p, id));
    else if (names && names.length >= 2) steps = names;
    else if (ids) throw new HtError(403, "Parameter 'event_id' requires at least two values.", "MissingParameterException");
    else if (names) throw new HtError(403, "Parameter 'event' requires at least two values.", "MissingParameterException");
    else throw new HtError(403, "Parameters 'event' or 'event_id' required.", "MissingParameterException");
    if (steps.length > HT_MAX_STEPS) throw new HtError(400, `A funnel has at most ${HT_MAX_STEPS} steps.`, "ValueError");
    return steps;
  }

  function stepName(p: ProjectData, id: string): string {
    const n = eventByIdOf(p, id);
    if (n === null) throw new HtError(404, `Event ${id} does not exist.`, "NotFoundException");
    return n;
  }

  function funnelBody(p: ProjectData, steps: string[], property: string | null) {
    const t = p.table;
    const valuesOf = property ? (v: number) => p.valuesOf(v, property, "ever", 0) : undefined;
    const reports = new Map(steps.map((n) => [n, eventReport(t, n, { valuesOf })]));
    const idOf = (ni: number) => nameId(t.names[ni]!);
    const byPrev = (m: Map<number, Buckets>) => Object.fromEntries([...m].map(([prev, b]) => [idOf(prev), sum(b)]));
    const perStep = (f: (c: Counts) => unknown, c: (n: string) => Counts | undefined) =>
      Object.fromEntries([...reports.keys()].flatMap((n) => (c(n) ? [[nameId(n), f(c(n)!)]] : [])));
    const all = (n: string) => reports.get(n)!.all;
    let propMap: Map<string, readonly unknown[]> | undefined;
    if (valuesOf) {
      propMap = new Map();
      for (let v = 0; v < t.offsets.length - 1; v++) {
        const vals = valuesOf(v);
        if (vals.length) propMap.set(t.visitorIds[v]!, vals);
      }
    }
    const f = hiitrackFunnel(t, steps, { property: propMap });
    const ids = (l: [string, number][]) => l.map(([n, c]) => [nameId(n), c]);
    const out: Record<string, unknown> = {
      event_ids: steps.map(nameId),
      total: perStep((c) => sum(c.total), all),
      unique_total: perStep((c) => sum(c.unique), all),
      path: perStep((c) => byPrev(c.path), all),
      unique_path: perStep((c) => byPrev(c.uniquePath), all),
      funnel: ids(f.funnel),
      unique_funnel: ids(f.unique_funnel),
    };
    if (property) {
      const segs = f.segments ?? [];
      const vid = (value: unknown) => valueId(property, value);
      const seg = (value: unknown) => (n: string) => reports.get(n)!.segments.get(jsonKey(value))?.counts;
      const perValue = (g: (c: Counts) => unknown) => Object.fromEntries(segs.map((s) => [vid(s.value), perStep(g, seg(s.value))]));
      out.property = { name: property, id: nameId(property), values: Object.fromEntries(segs.map((s) => [vid(s.value), s.value])) };
      out.funnels = Object.fromEntries(segs.map((s) => [vid(s.value), ids(s.funnel)]));
      out.unique_funnels = Object.fromEntries(segs.map((s) => [vid(s.value), ids(s.unique_funnel)]));
      out.totals = perValue((c) => sum(c.total));
      out.unique_totals = perValue((c) => sum(c.unique));
      out.paths = perValue((c) => byPrev(c.path));
      out.unique_paths = perValue((c) => byPrev(c.uniquePath));
    }
    return out;
  }

  // ---- the routes ------------------------------------------------------------------------------------------------

  type Result = { status: number; body: unknown };
  const ok = (body: unknown = null, status = 200): Result => ({ status, body });

  async function route(req: FastifyRequest, reply: FastifyReply, seg: string[], params: Params): Promise<Result | null> {
    const m = req.method;
    const [user, bucket, kind, name] = seg;
    if (seg.some((s) => s === "")) return null;
    if (seg.length === 1) {
      if (user === "batch" && m === "POST") return null; // HiiTrack's handler-less POST /batch route
      if (m === "POST") {
        const password = need(params, "password");
        checkName("The user name", user!);
        if (!(await accounts.createUser(user!, passwordHash(user!, password)))) throw new HtError(403, "Username exists.", "UserException");
        return ok({}, 201);
      }
      if (m === "GET") {
        await authorize(req, user!, null);
        return ok({});
      }
      if (m === "DELETE") {
        await authorize(req, user!, null);
        await accounts.deleteUser(user!);
        return ok();
      }
      return null;
    }
    if (seg.length === 2) {
      if (m === "POST") {
        // no bucket_check here: the bucket is about to be created (its own password is accepted, as on its other routes)
        await authorize(req, user!, bucket!, false);
        const description = need(params, "description");
        checkName("The bucket name", bucket!);
        if ((await accounts.getBucket(user!, bucket!)) || !(await createBucket(user!, bucket!, description)))
          throw new HtError(403, "Bucket already exists.", "BucketException");
        return ok(null, 201);
      }
      if (m === "GET") {
        const b = (await authorize(req, user!, bucket!))!;
        const p = await analytics.project(b.project_id);
        return ok({
          bucket_name: b.name,
          description: b.description,
          properties: Object.fromEntries([...p.propertyNames.keys()].map((n) => [nameId(n), n])),
          events: Object.fromEntries(p.table.names.map((n) => [n, { id: nameId(n) }])),
        });
      }
      if (m === "DELETE") {
        await authorize(req, user!, bucket!);
        await accounts.deleteBucket(user!, bucket!);
        return ok();
      }
      return null;
    }
    if (seg.length === 3) {
      if (kind === "batch" && m === "GET") return ok(await batch(req, reply, params, user!, bucket!));
      if (kind === "funnel" && m === "GET") {
        const b = (await authorize(req, user!, bucket!))!;
        const p = await analytics.project(b.project_id);
        return ok(funnelBody(p, stepsOf(p, params), params.get("property")?.[0] || null));
      }
      return null;
    }
    if (seg.length !== 4) return null;
    if (kind === "event" && m === "POST") {
      const visitor = visitorParam(need(params, "visitor_id"));
      const b = await bucketCreate(user!, bucket!);
      checkName("The event name", name!);
      await writer.write(eventRow(b.project_id, name!, visitor, Date.now()));
      return ok();
    }
    if (kind === "property" && m === "POST") {
      const visitor = visitorParam(need(params, "visitor_id"));
      const raw = need(params, "value");
      const b = await bucketCreate(user!, bucket!);
      checkName("The property name", name!);
      let value: unknown;
      try {
        value = decodeB64Json(raw);
      } catch {
        throw new HtError(400, "Parameter 'value' must be base64 encoded JSON.", "ValueError");
      }
      await setProperty(b.project_id, visitor, name!, value);
      return ok();
    }
    if (m === "GET" && (kind === "event" || kind === "event_id" || kind === "property" || kind === "property_id" || kind === "funnel")) {
      const b = (await authorize(req, user!, bucket!))!;
      const p = await analytics.project(b.project_id);
      if (kind === "event") return ok(eventBody(p, name!, params));
      if (kind === "event_id") {
        const n = eventByIdOf(p, name!);
        if (n === null) throw new HtError(404, `Event ${name} does not exist.`, "NotFoundException");
        return ok(eventBody(p, n, params));
      }
      if (kind === "property") return ok(propertyBody(p, name!));
      if (kind === "property_id") {
        const n = propertyByIdOf(p, name!);
        if (n === null) throw new HtError(404, `Property ${name} does not exist.`, "NotFoundException");
        return ok(propertyBody(p, n));
      }
      const saved = await funnels.getFunnelByName(b.project_id, name!);
      if (!saved) throw new HtError(404, `Funnel ${name} does not exist.`, "NotFoundException");
      const steps = ((saved.query.steps as { name?: unknown }[] | undefined) ?? []).map((s) => String(s.name));
      const hii = saved.query.hiitrack as { property?: unknown } | undefined;
      const property = typeof hii?.property === "string" ? hii.property : null;
      if (steps.length < 2) throw new HtError(404, `Funnel ${name} does not exist.`, "NotFoundException");
      return ok({ ...funnelBody(p, steps, property), description: saved.description });
    }
    if (kind === "funnel" && m === "POST") {
      const b = (await authorize(req, user!, bucket!))!;
      need(params, "event_id");
      const description = need(params, "description");
      if (params.get("event_id")!.length < 2)
        throw new HtError(403, "Parameter 'event_id' requires at least two values.", "MissingParameterException");
      checkName("The funnel name", name!);
      const p = await analytics.project(b.project_id);
      const steps = stepsOf(p, new Map([["event_id", params.get("event_id")!]]));
      const property = params.get("property")?.[0] || null;
      const query = { steps: steps.map((n) => ({ name: n })), order: "ordered", window: null, hiitrack: { property } };
      // POST overwrites silently
      for (let attempt = 0; attempt < 3; attempt++) {
        const existing = await funnels.getFunnelByName(b.project_id, name!);
        if (existing) {
          await funnels.updateFunnel(b.project_id, existing.id, { description, query });
          return ok(null, 201);
        }
        try {
          await funnels.createFunnel({ project_id: b.project_id, name: name!, description, query });
          return ok(null, 201);
        } catch (e) {
          if (!(e instanceof UniqueViolation)) throw e;
        }
      }
      throw new HtError(500, `Funnel ${name} could not be saved.`);
    }
    if (kind === "funnel" && m === "DELETE") {
      const b = (await authorize(req, user!, bucket!))!;
      const existing = await funnels.getFunnelByName(b.project_id, name!);
      if (existing) await funnels.deleteFunnel(b.project_id, existing.id);
      return ok();
    }
    return null;
  }

  async function handle(req: FastifyRequest, reply: FastifyReply) {
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
  }

  app.all("/", { schema: { hide: true } }, handle);
  app.all("/*", { schema: { hide: true } }, handle);
}
